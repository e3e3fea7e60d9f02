"""The branching examples of the Contree SDK docs (shared/seeds/002), through contree-client.

The docs start from `alpine:latest`; the local engine has no registry import yet, so they start from the
built-in busybox:latest, whose /bin/sh is the same busybox ash that alpine's is.
"""

from __future__ import annotations

from contree_client.httpx import ContreeAsyncClient

from contree_tui.engine.models import Image
from tests.api.helpers import run, text


async def test_simple_branching(client: ContreeAsyncClient, busybox: Image) -> None:
    base = await client.inspect_find_image_by_tag("busybox:latest")
    child = await run(client, base, 'echo "$RANDOM" > /tmp/random.txt', disposable=False)
    assert child.status.value == "SUCCESS" and child.result.image not in (None, base)
    grandchildren = []
    for letter in ("A", "B", "C"):
        gc = await run(client, child.result.image, f"echo '{letter}' >> /tmp/random.txt && cat /tmp/random.txt",
                       disposable=False)
        grandchildren.append(gc)
    outputs = [text(gc.metadata.result.stdout).split("\n") for gc in grandchildren]
    randoms = {lines[0] for lines in outputs}
    assert len(randoms) == 1 and next(iter(randoms)).isdigit()  # all three start from the same child state
    assert [lines[1] for lines in outputs] == ["A", "B", "C"]  # and each appended only its own letter
    images = {gc.result.image for gc in grandchildren}
    assert len(images) == 3 and child.result.image not in images


async def test_advanced_branching(client: ContreeAsyncClient, busybox: Image) -> None:
    image = busybox.uuid
    result1 = await run(client, image, "echo 'First branch'", disposable=False)
    result2 = await run(client, image, "echo 'Second branch'", disposable=False)
    result3 = await run(client, image, "ls /bin | head -3", disposable=False)
    assert text(result1.metadata.result.stdout) == "First branch\n"
    assert text(result2.metadata.result.stdout) == "Second branch\n"
    assert len(text(result3.metadata.result.stdout).splitlines()) == 3
    assert result1.result.image == result2.result.image == result3.result.image == image  # nothing written

    random1 = await run(client, image, "od -An -N2 -tu2 /dev/urandom", disposable=False)
    random2 = await run(client, image, "od -An -N2 -tu2 /dev/urandom", disposable=False)
    assert text(random1.metadata.result.stdout).strip().isdigit()
    assert random1.result.image == random2.result.image == image

    base_result = await run(client, image, "echo 'apple\\nbanana\\ncherry' > /tmp/fruits.txt", disposable=False)
    fruits = base_result.result.image
    assert fruits != image
    sort_result = await run(client, fruits, "sort /tmp/fruits.txt", disposable=False)
    reverse_result = await run(client, fruits, "sort -r /tmp/fruits.txt", disposable=False)
    written = (await client.inspect_image_download(fruits, "/tmp/fruits.txt")).decode()
    lines = written.splitlines()
    assert text(sort_result.metadata.result.stdout).splitlines() == sorted(lines)
    assert text(reverse_result.metadata.result.stdout).splitlines() == sorted(lines, reverse=True)
    assert sort_result.result.image == reverse_result.result.image == fruits

    same1 = await run(client, image, "echo 'Same command'", disposable=False)
    same2 = await run(client, image, "echo 'Same command'", disposable=False)
    assert text(same1.metadata.result.stdout) == text(same2.metadata.result.stdout) == "Same command\n"
    assert same1.result.image == same2.result.image  # "UUIDs equal: True"

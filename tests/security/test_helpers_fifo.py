"""Attack 2 of issue #10: a FIFO where an inspect helper opens a file froze the whole engine.

A run replaces /etc/passwd with a FIFO; `GET .../list?path=/` then blocked the helper in open(2) (nobody
ever writes to that FIFO), and the engine read the helper's first line synchronously on its event loop:
every request, and every run's timeout, waited for minutes. Each test here puts a FIFO in a path a helper
touches and asserts the request answers at once while `whoami` answers within 200 ms throughout.
"""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
import time

import httpx
import pytest

from tests.security.served_engine import WHOAMI_BUDGET, ServedEngine, busybox, run, whoami_watch

ANSWER_BUDGET = 5.0  # seconds: generous for a 2-core machine shared with other test suites
TREE = ("mkdir -p /data/dir && echo a > /data/dir/a && mkfifo /data/fifo /data/dir/pipe"
        " && ln -s /data/fifo /data/link-to-fifo && ln -s /data/dir/pipe /data/dir/link-to-pipe")


@pytest.fixture(params=["passwd", "group"])
async def fifo_image(request: pytest.FixtureRequest, served_api: httpx.AsyncClient) -> tuple[str, str]:
    """An image whose /etc/<passwd or group> is a FIFO, with FIFOs and links to them under /data;
    the image and the FIFO database's name."""
    name = request.param
    image = await run(served_api, await busybox(served_api), f"rm /etc/{name} && mkfifo /etc/{name} && {TREE}")
    return image, name


async def _timed_get(api: httpx.AsyncClient, url: str, **params: str) -> httpx.Response:
    started = time.perf_counter()
    answer = await api.get(url, params=params, timeout=ANSWER_BUDGET * 2)
    elapsed = time.perf_counter() - started
    assert elapsed < ANSWER_BUDGET, f"{url} {params} took {elapsed:.1f} s"
    return answer


async def test_fifos_never_block_a_helper_or_the_engine(served_engine: ServedEngine, served_api: httpx.AsyncClient,
                                                        fifo_image: tuple[str, str]) -> None:
    image, database = fifo_image
    base = f"/v1/inspect/{image}"
    async with whoami_watch(served_engine) as watch:
        for path in ("/", "/etc", "/data"):
            listing = await _timed_get(served_api, f"{base}/list", path=path)
            assert listing.status_code == 200, listing.text
            assert (await _timed_get(served_api, f"{base}/list", path=path, text="1")).status_code == 200
        etc = (await _timed_get(served_api, f"{base}/list", path="/etc")).json()["files"]
        assert {i["path"]: i["is_fifo"] for i in etc}[database]
        root = (await _timed_get(served_api, f"{base}/list", path="/")).json()["files"]
        assert {i["path"]: i["uid"] for i in root}["etc"] == 0  # its owner's name may be missing, not its id

        for path in ("/data/fifo", "/data/link-to-fifo", f"/etc/{database}", "/data/dir/link-to-pipe"):
            download = await _timed_get(served_api, f"{base}/download", path=path)
            assert download.status_code == 422 and "not a regular file" in download.json()["error"], download.text

        for path, pipe in (("/data", "data/dir/pipe"), ("/data/dir", "dir/pipe"), ("/etc", f"etc/{database}"),
                           ("/", "./data/fifo")):
            archive = await _timed_get(served_api, f"{base}/archive", path=path)
            assert archive.status_code == 200, archive.text
            with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
                member = tar.getmember(pipe)
                assert member.isfifo() and member.size == 0
        assert (await _timed_get(served_api, f"{base}/archive", path="/data/fifo")).status_code == 422

        for path in ("/data/fifo", "/data/link-to-fifo", "/data", "/etc", "/"):
            found = await _timed_get(served_api, f"{base}/grep", pattern="a", path=path)
            assert found.status_code == 200, found.text
            assert all("fifo" not in m["path"] and "pipe" not in m["path"] for m in found.json()["matches"])
    assert watch.worst < WHOAMI_BUDGET, f"whoami waited {watch.worst * 1000:.0f} ms while helpers met FIFOs"


def _helper_processes(engine_pid: int) -> list[int]:
    """The engine's children that are not host root: its helpers (keepers stay root; sandboxes are the
    keepers' children). Not by uid alone: a helper is the sandboxes' root, as other engines' runs are."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as fh:
                    fields = dict(line.split(":", 1) for line in fh.read().splitlines() if ":" in line)
                if int(fields["PPid"]) == engine_pid and int(fields["Uid"].split()[0]) != 0:
                    found.append(int(entry))
            except (OSError, KeyError, ValueError):
                continue
    return found


async def test_a_client_that_goes_away_takes_its_helper_with_it(served_engine: ServedEngine,
                                                                served_api: httpx.AsyncClient) -> None:
    """A helper streaming a large file into a pipe nobody reads any more is killed, not left blocked."""
    image = await run(served_api, await busybox(served_api), "head -c 200000000 /dev/zero > /big")
    for url in (f"/v1/inspect/{image}/download", f"/v1/inspect/{image}/archive"):
        async with served_api.stream("GET", url, params={"path": "/big"}) as answer:
            assert answer.status_code == 200
            async for _ in answer.aiter_raw():
                break
            assert _helper_processes(served_engine.process.pid), "the helper should still be streaming"
        deadline = time.monotonic() + 5
        while _helper_processes(served_engine.process.pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert _helper_processes(served_engine.process.pid) == []

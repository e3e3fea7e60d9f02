"""contree-sdk (the high-level SDK, its own httpx client and strict cattrs parsing) against the API over TCP.

It runs the docs' branching example (shared/seeds/002) with its sync API and disposable=False. It polls
`GET /operations/{id}` and parses every answer strictly: numeric `duration`, complete instance metadata,
a full `result`; it follows the `/inspect/?tag=` redirect to read an Image.
"""

from __future__ import annotations

import asyncio
import socket
import warnings
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.http import create_app
from contree_tui.engine.models import Image
from tests.api.conftest import serve, stop

contree_sdk = pytest.importorskip("contree_sdk")


def branching(base_url: str) -> dict[str, object]:
    from contree_sdk import ContreeSync

    client = ContreeSync(base_url=base_url, token="local-test-token")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pull() is the docs' spelling; use() is newer
        base = client.images.pull("busybox:latest")
    child = base.run(shell='echo "$RANDOM" > /tmp/random.txt', disposable=False).wait()
    outputs = []
    for letter in ("A", "B", "C"):
        gc = child.run(shell=f"echo '{letter}' >> /tmp/random.txt && cat /tmp/random.txt", disposable=False).wait()
        outputs.append((gc.stdout, gc.uuid, gc.exit_code))
    same1 = base.run(shell="echo 'Same command'", disposable=False).wait()
    same2 = base.run(shell="echo 'Same command'", disposable=False).wait()
    return {"base": base.uuid, "child": child.uuid, "outputs": outputs, "same": (same1.uuid, same2.uuid),
            "same_stdout": same1.stdout}


async def test_sdk_runs_the_branching_example(engine: Engine, busybox: Image, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTREE_HOME", str(tmp_path))  # no auth.ini profile of this machine leaks in
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server, task = await serve(create_app(engine), sockets=[sock])
    try:
        found = await asyncio.to_thread(branching, f"http://127.0.0.1:{port}")
    finally:
        await stop(server, task)
        sock.close()
    assert str(found["base"]) == busybox.uuid and str(found["child"]) != busybox.uuid
    outputs = found["outputs"]
    randoms = {stdout.split("\n")[0] for stdout, _, _ in outputs}
    assert len(randoms) == 1 and next(iter(randoms)).isdigit()
    assert [stdout.split("\n")[1] for stdout, _, _ in outputs] == ["A", "B", "C"]
    assert len({uuid for _, uuid, _ in outputs}) == 3 and all(code == 0 for _, _, code in outputs)
    same1, same2 = found["same"]
    assert same1 == same2 and str(same1) == busybox.uuid and found["same_stdout"] == "Same command\n"


def timed_out_run(base_url: str) -> tuple[int, str]:
    from contree_sdk import ContreeSync

    client = ContreeSync(base_url=base_url, token="local-test-token")
    image = client.images.use("busybox:latest")
    image.run(shell="true", disposable=True).wait()  # warm: the next run's clock starts with no cold start
    # The SDK waits exactly as long as the run's timeout, then polls once more within 0.1 s (its
    # poll_secs_min): the run must end within that, so the engine's kill-to-completion (7 ms measured) counts.
    done = image.run(shell="echo partial; sleep 30", timeout=2, disposable=True).wait()
    return done.exit_code, done.stdout


async def test_sdk_gets_a_timed_out_run_as_a_result(engine: Engine, busybox: Image, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A FAILED operation is an exception in the SDK (FailedOperationError): the hosted behaviour, SUCCESS with
    state.timed_out, gives its users the output so far and the exit code instead."""
    monkeypatch.setenv("CONTREE_HOME", str(tmp_path))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server, task = await serve(create_app(engine), sockets=[sock])
    try:
        code, stdout = await asyncio.to_thread(timed_out_run, f"http://127.0.0.1:{sock.getsockname()[1]}")
    finally:
        await stop(server, task)
        sock.close()
    assert (code, stdout) == (-1, "partial\n")

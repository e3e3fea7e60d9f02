"""Attack 3 of issue #10: work in an inspect helper stalled every other request.

`pattern=(a*)*b` on a 30 kB line of `a`s backtracked for 20 s in Python's `re`, and the engine waited for the
helper's answer on its event loop: a concurrent `whoami` waited 19.9 s. Listing a directory of 200,000
entries blocked it 2.3 s (the listing was parsed and re-serialised on the loop). The spec promises ripgrep's
Rust regex: linear time, and no backreferences or look-around, which it refuses.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.security.served_engine import WHOAMI_BUDGET, ServedEngine, busybox, run, whoami_watch

BIG_DIR_ENTRIES = 200_000


@pytest.fixture
async def aaa_image(served_api: httpx.AsyncClient) -> str:
    """/data/aaa: one 30,000-byte line of `a`s, no `b` (the pathological input for `(a*)*b`)."""
    return await run(served_api, await busybox(served_api),
                     "mkdir /data && head -c 30000 /dev/zero | tr '\\0' a > /data/aaa")


async def test_a_pathological_pattern_is_linear_and_stalls_nobody(served_engine: ServedEngine,
                                                                 served_api: httpx.AsyncClient, aaa_image: str) -> None:
    async with whoami_watch(served_engine) as watch:
        for pattern in ("(a*)*b", "(a|aa)*b", "(a+)+$b", "(.*a){20}b"):
            started = time.perf_counter()
            found = await served_api.get(f"/v1/inspect/{aaa_image}/grep", params={"pattern": pattern, "path": "/data"})
            elapsed = time.perf_counter() - started
            assert found.status_code == 200, found.text
            assert found.json()["matches"] == [] and not found.json()["truncated"]
            assert elapsed < 2.0, f"grep {pattern!r} took {elapsed:.1f} s"
    assert watch.worst < WHOAMI_BUDGET, f"whoami waited {watch.worst * 1000:.0f} ms during the grep"
    matched = await served_api.get(f"/v1/inspect/{aaa_image}/grep", params={"pattern": "(a*)*$", "path": "/data"})
    assert matched.status_code == 200 and matched.json()["matches"][0]["line_bytes"] == 30_000


@pytest.mark.parametrize(("pattern", "message"), [
    ("(a)\\1", "backreferences are not supported"),
    ("(?=a)", "look-around"),
    ("(?!a)", "look-around"),
    ("(?<=a)b", "look-around"),
    ("(?<!a)b", "look-around"),
    ("a{1001}", "not a valid regular expression"),
])
async def test_patterns_linear_time_cannot_run_are_refused(served_api: httpx.AsyncClient, pattern: str,
                                                           message: str) -> None:
    refused = await served_api.get(f"/v1/inspect/{await busybox(served_api)}/grep", params={"pattern": pattern})
    assert refused.status_code == 400, refused.text
    assert message in refused.json()["error"] and pattern in refused.json()["error"]


async def test_a_huge_directory_listing_stalls_nobody(served_engine: ServedEngine,
                                                     served_api: httpx.AsyncClient) -> None:
    image = await run(served_api, await busybox(served_api),
                      f"mkdir /big && cd /big && seq {BIG_DIR_ENTRIES} | xargs touch")
    async with whoami_watch(served_engine) as watch:
        for params in ({"path": "/big"}, {"path": "/big", "text": "1"}):
            async with served_api.stream("GET", f"/v1/inspect/{image}/list", params=params) as listing:
                assert listing.status_code == 200
                body = b"".join([chunk async for chunk in listing.aiter_bytes()])  # parsed once the watch ends
            if "text" not in params:
                json_body = body
            else:
                assert body.count(b"\n") == BIG_DIR_ENTRIES + 1  # `total ...` and one line each
    assert watch.worst < WHOAMI_BUDGET, f"whoami waited {watch.worst * 1000:.0f} ms during the listing"
    assert len(httpx.Response(200, content=json_body).json()["files"]) == BIG_DIR_ENTRIES

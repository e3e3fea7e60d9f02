"""When the engine names RLIMIT_AS for a failed run (sandbox/address_space_note.py): only on evidence, and saying
how much it knows. The run itself is tests/engine/test_limit_plan_rlimits.py's memory hog."""

from __future__ import annotations

import signal

from contree_tui.engine.sandbox.address_space_note import address_space_note

LIMIT = 64 << 20


def exited(code: int, signum: int = -1, rss_kb: int = 0) -> dict[str, object]:
    return {"code": code, "signal": signum, "resources": {"max_rss_kb": rss_kb}}


def test_a_failure_whose_stderr_names_a_failed_allocation_names_the_limit() -> None:
    for said in (b"dd: memory exhausted\n", b"Traceback ...\nMemoryError\n", b"x: Cannot allocate memory\n",
                 b"terminate called after throwing an instance of 'std::bad_alloc'\n",
                 b"memory allocation of 1073741824 bytes failed\n", b"fatal error: runtime: out of memory\n"):
        note = address_space_note(LIMIT, exited(1), False, said)
        assert note is not None and note.startswith("out of memory: the command failed (exit 1)"), said
        assert "64 MiB of address space per process (RLIMIT_AS" in note
    aborted = address_space_note(LIMIT, exited(-1, signal.SIGABRT), False, bytearray(b"std::bad_alloc\n"))
    assert aborted is not None and "(killed by SIGABRT)" in aborted


def test_a_silent_crash_near_the_limit_names_it_as_possible_only() -> None:
    note = address_space_note(LIMIT, exited(-1, signal.SIGSEGV, rss_kb=40 << 10), False, b"")
    assert note is not None and note.startswith("killed by SIGSEGV with 40 MiB resident, near the memory limit")
    assert note.endswith("whether it did here is not known"), note
    # far below the limit: a segfault is the program's own
    assert address_space_note(LIMIT, exited(-1, signal.SIGSEGV, rss_kb=2 << 10), False, b"") is None


def test_no_note_without_evidence_or_failure() -> None:
    assert address_space_note(LIMIT, exited(0), False, b"warning: out of memory, retried with less\n") is None
    assert address_space_note(LIMIT, exited(2), False, b"grep: no such file\n") is None
    assert address_space_note(LIMIT, exited(1), False, b"test_memory_usage FAILED\n") is None  # "memory" alone
    assert address_space_note(LIMIT, exited(-1, signal.SIGKILL), True, b"out of memory\n") is None  # its timeout's
    assert address_space_note(LIMIT, None, False, b"out of memory\n") is None  # never started

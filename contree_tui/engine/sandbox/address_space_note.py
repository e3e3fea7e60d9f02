"""The engine's word on a run that failed under RLIMIT_AS (#14): without cgroups the memory limit is the address
space of each process (limit_plan.py), and going past it kills nothing: the allocation fails (ENOMEM) and the
program says so in its own words (busybox dd: "memory exhausted", Python: MemoryError, glibc: "Cannot allocate
memory", C++: std::bad_alloc, then SIGABRT), or, where it does not check, dies of SIGSEGV. Under cgroups the
OOM killer's kill is known for certain (CgroupPool counts it) and the engine says so; here it only has the
evidence, so the note is given only when the evidence supports it and says how much it knows:

  - the command failed (an exit code other than 0, or a signal that is not the timeout's) and the end of its
    stderr names a failed allocation: the limit in force is named, as the likely cause;
  - it died of SIGSEGV, SIGABRT or SIGBUS with nothing said, and its peak RSS reached half the limit (a program
    near its address-space limit; RSS counts only touched pages, so it is below the address space, never
    above): the limit is named as a possible cause, said to be unknown;
  - otherwise nothing: a segfault of a small program is its own bug, not the limit's.
"""

from __future__ import annotations

import re
import signal
from typing import Any

STDERR_TAIL = 4096  # bytes of the end of stderr searched: a traceback's last line, dd's or pip's last words
# what programs print when an allocation fails (lower case); "memory" alone would match too much (a test's name)
ALLOCATION_FAILED = re.compile(
    rb"memory exhausted|out of memory|memoryerror|cannot allocate|can't allocate|could not allocate|"
    rb"failed to allocate|memory allocation of \d+ bytes failed|bad_alloc|enomem|not enough memory|"
    rb"outofmemoryerror|unable to allocate")
CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS)
NEAR_LIMIT = 0.5  # peak RSS / the limit from which a silent crash is worth naming the limit


def address_space_note(memory_bytes: int, exit: dict[str, Any] | None, timed_out: bool,
                       stderr: bytes | bytearray) -> str | None:
    """The operation's error for a command that failed under RLIMIT_AS of `memory_bytes` (the engine has no
    cgroups), or None when the evidence does not point at it. `stderr`: what was kept of the command's."""
    if timed_out or not exit:
        return None
    code, signum = exit.get("code", -1), exit.get("signal", -1)
    if code == 0 and (signum is None or signum <= 0):
        return None  # it ended well: whatever it printed, it coped
    limit = (f"{_mib(memory_bytes)} of address space per process (RLIMIT_AS: this engine has no cgroups, so "
             "memory is limited per process, and an allocation past it fails with ENOMEM)")
    if ALLOCATION_FAILED.search(bytes(stderr[-STDERR_TAIL:]).lower()):
        return (f"out of memory: the command failed ({_ended(code, signum)}) after an allocation failed, as its "
                f"stderr says; the memory limit in force is {limit}")
    peak = ((exit.get("resources") or {}).get("max_rss_kb", 0) or 0) * 1024
    if signum in CRASH_SIGNALS and memory_bytes and peak >= memory_bytes * NEAR_LIMIT:
        return (f"{_ended(code, signum)} with {_mib(peak)} resident, near the memory limit: {limit}; a failed "
                "allocation or stack growth ends a program this way too, but whether it did here is not known")
    return None


def _ended(code: int, signum: int) -> str:
    if signum is not None and signum > 0:
        try:
            return f"killed by {signal.Signals(signum).name}"
        except ValueError:
            return f"killed by signal {signum}"
    return f"exit {code}"


def _mib(n: int) -> str:
    return f"{n / (1 << 30):.3g} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.3g} MiB"


__all__ = ["address_space_note"]

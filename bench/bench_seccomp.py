"""The sandbox syscall filter's cost (contree_tui/engine/sandbox/seccomp.py): what each run pays to install it.

Every run's pid 1 installs the filter as its last setup step, on the run's critical path; the kernel copies,
checks, JITs it and prepares its per-architecture action cache. Interleaved in rotating order, in forked
children (median of 200 each):
  filter         seccomp.apply of the shipped program (native architecture only)
  docker arches  the same profile with Docker's sub-architectures (x86 and x32 on x86_64) — not shipped
  bare spawn     baseline: posix_spawn + wait of /bin/true from this process
Also printed: compiling the program with libseccomp (once per engine and factory start), median of 5.
Goal: installing the shipped filter <= 0.25x a bare /bin/true spawn.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import time

from common import header, median, verdict

from contree_tui.engine.sandbox import seccomp
from contree_tui.engine.sandbox.launch import KEPT_CAPABILITIES

ROUNDS = 200
GOAL = 0.25


def install_seconds(program: bytes) -> float:
    """The prctl alone, in a fresh child: seccomp.apply's Python around it costs the first touch of its
    copy-on-write pages in a forked interpreter (~400 us here), which keeper.c never pays."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = seccomp._SockFprog(len(program) // 8, ctypes.addressof(buffer))
    prctl = seccomp._prctl
    args = (seccomp._PR_SET_SECCOMP, ctypes.c_ulong(seccomp._SECCOMP_MODE_FILTER), ctypes.byref(fprog),
            ctypes.c_ulong(0), ctypes.c_ulong(0))
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # forked child: time the install only
        prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE: warms the ctypes call path
        started = time.perf_counter()
        rc = prctl(*args)
        elapsed = time.perf_counter() - started
        os.write(write_fd, struct.pack("d", elapsed if rc == 0 else -1.0))
        os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    with os.fdopen(read_fd, "rb") as fh:
        return struct.unpack("d", fh.read())[0]


def bare_spawn_seconds() -> float:
    started = time.perf_counter()
    pid = os.posix_spawn("/bin/true", ["true"], {})
    os.waitpid(pid, 0)
    return time.perf_counter() - started


def main() -> int:
    header("bench_seccomp: installing the sandbox's syscall filter")
    compile_times = []
    for _ in range(5):
        started = time.perf_counter()
        shipped = seccomp.compile_filter(KEPT_CAPABILITIES)
        compile_times.append(time.perf_counter() - started)
    seccomp.SUB_ARCHITECTURES = True
    docker = seccomp.compile_filter(KEPT_CAPABILITIES)
    seccomp.SUB_ARCHITECTURES = False
    series: dict[str, list[float]] = {"filter": [], "docker arches": [], "bare spawn": []}
    runs = {"filter": lambda: install_seconds(shipped), "docker arches": lambda: install_seconds(docker),
            "bare spawn": bare_spawn_seconds}
    names = list(series)
    for i in range(ROUNDS):
        for name in names[i % 3:] + names[:i % 3]:
            series[name].append(runs[name]())
    print(f"compile (libseccomp)        : {median(compile_times) * 1e3:.1f} ms, {len(shipped) // 8} BPF insns")
    for name, sizes in (("filter", len(shipped)), ("docker arches", len(docker)), ("bare spawn", 0)):
        insns = f", {sizes // 8} insns" if sizes else ""
        print(f"{name:<28}: {median(series[name]) * 1e6:.0f} us (median of {ROUNDS}{insns})")
    ratio = median(series["filter"]) / median(series["bare spawn"])
    print(f"ratio filter/bare spawn     : {ratio:.2f}x (goal <= {GOAL}x: {verdict(ratio <= GOAL)})")
    print(f"ratio docker arches/filter  : {median(series['docker arches']) / median(series['filter']):.2f}x")
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("installing a filter without no_new_privs needs root (as the sandbox keepers are)")
    sys.exit(main())

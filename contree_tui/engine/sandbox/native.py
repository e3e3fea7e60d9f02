"""The native keeper (keeper.c): built once per machine with its C compiler, and its spec format.

Built into `$XDG_CACHE_HOME/contree-tui/` (root's own cache; the directory must belong to us and be
writable by no one else, since root executes what is there), named after the source's hash, so an
upgraded source builds anew and a half-written binary is never run (written beside, renamed into place).
Without a compiler, or with CONTREE_TUI_NATIVE_KEEPER=0, keepers are forked Python (launch.Keeper):
slower per run, same behaviour.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from contree_tui.engine.privilege import running_rootless

if TYPE_CHECKING:
    from contree_tui.engine.sandbox.launch import LaunchSpec

SOURCE = Path(__file__).with_name("keeper.c")
ENV_SWITCH = "CONTREE_TUI_NATIVE_KEEPER"
RLIM_INFINITY = (1 << 64) - 1  # Python's resource.RLIM_INFINITY is -1
log = logging.getLogger(__name__)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "contree-tui"


def _private(path: Path) -> bool:
    st = path.stat()
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def keeper_binary(program: bytes) -> str | None:
    """The built keeper's path, with the syscall filter `program` (launch.seccomp_program) built in, building
    it if needed; None when it cannot be had (then Python keepers)."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return None
    try:
        source = SOURCE.read_bytes()
    except OSError:
        return None
    # The syscall filter is built into the binary (no run or keeper pays to receive it): the name hashes
    # both, so a new profile, libseccomp or kernel (the profile's minKernel rules) builds anew.
    digest = hashlib.sha256(source + b"\0" + program).hexdigest()[:16]
    target = _cache_dir() / f"ct-keeper-{digest}"
    try:
        if target.is_file() and _private(target) and _private(target.parent):
            return str(target)
        return _build(target, program)
    except OSError as exc:
        log.warning("native keeper unavailable (%s); using forked Python keepers", exc)
        return None


def _filter_header(program: bytes) -> str:
    """keeper.c's `seccomp_program`, given to the compiler with -include."""
    body = ",".join(str(byte) for byte in program)
    return f"static const unsigned char seccomp_program[] __attribute__((aligned(8))) = {{{body}}};\n"


def _build(target: Path, program: bytes) -> str | None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.warning("no C compiler: using forked Python keepers")
        return None
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not _private(target.parent):
        log.warning("%s is writable by others: not building the native keeper there", target.parent)
        return None
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    header = target.with_name(f".{target.name}.{os.getpid()}.h")
    header.write_text(_filter_header(program))
    try:
        # Static first: no dynamic loader work at each of the thousands of execs; plain if libc.a is missing.
        for flags in (["-static"], []):
            done = subprocess.run([compiler, "-O2", "-Wall", *flags, "-include", str(header), "-o", str(partial),
                                   str(SOURCE)], capture_output=True, text=True, check=False)
            if done.returncode == 0:
                os.chmod(partial, 0o700)
                os.replace(partial, target)
                return str(target)
    finally:
        header.unlink(missing_ok=True)
    partial.unlink(missing_ok=True)
    log.warning("native keeper did not build: %s", done.stderr.strip()[-500:])
    return None


def encode_spec(spec: LaunchSpec) -> bytes:
    """keeper.c's spec: NUL-terminated records, a letter then the value (no value may hold a NUL)."""
    records = [f"L{lower}" for lower in spec.lowers]
    records += [f"U{spec.upper}", f"W{spec.work}", f"M{spec.merged}", f"C{spec.cwd}", f"H{spec.hostname}",
                f"u{spec.uid}", f"g{spec.gid}", f"N{int(spec.network)}", f"X{int(running_rootless())}"]
    records += [f"A{arg}" for arg in spec.argv]
    records += [f"E{key}={value}" for key, value in spec.env.items()]
    records += [f"R{resource}={value if value >= 0 else RLIM_INFINITY}" for resource, value in spec.rlimits.items()]
    if spec.pid_max:
        records.append(f"P{spec.pid_max}")
    if spec.blob_dir is not None:
        records.append(f"B{spec.blob_dir}")
    records += [f"F{f.mode}:{f.uid}:{f.gid}:{f.blob}:{f.path}" for f in spec.files]
    for record in records:
        if "\0" in record:
            raise ValueError(f"a NUL byte cannot be passed to a process: {record[1:]!r}")
    return "".join(f"{record}\0" for record in records).encode("utf-8", "surrogateescape")

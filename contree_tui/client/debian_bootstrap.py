"""A Debian root filesystem built by mmdebstrap from the machine's own apt sources, kept as a tar in the
user's cache: what `contree-tui engine bootstrap debian` imports on a machine with no registry.

The build: `mmdebstrap --variant=minbase --include=… SUITE - SOURCES`, the tar on its stdout, run as the root
of a user namespace of its own (userns_spawn.py: maintainer scripts never run as host root; as a normal user,
the namespace mmdebstrap --mode=unshare makes through newuidmap and /etc/subuid, #14: the same tar, root's
files uid 0 in it, in that user's own cache), from the Debian entries of /etc/apt (apt_sources.py). Packages
are verified by apt against the machine's keyrings, as `apt-get install` would. Measured on a 2-core VM:
DEFAULT_INCLUDES in 34 s (48 s as a normal user), a 158 MB tar of 8,900 files (90-130 s while five other test
suites shared the cores); importing it takes 2-10 s.

The cache: <XDG_CACHE_HOME>/contree-tui/bootstrap/<key>.tar, the key a hash of every input of the build
(suite, mmdebstrap's options: variant, sorted includes, hooks; its version, the apt sources as rendered,
the architecture), so a second bootstrap of the same image is an import only (and the test suite, which
bootstraps the same way, pays the build once per machine). `--refresh` rebuilds (newer packages). The
KEEP_TARBALLS most recently used tars are kept, older ones removed.

The tar is image content: nothing here opens it. It is moved into place and handed to the engine by path
(`rootfs:PATH`), which extracts it in a confined helper like any other import.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from contree_tui.client import apt_sources
from contree_tui.client.userns_spawn import IdRange, UsernsError, maps_host_ids, spawn_as_namespace_root

# What the seeds' Python workflows need with no package index reachable (sandboxes may have no network):
# pip and venv, and the build backends and test runner pip would otherwise download (python -m build
# --no-isolation needs setuptools and wheel; pytest). ~130 MB over minbase.
DEFAULT_INCLUDES = ("python3", "python3-pip", "python3-venv", "python3-setuptools", "python3-wheel",
                    "python3-build", "python3-pytest")
VARIANT = "minbase"
# Debian marks its Python "externally managed" (PEP 668): `pip install x` into the system Python is refused.
# An image is a sandbox, as the python:3.x images the seeds start from (which have no such marker): pip
# installs into it, as there.
PIP_HOOK = 'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED'
# Merged /usr set up as debootstrap does (directory symlinks + usr-is-merged), where the suite knows it
# (bookworm on): without it apt satisfies init-system-helpers' "usrmerge | usr-is-merged" with usrmerge,
# which pulls in perl: +47 MB and +2,500 files in every image. mmdebstrap's own hook, shipped with it.
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/maybe-merged-usr"
# Documentation and translations left out, as Debian's -slim images and mmdebstrap's manual example do
# (copyright files kept): -47 MB and -3,300 files, i.e. a faster import of every bootstrap
SLIM = ("path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*", "path-exclude=/usr/share/locale/*",
        "path-include=/usr/share/locale/locale.alias", "path-exclude=/usr/share/doc/*",
        "path-include=/usr/share/doc/*/copyright")
KEEP_TARBALLS = 4  # ~160 MB each with the default includes
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")  # Debian policy §5.6.1
APT_HINT = "apt-get install mmdebstrap"
# apt's words for a mirror it could not reach (apt-pkg's acquire messages, C locale)
UNREACHABLE = ("Could not resolve", "Temporary failure resolving", "Could not connect", "Unable to connect",
               "Connection timed out", "Network is unreachable", "Connection refused", "No route to host")
# mmdebstrap's "I:" lines worth a line of progress, by their start (mmdebstrap 1.3's wording)
STAGES = (("running apt-get update", "updating package lists"), ("downloading packages", "downloading packages"),
          ("extracting archives", "unpacking"), ("installing essential", "installing essential packages"),
          ("installing remaining", "installing the included packages"), ("creating tarball", "writing the tar"))
TAIL_LINES = 200  # of mmdebstrap's output kept for the error message
NO_SUBIDS_RE = re.compile(r"^W: no entry in /etc/sub[ug]id for (\S+)")  # mmdebstrap 1.3, as a normal user


class BootstrapError(Exception):
    """The bootstrap could not be done; `str()` is the whole message, `exit_code` what the CLI exits with."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class BootstrapSpec:
    suite: str
    includes: tuple[str, ...] = DEFAULT_INCLUDES
    variant: str = VARIANT

    def __post_init__(self) -> None:
        if not apt_sources.SUITE_RE.match(self.suite):
            raise BootstrapError(f"--suite {self.suite!r}: not a Debian suite name (e.g. bookworm)")
        bad = [p for p in self.includes if not PACKAGE_RE.match(p)]
        if bad:
            raise BootstrapError(f"--include: {', '.join(map(repr, bad))} is not a Debian package name")
        object.__setattr__(self, "includes", tuple(sorted(set(self.includes))))


@dataclass(frozen=True)
class Recipe:
    """Everything the tar depends on; its key names the cached tar."""

    spec: BootstrapSpec
    sources: str  # deb822 text given to mmdebstrap; "" = mmdebstrap's default mirror (no Debian sources here)
    uris: tuple[str, ...]
    architecture: str
    mmdebstrap: str  # its path
    mmdebstrap_version: str

    @property
    def key(self) -> str:
        inputs = {"options": self.options(), "suite": self.spec.suite, "sources": self.sources,
                  "arch": self.architecture, "mmdebstrap": self.mmdebstrap_version}
        digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:24]
        return f"debian-{self.spec.suite}-{self.architecture}-{digest}"

    def options(self) -> list[str]:
        """mmdebstrap's options (all but paths): the build's recipe, hence part of the cache key."""
        options = ["--mode=unshare", f"--variant={self.spec.variant}", "--format=tar"]
        if self.spec.includes:
            options.append(f"--include={','.join(self.spec.includes)}")
        if os.path.isdir(MERGED_USR_HOOKS):
            options.append(f"--hook-dir={MERGED_USR_HOOKS}")
        options += [f"--dpkgopt={option}" for option in SLIM]
        if "python3-pip" in self.spec.includes:
            options.append(f"--customize-hook={PIP_HOOK}")
        return options

    def argv(self, sources_path: str | None) -> list[str]:
        argv = [self.mmdebstrap, *self.options(), self.spec.suite, "-"]
        if sources_path:
            argv.append(sources_path)
        return argv


@dataclass(frozen=True)
class Tarball:
    path: Path
    size: int
    cached: bool  # True: found in the cache, nothing was built
    seconds: float  # the build's wall time (0 when cached)


Progress = Callable[[str], None]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "contree-tui" / "bootstrap"


def default_suite() -> str:
    """The host's own suite on Debian (its apt sources serve it), else bookworm."""
    return apt_sources.host_codename() or "bookworm"


def plan(spec: BootstrapSpec, apt_dir: Path = apt_sources.APT_DIR) -> Recipe:
    tool = shutil.which("mmdebstrap")
    if tool is None:
        raise BootstrapError(f"mmdebstrap is not installed: {APT_HINT}", exit_code=2)
    try:
        version = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30,
                                 check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise BootstrapError(f"{tool} --version failed ({exc}); reinstall it: {APT_HINT}", exit_code=2) from None
    sources = apt_sources.debian_sources(spec.suite, apt_sources.host_codename(), apt_sources.read_sources(apt_dir))
    uris = tuple(dict.fromkeys(u for s in sources for u in s.uris))
    return Recipe(spec, apt_sources.render(sources), uris, _architecture(), tool, version)


def _architecture() -> str:
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        machine = os.uname().machine
        return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


async def ensure_tarball(spec: BootstrapSpec, progress: Progress, *, refresh: bool = False,
                         cache: Path | None = None, apt_dir: Path = apt_sources.APT_DIR) -> Tarball:
    """The cached tar for `spec`, built first if missing (or `refresh`). Raises BootstrapError."""
    recipe = plan(spec, apt_dir)
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{recipe.key}.tar"
    with _locked(cache / ".lock"):  # a second bootstrap waits for the first, then finds its tar
        if target.is_file() and not refresh:
            os.utime(target)  # most recently used: kept by _prune
            return Tarball(target, target.stat().st_size, cached=True, seconds=0.0)
        if not recipe.sources:
            progress("no Debian apt sources configured on this machine: using mmdebstrap's default mirror")
        started = time.monotonic()
        await _build(recipe, target, progress)
        seconds = time.monotonic() - started
    _prune(cache, keep=target)
    return Tarball(target, target.stat().st_size, cached=False, seconds=seconds)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _prune(cache: Path, keep: Path) -> None:
    tars = sorted(cache.glob("*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [t for t in tars if t != keep][KEEP_TARBALLS - 1:]:
        with contextlib.suppress(OSError):
            old.unlink()


async def _build(recipe: Recipe, target: Path, progress: Progress) -> None:
    # host root maps the namespace itself; anyone else (a normal user, or uid 0 of a user's own namespace)
    # leaves it to mmdebstrap --mode=unshare, which maps through newuidmap and /etc/subuid (or, as that
    # namespace's uid 0, only unshares mounts and pids: its root is the user already)
    as_root = maps_host_ids()
    ids = IdRange.from_host()
    # mmdebstrap's work dir (the chroot, ~500 MB) and our sources file: in a directory the namespace's root
    # (host uid BASE) owns, since it cannot enter root's home; TMPDIR is where the disk space is meant to be
    staging = Path(tempfile.mkdtemp(prefix="contree-tui-bootstrap-"))
    part = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        sources_path = None
        if recipe.sources:
            sources_path = staging / "debian.sources"  # mmdebstrap reads a mirror argument ending in .sources
            sources_path.write_text(recipe.sources)
            sources_path.chmod(0o644)
        if as_root:
            os.chown(staging, ids.uid_base, ids.gid_base)
        # Not mkdtemp's 0700: as a normal user, mmdebstrap's namespace root is the user's first subordinate id,
        # not the user, and could not enter (it failed with "cannot create …: Permission denied"); and apt
        # downloads as _apt (uid 42 there) when it can read the chroot, else unsandboxed as root, which left
        # its partial/ dirs root's, not _apt's as in Debian's images
        os.chmod(staging, 0o755)
        env = {**os.environ, "TMPDIR": str(staging), "HOME": str(staging), "LC_ALL": "C.UTF-8"}
        env.pop("DEBIAN_FRONTEND", None)  # mmdebstrap sets it for its chroot itself
        argv = recipe.argv(str(sources_path) if sources_path else None)
        progress(f"mmdebstrap {recipe.spec.suite} ({recipe.spec.variant}"
                 f"{', ' + ','.join(recipe.spec.includes) if recipe.spec.includes else ''}) from "
                 f"{', '.join(recipe.uris) or 'deb.debian.org'}")
        with open(part, "wb") as out:
            try:
                if as_root:
                    proc = await spawn_as_namespace_root(argv, ids, env=env, stdout=out.fileno(),
                                                         stderr=asyncio.subprocess.PIPE, cwd=str(staging))
                else:  # mmdebstrap makes its own user namespace (newuidmap and /etc/subuid)
                    proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=out.fileno(),
                                                                stderr=asyncio.subprocess.PIPE,
                                                                stdin=asyncio.subprocess.DEVNULL, cwd=str(staging))
            except UsernsError as exc:
                raise BootstrapError(f"bootstrap: {exc}") from None
            try:
                tail = await _read_progress(proc, progress)
                code = await proc.wait()
            except BaseException:  # cancelled (Ctrl-C): the build stops with us
                if proc.returncode is None:
                    proc.terminate()
                    try:
                        await asyncio.wait_for(proc.wait(), 10)
                    except TimeoutError:
                        proc.kill()
                        await proc.wait()
                raise
            out.flush()
            os.fsync(out.fileno())
        if code != 0:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # Ctrl-C reached mmdebstrap first: an interruption
                raise asyncio.CancelledError
            raise BootstrapError(failure_reason(tail, recipe.uris, code))
        os.chmod(part, 0o644)
        os.rename(part, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        shutil.rmtree(staging, ignore_errors=True)


async def _read_progress(proc: asyncio.subprocess.Process, progress: Progress) -> list[str]:
    """mmdebstrap's stderr, line by line: its stages become progress lines; the last lines are returned."""
    assert proc.stderr is not None
    tail: list[str] = []
    while True:
        raw = await proc.stderr.readline()
        if not raw:
            return tail
        line = raw.decode(errors="replace").rstrip()
        tail.append(line)
        del tail[:-TAIL_LINES]
        if line.startswith("I: "):
            for start, text in STAGES:
                if line[3:].startswith(start):
                    progress(text)


def failure_reason(lines: list[str], uris: tuple[str, ...], code: int) -> str:
    """The cause of a failed build, in mmdebstrap's (and apt's) own words."""
    for line in lines:
        if found := NO_SUBIDS_RE.match(line):  # mmdebstrap's own error after it is only "failed to parse"
            return no_subordinate_ids(found.group(1))
    unreachable = next((line for line in lines if any(word in line for word in UNREACHABLE)), None)
    if unreachable:
        where = ", ".join(uris) or "deb.debian.org"
        return f"bootstrap: the apt sources ({where}) could not be reached: {unreachable.strip().removeprefix('W: ')}"
    errors = list(dict.fromkeys(line[3:] for line in lines if line.startswith("E: ")))
    # apt's reason ("Unable to locate package x", "The repository … does not have a Release file") comes
    # before mmdebstrap's summary of the command that failed; show apt's first
    reasons = [e for e in errors if not _is_summary(e)] or errors
    if reasons:
        return "bootstrap: mmdebstrap failed: " + "; ".join(_clip(r) for r in reasons[:4])
    last = [line for line in lines if line.strip()][-3:]
    return f"bootstrap: mmdebstrap exited with status {code}" + (f": {' | '.join(last)}" if last else "")


def no_subordinate_ids(user: str) -> str:
    """What a normal user without a subordinate range reads, with what an administrator runs once."""
    return (f"bootstrap: {user} has no subordinate ids in /etc/subuid and /etc/subgid, which mmdebstrap needs to "
            f"build as a normal user (the package files belong to root and system users); an administrator "
            f"gives them once: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user} "
            f"(any 65536 ids no other user has)")


def _clip(text: str, limit: int = 400) -> str:
    """A reason kept readable: mmdebstrap quotes whole command lines (dpkg --install with 60 .deb paths)."""
    return text if len(text) <= limit else text[:limit] + "…"


def _is_summary(error: str) -> bool:
    return bool(re.match(r"^(apt-get|apt|dpkg|mmdebstrap|run_)\S*.* failed\b", error)) or error.startswith(
        ("apt-get update failed", "apt-get --yes", "setup failed", "run_setup"))

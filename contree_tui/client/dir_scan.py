"""The local half of a directory sync: walk the folder, decide what belongs, hash what changed.

Blocking code on purpose (the Syncer runs it in a worker thread): a walk is a few thousand syscalls, and
one thread hop for the whole scan is cheaper than one per file.

What is synced — the rule for links and special files:

- Regular files, with their permission bits (`mode & 0o777`; setuid/setgid/sticky are dropped) and not their
  owner: files land in the sandbox owned by root, as the spec's `files` default has it.
- A symlink is followed only if it resolves (all links along the way) to a regular file *inside* the
  synced folder: the file's content and mode are synced at the link's path. A symlink that leads outside the
  folder, that dangles, that points into an excluded path, or that points at a directory is skipped with a
  warning (logged once per path and reported in `skipped`). The `files` map of a run cannot carry a link,
  following one outside would ship files the user did not choose, and following directory links could
  duplicate or loop.
- Sockets, FIFOs and devices are skipped with a warning. So are names that are not valid UTF-8 (the wire is
  JSON) and files that cannot be read.
- Directories are not entries: an empty directory does not reach the sandbox.
- Every file is opened with O_NOFOLLOW | O_NONBLOCK and checked to be a regular file on the open
  descriptor, so a file swapped for a link or a FIFO between the walk and the read is neither followed nor
  waited on.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from contree_tui.client.excludes import GITIGNORE, Excludes
from contree_tui.client.sync_cache import RACY_NS, StatEntry

log = logging.getLogger("contree_tui.client.sync")

OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
HASH_ATTEMPTS = 3  # a file still changing after three reads is synced as read, and re-hashed next time


class LocalFile(NamedTuple):  # a tuple: one per file per scan, so construction cost counts
    rel: str  # path below the synced folder, '/'-separated
    sha256: str
    size: int
    mode: int  # permission bits
    source: str  # absolute path to read it from (the link target for a followed symlink)


@dataclass(frozen=True, slots=True)
class Skipped:
    rel: str
    reason: str


@dataclass
class ScanOutcome:
    """`found` replaces everything the previous scan had at or below each path in `cleared` ("" = all)."""

    found: dict[str, LocalFile] = field(default_factory=dict)
    cleared: set[str] = field(default_factory=set)
    skipped: list[Skipped] = field(default_factory=list)
    scanned: int = 0
    hashed: int = 0
    hashed_bytes: int = 0
    rules_changed: bool = False  # a .gitignore changed: a partial scan is not enough

    @property
    def full(self) -> bool:
        return "" in self.cleared


class NotRegular(OSError):
    pass


def open_regular(path: str) -> int:
    """An fd on `path` if it is (still) a regular file; never follows a final symlink, never blocks."""
    fd = os.open(path, OPEN_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegular(f"{path} is no longer a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def hash_file(path: str) -> tuple[str, os.stat_result, bool]:
    """(sha256, stat of what was read, stable): stable means the file did not change while being read."""
    digest = ""
    after: os.stat_result | None = None
    for _ in range(HASH_ATTEMPTS):
        fd = open_regular(path)
        with os.fdopen(fd, "rb") as handle:
            before = os.fstat(fd)
            digest = hashlib.file_digest(handle, "sha256").hexdigest()  # streams in chunks
            after = os.fstat(fd)
        if (before.st_size, before.st_mtime_ns, before.st_ctime_ns) == (
                after.st_size, after.st_mtime_ns, after.st_ctime_ns):
            return digest, after, True
    assert after is not None
    return digest, after, False


def _special_kind(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


class DirScanner:
    """Scans one folder; keeps what it learned between scans (stat cache, link targets, warnings given)."""

    def __init__(self, root: Path, excludes: Excludes, stats: dict[str, StatEntry] | None) -> None:
        self.root = str(root)
        self.excludes = excludes
        self.stats = stats  # None: no stat cache, every file is hashed on every scan
        self.stat_upserts: dict[str, StatEntry] = {}  # to persist, then cleared by the owner
        self.links_to: dict[str, set[str]] = {}  # target rel -> links synced with its content
        self._warned: set[Skipped] = set()
        self._noted: set[str] = set()

    # -- entry points --------------------------------------------------------------------------------

    def scan_all(self) -> ScanOutcome:
        outcome = ScanOutcome(cleared={""})
        self.links_to.clear()
        self._walk("", outcome)
        return outcome

    def scan_paths(self, rels: Iterable[str]) -> ScanOutcome:
        """Re-examine just these paths (files or directories, present or gone), as a watcher reports them."""
        outcome = ScanOutcome()
        self._noted: set[str] = set()  # directories whose .gitignore was checked during this call
        todo = set(rels)
        for rel in list(todo):  # a followed link changes with its target
            for target, links in self.links_to.items():
                if target == rel or target.startswith(rel + "/"):
                    todo |= links
        for rel in sorted(todo):
            if rel.rpartition("/")[2] == GITIGNORE:
                outcome.rules_changed = True
                return outcome
            self._scan_one(rel, outcome)
        return outcome

    # -- the walk ------------------------------------------------------------------------------------

    def _abs(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def _walk(self, start: str, outcome: ScanOutcome) -> None:
        stack = [start]
        excluded = self.excludes.excluded
        while stack:
            dir_rel = stack.pop()
            try:
                with os.scandir(self._abs(dir_rel)) as iterator:
                    entries = list(iterator)
            except OSError as exc:
                self._skip(outcome, dir_rel or ".", f"cannot list the directory: {exc.strerror}")
                continue
            gitignore = next((e for e in entries if e.name == GITIGNORE), None)
            try:
                gitignore_stat = gitignore.stat() if gitignore is not None and gitignore.is_file() else None
            except OSError:
                gitignore_stat = None
            self.excludes.note_directory(dir_rel, gitignore_stat)
            prefix = f"{dir_rel}/" if dir_rel else ""
            # The hot loop of every full scan: ~65 ms of syscalls for 10,000 files here, so the Python around
            # them is kept flat (memo lookups and the unchanged-file test inlined, no per-file method calls).
            memo, stats, found = self.excludes.memo, self.stats, outcome.found
            unchanged = 0
            for entry in entries:
                name = entry.name
                rel = prefix + name
                if not name.isascii() and not _utf8(name):
                    self._skip(outcome, rel.encode("utf-8", "replace").decode(), "the name is not valid UTF-8")
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if not excluded(rel, True):
                        stack.append(rel)
                    continue
                verdict = memo.get(rel)
                if verdict is None:
                    verdict = excluded(rel, False)
                if verdict:
                    continue
                if entry.is_symlink():
                    self._link(rel, entry.path, outcome)
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    self._skip(outcome, rel, _special_kind(st.st_mode))
                    continue
                if stats is not None:
                    cached = stats.get(rel)  # StatEntry.matches and .racy, inlined
                    if (cached is not None and cached[0] == st.st_ino and cached[1] == st.st_size
                            and cached[2] == st.st_mtime_ns and cached[3] == st.st_ctime_ns
                            and max(cached[2], cached[3]) < cached[5] - RACY_NS):
                        found[rel] = LocalFile(rel, cached[4], cached[1], st.st_mode & 0o777, entry.path)
                        unchanged += 1
                        continue
                self._file(rel, entry.path, st, outcome)
            outcome.scanned += unchanged

    def _scan_one(self, rel: str, outcome: ScanOutcome) -> None:
        parts = rel.split("/")
        for depth in range(len(parts)):  # the rules of every directory above it, and none may be excluded
            base = "/".join(parts[:depth])
            if base and self.excludes.excluded(base, True):
                return
            if base in self._noted:
                continue
            self._noted.add(base)
            try:
                gitignore_stat: os.stat_result | None = os.stat(f"{self._abs(base)}/{GITIGNORE}")
            except OSError:
                gitignore_stat = None
            if self.excludes.note_directory(base, gitignore_stat):
                outcome.rules_changed = True
        path = self._abs(rel)
        outcome.cleared.add(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self.excludes.forget_below(rel)
            return
        except OSError as exc:
            self._skip(outcome, rel, f"cannot stat: {exc.strerror}")
            return
        if stat.S_ISDIR(st.st_mode):
            if not self.excludes.excluded(rel, True):
                self._walk(rel, outcome)
        elif self.excludes.excluded(rel, False):
            return
        elif stat.S_ISLNK(st.st_mode):
            self._link(rel, path, outcome)
        elif stat.S_ISREG(st.st_mode):
            self._file(rel, path, st, outcome)
        else:
            self._skip(outcome, rel, _special_kind(st.st_mode))

    def _link(self, rel: str, path: str, outcome: ScanOutcome) -> None:
        try:
            real = os.path.realpath(path, strict=True)
        except OSError:
            self._skip(outcome, rel, "dangling symlink")
            return
        if not real.startswith(self.root + "/"):
            self._skip(outcome, rel, f"symlink to {real}, outside the synced folder")
            return
        target = real[len(self.root) + 1:]
        parts = target.split("/")
        if any(self.excludes.excluded("/".join(parts[:i + 1]), i < len(parts) - 1) for i in range(len(parts))):
            self._skip(outcome, rel, f"symlink into an excluded path ({target})")
            return
        try:
            st = os.stat(real)
        except OSError as exc:
            self._skip(outcome, rel, f"cannot stat the link target: {exc.strerror}")
            return
        if stat.S_ISDIR(st.st_mode):
            self._skip(outcome, rel, "symlink to a directory (not followed)")
            return
        if not stat.S_ISREG(st.st_mode):
            self._skip(outcome, rel, f"symlink to {_special_kind(st.st_mode)}")
            return
        self.links_to.setdefault(target, set()).add(rel)
        self._file(rel, real, st, outcome)

    def _file(self, rel: str, path: str, st: os.stat_result, outcome: ScanOutcome) -> None:
        outcome.scanned += 1
        stats = self.stats
        if stats is not None:
            cached = stats.get(rel)
            # inlined StatEntry.matches / .racy: this line runs for every file of every full scan
            if (cached is not None and cached[0] == st.st_ino and cached[1] == st.st_size
                    and cached[2] == st.st_mtime_ns and cached[3] == st.st_ctime_ns
                    and max(cached[2], cached[3]) < cached[5] - RACY_NS):
                outcome.found[rel] = LocalFile(rel, cached[4], cached[1], st.st_mode & 0o777, path)
                return
        hashed_at = time.time_ns()
        try:
            digest, st, stable = hash_file(path)
        except FileNotFoundError:
            return  # gone since the walk: it is simply not there
        except OSError as exc:
            self._skip(outcome, rel, f"cannot read: {exc.strerror or exc}")
            return
        outcome.hashed += 1
        outcome.hashed_bytes += st.st_size
        if self.stats is not None:
            if stable:
                entry = StatEntry(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, digest, hashed_at)
                self.stats[rel] = entry
                self.stat_upserts[rel] = entry
            else:
                self.stats.pop(rel, None)
        outcome.found[rel] = LocalFile(rel, digest, st.st_size, st.st_mode & 0o777, path)

    def _skip(self, outcome: ScanOutcome, rel: str, reason: str) -> None:
        skipped = Skipped(rel, reason)
        outcome.skipped.append(skipped)
        if skipped not in self._warned:
            self._warned.add(skipped)
            log.warning("sync: skipping %s: %s", rel, reason)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

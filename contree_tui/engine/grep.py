"""Content search in an image (`GET /inspect/{uuid}/grep`): ripgrep's result shape, Python's `re`.

`search` runs inside the confined inspect helper (chrooted into the image, see inspect.py), so every path
it sees is the image's own. Like ripgrep: symlinks are never followed below a root, hidden files are
searched, `.gitignore` files mean nothing, files with a NUL byte are skipped, and results come file by
file in path order. The patterns are Python regular expressions, which accept the common subset of Rust's
syntax; a deadline (SIGALRM, which `re` honours mid-match) bounds pathological patterns.
"""

from __future__ import annotations

import fnmatch
import os
import re
import signal
import stat
from collections import deque
from dataclasses import dataclass
from typing import Any

from contree_tui.engine.models import EngineError, NotFound

MAX_PATTERNS = 16
MAX_PATTERN_CHARS = 1024
MAX_PATHS = 16
MAX_GLOBS = 64
MAX_COUNT = 10_000
MAX_TOTAL = 10_000
DEFAULT_MAX_TOTAL = 1000
MAX_CONTEXT = 50
LINE_TEXT_BYTES = 4096
MAX_FILE_BYTES = 256 << 20  # larger files are skipped, like the binary ones
MAX_SUBMATCHES = 64
CASES = ("sensitive", "insensitive", "smart")


@dataclass(frozen=True)
class GrepQuery:
    patterns: tuple[str, ...]
    paths: tuple[str, ...] = ("/",)
    globs: tuple[str, ...] = ()
    case: str = "sensitive"
    before: int = 0
    after: int = 0
    max_count: int | None = None
    max_total: int = DEFAULT_MAX_TOTAL
    deadline: float = 20.0  # seconds; the search stops and reports `truncated` past it

    def validate(self) -> GrepQuery:
        """Refuse what the spec refuses (EngineError, 400), and compile the patterns once to check them."""
        if not self.patterns:
            raise EngineError("pattern: at least one is required")
        if len(self.patterns) > MAX_PATTERNS:
            raise EngineError(f"pattern: at most {MAX_PATTERNS}")
        if any(len(p) > MAX_PATTERN_CHARS for p in self.patterns):
            raise EngineError(f"pattern: at most {MAX_PATTERN_CHARS} characters each")
        if not self.paths or len(self.paths) > MAX_PATHS:
            raise EngineError(f"path: between 1 and {MAX_PATHS}")
        for path in self.paths:
            if not path.startswith("/") or "\0" in path:
                raise EngineError(f"path: {path!r} is not an absolute path")
        if len(self.globs) > MAX_GLOBS:
            raise EngineError(f"glob: at most {MAX_GLOBS}")
        if self.case not in CASES:
            raise EngineError(f"case: one of {', '.join(CASES)}")
        for name, value in (("before", self.before), ("after", self.after)):
            if not 0 <= value <= MAX_CONTEXT:
                raise EngineError(f"{name}: between 0 and {MAX_CONTEXT}")
        if self.max_count is not None and not 1 <= self.max_count <= MAX_COUNT:
            raise EngineError(f"max_count: between 1 and {MAX_COUNT}")
        if not 1 <= self.max_total <= MAX_TOTAL:
            raise EngineError(f"max_total: between 1 and {MAX_TOTAL}")
        compile_patterns(self.patterns, self.case)
        return self


def compile_patterns(patterns: tuple[str, ...], case: str) -> re.Pattern[bytes]:
    """The patterns OR-ed into one bytes regex; `smart` is insensitive unless a pattern has an upper-case letter."""
    insensitive = case == "insensitive" or (case == "smart" and not any(c.isupper() for p in patterns for c in p))
    flags = re.MULTILINE | (re.IGNORECASE if insensitive else 0)
    try:
        return re.compile(b"|".join(b"(?:" + p.encode() + b")" for p in patterns), flags)
    except (re.error, OverflowError, RecursionError) as exc:
        raise EngineError(f"pattern: not a valid regular expression: {exc}") from None


class _Deadline(Exception):
    pass


class _Budget(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _Deadline


class _Globs:
    """ripgrep -g: a glob without `/` matches the base name, one with `/` the path below the root; `!` excludes.
    With any including glob, a file must match one of them; excluding globs also prune directories."""

    def __init__(self, globs: tuple[str, ...]) -> None:
        self.include = [g for g in globs if g and not g.startswith("!")]
        self.exclude = [g[1:] for g in globs if g.startswith("!") and len(g) > 1]

    @staticmethod
    def _match(glob: str, relpath: str, is_dir: bool) -> bool:
        if glob.endswith("/"):
            if not is_dir:
                return False
            glob = glob.rstrip("/")
        glob = glob.lstrip("/")
        if "/" in glob:
            return fnmatch.fnmatchcase(relpath, glob) or fnmatch.fnmatchcase(relpath, glob.removeprefix("**/"))
        return fnmatch.fnmatchcase(os.path.basename(relpath), glob)

    def skip_dir(self, relpath: str) -> bool:
        return any(self._match(g, relpath, True) for g in self.exclude)

    def skip_file(self, relpath: str) -> bool:
        if any(self._match(g, relpath, False) for g in self.exclude):
            return True
        return bool(self.include) and not any(self._match(g, relpath, False) for g in self.include)


class _Search:
    def __init__(self, query: GrepQuery) -> None:
        self.query = query
        self.regex = compile_patterns(query.patterns, query.case)
        self.globs = _Globs(query.globs)
        self.matches: list[dict[str, Any]] = []
        self.total = 0
        self.truncated = False

    def run(self) -> None:
        for root in self.query.paths:
            root = os.path.normpath(root)
            if os.path.isdir(root):  # a root itself is followed, like ripgrep's explicit paths
                self._walk(root)
            elif os.path.isfile(root):
                self._file(root, os.path.basename(root), filtered=False)

    def _walk(self, root: str) -> None:
        """Depth first in byte order of names (files and directories interleaved, like `rg --sort path`)."""
        stack = [root]
        while stack:
            entry = stack.pop()
            if entry != root:
                relpath = os.path.relpath(entry, root)
                if not os.path.isdir(entry) or os.path.islink(entry):
                    self._file(entry, relpath, filtered=True)
                    continue
                if self.globs.skip_dir(relpath):
                    continue
            try:
                names = sorted(os.listdir(entry), reverse=True)
            except OSError:
                continue
            stack.extend(os.path.join(entry, name) for name in names)

    def _file(self, path: str, relpath: str, *, filtered: bool) -> None:
        if filtered and self.globs.skip_file(relpath):
            return
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
                return
            with os.fdopen(os.dup(fd), "rb") as fh:
                data = fh.read()
        except OSError:
            return
        finally:
            os.close(fd)
        if b"\0" in data or not self.regex.search(data):
            return
        self._lines(path, data)

    def _lines(self, path: str, data: bytes) -> None:
        query = self.query
        before: deque[tuple[int, int, bytes]] = deque(maxlen=query.before or 1)
        after_left = 0
        in_file = 0
        offset = 0
        lines = data.splitlines(keepends=True) if b"\r" not in data else _split_lf(data)
        for number, line in enumerate(lines, 1):
            start = offset
            offset += len(line)
            body = line[:-1] if line.endswith(b"\n") else line
            limited = query.max_count is not None and in_file >= query.max_count
            found = None if limited else list(self.regex.finditer(body))
            if found:
                if self.total >= query.max_total:
                    self.truncated = True
                    raise _Budget
                if query.before:
                    while before:
                        self._emit(path, *before.popleft(), [], "context")
                self._emit(path, number, start, line, found, "match")
                self.total += 1
                in_file += 1
                after_left = query.after
            elif after_left > 0:
                self._emit(path, number, start, line, [], "context")
                after_left -= 1
            elif limited:
                return  # ripgrep stops reading a file after its last allowed match and that match's context
            elif query.before:
                before.append((number, start, line))

    def _emit(self, path: str, number: int, offset: int, line: bytes, found: list[re.Match[bytes]],
              kind: str) -> None:
        self.matches.append({
            "path": path, "line_number": number, "absolute_offset": offset,
            "line_text": line[:LINE_TEXT_BYTES].decode("utf-8", "replace"), "line_bytes": len(line),
            "submatches": [{"text": m.group().decode("utf-8", "replace"), "start": m.start(), "end": m.end()}
                           for m in found[:MAX_SUBMATCHES]],
            "type": kind,
        })


def _split_lf(data: bytes) -> list[bytes]:
    """Lines split on \\n only (bytes.splitlines also splits on \\r, which grep tools do not)."""
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def search(query: GrepQuery) -> dict[str, Any]:
    """Run `query` against the current root; a missing root path is a NotFound."""
    for root in query.paths:
        if not os.path.exists(root):
            raise NotFound(f"{root}: no such file or directory")
    run = _Search(query)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, query.deadline)
    try:
        run.run()
    except _Deadline:
        run.truncated = True
    except _Budget:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return {"path": query.paths[0], "patterns": list(query.patterns), "matches": run.matches,
            "truncated": run.truncated}

"""Content search in an image (`GET /inspect/{uuid}/grep`): ripgrep's result shape, RE2's linear time.

`search` runs inside the confined inspect helper (the image is its root, see inspect.py), so every path
it sees is the image's own. Like ripgrep: symlinks are never followed below a root, hidden files are
searched, `.gitignore` files mean nothing, files with a NUL byte are skipped, and results come file by
file in path order; anything but a regular file (a FIFO, a device) is skipped without being read.

The patterns are RE2 (google-re2), whose syntax is Rust regex's (the spec's engine, ripgrep's default)
and whose matching is linear in the input: Python's backtracking `re` spent 20 s on `(a*)*b` over 30 kB of
`a`s, RE2 0.1 ms. Like ripgrep's default engine it has no backreferences or look-around, and refuses them.
A deadline (SIGALRM) still bounds a search over a very large tree.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import signal
import stat
from dataclasses import dataclass
from typing import Any

import re2

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


_LOOKAROUND = ("invalid perl operator: (?=", "invalid perl operator: (?!", "invalid perl operator: (?<=",
               "invalid perl operator: (?<!")


def _refusal(pattern: str, error: str) -> EngineError:
    if any(error.startswith(prefix) for prefix in _LOOKAROUND):
        reason = "look-around is not supported (linear-time matching, as in ripgrep's default engine)"
    elif error.startswith("invalid escape sequence: \\") and error[-1:].isdigit():
        reason = "backreferences are not supported (linear-time matching, as in ripgrep's default engine)"
    else:
        reason = f"not a valid regular expression: {error}"
    return EngineError(f"pattern `{pattern}`: {reason}")


def _options(insensitive: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would also print each refused pattern on the engine's stderr
    options.never_capture = True  # only whole matches are reported; groups cost matching time
    options.case_sensitive = not insensitive
    return options


def compile_patterns(patterns: tuple[str, ...], case: str) -> Any:
    """The patterns OR-ed into one bytes regex (RE2, multi-line); `smart` is insensitive unless a pattern
    has an upper-case letter. A refused pattern is named in the EngineError (400)."""
    insensitive = case == "insensitive" or (case == "smart" and not any(c.isupper() for p in patterns for c in p))
    options = _options(insensitive)
    for pattern in patterns:  # one by one first, so an error names its pattern
        try:
            re2.compile(pattern.encode(), options)
        except re2.error as exc:
            raise _refusal(pattern, _text(exc)) from None
    try:
        return re2.compile(b"(?m)" + b"|".join(b"(?:" + p.encode() + b")" for p in patterns), options)
    except re2.error as exc:
        raise EngineError(f"pattern: the patterns together are not a valid regular expression: {_text(exc)}") from None


def _text(exc: Exception) -> str:
    message = exc.args[0] if exc.args else exc
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)


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
        try:  # O_NONBLOCK: opening a FIFO for reading would wait for a writer, forever
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | (os.O_NOFOLLOW if filtered else 0))
        except OSError:
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
                return
            with os.fdopen(os.dup(fd), "rb") as fh:
                data = fh.read(MAX_FILE_BYTES)
        except OSError:
            return
        finally:
            os.close(fd)
        if b"\0" not in data:
            _FileScan(self, path, data).run()

    def emit(self, path: str, number: int, offset: int, line: bytes, found: list[Any], kind: str) -> None:
        self.matches.append({
            "path": path, "line_number": number, "absolute_offset": offset,
            "line_text": line[:LINE_TEXT_BYTES].decode("utf-8", "replace"), "line_bytes": len(line),
            "submatches": [{"text": m.group().decode("utf-8", "replace"), "start": m.start() - offset,
                            "end": m.end() - offset} for m in found],
            "type": kind,
        })


class _FileScan:
    """One file's matches and context lines, in time linear in its size: RE2 jumps from one matching line
    to the next over the whole buffer; only lines that are reported are ever cut out (splitting a file into
    lines first cost a Python object per line, 10 GB for 256 MB of empty lines)."""

    def __init__(self, search: _Search, path: str, data: bytes) -> None:
        self.search, self.query, self.path, self.data = search, search.query, path, data
        self.counted_to, self.counted_lines = 0, 1  # line number at offset counted_to
        self.emitted_to = 0  # end of the last reported line: context never repeats a line

    def number(self, offset: int) -> int:
        self.counted_lines += self.data.count(b"\n", self.counted_to, offset)
        self.counted_to = offset
        return self.counted_lines

    def line_end(self, start: int) -> int:
        end = self.data.find(b"\n", start)
        return len(self.data) if end < 0 else end + 1

    def matches_in(self, start: int, end: int) -> list[Any]:
        body_end = end - 1 if self.data[end - 1:end] == b"\n" else end
        return list(itertools.islice(self.search.regex.finditer(self.data, start, body_end), MAX_SUBMATCHES))

    def report(self, start: int, end: int, found: list[Any], kind: str) -> None:
        self.search.emit(self.path, self.number(start), start, self.data[start:end], found, kind)
        self.emitted_to = end

    def before_context(self, start: int) -> None:
        starts: list[int] = []
        while len(starts) < self.query.before and start > self.emitted_to:
            start = self.data.rfind(b"\n", self.emitted_to, start - 1) + 1 or self.emitted_to
            starts.append(start)
        for line_start in reversed(starts):
            self.report(line_start, self.line_end(line_start), [], "context")

    def run(self) -> None:
        query, data, size = self.query, self.data, len(self.data)
        pos, after_left, in_file = 0, 0, 0
        while pos < size:
            limited = query.max_count is not None and in_file >= query.max_count
            if limited and after_left == 0:
                return  # ripgrep stops reading a file after its last allowed match and that match's context
            if after_left > 0:  # line by line while context is owed
                end = self.line_end(pos)
                found = [] if limited else self.matches_in(pos, end)
                if not found:
                    self.report(pos, end, [], "context")
                    after_left -= 1
                    pos = end
                    continue
                start = pos
            else:
                first = self.search.regex.search(data, pos)
                if first is None:
                    return
                start = data.rfind(b"\n", pos, first.start()) + 1 or pos
                end = self.line_end(start)
                found = self.matches_in(start, end)
                if not found:  # the match ran across a newline: no match within the line, like ripgrep
                    pos = end
                    continue
            if self.search.total >= query.max_total:
                self.search.truncated = True
                raise _Budget
            self.before_context(start)
            self.report(start, end, found, "match")
            self.search.total += 1
            in_file += 1
            after_left = query.after
            pos = end


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

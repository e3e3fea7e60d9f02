"""What the word under the command bar's cursor (the line's last word) can be completed to, and from what:
verb names, on/off, tags of the lineage, paths inside the working snapshot, local paths (`:download`'s
DEST). Pure: the bar's suggester fetches the candidates (an inspect listing, a local directory) and asks
here how to fold them into the line.
"""

from __future__ import annotations

import ast
import enum
import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from contree_tui.tui.verbs import PARALLEL_SEPARATOR, VERBS, verb_name


class Kind(enum.Enum):
    VERB = "verb"
    CHOICE = "choice"  # on / off
    TAG = "tag"
    IMAGE_PATH = "image-path"  # a file or directory in the working snapshot
    IMAGE_DIR = "image-dir"  # a directory in the working snapshot (`:cd`)
    LOCAL_PATH = "local-path"  # a path in the local folder (`:download PATH DEST`)
    PIPELINE_FUNC = "pipeline-func"  # `:pipeline FILE:FUNC`, past the colon: FILE's functions


@dataclass(frozen=True)
class Slot:
    """The word being typed: what kind of thing it names and where it starts in the line."""

    kind: Kind
    word: str
    start: int


_ARGUMENT_KINDS: dict[str, tuple[Kind, ...]] = {
    "tag": (Kind.TAG,), "untag": (Kind.TAG,), "cd": (Kind.IMAGE_DIR,), "disposable": (Kind.CHOICE,),
    "network": (Kind.CHOICE,), "sync": (Kind.CHOICE,), "download": (Kind.IMAGE_PATH, Kind.LOCAL_PATH),
    "pipeline": (Kind.LOCAL_PATH,),
}
CHOICES = ("on", "off")


def slot_for(line: str) -> Slot | None:
    """The slot at the end of `line`, or None where nothing is completed."""
    if not line:
        return None
    start = max(line.rfind(" "), line.rfind("\t")) + 1
    word = line[start:]
    if start == 0:
        if line.startswith(":"):
            if len(line) > 1 and not line[1].isalpha():
                return None  # `:;true`, `: > file`: the shell's own `:`
            return Slot(Kind.VERB, word[1:], 1)
        # the bare first word: a verb, or a program (not completed: the image's PATH is not listed)
        return Slot(Kind.VERB, word, 0) if line[0].isalpha() else None
    verb = verb_name(line)
    if verb is not None:
        if verb == "parallel":
            return _shell_slot(word, start)
        kinds = _ARGUMENT_KINDS.get(verb)
        position = len(line[:start].split()) - 1  # arguments before this one
        if kinds is None or position >= len(kinds):
            return None
        if verb == "pipeline" and ":" in word:
            return Slot(Kind.PIPELINE_FUNC, word, start)
        return Slot(kinds[position], word, start)
    return _shell_slot(word, start)


def _shell_slot(word: str, start: int) -> Slot | None:
    """In a shell command, only absolute paths are completed: a relative word may be anything."""
    if word.startswith(PARALLEL_SEPARATOR):
        return None
    if "=" in word and not word.startswith("/"):  # --out=/tmp/x, VAR=/usr/bin
        offset = word.index("=") + 1
        word, start = word[offset:], start + offset
    return Slot(Kind.IMAGE_PATH, word, start) if word.startswith("/") else None


def static_candidates(slot: Slot, tags: Iterable[str] = ()) -> list[str]:
    """Candidates that need no listing: verbs, on/off, tags."""
    if slot.kind is Kind.VERB:
        return list(VERBS)
    if slot.kind is Kind.CHOICE:
        return list(CHOICES)
    if slot.kind is Kind.TAG:
        return sorted(set(tags))
    return []


PIPELINE_TYPES = {"Serial", "Parallel", "Exec", "Node"}


def pipeline_functions(source: str) -> list[str]:
    """The functions FILE:FUNC may name, read from the file's text (not imported: completing runs no user
    code): its top-level public functions; those annotated to return a Serial/Parallel/Exec/Node when any are
    (the others are its steps, `sieve` beside `primes_less_than`)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found = [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
             and not node.name.startswith("_")]
    builders = [node.name for node in found
                if node.returns is not None and PIPELINE_TYPES & set(ast.unparse(node.returns).replace(".", " ")
                                                                     .replace("|", " ").split())]
    return builders or [node.name for node in found]


@dataclass(frozen=True)
class PathWord:
    """A path being typed, split into the directory to list and the name begun in it."""

    directory: str  # absolute (image) or as given (local), to list
    typed_dir: str  # the directory part exactly as typed ("", "usr/", "/usr/")
    base: str  # the start of the name being typed


def split_image_path(word: str, cwd: str = "/") -> PathWord:
    """`/usr/li` -> list /usr, complete `li`; relative words are under `cwd` (the runs' working directory)."""
    typed_dir, base = word.rsplit("/", 1) if "/" in word else ("", word)
    if "/" in word:
        typed_dir += "/"
    directory = posixpath.normpath(posixpath.join(cwd or "/", typed_dir or "."))
    return PathWord(directory if directory.startswith("/") else "/" + directory, typed_dir, base)


def split_local_path(word: str) -> PathWord:
    typed_dir, base = word.rsplit("/", 1) if "/" in word else ("", word)
    if "/" in word:
        typed_dir += "/"
    return PathWord(os.path.expanduser(typed_dir) or ".", typed_dir, base)


def path_candidates(word: PathWord, entries: Iterable[tuple[str, bool]], *, dirs_only: bool = False) -> list[str]:
    """Whole words for the entries (name, is_dir) of `word.directory` that start with what was typed;
    directories end in `/` so the next tab goes on into them. Hidden entries only when a `.` was typed."""
    found = []
    for name, is_dir in entries:
        if not name.startswith(word.base) or name in (".", ".."):
            continue
        if name.startswith(".") and not word.base.startswith("."):
            continue
        if dirs_only and not is_dir:
            continue
        found.append(word.typed_dir + name + ("/" if is_dir else ""))
    return sorted(found)


def best_completion(word: str, candidates: Iterable[str]) -> str | None:
    """What to put in place of `word`: the one match; with several, their common start when it adds
    something, else the first (tab takes it, typing more narrows it); None when nothing matches."""
    matches = sorted(c for c in candidates if c.startswith(word) and c != word)
    if not matches:
        return None
    if len(matches) == 1:
        return matches[0]
    common = os.path.commonprefix(matches)  # noqa: RUF071 - character-wise is what completion wants
    return common if len(common) > len(word) else matches[0]


def complete_line(line: str, slot: Slot, candidates: Iterable[str]) -> str | None:
    """`line` with its last word completed, or None."""
    done = best_completion(slot.word, candidates)
    if done is None:
        return None
    return line[: slot.start] + done + verb_space(slot, done)


def verb_space(slot: Slot, done: str) -> str:
    """After a whole verb its arguments come next: the space that starts them."""
    return " " if slot.kind is Kind.VERB and done in VERBS else ""


def matching(word: str, candidates: Iterable[str]) -> list[str]:
    """The candidates a repeated tab cycles through: every one that starts with `word`, sorted."""
    return sorted({c for c in candidates if c.startswith(word)})

"""What a line typed in the command bar means: a shell command, or a `:verb` with its arguments.

Pure parsing (no Textual, no network) so every rule is unit-tested on its own; the main screen carries the
verbs out. The first keystroke decides, and the status bar says which as the user types (`intent`):
- a first word that is a verb is the verb: `tag v1` (the bar's prompt is already a `:`, so typing a second
  colon was the trap users fell into: `tag v1` ran `/bin/sh: tag: not found`);
- `:tag v1` is the same verb (the spelling of earlier versions, kept working);
- `!cmd`, or a leading space, forces the shell: `!tag` runs a program named tag, ` env` the shell's env;
- anything else is a shell command, so the shell's own `:` builtin still works (`: > empty`, `:;true`).
A word that is not a verb but close to one (`tga v1`) still runs in the shell: `ls` is not a typo of
anything. Only when the shell then says it found no such command (exit 127) is a verb offered (`near_verb`).

Arguments are split like a shell does (`:env GREETING="hello world"`), except `:parallel`, whose commands
are the raw text between `;;` separators (each is a whole shell command line of its own).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

PARALLEL_SEPARATOR = ";;"
SHELL_PREFIX = "!"
_VERB = re.compile(r"^:([A-Za-z][\w-]*)(?:\s+(.*))?$", re.DOTALL)
_BARE_VERB = re.compile(r"^([a-z]+)(?:\s+(.*))?$", re.DOTALL)
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

USAGE: dict[str, str] = {
    "import": ":import REF [TAG]  import an image: alpine:3, docker://host/name:tag, oci:DIR[:REF], "
              "docker-archive:PATH, rootfs:PATH",
    "tag": ":tag NAME  tag the working snapshot",
    "untag": ":untag [NAME]  remove NAME (or every tag) from the working snapshot",
    "cd": ":cd [PATH]  working directory of the following runs (no PATH: the image's default)",
    "env": ":env [K=V …] [-K …]  set or remove variables of the following runs; alone, list them",
    "disposable": ":disposable on|off  following runs leave no snapshot",
    "network": ":network on|off  following runs get a network (off: loopback only, also where the engine has none)",
    "parallel": ":parallel CMD ;; CMD ;; …  run each command as a branch of the working snapshot, at once",
    "download": ":download PATH [DEST]  copy a file from the working snapshot into the local folder",
    "sync": ":sync on|off  attach the local folder (kept synced on change) to the following runs",
    "cancel": ":cancel  cancel the selected operation (or the newest running one)",
    "wait": ":wait [all]  wait until this session's running operations end (all: other clients' too)",
    "diff": ":diff A [B]  the files that differ from snapshot A to B (a tag, a short id, . = working; "
            "no B: the working snapshot)",
    "pipeline": ":pipeline [FILE:FUNC [ARGS]]  run a pipeline on the working snapshot, in its view (alone: the "
                "last one again; --image REF, --force, --no-network)",
}
VERBS = tuple(USAGE)


class VerbError(ValueError):
    """A line that names an unknown verb or gives a verb bad arguments; `str()` says what and how."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(f"{message}\nusage: {usage}" if usage else message)
        self.reason = message
        self.usage = usage


@dataclass(frozen=True)
class Shell:
    command: str


@dataclass(frozen=True)
class Import:
    ref: str
    tag: str | None = None


@dataclass(frozen=True)
class Tag:
    name: str


@dataclass(frozen=True)
class Untag:
    name: str | None  # None: every tag


@dataclass(frozen=True)
class Cd:
    path: str | None  # None: back to the default


@dataclass(frozen=True)
class Env:
    """`:env` alone lists (both empty); `K=V` sets, `-K` removes; they may be mixed."""

    set: tuple[tuple[str, str], ...] = ()
    unset: tuple[str, ...] = ()

    @property
    def lists(self) -> bool:
        return not self.set and not self.unset


@dataclass(frozen=True)
class Disposable:
    on: bool


@dataclass(frozen=True)
class Network:
    on: bool


@dataclass(frozen=True)
class Parallel:
    commands: tuple[str, ...]


@dataclass(frozen=True)
class Download:
    path: str
    dest: str | None = None


@dataclass(frozen=True)
class Sync:
    on: bool


@dataclass(frozen=True)
class Diff:
    base: str  # a tag, a uuid or its start, or WORKING_REF
    target: str = "."


@dataclass(frozen=True)
class Cancel:
    pass


@dataclass(frozen=True)
class Wait:
    everyone: bool = False  # `:wait all`: other clients' running operations too


@dataclass(frozen=True)
class Pipeline:
    """`:pipeline FILE:FUNC [ARGS]`: the function's arguments as typed (--image, --force and --no-network read
    among them up to a `--`, as the CLI's `pipeline` reads them); no spec: the last pipeline's view again."""

    spec: str | None = None
    args: tuple[str, ...] = ()
    image: str | None = None
    force: bool = False
    network: bool = True  # --no-network: every step gets loopback only, whatever it sets (as `:network off`)


Verb = (Shell | Import | Tag | Untag | Cd | Env | Disposable | Network | Parallel | Download | Sync | Cancel | Wait
        | Diff | Pipeline)


def _verb_match(text: str) -> tuple[str, str] | None:
    """(verb name, the rest) when `text` names a verb, bare (`tag v1`) or with its colon (`:tag v1`); an
    unknown name after a colon is returned too (to be refused with the list of verbs)."""
    if not text or text[0].isspace() or text.startswith(SHELL_PREFIX):
        return None  # the shell, forced
    line = text.strip()
    match = _VERB.match(line)
    if match is not None:
        return match.group(1).lower(), (match.group(2) or "").strip()
    match = _BARE_VERB.match(line)
    if match is not None and match.group(1) in USAGE:
        return match.group(1), (match.group(2) or "").strip()
    return None


def is_verb(text: str) -> bool:
    return _verb_match(text) is not None


def verb_name(text: str) -> str | None:
    """The verb a line names (known or not), or None for a shell command."""
    matched = _verb_match(text)
    return matched[0] if matched else None


def shell_command(text: str) -> str:
    """The shell command of a line that is not a verb (without the `!` that forced it)."""
    line = text.strip()
    return line[len(SHELL_PREFIX):].strip() if line.startswith(SHELL_PREFIX) else line


def parse_line(text: str) -> Verb:
    """The meaning of one command-bar line; VerbError (with the verb's usage) if it cannot be carried out.
    Leading whitespace is meaningful (it forces the shell): pass the line as typed."""
    matched = _verb_match(text)
    if matched is None:
        command = shell_command(text)
        if not command:
            raise VerbError("nothing to run")
        return Shell(command)
    name, rest = matched
    if name not in USAGE:
        near = near_verb(name)
        hint = f" (did you mean :{near}?)" if near else ""
        raise VerbError(f"unknown verb :{name}{hint}", "one of " + " ".join(f":{v}" for v in VERBS))
    try:
        return _parse_verb(name, rest, USAGE[name])
    except VerbError as exc:
        if text.lstrip().startswith(":"):
            raise
        # `cd /tmp && ls` meant for the shell: say how to get it there
        raise VerbError(f"{exc.reason} (!{text.strip()} runs it in the shell)", exc.usage) from None


def _parse_verb(name: str, rest: str, usage: str) -> Verb:
    if name == "parallel":
        return _parallel(rest, usage)
    try:
        args = shlex.split(rest)
    except ValueError as exc:  # an unterminated quote
        raise VerbError(f":{name}: {exc}", usage) from None
    return _PARSERS[name](args, usage)


def _count(args: list[str], low: int, high: int, name: str, usage: str) -> None:
    if not low <= len(args) <= high:
        wanted = str(low) if low == high else f"{low} to {high}"
        raise VerbError(f":{name} takes {wanted} argument{'s' if high != 1 else ''}, got {len(args)}", usage)


def _import(args: list[str], usage: str) -> Verb:
    _count(args, 1, 2, "import", usage)
    return Import(args[0], args[1] if len(args) > 1 else None)


def _tag(args: list[str], usage: str) -> Verb:
    _count(args, 1, 1, "tag", usage)
    return Tag(args[0])


def _untag(args: list[str], usage: str) -> Verb:
    _count(args, 0, 1, "untag", usage)
    return Untag(args[0] if args else None)


def _cd(args: list[str], usage: str) -> Verb:
    _count(args, 0, 1, "cd", usage)
    return Cd(args[0] if args else None)


def _env(args: list[str], usage: str) -> Verb:
    pairs: list[tuple[str, str]] = []
    unset: list[str] = []
    for arg in args:
        if arg.startswith("-"):
            key = arg[1:]
            if not _ENV_KEY.match(key):
                raise VerbError(f":env: {arg!r} removes nothing: -NAME removes the variable NAME", usage)
            unset.append(key)
            continue
        key, sep, value = arg.partition("=")
        if not sep:
            raise VerbError(f":env: {arg!r} is not K=V", usage)
        if not _ENV_KEY.match(key):
            raise VerbError(f":env: {key!r} is not a variable name (letters, digits, _)", usage)
        pairs.append((key, value))
    return Env(tuple(pairs), tuple(unset))


def _on_off(name: str, args: list[str], usage: str) -> bool:
    _count(args, 1, 1, name, usage)
    word = args[0].lower()
    if word in ("on", "yes", "true", "1"):
        return True
    if word in ("off", "no", "false", "0"):
        return False
    raise VerbError(f":{name}: {args[0]!r} is neither on nor off", usage)


def _disposable(args: list[str], usage: str) -> Verb:
    return Disposable(_on_off("disposable", args, usage))


def _network(args: list[str], usage: str) -> Verb:
    return Network(_on_off("network", args, usage))


def _sync(args: list[str], usage: str) -> Verb:
    return Sync(_on_off("sync", args, usage))


def _parallel(rest: str, usage: str) -> Verb:
    commands = tuple(part.strip() for part in rest.split(PARALLEL_SEPARATOR))
    if not rest or any(not c for c in commands):
        raise VerbError(":parallel: give commands separated by ;; (none may be empty)", usage)
    return Parallel(commands)


def _download(args: list[str], usage: str) -> Verb:
    _count(args, 1, 2, "download", usage)
    return Download(args[0], args[1] if len(args) == 2 else None)


def _diff(args: list[str], usage: str) -> Verb:
    _count(args, 1, 2, "diff", usage)
    return Diff(*args)


def _wait(args: list[str], usage: str) -> Verb:
    _count(args, 0, 1, "wait", usage)
    if args and args[0].lower() != "all":
        raise VerbError(f":wait: {args[0]!r} is not 'all'", usage)
    return Wait(everyone=bool(args))


def _pipeline(args: list[str], usage: str) -> Verb:
    if not args:
        return Pipeline()
    spec, rest, image, force, network = args[0], [], None, False, True
    items = iter(args[1:])
    for item in items:
        if item == "--":
            rest += items
            break
        name, eq, value = item.partition("=")
        if item == "--force":
            force = True
        elif item == "--no-network":
            network = False
        elif name == "--image" and eq:
            image = value
        elif item == "--image":
            image = next(items, "")
            if not image or image.startswith("--"):
                raise VerbError(":pipeline: --image needs a value (tag:NAME or a snapshot id)", usage)
        else:
            rest.append(item)
    return Pipeline(spec, tuple(rest), image or None, force, network)


def _no_args(name: str, verb: Verb) -> Callable[[list[str], str], Verb]:
    def parse(args: list[str], usage: str) -> Verb:
        _count(args, 0, 0, name, usage)
        return verb
    return parse


_PARSERS = {
    "import": _import, "tag": _tag, "untag": _untag, "cd": _cd, "env": _env, "disposable": _disposable,
    "network": _network, "sync": _sync, "download": _download, "diff": _diff, "cancel": _no_args("cancel", Cancel()),
    "wait": _wait, "pipeline": _pipeline,
}


def intent(text: str) -> str:
    """What enter will do with the line as typed so far, in a few words for the status bar: `verb: tag ·
    :tag NAME  tag the working snapshot …`, `shell: …`, or what is wrong with the verb's name."""
    if not text.strip():
        return "type a verb (" + " ".join(VERBS) + ") or a shell command · !cmd forces the shell"
    matched = _verb_match(text)
    if matched is None:
        forced = text.startswith(SHELL_PREFIX) or text[0].isspace()
        word = shell_command(text).split(None, 1)[0] if shell_command(text) else ""
        if forced and word in USAGE:
            return f"shell: a program named {word}, not the verb"
        return "shell: sh -c on the working snapshot" + ("" if forced else " · !cmd forces the shell")
    name = matched[0]
    if name in USAGE:
        return f"verb: {name} · {USAGE[name]} · !{name} … for the shell's"
    near = near_verb(name)
    return f"unknown verb :{name}" + (f" · did you mean :{near}?" if near else " · one of " + " ".join(VERBS))


def near_verb(word: str) -> str | None:
    """The verb `word` is probably a typo of: within 2 edits (a swap of neighbours is one), and fewer edits
    than the word has letters, so no 2-letter word is "near" `cd`. None when nothing is that close."""
    if not word or word in USAGE:
        return None
    limit = min(2, len(word) - 1)
    best = min(VERBS, key=lambda verb: (_edits(word, verb), verb))
    return best if _edits(word, best) <= limit else None


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[i - 2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def describe(verb: Verb) -> str:
    """A verb as the command log shows it (the line, normalised)."""
    if isinstance(verb, Shell):
        return verb.command if _verb_match(verb.command) is None else SHELL_PREFIX + verb.command
    if isinstance(verb, Parallel):
        return ":parallel " + f" {PARALLEL_SEPARATOR} ".join(verb.commands)
    name = type(verb).__name__.lower()
    if isinstance(verb, Env):
        words = [f"{k}={shlex.quote(v)}" for k, v in verb.set] + [f"-{k}" for k in verb.unset]
    elif isinstance(verb, Disposable | Network | Sync):
        words = ["on" if verb.on else "off"]
    elif isinstance(verb, Download):
        words = [verb.path, *([verb.dest] if verb.dest else [])]
    elif isinstance(verb, Import):
        words = [verb.ref, *([verb.tag] if verb.tag else [])]
    elif isinstance(verb, Tag | Untag):
        words = [verb.name] if verb.name else []
    elif isinstance(verb, Cd):
        words = [verb.path] if verb.path else []
    elif isinstance(verb, Diff):
        words = [verb.base, verb.target]
    elif isinstance(verb, Pipeline):
        options = [*(["--image", verb.image] if verb.image else []), *(["--force"] if verb.force else []),
                   *([] if verb.network else ["--no-network"])]
        clash = any(a in ("--", "--force", "--no-network") or a.partition("=")[0] == "--image" for a in verb.args)
        words = [verb.spec, *options, *(["--"] if clash else []), *verb.args] if verb.spec else []
    else:
        words = []
    return " ".join([f":{name}", *(shlex.quote(w) if not isinstance(verb, Env) else w for w in words)])

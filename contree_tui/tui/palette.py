"""ctrl+p, the command palette's providers: go to a snapshot (by uuid, tag or command), a tag, an operation,
start a verb (the command bar opens holding it; the list is the verb table, so a new verb shows by itself), run
any of this app's actions by its name, with its key (every binding of the screen the palette was opened on and
of its widgets), diff a snapshot, and Textual's theme and screenshot commands.

Left out on purpose: the bindings Textual's own widgets bring (an Input's `cursor_left`, `delete_right_all`,
a scroller's `scroll_up` …: typing "cursor" listed eight of them), and Textual's Quit, Keys, Maximize and
Minimize system commands, which `q`, `?` and `z` do here (Maximize maximised the log view without its title).

Matching is Textual's fuzzy matcher made strict: a hit may be cut in at most one piece per four letters typed
(`rollback` finds "Roll back"), because a loose subsequence made "diff" find `:disposable … off` and "tag"
find "Interrupt the operation (again: cancel)". Words that are not in an entry's title (`undo` for Roll back)
are its keywords: they match as plain text and rank below title hits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import pairwise

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Matcher, Provider
from textual.content import Content
from textual.dom import DOMNode

from contree_tui.tui.screens.help import binding_help, key_display
from contree_tui.tui.screens.main import MainScreen, short_command
from contree_tui.tui.verbs import USAGE

DISCOVER_LIMIT = 50  # what an empty query lists per provider; typing searches everything
VERB_HELP = "opens the command bar with it: give its arguments, enter"
LETTERS_PER_PIECE = 4
EXACT_NAME_BOOST = 2.0  # "tag": the verb :tag above "Jump to tag" and "tag busybox:latest"
KEYWORD_WEIGHT = 0.5  # a keyword hit ranks below a title hit of the same quality
OWN_PACKAGE = "contree_tui."
MOVES = ("cursor_", "scroll_", "page_")  # j/k/g/G and the page keys: a palette entry that moves one row is noise
# words a newcomer types that the titles do not hold, by binding id
ACTION_KEYWORDS = {
    "rollback": "undo parent back", "forward": "redo child", "command-log": "history undo list",
    "help": "keys keyboard shortcuts bindings", "maximize": "maximise fullscreen full screen zoom pane",
    "tree.inspect": "files browse diff changes", "command-bar": "run shell verb", "interrupt": "kill stop cancel",
    "reload": "refresh", "log.merged": "all parallel", "tree.make-working": "use checkout switch",
}
VERB_KEYWORDS = {"cancel": "kill stop", "wait": "join", "sync": "upload folder watch", "download": "copy get"}
SYSTEM_KEEP = {"Theme": "colours colors dark light", "Screenshot": "svg save screen"}


@dataclass(frozen=True)
class Entry:
    title: str  # shown, and matched fuzzily
    run: Callable[[], object]
    help: str
    keywords: str = ""  # matched as plain text
    name: str = ""  # typed in full (`tag`), the entry comes first


def strict_match(matcher: Matcher, text: str) -> tuple[float, list[int]]:
    """Textual's fuzzy score of `text`, and the matched offsets; (0, []) when the match is cut in more pieces
    than the query's length allows."""
    query = matcher.query.strip()
    if not query:
        return 0.0, []
    score, offsets = matcher.fuzzy_search.match(query, text)
    if not score:
        return 0.0, []
    pieces = 1 + sum(1 for before, after in pairwise(offsets) if after != before + 1)
    if pieces > max(1, len(query.replace(" ", "")) // LETTERS_PER_PIECE):
        return 0.0, []
    return score, list(offsets)


def score_entry(matcher: Matcher, entry: Entry) -> tuple[float, Content]:
    """(score, the title with the match highlighted); score 0: no hit."""
    score, offsets = strict_match(matcher, entry.title)
    title = Content(entry.title)  # plain: a usage's `[TAG]` is not markup
    if score and entry.name and matcher.query.strip().lower() == entry.name:
        score *= EXACT_NAME_BOOST
    if score:
        for offset in offsets:
            if not entry.title[offset].isspace():
                title = title.stylize(matcher.match_style, offset, offset + 1)
        return score, title
    if entry.keywords and matcher.query.strip().lower() in entry.keywords.lower():
        return KEYWORD_WEIGHT * len(matcher.query.strip()), title
    return 0.0, title


def _main(provider: Provider) -> MainScreen | None:
    """The main screen, when the palette was opened on it (jumps move its tree and table)."""
    return provider.screen if isinstance(provider.screen, MainScreen) else None


class _Searching(Provider):
    """Scores entries against the query (strict_match). The empty query's list is FirstUse's alone: the
    palette shows discovery hits in the order they arrive, and providers answer in any order (Theme and
    Screenshot came first)."""

    def entries(self) -> Iterator[Entry]:
        raise NotImplementedError

    async def discover(self) -> Hits:
        return
        yield  # an async generator that lists nothing

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for entry in self.entries():
            score, title = score_entry(matcher, entry)
            if score > 0:
                yield Hit(score, title, entry.run, text=entry.title, help=entry.help)


def _go_to_snapshot(main: MainScreen, uuid: str) -> None:
    if main.tree.jump_to(uuid):
        main.tree.focus()
    else:
        main.notify(f"{uuid[:8]} is not in the tree", title="go to snapshot", severity="warning")


def _go_to_operation(main: MainScreen, uuid: str) -> None:
    main.table.select(uuid)
    main.table.focus()


class SnapshotCommands(_Searching):
    """`snapshot <uuid> <tag> <command>` for every snapshot in the tree, newest first."""

    def entries(self) -> Iterator[Entry]:
        main = _main(self)
        if main is None:
            return
        snapshots = sorted(main.lineage.snapshots.values(),
                           key=lambda s: s.created_at.timestamp() if s.created_at else 0.0, reverse=True)
        for snapshot in snapshots:
            command = main.tree.commands.get(snapshot.operation or "", "")
            text = " ".join(part for part in ("snapshot", snapshot.short, snapshot.tag or "",
                                              short_command(command, 50)) if part)
            yield Entry(text, partial(_go_to_snapshot, main, snapshot.uuid), "put the tree's cursor on it",
                        snapshot.uuid)


class TagCommands(_Searching):
    """`tag <name>` for every tagged snapshot."""

    def entries(self) -> Iterator[Entry]:
        main = _main(self)
        if main is None:
            return
        for tag in main.tree.tags():
            snapshot = main.tree.find_tag(tag)
            if snapshot is not None:
                yield Entry(f"tag {tag}", partial(_go_to_snapshot, main, snapshot.uuid), f"snapshot {snapshot.short}")


class OperationCommands(_Searching):
    """`operation <uuid> <command>` for every row of the operations table, newest first."""

    def entries(self) -> Iterator[Entry]:
        main = _main(self)
        if main is None:
            return
        for op in reversed(list(main.table.operations.values())):
            yield Entry(f"operation {op.uuid[:8]} {short_command(op.command, 50)}",
                        partial(_go_to_operation, main, op.uuid),
                        f"{op.status.value.lower()} on {(op.image or '')[:8]}", op.uuid)


def verb_entries(begin: Callable[[str], object]) -> Iterator[Entry]:
    """One entry per verb of the verb table (`:tag NAME  tag the working snapshot`), `begin(name)` taking it."""
    for name, usage in USAGE.items():
        yield Entry(usage, partial(begin, name), VERB_HELP, f"{name} {VERB_KEYWORDS.get(name, '')}", name)


class VerbCommands(_Searching):
    """Every verb with its usage; choosing one opens the command bar holding it."""

    def entries(self) -> Iterator[Entry]:
        main = _main(self)
        if main is not None:
            yield from verb_entries(main.begin_verb)


def own_bindings(node: DOMNode) -> list[Binding]:
    """The bindings `node`'s class declares, if the class is this app's (not Textual's widgets' internals)."""
    if not type(node).__module__.startswith(OWN_PACKAGE):
        return []
    return [binding for binding in type(node).__dict__.get("BINDINGS", ())
            if isinstance(binding, Binding) and binding.description and not binding.action.startswith(MOVES)]


class ActionCommands(_Searching):
    """Every binding with a description, by name, with its key: the app's, the screen's and its widgets' (run
    where the binding lives, as its key would)."""

    def _bound(self) -> Iterator[tuple[DOMNode, Binding]]:
        nodes: list[DOMNode] = [self.screen, *self.screen.query("*"), self.app]  # the screen's keys first
        seen: set[str] = set()
        for node in nodes:
            for binding in own_bindings(node):
                name = binding.id or f"{type(node).__name__}.{binding.action}"
                if name in seen:
                    continue
                seen.add(name)
                yield node, binding

    def entries(self) -> Iterator[Entry]:
        keymap: dict[str, str] = getattr(self.app, "_keymap", {}) or {}
        for node, binding in self._bound():
            keys = keymap.get(binding.id or "", binding.key)
            yield Entry(binding_help(binding), partial(self._run, node, binding.action),
                        f"{key_display(keys)} · {binding.id or binding.action}",
                        f"{binding.id or ''} {ACTION_KEYWORDS.get(binding.id or '', '')}")

    def _run(self, node: DOMNode, action: str) -> None:
        self.app.call_later(self.app.run_action, action, node)


def _diff_under_cursor(main: MainScreen) -> None:
    """The snapshot detail view of the tree's cursor, on its diff against its parent (as `i` then `d`)."""
    uuid = main.tree.cursor_uuid or main.position.working
    if uuid is None:
        main.notify("no snapshot under the cursor", title="diff", severity="warning")
        return
    main.inspect_snapshot(uuid)
    detail = main.app.screen
    if detail is not main:
        detail.call_after_refresh(detail.run_action, "diff")


class ScreenCommands(_Searching):
    """What the main screen does in two keys, named for a newcomer: the diff (i, then d)."""

    def entries(self) -> Iterator[Entry]:
        main = _main(self)
        if main is None:
            return
        yield Entry("Diff the snapshot under the cursor against its parent", partial(_diff_under_cursor, main),
                    "i then d · the files it added, changed, removed", "changes compare files")


class SystemCommands(_Searching):
    """Textual's system commands that mean something here (SYSTEM_KEEP): the theme, a screenshot."""

    def entries(self) -> Iterator[Entry]:
        for name, help_text, callback, *_ in self.app.get_system_commands(self.screen):
            if name in SYSTEM_KEEP:
                yield Entry(name, callback, help_text, SYSTEM_KEEP[name])


class FirstUse(Provider):
    """What ctrl+p lists before anything is typed, in this order: the screen's actions with their keys, the
    diff, the verbs, then the theme and the screenshot (up to DISCOVER_LIMIT of each)."""

    async def discover(self) -> Hits:
        for provider in (ActionCommands, ScreenCommands, VerbCommands, SystemCommands):
            for number, entry in enumerate(provider(self.screen, self.match_style).entries()):
                if number >= DISCOVER_LIMIT:
                    break
                yield DiscoveryHit(Content(entry.title), entry.run, text=entry.title, help=entry.help)

    async def search(self, query: str) -> Hits:
        return
        yield  # searching is the other providers' work


PROVIDERS = (FirstUse, SnapshotCommands, TagCommands, OperationCommands, VerbCommands, ActionCommands, ScreenCommands,
             SystemCommands)

"""ctrl+p, the command palette's providers: go to a snapshot (by uuid, tag or command), a tag, an operation,
start a `:verb` (the command bar opens holding it), and run any action by its name (every binding of the
screen the palette was opened on and of its widgets)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.dom import DOMNode

from contree_tui.tui.screens.help import key_display
from contree_tui.tui.screens.main import MainScreen, short_command
from contree_tui.tui.verbs import USAGE

DISCOVER_LIMIT = 50  # what an empty query lists per provider; typing searches everything
VERB_HELP = "opens the command bar with it: give its arguments, enter"


def _main(provider: Provider) -> MainScreen | None:
    """The main screen, when the palette was opened on it (jumps move its tree and table)."""
    return provider.screen if isinstance(provider.screen, MainScreen) else None


class _Searching(Provider):
    """Scores `(text, callback, help)` entries against the query with Textual's fuzzy matcher."""

    def entries(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        raise NotImplementedError

    async def discover(self) -> Hits:
        for number, (text, callback, help_text) in enumerate(self.entries()):
            if number >= DISCOVER_LIMIT:
                break
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, help_text in self.entries():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)


def _go_to_snapshot(main: MainScreen, uuid: str) -> None:
    if main.tree.jump_to(uuid):
        main.tree.focus()
    else:
        main.notify(f"{uuid[:8]} is not in the tree", title="go to snapshot", severity="warning")


def _go_to_operation(main: MainScreen, uuid: str) -> None:
    main.table.select(uuid)
    main.table.focus()


class SnapshotCommands(Provider):
    """`snapshot <uuid> <tag> <command>` for every snapshot in the tree, newest first."""

    async def search(self, query: str) -> Hits:
        main = _main(self)
        if main is None:
            return
        matcher = self.matcher(query)
        snapshots = sorted(main.lineage.snapshots.values(),
                           key=lambda s: s.created_at.timestamp() if s.created_at else 0.0, reverse=True)
        for snapshot in snapshots:
            command = main.tree.commands.get(snapshot.operation or "", "")
            text = " ".join(part for part in ("snapshot", snapshot.short, snapshot.tag or "",
                                              short_command(command, 50)) if part)
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(_go_to_snapshot, main, snapshot.uuid),
                          help="put the tree's cursor on it")


class TagCommands(_Searching):
    """`tag <name>` for every tagged snapshot."""

    def entries(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        main = _main(self)
        if main is None:
            return
        for tag in main.tree.tags():
            snapshot = main.tree.find_tag(tag)
            if snapshot is not None:
                yield f"tag {tag}", partial(_go_to_snapshot, main, snapshot.uuid), f"snapshot {snapshot.short}"


class OperationCommands(_Searching):
    """`operation <uuid> <command>` for every row of the operations table, newest first."""

    def entries(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        main = _main(self)
        if main is None:
            return
        for op in reversed(list(main.table.operations.values())):
            yield (f"operation {op.uuid[:8]} {short_command(op.command, 50)}", partial(_go_to_operation, main, op.uuid),
                   f"{op.status.value.lower()} on {(op.image or '')[:8]}")


class VerbCommands(Provider):
    """Every `:verb` with its usage (`:import REF [TAG]  import an image: …`); the command bar opens holding it.
    Shown as plain text: a usage's `[TAG]` would be taken for markup by the fuzzy matcher's highlighting."""

    def entries(self) -> Iterator[tuple[str, Callable[[], object]]]:
        main = _main(self)
        if main is None:
            return
        for name, usage in USAGE.items():
            yield usage, partial(main.begin_verb, name)

    async def discover(self) -> Hits:
        for usage, callback in self.entries():
            yield DiscoveryHit(Content(usage), callback, text=usage, help=VERB_HELP)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for usage, callback in self.entries():
            score = matcher.match(usage)
            if score > 0:
                yield Hit(score, Content(usage), callback, text=usage, help=VERB_HELP)


class ActionCommands(_Searching):
    """Every binding with a description, by name: the app's, the screen's and its widgets' (run where the
    binding lives, as its key would)."""

    def _bound(self) -> Iterator[tuple[DOMNode, Binding]]:
        nodes: list[DOMNode] = [self.app, self.screen, *self.screen.query("*")]
        seen: set[str] = set()
        for node in nodes:
            for binding in type(node).__dict__.get("BINDINGS", ()):
                if not isinstance(binding, Binding) or not binding.description:
                    continue
                name = binding.id or f"{type(node).__name__}.{binding.action}"
                if name in seen:
                    continue
                seen.add(name)
                yield node, binding

    def entries(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        keymap: dict[str, str] = getattr(self.app, "_keymap", {}) or {}
        for node, binding in self._bound():
            keys = keymap.get(binding.id or "", binding.key)
            yield (binding.description, partial(self._run, node, binding.action),
                   f"{key_display(keys)} · {binding.id or binding.action}")

    def _run(self, node: DOMNode, action: str) -> None:
        self.app.call_later(self.app.run_action, action, node)


PROVIDERS = (SnapshotCommands, TagCommands, OperationCommands, VerbCommands, ActionCommands)

"""The footer: Textual's, except that keys which do not fit are dropped by importance instead of being cut at
the right edge. Textual lists the focused widget's keys first, then the screen's, then the app's, so at 80x24
the tree's `enter`, `i` and `/` pushed `U Forward` half off the screen and `?`/`q` off it entirely; a newcomer
then saw no way to the help. PRIORITY keys are kept first, then the others in Textual's order (the focused
widget's own come next); what is kept is shown in Textual's order.

Measured (Textual 8.2.8, not compact): a key takes len(key) + len(description) + 3 cells (` k desc `), the
palette key on the right as much (its border and right padding replace the key's). At 80 columns the five
PRIORITY keys (51), the palette key (12) and the tree's `⏎ Make working` (16) fit; at 50, `?`, `:` and `u`."""

from __future__ import annotations

from collections import defaultdict

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# binding ids, most important first: the main screen's, then the snapshot detail view's
# `pipeline` (P, shown only while a pipeline exists) before the tree's `⏎ Make working`: at 80 columns only one of
# them fits (12 + 16 cells in 17), and P is the only way back to a view the user left (enter is in the help)
PRIORITY = ("help", "command-bar", "rollback", "forward", "quit", "pipeline", "detail.close", "detail.diff",
            "pipeline.rerun", "pipeline.make-working", "pipeline.next-error", "pipeline.back", "pipeline.skip")
KEY_PADDING = 3  # FooterKey (not compact): a space each side of the key, one after the description
PALETTE_EXTRA = 0  # the palette key: its border and right padding stand in for the key's padding (measured: 12)


class KeyFooter(Footer):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._composed_width = 0

    def key_width(self, binding: Binding) -> int:
        return cell_len(self.app.get_key_display(binding)) + cell_len(binding.description) + KEY_PADDING

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        width = self.app.size.width
        self._composed_width = width
        active = self.screen.active_bindings
        by_action: dict[str, list[tuple[Binding, bool, str]]] = defaultdict(list)
        for _, binding, enabled, tooltip in active.values():
            if binding.show:
                by_action[binding.action].append((binding, enabled, tooltip))
        shown = [bindings[0] for bindings in by_action.values()]  # one key per action, as Textual's footer

        palette = active.get(self.app.COMMAND_PALETTE_BINDING) if self.app.ENABLE_COMMAND_PALETTE else None
        room = width - (self.key_width(palette.binding) + PALETTE_EXTRA if palette is not None else 0)

        def rank(index: int) -> tuple[int, int]:
            binding_id = shown[index][0].id
            return (PRIORITY.index(binding_id), index) if binding_id in PRIORITY else (len(PRIORITY), index)

        kept: set[int] = set()
        for index in sorted(range(len(shown)), key=rank):
            needed = self.key_width(shown[index][0])
            if needed <= room:
                kept.add(index)
                room -= needed
        for index, (binding, enabled, tooltip) in enumerate(shown):
            if index in kept:
                yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                                disabled=not enabled, tooltip=tooltip).data_bind(compact=Footer.compact)
        if palette is not None:
            binding = palette.binding
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                            classes="-command-palette", disabled=not palette.enabled,
                            tooltip=binding.tooltip or binding.description)

    def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready and self.app.size.width != self._composed_width:
            self.call_after_refresh(self.recompose)

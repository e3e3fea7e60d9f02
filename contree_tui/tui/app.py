"""ContreeApp: connects (the embedded engine by default, started on demand, or a profile) and hosts the main
screen. Connection state reaches the status bar through the client's Observable, as messages."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from contree_tui.client.observable import Observable
from contree_tui.client.reconnect import ConnectionState
from contree_tui.pipeline.launch import PipelineLaunch
from contree_tui.tui.data import Backend, describe_error, open_backend
from contree_tui.tui.keymap import KeymapError, read_keymap
from contree_tui.tui.messages import Connected, LinkChanged
from contree_tui.tui.palette import PROVIDERS
from contree_tui.tui.pane_zoom import MAXIMIZED_VIEW, focus_in_maximized, keep_focus_visible, toggle_maximized
from contree_tui.tui.screens.command_log import CommandLogScreen
from contree_tui.tui.screens.confirm import ConfirmScreen
from contree_tui.tui.screens.help import HelpScreen
from contree_tui.tui.screens.main import MainScreen
from contree_tui.tui.screens.pipeline_view import PipelineScreen
from contree_tui.tui.screens.prompt import PromptScreen
from contree_tui.tui.screens.snapshot_detail import EntryList, SnapshotDetailScreen
from contree_tui.tui.screens.split_logs import SplitLogsScreen
from contree_tui.tui.type_ahead import TypeAhead
from contree_tui.tui.widgets.command_bar import CommandBar
from contree_tui.tui.widgets.log_prompt import LogPrompt
from contree_tui.tui.widgets.log_view import LogView
from contree_tui.tui.widgets.operations_table import OperationsTable
from contree_tui.tui.widgets.pipeline_tree import PipelineTree
from contree_tui.tui.widgets.snapshot_tree import Clock, SnapshotTree, utc_now


class ContreeApp(App[None]):
    TITLE = "contree-tui"
    CSS_PATH = "styles/app.tcss"
    # ctrl+p: go to a snapshot, tag, operation; start a verb; any action by name. Textual's own system commands
    # are replaced (palette.SystemCommands keeps the theme and the screenshot; the rest were duplicates)
    COMMANDS = set(PROVIDERS)
    ALLOW_IN_MAXIMIZED_VIEW = MAXIMIZED_VIEW
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark,f1", "help", "Help", id="help"),
        Binding("z", "toggle_maximized", "Zoom", id="maximize",
                tooltip="Maximise the focused pane (tree, operations, log) to the whole screen; z or esc: back"),
        Binding("P", "pipeline", "Pipeline", id="pipeline"),  # only with `contree-tui pipeline` (check_action)
    ]
    PALETTE_HELP = Binding("ctrl+p", "command_palette", "Palette",
                           tooltip="Command palette: find any action, verb, snapshot, tag or operation by name")

    def __init__(self, backend: Backend | None = None, *, profile: str | None = None,
                 state_dir: str | Path | None = None, folder: str | Path | None = None,
                 working: str | None = None, clock: Clock = utc_now, keymap: Mapping[str, str] | None = None,
                 keymap_file: str | Path | None = None, pipeline: PipelineLaunch | None = None) -> None:
        """`backend` given: use it (tests); otherwise connect to `profile` or the embedded engine in
        `state_dir` on mount and close that connection on exit. `folder` (default: the current directory) keys
        the working snapshot, shared with the headless CLI run there; `working` starts on that snapshot instead
        (a fresh folder starts on busybox:latest, else the first root). `keymap` remaps binding ids to keys;
        `keymap_file` (keymap.py's TOML) is read on mount, over `keymap`, its problems shown as toasts."""
        super().__init__()
        self.backend = backend
        self._owns_backend = backend is None
        self.profile = profile
        self.state_dir = state_dir
        self.folder = Path(folder) if folder is not None else Path.cwd()
        self.clock = clock
        self.working = working
        self._user_keymap = dict(keymap or {})
        self._keymap_file = keymap_file
        self._clashes_told: set[frozenset[str]] = set()
        self._last_focused: Widget | None = None  # for pane_zoom: where the focus came from
        self.pipeline = pipeline  # `contree-tui pipeline FILE:FUNC`: opens on its view (screens/pipeline_view.py)
        self.type_ahead = TypeAhead(self)  # keys in one burst with `:` go into the bar (type_ahead.py)

    def get_default_screen(self) -> Screen[None]:
        return MainScreen(clock=self.clock, working=self.working)

    @property
    def main(self) -> MainScreen:
        screen = self.screen_stack[0]  # the default screen stays at the bottom of the stack
        assert isinstance(screen, MainScreen)
        return screen

    def on_mount(self) -> None:
        self._load_keymap()
        if self.pipeline is not None:  # installed: leaving the view keeps it, and its run, alive (P: back)
            self.install_screen(PipelineScreen(self.pipeline), "pipeline")
            self.push_screen("pipeline")
        if self.backend is not None:
            self.main.post_message(Connected(self.backend))
        else:
            self.connect()

    @work(exclusive=True, group="connect", exit_on_error=False, description="connecting")
    async def connect(self) -> None:
        status: Observable[ConnectionState] = Observable(ConnectionState.connecting())
        unsubscribe = status.subscribe(lambda state: self.main.post_message(LinkChanged(state)))
        try:
            self.backend = await open_backend(self.profile, self.state_dir, self.folder, status=status)
        finally:
            unsubscribe()
        self.main.post_message(Connected(self.backend))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.main.post_message(LinkChanged(ConnectionState.failed(describe_error(event.worker.error))))
            self.notify(describe_error(event.worker.error), title=f"{event.worker.description} failed",
                        severity="error", timeout=30)

    async def on_unmount(self) -> None:
        if self._owns_backend and self.backend is not None:
            await self.backend.aclose()

    def _load_keymap(self) -> None:
        """Apply the keymap (the file's over the argument's); a bad file keeps the defaults, unknown ids are
        named in a warning and the rest still apply."""
        keymap = dict(self._user_keymap)
        if self._keymap_file is not None:
            try:
                keymap.update(read_keymap(self._keymap_file).keys)
            except KeymapError as exc:
                self.notify(f"{exc}; the default keys apply", title="keymap not loaded", severity="error",
                            timeout=30)
                keymap = dict(self._user_keymap)
        known = {binding.id for _, bindings in self.help_sections(effective=False)
                 for binding in bindings if isinstance(binding, Binding) and binding.id}
        unknown = sorted(set(keymap) - known)
        if unknown:
            self.notify(f"no binding has the id {', '.join(unknown)} (`?` lists them)", title="keymap",
                        severity="warning", timeout=30)
        if keymap:
            self.set_keymap(keymap)

    def handle_bindings_clash(self, clashed_bindings: set[Binding], node: DOMNode) -> None:
        """A remapped key that another binding already had: say so once (Textual asks on every key press)."""
        ids = frozenset(binding.id or binding.action for binding in clashed_bindings)
        if ids in self._clashes_told:
            return
        self._clashes_told.add(ids)
        keys = ", ".join(sorted({binding.key for binding in clashed_bindings}))
        self.notify(f"{keys} also belonged to {', '.join(sorted(ids))}; the keymap's binding wins",
                    title="keymap clash", severity="warning", timeout=15)

    def help_sections(self, *, effective: bool = True) -> list[tuple[str, list[BindingType]]]:
        """Every binding by where it works; `effective`: with the keys the keymap gave them."""
        sections = self._binding_sections()
        if not effective or not self._keymap:
            return sections
        return [(title, [binding.with_key(self._keymap[binding.id], key_display=None)
                         if isinstance(binding, Binding) and binding.id is not None and binding.id in self._keymap
                         else binding
                         for binding in bindings])
                for title, bindings in sections]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pipeline":
            return self.pipeline is not None and self.screen is self.main
        # a dialog over the panes: nothing there to maximise
        return not (action == "toggle_maximized" and isinstance(self.screen, ModalScreen))

    def action_toggle_maximized(self) -> None:
        toggle_maximized(self.screen)

    @property
    def escape_to_minimize(self) -> bool:
        return focus_in_maximized(self.screen) and super().escape_to_minimize

    async def on_event(self, event: events.Event) -> None:
        if not isinstance(event, events.Key) or event.is_forwarded:
            await super().on_event(event)
            return
        focused, screen = self.focused, self.screen
        if self.type_ahead.read(event, focused):
            return  # held behind keys still on their way to the input focus went to (type_ahead.py)
        await super().on_event(event)
        if event.is_forwarded:  # not taken by a priority binding: it will come back up (type_ahead.py)
            self.type_ahead.forwarded(event, focused, screen)

    def on_key(self, event: events.Key) -> None:  # before App._on_key resolves the bindings
        self.type_ahead.came_back(event, self.focused, self.screen)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        self.type_ahead.focus_landed(event.widget)
        previous, self._last_focused = self._last_focused, event.widget
        keep_focus_visible(event.widget.screen, event.widget, previous)

    def action_pipeline(self) -> None:
        self.push_screen("pipeline")

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        sections = self.help_sections()
        if isinstance(self.screen, PipelineScreen):  # its keys first: they were 12 sections down, past the main's
            sections.sort(key=lambda section: not section[0].startswith("pipeline"))
        self.push_screen(HelpScreen(sections))

    def _binding_sections(self) -> list[tuple[str, list[BindingType]]]:
        return [
            ("everywhere", [*self.BINDINGS, self.PALETTE_HELP]),
            ("main screen", list(MainScreen.BINDINGS)),
            ("snapshot tree", list(SnapshotTree.BINDINGS)),
            ("operations", list(OperationsTable.BINDINGS)),
            ("log", list(LogView.BINDINGS)),
            ("logs side by side (v)", list(SplitLogsScreen.BINDINGS)),
            ("log prompt (/ & s)", [*LogPrompt.BINDINGS, Binding("enter", "answer", "Search; &text filters; save",
                                                                  id="log-prompt.answer")]),
            ("command bar", [*CommandBar.BINDINGS,
                             Binding("enter", "run", "Run the line: a verb, or a shell command on the working snapshot",
                                     id="command-bar.run")]),
            ("confirm dialog", list(ConfirmScreen.BINDINGS)),
            ("command log (@)", list(CommandLogScreen.BINDINGS)),
            ("snapshot files (i)", [*SnapshotDetailScreen.BINDINGS, *EntryList.BINDINGS]),
            ("prompt", list(PromptScreen.BINDINGS)),
            ("pipeline (P)", [*PipelineScreen.BINDINGS, *PipelineTree.BINDINGS]),
        ]

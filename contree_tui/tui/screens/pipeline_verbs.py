"""`:pipeline FILE:FUNC [ARGS]` from the command bar: the pipeline built by the CLI's loader (pipeline/loader.py,
so the same errors, here as toasts), run in the pipeline view on the working snapshot (the image of the nodes
that set none; `--image REF` another one; offline with `--no-network` or after `:network off`, as the
session's other runs), the view installed on the app as `contree-tui pipeline` installs it,
so `P` comes back to it. `:pipeline` alone comes back to the last one too. A mixin of MainScreen.

One pipeline at a time: while one runs, another `:pipeline FILE:FUNC` is refused (its view and run stay; the
new one would replace the view P reaches, and two runs' toasts would interleave), said in a toast.
The file is imported afresh each time (an edited pipeline file is what the user wants run, not the copy the
first `:pipeline` imported), in a thread: a pipeline's module runs the user's code, which may take its time.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from textual import work

from contree_tui.pipeline.executor import check_runnable
from contree_tui.pipeline.launch import PipelineLaunch
from contree_tui.pipeline.loader import load_pipeline
from contree_tui.pipeline.nodes import Node, PipelineError, default_network
from contree_tui.tui import verbs as v
from contree_tui.tui.command_log import LogEntry
from contree_tui.tui.completion import pipeline_functions
from contree_tui.tui.run_settings import RunSettings
from contree_tui.tui.screens.pipeline_view import PipelineScreen

SCREEN = "pipeline"  # the name the app installs the view under (app.py, `P`)


def spec_in_folder(spec: str, folder: Path) -> str:
    """FILE:FUNC with FILE under the session's folder (where `:download` writes, and the CLI's cwd)."""
    file, sep, func = spec.rpartition(":")
    if not sep or not file:
        return spec  # the loader says what is wrong with it
    return f"{folder / Path(file).expanduser()}:{func}"


def forget_module(spec: str) -> None:
    """Drop the file's module from sys.modules, so the loader imports it again (it keeps one per file)."""
    file = spec.rpartition(":")[0]
    full = os.path.realpath(file)
    for name, module in list(sys.modules.items()):
        known = getattr(module, "__file__", None)
        if known and name.startswith("contree_pipeline_") and os.path.realpath(known) == full:
            del sys.modules[name]


def function_missing(spec: str, folder: Path) -> str | None:
    """`:pipeline sieve.py`, a file with no function named: which ones it has (the loader's "expected
    FILE:FUNC" left the user to open the file to find out)."""
    path = folder / Path(spec).expanduser()
    if ":" in spec or not path.is_file():
        return None
    names = pipeline_functions(path.read_text(errors="replace"))
    example = f", e.g. {spec}:{names[0]}" if names else ""
    return f"{spec}: name the function that builds the pipeline too, FILE:FUNC{example} " \
           f"(its functions: {', '.join(names) or 'none'})"


def build_tree(spec: str, args: list[str]) -> Node:
    """The loader's tree, every failure a PipelineError (a pipeline file that calls sys.exit() too)."""
    forget_module(spec)
    try:
        return load_pipeline(spec, args)
    except SystemExit as exc:
        raise PipelineError(f"{spec}: the pipeline file exited (SystemExit {exc.code}) while building") from None


class PipelineVerbs:
    """Mixed into MainScreen: uses its app, position and command log."""

    app: Any  # the mixin's host is a Screen: its app, position, command log, _done and notify
    run_settings: RunSettings  # the host's (command_verbs.py): `:network off` applies to pipelines too

    def pipeline_view(self) -> PipelineScreen | None:
        if not self.app.is_screen_installed(SCREEN):
            return None
        screen = self.app.get_screen(SCREEN)
        return screen if isinstance(screen, PipelineScreen) else None

    def _verb_pipeline(self, verb: v.Pipeline, entry: LogEntry) -> None:
        shown = self.pipeline_view()
        if verb.spec is None:
            if shown is None:
                self._done(entry, "no pipeline yet: :pipeline FILE:FUNC [ARGS] runs one", ok=False)
                return
            entry.finish(f"the view of {shown.launch.spec}")
            self.app.push_screen(SCREEN)
            return
        if shown is not None and shown.running:
            self._done(entry, f"{shown.launch.spec} is still running (P shows it): one pipeline at a time",
                       ok=False)
            return
        image = verb.image or self.position.working
        self._open_pipeline(verb, image, entry)

    @work(group="pipeline-load", exclusive=True, exit_on_error=False, description="loading the pipeline")
    async def _open_pipeline(self, verb: v.Pipeline, image: str | None, entry: LogEntry) -> None:
        assert verb.spec is not None
        folder = Path(getattr(self.app, "folder", Path.cwd()))
        spec = spec_in_folder(verb.spec, folder)
        try:
            unnamed = await asyncio.to_thread(function_missing, verb.spec, folder)
            if unnamed:
                raise PipelineError(unnamed)
            root = await asyncio.to_thread(build_tree, spec, list(verb.args))
            network = verb.network and self.run_settings.networking
            default_network(root, network, "--no-network" if not verb.network else ":network off")
            check_runnable(root, image)  # no image, a tag twice: before a view opens on a run that cannot start
        except (PipelineError, OSError) as exc:  # OSError: a file that cannot be read (this worker's errors
            # reach no handler: main screen workers' news does not bubble to the app's)
            reason = str(exc).replace(f"{folder}{os.sep}", "")  # the file as typed: `pipe.py has no function …`
            entry.finish(reason, ok=False)
            self.notify(reason, title=f"pipeline {verb.spec}", severity="error", timeout=15)
            return
        old = self.pipeline_view()
        if old is not None and old.running:  # started by P's view while this one loaded
            self._done(entry, f"{old.launch.spec} is running: one pipeline at a time", ok=False)
            return
        if old is not None:
            self.app.uninstall_screen(SCREEN)
            await old.remove()
        launch = PipelineLaunch(root, verb.spec, image=image, force=verb.force)
        self.app.pipeline = launch
        self.app.install_screen(PipelineScreen(launch), SCREEN)
        offline = "" if network else " without a network"
        entry.finish(f"running on {image[:8] if image else '-'}{offline} in the pipeline view (P: back to it)")
        await self.app.push_screen(SCREEN)


__all__ = ["PipelineVerbs", "build_tree", "forget_module", "function_missing", "spec_in_folder"]

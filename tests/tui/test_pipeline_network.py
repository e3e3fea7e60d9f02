"""`:pipeline` without a network: after the session's `:network off` (as its other runs), or with `--no-network`
on the line. Where the engine has none to give (no pasta, /dev/net/tun 0600, #14) a networked step is refused,
so this is how a TUI user runs a pipeline there. The engine here has networking, so the difference shows: a
step counts its interfaces besides loopback (0 offline, 1 with pasta's)."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

from contree_tui.pipeline.executor import State
from contree_tui.tui import verbs as v
from contree_tui.tui.app import ContreeApp
from tests.tui.helpers import loaded, run_in_bar, until
from tests.tui.test_pipeline_verb import SIZE, the_view

PIPELINE = '''
from contree_tui.pipeline import Exec, Serial


def count() -> Serial:
    return Serial({"links": Exec("echo {tag}; ip -o link | grep -c -v ' lo:'; true")})
'''


def test_no_network_is_read_among_the_arguments_and_round_trips() -> None:
    verb = v.parse_line(":pipeline p.py:f 30 --no-network --n=2")
    assert verb == v.Pipeline("p.py:f", ("30", "--n=2"), None, False, network=False)
    assert v.parse_line(v.describe(verb)) == verb
    passed_on = v.parse_line(":pipeline p.py:f -- --no-network")  # after `--`: the function's argument
    assert passed_on == v.Pipeline("p.py:f", ("--no-network",)) and v.parse_line(v.describe(passed_on)) == passed_on


async def interfaces(pilot, app: ContreeApp, line: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Run `line` (a :pipeline), wait for it to end; the step's output lines."""
    before = the_view(app)
    await run_in_bar(pilot, line)
    await until(pilot, lambda: the_view(app) not in (None, before), timeout=30, what="the pipeline view to open")
    view = the_view(app)
    assert view is not None
    await until(pilot, lambda: view.run is not None and view.run.runs["/"].state.finished and not view.running,
                timeout=60, what="the pipeline to end")
    step = view.run.runs["/links"]  # type: ignore[union-attr]
    assert step.state is State.DONE and not step.cached, (step.state, step.error)
    await pilot.press("escape")
    return bytes(step.output).decode().split()


async def test_network_off_and_no_network_run_the_pipelines_steps_offline(tui_engine_dir: Path,
                                                                           tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        main = await loaded(pilot)
        tag = uuidlib.uuid4().hex[:8]  # its own commands: no cache hit from another test or run
        (tmp_path / "pipe.py").write_text(PIPELINE.replace("{tag}", tag))
        assert await interfaces(pilot, app, "pipeline pipe.py:count") == [tag, "1"]  # networked, as by default
        await run_in_bar(pilot, "network off")
        assert await interfaces(pilot, app, "pipeline pipe.py:count") == [tag, "0"]
        assert main.command_log.entries[-1].result.endswith("without a network in the pipeline view (P: back to it)")
        await run_in_bar(pilot, "network on")
        (tmp_path / "pipe.py").write_text(PIPELINE.replace("{tag}", tag + "b"))
        assert await interfaces(pilot, app, "pipeline pipe.py:count --no-network") == [tag + "b", "0"]

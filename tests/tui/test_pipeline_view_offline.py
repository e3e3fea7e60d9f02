"""The pipeline view says when a run is offline, as the headless run's first line does (network_notes.py): in its
title, and on a step's row and header where the step's network is not the run's, or where it asked for one that
`--no-network` refused. Nothing executes: a PipelineRun attached by hand over the frozen main screen."""

from __future__ import annotations

from rich.style import Style
from textual.widgets import Label

from contree_tui.pipeline import Exec, Parallel, Serial
from contree_tui.pipeline.executor import PipelineRun
from contree_tui.pipeline.launch import PipelineLaunch
from contree_tui.pipeline.network_notes import run_network_line
from contree_tui.pipeline.nodes import Node, default_network
from contree_tui.pipeline.step_cache import StepCache
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.screens.pipeline_view import PipelineScreen
from tests.tui.frozen import WORKING, FrozenBackend, frozen_clock
from tests.tui.helpers import until

SIZE = (160, 30)


def pipeline() -> Serial:
    root = Serial()
    root["fetch"] = Exec("pip download -d /wheels pkg").set(network=True)
    tests = Parallel()
    tests["unit"] = Exec("pytest -q")
    tests["hermetic"] = Exec("pytest -q -m hermetic").set(network=False)
    root["tests"] = tests
    return root


async def shown(root: Node) -> dict[str, str]:
    """The view's title, each row's text, and the selected node's header for each step."""
    app = ContreeApp(FrozenBackend(), working=WORKING, clock=frozen_clock)
    texts: dict[str, str] = {}
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.backend is not None, what="the frozen backend")
        view = PipelineScreen(PipelineLaunch(root, "ci.py:main", image="tag:busybox:latest"), start=False)
        await app.push_screen(view)
        view.attach(PipelineRun(root, None, image="tag:busybox:latest", cache=StepCache(None)))  # type: ignore[arg-type]
        await pilot.pause()
        texts["title"] = str(view.query_one("#pipeline-title", Label).render())
        tree = view.tree
        for path in ("/fetch", "/tests/unit", "/tests/hermetic"):
            shown_node = tree.node_for(path)
            assert shown_node is not None
            texts[path] = tree.render_label(shown_node, Style(), Style()).plain
            tree.select_path(path)
            await pilot.pause()
            texts[f"{path} header"] = str(view.query_one("#pipeline-node", Label).render())
    return texts


async def test_no_network_shows_in_the_title_and_on_the_step_that_wanted_a_network() -> None:
    root = default_network(pipeline(), False)
    texts = await shown(root)
    # the same words as the headless run's first line
    assert run_network_line(root) == "pipeline offline (--no-network): its steps get loopback only"
    assert texts["title"].startswith("starting P:3 · offline (--no-network) · pipeline ci.py:main"), texts["title"]
    assert texts["/fetch"] == "○ fetch  offline, wants network", texts
    assert texts["/fetch header"].endswith("\nit sets network=True, but the pipeline was started with --no-network, "
                                           "which wins: it runs offline (loopback only)"), texts["/fetch header"]
    # offline as the whole run: nothing to say on their rows
    assert texts["/tests/unit"] == "○ unit" and texts["/tests/hermetic"] == "○ hermetic", texts
    assert "\n" not in texts["/tests/unit header"], texts


async def test_a_networked_run_marks_only_its_offline_steps() -> None:
    texts = await shown(pipeline())
    assert "offline" not in texts["title"] and texts["title"].startswith("starting P:3 · pipeline ci.py:main"), texts
    assert texts["/fetch"] == "○ fetch" and texts["/tests/unit"] == "○ unit", texts  # networked, as the run
    assert texts["/tests/hermetic"] == "○ hermetic  offline", texts
    assert texts["/tests/hermetic header"].endswith("\noffline (its network=False: loopback only)"), texts


async def test_a_root_that_sets_network_false_is_an_offline_run_and_a_networked_step_says_so() -> None:
    root = pipeline().set(network=False)
    texts = await shown(root)
    assert texts["title"].startswith("starting P:3 · offline (network=False) · pipeline"), texts["title"]
    assert texts["/fetch"] == "○ fetch  networked", texts  # a node's own setting wins over its parent's
    assert texts["/tests/hermetic"] == "○ hermetic", texts

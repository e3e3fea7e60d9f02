"""SVG snapshot of the pipeline view at 160x45: a staged pipeline part-way through (setup done, a cached shard,
one done, one running, one queued, lint failed, package pending), the failed step selected with its log. The
run is a PipelineRun whose states are set by hand (nothing executes), over the frozen main screen
(tests/tui/frozen.py), so every uuid, duration and count is the same on every run.

After an intended change of the look: `pytest tests/tui/test_pipeline_snapshot.py --snapshot-update`."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from contree_tui.pipeline import Exec, Parallel, Serial
from contree_tui.pipeline.executor import PipelineEvent, PipelineRun, State
from contree_tui.pipeline.launch import PipelineLaunch
from contree_tui.pipeline.step_cache import StepCache
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.screens.pipeline_view import PipelineScreen
from tests.tui.frozen import BASE, WORKING, FrozenBackend, frozen_clock, uid
from tests.tui.helpers import until

BUSYBOX = "tag:busybox:latest"


def staged() -> Serial:
    root = Serial()
    root["setup"] = Exec("mkdir -p /work && cp -r /src/. /work")
    tests = Parallel(max_concurrent=3)
    for i in range(4):
        tests[f"shard{i}"] = Exec(f"cd /work && ./run-tests --shard {i}/4")
    tests["lint"] = Exec("cd /work && ./lint")
    root["tests"] = tests
    root["package"] = Exec("tar cf /work.tar /work").set(tag="packaged")
    return root


def play(run: PipelineRun) -> None:
    """The run's events as the executor emits them, up to the moment shown."""

    def step(path: str, state: State, *, seconds: float | None = None, result: str | None = None,
             output: bytes = b"", stream: Any = "stdout", **fields: Any) -> None:
        node = run.runs[path]
        node.source = uid(0x51)
        node.operation = uid(len(path), "c")
        node.started = 100.0
        node.finished = 100.0 + seconds if seconds is not None else None
        node.result = result
        for name, value in fields.items():
            setattr(node, name, value)
        node.state = State.RUNNING
        run._emit(PipelineEvent("state", node))
        if output:
            node.output += output
            run._emit(PipelineEvent("output", node, stream, output))
        node.state = state
        run._emit(PipelineEvent("state", node))

    for path in ("/", "/tests"):
        run.runs[path].state = State.RUNNING
    step("/setup", State.DONE, seconds=0.62, result=uid(0x51), source=BASE)
    step("/tests/shard0", State.DONE, seconds=0.0, result=uid(0x52), cached=True, output=b"412 passed in 8.1s\n")
    step("/tests/shard1", State.DONE, seconds=9.35, result=uid(0x53), output=b"398 passed in 9.2s\n")
    step("/tests/shard2", State.RUNNING, output=b"collected 405 items\n")
    run.runs["/tests/shard3"].state = State.QUEUED
    step("/tests/lint", State.ERROR, seconds=1.5, result=uid(0x54), error="exit 3", exit_code=3,
         output=b"src/app.py:12: E501 line too long (131 > 120)\nsrc/app.py:40: F401 'os' imported but unused\n"
                b"2 problems\n", stream="stderr")


async def pipeline_open(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, ContreeApp)
    await until(pilot, lambda: app.main.backend is not None, what="the frozen backend")
    root = staged()
    view = PipelineScreen(PipelineLaunch(root, "ci.py:staged", image=BUSYBOX), start=False)
    await app.push_screen(view)
    view.tree.now = lambda: 112.4  # shard2 started at 100.0: `running 12.4s` on every run of the test
    run = PipelineRun(root, None, image=BUSYBOX, cache=StepCache(None))  # type: ignore[arg-type]  (never runs)
    view.attach(run)
    play(run)
    view.tree.select_path("/tests/lint")
    await until(pilot, lambda: view.log_box.view.text_lines()[-1:] == ["── ✗ failed · exit 3"]
                and view.log_box.view.virtual_size.height == 5, what="lint's log")
    await pilot.pause(0.2)


def test_pipeline_view(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = ContreeApp(FrozenBackend(), working=WORKING, clock=frozen_clock)
    assert snap_compare(app, terminal_size=(160, 45), run_before=pipeline_open)

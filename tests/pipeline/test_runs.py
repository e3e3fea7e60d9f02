"""Pipelines run on the real engine: function steps on the bootstrapped Debian image (python3 only, nothing
installed), shell steps on busybox; snapshots chained by Serial, branched by Parallel, cached when unchanged."""

from __future__ import annotations

import asyncio
import io
import shutil
from pathlib import Path

import pytest
from contree_client.models import OperationStatus

from contree_tui.client.connection import Connection
from contree_tui.pipeline import Exec, Parallel, Serial
from contree_tui.pipeline.executor import PipelineRun, State
from contree_tui.pipeline.function_runner import load_module
from contree_tui.pipeline.headless import run_headless
from contree_tui.pipeline.python_image import python_image_hint
from tests.pipeline import sample_pipelines as sp
from tests.pipeline.conftest import BUSYBOX
from tests.pipeline.test_model import ALL_TYPES, EXPECTED

PRIMES_30 = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]


async def operation_count(connection: Connection) -> int:
    return len(await connection.client.list_operations(limit=1000))


async def test_the_sieve_prints_the_primes_below_30_in_the_sandbox_and_returns_them(
        connection: Connection, python_image: str) -> None:
    root = sp.primes_less_than(30).set(image=python_image)
    run = PipelineRun(root, connection)
    assert await run.run() is State.DONE
    step = run.runs["/find primes"]
    assert bytes(step.output).decode().strip() == str(PRIMES_30)  # its print, without the runner's result line
    assert step.return_value is not None and step.return_value.data == PRIMES_30
    assert step.source == python_image and step.result  # a checkpoint was recorded


async def test_every_hint_round_trips_into_the_sandbox(connection: Connection, python_image: str) -> None:
    root = Serial().set(image=python_image)
    root["types"] = Exec(sp.echo_types, **ALL_TYPES)
    root["sibling"] = Exec(sp.doubled, 21)
    root["positional"] = Exec(sp.positional_only, 10, b=3)
    root["fails"] = Exec(sp.fail, "no luck")
    run = PipelineRun(root, connection)
    assert await run.run() is State.ERROR
    typed = run.runs["/types"]
    assert typed.state is State.DONE, bytes(typed.output).decode()
    assert typed.return_value is not None and typed.return_value.data == EXPECTED
    positional = run.runs["/positional"]
    assert positional.return_value is not None and positional.return_value.data == 7
    sibling = run.runs["/sibling"]
    assert sibling.return_value is not None and sibling.return_value.data == 42, bytes(sibling.output).decode()
    failed = run.runs["/fails"]
    assert failed.state is State.ERROR and failed.error == "exit 1"
    assert "RuntimeError: no luck" in bytes(failed.output).decode()


async def test_a_serial_chains_each_step_on_the_previous_result(connection: Connection) -> None:
    root = sp.chain(3).set(image=BUSYBOX)
    run = PipelineRun(root, connection)
    assert await run.run() is State.DONE
    steps = [run.runs[f"/step{i}"] for i in (1, 2, 3)]
    assert steps[1].source == steps[0].result and steps[2].source == steps[1].result
    assert len({s.result for s in steps} | {steps[0].source}) == 4  # four distinct snapshots in a chain
    assert bytes(steps[2].output).decode().split() == ["1", "2", "3"]
    assert run.runs["/"].result == steps[2].result


async def test_a_parallel_of_4_runs_at_once_from_the_same_source(connection: Connection) -> None:
    root = sp.fan_out(4, 1.5).set(image=BUSYBOX)
    run = PipelineRun(root, connection)
    seen: list[tuple[str, State]] = []
    run.subscribe(lambda e: seen.append((e.run.path, e.run.state)) if e.kind == "state" else None)
    assert await run.run() is State.DONE
    branches = [run.runs[f"/branch{i}"] for i in range(4)]
    assert len({b.source for b in branches}) == 1
    assert len({b.result for b in branches}) == 4 and branches[0].source not in {b.result for b in branches}
    # all four were running at the same moment: the last to start started before the first to end ended
    assert max(b.started or 0 for b in branches) < min(b.finished or 0 for b in branches)
    assert [s for p, s in seen if p == "/branch0"] == [State.QUEUED, State.RUNNING, State.DONE]


async def test_max_concurrent_bounds_a_parallel(connection: Connection) -> None:
    root = Parallel(max_concurrent=1).set(image=BUSYBOX)
    for i in range(2):
        root[f"b{i}"] = Exec(f"sleep 0.5; echo {i}")
    run = PipelineRun(root, connection)
    assert await run.run() is State.DONE
    first, second = sorted((run.runs["/b0"], run.runs["/b1"]), key=lambda r: r.started or 0)
    assert (first.finished or 0) <= (second.started or 0)


async def test_stop_on_error_leaves_the_rest_pending_or_carries_on(connection: Connection) -> None:
    run = PipelineRun(sp.failing(stop_on_error=True).set(image=BUSYBOX), connection)
    assert await run.run() is State.ERROR
    assert [run.runs[p].state for p in ("/ok", "/boom", "/after")] == [State.DONE, State.ERROR, State.PENDING]
    assert run.runs["/boom"].error == "exit 3" and b"boom" in run.runs["/boom"].output
    assert run.counts() == {State.PENDING: 1, State.QUEUED: 0, State.RUNNING: 0, State.DONE: 1, State.ERROR: 1,
                            State.KILLED: 0}

    run = PipelineRun(sp.failing(stop_on_error=False).set(image=BUSYBOX), connection)
    assert await run.run() is State.ERROR  # still an error overall
    after = run.runs["/after"]
    assert after.state is State.DONE and after.source == run.runs["/ok"].result  # on the last good snapshot
    assert bytes(after.output) == b"ok\n"


async def test_an_unchanged_rerun_is_all_cache_hits_and_starts_no_operation(
        connection: Connection, python_image: str) -> None:
    def build() -> Serial:
        root = Serial().set(image=python_image)
        root["sieve"] = Exec(sp.sieve, 20)
        root["fan"] = Parallel()
        for i in range(2):
            root["fan"][f"b{i}"] = Exec(f"echo {i} > /b.txt")  # type: ignore[index]
        root["last"] = Exec("cat /etc/hostname").set(tag="pipeline-test-last")
        return root

    first = PipelineRun(build(), connection)
    assert await first.run() is State.DONE
    assert not any(r.cached for r in first.runs.values())
    assert await connection.client.resolve_image("tag:pipeline-test-last") == first.runs["/last"].result
    before = await operation_count(connection)

    again = PipelineRun(build(), connection)
    assert await again.run() is State.DONE
    execs = [r for r in again.runs.values() if r.kind == "exec"]
    assert all(r.cached for r in execs), [(r.path, r.cached) for r in execs]
    assert [r.result for r in execs] == [r.result for r in first.runs.values() if r.kind == "exec"]
    assert again.runs["/sieve"].return_value is not None and again.runs["/sieve"].return_value.data == [2, 3, 5, 7,
                                                                                                        11, 13, 17, 19]
    assert await operation_count(connection) == before  # nothing ran

    forced = PipelineRun(build(), connection, force=True)
    assert await forced.run() is State.DONE
    assert not any(r.cached for r in forced.runs.values())
    subtree = PipelineRun(build(), connection, force=["/fan"])  # re-run a subtree: the rest are hits
    assert await subtree.run() is State.DONE
    assert [p for p, r in subtree.runs.items() if r.kind == "exec" and not r.cached] == ["/fan/b0", "/fan/b1"]
    changed = build()
    changed["last"].set(env={"X": "1"})
    partly = PipelineRun(changed, connection)
    assert await partly.run() is State.DONE
    assert [p for p, r in partly.runs.items() if r.kind == "exec" and not r.cached] == ["/last"]


async def test_headless_prints_progress_and_returns_the_status(connection: Connection, python_image: str) -> None:
    out = io.StringIO()
    root = sp.primes_less_than(12)
    root["shout"] = Exec(sp.shout, "hey")
    assert await run_headless(root, connection, image=python_image, out=out) == 0
    # the sieve's output under its line, once: it printed the list it returns (headless showed no output, and
    # the value unlabelled on the done line); a value nothing printed, labelled
    lines = out.getvalue().splitlines()
    done = next(i for i, line in enumerate(lines) if "done  /find primes  " in line)
    assert lines[done + 1:done + 2] == ["  | [2, 3, 5, 7, 11]"] and "returned" not in lines[done + 2], lines
    shout = next(i for i, line in enumerate(lines) if "done  /shout  " in line)
    assert lines[shout + 1] == '  → returned: "HEY"', lines
    out = io.StringIO()
    assert await run_headless(sp.failing().set(image=BUSYBOX), connection, out=out) == 1
    text = out.getvalue()
    assert "run   /ok" in text and "done  /ok" in text and "FAIL  /boom  exit 3" in text
    assert "pipeline error: P:1  Q:0  R:0  D:1  E:1  K:0" in text
    assert "failed: /boom (exit 3)" in text and "  | boom" in text
    out = io.StringIO()
    assert await run_headless(sp.chain(2).set(image=BUSYBOX), connection, out=out) == 0
    assert "checkpoints:\n  /step1  " in out.getvalue()




async def test_a_step_past_its_timeout_is_an_error(connection: Connection) -> None:
    root = Serial().set(image=BUSYBOX)
    root["slow"] = Exec("sleep 5").set(timeout=1)
    run = PipelineRun(root, connection)
    assert await run.run() is State.ERROR
    assert run.runs["/slow"].error == "timed out after 1 s"


async def test_killing_a_run_cancels_its_operations_and_marks_them_killed(connection: Connection) -> None:
    root = Parallel(max_concurrent=2).set(image=BUSYBOX)
    for i in range(3):
        root[f"s{i}"] = Exec(f"sleep 30; echo {i}")
    run = PipelineRun(root, connection)
    both_running = asyncio.Event()
    run.subscribe(lambda _e: both_running.set() if run.counts()[State.RUNNING] == 2 else None)
    task = asyncio.create_task(run.run())
    await asyncio.wait_for(both_running.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    states = {p: r.state for p, r in run.runs.items()}
    assert sorted(states.values(), key=lambda s: s.value) == [State.KILLED] * 4  # 2 running, 1 queued, the root
    for r in run.runs.values():
        if r.operation:
            ended = await connection.client.wait_operation(r.operation, timeout=20)  # the cancel was asked for (202)
            assert ended.status is OperationStatus.CANCELLED


async def test_a_skipped_step_is_passed_over_and_the_next_continues_from_before_it(connection: Connection) -> None:
    root = sp.chain(3).set(image=BUSYBOX)
    root["step2"].set(skip=True)
    run = PipelineRun(root, connection)
    assert await run.run() is State.DONE
    skipped, third = run.runs["/step2"], run.runs["/step3"]
    assert skipped.skipped and skipped.state is State.PENDING and skipped.operation is None
    assert third.source == run.runs["/step1"].result
    assert bytes(third.output).decode().split() == ["1", "3"]


async def test_a_function_step_on_an_image_without_python_says_so(connection: Connection) -> None:
    run = PipelineRun(sp.primes_less_than(5).set(image=BUSYBOX), connection)
    assert await run.run() is State.ERROR
    assert run.runs["/find primes"].error == ("exit 127: the image has no python3, which function steps need "
                                              f"(nothing else; {python_image_hint()})")


async def test_a_change_in_the_pipeline_folder_reruns_its_function_steps_only(
        connection: Connection, python_image: str, tmp_path: Path) -> None:
    folder = tmp_path / "project"  # not tmp_path itself: the test's caches live there and change with each run
    folder.mkdir()
    for name in ("sample_pipelines.py", "sample_helpers.py"):
        shutil.copy(Path(sp.__file__).parent / name, folder / name)
    copy = load_module(str(folder / "sample_pipelines.py"))

    def build() -> Serial:
        root = Serial().set(image=python_image)
        root["shell"] = Exec("echo shell > /shell.txt")
        root["doubled"] = Exec(copy.doubled, 4)
        return root

    first = PipelineRun(build(), connection)
    assert await first.run() is State.DONE
    assert first.runs["/doubled"].return_value.data == 8  # type: ignore[union-attr]
    again = PipelineRun(build(), connection)
    assert await again.run() is State.DONE
    assert again.runs["/shell"].cached and again.runs["/doubled"].cached
    (folder / "sample_helpers.py").write_text("def double(n: int) -> int:\n    return 3 * n\n")
    changed = PipelineRun(build(), connection)
    assert await changed.run() is State.DONE
    assert changed.runs["/shell"].cached and not changed.runs["/doubled"].cached
    assert changed.runs["/doubled"].return_value.data == 12  # type: ignore[union-attr]  (the new helper ran)


def branches_then_next(**parallel: str) -> Serial:
    root = Serial().set(image=BUSYBOX)
    root["fan"] = Parallel(**parallel)  # type: ignore[arg-type]
    root["fan"]["lint"] = Exec("echo lint > /lint.txt")
    root["fan"]["build"] = Exec("echo built > /build.txt")
    root["next"] = Exec("ls / | grep -E '^(lint|build)\\.txt$' || echo none")
    return root


async def test_the_step_after_a_parallel_runs_on_its_source_or_on_the_branch_it_continues_from(
        connection: Connection) -> None:
    default = PipelineRun(branches_then_next(), connection)
    assert await default.run() is State.DONE
    assert bytes(default.runs["/next"].output).decode().split() == ["none"]  # the branches' source: no file
    assert default.runs["/next"].source == default.runs["/fan"].source
    chosen = PipelineRun(branches_then_next(continue_from="build"), connection)
    assert await chosen.run() is State.DONE
    assert bytes(chosen.runs["/next"].output).decode().split() == ["build.txt"]  # that branch's file, not lint's
    assert chosen.runs["/next"].source == chosen.runs["/fan/build"].result == chosen.runs["/fan"].result

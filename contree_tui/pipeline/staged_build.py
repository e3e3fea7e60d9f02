"""Seed 003's multi-stage build with rollback points, as a pipeline on the core: a Serial of four Execs

    setup  (the SOURCE folder synced to /app)  ->  deps  (tag <project>/deps-installed)
           ->  build  (tag <project>/build-complete)  ->  test  (disposable: leaves no snapshot)

each stage running on the previous one's result snapshot. Every stage is a step of the step cache, so an
unchanged re-run is all cache hits. The source is synced in setup, before deps: a changed file changes setup's
inputs, hence its result, hence every later stage's source snapshot, so the build re-runs from deps (the first
stage that reads the source), whatever the file. `--resume-from CHECKPOINT` starts the chain on that checkpoint's
tag, with the source synced into the first stage it runs (a fix made since is what the resumed stage sees).

The checkpoints' tags carry the project's name (`calc/deps-installed`): a tag names one image per target, and two
projects built on one engine must not resume from each other's checkpoints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from contree_tui.pipeline.build_offline import offline_lines, rewrite_command
from contree_tui.pipeline.build_stages import (
    CHECKPOINTS,
    DEFAULT_BUILD,
    DEFAULT_INSTALL,
    DEFAULT_TEST,
    RESUMABLE,
    STAGES,
)
from contree_tui.pipeline.executor import PipelineRun, State
from contree_tui.pipeline.nodes import Exec, FolderSync, PipelineError, Serial

DEST = "/app"
PROJECT_FILES = ("pyproject.toml", "setup.py")
SETUP_COMMAND = ("echo \"source synced to $PWD: $(find . -type f | wc -l) files\"; "
                 "test -f pyproject.toml || test -f setup.py")
LOG_TAIL_LINES = 25  # of the failed stage: pytest's summary and the first failure's end fit, not a whole log


class BuildInputError(PipelineError):
    """A build that cannot start as asked (a missing SOURCE, an unknown checkpoint); str() is the message."""


@dataclass(frozen=True)
class BuildSpec:
    source: Path
    install: str = DEFAULT_INSTALL
    build: str = DEFAULT_BUILD
    test: str = DEFAULT_TEST
    resume_from: str | None = None  # a checkpoint name (deps-installed, build-complete)

    @property
    def project(self) -> str:
        """The checkpoints' tag prefix: the folder's name made a valid tag part."""
        return re.sub(r"[^A-Za-z0-9_-]+", "-", self.source.name).strip("-_") or "build"

    def checkpoint_tag(self, name: str) -> str:
        return f"{self.project}/{name}"

    def stages(self) -> list[str]:
        """The stages this run runs: all four, or those after the resumed checkpoint's stage."""
        if self.resume_from is None:
            return list(STAGES)
        return list(STAGES[STAGES.index(RESUMABLE[self.resume_from]) + 1:])


def check_source(source: str | Path) -> Path:
    """SOURCE as an absolute folder holding a Python project; BuildInputError saying what is wrong."""
    path = Path(source).expanduser()
    if not path.exists():
        raise BuildInputError(f"{source}: no such directory")
    if not path.is_dir():
        raise BuildInputError(f"{source}: not a directory (give the project's folder)")
    if not any((path / name).is_file() for name in PROJECT_FILES):
        raise BuildInputError(f"{source}: no pyproject.toml or setup.py: not a Python project (the default "
                              "--install, --build and --test commands need one)")
    return path.resolve()


def check_resume(name: str | None) -> str | None:
    if name is not None and name not in RESUMABLE:
        raise BuildInputError(f"--resume-from {name!r}: the checkpoints are {', '.join(RESUMABLE)}")
    return name


def build_pipeline(spec: BuildSpec, base: str) -> Serial:
    """The Serial this build runs, starting on `base` (the base image, or the resumed checkpoint's)."""
    commands = {"setup": SETUP_COMMAND, "deps": spec.install, "build": spec.build, "test": spec.test}
    stages = spec.stages()
    root = Serial()
    root.set(image=base, cwd=DEST)
    for stage in stages:
        step = root.add(stage, Exec(commands[stage]))
        if stage in CHECKPOINTS:
            step.set(tag=spec.checkpoint_tag(CHECKPOINTS[stage]))
        if stage == "test":
            step.set(disposable=True)  # test artifacts are not worth a snapshot (seed 003)
    # the source goes into the first stage run: setup normally, the stage after the checkpoint on a resume
    root[stages[0]].set(sync=FolderSync(spec.source, DEST))
    return root


def resume_command(argv: list[str], checkpoint: str) -> str:
    """The command line that was run (`argv`, without any --resume-from) with `--resume-from checkpoint`."""
    return rewrite_command(argv, {"--resume-from": checkpoint})


@dataclass(frozen=True)
class RollbackPoint:
    name: str  # base, setup, deps-installed, build-complete
    image: str
    tag: str | None = None


def rollback_points(run: PipelineRun, spec: BuildSpec, base: str) -> list[RollbackPoint]:
    """The snapshots this build reached, in order: the base, then each stage's checkpoint that is Done."""
    points = [RollbackPoint("base" if spec.resume_from is None else spec.resume_from, base,
                            None if spec.resume_from is None else spec.checkpoint_tag(spec.resume_from))]
    for stage in spec.stages():
        node = run.runs.get(f"/{stage}")
        if node is None or node.state is not State.DONE or not node.result or stage == "test":
            continue
        name = CHECKPOINTS.get(stage, "source-synced" if stage == "setup" else stage)
        points.append(RollbackPoint(name, node.result, node.tag))
    return points


def failed_stage(run: PipelineRun) -> str | None:
    for stage in STAGES:
        node = run.runs.get(f"/{stage}")
        if node is not None and node.state in (State.ERROR, State.KILLED):
            return stage
    return None


def report_lines(run: PipelineRun, spec: BuildSpec, base: str, argv: list[str]) -> list[str]:
    """What the build says at its end: each stage (ran or cached), the rollback points, and on a failure the
    failed stage with its log's tail and the exact command that resumes from the latest checkpoint."""
    lines: list[str] = []
    cached = [s for s in spec.stages() if run.runs[f"/{s}"].cached]
    ran = [s for s in spec.stages() if run.runs[f"/{s}"].state is State.DONE and not run.runs[f"/{s}"].cached]
    if cached:
        lines.append(f"cache hits (unchanged inputs, nothing run): {', '.join(cached)}")
    if ran:
        lines.append(f"ran: {', '.join(ran)}")
    points = rollback_points(run, spec, base)
    lines.append("rollback points:")
    width = max(len(p.name) for p in points)
    lines += [f"  {p.name:<{width}}  {p.image}" + (f"  (tag {p.tag})" if p.tag else "") for p in points]
    failed = failed_stage(run)
    if failed is None:
        test = run.runs.get("/test")
        said = bytes(test.output).decode(errors="replace").strip().splitlines() if test is not None else []
        # pytest's summary line ("2 passed in 0.10s"), without the ===== it is framed in unless -q
        result = [f"test: {said[-1].strip('= ') or said[-1]}"] if said else []
        return [f"build done: {' -> '.join(spec.stages())}", *result, *lines]
    node = run.runs[f"/{failed}"]
    header = [f"build FAILED at stage {failed} ({node.error}): {run.nodes[f'/{failed}'].describe()}"]
    tail = bytes(node.output).decode(errors="replace").rstrip("\n").splitlines()[-LOG_TAIL_LINES:]
    header += [f"  | {line}" for line in tail]
    resumable = [p.name for p in points if p.name in RESUMABLE]
    commands = {"deps": spec.install, "build": spec.build}
    offline = offline_lines(failed, bytes(node.output), commands, argv, resumable[-1] if resumable else None)
    if offline:  # no index: running the same command again fails the same way; this says what will not
        lines += offline
    elif resumable:
        lines.append(f"to resume after a fix (the source is synced again; the stages up to {resumable[-1]} "
                     "are not re-run):")
        lines.append(f"  {resume_command(argv, resumable[-1])}")
        if len(resumable) > 1:
            lines.append(f"  (or from {', '.join(reversed(resumable[:-1]))}: --resume-from "
                         f"{resumable[-2]})")
    else:
        lines.append("no checkpoint before this stage: fix it and run the same command again (unchanged stages "
                     "are cache hits)")
    return [*header, *lines]


__all__ = ["BuildInputError", "BuildSpec", "RollbackPoint",
           "build_pipeline", "check_resume", "check_source", "failed_stage", "report_lines", "resume_command",
           "rollback_points"]

"""Instance operations from spawn to result: validate, wait for admission, run the sandbox, judge its
limits, commit its layer, record the end; plus what acts on a live run (exec, cancel, wait).

Every run reports through the EventSink (engine/event_log.py); this module never calls back into the
Engine, which owns the shared parts (store, keepers, cgroups, admission) and hands them in.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from contree_tui.engine.admission import Admission, Withdrawn
from contree_tui.engine.config import EngineConfig
from contree_tui.engine.disk_space import require_free
from contree_tui.engine.event_log import EventLog
from contree_tui.engine.exec_process import ExecRun
from contree_tui.engine.instance import InstanceRun, Verdict, command_line, injected_files, instance_result, masked_env
from contree_tui.engine.layer_cap import LayerWatch, layer_tmpfs_full, mount_layer_tmpfs, unmount_layer_tmpfs
from contree_tui.engine.models import (
    Conflict,
    EngineError,
    Image,
    NotFound,
    Operation,
    OperationStatus,
    SpawnRequest,
)
from contree_tui.engine.run_commit import RunCommit
from contree_tui.engine.sandbox.address_space_note import address_space_note
from contree_tui.engine.sandbox.keepers import KeeperPool
from contree_tui.engine.sandbox.launch import LaunchSpec
from contree_tui.engine.sandbox.limit_plan import LimitPlan
from contree_tui.engine.sandbox.limits import CgroupPool
from contree_tui.engine.sandbox.network import missing_reason, pasta_binary
from contree_tui.engine.sandbox.nsenter import exec_in_sandbox
from contree_tui.engine.scratch_trash import ScratchTrash
from contree_tui.engine.spawn_request import parse_spawn_request, stored_request
from contree_tui.engine.state_dir import StateDir
from contree_tui.engine.store import Store, iso_now


class InstanceRuns:
    def __init__(self, state: StateDir, config: EngineConfig, store: Store, events: EventLog, cgroups: CgroupPool,
                 keepers: KeeperPool, admission: Admission, lowers_for: Callable[[Image], list[str]],
                 limit_plan: LimitPlan | None = None) -> None:
        self.config, self.store, self.events = config, store, events
        self.limit_plan = limit_plan or LimitPlan(rootless=False, cgroup_version=cgroups.version)
        self.cgroups, self.keepers, self.admission = cgroups, keepers, admission
        self._lowers_for = lowers_for
        self._runs: dict[str, InstanceRun] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel_requested: set[str] = set()
        self._background: set[asyncio.Future[None]] = set()  # exec'd processes and scratch sweeps
        # Plain strings for the paths every run needs: pathlib objects cost the event loop more than the
        # syscalls they name.
        self._layers_dir, self._runs_dir, self._blobs_dir = str(state.layers), str(state.runs), str(state.blobs)
        self.network_layer = f"{state.root}/network"  # /etc/resolv.conf for networked runs
        # Networking needs pasta (sandbox/network.py); without it, runs with networking on are refused.
        self.network_available = pasta_binary() is not None
        self.layer_watch = LayerWatch(self._layers_dir, config.min_free_bytes, self._stop_run)
        self.trash = ScratchTrash(self._background)
        self.commits = RunCommit(store, self._layers_dir, self._runs_dir, config.squash_at)

    async def spawn(self, body: dict[str, Any], image: Image) -> Operation:
        """Validate a spawn request on `image`, record the operation and start it; returns at once."""
        request = parse_spawn_request(body, image.uuid, self.config.max_layer_bytes)
        if request.networking and not self.network_available:
            # Looked at again: the refusal tells an administrator to `chmod 0666 /dev/net/tun`, and this engine
            # (and its factory, which starts pasta) must then network without a restart.
            self.network_available = pasta_binary() is not None
            if not self.network_available:
                raise EngineError(missing_reason())
        self.check_ids(request)
        timeout = request.timeout or self.config.default_timeout
        if timeout > self.config.max_timeout:
            raise EngineError(f"timeout: at most {self.config.max_timeout:g} s on this engine")
        request = replace(request, timeout=timeout)
        blobs = {f.file_uuid: self._uploaded(f.path, f.file_uuid) for f in request.files}
        op = Operation(uuid=str(uuid.uuid4()), kind="instance", status=OperationStatus.PENDING,
                       created_at=time.time(), image_uuid=image.uuid,
                       request={**stored_request(body), "image": image.uuid, "timeout": timeout})
        self.store.add_operation(op)
        self.events.begin(op.uuid)
        self._tasks[op.uuid] = asyncio.create_task(self._run_instance(op.uuid, request, image, blobs))
        return op

    def _uploaded(self, path: str, file_uuid: str) -> str:
        """The blob name (sha256) of an uploaded file a spawn names; 400 if none (the spec's statuses for
        POST /instances are 400/401/403)."""
        try:
            return self.store.file_by_uuid(file_uuid).sha256
        except NotFound:
            raise EngineError(f"files[{path}]: no file {file_uuid} was uploaded (POST /files first)") from None

    def check_ids(self, request: SpawnRequest) -> None:
        """Sandboxes have ids 0..count-1 only (userns.py): a larger uid could not be set, nor owned on disk."""
        users = self.keepers.users  # what the keepers' sandboxes are mapped to (None: the host's own ids)
        if users is None:
            return
        limit = users.ids.count
        if request.uid >= limit or request.gid >= limit:
            raise EngineError(f"uid/gid: at most {limit - 1} on this engine (sandboxes map {limit} ids)")
        for item in request.files:
            if item.uid >= limit or item.gid >= limit:
                raise EngineError(f"files[{item.path}]: uid and gid must be below {limit} on this engine")

    async def _run_instance(self, op_uuid: str, request: SpawnRequest, image: Image, blobs: dict[str, str]) -> None:
        # Below the disk floor the run ends FAILED with the reason rather than the POST answering 507: every
        # 5xx is transient to contree-cli, which retried such a spawn without end (as it did imports).
        try:
            require_free(self._layers_dir, self.config.min_free_bytes, "spawn")
        except EngineError as exc:
            self._end_unstarted(op_uuid, str(exc))
            return
        waiting = self.admission.enter(op_uuid, self.config.memory_reserve())
        if waiting is not None:  # PENDING until there is room (the usual case does not wait)
            try:
                await waiting
            except Withdrawn as exc:
                self._end_unstarted(op_uuid, str(exc))
                return
        try:
            await self._admitted_run(op_uuid, request, image, blobs)
        finally:
            self.admission.leave(op_uuid)

    def _end_unstarted(self, op_uuid: str, reason: str) -> None:
        """A queued run taken out of line: CANCELLED when cancelled, else FAILED with the reason."""
        status = "CANCELLED" if reason == "cancelled" else "FAILED"
        self.events.update_operation(op_uuid, status=OperationStatus(status), error=reason, finished_at=time.time())
        self.events.emit(op_uuid, "shutdown", 0, {"stopped_at": iso_now(), "reason": "signal"})
        self.events.emit_completion(op_uuid, status, None, reason, 0, 0)
        self._tasks.pop(op_uuid, None)
        self._cancel_requested.discard(op_uuid)
        self.events.end(op_uuid)

    async def _admitted_run(self, op_uuid: str, request: SpawnRequest, image: Image, blobs: dict[str, str]) -> None:
        started = time.time()
        self.events.update_operation(op_uuid, status=OperationStatus.EXECUTING, started_at=started)
        self.events.emit(op_uuid, "init", 0, {"started_at": iso_now(), "runtime_path": "contree-tui-engine",
                                       "verbose": False, "init_pid": 1, "hostname": request.hostname})
        run_dir = f"{self._runs_dir}/{op_uuid}"  # made by the sandbox's keeper (or here, as a tmpfs)
        slot: str | None = None
        tmpfs = False
        try:
            if request.disposable:  # the cap is the tmpfs's size (engine/layer_cap.py)
                await asyncio.to_thread(mount_layer_tmpfs, run_dir, request.max_layer_bytes)
                tmpfs = True
            argv, env = command_line(request, image)
            keeper, slot = await self.keepers.take(self.config.limits)
            asyncio.get_running_loop().call_soon(self.keepers.refill)
            # An idle keeper started while pasta could not (a moment's /dev/net/tun mode, a pasta slow under
            # load) has no network; a fresh one may, and after as many as the pool holds the reason is said.
            for _ in range(self.keepers.size + 1):
                if not request.networking or keeper.networked:
                    break
                keeper.discard()
                if slot is not None:
                    self.cgroups.release(slot)
                    slot = None
                keeper, slot = await self.keepers.take(self.config.limits)
            if request.networking and not keeper.networked:  # never the host's network namespace
                keeper.discard()
                raise EngineError("networking unavailable: " + (
                    "pasta did not start a network for this sandbox" if pasta_binary() else missing_reason()))
            lowers = self._lowers_for(image)
            if request.networking:
                lowers.insert(0, self.network_layer)
            spec = LaunchSpec(
                lowers=lowers, upper=f"{run_dir}/upper", work=f"{run_dir}/work",
                merged=f"{run_dir}/merged", argv=argv, env=env,
                cwd=request.cwd or image.workdir or "/", uid=request.uid, gid=request.gid,
                hostname=request.hostname, network=request.networking,
                files=injected_files(request, blobs), blob_dir=self._blobs_dir,
                rlimits=self.limit_plan.rlimits(self.config.limits, request.max_layer_bytes),
                pid_max=self.limit_plan.pid_max(self.config.limits),
            )
            run = InstanceRun(self.events, op_uuid, request, image, run_dir)
            run.cgroup_procs = self.cgroups.procs_files(slot) if slot is not None else []
            self._runs[op_uuid] = run
            if op_uuid in self._cancel_requested:  # cancelled before its sandbox existed
                run.kill("cancelled")
            if not tmpfs:
                self.layer_watch.watch(op_uuid, spec.upper, request.max_layer_bytes)
            verdict = await run.run(spec, keeper.start)
            self.layer_watch.unwatch(op_uuid)
            # The tmpfs is unmounted in `finally`, after the waiters have their result.
            self._judge_limits(verdict, request, slot, tmpfs and layer_tmpfs_full(run_dir))
            await self._finish(op_uuid, request, image, verdict, run_dir, time.time() - started)
        except Exception as exc:  # noqa: BLE001 - the operation must end, whatever broke
            self.events.update_operation(op_uuid, status=OperationStatus.FAILED, error=f"engine error: {exc}",
                                        finished_at=time.time())
            self.events.emit(op_uuid, "shutdown", 0, {"stopped_at": iso_now(), "reason": "spawn_failed"})
            self.events.emit_completion(op_uuid, "FAILED", None, f"engine error: {exc}", 0, time.time() - started)
        finally:
            self.layer_watch.unwatch(op_uuid)
            if tmpfs:  # before the slot is reused: the tmpfs's pages are charged to it
                await asyncio.to_thread(unmount_layer_tmpfs, run_dir)
            self._runs.pop(op_uuid, None)
            self._tasks.pop(op_uuid, None)
            self._cancel_requested.discard(op_uuid)
            if slot is not None:
                self.cgroups.release(slot)
            self.events.end(op_uuid)
            self.trash.discard(run_dir)

    def _judge_limits(self, verdict: Verdict, request: SpawnRequest, slot: str | None, filled: bool) -> None:
        """A run the OOM killer hit, or that filled its tmpfs upper, is FAILED whatever its command said; so is one
        that failed of RLIMIT_AS (no cgroups), as far as the evidence shows it."""
        if verdict.status == "CANCELLED":
            return
        if slot is not None and self.cgroups.oom_kills_since_last(slot):
            verdict.status, verdict.reason = "FAILED", "signal"
            verdict.error = (f"out of memory: the kernel killed a process of this run (limit "
                             f"{self.config.limits.memory_bytes} bytes a run, "
                             f"{self.admission.memory_budget} bytes for all runs together)")
            if request.disposable:
                verdict.error += "; a disposable run's files count against its memory too"
        elif self.limit_plan.cpu_time_used_up(verdict.exit, verdict.timed_out):
            verdict.status, verdict.reason = "FAILED", "signal"
            verdict.error = (f"cpu time: the command used its {self.limit_plan.cpu_seconds} s of CPU time "
                             "(RLIMIT_CPU, per process) and the kernel stopped it")
        elif filled:
            verdict.status, verdict.reason = "FAILED", "signal"
            verdict.error = (f"max_layer_bytes: the run filled its writable layer ({request.max_layer_bytes} "
                             "bytes); writes past it failed (no space left on device) and nothing was kept")
        elif not self.limit_plan.cgroups and verdict.status == "SUCCESS" and (memory := address_space_note(
                self.config.limits.memory_bytes, verdict.exit, verdict.timed_out, verdict.stderr.kept)):
            verdict.status, verdict.error = "FAILED", memory  # the OOM kill's case without cgroups
            # (sandbox/address_space_note.py: only where the evidence points at it)

    def _stop_run(self, op_uuid: str, reason: str) -> None:
        run = self._runs.get(op_uuid)
        if run is not None:
            run.kill(reason)

    async def _finish(self, op_uuid: str, request: SpawnRequest, image: Image, verdict: Verdict, run_dir: str,
                      elapsed: float) -> None:
        if verdict.exit is not None:
            self.events.emit(op_uuid, "exit", 1, {
                "pid": verdict.pid, "code": verdict.exit.get("code", -1), "signal": verdict.exit.get("signal", -1),
                "core_dump": verdict.exit.get("core_dump", False), "timed_out": verdict.timed_out,
                "duration_ms": int(elapsed * 1000), "resources": verdict.exit.get("resources", {})})
        self.events.emit(op_uuid, "shutdown", 0, {"stopped_at": iso_now(), "reason": verdict.reason})
        status, error = verdict.status, verdict.error
        result_image: str | None = None
        size = 0
        if status == "SUCCESS" and not request.disposable:
            try:
                result_image, size = await self.commits.commit(op_uuid, request, image, run_dir)
            except EngineError as exc:
                status, error = "FAILED", str(exc)
        result = instance_result(verdict, elapsed)
        usage = (verdict.exit or {}).get("resources") or {}
        self.events.update_operation(
            op_uuid, status=OperationStatus(status), error=error, finished_at=time.time(),
            result_image_uuid=result_image, image_size=size if result_image else None,
            consumed_cpu=(usage.get("user_time_us", 0) + usage.get("sys_time_us", 0)) / 1e6,
            consumed_memory=usage.get("max_rss_kb", 0), result=result)
        self.events.emit_completion(op_uuid, status, result_image, error, size, elapsed)

    async def exec_process(self, op_uuid: str, body: dict[str, Any]) -> int:
        """Start another process (an ExecSpec) inside a running instance; returns its spid (≥ 2)."""
        op = self.store.get_operation(op_uuid)
        run = self._runs.get(op_uuid)
        if op.status.is_terminal:
            raise Conflict(f"operation {op_uuid} is not running ({op.status.value})")
        if run is None or not run.sandbox_pid or not run.command_pid or run.finished:
            raise EngineError(f"operation {op_uuid} has no running sandbox yet; retry shortly", status=425)
        request = parse_spawn_request(body, run.image.uuid)
        self.check_ids(request)
        argv, env = command_line(request, run.image)
        spid = run.next_spid()
        launched = exec_in_sandbox(
            run.sandbox_pid, argv, env, request.cwd or run.image.workdir or "/", request.uid, request.gid,
            self.limit_plan.rlimits(self.config.limits, run.request.max_layer_bytes),
            run.cgroup_procs)
        child = ExecRun(self.events, op_uuid, spid, launched, request.truncate_output_at, {
            "command": request.command, "args": argv[1:], "shell": request.shell, "cwd": request.cwd or "/",
            "uid": request.uid, "gid": request.gid, "timeout": None,
            "truncate_at": request.truncate_output_at, "env": masked_env(env)}, request.stdin)
        run.children[spid] = child
        task = asyncio.ensure_future(child.run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return spid

    def is_starting(self, op_uuid: str) -> bool:
        """The operation is being run by this engine: its events are coming (follow waits for them)."""
        return op_uuid in self._tasks

    def instance_run(self, op_uuid: str) -> InstanceRun | None:
        """The live run of an operation (its sandbox is up or starting), else None."""
        return self._runs.get(op_uuid)

    async def wait(self, op_uuid: str) -> Operation:
        task = self._tasks.get(op_uuid)
        if task is not None:
            await asyncio.shield(task)
        return self.store.get_operation(op_uuid)

    async def cancel(self, op_uuid: str) -> Operation:
        op = self.store.get_operation(op_uuid)
        if op.status.is_terminal:
            raise Conflict(f"operation {op_uuid} already ended ({op.status.value})")
        run = self._runs.get(op_uuid)
        if run is not None:
            run.kill("cancelled")
        elif self.admission.withdraw(op_uuid, "cancelled"):
            pass  # it was waiting for admission: it ends CANCELLED without starting
        elif op_uuid in self._tasks:
            self._cancel_requested.add(op_uuid)
        return await self.wait(op_uuid)

    async def stop_runs(self, reason: str = "engine stopped") -> None:
        """Kill every running sandbox and let each operation end (FAILED with `reason`); runs still waiting
        for admission end FAILED too, without starting."""
        for op_uuid in self.admission.queued():
            self.admission.withdraw(op_uuid, reason)
        for run in list(self._runs.values()):
            run.kill(reason)
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def drain(self) -> None:
        """Until every background job (exec'd processes, scratch sweeps) has ended."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

"""What the main screen does to running operations: `:cancel`, `:wait` and the two-stage interrupt (`c` /
ctrl+c: SIGINT first, the operation cancelled on a second press). A mixin of MainScreen, through CommandVerbs.
"""

from __future__ import annotations

import time
from typing import Any

from contree_client.models import OperationStatus
from textual import work

from contree_tui.client.operations import Interrupter, InterruptStage
from contree_tui.tui.command_log import LogEntry
from contree_tui.tui.messages import OperationUpdated
from contree_tui.tui.model import Operation
from contree_tui.tui.outcome import one_line
from contree_tui.tui.verbs import Cancel, Wait

INTERRUPT_WINDOW = 5.0  # seconds within which a second `c` cancels what the first one signalled


class OperationVerbs:
    """A base of CommandVerbs (which calls `_init_operation_verbs` and dispatches `:cancel` and `:wait` here):
    uses MainScreen's backend, table, command log and `_followed`, and CommandVerbs' `_carry_out` and `_done`."""

    backend: Any
    _followed: set[str]

    def _init_operation_verbs(self) -> None:
        # per operation: its interrupter and when `c` was first pressed on it
        self._interrupts: dict[str, tuple[Interrupter, float]] = {}

    def _verb_cancel(self, verb: Cancel, entry: LogEntry) -> None:
        op = self._target_operation()
        if op is None:
            self._done(entry, "nothing running to cancel", ok=False)
            return
        self._carry_out(entry, f"cannot cancel {op.uuid[:8]}", self._cancel(op))

    async def _cancel(self, op: Operation) -> str:
        cancelled = await self._backend().cancel(op.uuid)
        name = one_line(op.command)
        return f"cancelled {name}" if cancelled else f"{name} had already ended"

    def _verb_wait(self, verb: Wait, entry: LogEntry) -> None:
        # `:wait` waits for what this session started: another client's run (an agent's hour-long job, one
        # left running elsewhere) would hold it for as long as that runs; `:wait all` takes those too.
        everyone = [op.uuid for op in self.table.operations.values() if op.running]
        own = set(getattr(self._backend(), "spawned", set(everyone)))
        running = everyone if verb.everyone else [uuid for uuid in everyone if uuid in own]
        if not running:
            others = len(everyone)
            self._done(entry, f"nothing of this session running; {others} of other clients: :wait all" if others
                       else "nothing running")
            return
        self.notify(f"waiting for {len(running)} operation{'s' if len(running) != 1 else ''}…", title=":wait")
        self._carry_out(entry, ":wait failed", self._wait(running))

    async def _wait(self, running: list[str]) -> str:
        backend = self._backend()
        statuses = await backend.wait(running)
        for uuid in running:  # one not followed here (started elsewhere) learns its end from the server
            op = self.table.operations.get(uuid)
            if op is not None and op.running and uuid not in self._followed:
                self.post_message(OperationUpdated(await backend.operation(uuid)))
        return wait_summary([str(getattr(s, "value", s)) for s in statuses.values()])

    def _target_operation(self) -> Operation | None:
        """The selected operation if it runs, else the newest running one."""
        selected = self.table.operations.get(self.table.selected_uuid or "")
        if selected is not None and selected.running:
            return selected
        running = [op for op in self.table.operations.values() if op.running]
        return running[-1] if running else None

    def action_interrupt(self) -> None:
        """First press: SIGINT to the command (it may clean up, its snapshot is kept); a second press within
        INTERRUPT_WINDOW seconds cancels the operation."""
        op = self._target_operation()
        if self.backend is None or op is None:
            self.notify("nothing running to interrupt (q quits)", title="interrupt", severity="warning")
            return
        if op.is_import:  # no command to signal: an import is cancelled at once
            entry = self.command_log.record(self.clock(), "interrupt", op.command)
            self._carry_out(entry, f"cannot cancel {op.uuid[:8]}", self._cancel(op))
            return
        now = time.monotonic()
        held = self._interrupts.get(op.uuid)
        if held is None or now - held[1] > INTERRUPT_WINDOW:
            held = (self.backend.interrupter(op.uuid), now)
            self._interrupts[op.uuid] = held
        self._interrupt(op, held[0])

    @work(group="interrupt", exit_on_error=False, description="interrupt")
    async def _interrupt(self, op: Operation, interrupter: Interrupter) -> None:
        stage = await self._backend().interrupt(interrupter)
        name = one_line(op.command)
        if stage is InterruptStage.SIGNALLED:
            message = f"sent SIGINT to {name}; press c again within {INTERRUPT_WINDOW:g} s to kill it"
            self.notify(message, title="interrupt", severity="warning", timeout=INTERRUPT_WINDOW)
        else:
            self._interrupts.pop(op.uuid, None)
            message = f"cancelled {name}" if stage is InterruptStage.CANCELLED else f"{name} had already ended"
            self.notify(message, title="interrupt")
        self.command_log.record(self.clock(), "interrupt", op.command, message)


def wait_summary(values: list[str]) -> str:
    """What `:wait` says when its operations have ended ("all 1 operations ended" read oddly: one is named as one)."""
    ok = values.count(OperationStatus.SUCCESS.value)
    if len(values) == 1:
        return f"the operation ended: {'succeeded' if ok else 'did not succeed'}"
    failed = f", {len(values) - ok} did not succeed" if ok != len(values) else ""
    return f"all {len(values)} operations ended: {ok} succeeded{failed}"

"""App-wide messages: what workers and status objects tell the screen. Widget-specific ones live on the
widget (SnapshotTree.Chosen, CommandBar.Run, LogView.FollowState)."""

from __future__ import annotations

from textual.message import Message

from contree_tui.client.reconnect import ConnectionState
from contree_tui.tui.data import Backend
from contree_tui.tui.model import Operation


class Connected(Message):
    """The backend answered; the screen loads the tree."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend


class LinkChanged(Message):
    """The connection's state changed (connected, reconnecting…, failed)."""

    def __init__(self, state: ConnectionState) -> None:
        super().__init__()
        self.state = state

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LinkChanged)


class OperationUpdated(Message):
    """An operation's status, exit code or result changed (superseded updates of the same one are dropped)."""

    def __init__(self, operation: Operation) -> None:
        super().__init__()
        self.operation = operation

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, OperationUpdated) and message.operation.uuid == self.operation.uuid

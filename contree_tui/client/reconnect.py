"""Retry with backoff while the server is unreachable, and say so: connected / reconnecting / failed.

Only transport failures are retried (the request never got an answer) and the gateway statuses a proxy in
front of a hosted Contree gives while its backend restarts (502/503/504). Every other answer, errors
included, proves the server is there, so the state goes back to "connected" and the error is the caller's.
A non-idempotent request is retried only when the connection itself could not be made, so a run is never
spawned twice because an answer got lost.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
from contree_client.exceptions import APIConnectionError, APIStatusError

from contree_tui.client.observable import Observable

T = TypeVar("T")

GATEWAY_STATUSES = frozenset({502, 503, 504})


class LinkState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"


@dataclass(frozen=True)
class ConnectionState:
    """What the status bar shows: `reconnecting` carries the attempt and the delay before it."""

    state: LinkState
    attempt: int = 0
    delay: float = 0.0
    reason: str = ""

    @classmethod
    def connecting(cls) -> ConnectionState:
        return cls(LinkState.CONNECTING)

    @classmethod
    def connected(cls) -> ConnectionState:
        return cls(LinkState.CONNECTED)

    @classmethod
    def reconnecting(cls, attempt: int, delay: float, reason: str) -> ConnectionState:
        return cls(LinkState.RECONNECTING, attempt, delay, reason)

    @classmethod
    def failed(cls, reason: str) -> ConnectionState:
        return cls(LinkState.FAILED, reason=reason)

    def describe(self) -> str:
        if self.state is LinkState.RECONNECTING:
            return f"reconnecting (attempt {self.attempt}, next in {self.delay:.1f} s): {self.reason}"
        if self.state is LinkState.FAILED:
            return f"disconnected: {self.reason}"
        return self.state.value


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts (the last one repeats), with ±`jitter` spread so many clients that lost the
    same server do not all come back in the same instant."""

    delays: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    max_attempts: int | None = 6  # retries after the first try; None retries forever
    jitter: float = 0.1

    def delay(self, attempt: int) -> float:
        base = self.delays[min(attempt - 1, len(self.delays) - 1)]
        return base * (1 + random.uniform(-self.jitter, self.jitter)) if self.jitter else base


class GaveUp(Exception):
    """Every attempt failed with a transient error; `last` is the final one."""

    def __init__(self, reason: str, attempts: int, last: BaseException) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.last = last


def describe_failure(exc: BaseException) -> str:
    """A one-line reason for a transport failure (the client's message, or the httpx cause's)."""
    cause = exc.__cause__
    text = str(exc) or (str(cause) if cause else "") or type(exc).__name__
    if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout) and "connect" not in text.lower():
        text = f"cannot connect: {text}"
    return text


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, APIConnectionError):
        return True
    return isinstance(exc, APIStatusError) and exc.status in GATEWAY_STATUSES


def never_sent(exc: BaseException) -> bool:
    """The request did not leave: safe to retry even a non-idempotent one."""
    return isinstance(exc, APIConnectionError) and isinstance(
        exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout)


async def with_reconnect(call: Callable[[], Awaitable[T]], status: Observable[ConnectionState], backoff: Backoff,
                         *, idempotent: bool = True,
                         before_retry: Callable[[], Awaitable[None]] | None = None) -> T:
    """`await call()`, retrying transient failures per `backoff` while `status` says reconnecting.

    `before_retry` runs before each new attempt (the embedded target restarts its engine there); if it
    raises, that error ends the retries. Raises GaveUp once the attempts are spent."""
    attempt = 0
    while True:
        try:
            result = await call()
        except (APIConnectionError, APIStatusError) as exc:
            retryable = is_transient(exc) if idempotent else never_sent(exc)
            if not retryable:
                if isinstance(exc, APIStatusError):
                    status.set(ConnectionState.connected())
                raise
            attempt += 1
            reason = describe_failure(exc)
            if backoff.max_attempts is not None and attempt > backoff.max_attempts:
                status.set(ConnectionState.failed(reason))
                raise GaveUp(reason, attempt, exc) from exc
            delay = backoff.delay(attempt)
            status.set(ConnectionState.reconnecting(attempt, delay, reason))
            await asyncio.sleep(delay)
            if before_retry is not None:
                await before_retry()
            continue
        status.set(ConnectionState.connected())
        return result

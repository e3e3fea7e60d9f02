"""Stream payloads in the Contree shapes: `StreamRepr{value, encoding, truncated}` and event chunks."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

_PRINTABLE = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}
EVENT_CHUNK_BYTES = 8192  # the spec: stream events carry "at most a few KB"


def encode_stream(data: bytes, *, truncated: bool = False) -> dict[str, Any]:
    """ascii when every byte is printable or \\t\\n\\r, else base64 (the spec's `StreamRepr.from_bytes`)."""
    if all(b in _PRINTABLE for b in data):
        return {"value": data.decode("ascii"), "encoding": "ascii", "truncated": truncated}
    return {"value": base64.b64encode(data).decode("ascii"), "encoding": "base64", "truncated": truncated}


def decode_stream(payload: dict[str, Any]) -> bytes:
    value = payload.get("value") or ""
    if payload.get("encoding") == "base64":
        return base64.b64decode(value)
    return value.encode("utf-8")


class CappedStream:
    """Collects one stream of a process: what fits under the cap is kept and emitted, the rest counted."""

    def __init__(self, name: str, cap: int) -> None:
        self.name = name
        self.cap = cap
        self.kept = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Return the chunks to emit as events for `data`."""
        room = self.cap - len(self.kept)
        accepted = data[:max(room, 0)]
        self.dropped += len(data) - len(accepted)
        self.kept += accepted
        return [accepted[i:i + EVENT_CHUNK_BYTES] for i in range(0, len(accepted), EVENT_CHUNK_BYTES)]

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def result(self) -> dict[str, Any]:
        return encode_stream(bytes(self.kept), truncated=self.truncated)


EmitMany = Callable[[list[tuple[str, int | None, dict[str, Any]]]], None]


class ProcessOutput:
    """stdout and stderr of one process: held until its spawn event is out (so `spawn` always comes first),
    then emitted as capped chunk events on its spid."""

    def __init__(self, emit_many: EmitMany, spid: int, cap: int) -> None:
        self.emit_many = emit_many
        self.spid = spid
        self.stdout = CappedStream("stdout", cap)
        self.stderr = CappedStream("stderr", cap)
        self.spawned = False
        self._held: list[tuple[int, bytes]] = []

    def feed(self, which: int, data: bytes) -> None:
        """`which` is 1 for stdout, 2 for stderr."""
        if not self.spawned:
            self._held.append((which, data))
            return
        stream = self.stdout if which == 1 else self.stderr
        chunks = stream.feed(data)
        if chunks:
            self.emit_many([(stream.name, self.spid, encode_stream(c)) for c in chunks])

    def release(self) -> None:
        """The spawn event is out (or never will be): emit what was held, and from now on directly."""
        held, self._held = self._held, []
        self.spawned = True
        for which, data in held:
            self.feed(which, data)

    def emit_truncations(self) -> None:
        """At EOF: a `truncated` event for each stream that crossed its cap."""
        items = [("truncated", self.spid, {"stream": s.name, "bytes_emitted": len(s.kept), "bytes_dropped": s.dropped})
                 for s in (self.stdout, self.stderr) if s.truncated]
        if items:
            self.emit_many(items)

"""`contree-tui engine bootstrap debian`: build (or find in the cache) a Debian rootfs tar, then import it into
the local engine through its API (`POST /v1/images/import` with `rootfs:PATH`), as any client would: the
engine may be serving already, or is started on demand (embedded.py).

Lines on stderr, one per stage ("bootstrap: downloading packages (12 s)"), the import's progress as
`contree-tui import` shows it (a live bar on a terminal, a line a step otherwise), then
"imported as <uuid> (tag debian:bookworm) in N s" on stdout. Exit codes: 0 imported; 1 the build or the import
failed (the reason on one line: mmdebstrap's, apt's or the engine's); 2 mmdebstrap is missing or the
engine cannot be reached.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from contree_client.exceptions import APIStatusError, ContreeError

from contree_tui.client.connection import ConnectionProblem, connect, embedded_target
from contree_tui.client.debian_bootstrap import (
    DEFAULT_INCLUDES,
    BootstrapError,
    BootstrapSpec,
    Tarball,
    default_suite,
    ensure_tarball,
)
from contree_tui.client.image_import import ImportSpec, follow_import, start_import
from contree_tui.client.operations import cancel_operation
from contree_tui.client.progress import ProgressLine

IMPORT_TIMEOUT = 600  # seconds: a ~300 MB tar extracts in ~10 s; a loaded machine gets room


def parse_includes(text: str | None) -> tuple[str, ...]:
    """`--include a,b c`: None → DEFAULT_INCLUDES; "" → nothing beyond the variant."""
    if text is None:
        return DEFAULT_INCLUDES
    return tuple(p for p in text.replace(",", " ").split() if p)


class StageLines:
    """One stderr line per stage, with the seconds since the start. On a terminal the current stage's line
    keeps counting in place (once a second), so a 40 s package installation visibly moves."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.tty = err.isatty()
        self.started = time.monotonic()
        self.current: str | None = None

    def _line(self, text: str) -> str:
        return f"bootstrap: {text} ({time.monotonic() - self.started:.0f} s)"

    def say(self, text: str) -> None:
        if self.tty:
            self.err.write(("\n" if self.current is not None else "") + self._line(text))
            self.current = text
        else:
            self.err.write(self._line(text) + "\n")
        self.err.flush()

    def end(self) -> None:
        if self.tty and self.current is not None:
            self.err.write("\n")
            self.err.flush()
            self.current = None

    async def tick(self) -> None:
        while self.tty:
            await asyncio.sleep(1)
            if self.current is not None:
                self.err.write("\r\x1b[K" + self._line(self.current))
                self.err.flush()


def run_bootstrap(opts: Mapping[str, Any], err: TextIO | None = None, out: TextIO | None = None) -> int:
    lines = StageLines(err or sys.stderr)
    out = out or sys.stdout

    async def go() -> tuple[str, str]:
        ticker = asyncio.ensure_future(lines.tick())
        try:
            suite = opts.get("suite") or default_suite()
            spec = BootstrapSpec(suite, parse_includes(opts.get("include")))
            tag = opts.get("tag") or f"debian:{suite}"
            tarball = await ensure_tarball(spec, lines.say, refresh=bool(opts.get("refresh")))
            size = f"{tarball.size / 1e6:.0f} MB"
            lines.say(f"cached {tarball.path} ({size})" if tarball.cached
                      else f"built {tarball.path} ({size}) in {tarball.seconds:.0f} s")
            lines.say("importing into the engine")
            lines.end()  # the import's own progress line takes over (a live bar on a terminal)
            return await import_tarball(tarball, tag, opts.get("state_dir"), lines.err), tag
        finally:
            ticker.cancel()
            lines.end()

    try:
        image, tag = asyncio.run(go())
    except BootstrapError as exc:
        print(f"contree-tui: {exc}", file=lines.err, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    print(f"imported as {image} (tag {tag}) in {time.monotonic() - lines.started:.0f} s", file=out, flush=True)
    return 0


async def import_tarball(tarball: Tarball, tag: str, state_dir: str | os.PathLike[str] | None,
                         err: TextIO | None = None) -> str:
    """Import the tar into the local engine (started if need be) as `tag`, its progress shown as `contree-tui
    import` shows it (client/progress.py); the image's uuid."""
    try:
        connection = await connect(embedded_target(state_dir))
    except ConnectionProblem as exc:
        raise BootstrapError(f"the engine cannot be reached: {exc}", exit_code=2) from None
    spec = ImportSpec(ref=f"rootfs:{tarball.path}", tag=tag, timeout=IMPORT_TIMEOUT)
    line = ProgressLine(err or sys.stderr, tag)
    async with connection:
        try:
            operation = await start_import(connection, spec)
            try:
                result = await follow_import(connection, operation, line.update)
            except asyncio.CancelledError:  # Ctrl-C: the import stops too, leaving nothing (the engine's promise)
                line.close()
                await asyncio.shield(cancel_operation(connection, operation))
                raise
            finally:
                line.close()
        except APIStatusError as exc:
            raise BootstrapError(f"the engine refused the import: HTTP {exc.status}: {exc.error}") from None
        except (ContreeError, ConnectionProblem) as exc:
            raise BootstrapError(f"the import failed: {exc}", exit_code=2) from None
    if not result.succeeded:
        reason = result.error or "no reason given"
        raise BootstrapError(f"the import of {tarball.path} ended {result.status.value}: {reason}")
    if not result.image:
        raise BootstrapError(f"the import of {tarball.path} succeeded without an image (operation {operation})")
    return result.image

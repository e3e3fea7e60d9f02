"""`contree-tui engine bootstrap debian`: build (or find in the cache) a Debian rootfs tar, then import it into
the local engine through its API (`POST /v1/images/import` with `rootfs:PATH`), as any client would: the
engine may be serving already, or is started on demand (embedded.py).

Lines on stderr, one per stage ("bootstrap: downloading packages (12 s)"), then
"imported as <uuid> (tag debian:bookworm) in N s" on stdout. Exit codes: 0 imported; 1 the build or the
import failed (the reason on one line: mmdebstrap's, apt's or the engine's); 2 mmdebstrap is missing or the
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
from contree_client.models import ImageImportRegistry, OperationStatus

from contree_tui.client.connection import ConnectionProblem, connect, embedded_target
from contree_tui.client.debian_bootstrap import (
    DEFAULT_INCLUDES,
    BootstrapError,
    BootstrapSpec,
    Tarball,
    default_suite,
    ensure_tarball,
)
from contree_tui.client.operations import EventCursor, follow_events

IMPORT_TIMEOUT = 600  # seconds: a ~300 MB tar extracts in ~10 s; a loaded machine gets room


def parse_includes(text: str | None) -> tuple[str, ...]:
    """`--include a,b c`: None → DEFAULT_INCLUDES; "" → nothing beyond the variant."""
    if text is None:
        return DEFAULT_INCLUDES
    return tuple(p for p in text.replace(",", " ").split() if p)


def run_bootstrap(opts: Mapping[str, Any], err: TextIO | None = None, out: TextIO | None = None) -> int:
    err = err or sys.stderr
    out = out or sys.stdout
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"bootstrap: {text} ({time.monotonic() - started:.0f} s)", file=err, flush=True)

    try:
        suite = opts.get("suite") or default_suite()
        spec = BootstrapSpec(suite, parse_includes(opts.get("include")))
        tag = opts.get("tag") or f"debian:{suite}"
        tarball = asyncio.run(ensure_tarball(spec, say, refresh=bool(opts.get("refresh"))))
        if tarball.cached:
            say(f"cached {tarball.path} ({tarball.size / 1e6:.0f} MB)")
        else:
            say(f"built {tarball.path} ({tarball.size / 1e6:.0f} MB) in {tarball.seconds:.0f} s")
        say("importing into the engine")
        image = asyncio.run(import_tarball(tarball, tag, opts.get("state_dir"), say))
    except BootstrapError as exc:
        print(f"contree-tui: {exc}", file=err, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    print(f"imported as {image} (tag {tag}) in {time.monotonic() - started:.0f} s", file=out, flush=True)
    return 0


async def import_tarball(tarball: Tarball, tag: str, state_dir: str | os.PathLike[str] | None,
                         say: Any = None) -> str:
    """Import the tar into the local engine (started if need be) as `tag`; the image's uuid."""
    try:
        connection = await connect(embedded_target(state_dir))
    except ConnectionProblem as exc:
        raise BootstrapError(f"the engine cannot be reached: {exc}", exit_code=2) from None
    async with connection:
        client = connection.client
        try:
            operation = str(await connection.call(
                lambda: client.import_image(ImageImportRegistry(url=f"rootfs:{tarball.path}"), tag=tag,
                                            timeout=IMPORT_TIMEOUT), idempotent=False))
            async for event in follow_events(connection, operation, cursor=EventCursor()):
                data = event.data
                if event.type == "import_log" and isinstance(data, dict) and say is not None:
                    say(" ".join(str(data.get("message", "")).split()))
            response = await connection.call(lambda: client.get_operation_status(operation))
        except APIStatusError as exc:
            raise BootstrapError(f"the engine refused the import: HTTP {exc.status}: {exc.error}") from None
        except (ContreeError, ConnectionProblem) as exc:
            raise BootstrapError(f"the import failed: {exc}", exit_code=2) from None
    if response.status != OperationStatus.SUCCESS:
        reason = response.error if isinstance(response.error, str) and response.error else "no reason given"
        raise BootstrapError(f"the import of {tarball.path} ended {response.status}: {reason}")
    image = response.result_image_uuid
    if not isinstance(image, str) or not image:
        raise BootstrapError(f"the import of {tarball.path} succeeded without an image (operation {operation})")
    return image

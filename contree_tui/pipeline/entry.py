"""What the CLI's `contree-tui call FILE FUNC [args]` and `contree-tui pipeline FILE:FUNC [args] --headless` run:
messages for bad input (no traceback of ours), exit codes, output. The CLI only parses and dispatches here."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import sys
import traceback
from typing import TextIO

from contree_tui.client.connection import Connection
from contree_tui.pipeline.function_runner import EXIT_BAD_CALL, ArgumentError, decode_call, find_function
from contree_tui.pipeline.headless import run_headless
from contree_tui.pipeline.loader import load_pipeline
from contree_tui.pipeline.nodes import PipelineError, default_network
from contree_tui.pipeline.return_display import TailWriter, host_return_value, returned_line


def call_main(file: str, func: str, argv: list[str], *, out: TextIO | None = None, err: TextIO | None = None,
              as_json: bool = False, json_flag_in_args: bool = False) -> int:
    """Reproduce a function step on the host: 0, the function's output as it runs, then `→ returned: VALUE` when
    the value is not None and not what the output ended with (return_display.py); 1 and its traceback if it
    raised; 2 and a message if the call does not fit the function. `as_json` (`call --json`): stdout is the
    value as one JSON document (`null` for None) and nothing else; the function's own output goes to stderr.
    `json_flag_in_args`: a `--json` among `argv` means `as_json`, unless the function has a parameter `json`."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        function = find_function(file, func)
        if json_flag_in_args and "--json" in argv and "json" not in inspect.signature(function).parameters:
            as_json, argv = True, [a for a in argv if a != "--json"]
        args, kwargs = decode_call(function, argv)
    except (ArgumentError, FileNotFoundError, ImportError, SyntaxError) as exc:
        print(f"contree-tui call: {exc}", file=err)
        return EXIT_BAD_CALL
    printed = TailWriter(err if as_json else out)
    try:
        with contextlib.redirect_stdout(printed):  # type: ignore[type-var]
            value = function(*args, **kwargs)
            if inspect.iscoroutine(value):  # as the sandbox's runner awaits an async step
                value = asyncio.run(value)
    except Exception:  # noqa: BLE001  (the user's function failed: its traceback is the answer)
        traceback.print_exc(file=err)
        return 1
    finally:
        printed.flush()
    shown = host_return_value(function, value)
    if as_json:
        if shown is not None and shown.text is not None:
            print("contree-tui call: the return value is not JSON data: its repr is given, as a JSON string", file=err)
        print(json.dumps(None if shown is None else shown.data if shown.text is None else shown.text,
                         sort_keys=True), file=out)
        return 0
    line = returned_line(shown, printed.tail, value)
    if line is not None:
        if printed.tail and not printed.tail.endswith("\n"):
            print(file=out)  # the function left a partial line: the label starts its own
        print(line, file=out)
    return 0


async def pipeline_headless_main(spec: str, argv: list[str], connection: Connection, *, image: str | None = None,
                                 force: bool = False, out: TextIO | None = None, err: TextIO | None = None,
                                 network: bool = True) -> int:
    """Build the pipeline from FILE:FUNC and run it printing progress: 0 Done, 1 failed, 2 a pipeline that cannot
    be built or run as written (the message on `err`). `network=False`: --no-network (nodes.default_network)."""
    err = err or sys.stderr
    try:
        root = default_network(load_pipeline(spec, argv), network)
        return await run_headless(root, connection, image=image, force=force, out=out)
    except PipelineError as exc:
        print(f"contree-tui pipeline: {exc}", file=err)
        return EXIT_BAD_CALL


__all__ = ["call_main", "pipeline_headless_main"]

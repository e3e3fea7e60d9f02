"""Command-line entry point: argument parsing and dispatch only."""

from __future__ import annotations

import argparse
import asyncio
import sys

from contree_tui.engine.models import EngineError


def _engine_run(args: argparse.Namespace) -> int:
    from contree_tui.engine.engine import Engine
    from contree_tui.engine.output import decode_stream

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise EngineError("engine run: give a command, e.g. contree-tui engine run -- echo hello")

    async def go() -> int:
        async with await Engine.open(args.state_dir) as engine:
            image = await engine.ensure_busybox() if args.image == "busybox:latest" else None
            op = await engine.run({"image": image.uuid if image else args.image, "command": " ".join(command),
                                   "shell": True, "disposable": args.disposable})
            if op.result:
                sys.stdout.buffer.write(decode_stream(op.result["stdout"]))
                sys.stderr.buffer.write(decode_stream(op.result["stderr"]))
            print(f"{op.status.value} result image: {op.result_image_uuid}", file=sys.stderr)
            if op.error:
                print(f"contree-tui: {op.error}", file=sys.stderr)
                return 1
            return int(op.result["state"]["exit_code"]) if op.result else 1

    return asyncio.run(go())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="contree-tui", description=__doc__)
    sub = parser.add_subparsers(dest="command_name")
    engine = sub.add_parser("engine", help="the embedded local engine")
    engine_sub = engine.add_subparsers(dest="engine_command", required=True)
    run = engine_sub.add_parser("run", help="run a shell command on an image, in-process (no server)")
    run.add_argument("--state-dir", default=None, help="engine state directory")
    run.add_argument("--image", default="busybox:latest", help="image UUID or tag:NAME")
    run.add_argument("--disposable", action="store_true")
    run.add_argument("command", nargs=argparse.REMAINDER)
    run.set_defaults(func=_engine_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except EngineError as exc:
        print(f"contree-tui: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

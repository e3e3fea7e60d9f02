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


def _engine_serve(args: argparse.Namespace) -> int:
    from contree_tui.engine.serve import ServeOptions, parse_listen, read_or_create_token, serve
    from contree_tui.engine.state_dir import StateDir

    listen = parse_listen(args.listen) if args.listen else None
    if args.write_profile:
        if listen is None:
            raise EngineError("--write-profile needs --listen HOST:PORT (profiles hold a URL)")
        token = read_or_create_token(StateDir.create(args.state_dir), args.token)
        path = _write_profile(args.write_profile, f"http://{listen[0]}:{listen[1]}", token)
        print(f"profile {args.write_profile!r} written to {path}", file=sys.stderr)
    asyncio.run(serve(ServeOptions(state_dir=args.state_dir, listen=listen, token=args.token)))
    return 0


def _write_profile(name: str, url: str, token: str) -> str:
    """Add or replace `[profile:NAME]` in $CONTREE_HOME/auth.ini the way contree-cli writes it (mode 0600)."""
    import configparser
    import os

    from contree_client.profiles import Profile, contree_home

    path = contree_home() / "auth.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    config = configparser.ConfigParser()
    config.read(path)
    Profile(name=name, url=url, token=token).save(config)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        config.write(fh)
    os.chmod(path, 0o600)
    return str(path)


def _engine_status(args: argparse.Namespace) -> int:
    from contree_tui.client.embedded import engine_answers, engine_pid
    from contree_tui.paths import engine_root, engine_socket

    root = engine_root(args.state_dir)
    pid = engine_pid(root)
    answers = asyncio.run(engine_answers(engine_socket(root)))
    if pid is None or not answers:
        print(f"engine not running (state dir {root})")
        return 3
    print(f"engine running: pid {pid}, socket {engine_socket(root)}, log {root / 'engine.log'}")
    return 0


def _engine_stop(args: argparse.Namespace) -> int:
    import os
    import signal
    import time

    from contree_tui.client.embedded import engine_pid
    from contree_tui.paths import engine_root

    root = engine_root(args.state_dir)
    pid = engine_pid(root)
    if pid is None:
        print(f"engine not running (state dir {root})")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"engine stopped (pid {pid})")
            return 0
        time.sleep(0.05)
    raise EngineError(f"engine pid {pid} did not stop within 15 s")


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
    serve = engine_sub.add_parser("serve", help="serve the Contree v1 API on a Unix socket (and TCP)")
    serve.add_argument("--state-dir", default=None, help="engine state directory")
    serve.add_argument("--listen", default=None, metavar="HOST:PORT", help="also listen on TCP (token required)")
    serve.add_argument("--token", default=None, help="bearer token for TCP (default: generated, in the state dir)")
    serve.add_argument("--write-profile", default=None, metavar="NAME",
                       help="write a profile for this engine into $CONTREE_HOME/auth.ini (needs --listen)")
    serve.set_defaults(func=_engine_serve)
    for name, func, text in (("status", _engine_status, "is the engine running?"),
                             ("stop", _engine_stop, "stop the running engine")):
        cmd = engine_sub.add_parser(name, help=text)
        cmd.add_argument("--state-dir", default=None, help="engine state directory")
        cmd.set_defaults(func=func)
    return parser


def _tui(args: argparse.Namespace) -> int:
    """No subcommand: the TUI, on the embedded engine unless a profile is given."""
    from contree_tui.tui import run_tui

    return run_tui(getattr(args, "profile", None), getattr(args, "state_dir", None))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        return _tui(args)
    try:
        return args.func(args)
    except EngineError as exc:
        print(f"contree-tui: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`contree-tui engine run | serve | status | stop | bootstrap`: the embedded engine's own commands (`engine
df` is a headless command, parser.py). Each imports what it needs when it runs, so starting the engine
(`engine serve`, spawned by client/embedded.py) loads no client code."""

from __future__ import annotations

import argparse
import asyncio
import sys

from contree_tui.engine.models import EngineError

# Where /dev/net/tun is 0600 (some VM images) or pasta is missing, every networked run is refused: this is the
# way a user without an administrator at hand still runs (seen as a normal user on this project's VM, #14).
NO_NETWORK_HELP = "run without a network (no interface but loopback; works where the engine cannot give one)"


def _engine_run(args: argparse.Namespace) -> int:
    """Through the engine serving the state dir (cli/engine_run.py). With none running, a normal user's
    prerequisites (rootless_checks.py) are checked here, so that what the machine lacks is said in one
    message before anything is created or started."""
    import os

    from contree_tui.cli.commands import execute
    from contree_tui.client.embedded import engine_answers
    from contree_tui.paths import engine_root, engine_socket

    if os.geteuid() != 0 and not asyncio.run(engine_answers(engine_socket(engine_root(args.state_dir)))):
        from contree_tui.engine.rootless_checks import require_rootless_prerequisites

        require_rootless_prerequisites()
    return execute("engine-run", vars(args))


def _engine_serve(args: argparse.Namespace) -> int:
    from contree_tui.engine.rootless_entry import enter_rootless_namespace

    _refuse_a_served_state_dir(args.state_dir)
    enter_rootless_namespace()  # first: a normal user's engine is uid 0 of a user namespace of its own
    from contree_tui.engine.serve import ServeOptions, parse_listen, read_or_create_token, run
    from contree_tui.engine.state_dir import StateDir

    listen = parse_listen(args.listen) if args.listen else None
    if args.write_profile:
        if listen is None:
            raise EngineError("--write-profile needs --listen HOST:PORT (profiles hold a URL)")
        token = read_or_create_token(StateDir.create(args.state_dir), args.token)
        from contree_tui.cli.profile_file import write_profile

        written = write_profile(args.write_profile, f"http://{listen[0]}:{listen[1]}", token)
        print(written.message(), file=sys.stderr)
    run(ServeOptions(state_dir=args.state_dir, listen=listen, token=args.token))
    return 0


def _refuse_a_served_state_dir(state_dir: str | None) -> None:
    """Every command starts the engine on demand, so `engine serve --listen … --write-profile` after any of them
    met a running engine: it wrote a profile naming a port nobody listened on, then said only "another engine
    is already using" the dir (seen following the README, #14). Said first, with the way out, before any
    profile is written."""
    from contree_tui.client.embedded import engine_answers, engine_pid
    from contree_tui.paths import engine_root, engine_socket

    root = engine_root(state_dir)
    if asyncio.run(engine_answers(engine_socket(root))):
        pid = engine_pid(root)
        raise EngineError(f"an engine already serves {root}{f' (pid {pid})' if pid else ''}, started on demand by "
                          "a client: stop it with `contree-tui engine stop` (quit a TUI first: it starts one "
                          "again), then serve")


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
    from contree_tui.client.engine_info import describe_engine, engine_info

    info = asyncio.run(engine_info(engine_socket(root)))
    if info is not None:
        print("\n".join(describe_engine(info)))
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


def _engine_bootstrap(args: argparse.Namespace) -> int:
    from contree_tui.cli.bootstrap import run_bootstrap

    return run_bootstrap(vars(args))


def add_engine_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    """The `engine` command and its subcommands; returns its subparsers for the headless ones listed there."""
    engine = sub.add_parser("engine", help="the embedded local engine")
    engine_sub = engine.add_subparsers(dest="engine_command", required=True)
    run = engine_sub.add_parser("run", help="run a shell command on an image of the embedded engine (through the "
                                "running engine, started if none is; the folder's working snapshot stays)")
    run.add_argument("--state-dir", default=argparse.SUPPRESS, help="engine state directory")
    run.add_argument("--image", default="busybox:latest", help="image UUID, short uuid or tag (default busybox:latest)")
    run.add_argument("--disposable", action="store_true", help="keep no result image")
    run.add_argument("--no-network", action="store_true", help=NO_NETWORK_HELP)
    run.add_argument("command", nargs=argparse.REMAINDER)
    run.set_defaults(func=_engine_run)
    serve = engine_sub.add_parser("serve", help="serve the Contree v1 API on a Unix socket (and TCP)")
    serve.add_argument("--state-dir", default=argparse.SUPPRESS, help="engine state directory")
    serve.add_argument("--listen", default=None, metavar="HOST:PORT", help="also listen on TCP (token required)")
    serve.add_argument("--token", default=None, help="bearer token for TCP (default: generated, in the state dir)")
    serve.add_argument("--write-profile", default=None, metavar="NAME",
                       help="write a profile for this engine into $CONTREE_HOME/auth.ini (needs --listen)")
    serve.set_defaults(func=_engine_serve)
    bootstrap = engine_sub.add_parser(
        "bootstrap", help="build a Debian image from this machine's apt sources (mmdebstrap) and import it",
        description="Build a Debian root filesystem with mmdebstrap from this machine's configured apt sources "
        "(variant minbase), keep it in the user's cache, and import it into the local engine.")
    bootstrap.add_argument("distribution", choices=["debian"])
    bootstrap.add_argument("--suite", default=None, help="the Debian suite (default: this host's, else bookworm)")
    bootstrap.add_argument("--include", default=None, metavar="PKG,PKG", help="packages beyond minbase (default: "
                           "python3,python3-pip,python3-venv,python3-setuptools,python3-wheel,python3-build,"
                           "python3-pytest; '' for none)")
    bootstrap.add_argument("--tag", default=None, help="the image's tag (default: debian:SUITE)")
    bootstrap.add_argument("--refresh", action="store_true", help="rebuild even if the cache holds this image")
    bootstrap.add_argument("--state-dir", default=argparse.SUPPRESS, help="engine state directory")
    bootstrap.set_defaults(func=_engine_bootstrap)
    for name, func, text in (("status", _engine_status, "is the engine running?"),
                             ("stop", _engine_stop, "stop the running engine")):
        cmd = engine_sub.add_parser(name, help=text)
        cmd.add_argument("--state-dir", default=argparse.SUPPRESS, help="engine state directory")
        cmd.set_defaults(func=func)
    return engine_sub

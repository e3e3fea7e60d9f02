"""Command-line entry point: argument parsing and dispatch only."""

from __future__ import annotations

import argparse
import asyncio
import sys

from contree_tui.engine.models import EngineError

DESCRIPTION = """\
Sandboxed containers whose filesystem is versioned: every run on an image makes a child snapshot, so your
work forms a tree you can see, drive and undo. With no command: the TUI, on the embedded engine (started on
demand) or on a hosted Contree (--profile)."""
EPILOG = """\
examples:
  contree-tui                                  the TUI for this folder
  contree-tui import python:3.11-slim          a registry image (or docker-archive:F, oci:DIR, ...)
  contree-tui engine bootstrap debian          a Debian image from this machine's apt sources
  contree-tui run -- 'pip install -e .'        run on the working snapshot; its result becomes working
  contree-tui rollback | forward               move the working snapshot up to its parent and back"""


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
    from contree_tui.engine.serve import ServeOptions, parse_listen, read_or_create_token, run
    from contree_tui.engine.state_dir import StateDir

    listen = parse_listen(args.listen) if args.listen else None
    if args.write_profile:
        if listen is None:
            raise EngineError("--write-profile needs --listen HOST:PORT (profiles hold a URL)")
        token = read_or_create_token(StateDir.create(args.state_dir), args.token)
        path = _write_profile(args.write_profile, f"http://{listen[0]}:{listen[1]}", token)
        print(f"profile {args.write_profile!r} written to {path}", file=sys.stderr)
    run(ServeOptions(state_dir=args.state_dir, listen=listen, token=args.token))
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


def _engine_bootstrap(args: argparse.Namespace) -> int:
    from contree_tui.client.bootstrap_command import run_bootstrap

    return run_bootstrap(vars(args))


def _client_command(args: argparse.Namespace) -> int:
    from contree_tui.client.commands import execute

    return execute(args.command_name, vars(args))


def _global_options(parser: argparse.ArgumentParser, default: object) -> None:
    """--profile, --state-dir and -C, accepted before the subcommand and after it (`default` SUPPRESS there,
    so a subcommand's parser does not overwrite the value given before it)."""
    parser.add_argument("--profile", default=default, help="a profile of $CONTREE_HOME/auth.ini "
                        "(default: CONTREE_PROFILE, CONTREE_TOKEN/CONTREE_URL, else the embedded engine)")
    parser.add_argument("--state-dir", default=default, help="the embedded engine's state directory")
    parser.add_argument("-C", "--folder", default=default, help="the local project folder (default: the current one)")


def _add_client_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)

    def command(name: str, text: str, *, json: bool = True) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=text, description=text, parents=[common])
        if json:
            cmd.add_argument("--json", action="store_true", help="print JSON")
        cmd.set_defaults(func=_client_command)
        return cmd

    images = command("images", "the image tree of the target (* marks the working snapshot)")
    images.add_argument("--full", action="store_true", help="re-list everything instead of what is new")
    run = command("run", "run a shell command on the working snapshot; exits with its exit code")
    run.add_argument("--image", help="run on this image instead (UUID, short uuid, tag, @, @-N)")
    run.add_argument("--disposable", action="store_true", help="keep no result image (the position stays)")
    run.add_argument("--sync", dest="sync", action="store_true", default=None,
                     help="sync the folder first (default: as `contree-tui sync` configured it)")
    run.add_argument("--no-sync", dest="sync", action="store_false")
    run.add_argument("-e", "--env", action="append", metavar="KEY=VALUE")
    run.add_argument("--cwd", help="working directory in the sandbox (default: the sync destination)")
    run.add_argument("-t", "--timeout", type=int, help="seconds before the command is killed")
    run.add_argument("command", nargs=argparse.REMAINDER, help="the shell command (after --)")
    imp = command("import", "import an image from a registry or a local archive or layout; exits 0 when it "
                  "succeeded (Ctrl-C cancels it)")
    imp.add_argument("ref", help="docker://[registry/]name[:tag|@digest], name[:tag], oci:DIR[:REF], "
                     "oci-archive:PATH, docker-archive:PATH, rootfs:PATH (a tar or a directory)")
    imp.add_argument("--tag", help="tag the image (moved if another image has it); without: uuid only")
    imp.add_argument("--insecure", action="store_true", help="allow plain HTTP to a registry not on this machine")
    imp.add_argument("--username", help="registry user (the password: --password-stdin, or asked for)")
    imp.add_argument("--password-stdin", action="store_true", help="read the registry password from stdin")
    imp.add_argument("-t", "--timeout", type=int, help="seconds before the import is abandoned (server default 300)")
    ops = command("ops", "recent operations (newest last)")
    ops.add_argument("-n", "--limit", type=int, default=20)
    ops.add_argument("-a", "--all", action="store_true", help="every operation")
    ops.add_argument("--status", help="only these statuses, comma-separated (e.g. FAILED,CANCELLED)")
    logs = command("logs", "an operation's output (its stdout and stderr)")
    logs.add_argument("operation", nargs="?", help="UUID or unique prefix (default @: the folder's last run)")
    logs.add_argument("-f", "--follow", action="store_true", help="follow a running operation to its end")
    sync = command("sync", "sync the folder now and on every run (destination and excludes are remembered)")
    sync.add_argument("--dest", help="where the folder lands in the sandbox (default /app)")
    sync.add_argument("--exclude", action="append", metavar="GLOB", help="exclude (besides .gitignore)")
    sync.add_argument("--off", action="store_true", help="stop syncing this folder on runs")
    rollback = command("rollback", "move the working snapshot to its parent")
    rollback.add_argument("steps", nargs="?", type=int, default=1)
    forward = command("forward", "move back down to the child a rollback came from")
    forward.add_argument("steps", nargs="?", type=int, default=1)
    use = command("use", "show the working snapshot, or make IMAGE the working snapshot")
    use.add_argument("image", nargs="?")
    history = command("history", "the folder's runs and moves, oldest first")
    history.add_argument("-n", "--limit", type=int, default=None)
    tag = command("tag", "tag an image: [IMAGE] TAG (IMAGE defaults to @, the working snapshot)", json=False)
    tag.add_argument("--rm", dest="remove", action="store_true", help="remove: [IMAGE] TAG, TAG, or IMAGE alone")
    tag.add_argument("args", nargs="*", metavar="[IMAGE] TAG")
    download = command("download", "copy a file out of an image (default @) to DEST (- for stdout)", json=False)
    download.add_argument("path", help="absolute path in the image")
    download.add_argument("dest", nargs="?")
    download.add_argument("--image", help="the image (default @)")
    diff = command("diff", "what changed from image A to image B (default @), as a unified diff", json=False)
    diff.add_argument("base", metavar="A", help="UUID, short uuid, tag, @, @-N")
    diff.add_argument("target", metavar="B", nargs="?", help="the same (default @, the working snapshot)")
    export = command("export", "write an image as an archive `docker load`, `podman load` and skopeo read",
                     json=False)
    export.description = (
        "Write IMAGE (its whole layer chain, as one layer) to OUT. oci-archive: an OCI layout in a tar, the layer "
        "gzipped; docker-archive: what `docker save` writes. The image config's Env and WorkingDir come from "
        "the embedded engine; another Contree does not say them, so the config then has Docker's default PATH "
        "only. OUT is written whole or not at all.")
    export.add_argument("image", help="UUID, short uuid, tag, @ or @-N")
    export.add_argument("--format", choices=("oci-archive", "docker-archive"), default="oci-archive",
                        help="the archive's format (default oci-archive)")
    export.add_argument("out", metavar="OUT", help="the archive file to write")
    prune = command("prune", "delete images nothing reaches (no tag, running operation, or folder's position, "
                    "redo or history, nor an ancestor of those), and the layers only they used")
    prune.add_argument("--older-than", metavar="D", help="only images created more than D ago (30m, 12h, 7d, 2w; "
                       "default 60s: a run's result is kept until its client has recorded it)")
    prune.add_argument("--dry-run", action="store_true", help="list what would go, delete nothing")
    export.add_argument("--name", help="the image's name in the archive, repository[:tag] (default: the image's "
                        "tag, else contree/<uuid>:latest)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("contree-tui")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contree-tui", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"contree-tui {_version()}")
    _global_options(parser, None)
    parser.add_argument("--keymap", default=None, metavar="PATH", help="the TUI's keymap file (default: "
                        "$XDG_CONFIG_HOME/contree-tui/keymap.toml if it exists; `?` in the TUI lists binding ids)")
    sub = parser.add_subparsers(dest="command_name")
    _add_client_commands(sub)
    engine = sub.add_parser("engine", help="the embedded local engine")
    engine_sub = engine.add_subparsers(dest="engine_command", required=True)
    run = engine_sub.add_parser("run", help="run a shell command on an image, in-process (no server)")
    run.add_argument("--state-dir", default=argparse.SUPPRESS, help="engine state directory")
    run.add_argument("--image", default="busybox:latest", help="image UUID or tag:NAME")
    run.add_argument("--disposable", action="store_true")
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
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    df = engine_sub.add_parser("df", help="disk used by images (own and shared layer bytes) and free space",
                               parents=[common])
    df.add_argument("--json", action="store_true", help="print JSON")
    df.set_defaults(func=_client_command, command_name="df")
    for name, func, text in (("status", _engine_status, "is the engine running?"),
                             ("stop", _engine_stop, "stop the running engine")):
        cmd = engine_sub.add_parser(name, help=text)
        cmd.add_argument("--state-dir", default=argparse.SUPPRESS, help="engine state directory")
        cmd.set_defaults(func=func)
    return parser


def _tui(args: argparse.Namespace) -> int:
    """No subcommand: the TUI, on the embedded engine unless a profile is given."""
    from contree_tui.tui import run_tui

    return run_tui(getattr(args, "profile", None), getattr(args, "state_dir", None), getattr(args, "folder", None),
                   getattr(args, "keymap", None))


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

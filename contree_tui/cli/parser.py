"""The command line's grammar (argparse): the global options, the headless commands (run by
commands.execute) and, from engine_commands.py, the `engine` ones. No command given: main.py starts the TUI."""

from __future__ import annotations

import argparse

from contree_tui.cli.build_command import add_build_command
from contree_tui.cli.call_command import add_call_command
from contree_tui.cli.engine_commands import NO_NETWORK_HELP, add_engine_commands
from contree_tui.cli.grammar_errors import GrammarParser
from contree_tui.cli.pipeline_command import add_pipeline_command

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
  contree-tui rollback | forward               move the working snapshot up to its parent and back
  contree-tui pipeline pipe.py:build --headless   run a pipeline (without --headless: in the TUI)"""


def _client_command(args: argparse.Namespace) -> int:
    from contree_tui.cli.commands import execute

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
    run.add_argument("--no-network", action="store_true", help=NO_NETWORK_HELP)
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
    add_build_command(sub, common)  # build_command.py: seed 003's staged build (#13)
    add_call_command(sub)  # call_command.py: a pipeline's function step, on the host (#13)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("contree-tui")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = GrammarParser(
        prog="contree-tui", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"contree-tui {_version()}")
    _global_options(parser, None)
    parser.add_argument("--keymap", default=None, metavar="PATH", help="the TUI's keymap file (default: "
                        "$XDG_CONFIG_HOME/contree-tui/keymap.toml if it exists; `?` in the TUI lists binding ids)")
    sub = parser.add_subparsers(dest="command_name")
    _add_client_commands(sub)
    engine_sub = add_engine_commands(sub)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    df = engine_sub.add_parser("df", help="disk used by images (own and shared layer bytes) and free space",
                               parents=[common])
    df.add_argument("--json", action="store_true", help="print JSON")
    df.set_defaults(func=_client_command, command_name="df")
    add_pipeline_command(sub, common)  # pipeline_command.py: FILE:FUNC, headless or in the TUI
    return parser

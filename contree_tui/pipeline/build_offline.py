"""What a staged build's report adds when a stage failed for want of a package index, and the command line that
builds offline instead.

The default deps and build stages (`python3 -m pip install -e .`, `python3 -m build`) fetch the build backend
(setuptools) from PyPI into an isolated environment, even for a project with no dependencies. A sandbox often
reaches no index: no network, or (measured on this project's CI VM) a TLS-intercepting proxy whose certificate
the image does not trust, where pip retries 5 times and ends "No matching distribution found for setuptools".
An image that already holds the tools (`engine bootstrap debian`'s: pip, setuptools, wheel, build, pytest)
builds offline with `--no-index --no-build-isolation` and `build --no-isolation`; the report says so and
prints that exact command.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

OFFLINE_INSTALL = "python3 -m pip install --no-index --no-build-isolation -e ."
OFFLINE_BUILD = "python3 -m build --no-isolation"
# what pip (and build, which runs pip for its isolated environment) says when no index can be reached
INDEX_SIGNS = (
    "No matching distribution found for", "Could not find a version that satisfies the requirement",
    "Could not fetch URL", "Failed to establish a new connection", "Temporary failure in name resolution",
    "Name or service not known", "Network is unreachable", "CERTIFICATE_VERIFY_FAILED", "ProxyError",
)
MANAGED_SIGN = "externally-managed-environment"  # PEP 668: Debian's own python3 refuses a system-wide pip install
PIP_INSTALL = re.compile(r"^\s*(?:python3?(?:\.\d+)?\s+-m\s+pip|pip3?)\s+install\s+(?P<rest>.*)$", re.S)
PYTHON_BUILD = re.compile(r"^\s*python3?(?:\.\d+)?\s+-m\s+build(?P<rest>(?:\s.*)?)$", re.S)


def index_sign(output: bytes) -> str | None:
    """The line of a stage's log saying no index was reached (the last such), or None."""
    text = output.decode(errors="replace")
    found = [line.strip() for line in text.splitlines() if any(sign in line for sign in INDEX_SIGNS)]
    return found[-1][:200] if found else None


def offline_install(command: str) -> str:
    """`pip install X` (any spelling) as the same install from what the image holds; else the default's."""
    match = PIP_INSTALL.match(command)
    if match is None:
        return OFFLINE_INSTALL
    rest = match.group("rest").strip()
    flags = [f for f in ("--no-index", "--no-build-isolation") if f not in rest.split()]
    return " ".join(["python3 -m pip install", *flags, rest])


def offline_build(command: str) -> str | None:
    """`python3 -m build ...` without build isolation (which fetches the backend); None for another command."""
    match = PYTHON_BUILD.match(command)
    if match is None:
        return None
    rest = match.group("rest")
    if {"-n", "--no-isolation"} & set(rest.split()):
        return None
    return f"python3 -m build --no-isolation{rest}"


def rewrite_command(argv: Sequence[str], options: Mapping[str, str]) -> str:
    """`contree-tui ARGV` with each of `options` (`--install`, `--resume-from`, ...) dropped wherever it was (as
    `--opt V` or `--opt=V`) and given again at the end with its new value."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in options:
            skip = True
            continue
        if arg.split("=", 1)[0] in options and "=" in arg:
            continue
        kept.append(arg)
    for option, value in options.items():
        kept += [option, value]
    return shlex.join(["contree-tui", *kept])


def offline_lines(stage: str, output: bytes, commands: Mapping[str, str], argv: Sequence[str],
                  resume: str | None) -> list[str]:
    """The report's lines for a deps or build stage that failed for want of an index (else none): what happened
    and the exact command that builds offline (`resume`: the checkpoint it may start on)."""
    text = output.decode(errors="replace")
    if MANAGED_SIGN in text:
        return [f"the {stage} stage's pip refused to install into the image's Python, which apt manages (PEP 668, "
                "externally-managed-environment): add --break-system-packages to the pip command, or install "
                "into a venv (python3 -m venv /venv && /venv/bin/pip ...)"]
    sign = index_sign(output)
    if sign is None or stage not in ("deps", "build"):
        return []
    options: dict[str, str] = {}
    if stage == "deps":
        options["--install"] = offline_install(commands["deps"])
    build = offline_build(commands["build"])
    if build is not None:
        options["--build"] = build
    if not options:
        return []
    if resume is not None:
        options["--resume-from"] = resume
    return [f"the {stage} stage reached no package index ({sign}):",
            "  the sandbox has no network, or none pip can use (e.g. a proxy whose certificate the image does not "
            "trust). On an image that already holds the build tools (`engine bootstrap debian`'s has pip, "
            "setuptools, wheel, build and pytest), build offline (--no-index installs none of the project's own "
            "dependencies: they must be in the image too):",
            f"  {rewrite_command(argv, options)}"]


__all__ = ["OFFLINE_BUILD", "OFFLINE_INSTALL", "index_sign", "offline_build", "offline_install", "offline_lines",
           "rewrite_command"]

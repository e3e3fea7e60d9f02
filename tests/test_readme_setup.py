"""The README's "Set up" lines, typed into one terminal as a stranger would, reach `contree-tui`.

Seen following them on a fresh Debian 12 user: after `pipx install . && pipx ensurepath` the next line said
`contree-tui: command not found` (ensurepath edits the shell's startup files, which only a NEW shell reads), and
the venv alternative never put its `bin` on PATH at all. Each route's code block is fed, line by line, to a login
bash on stdin (so a line that starts a new shell hands it the rest, as in a terminal) with a fresh user's home
(/etc/skel). What needs the package index is stood in for, doing what it does to the home and PATH: `pipx install`
and the venv's `pip install` put a `contree-tui` into their bin dir, `pipx ensurepath` appends to ~/.bashrc as pipx
1.1 does, `python3 -m venv` makes the dir with a pip. The stand-in `contree-tui` prints its arguments.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SKEL = Path("/etc/skel")

pytestmark = pytest.mark.skipif(not (SKEL / ".profile").is_file() or shutil.which("bash") is None,
                                reason="needs bash and a Debian-like /etc/skel/.profile")

FAKE_CONTREE = '#!/bin/sh\necho "contree-tui ran: $*"\n'
FAKE_PIPX = f"""#!/bin/sh
case "$1" in
  install) mkdir -p "$HOME/.local/bin" && printf '%s' '{FAKE_CONTREE}' > "$HOME/.local/bin/contree-tui" &&
           chmod +x "$HOME/.local/bin/contree-tui" ;;
  ensurepath) printf '\\nexport PATH="$PATH:%s/.local/bin"\\n' "$HOME" >> "$HOME/.bashrc" ;;
esac
"""
FAKE_PYTHON3 = f"""#!/bin/sh
[ "$1 $2" = "-m venv" ] || exit 2
mkdir -p "$3/bin"
cat > "$3/bin/pip" <<'PIP'
#!/bin/sh
here=$(dirname "$0")
printf '%s' '{FAKE_CONTREE}' > "$here/contree-tui" && chmod +x "$here/contree-tui"
PIP
chmod +x "$3/bin/pip"
"""


def setup_blocks() -> list[list[str]]:
    """The Set up section's code blocks (4-space indented), each as its lines with trailing comments kept."""
    text = README.read_text()
    section = text[text.index("## Set up"):text.index("\n## ", text.index("## Set up") + 1)]
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in section.splitlines():
        if line.startswith("    "):
            current.append(line[4:])
        elif current and line.strip():
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def route(starts: str) -> list[str]:
    """The block whose first line starts with `starts` (a command, not a comment)."""
    found = [block for block in setup_blocks() if block[0].startswith(starts)]
    assert found, f"the README's Set up section has no block starting with {starts!r}: {setup_blocks()}"
    return found[0]


def typed(lines: list[str], home: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The lines fed to a login bash on stdin, in a fresh user's home, with the stand-ins first on PATH."""
    shutil.copytree(SKEL, home, dirs_exist_ok=True)
    stand_ins = tmp_path / "stand-ins"
    stand_ins.mkdir()
    for name, body in (("pipx", FAKE_PIPX), ("python3", FAKE_PYTHON3)):
        (stand_ins / name).write_text(body)
        (stand_ins / name).chmod(0o755)
    env = {"HOME": str(home), "SHELL": "/bin/bash", "USER": "stranger", "LANG": "C.UTF-8", "TERM": "dumb",
           "PATH": f"{stand_ins}:/usr/local/bin:/usr/bin:/bin"}
    # bash -l sets PATH from /etc/profile: keep the stand-ins for the first shell only, as a terminal would
    # have them before the install
    script = f'export PATH="{stand_ins}:$PATH"\n' + "\n".join(lines) + "\n"
    return subprocess.run(["bash", "-l", "-s"], input=script, capture_output=True, text=True, env=env,
                          cwd=str(tmp_path), timeout=60)


@pytest.mark.parametrize("starts", ["pipx install", "python3 -m venv"])
def test_each_install_route_of_the_readme_reaches_contree_tui_in_the_same_terminal(starts: str,
                                                                                    tmp_path: Path) -> None:
    lines = route(starts)
    assert any(re.match(r"contree-tui\b", line) for line in lines), lines
    done = typed(lines, tmp_path / "home", tmp_path)
    assert "command not found" not in done.stderr, (lines, done.stderr)
    assert "contree-tui ran: engine run -- echo hello from a sandbox" in done.stdout, (lines, done.stdout, done.stderr)


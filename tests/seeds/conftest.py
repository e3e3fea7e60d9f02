"""The seeds' Python workflows on a real Debian image: built once per machine by `engine bootstrap debian`
(mmdebstrap from the machine's apt sources, cached in the user's cache dir between runs of the suite, keyed
by its inputs), imported through the CLI into a served engine shared by this directory's tests.

No skip: a machine without mmdebstrap fails here with the apt-get line that installs it.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contree_tui.client.debian_bootstrap import (
    BootstrapError,
    BootstrapSpec,
    Tarball,
    cache_dir,
    default_suite,
    ensure_tarball,
)
from tests.client.conftest import CLI, CONTREE_ENV, stop_engine

TAG = "seeds-python"


@pytest.fixture(scope="session")
def bootstrap_cache() -> Path:
    """The user's bootstrap cache, read before any test points XDG_CACHE_HOME at its own tmp dir."""
    return cache_dir()


@pytest.fixture(scope="session")
def debian_tarball(bootstrap_cache: Path) -> Tarball:
    """The default bootstrap's tar (minbase + DEFAULT_INCLUDES for the host's suite), built if not cached."""
    lines: list[str] = []
    try:
        return asyncio.run(ensure_tarball(BootstrapSpec(default_suite()), lines.append, cache=bootstrap_cache))
    except BootstrapError as exc:
        pytest.fail(f"{exc} (progress: {' | '.join(lines)})", pytrace=False)


def cli_env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONTREE_ENV}
    return {**env, "XDG_CACHE_HOME": str(cache.parent.parent), **extra}


@pytest.fixture(scope="session")
def python_engine(debian_tarball: Tarball, bootstrap_cache: Path) -> Iterator[tuple[Path, str]]:
    """A served engine holding the bootstrapped image as TAG, imported by `contree-tui engine bootstrap debian`
    (the tar found in the cache, the engine started on demand): (state dir, image uuid)."""
    root = Path(tempfile.mkdtemp(prefix="cts-")) / "engine"  # short: Unix socket paths stop at 107 bytes
    started = time.monotonic()
    try:
        done = subprocess.run([*CLI, "engine", "bootstrap", "debian", "--state-dir", str(root), "--tag", TAG],
                              capture_output=True, text=True, timeout=600, env=cli_env(bootstrap_cache))
        assert done.returncode == 0, done.stderr
        assert "bootstrap: cached " in done.stderr, done.stderr  # the fixture above built it: import only
        found = re.fullmatch(rf"imported as ([0-9a-f-]{{36}}) \(tag {TAG}\) in \d+ s\n", done.stdout)
        assert found, done.stdout
        print(f"bootstrap import: {time.monotonic() - started:.1f} s\n{done.stderr}")
        yield root, found.group(1)
    finally:
        stop_engine(root)
        # ~300 MB of small files (the image and the runs' snapshots) take ~15 s to delete on a busy VM disk:
        # done by a detached rm, not on the suite's clock
        subprocess.Popen(["rm", "-rf", "--", str(root.parent)], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

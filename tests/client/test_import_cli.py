"""`contree-tui import`, driven as a user's shell would, against the real served engine and `oci:` layouts the
test builds: progress a line a step in a pipe, a live bar on a terminal, the operation's exit code, the
reason on stderr, and Ctrl-C cancelling the import."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from contree_tui.client.image_import import ImportProgress, absolute_source
from contree_tui.client.progress import progress_bar, progress_text
from tests.client.test_cli import Cli, one_error_line
from tests.images.busybox_layouts import busybox_layer, whiteout_layout, zeros_layout
from tests.images.oci_build import File, skopeo_copy, write_layout
from tests.images.registry import free_port


@pytest.fixture
def cli(engine_dir: Path, tmp_path: Path) -> Cli:
    return Cli(engine_dir, tmp_path / "project")


def test_bar_and_text_say_the_step_the_fraction_and_the_bytes() -> None:
    assert progress_bar(0.0, 10) == "[>         ]" and progress_bar(0.5, 10) == "[=====>    ]"
    assert progress_bar(1.0, 10) == "[==========]"
    # downloaded 6 of 12 MiB, extracted 3 (one layer): (6 + 3) / (2 * 12) of the work
    progress = ImportProgress(phase="download", layer=1, layers=3, bytes_done=6 << 20, bytes_total=12 << 20,
                              extracted={0: 3 << 20})
    assert progress_text("alpine:3", progress, bar=False) == ("alpine:3  download 2/3   38%  6.0 MiB / 12.0 MiB "
                                                              "fetched")
    assert "[=========>" in progress_text("alpine:3", progress, bar=True)
    assert progress_text("x", ImportProgress(phase="commit"), bar=True) == "x  commit"  # nothing to fetch


def test_import_reports_each_step_and_the_image_runs(cli: Cli, tmp_path: Path) -> None:
    whiteout_layout(tmp_path / "layout", env=["PATH=/bin"])
    tag = f"cli-{uuid.uuid4().hex[:8]}:t1"
    done = cli("import", "--tag", tag, f"oci:{tmp_path / 'layout'}:t1")
    image = done.stdout.strip()
    assert len(image) == 36, done.stdout
    lines = done.stderr.splitlines()
    assert lines[0].startswith("contree-tui: importing oci:") and "(operation " in lines[0]
    steps = [line.split("  ")[1] for line in lines if line.startswith(f"{tag}  ")]
    assert steps[0] == "resolve" and steps[-1] == "commit", lines  # layers may go in parallel, in any order
    assert set(steps) == {"resolve", "download 1/2", "extract 1/2", "download 2/2", "extract 2/2", "commit"}, lines
    assert f"tagged {tag}" in lines, "the engine's import_log lines are shown"
    assert lines[-1] == f"contree-tui: imported oci:{tmp_path / 'layout'}:t1 as {image[:8]} (tag {tag})"
    ran = cli("run", "--image", tag, "--disposable", "--", "cat /etc/changed; test -e /etc/gone || echo gone")
    assert ran.stdout == "new\ngone\n"
    other = f"{tag}-again"
    again = cli.json("import", "--tag", other, f"oci:{tmp_path / 'layout'}:t1")  # the same manifest: same image
    assert again == {"operation": again["operation"], "status": "SUCCESS", "image": image, "tag": other,  # type: ignore[index]
                     "error": None}
    listed = cli("images").stdout
    assert f"{image[:8]} [{tag}, {other}]" in listed, listed  # both tags on the one image
    # --insecure is our extension of registry{}: sent as such (GET echoes the spec's ImageImportMetadata only,
    # so the engine's own record says it)
    insecure = cli.json("import", "--insecure", f"oci:{tmp_path / 'layout'}:t1")
    with sqlite3.connect(f"file:{cli.engine_dir / 'engine.db'}?mode=ro", uri=True) as db:
        (request,) = db.execute("SELECT request FROM operations WHERE uuid=?",
                                (insecure["operation"],)).fetchone()  # type: ignore[index]
    assert json.loads(request)["registry"] == {"url": f"oci:{tmp_path / 'layout'}:t1", "insecure": True}


def test_a_failed_import_exits_1_with_its_reason(cli: Cli, tmp_path: Path) -> None:
    done = cli("import", f"oci:{tmp_path / 'missing'}:t1", ok=False)
    assert done.returncode == 1 and done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("contree-tui: import of oci:") and "FAILED: " in last, done.stderr
    refused = cli("import", "--tag", "no spaces", "alpine:3", ok=False)
    assert refused.returncode == 1 and "tag" in one_error_line(refused.stderr)
    unpaired = cli("import", "--password-stdin", "alpine:3", ok=False)
    assert unpaired.returncode == 1 and "--username" in one_error_line(unpaired.stderr)


def test_ctrl_c_cancels_the_import(cli: Cli, tmp_path: Path) -> None:
    layout = zeros_layout(tmp_path / "big")  # extracting 4 GiB of zeros takes far longer than this test waits
    proc = cli.popen("import", f"oci:{layout}:big")
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 60
    while not any("extract" in line for line in seen):
        assert time.monotonic() < deadline and proc.poll() is None, seen
        seen.append(proc.stderr.readline())
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "cancelling the import" in err and "CANCELLED" in err.splitlines()[-1], err


def test_a_terminal_gets_a_live_bar(cli: Cli, tmp_path: Path) -> None:
    # a layer no other test has: its bytes are fetched (a reused layer has none to show)
    write_layout(tmp_path / "layout", [busybox_layer(unique=File(os.urandom(1 << 20)))], tag="t1", compression=None)
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(cli.argv("import", f"oci:{tmp_path / 'layout'}:t1"), stdout=subprocess.PIPE,
                            stderr=secondary, text=False)
    os.close(secondary)
    shown = b""
    while True:
        ready, _, _ = select.select([primary], [], [], 60)
        assert ready, "no output for 60 s"
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the process closed the terminal's last descriptor
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    assert proc.wait(60) == 0
    text = shown.decode()
    assert "\r\x1b[K" in text and "%" in text and "/" in text, text  # a line rewritten in place, with a fraction
    assert "[" in text and "=" in text
    assert "importing" not in text, "no plain step lines on a terminal"
    last = text.rstrip().splitlines()[-1]
    assert last.split("\x1b[K")[-1].startswith("contree-tui: imported"), "the live line erased before the end"


def test_archives_import_through_the_same_command(cli: Cli, tmp_path: Path) -> None:
    """`docker save` / `podman save` style archives (made by skopeo from a layout) import like layouts."""
    marker = uuid.uuid4().hex[:8]
    write_layout(tmp_path / "layout", [busybox_layer(), {"etc/marker": File(f"{marker}\n".encode())}], tag="t1",
                 env=["PATH=/bin"])
    for scheme in ("docker-archive", "oci-archive"):
        archive = tmp_path / f"image.{scheme}.tar"
        skopeo_copy(f"oci:{tmp_path / 'layout'}:t1", f"{scheme}:{archive}")
        tag = f"{scheme}-{marker}"
        done = cli("import", "--tag", tag, f"{scheme}:{archive}")
        assert done.stdout.strip() and f"tagged {tag}" in done.stderr
        assert cli("run", "--image", tag, "--disposable", "--", "cat /etc/marker").stdout == f"{marker}\n"


def test_offline_sources_relative_paths_are_made_absolute_before_sending() -> None:
    assert absolute_source("oci:./layout:v1", "/home/u/p") == "oci:/home/u/p/layout:v1"
    assert absolute_source("oci-archive:../a.tar:v1", "/home/u/p") == "oci-archive:/home/u/a.tar:v1"
    assert absolute_source("docker-archive:a.tar", "/home/u/p") == "docker-archive:/home/u/p/a.tar"
    assert absolute_source("rootfs:r.tar", "/w") == "rootfs:/w/r.tar"
    assert absolute_source("oci-archive:~/a.tar", "/w") == f"oci-archive:{Path.home()}/a.tar"
    for unchanged in ("oci:/abs/layout:v1", "rootfs:/a:b", "alpine:3", "docker://127.0.0.1:5000/a/b:1", "oci:"):
        assert absolute_source(unchanged, "/w") == unchanged


def test_a_stranger_in_a_shell_relative_archives_and_the_errors_they_meet(cli: Cli, tmp_path: Path) -> None:
    """What a new user types, from the directory holding the archives: relative paths work (the engine takes
    absolute ones only: the CLI resolves them); a typo, a missing file and a registry that is down each end
    with exit 1 and the reason said once, on the last line."""
    here = tmp_path / "downloads"
    here.mkdir()
    write_layout(tmp_path / "layout", [busybox_layer(), {"etc/marker": File(b"relative\n")}], tag="t1",
                 env=["PATH=/bin"])
    skopeo_copy(f"oci:{tmp_path / 'layout'}:t1", f"docker-archive:{here / 'app.tar'}")
    skopeo_copy(f"oci:{tmp_path / 'layout'}:t1", f"oci-archive:{here / 'app-oci.tar'}:t1")

    def in_here(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(cli.argv(*args), capture_output=True, text=True, timeout=120, cwd=here)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    tag = f"rel-{uuid.uuid4().hex[:8]}"
    for ref in ("docker-archive:app.tar", "oci-archive:./app-oci.tar:t1"):
        done = in_here("import", "--tag", tag, ref)
        assert done.returncode == 0, done.stderr
        assert cli("run", "--image", tag, "--disposable", "--", "cat /etc/marker").stdout == "relative\n"

    typo = in_here("import", "docker//127.0.0.1:5000/app:1")
    assert typo.returncode == 1 and "accepted forms" in one_error_line(typo.stderr)
    cases = {"docker-archive:missing.tar": f"docker-archive:{here / 'missing.tar'}: no such file",
             f"127.0.0.1:{free_port()}/app:1": "cannot reach registry 127.0.0.1:"}
    for ref, reason in cases.items():
        done = in_here("import", ref)
        assert done.returncode == 1 and done.stdout == "", done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"contree-tui: import of {ref} FAILED: ") and reason in last, done.stderr
        assert done.stderr.count(last.split(" FAILED: ", 1)[1]) == 1, "the reason once, not the engine's log too"
    assert "connection refused" in last

"""A rootless engine's sandboxes cannot read a file only host root may read (0600 root:root, outside the state
dir), by any way a user or a sandbox can name a host path.

A sandbox sees its image and what the engine puts there; a host path reaches it only through (1) the client's
folder sync (the client runs as the user: it reads what the user may read), (2) the engine's local imports
(`rootfs:`, `docker-archive:`, `oci-archive:`, `oci:` name a path on the engine's host; the engine reads it as
uid 0 of its own user namespace, whose capabilities do not extend to files of ids it does not map: host root's
are not), (3) the path itself inside a sandbox (its root is the image: the host path is not there). Each is
tried; the secret never appears, and each refusal says why."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rootless.cli_session import Session, folder_of
from tests.rootless.conftest import NormalUser

pytestmark = pytest.mark.usefixtures("debian_tun")  # runs have networking on, as the CLI's do


@pytest.fixture(scope="module")
def secret() -> Iterator[tuple[Path, str]]:
    """/var/tmp/contree-secret-*/: secret.txt (0600 root), secret.tar (0600 root, holding it), tree/ (0755,
    holding it); the dir itself is 0755, so only the files' own modes keep the user out."""
    token = secrets.token_hex(16)
    base = Path(f"/var/tmp/contree-secret-{secrets.token_hex(4)}")
    base.mkdir(mode=0o755)
    os.chmod(base, 0o755)
    (base / "secret.txt").write_text(token + "\n")
    (base / "tree").mkdir(mode=0o755)
    os.chmod(base / "tree", 0o755)
    (base / "tree" / "secret.txt").write_text(token + "\n")
    with tarfile.open(base / "secret.tar", "w") as tar:
        tar.add(base / "secret.txt", arcname="secret.txt")
    for path in (base / "secret.txt", base / "tree" / "secret.txt", base / "secret.tar"):
        os.chmod(path, 0o600)
    try:
        yield base, token
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def session(normal_user: NormalUser) -> Iterator[Session]:
    yield Session(normal_user, normal_user.new_state_dir(), folder_of(normal_user, "host-files"))
    normal_user.stop_engines()


def test_the_user_itself_cannot_read_the_secret(normal_user: NormalUser, secret: tuple[Path, str]) -> None:
    base, _ = secret
    assert normal_user.run("cat", str(base / "secret.txt")).returncode != 0


@pytest.mark.parametrize("ref", ["rootfs:{base}/secret.tar", "rootfs:{base}/tree", "docker-archive:{base}/secret.tar",
                                 "oci-archive:{base}/secret.tar"])
def test_a_local_import_of_root_only_files_is_refused(session: Session, secret: tuple[Path, str], ref: str) -> None:
    base, token = secret
    done = session.user.cli("import", ref.format(base=base), env={"CONTREE_TUI_ENGINE_DIR": str(session.state)},
                            cwd=session.folder)
    assert "Traceback" not in done.stderr
    assert token not in done.stdout + done.stderr
    assert done.returncode != 0, done
    assert "ermission denied" in done.stderr, done.stderr


def test_a_synced_symlink_or_a_root_file_in_the_folder_never_brings_the_secret(
        session: Session, secret: tuple[Path, str]) -> None:
    base, token = secret
    link = session.folder / "leak"
    link.unlink(missing_ok=True)
    link.symlink_to(base / "secret.txt")
    os.lchown(link, session.user.uid, session.user.gid)
    planted = session.folder / "planted.txt"  # root put it there: the user cannot read it
    shutil.copy(base / "secret.txt", planted)
    os.chmod(planted, 0o600)
    try:
        synced = session.user.cli("sync", env={"CONTREE_TUI_ENGINE_DIR": str(session.state)}, cwd=session.folder)
        assert "Traceback" not in synced.stderr
        assert token not in synced.stdout + synced.stderr
        out = session.cli("run", "--", f"cat /app/leak /app/planted.txt {base}/secret.txt 2>&1; "
                          f"grep -rs {token} / --exclude-dir=proc --exclude-dir=sys | head -1; true")
        assert token not in out, out
    finally:
        planted.unlink()
        link.unlink()


def test_the_secret_is_not_at_its_host_path_in_a_sandbox(session: Session, secret: tuple[Path, str]) -> None:
    base, token = secret
    out = session.cli("engine", "run", f"cat {base}/secret.txt 2>&1; ls -ld {base} 2>&1; true")
    assert token not in out and "No such file" in out


def test_the_engine_process_itself_cannot_read_the_secret(session: Session, secret: tuple[Path, str]) -> None:
    """Behind every refusal above: the engine is uid 0 with every capability of ITS namespace, and host root's
    file is not in it (nsenter into the engine's namespaces, as the user, is what the engine is)."""
    base, token = secret
    session.cli("engine", "run", "true")
    pid = session.user.engine_pid(session.state)
    assert pid is not None
    done = session.user.run("nsenter", "-t", str(pid), "-U", "-m", "--preserve-credentials", "cat",
                            str(base / "secret.txt"))
    assert token not in done.stdout
    assert done.returncode != 0 and "Permission denied" in done.stderr, done
    assert subprocess.run(["cat", str(base / "secret.txt")], capture_output=True, text=True).stdout == token + "\n"

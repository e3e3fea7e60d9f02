"""Directory sync against the real served engine: what gets uploaded, what the state holds, what a run sees."""

from __future__ import annotations

import hashlib
import os
import socket
import tracemalloc
from pathlib import Path

import pytest

from contree_tui.client.connection import Connection, Target, connect
from contree_tui.client.sync import Syncer, SyncPhase, SyncStatus
from contree_tui.client.sync_cache import SyncCache, cache_path_for
from tests.client.conftest import FAST, TcpEngine
from tests.client.helpers import make_tree, run_in_sandbox, salt, settle


@pytest.fixture(scope="module")
def tree_salt() -> str:
    return salt()


async def test_a_2000_file_tree_then_only_what_changed_moves(connection: Connection, tmp_path: Path,
                                                             tree_salt: str) -> None:
    root = tmp_path / "project"
    rels = make_tree(root, 2000, tree_salt)
    syncer = Syncer(connection, root)
    try:
        first = await syncer.sync()
        assert (first.scanned, first.hashed, first.uploaded, len(first.added)) == (2000, 2000, 2000, 2000)
        assert len(first.state) == 2000 and first.full
        files = first.state.files()
        assert set(files) == {f"/app/{rel}" for rel in rels}
        assert {spec.mode for spec in files.values()} == {"0644"}
        assert syncer.status.value == SyncStatus(SyncPhase.IDLE, 2000, first.state.total_bytes)
        assert cache_path_for(connection.cache_key).exists(), "the stat cache lives under XDG_CACHE_HOME"

        nothing = await syncer.sync()
        assert (nothing.hashed, nothing.probed, nothing.uploaded) == (0, 0, 0)
        assert nothing.state is first.state and not nothing.changed_state

        edited = root / rels[7]
        edited.write_text(f"# edited {salt()}\n")
        settle()
        one = await syncer.sync()
        assert (one.hashed, one.uploaded, one.changed) == (1, 1, (rels[7],))
        assert one.state.entries[rels[7]].sha256 == hashlib.sha256(edited.read_bytes()).hexdigest()

        edited.touch()
        settle()
        touched = await syncer.sync()
        assert (touched.hashed, touched.uploaded, touched.probed) == (1, 0, 0)
        assert touched.state is one.state and touched.state.digest == one.state.digest

        (root / rels[8]).unlink()
        gone = await syncer.sync()
        assert gone.removed == (rels[8],) and rels[8] not in gone.state.entries and len(gone.state) == 1999
        assert (gone.hashed, gone.uploaded) == (0, 0)

        (root / rels[9]).rename(root / "renamed.py")
        settle()
        renamed = await syncer.sync()
        assert renamed.removed == (rels[9],) and renamed.added == ("renamed.py",)
        assert (renamed.hashed, renamed.uploaded, renamed.probed) == (1, 0, 0), "a known blob under a new name"
        assert renamed.state.entries["renamed.py"].uuid == gone.state.entries[rels[9]].uuid
    finally:
        syncer.close()

    # another process (a new Syncer on the same cache) hashes nothing and asks the server nothing
    settle()
    again = Syncer(connection, root)
    try:
        cold = await again.sync()
        assert (cold.scanned, cold.hashed, cold.probed, cold.uploaded) == (1999, 0, 0, 0)
        assert cold.state.digest == renamed.state.digest
    finally:
        again.close()


async def test_identical_contents_are_uploaded_once(connection: Connection, tmp_path: Path) -> None:
    root = tmp_path / "project"
    same = f"identical {salt()}\n"
    for i in range(2000):
        path = root / f"package_{i % 40}" / f"subpackage_{i % 7}" / f"module_number_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(same)
    syncer = Syncer(connection, root)
    try:
        report = await syncer.sync()
        # a small file is uploaded without a probe first (blob_upload.PROBE_ABOVE): one request, not two
        assert (report.hashed, report.probed, report.uploaded) == (2000, 0, 1), "one content, one upload"
        assert len({e.uuid for e in report.state.entries.values()}) == 1
        count = await run_in_sandbox(connection, report.state, "find /app -type f | wc -l")
        assert count.strip() == "2000"
    finally:
        syncer.close()


async def test_a_run_sees_all_2000_distinct_synced_files(connection: Connection, tmp_path: Path,
                                                        tree_salt: str) -> None:
    root = tmp_path / "project"
    make_tree(root, 2000, tree_salt)  # the contents of the 2,000-file test: known to the engine already
    syncer = Syncer(connection, root)
    try:
        state = (await syncer.sync()).state
        assert (await run_in_sandbox(connection, state, "find /app -type f | wc -l")).strip() == "2000"
    finally:
        syncer.close()


async def test_a_run_sees_edits_touches_and_deletions(connection: Connection, tmp_path: Path) -> None:
    root = tmp_path / "project"
    rels = make_tree(root, 300, salt())
    syncer = Syncer(connection, root, destination="/work/src/")
    try:
        state = (await syncer.sync()).state
        listing = await run_in_sandbox(connection, state, "cd /work/src && find . -type f | sort")
        assert listing.split() == sorted(f"./{rel}" for rel in rels)

        (root / rels[0]).write_text("print('edited')\n")
        (root / rels[1]).touch()
        (root / rels[2]).unlink()
        os.chmod(root / rels[3], 0o755)
        settle()
        report = await syncer.sync()
        assert report.uploaded == 1 and report.changed == (rels[0], rels[3]) and report.removed == (rels[2],)
        out = await run_in_sandbox(
            connection, report.state,
            f"cat /work/src/{rels[0]}; test -e /work/src/{rels[2]} || echo gone; "
            f"test -x /work/src/{rels[3]} && echo executable; stat -c %a /work/src/{rels[1]}")
        assert out.splitlines() == ["print('edited')", "gone", "executable", "644"]
    finally:
        syncer.close()


async def test_gitignore_default_and_user_excludes(connection: Connection, tmp_path: Path) -> None:
    root = tmp_path / "project"
    files = {
        ".gitignore": "*.log\n!keep.log\nbuild/\n/secret.txt\n",
        "app.py": "", "keep.log": "", "debug.log": "", "secret.txt": "", "docs/secret.txt": "",
        "build/out.bin": "", "src/build.py": "", "src/.gitignore": "generated_*\n!generated_keep.py\n",
        "src/generated_a.py": "", "src/generated_keep.py": "", "src/nested/generated_b.py": "",
        "other/generated_c.py": "",
        ".git/config": "", "pkg/__pycache__/m.cpython-311.pyc": "", ".venv/bin/python": "",
        "web/node_modules/x/index.js": "", "target/debug/app": "", "dist/app.whl": "", ".mypy_cache/x": "",
        ".pytest_cache/v": "", "sub/dist": "",  # a *file* named like an excluded directory is kept
        "notes.tmp": "", "deep/er/scratch.tmp": "", "scratch/a.py": "", "lib/scratch/b.py": "",
        ".github/workflows/ci.yml": "",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text or f"{rel} {salt()}\n")
    syncer = Syncer(connection, root, excludes=["*.tmp", "/scratch/"])
    try:
        state = (await syncer.sync()).state
        assert sorted(state.entries) == sorted([
            ".gitignore", "app.py", "keep.log", "docs/secret.txt", "src/build.py", "src/.gitignore",
            "src/generated_keep.py", "other/generated_c.py", "lib/scratch/b.py", ".github/workflows/ci.yml",
            "sub/dist"])

        # a changed .gitignore changes the state on the next sync
        (root / ".gitignore").write_text("*.log\n")
        state = (await syncer.sync()).state
        assert "keep.log" not in state.entries and "secret.txt" in state.entries and "build/out.bin" in state.entries
    finally:
        syncer.close()


async def test_symlinks_and_special_files_follow_the_documented_rule(connection: Connection, tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "real").mkdir(parents=True)
    (root / "real" / "data.txt").write_text(f"data {salt()}\n")
    os.chmod(root / "real" / "data.txt", 0o755)
    outside = tmp_path / "outside.txt"
    outside.write_text("not part of the project\n")
    (root / "ignored").mkdir()
    (root / "ignored" / "x.txt").write_text("x\n")
    (root / ".gitignore").write_text("ignored/\n")
    (root / "link.txt").symlink_to("real/data.txt")
    (root / "chain.txt").symlink_to("link.txt")
    (root / "escape.txt").symlink_to(outside)
    (root / "dangling.txt").symlink_to("nowhere.txt")
    (root / "dirlink").symlink_to("real")
    (root / "into-ignored.txt").symlink_to("ignored/x.txt")
    os.mkfifo(root / "fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "sock"))
        syncer = Syncer(connection, root)
        try:
            report = await syncer.sync()
        finally:
            syncer.close()
    state = report.state
    assert sorted(state.entries) == [".gitignore", "chain.txt", "link.txt", "real/data.txt"]
    data = state.entries["real/data.txt"]
    assert state.entries["link.txt"] == data and state.entries["chain.txt"] == data and data.mode == 0o755
    assert report.uploaded == 2, ".gitignore and data.txt; the links reuse data.txt's blob"
    reasons = {s.rel: s.reason for s in report.skipped}
    assert reasons["escape.txt"].startswith(f"symlink to {outside}") and "outside" in reasons["escape.txt"]
    assert reasons["dangling.txt"] == "dangling symlink"
    assert reasons["dirlink"] == "symlink to a directory (not followed)"
    assert reasons["into-ignored.txt"].startswith("symlink into an excluded path")
    assert reasons["fifo"] == "a FIFO" and reasons["sock"] == "a socket"


async def test_a_file_changing_during_its_upload_is_sent_again(connection: Connection, tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    target = root / "racy.txt"
    target.write_text(f"before {salt()}\n")
    syncer = Syncer(connection, root)
    final = f"after {salt()}\n"

    def rewrite_when_uploads_start(status: SyncStatus) -> None:
        if status.phase is SyncPhase.SYNCING and status.files and target.read_text() != final:
            target.write_text(final)  # between the hash and the upload

    syncer.status.subscribe(rewrite_when_uploads_start)
    try:
        report = await syncer.sync()
        assert report.state.entries["racy.txt"].sha256 == hashlib.sha256(final.encode()).hexdigest()
        assert report.hashed == 2 and report.uploaded == 1
        assert (await run_in_sandbox(connection, report.state, "cat /app/racy.txt")) == final
    finally:
        syncer.close()


async def test_a_large_file_is_streamed_not_read_whole(connection: Connection, tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    big = root / "big.bin"
    with open(big, "wb") as handle:
        handle.write(os.urandom(1024))
        for _ in range(24):
            handle.write(os.urandom(1024 * 1024))
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    syncer = Syncer(connection, root)
    tracemalloc.start()
    try:
        report = await syncer.sync()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        syncer.close()
    assert report.uploaded == 1 and report.uploaded_bytes == big.stat().st_size
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes of Python memory for a 24 MiB file"
    out = await run_in_sandbox(connection, report.state, "sha256sum /app/big.bin")
    assert out.split()[0] == digest


async def test_uuids_a_server_does_not_have_are_found_and_uploaded_again(
        connection: Connection, tcp_engine: TcpEngine, tmp_path: Path) -> None:
    """A cache that vouches for blobs the server lacks (the same cache used against a wiped or another
    engine): revalidate() asks the server (HEAD) and the next sync uploads what it lost."""
    await tcp_engine.start()
    other = await connect(Target(name="other", url=tcp_engine.url, token=tcp_engine.token, source="test"),
                          backoff=FAST)
    root = tmp_path / "project"
    make_tree(root, 5, salt())
    cache = tmp_path / "shared-cache.sqlite"
    first = Syncer(connection, root, cache=SyncCache(cache))
    try:
        await first.sync()
    finally:
        first.close()
    syncer = Syncer(other, root, cache=SyncCache(cache))
    try:
        trusting = await syncer.sync()
        assert (trusting.hashed, trusting.probed, trusting.uploaded) == (0, 0, 0)
        assert await syncer.revalidate() == 5
        healed = await syncer.sync()
        assert healed.uploaded == 5 and healed.full
        assert (await run_in_sandbox(other, healed.state, "cat /app/pkg0/sub0/mod0.py")).endswith("VALUE = 0\n")
    finally:
        syncer.close()
        await other.aclose()


async def test_a_destination_must_be_absolute(connection: Connection, tmp_path: Path) -> None:
    from contree_tui.client.sync import SyncError

    with pytest.raises(SyncError, match="absolute"):
        Syncer(connection, tmp_path, destination="app")
    with pytest.raises(SyncError, match="not a directory"):
        Syncer(connection, tmp_path / "missing")

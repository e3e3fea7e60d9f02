"""Reading images (client/image_files.py) and the diff of a snapshot against its parent (snapshot_diff.py):
pure comparisons of listings, then real runs on the engine that add, modify (even within the same second,
same size) and remove files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from contree_client.models import Image

from contree_tui.client.connection import Connection
from contree_tui.client.image_files import Entry, ImageFiles, InspectError, normalize, parent_dir
from contree_tui.client.records import parse_time
from contree_tui.client.snapshot_diff import Change, diff_images, diff_listings
from tests.client.wire import result_image, run_shell


def entry(path: str, kind: str = "file", size: int = 1, mtime: int = 100, mode: int = 0o100644,
          target: str = "") -> Entry:
    return Entry(path=path, kind=kind, size=size, mode=mode, uid=0, gid=0, mtime=mtime,  # type: ignore[arg-type]
                 target=target)


def test_listings_compare_into_added_modified_removed_sorted_by_path() -> None:
    before = {e.path: e for e in [entry("/a"), entry("/b", size=2), entry("/d", "dir", mtime=5),
                                  entry("/l", "symlink", target="/a"), entry("/gone")]}
    after = {e.path: e for e in [entry("/a"), entry("/b", size=3), entry("/d", "dir", mtime=9),
                                 entry("/l", "symlink", target="/b"), entry("/new", mode=0o100755)]}
    changes, suspects = diff_listings(before, after)
    assert [(c.path, c.change, c.detail) for c in changes] == [
        ("/b", Change.MODIFIED, "size 2 → 3"),
        ("/gone", Change.REMOVED, ""),
        ("/l", Change.MODIFIED, "target /a → /b"),
        ("/new", Change.ADDED, ""),
    ], "a directory's mtime moving (entries added in it) is not a change of its own"
    assert suspects == []


def test_same_metadata_files_no_older_than_the_parent_are_suspects() -> None:
    before = {"/old": entry("/old", mtime=100), "/fresh": entry("/fresh", mtime=1000)}
    after = dict(before)
    assert diff_listings(before, after, since=1000.5)[1] == ["/fresh"]
    assert diff_listings(before, after)[1] == [], "no creation time: nothing to suspect"


def test_kind_and_mode_changes_say_what_changed() -> None:
    changes, _ = diff_listings({"/x": entry("/x")}, {"/x": entry("/x", "dir")})
    assert changes[0].detail == "file → dir"
    changes, _ = diff_listings({"/x": entry("/x")}, {"/x": entry("/x", mode=0o100755)})
    assert changes[0].detail == "mode -rw-r--r-- → -rwxr-xr-x"


def test_paths_normalize_inside_the_image() -> None:
    assert normalize("/etc//./x/") == "/etc/x"
    assert normalize("/") == "/"
    assert parent_dir("/etc/x") == "/etc" and parent_dir("/etc") == "/"
    with pytest.raises(InspectError, match="not an absolute path"):
        normalize("etc")


async def image_created(connection: Connection, uuid: str) -> datetime:
    image = await connection.client.inspect_image(uuid)
    assert isinstance(image, Image)
    return parse_time(image.created_at)


async def test_diff_of_real_runs_finds_added_modified_and_removed_files(connection: Connection) -> None:
    base = await connection.client.inspect_find_image_by_tag("busybox:latest")
    first = result_image(await run_shell(connection, base, "mkdir -p /work && echo one > /work/same && "
                                                           "echo keep > /work/keep && echo bye > /work/gone"))
    # the same size within the same second: only a content comparison can tell
    second = result_image(await run_shell(connection, first, "echo two > /work/same && rm /work/gone && "
                                                             "echo hi > /work/new && mkdir /work/sub"))
    files = ImageFiles(connection)
    diff = await diff_images(files, first, second, parent_created=await image_created(connection, first))
    changes = {(c.path, c.change) for c in diff.changes}
    assert ("/work/new", Change.ADDED) in changes
    assert ("/work/sub", Change.ADDED) in changes
    assert ("/work/gone", Change.REMOVED) in changes
    assert ("/work/same", Change.MODIFIED) in changes
    assert not any(c.path == "/work/keep" for c in diff.changes), "an untouched file is no change"
    assert diff.listed > 0 and diff.summary.startswith("2 added, 1 modified, 1 removed"), diff.summary

    again = await diff_images(files, first, second)
    assert again.listed == 0, "images never change: the second diff lists nothing"


async def test_files_list_read_grep_and_download(connection: Connection, tmp_path: Path) -> None:
    base = await connection.client.inspect_find_image_by_tag("busybox:latest")
    image = result_image(await run_shell(connection, base, "mkdir -p /data && printf 'alpha\\nneedle here\\n' "
                                                           "> /data/t.txt && head -c 3000 /dev/zero > /data/z"))
    files = ImageFiles(connection)
    names = [e.name for e in await files.list_dir(image, "/data")]
    assert names == ["t.txt", "z"]
    head = await files.read_head(image, "/data/t.txt", 1024)
    assert head.text() == "alpha\nneedle here\n" and not head.truncated and not head.binary
    zeros = await files.read_head(image, "/data/z", 100)
    assert zeros.binary and zeros.truncated and len(zeros.data) == 100
    hits = await files.grep(image, "needle", "/data")
    assert [(h.path, h.line, h.text) for h in hits.hits] == [("/data/t.txt", 2, "needle here")]
    dest, size = await files.download(image, "/data/t.txt", tmp_path)
    assert dest == tmp_path / "t.txt" and size == 18 and dest.read_text() == "alpha\nneedle here\n"
    with pytest.raises(InspectError, match="no such file"):
        await files.read_head(image, "/data/missing", 10)
    with pytest.raises(InspectError, match="no such file"):
        await files.list_dir(image, "/nowhere")
    with pytest.raises(InspectError):
        await files.grep(image, "(unclosed")
    assert not list(tmp_path.glob(".t.txt.*")), "no temporary file left behind"

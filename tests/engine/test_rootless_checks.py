"""The pieces of the rootless entry that read files and build command lines, on files of the test's own (the
real checks, as real users, are in tests/rootless/)."""

from __future__ import annotations

from pathlib import Path

from contree_tui.engine.rootless_checks import RootlessIds, free_range, subordinate_ranges
from contree_tui.engine.rootless_entry import id_map_arguments, mapping_script


def test_subordinate_ranges_match_by_name_or_uid_in_file_order_and_skip_malformed_lines(tmp_path: Path) -> None:
    subuid = tmp_path / "subuid"
    subuid.write_text("alice:100000:65536\nbob:165536:65536\n1000:300000:10\nalice:x:1\n\nalice:400000:5\n")
    assert subordinate_ranges(str(subuid), "alice", 1000) == [(100000, 65536), (300000, 10), (400000, 5)]
    assert subordinate_ranges(str(subuid), "carol", 1001) == []
    assert subordinate_ranges(str(tmp_path / "absent"), "alice", 1000) == []


def test_the_proposed_range_is_free_in_both_files_on_useradds_grid(tmp_path: Path) -> None:
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text("")
    subgid.write_text("")
    assert free_range((str(subuid), str(subgid))) == (100000, 165535)
    subuid.write_text("alice:100000:65536\n")
    subgid.write_text("bob:170000:10\n")  # off the grid: the block it touches is taken too
    assert free_range((str(subuid), str(subgid))) == (231072, 296607)


def test_the_map_puts_the_users_own_id_at_0_and_its_ranges_from_1_consecutively() -> None:
    assert id_map_arguments(1001, ((100000, 65536),)) == ["0", "1001", "1", "1", "100000", "65536"]
    assert id_map_arguments(1001, ((100000, 10), (500000, 65526))) == [
        "0", "1001", "1", "1", "100000", "10", "11", "500000", "65526"]


def test_the_mapping_script_quotes_every_word() -> None:
    ids = RootlessIds("al ice", 1001, 1002, ((100000, 65536),), ((200000, 65536),), "/opt/odd dir/newuidmap",
                      "/usr/bin/newgidmap")
    script = mapping_script(42, ids)
    assert "'/opt/odd dir/newuidmap' 42 0 1001 1 1 100000 65536 &" in script
    assert "/usr/bin/newgidmap 42 0 1002 1 1 200000 65536;" in script
    assert script.startswith("read -r go || exit 3\n")

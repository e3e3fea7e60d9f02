"""The rootless sandboxes' ids (#14, sandbox/userns.py): the engine's own ids mapped onto themselves, one map
line per line of the engine's map (the kernel refuses a line spanning two of the parent's), as many as both of
the engine's maps hold from 0, at most 65536 (a short range: test_engine_layers.py's short_range)."""

from __future__ import annotations

from pathlib import Path

from contree_tui.engine.sandbox.userns import identity_map


def _map(tmp_path: Path, text: str) -> str:
    path = tmp_path / "uid_map"
    path.write_text(text)
    return str(path)


def test_the_identity_map_follows_the_engines_own_lines(tmp_path: Path) -> None:
    # the entry's map: 0 -> the user, 1..65535 -> their /etc/subuid range
    engine_map = _map(tmp_path, "         0       1001          1\n         1     100000      65535\n")
    assert identity_map(65536, engine_map) == "0 0 1\n1 1 65535\n"
    assert identity_map(1000, engine_map) == "0 0 1\n1 1 999\n"  # never past what the sandboxes get
    # two subordinate ranges (a user given more than one line in /etc/subuid)
    two = _map(tmp_path, "0 1001 1\n1 100000 30000\n30001 400000 40000\n")
    assert identity_map(65536, two) == "0 0 1\n1 1 30000\n30001 30001 35535\n"


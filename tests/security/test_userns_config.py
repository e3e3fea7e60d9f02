"""Where the sandbox id range comes from (userns.py): /etc/subuid and /etc/subgid's `contree-tui` entry, else
1,000,000,000; a range that would map the sandbox's root to host root is refused before any sandbox runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from contree_tui import sandbox_ids
from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.models import EngineError
from contree_tui.engine.sandbox import userns
from tests.engine.helpers import stdout


def test_the_subordinate_range_of_contree_tui_is_used_when_large_enough(tmp_path: Path) -> None:
    subuid = tmp_path / "subuid"
    subuid.write_text("probe:100000:65536\ncontree-tui:200000:1000\ncontree-tui:2000000000:65536\n")
    assert sandbox_ids.subordinate_range(str(subuid)) == (2_000_000_000, 65536)  # the short range is skipped
    subuid.write_text("probe:100000:65536\n")
    assert sandbox_ids.subordinate_range(str(subuid)) is None
    assert sandbox_ids.subordinate_range(str(tmp_path / "missing")) is None
    assert sandbox_ids.DEFAULT_BASE > 600_100_000  # above login.defs' SUB_UID_MAX: useradd never hands these out


async def test_a_range_starting_at_host_root_is_refused(open_engine: Callable[..., Awaitable[Engine]]) -> None:
    with pytest.raises(EngineError, match="sandbox id base 0") as raised:
        await open_engine(EngineConfig(sandbox_ids=userns.SandboxIds(uid_base=0)))
    assert raised.value.status == 503
    engine = await open_engine(EngineConfig(sandbox_ids=userns.SandboxIds(1_500_000_000, 1_600_000_000)), name="b")
    image = await engine.ensure_busybox()
    op = await engine.run({"image": image.uuid, "command": "cat /proc/self/uid_map /proc/self/gid_map",
                           "shell": True, "disposable": True})
    assert op.result is not None
    assert [line.split() for line in stdout(op).splitlines()] == [["0", "1500000000", "65536"],
                                                                   ["0", "1600000000", "65536"]]

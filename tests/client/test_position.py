"""The working position over a real lineage: rollback then forward, a run starts a new branch, a jump to an
ancestor keeps the way back, and the position and its history survive into a new process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from contree_tui.client.lineage import Lineage
from contree_tui.client.position import PositionError, PositionStore, WorkingPosition
from tests.client.wire import counted_connection, result_image, run_shell


async def test_rollback_then_forward_retraces_the_chain(engine_dir: Path, tmp_path: Path) -> None:
    async with counted_connection(engine_dir) as (conn, _wire):
        base = await conn.client.inspect_find_image_by_tag("busybox:latest")
        position = WorkingPosition(tmp_path / "project", conn.cache_key)
        assert position.image is None
        position.set(base, note="busybox:latest")
        chain = [base]
        for i in range(3):
            op = await run_shell(conn, chain[-1], f"echo {i} > /step")
            chain.append(result_image(op))
            entry = position.record_run(chain[-2], chain[-1], operation=str(op.uuid), command=f"echo {i} > /step",
                                        exit_code=0)
            assert entry.moved and position.image == chain[-1]
        lineage = Lineage(conn)
        await lineage.refresh()
        parent = lineage.tree.parent

        position.rollback(parent)
        assert position.image == chain[2] and position.current.value.redo == (chain[3],)
        position.rollback(parent, steps=2)
        assert position.image == base and position.current.value.redo == (chain[1], chain[2], chain[3])
        with pytest.raises(PositionError, match="no parent"):
            position.rollback(parent)  # busybox is a root
        assert position.image == base  # a refused move changes nothing

        position.forward()
        assert position.image == chain[1]
        position.forward(2)
        assert position.image == chain[3] and position.current.value.redo == ()
        with pytest.raises(PositionError, match="nothing to go forward to"):
            position.forward()

        # back two, then a run that writes: a new branch, so forward has nowhere to go
        position.rollback(parent, steps=2)
        op = await run_shell(conn, chain[1], "echo branch > /step")
        branch = result_image(op)
        position.record_run(chain[1], branch, operation=str(op.uuid), command="echo branch > /step", exit_code=0)
        assert position.image == branch and position.current.value.redo == ()

        # a run that changes nothing keeps both the position and the redo stack
        await lineage.refresh()  # the branch is new to the lineage
        parent = lineage.tree.parent
        position.rollback(parent)
        noop = await run_shell(conn, chain[1], "cat /step")
        entry = position.record_run(chain[1], result_image(noop), operation=str(noop.uuid), command="cat /step")
        assert not entry.moved and position.image == chain[1] and position.current.value.redo == (branch,)

        # jumping to an ancestor keeps the way back down
        position.set(chain[3])
        position.jump(base, ancestors=lineage.tree.ancestors)
        assert position.current.value.redo == (chain[1], chain[2], chain[3])
        position.forward(3)
        assert position.image == chain[3]
        actions = [e.action for e in position.history()]
        assert actions[:4] == ["set", "run", "run", "run"] and actions[-2:] == ["jump", "forward"]
        lineage.close()


def test_position_and_history_survive_a_new_process(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    position = WorkingPosition(folder, "target-a")
    position.set("11111111-1111-1111-1111-111111111111")
    position.record_run("11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222",
                        operation="33333333-3333-3333-3333-333333333333", command="make", exit_code=0)
    position.rollback(lambda image: "11111111-1111-1111-1111-111111111111" if image.startswith("2") else None)
    WorkingPosition(folder, "target-b").set("99999999-9999-9999-9999-999999999999")  # another target, apart
    position.store.close()

    script = (
        "import json, sys\n"
        "from contree_tui.client.position import WorkingPosition\n"
        "p = WorkingPosition(sys.argv[1], 'target-a')\n"
        "print(json.dumps({'image': p.image, 'redo': list(p.current.value.redo),"
        " 'history': [e.to_json() for e in p.history()]}))\n"
        "p.forward()\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(folder / ".." / "project")], capture_output=True,
                          text=True, timeout=60, check=True)
    seen = json.loads(done.stdout)
    assert seen["image"] == "11111111-1111-1111-1111-111111111111"
    assert seen["redo"] == ["22222222-2222-2222-2222-222222222222"]
    history = seen["history"]
    assert [e["action"] for e in history] == ["set", "run", "rollback"]
    assert history[1]["operation"] == "33333333-3333-3333-3333-333333333333" and history[1]["note"] == "make"
    assert history[1]["exit_code"] == 0

    again = WorkingPosition(folder, "target-a", PositionStore())  # the other process's forward is seen here
    assert again.image == "22222222-2222-2222-2222-222222222222"
    assert [e.action for e in again.history(limit=2)] == ["rollback", "forward"]
    assert WorkingPosition(folder, "target-b").image == "99999999-9999-9999-9999-999999999999"


def test_another_clients_moves_are_polled_and_a_run_from_a_left_position_does_not_move_it(tmp_path: Path) -> None:
    """Two clients on one file (their own connections, as two processes have): `poll` is None until the other
    writes, then gives its entries (not one's own); a run recorded `if_at` a position the other client left
    meanwhile stays where that client put it, and says who moved it."""
    path = tmp_path / "positions.sqlite"
    tui = WorkingPosition(tmp_path / "project", "key", PositionStore(path))
    cli = WorkingPosition(tmp_path / "project", "key", PositionStore(path))
    tui.set("a" * 8)
    assert tui.poll() is None  # its own write is no news
    assert [e.action for e in cli.poll() or []] == ["set"]
    cli.record_run("a" * 8, "b" * 8, operation="op-cli", command="echo cli")
    news = tui.poll()
    assert news is not None and [(e.action, e.previous, e.image) for e in news] == [("run", "a" * 8, "b" * 8)]
    assert tui.current.value.image == "b" * 8 and tui.poll() is None

    entry = tui.record_run("a" * 8, "c" * 8, operation="op-tui", command="echo tui", if_at="a" * 8)
    assert not entry.moved and entry.image == "b" * 8 and tui.image == "b" * 8  # no fork from a left position
    moved_by = tui.moved_by_another()
    assert moved_by is not None and moved_by.operation == "op-cli"
    tui.rollback(lambda uuid: "a" * 8)
    assert tui.moved_by_another() is None  # its own move now

"""Seed 002's branching examples, on the real sandbox."""

from __future__ import annotations

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Image, OperationStatus
from tests.engine.helpers import sh, stdout


async def test_grandchildren_all_see_the_childs_random_value(engine: Engine, busybox: Image) -> None:
    child = await sh(engine, busybox.uuid, 'echo "$RANDOM" > /tmp/random.txt', disposable=False)
    assert child.status is OperationStatus.SUCCESS
    assert child.result_image_uuid not in (None, busybox.uuid)
    seen = set()
    grandchildren = set()
    for letter in "ABC":
        gc = await sh(engine, child.result_image_uuid, f"echo {letter} >> /tmp/random.txt && cat /tmp/random.txt")
        first, second = stdout(gc).split()
        assert second == letter
        seen.add(first)
        grandchildren.add(gc.result_image_uuid)
    assert len(seen) == 1, "every grandchild starts from the same child state"
    assert len(grandchildren) == 3


async def test_same_noop_command_twice_gives_the_source_uuid(engine: Engine, busybox: Image) -> None:
    same1 = await sh(engine, busybox.uuid, "echo 'Same command'")
    same2 = await sh(engine, busybox.uuid, "echo 'Same command'")
    assert stdout(same1) == "Same command\n"
    assert same1.result_image_uuid == same2.result_image_uuid == busybox.uuid


async def test_sort_and_reverse_sort_branch_from_one_base(engine: Engine, busybox: Image) -> None:
    base = await sh(engine, busybox.uuid, "printf 'apple\\nbanana\\ncherry\\n' > /tmp/fruits.txt")
    sort = await sh(engine, base.result_image_uuid, "sort /tmp/fruits.txt")
    reverse = await sh(engine, base.result_image_uuid, "sort -r /tmp/fruits.txt")
    assert stdout(sort) == "apple\nbanana\ncherry\n"
    assert stdout(reverse) == "cherry\nbanana\napple\n"
    # sorting writes nothing, so both branches point at the base snapshot
    assert sort.result_image_uuid == reverse.result_image_uuid == base.result_image_uuid


async def test_random_writes_give_distinct_images(engine: Engine, busybox: Image) -> None:
    one = await sh(engine, busybox.uuid, "od -An -N2 -tu2 /dev/urandom > /r")
    two = await sh(engine, busybox.uuid, "od -An -N2 -tu2 /dev/urandom > /r")
    assert one.result_image_uuid != two.result_image_uuid


async def test_disposable_run_leaves_no_image(engine: Engine, busybox: Image) -> None:
    before = len(engine.store.list_images(limit=1000))
    op = await sh(engine, busybox.uuid, "echo x > /root/x", disposable=True)
    assert op.status is OperationStatus.SUCCESS
    assert op.result_image_uuid is None
    assert len(engine.store.list_images(limit=1000)) == before

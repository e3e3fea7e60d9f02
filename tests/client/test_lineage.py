"""Lineage against the real served engine: the branching session of the SDK docs (shared/seeds/002), runs that
change nothing add no edge, images made by another client show up, and refreshes are incremental (the requests
are counted on the wire)."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contree_client.models import OperationStatus

from contree_tui.cli.render import tree_lines
from contree_tui.client.lineage import Lineage, LineageTree
from contree_tui.client.lineage_cache import LineageCache, lineage_cache_path
from contree_tui.client.records import ImageRecord, OperationRecord
from tests.client.wire import counted_connection, result_image, route, run_shell


async def test_the_branching_session_of_the_sdk_docs(engine_dir: Path) -> None:
    async with counted_connection(engine_dir) as (conn, _wire):
        base = await conn.client.inspect_find_image_by_tag("busybox:latest")
        child_op = await run_shell(conn, base, 'echo "$RANDOM" > /tmp/random.txt')
        child = result_image(child_op)
        grandchildren = [result_image(await run_shell(conn, child, f"echo '{x}' >> /tmp/random.txt && cat "
                                                     "/tmp/random.txt")) for x in "ABC"]
        fruits = result_image(await run_shell(conn, base, "printf 'apple\\nbanana\\ncherry\\n' > /tmp/fruits.txt"))
        ascending = result_image(await run_shell(conn, fruits, "sort /tmp/fruits.txt > /tmp/sorted.txt"))
        descending = result_image(await run_shell(conn, fruits, "sort -r /tmp/fruits.txt > /tmp/sorted.txt"))
        noop = await run_shell(conn, fruits, "sort /tmp/fruits.txt")  # reads only: the same image comes back
        assert result_image(noop) == fruits

        lineage = Lineage(conn)
        await lineage.refresh()
        tree = lineage.tree
        assert tree.parent(child) == base and tree.parent(fruits) == base
        assert tree.parent(base) is None and base in tree.roots  # a base image: no producing operation
        assert tree.children(child) == tuple(grandchildren)  # oldest first
        assert all(tree.parent(gc) == child for gc in grandchildren)
        assert tree.ancestors(grandchildren[1]) == (child, base)
        assert tree.children(fruits) == (ascending, descending)  # the no-op run added no edge
        assert {child, fruits} <= set(tree.children(base))
        assert set(tree.descendants(child)) == set(grandchildren)
        assert noop.uuid in {op.uuid for op in tree.operations_on(fruits)}  # but it is known as a run on fruits
        made_by = tree.producing_operation(descending)
        assert made_by is not None and made_by.uuid == tree.image(descending).operation_uuid  # type: ignore[union-attr]
        assert made_by.image_uuid == fruits and made_by.result_image_uuid == descending
        assert made_by.status is OperationStatus.SUCCESS and made_by.changed_filesystem
        walked = [image.uuid for _depth, image in tree.walk(child)]
        assert walked == [child, *grandchildren]
        lineage.close()


async def test_incremental_refresh_fetches_only_new_items(engine_dir: Path) -> None:
    async with counted_connection(engine_dir) as (conn, wire):
        base = await conn.client.inspect_find_image_by_tag("busybox:latest")
        # the chain in a later second than the images before it, so that the mark's second (listed again by
        # `since`, whole seconds) is not the whole history: on a quiet machine all of it took under a second
        await asyncio.sleep(1.1)
        chain = [base]
        for i in range(3):
            chain.append(result_image(await run_shell(conn, chain[-1], f"echo {i} > /step{i}")))
        lineage = Lineage(conn, page_size=5, overlap=0)
        mark = len(wire.requests)
        first = await lineage.refresh()
        sent = wire.since(mark)
        images = len(lineage.tree)
        ops = len(lineage.tree.operations)
        # the first load is listings only, a page per 5 records (the last page is short, or empty)
        assert {route(r) for r in sent} == {"GET /images", "GET /operations"}, [route(r) for r in sent]
        expected = (images // 5 + 1) + (ops // 5 + 1)
        tagged = [r for r in sent if r.url.params.get("tagged")]
        assert first.full and len(sent) == expected + len(tagged) == first.requests
        assert images >= 4 and set(chain) <= set(lineage.tree.images)

        await asyncio.sleep(1.1)  # the new images fall in a later second than the mark (`since` is whole seconds)
        top = result_image(await run_shell(conn, chain[-1], "echo new > /new1"))
        side = result_image(await run_shell(conn, chain[1], "echo new > /new2"))
        image_mark, op_mark = lineage.cache.mark("images"), lineage.cache.mark("operations")
        assert image_mark is not None and op_mark is not None
        before = lineage.tree
        lineage.page_size = 1000  # small pages showed the first load's paging; now one page each is enough
        mark = len(wire.requests)
        again = await lineage.refresh()
        sent = wire.since(mark)
        listings = [r for r in sent if not r.url.params.get("tagged")]
        assert [route(r) for r in listings] == ["GET /images", "GET /operations"]  # one page each
        assert listings[0].url.params["since"] == str(math.floor(image_mark))
        assert listings[1].url.params["since"] == str(math.floor(op_mark))
        assert len(sent) == again.requests == 3  # the two listings and the tag listing: nothing per item
        # (the engine is shared by the module's tests: a run another test left going may add its image too)
        assert not again.full and {top, side} <= set(again.new_images)
        assert len(again.new_operations) >= 2
        # what came back is the new items plus those of the mark's own second, not the whole history
        overlap_images = sum(1 for i in before.images.values() if i.created_at.timestamp() >= math.floor(image_mark))
        overlap_ops = sum(1 for o in before.operations.values() if o.created_at.timestamp() >= math.floor(op_mark))
        assert 2 + overlap_images <= again.images_listed < len(before) + len(again.new_images)
        assert 2 + overlap_ops <= again.operations_listed < len(before.operations) + len(again.new_operations)
        assert lineage.tree.parent(top) == chain[-1] and lineage.tree.parent(side) == chain[1]
        lineage.close()


async def test_a_new_process_loads_the_cache_and_sees_other_clients_images(engine_dir: Path) -> None:
    async with counted_connection(engine_dir) as (conn, wire):
        base = await conn.client.inspect_find_image_by_tag("busybox:latest")
        lineage = Lineage(conn, overlap=0)
        await lineage.refresh()
        known = len(lineage.tree)
        lineage.close()
        assert lineage_cache_path(conn.cache_key).exists()

        # another client (its own connection, no lineage of its own) makes a chain of two
        await asyncio.sleep(1.1)
        async with counted_connection(engine_dir) as (other, _):
            first = result_image(await run_shell(other, base, "echo other > /other"))
            second = result_image(await run_shell(other, first, "echo more >> /other"))

        reopened = Lineage(conn, cache=LineageCache.for_key(conn.cache_key), overlap=0)
        cached = reopened.tree
        assert len(cached) == known  # straight from the cache, no request
        image_mark = reopened.cache.mark("images")
        assert image_mark is not None
        mark = len(wire.requests)
        report = await reopened.refresh()
        assert not report.full and report.requests == len(wire.since(mark)) == 3
        in_mark_second = sum(1 for i in cached.images.values() if i.created_at.timestamp() >= math.floor(image_mark))
        assert report.images_listed == 2 + in_mark_second and set(report.new_images) == {first, second}
        assert reopened.tree.ancestors(second)[:2] == (first, base)
        reopened.close()


async def test_tags_moved_by_anyone_show_on_refresh(engine_dir: Path) -> None:
    async with counted_connection(engine_dir) as (conn, _wire):
        base = await conn.client.inspect_find_image_by_tag("busybox:latest")
        one = result_image(await run_shell(conn, base, "echo 1 > /t"))
        two = result_image(await run_shell(conn, base, "echo 2 > /t"))
        await conn.client.update_image_tag(one, "lineage-test:moving")
        lineage = Lineage(conn)
        await lineage.refresh()
        assert lineage.tree.image(one).tags == ("lineage-test:moving",)  # type: ignore[union-attr]
        await conn.client.update_image_tag(two, "lineage-test:moving")  # moves the tag
        await lineage.refresh()
        assert lineage.tree.image(one).tags == ()  # type: ignore[union-attr]
        assert lineage.tree.image(two).tags == ("lineage-test:moving",)  # type: ignore[union-attr]
        await conn.client.delete_image_tag(two, tag="lineage-test:moving")
        await lineage.refresh()
        assert lineage.tree.image(two).tags == ()  # type: ignore[union-attr]
        lineage.close()


async def test_a_running_operation_is_followed_up_after_it_ends(engine_dir: Path) -> None:
    async with counted_connection(engine_dir) as (conn, wire):
        base = await conn.client.inspect_find_image_by_tag("busybox:latest")
        lineage = Lineage(conn, overlap=0)
        spawned = await conn.client.spawn_instance("sleep 4; echo done > /slow", base, shell=True, disposable=False)
        await lineage.refresh()
        assert not lineage.tree.operations[spawned.uuid].terminal
        await asyncio.sleep(1.1)
        await run_shell(conn, base, "echo later > /later")
        await lineage.refresh()  # the operations mark moves past the slow one, which is still running
        assert not lineage.tree.operations[spawned.uuid].terminal
        await conn.client.wait_operation(spawned.uuid, timeout=60)
        mark = len(wire.requests)
        report = await lineage.refresh()
        assert spawned.uuid in report.changed_operations
        assert lineage.tree.operations[spawned.uuid].status is OperationStatus.SUCCESS
        fetched = [route(r) for r in wire.since(mark)]
        assert fetched.count(f"GET /operations/{spawned.uuid}") == 1  # older than the listing reached: asked once
        assert lineage.tree.parent(result_image(await conn.client.get_operation_status(spawned.uuid))) == base
        lineage.close()


def test_a_10000_image_tree_builds_walks_and_renders_without_recursion() -> None:
    """Records as the listings give them: one import, then a chain of 10,000 runs with a side branch every 100
    (a long session is a deep tree: nothing may recurse per level)."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    images = {"root": ImageRecord("root", ("base:latest",), start, None)}
    ops: dict[str, OperationRecord] = {}
    previous = "root"
    for i in range(10_000):
        uuid, op = f"img{i:05d}", f"op{i:05d}"
        source = previous if i % 100 else "root"  # every 100th image branches off the root again
        images[uuid] = ImageRecord(uuid, (), start + timedelta(seconds=i + 1), op)
        ops[op] = OperationRecord(op, "instance", OperationStatus.SUCCESS, start + timedelta(seconds=i + 1),
                                  image_uuid=source, result_image_uuid=uuid, command=f"step {i}")
        previous = uuid
    ops["noop"] = OperationRecord("noop", "instance", OperationStatus.SUCCESS, start, image_uuid="img00050",
                                  result_image_uuid="img00050")  # changed nothing: no edge
    started = time.perf_counter()
    tree = LineageTree(images, ops)
    assert len(tree) == 10_001 and tree.roots == ("root",)
    assert len(tree.ancestors("img09999")) == 100  # up its branch of 100 to the root
    assert len(tree.children("root")) == 100 and tree.children("img00050") == ("img00051",)
    assert sum(1 for _ in tree.walk()) == 10_001
    lines = tree_lines(tree, "img09999")
    assert len(lines) == 10_001 and lines[-1].startswith("*") and "$ step 9999" in lines[-1]
    assert time.perf_counter() - started < 5.0


async def test_a_refresh_sees_what_another_process_listed_first_sharing_the_cache(engine_dir: Path) -> None:
    """The TUI and the CLI share the cache file and its high-water marks. When the CLI (here: a second Lineage
    on the same file) refreshed after making images, the TUI's next refresh must still list them: before, it
    asked only for what was newer than the CLI's mark, so the CLI's first image never reached the TUI's tree
    (until a restart) and its second became a root with no parent (`R` showed unconnected roots)."""
    async with counted_connection(engine_dir) as (conn, _wire):
        base = await conn.client.inspect_find_image_by_tag("busybox:latest")
        tui = Lineage(conn, cache=LineageCache.for_key(conn.cache_key), overlap=0)
        await tui.refresh()
        cli = Lineage(conn, cache=LineageCache.for_key(conn.cache_key), overlap=0)
        await asyncio.sleep(1.1)  # whole seconds: `since` is floored
        first = result_image(await run_shell(conn, base, "echo cli1 > /cli1"))
        await cli.refresh()
        await asyncio.sleep(1.1)
        second = result_image(await run_shell(conn, first, "echo cli2 > /cli2"))
        await cli.refresh()

        await tui.refresh()
        assert first in tui.tree and second in tui.tree
        assert tui.tree.ancestors(second)[:2] == (first, base)
        assert second not in tui.tree.roots
        tui.close()
        cli.close()

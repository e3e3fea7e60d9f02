"""Concurrent runs on one image share its layers read-only and each commits only its own changes."""

from __future__ import annotations

import asyncio
import os

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Image, OperationStatus
from tests.engine.helpers import sh, stdout


async def test_eight_parallel_runs_on_one_image_give_eight_separate_children(engine: Engine,
                                                                              busybox: Image) -> None:
    ops = await asyncio.gather(*(
        sh(engine, busybox.uuid, f"mkdir -p /par && echo {i} > /par/file-{i} && sleep 0.2", timeout=30)
        for i in range(8)))
    assert [op.status for op in ops] == [OperationStatus.SUCCESS] * 8, [op.error for op in ops]
    # they really overlapped: every run started before the first one finished
    assert max(op.started_at for op in ops) < min(op.finished_at for op in ops)
    images = [op.result_image_uuid for op in ops]
    assert len(set(images)) == 8 and busybox.uuid not in images

    for i, image_uuid in enumerate(images):
        image = engine.store.get_image(image_uuid)
        assert image.parent == busybox.uuid and image.layers[:-1] == busybox.layers
        top = engine.layer_path(image.layers[-1])
        assert os.listdir(os.path.join(top, "par")) == [f"file-{i}"]
    listings = await asyncio.gather(*(sh(engine, image, "ls /par; cat /par/*", disposable=True) for image in images))
    assert [stdout(op) for op in listings] == [f"file-{i}\n{i}\n" for i in range(8)]
    base = await sh(engine, busybox.uuid, "ls /par 2>&1 || true", disposable=True)
    assert "No such file" in stdout(base)

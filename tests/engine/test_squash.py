"""Deep chains are squashed into a layer of hard links: the chain stays short, what each image shows does not
change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.models import OperationStatus
from contree_tui.engine.run_commit import KEEP_ON_TOP
from tests.engine.helpers import sh, stdout

OpenEngine = Callable[..., Awaitable[Engine]]
STEPS = 30
SQUASH_AT = 10


def _step(i: int) -> str:
    return (f"mkdir -p /data && echo line-{i} >> /data/log && rm -f /data/step-{i - 1} && echo {i} > /data/step-{i}"
            f" && rm -f /etc/hostname")


async def test_thirty_step_chain_stays_short_and_shows_every_write(open_engine: OpenEngine) -> None:
    engine = await open_engine(EngineConfig(squash_at=SQUASH_AT))
    busybox = await engine.ensure_busybox()
    images = [busybox.uuid]
    for i in range(1, STEPS + 1):
        op = await sh(engine, images[-1], _step(i))
        assert op.status is OperationStatus.SUCCESS, (i, op.error)
        images.append(op.result_image_uuid)
    assert len(set(images)) == STEPS + 1

    depths = [len(engine.store.get_image(uuid).layers) for uuid in images]
    assert max(depths) <= SQUASH_AT + 2, depths
    # up to the threshold every step adds a layer; past it: base, one squashed layer, the newest few as they were
    assert depths[:SQUASH_AT] == list(range(1, SQUASH_AT + 1))
    assert set(depths[SQUASH_AT:]) == {KEEP_ON_TOP + 2}
    final = engine.store.get_image(images[-1])
    assert final.layers[0] == busybox.layers[0], "the base layer is shared, never merged"
    assert final.layers[-KEEP_ON_TOP:] == engine.store.get_image(images[-2]).layers[-KEEP_ON_TOP + 1:] + \
        final.layers[-1:]

    view = await sh(engine, final.uuid, "cat /data/log; echo --; ls /data; test -e /etc/hostname || echo no-hostname")
    expected_log = "".join(f"line-{i}\n" for i in range(1, STEPS + 1))
    assert stdout(view) == expected_log + f"--\nlog\nstep-{STEPS}\nno-hostname\n"

    # images made before (and while) the chain was squashed still show their own state
    for step in (1, 5, SQUASH_AT + 3, 20):
        old = await sh(engine, images[step], "cat /data/log; ls /data", disposable=True)
        assert stdout(old) == "".join(f"line-{i}\n" for i in range(1, step + 1)) + f"log\nstep-{step}\n", step
    base = await sh(engine, busybox.uuid, "ls /data 2>/dev/null; cat /etc/hostname", disposable=True)
    assert stdout(base) == "linuxkit\n"

    # a child of the squashed image keeps working on top of it
    child = await sh(engine, final.uuid, "echo line-31 >> /data/log; wc -l < /data/log")
    assert stdout(child).strip() == str(STEPS + 1)


# Each step changes the tree in a way a squash must reproduce: opaque dirs, a file replaced by a dir and
# back, renames of lower dirs (copied whole, redirect_dir is off), hard links, owner and mode changes.
TRICKY_STEPS = (
    "mkdir -p /d/a/b && echo 1 > /d/a/b/f && ln -s /d/a/b/f /d/link && echo x > /d/hard && ln /d/hard /d/hard2",
    "rm -rf /d/a && mkdir -p /d/a && echo 2 > /d/a/g",
    "rm /etc/hostname && mkdir /etc/hostname && echo dir > /etc/hostname/inside",
    "rm -rf /etc/hostname && echo file-again > /etc/hostname",
    "chmod 700 /usr/sbin && chown 5:6 /usr/bin && rm /usr/bin/wc",
    "mv /d/a /d/moved && echo 3 >> /d/moved/g",
    "rm -rf /usr/sbin && mkdir /usr/sbin && ln -s /bin/busybox /usr/sbin/only",
    "echo 4 > /d/hard && rm /d/link && ln -s /nowhere /d/link",
    "rm -rf /d/moved && mkdir /d/moved && mkdir /usr/sbin/sub && echo y > /usr/sbin/sub/y",
    "rm -rf /usr/sbin/sub && touch /usr/sbin/sub && mkfifo /d/fifo",
    "rm /usr/sbin/sub && mkdir -p /usr/sbin/sub/deeper && echo z > /usr/sbin/sub/deeper/z",
    "rm -rf /root /tmp && mkdir -m 711 /root && mkdir -m 1777 /tmp && echo t > /tmp/t",
)
# Everything but link counts (a squash shares inodes with the layers it merged) and dir sizes.
TREE_VIEW = ("find / -xdev -exec stat -c '%n %F %a %u %g' {} + | sort;"
             " find / -xdev -type f -exec md5sum {} + | sort")


async def _tree_views(engine: Engine) -> tuple[list[str], int]:
    image = (await engine.ensure_busybox()).uuid
    views = []
    for step in TRICKY_STEPS:
        op = await sh(engine, image, step)
        assert op.status is OperationStatus.SUCCESS, (step, op.error)
        image = op.result_image_uuid
        views.append(stdout(await sh(engine, image, TREE_VIEW, disposable=True)))
    return views, len(engine.store.get_image(image).layers)


async def test_low_squash_threshold_shows_the_same_trees_as_no_squash(open_engine: OpenEngine) -> None:
    plain, plain_depth = await _tree_views(await open_engine(EngineConfig(squash_at=1000), name="plain"))
    squashed, squashed_depth = await _tree_views(await open_engine(EngineConfig(squash_at=3), name="squashed"))
    assert plain_depth == len(TRICKY_STEPS) + 1
    assert squashed_depth <= 3
    for step, (want, got) in enumerate(zip(plain, squashed, strict=True)):
        assert got == want, f"after step {step}: {TRICKY_STEPS[step]}"

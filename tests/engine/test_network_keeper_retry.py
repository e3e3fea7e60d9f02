"""An idle keeper started while pasta could not start (a moment's /dev/net/tun mode, another test widening and
restoring it; a pasta slow under load) has no network. A networked run that takes it gets a fresh keeper once
pasta works again, instead of failing "pasta did not start a network" (seen as a normal user: after one such
moment every run failed until the pool turned over, #14). Here pasta is a wrapper that fails while a flag file
exists, so the machine's /dev/net/tun is left alone."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.models import OperationStatus
from contree_tui.engine.sandbox.network import ENV_PASTA
from tests.engine.helpers import sh, stdout

PASTA = shutil.which("pasta")
pytestmark = pytest.mark.skipif(PASTA is None, reason="needs pasta (apt-get install passt)")


async def test_a_networked_run_does_not_inherit_a_keeper_made_while_pasta_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = tmp_path / "pasta-fails"
    failing.touch()
    wrapper = tmp_path / "pasta"
    wrapper.write_text(f"#!/bin/sh\n[ -e {failing} ] && exit 1\nexec {PASTA} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv(ENV_PASTA, str(wrapper))
    engine = await Engine.open(tmp_path / "state", EngineConfig(cgroups=False))
    try:
        image = await engine.ensure_busybox()
        keepers = engine.instances.keepers
        for _ in range(500):  # the pool fills with keepers whose pasta failed: no network
            if len(keepers._idle) >= keepers.size:
                break
            await asyncio.sleep(0.02)
        assert keepers._idle and not any(keeper.networked for keeper, _ in keepers._idle)
        failing.unlink()  # pasta works again
        op = await sh(engine, image.uuid, "ip -o link | grep -c -v ' lo:'", disposable=True)
        assert op.status is OperationStatus.SUCCESS, op.error
        assert stdout(op).strip() == "1"  # the sandbox's own interface besides loopback
    finally:
        await engine.close()

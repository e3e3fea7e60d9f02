"""The command's surroundings as the spawn request sets them: stdin, exec vs shell, env, cwd, uid/gid."""

from __future__ import annotations

import base64

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import DEFAULT_PATH, Image, OperationStatus
from contree_tui.engine.output import decode_stream
from tests.engine.helpers import sh, stdout


async def test_ascii_stdin_reaches_cat(engine: Engine, busybox: Image) -> None:
    op = await engine.run({"image": busybox.uuid, "command": "cat",
                           "stdin": {"value": "hello", "encoding": "ascii"}})
    assert op.status is OperationStatus.SUCCESS, op.error
    assert stdout(op) == "hello"


async def test_base64_stdin_is_decoded_byte_for_byte(engine: Engine, busybox: Image) -> None:
    data = bytes(range(256)) * 3
    op = await engine.run({"image": busybox.uuid, "command": "cat",
                           "stdin": {"value": base64.b64encode(data).decode(), "encoding": "base64"}})
    assert op.result["stdout"]["encoding"] == "base64"
    assert decode_stream(op.result["stdout"]) == data


async def test_without_stdin_the_command_reads_eof(engine: Engine, busybox: Image) -> None:
    op = await sh(engine, busybox.uuid, "wc -c", timeout=5)
    assert op.status is OperationStatus.SUCCESS and stdout(op).strip() == "0"


async def test_exec_passes_args_verbatim_and_only_the_request_env(engine: Engine, busybox: Image) -> None:
    with_env = await sh(engine, busybox.uuid, "true", env={"FROM_IMAGE": "yes"}, preserve_env=True)
    image = engine.store.get_image(with_env.result_image_uuid)
    assert image.env["FROM_IMAGE"] == "yes"

    argv = await engine.run({"image": image.uuid, "command": "printf", "args": ["%s|", "a b", "$HOME", "*"]})
    assert stdout(argv) == "a b|$HOME|*|", "no shell: no word splitting, expansion or globbing"

    exec_env = await engine.run({"image": image.uuid, "command": "env", "env": {"ONLY": "this"}})
    assert sorted(stdout(exec_env).splitlines()) == ["ONLY=this", f"PATH={DEFAULT_PATH}"]

    shell_env = await sh(engine, image.uuid, 'echo "$FROM_IMAGE $ONLY"', env={"ONLY": "this"})
    assert stdout(shell_env) == "yes this\n", "a shell expression inherits the image env"


async def test_exec_of_a_missing_command_fails_with_its_name(engine: Engine, busybox: Image) -> None:
    op = await engine.run({"image": busybox.uuid, "command": "/no/such/tool", "args": ["x"]})
    assert op.status is OperationStatus.FAILED
    assert "/no/such/tool" in (op.error or "")


async def test_missing_cwd_is_created(engine: Engine, busybox: Image) -> None:
    op = await sh(engine, busybox.uuid, "pwd; ls -ld . | cut -c1-10", cwd="/work/new/dir")
    assert stdout(op) == "/work/new/dir\ndrwxr-xr-x\n"
    later = await sh(engine, op.result_image_uuid, "test -d /work/new/dir && echo kept")
    assert stdout(later) == "kept\n"


async def test_uid_and_gid_are_applied(engine: Engine, busybox: Image) -> None:
    op = await sh(engine, busybox.uuid, "id -u; id -g; id -G; touch /tmp/mine; stat -c '%u %g' /tmp/mine",
                  uid=1234, gid=2345)
    assert stdout(op).split() == ["1234", "2345", "2345", "1234", "2345"]
    denied = await sh(engine, busybox.uuid, "echo x > /etc/passwd 2>/dev/null && echo wrote || echo denied",
                      uid=1234, gid=2345)
    assert stdout(denied) == "denied\n"

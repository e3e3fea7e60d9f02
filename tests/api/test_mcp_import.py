"""Issue #11: contree-mcp's `import_image` tool succeeds against the engine. The tool functions are driven
in-process exactly as contree-mcp's server wires them (contree_mcp/server.py: a ContreeClient holding a
general Cache, set into the CLIENT context var, and a FileCache into FILES_CACHE), with the client's HTTP
over our engine's Unix socket. The image comes from a real docker-registry on 127.0.0.1; its `run` tool
then runs a command in the result and the output proves the layers and the config (env) arrived.

Not covered: registry_auth / cached registry credentials. contree-mcp validates them against
`https://<hostname>/v2/` (RegistryAuth.from_url keeps the hostname and drops the port, and always speaks
https), so it cannot reach a test registry on 127.0.0.1:PORT; the engine's credential path is covered by
tests/api/test_registry_import.py through contree-client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import BASE_URL
from tests.images.busybox_layouts import busybox_layer
from tests.images.oci_build import write_layout
from tests.images.registry import Registry, have_registry

contree_mcp = pytest.importorskip("contree_mcp", reason="contree-mcp is not installed (pip install '.[test]')")

from contree_mcp.cache import Cache  # noqa: E402
from contree_mcp.client import ContreeClient  # noqa: E402
from contree_mcp.context import CLIENT, FILES_CACHE  # noqa: E402
from contree_mcp.file_cache import FileCache  # noqa: E402
from contree_mcp.tools.import_image import RegistryAuthenticationError, import_image  # noqa: E402
from contree_mcp.tools.run import run  # noqa: E402

pytestmark = pytest.mark.skipif(not have_registry(), reason="docker-registry and skopeo are not installed")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("mcp-registry")
    reg = Registry.start(root / "registry")
    write_layout(root / "app", [busybox_layer(**{"etc/motd": b"hello from the registry\n"})], tag="v1",
                 env=["PATH=/bin", "GREETING=mcp"])
    reg.push(root / "app", "v1", "mcp/app")
    yield reg
    reg.stop()


@pytest.fixture
async def mcp_client(socket_path: str, tmp_path: Path) -> AsyncIterator[ContreeClient]:
    """contree-mcp's context as its server builds it, the caches in the test's tmp dir (not ~/.cache)."""
    http = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=socket_path), timeout=30)
    async with Cache(db_path=tmp_path / "general.db") as cache, FileCache(db_path=tmp_path / "files.db") as files:
        client = ContreeClient("local-test-token", cache, base_url=BASE_URL, httpx_client=http)
        CLIENT.set(client)
        FILES_CACHE.set(files)
        try:
            yield client
        finally:
            await http.aclose()


async def test_mcp_import_image_then_run(mcp_client: ContreeClient, registry: Registry) -> None:
    url = registry.url("mcp/app", "v1")
    imported = await import_image(url, tag="mcp/app:v1", i_accept_that_anonymous_access_might_be_rate_limited=True)
    assert not isinstance(imported, dict)
    assert (imported.status, imported.kind, imported.error) == ("SUCCESS", "image_import", None)
    assert imported.result is not None and imported.result.tag == "mcp/app:v1"
    assert imported.result_image_uuid == imported.result.image and imported.image_uuid is None

    by_tag = await run("cat /etc/motd; echo $GREETING", "tag:mcp/app:v1")
    assert not isinstance(by_tag, dict)
    assert (by_tag.status, by_tag.exit_code, by_tag.stdout) == ("SUCCESS", 0, "hello from the registry\nmcp\n")
    by_uuid = await run("busybox --help >/dev/null && echo ok", imported.result.image or "")
    assert not isinstance(by_uuid, dict) and by_uuid.stdout == "ok\n"


async def test_mcp_import_without_wait_gives_an_operation_id(mcp_client: ContreeClient, registry: Registry) -> None:
    started = await import_image(registry.url("mcp/app", "v1"), wait=False,
                                 i_accept_that_anonymous_access_might_be_rate_limited=True)
    assert isinstance(started, dict)
    done = await mcp_client.wait_operation(started["operation_id"], timeout=120)
    assert done.status.value == "SUCCESS", done.error


async def test_mcp_import_failure_is_a_failed_operation_with_the_reason(mcp_client: ContreeClient,
                                                                        registry: Registry) -> None:
    missing = await import_image(registry.url("mcp/nope", "v1"),
                                 i_accept_that_anonymous_access_might_be_rate_limited=True)
    assert not isinstance(missing, dict)
    assert missing.status == "FAILED" and missing.result_image_uuid is None
    assert missing.error and "mcp/nope" in missing.error, missing.error


async def test_mcp_refuses_anonymous_unless_accepted(mcp_client: ContreeClient, registry: Registry) -> None:
    with pytest.raises(RegistryAuthenticationError):
        await import_image(registry.url("mcp/app", "v1"))

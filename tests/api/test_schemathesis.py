"""Property-based requests generated from the Contree OpenAPI spec (schemathesis): no server errors.

The spec is the one contree-client was generated from (the module docstring of contree_client.spec_info).
The engine runs as a real `contree-tui engine serve` process on loopback TCP with a bearer token. Image
import is left out: a generated registry.url names registries on the internet, which the tests never reach
(tests/api/test_import.py and the registry tests cover it against local sources).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
import yaml
from contree_client import spec_info
from hypothesis import HealthCheck, settings

LEFT_OUT = {("POST", "/images/import")}


def _spec() -> dict:
    doc = spec_info.__doc__ or ""
    block = doc[doc.index(".. code-block:: yaml") + len(".. code-block:: yaml"):]
    return yaml.safe_load(textwrap.dedent(block))


schema = schemathesis.openapi.from_dict(_spec())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    state = Path(tempfile.mkdtemp(prefix="ctschema-"))
    port, token = _free_port(), "schemathesis-token"
    process = subprocess.Popen([sys.executable, "-m", "contree_tui.cli", "engine", "serve", "--state-dir", str(state),
                                "--listen", f"127.0.0.1:{port}", "--token", token],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield url, token
    finally:
        process.terminate()
        process.wait(timeout=30)
        subprocess.run(["rm", "-rf", str(state)], check=False)


@schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_no_request_from_the_spec_makes_a_server_error(case: schemathesis.Case, served: tuple[str, str]) -> None:
    url, token = served
    route = (case.operation.method.upper(), case.operation.path)
    if route in LEFT_OUT:
        pytest.skip("generated registry urls would reach the internet")
    response = case.call(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code < 500, f"{route}: {response.status_code} {response.text[:300]}"

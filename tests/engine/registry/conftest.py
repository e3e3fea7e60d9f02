"""Registries for the registry-source tests: one per module (starting one takes ~0.1 s, pushing ~0.1 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.images.registry import Registry, TokenServer, bcrypt_hash, have_registry

USER, PASSWORD = "alice", "s3cret-pw"

@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    if not have_registry():
        pytest.skip("docker-registry and skopeo are not installed")
    reg = Registry.start(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def htpasswd_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    if not have_registry():
        pytest.skip("docker-registry and skopeo are not installed")
    root = tmp_path_factory.mktemp("htpasswd-registry")
    (root / "htpasswd").write_text(f"{USER}:{bcrypt_hash(PASSWORD)}\n")
    reg = Registry.start(root, auth={"htpasswd": {"realm": "contree-test", "path": str(root / "htpasswd")}},
                         creds=(USER, PASSWORD))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    if not have_registry():
        pytest.skip("docker-registry and skopeo are not installed")
    root = tmp_path_factory.mktemp("token-registry")
    tokens = TokenServer.start(root / "tokens", {USER: PASSWORD})
    reg = Registry.start(root, auth=tokens.registry_auth(), creds=(USER, PASSWORD), token_server=tokens)
    yield reg
    reg.stop()

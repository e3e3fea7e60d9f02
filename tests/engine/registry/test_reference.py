"""Reference parsing: what the official clients send (contree-sdk's own normaliser runs here), Docker Hub
normalisation, registries with ports and IPv6 literals, and the 400s for malformed references."""

from __future__ import annotations

import pytest
from contree_sdk.utils.oci import OCIReference

from contree_tui.engine.models import EngineError
from contree_tui.engine.registry.reference import ACCEPTED_FORMS, parse_reference
from contree_tui.engine.registry.source import RegistrySource

DIGEST = "sha256:" + "ab" * 32

# (what is sent as registry.url, canonical reference, API host, what GET /v2/<name>/manifests/<ref> asks)
SENT = [
    # the spec's example and contree-cli's normalised form (docker://<registry>/<path>:<tag>)
    ("docker://docker.io/busybox:latest", "docker://docker.io/library/busybox:latest", "registry-1.docker.io",
     "latest"),
    ("docker://docker.io/library/ubuntu:latest", "docker://docker.io/library/ubuntu:latest", "registry-1.docker.io",
     "latest"),
    ("docker://index.docker.io/library/ubuntu:22.04", "docker://docker.io/library/ubuntu:22.04",
     "registry-1.docker.io", "22.04"),
    ("docker://ghcr.io/o/i:t", "docker://ghcr.io/o/i:t", "ghcr.io", "t"),
    ("docker://docker.io/user/img:latest", "docker://docker.io/user/img:latest", "registry-1.docker.io", "latest"),
    # bare references, as users and contree-mcp pass them
    ("alpine", "docker://docker.io/library/alpine:latest", "registry-1.docker.io", "latest"),
    ("alpine:3.19", "docker://docker.io/library/alpine:3.19", "registry-1.docker.io", "3.19"),
    ("python:3.11-slim", "docker://docker.io/library/python:3.11-slim", "registry-1.docker.io", "3.11-slim"),
    ("user/img", "docker://docker.io/user/img:latest", "registry-1.docker.io", "latest"),
    ("docker://alpine", "docker://docker.io/library/alpine:latest", "registry-1.docker.io", "latest"),
    # registries with ports, localhost, IPv6 literals
    ("localhost:5000/x", "docker://localhost:5000/x:latest", "localhost:5000", "latest"),
    ("docker://127.0.0.1:5000/team/app:v1", "docker://127.0.0.1:5000/team/app:v1", "127.0.0.1:5000", "v1"),
    ("docker://[::1]:5000/repo:tag", "docker://[::1]:5000/repo:tag", "[::1]:5000", "tag"),
    ("[fe80::1]/a/b", "docker://[fe80::1]/a/b:latest", "[fe80::1]", "latest"),
    ("registry.example.com:5000/a/b/c:1.0", "docker://registry.example.com:5000/a/b/c:1.0",
     "registry.example.com:5000", "1.0"),
    # digests: pinned, and with a tag the digest wins (the tag stays for messages)
    (f"busybox@{DIGEST}", f"docker://docker.io/library/busybox@{DIGEST}", "registry-1.docker.io", DIGEST),
    (f"docker://127.0.0.1:5000/x:v1@{DIGEST}", f"docker://127.0.0.1:5000/x:v1@{DIGEST}", "127.0.0.1:5000", DIGEST),
    # names with every separator distribution allows
    ("team/a.b_c__d-e--f:T_1.x-y", "docker://docker.io/team/a.b_c__d-e--f:T_1.x-y", "registry-1.docker.io",
     "T_1.x-y"),
    # contree-sdk 0.3.6 sends a port-only host under docker.io (it takes a registry only with a dot)
    ("docker://docker.io/localhost:5000/x:1", "docker://localhost:5000/x:1", "localhost:5000", "1"),
]


@pytest.mark.parametrize(("url", "canonical", "host", "manifest_ref"), SENT)
def test_references_as_the_clients_send_them(url: str, canonical: str, host: str, manifest_ref: str) -> None:
    ref = parse_reference(url)
    assert ref.canonical() == canonical
    assert ref.api_host == host
    assert ref.manifest_ref == manifest_ref


@pytest.mark.parametrize("typed", [
    "ubuntu:latest", "alpine", "docker.io/ubuntu", "ghcr.io/o/i:t", "user/img", "127.0.0.1:5000/team/app:v1",
    "localhost:5000/x:1", "registry.example.com:5000/a/b/c:1.0", f"busybox@{DIGEST}"])
def test_whatever_contree_sdk_sends_for_a_typed_reference_means_that_reference(typed: str) -> None:
    sent = OCIReference.from_oci(typed).url  # the SDK's images.oci() puts this in registry.url
    assert parse_reference(sent) == parse_reference(typed)


def test_the_loopback_set() -> None:
    for host in ("127.0.0.1:5000", "127.9.9.9", "localhost:1", "[::1]:5000"):
        assert parse_reference(f"{host}/x").is_loopback, host
    for host in ("10.0.0.1:5000", "registry.example.com", "[fe80::1]", "localhost.example.com"):
        assert not parse_reference(f"{host}/x").is_loopback, host


@pytest.mark.parametrize(("url", "why"), [
    ("", "it is empty"),
    ("docker://", "it is empty"),
    ("https://registry.example.com/x", "'https://' is not a registry scheme (a registry's image is "
                                        "docker://registry.example.com/x)"),
    ("Alpine", "'Alpine' must be lower-case"),
    ("registry.example.com/Team/App", "'Team/App' must be lower-case"),
    ("a:b:c", "is not lower-case components"),
    ("a//b", "is not lower-case components"),
    ("-a/b", "is not lower-case components"),
    ("x:-bad", "the tag '-bad'"),
    ("x:" + "t" * 129, "the tag"),
    ("x@sha256:12", "the digest 'sha256:12'"),
    (f"x@sha512:{'a' * 128}", "the digest"),
    ("host:99999/x", "the registry 'host:99999'"),
    ("host:/x", "the registry 'host:'"),
    ("[zz]:5/x", "the registry '[zz]:5'"),
    ("[::1]:5000/", "has no repository name"),
    ("alpine latest", "whitespace"),
    ("registry.example.com/" + "a" * 260, "longer than 255"),
])
def test_malformed_references_are_400_showing_the_accepted_forms(url: str, why: str) -> None:
    with pytest.raises(EngineError) as err:
        parse_reference(url)
    assert err.value.status == 400
    assert why in str(err.value)
    assert str(err.value).endswith(ACCEPTED_FORMS)


def test_the_source_refuses_a_malformed_reference_in_its_constructor() -> None:
    with pytest.raises(EngineError) as err:
        RegistrySource("docker://Bad Name", None, insecure=False, timeout=1)
    assert err.value.status == 400

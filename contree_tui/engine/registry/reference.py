"""Registry references as the official clients send them, parsed and normalised like docker does.

    docker://[REGISTRY[:PORT]/]NAME[:TAG][@sha256:HEX]     (contree-cli, contree-sdk, the spec's example)
    NAME[:TAG][@sha256:HEX]                                 (a bare reference, as a user types it)

Docker Hub normalisation (distribution/reference ParseNormalizedNamed): no registry, or `docker.io` /
`index.docker.io`, is Docker Hub, whose API host is registry-1.docker.io; a one-segment name there gets
`library/`; no tag and no digest means `:latest`; with both a tag and a digest the digest is what is fetched
(the tag stays in messages). The first segment is a registry when it has a `.` or a `:` or is `localhost`
(`localhost:5000/x`, `[::1]:5000/x`, `ghcr.io/o/i`), else it is part of a Docker Hub name (`user/img`).
A malformed reference is an EngineError (400) naming the accepted forms, raised before any I/O.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from contree_tui.engine.models import EngineError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

ACCEPTED_FORMS = ("accepted forms: docker://[REGISTRY[:PORT]/]NAME[:TAG|@sha256:DIGEST] or NAME[:TAG] "
                  "(e.g. docker://registry.example.com:5000/team/app:1.0, docker://alpine:3.19, alpine)")

# The grammar of distribution/reference (regexp.go): lower-case path components joined by `/`, separators
# `.`, `_`, `__` or runs of `-`; a tag of up to 128 word characters; a whole name of at most 255 characters.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_IPV6 = re.compile(r"\[([0-9A-Fa-f:.]+)\]")
_PORT = re.compile(r"[0-9]{1,5}")
_MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    registry: str  # as the user names it, normalised: "docker.io", "127.0.0.1:5000", "[::1]:5000"
    repository: str  # "library/alpine", "team/app"
    tag: str | None  # None only with a digest and no tag
    digest: str | None  # "sha256:<hex>" when pinned

    @property
    def api_host(self) -> str:
        """host[:port] the HTTP requests go to (Docker Hub's API lives on another host than its name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def hostname(self) -> str:
        """The host without port or IPv6 brackets: what TLS and the loopback test look at."""
        host = self.api_host
        match = _IPV6.match(host)
        if match:
            return match.group(1)
        return host.rsplit(":", 1)[0] if ":" in host else host

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.hostname)

    @property
    def manifest_ref(self) -> str:
        """What GET /v2/<name>/manifests/<ref> asks for: the digest wins over the tag."""
        return self.digest or self.tag or "latest"

    def canonical(self) -> str:
        text = f"docker://{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def __str__(self) -> str:
        return self.canonical()


def is_loopback_host(host: str) -> bool:
    """Docker's own default insecure set (127.0.0.0/8, ::1) plus `localhost`: plain HTTP is allowed there."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bad(url: str, why: str) -> EngineError:
    return EngineError(f"invalid image reference {url!r}: {why}; {ACCEPTED_FORMS}", 400)


def _valid_registry(host: str) -> bool:
    if host.startswith("["):
        end = host.find("]")
        try:
            ipaddress.IPv6Address(host[1:end] if end > 0 else "")
        except ValueError:
            return False
        rest = host[end + 1:]
        return rest == "" or (rest.startswith(":") and _port_ok(rest[1:]))
    name, colon, port = host.partition(":")
    if colon and not _port_ok(port):
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def _port_ok(port: str) -> bool:
    return bool(_PORT.fullmatch(port)) and 0 < int(port) < 65536


def parse_reference(url: str) -> Reference:
    """`docker://...` or a bare `name[:tag][@digest]` → Reference; EngineError 400 if malformed."""
    if not isinstance(url, str) or not url.strip():
        raise _bad(str(url), "it is empty")
    text = url.strip()
    if text.startswith("docker://"):
        text = text[len("docker://"):]
    elif "://" in text:
        scheme, _, rest = text.partition("://")
        # what a stranger types most: a registry's web address; the reference it meant is the same host and path
        raise _bad(url, f"the scheme '{scheme[:20]}://' is not a registry scheme (a registry's image is "
                        f"docker://{rest[:200]})")
    if not text or any(c.isspace() for c in text):
        raise _bad(url, "it is empty or has whitespace")

    name, at, digest = text.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise _bad(url, f"the digest {digest!r} is not sha256:<64 lower-case hex digits>")
    # A tag is a `:` after the last `/` (before it, a `:` is a registry's port).
    tag: str | None = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash and not (slash == -1 and name.startswith("[")):
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise _bad(url, f"the tag {tag!r} is not 1-128 of [A-Za-z0-9_.-] (not starting with . or -)")

    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, path = first, rest
        if not _valid_registry(registry):
            raise _bad(url, f"the registry {registry!r} is not HOST[:PORT] or [IPv6][:PORT]")
        if registry.lower() in _HUB_ALIASES:
            registry = DOCKER_HUB
            if ":" in path.split("/", 1)[0] and "/" in path:
                # contree-sdk 0.3.6 sends `localhost:5000/x` as docker://docker.io/localhost:5000/x (it takes a
                # registry only when the host has a dot); a Hub name never has a `:`, so that is a registry
                return parse_reference(text.split("/", 1)[1])
    else:
        registry, path = DOCKER_HUB, name
    if not path:
        raise _bad(url, "it has no repository name")
    if path != path.lower() and all(_COMPONENT.fullmatch(c) for c in path.lower().split("/")):
        raise _bad(url, f"the repository name {path!r} must be lower-case")
    if not all(_COMPONENT.fullmatch(c) for c in path.split("/")):
        raise _bad(url, f"the repository name {path!r} is not lower-case components [a-z0-9] joined by "
                        "'/' with '.', '_', '__' or '-' inside")
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if len(registry) + 1 + len(path) > _MAX_NAME:
        raise _bad(url, f"the name is longer than {_MAX_NAME} characters")
    if tag is None and not digest:
        tag = "latest"
    return Reference(registry=registry, repository=path, tag=tag, digest=digest or None)

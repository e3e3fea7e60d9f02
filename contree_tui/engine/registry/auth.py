"""Registry authentication: the `WWW-Authenticate` challenge, the Bearer token flow and plain Basic auth.

A registry answers 401 with `WWW-Authenticate: Bearer realm="https://auth.example/token",
service="registry.example",scope="repository:team/app:pull"` (the Docker token protocol, which every public
registry speaks) or `Basic realm="..."` (a registry behind htpasswd). For Bearer we GET the realm with the
service and scope as query parameters, sending the user's credentials as Basic auth when there are any
(anonymously otherwise), and use the `token` (or OAuth2's `access_token`) the server returns as
`Authorization: Bearer ...` until its `expires_in` (60 s when it says nothing, as the protocol specifies).
Tokens are cached per scope for the life of one import.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass, field

# key=value or key="quoted value" (backslash escapes inside quotes), separated by commas (RFC 7235)
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')

DEFAULT_TOKEN_SECONDS = 60  # the token spec: "if omitted, 60 seconds should be assumed"
EARLY_REFRESH_SECONDS = 5  # a token this close to its end is fetched again rather than risked


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic" (lower-case)
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenge(header: str | None) -> Challenge | None:
    """The first challenge of a WWW-Authenticate header, or None when there is none we can answer."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("bearer", "basic"):
        return None
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None or match.end() == pos:
            break
        key, quoted, bare = match.groups()
        params[key.lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        pos = match.end()
    return Challenge(scheme, params)


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


@dataclass
class TokenCache:
    """Bearer tokens by scope, each with the monotonic time it stops being used."""

    _tokens: dict[str, tuple[str, float]] = field(default_factory=dict)

    def get(self, scope: str) -> str | None:
        entry = self._tokens.get(scope)
        if entry is None or time.monotonic() >= entry[1]:
            return None
        return entry[0]

    def put(self, scope: str, token: str, expires_in: float) -> None:
        lifetime = max(expires_in - EARLY_REFRESH_SECONDS, 1.0)
        self._tokens[scope] = (token, time.monotonic() + lifetime)

    def drop(self, scope: str) -> None:
        self._tokens.pop(scope, None)


def token_from_response(doc: object) -> tuple[str, float] | None:
    """(token, seconds it lives) from a token server's JSON, or None when it holds no usable token."""
    if not isinstance(doc, dict):
        return None
    token = doc.get("token") or doc.get("access_token")
    if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
        return None
    expires = doc.get("expires_in")
    seconds = float(expires) if isinstance(expires, int | float) and expires > 0 else DEFAULT_TOKEN_SECONDS
    return token, seconds

"""The HTTP side of the OCI distribution protocol: endpoint (https / http) choice, auth, retries, limits.

A registry is hostile until its bytes are verified, so every request is bounded:
  - connect and read timeouts (a read timeout is the longest gap between two chunks of a body: a registry
    that stops sending fails the import with a message naming it and what stalled), and the operation's
    deadline over everything, retries and Retry-After waits included;
  - every JSON body is read through read_capped (manifest 4 MiB, config 8 MiB, token 1 MiB, errors 64 KiB),
    with `Accept-Encoding: identity`, so what we count is what the server sent (no decompression bomb);
  - 429 and 503 honour Retry-After (at most `max_retry_wait` s per wait), other 5xx are retried with backoff.

TLS: https, verified with the system's CAs (not certifi's bundle: a company CA installed on the machine
works). Plain HTTP only for loopback registries (docker's default insecure set 127.0.0.0/8 and ::1, plus
`localhost`) or with insecure=True. Like docker, those try https first and fall back to http only when the
TLS connection itself fails (refused, handshake error, an HTTP server answering a ClientHello); insecure
https skips certificate verification, as docker's --insecure-registry does. The choice is made once, by
the first request (GET /v2/, which also returns the auth challenge), and kept for the process.
HTTPS_PROXY / HTTP_PROXY / NO_PROXY apply as docker applies them, never to loopback registries.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import os
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx

from contree_tui.engine.models import EngineError
from contree_tui.engine.registry.auth import Challenge, TokenCache, basic_header, parse_challenge, token_from_response
from contree_tui.engine.registry.reference import Reference, is_loopback_host

MANIFEST_CAP = 4 << 20  # distribution's own limit on a manifest PUT is 4 MiB
CONFIG_CAP = 8 << 20  # configs carry history; the largest seen in the wild are a few hundred KiB
TOKEN_CAP = 1 << 20
ERROR_CAP = 64 << 10
MAX_ENDPOINTS = 256

# (API host, insecure, CA file) → (base URL, auth challenge of GET /v2/), for every import of the process
_ENDPOINTS: dict[tuple[str, bool, str | None], tuple[str, Challenge | None]] = {}


@dataclass(frozen=True)
class RegistrySettings:
    """Limits of one import's registry traffic; the defaults suit public registries, tests shorten them."""

    connect_timeout: float = 15.0
    read_timeout: float = 60.0  # longest silence while waiting for headers or between two chunks of a body
    max_retry_wait: float = 30.0  # the longest single Retry-After honoured
    busy_retries: int = 5  # extra tries after a 429 / 503
    error_retries: int = 2  # extra tries after another 5xx or a dropped connection
    backoff: float = 0.5  # first wait between tries when the server says nothing (doubles each time)
    ca_file: str | None = None  # extra trust anchors (tests); None = the system's CAs


class Deadline:
    """The operation's end, on the monotonic clock: every wait is bounded by what is left of it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


class RegistryClient:
    def __init__(self, ref: Reference, username: str | None, password: str | None, *, insecure: bool,
                 deadline: Deadline, settings: RegistrySettings) -> None:
        self.ref = ref
        self._username = username
        self._password = password
        self._insecure = insecure
        self.deadline = deadline
        self.settings = settings
        self._http: httpx.AsyncClient | None = None
        self._base: str | None = None
        self._challenge: Challenge | None = None
        self._tokens = TokenCache()
        # blobs may be fetched concurrently: one endpoint probe and one token request serve them all
        self._setup = asyncio.Lock()

    @property
    def name(self) -> str:
        return self.ref.registry

    @property
    def scope(self) -> str:
        return f"repository:{self.ref.repository}:pull"

    # -- transport ----------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            s = self.settings
            verify: ssl.SSLContext | bool = False if self._insecure else _tls_context(s.ca_file)
            # trust_env: HTTPS_PROXY / NO_PROXY as docker honours them, except for loopback registries,
            # which Go's ProxyFromEnvironment never proxies either (the TLS context is ours either way)
            self._http = httpx.AsyncClient(
                verify=verify, follow_redirects=True, max_redirects=5, trust_env=not self.ref.is_loopback,
                timeout=httpx.Timeout(connect=s.connect_timeout, read=s.read_timeout, write=s.read_timeout,
                                      pool=s.connect_timeout),
                headers={"Accept-Encoding": "identity", "User-Agent": "contree-tui"})
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _candidates(self) -> list[str]:
        host = self.ref.api_host
        if self._insecure or self.ref.is_loopback:
            return [f"https://{host}", f"http://{host}"]
        return [f"https://{host}"]

    @property
    def _endpoint_key(self) -> tuple[str, bool, str | None]:
        return self.ref.api_host, self._insecure, self.settings.ca_file

    async def _base_url(self) -> str:
        """Pick https or http with GET /v2/ (any HTTP answer means the scheme works), keep its challenge.

        The choice is remembered for the process (_ENDPOINTS): it is two round trips, one of them a failed
        TLS handshake on a plain-HTTP loopback registry, half the time of re-importing an unchanged image.
        A remembered endpoint that stops answering is probed again (get)."""
        if self._base is not None:
            return self._base
        known = _ENDPOINTS.get(self._endpoint_key)
        if known is not None:
            self._base, self._challenge = known
            return self._base
        failures = []
        for base in self._candidates():
            try:
                resp = await self._send_retrying("GET", f"{base}/v2/", {}, "the API version check (GET /v2/)")
            except _Unreachable as exc:
                failures.append(f"{base.split(':')[0]}: {exc}")
                continue
            await resp.aclose()
            if not (200 <= resp.status_code < 300 or resp.status_code in (401, 403)):
                # e.g. a TLS-only server answering plain HTTP with 400: not the registry API on this scheme
                failures.append(f"{base.split(':')[0]}: GET /v2/ answered {resp.status_code} (not a registry API)")
                continue
            self._base = base
            if resp.status_code == 401:
                self._challenge = parse_challenge(resp.headers.get("www-authenticate"))
            if len(_ENDPOINTS) >= MAX_ENDPOINTS:
                _ENDPOINTS.clear()
            _ENDPOINTS[self._endpoint_key] = (base, self._challenge)
            return base
        raise EngineError(f"cannot reach registry {self.name}: {'; '.join(failures)}", 502)

    async def _send_retrying(self, method: str, url: str, headers: dict[str, str], what: str) -> httpx.Response:
        """One request with retries for 429/503/5xx and dropped connections; the response is streamed."""
        s = self.settings
        busy = errors = 0
        while True:
            client = self._client()
            try:
                request = client.build_request(method, url, headers=headers)
                resp = await client.send(request, stream=True)
            except httpx.ConnectTimeout as exc:  # no connection, or no TLS handshake: the next scheme may work
                raise _Unreachable(f"no connection within {s.connect_timeout:g} s") from exc
            except httpx.ReadTimeout as exc:
                raise EngineError(f"registry {self.name} stalled: no answer within {s.read_timeout:g} s "
                                  f"to {what}", 504) from exc
            except (httpx.ConnectError, httpx.UnsupportedProtocol) as exc:
                raise _Unreachable(_describe(exc)) from exc
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if errors >= s.error_retries:
                    raise EngineError(f"registry {self.name} dropped the connection during {what}: "
                                      f"{_describe(exc)}", 502) from exc
                errors += 1
                await self._sleep(s.backoff * 2 ** errors, what)
                continue
            except httpx.TimeoutException as exc:  # write or pool: the registry stopped taking our request
                raise EngineError(f"registry {self.name} stalled during {what}: {type(exc).__name__}", 504) from exc
            except httpx.HTTPError as exc:  # too many redirects, a malformed redirect, ...
                raise EngineError(f"registry {self.name}: {what} failed: {_describe(exc)}", 502) from exc
            status = resp.status_code
            if status in (429, 503) and busy < s.busy_retries:
                busy += 1
                wait = _retry_after(resp.headers.get("retry-after"))
                await resp.aclose()
                await self._sleep(min(wait if wait is not None else s.backoff * 2 ** busy, s.max_retry_wait), what)
                continue
            if status >= 500 and status not in (501, 503) and errors < s.error_retries:
                errors += 1
                await resp.aclose()
                await self._sleep(s.backoff * 2 ** errors, what)
                continue
            return resp

    async def _sleep(self, seconds: float, what: str) -> None:
        if seconds >= self.deadline.left():
            raise EngineError(f"registry {self.name} asked to wait {seconds:g} s before {what}, past the "
                              f"import's {self.deadline.seconds:g} s timeout", 504)
        await asyncio.sleep(seconds)

    # -- auth ---------------------------------------------------------------------------------------

    async def _auth_headers(self) -> dict[str, str]:
        challenge = self._challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            if self._username is None:
                return {}
            return {"Authorization": basic_header(self._username, self._password or "")}
        token = self._tokens.get(self.scope)
        if token is None:
            async with self._setup:
                token = self._tokens.get(self.scope) or await self._fetch_token(challenge)
        return {"Authorization": f"Bearer {token}"}

    async def _fetch_token(self, challenge: Challenge) -> str:
        realm = challenge.realm
        realm_url = httpx.URL(realm) if realm else None
        if realm_url is None or realm_url.scheme not in ("http", "https") or not realm_url.host:
            raise EngineError(f"registry {self.name} asked for a token from an invalid realm {realm!r}", 502)
        if realm_url.scheme == "http" and not (self._insecure or is_loopback_host(realm_url.host)):
            raise EngineError(f"registry {self.name} asked for a token over plain HTTP from {realm_url.host}: "
                              "refused (credentials would travel in clear); mark the registry insecure to allow", 502)
        params = {"scope": challenge.params.get("scope") or self.scope}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        headers = {}
        if self._username is not None:
            headers["Authorization"] = basic_header(self._username, self._password or "")
        url = str(realm_url.copy_merge_params(params))
        what = f"the token request to {realm_url.host}"
        try:
            resp = await self._send_retrying("GET", url, headers, what)
        except _Unreachable as exc:
            raise EngineError(f"cannot reach the token server of registry {self.name} ({realm_url.host}): "
                              f"{exc}", 502) from exc
        try:
            if resp.status_code in (401, 403):
                raise self._auth_failed(resp.status_code, f"the token server {realm_url.host} refused "
                                        + (f"the credentials of user {self._username!r}" if self._username
                                           else "anonymous access"))
            if resp.status_code != 200:
                raise EngineError(f"the token server of registry {self.name} ({realm_url.host}) answered "
                                  f"{resp.status_code}", 502)
            body = await self.read_capped(resp, TOKEN_CAP, what)
        finally:
            await resp.aclose()
        parsed = token_from_response(_json_or_none(body))
        if parsed is None:
            raise EngineError(f"the token server of registry {self.name} ({realm_url.host}) sent no token", 502)
        token, seconds = parsed
        self._tokens.put(self.scope, token, seconds)
        return token

    def _auth_failed(self, status: int, detail: str) -> EngineError:
        if status == 403:
            who = f"user {self._username!r}" if self._username else "anonymous access"
            return EngineError(f"authentication failed for {self.name}: {who} may not pull {self.ref.repository}"
                               f" ({detail})", 403)
        if self._username is None:
            return EngineError(f"authentication required for {self.name}: {detail} (the repository "
                               f"{self.ref.repository} needs registry credentials, or does not exist)", 401)
        return EngineError(f"authentication failed for {self.name}: {detail}", 401)

    # -- requests -----------------------------------------------------------------------------------

    async def get(self, path: str, what: str, accept: str | None = None) -> httpx.Response:
        """GET /v2/<path> with auth (a 401 is answered once: new challenge, new token), streamed.

        The caller reads the body and closes the response; statuses other than 401/403 are its to judge.
        """
        async with self._setup:
            base = await self._base_url()
        url = f"{base}/v2/{path}"
        for attempt in range(2):
            headers = await self._auth_headers()
            if accept:
                headers["Accept"] = accept
            try:
                resp = await self._send_retrying("GET", url, headers, what)
            except _Unreachable as exc:
                if _ENDPOINTS.pop(self._endpoint_key, None) is None:
                    raise EngineError(f"cannot reach registry {self.name}: {exc}", 502) from exc
                self._base = None  # a remembered endpoint (the registry restarted with TLS, say): probe again
                return await self.get(path, what, accept)
            if resp.status_code not in (401, 403):
                return resp
            challenge = parse_challenge(resp.headers.get("www-authenticate"))
            detail = await self.error_detail(resp)
            await resp.aclose()
            retry = (resp.status_code == 401 and attempt == 0 and challenge is not None
                     and (challenge.scheme == "bearer" or self._username is not None))
            if not retry:
                if resp.status_code == 403:
                    raise self._auth_failed(403, detail or "403 Forbidden")
                sent = "the registry refused " + (f"the credentials of user {self._username!r}" if self._username
                                                  else "anonymous access")
                raise self._auth_failed(resp.status_code, sent + (f" ({detail})" if detail else ""))
            self._challenge = challenge
            self._tokens.drop(self.scope)
        raise AssertionError("unreachable")

    async def read_capped(self, resp: httpx.Response, cap: int, what: str) -> bytes:
        length = resp.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > cap:
            raise EngineError(f"registry {self.name} sent {what} of {int(length)} bytes, over the "
                              f"{cap >> 10} KiB limit", 502)
        body = bytearray()
        try:
            async for chunk in resp.aiter_raw():
                body += chunk
                if len(body) > cap:
                    raise EngineError(f"registry {self.name} sent {what} over the {cap >> 10} KiB limit", 502)
        except httpx.ReadTimeout as exc:
            raise EngineError(f"registry {self.name} stalled: no data for {self.settings.read_timeout:g} s "
                              f"while sending {what}", 504) from exc
        except httpx.TransportError as exc:
            raise EngineError(f"registry {self.name} broke off {what}: {_describe(exc)}", 502) from exc
        return bytes(body)

    async def error_detail(self, resp: httpx.Response) -> str:
        """`CODE: message` of the registry's error JSON ({"errors": [{"code", "message"}]}), or ""."""
        try:
            body = await self.read_capped(resp, ERROR_CAP, "an error body")
        except EngineError:
            return ""
        return "; ".join(f"{code}: {message}" if message else code for code, message in error_codes(body))


@functools.cache
def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    """One verifying context per CA file for the process: loading the system's CA store takes 50-70 ms
    here (the re-import of an unchanged image must take less than that in all), and contexts are shareable."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()


class _Unreachable(Exception):
    """The connection itself failed (refused, DNS, TLS): the next scheme may work."""


def error_codes(body: bytes) -> list[tuple[str, str]]:
    doc = _json_or_none(body)
    errors = doc.get("errors") if isinstance(doc, dict) else None
    out = []
    for item in errors if isinstance(errors, list) else []:
        if isinstance(item, dict) and isinstance(item.get("code"), str):
            message = item.get("message")
            out.append((item["code"][:64], message[:200] if isinstance(message, str) else ""))
    return out[:5]


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: an integer, or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _describe(exc: BaseException) -> str:
    """The innermost useful text of a transport error (httpx wraps ssl and socket errors). A socket error's
    own words ("connection refused") win over httpx's "All connection attempts failed", which hides them."""
    text = str(exc)
    cause: BaseException | None = exc
    while cause is not None:
        # (a name lookup's gaierror has negative EAI_ codes, which os.strerror does not know: its text is kept)
        if isinstance(cause, OSError) and not isinstance(cause, ssl.SSLError | socket.gaierror) \
                and isinstance(cause.errno, int) and cause.errno > 0:
            return os.strerror(cause.errno).lower()
        text = text or str(cause)
        cause = cause.__cause__ or cause.__context__
    return text or type(exc).__name__

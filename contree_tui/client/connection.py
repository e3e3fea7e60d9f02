"""Which Contree to talk to, and a verified connection to it through the official contree-client.

Target resolution, first match wins:

1. `--profile NAME` (the `profile` argument), then `CONTREE_PROFILE`: a `[profile:NAME]` section of
   `$CONTREE_HOME/auth.ini` as contree-cli writes it (`token`, `url`, `type = iam|jwt`, `project`; `cli.ini`
   beside it supplies defaults). The name `embedded` always means the local engine.
2. `CONTREE_TOKEN` (or `NEBIUS_API_KEY`) with `CONTREE_URL`, and `CONTREE_PROJECT` (or `NEBIUS_AI_PROJECT`):
   credentials straight from the environment, as contree-client's `from_env` reads them.
3. Otherwise the embedded engine, started on demand (contree_tui.client.embedded).

The `[DEFAULT] profile =` that contree-cli records is read (`list_profiles` reports it as the active one)
but does not pick the target on its own: contree-tui's default is the local engine, and reaching a hosted
Contree, which spends someone's quota, is something the user asks for by name.

Every failure is a `ConnectionProblem` whose message is meant for the user as it stands.
"""

from __future__ import annotations

import asyncio
import configparser
import hashlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
from contree_client.exceptions import APIConnectionError, APIStatusError, AuthenticationError
from contree_client.httpx import ContreeAsyncClient
from contree_client.profiles import AUTH_TYPE_IAM, AUTH_TYPE_JWT, DEFAULT_IAM_URL, Profile, contree_home, load_profiles

from contree_tui.client.embedded import EngineStartError, ensure_engine
from contree_tui.client.observable import Observable
from contree_tui.client.reconnect import (
    GATEWAY_STATUSES,
    Backoff,
    ConnectionState,
    GaveUp,
    describe_failure,
    with_reconnect,
)
from contree_tui.paths import engine_root

T = TypeVar("T")

EMBEDDED = "embedded"
EMBEDDED_URL = "http://engine"  # the host is never resolved: every request goes down the Unix socket
EMBEDDED_TOKEN = "local"  # the socket is guarded by its file mode; contree-client still wants a token
IDENTITY = "contree-tui/0.1"

# A run streams for as long as it runs, so reads are unbounded per request (contree-client applies its own
# deadlines); an unreachable host must fail fast instead, so that the backoff takes over.
HOSTED_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
EMBEDDED_TIMEOUT = httpx.Timeout(300.0, connect=3.0)
TransportWrapper = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]


class ConnectionProblem(Exception):
    """A failure to reach Contree; `str()` is a complete sentence for the user, with no traceback needed."""


class ProfileNotFound(ConnectionProblem):
    pass


class ProfileInvalid(ConnectionProblem):
    """The profile exists but cannot work: no token, no URL, an IAM profile without a project…"""


class TokenRejected(ConnectionProblem):
    pass


class EngineUnavailable(ConnectionProblem):
    pass


class ServerUnreachable(ConnectionProblem):
    pass


@dataclass(frozen=True)
class Target:
    """A resolved place to connect to. `source` says which rule picked it (for messages and `--verbose`)."""

    name: str
    url: str
    token: str = field(repr=False)
    source: str
    auth_type: str = AUTH_TYPE_JWT
    project: str | None = None
    state_dir: Path | None = None  # embedded only

    @property
    def embedded(self) -> bool:
        return self.state_dir is not None

    def describe(self) -> str:
        if self.embedded:
            return f"the embedded engine ({self.state_dir})"
        project = f", project {self.project}" if self.project else ""
        return f"profile {self.name!r} ({self.url}{project})"


def embedded_target(state_dir: str | Path | None = None, source: str = "default") -> Target:
    return Target(name=EMBEDDED, url=EMBEDDED_URL, token=EMBEDDED_TOKEN, source=source,
                  state_dir=engine_root(state_dir))


def auth_file_path(auth_file: str | Path | None = None) -> Path:
    return Path(auth_file).expanduser() if auth_file is not None else contree_home() / "auth.ini"


def list_profiles(auth_file: str | Path | None = None) -> tuple[dict[str, Profile], str]:
    """The profiles in auth.ini (merged over cli.ini) and the name contree-cli records as active."""
    path = auth_file_path(auth_file)
    try:
        return load_profiles(path)
    except configparser.Error as exc:
        raise ProfileInvalid(f"cannot read {path}: {exc}".replace("\n", " ")) from exc


def resolve_target(profile: str | None = None, *, auth_file: str | Path | None = None,
                   state_dir: str | Path | None = None) -> Target:
    """The target per the module's rules; raises ProfileNotFound / ProfileInvalid."""
    for name, source in ((profile, "--profile"), (os.environ.get("CONTREE_PROFILE"), "CONTREE_PROFILE")):
        if name:
            if name == EMBEDDED:
                return embedded_target(state_dir, source)
            return _profile_target(name, source, auth_file)
    from_env = _environment_target()
    if from_env is not None:
        return from_env
    return embedded_target(state_dir)


def _profile_target(name: str, source: str, auth_file: str | Path | None) -> Target:
    path = auth_file_path(auth_file)
    profiles, _active = list_profiles(path)
    if name not in profiles:
        if not path.exists():
            raise ProfileNotFound(f"no profile {name!r} ({source}): {path} does not exist "
                                  f"(`contree auth` creates it; `{EMBEDDED}` is the local engine)")
        known = ", ".join(sorted(profiles)) or "none"
        raise ProfileNotFound(f"no profile {name!r} ({source}) in {path}; profiles there: {known} "
                              f"(`{EMBEDDED}` is the local engine)")
    found = profiles[name]
    where = f"profile {name!r} in {path}"
    if found.auth_type not in (AUTH_TYPE_IAM, AUTH_TYPE_JWT):
        raise ProfileInvalid(f"{where}: type = {found.auth_type!r}; expected iam or jwt")
    if not (found.token or "").strip():
        raise ProfileInvalid(f"{where} has no token")
    if not found.url:
        raise ProfileInvalid(f"{where} has no url")
    if found.auth_type == AUTH_TYPE_IAM and not found.project:
        raise ProfileInvalid(f"{where} is an IAM profile without a project: IAM requests need one "
                             f"(add `project = <project id>` to [profile:{name}])")
    _check_url(found.url, where)
    return Target(name=name, url=found.url, token=str(found.token).strip(), source=source,
                  auth_type=found.auth_type, project=found.project if found.auth_type == AUTH_TYPE_IAM else None)


def _environment_target() -> Target | None:
    token = os.environ.get("CONTREE_TOKEN") or os.environ.get("NEBIUS_API_KEY")
    url = os.environ.get("CONTREE_URL")
    project = os.environ.get("CONTREE_PROJECT") or os.environ.get("NEBIUS_AI_PROJECT")
    if os.environ.get("CONTREE_TOKEN") and not url:
        raise ProfileInvalid("CONTREE_TOKEN is set but CONTREE_URL is not; set both (or pick a profile)")
    if url and not token:
        raise ProfileInvalid("CONTREE_URL is set but CONTREE_TOKEN is not; set both (or pick a profile)")
    if not token or not url:
        return None
    url = url.rstrip("/")
    _check_url(url, "CONTREE_URL")
    if not project and url == DEFAULT_IAM_URL:
        raise ProfileInvalid(f"CONTREE_URL is the IAM endpoint {url}: IAM requests need CONTREE_PROJECT too")
    return Target(name="environment", url=url, token=token.strip(), source="environment",
                  auth_type=AUTH_TYPE_IAM if project else AUTH_TYPE_JWT, project=project or None)


def _check_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProfileInvalid(f"{where}: url {url!r} is not an http(s) URL")


class Connection:
    """An open, verified link to one target: `client` is the official async client; `call` retries
    transient failures while `status` tells a UI what is happening."""

    def __init__(self, target: Target, client: ContreeAsyncClient, http: httpx.AsyncClient, *,
                 backoff: Backoff, socket: Path | None = None,
                 status: Observable[ConnectionState] | None = None) -> None:
        self.target = target
        self.client = client
        self.socket = socket
        self.backoff = backoff
        self.status = status if status is not None else Observable(ConnectionState.connecting())
        self.identity = ""  # whoami token_uuid: names the namespace for caches (an engine's state, a token)
        self._http = http
        self._probe: asyncio.Future[str | None] | None = None  # the link check in flight (see `probe`)
        self._answered_at = float("-inf")  # when the server last answered a probe

    @property
    def cache_key(self) -> str:
        """A file-name-safe key for per-target caches: a wiped engine or another token gets a fresh one,
        so no cache ever hands out file uuids the server does not have."""
        basis = f"{self.target.url}\n{self.target.project or ''}\n{self.target.state_dir or ''}\n{self.identity}"
        slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.target.name)[:40]
        return f"{slug}-{hashlib.sha256(basis.encode()).hexdigest()[:16]}"

    async def call(self, fn: Callable[[], Awaitable[T]], *, idempotent: bool = True) -> T:
        """`await fn()` with reconnects; a 401 becomes TokenRejected, exhausted retries ServerUnreachable."""
        try:
            return await with_reconnect(fn, self.status, self.backoff, idempotent=idempotent,
                                        before_retry=self._revive if self.target.embedded else None)
        except GaveUp as exc:
            raise ServerUnreachable(f"cannot reach {self.target.describe()}: {exc.reason} "
                                    f"(gave up after {exc.attempts} attempts)") from exc
        except AuthenticationError as exc:
            raise TokenRejected(_rejected(self.target, exc)) from exc

    async def probe(self, *, fresh_for: float = 0.0, timeout: float = 5.0) -> str | None:
        """Does the server answer at all? None if it does (any HTTP answer, an error status included), else
        the reason it does not. One request, no retries. Concurrent callers share the request in flight, and
        an answer younger than `fresh_for` seconds is reused: many quiet followers cost one whoami."""
        if self._probe is None:
            if time.monotonic() - self._answered_at < fresh_for:
                return None
            self._probe = asyncio.ensure_future(self._probe_once(timeout))
            self._probe.add_done_callback(self._probe_done)
        return await asyncio.shield(self._probe)

    def _probe_done(self, _task: asyncio.Future[str | None]) -> None:
        self._probe = None

    async def _probe_once(self, timeout: float) -> str | None:
        try:
            await asyncio.wait_for(self.client.whoami(), timeout)
        except APIStatusError as exc:
            if exc.status not in GATEWAY_STATUSES:
                self._answered_at = time.monotonic()
                return None
            return describe_failure(exc)
        except APIConnectionError as exc:
            return describe_failure(exc)
        except TimeoutError:
            return f"no answer within {timeout:g} s"
        self._answered_at = time.monotonic()
        return None

    async def revive(self) -> None:
        """Before a retry made outside `call` (a broken event stream): the embedded target's engine is started
        again if it went away (raises EngineUnavailable if it cannot be); nothing to do for a hosted one."""
        if self.target.embedded:
            await self._revive()

    async def _revive(self) -> None:
        """Before retrying the embedded target: start its engine again if it went away."""
        try:
            await ensure_engine(self.target.state_dir)
        except EngineStartError as exc:
            self.status.set(ConnectionState.failed(str(exc).splitlines()[0]))
            raise EngineUnavailable(str(exc)) from exc

    async def aclose(self) -> None:
        await self.client.close()
        await self._http.aclose()

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _rejected(target: Target, exc: APIStatusError) -> str:
    hint = " (an IAM token also needs the right project)" if target.auth_type == AUTH_TYPE_IAM else ""
    return f"{target.describe()}: the server rejected the token (HTTP {exc.status}: {exc.error}){hint}"


async def connect(target: Target, *, backoff: Backoff | None = None, engine_timeout: float = 20.0,
                  status: Observable[ConnectionState] | None = None,
                  wrap_transport: TransportWrapper | None = None) -> Connection:
    """Open and verify (whoami) a connection; raises a ConnectionProblem subclass with a clear message.

    Pass `status` to watch it happen (connecting, reconnecting while the server does not answer, failed);
    the connection keeps using it afterwards. `wrap_transport` wraps the httpx transport every request goes
    through (contree-client takes the httpx client as is): the benchmarks add latency with it, the tests
    count requests in flight or fail one."""
    backoff = backoff or Backoff()
    status = status if status is not None else Observable(ConnectionState.connecting())
    socket: Path | None = None
    if target.embedded:
        try:
            socket = await ensure_engine(target.state_dir, timeout=engine_timeout)
        except EngineStartError as exc:
            status.set(ConnectionState.failed(str(exc).splitlines()[0]))
            raise EngineUnavailable(str(exc)) from exc
        transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport(uds=str(socket))
        http = httpx.AsyncClient(transport=wrap_transport(transport) if wrap_transport else transport,
                                 timeout=EMBEDDED_TIMEOUT)
    elif wrap_transport is not None:
        http = httpx.AsyncClient(transport=wrap_transport(httpx.AsyncHTTPTransport()), timeout=HOSTED_TIMEOUT)
    else:
        http = httpx.AsyncClient(timeout=HOSTED_TIMEOUT)
    client = ContreeAsyncClient(target.token, base_url=target.url, project=target.project, identity=IDENTITY,
                                httpx_client=http)
    connection = Connection(target, client, http, backoff=backoff, socket=socket, status=status)
    try:
        me = await connection.call(client.whoami)
    except APIStatusError as exc:
        await connection.aclose()
        if exc.status == 403:
            raise TokenRejected(_rejected(target, exc).replace("rejected", "refused")) from exc
        raise ConnectionProblem(f"{target.describe()}: the server answered HTTP {exc.status} to whoami "
                                f"({exc.error}); is the url right?") from exc
    except BaseException:
        await connection.aclose()
        raise
    connection.identity = me.token_uuid or ""
    return connection


async def open_connection(profile: str | None = None, *, auth_file: str | Path | None = None,
                          state_dir: str | Path | None = None, backoff: Backoff | None = None,
                          status: Observable[ConnectionState] | None = None) -> Connection:
    """resolve_target + connect: what the CLI and the TUI call."""
    target = resolve_target(profile, auth_file=auth_file, state_dir=state_dir)
    return await connect(target, backoff=backoff, status=status)

"""Real registries for the import tests: Debian's docker-registry on 127.0.0.1, plain or behind htpasswd or
the token flow (with a token server that signs JWTs the registry trusts), and a fault-injecting proxy.

    reg = Registry.start(tmp)                       # anonymous, plain HTTP on a free port
    reg.push(layout, "t1", "team/app")              # skopeo copy oci:LAYOUT:t1 docker://HOST/team/app:t1
    reg.blob_gets()                                 # blob GETs the registry served (its access log)
    reg.stop()

The registry logs each request to its stderr (access log); we keep it in a file to count blob downloads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.images.oci_build import skopeo_copy

REGISTRY_BIN = "/usr/bin/docker-registry"
SERVICE = "contree-test-registry"
_ACCESS = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/[^ "?]*)[^ "]* HTTP/[0-9.]+" (\d{3}) (\d+)')
ISSUER = "contree-test-issuer"


def have_registry() -> bool:
    return Path(REGISTRY_BIN).exists() and shutil.which("skopeo") is not None


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def bcrypt_hash(password: str) -> str:
    """htpasswd lines for docker-registry, which accepts only bcrypt; cost 4, the minimum, keeps tests fast."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated (gone in 3.13) but the only bcrypt on this machine without a new package

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


@dataclass
class Registry:
    root: Path
    host: str  # "127.0.0.1:PORT" (or "[::1]:PORT")
    proc: subprocess.Popen[bytes]
    log_path: Path
    creds: tuple[str, str] | None = None  # for pushes to a protected registry
    tls: bool = False
    token_server: TokenServer | None = None

    @classmethod
    def start(cls, root: Path, *, auth: dict[str, Any] | None = None, creds: tuple[str, str] | None = None,
              bind: str = "127.0.0.1", tls: tuple[Path, Path] | None = None,
              token_server: TokenServer | None = None) -> Registry:
        root.mkdir(parents=True, exist_ok=True)
        port = free_port(bind)
        host = f"[{bind}]:{port}" if ":" in bind else f"{bind}:{port}"
        http: dict[str, Any] = {"addr": host, "secret": uuid.uuid4().hex}
        if tls:
            http["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(root / "storage")}, "delete": {"enabled": True},
                        "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": http,
        }
        if auth:
            config["auth"] = auth
        config_path = root / "config.yml"
        config_path.write_text(json.dumps(config))  # YAML is a superset of JSON
        log_path = root / "registry.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config_path)], stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL)
        reg = cls(root, host, proc, log_path, creds, tls is not None, token_server)
        reg._wait_ready()
        return reg

    def _wait_ready(self) -> None:
        scheme = "https" if self.tls else "http"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_path.read_text()[-2000:]}")
            try:
                httpx.get(f"{scheme}://{self.host}/v2/", timeout=1, verify=False)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on {self.host}: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.token_server is not None:
            self.token_server.stop()

    def url(self, repo: str, tag: str = "latest") -> str:
        return f"docker://{self.host}/{repo}:{tag}"

    def push(self, layout: Path, tag: str, repo: str, *extra: str, dest_tag: str | None = None) -> None:
        args = list(extra)  # skopeo_copy turns TLS verification off: a TLS test registry is self-signed
        if self.creds:
            args.append(f"--dest-creds={self.creds[0]}:{self.creds[1]}")
        skopeo_copy(f"oci:{layout}:{tag}", f"docker://{self.host}/{repo}:{dest_tag or tag}", *args)

    def blob_path(self, digest: str) -> Path:
        hexa = digest.split(":", 1)[1]
        return self.root / "storage" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexa[:2] / hexa / "data"

    def requests(self) -> list[Access]:
        """The access log, oldest first (the registry writes one line per request)."""
        text = self.log_path.read_text(errors="replace")
        return [Access(m, p, int(st), int(n)) for m, p, st, n in _ACCESS.findall(text)]

    def blob_gets(self, repo: str | None = None) -> list[tuple[str, int]]:
        """(digest, bytes sent) of each blob GET answered 200 (a config or a layer), for `repo` or all."""
        out = []
        for entry in self.requests():
            m = re.fullmatch(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})", entry.path)
            if entry.method == "GET" and entry.status == 200 and m and (repo is None or m.group(1) == repo):
                out.append((m.group(2), entry.size))
        return out


@dataclass(frozen=True)
class Access:
    method: str
    path: str
    status: int
    size: int


def make_tls_cert(root: Path, hosts: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")) -> tuple[Path, Path]:
    """A self-signed server certificate for `hosts` (cert.pem doubles as its CA file), and its key."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    root.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "contree test registry")])
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = root / "cert.pem", root / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


# -- token server ---------------------------------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenServer:
    """The Docker token protocol's auth server: GET /token?service=..&scope=.. with optional Basic auth.

    Right credentials get a JWT granting the actions asked for; anonymous callers get a JWT granting
    nothing (as Docker Hub does for a private repository); wrong credentials get 401.
    """

    users: dict[str, str]
    key_path: Path
    cert_path: Path
    port: int = 0
    issued: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @classmethod
    def start(cls, root: Path, users: dict[str, str]) -> TokenServer:
        root.mkdir(parents=True, exist_ok=True)
        server = cls(users, root / "token.key", root / "token.pem")
        server._make_key()
        handler = type("Handler", (_TokenHandler,), {"owner": server})
        server._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.port = server._server.server_address[1]
        threading.Thread(target=server._server.serve_forever, daemon=True).start()
        return server

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def registry_auth(self) -> dict[str, Any]:
        return {"token": {"realm": self.realm, "service": SERVICE, "issuer": ISSUER,
                          "rootcertbundle": str(self.cert_path)}}

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _make_key(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        self._key = key
        self._cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                    serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))

    def make_token(self, subject: str, access: list[dict[str, Any]]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._cert_der).decode("ascii")]}
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


class _TokenHandler(BaseHTTPRequestHandler):
    owner: TokenServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parsed = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(parsed.query)
        subject = ""
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if self.owner.users.get(user) != password:
                self._answer(401, {"details": "wrong username or password"})
                return
            subject = user
        access = []
        if subject:
            for scope in query.get("scope", []):
                kind, _, rest = scope.partition(":")
                name, _, actions = rest.rpartition(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        self.owner.issued.append({"subject": subject, "scopes": query.get("scope", []),
                                  "service": query.get("service", [""])[0]})
        self._answer(200, {"token": self.owner.make_token(subject, access), "expires_in": 300})

    def _answer(self, status: int, doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# -- fault proxy ----------------------------------------------------------------------------------------

@dataclass
class FaultProxy:
    """A plain-HTTP proxy on 127.0.0.1 in front of a registry that misbehaves on demand, one connection per
    request (it forces `Connection: close`):

      busy: {"/blobs/": 2} → the next 2 requests whose path contains "/blobs/" answer 429, Retry-After: 1
      stall_all → accept connections and never answer
      stall_blob_after: N → blob responses stop after N body bytes and stay open
      redirect_blobs → blob GETs answer 307 to the registry itself (as registries redirect to storage)
      canned: {"/manifests/": b"HTTP/1.1 200 OK\r\n..."} → that response, as is, for matching paths
    """

    upstream: str  # "127.0.0.1:PORT"
    busy: dict[str, int] = field(default_factory=dict)
    retry_after: str = "1"
    busy_status: int = 429
    stall_all: bool = False
    stall_blob_after: int | None = None
    redirect_blobs: bool = False
    canned: dict[str, bytes] = field(default_factory=dict)  # path substring → a whole raw HTTP response
    seen: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.base_events.Server | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, repo: str, tag: str = "latest") -> str:
        return f"docker://{self.host}/{repo}:{tag}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(1)
            if first == b"\x16":  # a TLS ClientHello: answer as Go's plain-HTTP server does, at once
                writer.write(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent a TLS handshake to an HTTP server.\n")
                await writer.drain()
                writer.close()
                return
            head = first + await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        try:
            await self._handle(head, reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        self.seen.append(f"{method} {path}")
        if self.stall_all:
            await asyncio.sleep(3600)
        for pattern, left in self.busy.items():
            if pattern in path and left > 0:
                self.busy[pattern] = left - 1
                writer.write(f"HTTP/1.1 {self.busy_status} Busy\r\nRetry-After: {self.retry_after}\r\n"
                             "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
                await writer.drain()
                return
        for pattern, response in self.canned.items():
            if pattern in path:
                writer.write(response)
                await writer.drain()
                return
        is_blob = "/blobs/" in path and method == "GET"
        if is_blob and self.redirect_blobs and "redirected=1" not in path:
            writer.write(f"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{self.host}{path}?redirected=1\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            return
        headers = [h for h in header_lines if h and not h.lower().startswith(("connection:", "host:"))]
        up_host, _, up_port = self.upstream.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(up_host.strip("[]"), int(up_port))
        upstream_path = path.replace("?redirected=1", "")
        up_writer.write((f"{method} {upstream_path} HTTP/1.1\r\nHost: {self.upstream}\r\nConnection: close\r\n"
                         + "".join(h + "\r\n" for h in headers) + "\r\n").encode("latin-1"))
        await up_writer.drain()
        body_pump = asyncio.create_task(self._pump(reader, up_writer))  # a request body (skopeo's PUT/PATCH)
        try:
            await self._relay(up_reader, writer, is_blob)
        finally:
            body_pump.cancel()
            up_writer.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()

    async def _relay(self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, is_blob: bool) -> None:
        response_head = await up_reader.readuntil(b"\r\n\r\n")
        writer.write(response_head)
        sent = 0
        while True:
            chunk = await up_reader.read(65536)
            if not chunk:
                break
            if is_blob and self.stall_blob_after is not None and sent + len(chunk) > self.stall_blob_after:
                writer.write(chunk[:self.stall_blob_after - sent])
                await writer.drain()
                await asyncio.sleep(3600)
            writer.write(chunk)
            sent += len(chunk)
            await writer.drain()


@contextlib.contextmanager
def running(reg: Registry) -> Iterator[Registry]:
    try:
        yield reg
    finally:
        reg.stop()

"""Real registries for the import tests: Debian's docker-registry on 127.0.0.1 (or ::1), plain, over TLS,
behind htpasswd or the token flow (token_server.py signs the JWTs it trusts); fault_proxy.py misbehaves
in front of one.

    reg = Registry.start(tmp)                       # anonymous, plain HTTP on a free port
    reg.push(layout, "t1", "team/app")              # skopeo copy oci:LAYOUT:t1 docker://HOST/team/app:t1
    reg.blob_gets()                                 # blob GETs the registry served (its access log)
    reg.stop()

The registry logs each request to its stderr (access log); we keep it in a file to count blob downloads.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import socket
import subprocess
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.images.fault_proxy import FaultProxy
from tests.images.oci_build import skopeo_copy
from tests.images.token_server import TokenServer

__all__ = ["FaultProxy", "Registry", "TokenServer", "bcrypt_hash", "free_port", "have_registry", "make_tls_cert"]

REGISTRY_BIN = "/usr/bin/docker-registry"
_ACCESS = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/[^ "?]*)[^ "]* HTTP/[0-9.]+" (\d{3}) (\d+)')


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

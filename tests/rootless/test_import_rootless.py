"""Imports into a normal user's engine (#14), everything as root's engine does it: `contree-tui import` from a
docker-registry on 127.0.0.1 and from offline archives (`docker save` format, an OCI layout) in the user's
files; the image's whiteouts, opaque dirs and owners hold in its sandbox; a file only host root may read stays
unread. The official clients (contree-client, contree-sdk) reach the user's engine through the profile that
`engine serve --write-profile` writes.

The registry, skopeo and the official clients run as root here (they are the network's side: the registry a
server, the clients reading the user's auth.ini as the user's own programs would); the engine and contree-tui
run as the user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from contree_client import ImageImportRegistry, Profile, load_profiles
from contree_client.httpx import ContreeClient

from tests.api.helpers import text
from tests.images.busybox_layouts import BASE_FILES, TOP, busybox_layer
from tests.images.oci_build import File, skopeo_copy, write_layout
from tests.images.registry import Registry, free_port, have_registry
from tests.rootless.conftest import NormalUser
from tests.rootless.user_kit import usable_tun

pytestmark = pytest.mark.skipif(not have_registry(), reason="docker-registry and skopeo are not installed")

# The layers (a deleted file, a changed file, an opaque dir over a base), and files of other owners:
# the user's engine stores them under its subordinate ids and its sandbox shows the image's own
OWNED = {"etc/owned": File(b"app's\n", 0o640, 1000, 1001), "etc/shadowish": File(b"secret\n", 0o600, 0, 42)}
CHECK = ("cat /etc/changed /etc/kept; ls /opt; test -e /etc/gone || echo gone; "
         "stat -c '%u:%g %a' /etc/owned /etc/shadowish /bin/busybox; echo $GREETING")
CLI_DEADLINE = 120  # contree-cli polls every 5 s: an import and a run fit well in this
EXPECTED = "new\nkept\nnew\ngone\n1000:1001 640\n0:42 600\n0:0 755\nfrom-rootless\n"


@dataclass(frozen=True)
class Images:
    registry: Registry
    layout: Path  # an OCI layout (tag v1), the user's
    archive: Path  # the same image as `docker save` writes it (docker-archive), the user's
    root_only: Path  # the same archive, mode 0600, host root's
    layers: tuple[str, ...]  # the image's layer blob digests


@pytest.fixture(scope="module")
def images(normal_user: NormalUser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    root = tmp_path_factory.mktemp("rootless-registry")
    reg = Registry.start(root / "registry")
    base = busybox_layer(**BASE_FILES, **OWNED)
    built = write_layout(root / "app", [base, TOP], tag="v1", env=["PATH=/bin", "GREETING=from-rootless"])
    reg.push(root / "app", "v1", "rl/app")
    mine = normal_user.home / "import-sources"
    shutil.rmtree(mine, ignore_errors=True)
    mine.mkdir()
    shutil.copytree(root / "app", mine / "layout")
    skopeo_copy(f"oci:{root / 'app'}:v1", f"docker-archive:{mine / 'app.tar'}:rl/app:v1")
    subprocess.run(["chown", "-R", f"{normal_user.uid}:{normal_user.gid}", str(mine)], check=True)
    root_only = root / "root-only.tar"
    shutil.copy(mine / "app.tar", root_only)
    os.chmod(root_only, 0o600)
    os.chmod(root, 0o755)  # the user may reach the file; only its mode keeps it out
    try:
        yield Images(reg, mine / "layout", mine / "app.tar", root_only, tuple(built.layer_digests))
    finally:
        reg.stop()
        shutil.rmtree(mine, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def debian_tun() -> Iterator[None]:
    """Runs are networked by default, through /dev/net/tun: as a Debian machine has it (0666), not as this VM."""
    with usable_tun():
        yield


@pytest.fixture
def engine_env(normal_user: NormalUser) -> Iterator[dict[str, str]]:
    """The user's engine for one test (its own state dir, started on demand), stopped and removed after."""
    state = normal_user.home / f"import-engine-{time.monotonic_ns()}"
    env = {"CONTREE_TUI_ENGINE_DIR": str(state), "CONTREE_HOME": str(normal_user.home / "contree-home")}
    try:
        yield env
    finally:
        normal_user.cli("engine", "stop", env=env, timeout=60)
        shutil.rmtree(state, ignore_errors=True)  # as root: the layers' subordinate owners and mode-0 work dirs


def run_in(normal_user: NormalUser, env: dict[str, str], image: str, command: str) -> str:
    ran = normal_user.cli("engine", "run", "--image", image, "--disposable", "--", command, env=env, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return ran.stdout


def test_a_registry_image_imports_into_the_users_engine_and_runs(normal_user: NormalUser, images: Images,
                                                                 engine_env: dict[str, str]) -> None:
    done = normal_user.cli("import", images.registry.url("rl/app", "v1"), "--tag", "rl/app:v1", env=engine_env,
                           timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_in(normal_user, engine_env, "rl/app:v1", CHECK) == EXPECTED
    fetched = len(images.registry.blob_gets("rl/app"))
    again = normal_user.cli("import", images.registry.url("rl/app", "v1"), "--tag", "again", env=engine_env,
                            timeout=120)
    assert again.returncode == 0, again.stderr
    refetched = {digest for digest, _ in images.registry.blob_gets("rl/app")[fetched:]}
    assert not refetched & set(images.layers)  # the layers are stored once: the same digest is the image again


def test_offline_archives_import_and_a_file_only_root_reads_stays_unread(normal_user: NormalUser, images: Images,
                                                                        engine_env: dict[str, str]) -> None:
    for ref, tag in ((f"docker-archive:{images.archive}", "saved"), (f"oci:{images.layout}:v1", "layout")):
        done = normal_user.cli("import", ref, "--tag", tag, env=engine_env, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert run_in(normal_user, engine_env, tag, CHECK) == EXPECTED
    refused = normal_user.cli("import", f"docker-archive:{images.root_only}", "--tag", "stolen", env=engine_env,
                              timeout=120)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "ermission denied" in refused.stdout + refused.stderr  # the kernel's word, as the engine reports it


def test_the_official_clients_reach_the_users_engine_through_its_profile(normal_user: NormalUser, images: Images,
                                                                        engine_env: dict[str, str],
                                                                        tmp_path: Path) -> None:
    port = free_port()
    pairs = [f"{k}={v}" for k, v in normal_user.env(engine_env).items()]
    serve = subprocess.Popen(["runuser", "-u", normal_user.name, "--", "env", "-i", *pairs, str(normal_user.python),
                              "-m", "contree_tui", "engine", "serve", "--listen", f"127.0.0.1:{port}",
                              "--write-profile", "local"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             cwd=normal_user.home)
    auth = Path(engine_env["CONTREE_HOME"]) / "auth.ini"
    try:
        profile = wait_for_profile(auth, serve)
        assert profile.url == f"http://127.0.0.1:{port}" and (auth.stat().st_uid, auth.stat().st_mode & 0o777) == (
            normal_user.uid, 0o600)
        with ContreeClient.from_profile("local", config_path=auth, timeout=60) as client:
            op = client.import_image(ImageImportRegistry(url=images.registry.url("rl/app", "v1")), tag="rl/client")
            assert client.wait_operation(op, timeout=120).status.value == "SUCCESS"
            spawned = client.spawn_instance(CHECK, "tag:rl/client", shell=True)
            done = client.wait_operation(str(spawned.uuid), timeout=120)
            assert done.status.value == "SUCCESS", done.error
            assert text(done.metadata.result.stdout) == EXPECTED
        sdk = pytest.importorskip("contree_sdk").ContreeSync(base_url=profile.url, token=profile.token)
        image = sdk.images.oci(f"{images.registry.host}/rl/app:v1", timeout=120)
        assert image.run(shell=CHECK).wait().stdout == EXPECTED
        if shutil.which("contree") is None:
            pytest.skip("contree-cli is not installed (pip install '.[test]')")
        imported = contree_cli(engine_env, tmp_path, "images", "import", f"{images.registry.host}/rl/app:v1")
        uuid = next(row["result_image_uuid"] for row in map(json.loads, imported.splitlines())
                    if row.get("status") == "SUCCESS")
        ran = contree_cli(engine_env, tmp_path, "run", "--use", uuid, "--disposable", "--", "cat", "/etc/changed")
        (row,) = [json.loads(line) for line in ran.splitlines() if line.strip()]
        assert row["status"] == "SUCCESS" and row["metadata"]["result"]["stdout"]["value"] == "new\n", row
    finally:
        serve.terminate()
        serve.wait(30)


def contree_cli(engine_env: dict[str, str], home: Path, *args: str) -> str:
    """contree-cli with the user's `local` profile (its CONTREE_HOME); its JSON output."""
    env = {**os.environ, "CONTREE_HOME": engine_env["CONTREE_HOME"], "HOME": str(home), "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-m", "contree_cli", "-p", "local", "-o", "json", *args], env=env,
                          capture_output=True, text=True, timeout=CLI_DEADLINE, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def wait_for_profile(auth: Path, serve: subprocess.Popen[bytes]) -> Profile:
    """The `local` profile, once the engine answers its URL with its token."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if serve.poll() is not None:
            pytest.fail(f"engine serve ended ({serve.returncode}): {serve.stderr.read().decode()[-3000:]}")
        if auth.exists() and "local" in (profiles := load_profiles(auth)[0]):
            try:
                if httpx.get(f"{profiles['local'].url}/v1/whoami", timeout=2,
                             headers={"Authorization": f"Bearer {profiles['local'].token}"}).status_code == 200:
                    return profiles["local"]
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    pytest.fail("engine serve wrote no working profile within 60 s")

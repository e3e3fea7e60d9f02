"""The rootless tests' user is what a normal user on Debian is: not root, a subordinate id range that newuidmap
grants, no way into root's files."""

from __future__ import annotations

from tests.rootless.conftest import NormalUser


def test_the_user_is_not_root_and_newuidmap_grants_its_range(normal_user: NormalUser) -> None:
    assert normal_user.run("id", "-u").stdout.strip() == str(normal_user.uid) != "0"
    mapped = normal_user.run("unshare", "--map-auto", "--map-root-user", "cat", "/proc/self/uid_map")
    assert mapped.returncode == 0, mapped.stderr
    lines = [line.split() for line in mapped.stdout.splitlines()]
    assert lines[0] == ["0", str(normal_user.uid), "1"]
    assert int(lines[1][2]) >= 65535  # its /etc/subuid range: every id an image's files may own
    assert normal_user.run("ls", "/root").returncode != 0

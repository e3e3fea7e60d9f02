"""What a normal user's engine needs from the machine (#14), checked before anything is created.

A normal user's engine enters a user namespace of its own (rootless_entry.py): its uid 0 there is the user,
ids 1..N the user's subordinate range from /etc/subuid and /etc/subgid, mapped by the setuid helpers
newuidmap/newgidmap (package `uidmap`). Inside, it mounts overlayfs, which Linux allows in a user namespace
since 5.11. Each missing piece is named in ONE message, with the command that fixes it, so an administrator
fixes them all at once instead of meeting them one by one.

Whether user namespaces may be made is decided by trying (a forked child unshares a user namespace and then a
mount namespace in it, ~1 ms): Debian's kernel.unprivileged_userns_clone, user.max_user_namespaces (per user
namespace) and Ubuntu 24.04's AppArmor restriction (which lets the first unshare succeed but takes every
capability away, so the second one fails) are read only to say which of them refused and how to lift it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import pwd
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from contree_tui.engine.models import EngineError

SUBORDINATE_IDS = 65536  # every id a Debian image's files may own (nobody is 65534)
MIN_KERNEL = (5, 11)  # overlayfs in a user namespace (sandbox-runtime.md §1.4)
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
ID_TOOLS = ("newuidmap", "newgidmap")
# the usual places, for a PATH that lacks them (a spawned engine inherits its client's environment)
TOOL_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin")
USERADD_FIRST_SUBID = 100_000  # where useradd starts handing out ranges (SUB_UID_MIN in login.defs)

ELSEWHERE = "Or run contree-tui as root, or point it at a hosted Contree with --profile NAME."


@dataclass(frozen=True)
class Missing:
    what: str
    fix: str


@dataclass(frozen=True)
class RootlessIds:
    """What the entry maps: the user's own ids as 0, then their subordinate ranges from 1 up."""

    user: str
    uid: int
    gid: int
    uid_ranges: tuple[tuple[int, int], ...]  # (first host id, count), in file order
    gid_ranges: tuple[tuple[int, int], ...]
    newuidmap: str
    newgidmap: str


def subordinate_ranges(path: str, user: str, uid: int) -> list[tuple[int, int]]:
    """The user's lines of /etc/subuid or /etc/subgid (`NAME:START:COUNT`), matched by name or by uid the way
    shadow-utils matches them; malformed lines are skipped, as newuidmap skips them."""
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    ranges = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            continue
        if parts[0] == user or parts[0] == str(uid):
            ranges.append((int(parts[1]), int(parts[2])))
    return ranges


def _all_ranges(path: str) -> list[tuple[int, int]]:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            found.append((int(parts[1]), int(parts[2])))
    return found


def free_range(paths: tuple[str, ...] = ("/etc/subuid", "/etc/subgid")) -> tuple[int, int]:
    """A block of SUBORDINATE_IDS ids no user holds in either file, on useradd's 65536-id grid: the range the
    fix proposes (100000-165535 on a machine whose useradd gave no one a range yet)."""
    taken = [r for path in paths for r in _all_ranges(path)]
    start = USERADD_FIRST_SUBID
    while any(start < first + count and first < start + SUBORDINATE_IDS for first, count in taken):
        start += SUBORDINATE_IDS
    return start, start + SUBORDINATE_IDS - 1


def find_id_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in TOOL_DIRS:
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def id_tool_is_privileged(path: str) -> bool:
    """setuid root (Debian, Ubuntu) or with file capabilities (Fedora, Arch): either can write a uid_map."""
    st = os.stat(path)
    if st.st_mode & stat.S_ISUID and st.st_uid == 0:
        return True
    try:
        return bool(os.getxattr(path, "security.capability"))
    except OSError:
        return False


def kernel_release() -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _sysctl(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


# The probe's answers (a forked child's exit status).
PROBE_OK, PROBE_NO_USERNS, PROBE_NO_CAPS = 0, 1, 2


def probe_user_namespace() -> tuple[int, int]:
    """Try what the entry will do, in a throwaway child: (PROBE_*, errno of the refused unshare)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; its exit status is the answer (errnos are below 128)
        code = 0
        if libc.unshare(CLONE_NEWUSER) != 0:
            code = max(ctypes.get_errno(), 1) & 0x7F
        elif libc.unshare(CLONE_NEWNS) != 0:
            code = 0x80 | max(ctypes.get_errno(), 1) & 0x7F
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return PROBE_OK, 0
    if code < 0:  # killed: say so as a refusal of the first step
        return PROBE_NO_USERNS, errno.EINTR
    return (PROBE_NO_CAPS if code & 0x80 else PROBE_NO_USERNS), code & 0x7F


def user_namespace_missing(probe: tuple[int, int] | None = None) -> Missing | None:
    """None when this process may make a user namespace and hold capabilities in it; else which sysctl or
    policy refused, with the fix."""
    outcome, err = probe if probe is not None else probe_user_namespace()
    if outcome == PROBE_OK:
        return None
    persist = "echo {0} | sudo tee /etc/sysctl.d/60-contree-tui.conf && sudo sysctl -w {0}"
    if _sysctl("/proc/sys/user/max_user_namespaces") == "0":
        return Missing("user namespaces are disabled (user.max_user_namespaces = 0)",
                       persist.format("user.max_user_namespaces=28633"))
    if _sysctl("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        return Missing("unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)",
                       persist.format("kernel.unprivileged_userns_clone=1"))
    if outcome == PROBE_NO_CAPS and _sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        python = os.path.realpath("/proc/self/exe")
        return Missing(
            "AppArmor takes the capabilities away in unprivileged user namespaces "
            "(kernel.apparmor_restrict_unprivileged_userns = 1, Ubuntu 24.04's default)",
            persist.format("kernel.apparmor_restrict_unprivileged_userns=0")
            + f"; or allow only this Python ({python}, so every program it runs) with an AppArmor profile: "
            f"printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile contree-tui {python} "
            f"flags=(unconfined) {{\\n  userns,\\n}}\\n' | sudo tee /etc/apparmor.d/contree-tui "
            "&& sudo apparmor_parser -r /etc/apparmor.d/contree-tui")
    stage = "a user namespace" if outcome == PROBE_NO_USERNS else "a mount namespace inside a user namespace"
    return Missing(f"creating {stage} is refused ({os.strerror(err)}): a container's seccomp policy or a "
                   "security module forbids it", "run contree-tui on the host, or allow user namespaces there")


def _id_tools_missing() -> tuple[list[Missing], dict[str, str]]:
    found = {name: find_id_tool(name) for name in ID_TOOLS}
    absent = [name for name, path in found.items() if path is None]
    if absent:
        return [Missing(f"{' and '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed",
                        "sudo apt-get install uidmap")], {}
    missing = []
    overflow = _sysctl("/proc/sys/kernel/overflowuid") or "65534"
    unmapped = [path for path in found.values() if path is not None and os.stat(path).st_mode & stat.S_ISUID
                and str(os.stat(path).st_uid) == overflow]
    if unmapped:  # a nested user namespace: its owner, host root, is not mapped here, so setuid gives nothing
        return [Missing(f"{' and '.join(unmapped)} are setuid to an id this user namespace does not map (host "
                        "root): contree-tui runs inside another user namespace",
                        "run it from a normal login, outside that namespace")], {}
    for name, path in found.items():
        assert path is not None
        if not id_tool_is_privileged(path):
            cap = "cap_setuid" if name == "newuidmap" else "cap_setgid"
            missing.append(Missing(f"{path} is neither setuid root nor has file capabilities, so it cannot "
                                   "map a range", f"sudo chmod u+s {path} (or: sudo setcap {cap}+ep {path})"))
    return missing, {name: path for name, path in found.items() if path is not None}


def _subids_missing(user: str, uid: int, gid: int) -> tuple[list[Missing], dict[str, list[tuple[int, int]]]]:
    ranges = {path: subordinate_ranges(path, user, uid) for path in ("/etc/subuid", "/etc/subgid")}
    short = []
    for path, found in ranges.items():
        count = sum(c for _, c in found)
        if count < SUBORDINATE_IDS:
            short.append(f"no {path} line for {user}" if not found
                         else f"{user} has {count} ids in {path}, fewer than {SUBORDINATE_IDS}")
    if not short:
        return [], ranges
    first, last = free_range()
    flags = " ".join(f"--add-sub{kind}s {first}-{last}" for path, kind in (("/etc/subuid", "uid"),
                                                                          ("/etc/subgid", "gid"))
                     if sum(c for _, c in ranges[path]) < SUBORDINATE_IDS)
    what = "; ".join(short) + f" (the engine maps {SUBORDINATE_IDS} subordinate ids: every id an image's files own)"
    return [Missing(what, f"sudo usermod {flags} {user}")], ranges


def missing_prerequisites(probe: tuple[int, int] | None = None) -> tuple[list[Missing], RootlessIds | None]:
    """Every missing piece (empty: the entry can run), and the ids it would map when nothing is missing."""
    uid, gid = os.getuid(), os.getgid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:  # no passwd entry (a container's arbitrary uid): /etc/subuid may still name the uid
        user = str(uid)
    missing, ranges = _subids_missing(user, uid, gid)
    tool_missing, tools = _id_tools_missing()
    missing += tool_missing
    userns = user_namespace_missing(probe)
    if userns is not None:
        missing.append(userns)
    if kernel_release() < MIN_KERNEL:
        missing.append(Missing(f"Linux {os.uname().release} is older than 5.11, the first that mounts overlayfs "
                               "in a user namespace", "upgrade the kernel (Debian 12 ships 6.1, Ubuntu 24.04 6.8)"))
    if missing:
        return missing, None
    return [], RootlessIds(user, uid, gid, tuple(ranges["/etc/subuid"]), tuple(ranges["/etc/subgid"]),
                           tools["newuidmap"], tools["newgidmap"])


def prerequisites_message(missing: list[Missing]) -> str:
    count = "one thing" if len(missing) == 1 else f"{len(missing)} things"
    lines = [f"the engine runs as this normal user in a user namespace of its own, and this machine lacks "
             f"{count} for it (once, as an administrator):"]
    lines += [f"  - {m.what}:\n      {m.fix}" for m in missing]
    lines.append(ELSEWHERE)
    return "\n".join(lines)


def require_rootless_prerequisites() -> RootlessIds:
    """The ids to map, or an EngineError naming every missing piece (exit 2 at the CLI)."""
    missing, ids = missing_prerequisites()
    if missing or ids is None:
        raise EngineError(prerequisites_message(missing), status=503)
    return ids


def require_engine_privilege() -> None:
    """Engine.open's first check: uid 0, of the host (root mode) or of a user namespace the entry made. A normal
    user's process cannot enter one once it runs threads or an event loop, so it is told what can."""
    if os.geteuid() == 0:
        return
    require_rootless_prerequisites()
    raise EngineError("a normal user's engine enters a user namespace of its own before it starts: run "
                      "`contree-tui engine serve` (every contree-tui command starts it on demand)", status=503)

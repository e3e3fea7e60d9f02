"""The engine's internals rootless (#14): runs, commits, branches, disposable runs, injected files, the inspect
helpers, delete, timeouts and cancels, crash clean-up, all in the user's namespace (engine_scenarios.py)."""

from __future__ import annotations

import json

from tests.rootless.conftest import NormalUser
from tests.rootless.engine_namespace import STAND_IN, run_scenario, user_dirs

CAP_MKNOD, CAP_SYS_ADMIN = 27, 21


def test_runs_commits_branches_files_and_helpers_work_rootless(normal_user: NormalUser) -> None:
    with user_dirs(normal_user) as (state, work):
        seen = run_scenario(normal_user, "runs", state, work)
    assert seen["rootless"] is True and seen["ids"] == 65536
    hello = seen["hello"]
    assert hello["status"] == "SUCCESS" and hello["exit"] == 0, hello
    # the sandbox's own namespace maps the engine's ids onto themselves (0 is the user, 1.. their range)
    assert hello["stdout"].split() == ["hello", "0", "0", "0", "1", "1", "1", "65535"]
    assert (seen["exit3"]["exit"], seen["exit3"]["stderr"]) == (3, "err\n")
    assert seen["stdin"]["stdout"] == "from stdin\n"
    confined = seen["confined"]["stdout"].split()
    assert confined[confined.index("Seccomp:") + 1] == "2" and confined[-4] == "2", confined  # command, pid 1
    for name in ("CapBnd:", "CapEff:"):
        mask = int(confined[confined.index(name) + 1], 16)
        assert not mask & (1 << CAP_SYS_ADMIN) and not mask & (1 << CAP_MKNOD), (name, hex(mask))
    assert confined[-3:] == ["mount-refused", "unshare-refused", "mknod-refused"], confined
    *_, step3 = seen["chain"]
    assert all(step["status"] == "SUCCESS" for step in seen["chain"]), seen["chain"]
    # owner kept, lower dir removed (overlay with userxattr: no EIO), a recreated dir opaque over the old one
    assert step3["stdout"].splitlines() == ["1000:1000", "one", "two",
                                            "ls: /usr/sbin: No such file or directory", "b"], step3
    assert [b["stdout"] for b in seen["branch"]] == ["left\none\n", "right\none\n"]
    assert seen["parent_untouched"]["stdout"] == "log\n"
    assert seen["disposable"]["stdout"] == "gone\n" and seen["disposable"]["image"] is None
    assert seen["runs_left"] == []
    files = seen["files"]
    assert files["stdout"].splitlines() == ["/app/secret 600 1000:1001", "/app/tool 755 0:0", "injected"], files
    assert seen["files_on_disk"] == {"secret": [1000, 1001], "tool": [0, 0]}  # engine ids: host 1001 + range
    assert seen["listing"] == ["secret 1000", "tool root"]
    assert seen["read"] == "injected\n"  # a 0600 file of uid 1000, read by the helper (DAC_READ_SEARCH nested)
    assert ["app/secret", 1000, 1001] in seen["archive"], seen["archive"]
    assert seen["grep"] == ["/app/secret", "/app/tool"]
    assert seen["rootfs"]["stdout"] == "/srv/daemon 33:33\n", seen["rootfs"]
    assert seen["deleted_layer_was_top"] and seen["layer_gone"]


def test_timeouts_and_cancels_end_rootless_runs(normal_user: NormalUser) -> None:
    with user_dirs(normal_user) as (state, work):
        seen = run_scenario(normal_user, "kill", state, work)
    assert seen["timed"]["timed_out"] is True and "never" not in seen["timed"]["stdout"], seen["timed"]
    assert seen["took"] < 10
    assert seen["cancelled"]["status"] == "CANCELLED", seen["cancelled"]


def test_crashed_runs_scratch_is_removed_at_the_next_start(normal_user: NormalUser) -> None:
    with user_dirs(normal_user) as (state, work):
        left = run_scenario(normal_user, "crash_leftovers", state, work)
        assert left["left"] == ["0123-crashed"]
        # as the user outside the namespace the mode-000 work dir and the subordinate ids' files cannot go
        assert normal_user.run("rm", "-rf", str(state / "runs" / "0123-crashed")).returncode != 0
        seen = run_scenario(normal_user, "after_crash", state, work)
    assert seen["kept"]["stdout"] == "kept\n"
    assert seen["runs_after"] == []


def test_without_a_pid_namespace_of_its_own_the_engine_says_so(normal_user: NormalUser) -> None:
    """Keepers and helpers are born pid 1 of new pid namespaces, after which the engine must set its children's
    pid namespace back to its own: refused for the host's (EPERM), so the engine says what is missing at start
    instead of failing every run."""
    without_pid_namespace = STAND_IN[:STAND_IN.index("--pid")]
    with user_dirs(normal_user) as (state, work):
        done = normal_user.run(*without_pid_namespace, str(normal_user.python), "-m",
                               "tests.rootless.engine_scenarios", "runs", str(state), str(work))
    assert done.returncode != 0
    assert "not in a pid namespace of its own user namespace" in done.stderr, done.stderr[-2000:]


def test_the_entrys_pid_namespace_building_block_makes_the_engine_work(normal_user: NormalUser) -> None:
    """pid_namespace.enter_own_pid_namespace (for the rootless entry) in place of unshare's --pid --fork
    --mount-proc: the engine runs as pid 1 of its own pid namespace, the relay keeps the started pid."""
    without_pid_namespace = STAND_IN[:STAND_IN.index("--pid")]
    with user_dirs(normal_user) as (state, work):
        done = normal_user.run(*without_pid_namespace, str(normal_user.python), "-m",
                               "tests.rootless.engine_scenarios", "--own-pid-namespace", "kill", str(state), str(work))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "engine pid 1" in done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["timed"]["timed_out"] is True and seen["cancelled"]["status"] == "CANCELLED", seen

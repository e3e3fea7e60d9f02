"""Starting another process inside a running sandbox (the API's `POST …/subprocesses`).

A fork of the engine joins the sandbox's cgroups and its ipc, uts, net, pid and mount namespaces (setns
through /proc/<pid 1>/ns), chroots into the sandbox's root (reached through /proc/<pid 1>/root, so it is the
pivoted root, not the host's), then forks the process, which is thereby inside the sandbox's pid namespace:
it dies with the instance like everything else in there. Last it joins the sandbox's user namespace (as its
root, userns.py: after it, it could join no other namespace), then privileges are dropped exactly as for the
main command. Status travels as JSON lines, as in launch.py.
"""

from __future__ import annotations

import os
import resource
import signal

from contree_tui.engine.sandbox import syscalls as sc
from contree_tui.engine.sandbox import userns
from contree_tui.engine.sandbox.launch import (
    EXIT_EXEC_FAILED,
    EXIT_SETUP_FAILED,
    KEPT_CAPABILITIES,
    Launched,
    _describe_exit,
    _report,
    detach_child,
    report_exec_failure,
)

NAMESPACES = ("ipc", "uts", "net", "pid", "mnt")  # mnt last: after it, /proc/<pid> paths are the sandbox's


def exec_in_sandbox(sandbox_pid: int, argv: list[str], env: dict[str, str], cwd: str, uid: int, gid: int,
                    rlimits: dict[int, int], cgroup_procs: list[str]) -> Launched:
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    status_r, status_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - forked child
        code = EXIT_SETUP_FAILED
        try:
            detach_child({stdin_r, stdout_w, stderr_w, status_w}, cgroup_procs)
            ns_fds = [os.open(f"/proc/{sandbox_pid}/ns/{name}", os.O_RDONLY) for name in NAMESPACES]
            root_fd = os.open(f"/proc/{sandbox_pid}/root", os.O_RDONLY | os.O_DIRECTORY)
            user_fd = os.open(f"/proc/{sandbox_pid}/ns/user", os.O_RDONLY)
            own_user = os.stat("/proc/self/ns/user").st_ino  # read now: after the pivot /proc is the sandbox's
            for fd in ns_fds:
                sc.setns(fd)
                os.close(fd)
            os.fchdir(root_fd)
            os.chroot(".")
            os.close(root_fd)
            os.chdir("/")
            if os.fstat(user_fd).st_ino != own_user:  # else the engine runs without sandbox users
                userns.join(user_fd)
            os.close(user_fd)
            # "spawned" only once the command is exec'd (or failed to be): its write end closes on exec
            # (O_CLOEXEC) or with it. Reported at fork, a signal sent at once (DELETE …/subprocesses/{spid}
            # right after the create) met no process group yet (setsid is the child's first step): ESRCH, 404.
            exec_r, exec_w = os.pipe2(os.O_CLOEXEC)
            child = os.fork()
            if child == 0:
                os.close(exec_r)
                _exec(argv, env, cwd, uid, gid, rlimits, stdin_r, stdout_w, stderr_w, status_w)
            os.close(exec_w)
            os.read(exec_r, 1)
            os.close(exec_r)
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
            _report(status_w, spawned=_namespace_pid(child), host_pid=child)
            _, status, usage = os.wait4(child, 0)
            _report(status_w, exit=_describe_exit(status, usage))
            code = 0
        except BaseException as exc:  # noqa: BLE001
            try:
                _report(status_w, error=f"cannot enter the sandbox: {exc}")
            except OSError:
                pass
        os._exit(code)
    for fd in (stdin_r, stdout_w, stderr_w, status_w):
        os.close(fd)
    for fd in (stdout_r, stderr_r, status_r):
        os.set_blocking(fd, False)
    return Launched(pid, stdin_w, stdout_r, stderr_r, status_r)


def _namespace_pid(host_pid: int) -> int:
    """The pid as the sandbox sees it (last NSpid field); the host pid if /proc does not say."""
    try:
        with open(f"/proc/{host_pid}/status") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except OSError:
        pass
    return host_pid


def _exec(argv: list[str], env: dict[str, str], cwd: str, uid: int, gid: int, rlimits: dict[int, int],
          stdin_r: int, stdout_w: int, stderr_w: int, status_w: int) -> None:
    try:
        os.setsid()
        os.makedirs(cwd, mode=0o755, exist_ok=True)
        for limit, value in rlimits.items():
            _, hard = resource.getrlimit(limit)
            value = min(value, hard) if hard != resource.RLIM_INFINITY else value
            cpu = limit == resource.RLIMIT_CPU and (hard == resource.RLIM_INFINITY or value < hard)  # as launch's
            resource.setrlimit(limit, (value, value + 1 if cpu else value))
        sc.drop_bounding_capabilities(KEPT_CAPABILITIES)
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        os.chdir(cwd)
        os.dup2(stdin_r, 0)
        os.dup2(stdout_w, 1)
        os.dup2(stderr_w, 2)
        sc.close_range(3, cloexec=True)
        for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        os.execvpe(argv[0], argv, env)
    except BaseException as exc:  # noqa: BLE001
        report_exec_failure(status_w, argv[0], exc)
    os._exit(EXIT_EXEC_FAILED)

/* ct-keeper: the sandbox keeper and pid 1, native.
 *
 * The same program as launch.py's _idle_keeper + _sandbox, step for step, without an interpreter: a
 * forked Python keeper cost every run the copy-on-write faults of the pages it touched (~500), its page
 * tables and the teardown of a Python process, the largest part of a trivial run's CPU (bench_api).
 * The factory starts this binary with posix_spawn (a vfork: nothing is copied) as pid 1 of a new pid
 * namespace:
 *
 *     ct-keeper SOCKET_FD [-uUSERNS_FD:MNTNS_FD:UID_BASE:GID_BASE] [-nNETNS_FD] [CGROUP_PROCS_FILE ...]
 *
 * It closes every other fd, dies with the factory, joins the cgroups (and, with -u, the sandbox users'
 * idmapped mount namespace with fsuid/fsgid BASE: userns.py's enter_keeper), then waits on SOCKET_FD for "run"
 * with five fds: stdin_r, stdout_w, stderr_w, status_w and a memfd holding the spec as NUL-terminated
 * records, one letter then the value (see native.py's encode_spec). Status goes to status_w as JSON
 * lines, exactly as launch.py writes them. Built by native.py with the machine's C compiler, with the
 * syscall filter built in (install_filter).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#define EXIT_SETUP_FAILED 125
#define EXIT_EXEC_FAILED 127

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#define SYS_FSOPEN 430
#define SYS_FSCONFIG 431
#define SYS_FSMOUNT 432
#define SYS_MOVE_MOUNT 429
#define FSCONFIG_SET_FLAG_ 0
#define FSCONFIG_SET_STRING_ 1
#define FSCONFIG_CMD_CREATE_ 6
#define MOVE_MOUNT_F_EMPTY_PATH_ 0x4
#define MOUNT_ATTR_NODEV_ 0x4
#define CLOSE_RANGE_CLOEXEC_ (1U << 2)

/* Docker's default set minus MKNOD, NET_RAW and AUDIT_WRITE (launch.KEPT_CAPABILITIES). */
static const int kept_caps[] = {0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 31};
static const char *proc_read_only[] = {"sys", "sysrq-trigger", "irq", "bus", "fs"};
static const char *proc_masked[] = {"kcore", "keys", "timer_list", "sched_debug", "kallsyms"};
static const char *device_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};

struct file_item {
    char *path, *blob;
    unsigned mode, uid, gid;
};

struct spec {
    char **lowers, **argv, **env;  /* argv and env end with NULL */
    int n_lowers, n_argv, n_env;
    struct file_item *files;
    int n_files;
    int rl_resource[32];
    unsigned long long rl_value[32];
    int n_rlimits;
    char *upper, *work, *merged, *cwd, *hostname, *blob_dir;
    unsigned uid, gid;
    int network;
    long pid_max;  /* the pid namespace's pid_max (limit_plan.py); 0: none */
    int userxattr;  /* rootless: overlay's metadata as user.overlay.* (syscalls.overlay_mount) */
};

static int status_fd = -1;
/* The sandbox users (userns.py): -1 without them; host id = base + sandbox id. */
static int userns_fd = -1, mntns_fd = -1;
static unsigned uid_base, gid_base;
static char failure[1024];  /* "what: strerror", for the setup error report */

/* -- status messages (JSON lines, each far below PIPE_BUF) ------------------------------------------- */

static size_t json_string(char *out, size_t room, const char *text) {
    size_t n = 0;
    if (room < 3) return 0;
    out[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p && n + 8 < room; p++) {
        if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p;
        } else if (*p < 0x20 || *p >= 0x7f) {  /* bytes, not UTF-8: never an invalid document */
            n += (size_t)snprintf(out + n, room - n, "\\u%04x", *p);
        } else {
            out[n++] = (char)*p;
        }
    }
    out[n++] = '"';
    out[n] = 0;
    return n;
}

static void report_text(const char *key, const char *prefix, const char *text) {
    char message[2048], quoted[1800], joined[1200];
    snprintf(joined, sizeof joined, "%s%s", prefix, text);
    json_string(quoted, sizeof quoted, joined);
    int n = snprintf(message, sizeof message, "{\"%s\": %s}\n", key, quoted);
    if (status_fd >= 0 && write(status_fd, message, (size_t)n) < 0) { /* the engine is gone: nothing to tell */ }
}

static void report_int(const char *key, long value) {
    char message[64];
    int n = snprintf(message, sizeof message, "{\"%s\": %ld}\n", key, value);
    if (write(status_fd, message, (size_t)n) < 0) { /* as above */ }
}

/* Record why a step failed; the caller returns -1 up to the setup's single error report. */
static int fail(const char *what, ...) {
    int err = errno;
    char step[700];
    va_list ap;
    va_start(ap, what);
    vsnprintf(step, sizeof step, what, ap);
    va_end(ap);
    snprintf(failure, sizeof failure, "[Errno %d] %s: %s", err, step, strerror(err));
    errno = err;
    return -1;
}

static void fail_setup(void) {
    report_text("error", "sandbox setup failed: ", failure);
    _exit(EXIT_SETUP_FAILED);
}

/* -- small helpers ---------------------------------------------------------------------------------- */

static void close_all_except(const int *keep, int n) {
    int sorted[8], count = 0;
    for (int i = 0; i < n; i++)
        if (keep[i] > 2) sorted[count++] = keep[i];
    for (int i = 1; i < count; i++)
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            int t = sorted[j]; sorted[j] = sorted[j - 1]; sorted[j - 1] = t;
        }
    int previous = 2;
    for (int i = 0; i < count; i++) {
        if (sorted[i] > previous + 1) syscall(SYS_close_range, previous + 1, sorted[i] - 1, 0);
        if (sorted[i] > previous) previous = sorted[i];
    }
    syscall(SYS_close_range, previous + 1, ~0U, 0);
}

static int mkdir_p(const char *path, mode_t mode) {
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) { errno = ENAMETOOLONG; return fail("mkdir %s", path); }
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char saved = buf[i];
        buf[i] = 0;
        if (mkdir(buf, saved ? 0777 : mode) != 0 && errno != EEXIST) return fail("mkdir %s", buf);
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0) return fail("stat %s", path);
    if (!S_ISDIR(st.st_mode)) { errno = EEXIST; return fail("mkdir %s", path); }
    return 0;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* -- the spec --------------------------------------------------------------------------------------- */

static int parse_spec(int fd, struct spec *s) {
    struct stat st;
    if (fstat(fd, &st) != 0) return fail("read spec");
    char *data = malloc((size_t)st.st_size + 1);
    if (!data) return fail("read spec");
    ssize_t got = pread(fd, data, (size_t)st.st_size, 0);
    if (got != st.st_size) { errno = EIO; return fail("read spec"); }
    data[got] = 0;
    memset(s, 0, sizeof *s);
    size_t counts[128] = {0};  /* records per key letter: every list is sized to fit, none is cut short */
    for (char *p = data; p < data + got; p += strlen(p) + 1) counts[(unsigned char)*p & 127]++;
    s->lowers = calloc(counts['L'] + 1, sizeof *s->lowers);
    s->argv = calloc(counts['A'] + 1, sizeof *s->argv);
    s->env = calloc(counts['E'] + 1, sizeof *s->env);
    s->files = calloc(counts['F'] + 1, sizeof *s->files);
    if (!s->lowers || !s->argv || !s->env || !s->files) return fail("read spec");
    s->cwd = "/";
    s->hostname = "linuxkit";
    s->network = 1;
    for (char *p = data; p < data + got; p += strlen(p) + 1) {
        char key = *p, *value = p + 1;
        switch (key) {
        case 'L': s->lowers[s->n_lowers++] = value; break;
        case 'A': s->argv[s->n_argv++] = value; break;
        case 'E': s->env[s->n_env++] = value; break;
        case 'U': s->upper = value; break;
        case 'W': s->work = value; break;
        case 'M': s->merged = value; break;
        case 'C': s->cwd = value; break;
        case 'H': s->hostname = value; break;
        case 'B': s->blob_dir = value; break;
        case 'u': s->uid = (unsigned)strtoul(value, NULL, 10); break;
        case 'g': s->gid = (unsigned)strtoul(value, NULL, 10); break;
        case 'N': s->network = value[0] == '1'; break;
        case 'P': s->pid_max = strtol(value, NULL, 10); break;
        case 'X': s->userxattr = value[0] == '1'; break;
        case 'R':
            if (s->n_rlimits < (int)(sizeof s->rl_resource / sizeof *s->rl_resource)) {
                char *end;
                s->rl_resource[s->n_rlimits] = (int)strtol(value, &end, 10);
                s->rl_value[s->n_rlimits++] = strtoull(end + 1, NULL, 10);
            }
            break;
        case 'F': {  /* mode:uid:gid:blob:path */
            struct file_item *f = &s->files[s->n_files];
            char *end;
            f->mode = (unsigned)strtoul(value, &end, 10);
            f->uid = (unsigned)strtoul(end + 1, &end, 10);
            f->gid = (unsigned)strtoul(end + 1, &end, 10);
            f->blob = end + 1;
            char *colon = strchr(f->blob, ':');
            if (!colon) { errno = EINVAL; return fail("bad file record"); }
            *colon = 0;
            f->path = colon + 1;
            s->n_files++;
            break;
        }
        default: break;
        }
    }
    if (!s->upper || !s->work || !s->merged || s->n_argv == 0) { errno = EINVAL; return fail("incomplete spec"); }
    return 0;
}

/* -- the root --------------------------------------------------------------------------------------- */

static int fsconfig_string(int fd, const char *key, const char *value) {
    if (syscall(SYS_FSCONFIG, fd, FSCONFIG_SET_STRING_, key, value, 0) != 0) return fail("fsconfig %s=%s", key, value);
    return 0;
}

/* One `lowerdir+` per layer through the new mount API: the legacy option string is cut at one page. */
static int overlay_mount(const struct spec *s) {
    int fd = (int)syscall(SYS_FSOPEN, "overlay", 0);
    if (fd < 0) return fail("fsopen overlay");
    int rc = -1;
    for (int i = 0; i < s->n_lowers; i++)
        if (fsconfig_string(fd, "lowerdir+", s->lowers[i])) goto out;
    if (fsconfig_string(fd, "upperdir", s->upper) || fsconfig_string(fd, "workdir", s->work)) goto out;
    /* volatile, no redirects, no metacopy, no index: see syscalls.overlay_mount */
    if (syscall(SYS_FSCONFIG, fd, FSCONFIG_SET_FLAG_, "volatile", NULL, 0) != 0) { fail("fsconfig volatile"); goto out; }
    /* userxattr refuses redirect_dir=off, which follows lowers' redirects: nofollow (syscalls.py) */
    if (fsconfig_string(fd, "redirect_dir", s->userxattr ? "nofollow" : "off") || fsconfig_string(fd, "metacopy", "off")
        || fsconfig_string(fd, "index", "off"))
        goto out;
    if (s->userxattr && syscall(SYS_FSCONFIG, fd, FSCONFIG_SET_FLAG_, "userxattr", NULL, 0) != 0) {
        fail("fsconfig userxattr");
        goto out;
    }
    if (syscall(SYS_FSCONFIG, fd, FSCONFIG_CMD_CREATE_, NULL, NULL, 0) != 0) { fail("fsconfig create overlay"); goto out; }
    int mfd = (int)syscall(SYS_FSMOUNT, fd, 0, MOUNT_ATTR_NODEV_);
    if (mfd < 0) { fail("fsmount"); goto out; }
    /* Overlay falls back to read-only, and succeeds, when it cannot make its work dir (syscalls.py). */
    struct statvfs sv;
    if (fstatvfs(mfd, &sv) != 0) fail("statvfs overlay");
    else if (sv.f_flag & ST_RDONLY) { errno = EROFS; fail("overlay came up read-only (work dir %s)", s->work); }
    else if (syscall(SYS_MOVE_MOUNT, mfd, "", AT_FDCWD, s->merged, MOVE_MOUNT_F_EMPTY_PATH_) != 0)
        fail("move_mount %s", s->merged);
    else
        rc = 0;
    close(mfd);
out:
    close(fd);
    return rc;
}

static int mount_at(const char *source, const char *target, const char *type, unsigned long flags, const char *data) {
    if (mount(source, target, type, flags, data) != 0) return fail("mount %s", target);
    return 0;
}

static int loopback_up(void) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return fail("socket");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    int rc = 0;
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) rc = fail("SIOCGIFFLAGS lo");
    else {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) rc = fail("SIOCSIFFLAGS lo");
    }
    close(sock);
    return rc;
}

/* userns.py's allow_low_ports: in the sandbox's own network namespace, any id may bind ports < 1024 (the
 * sandbox's root has CAP_NET_BIND_SERVICE in its user namespace only, not in the netns owner's). A run is
 * never in the host's network namespace (unshared when offline, pasta's slot when online: engine.py). */
static int allow_low_ports(void) {
    int fd = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail("open ip_unprivileged_port_start");
    int rc = write(fd, "0", 1) == 1 ? 0 : fail("write ip_unprivileged_port_start");
    close(fd);
    return rc;
}

static int build_root(const struct spec *s) {
    char path[4300], proc[4096], dev[4096];
    if (strlen(s->merged) > 4000) { errno = ENAMETOOLONG; return fail("mount %s", s->merged); }
    if (mount_at(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || overlay_mount(s)) return -1;
    snprintf(proc, sizeof proc, "%s/proc", s->merged);
    if (mount_at("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) return -1;
    for (size_t i = 0; i < sizeof proc_read_only / sizeof *proc_read_only; i++) {
        snprintf(path, sizeof path, "%s/%s", proc, proc_read_only[i]);
        if (!exists(path)) continue;
        if (mount_at(path, path, NULL, MS_BIND | MS_REC, NULL)
            || mount_at(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL))
            return -1;
    }
    for (size_t i = 0; i < sizeof proc_masked / sizeof *proc_masked; i++) {
        snprintf(path, sizeof path, "%s/%s", proc, proc_masked[i]);
        if (exists(path) && mount_at("/dev/null", path, NULL, MS_BIND, NULL)) return -1;
    }
    snprintf(dev, sizeof dev, "%s/dev", s->merged);
    if (mount_at("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k")) return -1;
    for (size_t i = 0; i < sizeof device_nodes / sizeof *device_nodes; i++) {
        char host[64];
        snprintf(path, sizeof path, "%s/%s", dev, device_nodes[i]);
        snprintf(host, sizeof host, "/dev/%s", device_nodes[i]);
        int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
        if (fd < 0) return fail("open %s", path);
        close(fd);
        if (mount_at(host, path, NULL, MS_BIND, NULL)) return -1;
    }
    static const char *links[][2] = {{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"},
                                     {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dev, links[i][0]);
        if (symlink(links[i][1], path) != 0) return fail("symlink %s", path);
    }
    snprintf(path, sizeof path, "%s/shm", dev);
    if (mkdir(path, 01777) != 0) return fail("mkdir %s", path);
    if (mount_at("shm", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")) return -1;
    snprintf(path, sizeof path, "%s/pts", dev);
    if (mkdir(path, 0755) != 0) return fail("mkdir %s", path);
    if (sethostname(s->hostname, strlen(s->hostname)) != 0) return fail("sethostname");
    if (!s->network && loopback_up()) return -1;
    if (allow_low_ports()) return -1;
    if (chdir(s->merged) != 0) return fail("chdir %s", s->merged);
    /* pivot_root(".", ".") stacks the old root on the new one; detaching it leaves no path back to the host
     * tree (a chroot was escaped in the runtime probes; this was not). */
    if (syscall(SYS_pivot_root, ".", ".") != 0) return fail("pivot_root");
    if (umount2(".", MNT_DETACH) != 0) return fail("umount .");
    if (chdir("/") != 0) return fail("chdir /");
    return 0;
}

/* -- injected files (after pivot_root: a symlink in the image resolves inside the sandbox) ------------- */

static int same_file(const struct file_item *f, int source) {
    struct stat st, src;
    if (lstat(f->path, &st) != 0 || fstat(source, &src) != 0) return 0;
    if (!S_ISREG(st.st_mode) || st.st_size != src.st_size || (st.st_mode & 07777) != f->mode
        || st.st_uid != uid_base + f->uid || st.st_gid != gid_base + f->gid)
        return 0;
    int current = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (current < 0) return 0;
    static char a[1 << 16], b[1 << 16];
    off_t offset = 0;
    int same = 1;
    for (;;) {
        ssize_t x = pread(current, a, sizeof a, offset), y = pread(source, b, sizeof b, offset);
        if (x != y || x < 0 || memcmp(a, b, (size_t)x) != 0) { same = 0; break; }
        if (x == 0) break;
        offset += x;
    }
    close(current);
    return same;
}

static int inject_files(const struct spec *s, int blob_fd) {
    for (int i = 0; i < s->n_files; i++) {
        const struct file_item *f = &s->files[i];
        char parent[4096];
        if (strlen(f->path) >= sizeof parent) { errno = ENAMETOOLONG; return fail("open %.200s...", f->path); }
        snprintf(parent, sizeof parent, "%s", f->path);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = 0;
            if (mkdir_p(parent, 0755)) return -1;
        }
        int source = openat(blob_fd, f->blob, O_RDONLY | O_CLOEXEC);
        if (source < 0) return fail("open blob %s", f->blob);
        if (same_file(f, source)) { close(source); continue; }
        struct stat st;
        if (lstat(f->path, &st) == 0 && S_ISDIR(st.st_mode)) {
            close(source);
            errno = EISDIR;
            return fail("cannot place a file at %s: it is a directory", f->path);
        }
        if (unlink(f->path) != 0 && errno != ENOENT) { close(source); return fail("unlink %s", f->path); }
        int target = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (target < 0) { close(source); return fail("open %s", f->path); }
        off_t offset = 0;
        int rc = 0;
        for (;;) {
            ssize_t n = sendfile(target, source, &offset, 1 << 20);
            if (n < 0) { rc = fail("copy %s", f->path); break; }
            if (n == 0) break;
        }
        if (!rc && fchown(target, uid_base + f->uid, gid_base + f->gid) != 0) rc = fail("chown %s", f->path);
        if (!rc && fchmod(target, f->mode) != 0) rc = fail("chmod %s", f->path);
        close(target);
        close(source);
        if (rc) return -1;
    }
    return 0;
}

/* -- the command ------------------------------------------------------------------------------------ */

/* posix_spawnp's PATH search (what the Python keeper uses), without execvp's /bin/sh retry of a file that is
 * not an executable: both keepers then fail such a command alike, with "Exec format error". */
static void exec_search(char *const argv[], char *const envp[], const char *path) {
    const char *command = argv[0];
    if (strchr(command, '/')) {
        execve(command, argv, envp);
        return;
    }
    int got_eacces = 0;
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        char full[4096];
        int n = end == p ? snprintf(full, sizeof full, "%s", command)
                         : snprintf(full, sizeof full, "%.*s/%s", (int)(end - p), p, command);
        if (n > 0 && (size_t)n < sizeof full) {
            execve(full, argv, envp);
            switch (errno) {
            case EACCES: got_eacces = 1; break;
            case ENOENT: case ESTALE: case ENOTDIR: case ENODEV: case ETIMEDOUT: break;
            default: return;
            }
        }
        if (*end == 0) break;
        p = end;
    }
    errno = got_eacces ? EACCES : ENOENT;
}

static void exec_failed(const char *command, int err) {
    char text[600];
    snprintf(text, sizeof text, "%s: %s", command, strerror(err));
    report_text("exec_error", "", text);
    _exit(EXIT_EXEC_FAILED);
}

/* Drop privileges in pid 1 itself (the command inherits limits, bounding set, ids and cwd; pid 1 needs
 * none of its powers after setup), then fork the command. A CLOEXEC pipe tells exec success (EOF) from
 * failure (its errno), so a command that cannot start is reported as posix_spawn reports it: no pid. */
static pid_t spawn_command(const struct spec *s, int stdin_r, int stdout_w, int stderr_w) {
    const char *command = s->argv[0];
    int has_as = 0;
    struct rlimit as_limit = {0, 0};
    for (int i = 0; i < s->n_rlimits; i++) {
        struct rlimit current, wanted;
        rlim_t value = (rlim_t)s->rl_value[i];
        if (getrlimit(s->rl_resource[i], &current) != 0) exec_failed(command, errno);
        if (current.rlim_max != RLIM_INFINITY && value > current.rlim_max) value = current.rlim_max;
        wanted.rlim_cur = wanted.rlim_max = value;
        /* RLIMIT_CPU: SIGXCPU at the limit (a signal that names the cause), SIGKILL a second later */
        if (s->rl_resource[i] == RLIMIT_CPU && value != RLIM_INFINITY &&
            (current.rlim_max == RLIM_INFINITY || value < current.rlim_max))
            wanted.rlim_max = value + 1;
        if (s->rl_resource[i] == RLIMIT_AS) {  /* set in the child: on pid 1 it would count our own mappings */
            has_as = 1;
            as_limit = wanted;
            continue;
        }
        if (setrlimit(s->rl_resource[i], &wanted) != 0) exec_failed(command, errno);
    }
    syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC_);  /* only 0-2 reach the command */
    int last_cap = 40;
    FILE *fh = fopen("/proc/sys/kernel/cap_last_cap", "re");
    if (fh) {
        if (fscanf(fh, "%d", &last_cap) != 1) last_cap = 40;
        fclose(fh);
    }
    for (int cap = 0; cap <= last_cap; cap++) {
        int keep = 0;
        for (size_t k = 0; k < sizeof kept_caps / sizeof *kept_caps; k++) keep |= kept_caps[k] == cap;
        if (!keep && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) exec_failed(command, errno);
    }
    if (setgroups(0, NULL) != 0 || setgid(s->gid) != 0 || setuid(s->uid) != 0) exec_failed(command, errno);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  /* a credential change clears it */
    if (chdir(s->cwd) != 0) exec_failed(command, errno);
    const char *path = "";  /* the command is looked up in the run's PATH (empty: the cwd, as posix_spawnp) */
    for (int i = 0; i < s->n_env; i++)
        if (strncmp(s->env[i], "PATH=", 5) == 0) path = s->env[i] + 5;

    int handshake[2];
    if (pipe2(handshake, O_CLOEXEC) != 0) exec_failed(command, errno);
    pid_t pid = fork();
    if (pid < 0) exec_failed(command, errno);
    if (pid == 0) {
        close(handshake[0]);
        setsid();
        if (dup2(stdin_r, 0) < 0 || dup2(stdout_w, 1) < 0 || dup2(stderr_w, 2) < 0) goto failed;
        if (has_as && setrlimit(RLIMIT_AS, &as_limit) != 0) goto failed;
        exec_search(s->argv, s->env, path);
    failed:;
        int err = errno;
        if (write(handshake[1], &err, sizeof err) < 0) { /* the parent reads EOF and reports a plain exit */ }
        _exit(EXIT_EXEC_FAILED);
    }
    close(handshake[1]);
    int err = 0;
    ssize_t n;
    do n = read(handshake[0], &err, sizeof err); while (n < 0 && errno == EINTR);
    close(handshake[0]);
    if (n == (ssize_t)sizeof err) {
        waitpid(pid, NULL, 0);
        exec_failed(command, err);
    }
    return pid;
}

/* userns.py's enter_keeper: the idmapped mount namespace; fsuid/fsgid BASE, with the filesystem capabilities
 * that change clears raised again from the permitted set. */
static int enter_keeper(void) {
    if (mntns_fd < 0) return 0;
    if (setns(mntns_fd, CLONE_NEWNS) != 0) return fail("setns mnt");
    close(mntns_fd);
    setfsgid(gid_base);
    setfsuid(uid_base);
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0) return fail("capget");
    data[0].effective = data[0].permitted;
    data[1].effective = data[1].permitted;
    if (syscall(SYS_capset, &header, data) != 0) return fail("capset");
    return 0;
}

/* userns.py's join: the sandbox user namespace, as its root. setns makes the bounding set full again: it is
 * dropped after this, in spawn_command. */
static int join_userns(void) {
    if (userns_fd < 0) return 0;
    if (setns(userns_fd, CLONE_NEWUSER) != 0) return fail("setns user");
    close(userns_fd);
    if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) return fail("become the sandbox's root");
    return 0;
}

/* Docker's default syscall filter as classic BPF: seccomp.py compiles it, native.py builds it in as
 * `seccomp_program` (cc -include; keeper.c does not build without it). Installed as the last setup step,
 * while still root, as runc does without no-new-privileges (setuid programs in images keep working);
 * everything after it (limits, capability drop, setuid, fork, execve) is allowed by it. */
static int install_filter(void) {
    struct sock_fprog prog = {(unsigned short)(sizeof seccomp_program / sizeof(struct sock_filter)),
                              (struct sock_filter *)seccomp_program};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) return fail("seccomp filter");
    return 0;
}

static void report_exit(int status, const struct rusage *ru) {
    int signalled = WIFSIGNALED(status);
    char message[1024];
    int n = snprintf(message, sizeof message,
        "{\"exit\": {\"code\": %d, \"signal\": %d, \"core_dump\": %s, \"resources\": {"
        "\"user_time_us\": %lld, \"sys_time_us\": %lld, \"max_rss_kb\": %ld, \"shared_memory\": %ld, "
        "\"unshared_memory\": %ld, \"swaps\": %ld, \"minor_faults\": %ld, \"major_faults\": %ld, "
        "\"voluntary_ctx_switches\": %ld, \"involuntary_ctx_switches\": %ld, \"block_input_ops\": %ld, "
        "\"block_output_ops\": %ld, \"ipc_msgs_sent\": %ld, \"ipc_msgs_received\": %ld, \"signals_received\": %ld}}}\n",
        signalled ? -1 : WEXITSTATUS(status), signalled ? WTERMSIG(status) : -1,
        signalled && WCOREDUMP(status) ? "true" : "false",
        (long long)ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec,
        (long long)ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec,
        ru->ru_maxrss, ru->ru_ixrss, ru->ru_idrss, ru->ru_nswap, ru->ru_minflt, ru->ru_majflt, ru->ru_nvcsw,
        ru->ru_nivcsw, ru->ru_inblock, ru->ru_oublock, ru->ru_msgsnd, ru->ru_msgrcv, ru->ru_nsignals);
    if (write(status_fd, message, (size_t)n) < 0) { /* the engine is gone */ }
}

/* -- pid 1 ------------------------------------------------------------------------------------------ */

/* Our pid namespace's own pid_max (Linux >= 6.14), the pids cap without cgroups (limit_plan.py). */
static int write_pid_max(long value) {
    char text[32];
    int n = snprintf(text, sizeof text, "%ld", value);
    int fd = open("/proc/sys/kernel/pid_max", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail("open pid_max");
    if (write(fd, text, (size_t)n) != n) { close(fd); return fail("write pid_max"); }
    close(fd);
    return 0;
}

static void sandbox(struct spec *s, int stdin_r, int stdout_w, int stderr_w) {
    prctl(PR_SET_NAME, "ct-sandbox");
    int blob_fd = -1;
    if (s->n_files && s->blob_dir) {
        blob_fd = open(s->blob_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (blob_fd < 0) { fail("open %s", s->blob_dir); fail_setup(); }
    }
    int keep[] = {stdin_r, stdout_w, stderr_w, status_fd, userns_fd, blob_fd};
    close_all_except(keep, blob_fd >= 0 ? 6 : 5);
    /* The run's scratch dirs are made here, on the other core, rather than on the engine's event loop. */
    if (mkdir_p(s->upper, 0777) || mkdir_p(s->work, 0777) || mkdir_p(s->merged, 0777)) fail_setup();
    int flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | (s->network ? 0 : CLONE_NEWNET);
    if (unshare(flags) != 0) { fail("unshare"); fail_setup(); }
    if (s->pid_max > 0 && write_pid_max(s->pid_max)) fail_setup();
    /* Until pivot_root, /proc is still the host's: its "self" is our pid as the engine sees it. */
    char self[32] = {0};
    if (readlink("/proc/self", self, sizeof self - 1) < 0) { fail("readlink /proc/self"); fail_setup(); }
    report_int("sandbox_pid", strtol(self, NULL, 10));
    if (build_root(s)) fail_setup();
    if (blob_fd >= 0) {
        if (inject_files(s, blob_fd)) fail_setup();
        close(blob_fd);
    }
    if (mkdir_p(s->cwd, 0755) || join_userns() || install_filter()) fail_setup();
    pid_t command = spawn_command(s, stdin_r, stdout_w, stderr_w);
    close(stdin_r);
    close(stdout_w);
    close(stderr_w);
    report_int("spawned", command);
    /* pid 1 reaps every orphan; only the command's own exit ends the sandbox. */
    for (;;) {
        int status;
        struct rusage ru;
        pid_t pid = wait4(-1, &status, 0, &ru);
        if (pid < 0) {
            if (errno == EINTR) continue;
            _exit(0);
        }
        if (pid == command) {
            report_exit(status, &ru);
            _exit(0);
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 2) return EXIT_SETUP_FAILED;
    int sock = atoi(argv[1]);
    prctl(PR_SET_NAME, "ct-keeper");
    int first_path = 2, netns_fd = -1;
    if (argc > first_path && strncmp(argv[first_path], "-u", 2) == 0) {
        if (sscanf(argv[first_path] + 2, "%d:%d:%u:%u", &userns_fd, &mntns_fd, &uid_base, &gid_base) != 4)
            return EXIT_SETUP_FAILED;
        first_path++;
    }
    if (argc > first_path && strncmp(argv[first_path], "-n", 2) == 0) {
        netns_fd = atoi(argv[first_path] + 2);
        first_path++;
    }
    int inherited[] = {sock, userns_fd, mntns_fd, netns_fd};
    close_all_except(inherited, 4);
    /* The network slot (network.py): joined here, as the factory could not come back to its own rootless. */
    if (netns_fd >= 0) {
        if (setns(netns_fd, CLONE_NEWNET) != 0) return EXIT_SETUP_FAILED;
        close(netns_fd);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* Ignored dispositions survive exec (Python ignores SIGPIPE and SIGXFSZ, the factory SIGINT). */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int i = first_path; i < argc; i++) {  /* "0" is the writer, in any pid namespace (we are pid 1 of our own) */
        int fd = open(argv[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) return EXIT_SETUP_FAILED;
        close(fd);
    }
    if (enter_keeper()) return EXIT_SETUP_FAILED;
    char message[64];
    int fds[5];
    char control[CMSG_SPACE(sizeof fds)];
    struct iovec iov = {message, sizeof message};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    if (n <= 0 || !cmsg || cmsg->cmsg_type != SCM_RIGHTS || cmsg->cmsg_len != CMSG_LEN(sizeof fds))
        _exit(0);  /* the engine let this keeper go */
    memcpy(fds, CMSG_DATA(cmsg), sizeof fds);
    close(sock);
    status_fd = fds[3];
    static struct spec spec;
    if (parse_spec(fds[4], &spec)) fail_setup();
    close(fds[4]);
    sandbox(&spec, fds[0], fds[1], fds[2]);
    return 0;
}

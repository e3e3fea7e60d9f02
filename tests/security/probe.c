/* A static probe run inside sandboxes by the seccomp and keyring tests: each word on the command line makes
 * one raw syscall and prints "word=OK" or "word=<errno name>" (busybox has no keyctl, and its unshare or
 * mount applets would hide which call failed). Compiled with `cc -static` by tests/security/probe.py. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY_SPEC_USER_KEYRING -4
#define KEYCTL_READ 11
#define KEYCTL_SEARCH 10
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif

static int report(const char *word, long rc) {
    if (rc < 0) printf("%s=%s\n", word, strerrorname_np(errno));
    else printf("%s=OK\n", word);
    return rc < 0;
}

/* fork, exec, pipes, a socketpair and TCP over loopback: what ordinary builds do */
static long ordinary_work(void) {
    int p[2];
    if (pipe(p)) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(p[1], 1);
        execl("/bin/echo", "echo", "from-exec", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[64] = {0};
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    int status;
    waitpid(pid, &status, 0);
    if (n <= 0 || strcmp(buf, "from-exec\n") != 0 || !WIFEXITED(status) || WEXITSTATUS(status)) { errno = EIO; return -1; }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || write(sv[0], "x", 1) != 1 || read(sv[1], buf, 1) != 1) return -1;
    int server = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (server < 0 || bind(server, (struct sockaddr *)&addr, sizeof addr) || listen(server, 1)
        || getsockname(server, (struct sockaddr *)&addr, &len))
        return -1;
    int client = socket(AF_INET, SOCK_STREAM, 0);
    if (client < 0 || connect(client, (struct sockaddr *)&addr, sizeof addr)) return -1;
    int accepted = accept(server, NULL, NULL);
    if (accepted < 0 || send(client, "ping", 4, 0) != 4 || recv(accepted, buf, 4, MSG_WAITALL) != 4) return -1;
    return memcmp(buf, "ping", 4) == 0 ? 0 : (errno = EIO, -1);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *w = argv[i];
        char *eq = strchr(w, ':');  /* word:argument */
        const char *arg = eq ? eq + 1 : "";
        char word[64];
        snprintf(word, sizeof word, "%.*s", eq ? (int)(eq - w) : (int)strlen(w), w);
        long rc;
        char buf[256];
        if (!strcmp(word, "unshare-user")) rc = unshare(CLONE_NEWUSER | CLONE_NEWNS);
        else if (!strcmp(word, "unshare-ns")) rc = unshare(CLONE_NEWNS);
        else if (!strcmp(word, "mount")) rc = mount("none", "/tmp", "tmpfs", 0, NULL);
        else if (!strcmp(word, "clone-newuser")) {
            rc = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
            if (rc == 0) _exit(0);
            if (rc > 0) waitpid((pid_t)rc, NULL, 0);
        } else if (!strcmp(word, "clone3")) {
            unsigned long long args[11] = {0};
            args[4] = SIGCHLD;  /* exit_signal */
            rc = syscall(SYS_clone3, args, sizeof args);
            if (rc == 0) _exit(0);
            if (rc > 0) waitpid((pid_t)rc, NULL, 0);
        } else if (!strcmp(word, "add_key"))
            rc = syscall(SYS_add_key, "user", arg, "planted-by-sandbox", 18, KEY_SPEC_USER_KEYRING);
        else if (!strcmp(word, "keyctl_search"))
            rc = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", arg, 0);
        else if (!strcmp(word, "keyctl_read")) {
            memset(buf, 0, sizeof buf);
            rc = syscall(SYS_keyctl, KEYCTL_READ, atol(arg), buf, sizeof buf - 1);
            if (rc > 0) printf("read:%s\n", buf);
        } else if (!strcmp(word, "request_key"))
            rc = syscall(SYS_request_key, "user", arg, NULL, KEY_SPEC_USER_KEYRING);
        else if (!strcmp(word, "personality_query")) rc = personality(0xffffffff);
        else if (!strcmp(word, "personality_norandom")) rc = personality(ADDR_NO_RANDOMIZE);
        else if (!strcmp(word, "vsock")) rc = socket(AF_VSOCK, SOCK_STREAM, 0);
        else if (!strcmp(word, "alg")) rc = socket(AF_ALG, SOCK_SEQPACKET, 0);
        else if (!strcmp(word, "io_uring")) rc = syscall(SYS_io_uring_setup, 1, buf);
        else if (!strcmp(word, "chroot")) rc = chroot("/");
        else if (!strcmp(word, "work")) rc = ordinary_work();
        else if (!strcmp(word, "int80")) {  /* a 32-bit syscall (i386 getpid) from this 64-bit process */
            long ret = 20;
            __asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
            rc = ret < 0 ? (errno = (int)-ret, -1) : 0;
        }
        else { printf("%s=UNKNOWN\n", word); continue; }
        report(word, rc);
    }
    return 0;
}

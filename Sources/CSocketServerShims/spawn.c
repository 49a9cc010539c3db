// The process spawner of Sources/SocketServer/Deployment (socket activation, re-execution, worker
// processes): fork and exec with listeners at 3, 4, ... and LISTEN_PID set to the child's own pid, which
// posix_spawn cannot do (the pid is unknown before the child exists). See the header for the contract.
#include "CSocketServerShims.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

// Writes `value` in decimal into `text` (at most `size` - 1 digits and a NUL); async-signal-safe.
static void write_decimal(char *text, size_t size, long value) {
    char digits[24];
    int count = 0;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0 && count < (int)sizeof digits);
    size_t used = 0;
    while (count > 0 && used + 1 < size) text[used++] = digits[--count];
    if (size > 0) text[used] = '\0';
}

// The child's side: never returns.
static void become_child(const char *path, char *const argv[], char *const envp[], const int *fds, int count,
                         char *pid_text, size_t pid_text_size, int parent_death_signal, pid_t parent,
                         int report) {
    int error = 0;
    // Everything this step needs stays above the target range 3 .. 3+count-1 until the final dup2s.
    int floor = 3 + count;
    int moved_report = fcntl(report, F_DUPFD_CLOEXEC, floor);
    if (moved_report < 0) _exit(127);
    int moved[count > 0 ? count : 1];
    for (int index = 0; index < count; index++) {
        moved[index] = fcntl(fds[index], F_DUPFD_CLOEXEC, floor);
        if (moved[index] < 0) goto fail;
    }
    for (int index = 0; index < count; index++) {
        // dup2 leaves the new descriptor without FD_CLOEXEC, so it survives execve.
        if (dup2(moved[index], 3 + index) < 0) goto fail;
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (parent_death_signal != 0) {
        if (prctl(PR_SET_PDEATHSIG, parent_death_signal) != 0) goto fail;
        if (getppid() != parent) _exit(127);  // the parent already went away
    }
    if (pid_text != NULL) write_decimal(pid_text, pid_text_size, (long)getpid());
    execve(path, argv, envp);
fail:
    error = errno;
    while (write(moved_report, &error, sizeof error) < 0 && errno == EINTR) {}
    _exit(127);
}

int CSocketServerShims_spawn_inheriting(const char *path, char *const argv[], char *const envp[], const int *fds,
                                        int count, char *pid_text, size_t pid_text_size, int parent_death_signal) {
    if (count < 0 || count > 4096) {
        errno = EINVAL;
        return -1;
    }
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -1;
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        errno = error;
        return -1;
    }
    if (child == 0) {
        become_child(path, argv, envp, fds, count, pid_text, pid_text_size, parent_death_signal, parent, report[1]);
    }
    close(report[1]);
    int child_error = 0;
    ssize_t got;
    do {
        got = read(report[0], &child_error, sizeof child_error);
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof child_error) {
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {}
        errno = child_error;
        return -1;
    }
    return (int)child;
}

char **CSocketServerShims_environment(void) { return environ; }

int CSocketServerShims_set_child_subreaper(int on) { return prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0); }

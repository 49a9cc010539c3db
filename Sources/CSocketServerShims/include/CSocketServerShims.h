// Thin C wrappers for the few Linux calls SocketServer (and its tests) need that Swift's Glibc module does not
// declare (glibc declares them only under _GNU_SOURCE, or, for pidfd_open, only since glibc 2.36).
//
// Calling them through real C declarations, instead of `@_silgen_name`, uses the C calling convention and
// binds to symbols every glibc since 2.34 has: pidfd_open goes through syscall(2), so no GLIBC_2.36 symbol
// is needed. This header needs no feature macro; the .c file defines _GNU_SOURCE for itself.
#ifndef CSOCKETSERVERSHIMS_H
#define CSOCKETSERVERSHIMS_H

// Only compiler-provided headers here: a system header included by this module (with or without
// _GNU_SOURCE) would make the module own declarations such as SOCK_STREAM, which files importing only Glibc
// then fail to see, depending on the order in which modules are built. So the prototypes use plain C types
// with the same layout as the Linux ones: `struct sockaddr *` as `void *`, `socklen_t` (unsigned int),
// `pid_t` (int), `pthread_t` (unsigned long).
#include <stddef.h>

/// accept4(2): accepts a connection and sets SOCK_CLOEXEC / SOCK_NONBLOCK on it in the same call.
/// Returns the new descriptor, or -1 with errno set.
int CSocketServerShims_accept4(int fd, void *address, unsigned int *length, int flags);

/// sched_getaffinity(2) into a caller-owned mask of `size` bytes (a cpu_set_t or larger).
/// Returns 0, or -1 with errno set.
int CSocketServerShims_sched_getaffinity(int pid, size_t size, void *mask);

/// pthread_setname_np(3): names `thread` (at most 15 bytes plus the terminator on Linux).
/// Returns 0 or an error number.
int CSocketServerShims_pthread_setname_np(unsigned long thread, const char *name);

/// pidfd_open(2) through syscall(SYS_pidfd_open, pid, flags) (Linux 5.3+): a close-on-exec descriptor that
/// becomes readable when `pid` exits. Returns it, or -1 with errno set (ENOSYS on older kernels).
int CSocketServerShims_pidfd_open(int pid, unsigned int flags);

/// posix_spawn_file_actions_addclosefrom_np(3) (glibc 2.34): the spawned child closes every descriptor from
/// `lowest` up. `actions` is a `posix_spawn_file_actions_t *`. Returns 0 or an error number. Used by the tests.
int CSocketServerShims_posix_spawn_file_actions_addclosefrom_np(void *actions, int lowest);

/// pipe2(2): a pipe whose two ends get `flags` (O_CLOEXEC, O_NONBLOCK) in the same call; `ends` holds two
/// ints. Returns 0, or -1 with errno set. Used by the tests.
int CSocketServerShims_pipe2(int *ends, int flags);

/// setsockopt(2) of a `struct timeval` option (SO_RCVTIMEO or SO_SNDTIMEO) to `seconds` + `microseconds`
/// (both 0: no limit). Swift sees `struct timeval` as owned by whichever C module included <sys/time.h> first,
/// which under MemberImportVisibility may be one a file does not import, so Swift code sets it here.
/// Returns 0, or -1 with errno set.
int CSocketServerShims_set_socket_timeout(int fd, int option, long long seconds, long long microseconds);

/// nanosleep(2) for `seconds` + `nanoseconds`, the whole of it (an interrupted sleep goes on for what is
/// left). For the same reason as above (`struct timespec`'s owner), Swift code sleeps through this.
void CSocketServerShims_sleep(long long seconds, long long nanoseconds);

/// Writes a forked child's 32-byte exit report to `fd` with one write(2): the four values as little-endian
/// 64-bit words. In C so that the packing and the write in a forked child's last steps need no Swift array or
/// generic code (a lock of the runtime that another thread held at fork time would never be released in the
/// child). Returns what write(2) returns.
long long CSocketServerShims_write_report(int fd, unsigned long long first, unsigned long long second,
                                          unsigned long long third, unsigned long long fourth);

/// sendfile(2): copies up to `count` bytes of the file `in_fd` from `*offset` (advanced by what was sent) to
/// the socket `out_fd`, inside the kernel. Returns the bytes sent (0 at the file's end), or -1 with errno set
/// (EAGAIN when a non-blocking socket is full, or a blocking one's SO_SNDTIMEO expired).
long long CSocketServerShims_sendfile(int out_fd, int in_fd, long long *offset, size_t count);

/// Starts `path` as a new process that inherits `fds` as descriptors 3, 4, ... (in that order, close-on-exec
/// cleared), the systemd socket-activation layout: fork(2), then in the child only async-signal-safe calls
/// (fcntl, dup2, sigprocmask, prctl, getpid, execve). Before execve the child writes its own pid, in decimal
/// and NUL-terminated, into `pid_text` (`pid_text_size` bytes, normally the value part of a "LISTEN_PID="
/// string inside `envp`), empties its signal mask and, when `parent_death_signal` is not 0, asks for that
/// signal when the calling thread exits (PR_SET_PDEATHSIG). Returns the child's pid once execve succeeded,
/// or -1 with errno set (from fork, or the child's failed execve, in which case the child is reaped).
int CSocketServerShims_spawn_inheriting(const char *path, char *const argv[], char *const envp[], const int *fds,
                                        int count, char *pid_text, size_t pid_text_size, int parent_death_signal);

/// The process environment (`environ`), which Swift 6 will not read as a global.
char **CSocketServerShims_environment(void);

/// prctl(PR_SET_CHILD_SUBREAPER, on): orphaned descendants are re-parented to this process. Returns 0, or -1
/// with errno set. Used by the tests of processes that re-execute themselves.
int CSocketServerShims_set_child_subreaper(int on);

/// getsockopt(2) of SO_PEERCRED (struct ucred needs _GNU_SOURCE): the connected Unix peer's pid, uid and
/// gid. Returns 0, or -1 with errno set.
int CSocketServerShims_peer_credentials(int fd, int *pid, unsigned int *uid, unsigned int *gid);

/// The most datagrams one call of `CSocketServerShims_receive_batch` or `CSocketServerShims_send_batch` takes.
#define CSOCKETSERVERSHIMS_BATCH_MAX 64

/// Prepares the recvmmsg(2) headers of a receive batch once: `count` (at most CSOCKETSERVERSHIMS_BATCH_MAX)
/// slots, datagram i into `buffers + i * slot_size` (at most `slot_size` bytes; a longer one is cut, as
/// recvfrom cuts it), its sender into `addresses + i * address_size` (a sockaddr_storage each). Returns the
/// headers (free them with CSocketServerShims_receive_batch_free), or NULL when out of memory.
void *CSocketServerShims_receive_batch_create(void *buffers, size_t slot_size, void *addresses, size_t address_size,
                                              unsigned int count);

/// Frees what CSocketServerShims_receive_batch_create returned (NULL does nothing).
void CSocketServerShims_receive_batch_free(void *batch);

/// One recvmmsg(2) of up to `count` datagrams (at most the batch's count) into the prepared slots, with
/// `flags` (MSG_DONTWAIT: none is waited for). Datagram i's kept length goes to `lengths[i]`, its sender's
/// address length to `address_lengths[i]`. Returns how many arrived, or -1 with errno set.
int CSocketServerShims_receive_batch(void *batch, int fd, unsigned int count, int flags, size_t *lengths,
                                     unsigned int *address_lengths);

/// sendmmsg(2) of `count` (at most CSOCKETSERVERSHIMS_BATCH_MAX) datagrams in one call: datagram i is
/// `lengths[i]` bytes at `payloads[i]`, to the address at `addresses + i * address_size` of length
/// `address_lengths[i]`. Returns how many were sent (the first ones), or -1 with errno set when none was.
int CSocketServerShims_send_batch(int fd, const void *const *payloads, const size_t *lengths, const void *addresses,
                                  size_t address_size, const unsigned int *address_lengths, unsigned int count,
                                  int flags);

#endif

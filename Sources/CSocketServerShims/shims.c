// _GNU_SOURCE comes from Package.swift's cSettings, so <sys/socket.h>, <sched.h>, <pthread.h>, <spawn.h> and
// <unistd.h> declare accept4, sched_getaffinity, pthread_setname_np, the _np spawn action and pipe2 here.
#include "CSocketServerShims.h"

#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

// The syscall number is 434 on every Linux architecture (it was allocated after the numbers were unified);
// old kernel headers lack the name.
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

_Static_assert(sizeof(socklen_t) == sizeof(unsigned int), "socklen_t is unsigned int");
_Static_assert(sizeof(pid_t) == sizeof(int), "pid_t is int");
_Static_assert(sizeof(pthread_t) == sizeof(unsigned long), "pthread_t is unsigned long");

int CSocketServerShims_accept4(int fd, void *address, unsigned int *length, int flags) {
    return accept4(fd, (struct sockaddr *)address, (socklen_t *)length, flags);
}

int CSocketServerShims_sched_getaffinity(int pid, size_t size, void *mask) {
    return sched_getaffinity((pid_t)pid, size, (cpu_set_t *)mask);
}

int CSocketServerShims_pthread_setname_np(unsigned long thread, const char *name) {
    return pthread_setname_np((pthread_t)thread, name);
}

int CSocketServerShims_pidfd_open(int pid, unsigned int flags) {
    return (int)syscall(SYS_pidfd_open, (pid_t)pid, flags);
}

int CSocketServerShims_posix_spawn_file_actions_addclosefrom_np(void *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, lowest);
}

int CSocketServerShims_pipe2(int *ends, int flags) {
    return pipe2(ends, flags);
}

int CSocketServerShims_set_socket_timeout(int fd, int option, long long seconds, long long microseconds) {
    struct timeval interval = {.tv_sec = (time_t)seconds, .tv_usec = (suseconds_t)microseconds};
    return setsockopt(fd, SOL_SOCKET, option, &interval, sizeof interval);
}

void CSocketServerShims_sleep(long long seconds, long long nanoseconds) {
    struct timespec request = {.tv_sec = (time_t)seconds, .tv_nsec = (long)nanoseconds};
    struct timespec remaining;
    while (nanosleep(&request, &remaining) != 0 && errno == EINTR) request = remaining;
}

long long CSocketServerShims_sendfile(int out_fd, int in_fd, long long *offset, size_t count) {
    off_t position = (off_t)*offset;
    ssize_t sent = sendfile(out_fd, in_fd, &position, count);
    *offset = (long long)position;
    return (long long)sent;
}

int CSocketServerShims_peer_credentials(int fd, int *pid, unsigned int *uid, unsigned int *gid) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

struct receive_batch {
    unsigned int count;
    socklen_t address_size;
    struct mmsghdr messages[CSOCKETSERVERSHIMS_BATCH_MAX];
    struct iovec vectors[CSOCKETSERVERSHIMS_BATCH_MAX];
};

void *CSocketServerShims_receive_batch_create(void *buffers, size_t slot_size, void *addresses, size_t address_size,
                                              unsigned int count) {
    struct receive_batch *batch = calloc(1, sizeof(struct receive_batch));
    if (batch == NULL) return NULL;
    if (count > CSOCKETSERVERSHIMS_BATCH_MAX) count = CSOCKETSERVERSHIMS_BATCH_MAX;
    batch->count = count;
    batch->address_size = (socklen_t)address_size;
    for (unsigned int i = 0; i < count; i++) {
        batch->vectors[i].iov_base = (char *)buffers + (size_t)i * slot_size;
        batch->vectors[i].iov_len = slot_size;
        batch->messages[i].msg_hdr.msg_name = (char *)addresses + (size_t)i * address_size;
        batch->messages[i].msg_hdr.msg_namelen = (socklen_t)address_size;
        batch->messages[i].msg_hdr.msg_iov = &batch->vectors[i];
        batch->messages[i].msg_hdr.msg_iovlen = 1;
    }
    return batch;
}

void CSocketServerShims_receive_batch_free(void *batch) { free(batch); }

int CSocketServerShims_receive_batch(void *opaque, int fd, unsigned int count, int flags, size_t *lengths,
                                     unsigned int *address_lengths) {
    struct receive_batch *batch = opaque;
    if (count > batch->count) count = batch->count;
    int received = recvmmsg(fd, batch->messages, count, flags, NULL);
    for (int i = 0; i < received; i++) {
        lengths[i] = batch->messages[i].msg_len;
        address_lengths[i] = batch->messages[i].msg_hdr.msg_namelen;
        // The kernel wrote the sender's length here: the next receive needs the full size again.
        batch->messages[i].msg_hdr.msg_namelen = batch->address_size;
    }
    return received;
}

int CSocketServerShims_send_batch(int fd, const void *const *payloads, const size_t *lengths, const void *addresses,
                                  size_t address_size, const unsigned int *address_lengths, unsigned int count,
                                  int flags) {
    struct mmsghdr messages[CSOCKETSERVERSHIMS_BATCH_MAX];
    struct iovec vectors[CSOCKETSERVERSHIMS_BATCH_MAX];
    if (count > CSOCKETSERVERSHIMS_BATCH_MAX) count = CSOCKETSERVERSHIMS_BATCH_MAX;
    for (unsigned int i = 0; i < count; i++) {
        vectors[i].iov_base = (void *)payloads[i];
        vectors[i].iov_len = lengths[i];
        messages[i].msg_hdr = (struct msghdr){
            .msg_name = (void *)((const char *)addresses + (size_t)i * address_size),
            .msg_namelen = address_lengths[i],
            .msg_iov = &vectors[i],
            .msg_iovlen = 1,
        };
        messages[i].msg_len = 0;
    }
    return sendmmsg(fd, messages, count, flags);
}

long long CSocketServerShims_write_report(int fd, unsigned long long first, unsigned long long second,
                                          unsigned long long third, unsigned long long fourth) {
    unsigned long long words[4] = {first, second, third, fourth};
    unsigned char bytes[32];
    for (int word = 0; word < 4; word++) {
        for (int index = 0; index < 8; index++) bytes[word * 8 + index] = (unsigned char)(words[word] >> (8 * index));
    }
    return (long long)write(fd, bytes, sizeof bytes);
}

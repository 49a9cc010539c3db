/* epoll for the perf harness's load generator (Swift's Glibc module does not export <sys/epoll.h>). */
#ifndef C_PERF_EPOLL_H
#define C_PERF_EPOLL_H
#include <sys/epoll.h>
#endif

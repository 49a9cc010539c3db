// The libevent 2.1 headers the event-loop layer needs (the other C surface, Sources/CSocketServerShims, wraps
// a few Linux calls). Nothing but the Swift files in Sources/SocketServer/EventLoop imports this module.
// Linked libraries: libevent_core (through pkg-config) and libevent_pthreads (module.modulemap), never the
// full libevent, so one copy of libevent is loaded.
#ifndef CLIBEVENTSHIM_H
#define CLIBEVENTSHIM_H

// libevent's event-config.h defines _GNU_SOURCE before it includes system headers. Inside this Clang module
// that would parse <sys/select.h> and friends with other feature macros than Swift's Glibc module, and the two
// modules would then disagree on fd_set (`fds_bits` against `__fds_bits`), failing the build depending on the
// order modules are built in. Including the system headers first settles <features.h> as Glibc sees it.
#include <sys/types.h>
#include <sys/time.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netdb.h>
#include <stdint.h>
#include <stdarg.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <event2/util.h>

#endif

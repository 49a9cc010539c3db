// The only C surface of SocketServer: the libevent 2.1 headers the event-loop layer needs.
// Nothing but the Swift files in Sources/SocketServer/EventLoop imports this module.
#ifndef CLIBEVENTSHIM_H
#define CLIBEVENTSHIM_H

#include <event2/event.h>
#include <event2/thread.h>
#include <event2/util.h>

#endif

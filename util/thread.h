/*
 * thread: starting a worker thread that takes no signals.
 *
 * A process-directed signal (SIGTERM, SIGINT, SIGPIPE from a write to a
 * reset socket) goes to any thread that does not block it. A worker must
 * not be that thread: the program's handler would run where nobody waits
 * for it (libfuse's loop, waiting on its main thread, would then never
 * see the signal), and a default action such as SIGPIPE's would kill the
 * whole program. So workers start with every signal blocked.
 */
#ifndef QUORUM_THREAD_H
#define QUORUM_THREAD_H

#include <pthread.h>

/* pthread_create() with every signal blocked in the new thread; the
 * caller's mask is left as it was. 0 or an errno value. */
int thread_start_quiet(pthread_t *t, void *(*fn)(void *), void *arg);

#endif

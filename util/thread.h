/*
 * thread: starting a worker thread that takes no signals; a latch.
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

/*
 * A latch: how many answers are still to come, and a wait until none is,
 * for a thread that sends several asynchronous requests at once and then
 * waits for every callback. What a callback writes before latch_done() the
 * waiter sees once latch_wait() has returned. A callback must not touch
 * the latch after latch_done(): the waiter may return at once, and the
 * latch usually lives on its stack.
 */
struct latch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned left; /* under mu */
};

void latch_init(struct latch *l);
/* One more answer to wait for. Call it before the send: the answer may
 * come before the send returns. */
void latch_add(struct latch *l);
/* One answer came; also for a send that failed and will not be answered. */
void latch_done(struct latch *l);
/* Waits until every latch_add() has had its latch_done(), then releases
 * the latch (latch_init() before any further use). */
void latch_wait(struct latch *l);

#endif

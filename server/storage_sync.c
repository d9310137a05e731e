/*
 * storage_sync: the storage module's sync thread — the one piece of it
 * that runs beside the loop. It sleeps until the loop has appended
 * something (s->pending), then has storage_sync_batch() (storage.c)
 * write the batch and wake the loop, and so on until it is stopped.
 *
 * Kept apart from storage.c so that everything else in storage runs as
 * it is in the simulation of whole members (tests/msim), which replaces
 * these functions and calls storage_sync_batch() itself, when its seed
 * says a sync completes.
 */
#include "storage_int.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>

static void *sync_main(void *arg)
{
	struct storage *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->pending && !s->stopping) {
			/* Whoever clears sync_waiting posts `wake` once, after
			 * its unlock; a post before our sem_wait is kept. */
			s->sync_waiting = true;
			pthread_mutex_unlock(&s->lock);
			while (sem_wait(&s->wake) != 0)
				; /* EINTR */
			pthread_mutex_lock(&s->lock);
		}
		if (!s->pending)
			break; /* stopping, and everything queued is written */
		pthread_mutex_unlock(&s->lock);
		storage_sync_batch(s);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int storage_sync_start(struct storage *s)
{
	int r = -pthread_create(&s->thread, NULL, sync_main, s);
	if (r == 0)
		s->thread_started = true;
	return r;
}

void storage_sync_stop(struct storage *s)
{
	if (!s->thread_started)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	bool wake = s->sync_waiting;
	s->sync_waiting = false;
	pthread_mutex_unlock(&s->lock);
	if (wake)
		sem_post(&s->wake);
	pthread_join(s->thread, NULL);
	s->thread_started = false;
}

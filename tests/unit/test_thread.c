/* thread: a quiet worker blocks every signal; a latch waits for every
 * answer, whichever thread gives it and however late. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "thread.h"

static void *mask_of(void *arg)
{
	sigset_t *out = arg;
	pthread_sigmask(SIG_BLOCK, NULL, out);
	return NULL;
}

static void test_quiet_worker(void **state)
{
	(void)state;
	sigset_t before, after, worker;
	sigemptyset(&before);
	pthread_sigmask(SIG_SETMASK, &before, NULL);
	pthread_t t;
	assert_int_equal(thread_start_quiet(&t, mask_of, &worker), 0);
	pthread_join(t, NULL);
	assert_true(sigismember(&worker, SIGTERM));
	assert_true(sigismember(&worker, SIGPIPE));
	assert_true(sigismember(&worker, SIGINT));
	pthread_sigmask(SIG_BLOCK, NULL, &after);
	assert_false(sigismember(&after, SIGTERM)); /* the caller's mask as it was */
}

/* An "answer" given by another thread after a delay. */
struct answer {
	struct latch *l;
	int *slot;
	int value;
	long delay_us;
};

static void *answer(void *arg)
{
	struct answer *a = arg;
	struct timespec ts = { .tv_sec = 0, .tv_nsec = a->delay_us * 1000 };
	nanosleep(&ts, NULL);
	*a->slot = a->value;
	latch_done(a->l);
	return NULL;
}

static void test_latch_waits_for_every_answer(void **state)
{
	(void)state;
	enum { N = 16 };
	for (int round = 0; round < 20; round++) {
		struct latch l;
		latch_init(&l);
		int got[N] = { 0 };
		struct answer a[N];
		pthread_t t[N];
		for (int i = 0; i < N; i++) {
			a[i] = (struct answer){ &l, &got[i], i + 1, (long)((i * 7 + round) % 5) * 200 };
			latch_add(&l);
			assert_int_equal(thread_start_quiet(&t[i], answer, &a[i]), 0);
		}
		latch_wait(&l);
		for (int i = 0; i < N; i++)
			assert_int_equal(got[i], i + 1); /* written before latch_done */
		for (int i = 0; i < N; i++)
			pthread_join(t[i], NULL);
	}
}

static void test_latch_answered_in_the_send(void **state)
{
	(void)state;
	/* Answers that come before the sender moves on (an immediate
	 * callback, a send that failed), and no answer at all. */
	struct latch l;
	latch_init(&l);
	latch_add(&l);
	latch_done(&l);
	latch_add(&l);
	latch_add(&l);
	latch_done(&l);
	latch_done(&l);
	latch_wait(&l);
	latch_init(&l);
	latch_wait(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quiet_worker),
		cmocka_unit_test(test_latch_waits_for_every_answer),
		cmocka_unit_test(test_latch_answered_in_the_send),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * expect: the changes this daemon made itself, so that the watch events
 * they raise are not echoed as remote ones (see echo.c).
 *
 * A handler calls expect_change() before it sends a change and
 * expect_undo() if the change failed; the watch callback consumes the
 * matching event (expect_consume()). A sequential create is expected as
 * its prefix (a negative event type): any name of the prefix and ten
 * digits matches. Entries expire after EXPECT_TTL_S, so one whose event
 * never came (a lost connection) does not hide a later remote change for
 * long. `mu` guards the array.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs.h"

#define EXPECT_TTL_S 30.0

struct expect {
	char *path;
	int32_t type;   /* ZK_EVENT_*; negative: a sequential create of path* */
	int count;      /* changes of this path and type not seen yet */
	double deadline;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void expect_init(struct expect_table *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
}

/* Under mu. */
static void ex_remove(struct expect_table *t, size_t i)
{
	free(t->v[i].path);
	t->v[i] = t->v[--t->n];
}

void expect_shutdown(struct expect_table *t)
{
	pthread_mutex_lock(&t->mu);
	while (t->n)
		ex_remove(t, 0);
	free(t->v);
	t->v = NULL;
	t->cap = 0;
	pthread_mutex_unlock(&t->mu);
}

void expect_change(struct expect_table *t, const char *path, int32_t type)
{
	pthread_mutex_lock(&t->mu);
	double now = now_s();
	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i].type == type && strcmp(t->v[i].path, path) == 0) {
			t->v[i].count++;
			t->v[i].deadline = now + EXPECT_TTL_S;
			goto out;
		}
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct expect *n = realloc(t->v, cap * sizeof(*n));
		if (!n)
			goto out;
		t->v = n;
		t->cap = cap;
	}
	t->v[t->n] = (struct expect){ strdup(path), type, 1, now + EXPECT_TTL_S };
	if (t->v[t->n].path)
		t->n++;
out:
	pthread_mutex_unlock(&t->mu);
}

void expect_undo(struct expect_table *t, const char *path, int32_t type)
{
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i].type == type && strcmp(t->v[i].path, path) == 0) {
			if (--t->v[i].count == 0)
				ex_remove(t, i);
			break;
		}
	}
	pthread_mutex_unlock(&t->mu);
}

/* Whether path is prefix and ten digits (a sequential node's name). */
static bool seq_match(const char *prefix, const char *path)
{
	size_t pl = strlen(prefix);
	if (strncmp(prefix, path, pl) != 0 || strlen(path) != pl + 10)
		return false;
	for (size_t i = pl; i < pl + 10; i++)
		if (path[i] < '0' || path[i] > '9')
			return false;
	return true;
}

bool expect_consume(struct expect_table *t, const char *path, int32_t type)
{
	bool found = false;
	pthread_mutex_lock(&t->mu);
	double now = now_s();
	for (size_t i = 0; i < t->n;) {
		struct expect *x = &t->v[i];
		if (x->deadline < now) {
			ex_remove(t, i);
			continue;
		}
		if (!found && ((x->type == type && strcmp(x->path, path) == 0) ||
			       (x->type == -type && seq_match(x->path, path)))) {
			found = true;
			if (--x->count == 0) {
				ex_remove(t, i);
				continue;
			}
		}
		i++;
	}
	pthread_mutex_unlock(&t->mu);
	return found;
}

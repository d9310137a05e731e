/*
 * msim_os: what a member's code asks of libuv and of the system, on the
 * simulation's time.
 *
 * libuv: only what quorumd's replica, snapsync and storage use: timers,
 * prepares, checks, async handles and the threadpool's work, with libuv's
 * order within a turn: due timers (earliest first, then in start order),
 * prepares, async callbacks (where libuv polls), checks, then close
 * callbacks. Work queued for the
 * threadpool runs when the simulation says (msim_loop_work()). A handle is
 * found by its address in its loop's table; uv_loop_t.data points to the
 * table. The member's clock is the simulation's plus its own offset;
 * clock_gettime() and getrandom() answer for the member whose code runs
 * (msim_current), so prep's times and replica's seeds follow the seed.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "msim.h"

#define WALL_BASE_MS 1767225600000ll /* 2026-01-01, the wall clock's zero */

static int64_t now_ms(void)
{
	const struct member *m = msim_current;
	return m ? m->clock_off_ms + W->now_ms * m->clock_rate / 1000 : W->now_ms;
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
	int64_t ms = now_ms() + (clk == CLOCK_REALTIME ? WALL_BASE_MS : 0);
	ts->tv_sec = ms / 1000;
	ts->tv_nsec = (long)(ms % 1000) * 1000000;
	return 0;
}

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
	(void)flags;
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)msim_next(&W->r);
	return (ssize_t)len;
}

uint64_t uv_hrtime(void)
{
	return (uint64_t)now_ms() * 1000000u;
}

uint64_t uv_now(const uv_loop_t *loop)
{
	(void)loop;
	return (uint64_t)now_ms();
}

void msim_loop_init(struct msim_loop *l)
{
	memset(l, 0, sizeof(*l));
	l->loop.data = l;
}

static struct msim_handle *slot_of(const uv_handle_t *h)
{
	struct msim_loop *l = h->loop->data;
	for (int i = 0; i < MSIM_HANDLES; i++)
		if (l->h[i].h == h)
			return &l->h[i];
	return NULL;
}

static struct msim_handle *add(uv_loop_t *loop, uv_handle_t *h, enum msim_kind kind)
{
	struct msim_loop *l = loop->data;
	h->loop = loop;
	for (int i = 0; i < MSIM_HANDLES; i++)
		if (l->h[i].h == NULL) {
			l->h[i] = (struct msim_handle){ .h = h, .kind = kind };
			return &l->h[i];
		}
	msim_fail("more than %d libuv handles on one member", MSIM_HANDLES);
	return NULL;
}

int uv_timer_init(uv_loop_t *loop, uv_timer_t *t)
{
	return add(loop, (uv_handle_t *)t, MSIM_TIMER) ? 0 : UV_ENOMEM;
}

int uv_prepare_init(uv_loop_t *loop, uv_prepare_t *p)
{
	return add(loop, (uv_handle_t *)p, MSIM_PREPARE) ? 0 : UV_ENOMEM;
}

int uv_check_init(uv_loop_t *loop, uv_check_t *c)
{
	return add(loop, (uv_handle_t *)c, MSIM_CHECK) ? 0 : UV_ENOMEM;
}

int uv_async_init(uv_loop_t *loop, uv_async_t *a, uv_async_cb cb)
{
	struct msim_handle *s = add(loop, (uv_handle_t *)a, MSIM_ASYNC);
	if (s == NULL)
		return UV_ENOMEM;
	s->active = true;
	s->async_cb = cb;
	return 0;
}

int uv_async_send(uv_async_t *a)
{
	struct msim_handle *s = slot_of((uv_handle_t *)a);
	if (s && s->active)
		s->sent = true;
	return 0;
}

/* Whether a handle keeps the loop alive does not matter here. */
void uv_ref(uv_handle_t *h)
{
	(void)h;
}

void uv_unref(uv_handle_t *h)
{
	(void)h;
}

int uv_queue_work(uv_loop_t *loop, uv_work_t *req, uv_work_cb work_cb,
		  uv_after_work_cb after_cb)
{
	struct msim_loop *l = loop->data;
	req->loop = loop;
	for (size_t i = 0; i < sizeof(l->work) / sizeof(l->work[0]); i++)
		if (l->work[i].req == NULL) {
			l->work[i] = (struct msim_work){ req, work_cb, after_cb, false };
			return 0;
		}
	return UV_EBUSY;
}

int uv_cancel(uv_req_t *req)
{
	struct msim_loop *l = ((uv_work_t *)req)->loop->data; /* only work is cancelled */
	for (size_t i = 0; i < sizeof(l->work) / sizeof(l->work[0]); i++)
		if (l->work[i].req == (uv_work_t *)req && !l->work[i].cancelled) {
			l->work[i].cancelled = true;
			return 0;
		}
	return UV_EBUSY;
}

bool msim_loop_work_queued(const struct msim_loop *l)
{
	for (size_t i = 0; i < sizeof(l->work) / sizeof(l->work[0]); i++)
		if (l->work[i].req && !l->work[i].cancelled)
			return true;
	return false;
}

void msim_loop_work(struct msim_loop *l)
{
	for (size_t i = 0; i < sizeof(l->work) / sizeof(l->work[0]); i++)
		if (l->work[i].req && !l->work[i].cancelled) {
			struct msim_work w = l->work[i];
			l->work[i] = (struct msim_work){ 0 };
			w.work_cb(w.req);
			w.after_cb(w.req, 0);
			return;
		}
}

int uv_timer_start(uv_timer_t *t, uv_timer_cb cb, uint64_t timeout, uint64_t repeat)
{
	struct msim_handle *s = slot_of((uv_handle_t *)t);
	if (s == NULL || s->closing)
		return -EINVAL;
	struct msim_loop *l = t->loop->data;
	s->active = true;
	s->timer_cb = cb;
	s->due_ms = (uint64_t)now_ms() + timeout;
	s->repeat_ms = repeat;
	s->order = ++l->started;
	return 0;
}

int uv_timer_stop(uv_timer_t *t)
{
	struct msim_handle *s = slot_of((uv_handle_t *)t);
	if (s)
		s->active = false;
	return 0;
}

int uv_prepare_start(uv_prepare_t *p, uv_prepare_cb cb)
{
	struct msim_handle *s = slot_of((uv_handle_t *)p);
	if (s == NULL || s->closing)
		return -EINVAL;
	s->active = true;
	s->prepare_cb = cb;
	return 0;
}

int uv_prepare_stop(uv_prepare_t *p)
{
	struct msim_handle *s = slot_of((uv_handle_t *)p);
	if (s)
		s->active = false;
	return 0;
}

int uv_check_start(uv_check_t *c, uv_check_cb cb)
{
	struct msim_handle *s = slot_of((uv_handle_t *)c);
	if (s == NULL || s->closing)
		return -EINVAL;
	if (!s->active) {
		struct msim_loop *l = c->loop->data;
		s->order = ++l->started;
	}
	s->active = true;
	s->check_cb = cb;
	return 0;
}

int uv_check_stop(uv_check_t *c)
{
	struct msim_handle *s = slot_of((uv_handle_t *)c);
	if (s)
		s->active = false;
	return 0;
}

int uv_is_active(const uv_handle_t *h)
{
	struct msim_handle *s = slot_of(h);
	return s && s->active;
}

void uv_close(uv_handle_t *h, uv_close_cb cb)
{
	struct msim_handle *s = slot_of(h);
	if (s == NULL || s->closing) {
		msim_fail("uv_close of a handle not open");
		return;
	}
	s->active = false;
	s->closing = true;
	s->close_cb = cb;
}

/* The due timer that runs first, or NULL. */
static struct msim_handle *next_due(struct msim_loop *l, uint64_t now, uint64_t turn)
{
	struct msim_handle *best = NULL;
	for (int i = 0; i < MSIM_HANDLES; i++) {
		struct msim_handle *s = &l->h[i];
		if (!s->h || s->kind != MSIM_TIMER || !s->active || s->due_ms > now || s->order > turn)
			continue;
		if (!best || s->due_ms < best->due_ms ||
		    (s->due_ms == best->due_ms && s->order < best->order))
			best = s;
	}
	return best;
}

bool msim_loop_turn(struct msim_loop *l)
{
	bool ran = false;
	uint64_t now = (uint64_t)now_ms();
	/* Timers started during this turn wait for the next, as in libuv. */
	uint64_t turn = l->started;
	struct msim_handle *s;
	while ((s = next_due(l, now, turn)) != NULL) {
		if (s->repeat_ms) {
			s->due_ms = now + s->repeat_ms;
			s->order = ++l->started;
		} else {
			s->active = false;
		}
		s->timer_cb((uv_timer_t *)s->h);
		ran = true;
	}
	for (size_t i = 0; i < sizeof(l->work) / sizeof(l->work[0]); i++)
		if (l->work[i].req && l->work[i].cancelled) {
			struct msim_work w = l->work[i];
			l->work[i] = (struct msim_work){ 0 };
			w.after_cb(w.req, UV_ECANCELED);
			ran = true;
		}
	for (int i = 0; i < MSIM_HANDLES; i++) {
		s = &l->h[i];
		if (s->h && s->kind == MSIM_PREPARE && s->active) {
			s->prepare_cb((uv_prepare_t *)s->h);
			ran = true;
		}
	}
	for (int i = 0; i < MSIM_HANDLES; i++) {
		s = &l->h[i];
		if (s->h && s->kind == MSIM_ASYNC && s->sent) {
			s->sent = false;
			s->async_cb((uv_async_t *)s->h);
			ran = true;
		}
	}
	for (int i = 0; i < MSIM_HANDLES; i++) {
		s = &l->h[i];
		if (s->h && s->kind == MSIM_CHECK && s->active) {
			s->check_cb((uv_check_t *)s->h);
			ran = true;
		}
	}
	for (int i = 0; i < MSIM_HANDLES; i++) {
		s = &l->h[i];
		if (s->h && s->closing) {
			uv_handle_t *h = s->h;
			uv_close_cb cb = s->close_cb;
			*s = (struct msim_handle){ 0 };
			if (cb)
				cb(h);
			ran = true;
		}
	}
	return ran;
}

void msim_loop_drop(struct msim_loop *l)
{
	for (int i = 0; i < MSIM_HANDLES; i++)
		l->h[i] = (struct msim_handle){ 0 };
	for (size_t i = 0; i < sizeof(l->work) / sizeof(l->work[0]); i++)
		l->work[i] = (struct msim_work){ 0 };
}

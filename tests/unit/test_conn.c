/*
 * Unit tests for server/conn: accepting client connections, on a real
 * loopback listener and a real libuv loop.
 *
 * conn.c is compiled into this file with calloc routed through a wrapper
 * that can fail the Nth allocation (tree.c's technique), to prove that a
 * connection there is no memory for is refused on its own and the
 * listener keeps accepting. The server above conn.c is stood in for by a
 * conn_handler that counts what it is handed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

static long calloc_fail_after = -1; /* fail the calloc after this many; -1 never */
static bool calloc_fails;           /* fail every one */

static void *t_calloc(size_t n, size_t m)
{
	if (calloc_fails || (calloc_fail_after >= 0 && calloc_fail_after-- == 0))
		return NULL;
	return calloc(n, m);
}

#define calloc(n, m) t_calloc(n, m)
#include "conn.c"
#undef calloc

static struct server srv;
static struct config cfg;
static int frames, closes;

static bool h_admin(struct conn *c, const uint8_t word[4])
{
	(void)c;
	(void)word;
	return false;
}

static void h_frame(struct conn *c, const uint8_t *frame, size_t len)
{
	(void)c;
	(void)frame;
	(void)len;
	frames++;
}

static void h_closed(struct conn *c)
{
	(void)c;
	closes++;
}

static const struct conn_handler handler = {
	.admin = h_admin, .connect = h_frame, .frame = h_frame, .closed = h_closed,
};

static int listen_port(void)
{
	struct sockaddr_in a;
	int len = sizeof(a);
	assert_int_equal(uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

/* A blocking client socket connected to the listener (the kernel completes
 * the handshake from its backlog; the loop accepts it later). */
static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(listen_port()),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static size_t count_conns(void)
{
	size_t n = 0;
	LIST_FOR_EACH(l, &srv.conns) n++;
	return n;
}

/* Runs the loop until cond() holds; fails after 2000 turns. */
static void run_until(bool (*cond)(void))
{
	for (int i = 0; i < 2000 && !cond(); i++) {
		uv_run(srv.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_true(cond());
}

static size_t want_conns;
static bool conns_reached(void)
{
	return count_conns() == want_conns;
}

static bool refuse_done(void)
{
	return !srv.refusing;
}

static int setup(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.client_address, "127.0.0.1");
	cfg.client_port = 0;
	cfg.jute_max_buffer = 1 << 20;
	cfg.global_outstanding_limit = 1000;
	cfg.max_client_output = 4 << 20;
	cfg.sessionless_timeout_ms = 10000;
	srv.cfg = &cfg;
	srv.loop = malloc(sizeof(*srv.loop));
	assert_non_null(srv.loop);
	uv_loop_init(srv.loop);
	list_init(&srv.conns);
	list_init(&srv.dirty);
	frames = closes = 0;
	calloc_fail_after = -1;
	calloc_fails = false;
	assert_int_equal(conn_listen(&srv, &handler), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	while (!list_empty(&srv.conns))
		conn_close(CONTAINER_OF(srv.conns.next, struct conn, link));
	srv.stopping = true;
	uv_close((uv_handle_t *)&srv.listener, NULL);
	uv_close((uv_handle_t *)&srv.flush, NULL);
	uv_close((uv_handle_t *)&srv.conn_sweep, NULL);
	for (int i = 0; i < 100 && uv_run(srv.loop, UV_RUN_NOWAIT); i++)
		;
	assert_int_equal(uv_loop_close(srv.loop), 0);
	free(srv.loop);
	return 0;
}

/* Whether the client socket fd has been closed by the server (EOF). */
static bool hung_up(int fd)
{
	uint8_t b;
	return recv(fd, &b, 1, MSG_DONTWAIT) == 0;
}

static int pending[5];
static bool all_hung_up(void)
{
	for (int i = 0; i < 5; i++)
		if (!hung_up(pending[i]))
			return false;
	return true;
}

static bool first_hung_up(void)
{
	return hung_up(pending[0]);
}

/* A connection whose struct cannot be allocated is closed at once (its
 * client reads EOF), and the next one is accepted as usual. */
static void test_accept_without_memory(void **state)
{
	(void)state;
	calloc_fail_after = 0;
	pending[0] = dial();
	run_until(first_hung_up); /* EOF: refused, not left hanging */
	run_until(refuse_done);
	close(pending[0]);
	assert_int_equal(count_conns(), 0);

	int ok = dial();
	want_conns = 1;
	run_until(conns_reached);
	uint8_t frame[8] = { 0, 0, 0, 4, 0, 0, 0, 0 };
	assert_int_equal(write(ok, frame, sizeof(frame)), (ssize_t)sizeof(frame));
	for (int i = 0; i < 2000 && frames == 0; i++) {
		uv_run(srv.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_int_equal(frames, 1);
	close(ok);
	want_conns = 0;
	run_until(conns_reached);
	assert_int_equal(closes, 1);
}

/* Several connections that come while memory is short are each refused,
 * one after the other, and the listener still accepts afterwards. */
static void test_many_refused_then_accepted(void **state)
{
	(void)state;
	calloc_fails = true;
	for (int i = 0; i < 5; i++)
		pending[i] = dial();
	run_until(all_hung_up);
	run_until(refuse_done);
	calloc_fails = false;
	assert_int_equal(count_conns(), 0);
	for (int i = 0; i < 5; i++)
		close(pending[i]);
	int ok = dial();
	want_conns = 1;
	run_until(conns_reached);
	close(ok);
	want_conns = 0;
	run_until(conns_reached);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accept_without_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_refused_then_accepted, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

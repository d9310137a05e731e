/*
 * fuzz_admin: the libFuzzer entry point for what an operator's tools send:
 * four-letter words and AdminServer requests, answered by a real
 * standalone quorumd started once in a directory of its own (its loop is
 * run, without waiting, after each input).
 *
 * The first byte chooses: odd, the next four bytes are a four-letter word
 * (admin_word()); even, the rest is an AdminServer request whose fields
 * are separated by NUL bytes — path, query, Authorization header, client
 * address, then the body — and whose method is GET, HEAD or POST by the
 * first byte (/ 2 % 3), a POST being asked to admit its body first when
 * the first byte has bit 3 set (admin_http(), as http.c calls it). The
 * server keeps its state from one input to the next, as a real one does.
 *
 * Checks (any failure aborts): a word answers something;
 * a request answers a status from 100 to 599; a JSON answer is an object
 * (begins with '{', ends with '}'); no answer is over 16 MiB.
 * tests/fuzz/regress.c runs this over corpus-admin/.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_admin: %s\n", what);
		abort();
	}
}

static char dir[64];
static uv_loop_t loop;
static struct config cfg;
static struct server srv;
static bool started;

static void stop(void)
{
	server_stop(&srv);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_admin: could not remove %s\n", dir);
}

/* A port nobody listens on now, for the server's client port. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	check(fd >= 0, "socket");
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	check(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind");
	check(getsockname(fd, (struct sockaddr *)&a, &len) == 0, "getsockname");
	close(fd);
	return ntohs(a.sin_port);
}

static void start(void)
{
	log_set_level(LOG_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/fuzz-admin-XXXXXX");
	check(mkdtemp(dir) != NULL, "mkdtemp");
	char path[128];
	snprintf(path, sizeof(path), "%s/zoo.cfg", dir);
	FILE *f = fopen(path, "w");
	check(f != NULL, "writing zoo.cfg");
	fprintf(f, "tickTime=2000\ndataDir=%s/data\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
		   "4lw.commands.whitelist=*\n", dir, free_port());
	fclose(f);
	char err[512];
	check(config_load(&cfg, path, err, sizeof(err)) == 0, err);
	check(uv_loop_init(&loop) == 0, "uv_loop_init");
	check(server_start(&srv, &loop, &cfg) == 0, "server_start");
	uv_run(&loop, UV_RUN_NOWAIT);
	atexit(stop);
	started = true;
}

/* The next NUL-terminated field of data[*at..size), copied. */
static char *next_field(const uint8_t *data, size_t size, size_t *at)
{
	size_t start = *at, end = start;
	while (end < size && data[end] != 0)
		end++;
	char *s = malloc(end - start + 1);
	check(s != NULL, "malloc");
	memcpy(s, data + start, end - start);
	s[end - start] = '\0';
	*at = end < size ? end + 1 : end;
	return s;
}

static void word(const uint8_t *data, size_t size)
{
	if (size < 4)
		return;
	struct jute_out o;
	jute_out_init(&o);
	if (admin_word(&srv, data, &o)) {
		check(o.len <= 16u << 20, "a word's answer over 16 MiB");
		check(o.len > 0, "a word answered nothing");
	}
	jute_out_free(&o);
}

static void request(uint8_t sel, const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "HEAD", "POST" };
	size_t at = 0;
	char *path = next_field(data, size, &at);
	char *query = next_field(data, size, &at);
	char *auth = next_field(data, size, &at);
	char *ip = next_field(data, size, &at);
	struct http_request req = {
		.method = methods[sel / 2 % 3],
		.path = path,
		.query = query,
		.authorization = auth,
		.client_ip = ip,
		.admit = sel / 2 % 3 == 2 && (sel & 8),
		.body = data + at,
		.body_len = size - at,
	};
	struct http_reply reply = { .status = 200, .type = "text/plain" };
	jute_out_init(&reply.body);
	admin_http(&srv, &req, &reply);
	check(reply.status >= 100 && reply.status <= 599, "an HTTP status out of range");
	check(reply.body.len <= 16u << 20, "an answer over 16 MiB");
	if (reply.status != 100 && reply.type && strcmp(reply.type, "application/json") == 0 &&
	    reply.body.len > 0)
		check(reply.body.buf[0] == '{' && reply.body.buf[reply.body.len - 1] == '}',
		      "a JSON answer that is not an object");
	jute_out_free(&reply.body);
	free(path);
	free(query);
	free(auth);
	free(ip);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!started)
		start();
	if (size < 1)
		return 0;
	if (data[0] & 1)
		word(data + 1, size - 1);
	else
		request(data[0], data + 1, size - 1);
	uv_run(&loop, UV_RUN_NOWAIT);
	return 0;
}

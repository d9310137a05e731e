/*
 * fuzz_sasl: the libFuzzer entry point for a SASL client's tokens (sasl.c):
 * the DIGEST-MD5 response a client sends after the server's challenge, to
 * a server with one user. sasl_step() must answer it — success only with
 * the right password, for which the input would have to carry the
 * session's random nonce — or refuse it with a reason; any other outcome
 * aborts. tests/fuzz/regress.c runs this over corpus-sasl/.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_sasl: %s\n", what);
		abort();
	}
}

static struct sasl_users *users;

static void load(void)
{
	char path[] = "/tmp/fuzz-sasl-XXXXXX";
	int fd = mkstemp(path);
	check(fd >= 0, "mkstemp");
	static const char text[] = "Server { m required user_bob=\"secret\"; };\n";
	check(write(fd, text, sizeof(text) - 1) == (ssize_t)(sizeof(text) - 1), "write");
	close(fd);
	char err[256];
	check(sasl_users_load(path, "Server", &users, err, sizeof(err)) == 0, err);
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (users == NULL)
		load();
	struct sasl_session *s = NULL;
	uint8_t *out = NULL;
	size_t out_len = 0;
	char user[SASL_MAX_USER + 1];
	const char *why = NULL;
	check(sasl_step(&s, users, NULL, 0, &out, &out_len, user, &why) == 0, "no challenge");
	check(out_len > 0 && memchr(out, '\0', out_len) == NULL, "a bad challenge");
	free(out);
	out = NULL;
	int rc = sasl_step(&s, users, data, size, &out, &out_len, user, &why);
	check(rc == -1 && why != NULL && out == NULL, "a response without the nonce was taken");
	sasl_session_free(s);
	return 0;
}

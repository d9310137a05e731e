/*
 * fuzz_config: the libFuzzer entry point for zoo.cfg.
 *
 * The input is a config file's text, as an operator (or a file damaged by
 * a full disk) may leave it. config_load() must accept it or refuse it
 * with a message; an accepted config must format (conf's lines) into a
 * buffer that fits, and every value it holds must be within the bounds
 * quorumd relies on. Any disagreement aborts. tests/fuzz/regress.c runs
 * this over corpus-config/.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_config: %s\n", what);
		abort();
	}
}

static char path[64];

static void remove_file(void)
{
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (path[0] == '\0') {
		snprintf(path, sizeof(path), "/tmp/fuzz-config-XXXXXX");
		int fd = mkstemp(path);
		check(fd >= 0, "mkstemp");
		close(fd);
		atexit(remove_file);
	}
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	check(fd >= 0, "opening the config file");
	check(write(fd, data, size) == (ssize_t)size, "writing it");
	close(fd);
	static struct config cfg;
	char err[512];
	err[0] = '\0';
	int rc = config_load(&cfg, path, err, sizeof(err));
	check(rc == 0 || rc == -1, "config_load: neither 0 nor -1");
	if (rc != 0) {
		check(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL,
		      "a refusal without a message");
		return 0;
	}
	check(cfg.tick_time > 0, "tickTime");
	check(cfg.client_port >= 0 && cfg.client_port <= 65535, "clientPort");
	check(cfg.min_session_timeout <= cfg.max_session_timeout, "session timeouts");
	check(cfg.n_servers >= 0, "server count");
	check(cfg.jute_max_buffer > 0, "jute.maxbuffer");
	static char buf[1 << 20];
	int n = config_format(&cfg, buf, sizeof(buf));
	check(n > 0 && (size_t)n < sizeof(buf) && strlen(buf) == (size_t)n,
	      "conf does not fit, or is not one string");
	return 0;
}

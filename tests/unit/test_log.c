/* Unit tests for util/log: rate-limited lines and their summaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

/* Runs fn with stderr sent to a temporary file; returns what it wrote. */
static char *captured(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fileno(tmp), STDERR_FILENO), STDERR_FILENO);
	fn();
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	off_t n = lseek(fileno(tmp), 0, SEEK_END);
	assert_true(n >= 0);
	char *text = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(pread(fileno(tmp), text, (size_t)n, 0), n);
	fclose(tmp);
	return text;
}

static int count_lines(const char *text, const char *containing)
{
	int n = 0;
	for (const char *l = text; *l;) {
		const char *end = strchr(l, '\n');
		size_t len = end ? (size_t)(end - l) : strlen(l);
		char line[1200];
		snprintf(line, sizeof(line), "%.*s", (int)len, l);
		if (strstr(line, containing))
			n++;
		l += len + (end ? 1 : 0);
	}
	return n;
}

static void flood(void)
{
	for (int i = 0; i < 100; i++)
		log_rl(LOG_WARN, "test", "refused %d", i);
}

static void flood_then_flush(void)
{
	flood();
	log_rate_flush();
	log_rate_flush(); /* nothing new dropped: writes nothing */
}

/* A burst past the bucket is cut to LOG_RATE_BURST lines, and the flush
 * sums up the rest at once, without waiting for the site's next line. */
static void test_flush_sums_up_a_flood(void **state)
{
	(void)state;
	char *text = captured(flood_then_flush);
	assert_int_equal(count_lines(text, "WARN  test: refused "), LOG_RATE_BURST);
	char want[128];
	snprintf(want, sizeof(want), "%d more like this were dropped, the last: refused 99",
		 100 - LOG_RATE_BURST);
	assert_int_equal(count_lines(text, want), 1);
	assert_int_equal(count_lines(text, "were dropped"), 1);
	free(text);
}

static void quiet(void)
{
	log_rl(LOG_WARN, "test", "once");
	log_rate_flush();
}

/* A site under its rate writes every line and no summary. */
static void test_under_the_rate(void **state)
{
	(void)state;
	char *text = captured(quiet);
	assert_int_equal(count_lines(text, "WARN  test: once"), 1);
	assert_int_equal(count_lines(text, "dropped"), 0);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flush_sums_up_a_flood),
		cmocka_unit_test(test_under_the_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

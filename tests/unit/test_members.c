/* Unit tests for server/members: server lines, /zookeeper/config's text,
 * the arithmetic of reconfig, and the dynamic config file written and read
 * back by config_load(). */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "config.h"
#include "members.h"

static struct members *three(void)
{
	static const char text[] = "server.1=10.0.0.1:2888:3888:participant;10.0.0.1:2181\n"
				   "server.2=10.0.0.2:2888:3888\n"
				   "server.3=[::1]:2888:3888:observer\n"
				   "version=100000004";
	struct members *m = malloc(sizeof(*m));
	char err[300];
	assert_non_null(m);
	assert_int_equal(members_from_text(text, sizeof(text) - 1, m, err, sizeof(err)), 0);
	return m;
}

static void test_text_round_trip(void **state)
{
	(void)state;
	struct members *m = three();
	assert_int_equal(m->n, 3);
	assert_int_equal(m->version, 0x100000004);
	assert_true(m->s[2].observer);
	assert_string_equal(m->s[2].host, "::1");
	char buf[4096];
	size_t n = members_text(m, buf, sizeof(buf));
	assert_true(n > 0);
	assert_string_equal(buf, "server.1=10.0.0.1:2888:3888:participant;10.0.0.1:2181\n"
				 "server.2=10.0.0.2:2888:3888:participant\n"
				 "server.3=[::1]:2888:3888:observer\n"
				 "version=100000004");
	struct members *again = malloc(sizeof(*again));
	char err[300];
	assert_int_equal(members_from_text(buf, n, again, err, sizeof(err)), 0);
	assert_int_equal(memcmp(again->s, m->s, sizeof(m->s[0]) * 3), 0);
	assert_int_equal(members_text(m, buf, 20), 0); /* too small */
	static const char *const bad[] = {
		"server.0=1.2.3.4:1:2", "server.256=1.2.3.4:1:2", "server.1=1.2.3.4:1",
		"server.1=1.2.3.4:1:70000", "server.1=1.2.3.4:1:2:leader", "version=xyz",
		"server.1=1.2.3.4:1:2\nserver.1=1.2.3.4:3:4", "garbage",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(members_from_text(bad[i], strlen(bad[i]), again, err, sizeof(err)), -1);
	free(again);
	free(m);
}

static void test_reconfig_arithmetic(void **state)
{
	(void)state;
	struct members *m = three(), *out = malloc(sizeof(*out));
	char err[300];
	/* Incremental: 2 leaves, 4 joins, 3 is replaced (now a participant). */
	assert_int_equal(members_reconfig(m, "server.4=10.0.0.4:2888:3888;2181, "
					  "server.3=10.0.0.3:1:2", " 2 ", NULL, out, err,
					  sizeof(err)), 0);
	assert_int_equal(out->n, 3);
	assert_int_equal(out->s[0].id, 1);
	assert_int_equal(out->s[1].id, 3);
	assert_false(out->s[1].observer);
	assert_string_equal(out->s[1].host, "10.0.0.3");
	assert_int_equal(out->s[2].id, 4);
	assert_int_equal(out->s[2].client_port, 2181);
	assert_int_equal(out->version, 0);
	/* An id that is not a member leaves nothing behind. */
	assert_int_equal(members_reconfig(m, NULL, "9", "", out, err, sizeof(err)), 0);
	assert_int_equal(out->n, 3);
	/* Non-incremental wins over joining and leaving, as in ZooKeeper. */
	assert_int_equal(members_reconfig(m, "server.4=10.0.0.4:1:2", "1",
					  "server.7=10.0.0.7:1:2,server.8=10.0.0.8:1:2:observer", out,
					  err, sizeof(err)), 0);
	assert_int_equal(out->n, 2);
	assert_int_equal(out->s[0].id, 7);
	assert_true(out->s[1].observer);
	/* Refused: no voter left, specs that do not parse, ids that are not. */
	assert_int_equal(members_reconfig(m, NULL, "1,2", NULL, out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no voter"));
	assert_int_equal(members_reconfig(m, "server.4=nonsense", NULL, NULL, out, err,
					  sizeof(err)), -1);
	assert_int_equal(members_reconfig(m, NULL, "one", NULL, out, err, sizeof(err)), -1);
	assert_int_equal(members_reconfig(m, NULL, NULL, "server.9=10.0.0.9:1:2:observer", out, err,
					  sizeof(err)), -1);
	free(out);
	free(m);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* members_save(): the dynamic file beside zoo.cfg, zoo.cfg's server lines
 * moved out (the old file kept as .bak) and dynamicConfigFile pointed at
 * it; config_load() reads the same membership back. A second save moves
 * the pointer on. */
static void test_save_and_load(void **state)
{
	(void)state;
	char dir[] = "/tmp/qmem-XXXXXX", path[128], text[1024], dyn[160];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/zoo.cfg", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "dataDir=%s\ninitLimit=5\nsyncLimit=2\nserver.1=10.0.0.1:2888:3888\n"
		"server.2=10.0.0.2:2888:3888\nreconfigEnabled=true\n", dir);
	fclose(f);
	snprintf(text, sizeof(text), "%s/myid", dir);
	f = fopen(text, "w");
	fputs("1\n", f);
	fclose(f);
	struct members *m = three();
	m->s[0].host[0] = '\0';
	strcpy(m->s[0].host, "10.0.0.1");
	char err[600];
	assert_int_equal(members_save(path, m, err, sizeof(err)), 0);
	snprintf(dyn, sizeof(dyn), "%s.dynamic.100000004", path);
	assert_non_null(strstr(slurp(dyn), "server.3=[::1]:2888:3888:observer\n"));
	assert_null(strstr(slurp(dyn), "version="));
	char *cfgtext = slurp(path);
	assert_null(strstr(cfgtext, "server."));
	assert_non_null(strstr(cfgtext, "reconfigEnabled=true\n"));
	assert_non_null(strstr(cfgtext, dyn));
	snprintf(text, sizeof(text), "%s.bak", path);
	assert_non_null(strstr(slurp(text), "server.2=10.0.0.2:2888:3888\n"));
	assert_int_equal(members_file_version(dyn), 0x100000004);
	assert_int_equal(members_file_version(path), -1);

	struct config *cfg = malloc(sizeof(*cfg));
	assert_non_null(cfg);
	assert_int_equal(config_load(cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg->config_version, 0x100000004);
	assert_int_equal(cfg->n_servers, 3);
	assert_true(cfg->servers[2].observer);

	m->version = 0x200000001;
	assert_int_equal(members_save(path, m, err, sizeof(err)), 0);
	assert_int_equal(config_load(cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg->config_version, 0x200000001);
	assert_int_equal(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(cfg);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_round_trip),
		cmocka_unit_test(test_reconfig_arithmetic),
		cmocka_unit_test(test_save_and_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

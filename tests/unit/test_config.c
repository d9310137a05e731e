/* Unit tests for server/config: zoo.cfg parsing as ZooKeeper reads it,
 * myid, the 4lw whitelist and the `conf` output. Each test works in its
 * own temporary directory, removed afterwards. */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

struct fx {
	char dir[64];       /* the test's temporary directory, also dataDir */
	char cfg_path[128]; /* dir/zoo.cfg */
	struct config *cfg; /* big: on the heap */
	char err[1024];
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/qcfg-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->cfg_path, sizeof(fx->cfg_path), "%s/zoo.cfg", fx->dir);
	fx->cfg = malloc(sizeof(*fx->cfg));
	assert_non_null(fx->cfg);
	*state = fx;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(fx->cfg);
	free(fx);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Writes zoo.cfg; every "@" in text becomes the test directory. */
static void write_cfg(struct fx *fx, const char *text)
{
	char buf[8192];
	size_t n = 0;
	for (const char *p = text; *p; p++) {
		if (*p == '@') {
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s", fx->dir);
		} else {
			buf[n++] = *p;
		}
		assert_true(n < sizeof(buf) - 1);
	}
	buf[n] = '\0';
	write_file(fx->cfg_path, buf);
}

static void write_myid(struct fx *fx, const char *text)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/myid", fx->dir);
	write_file(path, text);
}

static int load(struct fx *fx)
{
	fx->err[0] = '\0';
	return config_load(fx->cfg, fx->cfg_path, fx->err, sizeof(fx->err));
}

/* The load fails and the message has every one of the needles. */
static void expect_error(struct fx *fx, const char *needle1, const char *needle2)
{
	int rc = load(fx);
	if (rc != -1 || !strstr(fx->err, needle1) || (needle2 && !strstr(fx->err, needle2)))
		fail_msg("expected an error with \"%s\" and \"%s\", got rc %d: %s", needle1,
			 needle2 ? needle2 : "", rc, fx->err);
}

static void expect_ok(struct fx *fx)
{
	int rc = load(fx);
	if (rc != 0)
		fail_msg("expected success, got: %s", fx->err);
}

/* Runs config_load() with stderr going to a file; returns what was logged
 * (malloc'd). */
static char *load_logged(struct fx *fx, int *rc)
{
	char path[] = "/tmp/qcfg-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	*rc = load(fx);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	off_t end = lseek(fd, 0, SEEK_END);
	char *text = calloc(1, (size_t)end + 1);
	assert_non_null(text);
	assert_int_equal(pread(fd, text, (size_t)end, 0), end);
	close(fd);
	unlink(path);
	return text;
}

/* ---- defaults and keys -------------------------------------------------- */

static void test_defaults(void **state)
{
	struct fx *fx = *state;
	write_cfg(fx, "dataDir=@\n");
	expect_ok(fx);
	const struct config *c = fx->cfg;
	assert_string_equal(c->path, fx->cfg_path);
	assert_string_equal(c->data_dir, fx->dir);
	assert_string_equal(c->data_log_dir, fx->dir);
	assert_int_equal(c->tick_time, 3000);
	assert_int_equal(c->init_limit, 0);
	assert_int_equal(c->sync_limit, 0);
	assert_string_equal(c->client_address, "0.0.0.0");
	assert_int_equal(c->client_port, 2181);
	assert_int_equal(c->listen_backlog, -1);
	assert_int_equal(c->max_client_cnxns, 60);
	assert_int_equal(c->min_session_timeout, 6000);
	assert_int_equal(c->max_session_timeout, 60000);
	assert_int_equal(c->snap_count, 100000);
	assert_int_equal(c->snap_log_percent, 100);
	assert_true(c->snapshot_size_factor == 0.33);
	assert_int_equal(c->prealloc_kb, 65536);
	assert_int_equal(c->jute_max_buffer, 0xfffff);
	assert_int_equal(c->purge_snap_retain, 3);
	assert_int_equal(c->purge_interval, 0);
	assert_int_equal(c->global_outstanding_limit, 1000);
	assert_int_equal(c->container_check_ms, 60000);
	assert_false(c->read_only_mode);
	assert_false(c->four_letter_all);
	assert_string_equal(c->four_letter_words, "srvr");
	assert_int_equal(c->myid, 0);
	assert_int_equal(c->n_servers, 0);
}

static void test_every_key(void **state)
{
	struct fx *fx = *state;
	write_cfg(fx, "tickTime=2000\n"
		      "initLimit=7\n"
		      "syncLimit=3\n"
		      "dataDir=@/data\n"
		      "dataLogDir=@/log\n"
		      "clientPort=2999\n"
		      "clientPortAddress=127.0.0.1\n"
		      "clientPortListenBacklog=128\n"
		      "maxClientCnxns=0\n"
		      "minSessionTimeout=1000\n"
		      "maxSessionTimeout=90000\n"
		      "snapCount=5000\n"
		      "snapLogPercent=0\n"
		      "snapshotSizeFactor=-0.5\n"
		      "preAllocSize=1024\n"
		      "jute.maxbuffer=4194304\n"
		      "autopurge.snapRetainCount=5\n"
		      "autopurge.purgeInterval=24\n"
		      "globalOutstandingLimit=500\n"
		      "znode.container.checkIntervalMs=1000\n"
		      "readonlymode.enabled=true\n"
		      "4lw.commands.whitelist=ruok,mntr\n"
		      "electionAlg=3\n"
		      "peerType=participant\n"
		      "standaloneEnabled=true\n");
	expect_ok(fx);
	const struct config *c = fx->cfg;
	char want[128];
	snprintf(want, sizeof(want), "%s/data", fx->dir);
	assert_string_equal(c->data_dir, want);
	snprintf(want, sizeof(want), "%s/log", fx->dir);
	assert_string_equal(c->data_log_dir, want);
	assert_int_equal(c->tick_time, 2000);
	assert_int_equal(c->init_limit, 7);
	assert_int_equal(c->sync_limit, 3);
	assert_int_equal(c->client_port, 2999);
	assert_string_equal(c->client_address, "127.0.0.1");
	assert_int_equal(c->listen_backlog, 128);
	assert_int_equal(c->max_client_cnxns, 0);
	assert_int_equal(c->min_session_timeout, 1000);
	assert_int_equal(c->max_session_timeout, 90000);
	assert_int_equal(c->snap_count, 5000);
	assert_int_equal(c->snap_log_percent, 0);
	assert_true(c->snapshot_size_factor == -0.5);
	assert_int_equal(c->prealloc_kb, 1024);
	assert_int_equal(c->jute_max_buffer, 4194304);
	assert_int_equal(c->purge_snap_retain, 5);
	assert_int_equal(c->purge_interval, 24);
	assert_int_equal(c->global_outstanding_limit, 500);
	assert_int_equal(c->container_check_ms, 1000);
	assert_true(c->read_only_mode);
	assert_string_equal(c->four_letter_words, "ruok,mntr");
	assert_int_equal(c->n_servers, 0);
}

static void test_session_timeouts_follow_tick(void **state)
{
	struct fx *fx = *state;
	write_cfg(fx, "dataDir=@\ntickTime=2000\n");
	expect_ok(fx);
	assert_int_equal(fx->cfg->min_session_timeout, 4000);
	assert_int_equal(fx->cfg->max_session_timeout, 40000);

	/* order does not matter: the defaults are taken after every key */
	write_cfg(fx, "maxSessionTimeout=-1\nminSessionTimeout=5000\ndataDir=@\ntickTime=1000\n");
	expect_ok(fx);
	assert_int_equal(fx->cfg->min_session_timeout, 5000);
	assert_int_equal(fx->cfg->max_session_timeout, 20000);

	write_cfg(fx, "dataDir=@\nminSessionTimeout=9000\nmaxSessionTimeout=8000\n");
	expect_error(fx, ":2: minSessionTimeout", "maxSessionTimeout");

	/* a huge tickTime does not overflow the derived timeouts */
	write_cfg(fx, "dataDir=@\ntickTime=2147483647\n");
	expect_ok(fx);
	assert_int_equal(fx->cfg->max_session_timeout, INT32_MAX);
}

static void test_properties_syntax(void **state)
{
	struct fx *fx = *state;
	write_cfg(fx, "# a comment\r\n"
		      "   ! another comment \\\r\n"
		      "\r\n"
		      "  tickTime   4000   \r\n"          /* "key value", trimmed */
		      "initLimit:9\n"                     /* "key:value" */
		      "syncLimit = \\\n"                  /* continued */
		      "        6\n"
		      "dataDir=@/with\\u0020space\n"      /* \u escape */
		      "clientPortAddress=\\\n"
		      "  ::1\n"
		      "maxClientCnxns\t=\t12\t\n"
		      "4lw.commands.whitelist=ru\\\n"
		      "  ok, co\\\n"
		      "   nf\n"
		      "\tmaxSessionTimeout=70000");       /* no final newline */
	expect_ok(fx);
	const struct config *c = fx->cfg;
	assert_int_equal(c->tick_time, 4000);
	assert_int_equal(c->init_limit, 9);
	assert_int_equal(c->sync_limit, 6);
	char want[128];
	snprintf(want, sizeof(want), "%s/with space", fx->dir);
	assert_string_equal(c->data_dir, want);
	assert_string_equal(c->client_address, "::1");
	assert_int_equal(c->max_client_cnxns, 12);
	assert_string_equal(c->four_letter_words, "ruok,conf");
	assert_int_equal(c->max_session_timeout, 70000);

	/* a '#' after a value is part of the value, as in Java: not a number */
	write_cfg(fx, "dataDir=@\n\ntickTime=2000 # ms\n");
	expect_error(fx, ":3: tickTime", "\"2000 # ms\" is not a number");

	/* a comment line does not continue, a continued line may hold '#' */
	write_cfg(fx, "# tickTime=1\\\ndataDir=@\ntickTime=\\\n#5\n");
	expect_error(fx, ":3: tickTime", "#5");

	/* an escaped separator belongs to the key */
	write_cfg(fx, "dataDir=@\nmy\\=key=1\n");
	int rc;
	char *log = load_logged(fx, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(log, ":2: unknown key my=key"));
	free(log);

	write_cfg(fx, "dataDir=@\nbad\\u12G4=1\n");
	expect_error(fx, "line 2", "malformed \\uxxxx");
	write_cfg(fx, "dataDir=@\nkey=\\u0000\n");
	expect_error(fx, "line 2", "NUL");
}

static void test_repeated_key_last_wins(void **state)
{
	struct fx *fx = *state;
	/* Properties keeps the last; the overridden value is never looked at */
	write_cfg(fx, "dataDir=@\ntickTime=abc\ntickTime=1000\n");
	int rc;
	char *log = load_logged(fx, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(fx->cfg->tick_time, 1000);
	assert_non_null(strstr(log, ":2: tickTime is set again on line 3"));
	free(log);
}

static void test_value_errors(void **state)
{
	struct fx *fx = *state;
	static const struct {
		const char *line, *needle1, *needle2;
	} cases[] = {
		{ "tickTime=abc", ":2: tickTime", "not a number" },
		{ "tickTime=0", ":2: tickTime", "out of range" },
		{ "tickTime=99999999999", ":2: tickTime", "out of range" },
		{ "tickTime=", ":2: tickTime", "not a number" },
		{ "tickTime=1 000", ":2: tickTime", "not a number" },
		{ "clientPort=65536", ":2: clientPort", "out of range" },
		{ "clientPort=0", ":2: clientPort", "out of range" },
		{ "clientPort=-1", ":2: clientPort", "out of range" },
		{ "clientPortAddress=", ":2: clientPortAddress", "empty" },
		{ "clientPortListenBacklog=0", ":2: clientPortListenBacklog", "positive" },
		{ "maxClientCnxns=-1", ":2: maxClientCnxns", "out of range" },
		{ "minSessionTimeout=-2", ":2: minSessionTimeout", "out of range" },
		{ "initLimit=0", ":2: initLimit", "out of range" },
		{ "syncLimit=x", ":2: syncLimit", "not a number" },
		{ "electionAlg=1", ":2: electionAlg", "only 3" },
		{ "electionAlg=three", ":2: electionAlg", "not a number" },
		{ "peerType=leader", ":2: peerType", "leader" },
		{ "standaloneEnabled=yes", ":2: standaloneEnabled", "true or false" },
		{ "snapCount=lots", ":2: snapCount", "not a number" },
		{ "snapLogPercent=-1", ":2: snapLogPercent", "out of range" },
		{ "snapshotSizeFactor=third", ":2: snapshotSizeFactor", "not a decimal number" },
		{ "snapshotSizeFactor=0.3x", ":2: snapshotSizeFactor", "not a decimal number" },
		{ "snapshotSizeFactor=NaN", ":2: snapshotSizeFactor", "not a decimal number" },
		{ "snapshotSizeFactor=1e999", ":2: snapshotSizeFactor", "not a decimal number" },
		{ "preAllocSize=-1", ":2: preAllocSize", "out of range" },
		{ "jute.maxbuffer=0", ":2: jute.maxbuffer", "out of range" },
		{ "globalOutstandingLimit=0", ":2: globalOutstandingLimit", "out of range" },
		{ "znode.container.checkIntervalMs=0", ":2: znode.container", "out of range" },
		{ "autopurge.purgeInterval=1h", ":2: autopurge.purgeInterval", "not a number" },
		{ "dataLogDir=", ":2: dataLogDir", "empty" },
		{ "dynamicConfigFile=/nonexistent/zoo.cfg.dynamic", ":2: dynamicConfigFile",
		  "cannot open" },
		{ "reconfigEnabled=maybe", ":2: reconfigEnabled", "true" },
		{ "group.1=1:2:3", ":2: group.1", "hierarchical" },
		{ "weight.1=2", ":2: weight.1", "hierarchical" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];
		snprintf(text, sizeof(text), "dataDir=@\n%s\n", cases[i].line);
		write_cfg(fx, text);
		expect_error(fx, cases[i].needle1, cases[i].needle2);
		assert_non_null(strstr(fx->err, fx->cfg_path));
	}

	write_cfg(fx, "tickTime=2000\n");
	expect_error(fx, "dataDir", "not set");
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/nope.cfg", fx->dir);
	assert_int_equal(config_load(fx->cfg, missing, fx->err, sizeof(fx->err)), -1);
	assert_non_null(strstr(fx->err, "nope.cfg"));
	/* err may be omitted */
	assert_int_equal(config_load(fx->cfg, missing, NULL, 0), -1);
	assert_int_equal(config_load(fx->cfg, missing, NULL, 64), -1);
}

static void test_clamped_values(void **state)
{
	struct fx *fx = *state;
	write_cfg(fx, "dataDir=@\nautopurge.snapRetainCount=1\nsnapCount=1\n"
		      "autopurge.purgeInterval=-5\n");
	int rc;
	char *log = load_logged(fx, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(fx->cfg->purge_snap_retain, 3);
	assert_int_equal(fx->cfg->snap_count, 2);
	assert_int_equal(fx->cfg->purge_interval, 0);
	assert_non_null(strstr(log, ":2: autopurge.snapRetainCount"));
	assert_non_null(strstr(log, ":3: snapCount"));
	free(log);
}

static void test_unknown_key_warns(void **state)
{
	struct fx *fx = *state;
	write_cfg(fx, "dataDir=@\nfooBar=1\nobserverMasterPort=2191\n"
		      "multiAddress.enabled=true\n");
	int rc;
	char *log = load_logged(fx, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(log, ":2: unknown key fooBar"));
	assert_non_null(strstr(log, ":3: observerMasterPort: a ZooKeeper setting"));
	assert_non_null(strstr(log, ":4: multiAddress.enabled: a ZooKeeper setting"));
	free(log);
}

/* A key that would turn on security quorumd does not have stops the load
 * with its name; the same switch set to false is fine. */
static void test_security_keys_refused(void **state)
{
	struct fx *fx = *state;
	static const char *const refused[] = {
		"quorum.auth.enableSasl=true",
		"quorum.auth.learnerRequireSasl=true",
		"quorum.auth.serverRequireSasl=true",
		"audit.enable=true",
		"skipACL=yes",
		"authProvider.x=org.example.CustomAuthenticationProvider",
		"ssl.crl=true",
		"ssl.ocsp=true",
		"ssl.fipsMode=true",
		"ssl.context.supplier.class=org.example.Supplier",
		"ssl.keyStore.kind=PEM",
		"ssl.clientAuth=maybe",
		"ssl.protocol=TLSv1.1",
		"ssl.enabledProtocols=TLSv1.2,SSLv3",
		"ssl.authProvider=custom",
		"client.portUnification=yes",
		"DigestAuthenticationProvider.superDigest=nocolon",
		"DigestAuthenticationProvider.superDigest=super:",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		char text[256], key[128];
		snprintf(text, sizeof(text), "dataDir=@\n%s\n", refused[i]);
		snprintf(key, sizeof(key), ":2: %.*s:", (int)strcspn(refused[i], "="), refused[i]);
		write_cfg(fx, text);
		expect_error(fx, key, NULL);
	}
	write_cfg(fx, "dataDir=@\nsslQuorum=false\nportUnification=false\nenforceQuota=false\n"
		      "authProvider.1=org.apache.zookeeper.server.auth.DigestAuthenticationProvider\n"
		      "authProvider.2=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
		      "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n");
	expect_ok(fx);
	assert_string_equal(fx->cfg->super_digest, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
	assert_false(fx->cfg->enforce_quota);
	write_cfg(fx, "dataDir=@\nenforceQuota=true\n");
	expect_ok(fx);
	assert_true(fx->cfg->enforce_quota);
}

/* TLS on the client port: ZooKeeper's keys, and what they need. */
static void test_tls_keys(void **state)
{
	struct fx *fx = *state;
	write_cfg(fx, "dataDir=@\nclientPortAddress=127.0.0.1\nsecureClientPort=2281\n"
		      "ssl.keyStore.location=/etc/zk/server.pem\nssl.keyStore.password=pw\n"
		      "ssl.trustStore.location=/etc/zk/ca.crt\nssl.clientAuth=WANT\n"
		      "ssl.ciphersuites=TLS_AES_128_GCM_SHA256\nclient.certReload=true\n"
		      "X509AuthenticationProvider.superUser=CN=admin\n"
		      "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n"
		      "ssl.hostnameVerification=false\nssl.crl=false\n");
	expect_ok(fx);
	const struct config *c = fx->cfg;
	assert_int_equal(c->secure_client_port, 2281);
	assert_string_equal(c->secure_client_address, "127.0.0.1"); /* clientPortAddress's */
	assert_string_equal(c->tls.key_store, "/etc/zk/server.pem");
	assert_string_equal(c->tls.key_password, "pw");
	assert_string_equal(c->tls.trust_store, "/etc/zk/ca.crt");
	assert_int_equal(c->tls.client_auth, TLS_CLIENT_AUTH_WANT);
	assert_int_equal(c->tls.min_version, TLS_VERSION_1_2);
	assert_int_equal(c->tls.max_version, TLS_VERSION_1_3);
	assert_true(c->tls_reload);
	assert_false(c->port_unification);
	assert_string_equal(c->x509_super_user, "CN=admin");

	write_cfg(fx, "dataDir=@\nclient.portUnification=true\nssl.keyStore.location=/k.pem\n"
		      "ssl.clientAuth=none\nssl.protocol=TLSv1.2\n");
	expect_ok(fx);
	assert_true(fx->cfg->port_unification);
	assert_int_equal(fx->cfg->tls.client_auth, TLS_CLIENT_AUTH_NONE);
	assert_int_equal(fx->cfg->tls.max_version, TLS_VERSION_1_2);
	write_cfg(fx, "dataDir=@\nzookeeper.client.portUnification=true\n"
		      "ssl.keyStore.location=/k.pem\nssl.clientAuth=none\nssl.protocol=TLSv1.2\n"
		      "ssl.enabledProtocols=TLSv1.3\n");
	expect_ok(fx);
	assert_int_equal(fx->cfg->tls.min_version, TLS_VERSION_1_3);

	/* What TLS needs, named. */
	write_cfg(fx, "dataDir=@\nsecureClientPort=2281\n");
	expect_error(fx, "ssl.keyStore.location", "not set");
	write_cfg(fx, "dataDir=@\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\n");
	expect_error(fx, "ssl.trustStore.location", "need");
	write_cfg(fx, "dataDir=@\nsecureClientPort=2281\nssl.keyStore.location=/k.jks\n"
		      "ssl.clientAuth=none\n");
	expect_error(fx, "ssl.keyStore.type", "only PEM");
	write_cfg(fx, "dataDir=@\nsecureClientPort=2281\nssl.keyStore.location=/k\n"
		      "ssl.keyStore.type=PKCS12\nssl.clientAuth=none\n");
	expect_error(fx, ":4: ssl.keyStore.type", "only PEM");
	write_cfg(fx, "dataDir=@\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\n"
		      "ssl.trustStore.location=/t.jks\n");
	expect_error(fx, "ssl.trustStore.type", "only PEM");
	write_cfg(fx, "dataDir=@\nclientPort=2281\nsecureClientPort=2281\n"
		      "ssl.keyStore.location=/k.pem\nssl.clientAuth=none\n");
	expect_error(fx, "secureClientPort", "clientPort too");
	/* The same keys without anything that speaks TLS: unused, as in
	 * ZooKeeper. */
	write_cfg(fx, "dataDir=@\nssl.keyStore.location=/k.jks\n");
	expect_ok(fx);

	/* Between members: their own keys, mutual TLS only. */
	write_cfg(fx, "dataDir=@\nsslQuorum=true\nssl.quorum.keyStore.location=/m.pem\n"
		      "ssl.quorum.trustStore.location=/ca.pem\nssl.quorum.protocol=TLSv1.2\n"
		      "sslQuorumReloadCertFiles=true\nssl.keyStore.location=/client.pem\n");
	expect_ok(fx);
	c = fx->cfg;
	assert_true(c->ssl_quorum);
	assert_false(c->quorum_unify);
	assert_true(c->quorum_check_host);
	assert_true(c->quorum_tls_reload);
	assert_string_equal(c->quorum_tls.key_store, "/m.pem");
	assert_string_equal(c->quorum_tls.trust_store, "/ca.pem");
	assert_int_equal(c->quorum_tls.max_version, TLS_VERSION_1_2);
	assert_string_equal(c->tls.key_store, "/client.pem"); /* apart */
	write_cfg(fx, "dataDir=@\nportUnification=true\nssl.quorum.keyStore.location=/m.pem\n"
		      "ssl.quorum.trustStore.location=/ca.pem\n"
		      "ssl.quorum.hostnameVerification=false\n");
	expect_ok(fx);
	assert_false(fx->cfg->ssl_quorum);
	assert_true(fx->cfg->quorum_unify);
	assert_false(fx->cfg->quorum_check_host);
	write_cfg(fx, "dataDir=@\nsslQuorum=true\n");
	expect_error(fx, "ssl.quorum.keyStore.location", "sslQuorum");
	write_cfg(fx, "dataDir=@\nsslQuorum=true\nssl.quorum.keyStore.location=/m.pem\n");
	expect_error(fx, "ssl.quorum.trustStore.location", "members");
	write_cfg(fx, "dataDir=@\nssl.quorum.clientAuth=want\n");
	expect_error(fx, ":2: ssl.quorum.clientAuth", "need");
	write_cfg(fx, "dataDir=@\nssl.quorum.ocsp=true\n");
	expect_error(fx, ":2: ssl.quorum.ocsp", "not supported");
	write_cfg(fx, "dataDir=@\nsslQuorum=yes\n");
	expect_error(fx, ":2: sslQuorum", "true or false");
}

static void test_relative_data_dir(void **state)
{
	struct fx *fx = *state;
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(fx->dir), 0);
	write_cfg(fx, "dataDir=./data/\ndataLogDir=logs//\n");
	int rc = load(fx);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(rc, 0);
	char want[128];
	snprintf(want, sizeof(want), "%s/data", fx->dir);
	assert_string_equal(fx->cfg->data_dir, want);
	snprintf(want, sizeof(want), "%s/logs", fx->dir);
	assert_string_equal(fx->cfg->data_log_dir, want);
}

/* ---- server.N and myid -------------------------------------------------- */

static void test_server_lines(void **state)
{
	struct fx *fx = *state;
	write_cfg(fx, "dataDir=@\ninitLimit=10\nsyncLimit=5\n"
		      "server.5=h5:2892:3892:PARTICIPANT;[fe80::1]:2183\n"
		      "server.1=h1:2888:3888\n"
		      "server.2 = h2:2889:3889:participant \n"
		      "server.3=h3:2890:3890:observer;2185\n"
		      "server.4=[::1]:2891:3891;10.0.0.4:2182\n"
		      "server.6=h6:2893:3893:\n"); /* Java's split drops the empty tail */
	write_myid(fx, "1\n");
	expect_ok(fx);
	const struct config *c = fx->cfg;
	assert_int_equal(c->myid, 1);
	assert_int_equal(c->n_servers, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(c->servers[i].id, i + 1); /* sorted by id */
	const struct config_server *s = c->servers;
	assert_string_equal(s[0].host, "h1");
	assert_int_equal(s[0].peer_port, 2888);
	assert_int_equal(s[0].election_port, 3888);
	assert_false(s[0].observer);
	/* this server's entry takes the static client address and port */
	assert_int_equal(s[0].client_port, 2181);
	assert_string_equal(s[0].client_host, "0.0.0.0");
	assert_string_equal(s[1].host, "h2");
	assert_false(s[1].observer);
	assert_int_equal(s[1].client_port, 0);
	assert_true(s[2].observer);
	assert_int_equal(s[2].client_port, 2185);
	assert_string_equal(s[2].client_host, "");
	assert_string_equal(s[3].host, "::1");
	assert_int_equal(s[3].peer_port, 2891);
	assert_int_equal(s[3].election_port, 3891);
	assert_int_equal(s[3].client_port, 2182);
	assert_string_equal(s[3].client_host, "10.0.0.4");
	assert_false(s[4].observer);
	assert_string_equal(s[4].client_host, "fe80::1");
	assert_int_equal(s[4].client_port, 2183);
	assert_string_equal(s[5].host, "h6");
}

static void test_server_errors(void **state)
{
	struct fx *fx = *state;
	static const struct {
		const char *line, *needle1, *needle2;
	} cases[] = {
		{ "server.2=h2:2889", ":4: server.2", "expected host:port:port" },
		{ "server.2=h2:2889:3889:participant:x", ":4: server.2", "expected" },
		{ "server.2=h2:x:3889", ":4: server.2", "\"x\" is not a number" },
		{ "server.2=h2:2889:0", ":4: server.2", "out of range" },
		{ "server.2=h2:2889:65536", ":4: server.2", "out of range" },
		{ "server.2=h2:2889:3889:voter", ":4: server.2", "voter" },
		{ "server.2=:2889:3889", ":4: server.2", "empty host" },
		{ "server.2=h2:2889:3889;2181;2182", ":4: server.2", "expected" },
		{ "server.2=h2:2889:3889;a:b:2181", ":4: server.2", "expected" },
		{ "server.2=h2:2889:3889;h:port", ":4: server.2", "not a number" },
		{ "server.2=[::1:2889:3889", ":4: server.2", "no matching ']:'" },
		{ "server.2=a:1:2|b:1:2", ":4: server.2", "'|'" },
		{ "server.0=h0:2889:3889", ":4: server.0", "out of range" },
		{ "server.256=h:2889:3889", ":4: server.256", "out of range" },
		{ "server.x=h:2889:3889", ":4: server.x", "not a server id" },
		{ "server.01=h:2889:3889", ":4: server.01", "given twice (also on line 3)" },
		{ "server.1=h:2889:3889", ":4: server.1", "given twice (also on line 3)" },
	};
	write_myid(fx, "1\n");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512];
		snprintf(text, sizeof(text), "dataDir=@\ninitLimit=5\nserver.1=h1:2888:3888\n%s\n"
			 "server.3=h3:2888:3888\nsyncLimit=2\n", cases[i].line);
		write_cfg(fx, text);
		expect_error(fx, cases[i].needle1, cases[i].needle2);
	}
}

static void test_myid(void **state)
{
	struct fx *fx = *state;
	const char *quorum = "dataDir=@\ninitLimit=5\nsyncLimit=2\n"
			     "server.1=a:2888:3888\nserver.2=b:2888:3888\nserver.3=c:2888:3888\n";
	write_cfg(fx, quorum);
	expect_error(fx, "myid is missing", NULL);

	write_myid(fx, "two\n");
	expect_error(fx, "myid", "\"two\" is not a number");
	write_myid(fx, "");
	expect_error(fx, "myid", "is not a number");
	write_myid(fx, "9\n");
	expect_error(fx, "myid says 9", "not among the server.N lines");
	write_myid(fx, " 2 \r\n");
	expect_ok(fx);
	assert_int_equal(fx->cfg->myid, 2);
	assert_int_equal(fx->cfg->n_servers, 3);

	/* a myid directory is not a myid file */
	char path[160];
	snprintf(path, sizeof(path), "%s/myid", fx->dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	expect_error(fx, "myid is missing", NULL);
	assert_int_equal(rmdir(path), 0);

	/* standalone: myid is optional but still read, and must be a number */
	write_cfg(fx, "dataDir=@\n");
	expect_ok(fx);
	assert_int_equal(fx->cfg->myid, 0);
	write_myid(fx, "7\n");
	expect_ok(fx);
	assert_int_equal(fx->cfg->myid, 7);
	write_myid(fx, "seven\n");
	expect_error(fx, "myid", "not a number");
	write_myid(fx, "-3\n");
	expect_error(fx, "myid", "out of range");
}

static void test_quorum_requirements(void **state)
{
	struct fx *fx = *state;
	write_myid(fx, "1\n");
	write_cfg(fx, "dataDir=@\nsyncLimit=2\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n");
	expect_error(fx, "initLimit", "not set");
	write_cfg(fx, "dataDir=@\ninitLimit=2\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n");
	expect_error(fx, "syncLimit", "not set");

	/* one participant: standalone, as ZooKeeper does (with a log line) */
	write_cfg(fx, "dataDir=@\nserver.1=a:2888:3888;2191\n");
	int rc;
	char *log = load_logged(fx, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(fx->cfg->n_servers, 0);
	assert_int_equal(fx->cfg->client_port, 2191); /* still taken from the line */
	assert_non_null(strstr(log, "only one server.N line"));
	free(log);

	/* ... unless standaloneEnabled=false */
	write_cfg(fx, "dataDir=@\nstandaloneEnabled=false\ninitLimit=5\nsyncLimit=2\n"
		      "server.1=a:2888:3888\n");
	expect_ok(fx);
	assert_int_equal(fx->cfg->n_servers, 1);
	write_cfg(fx, "dataDir=@\nstandaloneEnabled=false\n");
	expect_error(fx, "standaloneEnabled", "participant");

	write_cfg(fx, "dataDir=@\nserver.1=a:1:2:observer\n");
	expect_error(fx, "server.N", "observers without participants");
	write_cfg(fx, "dataDir=@\nserver.1=a:1:2\nserver.2=b:1:2:observer\n");
	expect_error(fx, "server.N", "observers without a quorum");

	/* peerType disagreeing with the list: the list wins, with a warning */
	write_cfg(fx, "dataDir=@\ninitLimit=5\nsyncLimit=2\npeerType=observer\n"
		      "server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n");
	log = load_logged(fx, &rc);
	assert_int_equal(rc, 0);
	assert_false(fx->cfg->servers[0].observer);
	assert_non_null(strstr(log, ":4: peerType observer does not match server.1"));
	free(log);
}

static void test_client_port_from_server_line(void **state)
{
	struct fx *fx = *state;
	write_myid(fx, "2\n");
	const char *servers = "server.1=a:2888:3888;2191\nserver.2=b:2888:3888;127.0.0.2:2192\n"
			      "server.3=c:2888:3888\ninitLimit=5\nsyncLimit=2\ndataDir=@\n";
	write_cfg(fx, servers);
	expect_ok(fx);
	assert_int_equal(fx->cfg->client_port, 2192);
	assert_string_equal(fx->cfg->client_address, "127.0.0.2");

	char text[512];
	snprintf(text, sizeof(text), "%sclientPort=2192\n", servers);
	write_cfg(fx, text);
	expect_ok(fx);
	snprintf(text, sizeof(text), "%sclientPort=2181\n", servers);
	write_cfg(fx, text);
	expect_error(fx, ":7: clientPort", "differs from 127.0.0.2:2192");
	snprintf(text, sizeof(text), "%sclientPort=2192\nclientPortAddress=10.0.0.9\n", servers);
	write_cfg(fx, text);
	expect_error(fx, ":7: clientPort", "10.0.0.9:2192 differs");

	/* no client part on this server's line: it takes clientPort */
	write_myid(fx, "3\n");
	snprintf(text, sizeof(text), "%sclientPort=2555\n", servers);
	write_cfg(fx, text);
	expect_ok(fx);
	assert_int_equal(fx->cfg->client_port, 2555);
	assert_int_equal(fx->cfg->servers[2].client_port, 2555);
}

/* ---- four-letter words -------------------------------------------------- */

static void test_whitelist(void **state)
{
	struct fx *fx = *state;
	write_cfg(fx, "dataDir=@\n");
	expect_ok(fx);
	assert_true(config_4lw_allowed(fx->cfg, "srvr"));
	assert_false(config_4lw_allowed(fx->cfg, "ruok"));
	assert_false(config_4lw_allowed(fx->cfg, "conf"));

	write_cfg(fx, "dataDir=@\n4lw.commands.whitelist= stat, ruok ,conf,,isro,RUOK\n");
	expect_ok(fx);
	assert_string_equal(fx->cfg->four_letter_words, "stat,ruok,conf,isro,RUOK");
	assert_true(config_4lw_allowed(fx->cfg, "stat"));
	assert_true(config_4lw_allowed(fx->cfg, "ruok"));
	assert_true(config_4lw_allowed(fx->cfg, "conf"));
	assert_true(config_4lw_allowed(fx->cfg, "isro"));
	assert_true(config_4lw_allowed(fx->cfg, "srvr")); /* always */
	assert_false(config_4lw_allowed(fx->cfg, "mntr"));
	assert_false(config_4lw_allowed(fx->cfg, "ruo"));
	assert_false(config_4lw_allowed(fx->cfg, "ruokk"));

	write_cfg(fx, "dataDir=@\n4lw.commands.whitelist=\n");
	expect_ok(fx);
	assert_true(config_4lw_allowed(fx->cfg, "srvr"));
	assert_false(config_4lw_allowed(fx->cfg, "stat"));

	write_cfg(fx, "dataDir=@\n4lw.commands.whitelist=ruok, * ,\n");
	expect_ok(fx);
	assert_true(fx->cfg->four_letter_all);
	static const char *const all[] = { "ruok", "srvr", "stat", "mntr", "conf", "cons",
					   "wchs", "isro", "dirs", "envi", "wchc", "dump" };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		assert_true(config_4lw_allowed(fx->cfg, all[i]));
	assert_false(config_4lw_allowed(fx->cfg, "nope"));
}

/* ---- conf --------------------------------------------------------------- */

static void make_file(const char *dir, const char *name, size_t size)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static void test_format_standalone(void **state)
{
	struct fx *fx = *state;
	write_cfg(fx, "dataDir=@\ndataLogDir=@/log\ntickTime=2000\nclientPort=2182\n");
	write_myid(fx, "4\n");
	char sub[128], logsub[128];
	snprintf(sub, sizeof(sub), "%s/quorum-v1", fx->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	make_file(sub, "snapshot.1", 1000);
	make_file(sub, "snapshot.2", 24);
	expect_ok(fx);

	char buf[4096], want[4096];
	int n = config_format(fx->cfg, buf, sizeof(buf));
	snprintf(logsub, sizeof(logsub), "%s/log/quorum-v1", fx->dir);
	snprintf(want, sizeof(want),
		 "clientPort=2182\n"
		 "secureClientPort=-1\n"
		 "dataDir=%s\n"
		 "dataDirSize=1024\n"
		 "dataLogDir=%s\n"
		 "dataLogSize=0\n"
		 "tickTime=2000\n"
		 "maxClientCnxns=60\n"
		 "minSessionTimeout=4000\n"
		 "maxSessionTimeout=40000\n"
		 "clientPortListenBacklog=-1\n"
		 "serverId=0\n",
		 sub, logsub);
	assert_string_equal(buf, want);
	assert_int_equal(n, (int)strlen(want));

	/* too small: -1 and a terminated prefix */
	char small[40];
	assert_int_equal(config_format(fx->cfg, small, sizeof(small)), -1);
	assert_true(strlen(small) < sizeof(small));
	assert_int_equal(strncmp(small, "clientPort=2182\n", 16), 0);
	assert_int_equal(config_format(fx->cfg, small, 0), -1);
}

/* dynamicConfigFile: the server lines come from it, the version from its
 * name; zoo.cfg may not hold server lines too, nor the file other keys. */
static void test_dynamic_config_file(void **state)
{
	struct fx *fx = *state;
	char dyn[256], text[1024];
	snprintf(dyn, sizeof(dyn), "%s/zoo.cfg.dynamic.100000004", fx->dir);
	write_file(dyn, "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n"
			"server.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890:observer\n");
	snprintf(text, sizeof(text), "dataDir=@\ninitLimit=5\nsyncLimit=2\nreconfigEnabled=true\n"
		 "dynamicConfigFile=%s\n", dyn);
	write_cfg(fx, text);
	write_myid(fx, "2\n");
	expect_ok(fx);
	assert_true(fx->cfg->reconfig_enabled);
	assert_int_equal(fx->cfg->config_version, 0x100000004);
	assert_string_equal(fx->cfg->dynamic_file, dyn);
	assert_int_equal(fx->cfg->n_servers, 3);
	assert_true(fx->cfg->servers[2].observer);
	assert_int_equal(fx->cfg->servers[0].client_port, 2181);

	snprintf(text, sizeof(text), "dataDir=@\ninitLimit=5\nsyncLimit=2\n"
		 "server.1=127.0.0.1:2888:3888\ndynamicConfigFile=%s\n", dyn);
	write_cfg(fx, text);
	expect_error(fx, ":4: server.N", "dynamic config file");

	write_file(dyn, "server.1=127.0.0.1:2888:3888\ntickTime=100\n");
	snprintf(text, sizeof(text), "dataDir=@\ndynamicConfigFile=%s\n", dyn);
	write_cfg(fx, text);
	expect_error(fx, ":2: tickTime", "server.N lines only");
}

static void test_format_quorum(void **state)
{
	struct fx *fx = *state;
	write_cfg(fx, "dataDir=@\ntickTime=2000\ninitLimit=10\nsyncLimit=5\n"
		      "server.1=zk1:2888:3888\n"
		      "server.2=[2001:db8::2]:2889:3889;2182\n"
		      "server.3=zk3:2890:3890:observer;zk3:2183\n");
	write_myid(fx, "1\n");
	expect_ok(fx);
	char buf[4096];
	assert_true(config_format(fx->cfg, buf, sizeof(buf)) > 0);
	const char *tail = strstr(buf, "serverId=1\n");
	assert_non_null(tail);
	assert_string_equal(tail,
			    "serverId=1\n"
			    "initLimit=10\n"
			    "syncLimit=5\n"
			    "electionAlg=3\n"
			    "electionPort=3888\n"
			    "quorumPort=2888\n"
			    "peerType=0\n"
			    "membership: \n"
			    "server.1=zk1:2888:3888:participant\n"
			    "server.2=[2001:db8::2]:2889:3889:participant;0.0.0.0:2182\n"
			    "server.3=zk3:2890:3890:observer;zk3:2183\n"
			    "version=0\n");

	write_myid(fx, "3\n");
	expect_ok(fx);
	assert_true(config_format(fx->cfg, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "clientPort=2183\n"));
	assert_non_null(strstr(buf, "serverId=3\n"));
	assert_non_null(strstr(buf, "electionPort=3890\nquorumPort=2890\npeerType=1\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_timeouts_follow_tick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_properties_syntax, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeated_key_last_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_value_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clamped_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key_warns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_security_keys_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_data_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_myid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quorum_requirements, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_port_from_server_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_whitelist, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_standalone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_quorum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dynamic_config_file, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

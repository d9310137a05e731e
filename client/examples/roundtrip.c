/*
 * roundtrip: the smallest whole program on libquorum_client. It connects to
 * an ensemble (quorumd or Apache ZooKeeper), creates a node, reads it back,
 * deletes it with the version it read, and checks it is gone.
 *
 *     cc roundtrip.c $(pkg-config --cflags --libs quorum_client) -o roundtrip
 *     ./roundtrip 127.0.0.1:2181 /roundtrip-demo
 *
 * It prints one line per step and exits 0 when every step did what it
 * should, 1 otherwise (with the library's message for the error).
 */
#include <stdio.h>
#include <string.h>

#include <quorum_client.h>

static int fail(const char *step, int err)
{
	fprintf(stderr, "roundtrip: %s: %s\n", step, qc_strerror(err));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: roundtrip HOSTS PATH\n");
		return 2;
	}
	const char *path = argv[2];
	const char value[] = "hello from libquorum_client";
	struct qc_options o = { .hosts = argv[1], .session_timeout_ms = 10000 };
	struct qc_client *c = NULL;
	struct qc_result *r = NULL;
	int rc = 1, err;

	if ((err = qc_open(&o, &c)) != ZOK)
		return fail("open", err);
	if ((err = qc_wait_connected(c, 10000)) != ZOK) {
		fail("connect", err);
		goto out;
	}
	printf("connected: session 0x%llx\n", (unsigned long long)qc_session_id(c));

	err = qc_create(c, path, value, (int32_t)strlen(value), NULL, 0, ZK_PERSISTENT, 0, &r);
	if (err != ZOK) {
		fail("create", err);
		goto out;
	}
	printf("created: %s (czxid 0x%llx)\n", r->path, (unsigned long long)r->stat->czxid);
	qc_result_free(r);
	r = NULL;

	if ((err = qc_get_data(c, path, NULL, NULL, &r)) != ZOK) {
		fail("get_data", err);
		goto out;
	}
	if (r->data_len != (int32_t)strlen(value) || memcmp(r->data, value, strlen(value)) != 0) {
		fprintf(stderr, "roundtrip: read back %d bytes that differ from what was written\n",
			(int)r->data_len);
		goto out;
	}
	printf("read: \"%.*s\" (version %d)\n", (int)r->data_len, (const char *)r->data,
	       (int)r->stat->version);
	int32_t version = r->stat->version;
	qc_result_free(r);
	r = NULL;

	if ((err = qc_delete(c, path, version)) != ZOK) {
		fail("delete", err);
		goto out;
	}
	err = qc_exists(c, path, NULL, NULL, NULL);
	if (err != ZNONODE) {
		fprintf(stderr, "roundtrip: %s still answers \"%s\" after its delete\n", path,
			qc_strerror(err));
		goto out;
	}
	printf("deleted: %s\n", path);
	rc = 0;
out:
	qc_result_free(r);
	qc_close(c);
	return rc;
}

/*
 * fuzz_snapshot: the libFuzzer entry point for loading a snapshot.
 *
 * The input is a snapshot file's bytes, as a damaged disk or a hostile
 * leader (a SNAP sync) or an operator's restore would hand them over.
 * snapshot_load_image() must either refuse it (a negative errno, the tree
 * untouched on -EUCLEAN) or load it; what it loaded must serialise again
 * and load again to the same node count, sessions and last zxid. Each
 * input is tried twice: as it is, and with its trailing CRC made right,
 * so that mutations reach the records behind the checksum (a disk's
 * damage, or a peer's lie, that a CRC does not catch). The same bytes also
 * arrive as a leader's file does (snapshot_recv_write() in pieces), and
 * the loader that follows the receive must end on them too, without the
 * CRC's protection: it must take what the image load takes, to the same
 * node count, sessions and zxid, and end on anything else. Any
 * disagreement aborts. tests/fuzz/regress.c runs this over
 * corpus-snapshot/.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "byteorder.h"
#include "crc32c.h"
#include "snapshot.h"
#include "tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SESSIONS 4096
#define RECEIVED_NODES_MAX 65536

struct sessions {
	struct storage_session s[MAX_SESSIONS];
	size_t n;
};

static int keep_session(void *ctx, const struct storage_session *ss)
{
	struct sessions *ss_all = ctx;
	if (ss_all->n == MAX_SESSIONS)
		return -E2BIG;
	ss_all->s[ss_all->n++] = *ss;
	return 0;
}

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_snapshot: %s\n", what);
		abort();
	}
}

/* The bytes received as a leader's file, in pieces of a size the input
 * picks; what the receive's loader made of them. want: the image load's
 * tree and sessions when it took them, else NULL. */
static void received(const uint8_t *data, size_t size, int64_t zxid, const struct tree *want,
		     const struct sessions *want_s)
{
	/* A directory per input, gone with it: libFuzzer may end the
	 * process without atexit handlers. */
	char dir[] = "/tmp/fuzz-snapshot-XXXXXX";
	check(mkdtemp(dir) != NULL, "mkdtemp");
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	check(dirfd >= 0, "open the directory");
	struct snapshot_recv *rv;
	check(snapshot_recv_open(&rv, dirfd, zxid) == 0, "snapshot_recv_open");
	size_t piece = size ? 1 + data[size / 2] * 13 : 1;
	for (size_t off = 0; off < size; off += piece)
		check(snapshot_recv_write(rv, data + off, size - off < piece ? size - off : piece) == 0,
		      "snapshot_recv_write");
	struct tree *t = NULL;
	struct storage_session *ss = NULL;
	size_t n = 0;
	int rc = snapshot_recv_loaded(rv, &t, &ss, &n);
	check(rc != -ENOENT, "no loader");
	if (want)
		check(rc == 0, "the loader refused what the image load took");
	if (rc == 0) {
		check(tree_last_zxid(t) == zxid, "the loader's tree has another zxid");
		if (want) {
			check(tree_node_count(t) == tree_node_count(want), "the loader's node count");
			check(n == want_s->n, "the loader's session count");
			for (size_t i = 0; i < n; i++)
				check(ss[i].id == want_s->s[i].id &&
					      ss[i].timeout == want_s->s[i].timeout &&
					      memcmp(ss[i].passwd, want_s->s[i].passwd, 16) == 0,
				      "a session the loader read");
		}
	} else {
		check(t == NULL && ss == NULL, "a refusal handed something on");
	}
	tree_free(t);
	free(ss);
	snapshot_recv_abort(rv); /* the file goes */
	close(dirfd);
	check(rmdir(dir) == 0, "the receive left a file behind");
}

static void one(const uint8_t *data, size_t size)
{
	static struct sessions a, b;
	a.n = b.n = 0;
	/* the zxid a file's name (or a restore's header) gives it */
	int64_t zxid = size >= 16 ? (int64_t)get_le64(data + 8) : 0;
	struct tree *t = tree_new();
	check(t != NULL, "tree_new");
	int64_t empty_nodes = tree_node_count(t);
	int rc = snapshot_load_image(data, size, zxid, "(fuzz)", t, keep_session, &a);
	if (rc == -EUCLEAN)
		check(tree_node_count(t) == empty_nodes, "a refused snapshot touched the tree");
	if (rc == 0) {
		check(tree_last_zxid(t) == zxid, "the loaded tree's zxid is not the snapshot's");
		struct snapshot_image img;
		check(snapshot_serialize(t, a.s, a.n, &img) == 0, "serialising what was loaded");
		check(img.zxid == zxid, "serialised zxid");
		struct tree *u = tree_new();
		check(u != NULL, "tree_new");
		check(snapshot_load_image(img.buf, img.len, img.zxid, "(again)", u, keep_session,
					  &b) == 0,
		      "what was loaded does not load again");
		check(tree_node_count(u) == tree_node_count(t), "node count changed");
		check(b.n == a.n, "session count changed");
		for (size_t i = 0; i < a.n; i++)
			check(a.s[i].id == b.s[i].id && a.s[i].timeout == b.s[i].timeout &&
				      memcmp(a.s[i].passwd, b.s[i].passwd, 16) == 0,
			      "a session changed");
		tree_free(u);
		snapshot_image_free(&img);
	}
	/* A header claiming many nodes has the loader reserve an index for
	 * them (a bounded lie, test_storage_snap tries one): a fuzzer's
	 * random counts would spend its time there. */
	if (size < 24 || get_le64(data + 16) <= RECEIVED_NODES_MAX)
		received(data, size, zxid, rc == 0 ? t : NULL, &a);
	tree_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size);
	if (size >= SNAPSHOT_HEADER_SIZE + 4) {
		uint8_t *fixed = malloc(size);
		check(fixed != NULL, "malloc");
		memcpy(fixed, data, size);
		put_le32(fixed + size - 4, crc32c(0, fixed, size - 4));
		one(fixed, size);
		free(fixed);
	}
	return 0;
}

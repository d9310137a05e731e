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
 * damage, or a peer's lie, that a CRC does not catch). Any disagreement
 * aborts. tests/fuzz/regress.c runs this over corpus-snapshot/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "crc32c.h"
#include "snapshot.h"
#include "tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SESSIONS 4096

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

/*
 * fuzz_peer: the libFuzzer entry point for what peers send a member: packed
 * PeerMsg frames (proto/peer.proto) decoded and handed to a ZAB core, with
 * time passing, links breaking and the disk completing in between.
 *
 * The core is server 2 of voters {1, 2, 3} and observer 4 (an observer when
 * the input's first byte is odd: then it is server 4). The rest of the
 * input is a script of steps, each one byte of opcode and its operands:
 *
 *   0  FROM LEN(2) BYTES   a frame of LEN bytes from server FROM % 6
 *                          (0 names no server; 5 is in no config, as a
 *                          server being added is): unpacked as a PeerMsg,
 *                          and if it decodes, its `from` set to FROM and
 *                          given to zab_receive(); a nonce of 1 stands for
 *                          the core's current one with FROM (random, so a
 *                          seed could not name it)
 *   1  MS                  time passes (MS * 8 ms), then zab_tick()
 *   2  PEER                zab_peer_reset(PEER % 6)
 *   3                      the oldest append completes (zab_appended)
 *   4  STATUS              the snapshot install completes, failing if odd
 *   5  LEN(1) BYTES        zab_propose() of those bytes, if it may
 *   6                      a read round begins (zab_read_begin)
 *   7  LEN(2) BYTES        a Hello frame, unpacked (what peer.c reads first)
 *
 * Checks after every step (any failure aborts): the core's accessors agree
 * with one another and with what it asked of the disk (it never commits
 * beyond what it appended, nor out of zxid order, nor appends out of
 * order); an observer never leads; a leader leads itself. What the core
 * sends is packed and unpacked again. tests/fuzz/regress.c runs this over
 * corpus-peer/; mkcorpus_peer.py writes its seeds.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.pb-c.h"
#include "zab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_peer: %s\n", what);
		abort();
	}
}

#define MAX_APPENDS 4096

static struct {
	int64_t now;
	uint64_t rnd;
	int64_t appends[MAX_APPENDS]; /* queued, not completed */
	size_t n_appends;
	int64_t last_appended;       /* the newest zxid appended */
	int64_t last_committed;      /* the newest io.commit() */
	bool installing;
	int64_t install_zxid;
	uint32_t me;                 /* the core's server id */
} st;

static int64_t io_now(void *ctx)
{
	(void)ctx;
	return st.now;
}

static uint64_t io_random(void *ctx)
{
	(void)ctx;
	st.rnd = st.rnd * 6364136223846793005ull + 1442695040888963407ull;
	return st.rnd >> 11 | 1;
}

static void io_send(void *ctx, uint32_t to, const Quorum__PeerMsg *m)
{
	(void)ctx;
	/* Server 5 votes in no config: a learner, as a server being added is,
	 * which the core may answer; 0 and ids past 255 name nobody. */
	check(to >= 1 && to <= 255 && to != st.me, "sends to no server, or to itself");
	uint8_t buf[8192];
	size_t n = quorum__peer_msg__get_packed_size(m);
	if (n > sizeof(buf))
		return; /* a snapshot: too big to bother */
	quorum__peer_msg__pack(m, buf);
	Quorum__PeerMsg *back = quorum__peer_msg__unpack(NULL, n, buf);
	check(back != NULL, "what it sends does not unpack");
	quorum__peer_msg__free_unpacked(back, NULL);
}

static int io_append(void *ctx, int64_t zxid, const uint8_t *txn, size_t len)
{
	(void)ctx;
	(void)txn;
	(void)len;
	check(zxid > st.last_appended || st.n_appends == 0, "appends out of zxid order");
	if (st.n_appends == MAX_APPENDS)
		return -ENOSPC;
	st.appends[st.n_appends++] = zxid;
	st.last_appended = zxid;
	return 0;
}

static int io_truncate(void *ctx, int64_t zxid)
{
	(void)ctx;
	check(st.n_appends == 0, "truncates with appends in flight");
	st.last_appended = zxid;
	st.last_committed = zxid < st.last_committed ? zxid : st.last_committed;
	return 0;
}

static int io_read_log(void *ctx, int64_t after, int64_t upto,
		       int (*fn)(void *arg, int64_t zxid, const uint8_t *txn, size_t len), void *arg)
{
	(void)ctx;
	(void)after;
	(void)upto;
	(void)fn;
	(void)arg;
	return -ERANGE; /* nothing on disk: the leader sends a snapshot */
}

static int io_snapshot_take(void *ctx, uint32_t to, int64_t at_least, uint8_t **bytes, size_t *len, int64_t *zxid)
{
	(void)ctx;
	(void)to;
	(void)at_least;
	*bytes = malloc(1);
	*len = 0;
	*zxid = st.last_committed;
	return *bytes ? 0 : -ENOMEM;
}

static int io_snapshot_install(void *ctx, const uint8_t *bytes, size_t len, int64_t zxid)
{
	(void)ctx;
	(void)bytes;
	(void)len;
	check(st.n_appends == 0 && !st.installing, "installs with appends or an install in flight");
	st.installing = true;
	st.install_zxid = zxid;
	return 0;
}

static int io_save_epochs(void *ctx, int64_t accepted, int64_t current)
{
	(void)ctx;
	check(current <= accepted, "currentEpoch above acceptedEpoch");
	return 0;
}

static void io_commit(void *ctx, int64_t zxid, const uint8_t *txn, size_t len, uint32_t origin,
		      uint64_t origin_seq)
{
	(void)ctx;
	(void)txn;
	(void)len;
	(void)origin;
	(void)origin_seq;
	check(zxid > st.last_committed, "commits out of zxid order");
	check(zxid <= st.last_appended, "commits what it never appended");
	for (size_t i = 0; i < st.n_appends; i++)
		check(st.appends[i] != zxid, "commits before the append is durable");
	st.last_committed = zxid;
}

static const struct zab_io io = {
	.now_ms = io_now,
	.random = io_random,
	.send = io_send,
	.append = io_append,
	.truncate = io_truncate,
	.read_log = io_read_log,
	.snapshot_take = io_snapshot_take,
	.snapshot_install = io_snapshot_install,
	.save_epochs = io_save_epochs,
	.commit = io_commit,
};

static void check_core(const struct zab *z, bool observer)
{
	enum zab_role role = zab_role(z);
	check(role == ZAB_LOOKING || role == ZAB_FOLLOWING || role == ZAB_LEADING, "role");
	check(!(observer && role == ZAB_LEADING), "an observer leads");
	check(role != ZAB_LEADING || zab_leader(z) == 2, "a leader that does not lead itself");
	check(role != ZAB_LOOKING || !zab_serving(z), "serves while looking");
	check(zab_committed(z) <= zab_last_logged(z), "committed beyond the log");
	check(zab_committed(z) >= st.last_committed, "the core forgets a commit");
	check(zab_next_zxid(z) == 0 || zab_next_zxid(z) > zab_last_logged(z),
	      "the next zxid is not after the log");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	memset(&st, 0, sizeof(st));
	st.now = 1000;
	st.rnd = 0x5eed;
	bool observer = data[0] & 1;
	st.me = observer ? 4 : 2;
	struct zab_config cfg = {
		.id = observer ? 4 : 2,
		.voters = { 1, 2, 3 },
		.n_voters = 3,
		.observers = { 4 },
		.n_observers = 1,
		.tick_ms = 100,
		.init_limit = 10,
		.sync_limit = 5,
		.finalize_wait_ms = 50,
		.max_outstanding = 64,
	};
	struct zab_log_state ls = { 0 };
	struct zab *z;
	check(zab_new(&z, &cfg, &ls, &io) == 0, "zab_new");
	zab_start(z);
	size_t i = 1;
	while (i < size) {
		uint8_t op = data[i++] % 8;
		size_t n;
		switch (op) {
		case 0:
		case 7: {
			if (i + 3 > size)
				goto done;
			uint32_t from = data[i] % 6;
			n = (size_t)data[i + 1] << 8 | data[i + 2];
			i += 3;
			if (n > size - i)
				n = size - i;
			if (op == 7) {
				Quorum__Hello *h = quorum__hello__unpack(NULL, n, data + i);
				if (h)
					quorum__hello__free_unpacked(h, NULL);
			} else {
				Quorum__PeerMsg *m = quorum__peer_msg__unpack(NULL, n, data + i);
				if (m) {
					m->from = from;
					if (m->nonce == 1)
						m->nonce = zab_nonce_of(z, from);
					zab_receive(z, from, m);
					quorum__peer_msg__free_unpacked(m, NULL);
				}
			}
			i += n;
			break;
		}
		case 1:
			if (i >= size)
				goto done;
			st.now += (int64_t)data[i++] * 8;
			zab_tick(z);
			break;
		case 2:
			if (i >= size)
				goto done;
			zab_peer_reset(z, data[i++] % 6);
			break;
		case 3:
			if (st.n_appends > 0) {
				int64_t zxid = st.appends[0];
				memmove(st.appends, st.appends + 1, (st.n_appends - 1) * sizeof(int64_t));
				st.n_appends--;
				zab_appended(z, zxid, 0);
			}
			break;
		case 4:
			if (i >= size)
				goto done;
			if (st.installing) {
				int status = data[i] & 1 ? -EIO : 0;
				st.installing = false;
				if (status == 0) {
					st.last_appended = st.install_zxid;
					st.last_committed = st.install_zxid;
				}
				zab_snapshot_installed(z, st.install_zxid, status);
			}
			i++;
			break;
		case 5: {
			if (i >= size)
				goto done;
			n = data[i++];
			if (n > size - i)
				n = size - i;
			int64_t zxid = zab_next_zxid(z);
			if (zxid != 0)
				zab_propose(z, zxid, data + i, n, 2, 0);
			i += n;
			break;
		}
		case 6:
			zab_read_begin(z);
			break;
		}
		check_core(z, observer);
	}
done:
	zab_free(z);
	return 0;
}

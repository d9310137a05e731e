/*
 * sim_int: what the simulation's two halves share: the world (nodes, the
 * network's messages, the checker's histories), seeded randomness, and the
 * self-describing txns.
 *
 *   sim.c       the engine: the network, events, faults, the client, set-up,
 *               liveness and a run
 *   sim_node.c  a node: its host's io callbacks, its life cycle, and the
 *               checker that watches every one of them
 *   sim_disk.c  what a node keeps: the txn codec, its log (txnlog files or
 *               memory), torn writes and failed syncs, and its tree
 */
#ifndef QUORUM_SIM_INT_H
#define QUORUM_SIM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "txn.pb-c.h"
#include "txnlog.h"
#include "tree.h"
#include "zab.h"

#define MAX_NODES 7 /* voters, observers and servers to add, together */
#define MAX_EPOCHS 4096
#define MAX_READS 64 /* read rounds a node tracks at once; more are not begun */
#define TICK_MS 100
#define SYNC_LIMIT 5 /* ticks */
#define LIVENESS_MS 60000
/* While a member is still catching up (applying txns the others sent, at
 * the pace of a small stream window over slow links), the wait goes on,
 * LIVENESS_MS past its latest txn, up to this long after healing. */
#define LIVENESS_MAX_MS 600000
#define LIVENESS_TXNS 5

/* ---- randomness ----------------------------------------------------------- */

struct rng {
	uint64_t s[4];
};

static inline uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

static inline double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) / 9007199254740992.0;
}

static inline bool chance(struct rng *r, double p)
{
	return p > 0 && rng_unit(r) < p;
}

static inline int64_t between(struct rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

/* A swarm knob: off half the time, else uniform below max. */
static inline double knob(struct rng *r, double max)
{
	return chance(r, 0.5) ? 0 : rng_unit(r) * max;
}

/* ---- txns: real Txns that carry their id ------------------------------------ */

/*
 * Txn id n (1, 2, ...) is a packed quorum.Txn (proto/txn.proto), as
 * quorumd logs and replicates: its zxid, and a create of "/<16 hex digits
 * of n>" whose data is txn_payload(n), bytes that name n again. Every
 * txn creates a node of its own, so a tree that applied it holds it, and
 * one that applied it twice refuses the second (see sim_disk.c).
 */
#define TXN_MAX 160 /* a packed txn of this run is never longer */

static inline size_t txn_payload_len(uint64_t id)
{
	return 8 + (size_t)(id * 7 % 29);
}

static inline void txn_payload(uint64_t id, uint8_t *out)
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(id >> (8 * i));
	for (size_t i = 8; i < txn_payload_len(id); i++)
		out[i] = (uint8_t)(id * 31 + i);
}

/* ---- sim_disk.c: the txn codec ---- */
/* Packs txn id at zxid into out (TXN_MAX bytes); returns its length. */
size_t txn_pack(uint64_t id, int64_t zxid, uint8_t *out);
/* The txn id an unpacked Txn carries, or 0 if it is not a txn of this run. */
uint64_t txn_id(const Quorum__Txn *t);
/* The same for packed bytes; *zxid gets the Txn's zxid. */
uint64_t txn_decode(const uint8_t *b, size_t len, int64_t *zxid);

/* A reconfig's txn id carries its config: bit 62, then the observers'
 * and the voters' masks (bit i: node i + 1) in its low 16 bits. */
#define CFG_TXN (1ull << 62)

static inline uint64_t cfg_txn_id(uint64_t seq, unsigned voters, unsigned observers)
{
	return CFG_TXN | seq << 16 | (uint64_t)(observers & 0xff) << 8 | (voters & 0xff);
}

static inline struct zab_members members_of(unsigned voters, unsigned observers, int64_t version)
{
	struct zab_members m = {.version = version};
	for (int i = 0; i < 8; i++) {
		if (voters >> i & 1)
			m.voters[m.n_voters++] = (uint32_t)i + 1;
		else if (observers >> i & 1)
			m.observers[m.n_observers++] = (uint32_t)i + 1;
	}
	return m;
}

static inline bool cfg_of_id(uint64_t id, struct zab_members *out)
{
	if (!(id & CFG_TXN))
		return false;
	*out = members_of((unsigned)(id & 0xff), (unsigned)(id >> 8 & 0xff), 0);
	return true;
}

static inline bool votes_in(const struct zab_members *m, uint32_t id)
{
	for (int i = 0; i < m->n_voters; i++)
		if (m->voters[i] == id)
			return true;
	return false;
}

/* ---- P: zxid -> proposal ----------------------------------------------------- */

struct prop {
	int64_t zxid; /* 0: empty slot */
	uint64_t id;
};

struct pmap {
	struct prop *v;
	size_t cap, n;
};

struct prop *pmap_find(struct pmap *m, int64_t zxid, bool insert);

/* ---- the world ---------------------------------------------------------------- */

struct entry {
	int64_t zxid;
	uint64_t id;
};

struct elist {
	struct entry *v;
	size_t n, cap;
};

static inline void elist_push(struct elist *l, struct entry e)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = e;
}

static inline void elist_copy(struct elist *dst, const struct entry *src, size_t n)
{
	dst->n = 0;
	for (size_t i = 0; i < n; i++)
		elist_push(dst, src[i]);
}

struct sim;

struct node {
	struct sim *sim;
	uint32_t id;
	bool up;
	struct zab *z;
	/* disk */
	int64_t acc_epoch, cur_epoch;
	struct elist snap;       /* the durable snapshot: the state as of snap_zxid
				    (file-backed: what its newest snapshot file
				    must hold) */
	int64_t snap_zxid;
	struct elist log;        /* txns after snap_zxid */
	size_t n_durable;        /* log[0..n_durable) synced */
	int64_t *done_at;        /* per log entry: when its append completes */
	size_t cap_done;
	bool installing;
	struct elist inst;       /* the txns a leader's snapshot holds, */
	struct tree *inst_tree;  /* and its image loaded, until it is installed */
	uint8_t *inst_img;       /* file-backed: the image's bytes, written then */
	/* The last image snapshot_take made (a committed state, so good for
	 * ever): given again while the core takes one that old, as quorumd
	 * gives its newest snapshot file. */
	uint8_t *old_img;
	size_t old_len;
	int64_t old_zxid;
	size_t inst_len;
	int64_t inst_zxid, inst_at;
	/* the log on disk in a file-backed run: server/txnlog.c in a
	 * directory of its own (sim_disk.c); log above is what the checker
	 * believes it holds, and is rebuilt from the files at each boot */
	struct txnlog *tl;       /* NULL while down, and in memory-only runs */
	int dirfd;               /* its directory, for txnlog's fsyncs */
	size_t n_written;        /* log[0..n_written) went through txnlog_append()
				    and its sync returned: what a crash keeps */
	int64_t log_from;        /* the log files hold every txn of its history
				    after this zxid (purges and installs move it) */
	int64_t rotten;          /* the snapshot file made corrupt, 0: none */
	bool roll_next;          /* compacted: the next write begins a segment,
				    as storage does after a snapshot */
	bool sync_fails;         /* the next write's sync fails (EIO) */
	bool sync_failed;        /* it did: the member stops, no write in flight */
	/* host */
	struct elist state;      /* applied txns, in order */
	struct tree *tree;       /* state, applied through server/tree.c; NULL
				    while down */
	struct tree *rec_tree;   /* file-backed, at boot: what recovery made of
				    its files (snapshot, then log), until it is
				    found equal to tree and takes its place */
	int64_t tree_base;       /* its node count before any txn ("/", /zookeeper...) */
	uint64_t digest;         /* a chain over what the tree showed after each
				    txn of state: equal histories, equal digests */
	size_t matched;          /* state[0..matched) equals G's prefix */
	int64_t clock_off;
	int64_t next_tick;
	int64_t alive_core;      /* the core's clock at its last tick or message */
	int64_t paused_until;    /* stopped (SIGSTOP) until then: no tick, no
				    delivery, no completion; what comes waits */
	uint32_t followed;       /* the leader it last served under, and in which */
	int64_t followed_epoch;  /* epoch: a rejoin comes back to both */
	bool looked;             /* it went LOOKING since */
	bool crash_pending;      /* a scenario asked for a crash after this call */
	bool dying;              /* it died inside this call: what it sends is lost */
	size_t n_committed;      /* state[0..n_committed) came through io.commit()
				    this life: all a compaction may keep */
	bool serving, leading;
	int64_t epoch;
	/* read rounds begun and not yet confirmed, each with whether this node
	 * held everything committed anywhere when it began (it must, or it
	 * may never be confirmed) */
	struct { uint64_t round; int64_t lacked; } reads[MAX_READS];
	int n_reads;
	/* the active config, as the host persists it (io.members) */
	struct zab_members disk_cfg;
};

/* The last txn the node applied (0: none). */
static inline int64_t applied_zxid(const struct node *nd)
{
	return nd->state.n ? nd->state.v[nd->state.n - 1].zxid : 0;
}

struct msg {
	int64_t t;
	uint64_t seq;
	uint32_t from, to;
	uint8_t *buf;
	size_t len;
};

struct sim {
	struct sim_options o;
	struct sim_stats *st;
	struct rng r;
	int n;                   /* nodes: voters 1..n_voters, then observers, */
	int n_voters;            /* then (reconfig runs) servers outside the */
	int n_observers;         /* initial config, which join later */
	bool reconfig;           /* reconfigs are proposed in this run */
	double p_reconfig;
	int64_t now;
	struct node nodes[MAX_NODES];
	/* network */
	struct msg *heap;
	size_t n_heap, cap_heap;
	uint64_t msg_seq;
	bool cut[MAX_NODES][MAX_NODES];
	int64_t fifo_t[MAX_NODES][MAX_NODES];
	size_t queued[MAX_NODES][MAX_NODES]; /* bytes from -> to not yet delivered */
	bool pumping;            /* inside zab_pump(): sends count as paced_sends */
	/* swarm knobs */
	double p_loss, p_dup, p_crash, p_restart, p_part, p_heal, p_clock, p_propose, p_compact,
		p_reset, p_isolate_leader, p_drop_acks, p_pause;
	double p_crash_seen;     /* a crash resets its peers' links (kill -9), else silence */
	double p_leader_link;    /* SCN_LEADER_LINK: reset the leader's link to a follower */
	double p_flap, p_flap_cut; /* SCN_FLAP: reset the flapper's links; cut them a while */
	int flapper;             /* SCN_FLAP: its index, -1 until the ensemble first serves */
	int64_t flap_heal_at;    /* when its cut links come back (0: not cut) */
	int64_t calm_epoch;      /* calm scenarios: the epoch first established, */
	uint32_t calm_leader;    /* and its leader, which must never change */
	bool reorder, torn;
	int64_t max_delay, max_disk;
	double p_sync_fail;      /* a write's sync fails: that member stops */
	double p_epoch_crash;    /* the process dies inside a save of its epochs */
	double p_epoch_full;     /* a save of the epochs fails (a full disk): nothing written */
	double p_snap_crash;     /* ...or while it writes a snapshot of its own */
	double p_install_crash;  /* ...or while it installs a leader's */
	double p_rot;            /* a down member's newest snapshot file rots */
	double p_batch;          /* a write's appends are reported together
				    (zab_appended_n()), as quorumd reports a sync's */
	size_t max_diff_bytes;   /* the cores' zab_config.max_diff_bytes */
	size_t stream_window;    /* ... and stream_window (io.backlog is queued[][]) */
	struct snapshot_writer *snap_writer; /* snapshot.c's, for every member */
	int64_t segment_bytes, prealloc_bytes; /* file-backed runs: txnlog's sizes */
	bool faults;
	/* checker */
	struct pmap P;
	struct elist G;
	struct pmap D;           /* zxid -> the tree digest (in .id) of the first
				    member to commit it: every other must match */
	int64_t leader_of_epoch[MAX_EPOCHS]; /* epoch -> id; small epochs only */
	int64_t acks[MAX_EPOCHS][MAX_NODES]; /* per epoch, each node's cumulative ack */
	int64_t A[MAX_EPOCHS];               /* per epoch, the quorum-acked point */
	/* the configs G went through: [0] the initial one, then each
	 * committed reconfig (version = its zxid) */
	struct zab_members *gcfg;
	size_t n_gcfg;
	bool reconfig_proposed;              /* A is kept only until then */
	uint64_t next_txn;
	bool failed;
	bool trace;
	char *why;
	size_t why_len;
};

__attribute__((format(printf, 2, 3)))
void fail(struct sim *s, const char *fmt, ...);

#define ZX(z) (long long)zab_epoch_of(z), (long long)((z)&0xffffffff)

/* ---- sim_node.c ---- */
int64_t log_last(const struct node *nd);
void note_ack(struct sim *s, struct node *nd, int64_t e, int64_t zxid);
void promote_state(struct sim *s, struct node *nd);
size_t agree_with_g(const struct sim *s, const struct entry *v, size_t n, bool *conflict);
void node_boot(struct sim *s, struct node *nd, bool restart);
void node_crash(struct sim *s, struct node *nd);
void node_compact(struct sim *s, struct node *nd);
void peers_see_reset(struct sim *s, struct node *nd);
void after_call(struct sim *s, struct node *nd);

/* ---- sim_disk.c: a node's log on disk, and its tree ---- */
void disk_open(struct sim *s, struct node *nd);
int disk_write(struct sim *s, struct node *nd);
void disk_crash(struct sim *s, struct node *nd);
int disk_truncate(struct sim *s, struct node *nd, int64_t zxid);
void disk_snapshot(struct sim *s, struct node *nd, int64_t zxid);
void disk_snapshot_torn(struct sim *s, struct node *nd, bool whole);
void disk_compact(struct sim *s, struct node *nd);
/* How far an install got before the process died (disk_install()). */
enum install_stop {
	INSTALL_TMP_TORN,  /* a prefix of the image in a temporary file */
	INSTALL_TMP_WHOLE, /* all of it, not renamed */
	INSTALL_DURABLE,   /* snapshot.<zxid>.install, and no more */
	INSTALL_LOG_GONE,  /* newer snapshots and the log gone too, not renamed */
	INSTALL_DONE,
};
void disk_install(struct sim *s, struct node *nd, enum install_stop stop);
void disk_rot(struct sim *s, struct node *nd);
int disk_read(struct node *nd, int64_t after, int64_t upto,
	      int (*fn)(void *arg, int64_t zxid, const uint8_t *txn, size_t len), void *arg);
void disk_close(struct sim *s, struct node *nd);
int disk_save_epochs(struct sim *s, struct node *nd, int64_t accepted, int64_t current,
		     bool crash);
void disk_remove(struct sim *s, struct node *nd);
int64_t disk_synced(const struct node *nd);
void state_tree_rebuild(struct sim *s, struct node *nd);
void state_tree_commit(struct sim *s, struct node *nd, struct entry e);
void state_tree_check(struct sim *s, struct node *nd);
int state_tree_image(struct sim *s, struct node *nd, uint8_t **bytes, size_t *len, int64_t *zxid);
int state_tree_load(struct node *nd, const uint8_t *bytes, size_t len, int64_t zxid,
		    struct elist *out);
void state_tree_installed(struct sim *s, struct node *nd);
void state_tree_recovered(struct sim *s, struct node *nd);

/* ---- sim.c ---- */
void io_send(void *ctx, uint32_t to, const Quorum__PeerMsg *m);
void io_read_confirmed(void *ctx, uint64_t round);

#endif

/*
 * msim: a deterministic simulation of whole quorumd members.
 *
 * tests/sim drives the ZAB core alone, with a host written for it. Here
 * each member is quorumd's own code from the core up to the request
 * pipeline: server/replica.c (with snapsync.c, epoch.c, members.c) over
 * replication/zab*.c, server/db.c over tree.c and snapshot.c for the state,
 * server/storage.c over txnlog.c for durability, and server/prep.c turning
 * clients' writes into txns, on the leader for its own clients and for
 * those a follower forwards. Only what lies under a member is simulated,
 * at link time, by the functions of the same names:
 *
 *   msim_os.c     libuv's timers, checks, async handles and threadpool
 *                 work on a simulated clock, the clock itself
 *                 (clock_gettime) and getrandom(), per member
 *   msim_net.c    replication/peer.h's peer_net: per-link FIFO delivery
 *                 after a seeded delay, resets, partitions
 *   msim_store.c  storage's sync thread (server/storage_sync.c): the rest
 *                 of server/storage.c and storage_snap.c runs as it is;
 *                 a batch is written when the simulation says its sync
 *                 ran, a sync may fail, a crash tears what was not synced
 *   msim_host.c   the member: the replica_host that ensemble.c is in
 *                 quorumd, its db and prep, and the simulated clients
 *   msim.c        the engine (time, faults), the checker, and main()
 *
 * Everything runs on one thread; msim_current is the member whose code
 * runs, so that the clock, randomness and libuv calls are its own.
 */
#ifndef QUORUM_MSIM_H
#define QUORUM_MSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "db.h"
#include "prep.h"
#include "replica.h"
#include "storage.h"

#define MSIM_MAX 5          /* members */
#define MSIM_TICK_MS 100
#define MSIM_HANDLES 16     /* libuv handles per member */

/* ---- seeded randomness ------------------------------------------------ */

struct msim_rng {
	uint64_t s;
};

static inline uint64_t msim_next(struct msim_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline bool msim_chance(struct msim_rng *r, double p)
{
	return p > 0 && (double)(msim_next(r) >> 11) / 9007199254740992.0 < p;
}

/* Uniform in [lo, hi]. */
static inline int64_t msim_between(struct msim_rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(msim_next(r) % (uint64_t)(hi - lo + 1));
}

/* ---- msim_os.c: a member's loop ----------------------------------------- */

enum msim_kind { MSIM_TIMER, MSIM_PREPARE, MSIM_CHECK, MSIM_ASYNC };

struct msim_handle {
	uv_handle_t *h;      /* NULL: free slot */
	enum msim_kind kind;
	bool active, closing;
	bool sent;           /* async: uv_async_send() since its last callback */
	uv_close_cb close_cb;
	uint64_t due_ms, repeat_ms; /* timers */
	uv_timer_cb timer_cb;
	uv_prepare_cb prepare_cb;
	uv_check_cb check_cb;
	uv_async_cb async_cb;
	uint64_t order;      /* start order: timers due together run in it */
};

/* A uv_queue_work() request: the threadpool's work, run when the
 * simulation says (msim_loop_work()). */
struct msim_work {
	uv_work_t *req;      /* NULL: free slot */
	uv_work_cb work_cb;
	uv_after_work_cb after_cb;
	bool cancelled;      /* uv_cancel(): after_cb with UV_ECANCELED next turn */
};

struct msim_loop {
	uv_loop_t loop;      /* what the member's code is given; .data = this */
	struct msim_handle h[MSIM_HANDLES];
	struct msim_work work[4];
	uint64_t started;
};

void msim_loop_init(struct msim_loop *l);
/* One turn of the loop at the current time: due timers, async
 * callbacks, checks, then close callbacks. Returns whether anything ran. */
bool msim_loop_turn(struct msim_loop *l);
/* Whether work is queued; running it is a worker finishing: its work_cb,
 * then its after_cb on the loop. */
bool msim_loop_work_queued(const struct msim_loop *l);
void msim_loop_work(struct msim_loop *l);
/* A crashed member's handles vanish without their callbacks. */
void msim_loop_drop(struct msim_loop *l);

/* ---- msim_net.c: the peer network --------------------------------------- */

/* The network between members: every link's queue and whether it is cut. */
void msim_net_reset_all(void);
/* Delivers what is due on every link to members that are up; a
 * delivery is one turn of the receiver's loop. Returns whether any was. */
bool msim_net_deliver(void);
/* Member i crashed: its links drop what they carry; peers see a reset
 * (seen) or nothing. */
void msim_net_crash(int i, bool seen);
/* Cuts (or heals) the link between i and j both ways. A heal resets the
 * link at both ends: each end's next connection is a new one. */
void msim_net_cut(int i, int j, bool cut);
bool msim_net_cut_now(int i, int j);

/* ---- msim_store.c: storage ---------------------------------------------- */

/* Opens a member's storage (storage_open()) in dir on its loop, with
 * storage's callbacks. 0 or a negative errno (logged). */
int msim_store_open(struct storage **out, uv_loop_t *loop, const char *dir,
		    storage_durable_cb durable, void (*snapshot_done)(void *ctx, int64_t zxid,
								    int status), void *ctx);
/* Txns appended and not yet written (storage's pending batch). */
size_t msim_store_unsynced(const struct storage *s);
/* The sync thread's turn: the pending batch is written and synced, or
 * with fail its sync fails; the callbacks come on the next loop turn. */
void msim_store_sync(struct storage *s, bool fail);
/* The newest zxid on disk, synced: the log's last, or the newest
 * snapshot's. */
int64_t msim_store_durable(const struct storage *s);
/* Whether a snapshot's worker is still to run; running it ends it
 * (snapshot_done on the loop). */
bool msim_store_snapshot_busy(const struct storage *s);
void msim_store_snapshot_end(struct storage *s);
/* The process died: the pending batch is lost, or part of its first
 * write reaches the log file (torn, from r); a snapshot whose worker has
 * not run is lost. Closes s. */
void msim_store_crash(struct storage *s, struct msim_rng *r);
/* A clean stop: what is pending is written, a snapshot finished. */
void msim_store_close(struct storage *s);

/* ---- msim_host.c: a member ---------------------------------------------- */

/* A client's write, for the checker: a create of /w<id> holding id
 * (ephemeral: owned by session), a set of /w<node> to id, a delete of
 * /w<node>; or its session's createSession or closeSession. */
enum msim_op { MSIM_CREATE, MSIM_SET, MSIM_DELETE, MSIM_OPEN, MSIM_CLOSE };

struct msim_write {
	uint64_t id;
	enum msim_op op;
	uint64_t node;   /* a create's is id */
	int64_t session; /* the client's session (0: none) */
	bool ephemeral;
};

/* A client session: its client is connected to one member, pings it
 * (so the member touches it, and a follower tells the leader) unless it
 * is quiet, and the leader expires it when nothing was heard of it for
 * its timeout. */
#define MSIM_SESSIONS 32
#define MSIM_SESSION_TIMEOUT_MS 600

struct msim_session {
	int64_t id;
	int member;           /* its client's member (index) */
	bool open, closed;    /* createSession, closeSession acknowledged */
	bool gone;            /* its member said SessionExpired: the client
				 gives it up */
	int64_t quiet_until;  /* the client sends nothing (a pause) until then */
};

struct member {
	int idx;
	uint32_t id;
	bool up, serving, leading, failed;
	char dir[512];
	struct msim_loop loop;
	struct config cfg;
	struct storage *store;
	struct db db;
	struct prep prep;
	struct replica *replica;
	int64_t last_proposed;
	/* this member's clients' writes in flight: seq -> write */
	struct pending {
		uint64_t seq;
		struct msim_write w;
	} *pending;
	size_t n_pending, cap_pending;
	/* its clients' syncs in flight: each answered once the member has
	 * applied `reached` (the leader's commit point when it answered) */
	struct pending_sync {
		uint64_t seq;
		int64_t need;    /* the newest zxid acknowledged when it was sent */
		int64_t reached; /* -1 until answered */
	} *syncs;
	size_t n_syncs, cap_syncs;
	uint64_t next_seq;
	int since_snapshot;      /* commits since the last snapshot began */
	bool paused;             /* SIGSTOP'd: no turn runs, what comes waits */
	/* its peer network (msim_net.c), NULL while down or closed */
	struct peer_net *net;
	void *net_ctx;
	void (*net_recv)(void *ctx, uint32_t from, const Quorum__PeerMsg *m);
	void (*net_reset)(void *ctx, uint32_t peer);
	void (*net_closed)(void *ctx); /* peer_net_close()'s callback, due */
	void *net_closed_ctx;
	/* this member's clock: the simulation's at clock_rate per mille (a
	 * host starved, or its clock slewed), from clock_off_ms */
	int64_t clock_off_ms, clock_rate;
};

/* What runs saw, to show the faults and paths were reached. */
struct msim_stats {
	uint64_t writes, acked, commits, crashes, restarts, cuts, pauses, power_cuts, sync_failures;
	uint64_t snapshots, installs, reloads, leaderships, forwarded, torn_writes;
	uint64_t adopted; /* leaders whose recovered log tail became history */
	uint64_t syncs, syncs_answered, isolations;
	uint64_t deposed_syncs; /* syncs sent to a leader while a newer one led */
	uint64_t purges, acks_checked;
	uint64_t sessions_opened, sessions_closed, sessions_expired, ephemerals;
};

struct world {
	struct msim_stats st;
	struct msim_rng r;
	uint64_t seed;
	int64_t now_ms;
	int n;
	struct member m[MSIM_MAX];
	char root[320];
	bool verbose;
	/* swarm knobs, from the seed */
	int64_t max_delay_ms;  /* a message's delay: 1 to this */
	int snap_every;        /* commits between a member's snapshots */
	struct msim_session sessions[MSIM_SESSIONS];
	int n_sessions;
	/* checker */
	uint64_t next_write;
	char *why;
	size_t why_len;
	bool failed;
};

extern struct world *W;
extern struct member *msim_current;

/* Member m's code runs from here (its clock): returns whose ran before,
 * for msim_leave(). */
static inline struct member *msim_enter(struct member *m)
{
	struct member *prev = msim_current;
	msim_current = m;
	return prev;
}

static inline void msim_leave(struct member *prev)
{
	msim_current = prev;
}

__attribute__((format(printf, 1, 2)))
void msim_fail(const char *fmt, ...);
/* With --verbose, a line on stderr at the simulation's time. */
__attribute__((format(printf, 1, 2)))
void msim_trace(const char *fmt, ...);

int member_boot(struct member *m);
/* The process dies (kill -9 when seen: its peers' links reset at once;
 * else power loss: silence). */
void member_crash(struct member *m, bool seen);
/* A clean stop, at the end of a run. */
void member_shutdown(struct member *m);
/* A client of member m writes w: 0 if it was submitted. */
int member_write(struct member *m, const struct msim_write *w);
/* A client of member m syncs (then reads): 0 if it was submitted. */
int member_sync(struct member *m);
/* A new session id, as member m hands one to a connecting client. */
int64_t member_session_id(struct member *m);
/* A tick of member m's server: on the serving leader, the sessions of its
 * own clients touched, and those not heard of expired (closeSession). */
void member_tick(struct member *m);

/* msim.c: the checker's hooks */
void check_commit(struct member *m, const Quorum__Txn *txn, const uint8_t *bytes, size_t len);
void check_acked(struct member *m, const struct msim_write *w, int64_t zxid);
/* A session's createSession (open) or closeSession was acknowledged. */
void check_session(struct member *m, const struct msim_write *w, int64_t zxid);
/* m has applied txn (committed). */
void check_applied(struct member *m, const Quorum__Txn *txn);
/* m sends the leader an Ack of everything up to zxid. */
void check_ack(struct member *m, int64_t zxid);
/* A sync sent now must see this zxid applied once answered. */
int64_t check_sync_need(void);
/* m answers a sync sent when `need` was acknowledged: a read now. */
void check_sync_read(struct member *m, int64_t need);
/* m begins to serve as the leader. */
void check_leading(struct member *m);
/* m's tree rebuilt from disk (a start, or a reload after a truncation):
 * the snapshot at base loaded, each txn replayed onto it, then the end. */
void check_replay_from(struct member *m, int64_t base);
void check_replayed(struct member *m, const Quorum__Txn *txn);
void check_rebuilt(struct member *m, bool replayed);
/* m's tree is a leader's snapshot now. */
void check_installed(struct member *m);

#endif

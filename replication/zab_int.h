/*
 * zab_int: the ZAB core's private state, shared by its files.
 *
 *   zab.c        life cycle, the role table, the log as the core sees it,
 *                commits, message helpers, the public accessors
 *   zab_elect.c  phase 0: fast leader election
 *   zab_lead.c   phases 1-3 on the leader
 *   zab_follow.c phases 1-3 on a follower
 *
 * Nothing here is visible to the host; see zab.h for the contract.
 */
#ifndef QUORUM_ZAB_INT_H
#define QUORUM_ZAB_INT_H

#include "zab.h"

/* Epochs live in the top 32 bits of a zxid and must stay positive. */
#define ZAB_EPOCH_MAX ((int64_t)0x7ffffffe)
#define ZAB_COUNTER_MAX ((int64_t)0xfffffff0)
/* Messages buffered on a follower while a snapshot installs. */
#define ZAB_MAX_DEFERRED 100000
/* Uncommitted txns a follower holds before it gives up on its leader. */
#define ZAB_MAX_PENDING (1 << 22)
/* The election resends its vote at most this often (ticks), backing off. */
#define ZAB_VOTE_RESEND_MAX_TICKS 8

/* One appended txn not yet committed here: the bytes io.commit() needs. */
struct zab_txn {
	int64_t zxid;
	uint8_t *data;
	size_t len;
	uint32_t origin;
	uint64_t origin_seq;
};

/* A vote as election compares it: (peer_epoch, zxid, leader). */
struct zab_vote {
	uint32_t leader;
	int64_t zxid;
	int64_t peer_epoch;
};

/* What election remembers of one voter's last notification. */
struct zab_seen_vote {
	bool valid;
	struct zab_vote vote;
	int64_t election_epoch;
	Quorum__PeerState state;
};

/* A FollowerInfo that reached this server while it was LOOKING: taken
 * if it goes on to lead, so a follower that decided first loses no time. */
struct zab_early_info {
	bool valid;
	uint32_t nonce;
	int64_t accepted_epoch;
};

/* Where a follower's attempt to join its leader stands. */
enum zab_fphase {
	ZF_DRAIN,      /* waiting for appends of an earlier leader to finish */
	ZF_DISCOVERY,  /* FollowerInfo sent, waiting for LeaderInfo */
	ZF_WAIT_SYNC,  /* AckEpoch sent, waiting for SyncStart */
	ZF_INSTALLING, /* a SNAP's snapshot is installing; leader's messages wait */
	ZF_SYNCING,    /* taking the sync's proposals */
	ZF_NEWLEADER,  /* NewLeader came; waiting for durability, then epoch, Ack */
	ZF_SYNCED,     /* NewLeader acked; waiting for UpToDate */
	ZF_BROADCAST,  /* UpToDate came: serving */
};

/* Where one follower stands as its leader sees it. */
enum zab_lphase {
	ZL_NONE,     /* slot unused */
	ZL_INFO,     /* FollowerInfo came (discovery) */
	ZL_ACKED,    /* AckEpoch came, sync not yet sent (leader waits for a quorum) */
	ZL_STREAMING, /* SyncStart sent, its history going out as the link drains */
	ZL_SYNCING,  /* ..NewLeader sent; in the forwarding set */
	ZL_SYNCED,   /* acked NewLeader: its acks count */
};

struct zab_follower {
	enum zab_lphase phase;
	uint32_t nonce;           /* its join attempt; messages with another are stale */
	int64_t accepted_epoch;   /* from FollowerInfo, for newEpoch */
	int64_t current_epoch;    /* from AckEpoch */
	int64_t last_zxid;        /* from AckEpoch */
	int64_t base_zxid;        /* from AckEpoch */
	bool uncounted;           /* from AckEpoch: not toward the epoch's quorum */
	int64_t *ends;            /* from AckEpoch: its epoch ends (owned) */
	size_t n_ends;
	int64_t streamed;         /* STREAMING: the last zxid of its history sent */
	int64_t newleader_zxid;   /* what its NewLeader said: its Ack must reach it */
	int64_t acked;            /* cumulative Ack: durable there up to here */
	int64_t acked_prev;       /* acked at the previous ping: is it stalled? */
	int64_t last_heard_ms;    /* any current message from it */
	uint64_t round_echoed;    /* the newest read round its pings echoed */
	bool up_to_date_sent;
};

/* Per-server tables are indexed by server id (1..ZAB_MAX_MEMBERS). */
#define ZAB_SLOTS (ZAB_MAX_MEMBERS + 1)

struct zab {
	struct zab_config cfg;    /* cfg.voters/observers: the config at start */
	struct zab_io io;
	bool started;

	/* ---- membership (zab.h, "Membership changes") ---- */
	struct zab_members *cfgs; /* the chain: [0] active, then logged reconfigs */
	size_t n_cfgs;
	bool observer;            /* votes in no config of the chain */
	uint32_t voters[ZAB_MAX_MEMBERS]; /* voting in any config, this server too */
	int n_voters;
	uint32_t peers[ZAB_MAX_MEMBERS];  /* every other member of any config, and */
	int n_peers;                      /* (leader) each learner that joined */

	enum zab_role role;
	bool serving;
	uint32_t leader;          /* 0 while LOOKING */
	int64_t role_since_ms;
	int64_t alive_ms;         /* the last zab_tick() or zab_receive() (or the start) */

	/* ---- persistent (mirrors what save_epochs made durable) ---- */
	int64_t accepted_epoch;
	int64_t current_epoch;

	/* ---- the log, as the core knows it ---- */
	int64_t base_zxid;        /* the log holds nothing at or before this (summary) */
	int64_t last_logged;      /* appended, durable or not */
	int64_t last_durable;     /* every append up to here completed */
	int inflight;             /* appends queued, not completed */
	int64_t *ends;            /* last zxid of each epoch after base_zxid, ascending */
	size_t n_ends;
	/* A snapshot install is in flight. */
	bool installing;
	int64_t install_zxid;

	/* ---- commit ---- */
	int64_t applied;          /* the host's state is as of this zxid */
	int64_t known_committed;  /* committed in the ensemble, as learnt this life */
	struct zab_txn *pending;  /* (applied, last_logged], ascending: their bytes */
	size_t n_pending, cap_pending;

	/* ---- phase 0: election ---- */
	int64_t logical_clock;
	struct zab_vote vote;     /* current proposal, or the decided vote */
	struct zab_seen_vote recv[ZAB_SLOTS];  /* LOOKING voters, this clock */
	struct zab_seen_vote outof[ZAB_SLOTS]; /* FOLLOWING/LEADING voters */
	int64_t decide_at_ms;     /* quorum reached: decide at this time (0: not) */
	bool decide_pending;      /* decided, but the log must settle first (decide()) */
	int64_t save_failed_ms;   /* when saving the epochs last failed (0: never) */
	int64_t vote_resend_ms;
	int vote_backoff;
	/* Voters whose link broke (or, a leader, went silent) with nothing heard
	 * from them since: election does not wait for their votes. */
	bool unreachable[ZAB_SLOTS];
	struct zab_early_info early[ZAB_SLOTS];

	/* ---- follower ---- */
	enum zab_fphase fphase;
	uint32_t nonce;
	int64_t new_epoch;        /* LeaderInfo's epoch, once accepted */
	bool new_epoch_again;     /* ...which it had accepted before: its AckEpoch
				     does not count (AckEpoch.uncounted) */
	int64_t leader_heard_ms;
	int64_t info_sent_ms;     /* FollowerInfo / AckEpoch resend timer */
	int64_t expect_next;      /* the zxid a checkpoint or NewLeader said opens
				     the next epoch after the log's end (0: none) */
	int64_t newleader_zxid;
	struct zab_members *snap_chain; /* reconfigs the installing snapshot holds */
	size_t n_snap_chain;
	uint8_t **deferred;       /* packed messages held during a snapshot install */
	size_t *deferred_len;
	size_t n_deferred, cap_deferred;

	/* ---- leader ---- */
	struct zab_follower fol[ZAB_SLOTS]; /* own slot unused */
	bool epoch_picked;        /* newEpoch chosen, acceptedEpoch persisted */
	bool epoch_acked;         /* a quorum acked it, currentEpoch persisted */
	bool established;         /* a quorum acked NewLeader */
	int64_t lead_epoch;       /* newEpoch */
	int64_t own_summary_epoch;/* (currentEpoch, last) when election ended: the */
	int64_t own_summary_zxid; /* AckEpoch test of "a leader never lacks..." */
	int64_t newleader_zxid_l; /* the history the epoch starts from */
	int64_t ping_at_ms;
	int64_t quorum_seen_ms;   /* last time a quorum was heard and synced */
	uint64_t read_round;      /* the newest read round begun */
	uint64_t read_confirmed;  /* the newest a quorum has echoed */
	bool read_again;          /* a read waits for the round after the one in flight */
	uint64_t echo_round;      /* follower: the round of the leader's last ping */
};

/* ---- zab.c ---- */
/* Whether id can name a server at all (1..ZAB_MAX_MEMBERS). */
static inline bool zab_id_valid(uint32_t id)
{
	return id >= 1 && id <= ZAB_MAX_MEMBERS;
}
/* Whether id votes in any config of the chain. */
bool zab_votes(const struct zab *z, uint32_t id);
/* Whether the servers `in` accepts form a quorum of the voters of every
 * config of the chain. */
typedef bool (*zab_in_fn)(const struct zab *z, uint32_t id, const void *arg);
bool zab_quorum(const struct zab *z, zab_in_fn in, const void *arg);
bool zab_quorum_of(const struct zab *z, const struct zab_members *c, zab_in_fn in,
		   const void *arg);
/* The largest value that a quorum of c's voters each reach (val gives
 * each voter's; INT64_MIN: not counted), INT64_MIN if none. */
typedef int64_t (*zab_val_fn)(const struct zab *z, uint32_t id, const void *arg);
int64_t zab_quorum_value(const struct zab *z, const struct zab_members *c, zab_val_fn val,
			 const void *arg);
bool zab_members_valid(const struct zab_members *m);
/* The chain follows the log: a reconfig appended joins it, a truncate
 * drops what it removes, and what is known committed becomes active. */
void zab_chain_committed(struct zab *z);
void zab_chain_extend(struct zab *z, const struct zab_members *cfgs, size_t n);
void zab_chain_learn(struct zab *z, const struct zab_members *active);
/* Members on the wire: to_wire points into c (valid while c is); from_wire
 * fails -EINVAL for a config that is not valid. */
void zab_members_to_wire(const struct zab_members *c, Quorum__Members *m);
int zab_members_from_wire(const Quorum__Members *m, struct zab_members *out);
void zab_learner_joined(struct zab *z, uint32_t id);
int64_t zab_now(struct zab *z);
int64_t zab_tick_ms(const struct zab *z);
void zab_become(struct zab *z, enum zab_role to, uint32_t leader);
void zab_set_serving(struct zab *z, bool serving);
void zab_report_state(struct zab *z);
void zab_send(struct zab *z, uint32_t to, Quorum__PeerMsg *m, uint32_t nonce);
int zab_save_epochs(struct zab *z, int64_t accepted, int64_t current);
int zab_log_append(struct zab *z, int64_t zxid, const uint8_t *txn, size_t len, uint32_t origin,
		   uint64_t origin_seq);
int zab_log_truncate(struct zab *z, int64_t zxid);
void zab_log_reset_to(struct zab *z, int64_t zxid);
void zab_commit_upto(struct zab *z, int64_t target);
const struct zab_txn *zab_pending_find(const struct zab *z, int64_t zxid);
bool zab_valid_zxid(int64_t zxid);
int64_t zab_common_point(int64_t base_a, const int64_t *ends_a, size_t n_a, int64_t base_b,
			 const int64_t *ends_b, size_t n_b, bool *found);

/* ---- zab_elect.c ---- */
void zab_elect_start(struct zab *z);
void zab_elect_tick(struct zab *z);
void zab_elect_receive(struct zab *z, uint32_t from, const Quorum__PeerMsg *m);
void zab_elect_peer_reset(struct zab *z, uint32_t peer);
void zab_elect_early_info(struct zab *z, uint32_t from, const Quorum__PeerMsg *m);
void zab_elect_answer(struct zab *z, uint32_t to);
void zab_elect_settled(struct zab *z);
bool zab_vote_better(const struct zab_vote *a, const struct zab_vote *b);

/* ---- zab_lead.c ---- */
void zab_lead_start(struct zab *z);
void zab_lead_stop(struct zab *z);
void zab_lead_tick(struct zab *z);
void zab_lead_pump(struct zab *z);
uint64_t zab_lead_read_begin(struct zab *z);
void zab_lead_receive(struct zab *z, uint32_t from, const Quorum__PeerMsg *m);
void zab_lead_peer_reset(struct zab *z, uint32_t peer);
void zab_lead_appended(struct zab *z);
void zab_lead_take_early(struct zab *z);
void zab_lead_follower_looking(struct zab *z, uint32_t peer);
int zab_lead_propose(struct zab *z, int64_t zxid, const uint8_t *txn, size_t len, uint32_t origin,
		     uint64_t origin_seq);

/* ---- zab_follow.c ---- */
void zab_follow_start(struct zab *z);
void zab_follow_stop(struct zab *z);
void zab_follow_snapshot_done(struct zab *z, bool installed);
void zab_follow_tick(struct zab *z);
void zab_follow_receive(struct zab *z, uint32_t from, const Quorum__PeerMsg *m);
void zab_follow_peer_reset(struct zab *z, uint32_t peer);
void zab_follow_appended(struct zab *z);
void zab_follow_installed(struct zab *z, int status);

#endif

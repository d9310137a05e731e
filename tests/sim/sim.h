/*
 * sim: a deterministic simulation of a quorumd ensemble's members.
 *
 * One 64-bit seed drives everything: the cluster size, the fault
 * probabilities (swarm testing), and every fault, delay and proposal.
 * Each node is a real struct zab with quorumd's own storage and state
 * (sim_disk.c): its txns are the packed quorum.Txn quorumd logs; its log
 * is server/txnlog.c files in a directory of its own (or, with
 * sim_options.disk_dir NULL, a list in memory), whose write in flight a
 * crash loses or tears and whose syncs may fail, which stops the member;
 * it applies what it commits to a server/tree.c tree, whose real image
 * (server/snapshot.c) is what a leader sends a follower. In a file-backed
 * run it also takes snapshots of its own tree at seeded moments, written
 * as quorumd writes them into its directory, and keeps its epochs in
 * server/epoch.c's files there; the process may die while it writes a
 * snapshot, saves its epochs or installs a leader's snapshot, leaving
 * what a real crash there could; and
 * a restart recovers through quorumd's functions (the newest valid
 * snapshot, then the log; the epoch files) and must find what was durable
 * before the crash, also when its newest snapshot file rotted meanwhile (a memory-only run keeps its snapshot and epochs in
 * memory). It runs over a simulated network
 * (loss, duplication, reordering, delay, partitions, link resets; a
 * crash is seen by the peers as a reset, as a killed process's
 * connections end, or not at all, as a host that loses power), a
 * simulated clock (per node, stepping forward) and
 * pauses (SIGSTOP then SIGCONT: a node does nothing for a while, what is
 * sent to it waits and comes before its next tick). A checker outside the
 * cores watches every commit, truncate, install, restart and leadership
 * change (the invariants are listed at the top of sim.c), and that a
 * leader that did not run for syncLimit ticks does not lead on in its
 * epoch past the next message.
 *
 * Membership changes (reconfig runs): reconfig txns carry their config,
 * servers outside the initial config start as ZooKeeper's joiners do, and
 * the host persists the active config the core reports.
 *
 * A run has a safety phase of `steps` events with faults, then a liveness
 * phase: everything healed and restarted, no faults, and the cluster must
 * elect, sync everyone and commit new proposals on every node within a
 * bounded simulated time: 60 s, or, while a member still applies the
 * history it is being sent (a seed's stream window can be a few bytes),
 * 60 s after the last txn applied, up to 600 s.
 */
#ifndef QUORUM_SIM_H
#define QUORUM_SIM_H

#include <stdbool.h>
#include <stdint.h>

enum sim_result {
	SIM_OK = 0,
	SIM_SAFETY = 1,   /* an invariant broke */
	SIM_LIVENESS = 2, /* the healed cluster did not converge in time */
	SIM_CRASH = 3,    /* the process crashed (signal) */
	SIM_USAGE = 64,
};

/* Situations from ZooKeeper's bug history that a scenario steers towards. */
enum sim_scenario {
	SCN_RANDOM = 0,
	SCN_CRASH_AT_NEWLEADER, /* ZOOKEEPER-4643, -4646, -4785, -1282 */
	SCN_OLD_EPOCH_TAIL,     /* ZOOKEEPER-1154, -2355: a leader's uncommitted
				   txns of an old epoch; truncation across epochs */
	SCN_DIFF_UNCOMMITTED,   /* ZOOKEEPER-3911, -4394: a sync that carries
				   uncommitted txns */
	SCN_SNAP_TRUNC,         /* compaction: SNAP, and TRUNC the host refuses */
	SCN_LEADER_LINK,        /* the leader's link to one follower drops and comes
				   back at once, again and again: the follower
				   looks, finds the same leader, rejoins; nobody
				   else may notice (no new epoch) */
	SCN_FLAP,               /* one follower's links drop, or go down for a
				   while, again and again: the healthy rest of the
				   ensemble must never notice (no new epoch) */
	SCN_RECONFIG,           /* membership changes: servers added, removed,
				   made observers, the leader among them; a
				   reconfig in flight across a leader crash */
	SCN_COUNT,
};

/* What a run saw, to prove a scenario reached its situation. */
struct sim_stats {
	uint64_t steps, messages, crashes, restarts, partitions, elections, established;
	uint64_t proposed, commits, diffs, truncs, truncs_across_epochs, snaps;
	uint64_t syncs_with_uncommitted, crash_at_newleader, compactions, trunc_refused;
	uint64_t link_drops;       /* resets aimed at the leader's link or the flapper */
	uint64_t rejoins;          /* a follower looked and joined the same leader, same epoch */
	uint64_t reads, reads_confirmed; /* read rounds begun on serving leaders, and confirmed */
	uint64_t observer_commits; /* txns committed on observers */
	uint64_t reconfigs_proposed, reconfigs_committed;
	uint64_t crash_in_reconfig; /* a leader crashed right after proposing one */
	uint64_t pauses, leader_pauses; /* nodes stopped a while (leaders among them) */
	uint64_t sync_failures;    /* writes whose sync failed: the member stopped */
	uint64_t torn_writes;      /* crashes that left part of a write on a log file */
	uint64_t snap_files;       /* members' own snapshots written to their files */
	uint64_t snap_crashes;     /* crashes while one was being written */
	uint64_t snaps_older;      /* images older than the state offered for a SNAP */
	uint64_t install_crashes;  /* crashes while a leader's was being installed */
	uint64_t snap_rots;        /* a member's newest snapshot file made corrupt:
				      its restart falls back to the one before */
	uint64_t epoch_crashes;    /* crashes inside a save of the epochs */
	uint64_t epoch_full;       /* saves of the epochs that failed, nothing written */
	uint64_t epoch_below_log;  /* restarts with a logged zxid of an epoch above
				      currentEpoch (a sync cut short) */
	uint64_t batched_appends;  /* appends reported with another (zab_appended_n) */
	uint64_t paced_sends;      /* sync stream messages sent as a link drained (zab_pump) */
	int64_t sim_ms;
};

struct sim_options {
	uint64_t seed;
	uint64_t steps;
	enum sim_scenario scenario;
	bool verbose;
	/* Where each node's txn log lives (a directory per node, made and
	 * removed by the run); NULL: the log is in memory only. */
	const char *disk_dir;
};

enum sim_result sim_run(const struct sim_options *o, struct sim_stats *st, char *why,
			size_t why_len);

const char *sim_scenario_name(enum sim_scenario s);

#endif

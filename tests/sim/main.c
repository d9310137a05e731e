/*
 * zab_sim: runs the ZAB simulation (sim.c) over many seeds, or one.
 *
 *   zab_sim                       the CI set: random seeds, then every
 *                                 scenario, with each node's log in memory,
 *                                 then a twentieth of that with real log
 *                                 files; QUORUM_SIM_QUICK=1 (or running
 *                                 under valgrind) for a small set
 *   zab_sim --seed S --steps N [--scenario NAME]
 *                                 replays one run (what a failure prints)
 *   zab_sim --soak [--seeds K] [--steps N]
 *                                 many more seeds from a time-derived base
 *   --base B                      where the CI set's seed sequence starts
 *   --disk files|memory           only this disk: server/txnlog.c files,
 *                                 snapshot files and epoch files in a
 *                                 temporary directory (made under
 *                                 $TMPDIR or /tmp, removed at exit; real
 *                                 fsyncs, so slower), or lists in memory
 *   -v                            per-run knobs and figures
 *
 * Exit codes: 0 pass; 1 a safety invariant broke; 2 the healed cluster
 * did not converge (liveness); 3 the process crashed; 4 a scenario never
 * reached the situation it exists for; 64 bad usage.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sim.h"

#ifdef HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

/* Under valgrind (the unit suite's third pass) the CI set shrinks. */
static bool under_valgrind(void)
{
#ifdef HAVE_VALGRIND_H
	if (RUNNING_ON_VALGRIND)
		return true;
#endif
	const char *pre = getenv("LD_PRELOAD");
	return pre && strstr(pre, "vgpreload");
}

static char replay_line[256];

/* The runs' logs: a directory made by mkdtemp() under $TMPDIR (or /tmp),
 * removed at exit, and on a crash too. Its name never reaches a run's
 * randomness. */
static char disk_root[4096];

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_disk_root(void)
{
	if (disk_root[0])
		nftw(disk_root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	disk_root[0] = 0;
}

static int make_disk_root(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(disk_root, sizeof(disk_root), "%s/zab_sim.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(disk_root)) {
		perror(disk_root);
		disk_root[0] = 0;
		return -1;
	}
	atexit(remove_disk_root);
	return 0;
}

static void on_crash(int sig)
{
	(void)sig;
	remove_disk_root(); /* not async-signal-safe, but the process is ending anyway */
	static const char head[] = "\nzab_sim: crashed; replay with:\n  ";
	ssize_t w = write(2, head, sizeof(head) - 1);
	w = write(2, replay_line, strlen(replay_line));
	w = write(2, "\n", 1);
	(void)w;
	_exit(SIM_CRASH);
}

static void install_crash_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_crash;
	sigaction(SIGABRT, &sa, NULL);
#if !defined(__SANITIZE_ADDRESS__)
	/* ASan reports these itself, better than we could. */
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);
#endif
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void add(struct sim_stats *a, const struct sim_stats *b)
{
	a->steps += b->steps;
	a->messages += b->messages;
	a->crashes += b->crashes;
	a->restarts += b->restarts;
	a->partitions += b->partitions;
	a->elections += b->elections;
	a->established += b->established;
	a->proposed += b->proposed;
	a->commits += b->commits;
	a->diffs += b->diffs;
	a->truncs += b->truncs;
	a->truncs_across_epochs += b->truncs_across_epochs;
	a->snaps += b->snaps;
	a->syncs_with_uncommitted += b->syncs_with_uncommitted;
	a->crash_at_newleader += b->crash_at_newleader;
	a->compactions += b->compactions;
	a->trunc_refused += b->trunc_refused;
	a->link_drops += b->link_drops;
	a->rejoins += b->rejoins;
	a->reads += b->reads;
	a->reads_confirmed += b->reads_confirmed;
	a->observer_commits += b->observer_commits;
	a->reconfigs_proposed += b->reconfigs_proposed;
	a->reconfigs_committed += b->reconfigs_committed;
	a->crash_in_reconfig += b->crash_in_reconfig;
	a->pauses += b->pauses;
	a->leader_pauses += b->leader_pauses;
	a->sync_failures += b->sync_failures;
	a->torn_writes += b->torn_writes;
	a->snap_files += b->snap_files;
	a->snap_crashes += b->snap_crashes;
	a->snaps_older += b->snaps_older;
	a->install_crashes += b->install_crashes;
	a->snap_rots += b->snap_rots;
	a->epoch_crashes += b->epoch_crashes;
	a->epoch_full += b->epoch_full;
	a->epoch_below_log += b->epoch_below_log;
	a->batched_appends += b->batched_appends;
	a->paced_sends += b->paced_sends;
	a->sim_ms += b->sim_ms;
}

static void print_stats(const char *label, int runs, const struct sim_stats *t)
{
	printf("%-20s %4d runs %9" PRIu64 " steps %6.0f sim-s | %" PRIu64 " proposed, %" PRIu64
	       " commits, %" PRIu64 " established, %" PRIu64 " crashes, %" PRIu64
	       " partitions | sync: %" PRIu64 " diff, %" PRIu64 " trunc (%" PRIu64
	       " across epochs, %" PRIu64 " refused), %" PRIu64 " snap (%" PRIu64 " older offered), %" PRIu64
	       " with uncommitted | %" PRIu64 " compactions, %" PRIu64 " crashes at NewLeader | %" PRIu64
	       " link drops, %" PRIu64 " rejoins | %" PRIu64 " reads, %" PRIu64 " confirmed | %" PRIu64
	       " observer commits | %" PRIu64 " reconfigs proposed, %" PRIu64 " committed, %" PRIu64
	       " leader crashes in one | %" PRIu64 " pauses, %" PRIu64 " of leaders | %" PRIu64
	       " failed syncs, %" PRIu64 " torn writes | %" PRIu64 " snapshot files, %" PRIu64
	       " crashes writing one, %" PRIu64 " installing one, %" PRIu64 " rotten | %" PRIu64 " crashes saving epochs, %" PRIu64 " saves failed, %" PRIu64
	       " restarts with the log above currentEpoch | %" PRIu64 " appends reported in a batch | %" PRIu64 " sync messages sent as links drained\n",
	       label, runs, t->steps, (double)t->sim_ms / 1000.0, t->proposed, t->commits,
	       t->established, t->crashes, t->partitions, t->diffs, t->truncs,
	       t->truncs_across_epochs, t->trunc_refused, t->snaps, t->snaps_older, t->syncs_with_uncommitted,
	       t->compactions, t->crash_at_newleader, t->link_drops, t->rejoins, t->reads,
	       t->reads_confirmed, t->observer_commits, t->reconfigs_proposed, t->reconfigs_committed,
	       t->crash_in_reconfig, t->pauses, t->leader_pauses, t->sync_failures, t->torn_writes,
	       t->snap_files, t->snap_crashes, t->install_crashes, t->snap_rots, t->epoch_crashes,
	       t->epoch_full, t->epoch_below_log, t->batched_appends, t->paced_sends);
	fflush(stdout);
}

/* Where the runs keep their logs: disk_root, or NULL for memory only. */
static const char *run_disk;

/* One run; on failure prints why and how to replay it. */
static enum sim_result run_one(uint64_t seed, uint64_t steps, enum sim_scenario sc, bool verbose,
			       struct sim_stats *st)
{
	snprintf(replay_line, sizeof(replay_line),
		 "build/tests/sim/zab_sim --seed 0x%016" PRIx64 " --steps %" PRIu64
		 " --scenario %s --disk %s",
		 seed, steps, sim_scenario_name(sc), run_disk ? "files" : "memory");
	struct sim_options o = {.seed = seed, .steps = steps, .scenario = sc, .verbose = verbose,
				.disk_dir = run_disk};
	char why[1024];
	if (verbose)
		fprintf(stderr, "seed 0x%016" PRIx64 " (%s)\n", seed, sim_scenario_name(sc));
	enum sim_result r = sim_run(&o, st, why, sizeof(why));
	if (r != SIM_OK) {
		fprintf(stderr, "FAIL (%s) seed 0x%016" PRIx64 " scenario %s: %s\nreplay: %s\n",
			r == SIM_SAFETY ? "safety" : "liveness", seed, sim_scenario_name(sc), why,
			replay_line);
	}
	return r;
}

/* Whether a scenario's runs reached the situation it is named for. */
static bool reached(enum sim_scenario sc, const struct sim_stats *t)
{
	switch (sc) {
	case SCN_CRASH_AT_NEWLEADER:
		return t->crash_at_newleader > 0;
	case SCN_OLD_EPOCH_TAIL:
		return t->truncs_across_epochs > 0;
	case SCN_DIFF_UNCOMMITTED:
		return t->syncs_with_uncommitted > 0;
	case SCN_SNAP_TRUNC:
		return t->snaps > 0 && t->compactions > 0;
	case SCN_LEADER_LINK:
	case SCN_FLAP:
		return t->link_drops > 0 && t->rejoins > 0;
	case SCN_RANDOM:
		return t->observer_commits > 0 && t->reconfigs_committed > 0;
	case SCN_RECONFIG:
		return t->reconfigs_committed > 0 && t->crash_in_reconfig > 0;
	default:
		return true;
	}
}

static int run_set(uint64_t base, int seeds, uint64_t steps, enum sim_scenario sc, bool verbose,
		   bool need_coverage)
{
	struct sim_stats total = {0};
	for (int i = 0; i < seeds; i++) {
		struct sim_stats st;
		uint64_t seed = mix(base + (uint64_t)i * 0x10001 + (uint64_t)sc * 0x100000001ull);
		enum sim_result r = run_one(seed, steps, sc, verbose, &st);
		if (r != SIM_OK)
			return r;
		add(&total, &st);
	}
	print_stats(sim_scenario_name(sc), seeds, &total);
	if (!reached(sc, &total)) {
		fprintf(stderr, "%s scenario %s never reached its situation\n",
			need_coverage ? "FAIL" : "warning:", sim_scenario_name(sc));
		if (need_coverage)
			return 4;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: zab_sim [--seed S --steps N [--scenario NAME]] [--seeds K] "
			"[--base B] [--soak] [--disk files|memory] [-v]\n");
	return SIM_USAGE;
}

int main(int argc, char **argv)
{
	uint64_t seed = 0, base = 0x5eedf00d, steps = 0;
	int seeds = -1;
	bool one = false, soak = false, verbose = false;
	int disk = -1; /* -1: both (a set in memory, a twentieth of it on files); 0 memory; 1 files */
	int scenario = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--seed") && v) {
			seed = strtoull(v, NULL, 0);
			one = true;
			i++;
		} else if (!strcmp(a, "--steps") && v) {
			steps = strtoull(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--seeds") && v) {
			seeds = atoi(v);
			i++;
		} else if (!strcmp(a, "--base") && v) {
			base = strtoull(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--scenario") && v) {
			for (int s = 0; s < SCN_COUNT; s++)
				if (!strcmp(v, sim_scenario_name((enum sim_scenario)s)))
					scenario = s;
			if (scenario < 0)
				return usage();
			i++;
		} else if (!strcmp(a, "--disk") && v) {
			if (strcmp(v, "files") && strcmp(v, "memory"))
				return usage();
			disk = !strcmp(v, "files");
			i++;
		} else if (!strcmp(a, "--soak")) {
			soak = true;
		} else if (!strcmp(a, "-v")) {
			verbose = true;
		} else {
			return usage();
		}
	}
	install_crash_handler();
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* txnlog logs every torn tail it repairs (WARN), which runs on files
	 * make by the hundred; a failed write (ERROR) still shows. */
	log_set_level(LOG_ERROR);
	if (disk != 0 && make_disk_root() < 0)
		return SIM_USAGE;
	run_disk = disk != 0 ? disk_root : NULL;

	if (one) {
		struct sim_stats st;
		enum sim_scenario sc = scenario < 0 ? SCN_RANDOM : (enum sim_scenario)scenario;
		enum sim_result r = run_one(seed, steps ? steps : 3000, sc, true, &st);
		print_stats(sim_scenario_name(sc), 1, &st);
		if (r == SIM_OK)
			printf("seed 0x%016" PRIx64 ": ok\n", seed);
		return r;
	}

	bool quick = (getenv("QUORUM_SIM_QUICK") && strcmp(getenv("QUORUM_SIM_QUICK"), "0")) ||
		     under_valgrind();
	if (soak)
		base = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
	if (seeds < 0)
		seeds = soak ? 20000 : quick ? 40 : 300;
	if (!steps)
		steps = soak ? 20000 : quick ? 2000 : 5000;
	int per_scenario = soak ? seeds / 4 : quick ? 12 : 40;
	/* Real files cost a real fdatasync per write: without --disk, the
	 * set runs on the in-memory disk and a twentieth of it on files, which
	 * need not reach every scenario's situation. */
	for (int pass = disk < 0 ? 0 : disk; pass <= (disk < 0 ? 1 : disk); pass++) {
		bool short_pass = disk < 0 && pass == 1;
		int n = short_pass ? (seeds + 19) / 20 : seeds;
		int per = short_pass ? (per_scenario + 19) / 20 : per_scenario;
		run_disk = pass ? disk_root : NULL;
		printf("zab_sim: base seed 0x%016" PRIx64 ", %d seeds x %" PRIu64 " steps, %s%s\n",
		       base, n, steps, pass ? "log files" : "log in memory", quick ? " (quick)" : "");
		for (int sc = 0; sc < SCN_COUNT; sc++) {
			if (scenario >= 0 && scenario != sc)
				continue;
			int rc = run_set(base, sc == SCN_RANDOM ? n : per, steps,
					 (enum sim_scenario)sc, verbose, !quick && !short_pass);
			if (rc)
				return rc;
		}
	}
	printf("zab_sim: all passed\n");
	return 0;
}

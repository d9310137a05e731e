/*
 * watch: the client-side watch registry, as ZooKeeper's ZKWatchManager.
 * Pure code, owned by the I/O thread (no lock).
 *
 * Five sets of watchers per path: data (getData, exists on an existing
 * node), exist (exists on a missing node), child (getChildren), persistent
 * and persistent-recursive (addWatch). A watcher is a (fn, arg) pair; a set
 * holds each pair once. An event's recipients (qc_watches_collect()):
 *   NodeCreated, NodeDataChanged -> data + exist of the path
 *   NodeDeleted                  -> data + exist + child of the path
 *   NodeChildrenChanged          -> child of the path
 *   every type                   -> persistent of the path
 *   every type but ChildrenChanged -> persistent-recursive of the path and
 *                                   of each ancestor up to "/"
 * The one-shot sets it drew from are emptied. A watcher in several matching
 * sets is delivered once.
 */
#ifndef QC_WATCH_H
#define QC_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "quorum_client.h"

enum qc_watch_kind {
	QC_W_DATA,
	QC_W_EXIST,
	QC_W_CHILD,
	QC_W_PERSISTENT,
	QC_W_RECURSIVE,
	QC_W_KINDS,
};

/* One watcher to call, with the event type to give it. */
struct qc_delivery {
	qc_watch_fn fn;
	void *arg;
	int32_t type; /* ZK_EVENT_* */
};

/* A growable list of deliveries; the caller frees v. */
struct qc_deliveries {
	struct qc_delivery *v;
	size_t n, cap;
	bool oom; /* an append failed: some watcher was not listed */
};

struct qc_watches {
	struct hmap map; /* path -> struct qc_watch_entry */
	size_t persistent; /* watchers in persistent and recursive sets, so
			      reconnect knows whether it needs setWatches2 */
};

void qc_watches_init(struct qc_watches *w);
/* Frees everything; watchers are dropped without an event. */
void qc_watches_destroy(struct qc_watches *w);
bool qc_watches_empty(const struct qc_watches *w);
bool qc_watches_has_persistent(const struct qc_watches *w);

/* Returns 0, or ZSYSTEMERROR when out of memory (nothing added). */
int qc_watches_add(struct qc_watches *w, enum qc_watch_kind kind, const char *path,
		   qc_watch_fn fn, void *arg);

/* Appends the recipients of event `type` on path to out (each with
 * out->v[i].type = type) and empties the one-shot sets they came from. */
void qc_watches_collect(struct qc_watches *w, int32_t type, const char *path,
			struct qc_deliveries *out);

/* Whether a watcher of wtype (ZK_WATCHER_*) matching (fn, arg) — any
 * watcher when fn is NULL — is on path. */
bool qc_watches_contains(const struct qc_watches *w, const char *path, int32_t wtype,
			 qc_watch_fn fn, void *arg);

/* Removes the matching watchers of wtype on path and appends each with its
 * removal event (DATA_WATCH_REMOVED for data and exist, CHILD_WATCH_REMOVED,
 * PERSISTENT_WATCH_REMOVED). Returns how many were removed. */
size_t qc_watches_remove(struct qc_watches *w, const char *path, int32_t wtype,
			 qc_watch_fn fn, void *arg, struct qc_deliveries *out);

/* Appends every distinct watcher once (type ZK_EVENT_NONE) and empties the
 * registry: the last event at expiry or close. */
void qc_watches_drain(struct qc_watches *w, struct qc_deliveries *out);

/* Calls fn for every path with a non-empty set of kind, for setWatches. */
typedef void (*qc_watch_path_fn)(void *ctx, enum qc_watch_kind kind, const char *path);
void qc_watches_for_each_path(const struct qc_watches *w, qc_watch_path_fn fn, void *ctx);

#endif

/*
 * watch: the server's watch registrations and their triggering.
 *
 * Watches are local to a server and belong to a connection (its
 * struct watch_owner). Two tables, as in ZooKeeper: the data table (getData
 * and exists watches, and persistent and persistent-recursive watches) and
 * the child table (getChildren watches, and persistent watches). A
 * registration is one (owner, table, path) with a set of modes: a standard
 * (one-shot) watch is cleared when it fires, a persistent one stays.
 *
 * Triggering, per event from the tree (tree.h's struct tree_event):
 *   NodeCreated, NodeDataChanged:  data table at the path
 *   NodeDeleted:                   data and child tables at the path
 *   NodeChildrenChanged:           child table at the parent's path
 * and, for every event but NodeChildrenChanged, persistent-recursive
 * watches at the path and at each ancestor. An owner hears one event at
 * most once however many of its watches match.
 *
 * See also request.c (the deliver callback writes the notification, and
 * watch_remove_owner() when a connection closes).
 */
#ifndef QUORUM_WATCH_H
#define QUORUM_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "hmap.h"
#include "list.h"
#include "tree.h"
#include "zk.h"

enum watch_table_kind { WATCH_TABLE_DATA = 0, WATCH_TABLE_CHILD = 1 };

enum watch_mode {
	WATCH_STANDARD = 1,   /* one-shot: getData, exists, getChildren */
	WATCH_PERSISTENT = 2, /* addWatch mode 0 */
	WATCH_RECURSIVE = 4,  /* addWatch mode 1; data table only */
};

struct watch_owner {
	struct list regs;   /* its struct watch_reg, for removal on close */
	uint64_t last_seq;  /* the last trigger it heard: one event, one delivery */
	bool data_seen;     /* has had a data-table watch: ZooKeeper's wchs and
			       wchc keep counting a connection once it has
			       watched, even after its watches fired */
};

typedef void (*watch_deliver_fn)(void *ctx, struct watch_owner *owner, enum zk_event_type type,
				 struct zk_str path, int64_t zxid);

struct watch_table {
	struct hmap paths[2];   /* per table: path -> struct watch_path */
	size_t recursive_count; /* registrations with WATCH_RECURSIVE: skip the
				   ancestor walk when there are none */
	size_t reg_count;       /* registrations, for wchs */
	uint64_t seq;           /* trigger counter, for the once-per-owner rule */
	watch_deliver_fn deliver;
	void *ctx;
};

void watch_table_init(struct watch_table *wt, watch_deliver_fn deliver, void *ctx);
/* Frees every registration; owners must not be used with it afterwards. */
void watch_table_destroy(struct watch_table *wt);

void watch_owner_init(struct watch_owner *o);

/* Adds mode to owner's registration on (table, path). Returns 0 or -ENOMEM. */
int watch_add(struct watch_table *wt, struct watch_owner *o, enum watch_table_kind table,
	      struct zk_str path, enum watch_mode mode);
/* addWatch: persistent goes into both tables, persistent-recursive into the
 * data table, as ZooKeeper's DataTree.addWatch does. */
int watch_add_persistent(struct watch_table *wt, struct watch_owner *o, struct zk_str path,
			 bool recursive);

/* Fires the watches an applied change triggers (see the top of this file).
 * Returns how many owners it notified. */
size_t watch_trigger(struct watch_table *wt, const struct tree_event *ev);

/* removeWatches/checkWatches with ZooKeeper's WatcherType: 1 children,
 * 2 data, 3 any, 4 persistent, 5 persistent recursive. Returns whether the
 * owner has (check) or had (remove) a matching watch. */
bool watch_remove(struct watch_table *wt, struct watch_owner *o, struct zk_str path,
		  int32_t watcher_type, bool dry_run);

/* Drops every registration of the owner (its connection closed). */
void watch_remove_owner(struct watch_table *wt, struct watch_owner *o);

/* Counts for mntr: paths watched (both tables) and registrations. */
size_t watch_path_count(const struct watch_table *wt);
static inline size_t watch_reg_count(const struct watch_table *wt) { return wt->reg_count; }
size_t watch_owner_reg_count(const struct watch_owner *o);

/* For wchs, wchc and wchp, which show one table (ZooKeeper shows the data
 * table): the paths watched in it and the registrations on them ... */
void watch_table_counts(const struct watch_table *wt, enum watch_table_kind table,
			size_t *paths, size_t *regs);
/* ... each path with the owners registered on it (fn gets the path, then
 * once per owner with that path again) ... */
void watch_table_walk(const struct watch_table *wt, enum watch_table_kind table,
		      void (*path_fn)(void *ctx, struct zk_str path),
		      void (*owner_fn)(void *ctx, const struct watch_owner *o), void *ctx);
/* ... and the paths one owner watches in it (returns how many). An owner
 * counts as watching (wchs) once data_seen is set. */
size_t watch_owner_walk(const struct watch_owner *o, enum watch_table_kind table,
			void (*fn)(void *ctx, struct zk_str path), void *ctx);

#endif

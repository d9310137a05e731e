/*
 * sidetree: how quorumfs keeps what a znode's data must not hold in hidden
 * side trees at the root of the ensemble, readable by any client: a path
 * escaped into one node name, and the metadata record of a file
 * (/.quorumfs-meta/<escaped path>, see fs/meta.c and quorumfs(5)).
 *
 * Shared by quorumfs and quorumctl, which must agree on both. Pure
 * functions, no state.
 */
#ifndef QUORUM_SIDETREE_H
#define QUORUM_SIDETREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* root + "/" + path with '%' as "%25" and '/' as "%2F", then suffix
 * escaped the same way (suffix may be ""). malloc'd, NULL when out of
 * memory. */
char *sidetree_key(const char *root, const char *path, const char *suffix);
/* The path a key of root stands for (malloc'd), or NULL if key is not a
 * well-formed key of root (or memory ran out). */
char *sidetree_path(const char *root, const char *key);

/* A metadata record. A field not `has_` is the mount's default. */
struct sidetree_rec {
	int64_t of;             /* czxid of the znode it describes; 0 in the
				   text: the record's own czxid (both made in
				   one multi, which gives them one zxid) */
	bool link;              /* a symbolic link: the data is its target */
	bool has_mode, has_uid, has_gid, has_mtime, has_atime;
	uint32_t mode;          /* permission bits (07777) */
	uint32_t uid, gid;
	int64_t mtime_ns, atime_ns; /* since the epoch, */
	int32_t mtime_ver, atime_ver; /* valid at this data version only */
	bool has_ctime;
	int64_t ctime_ns;       /* the last change of the record (st_ctime) */
	bool has_ino;
	uint64_t ino;           /* st_ino, kept through renames */
};

/* The text form (one line, NUL-terminated) into buf; its length, or -1 if
 * n is too small. 256 bytes always suffice. */
int sidetree_format(const struct sidetree_rec *r, char *buf, size_t n);
#define SIDETREE_TEXT_MAX 256
/* Parses a record's text (len bytes, not NUL-terminated). Unknown words
 * are skipped (a later version may add some). false if it is no record. */
bool sidetree_parse(const void *data, int32_t len, struct sidetree_rec *r);

#endif

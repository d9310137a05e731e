/*
 * members: who is in the ensemble, as ZooKeeper writes it down.
 *
 *   server.N=host:quorumPort:electionPort[:participant|:observer][;[host:]clientPort]
 *
 * is one member (QuorumPeer.QuorumServer's form). A membership is a set of
 * them and a version: the zxid of the reconfig txn that made it, 0 for one
 * read from zoo.cfg's own server lines. This module owns the three texts a
 * membership has and the arithmetic of the reconfig op:
 *
 *   members_text()    /zookeeper/config's data: one line per member, then
 *                     "version=<hex>" (what zkCli's `config` prints, and
 *                     what a reconfig txn carries)
 *   members_save()    the dynamic config file: `<zoo.cfg>.dynamic.<hex>`,
 *                     the server lines alone, and zoo.cfg's
 *                     dynamicConfigFile pointed at it (as ZooKeeper does;
 *                     the first time, zoo.cfg's own server lines move there
 *                     and the old file is kept as zoo.cfg.bak)
 *   members_reconfig() a reconfig request (joining, leaving, or the whole
 *                     new membership) applied to the current membership
 *
 * No I/O but members_save(); no allocation.
 */
#ifndef QUORUM_MEMBERS_H
#define QUORUM_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct members {
	int64_t version;
	int n;
	struct config_server s[CONFIG_MAX_SERVERS]; /* ascending id */
};

/* One member from the value of its server.N key (id already parsed).
 * Returns 0, or -1 with a message in err. */
int members_parse_server(int32_t id, const char *value, struct config_server *out, char *err,
			 size_t err_len);

/* "server.N=value": the key parsed too (any N from 1, as ZooKeeper takes;
 * members_ids_in_range() says whether quorumd can run it). */
int members_parse_spec(const char *spec, struct config_server *out, char *err, size_t err_len);

/* One member's line without the newline, as ZooKeeper writes it. Returns
 * the length (truncated to cap - 1 if it did not fit). */
size_t members_line(const struct config_server *s, char *buf, size_t cap);

/* /zookeeper/config's text. Returns its length, or 0 if cap is too small. */
size_t members_text(const struct members *m, char *buf, size_t cap);

/* Parses members_text()'s form back. Returns 0, or -1 with err. */
int members_from_text(const char *text, size_t len, struct members *out, char *err,
		      size_t err_len);

/* The membership a reconfig request asks for. Incremental: `leaving` (ids,
 * comma separated; ids not members are ignored, as ZooKeeper does) and
 * `joining` (server specs, comma separated; one naming a member replaces
 * it); or non-incremental: `new_members` (server specs) is the whole new
 * membership, and then joining and leaving are not looked at (as in
 * ZooKeeper). NULL or "" for an absent part. Returns 0, or -1 with err (a
 * spec that does not parse, no voter left): the caller answers
 * BadArguments. out->version is left 0. */
int members_reconfig(const struct members *cur, const char *joining, const char *leaving,
		     const char *new_members, struct members *out, char *err, size_t err_len);

/* Writes the dynamic config file of m beside cfg_path and points cfg_path's
 * dynamicConfigFile at it, each durably (temporary file, fsync, rename,
 * directory fsync). Returns 0, or a negative errno with err. */
int members_save(const char *cfg_path, const struct members *m, char *err, size_t err_len);

/* The version a dynamic config file's name carries (".dynamic.<hex>"), or
 * -1 if it carries none. */
int64_t members_file_version(const char *path);

/* Whether every id is 1..CONFIG_MAX_SERVERS (quorumd's, and the myid
 * range ZooKeeper's guide asks for). */
bool members_ids_in_range(const struct members *m);

/* Whether id is a member, and whether it votes. */
const struct config_server *members_find(const struct members *m, int32_t id);

#endif

/*
 * zk: Apache ZooKeeper's client protocol — constants and records.
 *
 * The numbers and field orders are ZooKeeper's (ZooDefs.OpCode,
 * KeeperException.Code, Watcher.Event, zookeeper.jute); the code is ours.
 * One decode and one encode function per record, for both directions, so
 * the server and the client library share this module.
 *
 * Decoders fill a record whose strings and buffers point into the input
 * frame (see jute.h) and return 0 or a negative enum jute_error. Encoders
 * append to a jute_out; check out->err once at the end.
 */
#ifndef QUORUM_ZK_H
#define QUORUM_ZK_H

#include "jute.h"
#include "zk_defs.h" /* the constants and struct zk_stat */

/* ---- constants ---------------------------------------------------------- */

/* Reserved xids of the client protocol. */
enum {
	ZK_XID_NOTIFICATION = -1,
	ZK_XID_PING = -2,
	ZK_XID_AUTH = -4,
	ZK_XID_SET_WATCHES = -8,
};

/* The name ("ZNONODE") and the plain-words message of a ZooKeeper error;
 * "unknown error" for a code not in the table. */
const char *zk_error_name(int err);
const char *zk_error_message(int err);
/* What the protocol says of each opcode (ZooDefs.OpCode), in one table
 * that the code asks instead of switching on the opcode. */
enum zk_op_flag {
	ZK_OPF_WRITE = 1 << 0,      /* a client's write: prepped into a txn */
	ZK_OPF_MULTI = 1 << 1,      /* may be an op of a multi */
	ZK_OPF_MULTI_READ = 1 << 2, /* may be an op of a multiRead */
};

struct zk_op_info {
	int32_t op;
	const char *name;  /* ZooKeeper's name for it ("getData") */
	const char *code;  /* the code its server logs as a connection's last
			      operation, cons's "lop" ("GETD"); NULL: "NA" */
	unsigned flags;    /* enum zk_op_flag */
};

/* The opcode's entry; NULL for one ZooKeeper does not know. */
const struct zk_op_info *zk_op(int32_t op);
/* The name of an opcode ("getData"), or "unknown". */
const char *zk_op_name(int op);
static inline bool zk_op_is(int32_t op, unsigned flag)
{
	const struct zk_op_info *i = zk_op(op);
	return i && (i->flags & flag);
}

/* ---- records ------------------------------------------------------------ */

struct zk_id {
	struct zk_str scheme, id;
};

struct zk_acl {
	int32_t perms;
	struct zk_id id;
};

struct zk_acl_list {
	int32_t count; /* -1 for a null vector */
	struct zk_acl *acls;
};

struct zk_str_list {
	int32_t count; /* -1 for a null vector */
	struct zk_str *items;
};

struct zk_connect_request {
	int32_t protocol_version;
	int64_t last_zxid_seen;
	int32_t timeout;
	int64_t session_id;
	struct zk_buf passwd;
	bool read_only;     /* the optional trailing byte */
	bool has_read_only; /* whether the frame carried it */
};

struct zk_connect_response {
	int32_t protocol_version;
	int32_t timeout;
	int64_t session_id;
	struct zk_buf passwd;
	bool read_only;
};

struct zk_request_header {
	int32_t xid, type;
};
struct zk_reply_header {
	int32_t xid;
	int64_t zxid;
	int32_t err;
};

struct zk_watcher_event {
	int32_t type, state;
	struct zk_str path;
};

/* create, create2, createContainer and createTTL share one record; ttl is
 * on the wire only for createTTL. */
struct zk_create_request {
	struct zk_str path;
	struct zk_buf data;
	struct zk_acl_list acl;
	int32_t flags;
	int64_t ttl;
};

/* delete and check (CheckVersionRequest) share the shape path+version. */
struct zk_path_version_request {
	struct zk_str path;
	int32_t version;
};

/* exists, getData, getChildren, getChildren2 */
struct zk_path_watch_request {
	struct zk_str path;
	bool watch;
};

/* sync, getACL, getEphemerals, getAllChildrenNumber; the responses of
 * create and sync carry one path too. */
struct zk_path_record {
	struct zk_str path;
};

struct zk_set_data_request {
	struct zk_str path;
	struct zk_buf data;
	int32_t version;
};

struct zk_set_acl_request {
	struct zk_str path;
	struct zk_acl_list acl;
	int32_t version;
};

struct zk_add_watch_request {
	struct zk_str path;
	int32_t mode;
};

/* removeWatches and checkWatches */
struct zk_watches_request {
	struct zk_str path;
	int32_t type;
};

/* setWatches (the last two lists null) and setWatches2. */
struct zk_set_watches {
	int64_t relative_zxid;
	struct zk_str_list data, exist, child, persistent, persistent_recursive;
};

struct zk_auth_packet {
	int32_t type;
	struct zk_str scheme;
	struct zk_buf auth;
};

struct zk_client_info {
	struct zk_str auth_scheme, user;
};

/* Responses */
struct zk_create2_response {
	struct zk_str path;
	struct zk_stat stat;
};
struct zk_get_data_response {
	struct zk_buf data;
	struct zk_stat stat;
};
struct zk_get_acl_response {
	struct zk_acl_list acl;
	struct zk_stat stat;
};
struct zk_get_children2_response {
	struct zk_str_list children;
	struct zk_stat stat;
};

/* ReconfigRequest: incremental (joining, leaving) or the whole new
 * membership; each a ustring (len -1: null). cur_config_id -1: any. */
struct zk_reconfig_request {
	struct zk_str joining, leaving, new_members;
	int64_t cur_config_id;
};

/* A multi (or multiRead) is a sequence of (MultiHeader, op) ending with a
 * header of type -1, done = true, err = -1. */
struct zk_multi_header {
	int32_t type;
	bool done;
	int32_t err;
};

struct zk_multi_op {
	int32_t type; /* create, create2, createContainer, createTTL, delete,
			 setData, check; getChildren, getData in a multiRead */
	union {
		struct zk_create_request create;
		struct zk_path_version_request path_version; /* delete, check */
		struct zk_set_data_request set_data;
		struct zk_path_watch_request path_watch; /* getChildren, getData */
	} u;
};

struct zk_multi_request {
	int32_t count;
	struct zk_multi_op *ops; /* from the reader's arena */
};

/* ---- codec -------------------------------------------------------------- */

#define ZK_RECORD(name)                                                       \
	int zk_decode_##name(struct jute_in *in, struct zk_##name *r);         \
	void zk_encode_##name(struct jute_out *out, const struct zk_##name *r);

ZK_RECORD(id)
ZK_RECORD(acl)
ZK_RECORD(acl_list)
ZK_RECORD(stat)
ZK_RECORD(str_list)
ZK_RECORD(connect_request) /* the read_only byte is read if present */
ZK_RECORD(connect_response)
ZK_RECORD(request_header)
ZK_RECORD(reply_header)
ZK_RECORD(watcher_event)
ZK_RECORD(path_version_request)
ZK_RECORD(path_watch_request)
ZK_RECORD(path_record)
ZK_RECORD(set_data_request)
ZK_RECORD(set_acl_request)
ZK_RECORD(add_watch_request)
ZK_RECORD(watches_request)
ZK_RECORD(auth_packet)
ZK_RECORD(client_info)
ZK_RECORD(create2_response)
ZK_RECORD(get_data_response)
ZK_RECORD(get_acl_response)
ZK_RECORD(get_children2_response)
ZK_RECORD(multi_header)
ZK_RECORD(reconfig_request)
#undef ZK_RECORD

/* CreateRequest; createTTL carries the trailing ttl, the others do not. */
int zk_decode_create_request(struct jute_in *in, int32_t op, struct zk_create_request *r);
void zk_encode_create_request(struct jute_out *out, int32_t op, const struct zk_create_request *r);

/* SetWatches (op 101) has three lists, SetWatches2 (op 105) five. */
int zk_decode_set_watches(struct jute_in *in, int32_t op, struct zk_set_watches *r);
void zk_encode_set_watches(struct jute_out *out, int32_t op, const struct zk_set_watches *r);

/* A multi or multiRead body: ops until the done header. An op type that
 * does not belong (for multi: not a write or check; for multiRead: not
 * getChildren/getData) makes the decode fail with JUTE_EVALUE. At most
 * max_ops ops (ZooKeeper has no fixed limit; the frame size bounds it). */
int zk_decode_multi_request(struct jute_in *in, int32_t op, struct zk_multi_request *r,
			    int32_t max_ops);
void zk_encode_multi_request(struct jute_out *out, const struct zk_multi_request *r);

/* The path checks ZooKeeper applies (PathUtils.validatePath): absolute, no
 * empty segments, no trailing slash but for "/", no "." or ".." segments,
 * no NUL and no control or non-character code points. Returns true if valid.
 * A sequential create validates path + "1" (the name may end in '/'). */
bool zk_path_valid(struct zk_str path);

#endif

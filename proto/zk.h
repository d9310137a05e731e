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
 *
 * What each opcode is — a write or not, allowed in a multi, the permission
 * it needs, its request and reply records, the watch it leaves — is said
 * once, in the opcode table zk_op(); no other file switches on an opcode
 * (tools/opcodes.py fails the lint suite on a `case ZK_OP_` elsewhere).
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

/*
 * struct zk_code: a ZooKeeper error code (enum zk_error) held as a type of
 * its own, so that the compiler refuses to mix it with a negative errno.
 * Both are negative ints (ZSYSTEMERROR is -1 = -EPERM, ZNONODE -101 =
 * -ENETUNREACH), and an enum would convert to and from int silently; a
 * struct of one member converts to nothing. Assigning, returning or
 * comparing an int where a zk_code belongs is a compile error.
 *
 * The server carries a client's outcome in it from where the outcome is
 * decided (prep.c, acl.c, read.c, tree.c) to where it is written: a reply
 * (reply_begin(), and the results of a multi), an ErrorTxn or a
 * ForwardError. Records of the wire (struct zk_reply_header, struct
 * zk_multi_header) and of the protobuf schemas (ErrorTxn.err,
 * ForwardError.err) keep the plain int32_t; their readers and writers
 * convert there and nowhere else. The client library's public API keeps
 * plain int codes by design, as ZooKeeper's own C client does. See "Errors"
 * in docs/conventions.md.
 *
 *   ZK_CODE(ZNONODE)          a code from its name, or from a wire int32
 *   zk_ok(c)                  c is ZOK
 *   zk_code_is(c, ZNONODE)    c is that code
 *   zk_code_int(c)            the int32 to encode (wire, protobuf, logs)
 */
struct zk_code {
	int32_t v; /* an enum zk_error; read it only through zk_code_int() */
};

#define ZK_CODE(code) ((struct zk_code){ .v = (int32_t)(code) })

static inline bool zk_ok(struct zk_code c) { return c.v == ZOK; }
static inline bool zk_code_is(struct zk_code c, enum zk_error e) { return c.v == (int32_t)e; }
static inline int32_t zk_code_int(struct zk_code c) { return c.v; }
/*
 * What the protocol says of each opcode (ZooDefs.OpCode), in one table that
 * the code asks instead of switching on the opcode: its names, whether it
 * is a write and may stand in a multi or a multiRead, the permission it
 * needs and on which node, the records its request and its reply carry,
 * and the watch it may leave. A layer that has a handler per opcode keeps
 * them in an array indexed by ZK_OP_SLOT(); what an opcode is, it learns
 * here.
 */
enum zk_op_flag {
	ZK_OPF_WRITE = 1 << 0,      /* a client's write: prepped into a txn */
	ZK_OPF_MULTI = 1 << 1,      /* may be an op of a multi */
	ZK_OPF_MULTI_READ = 1 << 2, /* may be an op of a multiRead */
};

/* The node whose ACL is checked, as ZooKeeper's request processors do. */
enum zk_acl_on {
	ZK_ACL_ON_NONE,   /* no ACL is checked (exists, sync, the watch ops, ...) */
	ZK_ACL_ON_NODE,   /* the node the request names */
	ZK_ACL_ON_PARENT, /* its parent: create, delete */
	ZK_ACL_ON_CONFIG, /* /zookeeper/config: reconfig */
};

/* A request's body, by zookeeper.jute's record (struct zk_* below). */
enum zk_request_kind {
	ZK_REQ_NONE,         /* no body: ping, closeSession, whoAmI */
	ZK_REQ_CONNECT,      /* ConnectRequest */
	ZK_REQ_CREATE,       /* CreateRequest, CreateTTLRequest */
	ZK_REQ_PATH_VERSION, /* DeleteRequest, CheckVersionRequest */
	ZK_REQ_PATH_WATCH,   /* ExistsRequest, GetDataRequest, GetChildren(2)Request */
	ZK_REQ_PATH,         /* GetACLRequest, SyncRequest, GetEphemeralsRequest,
				GetAllChildrenNumberRequest */
	ZK_REQ_SET_DATA,     /* SetDataRequest */
	ZK_REQ_SET_ACL,      /* SetACLRequest */
	ZK_REQ_MULTI,        /* MultiOperationRecord */
	ZK_REQ_RECONFIG,     /* ReconfigRequest */
	ZK_REQ_WATCHES,      /* RemoveWatchesRequest, CheckWatchesRequest */
	ZK_REQ_ADD_WATCH,    /* AddWatchRequest */
	ZK_REQ_SET_WATCHES,  /* SetWatches, SetWatches2 */
	ZK_REQ_AUTH,         /* AuthPacket */
	ZK_REQ_SASL,         /* GetSASLRequest: a token */
};

/* A successful reply's body, by zookeeper.jute's record. */
enum zk_reply_kind {
	ZK_REPLY_NONE,          /* no body: delete, check, removeWatches, ... */
	ZK_REPLY_CONNECT,       /* ConnectResponse */
	ZK_REPLY_PATH,          /* CreateResponse, SyncResponse */
	ZK_REPLY_CREATE2,       /* Create2Response */
	ZK_REPLY_STAT,          /* ExistsResponse, SetDataResponse, SetACLResponse */
	ZK_REPLY_GET_DATA,      /* GetDataResponse; reconfig's too */
	ZK_REPLY_GET_ACL,       /* GetACLResponse */
	ZK_REPLY_CHILDREN,      /* GetChildrenResponse */
	ZK_REPLY_CHILDREN2,     /* GetChildren2Response */
	ZK_REPLY_EPHEMERALS,    /* GetEphemeralsResponse: paths */
	ZK_REPLY_NUMBER,        /* GetAllChildrenNumberResponse */
	ZK_REPLY_ERROR,         /* ErrorResponse, ErrorResult: one int */
	ZK_REPLY_MULTI,         /* MultiResponse */
	ZK_REPLY_WHO_AM_I,      /* WhoAmIResponse */
	ZK_REPLY_SASL,          /* SetSASLResponse: a token */
	ZK_REPLY_WATCHER_EVENT, /* WatcherEvent (a notification) */
};

/* The watch a request with its watch flag (or a watcher) may leave, as
 * the client's WatchRegistration kinds say. */
enum zk_op_watch {
	ZK_OPW_NONE,
	ZK_OPW_DATA,   /* getData: a data watch, if the node exists */
	ZK_OPW_EXISTS, /* exists: a data watch, or an exist watch if not */
	ZK_OPW_CHILD,  /* getChildren, getChildren2: a child watch */
	ZK_OPW_ADD,    /* addWatch: persistent, or recursive, by its mode */
};

struct zk_op_info {
	int32_t op;
	const char *name;  /* ZooKeeper's name for it ("getData") */
	const char *code;  /* the code its server logs as a connection's last
			      operation, cons's "lop" ("GETD"); NULL: "NA" */
	unsigned flags;    /* enum zk_op_flag */
	int32_t perm;      /* ZK_PERM_ bits, any one of which lets it through;
			      0 with ZK_ACL_ON_NONE */
	uint8_t acl_on;    /* enum zk_acl_on: the node perm is checked on */
	uint8_t request;   /* enum zk_request_kind */
	uint8_t reply;     /* enum zk_reply_kind */
	uint8_t watch;     /* enum zk_op_watch */
};

/* The opcodes span ZK_OP_LOWEST..ZK_OP_HIGHEST; a table of a layer's
 * handlers, one per opcode, is an array of ZK_OP_SLOTS indexed by
 * ZK_OP_SLOT(op) of an op that zk_op() knows. */
#define ZK_OP_LOWEST ZK_OP_CLOSE_SESSION
#define ZK_OP_HIGHEST ZK_OP_WHO_AM_I
#define ZK_OP_SLOTS (ZK_OP_HIGHEST - ZK_OP_LOWEST + 1)
#define ZK_OP_SLOT(op) ((op) - ZK_OP_LOWEST)

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

struct zk_multi_op;

struct zk_multi_request {
	int32_t count;
	struct zk_multi_op *ops; /* from the reader's arena */
};

/* Any request's body: the member zk_op(op)->request names. */
union zk_request {
	struct zk_connect_request connect;
	struct zk_create_request create;
	struct zk_path_version_request path_version; /* delete, check */
	struct zk_path_watch_request path_watch;
	struct zk_path_record path;
	struct zk_set_data_request set_data;
	struct zk_set_acl_request set_acl;
	struct zk_multi_request multi;
	struct zk_reconfig_request reconfig;
	struct zk_watches_request watches;
	struct zk_add_watch_request add_watch;
	struct zk_set_watches set_watches;
	struct zk_auth_packet auth;
	struct zk_buf sasl;
};

struct zk_multi_op {
	int32_t type; /* an op with ZK_OPF_MULTI (create, create2,
			 createContainer, createTTL, delete, setData, check) or
			 ZK_OPF_MULTI_READ (getChildren, getData) */
	union zk_request u;
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

/* The body of a request of opcode op into the member of r that
 * zk_op(op)->request names (none for ZK_REQ_NONE); max_ops bounds a
 * multi's ops, as below. JUTE_EVALUE for an opcode zk_op() does not know. */
int zk_decode_request(struct jute_in *in, int32_t op, union zk_request *r, int32_t max_ops);

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

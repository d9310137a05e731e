/*
 * zk_defs: the constants of Apache ZooKeeper's client protocol and its Stat
 * record, with nothing else: the part of proto/zk.h that the client
 * library's public header (quorum_client.h) needs, so both can be installed
 * on their own. zk.h includes this; code inside the tree includes zk.h.
 *
 * The numbers are ZooKeeper's (ZooDefs.OpCode, KeeperException.Code,
 * Watcher.Event, CreateMode, ZooDefs.Perms). The error names are those of
 * ZooKeeper's own C client (ZOK, ZNONODE, ...): a program cannot include
 * both this and <zookeeper/zookeeper.h>.
 */
#ifndef QUORUM_ZK_DEFS_H
#define QUORUM_ZK_DEFS_H

#include <stdint.h>

/* ZooDefs.OpCode: a request's type, and qc_result.op / qc_op.type. */
enum zk_op {
	ZK_OP_NOTIFICATION = 0,
	ZK_OP_CREATE = 1,
	ZK_OP_DELETE = 2,
	ZK_OP_EXISTS = 3,
	ZK_OP_GET_DATA = 4,
	ZK_OP_SET_DATA = 5,
	ZK_OP_GET_ACL = 6,
	ZK_OP_SET_ACL = 7,
	ZK_OP_GET_CHILDREN = 8,
	ZK_OP_SYNC = 9,
	ZK_OP_PING = 11,
	ZK_OP_GET_CHILDREN2 = 12,
	ZK_OP_CHECK = 13,
	ZK_OP_MULTI = 14,
	ZK_OP_CREATE2 = 15,
	ZK_OP_RECONFIG = 16,
	ZK_OP_CHECK_WATCHES = 17,
	ZK_OP_REMOVE_WATCHES = 18,
	ZK_OP_CREATE_CONTAINER = 19,
	ZK_OP_DELETE_CONTAINER = 20,
	ZK_OP_CREATE_TTL = 21,
	ZK_OP_MULTI_READ = 22,
	ZK_OP_AUTH = 100,
	ZK_OP_SET_WATCHES = 101,
	ZK_OP_SASL = 102,
	ZK_OP_GET_EPHEMERALS = 103,
	ZK_OP_GET_ALL_CHILDREN_NUMBER = 104,
	ZK_OP_SET_WATCHES2 = 105,
	ZK_OP_ADD_WATCH = 106,
	ZK_OP_WHO_AM_I = 107,
	ZK_OP_CREATE_SESSION = -10,
	ZK_OP_CLOSE_SESSION = -11,
	ZK_OP_ERROR = -1,
};

/* KeeperException.Code, as sent in ReplyHeader.err. */
#define ZK_ERRORS(X)                                                          \
	X(ZOK, 0, "ok")                                                        \
	X(ZSYSTEMERROR, -1, "system error")                                    \
	X(ZRUNTIMEINCONSISTENCY, -2, "runtime inconsistency")                  \
	X(ZDATAINCONSISTENCY, -3, "data inconsistency")                        \
	X(ZCONNECTIONLOSS, -4, "connection loss")                              \
	X(ZMARSHALLINGERROR, -5, "marshalling error")                          \
	X(ZUNIMPLEMENTED, -6, "unimplemented")                                 \
	X(ZOPERATIONTIMEOUT, -7, "operation timeout")                          \
	X(ZBADARGUMENTS, -8, "bad arguments")                                  \
	X(ZNEWCONFIGNOQUORUM, -13, "new config has no quorum")                 \
	X(ZRECONFIGINPROGRESS, -14, "reconfiguration in progress")             \
	X(ZUNKNOWNSESSION, -12, "unknown session")                             \
	X(ZAPIERROR, -100, "api error")                                        \
	X(ZNONODE, -101, "no node")                                            \
	X(ZNOAUTH, -102, "not authenticated")                                  \
	X(ZBADVERSION, -103, "bad version")                                    \
	X(ZNOCHILDRENFOREPHEMERALS, -108, "ephemeral nodes may not have children") \
	X(ZNODEEXISTS, -110, "node exists")                                    \
	X(ZNOTEMPTY, -111, "node not empty")                                   \
	X(ZSESSIONEXPIRED, -112, "session expired")                            \
	X(ZINVALIDCALLBACK, -113, "invalid callback")                          \
	X(ZINVALIDACL, -114, "invalid acl")                                    \
	X(ZAUTHFAILED, -115, "authentication failed")                          \
	X(ZCLOSING, -116, "closing")                                           \
	X(ZNOTHING, -117, "nothing")                                           \
	X(ZSESSIONMOVED, -118, "session moved")                                \
	X(ZNOTREADONLY, -119, "not read-only")                                 \
	X(ZEPHEMERALONLOCALSESSION, -120, "ephemeral on local session")        \
	X(ZNOWATCHER, -121, "no watcher")                                      \
	X(ZREQUESTTIMEOUT, -122, "request timeout")                            \
	X(ZRECONFIGDISABLED, -123, "reconfig disabled")                        \
	X(ZSESSIONCLOSEDREQUIRESASLAUTH, -124, "session closed, requires SASL auth") \
	X(ZQUOTAEXCEEDED, -125, "quota exceeded")                              \
	X(ZTHROTTLEDOP, -127, "throttled")

enum zk_error {
#define ZK_ERR_ENUM(name, value, text) name = value,
	ZK_ERRORS(ZK_ERR_ENUM)
#undef ZK_ERR_ENUM
};

/* Watcher.Event.EventType */
enum zk_event_type {
	ZK_EVENT_NONE = -1,
	ZK_EVENT_CREATED = 1,
	ZK_EVENT_DELETED = 2,
	ZK_EVENT_DATA_CHANGED = 3,
	ZK_EVENT_CHILDREN_CHANGED = 4,
	ZK_EVENT_DATA_WATCH_REMOVED = 5,
	ZK_EVENT_CHILD_WATCH_REMOVED = 6,
	ZK_EVENT_PERSISTENT_WATCH_REMOVED = 7,
};

/* Watcher.Event.KeeperState */
enum zk_state {
	ZK_STATE_DISCONNECTED = 0,
	ZK_STATE_SYNC_CONNECTED = 3,
	ZK_STATE_AUTH_FAILED = 4,
	ZK_STATE_CONNECTED_READ_ONLY = 5,
	ZK_STATE_SASL_AUTHENTICATED = 6,
	ZK_STATE_EXPIRED = -112,
	ZK_STATE_CLOSED = 7,
};

/* ZooDefs.Perms */
enum {
	ZK_PERM_READ = 1,
	ZK_PERM_WRITE = 2,
	ZK_PERM_CREATE = 4,
	ZK_PERM_DELETE = 8,
	ZK_PERM_ADMIN = 16,
	ZK_PERM_ALL = 31,
};

/* CreateMode flags as sent in CreateRequest.flags. */
enum zk_create_mode {
	ZK_PERSISTENT = 0,
	ZK_EPHEMERAL = 1,
	ZK_PERSISTENT_SEQUENTIAL = 2,
	ZK_EPHEMERAL_SEQUENTIAL = 3,
	ZK_CONTAINER = 4,
	ZK_PERSISTENT_WITH_TTL = 5,
	ZK_PERSISTENT_SEQUENTIAL_WITH_TTL = 6,
};

/* AddWatchMode */
enum { ZK_WATCH_PERSISTENT = 0, ZK_WATCH_PERSISTENT_RECURSIVE = 1 };
/* WatcherType for removeWatches/checkWatches */
enum {
	ZK_WATCHER_CHILDREN = 1,
	ZK_WATCHER_DATA = 2,
	ZK_WATCHER_ANY = 3,
	ZK_WATCHER_PERSISTENT = 4,
	ZK_WATCHER_PERSISTENT_RECURSIVE = 5,
};

/* The Stat of a znode, as every reply that has one carries it. */
struct zk_stat {
	int64_t czxid, mzxid, ctime, mtime;
	int32_t version, cversion, aversion;
	int64_t ephemeral_owner;
	int32_t data_length, num_children;
	int64_t pzxid;
};

#endif

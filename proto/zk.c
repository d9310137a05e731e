/*
 * zk: the records of ZooKeeper's client protocol (see zk.h), their
 * decoders and encoders, the error and opcode names, and the path rules.
 *
 * Field orders are those of zookeeper.jute; the records a multi may hold
 * and how it ends are those of MultiOperationRecord; the path rules are
 * PathUtils.validatePath's. Both sides use this file: quorumd decodes
 * requests and encodes replies, the client library the other way round.
 *
 * DESIGN: decoders read through jute_get_*() (jute.c), which latch the
 * first error, and return in->err once at the end; strings point into the
 * frame and arrays come from the reader's arena. Encoders work out a
 * record's size first, reserve it with one jute_out_reserve() and store
 * the fields straight into the output buffer, so a reply costs one bounds
 * check (and at most one realloc) however many fields it has.
 */
#include "zk.h"

#include <endian.h>
#include <stdint.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

/* The smallest encodings of the vector elements, for jute_get_count(): an
 * ACL is perms + two string lengths; a ustring is its length. */
#define ACL_MIN_SIZE 12
#define STR_MIN_SIZE 4
#define STAT_SIZE 68

static inline void fail(struct jute_in *in, int err)
{
	if (in->err == JUTE_OK)
		in->err = err;
}

/* Room for n elements of size bytes from the reader's arena; NULL for
 * n == 0, and NULL with JUTE_ENOMEM latched when there is no room. The
 * count was already bounded by jute_get_count(). */
static void *alloc_array(struct jute_in *in, int32_t n, size_t size)
{
	if (n <= 0 || in->err != JUTE_OK)
		return NULL;
	void *p = NULL;
	if (in->arena != NULL && (size_t)n <= SIZE_MAX / size)
		p = arena_alloc(in->arena, (size_t)n * size);
	if (p == NULL)
		fail(in, JUTE_ENOMEM);
	return p;
}

static inline size_t str_size(struct zk_str s)
{
	return 4 + (s.len > 0 ? (size_t)s.len : 0);
}

static inline size_t buf_size(struct zk_buf b)
{
	return 4 + (b.len > 0 ? (size_t)b.len : 0);
}

/* Stores into room already reserved; each returns the byte after. */
static inline uint8_t *st_int(uint8_t *q, int32_t v)
{
	uint32_t be = htobe32((uint32_t)v);
	memcpy(q, &be, 4);
	return q + 4;
}

static inline uint8_t *st_long(uint8_t *q, int64_t v)
{
	uint64_t be = htobe64((uint64_t)v);
	memcpy(q, &be, 8);
	return q + 8;
}

static inline uint8_t *st_bool(uint8_t *q, bool v)
{
	*q = v ? 1 : 0;
	return q + 1;
}

/* A negative length goes out as null (-1), like jute_put_string(). */
static inline uint8_t *st_bytes(uint8_t *q, const void *p, int32_t len)
{
	q = st_int(q, len < 0 ? -1 : len);
	if (len > 0) {
		memcpy(q, p, (size_t)len);
		q += len;
	}
	return q;
}

static inline uint8_t *st_str(uint8_t *q, struct zk_str s)
{
	return st_bytes(q, s.s, s.len);
}

static inline uint8_t *st_buf(uint8_t *q, struct zk_buf b)
{
	return st_bytes(q, b.p, b.len);
}

/* ---- data: Id, ACL, Stat ------------------------------------------------ */

int zk_decode_id(struct jute_in *in, struct zk_id *r)
{
	r->scheme = jute_get_string(in);
	r->id = jute_get_string(in);
	return in->err;
}

static inline size_t id_size(const struct zk_id *r)
{
	return str_size(r->scheme) + str_size(r->id);
}

static inline uint8_t *st_id(uint8_t *q, const struct zk_id *r)
{
	q = st_str(q, r->scheme);
	return st_str(q, r->id);
}

void zk_encode_id(struct jute_out *out, const struct zk_id *r)
{
	uint8_t *q = jute_out_reserve(out, id_size(r));
	if (q)
		st_id(q, r);
}

int zk_decode_acl(struct jute_in *in, struct zk_acl *r)
{
	r->perms = jute_get_int(in);
	return zk_decode_id(in, &r->id);
}

static inline size_t acl_size(const struct zk_acl *r)
{
	return 4 + id_size(&r->id);
}

static inline uint8_t *st_acl(uint8_t *q, const struct zk_acl *r)
{
	q = st_int(q, r->perms);
	return st_id(q, &r->id);
}

void zk_encode_acl(struct jute_out *out, const struct zk_acl *r)
{
	uint8_t *q = jute_out_reserve(out, acl_size(r));
	if (q)
		st_acl(q, r);
}

int zk_decode_acl_list(struct jute_in *in, struct zk_acl_list *r)
{
	r->count = jute_get_count(in, ACL_MIN_SIZE);
	r->acls = alloc_array(in, r->count, sizeof(*r->acls));
	if (r->count > 0 && r->acls == NULL) {
		r->count = -1;
		return in->err;
	}
	for (int32_t i = 0; i < r->count; i++)
		zk_decode_acl(in, &r->acls[i]);
	return in->err;
}

static size_t acl_list_size(const struct zk_acl_list *r)
{
	size_t n = 4;
	for (int32_t i = 0; i < r->count; i++)
		n += acl_size(&r->acls[i]);
	return n;
}

static uint8_t *st_acl_list(uint8_t *q, const struct zk_acl_list *r)
{
	q = st_int(q, r->count < 0 ? -1 : r->count);
	for (int32_t i = 0; i < r->count; i++)
		q = st_acl(q, &r->acls[i]);
	return q;
}

void zk_encode_acl_list(struct jute_out *out, const struct zk_acl_list *r)
{
	uint8_t *q = jute_out_reserve(out, acl_list_size(r));
	if (q)
		st_acl_list(q, r);
}

int zk_decode_stat(struct jute_in *in, struct zk_stat *r)
{
	r->czxid = jute_get_long(in);
	r->mzxid = jute_get_long(in);
	r->ctime = jute_get_long(in);
	r->mtime = jute_get_long(in);
	r->version = jute_get_int(in);
	r->cversion = jute_get_int(in);
	r->aversion = jute_get_int(in);
	r->ephemeral_owner = jute_get_long(in);
	r->data_length = jute_get_int(in);
	r->num_children = jute_get_int(in);
	r->pzxid = jute_get_long(in);
	return in->err;
}

static uint8_t *st_stat(uint8_t *q, const struct zk_stat *r)
{
	q = st_long(q, r->czxid);
	q = st_long(q, r->mzxid);
	q = st_long(q, r->ctime);
	q = st_long(q, r->mtime);
	q = st_int(q, r->version);
	q = st_int(q, r->cversion);
	q = st_int(q, r->aversion);
	q = st_long(q, r->ephemeral_owner);
	q = st_int(q, r->data_length);
	q = st_int(q, r->num_children);
	return st_long(q, r->pzxid);
}

void zk_encode_stat(struct jute_out *out, const struct zk_stat *r)
{
	uint8_t *q = jute_out_reserve(out, STAT_SIZE);
	if (q)
		st_stat(q, r);
}

int zk_decode_str_list(struct jute_in *in, struct zk_str_list *r)
{
	r->count = jute_get_count(in, STR_MIN_SIZE);
	r->items = alloc_array(in, r->count, sizeof(*r->items));
	if (r->count > 0 && r->items == NULL) {
		r->count = -1;
		return in->err;
	}
	for (int32_t i = 0; i < r->count; i++)
		r->items[i] = jute_get_string(in);
	return in->err;
}

static size_t str_list_size(const struct zk_str_list *r)
{
	size_t n = 4;
	for (int32_t i = 0; i < r->count; i++)
		n += str_size(r->items[i]);
	return n;
}

static uint8_t *st_str_list(uint8_t *q, const struct zk_str_list *r)
{
	q = st_int(q, r->count < 0 ? -1 : r->count);
	for (int32_t i = 0; i < r->count; i++)
		q = st_str(q, r->items[i]);
	return q;
}

void zk_encode_str_list(struct jute_out *out, const struct zk_str_list *r)
{
	uint8_t *q = jute_out_reserve(out, str_list_size(r));
	if (q)
		st_str_list(q, r);
}

/* ---- session: connect, headers, events, auth ---------------------------- */

/* ConnectRequest is the jute record plus a bool the Java client appends
 * after it (ZooKeeperServer.processConnectRequest() reads it if present;
 * clients older than 3.3 do not send it). */
int zk_decode_connect_request(struct jute_in *in, struct zk_connect_request *r)
{
	r->protocol_version = jute_get_int(in);
	r->last_zxid_seen = jute_get_long(in);
	r->timeout = jute_get_int(in);
	r->session_id = jute_get_long(in);
	r->passwd = jute_get_buffer(in);
	r->has_read_only = in->err == JUTE_OK && jute_in_left(in) > 0;
	r->read_only = r->has_read_only ? jute_get_bool(in) : false;
	return in->err;
}

/* The read_only byte goes out only if has_read_only says so, so a request
 * decoded from an old client encodes back to the same bytes. */
void zk_encode_connect_request(struct jute_out *out, const struct zk_connect_request *r)
{
	size_t n = 4 + 8 + 4 + 8 + buf_size(r->passwd) + (r->has_read_only ? 1 : 0);
	uint8_t *q = jute_out_reserve(out, n);
	if (q == NULL)
		return;
	q = st_int(q, r->protocol_version);
	q = st_long(q, r->last_zxid_seen);
	q = st_int(q, r->timeout);
	q = st_long(q, r->session_id);
	q = st_buf(q, r->passwd);
	if (r->has_read_only)
		st_bool(q, r->read_only);
}

/* The server appends readOnly after the record for every client that sent
 * it; a response from an old server may lack it, which reads as false. */
int zk_decode_connect_response(struct jute_in *in, struct zk_connect_response *r)
{
	r->protocol_version = jute_get_int(in);
	r->timeout = jute_get_int(in);
	r->session_id = jute_get_long(in);
	r->passwd = jute_get_buffer(in);
	r->read_only = in->err == JUTE_OK && jute_in_left(in) > 0 ? jute_get_bool(in) : false;
	return in->err;
}

void zk_encode_connect_response(struct jute_out *out, const struct zk_connect_response *r)
{
	uint8_t *q = jute_out_reserve(out, 4 + 4 + 8 + buf_size(r->passwd) + 1);
	if (q == NULL)
		return;
	q = st_int(q, r->protocol_version);
	q = st_int(q, r->timeout);
	q = st_long(q, r->session_id);
	q = st_buf(q, r->passwd);
	st_bool(q, r->read_only);
}

int zk_decode_request_header(struct jute_in *in, struct zk_request_header *r)
{
	r->xid = jute_get_int(in);
	r->type = jute_get_int(in);
	return in->err;
}

void zk_encode_request_header(struct jute_out *out, const struct zk_request_header *r)
{
	uint8_t *q = jute_out_reserve(out, 8);
	if (q == NULL)
		return;
	q = st_int(q, r->xid);
	st_int(q, r->type);
}

int zk_decode_reply_header(struct jute_in *in, struct zk_reply_header *r)
{
	r->xid = jute_get_int(in);
	r->zxid = jute_get_long(in);
	r->err = jute_get_int(in);
	return in->err;
}

void zk_encode_reply_header(struct jute_out *out, const struct zk_reply_header *r)
{
	uint8_t *q = jute_out_reserve(out, 16);
	if (q == NULL)
		return;
	q = st_int(q, r->xid);
	q = st_long(q, r->zxid);
	st_int(q, r->err);
}

int zk_decode_watcher_event(struct jute_in *in, struct zk_watcher_event *r)
{
	r->type = jute_get_int(in);
	r->state = jute_get_int(in);
	r->path = jute_get_string(in);
	return in->err;
}

void zk_encode_watcher_event(struct jute_out *out, const struct zk_watcher_event *r)
{
	uint8_t *q = jute_out_reserve(out, 8 + str_size(r->path));
	if (q == NULL)
		return;
	q = st_int(q, r->type);
	q = st_int(q, r->state);
	st_str(q, r->path);
}

int zk_decode_auth_packet(struct jute_in *in, struct zk_auth_packet *r)
{
	r->type = jute_get_int(in);
	r->scheme = jute_get_string(in);
	r->auth = jute_get_buffer(in);
	return in->err;
}

void zk_encode_auth_packet(struct jute_out *out, const struct zk_auth_packet *r)
{
	uint8_t *q = jute_out_reserve(out, 4 + str_size(r->scheme) + buf_size(r->auth));
	if (q == NULL)
		return;
	q = st_int(q, r->type);
	q = st_str(q, r->scheme);
	st_buf(q, r->auth);
}

int zk_decode_client_info(struct jute_in *in, struct zk_client_info *r)
{
	r->auth_scheme = jute_get_string(in);
	r->user = jute_get_string(in);
	return in->err;
}

void zk_encode_client_info(struct jute_out *out, const struct zk_client_info *r)
{
	uint8_t *q = jute_out_reserve(out, str_size(r->auth_scheme) + str_size(r->user));
	if (q == NULL)
		return;
	q = st_str(q, r->auth_scheme);
	st_str(q, r->user);
}

/* ---- requests ----------------------------------------------------------- */

static bool is_create_op(int32_t op)
{
	return op == ZK_OP_CREATE || op == ZK_OP_CREATE2 || op == ZK_OP_CREATE_CONTAINER ||
	       op == ZK_OP_CREATE_TTL;
}

/* CreateRequest, or CreateTTLRequest (the same plus a long) for createTTL.
 * The flags are not checked here: an unknown CreateMode is the server's
 * ZBADARGUMENTS, not a malformed frame. */
int zk_decode_create_request(struct jute_in *in, int32_t op, struct zk_create_request *r)
{
	if (!is_create_op(op))
		fail(in, JUTE_EVALUE);
	r->path = jute_get_string(in);
	r->data = jute_get_buffer(in);
	zk_decode_acl_list(in, &r->acl);
	r->flags = jute_get_int(in);
	r->ttl = op == ZK_OP_CREATE_TTL ? jute_get_long(in) : 0;
	return in->err;
}

static size_t create_request_size(int32_t op, const struct zk_create_request *r)
{
	return str_size(r->path) + buf_size(r->data) + acl_list_size(&r->acl) + 4 +
	       (op == ZK_OP_CREATE_TTL ? 8 : 0);
}

static uint8_t *st_create_request(uint8_t *q, int32_t op, const struct zk_create_request *r)
{
	q = st_str(q, r->path);
	q = st_buf(q, r->data);
	q = st_acl_list(q, &r->acl);
	q = st_int(q, r->flags);
	if (op == ZK_OP_CREATE_TTL)
		q = st_long(q, r->ttl);
	return q;
}

void zk_encode_create_request(struct jute_out *out, int32_t op, const struct zk_create_request *r)
{
	if (!is_create_op(op)) {
		if (out->err == JUTE_OK)
			out->err = JUTE_EVALUE;
		return;
	}
	uint8_t *q = jute_out_reserve(out, create_request_size(op, r));
	if (q)
		st_create_request(q, op, r);
}

int zk_decode_path_version_request(struct jute_in *in, struct zk_path_version_request *r)
{
	r->path = jute_get_string(in);
	r->version = jute_get_int(in);
	return in->err;
}

static inline size_t path_version_size(const struct zk_path_version_request *r)
{
	return str_size(r->path) + 4;
}

static inline uint8_t *st_path_version(uint8_t *q, const struct zk_path_version_request *r)
{
	q = st_str(q, r->path);
	return st_int(q, r->version);
}

void zk_encode_path_version_request(struct jute_out *out,
				    const struct zk_path_version_request *r)
{
	uint8_t *q = jute_out_reserve(out, path_version_size(r));
	if (q)
		st_path_version(q, r);
}

int zk_decode_path_watch_request(struct jute_in *in, struct zk_path_watch_request *r)
{
	r->path = jute_get_string(in);
	r->watch = jute_get_bool(in);
	return in->err;
}

static inline size_t path_watch_size(const struct zk_path_watch_request *r)
{
	return str_size(r->path) + 1;
}

static inline uint8_t *st_path_watch(uint8_t *q, const struct zk_path_watch_request *r)
{
	q = st_str(q, r->path);
	return st_bool(q, r->watch);
}

void zk_encode_path_watch_request(struct jute_out *out, const struct zk_path_watch_request *r)
{
	uint8_t *q = jute_out_reserve(out, path_watch_size(r));
	if (q)
		st_path_watch(q, r);
}

int zk_decode_path_record(struct jute_in *in, struct zk_path_record *r)
{
	r->path = jute_get_string(in);
	return in->err;
}

void zk_encode_path_record(struct jute_out *out, const struct zk_path_record *r)
{
	jute_put_string(out, r->path);
}

int zk_decode_set_data_request(struct jute_in *in, struct zk_set_data_request *r)
{
	r->path = jute_get_string(in);
	r->data = jute_get_buffer(in);
	r->version = jute_get_int(in);
	return in->err;
}

static inline size_t set_data_size(const struct zk_set_data_request *r)
{
	return str_size(r->path) + buf_size(r->data) + 4;
}

static inline uint8_t *st_set_data(uint8_t *q, const struct zk_set_data_request *r)
{
	q = st_str(q, r->path);
	q = st_buf(q, r->data);
	return st_int(q, r->version);
}

void zk_encode_set_data_request(struct jute_out *out, const struct zk_set_data_request *r)
{
	uint8_t *q = jute_out_reserve(out, set_data_size(r));
	if (q)
		st_set_data(q, r);
}

int zk_decode_reconfig_request(struct jute_in *in, struct zk_reconfig_request *r)
{
	r->joining = jute_get_string(in);
	r->leaving = jute_get_string(in);
	r->new_members = jute_get_string(in);
	r->cur_config_id = jute_get_long(in);
	return in->err;
}

void zk_encode_reconfig_request(struct jute_out *out, const struct zk_reconfig_request *r)
{
	jute_put_string(out, r->joining);
	jute_put_string(out, r->leaving);
	jute_put_string(out, r->new_members);
	jute_put_long(out, r->cur_config_id);
}

int zk_decode_set_acl_request(struct jute_in *in, struct zk_set_acl_request *r)
{
	r->path = jute_get_string(in);
	zk_decode_acl_list(in, &r->acl);
	r->version = jute_get_int(in);
	return in->err;
}

void zk_encode_set_acl_request(struct jute_out *out, const struct zk_set_acl_request *r)
{
	uint8_t *q = jute_out_reserve(out, str_size(r->path) + acl_list_size(&r->acl) + 4);
	if (q == NULL)
		return;
	q = st_str(q, r->path);
	q = st_acl_list(q, &r->acl);
	st_int(q, r->version);
}

/* AddWatchRequest and the watches requests are both path + int. */
static void decode_path_int(struct jute_in *in, struct zk_str *path, int32_t *v)
{
	*path = jute_get_string(in);
	*v = jute_get_int(in);
}

static void encode_path_int(struct jute_out *out, struct zk_str path, int32_t v)
{
	uint8_t *q = jute_out_reserve(out, str_size(path) + 4);
	if (q == NULL)
		return;
	q = st_str(q, path);
	st_int(q, v);
}

int zk_decode_add_watch_request(struct jute_in *in, struct zk_add_watch_request *r)
{
	decode_path_int(in, &r->path, &r->mode);
	return in->err;
}

void zk_encode_add_watch_request(struct jute_out *out, const struct zk_add_watch_request *r)
{
	encode_path_int(out, r->path, r->mode);
}

int zk_decode_watches_request(struct jute_in *in, struct zk_watches_request *r)
{
	decode_path_int(in, &r->path, &r->type);
	return in->err;
}

void zk_encode_watches_request(struct jute_out *out, const struct zk_watches_request *r)
{
	encode_path_int(out, r->path, r->type);
}

/* SetWatches: relativeZxid and three lists; SetWatches2 adds the
 * persistent and persistent-recursive lists. For setWatches the last two
 * come back null and are not encoded. */
int zk_decode_set_watches(struct jute_in *in, int32_t op, struct zk_set_watches *r)
{
	if (op != ZK_OP_SET_WATCHES && op != ZK_OP_SET_WATCHES2)
		fail(in, JUTE_EVALUE);
	r->relative_zxid = jute_get_long(in);
	zk_decode_str_list(in, &r->data);
	zk_decode_str_list(in, &r->exist);
	zk_decode_str_list(in, &r->child);
	if (op == ZK_OP_SET_WATCHES2) {
		zk_decode_str_list(in, &r->persistent);
		zk_decode_str_list(in, &r->persistent_recursive);
	} else {
		r->persistent = (struct zk_str_list){ -1, NULL };
		r->persistent_recursive = (struct zk_str_list){ -1, NULL };
	}
	return in->err;
}

void zk_encode_set_watches(struct jute_out *out, int32_t op, const struct zk_set_watches *r)
{
	if (op != ZK_OP_SET_WATCHES && op != ZK_OP_SET_WATCHES2) {
		if (out->err == JUTE_OK)
			out->err = JUTE_EVALUE;
		return;
	}
	bool two = op == ZK_OP_SET_WATCHES2;
	size_t n = 8 + str_list_size(&r->data) + str_list_size(&r->exist) +
		   str_list_size(&r->child);
	if (two)
		n += str_list_size(&r->persistent) + str_list_size(&r->persistent_recursive);
	uint8_t *q = jute_out_reserve(out, n);
	if (q == NULL)
		return;
	q = st_long(q, r->relative_zxid);
	q = st_str_list(q, &r->data);
	q = st_str_list(q, &r->exist);
	q = st_str_list(q, &r->child);
	if (two) {
		q = st_str_list(q, &r->persistent);
		st_str_list(q, &r->persistent_recursive);
	}
}

/* ---- responses ---------------------------------------------------------- */

int zk_decode_create2_response(struct jute_in *in, struct zk_create2_response *r)
{
	r->path = jute_get_string(in);
	return zk_decode_stat(in, &r->stat);
}

void zk_encode_create2_response(struct jute_out *out, const struct zk_create2_response *r)
{
	uint8_t *q = jute_out_reserve(out, str_size(r->path) + STAT_SIZE);
	if (q == NULL)
		return;
	q = st_str(q, r->path);
	st_stat(q, &r->stat);
}

int zk_decode_get_data_response(struct jute_in *in, struct zk_get_data_response *r)
{
	r->data = jute_get_buffer(in);
	return zk_decode_stat(in, &r->stat);
}

void zk_encode_get_data_response(struct jute_out *out, const struct zk_get_data_response *r)
{
	uint8_t *q = jute_out_reserve(out, buf_size(r->data) + STAT_SIZE);
	if (q == NULL)
		return;
	q = st_buf(q, r->data);
	st_stat(q, &r->stat);
}

int zk_decode_get_acl_response(struct jute_in *in, struct zk_get_acl_response *r)
{
	zk_decode_acl_list(in, &r->acl);
	return zk_decode_stat(in, &r->stat);
}

void zk_encode_get_acl_response(struct jute_out *out, const struct zk_get_acl_response *r)
{
	uint8_t *q = jute_out_reserve(out, acl_list_size(&r->acl) + STAT_SIZE);
	if (q == NULL)
		return;
	q = st_acl_list(q, &r->acl);
	st_stat(q, &r->stat);
}

int zk_decode_get_children2_response(struct jute_in *in, struct zk_get_children2_response *r)
{
	zk_decode_str_list(in, &r->children);
	return zk_decode_stat(in, &r->stat);
}

void zk_encode_get_children2_response(struct jute_out *out,
				      const struct zk_get_children2_response *r)
{
	uint8_t *q = jute_out_reserve(out, str_list_size(&r->children) + STAT_SIZE);
	if (q == NULL)
		return;
	q = st_str_list(q, &r->children);
	st_stat(q, &r->stat);
}

/* ---- multi -------------------------------------------------------------- */

int zk_decode_multi_header(struct jute_in *in, struct zk_multi_header *r)
{
	r->type = jute_get_int(in);
	r->done = jute_get_bool(in);
	r->err = jute_get_int(in);
	return in->err;
}

static inline uint8_t *st_multi_header(uint8_t *q, int32_t type, bool done, int32_t err)
{
	q = st_int(q, type);
	q = st_bool(q, done);
	return st_int(q, err);
}

void zk_encode_multi_header(struct jute_out *out, const struct zk_multi_header *r)
{
	uint8_t *q = jute_out_reserve(out, 9);
	if (q)
		st_multi_header(q, r->type, r->done, r->err);
}

/* The ops MultiOperationRecord accepts, split as the server splits them:
 * a multi is writes and checks, a multiRead is reads (ZooKeeper refuses a
 * mix of the two). */
static bool multi_op_allowed(int32_t multi, int32_t type)
{
	return zk_op_is(type, multi == ZK_OP_MULTI ? ZK_OPF_MULTI : ZK_OPF_MULTI_READ);
}

/* The ops array grows by doubling in the arena (the old array is left
 * there): a multi's length is known only at its done header, and most
 * multis are a handful of ops, which fit the first allocation. */
#define MULTI_FIRST_CAP 8

static bool multi_grow(struct jute_in *in, struct zk_multi_request *r, int32_t *cap)
{
	int32_t ncap = *cap ? (*cap > INT32_MAX / 2 ? INT32_MAX : *cap * 2) : MULTI_FIRST_CAP;
	struct zk_multi_op *ops = alloc_array(in, ncap, sizeof(*ops));
	if (ops == NULL)
		return false;
	if (r->count)
		memcpy(ops, r->ops, (size_t)r->count * sizeof(*ops));
	r->ops = ops;
	*cap = ncap;
	return true;
}

/* MultiOperationRecord: (MultiHeader, op)* then a header with done set.
 * Like ZooKeeper, any header with done set ends the list whatever its type
 * and err (clients send -1, true, -1), and the err of an op's header is
 * ignored (clients send -1). */
int zk_decode_multi_request(struct jute_in *in, int32_t op, struct zk_multi_request *r,
			    int32_t max_ops)
{
	r->count = 0;
	r->ops = NULL;
	if (op != ZK_OP_MULTI && op != ZK_OP_MULTI_READ)
		fail(in, JUTE_EVALUE);
	int32_t cap = 0;
	while (in->err == JUTE_OK) {
		struct zk_multi_header h;
		if (zk_decode_multi_header(in, &h) != JUTE_OK || h.done)
			break;
		if (!multi_op_allowed(op, h.type)) {
			fail(in, JUTE_EVALUE);
			break;
		}
		if (r->count >= max_ops) {
			fail(in, JUTE_ELENGTH);
			break;
		}
		if (r->count == cap && !multi_grow(in, r, &cap))
			break;
		struct zk_multi_op *o = &r->ops[r->count];
		o->type = h.type;
		zk_decode_request(in, o->type, &o->u, 0);
		if (in->err == JUTE_OK)
			r->count++;
	}
	return in->err;
}

/* The size of a multi's op, or SIZE_MAX for one that cannot be in a multi
 * or a multiRead. */
static size_t multi_op_size(const struct zk_multi_op *o)
{
	if (!zk_op_is(o->type, ZK_OPF_MULTI | ZK_OPF_MULTI_READ))
		return SIZE_MAX;
	switch (zk_op(o->type)->request) {
	case ZK_REQ_CREATE:
		return create_request_size(o->type, &o->u.create);
	case ZK_REQ_PATH_VERSION:
		return path_version_size(&o->u.path_version);
	case ZK_REQ_SET_DATA:
		return set_data_size(&o->u.set_data);
	case ZK_REQ_PATH_WATCH:
		return path_watch_size(&o->u.path_watch);
	default:
		return SIZE_MAX;
	}
}

/* One op that multi_op_size() sized. */
static uint8_t *st_multi_op(uint8_t *q, const struct zk_multi_op *o)
{
	switch (zk_op(o->type)->request) {
	case ZK_REQ_CREATE:
		return st_create_request(q, o->type, &o->u.create);
	case ZK_REQ_PATH_VERSION:
		return st_path_version(q, &o->u.path_version);
	case ZK_REQ_SET_DATA:
		return st_set_data(q, &o->u.set_data);
	default: /* ZK_REQ_PATH_WATCH */
		return st_path_watch(q, &o->u.path_watch);
	}
}

/* Each op goes out with the header the Java client writes (type, false,
 * -1), then the done header (-1, true, -1). An op type that has no request
 * record in a multi latches JUTE_EVALUE and writes nothing. */
void zk_encode_multi_request(struct jute_out *out, const struct zk_multi_request *r)
{
	size_t n = 9;
	for (int32_t i = 0; i < r->count; i++) {
		size_t s = multi_op_size(&r->ops[i]);
		if (s == SIZE_MAX) {
			if (out->err == JUTE_OK)
				out->err = JUTE_EVALUE;
			return;
		}
		n += 9 + s;
	}
	uint8_t *q = jute_out_reserve(out, n);
	if (q == NULL)
		return;
	for (int32_t i = 0; i < r->count; i++) {
		q = st_multi_header(q, r->ops[i].type, false, -1);
		q = st_multi_op(q, &r->ops[i]);
	}
	st_multi_header(q, -1, true, -1);
}

/* ---- any request ------------------------------------------------------- */

int zk_decode_request(struct jute_in *in, int32_t op, union zk_request *r, int32_t max_ops)
{
	const struct zk_op_info *i = zk_op(op);
	switch (i ? i->request : -1) {
	case ZK_REQ_NONE:
		return in->err;
	case ZK_REQ_CONNECT:
		return zk_decode_connect_request(in, &r->connect);
	case ZK_REQ_CREATE:
		return zk_decode_create_request(in, op, &r->create);
	case ZK_REQ_PATH_VERSION:
		return zk_decode_path_version_request(in, &r->path_version);
	case ZK_REQ_PATH_WATCH:
		return zk_decode_path_watch_request(in, &r->path_watch);
	case ZK_REQ_PATH:
		return zk_decode_path_record(in, &r->path);
	case ZK_REQ_SET_DATA:
		return zk_decode_set_data_request(in, &r->set_data);
	case ZK_REQ_SET_ACL:
		return zk_decode_set_acl_request(in, &r->set_acl);
	case ZK_REQ_MULTI:
		return zk_decode_multi_request(in, op, &r->multi, max_ops);
	case ZK_REQ_RECONFIG:
		return zk_decode_reconfig_request(in, &r->reconfig);
	case ZK_REQ_WATCHES:
		return zk_decode_watches_request(in, &r->watches);
	case ZK_REQ_ADD_WATCH:
		return zk_decode_add_watch_request(in, &r->add_watch);
	case ZK_REQ_SET_WATCHES:
		return zk_decode_set_watches(in, op, &r->set_watches);
	case ZK_REQ_AUTH:
		return zk_decode_auth_packet(in, &r->auth);
	case ZK_REQ_SASL:
		r->sasl = jute_get_buffer(in);
		return in->err;
	default:
		fail(in, JUTE_EVALUE);
		return in->err;
	}
}

/* ---- names -------------------------------------------------------------- */

const char *zk_error_name(int err)
{
	switch (err) {
#define ZK_ERR_NAME(name, value, text)                                         \
	case value:                                                            \
		return #name;
		ZK_ERRORS(ZK_ERR_NAME)
#undef ZK_ERR_NAME
	default:
		return "unknown error";
	}
}

const char *zk_error_message(int err)
{
	switch (err) {
#define ZK_ERR_TEXT(name, value, text)                                         \
	case value:                                                            \
		return text;
		ZK_ERRORS(ZK_ERR_TEXT)
#undef ZK_ERR_TEXT
	default:
		return "unknown error";
	}
}

/* ---- the opcodes -------------------------------------------------------- */

#define OP(o, n, c, f, perm, on, rq, rp, w)                                    \
	[ZK_OP_SLOT(ZK_OP_##o)] = { ZK_OP_##o, (n), (c), (f), PERM_##perm, ZK_ACL_ON_##on,   \
				    ZK_REQ_##rq, ZK_REPLY_##rp, ZK_OPW_##w }
#define W ZK_OPF_WRITE
#define M ZK_OPF_MULTI
#define MR ZK_OPF_MULTI_READ
#define PERM_NONE 0
#define PERM_READ ZK_PERM_READ
#define PERM_WRITE ZK_PERM_WRITE
#define PERM_CREATE ZK_PERM_CREATE
#define PERM_DELETE ZK_PERM_DELETE
#define PERM_ADMIN ZK_PERM_ADMIN
#define PERM_READ_ADMIN (ZK_PERM_READ | ZK_PERM_ADMIN)

/*
 * Names and codes as ZooKeeper's ZooDefs.OpCode and Request.op2String;
 * permissions as its PrepRequestProcessor (writes) and
 * FinalRequestProcessor (reads) check them, getACL as 3.8 does (READ or
 * ADMIN); records as zookeeper.jute. The columns: opcode, name, lop code,
 * flags, permission, the node it is checked on, request, reply, watch.
 */
static const struct zk_op_info ops[ZK_OP_SLOTS] = {
	OP(CLOSE_SESSION, "closeSession", "CLOS", W, NONE, NONE, NONE, NONE, NONE),
	OP(CREATE_SESSION, "createSession", "SESS", 0, NONE, NONE, CONNECT, CONNECT, NONE),
	OP(ERROR, "error", NULL, 0, NONE, NONE, NONE, ERROR, NONE),
	OP(NOTIFICATION, "notification", NULL, 0, NONE, NONE, NONE, WATCHER_EVENT, NONE),
	OP(CREATE, "create", "CREA", W | M, CREATE, PARENT, CREATE, PATH, NONE),
	OP(DELETE, "delete", "DELE", W | M, DELETE, PARENT, PATH_VERSION, NONE, NONE),
	OP(EXISTS, "exists", "EXIS", 0, NONE, NONE, PATH_WATCH, STAT, EXISTS),
	OP(GET_DATA, "getData", "GETD", MR, READ, NODE, PATH_WATCH, GET_DATA, DATA),
	OP(SET_DATA, "setData", "SETD", W | M, WRITE, NODE, SET_DATA, STAT, NONE),
	OP(GET_ACL, "getACL", "GETA", 0, READ_ADMIN, NODE, PATH, GET_ACL, NONE),
	OP(SET_ACL, "setACL", "SETA", W, ADMIN, NODE, SET_ACL, STAT, NONE),
	OP(GET_CHILDREN, "getChildren", "GETC", MR, READ, NODE, PATH_WATCH, CHILDREN, CHILD),
	OP(SYNC, "sync", "SYNC", 0, NONE, NONE, PATH, PATH, NONE),
	OP(PING, "ping", "PING", 0, NONE, NONE, NONE, NONE, NONE),
	OP(GET_CHILDREN2, "getChildren2", "GETC", 0, READ, NODE, PATH_WATCH, CHILDREN2, CHILD),
	OP(CHECK, "check", "CHEC", W | M, READ, NODE, PATH_VERSION, NONE, NONE),
	OP(MULTI, "multi", "MULT", W, NONE, NONE, MULTI, MULTI, NONE),
	OP(CREATE2, "create2", "CREA", W | M, CREATE, PARENT, CREATE, CREATE2, NONE),
	OP(RECONFIG, "reconfig", "RCFG", W, WRITE, CONFIG, RECONFIG, GET_DATA, NONE),
	OP(CHECK_WATCHES, "checkWatches", "CHKW", 0, NONE, NONE, WATCHES, NONE, NONE),
	OP(REMOVE_WATCHES, "removeWatches", "REMW", 0, NONE, NONE, WATCHES, NONE, NONE),
	OP(CREATE_CONTAINER, "createContainer", "CREA", W | M, CREATE, PARENT, CREATE, CREATE2,
	   NONE),
	/* the server's own, refused from clients: its body is never read */
	OP(DELETE_CONTAINER, "deleteContainer", "DELE", 0, NONE, NONE, NONE, NONE, NONE),
	OP(CREATE_TTL, "createTTL", "CREA", W | M, CREATE, PARENT, CREATE, CREATE2, NONE),
	OP(MULTI_READ, "multiRead", "MLTR", 0, NONE, NONE, MULTI, MULTI, NONE),
	OP(AUTH, "auth", NULL, 0, NONE, NONE, AUTH, NONE, NONE),
	OP(SET_WATCHES, "setWatches", "SETW", 0, NONE, NONE, SET_WATCHES, NONE, NONE),
	OP(SASL, "sasl", NULL, 0, NONE, NONE, SASL, SASL, NONE),
	OP(GET_EPHEMERALS, "getEphemerals", "GETE", 0, NONE, NONE, PATH, EPHEMERALS, NONE),
	OP(GET_ALL_CHILDREN_NUMBER, "getAllChildrenNumber", "GETACN", 0, READ, NODE, PATH, NUMBER,
	   NONE),
	OP(SET_WATCHES2, "setWatches2", "STW2", 0, NONE, NONE, SET_WATCHES, NONE, NONE),
	OP(ADD_WATCH, "addWatch", "ADDW", 0, NONE, NONE, ADD_WATCH, ERROR, ADD),
	OP(WHO_AM_I, "whoAmI", "HOMI", 0, NONE, NONE, NONE, WHO_AM_I, NONE),
};

#undef OP
#undef W
#undef M
#undef MR
#undef PERM_NONE
#undef PERM_READ
#undef PERM_WRITE
#undef PERM_CREATE
#undef PERM_DELETE
#undef PERM_ADMIN
#undef PERM_READ_ADMIN

const struct zk_op_info *zk_op(int32_t op)
{
	if (op < ZK_OP_LOWEST || op > ZK_OP_HIGHEST || ops[ZK_OP_SLOT(op)].name == NULL)
		return NULL;
	return &ops[ZK_OP_SLOT(op)];
}

const char *zk_op_name(int op)
{
	const struct zk_op_info *i = zk_op(op);
	return i ? i->name : "unknown";
}

/* ---- paths -------------------------------------------------------------- */

/*
 * PathUtils.validatePath() works on Java chars (UTF-16 code units) of the
 * string the server decoded from the frame's UTF-8. Over the UTF-8 bytes
 * that becomes:
 *   - '/', '.' and the control characters are ASCII, and no byte of a
 *     multi-byte sequence is ASCII, so the structural rules (leading '/',
 *     no trailing '/', no empty, "." or ".." segment) apply to the bytes;
 *   - refused code units: U+0000..U+001F (NUL is its own rule in Java, the
 *     same outcome), U+007F..U+009F, U+D800..U+F8FF and U+FFF0..U+FFFF.
 *     Every code point above U+FFFF is a surrogate pair in UTF-16, so every
 *     4-byte sequence is refused;
 *   - malformed UTF-8 (overlong, surrogates, truncated, stray continuation)
 *     decodes to U+FFFD in Java, which is in U+FFF0..U+FFFF: refused too.
 * What passes: printable ASCII, U+00A0..U+D7FF and U+F900..U+FFEF.
 */

/* Decodes one non-ASCII UTF-8 sequence at s (n > 0 bytes available):
 * returns its length and stores the code point, or returns 0 if the bytes
 * are not well-formed UTF-8 or encode a code point above U+FFFF. */
static size_t utf8_bmp(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint8_t c = s[0];
	if (c >= 0xc2 && c <= 0xdf) {
		if (n < 2 || (s[1] & 0xc0) != 0x80)
			return 0;
		*cp = (uint32_t)(c & 0x1f) << 6 | (s[1] & 0x3f);
		return 2;
	}
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		uint32_t v = (uint32_t)(c & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 |
			     (s[2] & 0x3f);
		if (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))
			return 0; /* overlong, or a surrogate */
		*cp = v;
		return 3;
	}
	return 0; /* a continuation byte, C0/C1, or a 4-byte (or worse) lead */
}

/* Whether the segment s[0..n) is "." or "..". */
static inline bool dot_segment(const uint8_t *s, size_t n)
{
	return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

bool zk_path_valid(struct zk_str path)
{
	if (path.s == NULL || path.len <= 0)
		return false;
	const uint8_t *s = (const uint8_t *)path.s;
	size_t n = (size_t)path.len;
	if (s[0] != '/')
		return false;
	if (n == 1)
		return true;
	if (s[n - 1] == '/')
		return false;
	size_t seg = 1; /* where the current segment starts */
	for (size_t i = 1; i < n;) {
		uint8_t c = s[i];
		if (c == '/') {
			if (i == seg || dot_segment(s + seg, i - seg))
				return false;
			seg = ++i;
		} else if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			i++;
		} else {
			uint32_t cp;
			size_t k = utf8_bmp(s + i, n - i, &cp);
			if (k == 0 || cp <= 0x9f || (cp >= 0xd800 && cp <= 0xf8ff) || cp >= 0xfff0)
				return false;
			i += k;
		}
	}
	return !dot_segment(s + seg, n - seg);
}

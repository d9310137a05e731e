/*
 * zk_eq: deep equality of the records in proto/zk.h, for the round-trip
 * checks of the unit tests (tests/unit/test_jute.c) and the fuzzer
 * (fuzz_jute.c). Strings and buffers compare by content, null differs
 * from empty, vectors compare element by element.
 */
#ifndef QUORUM_TESTS_ZK_EQ_H
#define QUORUM_TESTS_ZK_EQ_H

#include <stdbool.h>
#include <string.h>

#include "zk.h"

static inline bool eq_buf(struct zk_buf a, struct zk_buf b)
{
	return a.len == b.len && (a.len <= 0 || memcmp(a.p, b.p, (size_t)a.len) == 0);
}

static inline bool eq_id(const struct zk_id *a, const struct zk_id *b)
{
	return zk_str_eq(a->scheme, b->scheme) && zk_str_eq(a->id, b->id);
}

static inline bool eq_acl(const struct zk_acl *a, const struct zk_acl *b)
{
	return a->perms == b->perms && eq_id(&a->id, &b->id);
}

static inline bool eq_acl_list(const struct zk_acl_list *a, const struct zk_acl_list *b)
{
	if (a->count != b->count)
		return false;
	for (int32_t i = 0; i < a->count; i++)
		if (!eq_acl(&a->acls[i], &b->acls[i]))
			return false;
	return true;
}

static inline bool eq_str_list(const struct zk_str_list *a, const struct zk_str_list *b)
{
	if (a->count != b->count)
		return false;
	for (int32_t i = 0; i < a->count; i++)
		if (!zk_str_eq(a->items[i], b->items[i]))
			return false;
	return true;
}

static inline bool eq_stat(const struct zk_stat *a, const struct zk_stat *b)
{
	return a->czxid == b->czxid && a->mzxid == b->mzxid && a->ctime == b->ctime &&
	       a->mtime == b->mtime && a->version == b->version && a->cversion == b->cversion &&
	       a->aversion == b->aversion && a->ephemeral_owner == b->ephemeral_owner &&
	       a->data_length == b->data_length && a->num_children == b->num_children &&
	       a->pzxid == b->pzxid;
}

static inline bool eq_connect_request(const struct zk_connect_request *a,
				      const struct zk_connect_request *b)
{
	return a->protocol_version == b->protocol_version &&
	       a->last_zxid_seen == b->last_zxid_seen && a->timeout == b->timeout &&
	       a->session_id == b->session_id && eq_buf(a->passwd, b->passwd) &&
	       a->has_read_only == b->has_read_only && a->read_only == b->read_only;
}

static inline bool eq_connect_response(const struct zk_connect_response *a,
				       const struct zk_connect_response *b)
{
	return a->protocol_version == b->protocol_version && a->timeout == b->timeout &&
	       a->session_id == b->session_id && eq_buf(a->passwd, b->passwd) &&
	       a->read_only == b->read_only;
}

static inline bool eq_request_header(const struct zk_request_header *a,
				     const struct zk_request_header *b)
{
	return a->xid == b->xid && a->type == b->type;
}

static inline bool eq_reply_header(const struct zk_reply_header *a,
				   const struct zk_reply_header *b)
{
	return a->xid == b->xid && a->zxid == b->zxid && a->err == b->err;
}

static inline bool eq_watcher_event(const struct zk_watcher_event *a,
				    const struct zk_watcher_event *b)
{
	return a->type == b->type && a->state == b->state && zk_str_eq(a->path, b->path);
}

static inline bool eq_create_request(const struct zk_create_request *a,
				     const struct zk_create_request *b)
{
	return zk_str_eq(a->path, b->path) && eq_buf(a->data, b->data) &&
	       eq_acl_list(&a->acl, &b->acl) && a->flags == b->flags && a->ttl == b->ttl;
}

static inline bool eq_path_version_request(const struct zk_path_version_request *a,
					   const struct zk_path_version_request *b)
{
	return zk_str_eq(a->path, b->path) && a->version == b->version;
}

static inline bool eq_path_watch_request(const struct zk_path_watch_request *a,
					 const struct zk_path_watch_request *b)
{
	return zk_str_eq(a->path, b->path) && a->watch == b->watch;
}

static inline bool eq_path_record(const struct zk_path_record *a, const struct zk_path_record *b)
{
	return zk_str_eq(a->path, b->path);
}

static inline bool eq_set_data_request(const struct zk_set_data_request *a,
				       const struct zk_set_data_request *b)
{
	return zk_str_eq(a->path, b->path) && eq_buf(a->data, b->data) && a->version == b->version;
}

static inline bool eq_set_acl_request(const struct zk_set_acl_request *a,
				      const struct zk_set_acl_request *b)
{
	return zk_str_eq(a->path, b->path) && eq_acl_list(&a->acl, &b->acl) &&
	       a->version == b->version;
}

static inline bool eq_add_watch_request(const struct zk_add_watch_request *a,
					const struct zk_add_watch_request *b)
{
	return zk_str_eq(a->path, b->path) && a->mode == b->mode;
}

static inline bool eq_watches_request(const struct zk_watches_request *a,
				      const struct zk_watches_request *b)
{
	return zk_str_eq(a->path, b->path) && a->type == b->type;
}

static inline bool eq_set_watches(const struct zk_set_watches *a, const struct zk_set_watches *b)
{
	return a->relative_zxid == b->relative_zxid && eq_str_list(&a->data, &b->data) &&
	       eq_str_list(&a->exist, &b->exist) && eq_str_list(&a->child, &b->child) &&
	       eq_str_list(&a->persistent, &b->persistent) &&
	       eq_str_list(&a->persistent_recursive, &b->persistent_recursive);
}

static inline bool eq_auth_packet(const struct zk_auth_packet *a, const struct zk_auth_packet *b)
{
	return a->type == b->type && zk_str_eq(a->scheme, b->scheme) && eq_buf(a->auth, b->auth);
}

static inline bool eq_client_info(const struct zk_client_info *a, const struct zk_client_info *b)
{
	return zk_str_eq(a->auth_scheme, b->auth_scheme) && zk_str_eq(a->user, b->user);
}

static inline bool eq_create2_response(const struct zk_create2_response *a,
				       const struct zk_create2_response *b)
{
	return zk_str_eq(a->path, b->path) && eq_stat(&a->stat, &b->stat);
}

static inline bool eq_get_data_response(const struct zk_get_data_response *a,
					const struct zk_get_data_response *b)
{
	return eq_buf(a->data, b->data) && eq_stat(&a->stat, &b->stat);
}

static inline bool eq_get_acl_response(const struct zk_get_acl_response *a,
				       const struct zk_get_acl_response *b)
{
	return eq_acl_list(&a->acl, &b->acl) && eq_stat(&a->stat, &b->stat);
}

static inline bool eq_get_children2_response(const struct zk_get_children2_response *a,
					     const struct zk_get_children2_response *b)
{
	return eq_str_list(&a->children, &b->children) && eq_stat(&a->stat, &b->stat);
}

static inline bool eq_multi_header(const struct zk_multi_header *a,
				   const struct zk_multi_header *b)
{
	return a->type == b->type && a->done == b->done && a->err == b->err;
}

static inline bool eq_multi_op(const struct zk_multi_op *a, const struct zk_multi_op *b)
{
	if (a->type != b->type || !zk_op_is(a->type, ZK_OPF_MULTI | ZK_OPF_MULTI_READ))
		return false;
	switch (zk_op(a->type)->request) {
	case ZK_REQ_CREATE:
		return eq_create_request(&a->u.create, &b->u.create);
	case ZK_REQ_PATH_VERSION:
		return eq_path_version_request(&a->u.path_version, &b->u.path_version);
	case ZK_REQ_SET_DATA:
		return eq_set_data_request(&a->u.set_data, &b->u.set_data);
	case ZK_REQ_PATH_WATCH:
		return eq_path_watch_request(&a->u.path_watch, &b->u.path_watch);
	default:
		return false;
	}
}

static inline bool eq_multi_request(const struct zk_multi_request *a,
				    const struct zk_multi_request *b)
{
	if (a->count != b->count)
		return false;
	for (int32_t i = 0; i < a->count; i++)
		if (!eq_multi_op(&a->ops[i], &b->ops[i]))
			return false;
	return true;
}

#endif

/*
 * ops: every operation of the wire protocol, both ways. The qc_a*()
 * functions run in the caller's thread: they validate the arguments, map
 * paths into the chroot, encode the whole request frame (its xid patched in
 * when it is written) and hand it to qc_submit(). qci_ops_decode_reply() runs on
 * the I/O thread and turns a reply body into a struct qc_result.
 *
 * Encoding in the caller's thread keeps the I/O thread's work per request
 * to a copy, and means a bad argument is reported by the call that made it.
 * The records and their field orders are proto/zk.h's.
 */
#include <stdlib.h>
#include <string.h>

#include "digest_md5.h"
#include "internal.h"
#include "path.h"

#define MAX_ACL 1024
#define MAX_AUTH_BYTES (64 * 1024)

/* ---- building frames ---------------------------------------------------- */

struct frame {
	struct jute_out out;
	size_t at;
	struct arena tmp; /* server paths and arrays, for the encoding only */
};

static void frame_begin(struct frame *f, int32_t xid, int32_t op)
{
	jute_out_init(&f->out);
	arena_init(&f->tmp, 0);
	f->at = jute_frame_begin(&f->out);
	struct zk_request_header h = { xid, op };
	zk_encode_request_header(&f->out, &h);
}

static void frame_abort(struct frame *f)
{
	jute_out_free(&f->out);
	arena_destroy(&f->tmp);
}

/* Ends the frame and wraps it in a request; NULL (and *rc set) on error. */
static struct qc_req *frame_end(struct frame *f, enum qc_req_kind kind, int32_t op, qc_cb cb,
				void *arg, int *rc)
{
	jute_frame_end(&f->out, f->at);
	arena_destroy(&f->tmp);
	if (f->out.err || f->out.len > (size_t)QC_MAX_FRAME + 4) {
		*rc = f->out.err == JUTE_ENOMEM ? ZSYSTEMERROR : ZBADARGUMENTS;
		jute_out_free(&f->out);
		return NULL;
	}
	struct qc_req *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		*rc = ZSYSTEMERROR;
		jute_out_free(&f->out);
		return NULL;
	}
	r->kind = kind;
	r->op = op;
	r->frame = f->out.buf;
	r->frame_len = f->out.len;
	r->cb = cb;
	r->arg = arg;
	return r;
}

struct qc_req *qci_ops_internal_req(enum qc_req_kind kind, int32_t op, int32_t xid,
				void (*fill)(struct jute_out *, const void *), const void *ctx)
{
	struct frame f;
	int rc;
	frame_begin(&f, xid, op);
	if (fill)
		fill(&f.out, ctx);
	struct qc_req *r = frame_end(&f, kind, op, NULL, NULL, &rc);
	if (r)
		r->xid = xid;
	return r;
}

/* The server path of a valid client path, in f->tmp; NULL with *rc set. */
static const char *map_path(struct qc_client *c, struct frame *f, const char *path, bool seq,
			    int *rc)
{
	if (!qc_path_valid(path, seq)) {
		*rc = ZBADARGUMENTS;
		return NULL;
	}
	const char *root = c->hosts.chroot;
	if (root == NULL)
		return path;
	size_t a = strlen(root), b = strcmp(path, "/") == 0 ? 0 : strlen(path);
	char *s = arena_alloc(&f->tmp, a + b + 1);
	if (s == NULL) {
		*rc = ZSYSTEMERROR;
		return NULL;
	}
	memcpy(s, root, a);
	memcpy(s + a, path, b);
	s[a + b] = '\0';
	return s;
}

static int acl_list(struct frame *f, const struct qc_acl *acl, int32_t n, struct zk_acl_list *l)
{
	if (acl == NULL || n == 0) {
		acl = qc_acl_open;
		n = 1;
	}
	if (n < 0 || n > MAX_ACL)
		return ZBADARGUMENTS;
	struct zk_acl *v = arena_alloc(&f->tmp, sizeof(*v) * (size_t)n);
	if (v == NULL)
		return ZSYSTEMERROR;
	for (int32_t i = 0; i < n; i++) {
		if (acl[i].scheme == NULL || acl[i].id == NULL)
			return ZBADARGUMENTS;
		v[i] = (struct zk_acl){ acl[i].perms,
					{ zk_str_c(acl[i].scheme), zk_str_c(acl[i].id) } };
	}
	l->count = n;
	l->acls = v;
	return ZOK;
}

static bool data_ok(const void *data, int32_t len)
{
	return len >= -1 && (len <= 0 || data != NULL);
}

static struct zk_buf buf_of(const void *data, int32_t len)
{
	return (struct zk_buf){ len < 0 ? NULL : data, len };
}

static bool is_seq(int32_t mode)
{
	return mode == ZK_PERSISTENT_SEQUENTIAL || mode == ZK_EPHEMERAL_SEQUENTIAL ||
	       mode == ZK_PERSISTENT_SEQUENTIAL_WITH_TTL;
}

static bool is_ttl(int32_t mode)
{
	return mode == ZK_PERSISTENT_WITH_TTL || mode == ZK_PERSISTENT_SEQUENTIAL_WITH_TTL;
}

/* The opcode a create with this mode goes out as; 0 for a bad mode/ttl. */
static int32_t create_op(int32_t mode, int64_t ttl)
{
	if (mode < ZK_PERSISTENT || mode > ZK_PERSISTENT_SEQUENTIAL_WITH_TTL)
		return 0;
	if (is_ttl(mode) != (ttl != 0) || ttl < 0)
		return 0;
	if (is_ttl(mode))
		return ZK_OP_CREATE_TTL;
	return mode == ZK_CONTAINER ? ZK_OP_CREATE_CONTAINER : ZK_OP_CREATE2;
}

/* The prologue of every operation on a path: checks the client, starts f
 * as a request of type op and maps path into the chroot. Returns the server
 * path (in f->tmp, or path itself), or NULL with *rc set and nothing left to
 * free. The operation encodes its record into f->out and ends in submit(). */
static const char *begin_path(struct qc_client *c, struct frame *f, int32_t op,
			      const char *path, bool seq, int *rc)
{
	if (c == NULL) {
		*rc = ZBADARGUMENTS;
		return NULL;
	}
	frame_begin(f, 0, op);
	const char *sp = map_path(c, f, path, seq, rc);
	if (sp == NULL)
		frame_abort(f);
	return sp;
}

/* What a request registers in (or removes from) the client's watch table
 * once it succeeds; see qc_req. */
struct watch_reg {
	const char *cpath; /* the client path; copied into the request */
	qc_watch_fn fn;
	void *arg;
	int32_t type;      /* add_watch mode, or remove_watches type */
	bool local;        /* remove_watches with local: never sent */
	bool unregister;   /* remove_watches: drop the local watchers on success */
};

/* Ends f and submits it as a user request; the one exit of every qc_a*()
 * that built a frame. w (may be NULL) is the watch riding on it, nops the
 * number of ops of a multi. */
static int submit(struct qc_client *c, struct frame *f, int32_t op, qc_cb cb, void *arg,
		  const struct watch_reg *w, int32_t nops)
{
	int rc = ZOK;
	struct qc_req *r = frame_end(f, QC_REQ_USER, op, cb, arg, &rc);
	if (r == NULL)
		return rc;
	r->nops = nops;
	if (w) {
		r->wfn = w->fn;
		r->warg = w->arg;
		r->wtype = w->type;
		r->local = w->local;
		r->unregister = w->unregister;
		if ((r->cpath = strdup(w->cpath)) == NULL) {
			qc_req_free(r);
			return ZSYSTEMERROR;
		}
	}
	return qc_submit(c, r);
}

/* ---- the operations ----------------------------------------------------- */

int qc_acreate(struct qc_client *c, const char *path, const void *data, int32_t data_len,
	       const struct qc_acl *acl, int32_t num_acl, int32_t mode, int64_t ttl,
	       qc_cb cb, void *arg)
{
	int32_t op = create_op(mode, ttl);
	if (op == 0 || !data_ok(data, data_len))
		return ZBADARGUMENTS;
	struct frame f;
	int rc = ZOK;
	const char *sp = begin_path(c, &f, op, path, is_seq(mode), &rc);
	if (sp == NULL)
		return rc;
	struct zk_create_request r = { .path = zk_str_c(sp), .data = buf_of(data, data_len),
				       .flags = mode, .ttl = ttl };
	if ((rc = acl_list(&f, acl, num_acl, &r.acl)) != ZOK) {
		frame_abort(&f);
		return rc;
	}
	zk_encode_create_request(&f.out, op, &r);
	return submit(c, &f, op, cb, arg, NULL, 0);
}

int qc_adelete(struct qc_client *c, const char *path, int32_t version, qc_cb cb, void *arg)
{
	struct frame f;
	int rc = ZOK;
	const char *sp = begin_path(c, &f, ZK_OP_DELETE, path, false, &rc);
	if (sp == NULL)
		return rc;
	struct zk_path_version_request r = { zk_str_c(sp), version };
	zk_encode_path_version_request(&f.out, &r);
	return submit(c, &f, ZK_OP_DELETE, cb, arg, NULL, 0);
}

/* exists, getData, getChildren2: path + watch flag. */
static int path_watch(struct qc_client *c, int32_t op, const char *path, qc_watch_fn watch,
		      void *watch_arg, qc_cb cb, void *arg)
{
	struct frame f;
	int rc = ZOK;
	const char *sp = begin_path(c, &f, op, path, false, &rc);
	if (sp == NULL)
		return rc;
	struct zk_path_watch_request r = { zk_str_c(sp), watch != NULL };
	zk_encode_path_watch_request(&f.out, &r);
	struct watch_reg w = { .cpath = path, .fn = watch, .arg = watch_arg };
	return submit(c, &f, op, cb, arg, watch ? &w : NULL, 0);
}

int qc_aexists(struct qc_client *c, const char *path, qc_watch_fn watch, void *watch_arg,
	       qc_cb cb, void *arg)
{
	return path_watch(c, ZK_OP_EXISTS, path, watch, watch_arg, cb, arg);
}

int qc_aget_data(struct qc_client *c, const char *path, qc_watch_fn watch, void *watch_arg,
		 qc_cb cb, void *arg)
{
	return path_watch(c, ZK_OP_GET_DATA, path, watch, watch_arg, cb, arg);
}

int qc_aget_children(struct qc_client *c, const char *path, qc_watch_fn watch,
		     void *watch_arg, qc_cb cb, void *arg)
{
	return path_watch(c, ZK_OP_GET_CHILDREN2, path, watch, watch_arg, cb, arg);
}

int qc_aset_data(struct qc_client *c, const char *path, const void *data, int32_t data_len,
		 int32_t version, qc_cb cb, void *arg)
{
	if (!data_ok(data, data_len))
		return ZBADARGUMENTS;
	struct frame f;
	int rc = ZOK;
	const char *sp = begin_path(c, &f, ZK_OP_SET_DATA, path, false, &rc);
	if (sp == NULL)
		return rc;
	struct zk_set_data_request r = { zk_str_c(sp), buf_of(data, data_len), version };
	zk_encode_set_data_request(&f.out, &r);
	return submit(c, &f, ZK_OP_SET_DATA, cb, arg, NULL, 0);
}

/* getACL, sync, getEphemerals, getAllChildrenNumber: a path alone. */
static int path_only(struct qc_client *c, int32_t op, const char *path, qc_cb cb, void *arg)
{
	struct frame f;
	int rc = ZOK;
	const char *sp = begin_path(c, &f, op, path, false, &rc);
	if (sp == NULL)
		return rc;
	struct zk_path_record r = { zk_str_c(sp) };
	zk_encode_path_record(&f.out, &r);
	return submit(c, &f, op, cb, arg, NULL, 0);
}

int qc_aget_acl(struct qc_client *c, const char *path, qc_cb cb, void *arg)
{
	return path_only(c, ZK_OP_GET_ACL, path, cb, arg);
}

int qc_async(struct qc_client *c, const char *path, qc_cb cb, void *arg)
{
	return path_only(c, ZK_OP_SYNC, path, cb, arg);
}

int qc_aget_ephemerals(struct qc_client *c, const char *prefix, qc_cb cb, void *arg)
{
	return path_only(c, ZK_OP_GET_EPHEMERALS, prefix, cb, arg);
}

int qc_aget_all_children_number(struct qc_client *c, const char *path, qc_cb cb, void *arg)
{
	return path_only(c, ZK_OP_GET_ALL_CHILDREN_NUMBER, path, cb, arg);
}

int qc_aset_acl(struct qc_client *c, const char *path, const struct qc_acl *acl,
		int32_t num_acl, int32_t version, qc_cb cb, void *arg)
{
	struct frame f;
	int rc = ZOK;
	const char *sp = begin_path(c, &f, ZK_OP_SET_ACL, path, false, &rc);
	if (sp == NULL)
		return rc;
	struct zk_set_acl_request r = { .path = zk_str_c(sp), .version = version };
	if ((rc = acl_list(&f, acl, num_acl, &r.acl)) != ZOK) {
		frame_abort(&f);
		return rc;
	}
	zk_encode_set_acl_request(&f.out, &r);
	return submit(c, &f, ZK_OP_SET_ACL, cb, arg, NULL, 0);
}

/* Fills one op of a multi or multiRead; ZBADARGUMENTS for an op that does
 * not belong to `multi`. */
static int multi_op(struct qc_client *c, struct frame *f, int32_t multi, const struct qc_op *o,
		    struct zk_multi_op *m)
{
	int rc = ZOK;
	bool read = multi == ZK_OP_MULTI_READ;
	bool seq = o->type == ZK_OP_CREATE && is_seq(o->mode);
	/* A create is asked as ZK_OP_CREATE: its mode picks the opcode. */
	const struct zk_op_info *i = zk_op(o->type);
	if (!zk_op_is(o->type, read ? ZK_OPF_MULTI_READ : ZK_OPF_MULTI) ||
	    (i->request == ZK_REQ_CREATE && o->type != ZK_OP_CREATE))
		return ZBADARGUMENTS;
	const char *sp = map_path(c, f, o->path, seq, &rc);
	if (sp == NULL)
		return rc;
	struct zk_str p = zk_str_c(sp);
	m->type = o->type;
	switch (i->request) {
	case ZK_REQ_CREATE:
		/* As the Java client: plain modes go as create (ZooKeeper answers
		 * a create in a multi with the path alone either way). */
		m->type = create_op(o->mode, o->ttl);
		if (m->type == 0 || !data_ok(o->data, o->data_len))
			return ZBADARGUMENTS;
		if (m->type == ZK_OP_CREATE2)
			m->type = ZK_OP_CREATE;
		m->u.create = (struct zk_create_request){ p, buf_of(o->data, o->data_len),
							  { 0, NULL }, o->mode, o->ttl };
		return acl_list(f, o->acl, o->num_acl, &m->u.create.acl);
	case ZK_REQ_PATH_VERSION:
		m->u.path_version = (struct zk_path_version_request){ p, o->version };
		return ZOK;
	case ZK_REQ_SET_DATA:
		if (!data_ok(o->data, o->data_len))
			return ZBADARGUMENTS;
		m->u.set_data = (struct zk_set_data_request){ p, buf_of(o->data, o->data_len),
							      o->version };
		return ZOK;
	default: /* ZK_REQ_PATH_WATCH: getData, getChildren */
		m->u.path_watch = (struct zk_path_watch_request){ p, false };
		return ZOK;
	}
}

static int multi(struct qc_client *c, int32_t op, const struct qc_op *ops, int32_t n, qc_cb cb,
		 void *arg)
{
	if (c == NULL || ops == NULL || n <= 0 || n > QC_MAX_MULTI_OPS)
		return ZBADARGUMENTS;
	struct frame f;
	int rc = ZSYSTEMERROR;
	frame_begin(&f, 0, op);
	struct zk_multi_request m = { n, arena_alloc(&f.tmp, sizeof(struct zk_multi_op) * (size_t)n) };
	if (m.ops == NULL)
		goto err;
	for (int32_t i = 0; i < n; i++)
		if ((rc = multi_op(c, &f, op, &ops[i], &m.ops[i])) != ZOK)
			goto err;
	zk_encode_multi_request(&f.out, &m);
	return submit(c, &f, op, cb, arg, NULL, n);
err:
	frame_abort(&f);
	return rc;
}

int qc_amulti(struct qc_client *c, const struct qc_op *ops, int32_t num_ops, qc_cb cb,
	      void *arg)
{
	return multi(c, ZK_OP_MULTI, ops, num_ops, cb, arg);
}

int qc_amulti_read(struct qc_client *c, const struct qc_op *ops, int32_t num_ops, qc_cb cb,
		   void *arg)
{
	return multi(c, ZK_OP_MULTI_READ, ops, num_ops, cb, arg);
}

int qc_aadd_watch(struct qc_client *c, const char *path, int32_t mode, qc_watch_fn watch,
		  void *watch_arg, qc_cb cb, void *arg)
{
	if (watch == NULL || (mode != ZK_WATCH_PERSISTENT && mode != ZK_WATCH_PERSISTENT_RECURSIVE))
		return ZBADARGUMENTS;
	struct frame f;
	int rc = ZOK;
	const char *sp = begin_path(c, &f, ZK_OP_ADD_WATCH, path, false, &rc);
	if (sp == NULL)
		return rc;
	struct zk_add_watch_request r = { zk_str_c(sp), mode };
	zk_encode_add_watch_request(&f.out, &r);
	struct watch_reg w = { .cpath = path, .fn = watch, .arg = watch_arg, .type = mode };
	return submit(c, &f, ZK_OP_ADD_WATCH, cb, arg, &w, 0);
}

/* removeWatches / checkWatches; `unregister` drops the local watchers. */
static int watches_op(struct qc_client *c, int32_t op, const char *path, int32_t type,
		      qc_watch_fn watch, void *watch_arg, bool local, bool unregister,
		      qc_cb cb, void *arg)
{
	if (type < ZK_WATCHER_CHILDREN || type > ZK_WATCHER_PERSISTENT_RECURSIVE)
		return ZBADARGUMENTS;
	struct frame f;
	int rc = ZOK;
	const char *sp = begin_path(c, &f, op, path, false, &rc);
	if (sp == NULL)
		return rc;
	struct zk_watches_request r = { zk_str_c(sp), type };
	zk_encode_watches_request(&f.out, &r);
	struct watch_reg w = { path, watch, watch_arg, type, local, unregister };
	return submit(c, &f, op, cb, arg, &w, 0);
}

int qc_aremove_watches(struct qc_client *c, const char *path, int32_t type, qc_watch_fn watch,
		       void *watch_arg, bool local, qc_cb cb, void *arg)
{
	int32_t op = watch ? ZK_OP_CHECK_WATCHES : ZK_OP_REMOVE_WATCHES;
	return watches_op(c, op, path, type, watch, watch_arg, local, true, cb, arg);
}

int qc_acheck_watches(struct qc_client *c, const char *path, int32_t type, qc_cb cb,
		      void *arg)
{
	return watches_op(c, ZK_OP_CHECK_WATCHES, path, type, NULL, NULL, false, false, cb, arg);
}

int qc_aadd_auth(struct qc_client *c, const char *scheme, const void *cred, int32_t cred_len,
		 qc_cb cb, void *arg)
{
	if (c == NULL || scheme == NULL || scheme[0] == '\0' || cred_len < 0 ||
	    cred_len > MAX_AUTH_BYTES || (cred_len && cred == NULL))
		return ZBADARGUMENTS;
	struct frame f;
	int rc = ZOK;
	frame_begin(&f, ZK_XID_AUTH, ZK_OP_AUTH);
	struct zk_auth_packet p = { 0, zk_str_c(scheme), { cred, cred_len } };
	zk_encode_auth_packet(&f.out, &p);
	struct qc_req *r = frame_end(&f, QC_REQ_AUTH, ZK_OP_AUTH, cb, arg, &rc);
	if (r == NULL)
		return rc;
	r->xid = ZK_XID_AUTH;
	r->scheme = strdup(scheme);
	r->cred = malloc(cred_len ? (size_t)cred_len : 1);
	r->cred_len = cred_len;
	if (r->scheme == NULL || r->cred == NULL) {
		qc_req_free(r);
		return ZSYSTEMERROR;
	}
	if (cred_len)
		memcpy(r->cred, cred, (size_t)cred_len);
	return qc_submit(c, r);
}

int qc_aadd_sasl_digest(struct qc_client *c, const char *user, const char *password, qc_cb cb,
			void *arg)
{
	if (c == NULL || user == NULL || password == NULL || user[0] == '\0' ||
	    strlen(user) > QC_DIGEST_MAX_USER || strlen(password) > QC_DIGEST_MAX_PASSWORD)
		return ZBADARGUMENTS;
	for (const char *s = user; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return ZBADARGUMENTS;
	/* Nothing to encode yet: the exchange's frames are built on the I/O
	 * thread, from the server's challenge. */
	struct qc_req *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return ZSYSTEMERROR;
	r->kind = QC_REQ_USER;
	r->op = ZK_OP_SASL;
	r->cb = cb;
	r->arg = arg;
	r->scheme = strdup(user);
	r->cred = (uint8_t *)strdup(password);
	r->cred_len = (int32_t)strlen(password);
	if (r->scheme == NULL || r->cred == NULL) {
		qc_req_free(r);
		return ZSYSTEMERROR;
	}
	return qc_submit(c, r);
}

int qc_aget_config(struct qc_client *c, qc_cb cb, void *arg)
{
	if (c == NULL)
		return ZBADARGUMENTS;
	struct frame f;
	frame_begin(&f, 0, ZK_OP_GET_DATA);
	/* The config node is outside any chroot, as getConfig reads it. */
	struct zk_path_watch_request r = { zk_str_c("/zookeeper/config"), false };
	zk_encode_path_watch_request(&f.out, &r);
	return submit(c, &f, ZK_OP_GET_DATA, cb, arg, NULL, 0);
}

int qc_aupdate_hosts(struct qc_client *c, const char *hosts, qc_cb cb, void *arg)
{
	if (c == NULL || hosts == NULL)
		return ZBADARGUMENTS;
	struct qc_hosts *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return ZSYSTEMERROR;
	int rc = qc_hosts_parse(hosts, h);
	if (rc != ZOK) {
		free(h);
		return rc;
	}
	const char *mine = c->hosts.chroot; /* never changes after qc_open() */
	if (h->chroot && (mine == NULL || strcmp(h->chroot, mine) != 0)) {
		qc_hosts_free(h);
		free(h);
		return ZBADARGUMENTS;
	}
	struct qc_req *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		qc_hosts_free(h);
		free(h);
		return ZSYSTEMERROR;
	}
	r->kind = QC_REQ_USER;
	r->op = QC_OP_UPDATE_HOSTS;
	r->cb = cb;
	r->arg = arg;
	r->hosts = h;
	return qc_submit(c, r);
}

int qc_awhoami(struct qc_client *c, qc_cb cb, void *arg)
{
	if (c == NULL)
		return ZBADARGUMENTS;
	struct frame f;
	frame_begin(&f, 0, ZK_OP_WHO_AM_I);
	return submit(c, &f, ZK_OP_WHO_AM_I, cb, arg, NULL, 0);
}

/* ---- decoding replies --------------------------------------------------- */

static char *dup_str(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	if (p) {
		if (n)
			memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* A path from the server as the application sees it, or NULL when outside
 * the chroot (or out of memory: *oom). */
static char *client_path(struct qc_client *c, struct zk_str s, bool *oom)
{
	size_t n;
	const char *p = s.len > 0 ? qc_path_from_server(c->hosts.chroot, s.s, (size_t)s.len, &n)
				  : NULL;
	if (p == NULL)
		return NULL;
	char *r = dup_str(&c->reply_arena, p, n);
	if (r == NULL)
		*oom = true;
	return r;
}

static const struct zk_stat *stat_of(struct qc_client *c, struct jute_in *in)
{
	struct zk_stat *st = arena_alloc(&c->reply_arena, sizeof(*st));
	if (st == NULL) {
		in->err = JUTE_ENOMEM;
		return NULL;
	}
	zk_decode_stat(in, st);
	return st;
}

/* A string vector; paths are mapped out of the chroot (and dropped when
 * outside it), names copied as they are. */
static void strings_of(struct qc_client *c, struct jute_in *in, bool paths,
		       struct qc_result *res)
{
	struct zk_str_list l;
	if (zk_decode_str_list(in, &l) != 0)
		return;
	int32_t n = l.count > 0 ? l.count : 0;
	char **v = arena_alloc(&c->reply_arena, sizeof(char *) * (size_t)(n + 1));
	if (v == NULL) {
		in->err = JUTE_ENOMEM;
		return;
	}
	int32_t k = 0;
	bool oom = false;
	for (int32_t i = 0; i < n; i++) {
		struct zk_str s = l.items[i];
		char *p = paths ? client_path(c, s, &oom)
				: dup_str(&c->reply_arena, s.s, s.len > 0 ? (size_t)s.len : 0);
		if (p)
			v[k++] = p;
		else if (!paths)
			oom = true;
	}
	if (oom)
		in->err = JUTE_ENOMEM;
	v[k] = NULL;
	res->strings = v;
	res->num_strings = k;
}

static void acls_of(struct qc_client *c, struct jute_in *in, struct qc_result *res)
{
	struct zk_acl_list l;
	if (zk_decode_acl_list(in, &l) != 0)
		return;
	int32_t n = l.count > 0 ? l.count : 0;
	struct qc_acl *v = arena_alloc(&c->reply_arena, sizeof(*v) * (size_t)(n ? n : 1));
	if (v == NULL) {
		in->err = JUTE_ENOMEM;
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		const struct zk_acl *a = &l.acls[i];
		v[i].perms = a->perms;
		v[i].scheme = dup_str(&c->reply_arena, a->id.scheme.s,
				      a->id.scheme.len > 0 ? (size_t)a->id.scheme.len : 0);
		v[i].id = dup_str(&c->reply_arena, a->id.id.s,
				  a->id.id.len > 0 ? (size_t)a->id.id.len : 0);
		if (v[i].scheme == NULL || v[i].id == NULL)
			in->err = JUTE_ENOMEM;
	}
	res->acls = v;
	res->num_acls = n;
}

static void created_path(struct qc_client *c, struct jute_in *in, struct qc_result *res)
{
	struct zk_str s = jute_get_string(in);
	bool oom = false;
	res->path = client_path(c, s, &oom);
	if (res->path == NULL && !oom)
		res->path = dup_str(&c->reply_arena, s.s, s.len > 0 ? (size_t)s.len : 0);
	if (res->path == NULL && in->err == JUTE_OK)
		in->err = JUTE_ENOMEM;
}

/* The reply record of opcode op (zk_op()); ZK_REPLY_NONE for one that
 * ZooKeeper does not know. */
static enum zk_reply_kind reply_kind(int32_t op)
{
	const struct zk_op_info *i = zk_op(op);
	return i ? (enum zk_reply_kind)i->reply : ZK_REPLY_NONE;
}

/* The body of one reply (or of one op of a multi) of type op. */
static void decode_body(struct qc_client *c, int32_t op, struct jute_in *in,
			struct qc_result *res)
{
	switch (reply_kind(op)) {
	case ZK_REPLY_PATH:
		created_path(c, in, res);
		break;
	case ZK_REPLY_CREATE2:
		created_path(c, in, res);
		res->stat = stat_of(c, in);
		break;
	case ZK_REPLY_STAT:
		res->stat = stat_of(c, in);
		break;
	case ZK_REPLY_GET_DATA: {
		struct zk_buf b = jute_get_buffer(in);
		res->data = b.p; /* in the frame, which outlives the callback */
		res->data_len = b.len;
		res->stat = stat_of(c, in);
		break;
	}
	case ZK_REPLY_GET_ACL:
		acls_of(c, in, res);
		res->stat = stat_of(c, in);
		break;
	case ZK_REPLY_CHILDREN:
		strings_of(c, in, false, res);
		break;
	case ZK_REPLY_CHILDREN2:
		strings_of(c, in, false, res);
		res->stat = stat_of(c, in);
		break;
	case ZK_REPLY_EPHEMERALS:
		strings_of(c, in, true, res);
		break;
	case ZK_REPLY_NUMBER:
		res->number = jute_get_int(in);
		break;
	case ZK_REPLY_WHO_AM_I: {
		int32_t n = jute_get_count(in, 8);
		n = n > 0 ? n : 0;
		struct qc_client_info *v =
			arena_alloc(&c->reply_arena, sizeof(*v) * (size_t)(n ? n : 1));
		if (v == NULL) {
			in->err = JUTE_ENOMEM;
			break;
		}
		for (int32_t i = 0; i < n && in->err == JUTE_OK; i++) {
			struct zk_client_info ci;
			zk_decode_client_info(in, &ci);
			v[i].scheme = dup_str(&c->reply_arena, ci.auth_scheme.s,
					      ci.auth_scheme.len > 0 ? (size_t)ci.auth_scheme.len : 0);
			v[i].user = dup_str(&c->reply_arena, ci.user.s,
					    ci.user.len > 0 ? (size_t)ci.user.len : 0);
		}
		res->ids = v;
		res->num_ids = n;
		break;
	}
	default: /* delete, check, addWatch, removeWatches, checkWatches, auth */
		break;
	}
}

/* MultiResponse: (MultiHeader, result)* up to a header with done set. */
static int decode_multi(struct qc_client *c, const struct qc_req *r, struct jute_in *in,
			struct qc_result *res)
{
	struct qc_result *v = arena_alloc(&c->reply_arena, sizeof(*v) * (size_t)r->nops);
	if (v == NULL)
		return ZSYSTEMERROR;
	int32_t n = 0;
	int first_err = ZOK;
	for (;;) {
		struct zk_multi_header h;
		if (zk_decode_multi_header(in, &h) != 0 || h.done)
			break;
		if (n == r->nops)
			return ZMARSHALLINGERROR;
		struct qc_result *o = &v[n++];
		memset(o, 0, sizeof(*o));
		o->data_len = -1;
		o->op = h.type;
		if (h.type == ZK_OP_ERROR) {
			o->err = jute_get_int(in);
			if (first_err == ZOK)
				first_err = o->err;
		} else {
			decode_body(c, h.type, in, o);
		}
	}
	if (in->err != JUTE_OK)
		return in->err == JUTE_ENOMEM ? ZSYSTEMERROR : ZMARSHALLINGERROR;
	res->results = v;
	res->num_results = n;
	return r->op == ZK_OP_MULTI ? first_err : ZOK;
}

int qci_ops_decode_reply(struct qc_client *c, const struct qc_req *r, struct jute_in *in,
		     struct qc_result *res)
{
	if (reply_kind(r->op) == ZK_REPLY_MULTI)
		return decode_multi(c, r, in, res);
	decode_body(c, r->op, in, res);
	if (in->err != JUTE_OK)
		return in->err == JUTE_ENOMEM ? ZSYSTEMERROR : ZMARSHALLINGERROR;
	return ZOK;
}

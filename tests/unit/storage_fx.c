/*
 * storage_fx: the storage unit tests' shared fixture (see storage_fx.h).
 */
#include "storage_fx.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "snapshot.h"
#include "storage.h"

void on_durable(void *ctx, void *cookie, int status)
{
	struct fx *f = ctx;
	assert_true(f->n_done < MAX_EVENTS);
	f->done_zxid[f->n_done] = (int64_t)(intptr_t)cookie;
	f->done_status[f->n_done] = status;
	f->n_done++;
}

static void on_snapshot_done(void *ctx, int64_t zxid, int status)
{
	struct fx *f = ctx;
	f->snaps_done++;
	f->snap_zxid = zxid;
	f->snap_status = status;
}

void on_closed(void *ctx)
{
	struct fx *f = ctx;
	f->closed = true;
}

struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->root, "/tmp/qstorage-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->qdir, sizeof(f->qdir), "%s/quorum-v1", f->root);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->cfg = (struct storage_config){
		.data_dir = f->root,
		.snap_count = 1000,
		.prealloc_bytes = 64 << 10,
		.snap_retain = 3,
		.snapshot_done = on_snapshot_done,
	};
	return f;
}

int fx_open(struct fx *f)
{
	f->n_done = 0;
	f->closed = false;
	int r = storage_open(&f->s, &f->loop, &f->cfg, on_durable, f, &f->err);
	if (r < 0)
		f->s = NULL;
	return r;
}

void fx_run(struct fx *f)
{
	uv_run(&f->loop, UV_RUN_DEFAULT);
}

void fx_close(struct fx *f)
{
	if (!f->s)
		return;
	storage_close(f->s, on_closed, f);
	fx_run(f);
	assert_true(f->closed);
	f->s = NULL;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void fx_free(struct fx *f)
{
	fx_close(f);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	assert_int_equal(nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(f);
}

size_t fill_data(uint8_t *d, int64_t zxid, int gen)
{
	size_t len = 10 + (size_t)(zxid % 50);
	for (size_t i = 0; i < len; i++)
		d[i] = (uint8_t)('a' + (zxid * 7 + (int64_t)i + gen * 13) % 26);
	return len;
}

Quorum__Txn *txn_set_data(struct txnbuf *b, int64_t zxid, int gen)
{
	quorum__txn__init(&b->txn);
	quorum__set_data_txn__init(&b->set);
	strcpy(b->path, "/x");
	b->set.path = b->path;
	b->set.data.len = fill_data(b->data, zxid, gen);
	b->set.data.data = b->data;
	b->set.version = (int32_t)zxid;
	b->txn.session_id = 0x1234;
	b->txn.cxid = (int32_t)zxid;
	b->txn.zxid = zxid;
	b->txn.time = 1700000000000 + zxid;
	b->txn.body_case = QUORUM__TXN__BODY_SET_DATA;
	b->txn.set_data = &b->set;
	return &b->txn;
}

Quorum__Txn *txn_create(struct txnbuf *b, int64_t zxid, const char *path, int64_t owner)
{
	quorum__txn__init(&b->txn);
	quorum__create_txn__init(&b->create);
	quorum__acl__init(&b->acl);
	snprintf(b->path, sizeof(b->path), "%s", path);
	b->acl.perms = 31;
	b->acl.scheme = "world";
	b->acl.id = "anyone";
	b->aclp[0] = &b->acl;
	b->create.path = b->path;
	b->create.data.len = fill_data(b->data, zxid, 0);
	b->create.data.data = b->data;
	b->create.n_acl = 1;
	b->create.acl = b->aclp;
	b->create.ephemeral_owner = owner;
	b->create.parent_cversion = -1;
	b->txn.session_id = owner ? owner : 0x99;
	b->txn.zxid = zxid;
	b->txn.time = 1700000000000 + zxid;
	b->txn.body_case = QUORUM__TXN__BODY_CREATE;
	b->txn.create = &b->create;
	return &b->txn;
}

Quorum__Txn *txn_delete(struct txnbuf *b, int64_t zxid, const char *path)
{
	quorum__txn__init(&b->txn);
	quorum__delete_txn__init(&b->del);
	snprintf(b->path, sizeof(b->path), "%s", path);
	b->del.path = b->path;
	b->txn.zxid = zxid;
	b->txn.time = 1700000000000 + zxid;
	b->txn.body_case = QUORUM__TXN__BODY_DELETE;
	b->txn.delete_ = &b->del;
	return &b->txn;
}

Quorum__Txn *txn_session(struct txnbuf *b, int64_t zxid, int64_t id)
{
	quorum__txn__init(&b->txn);
	quorum__create_session_txn__init(&b->cs);
	memset(b->passwd, (int)(id & 0xff), sizeof(b->passwd));
	b->cs.timeout = 30000;
	b->cs.passwd.len = sizeof(b->passwd);
	b->cs.passwd.data = b->passwd;
	b->txn.session_id = id;
	b->txn.zxid = zxid;
	b->txn.time = 1700000000000 + zxid;
	b->txn.body_case = QUORUM__TXN__BODY_CREATE_SESSION;
	b->txn.create_session = &b->cs;
	return &b->txn;
}

int append_sd(struct fx *f, int64_t zxid, int gen)
{
	struct txnbuf b;
	return storage_append(f->s, txn_set_data(&b, zxid, gen), (void *)(intptr_t)zxid);
}

void append_run(struct fx *f, int64_t from, int64_t to, int gen)
{
	size_t before = f->n_done;
	for (int64_t z = from; z <= to; z++)
		assert_int_equal(append_sd(f, z, gen), 0);
	fx_run(f);
	assert_int_equal(f->n_done - before, (size_t)(to - from + 1));
	for (size_t i = before; i < f->n_done; i++)
		assert_int_equal(f->done_status[i], 0);
}

/* ---- recovery helpers ------------------------------------------------------------------------ */

int rec_session(void *ctx, const struct storage_session *ss)
{
	struct fx *f = ctx;
	assert_true(f->n_sessions < 16);
	f->sessions[f->n_sessions++] = *ss;
	return 0;
}

static int rec_txn(void *ctx, const Quorum__Txn *txn)
{
	struct fx *f = ctx;
	assert_true(f->n_recs < MAX_EVENTS);
	struct rec *r = &f->recs[f->n_recs++];
	r->zxid = txn->zxid;
	r->data_crc = 0;
	r->data_len = 0;
	if (txn->body_case == QUORUM__TXN__BODY_SET_DATA) {
		r->data_len = txn->set_data->data.len;
		r->data_crc = crc32c(0, txn->set_data->data.data, r->data_len);
	}
	if (f->apply_to) {
		struct tree_apply_result res;
		assert_int_equal(tree_apply(f->apply_to, txn, NULL, &res), 0);
		assert_true(zk_ok(res.err));
	}
	return 0;
}

int fx_recover(struct fx *f, struct tree **tp, bool apply)
{
	struct tree *t = tree_new();
	assert_non_null(t);
	f->n_recs = 0;
	f->n_sessions = 0;
	f->apply_to = apply ? t : NULL;
	int r = storage_recover(f->s, t, rec_session, rec_txn, f);
	f->apply_to = NULL;
	if (tp)
		*tp = t;
	else
		tree_free(t);
	return r;
}

void expect_recs(struct fx *f, int64_t from, int64_t to, int gen, int64_t gen2_from,
			int gen2)
{
	assert_int_equal(f->n_recs, (size_t)(to - from + 1));
	for (size_t i = 0; i < f->n_recs; i++) {
		int64_t z = from + (int64_t)i;
		assert_int_equal(f->recs[i].zxid, z);
		uint8_t d[128];
		size_t len = fill_data(d, z, z >= gen2_from ? gen2 : gen);
		assert_int_equal(f->recs[i].data_len, len);
		assert_int_equal(f->recs[i].data_crc, crc32c(0, d, len));
	}
}

/* ---- file helpers ------------------------------------------------------------------------------ */

char *seg_file(struct fx *f, int64_t name)
{
	static char path[160];
	snprintf(path, sizeof(path), "%s/log.%016" PRIx64, f->qdir, (uint64_t)name);
	return path;
}

char *snap_file(struct fx *f, int64_t zxid)
{
	static char path[160];
	snprintf(path, sizeof(path), "%s/snapshot.%016" PRIx64, f->qdir, (uint64_t)zxid);
	return path;
}

size_t count_files(struct fx *f, const char *prefix)
{
	DIR *d = opendir(f->qdir);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

uint8_t *read_all(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

void write_all(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

void flip_byte(const char *path, size_t off)
{
	size_t len;
	uint8_t *b = read_all(path, &len);
	assert_true(off < len);
	b[off] ^= 0x5a;
	write_all(path, b, len);
	free(b);
}

off_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

size_t record_offsets(const uint8_t *b, size_t len, size_t *offs, size_t max)
{
	size_t n = 0, off = 24;
	while (off + 8 <= len && n < max) {
		uint32_t w = (uint32_t)b[off] | (uint32_t)b[off + 1] << 8 |
			     (uint32_t)b[off + 2] << 16 | (uint32_t)b[off + 3] << 24;
		if (w == 0)
			break;
		offs[n++] = off;
		off += 8 + (w & 0x7fffffffu);
	}
	return n;
}

/* ---- snapshots --------------------------------------------------------------------------------- */

struct node_rec {
	char path[64];
	int32_t plen;
	uint8_t data[128];
	int32_t dlen;
	struct zk_stat stat;
	int32_t pcversion;
	char acl[64];
};

struct tree_dump {
	struct node_rec *v;
	size_t n, cap;
};

static int dump_node(void *ctx, const struct znode *n)
{
	struct tree_dump *d = ctx;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->v = realloc(d->v, d->cap * sizeof(*d->v));
		assert_non_null(d->v);
	}
	struct node_rec *r = &d->v[d->n++];
	memset(r, 0, sizeof(*r));
	struct zk_str p = znode_path(n);
	assert_true(p.len < (int32_t)sizeof(r->path));
	memcpy(r->path, p.s, (size_t)p.len);
	r->plen = p.len;
	struct zk_buf b = znode_data(n);
	assert_true(b.len <= (int32_t)sizeof(r->data));
	if (b.len > 0)
		memcpy(r->data, b.p, (size_t)b.len);
	r->dlen = b.len;
	r->stat = *znode_stat(n);
	r->pcversion = znode_persisted_cversion(n);
	const struct acl_set *a = znode_acl(n);
	size_t off = 0;
	for (int32_t i = 0; a && i < a->count; i++)
		off += (size_t)snprintf(r->acl + off, sizeof(r->acl) - off, "%d:%.*s:%.*s;",
					a->acls[i].perms, a->acls[i].id.scheme.len,
					a->acls[i].id.scheme.s, a->acls[i].id.id.len,
					a->acls[i].id.id.s);
	return 0;
}

static int cmp_node(const void *a, const void *b)
{
	return strcmp(((const struct node_rec *)a)->path, ((const struct node_rec *)b)->path);
}

void expect_same_tree(const struct tree *a, const struct tree *b)
{
	struct tree_dump da = { 0 }, db = { 0 };
	assert_int_equal(tree_walk(a, dump_node, &da), 0);
	assert_int_equal(tree_walk(b, dump_node, &db), 0);
	assert_int_equal(da.n, db.n);
	qsort(da.v, da.n, sizeof(*da.v), cmp_node);
	qsort(db.v, db.n, sizeof(*db.v), cmp_node);
	for (size_t i = 0; i < da.n; i++) {
		assert_string_equal(da.v[i].path, db.v[i].path);
		assert_int_equal(da.v[i].dlen, db.v[i].dlen);
		assert_memory_equal(da.v[i].data, db.v[i].data, sizeof(da.v[i].data));
		const struct zk_stat *x = &da.v[i].stat, *y = &db.v[i].stat; /* not memcmp: padding */
		assert_int_equal(x->czxid, y->czxid);
		assert_int_equal(x->mzxid, y->mzxid);
		assert_int_equal(x->ctime, y->ctime);
		assert_int_equal(x->mtime, y->mtime);
		assert_int_equal(x->version, y->version);
		assert_int_equal(x->cversion, y->cversion);
		assert_int_equal(x->aversion, y->aversion);
		assert_int_equal(x->ephemeral_owner, y->ephemeral_owner);
		assert_int_equal(x->data_length, y->data_length);
		assert_int_equal(x->num_children, y->num_children);
		assert_int_equal(x->pzxid, y->pzxid);
		assert_int_equal(da.v[i].pcversion, db.v[i].pcversion);
		assert_string_equal(da.v[i].acl, db.v[i].acl);
	}
	assert_int_equal(tree_last_zxid(a), tree_last_zxid(b));
	assert_int_equal(tree_node_count(a), tree_node_count(b));
	assert_int_equal(tree_ephemeral_count(a), tree_ephemeral_count(b));
	free(da.v);
	free(db.v);
}

void log_apply(struct fx *f, struct tree *t, Quorum__Txn *txn)
{
	if (f)
		assert_int_equal(storage_append(f->s, txn, (void *)(intptr_t)txn->zxid), 0);
	if (t) {
		struct tree_apply_result res;
		assert_int_equal(tree_apply(t, txn, NULL, &res), 0);
		assert_true(zk_ok(res.err));
	}
}

void workload(struct fx *f, struct tree *t, int64_t from, int64_t to)
{
	for (int64_t z = from; z <= to; z++) {
		struct txnbuf b;
		char path[64];
		switch (z % 5) {
		case 0:
			txn_session(&b, z, 0x1000 + z);
			log_apply(f, t, &b.txn);
			break;
		case 1:
		case 2:
			snprintf(path, sizeof(path), "/n%" PRId64, z);
			log_apply(f, t, txn_create(&b, z, path, 0));
			break;
		case 3:
			snprintf(path, sizeof(path), "/n%" PRId64 "/e%" PRId64, z - 1, z);
			log_apply(f, t, txn_create(&b, z, path, z % 2 ? 0x1000 + z - 3 : 0));
			break;
		case 4:
			txn_set_data(&b, z, 0);
			snprintf(path, sizeof(path), "/n%" PRId64, z - 3);
			strcpy(b.path, path);
			b.set.version = 1;
			log_apply(f, t, &b.txn);
			break;
		}
	}
	if (f)
		fx_run(f);
}

void snapshot_now(struct fx *f, const struct tree *t, int64_t zxid)
{
	struct storage_session ss[2] = {
		{ .id = 0x1005, .timeout = 30000 }, { .id = 0x100a, .timeout = 4000 },
	};
	memset(ss[0].passwd, 0xab, 16);
	memset(ss[1].passwd, 0xcd, 16);
	int before = f->snaps_done;
	assert_int_equal(storage_snapshot(f->s, t, ss, 2), 0);
	assert_int_equal(storage_snapshot(f->s, t, ss, 2), -EBUSY);
	fx_run(f);
	assert_int_equal(f->snaps_done, before + 1);
	assert_int_equal(f->snap_status, 0);
	assert_int_equal(f->snap_zxid, zxid);
}

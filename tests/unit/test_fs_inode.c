/*
 * Unit tests for fs/inode.c: the table between the kernel's node ids and
 * znode paths, without a kernel. The lookup count is the kernel's (one per
 * entry reply, n per forget), st_ino is stable for a znode's lifetime, a
 * Stat older than the one held is refused, and — inode.c and util's
 * hmap.c compiled in with failing allocations (fs_alloc.h) — an
 * out-of-memory error leaves the table as it was.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "fs.h"
#include "fs_alloc.h"

#include "fs_alloc_begin.h"
#include "inode.c"
#include "hmap.c"
#include "fs_alloc_end.h"

/* ---- fixture ----------------------------------------------------------------- */

#define MAX_GAINED 64

struct fixture {
	struct inode_table t;
	char *gained[MAX_GAINED]; /* paths the table said the kernel gained */
	int n_gained;
};

static void on_gained(void *arg, const char *path, enum inode_kind kind)
{
	(void)kind;
	struct fixture *f = arg;
	if (f->n_gained < MAX_GAINED)
		f->gained[f->n_gained++] = strdup(path);
}

static const struct inode_attrs attrs = { .uid = 1000, .gid = 100, .umask = 022 };

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(inode_init(&f->t, &attrs, on_gained, f), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	inode_shutdown(&f->t);
	for (int i = 0; i < f->n_gained; i++)
		free(f->gained[i]);
	free(f);
	return 0;
}

static struct zk_stat zstat(int64_t czxid, int64_t mzxid, int64_t pzxid)
{
	struct zk_stat st = { 0 };
	st.czxid = czxid;
	st.mzxid = mzxid;
	st.pzxid = pzxid;
	return st;
}

/* The table as text: every inode (the root first, then `all` in order)
 * with what a failed call must not change. */
static char *digest(struct inode_table *t)
{
	size_t cap = 4096, at = 0;
	char *s = malloc(cap);
	assert_non_null(s);
	s[0] = '\0';
	struct inode *in = &t->root;
	struct list *n = &t->all;
	for (;;) {
		at += (size_t)snprintf(s + at, cap - at,
				       "%s k%d h%d l%llu r%llu c%lld m%lld p%d d%lld|", in->path,
				       in->kind, in->hashed, (unsigned long long)in->nlookup,
				       (unsigned long long)in->refs, (long long)in->czxid,
				       (long long)in->stat.mzxid, in->pending != NULL,
				       (long long)in->dirty_size);
		assert_true(at < cap);
		n = n->next;
		if (n == &t->all)
			break;
		in = CONTAINER_OF(n, struct inode, link);
	}
	at += (size_t)snprintf(s + at, cap - at, "hashed %zu", hmap_count(&t->map));
	return s;
}

/* ---- lookup counts --------------------------------------------------------------- */

static void test_root(void **state)
{
	struct fixture *f = *state;
	struct inode *r = inode_of(&f->t, FUSE_ROOT_ID);
	assert_ptr_equal(r, &f->t.root);
	assert_string_equal(r->path, "/");
	assert_int_equal(r->kind, INODE_DIR);
	assert_int_equal(r->ino, FUSE_ROOT_ID);
	struct zk_stat st = zstat(0, 0, 7);
	assert_ptr_equal(inode_lookup(&f->t, "/", INODE_DIR, &st), r);
	assert_int_equal(r->nlookup, 2);
	/* The root is never freed, whatever the kernel forgets. */
	inode_forget(&f->t, r, 100);
	assert_ptr_equal(inode_find(&f->t, "/", INODE_DIR), r);
	inode_put(&f->t, r);
}

static void test_lookup_count_is_the_kernels(void **state)
{
	struct fixture *f = *state;
	struct zk_stat st = zstat(10, 10, 10);
	struct inode *a = inode_lookup(&f->t, "/a", INODE_FILE, &st);
	assert_non_null(a);
	assert_int_equal(a->nlookup, 1);
	assert_ptr_equal(inode_of(&f->t, a->id), a);
	assert_ptr_equal(inode_lookup(&f->t, "/a", INODE_FILE, &st), a);
	assert_ptr_equal(inode_lookup(&f->t, "/a", INODE_FILE, NULL), a);
	assert_int_equal(a->nlookup, 3);
	assert_int_equal(f->n_gained, 3);
	assert_string_equal(f->gained[0], "/a");

	inode_forget(&f->t, a, 2);
	struct inode *held = inode_find(&f->t, "/a", INODE_FILE);
	assert_ptr_equal(held, a);
	assert_int_equal(a->nlookup, 1);
	/* The last forget: a daemon thread's hold keeps it until put. */
	inode_forget(&f->t, a, 1);
	assert_int_equal(a->nlookup, 0);
	assert_true(a->hashed);
	inode_put(&f->t, held);
	assert_null(inode_find(&f->t, "/a", INODE_FILE));
	assert_true(list_empty(&f->t.all));

	/* A forget of more than the kernel holds frees, once. */
	struct inode *b = inode_lookup(&f->t, "/b", INODE_DIR, &st);
	inode_forget(&f->t, b, 5);
	assert_null(inode_find_any(&f->t, "/b"));
	assert_true(list_empty(&f->t.all));
}

static void test_find_kinds(void **state)
{
	struct fixture *f = *state;
	struct zk_stat st = zstat(20, 20, 20);
	struct inode *d = inode_lookup(&f->t, "/d", INODE_DIR, &st);
	struct inode *data = inode_lookup(&f->t, "/d", INODE_DATA, &st);
	assert_ptr_not_equal(d, data);
	assert_int_not_equal(d->ino, data->ino);
	struct inode *x = inode_find_any(&f->t, "/d");
	assert_ptr_equal(x, d); /* FILE or DIR, never DATA */
	inode_put(&f->t, x);
	x = inode_find(&f->t, "/d", INODE_DATA);
	assert_ptr_equal(x, data);
	inode_put(&f->t, x);
	assert_null(inode_find(&f->t, "/d", INODE_FILE));
}

/* ---- stable ids ------------------------------------------------------------------- */

static void test_stable_ids(void **state)
{
	struct fixture *f = *state;
	struct zk_stat st = zstat(30, 30, 30);
	struct inode *a = inode_lookup(&f->t, "/s", INODE_FILE, &st);
	uint64_t ino = a->ino;
	assert_int_equal(ino, inode_number("/s", INODE_FILE, 30));
	assert_true(ino >= 2);
	/* Another table (another mount) gives the same st_ino. */
	struct inode_table t2;
	assert_int_equal(inode_init(&t2, &attrs, NULL, NULL), 0);
	struct inode *a2 = inode_lookup(&t2, "/s", INODE_FILE, &st);
	assert_int_equal(a2->ino, ino);
	inode_shutdown(&t2);
	/* Forgotten and looked up again: the same st_ino. */
	inode_forget(&f->t, a, 1);
	a = inode_lookup(&f->t, "/s", INODE_FILE, &st);
	assert_int_equal(a->ino, ino);

	/* A new znode at the path (another czxid) is a new inode; the old
	 * one stays, unhashed, while the kernel holds it. */
	struct zk_stat st2 = zstat(31, 31, 31);
	struct inode *b = inode_lookup(&f->t, "/s", INODE_FILE, &st2);
	assert_ptr_not_equal(b, a);
	assert_int_not_equal(b->ino, ino);
	assert_false(a->hashed);
	assert_true(b->hashed);
	assert_int_equal(a->ino, ino);
	/* A file turning into a directory: a new inode too. */
	struct zk_stat st3 = zstat(31, 32, 40);
	st3.num_children = 1;
	struct inode *c = inode_lookup(&f->t, "/s", INODE_DIR, &st3);
	assert_ptr_not_equal(c, b);
	assert_false(b->hashed);
	assert_int_equal(c->ino, inode_number("/s", INODE_DIR, 31));
	assert_int_not_equal(c->ino, b->ino);
}

/* ---- Stats -------------------------------------------------------------------------- */

static void test_older_stat_refused(void **state)
{
	struct fixture *f = *state;
	struct zk_stat st = zstat(50, 55, 52);
	struct inode *a = inode_lookup(&f->t, "/v", INODE_FILE, &st);
	struct zk_stat got;
	assert_true(inode_stat(&f->t, a, &got));
	assert_int_equal(got.mzxid, 55);

	struct zk_stat older = zstat(50, 54, 52); /* a late answer */
	older.data_length = 99;
	inode_set_stat(&f->t, a, &older);
	inode_stat(&f->t, a, &got);
	assert_int_equal(got.mzxid, 55);
	assert_int_equal(got.data_length, 0);
	older = zstat(50, 55, 51); /* older children */
	inode_set_stat(&f->t, a, &older);
	inode_stat(&f->t, a, &got);
	assert_int_equal(got.pzxid, 52);
	/* A lookup's older answer does not regress it either. */
	older = zstat(50, 53, 52);
	assert_ptr_equal(inode_lookup(&f->t, "/v", INODE_FILE, &older), a);
	inode_stat(&f->t, a, &got);
	assert_int_equal(got.mzxid, 55);

	struct zk_stat same = zstat(50, 55, 52); /* as new: installed */
	same.data_length = 7;
	inode_set_stat(&f->t, a, &same);
	inode_stat(&f->t, a, &got);
	assert_int_equal(got.data_length, 7);
	struct zk_stat newer = zstat(50, 60, 52);
	inode_set_stat(&f->t, a, &newer);
	inode_stat(&f->t, a, &got);
	assert_int_equal(got.mzxid, 60);
}

static void test_attr(void **state)
{
	struct fixture *f = *state;
	struct zk_stat st = zstat(70, 71, 70);
	st.data_length = 5000;
	st.mtime = 1234567;
	st.ctime = 1000;
	struct inode *a = inode_lookup(&f->t, "/file", INODE_FILE, &st);
	struct stat sb;
	inode_attr(&f->t, a, &sb);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0644);
	assert_int_equal(sb.st_uid, 1000);
	assert_int_equal(sb.st_gid, 100);
	assert_int_equal(sb.st_size, 5000);
	assert_int_equal(sb.st_blocks, 10);
	assert_int_equal(sb.st_ino, a->ino);
	assert_int_equal(sb.st_mtim.tv_sec, 1234);
	assert_int_equal(sb.st_mtim.tv_nsec, 567000000);
	/* ctime: the later of creation and the last write. */
	assert_int_equal(sb.st_ctim.tv_sec, 1234);
	assert_int_equal(sb.st_ctim.tv_nsec, 567000000);
	/* Unflushed writes say the size. */
	inode_set_dirty_size(&f->t, a, 3);
	inode_attr(&f->t, a, &sb);
	assert_int_equal(sb.st_size, 3);
	inode_set_dirty_size(&f->t, a, -1);
	inode_attr(&f->t, a, &sb);
	assert_int_equal(sb.st_size, 5000);

	st.num_children = 4;
	struct inode *d = inode_lookup(&f->t, "/dir", INODE_DIR, &st);
	inode_attr(&f->t, d, &sb);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0755);
	assert_int_equal(sb.st_size, 4);

	/* -o ro takes the write bits away. */
	struct inode_table ro;
	struct inode_attrs ra = attrs;
	ra.ro = true;
	assert_int_equal(inode_init(&ro, &ra, NULL, NULL), 0);
	inode_attr(&ro, &ro.root, &sb);
	assert_int_equal(sb.st_mode & 07777, 0555);
	inode_shutdown(&ro);
}

/* A directory's st_nlink: 2 without children; with children, 2 + the
 * count of the listing its Stat describes, and 1 ("not counted") while
 * there is none, or only one of an older listing, or it was too large. */
static void test_dir_nlink(void **state)
{
	struct fixture *f = *state;
	struct stat sb;
	struct zk_stat st = zstat(90, 90, 90);
	st.cversion = 1; /* an mkdir'd directory, empty */
	struct inode *d = inode_lookup(&f->t, "/d", INODE_DIR, &st);
	assert_false(inode_needs_count(&f->t, d));
	inode_attr(&f->t, d, &sb);
	assert_int_equal(sb.st_nlink, 2);

	/* Two entries made: the count of the older listing no longer holds. */
	st.num_children = 2;
	st.cversion = 3;
	st.pzxid = 95;
	inode_set_stat(&f->t, d, &st);
	assert_true(inode_needs_count(&f->t, d));
	inode_attr(&f->t, d, &sb);
	assert_int_equal(sb.st_nlink, 1);
	inode_set_count(&f->t, d, &st, 1);
	assert_false(inode_needs_count(&f->t, d));
	inode_attr(&f->t, d, &sb);
	assert_int_equal(sb.st_nlink, 3);

	/* A listing newer than the Stat held brings its Stat along. */
	struct zk_stat newer = st;
	newer.num_children = 3;
	newer.pzxid = 97;
	inode_set_count(&f->t, d, &newer, 2);
	inode_attr(&f->t, d, &sb);
	assert_int_equal(sb.st_nlink, 4);
	assert_int_equal(sb.st_size, 3);
	/* An older one is refused with its Stat. */
	inode_set_count(&f->t, d, &st, 0);
	inode_attr(&f->t, d, &sb);
	assert_int_equal(sb.st_nlink, 4);

	/* A child turned into a directory elsewhere: counted again. */
	inode_recount(&f->t, d);
	assert_true(inode_needs_count(&f->t, d));
	inode_attr(&f->t, d, &sb);
	assert_int_equal(sb.st_nlink, 1);
	inode_set_count(&f->t, d, &newer, INODE_UNCOUNTED);
	assert_false(inode_needs_count(&f->t, d));
	inode_attr(&f->t, d, &sb);
	assert_int_equal(sb.st_nlink, 1);

	/* Files never need a count. */
	struct inode *file = inode_lookup(&f->t, "/d/f", INODE_FILE, &st);
	assert_false(inode_needs_count(&f->t, file));
}

/* readdir's d_ino is the st_ino a stat shows: a renamed node's record
 * keeps its number, and the number of a node without an inode is the one
 * an inode of it would show. */
static void test_st_ino(void **state)
{
	struct fixture *f = *state;
	struct stat sb;
	struct zk_stat st = zstat(100, 100, 100);
	struct inode *a = inode_lookup(&f->t, "/moved", INODE_FILE, &st);
	assert_int_equal(inode_st_ino(&f->t, a), a->ino);
	assert_int_equal(inode_st_ino_of("/moved", INODE_FILE, &st, NULL), a->ino);
	struct sidetree_rec rec = { .of = 100, .has_ino = true, .ino = 4242 };
	inode_set_meta(&f->t, a, &rec);
	inode_attr(&f->t, a, &sb);
	assert_int_equal(sb.st_ino, 4242);
	assert_int_equal(inode_st_ino(&f->t, a), 4242);
	assert_int_equal(inode_st_ino_of("/moved", INODE_FILE, &st, &rec), 4242);
	/* A record of an older znode at the path says nothing. */
	rec.of = 99;
	inode_set_meta(&f->t, a, &rec);
	assert_int_equal(inode_st_ino(&f->t, a), a->ino);
	assert_int_equal(inode_st_ino_of("/moved", INODE_FILE, &st, &rec), a->ino);
}

/* A metadata record is shown only for the znode it names (its czxid), its
 * times only at the data version they were set at; a link is a link. */
static void test_attr_meta(void **state)
{
	struct fixture *f = *state;
	struct zk_stat st = zstat(80, 81, 80);
	st.version = 2;
	st.mtime = 5000;
	st.data_length = 7;
	struct inode *a = inode_lookup(&f->t, "/m", INODE_FILE, &st);
	struct sidetree_rec rec = { .of = 80, .has_mode = true, .mode = 0750, .has_uid = true,
				    .uid = 7, .has_mtime = true, .mtime_ns = 2000000000123,
				    .mtime_ver = 2, .has_atime = true, .atime_ns = 1000000000000,
				    .atime_ver = 1 };
	inode_set_meta(&f->t, a, &rec);
	struct stat sb;
	inode_attr(&f->t, a, &sb);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0750);
	assert_int_equal(sb.st_uid, 7);
	assert_int_equal(sb.st_gid, 100);              /* not in the record */
	assert_int_equal(sb.st_mtim.tv_sec, 2000);
	assert_int_equal(sb.st_mtim.tv_nsec, 123);
	assert_int_equal(sb.st_atim.tv_sec, 2000);     /* set at version 1: gone */
	/* A later write: ZooKeeper's mtime again, the mode stays. */
	st.version = 3;
	st.mzxid = 82;
	st.mtime = 9000;
	inode_set_stat(&f->t, a, &st);
	inode_attr(&f->t, a, &sb);
	assert_int_equal(sb.st_mtim.tv_sec, 9);
	assert_int_equal(sb.st_mode & 07777, 0750);
	/* The record's ctime when later than the write; its st_ino. */
	assert_int_equal(sb.st_ctim.tv_sec, 9);
	rec.has_ctime = true;
	rec.ctime_ns = 10000000000042;
	rec.has_ino = true;
	rec.ino = 424242;
	inode_set_meta(&f->t, a, &rec);
	inode_attr(&f->t, a, &sb);
	assert_int_equal(sb.st_ctim.tv_sec, 10000);
	assert_int_equal(sb.st_ctim.tv_nsec, 42);
	assert_int_equal(sb.st_ino, 424242);
	rec.has_ctime = rec.has_ino = false;
	/* A record of another znode is not shown. */
	rec.of = 79;
	inode_set_meta(&f->t, a, &rec);
	inode_attr(&f->t, a, &sb);
	assert_int_equal(sb.st_mode & 07777, 0644);
	assert_int_equal(sb.st_uid, 1000);
	inode_set_meta(&f->t, a, NULL);
	struct sidetree_rec got;
	assert_false(inode_meta(&f->t, a, &got));

	struct inode *l = inode_lookup(&f->t, "/l", INODE_LINK, &st);
	struct sidetree_rec lr = { .of = 80, .link = true, .has_mode = true, .mode = 0600 };
	inode_set_meta(&f->t, l, &lr);
	inode_attr(&f->t, l, &sb);
	assert_true(S_ISLNK(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0777);    /* a link's mode is fixed */
	assert_int_equal(sb.st_size, 7);
	assert_int_equal(sb.st_nlink, 1);
}

/* ---- renames, creates -------------------------------------------------------------- */

static void test_rehash_and_set_path(void **state)
{
	struct fixture *f = *state;
	struct zk_stat st = zstat(80, 80, 80);
	struct inode *p = inode_new_unhashed(&f->t, "/new", INODE_FILE, NULL);
	assert_non_null(p);
	assert_int_equal(p->nlookup, 1);
	assert_int_equal(p->czxid, 0);
	assert_null(inode_find(&f->t, "/new", INODE_FILE));
	/* Hashed under its name, replacing what was there. */
	struct inode *old = inode_lookup(&f->t, "/new", INODE_FILE, &st);
	inode_rehash(&f->t, p, "/new");
	assert_false(old->hashed);
	struct inode *x = inode_find(&f->t, "/new", INODE_FILE);
	assert_ptr_equal(x, p);
	inode_put(&f->t, x);
	/* A rename moves it. */
	inode_rehash(&f->t, p, "/moved");
	assert_null(inode_find(&f->t, "/new", INODE_FILE));
	x = inode_find(&f->t, "/moved", INODE_FILE);
	assert_ptr_equal(x, p);
	inode_put(&f->t, x);
	/* A plain name committed: the same inode, hashed, now for that znode
	 * only, and with the st_ino the kernel already showed. */
	uint64_t ino = p->ino;
	struct zk_stat made = zstat(200, 200, 200);
	inode_created(&f->t, p, "/moved", &made);
	assert_true(p->hashed);
	assert_int_equal(p->czxid, 200);
	assert_int_equal(p->ino, ino);
	struct inode *same = inode_lookup(&f->t, "/moved", INODE_FILE, &made);
	assert_ptr_equal(same, p);
	inode_forget(&f->t, same, 1);
	struct zk_stat other = zstat(300, 300, 300); /* recreated since */
	struct inode *newer = inode_lookup(&f->t, "/moved", INODE_FILE, &other);
	assert_ptr_not_equal(newer, p);
	assert_false(p->hashed);
	inode_forget(&f->t, newer, 1);
	/* A suffixed create's real name is not the kernel's: not findable
	 * by either. */
	struct inode *q = inode_new_unhashed(&f->t, "/seq", INODE_FILE, NULL);
	inode_rehash(&f->t, q, "/seq#s");
	inode_created(&f->t, q, "/real0000000001", &made);
	assert_false(q->hashed);
	char *path = inode_path(&f->t, q);
	assert_string_equal(path, "/real0000000001");
	free(path);
	assert_null(inode_find(&f->t, "/seq#s", INODE_FILE));
	inode_forget(&f->t, q, 1);
}

static void test_pending(void **state)
{
	struct fixture *f = *state;
	struct inode *in = inode_new_unhashed(&f->t, "/p", INODE_FILE, NULL);
	struct fh fa = { 0 }, fb = { 0 };
	atomic_init(&fa.refs, 1);
	assert_null(inode_pending(&f->t, in));
	inode_set_pending(&f->t, in, &fa);
	assert_true(inode_has_pending(&f->t, in));
	assert_ptr_equal(inode_pending(&f->t, in), &fa);
	assert_int_equal(atomic_load(&fa.refs), 2); /* the caller's reference */
	/* Only the file that is pending clears it. */
	inode_clear_pending(&f->t, in, &fb);
	assert_true(inode_has_pending(&f->t, in));
	inode_clear_pending(&f->t, in, &fa);
	assert_false(inode_has_pending(&f->t, in));
}

/* Unborn (a create not committed) and unlinked inodes stand for no znode:
 * detached; an unlinked one is unhashed and shows st_nlink 0 with its last
 * Stat. */
static void test_detached_and_unlinked(void **state)
{
	struct fixture *f = *state;
	struct zk_stat st = zstat(70, 70, 70);
	st.data_length = 9;
	struct inode *in = inode_lookup(&f->t, "/gone", INODE_FILE, &st);
	assert_false(inode_detached(&f->t, in));
	struct stat a;
	inode_attr(&f->t, in, &a);
	assert_int_equal(a.st_nlink, 1);
	inode_set_unlinked(&f->t, in);
	assert_true(inode_unlinked(&f->t, in));
	assert_true(inode_detached(&f->t, in));
	assert_false(in->hashed);
	assert_null(inode_find(&f->t, "/gone", INODE_FILE));
	inode_attr(&f->t, in, &a);
	assert_int_equal(a.st_nlink, 0);
	assert_int_equal(a.st_size, 9);
	assert_int_equal(a.st_ino, in->ino);

	struct inode *unborn = inode_new_unhashed(&f->t, "/new", INODE_FILE, NULL);
	struct fh fa = { 0 };
	atomic_init(&fa.refs, 1);
	inode_set_pending(&f->t, unborn, &fa);
	assert_true(inode_detached(&f->t, unborn));
	assert_false(inode_unlinked(&f->t, unborn));
	inode_clear_pending(&f->t, unborn, &fa);
	assert_false(inode_detached(&f->t, unborn));
}

static void test_hold_all(void **state)
{
	struct fixture *f = *state;
	struct zk_stat st = zstat(90, 90, 90);
	inode_lookup(&f->t, "/h1", INODE_FILE, &st);
	inode_lookup(&f->t, "/h2", INODE_DIR, &st);
	inode_new_unhashed(&f->t, "/h3", INODE_FILE, NULL); /* not hashed: not in */
	size_t n;
	struct inode **v = inode_hold_all(&f->t, &n);
	assert_int_equal(n, 3); /* the root, /h1, /h2 */
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(v[i]->refs, 1);
		inode_put(&f->t, v[i]);
	}
	free(v);
}

/* ---- out of memory ------------------------------------------------------------------ */

/* Runs op with the allocation after n failing, for n = 0, 1, ... until op
 * succeeds; each failure must leave the table's digest as it was. */
#define UNTIL_IT_WORKS(f, ok, op)                                                  \
	for (long n_ = 0;; n_++) {                                                 \
		char *before_ = digest(&(f)->t);                                   \
		alloc_fail_after = n_;                                             \
		op;                                                                \
		alloc_fail_after = -1;                                             \
		if (ok) {                                                          \
			free(before_);                                             \
			break;                                                     \
		}                                                                  \
		char *after_ = digest(&(f)->t);                                    \
		assert_string_equal(after_, before_);                              \
		free(after_);                                                      \
		free(before_);                                                     \
		assert_true(n_ < 100);                                             \
	}

static void test_enomem_leaves_table_unchanged(void **state)
{
	struct fixture *f = *state;
	struct zk_stat st = zstat(100, 100, 100);
	struct inode *in = NULL;
	/* A new path (the map grows on the way: several allocations). */
	for (int i = 0; i < 20; i++) {
		char path[32];
		snprintf(path, sizeof(path), "/n%d", i);
		UNTIL_IT_WORKS(f, in != NULL, in = inode_lookup(&f->t, path, INODE_FILE, &st));
		in = NULL;
	}
	/* A new znode at a held path: the old inode stays hashed on failure. */
	struct inode *old = inode_lookup(&f->t, "/r", INODE_FILE, &st);
	struct zk_stat st2 = zstat(101, 101, 101);
	UNTIL_IT_WORKS(f, in != NULL, in = inode_lookup(&f->t, "/r", INODE_FILE, &st2));
	assert_ptr_not_equal(in, old);
	assert_false(old->hashed);
	in = NULL;
	UNTIL_IT_WORKS(f, in != NULL, in = inode_new_unhashed(&f->t, "/u", INODE_FILE, NULL));
	/* Rekeying needs the new path's copy first. */
	char *p = NULL;
	UNTIL_IT_WORKS(f, (p = inode_path(&f->t, in)) && strcmp(p, "/u2") == 0,
		       free(p); inode_rehash(&f->t, in, "/u2"));
	free(p);
	p = NULL;
	UNTIL_IT_WORKS(f, (p = inode_path(&f->t, in)) && strcmp(p, "/u3") == 0,
		       free(p); inode_created(&f->t, in, "/u3", &st2));
	free(p);
	size_t n = 0;
	struct inode **v = NULL;
	UNTIL_IT_WORKS(f, v != NULL, v = inode_hold_all(&f->t, &n));
	for (size_t i = 0; i < n; i++)
		inode_put(&f->t, v[i]);
	free(v);
}

static void test_move_tree(void **state)
{
	struct fixture *f = *state;
	struct zk_stat st = zstat(10, 10, 10);
	struct inode *d = inode_lookup(&f->t, "/a/d", INODE_DIR, &st);
	struct inode *data = inode_lookup(&f->t, "/a/d", INODE_DATA, &st);
	struct inode *x = inode_lookup(&f->t, "/a/d/x", INODE_FILE, &st);
	struct inode *deep = inode_lookup(&f->t, "/a/d/s/y", INODE_FILE, &st);
	struct inode *next = inode_lookup(&f->t, "/a/dd", INODE_FILE, &st); /* not under */
	struct inode *pending = inode_new_unhashed(&f->t, "/a/d/new", INODE_FILE, NULL);
	inode_rehash(&f->t, pending, "/a/d/new");
	struct inode *target = inode_lookup(&f->t, "/b/x", INODE_FILE, &st); /* replaced */
	uint64_t ino_x = x->ino;
	int gained_before = f->n_gained;
	assert_int_equal(inode_move_tree(&f->t, "/a/d", "/b", 77), 0);
	struct { struct inode *in; const char *path; enum inode_kind kind; } moved[] = {
		{ d, "/b", INODE_DIR }, { data, "/b", INODE_DATA }, { x, "/b/x", INODE_FILE },
		{ deep, "/b/s/y", INODE_FILE }, { pending, "/b/new", INODE_FILE },
	};
	for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
		struct inode *in = inode_find(&f->t, moved[i].path, moved[i].kind);
		assert_ptr_equal(in, moved[i].in);
		inode_put(&f->t, in);
	}
	assert_int_equal(f->n_gained - gained_before, 5); /* watch.c arms them */
	assert_null(inode_find_any(&f->t, "/a/d/x"));
	assert_false(target->hashed);
	/* The kernel's ids and numbers stay; the znodes are the rename's. */
	assert_int_equal(x->ino, ino_x);
	assert_int_equal(x->czxid, 77);
	assert_false(x->have_stat);
	assert_int_equal(pending->czxid, 0);
	struct inode *same = inode_lookup(&f->t, "/b/x", INODE_FILE, &(struct zk_stat){ .czxid = 77 });
	assert_ptr_equal(same, x);
	inode_forget(&f->t, same, 1);
	/* A name that only starts like the directory's stays. */
	struct inode *n = inode_find(&f->t, "/a/dd", INODE_FILE);
	assert_ptr_equal(n, next);
	inode_put(&f->t, n);
	/* Out of memory at any step: nothing moved. */
	int rc = -1;
	UNTIL_IT_WORKS(f, rc == 0, rc = inode_move_tree(&f->t, "/b", "/c", 78));
	n = inode_find(&f->t, "/c/s/y", INODE_FILE);
	assert_ptr_equal(n, deep);
	inode_put(&f->t, n);
}

static void test_enomem_init(void **state)
{
	(void)state;
	struct inode_table t;
	for (long n = 0;; n++) {
		alloc_fail_after = n;
		int rc = inode_init(&t, &attrs, NULL, NULL);
		alloc_fail_after = -1;
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
	}
	inode_shutdown(&t);
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_root),
		TEST(test_lookup_count_is_the_kernels),
		TEST(test_find_kinds),
		TEST(test_stable_ids),
		TEST(test_older_stat_refused),
		TEST(test_attr),
		TEST(test_attr_meta),
		TEST(test_dir_nlink),
		TEST(test_st_ino),
		TEST(test_rehash_and_set_path),
		TEST(test_move_tree),
		TEST(test_pending),
		TEST(test_detached_and_unlinked),
		TEST(test_hold_all),
		TEST(test_enomem_leaves_table_unchanged),
		TEST(test_enomem_init),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * sync: the blocking API. Each qc_<op>() calls qc_a<op>() with a waiter on
 * its own stack as the callback argument and sleeps on the waiter's
 * condition variable until the I/O thread has run the callback. The
 * callback copies the result (qc_result_copy()) when the caller wants it.
 *
 * DESIGN: a wait is bounded because every submitted request completes: with
 * its reply, at its deadline (request_timeout_ms, checked on every tick),
 * or at qc_close(). A blocking call on the I/O thread would wait for
 * itself, so it returns ZAPIERROR at once. The callback touches the waiter
 * only while holding its mutex, and not after unlocking it, so the waiting
 * thread may return (and its stack go) as soon as it wakes.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- result copies ------------------------------------------------------ */

/* Two passes over a result: the first (base == NULL) measures, the second
 * fills one block. */
struct copier {
	char *base;
	size_t off;
};

static void *take(struct copier *k, size_t n)
{
	k->off = (k->off + 15) & ~(size_t)15;
	void *p = k->base ? k->base + k->off : NULL;
	k->off += n;
	return p;
}

static const char *cp_str(struct copier *k, const char *s)
{
	if (s == NULL)
		return NULL;
	size_t n = strlen(s) + 1;
	char *p = take(k, n);
	if (p)
		memcpy(p, s, n);
	return p;
}

/* Copies what s points to; d is NULL while measuring. */
static void cp_fields(struct copier *k, struct qc_result *d, const struct qc_result *s)
{
	struct qc_result scratch;
	if (d == NULL)
		d = &scratch;
	*d = *s;
	if (s->stat) {
		struct zk_stat *st = take(k, sizeof(*st));
		if (st)
			*st = *s->stat;
		d->stat = st;
	}
	d->path = cp_str(k, s->path);
	if (s->data) {
		size_t n = s->data_len > 0 ? (size_t)s->data_len : 0;
		uint8_t *p = take(k, n ? n : 1);
		if (p && n)
			memcpy(p, s->data, n);
		d->data = p;
	}
	if (s->strings) {
		char **v = take(k, sizeof(char *) * ((size_t)s->num_strings + 1));
		for (int32_t i = 0; i < s->num_strings; i++) {
			const char *p = cp_str(k, s->strings[i]);
			if (v)
				v[i] = (char *)p;
		}
		if (v)
			v[s->num_strings] = NULL;
		d->strings = v;
	}
	if (s->acls) {
		struct qc_acl *v = take(k, sizeof(*v) * (size_t)s->num_acls);
		for (int32_t i = 0; i < s->num_acls; i++) {
			const char *scheme = cp_str(k, s->acls[i].scheme);
			const char *id = cp_str(k, s->acls[i].id);
			if (v)
				v[i] = (struct qc_acl){ s->acls[i].perms, scheme, id };
		}
		d->acls = v;
	}
	if (s->ids) {
		struct qc_client_info *v = take(k, sizeof(*v) * (size_t)s->num_ids);
		for (int32_t i = 0; i < s->num_ids; i++) {
			const char *scheme = cp_str(k, s->ids[i].scheme);
			const char *user = cp_str(k, s->ids[i].user);
			if (v)
				v[i] = (struct qc_client_info){ scheme, user };
		}
		d->ids = v;
	}
	if (s->results) {
		struct qc_result *v = take(k, sizeof(*v) * (size_t)s->num_results);
		for (int32_t i = 0; i < s->num_results; i++)
			cp_fields(k, v ? &v[i] : NULL, &s->results[i]);
		d->results = v;
	}
}

struct qc_result *qc_result_copy(const struct qc_result *r)
{
	struct copier k = { NULL, 0 };
	take(&k, sizeof(struct qc_result));
	cp_fields(&k, NULL, r);
	char *block = malloc(k.off);
	if (block == NULL)
		return NULL;
	k = (struct copier){ block, 0 };
	struct qc_result *root = take(&k, sizeof(*root));
	cp_fields(&k, root, r);
	return root;
}

void qc_result_free(struct qc_result *r) { free(r); }

/* ---- waiting ------------------------------------------------------------ */

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	bool want;              /* copy the result out */
	int err;
	int32_t number;
	struct qc_result *copy;
};

static void on_done(struct qc_client *c, const struct qc_result *r, void *arg)
{
	struct waiter *w = arg;
	(void)c;
	struct qc_result *copy = w->want ? qc_result_copy(r) : NULL;
	pthread_mutex_lock(&w->mu);
	w->err = w->want && copy == NULL ? ZSYSTEMERROR : r->err;
	w->number = r->number;
	w->copy = copy;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu); /* w may be gone from here on */
}

static int begin(struct qc_client *c, struct waiter *w, struct qc_result **out)
{
	if (out)
		*out = NULL;
	if (c == NULL)
		return ZBADARGUMENTS;
	if (qc_on_io_thread(c))
		return ZAPIERROR;
	memset(w, 0, sizeof(*w));
	w->want = out != NULL;
	if (pthread_mutex_init(&w->mu, NULL) != 0)
		return ZSYSTEMERROR;
	if (pthread_cond_init(&w->cv, NULL) != 0) {
		pthread_mutex_destroy(&w->mu);
		return ZSYSTEMERROR;
	}
	return ZOK;
}

/* rc: what the async call returned; on ZOK waits for its callback. */
static int finish(struct waiter *w, int rc, struct qc_result **out)
{
	if (rc == ZOK) {
		pthread_mutex_lock(&w->mu);
		while (!w->done)
			pthread_cond_wait(&w->cv, &w->mu);
		pthread_mutex_unlock(&w->mu);
		rc = w->err;
		if (out)
			*out = w->copy;
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	return rc;
}

/* Declares the waiter, checks the thread, calls `call`, waits. */
#define BLOCKING(c, out, call)                                                 \
	do {                                                                   \
		struct waiter w_;                                              \
		int rc_ = begin((c), &w_, (out));                              \
		if (rc_ != ZOK)                                                \
			return rc_;                                            \
		struct waiter *w = &w_;                                        \
		rc_ = (call);                                                  \
		return finish(w, rc_, (out));                                  \
	} while (0)

/* ---- the operations ----------------------------------------------------- */

int qc_create(struct qc_client *c, const char *path, const void *data, int32_t data_len,
	      const struct qc_acl *acl, int32_t num_acl, int32_t mode, int64_t ttl,
	      struct qc_result **out)
{
	BLOCKING(c, out, qc_acreate(c, path, data, data_len, acl, num_acl, mode, ttl, on_done, w));
}

int qc_delete(struct qc_client *c, const char *path, int32_t version)
{
	BLOCKING(c, NULL, qc_adelete(c, path, version, on_done, w));
}

int qc_exists(struct qc_client *c, const char *path, qc_watch_fn watch, void *watch_arg,
	      struct qc_result **out)
{
	BLOCKING(c, out, qc_aexists(c, path, watch, watch_arg, on_done, w));
}

int qc_get_data(struct qc_client *c, const char *path, qc_watch_fn watch, void *watch_arg,
		struct qc_result **out)
{
	BLOCKING(c, out, qc_aget_data(c, path, watch, watch_arg, on_done, w));
}

int qc_set_data(struct qc_client *c, const char *path, const void *data, int32_t data_len,
		int32_t version, struct qc_result **out)
{
	BLOCKING(c, out, qc_aset_data(c, path, data, data_len, version, on_done, w));
}

int qc_get_acl(struct qc_client *c, const char *path, struct qc_result **out)
{
	BLOCKING(c, out, qc_aget_acl(c, path, on_done, w));
}

int qc_set_acl(struct qc_client *c, const char *path, const struct qc_acl *acl,
	       int32_t num_acl, int32_t version, struct qc_result **out)
{
	BLOCKING(c, out, qc_aset_acl(c, path, acl, num_acl, version, on_done, w));
}

int qc_get_children(struct qc_client *c, const char *path, qc_watch_fn watch,
		    void *watch_arg, struct qc_result **out)
{
	BLOCKING(c, out, qc_aget_children(c, path, watch, watch_arg, on_done, w));
}

int qc_sync(struct qc_client *c, const char *path)
{
	BLOCKING(c, NULL, qc_async(c, path, on_done, w));
}

int qc_multi(struct qc_client *c, const struct qc_op *ops, int32_t num_ops,
	     struct qc_result **out)
{
	BLOCKING(c, out, qc_amulti(c, ops, num_ops, on_done, w));
}

int qc_multi_read(struct qc_client *c, const struct qc_op *ops, int32_t num_ops,
		  struct qc_result **out)
{
	BLOCKING(c, out, qc_amulti_read(c, ops, num_ops, on_done, w));
}

int qc_add_watch(struct qc_client *c, const char *path, int32_t mode, qc_watch_fn watch,
		 void *watch_arg)
{
	BLOCKING(c, NULL, qc_aadd_watch(c, path, mode, watch, watch_arg, on_done, w));
}

int qc_remove_watches(struct qc_client *c, const char *path, int32_t type, qc_watch_fn watch,
		      void *watch_arg, bool local)
{
	BLOCKING(c, NULL,
		 qc_aremove_watches(c, path, type, watch, watch_arg, local, on_done, w));
}

int qc_check_watches(struct qc_client *c, const char *path, int32_t type)
{
	BLOCKING(c, NULL, qc_acheck_watches(c, path, type, on_done, w));
}

int qc_get_ephemerals(struct qc_client *c, const char *prefix, struct qc_result **out)
{
	BLOCKING(c, out, qc_aget_ephemerals(c, prefix, on_done, w));
}

int qc_get_all_children_number(struct qc_client *c, const char *path, int32_t *number)
{
	struct waiter w_;
	int rc = begin(c, &w_, NULL);
	if (rc != ZOK)
		return rc;
	rc = finish(&w_, qc_aget_all_children_number(c, path, on_done, &w_), NULL);
	if (rc == ZOK && number)
		*number = w_.number;
	return rc;
}

int qc_add_auth(struct qc_client *c, const char *scheme, const void *cred, int32_t cred_len)
{
	BLOCKING(c, NULL, qc_aadd_auth(c, scheme, cred, cred_len, on_done, w));
}

int qc_add_sasl_digest(struct qc_client *c, const char *user, const char *password)
{
	BLOCKING(c, NULL, qc_aadd_sasl_digest(c, user, password, on_done, w));
}

int qc_get_config(struct qc_client *c, struct qc_result **out)
{
	BLOCKING(c, out, qc_aget_config(c, on_done, w));
}

int qc_update_hosts(struct qc_client *c, const char *hosts)
{
	BLOCKING(c, NULL, qc_aupdate_hosts(c, hosts, on_done, w));
}

int qc_whoami(struct qc_client *c, struct qc_result **out)
{
	BLOCKING(c, out, qc_awhoami(c, on_done, w));
}

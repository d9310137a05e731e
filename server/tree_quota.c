/*
 * tree_quota: ZooKeeper's quota bookkeeping in the tree (DataTree's
 * updateQuotaStat and updateQuotaForPath), inside tree_apply()'s three
 * phases: prepare takes a buffer for the stats node's new text (and the
 * quota a limits node starts), apply writes the text and trades it for the
 * node's data without allocating, undo trades back, commit (tree.c)
 * frees what was replaced. quota.c holds the set of quotas and the text.
 */
#include <errno.h>
#include <stdlib.h>

#include "tree_int.h"

/* What an op that may change a quota's counts needs before anything
 * changes: the buffer for the stats node's new text, and for a create of a
 * limits node, the quota (not live until applied). */
int tree_quota_prep(struct tree *t, struct op *op)
{
	struct zk_str root;
	bool limits = op->kind == OP_CREATE && quota_limits_root(op->path, &root);
	bool stats = op->kind == OP_CREATE && quota_stats_root(op->path, &root);
	if (op->bad || op->kind == OP_SET_ACL || op->kind == OP_CHECK ||
	    (quota_set_empty(&t->quotas) && !limits && !stats))
		return 0;
	if ((op->text = malloc(QUOTA_TEXT_MAX)) == NULL)
		return -ENOMEM;
	if (limits && (op->q_add = quota_add(&t->quotas, root)) == NULL)
		return -ENOMEM;
	return 0;
}

/* Puts the op's text on the stats node n, keeping what it had in the op;
 * doing it again undoes it. Stats nodes change no version: ZooKeeper
 * rewrites their data in place. */
static void swap_text(struct tree *t, struct znode *n, struct op *op)
{
	tree_swap_data(t, n, &op->text, &op->text_len);
}

/* DataTree's quota bookkeeping after an applied create, delete or setData:
 * a limits node starts or ends a quota; a new stats node gets its
 * subtree's counts (updateQuotaForPath); any other change is counted in
 * the quota covering its path (updateQuotaStat). Allocates nothing. */
void tree_quota_apply(struct tree *t, struct op *op)
{
	struct zk_str root;
	if (op->q_add)
		op->q_add->live = true;
	if (op->kind == OP_DELETE && quota_limits_root(op->path, &root) &&
	    (op->q_end = quota_find(&t->quotas, root)) != NULL)
		op->q_end->live = false;
	if (op->text == NULL)
		return;
	struct znode *stats;
	int64_t count = 0, bytes = 0;
	if (op->kind == OP_CREATE && quota_stats_root(op->path, &root)) {
		stats = op->node;
		const struct znode *top = tree_get(t, root);
		for (const struct znode *x = top; x; x = tree_preorder_next(x, top)) {
			count++;
			bytes += x->stat.data_length;
		}
	} else {
		const struct quota *q = quota_covering(&t->quotas, op->path);
		stats = q ? tree_get(t, (struct zk_str){ q->stats_path, q->stats_len }) : NULL;
		if (stats == NULL)
			return;
		struct quota_fields f;
		quota_parse(znode_data(stats).p, stats->stat.data_length, &f);
		int32_t len = op->node->stat.data_length;
		count = f.count + (op->kind == OP_CREATE ? 1 : op->kind == OP_DELETE ? -1 : 0);
		bytes = f.bytes + (op->kind == OP_CREATE ? len : op->kind == OP_DELETE ? -len
							  : len - op->data_len);
	}
	op->text_len = quota_format(op->text, count, bytes);
	swap_text(t, stats, op);
	op->q_stats = stats;
}

void tree_quota_undo(struct tree *t, struct op *op)
{
	if (op->q_stats) {
		swap_text(t, op->q_stats, op);
		op->q_stats = NULL;
	}
	if (op->q_end) {
		op->q_end->live = true;
		op->q_end = NULL;
	}
	if (op->q_add)
		op->q_add->live = false;
}

const struct quota_set *tree_quotas(const struct tree *t)
{
	return &t->quotas;
}


/*
 * list: an intrusive circular doubly linked list. The head is a node whose
 * next/prev point to itself when empty. O(1) insert and unlink.
 */
#ifndef QUORUM_LIST_H
#define QUORUM_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "hmap.h" /* CONTAINER_OF */

struct list {
	struct list *next, *prev;
};

static inline void list_init(struct list *l) { l->next = l->prev = l; }
static inline bool list_empty(const struct list *l) { return l->next == l; }
/* Whether a node initialised with list_init() and unlinked with
 * list_remove() is in a list. */
static inline bool list_linked(const struct list *n) { return n->next != n; }

static inline void list_insert_before(struct list *pos, struct list *n)
{
	n->prev = pos->prev;
	n->next = pos;
	pos->prev->next = n;
	pos->prev = n;
}
static inline void list_push_back(struct list *head, struct list *n) { list_insert_before(head, n); }
static inline void list_push_front(struct list *head, struct list *n) { list_insert_before(head->next, n); }

/* Unlinks n and leaves it pointing to itself, so list_linked() is false. */
static inline void list_remove(struct list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

static inline struct list *list_front(const struct list *head)
{
	return list_empty(head) ? NULL : head->next;
}

#define LIST_FOR_EACH(n, head) for (struct list *n = (head)->next; n != (head); n = n->next)
#define LIST_FOR_EACH_SAFE(n, nx, head)                                         \
	for (struct list *n = (head)->next, *nx = n->next; n != (head); n = nx, nx = n->next)

#endif

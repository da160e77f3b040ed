/*
 * list.h - intrusive doubly linked list (the kernel's list_head).
 * A zeroed list head is not valid: call ebb_list_init().
 */
#ifndef EBB_LIST_H
#define EBB_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct ebb_list {
    struct ebb_list *prev;
    struct ebb_list *next;
};

static inline void ebb_list_init(struct ebb_list *h) { h->prev = h->next = h; }
static inline bool ebb_list_empty(const struct ebb_list *h) { return h->next == h; }
static inline bool ebb_list_linked(const struct ebb_list *e) { return e->next && e->next != e; }

static inline void ebb_list_add_tail(struct ebb_list *h, struct ebb_list *e)
{
    e->prev = h->prev;
    e->next = h;
    h->prev->next = e;
    h->prev = e;
}

static inline void ebb_list_add(struct ebb_list *h, struct ebb_list *e)
{
    e->next = h->next;
    e->prev = h;
    h->next->prev = e;
    h->next = e;
}

static inline void ebb_list_del(struct ebb_list *e)
{
    if (!e->next)
        return;
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
}

#define ebb_list_entry(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Safe against removal of the current entry. */
#define ebb_list_for_each_safe(pos, tmp, head) \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

#endif

/*
 * store_int - what a store backend implements (src/store/store_sqlite.c,
 * src/store/store_pg.c) and the head every backend's store embeds first.
 * src/store/store.c checks arguments and dispatches; a backend never sees a
 * record without its key fields.
 */
#ifndef PRESBRIDGE_STORE_INT_H
#define PRESBRIDGE_STORE_INT_H

#include "presbridge/store.h"

struct store_ops {
	const char *name; /* store_backend() */
	/* Release everything, st included (or keep it: store_keep_memory). */
	void (*close)(struct store *st);
	int (*begin)(struct store *st);
	int (*commit)(struct store *st);
	int (*flush)(struct store *st);
	int (*sub_put)(struct store *st, const struct store_sub *s);
	int (*sub_del)(struct store *st, int dir, const char *watcher,
	               const char *presentity);
	int (*sub_each)(struct store *st, store_sub_h *h, void *arg);
	int (*sub_raise_cseq)(struct store *st, uint32_t delta);
	int (*pres_put)(struct store *st, const struct store_pres *p);
	int (*pres_del)(struct store *st, const char *entity, const char *resource);
	int (*pres_each)(struct store *st, store_pres_h *h, void *arg);
	int (*im_put)(struct store *st, const struct store_im *im);
	int (*im_del)(struct store *st, const char *call_id);
	int (*im_each)(struct store *st, store_im_h *h, void *arg);
	const char *(*errmsg)(const struct store *st);
	/* Optional: forget every write not yet sent (store_set_owner, epoch 0). */
	void (*discard)(struct store *st);
};

/* The first member of every backend's store. */
struct store {
	const struct store_ops *ops;
	store_event_h *ev_h; /* store_set_events(); NULL: none */
	void *ev_arg;
	char *owner;   /* store_set_owner(): caller's node name, copied; NULL: none */
	int64_t epoch; /* the pool lease's epoch that goes with owner */
	uint64_t wseq; /* sequence of the last write issued */
	uint64_t dseq; /* sequence of the last write known durable */
};

/* Initialise the head of a new store. */
void store_head_init(struct store *st, const struct store_ops *ops);
/* Release what the head owns (the owner string); the backend frees st. */
void store_head_clear(struct store *st);
/* Tell the registered handler, if any. */
void store_emit(struct store *st, enum store_event ev, uint64_t seq);

#endif

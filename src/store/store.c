/*
 * store - the one interface (store.h): argument checks common to every
 * backend, then dispatch through the backend's store_ops (store_int.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

void store_head_init(struct store *st, const struct store_ops *ops)
{
	memset(st, 0, sizeof(*st));
	st->ops = ops;
}

void store_head_clear(struct store *st)
{
	free(st->owner);
	st->owner = NULL;
	st->epoch = 0;
	st->ev_h = NULL;
	st->ev_arg = NULL;
}

void store_emit(struct store *st, enum store_event ev, uint64_t seq)
{
	if (st->ev_h)
		st->ev_h(ev, seq, st->ev_arg);
}

void store_close(struct store *st)
{
	if (st)
		st->ops->close(st);
}

const char *store_backend(const struct store *st)
{
	return st->ops->name;
}

uint64_t store_pending(const struct store *st)
{
	return st->wseq > st->dseq ? st->wseq : 0;
}

void store_set_events(struct store *st, store_event_h *h, void *arg)
{
	st->ev_h = h;
	st->ev_arg = h ? arg : NULL;
}

void store_set_owner(struct store *st, const char *node, int64_t epoch)
{
	char *copy = NULL;

	if (node && !(copy = strdup(node)))
		return; /* keeps the last owner: its fence refuses rather than lets in */
	free(st->owner);
	st->owner = copy;
	st->epoch = epoch;
	if (epoch == 0 && st->ops->discard)
		st->ops->discard(st);
}

int store_begin(struct store *st)
{
	return st->ops->begin(st);
}

int store_commit(struct store *st)
{
	return st->ops->commit(st);
}

int store_flush(struct store *st)
{
	return st->ops->flush(st);
}

int store_sub_put(struct store *st, const struct store_sub *s)
{
	if (!s->watcher || !s->presentity || !s->phase)
		return -EINVAL;
	return st->ops->sub_put(st, s);
}

int store_sub_del(struct store *st, int dir, const char *watcher, const char *presentity)
{
	if (!watcher || !presentity)
		return -ENOENT; /* no row has a NULL key */
	return st->ops->sub_del(st, dir, watcher, presentity);
}

int store_sub_raise_cseq(struct store *st, uint32_t delta)
{
	return st->ops->sub_raise_cseq(st, delta);
}

int store_sub_each(struct store *st, store_sub_h *h, void *arg)
{
	return st->ops->sub_each(st, h, arg);
}

int store_pres_put(struct store *st, const struct store_pres *p)
{
	if (!p->entity || !p->resource || !p->activity)
		return -EINVAL;
	return st->ops->pres_put(st, p);
}

int store_pres_del(struct store *st, const char *entity, const char *resource)
{
	if (!entity || !resource)
		return -ENOENT;
	return st->ops->pres_del(st, entity, resource);
}

int store_pres_each(struct store *st, store_pres_h *h, void *arg)
{
	return st->ops->pres_each(st, h, arg);
}

int store_im_put(struct store *st, const struct store_im *im)
{
	if (!im->call_id || !im->sip_uri || !im->jid || !im->thread)
		return -EINVAL;
	return st->ops->im_put(st, im);
}

int store_im_del(struct store *st, const char *call_id)
{
	if (!call_id)
		return -ENOENT;
	return st->ops->im_del(st, call_id);
}

int store_im_each(struct store *st, store_im_h *h, void *arg)
{
	return st->ops->im_each(st, h, arg);
}

const char *store_errmsg(const struct store *st)
{
	return st->ops->errmsg(st);
}

#include "presbridge/state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "presbridge/hmap.h"
#include "presbridge/sbuf.h"

/* Index keys join fields with the ASCII unit separator: addresses, tags and
 * Call-IDs have passed validation that refuses control characters. */
#define SEP "\x1f"

struct plist {
	char *presentity;
	struct state_sub **v;
	size_t n, cap;
};

struct wcount {
	char *watcher;
	size_t n;
};

struct state {
	struct store *store;
	struct state_limits lim;
	struct hmap subs;      /* key -> state_sub */
	struct hmap sub_dlg;   /* call_id SEP local_tag -> state_sub */
	struct hmap by_pres;   /* presentity -> plist */
	struct hmap watchers;  /* watcher -> wcount */
	struct hmap pres;      /* entity -> state_pres */
	struct hmap ims;       /* call_id -> state_im */
	struct hmap im_thread; /* jid SEP thread -> state_im */
};

static void seed(struct hmap *m)
{
	uint64_t k[2] = {0x9e3779b97f4a7c15ULL, 0xbf58476d1ce4e5b9ULL};
	/* Without randomness the map still works; it only loses its defence
	 * against chosen collisions, so a failure here is not fatal. */
	if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k))
		k[0] ^= (uint64_t)(uintptr_t)m;
	hmap_init(m, k[0], k[1]);
}

static char *join3(const char *a, const char *b, const char *c)
{
	struct sbuf sb;
	sbuf_init(&sb);
	sbuf_puts(&sb, a);
	sbuf_puts(&sb, SEP);
	sbuf_puts(&sb, b);
	if (c) {
		sbuf_puts(&sb, SEP);
		sbuf_puts(&sb, c);
	}
	return sbuf_take(&sb, NULL);
}

static char *sub_key(enum sub_dir dir, const char *watcher, const char *presentity)
{
	return join3(dir == SUB_DIR_SIP_WATCHER ? "s" : "x", watcher, presentity);
}

int state_set_str(char **field, const char *v)
{
	char *n = NULL;
	if (v && !(n = strdup(v)))
		return -ENOMEM;
	free(*field);
	*field = n;
	return 0;
}

static void sub_free(struct state_sub *sub)
{
	free(sub->watcher);
	free(sub->presentity);
	free(sub->peer);
	free(sub->call_id);
	free(sub->local_tag);
	free(sub->remote_tag);
	free(sub->remote_target);
	free(sub->route_set);
	free(sub->key);
	free(sub->dlg_key);
	free(sub);
}

static void im_free(struct state_im *im)
{
	free(im->call_id);
	free(im->local_tag);
	free(im->remote_tag);
	free(im->sip_uri);
	free(im->jid);
	free(im->thread);
	free(im->remote_target);
	free(im->route_set);
	free(im->thread_key);
	free(im);
}

static void pres_free(struct state_pres *p)
{
	for (size_t i = 0; i < p->nres; i++) {
		free(p->res[i].resource);
		free(p->res[i].note);
	}
	free(p->res);
	free(p->entity);
	free(p);
}

void state_free(struct state *s)
{
	void *v;
	size_t pos;

	if (!s)
		return;
	for (pos = 0; (v = hmap_next(&s->subs, &pos));)
		sub_free(v);
	for (pos = 0; (v = hmap_next(&s->by_pres, &pos));) {
		struct plist *pl = v;
		free(pl->presentity);
		free(pl->v);
		free(pl);
	}
	for (pos = 0; (v = hmap_next(&s->watchers, &pos));) {
		free(((struct wcount *)v)->watcher);
		free(v);
	}
	for (pos = 0; (v = hmap_next(&s->pres, &pos));)
		pres_free(v);
	for (pos = 0; (v = hmap_next(&s->ims, &pos));)
		im_free(v);
	hmap_free(&s->subs);
	hmap_free(&s->sub_dlg);
	hmap_free(&s->by_pres);
	hmap_free(&s->watchers);
	hmap_free(&s->pres);
	hmap_free(&s->ims);
	hmap_free(&s->im_thread);
	free(s);
}

void state_set_limits(struct state *s, const struct state_limits *lim)
{
	s->lim = *lim;
}

/* ---- subscription indexes ---- */

/* The by-presentity index is by user: a full JID (a SUBSCRIBE to one device's
 * GRUU, RFC 7247 section 6.3) is filed under its bare JID. SIP URIs are kept
 * whole (a '/' may be in a SIP user part). */
static size_t pres_index_len(const char *presentity)
{
	if (strncmp(presentity, "sip:", 4) == 0)
		return strlen(presentity);
	return strcspn(presentity, "/");
}

static int index_presentity(struct state *s, struct state_sub *sub)
{
	size_t klen = pres_index_len(sub->presentity);
	struct plist *pl = hmap_get(&s->by_pres, sub->presentity, klen);
	if (!pl) {
		pl = calloc(1, sizeof(*pl));
		if (!pl || !(pl->presentity = strndup(sub->presentity, klen))) {
			free(pl);
			return -ENOMEM;
		}
		if (hmap_put(&s->by_pres, pl->presentity, strlen(pl->presentity), pl)) {
			free(pl->presentity);
			free(pl);
			return -ENOMEM;
		}
	}
	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? pl->cap * 2 : 4;
		struct state_sub **v = realloc(pl->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		pl->v = v;
		pl->cap = cap;
	}
	sub->by_pres_slot = pl->n;
	pl->v[pl->n++] = sub;
	return 0;
}

static void unindex_presentity(struct state *s, struct state_sub *sub)
{
	struct plist *pl =
	    hmap_get(&s->by_pres, sub->presentity, pres_index_len(sub->presentity));
	if (!pl || sub->by_pres_slot >= pl->n || pl->v[sub->by_pres_slot] != sub)
		return;
	pl->v[sub->by_pres_slot] = pl->v[--pl->n];
	pl->v[sub->by_pres_slot]->by_pres_slot = sub->by_pres_slot;
	if (pl->n == 0) {
		hmap_del(&s->by_pres, pl->presentity, strlen(pl->presentity));
		free(pl->presentity);
		free(pl->v);
		free(pl);
	}
}

static int count_watcher(struct state *s, const char *watcher, int delta)
{
	struct wcount *w = hmap_get(&s->watchers, watcher, strlen(watcher));
	if (!w) {
		if (delta < 0)
			return 0;
		w = calloc(1, sizeof(*w));
		if (!w || !(w->watcher = strdup(watcher))) {
			free(w);
			return -ENOMEM;
		}
		if (hmap_put(&s->watchers, w->watcher, strlen(w->watcher), w)) {
			free(w->watcher);
			free(w);
			return -ENOMEM;
		}
	}
	if (delta > 0)
		w->n++;
	else if (w->n > 0 && --w->n == 0) {
		hmap_del(&s->watchers, w->watcher, strlen(w->watcher));
		free(w->watcher);
		free(w);
	}
	return 0;
}

size_t state_sub_count(const struct state *s)
{
	return s->subs.n;
}

size_t state_sub_count_of_watcher(const struct state *s, const char *watcher)
{
	const struct wcount *w = hmap_get(&s->watchers, watcher, strlen(watcher));
	return w ? w->n : 0;
}

struct state_sub *state_sub_get(const struct state *s, enum sub_dir dir,
                                const char *watcher, const char *presentity)
{
	char *key = sub_key(dir, watcher, presentity);
	struct state_sub *sub = key ? hmap_get(&s->subs, key, strlen(key)) : NULL;
	free(key);
	return sub;
}

/* Link a fully built sub into every index; on failure nothing stays linked. */
static int link_sub(struct state *s, struct state_sub *sub)
{
	int e = hmap_put(&s->subs, sub->key, strlen(sub->key), sub);
	if (e)
		return e;
	e = index_presentity(s, sub);
	if (!e)
		e = count_watcher(s, sub->watcher, +1);
	if (!e && sub->dlg_key)
		e = hmap_put(&s->sub_dlg, sub->dlg_key, strlen(sub->dlg_key), sub);
	if (e) {
		hmap_del(&s->subs, sub->key, strlen(sub->key));
		unindex_presentity(s, sub);
	}
	return e;
}

int state_sub_add(struct state *s, enum sub_dir dir, const char *watcher,
                  const char *presentity, struct state_sub **subp)
{
	if (state_sub_get(s, dir, watcher, presentity))
		return -EEXIST;
	if (s->lim.max_subs && s->subs.n >= s->lim.max_subs)
		return -ENOSPC;
	if (s->lim.max_subs_per_user &&
	    state_sub_count_of_watcher(s, watcher) >= s->lim.max_subs_per_user)
		return -EDQUOT;
	struct state_sub *sub = calloc(1, sizeof(*sub));
	if (!sub)
		return -ENOMEM;
	sub->st.dir = dir;
	sub->st.phase = SUB_IDLE;
	sub->watcher = strdup(watcher);
	sub->presentity = strdup(presentity);
	sub->key = sub_key(dir, watcher, presentity);
	if (!sub->watcher || !sub->presentity || !sub->key || link_sub(s, sub)) {
		sub_free(sub);
		return -ENOMEM;
	}
	*subp = sub;
	return 0;
}

int state_sub_set_dialog(struct state *s, struct state_sub *sub, const char *call_id,
                         const char *local_tag, const char *remote_tag)
{
	char *key = NULL;

	if (call_id && !(key = join3(call_id, local_tag ? local_tag : "", NULL)))
		return -ENOMEM;
	if (key && hmap_get(&s->sub_dlg, key, strlen(key)) &&
	    hmap_get(&s->sub_dlg, key, strlen(key)) != sub) {
		free(key);
		return -EEXIST;
	}
	if (sub->dlg_key) {
		hmap_del(&s->sub_dlg, sub->dlg_key, strlen(sub->dlg_key));
		free(sub->dlg_key);
		sub->dlg_key = NULL;
	}
	if (state_set_str(&sub->call_id, call_id) ||
	    state_set_str(&sub->local_tag, local_tag) ||
	    state_set_str(&sub->remote_tag, remote_tag)) {
		free(key);
		return -ENOMEM;
	}
	if (key) {
		if (hmap_put(&s->sub_dlg, key, strlen(key), sub)) {
			free(key);
			return -ENOMEM;
		}
		sub->dlg_key = key;
	}
	return 0;
}

struct state_sub *state_sub_by_dialog(const struct state *s, const char *call_id,
                                      const char *local_tag)
{
	char *key = join3(call_id, local_tag ? local_tag : "", NULL);
	struct state_sub *sub = key ? hmap_get(&s->sub_dlg, key, strlen(key)) : NULL;
	free(key);
	return sub;
}

int state_sub_save(struct state *s, const struct state_sub *sub)
{
	struct store_sub r = {
	    .dir = sub->st.dir,
	    .watcher = sub->watcher,
	    .presentity = sub->presentity,
	    .phase = sub_phase_name(sub->st.phase),
	    .retries = sub->st.retries,
	    .peer = sub->peer,
	    .call_id = sub->call_id,
	    .local_tag = sub->local_tag,
	    .remote_tag = sub->remote_tag,
	    .local_cseq = sub->local_cseq,
	    .remote_cseq = sub->remote_cseq,
	    .remote_target = sub->remote_target,
	    .route_set = sub->route_set,
	    .expires_at = sub->expires_at,
	    .refresh_at = sub->refresh_at,
	};
	return store_sub_put(s->store, &r);
}

int state_sub_drop(struct state *s, struct state_sub *sub)
{
	int e = store_sub_del(s->store, sub->st.dir, sub->watcher, sub->presentity);
	if (e == -ENOENT)
		e = 0; /* never saved: it was refused before its first phase */
	hmap_del(&s->subs, sub->key, strlen(sub->key));
	if (sub->dlg_key)
		hmap_del(&s->sub_dlg, sub->dlg_key, strlen(sub->dlg_key));
	unindex_presentity(s, sub);
	count_watcher(s, sub->watcher, -1);
	sub_free(sub);
	return e;
}

struct state_sub *const *state_subs_of(const struct state *s, const char *presentity,
                                       size_t *np)
{
	const struct plist *pl = hmap_get(&s->by_pres, presentity, strlen(presentity));
	*np = pl ? pl->n : 0;
	return pl ? pl->v : NULL;
}

void state_sub_each(struct state *s, state_sub_h *h, void *arg)
{
	size_t pos = 0;
	struct state_sub *sub;
	/* hmap_next tolerates removing the entry just returned. */
	while ((sub = hmap_next(&s->subs, &pos)))
		h(sub, arg);
}

/* ---- presence cache ---- */

const struct state_pres *state_pres_get(const struct state *s, const char *entity)
{
	return hmap_get(&s->pres, entity, strlen(entity));
}

static struct state_pres *pres_entity(struct state *s, const char *entity)
{
	struct state_pres *p = hmap_get(&s->pres, entity, strlen(entity));
	if (p)
		return p;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->entity = strdup(entity))) {
		free(p);
		return NULL;
	}
	if (hmap_put(&s->pres, p->entity, strlen(p->entity), p)) {
		pres_free(p);
		return NULL;
	}
	return p;
}

/* Apply one resource to the in-memory cache only. */
static int pres_apply(struct state_pres *p, const char *resource, bool open,
                      enum pres_activity act, const char *note, int priority, bool device,
                      int64_t now)
{
	size_t i;
	for (i = 0; i < p->nres; i++)
		if (strcmp(p->res[i].resource, resource) == 0)
			break;
	if (!open) {
		if (i < p->nres) {
			free(p->res[i].resource);
			free(p->res[i].note);
			p->res[i] = p->res[--p->nres];
		}
		return 0;
	}
	if (i == p->nres) {
		if (p->nres == PRES_MAX_ENTRIES)
			return -E2BIG;
		struct state_res *v = realloc(p->res, (p->nres + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->res = v;
		memset(&v[i], 0, sizeof(v[i]));
		if (!(v[i].resource = strdup(resource)))
			return -ENOMEM;
		p->nres++;
	}
	struct state_res *r = &p->res[i];
	if (state_set_str(&r->note, note ? note : ""))
		return -ENOMEM;
	r->open = true;
	r->activity = act;
	r->priority = priority;
	r->device = device;
	r->updated = now;
	return 0;
}

int state_pres_set(struct state *s, const char *entity, const struct pres_entry *e,
                   int64_t now)
{
	struct state_pres *p = pres_entity(s, entity);
	if (!p)
		return -ENOMEM;
	bool open = e->open && e->activity != PRES_ACT_OFFLINE;
	int err =
	    pres_apply(p, e->id, open, e->activity, e->note, e->priority, e->device, now);
	if (err)
		return err;
	if (!open) {
		err = store_pres_del(s->store, entity, e->id);
		return err == -ENOENT ? 0 : err;
	}
	struct store_pres r = {
	    .entity = entity,
	    .resource = e->id,
	    .open = true,
	    .activity = pres_activity_name(e->activity),
	    .note = e->note,
	    .priority = e->priority,
	    .device = e->device,
	    .updated = now,
	};
	return store_pres_put(s->store, &r);
}

void state_pres_model(const struct state *s, const char *entity, struct pres *out)
{
	const struct state_pres *p = state_pres_get(s, entity);
	pres_init(out);
	if (!p)
		return;
	for (size_t i = 0; i < p->nres; i++) {
		struct pres_entry e;
		memset(&e, 0, sizeof(e));
		snprintf(e.id, sizeof(e.id), "%s", p->res[i].resource);
		e.open = p->res[i].open;
		e.activity = p->res[i].activity;
		pres_entry_set_note(&e, p->res[i].note, strlen(p->res[i].note));
		e.priority = p->res[i].priority;
		e.device = p->res[i].device;
		pres_update(out, &e);
	}
}

/* ---- IM sessions ---- */

static int link_im(struct state *s, struct state_im *im)
{
	if (!(im->thread_key = join3(im->jid, im->thread, NULL)))
		return -ENOMEM;
	int e = hmap_put(&s->ims, im->call_id, strlen(im->call_id), im);
	if (e)
		return e;
	e = hmap_put(&s->im_thread, im->thread_key, strlen(im->thread_key), im);
	if (e)
		hmap_del(&s->ims, im->call_id, strlen(im->call_id));
	return e;
}

int state_im_add(struct state *s, const char *call_id, const char *sip_uri,
                 const char *jid, const char *thread, bool sip_initiated,
                 struct state_im **imp)
{
	if (hmap_get(&s->ims, call_id, strlen(call_id)))
		return -EEXIST;
	struct state_im *im = calloc(1, sizeof(*im));
	if (!im)
		return -ENOMEM;
	im->call_id = strdup(call_id);
	im->sip_uri = strdup(sip_uri);
	im->jid = strdup(jid);
	im->thread = strdup(thread);
	im->sip_initiated = sip_initiated;
	int e = (!im->call_id || !im->sip_uri || !im->jid || !im->thread)
	            ? -ENOMEM
	            : link_im(s, im);
	if (e) {
		im_free(im);
		return e;
	}
	*imp = im;
	return 0;
}

struct state_im *state_im_by_dialog(const struct state *s, const char *call_id)
{
	return hmap_get(&s->ims, call_id, strlen(call_id));
}

struct state_im *state_im_by_thread(const struct state *s, const char *jid,
                                    const char *thread)
{
	char *key = join3(jid, thread, NULL);
	struct state_im *im = key ? hmap_get(&s->im_thread, key, strlen(key)) : NULL;
	free(key);
	return im;
}

int state_im_save(struct state *s, const struct state_im *im)
{
	struct store_im r = {
	    .call_id = im->call_id,
	    .local_tag = im->local_tag,
	    .remote_tag = im->remote_tag,
	    .sip_uri = im->sip_uri,
	    .jid = im->jid,
	    .thread = im->thread,
	    .sip_initiated = im->sip_initiated,
	    .local_cseq = im->local_cseq,
	    .remote_target = im->remote_target,
	    .route_set = im->route_set,
	    .last_activity = im->last_activity,
	};
	return store_im_put(s->store, &r);
}

int state_im_drop(struct state *s, struct state_im *im)
{
	int e = store_im_del(s->store, im->call_id);
	hmap_del(&s->ims, im->call_id, strlen(im->call_id));
	hmap_del(&s->im_thread, im->thread_key, strlen(im->thread_key));
	im_free(im);
	return e == -ENOENT ? 0 : e;
}

size_t state_im_count(const struct state *s)
{
	return s->ims.n;
}

void state_im_each(struct state *s, void (*h)(struct state_im *im, void *arg), void *arg)
{
	size_t pos = 0;
	struct state_im *im;
	while ((im = hmap_next(&s->ims, &pos)))
		h(im, arg);
}

/* ---- loading ---- */

struct loader {
	struct state *s;
	size_t skipped;
};

static int load_sub(const struct store_sub *r, void *arg)
{
	struct loader *ld = arg;
	struct state_sub *sub;
	enum sub_phase phase;

	if ((r->dir != SUB_DIR_SIP_WATCHER && r->dir != SUB_DIR_XMPP_WATCHER) ||
	    sub_phase_parse(r->phase, &phase) != 0) {
		ld->skipped++;
		return 0;
	}
	sub = calloc(1, sizeof(*sub));
	if (!sub)
		return -ENOMEM;
	sub->st.dir = (enum sub_dir)r->dir;
	sub->st.phase = phase;
	sub->st.retries = r->retries;
	sub->local_cseq = r->local_cseq;
	sub->remote_cseq = r->remote_cseq;
	sub->expires_at = r->expires_at;
	sub->refresh_at = r->refresh_at;
	int e = 0;
	if (state_set_str(&sub->watcher, r->watcher) ||
	    state_set_str(&sub->presentity, r->presentity) ||
	    state_set_str(&sub->peer, r->peer) ||
	    state_set_str(&sub->call_id, r->call_id) ||
	    state_set_str(&sub->local_tag, r->local_tag) ||
	    state_set_str(&sub->remote_tag, r->remote_tag) ||
	    state_set_str(&sub->remote_target, r->remote_target) ||
	    state_set_str(&sub->route_set, r->route_set) ||
	    !(sub->key = sub_key(sub->st.dir, r->watcher, r->presentity)) ||
	    (r->call_id &&
	     !(sub->dlg_key = join3(r->call_id, r->local_tag ? r->local_tag : "", NULL))))
		e = -ENOMEM;
	if (!e)
		e = link_sub(ld->s, sub);
	if (e) {
		sub_free(sub);
		return e == -EEXIST ? 0 : e;
	}
	return 0;
}

static int load_pres(const struct store_pres *r, void *arg)
{
	struct loader *ld = arg;
	enum pres_activity act;
	if (pres_activity_parse(r->activity, &act) != 0) {
		ld->skipped++;
		return 0;
	}
	struct state_pres *p = pres_entity(ld->s, r->entity);
	if (!p)
		return -ENOMEM;
	int e = pres_apply(p, r->resource, r->open, act, r->note, r->priority, r->device,
	                   r->updated);
	return e == -E2BIG ? 0 : e;
}

static int load_im(const struct store_im *r, void *arg)
{
	struct loader *ld = arg;
	struct state_im *im;
	int e = state_im_add(ld->s, r->call_id, r->sip_uri, r->jid, r->thread,
	                     r->sip_initiated, &im);
	if (e)
		return e == -EEXIST ? 0 : e;
	im->local_cseq = r->local_cseq;
	im->last_activity = r->last_activity;
	if (state_set_str(&im->local_tag, r->local_tag) ||
	    state_set_str(&im->remote_tag, r->remote_tag) ||
	    state_set_str(&im->remote_target, r->remote_target) ||
	    state_set_str(&im->route_set, r->route_set))
		return -ENOMEM;
	return 0;
}

int state_open(struct state **sp, struct store *store, size_t *skippedp)
{
	struct state *s = calloc(1, sizeof(*s));
	struct loader ld = {.s = s};

	if (!s)
		return -ENOMEM;
	s->store = store;
	seed(&s->subs);
	seed(&s->sub_dlg);
	seed(&s->by_pres);
	seed(&s->watchers);
	seed(&s->pres);
	seed(&s->ims);
	seed(&s->im_thread);
	int e = store_sub_raise_cseq(store, STATE_CSEQ_HEADROOM);
	if (!e)
		e = store_sub_each(store, load_sub, &ld);
	if (!e)
		e = store_pres_each(store, load_pres, &ld);
	if (!e)
		e = store_im_each(store, load_im, &ld);
	if (e) {
		state_free(s);
		return e;
	}
	if (skippedp)
		*skippedp = ld.skipped;
	*sp = s;
	return 0;
}

/*
 * Dialogs (RFC 3261 section 12): subscriptions and IM sessions. A dialog is
 * named by Call-ID, local tag and remote tag; it keeps the remote target, the
 * route set and both CSeq counters. The dialog of an INVITE answered by the
 * bridge retransmits its 2xx over UDP until the ACK (section 13.3.1.4).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/log.h"
#include "presbridge/sbuf.h"

#include "sip_int.h"

static uint32_t cid_hash(const char *call_id)
{
	uint32_t h = 2166136261u;
	for (const char *p = call_id; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 16777619u;
	}
	return h;
}

static struct sipd **cid_bucket(struct sipleg *sl, const char *call_id)
{
	return &sl->dlg_by_cid[cid_hash(call_id) & (sl->dlg_nb - 1)];
}

static struct sipd **id_bucket(struct sipleg *sl, uint64_t id)
{
	return &sl->dlg_by_id[id & (sl->dlg_nb - 1)];
}

/* Both tables at nb buckets (a power of two), every dialog chained anew. */
static int dlg_rehash(struct sipleg *sl, size_t nb)
{
	struct sipd **by_cid = calloc(nb, sizeof(*by_cid));
	struct sipd **by_id = calloc(nb, sizeof(*by_id));
	if (!by_cid || !by_id) {
		free(by_cid);
		free(by_id);
		return -ENOMEM;
	}
	free(sl->dlg_by_cid);
	free(sl->dlg_by_id);
	sl->dlg_by_cid = by_cid;
	sl->dlg_by_id = by_id;
	sl->dlg_nb = nb;
	for (struct sipd *d = sl->dlgs; d; d = d->next) {
		struct sipd **ib = id_bucket(sl, d->id);
		d->hnext_id = *ib;
		*ib = d;
		if (d->call_id) {
			struct sipd **cb = cid_bucket(sl, d->call_id);
			d->hnext_cid = *cb;
			*cb = d;
		}
	}
	return 0;
}

static void unchain(struct sipd **pp, struct sipd *d, bool by_cid)
{
	for (; *pp; pp = by_cid ? &(*pp)->hnext_cid : &(*pp)->hnext_id)
		if (*pp == d) {
			*pp = by_cid ? d->hnext_cid : d->hnext_id;
			return;
		}
}

struct sipd *sip_dlg_new(struct sipleg *sl, const char *call_id, const char *local_tag,
                         const char *remote_tag, const char *local_uri,
                         const char *remote_uri, const char *remote_target,
                         const char *peer, bool invite)
{
	/* Up to two dialogs a bucket on average: 65,536 buckets hold 131,072. */
	if (!sl->dlg_by_cid || sl->ndlgs >= 2 * sl->dlg_nb) {
		size_t nb = sl->dlg_by_cid ? 2 * sl->dlg_nb : SIP_DLG_HASH_MIN;
		if (dlg_rehash(sl, nb) != 0 && !sl->dlg_by_cid)
			return NULL; /* a full table still works, only slower */
	}
	struct sipd *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->sl = sl;
	d->id = ++sl->next_id;
	d->call_id = strdup(call_id);
	d->local_tag = strdup(local_tag);
	d->remote_tag = strdup(remote_tag);
	d->local_uri = strdup(local_uri);
	d->remote_uri = strdup(remote_uri);
	d->remote_target = strdup(remote_target);
	d->invite = invite;
	snprintf(d->peer, sizeof(d->peer), "%s", peer ? peer : "");
	d->next = sl->dlgs;
	if (sl->dlgs)
		sl->dlgs->prev = d;
	sl->dlgs = d;
	sl->ndlgs++;
	struct sipd **ib = id_bucket(sl, d->id);
	d->hnext_id = *ib;
	*ib = d;
	if (!d->call_id || !d->local_tag || !d->remote_tag || !d->local_uri ||
	    !d->remote_uri || !d->remote_target) {
		sipd_terminate(d);
		return NULL;
	}
	struct sipd **cb = cid_bucket(sl, d->call_id);
	d->hnext_cid = *cb;
	*cb = d;
	log_debug("sip", "dialog %s (local tag %s, remote tag %s) with peer %s created",
	          call_id, local_tag, remote_tag, d->peer);
	return d;
}

int sip_dlg_set_routes(struct sipd *d, const char *const *rr, size_t n, bool reverse)
{
	if (!n)
		return 0;
	char **v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		v[i] = strdup(rr[reverse ? n - 1 - i : i]);
		if (!v[i]) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return -ENOMEM;
		}
	}
	d->routes = v;
	d->nroutes = n;
	return 0;
}

int sip_dlg_route(const struct sipd *d, struct sip_dlg_route *r)
{
	memset(r, 0, sizeof(*r));
	r->ruri = d->remote_target;
	r->routes = (const char *const *)d->routes;
	r->nroutes = d->nroutes;
	if (!d->nroutes || strstr(d->routes[0], ";lr"))
		return 0;
	const char *first = d->routes[0];
	const char *lt = strchr(first, '<'), *gt = lt ? strchr(lt, '>') : NULL;
	r->own_ruri = lt && gt ? strndup(lt + 1, (size_t)(gt - lt - 1)) : strdup(first);
	size_t tl = strlen(d->remote_target) + 3;
	r->own_last = malloc(tl);
	r->own_list = calloc(d->nroutes, sizeof(*r->own_list));
	if (!r->own_ruri || !r->own_last || !r->own_list) {
		sip_dlg_route_free(r);
		return -ENOMEM;
	}
	snprintf(r->own_last, tl, "<%s>", d->remote_target);
	for (size_t i = 1; i < d->nroutes; i++)
		r->own_list[i - 1] = d->routes[i];
	r->own_list[d->nroutes - 1] = r->own_last;
	r->ruri = r->own_ruri;
	r->routes = r->own_list;
	return 0;
}

void sip_dlg_route_free(struct sip_dlg_route *r)
{
	free(r->own_ruri);
	free(r->own_last);
	free(r->own_list);
	memset(r, 0, sizeof(*r));
}

struct sipd *sip_dlg_by_id(struct sipleg *sl, uint64_t id)
{
	if (!sl->dlg_by_id)
		return NULL;
	for (struct sipd *d = *id_bucket(sl, id); d; d = d->hnext_id)
		if (d->id == id)
			return d;
	return NULL;
}

struct sipd *sipd_find(struct sipleg *sl, const char *call_id, const char *local_tag,
                       const char *remote_tag)
{
	if (!sl->dlg_by_cid)
		return NULL;
	for (struct sipd *d = *cid_bucket(sl, call_id); d; d = d->hnext_cid)
		if (strcmp(d->call_id, call_id) == 0 &&
		    strcmp(d->local_tag, local_tag) == 0 &&
		    strcmp(d->remote_tag, remote_tag) == 0)
			return d;
	return NULL;
}

struct sipd_inv *sip_dlg_inv(struct sipd *d)
{
	if (!d->inv)
		d->inv = calloc(1, sizeof(*d->inv));
	return d->inv;
}

static void ok_retx(void *arg)
{
	struct sipd *d = arg;
	struct sipd_inv *v = d->inv;
	struct sipleg *sl = d->sl;
	v->ok_elapsed += v->ok_iv;
	if (v->ok_elapsed >= SIP_TXN_TIMEOUT) {
		log_warn("sip",
		         "peer %s: no ACK for the 200 to INVITE (dialog %s) within %u s",
		         d->peer, d->call_id, SIP_TXN_TIMEOUT / 1000);
		return;
	}
	sip_send(sl, &v->ok_dest, v->ok, v->ok_len);
	v->ok_iv = v->ok_iv * 2 > SIP_T2 ? SIP_T2 : v->ok_iv * 2;
	loop_timer_start(sl->loop, &v->ok_t, v->ok_iv, ok_retx, d);
}

void sip_dlg_ok_start(struct sipd *d, const char *msg, size_t len, uint32_t cseq,
                      const struct sip_dest *dest)
{
	if (dest->tp != CONF_TP_UDP)
		return; /* streams are reliable: no 2xx retransmission */
	struct sipd_inv *v = sip_dlg_inv(d);
	char *copy = v ? malloc(len) : NULL;
	if (!copy)
		return;
	memcpy(copy, msg, len);
	free(v->ok);
	v->ok = copy;
	v->ok_len = len;
	v->ok_cseq = cseq;
	v->ok_dest = *dest;
	v->ok_iv = SIP_T1;
	v->ok_elapsed = 0;
	loop_timer_start(d->sl->loop, &v->ok_t, v->ok_iv, ok_retx, d);
}

void sip_dlg_ack_received(struct sipd *d, uint32_t cseq)
{
	struct sipd_inv *v = d->inv;
	if (v && v->ok && cseq == v->ok_cseq) {
		loop_timer_cancel(d->sl->loop, &v->ok_t);
		free(v->ok);
		v->ok = NULL;
	}
}

void sipd_terminate(struct sipd *d)
{
	if (!d)
		return;
	struct sipleg *sl = d->sl;
	if (d->prev)
		d->prev->next = d->next;
	else
		sl->dlgs = d->next;
	if (d->next)
		d->next->prev = d->prev;
	sl->ndlgs--;
	unchain(id_bucket(sl, d->id), d, false);
	if (d->call_id)
		unchain(cid_bucket(sl, d->call_id), d, true);
	/* A request of d may still await its answer: it loses the dialog, not
	 * its memory. */
	for (unsigned h = 0; d->nsrv && h < SIP_HASH; h++)
		for (struct sipleg_srv *st = sl->srv[h]; st; st = st->hnext)
			if (st->dlg == d)
				sip_srv_set_dlg(st, NULL);
	if (d->inv)
		loop_timer_cancel(sl->loop, &d->inv->ok_t);
	free(d->call_id);
	free(d->local_tag);
	free(d->remote_tag);
	free(d->local_uri);
	free(d->remote_uri);
	free(d->remote_target);
	for (size_t i = 0; i < d->nroutes; i++)
		free(d->routes[i]);
	free(d->routes);
	if (d->inv) {
		free(d->inv->ok);
		free(d->inv->ack);
		free(d->inv);
	}
	free(d);
}

void sip_dlg_from_to(const struct sipd *d, struct sbuf *from, struct sbuf *to)
{
	sbuf_printf(from, "<%s>;tag=%s", d->local_uri, d->local_tag);
	sbuf_printf(to, "<%s>%s%s", d->remote_uri, *d->remote_tag ? ";tag=" : "",
	            d->remote_tag);
}

void sip_dlg_stop(struct sipleg *sl)
{
	while (sl->dlgs)
		sipd_terminate(sl->dlgs);
	free(sl->dlg_by_cid);
	free(sl->dlg_by_id);
	sl->dlg_by_cid = sl->dlg_by_id = NULL;
	sl->dlg_nb = 0;
}

void sipd_set_arg(struct sipd *d, void *arg)
{
	d->arg = arg;
}

void *sipd_arg(const struct sipd *d)
{
	return d->arg;
}

const char *sipd_call_id(const struct sipd *d)
{
	return d->call_id;
}

const char *sipd_local_tag(const struct sipd *d)
{
	return d->local_tag;
}

const char *sipd_remote_tag(const struct sipd *d)
{
	return d->remote_tag;
}

const char *sipd_local_uri(const struct sipd *d)
{
	return d->local_uri;
}

const char *sipd_remote_uri(const struct sipd *d)
{
	return d->remote_uri;
}

const char *sipd_peer(const struct sipd *d)
{
	return d->peer;
}

size_t sipleg_dialog_count(const struct sipleg *sl)
{
	return sl->ndlgs;
}

uint32_t sipd_local_cseq(const struct sipd *d)
{
	return d->local_cseq;
}

const char *sipd_remote_target(const struct sipd *d)
{
	return d->remote_target;
}

char *sipd_route_set(const struct sipd *d)
{
	size_t len = 1;
	for (size_t i = 0; i < d->nroutes; i++)
		len += strlen(d->routes[i]) + 1;
	char *out = malloc(len);
	if (!out)
		return NULL;
	out[0] = '\0';
	for (size_t i = 0; i < d->nroutes; i++) {
		if (i)
			strcat(out, "\n");
		strcat(out, d->routes[i]);
	}
	return out;
}

struct sipd *sipd_restore(struct sipleg *sl, const struct sipd_saved *s)
{
	if (!s->call_id || !s->local_tag || !s->remote_tag || !s->local_uri ||
	    !s->remote_uri || !s->remote_target || !s->peer)
		return NULL;
	if (sipd_find(sl, s->call_id, s->local_tag, s->remote_tag))
		return NULL;
	struct sipd *d =
	    sip_dlg_new(sl, s->call_id, s->local_tag, s->remote_tag, s->local_uri,
	                s->remote_uri, s->remote_target, s->peer, s->invite);
	if (!d)
		return NULL;
	/* CSeq numbers sent since the last save are unknown; receivers refuse only
	 * lower numbers (RFC 3261 section 12.2.2), so resume well above the saved one.
	 * The peer's own counter restarts unknown: its next request sets it. */
	d->local_cseq = s->local_cseq + SIPD_CSEQ_RESUME_GAP;
	if (s->route_set && *s->route_set) {
		const char *rr[32];
		size_t n = 0;
		char *copy = strdup(s->route_set), *save = NULL;
		if (!copy) {
			sipd_terminate(d);
			return NULL;
		}
		for (char *t = strtok_r(copy, "\n", &save); t && n < 32;
		     t = strtok_r(NULL, "\n", &save))
			rr[n++] = t;
		int e = sip_dlg_set_routes(d, rr, n, false);
		free(copy);
		if (e) {
			sipd_terminate(d);
			return NULL;
		}
	}
	log_debug("sip", "dialog %s with peer %s restored", s->call_id, s->peer);
	return d;
}

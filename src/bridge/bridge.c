#include "bridge_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "presbridge/log.h"
#include "presbridge/sbuf.h"

int64_t br_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- XMPP helpers ---- */

xmpp_stanza_t *br_stanza(struct bridge *b, const char *name, const char *type,
                         const char *from, const char *to)
{
	xmpp_stanza_t *st = xmpp_stanza_new(xlink_stanza_ctx(b->xmpp));
	if (!st)
		return NULL;
	xmpp_stanza_set_name(st, name);
	if (type)
		xmpp_stanza_set_type(st, type);
	if (from)
		xmpp_stanza_set_from(st, from);
	if (to)
		xmpp_stanza_set_to(st, to);
	return st;
}

void br_stanza_text(struct bridge *b, xmpp_stanza_t *st, const char *name, const char *ns,
                    const char *text)
{
	xmpp_ctx_t *ctx = xlink_stanza_ctx(b->xmpp);
	xmpp_stanza_t *el = xmpp_stanza_new(ctx);
	xmpp_stanza_t *t = xmpp_stanza_new(ctx);
	if (el && t) {
		xmpp_stanza_set_name(el, name);
		if (ns)
			xmpp_stanza_set_ns(el, ns);
		xmpp_stanza_set_text(t, text);
		xmpp_stanza_add_child(el, t);
		xmpp_stanza_add_child(st, el);
	}
	if (t)
		xmpp_stanza_release(t);
	if (el)
		xmpp_stanza_release(el);
}

struct br_held {
	struct br_held *next;
	uint64_t need;
	xmpp_stanza_t *st;
};

static int xmpp_send_now(struct bridge *b, xmpp_stanza_t *st);

int br_xmpp_send(struct bridge *b, xmpp_stanza_t *st)
{
	/* Durability before acknowledgement, as the SIP leg's gate: a stanza
	 * never overtakes one held before it. */
	uint64_t need = store_pending(b->store);
	if (!need && b->xheld_tail)
		need = b->xheld_tail->need;
	if (!need)
		return xmpp_send_now(b, st);
	struct br_held *h = malloc(sizeof(*h));
	xmpp_stanza_t *copy = h ? xmpp_stanza_copy(st) : NULL;
	if (!copy) {
		free(h);
		return -ENOMEM;
	}
	h->next = NULL;
	h->need = need;
	h->st = copy;
	if (b->xheld_tail)
		b->xheld_tail->next = h;
	else
		b->xheld = h;
	b->xheld_tail = h;
	b->nxheld++;
	return 0;
}

static void xheld_release(struct bridge *b, uint64_t durable, bool send)
{
	while (b->xheld && (!send || b->xheld->need <= durable)) {
		struct br_held *h = b->xheld;
		b->xheld = h->next;
		if (!b->xheld)
			b->xheld_tail = NULL;
		b->nxheld--;
		if (send)
			xmpp_send_now(b, h->st);
		xmpp_stanza_release(h->st);
		free(h);
	}
}

static uint64_t sip_gate(void *arg)
{
	struct bridge *b = arg;
	return store_pending(b->store);
}

void bridge_durable(struct bridge *b, uint64_t seq)
{
	if (!b)
		return;
	sipleg_release(b->sip, seq);
	xheld_release(b, seq, true);
}

static int xmpp_send_now(struct bridge *b, xmpp_stanza_t *st)
{
	int e = xlink_send(b->xmpp, st);
	if (e) {
		const char *to = xmpp_stanza_get_to(st);
		log_warn(BR_MOD, "xmpp: %s to %s not sent: %s", xmpp_stanza_get_name(st),
		         to ? to : "?",
		         e == -ENOBUFS ? "the XMPP link is down and its queue is full"
		                       : strerror(-e));
	}
	return e;
}

void br_xmpp_error(struct bridge *b, const char *name, const char *from, const char *to,
                   const char *id, enum err_cond cond, const char *text)
{
	br_xmpp_error_data(b, name, from, to, id, cond, NULL, text);
}

void br_xmpp_error_data(struct bridge *b, const char *name, const char *from,
                        const char *to, const char *id, enum err_cond cond,
                        const char *data, const char *text)
{
	xmpp_ctx_t *ctx = xlink_stanza_ctx(b->xmpp);
	xmpp_stanza_t *st = br_stanza(b, name, "error", from, to);
	xmpp_stanza_t *err = xmpp_stanza_new(ctx);
	xmpp_stanza_t *c = xmpp_stanza_new(ctx);

	if (!st || !err || !c)
		goto out;
	if (id)
		xmpp_stanza_set_id(st, id);
	xmpp_stanza_set_name(err, "error");
	xmpp_stanza_set_type(err, err_type_name(err_cond_type(cond)));
	xmpp_stanza_set_name(c, err_cond_name(cond));
	xmpp_stanza_set_ns(c, ERR_NS_STANZAS);
	if (data) {
		xmpp_stanza_t *d = xmpp_stanza_new(ctx);
		if (d) {
			xmpp_stanza_set_text(d, data);
			xmpp_stanza_add_child(c, d);
			xmpp_stanza_release(d);
		}
	}
	xmpp_stanza_add_child(err, c);
	if (text)
		br_stanza_text(b, err, "text", ERR_NS_STANZAS, text);
	xmpp_stanza_add_child(st, err);
	br_xmpp_send(b, st);
out:
	if (c)
		xmpp_stanza_release(c);
	if (err)
		xmpp_stanza_release(err);
	if (st)
		xmpp_stanza_release(st);
}

/* ---- SIP helpers ---- */

void br_sip_refuse(struct bridge *b, struct sipleg_srv *srv, enum err_bridge why,
                   const char *detail)
{
	const struct err_refusal *r = err_bridge(why);
	char retry[16];
	struct sipm_hdr h = {"Retry-After", retry};
	(void)b;

	if (!srv || !r)
		return;
	snprintf(retry, sizeof(retry), "%u", r->retry_after);
	struct sipleg_reply rep = {
	    .code = r->sip_code,
	    .diagnostics = detail ? detail : r->explanation,
	    .hdrs = r->retry_after ? &h : NULL,
	    .nhdrs = r->retry_after ? 1 : 0,
	};
	sipleg_reply(srv, &rep, NULL);
}

bool br_xmpp_ready(struct bridge *b, struct sipleg_srv *srv, const char *sip_uri)
{
	char *jid = NULL;
	const char *domain = NULL;

	/* The SIP user's XMPP-side domain names the component link that carries it. */
	if (br_uri_to_jid(b, sip_uri, &jid, NULL) == 0)
		domain = strchr(jid, '@') ? strchr(jid, '@') + 1 : NULL;
	bool up = xlink_is_up(b->xmpp, domain);
	if (!up) {
		char retry[16];
		struct sipm_hdr h = {"Retry-After", retry};
		unsigned ra = xlink_retry_after(b->xmpp, domain);
		snprintf(retry, sizeof(retry), "%u", ra ? ra : 5);
		struct sipleg_reply rep = {
		    .code = err_bridge(ERR_BRIDGE_XMPP_DOWN)->sip_code,
		    .diagnostics = err_bridge(ERR_BRIDGE_XMPP_DOWN)->explanation,
		    .hdrs = &h,
		    .nhdrs = 1,
		};
		sipleg_reply(srv, &rep, NULL);
	}
	free(jid);
	return up;
}

/* ---- addresses ---- */

int br_uri_to_jid(struct bridge *b, const char *uri, char **jidp, enum addr_home *homep)
{
	return addr_sip_to_jid(b->cf->addr, uri, jidp, homep);
}

int br_jid_to_uri(struct bridge *b, const char *jid, char **urip, char **resourcep,
                  enum addr_home *homep)
{
	return addr_jid_to_sip(b->cf->addr, jid, urip, resourcep, homep);
}

int br_uri_to_full_jid(struct bridge *b, const char *uri, char **jidp,
                       enum addr_home *homep)
{
	return addr_sip_to_full_jid(b->cf->addr, uri, jidp, homep);
}

int br_jid_to_gruu(struct bridge *b, const char *jid, char **urip, enum addr_home *homep)
{
	return addr_jid_to_gruu(b->cf->addr, jid, urip, homep);
}

enum err_bridge br_addr_refusal(int err)
{
	return err == -ENOENT ? ERR_BRIDGE_DOMAIN_UNMAPPED : ERR_BRIDGE_ADDRESS_MALFORMED;
}

char *br_name_addr(const char *uri)
{
	struct sbuf sb;
	sbuf_init(&sb);
	sbuf_putc(&sb, '<');
	sbuf_puts(&sb, uri);
	sbuf_putc(&sb, '>');
	return sbuf_take(&sb, NULL);
}

/* ---- dispatch ---- */

typedef void(sip_method_h)(struct bridge *b, struct sipleg_srv *srv, struct sipm *req);

/* What the bridge does with each method the leg hands it; the leg itself answers
 * OPTIONS, CANCEL, ACK and anything malformed, unknown or untrusted. */
static const struct {
	const char *method;
	sip_method_h *h;
} sip_methods[] = {
    {"SUBSCRIBE", bp_sip_subscribe}, {"NOTIFY", bp_sip_notify},
    {"BENOTIFY", bp_sip_notify},     {"MESSAGE", bi_sip_message},
    {"INVITE", bi_sip_invite},       {"BYE", bi_sip_bye},
    {"INFO", bi_sip_info},
};

static void on_sip_request(struct sipleg_srv *srv, struct sipm *req, void *arg)
{
	struct bridge *b = arg;
	const char *m = sipm_method(req);

	for (size_t i = 0; i < sizeof(sip_methods) / sizeof(sip_methods[0]); i++)
		if (strcmp(m, sip_methods[i].method) == 0) {
			if (b->stopping && srv) {
				if (bp_sip_final_notify(b, srv, req))
					return;
				br_sip_refuse(b, srv, ERR_BRIDGE_SHUTTING_DOWN, NULL);
				return;
			}
			sip_methods[i].h(b, srv, req);
			return;
		}
	if (srv)
		sipleg_reply_code(srv, 501, "presbridge does not take this method");
}

static void on_sip_gone(struct sipleg_srv *srv, void *arg)
{
	(void)srv;
	(void)arg;
	/* Handlers answer synchronously; nothing keeps srv across loop turns. */
}

static int on_xmpp_stanza(const char *domain, xmpp_stanza_t *st, struct xlink_refusal *r,
                          void *arg)
{
	struct bridge *b = arg;
	const char *name = xmpp_stanza_get_name(st);
	(void)domain;

	if (b->stopping) {
		r->cond = err_bridge(ERR_BRIDGE_SHUTTING_DOWN)->cond;
		r->text = err_bridge(ERR_BRIDGE_SHUTTING_DOWN)->explanation;
		return XLINK_REFUSE;
	}
	if (strcmp(name, "presence") == 0)
		return bp_xmpp_presence(b, st, r);
	if (strcmp(name, "message") == 0)
		return bi_xmpp_message(b, st, r);
	return XLINK_TAKEN;
}

static void on_xmpp_state(const char *domain, bool up, void *arg)
{
	struct bridge *b = arg;
	log_info(BR_MOD, "XMPP link for %s is %s", domain, up ? "up" : "down");
	bp_link_state(b, domain, up);
}

/* Idle hook, registered after the legs' so it runs before theirs: the turn's
 * presence writes are committed before the turn's output leaves. */
static int br_idle(void *arg)
{
	struct bridge *b = arg;
	store_flush(b->store);
	return -1;
}

/* ---- lifecycle ---- */

/* The folder of the state file is created on first start, as a packaged daemon
 * would find it missing on a fresh install. */
static int ensure_parent(const char *path)
{
	char *dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	char *slash = strrchr(dir, '/');
	int e = 0;
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0750) != 0 && errno != EEXIST)
			e = -errno;
	}
	free(dir);
	return e;
}

int bridge_new(struct bridge **bp, struct loop *l, const struct conf *cf)
{
	struct store *st = NULL;
	const char *why = NULL;
	int e;

	if (strcmp(cf->state, ":memory:") != 0 && (e = ensure_parent(cf->state)) != 0) {
		log_error(BR_MOD, "state: cannot create the folder of %s: %s", cf->state,
		          strerror(-e));
		return e;
	}
	e = store_open(
	    &st, cf->state,
	    cf->state_sync == CONF_SYNC_FULL ? STORE_SYNC_FULL : STORE_SYNC_NORMAL, &why);
	if (e) {
		log_error(BR_MOD, "state: cannot open %s: %s", cf->state,
		          why ? why : "?");
		return e;
	}
	e = bridge_start_on(bp, l, cf, st, false);
	if (e)
		store_close(st);
	else
		(*bp)->own_store = true;
	return e;
}

int bridge_start_on(struct bridge **bp, struct loop *l, const struct conf *cf,
                    struct store *st, bool takeover)
{
	struct bridge *b = calloc(1, sizeof(*b));
	size_t skipped = 0;
	int e;

	if (!b)
		return -ENOMEM;
	b->cf = cf;
	b->loop = l;
	b->takeover = takeover;
	sub_limits_init(&b->sublim);
	b->msglim = MSG_LIMITS_DEFAULT;
	b->im_idle_ms = cf->im_idle_timeout * 1000u;
	b->store = st;
	bool sqlite = strcmp(store_backend(st), "sqlite") == 0;
	const char *where = sqlite ? cf->state : "the database";

	e = state_open(&b->state, b->store, &skipped);
	if (e) {
		log_error(BR_MOD, "state: cannot load %s: %s", where, strerror(-e));
		goto fail;
	}
	struct state_limits lim = {cf->max_subscriptions, cf->max_subscriptions_per_user};
	state_set_limits(b->state, &lim);
	if (skipped)
		log_warn(BR_MOD,
		         "state: %zu saved entries could not be read and were skipped",
		         skipped);
	log_info(BR_MOD, "state: %zu subscriptions and %zu IM sessions loaded from %s",
	         state_sub_count(b->state), state_im_count(b->state), where);

	struct xlink_handlers xh = {on_xmpp_state, on_xmpp_stanza, b};
	e = xlink_set_new(&b->xmpp, l, cf, &xh);
	if (e) {
		log_error(BR_MOD, "cannot start the XMPP leg: %s", strerror(-e));
		goto fail;
	}
	static const struct sipleg_handlers sh = {on_sip_request, on_sip_gone};
	e = sipleg_start(&b->sip, l, cf, &sh, b);
	if (e)
		goto fail; /* the leg logged why */
	if (!sqlite)       /* SQLite's writes are durable when their call returns */
		sipleg_set_gate(b->sip, sip_gate, b);
	e = loop_idle_add(l, br_idle, b);
	if (e)
		goto fail;
	bp_restore(b);
	bi_restore(b);
	*bp = b;
	return 0;
fail:
	bridge_free(b); /* st stays the caller's: own_store is false */
	return e;
}

int bridge_reload(struct bridge *b, const struct conf *cf)
{
	int e = sipleg_reload(b->sip, cf);
	if (e)
		return e;
	e = xlink_set_apply(b->xmpp, cf);
	if (e)
		return e;
	b->cf = cf;
	struct state_limits lim = {cf->max_subscriptions, cf->max_subscriptions_per_user};
	state_set_limits(b->state, &lim);
	b->im_idle_ms = cf->im_idle_timeout * 1000u;
	return 0;
}

static void stopped(void *arg)
{
	struct bridge *b = arg;
	if (b->done)
		b->done(b->done_arg);
}

/* SIP requests of the goodbye (NOTIFY terminated, BYE, SUBSCRIBE Expires: 0) get
 * a moment to leave before the XMPP streams close. */
static void stop_xmpp(void *arg)
{
	struct bridge *b = arg;
	xlink_set_stop(b->xmpp, stopped, b);
}

void bridge_stop(struct bridge *b, void (*done)(void *arg), void *arg)
{
	if (b->stopping) {
		loop_timer_cancel(b->loop, &b->stop_timer);
		done(arg);
		return;
	}
	b->stopping = true;
	b->done = done;
	b->done_arg = arg;
	store_begin(b->store);
	bp_shutdown(b);
	bi_shutdown(b);
	store_commit(b->store);
	loop_timer_start(b->loop, &b->stop_timer, 300, stop_xmpp, b);
}

void bridge_summary(const struct bridge *b, char *buf, size_t len)
{
	size_t links = xlink_count(b->xmpp), up = 0;
	for (size_t i = 0; i < links; i++)
		up += xlink_is_up(b->xmpp, xlink_domain(b->xmpp, i));
	size_t subs = state_sub_count(b->state), ims = state_im_count(b->state);
	size_t conns = sipleg_conn_count(b->sip);
	snprintf(
	    buf, len,
	    "%s; XMPP %zu of %zu %s up; SIP %zu connection%s; %zu subscription%s, %zu IM "
	    "session%s",
	    b->stopping ? "stopping" : "running", up, links,
	    b->cf->xmpp_transport == CONF_XMPP_S2S ? "federated domains" : "links", conns,
	    conns == 1 ? "" : "s", subs, subs == 1 ? "" : "s", ims, ims == 1 ? "" : "s");
}

void bridge_abandon(struct bridge *b)
{
	if (!b)
		return;
	size_t n = (b->sip ? sipleg_held(b->sip) : 0) + b->nxheld;
	if (n)
		log_info(BR_MOD,
		         "%zu messages not sent: their state never became durable", n);
	b->own_store = false;
	bridge_free(b); /* drops what is held, sending nothing */
}

void bridge_free(struct bridge *b)
{
	if (!b)
		return;
	xheld_release(b, 0, false);
	loop_timer_cancel(b->loop, &b->stop_timer);
	loop_idle_del(b->loop, br_idle, b);
	if (b->state) {
		bp_free(b);
		bi_free(b);
	}
	sipleg_stop(b->sip);
	xlink_set_free(b->xmpp);
	state_free(b->state);
	if (b->own_store)
		store_close(b->store);
	free(b);
}

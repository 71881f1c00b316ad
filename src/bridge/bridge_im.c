/*
 * bridge_im - instant messages across the bridge (RFC 7572), in both directions:
 *
 *   page mode     SIP MESSAGE outside a dialog (RFC 3428) <-> <message/>;
 *   session mode  as Lync does it: INVITE with "m=message 5060 sip null", the first
 *                 message in Ms-Text-Format, MESSAGE inside the dialog, BYE. One
 *                 session is one XMPP conversation (one <thread/>, XEP-0201);
 *   typing        RFC 3994 isComposing and Lync's KeyboardActivity INFO <->
 *                 XEP-0085 chat states.
 *
 * Which mode leaves toward SIP is the [peer] `im` setting of the recipient's domain;
 * what arrives from SIP is taken in either mode. Failures travel back to the sender
 * as the other side's error (RFC 7247 section 7 through err.h), never dropped.
 *
 * Sessions live in the state table (one record per dialog, with what a restart
 * needs to resume the dialog) and their run-time part (struct bi_sess) in im->rt.
 * An INVITE we send has no Call-ID the bridge knows until its 2xx creates the
 * dialog, so a session being invited exists only here, in the IM table, until
 * then. Sessions end with BYE after [bridge] im_idle_timeout without traffic.
 */
#include "bridge_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "presbridge/hmap.h"
#include "presbridge/log.h"
#include "presbridge/sbuf.h"
#include "presbridge/ttlmap.h"

/* Messages an XMPP user writes while the INVITE of a new session is pending wait
 * for its 2xx. A person types a handful in the second a server takes to answer;
 * the bound keeps a peer that never answers from holding memory. */
#define BI_QUEUE_MAX 16

/* Separates the parts of a (jid, sip_uri) key: neither a JID nor a URI holds it. */
#define BI_SEP "\x1f"

/* A session's record is saved again once this many requests went out in its
 * dialog since the last save: a restored dialog resumes SIPD_CSEQ_RESUME_GAP
 * above the saved CSeq, which must stay above every number already used. */
#define BI_SAVE_CSEQ_EVERY (SIPD_CSEQ_RESUME_GAP / 2)
/* ... and once its last activity is this much newer than the saved one, so that
 * a restart measures the idle time from (nearly) the right moment. */
#define BI_SAVE_ACTIVITY_MS 60000

/* A client's <thread/> longer than this is replaced by one of ours: it is kept in
 * the state table and echoed in every message of the session. */
#define BI_THREAD_MAX 256

/* Messages from SIP whose XMPP error would still reach their sender (RFC 3428
 * section 7: the bridge answers 202, and a later failure travels back as a
 * MESSAGE). An XMPP server answers an undeliverable message at once, or, toward
 * another domain, once its server-to-server attempt gives up (remote-server-
 * timeout, RFC 6120 section 8.3.3.17), well within two minutes; the count bounds
 * the memory (about 300 bytes each) whatever the traffic. */
#define BI_PEND_MAX    512
#define BI_PEND_TTL_MS 120000
/* SIP users who answered a typing notification with 415 (RFC 3994 section 4:
 * stop sending them); forgotten after an hour, when the user may have changed
 * clients, or when the table is full (oldest first). */
#define BI_NOTYPING_MAX    1024
#define BI_NOTYPING_TTL_MS 3600000

enum bi_phase {
	BI_INVITING, /* our INVITE is out; messages queue */
	BI_OPEN,     /* the dialog is up */
};

/* A message waiting for the session's 2xx. */
struct bi_queued {
	char *body; /* SIP form (msg_text_to_sip) */
	size_t len;
	char *xfrom;    /* the sender's full JID: where an error goes */
	char *xto;      /* the SIP user's JID as addressed: the error's from */
	char *id;       /* the stanza's id, NULL if none */
	char *lang;     /* Content-Language (RFC 7572 section 8), NULL if none */
	bool in_invite; /* carried by the INVITE's Ms-Text-Format */
};

struct bi_tab;

/* The run-time part of an IM session (state_im.rt). */
struct bi_sess {
	struct bi_tab *t;
	enum bi_phase phase;
	struct state_im *im; /* NULL while inviting */
	struct sipd *dlg;    /* NULL while inviting */
	char *jid;           /* the XMPP party, bare */
	char *sip_uri;       /* the SIP party */
	char *sip_jid;       /* the SIP party's JID */
	char *thread;
	char *pair;  /* jid BI_SEP sip_uri: its key in t->pairs */
	bool paired; /* the session XMPP messages without a known thread go to */
	bool sip_initiated;
	struct bi_queued q[BI_QUEUE_MAX];
	size_t nq;
	enum msg_typing typing_out; /* last typing state told the SIP side */
	bool no_typing;             /* the SIP side answered 415 to one */
	int chat_in;                /* last chat state told XMPP, -1: none */
	uint32_t saved_cseq;        /* local CSeq in the store */
	int64_t saved_activity;     /* last_activity in the store */
	struct loop_timer idle_t;
	struct bi_sess *prev, *next;
};

enum bi_req_kind {
	BI_REQ_PAGE,    /* page-mode MESSAGE: an error goes back to its sender */
	BI_REQ_INVITE,  /* the INVITE of a session */
	BI_REQ_SESSION, /* MESSAGE in a session: as page, and may end the session */
	BI_REQ_TYPING,  /* isComposing or KeyboardActivity: failures are only logged */
	BI_REQ_REPORT,  /* an undelivered-message report: failures are only logged */
	BI_REQ_COUNT
};

/* A request the bridge sent and whose outcome matters. */
struct bi_req {
	struct bi_tab *t;
	enum bi_req_kind kind;
	struct sipleg_clt *clt;
	struct bi_sess *s; /* NULL when none, or once the session has ended */
	char *xfrom;       /* the XMPP sender (full JID) */
	char *xto;         /* as addressed by it */
	char *id;
	char *sip_uri; /* the SIP recipient */
	struct bi_req *prev, *next;
};

/* A message relayed from SIP whose XMPP error is reported back (ttlmap value,
 * keyed by the stanza id the bridge gave it). */
struct bi_pend {
	char *sender_jid; /* the SIP sender's JID: the error's to */
	char *rcpt_jid;   /* the XMPP recipient, bare: the error's from */
	char *call_id;    /* its session's dialog; NULL in page mode */
	char *excerpt;    /* msg_excerpt of the text */
};

/* The IM half's run-time data for one bridge. */
struct bi_tab {
	struct bridge *b;
	struct bi_sess *sess;
	size_t nsess;
	struct bi_req *reqs;
	struct ttlmap pend;     /* stanza id -> struct bi_pend */
	struct ttlmap notyping; /* SIP URI -> NULL: no typing notifications */
	struct hmap pairs;      /* jid BI_SEP sip_uri -> the pair's current session */
	uint64_t k0, k1;        /* thread names: SipHash key */
	unsigned long serial;
};

static struct bi_tab *tab_of(const struct bridge *b)
{
	return b->im;
}

/* ---- small helpers ---- */

static char *join(const char *a, const char *b)
{
	struct sbuf sb;
	sbuf_init(&sb);
	sbuf_puts(&sb, a);
	sbuf_puts(&sb, BI_SEP);
	sbuf_puts(&sb, b);
	return sbuf_take(&sb, NULL);
}

static char *dup_or_null(const char *s, bool *oom)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

static char *bare_jid(const char *jid)
{
	return strndup(jid, strcspn(jid, "/"));
}

/* The domain of a "sip:user@domain" the address map wrote. */
static const char *uri_domain(const char *uri)
{
	const char *at = strrchr(uri, '@');
	return at ? at + 1 : uri;
}

/* Thread names are SipHash values under a per-process key: stable for a given
 * seed (a Call-ID), unguessable from outside, and free of any character XML or
 * a client could mind. */
static void make_thread(struct bi_tab *t, const char *seed, char *out, size_t len)
{
	uint64_t h = hmap_siphash(t->k0, t->k1, seed, strlen(seed));
	snprintf(out, len, "pb-%016llx", (unsigned long long)h);
}

/* ---- remembered messages ---- */

static void pend_free(void *arg)
{
	struct bi_pend *p = arg;
	free(p->sender_jid);
	free(p->rcpt_jid);
	free(p->call_id);
	free(p->excerpt);
	free(p);
}

/* ---- refusals ---- */

/* What the errors of the msg_* conversions and of xlink_send mean to the sender
 * (err_bridge rows); anything else is the bridge's own failure. */
static const struct {
	int err;
	enum err_bridge why;
} msg_errors[] = {
    {-E2BIG, ERR_BRIDGE_TOO_LARGE},   {-ENOTSUP, ERR_BRIDGE_UNSUPPORTED_MEDIA},
    {-EILSEQ, ERR_BRIDGE_BAD_BODY},   {-EBADMSG, ERR_BRIDGE_BAD_BODY},
    {-EINVAL, ERR_BRIDGE_BAD_BODY},   {-ENOENT, ERR_BRIDGE_DOMAIN_UNMAPPED},
    {-ENOBUFS, ERR_BRIDGE_XMPP_DOWN}, {-ESHUTDOWN, ERR_BRIDGE_SHUTTING_DOWN},
    {-ENOSPC, ERR_BRIDGE_LIMIT},      {-EMSGSIZE, ERR_BRIDGE_TOO_LARGE},
};

static enum err_bridge refusal_of(int err)
{
	for (size_t i = 0; i < sizeof(msg_errors) / sizeof(msg_errors[0]); i++)
		if (msg_errors[i].err == err)
			return msg_errors[i].why;
	return ERR_BRIDGE_INTERNAL;
}

static int xrefuse(struct xlink_refusal *r, enum err_bridge why)
{
	const struct err_refusal *row = err_bridge(why);
	r->cond = row->cond;
	r->text = row->explanation;
	return XLINK_REFUSE;
}

/* ---- stanzas toward XMPP ---- */

static void add_empty(struct bridge *b, xmpp_stanza_t *st, const char *name,
                      const char *ns)
{
	xmpp_stanza_t *el = xmpp_stanza_new(xlink_stanza_ctx(b->xmpp));
	if (!el)
		return;
	xmpp_stanza_set_name(el, name);
	xmpp_stanza_set_ns(el, ns);
	xmpp_stanza_add_child(st, el);
	xmpp_stanza_release(el);
}

/* A message toward XMPP; every field but from and to may be NULL. */
struct bi_chat {
	const char *type; /* NULL: none, which RFC 6121 section 5.2.2 reads as normal */
	const char *from, *to, *thread, *body, *subject, *lang;
	int cs; /* enum msg_chatstate, or -1: none */
};

/* Send c; id (may be NULL) receives the stanza's id, which an error about it
 * will carry (RFC 6120 section 8.1.3). */
static int send_msg(struct bi_tab *t, const struct bi_chat *c, char id[32])
{
	struct bridge *b = t->b;
	char idbuf[32];
	xmpp_stanza_t *st = br_stanza(b, "message", c->type, c->from, c->to);
	if (!st)
		return -ENOMEM;
	snprintf(idbuf, sizeof(idbuf), "pbim-%lu", ++t->serial);
	xmpp_stanza_set_id(st, idbuf);
	if (c->lang)
		xmpp_stanza_set_attribute(st, "xml:lang", c->lang);
	if (c->subject)
		br_stanza_text(b, st, "subject", NULL, c->subject);
	if (c->body)
		br_stanza_text(b, st, "body", NULL, c->body);
	if (c->thread)
		br_stanza_text(b, st, "thread", NULL, c->thread);
	if (c->cs >= 0)
		add_empty(b, st, msg_chatstate_name((enum msg_chatstate)c->cs),
		          MSG_NS_CHATSTATES);
	int e = br_xmpp_send(b, st);
	xmpp_stanza_release(st);
	if (!e && id)
		memcpy(id, idbuf, sizeof(idbuf));
	return e;
}

/*
 * A chat message: body (may be NULL), the session's thread (may be NULL) and a
 * chat state. XEP-0085: a message with a body carries <active/>, which
 * also tells the XMPP client that this contact takes chat states.
 */
static int send_chat(struct bi_tab *t, const char *from, const char *to,
                     const char *thread, const char *body, enum msg_chatstate cs)
{
	struct bi_chat c = {.type = "chat",
	                    .from = from,
	                    .to = to,
	                    .thread = thread,
	                    .body = body,
	                    .cs = (int)cs};
	return send_msg(t, &c, NULL);
}

/* ---- requests the bridge sends ---- */

/* Take r out of the table's list (again is a no-op). */
static void req_unlink(struct bi_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else if (r->t->reqs == r)
		r->t->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

static void req_free(struct bi_req *r)
{
	req_unlink(r);
	free(r->xfrom);
	free(r->xto);
	free(r->id);
	free(r->sip_uri);
	free(r);
}

static struct bi_req *req_new(struct bi_tab *t, enum bi_req_kind kind, struct bi_sess *s,
                              const char *xfrom, const char *xto, const char *id,
                              const char *sip_uri)
{
	struct bi_req *r = calloc(1, sizeof(*r));
	bool oom = false;
	if (!r)
		return NULL;
	r->t = t;
	r->kind = kind;
	r->s = s;
	r->xfrom = dup_or_null(xfrom, &oom);
	r->xto = dup_or_null(xto, &oom);
	r->id = dup_or_null(id, &oom);
	r->sip_uri = dup_or_null(sip_uri, &oom);
	r->next = t->reqs;
	if (t->reqs)
		t->reqs->prev = r;
	t->reqs = r;
	if (oom) {
		req_free(r);
		return NULL;
	}
	return r;
}

static sipleg_resp_h on_resp;

/* Send rq for r (which the outcome is given to); r is freed on failure. */
static int req_send(struct bi_req *r, const struct sipleg_req *rq)
{
	int e = sipleg_request(r->t->b->sip, rq, on_resp, r, &r->clt);
	if (e)
		req_free(r);
	return e;
}

static void send_bye(struct bridge *b, struct sipd *d)
{
	struct sipleg_req rq = {.method = "BYE", .dialog = d};
	int e = sipleg_request(b->sip, &rq, NULL, NULL, NULL);
	if (e)
		log_warn(BR_MOD, "IM: BYE to %s (Call-ID %s) not sent: %s",
		         sipd_remote_uri(d), sipd_call_id(d), strerror(-e));
}

/* ---- sessions ---- */

static void queued_free(struct bi_queued *q)
{
	free(q->lang);
	free(q->body);
	free(q->xfrom);
	free(q->xto);
	free(q->id);
	memset(q, 0, sizeof(*q));
}

static void sess_unpair(struct bi_sess *s)
{
	if (s->paired)
		hmap_del(&s->t->pairs, s->pair, strlen(s->pair));
	s->paired = false;
}

/* Make s the session that XMPP messages between its two parties go to. */
static int sess_pair(struct bi_sess *s)
{
	struct bi_sess *old = hmap_del(&s->t->pairs, s->pair, strlen(s->pair));
	if (old)
		old->paired = false;
	int e = hmap_put(&s->t->pairs, s->pair, strlen(s->pair), s);
	s->paired = e == 0;
	return e;
}

static void sess_free(struct bi_sess *s)
{
	struct bi_tab *t = s->t;
	for (size_t i = 0; i < s->nq; i++)
		queued_free(&s->q[i]);
	loop_timer_cancel(t->b->loop, &s->idle_t);
	sess_unpair(s);
	if (s->prev)
		s->prev->next = s->next;
	else if (t->sess == s)
		t->sess = s->next;
	if (s->next)
		s->next->prev = s->prev;
	t->nsess--;
	free(s->jid);
	free(s->sip_uri);
	free(s->sip_jid);
	free(s->thread);
	free(s->pair);
	free(s);
}

static struct bi_sess *sess_new(struct bi_tab *t, const char *jid, const char *sip_uri,
                                const char *sip_jid, const char *thread,
                                bool sip_initiated)
{
	struct bi_sess *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->t = t;
	s->sip_initiated = sip_initiated;
	s->chat_in = -1;
	s->typing_out = MSG_TYPING_IDLE;
	s->jid = strdup(jid);
	s->sip_uri = strdup(sip_uri);
	s->sip_jid = strdup(sip_jid);
	s->thread = strdup(thread);
	s->pair = join(jid, sip_uri);
	s->next = t->sess;
	if (t->sess)
		t->sess->prev = s;
	t->sess = s;
	t->nsess++;
	if (!s->jid || !s->sip_uri || !s->sip_jid || !s->thread || !s->pair ||
	    sess_pair(s) != 0) {
		sess_free(s);
		return NULL;
	}
	return s;
}

/*
 * End s: BYE first when asked (the bridge's own decision; not when the peer ended
 * it or the dialog is known dead), then forget the dialog, the state record and
 * the run-time part. Requests still out for s lose it: a 2xx to its INVITE is
 * then answered with BYE.
 */
static void sess_end(struct bi_sess *s, bool bye)
{
	struct bridge *b = s->t->b;
	if (s->dlg) {
		if (bye)
			send_bye(b, s->dlg);
		sipd_terminate(s->dlg);
		s->dlg = NULL;
	}
	for (struct bi_req *r = s->t->reqs; r; r = r->next)
		if (r->s == s)
			r->s = NULL;
	if (s->im) {
		s->im->rt = NULL;
		int e = state_im_drop(b->state, s->im);
		if (e)
			log_warn(
			    BR_MOD,
			    "state: the IM session between %s and %s was not removed "
			    "from the store: %s",
			    s->sip_uri, s->jid, strerror(-e));
		s->im = NULL;
	}
	sess_free(s);
}

static void on_idle(void *arg)
{
	struct bi_sess *s = arg;
	log_info(BR_MOD,
	         "IM session between %s and %s ended (BYE) after %u s without messages",
	         s->sip_uri, s->jid, s->t->b->im_idle_ms / 1000);
	sess_end(s, true);
}

/* Write what a restart needs to resume s: the dialog as the leg has it now. */
static void sess_save(struct bi_sess *s)
{
	struct bridge *b = s->t->b;
	struct state_im *im = s->im;
	if (!im || !s->dlg)
		return;
	char *routes = sipd_route_set(s->dlg);
	im->local_cseq = sipd_local_cseq(s->dlg);
	if (state_set_str(&im->remote_target, sipd_remote_target(s->dlg)) || !routes ||
	    state_set_str(&im->route_set, *routes ? routes : NULL) ||
	    state_im_save(b->state, im) != 0) {
		log_warn(BR_MOD,
		         "state: the IM session between %s and %s is not saved (%s); it "
		         "works, but not across a restart",
		         s->sip_uri, s->jid,
		         routes ? store_errmsg(b->store) : "out of memory");
	} else {
		s->saved_cseq = im->local_cseq;
		s->saved_activity = im->last_activity;
	}
	free(routes);
}

/* Traffic in s: the idle clock starts again (im_idle_timeout = 0: no limit). */
static void sess_touch(struct bi_sess *s)
{
	struct bridge *b = s->t->b;
	if (s->phase != BI_OPEN)
		return;
	if (b->im_idle_ms)
		loop_timer_start(b->loop, &s->idle_t, b->im_idle_ms, on_idle, s);
	if (!s->im)
		return;
	s->im->last_activity = br_now();
	if (sipd_local_cseq(s->dlg) - s->saved_cseq >= BI_SAVE_CSEQ_EVERY ||
	    s->im->last_activity - s->saved_activity >= BI_SAVE_ACTIVITY_MS)
		sess_save(s);
}

/*
 * Record an open dialog d for s in the state table and the store. A thread the
 * XMPP client chose may already name another of its sessions there: then s gets
 * a thread of ours.
 */
static int sess_record(struct bi_sess *s, struct sipd *d)
{
	struct bridge *b = s->t->b;
	struct state_im *im = NULL;
	int e = state_im_add(b->state, sipd_call_id(d), s->sip_uri, s->jid, s->thread,
	                     s->sip_initiated, &im);
	if (e == -EEXIST && !state_im_by_dialog(b->state, sipd_call_id(d))) {
		char thread[24];
		char *seed = join(s->pair, sipd_call_id(d));
		if (!seed)
			return -ENOMEM;
		make_thread(s->t, seed, thread, sizeof(thread));
		free(seed);
		char *nt = strdup(thread);
		if (!nt)
			return -ENOMEM;
		free(s->thread);
		s->thread = nt;
		e = state_im_add(b->state, sipd_call_id(d), s->sip_uri, s->jid, s->thread,
		                 s->sip_initiated, &im);
	}
	if (e)
		return e;
	im->rt = s;
	im->last_activity = br_now();
	if (state_set_str(&im->local_tag, sipd_local_tag(d)) ||
	    state_set_str(&im->remote_tag, sipd_remote_tag(d))) {
		im->rt = NULL;
		state_im_drop(b->state, im);
		return -ENOMEM;
	}
	s->im = im;
	s->dlg = d;
	s->phase = BI_OPEN;
	sess_save(s);
	return 0;
}

/* The session a request of dialog d belongs to. */
static struct bi_sess *sess_of_dialog(struct bi_tab *t, struct sipd *d)
{
	if (!d)
		return NULL;
	struct state_im *im = state_im_by_dialog(t->b->state, sipd_call_id(d));
	struct bi_sess *s = im ? im->rt : NULL;
	return s && s->dlg == d ? s : NULL;
}

/* ---- SIP -> XMPP ---- */

/* Where the content of a SIP request goes. */
struct bi_sin {
	const char *sip_uri; /* the SIP sender */
	const char *from;    /* its JID */
	const char *to;      /* the XMPP recipient */
	const char *thread;  /* sessions: its thread; page mode: NULL */
	struct bi_sess *s;   /* NULL in page mode */
	const char *ct;      /* Content-Type */
	const char *body;
	size_t len;
	const char *lang;    /* Content-Language's tag (RFC 7572 section 8), or NULL */
	const char *subject; /* page mode: the Subject header as received, or NULL */
	const char *call_id; /* the request's Call-ID */
};

typedef void(bi_sin_h)(struct bi_tab *t, struct sipleg_srv *srv, const struct bi_sin *in);

static void sin_refuse(struct bi_tab *t, struct sipleg_srv *srv, const struct bi_sin *in,
                       enum err_bridge why)
{
	log_info(BR_MOD, "IM from %s to %s refused with %d: %s", in->sip_uri, in->to,
	         err_bridge(why)->sip_code, err_bridge(why)->explanation);
	br_sip_refuse(t->b, srv, why, NULL);
}

static void sin_unsupported(struct bi_tab *t, struct sipleg_srv *srv,
                            const struct bi_sin *in)
{
	sin_refuse(t, srv, in, ERR_BRIDGE_UNSUPPORTED_MEDIA);
}

/* Remember the message stanza id carried, so that an XMPP error about it reaches
 * its SIP sender (x_error). Best effort: without memory the error is only
 * logged, as it was before the message went out. */
static void pend_add(struct bi_tab *t, const char *from, const char *to,
                     const char *call_id, const char *id, const char *text)
{
	struct bi_pend *p = calloc(1, sizeof(*p));
	bool oom = !p;
	if (p) {
		p->sender_jid = bare_jid(from);
		oom = !p->sender_jid;
		p->rcpt_jid = bare_jid(to);
		p->call_id = dup_or_null(call_id, &oom);
		oom = oom || !p->rcpt_jid ||
		      msg_excerpt(text, MSG_EXCERPT_CHARS, &p->excerpt);
	}
	if (oom) {
		if (p)
			pend_free(p);
		log_warn(BR_MOD,
		         "IM from %s to %s: out of memory; an XMPP error about it "
		         "will only be logged",
		         from, to);
		return;
	}
	ttlmap_put(&t->pend, id, p, br_now());
}

/*
 * A text message. Page mode (RFC 7572 section 5): no type attribute, which
 * RFC 6121 reads as "normal" (a MUST of RFC 7572 section 5); no chat state
 * either (XEP-0085 section 5.4: not with types other than chat), Subject ->
 * <subject/> and Call-ID -> <thread/> (table 2). Sessions are Lync's
 * conversations: type chat with <active/> and the session's own thread.
 * Content-Language -> xml:lang in both (section 8).
 *
 * The answer: a session's MESSAGE gets 200, as Lync expects; a page-mode one
 * 202 (RFC 3428 section 7: a UAS forwarding into a non-SIP domain SHOULD, since
 * it cannot vouch for delivery), and an XMPP error that comes back later is
 * reported to the sender as a MESSAGE (x_error).
 */
static void sin_text(struct bi_tab *t, struct sipleg_srv *srv, const struct bi_sin *in)
{
	char *text = NULL, *subject = NULL;
	size_t tlen = 0;
	int e = msg_sip_to_text(in->ct, in->body, in->len, &t->b->msglim, &text, &tlen);
	if (!e && !in->s && in->subject) {
		e = msg_subject_from_sip(in->subject, &t->b->msglim, &subject);
		e = e == -ENOENT ? 0 : e;
	}
	if (e) {
		sin_refuse(t, srv, in, refusal_of(e));
		goto out;
	}
	/* Markup without text (an empty <div>) shows nothing: there is no message to
	 * relay, and the sender did nothing wrong. */
	if (tlen > 0) {
		char id[32];
		struct bi_chat c = {.type = in->s ? "chat" : NULL,
		                    .from = in->from,
		                    .to = in->to,
		                    /* RFC 7572 table 2: Call-ID -> <thread/>, when
		                     * it is one (RFC 3261 section 25.1): a peer's
		                     * stray byte never reaches the XML */
		                    .thread = in->s                        ? in->thread
		                              : msg_callid_ok(in->call_id) ? in->call_id
		                                                           : NULL,
		                    .body = text,
		                    .subject = subject,
		                    .lang = in->lang,
		                    .cs = in->s ? (int)MSG_CHAT_ACTIVE : -1};
		e = send_msg(t, &c, id);
		if (e) {
			sin_refuse(t, srv, in, refusal_of(e));
			goto out;
		}
		pend_add(t, in->from, in->to, in->s ? in->call_id : NULL, id, text);
		log_debug(BR_MOD, "IM from %s to %s relayed (%zu bytes%s, id %s)",
		          in->sip_uri, in->to, tlen, in->s ? ", in a session" : "", id);
	}
	sipleg_reply_code(srv, in->s || tlen == 0 ? 200 : 202, NULL);
	if (in->s) {
		in->s->chat_in = MSG_CHAT_ACTIVE;
		sess_touch(in->s);
	}
out:
	free(subject);
	free(text);
}

static void sin_typing(struct bi_tab *t, struct sipleg_srv *srv, const struct bi_sin *in)
{
	enum msg_typing typ;
	int e = msg_kind_of(in->ct) == MSG_KIND_ISCOMPOSING
	            ? msg_iscomposing_parse(in->body, in->len, &typ, NULL)
	            : msg_kbactivity_parse(in->body, in->len, &typ);
	if (e) {
		sin_refuse(t, srv, in, refusal_of(e));
		return;
	}
	enum msg_chatstate cs = msg_typing_to_chatstate(typ);
	/* RFC 3994 refreshes an active state and Lync repeats "type" while the
	 * user types: XMPP hears of changes only, as XEP-0085 clients send them. */
	if (!in->s || in->s->chat_in != (int)cs) {
		e = send_chat(t, in->from, in->to, in->thread, NULL, cs);
		if (e) {
			sin_refuse(t, srv, in, refusal_of(e));
			return;
		}
		if (in->s)
			in->s->chat_in = (int)cs;
	}
	/* Page mode: relayed, not delivered (RFC 3428 section 7), as sin_text. */
	sipleg_reply_code(srv, in->s ? 200 : 202, NULL);
	/* Someone typing a long message is still in the conversation. */
	if (in->s)
		sess_touch(in->s);
}

/* What each kind of body becomes: in a MESSAGE, and in an INFO (Lync sends only
 * its typing notifications that way, RFC 6086 leaves the rest to the package). */
static const struct {
	bi_sin_h *message;
	bi_sin_h *info;
} sin_table[] = {
    [MSG_KIND_UNSUPPORTED] = {sin_unsupported, sin_unsupported},
    [MSG_KIND_TEXT] = {sin_text, sin_unsupported},
    [MSG_KIND_ISCOMPOSING] = {sin_typing, sin_typing},
    [MSG_KIND_KBACTIVITY] = {sin_typing, sin_typing},
};

static void sin_dispatch(struct bi_tab *t, struct sipleg_srv *srv, struct sipm *req,
                         struct bi_sin *in, bool info)
{
	char lang[MSG_LANG_MAX];
	in->ct = sipm_header(req, "Content-Type", 0);
	in->body = sipm_body(req, &in->len);
	in->call_id = sipm_call_id(req);
	in->subject = in->s ? NULL : sipm_header(req, "Subject", 0);
	/* A tag the XMPP side could not take is left out rather than refused: the
	 * message itself is fine. */
	int le = msg_lang_from_sip(sipm_header(req, "Content-Language", 0), lang);
	in->lang = le ? NULL : lang;
	if (le == -EBADMSG)
		log_debug(BR_MOD,
		          "IM from %s: Content-Language '%s' is not a language "
		          "tag; not carried",
		          in->sip_uri, sipm_header(req, "Content-Language", 0));
	/* An INFO without a body is a keep-alive of the session (RFC 6086
	 * allows it); Lync sends none, other UAs do. */
	if (info && !in->len) {
		sipleg_reply_code(srv, 200, NULL);
		if (in->s)
			sess_touch(in->s);
		return;
	}
	if (!br_xmpp_ready(t->b, srv, in->sip_uri))
		return;
	enum msg_kind k = msg_kind_of(in->ct);
	if ((size_t)k >= sizeof(sin_table) / sizeof(sin_table[0]))
		k = MSG_KIND_UNSUPPORTED;
	(info ? sin_table[k].info : sin_table[k].message)(t, srv, in);
}

/* A request inside a session: the dialog must be one of ours. */
static void sin_session(struct bridge *b, struct sipleg_srv *srv, struct sipm *req,
                        bool info)
{
	struct bi_tab *t = tab_of(b);
	struct bi_sess *s = t ? sess_of_dialog(t, sipleg_srv_dialog(srv)) : NULL;
	if (!s) {
		br_sip_refuse(b, srv, ERR_BRIDGE_NO_SESSION, NULL);
		return;
	}
	struct bi_sin in = {.sip_uri = s->sip_uri,
	                    .from = s->sip_jid,
	                    .to = s->jid,
	                    .thread = s->thread,
	                    .s = s};
	sin_dispatch(t, srv, req, &in, info);
}

/*
 * The two parties of a SIP request outside a dialog: the sender (From) must be a
 * user of a SIP-homed domain, the recipient (the Request-URI, RFC 3428) one
 * of an XMPP-homed domain (the leg already refused any other). Answers srv and
 * returns false when they are not.
 */
static bool sin_parties(struct bridge *b, struct sipleg_srv *srv, struct sipm *req,
                        char **fromp, char **top)
{
	enum addr_home home;
	char *from = NULL, *to = NULL;
	int e = br_uri_to_jid(b, sipm_from_uri(req), &from, &home);
	if (e || home != ADDR_HOME_SIP) {
		log_info(BR_MOD, "%s from %s to %s refused: the sender %s",
		         sipm_method(req), sipm_from_uri(req), sipm_ruri(req),
		         e ? addr_strerror(e) : "is not a user of a SIP-homed domain");
		br_sip_refuse(b, srv, e ? br_addr_refusal(e) : ERR_BRIDGE_PEER_FORBIDDEN,
		              e ? "the sender's address is not bridged"
		                : "the sender is not a user of a SIP-homed domain");
		goto fail;
	}
	e = br_uri_to_jid(b, sipm_ruri(req), &to, &home);
	if (e || home != ADDR_HOME_XMPP) {
		br_sip_refuse(b, srv, e ? br_addr_refusal(e) : ERR_BRIDGE_DOMAIN_UNMAPPED,
		              NULL);
		goto fail;
	}
	*fromp = from;
	*top = to;
	return true;
fail:
	free(from);
	free(to);
	return false;
}

/* *jidp, the bare JID of uri, becomes the full JID when uri is a GRUU; a gr the
 * bridge cannot map leaves the bare address, which still reaches the user. */
static void sin_instance(struct bridge *b, const char *uri, char **jidp)
{
	char *full = NULL;
	if (br_uri_to_full_jid(b, uri, &full, NULL) == 0) {
		free(*jidp);
		*jidp = full;
	}
}

void bi_sip_message(struct bridge *b, struct sipleg_srv *srv, struct sipm *req)
{
	char *from = NULL, *to = NULL;
	if (!srv)
		return;
	if (sipleg_srv_dialog(srv)) {
		sin_session(b, srv, req, false);
		return;
	}
	struct bi_tab *t = tab_of(b);
	if (!t) {
		br_sip_refuse(b, srv, ERR_BRIDGE_INTERNAL, NULL);
		return;
	}
	if (!sin_parties(b, srv, req, &from, &to))
		return;
	/* One device on each side: a GRUU in From is the sender's resource (RFC 7572
	 * section 5 note 1), one in the Request-URI the recipient's (RFC 7247
	 * section 6.4 step 8). */
	sin_instance(b, sipm_from_uri(req), &from);
	sin_instance(b, sipm_ruri(req), &to);
	struct bi_sin in = {.sip_uri = sipm_from_uri(req), .from = from, .to = to};
	sin_dispatch(t, srv, req, &in, false);
	free(from);
	free(to);
}

void bi_sip_info(struct bridge *b, struct sipleg_srv *srv, struct sipm *req)
{
	if (srv)
		sin_session(b, srv, req, true);
}

/* A re-INVITE refreshes the session (Lync's session timer, route-set updates);
 * the leg answers it with the same SDP. */
static void sip_reinvite(struct bi_tab *t, struct sipleg_srv *srv)
{
	struct bi_sess *s = sess_of_dialog(t, sipleg_srv_dialog(srv));
	if (!s) {
		br_sip_refuse(t->b, srv, ERR_BRIDGE_NO_SESSION, NULL);
		return;
	}
	sipleg_reply_code(srv, 200, NULL);
	/* RFC 3261 section 12.2.2: a re-INVITE may change the remote target. */
	sess_save(s);
	sess_touch(s);
}

void bi_sip_invite(struct bridge *b, struct sipleg_srv *srv, struct sipm *req)
{
	struct bi_tab *t = tab_of(b);
	char *from = NULL, *to = NULL, *text = NULL, *sip_uri = NULL;
	size_t tlen = 0;
	char thread[24];
	struct sipd *d = NULL;

	if (!srv)
		return;
	if (!t) {
		br_sip_refuse(b, srv, ERR_BRIDGE_INTERNAL, NULL);
		return;
	}
	if (sipleg_srv_dialog(srv)) {
		sip_reinvite(t, srv);
		return;
	}
	const char *call_id = sipm_call_id(req);
	if (!sin_parties(b, srv, req, &from, &to))
		return;
	/* The SIP party as the address map writes it, so that XMPP messages to it find
	 * this session (sessions are keyed by that form). */
	if (br_jid_to_uri(b, from, &sip_uri, NULL, NULL) != 0) {
		br_sip_refuse(b, srv, ERR_BRIDGE_ADDRESS_MALFORMED, NULL);
		goto out;
	}
	if (!br_xmpp_ready(b, srv, sip_uri))
		goto out;
	/* RFC 3261 section 8.2.2.2: a second INVITE of a known Call-ID outside its
	 * dialog is a merged request. */
	if (state_im_by_dialog(b->state, call_id)) {
		sipleg_reply_code(srv, 482, "an IM session with this Call-ID exists");
		goto out;
	}
	const char *mstf = sipm_header(req, "Ms-Text-Format", 0);
	int e = mstf ? msg_mstf_parse(mstf, &b->msglim, &text, &tlen) : -ENOENT;
	if (e && e != -ENOENT) {
		log_info(BR_MOD,
		         "IM session from %s to %s refused: its first message cannot be "
		         "read (%s)",
		         sip_uri, to, err_bridge(refusal_of(e))->explanation);
		br_sip_refuse(b, srv, refusal_of(e),
		              "the first message (Ms-Text-Format)");
		goto out;
	}
	make_thread(t, call_id, thread, sizeof(thread));
	struct bi_sess *s = sess_new(t, to, sip_uri, from, thread, true);
	if (!s) {
		br_sip_refuse(b, srv, ERR_BRIDGE_INTERNAL, NULL);
		goto out;
	}
	/* The first message goes out before the 200, so that an XMPP link that cannot
	 * take it refuses the session instead of losing the message. */
	char id[32];
	struct bi_chat c = {.type = "chat",
	                    .from = from,
	                    .to = to,
	                    .thread = thread,
	                    .body = text,
	                    .cs = (int)MSG_CHAT_ACTIVE};
	if (tlen > 0 && (e = send_msg(t, &c, id)) != 0) {
		sess_free(s);
		br_sip_refuse(b, srv, refusal_of(e), NULL);
		goto out;
	}
	if (tlen > 0)
		pend_add(t, from, to, call_id, id, text);
	struct sipleg_reply ok = {.code = 200};
	e = sipleg_reply(srv, &ok, &d);
	if (e || !d) {
		log_warn(BR_MOD, "IM session from %s to %s: the 200 was not sent: %s",
		         sip_uri, to, strerror(e ? -e : ENOMEM));
		sess_free(s);
		br_sip_refuse(b, srv, ERR_BRIDGE_INTERNAL, NULL);
		goto out;
	}
	e = sess_record(s, d);
	if (e) {
		log_warn(BR_MOD, "IM session from %s to %s ended at once: %s", sip_uri,
		         to, strerror(-e));
		s->dlg = d;
		sess_end(s, true);
		goto out;
	}
	if (tlen > 0)
		s->chat_in = MSG_CHAT_ACTIVE;
	sess_touch(s);
	log_info(BR_MOD, "IM session from %s to %s opened (Call-ID %s, thread %s%s)",
	         sip_uri, to, call_id, s->thread, tlen ? ", first message relayed" : "");
out:
	free(text);
	free(sip_uri);
	free(from);
	free(to);
}

void bi_sip_bye(struct bridge *b, struct sipleg_srv *srv, struct sipm *req)
{
	struct bi_tab *t = tab_of(b);
	struct bi_sess *s = t && srv ? sess_of_dialog(t, sipleg_srv_dialog(srv)) : NULL;
	(void)req;
	if (!srv)
		return;
	if (!s) {
		br_sip_refuse(b, srv, ERR_BRIDGE_NO_SESSION, NULL);
		return;
	}
	sipleg_reply_code(srv, 200, NULL);
	log_info(BR_MOD, "IM session between %s and %s ended by the SIP side (BYE)",
	         s->sip_uri, s->jid);
	/* XEP-0085: <gone/> is the other party ending the conversation,
	 * which is what a BYE says. Best effort: the session ends either way. */
	send_chat(t, s->sip_jid, s->jid, s->thread, NULL, MSG_CHAT_GONE);
	sess_end(s, false);
}

/* ---- outcomes of what the bridge sent ---- */

/*
 * RFC 5057: responses to a request inside a dialog that end the
 * dialog (404, 410, 416, 482-485, 502, 604) or its only usage (408, 480, 481,
 * 489), which for an IM session is the same thing.
 */
static const int dialog_enders[] = {404, 408, 410, 416, 480, 481, 482,
                                    483, 484, 485, 489, 502, 604};

static bool ends_dialog(int status, const struct sipm *resp)
{
	/* No response at all: the leg made the status up because the peer is gone. */
	if (!resp)
		return true;
	for (size_t i = 0; i < sizeof(dialog_enders) / sizeof(dialog_enders[0]); i++)
		if (dialog_enders[i] == status)
			return true;
	return false;
}

/* Plain words for a SIP failure, for the XMPP <text/>: the reason of the peer's
 * ms-diagnostics when it gave one (cleaned: it is the peer's text, and XML takes
 * only valid UTF-8). */
static void failure_text(int status, struct sipm *resp, char *out, size_t len)
{
	const char *diag = resp ? sipm_header(resp, "ms-diagnostics", 0) : NULL;
	const char *v = NULL;
	size_t vlen = 0;
	char *clean = NULL;
	if (diag && msg_ctype_param(diag, strlen(diag), "reason", &v, &vlen) == 0)
		msg_plain_to_text(v, vlen, NULL, &clean, NULL);
	const char *reason = err_sip_reason(status);
	if (!resp)
		snprintf(out, len, "the SIP server %s (%d)",
		         status == 408 ? "did not answer in time"
		                       : "could not be reached",
		         status);
	else
		snprintf(out, len, "the SIP side answered %d %s%s%s", status,
		         reason ? reason : "", clean && *clean ? ": " : "",
		         clean ? clean : "");
	free(clean);
}

/* The new address of a 301, for the <gone/> of RFC 7247 section 7.2 note 1:
 * the Contact as an xmpp: URI when it maps to a JID, else the Contact URI itself;
 * NULL without a Contact or with one that is not plain ASCII (RFC 3986 URIs are). */
static char *moved_to(struct bridge *b, struct sipm *resp)
{
	const char *c = resp ? sipm_contact_uri(resp) : NULL;
	if (!c || !*c)
		return NULL;
	for (const char *p = c; *p; p++)
		if (*p <= ' ' || *p > '~')
			return NULL;
	char *jid = NULL;
	struct sbuf sb;
	sbuf_init(&sb);
	if (br_uri_to_jid(b, c, &jid, NULL) == 0 && jid) {
		sbuf_puts(&sb, "xmpp:");
		sbuf_puts(&sb, jid);
	} else {
		sbuf_puts(&sb, c);
	}
	free(jid);
	return sbuf_take(&sb, NULL);
}

/* Tell the XMPP sender of r that its message did not arrive. */
static void report_failure(struct bi_tab *t, const char *xfrom, const char *xto,
                           const char *id, const char *sip_uri, int status,
                           struct sipm *resp)
{
	struct err_xmpp ex = {ERR_COND_UNDEFINED_CONDITION, ERR_TYPE_CANCEL};
	char text[400];
	err_sip_to_xmpp(status, &ex);
	failure_text(status, resp, text, sizeof(text));
	/* RFC 7247 section 7.2 note 1: the <gone/> of a 301 carries the new address,
	 * that of a 410 none. */
	char *moved = status == 301 ? moved_to(t->b, resp) : NULL;
	log_info(BR_MOD, "IM from %s to %s not delivered: %s; %s gets %s%s%s", xfrom,
	         sip_uri, text, xfrom, err_cond_name(ex.cond), moved ? " " : "",
	         moved ? moved : "");
	br_xmpp_error_data(t->b, "message", xto, xfrom, id, ex.cond, moved, text);
	free(moved);
}

static void queue_fail(struct bi_sess *s, int status, struct sipm *resp)
{
	for (size_t i = 0; i < s->nq; i++) {
		struct bi_queued *q = &s->q[i];
		report_failure(s->t, q->xfrom, q->xto, q->id, s->sip_uri, status, resp);
		queued_free(q);
	}
	s->nq = 0;
}

/* lang: a tag msg_lang_to_sip accepted, or NULL (RFC 7572 section 8). */
static int sess_send_text(struct bi_sess *s, const char *body, size_t len,
                          const char *xfrom, const char *xto, const char *id,
                          const char *lang)
{
	struct bi_req *r = req_new(s->t, BI_REQ_SESSION, s, xfrom, xto, id, s->sip_uri);
	if (!r)
		return -ENOMEM;
	struct sipm_hdr h = {"Content-Language", lang};
	struct sipleg_req rq = {.method = "MESSAGE",
	                        .dialog = s->dlg,
	                        .hdrs = lang ? &h : NULL,
	                        .nhdrs = lang ? 1 : 0,
	                        .content_type = MSG_SIP_CONTENT_TYPE,
	                        .body = body,
	                        .body_len = len};
	int e = req_send(r, &rq);
	if (!e) {
		/* A sent message clears the other side's typing indicator by itself
		 * (RFC 3994). */
		s->typing_out = MSG_TYPING_IDLE;
		sess_touch(s);
	}
	return e;
}

/* The session is up: what waited for it goes out, in order. */
static void queue_flush(struct bi_sess *s)
{
	for (size_t i = 0; i < s->nq; i++) {
		struct bi_queued *q = &s->q[i];
		if (!q->in_invite) {
			int e = sess_send_text(s, q->body, q->len, q->xfrom, q->xto,
			                       q->id, q->lang);
			if (e) {
				enum err_bridge why = e == -ENOENT
				                          ? ERR_BRIDGE_DOMAIN_UNMAPPED
				                          : ERR_BRIDGE_INTERNAL;
				br_xmpp_error(s->t->b, "message", q->xto, q->xfrom, q->id,
				              err_bridge(why)->cond,
				              err_bridge(why)->explanation);
			}
		}
		queued_free(q);
	}
	s->nq = 0;
}

static void resp_page(struct bi_req *r, int status, struct sipm *resp, struct sipd *dlg)
{
	(void)dlg;
	if (status < 300)
		log_debug(BR_MOD, "IM from %s to %s delivered (%d)", r->xfrom, r->sip_uri,
		          status);
	else
		report_failure(r->t, r->xfrom, r->xto, r->id, r->sip_uri, status, resp);
}

static void resp_session(struct bi_req *r, int status, struct sipm *resp,
                         struct sipd *dlg)
{
	resp_page(r, status, resp, dlg);
	if (status >= 300 && r->s && ends_dialog(status, resp)) {
		log_info(BR_MOD,
		         "IM session between %s and %s ended: the SIP side answered %d "
		         "in it; the next message opens a new one",
		         r->s->sip_uri, r->s->jid, status);
		sess_end(r->s, status == 408 || !resp);
	}
}

static void resp_typing(struct bi_req *r, int status, struct sipm *resp, struct sipd *dlg)
{
	(void)dlg;
	if (status < 300)
		return;
	/* RFC 3994 section 4: a 415 to a typing notification means the user agent
	 * does not take them; the composer MUST stop. In a session, for the
	 * session; in page mode, for that SIP user (BI_NOTYPING_TTL_MS). */
	if (status == 415) {
		log_info(BR_MOD,
		         "typing notifications to %s stopped: it answered one with 415 "
		         "(RFC 3994 section 4)",
		         r->sip_uri);
		if (r->s)
			r->s->no_typing = true;
		else
			ttlmap_put(&r->t->notyping, r->sip_uri, NULL, br_now());
		return;
	}
	log_debug(BR_MOD, "typing notification from %s to %s refused with %d", r->xfrom,
	          r->sip_uri, status);
	if (r->s && ends_dialog(status, resp)) {
		log_info(BR_MOD,
		         "IM session between %s and %s ended: the SIP side answered %d "
		         "in it",
		         r->s->sip_uri, r->s->jid, status);
		sess_end(r->s, false);
	}
}

static void resp_invite(struct bi_req *r, int status, struct sipm *resp, struct sipd *dlg)
{
	struct bi_sess *s = r->s;
	bool ok = status >= 200 && status < 300;
	if (ok && !dlg) {
		log_warn(BR_MOD,
		         "IM session from %s to %s: the leg kept no dialog for the 2xx",
		         r->xfrom, r->sip_uri);
		status = 500;
		ok = false;
	}
	if (!s) {
		/* The session ended (or the bridge is stopping) while it was invited: the
		 * dialog the 2xx made is not wanted. */
		if (ok) {
			send_bye(r->t->b, dlg);
			sipd_terminate(dlg);
		}
		return;
	}
	if (!ok) {
		log_info(BR_MOD, "IM session from %s to %s refused by the SIP side (%d)",
		         s->jid, s->sip_uri, status);
		queue_fail(s, status, resp);
		sess_end(s, false);
		return;
	}
	int e = sess_record(s, dlg);
	if (e) {
		log_warn(BR_MOD, "IM session from %s to %s ended at once: %s", s->jid,
		         s->sip_uri, strerror(-e));
		s->dlg = dlg;
		queue_fail(s, 500, NULL);
		sess_end(s, true);
		return;
	}
	log_info(BR_MOD, "IM session from %s to %s opened (Call-ID %s, thread %s)",
	         s->jid, s->sip_uri, sipd_call_id(dlg), s->thread);
	queue_flush(s);
	sess_touch(s);
}

typedef void(bi_resp_h)(struct bi_req *r, int status, struct sipm *resp,
                        struct sipd *dlg);

static void resp_report(struct bi_req *r, int status, struct sipm *resp, struct sipd *dlg)
{
	(void)resp;
	(void)dlg;
	if (status >= 300)
		log_info(BR_MOD,
		         "the report to %s that its message to %s was not delivered was "
		         "refused with %d",
		         r->sip_uri, r->xfrom, status);
}

static bi_resp_h *const resp_table[BI_REQ_COUNT] = {
    [BI_REQ_PAGE] = resp_page,       [BI_REQ_INVITE] = resp_invite,
    [BI_REQ_SESSION] = resp_session, [BI_REQ_TYPING] = resp_typing,
    [BI_REQ_REPORT] = resp_report,
};

static void on_resp(int status, struct sipm *resp, struct sipd *dlg, void *arg)
{
	struct bi_req *r = arg;
	/* Out of the list first: the handler may end sessions, which walks it. */
	req_unlink(r);
	resp_table[r->kind](r, status, resp, dlg);
	req_free(r);
}

/* ---- XMPP -> SIP ---- */

/* What an XMPP message says, for the paths below. */
struct bi_xmsg {
	xmpp_ctx_t *ctx;
	const char *from, *to, *id; /* borrowed from the stanza */
	char *jid;                  /* the sender, bare */
	char *from_uri;             /* the sender as SIP sees it */
	char *to_uri;               /* the SIP recipient */
	char *to_jid;               /* the recipient, bare JID */
	char *body;                 /* xmpp_free; NULL when none or empty */
	char *thread;               /* xmpp_free; NULL when none */
	char *subject;              /* xmpp_free; NULL when none */
	const char *lang;           /* xml:lang, borrowed; NULL when none */
	bool has_cs;
	enum msg_chatstate cs;
	const struct conf_peer *peer;
};

static void xmsg_free(struct bi_xmsg *x)
{
	free(x->jid);
	free(x->from_uri);
	free(x->to_uri);
	free(x->to_jid);
	if (x->body)
		xmpp_free(x->ctx, x->body);
	if (x->thread)
		xmpp_free(x->ctx, x->thread);
	if (x->subject)
		xmpp_free(x->ctx, x->subject);
}

/* Read st into x. Returns XLINK_TAKEN, or XLINK_REFUSE with r filled. */
static int xmsg_read(struct bridge *b, xmpp_stanza_t *st, struct bi_xmsg *x,
                     struct xlink_refusal *r)
{
	enum addr_home home;
	x->ctx = xmpp_stanza_get_context(st);
	x->from = xmpp_stanza_get_from(st);
	x->to = xmpp_stanza_get_to(st);
	x->id = xmpp_stanza_get_id(st);
	if (!x->from || !x->to)
		return xrefuse(r, ERR_BRIDGE_ADDRESS_MALFORMED);
	/* RFC 7572 section 4 note 1: the sender's resource rides as its GRUU. */
	int e = br_jid_to_gruu(b, x->from, &x->from_uri, &home);
	if (e)
		return xrefuse(r, br_addr_refusal(e));
	/* Only users of XMPP-homed domains are relayed toward SIP: anything else
	 * would be a SIP user echoed back to SIP through the bridge. */
	if (home != ADDR_HOME_XMPP) {
		r->cond = ERR_COND_FORBIDDEN;
		r->text = "the sender is not a user of an XMPP-homed domain";
		return XLINK_REFUSE;
	}
	e = br_jid_to_uri(b, x->to, &x->to_uri, NULL, &home);
	if (e)
		return xrefuse(r, br_addr_refusal(e));
	if (home != ADDR_HOME_SIP)
		return xrefuse(r, ERR_BRIDGE_DOMAIN_UNMAPPED);
	if (!(x->jid = bare_jid(x->from)) || !(x->to_jid = bare_jid(x->to)))
		return xrefuse(r, ERR_BRIDGE_INTERNAL);
	x->peer = conf_peer_for_domain(b->cf, uri_domain(x->to_uri));
	/* A message for one resource goes to that GRUU (RFC 7247 section 6.5 step 8),
	 * after the peer was found by the plain URI's domain. */
	char *gruu = NULL;
	if (strchr(x->to, '/') && br_jid_to_gruu(b, x->to, &gruu, NULL) == 0) {
		free(x->to_uri);
		x->to_uri = gruu;
	}

	xmpp_stanza_t *c = xmpp_stanza_get_child_by_name(st, "body");
	if (c && (x->body = xmpp_stanza_get_text(c)) != NULL && !*x->body) {
		xmpp_free(x->ctx, x->body);
		x->body = NULL;
	}
	c = xmpp_stanza_get_child_by_name(st, "thread");
	if (c)
		x->thread = xmpp_stanza_get_text(c);
	c = xmpp_stanza_get_child_by_name(st, "subject");
	if (c)
		x->subject = xmpp_stanza_get_text(c);
	/* The S2S stream engine keeps the name as written; libstrophe's parser (the
	 * component link) drops the prefix of a namespaced attribute. A message has
	 * no "lang" attribute of its own (RFC 6120 section 8.1), so either is
	 * xml:lang. */
	x->lang = xmpp_stanza_get_attribute(st, "xml:lang");
	if (!x->lang)
		x->lang = xmpp_stanza_get_attribute(st, "lang");
	for (c = xmpp_stanza_get_children(st); c; c = xmpp_stanza_get_next(c)) {
		const char *ns = xmpp_stanza_is_tag(c) ? xmpp_stanza_get_ns(c) : NULL;
		if (ns && strcmp(ns, MSG_NS_CHATSTATES) == 0 &&
		    msg_chatstate_from_name(xmpp_stanza_get_name(c), &x->cs) == 0) {
			x->has_cs = true;
			break;
		}
	}
	return XLINK_TAKEN;
}

/* The Content-Language header for x's xml:lang (RFC 7572 section 8), into h;
 * false when there is none to write. */
static bool x_lang_hdr(const struct bi_xmsg *x, char lang[MSG_LANG_MAX],
                       struct sipm_hdr *h)
{
	int e = msg_lang_to_sip(x->lang, lang);
	if (e == -EBADMSG)
		log_debug(BR_MOD,
		          "IM from %s: xml:lang '%s' is not a tag SIP can carry; "
		          "left out",
		          x->from, x->lang);
	if (e)
		return false;
	*h = (struct sipm_hdr){"Content-Language", lang};
	return true;
}

/*
 * Page mode (RFC 7572 section 4, table 1): <subject/> -> Subject, <thread/> ->
 * Call-ID when it is one (RFC 3261 section 25.1), xml:lang ->
 * Content-Language. RFC 3428 section 8 / RFC 7572 section 6: a request over
 * 1300 bytes is not sent; the sender gets <policy-violation/>.
 */
static int x_page_text(struct bi_tab *t, struct bi_xmsg *x, const char *body, size_t len,
                       struct xlink_refusal *r)
{
	char *from = br_name_addr(x->from_uri), *subject = NULL, lang[MSG_LANG_MAX];
	struct sipm_hdr h[2];
	size_t nh = 0;
	int e = x->subject ? msg_subject_to_sip(x->subject, &t->b->msglim, &subject)
	                   : -ENOENT;
	if (e && e != -ENOENT) {
		free(from);
		return xrefuse(r, refusal_of(e));
	}
	if (subject)
		h[nh++] = (struct sipm_hdr){"Subject", subject};
	if (x_lang_hdr(x, lang, &h[nh]))
		nh++;
	struct bi_req *q =
	    from ? req_new(t, BI_REQ_PAGE, NULL, x->from, x->to, x->id, x->to_uri) : NULL;
	e = -ENOMEM;
	if (q) {
		struct sipleg_req rq = {.method = "MESSAGE",
		                        .ruri = x->to_uri,
		                        .from = from,
		                        .hdrs = nh ? h : NULL,
		                        .nhdrs = nh,
		                        .content_type = MSG_SIP_CONTENT_TYPE,
		                        .body = body,
		                        .body_len = len,
		                        .call_id =
		                            msg_callid_ok(x->thread) ? x->thread : NULL,
		                        .max_len = MSG_PAGE_MAX_REQUEST};
		e = req_send(q, &rq);
	}
	free(from);
	free(subject);
	if (e == -EMSGSIZE)
		log_info(BR_MOD,
		         "IM from %s to %s refused: as a MESSAGE it would be over the "
		         "%d bytes of RFC 3428 section 8",
		         x->from, x->to_uri, MSG_PAGE_MAX_REQUEST);
	if (e)
		return xrefuse(r,
		               e == -ENOENT ? ERR_BRIDGE_DOMAIN_UNMAPPED : refusal_of(e));
	log_debug(BR_MOD, "IM from %s to %s sent as a MESSAGE (page mode)", x->from,
	          x->to_uri);
	return XLINK_TAKEN;
}

/* Typing outside a session: an RFC 3994 isComposing MESSAGE. */
static void x_page_typing(struct bi_tab *t, struct bi_xmsg *x, enum msg_typing typ)
{
	/* RFC 3994 section 4: after a 415 to one, no more for that user. */
	if (ttlmap_has(&t->notyping, x->to_uri, br_now()))
		return;
	char *doc = NULL, *from = br_name_addr(x->from_uri);
	size_t len = 0;
	int e =
	    from ? msg_iscomposing_build(typ, MSG_ISCOMPOSING_REFRESH_DEFAULT, &doc, &len)
	         : -ENOMEM;
	struct bi_req *q =
	    e ? NULL : req_new(t, BI_REQ_TYPING, NULL, x->from, x->to, NULL, x->to_uri);
	if (q) {
		struct sipleg_req rq = {.method = "MESSAGE",
		                        .ruri = x->to_uri,
		                        .from = from,
		                        .content_type = MSG_ISCOMPOSING_CONTENT_TYPE,
		                        .body = doc,
		                        .body_len = len};
		e = req_send(q, &rq);
	} else if (!e) {
		e = -ENOMEM;
	}
	if (e)
		log_debug(BR_MOD, "typing notification from %s to %s not sent: %s",
		          x->from, x->to_uri, strerror(-e));
	free(doc);
	free(from);
}

/* Typing inside a session: Lync's KeyboardActivity INFO, as Lync itself sends. */
static void x_session_typing(struct bi_sess *s, struct bi_xmsg *x, enum msg_typing typ)
{
	char *doc = NULL;
	size_t len = 0;
	int e = msg_kbactivity_build(typ, &doc, &len);
	struct bi_req *q =
	    e ? NULL : req_new(s->t, BI_REQ_TYPING, s, x->from, x->to, NULL, s->sip_uri);
	if (q) {
		struct sipleg_req rq = {.method = "INFO",
		                        .dialog = s->dlg,
		                        .content_type = MSG_KBACTIVITY_CONTENT_TYPE,
		                        .body = doc,
		                        .body_len = len};
		e = req_send(q, &rq);
	} else if (!e) {
		e = -ENOMEM;
	}
	if (e) {
		log_debug(BR_MOD, "typing notification from %s to %s not sent: %s",
		          x->from, s->sip_uri, strerror(-e));
	} else {
		s->typing_out = typ;
		sess_touch(s);
	}
	free(doc);
}

/* The session an XMPP message belongs to: the one its thread names (with the same
 * SIP party), else the pair's current one. */
static struct bi_sess *x_session_of(struct bi_tab *t, const struct bi_xmsg *x)
{
	if (x->thread) {
		struct state_im *im = state_im_by_thread(t->b->state, x->jid, x->thread);
		struct bi_sess *s = im ? im->rt : NULL;
		if (s && strcasecmp(s->sip_uri, x->to_uri) == 0)
			return s;
	}
	char *key = join(x->jid, x->to_uri);
	struct bi_sess *s = key ? hmap_get(&t->pairs, key, strlen(key)) : NULL;
	free(key);
	return s;
}

static bool queue_push(struct bi_sess *s, const struct bi_xmsg *x, const char *body,
                       size_t len, bool in_invite)
{
	if (s->nq >= BI_QUEUE_MAX)
		return false;
	struct bi_queued *q = &s->q[s->nq];
	bool oom = false;
	q->body = malloc(len + 1);
	if (q->body) {
		memcpy(q->body, body, len);
		q->body[len] = '\0';
	}
	q->len = len;
	q->xfrom = dup_or_null(x->from, &oom);
	q->xto = dup_or_null(x->to, &oom);
	q->id = dup_or_null(x->id, &oom);
	char lang[MSG_LANG_MAX];
	q->lang = msg_lang_to_sip(x->lang, lang) == 0 ? dup_or_null(lang, &oom) : NULL;
	q->in_invite = in_invite;
	if (oom || !q->body) {
		queued_free(q);
		return false;
	}
	s->nq++;
	return true;
}

/* The offer of an IM session, written as Lync writes its own (which is also how it
 * writes the answer). "m=message 5060 sip null" carries no media address, so o=
 * and c= only need to be well formed: the first listen address that names a host. */
static int sdp_offer(struct bridge *b, char **sdpp, size_t *lenp)
{
	const char *addr = "127.0.0.1";
	for (size_t i = 0; i < b->cf->nlisten; i++) {
		const char *h = b->cf->listen[i].addr.host;
		if (h && strcmp(h, "0.0.0.0") != 0 && strcmp(h, "::") != 0) {
			addr = h;
			break;
		}
	}
	return sipm_sdp_im_answer(addr, sdpp, lenp);
}

/*
 * A new session for x: INVITE with the first message in Ms-Text-Format, unless it
 * is longer than Lync takes there (MSG_MSTF_MAX_CHARS): then it waits and goes as
 * the first MESSAGE of the dialog.
 */
static int x_invite(struct bi_tab *t, struct bi_xmsg *x, const char *body, size_t len,
                    struct xlink_refusal *r)
{
	struct bridge *b = t->b;
	char thread[24], *mstf = NULL, *sdp = NULL, *from = NULL;
	size_t sdplen = 0;
	enum err_bridge why = ERR_BRIDGE_INTERNAL;
	int e;

	/* The conversation keeps the XMPP client's own thread when it has one
	 * (XEP-0201), so the replies land in the window it came from. */
	const char *th = x->thread;
	if (!th || !*th || strlen(th) > BI_THREAD_MAX) {
		char seed[64];
		snprintf(seed, sizeof(seed), "%lu|%lld", ++t->serial,
		         (long long)br_now());
		char *s2 = join(x->jid, seed);
		if (!s2)
			return xrefuse(r, ERR_BRIDGE_INTERNAL);
		make_thread(t, s2, thread, sizeof(thread));
		free(s2);
		th = thread;
	}
	struct bi_sess *s = sess_new(t, x->jid, x->to_uri, x->to_jid, th, false);
	if (!s)
		return xrefuse(r, ERR_BRIDGE_INTERNAL);
	e = msg_mstf_build(x->body, strlen(x->body), &mstf, NULL);
	if (e && e != -E2BIG) {
		why = refusal_of(e);
		goto fail;
	}
	if (!queue_push(s, x, body, len, e == 0) || sdp_offer(b, &sdp, &sdplen) ||
	    !(from = br_name_addr(x->from_uri)))
		goto fail;
	struct bi_req *q = req_new(t, BI_REQ_INVITE, s, x->from, x->to, x->id, x->to_uri);
	if (!q)
		goto fail;
	struct sipm_hdr h = {"Ms-Text-Format", mstf};
	struct sipleg_req rq = {.method = "INVITE",
	                        .ruri = x->to_uri,
	                        .from = from,
	                        .hdrs = mstf ? &h : NULL,
	                        .nhdrs = mstf ? 1 : 0,
	                        .content_type = SIPM_SDP_IM_TYPE,
	                        .body = sdp,
	                        .body_len = sdplen,
	                        .create_dialog = true};
	e = req_send(q, &rq);
	if (e) {
		why = e == -ENOENT ? ERR_BRIDGE_DOMAIN_UNMAPPED : ERR_BRIDGE_INTERNAL;
		goto fail;
	}
	log_info(BR_MOD, "IM session from %s to %s: INVITE sent%s", x->jid, x->to_uri,
	         mstf ? " with the first message"
	              : "; the first message follows the 200");
	free(mstf);
	free(sdp);
	free(from);
	return XLINK_TAKEN;
fail:
	free(mstf);
	free(sdp);
	free(from);
	sess_end(s, false);
	log_info(BR_MOD, "IM from %s to %s refused: %s", x->from, x->to_uri,
	         err_bridge(why)->explanation);
	return xrefuse(r, why);
}

static int x_session_text(struct bi_tab *t, struct bi_xmsg *x, const char *body,
                          size_t len, struct xlink_refusal *r)
{
	struct bi_sess *s = x_session_of(t, x);
	if (!s)
		return x_invite(t, x, body, len, r);
	if (s->phase == BI_INVITING) {
		if (!queue_push(s, x, body, len, false))
			return xrefuse(r, ERR_BRIDGE_LIMIT);
		return XLINK_TAKEN;
	}
	char lang[MSG_LANG_MAX];
	struct sipm_hdr lh;
	int e = sess_send_text(s, body, len, x->from, x->to, x->id,
	                       x_lang_hdr(x, lang, &lh) ? lang : NULL);
	if (e == -ENOMEM)
		return xrefuse(r, ERR_BRIDGE_INTERNAL);
	if (e) {
		/* The dialog can carry nothing more (its [peer] left the configuration
		 * on a reload): the conversation goes on in a new session. */
		log_info(BR_MOD,
		         "IM session between %s and %s ended: no request can be sent "
		         "in it (%s); opening a new one",
		         s->sip_uri, s->jid, strerror(-e));
		sess_end(s, false);
		return x_invite(t, x, body, len, r);
	}
	log_debug(BR_MOD, "IM from %s to %s sent in the session (Call-ID %s)", x->from,
	          s->sip_uri, sipd_call_id(s->dlg));
	return XLINK_TAKEN;
}

static int x_typing(struct bi_tab *t, struct bi_xmsg *x)
{
	enum msg_typing typ;
	if (msg_chatstate_to_typing(x->cs, &typ) != 0)
		return XLINK_TAKEN;
	if (x->peer->im == CONF_IM_PAGE) {
		x_page_typing(t, x, typ);
		return XLINK_TAKEN;
	}
	/* Chat states never open a session (XEP-0085: they only qualify
	 * a conversation that exists); nor do they wait for one being invited. */
	struct bi_sess *s = x_session_of(t, x);
	if (s && s->phase == BI_OPEN && s->typing_out != typ && !s->no_typing)
		x_session_typing(s, x, typ);
	return XLINK_TAKEN;
}

static int x_relay(struct bi_tab *t, xmpp_stanza_t *st, struct xlink_refusal *r)
{
	struct bi_xmsg x = {0};
	char *body = NULL;
	size_t len = 0;
	int rc = xmsg_read(t->b, st, &x, r);
	if (rc != XLINK_TAKEN)
		goto out;
	if (!x.body) {
		/* Receipts, markers and other extensions without a body say nothing a
		 * SIP user would see; chat states are typing, and never bounce
		 * (XEP-0085 leaves their loss unreported). */
		rc = x.has_cs && x.peer ? x_typing(t, &x) : XLINK_TAKEN;
		goto out;
	}
	if (!x.peer) {
		/* The SIP leg routes by domain; without a [peer] for it nothing can. */
		log_info(BR_MOD, "IM from %s to %s refused: no [peer] serves %s", x.from,
		         x.to_uri, uri_domain(x.to_uri));
		rc = xrefuse(r, ERR_BRIDGE_DOMAIN_UNMAPPED);
		goto out;
	}
	int e = msg_text_to_sip(x.body, strlen(x.body), &t->b->msglim, &body, &len);
	if (e) {
		log_info(BR_MOD, "IM from %s to %s refused: %s", x.from, x.to_uri,
		         err_bridge(refusal_of(e))->explanation);
		rc = xrefuse(r, refusal_of(e));
		goto out;
	}
	rc = x.peer->im == CONF_IM_PAGE ? x_page_text(t, &x, body, len, r)
	                                : x_session_text(t, &x, body, len, r);
out:
	free(body);
	xmsg_free(&x);
	return rc;
}

/*
 * Tell the SIP sender of p that its message was not delivered: a MESSAGE from
 * the XMPP recipient's address, in the session's dialog while it is open (the
 * report shows in the conversation it belongs to), else outside any dialog.
 * Its own failure is only logged: nothing reports a report.
 */
static void report_to_sip(struct bi_tab *t, const struct bi_pend *p, const char *cond,
                          const char *etext)
{
	struct bridge *b = t->b;
	struct state_im *im =
	    p->call_id ? state_im_by_dialog(b->state, p->call_id) : NULL;
	struct bi_sess *s = im ? im->rt : NULL;
	enum err_cond ec = ERR_COND_UNDEFINED_CONDITION;
	struct err_sip es = {0, NULL};
	char *sender = NULL, *rcpt = NULL, *from = NULL, *text = NULL, *body = NULL;
	size_t len = 0;
	int e = -ENOMEM;

	if (err_cond_from_name(cond, &ec) != 0)
		cond = err_cond_name(ec);
	/* RFC 7247 section 7.1 notes 1 and 2: the 6xx (and 501) codes where the
	 * failed stanza went to a bare JID, as a page-mode message does. */
	err_xmpp_to_sip(
	    ec, p->rcpt_jid && !strchr(p->rcpt_jid, '/') ? ERR_X2S_BARE_JID : 0, &es);
	struct msg_report rep = {.to = p->rcpt_jid,
	                         .excerpt = p->excerpt,
	                         .cond = cond,
	                         .sip_code = es.code,
	                         .sip_reason = es.reason,
	                         .text = etext};
	/* The peer's <text/> may be anything: a report without it beats none. */
	if (msg_report_build(&rep, &text) != 0) {
		rep.text = NULL;
		if (msg_report_build(&rep, &text) != 0)
			goto out;
	}
	if (msg_text_to_sip(text, strlen(text), NULL, &body, &len) != 0 ||
	    br_jid_to_uri(b, p->sender_jid, &sender, NULL, NULL) != 0 ||
	    br_jid_to_uri(b, p->rcpt_jid, &rcpt, NULL, NULL) != 0 ||
	    !(from = br_name_addr(rcpt)))
		goto out;
	bool in_dialog = s && s->phase == BI_OPEN && s->dlg;
	struct bi_req *q =
	    req_new(t, BI_REQ_REPORT, NULL, p->rcpt_jid, p->sender_jid, NULL, sender);
	if (q) {
		struct sipleg_req rq = {.method = "MESSAGE",
		                        .dialog = in_dialog ? s->dlg : NULL,
		                        .ruri = sender,
		                        .from = from,
		                        .content_type = MSG_SIP_CONTENT_TYPE,
		                        .body = body,
		                        .body_len = len};
		e = req_send(q, &rq);
	}
	if (!e) {
		log_info(BR_MOD,
		         "IM from %s to %s not delivered on the XMPP side (%s); the SIP "
		         "user is told by a MESSAGE%s",
		         sender, p->rcpt_jid, cond, in_dialog ? " in the session" : "");
		if (in_dialog)
			sess_touch(s);
	}
out:
	if (e)
		log_warn(
		    BR_MOD,
		    "IM from %s to %s not delivered on the XMPP side (%s); the report "
		    "to the SIP user could not be sent: %s",
		    p->sender_jid, p->rcpt_jid, cond, strerror(-e));
	free(sender);
	free(rcpt);
	free(from);
	free(text);
	free(body);
}

/*
 * An XMPP error about a message the bridge relayed from SIP. The SIP sender had
 * its answer when the message was handed to the XMPP server (202 in page mode,
 * RFC 3428 section 7; 200 in a Lync session), so the error travels as a MESSAGE
 * back (report_to_sip), found by the stanza id (RFC 6120 section 8.1.3: an error
 * stanza carries the id of the stanza it is about). Only the recipient's side
 * can fail a message: an error from anyone else, for an unknown or expired id,
 * or about a typing notification (XEP-0085 leaves their loss unreported) is
 * logged.
 */
static int x_error(struct bi_tab *t, xmpp_stanza_t *st, struct xlink_refusal *r)
{
	const char *from = xmpp_stanza_get_from(st), *to = xmpp_stanza_get_to(st);
	const char *id = xmpp_stanza_get_id(st);
	const char *cond = "undefined-condition";
	char *etext = NULL, *bare = from ? bare_jid(from) : NULL;
	xmpp_stanza_t *e = xmpp_stanza_get_child_by_name(st, "error");
	(void)r;
	for (xmpp_stanza_t *c = e ? xmpp_stanza_get_children(e) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		const char *n = xmpp_stanza_is_tag(c) ? xmpp_stanza_get_name(c) : NULL;
		const char *ns = n ? xmpp_stanza_get_ns(c) : NULL;
		if (!ns || strcmp(ns, ERR_NS_STANZAS) != 0)
			continue;
		if (strcmp(n, "text") == 0) {
			if (!etext)
				etext = xmpp_stanza_get_text(c);
		} else if (strcmp(cond, "undefined-condition") == 0) {
			cond = n;
		}
	}
	struct bi_pend *p = id ? ttlmap_take(&t->pend, id, br_now()) : NULL;
	if (p && bare && to && strcasecmp(p->rcpt_jid, bare) == 0 &&
	    strncasecmp(p->sender_jid, to, strcspn(to, "/")) == 0 &&
	    strlen(p->sender_jid) == strcspn(to, "/")) {
		report_to_sip(t, p, cond, etext);
		pend_free(p);
	} else {
		if (p)
			ttlmap_put(&t->pend, id, p,
			           br_now()); /* not its recipient: keep waiting */
		log_info(BR_MOD,
		         "IM from %s to %s was not delivered on the XMPP side: %s",
		         to ? to : "?", from ? from : "?", cond);
	}
	if (etext)
		xmpp_free(xmpp_stanza_get_context(st), etext);
	free(bare);
	return XLINK_TAKEN;
}

static int x_groupchat(struct bi_tab *t, xmpp_stanza_t *st, struct xlink_refusal *r)
{
	(void)t;
	(void)st;
	r->cond = ERR_COND_FEATURE_NOT_IMPLEMENTED;
	r->text = "the bridge relays one-to-one messages only, not group chat";
	return XLINK_REFUSE;
}

typedef int(bi_xmsg_h)(struct bi_tab *t, xmpp_stanza_t *st, struct xlink_refusal *r);

/* RFC 6121 section 5.2.2 message types; an unknown type is read as normal. */
static const struct {
	const char *type;
	bi_xmsg_h *h;
} xtypes[] = {
    {"chat", x_relay},          {"normal", x_relay}, {"headline", x_relay},
    {"groupchat", x_groupchat}, {"error", x_error},
};

int bi_xmpp_message(struct bridge *b, xmpp_stanza_t *st, struct xlink_refusal *r)
{
	struct bi_tab *t = tab_of(b);
	const char *type = xmpp_stanza_get_type(st);
	bi_xmsg_h *h = x_relay;
	for (size_t i = 0; type && i < sizeof(xtypes) / sizeof(xtypes[0]); i++)
		if (strcmp(xtypes[i].type, type) == 0)
			h = xtypes[i].h;
	if (!t)
		return h == x_error ? XLINK_TAKEN : xrefuse(r, ERR_BRIDGE_INTERNAL);
	return h(t, st, r);
}

/* ---- lifecycle ---- */

struct bi_ids {
	char **v;
	size_t n, cap;
	int err;
};

static int collect_im(const struct store_im *im, void *arg)
{
	struct bi_ids *ids = arg;
	if (ids->n == ids->cap) {
		size_t cap = ids->cap ? ids->cap * 2 : 16;
		char **v = realloc(ids->v, cap * sizeof(*v));
		if (!v)
			return ids->err = -ENOMEM;
		ids->v = v;
		ids->cap = cap;
	}
	if (!(ids->v[ids->n] = strdup(im->call_id)))
		return ids->err = -ENOMEM;
	ids->n++;
	return 0;
}

/*
 * Bring back saved session im with its dialog. Returns NULL and *whyp (plain
 * words) when it cannot be: the record lacks what the leg needs, the SIP user's
 * domain has no [peer] any more, or its addresses are no longer bridged.
 */
static struct bi_sess *resume(struct bi_tab *t, struct state_im *im, const char **whyp)
{
	struct bridge *b = t->b;
	char *local = NULL, *sip_jid = NULL;
	struct bi_sess *s = NULL;
	const struct conf_peer *p = conf_peer_for_domain(b->cf, uri_domain(im->sip_uri));

	*whyp = "out of memory";
	if (!im->local_tag || !im->remote_tag || !im->remote_target) {
		*whyp = "its dialog was not saved whole";
		return NULL;
	}
	if (!p) {
		*whyp = "no [peer] serves its SIP domain any more";
		return NULL;
	}
	if (br_jid_to_uri(b, im->jid, &local, NULL, NULL) != 0 ||
	    br_uri_to_jid(b, im->sip_uri, &sip_jid, NULL) != 0) {
		*whyp = "its addresses are not bridged any more";
		goto out;
	}
	struct sipd_saved sv = {
	    .call_id = im->call_id,
	    .local_tag = im->local_tag,
	    .remote_tag = im->remote_tag,
	    .local_uri = local,
	    .remote_uri = im->sip_uri,
	    .remote_target = im->remote_target,
	    .route_set = im->route_set,
	    .local_cseq = im->local_cseq + (b->takeover ? BR_TAKEOVER_CSEQ_STEP : 0),
	    .peer = p->name,
	    .invite = true,
	};
	struct sipd *d = sipd_restore(b->sip, &sv);
	if (!d) {
		*whyp = "the SIP leg could not recreate its dialog";
		goto out;
	}
	s = sess_new(t, im->jid, im->sip_uri, sip_jid, im->thread, im->sip_initiated);
	if (!s) {
		sipd_terminate(d);
		goto out;
	}
	s->im = im;
	s->dlg = d;
	s->phase = BI_OPEN;
	im->rt = s;
	/* The dialog resumes SIPD_CSEQ_RESUME_GAP above the saved CSeq: saved at
	 * once, so that a second restart goes higher still. */
	s->saved_activity = im->last_activity;
	sess_save(s);
out:
	free(local);
	free(sip_jid);
	return s;
}

/*
 * A restart keeps the conversations that were open: each saved session gets its
 * dialog back from the leg (sipd_restore) and its idle clock where it stood, so
 * the next message on either side goes on in the same dialog and thread. One
 * idle for longer than im_idle_timeout while the bridge was down ends with BYE
 * now; one that cannot be resumed is dropped (the SIP side's next request in it
 * gets 481, and Lync opens a new session).
 */
void bi_restore(struct bridge *b)
{
	struct bi_tab *t = calloc(1, sizeof(*t));
	struct bi_ids ids = {0};
	uint64_t k[2] = {0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL};
	size_t resumed = 0;

	if (!t) {
		log_error(BR_MOD, "IM: out of memory; instant messages will be refused");
		return;
	}
	/* Without randomness thread names are still unique per Call-ID; they only
	 * become predictable, which costs nothing here. */
	if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k))
		k[0] ^= (uint64_t)(uintptr_t)t;
	t->b = b;
	t->k0 = k[0];
	t->k1 = k[1];
	hmap_init(&t->pairs, k[1], k[0]);
	ttlmap_init(&t->pend, BI_PEND_MAX, BI_PEND_TTL_MS, pend_free, k[0], k[1] ^ 1);
	ttlmap_init(&t->notyping, BI_NOTYPING_MAX, BI_NOTYPING_TTL_MS, NULL, k[0] ^ 1,
	            k[1]);
	b->im = t;

	int e = store_im_each(b->store, collect_im, &ids);
	if (e)
		log_warn(BR_MOD, "state: saved IM sessions could not all be read: %s",
		         ids.err ? strerror(-ids.err) : store_errmsg(b->store));
	bool tx = ids.n > 1 && store_begin(b->store) == 0;
	for (size_t i = 0; i < ids.n; i++) {
		struct state_im *im = state_im_by_dialog(b->state, ids.v[i]);
		const char *why = NULL;
		struct bi_sess *s = im ? resume(t, im, &why) : NULL;
		free(ids.v[i]);
		if (!im)
			continue;
		if (!s) {
			log_info(
			    BR_MOD,
			    "IM session between %s and %s (Call-ID %s) cannot be resumed "
			    "after a restart (%s); dropped, the next message opens a new "
			    "one",
			    im->sip_uri, im->jid, im->call_id, why);
			state_im_drop(b->state, im);
			continue;
		}
		int64_t idle = br_now() - im->last_activity;
		if (b->takeover) {
			/* Issue 18: a session is not moved to the node that takes over;
			 * it ends cleanly, and the next message opens a new one (see
			 * docs/design-notes.md, "Pool"). */
			log_info(
			    BR_MOD,
			    "IM session between %s and %s ended (BYE): taken over from "
			    "another node",
			    s->sip_uri, s->jid);
			sess_end(s, true);
			continue;
		}
		if (b->im_idle_ms && idle >= (int64_t)b->im_idle_ms) {
			log_info(
			    BR_MOD,
			    "IM session between %s and %s ended (BYE): idle for %lld s, "
			    "longer than im_idle_timeout, across the restart",
			    s->sip_uri, s->jid, (long long)(idle / 1000));
			sess_end(s, true);
			continue;
		}
		if (b->im_idle_ms)
			loop_timer_start(
			    b->loop, &s->idle_t,
			    (uint64_t)(b->im_idle_ms - (idle > 0 ? idle : 0)), on_idle,
			    s);
		log_info(BR_MOD,
		         "IM session between %s and %s (Call-ID %s, thread %s) resumed "
		         "after a "
		         "restart",
		         s->sip_uri, s->jid, im->call_id, s->thread);
		resumed++;
	}
	if (tx)
		store_commit(b->store);
	free(ids.v);
	if (ids.n)
		log_info(BR_MOD, "IM: %zu of %zu saved sessions resumed", resumed, ids.n);
}

void bi_shutdown(struct bridge *b)
{
	struct bi_tab *t = tab_of(b);
	size_t byes = 0;
	if (!t)
		return;
	while (t->sess) {
		struct bi_sess *s = t->sess;
		if (s->phase == BI_OPEN) {
			log_info(BR_MOD,
			         "IM session between %s and %s ended (BYE): the bridge "
			         "is stopping",
			         s->sip_uri, s->jid);
			byes++;
			sess_end(s, true);
			continue;
		}
		/* Messages still waiting for a 2xx will not be delivered: say so. A 2xx
		 * arriving before the leg stops gets its BYE (resp_invite). */
		for (size_t i = 0; i < s->nq; i++) {
			const struct err_refusal *row =
			    err_bridge(ERR_BRIDGE_SHUTTING_DOWN);
			br_xmpp_error(b, "message", s->q[i].xto, s->q[i].xfrom,
			              s->q[i].id, row->cond, row->explanation);
		}
		sess_end(s, false);
	}
	if (byes)
		log_info(BR_MOD, "IM: %zu session%s ended with BYE", byes,
		         byes == 1 ? "" : "s");
}

void bi_free(struct bridge *b)
{
	struct bi_tab *t = tab_of(b);
	if (!t)
		return;
	/* The leg stops after this without calling back: requests lose their
	 * callback, sessions their run-time part; dialogs and saved records stay
	 * for the leg and the state table to free. */
	while (t->reqs) {
		sipleg_clt_abandon(t->reqs->clt);
		req_free(t->reqs);
	}
	while (t->sess) {
		struct bi_sess *s = t->sess;
		if (s->im)
			s->im->rt = NULL;
		sess_free(s);
	}
	hmap_free(&t->pairs);
	ttlmap_free(&t->pend);
	ttlmap_free(&t->notyping);
	b->im = NULL;
	free(t);
}

/*
 * bridge_pres - subscriptions and presence across the bridge (RFC 8048).
 *
 * Every decision is the subscription state machine's (src/core/sub.c): this file
 * reads events off the wire, feeds sub_transition(), and performs the actions it
 * returns, in ascending bit order as sub.h requires. Presence documents go
 * through src/core/pres.c and mappings/presence.map.
 *
 * Keys: a SIP watcher's subscription is (sip:watcher URI, presentity bare JID),
 * or a full JID when the SUBSCRIBE named one device's GRUU (RFC 7247 section
 * 6.3): its NOTIFYs carry that device's tuple only. An XMPP watcher's is
 * (watcher bare JID, sip:presentity URI). The presence cache is keyed by user:
 * XMPP users by bare JID, SIP users by SIP URI.
 */
#include "bridge_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "presbridge/log.h"
#include "presbridge/pres.h"
#include "presbridge/sbuf.h"

#define PIDF_TYPE "application/pidf+xml"
/* What the bridge reads in NOTIFYs, best first (DESIGN.md, presence section). */
#define ACCEPT_PRESENCE                                                                  \
	"application/pidf+xml, application/msrtc-event-categories+xml, "                 \
	"text/xml+msrtc.pidf"

/* Run-time data of one subscription (state_sub.rt): never persisted. */
struct bp_rt {
	struct bridge *b;
	struct state_sub *sub;
	struct loop_timer timer;
	enum sub_event timer_ev;
	struct sipd *dlg;       /* the leg's dialog while it is up */
	struct sipleg_clt *clt; /* our SUBSCRIBE awaiting its answer */
	uint32_t asked; /* Expires our last SUBSCRIBE asked for (a 423 needs it) */
	bool asked_in_dialog;
	/* A SUBSCRIBE the leg refused before sending (no route, no memory) is
	 * answered on the next loop turn, outside the transition that sent it. */
	struct loop_timer refused_t;
	int refused_status;
	size_t renotify_slot; /* 1 + its index in b->renotify; 0: not queued */
	/* After the XMPP user's approval: the first NOTIFY active waits for the
	 * presence the XMPP server sends right behind `subscribed`. */
	struct loop_timer settle_t;
	bool settling;
	bool settle_burst; /* the user's presence came: the wait is shortened */
	/* An XMPP watcher of a SIP user: the devices (GRUU contacts, RFC 7247
	 * section 6.3) it was last told are available, as full JIDs, and whether
	 * the bare JID was; a device that leaves the document is told
	 * unavailable. Not persisted: after a restart the refresh's NOTIFY tells
	 * all again. */
	char **told;
	size_t ntold;
	bool told_bare;
};

/*
 * How long the first NOTIFY after an approval waits for the XMPP user's
 * presence. An XMPP server sends a contact the user's presence only after the
 * `subscribed` (RFC 6121 3.1.5), so at the approval the cache is empty or stale;
 * a NOTIFY sent at once said closed (or nothing) and the true one followed
 * within the same millisecond. Waiting sends only the true one: the first
 * presence of the user shortens the wait to APPROVAL_BURST_MS (notify_pair), so
 * the presences the server sends together make one NOTIFY and later changes are
 * not held back; if none comes, whatever is known when the wait ends goes out
 * (nothing known: no body, RFC 8048 5.3.1 F32).
 */
#define APPROVAL_SETTLE_MS 1000
#define APPROVAL_BURST_MS  100

static int64_t now_s(void)
{
	return br_now() / 1000;
}

static struct bp_rt *rt_of(struct bridge *b, struct state_sub *sub)
{
	if (!sub->rt) {
		struct bp_rt *rt = calloc(1, sizeof(*rt));
		if (!rt)
			return NULL;
		rt->b = b;
		rt->sub = sub;
		sub->rt = rt;
	}
	return sub->rt;
}

/* Forget everything run-time about sub: its timer, its pending SUBSCRIBE, the
 * leg's pointer back to it. */
static void rt_release(struct bridge *b, struct state_sub *sub)
{
	struct bp_rt *rt = sub->rt;
	if (!rt)
		return;
	loop_timer_cancel(b->loop, &rt->timer);
	loop_timer_cancel(b->loop, &rt->refused_t);
	loop_timer_cancel(b->loop, &rt->settle_t);
	if (rt->clt)
		sipleg_clt_abandon(rt->clt);
	if (rt->dlg)
		sipd_set_arg(rt->dlg, NULL);
	if (rt->renotify_slot)
		b->renotify[rt->renotify_slot - 1] = NULL;
	for (size_t i = 0; i < rt->ntold; i++)
		free(rt->told[i]);
	free(rt->told);
	free(rt);
	sub->rt = NULL;
}

static const char *bare(const char *jid, char *buf, size_t len)
{
	size_t n = strcspn(jid, "/");
	if (n >= len)
		n = len - 1;
	memcpy(buf, jid, n);
	buf[n] = '\0';
	return buf;
}

/* The device a SIP watcher's presentity key names (a subscription to a GRUU,
 * keyed by the full JID), or NULL. SIP URI keys are never devices. */
static const char *key_device(const char *key)
{
	const char *slash = strncmp(key, "sip:", 4) != 0 ? strchr(key, '/') : NULL;
	return slash ? slash + 1 : NULL;
}

/* The presence cache key of a subscription key: the user, without the device. */
static const char *key_user(const char *key, char *buf, size_t len)
{
	return key_device(key) ? bare(key, buf, len) : key;
}

/* Keep only the device dev in p; if it is not there, it is closed: one closed
 * device entry, so the watcher of its GRUU still sees which device it is. */
static void only_device(struct pres *p, const char *dev)
{
	size_t k = 0;
	for (size_t i = 0; i < p->n; i++)
		if (p->e[i].device && strcmp(p->e[i].id, dev) == 0)
			p->e[k++] = p->e[i];
	p->n = k;
	if (k == 0) {
		struct pres_entry *e = &p->e[0];
		memset(e, 0, sizeof(*e));
		snprintf(e->id, sizeof(e->id), "%s", dev);
		e->device = true;
		e->activity = PRES_ACT_OFFLINE;
		p->n = 1;
	}
}

/* ---- presence documents and stanzas ---- */

static int asprintf_full(char **outp, const char *user, const char *res);

/* The JID an entity is known by on XMPP, and the URI on SIP (caller-owns). */
static char *jid_of(struct bridge *b, const char *key)
{
	char *jid = NULL;
	if (strncmp(key, "sip:", 4) != 0)
		return strdup(key);
	return br_uri_to_jid(b, key, &jid, NULL) == 0 ? jid : NULL;
}

static char *uri_of(struct bridge *b, const char *key)
{
	char *uri = NULL;
	if (strncmp(key, "sip:", 4) == 0)
		return strdup(key);
	/* A device's key is a full JID: its SIP name is its GRUU. */
	return br_jid_to_gruu(b, key, &uri, NULL) == 0 ? uri : NULL;
}

/* One XMPP presence of entry e (NULL or !avail: unavailable), from `from`
 * ("/" and resource appended when resource is non-NULL) to `to`. */
static void send_entry(struct bridge *b, const struct pres_entry *e, bool avail,
                       const char *from, const char *resource, const char *to)
{
	struct pres_xmpp x = {0};
	char *full = NULL;

	if (e)
		pres_to_xmpp(b->cf->pres, e, &x);
	avail = avail && e && x.available;
	if (resource && asprintf_full(&full, from, resource) != 0)
		return;
	xmpp_stanza_t *st = br_stanza(b, "presence", avail ? NULL : "unavailable",
	                              full ? full : from, to);
	if (st) {
		if (avail && x.show)
			br_stanza_text(b, st, "show", NULL, x.show);
		if (x.status && *x.status)
			br_stanza_text(b, st, "status", NULL, x.status);
		if (avail) {
			char prio[16];
			snprintf(prio, sizeof(prio), "%d", x.priority);
			br_stanza_text(b, st, "priority", NULL, prio);
		}
		br_xmpp_send(b, st);
		xmpp_stanza_release(st);
	}
	free(full);
}

static bool told_has(const struct bp_rt *rt, const char *id)
{
	for (size_t i = 0; rt && i < rt->ntold; i++)
		if (strcmp(rt->told[i], id) == 0)
			return true;
	return false;
}

/* The devices rt told available that p no longer has go unavailable; the
 * list becomes p's devices. */
static void told_update(struct bridge *b, struct bp_rt *rt, const struct pres *p,
                        const char *from, const char *to)
{
	size_t k = 0;
	for (size_t i = 0; i < rt->ntold; i++) {
		bool still = false;
		for (size_t j = 0; j < p->n && !still; j++)
			still = p->e[j].device && p->e[j].open &&
			        strcmp(p->e[j].id, rt->told[i]) == 0;
		if (!still) {
			send_entry(b, NULL, false, from, rt->told[i], to);
			free(rt->told[i]);
		} else {
			rt->told[k++] = rt->told[i];
		}
	}
	rt->ntold = k;
	for (size_t j = 0; j < p->n; j++) {
		if (!p->e[j].device || !p->e[j].open || told_has(rt, p->e[j].id))
			continue;
		char **v = realloc(rt->told, (rt->ntold + 1) * sizeof(*v));
		if (!v)
			return;
		rt->told = v;
		if ((v[rt->ntold] = strdup(p->e[j].id)) != NULL)
			rt->ntold++;
	}
}

/*
 * The current presence of presentity `key` as XMPP presence, from `from` to
 * `to`. A SIP user's device, a tuple whose contact is a GRUU (RFC 7247 section
 * 6.4 step 8), is presence from the full JID with the gr as resourcepart, so
 * the XMPP watcher sees one resource per device; the other tuples make one
 * presence from the bare JID, as before (RFC 8048 section 6.3, Example 21).
 * Devices that left the document are told unavailable. rt: the watcher's
 * run-time data (NULL: no memory of what was told).
 */
static void send_presence(struct bridge *b, struct bp_rt *rt, const char *key,
                          const char *from, const char *to)
{
	struct pres *p = malloc(sizeof(*p)), *rest = malloc(sizeof(*rest));
	struct pres_entry sum;
	size_t ndev = 0;

	if (!p || !rest)
		goto out;
	state_pres_model(b->state, key, p);
	pres_init(rest);
	for (size_t i = 0; i < p->n; i++) {
		if (p->e[i].device && p->e[i].open)
			ndev++;
		else
			pres_update(rest, &p->e[i]);
	}
	if (ndev == 0 || rest->n > 0) {
		pres_summary(rest, b->cf->pres, &sum);
		send_entry(b, &sum, true, from, NULL, to);
		if (rt)
			rt->told_bare = true;
	} else if (rt && rt->told_bare) {
		/* Only devices now: the bare JID's earlier presence ends first. */
		send_entry(b, NULL, false, from, NULL, to);
		rt->told_bare = false;
	}
	if (rt)
		told_update(b, rt, p, from, to);
	for (size_t i = 0; i < p->n; i++)
		if (p->e[i].device && p->e[i].open)
			send_entry(b, &p->e[i], true, from, p->e[i].id, to);
out:
	free(p);
	free(rest);
}

/* Everything the watcher was told goes unavailable: its devices, the bare JID. */
static void send_unavailable(struct bridge *b, struct bp_rt *rt, const char *from,
                             const char *to)
{
	for (size_t i = 0; rt && i < rt->ntold; i++) {
		send_entry(b, NULL, false, from, rt->told[i], to);
		free(rt->told[i]);
	}
	if (rt) {
		rt->ntold = 0;
		rt->told_bare = false;
	}
	send_entry(b, NULL, false, from, NULL, to);
}

static void send_simple(struct bridge *b, const char *type, const char *from,
                        const char *to)
{
	xmpp_stanza_t *st = br_stanza(b, "presence", type, from, to);
	if (st) {
		br_xmpp_send(b, st);
		xmpp_stanza_release(st);
	}
}

/* The PIDF document for presentity `key` (closed: as unreachable). Caller-owns.
 * For a device's key: that device's tuple only, in the user's document (the
 * entity is the user; the tuple's contact is the GRUU). */
static char *pidf_of(struct bridge *b, const char *key, bool closed, size_t *lenp)
{
	struct pres *p = malloc(sizeof(*p));
	char ubuf[ADDR_MAX_INPUT + 1];
	const char *user = key_user(key, ubuf, sizeof(ubuf));
	const char *dev = key_device(key);
	char *doc = NULL, *uri = uri_of(b, user);

	if (p && uri) {
		if (closed)
			pres_init(p);
		else
			state_pres_model(b->state, user, p);
		if (dev)
			only_device(p, dev);
		if (pres_write_pidf(p, b->cf->pres, uri, &doc, lenp) != 0)
			doc = NULL;
	}
	free(uri);
	free(p);
	return doc;
}

/* Tie the leg's dialog to sub and record what a restart needs to resume it. */
static void attach_dialog(struct bridge *b, struct state_sub *sub, struct sipd *dlg)
{
	struct bp_rt *rt = rt_of(b, sub);
	if (!rt || rt->dlg == dlg)
		return;
	rt->dlg = dlg;
	sipd_set_arg(dlg, rt);
	state_sub_set_dialog(b->state, sub, sipd_call_id(dlg), sipd_local_tag(dlg),
	                     sipd_remote_tag(dlg));
	state_set_str(&sub->peer, sipd_peer(dlg));
	state_set_str(&sub->remote_target, sipd_remote_target(dlg));
	char *routes = sipd_route_set(dlg);
	if (routes) {
		state_set_str(&sub->route_set, *routes ? routes : NULL);
		free(routes);
	}
	sub->local_cseq = sipd_local_cseq(dlg);
}

/* Forget sub's dialog: in the leg, in the table, in the run-time data. */
static void end_dialog(struct bridge *b, struct state_sub *sub)
{
	struct bp_rt *rt = sub->rt;
	if (rt && rt->dlg) {
		sipd_set_arg(rt->dlg, NULL);
		sipd_terminate(rt->dlg);
		rt->dlg = NULL;
	}
	state_sub_set_dialog(b->state, sub, NULL, NULL, NULL);
}

/* Remove sub for good: its timers and pending request, then the entry itself. */
static void drop_sub(struct bridge *b, struct state_sub *sub)
{
	rt_release(b, sub);
	state_sub_drop(b->state, sub);
}

/* ---- SIP requests the bridge sends ---- */

static struct state_sub *feed(struct bridge *b, struct state_sub *sub, enum sub_event ev,
                              const struct sub_event_info *info, struct sipleg_srv *srv);

static void on_notify_resp(int status, struct sipm *resp, struct sipd *dlg, void *arg)
{
	struct bridge *b = arg;
	(void)resp;
	if (status < 300)
		return;
	/* The watcher's dialog is gone (481), or its client is (408): the
	 * subscription sleeps until the watcher subscribes again. */
	struct bp_rt *rt = dlg ? sipd_arg(dlg) : NULL;
	log_info(BR_MOD, "NOTIFY answered %d%s", status,
	         rt ? "; the watcher's subscription is treated as expired" : "");
	if (rt && (status == 481 || status == 408)) {
		struct sub_event_info info = {.now = now_s()};
		feed(b, rt->sub, SUB_EV_TIMER_EXPIRY, &info, NULL);
	}
}

/* Sends the NOTIFY res asks for. Returns true when the presentity's presence is
 * not known yet (an XMPP contact that has just approved, before its server
 * relays its presence): the NOTIFY then carries no body rather than a false
 * "offline" (RFC 6665 section 4.2.2: a notifier without state information sends
 * none; RFC 8048 5.3.2), and the caller probes for it (RFC 8048 7.2), so the
 * next NOTIFY, or the next fetch, carries it. */
static void save_sub(struct bridge *b, struct state_sub *sub);

/*
 * The local CSeq a restored dialog starts from must be above every CSeq sent in
 * it (RFC 3261 section 12.2.2: the peer refuses a lower one with 500, and the
 * bridge would take that as the end of the subscription). Saving it with every
 * NOTIFY would be a write per presence change; instead the saved value is a
 * ceiling, reserved BR_CSEQ_RESERVE at a time, and saved before the request
 * that crosses it, whose sending then waits for that write (durability before
 * output). A restart or a takeover, however often, resumes above it.
 */
#define BR_CSEQ_RESERVE 100u
_Static_assert(STATE_CSEQ_HEADROOM == SIPD_CSEQ_RESUME_GAP + BR_CSEQ_RESERVE,
               "a resumed dialog gets exactly one reservation of headroom");

static void reserve_cseq(struct bridge *b, struct state_sub *sub)
{
	struct bp_rt *rt = sub->rt;
	if (!rt || !rt->dlg)
		return;
	uint32_t next = sipd_local_cseq(rt->dlg) + 1;
	if (next <= sub->local_cseq)
		return;
	sub->local_cseq = next + BR_CSEQ_RESERVE - 1;
	save_sub(b, sub);
}

static bool send_notify(struct bridge *b, struct state_sub *sub,
                        const struct sub_result *res)
{
	bool unknown = false;
	struct bp_rt *rt = sub->rt;
	char ss[128], *body = NULL;
	size_t blen = 0;
	struct sub_substate n = res->notify;

	if (!rt || !rt->dlg) {
		log_debug(BR_MOD, "no dialog to NOTIFY %s about %s", sub->watcher,
		          sub->presentity);
		return false;
	}
	if (!n.has_expires && n.state != SUB_SS_TERMINATED) {
		int64_t left = sub->expires_at / 1000 - now_s();
		n.expires = left > 0 ? (uint32_t)left : 0;
		n.has_expires = true;
	}
	if (sub_substate_format(&n, ss, sizeof(ss)) < 0)
		return false;
	/* Also a fetch's NOTIFY terminated: RFC 8048 5.3.2 wants it empty when
	 * nothing is known, and 7.2 turns such a poll into a probe. */
	char ubuf[ADDR_MAX_INPUT + 1];
	unknown =
	    res->body == SUB_BODY_CURRENT && sub->st.dir == SUB_DIR_SIP_WATCHER &&
	    !state_pres_get(b->state, key_user(sub->presentity, ubuf, sizeof(ubuf)));
	if (res->body != SUB_BODY_NONE && !unknown)
		body = pidf_of(b, sub->presentity, res->body == SUB_BODY_CLOSED, &blen);
	struct sipm_hdr h[] = {{"Event", "presence"}, {"Subscription-State", ss}};
	struct sipleg_req rq = {
	    .method = "NOTIFY",
	    .dialog = rt->dlg,
	    .hdrs = h,
	    .nhdrs = 2,
	    .content_type = body ? PIDF_TYPE : NULL,
	    .body = body,
	    .body_len = blen,
	};
	reserve_cseq(b, sub);
	int e = sipleg_request(b->sip, &rq, on_notify_resp, b, NULL);
	if (e)
		log_warn(BR_MOD, "NOTIFY to %s not sent: %s", sub->watcher, strerror(-e));
	free(body);
	if (n.state == SUB_SS_TERMINATED)
		end_dialog(b, sub); /* RFC 6665 4.4.1: the final NOTIFY ends it */
	return unknown;
}

static uint32_t header_u32(struct sipm *m, const char *name, uint32_t dflt)
{
	const char *v = m ? sipm_header(m, name, 0) : NULL;
	if (!v || !*v)
		return dflt;
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	return (end == v || n > UINT32_MAX) ? dflt : (uint32_t)n;
}

static void on_subscribe_resp(int status, struct sipm *resp, struct sipd *dlg, void *arg)
{
	struct bp_rt *rt = arg;
	struct bridge *b = rt->b;
	struct state_sub *sub = rt->sub;
	struct sub_event_info info = {.now = now_s()};
	enum sub_event ev;

	rt->clt = NULL;
	if (status == 401 || status == 407)
		log_warn(
		    BR_MOD,
		    "SUBSCRIBE for %s was challenged (%d): the SIP server must treat the "
		    "bridge as a trusted application and exclude it from authentication",
		    sub->presentity, status);
	info.expires = status == 423 ? rt->asked : header_u32(resp, "Expires", rt->asked);
	/* The answer to an unsubscribe ends it, whatever Expires the peer wrote:
	 * re-sending Expires: 0 to a peer that grants time would never stop. */
	if (rt->asked == 0 && status < 300)
		info.expires = 0;
	info.min_expires = header_u32(resp, "Min-Expires", 0);
	info.retry_after = header_u32(resp, "Retry-After", 0);
	if (sub_response_event(status, &info, &b->sublim, &ev) != 0)
		return;
	if (status < 300 && dlg && !rt->dlg)
		attach_dialog(b, sub, dlg);
	feed(b, sub, ev, &info, NULL);
}

static void on_refused(void *arg)
{
	struct bp_rt *rt = arg;
	on_subscribe_resp(rt->refused_status, NULL, NULL, rt);
}

static void send_subscribe(struct bridge *b, struct state_sub *sub, uint32_t expires,
                           bool in_dialog)
{
	struct bp_rt *rt = rt_of(b, sub);
	char *from = NULL, *from_na = NULL;
	char exp[16];

	if (!rt)
		return;
	if (!in_dialog && rt->dlg)
		end_dialog(b, sub); /* a new subscription forgets the old one (sub.h) */
	if (in_dialog && !rt->dlg)
		return; /* nothing to refresh or end: a late 2xx will reach SUB_IDLE */
	if (rt->clt) {
		sipleg_clt_abandon(rt->clt);
		rt->clt = NULL;
	}
	from = uri_of(b, sub->watcher);
	from_na = from ? br_name_addr(from) : NULL;
	if (!from_na)
		goto out;
	snprintf(exp, sizeof(exp), "%u", expires);
	struct sipm_hdr h[] = {
	    {"Event", "presence"}, {"Accept", ACCEPT_PRESENCE}, {"Expires", exp}};
	struct sipleg_req rq = {
	    .method = "SUBSCRIBE",
	    .dialog = in_dialog ? rt->dlg : NULL,
	    .ruri = sub->presentity,
	    .from = from_na,
	    .hdrs = h,
	    .nhdrs = 3,
	    .create_dialog = !in_dialog,
	};
	rt->asked = expires;
	rt->asked_in_dialog = in_dialog;
	if (in_dialog)
		reserve_cseq(b, sub);
	int e = sipleg_request(b->sip, &rq, on_subscribe_resp, rt, &rt->clt);
	if (e == -ENOENT)
		log_warn(
		    BR_MOD,
		    "no [peer] routes %s: %s cannot see it (check the peer's domains)",
		    sub->presentity, sub->watcher);
	else if (e)
		log_warn(BR_MOD, "SUBSCRIBE for %s not sent: %s", sub->presentity,
		         strerror(-e));
	if (e) {
		/* What a peer would have answered: nobody there (404), or try later. */
		rt->refused_status = e == -ENOENT ? 404 : 503;
		loop_timer_start(b->loop, &rt->refused_t, 0, on_refused, rt);
	}
out:
	free(from);
	free(from_na);
}

/* ---- timers ---- */

static void on_timer(void *arg)
{
	struct bp_rt *rt = arg;
	struct sub_event_info info = {.now = now_s()};
	feed(rt->b, rt->sub, rt->timer_ev, &info, NULL);
}

static void schedule(struct bridge *b, struct state_sub *sub, int64_t at,
                     enum sub_event ev)
{
	struct bp_rt *rt = rt_of(b, sub);
	if (!rt)
		return;
	int64_t delay = at - now_s();
	rt->timer_ev = ev;
	loop_timer_start(b->loop, &rt->timer, delay > 0 ? (uint64_t)delay * 1000u : 0,
	                 on_timer, rt);
	if (ev == SUB_EV_TIMER_EXPIRY)
		sub->expires_at = at * 1000;
	else
		sub->refresh_at = at * 1000;
}

/* ---- the state machine's actions ---- */

static void on_settle(void *arg)
{
	struct bp_rt *rt = arg;
	rt->settling = false;
	if (rt->sub->st.phase != SUB_SW_ACTIVE)
		return;
	struct sub_result res = {.notify = {.state = SUB_SS_ACTIVE},
	                         .body = SUB_BODY_CURRENT};
	send_notify(rt->b, rt->sub, &res);
}

/* The approval's NOTIFY active waits APPROVAL_SETTLE_MS (see there); the probe
 * asks for the presence the cache lacks. Returns false if it cannot wait. */
static bool settle_approval(struct bridge *b, struct state_sub *sub, unsigned *actions)
{
	struct bp_rt *rt = rt_of(b, sub);
	if (!rt || !rt->dlg)
		return false;
	char ubuf[ADDR_MAX_INPUT + 1];
	rt->settling = true;
	rt->settle_burst = false;
	if (!state_pres_get(b->state, key_user(sub->presentity, ubuf, sizeof(ubuf))))
		*actions |= SUB_ACT_XMPP_PROBE;
	loop_timer_start(b->loop, &rt->settle_t, APPROVAL_SETTLE_MS, on_settle, rt);
	return true;
}

/* Addresses on the XMPP side: for a SIP watcher the bridge speaks for the watcher
 * to the presentity; for an XMPP watcher, for the presentity to the watcher. */
static void xmpp_parties(struct bridge *b, const struct state_sub *sub, char **fromp,
                         char **top)
{
	if (sub->st.dir == SUB_DIR_SIP_WATCHER) {
		/* RFC 6121 3.1.1, 4.3: subscriptions and probes are between users,
		 * also for a subscription to one device (RFC 7247 section 6.3). */
		*fromp = jid_of(b, sub->watcher);
		*top = strndup(sub->presentity, strcspn(sub->presentity, "/"));
	} else {
		*fromp = jid_of(b, sub->presentity);
		*top = strdup(sub->watcher);
	}
}

static void save_sub(struct bridge *b, struct state_sub *sub)
{
	/* The saved local CSeq is a ceiling (reserve_cseq): never lowered while
	 * the dialog lasts. */
	if (sub->rt && ((struct bp_rt *)sub->rt)->dlg) {
		uint32_t cur = sipd_local_cseq(((struct bp_rt *)sub->rt)->dlg);
		if (cur > sub->local_cseq)
			sub->local_cseq = cur;
	}
	int e = state_sub_save(b->state, sub);
	if (e)
		log_error(BR_MOD, "state: cannot save %s -> %s: %s", sub->watcher,
		          sub->presentity, store_errmsg(b->store));
}

/* The 2xx's dialog is tied to the subscription, and (save) the subscription is
 * on disk with it, before the 2xx leaves: a kill -9 right after the peer saw it
 * loses nothing. */
struct reply_ctx {
	struct bridge *b;
	struct state_sub *sub;
	bool save, saved;
};

static void before_reply(struct sipd *dlg, void *arg)
{
	struct reply_ctx *rc = arg;
	if (dlg)
		attach_dialog(rc->b, rc->sub, dlg);
	if (rc->save) {
		save_sub(rc->b, rc->sub);
		rc->saved = true;
	}
}

/* Returns true if it saved sub (the caller need not). */
static bool reply(struct bridge *b, struct sipleg_srv *srv, struct state_sub *sub,
                  const struct sub_result *res, bool save)
{
	char v[16];
	struct sipm_hdr h = {res->sip_status == 423 ? "Min-Expires" : "Expires", v};
	struct reply_ctx rc = {b, sub, save, false};

	if (!srv)
		return false;
	snprintf(v, sizeof(v), "%u",
	         res->sip_status == 423 ? b->sublim.min_expires : res->expires);
	/* Only a SUBSCRIBE's answer carries Expires or Min-Expires; the requests an
	 * XMPP watcher's entry answers are NOTIFYs. */
	bool timed = (res->sip_status == 200 || res->sip_status == 423) && sub &&
	             sub->st.dir == SUB_DIR_SIP_WATCHER;
	struct sipleg_reply r = {
	    .code = res->sip_status,
	    .hdrs = timed ? &h : NULL,
	    .nhdrs = timed ? 1 : 0,
	    .before_send = sub && res->sip_status < 300 ? before_reply : NULL,
	    .before_arg = &rc,
	};
	sipleg_reply(srv, &r, NULL);
	return rc.saved;
}

static void perform(struct bridge *b, struct state_sub *sub, const struct sub_result *res,
                    struct sipleg_srv *srv)
{
	unsigned a = res->actions;
	char *from = NULL, *to = NULL;
	struct bp_rt *rt = sub->rt;

	if ((a & SUB_ACT_CANCEL_TIMER) && rt)
		loop_timer_cancel(b->loop, &rt->timer);
	/* Timers first: they set the expiry the save below records. */
	if (a & SUB_ACT_SCHEDULE_EXPIRY)
		schedule(b, sub, res->timer_at, SUB_EV_TIMER_EXPIRY);
	if (a & SUB_ACT_SCHEDULE_REFRESH)
		schedule(b, sub, res->timer_at, SUB_EV_TIMER_REFRESH);
	if (a & SUB_ACT_SCHEDULE_RETRY)
		schedule(b, sub, res->timer_at, SUB_EV_TIMER_RETRY);
	/* A watcher's refresh moves its expiry: keep it, so a restart knows how long
	 * the subscription still holds. */
	bool save = (a & SUB_ACT_PERSIST) ||
	            ((a & SUB_ACT_SCHEDULE_EXPIRY) && sub->st.dir == SUB_DIR_SIP_WATCHER);
	bool saved = false;
	if (a & SUB_ACT_SIP_RESPONSE)
		saved = reply(b, srv, sub, res, save && !(a & SUB_ACT_DROP));
	bool approval =
	    res->rule >= 0 && sub_rules(NULL)[res->rule].event == SUB_EV_XMPP_SUBSCRIBED;
	if ((a & SUB_ACT_SIP_NOTIFY) && approval && settle_approval(b, sub, &a))
		a &= ~(unsigned)SUB_ACT_SIP_NOTIFY;
	if ((a & SUB_ACT_SIP_NOTIFY) && send_notify(b, sub, res))
		a |= SUB_ACT_XMPP_PROBE; /* learn the presence the NOTIFY lacked */
	if (a & SUB_ACT_SIP_SUBSCRIBE)
		send_subscribe(b, sub, res->expires, false);
	if (a & SUB_ACT_SIP_REFRESH)
		send_subscribe(b, sub, res->expires, true);
	if (a & SUB_ACT_SIP_RESEND)
		send_subscribe(b, sub, res->expires, rt && rt->asked_in_dialog);
	if (a & SUB_ACT_SIP_UNSUBSCRIBE) {
		send_subscribe(b, sub, 0, true);
		/* RFC 6665 4.1.2.3: the unsubscribe triggers a final NOTIFY; the
		 * dialog stays to answer it 200 (SUB_XW_ENDING ends it; while
		 * stopping, bp_sip_final_notify() answers it). */
		if (res->next.phase != SUB_XW_ENDING && !b->stopping)
			end_dialog(b, sub);
	}
	if (a & (SUB_ACT_XMPP_SUBSCRIBE | SUB_ACT_XMPP_UNSUBSCRIBE |
	         SUB_ACT_XMPP_SUBSCRIBED | SUB_ACT_XMPP_UNSUBSCRIBED |
	         SUB_ACT_XMPP_PROBE | SUB_ACT_XMPP_PRESENCE | SUB_ACT_XMPP_UNAVAILABLE))
		xmpp_parties(b, sub, &from, &to);
	if (from && to) {
		static const struct {
			unsigned act;
			const char *type;
		} simple[] = {
		    {SUB_ACT_XMPP_SUBSCRIBE, "subscribe"},
		    {SUB_ACT_XMPP_UNSUBSCRIBE, "unsubscribe"},
		    {SUB_ACT_XMPP_SUBSCRIBED, "subscribed"},
		    {SUB_ACT_XMPP_UNSUBSCRIBED, "unsubscribed"},
		    {SUB_ACT_XMPP_PROBE, "probe"},
		};
		for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
			if (a & simple[i].act)
				send_simple(b, simple[i].type, from, to);
		if (a & SUB_ACT_XMPP_PRESENCE)
			send_presence(b, rt_of(b, sub), sub->presentity, from, to);
		if (a & SUB_ACT_XMPP_UNAVAILABLE)
			send_unavailable(b, sub->rt, from, to);
	}
	free(from);
	free(to);
	if (save && !saved && !(a & SUB_ACT_DROP))
		save_sub(b, sub);
	if (a & SUB_ACT_DROP) {
		struct bp_rt *drt = sub->rt;
		if (drt && drt->dlg && sub->st.dir == SUB_DIR_XMPP_WATCHER)
			end_dialog(b, sub); /* e.g. SUB_XW_ENDING's final NOTIFY */
		drop_sub(b, sub);
	}
}

/* Feed ev to sub (NULL: no entry for it) and do what the table says. Returns sub,
 * or NULL when the transition dropped it (sub is then freed). */
static struct state_sub *feed(struct bridge *b, struct state_sub *sub, enum sub_event ev,
                              const struct sub_event_info *info, struct sipleg_srv *srv)
{
	struct sub_result res;

	if (!sub) {
		if (srv)
			sipleg_reply_code(srv, 481, "no such subscription");
		return NULL;
	}
	if (sub_transition(&sub->st, ev, info, &b->sublim, &res) != 0) {
		log_warn(BR_MOD, "%s -> %s: event %s refused by the state machine",
		         sub->watcher, sub->presentity, sub_event_name(ev));
		return sub;
	}
	if (res.rule < 0) {
		log_debug(BR_MOD, "%s -> %s: %s ignored in %s", sub->watcher,
		          sub->presentity, sub_event_name(ev),
		          sub_phase_name(sub->st.phase));
		return sub;
	}
	if (log_enabled(LOG_LVL_DEBUG)) {
		char acts[256];
		sub_actions_format(res.actions, acts, sizeof(acts));
		log_debug(BR_MOD, "%s -> %s: %s: %s -> %s (%s)", sub->watcher,
		          sub->presentity, sub_event_name(ev),
		          sub_phase_name(sub->st.phase), sub_phase_name(res.next.phase),
		          acts);
	}
	sub->st = res.next;
	perform(b, sub, &res, srv);
	return (res.actions & SUB_ACT_DROP) ? NULL : sub;
}

/* A new entry for a pair the bridge has nothing stored for, or the refusal. */
/* Seconds between two log lines about refused subscriptions. */
#define BR_REFUSE_LOG_S 10

static struct state_sub *new_sub(struct bridge *b, enum sub_dir dir, const char *watcher,
                                 const char *presentity, struct sipleg_srv *srv,
                                 xmpp_stanza_t *st)
{
	struct state_sub *sub = NULL;
	int e = state_sub_add(b->state, dir, watcher, presentity, &sub);
	if (e == 0)
		return sub;
	int64_t now = now_s();
	int k = e == -EDQUOT ? 0 : 1;
	if (now - b->refuse_logged_at[k] >= BR_REFUSE_LOG_S) {
		char more[64] = "";
		if (b->refuse_quiet[k])
			snprintf(more, sizeof(more),
			         " (and %u more since the last such line)",
			         b->refuse_quiet[k]);
		log_warn(
		    BR_MOD, "subscription %s -> %s refused: %s%s", watcher, presentity,
		    e == -EDQUOT   ? "the watcher has as many subscriptions as allowed"
		    : e == -ENOSPC ? "the bridge holds as many subscriptions as allowed"
		                   : strerror(-e),
		    more);
		b->refuse_logged_at[k] = now;
		b->refuse_quiet[k] = 0;
	} else {
		b->refuse_quiet[k]++;
	}
	if (srv)
		br_sip_refuse(b, srv, ERR_BRIDGE_LIMIT, NULL);
	if (st)
		br_xmpp_error(b, "presence", xmpp_stanza_get_to(st),
		              xmpp_stanza_get_from(st), xmpp_stanza_get_id(st),
		              ERR_COND_RESOURCE_CONSTRAINT,
		              err_bridge(ERR_BRIDGE_LIMIT)->explanation);
	return NULL;
}

/* ---- SIP in ---- */

static bool event_is_presence(struct sipm *req)
{
	const char *ev = sipm_header(req, "Event", 0);
	if (!ev)
		return false;
	size_t n = strcspn(ev, "; \t");
	return n == 8 && strncasecmp(ev, "presence", 8) == 0;
}

void bp_sip_subscribe(struct bridge *b, struct sipleg_srv *srv, struct sipm *req)
{
	char *watcher_jid = NULL, *presentity = NULL;
	enum addr_home home;
	int e;

	if (!event_is_presence(req)) {
		struct sipm_hdr h = {"Allow-Events", "presence"};
		struct sipleg_reply r = {.code = 489,
		                         .hdrs = &h,
		                         .nhdrs = 1,
		                         .diagnostics =
		                             "the bridge serves Event: presence only"};
		sipleg_reply(srv, &r, NULL);
		return;
	}
	const char *watcher = sipm_from_uri(req);
	struct sipd *dlg = sipleg_srv_dialog(srv);
	if (dlg) {
		/* In a dialog: the entry is the one that owns it. */
		struct bp_rt *rt = sipd_arg(dlg);
		uint32_t expires =
		    header_u32(req, "Expires", SUB_EXPIRES_PRESENCE_DEFAULT);
		struct sub_event_info info = {.now = now_s(), .expires = expires};
		feed(b, rt ? rt->sub : NULL,
		     sub_subscribe_event(true, expires, &b->sublim), &info, srv);
		return;
	}
	/* A GRUU Request-URI subscribes to that device (RFC 7247 sections 6.3,
	 * 6.4 step 8): keyed by the full JID. A gr the bridge cannot map is the
	 * user's, as for messages. */
	e = br_uri_to_full_jid(b, sipm_ruri(req), &presentity, &home);
	if (e && e != -ENOENT && e != -EPROTONOSUPPORT)
		e = br_uri_to_jid(b, sipm_ruri(req), &presentity, &home);
	if (e || home != ADDR_HOME_XMPP) {
		br_sip_refuse(b, srv, e ? br_addr_refusal(e) : ERR_BRIDGE_DOMAIN_UNMAPPED,
		              e ? addr_strerror(e) : "that user is not on the XMPP side");
		goto out;
	}
	e = br_uri_to_jid(b, watcher, &watcher_jid, &home);
	if (e || home != ADDR_HOME_SIP) {
		br_sip_refuse(b, srv, e ? br_addr_refusal(e) : ERR_BRIDGE_PEER_FORBIDDEN,
		              e ? addr_strerror(e)
		                : "the watcher is not a SIP-side user");
		goto out;
	}
	/* Keys are the canonical forms: the URI the bridge itself would write. */
	char *wkey = NULL;
	if (br_jid_to_uri(b, watcher_jid, &wkey, NULL, NULL) != 0) {
		br_sip_refuse(b, srv, ERR_BRIDGE_ADDRESS_MALFORMED, NULL);
		goto out;
	}
	uint32_t expires = header_u32(req, "Expires", SUB_EXPIRES_PRESENCE_DEFAULT);
	enum sub_event ev = sub_subscribe_event(false, expires, &b->sublim);
	struct state_sub *sub =
	    state_sub_get(b->state, SUB_DIR_SIP_WATCHER, wkey, presentity);
	if (!sub && ev == SUB_EV_SIP_SUBSCRIBE && !br_xmpp_ready(b, srv, wkey)) {
		free(wkey);
		goto out;
	}
	if (!sub)
		sub = new_sub(b, SUB_DIR_SIP_WATCHER, wkey, presentity, srv, NULL);
	free(wkey);
	if (sub) {
		struct sub_event_info info = {.now = now_s(), .expires = expires};
		sub = feed(b, sub, ev, &info, srv);
		/* A fetch or refused attempt leaves nothing behind. */
		if (sub && sub->st.phase == SUB_IDLE) {
			drop_sub(b, sub);
		}
	}
out:
	free(watcher_jid);
	free(presentity);
}

/* Replace what the cache knows of entity with model p (a full-state document). */
static void cache_document(struct bridge *b, const char *entity, const struct pres *p)
{
	const struct state_pres *old = state_pres_get(b->state, entity);
	int64_t now = br_now();

	if (!(p->have & PRES_HAVE_STATE)) {
		/* Lync sent only its note: keep every resource's activity. */
		if (!old || !(p->have & PRES_HAVE_NOTE) || p->n == 0)
			return;
		for (size_t i = 0; old && i < old->nres; i++) {
			struct pres_entry e;
			memset(&e, 0, sizeof(e));
			snprintf(e.id, sizeof(e.id), "%s", old->res[i].resource);
			e.open = true;
			e.activity = old->res[i].activity;
			e.priority = old->res[i].priority;
			e.device = old->res[i].device;
			pres_entry_set_note(&e, p->e[0].note, strlen(p->e[0].note));
			state_pres_set(b->state, entity, &e, now);
			old = state_pres_get(b->state, entity);
		}
		return;
	}
	/* Resources the new document no longer names have gone away. */
	while (old) {
		size_t i;
		const char *gone = NULL;
		for (i = 0; i < old->nres && !gone; i++) {
			bool named = false;
			for (size_t k = 0; k < p->n; k++)
				named |= strcmp(p->e[k].id, old->res[i].resource) == 0;
			if (!named)
				gone = old->res[i].resource;
		}
		if (!gone)
			break;
		struct pres_entry off;
		memset(&off, 0, sizeof(off));
		snprintf(off.id, sizeof(off.id), "%s", gone);
		off.activity = PRES_ACT_OFFLINE;
		state_pres_set(b->state, entity, &off, now);
		old = state_pres_get(b->state, entity);
	}
	for (size_t k = 0; k < p->n; k++)
		state_pres_set(b->state, entity, &p->e[k], now);
}

void bp_sip_notify(struct bridge *b, struct sipleg_srv *srv, struct sipm *req)
{
	struct sipd *dlg = srv ? sipleg_srv_dialog(srv) : NULL;
	struct bp_rt *rt = dlg ? sipd_arg(dlg) : NULL;

	if (!rt) {
		/* BENOTIFY (srv NULL) of a dialog: look it up by identifiers. */
		const char *cid = sipm_call_id(req), *tag = sipm_to_tag(req);
		struct state_sub *s =
		    cid ? state_sub_by_dialog(b->state, cid, tag) : NULL;
		rt = s ? rt_of(b, s) : NULL;
	}
	if (!rt || rt->sub->st.dir != SUB_DIR_XMPP_WATCHER) {
		if (srv)
			sipleg_reply_code(srv, 481, "no such subscription");
		return;
	}
	struct state_sub *sub = rt->sub;
	if (dlg && !rt->dlg) /* NOTIFY before the 2xx (RFC 6665 4.1.2.4) */
		attach_dialog(b, sub, dlg);
	size_t blen = 0;
	const char *body = sipm_body(req, &blen);
	const char *ctype = sipm_header(req, "Content-Type", 0);
	/* After the unsubscribe, the final NOTIFY's document is the notifier's
	 * farewell (often closed, RFC 8048 5.3.3), not news for other watchers. */
	if (body && blen && ctype && sub->st.phase != SUB_XW_ENDING) {
		struct pres *p = malloc(sizeof(*p));
		int e = p ? pres_read(ctype, body, blen, b->cf->pres, p) : -ENOMEM;
		if (e == 0)
			cache_document(b, sub->presentity, p);
		else
			log_warn(BR_MOD, "NOTIFY for %s: presence document refused (%s)",
			         sub->presentity, strerror(-e));
		free(p);
	}
	const char *ssv = sipm_header(req, "Subscription-State", 0);
	struct sub_substate ss;
	enum sub_event ev;
	if (!ssv || sub_substate_parse(ssv, strlen(ssv), &ss) != 0 ||
	    sub_notify_event(&ss, &ev) != 0) {
		if (srv)
			sipleg_reply_code(srv, 400,
			                  "missing or malformed Subscription-State");
		return;
	}
	struct sub_event_info info = {.now = now_s(),
	                              .expires = ss.has_expires ? ss.expires : 0,
	                              .retry_after =
	                                  ss.has_retry_after ? ss.retry_after : 0};
	if (!srv) {
		/* BENOTIFY takes no answer: feed the event, drop the response. */
		struct sub_result res;
		if (sub_transition(&sub->st, ev, &info, &b->sublim, &res) == 0 &&
		    res.rule >= 0) {
			res.actions &= ~(unsigned)SUB_ACT_SIP_RESPONSE;
			sub->st = res.next;
			perform(b, sub, &res, NULL);
		}
		return;
	}
	feed(b, sub, ev, &info, srv);
}

bool bp_sip_final_notify(struct bridge *b, struct sipleg_srv *srv, struct sipm *req)
{
	const char *ssv = sipm_header(req, "Subscription-State", 0);
	struct sub_substate ss;

	(void)b;
	if (strcmp(sipm_method(req), "NOTIFY") != 0 || !event_is_presence(req) || !ssv ||
	    sub_substate_parse(ssv, strlen(ssv), &ss) != 0 ||
	    ss.state != SUB_SS_TERMINATED)
		return false;
	sipleg_reply_code(srv, 200, NULL);
	return true;
}

/* ---- XMPP in ---- */

/* *outp = user "/" res (caller-owns). */
static int asprintf_full(char **outp, const char *user, const char *res)
{
	size_t ul = strlen(user), rl = strlen(res);
	char *s = malloc(ul + rl + 2);
	if (!s)
		return -ENOMEM;
	memcpy(s, user, ul);
	s[ul] = '/';
	memcpy(s + ul + 1, res, rl + 1);
	*outp = s;
	return 0;
}

static int child_int(xmpp_stanza_t *st, const char *name, int dflt)
{
	xmpp_stanza_t *c = xmpp_stanza_get_child_by_name(st, name);
	char *t = c ? xmpp_stanza_get_text(c) : NULL;
	int v = dflt;
	if (t) {
		char *end;
		long n = strtol(t, &end, 10);
		if (end != t && n >= -128 && n <= 127)
			v = (int)n;
		xmpp_free(xmpp_stanza_get_context(st), t);
	}
	return v;
}

static char *child_text(xmpp_stanza_t *st, const char *name)
{
	xmpp_stanza_t *c = xmpp_stanza_get_child_by_name(st, name);
	char *t = c ? xmpp_stanza_get_text(c) : NULL;
	char *out = t ? strdup(t) : NULL;
	if (t)
		xmpp_free(xmpp_stanza_get_context(st), t);
	return out;
}

/* Feed ev to the subscription (watcher, presentity), founding it if asked;
 * an entry the event leaves idle is dropped. */
static void feed_pair(struct bridge *b, enum sub_dir dir, const char *watcher,
                      const char *presentity, enum sub_event ev, bool found,
                      xmpp_stanza_t *st)
{
	struct state_sub *sub = state_sub_get(b->state, dir, watcher, presentity);
	if (!sub && found)
		sub = new_sub(b, dir, watcher, presentity, NULL, st);
	if (!sub)
		return;
	struct sub_event_info info = {.now = now_s()};
	sub = feed(b, sub, ev, &info, NULL);
	if (sub && sub->st.phase == SUB_IDLE)
		drop_sub(b, sub);
}

/* An answer about the user's authorization (RFC 6121 3.1.5, 3.2) holds for
 * every device of the user the SIP watcher subscribed to (RFC 8048 5.1:
 * authorizations are between users). */
static void feed_devices(struct bridge *b, const char *watcher, const char *user,
                         enum sub_event ev)
{
	size_t n = 0, k = 0;
	struct state_sub *const *v = state_subs_of(b->state, user, &n);
	char **keys = n ? calloc(n, sizeof(*keys)) : NULL;

	for (size_t i = 0; keys && i < n; i++)
		if (v[i]->st.dir == SUB_DIR_SIP_WATCHER && key_device(v[i]->presentity) &&
		    strcmp(v[i]->watcher, watcher) == 0)
			keys[k++] = strdup(v[i]->presentity);
	/* Each feed may drop an entry and change the list: go by the keys. */
	for (size_t i = 0; i < k; i++) {
		if (keys[i])
			feed_pair(b, SUB_DIR_SIP_WATCHER, watcher, keys[i], ev, false,
			          NULL);
		free(keys[i]);
	}
	free(keys);
}

/* A presence change of the XMPP user, for the SIP watcher's subscription to
 * presentity (the user, or one device). */
static void notify_pair(struct bridge *b, const char *watcher, const char *presentity)
{
	struct state_sub *sub =
	    state_sub_get(b->state, SUB_DIR_SIP_WATCHER, watcher, presentity);
	struct bp_rt *srt = sub ? sub->rt : NULL;
	if (sub && sub->st.phase == SUB_SW_ACTIVE) {
		/* The presence an approval's NOTIFY waits for: what the server sends
		 * with it (every resource, a probe's answer, ejabberd's repeat) comes
		 * within APPROVAL_BURST_MS; then the one NOTIFY goes. */
		if (srt && srt->settling) {
			if (!srt->settle_burst) {
				srt->settle_burst = true;
				loop_timer_start(b->loop, &srt->settle_t,
				                 APPROVAL_BURST_MS, on_settle, srt);
			}
			return;
		}
		struct sub_result res_n = {.notify = {.state = SUB_SS_ACTIVE},
		                           .body = SUB_BODY_CURRENT};
		send_notify(b, sub, &res_n);
	}
}

static const struct {
	const char *type;
	enum sub_dir dir; /* which subscription the stanza is about */
	enum sub_event ev;
} xmpp_sub_events[] = {
    {"subscribed", SUB_DIR_SIP_WATCHER, SUB_EV_XMPP_SUBSCRIBED},
    {"unsubscribed", SUB_DIR_SIP_WATCHER, SUB_EV_XMPP_UNSUBSCRIBED},
    {"subscribe", SUB_DIR_XMPP_WATCHER, SUB_EV_XMPP_SUBSCRIBE},
    {"unsubscribe", SUB_DIR_XMPP_WATCHER, SUB_EV_XMPP_UNSUBSCRIBE},
    {"probe", SUB_DIR_XMPP_WATCHER, SUB_EV_XMPP_PROBE},
};

int bp_xmpp_presence(struct bridge *b, xmpp_stanza_t *st, struct xlink_refusal *r)
{
	const char *type = xmpp_stanza_get_type(st);
	const char *from = xmpp_stanza_get_from(st), *to = xmpp_stanza_get_to(st);
	char fbare[ADDR_MAX_INPUT + 1], tbare[ADDR_MAX_INPUT + 1];
	char *to_uri = NULL;
	enum addr_home fhome, thome;
	char *from_uri = NULL;

	if (!from || !to || (type && strcmp(type, "error") == 0))
		return XLINK_TAKEN;
	bare(from, fbare, sizeof(fbare));
	bare(to, tbare, sizeof(tbare));
	if (!strchr(tbare, '@'))
		return XLINK_TAKEN; /* presence to the component itself */
	int e = br_jid_to_uri(b, tbare, &to_uri, NULL, &thome);
	if (e || thome != ADDR_HOME_SIP) {
		r->cond =
		    e ? err_bridge(br_addr_refusal(e))->cond : ERR_COND_ITEM_NOT_FOUND;
		r->text = e ? addr_strerror(e) : "that user is not on the SIP side";
		free(to_uri);
		return XLINK_REFUSE;
	}
	if (br_jid_to_uri(b, fbare, &from_uri, NULL, &fhome) != 0 ||
	    fhome != ADDR_HOME_XMPP) {
		r->cond = ERR_COND_FORBIDDEN;
		r->text = "the sender's domain is not bridged";
		free(to_uri);
		free(from_uri);
		return XLINK_REFUSE;
	}
	free(from_uri);

	for (size_t i = 0;
	     type && i < sizeof(xmpp_sub_events) / sizeof(xmpp_sub_events[0]); i++) {
		if (strcmp(type, xmpp_sub_events[i].type) != 0)
			continue;
		bool sw = xmpp_sub_events[i].dir == SUB_DIR_SIP_WATCHER;
		const char *watcher = sw ? to_uri : fbare;
		const char *presentity = sw ? fbare : to_uri;
		/* Only a request from the XMPP user founds an entry; an answer to a
		 * subscription the bridge does not hold is ignored (RFC 6121 3.1.5). */
		feed_pair(b, xmpp_sub_events[i].dir, watcher, presentity,
		          xmpp_sub_events[i].ev, !sw, st);
		if (sw)
			feed_devices(b, watcher, fbare, xmpp_sub_events[i].ev);
		free(to_uri);
		return XLINK_TAKEN;
	}
	if (type && strcmp(type, "unavailable") != 0) {
		free(to_uri);
		return XLINK_TAKEN; /* an unknown type: RFC 6121 4.7.1 says ignore */
	}
	/* Available or unavailable: the XMPP user's presence for one SIP watcher. */
	char *show = child_text(st, "show"), *status = child_text(st, "status");
	struct pres_entry ent;
	const char *res = strchr(from, '/') ? strchr(from, '/') + 1 : "";
	if (pres_from_xmpp(b->cf->pres, type, show, status, child_int(st, "priority", 0),
	                   res, &ent) == 0) {
		state_pres_set(b->state, fbare, &ent, br_now());
		notify_pair(b, to_uri, fbare);
		/* The watcher of this resource's GRUU (RFC 7247 section 6.3). */
		if (*res) {
			char *full = NULL;
			if (asprintf_full(&full, fbare, res) == 0) {
				notify_pair(b, to_uri, full);
				free(full);
			}
		}
	}
	free(show);
	free(status);
	free(to_uri);
	return XLINK_TAKEN;
}

/* ---- whole-table events ---- */

struct each_ev {
	struct bridge *b;
	enum sub_event ev;
	const char *domain; /* NULL: every entry */
};

/* Does sub cross the component link of domain (the XMPP side of its SIP user)? */
static bool crosses(struct bridge *b, const struct state_sub *sub, const char *domain)
{
	if (!domain)
		return true;
	const char *sip_party =
	    sub->st.dir == SUB_DIR_SIP_WATCHER ? sub->watcher : sub->presentity;
	char *jid = jid_of(b, sip_party);
	bool yes =
	    jid && strchr(jid, '@') && strcasecmp(strchr(jid, '@') + 1, domain) == 0;
	free(jid);
	return yes;
}

static void each_feed(struct state_sub *sub, void *arg)
{
	struct each_ev *x = arg;
	if (!crosses(x->b, sub, x->domain))
		return;
	struct sub_event_info info = {.now = now_s()};
	feed(x->b, sub, x->ev, &info, NULL);
}

void bp_link_state(struct bridge *b, const char *domain, bool up)
{
	struct each_ev x = {b, up ? SUB_EV_XMPP_LINK_UP : SUB_EV_XMPP_LINK_DOWN, domain};
	state_sub_each(b->state, each_feed, &x);
}

/* Bring back the SIP dialog a subscription had before the restart. */
static bool resume_dialog(struct bridge *b, struct state_sub *sub)
{
	if (!sub->call_id || !sub->local_tag || !sub->remote_tag || !sub->remote_target ||
	    !sub->peer)
		return false;
	bool sw = sub->st.dir == SUB_DIR_SIP_WATCHER;
	char *mine = uri_of(b, sw ? sub->presentity : sub->watcher);
	struct sipd_saved sv = {
	    .call_id = sub->call_id,
	    .local_tag = sub->local_tag,
	    .remote_tag = sub->remote_tag,
	    .local_uri = mine,
	    .remote_uri = sw ? sub->watcher : sub->presentity,
	    .remote_target = sub->remote_target,
	    .route_set = sub->route_set,
	    /* the old ceiling (state_open raised it by the headroom) */
	    .local_cseq = sub->local_cseq >= STATE_CSEQ_HEADROOM
	                      ? sub->local_cseq - STATE_CSEQ_HEADROOM
	                      : 0,
	    .peer = sub->peer,
	};
	struct sipd *dlg = mine ? sipd_restore(b->sip, &sv) : NULL;
	free(mine);
	struct bp_rt *rt = dlg ? rt_of(b, sub) : NULL;
	if (!rt) {
		sipd_terminate(dlg);
		return false;
	}
	rt->dlg = dlg;
	sipd_set_arg(dlg, rt);
	return true;
}

/*
 * The NOTIFY a resumed SIP watcher gets leaves in batches from a timer, not all
 * from bp_restore(): the bridge answers requests at once however large its
 * table, and 100,000 NOTIFYs do not overflow the peer connection's output
 * limit (which would close it and fail every one of them).
 */
#define RENOTIFY_BATCH 1000
#define RENOTIFY_MS    20

static void renotify_queue(struct bridge *b, struct state_sub *sub)
{
	struct bp_rt *rt = sub->rt;
	if (b->nrenotify % 1024 == 0) {
		void **v = realloc(b->renotify, (b->nrenotify + 1024) * sizeof(*v));
		if (!v)
			return; /* no NOTIFY now; the watcher's next refresh gets one */
		b->renotify = v;
	}
	b->renotify[b->nrenotify++] = rt;
	rt->renotify_slot = b->nrenotify;
}

static void renotify_clear(struct bridge *b)
{
	for (size_t i = b->renotify_next; i < b->nrenotify; i++)
		if (b->renotify[i])
			((struct bp_rt *)b->renotify[i])->renotify_slot = 0;
	loop_timer_cancel(b->loop, &b->renotify_t);
	free(b->renotify);
	b->renotify = NULL;
	b->nrenotify = b->renotify_next = 0;
}

static void renotify_batch(void *arg)
{
	struct bridge *b = arg;
	/* Paced by what still waits to leave, not by the clock alone: a peer
	 * that reads slowly (a Lync Front End answering 100,000 NOTIFYs after a
	 * takeover) must not see its connection closed for the backlog. */
	if (sipleg_backlog(b->sip) > SIPLEG_BACKLOG_MAX / 4) {
		loop_timer_start(b->loop, &b->renotify_t, RENOTIFY_MS, renotify_batch, b);
		return;
	}
	size_t end = b->renotify_next + RENOTIFY_BATCH;
	store_begin(b->store);
	for (; b->renotify_next < b->nrenotify && b->renotify_next < end;
	     b->renotify_next++) {
		struct bp_rt *rt = b->renotify[b->renotify_next];
		if (!rt)
			continue;
		rt->renotify_slot = 0;
		struct state_sub *sub = rt->sub;
		bool active = sub->st.phase == SUB_SW_ACTIVE;
		if (!active && sub->st.phase != SUB_SW_PENDING)
			continue; /* ended or moved on since the start */
		struct sub_result res = {
		    .notify = {.state = active ? SUB_SS_ACTIVE : SUB_SS_PENDING},
		    .body = active ? SUB_BODY_CURRENT : SUB_BODY_NONE,
		};
		send_notify(b, sub, &res);
	}
	store_commit(b->store);
	if (b->renotify_next < b->nrenotify)
		loop_timer_start(b->loop, &b->renotify_t, RENOTIFY_MS, renotify_batch, b);
	else
		renotify_clear(b);
}

/*
 * A restart keeps what was acknowledged: a subscription whose SIP dialog can be
 * resumed keeps its phase; a SIP watcher gets a NOTIFY with what the bridge knows
 * now and its expiry timer back, an XMPP watcher's subscription is refreshed in
 * its dialog (a peer that lost the dialog answers 481, and the state machine
 * subscribes anew). Entries without a dialog take the state machine's RESTORE.
 */
struct restore_ctx {
	struct bridge *b;
	size_t refreshes; /* refreshes scheduled so far */
	size_t resumed;   /* subscriptions that kept their dialog */
};

static void restore_one(struct state_sub *sub, void *arg)
{
	struct restore_ctx *rc = arg;
	struct bridge *b = rc->b;
	int64_t now = now_s();
	struct sub_event_info info = {.now = now};
	bool sw_live = sub->st.phase == SUB_SW_ACTIVE || sub->st.phase == SUB_SW_PENDING;
	bool xw_live = sub->st.phase == SUB_XW_ACTIVE ||
	               sub->st.phase == SUB_XW_PENDING ||
	               sub->st.phase == SUB_XW_RECOVERING;

	if ((sw_live || xw_live) && resume_dialog(b, sub)) {
		/* One line each at debug: a table of 100,000 would flood the log
		 * and slow the start; bp_restore() sums them up. */
		log_debug(BR_MOD, "restored %s -> %s (%s) with its SIP dialog",
		          sub->watcher, sub->presentity, sub_phase_name(sub->st.phase));
		rc->resumed++;
		if (sw_live) {
			int64_t until = sub->expires_at / 1000;
			if (until <= now) {
				feed(b, sub, SUB_EV_TIMER_EXPIRY, &info, NULL);
				return;
			}
			schedule(b, sub, until, SUB_EV_TIMER_EXPIRY);
			renotify_queue(b, sub);
		} else {
			/* Refresh at once: it proves the dialog still stands and fetches
			 * what changed while the bridge was down. A thousand a second, so
			 * a large table does not arrive at the peer in one burst. */
			schedule(b, sub, now + 1 + (int64_t)(rc->refreshes++ / 1000),
			         SUB_EV_TIMER_REFRESH);
		}
		return;
	}
	feed(b, sub, SUB_EV_RESTORE, &info, NULL);
}

void bp_restore(struct bridge *b)
{
	store_begin(b->store);
	struct restore_ctx rc = {b, 0, 0};
	state_sub_each(b->state, restore_one, &rc);
	store_commit(b->store);
	if (rc.resumed)
		log_info(BR_MOD,
		         "state: %zu subscriptions resumed with their SIP dialogs",
		         rc.resumed);
	if (b->nrenotify)
		loop_timer_start(b->loop, &b->renotify_t, 0, renotify_batch, b);
}

void bp_shutdown(struct bridge *b)
{
	renotify_clear(b);
	struct each_ev x = {b, SUB_EV_SHUTDOWN, NULL};
	state_sub_each(b->state, each_feed, &x);
}

static void each_release(struct state_sub *sub, void *arg)
{
	rt_release(arg, sub);
}

void bp_free(struct bridge *b)
{
	renotify_clear(b);
	state_sub_each(b->state, each_release, b);
}

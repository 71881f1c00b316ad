/*
 * Transactions (RFC 3261 section 17, with RFC 6026's Accepted state), on the
 * event loop's timers.
 *
 * Server side: a request is matched to its transaction by the top Via's branch
 * and sent-by and the method (ACK goes with its INVITE), RFC 3261 section
 * 17.2.3, with the section's fallback for RFC 2543 branches. A retransmitted
 * request is absorbed: the last response is sent again and the bridge never
 * sees it twice. Over UDP a final error to an INVITE is retransmitted (Timer G)
 * until its ACK.
 *
 * Client side: over UDP requests are retransmitted (Timers A and E); no final
 * answer within 64*T1 is a 408 (Timers B and F); a non-2xx final to an INVITE
 * is acknowledged here. A transport failure is a 503 (RFC 3261 section 8.1.3.1).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "presbridge/log.h"
#include "presbridge/sbuf.h"

#include "sip_int.h"

unsigned sip_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h % SIP_HASH;
}

char *sip_srv_key(struct sipm *m, const char *method)
{
	struct sbuf sb;
	const char *br = sipm_via_branch(m);
	sbuf_init(&sb);
	/* RFC 3261 section 17.2.3: the magic cookie followed by an identifier
	 * marks a unique branch. A bare cookie identifies nothing (RFC 4475
	 * section 3.2.1): such a request is matched as an RFC 2543 one, by
	 * Request-URI, From tag, Call-ID, CSeq and top Via (the To tag is left
	 * out so that the ACK of a non-2xx response still finds its INVITE). */
	if (sipm_branch_unique(br))
		sbuf_printf(&sb, "%s|%s|%s", br, sipm_via_sentby(m), method);
	else
		sbuf_printf(&sb, "2543|%s|%u|%s|%s|%s|%s|%s", sipm_call_id(m),
		            (unsigned)sipm_cseq(m), sipm_from_tag(m), sipm_via_sentby(m),
		            br, sipm_ruri(m), method);
	return sbuf_take(&sb, NULL);
}

struct sipleg_srv *sip_srv_find(struct sipleg *sl, const char *key)
{
	for (struct sipleg_srv *s = sl->srv[sip_hash(key)]; s; s = s->hnext)
		if (strcmp(s->key, key) == 0)
			return s;
	return NULL;
}

void sip_srv_set_dlg(struct sipleg_srv *st, struct sipd *d)
{
	if (st->dlg)
		st->dlg->nsrv--;
	st->dlg = d;
	if (d)
		d->nsrv++;
}

void sip_srv_free(struct sipleg_srv *st)
{
	struct sipleg *sl = st->sl;
	sip_srv_set_dlg(st, NULL);
	for (struct sipleg_srv **pp = &sl->srv[sip_hash(st->key)]; *pp;
	     pp = &(*pp)->hnext)
		if (*pp == st) {
			*pp = st->hnext;
			break;
		}
	sl->nsrv--;
	loop_timer_cancel(sl->loop, &st->retx_t);
	loop_timer_cancel(sl->loop, &st->life_t);
	loop_timer_cancel(sl->loop, &st->answer_t);
	sipm_free(st->req);
	free(st->last);
	free(st->key);
	free(st);
}

static void srv_life_end(void *arg)
{
	sip_srv_free(arg);
}

static void srv_answer_late(void *arg)
{
	struct sipleg_srv *st = arg;
	struct sipleg *sl = st->sl;
	log_error("sip",
	          "peer %s: the bridge did not answer %s within %u s; answered 500",
	          st->who, st->req ? sipm_method(st->req) : "a request",
	          sl->lim.answer_ms / 1000);
	if (st->tu && sl->h.gone)
		sl->h.gone(st, sl->arg);
	st->tu = false;
	sipleg_reply_code(st, 500, "the bridge did not answer in time");
}

struct sipleg_srv *sip_srv_new(struct sipleg *sl, char *key, struct sipm *req,
                               const struct sip_src *src)
{
	struct sipleg_srv *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->sl = sl;
	st->key = key;
	st->req = req;
	st->src = *src;
	st->src.conn = NULL;
	snprintf(st->who, sizeof(st->who), "%s", src->who ? src->who : src->ip);
	st->src.who = st->who;
	st->src.unknown_why = NULL;
	if (src->peer)
		snprintf(st->peer, sizeof(st->peer), "%s", src->peer->name);
	st->src.peer = NULL;
	st->invite = strcmp(sipm_method(req), "INVITE") == 0;
	if (!*sipm_to_tag(req))
		sip_random_token(st->to_tag, 17);
	unsigned h = sip_hash(key);
	st->hnext = sl->srv[h];
	sl->srv[h] = st;
	sl->nsrv++;
	loop_timer_start(sl->loop, &st->answer_t, sl->lim.answer_ms, srv_answer_late, st);
	return st;
}

static void srv_retx(void *arg)
{
	struct sipleg_srv *st = arg;
	struct sipleg *sl = st->sl;
	/* Timer G: T1, doubling up to T2 (RFC 3261 section 17.2.1). */
	if (st->last)
		sip_send(sl, &st->src.back, st->last, st->last_len);
	st->retx_iv = st->retx_iv * 2 > SIP_T2 ? SIP_T2 : st->retx_iv * 2;
	loop_timer_start(sl->loop, &st->retx_t, st->retx_iv, srv_retx, st);
}

void sip_srv_respond(struct sipleg_srv *st, int code, char *text, size_t len)
{
	struct sipleg *sl = st->sl;
	bool udp = st->src.back.tp == CONF_TP_UDP;

	int e = sip_send(sl, &st->src.back, text, len);
	if (e && sip_once(sl, st->who, "response-lost"))
		log_warn("sip", "peer %s: the %d response to %s could not be sent: %s",
		         st->who, code, st->req ? sipm_method(st->req) : "a request",
		         e == -ENOTCONN ? "its connection has closed" : strerror(-e));
	free(st->last);
	st->last = text;
	st->last_len = len;
	st->last_code = code;
	if (code < 200)
		return;
	st->final = true;
	st->tu = false;
	loop_timer_cancel(sl->loop, &st->answer_t);
	if (st->invite && code >= 300 && udp) {
		st->retx_iv = SIP_T1;
		loop_timer_start(sl->loop, &st->retx_t, st->retx_iv, srv_retx, st);
	}
	/* How long the transaction absorbs retransmissions: Timer J (non-INVITE),
	 * H (INVITE error, until ACK) or RFC 6026's Accepted state (INVITE 2xx);
	 * on streams there are no retransmissions, but an INVITE error still
	 * waits for its ACK. */
	uint64_t life = udp || (st->invite && code >= 300) ? SIP_TXN_TIMEOUT : 0;
	loop_timer_start(sl->loop, &st->life_t, life, srv_life_end, st);
}

void sip_srv_retransmission(struct sipleg_srv *st)
{
	log_debug("sip", "peer %s: retransmission absorbed (transaction %s)%s", st->who,
	          st->key, st->last ? "; last response sent again" : "");
	if (st->last)
		sip_send(st->sl, &st->src.back, st->last, st->last_len);
}

void sip_srv_ack(struct sipleg_srv *st)
{
	struct sipleg *sl = st->sl;
	if (!st->invite || !st->final || st->last_code < 300)
		return;
	loop_timer_cancel(sl->loop, &st->retx_t);
	/* Confirmed: Timer I absorbs ACK retransmissions (T4 on UDP). */
	loop_timer_start(sl->loop, &st->life_t,
	                 st->src.back.tp == CONF_TP_UDP ? SIP_T4 : 0, srv_life_end, st);
}

/* ---- client transactions ------------------------------------------------- */

struct sipleg_clt *sip_clt_new(struct sipleg *sl)
{
	struct sipleg_clt *c = calloc(1, sizeof(*c));
	if (c)
		c->sl = sl;
	return c;
}

void sip_clt_free(struct sipleg_clt *c)
{
	struct sipleg *sl = c->sl;
	if (c->key) {
		for (struct sipleg_clt **pp = &sl->clt[sip_hash(c->key)]; *pp;
		     pp = &(*pp)->hnext)
			if (*pp == c) {
				*pp = c->hnext;
				sl->nclt--;
				break;
			}
	}
	loop_timer_cancel(sl->loop, &c->retx_t);
	loop_timer_cancel(sl->loop, &c->timeout_t);
	char *strs[] = {c->key,      c->method,   c->msg, c->ruri,    c->via, c->from,
	                c->from_uri, c->from_tag, c->to,  c->call_id, c->ack};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(strs[i]);
	for (size_t i = 0; i < c->nroutes; i++)
		free(c->routes[i]);
	free(c->routes);
	free(c);
}

static void clt_linger_end(void *arg)
{
	sip_clt_free(arg);
}

/* Deliver the outcome, then keep the transaction a while on UDP to absorb
 * retransmitted finals (Timers D and K), or free it. */
static void clt_finish(struct sipleg_clt *c, int status, struct sipm *resp,
                       struct sipd *dlg)
{
	struct sipleg *sl = c->sl;
	loop_timer_cancel(sl->loop, &c->retx_t);
	loop_timer_cancel(sl->loop, &c->timeout_t);
	c->state = SIP_CLT_COMPLETED;
	sipleg_resp_h *h = c->h;
	void *arg = c->arg;
	c->h = NULL;
	uint64_t linger = 0;
	if (resp && c->dest.tp == CONF_TP_UDP)
		linger = c->invite ? SIP_TXN_TIMEOUT : SIP_T4;
	loop_timer_start(sl->loop, &c->timeout_t, linger, clt_linger_end, c);
	if (h)
		h(status, resp, dlg, arg);
	else
		log_debug("sip", "%s to peer %s: %d (nobody waits for it)", c->method,
		          c->peer, status);
}

static void clt_timeout(void *arg)
{
	struct sipleg_clt *c = arg;
	if (c->fail_status) {
		clt_finish(c, c->fail_status, NULL, NULL);
		return;
	}
	if (sip_once(c->sl, c->peer, "timeout"))
		log_warn("sip", "peer %s: no answer to %s within %u s (408)", c->peer,
		         c->method, SIP_TXN_TIMEOUT / 1000);
	clt_finish(c, 408, NULL, NULL);
}

static void clt_retx(void *arg)
{
	struct sipleg_clt *c = arg;
	struct sipleg *sl = c->sl;
	sip_send(sl, &c->dest, c->msg, c->len);
	/* Timer A doubles without bound; Timer E up to T2, and stays at T2 once
	 * a provisional response came (RFC 3261 sections 17.1.1.2, 17.1.2.2). */
	if (c->invite)
		c->retx_iv *= 2;
	else
		c->retx_iv = c->state == SIP_CLT_PROCEEDING || c->retx_iv * 2 > SIP_T2
		                 ? SIP_T2
		                 : c->retx_iv * 2;
	loop_timer_start(sl->loop, &c->retx_t, c->retx_iv, clt_retx, c);
}

static void clt_fail_later(struct sipleg_clt *c, int status, const char *why)
{
	c->fail_status = status;
	c->fail_why = why;
	loop_timer_cancel(c->sl->loop, &c->retx_t);
	loop_timer_start(c->sl->loop, &c->timeout_t, 0, clt_timeout, c);
}

int sip_clt_send(struct sipleg_clt *c)
{
	struct sipleg *sl = c->sl;
	unsigned h = sip_hash(c->key);
	c->hnext = sl->clt[h];
	sl->clt[h] = c;
	sl->nclt++;
	c->state = SIP_CLT_CALLING;
	int e = sip_send(sl, &c->dest, c->msg, c->len);
	if (e) {
		log_warn("sip", "peer %s: %s not sent: %s", c->peer, c->method,
		         e == -ENOTCONN ? "no connection" : strerror(-e));
		clt_fail_later(c, 503, "the peer could not be reached");
		return 0;
	}
	if (c->dest.tp == CONF_TP_UDP) {
		c->retx_iv = SIP_T1;
		loop_timer_start(sl->loop, &c->retx_t, c->retx_iv, clt_retx, c);
	}
	loop_timer_start(sl->loop, &c->timeout_t, SIP_TXN_TIMEOUT, clt_timeout, c);
	return 0;
}

void sip_clt_conn_failed(struct sipleg *sl, uint64_t conn_id, const char *why)
{
	for (unsigned h = 0; h < SIP_HASH; h++)
		for (struct sipleg_clt *c = sl->clt[h]; c; c = c->hnext)
			if (c->dest.tp != CONF_TP_UDP && c->dest.conn_id == conn_id &&
			    c->state != SIP_CLT_COMPLETED && !c->fail_status) {
				log_debug("sip", "peer %s: %s ends with 503: %s", c->peer,
				          c->method, why);
				clt_fail_later(c, 503,
				               "the connection to the peer failed");
			}
}

static struct sipleg_clt *clt_find(struct sipleg *sl, const char *key)
{
	for (struct sipleg_clt *c = sl->clt[sip_hash(key)]; c; c = c->hnext)
		if (strcmp(c->key, key) == 0)
			return c;
	return NULL;
}

/* RFC 3261 section 17.1.1.3: the ACK of a non-2xx final belongs to the INVITE
 * transaction: same branch, Request-URI, Via, From, Call-ID, CSeq number and
 * Route; To from the response. */
static void clt_ack_error(struct sipleg_clt *c, struct sipm *resp)
{
	if (!c->ack) {
		const char *to = sipm_header(resp, "To", 0);
		struct sipm_request rq = {.method = "ACK",
		                          .ruri = c->ruri,
		                          .via = c->via,
		                          .from = c->from,
		                          .to = to ? to : c->to,
		                          .call_id = c->call_id,
		                          .cseq = c->cseq,
		                          .routes = (const char *const *)c->routes,
		                          .nroutes = c->nroutes};
		if (sipm_request_build(&rq, &c->ack, &c->ack_len) != 0)
			return;
	}
	sip_send(c->sl, &c->dest, c->ack, c->ack_len);
}

const char *const sip_challenge_help =
    "the peer must exclude the bridge from authentication: a trusted federation "
    "peer is never challenged (on Lync/SfB make the bridge a trusted application "
    "of a trusted application pool, New-CsTrustedApplicationPool / "
    "New-CsTrustedApplication, reached by a TLS static route; a digest (MD5) "
    "challenge is also what signs Lync clients out)";

void sip_clt_response(struct sipleg *sl, struct sipm *resp)
{
	struct sbuf sb;
	sbuf_init(&sb);
	sbuf_printf(&sb, "%s|%s", sipm_via_branch(resp), sipm_method(resp));
	char *key = sbuf_take(&sb, NULL);
	if (!key)
		return;
	struct sipleg_clt *c = clt_find(sl, key);
	free(key);
	int status = sipm_status(resp);

	if (!c) {
		/* A retransmitted 2xx to an INVITE whose transaction has ended: the
		 * dialog sends its ACK again (RFC 3261 section 13.2.2.4). */
		struct sipd *d = sipd_find(sl, sipm_call_id(resp), sipm_from_tag(resp),
		                           sipm_to_tag(resp));
		if (d && d->inv && d->inv->ack && status >= 200 && status < 300 &&
		    strcmp(sipm_method(resp), "INVITE") == 0)
			sip_send(sl, &d->inv->ack_dest, d->inv->ack, d->inv->ack_len);
		else
			log_debug("sip",
			          "a %d response to %s matches no transaction; dropped",
			          status, sipm_method(resp));
		return;
	}
	if (c->state == SIP_CLT_COMPLETED) {
		if (c->invite && status >= 300 && c->ack)
			sip_send(sl, &c->dest, c->ack, c->ack_len);
		return;
	}
	if (status < 200) {
		c->state = SIP_CLT_PROCEEDING;
		if (c->invite) {
			/* An INVITE may ring; IM sessions answer fast, so a bound stays.
			 */
			loop_timer_cancel(sl->loop, &c->retx_t);
			loop_timer_start(sl->loop, &c->timeout_t, 180000, clt_timeout, c);
		}
		return;
	}
	if ((status == 401 || status == 407) && sip_once(sl, c->peer, "challenge"))
		log_error("sip", "peer %s: challenged the bridge's %s with %d %s: %s",
		          c->peer, c->method, status,
		          status == 401 ? "(WWW-Authenticate)" : "(Proxy-Authenticate)",
		          sip_challenge_help);

	struct sipd *dlg = c->dlg_id ? sip_dlg_by_id(sl, c->dlg_id) : NULL;
	if (c->invite && status >= 300)
		clt_ack_error(c, resp);
	if (status < 300 && c->create_dialog && !dlg &&
	    (!sip_target_ok(resp) || !sip_names_ok(resp))) {
		/* a 2xx whose Contact or Record-Route could not be the Request-URI
		 * of a request, or whose To could not be the To of one: no dialog
		 * is built on it (the caller sees 502) */
		if (sip_once(sl, c->peer, "bad-target"))
			log_warn(
			    "sip",
			    "peer %s: the %d to %s carries a Contact, Record-Route, To "
			    "or tag that SIP does not allow in a request; treated as 502",
			    c->peer, status, c->method);
		status = 502;
	}
	if (status < 300 && c->create_dialog && !dlg) {
		size_t nrr;
		const char *const *rr = sipm_record_routes(resp, &nrr);
		const char *target =
		    *sipm_contact_uri(resp) ? sipm_contact_uri(resp) : c->ruri;
		dlg = sip_dlg_new(sl, c->call_id, c->from_tag, sipm_to_tag(resp),
		                  c->from_uri, sipm_to_uri(resp), target, c->peer,
		                  c->invite);
		if (dlg) {
			/* RFC 3261 section 12.1.2: the UAC's route set is the
			 * Record-Route of the 2xx, reversed. */
			sip_dlg_set_routes(dlg, rr, nrr, true);
			dlg->local_cseq = c->cseq;
		} else {
			log_error("sip", "peer %s: out of memory for the dialog of %s",
			          c->peer, c->method);
		}
	} else if (status < 300 && dlg && c->invite && *sipm_contact_uri(resp) &&
	           sip_target_ok(resp)) {
		char *t = strdup(sipm_contact_uri(resp));
		if (t) {
			free(dlg->remote_target);
			dlg->remote_target = t;
		}
	}
	if (c->invite && status < 300 && dlg) {
		/* RFC 3261 section 13.2.2.4: the UAC core acknowledges a 2xx with a
		 * new transaction, inside the dialog. */
		struct sipm_request rq = {0};
		char via[256], tag[24];
		struct sbuf from, to;
		sip_random_token(tag, 17);
		const char *sp = strchr(c->via, ';');
		snprintf(via, sizeof(via), "%.*s;branch=z9hG4bK%s;rport",
		         sp ? (int)(sp - c->via) : (int)strlen(c->via), c->via, tag);
		sbuf_init(&from);
		sbuf_init(&to);
		sip_dlg_from_to(dlg, &from, &to);
		char *sfrom = sbuf_take(&from, NULL), *sto = sbuf_take(&to, NULL);
		rq.method = "ACK";
		rq.via = via;
		rq.from = sfrom;
		rq.to = sto;
		rq.call_id = dlg->call_id;
		rq.cseq = c->cseq;
		struct sip_dlg_route dr;
		int rerr = sip_dlg_route(dlg, &dr);
		rq.ruri = dr.ruri;
		rq.routes = dr.routes;
		rq.nroutes = dr.nroutes;
		/* -ENOMEM (route set, From or To): no ACK; the 2xx comes again */
		struct sipd_inv *v = rerr || !sfrom || !sto ? NULL : sip_dlg_inv(dlg);
		if (v) {
			free(v->ack);
			v->ack = NULL;
			if (sipm_request_build(&rq, &v->ack, &v->ack_len) == 0) {
				v->ack_dest = c->dest;
				sip_send(sl, &v->ack_dest, v->ack, v->ack_len);
			}
		}
		sip_dlg_route_free(&dr);
		free(sfrom);
		free(sto);
	}
	clt_finish(c, status, resp, dlg);
}

void sip_txn_stop(struct sipleg *sl)
{
	for (unsigned h = 0; (sl->nsrv || sl->nclt) && h < SIP_HASH; h++) {
		while (sl->srv[h])
			sip_srv_free(sl->srv[h]);
		while (sl->clt[h])
			sip_clt_free(sl->clt[h]);
	}
}

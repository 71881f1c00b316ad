/*
 * The SIP leg: what happens to each message after framing. Requests pass, in
 * order: retransmission absorption, peer trust, the method table, dialog
 * matching, then routing by domain; whatever fails gets its answer here, so the
 * bridge only sees requests it can act on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>
#include <osipparser2/osip_parser.h>

#include "presbridge/addr.h"
#include "presbridge/err.h"
#include "presbridge/log.h"
#include "presbridge/stats.h"
#include "presbridge/sbuf.h"
#include "presbridge/sipt.h"
#include "presbridge/version.h"

#include "sip_int.h"

#define SIP_ALLOW                                                                        \
	"INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, INFO, SUBSCRIBE, NOTIFY, BENOTIFY"
/* What the bridge reads: SDP for IM sessions, the presence formats of
 * DESIGN.md, IM bodies and typing notifications (msg.h). */
#define SIP_ACCEPT                                                                       \
	"application/sdp, application/pidf+xml, text/xml+msrtc.pidf, "                   \
	"application/msrtc-event-categories+xml, text/plain, text/html, "                \
	"multipart/alternative, application/im-iscomposing+xml, application/xml"
#define SIP_SUPPORTED "ms-piggyback-first-notify, ms-benotify"
#define SIP_SERVER    "presbridge/" PB_VERSION
/* Lync's keep-alive negotiation: it sends "Ms-Keep-Alive: UAC;hop-hop=yes" and
 * expects the next hop to say how long it keeps an idle connection. */
#define SIP_KEEPALIVE "UAS; tcp=no; hop-hop=yes; end=no; timeout=300"

static const char *our_name(struct sipleg *sl);

/* Random bytes from OpenSSL's generator, fetched 4 KiB at a time: one
 * RAND_bytes() per token cost more than the rest of answering a MESSAGE. */
static void random_bytes(unsigned char *out, size_t n)
{
	static unsigned char pool[4096];
	static size_t left;
	if (left < n) {
		if (RAND_bytes(pool, (int)sizeof(pool)) != 1)
			for (size_t i = 0; i < sizeof(pool); i++)
				pool[i] = (unsigned char)(rand() & 0xff);
		left = sizeof(pool);
	}
	left -= n;
	memcpy(out, pool + left, n);
	memset(pool + left, 0, n); /* used once */
}

void sip_random_token(char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[32];
	size_t n = (len - 1) / 2 + 1;
	if (n > sizeof(raw))
		n = sizeof(raw);
	random_bytes(raw, n);
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < len; i++) {
		out[o++] = hex[raw[i] >> 4];
		if (o + 1 < len)
			out[o++] = hex[raw[i] & 15];
	}
	out[o] = '\0';
}

bool sip_once(struct sipleg *sl, const char *who, const char *cause)
{
	char key[160];
	uint64_t now = loop_now(sl->loop);
	struct sip_once *slot = NULL;
	snprintf(key, sizeof(key), "%s|%s", who ? who : "", cause);
	for (size_t i = 0; i < SIP_ONCE_MAX; i++) {
		struct sip_once *o = &sl->once[i];
		if (o->key[0] && strcmp(o->key, key) == 0) {
			if (now - o->at < 3600000) {
				o->repeats++;
				return false;
			}
			slot = o;
			break;
		}
		if (!slot || !o->key[0] || (slot->key[0] && o->at < slot->at))
			slot = o;
	}
	snprintf(slot->key, sizeof(slot->key), "%s", key);
	slot->at = now;
	slot->repeats = 0;
	return true;
}

/* ---- answering --------------------------------------------------------- */

static void diag_value(struct sipleg *sl, const char *why, char *out, size_t len)
{
	char clean[400];
	size_t o = 0;
	for (size_t i = 0; why[i] && o + 1 < sizeof(clean); i++)
		clean[o++] = why[i] == '"' ? '\'' : why[i];
	clean[o] = '\0';
	snprintf(out, len, "1000;reason=\"%s\";source=\"%s\"", clean, our_name(sl));
}

static void reason_with(int code, const char *why, char *out, size_t len)
{
	const char *std = err_sip_reason(code);
	if (why && *why)
		snprintf(out, len, "%s (%s)", std ? std : "", why);
	else
		snprintf(out, len, "%s", std ? std : "");
}

int sip_reply_raw(struct sipleg *sl, const struct sip_src *s, const char *req, size_t len,
                  int code, const char *why)
{
	char reason[300], diag[600], tag[24];
	char *text = NULL;
	size_t tlen;
	if (len >= 8 && strncmp(req, "SIP/2.0 ", 8) == 0)
		return 0; /* a response is never answered */
	reason_with(code, why, reason, sizeof(reason));
	diag_value(sl, why ? why : reason, diag, sizeof(diag));
	sip_random_token(tag, 17);
	/* RFC 3261 section 20.5: 405 must, and 501 should, say what is allowed. */
	struct sipm_hdr hdrs[] = {
	    {"Server", SIP_SERVER}, {"ms-diagnostics", diag}, {"Allow", SIP_ALLOW}};
	struct sipm_reply r = {.code = code,
	                       .reason = reason,
	                       .to_tag = tag,
	                       .src_ip = s->ip,
	                       .src_port = s->port,
	                       .hdrs = hdrs,
	                       .nhdrs = code == 405 || code == 501 ? 3 : 2};
	int e = sipm_reply_build(req, len, &r, &text, &tlen);
	if (e)
		return e;
	e = sip_send(sl, &s->back, text, tlen);
	free(text);
	return e;
}

void sip_too_large(struct sipleg *sl, struct sip_src *s, const char *hdr, size_t hdr_len,
                   size_t total)
{
	char why[160];
	snprintf(why, sizeof(why), "%zu bytes; the bridge accepts at most %zu", total,
	         sl->lim.max_msg);
	if (sip_once(sl, s->ip, "too-large"))
		log_warn("sip", "peer %s: a message of %s: answered 513", s->who, why);
	if (sip_reply_raw(sl, s, hdr, hdr_len, 513, why) == -EBADMSG)
		log_debug("sip",
		          "peer %s: the oversize message has no Via or CSeq to "
		          "answer",
		          s->who);
}

static const char *our_name(struct sipleg *sl)
{
	return sl->tls_name ? sl->tls_name : "presbridge";
}

static void contact_of(struct sipleg *sl, const struct sip_src *s, char *out, size_t len)
{
	const char *host =
	    s->back.tp == CONF_TP_TLS && sl->tls_name ? sl->tls_name : s->lip;
	const char *fmt =
	    strchr(host, ':') ? "<sip:[%s]:%u;transport=%s>" : "<sip:%s:%u;transport=%s>";
	snprintf(out, len, fmt, host, s->lport, conf_tp_name(s->back.tp));
}

/* Does answering st with a 2xx start a dialog? (INVITE and SUBSCRIBE outside
 * a dialog, RFC 3261 section 12.1 and RFC 6665 section 4.1.2.) */
static bool creates_dialog(const struct sipleg_srv *st)
{
	const char *m = sipm_method(st->req);
	return !*sipm_to_tag(st->req) &&
	       (strcmp(m, "INVITE") == 0 || strcmp(m, "SUBSCRIBE") == 0);
}

int sipleg_reply(struct sipleg_srv *st, const struct sipleg_reply *r, struct sipd **dlgp)
{
	struct sipleg *sl;
	struct sipm_hdr *h = NULL;
	char diag[600], contact[320], *text = NULL, *sdp = NULL;
	size_t n = 0, tlen, sdplen = 0;
	int err;

	if (!st || !r || r->code < 100 || r->code > 699)
		return -EINVAL;
	if (st->final)
		return -EALREADY;
	if (!st->req)
		return -EINVAL;
	sl = st->sl;
	bool ok2xx = r->code >= 200 && r->code < 300;
	bool creates = ok2xx && creates_dialog(st);
	const char *method = sipm_method(st->req);
	size_t nrr;
	const char *const *rr = sipm_record_routes(st->req, &nrr);

	h = calloc(8 + nrr + r->nhdrs, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h[n++] = (struct sipm_hdr){"Server", SIP_SERVER};
	if (r->code >= 300 && r->diagnostics) {
		diag_value(sl, r->diagnostics, diag, sizeof(diag));
		h[n++] = (struct sipm_hdr){"ms-diagnostics", diag};
	}
	if (r->code == 405 || r->code == 501 || (ok2xx && strcmp(method, "OPTIONS") == 0))
		h[n++] = (struct sipm_hdr){"Allow", SIP_ALLOW};
	if (st->keepalive)
		h[n++] = (struct sipm_hdr){"ms-keep-alive", SIP_KEEPALIVE};
	if (ok2xx && (creates || st->dlg || strcmp(method, "OPTIONS") == 0)) {
		contact_of(sl, &st->src, contact, sizeof(contact));
		h[n++] = (struct sipm_hdr){"Contact", contact};
	}
	/* RFC 3261 section 12.1.1: the UAS copies Record-Route into the 2xx. */
	if (creates)
		for (size_t i = 0; i < nrr; i++)
			h[n++] = (struct sipm_hdr){"Record-Route", rr[i]};
	if (ok2xx && strcmp(method, "SUBSCRIBE") == 0 && r->body &&
	    sipleg_srv_piggyback(st))
		h[n++] = (struct sipm_hdr){"Supported", "ms-piggyback-first-notify"};
	for (size_t i = 0; i < r->nhdrs; i++)
		h[n++] = r->hdrs[i];

	const char *ctype = r->content_type, *body = r->body;
	size_t blen = r->body_len;
	if (ok2xx && strcmp(method, "INVITE") == 0 && !body) {
		/* Lync IM sessions: answer SDP the way the offer came. */
		const char *addr = st->src.lip[0] ? st->src.lip : "127.0.0.1";
		if (sipm_sdp_im_answer(addr, &sdp, &sdplen) == 0) {
			ctype = SIPM_SDP_IM_TYPE;
			body = sdp;
			blen = sdplen;
		}
	}
	size_t rlen;
	const char *rtext = sipm_text(st->req, &rlen);
	struct sipm_reply rp = {.code = r->code,
	                        .reason = r->reason,
	                        .to_tag = r->code == 100 ? NULL : st->to_tag,
	                        .src_ip = st->src.ip,
	                        .src_port = st->src.port,
	                        .hdrs = h,
	                        .nhdrs = n,
	                        .content_type = ctype,
	                        .body = body,
	                        .body_len = blen};
	err = sipm_reply_build(rtext, rlen, &rp, &text, &tlen);
	free(h);
	free(sdp);
	if (err)
		return err;

	struct sipd *d = st->dlg;
	if (creates) {
		const char *target = *sipm_contact_uri(st->req)
		                         ? sipm_contact_uri(st->req)
		                         : sipm_from_uri(st->req);
		d = sip_dlg_new(sl, sipm_call_id(st->req), st->to_tag,
		                sipm_from_tag(st->req), sipm_to_uri(st->req),
		                sipm_from_uri(st->req), target, st->peer,
		                strcmp(method, "INVITE") == 0);
		if (!d) {
			free(text);
			return -ENOMEM;
		}
		/* RFC 3261 section 12.1.1: the UAS route set is the Record-Route in
		 * order. */
		sip_dlg_set_routes(d, rr, nrr, false);
		d->remote_cseq = sipm_cseq(st->req);
		d->have_remote_cseq = true;
		sip_srv_set_dlg(st, d);
	}
	if (ok2xx && d && strcmp(method, "INVITE") == 0)
		sip_dlg_ok_start(d, text, tlen, sipm_cseq(st->req), &st->src.back);
	if (r->before_send)
		r->before_send(d, r->before_arg);
	log_debug("sip", "peer %s: %s answered %d", st->who, method, r->code);
	sip_srv_respond(st, r->code, text, tlen);
	if (dlgp)
		*dlgp = d;
	return 0;
}

int sipleg_reply_code(struct sipleg_srv *st, int code, const char *why)
{
	char reason[300];
	reason_with(code, why, reason, sizeof(reason));
	struct sipleg_reply r = {.code = code, .reason = reason, .diagnostics = why};
	return sipleg_reply(st, &r, NULL);
}

const char *sipleg_srv_peer(const struct sipleg_srv *st)
{
	return st->peer;
}

struct sipd *sipleg_srv_dialog(const struct sipleg_srv *st)
{
	return st->dlg;
}

bool sipleg_srv_piggyback(const struct sipleg_srv *st)
{
	return st->req && sipm_supported(st->req, "ms-piggyback-first-notify");
}

/* ---- the method table ---------------------------------------------------- */

static void to_bridge(struct sipleg *sl, struct sipleg_srv *st)
{
	if (!sl->h.request) {
		sipleg_reply_code(st, 480, "the bridge is not ready");
		return;
	}
	st->tu = true;
	/* st->req lives as long as st's transaction, past a synchronous answer. */
	sl->h.request(st, st->req, sl->arg);
}

static void m_options(struct sipleg *sl, struct sipleg_srv *st)
{
	struct sipm_hdr h[] = {{"Accept", SIP_ACCEPT}, {"Supported", SIP_SUPPORTED}};
	struct sipleg_reply r = {.code = 200, .hdrs = h, .nhdrs = 2};
	(void)sl;
	sipleg_reply(st, &r, NULL);
}

static void m_invite(struct sipleg *sl, struct sipleg_srv *st)
{
	size_t blen;
	const char *body = sipm_body(st->req, &blen);
	const char *ct = sipm_header(st->req, "Content-Type", 0);
	const char *accept = sipm_header(st->req, "Accept", 0);
	/* RFC 3261 section 8.2.3: a body type the UAS does not understand is 415
	 * with Accept (RFC 4475 section 3.3.6). */
	if (body && blen && ct && !sipm_type_in("application/sdp", ct)) {
		struct sipm_hdr h[] = {{"Accept", "application/sdp"}};
		struct sipleg_reply r = {
		    .code = 415,
		    .hdrs = h,
		    .nhdrs = 1,
		    .diagnostics =
		        "an INVITE's body must be an SDP offer (application/sdp)"};
		sipleg_reply(st, &r, NULL);
		return;
	}
	/* RFC 3261 section 21.4.7: the answer would be SDP, which the request's
	 * Accept does not take (RFC 4475 section 3.3.15). */
	if (accept && *accept && !sipm_type_in(accept, "application/sdp")) {
		struct sipm_hdr h[] = {
		    {"Warning",
		     "399 bridge \"the answer is application/sdp, which Accept does "
		     "not list\""}};
		struct sipleg_reply r = {
		    .code = 406,
		    .hdrs = h,
		    .nhdrs = 1,
		    .diagnostics =
		        "the answer is application/sdp, which Accept does not list"};
		sipleg_reply(st, &r, NULL);
		return;
	}
	if (!st->dlg) {
		if (!body || !ct || strncasecmp(ct, "application/sdp", 15) != 0) {
			sipleg_reply_code(
			    st, 488, "an IM session needs an SDP offer with m=message");
			return;
		}
		if (!sipm_sdp_is_im(body, blen)) {
			sipleg_reply_code(st, 488,
			                  "only IM sessions (m=message) are bridged, not "
			                  "audio or video");
			return;
		}
	}
	/* RFC 3261 section 17.2.1: stop the INVITE's retransmissions at once. */
	struct sipleg_reply trying = {.code = 100};
	sipleg_reply(st, &trying, NULL);
	to_bridge(sl, st);
}

static void m_cancel(struct sipleg *sl, struct sipleg_srv *st)
{
	char *key = sip_srv_key(st->req, "INVITE");
	struct sipleg_srv *inv = key ? sip_srv_find(sl, key) : NULL;
	free(key);
	if (!inv || inv->final) {
		sipleg_reply_code(st, 481, "no pending INVITE matches this CANCEL");
		return;
	}
	sipleg_reply_code(st, 200, NULL);
	/* RFC 3261 section 9.2: the INVITE ends with 487. */
	if (inv->tu && sl->h.gone)
		sl->h.gone(inv, sl->arg);
	inv->tu = false;
	sipleg_reply_code(inv, 487, NULL);
}

static void m_not_allowed(struct sipleg *sl, struct sipleg_srv *st)
{
	(void)sl;
	sipleg_reply_code(st, 405, "the bridge does not take this method");
}

struct method_row {
	const char *name;
	void (*fn)(struct sipleg *sl, struct sipleg_srv *st);
	bool in_dialog_only; /* outside a dialog: 481 */
	bool no_response;    /* Lync's BENOTIFY */
	bool target_refresh; /* Contact updates the remote target (RFC 3261 12.2.2, RFC
	                        6665) */
	bool early;          /* handled before dialog and domain checks */
};

static const struct method_row methods[] = {
    {"OPTIONS", m_options, false, false, false, false},
    {"INVITE", m_invite, false, false, true, false},
    {"CANCEL", m_cancel, false, false, false, true},
    {"BYE", to_bridge, true, false, false, false},
    {"MESSAGE", to_bridge, false, false, false, false},
    {"INFO", to_bridge, true, false, false, false},
    {"SUBSCRIBE", to_bridge, false, false, true, false},
    {"NOTIFY", to_bridge, true, false, true, false},
    {"BENOTIFY", to_bridge, true, true, false, false},
    /* Known SIP methods the bridge does not take: 405 with Allow (RFC 3261
     * section 21.4.6); an unknown method is 501 (section 21.5.2). */
    {"REGISTER", m_not_allowed, false, false, false, true},
    {"PUBLISH", m_not_allowed, false, false, false, true},
    {"REFER", m_not_allowed, false, false, false, true},
    {"UPDATE", m_not_allowed, false, false, false, true},
    {"PRACK", m_not_allowed, false, false, false, true},
    {"NEGOTIATE", m_not_allowed, false, false, false, true},
    {"SERVICE", m_not_allowed, false, false, false, true},
};

static const struct method_row *method_find(const char *name)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].name, name) == 0)
			return &methods[i];
	return NULL;
}

/* ---- checks ---------------------------------------------------------------- */

/* RFC 3261 section 8.2.2.3: a request that requires an option the bridge does
 * not support is refused with 420 listing those options in Unsupported (RFC
 * 4475 section 3.3.5). Proxy-Require is for proxies; a UAS ignores it (RFC 3261
 * section 20.29). ACK and CANCEL never come here (section 8.2.2.3). */
static bool require_ok(struct sipleg_srv *st)
{
	char unsup[400] = "", part[400];
	size_t n = 0, o = 0;
	const char *v;
	for (unsigned i = 0; (v = sipm_header(st->req, "Require", i)) != NULL; i++) {
		size_t k = sipm_unsupported(v, SIP_SUPPORTED, part, sizeof(part));
		if (k && o + 3 < sizeof(unsup)) {
			int w = snprintf(unsup + o, sizeof(unsup) - o, "%s%s",
			                 o ? ", " : "", part);
			o = w < 0 || (size_t)w >= sizeof(unsup) - o ? sizeof(unsup) - 1
			                                            : o + (size_t)w;
		}
		n += k;
	}
	if (!n)
		return true;
	char diag[500];
	snprintf(diag, sizeof(diag), "unsupported option required: %s", unsup);
	struct sipm_hdr h[] = {{"Unsupported", unsup}};
	struct sipleg_reply r = {.code = 420, .hdrs = h, .nhdrs = 1, .diagnostics = diag};
	sipleg_reply(st, &r, NULL);
	return false;
}

/* The request passed the method, address and dialog checks: its Require,
 * then the method's own handling (RFC 3261 section 8.2's order). */
static void dispatch(struct sipleg *sl, const struct method_row *row,
                     struct sipleg_srv *st)
{
	if (require_ok(st))
		row->fn(sl, st);
}

static bool trusted(struct sipleg *sl, struct sip_src *s, struct sipm *m,
                    struct sipleg_srv *st)
{
	if (s->peer && s->peer->trusted)
		return true;
	char why[400];
	const char *method = sipm_method(m);
	if (!s->peer) {
		char cause[300];
		snprintf(cause, sizeof(cause), "403 %s",
		         s->unknown_why ? s->unknown_why : "");
		if (sip_once(sl, s->ip, cause))
			log_warn("sip",
			         "peer %s: %s refused%s: %s; it is not a configured peer "
			         "(add a [peer] for it: TLS peers by certificate name, "
			         "tcp/udp "
			         "peers by address)",
			         s->who, method,
			         st ? " with 403" : " (it takes no response)",
			         s->unknown_why ? s->unknown_why : "unknown sender");
		snprintf(why, sizeof(why), "not a configured peer");
	} else {
		if (sip_once(sl, s->peer->name, "403-untrusted"))
			log_warn(
			    "sip",
			    "peer %s: %s refused%s: [peer %s] is not trusted (the bridge "
			    "never challenges; set trusted = yes to serve it)",
			    s->who, method, st ? " with 403" : " (it takes no response)",
			    s->peer->name);
		snprintf(why, sizeof(why), "peer not trusted");
	}
	if (st) {
		char reason[300], diag[500];
		reason_with(403, why, reason, sizeof(reason));
		snprintf(diag, sizeof(diag), "%s: %s", why,
		         err_bridge(ERR_BRIDGE_PEER_FORBIDDEN)->explanation);
		struct sipleg_reply r = {
		    .code = 403, .reason = reason, .diagnostics = diag};
		sipleg_reply(st, &r, NULL);
	}
	return false;
}

/* Requests outside a dialog must be for an XMPP-homed domain: the bridge
 * serves those users; anything else would be a loop or a misroute. */
static bool domain_ok(struct sipleg *sl, struct sipleg_srv *st)
{
	const char *user = sipm_ruri_user(st->req), *host = sipm_ruri_host(st->req);
	enum addr_home home;
	char why[400];
	if (!*user) {
		sipleg_reply_code(st, 404, "no user in the Request-URI");
		return false;
	}
	if (addr_domain_sip(sl->cf->addr, host, &home, NULL) != 0) {
		snprintf(why, sizeof(why), "domain not bridged: %s is not in domains.map",
		         host);
	} else if (home != ADDR_HOME_XMPP) {
		snprintf(
		    why, sizeof(why),
		    "domain not bridged: %s is SIP-homed; the bridge serves XMPP-homed "
		    "domains only",
		    host);
	} else {
		return true;
	}
	if (sip_once(sl, host, "404-domain"))
		log_warn("sip", "peer %s: %s for %s refused with 404: %s", st->who,
		         sipm_method(st->req), sipm_ruri(st->req), why);
	char reason[300];
	reason_with(404, "domain not bridged", reason, sizeof(reason));
	struct sipleg_reply r = {.code = 404, .reason = reason, .diagnostics = why};
	sipleg_reply(st, &r, NULL);
	return false;
}

static void on_ack(struct sipleg *sl, struct sip_src *s, struct sipm *m)
{
	char *key = sip_srv_key(m, "INVITE");
	struct sipleg_srv *inv = key ? sip_srv_find(sl, key) : NULL;
	free(key);
	if (inv) {
		sip_srv_ack(inv);
		return;
	}
	struct sipd *d = sipd_find(sl, sipm_call_id(m), sipm_to_tag(m), sipm_from_tag(m));
	if (d)
		sip_dlg_ack_received(d, sipm_cseq(m));
	else
		log_debug("sip", "peer %s: ACK matches no transaction or dialog; dropped",
		          s->who);
}

static void on_benotify(struct sipleg *sl, struct sip_src *s, struct sipm *m)
{
	struct sipd *d = sipd_find(sl, sipm_call_id(m), sipm_to_tag(m), sipm_from_tag(m));
	if (!d) {
		log_debug("sip",
		          "peer %s: BENOTIFY for an unknown dialog dropped (it takes no "
		          "response)",
		          s->who);
		return;
	}
	if (sl->h.request)
		sl->h.request(NULL, m, sl->arg);
}

/* Printable ASCII without space (RFC 3261 section 25.1: what a URI,
 * a tag or a Call-ID may hold is a subset). */
static bool printable(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v <= 0x20 || (unsigned char)*v >= 0x7f)
			return false;
	return true;
}

/* n bytes of u in the URI characters of RFC 3261 section 25.1 (printable
 * ASCII without space, quote and angle brackets), and a URI libosip2 parses:
 * its parser reads some text it cannot write back readably ("<sip:b@h: x>"
 * comes out as "sip:b@h:", whose empty port it refuses; fuzz_sipbridge). */
static bool uri_ok(const char *u, size_t n)
{
	char *z = n ? strndup(u, n) : NULL;
	osip_uri_t *o = NULL;
	bool ok = z && strlen(z) == n && printable(z) && !strpbrk(z, "\"<>") &&
	          osip_uri_init(&o) == 0 && osip_uri_parse(o, z) == 0;
	osip_uri_free(o);
	free(z);
	return ok;
}

/* A SIP or SIPS URI as uri_ok(): n bytes of u. */
static bool sip_uri_ok(const char *u, size_t n)
{
	if (!(n > 4 && strncasecmp(u, "sip:", 4) == 0) &&
	    !(n > 5 && strncasecmp(u, "sips:", 5) == 0))
		return false;
	return uri_ok(u, n);
}

/* A Record-Route value: <URI> with parameters after it. */
static bool route_ok(const char *v)
{
	const char *lt = strchr(v, '<'), *gt = lt ? strchr(lt, '>') : NULL;
	return lt && gt && sip_uri_ok(lt + 1, (size_t)(gt - lt - 1));
}

/* RFC 3261 section 12.1.1: the remote target and the route set of a dialog are
 * SIP or SIPS URIs. Anything else would become the Request-URI (the Contact,
 * or the first route of a strict router) of every request the bridge sends in
 * the dialog, which no SIP parser reads (found by fuzz/fuzz_sipbridge.c and
 * fuzz/fuzz_xmpp.c). */
bool sip_target_ok(struct sipm *m)
{
	const char *c = sipm_contact_uri(m);
	if (*c && !sip_uri_ok(c, strlen(c)))
		return false;
	size_t n = 0;
	const char *const *rr = sipm_record_routes(m, &n);
	for (size_t i = 0; i < n; i++)
		if (!route_ok(rr[i]))
			return false;
	return true;
}

/* The From and To URIs, the tags and the Call-ID of m become the From, To and
 * Call-ID of every request the bridge sends in a dialog built on m; each must
 * be something a SIP parser reads (a To URI holding control bytes went into the
 * From of a NOTIFY: found by fuzz/fuzz_sipbridge.c). */
bool sip_names_ok(const struct sipm *m)
{
	const char *from = sipm_from_uri(m), *to = sipm_to_uri(m);
	return uri_ok(from, strlen(from)) && uri_ok(to, strlen(to)) &&
	       printable(sipm_from_tag(m)) && printable(sipm_to_tag(m)) &&
	       printable(sipm_call_id(m));
}

static void handle_request(struct sipleg *sl, struct sip_src *s, struct sipm *m)
{
	const char *method = sipm_method(m);
	const struct method_row *row = method_find(method);

	if (strcmp(method, "ACK") == 0) {
		if (s->peer && s->peer->trusted)
			on_ack(sl, s, m);
		sipm_free(m);
		return;
	}
	if (row && row->no_response) {
		if (trusted(sl, s, m, NULL))
			on_benotify(sl, s, m);
		sipm_free(m);
		return;
	}
	char *key = sip_srv_key(m, method);
	if (!key) {
		sipm_free(m);
		return;
	}
	struct sipleg_srv *old = sip_srv_find(sl, key);
	if (old) {
		sip_srv_retransmission(old);
		free(key);
		sipm_free(m);
		return;
	}
	struct sipleg_srv *st = sip_srv_new(sl, key, m, s);
	if (!st) {
		free(key);
		sipm_free(m);
		return;
	}
	if (!trusted(sl, s, m, st))
		return;
	st->keepalive = sipm_header(m, "Ms-Keep-Alive", 0) != NULL;
	if (!row) {
		sipleg_reply_code(st, 501, "unknown method");
		return;
	}
	if (row->early) {
		row->fn(sl, st);
		return;
	}
	if (row->target_refresh && !sip_target_ok(m)) {
		sipleg_reply_code(st, 400,
		                  "the Contact or a Record-Route is not a well-formed "
		                  "sip: or sips: URI");
		return;
	}
	if (row->target_refresh && !sip_names_ok(m)) {
		sipleg_reply_code(st, 400,
		                  "the From or To URI, a tag or the Call-ID holds bytes "
		                  "SIP does not allow there");
		return;
	}
	if (*sipm_to_tag(m)) {
		struct sipd *d =
		    sipd_find(sl, sipm_call_id(m), sipm_to_tag(m), sipm_from_tag(m));
		if (!d) {
			if (row->fn == m_options) {
				dispatch(sl, row, st);
				return;
			}
			sipleg_reply_code(st, 481,
			                  err_bridge(ERR_BRIDGE_NO_SESSION)->explanation);
			return;
		}
		/* RFC 3261 section 12.2.2: a lower CSeq is out of order. */
		if (d->have_remote_cseq && sipm_cseq(m) <= d->remote_cseq) {
			sipleg_reply_code(st, 500, "CSeq out of order");
			return;
		}
		d->remote_cseq = sipm_cseq(m);
		d->have_remote_cseq = true;
		if (row->target_refresh && *sipm_contact_uri(m)) {
			char *t = strdup(sipm_contact_uri(m));
			if (t) {
				free(d->remote_target);
				d->remote_target = t;
			}
		}
		sip_srv_set_dlg(st, d);
		dispatch(sl, row, st);
		return;
	}
	if (row->in_dialog_only) {
		sipleg_reply_code(st, 481, "outside any dialog");
		return;
	}
	if (row->fn == m_options && !*sipm_ruri_user(m)) {
		dispatch(sl, row, st); /* a ping of the bridge itself */
		return;
	}
	if (!domain_ok(sl, st))
		return;
	dispatch(sl, row, st);
}

/* True if buf starts with a method token the bridge does not know. */
static bool method_unknown(const char *buf, size_t len)
{
	char name[32];
	size_t n = 0;
	while (n < len && buf[n] != ' ' && buf[n] != '\r' && buf[n] != '\n')
		n++;
	if (n == 0 || n >= len || buf[n] != ' ' ||
	    (len >= 4 && strncmp(buf, "SIP/", 4) == 0))
		return false;
	if (n >= sizeof(name))
		return true; /* longer than any method the bridge knows */
	memcpy(name, buf, n);
	name[n] = '\0';
	return strcmp(name, "ACK") != 0 && !method_find(name);
}

void sip_recv(struct sipleg *sl, struct sip_src *s, const char *buf, size_t len,
              const char *frame_why)
{
	struct sipm *m = NULL;
	const char *why = NULL;

	log_trace("sip", "peer %s: received %zu bytes:\n%.*s", s->who, len,
	          (int)(len > 4000 ? 4000 : len), buf);
	if (frame_why) {
		if (sip_once(sl, s->ip, frame_why))
			log_warn("sip", "peer %s: malformed message (%s); answered 400",
			         s->who, frame_why);
		sip_reply_raw(sl, s, buf, len, 400, frame_why);
		return;
	}
	int sc = sipm_start_line_check(buf, len);
	if (sc) {
		why = sc == 505 ? "the bridge speaks SIP/2.0 only"
		                : "the Request-URI is neither a sip: nor a sips: URI";
		int r = sip_reply_raw(sl, s, buf, len, sc, why);
		if (sip_once(sl, s->ip, why))
			log_warn("sip", "peer %s: %s; %s %d", s->who, why,
			         r == 0 ? "answered" : "no answer possible, not even",
			         sc);
		return;
	}
	int e = sipm_parse(&m, buf, len, &why);
	if (e == -ENOMEM) {
		log_error("sip", "peer %s: out of memory parsing a message", s->who);
		return;
	}
	if (e) {
		bool resp = len >= 8 && strncmp(buf, "SIP/2.0 ", 8) == 0;
		if (resp) {
			log_debug("sip", "peer %s: unreadable response dropped (%s)",
			          s->who, why);
			return;
		}
		/* RFC 3261 section 8.2.1: an unknown method is 501 even when the
		 * rest is wrong too (RFC 4475 section 3.1.2.18 prefers it). */
		int code = method_unknown(buf, len) ? 501 : 400;
		int r = sip_reply_raw(sl, s, buf, len, code, why);
		if (sip_once(sl, s->ip, why))
			log_warn("sip", "peer %s: malformed request (%s); %s", s->who,
			         why,
			         r == 0 ? (code == 501 ? "answered 501 (unknown method)"
			                               : "answered 400")
			                : "no answer possible (no Via or no CSeq)");
		return;
	}
	if (!sipm_is_request(m)) {
		stats_sip_response(STATS_IN, sipm_status(m));
		sip_clt_response(sl, m);
		sipm_free(m);
		return;
	}
	stats_sip_request(STATS_IN, sipm_method(m), strlen(sipm_method(m)));
	handle_request(sl, s, m);
}

/* ---- sending ------------------------------------------------------------- */

/* The URI inside a name-addr ("Alice" <sip:a@b>;tag=x -> sip:a@b). */
static char *uri_of(const char *hv)
{
	const char *lt = strchr(hv, '<');
	if (lt) {
		const char *gt = strchr(lt, '>');
		if (!gt)
			return NULL;
		return strndup(lt + 1, (size_t)(gt - lt - 1));
	}
	return strndup(hv, strcspn(hv, ";"));
}

static bool token_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || strchr("-.!%*_+`'~", *s)))
			return false;
	return true;
}

static const struct conf_peer *route(struct sipleg *sl, const struct sipleg_req *rq)
{
	if (rq->dialog)
		return sippeer_by_section(sl->peers, rq->dialog->peer);
	if (rq->peer)
		return sippeer_by_section(sl->peers, rq->peer);
	osip_uri_t *u = NULL;
	const struct conf_peer *p = NULL;
	if (osip_uri_init(&u) != 0)
		return NULL;
	if (osip_uri_parse(u, rq->ruri) == 0 && u->host)
		p = conf_peer_for_domain(sl->cf, u->host);
	osip_uri_free(u);
	return p;
}

int sipleg_request(struct sipleg *sl, const struct sipleg_req *rq, sipleg_resp_h *h,
                   void *arg, struct sipleg_clt **cp)
{
	struct sipd *d;
	char host[256], branch[24], tok[24], via[400], callid[320];
	unsigned port = 0;
	struct sbuf from, to;
	int err = -ENOMEM;

	if (!sl || !rq || !rq->method || !token_ok(rq->method) ||
	    strcmp(rq->method, "ACK") == 0 || strcmp(rq->method, "CANCEL") == 0)
		return -EINVAL;
	d = rq->dialog;
	if (!d && (!rq->ruri || !rq->from || strncasecmp(rq->ruri, "sip", 3) != 0))
		return -EINVAL;
	const struct conf_peer *p = route(sl, rq);
	if (!p)
		return (d || rq->peer) ? -EINVAL : -ENOENT;

	struct sipleg_clt *c = sip_clt_new(sl);
	if (!c)
		return -ENOMEM;
	sbuf_init(&from);
	sbuf_init(&to);
	if (sip_dest_for_peer(sl, p, &c->dest, host, sizeof(host), &port) != 0) {
		/* Reported through h as 503 at the next turn, like any transport
		 * failure; the cause is logged already. */
		memset(&c->dest, 0, sizeof(c->dest));
		c->dest.tp = p->transport;
		c->dest.udp_fd = -1;
		snprintf(host, sizeof(host), "%s",
		         sl->tls_name ? sl->tls_name : "127.0.0.1");
	}
	snprintf(c->peer, sizeof(c->peer), "%s", p->name);
	sip_random_token(branch, 21);
	char tp[4];
	snprintf(tp, sizeof(tp), "%s", conf_tp_name(p->transport));
	for (char *t = tp; *t; t++)
		*t = (char)(*t - 32);
	bool v6 = strchr(host, ':') != NULL;
	snprintf(via, sizeof(via),
	         v6 ? "SIP/2.0/%s [%s]:%u;branch=z9hG4bK%s;rport"
	            : "SIP/2.0/%s %s:%u;branch=z9hG4bK%s;rport",
	         tp, host, port, branch);

	const char *ruri;
	const char *const *routes = NULL;
	size_t nroutes = 0;
	char tag[24];
	struct sip_dlg_route dr = {0};
	if (d) {
		if (sip_dlg_route(d, &dr) != 0) {
			sbuf_free(&from);
			sbuf_free(&to);
			sip_clt_free(c);
			return -ENOMEM;
		}
		sip_dlg_from_to(d, &from, &to);
		snprintf(callid, sizeof(callid), "%s", d->call_id);
		c->cseq = ++d->local_cseq;
		ruri = dr.ruri;
		routes = dr.routes;
		nroutes = dr.nroutes;
		c->dlg_id = d->id;
		snprintf(tag, sizeof(tag), "%s", d->local_tag);
		c->from_uri = strdup(d->local_uri);
	} else {
		sip_random_token(tag, 17);
		sbuf_printf(&from, "%s;tag=%s", rq->from, tag);
		if (rq->to)
			sbuf_puts(&to, rq->to);
		else
			sbuf_printf(&to, "<%s>", rq->ruri);
		sip_random_token(tok, 21);
		if (rq->call_id)
			snprintf(callid, sizeof(callid), "%s", rq->call_id);
		else
			snprintf(callid, sizeof(callid), "%s@%s", tok, host);
		c->cseq = 1;
		ruri = rq->ruri;
		c->from_uri = uri_of(rq->from);
	}
	char contact[320] = "";
	bool want_contact = strcmp(rq->method, "INVITE") == 0 ||
	                    strcmp(rq->method, "SUBSCRIBE") == 0 ||
	                    strcmp(rq->method, "NOTIFY") == 0;
	if (want_contact)
		snprintf(contact, sizeof(contact),
		         v6 ? "<sip:[%s]:%u;transport=%s>" : "<sip:%s:%u;transport=%s>",
		         host, port, conf_tp_name(p->transport));

	struct sipm_hdr *hdrs = calloc(rq->nhdrs + 1, sizeof(*hdrs));
	char *sfrom = sbuf_take(&from, NULL), *sto = sbuf_take(&to, NULL);
	if (!hdrs || !sfrom || !sto || !c->from_uri)
		goto fail;
	hdrs[0] = (struct sipm_hdr){"User-Agent", SIP_SERVER};
	for (size_t i = 0; i < rq->nhdrs; i++)
		hdrs[i + 1] = rq->hdrs[i];
	struct sipm_request r = {.method = rq->method,
	                         .ruri = ruri,
	                         .via = via,
	                         .from = sfrom,
	                         .to = sto,
	                         .call_id = callid,
	                         .cseq = c->cseq,
	                         .contact = want_contact ? contact : NULL,
	                         .routes = routes,
	                         .nroutes = nroutes,
	                         .hdrs = hdrs,
	                         .nhdrs = rq->nhdrs + 1,
	                         .content_type = rq->content_type,
	                         .body = rq->body,
	                         .body_len = rq->body_len};
	err = sipm_request_build(&r, &c->msg, &c->len);
	free(hdrs);
	hdrs = NULL;
	if (!err && rq->max_len && c->len > rq->max_len)
		err = -EMSGSIZE;
	if (err)
		goto fail;
	struct sbuf key;
	sbuf_init(&key);
	sbuf_printf(&key, "z9hG4bK%s|%s", branch, rq->method);
	c->key = sbuf_take(&key, NULL);
	c->method = strdup(rq->method);
	c->invite = strcmp(rq->method, "INVITE") == 0;
	c->h = h;
	c->arg = arg;
	c->create_dialog = rq->create_dialog && !d;
	c->ruri = strdup(ruri);
	c->via = strdup(via);
	c->from = sfrom;
	c->to = sto;
	sfrom = sto = NULL;
	c->from_tag = strdup(tag);
	c->call_id = strdup(callid);
	if (nroutes) {
		c->routes = calloc(nroutes, sizeof(*c->routes));
		if (c->routes)
			for (size_t i = 0; i < nroutes; i++)
				if ((c->routes[i] = strdup(routes[i])) != NULL)
					c->nroutes++;
	}
	if (!c->key || !c->method || !c->ruri || !c->via || !c->from_tag || !c->call_id ||
	    c->nroutes != nroutes) {
		err = -ENOMEM;
		goto fail;
	}
	log_debug("sip", "peer %s: sending %s %s", p->name, rq->method, ruri);
	sip_dlg_route_free(&dr);
	sip_clt_send(c);
	if (cp)
		*cp = c;
	return 0;
fail:
	sip_dlg_route_free(&dr);
	free(hdrs);
	free(sfrom);
	free(sto);
	sbuf_free(&from);
	sbuf_free(&to);
	sip_clt_free(c);
	return err;
}

void sipleg_clt_abandon(struct sipleg_clt *c)
{
	if (c)
		c->h = NULL;
}

/* ---- life cycle ------------------------------------------------------------ */

static const struct sipleg_limits default_limits = {.handshake_ms = 10000,
                                                    .idle_ms = 600000,
                                                    .answer_ms = 30000,
                                                    .max_msg = SIPT_MAX_MSG};

void sipleg_set_limits(struct sipleg *sl, const struct sipleg_limits *lim)
{
	if (lim->handshake_ms)
		sl->lim.handshake_ms = lim->handshake_ms;
	if (lim->idle_ms)
		sl->lim.idle_ms = lim->idle_ms;
	if (lim->answer_ms)
		sl->lim.answer_ms = lim->answer_ms;
	if (lim->max_msg)
		sl->lim.max_msg = lim->max_msg;
}

/* Every [peer] in the link registry (stats.h); peers no longer configured leave it. */
static void peers_register(const struct conf *cf)
{
	struct stats_link_info li;
	for (size_t i = 0; stats_link_at(i, &li) == 0;) {
		bool keep = li.kind != STATS_LINK_SIP_PEER;
		for (size_t p = 0; p < cf->npeers && !keep; p++)
			keep = strcasecmp(cf->peers[p].name, li.name) == 0;
		if (keep)
			i++;
		else
			stats_link_forget(STATS_LINK_SIP_PEER, li.name);
	}
	for (size_t p = 0; p < cf->npeers; p++)
		stats_link_register(STATS_LINK_SIP_PEER, cf->peers[p].name);
}

int sipleg_start(struct sipleg **lp, struct loop *l, const struct conf *cf,
                 const struct sipleg_handlers *h, void *arg)
{
	struct sipleg *sl = calloc(1, sizeof(*sl));
	int err;
	if (!sl)
		return -ENOMEM;
	sl->loop = l;
	sl->cf = cf;
	if (h)
		sl->h = *h;
	sl->arg = arg;
	sl->lim = default_limits;
	if (cf->sip_idle_timeout)
		sl->lim.idle_ms = cf->sip_idle_timeout * 1000u;
	err = sippeer_tab_new(&sl->peers, cf);
	if (!err)
		err = sip_conn_start(sl);
	if (err) {
		sipleg_stop(sl);
		return err;
	}
	peers_register(cf);
	*lp = sl;
	return 0;
}

void sipleg_stop(struct sipleg *sl)
{
	if (!sl)
		return;
	sip_txn_stop(sl);
	sip_dlg_stop(sl);
	sip_conn_stop(sl);
	sippeer_tab_free(sl->peers);
	free(sl);
}

int sipleg_reload(struct sipleg *sl, const struct conf *cf)
{
	struct sippeer_tab *peers = NULL;
	SSL_CTX *tls = NULL;
	char *name = NULL;
	int err = sippeer_tab_new(&peers, cf);
	if (err)
		return err;
	err = sip_conn_reload(sl, cf, &tls, &name);
	if (err) {
		sippeer_tab_free(peers);
		return err;
	}
	SSL_CTX_free(sl->tls);
	free(sl->tls_name);
	sl->tls = tls;
	sl->tls_name = name;
	sippeer_tab_free(sl->peers);
	sl->peers = peers;
	sl->cf = cf;
	if (cf->sip_idle_timeout) /* running idle timers keep their length */
		sl->lim.idle_ms = cf->sip_idle_timeout * 1000u;
	sip_conns_reidentify(sl);
	peers_register(cf);
	log_info("sip", "reloaded: %zu peers, %zu listeners", cf->npeers, cf->nlisten);
	return 0;
}

size_t sipleg_peer_conn_count(const struct sipleg *sl, const char *peer)
{
	size_t n = 0;
	for (const struct sip_conn *c = sl->conns; c; c = c->next)
		n += !c->dead && c->state == SIP_CONN_OPEN && c->peer &&
		     strcmp(c->peer, peer) == 0;
	return n;
}

size_t sipleg_conn_count(const struct sipleg *sl)
{
	size_t n = 0;
	for (const struct sip_conn *c = sl->conns; c; c = c->next)
		n++;
	return n;
}

/*
 * Server-to-server streams (RFC 6120), on the daemon's event loop.
 *
 * Objects:
 *   struct xs2s   the transport: listeners, TLS contexts, resolver, routes, conns
 *   struct route  one (hosted domain, peer domain) pair we send to: its outgoing
 *                 stream, the stanzas waiting for it, dialback verifications
 *                 waiting to be asked over it, reconnect back-off
 *   struct conn   one TCP connection: TLS, the expat parser, the stream state
 *
 * Outgoing stream (we are the initiating / originating server):
 *   DNS or static route -> TCP -> header -> features -> STARTTLS -> TLS
 *   (peer certificate checked) -> header -> features -> SASL EXTERNAL (restart,
 *   header, features) or dialback db:result -> up: the queue is written.
 *   A <failure/> to EXTERNAL falls back to dialback on the same stream (ejabberd
 *   offers EXTERNAL even when it cannot verify our certificate).
 * Incoming stream (we are the receiving server, and the authoritative server
 * for our domains' dialback keys):
 *   header (to must be hosted) -> features (starttls) -> TLS -> header ->
 *   features: EXTERNAL when the peer's certificate is valid for its from, and
 *   dialback -> SASL success (restart) or db:result, verified by a db:verify
 *   over our outgoing stream to the peer's domain -> stanzas whose from/to are
 *   an authenticated pair.
 *   db:verify from a peer is answered at once from the secret (XEP-0185).
 */
#include "presbridge/xs2s.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "presbridge/base64.h"
#include "presbridge/conf.h"
#include "presbridge/log.h"
#include "presbridge/stats.h"
#include "presbridge/loop.h"
#include "presbridge/sbuf.h"
#include "presbridge/siptls.h"
#include "presbridge/xdns.h"
#include "presbridge/xlink.h"
#include "presbridge/xproto.h"
#include "presbridge/xroute.h"
#include "presbridge/xs2s_proto.h"
#include "presbridge/xstream.h"

#define MOD "s2s"

#define NS_SERVER    "jabber:server"
#define NS_DB        "jabber:server:dialback"
#define NS_STREAMS   "http://etherx.jabber.org/streams"
#define NS_TLS       "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL      "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_STREAMERR "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_DBFEAT    "urn:xmpp:features:dialback"
#define NS_STANZAS   "urn:ietf:params:xml:ns:xmpp-stanzas"

/* Bytes read from a socket per call, and calls per readiness (loop fairness). */
#define RD_CHUNK 16384
#define RD_TURNS 4
/* Pending bytes to one peer before we stop taking its stanzas (-ENOBUFS). */
#define WR_MAX (8u * 1024u * 1024u)
/* Connections at once (both directions): beyond it new peers are turned away,
 * so a flood of connections cannot take every descriptor. */
#define CONN_MAX 1024
/* Pending bytes that are written at once rather than at the end of the turn. */
#define FLUSH_NOW 65536u
/* Dialback verifications waiting at one route. */
#define VERIFY_MAX 64
/* The housekeeping tick: idle streams, keep-alives. */
#define TICK_MS 5000u

enum cstate {
	CS_CONNECTING, /* out: TCP connect under way */
	CS_TLS,        /* TLS handshake under way */
	CS_HEADER,     /* waiting for the peer's stream header */
	CS_FEATURES,   /* out: waiting for stream features */
	CS_STARTTLS,   /* out: <starttls/> sent, waiting for <proceed/> */
	CS_SASL,       /* out: <auth/> sent */
	CS_DIALBACK,   /* out: <db:result/> sent */
	CS_UP,         /* out: authenticated; in: stream open (pairs authorize stanzas) */
	CS_CLOSING,    /* </stream:stream> sent */
};

static const char *const cstate_words[] = {
    [CS_CONNECTING] = "connecting",
    [CS_TLS] = "in the TLS handshake",
    [CS_HEADER] = "waiting for the peer's stream header",
    [CS_FEATURES] = "waiting for the peer's stream features",
    [CS_STARTTLS] = "waiting for the answer to STARTTLS",
    [CS_SASL] = "waiting for the answer to SASL EXTERNAL",
    [CS_DIALBACK] = "waiting for the dialback result",
    [CS_UP] = "up",
    [CS_CLOSING] = "closing",
};

struct route;

struct pair { /* an authenticated (peer domain, hosted domain) on an incoming stream */
	char *from, *to;
};

struct conn {
	struct conn *next;
	struct xs2s *s;
	xlink_tap_h *tap; /* test seam (xs2s_feed): no socket, writes go here */
	void *tap_arg;
	unsigned serial;
	int fd;
	bool in;
	enum cstate st;
	SSL *ssl;
	bool tls;         /* TLS is established */
	bool direct;      /* TLS from the first byte (XEP-0368) */
	bool sasl_done;   /* out: authenticated by SASL; in: a SASL success was sent */
	bool ext_tried;   /* out: EXTERNAL tried on this stream */
	bool peer_db;     /* the peer declared the dialback namespace */
	bool peer_db_err; /* the peer advertised dialback <errors/> */
	bool cert_ok;     /* the peer's certificate: chain, name and EKU all good */
	char cert_why[600];
	char tls_desc[96]; /* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
	struct xstream *xs;
	struct sbuf out; /* bytes waiting to be written */
	size_t out_off;
	unsigned events;                   /* registered with the loop */
	char id[XPROTO_STREAM_ID_MAX + 1]; /* the stream id (ours on in, theirs on out) */
	char *local;                       /* hosted domain */
	char *remote;        /* peer domain (in: the header's from, may be NULL) */
	char peer[64];       /* address:port for logs */
	struct route *route; /* out */
	struct pair *pairs;  /* in */
	size_t npairs;
	uint64_t since, last_stanza, last_tx;
	struct loop_timer deadline;
	bool dead;
	bool tls_due; /* <proceed/> handled: TLS starts once the parser has returned */
	bool ext_withheld_logged;
	bool hdr_out;     /* our header is written (a restart resets it) */
	const char *auth; /* out: "SASL EXTERNAL" or "dialback", once up */
};

struct verify { /* a db:result we received, to verify with the authoritative server */
	unsigned conn; /* serial of the incoming conn that asked */
	char *id, *key;
};

struct route {
	struct route *next;
	struct xs2s *s;
	char *local, *remote;
	struct conn *c;
	xmpp_stanza_t **q; /* waiting stanzas (clones), oldest first */
	size_t nq;
	struct verify *v;
	size_t nv;
	struct xdns_query *dq;
	struct xdns_target *targets;
	size_t ntargets, next_target;
	bool resolving;
	unsigned attempts;
	uint64_t not_before; /* no new attempt before (loop ms) */
	bool cert_logged;    /* the peer's unproven certificate was said once */
	struct loop_timer retry;
	char cause[512], last_cause[512];
};

struct s2s_params {
	char **hosted, **allow;
	size_t nhosted, nallow;
	struct conf_hostport *listen;
	size_t nlisten;
	bool *direct; /* per listen address: direct TLS (XEP-0368) */
	char *cert, *key, *ca;
	char secret[XS2S_SECRET_LEN + 1 > 256 ? XS2S_SECRET_LEN + 1 : 256];
	bool secret_given;
	enum conf_s2s_tls tls;
	unsigned auth;
	uint32_t idle_ms, connect_ms;
	char *dns;
	bool direct_tls;
	struct conf_s2s_peer *peers; /* copies: domain, address, tls, auth */
	size_t npeers;
};

struct listener {
	struct xs2s *s;
	int fd;
	bool direct; /* TLS from the first byte (XEP-0368) */
	char label[64];
};

struct xs2s {
	struct loop *loop;
	xmpp_ctx_t *ctx;
	struct xlink_handlers h;
	struct s2s_params p;
	SSL_CTX *tls; /* both roles */
	struct xdns *dns;
	struct listener *ls;
	size_t nls;
	struct conn *conns;
	struct route *routes;
	unsigned serial;
	bool stopping;
	bool dirty; /* some stream has bytes to write at the end of the turn */
	void (*done)(void *arg);
	void *done_arg;
	struct loop_timer tick, stop_timer, done_timer, up_timer;
	uint32_t rnd;
};

static void conn_fail(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void conn_read(struct conn *c);
static void conn_gone(struct conn *c, const char *cause);
static int pair_add(struct conn *c, const char *from, const char *to);
static void route_attempt(void *arg);
static void route_try_next(struct route *r);
static void conn_sync(struct conn *c);
static void conn_flush(struct conn *c);
static void route_up(struct route *r);
static void route_verifies(struct route *r);

/* ---- small helpers ---------------------------------------------------------- */

static char *lower_dup(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++)
		d[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
	d[n] = '\0';
	return d;
}

static bool in_list(char *const *v, size_t n, const char *d)
{
	for (size_t i = 0; i < n && d; i++)
		if (strcasecmp(v[i], d) == 0)
			return true;
	return false;
}

static const struct conf_s2s_peer *peer_conf(const struct xs2s *s, const char *domain)
{
	for (size_t i = 0; i < s->p.npeers; i++)
		if (strcasecmp(s->p.peers[i].domain, domain) == 0)
			return &s->p.peers[i];
	return NULL;
}

static enum conf_s2s_tls tls_for(const struct xs2s *s, const char *domain)
{
	const struct conf_s2s_peer *p = domain ? peer_conf(s, domain) : NULL;
	return p && p->has_tls ? p->tls : s->p.tls;
}

static unsigned auth_for(const struct xs2s *s, const char *domain)
{
	const struct conf_s2s_peer *p = domain ? peer_conf(s, domain) : NULL;
	return p && p->auth ? p->auth : s->p.auth;
}

/* The domain part of a JID, lower case (caller-owns), or NULL. */
static char *jid_domain(const char *jid)
{
	struct xroute_jid j;
	if (!jid || xroute_jid_split(jid, &j) != 0)
		return NULL;
	return lower_dup(j.domain, j.domain_len);
}

static void trace(const struct conn *c, const char *dir, const char *text, size_t len)
{
	if (!log_enabled(LOG_LVL_TRACE))
		return;
	log_msg(LOG_LVL_TRACE, MOD, "%s %s %s: %.*s", c->in ? "in" : "out",
	        c->remote ? c->remote : c->peer, dir, (int)(len > 4000 ? 4000 : len),
	        text);
}

/* ---- writing ------------------------------------------------------------------ */

static void conn_put(struct conn *c, const char *text, size_t len)
{
	if (c->dead)
		return;
	/* A peer that sends requests (db:verify, iq) but does not read the answers
	 * would make this buffer grow without end. */
	if (c->out.len - c->out_off > WR_MAX) {
		conn_gone(c, "the peer does not read what the bridge writes");
		return;
	}
	trace(c, "send", text, len);
	sbuf_putn(&c->out, text, len);
	c->last_tx = loop_now(c->s->loop);
	/* Written at the end of the loop turn (s2s_idle), so a turn's stanzas
	 * leave in one TLS record and one system call, as on a component link;
	 * at once when much is waiting. */
	if (c->tap || c->out.len - c->out_off >= FLUSH_NOW)
		conn_flush(c);
	else
		c->s->dirty = true;
}

static void conn_puts(struct conn *c, const char *text)
{
	conn_put(c, text, strlen(text));
}

static int conn_put_stanza(struct conn *c, xmpp_stanza_t *st)
{
	char *text = NULL;
	size_t len = 0;
	int e = xlink_stanza_text(st, &text, &len);
	if (e)
		return e;
	if (len > XLINK_MAX_STANZA) {
		free(text);
		return -E2BIG;
	}
	conn_put(c, text, len);
	free(text);
	return 0;
}

/* ---- closing ------------------------------------------------------------------ */

static void conn_free(struct conn *c)
{
	loop_timer_cancel(c->s->loop, &c->deadline);
	if (c->fd >= 0) {
		if (c->events)
			loop_fd_del(c->s->loop, c->fd);
		close(c->fd);
	}
	if (c->ssl)
		SSL_free(c->ssl);
	xstream_free(c->xs);
	sbuf_free(&c->out);
	for (size_t i = 0; i < c->npairs; i++) {
		free(c->pairs[i].from);
		free(c->pairs[i].to);
	}
	free(c->pairs);
	free(c->local);
	free(c->remote);
	free(c);
}

/* Reaped from the loop: a conn may die deep inside its own parser callback. */
static void reap(struct xs2s *s)
{
	struct conn **pp = &s->conns;
	while (*pp) {
		struct conn *c = *pp;
		if (c->dead) {
			*pp = c->next;
			conn_free(c);
		} else {
			pp = &c->next;
		}
	}
}

static int s2s_idle(void *arg)
{
	struct xs2s *s = arg;
	if (s->dirty) {
		s->dirty = false;
		for (struct conn *c = s->conns; c; c = c->next)
			if (!c->dead && c->out.len > c->out_off)
				conn_flush(c);
	}
	reap(s);
	return -1;
}

static void route_down(struct route *r, const char *cause);

/* The connection is gone (closed by either side, or failed): forget it. */
static void conn_gone(struct conn *c, const char *cause)
{
	if (c->dead)
		return;
	c->dead = true;
	if (c->fd >= 0 && c->events) {
		loop_fd_del(c->s->loop, c->fd);
		c->events = 0;
	}
	loop_timer_cancel(c->s->loop, &c->deadline);
	if (c->route && c->route->c == c) {
		struct route *r = c->route;
		r->c = NULL;
		route_down(r, cause);
	}
	c->route = NULL;
	if (c->in && c->npairs)
		log_info(MOD, "%s: incoming stream from %s closed%s%s", c->local,
		         c->remote ? c->remote : c->peer, cause ? ": " : "",
		         cause ? cause : "");
}

/* Send a stream error and close (RFC 6120 section 4.9.1.1). */
static void put_header(struct conn *c, const char *from, const char *to, const char *id);

static void conn_stream_error(struct conn *c, const char *cond, const char *text)
{
	struct sbuf sb;
	/* RFC 6120 section 4.9.1.1: an error before our header still opens it. */
	if (!c->hdr_out && c->st != CS_CONNECTING && c->st != CS_TLS) {
		if (c->in && !c->id[0])
			xs2s_stream_id(c->id);
		put_header(c, c->local, c->remote, c->in ? c->id : NULL);
	}
	sbuf_init(&sb);
	sbuf_printf(&sb, "<stream:error><%s xmlns='" NS_STREAMERR "'/>", cond);
	if (text) {
		sbuf_puts(&sb, "<text xmlns='" NS_STREAMERR "'>");
		sbuf_put_xml(&sb, text);
		sbuf_puts(&sb, "</text>");
	}
	sbuf_puts(&sb, "</stream:error></stream:stream>");
	if (!sb.err)
		conn_put(c, sb.p, sb.len);
	sbuf_free(&sb);
	/* Give the bytes one chance to leave; the socket closes with the conn. */
	conn_flush(c);
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_WR);
}

static void conn_fail(struct conn *c, const char *fmt, ...)
{
	char cause[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cause, sizeof(cause), fmt, ap);
	va_end(ap);
	if (c->route && c->route->c == c && !c->route->cause[0])
		snprintf(c->route->cause, sizeof(c->route->cause), "%s", cause);
	else if (c->in)
		log_warn(MOD, "%s: incoming stream from %s: %s",
		         c->local ? c->local : "?", c->remote ? c->remote : c->peer,
		         cause);
	conn_gone(c, cause);
}

static void conn_close(struct conn *c)
{
	if (c->dead)
		return;
	if (c->st != CS_CONNECTING && c->st != CS_TLS)
		conn_puts(c, "</stream:stream>");
	c->st = CS_CLOSING;
	conn_flush(c);
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_WR);
	conn_gone(c, NULL);
}

/* ---- TLS ------------------------------------------------------------------------ */

static int verify_any(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1; /* the chain is judged after the handshake, with words */
}

/* One context for both roles (TLS_method; each SSL takes its role from
 * SSL_set_connect_state/SSL_set_accept_state): the certificate, key and anchors
 * are read once per start or reload. */
static SSL_CTX *make_ctx(const struct s2s_params *p, char *why, size_t n)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	if (!ctx) {
		snprintf(why, n, "out of memory");
		return NULL;
	}
	/* RFC 7590 section 3.1: TLS 1.2 or later. */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(ctx, p->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, p->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(why, n, "cannot use certificate %s with key %s: %s", p->cert,
		         p->key, ERR_reason_error_string(ERR_get_error()));
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_load_verify_locations(ctx, p->ca, NULL) != 1) {
		snprintf(why, n, "cannot read the trust anchors %s: %s", p->ca,
		         ERR_reason_error_string(ERR_get_error()));
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* The CA names a server sends with its certificate request. */
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(p->ca);
	if (names)
		SSL_CTX_set_client_CA_list(ctx, names);
	/* Ask for the peer's certificate (a server must present one; an
	 * initiating server presents one for SASL EXTERNAL) but judge it ourselves. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_any);
	return ctx;
}

/* Judge the peer's certificate for `domain`: chain against [s2s] ca, names
 * (RFC 6125), EKU for its role. Sets c->cert_ok and c->cert_why. */
static void check_peer_cert(struct conn *c, const char *domain)
{
	X509 *x = SSL_get1_peer_certificate(c->ssl);
	char ids[256];
	c->cert_ok = false;
	if (!x) {
		snprintf(c->cert_why, sizeof(c->cert_why),
		         "the peer sent no certificate");
		return;
	}
	long vr = SSL_get_verify_result(c->ssl);
	enum xs2s_id_kind kind = XS2S_ID_NONE;
	enum siptls_role role = c->in ? SIPTLS_CLIENT : SIPTLS_SERVER;
	/* OpenSSL's purpose check fails the chain for a missing EKU: name it as
	 * the EKU check below would. */
	if (vr == X509_V_ERR_INVALID_PURPOSE && siptls_eku_check(x, role) != 0)
		vr = X509_V_OK;
	if (vr != X509_V_OK) {
		const struct siptls_verr *ve = siptls_verify_error(vr);
		/* The SIP leg's words for the fault; the fix names the S2S key. */
		snprintf(
		    c->cert_why, sizeof(c->cert_why),
		    "its certificate chain does not verify against [s2s] ca (%s): %s -- "
		    "if %s is to be trusted by certificate, add its CA to [s2s] ca",
		    c->s->p.ca, ve ? ve->what : X509_verify_cert_error_string(vr),
		    domain ? domain : "the peer");
	} else if (!domain || !xs2s_cert_names_domain(x, domain, &kind)) {
		xs2s_cert_ids_str(x, ids, sizeof(ids));
		snprintf(
		    c->cert_why, sizeof(c->cert_why),
		    "its certificate does not name %s (it names %s; RFC 6125 DNS-ID, "
		    "SRV-ID or XmppAddr)",
		    domain ? domain : "the domain it claims", ids);
	} else if (siptls_eku_check(x, role) != 0) {
		snprintf(
		    c->cert_why, sizeof(c->cert_why),
		    "its certificate lacks the %s EKU (extended key usage) it needs as "
		    "TLS %s",
		    siptls_role_eku(role), c->in ? "client" : "server");
	} else {
		c->cert_ok = true;
		c->cert_why[0] = '\0';
	}
	X509_free(x);
}

static void tls_describe(struct conn *c)
{
	snprintf(c->tls_desc, sizeof(c->tls_desc), "%s%s %s",
	         c->direct ? "direct TLS, " : "", SSL_get_version(c->ssl),
	         SSL_get_cipher_name(c->ssl));
}

static void stream_open(struct conn *c);

/* A stream restart (after TLS, after SASL: RFC 6120 sections 5.4.3.3, 6.4.6):
 * both sides send new headers. */
static int stream_restart(struct conn *c)
{
	c->hdr_out = false;
	return xstream_restart(c->xs);
}

static void tls_done(struct conn *c)
{
	c->tls = true;
	tls_describe(c);
	if (!c->in)
		check_peer_cert(c, c->remote);
	log_debug(MOD, "%s %s: TLS established (%s)%s%s", c->in ? "incoming from" : "to",
	          c->in ? c->peer : c->remote, c->tls_desc,
	          c->in || c->cert_ok ? "" : "; ",
	          c->in || c->cert_ok ? "" : c->cert_why);
	if (stream_restart(c) != 0) {
		conn_fail(c, "out of memory");
		return;
	}
	c->st = CS_HEADER;
	if (!c->in)
		stream_open(c);
}

static void tls_step(struct conn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		tls_done(c);
		/* Bytes that came with the handshake's last flight wait inside
		 * OpenSSL; the socket will not signal them again. */
		if (!c->dead)
			conn_read(c);
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		conn_sync(c);
		return;
	}
	struct siptls_fail f = {
	    .inbound = c->in,
	    .verr = 0,
	    .alert_rcvd = -1,
	    .alert_sent = -1,
	    .ssl_err = ERR_peek_last_error(),
	    .ssl_get_error = e,
	};
	char cause[400], key[64];
	siptls_fail_text(&f, cause, sizeof(cause), key, sizeof(key));
	conn_fail(c, "TLS handshake failed: %s", cause);
}

static int tls_start(struct conn *c)
{
	if (c->fd < 0) {
		conn_fail(c, "TLS on a connection without a socket (test seam)");
		return 0;
	}
	c->ssl = SSL_new(c->s->tls);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
		return -ENOMEM;
	if (c->in) {
		SSL_set_accept_state(c->ssl);
	} else {
		SSL_set_connect_state(c->ssl);
		/* SNI: the peer domain (RFC 7590 section 3.2... the domain we want). */
		SSL_set_tlsext_host_name(c->ssl, c->remote);
	}
	c->st = CS_TLS;
	tls_step(c);
	return 0;
}

/* ---- socket I/O ------------------------------------------------------------------ */

static void on_fd(int fd, unsigned events, void *arg);

static void conn_sync(struct conn *c)
{
	if (c->dead || c->fd < 0)
		return;
	unsigned want = LOOP_READ;
	if (c->st == CS_CONNECTING || c->out.len > c->out_off)
		want |= LOOP_WRITE;
	if (c->st == CS_TLS && c->ssl && SSL_want_write(c->ssl))
		want |= LOOP_WRITE;
	if (want == c->events)
		return;
	if (!c->events) {
		if (loop_fd_add(c->s->loop, c->fd, want, on_fd, c) != 0) {
			conn_fail(c, "cannot watch the socket");
			return;
		}
	} else {
		loop_fd_mod(c->s->loop, c->fd, want);
	}
	c->events = want;
}

static void conn_flush(struct conn *c)
{
	if (c->tap && c->out.len > c->out_off) {
		c->tap(c->local ? c->local : "", c->out.p + c->out_off,
		       c->out.len - c->out_off, c->tap_arg);
		c->out.len = c->out_off = 0;
		return;
	}
	if (c->fd < 0 || c->st == CS_CONNECTING || c->st == CS_TLS)
		return;
	while (c->out.len > c->out_off) {
		size_t n = c->out.len - c->out_off;
		ssize_t w;
		if (c->ssl && c->tls) {
			ERR_clear_error();
			int r = SSL_write(c->ssl, c->out.p + c->out_off,
			                  (int)(n > 65536 ? 65536 : n));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
					break;
				conn_gone(c, "TLS write failed");
				return;
			}
			w = r;
		} else {
			w = send(c->fd, c->out.p + c->out_off, n, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				char cause[128];
				snprintf(cause, sizeof(cause), "write failed: %s",
				         strerror(errno));
				conn_gone(c, cause);
				return;
			}
		}
		c->out_off += (size_t)w;
	}
	if (c->out_off == c->out.len) {
		c->out.len = 0;
		c->out_off = 0;
	}
	conn_sync(c);
}

static void conn_read(struct conn *c)
{
	char buf[RD_CHUNK];
	for (int turn = 0; turn < RD_TURNS && !c->dead; turn++) {
		ssize_t n;
		if (c->ssl && c->tls) {
			ERR_clear_error();
			int r = SSL_read(c->ssl, buf, sizeof(buf));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					return;
				conn_gone(c,
				          e == SSL_ERROR_ZERO_RETURN
				              ? "the peer closed the TLS session"
				              : "the connection broke (TLS read failed)");
				return;
			}
			n = r;
		} else {
			n = recv(c->fd, buf, sizeof(buf), 0);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return;
				char cause[128];
				snprintf(cause, sizeof(cause), "read failed: %s",
				         strerror(errno));
				conn_gone(c, cause);
				return;
			}
			if (n == 0) {
				conn_gone(c, c->st == CS_UP || c->st == CS_CLOSING
				                 ? NULL
				                 : "the peer closed the connection");
				return;
			}
		}
		size_t used = 0;
		bool was_tls = c->tls;
		int e = xstream_feed(c->xs, buf, (size_t)n, &used);
		if (c->dead)
			return;
		if (e) {
			const char *cond = xstream_error_cond(c->xs);
			char text[300];
			if (!cond)
				cond = "internal-server-error";
			snprintf(text, sizeof(text), "%s", xstream_error_text(c->xs));
			conn_stream_error(c, cond, text);
			conn_fail(c, "the peer sent XML we refuse (%s: %s)", cond, text);
			return;
		}
		if (c->tls_due) {
			/* Bytes after <proceed/> or <starttls/> in the same read would
			 * be a TLS handshake the peer may not send yet: dropped. */
			c->tls_due = false;
			if (tls_start(c) != 0)
				conn_fail(c, "out of memory starting TLS");
			return;
		}
		/* A TLS handshake started inside the parser owns the socket now. */
		if (c->st == CS_TLS || (c->tls && !was_tls))
			return;
	}
}

static void on_connected(struct conn *c);

static void on_fd(int fd, unsigned events, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	if (c->dead)
		return;
	if (c->st == CS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err) {
			conn_fail(c, "TCP connection to %s failed: %s", c->peer,
			          strerror(err));
			return;
		}
		if (!(events & (LOOP_WRITE | LOOP_ERROR)))
			return;
		on_connected(c);
		return;
	}
	if (c->st == CS_TLS) {
		tls_step(c);
		return;
	}
	if (events & LOOP_WRITE)
		conn_flush(c);
	if (!c->dead && (events & (LOOP_READ | LOOP_ERROR)))
		conn_read(c);
	/* OpenSSL may hold decrypted bytes the socket no longer signals. */
	while (!c->dead && c->ssl && c->tls && SSL_pending(c->ssl) > 0 && c->st != CS_TLS)
		conn_read(c);
}

/* ---- stream headers and features ----------------------------------------------------
 */

static void put_header(struct conn *c, const char *from, const char *to, const char *id)
{
	struct sbuf sb;
	sbuf_init(&sb);
	sbuf_puts(&sb, "<?xml version='1.0'?><stream:stream xmlns='" NS_SERVER
	               "' xmlns:stream='" NS_STREAMS "' xmlns:db='" NS_DB "'");
	if (from) {
		sbuf_puts(&sb, " from='");
		sbuf_put_xml(&sb, from);
		sbuf_putc(&sb, '\'');
	}
	if (to) {
		sbuf_puts(&sb, " to='");
		sbuf_put_xml(&sb, to);
		sbuf_putc(&sb, '\'');
	}
	if (id)
		sbuf_printf(&sb, " id='%s'", id);
	sbuf_puts(&sb, " version='1.0'>");
	if (!sb.err)
		conn_put(c, sb.p, sb.len);
	sbuf_free(&sb);
	c->hdr_out = true;
}

/* Outgoing: our initial stream header (RFC 6120 section 4.7). */
static void stream_open(struct conn *c)
{
	c->st = CS_HEADER;
	put_header(c, c->local, c->remote, NULL);
}

/* Incoming: what the peer may do next on this stream. */
static void put_features(struct conn *c)
{
	struct xs2s *s = c->s;
	enum conf_s2s_tls tls = tls_for(s, c->remote);
	unsigned auth = auth_for(s, c->remote);
	struct sbuf sb;
	sbuf_init(&sb);
	sbuf_puts(&sb, "<stream:features>");
	if (!c->tls && tls != CONF_S2S_TLS_OFF && s->tls) {
		sbuf_puts(&sb, "<starttls xmlns='" NS_TLS "'>");
		if (tls == CONF_S2S_TLS_REQUIRED)
			sbuf_puts(&sb, "<required/>");
		sbuf_puts(&sb, "</starttls>");
	}
	bool may_auth = c->tls || tls != CONF_S2S_TLS_REQUIRED;
	if (may_auth && !c->sasl_done) {
		/* XEP-0178 section 3 step 4: EXTERNAL only when the certificate
		 * is valid for the stream's from. */
		if (c->tls && c->cert_ok && (auth & CONF_S2S_AUTH_EXTERNAL))
			sbuf_puts(&sb, "<mechanisms xmlns='" NS_SASL
			               "'><mechanism>EXTERNAL</mechanism></mechanisms>");
		else if (c->tls && (auth & CONF_S2S_AUTH_EXTERNAL) &&
		         !c->ext_withheld_logged) {
			/* The peer sees only that EXTERNAL is missing: say why here. */
			c->ext_withheld_logged = true;
			log_info(
			    MOD, "%s: not offering SASL EXTERNAL to %s (%s): %s%s",
			    c->local, c->remote ? c->remote : "a peer without a from",
			    c->peer,
			    c->remote ? c->cert_why : "its stream header has no from",
			    (auth & CONF_S2S_AUTH_DIALBACK) ? "; it may use dialback"
			                                    : "; dialback is not allowed "
			                                      "either, so it cannot "
			                                      "authenticate");
		}
		if (auth & CONF_S2S_AUTH_DIALBACK)
			sbuf_puts(&sb,
			          "<dialback xmlns='" NS_DBFEAT "'><errors/></dialback>");
	}
	sbuf_puts(&sb, "</stream:features>");
	if (!sb.err)
		conn_put(c, sb.p, sb.len);
	sbuf_free(&sb);
}

static void on_header_in(struct conn *c, const struct xstream_header *h)
{
	struct xs2s *s = c->s;
	char *to = h->to ? lower_dup(h->to, strlen(h->to)) : NULL;

	if (xs2s_stream_id(c->id) != 0) {
		free(to);
		conn_fail(c, "cannot make a stream id (no randomness)");
		return;
	}
	/* RFC 6120 section 4.8: the stream namespace and the content namespace. */
	if (!h->stream_ns_ok || !h->content_ns || strcmp(h->content_ns, NS_SERVER) != 0) {
		put_header(c, to, NULL, c->id);
		conn_stream_error(c, "invalid-namespace",
		                  "this is a server-to-server port (jabber:server)");
		conn_fail(c, "its stream is not a jabber:server stream (namespace '%s')",
		          h->content_ns ? h->content_ns : "");
		free(to);
		return;
	}
	if (!to || !in_list(s->p.hosted, s->p.nhosted, to)) {
		put_header(c, NULL, NULL, c->id);
		conn_stream_error(c, "host-unknown",
		                  "this server does not serve that domain");
		conn_fail(c, "it asked for domain '%s', which the bridge does not host",
		          to ? to : "(none)");
		free(to);
		return;
	}
	free(c->local);
	c->local = to;
	if (h->from && !c->remote) {
		c->remote = lower_dup(h->from, strlen(h->from));
		if (!c->remote) {
			conn_fail(c, "out of memory");
			return;
		}
	}
	c->peer_db = h->has_dialback;
	if (c->tls && c->ssl && c->remote && !c->sasl_done)
		check_peer_cert(c, c->remote);
	put_header(c, c->local, c->remote, c->id);
	put_features(c);
	c->st = CS_UP;
}

static void on_open(const struct xstream_header *h, void *arg)
{
	struct conn *c = arg;
	if (c->in) {
		on_header_in(c, h);
		return;
	}
	if (c->st != CS_HEADER) {
		conn_fail(c, "the peer sent a stream header out of turn");
		return;
	}
	if (!h->stream_ns_ok || !h->content_ns || strcmp(h->content_ns, NS_SERVER) != 0) {
		conn_fail(c, "the peer's stream is not a jabber:server stream");
		return;
	}
	if (!h->id || !*h->id || strlen(h->id) > XPROTO_STREAM_ID_MAX) {
		conn_fail(c, "the peer's stream header has no usable id");
		return;
	}
	snprintf(c->id, sizeof(c->id), "%s", h->id);
	c->peer_db = h->has_dialback;
	c->st = CS_FEATURES;
}

/* ---- outgoing: features, STARTTLS, SASL, dialback -------------------------------------
 */

static xmpp_stanza_t *child_ns(xmpp_stanza_t *st, const char *name, const char *ns)
{
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(st); c;
	     c = xmpp_stanza_get_next(c)) {
		const char *n = xmpp_stanza_get_name(c), *cns = xmpp_stanza_get_ns(c);
		if (xmpp_stanza_is_tag(c) && n && strcmp(n, name) == 0 &&
		    (!ns || (cns && strcmp(cns, ns) == 0)))
			return c;
	}
	return NULL;
}

static bool offers_external(xmpp_stanza_t *features)
{
	xmpp_stanza_t *m = child_ns(features, "mechanisms", NS_SASL);
	if (!m)
		return false;
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(m); c;
	     c = xmpp_stanza_get_next(c)) {
		const char *t = xmpp_stanza_is_tag(c) ? xroute_text(c) : NULL;
		if (t && strcmp(t, "EXTERNAL") == 0)
			return true;
	}
	return false;
}

/*
 * One dialback element (XEP-0220 section 2; the db prefix is declared on every
 * stream header we write): <db:NAME from to [id] [type]>, with the key as
 * content, or a stanza error (cond, etype) inside one of type error, or empty.
 */
static void put_db(struct conn *c, const char *name, const char *from, const char *to,
                   const char *id, const char *type, const char *key, const char *cond,
                   const char *etype)
{
	struct sbuf sb;
	sbuf_init(&sb);
	sbuf_printf(&sb, "<db:%s from='", name);
	sbuf_put_xml(&sb, from);
	sbuf_puts(&sb, "' to='");
	sbuf_put_xml(&sb, to);
	sbuf_putc(&sb, '\'');
	if (id) {
		sbuf_puts(&sb, " id='");
		sbuf_put_xml(&sb, id);
		sbuf_putc(&sb, '\'');
	}
	if (type)
		sbuf_printf(&sb, " type='%s'", type);
	if (key) {
		sbuf_putc(&sb, '>');
		sbuf_put_xml(&sb, key);
		sbuf_printf(&sb, "</db:%s>", name);
	} else if (cond) {
		sbuf_printf(
		    &sb, "><error type='%s'><%s xmlns='" NS_STANZAS "'/></error></db:%s>",
		    etype, cond, name);
	} else {
		sbuf_puts(&sb, "/>");
	}
	if (!sb.err)
		conn_put(c, sb.p, sb.len);
	if (sb.p)
		OPENSSL_cleanse(sb.p, sb.cap);
	sbuf_free(&sb);
}

static void send_db_result(struct conn *c)
{
	char key[XS2S_KEY_LEN + 1];
	if (xs2s_dialback_key(c->s->p.secret, c->remote, c->local, c->id, key) != 0) {
		conn_fail(c, "cannot compute a dialback key");
		return;
	}
	put_db(c, "result", c->local, c->remote, NULL, NULL, key, NULL, NULL);
	OPENSSL_cleanse(key, sizeof(key));
	c->st = CS_DIALBACK;
}

static void send_auth_external(struct conn *c)
{
	char *b64 = NULL;
	size_t n = 0;
	/* XEP-0178 section 3, step 6: an authorization identity "SHOULD" still be
	 * sent for backward compatibility: our domain. */
	if (base64_encode((const unsigned char *)c->local, strlen(c->local), &b64, &n) !=
	    0) {
		conn_fail(c, "out of memory");
		return;
	}
	struct sbuf sb;
	sbuf_init(&sb);
	sbuf_printf(&sb, "<auth xmlns='" NS_SASL "' mechanism='EXTERNAL'>%s</auth>", b64);
	if (!sb.err)
		conn_put(c, sb.p, sb.len);
	sbuf_free(&sb);
	free(b64);
	c->ext_tried = true;
	c->st = CS_SASL;
}

/* Authenticate on an outgoing stream whose TLS (if any) is done. */
static void out_authenticate(struct conn *c, bool ext_offered, bool db_offered)
{
	unsigned auth = auth_for(c->s, c->remote);
	if (ext_offered && (auth & CONF_S2S_AUTH_EXTERNAL) && c->tls && !c->ext_tried) {
		send_auth_external(c);
		return;
	}
	if ((auth & CONF_S2S_AUTH_DIALBACK) && (db_offered || c->peer_db)) {
		if (c->route)
			route_verifies(c->route);
		send_db_result(c);
		return;
	}
	if (!(auth & CONF_S2S_AUTH_DIALBACK))
		conn_fail(
		    c,
		    "no authentication both sides accept: the peer %s SASL EXTERNAL%s, "
		    "and dialback is not allowed for %s ([s2s] auth / [s2s-peer] auth)",
		    ext_offered ? "offered" : "did not offer",
		    ext_offered && c->ext_tried ? " but refused our certificate" : "",
		    c->remote);
	else
		conn_fail(
		    c,
		    "no authentication both sides accept: the peer offers neither SASL "
		    "EXTERNAL%s nor dialback",
		    c->ext_tried ? " (it refused our certificate)" : "");
}

static void out_features(struct conn *c, xmpp_stanza_t *f)
{
	enum conf_s2s_tls tls = tls_for(c->s, c->remote);
	xmpp_stanza_t *starttls = child_ns(f, "starttls", NS_TLS);

	/* RFC 6120 section 13.7.2.1 / RFC 7590 section 3.4: the server we reached
	 * must prove it is the domain by its certificate. Where dialback is
	 * allowed for the domain, DNS is trusted for that instead (XEP-0220
	 * section 1, as ejabberd and Prosody do); otherwise the stream stops. */
	if (c->tls && !c->cert_ok && !c->sasl_done) {
		if (!(auth_for(c->s, c->remote) & CONF_S2S_AUTH_DIALBACK)) {
			conn_fail(c, "the server at %s is not proven to be %s: %s",
			          c->peer, c->remote, c->cert_why);
			return;
		}
		if (!c->route || !c->route->cert_logged)
			log_info(MOD,
			         "%s -> %s: %s; trusting DNS for it, as dialback is "
			         "allowed for "
			         "that domain",
			         c->local, c->remote, c->cert_why);
		if (c->route)
			c->route->cert_logged = true;
	}

	if (c->sasl_done) {
		route_up(c->route);
		return;
	}
	if (!c->tls) {
		if (starttls && tls != CONF_S2S_TLS_OFF) {
			conn_puts(c, "<starttls xmlns='" NS_TLS "'/>");
			c->st = CS_STARTTLS;
			return;
		}
		if (tls == CONF_S2S_TLS_REQUIRED) {
			conn_fail(
			    c,
			    "the peer does not offer STARTTLS, and TLS is required "
			    "(RFC 7590); set tls = optional in [s2s-peer %s] only if the "
			    "peer cannot do TLS",
			    c->remote);
			return;
		}
		if (starttls && child_ns(starttls, "required", NULL) &&
		    tls == CONF_S2S_TLS_OFF) {
			conn_fail(c, "the peer requires TLS, and [s2s-peer %s] tls = off",
			          c->remote);
			return;
		}
	}
	out_authenticate(c, offers_external(f),
	                 child_ns(f, "dialback", NS_DBFEAT) != NULL);
}

static void out_element(struct conn *c, xmpp_stanza_t *st, const char *name,
                        const char *ns)
{
	if (strcmp(ns, NS_STREAMS) == 0 && strcmp(name, "features") == 0 &&
	    c->st == CS_FEATURES) {
		out_features(c, st);
		return;
	}
	if (strcmp(ns, NS_TLS) == 0 && c->st == CS_STARTTLS) {
		if (strcmp(name, "proceed") != 0) {
			conn_fail(c, "the peer refused STARTTLS (<%s/>)", name);
			return;
		}
		/* The handshake runs after xstream_feed returns (conn_read): it may
		 * complete at once and read the new stream from inside the parser. */
		stream_restart(c);
		c->tls_due = true;
		return;
	}
	if (strcmp(ns, NS_SASL) == 0 && c->st == CS_SASL) {
		if (strcmp(name, "success") == 0) {
			c->sasl_done = true;
			c->auth = "SASL EXTERNAL";
			stream_restart(c);
			stream_open(c);
			return;
		}
		xmpp_stanza_t *why = xmpp_stanza_get_children(st);
		while (why && !xmpp_stanza_is_tag(why))
			why = xmpp_stanza_get_next(why);
		log_info(MOD, "%s -> %s: the peer refused SASL EXTERNAL (<%s/>)%s",
		         c->local, c->remote, why ? xmpp_stanza_get_name(why) : "failure",
		         (auth_for(c->s, c->remote) & CONF_S2S_AUTH_DIALBACK)
		             ? "; trying dialback on the same stream"
		             : "");
		out_authenticate(c, true, c->peer_db_err || c->peer_db);
		return;
	}
	if (strcmp(ns, NS_DB) == 0 && strcmp(name, "result") == 0 &&
	    c->st == CS_DIALBACK) {
		const char *type = xmpp_stanza_get_type(st);
		if (type && strcmp(type, "valid") == 0) {
			c->auth = "dialback";
			route_up(c->route);
			return;
		}
		const char *cond = NULL;
		xmpp_stanza_t *err = child_ns(st, "error", NULL);
		for (xmpp_stanza_t *e = err ? xmpp_stanza_get_children(err) : NULL; e;
		     e = xmpp_stanza_get_next(e))
			if (xmpp_stanza_is_tag(e)) {
				cond = xmpp_stanza_get_name(e);
				break;
			}
		conn_fail(c, "the peer refused our dialback key (type '%s'%s%s)%s%s",
		          type ? type : "", cond ? ": " : "",
		          cond ? xs2s_dialback_error_words(cond) : "",
		          cond ? ""
		               : "; it could not verify it with this bridge: check that "
		                 "its DNS names the bridge for ",
		          cond ? "" : c->local);
		return;
	}
	if (strcmp(ns, NS_DB) == 0 && strcmp(name, "verify") == 0) {
		/* The authoritative answer to a db:verify we asked (route_verifies). */
		const char *id = xmpp_stanza_get_id(st), *type = xmpp_stanza_get_type(st);
		struct conn *ic = NULL;
		for (struct conn *k = c->s->conns; k; k = k->next)
			if (k->in && !k->dead && id && strcmp(k->id, id) == 0)
				ic = k;
		if (!ic)
			return;
		bool valid = type && strcmp(type, "valid") == 0;
		put_db(ic, "result", c->local, c->remote, NULL,
		       valid ? "valid" : "invalid", NULL, NULL, NULL);
		if (!valid) {
			conn_fail(ic,
			          "its dialback key for %s was not confirmed by %s's "
			          "authoritative server",
			          c->local, c->remote);
			return;
		}
		if (pair_add(ic, c->remote, c->local) != 0)
			return;
		log_info(MOD,
		         "%s: incoming stream from %s authenticated by dialback (%s)",
		         c->local, c->remote, ic->tls ? ic->tls_desc : "no TLS");
		loop_timer_cancel(c->s->loop, &ic->deadline);
		return;
	}
	if (c->st == CS_UP && strcmp(ns, NS_SERVER) == 0) {
		/* Stanzas travel the other way; a peer that answers on our stream is
		 * tolerated only for its replies to us (RFC 6120 section 4.5: one
		 * direction per stream, unless XEP-0288). */
		log_debug(MOD, "%s -> %s: <%s> arrived on our outgoing stream; ignored",
		          c->local, c->remote, name);
		return;
	}
	conn_fail(c, "unexpected <%s xmlns='%s'> while %s", name, ns,
	          cstate_words[c->st]);
}

/* ---- incoming: STARTTLS, SASL, dialback, stanzas -------------------------------------
 */

static bool pair_ok(const struct conn *c, const char *from, const char *to);

/* Record that the stream authenticated (from, to); once each. */
static int pair_add(struct conn *c, const char *from, const char *to)
{
	if (pair_ok(c, from, to))
		return 0;
	struct pair *np = realloc(c->pairs, (c->npairs + 1) * sizeof(*np));
	if (!np)
		return -ENOMEM;
	c->pairs = np;
	np[c->npairs].from = strdup(from);
	np[c->npairs].to = strdup(to);
	if (!np[c->npairs].from || !np[c->npairs].to) {
		free(np[c->npairs].from);
		free(np[c->npairs].to);
		return -ENOMEM;
	}
	c->npairs++;
	return 0;
}

static bool pair_ok(const struct conn *c, const char *from, const char *to)
{
	for (size_t i = 0; i < c->npairs; i++)
		if (strcasecmp(c->pairs[i].from, from) == 0 &&
		    strcasecmp(c->pairs[i].to, to) == 0)
			return true;
	return false;
}

static bool from_ok(const struct conn *c, const char *from)
{
	for (size_t i = 0; i < c->npairs; i++)
		if (strcasecmp(c->pairs[i].from, from) == 0)
			return true;
	return false;
}

static struct route *route_get(struct xs2s *s, const char *local, const char *remote,
                               bool create);
static void route_start(struct route *r);

static void db_result_error(struct conn *c, const char *from, const char *to,
                            const char *cond, const char *type)
{
	put_db(c, "result", to, from, NULL, "error", NULL, cond, type);
}

static void in_db_result(struct conn *c, xmpp_stanza_t *st)
{
	struct xs2s *s = c->s;
	char *from = jid_domain(xmpp_stanza_get_from(st));
	char *to = jid_domain(xmpp_stanza_get_to(st));
	const char *key = xroute_text(st);

	if (!from || !to || !key) {
		conn_stream_error(c, "bad-format", "db:result needs from, to and a key");
		conn_fail(c, "a db:result without from, to or key");
		goto out;
	}
	if (!in_list(s->p.hosted, s->p.nhosted, to)) {
		/* XEP-0220 section 2.5: item-not-found for a domain we do not serve. */
		db_result_error(c, from, to, "item-not-found", "cancel");
		goto out;
	}
	if (!in_list(s->p.allow, s->p.nallow, from)) {
		log_warn(
		    MOD,
		    "%s: refused dialback from %s (%s): the domain is not on the allow "
		    "list (the xmpp rows of domains.map)",
		    to, from, c->peer);
		db_result_error(c, from, to, "forbidden", "auth");
		goto out;
	}
	if (!(auth_for(s, from) & CONF_S2S_AUTH_DIALBACK) ||
	    (!c->tls && tls_for(s, from) == CONF_S2S_TLS_REQUIRED)) {
		log_warn(MOD, "%s: refused dialback from %s: %s", to, from,
		         !c->tls
		             ? "TLS is required first (RFC 7590)"
		             : "dialback is not allowed for that domain ([s2s] auth / "
		               "[s2s-peer] auth)");
		db_result_error(c, from, to, "not-acceptable", "cancel");
		goto out;
	}
	struct route *r = route_get(s, to, from, true);
	if (!r) {
		db_result_error(c, from, to, "internal-server-error", "cancel");
		goto out;
	}
	if (r->nv >= VERIFY_MAX) {
		db_result_error(c, from, to, "resource-constraint", "wait");
		goto out;
	}
	struct verify *nv = realloc(r->v, (r->nv + 1) * sizeof(*nv));
	if (!nv)
		goto out;
	r->v = nv;
	nv[r->nv].conn = c->serial;
	nv[r->nv].id = strdup(c->id);
	nv[r->nv].key = strdup(key);
	if (!nv[r->nv].id || !nv[r->nv].key) {
		free(nv[r->nv].id);
		free(nv[r->nv].key);
		goto out;
	}
	r->nv++;
	free(c->remote);
	c->remote = strdup(from);
	log_debug(MOD, "%s: dialback key from %s (%s): asking its authoritative server",
	          to, from, c->peer);
	route_verifies(r);
out:
	free(from);
	free(to);
}

/* Authoritative server (XEP-0220 section 2.2): our own key, from the secret. */
static void in_db_verify(struct conn *c, xmpp_stanza_t *st)
{
	const char *id = xmpp_stanza_get_id(st);
	char *from = jid_domain(xmpp_stanza_get_from(st));
	char *to = jid_domain(xmpp_stanza_get_to(st));
	const char *key = xroute_text(st);
	char mine[XS2S_KEY_LEN + 1];
	bool valid = false;

	if (!from || !to || !id) {
		conn_stream_error(c, "bad-format", "db:verify needs from, to and id");
		conn_fail(c, "a db:verify without from, to or id");
		goto out;
	}
	/* to: the domain that claims to be us (the originating server), from: the
	 * receiving server asking. */
	if (in_list(c->s->p.hosted, c->s->p.nhosted, to) && key &&
	    xs2s_dialback_key(c->s->p.secret, from, to, id, mine) == 0)
		valid = xs2s_key_equal(mine, key);
	OPENSSL_cleanse(mine, sizeof(mine));
	put_db(c, "verify", to, from, id, valid ? "valid" : "invalid", NULL, NULL, NULL);
	log_debug(MOD, "%s: dialback verify from %s for stream %s: %s", to, from, id,
	          valid ? "valid" : "invalid");
out:
	free(from);
	free(to);
}

static void in_auth(struct conn *c, xmpp_stanza_t *st)
{
	const char *mech = xmpp_stanza_get_attribute(st, "mechanism");
	const char *data = xroute_text(st);
	const char *fail = NULL;
	unsigned char *authz = NULL;
	size_t alen = 0;

	if (!mech || strcmp(mech, "EXTERNAL") != 0)
		fail = "invalid-mechanism";
	else if (!c->tls || !c->cert_ok || !c->remote ||
	         !(auth_for(c->s, c->remote) & CONF_S2S_AUTH_EXTERNAL) ||
	         !in_list(c->s->p.allow, c->s->p.nallow, c->remote))
		fail = "not-authorized";
	else if (data && strcmp(data, "=") != 0) {
		/* XEP-0178 section 3 step 7: an authzid, when given, must be the
		 * stream's from. */
		if (base64_decode(data, strlen(data), &authz, &alen) != 0 ||
		    alen != strlen(c->remote) ||
		    strncasecmp((const char *)authz, c->remote, alen) != 0)
			fail = "invalid-authzid";
	}
	free(authz);
	if (fail) {
		conn_puts(c, "<failure xmlns='" NS_SASL "'><");
		conn_puts(c, fail);
		conn_puts(c, "/></failure>");
		log_info(MOD, "%s: refused SASL EXTERNAL from %s (%s): %s", c->local,
		         c->remote ? c->remote : c->peer, fail,
		         !c->remote    ? "its stream header has no from"
		         : !c->cert_ok ? c->cert_why
		         : !in_list(c->s->p.allow, c->s->p.nallow, c->remote)
		             ? "the domain is not on the allow list (the xmpp rows of "
		               "domains.map)"
		             : "EXTERNAL is not allowed for that domain, or the authzid "
		               "differs");
		return;
	}
	if (pair_add(c, c->remote, c->local) != 0) {
		conn_fail(c, "out of memory");
		return;
	}
	c->sasl_done = true;
	conn_puts(c, "<success xmlns='" NS_SASL "'/>");
	log_info(MOD, "%s: incoming stream from %s authenticated by SASL EXTERNAL (%s)",
	         c->local, c->remote, c->tls_desc);
	loop_timer_cancel(c->s->loop, &c->deadline);
	/* RFC 6120 section 6.4.6: the initiator restarts the stream. */
	stream_restart(c);
	c->st = CS_HEADER;
}

static int reply_on_route(xmpp_stanza_t *st, void *arg)
{
	return xs2s_send(arg, st);
}

static void in_stanza(struct conn *c, xmpp_stanza_t *st, size_t size)
{
	struct xs2s *s = c->s;
	char *from = jid_domain(xmpp_stanza_get_from(st));
	char *to = jid_domain(xmpp_stanza_get_to(st));

	/* RFC 6120 section 8.1.1.1 / 8.1.2.1: both addresses are required on a
	 * server-to-server stream; section 4.9.3.9/4.9.3.6 the errors. */
	if (!c->npairs) {
		conn_stream_error(c, "not-authorized", "authenticate first");
		conn_fail(c, "it sent a stanza before authenticating");
	} else if (!from || !from_ok(c, from)) {
		conn_stream_error(
		    c, "invalid-from",
		    "the from address is not a domain this stream authenticated");
		conn_fail(c,
		          "it sent a stanza from '%s', which its stream did not "
		          "authenticate (spoofed from?)",
		          xmpp_stanza_get_from(st) ? xmpp_stanza_get_from(st) : "(none)");
	} else if (!to || !in_list(s->p.hosted, s->p.nhosted, to)) {
		conn_stream_error(c, "host-unknown",
		                  "this server does not serve that domain");
		conn_fail(c,
		          "it sent a stanza to '%s', a domain the bridge does not host",
		          xmpp_stanza_get_to(st) ? xmpp_stanza_get_to(st) : "(none)");
	} else if (!pair_ok(c, from, to)) {
		conn_stream_error(c, "not-authorized",
		                  "the stream did not authenticate that pair of domains");
		conn_fail(c,
		          "it sent a stanza from %s to %s, a pair its stream did not "
		          "authenticate",
		          from, to);
	} else {
		c->last_stanza = loop_now(s->loop);
		/* The stanza's namespace is the stream's: the bridge reads stanzas
		 * as a component link hands them over. */
		xmpp_stanza_del_attribute(st, "xmlns");
		xroute_dispatch(s->ctx, st, size, to, (const char *const *)s->p.hosted,
		                s->p.nhosted, &s->h, reply_on_route, s);
	}
	free(from);
	free(to);
}

static void in_element(struct conn *c, xmpp_stanza_t *st, const char *name,
                       const char *ns, size_t size)
{
	if (strcmp(ns, NS_TLS) == 0 && strcmp(name, "starttls") == 0 && !c->tls) {
		conn_puts(c, "<proceed xmlns='" NS_TLS "'/>");
		stream_restart(c);
		conn_flush(c);
		c->tls_due = true; /* started by conn_read, outside the parser */
		return;
	}
	if (!c->tls && tls_for(c->s, c->remote) == CONF_S2S_TLS_REQUIRED &&
	    !(strcmp(ns, NS_STREAMS) == 0)) {
		conn_stream_error(c, "policy-violation", "STARTTLS is required first");
		conn_fail(c, "it sent <%s> before STARTTLS, which is required (RFC 7590)",
		          name);
		return;
	}
	if (strcmp(ns, NS_SASL) == 0 && strcmp(name, "auth") == 0 && !c->sasl_done) {
		in_auth(c, st);
		return;
	}
	if (strcmp(ns, NS_DB) == 0 && strcmp(name, "result") == 0) {
		in_db_result(c, st);
		return;
	}
	if (strcmp(ns, NS_DB) == 0 && strcmp(name, "verify") == 0) {
		in_db_verify(c, st);
		return;
	}
	if (strcmp(ns, NS_SERVER) == 0 &&
	    (strcmp(name, "message") == 0 || strcmp(name, "presence") == 0 ||
	     strcmp(name, "iq") == 0)) {
		in_stanza(c, st, size);
		return;
	}
	conn_stream_error(c, "unsupported-stanza-type", NULL);
	conn_fail(
	    c, "it sent <%s xmlns='%s'>, which a server-to-server stream does not carry",
	    name, ns);
}

static void on_element(xmpp_stanza_t *st, size_t size, void *arg)
{
	struct conn *c = arg;
	const char *name = xmpp_stanza_get_name(st), *ns = xmpp_stanza_get_ns(st);
	if (c->dead || !name)
		return;
	if (!ns)
		ns = "";
	if (log_enabled(LOG_LVL_TRACE)) {
		char *text = NULL;
		size_t len = 0;
		if (xlink_stanza_text(st, &text, &len) == 0) {
			trace(c, "recv", text, len);
			free(text);
		}
	}
	if (strcmp(ns, NS_STREAMS) == 0 && strcmp(name, "error") == 0) {
		const char *cond = NULL, *text = NULL;
		for (xmpp_stanza_t *k = xmpp_stanza_get_children(st); k;
		     k = xmpp_stanza_get_next(k)) {
			const char *kn = xmpp_stanza_get_name(k);
			if (!xmpp_stanza_is_tag(k) || !kn)
				continue;
			if (strcmp(kn, "text") == 0)
				text = xroute_text(k);
			else if (!cond)
				cond = kn;
		}
		const struct xs2s_streamerr *se = xs2s_stream_error(cond);
		stats_fail(STATS_FAIL_STREAM, se->cond);
		conn_fail(c, "the peer closed the stream with <%s/>: %s%s%s%s%s%s",
		          cond ? cond : "?", se->words, text ? " (\"" : "",
		          text ? text : "", text ? "\")" : "",
		          se->fix && *se->fix ? " -- " : "", se->fix ? se->fix : "");
		return;
	}
	if (c->in)
		in_element(c, st, name, ns, size);
	else
		out_element(c, st, name, ns);
}

static void on_close(void *arg)
{
	struct conn *c = arg;
	if (c->dead)
		return;
	bool was_up = c->st == CS_UP;
	if (c->st != CS_CLOSING)
		conn_puts(c, "</stream:stream>");
	c->st = CS_CLOSING;
	/* A peer closing an established stream (idle, restart) is no failure:
	 * the next stanza opens a new one. */
	conn_gone(c, was_up || c->in ? NULL : "the peer closed the stream");
}

static const struct xstream_handlers stream_h = {on_open, on_element, on_close, NULL};

/* ---- connections --------------------------------------------------------------------
 */

static void conn_deadline(void *arg)
{
	struct conn *c = arg;
	if (c->st == CS_UP && (!c->in || c->npairs))
		return;
	if (c->st != CS_CONNECTING && c->st != CS_TLS)
		conn_stream_error(c, "connection-timeout", NULL);
	conn_fail(c, "no authenticated stream within %u s (%s)",
	          (unsigned)(c->s->p.connect_ms / 1000), cstate_words[c->st]);
}

static struct conn *conn_new(struct xs2s *s, int fd, bool in)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->s = s;
	c->fd = fd;
	c->in = in;
	c->serial = ++s->serial;
	sbuf_init(&c->out);
	struct xstream_handlers h = stream_h;
	h.arg = c;
	if (xstream_new(&c->xs, s->ctx, XLINK_MAX_STANZA, &h) != 0) {
		free(c);
		return NULL;
	}
	c->since = c->last_stanza = c->last_tx = loop_now(s->loop);
	c->next = s->conns;
	s->conns = c;
	loop_timer_start(s->loop, &c->deadline, s->p.connect_ms, conn_deadline, c);
	return c;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void on_accept(int fd, unsigned events, void *arg)
{
	struct listener *ls = arg;
	struct xs2s *s = ls->s;
	(void)events;
	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int cfd = accept(fd, (struct sockaddr *)&ss, &sl);
		if (cfd < 0)
			return;
		set_nonblock(cfd);
		size_t nconn = 0;
		for (struct conn *k = s->conns; k; k = k->next)
			nconn += !k->dead;
		if (s->stopping || nconn >= CONN_MAX) {
			if (!s->stopping)
				log_warn(MOD,
				         "%zu connections open: turning a new one away",
				         nconn);
			close(cfd);
			continue;
		}
		struct conn *c = conn_new(s, cfd, true);
		if (!c) {
			close(cfd);
			continue;
		}
		char host[INET6_ADDRSTRLEN] = "?";
		unsigned port = 0;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
			port = ntohs(a->sin6_port);
		}
		snprintf(c->peer, sizeof(c->peer), "%s:%u", host, port);
		c->st = CS_HEADER;
		if (ls->direct) {
			/* XEP-0368: TLS from the first byte, then the stream as after
			 * STARTTLS. */
			c->direct = true;
			if (tls_start(c) != 0)
				conn_fail(c, "out of memory starting TLS");
			continue;
		}
		conn_sync(c);
	}
}

static void on_connected(struct conn *c)
{
	if (c->direct) {
		if (tls_start(c) != 0)
			conn_fail(c, "out of memory starting TLS");
		return;
	}
	c->st = CS_HEADER;
	stream_open(c);
	conn_sync(c);
}

/* ---- routes ------------------------------------------------------------------------ */

static struct route *route_get(struct xs2s *s, const char *local, const char *remote,
                               bool create)
{
	for (struct route *r = s->routes; r; r = r->next)
		if (strcasecmp(r->local, local) == 0 &&
		    strcasecmp(r->remote, remote) == 0)
			return r;
	if (!create)
		return NULL;
	struct route *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->s = s;
	r->local = lower_dup(local, strlen(local));
	r->remote = lower_dup(remote, strlen(remote));
	if (!r->local || !r->remote) {
		free(r->local);
		free(r->remote);
		free(r);
		return NULL;
	}
	r->next = s->routes;
	s->routes = r;
	return r;
}

static void targets_free(struct route *r)
{
	for (size_t i = 0; i < r->ntargets; i++)
		free(r->targets[i].host);
	free(r->targets);
	r->targets = NULL;
	r->ntargets = r->next_target = 0;
}

/* The error a stanza that could not be delivered comes back as, from the peer
 * domain, to the bridge (RFC 6120 section 10.4.3; RFC 7247 section 7.1 maps it
 * on to SIP). */
static void bounce(struct route *r, xmpp_stanza_t *st, enum err_cond cond,
                   const char *text)
{
	struct xs2s *s = r->s;
	struct xroute_in in;
	xroute_read(st, 0, &in);
	if (!in.name || (in.type && (strcmp(in.type, "error") == 0 ||
	                             strcmp(in.type, "result") == 0)))
		return;
	if (strcmp(in.name, "message") != 0 && strcmp(in.name, "presence") != 0)
		return;
	xmpp_stanza_t *e =
	    xroute_error(s->ctx, &in, in.to ? in.to : r->remote, cond, text);
	if (!e)
		return;
	/* xroute_error answers in->from: the bridge's own user, as wanted. */
	struct xlink_refusal rf;
	if (s->h.stanza)
		s->h.stanza(r->local, e, &rf, s->h.arg);
	xmpp_stanza_release(e);
}

static void route_bounce_all(struct route *r, enum err_cond cond, const char *text)
{
	xmpp_stanza_t **q = r->q;
	size_t n = r->nq;
	r->q = NULL;
	r->nq = 0;
	for (size_t i = 0; i < n; i++) {
		bounce(r, q[i], cond, text);
		xmpp_stanza_release(q[i]);
	}
	free(q);
}

static void verifies_clear(struct route *r)
{
	for (size_t i = 0; i < r->nv; i++) {
		OPENSSL_cleanse(r->v[i].key, strlen(r->v[i].key));
		free(r->v[i].id);
		free(r->v[i].key);
	}
	free(r->v);
	r->v = NULL;
	r->nv = 0;
}

static void verifies_fail(struct route *r)
{
	for (size_t i = 0; i < r->nv; i++) {
		for (struct conn *c = r->s->conns; c; c = c->next)
			if (c->serial == r->v[i].conn && !c->dead) {
				db_result_error(c, r->remote, r->local,
				                "remote-connection-failed", "cancel");
				conn_fail(c,
				          "its dialback key could not be verified: %s's "
				          "authoritative server is unreachable (%s)",
				          r->remote, r->cause[0] ? r->cause : "?");
			}
	}
	verifies_clear(r);
}

/* Ask the peer's authoritative server about each dialback key we received, once
 * our outgoing stream to it is past TLS (XEP-0220 section 2.1.2: a db:verify may
 * travel on a stream that is not yet authenticated). */
static void route_verifies(struct route *r)
{
	struct conn *c = r->c;
	if (!r->nv)
		return;
	if (!c || c->dead || !(c->st == CS_UP || c->st == CS_DIALBACK)) {
		if (!c && !r->resolving && !loop_timer_running(&r->retry))
			route_start(r);
		return;
	}
	for (size_t i = 0; i < r->nv; i++) {
		put_db(c, "verify", r->local, r->remote, r->v[i].id, NULL, r->v[i].key,
		       NULL, NULL);
	}
	verifies_clear(r);
}

/* The route's name in the link registry (stats.h): "local -> remote". */
static void route_stats(const struct route *r, bool up, const char *cause)
{
	char name[520];
	snprintf(name, sizeof(name), "%s -> %s", r->local, r->remote);
	stats_link(STATS_LINK_S2S, name, up, cause);
}

static void route_up(struct route *r)
{
	struct conn *c = r->c;
	route_stats(r, true, NULL);
	c->st = CS_UP;
	loop_timer_cancel(r->s->loop, &c->deadline);
	if (r->attempts || r->last_cause[0])
		log_info(MOD,
		         "%s -> %s: stream up again (%s, %s) after %u failed attempt%s",
		         r->local, r->remote, c->tls ? c->tls_desc : "no TLS", c->auth,
		         r->attempts, r->attempts == 1 ? "" : "s");
	else
		log_info(MOD, "%s -> %s: stream up (%s, %s, %s)", r->local, r->remote,
		         c->peer, c->tls ? c->tls_desc : "no TLS", c->auth);
	r->attempts = 0;
	r->last_cause[0] = '\0';
	targets_free(r);
	route_verifies(r);
	xmpp_stanza_t **q = r->q;
	size_t n = r->nq;
	r->q = NULL;
	r->nq = 0;
	for (size_t i = 0; i < n; i++) {
		conn_put_stanza(c, q[i]);
		xmpp_stanza_release(q[i]);
	}
	free(q);
	c->last_stanza = loop_now(r->s->loop);
}

static void route_free(struct route *r)
{
	struct xs2s *s = r->s;
	xdns_cancel(r->dq);
	loop_timer_cancel(s->loop, &r->retry);
	targets_free(r);
	for (size_t i = 0; i < r->nq; i++)
		xmpp_stanza_release(r->q[i]);
	free(r->q);
	verifies_clear(r);
	char name[520];
	snprintf(name, sizeof(name), "%s -> %s", r->local, r->remote);
	stats_link_forget(STATS_LINK_S2S, name);
	free(r->local);
	free(r->remote);
	free(r);
}

/* The outgoing stream went away. An idle close is quiet; a failure is logged
 * (once per cause, as the component link does), waiting stanzas are bounced. */
static void route_down(struct route *r, const char *cause)
{
	struct xs2s *s = r->s;
	if (r->cause[0] == '\0' && cause)
		snprintf(r->cause, sizeof(r->cause), "%s", cause);
	if (!r->cause[0]) { /* closed cleanly (idle, stop, reload, the peer's close) */
		route_stats(r, false, NULL);
		if ((r->nq || r->nv) && !s->stopping)
			route_start(r);
		return;
	}
	/* Another address to try? */
	if (r->next_target < r->ntargets && !s->stopping) {
		log_debug(MOD, "%s -> %s: %s; trying the next address", r->local,
		          r->remote, r->cause);
		r->cause[0] = '\0';
		route_try_next(r);
		return;
	}
	r->attempts++;
	route_stats(r, false, r->cause);
	bool changed = strcmp(r->cause, r->last_cause) != 0;
	if (xproto_log_failure(r->attempts, changed))
		log_warn(MOD, "%s -> %s: cannot federate: %s", r->local, r->remote,
		         r->cause);
	else
		log_debug(MOD, "%s -> %s: cannot federate: %s", r->local, r->remote,
		          r->cause);
	snprintf(r->last_cause, sizeof(r->last_cause), "%s", r->cause);
	bool timeout = strstr(r->cause, "within") != NULL;
	char text[600];
	snprintf(text, sizeof(text), "presbridge cannot reach %s: %s", r->remote,
	         r->cause);
	r->cause[0] = '\0';
	targets_free(r);
	verifies_fail(r);
	route_bounce_all(r,
	                 timeout ? ERR_COND_REMOTE_SERVER_TIMEOUT
	                         : ERR_COND_REMOTE_SERVER_NOT_FOUND,
	                 text);
	r->not_before =
	    loop_now(s->loop) + xproto_backoff_ms(r->attempts, xproto_jitter(&s->rnd));
}

static int connect_to(struct route *r, const struct xdns_target *t)
{
	struct xs2s *s = r->s;
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	if (t->family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(t->port);
		if (inet_pton(AF_INET6, t->addr, &a->sin6_addr) != 1)
			return -EINVAL;
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(t->port);
		if (inet_pton(AF_INET, t->addr, &a->sin_addr) != 1)
			return -EINVAL;
		sl = sizeof(*a);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	set_nonblock(fd);
	struct conn *c = conn_new(s, fd, false);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->route = r;
	c->local = strdup(r->local);
	c->remote = strdup(r->remote);
	c->direct = t->direct_tls;
	snprintf(c->peer, sizeof(c->peer), t->family == AF_INET6 ? "[%s]:%u" : "%s:%u",
	         t->addr, (unsigned)t->port);
	r->c = c;
	c->st = CS_CONNECTING;
	if (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS) {
		conn_fail(c, "TCP connection to %s failed: %s", c->peer, strerror(errno));
		return 0;
	}
	conn_sync(c);
	return 0;
}

static void route_try_next(struct route *r)
{
	while (r->next_target < r->ntargets) {
		const struct xdns_target *t = &r->targets[r->next_target++];
		int e = connect_to(r, t);
		if (e == 0)
			return;
		snprintf(r->cause, sizeof(r->cause), "cannot connect to %s:%u: %s",
		         t->addr, (unsigned)t->port, strerror(-e));
		stats_fail(STATS_FAIL_CONNECT, strerror(-e));
	}
	if (!r->cause[0])
		snprintf(r->cause, sizeof(r->cause), "no address to connect to");
	route_down(r, NULL);
}

static void on_resolved(const struct xdns_result *res, void *arg)
{
	struct route *r = arg;
	r->dq = NULL;
	r->resolving = false;
	if (res->status != 0 || res->n == 0) {
		snprintf(r->cause, sizeof(r->cause), "DNS: %s", res->why);
		stats_fail(STATS_FAIL_DNS,
		           res->status == -ENOENT         ? "no such name or address"
		           : res->status == -EHOSTUNREACH ? "no XMPP service (SRV .)"
		           : res->status == -ETIMEDOUT    ? "timeout"
		                                          : "resolver failure");
		route_down(r, NULL);
		return;
	}
	targets_free(r);
	r->targets = calloc(res->n, sizeof(*r->targets));
	if (!r->targets) {
		snprintf(r->cause, sizeof(r->cause), "out of memory");
		route_down(r, NULL);
		return;
	}
	for (size_t i = 0; i < res->n; i++) {
		r->targets[i] = res->v[i];
		r->targets[i].host = res->v[i].host ? strdup(res->v[i].host) : NULL;
	}
	r->ntargets = res->n;
	r->next_target = 0;
	route_try_next(r);
}

static void route_start(struct route *r)
{
	struct xs2s *s = r->s;
	if (r->c || r->resolving || s->stopping)
		return;
	uint64_t now = loop_now(s->loop);
	if (r->not_before > now) {
		if (!loop_timer_running(&r->retry))
			loop_timer_start(s->loop, &r->retry, r->not_before - now,
			                 route_attempt, r);
		return;
	}
	r->cause[0] = '\0';
	const struct conf_s2s_peer *p = peer_conf(s, r->remote);
	if (p && p->address.host) {
		/* A static route (as Expressway's): an IP literal or a host name. */
		struct xdns_target t = {0};
		t.port = p->address.port;
		t.direct_tls = p->direct_tls;
		t.from_srv = false;
		if (inet_pton(AF_INET6, p->address.host, &(struct in6_addr){0}) == 1)
			t.family = AF_INET6;
		else
			t.family = AF_INET;
		if (t.family == AF_INET6 ||
		    inet_pton(AF_INET, p->address.host, &(struct in_addr){0}) == 1) {
			snprintf(t.addr, sizeof(t.addr), "%s", p->address.host);
			targets_free(r);
			r->targets = calloc(1, sizeof(*r->targets));
			if (!r->targets)
				return;
			r->targets[0] = t;
			r->ntargets = 1;
			route_try_next(r);
			return;
		}
		r->resolving = true;
		if (xdns_resolve_host(s->dns, p->address.host, p->address.port,
		                      p->direct_tls, on_resolved, r, &r->dq) != 0) {
			r->resolving = false;
			snprintf(r->cause, sizeof(r->cause), "out of memory");
			route_down(r, NULL);
		}
		return;
	}
	r->resolving = true;
	if (xdns_resolve(s->dns, r->remote, s->p.direct_tls, on_resolved, r, &r->dq) !=
	    0) {
		r->resolving = false;
		snprintf(r->cause, sizeof(r->cause), "out of memory");
		route_down(r, NULL);
	}
}

static void route_attempt(void *arg)
{
	struct route *r = arg;
	if (r->nq || r->nv)
		route_start(r);
}

/* ---- housekeeping -------------------------------------------------------------------
 */

static void tick(void *arg)
{
	struct xs2s *s = arg;
	uint64_t now = loop_now(s->loop);
	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->dead)
			continue;
		if (c->st == CS_UP && now - c->last_stanza >= s->p.idle_ms) {
			log_debug(MOD, "%s %s: idle for %u s, closing",
			          c->in ? "incoming stream from" : "stream to",
			          c->remote ? c->remote : c->peer,
			          (unsigned)(s->p.idle_ms / 1000));
			conn_close(c);
			continue;
		}
		/* RFC 6120 section 4.6.1: a whitespace keep-alive on a silent stream. */
		if (!c->in && c->st == CS_UP && now - c->last_tx >= XS2S_KEEPALIVE_MS)
			conn_put(c, " ", 1);
	}
	reap(s);
	loop_timer_start(s->loop, &s->tick, TICK_MS, tick, s);
}

/* ---- parameters ---------------------------------------------------------------------
 */

static void params_free(struct s2s_params *p)
{
	xlink_strv_free(p->hosted, p->nhosted);
	xlink_strv_free(p->allow, p->nallow);
	for (size_t i = 0; i < p->nlisten; i++)
		free(p->listen[i].host);
	free(p->listen);
	free(p->direct);
	free(p->cert);
	free(p->key);
	free(p->ca);
	free(p->dns);
	for (size_t i = 0; i < p->npeers; i++) {
		free(p->peers[i].domain);
		free(p->peers[i].address.host);
	}
	free(p->peers);
	OPENSSL_cleanse(p->secret, sizeof(p->secret));
	memset(p, 0, sizeof(*p));
}

static char *dup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int params_from_conf(const struct conf *cf, struct s2s_params *p)
{
	memset(p, 0, sizeof(*p));
	if (xlink_domains(cf, true, &p->hosted, &p->nhosted) != 0 ||
	    xlink_domains(cf, false, &p->allow, &p->nallow) != 0)
		goto oom;
	size_t nl = cf->ns2s_listen + cf->ns2s_listen_tls;
	p->listen = calloc(nl ? nl : 1, sizeof(*p->listen));
	p->direct = calloc(nl ? nl : 1, sizeof(*p->direct));
	if (!p->listen || !p->direct)
		goto oom;
	for (size_t i = 0; i < nl; i++) {
		bool tls = i >= cf->ns2s_listen;
		const struct conf_hostport *hp =
		    tls ? &cf->s2s_listen_tls[i - cf->ns2s_listen] : &cf->s2s_listen[i];
		p->listen[i].port = hp->port;
		p->direct[i] = tls;
		if (!(p->listen[i].host = strdup(hp->host)))
			goto oom;
		p->nlisten++;
	}
	p->cert = dup0(cf->s2s_cert);
	p->key = dup0(cf->s2s_key);
	p->ca = dup0(cf->s2s_ca);
	p->dns = dup0(cf->s2s_dns);
	if (cf->s2s_secret) {
		snprintf(p->secret, sizeof(p->secret), "%s", cf->s2s_secret);
		p->secret_given = true;
	} else if (xs2s_random_secret(p->secret) != 0) {
		goto oom;
	}
	p->tls = cf->s2s_tls;
	p->auth =
	    cf->s2s_auth ? cf->s2s_auth : CONF_S2S_AUTH_EXTERNAL | CONF_S2S_AUTH_DIALBACK;
	p->idle_ms = (cf->s2s_idle_timeout ? cf->s2s_idle_timeout
	                                   : CONF_S2S_IDLE_TIMEOUT_DEFAULT) *
	             1000u;
	p->connect_ms = (cf->s2s_connect_timeout ? cf->s2s_connect_timeout
	                                         : CONF_S2S_CONNECT_TIMEOUT_DEFAULT) *
	                1000u;
	p->direct_tls = cf->s2s_direct_tls;
	if (cf->ns2s_peers) {
		p->peers = calloc(cf->ns2s_peers, sizeof(*p->peers));
		if (!p->peers)
			goto oom;
		for (size_t i = 0; i < cf->ns2s_peers; i++) {
			p->peers[i] = cf->s2s_peers[i];
			p->peers[i].domain = strdup(cf->s2s_peers[i].domain);
			p->peers[i].address.host = dup0(cf->s2s_peers[i].address.host);
			p->npeers++;
			if (!p->peers[i].domain)
				goto oom;
		}
	}
	if (!p->cert || !p->key || !p->ca)
		goto oom;
	return 0;
oom:
	params_free(p);
	return -ENOMEM;
}

/* ---- listeners ----------------------------------------------------------------------
 */

static int listen_one(struct xs2s *s, const struct conf_hostport *hp, struct listener *ls)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	if (strchr(hp->host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(hp->port);
		inet_pton(AF_INET6, hp->host, &a->sin6_addr);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(hp->port);
		inet_pton(AF_INET, hp->host, &a->sin_addr);
		sl = sizeof(*a);
	}
	snprintf(ls->label, sizeof(ls->label),
	         strchr(hp->host, ':') ? "[%s]:%u" : "%s:%u", hp->host,
	         (unsigned)hp->port);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 128) != 0) {
		int e = -errno;
		close(fd);
		log_error(MOD, "cannot listen on %s: %s%s", ls->label, strerror(-e),
		          e == -EACCES ? " (ports below 1024 need CAP_NET_BIND_SERVICE)"
		          : e == -EADDRINUSE
		              ? " (another server, e.g. an XMPP server, holds it)"
		              : "");
		return e;
	}
	ls->fd = fd;
	int e = loop_fd_add(s->loop, fd, LOOP_READ, on_accept, ls);
	if (e) {
		close(fd);
		ls->fd = -1;
		return e;
	}
	return 0;
}

static void listeners_close(struct xs2s *s)
{
	for (size_t i = 0; i < s->nls; i++)
		if (s->ls[i].fd >= 0) {
			loop_fd_del(s->loop, s->ls[i].fd);
			close(s->ls[i].fd);
		}
	free(s->ls);
	s->ls = NULL;
	s->nls = 0;
}

static int listeners_open(struct xs2s *s)
{
	s->ls = calloc(s->p.nlisten ? s->p.nlisten : 1, sizeof(*s->ls));
	if (!s->ls)
		return -ENOMEM;
	for (size_t i = 0; i < s->p.nlisten; i++) {
		s->ls[i].fd = -1;
		s->ls[i].s = s;
		s->ls[i].direct = s->p.direct[i];
		s->nls++;
		int e = listen_one(s, &s->p.listen[i], &s->ls[i]);
		if (e)
			return e;
		log_info(MOD, "listening for XMPP servers on %s%s", s->ls[i].label,
		         s->ls[i].direct ? " (direct TLS, XEP-0368)" : "");
	}
	return 0;
}

static int tls_setup(struct xs2s *s)
{
	char why[512];
	SSL_CTX *ctx = make_ctx(&s->p, why, sizeof(why));
	if (!ctx) {
		log_error(MOD, "TLS: %s", why);
		return -EINVAL;
	}
	SSL_CTX_free(s->tls); /* SSLs still open keep a reference of their own */
	s->tls = ctx;
	return 0;
}

/* ---- public ----------------------------------------------------------------------- */

static void announce_up(void *arg)
{
	struct xs2s *s = arg;
	for (size_t i = 0; i < s->p.nhosted; i++) {
		log_info(MOD, "%s: hosted; federating with %zu XMPP domain%s",
		         s->p.hosted[i], s->p.nallow, s->p.nallow == 1 ? "" : "s");
		if (s->h.state)
			s->h.state(s->p.hosted[i], true, s->h.arg);
	}
}

int xs2s_new(struct xs2s **sp, struct loop *l, const struct conf *cf, xmpp_ctx_t *ctx,
             const struct xlink_handlers *h)
{
	struct xs2s *s = calloc(1, sizeof(*s));
	int e;
	if (!s)
		return -ENOMEM;
	s->loop = l;
	s->ctx = ctx;
	s->h = *h;
	s->rnd = (uint32_t)loop_clock_ms() | 1u;
	if ((e = params_from_conf(cf, &s->p)) != 0)
		goto fail;
	if (!s->p.nhosted) {
		log_error(MOD, "no domain to host: domains.map has no sip row");
		e = -EINVAL;
		goto fail;
	}
	bool dialback = s->p.auth & CONF_S2S_AUTH_DIALBACK;
	for (size_t i = 0; i < s->p.npeers; i++)
		dialback |= (s->p.peers[i].auth & CONF_S2S_AUTH_DIALBACK) != 0;
	if (!s->p.secret_given && dialback)
		log_warn(MOD,
		         "no [s2s] dialback_secret: using a random one until the bridge "
		         "stops");
	if ((e = tls_setup(s)) != 0)
		goto fail;
	if ((e = xdns_new(&s->dns, l, s->p.dns)) != 0) {
		log_error(MOD, "cannot start the DNS resolver: %s", strerror(-e));
		goto fail;
	}
	if ((e = listeners_open(s)) != 0)
		goto fail;
	if ((e = loop_idle_add(l, s2s_idle, s)) != 0)
		goto fail;
	loop_timer_start(l, &s->tick, TICK_MS, tick, s);
	/* The bridge hears "up" on the loop's first turn, as from a component
	 * link: after it has restored its state, which needs the event to refresh
	 * restored subscriptions and re-announce presence. */
	loop_timer_start(l, &s->up_timer, 0, announce_up, s);
	*sp = s;
	return 0;
fail:
	xs2s_free(s);
	return e;
}

static bool params_same(const struct s2s_params *a, const struct s2s_params *b)
{
	if (a->nhosted != b->nhosted || a->nallow != b->nallow ||
	    a->nlisten != b->nlisten || a->npeers != b->npeers || a->tls != b->tls ||
	    a->auth != b->auth || a->direct_tls != b->direct_tls ||
	    strcmp(a->secret, b->secret) != 0 || strcmp(a->cert, b->cert) != 0 ||
	    strcmp(a->key, b->key) != 0 || strcmp(a->ca, b->ca) != 0 ||
	    (a->dns == NULL) != (b->dns == NULL) ||
	    (a->dns && strcmp(a->dns, b->dns) != 0))
		return false;
	for (size_t i = 0; i < a->nhosted; i++)
		if (strcmp(a->hosted[i], b->hosted[i]) != 0)
			return false;
	for (size_t i = 0; i < a->nallow; i++)
		if (strcmp(a->allow[i], b->allow[i]) != 0)
			return false;
	for (size_t i = 0; i < a->nlisten; i++)
		if (a->listen[i].port != b->listen[i].port ||
		    a->direct[i] != b->direct[i] ||
		    strcmp(a->listen[i].host, b->listen[i].host) != 0)
			return false;
	for (size_t i = 0; i < a->npeers; i++) {
		const struct conf_s2s_peer *x = &a->peers[i], *y = &b->peers[i];
		if (strcmp(x->domain, y->domain) != 0 || x->tls != y->tls ||
		    x->has_tls != y->has_tls || x->auth != y->auth ||
		    x->direct_tls != y->direct_tls ||
		    x->address.port != y->address.port ||
		    (x->address.host == NULL) != (y->address.host == NULL) ||
		    (x->address.host && strcmp(x->address.host, y->address.host) != 0))
			return false;
	}
	return true;
}

int xs2s_apply(struct xs2s *s, const struct conf *cf)
{
	struct s2s_params np;
	int e = params_from_conf(cf, &np);
	if (e)
		return e;
	/* A configured secret keeps its value; a random one stays for the run. */
	if (!np.secret_given)
		memcpy(np.secret, s->p.secret, sizeof(np.secret));
	if (params_same(&s->p, &np)) {
		params_free(&np);
		return 0;
	}
	bool same_listen = s->p.nlisten == np.nlisten;
	for (size_t i = 0; same_listen && i < np.nlisten; i++)
		same_listen = np.listen[i].port == s->p.listen[i].port &&
		              np.direct[i] == s->p.direct[i] &&
		              strcmp(np.listen[i].host, s->p.listen[i].host) == 0;
	struct s2s_params old = s->p;
	s->p = np;
	if (tls_setup(s) != 0) {
		params_free(&s->p);
		s->p = old;
		return -EINVAL;
	}
	log_info(MOD,
	         "configuration changed: closing every stream; they reopen on demand");
	for (struct conn *c = s->conns; c; c = c->next)
		conn_close(c);
	/* Routes of domains no longer served or allowed lose their queue. */
	for (struct route **pp = &s->routes; *pp;) {
		struct route *r = *pp;
		if (!in_list(s->p.hosted, s->p.nhosted, r->local) ||
		    !in_list(s->p.allow, s->p.nallow, r->remote)) {
			*pp = r->next;
			if (r->nq)
				log_warn(
				    MOD,
				    "%s -> %s: no longer federated; %zu waiting stanza%s "
				    "dropped",
				    r->local, r->remote, r->nq, r->nq == 1 ? "" : "s");
			route_free(r);
			continue;
		}
		if (r->nq)
			route_start(r);
		pp = &r->next;
	}
	if (!same_listen) {
		listeners_close(s);
		int le = listeners_open(s);
		if (le)
			log_error(
			    MOD,
			    "after the reload the bridge does not listen on every [s2s] "
			    "listen address");
	}
	params_free(&old);
	return 0;
}

static void stop_done(void *arg)
{
	struct xs2s *s = arg;
	if (s->done) {
		void (*d)(void *) = s->done;
		s->done = NULL;
		d(s->done_arg);
	}
}

void xs2s_stop(struct xs2s *s, void (*done)(void *arg), void *arg)
{
	s->stopping = true;
	s->done = done;
	s->done_arg = arg;
	for (struct route *r = s->routes; r; r = r->next) {
		xdns_cancel(r->dq);
		r->dq = NULL;
		r->resolving = false;
		loop_timer_cancel(s->loop, &r->retry);
	}
	for (struct conn *c = s->conns; c; c = c->next)
		conn_close(c);
	listeners_close(s);
	loop_timer_start(s->loop, &s->done_timer, 0, stop_done, s);
}

void xs2s_free(struct xs2s *s)
{
	if (!s)
		return;
	loop_idle_del(s->loop, s2s_idle, s);
	loop_timer_cancel(s->loop, &s->tick);
	loop_timer_cancel(s->loop, &s->done_timer);
	loop_timer_cancel(s->loop, &s->stop_timer);
	loop_timer_cancel(s->loop, &s->up_timer);
	while (s->conns) {
		struct conn *c = s->conns;
		s->conns = c->next;
		c->route = NULL;
		conn_free(c);
	}
	while (s->routes) {
		struct route *r = s->routes;
		s->routes = r->next;
		route_free(r);
	}
	listeners_close(s);
	xdns_free(s->dns);
	SSL_CTX_free(s->tls);
	params_free(&s->p);
	free(s);
}

int xs2s_send(struct xs2s *s, xmpp_stanza_t *st)
{
	if (s->stopping)
		return -ESHUTDOWN;
	const char *from = xmpp_stanza_get_from(st), *to = xmpp_stanza_get_to(st);
	if (!from || !to)
		return -EINVAL;
	char *fd = jid_domain(from), *td = jid_domain(to);
	int e = 0;
	if (!fd || !td) {
		e = -EINVAL;
		goto out;
	}
	if (!in_list(s->p.hosted, s->p.nhosted, fd)) {
		e = -ENOENT;
		goto out;
	}
	if (!in_list(s->p.allow, s->p.nallow, td)) {
		log_warn(
		    MOD,
		    "%s: not sending <%s> to %s: the domain is not on the allow list "
		    "(the xmpp rows of domains.map)",
		    fd, xmpp_stanza_get_name(st), td);
		e = -EPERM;
		goto out;
	}
	struct route *r = route_get(s, fd, td, true);
	if (!r) {
		e = -ENOMEM;
		goto out;
	}
	if (r->c && r->c->st == CS_UP && !r->c->dead) {
		if (r->c->out.len - r->c->out_off > WR_MAX) {
			e = -ENOBUFS;
			goto out;
		}
		e = conn_put_stanza(r->c, st);
		r->c->last_stanza = loop_now(s->loop);
		goto out;
	}
	if (r->nq >= XS2S_QUEUE_MAX) {
		e = -ENOBUFS;
		goto out;
	}
	xmpp_stanza_t **nq = realloc(r->q, (r->nq + 1) * sizeof(*nq));
	xmpp_stanza_t *copy = nq ? xmpp_stanza_copy(st) : NULL;
	if (!copy) {
		if (nq)
			r->q = nq;
		e = -ENOMEM;
		goto out;
	}
	r->q = nq;
	r->q[r->nq++] = copy;
	route_start(r);
out:
	free(fd);
	free(td);
	return e;
}

int xs2s_feed(struct xs2s *s, const char *bytes, size_t len, size_t piece,
              const char *pre_from, const char *pre_to, xlink_tap_h *out, void *arg)
{
	struct conn *c = conn_new(s, -1, true);
	if (!c)
		return -ENOMEM;
	c->tap = out;
	c->tap_arg = arg;
	c->st = CS_HEADER;
	snprintf(c->peer, sizeof(c->peer), "test seam");
	if (pre_from && pre_to && pair_add(c, pre_from, pre_to) != 0) {
		conn_gone(c, NULL);
		return -ENOMEM;
	}
	if (!piece)
		piece = len ? len : 1;
	for (size_t off = 0; off < len && !c->dead;) {
		size_t n = len - off < piece ? len - off : piece, used = 0;
		if (xstream_feed(c->xs, bytes + off, n, &used) != 0) {
			conn_stream_error(c, xstream_error_cond(c->xs),
			                  xstream_error_text(c->xs));
			conn_gone(c, NULL);
			break;
		}
		off += used ? used : n;
		if (c->tls_due) {
			c->tls_due = false;
			tls_start(c);
		}
	}
	conn_gone(c, NULL);
	return 0;
}

bool xs2s_is_up(const struct xs2s *s, const char *domain)
{
	if (s->stopping || !s->nls)
		return false;
	return !domain || in_list(s->p.hosted, s->p.nhosted, domain);
}

size_t xs2s_queued(const struct xs2s *s)
{
	size_t n = 0;
	for (const struct route *r = s->routes; r; r = r->next)
		n += r->nq;
	return n;
}

size_t xs2s_count(const struct xs2s *s)
{
	return s->p.nhosted;
}

const char *xs2s_domain(const struct xs2s *s, size_t i)
{
	return i < s->p.nhosted ? s->p.hosted[i] : NULL;
}

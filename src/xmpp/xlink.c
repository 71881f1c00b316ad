/*
 * The XEP-0114 component links, driven by the daemon's event loop.
 *
 * Why not xmpp_connect_component(): in Debian 12's libstrophe 0.12.2 it crashes
 * right after the handshake (the stream-management state it then touches is set
 * up only by xmpp_connect_client) and it turns TLS off. So each attempt is:
 *
 *   xmpp_connect_raw()           TCP; the conn's JID is [xmpp] name, because
 *                                libstrophe checks the server certificate against
 *                                the JID's domain (X509_VERIFY_PARAM_set1_host)
 *   XMPP_CONN_RAW_CONNECT        xmpp_conn_tls_start() for tls = direct (raw
 *                                connections ignore XMPP_CONN_FLAG_LEGACY_SSL),
 *                                bounded by the xtls watchdog, then our own check
 *                                of the certificate (xtls_check_peer); then
 *                                xmpp_conn_open_stream() with the component
 *                                namespace, the stream prefix and to=<domain>
 *   XMPP_CONN_CONNECT            the server's stream header arrived; libstrophe
 *                                keeps its id private, so it is read from
 *                                libstrophe's debug log of that header (the log
 *                                handler of this link's own context); send
 *                                <handshake>sha1(id + secret)</handshake>
 *   <handshake/>                 the link is up
 *
 * Each link has its own libstrophe context, so xmpp_run_once() on it touches only
 * that link and the log handler knows whose header it sees. libstrophe's socket
 * is captured in the sockopt callback and watched by the loop; xmpp_run_once(ctx,
 * 0) runs when it is ready, and from the idle handler when we queued data or when
 * TLS may hold decrypted bytes the socket no longer signals (see XL_DRAIN).
 */
#include "presbridge/sbuf.h"
#include "presbridge/xlink.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "presbridge/addr.h"
#include "presbridge/conf.h"
#include "presbridge/log.h"
#include "presbridge/loop.h"
#include "presbridge/stats.h"
#include "presbridge/xproto.h"
#include "presbridge/xqueue.h"
#include "presbridge/xroute.h"
#include "presbridge/xs2s.h"
#include "presbridge/xtls.h"

#define MOD              "xmpp"
#define NS_STREAMS       "http://etherx.jabber.org/streams"
#define NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"

/*
 * libstrophe reads at most 4096 bytes per xmpp_run_once(); OpenSSL reads one
 * record (up to 16 KiB) from the socket at a time. After a read the rest of a
 * record can sit decrypted inside OpenSSL with nothing left on the socket to wake
 * epoll, so every read is followed by this many more runs from the idle handler.
 */
#define XL_DRAIN 4

/* The most bytes handed to libstrophe in one piece (see xl_flush). */
#define XL_PIECE 960u

/* The server's stream header carried no id we could read (the handshake hashes
 * it, XEP-0114 section 3), and no stream error said why. */
#define XL_NO_ID_WORDS                                                                   \
	"the server's stream header carries no id, so no handshake is possible"

enum xl_state {
	XL_IDLE,       /* waiting for the next attempt (or stopped) */
	XL_CONNECTING, /* TCP connect (and TLS, done synchronously on connect) */
	XL_STREAM,     /* stream header sent, waiting for the server's */
	XL_HANDSHAKE,  /* <handshake> sent, waiting for the answer */
	XL_UP,
};

static const char *const stage_words[] = {
    [XL_IDLE] = "idle",
    [XL_CONNECTING] = "connecting",
    [XL_STREAM] = "waiting for the server's stream header",
    [XL_HANDSHAKE] = "waiting for the answer to the handshake",
    [XL_UP] = "up",
};

struct xl_params {
	char *host;
	uint16_t port;
	char *secret;
	bool tls;
	char *ca;
	char *name; /* the name the server certificate must carry */
	char **domains;
	size_t ndomains;
};

struct xlink {
	struct xlink *next;
	struct xlink_set *set;
	char *domain;
	enum xl_state state;
	xmpp_ctx_t *ctx;
	xmpp_log_t *log;   /* this context's log handler (libstrophe keeps the pointer) */
	xmpp_conn_t *conn; /* NULL between attempts */
	xmpp_conn_t *dead; /* disconnected inside a libstrophe call: released after it */
	int fd;            /* libstrophe's socket, from the sockopt callback */
	int reg_fd;        /* what the loop watches */
	unsigned reg_events;
	bool dirty; /* data queued in libstrophe: run it from the idle handler */
	/* Stanzas written this loop turn, handed to libstrophe as one piece before
	 * it runs (xl_flush): libstrophe sends each queued piece with its own
	 * system call. */
	char *pend;
	size_t pend_len, pend_cap;
	unsigned drain; /* runs still due after a read (XL_DRAIN) */
	bool releasing; /* inside xmpp_conn_release(): its disconnect event is ours */
	bool freeing;
	bool removing;      /* the domain left the configuration */
	bool reconnect_now; /* the configuration changed: reconnect without waiting */
	char stream_id[XPROTO_STREAM_ID_MAX + 1];
	bool have_stream_id;
	bool header_no_id;     /* the server's stream header came without a usable id */
	char tls_error[256];   /* last OpenSSL error libstrophe logged in this attempt */
	int os_errno;          /* last OS error libstrophe logged (-1: none) */
	char cause[640];       /* why this attempt failed (first cause found wins) */
	char last_cause[640];  /* of the previous failed attempt */
	unsigned attempts;     /* failed attempts since the link was last up */
	uint64_t next_attempt; /* loop ms */
	struct loop_timer retry, deadline, closer;
	struct xqueue queue;
};

struct xlink_set {
	struct loop *loop;
	struct xl_params p;
	char server[300]; /* "host:port" for logs */
	struct xlink *links;
	struct xlink_handlers h;
	xmpp_ctx_t *sctx; /* for callers' stanzas */
	bool stopping;
	void (*done)(void *arg);
	void *done_arg;
	struct loop_timer stop_timer, done_timer;
	uint32_t rnd;
	xlink_tap_h *tap; /* test seam: NULL in the daemon (xlink_set_tap) */
	void *tap_arg;
	/* [xmpp] transport = s2s: the server-to-server transport serves every call
	 * of the interface below and no component link exists. */
	struct xs2s *s2s;
};

/* The link whose libstrophe call is running. The sockopt and certificate-failure
 * callbacks get no user data; with one thread and one context per link, the link
 * that entered libstrophe is the one they are about. */
static struct xlink *xl_current;

static void xl_closed(struct xlink *k, int error);
static void xl_attempt(void *arg);
static void xl_sync_fd(struct xlink *k);

/* --- small helpers ----------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void xl_cause(struct xlink *k,
                                                           const char *fmt, ...)
{
	va_list ap;
	if (k->cause[0])
		return;
	va_start(ap, fmt);
	vsnprintf(k->cause, sizeof(k->cause), fmt, ap);
	va_end(ap);
}

static void wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
}

static void free_secret(char *s)
{
	if (s) {
		wipe(s, strlen(s));
		free(s);
	}
}

static void xl_trace(struct xlink *k, const char *dir, const char *text, size_t len)
{
	if (!log_enabled(LOG_LVL_TRACE))
		return;
	char *m = xproto_mask(text, len);
	log_trace(MOD, "%s: %s: %s", k->domain, dir, m ? m : "(out of memory)");
	free(m);
}

static void xl_enter(struct xlink *k, struct xlink **saved)
{
	*saved = xl_current;
	xl_current = k;
}

static void xl_leave(struct xlink *saved)
{
	xl_current = saved;
}

/* Release a connection that was disconnected inside a libstrophe call, once that
 * call has returned. */
static void xl_reap(struct xlink *k)
{
	if (k->dead) {
		xmpp_conn_release(k->dead);
		k->dead = NULL;
	}
}

static void xl_flush(struct xlink *k);

/* Run libstrophe for this link once, without waiting. true: the socket had
 * something to read before the run. */
static bool xl_pump(struct xlink *k)
{
	struct xlink *saved;
	struct pollfd pfd = {.fd = k->fd, .events = POLLIN};

	if (!k->conn)
		return false;
	bool readable = k->fd >= 0 && poll(&pfd, 1, 0) > 0;
	xl_flush(k);
	k->dirty = false;
	xl_enter(k, &saved);
	xmpp_run_once(k->ctx, 0);
	xl_leave(saved);
	if (!k->conn)
		k->drain = 0; /* closed during the run */
	else if (readable)
		k->drain = XL_DRAIN;
	else if (k->drain)
		k->drain--;
	xl_reap(k);
	xl_sync_fd(k);
	return readable;
}

/* libstrophe reads 4 KiB per run; a turn reads up to this many runs' worth, so
 * a busy SIP peer (up to 4 reads of 72 KiB a turn) does not starve the link. */
#define XL_READS_PER_TURN 8

static void xl_on_fd(int fd, unsigned events, void *arg)
{
	struct xlink *k = arg;
	(void)fd;
	(void)events;
	for (unsigned i = 0; i < XL_READS_PER_TURN && xl_pump(k) && k->conn; i++)
		;
}

/* Keep the loop's watch in step with libstrophe's socket: read always, write while
 * a TCP connect is pending or libstrophe holds unsent data (never otherwise, or
 * epoll would wake us for ever). */
static void xl_sync_fd(struct xlink *k)
{
	struct loop *l = k->set->loop;
	int fd = k->conn && !xmpp_conn_is_disconnected(k->conn) ? k->fd : -1;
	unsigned ev = LOOP_READ;

	if (fd >= 0 &&
	    (xmpp_conn_is_connecting(k->conn) || xmpp_conn_send_queue_len(k->conn) > 0))
		ev |= LOOP_WRITE;
	if (fd != k->reg_fd) {
		if (k->reg_fd >= 0)
			loop_fd_del(l, k->reg_fd);
		k->reg_fd = -1;
		if (fd < 0)
			return;
		int err = loop_fd_add(l, fd, ev, xl_on_fd, k);
		if (err) {
			log_error(MOD, "%s: %s: cannot watch the socket: %s",
			          k->set->server, k->domain, strerror(-err));
			return;
		}
		k->reg_fd = fd;
		k->reg_events = ev;
	} else if (fd >= 0 && ev != k->reg_events && loop_fd_mod(l, fd, ev) == 0) {
		k->reg_events = ev;
	}
}

/* Close the stream at once (no </stream:stream>). Only outside libstrophe calls:
 * releasing the connection makes libstrophe close it and report it to
 * xl_on_conn(), which sees `releasing` and does not keep the pointer. */
static void xl_abort(struct xlink *k)
{
	struct xlink *saved;
	xmpp_conn_t *c = k->conn;

	if (!c)
		return;
	/* libstrophe's TLS close waits for the server's close_notify, retrying with
	 * waits of its own: with the socket shut down first it fails at once. */
	if (k->fd >= 0)
		shutdown(k->fd, SHUT_RDWR);
	k->releasing = true;
	xl_enter(k, &saved);
	xmpp_conn_release(c);
	xl_leave(saved);
	k->releasing = false;
	if (k->conn == c) { /* it was not connected: no event came */
		k->conn = NULL;
		k->pend_len = 0;
		xl_closed(k, 0);
	}
	xl_reap(k);
}

/* Inside a libstrophe callback: end the connection by shutting the socket down;
 * libstrophe sees the end of the stream on its next run and reports it. */
static void xl_hangup(struct xlink *k)
{
	if (k->fd >= 0)
		shutdown(k->fd, SHUT_RDWR);
	k->dirty = true;
}

/* Hand what this loop turn wrote to libstrophe (or forget it with the
 * connection it was for). */
static void xl_flush(struct xlink *k)
{
	/* In pieces below glibc's large-request size (1008 bytes): a larger
	 * malloc of libstrophe's copy would consolidate the heap's fast bins on
	 * every loop turn, which cost more than the system calls saved. */
	for (size_t off = 0; k->conn && off < k->pend_len; off += XL_PIECE)
		xmpp_send_raw(k->conn, k->pend + off,
		              k->pend_len - off < XL_PIECE ? k->pend_len - off
		                                           : XL_PIECE);
	k->pend_len = 0;
	/* A burst's buffer is not kept for ever. */
	if (k->pend_cap > (1u << 20)) {
		free(k->pend);
		k->pend = NULL;
		k->pend_cap = 0;
	}
}

static void xl_send_text(struct xlink *k, const char *text, size_t len)
{
	xl_trace(k, "out", text, len);
	if (k->set->tap) {
		k->set->tap(k->domain, text, len, k->set->tap_arg);
		return;
	}
	if (k->pend_len + len > k->pend_cap) {
		size_t cap = k->pend_cap ? k->pend_cap : 16384;
		while (cap < k->pend_len + len)
			cap *= 2;
		char *p = realloc(k->pend, cap);
		if (!p) { /* no room to gather: keep the order, send it all now */
			xl_flush(k);
			xmpp_send_raw(k->conn, text, len);
			k->dirty = true;
			return;
		}
		k->pend = p;
		k->pend_cap = cap;
	}
	memcpy(k->pend + k->pend_len, text, len);
	k->pend_len += len;
	k->dirty = true;
}

static int xl_send_stanza(struct xlink *k, xmpp_stanza_t *st)
{
	char *buf = NULL;
	size_t len = 0;

	if (xmpp_stanza_to_text(st, &buf, &len) != XMPP_EOK)
		return -ENOMEM;
	xl_send_text(k, buf, len);
	xmpp_free(xmpp_stanza_get_context(st), buf);
	return 0;
}

/* --- libstrophe callbacks ---------------------------------------------------- */

static void xl_log(void *arg, xmpp_log_level_t level, const char *area, const char *msg)
{
	struct xlink *k = arg;

	if (level == XMPP_LEVEL_DEBUG) {
		int e;
		if (k->state == XL_STREAM && !k->have_stream_id &&
		    xproto_stream_id(msg, k->stream_id, sizeof(k->stream_id)) == 0)
			k->have_stream_id = true;
		else if (strcmp(area, "tls") == 0 && strncmp(msg, "error:", 6) == 0)
			snprintf(k->tls_error, sizeof(k->tls_error), "%s", msg);
		else if (xproto_log_errno(msg, &e))
			k->os_errno = e;
		return;
	}
	/* libstrophe's own warnings and errors name no stanza content (those are
	 * logged at debug level, never forwarded: they would show the handshake). */
	log_debug(MOD, "%s: %s: libstrophe %s: %s", k->set->server, k->domain, area, msg);
}

static int xl_sockopt(xmpp_conn_t *conn, void *sock)
{
	struct xlink *k = xl_current;

	if (k && k->conn == conn) {
		/* A new socket for this attempt (libstrophe may close one and open the
		 * next address's): forget the old number before it is reused. */
		if (k->reg_fd >= 0)
			loop_fd_del(k->set->loop, k->reg_fd);
		k->reg_fd = -1;
		k->fd = *(int *)sock;
	}
	/* Stanzas leave gathered, once per loop turn (xl_flush): Nagle's algorithm
	 * would hold a turn's second piece until the server's delayed ACK, up to
	 * 40 ms, under light load. */
	int one = 1;
	setsockopt(*(int *)sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* TCP keepalive finds a server that vanished without closing the connection,
	 * with no timer of ours waking an idle bridge. */
	return xmpp_sockopt_cb_keepalive(conn, sock);
}

static int xl_certfail(const xmpp_tlscert_t *cert, const char *errormsg)
{
	struct xlink *k = xl_current;
	(void)cert;

	if (!k)
		return 0;
	const struct xproto_certerr *ce = xproto_cert_error_text(errormsg);
	/* OpenSSL's host check never matches an IP address, which is what libstrophe
	 * asks for; xtls_check_peer() checks the address right after the handshake. */
	if (ce->code == X509_V_ERR_HOSTNAME_MISMATCH && addr_is_ip(k->set->p.name))
		return 1;
	bool ca_fix = strstr(ce->fix, "[xmpp] ca") != NULL;
	xl_cause(k, "TLS: %s for %s (OpenSSL: %s); %s%s%s%s", ce->words, k->set->p.name,
	         errormsg ? errormsg : "?", ce->fix, ca_fix ? " (" : "",
	         ca_fix ? (k->set->p.ca ? k->set->p.ca : "not set") : "",
	         ca_fix ? ")" : "");
	return 0;
}

static void xl_tls_failed(struct xlink *k, bool timed_out)
{
	if (timed_out) {
		xl_cause(k, "TLS: " XPROTO_TLS_TIMEOUT_WORDS, XLINK_TLS_MS / 1000);
		return;
	}
	const char *words = xproto_tls_words(k->tls_error);
	if (words) {
		xl_cause(k, "TLS: %s", words);
		return;
	}
	xl_cause(k, "TLS handshake failed (%s)",
	         k->tls_error[0] ? k->tls_error : "no OpenSSL error given");
}

/* TCP is up: TLS (for tls = direct), then our stream header. */
static void xl_on_tcp_up(struct xlink *k)
{
	struct xlink_set *s = k->set;

	if (s->p.tls) {
		xtls_watchdog_arm(k->fd, XLINK_TLS_MS);
		int r = xmpp_conn_tls_start(k->conn);
		bool fired = xtls_watchdog_disarm();
		if (r != XMPP_EOK) {
			/* libstrophe has marked the connection failed; its next run
			 * closes it and reports the disconnect. */
			xl_tls_failed(k, fired);
			k->dirty = true;
			return;
		}
		char why[600];
		xmpp_tlscert_t *cert = xmpp_conn_get_peer_cert(k->conn);
		int err = xtls_check_peer(cert ? xmpp_tlscert_get_pem(cert) : NULL,
		                          s->p.ca, s->p.name, why, sizeof(why));
		if (cert)
			xmpp_tlscert_free(cert);
		if (err) {
			xl_cause(k, "TLS: %s", why);
			xl_hangup(k);
			return;
		}
	}
	char *attrs[] = {"xmlns",        "jabber:component:accept",
	                 "xmlns:stream", NS_STREAMS,
	                 "to",           k->domain};
	k->have_stream_id = false;
	k->header_no_id = false;
	k->state = XL_STREAM;
	if (xmpp_conn_open_stream(k->conn, attrs, sizeof(attrs) / sizeof(attrs[0])) !=
	    XMPP_EOK) {
		xl_cause(k, "could not open the stream (out of memory)");
		xl_hangup(k);
		return;
	}
	log_trace(MOD, "%s: out: <stream:stream xmlns='jabber:component:accept' to='%s'>",
	          k->domain, k->domain);
	k->dirty = true;
}

/* The server's stream header arrived: authenticate. */
static void xl_on_stream(struct xlink *k)
{
	char digest[XPROTO_DIGEST_LEN + 1];
	char msg[sizeof("<handshake></handshake>") + XPROTO_DIGEST_LEN];

	if (!k->have_stream_id) {
		/* A server that refuses the component opens its stream (with an
		 * empty id, as Prosody does) and sends a stream error right after
		 * (XEP-0114 section 3): wait for it; xl_on_stanza() and
		 * xl_default_cause() report what follows. */
		k->header_no_id = true;
		k->dirty = true;
		return;
	}
	if (xproto_handshake_digest(k->stream_id, k->set->p.secret, digest) != 0) {
		xl_cause(k, "could not compute the handshake (out of memory)");
		xl_hangup(k);
		return;
	}
	int n = snprintf(msg, sizeof(msg), "<handshake>%s</handshake>", digest);
	k->state = XL_HANDSHAKE;
	xl_send_text(k, msg, (size_t)n);
	wipe(digest, sizeof(digest));
	wipe(msg, sizeof(msg));
}

static void xl_up(struct xlink *k)
{
	struct xlink_set *s = k->set;
	size_t n = xqueue_count(&k->queue), len;
	char *text;

	loop_timer_cancel(s->loop, &k->deadline);
	k->state = XL_UP;
	stats_link(STATS_LINK_COMPONENT, k->domain, true, NULL);
	if (s->p.tls)
		log_info(MOD,
		         "%s: %s: component link up (TLS, certificate of %s verified)%s",
		         s->server, k->domain, s->p.name,
		         k->attempts ? " after reconnecting" : "");
	else
		log_info(MOD, "%s: %s: component link up (plain TCP: tls = off)%s",
		         s->server, k->domain, k->attempts ? " after reconnecting" : "");
	k->attempts = 0;
	k->last_cause[0] = '\0';
	if (n)
		log_info(MOD,
		         "%s: %s: sending %zu stanza(s) queued while the link was down",
		         s->server, k->domain, n);
	while ((text = xqueue_pop(&k->queue, &len))) {
		xl_send_text(k, text, len);
		free(text);
	}
	if (s->h.state)
		s->h.state(k->domain, true, s->h.arg);
}

static void xl_stream_error(struct xlink *k, xmpp_stanza_t *st)
{
	const char *cond = NULL, *text = NULL;

	for (xmpp_stanza_t *c = xmpp_stanza_get_children(st); c;
	     c = xmpp_stanza_get_next(c)) {
		const char *ns = xmpp_stanza_get_ns(c), *name = xmpp_stanza_get_name(c);
		if (!xmpp_stanza_is_tag(c) || !ns || !name ||
		    strcmp(ns, NS_STREAM_ERRORS) != 0)
			continue;
		if (strcmp(name, "text") == 0)
			text = xroute_text(c);
		else if (!cond)
			cond = name;
	}
	const struct xproto_streamerr *se = xproto_stream_error(cond);
	char words[300];
	snprintf(words, sizeof(words), se->words, k->domain);
	xl_cause(k, "%s%s%s%s%s%s", words, text ? " (\"" : "", text ? text : "",
	         text ? "\")" : "", se->fix[0] ? "; " : "", se->fix);
}

static int xl_reply(xmpp_stanza_t *st, void *arg)
{
	return xl_send_stanza(arg, st);
}

static void xl_route(struct xlink *k, xmpp_stanza_t *st, size_t size)
{
	struct xlink_set *s = k->set;
	xroute_dispatch(k->ctx, st, size, k->domain, (const char *const *)s->p.domains,
	                s->p.ndomains, &s->h, xl_reply, k);
}

static int xl_on_stanza(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
	struct xlink *k = arg;
	char *text = NULL;
	size_t len = 0;
	(void)conn;

	if (xmpp_stanza_to_text(st, &text, &len) != XMPP_EOK) {
		log_error(MOD, "%s: out of memory reading a stanza", k->domain);
		return 1;
	}
	xl_trace(k, "in", text, len);
	xmpp_free(k->ctx, text);

	const char *name = xmpp_stanza_get_name(st), *ns = xmpp_stanza_get_ns(st);
	if (name && ns && strcmp(name, "error") == 0 && strcmp(ns, NS_STREAMS) == 0) {
		xl_stream_error(k, st);
		return 1;
	}
	if (k->state == XL_STREAM && k->header_no_id) {
		xl_cause(k, XL_NO_ID_WORDS ", then <%s>", name ? name : "?");
		xl_hangup(k);
		return 1;
	}
	if (k->state == XL_HANDSHAKE) {
		if (name && strcmp(name, "handshake") == 0) {
			xl_up(k);
		} else {
			xl_cause(k,
			         "the server answered the handshake with <%s>, not "
			         "<handshake/>",
			         name ? name : "?");
			xl_hangup(k);
		}
		return 1;
	}
	if (k->state == XL_UP)
		xl_route(k, st, len);
	return 1;
}

static void xl_on_conn(xmpp_conn_t *conn, xmpp_conn_event_t ev, int error,
                       xmpp_stream_error_t *se, void *arg)
{
	struct xlink *k = arg;
	(void)se; /* the stream error arrived as a stanza first: xl_stream_error() */

	if (conn != k->conn)
		return;
	switch (ev) {
	case XMPP_CONN_RAW_CONNECT:
		xl_on_tcp_up(k);
		break;
	case XMPP_CONN_CONNECT:
		xl_on_stream(k);
		break;
	case XMPP_CONN_DISCONNECT:
	case XMPP_CONN_FAIL:
		xl_closed(k, error);
		break;
	}
}

/* --- attempts, failures, back-off -------------------------------------------- */

/* Plain words for a closed connection. libstrophe's `error` is an errno for a
 * plain socket but an SSL_ERROR_* code once TLS runs, so the errno it logged
 * (k->os_errno) is preferred. */
static void xl_default_cause(struct xlink *k, int error)
{
	const struct xlink_set *s = k->set;
	int e = k->os_errno >= 0 ? k->os_errno
	                         : (s->p.tls || error == ECONNABORTED ? 0 : error);

	switch (k->state) {
	case XL_CONNECTING:
		if (e == ECONNREFUSED)
			xl_cause(
			    k, "connection refused: check that the XMPP server runs with "
			       "its component listener on this port");
		else
			xl_cause(k, "cannot connect: %s",
			         e ? strerror(e) : "the connection failed");
		break;
	case XL_STREAM:
		if (k->header_no_id)
			xl_cause(k, XL_NO_ID_WORDS ", then closed the stream without a "
			                           "stream error");
		else if (!s->p.tls)
			xl_cause(k, XPROTO_NO_STREAM_PLAIN_WORDS);
		else
			xl_cause(
			    k,
			    "the server closed the connection before opening a stream");
		break;
	case XL_HANDSHAKE:
		xl_cause(
		    k,
		    "the server closed the connection without answering the handshake");
		break;
	case XL_UP:
		xl_cause(k, "link lost: %s",
		         e ? strerror(e) : "the server closed the connection");
		break;
	case XL_IDLE:
		xl_cause(k, "closed");
		break;
	}
}

static void xl_check_stopped(struct xlink_set *s);

static void xl_closed(struct xlink *k, int error)
{
	struct xlink_set *s = k->set;
	bool was_up = k->state == XL_UP;

	if (k->reg_fd >= 0)
		loop_fd_del(s->loop, k->reg_fd);
	k->reg_fd = -1;
	k->fd = -1;
	k->drain = 0;
	loop_timer_cancel(s->loop, &k->deadline);
	loop_timer_cancel(s->loop, &k->closer);
	if (k->conn && !k->releasing)
		k->dead = k->conn;
	k->conn = NULL;
	k->pend_len = 0;
	xl_default_cause(k, error);
	k->state = XL_IDLE;
	if (k->freeing)
		return;
	stats_link(STATS_LINK_COMPONENT, k->domain, false,
	           s->stopping || k->removing || k->reconnect_now ? NULL : k->cause);
	if (was_up && s->h.state)
		s->h.state(k->domain, false, s->h.arg);
	if (s->stopping || k->removing) {
		if (was_up)
			log_info(MOD, "%s: %s: stream closed", s->server, k->domain);
		xl_check_stopped(s);
		return;
	}
	uint32_t delay;
	if (k->reconnect_now) {
		k->reconnect_now = false;
		k->attempts = 0;
		delay = 0;
		log_info(MOD, "%s: %s: stream closed; reconnecting with the new settings",
		         s->server, k->domain);
	} else {
		k->attempts++;
		delay = xproto_backoff_ms(k->attempts, xproto_jitter(&s->rnd));
		bool changed = strcmp(k->cause, k->last_cause) != 0;
		if (was_up || xproto_log_failure(k->attempts, changed))
			log_warn(MOD, "%s: %s: %s; retrying in %u s (attempt %u)",
			         s->server, k->domain, k->cause, (delay + 999) / 1000,
			         k->attempts);
		else
			log_debug(MOD, "%s: %s: %s; retrying in %u s (attempt %u)",
			          s->server, k->domain, k->cause, (delay + 999) / 1000,
			          k->attempts);
		snprintf(k->last_cause, sizeof(k->last_cause), "%s", k->cause);
	}
	k->next_attempt = loop_now(s->loop) + delay;
	loop_timer_start(s->loop, &k->retry, delay, xl_attempt, k);
}

static void xl_deadline(void *arg)
{
	struct xlink *k = arg;
	if (k->state == XL_STREAM && k->header_no_id)
		xl_cause(k, XL_NO_ID_WORDS ", and no stream error within %u s",
		         XLINK_ATTEMPT_MS / 1000);
	else
		xl_cause(k, "no answer within %u s while %s", XLINK_ATTEMPT_MS / 1000,
		         stage_words[k->state]);
	xl_abort(k);
}

/* Our </stream:stream> got no answer in time: close without it. */
static void xl_closer(void *arg)
{
	xl_abort(arg);
}

static void xl_attempt(void *arg)
{
	struct xlink *k = arg;
	struct xlink_set *s = k->set;
	struct xlink *saved;

	xl_reap(k);
	if (k->conn || s->stopping || k->removing || s->tap)
		return;
	xmpp_conn_t *c = xmpp_conn_new(k->ctx);
	if (!c) {
		snprintf(k->cause, sizeof(k->cause), "out of memory");
		xl_closed(k, 0);
		return;
	}
	k->cause[0] = '\0';
	k->tls_error[0] = '\0';
	k->os_errno = -1;
	k->have_stream_id = false;
	k->header_no_id = false;
	k->fd = -1;
	/* LEGACY_SSL states the intent; raw connections ignore it and xl_on_tcp_up()
	 * starts TLS. The JID's domain is the name libstrophe checks the certificate
	 * against. */
	xmpp_conn_set_flags(c, s->p.tls ? XMPP_CONN_FLAG_LEGACY_SSL
	                                : XMPP_CONN_FLAG_DISABLE_TLS);
	xmpp_conn_set_jid(c, s->p.name);
	if (s->p.ca)
		xmpp_conn_set_cafile(c, s->p.ca);
	xmpp_conn_set_certfail_handler(c, xl_certfail);
	xmpp_conn_set_sockopt_callback(c, xl_sockopt);
	xmpp_handler_add(c, xl_on_stanza, NULL, NULL, NULL, k);
	k->conn = c;
	k->state = XL_CONNECTING;
	log_debug(MOD, "%s: %s: connecting (attempt %u)", s->server, k->domain,
	          k->attempts + 1);
	loop_timer_start(s->loop, &k->deadline, XLINK_ATTEMPT_MS, xl_deadline, k);
	xl_enter(k, &saved);
	int r = xmpp_connect_raw(c, s->p.host, s->p.port, xl_on_conn, k);
	xl_leave(saved);
	if (r != XMPP_EOK) {
		xl_cause(k, "cannot connect to %s (name not resolved, or no socket)",
		         s->p.host);
		xl_abort(k);
		return;
	}
	xl_reap(k);
	xl_sync_fd(k);
}

/* --- configuration ----------------------------------------------------------- */

static void params_free(struct xl_params *p)
{
	free(p->host);
	free_secret(p->secret);
	free(p->ca);
	free(p->name);
	xlink_strv_free(p->domains, p->ndomains);
	memset(p, 0, sizeof(*p));
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int params_from_conf(const struct conf *cf, struct xl_params *p)
{
	memset(p, 0, sizeof(*p));
	if (!cf->xmpp_server.host || !cf->xmpp_secret)
		return -EINVAL;
	p->host = strdup(cf->xmpp_server.host);
	p->port = cf->xmpp_server.port;
	p->secret = strdup(cf->xmpp_secret);
	p->tls = cf->xmpp_tls == CONF_XMPP_TLS_DIRECT;
	p->ca = dup_or_null(cf->xmpp_ca);
	p->name = strdup(cf->xmpp_name ? cf->xmpp_name : cf->xmpp_server.host);
	int err = xlink_component_domains(cf, &p->domains, &p->ndomains);
	if (!err && (!p->host || !p->secret || !p->name || (cf->xmpp_ca && !p->ca)))
		err = -ENOMEM;
	if (err)
		params_free(p);
	return err;
}

static bool params_equal(const struct xl_params *a, const struct xl_params *b)
{
	if (!same(a->host, b->host) || a->port != b->port ||
	    !same(a->secret, b->secret) || a->tls != b->tls || !same(a->ca, b->ca) ||
	    !same(a->name, b->name) || a->ndomains != b->ndomains)
		return false;
	for (size_t i = 0; i < a->ndomains; i++)
		if (strcmp(a->domains[i], b->domains[i]) != 0)
			return false;
	return true;
}

static bool params_has_domain(const struct xl_params *p, const char *d)
{
	for (size_t i = 0; i < p->ndomains; i++)
		if (strcasecmp(p->domains[i], d) == 0)
			return true;
	return false;
}

static void set_server_label(struct xlink_set *s)
{
	bool v6 = strchr(s->p.host, ':') != NULL;
	snprintf(s->server, sizeof(s->server), "%s%s%s:%u", v6 ? "[" : "", s->p.host,
	         v6 ? "]" : "", (unsigned)s->p.port);
}

/* --- links ------------------------------------------------------------------- */

static void xl_free(struct xlink *k)
{
	struct loop *l = k->set->loop;

	k->freeing = true;
	xl_abort(k);
	xl_reap(k);
	loop_timer_cancel(l, &k->retry);
	loop_timer_cancel(l, &k->deadline);
	loop_timer_cancel(l, &k->closer);
	if (k->reg_fd >= 0)
		loop_fd_del(l, k->reg_fd);
	size_t dropped = xqueue_clear(&k->queue);
	if (dropped)
		log_warn(MOD, "%s: %zu queued stanza(s) dropped: the link is gone",
		         k->domain, dropped);
	xqueue_free(&k->queue);
	if (k->ctx)
		xmpp_ctx_free(k->ctx);
	stats_link_forget(STATS_LINK_COMPONENT, k->domain);
	free(k->log);
	free(k->domain);
	free(k->pend);
	free(k);
}

static int xl_new(struct xlink_set *s, const char *domain, struct xlink **kp)
{
	struct xlink *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->set = s;
	k->fd = -1;
	k->reg_fd = -1;
	k->os_errno = -1;
	k->domain = strdup(domain);
	stats_link(STATS_LINK_COMPONENT, domain, false, NULL);
	xmpp_log_t *lg = NULL;
	int err = k->domain ? xqueue_init(&k->queue, XLINK_QUEUE_MAX, XLINK_QUEUE_BYTES)
	                    : -ENOMEM;
	/* The log handler lives in the link: libstrophe keeps the pointer. */
	if (!err) {
		lg = malloc(sizeof(*lg));
		err = lg ? 0 : -ENOMEM;
	}
	if (!err) {
		lg->handler = xl_log;
		lg->userdata = k;
		k->ctx = xmpp_ctx_new(NULL, lg);
		if (!k->ctx)
			err = -ENOMEM;
	}
	if (err) {
		free(lg);
		xqueue_free(&k->queue);
		free(k->domain);
		free(k);
		return err;
	}
	k->log = lg;
	*kp = k;
	return 0;
}

static struct xlink *xl_find(const struct xlink_set *s, const char *domain, size_t len)
{
	for (struct xlink *k = s->links; k; k = k->next)
		if (strlen(k->domain) == len && strncasecmp(k->domain, domain, len) == 0)
			return k;
	return NULL;
}

/* Close the stream cleanly: </stream:stream>, then wait for the server's. */
static void xl_close(struct xlink *k)
{
	struct xlink_set *s = k->set;

	loop_timer_cancel(s->loop, &k->retry);
	if (!k->conn)
		return;
	if (k->state == XL_CONNECTING) {
		xl_abort(k);
		return;
	}
	log_trace(MOD, "%s: out: </stream:stream>", k->domain);
	xl_flush(k);
	xmpp_disconnect(k->conn);
	k->dirty = true;
	loop_timer_start(s->loop, &k->closer, XLINK_CLOSE_MS, xl_closer, k);
}

/* Free links whose domain left the configuration once they are closed. Only from
 * the loop, never inside a libstrophe call. */
static void xl_reap_removed(struct xlink_set *s)
{
	for (struct xlink **pp = &s->links; *pp;) {
		struct xlink *k = *pp;
		if (k->removing && !k->conn) {
			*pp = k->next;
			xl_free(k);
		} else {
			pp = &k->next;
		}
	}
}

static int xl_idle(void *arg)
{
	struct xlink_set *s = arg;
	int wait = -1;

	for (struct xlink *k = s->links; k; k = k->next)
		if (k->conn && (k->dirty || k->drain))
			xl_pump(k);
	xl_reap_removed(s);
	/* A handler run above may have queued data on a link already passed. */
	for (struct xlink *k = s->links; k; k = k->next)
		if (k->conn && (k->dirty || k->drain))
			wait = 0;
	return wait;
}

static void xl_done(void *arg)
{
	struct xlink_set *s = arg;
	loop_timer_cancel(s->loop, &s->stop_timer);
	if (s->done) {
		void (*done)(void *) = s->done;
		s->done = NULL;
		done(s->done_arg);
	}
}

static void xl_check_stopped(struct xlink_set *s)
{
	if (!s->stopping)
		return;
	for (struct xlink *k = s->links; k; k = k->next)
		if (k->conn)
			return;
	/* Report from the loop, not from inside the libstrophe call that closed the
	 * last stream. */
	loop_timer_start(s->loop, &s->done_timer, 0, xl_done, s);
}

static void xl_stop_deadline(void *arg)
{
	struct xlink_set *s = arg;
	for (struct xlink *k = s->links; k; k = k->next)
		xl_abort(k);
	xl_check_stopped(s);
}

/* --- public API -------------------------------------------------------------- */

int xlink_set_new(struct xlink_set **sp, struct loop *l, const struct conf *cf,
                  const struct xlink_handlers *h)
{
	struct xlink_set *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return -ENOMEM;
	s->loop = l;
	if (h)
		s->h = *h;
	s->rnd = (uint32_t)(loop_clock_ms() ^ ((uint64_t)getpid() * 2654435761u)) | 1u;
	if (cf->xmpp_transport == CONF_XMPP_S2S) {
		xmpp_initialize();
		s->sctx = xmpp_ctx_new(NULL, NULL);
		if (!s->sctx) {
			err = -ENOMEM;
			goto fail;
		}
		err = xs2s_new(&s->s2s, l, cf, s->sctx, &s->h);
		if (err)
			goto fail;
		*sp = s;
		return 0;
	}
	err = params_from_conf(cf, &s->p);
	if (err)
		goto fail;
	set_server_label(s);
	xmpp_initialize();
	s->sctx = xmpp_ctx_new(NULL, NULL);
	if (!s->sctx) {
		err = -ENOMEM;
		goto fail;
	}
	err = xtls_watchdog_init();
	if (err) {
		log_error(MOD, "cannot set up the TLS handshake timer: %s",
		          strerror(-err));
		goto fail;
	}
	struct xlink **tail = &s->links;
	for (size_t i = 0; i < s->p.ndomains; i++) {
		err = xl_new(s, s->p.domains[i], tail);
		if (err)
			goto fail;
		tail = &(*tail)->next;
	}
	if (!s->links)
		log_warn(MOD, "domains.map has no SIP-homed domain: no component link to "
		              "open");
	err = loop_idle_add(l, xl_idle, s);
	if (err)
		goto fail;
	/* The first attempts run on the loop's first turn, not in here: a caller
	 * that replaces the sockets (xlink_set_tap) before then opens none. */
	for (struct xlink *k = s->links; k; k = k->next)
		loop_timer_start(l, &k->retry, 0, xl_attempt, k);
	*sp = s;
	return 0;
fail:
	xlink_set_free(s);
	return err;
}

int xlink_set_apply(struct xlink_set *s, const struct conf *cf)
{
	struct xl_params np;
	int err;

	if ((cf->xmpp_transport == CONF_XMPP_S2S) != (s->s2s != NULL)) {
		log_error(MOD,
		          "[xmpp] transport changed: restart the bridge to switch "
		          "between component and server-to-server; keeping the old one");
		return -EINVAL;
	}
	if (s->s2s)
		return xs2s_apply(s->s2s, cf);
	err = params_from_conf(cf, &np);

	if (err) {
		log_error(
		    MOD, "cannot apply the new [xmpp] settings: %s; keeping the old ones",
		    strerror(-err));
		return err;
	}
	if (params_equal(&s->p, &np)) {
		params_free(&np);
		log_debug(MOD, "[xmpp] and the component domains are unchanged");
		return 0;
	}
	/* Create the new links first, so running out of memory changes nothing. */
	struct xlink *added = NULL, **tail = &added;
	for (size_t i = 0; i < np.ndomains; i++) {
		if (xl_find(s, np.domains[i], strlen(np.domains[i])))
			continue;
		err = xl_new(s, np.domains[i], tail);
		if (err) {
			while (added) {
				struct xlink *k = added;
				added = k->next;
				xl_free(k);
			}
			params_free(&np);
			return err;
		}
		tail = &(*tail)->next;
	}
	params_free(&s->p);
	s->p = np;
	set_server_label(s);
	log_info(MOD, "%s: applying the changed [xmpp] settings: reconnecting",
	         s->server);
	for (struct xlink *k = s->links; k; k = k->next) {
		if (!params_has_domain(&s->p, k->domain)) {
			k->removing = true;
			size_t dropped = xqueue_clear(&k->queue);
			log_info(MOD, "%s: no longer in domains.map: closing its link%s",
			         k->domain,
			         dropped ? " and dropping its queued stanzas" : "");
			xl_close(k);
			continue;
		}
		k->attempts = 0;
		k->last_cause[0] = '\0';
		if (k->conn) {
			k->reconnect_now = true;
			xl_close(k);
		} else {
			loop_timer_start(s->loop, &k->retry, 0, xl_attempt, k);
		}
	}
	struct xlink **end = &s->links;
	while (*end)
		end = &(*end)->next;
	*end = added;
	for (struct xlink *k = added; k; k = k->next)
		xl_attempt(k);
	xl_reap_removed(s);
	return 0;
}

void xlink_set_stop(struct xlink_set *s, void (*done)(void *arg), void *arg)
{
	if (s->s2s) {
		s->stopping = true;
		xs2s_stop(s->s2s, done, arg);
		return;
	}
	s->stopping = true;
	s->done = done;
	s->done_arg = arg;
	for (struct xlink *k = s->links; k; k = k->next) {
		size_t dropped = xqueue_clear(&k->queue);
		if (dropped)
			log_warn(MOD, "%s: stopping: %zu queued stanza(s) not sent",
			         k->domain, dropped);
		xl_close(k);
	}
	loop_timer_start(s->loop, &s->stop_timer, XLINK_CLOSE_MS + 500, xl_stop_deadline,
	                 s);
	xl_check_stopped(s);
}

void xlink_set_free(struct xlink_set *s)
{
	if (!s)
		return;
	s->stopping = true;
	xs2s_free(s->s2s);
	while (s->links) {
		struct xlink *k = s->links;
		s->links = k->next;
		xl_free(k);
	}
	loop_timer_cancel(s->loop, &s->stop_timer);
	loop_timer_cancel(s->loop, &s->done_timer);
	if (s->loop)
		loop_idle_del(s->loop, xl_idle, s);
	if (s->sctx) {
		xmpp_ctx_free(s->sctx);
		xmpp_shutdown();
	}
	xtls_watchdog_fini();
	params_free(&s->p);
	free(s);
}

/* & < > and " escaped (values are written in double quotes), as libstrophe does. */
/* Escape t for XML text, or with attr for an attribute value: there tab, line
 * feed and carriage return are written as character references too, or the
 * reader's attribute-value normalization (XML 1.0 section 3.3.3) would turn them
 * into spaces. */
static void put_esc(struct sbuf *sb, const char *t, bool attr)
{
	size_t run = 0, i = 0;
	for (; t[i]; i++) {
		const char *rep = t[i] == '&'            ? "&amp;"
		                  : t[i] == '<'          ? "&lt;"
		                  : t[i] == '>'          ? "&gt;"
		                  : t[i] == '"'          ? "&quot;"
		                  : attr && t[i] == '\t' ? "&#9;"
		                  : attr && t[i] == '\n' ? "&#10;"
		                  : attr && t[i] == '\r' ? "&#13;"
		                                         : NULL;
		if (!rep)
			continue;
		sbuf_putn(sb, t + run, i - run);
		sbuf_puts(sb, rep);
		run = i + 1;
	}
	sbuf_putn(sb, t + run, i - run);
}

/* pns: the parent's namespace; a child's equal xmlns is left out, as libstrophe
 * does (the parser gives every child its inherited xmlns). */
static void stanza_put(struct sbuf *sb, xmpp_stanza_t *st, const char *pns,
                       unsigned depth)
{
	if (xmpp_stanza_is_text(st)) {
		const char *t = xmpp_stanza_get_text_ptr(st);
		if (t)
			put_esc(sb, t, false);
		return;
	}
	const char *name = xmpp_stanza_get_name(st);
	if (!name || depth > 64) {
		sb->err = -EINVAL;
		return;
	}
	sbuf_putc(sb, '<');
	sbuf_puts(sb, name);
	const char *attr[2 * 16];
	int n = xmpp_stanza_get_attribute_count(st);
	if (n > 16) {
		sb->err = -E2BIG; /* the bridge's stanzas carry a handful */
		return;
	}
	n = xmpp_stanza_get_attributes(st, attr, 2 * 16);
	for (int i = 0; i + 1 < n; i += 2) {
		if (pns && strcmp(attr[i], "xmlns") == 0 && strcmp(attr[i + 1], pns) == 0)
			continue;
		sbuf_putc(sb, ' ');
		sbuf_puts(sb, attr[i]);
		sbuf_puts(sb, "=\"");
		put_esc(sb, attr[i + 1], true);
		sbuf_putc(sb, '"');
	}
	xmpp_stanza_t *c = xmpp_stanza_get_children(st);
	if (!c) {
		sbuf_puts(sb, "/>");
		return;
	}
	sbuf_putc(sb, '>');
	const char *ns = xmpp_stanza_get_attribute(st, "xmlns");
	for (; c; c = xmpp_stanza_get_next(c))
		stanza_put(sb, c, ns, depth + 1);
	sbuf_puts(sb, "</");
	sbuf_puts(sb, name);
	sbuf_putc(sb, '>');
}

int xlink_stanza_text(xmpp_stanza_t *st, char **outp, size_t *lenp)
{
	struct sbuf sb;
	sbuf_init(&sb);
	sbuf_reserve(&sb, 512);
	stanza_put(&sb, st, NULL, 0);
	int err = sb.err;
	*outp = sbuf_take(&sb, lenp);
	return *outp ? 0 : err ? err : -ENOMEM;
}

int xlink_send(struct xlink_set *s, xmpp_stanza_t *st)
{
	struct xroute_jid from;
	char *buf = NULL;
	size_t len = 0;

	stats_stanza(STATS_OUT, xmpp_stanza_get_name(st));
	if (s->s2s)
		return xs2s_send(s->s2s, st);
	if (s->stopping)
		return -ESHUTDOWN;
	if (xroute_jid_split(xmpp_stanza_get_from(st), &from) != 0)
		return -EINVAL;
	struct xlink *k = xl_find(s, from.domain, from.domain_len);
	if (!k || k->removing)
		return -ENOENT;
	int err = xlink_stanza_text(st, &buf, &len);
	if (err)
		return err;
	if (len > XLINK_MAX_STANZA) {
		err = -E2BIG;
	} else if (k->state == XL_UP) {
		xl_send_text(k, buf, len);
	} else {
		char *copy = strndup(buf, len);
		err = copy ? xqueue_push(&k->queue, copy, len) : -ENOMEM;
		if (err)
			free(copy);
	}
	free(buf);
	return err;
}

xmpp_ctx_t *xlink_stanza_ctx(struct xlink_set *s)
{
	return s->sctx;
}

bool xlink_is_up(const struct xlink_set *s, const char *domain)
{
	if (s->s2s)
		return xs2s_is_up(s->s2s, domain);
	if (domain) {
		const struct xlink *k = xl_find(s, domain, strlen(domain));
		return k && k->state == XL_UP;
	}
	if (!s->links)
		return false;
	for (const struct xlink *k = s->links; k; k = k->next)
		if (k->state != XL_UP)
			return false;
	return true;
}

static unsigned retry_after_one(const struct xlink_set *s, const struct xlink *k)
{
	if (k->state == XL_UP)
		return 0;
	if (!loop_timer_running(&k->retry))
		return 1; /* an attempt is under way */
	uint64_t now = loop_now(s->loop);
	uint64_t ms = k->next_attempt > now ? k->next_attempt - now : 0;
	return (unsigned)((ms + 999) / 1000) + 1u;
}

unsigned xlink_retry_after(const struct xlink_set *s, const char *domain)
{
	unsigned best = 0;
	for (const struct xlink *k = s->links; k; k = k->next) {
		if (domain && strcasecmp(domain, k->domain) != 0)
			continue;
		unsigned r = retry_after_one(s, k);
		if (r > best)
			best = r;
	}
	return best;
}

size_t xlink_queued(const struct xlink_set *s)
{
	if (s->s2s)
		return xs2s_queued(s->s2s);
	size_t n = 0;
	for (const struct xlink *k = s->links; k; k = k->next)
		n += xqueue_count(&k->queue);
	return n;
}

size_t xlink_count(const struct xlink_set *s)
{
	size_t n = 0;
	if (s->s2s)
		return xs2s_count(s->s2s);
	for (const struct xlink *k = s->links; k; k = k->next)
		n++;
	return n;
}

const char *xlink_domain(const struct xlink_set *s, size_t i)
{
	if (s->s2s)
		return xs2s_domain(s->s2s, i);
	for (const struct xlink *k = s->links; k; k = k->next)
		if (i-- == 0)
			return k->domain;
	return NULL;
}

/* --- test seam (fuzzing) ----------------------------------------------------- */

void xlink_set_tap(struct xlink_set *s, xlink_tap_h *h, void *arg)
{
	s->tap = h;
	s->tap_arg = arg;
	for (struct xlink *k = s->links; k; k = k->next) {
		xl_abort(k);
		loop_timer_cancel(s->loop, &k->retry);
		xl_up(k);
	}
}

int xlink_feed(struct xlink_set *s, const char *domain, const char *text, size_t len)
{
	struct xlink *k = domain ? xl_find(s, domain, strlen(domain)) : NULL;
	if (!s->tap || !k || k->state != XL_UP)
		return -EINVAL;
	char *z = strndup(text, len);
	if (!z)
		return -ENOMEM;
	xmpp_stanza_t *st = xmpp_stanza_new_from_string(k->ctx, z);
	free(z);
	if (!st)
		return -EBADMSG;
	xl_on_stanza(NULL, st, k);
	xmpp_stanza_release(st);
	return 0;
}

int xlink_s2s_feed(struct xlink_set *s, const char *bytes, size_t len, size_t piece,
                   const char *pre_from, const char *pre_to, xlink_tap_h *out, void *arg)
{
	if (!s->s2s)
		return -EINVAL;
	return xs2s_feed(s->s2s, bytes, len, piece, pre_from, pre_to, out, arg);
}

/*
 * xmppsink: a minimal XMPP server for the benchmark. It accepts XEP-0114
 * component connections (plain TCP; handshake SHA1(stream id + secret) in hex),
 * counts and time-stamps the stanzas it receives, answers presence subscriptions
 * and probes, and generates XMPP->SIP load (messages, presence, subscriptions)
 * on command.
 *
 *   xmppsink -p PORT -c CTLPORT [-s SECRET]
 *   xmppsink -p PORT -c CTLPORT --s2s DOMAIN --to DOMAIN --connect PORT
 *            --cert CERT --key KEY --ca CA
 *
 * S2S mode (--s2s): the sink is instead the XMPP server of DOMAIN (xmpp.test)
 * federating with the bridge, which hosts the --to domain (sip.test), over
 * RFC 6120 server-to-server streams with STARTTLS (OpenSSL, TLS 1.2 or later)
 * and SASL EXTERNAL (XEP-0178); no dialback. Two streams, one per direction:
 *   - in:  the bridge connects to -p (its [s2s-peer DOMAIN] address); the sink
 *          offers STARTTLS (required), then EXTERNAL when the bridge's
 *          certificate chains to CA and names the stream's from (it asks for a
 *          client certificate), answers <success/>, and then counts the
 *          stanzas exactly as on a component link;
 *   - out: the sink connects to 127.0.0.1:--connect (the bridge's [s2s] listen),
 *          STARTTLS (the bridge's certificate must chain to CA and name --to),
 *          EXTERNAL with CERT (which names DOMAIN), and sends there what it
 *          generates and its answers to subscriptions and probes. It
 *          reconnects every 50 ms while that stream is down, and pings the
 *          bridge (XEP-0199) once it is up so that the bridge opens its own
 *          stream; "up" (stats, kinds) is 1 when both streams are up.
 * The stream reader is a byte scanner, not an XML parser: it finds tags by
 * '<' and '>' (skipping quoted attribute values), stanzas by element depth,
 * and elements by the name right after '<'. It does not check well-formedness,
 * namespaces (stream:features and the like are matched by their usual prefix),
 * the stream ids, version or the from/to of stanzas, entities, CDATA or
 * comments containing '>'; features are read by substring ("starttls",
 * "EXTERNAL"). What the bridge sends is well-formed, and the bridge checks
 * everything the sink sends it.
 *
 * Control protocol (one line per command on CTLPORT, one line per answer):
 *   reset                          forget counts and samples          -> ok
 *   stats                          -> n=MEASURED first=NS last=NS total=N subs=N up=0|1
 *   lat                            -> n=N p50=US p99=US p999=US (and forgets nothing)
 *   gen KIND N WIN USERS RATE      send N stanzas (KIND msg | pres | sub), at most
 *                                  WIN ahead of the acks, RATE per second (0: as
 *                                  fast as the window allows); stops the other
 *                                  kinds' generators            -> ok
 *   add KIND N WIN USERS RATE      the same, alongside the generators running
 *                                  (loadgen mix: msg and pres at once) -> ok
 *   ack COUNT                      the load generator has seen COUNT of what the
 *                                  last gen/add sends (no answer)
 *   ack KIND COUNT                 the same for KIND's generator (no answer)
 *   kinds                          -> msg=N pres=N gmsg=N gpres=N gsub=N
 *                                  msg_p50 msg_p99 pres_p50 pres_p99 (us) up=0|1:
 *                                  measured <message>s and <presence>s since
 *                                  reset, what each generator has sent; the
 *                                  percentiles are of the samples since the last
 *                                  kinds, which it forgets, with lat's (a long
 *                                  run's samples would grow without bound)
 *   stop                           end every generator -> ok
 *   say STANZA                     send STANZA (one line of XML) on the component
 *                                  link as it is (no answer; loadgen mix revokes
 *                                  subscriptions with it)
 * A stanza is "measured" when it carries a time stamp marker "#T<ns>#" (see
 * bench.h); its latency is now minus that stamp.
 */
#include <getopt.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/epoll.h>

#include "bench.h"

enum ckind { C_LISTEN, C_CTL_LISTEN, C_COMP, C_CTL, C_S2S_IN, C_S2S_OUT };
enum cstate { CS_HEADER, CS_HANDSHAKE, CS_UP };

struct conn {
	enum ckind kind;
	enum cstate st;
	int fd;
	int depth;    /* element depth: 1 inside the stream */
	size_t scan;  /* where the stanza scanner goes on */
	size_t start; /* where the current stanza began */
	char id[32];
	struct bbuf in, out;
	bool want_out;
	/* S2S */
	SSL *ssl;      /* after STARTTLS */
	bool tls;      /* the TLS handshake has ended */
	bool authed;   /* SASL EXTERNAL succeeded */
	bool restart;  /* the scanner stopped: a new stream (or TLS) follows */
	bool doomed;   /* close after this input */
	bool starttls; /* start TLS once the scanner has stopped */
	char from[256];
};

static struct {
	int ep;
	const char *secret;
	struct conn *comp; /* the newest component link that is up; S2S: the
	                      stream to the bridge, once authenticated */
	struct conn *ctl;
	/* S2S mode */
	const char *domain, *to; /* ours (xmpp.test), the bridge's (sip.test) */
	int connect_port;
	SSL_CTX *srv, *cli;
	struct conn *s2s_in;  /* the bridge's stream to us, authenticated */
	struct conn *s2s_out; /* our stream to the bridge, up or on its way */
	int64_t next_dial, next_ping;
	/* counters */
	uint64_t measured, total, subs;
	uint64_t nmsg, npres; /* measured, by stanza */
	int64_t first, last;
	struct lat lat;
	struct lat ilat[2]; /* since the last kinds: <message>, <presence> */
	/* generators, one per kind; last: the one a plain ack and stats mean */
	struct gen {
		uint64_t n, sent, win, acked, users, rate;
		int64_t start;
	} gen[3];
	int glast;
} g;

static const char *const gen_kinds[3] = {"msg", "pres", "sub"};

static int gen_kind(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(s, gen_kinds[i]) == 0)
			return i;
	return -1;
}

/* Some generator still has stanzas to send at a rate: poll, do not block. */
static bool gen_paced(void)
{
	for (int i = 0; i < 3; i++)
		if (g.gen[i].sent < g.gen[i].n && g.gen[i].rate)
			return true;
	return false;
}

static void arm(struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0u),
	                         .data.ptr = c};
	epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static struct conn *conn_add(int fd, enum ckind kind)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		exit(2);
	c->fd = fd;
	c->kind = kind;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev);
	return c;
}

static void conn_close(struct conn *c)
{
	epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (g.comp == c)
		g.comp = NULL;
	if (g.ctl == c)
		g.ctl = NULL;
	if (g.s2s_out == c)
		g.s2s_out = NULL;
	if (g.s2s_in == c) {
		g.s2s_in = NULL;
		fprintf(stderr, "xmppsink: the bridge's S2S stream is down\n");
	}
	if (c->kind == C_S2S_OUT && c->authed)
		fprintf(stderr, "xmppsink: S2S stream to the bridge is down\n");
	SSL_free(c->ssl);
	free(c->in.p);
	free(c->out.p);
	free(c);
}

/* Write what the socket (or TLS) takes; -1 when the peer is gone. During a
 * TLS handshake nothing is written: the output waits for its end. */
static int conn_flush(struct conn *c)
{
	if (!c->ssl)
		return bbuf_flush(&c->out, c->fd);
	if (!c->tls)
		return 0;
	while (bbuf_used(&c->out)) {
		/* never shorter than a write OpenSSL asked to retry: the data only
		 * grows at the end until a write succeeds */
		size_t n = bbuf_used(&c->out);
		ERR_clear_error();
		int r = SSL_write(c->ssl, c->out.p + c->out.off,
		                  (int)(n > (1u << 20) ? 1u << 20 : n));
		if (r <= 0) {
			int e = SSL_get_error(c->ssl, r);
			return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0
			                                                             : -1;
		}
		c->out.off += (size_t)r;
	}
	c->out.off = c->out.len = 0;
	return 0;
}

/* Read what is there (through TLS: until OpenSSL has nothing more, so that
 * no decrypted bytes wait unsignalled); as bbuf_fill. */
static ssize_t conn_fill(struct conn *c)
{
	if (!c->ssl)
		return bbuf_fill(&c->in, c->fd);
	ssize_t got = 0;
	for (;;) {
		bbuf_reserve(&c->in, 65536);
		size_t room = c->in.cap - c->in.len;
		ERR_clear_error();
		int r = SSL_read(c->ssl, c->in.p + c->in.len,
		                 (int)(room > (1u << 30) ? 1u << 30 : room));
		if (r > 0) {
			c->in.len += (size_t)r;
			got += r;
			continue;
		}
		int e = SSL_get_error(c->ssl, r);
		if (got)
			return got;
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return -2;
		return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
	}
}

static void send_out(struct conn *c, const char *s, size_t n)
{
	bbuf_put(&c->out, s, n);
	if (!c->want_out) {
		if (conn_flush(c) == 0 && bbuf_used(&c->out)) {
			c->want_out = true;
			arm(c);
		}
	}
}

static void send_str(struct conn *c, const char *s)
{
	send_out(c, s, strlen(s));
}

/* The value of attribute name in the start tag at p (either quote), or NULL. */
static const char *attr(const char *p, size_t n, const char *name, size_t *lenp)
{
	size_t nl = strlen(name);
	const char *end = memchr(p, '>', n);
	if (!end)
		end = p + n;
	for (const char *q = p; q + nl + 2 < end; q++) {
		if (q[-1] != ' ' || memcmp(q, name, nl) != 0 || q[nl] != '=')
			continue;
		char quote = q[nl + 1];
		const char *v = q + nl + 2;
		const char *e = memchr(v, quote, (size_t)(end - v));
		if (!e)
			return NULL;
		*lenp = (size_t)(e - v);
		return v;
	}
	return NULL;
}

static void comp_reply_presence(struct conn *c, const char *st, size_t n, bool subscribe)
{
	size_t fl = 0, tl = 0;
	const char *from = attr(st, n, "from", &fl), *to = attr(st, n, "to", &tl);
	char buf[1024];
	int k;

	if (!from || !to || fl > 300 || tl > 300)
		return;
	if (subscribe) {
		k = snprintf(buf, sizeof(buf),
		             "<presence type='subscribed' from='%.*s' to='%.*s'/>",
		             (int)tl, to, (int)fl, from);
		send_out(c, buf, (size_t)k);
	}
	k = snprintf(
	    buf, sizeof(buf),
	    "<presence from='%.*s/bench' to='%.*s'><priority>1</priority></presence>",
	    (int)tl, to, (int)fl, from);
	send_out(c, buf, (size_t)k);
}

static void on_stanza(struct conn *c, const char *st, size_t n)
{
	int64_t now = bench_now_ns();
	g.total++;
	if (n > 9 && memcmp(st, "<presence", 9) == 0) {
		size_t tl = 0;
		const char *type = attr(st, n, "type", &tl);
		/* S2S: answers go on our own stream to the bridge */
		struct conn *rc = c->kind == C_S2S_IN ? g.comp : c;
		if (type && tl == 9 && memcmp(type, "subscribe", 9) == 0) {
			g.subs++;
			if (rc)
				comp_reply_presence(rc, st, n, true);
			return;
		}
		if (type && tl == 5 && memcmp(type, "probe", 5) == 0) {
			if (rc)
				comp_reply_presence(rc, st, n, false);
			return;
		}
	}
	int64_t t = bench_marker(st, n);
	if (!t)
		return;
	if (!g.measured)
		g.first = now;
	g.last = now;
	g.measured++;
	lat_add(&g.lat, now - t);
	bool pres = st[1] == 'p';
	if (pres)
		g.npres++;
	else
		g.nmsg++;
	lat_add(&g.ilat[pres], now - t);
}

static void s2s_header(struct conn *c, const char *p, size_t n);
static void s2s_element(struct conn *c, const char *p, size_t n);

/* A top-level element of the stream. */
static void element(struct conn *c, const char *p, size_t n)
{
	if (c->kind == C_COMP)
		on_stanza(c, p, n);
	else
		s2s_element(c, p, n);
}

/* Split the stream into top-level stanzas by element depth. */
static void comp_scan(struct conn *c)
{
	struct bbuf *b = &c->in;
	size_t i = c->scan > b->off ? c->scan : b->off;

	for (;;) {
		char *lt = memchr(b->p + i, '<', b->len - i);
		if (!lt) {
			i = b->len;
			break;
		}
		i = (size_t)(lt - b->p);
		size_t j = i + 1;
		char quote = 0;
		for (; j < b->len; j++) {
			char ch = b->p[j];
			if (quote) {
				if (ch == quote)
					quote = 0;
			} else if (ch == '\'' || ch == '"') {
				quote = ch;
			} else if (ch == '>') {
				break;
			}
		}
		if (j >= b->len)
			break; /* the tag is not complete yet */
		if (i + 1 < b->len && (b->p[i + 1] == '?' || b->p[i + 1] == '!')) {
			i = j + 1;
			continue;
		}
		if (b->p[i + 1] == '/') {
			c->depth--;
			if (c->depth == 1)
				element(c, b->p + c->start, j + 1 - c->start);
			if (c->depth == 0) /* </stream:stream>: close ours too */
				send_out(c, "</stream:stream>", 16);
			if (c->depth < 0)
				c->depth = 0;
		} else if (b->p[j - 1] == '/') {
			if (c->depth == 1)
				element(c, b->p + i, j + 1 - i);
		} else {
			if (c->depth == 1)
				c->start = i;
			else if (c->depth == 0 && c->kind != C_COMP)
				s2s_header(c, b->p + i, j + 1 - i);
			c->depth++;
		}
		i = j + 1;
		if (c->restart || c->doomed) {
			/* a new stream (or TLS) starts: nothing of the old follows */
			b->off = b->len = 0;
			c->scan = c->start = 0;
			c->depth = 0;
			c->restart = false;
			return;
		}
	}
	/* Keep the unfinished stanza (or nothing) at the front of the buffer. */
	size_t keep = c->depth > 1 ? c->start : i;
	memmove(b->p, b->p + keep, b->len - keep);
	b->len -= keep;
	b->off = 0;
	c->start = c->depth > 1 ? c->start - keep : 0;
	c->scan = i - keep;
}

static void comp_input(struct conn *c)
{
	struct bbuf *b = &c->in;
	if (c->st == CS_HEADER) {
		char *s = memmem(b->p + b->off, bbuf_used(b), "<stream:stream", 14);
		char *e = s ? memchr(s, '>', (size_t)(b->p + b->len - s)) : NULL;
		if (!e)
			return;
		static unsigned n;
		snprintf(c->id, sizeof(c->id), "bench%u%lld", ++n,
		         (long long)bench_now_ns());
		size_t tl = 0;
		const char *to = attr(s, (size_t)(e - s) + 1, "to", &tl);
		char hdr[512];
		int k = snprintf(hdr, sizeof(hdr),
		                 "<?xml version='1.0'?><stream:stream "
		                 "xmlns:stream='http://etherx.jabber.org/streams' "
		                 "xmlns='jabber:component:accept' from='%.*s' id='%s'>",
		                 to ? (int)tl : 0, to ? to : "", c->id);
		send_out(c, hdr, (size_t)k);
		b->off = (size_t)(e + 1 - b->p);
		c->st = CS_HANDSHAKE;
		c->depth = 1;
	}
	if (c->st == CS_HANDSHAKE) {
		char *s = memmem(b->p + b->off, bbuf_used(b), "<handshake>", 11);
		char *e =
		    s ? memmem(s, (size_t)(b->p + b->len - s), "</handshake>", 12) : NULL;
		if (!e)
			return;
		char in[256], hex[41];
		unsigned char md[SHA_DIGEST_LENGTH];
		snprintf(in, sizeof(in), "%s%s", c->id, g.secret);
		SHA1((const unsigned char *)in, strlen(in), md);
		for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		s += 11;
		if ((size_t)(e - s) != 40 || memcmp(s, hex, 40) != 0) {
			static const char bad[] =
			    "<stream:error><not-authorized "
			    "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
			    "</stream:error></stream:stream>";
			send_out(c, bad, sizeof(bad) - 1);
			fprintf(stderr, "xmppsink: handshake refused\n");
			c->st = CS_HEADER;
			return;
		}
		send_out(c, "<handshake/>", 12);
		b->off = (size_t)(e + 12 - b->p);
		c->st = CS_UP;
		g.comp = c;
		fprintf(stderr, "xmppsink: component link up\n");
	}
	comp_scan(c);
}

/* ---- S2S mode ---- */

#define NS_STREAM_ATTRS                                                                  \
	"xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "         \
	"version='1.0'"

static bool link_up(void)
{
	return g.comp && (!g.domain || g.s2s_in);
}

/* The name of the element whose start tag is at p, into buf. */
static void elem_name(const char *p, size_t n, char *buf, size_t len)
{
	size_t k = 0;
	for (size_t i = 1; i < n && k + 1 < len; i++) {
		char ch = p[i];
		if (ch == ' ' || ch == '>' || ch == '/' || ch == '\t' || ch == '\r' ||
		    ch == '\n')
			break;
		buf[k++] = ch;
	}
	buf[k] = '\0';
}

static void s2s_input(struct conn *c);

/* Ask the bridge something it answers over its own stream to us (XEP-0199),
 * so that stream is up before a measurement starts. */
static void s2s_ping(void)
{
	char buf[256];
	int k = snprintf(buf, sizeof(buf),
	                 "<iq type='get' id='bench-ping' from='%s' to='%s'>"
	                 "<ping xmlns='urn:xmpp:ping'/></iq>",
	                 g.domain, g.to);
	if (g.comp)
		send_out(g.comp, buf, (size_t)k);
	g.next_ping = bench_now_ns() + 1000000000;
}

/* The TLS handshake has ended: a new stream starts on top of it. */
static void tls_done(struct conn *c)
{
	c->tls = true;
	c->depth = 0;
	c->in.off = c->in.len = 0;
	c->scan = c->start = 0;
	if (c->kind == C_S2S_OUT) {
		char hdr[512];
		int k = snprintf(hdr, sizeof(hdr),
		                 "<?xml version='1.0'?><stream:stream " NS_STREAM_ATTRS
		                 " from='%s' to='%s'>",
		                 g.domain, g.to);
		send_out(c, hdr, (size_t)k);
	}
	if (c->want_out != (bbuf_used(&c->out) > 0)) {
		c->want_out = bbuf_used(&c->out) > 0;
		arm(c);
	}
	/* records that came with the handshake's last flight wait in OpenSSL */
	s2s_input(c);
}

static void tls_step(struct conn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		tls_done(c);
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		bool w = e == SSL_ERROR_WANT_WRITE;
		if (c->want_out != w) {
			c->want_out = w;
			arm(c);
		}
		return;
	}
	fprintf(stderr, "xmppsink: S2S TLS handshake failed (%s): ",
	        c->kind == C_S2S_IN ? "the bridge's stream" : "our stream");
	ERR_print_errors_fp(stderr);
	c->doomed = true;
}

static void tls_start(struct conn *c)
{
	c->starttls = false;
	if (bbuf_used(&c->out)) { /* <proceed/> did not leave at once */
		fprintf(stderr, "xmppsink: S2S: plain output still queued at STARTTLS\n");
		c->doomed = true;
		return;
	}
	c->ssl = SSL_new(c->kind == C_S2S_IN ? g.srv : g.cli);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		c->doomed = true;
		return;
	}
	if (c->kind == C_S2S_IN) {
		SSL_set_accept_state(c->ssl);
	} else {
		SSL_set_connect_state(c->ssl);
		SSL_set_tlsext_host_name(c->ssl, g.to);
		SSL_set1_host(c->ssl, g.to); /* checked by the handshake */
	}
	tls_step(c);
}

/* Is the peer's certificate (chain to --ca, name) good for domain? */
static bool peer_cert_ok(struct conn *c, const char *domain, char *why, size_t n)
{
	X509 *x = SSL_get1_peer_certificate(c->ssl);
	long vr = SSL_get_verify_result(c->ssl);
	bool ok = false;
	if (!x)
		snprintf(why, n, "no certificate");
	else if (vr != X509_V_OK)
		snprintf(why, n, "chain: %s", X509_verify_cert_error_string(vr));
	else if (X509_check_host(x, domain, 0, 0, NULL) != 1)
		snprintf(why, n, "it does not name %s", domain);
	else
		ok = true;
	X509_free(x);
	return ok;
}

/* The peer's stream header (at depth 0): on the bridge's stream, answer it with
 * ours and the features of where we are; on ours, features follow. */
static void s2s_header(struct conn *c, const char *p, size_t n)
{
	if (c->kind != C_S2S_IN)
		return;
	size_t fl = 0, tl = 0;
	const char *from = attr(p, n, "from", &fl), *to = attr(p, n, "to", &tl);
	if (!from || fl >= sizeof(c->from) || !to || tl > 200) {
		fprintf(stderr, "xmppsink: S2S: a stream header without from or to\n");
		c->doomed = true;
		return;
	}
	memcpy(c->from, from, fl);
	c->from[fl] = '\0';
	static unsigned sn;
	snprintf(c->id, sizeof(c->id), "s2s%u%lld", ++sn, (long long)bench_now_ns());
	char buf[1024];
	int k = snprintf(buf, sizeof(buf),
	                 "<?xml version='1.0'?><stream:stream " NS_STREAM_ATTRS
	                 " from='%.*s' to='%s' id='%s'><stream:features>",
	                 (int)tl, to, c->from, c->id);
	send_out(c, buf, (size_t)k);
	char why[300];
	if (!c->tls)
		send_str(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
		            "<required/></starttls>");
	else if (c->authed)
		;
	else if (peer_cert_ok(c, c->from, why, sizeof(why)))
		send_str(c, "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
		            "<mechanism>EXTERNAL</mechanism></mechanisms>");
	else
		fprintf(stderr,
		        "xmppsink: S2S: the bridge's certificate is no good for %s (%s): "
		        "no EXTERNAL offered\n",
		        c->from, why);
	send_str(c, "</stream:features>");
}

static void s2s_element(struct conn *c, const char *p, size_t n)
{
	char name[64];
	elem_name(p, n, name, sizeof(name));
	if (strcmp(name, "stream:error") == 0) {
		fprintf(stderr, "xmppsink: S2S: the bridge sent a stream error: %.*s\n",
		        (int)(n > 600 ? 600 : n), p);
		c->doomed = true;
		return;
	}
	if (c->kind == C_S2S_IN) {
		if (c->authed) {
			if (strcmp(name, "message") == 0 ||
			    strcmp(name, "presence") == 0 || strcmp(name, "iq") == 0)
				on_stanza(c, p, n);
		} else if (strcmp(name, "starttls") == 0 && !c->tls) {
			send_str(c, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
			c->starttls = c->restart = true;
		} else if (strcmp(name, "auth") == 0 && c->tls) {
			char why[300];
			size_t ml = 0;
			const char *mech = attr(p, n, "mechanism", &ml);
			if (mech && ml == 8 && memcmp(mech, "EXTERNAL", 8) == 0 &&
			    peer_cert_ok(c, c->from, why, sizeof(why))) {
				send_str(c, "<success "
				            "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
				c->authed = c->restart = true;
				g.s2s_in = c;
				fprintf(
				    stderr,
				    "xmppsink: the bridge's S2S stream (%s) is up (%s)\n",
				    c->from, SSL_get_version(c->ssl));
			} else {
				send_str(
				    c,
				    "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
				    "<not-authorized/></failure>");
			}
		}
		return;
	}
	/* our stream to the bridge */
	if (strcmp(name, "stream:features") == 0) {
		if (!c->tls) {
			if (!memmem(p, n, "starttls", 8)) {
				fprintf(stderr,
				        "xmppsink: S2S: the bridge offers no STARTTLS\n");
				c->doomed = true;
				return;
			}
			send_str(c,
			         "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
		} else if (!c->authed) {
			if (!memmem(p, n, "EXTERNAL", 8)) {
				fprintf(stderr,
				        "xmppsink: S2S: the bridge does not offer SASL "
				        "EXTERNAL (it did not accept our certificate?): "
				        "%.*s\n",
				        (int)n, p);
				c->doomed = true;
				return;
			}
			/* "=": the authorization identity is the stream's from */
			send_str(c, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
			            "mechanism='EXTERNAL'>=</auth>");
		} else if (g.comp != c) {
			g.comp = c;
			fprintf(stderr,
			        "xmppsink: S2S stream to the bridge (%s) is up (%s)\n",
			        g.to, SSL_get_version(c->ssl));
			s2s_ping();
		}
	} else if (strcmp(name, "proceed") == 0 && !c->tls) {
		c->starttls = c->restart = true;
	} else if (strcmp(name, "success") == 0 && c->tls && !c->authed) {
		c->authed = c->restart = true;
		char hdr[512];
		int k = snprintf(hdr, sizeof(hdr),
		                 "<?xml version='1.0'?><stream:stream " NS_STREAM_ATTRS
		                 " from='%s' to='%s'>",
		                 g.domain, g.to);
		send_out(c, hdr, (size_t)k);
	} else if (strcmp(name, "failure") == 0) {
		fprintf(stderr, "xmppsink: S2S: the bridge refused SASL EXTERNAL: %.*s\n",
		        (int)n, p);
		c->doomed = true;
	}
	/* anything else (the bridge sends no stanzas here): ignored */
}

/* Input on an S2S stream: handshake elements and stanzas; TLS when asked. */
static void s2s_input(struct conn *c)
{
	if (c->ssl && !c->tls) {
		tls_step(c);
		return;
	}
	if (c->tls) { /* the plain path read already (bbuf_fill) */
		ssize_t r = conn_fill(c);
		if (r == 0 || r == -1) {
			c->doomed = true;
			return;
		}
	}
	comp_scan(c);
	if (c->starttls && !c->doomed)
		tls_start(c);
}

/* Open our stream to the bridge (every 50 ms while it is down). */
static void s2s_dial(void)
{
	int64_t now = bench_now_ns();
	if (g.s2s_out || now < g.next_dial)
		return;
	g.next_dial = now + 50000000;
	int fd = bench_connect(g.connect_port);
	if (fd < 0)
		return;
	struct conn *c = conn_add(fd, C_S2S_OUT);
	g.s2s_out = c;
	char hdr[512];
	int k = snprintf(hdr, sizeof(hdr),
	                 "<?xml version='1.0'?><stream:stream " NS_STREAM_ATTRS
	                 " from='%s' to='%s'>",
	                 g.domain, g.to);
	send_out(c, hdr, (size_t)k);
}

static int verify_later(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1; /* peer_cert_ok() reads the verify result */
}

static SSL_CTX *tls_ctx(bool server, const char *cert, const char *key, const char *ca)
{
	SSL_CTX *x = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!x)
		return NULL;
	SSL_CTX_set_min_proto_version(x, TLS1_2_VERSION);
	SSL_CTX_set_mode(x, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                        SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* the bridge writes a record per stanza: read them in bulk, not with
	 * two read()s each */
	SSL_CTX_set_read_ahead(x, 1);
	if (SSL_CTX_use_certificate_chain_file(x, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(x, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(x, ca, NULL) != 1) {
		ERR_print_errors_fp(stderr);
		SSL_CTX_free(x);
		return NULL;
	}
	if (server) {
		/* ask for the bridge's certificate, judge it at the header (EXTERNAL) */
		SSL_CTX_set_client_CA_list(x, SSL_load_client_CA_file(ca));
		SSL_CTX_set_verify(x, SSL_VERIFY_PEER, verify_later);
	} else {
		SSL_CTX_set_verify(x, SSL_VERIFY_PEER, NULL);
	}
	return x;
}

/* Emit generated stanzas of kind k while its window, its rate and the socket
 * allow. */
static void generate_kind(struct conn *c, int k)
{
	struct gen *gn = &g.gen[k];
	if (gn->sent >= gn->n)
		return;
	uint64_t allowed = gn->n;
	if (gn->rate) {
		uint64_t due = (uint64_t)((double)(bench_now_ns() - gn->start) * 1e-9 *
		                          (double)gn->rate) +
		               1;
		if (due < allowed)
			allowed = due;
	}
	if (gn->win && gn->acked + gn->win < allowed)
		allowed = gn->acked + gn->win;
	char buf[1024];
	while (gn->sent < allowed && bbuf_used(&c->out) < (1u << 20)) {
		uint64_t u = gn->sent % gn->users;
		int n;
		int64_t now = bench_now_ns();
		if (k == 0)
			n = snprintf(
			    buf, sizeof(buf),
			    "<message type='chat' id='b%llu' from='x%llu@xmpp.test/r' "
			    "to='s%llu@sip.test'><body>hello from xmpp #T%lld#</body>"
			    "</message>",
			    (unsigned long long)gn->sent, (unsigned long long)u,
			    (unsigned long long)u, (long long)now);
		else if (k == 1)
			n = snprintf(
			    buf, sizeof(buf),
			    "<presence from='x%llu@xmpp.test/r' to='w%llu@sip.test'>"
			    "<show>%s</show><status>busy #T%lld#</status>"
			    "<priority>1</priority></presence>",
			    (unsigned long long)u, (unsigned long long)u,
			    gn->sent & 1 ? "away" : "dnd", (long long)now);
		else
			n = snprintf(buf, sizeof(buf),
			             "<presence type='subscribe' from='x%llu@xmpp.test' "
			             "to='s%llu@sip.test'/>",
			             (unsigned long long)u, (unsigned long long)u);
		bbuf_put(&c->out, buf, (size_t)n);
		gn->sent++;
	}
}

static void generate(void)
{
	struct conn *c = g.comp;
	if (!c)
		return;
	for (int k = 0; k < 3; k++)
		generate_kind(c, k);
	if (!c->want_out && bbuf_used(&c->out)) {
		if (conn_flush(c) == 0 && bbuf_used(&c->out)) {
			c->want_out = true;
			arm(c);
		}
	}
}

static void ctl_line(struct conn *c, char *line)
{
	char out[512];
	int k = 0;
	unsigned long long a = 0, b = 0, u = 0, r = 0;
	char kind[8], verb[8];
	int gk;

	if (strcmp(line, "reset") == 0) {
		g.measured = g.total = g.subs = 0;
		g.nmsg = g.npres = 0;
		g.first = g.last = 0;
		g.lat.n = g.ilat[0].n = g.ilat[1].n = 0;
		k = snprintf(out, sizeof(out), "ok\n");
	} else if (strcmp(line, "stats") == 0) {
		k = snprintf(out, sizeof(out),
		             "n=%llu first=%lld last=%lld total=%llu subs=%llu up=%d "
		             "gsent=%llu gacked=%llu\n",
		             (unsigned long long)g.measured, (long long)g.first,
		             (long long)g.last, (unsigned long long)g.total,
		             (unsigned long long)g.subs, link_up(),
		             (unsigned long long)g.gen[g.glast].sent,
		             (unsigned long long)g.gen[g.glast].acked);
	} else if (strcmp(line, "lat") == 0) {
		k = snprintf(out, sizeof(out), "n=%zu p50=%.1f p99=%.1f p999=%.1f\n",
		             g.lat.n, lat_pct(&g.lat, 0.5), lat_pct(&g.lat, 0.99),
		             lat_pct(&g.lat, 0.999));
	} else if (strcmp(line, "kinds") == 0) {
		k = snprintf(
		    out, sizeof(out),
		    "msg=%llu pres=%llu gmsg=%llu gpres=%llu gsub=%llu "
		    "msg_p50=%.1f msg_p99=%.1f pres_p50=%.1f pres_p99=%.1f up=%d\n",
		    (unsigned long long)g.nmsg, (unsigned long long)g.npres,
		    (unsigned long long)g.gen[0].sent, (unsigned long long)g.gen[1].sent,
		    (unsigned long long)g.gen[2].sent, lat_pct(&g.ilat[0], 0.5),
		    lat_pct(&g.ilat[0], 0.99), lat_pct(&g.ilat[1], 0.5),
		    lat_pct(&g.ilat[1], 0.99), link_up());
		g.lat.n = g.ilat[0].n = g.ilat[1].n = 0;
	} else if (strcmp(line, "stop") == 0) {
		for (int i = 0; i < 3; i++)
			g.gen[i].n = g.gen[i].sent;
		k = snprintf(out, sizeof(out), "ok\n");
	} else if (sscanf(line, "%7s %7s %llu %llu %llu %llu", verb, kind, &a, &b, &u,
	                  &r) == 6 &&
	           (strcmp(verb, "gen") == 0 || strcmp(verb, "add") == 0) &&
	           (gk = gen_kind(kind)) >= 0) {
		if (strcmp(verb, "gen") == 0)
			for (int i = 0; i < 3; i++)
				g.gen[i].n = g.gen[i].sent;
		struct gen *gn = &g.gen[gk];
		gn->n = a;
		gn->win = b;
		gn->users = u ? u : 1;
		gn->rate = r;
		gn->sent = gn->acked = 0;
		gn->start = bench_now_ns();
		g.glast = gk;
		k = snprintf(out, sizeof(out), "ok\n");
		send_out(c, out, (size_t)k);
		generate();
		return;
	} else if (sscanf(line, "ack %7s %llu", kind, &a) == 2 &&
	           (gk = gen_kind(kind)) >= 0) {
		g.gen[gk].acked = a;
		return;
	} else if (strncmp(line, "say ", 4) == 0) {
		if (g.comp)
			send_out(g.comp, line + 4, strlen(line + 4));
		return;
	} else if (sscanf(line, "ack %llu", &a) == 1) {
		g.gen[g.glast].acked = a;
		return;
	} else {
		k = snprintf(out, sizeof(out), "error: unknown command\n");
	}
	send_out(c, out, (size_t)k);
}

static void ctl_input(struct conn *c)
{
	struct bbuf *b = &c->in;
	char *nl;
	while ((nl = memchr(b->p + b->off, '\n', bbuf_used(b)))) {
		*nl = '\0';
		char *line = b->p + b->off;
		b->off = (size_t)(nl + 1 - b->p);
		if (nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
		ctl_line(c, line);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: xmppsink -p PORT -c CTLPORT [-s SECRET]\n"
	                "       xmppsink -p PORT -c CTLPORT --s2s DOMAIN --to DOMAIN "
	                "--connect PORT --cert CERT --key KEY --ca CA\n");
}

int main(int argc, char **argv)
{
	int port = 0, ctl = 0, opt;
	const char *cert = NULL, *key = NULL, *ca = NULL;
	static const struct option lo[] = {{"s2s", required_argument, NULL, 'S'},
	                                   {"to", required_argument, NULL, 'T'},
	                                   {"connect", required_argument, NULL, 'C'},
	                                   {"cert", required_argument, NULL, 'E'},
	                                   {"key", required_argument, NULL, 'K'},
	                                   {"ca", required_argument, NULL, 'A'},
	                                   {NULL, 0, NULL, 0}};
	g.secret = "s3cret";
	while ((opt = getopt_long(argc, argv, "p:c:s:", lo, NULL)) != -1) {
		if (opt == 'p')
			port = atoi(optarg);
		else if (opt == 'c')
			ctl = atoi(optarg);
		else if (opt == 's')
			g.secret = optarg;
		else if (opt == 'S')
			g.domain = optarg;
		else if (opt == 'T')
			g.to = optarg;
		else if (opt == 'C')
			g.connect_port = atoi(optarg);
		else if (opt == 'E')
			cert = optarg;
		else if (opt == 'K')
			key = optarg;
		else if (opt == 'A')
			ca = optarg;
		else {
			usage();
			return 2;
		}
	}
	if (g.domain) {
		/* OpenSSL writes with write(): a bridge that is gone must not kill us */
		signal(SIGPIPE, SIG_IGN);
		if (!g.to || !g.connect_port || !cert || !key || !ca) {
			usage();
			return 2;
		}
		g.srv = tls_ctx(true, cert, key, ca);
		g.cli = tls_ctx(false, cert, key, ca);
		if (!g.srv || !g.cli) {
			fprintf(stderr, "xmppsink: cannot use %s, %s, %s\n", cert, key,
			        ca);
			return 2;
		}
	}
	g.ep = epoll_create1(0);
	int lfd = bench_listen(port), cfd = bench_listen(ctl);
	if (!port || !ctl || lfd < 0 || cfd < 0) {
		usage();
		return 2;
	}
	conn_add(lfd, C_LISTEN);
	conn_add(cfd, C_CTL_LISTEN);
	for (;;) {
		struct epoll_event ev[64];
		int timeout = g.comp && gen_paced() ? 1 : -1;
		if (g.domain) {
			s2s_dial();
			int64_t now = bench_now_ns();
			if (g.comp && !g.s2s_in && now >= g.next_ping)
				s2s_ping(); /* again, should the bridge have closed its
				               stream */
			if (!g.s2s_out || !link_up())
				timeout = timeout < 0 || timeout > 50 ? 50 : timeout;
		}
		int n = epoll_wait(g.ep, ev, 64, timeout);
		for (int i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;
			if (c->kind == C_LISTEN || c->kind == C_CTL_LISTEN) {
				int fd = accept(c->fd, NULL, NULL);
				if (fd >= 0) {
					bench_nonblock(fd);
					enum ckind k = c->kind == C_CTL_LISTEN ? C_CTL
					               : g.domain              ? C_S2S_IN
					                                       : C_COMP;
					struct conn *nc = conn_add(fd, k);
					if (nc->kind == C_CTL)
						g.ctl = nc;
				}
				continue;
			}
			if (c->ssl && !c->tls) { /* TLS handshake */
				s2s_input(c);
				if (c->doomed)
					conn_close(c);
				continue;
			}
			if (ev[i].events & EPOLLOUT) {
				if (conn_flush(c) < 0) {
					conn_close(c);
					continue;
				}
				if (!bbuf_used(&c->out)) {
					c->want_out = false;
					arm(c);
				}
			}
			if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				if (c->ssl) {
					s2s_input(c);
					if (c->doomed) {
						conn_flush(c);
						conn_close(c);
					}
					continue;
				}
				ssize_t r = bbuf_fill(&c->in, c->fd);
				if (r == 0 || r == -1) {
					conn_close(c);
					continue;
				}
				if (c->kind == C_COMP)
					comp_input(c);
				else if (c->kind == C_CTL)
					ctl_input(c);
				else
					s2s_input(c);
				if (c->doomed) {
					conn_flush(c);
					conn_close(c);
				}
			}
		}
		generate();
	}
}

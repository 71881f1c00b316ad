/*
 * loadgen: a Lync-style SIP peer over TCP or TLS for the benchmark. It sends
 * requests with a window of outstanding transactions (and optionally at a paced rate),
 * answers every request the middlebox sends it with 200 OK, and drives
 * xmppsink over its control port. Each run prints one line of key=value
 * figures.
 *
 *   loadgen MODE [options]
 *   modes:
 *     msg      N page-mode MESSAGEs to --target (SIP->XMPP)
 *     x2s      N XMPP messages from the sink, taken as MESSAGEs on --listen
 *     notify   S subscriptions from XMPP (sink), then N NOTIFYs in them
 *              (NOTIFY->presence)
 *     sub      S SUBSCRIBEs to --target, then N presence stanzas from the sink
 *              (presence->NOTIFY); with --pid, VmRSS before and after;
 *              setup_rate: subscriptions per second, from the first SUBSCRIBE
 *              to the last 2xx and first NOTIFY; with --teardown, then an
 *              in-dialog SUBSCRIBE with Expires: 0 in each (a Lync sign-out):
 *              teardown_rate, to the last 2xx and terminating NOTIFY
 *     startup  fork and exec the command after --, then OPTIONS to --target
 *              until 200; prints the time and the pid and leaves it running
 *     serve    answer every request on --listen with 200 until --timeout
 *     takeover SIGKILL --kill PID (a pool's active node), then watch --log FILE
 *              (from its size before the kill) for a line holding --match
 *              TEXT and send OPTIONS to --host:--target until 200: prints
 *              log_ms (the line written), answer_ms (the first 200) and
 *              node_ms (the "in T ms" the line itself reports)
 *     mix      the four kinds at once for --duration, each at its own rate
 *              (--msg-rate --x2s-rate --notify-rate --pres-rate, per second;
 *              0: not that kind) over -s subscriptions each way, with churn
 *              (--churn N watchers, --churn-rate ops/s) and refreshes (--refresh
 *              SEC, default 1200; negative: none); a line of counts every
 *              --report SEC (default 10) and after --drain SEC (default 30):
 *              sent/answered/delivered per kind, lost=0 when nothing was lost.
 *              Needs --target, --listen, --ctl (see run_mix; scripts/soak.sh)
 *   options:
 *     --target PORT   the middlebox's SIP TCP port on 127.0.0.1 (or --host)
 *     --host ADDR     the middlebox's IPv4 address (default 127.0.0.1)
 *     --listen PORT   our SIP TCP port (where the middlebox sends requests)
 *     --ctl PORT      xmppsink's control port (none: latency measured here)
 *     -n N  -s S  -w WINDOW  -r RATE (per second; 0: saturate)  -u USERS
 *     --timeout SEC   give up (default 60)   --pid PID (sub: VmRSS)
 *     --tls CERT KEY CA  mutual TLS (1.2 or later) on --target and --listen, as
 *                     a Lync pool: our certificate chain and key (PEM), and the
 *                     trust anchors the middlebox's certificate must chain to
 *                     (its EKU checked for its role: serverAuth when we connect,
 *                     clientAuth when it does); Via and Contact say TLS. The
 *                     handshake to --target ends before the clock starts; the
 *                     middlebox's to --listen counts, as its TCP connect does.
 *                     startup stays plain TCP.
 *     --tls-name NAME with --tls: the name (SNI, and subjectAltName or CN) the
 *                     middlebox's certificate must carry when we connect
 *     --any-notify    sub: every NOTIFY of the presence run counts, time stamp or
 *                     not (a middlebox that drops the XMPP status text, where the
 *                     stamp travels: Kamailio's pua_xmpp); no latency then
 */
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#include "bench.h"

struct sconn {
	int fd;
	bool listener, want_out;
	struct bbuf in, out;
	int local_port;
	SSL *ssl;     /* --tls; NULL: plain TCP */
	bool hs_done; /* the TLS handshake has ended */
};

struct dlg {
	struct sconn *c;
	char *call_id, *from, *to, *ruri; /* our From (with tag), their From */
	unsigned cseq;
};

static struct {
	const char *mode;
	int target, listen, ctl, timeout;
	uint64_t n, s, win, rate, users, first;
	bool pidf; /* msg: send NOTIFY-sized PIDF requests (the floor's presence row) */
	bool any_notify, counting; /* sub --any-notify: every NOTIFY of the run counts */
	int pid;
	uint32_t host;                /* --host, network order */
	bool teardown;                /* sub --teardown */
	int kill_pid;                 /* takeover --kill */
	const char *log_file, *match; /* takeover --log, --match */
	char **stag, **starget;       /* sub: To tag and Contact of each dialog */
	uint64_t terminated;          /* NOTIFYs ending a subscription */
	int64_t t_last_term, t_nth_notify;
	const char *tls_cert, *tls_key, *tls_ca, *tls_name;
	SSL_CTX *tls;                /* --tls: one context for both roles */
	const char *via_tp, *uri_tp; /* "TCP" "tcp", or "TLS" "tls" */
	int ep;
	struct sconn *tc; /* to --target */
	int ctlfd;
	struct bbuf ctl_in;
	/* counters */
	uint64_t sent, ok, failed, got_req, measured, notifies, subs_in, last_ack;
	int64_t t0, t_last_ok, t_last_meas;
	struct lat lat;
	struct dlg *dlgs;
	size_t ndlg, capdlg;
	uint64_t init_ok; /* 2xx for initial NOTIFYs */
	int phase;
	unsigned tag;
} g;

static void die(const char *why)
{
	fprintf(stderr,
	        "loadgen: %s (sent %llu, answered %llu, failed %llu, requests in %llu, "
	        "NOTIFYs in %llu, measured %llu, SUBSCRIBEs in %llu)\n",
	        why, (unsigned long long)g.sent, (unsigned long long)g.ok,
	        (unsigned long long)g.failed, (unsigned long long)g.got_req,
	        (unsigned long long)g.notifies, (unsigned long long)g.measured,
	        (unsigned long long)g.subs_in);
	exit(1);
}

/* ---- control channel to xmppsink ---- */

static void ctl_send(const char *line)
{
	size_t n = strlen(line);
	const char *p = line;
	while (n) {
		ssize_t k = send(g.ctlfd, p, n, MSG_NOSIGNAL);
		if (k < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			die("control connection lost");
		}
		p += k;
		n -= (size_t)k;
	}
}

/* Send a command and wait for its one-line answer. */
static void ctl_cmd(const char *cmd, char *ans, size_t len)
{
	char line[256];
	snprintf(line, sizeof(line), "%s\n", cmd);
	ctl_send(line);
	int64_t deadline = bench_now_ns() + 10 * 1000000000LL;
	for (;;) {
		char *nl = memchr(g.ctl_in.p + g.ctl_in.off, '\n', bbuf_used(&g.ctl_in));
		if (g.ctl_in.p && nl) {
			size_t n = (size_t)(nl - (g.ctl_in.p + g.ctl_in.off));
			snprintf(ans, len, "%.*s", (int)n, g.ctl_in.p + g.ctl_in.off);
			g.ctl_in.off += n + 1;
			return;
		}
		if (bench_now_ns() > deadline)
			die("xmppsink does not answer");
		ssize_t r = bbuf_fill(&g.ctl_in, g.ctlfd);
		if (r == 0 || r == -1)
			die("control connection lost");
		if (r == -2)
			usleep(200);
	}
}

static long long kv(const char *s, const char *key)
{
	char k[32];
	snprintf(k, sizeof(k), "%s=", key);
	const char *p = strstr(s, k);
	return p ? atoll(p + strlen(k)) : 0;
}

static double kvf(const char *s, const char *key)
{
	char k[32];
	snprintf(k, sizeof(k), "%s=", key);
	const char *p = strstr(s, k);
	return p ? atof(p + strlen(k)) : 0;
}

static bool mix_ack(void);

static void ctl_ack(void)
{
	if (mix_ack())
		return;
	bool setup = !strcmp(g.mode, "notify") || !strcmp(g.mode, "mix");
	uint64_t v = setup && g.phase == 0 ? g.subs_in : g.measured;
	if (g.ctlfd < 0 || v == g.last_ack)
		return;
	char line[64];
	snprintf(line, sizeof(line), "ack %llu\n", (unsigned long long)v);
	ctl_send(line);
	g.last_ack = v;
}

/* ---- connections ---- */

static void arm(struct sconn *c)
{
	struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0u),
	                         .data.ptr = c};
	epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static struct sconn *sc_add(int fd, bool listener)
{
	struct sconn *c = calloc(1, sizeof(*c));
	if (!c)
		exit(2);
	c->fd = fd;
	c->listener = listener;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		c->local_port = ntohs(sa.sin_port);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev);
	return c;
}

/* Connections written to since the last push: one send() per batch. */
static struct sconn *dirty[16];
static size_t ndirty;

static void sc_write(struct sconn *c, const char *p, size_t n)
{
	bbuf_put(&c->out, p, n);
	for (size_t i = 0; i < ndirty; i++)
		if (dirty[i] == c)
			return;
	if (ndirty < sizeof(dirty) / sizeof(dirty[0]))
		dirty[ndirty++] = c;
}

static int tls_flush(struct sconn *c);

static void sc_push(struct sconn *c)
{
	if (c->want_out || !bbuf_used(&c->out))
		return;
	if (c->ssl) {
		if (tls_flush(c) < 0)
			die("TLS connection lost while writing");
		return;
	}
	if (bbuf_flush(&c->out, c->fd) < 0) {
		/* serve answers whoever connects: a middlebox that gave up on a
		 * connection (a pool node overrunning it at a takeover) is no
		 * reason to stop answering the next one */
		if (c != g.tc && strcmp(g.mode, "serve") == 0) {
			c->out.off = c->out.len = 0;
			return;
		}
		die("connection lost while writing");
	}
	if (bbuf_used(&c->out)) {
		c->want_out = true;
		arm(c);
	}
}

static void push_dirty(void)
{
	for (size_t i = 0; i < ndirty; i++)
		sc_push(dirty[i]);
	ndirty = 0;
}

/* ---- TLS (--tls) ---- */

static void tls_errors(const char *what, const SSL *ssl)
{
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	unsigned long e = ERR_get_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	fprintf(stderr, "loadgen: TLS %s: %s%s%s\n", what, e ? buf : "failed",
	        v != X509_V_OK ? "; certificate: " : "",
	        v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
	ERR_clear_error();
}

static void tls_init(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	if (!ctx) {
		tls_errors("context", NULL);
		exit(2);
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* tls_fill() reads until OpenSSL wants the socket: nothing stays hidden
	 * in its buffer, so it may read ahead (fewer recv() calls). */
	SSL_CTX_set_read_ahead(ctx, 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, g.tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, g.tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, g.tls_ca, NULL) != 1) {
		tls_errors("--tls CERT KEY CA", NULL);
		die("cannot load the certificate, key or CA of --tls");
	}
	/* Mutual TLS in both roles, as a Lync pool. OpenSSL checks the EKU for
	 * the role: serverAuth of whom we call, clientAuth of who calls us. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	g.tls = ctx;
}

/* TLS on c: a connection we made (client) or accepted. */
static void sc_tls(struct sconn *c, bool client)
{
	c->ssl = SSL_new(g.tls);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		tls_errors("session", NULL);
		exit(2);
	}
	if (!client) {
		SSL_set_accept_state(c->ssl);
		return;
	}
	if (g.tls_name && (SSL_set_tlsext_host_name(c->ssl, g.tls_name) != 1 ||
	                   SSL_set1_host(c->ssl, g.tls_name) != 1))
		die("--tls-name: OpenSSL refuses the name");
	SSL_set_connect_state(c->ssl);
}

static void sc_want_out(struct sconn *c, bool on)
{
	if (c->want_out != on) {
		c->want_out = on;
		arm(c);
	}
}

/* Handshake until it ends, then write what is queued. 0, or -1 when the
 * connection failed. OpenSSL waiting to write arms EPOLLOUT; waiting to read
 * needs nothing (EPOLLIN is always armed and every event comes here). */
static int tls_flush(struct sconn *c)
{
	int r = 1;
	ERR_clear_error();
	if (!c->hs_done) {
		r = SSL_do_handshake(c->ssl);
		if (r != 1)
			goto wait;
		c->hs_done = true;
	}
	while (bbuf_used(&c->out)) {
		size_t n = bbuf_used(&c->out);
		r = SSL_write(c->ssl, c->out.p + c->out.off,
		              n > INT_MAX ? INT_MAX : (int)n);
		if (r <= 0)
			goto wait;
		c->out.off += (size_t)r;
	}
	c->out.off = c->out.len = 0;
	sc_want_out(c, false);
	return 0;
wait:
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		sc_want_out(c, false);
		return 0;
	case SSL_ERROR_WANT_WRITE:
		sc_want_out(c, true);
		return 0;
	default:
		tls_errors(c->hs_done ? "write" : "handshake", c->ssl);
		return -1;
	}
}

/* Read every record there is: OpenSSL may hold bytes epoll cannot see.
 * Returns as bbuf_fill(). */
static ssize_t tls_fill(struct sconn *c)
{
	ssize_t got = 0;
	if (!c->hs_done)
		return -2;
	for (;;) {
		bbuf_reserve(&c->in, 65536);
		size_t room = c->in.cap - c->in.len;
		ERR_clear_error();
		int r = SSL_read(c->ssl, c->in.p + c->in.len,
		                 room > INT_MAX ? INT_MAX : (int)room);
		if (r > 0) {
			c->in.len += (size_t)r;
			got += r;
			continue;
		}
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_WRITE)
			sc_want_out(c, true);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return got ? got : -2;
		/* close_notify, or the end of the stream without it */
		if (e == SSL_ERROR_ZERO_RETURN ||
		    (e == SSL_ERROR_SYSCALL && !ERR_peek_error()))
			return got;
		tls_errors("read", c->ssl);
		return got ? got : -1;
	}
}

/* ---- SIP ---- */

struct smsg {
	const char *p; /* the message */
	size_t hlen;   /* through the blank line */
	const char *body;
	size_t blen;
};

static bool hname_is(const char *line, size_t n, const char *name, const char *compact)
{
	size_t k = strlen(name);
	if (n > k && strncasecmp(line, name, k) == 0 &&
	    (line[k] == ':' || line[k] == ' '))
		return true;
	return compact && n > 1 &&
	       (line[0] == compact[0] || line[0] == (compact[0] ^ 32)) &&
	       (line[1] == ':' || line[1] == ' ');
}

/* The header line after the one that ends at *at (*at: the start line's LF to
 * begin with), its length without the LF in *np; NULL after the last. */
static const char *next_line(const struct smsg *m, const char **at, size_t *np)
{
	const char *end = m->p + m->hlen, *p = *at;
	if (!p || p + 1 >= end)
		return NULL;
	const char *line = p + 1;
	const char *eol = memchr(line, '\n', (size_t)(end - line));
	if (!eol)
		return NULL;
	*np = (size_t)(eol - line);
	*at = eol;
	return line;
}

/* The value of the first header name (compact form too), or NULL. */
static const char *hdr(const struct smsg *m, const char *name, const char *compact,
                       size_t *len)
{
	const char *at = memchr(m->p, '\n', m->hlen), *line;
	size_t n;
	while ((line = next_line(m, &at, &n)) != NULL) {
		if (!hname_is(line, n, name, compact))
			continue;
		const char *v = memchr(line, ':', n);
		if (!v)
			return NULL;
		for (v++; *v == ' ' || *v == '\t'; v++)
			;
		const char *e = line + n;
		if (e > v && e[-1] == '\r')
			e--;
		*len = (size_t)(e - v);
		return v;
	}
	return NULL;
}

/* A complete message at the front of b, or false. */
static bool sip_next(struct bbuf *b, struct smsg *m)
{
	/* skip keep-alive CRLFs */
	while (bbuf_used(b) >= 2 && b->p[b->off] == '\r' && b->p[b->off + 1] == '\n')
		b->off += 2;
	if (!bbuf_used(b))
		return false;
	const char *s = b->p + b->off;
	const char *e = memmem(s, bbuf_used(b), "\r\n\r\n", 4);
	if (!e)
		return false;
	m->p = s;
	m->hlen = (size_t)(e + 4 - s);
	size_t cl = 0, vl;
	const char *v = hdr(m, "Content-Length", "l", &vl);
	if (v)
		cl = (size_t)atol(v);
	if (bbuf_used(b) < m->hlen + cl)
		return false;
	m->body = s + m->hlen;
	m->blen = cl;
	b->off += m->hlen + cl;
	return true;
}

/* Copy the lines of the named header into out (all of them). */
static void copy_hdr(struct bbuf *out, const struct smsg *m, const char *name,
                     const char *compact, const char *append)
{
	const char *at = memchr(m->p, '\n', m->hlen), *line;
	size_t n;
	while ((line = next_line(m, &at, &n)) != NULL) {
		if (!hname_is(line, n, name, compact))
			continue;
		bbuf_put(out, line, n && line[n - 1] == '\r' ? n - 1 : n);
		if (append)
			bbuf_put(out, append, strlen(append));
		bbuf_put(out, "\r\n", 2);
	}
}

static void reply_200(struct sconn *c, const struct smsg *m, bool subscribe)
{
	char tag[40] = "";
	size_t tl;
	const char *to = hdr(m, "To", "t", &tl);
	if (to && !memmem(to, tl, "tag=", 4))
		snprintf(tag, sizeof(tag), ";tag=lg%u", ++g.tag);
	sc_write(c, "SIP/2.0 200 OK\r\n", 16);
	copy_hdr(&c->out, m, "Via", "v", NULL);
	copy_hdr(&c->out, m, "From", "f", NULL);
	copy_hdr(&c->out, m, "To", "t", tag[0] ? tag : NULL);
	copy_hdr(&c->out, m, "Call-ID", "i", NULL);
	copy_hdr(&c->out, m, "CSeq", NULL, NULL);
	if (subscribe) {
		char extra[160];
		int k = snprintf(extra, sizeof(extra),
		                 "Contact: <sip:lg@127.0.0.1:%d;transport=%s>\r\n"
		                 "Expires: 3600\r\n",
		                 g.listen, g.uri_tp);
		sc_write(c, extra, (size_t)k);
	}
	sc_write(c, "Content-Length: 0\r\n\r\n", 21);
}

static char *dupn(const char *p, size_t n)
{
	char *s = malloc(n + 1);
	if (!s)
		exit(2);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static void send_notify(struct dlg *d, const char *note, bool initial);
static void mix_on_request(const struct smsg *m);
static void mix_on_response(const struct smsg *m);
static bool mix_on(void);

/* A SUBSCRIBE from the middlebox (it watches one of our users): a dialog. */
static void on_subscribe(struct sconn *c, const struct smsg *m)
{
	size_t tl, fl, il, cl;
	const char *to = hdr(m, "To", "t", &tl);
	bool in_dialog = to && memmem(to, tl, "tag=", 4);
	reply_200(c, m, true);
	if (in_dialog || g.phase != 0)
		return;
	const char *from = hdr(m, "From", "f", &fl);
	const char *cid = hdr(m, "Call-ID", "i", &il);
	const char *ct = hdr(m, "Contact", "m", &cl);
	if (!to || !from || !cid)
		return;
	if (g.ndlg == g.capdlg) {
		g.capdlg = g.capdlg ? g.capdlg * 2 : 1024;
		g.dlgs = realloc(g.dlgs, g.capdlg * sizeof(*g.dlgs));
		if (!g.dlgs)
			exit(2);
	}
	struct dlg *d = &g.dlgs[g.ndlg++];
	char ourfrom[512];
	snprintf(ourfrom, sizeof(ourfrom), "%.*s;tag=lg%u", (int)tl, to, g.tag);
	d->c = c;
	d->from = dupn(ourfrom, strlen(ourfrom));
	d->to = dupn(from, fl);
	d->call_id = dupn(cid, il);
	d->cseq = 1;
	const char *lt = ct ? memchr(ct, '<', cl) : NULL;
	const char *gt = lt ? memchr(lt, '>', cl - (size_t)(lt - ct)) : NULL;
	d->ruri = lt && gt ? dupn(lt + 1, (size_t)(gt - lt - 1))
	                   : dupn("sip:bridge@127.0.0.1", 20);
	g.subs_in++;
	send_notify(d, "initial", true);
}

static void on_request(struct sconn *c, const struct smsg *m)
{
	g.got_req++;
	if (m->hlen > 10 && memcmp(m->p, "SUBSCRIBE ", 10) == 0) {
		on_subscribe(c, m);
		return;
	}
	reply_200(c, m, false);
	if (mix_on()) {
		mix_on_request(m);
		return;
	}
	bool notify = m->hlen > 7 && memcmp(m->p, "NOTIFY ", 7) == 0;
	if (notify) {
		size_t sl;
		const char *ss = hdr(m, "Subscription-State", NULL, &sl);
		if (ss && sl >= 10 && strncasecmp(ss, "terminated", 10) == 0) {
			g.terminated++;
			g.t_last_term = bench_now_ns();
		}
		if (++g.notifies == g.s)
			g.t_nth_notify = bench_now_ns();
	}
	int64_t t = m->blen ? bench_marker(m->body, m->blen) : 0;
	if (t) {
		int64_t now = bench_now_ns();
		lat_add(&g.lat, now - t);
		g.measured++;
		g.t_last_meas = now;
	} else if (notify && g.any_notify && g.counting) {
		g.measured++;
		g.t_last_meas = bench_now_ns();
	}
}

/* sub --teardown: the To tag and Contact of a 2xx to an initial SUBSCRIBE
 * (Call-ID lgs<u>-...), for the in-dialog SUBSCRIBE that ends it. */
static void sub_dialog(const struct smsg *m)
{
	size_t il, tl, cl;
	unsigned long long u;
	const char *cid = hdr(m, "Call-ID", "i", &il);
	if (!cid || sscanf(cid, "lgs%llu-", &u) != 1 || u < g.first || u - g.first >= g.s)
		return;
	uint64_t i = u - g.first;
	const char *to = hdr(m, "To", "t", &tl);
	const char *tag = to ? memmem(to, tl, "tag=", 4) : NULL;
	const char *ct = hdr(m, "Contact", "m", &cl);
	const char *lt = ct ? memchr(ct, '<', cl) : NULL;
	const char *gt = lt ? memchr(lt, '>', cl - (size_t)(lt - ct)) : NULL;
	if (!tag || g.stag[i])
		return;
	tag += 4;
	g.stag[i] = dupn(tag, strcspn(tag, ";>\r\n"));
	g.starget[i] = lt && gt ? dupn(lt + 1, (size_t)(gt - lt - 1))
	                        : dupn("sip:bridge@127.0.0.1", 20);
}

static void on_response(const struct smsg *m)
{
	if (mix_on()) {
		mix_on_response(m);
		return;
	}
	int code = atoi(m->p + 8);
	size_t cl;
	const char *cseq = hdr(m, "CSeq", NULL, &cl);
	if (code < 200)
		return;
	bool notify = cseq && memmem(cseq, cl, "NOTIFY", 6);
	bool initial = notify && g.phase == 0;
	if (code >= 300) {
		g.failed++;
		if (g.failed < 5)
			fprintf(stderr, "loadgen: %.40s\n", m->p);
		if (!initial)
			g.ok++; /* completes the transaction all the same */
		return;
	}
	if (initial) {
		g.init_ok++;
		return;
	}
	g.ok++;
	g.t_last_ok = bench_now_ns();
	if (g.stag && cseq && memmem(cseq, cl, "SUBSCRIBE", 9))
		sub_dialog(m);
}

static void sc_input(struct sconn *c)
{
	struct smsg m;
	while (sip_next(&c->in, &m)) {
		if (m.hlen > 8 && memcmp(m.p, "SIP/2.0 ", 8) == 0)
			on_response(&m);
		else
			on_request(c, &m);
	}
}

/* ---- what we send ---- */

static void send_message(uint64_t i)
{
	char buf[2048], body[512];
	uint64_t u = i % g.users;
	int bl;
	if (g.pidf)
		bl = snprintf(
		    body, sizeof(body),
		    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
		    "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" "
		    "entity=\"sip:s%llu@sip.test\"><tuple id=\"t1\"><status>"
		    "<basic>open</basic></status></tuple><note>busy #T%lld#</note>"
		    "</presence>",
		    (unsigned long long)u, (long long)bench_now_ns());
	else
		bl = snprintf(body, sizeof(body), "hello from sip #T%lld#",
		              (long long)bench_now_ns());
	int k = snprintf(
	    buf, sizeof(buf),
	    "%s sip:x%llu@xmpp.test SIP/2.0\r\n"
	    "Via: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK-lg%llu;rport\r\n"
	    "Max-Forwards: 70\r\n"
	    "From: <sip:s%llu@sip.test>;tag=lg%llu\r\n"
	    "To: <sip:x%llu@xmpp.test>\r\n"
	    "Call-ID: lg%llu-%d@bench\r\n"
	    "CSeq: 1 %s\r\n"
	    "User-Agent: UCCAPI/15.0.4481.1000 OC/15.0.4481.1000 (Microsoft Lync)\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %d\r\n\r\n%s",
	    g.pidf ? "NOTIFY" : "MESSAGE", (unsigned long long)u, g.via_tp,
	    g.tc->local_port, (unsigned long long)i, (unsigned long long)u,
	    (unsigned long long)i, (unsigned long long)u, (unsigned long long)i,
	    (int)getpid(), g.pidf ? "NOTIFY" : "MESSAGE",
	    g.pidf ? "application/pidf+xml" : "text/plain; charset=UTF-8", bl, body);
	sc_write(g.tc, buf, (size_t)k);
}

/* Watcher w<i> watches x<i>: one subscription per pair, as the sink's presence
 * load (from x<u> to w<u>) expects. */
static void send_subscribe(uint64_t i)
{
	char buf[1024];
	uint64_t u = i + g.first;
	i = u;
	int k =
	    snprintf(buf, sizeof(buf),
	             "SUBSCRIBE sip:x%llu@xmpp.test SIP/2.0\r\n"
	             "Via: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK-lgs%llu;rport\r\n"
	             "Max-Forwards: 70\r\n"
	             "From: <sip:w%llu@sip.test>;tag=lgs%llu\r\n"
	             "To: <sip:x%llu@xmpp.test>\r\n"
	             "Call-ID: lgs%llu-%d@bench\r\n"
	             "CSeq: 1 SUBSCRIBE\r\n"
	             "Contact: <sip:w%llu@127.0.0.1:%d;transport=%s>\r\n"
	             "Event: presence\r\n"
	             "Accept: application/pidf+xml\r\n"
	             "Expires: 3600\r\n"
	             "Content-Length: 0\r\n\r\n",
	             (unsigned long long)u, g.via_tp, g.tc->local_port,
	             (unsigned long long)i, (unsigned long long)i, (unsigned long long)i,
	             (unsigned long long)u, (unsigned long long)i, (int)getpid(),
	             (unsigned long long)i, g.listen, g.uri_tp);
	sc_write(g.tc, buf, (size_t)k);
}

/* sub --teardown: watcher w<i> signs out of its dialog (Expires: 0). */
static void send_unsubscribe(uint64_t i)
{
	char buf[1280];
	unsigned long long u = (unsigned long long)(i + g.first);
	if (!g.stag[i])
		die("a subscription's 2xx had no To tag: cannot end it in its dialog");
	int k = snprintf(buf, sizeof(buf),
	                 "SUBSCRIBE %s SIP/2.0\r\n"
	                 "Via: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK-lgu%llu;rport\r\n"
	                 "Max-Forwards: 70\r\n"
	                 "From: <sip:w%llu@sip.test>;tag=lgs%llu\r\n"
	                 "To: <sip:x%llu@xmpp.test>;tag=%s\r\n"
	                 "Call-ID: lgs%llu-%d@bench\r\n"
	                 "CSeq: 2 SUBSCRIBE\r\n"
	                 "Contact: <sip:w%llu@127.0.0.1:%d;transport=%s>\r\n"
	                 "Event: presence\r\n"
	                 "Accept: application/pidf+xml\r\n"
	                 "Expires: 0\r\n"
	                 "Content-Length: 0\r\n\r\n",
	                 g.starget[i], g.via_tp, g.tc->local_port, u, u, u, u, g.stag[i],
	                 u, (int)getpid(), u, g.listen, g.uri_tp);
	sc_write(g.tc, buf, (size_t)k);
}

static void send_notify(struct dlg *d, const char *note, bool initial)
{
	char body[512], buf[2048];
	const char *ent = d->from + (d->from[0] == '<');
	size_t el = strcspn(ent, ">;");
	int bl =
	    snprintf(body, sizeof(body),
	             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
	             "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"%.*s\">"
	             "<tuple id=\"t1\"><status><basic>open</basic></status></tuple>"
	             "<note>%s</note></presence>",
	             (int)el, ent, note);
	int k = snprintf(buf, sizeof(buf),
	                 "NOTIFY %s SIP/2.0\r\n"
	                 "Via: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK-lgn%u-%s;rport\r\n"
	                 "Max-Forwards: 70\r\n"
	                 "From: %s\r\n"
	                 "To: %s\r\n"
	                 "Call-ID: %s\r\n"
	                 "CSeq: %u NOTIFY\r\n"
	                 "Contact: <sip:lg@127.0.0.1:%d;transport=%s>\r\n"
	                 "Event: presence\r\n"
	                 "Subscription-State: active;expires=3600\r\n"
	                 "Content-Type: application/pidf+xml\r\n"
	                 "Content-Length: %d\r\n\r\n%s",
	                 d->ruri, g.via_tp, d->c->local_port, d->cseq,
	                 initial ? "i" : d->call_id, d->from, d->to, d->call_id, d->cseq,
	                 g.listen, g.uri_tp, bl, body);
	d->cseq++;
	sc_write(d->c, buf, (size_t)k);
}

/* ---- the run ---- */

static long rss_kb(int pid)
{
	char path[64], line[256];
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			v = atol(line + 6);
	fclose(f);
	return v;
}

/* One turn of the loop: wait up to ms, handle what came. */
static void pump(int ms)
{
	struct epoll_event ev[64];
	int n = epoll_wait(g.ep, ev, 64, ms);
	for (int i = 0; i < n; i++) {
		struct sconn *c = ev[i].data.ptr;
		if (c->listener) {
			int fd = accept(c->fd, NULL, NULL);
			if (fd >= 0) {
				bench_nonblock(fd);
				struct sconn *a = sc_add(fd, false);
				if (g.tls)
					sc_tls(a, false);
			}
			continue;
		}
		ssize_t r = -2;
		if (c->ssl) {
			/* any event may be the one OpenSSL waits for */
			r = tls_flush(c) < 0 ? -1 : tls_fill(c);
		} else {
			if (ev[i].events & EPOLLOUT) {
				if (bbuf_flush(&c->out, c->fd) < 0) {
					if (c == g.tc || strcmp(g.mode, "serve") != 0)
						die("connection lost");
					c->out.off = c->out.len = 0; /* as in sc_push */
				}
				if (!bbuf_used(&c->out)) {
					c->want_out = false;
					arm(c);
				}
			}
			if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				r = bbuf_fill(&c->in, c->fd);
		}
		if (r == 0 || r == -1) {
			epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			if (c == g.tc)
				die(c->ssl ? "TLS with the middlebox failed or closed"
				           : "the middlebox closed the connection");
			continue; /* leaks c: dialogs may still point at it */
		}
		if (r > 0)
			sc_input(c);
	}
	push_dirty();
	ctl_ack();
}

/* g.tc: our connection to --target; with --tls, the handshake ends here,
 * before any clock starts. */
static void sc_dial(int64_t deadline)
{
	int fd = bench_connect_to(g.host, g.target);
	if (fd < 0)
		die("cannot reach --target");
	g.tc = sc_add(fd, false);
	if (!g.tls)
		return;
	sc_tls(g.tc, true);
	if (tls_flush(g.tc) < 0)
		die("TLS handshake with --target failed");
	while (!g.tc->hs_done) {
		if (bench_now_ns() > deadline)
			die("TLS handshake with --target timed out");
		pump(10);
	}
}

/* Send with window and pace until `total` requests are answered. */
static bool drive(uint64_t total, void (*emit)(uint64_t), int64_t deadline)
{
	uint64_t base_ok = g.ok, sent = 0;
	int64_t start = bench_now_ns();
	while (g.ok - base_ok < total) {
		uint64_t allowed = total;
		if (g.rate) {
			uint64_t due = (uint64_t)((double)(bench_now_ns() - start) *
			                          1e-9 * (double)g.rate) +
			               1;
			if (due < allowed)
				allowed = due;
		}
		if (g.ok - base_ok + g.win < allowed)
			allowed = g.ok - base_ok + g.win;
		while (sent < allowed)
			emit(sent++);
		push_dirty();
		if (bench_now_ns() > deadline)
			return false;
		pump(g.rate ? 1 : 100);
	}
	return true;
}

static void emit_notify(uint64_t i)
{
	char note[64];
	struct dlg *d = &g.dlgs[i % g.ndlg];
	snprintf(note, sizeof(note), "busy #T%lld#", (long long)bench_now_ns());
	send_notify(d, note, false);
}

static void wait_until(bool (*cond)(void), int64_t deadline)
{
	while (!cond()) {
		if (bench_now_ns() > deadline)
			die("timed out");
		pump(10);
	}
}

static bool all_measured(void)
{
	return g.measured >= g.n;
}

static bool subs_in(void)
{
	return g.subs_in >= g.s && g.init_ok >= g.s;
}

static void sink_wait(uint64_t n, int64_t deadline, char *ans, size_t len)
{
	for (;;) {
		ctl_cmd("stats", ans, len);
		if ((uint64_t)kv(ans, "n") >= n)
			return;
		if (bench_now_ns() > deadline)
			die("the sink did not get everything in time");
		pump(5);
	}
}

static void report_rate(const char *what, uint64_t n, int64_t start, int64_t end)
{
	double secs = (double)(end - start) * 1e-9;
	printf("%s=%.0f n=%llu secs=%.3f failed=%llu", what,
	       secs > 0 ? (double)n / secs : 0, (unsigned long long)n, secs,
	       (unsigned long long)g.failed);
}

static void report_lat(void)
{
	char ans[256];
	if (g.ctlfd >= 0 && strcmp(g.mode, "msg") == 0) {
		ctl_cmd("lat", ans, sizeof(ans));
		printf(" p50_us=%.1f p99_us=%.1f p999_us=%.1f", kvf(ans, "p50"),
		       kvf(ans, "p99"), kvf(ans, "p999"));
		return;
	}
	printf(" p50_us=%.1f p99_us=%.1f p999_us=%.1f", lat_pct(&g.lat, 0.5),
	       lat_pct(&g.lat, 0.99), lat_pct(&g.lat, 0.999));
}

/* One OPTIONS to --host:--target on a new connection: true when it is
 * answered 200 within 200 ms. */
static bool options_ok(void)
{
	int fd = bench_connect_to(g.host, g.target);
	if (fd < 0)
		return false;
	char req[512];
	int k = snprintf(req, sizeof(req),
	                 "OPTIONS sip:xmpp.test SIP/2.0\r\n"
	                 "Via: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK-opt%lld;rport\r\n"
	                 "Max-Forwards: 70\r\nFrom: <sip:probe@sip.test>;tag=o1\r\n"
	                 "To: <sip:xmpp.test>\r\nCall-ID: opt%lld@bench\r\n"
	                 "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	                 (long long)bench_now_ns(), (long long)bench_now_ns());
	send(fd, req, (size_t)k, MSG_NOSIGNAL);
	char buf[2048];
	size_t got = 0;
	int64_t wait_end = bench_now_ns() + 200000000LL;
	while (bench_now_ns() < wait_end && got < sizeof(buf) - 1) {
		ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (r == 0)
			break;
		if (r < 0) {
			usleep(500);
			continue;
		}
		got += (size_t)r;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	close(fd);
	return got > 12 && memcmp(buf, "SIP/2.0 200", 11) == 0;
}

static int run_startup(char **cmd)
{
	int64_t t0 = bench_now_ns();
	pid_t pid = fork();
	if (pid == 0) {
		/* our stdout is the caller's pipe: the daemon must not hold it open */
		dup2(2, 1);
		execvp(cmd[0], cmd);
		_exit(127);
	}
	int64_t deadline = t0 + (int64_t)g.timeout * 1000000000LL;
	while (bench_now_ns() < deadline) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			die("the command exited before it served");
		if (options_ok()) {
			printf("startup_ms=%.1f pid=%d\n",
			       (double)(bench_now_ns() - t0) / 1e6, (int)pid);
			return 0;
		}
		usleep(2000);
	}
	printf("startup_ms=n/a pid=%d\n", (int)pid);
	return 1;
}

/* The line of f holding text, read from *off on (which moves past whole lines
 * read); NULL while there is none. Returns a static buffer. */
static const char *log_line(const char *f, long *off, const char *text)
{
	static char line[1024];
	FILE *fp = fopen(f, "r");
	const char *found = NULL;
	if (!fp)
		return NULL;
	if (fseek(fp, *off, SEEK_SET) == 0)
		while (fgets(line, sizeof(line), fp)) {
			size_t n = strlen(line);
			if (!n || line[n - 1] != '\n')
				break; /* half written: read it again next time */
			*off += (long)n;
			if (strstr(line, text)) {
				found = line;
				break;
			}
		}
	fclose(fp);
	return found;
}

/* Kill a pool's active node, then time the standby's takeover: its log line and
 * its first answered OPTIONS. */
static int run_takeover(void)
{
	long off = 0;
	FILE *fp = fopen(g.log_file, "r");
	if (fp) {
		fseek(fp, 0, SEEK_END);
		off = ftell(fp);
		fclose(fp);
	}
	if (kill(g.kill_pid, SIGKILL) != 0)
		die("takeover: cannot kill --kill PID");
	int64_t t0 = bench_now_ns(), t_log = 0, t_ans = 0;
	int64_t deadline = t0 + (int64_t)g.timeout * 1000000000LL;
	double node_ms = -1;
	while ((!t_log || !t_ans) && bench_now_ns() < deadline) {
		const char *l = t_log ? NULL : log_line(g.log_file, &off, g.match);
		if (l) {
			/* the last " in ": the time follows the node names */
			const char *in = NULL;
			for (const char *q = strstr(l, " in "); q;
			     q = strstr(q + 1, " in "))
				in = q;
			t_log = bench_now_ns();
			if (in)
				node_ms = atof(in + 4);
		}
		if (!t_ans && options_ok())
			t_ans = bench_now_ns();
		if (!t_log || !t_ans)
			usleep(2000);
	}
	if (!t_log || !t_ans) {
		printf("log_ms=n/a answer_ms=n/a\n");
		return 1;
	}
	printf("log_ms=%.1f answer_ms=%.1f node_ms=%.1f\n", (double)(t_log - t0) / 1e6,
	       (double)(t_ans - t0) / 1e6, node_ms);
	return 0;
}

/* ---- mix: the four kinds at once, each at its own rate, for a duration ----
 *
 * The soak's load (scripts/soak.sh -D bench). Setup: -s subscriptions from the
 * XMPP side (the sink's "gen sub": dialogs our NOTIFYs go in), then -s watchers
 * of ours, w<u> watching x<u> (the sink's presence goes to them), then the run:
 * MESSAGEs and NOTIFYs from here, XMPP messages and presence from the sink
 * ("add"), each paced at its rate from one start. Churn: a pool of --churn
 * further watchers w<S+j>, taken in turn at --churn-rate: an idle one
 * subscribes (a new entry in the bridge's table, or its dormant one woken),
 * a subscribed one loses its subscription, in turns by the sink revoking it
 * for x<S+j> (the entry goes; done at the bridge's final NOTIFY) or by signing
 * out (in-dialog Expires: 0; the entry stays, dormant); the main watchers
 * refresh in their dialog every --refresh seconds (spread out). After
 * --duration, --drain seconds for the rest to arrive; every --report seconds,
 * and at the end, one line of counts: sent, answered (ok, failed) and
 * delivered (dlv) per kind; lost=0 failed=0 unanswered=0 extra=0 in the last
 * when every request was answered 2xx and each kind delivered what it sent. */

enum { MK_MSG, MK_X2S, MK_NOTIFY, MK_PRES, MK_N };
static const char *const mk_name[MK_N] = {"msg", "x2s", "notify", "pres"};
/* what a watcher waits for: the answer to a SUBSCRIBE (new, refresh, sign-out),
 * or after the sink revoked its subscription the bridge's final NOTIFY */
enum { MW_NONE, MW_SUB, MW_REFRESH, MW_UNSUB, MW_REVOKE };

/* One of our watchers: w<u> watches x<u>. */
struct mwatch {
	unsigned gen;      /* dialog generation, in the Call-ID and the From tag */
	unsigned cseq;     /* of our last SUBSCRIBE in the dialog */
	unsigned removals; /* churn: even ones revoke, odd ones sign out */
	char *to_tag;      /* from the 2xx; NULL: no dialog */
	char *target;      /* the 2xx's Contact: in-dialog requests go there */
	int op;            /* MW_NONE, or the SUBSCRIBE outstanding */
	int64_t refresh_at;
	int64_t last_mark; /* newest presence stamp NOTIFYed: an older one is a repeat */
};

static struct {
	bool on;
	uint64_t rate[MK_N];  /* per second */
	uint64_t total[MK_N]; /* rate x duration: what each kind sends in all */
	/* x2s, pres: sent as the sink reports it; msg, notify: delivered, the same */
	uint64_t sent[MK_N], ok[MK_N], failed[MK_N], dlv[MK_N], dup[MK_N];
	uint64_t prev_sent[MK_N];
	double sink_p50[MK_N], sink_p99[MK_N];
	struct lat ilat[MK_N]; /* measured here (x2s, pres), since the last report */
	double duration, report, drain, refresh;
	uint64_t churn, churn_rate;
	uint64_t c_ops, c_sub, c_unsub, c_revoke, c_ok, c_failed, c_busy;
	uint64_t r_sent, r_ok, r_failed, r_cursor;
	uint64_t setup_ok, setup_failed, stray;
	uint64_t notifies; /* every NOTIFY to our watchers (in the run) */
	struct mwatch *w;
	uint64_t nw, nmain; /* watchers in all; the main ones [0, nmain) */
	uint64_t acked[2];
	int64_t start, end, t_ack;
} mx;

static bool mix_on(void)
{
	return mx.on;
}

/* A mix option (argument v); false when a is none. */
static bool mix_opt(const char *a, const char *v)
{
	static const char *const rates[MK_N] = {"--msg-rate", "--x2s-rate",
	                                        "--notify-rate", "--pres-rate"};
	for (int k = 0; k < MK_N; k++)
		if (!strcmp(a, rates[k])) {
			mx.rate[k] = strtoull(v, NULL, 10);
			return true;
		}
	if (!strcmp(a, "--duration"))
		mx.duration = atof(v);
	else if (!strcmp(a, "--report"))
		mx.report = atof(v);
	else if (!strcmp(a, "--drain"))
		mx.drain = atof(v);
	else if (!strcmp(a, "--refresh"))
		mx.refresh = atof(v);
	else if (!strcmp(a, "--churn"))
		mx.churn = strtoull(v, NULL, 10);
	else if (!strcmp(a, "--churn-rate"))
		mx.churn_rate = strtoull(v, NULL, 10);
	else
		return false;
	return true;
}

/* ctl_ack() in the run: each sink generator's window moves with what arrived
 * here. True when it answered for ctl_ack(). */
static bool mix_ack(void)
{
	if (!mx.on || g.phase == 0)
		return false;
	int64_t now = bench_now_ns();
	if (g.ctlfd < 0 || now - mx.t_ack < 2000000)
		return true;
	mx.t_ack = now;
	static const char *const kind[2] = {"msg", "pres"};
	const uint64_t v[2] = {mx.dlv[MK_X2S], mx.dlv[MK_PRES]};
	for (int i = 0; i < 2; i++)
		if (v[i] != mx.acked[i]) {
			char line[64];
			snprintf(line, sizeof(line), "ack %s %llu\n", kind[i],
			         (unsigned long long)v[i]);
			ctl_send(line);
			mx.acked[i] = v[i];
		}
	return true;
}

/* SUBSCRIBE for watcher u: a new dialog without one, else in it. */
static void mix_subscribe(uint64_t u, int op, unsigned expires)
{
	struct mwatch *w = &mx.w[u];
	char buf[1536], ruri[256], totag[96] = "";
	if (!w->to_tag) {
		w->gen++;
		w->cseq = 0;
		snprintf(ruri, sizeof(ruri), "sip:x%llu@xmpp.test",
		         (unsigned long long)u);
	} else {
		snprintf(ruri, sizeof(ruri), "%s", w->target);
		snprintf(totag, sizeof(totag), ";tag=%s", w->to_tag);
	}
	w->cseq++;
	w->op = op;
	unsigned long long uu = (unsigned long long)u;
	int k = snprintf(
	    buf, sizeof(buf),
	    "SUBSCRIBE %s SIP/2.0\r\n"
	    "Via: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK-lgm%llu.%u.%u;rport\r\n"
	    "Max-Forwards: 70\r\n"
	    "From: <sip:w%llu@sip.test>;tag=lgm%llu.%u\r\n"
	    "To: <sip:x%llu@xmpp.test>%s\r\n"
	    "Call-ID: lgm%llu.%u-%d@bench\r\n"
	    "CSeq: %u SUBSCRIBE\r\n"
	    "Contact: <sip:w%llu@127.0.0.1:%d;transport=%s>\r\n"
	    "Event: presence\r\n"
	    "Accept: application/pidf+xml\r\n"
	    "Expires: %u\r\n"
	    "Content-Length: 0\r\n\r\n",
	    ruri, g.via_tp, g.tc->local_port, uu, w->gen, w->cseq, uu, uu, w->gen, uu,
	    totag, uu, w->gen, (int)getpid(), w->cseq, uu, g.listen, g.uri_tp, expires);
	sc_write(g.tc, buf, (size_t)k);
}

/* The user number after "sip:<c>" in a header value, or -1. */
static long long mix_user(const char *v, size_t n, char c)
{
	char pat[6] = {'s', 'i', 'p', ':', c, '\0'};
	const char *p = v ? memmem(v, n, pat, 5) : NULL;
	if (!p || p + 5 >= v + n || p[5] < '0' || p[5] > '9')
		return -1;
	return strtoll(p + 5, NULL, 10);
}

static void mix_on_subscribe_answer(const struct smsg *m, int code)
{
	size_t il, tl, cl;
	const char *cid = hdr(m, "Call-ID", "i", &il);
	unsigned long long u;
	unsigned gen;
	if (!cid || sscanf(cid, "lgm%llu.%u-", &u, &gen) != 2 || u >= mx.nw)
		return;
	struct mwatch *w = &mx.w[u];
	if (gen != w->gen || w->op == MW_NONE)
		return; /* an answer to an older dialog of the watcher's */
	bool ok = code < 300, main_w = u < mx.nmain;
	int op = w->op;
	w->op = MW_NONE;
	if (op == MW_SUB) {
		if (!ok) {
			if (main_w)
				mx.setup_failed++;
			else
				mx.c_failed++;
			return;
		}
		if (main_w)
			mx.setup_ok++;
		else
			mx.c_ok++;
		const char *to = hdr(m, "To", "t", &tl);
		const char *tag = to ? memmem(to, tl, "tag=", 4) : NULL;
		const char *ct = hdr(m, "Contact", "m", &cl);
		const char *lt = ct ? memchr(ct, '<', cl) : NULL;
		const char *gt = lt ? memchr(lt, '>', cl - (size_t)(lt - ct)) : NULL;
		if (!tag) {
			mx.stray++;
			return;
		}
		tag += 4;
		w->to_tag = dupn(tag, strcspn(tag, ";>\r\n"));
		w->target = lt && gt ? dupn(lt + 1, (size_t)(gt - lt - 1))
		                     : dupn("sip:bridge@127.0.0.1", 20);
		return;
	}
	if (op == MW_REFRESH && ok) {
		mx.r_ok++;
		return;
	}
	if (op == MW_REFRESH)
		mx.r_failed++;
	else if (ok)
		mx.c_ok++;
	else
		mx.c_failed++;
	/* signed out, or the refresh found no dialog: it is gone either way */
	free(w->to_tag);
	free(w->target);
	w->to_tag = w->target = NULL;
}

/* The bridge ended watcher u's dialog (NOTIFY, Subscription-State: terminated):
 * when we are waiting for that after a revocation, it is done. */
static void mix_on_terminated(const struct smsg *m)
{
	size_t il;
	const char *cid = hdr(m, "Call-ID", "i", &il);
	unsigned long long u;
	unsigned gen;
	if (!cid || sscanf(cid, "lgm%llu.%u-", &u, &gen) != 2 || u >= mx.nw)
		return;
	struct mwatch *w = &mx.w[u];
	if (w->op != MW_REVOKE || gen != w->gen)
		return; /* the NOTIFY after a sign-out, or an older dialog's */
	w->op = MW_NONE;
	mx.c_ok++;
	free(w->to_tag);
	free(w->target);
	w->to_tag = w->target = NULL;
}

/* on_response() in mix mode: by the CSeq's method. */
static void mix_on_response(const struct smsg *m)
{
	int code = atoi(m->p + 8);
	size_t cl;
	const char *cseq = hdr(m, "CSeq", NULL, &cl);
	if (code < 200 || !cseq)
		return;
	if (code >= 300 && g.failed++ < 5)
		fprintf(stderr, "loadgen: %.40s (%.*s)\n", m->p, (int)cl, cseq);
	if (memmem(cseq, cl, "SUBSCRIBE", 9)) {
		mix_on_subscribe_answer(m, code);
		return;
	}
	int k = memmem(cseq, cl, "MESSAGE", 7) ? MK_MSG : MK_NOTIFY;
	if (k == MK_NOTIFY && g.phase == 0) {
		if (code < 300)
			g.init_ok++;
		return;
	}
	if (code < 300)
		mx.ok[k]++;
	else
		mx.failed[k]++;
}

/* on_request() in mix mode, after the 200: what arrived from the sink. */
static void mix_on_request(const struct smsg *m)
{
	bool notify = m->hlen > 7 && memcmp(m->p, "NOTIFY ", 7) == 0;
	int64_t t = m->blen ? bench_marker(m->body, m->blen) : 0;
	if (!notify) {
		if (t && m->hlen > 8 && memcmp(m->p, "MESSAGE ", 8) == 0) {
			mx.dlv[MK_X2S]++;
			lat_add(&mx.ilat[MK_X2S], bench_now_ns() - t);
		}
		return;
	}
	mx.notifies++;
	size_t tl, sl;
	const char *ss = hdr(m, "Subscription-State", NULL, &sl);
	if (ss && sl >= 10 && strncasecmp(ss, "terminated", 10) == 0)
		mix_on_terminated(m);
	const char *to = hdr(m, "To", "t", &tl);
	long long u = mix_user(to, to ? tl : 0, 'w');
	if (!t)
		return; /* a first or last NOTIFY, or a state without our stamp */
	if (u < 0 || (uint64_t)u >= mx.nmain) {
		mx.stray++;
		return;
	}
	struct mwatch *w = &mx.w[u];
	if (t <= w->last_mark) {
		mx.dup[MK_PRES]++; /* a state we knew: the answer to a refresh */
		return;
	}
	w->last_mark = t;
	mx.dlv[MK_PRES]++;
	lat_add(&mx.ilat[MK_PRES], bench_now_ns() - t);
}

/* Send kind k's requests due by now (window permitting). */
static void mix_pace(int k, int64_t now, void (*emit)(uint64_t))
{
	uint64_t due = (uint64_t)((double)(now - mx.start) * 1e-9 * (double)mx.rate[k]);
	if (due > mx.total[k] || now >= mx.end)
		due = mx.total[k];
	while (mx.sent[k] < due && mx.sent[k] - mx.ok[k] - mx.failed[k] < g.win)
		emit(mx.sent[k]++);
}

static void mix_churn(int64_t now)
{
	if (!mx.churn || !mx.churn_rate)
		return;
	uint64_t due =
	    (uint64_t)((double)(now - mx.start) * 1e-9 * (double)mx.churn_rate);
	while (mx.c_ops < due) {
		uint64_t u = mx.nmain + mx.c_ops++ % mx.churn;
		struct mwatch *w = &mx.w[u];
		if (w->op != MW_NONE) {
			mx.c_busy++; /* still waiting for its last answer */
			continue;
		}
		if (w->to_tag && w->removals++ % 2 == 0) {
			/* The XMPP user revokes it: the bridge drops the entry and
			 * ends the dialog. Only its final NOTIFY frees the watcher:
			 * the revocation waits in the sink's stream behind the load,
			 * and must not meet the watcher's next subscription. */
			char line[160];
			snprintf(
			    line, sizeof(line),
			    "say <presence type='unsubscribed' from='x%llu@xmpp.test' "
			    "to='w%llu@sip.test'/>\n",
			    (unsigned long long)u, (unsigned long long)u);
			ctl_send(line);
			w->op = MW_REVOKE;
			mx.c_revoke++;
		} else if (w->to_tag) {
			/* Sign-out: the entry stays (dormant) for the next SUBSCRIBE. */
			mx.c_unsub++;
			mix_subscribe(u, MW_UNSUB, 0);
		} else {
			mx.c_sub++;
			mix_subscribe(u, MW_SUB, 3600);
		}
	}
}

/* Main watchers due for a refresh: a few per turn, round the table. */
static void mix_refresh(int64_t now)
{
	if (!mx.nmain || mx.refresh <= 0)
		return;
	for (int i = 0; i < 32; i++) {
		struct mwatch *w = &mx.w[mx.r_cursor];
		if (w->to_tag && w->op == MW_NONE && now >= w->refresh_at) {
			w->refresh_at += (int64_t)(mx.refresh * 1e9);
			mx.r_sent++;
			mix_subscribe(mx.r_cursor, MW_REFRESH, 3600);
		}
		mx.r_cursor = (mx.r_cursor + 1) % mx.nmain;
	}
}

static uint64_t mix_active(void)
{
	uint64_t n = 0;
	for (uint64_t u = 0; u < mx.nw; u++)
		n += mx.w[u].to_tag != NULL;
	return n;
}

static uint64_t mix_pending(void)
{
	uint64_t n = 0;
	for (uint64_t u = 0; u < mx.nw; u++)
		n += mx.w[u].op != MW_NONE;
	return n;
}

/* Ask the sink what it sent and received. */
static void mix_sink(void)
{
	char ans[512];
	ctl_cmd("kinds", ans, sizeof(ans));
	mx.sent[MK_X2S] = (uint64_t)kv(ans, "gmsg");
	mx.sent[MK_PRES] = (uint64_t)kv(ans, "gpres");
	mx.dlv[MK_MSG] = (uint64_t)kv(ans, "msg");
	mx.dlv[MK_NOTIFY] = (uint64_t)kv(ans, "pres");
	mx.sink_p50[MK_MSG] = kvf(ans, "msg_p50");
	mx.sink_p99[MK_MSG] = kvf(ans, "msg_p99");
	mx.sink_p50[MK_NOTIFY] = kvf(ans, "pres_p50");
	mx.sink_p99[MK_NOTIFY] = kvf(ans, "pres_p99");
}

/* Everything sent is in: answered, and delivered as often as sent. */
static bool mix_done(void)
{
	for (int k = 0; k < MK_N; k++) {
		if (mx.sent[k] != mx.total[k] || mx.dlv[k] < mx.sent[k])
			return false;
		if ((k == MK_MSG || k == MK_NOTIFY) &&
		    mx.ok[k] + mx.failed[k] < mx.sent[k])
			return false;
	}
	return mix_pending() == 0;
}

/* One line of counts (cumulative; latency and rates of the interval). Returns
 * what went wrong so far: lost + failed + unanswered. */
static uint64_t mix_report(int64_t now, double dt, bool final)
{
	uint64_t lost = 0, failed = 0, unanswered = 0, extra = 0;
	double el = (double)(now - mx.start) * 1e-9;
	mix_sink();
	printf("mix t=%.0f", el);
	for (int k = 0; k < MK_N; k++) {
		const char *n = mk_name[k];
		double p50 = k == MK_X2S || k == MK_PRES ? lat_pct(&mx.ilat[k], 0.5)
		                                         : mx.sink_p50[k];
		double p99 = k == MK_X2S || k == MK_PRES ? lat_pct(&mx.ilat[k], 0.99)
		                                         : mx.sink_p99[k];
		mx.ilat[k].n = 0;
		printf(" %s_sent=%llu", n, (unsigned long long)mx.sent[k]);
		if (k == MK_MSG || k == MK_NOTIFY) {
			uint64_t ans = mx.ok[k] + mx.failed[k];
			printf(" %s_ok=%llu %s_failed=%llu", n,
			       (unsigned long long)mx.ok[k], n,
			       (unsigned long long)mx.failed[k]);
			failed += mx.failed[k];
			unanswered += mx.sent[k] > ans ? mx.sent[k] - ans : 0;
		}
		printf(" %s_dlv=%llu", n, (unsigned long long)mx.dlv[k]);
		if (k == MK_PRES)
			printf(" pres_repeat=%llu", (unsigned long long)mx.dup[k]);
		if (!final)
			printf(" %s_rate=%.0f %s_p50_us=%.0f %s_p99_us=%.0f", n,
			       dt > 0 ? (double)(mx.sent[k] - mx.prev_sent[k]) / dt : 0,
			       n, p50, n, p99);
		mx.prev_sent[k] = mx.sent[k];
		lost += mx.sent[k] > mx.dlv[k] ? mx.sent[k] - mx.dlv[k] : 0;
		extra += mx.dlv[k] > mx.sent[k] ? mx.dlv[k] - mx.sent[k] : 0;
		lost += final && mx.sent[k] < mx.total[k] ? mx.total[k] - mx.sent[k] : 0;
	}
	uint64_t pending = mix_pending();
	failed += mx.c_failed + mx.r_failed + mx.setup_failed;
	unanswered += pending;
	printf(" churn_ops=%llu churn_sub=%llu churn_unsub=%llu churn_revoke=%llu "
	       "churn_ok=%llu "
	       "churn_failed=%llu churn_busy=%llu refresh=%llu refresh_ok=%llu "
	       "refresh_failed=%llu watchers=%llu notifies_in=%llu stray=%llu",
	       (unsigned long long)mx.c_ops, (unsigned long long)mx.c_sub,
	       (unsigned long long)mx.c_unsub, (unsigned long long)mx.c_revoke,
	       (unsigned long long)mx.c_ok, (unsigned long long)mx.c_failed,
	       (unsigned long long)mx.c_busy, (unsigned long long)mx.r_sent,
	       (unsigned long long)mx.r_ok, (unsigned long long)mx.r_failed,
	       (unsigned long long)mix_active(), (unsigned long long)mx.notifies,
	       (unsigned long long)mx.stray);
	/* before the end, what is not in yet is on its way */
	printf(" %s=%llu failed=%llu unanswered=%llu extra=%llu%s\n",
	       final ? "lost" : "in_flight", (unsigned long long)lost,
	       (unsigned long long)failed, (unsigned long long)unanswered,
	       (unsigned long long)extra, final ? " final=1" : "");
	return lost + failed + unanswered + extra;
}

static int run_mix(int64_t deadline)
{
	char ans[512], line[160];
	if (g.ctlfd < 0 || !g.listen || !g.target || mx.duration <= 0)
		die("mix needs --target, --listen, --ctl and --duration");
	if ((mx.rate[MK_NOTIFY] || mx.rate[MK_PRES]) && !g.s)
		die("mix: the presence kinds need -s");
	if (mx.report <= 0)
		mx.report = 10;
	if (mx.drain <= 0)
		mx.drain = 30;
	if (mx.refresh == 0)
		mx.refresh = 1200;
	setvbuf(stdout, NULL, _IOLBF, 0);
	mx.on = true;
	sc_dial(deadline);

	/* 1. Subscriptions from the XMPP side: the dialogs of our NOTIFYs. */
	if (mx.rate[MK_NOTIFY]) {
		snprintf(line, sizeof(line), "gen sub %llu %llu %llu 0",
		         (unsigned long long)g.s, (unsigned long long)g.win,
		         (unsigned long long)g.s);
		ctl_cmd(line, ans, sizeof(ans));
		wait_until(subs_in, deadline);
	}
	g.phase = 1; /* no more new dialogs: NOTIFYs from here are the run's */

	/* 2. Our watchers: the main ones, then the churn pool (idle to begin). */
	mx.nmain = mx.rate[MK_PRES] ? g.s : 0;
	mx.nw = mx.nmain + mx.churn;
	mx.w = calloc(mx.nw ? mx.nw : 1, sizeof(*mx.w));
	if (!mx.w)
		exit(2);
	for (uint64_t next = 0; mx.setup_ok + mx.setup_failed < mx.nmain;) {
		while (next < mx.nmain && next - mx.setup_ok - mx.setup_failed < g.win)
			mix_subscribe(next++, MW_SUB, 3600);
		push_dirty();
		if (bench_now_ns() > deadline)
			die("mix: timed out waiting for answers to SUBSCRIBE");
		pump(10);
	}
	if (mx.setup_failed)
		die("mix: a watcher's SUBSCRIBE failed");
	while (mx.notifies < mx.nmain) {
		if (bench_now_ns() > deadline)
			die("mix: timed out waiting for the watchers' first NOTIFYs");
		pump(10);
	}
	uint64_t seen; /* then the XMPP side settles */
	do {
		seen = g.got_req;
		pump(300);
	} while (g.got_req != seen);
	ctl_cmd("reset", ans, sizeof(ans));
	mx.notifies = 0;

	/* 3. The run. */
	for (int k = 0; k < MK_N; k++)
		mx.total[k] = (uint64_t)((double)mx.rate[k] * mx.duration);
	printf("mix: %.0f s at msg %llu/s, x2s %llu/s, notify %llu/s, pres %llu/s; %llu "
	       "subscriptions each way, churn %llu watchers at %llu/s, refresh every "
	       "%.0f s, %llu users, window %llu\n",
	       mx.duration, (unsigned long long)mx.rate[MK_MSG],
	       (unsigned long long)mx.rate[MK_X2S],
	       (unsigned long long)mx.rate[MK_NOTIFY],
	       (unsigned long long)mx.rate[MK_PRES], (unsigned long long)g.s,
	       (unsigned long long)mx.churn, (unsigned long long)mx.churn_rate,
	       mx.refresh, (unsigned long long)g.users, (unsigned long long)g.win);
	mx.start = bench_now_ns();
	for (uint64_t u = 0; u < mx.nmain; u++) /* first refreshes spread over a half */
		mx.w[u].refresh_at =
		    mx.start + (int64_t)(mx.refresh * 1e9 *
		                         (0.5 + 0.5 * (double)u / (double)mx.nmain));
	if (mx.total[MK_X2S]) {
		snprintf(line, sizeof(line), "add msg %llu %llu %llu %llu",
		         (unsigned long long)mx.total[MK_X2S], (unsigned long long)g.win,
		         (unsigned long long)g.users,
		         (unsigned long long)mx.rate[MK_X2S]);
		ctl_cmd(line, ans, sizeof(ans));
	}
	if (mx.total[MK_PRES]) {
		snprintf(line, sizeof(line), "add pres %llu %llu %llu %llu",
		         (unsigned long long)mx.total[MK_PRES], (unsigned long long)g.win,
		         (unsigned long long)mx.nmain,
		         (unsigned long long)mx.rate[MK_PRES]);
		ctl_cmd(line, ans, sizeof(ans));
	}
	int64_t end = mx.end = mx.start + (int64_t)(mx.duration * 1e9);
	int64_t step = (int64_t)(mx.report * 1e9), next = mx.start + step,
	        last = mx.start;
	int64_t now;
	while ((now = bench_now_ns()) < end) {
		mix_pace(MK_MSG, now, send_message);
		if (g.ndlg)
			mix_pace(MK_NOTIFY, now, emit_notify);
		mix_churn(now);
		mix_refresh(now);
		push_dirty();
		pump(1);
		if (now >= next) {
			mix_report(now, (double)(now - last) * 1e-9, false);
			last = now;
			next += step;
		}
	}
	/* The last requests due, then the drain. */
	mix_pace(MK_MSG, end, send_message);
	if (g.ndlg)
		mix_pace(MK_NOTIFY, end, emit_notify);
	int64_t drain_end = end + (int64_t)(mx.drain * 1e9), poll = 0;
	while ((now = bench_now_ns()) < drain_end) {
		mix_pace(MK_MSG, end, send_message);
		if (g.ndlg)
			mix_pace(MK_NOTIFY, end, emit_notify);
		push_dirty();
		pump(5);
		if (now - poll > 100000000) {
			poll = now;
			mix_sink();
			if (mix_done())
				break;
		}
	}
	now = bench_now_ns();
	uint64_t bad = mix_report(now, (double)(now - last) * 1e-9, true);
	printf(
	    "mix: %s after %.1f s of drain: delivered/sent msg %llu/%llu, x2s "
	    "%llu/%llu, notify %llu/%llu, pres %llu/%llu\n",
	    bad ? "LOSS (see lost, failed, unanswered, extra)" : "nothing lost",
	    (double)(now - end) * 1e-9, (unsigned long long)mx.dlv[MK_MSG],
	    (unsigned long long)mx.total[MK_MSG], (unsigned long long)mx.dlv[MK_X2S],
	    (unsigned long long)mx.total[MK_X2S], (unsigned long long)mx.dlv[MK_NOTIFY],
	    (unsigned long long)mx.total[MK_NOTIFY], (unsigned long long)mx.dlv[MK_PRES],
	    (unsigned long long)mx.total[MK_PRES]);
	ctl_cmd("stop", ans, sizeof(ans));
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	char **cmd = NULL;
	if (argc < 2)
		die("usage: loadgen msg|x2s|notify|sub|mix|startup|serve [options] (see "
		    "the source "
		    "header)");
	g.mode = argv[1];
	g.n = 1000;
	g.win = 200;
	g.users = 100;
	g.timeout = 60;
	g.ctlfd = -1;
	g.host = htonl(INADDR_LOOPBACK);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : "0";
		if (strcmp(a, "--") == 0) {
			cmd = argv + i + 1;
			break;
		}
		if (!strcmp(a, "--target"))
			g.target = atoi(v);
		else if (!strcmp(a, "--listen"))
			g.listen = atoi(v);
		else if (!strcmp(a, "--ctl"))
			g.ctl = atoi(v);
		else if (!strcmp(a, "--timeout"))
			g.timeout = atoi(v);
		else if (!strcmp(a, "--pid"))
			g.pid = atoi(v);
		else if (!strcmp(a, "--host")) {
			struct in_addr in;
			if (inet_pton(AF_INET, v, &in) != 1)
				die("--host: not an IPv4 address");
			g.host = in.s_addr;
		} else if (!strcmp(a, "--kill"))
			g.kill_pid = atoi(v);
		else if (!strcmp(a, "--log"))
			g.log_file = v;
		else if (!strcmp(a, "--match"))
			g.match = v;
		else if (!strcmp(a, "--teardown") && (g.teardown = true))
			i--;
		else if (!strcmp(a, "-n"))
			g.n = strtoull(v, NULL, 10);
		else if (!strcmp(a, "-s"))
			g.s = strtoull(v, NULL, 10);
		else if (!strcmp(a, "-w"))
			g.win = strtoull(v, NULL, 10);
		else if (!strcmp(a, "-r"))
			g.rate = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--first"))
			g.first = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--pidf") && (g.pidf = true))
			i--;
		else if (!strcmp(a, "--any-notify") && (g.any_notify = true))
			i--;
		else if (!strcmp(a, "-u"))
			g.users = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--tls") && i + 3 < argc) {
			g.tls_cert = argv[i + 1];
			g.tls_key = argv[i + 2];
			g.tls_ca = argv[i + 3];
			i += 2;
		} else if (!strcmp(a, "--tls-name"))
			g.tls_name = v;
		else if (!mix_opt(a, v))
			die("unknown option");
		i++;
	}
	if (!g.users)
		g.users = 1;
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(g.mode, "startup") == 0) {
		if (!cmd || !g.target)
			die("startup needs --target PORT -- COMMAND...");
		return run_startup(cmd);
	}
	if (strcmp(g.mode, "takeover") == 0) {
		if (!g.target || !g.kill_pid || !g.log_file || !g.match)
			die("takeover needs --target PORT --kill PID --log FILE --match "
			    "TEXT");
		return run_takeover();
	}
	g.via_tp = "TCP";
	g.uri_tp = "tcp";
	if (g.tls_cert) {
		tls_init();
		g.via_tp = "TLS";
		g.uri_tp = "tls";
	}
	g.ep = epoll_create1(0);
	if (g.listen) {
		int fd = bench_listen(g.listen);
		if (fd < 0)
			die("cannot listen");
		sc_add(fd, true);
	}
	if (g.ctl) {
		g.ctlfd = bench_connect(g.ctl);
		if (g.ctlfd < 0)
			die("cannot reach xmppsink's control port");
	}
	int64_t deadline = bench_now_ns() + (int64_t)g.timeout * 1000000000LL;
	char ans[256];
	if (g.ctlfd >= 0) {
		ctl_cmd("stats", ans, sizeof(ans));
		if (!kv(ans, "up"))
			die("no component link is up at the sink");
		ctl_cmd("reset", ans, sizeof(ans));
	}

	if (strcmp(g.mode, "mix") == 0)
		return run_mix(deadline);
	if (strcmp(g.mode, "serve") == 0) {
		/* Answer whatever comes on --listen with 200 until --timeout. */
		if (!g.listen)
			die("serve needs --listen");
		g.phase = 1;
		while (bench_now_ns() < deadline)
			pump(100);
		printf("requests=%llu\n", (unsigned long long)g.got_req);
		return 0;
	}
	if (strcmp(g.mode, "msg") == 0) {
		g.phase = 1; /* every answer counts, NOTIFY (--pidf) too */
		sc_dial(deadline);
		int64_t start = bench_now_ns();
		if (!drive(g.n, send_message, deadline))
			die("timed out waiting for answers");
		int64_t end = g.t_last_ok;
		if (g.ctlfd >= 0) {
			sink_wait(g.n, deadline, ans, sizeof(ans));
			if (kv(ans, "last") > end)
				end = kv(ans, "last");
		} else {
			wait_until(all_measured, deadline);
			if (g.t_last_meas > end)
				end = g.t_last_meas;
		}
		report_rate("rate", g.n, start, end);
		report_lat();
		printf("\n");
		return 0;
	}
	if (strcmp(g.mode, "x2s") == 0) {
		if (g.ctlfd < 0 || !g.listen)
			die("x2s needs --ctl and --listen");
		char line[128];
		snprintf(line, sizeof(line), "gen msg %llu %llu %llu %llu",
		         (unsigned long long)g.n, (unsigned long long)g.win,
		         (unsigned long long)g.users, (unsigned long long)g.rate);
		int64_t start = bench_now_ns();
		ctl_cmd(line, ans, sizeof(ans));
		wait_until(all_measured, deadline);
		report_rate("rate", g.n, start, g.t_last_meas);
		report_lat();
		printf("\n");
		return 0;
	}
	if (strcmp(g.mode, "notify") == 0) {
		if (g.ctlfd < 0 || !g.listen || !g.s)
			die("notify needs --ctl, --listen and -s");
		char line[128];
		snprintf(line, sizeof(line), "gen sub %llu %llu %llu 0",
		         (unsigned long long)g.s, (unsigned long long)g.win,
		         (unsigned long long)g.s);
		ctl_cmd(line, ans, sizeof(ans));
		wait_until(subs_in, deadline);
		pump(200); /* the rest of the setup (subscribed, presence) settles */
		ctl_cmd("reset", ans, sizeof(ans));
		g.phase = 1;
		int64_t start = bench_now_ns();
		if (!drive(g.n, emit_notify, deadline))
			die("timed out waiting for answers to NOTIFY");
		sink_wait(g.n, deadline, ans, sizeof(ans));
		int64_t end =
		    kv(ans, "last") > g.t_last_ok ? kv(ans, "last") : g.t_last_ok;
		report_rate("rate", g.n, start, end);
		ctl_cmd("lat", ans, sizeof(ans));
		printf(" p50_us=%.1f p99_us=%.1f subs=%zu\n", kvf(ans, "p50"),
		       kvf(ans, "p99"), g.ndlg);
		return 0;
	}
	if (strcmp(g.mode, "sub") == 0) {
		if (!g.listen || !g.s)
			die("sub needs --listen and -s");
		sc_dial(deadline);
		long rss0 = g.pid ? rss_kb(g.pid) : -1;
		if (g.teardown) {
			g.stag = calloc(g.s, sizeof(*g.stag));
			g.starget = calloc(g.s, sizeof(*g.starget));
			if (!g.stag || !g.starget)
				exit(2);
		}
		int64_t start = bench_now_ns();
		uint64_t n = g.n;
		g.n = g.s;
		if (!drive(g.s, send_subscribe, deadline))
			die("timed out waiting for answers to SUBSCRIBE");
		/* Every watcher gets its first NOTIFY; then let the XMPP side settle. */
		while (g.notifies < g.s) {
			if (bench_now_ns() > deadline)
				die("timed out waiting for NOTIFYs");
			pump(10);
		}
		int64_t set_end =
		    g.t_nth_notify > g.t_last_ok ? g.t_nth_notify : g.t_last_ok;
		uint64_t seen;
		do {
			seen = g.notifies;
			pump(300);
		} while (g.notifies != seen);
		long rss1 = g.pid ? rss_kb(g.pid) : -1;
		printf("subs=%llu setup_rate=%.0f rss0_kb=%ld rss1_kb=%ld "
		       "per_sub_bytes=%.0f",
		       (unsigned long long)g.s,
		       (double)g.s / ((double)(set_end - start) * 1e-9), rss0, rss1,
		       rss0 > 0 ? (double)(rss1 - rss0) * 1024.0 / (double)g.s : 0.0);
		if (n && g.ctlfd >= 0) {
			g.n = n;
			g.measured = 0;
			g.lat.n = 0;
			g.last_ack = 0;
			char line[128];
			snprintf(line, sizeof(line), "gen pres %llu %llu %llu %llu",
			         (unsigned long long)n, (unsigned long long)g.win,
			         (unsigned long long)g.s, (unsigned long long)g.rate);
			start = bench_now_ns();
			g.counting = true;
			ctl_cmd(line, ans, sizeof(ans));
			wait_until(all_measured, deadline);
			printf(" ");
			report_rate("rate", n, start, g.t_last_meas);
			report_lat();
		}
		if (g.teardown) {
			/* the presence run's NOTIFYs are in; each sign-out is answered
			 * and its dialog ended by a terminating NOTIFY */
			uint64_t term0 = g.terminated;
			int64_t t_start = bench_now_ns();
			if (!drive(g.s, send_unsubscribe, deadline))
				die("timed out waiting for answers to the sign-outs");
			while (g.terminated - term0 < g.s) {
				if (bench_now_ns() > deadline)
					die("timed out waiting for the terminating "
					    "NOTIFYs");
				pump(10);
			}
			int64_t t_end =
			    g.t_last_term > g.t_last_ok ? g.t_last_term : g.t_last_ok;
			printf(" teardown_rate=%.0f",
			       (double)g.s / ((double)(t_end - t_start) * 1e-9));
		}
		printf("\n");
		return 0;
	}
	die("unknown mode");
}

/*
 * loadgen: a Lync-style SIP peer over TCP for the benchmark. It sends requests
 * with a window of outstanding transactions (and optionally at a paced rate),
 * answers every request the middlebox sends it with 200 OK, and drives
 * xmppsink over its control port. Each run prints one line of key=value
 * figures.
 *
 *   loadgen MODE [options]
 *   modes:
 *     msg      N page-mode MESSAGEs to --target (SIP->XMPP)
 *     x2s      N XMPP messages from the sink, taken as MESSAGEs on --listen
 *     notify   S subscriptions from XMPP (sink), then N NOTIFYs in them
 * (NOTIFY->presence) sub      S SUBSCRIBEs to --target, then N presence stanzas from the
 * sink (presence->NOTIFY); with --pid, VmRSS before and after startup  fork and exec the
 * command after --, then OPTIONS to --target until 200; prints the time and the pid and
 * leaves it running serve    answer every request on --listen with 200 until --timeout
 *   options:
 *     --target PORT   the middlebox's SIP TCP port on 127.0.0.1
 *     --listen PORT   our SIP TCP port (where the middlebox sends requests)
 *     --ctl PORT      xmppsink's control port (none: latency measured here)
 *     -n N  -s S  -w WINDOW  -r RATE (per second; 0: saturate)  -u USERS
 *     --timeout SEC   give up (default 60)   --pid PID (sub: VmRSS)
 */
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
	int pid;
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

static void ctl_ack(void)
{
	uint64_t v = !strcmp(g.mode, "notify") && g.phase == 0 ? g.subs_in : g.measured;
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

static void sc_push(struct sconn *c)
{
	if (c->want_out || !bbuf_used(&c->out))
		return;
	if (bbuf_flush(&c->out, c->fd) < 0)
		die("connection lost while writing");
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
		                 "Contact: <sip:lg@127.0.0.1:%d;transport=tcp>\r\n"
		                 "Expires: 3600\r\n",
		                 g.listen);
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
	bool notify = m->hlen > 7 && memcmp(m->p, "NOTIFY ", 7) == 0;
	if (notify)
		g.notifies++;
	int64_t t = m->blen ? bench_marker(m->body, m->blen) : 0;
	if (t) {
		int64_t now = bench_now_ns();
		lat_add(&g.lat, now - t);
		g.measured++;
		g.t_last_meas = now;
	}
}

static void on_response(const struct smsg *m)
{
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
	    "Via: SIP/2.0/TCP 127.0.0.1:%d;branch=z9hG4bK-lg%llu;rport\r\n"
	    "Max-Forwards: 70\r\n"
	    "From: <sip:s%llu@sip.test>;tag=lg%llu\r\n"
	    "To: <sip:x%llu@xmpp.test>\r\n"
	    "Call-ID: lg%llu-%d@bench\r\n"
	    "CSeq: 1 %s\r\n"
	    "User-Agent: UCCAPI/15.0.4481.1000 OC/15.0.4481.1000 (Microsoft Lync)\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %d\r\n\r\n%s",
	    g.pidf ? "NOTIFY" : "MESSAGE", (unsigned long long)u, g.tc->local_port,
	    (unsigned long long)i, (unsigned long long)u, (unsigned long long)i,
	    (unsigned long long)u, (unsigned long long)i, (int)getpid(),
	    g.pidf ? "NOTIFY" : "MESSAGE",
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
	int k = snprintf(buf, sizeof(buf),
	                 "SUBSCRIBE sip:x%llu@xmpp.test SIP/2.0\r\n"
	                 "Via: SIP/2.0/TCP 127.0.0.1:%d;branch=z9hG4bK-lgs%llu;rport\r\n"
	                 "Max-Forwards: 70\r\n"
	                 "From: <sip:w%llu@sip.test>;tag=lgs%llu\r\n"
	                 "To: <sip:x%llu@xmpp.test>\r\n"
	                 "Call-ID: lgs%llu-%d@bench\r\n"
	                 "CSeq: 1 SUBSCRIBE\r\n"
	                 "Contact: <sip:w%llu@127.0.0.1:%d;transport=tcp>\r\n"
	                 "Event: presence\r\n"
	                 "Accept: application/pidf+xml\r\n"
	                 "Expires: 3600\r\n"
	                 "Content-Length: 0\r\n\r\n",
	                 (unsigned long long)u, g.tc->local_port, (unsigned long long)i,
	                 (unsigned long long)i, (unsigned long long)i,
	                 (unsigned long long)u, (unsigned long long)i, (int)getpid(),
	                 (unsigned long long)i, g.listen);
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
	                 "Via: SIP/2.0/TCP 127.0.0.1:%d;branch=z9hG4bK-lgn%u-%s;rport\r\n"
	                 "Max-Forwards: 70\r\n"
	                 "From: %s\r\n"
	                 "To: %s\r\n"
	                 "Call-ID: %s\r\n"
	                 "CSeq: %u NOTIFY\r\n"
	                 "Contact: <sip:lg@127.0.0.1:%d;transport=tcp>\r\n"
	                 "Event: presence\r\n"
	                 "Subscription-State: active;expires=3600\r\n"
	                 "Content-Type: application/pidf+xml\r\n"
	                 "Content-Length: %d\r\n\r\n%s",
	                 d->ruri, d->c->local_port, d->cseq, initial ? "i" : d->call_id,
	                 d->from, d->to, d->call_id, d->cseq, g.listen, bl, body);
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
				sc_add(fd, false);
			}
			continue;
		}
		if (ev[i].events & EPOLLOUT) {
			if (bbuf_flush(&c->out, c->fd) < 0)
				die("connection lost");
			if (!bbuf_used(&c->out)) {
				c->want_out = false;
				arm(c);
			}
		}
		if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
			ssize_t r = bbuf_fill(&c->in, c->fd);
			if (r == 0 || r == -1) {
				epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				if (c == g.tc)
					die("the middlebox closed the connection");
				continue; /* leaks c: dialogs may still point at it */
			}
			if (r > 0)
				sc_input(c);
		}
	}
	push_dirty();
	ctl_ack();
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
		int fd = bench_connect(g.target);
		if (fd < 0) {
			usleep(2000);
			continue;
		}
		char req[512];
		int k = snprintf(
		    req, sizeof(req),
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
		if (got > 12 && memcmp(buf, "SIP/2.0 200", 11) == 0) {
			printf("startup_ms=%.1f pid=%d\n",
			       (double)(bench_now_ns() - t0) / 1e6, (int)pid);
			return 0;
		}
		usleep(2000);
	}
	printf("startup_ms=n/a pid=%d\n", (int)pid);
	return 1;
}

int main(int argc, char **argv)
{
	char **cmd = NULL;
	if (argc < 2)
		die("usage: loadgen msg|x2s|notify|sub|startup [options] (see the source "
		    "header)");
	g.mode = argv[1];
	g.n = 1000;
	g.win = 200;
	g.users = 100;
	g.timeout = 60;
	g.ctlfd = -1;
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
		else if (!strcmp(a, "-u"))
			g.users = strtoull(v, NULL, 10);
		else
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
		g.tc = sc_add(bench_connect(g.target), false);
		if (g.tc->fd < 0)
			die("cannot reach --target");
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
		g.tc = sc_add(bench_connect(g.target), false);
		if (g.tc->fd < 0)
			die("cannot reach --target");
		long rss0 = g.pid ? rss_kb(g.pid) : -1;
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
		uint64_t seen;
		do {
			seen = g.notifies;
			pump(300);
		} while (g.notifies != seen);
		int64_t est = bench_now_ns();
		long rss1 = g.pid ? rss_kb(g.pid) : -1;
		printf("subs=%llu setup_rate=%.0f rss0_kb=%ld rss1_kb=%ld "
		       "per_sub_bytes=%.0f",
		       (unsigned long long)g.s,
		       (double)g.s / ((double)(est - start) * 1e-9), rss0, rss1,
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
			ctl_cmd(line, ans, sizeof(ans));
			wait_until(all_measured, deadline);
			printf(" ");
			report_rate("rate", n, start, g.t_last_meas);
			report_lat();
		}
		printf("\n");
		return 0;
	}
	die("unknown mode");
}

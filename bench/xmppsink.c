/*
 * xmppsink: a minimal XMPP server for the benchmark. It accepts XEP-0114
 * component connections (plain TCP; handshake SHA1(stream id + secret) in hex),
 * counts and time-stamps the stanzas it receives, answers presence subscriptions
 * and probes, and generates XMPP->SIP load (messages, presence, subscriptions)
 * on command.
 *
 *   xmppsink -p PORT -c CTLPORT [-s SECRET]
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
#include <openssl/sha.h>
#include <stdbool.h>
#include <sys/epoll.h>

#include "bench.h"

enum ckind { C_LISTEN, C_CTL_LISTEN, C_COMP, C_CTL };
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
};

static struct {
	int ep;
	const char *secret;
	struct conn *comp; /* the newest component link that is up */
	struct conn *ctl;
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
	free(c->in.p);
	free(c->out.p);
	free(c);
}

static void send_out(struct conn *c, const char *s, size_t n)
{
	bbuf_put(&c->out, s, n);
	if (!c->want_out) {
		if (bbuf_flush(&c->out, c->fd) == 0 && bbuf_used(&c->out)) {
			c->want_out = true;
			arm(c);
		}
	}
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
		if (type && tl == 9 && memcmp(type, "subscribe", 9) == 0) {
			g.subs++;
			comp_reply_presence(c, st, n, true);
			return;
		}
		if (type && tl == 5 && memcmp(type, "probe", 5) == 0) {
			comp_reply_presence(c, st, n, false);
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
				on_stanza(c, b->p + c->start, j + 1 - c->start);
			if (c->depth == 0) /* </stream:stream>: close ours too */
				send_out(c, "</stream:stream>", 16);
			if (c->depth < 0)
				c->depth = 0;
		} else if (b->p[j - 1] == '/') {
			if (c->depth == 1)
				on_stanza(c, b->p + i, j + 1 - i);
		} else {
			if (c->depth == 1)
				c->start = i;
			c->depth++;
		}
		i = j + 1;
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
		if (bbuf_flush(&c->out, c->fd) == 0 && bbuf_used(&c->out)) {
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
		             (unsigned long long)g.subs, g.comp != NULL,
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
		    lat_pct(&g.ilat[1], 0.99), g.comp != NULL);
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

int main(int argc, char **argv)
{
	int port = 0, ctl = 0, opt;
	g.secret = "s3cret";
	while ((opt = getopt(argc, argv, "p:c:s:")) != -1) {
		if (opt == 'p')
			port = atoi(optarg);
		else if (opt == 'c')
			ctl = atoi(optarg);
		else if (opt == 's')
			g.secret = optarg;
		else
			return 2;
	}
	g.ep = epoll_create1(0);
	int lfd = bench_listen(port), cfd = bench_listen(ctl);
	if (!port || !ctl || lfd < 0 || cfd < 0) {
		fprintf(stderr, "usage: xmppsink -p PORT -c CTLPORT [-s SECRET]\n");
		return 2;
	}
	conn_add(lfd, C_LISTEN);
	conn_add(cfd, C_CTL_LISTEN);
	for (;;) {
		struct epoll_event ev[64];
		int timeout = g.comp && gen_paced() ? 1 : -1;
		int n = epoll_wait(g.ep, ev, 64, timeout);
		for (int i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;
			if (c->kind == C_LISTEN || c->kind == C_CTL_LISTEN) {
				int fd = accept(c->fd, NULL, NULL);
				if (fd >= 0) {
					bench_nonblock(fd);
					struct conn *nc = conn_add(
					    fd, c->kind == C_LISTEN ? C_COMP : C_CTL);
					if (nc->kind == C_CTL)
						g.ctl = nc;
				}
				continue;
			}
			if (ev[i].events & EPOLLOUT) {
				if (bbuf_flush(&c->out, c->fd) < 0) {
					conn_close(c);
					continue;
				}
				if (!bbuf_used(&c->out)) {
					c->want_out = false;
					arm(c);
				}
			}
			if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				ssize_t r = bbuf_fill(&c->in, c->fd);
				if (r == 0 || r == -1) {
					conn_close(c);
					continue;
				}
				if (c->kind == C_COMP)
					comp_input(c);
				else
					ctl_input(c);
			}
		}
		generate();
	}
}

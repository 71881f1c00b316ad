/* xdns: SRV (RFC 6120 section 3.2, XEP-0368) and A/AAAA lookups on the loop with
 * c-ares. The rules are in xdns_srv_merge and xdns_srv_order; the rest gathers
 * answers. */
#include "presbridge/xdns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ares.h>

#include "presbridge/log.h"
#include "presbridge/loop.h"

#define MOD "xdns"

/* ------------------------------------------------------------ pure rules */

bool xdns_srv_is_root(const char *target)
{
	return !target || target[0] == '\0' || strcmp(target, ".") == 0;
}

void xdns_srv_order(struct xdns_srv *v, size_t n, uint32_t (*rnd)(void *arg), void *arg)
{
	/* RFC 2782 "Usage rules": sort by priority, lowest first (insertion sort:
	 * stable, and n is at most 2 * XDNS_SRV_MAX). */
	for (size_t i = 1; i < n; i++) {
		struct xdns_srv x = v[i];
		size_t j = i;
		while (j > 0 && v[j - 1].priority > x.priority) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
	for (size_t lo = 0; lo < n;) {
		size_t hi = lo + 1;
		while (hi < n && v[hi].priority == v[lo].priority)
			hi++;
		/* RFC 2782, the Weight field: for each place of this priority, pick
		 * from the records not yet ordered. */
		for (size_t pos = lo; pos + 1 < hi; pos++) {
			/* weight-0 records at the beginning (stable) */
			size_t z = pos;
			for (size_t i = pos; i < hi; i++)
				if (v[i].weight == 0) {
					struct xdns_srv x = v[i];
					memmove(&v[z + 1], &v[z], (i - z) * sizeof(*v));
					v[z++] = x;
				}
			uint32_t sum = 0;
			for (size_t i = pos; i < hi; i++)
				sum += v[i].weight;
			/* uniform in [0, sum], inclusive */
			uint32_t r = rnd(arg) % (sum + 1);
			uint32_t run = 0;
			size_t k = pos;
			for (size_t i = pos; i < hi; i++) {
				run += v[i].weight;
				if (run >= r) {
					k = i;
					break;
				}
			}
			struct xdns_srv x = v[k];
			memmove(&v[pos + 1], &v[pos], (k - pos) * sizeof(*v));
			v[pos] = x;
		}
		lo = hi;
	}
}

enum srv_class { SRV_NONE, SRV_RECORDS, SRV_DOT, SRV_FAIL };

static enum srv_class srv_classify(const struct xdns_srv_answer *a)
{
	if (!a || !a->asked)
		return SRV_NONE;
	if (a->status == -ENOENT)
		return SRV_NONE;
	if (a->status != 0)
		return SRV_FAIL;
	for (size_t i = 0; i < a->n; i++)
		if (!xdns_srv_is_root(a->v[i].target))
			return SRV_RECORDS;
	/* RFC 2782 "Usage rules" speak of precisely one "." record; several
	 * records that are all "." say the same. */
	return a->n ? SRV_DOT : SRV_NONE;
}

static size_t srv_copy(const struct xdns_srv_answer *a, bool tls, struct xdns_srv *out)
{
	size_t k = 0;
	for (size_t i = 0; a && a->asked && a->status == 0 && i < a->n; i++) {
		if (xdns_srv_is_root(a->v[i].target))
			continue;
		out[k] = a->v[i];
		out[k].direct_tls = tls;
		k++;
	}
	return k;
}

enum xdns_plan xdns_srv_merge(const struct xdns_srv_answer *xmpps,
                              const struct xdns_srv_answer *xmpp, struct xdns_srv *out,
                              size_t *nout, int *status)
{
	enum srv_class s = srv_classify(xmpps), x = srv_classify(xmpp);

	*nout = 0;
	*status = 0;
	/* XEP-0368 section 3 rule 1: both sets are one set for the RFC 2782 order.
	 * A "." beside records of the other name only rules that connection
	 * method out (XEP-0368 section 5 for _xmpps-server). */
	if (s == SRV_RECORDS || x == SRV_RECORDS) {
		size_t k = srv_copy(xmpps, true, out);
		k += srv_copy(xmpp, false, out + k);
		*nout = k;
		return XDNS_PLAN_SRV;
	}
	/* An unanswered query might have held records: neither "." nor the
	 * fallback can be decided (RFC 6120 section 3.2.1 step 8). */
	if (x == SRV_FAIL || s == SRV_FAIL) {
		*status = x == SRV_FAIL ? xmpp->status : xmpps->status;
		return XDNS_PLAN_FAIL;
	}
	/* RFC 6120 section 3.2.1 step 3: "." on _xmpp-server: no service. */
	if (x == SRV_DOT) {
		*status = -EHOSTUNREACH;
		return XDNS_PLAN_FAIL;
	}
	/* XEP-0368 section 5: "." on _xmpps-server means SRV is in use: no A/AAAA
	 * fallback, and _xmpp-server has nothing. */
	if (s == SRV_DOT) {
		*status = -ENOENT;
		return XDNS_PLAN_FAIL;
	}
	return XDNS_PLAN_FALLBACK; /* RFC 6120 section 3.2.2 */
}

/* ------------------------------------------------------------ the resolver */

/* c-ares statuses in our words. */
static const struct {
	int ares;
	int err;
	const char *words;
} ares_map[] = {
    {ARES_ENOTFOUND, -ENOENT, "no such name (NXDOMAIN)"},
    {ARES_ENODATA, -ENOENT, "no records of that type (NODATA)"},
    {ARES_ETIMEOUT, -ETIMEDOUT, "no answer from the DNS server"},
    {ARES_ECONNREFUSED, -EIO,
     "refused (a REFUSED answer, or no DNS server on that port)"},
    {ARES_ESERVFAIL, -EIO, "the DNS server failed (SERVFAIL)"},
    {ARES_EREFUSED, -EIO, "the DNS server refused the query (REFUSED)"},
    {ARES_EFORMERR, -EIO, "the DNS server did not understand the query (FORMERR)"},
    {ARES_EBADRESP, -EIO, "malformed answer"},
    {ARES_EBADNAME, -EIO, "not a valid DNS name"},
    {ARES_ENOMEM, -ENOMEM, "out of memory"},
};

static int ares_err(int st, const char **words)
{
	for (size_t i = 0; i < sizeof(ares_map) / sizeof(ares_map[0]); i++)
		if (ares_map[i].ares == st) {
			*words = ares_map[i].words;
			return ares_map[i].err;
		}
	*words = ares_strerror(st);
	return -EIO;
}

static const char *const srv_name[2] = {"_xmpps-server._tcp", "_xmpp-server._tcp"};

enum { ANS_XMPPS, ANS_XMPP, REQ_ADDR };

struct xdns_req {
	struct xdns_query *q; /* NULL once the query is gone: the answer is dropped */
	struct xdns_req *prev, *next;
	int kind; /* ANS_XMPPS, ANS_XMPP or REQ_ADDR */
	size_t idx;
};

struct addrs {
	int status; /* 0, or the lookup's failure */
	const char *words;
	size_t n;
	struct {
		char addr[46];
		int family;
	} v[16];
};

struct xdns_query {
	struct xdns *d;
	struct xdns_query *prev, *next;
	struct xdns_req *reqs; /* outstanding c-ares requests */
	char *domain;
	xdns_done_h *done;
	void *arg;
	struct loop_timer tmr; /* the deadline, then the delivery of the result */
	unsigned pending;
	bool finished, delivering;

	/* SRV answers (the records own their targets) */
	struct {
		bool asked, answered;
		int status;
		const char *words;
		struct xdns_srv *v;
		size_t n;
	} ans[2];
	/* what to look up: ordered SRV records, or the domain (fallback) */
	struct xdns_srv *plan;
	size_t nplan;
	bool fallback;
	struct addrs *addrs;

	struct xdns_result res;
};

struct xdns {
	struct loop *l;
	ares_channel ch;
	struct loop_timer tmr; /* c-ares's own retransmissions and timeouts */
	int *fds;
	size_t nfds, capfds;
	struct xdns_query *queries;
	uint64_t timeout_ms;
	uint64_t rng;
};

static unsigned lib_users;

/* splitmix64: load spreading, not secrets */
static uint32_t rng_next(void *arg)
{
	struct xdns *d = arg;
	uint64_t z = (d->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static void appendf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append to buf; a cut is marked with "..." */
static void appendf(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	if (len + 1 >= size)
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
	if (w >= 0 && (size_t)w >= size - len && size >= 4)
		memcpy(buf + size - 4, "...", 4);
}

static void why(struct xdns_query *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void why(struct xdns_query *q, const char *fmt, ...)
{
	char part[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(part, sizeof(part), fmt, ap);
	va_end(ap);
	appendf(q->res.why, sizeof(q->res.why), "%s%s", q->res.why[0] ? "; " : "", part);
}

/* --- descriptors and the timer */

static void rearm(struct xdns *d);

static void on_fd(int fd, unsigned events, void *arg)
{
	struct xdns *d = arg;
	ares_socket_t r = (events & (LOOP_READ | LOOP_ERROR)) ? fd : ARES_SOCKET_BAD;
	ares_socket_t w = (events & LOOP_WRITE) ? fd : ARES_SOCKET_BAD;
	ares_process_fd(d->ch, r, w);
	rearm(d);
}

static void on_ares_timer(void *arg)
{
	struct xdns *d = arg;
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	rearm(d);
}

static void rearm(struct xdns *d)
{
	struct timeval tv;
	if (!ares_timeout(d->ch, NULL, &tv)) {
		loop_timer_cancel(d->l, &d->tmr);
		return;
	}
	uint64_t ms = (uint64_t)tv.tv_sec * 1000 + ((uint64_t)tv.tv_usec + 999) / 1000;
	loop_timer_start(d->l, &d->tmr, ms, on_ares_timer, d);
}

static ssize_t fd_find(const struct xdns *d, int fd)
{
	for (size_t i = 0; i < d->nfds; i++)
		if (d->fds[i] == fd)
			return (ssize_t)i;
	return -1;
}

/* c-ares opens, watches and closes its sockets through this (ARES_OPT_SOCK_STATE_CB). */
static void on_sock_state(void *data, ares_socket_t s, int readable, int writable)
{
	struct xdns *d = data;
	unsigned ev = (readable ? LOOP_READ : 0u) | (writable ? LOOP_WRITE : 0u);
	ssize_t i = fd_find(d, s);

	if (!ev) {
		if (i >= 0) {
			loop_fd_del(d->l, s);
			d->fds[i] = d->fds[--d->nfds];
		}
		return;
	}
	if (i >= 0) {
		int e = loop_fd_mod(d->l, s, ev);
		if (e)
			log_warn(MOD, "cannot watch DNS socket %d: %s", s, strerror(-e));
		return;
	}
	if (d->nfds == d->capfds) {
		size_t cap = d->capfds ? d->capfds * 2 : 8;
		int *v = realloc(d->fds, cap * sizeof(*v));
		if (!v) {
			/* the lookups on it end at the deadline */
			log_warn(MOD, "cannot watch DNS socket %d: out of memory", s);
			return;
		}
		d->fds = v;
		d->capfds = cap;
	}
	int e = loop_fd_add(d->l, s, ev, on_fd, d);
	if (e) {
		log_warn(MOD, "cannot watch DNS socket %d: %s", s, strerror(-e));
		return;
	}
	d->fds[d->nfds++] = s;
}

/* --- requests */

static struct xdns_req *req_new(struct xdns_query *q, int kind, size_t idx)
{
	struct xdns_req *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->q = q;
	r->kind = kind;
	r->idx = idx;
	r->next = q->reqs;
	if (q->reqs)
		q->reqs->prev = r;
	q->reqs = r;
	return r;
}

/* Take r off its query (if any) and free it; returns the query, NULL if gone. */
static struct xdns_query *req_end(struct xdns_req *r)
{
	struct xdns_query *q = r->q;
	if (q) {
		if (r->prev)
			r->prev->next = r->next;
		else
			q->reqs = r->next;
		if (r->next)
			r->next->prev = r->prev;
	}
	free(r);
	return q;
}

/* The query no longer wants its requests: they free themselves when c-ares
 * calls back (an answer, a timeout, or ares_destroy). */
static void orphan_reqs(struct xdns_query *q)
{
	for (struct xdns_req *r = q->reqs, *next; r; r = next) {
		next = r->next;
		r->q = NULL;
		r->prev = r->next = NULL;
	}
	q->reqs = NULL;
}

/* --- a query's life */

static void query_free(struct xdns_query *q)
{
	orphan_reqs(q);
	if (q->d)
		loop_timer_cancel(q->d->l, &q->tmr);
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < q->ans[k].n; i++)
			free(q->ans[k].v[i].target);
		free(q->ans[k].v);
	}
	free(q->plan);
	free(q->addrs);
	for (size_t i = 0; i < q->res.n; i++)
		free(q->res.v[i].host);
	free(q->res.v);
	free(q->domain);
	free(q);
}

static void query_unlink(struct xdns_query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else if (q->d->queries == q)
		q->d->queries = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

static void on_deliver(void *arg)
{
	struct xdns_query *q = arg;
	query_unlink(q);
	q->delivering = true;
	if (q->res.status == 0)
		log_debug(MOD, "%s: %zu target(s): %s", q->domain, q->res.n, q->res.why);
	else
		log_debug(MOD, "%s: %s: %s", q->domain, strerror(-q->res.status),
		          q->res.why);
	/* done may free the resolver: q no longer refers to it past this point */
	q->done(&q->res, q->arg);
	q->d = NULL;
	query_free(q);
}

/* Settle the result; done runs from the loop (a 0 ms timer), never from inside
 * c-ares or xdns_resolve. */
static void finish(struct xdns_query *q, int status)
{
	if (q->finished)
		return;
	q->finished = true;
	orphan_reqs(q);
	q->res.status = status;
	loop_timer_start(q->d->l, &q->tmr, 0, on_deliver, q);
}

/* Turn the address answers into targets, in plan order; duplicates dropped. */
static int collect_targets(struct xdns_query *q)
{
	size_t max = 0;
	for (size_t i = 0; i < q->nplan; i++)
		max += q->addrs[i].n;
	if (!max)
		return 0;
	q->res.v = calloc(max, sizeof(*q->res.v));
	if (!q->res.v)
		return -ENOMEM;
	for (size_t i = 0; i < q->nplan; i++) {
		const struct xdns_srv *s = &q->plan[i];
		for (size_t j = 0; j < q->addrs[i].n; j++) {
			bool dup = false;
			for (size_t k = 0; k < q->res.n && !dup; k++)
				dup =
				    q->res.v[k].port == s->port &&
				    q->res.v[k].direct_tls == s->direct_tls &&
				    strcmp(q->res.v[k].addr, q->addrs[i].v[j].addr) == 0;
			if (dup)
				continue;
			struct xdns_target *t = &q->res.v[q->res.n];
			t->host = strdup(s->target);
			if (!t->host)
				return -ENOMEM;
			memcpy(t->addr, q->addrs[i].v[j].addr, sizeof(t->addr));
			t->family = q->addrs[i].v[j].family;
			t->port = s->port;
			t->direct_tls = s->direct_tls;
			t->from_srv = !q->fallback;
			q->res.n++;
		}
	}
	return 0;
}

/* Write what the address lookups gave into the result; returns its status. At
 * the deadline the unanswered ones still say -ETIMEDOUT. */
static int addrs_settle(struct xdns_query *q)
{
	int worst = -ENOENT;
	for (size_t i = 0; i < q->nplan; i++) {
		const struct addrs *a = &q->addrs[i];
		if (a->n) {
			char list[128] = "";
			for (size_t j = 0; j < a->n; j++)
				appendf(list, sizeof(list), "%s%s", j ? " " : "",
				        a->v[j].addr);
			why(q, "%s: %s", q->plan[i].target, list);
		} else {
			why(q, "%s: %s", q->plan[i].target,
			    a->words ? a->words : "no address");
			/* a timeout says more than "no address", a failure more than
			 * a timeout is unlikely to: keep the first non-ENOENT */
			if (a->status && a->status != -ENOENT && worst == -ENOENT)
				worst = a->status;
		}
	}
	int e = collect_targets(q);
	if (e)
		return e;
	return q->res.n ? 0 : worst;
}

static void on_addr(void *arg, int st, int timeouts, struct ares_addrinfo *ai)
{
	(void)timeouts;
	struct xdns_req *r = arg;
	size_t idx = r->idx;
	struct xdns_query *q = req_end(r);

	if (!q || q->finished) {
		ares_freeaddrinfo(ai);
		return;
	}
	struct addrs *a = &q->addrs[idx];
	if (st == ARES_SUCCESS && ai) {
		for (struct ares_addrinfo_node *n = ai->nodes; n; n = n->ai_next) {
			if (a->n == sizeof(a->v) / sizeof(a->v[0]))
				break;
			const void *src;
			if (n->ai_family == AF_INET)
				src = &((const struct sockaddr_in *)(const void *)
				            n->ai_addr)
				           ->sin_addr;
			else if (n->ai_family == AF_INET6)
				src = &((const struct sockaddr_in6 *)(const void *)
				            n->ai_addr)
				           ->sin6_addr;
			else
				continue;
			if (!inet_ntop(n->ai_family, src, a->v[a->n].addr,
			               sizeof(a->v[a->n].addr)))
				continue;
			a->v[a->n].family = n->ai_family;
			a->n++;
		}
		if (!a->n) {
			a->status = -ENOENT;
			a->words = "no address";
		}
	} else {
		a->status = ares_err(st, &a->words);
	}
	ares_freeaddrinfo(ai);
	if (--q->pending == 0)
		finish(q, addrs_settle(q));
}

/* An IP literal needs no lookup. (c-ares 1.18.1's ares_getaddrinfo sends an
 * IPv4 literal to the DNS server when asked for AF_UNSPEC.) */
static bool numeric(const char *s, struct addrs *a)
{
	static const int fam[] = {AF_INET, AF_INET6};
	unsigned char buf[sizeof(struct in6_addr)];
	for (size_t i = 0; i < 2; i++)
		if (inet_pton(fam[i], s, buf) == 1 &&
		    inet_ntop(fam[i], buf, a->v[0].addr, sizeof(a->v[0].addr))) {
			a->v[0].family = fam[i];
			a->n = 1;
			a->status = 0;
			a->words = NULL;
			return true;
		}
	return false;
}

static void start_addrs(struct xdns_query *q)
{
	q->addrs = calloc(q->nplan, sizeof(*q->addrs));
	if (!q->addrs) {
		finish(q, -ENOMEM);
		return;
	}
	for (size_t i = 0; i < q->nplan; i++) {
		q->addrs[i].status = -ETIMEDOUT;
		q->addrs[i].words = "no answer in time";
	}
	/* counted before the first call: c-ares may answer inside it */
	q->pending = (unsigned)q->nplan;
	struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC,
	                                    .ai_socktype = SOCK_STREAM};
	for (size_t i = 0; i < q->nplan && !q->finished; i++) {
		if (numeric(q->plan[i].target, &q->addrs[i])) {
			if (--q->pending == 0)
				finish(q, addrs_settle(q));
			continue;
		}
		struct xdns_req *r = req_new(q, REQ_ADDR, i);
		if (!r) {
			finish(q, -ENOMEM);
			return;
		}
		ares_getaddrinfo(q->d->ch, q->plan[i].target, NULL, &hints, on_addr, r);
	}
}

static void srv_text_add(struct xdns_query *q, int k)
{
	for (size_t i = 0; i < q->ans[k].n; i++) {
		const struct xdns_srv *s = &q->ans[k].v[i];
		appendf(q->res.srv_text, sizeof(q->res.srv_text), "%s %u %u %u %s\n",
		        srv_name[k], s->priority, s->weight, s->port,
		        xdns_srv_is_root(s->target) ? "." : s->target);
	}
}

/* What each SRV name gave, into why and srv_text. */
static void srv_why(struct xdns_query *q)
{
	for (int k = 0; k < 2; k++) {
		if (!q->ans[k].asked)
			continue;
		srv_text_add(q, k);
		if (!q->ans[k].answered)
			why(q, "%s.%s: no answer", srv_name[k], q->domain);
		else if (q->ans[k].status)
			why(q, "%s.%s: %s", srv_name[k], q->domain, q->ans[k].words);
		else
			why(q, "%s.%s: %zu record(s)", srv_name[k], q->domain,
			    q->ans[k].n);
	}
}

/* Both SRV queries answered: decide, then look up addresses. */
static void srvs_done(struct xdns_query *q)
{
	struct xdns_srv_answer a[2];

	srv_why(q);
	for (int k = 0; k < 2; k++)
		a[k] = (struct xdns_srv_answer){q->ans[k].asked, q->ans[k].status,
		                                q->ans[k].v, q->ans[k].n};
	q->plan = calloc(q->ans[0].n + q->ans[1].n + 1, sizeof(*q->plan));
	if (!q->plan) {
		finish(q, -ENOMEM);
		return;
	}
	int status;
	switch (xdns_srv_merge(&a[0], &a[1], q->plan, &q->nplan, &status)) {
	case XDNS_PLAN_SRV:
		xdns_srv_order(q->plan, q->nplan, rng_next, q->d);
		break;
	case XDNS_PLAN_FALLBACK:
		why(q, "no SRV records: %s on port %d", q->domain, XDNS_PORT_FALLBACK);
		q->fallback = true;
		q->plan[0] =
		    (struct xdns_srv){q->domain, XDNS_PORT_FALLBACK, 0, 0, false};
		q->nplan = 1;
		break;
	case XDNS_PLAN_FAIL:
		if (status == -EHOSTUNREACH)
			why(q, "target \".\": %s offers no XMPP server service",
			    q->domain);
		else if (status == -ENOENT)
			why(q,
			    "no _xmpp-server records, and _xmpps-server's \".\" forbids "
			    "the A/AAAA fallback");
		finish(q, status);
		return;
	}
	start_addrs(q);
}

static void on_srv(void *arg, int st, int timeouts, unsigned char *abuf, int alen)
{
	(void)timeouts;
	struct xdns_req *r = arg;
	int k = r->kind;
	struct xdns_query *q = req_end(r);
	struct ares_srv_reply *rep = NULL;

	if (!q || q->finished)
		return;
	q->ans[k].answered = true;
	if (st == ARES_SUCCESS)
		st = ares_parse_srv_reply(abuf, alen, &rep);
	if (st != ARES_SUCCESS) {
		q->ans[k].status = ares_err(st, &q->ans[k].words);
		goto out;
	}
	size_t n = 0;
	for (struct ares_srv_reply *p = rep; p; p = p->next)
		n++;
	if (n > XDNS_SRV_MAX) {
		why(q, "%s.%s: only the first %d of %zu records used", srv_name[k],
		    q->domain, XDNS_SRV_MAX, n);
		n = XDNS_SRV_MAX;
	}
	q->ans[k].v = calloc(n, sizeof(*q->ans[k].v));
	if (!q->ans[k].v) {
		q->ans[k].status = -ENOMEM;
		q->ans[k].words = "out of memory";
		goto out;
	}
	for (struct ares_srv_reply *p = rep; p && q->ans[k].n < n; p = p->next) {
		struct xdns_srv *s = &q->ans[k].v[q->ans[k].n];
		s->target = strdup(p->host ? p->host : "");
		if (!s->target) {
			q->ans[k].status = -ENOMEM;
			q->ans[k].words = "out of memory";
			goto out;
		}
		s->port = p->port;
		s->priority = p->priority;
		s->weight = p->weight;
		s->direct_tls = k == ANS_XMPPS;
		q->ans[k].n++;
	}
	q->ans[k].status = 0;
out:
	ares_free_data(rep);
	if (--q->pending == 0)
		srvs_done(q);
}

static void on_deadline(void *arg)
{
	struct xdns_query *q = arg;
	int st = -ETIMEDOUT;

	if (q->addrs) {
		/* the targets that answered are worth trying */
		int e = addrs_settle(q);
		if (e == 0 || e == -ENOMEM)
			st = e;
	} else {
		srv_why(q);
	}
	why(q, "gave up after %llu ms", (unsigned long long)q->d->timeout_ms);
	finish(q, st);
}

/* --- public */

int xdns_new(struct xdns **dp, struct loop *l, const char *servers)
{
	struct ares_options o = {0};
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_DOMAINS | ARES_OPT_TIMEOUTMS |
	           ARES_OPT_TRIES;
	int err = 0;

	if (!dp || !l || (servers && !servers[0]))
		return -EINVAL;
	struct xdns *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->l = l;
	d->timeout_ms = XDNS_TIMEOUT_MS;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	d->rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
	         ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)d;

	if (lib_users == 0 && ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
		free(d);
		return -EIO;
	}
	lib_users++;

	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = d;
	/* XMPP domains are fully qualified: never append search domains */
	o.domains = NULL;
	o.ndomains = 0;
	/* c-ares doubles the timeout at each try: 2 s + 4 s stays under the
	 * default bound of one resolve */
	o.timeout = 2000;
	o.tries = 2;
	if (servers) {
		/* the given servers only, not /etc/hosts */
		o.lookups = (char *)"b";
		mask |= ARES_OPT_LOOKUPS;
	}
	int st = ares_init_options(&d->ch, &o, mask);
	if (st != ARES_SUCCESS) {
		log_error(MOD, "cannot start the DNS resolver: %s", ares_strerror(st));
		err = st == ARES_ENOMEM ? -ENOMEM : -EIO;
		d->ch = NULL;
		goto out;
	}
	if (servers) {
		st = ares_set_servers_ports_csv(d->ch, servers);
		if (st != ARES_SUCCESS) {
			log_error(MOD, "DNS servers \"%s\": %s (want IP:PORT[,IP:PORT])",
			          servers, ares_strerror(st));
			err = st == ARES_ENOMEM ? -ENOMEM : -EINVAL;
			goto out;
		}
	}
out:
	if (err) {
		xdns_free(d);
		return err;
	}
	*dp = d;
	return 0;
}

void xdns_free(struct xdns *d)
{
	if (!d)
		return;
	while (d->queries) {
		struct xdns_query *q = d->queries;
		query_unlink(q);
		query_free(q);
	}
	if (d->ch)
		ares_destroy(d->ch); /* orphaned requests free themselves */
	for (size_t i = 0; i < d->nfds; i++)
		loop_fd_del(d->l, d->fds[i]);
	loop_timer_cancel(d->l, &d->tmr);
	free(d->fds);
	free(d);
	if (lib_users && --lib_users == 0)
		ares_library_cleanup();
}

void xdns_set_timeout(struct xdns *d, uint64_t ms)
{
	d->timeout_ms = ms ? ms : XDNS_TIMEOUT_MS;
}

/* A DNS name: labels of 1..63 bytes, 253 at most, no spaces or control
 * characters (c-ares escapes the rest). */
static bool name_ok(const char *s, size_t len)
{
	if (len == 0 || len > 253)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f || c == '\\')
			return false;
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (++label > 63) {
			return false;
		}
	}
	return true;
}

/* An IP literal (RFC 7622 section 3.2 allows them as domainparts); the brackets
 * of an IPv6 literal are dropped in place. */
static bool ip_literal(char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];
	char tmp[INET6_ADDRSTRLEN];
	size_t len = strlen(s);
	if (len > 2 && s[0] == '[' && s[len - 1] == ']') {
		if (len - 2 >= sizeof(tmp))
			return false;
		memcpy(tmp, s + 1, len - 2);
		tmp[len - 2] = '\0';
		if (inet_pton(AF_INET6, tmp, buf) != 1)
			return false;
		memcpy(s, tmp, len - 1);
		return true;
	}
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A query on d for name (checked, trailing dot dropped), linked and timed. */
static int query_new(struct xdns_query **qp, struct xdns *d, const char *name,
                     xdns_done_h *done, void *arg)
{
	if (!d || !name || !done)
		return -EINVAL;
	size_t len = strlen(name);
	if (len > 1 && name[len - 1] == '.')
		len--;
	if (!name_ok(name, len))
		return -EINVAL;
	struct xdns_query *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->domain = strndup(name, len);
	if (!q->domain) {
		free(q);
		return -ENOMEM;
	}
	q->d = d;
	q->done = done;
	q->arg = arg;
	q->next = d->queries;
	if (d->queries)
		d->queries->prev = q;
	d->queries = q;
	loop_timer_start(d->l, &q->tmr, d->timeout_ms, on_deadline, q);
	*qp = q;
	return 0;
}

/* Address lookups of the query's own name on port, no SRV. */
static void start_direct(struct xdns_query *q, uint16_t port, bool tls)
{
	q->plan = calloc(1, sizeof(*q->plan));
	if (!q->plan) {
		finish(q, -ENOMEM);
		return;
	}
	q->plan[0] = (struct xdns_srv){q->domain, port, 0, 0, tls};
	q->nplan = 1;
	q->fallback = true;
	start_addrs(q);
}

int xdns_resolve(struct xdns *d, const char *domain, bool want_direct_tls,
                 xdns_done_h *done, void *arg, struct xdns_query **qp)
{
	struct xdns_query *q;
	int e = query_new(&q, d, domain, done, arg);
	if (e)
		return e;
	if (qp)
		*qp = q;

	if (ip_literal(q->domain)) {
		/* not an FQDN: RFC 6120 section 3.2's SRV lookup does not apply */
		why(q, "%s is an IP address: port %d", q->domain, XDNS_PORT_FALLBACK);
		start_direct(q, XDNS_PORT_FALLBACK, false);
		rearm(d);
		return 0;
	}

	/* counted before the first call: c-ares may answer inside it */
	q->pending = want_direct_tls ? 2 : 1;
	for (int k = want_direct_tls ? ANS_XMPPS : ANS_XMPP; k <= ANS_XMPP; k++) {
		char name[300];
		snprintf(name, sizeof(name), "%s.%s", srv_name[k], q->domain);
		q->ans[k].asked = true;
		struct xdns_req *r = req_new(q, k, 0);
		if (!r) {
			finish(q, -ENOMEM);
			break;
		}
		ares_query(d->ch, name, ns_c_in, ns_t_srv, on_srv, r);
	}
	rearm(d);
	return 0;
}

int xdns_resolve_host(struct xdns *d, const char *host, uint16_t port, bool direct_tls,
                      xdns_done_h *done, void *arg, struct xdns_query **qp)
{
	struct xdns_query *q;
	if (port == 0)
		return -EINVAL;
	int e = query_new(&q, d, host, done, arg);
	if (e)
		return e;
	if (qp)
		*qp = q;
	ip_literal(q->domain); /* "[::1]" -> "::1"; c-ares takes literals as they are */
	why(q, "configured host %s port %u, no SRV", q->domain, port);
	start_direct(q, port, direct_tls);
	rearm(d);
	return 0;
}

void xdns_cancel(struct xdns_query *q)
{
	if (!q || q->delivering)
		return;
	query_unlink(q);
	query_free(q);
}

int xdns_result_dup(struct xdns_result **dst, const struct xdns_result *src)
{
	struct xdns_result *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*r = *src;
	r->v = NULL;
	r->n = 0;
	if (src->n) {
		r->v = calloc(src->n, sizeof(*r->v));
		if (!r->v)
			goto nomem;
		for (; r->n < src->n; r->n++) {
			r->v[r->n] = src->v[r->n];
			r->v[r->n].host = strdup(src->v[r->n].host);
			if (!r->v[r->n].host)
				goto nomem;
		}
	}
	*dst = r;
	return 0;
nomem:
	xdns_result_free(r);
	return -ENOMEM;
}

void xdns_result_free(struct xdns_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].host);
	free(r->v);
	free(r);
}

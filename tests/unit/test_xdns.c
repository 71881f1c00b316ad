/* xdns: the RFC 2782 order, the XEP-0368 merge of _xmpps-server and _xmpp-server,
 * and the resolver's promises on the loop (deadline, cancel, free) against a DNS
 * server that never answers. Answers from a real DNS server: t_xdns.sh. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "presbridge/loop.h"
#include "presbridge/xdns.h"

/* --------------------------------------------------------- xdns_srv_order */

struct seq {
	const uint32_t *v;
	size_t n, i;
};

/* The given values in turn; the last one again when they run out. */
static uint32_t seq_next(void *arg)
{
	struct seq *s = arg;
	if (s->n == 0)
		return 0;
	uint32_t r = s->v[s->i < s->n ? s->i : s->n - 1];
	s->i++;
	return r;
}

struct rec {
	const char *target;
	uint16_t priority, weight;
};

#define RMAX 6

/* Expected orders follow RFC 2782, Weight field of "The format of the SRV RR":
 * weight-0 records first, r uniform in [0, sum] (here rnd mod (sum + 1)), the
 * first record whose running sum is >= r; repeated for what is left, per
 * priority ("Usage rules": lowest priority first). */
static const struct {
	const char *name;
	struct rec in[RMAX];
	size_t n;
	uint32_t rnd[RMAX];
	size_t nrnd;
	const char *want[RMAX];
} order_rows[] = {
    {"lowest priority first; all weights 0 keep their order",
     {{"c", 20, 0}, {"a", 10, 0}, {"b", 10, 0}},
     3,
     {7},
     1,
     {"a", "b", "c"}},
    {"r=5 of [0,60]: a (running 10), then r=0 of [0,50]: b",
     {{"a", 0, 10}, {"b", 0, 20}, {"c", 0, 30}},
     3,
     {5, 0},
     2,
     {"a", "b", "c"}},
    {"r=45: c (running 60), then r=25 of [0,30]: b (running 30)",
     {{"a", 0, 10}, {"b", 0, 20}, {"c", 0, 30}},
     3,
     {45, 25},
     2,
     {"c", "b", "a"}},
    {"running sum equal to r selects (>=): r=10 a, then r=20 of b(20),c(50): b",
     {{"a", 0, 10}, {"b", 0, 20}, {"c", 0, 30}},
     3,
     {10, 20},
     2,
     {"a", "b", "c"}},
    {"r=11 just past a: b, then r=21 of a(10),c(40): c",
     {{"a", 0, 10}, {"b", 0, 20}, {"c", 0, 30}},
     3,
     {11, 21},
     2,
     {"b", "c", "a"}},
    {"weight 0 goes first in the list and is chosen when r=0",
     {{"a", 0, 10}, {"z", 0, 0}},
     2,
     {0},
     1,
     {"z", "a"}},
    {"weight 0 is passed over when r>0",
     {{"a", 0, 10}, {"z", 0, 0}},
     2,
     {1},
     1,
     {"a", "z"}},
    {"rnd wraps modulo sum+1: 11 mod 11 = 0 picks the weight-0 record",
     {{"a", 0, 10}, {"z", 0, 0}},
     2,
     {11},
     1,
     {"z", "a"}},
    {"each priority on its own: p1 (weights 0) then p5 with r=2 of y(3): y",
     {{"x", 5, 1}, {"y", 5, 3}, {"s", 1, 0}, {"t", 1, 0}},
     4,
     {9, 2},
     2,
     {"s", "t", "y", "x"}},
    {"a single record of a priority draws no number",
     {{"b", 2, 5}, {"a", 1, 5}, {"c", 3, 5}},
     3,
     {0},
     0,
     {"a", "b", "c"}},
    {"priority 0 beats 65535; weight 65535 sums without overflow",
     {{"hi", 65535, 65535}, {"lo", 0, 65535}, {"lo2", 0, 65535}},
     3,
     {65536},
     1,
     {"lo2", "lo", "hi"}},
};

static void test_srv_order(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(order_rows) / sizeof(order_rows[0]); i++) {
		struct xdns_srv v[RMAX];
		memset(v, 0, sizeof(v));
		for (size_t j = 0; j < order_rows[i].n; j++) {
			v[j].target = (char *)order_rows[i].in[j].target;
			v[j].priority = order_rows[i].in[j].priority;
			v[j].weight = order_rows[i].in[j].weight;
		}
		struct seq s = {order_rows[i].rnd, order_rows[i].nrnd, 0};
		xdns_srv_order(v, order_rows[i].n, seq_next, &s);
		for (size_t j = 0; j < order_rows[i].n; j++)
			if (strcmp(v[j].target, order_rows[i].want[j]) != 0)
				fail_msg("row %zu (%s): place %zu is %s, want %s", i,
				         order_rows[i].name, j, v[j].target,
				         order_rows[i].want[j]);
		/* the rule draws exactly one number per place but the last of
		 * each priority */
		if (s.i != order_rows[i].nrnd)
			fail_msg("row %zu (%s): %zu numbers drawn, want %zu", i,
			         order_rows[i].name, s.i, order_rows[i].nrnd);
	}
}

static uint32_t fixed(void *arg)
{
	return *(const uint32_t *)arg;
}

/* Over every r in [0, sum] the first place goes to each record as often as its
 * weight says, and once to the weight-0 record (RFC 2782: "a very small chance"). */
static void test_srv_order_shares(void **state)
{
	(void)state;
	static const uint16_t w[] = {0, 10, 20, 5};
	const char *names[] = {"z", "a", "b", "c"};
	unsigned first[4] = {0};
	uint32_t sum = 35;

	for (uint32_t r = 0; r <= sum; r++) {
		struct xdns_srv v[4];
		for (size_t j = 0; j < 4; j++)
			v[j] = (struct xdns_srv){(char *)names[j], 5269, 0, w[j], false};
		xdns_srv_order(v, 4, fixed, &r);
		for (size_t j = 0; j < 4; j++)
			if (strcmp(v[0].target, names[j]) == 0)
				first[j]++;
	}
	assert_int_equal(first[0], 1);
	assert_int_equal(first[1], 10);
	assert_int_equal(first[2], 20);
	assert_int_equal(first[3], 5);
}

/* --------------------------------------------------------- xdns_srv_merge */

static const struct xdns_srv tls_recs[] = {{(char *)"tls.a.test", 5223, 5, 0, false}};
static const struct xdns_srv plain_recs[] = {{(char *)"x1.a.test", 5269, 10, 0, false},
                                             {(char *)"x2.a.test", 5270, 20, 0, false}};
static const struct xdns_srv dot_rec[] = {{(char *)".", 0, 0, 0, false}};
static const struct xdns_srv empty_rec[] = {{(char *)"", 0, 0, 0, false}};
static const struct xdns_srv mixed_recs[] = {{(char *)"x1.a.test", 5269, 10, 0, false},
                                             {(char *)".", 0, 0, 0, false}};

#define NA                                                                               \
	{                                                                                \
		false, 0, NULL, 0                                                        \
	}
#define NX                                                                               \
	{                                                                                \
		true, -ENOENT, NULL, 0                                                   \
	}
#define TO                                                                               \
	{                                                                                \
		true, -ETIMEDOUT, NULL, 0                                                \
	}
#define IO                                                                               \
	{                                                                                \
		true, -EIO, NULL, 0                                                      \
	}
#define EMPTY                                                                            \
	{                                                                                \
		true, 0, NULL, 0                                                         \
	}
#define DOT                                                                              \
	{                                                                                \
		true, 0, dot_rec, 1                                                      \
	}
#define ROOT                                                                             \
	{                                                                                \
		true, 0, empty_rec, 1                                                    \
	}
#define TLS                                                                              \
	{                                                                                \
		true, 0, tls_recs, 1                                                     \
	}
#define PLAIN                                                                            \
	{                                                                                \
		true, 0, plain_recs, 2                                                   \
	}
#define MIXED                                                                            \
	{                                                                                \
		true, 0, mixed_recs, 2                                                   \
	}

static const struct {
	const char *name;
	struct xdns_srv_answer s, x; /* _xmpps-server, _xmpp-server */
	enum xdns_plan plan;
	int status;
	const char *want; /* XDNS_PLAN_SRV: "target:port:tls|starttls ..." */
} merge_rows[] = {
    /* RFC 6120 section 3.2.1 alone (want_direct_tls false) */
    {"xmpp records only", NA, PLAIN, XDNS_PLAN_SRV, 0,
     "x1.a.test:5269:starttls x2.a.test:5270:starttls"},
    {"RFC 6120 3.2.2: no records: fallback", NA, NX, XDNS_PLAN_FALLBACK, 0, NULL},
    {"NOERROR without records is no records", NA, EMPTY, XDNS_PLAN_FALLBACK, 0, NULL},
    {"RFC 6120 3.2.1 step 3: single \".\"", NA, DOT, XDNS_PLAN_FAIL, -EHOSTUNREACH, NULL},
    {"c-ares spells the root \"\"", NA, ROOT, XDNS_PLAN_FAIL, -EHOSTUNREACH, NULL},
    {"\".\" among records is dropped (only a single \".\" aborts)", NA, MIXED,
     XDNS_PLAN_SRV, 0, "x1.a.test:5269:starttls"},
    /* XEP-0368 section 3 rule 1: one set, both kinds */
    {"both kinds mixed in one set", TLS, PLAIN, XDNS_PLAN_SRV, 0,
     "tls.a.test:5223:tls x1.a.test:5269:starttls x2.a.test:5270:starttls"},
    {"xmpps only", TLS, NX, XDNS_PLAN_SRV, 0, "tls.a.test:5223:tls"},
    {"xmpp only, xmpps NXDOMAIN", NX, PLAIN, XDNS_PLAN_SRV, 0,
     "x1.a.test:5269:starttls x2.a.test:5270:starttls"},
    {"neither: fallback", NX, NX, XDNS_PLAN_FALLBACK, 0, NULL},
    /* XEP-0368 section 5: "." on _xmpps-server */
    {"xmpps \".\": STARTTLS records still used", DOT, PLAIN, XDNS_PLAN_SRV, 0,
     "x1.a.test:5269:starttls x2.a.test:5270:starttls"},
    {"xmpps \".\", no xmpp records: no A/AAAA fallback", DOT, NX, XDNS_PLAN_FAIL, -ENOENT,
     NULL},
    {"xmpps \".\" and xmpp \".\"", DOT, DOT, XDNS_PLAN_FAIL, -EHOSTUNREACH, NULL},
    {"xmpp \".\" beside direct TLS records: direct TLS only", TLS, DOT, XDNS_PLAN_SRV, 0,
     "tls.a.test:5223:tls"},
    {"xmpps NXDOMAIN, xmpp \".\"", NX, DOT, XDNS_PLAN_FAIL, -EHOSTUNREACH, NULL},
    /* resolver failures: records of the other name are used; otherwise the
     * failure is reported, neither "." nor the fallback decided */
    {"xmpps timed out, xmpp records", TO, PLAIN, XDNS_PLAN_SRV, 0,
     "x1.a.test:5269:starttls x2.a.test:5270:starttls"},
    {"xmpp failed, xmpps records", TLS, IO, XDNS_PLAN_SRV, 0, "tls.a.test:5223:tls"},
    {"xmpp timed out: no fallback", NX, TO, XDNS_PLAN_FAIL, -ETIMEDOUT, NULL},
    {"xmpp timed out, not asked xmpps", NA, TO, XDNS_PLAN_FAIL, -ETIMEDOUT, NULL},
    {"xmpps timed out: no fallback", TO, NX, XDNS_PLAN_FAIL, -ETIMEDOUT, NULL},
    {"xmpps unknown: xmpp \".\" does not decide", TO, DOT, XDNS_PLAN_FAIL, -ETIMEDOUT,
     NULL},
    {"xmpp unknown: xmpps \".\" does not decide", DOT, IO, XDNS_PLAN_FAIL, -EIO, NULL},
    {"both failed: the xmpp failure is told", IO, TO, XDNS_PLAN_FAIL, -ETIMEDOUT, NULL},
};

static void test_srv_merge(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(merge_rows) / sizeof(merge_rows[0]); i++) {
		struct xdns_srv out[8];
		size_t n = 99;
		int status = 99;
		enum xdns_plan p =
		    xdns_srv_merge(&merge_rows[i].s, &merge_rows[i].x, out, &n, &status);
		if (p != merge_rows[i].plan || status != merge_rows[i].status)
			fail_msg("row %zu (%s): plan %d status %d, want %d %d", i,
			         merge_rows[i].name, p, status, merge_rows[i].plan,
			         merge_rows[i].status);
		char got[256] = "";
		for (size_t j = 0; p == XDNS_PLAN_SRV && j < n; j++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got),
			         "%s%s:%u:%s", j ? " " : "", out[j].target, out[j].port,
			         out[j].direct_tls ? "tls" : "starttls");
		if (p == XDNS_PLAN_SRV && strcmp(got, merge_rows[i].want) != 0)
			fail_msg("row %zu (%s): got \"%s\", want \"%s\"", i,
			         merge_rows[i].name, got, merge_rows[i].want);
		if (p != XDNS_PLAN_SRV && n != 0)
			fail_msg("row %zu (%s): %zu records without a SRV plan", i,
			         merge_rows[i].name, n);
	}
}

/* XEP-0368 section 3 rule 1: after the merge, priorities and weights of both
 * kinds compete as one set. */
static void test_merge_then_order(void **state)
{
	(void)state;
	static const struct xdns_srv s[] = {{(char *)"tls.a.test", 5223, 10, 1, false}};
	static const struct xdns_srv x[] = {{(char *)"plain.a.test", 5269, 10, 2, false},
	                                    {(char *)"first.a.test", 5269, 0, 0, false}};
	static const struct {
		uint32_t r;
		const char *want[3];
	} rows[] = {
	    {1, {"first.a.test", "tls.a.test", "plain.a.test"}}, /* r=1: tls (1) */
	    {2, {"first.a.test", "plain.a.test", "tls.a.test"}}, /* r=2: plain (3) */
	    {3, {"first.a.test", "plain.a.test", "tls.a.test"}},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct xdns_srv_answer as = {true, 0, s, 1}, ax = {true, 0, x, 2};
		struct xdns_srv out[3];
		size_t n;
		int status;
		assert_int_equal(xdns_srv_merge(&as, &ax, out, &n, &status),
		                 XDNS_PLAN_SRV);
		assert_int_equal(n, 3);
		uint32_t r = rows[i].r;
		xdns_srv_order(out, n, fixed, &r);
		for (size_t j = 0; j < 3; j++)
			assert_string_equal(out[j].target, rows[i].want[j]);
		assert_true(out[rows[i].r == 1 ? 1 : 2].direct_tls);
	}
}

static void test_is_root(void **state)
{
	(void)state;
	static const struct {
		const char *t;
		bool root;
	} rows[] = {{NULL, true}, {"", true}, {".", true}, {"a.", false}, {"..", false}};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(xdns_srv_is_root(rows[i].t), rows[i].root);
}

/* --------------------------------------------------------- on the loop */

/* A UDP "DNS server" that never answers. */
struct silent {
	int fd;
	char servers[64];
};

static void silent_open(struct silent *s)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
	snprintf(s->servers, sizeof(s->servers), "127.0.0.1:%u", ntohs(a.sin_port));
}

struct got {
	int calls;
	int status;
	char why[256];
	struct xdns_result *copy;
	struct xdns *free_me; /* freed from inside the callback */
	bool in_resolve;      /* set while xdns_resolve runs */
	bool called_inside;
};

static bool resolving;

static void on_done(const struct xdns_result *r, void *arg)
{
	struct got *g = arg;
	g->calls++;
	g->status = r->status;
	g->called_inside = resolving;
	snprintf(g->why, sizeof(g->why), "%s", r->why);
	if (!g->copy)
		assert_int_equal(xdns_result_dup(&g->copy, r), 0);
	if (g->free_me) {
		xdns_free(g->free_me);
		g->free_me = NULL;
	}
}

static int resolve(struct xdns *d, const char *domain, bool tls, struct got *g,
                   struct xdns_query **qp)
{
	resolving = true;
	int e = xdns_resolve(d, domain, tls, on_done, g, qp);
	resolving = false;
	return e;
}

static void run_for(struct loop *l, uint64_t ms, const int *calls, int want)
{
	uint64_t t0 = loop_clock_ms();
	while (loop_clock_ms() - t0 < ms && (!calls || *calls < want))
		assert_int_equal(loop_run_once(l, 20), 0);
}

/* Nothing answers: the bound of one resolve ends it with -ETIMEDOUT, once, from
 * the loop. */
static void test_deadline(void **state)
{
	(void)state;
	struct loop *l;
	struct xdns *d;
	struct silent s;
	struct got g = {0};

	silent_open(&s);
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(xdns_new(&d, l, s.servers), 0);
	xdns_set_timeout(d, 300);
	uint64_t t0 = loop_clock_ms();
	assert_int_equal(resolve(d, "example.test", true, &g, NULL), 0);
	assert_int_equal(g.calls, 0);
	run_for(l, 3000, &g.calls, 1);
	uint64_t took = loop_clock_ms() - t0;
	assert_int_equal(g.calls, 1);
	assert_false(g.called_inside);
	assert_int_equal(g.status, -ETIMEDOUT);
	assert_non_null(strstr(g.why, "_xmpp-server._tcp.example.test: no answer"));
	assert_non_null(strstr(g.why, "_xmpps-server._tcp.example.test: no answer"));
	assert_true(took >= 290 && took < 2000);
	run_for(l, 100, NULL, 0);
	assert_int_equal(g.calls, 1);
	xdns_result_free(g.copy);
	xdns_free(d);
	loop_free(l);
	close(s.fd);
}

/* Cancelled, freed with queries in flight, freed from inside a callback: no
 * callback afterwards (and, under ASan, nothing leaks or is touched after free). */
static void test_cancel_and_free(void **state)
{
	(void)state;
	struct loop *l;
	struct xdns *d;
	struct silent s;
	struct xdns_query *q = NULL;

	silent_open(&s);
	assert_int_equal(loop_new(&l), 0);

	/* cancel */
	struct got g1 = {0}, g2 = {0};
	assert_int_equal(xdns_new(&d, l, s.servers), 0);
	xdns_set_timeout(d, 100);
	assert_int_equal(resolve(d, "a.test", true, &g1, &q), 0);
	assert_non_null(q);
	assert_int_equal(resolve(d, "b.test", false, &g2, NULL), 0);
	xdns_cancel(q);
	xdns_cancel(NULL);
	run_for(l, 400, NULL, 0);
	assert_int_equal(g1.calls, 0);
	assert_int_equal(g2.calls, 1);
	assert_int_equal(g2.status, -ETIMEDOUT);
	xdns_result_free(g2.copy);

	/* free with queries in flight */
	struct got g3 = {0};
	assert_int_equal(resolve(d, "c.test", true, &g3, NULL), 0);
	assert_int_equal(resolve(d, "127.0.0.1", true, &g3, NULL), 0);
	xdns_free(d);
	run_for(l, 200, NULL, 0);
	assert_int_equal(g3.calls, 0);

	/* free from inside the first callback: the second never comes */
	struct got g4 = {0}, g5 = {0};
	assert_int_equal(xdns_new(&d, l, s.servers), 0);
	xdns_set_timeout(d, 100);
	g4.free_me = d;
	g5.free_me = d;
	assert_int_equal(resolve(d, "d.test", true, &g4, NULL), 0);
	assert_int_equal(resolve(d, "e.test", true, &g5, NULL), 0);
	run_for(l, 400, NULL, 0);
	assert_int_equal(g4.calls + g5.calls, 1);
	xdns_result_free(g4.copy);
	xdns_result_free(g5.copy);

	loop_free(l);
	close(s.fd);
}

/* An IP literal is no FQDN (RFC 6120 section 3.2): port 5269, no DNS asked; the
 * answer still comes from the loop. */
static void test_ip_literal(void **state)
{
	(void)state;
	static const struct {
		const char *domain;
		const char *addr;
		int family;
	} rows[] = {
	    {"127.0.0.1", "127.0.0.1", AF_INET},
	    {"127.0.0.1.", "127.0.0.1", AF_INET},
	    {"::1", "::1", AF_INET6},
	    {"[::1]", "::1", AF_INET6},
	};
	struct loop *l;
	struct xdns *d;
	struct silent s;

	silent_open(&s);
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(xdns_new(&d, l, s.servers), 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct got g = {0};
		assert_int_equal(resolve(d, rows[i].domain, true, &g, NULL), 0);
		assert_int_equal(g.calls, 0);
		run_for(l, 1000, &g.calls, 1);
		assert_int_equal(g.calls, 1);
		assert_false(g.called_inside);
		assert_int_equal(g.status, 0);
		assert_non_null(g.copy);
		assert_int_equal(g.copy->n, 1);
		assert_string_equal(g.copy->v[0].addr, rows[i].addr);
		assert_int_equal(g.copy->v[0].family, rows[i].family);
		assert_int_equal(g.copy->v[0].port, XDNS_PORT_FALLBACK);
		assert_false(g.copy->v[0].from_srv);
		assert_false(g.copy->v[0].direct_tls);
		assert_string_equal(g.copy->srv_text, "");
		xdns_result_free(g.copy);
	}
	xdns_free(d);
	loop_free(l);
	close(s.fd);
}

/* A configured host (RFC 6120 section 3.2.3): no SRV, the given port and TLS
 * mode; a literal needs no DNS, a name that gets no answer ends at the bound. */
static void test_resolve_host(void **state)
{
	(void)state;
	static const struct {
		const char *host;
		uint16_t port;
		bool tls;
		int status;
		const char *addr; /* status 0 */
	} rows[] = {
	    {"[::1]", 5270, true, 0, "::1"},
	    {"127.0.0.2", 5269, false, 0, "127.0.0.2"},
	    {"xmpp.peer.test", 5270, true, -ETIMEDOUT, NULL},
	};
	struct loop *l;
	struct xdns *d;
	struct silent s;

	silent_open(&s);
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(xdns_new(&d, l, s.servers), 0);
	xdns_set_timeout(d, 200);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct got g = {0};
		resolving = true;
		assert_int_equal(xdns_resolve_host(d, rows[i].host, rows[i].port,
		                                   rows[i].tls, on_done, &g, NULL),
		                 0);
		resolving = false;
		run_for(l, 2000, &g.calls, 1);
		assert_int_equal(g.calls, 1);
		assert_false(g.called_inside);
		assert_int_equal(g.status, rows[i].status);
		if (rows[i].status == 0) {
			assert_int_equal(g.copy->n, 1);
			assert_string_equal(g.copy->v[0].addr, rows[i].addr);
			assert_int_equal(g.copy->v[0].port, rows[i].port);
			assert_int_equal(g.copy->v[0].direct_tls, rows[i].tls);
			assert_false(g.copy->v[0].from_srv);
		} else {
			assert_int_equal(g.copy->n, 0);
			assert_non_null(strstr(g.why, "no answer in time"));
		}
		xdns_result_free(g.copy);
	}
	struct got g = {0};
	assert_int_equal(xdns_resolve_host(d, "a.test", 0, false, on_done, &g, NULL),
	                 -EINVAL);
	xdns_free(d);
	loop_free(l);
	close(s.fd);
}

static void test_bad_input(void **state)
{
	(void)state;
	static const char *const domains[] = {
	    "",
	    ".",
	    "a..test",
	    ".a.test",
	    "a test",
	    "a\ttest",
	    "a\\.test",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test", /* 64
	                                                                              */
	};
	static const char *const servers[] = {"", "not-an-address", "127.0.0.1:x"};
	struct loop *l;
	struct xdns *d;
	struct got g = {0};

	assert_int_equal(loop_new(&l), 0);
	for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++) {
		d = (struct xdns *)1;
		if (xdns_new(&d, l, servers[i]) != -EINVAL)
			fail_msg("servers \"%s\" accepted", servers[i]);
		assert_ptr_equal(d, (struct xdns *)1);
	}
	assert_int_equal(xdns_new(&d, l, "127.0.0.1:53"), 0);
	for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++)
		if (resolve(d, domains[i], true, &g, NULL) != -EINVAL)
			fail_msg("domain \"%s\" accepted", domains[i]);
	assert_int_equal(xdns_resolve(d, NULL, true, on_done, &g, NULL), -EINVAL);
	assert_int_equal(xdns_resolve(d, "a.test", true, NULL, &g, NULL), -EINVAL);
	run_for(l, 50, NULL, 0);
	assert_int_equal(g.calls, 0);
	xdns_free(d);
	xdns_free(NULL);
	loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_srv_order),
	    cmocka_unit_test(test_srv_order_shares),
	    cmocka_unit_test(test_srv_merge),
	    cmocka_unit_test(test_merge_then_order),
	    cmocka_unit_test(test_is_root),
	    cmocka_unit_test(test_deadline),
	    cmocka_unit_test(test_cancel_and_free),
	    cmocka_unit_test(test_ip_literal),
	    cmocka_unit_test(test_resolve_host),
	    cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "presbridge/stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "presbridge/sbuf.h"
#include "presbridge/version.h"

/* RFC 3261 section 27.4 and the methods of its extensions the bridge meets. */
static const char *const methods[] = {
    "INVITE",    "ACK",    "BYE",     "CANCEL",   "OPTIONS", "REGISTER",
    "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE",  "INFO",    "REFER",
    "UPDATE",    "PRACK",  "SERVICE", "BENOTIFY", "other",
};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

static const char *const kinds[] = {"message", "presence", "iq", "other"};
static const char *const dirs[] = {"in", "out"};
static const char *const fail_kinds[STATS_FAIL_COUNT] = {"xmpp_condition", "stream_error",
                                                         "tls_alert", "dns", "connect"};
static const char *const link_kinds[] = {"component", "s2s", "sip_peer"};

/* Upper bounds (seconds) of the histogram buckets; +Inf is implicit. */
static const double bounds[STATS_H_COUNT][12] = {
    [STATS_H_STORE_WRITE] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                             0.05, 0.1, 0.25, 1},
    [STATS_H_LOOP_LAG] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                          1, 5},
};
#define NBOUNDS 12
static const char *const hist_names[STATS_H_COUNT] = {"presbridge_store_write_seconds",
                                                      "presbridge_loop_lag_seconds"};
static const char *const hist_help[STATS_H_COUNT] = {
    "Time to commit one write of the state store",
    "How late the event loop ran its timers (a busy or blocked loop)"};

struct hist {
	uint64_t bucket[NBOUNDS + 1];
	uint64_t count;
	double sum;
};

struct cause {
	char *name; /* a copy: a strerror() text may live in a reused buffer */
	uint64_t n;
};

struct link {
	enum stats_link_kind kind;
	char *name;
	bool up;
	int64_t since;
	uint64_t failures;
	char cause[400];
	int64_t cause_at;
};

static struct {
	int64_t started;
	uint64_t req[2][NMETHODS];
	uint64_t resp[2][600]; /* code - 100 */
	uint64_t stanza[2][4];
	struct cause causes[STATS_FAIL_COUNT][STATS_CAUSES_MAX];
	uint64_t cause_other[STATS_FAIL_COUNT];
	struct hist hist[STATS_H_COUNT];
	struct link *links;
	size_t nlinks;
} S;

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

int64_t stats_started(void)
{
	if (!S.started)
		S.started = now_s();
	return S.started;
}

void stats_reset(void)
{
	for (size_t i = 0; i < S.nlinks; i++)
		free(S.links[i].name);
	free(S.links);
	for (int k = 0; k < STATS_FAIL_COUNT; k++)
		for (size_t i = 0; i < STATS_CAUSES_MAX; i++)
			free(S.causes[k][i].name);
	memset(&S, 0, sizeof(S));
	S.started = now_s();
}

void stats_sip_request(enum stats_dir dir, const char *method, size_t len)
{
	size_t i = 0;
	for (; i < NMETHODS - 1; i++)
		if (method && strlen(methods[i]) == len &&
		    memcmp(methods[i], method, len) == 0)
			break;
	S.req[dir & 1][i]++;
}

void stats_sip_response(enum stats_dir dir, int code)
{
	if (code >= 100 && code <= 699)
		S.resp[dir & 1][code - 100]++;
}

void stats_stanza(enum stats_dir dir, const char *name)
{
	enum stats_kind k = STATS_KIND_OTHER;
	if (name && strcmp(name, "message") == 0)
		k = STATS_MESSAGE;
	else if (name && strcmp(name, "presence") == 0)
		k = STATS_PRESENCE;
	else if (name && strcmp(name, "iq") == 0)
		k = STATS_IQ;
	S.stanza[dir & 1][k]++;
}

void stats_fail(enum stats_fail k, const char *cause)
{
	if ((unsigned)k >= STATS_FAIL_COUNT)
		return;
	if (!cause || !*cause) {
		S.cause_other[k]++;
		return;
	}
	for (size_t i = 0; i < STATS_CAUSES_MAX; i++) {
		struct cause *c = &S.causes[k][i];
		if (!c->name) {
			c->name = strndup(cause, 120);
			if (!c->name)
				break;
			c->n = 1;
			return;
		}
		if (strncmp(c->name, cause, 120) == 0) {
			c->n++;
			return;
		}
	}
	S.cause_other[k]++;
}

void stats_observe(enum stats_hist h, double seconds)
{
	if ((unsigned)h >= STATS_H_COUNT)
		return;
	struct hist *x = &S.hist[h];
	size_t b = 0;
	while (b < NBOUNDS && seconds > bounds[h][b])
		b++;
	x->bucket[b]++;
	x->count++;
	x->sum += seconds;
}

/* ---- links ---------------------------------------------------------------- */

static struct link *link_find(enum stats_link_kind k, const char *name)
{
	for (size_t i = 0; i < S.nlinks; i++)
		if (S.links[i].kind == k && strcasecmp(S.links[i].name, name) == 0)
			return &S.links[i];
	return NULL;
}

void stats_link(enum stats_link_kind k, const char *name, bool up, const char *cause)
{
	if (!name)
		return;
	int64_t now = now_s();
	struct link *l = link_find(k, name);
	if (!l) {
		struct link *nl = realloc(S.links, (S.nlinks + 1) * sizeof(*nl));
		if (!nl)
			return;
		S.links = nl;
		l = &S.links[S.nlinks];
		memset(l, 0, sizeof(*l));
		l->name = strdup(name);
		if (!l->name)
			return;
		S.nlinks++;
		l->kind = k;
		l->since = now;
	}
	if (l->up != up)
		l->since = now;
	if (!up && cause && *cause) {
		l->failures++;
		snprintf(l->cause, sizeof(l->cause), "%s", cause);
		l->cause_at = now;
	}
	l->up = up;
}

void stats_link_register(enum stats_link_kind k, const char *name)
{
	if (name && !link_find(k, name))
		stats_link(k, name, false, NULL);
}

void stats_link_forget(enum stats_link_kind k, const char *name)
{
	struct link *l = name ? link_find(k, name) : NULL;
	if (!l)
		return;
	free(l->name);
	size_t i = (size_t)(l - S.links);
	memmove(l, l + 1, (S.nlinks - i - 1) * sizeof(*l));
	S.nlinks--;
}

static void info_of(const struct link *l, struct stats_link_info *out)
{
	out->kind = l->kind;
	out->name = l->name;
	out->up = l->up;
	out->since = l->since;
	out->failures = l->failures;
	out->cause = l->cause;
	out->cause_at = l->cause_at;
}

int stats_link_at(size_t i, struct stats_link_info *out)
{
	if (i >= S.nlinks)
		return -ENOENT;
	info_of(&S.links[i], out);
	return 0;
}

int stats_link_get(enum stats_link_kind k, const char *name, struct stats_link_info *out)
{
	const struct link *l = name ? link_find(k, name) : NULL;
	if (!l)
		return -ENOENT;
	info_of(l, out);
	return 0;
}

const char *stats_link_kind_name(enum stats_link_kind k)
{
	return (unsigned)k < 3 ? link_kinds[k] : "other";
}

/* ---- Prometheus text format 0.0.4 ------------------------------------------ */

static void head(struct sbuf *sb, const char *name, const char *type, const char *help)
{
	sbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and line feed escaped. */
static void label(struct sbuf *sb, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			sbuf_putc(sb, '\\');
		if (*v == '\n')
			sbuf_puts(sb, "\\n");
		else
			sbuf_putc(sb, *v);
	}
}

static void hist_out(struct sbuf *sb, enum stats_hist h)
{
	const struct hist *x = &S.hist[h];
	const char *n = hist_names[h];
	head(sb, n, "histogram", hist_help[h]);
	uint64_t cum = 0;
	for (size_t b = 0; b < NBOUNDS; b++) {
		cum += x->bucket[b];
		sbuf_printf(sb, "%s_bucket{le=\"%g\"} %llu\n", n, bounds[h][b],
		            (unsigned long long)cum);
	}
	cum += x->bucket[NBOUNDS];
	sbuf_printf(sb, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", n,
	            (unsigned long long)cum, n, x->sum, n, (unsigned long long)x->count);
}

void stats_prometheus(struct sbuf *sb)
{
	head(sb, "presbridge_build_info", "gauge", "The running build; always 1");
	sbuf_printf(sb, "presbridge_build_info{version=\"%s\"} 1\n", PB_VERSION);
	head(sb, "presbridge_start_time_seconds", "gauge",
	     "Unix time the daemon started");
	sbuf_printf(sb, "presbridge_start_time_seconds %lld\n",
	            (long long)stats_started());

	head(sb, "presbridge_sip_requests_total", "counter",
	     "SIP requests received (in) and sent (out), by method");
	for (int d = 0; d < 2; d++)
		for (size_t m = 0; m < NMETHODS; m++)
			sbuf_printf(sb,
			            "presbridge_sip_requests_total{direction=\"%s\","
			            "method=\"%s\"} %llu\n",
			            dirs[d], methods[m], (unsigned long long)S.req[d][m]);
	head(sb, "presbridge_sip_responses_total", "counter",
	     "SIP responses received (in) and sent (out), by status code");
	for (int d = 0; d < 2; d++)
		for (int c = 0; c < 600; c++)
			if (S.resp[d][c])
				sbuf_printf(
				    sb,
				    "presbridge_sip_responses_total{direction=\"%s\","
				    "code=\"%d\"} %llu\n",
				    dirs[d], c + 100, (unsigned long long)S.resp[d][c]);
	head(sb, "presbridge_xmpp_stanzas_total", "counter",
	     "XMPP stanzas received (in) and sent (out), by kind");
	for (int d = 0; d < 2; d++)
		for (int k = 0; k < 4; k++)
			sbuf_printf(
			    sb,
			    "presbridge_xmpp_stanzas_total{direction=\"%s\",kind=\"%s\"} "
			    "%llu\n",
			    dirs[d], kinds[k], (unsigned long long)S.stanza[d][k]);
	head(
	    sb, "presbridge_failures_total", "counter",
	    "Failures by kind and cause: XMPP conditions and stream errors received, TLS "
	    "alerts, DNS and connect failures (SIP refusals: "
	    "presbridge_sip_responses_total{direction=\"in\",code>=300})");
	for (int k = 0; k < STATS_FAIL_COUNT; k++) {
		for (size_t i = 0; i < STATS_CAUSES_MAX && S.causes[k][i].name; i++) {
			sbuf_printf(sb, "presbridge_failures_total{kind=\"%s\",cause=\"",
			            fail_kinds[k]);
			label(sb, S.causes[k][i].name);
			sbuf_printf(sb, "\"} %llu\n",
			            (unsigned long long)S.causes[k][i].n);
		}
		if (S.cause_other[k])
			sbuf_printf(sb,
			            "presbridge_failures_total{kind=\"%s\",cause="
			            "\"other\"} %llu\n",
			            fail_kinds[k], (unsigned long long)S.cause_other[k]);
	}
	head(sb, "presbridge_link_up", "gauge",
	     "1 while a link the federation rests on is up: component links, "
	     "server-to-server peer domains, SIP peers");
	for (size_t i = 0; i < S.nlinks; i++) {
		sbuf_printf(sb, "presbridge_link_up{kind=\"%s\",name=\"",
		            link_kinds[S.links[i].kind]);
		label(sb, S.links[i].name);
		sbuf_printf(sb, "\"} %d\n", S.links[i].up ? 1 : 0);
	}
	head(sb, "presbridge_link_failures_total", "counter",
	     "Failed attempts and losses of each link");
	for (size_t i = 0; i < S.nlinks; i++) {
		sbuf_printf(sb, "presbridge_link_failures_total{kind=\"%s\",name=\"",
		            link_kinds[S.links[i].kind]);
		label(sb, S.links[i].name);
		sbuf_printf(sb, "\"} %llu\n", (unsigned long long)S.links[i].failures);
	}
	for (int h = 0; h < STATS_H_COUNT; h++)
		hist_out(sb, (enum stats_hist)h);
}

/*
 * stats: bounded counters, the link registry, and the Prometheus text format
 * (exposition format 0.0.4: "# HELP", "# TYPE", then `name{labels} value` lines).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/sbuf.h"
#include "presbridge/stats.h"

/* The value of the sample line that starts with `series ` in text; -1 if none. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p;
	     p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static char *render(void)
{
	struct sbuf sb;
	sbuf_init(&sb);
	stats_prometheus(&sb);
	char *t = sbuf_take(&sb, NULL);
	assert_non_null(t);
	return t;
}

static void test_counters(void **state)
{
	(void)state;
	stats_reset();
	static const struct {
		enum stats_dir dir;
		const char *method;
		const char *series;
	} rows[] = {
	    {STATS_IN, "MESSAGE",
	     "presbridge_sip_requests_total{direction=\"in\",method=\"MESSAGE\"}"},
	    {STATS_OUT, "NOTIFY",
	     "presbridge_sip_requests_total{direction=\"out\",method=\"NOTIFY\"}"},
	    /* a method nobody registered: other, never a new series */
	    {STATS_IN, "FOO",
	     "presbridge_sip_requests_total{direction=\"in\",method=\"other\"}"},
	    {STATS_IN, "MESSAGEX",
	     "presbridge_sip_requests_total{direction=\"in\",method=\"other\"}"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		stats_sip_request(rows[i].dir, rows[i].method, strlen(rows[i].method));
	stats_sip_response(STATS_IN, 486);
	stats_sip_response(STATS_IN, 486);
	stats_sip_response(STATS_OUT, 200);
	stats_sip_response(STATS_OUT, 99);  /* out of range: not counted */
	stats_sip_response(STATS_OUT, 700); /* out of range: not counted */
	stats_stanza(STATS_IN, "presence");
	stats_stanza(STATS_OUT, "message");
	stats_stanza(STATS_OUT, "bogus");
	char *t = render();
	assert_true(sample(t, rows[0].series) == 1);
	assert_true(sample(t, rows[1].series) == 1);
	assert_true(sample(t, rows[2].series) == 2);
	assert_true(
	    sample(t, "presbridge_sip_responses_total{direction=\"in\",code=\"486\"}") ==
	    2);
	assert_true(
	    sample(t, "presbridge_sip_responses_total{direction=\"out\",code=\"200\"}") ==
	    1);
	assert_null(strstr(t, "code=\"99\""));
	assert_null(strstr(t, "code=\"700\""));
	assert_true(
	    sample(t,
	           "presbridge_xmpp_stanzas_total{direction=\"in\",kind=\"presence\"}") ==
	    1);
	assert_true(
	    sample(t,
	           "presbridge_xmpp_stanzas_total{direction=\"out\",kind=\"message\"}") ==
	    1);
	assert_true(
	    sample(t,
	           "presbridge_xmpp_stanzas_total{direction=\"out\",kind=\"other\"}") ==
	    1);
	free(t);
}

static void test_causes_bounded(void **state)
{
	(void)state;
	stats_reset();
	char name[32];
	for (int i = 0; i < STATS_CAUSES_MAX + 10; i++) {
		snprintf(name, sizeof(name), "cause-%d", i);
		stats_fail(STATS_FAIL_DNS, name);
	}
	stats_fail(STATS_FAIL_TLS, "unknown_ca");
	stats_fail(STATS_FAIL_TLS, "unknown_ca");
	stats_fail(STATS_FAIL_XMPP, NULL);
	char *t = render();
	assert_true(
	    sample(t, "presbridge_failures_total{kind=\"dns\",cause=\"cause-0\"}") == 1);
	assert_true(
	    sample(t, "presbridge_failures_total{kind=\"dns\",cause=\"other\"}") == 10);
	assert_true(
	    sample(
	        t,
	        "presbridge_failures_total{kind=\"tls_alert\",cause=\"unknown_ca\"}") ==
	    2);
	assert_true(
	    sample(
	        t,
	        "presbridge_failures_total{kind=\"xmpp_condition\",cause=\"other\"}") ==
	    1);
	free(t);
}

static void test_links(void **state)
{
	(void)state;
	stats_reset();
	struct stats_link_info li;
	stats_link_register(STATS_LINK_SIP_PEER, "lync");
	assert_int_equal(stats_link_get(STATS_LINK_SIP_PEER, "lync", &li), 0);
	assert_false(li.up);
	assert_int_equal(li.failures, 0);
	stats_link(STATS_LINK_SIP_PEER, "lync", true, NULL);
	stats_link_register(STATS_LINK_SIP_PEER, "lync"); /* known: unchanged */
	assert_int_equal(stats_link_get(STATS_LINK_SIP_PEER, "LYNC", &li), 0);
	assert_true(li.up);
	stats_link(STATS_LINK_SIP_PEER, "lync", false,
	           "TLS handshake failed: unknown_ca");
	stats_link(STATS_LINK_COMPONENT, "sip.test", false, "connection refused");
	stats_link(STATS_LINK_COMPONENT, "sip.test", false, "connection refused");
	stats_link(STATS_LINK_S2S, "a\"b -> c", true, NULL);
	assert_int_equal(stats_link_get(STATS_LINK_SIP_PEER, "lync", &li), 0);
	assert_false(li.up);
	assert_int_equal(li.failures, 1);
	assert_string_equal(li.cause, "TLS handshake failed: unknown_ca");
	assert_true(li.cause_at > 0);
	assert_int_equal(stats_link_get(STATS_LINK_COMPONENT, "sip.test", &li), 0);
	assert_int_equal(li.failures, 2);
	char *t = render();
	assert_true(sample(t, "presbridge_link_up{kind=\"sip_peer\",name=\"lync\"}") ==
	            0);
	assert_true(sample(t, "presbridge_link_up{kind=\"s2s\",name=\"a\\\"b -> c\"}") ==
	            1);
	assert_true(
	    sample(
	        t,
	        "presbridge_link_failures_total{kind=\"component\",name=\"sip.test\"}") ==
	    2);
	free(t);
	stats_link_forget(STATS_LINK_SIP_PEER, "lync");
	assert_int_equal(stats_link_get(STATS_LINK_SIP_PEER, "lync", &li), -ENOENT);
	assert_int_equal(stats_link_at(0, &li), 0);
	assert_string_equal(li.name, "sip.test");
	assert_int_equal(stats_link_at(2, &li), -ENOENT);
	stats_reset();
}

/* Every line is a comment or `name{labels} value`, and each family has HELP and
 * TYPE before its samples; a histogram's buckets are cumulative. */
static void test_format(void **state)
{
	(void)state;
	stats_reset();
	static const double obs[] = {0.0002, 0.003, 0.003, 2.0, 50.0};
	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
		stats_observe(STATS_H_LOOP_LAG, obs[i]);
	stats_link(STATS_LINK_COMPONENT, "x", true, NULL);
	char *t = render();
	char family[128] = "";
	for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "# HELP ", 7) == 0) {
			sscanf(line + 7, "%127s", family);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char f[128], type[32];
			assert_int_equal(sscanf(line + 7, "%127s %31s", f, type), 2);
			assert_string_equal(f, family);
			assert_true(strcmp(type, "counter") == 0 ||
			            strcmp(type, "gauge") == 0 ||
			            strcmp(type, "histogram") == 0);
			continue;
		}
		assert_int_not_equal(line[0], '#');
		assert_int_equal(strncmp(line, family, strlen(family)), 0);
		char *sp = strrchr(line, ' ');
		assert_non_null(sp);
		char *end;
		strtod(sp + 1, &end);
		assert_int_equal(*end, '\0');
	}
	free(t);
	t = render();
	assert_true(sample(t, "presbridge_loop_lag_seconds_bucket{le=\"0.0005\"}") == 1);
	assert_true(sample(t, "presbridge_loop_lag_seconds_bucket{le=\"0.005\"}") == 3);
	assert_true(sample(t, "presbridge_loop_lag_seconds_bucket{le=\"5\"}") == 4);
	assert_true(sample(t, "presbridge_loop_lag_seconds_bucket{le=\"+Inf\"}") == 5);
	assert_true(sample(t, "presbridge_loop_lag_seconds_count") == 5);
	free(t);
	stats_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counters),
	    cmocka_unit_test(test_causes_bounded),
	    cmocka_unit_test(test_links),
	    cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

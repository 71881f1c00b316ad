/* Who is talking: TLS peers by certificate name, plain peers by source IP. */
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
#include <cmocka.h>

#include "presbridge/sippeer.h"

static struct conf_peer peers[] = {
    {.name = "lync",
     .host = "lync01.sip.test",
     .address = {"127.0.0.9", 5061},
     .transport = CONF_TP_TLS,
     .trusted = true},
    {.name = "sfb",
     .host = "sfb.sip.test",
     .address = {"sfb.sip.test", 5061},
     .transport = CONF_TP_TLS,
     .trusted = true},
    {.name = "plain",
     .host = "plain.sip.test",
     .address = {"127.0.0.1", 5060},
     .transport = CONF_TP_UDP,
     .trusted = true},
    {.name = "v6",
     .host = "v6.sip.test",
     .address = {"2001:db8::7", 5060},
     .transport = CONF_TP_TCP,
     .trusted = false},
};

static struct conf cf = {.peers = peers, .npeers = sizeof(peers) / sizeof(peers[0])};

static struct sockaddr_storage addr(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(40000); /* ports never count */
	} else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(40001);
	} else {
		fail_msg("bad test address %s", ip);
	}
	return ss;
}

static void test_by_ip(void **state)
{
	(void)state;
	static const struct {
		const char *ip;
		const char *peer; /* NULL: nobody */
	} rows[] = {
	    {"127.0.0.1", "plain"}, {"::ffff:127.0.0.1", "plain"}, /* from a dual-stack
	                                                              socket */
	    {"2001:db8::7", "v6"},  {"2001:db8::8", NULL},         {"127.0.0.2", NULL},
	    {"127.0.0.9", NULL}, /* a TLS peer's address: TLS peers go by certificate */
	    {"::1", NULL},
	};
	struct sippeer_tab *t = NULL;
	assert_int_equal(sippeer_tab_new(&t, &cf), 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct sockaddr_storage ss = addr(rows[i].ip);
		const struct conf_peer *p = sippeer_by_ip(t, (struct sockaddr *)&ss);
		const char *got = p ? p->name : NULL;
		if ((got == NULL) != (rows[i].peer == NULL) ||
		    (got && strcmp(got, rows[i].peer) != 0))
			fail_msg("%s: peer %s, want %s", rows[i].ip, got ? got : "none",
			         rows[i].peer ? rows[i].peer : "none");
	}
	assert_ptr_equal(sippeer_conf(t), &cf);
	sippeer_tab_free(t);
}

static void test_by_names(void **state)
{
	(void)state;
	static const struct {
		const char *names[3];
		const char *peer;
	} rows[] = {
	    {{"lync01.sip.test"}, "lync"},
	    {{"pool.sip.test", "LYNC01.SIP.TEST."}, "lync"},
	    {{"sfb.sip.test", "lync01.sip.test"}, "lync"}, /* first [peer] of the file */
	    {{"sfb.sip.test"}, "sfb"},
	    {{"*.sip.test"}, NULL},     /* wildcards never match */
	    {{"plain.sip.test"}, NULL}, /* a plain peer has no certificate */
	    {{"sip.test"}, NULL},
	    {{NULL}, NULL},
	};
	struct sippeer_tab *t = NULL;
	assert_int_equal(sippeer_tab_new(&t, &cf), 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t n = 0;
		while (n < 3 && rows[i].names[n])
			n++;
		const struct conf_peer *p =
		    sippeer_by_names(t, (char *const *)rows[i].names, n);
		const char *got = p ? p->name : NULL;
		if ((got == NULL) != (rows[i].peer == NULL) ||
		    (got && strcmp(got, rows[i].peer) != 0))
			fail_msg("row %zu: peer %s, want %s", i, got ? got : "none",
			         rows[i].peer ? rows[i].peer : "none");
	}
	assert_ptr_equal(sippeer_by_section(t, "v6"), &peers[3]);
	assert_null(sippeer_by_section(t, "nope"));
	sippeer_tab_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_by_ip),
	    cmocka_unit_test(test_by_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

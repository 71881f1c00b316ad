#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "presbridge/addr.h"
#include "presbridge/conf.h"

/* Write text to a fresh config file beside the shipped mappings and load it. */
static int load_text(const char *text, struct conf **cfp, struct diag_list *dl)
{
	char path[] = "/tmp/pbconfXXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fprintf(f, "%s", text);
	fclose(f);
	diag_init(dl);
	int err = conf_load(cfp, path, dl);
	unlink(path);
	return err;
}

#define MAPPINGS "mappings = " PB_SOURCE_DIR "/mappings\n"
#define CERTS                                                                            \
	"cert = " PB_SOURCE_DIR "/examples/certs/bridge.crt\n"                           \
	"key = " PB_SOURCE_DIR "/examples/certs/bridge.key\n"                            \
	"ca = " PB_SOURCE_DIR "/examples/certs/ca.crt\n"

static void test_defaults(void **state)
{
	(void)state;
	struct conf *cf = NULL;
	struct diag_list dl;
	int err = load_text(
	    "[bridge]\n" MAPPINGS "[sip]\nlisten = tls:[::1]:5061\n" CERTS
	    "[xmpp]\nserver = xmpp.test\nsecret = long-enough-secret\nca = " PB_SOURCE_DIR
	    "/examples/certs/ca.crt\n"
	    "[peer a]\nhost = a.sip.test\ndomains = sip.test\n",
	    &cf, &dl);
	if (err)
		fail_msg("load failed: %s", dl.n ? dl.v[0].msg : "?");
	assert_int_equal(cf->log_level, CONF_LOG_INFO);
	assert_int_equal(cf->sip_idle_timeout, 600);
	assert_int_equal(cf->xmpp_tls, CONF_XMPP_TLS_DIRECT);
	assert_int_equal(cf->xmpp_server.port, 5275);
	assert_string_equal(cf->xmpp_name, "xmpp.test"); /* defaults to the server host */
	assert_non_null(strstr(cf->state, "/tmp/state/presbridge.db"));
	assert_int_equal(cf->nlisten, 1);
	assert_int_equal(cf->listen[0].tp, CONF_TP_TLS);
	assert_string_equal(cf->listen[0].addr.host, "::1");
	assert_int_equal(cf->npeers, 1);
	const struct conf_peer *p = &cf->peers[0];
	assert_int_equal(p->transport, CONF_TP_TLS);
	assert_int_equal(p->im, CONF_IM_SESSION);
	assert_false(p->trusted);
	assert_false(p->has_address);
	assert_string_equal(p->address.host, "a.sip.test"); /* resolved from host */
	assert_int_equal(p->address.port, 5061);
	assert_int_equal(p->host_line, 13);
	assert_int_equal(p->domains_line, 14);
	assert_int_equal(conf_key_line(cf, "xmpp", "secret"), 10);
	assert_int_equal(conf_key_line(cf, "sip", "cert"), 5);
	assert_int_equal(conf_key_line(cf, "sip", "nope"), 0);
	assert_non_null(cf->addr);
	assert_non_null(cf->pres);
	diag_free(&dl);
	conf_free(cf);
}

struct route_case {
	const char *domain;
	const char *peer; /* NULL: no route */
};

static const struct route_case routes[] = {
    {"sip.test", "lync"}, {"SIP.TEST", "lync"}, {"lync.example.com", "sfb"},
    {"xmpp.test", NULL},  {"other.test", NULL},
};

static void test_peer_routes(void **state)
{
	(void)state;
	struct conf *cf = NULL;
	struct diag_list dl;
	char maps[] = "/tmp/pbmapsXXXXXX";
	assert_non_null(mkdtemp(maps));
	char path[600], cfg[2048];
	snprintf(path, sizeof(path), "%s/domains.map", maps);
	FILE *f = fopen(path, "w");
	fprintf(f, "sip sip.test sip.test\nsip lync.example.com lync.example.com\n"
	           "xmpp xmpp.test xmpp.test\n");
	fclose(f);
	char cmd[1400];
	snprintf(cmd, sizeof(cmd), "cp %s/mappings/presence.map %s/", PB_SOURCE_DIR,
	         maps);
	assert_int_equal(system(cmd), 0);
	snprintf(
	    cfg, sizeof(cfg),
	    "[bridge]\nstate = :memory:\nmappings = %s\n[sip]\nlisten = "
	    "udp:127.0.0.1:5060\n"
	    "[xmpp]\nserver = 127.0.0.1:5275\nsecret = long-enough-secret\ntls = off\n"
	    "[peer lync]\nhost = lync.sip.test\ntransport = tcp\naddress = "
	    "127.0.0.2:5060\n"
	    "domains = sip.test\ntrusted = yes\nim = page\n"
	    "[peer sfb]\nhost = sfb.lync.example.com\ntransport = udp\naddress = "
	    "127.0.0.3\n"
	    "domains = lync.example.com\n",
	    maps);
	int err = load_text(cfg, &cf, &dl);
	if (err)
		fail_msg("load failed: %s", dl.n ? dl.v[0].msg : "?");
	assert_int_equal(cf->peers[0].im, CONF_IM_PAGE);
	assert_true(cf->peers[0].trusted);
	assert_int_equal(cf->peers[1].address.port,
	                 5060); /* plain transports default to 5060 */
	assert_int_equal(diag_count(&dl, DIAG_WARN), 3); /* two plain peers, tls = off */
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct conf_peer *p = conf_peer_for_domain(cf, routes[i].domain);
		if ((p == NULL) != (routes[i].peer == NULL) ||
		    (p && strcmp(p->name, routes[i].peer) != 0))
			fail_msg("route %s: got %s, want %s", routes[i].domain,
			         p ? p->name : "none",
			         routes[i].peer ? routes[i].peer : "none");
	}
	diag_free(&dl);
	conf_free(cf);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", maps);
	assert_int_equal(system(cmd), 0);
}

static void test_errors_leave_no_conf(void **state)
{
	(void)state;
	struct conf *cf = (struct conf *)0x1;
	struct diag_list dl;
	assert_int_equal(load_text("[sip]\nlisten = bogus\n", &cf, &dl), -EINVAL);
	assert_ptr_equal(cf, (struct conf *)0x1);
	assert_true(diag_count(&dl, DIAG_ERROR) >= 2); /* bad listen, missing [xmpp] */
	assert_true(diag_has(&dl, "section [xmpp] is missing"));
	diag_free(&dl);
}

/* [sip] idle_timeout: 1 to 86400 seconds, applied as given. */
static void test_sip_idle_timeout(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		unsigned want; /* 0: refused */
	} rows[] = {{"3", 3}, {"86400", 86400}, {"0", 0}, {"86401", 0}, {"-1", 0}};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char text[512];
		struct conf *cf = NULL;
		struct diag_list dl;
		snprintf(
		    text, sizeof(text),
		    "[bridge]\n" MAPPINGS "[sip]\nlisten = udp:127.0.0.1:5060\n"
		    "idle_timeout = %s\n[xmpp]\nserver = 127.0.0.1\nsecret = "
		    "long-enough-secret\ntls = off\n[peer a]\nhost = a.sip.test\n"
		    "transport = udp\naddress = 127.0.0.1:5070\ndomains = sip.test\n",
		    rows[i].value);
		int err = load_text(text, &cf, &dl);
		if (rows[i].want) {
			if (err)
				fail_msg("idle_timeout = %s refused: %s", rows[i].value,
				         dl.n ? dl.v[0].msg : "?");
			assert_int_equal(cf->sip_idle_timeout, rows[i].want);
			conf_free(cf);
		} else {
			assert_int_not_equal(err, 0);
			if (!diag_has(&dl, "idle_timeout"))
				fail_msg("idle_timeout = %s: no error naming the key",
				         rows[i].value);
		}
		diag_free(&dl);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_peer_routes),
	    cmocka_unit_test(test_errors_leave_no_conf),
	    cmocka_unit_test(test_sip_idle_timeout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

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

/* [store] and [pool]: the PostgreSQL store and the pool (issue 18), one row per rule. */
static void test_store_pool(void **state)
{
	(void)state;
	static const struct {
		const char *tail;
		const char *err; /* NULL: accepted; else a word the error carries */
		int backend;
		const char *node; /* NULL: the host name */
		unsigned lease;
	} rows[] = {
	    {"", NULL, CONF_STORE_SQLITE, NULL, 0},
	    {"[store]\nbackend = sqlite\n", NULL, CONF_STORE_SQLITE, NULL, 0},
	    {"[store]\nbackend = postgresql\nconninfo = host=/tmp dbname=pb\n", NULL,
	     CONF_STORE_PG, NULL, CONF_POOL_LEASE_DEFAULT},
	    {"[store]\nbackend = postgresql\nconninfo = postgresql://db1/pb\n[pool]\n"
	     "node = node-a.1\nlease = 10\n",
	     NULL, CONF_STORE_PG, "node-a.1", 10},
	    {"[store]\nbackend = postgresql\n", "conninfo", 0, NULL, 0},
	    {"[store]\nbackend = postgresql\nconninfo = host=db1 nosuchkey=1\n",
	     "conninfo", 0, NULL, 0},
	    {"[store]\nbackend = postgresql\nconninfo = host='db1\n", "conninfo", 0, NULL,
	     0},
	    {"[store]\nbackend = mysql\n", "backend", 0, NULL, 0},
	    {"[store]\nbackend = postgresql\nconninfo = host=db1\n[pool]\nlease = 0\n",
	     "lease", 0, NULL, 0},
	    {"[store]\nbackend = postgresql\nconninfo = host=db1\n[pool]\nlease = 61\n",
	     "lease", 0, NULL, 0},
	    {"[store]\nbackend = postgresql\nconninfo = host=db1\n[pool]\nnode = a b\n",
	     "node", 0, NULL, 0},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char text[1024];
		struct conf *cf = NULL;
		struct diag_list dl;
		snprintf(text, sizeof(text),
		         "[bridge]\n" MAPPINGS "[sip]\nlisten = udp:127.0.0.1:5060\n"
		         "[xmpp]\nserver = 127.0.0.1\nsecret = long-enough-secret\ntls = "
		         "off\n%s",
		         rows[i].tail);
		int err = load_text(text, &cf, &dl);
		if (!rows[i].err) {
			if (err)
				fail_msg("row %zu refused: %s", i,
				         dl.n ? dl.v[0].msg : "?");
			assert_int_equal(cf->store_backend, rows[i].backend);
			if (rows[i].backend == CONF_STORE_PG) {
				assert_non_null(cf->pool_node);
				assert_true(cf->pool_node[0] != '\0');
				if (rows[i].node)
					assert_string_equal(cf->pool_node, rows[i].node);
				assert_int_equal(cf->pool_lease, rows[i].lease);
			}
			conf_free(cf);
		} else {
			assert_int_not_equal(err, 0);
			if (!diag_has(&dl, rows[i].err))
				fail_msg("row %zu: no error naming %s", i, rows[i].err);
		}
		diag_free(&dl);
	}
}

/* conf_diff: what a reload tells the operator changed, one row per kind of edit. */
#define DIFF_BASE                                                                        \
	"[bridge]\n" MAPPINGS "[sip]\nlisten = tls:127.0.0.1:5061\n" CERTS               \
	"[xmpp]\nserver = xmpp.test\nsecret = long-enough-secret\nca = " PB_SOURCE_DIR   \
	"/examples/certs/ca.crt\n"

struct diff_acc {
	char text[512];
};

static void on_diff(const char *what, void *arg)
{
	struct diff_acc *a = arg;
	size_t n = strlen(a->text);
	snprintf(a->text + n, sizeof(a->text) - n, "%s%s", n ? "; " : "", what);
}

static void test_diff(void **state)
{
	(void)state;
	static const struct {
		const char *tail_a, *tail_b; /* appended to DIFF_BASE */
		const char *want;
	} rows[] = {
	    {"[peer a]\nhost = a.sip.test\ndomains = sip.test\n",
	     "[peer a]\nhost = a.sip.test\ndomains = sip.test\n", ""},
	    {"[peer a]\nhost = a.sip.test\ndomains = sip.test\n",
	     "[peer a]\nhost = a.sip.test\ndomains = sip.test\naddress = 10.0.0.1:5061\n",
	     "[peer a] address"},
	    {"[peer a]\nhost = a.sip.test\ndomains = sip.test\n",
	     "[peer b]\nhost = a.sip.test\ndomains = sip.test\n",
	     "[peer a] removed; [peer b] added"},
	    {"[peer a]\nhost = a.sip.test\ndomains = sip.test\ntrusted = no\n",
	     "[peer a]\nhost = a.sip.test\ndomains = sip.test\ntrusted = yes\nim = "
	     "page\n",
	     "[peer a] trusted; [peer a] im"},
	    {"[control]\nsocket = /run/x.sock\n", "[control]\nsocket = /run/y.sock\n",
	     "[control] socket"},
	    {"", "[metrics]\nlisten = 127.0.0.1\n", "[metrics] listen"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char ta[2048], tb[2048];
		snprintf(ta, sizeof(ta), "%s%s", DIFF_BASE, rows[i].tail_a);
		snprintf(tb, sizeof(tb), "%s%s", DIFF_BASE, rows[i].tail_b);
		struct conf *a = NULL, *b = NULL;
		struct diag_list dla, dlb;
		if (load_text(ta, &a, &dla) || load_text(tb, &b, &dlb))
			fail_msg("row %zu: load failed", i);
		struct diff_acc acc = {""};
		conf_diff(a, b, on_diff, &acc);
		assert_string_equal(acc.text, rows[i].want);
		if (strcmp(rows[i].tail_a, rows[i].tail_b) == 0) {
			/* the other way round too */
			conf_diff(b, a, on_diff, &acc);
			assert_string_equal(acc.text, "");
		}
		diag_free(&dla);
		diag_free(&dlb);
		conf_free(a);
		conf_free(b);
	}
	/* A change in [sip] listen and in the secret (named, never shown). */
	struct conf *a = NULL, *b = NULL;
	struct diag_list dla, dlb;
	assert_int_equal(load_text(DIFF_BASE, &a, &dla), 0);
	char tb[2048];
	snprintf(tb, sizeof(tb), "%s", DIFF_BASE);
	char *p = strstr(tb, "5061");
	p[3] = '2';
	p = strstr(tb, "long-enough-secret");
	p[0] = 'L';
	assert_int_equal(load_text(tb, &b, &dlb), 0);
	struct diff_acc acc = {""};
	conf_diff(a, b, on_diff, &acc);
	assert_string_equal(acc.text, "[sip] listen; [xmpp] secret");
	diag_free(&dla);
	diag_free(&dlb);
	conf_free(a);
	conf_free(b);
}

/* [control] socket must be absolute; [metrics] beyond loopback draws a warning. */
static void test_ops_keys(void **state)
{
	(void)state;
	static const struct {
		const char *tail;
		int ok;
		const char *diag; /* a word the error or warning holds; NULL: none */
	} rows[] = {
	    {"[control]\nsocket = /run/presbridge/control.sock\n", 1, NULL},
	    {"[control]\nsocket = off\n", 1, NULL},
	    {"[control]\nsocket = control.sock\n", 0, "absolute"},
	    {"[metrics]\nlisten = 127.0.0.1:9478\n", 1, NULL},
	    {"[metrics]\nlisten = 192.0.2.1:9478\n", 1, "authentication"},
	    {"[metrics]\nlisten = nonsense:port\n", 0, "listen"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char t[2048];
		snprintf(t, sizeof(t),
		         "%s[peer a]\nhost = a.sip.test\ndomains = sip.test\n%s",
		         DIFF_BASE, rows[i].tail);
		struct conf *cf = NULL;
		struct diag_list dl;
		int err = load_text(t, &cf, &dl);
		if ((err == 0) != rows[i].ok)
			fail_msg("row %zu: %s (%s)", i, err ? "refused" : "accepted",
			         dl.n ? dl.v[0].msg : "-");
		if (rows[i].diag && !diag_has(&dl, rows[i].diag))
			fail_msg("row %zu: no problem naming '%s'", i, rows[i].diag);
		if (!rows[i].diag && dl.n)
			fail_msg("row %zu: unexpected: %s", i, dl.v[0].msg);
		if (i == 3)
			assert_int_equal(cf->metrics_listen.port, 9478);
		diag_free(&dl);
		conf_free(cf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_peer_routes),
	    cmocka_unit_test(test_errors_leave_no_conf),
	    cmocka_unit_test(test_sip_idle_timeout),
	    cmocka_unit_test(test_store_pool),
	    cmocka_unit_test(test_diff),
	    cmocka_unit_test(test_ops_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

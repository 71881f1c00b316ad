/* The server-to-server state machine (xs2s.c) on a peer's incoming stream,
 * through its test seam (xs2s_feed: the same parser, checks and handlers, no
 * socket): what the bridge answers, and what reaches the bridge's handler.
 * Each row is one stream from a peer; expected values come from RFC 6120 and
 * XEP-0220 (sections cited per row), not from the code. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "presbridge/conf.h"
#include "presbridge/diag.h"
#include "presbridge/log.h"
#include "presbridge/loop.h"
#include "presbridge/sbuf.h"
#include "presbridge/xlink.h"
#include "presbridge/xs2s.h"
#include "presbridge/xs2s_proto.h"

#define SECRET "unit-test-dialback-secret-0123456789"

#define HDR(from, to)                                                                    \
	"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "                     \
	"xmlns:stream='http://etherx.jabber.org/streams' "                               \
	"xmlns:db='jabber:server:dialback' "                                             \
	"from='" from "' to='" to "' version='1.0'>"

static struct loop *loop;
static struct conf *cf;
static struct xs2s *s2s;
static xmpp_ctx_t *ctx;
static struct sbuf out;   /* what the bridge wrote on the stream */
static struct sbuf taken; /* stanzas the bridge's handler got: "name from to;" */

static void on_out(const char *domain, const char *text, size_t len, void *arg)
{
	(void)domain;
	(void)arg;
	sbuf_putn(&out, text, len);
}

static int on_stanza(const char *domain, xmpp_stanza_t *st, struct xlink_refusal *r,
                     void *arg)
{
	(void)domain;
	(void)r;
	(void)arg;
	const char *f = xmpp_stanza_get_from(st), *t = xmpp_stanza_get_to(st);
	sbuf_printf(&taken, "%s %s %s;", xmpp_stanza_get_name(st), f ? f : "-",
	            t ? t : "-");
	return XLINK_TAKEN;
}

/* A port nothing listens on now. */
static unsigned free_port(int type)
{
	int fd = socket(AF_INET, type, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static int setup(void **state)
{
	(void)state;
	char dir[] = "/tmp/pb-test-s2s-XXXXXX", path[64];
	struct diag_list dl;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.conf", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	/* A static route to a closed port keeps every outgoing attempt on this
	 * machine. */
	fprintf(f,
	        "[bridge]\nstate = :memory:\nmappings = %s/mappings\nlog_level = error\n"
	        "[sip]\nlisten = udp:127.0.0.1:%u\n"
	        "[xmpp]\ntransport = s2s\n"
	        "[s2s]\nlisten = 127.0.0.1:%u\ncert = %s/examples/certs/bridge.crt\n"
	        "key = %s/examples/certs/bridge.key\nca = %s/examples/certs/ca.crt\n"
	        "dialback_secret = " SECRET "\ntls = optional\n"
	        "[s2s-peer xmpp.test]\naddress = 127.0.0.1:%u\n",
	        PB_SOURCE_DIR, free_port(SOCK_DGRAM), free_port(SOCK_STREAM),
	        PB_SOURCE_DIR, PB_SOURCE_DIR, PB_SOURCE_DIR, free_port(SOCK_STREAM));
	fclose(f);
	diag_init(&dl);
	int e = conf_load(&cf, path, &dl);
	for (size_t i = 0; e && i < dl.n; i++) {
		char line[800];
		diag_format(&dl.v[i], line, sizeof(line));
		fprintf(stderr, "%s\n", line);
	}
	assert_int_equal(e, 0);
	diag_free(&dl);
	unlink(path);
	rmdir(dir);
	log_set_level(LOG_LVL_ERROR);
	assert_int_equal(loop_new(&loop), 0);
	xmpp_initialize();
	ctx = xmpp_ctx_new(NULL, NULL);
	struct xlink_handlers h = {NULL, on_stanza, NULL};
	assert_int_equal(xs2s_new(&s2s, loop, cf, ctx, &h), 0);
	sbuf_init(&out);
	sbuf_init(&taken);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	xs2s_free(s2s);
	xmpp_ctx_free(ctx);
	xmpp_shutdown();
	loop_free(loop);
	conf_free(cf);
	sbuf_free(&out);
	sbuf_free(&taken);
	return 0;
}

/* Feed a stream (whole, then byte by byte: the same answers), return the
 * output (valid until the next call). */
static const char *feed(const char *stream, const char *from, const char *to,
                        size_t piece)
{
	out.len = taken.len = 0;
	assert_int_equal(
	    xs2s_feed(s2s, stream, strlen(stream), piece, from, to, on_out, NULL), 0);
	loop_run_once(loop, 0);
	sbuf_putc(&out, '\0');
	sbuf_putc(&taken, '\0');
	out.len--;
	taken.len--;
	return out.p;
}

static const struct {
	const char *what;
	const char *stream;
	const char *pre_from, *pre_to; /* counted as authenticated (NULL: none) */
	const char *out_has[3];        /* substrings of the bridge's answer */
	const char *out_lacks;
	const char *taken; /* what the handler got ("" nothing) */
} rows[] = {
    {"RFC 6120 4.9.3.6: a domain the bridge does not host -> host-unknown",
     HDR("xmpp.test", "nothere.test"),
     NULL,
     NULL,
     {"<stream:stream", "<host-unknown"},
     NULL,
     ""},
    {"RFC 6120 4.9.3.10: the client namespace -> invalid-namespace",
     "<stream:stream xmlns='jabber:client' "
     "xmlns:stream='http://etherx.jabber.org/streams' "
     "to='sip.test' version='1.0'>",
     NULL,
     NULL,
     {"<invalid-namespace"},
     NULL,
     ""},
    {"RFC 6120 4.9.1.1: garbage before any header: our header, then the error",
     "<<<< not xml",
     NULL,
     NULL,
     {"<stream:stream", "<stream:error>", "<not-well-formed"},
     NULL,
     ""},
    {"RFC 6120 4.7.3 / 5.3.1: header answered with an id and features offering STARTTLS",
     HDR("xmpp.test", "sip.test"),
     NULL,
     NULL,
     {"id='", "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'"},
     NULL,
     ""},
    {"XEP-0220 2.4: dialback advertised with <errors/>",
     HDR("xmpp.test", "sip.test"),
     NULL,
     NULL,
     {"<dialback xmlns='urn:xmpp:features:dialback'><errors/>"},
     NULL,
     ""},
    {"RFC 6120 11.1: a comment is restricted XML",
     HDR("xmpp.test", "sip.test") "<!-- x -->",
     NULL,
     NULL,
     {"<restricted-xml"},
     NULL,
     ""},
    {"RFC 6120 4.9.3.12: a stanza before authentication -> not-authorized",
     HDR("xmpp.test", "sip.test") "<message from='bob@xmpp.test' to='alice@sip.test'/>",
     NULL,
     NULL,
     {"<not-authorized"},
     NULL,
     ""},
    {"RFC 6120 4.9.3.9: a from the stream did not authenticate -> invalid-from",
     HDR("xmpp.test", "sip.test") "<message from='x@evil.test' to='alice@sip.test'/>",
     "xmpp.test",
     "sip.test",
     {"<invalid-from"},
     NULL,
     ""},
    {"RFC 6120 4.9.3.6: a to the bridge does not host -> host-unknown",
     HDR("xmpp.test", "sip.test") "<message from='bob@xmpp.test' to='x@nothere.test'/>",
     "xmpp.test",
     "sip.test",
     {"<host-unknown"},
     NULL,
     ""},
    {"an authenticated pair: presence and message reach the bridge, no error",
     HDR("xmpp.test", "sip.test") "<presence from='bob@xmpp.test/d' to='alice@sip.test'/>"
                                  "<message from='bob@xmpp.test/d' to='alice@sip.test' "
                                  "type='chat'><body>hi</body></message>",
     "xmpp.test",
     "sip.test",
     {"<stream:features>"},
     "<stream:error>",
     "presence bob@xmpp.test/d alice@sip.test;message bob@xmpp.test/d alice@sip.test;"},
    {"XEP-0199: a ping to the hosted domain is answered (result, from sip.test)",
     HDR("xmpp.test", "sip.test") "<iq from='xmpp.test' to='sip.test' type='get' "
                                  "id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
     "xmpp.test",
     "sip.test",
     {"<stream:features>"},
     "<stream:error>",
     ""},
    {"XEP-0220 2.2: db:verify with a wrong key -> type invalid",
     HDR("xmpp.test", "sip.test") "<db:verify from='xmpp.test' to='sip.test' "
                                  "id='abc'>00</db:verify>",
     NULL,
     NULL,
     {"<db:verify from='sip.test' to='xmpp.test' id='abc' type='invalid'/>"},
     NULL,
     ""},
    {"XEP-0220 2.2: an empty db:verify (no key) -> type invalid, no crash (fuzz_s2s)",
     HDR("xmpp.test", "sip.test") "<db:verify from='xmpp.test' to='sip.test' id='e1'/>",
     NULL,
     NULL,
     {"<db:verify from='sip.test' to='xmpp.test' id='e1' type='invalid'/>"},
     NULL,
     ""},
    {"XEP-0220 2.1.1: a db:result without a key -> bad-format",
     HDR("xmpp.test", "sip.test") "<db:result from='xmpp.test' to='sip.test'/>",
     NULL,
     NULL,
     {"<bad-format"},
     NULL,
     ""},
    {"XEP-0220 2.5: db:result for a domain not hosted -> item-not-found",
     HDR("xmpp.test",
         "sip.test") "<db:result from='xmpp.test' to='other.test'>00</db:result>",
     NULL,
     NULL,
     {"type='error'", "<item-not-found"},
     NULL,
     ""},
    {"allow list: db:result from a domain not in domains.map -> forbidden",
     HDR("evil.test",
         "sip.test") "<db:result from='evil.test' to='sip.test'>00</db:result>",
     NULL,
     NULL,
     {"type='error'", "<forbidden"},
     NULL,
     ""},
    {"XEP-0178: SASL EXTERNAL without TLS -> failure, not success",
     HDR("xmpp.test", "sip.test") "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                  "mechanism='EXTERNAL'>=</auth>",
     NULL,
     NULL,
     {"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>"},
     "<success",
     ""},
};

static void test_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		for (size_t piece = 0; piece <= 1; piece++) {
			const char *got =
			    feed(rows[i].stream, rows[i].pre_from, rows[i].pre_to, piece);
			for (size_t k = 0; k < 3 && rows[i].out_has[k]; k++)
				if (!strstr(got, rows[i].out_has[k]))
					fail_msg("%s (piece %zu): no '%s' in:\n%s",
					         rows[i].what, piece, rows[i].out_has[k],
					         got);
			if (rows[i].out_lacks && strstr(got, rows[i].out_lacks))
				fail_msg("%s (piece %zu): '%s' in:\n%s", rows[i].what,
				         piece, rows[i].out_lacks, got);
			if (strcmp(taken.p ? taken.p : "", rows[i].taken) != 0)
				fail_msg("%s (piece %zu): the bridge got '%s', want '%s'",
				         rows[i].what, piece, taken.p ? taken.p : "",
				         rows[i].taken);
		}
}

/* XEP-0220 section 2.2 / XEP-0185: the authoritative answer is "valid" exactly
 * for the key made from our secret, the asking server, our domain and the id. */
static void test_verify_valid(void **state)
{
	(void)state;
	char key[XS2S_KEY_LEN + 1], stream[800];
	assert_int_equal(
	    xs2s_dialback_key(SECRET, "xmpp.test", "sip.test", "s2s-id-7", key), 0);
	snprintf(stream, sizeof(stream),
	         HDR("xmpp.test", "sip.test") "<db:verify from='xmpp.test' to='sip.test' "
	                                      "id='s2s-id-7'>%s</db:verify>",
	         key);
	const char *got = feed(stream, NULL, NULL, 0);
	assert_non_null(strstr(
	    got,
	    "<db:verify from='sip.test' to='xmpp.test' id='s2s-id-7' type='valid'/>"));
	/* The same key for another stream id is not valid. */
	snprintf(stream, sizeof(stream),
	         HDR("xmpp.test", "sip.test") "<db:verify from='xmpp.test' to='sip.test' "
	                                      "id='s2s-id-8'>%s</db:verify>",
	         key);
	got = feed(stream, NULL, NULL, 0);
	assert_non_null(strstr(got, "id='s2s-id-8' type='invalid'/>"));
}

/* RFC 6120 section 4.7.3: every stream gets a new, unpredictable id. */
static void test_stream_ids_differ(void **state)
{
	(void)state;
	char a[128] = "", b[128] = "";
	const char *got = feed(HDR("xmpp.test", "sip.test"), NULL, NULL, 0);
	const char *id = strstr(got, "id='");
	assert_non_null(id);
	snprintf(a, sizeof(a), "%.40s", id);
	got = feed(HDR("xmpp.test", "sip.test"), NULL, NULL, 0);
	id = strstr(got, "id='");
	assert_non_null(id);
	snprintf(b, sizeof(b), "%.40s", id);
	assert_string_not_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_verify_valid),
	    cmocka_unit_test(test_stream_ids_differ),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

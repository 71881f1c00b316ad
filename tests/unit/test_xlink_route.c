/* What the component link does with each stanza from the server, and the answers
 * it builds itself. Stanzas are parsed by libstrophe, as on the wire. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/version.h"
#include "presbridge/xlink.h"
#include "presbridge/xroute.h"

static xmpp_ctx_t *ctx;

static const char *const domains[] = {"sip.test", "sip2.test"};

static int setup(void **state)
{
	(void)state;
	xmpp_initialize();
	ctx = xmpp_ctx_new(NULL, NULL);
	return ctx ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	xmpp_ctx_free(ctx);
	xmpp_shutdown();
	return 0;
}

static xmpp_stanza_t *parse(const char *xml)
{
	xmpp_stanza_t *st = xmpp_stanza_new_from_string(ctx, xml);
	assert_non_null(st);
	return st;
}

static char *text(xmpp_stanza_t *st)
{
	char *buf = NULL;
	size_t len;
	assert_int_equal(xmpp_stanza_to_text(st, &buf, &len), XMPP_EOK);
	return buf;
}

#define A "from='alice@xmpp.test/r' "

static const struct {
	const char *xml;
	size_t size; /* 0: the real one */
	enum xroute_action action;
	enum err_cond cond;     /* XROUTE_REFUSE */
	const char *what;       /* XROUTE_IQ: the table row */
	const char *reply_from; /* NULL: the link's domain */
} rows[] = {
    /* the link's own answers, on the component domain */
    {"<iq type='get' id='1' to='sip.test' " A "><query "
     "xmlns='http://jabber.org/protocol/disco#info'/></iq>",
     0, XROUTE_IQ, 0, "disco#info", "sip.test"},
    {"<iq type='get' id='1' to='SIP.test' " A "><query "
     "xmlns='http://jabber.org/protocol/disco#items'/></iq>",
     0, XROUTE_IQ, 0, "disco#items", "SIP.test"},
    {"<iq type='get' id='1' to='sip.test' " A "><ping xmlns='urn:xmpp:ping'/></iq>", 0,
     XROUTE_IQ, 0, "ping", "sip.test"},
    {"<iq type='get' id='1' " A "><ping xmlns='urn:xmpp:ping'/></iq>", 0, XROUTE_IQ, 0,
     "ping", NULL},
    {"<iq type='get' id='1' to='sip2.test' " A "><query xmlns='jabber:iq:version'/></iq>",
     0, XROUTE_IQ, 0, "version", "sip2.test"},
    /* requests the link does not serve */
    {"<iq type='get' id='1' to='sip.test' " A "><query xmlns='jabber:iq:last'/></iq>", 0,
     XROUTE_REFUSE, ERR_COND_SERVICE_UNAVAILABLE, NULL, "sip.test"},
    {"<iq type='set' id='1' to='sip.test' " A "><query xmlns='jabber:iq:version'/></iq>",
     0, XROUTE_REFUSE, ERR_COND_SERVICE_UNAVAILABLE, NULL, "sip.test"},
    {"<iq type='get' id='1' to='sip.test' " A "><vCard xmlns='vcard-temp'/></iq>", 0,
     XROUTE_REFUSE, ERR_COND_SERVICE_UNAVAILABLE, NULL, "sip.test"},
    {"<iq type='get' id='1' to='x@sip.test' " A "><ping xmlns='urn:xmpp:ping'/></iq>", 0,
     XROUTE_REFUSE, ERR_COND_SERVICE_UNAVAILABLE, NULL, "x@sip.test"},
    {"<iq type='get' id='1' to='sip.test/r' " A "><ping xmlns='urn:xmpp:ping'/></iq>", 0,
     XROUTE_REFUSE, ERR_COND_SERVICE_UNAVAILABLE, NULL, "sip.test/r"},
    {"<iq type='get' id='1' to='sip.test' " A "><query node='n' "
     "xmlns='http://jabber.org/protocol/disco#info'/></iq>",
     0, XROUTE_REFUSE, ERR_COND_ITEM_NOT_FOUND, NULL, "sip.test"},
    /* malformed requests */
    {"<iq type='get' id='1' to='sip.test' " A "/>", 0, XROUTE_REFUSE,
     ERR_COND_BAD_REQUEST, NULL, "sip.test"},
    {"<iq type='get' id='1' to='sip.test' " A "><ping xmlns='urn:xmpp:ping'/><ping "
     "xmlns='urn:xmpp:ping'/></iq>",
     0, XROUTE_REFUSE, ERR_COND_BAD_REQUEST, NULL, "sip.test"},
    {"<iq type='get' to='sip.test' " A "><ping xmlns='urn:xmpp:ping'/></iq>", 0,
     XROUTE_REFUSE, ERR_COND_BAD_REQUEST, NULL, "sip.test"},
    {"<iq id='1' to='sip.test' " A "><ping xmlns='urn:xmpp:ping'/></iq>", 0,
     XROUTE_REFUSE, ERR_COND_BAD_REQUEST, NULL, "sip.test"},
    {"<iq type='bogus' id='1' to='sip.test' " A "/>", 0, XROUTE_REFUSE,
     ERR_COND_BAD_REQUEST, NULL, "sip.test"},
    /* answers to requests: the link sends none */
    {"<iq type='result' id='1' to='sip.test' " A "/>", 0, XROUTE_IGNORE, 0, NULL, NULL},
    {"<iq type='error' id='1' to='sip.test' " A "><error type='cancel'/></iq>", 0,
     XROUTE_IGNORE, 0, NULL, NULL},
    /* presence and messages go to the bridge, errors included */
    {"<presence to='x@sip.test' " A "/>", 0, XROUTE_BRIDGE, 0, NULL, "x@sip.test"},
    {"<presence type='subscribe' to='x@sip.test' from='alice@xmpp.test'/>", 0,
     XROUTE_BRIDGE, 0, NULL, "x@sip.test"},
    {"<message type='chat' to='x@sip.test/r' " A "><body>hi</body></message>", 0,
     XROUTE_BRIDGE, 0, NULL, "x@sip.test/r"},
    {"<message type='error' to='x@sip.test' " A "><error type='cancel'/></message>", 0,
     XROUTE_BRIDGE, 0, NULL, "x@sip.test"},
    /* addresses */
    {"<message to='x@elsewhere.test' " A "/>", 0, XROUTE_REFUSE, ERR_COND_ITEM_NOT_FOUND,
     NULL, NULL},
    {"<message to='x@sip.test.evil' " A "/>", 0, XROUTE_REFUSE, ERR_COND_ITEM_NOT_FOUND,
     NULL, NULL},
    {"<message to='a b@sip.test' " A "/>", 0, XROUTE_REFUSE, ERR_COND_JID_MALFORMED, NULL,
     NULL},
    {"<message to='@sip.test' " A "/>", 0, XROUTE_REFUSE, ERR_COND_JID_MALFORMED, NULL,
     NULL},
    {"<message to='x@sip..test' " A "/>", 0, XROUTE_REFUSE, ERR_COND_JID_MALFORMED, NULL,
     NULL},
    {"<message to='x@sip.test/' " A "/>", 0, XROUTE_REFUSE, ERR_COND_JID_MALFORMED, NULL,
     NULL},
    {"<presence to='a:b@sip.test' " A "/>", 0, XROUTE_REFUSE, ERR_COND_JID_MALFORMED,
     NULL, NULL},
    /* never an error for an error, whatever is wrong with it */
    {"<message type='error' to='x@elsewhere.test' " A "/>", 0, XROUTE_IGNORE, 0, NULL,
     NULL},
    {"<presence type='error' to='bad@@sip.test' " A "/>", 0, XROUTE_IGNORE, 0, NULL,
     NULL},
    /* no one to answer */
    {"<message to='x@sip.test'/>", 0, XROUTE_IGNORE, 0, NULL, NULL},
    {"<message to='x@sip.test' from='al ice@xmpp.test'/>", 0, XROUTE_IGNORE, 0, NULL,
     NULL},
    /* not stanzas */
    {"<handshake/>", 0, XROUTE_IGNORE, 0, NULL, NULL},
    {"<r xmlns='urn:xmpp:sm:3'/>", 0, XROUTE_IGNORE, 0, NULL, NULL},
    /* size */
    {"<message to='x@sip.test' " A "/>", 64 * 1024 + 1, XROUTE_REFUSE,
     ERR_COND_POLICY_VIOLATION, NULL, "x@sip.test"},
    {"<message to='x@sip.test' " A "/>", 64 * 1024, XROUTE_BRIDGE, 0, NULL, "x@sip.test"},
    {"<message type='error' to='x@sip.test' " A "/>", 64 * 1024 + 1, XROUTE_IGNORE, 0,
     NULL, NULL},
};

static void test_decide(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		xmpp_stanza_t *st = parse(rows[i].xml);
		char *t = text(st);
		struct xroute_in in;
		struct xroute_out out;
		xroute_read(st, rows[i].size ? rows[i].size : strlen(t), &in);
		xroute_decide(&in, "sip.test", domains, 2, XLINK_MAX_STANZA, &out);
		if (out.action != rows[i].action ||
		    (out.action == XROUTE_REFUSE && out.cond != rows[i].cond))
			fail_msg("row %zu %s: action %d cond %d, want %d %d (%s)", i,
			         rows[i].xml, out.action, out.cond, rows[i].action,
			         rows[i].cond, out.why);
		assert_non_null(out.why);
		if (rows[i].action == XROUTE_IQ)
			assert_string_equal(out.iq->what, rows[i].what);
		if (rows[i].action == XROUTE_REFUSE || rows[i].action == XROUTE_IQ ||
		    rows[i].action == XROUTE_BRIDGE)
			assert_string_equal(out.reply_from, rows[i].reply_from
			                                        ? rows[i].reply_from
			                                        : "sip.test");
		xmpp_free(ctx, t);
		xmpp_stanza_release(st);
	}
}

static void check_contains(xmpp_stanza_t *reply, const char *const *want)
{
	char *t = text(reply);
	for (; *want; want++)
		if (!strstr(t, *want))
			fail_msg("'%s' not in %s", *want, t);
	xmpp_free(ctx, t);
}

static xmpp_stanza_t *answer_to(const char *xml)
{
	xmpp_stanza_t *st = parse(xml);
	struct xroute_in in;
	struct xroute_out out;
	xroute_read(st, 100, &in);
	xroute_decide(&in, "sip.test", domains, 2, XLINK_MAX_STANZA, &out);
	xmpp_stanza_t *reply =
	    out.action == XROUTE_IQ ? out.iq->build(ctx, &in, out.reply_from)
	    : out.action == XROUTE_REFUSE
	        ? xroute_error(ctx, &in, out.reply_from, out.cond, out.why)
	        : NULL;
	assert_non_null(reply);
	xmpp_stanza_release(st);
	return reply;
}

static void test_answers(void **state)
{
	(void)state;
	static const struct {
		const char *xml;
		const char *want[12];
	} cases[] = {
	    {"<iq type='get' id='d1' to='sip.test' " A "><query "
	     "xmlns='http://jabber.org/protocol/disco#info'/></iq>",
	     {"<iq ", "id=\"d1\"", "type=\"result\"", "to=\"alice@xmpp.test/r\"",
	      "from=\"sip.test\"", "category=\"gateway\"", "type=\"sip\"",
	      "name=\"presbridge\"", "var=\"http://jabber.org/protocol/disco#info\"",
	      "var=\"urn:xmpp:ping\"", "var=\"jabber:iq:version\"", NULL}},
	    {"<iq type='get' id='d2' to='sip.test' " A "><query "
	     "xmlns='http://jabber.org/protocol/disco#items'/></iq>",
	     {"type=\"result\"",
	      "<query xmlns=\"http://jabber.org/protocol/disco#items\"/>", NULL}},
	    {"<iq type='get' id='p1' to='sip.test' " A
	     "><ping xmlns='urn:xmpp:ping'/></iq>",
	     {"id=\"p1\"", "type=\"result\"", "from=\"sip.test\"", NULL}},
	    {"<iq type='get' id='v1' to='sip.test' " A
	     "><query xmlns='jabber:iq:version'/></iq>",
	     {"<name>presbridge</name>", "<version>" PB_VERSION "</version>", NULL}},
	    {"<iq type='get' id='l1' to='sip.test' " A
	     "><query xmlns='jabber:iq:last'/></iq>",
	     {"<iq ", "id=\"l1\"", "type=\"error\"", "to=\"alice@xmpp.test/r\"",
	      "from=\"sip.test\"", "<error type=\"cancel\">",
	      "<service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>",
	      "<text xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\">", NULL}},
	    {"<message id='m1' to='a b@sip.test' " A "><body>x</body></message>",
	     {"<message ", "id=\"m1\"", "type=\"error\"", "from=\"sip.test\"",
	      "<error type=\"modify\"><jid-malformed", NULL}},
	    {"<presence to='x@sip.test' " A "/>",
	     {"<presence ", "type=\"error\"", "from=\"x@sip.test\"",
	      "<error type=\"modify\"><policy-violation", NULL}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		xmpp_stanza_t *reply;
		if (i == 6) {
			/* policy-violation needs an oversize stanza */
			xmpp_stanza_t *st = parse(cases[i].xml);
			struct xroute_in in;
			struct xroute_out out;
			xroute_read(st, 100000, &in);
			xroute_decide(&in, "sip.test", domains, 2, XLINK_MAX_STANZA,
			              &out);
			assert_int_equal(out.action, XROUTE_REFUSE);
			reply = xroute_error(ctx, &in, out.reply_from, out.cond, out.why);
			xmpp_stanza_release(st);
		} else {
			reply = answer_to(cases[i].xml);
		}
		check_contains(reply, cases[i].want);
		xmpp_stanza_release(reply);
	}
}

/* An answer without an id keeps none, and a text is optional. */
static void test_error_minimal(void **state)
{
	(void)state;
	xmpp_stanza_t *st =
	    parse("<iq type='get' to='sip.test' " A "><a xmlns='b'/></iq>");
	struct xroute_in in;
	xroute_read(st, 10, &in);
	xmpp_stanza_t *e = xroute_error(ctx, &in, "sip.test", ERR_COND_BAD_REQUEST, NULL);
	char *t = text(e);
	assert_null(strstr(t, "id="));
	assert_null(strstr(t, "<text"));
	assert_non_null(strstr(t, "<bad-request"));
	xmpp_free(ctx, t);
	xmpp_stanza_release(e);
	assert_null(xroute_error(ctx, &in, "sip.test", ERR_COND_COUNT, NULL));
	xmpp_stanza_release(st);
}

static void test_jid(void **state)
{
	(void)state;
	static const struct {
		const char *jid;
		int err;
		const char *local, *domain, *resource;
	} jids[] = {
	    {"alice@xmpp.test/r", 0, "alice", "xmpp.test", "r"},
	    {"xmpp.test", 0, NULL, "xmpp.test", NULL},
	    {"sip.test/a/b@c", 0, NULL, "sip.test", "a/b@c"},
	    {"j\\20doe@sip.test", 0, "j\\20doe", "sip.test", NULL},
	    {"x@127.0.0.1", 0, "x", "127.0.0.1", NULL},
	    {"x@[::1]", 0, "x", "[::1]", NULL},
	    {"\xc3\xa9l\xc3\xa9@b\xc3\xbc.test/\xe2\x98\x83", 0, "\xc3\xa9l\xc3\xa9",
	     "b\xc3\xbc.test", "\xe2\x98\x83"},
	    {"", -EINVAL, NULL, NULL, NULL},
	    {"@sip.test", -EINVAL, NULL, NULL, NULL},
	    {"a@", -EINVAL, NULL, NULL, NULL},
	    {"a@sip.test/", -EINVAL, NULL, NULL, NULL},
	    {"a@@sip.test", -EINVAL, NULL, NULL, NULL},
	    {"a b@sip.test", -EINVAL, NULL, NULL, NULL},
	    {"a\"@sip.test", -EINVAL, NULL, NULL, NULL},
	    {"a@sip test", -EINVAL, NULL, NULL, NULL},
	    {"a@.sip.test", -EINVAL, NULL, NULL, NULL},
	    {"a@sip.test.", -EINVAL, NULL, NULL, NULL},
	    {"a@[::1", -EINVAL, NULL, NULL, NULL},
	    {"a@sip.test/r\x01", -EINVAL, NULL, NULL, NULL},
	    {"a\xff@sip.test", -EINVAL, NULL, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(jids) / sizeof(jids[0]); i++) {
		struct xroute_jid j;
		int err = xroute_jid_split(jids[i].jid, &j);
		if (err != jids[i].err)
			fail_msg("'%s': %d, want %d", jids[i].jid, err, jids[i].err);
		if (err)
			continue;
		assert_int_equal(j.domain_len, strlen(jids[i].domain));
		assert_memory_equal(j.domain, jids[i].domain, j.domain_len);
		if (jids[i].local) {
			assert_int_equal(j.local_len, strlen(jids[i].local));
			assert_memory_equal(j.local, jids[i].local, j.local_len);
		} else {
			assert_null(j.local);
		}
		if (jids[i].resource) {
			assert_int_equal(j.resource_len, strlen(jids[i].resource));
			assert_memory_equal(j.resource, jids[i].resource, j.resource_len);
		} else {
			assert_null(j.resource);
		}
	}
	struct xroute_jid j;
	assert_int_equal(xroute_jid_split(NULL, &j), -EINVAL);
	char longlocal[1100];
	memset(longlocal, 'a', 1024);
	strcpy(longlocal + 1024, "@sip.test");
	assert_int_equal(xroute_jid_split(longlocal, &j), -ENAMETOOLONG);
	char label[100];
	memset(label, 'b', 64);
	strcpy(label + 64, ".test");
	assert_int_equal(xroute_jid_split(label, &j), -EINVAL);
}

/* Every row of the dispatch table answers a request with a result. */
/* xlink_stanza_text() writes what libstrophe's own writer writes, for the
 * shapes the bridge sends; escaping holds for text and attribute values. */
static void test_stanza_text(void **state)
{
	(void)state;
	static const char *const in[] = {
	    "<message to='bob@xmpp.test' from='alice@sip.test' type='chat' id='m1'>"
	    "<body>hi &amp; &lt;bye&gt; \"q\" 'a'</body>"
	    "<active xmlns='http://jabber.org/protocol/chatstates'/></message>",
	    "<presence from='alice@sip.test/lync' to='bob@xmpp.test'><show>dnd</show>"
	    "<status>in a call &lt;3</status><priority>0</priority></presence>",
	    "<presence type='unavailable' from='a@sip.test' to='b@xmpp.test'/>",
	    "<iq type='result' id='x&amp;1' to='xmpp.test' from='sip.test'>"
	    "<query xmlns='http://jabber.org/protocol/disco#info'>"
	    "<identity category='gateway' type='sip' name='SIP &quot;bridge&quot;'/>"
	    "</query></iq>",
	    "<message to='b@xmpp.test'><body>caf\xc3\xa9 \xe2\x82\xac</body></message>",
	};
	xmpp_ctx_t *xctx = xmpp_ctx_new(NULL, NULL);
	assert_non_null(xctx);
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		xmpp_stanza_t *st = xmpp_stanza_new_from_string(xctx, in[i]);
		assert_non_null(st);
		char *ours = NULL, *theirs = NULL;
		size_t ol = 0, tl = 0;
		assert_int_equal(xlink_stanza_text(st, &ours, &ol), 0);
		assert_int_equal(xmpp_stanza_to_text(st, &theirs, &tl), XMPP_EOK);
		if (ol != strlen(ours) || strcmp(ours, theirs) != 0)
			fail_msg("case %zu:\n ours   %s\n theirs %s", i, ours, theirs);
		free(ours);
		xmpp_free(xctx, theirs);
		xmpp_stanza_release(st);
	}
	xmpp_ctx_free(xctx);
}

/* Tab, line feed and carriage return in an attribute value survive the trip
 * through an XML reader (XML 1.0 section 3.3.3 normalizes raw ones to spaces);
 * in text they stay as they are. */
static void test_stanza_text_attr_whitespace(void **state)
{
	(void)state;
	static const char *const vals[] = {"a\tb", "line1\nline2", "cr\r\nlf", "plain"};
	xmpp_ctx_t *xctx = xmpp_ctx_new(NULL, NULL);
	assert_non_null(xctx);
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		xmpp_stanza_t *st =
		    xmpp_message_new(xctx, "chat", "b@xmpp.test", vals[i]);
		assert_non_null(st);
		assert_int_equal(xmpp_message_set_body(st, vals[i]), XMPP_EOK);
		char *text = NULL;
		size_t len = 0;
		assert_int_equal(xlink_stanza_text(st, &text, &len), 0);
		xmpp_stanza_t *back = xmpp_stanza_new_from_string(xctx, text);
		assert_non_null(back);
		assert_string_equal(xmpp_stanza_get_id(back), vals[i]);
		char *body = xmpp_message_get_body(back);
		assert_non_null(body);
		/* an XML reader turns CR LF in text into LF (XML 1.0 section 2.11) */
		if (strchr(vals[i], '\r') == NULL)
			assert_string_equal(body, vals[i]);
		xmpp_free(xctx, body);
		free(text);
		xmpp_stanza_release(back);
		xmpp_stanza_release(st);
	}
	xmpp_ctx_free(xctx);
}

static void test_iq_table(void **state)
{
	(void)state;
	size_t n;
	const struct xroute_iq *t = xroute_iq_table(&n);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++) {
		struct xroute_in in = {.name = "iq",
		                       .type = t[i].type,
		                       .id = "x",
		                       .from = "alice@xmpp.test/r",
		                       .child_name = t[i].name,
		                       .child_ns = t[i].ns,
		                       .nchildren = 1};
		struct xroute_out out;
		xroute_decide(&in, "sip.test", domains, 2, XLINK_MAX_STANZA, &out);
		assert_int_equal(out.action, XROUTE_IQ);
		assert_ptr_equal(out.iq, &t[i]);
		xmpp_stanza_t *r = t[i].build(ctx, &in, "sip.test");
		assert_non_null(r);
		assert_string_equal(xmpp_stanza_get_type(r), "result");
		xmpp_stanza_release(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decide),
	    cmocka_unit_test(test_answers),
	    cmocka_unit_test(test_error_minimal),
	    cmocka_unit_test(test_jid),
	    cmocka_unit_test(test_iq_table),
	    cmocka_unit_test(test_stanza_text),
	    cmocka_unit_test(test_stanza_text_attr_whitespace),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

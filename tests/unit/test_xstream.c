/* The S2S stream reader: events of a whole server stream, fed whole and byte by
 * byte; the XML RFC 6120 section 11 refuses; size limits; stream restarts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/sbuf.h"
#include "presbridge/xstream.h"

#define NS_STREAMS "http://etherx.jabber.org/streams"
/* A jabber:server stream header as RFC 6120 section 4.8.2 and XEP-0220 section
 * 2.4.1 write it. */
#define HDR                                                                              \
	"<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "        \
	"xmlns:stream='" NS_STREAMS "' from='capulet.example' to='montague.example' "    \
	"version='1.0'>"
#define TLS_NS  "urn:ietf:params:xml:ns:xmpp-tls"
#define SASL_NS "urn:ietf:params:xml:ns:xmpp-sasl"

static xmpp_ctx_t *ctx;

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

/* --- recording events ------------------------------------------------------------ */

#define MAX_EV 16

struct rec {
	struct sbuf log; /* one line per event */
	size_t fed;      /* bytes of the document handed over so far (set by feed_doc) */
	size_t at[MAX_EV], size[MAX_EV];
	unsigned nel;
	bool adjacent_text;     /* two text children in a row: text split by chunks */
	const char *restart_on; /* element local name that makes the handler restart */
	struct xstream *x;
	int nested;     /* what a feed from inside a handler returned */
	bool restarted; /* the handler restarted the stream during the last feed */
};

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	sbuf_init(&r->log);
}

/* The stanza as a string with attributes in key order, so it compares with a
 * written expectation whatever order libstrophe keeps them in. */
struct attr {
	const char *k, *v;
};

static int attr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct attr *)a)->k, ((const struct attr *)b)->k);
}

static void canon(struct rec *r, struct sbuf *sb, xmpp_stanza_t *st)
{
	if (xmpp_stanza_is_text(st)) {
		sbuf_put_xml(sb, xmpp_stanza_get_text_ptr(st));
		return;
	}
	sbuf_putc(sb, '<');
	sbuf_puts(sb, xmpp_stanza_get_name(st));
	const char *kv[2 * 64];
	int n = xmpp_stanza_get_attributes(st, kv, 2 * 64);
	struct attr a[64];
	for (int i = 0; i + 1 < n; i += 2)
		a[i / 2] = (struct attr){kv[i], kv[i + 1]};
	qsort(a, (size_t)n / 2, sizeof(a[0]), attr_cmp);
	for (int i = 0; i < n / 2; i++) {
		sbuf_printf(sb, " %s='", a[i].k);
		sbuf_put_xml(sb, a[i].v);
		sbuf_putc(sb, '\'');
	}
	xmpp_stanza_t *c = xmpp_stanza_get_children(st);
	if (!c) {
		sbuf_puts(sb, "/>");
		return;
	}
	sbuf_putc(sb, '>');
	bool was_text = false;
	for (; c; c = xmpp_stanza_get_next(c)) {
		bool is_text = xmpp_stanza_is_text(c);
		if (is_text && was_text)
			r->adjacent_text = true;
		was_text = is_text;
		canon(r, sb, c);
	}
	sbuf_printf(sb, "</%s>", xmpp_stanza_get_name(st));
}

#define S(s) ((s) ? (s) : "-")

static void on_open(const struct xstream_header *h, void *arg)
{
	struct rec *r = arg;
	sbuf_printf(&r->log,
	            "open to=%s from=%s id=%s version=%s lang=%s ns=%s prefix=%s ok=%d "
	            "stream=%d db=%d extra=%u\n",
	            S(h->to), S(h->from), S(h->id), S(h->version), S(h->lang),
	            S(h->content_ns), S(h->prefix), h->stream_ns_ok, h->prefix_stream,
	            h->has_dialback, h->extra_ns);
}

static void on_element(xmpp_stanza_t *st, size_t size, void *arg)
{
	struct rec *r = arg;
	canon(r, &r->log, st);
	sbuf_putc(&r->log, '\n');
	if (r->nel < MAX_EV) {
		r->at[r->nel] = r->fed;
		r->size[r->nel] = size;
	}
	r->nel++;
	if (r->x && r->restart_on &&
	    strcmp(xmpp_stanza_get_name(st), r->restart_on) == 0) {
		r->nested = xstream_feed(r->x, "<a/>", 4, NULL);
		assert_int_equal(xstream_restart(r->x), 0);
		r->restarted = true;
	}
}

static void on_close(void *arg)
{
	struct rec *r = arg;
	sbuf_puts(&r->log, "close\n");
}

static const struct xstream_handlers handlers = {on_open, on_element, on_close, NULL};

static struct xstream *new_stream(struct rec *r, size_t max)
{
	struct xstream_handlers h = handlers;
	h.arg = r;
	struct xstream *x = NULL;
	assert_int_equal(xstream_new(&x, ctx, max, &h), 0);
	r->x = x;
	return x;
}

/* Feed doc step bytes at a time; stop at an error or a restart. Returns the
 * error; *usedp gets the bytes used (less than len after a restart). */
static int feed_doc(struct xstream *x, struct rec *r, const char *doc, size_t len,
                    size_t step, size_t *usedp)
{
	size_t off = 0;
	int err = 0;
	while (off < len) {
		size_t n = len - off < step ? len - off : step;
		size_t used = 0;
		r->fed = off + n;
		r->restarted = false;
		err = xstream_feed(x, doc + off, n, &used);
		if (err) {
			off += n;
			break;
		}
		off += used;
		if (r->restarted)
			break;
	}
	if (usedp)
		*usedp = off;
	return err;
}

static char *log_take(struct rec *r)
{
	char *s = sbuf_take(&r->log, NULL);
	assert_non_null(s);
	return s;
}

/* --- a whole server stream ------------------------------------------------------- */

/* The peer's side of RFC 6120 section 4 / XEP-0220 section 2.1.1: header,
 * features, a dialback key, a message with nested children and escaped text,
 * whitespace keepalives, the closing tag. Each element with its wire text: its
 * size and (fed byte by byte) the byte that completes it are checked. */
static const char *const full_wire[] = {
    "<stream:features><starttls xmlns='" TLS_NS "'><required/></starttls>"
    "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
    "</stream:features>",
    "<db:result from='capulet.example' to='montague.example'>"
    "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3</db:result>",
    "<message from='juliet@capulet.example/balcony' id='m1' to='romeo@montague.example'"
    " type='chat' xml:lang='en'><body>Wherefore &amp; why &lt;art&gt; thou&#x2014;"
    "&quot;Romeo&apos;?\r\n<![CDATA[<b>&amp;</b>]]></body>"
    "<active xmlns='http://jabber.org/protocol/chatstates'/>"
    "<html xmlns='http://jabber.org/protocol/xhtml-im'>"
    "<body xmlns='http://www.w3.org/1999/xhtml'><p>Where<em>fore</em> art</p></body>"
    "</html></message>",
};

static const char full_events[] =
    "open to=montague.example from=capulet.example id=D60000229F version=1.0 lang=en "
    "ns=jabber:server prefix=stream ok=1 stream=1 db=1 extra=0\n"
    "<features xmlns='" NS_STREAMS "'><starttls xmlns='" TLS_NS "'><required/>"
    "</starttls><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
    "</features>\n"
    "<result from='capulet.example' to='montague.example' "
    "xmlns='jabber:server:dialback'>"
    "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3</result>\n"
    "<message from='juliet@capulet.example/balcony' id='m1' "
    "to='romeo@montague.example' type='chat' xml:lang='en' xmlns='jabber:server'>"
    "<body>Wherefore &amp; why &lt;art&gt; thou\xe2\x80\x94&quot;Romeo&apos;?\n"
    "&lt;b&gt;&amp;amp;&lt;/b&gt;</body>"
    "<active xmlns='http://jabber.org/protocol/chatstates'/>"
    "<html xmlns='http://jabber.org/protocol/xhtml-im'>"
    "<body xmlns='http://www.w3.org/1999/xhtml'><p>Where<em>fore</em> art</p></body>"
    "</html></message>\n"
    "close\n";

static char *full_doc(size_t *lenp)
{
	struct sbuf sb;
	sbuf_init(&sb);
	sbuf_puts(&sb, "<?xml version='1.0' encoding='UTF-8'?>\n"
	               "<stream:stream xmlns='jabber:server' "
	               "xmlns:db='jabber:server:dialback' xmlns:stream='" NS_STREAMS "' "
	               "from='capulet.example' to='montague.example' id='D60000229F' "
	               "version='1.0' xml:lang='en'>\n");
	for (size_t i = 0; i < sizeof(full_wire) / sizeof(full_wire[0]); i++) {
		sbuf_puts(&sb, full_wire[i]);
		sbuf_puts(&sb,
		          i % 2 ? " " : "\n \t\r\n"); /* keepalives (RFC 6120 4.6.1) */
	}
	sbuf_puts(&sb, "</stream:stream>");
	char *s = sbuf_take(&sb, lenp);
	assert_non_null(s);
	return s;
}

static void test_full_stream(void **state)
{
	(void)state;
	size_t len;
	char *doc = full_doc(&len);
	static const size_t steps[] = {SIZE_MAX, 1, 7, 64};
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		struct rec r;
		rec_init(&r);
		struct xstream *x = new_stream(&r, 4096);
		size_t used;
		assert_int_equal(feed_doc(x, &r, doc, len, steps[s], &used), 0);
		assert_int_equal(used, len);
		assert_false(xstream_is_open(x));
		assert_null(xstream_error_cond(x));
		char *log = log_take(&r);
		if (strcmp(log, full_events) != 0)
			fail_msg("step %zu: got\n%s\nwant\n%s", steps[s], log,
			         full_events);
		assert_false(r.adjacent_text);
		assert_int_equal(r.nel, 3);
		for (unsigned i = 0; i < 3; i++) {
			assert_int_equal(r.size[i], strlen(full_wire[i]));
			/* Fed byte by byte, each element comes with its own last byte:
			 * nothing waits for more input. */
			if (steps[s] == 1)
				assert_memory_equal(doc + r.at[i] - r.size[i],
				                    full_wire[i], r.size[i]);
		}
		free(log);
		xstream_free(x);
	}
	free(doc);
}

/* --- refusals -------------------------------------------------------------------- */

struct case_row {
	const char *name;
	const char *doc;
	int err;
	const char *cond; /* NULL: no error */
	unsigned nel;     /* elements delivered */
};

static const struct case_row cases[] = {
    /* RFC 6120 section 11.1: comments, PIs, DTDs, entity references */
    {"comment in stanza", HDR "<message><!--<subject/>--><body>x</body></message>",
     -EPROTO, "restricted-xml", 0},
    {"comment before header", "<!-- hi -->" HDR, -EPROTO, "restricted-xml", 0},
    {"comment between stanzas", HDR "<message/><!-- -->", -EPROTO, "restricted-xml", 1},
    {"PI between stanzas", HDR "<?foo bar?>", -EPROTO, "restricted-xml", 0},
    {"PI in stanza", HDR "<message><?php echo 1?></message>", -EPROTO, "restricted-xml",
     0},
    {"PI after declaration", "<?xml version='1.0'?><?xml-stylesheet href='a'?>" HDR,
     -EPROTO, "restricted-xml", 0},
    {"DOCTYPE", "<?xml version='1.0'?><!DOCTYPE stream:stream>" HDR, -EPROTO,
     "restricted-xml", 0},
    {"internal entity",
     "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
     "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]>" HDR
     "<message><body>&lol2;</body></message>",
     -EPROTO, "restricted-xml", 0},
    {"external DTD", "<!DOCTYPE s SYSTEM 'file:///etc/passwd'>" HDR, -EPROTO,
     "restricted-xml", 0},
    {"external entity",
     "<!DOCTYPE s [<!ENTITY x SYSTEM 'http://127.0.0.1:1/x'>]>" HDR
     "<message>&x;</message>",
     -EPROTO, "restricted-xml", 0},
    {"unknown entity in text", HDR "<message><body>&unknown;</body></message>", -EPROTO,
     "restricted-xml", 0},
    {"unknown entity in attribute", HDR "<message to='&unknown;'/>", -EPROTO,
     "restricted-xml", 0},
    {"entity declaration without DTD", HDR "<!ENTITY x 'y'>", -EBADMSG, "not-well-formed",
     0},
    /* the five predefined entities (XML 1.0 section 4.6) and character
     * references (section 4.1, not entity references) are allowed */
    {"predefined entities",
     HDR "<message a='&amp;&lt;&gt;&quot;&apos;'>"
         "&amp;&lt;&gt;&quot;&apos;&#233;&#x2014;</message>",
     0, NULL, 1},
    /* RFC 6120 section 11.5 */
    {"standalone no", "<?xml version='1.0' standalone='no'?>" HDR, -EPROTO,
     "restricted-xml", 0},
    {"standalone yes", "<?xml version='1.0' standalone='yes'?>" HDR, 0, NULL, 0},
    /* section 11.6 */
    {"UTF-16 declared", "<?xml version='1.0' encoding='UTF-16'?>" HDR, -EILSEQ,
     "unsupported-encoding", 0},
    {"ISO-8859-1 declared", "<?xml version='1.0' encoding='ISO-8859-1'?>" HDR, -EILSEQ,
     "unsupported-encoding", 0},
    {"utf-8 declared", "<?xml version='1.0' encoding='utf-8'?>" HDR, 0, NULL, 0},
    {"U+FEFF first", "\xef\xbb\xbf" HDR, -EBADMSG, "not-well-formed", 0},
    {"U+FEFF in text", HDR "<message>\xef\xbb\xbf</message>", 0, NULL, 1},
    {"invalid UTF-8", HDR "<message>\xc3\x28</message>", -EBADMSG, "not-well-formed", 0},
    /* section 11.3: well-formedness */
    {"garbage", "hello world", -EBADMSG, "not-well-formed", 0},
    {"HTTP request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", -EBADMSG, "not-well-formed", 0},
    {"mismatched tags", HDR "<message><body></message>", -EBADMSG, "not-well-formed", 0},
    {"unbound prefix (4.9.3.13)", HDR "<message><foo:body>x</foo:body></message>",
     -EBADMSG, "not-well-formed", 0},
    {"declaration after header", HDR "<?xml version='1.0'?>", -EBADMSG, "not-well-formed",
     0},
    {"element after close", HDR "<message/></stream:stream><message/>", -EBADMSG,
     "not-well-formed", 1},
    {"whitespace after close", HDR "</stream:stream> \n", 0, NULL, 0},
    {"duplicate attribute", HDR "<message to='a' to='b'/>", -EBADMSG, "not-well-formed",
     0},
    /* section 4.8.1 and 4.9.3.10: the first element must be the stream header */
    {"stanza first", "<message xmlns='jabber:server' to='a'/>", -EINVAL,
     "invalid-namespace", 0},
    {"wrong stream namespace (4.9.3.10 example)",
     "<?xml version='1.0'?><stream:stream from='juliet@im.example.com' "
     "to='im.example.com' version='1.0' xmlns='jabber:client' "
     "xmlns:stream='http://wrong.namespace.example.org/'>",
     -EINVAL, "invalid-namespace", 0},
    {"stream without namespace", "<stream to='a'>", -EINVAL, "invalid-namespace", 0},
    {"features first", "<stream:features xmlns:stream='" NS_STREAMS "'>", -EINVAL,
     "bad-format", 0},
    {"prefix-free header (4.8.2)",
     "<stream xmlns='" NS_STREAMS "' to='a'><message xmlns='jabber:server'/>", 0, NULL,
     1},
    /* xmlns='http://www.w3.org/XML/1998/namespace' cannot be written (XML
     * Namespaces section 3); found by fuzz_s2s_stream (regress-xml-ns-element) */
    {"element in the xml namespace", HDR "<message><xml:r/></message>", -EINVAL,
     "bad-format", 0},
    {"first-level element in the xml namespace", HDR "<xml:r/>", -EINVAL, "bad-format",
     0},
    /* RFC 6120 sections 4.6.1 and 11.7: only whitespace between elements */
    {"text between stanzas", HDR "<message/>hello<message/>", -EINVAL, "bad-format", 1},
    {"keepalives", HDR " <message/>\n\t\r\n <message/>  ", 0, NULL, 2},
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct case_row *c = &cases[i];
		for (size_t step = 1; step != 0; step = step == 1 ? SIZE_MAX : 0) {
			struct rec r;
			rec_init(&r);
			struct xstream *x = new_stream(&r, 4096);
			int err = feed_doc(x, &r, c->doc, strlen(c->doc), step, NULL);
			const char *cond = xstream_error_cond(x);
			if (err != c->err || (cond == NULL) != (c->cond == NULL) ||
			    (cond && strcmp(cond, c->cond) != 0) || r.nel != c->nel)
				fail_msg("case '%s' step %zu: got %d %s (%s), %u "
				         "elements; want "
				         "%d %s, %u",
				         c->name, step, err, S(cond),
				         xstream_error_text(x), r.nel, c->err, S(c->cond),
				         c->nel);
			if (err) {
				assert_true(strstr(xstream_error_text(x), "line ") !=
				            NULL);
				/* dead from then on */
				assert_int_equal(xstream_feed(x, " ", 1, NULL), err);
				assert_false(xstream_is_open(x));
			}
			sbuf_free(&r.log);
			xstream_free(x);
		}
	}
}

/* --- headers ----------------------------------------------------------------- */

static const struct {
	const char *doc, *want;
} headers[] = {
    {HDR, "open to=montague.example from=capulet.example id=- version=1.0 lang=- "
          "ns=jabber:server prefix=stream ok=1 stream=1 db=1 extra=0\n"},
    /* RFC 6120 section 4.8.2, prefix-free canonicalization */
    {"<stream xmlns='" NS_STREAMS "' to='b' xml:lang='de'>",
     "open to=b from=- id=- version=- lang=de ns=- prefix=- ok=1 stream=0 db=0 "
     "extra=0\n"},
    /* section 4.9.3.2 example: another prefix, the engine's call */
    {"<foobar:stream xmlns='jabber:server' xmlns:foobar='" NS_STREAMS "'>",
     "open to=- from=- id=- version=- lang=- ns=jabber:server prefix=foobar ok=1 "
     "stream=0 db=0 extra=0\n"},
    /* XEP-0220: the dialback prefix need not be db; section 4.8.5: extended
     * namespaces declared on the header are counted */
    {"<stream:stream xmlns='jabber:server' xmlns:d='jabber:server:dialback' "
     "xmlns:x='urn:x' xmlns:y='urn:y' xmlns:stream='" NS_STREAMS "' id='i'>",
     "open to=- from=- id=i version=- lang=- ns=jabber:server prefix=stream ok=1 "
     "stream=1 db=1 extra=2\n"},
    {"<stream:stream xmlns:stream='" NS_STREAMS "'>",
     "open to=- from=- id=- version=- lang=- ns=- prefix=stream ok=1 stream=1 db=0 "
     "extra=0\n"},
};

static void test_headers(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		struct rec r;
		rec_init(&r);
		struct xstream *x = new_stream(&r, 4096);
		assert_int_equal(feed_doc(x, &r, headers[i].doc, strlen(headers[i].doc),
		                          SIZE_MAX, NULL),
		                 0);
		assert_true(xstream_is_open(x));
		char *log = log_take(&r);
		assert_string_equal(log, headers[i].want);
		free(log);
		xstream_free(x);
	}
}

/* --- namespaces and attributes ---------------------------------------------------- */

static const struct {
	const char *in, *want;
} elements[] = {
    /* xml:lang kept with its prefix (RFC 6120 section 8.1.5) */
    {"<message xml:lang='en' to='a'/>",
     "<message to='a' xml:lang='en' xmlns='jabber:server'/>"},
    /* a namespaced attribute brings its declaration along */
    {"<message xmlns:x='urn:example:x' x:flag='1'><x:data x:n='2'/></message>",
     "<message x:flag='1' xmlns='jabber:server' xmlns:x='urn:example:x'>"
     "<data x:n='2' xmlns='urn:example:x' xmlns:x='urn:example:x'/></message>"},
    /* a child out of any namespace under a namespaced parent */
    {"<message><x xmlns=''><y/></x></message>",
     "<message xmlns='jabber:server'><x xmlns=''><y/></x></message>"},
    /* XEP-0220 section 2.2.1: db:verify in the dialback namespace */
    {"<db:verify from='a' id='417GAF25' to='b' type='valid'/>",
     "<verify from='a' id='417GAF25' to='b' type='valid' "
     "xmlns='jabber:server:dialback'/>"},
    /* back to the parent's namespace: xmlns only where it differs */
    {"<iq><query xmlns='urn:q'><item xmlns='jabber:server'/></query></iq>",
     "<iq xmlns='jabber:server'><query xmlns='urn:q'><item xmlns='jabber:server'/>"
     "</query></iq>"},
    /* RFC 6120 section 4.9.2 */
    {"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
     "</stream:error>",
     "<error xmlns='" NS_STREAMS "'><host-unknown "
     "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></error>"},
    /* text runs between children, a CDATA section joining its neighbours */
    {"<m>a<![CDATA[b]]>c<e/>d</m>", "<m xmlns='jabber:server'>abc<e/>d</m>"},
};

static void test_elements(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(elements) / sizeof(elements[0]); i++) {
		for (size_t step = 1; step != 0; step = step == 1 ? SIZE_MAX : 0) {
			struct rec r;
			rec_init(&r);
			struct xstream *x = new_stream(&r, 4096);
			char doc[512];
			snprintf(doc, sizeof(doc), "%s%s", HDR, elements[i].in);
			assert_int_equal(feed_doc(x, &r, doc, strlen(doc), step, NULL),
			                 0);
			char *log = log_take(&r);
			const char *el = strchr(log, '\n') + 1;
			char want[512];
			snprintf(want, sizeof(want), "%s\n", elements[i].want);
			if (strcmp(el, want) != 0)
				fail_msg("element %zu step %zu: got %s want %s", i, step,
				         el, want);
			assert_false(r.adjacent_text);
			assert_int_equal(r.size[0], strlen(elements[i].in));
			free(log);
			xstream_free(x);
		}
	}
}

/* --- limits ---------------------------------------------------------------------- */

/* A message of exactly len bytes. */
static char *message_of(size_t len)
{
	static const char head[] = "<message to='a'><body>", tail[] = "</body></message>";
	size_t fixed = strlen(head) + strlen(tail);
	assert_true(len >= fixed);
	char *s = malloc(len + 1);
	assert_non_null(s);
	memcpy(s, head, strlen(head));
	memset(s + strlen(head), 'x', len - fixed);
	memcpy(s + len - strlen(tail), tail, strlen(tail) + 1);
	return s;
}

static void test_size_limit(void **state)
{
	(void)state;
	enum { MAX = 300 };
	static const struct {
		size_t len;
		int err;
	} rows[] = {
	    {MAX - 1, 0},           {MAX, 0}, {MAX + 1, -EMSGSIZE}, {MAX + 9, -EMSGSIZE},
	    {100 * MAX, -EMSGSIZE},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		for (size_t step = 1; step != 0; step = step == 1 ? SIZE_MAX : 0) {
			struct rec r;
			rec_init(&r);
			struct xstream *x = new_stream(&r, MAX);
			char *m = message_of(rows[i].len);
			char *doc = malloc(rows[i].len + 2);
			assert_non_null(doc);
			sprintf(doc, "%s ", m);
			/* The header in a read of its own, so that fed whole the element
			 * comes in one piece, which only the size check at its end sees.
			 */
			assert_int_equal(xstream_feed(x, HDR, strlen(HDR), NULL), 0);
			size_t used;
			int err = feed_doc(x, &r, doc, strlen(doc), step, &used);
			if (err != rows[i].err)
				fail_msg("len %zu step %zu: got %d (%s)", rows[i].len,
				         step, err, xstream_error_text(x));
			if (err) {
				assert_string_equal(xstream_error_cond(x),
				                    "policy-violation");
				assert_int_equal(r.nel, 0);
			} else {
				assert_int_equal(r.nel, 1);
				assert_int_equal(r.size[0], rows[i].len);
			}
			free(doc);
			free(m);
			sbuf_free(&r.log);
			xstream_free(x);
		}
	}
}

/* An over-long start tag never completes: the reader refuses once more than
 * max_element bytes wait, without buffering the rest. Also the header. */
static void test_size_limit_open_tag(void **state)
{
	(void)state;
	static const char *const prefixes[] = {HDR "<message to='",
	                                       "<stream:stream to='"};
	for (size_t i = 0; i < 2; i++) {
		struct rec r;
		rec_init(&r);
		struct xstream *x = new_stream(&r, 1000);
		assert_int_equal(xstream_feed(x, prefixes[i], strlen(prefixes[i]), NULL),
		                 0);
		char chunk[512];
		memset(chunk, 'a', sizeof(chunk));
		int err = 0;
		size_t n = 0;
		while (!err && n < 100)
			err = xstream_feed(x, chunk, sizeof(chunk), NULL), n++;
		assert_int_equal(err, -EMSGSIZE);
		assert_true(n <= 3);
		assert_string_equal(xstream_error_cond(x), "policy-violation");
		sbuf_free(&r.log);
		xstream_free(x);
	}
}

static void nest(struct sbuf *sb, unsigned levels, unsigned attrs)
{
	sbuf_puts(sb, HDR);
	for (unsigned i = 0; i < levels; i++) {
		sbuf_puts(sb, "<e");
		for (unsigned a = 0; i == levels - 1 && a < attrs; a++)
			sbuf_printf(sb, " a%u='v'", a);
		sbuf_puts(sb, ">");
	}
	for (unsigned i = 0; i < levels; i++)
		sbuf_puts(sb, "</e>");
}

static void test_depth_attrs(void **state)
{
	(void)state;
	static const struct {
		unsigned levels, attrs;
		int err;
	} rows[] = {
	    {XSTREAM_MAX_DEPTH, 0, 0},
	    {XSTREAM_MAX_DEPTH + 1, 0, -EMSGSIZE},
	    {1, XSTREAM_MAX_ATTRS, 0},
	    {1, XSTREAM_MAX_ATTRS + 1, -EMSGSIZE},
	    {3, XSTREAM_MAX_ATTRS + 1, -EMSGSIZE},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct sbuf sb;
		sbuf_init(&sb);
		nest(&sb, rows[i].levels, rows[i].attrs);
		size_t len;
		char *doc = sbuf_take(&sb, &len);
		struct rec r;
		rec_init(&r);
		struct xstream *x = new_stream(&r, 65536);
		int err = feed_doc(x, &r, doc, len, SIZE_MAX, NULL);
		if (err != rows[i].err)
			fail_msg("row %zu: got %d (%s)", i, err, xstream_error_text(x));
		assert_int_equal(r.nel, err ? 0 : 1);
		if (err)
			assert_string_equal(xstream_error_cond(x), "policy-violation");
		free(doc);
		sbuf_free(&r.log);
		xstream_free(x);
	}
	/* the header's own declarations and attributes count too */
	struct sbuf sb;
	sbuf_init(&sb);
	sbuf_puts(&sb, "<stream:stream xmlns:stream='" NS_STREAMS "'");
	for (unsigned a = 0; a < XSTREAM_MAX_ATTRS; a++)
		sbuf_printf(&sb, " a%u='v'", a);
	sbuf_puts(&sb, ">");
	size_t len;
	char *doc = sbuf_take(&sb, &len);
	struct rec r;
	rec_init(&r);
	struct xstream *x = new_stream(&r, 65536);
	assert_int_equal(feed_doc(x, &r, doc, len, SIZE_MAX, NULL), -EMSGSIZE);
	free(doc);
	sbuf_free(&r.log);
	xstream_free(x);
}

/* --- restarts ---------------------------------------------------------------------- */

/* RFC 6120 sections 5.4.3.3 (after <proceed/> the next bytes are TLS) and 6.4.6
 * (after <success/> a new header follows, maybe in the same read). */
static const struct {
	const char *name, *before, *trigger, *after;
} restarts[] = {
    {"starttls proceed",
     HDR "<stream:features><starttls xmlns='" TLS_NS
         "'><required/></starttls></stream:features>",
     "<proceed xmlns='" TLS_NS "'/>",
     /* a TLS ClientHello's first bytes: not for the XML parser */
     "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"},
    {"proceed with end tag", HDR, "<proceed xmlns='" TLS_NS "'></proceed>",
     "\x16\x03\x01"},
    {"sasl success, new header in the same read",
     HDR "<auth xmlns='" SASL_NS "' mechanism='EXTERNAL'>=</auth>",
     "<success xmlns='" SASL_NS "'/>", "<?xml version='1.0'?>" HDR},
    {"success last in the read", HDR, "<success xmlns='" SASL_NS "'/>", ""},
};

static void test_restart(void **state)
{
	(void)state;
	const char *next =
	    "<?xml version='1.0'?>\n"
	    "<stream:stream xmlns='jabber:server' xmlns:stream='" NS_STREAMS
	    "' from='capulet.example' to='montague.example' "
	    "id='new' version='1.0'><message to='a'/>";
	for (size_t i = 0; i < sizeof(restarts) / sizeof(restarts[0]); i++) {
		for (size_t step = 1; step != 0; step = step == 1 ? SIZE_MAX : 0) {
			char doc[1024];
			int n = snprintf(doc, sizeof(doc), "%s%s%s", restarts[i].before,
			                 restarts[i].trigger, restarts[i].after);
			size_t cut =
			    strlen(restarts[i].before) + strlen(restarts[i].trigger);
			struct rec r;
			rec_init(&r);
			struct xstream *x = new_stream(&r, 4096);
			r.restart_on = strstr(restarts[i].trigger, "proceed") ? "proceed"
			                                                      : "success";
			size_t used;
			assert_int_equal(feed_doc(x, &r, doc, (size_t)n, step, &used), 0);
			if (used != cut)
				fail_msg("%s step %zu: used %zu, want %zu",
				         restarts[i].name, step, used, cut);
			assert_int_equal(r.nested, -EBUSY);
			assert_false(xstream_is_open(x));
			/* the new stream: an XML declaration and header again */
			r.restart_on = NULL;
			const char *rest = *restarts[i].after == '<' ? doc + cut : next;
			assert_int_equal(feed_doc(x, &r, rest, strlen(rest), step, &used),
			                 0);
			assert_int_equal(used, strlen(rest));
			assert_true(xstream_is_open(x));
			char *log = log_take(&r);
			const char *second = strstr(strchr(log, '\n') + 1, "open ");
			if (!second)
				fail_msg("%s: no second header in\n%s", restarts[i].name,
				         log);
			free(log);
			xstream_free(x);
		}
	}
}

/* Outside a handler: forget a stream, even a failed one. */
static void test_restart_outside(void **state)
{
	(void)state;
	struct rec r;
	rec_init(&r);
	struct xstream *x = new_stream(&r, 4096);
	const char *bad = HDR "<!-- no -->";
	assert_int_equal(xstream_feed(x, bad, strlen(bad), NULL), -EPROTO);
	assert_int_equal(xstream_restart(x), 0);
	assert_null(xstream_error_cond(x));
	assert_string_equal(xstream_error_text(x), "");
	const char *good = "<?xml version='1.0'?>" HDR "<message/>";
	size_t used = 0;
	assert_int_equal(xstream_feed(x, good, strlen(good), &used), 0);
	assert_int_equal(used, strlen(good));
	assert_int_equal(r.nel, 1);
	sbuf_free(&r.log);
	xstream_free(x);
}

static void test_new_args(void **state)
{
	(void)state;
	struct xstream *x = NULL;
	assert_int_equal(xstream_new(&x, NULL, 10, &handlers), -EINVAL);
	assert_int_equal(xstream_new(&x, ctx, 0, &handlers), -EINVAL);
	assert_int_equal(xstream_new(&x, ctx, 10, NULL), -EINVAL);
	assert_null(x);
	xstream_free(NULL);
	/* NULL handlers: parsed and dropped */
	struct xstream_handlers none = {0};
	assert_int_equal(xstream_new(&x, ctx, 4096, &none), 0);
	const char *doc = HDR "<message><body>x</body></message></stream:stream>";
	assert_int_equal(xstream_feed(x, doc, strlen(doc), NULL), 0);
	assert_int_equal(xstream_feed(x, "", 0, NULL), 0);
	xstream_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_stream),
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_headers),
	    cmocka_unit_test(test_elements),
	    cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_size_limit_open_tag),
	    cmocka_unit_test(test_depth_attrs),
	    cmocka_unit_test(test_restart),
	    cmocka_unit_test(test_restart_outside),
	    cmocka_unit_test(test_new_args),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

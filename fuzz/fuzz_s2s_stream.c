/* libFuzzer: bytes from a federated server through the S2S stream reader
 * (xstream), as they come off the socket.
 *
 * The first byte picks how they arrive: odd, (byte >> 1) + 1 bytes per read; even,
 * two reads split at (byte >> 1) / 128 of the rest. A <proceed/> or <success/>
 * element restarts the stream from its handler (RFC 6120 sections 5.4.3.3 and
 * 6.4.6) and the bytes after it go to the new stream, as xs2s does after SASL.
 *
 * Besides the sanitizers, every element must survive a round trip through the
 * bridge's own writer: xlink_stanza_text() of it, read back by a second reader,
 * gives the same element (names, namespaces, attributes, text). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/sbuf.h"
#include "presbridge/xlink.h"
#include "presbridge/xstream.h"

#define MAX_ELEMENT 2048u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static xmpp_ctx_t *ctx;
static struct xstream *echo_x; /* the second reader */
static xmpp_stanza_t *echo;    /* what it read */

/* Attribute values and text as a reader sees them after XML 1.0 section 2.11
 * (line ends) and 3.3.3 (attribute-value normalization): the writer puts \t \n \r
 * out raw, so those come back changed; the comparison allows for it. */
static void put_norm(struct sbuf *sb, const char *s, bool attr)
{
	for (; *s; s++) {
		char c = *s;
		if (attr && (c == '\t' || c == '\n' || c == '\r'))
			c = ' ';
		else if (!attr && c == '\r')
			c = '\n';
		sbuf_putc(sb, c);
	}
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The element with attributes in key order. */
static void canon(struct sbuf *sb, xmpp_stanza_t *st)
{
	if (xmpp_stanza_is_text(st)) {
		put_norm(sb, xmpp_stanza_get_text_ptr(st), false);
		return;
	}
	sbuf_putc(sb, '<');
	sbuf_puts(sb, xmpp_stanza_get_name(st));
	const char *kv[2 * 64];
	int n = xmpp_stanza_get_attributes(st, kv, 2 * 64);
	const char *keys[64];
	for (int i = 0; i + 1 < n; i += 2)
		keys[i / 2] = kv[i];
	qsort(keys, (size_t)n / 2, sizeof(keys[0]), key_cmp);
	for (int i = 0; i < n / 2; i++) {
		sbuf_putc(sb, ' ');
		sbuf_puts(sb, keys[i]);
		sbuf_puts(sb, "=\x01");
		put_norm(sb, xmpp_stanza_get_attribute(st, keys[i]), true);
		sbuf_putc(sb, '\x01');
	}
	sbuf_putc(sb, '>');
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(st); c;
	     c = xmpp_stanza_get_next(c))
		canon(sb, c);
	sbuf_putc(sb, '\x02');
}

static void on_echo(xmpp_stanza_t *st, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	if (!echo)
		echo = xmpp_stanza_clone(st);
}

/* A header without a default namespace: the written element carries its own. */
static const char echo_hdr[] =
    "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>";

static void round_trip(xmpp_stanza_t *st)
{
	char *text = NULL;
	size_t len = 0;
	if (xlink_stanza_text(st, &text, &len) != 0)
		return; /* past the writer's own limits (16 attributes) */
	if (xstream_restart(echo_x) != 0 ||
	    xstream_feed(echo_x, echo_hdr, sizeof(echo_hdr) - 1, NULL) != 0)
		abort();
	int err = xstream_feed(echo_x, text, len, NULL);
	if (err != 0 || !echo) {
		fprintf(stderr, "written element not read back (%d %s: %s): %s\n", err,
		        xstream_error_cond(echo_x), xstream_error_text(echo_x), text);
		abort();
	}
	struct sbuf a, b;
	sbuf_init(&a);
	sbuf_init(&b);
	canon(&a, st);
	canon(&b, echo);
	char *sa = sbuf_take(&a, NULL), *sb = sbuf_take(&b, NULL);
	if (sa && sb && strcmp(sa, sb) != 0) {
		fprintf(stderr, "round trip changed the element\nwritten: %s\n", text);
		abort();
	}
	free(sa);
	free(sb);
	xmpp_stanza_release(echo);
	echo = NULL;
	free(text);
}

struct run {
	struct xstream *x;
	bool restarted;
};

static void on_element(xmpp_stanza_t *st, size_t size, void *arg)
{
	struct run *r = arg;
	const char *name = xmpp_stanza_get_name(st);
	if (!name || size == 0 || size > MAX_ELEMENT)
		abort();
	round_trip(st);
	if (strcmp(name, "proceed") == 0 || strcmp(name, "success") == 0) {
		if (xstream_restart(r->x) != 0)
			abort();
		r->restarted = true;
	}
}

static void on_open(const struct xstream_header *h, void *arg)
{
	(void)arg;
	/* every string the engine might log or compare */
	size_t n = 0;
	const char *s[] = {h->to,   h->from,       h->id,    h->version,
	                   h->lang, h->content_ns, h->prefix};
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		n += s[i] ? strlen(s[i]) : 0;
	if (n > 2 * MAX_ELEMENT)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	xmpp_initialize();
	ctx = xmpp_ctx_new(NULL, NULL);
	struct xstream_handlers eh = {NULL, on_echo, NULL, NULL};
	if (!ctx || xstream_new(&echo_x, ctx, 1u << 20, &eh) != 0)
		abort();
	return 0;
}

/* Feed p[0..n) to the stream, going on after restarts. */
static int feed(struct run *r, const char *p, size_t n)
{
	while (n > 0) {
		size_t used = 0;
		r->restarted = false;
		int err = xstream_feed(r->x, p, n, &used);
		if (err)
			return err;
		if (used > n || (!r->restarted && used != n))
			abort();
		p += used;
		n -= used;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct run r = {0};
	struct xstream_handlers h = {on_open, on_element, NULL, &r};
	if (xstream_new(&r.x, ctx, MAX_ELEMENT, &h) != 0)
		abort();
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	if (data[0] & 1) {
		size_t step = (size_t)(data[0] >> 1) + 1;
		for (size_t off = 0; off < n; off += step) {
			size_t k = n - off < step ? n - off : step;
			if (feed(&r, p + off, k) != 0)
				break;
		}
	} else {
		size_t cut = n * (size_t)(data[0] >> 1) / 128;
		if (feed(&r, p, cut) == 0)
			feed(&r, p + cut, n - cut);
	}
	if (xstream_error_cond(r.x) && !*xstream_error_text(r.x))
		abort();
	xstream_free(r.x);
	return 0;
}

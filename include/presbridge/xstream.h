/*
 * xstream - the reading side of one server-to-server XML stream (RFC 6120 section 4):
 * bytes in, the peer's stream header, first-level elements as libstrophe stanzas,
 * and the closing tag out.
 *
 * expat parses (libstrophe has no server streams). Only what RFC 6120 section 11
 * allows gets through: a comment, processing instruction, DTD (internal or
 * external subset) or entity reference other than the five predefined ones
 * (section 11.1), or a standalone='no' declaration (section 11.5), closes the
 * stream with restricted-xml; an encoding other than UTF-8 (section 11.6) with
 * unsupported-encoding; U+FEFF at the start of a stream is a character, not a
 * byte order mark (section 11.6), hence not-well-formed there. Character
 * references (&#233;) and CDATA sections are plain XML and allowed. Whitespace
 * between first-level elements (keepalives, sections 4.6.1 and 11.7) is skipped;
 * other text there is bad-format.
 *
 * The engine (the S2S session) decides everything about the header's values
 * (to/from, version, content namespace, prefix, dialback): this module only
 * refuses a first element that is no stream header at all.
 *
 * Cost: one expat parse of each byte, a few bookkeeping calls per XML event, and
 * one libstrophe stanza per element (those allocate: a name, an attribute hash).
 * No copy of the input is kept beyond what expat buffers for an incomplete token,
 * and that is bounded by max_element.
 */
#ifndef PRESBRIDGE_XSTREAM_H
#define PRESBRIDGE_XSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <strophe.h>

/* RFC 6120 section 4.8.1. */
#define XSTREAM_NS_STREAMS "http://etherx.jabber.org/streams"
/* XEP-0220 section 2.4.1 (traditional dialback is advertised by this declaration). */
#define XSTREAM_NS_DIALBACK "jabber:server:dialback"

/*
 * Local limits beyond max_element, all policy-violation (-EMSGSIZE):
 * - XSTREAM_MAX_DEPTH: a first-level element may nest this many levels (itself
 *   counted as 1; the stream header is not counted). XHTML-IM bodies, pubsub items
 *   and forwarded messages stay well below; xlink_stanza_text() writes up to 64.
 * - XSTREAM_MAX_ATTRS: attributes plus namespace declarations on one element
 *   (the stream header included). Stanzas carry 5-6, a Jingle candidate 12.
 */
#define XSTREAM_MAX_DEPTH 32u
#define XSTREAM_MAX_ATTRS 32u

struct xstream; /* opaque */

/* The stream header the peer sent (RFC 6120 section 4.7). Strings borrowed for the
 * call; NULL when absent. */
struct xstream_header {
	const char *to, *from, *id, *version;
	const char *lang; /* xml:lang (section 4.7.4) */
	/* The default namespace declared on the header (jabber:server expected,
	 * section 4.8.3); NULL when none is declared or when it is the stream namespace
	 * itself (prefix-free canonicalization, section 4.8.2). */
	const char *content_ns;
	/* The prefix the header was written with: "stream" normally, NULL without one
	 * (section 4.8.5: a receiver MAY accept only "stream"; else
	 * bad-namespace-prefix, the engine's call). */
	const char *prefix;
	/* The element is {http://etherx.jabber.org/streams}stream (section 4.8.1).
	 * When false, xstream_feed() fails with -EINVAL right after this call: the
	 * handler still gets the header so the engine can send its own header before the
	 * stream error (section 4.9.1.2). */
	bool stream_ns_ok;
	bool prefix_stream; /* written as stream:stream (section 4.8.5) */
	/* Some prefix is bound to jabber:server:dialback (XEP-0220 section 2.4.1; the
	 * prefix is conventionally but not necessarily "db"). */
	bool has_dialback;
	/* Namespace declarations on the header besides the default namespace, the
	 * stream prefix and the dialback prefix. RFC 6120 section 4.8.5: extended-content
	 * namespaces MUST NOT be declared there; the receiver SHOULD close with
	 * invalid-namespace. */
	unsigned extra_ns;
};

struct xstream_handlers {
	/* The stream header arrived (once per stream; again after a restart). */
	void (*open)(const struct xstream_header *h, void *arg);
	/*
	 * A complete first-level child of the stream (a stanza, features, starttls,
	 * proceed, SASL elements, db:result/db:verify, stream:error...). st is
	 * borrowed for the call (xmpp_stanza_clone to keep). Its name is the local
	 * name and its "xmlns" attribute the element's namespace URI, set on the top
	 * element even when inherited from the stream's default namespace (absent only
	 * when the element has no namespace at all); children get xmlns only where it
	 * differs from their parent (xmlns="" where a child leaves its parent's
	 * namespace), as libstrophe does. A namespaced attribute is named
	 * "prefix:local" ("xml:lang") and, unless the prefix is "xml", its element also
	 * gets the "xmlns:prefix" declaration, so every element can be written out on
	 * its own. Text becomes text children, one per run between child elements.
	 * size: the element's byte length on the wire.
	 */
	void (*element)(xmpp_stanza_t *st, size_t size, void *arg);
	void (*close)(void *arg); /* </stream:stream> */
	void *arg;
};

/*
 * Create a reader waiting for a stream header (an XML declaration may come
 * first). ctx: the libstrophe context stanzas are made in (borrowed, outlives x).
 * max_element: the most bytes one first-level element (or the stream header) may
 * take; a larger one is an error (policy-violation). h is copied; any handler may
 * be NULL. On success *xp is caller-owned (xstream_free). Returns 0, -EINVAL
 * (NULL ctx or h, max_element 0) or -ENOMEM.
 */
int xstream_new(struct xstream **xp, xmpp_ctx_t *ctx, size_t max_element,
                const struct xstream_handlers *h);

/* Free x and any element under construction. NULL is fine. Not from a handler. */
void xstream_free(struct xstream *x);

/*
 * Feed bytes as they come (buf borrowed for the call). Handlers run inside.
 * Returns 0, or a negative errno and the stream is dead from then on (every later
 * call returns the same):
 *   -EBADMSG   not well-formed XML or XML namespaces (not-well-formed, RFC 6120
 *              section 11.3), also data after </stream:stream>
 *   -EPROTO    restricted XML (restricted-xml, section 11.1, 11.5)
 *   -EILSEQ    declared encoding other than UTF-8 (unsupported-encoding, 11.6)
 *   -EMSGSIZE  an element or header over max_element, nesting past
 *              XSTREAM_MAX_DEPTH, more than XSTREAM_MAX_ATTRS attributes
 *              (policy-violation)
 *   -EINVAL    a first element that is no stream header: in another namespace
 *              (invalid-namespace, section 4.8.1) or in the stream namespace
 *              but not named "stream" (bad-format); also non-whitespace text
 *              between first-level elements, or an element in the XML namespace
 *              (<xml:foo/>, which no xmlns attribute can express) (bad-format)
 *   -ENOMEM    (internal-server-error)
 *   -EBUSY     called from inside a handler (the stream stays usable)
 * A handler may call xstream_restart(x) (stream restart after STARTTLS <proceed/>
 * or SASL <success/>, RFC 6120 sections 4.3.3, 5.4.3.3 and 6.4.6): parsing stops
 * right after the element (or header, or closing tag) being handled,
 * xstream_feed() returns 0 and *consumed says how many bytes of buf were used, so
 * the caller can hand the rest to TLS or to the new stream. Without a restart
 * *consumed = len. consumed may be NULL. A handler may NOT free x.
 */
int xstream_feed(struct xstream *x, const char *buf, size_t len, size_t *consumed);

/*
 * Forget the stream: the next bytes must start a new stream header (a fresh expat
 * parser; an XML declaration is allowed again). Any element under construction
 * and a past error are dropped. Safe inside a handler (see xstream_feed). Returns
 * 0 or -ENOMEM (then the stream is dead: internal-server-error).
 */
int xstream_restart(struct xstream *x);

/*
 * The RFC 6120 section 4.9.3 stream error condition for the last failure
 * ("not-well-formed", "restricted-xml", "unsupported-encoding",
 * "policy-violation", "invalid-namespace", "bad-format", "internal-server-error");
 * NULL while there is none. Static.
 */
const char *xstream_error_cond(const struct xstream *x);

/* Plain words for the log about the last failure, with expat's line and column
 * ("" while there is none). Valid until the next call on x. */
const char *xstream_error_text(const struct xstream *x);

/* True between the stream header and the closing tag. */
bool xstream_is_open(const struct xstream *x);

#endif

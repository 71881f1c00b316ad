/*
 * xstream - the reading side of one S2S XML stream: expat events to the stream
 * header, first-level elements as libstrophe stanzas, and the closing tag.
 *
 * Positions are byte offsets from the stream's first byte, as expat counts them
 * (XML_GetCurrentByteIndex): they give each element's size on the wire and tell
 * xstream_feed() where a stream restart cut the input.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <expat.h>

#include "presbridge/xstream.h"

/* Between URI, local name and prefix in expat's names. U+001F is no XML 1.0 Char
 * (XML 1.0 section 2.2), so it can occur in no URI or name, not even through a
 * character reference. */
#define SEP    '\x1f'
#define SEP_S  "\x1f"
#define XML_NS "http://www.w3.org/XML/1998/namespace"

/* Bytes expat may hold between events outside an element without reporting them
 * (a CR waiting for its LF, a split UTF-8 sequence): the read-ahead allowed past
 * max_element before an element's start tag is seen. The exact size is checked
 * when the element ends. */
#define SLACK 8u

struct xstream {
	xmpp_ctx_t *ctx;
	XML_Parser p;
	struct xstream_handlers h;
	uint64_t max;

	/* stream positions */
	uint64_t fed;      /* bytes given to expat */
	uint64_t ev_end;   /* end of the last event outside first-level elements */
	uint64_t el_start; /* start of the first-level element being built */
	uint64_t cur_end;  /* end of the event whose handler runs */

	/* 0 before the header, 1 in the stream, 2 in a first-level element... */
	unsigned depth;
	unsigned ndecl; /* namespace declarations for the next start tag */
	unsigned bom;   /* bytes of EF BB BF matched at the stream's start; 3: checked */
	xmpp_stanza_t *stack[XSTREAM_MAX_DEPTH]; /* [0]: the first-level element */
	const char *ns[XSTREAM_MAX_DEPTH];       /* each level's namespace (in stanzas) */

	char *text; /* character data not yet made a text child */
	size_t text_len, text_cap;
	char *scratch; /* names split into NUL-terminated parts */
	size_t scratch_cap;

	/* the header's namespace declarations */
	char *default_ns;
	bool dialback;
	unsigned extra_ns;

	bool in_feed; /* inside XML_Parse: handlers may run */
	bool stop;    /* an error or restart stopped the parser: ignore late events */
	bool restart; /* a handler asked for a restart at restart_at */
	uint64_t restart_at;

	int err;
	const char *cond;
	char errtext[192];
};

/* --- failures ------------------------------------------------------------------ */

static void drop_element(struct xstream *x)
{
	if (x->depth >= 2 && x->stack[0]) /* owns every deeper level */
		xmpp_stanza_release(x->stack[0]);
	memset(x->stack, 0, sizeof(x->stack));
	x->text_len = 0;
}

/* Record the first failure, with expat's line and column, and stop the parser. */
static void fail(struct xstream *x, int err, const char *cond, const char *what)
{
	if (x->err)
		return;
	x->err = err;
	x->cond = cond;
	x->restart = false;
	if (x->p) {
		snprintf(x->errtext, sizeof(x->errtext), "%s (line %llu, column %llu)",
		         what, (unsigned long long)XML_GetCurrentLineNumber(x->p),
		         (unsigned long long)XML_GetCurrentColumnNumber(x->p) + 1);
	} else {
		snprintf(x->errtext, sizeof(x->errtext), "%s", what);
	}
	drop_element(x);
	if (x->in_feed && !x->stop)
		XML_StopParser(x->p, XML_FALSE);
	x->stop = true;
}

static void fail_restricted(struct xstream *x, const char *what)
{
	/* RFC 6120 section 11.1 item 2; section 4.9.3.18 */
	fail(x, -EPROTO, "restricted-xml", what);
}

/* expat's own errors; anything not listed is not-well-formed (RFC 6120 section
 * 11.3 rules 2 and 4: XML and namespace well-formedness). */
static const struct {
	enum XML_Error code;
	int err;
	const char *cond;
} expat_errors[] = {
    /* Without a DTD, a reference to any but the predefined entities (XML 1.0
     * section 4.6) is an undeclared entity: RFC 6120 section 11.1. */
    {XML_ERROR_UNDEFINED_ENTITY, -EPROTO, "restricted-xml"},
    {XML_ERROR_RECURSIVE_ENTITY_REF, -EPROTO, "restricted-xml"},
    {XML_ERROR_BINARY_ENTITY_REF, -EPROTO, "restricted-xml"},
    {XML_ERROR_EXTERNAL_ENTITY_HANDLING, -EPROTO, "restricted-xml"},
    {XML_ERROR_ENTITY_DECLARED_IN_PE, -EPROTO, "restricted-xml"},
    {XML_ERROR_AMPLIFICATION_LIMIT_BREACH, -EPROTO, "restricted-xml"},
    /* RFC 6120 section 11.6, section 4.9.3.22 */
    {XML_ERROR_UNKNOWN_ENCODING, -EILSEQ, "unsupported-encoding"},
    {XML_ERROR_INCORRECT_ENCODING, -EILSEQ, "unsupported-encoding"},
    {XML_ERROR_NO_MEMORY, -ENOMEM, "internal-server-error"},
};

static void fail_expat(struct xstream *x)
{
	enum XML_Error code = XML_GetErrorCode(x->p);
	int err = -EBADMSG;
	const char *cond = "not-well-formed";
	for (size_t i = 0; i < sizeof(expat_errors) / sizeof(expat_errors[0]); i++) {
		if (expat_errors[i].code == code) {
			err = expat_errors[i].err;
			cond = expat_errors[i].cond;
			break;
		}
	}
	const char *s = XML_ErrorString(code);
	fail(x, err, cond, s ? s : "XML error");
}

/* --- names ----------------------------------------------------------------------- */

struct qname {
	const char *uri;    /* NULL: no namespace */
	const char *local;  /* never NULL */
	const char *prefix; /* NULL: none */
};

/* Split expat's "uri SEP local [SEP prefix]" (or "local") into x->scratch, which
 * stays valid until the next call. */
static int split(struct xstream *x, const char *name, struct qname *q)
{
	const char *s1 = strchr(name, SEP);
	if (!s1) {
		q->uri = q->prefix = NULL;
		q->local = name;
		return 0;
	}
	size_t n = strlen(s1) + (size_t)(s1 - name) + 1;
	if (n > x->scratch_cap) {
		size_t cap = n < 128 ? 128 : n;
		char *p = realloc(x->scratch, cap);
		if (!p)
			return -ENOMEM;
		x->scratch = p;
		x->scratch_cap = cap;
	}
	memcpy(x->scratch, name, n);
	char *a = x->scratch + (s1 - name);
	*a++ = '\0';
	q->uri = x->scratch;
	q->local = a;
	char *b = strchr(a, SEP);
	if (b)
		*b++ = '\0';
	q->prefix = b;
	return 0;
}

/* --- stream header --------------------------------------------------------------- */

static void on_ns_decl(void *arg, const XML_Char *prefix, const XML_Char *uri)
{
	struct xstream *x = arg;
	if (x->stop)
		return;
	x->ndecl++;
	if (x->depth > 0)
		return;
	/* RFC 6120 section 4.8.5: the header declares the content namespace (default)
	 * and the stream prefix; XEP-0220 section 2.4.1 the dialback prefix. */
	if (!prefix) {
		free(x->default_ns);
		x->default_ns = NULL;
		if (uri && *uri && !(x->default_ns = strdup(uri)))
			fail(x, -ENOMEM, "internal-server-error", "out of memory");
	} else if (uri && strcmp(uri, XSTREAM_NS_DIALBACK) == 0) {
		x->dialback = true;
	} else if (!uri || strcmp(uri, XSTREAM_NS_STREAMS) != 0) {
		x->extra_ns++;
	}
}

static void on_header(struct xstream *x, const XML_Char *name, const XML_Char **atts,
                      uint64_t pos, uint64_t end)
{
	struct xstream_header hd = {0};
	struct qname q;
	if (split(x, name, &q) != 0) {
		fail(x, -ENOMEM, "internal-server-error", "out of memory");
		return;
	}
	if (end - pos > x->max) {
		fail(x, -EMSGSIZE, "policy-violation",
		     "stream header over the size limit");
		return;
	}
	unsigned n = x->ndecl;
	for (size_t i = 0; atts[i]; i += 2) {
		const char *k = atts[i];
		if (++n > XSTREAM_MAX_ATTRS)
			break;
		if (strcmp(k, "to") == 0)
			hd.to = atts[i + 1];
		else if (strcmp(k, "from") == 0)
			hd.from = atts[i + 1];
		else if (strcmp(k, "id") == 0)
			hd.id = atts[i + 1];
		else if (strcmp(k, "version") == 0)
			hd.version = atts[i + 1];
		else if (strcmp(k, XML_NS SEP_S "lang" SEP_S "xml") == 0)
			hd.lang = atts[i + 1];
	}
	if (n > XSTREAM_MAX_ATTRS) {
		fail(x, -EMSGSIZE, "policy-violation",
		     "stream header with too many attributes");
		return;
	}
	/* RFC 6120 section 4.8.1 */
	bool ns_ok = q.uri && strcmp(q.uri, XSTREAM_NS_STREAMS) == 0;
	hd.stream_ns_ok = ns_ok && strcmp(q.local, "stream") == 0;
	hd.prefix = q.prefix;
	hd.prefix_stream = q.prefix && strcmp(q.prefix, "stream") == 0;
	hd.has_dialback = x->dialback;
	hd.extra_ns = x->extra_ns;
	/* section 4.8.2: the content namespace is other than the stream namespace */
	if (x->default_ns && strcmp(x->default_ns, XSTREAM_NS_STREAMS) != 0)
		hd.content_ns = x->default_ns;
	x->depth = 1;
	x->ndecl = 0;
	x->ev_end = x->cur_end = end;
	if (x->h.open)
		x->h.open(&hd, x->h.arg);
	if (!hd.stream_ns_ok) {
		/* section 4.8.1 (SHOULD invalid-namespace); an element in the right
		 * namespace that is no <stream/> cannot be processed: 4.9.3.1 */
		if (!ns_ok)
			fail(x, -EINVAL, "invalid-namespace",
			     "first element not in the stream namespace");
		else
			fail(x, -EINVAL, "bad-format", "first element is not <stream>");
	}
}

/* --- elements -------------------------------------------------------------------- */

/* Make the pending character data a text child of the innermost open element. */
static int flush_text(struct xstream *x)
{
	if (!x->text_len)
		return 0;
	xmpp_stanza_t *t = xmpp_stanza_new(x->ctx);
	if (!t)
		return -ENOMEM;
	if (xmpp_stanza_set_text_with_size(t, x->text, x->text_len) != XMPP_EOK ||
	    xmpp_stanza_add_child_ex(x->stack[x->depth - 2], t, 0) != XMPP_EOK) {
		xmpp_stanza_release(t);
		return -ENOMEM;
	}
	x->text_len = 0;
	return 0;
}

static int set_attrs(struct xstream *x, xmpp_stanza_t *st, const XML_Char **atts)
{
	for (size_t i = 0; atts[i]; i += 2) {
		if (!strchr(atts[i], SEP)) {
			if (xmpp_stanza_set_attribute(st, atts[i], atts[i + 1]) !=
			    XMPP_EOK)
				return -ENOMEM;
			continue;
		}
		/* A namespaced attribute always has a prefix (XML Namespaces section
		 * 6.2); the name is kept as written ("xml:lang"), the declaration with
		 * it so the element stands alone. */
		struct qname q;
		if (split(x, atts[i], &q) != 0)
			return -ENOMEM;
		if (!q.prefix)
			return -EBADMSG;
		size_t lp = strlen(q.prefix), ll = strlen(q.local);
		char stackbuf[128];
		char *key =
		    lp + ll + 8 <= sizeof(stackbuf) ? stackbuf : malloc(lp + ll + 8);
		if (!key)
			return -ENOMEM;
		memcpy(key, q.prefix, lp);
		key[lp] = ':';
		memcpy(key + lp + 1, q.local, ll + 1);
		int rc = xmpp_stanza_set_attribute(st, key, atts[i + 1]);
		if (rc == XMPP_EOK && strcmp(q.prefix, "xml") != 0) {
			memcpy(key, "xmlns:", 6);
			memcpy(key + 6, q.prefix, lp + 1);
			rc = xmpp_stanza_set_attribute(st, key, q.uri);
		}
		if (key != stackbuf)
			free(key);
		if (rc != XMPP_EOK)
			return -ENOMEM;
	}
	return 0;
}

static void on_element_start(struct xstream *x, const XML_Char *name,
                             const XML_Char **atts, uint64_t pos, uint64_t end)
{
	unsigned lvl = x->depth - 1; /* index of the new element in stack */
	if (lvl >= XSTREAM_MAX_DEPTH) {
		fail(x, -EMSGSIZE, "policy-violation", "elements nested too deep");
		return;
	}
	unsigned n = x->ndecl;
	for (size_t i = 0; atts[i]; i += 2)
		n++;
	x->ndecl = 0;
	if (n > XSTREAM_MAX_ATTRS) {
		fail(x, -EMSGSIZE, "policy-violation",
		     "element with too many attributes");
		return;
	}
	if (lvl == 0) {
		x->el_start = pos;
		if (end - pos > x->max) {
			fail(x, -EMSGSIZE, "policy-violation",
			     "element over the size limit");
			return;
		}
	} else if (flush_text(x) != 0) {
		goto nomem;
	}

	struct qname q;
	if (split(x, name, &q) != 0)
		goto nomem;
	/* <xml:foo/> is namespace-well-formed, but a stanza names its namespace in
	 * xmlns, and xmlns='http://www.w3.org/XML/1998/namespace' is not (XML
	 * Namespaces section 3): written out, such an element would break the next
	 * hop's stream (RFC 6120 section 11.3 rule 3). No XMPP element lives there. */
	if (q.uri && strcmp(q.uri, XML_NS) == 0) {
		fail(x, -EINVAL, "bad-format", "element in the XML namespace");
		return;
	}
	xmpp_stanza_t *st = xmpp_stanza_new(x->ctx);
	if (!st)
		goto nomem;
	if (xmpp_stanza_set_name(st, q.local) != XMPP_EOK)
		goto nomem_st;
	/* The top element always carries its namespace (none only when it has
	 * none); a child only where it differs from its parent's: xmlns="" where it
	 * has none under a parent that has one. */
	const char *pns = lvl ? x->ns[lvl - 1] : NULL;
	bool same = q.uri ? pns && strcmp(q.uri, pns) == 0 : !pns;
	if (lvl && same) {
		x->ns[lvl] = pns;
	} else if (q.uri || lvl) {
		if (xmpp_stanza_set_ns(st, q.uri ? q.uri : "") != XMPP_EOK)
			goto nomem_st;
		x->ns[lvl] = q.uri ? xmpp_stanza_get_ns(st) : NULL;
	} else {
		x->ns[lvl] = NULL;
	}
	int rc = set_attrs(x, st, atts);
	if (rc == -EBADMSG) {
		xmpp_stanza_release(st);
		fail(x, -EBADMSG, "not-well-formed",
		     "namespaced attribute without prefix");
		return;
	}
	if (rc != 0)
		goto nomem_st;
	if (lvl && xmpp_stanza_add_child_ex(x->stack[lvl - 1], st, 0) != XMPP_EOK)
		goto nomem_st;
	x->stack[lvl] = st;
	x->depth++;
	return;
nomem_st:
	xmpp_stanza_release(st);
nomem:
	fail(x, -ENOMEM, "internal-server-error", "out of memory");
}

static void on_start(void *arg, const XML_Char *name, const XML_Char **atts)
{
	struct xstream *x = arg;
	if (x->stop)
		return;
	uint64_t pos = (uint64_t)XML_GetCurrentByteIndex(x->p);
	uint64_t end = pos + (uint64_t)XML_GetCurrentByteCount(x->p);
	if (x->depth == 0)
		on_header(x, name, atts, pos, end);
	else
		on_element_start(x, name, atts, pos, end);
}

static void on_end(void *arg, const XML_Char *name)
{
	struct xstream *x = arg;
	(void)name; /* expat has matched it with the start tag */
	if (x->stop)
		return;
	uint64_t end = (uint64_t)XML_GetCurrentByteIndex(x->p) +
	               (uint64_t)XML_GetCurrentByteCount(x->p);
	x->cur_end = end;
	if (x->depth == 1) { /* </stream:stream>: RFC 6120 section 4.4 */
		x->depth = 0;
		x->ev_end = end;
		if (x->h.close)
			x->h.close(x->h.arg);
		return;
	}
	if (flush_text(x) != 0) {
		fail(x, -ENOMEM, "internal-server-error", "out of memory");
		return;
	}
	if (--x->depth > 1)
		return;
	xmpp_stanza_t *st = x->stack[0];
	x->stack[0] = NULL;
	x->ev_end = end;
	uint64_t size = end - x->el_start;
	if (size > x->max) {
		xmpp_stanza_release(st);
		fail(x, -EMSGSIZE, "policy-violation", "element over the size limit");
		return;
	}
	if (x->h.element)
		x->h.element(st, (size_t)size, x->h.arg);
	xmpp_stanza_release(st);
}

static void on_chars(void *arg, const XML_Char *s, int len)
{
	struct xstream *x = arg;
	if (x->stop)
		return;
	size_t n = (size_t)len;
	if (x->depth <= 1) {
		/* Between first-level elements only whitespace (XML 1.0 section 2.3
		 * S) separates them: RFC 6120 sections 4.6.1 and 11.7. */
		for (size_t i = 0; i < n; i++) {
			if (s[i] != ' ' && s[i] != '\n' && s[i] != '\t' && s[i] != '\r') {
				fail(x, -EINVAL, "bad-format",
				     "text between first-level elements");
				return;
			}
		}
		x->ev_end = (uint64_t)XML_GetCurrentByteIndex(x->p) +
		            (uint64_t)XML_GetCurrentByteCount(x->p);
		return;
	}
	if (x->text_len + n > x->text_cap) {
		size_t cap = x->text_cap ? x->text_cap : 256;
		while (cap < x->text_len + n)
			cap *= 2;
		char *p = realloc(x->text, cap);
		if (!p) {
			fail(x, -ENOMEM, "internal-server-error", "out of memory");
			return;
		}
		x->text = p;
		x->text_cap = cap;
	}
	memcpy(x->text + x->text_len, s, n);
	x->text_len += n;
}

/* --- restricted XML (RFC 6120 section 11.1) ----------------------------------------- */

static void on_decl(void *arg, const XML_Char *version, const XML_Char *encoding,
                    int standalone)
{
	struct xstream *x = arg;
	(void)version;
	if (x->stop)
		return;
	/* RFC 6120 section 11.6: UTF-8 only (expat is told so, which would otherwise
	 * hide a declared encoding) */
	if (encoding && strcasecmp(encoding, "UTF-8") != 0) {
		fail(x, -EILSEQ, "unsupported-encoding", "encoding other than UTF-8");
		return;
	}
	/* section 11.5: standalone='no' MUST be ignored or refused */
	if (standalone == 0) {
		fail_restricted(x, "standalone='no' in the XML declaration");
		return;
	}
	x->ev_end = (uint64_t)XML_GetCurrentByteIndex(x->p) +
	            (uint64_t)XML_GetCurrentByteCount(x->p);
}

static void on_comment(void *arg, const XML_Char *data)
{
	(void)data;
	fail_restricted(arg, "comment");
}

static void on_pi(void *arg, const XML_Char *target, const XML_Char *data)
{
	(void)target;
	(void)data;
	fail_restricted(arg, "processing instruction");
}

/* The DTD is refused at its first token, before any declaration in it is read:
 * no entity is ever defined, so entity expansion (billion laughs) cannot start. */
static void on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
                       const XML_Char *pubid, int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	fail_restricted(arg, "DTD");
}

static void on_entity_decl(void *arg, const XML_Char *name, int is_param,
                           const XML_Char *value, int value_len, const XML_Char *base,
                           const XML_Char *sysid, const XML_Char *pubid,
                           const XML_Char *notation)
{
	(void)name;
	(void)is_param;
	(void)value;
	(void)value_len;
	(void)base;
	(void)sysid;
	(void)pubid;
	(void)notation;
	fail_restricted(arg, "entity declaration");
}

static void on_unparsed_decl(void *arg, const XML_Char *name, const XML_Char *base,
                             const XML_Char *sysid, const XML_Char *pubid,
                             const XML_Char *notation)
{
	(void)name;
	(void)base;
	(void)sysid;
	(void)pubid;
	(void)notation;
	fail_restricted(arg, "unparsed entity declaration");
}

static void on_skipped(void *arg, const XML_Char *name, int is_param)
{
	(void)name;
	(void)is_param;
	fail_restricted(arg, "entity reference");
}

static int on_external(XML_Parser p, const XML_Char *context, const XML_Char *base,
                       const XML_Char *sysid, const XML_Char *pubid)
{
	(void)context;
	(void)base;
	(void)sysid;
	(void)pubid;
	fail_restricted(XML_GetUserData(p), "external entity reference");
	return XML_STATUS_ERROR;
}

/* --- the stream ----------------------------------------------------------------------
 */

/* A fresh parser and an empty stream. On failure x is dead with -ENOMEM. */
static int reset(struct xstream *x)
{
	drop_element(x);
	if (x->p)
		XML_ParserFree(x->p);
	free(x->default_ns);
	x->default_ns = NULL;
	x->dialback = false;
	x->extra_ns = 0;
	x->fed = x->ev_end = x->el_start = x->cur_end = 0;
	x->depth = x->ndecl = x->bom = 0;
	x->stop = x->restart = false;
	x->err = 0;
	x->cond = NULL;
	x->errtext[0] = '\0';

	/* UTF-8 imposed (RFC 6120 section 11.6): no UTF-16 guessing from the first
	 * bytes; the declared encoding is checked in on_decl. */
	x->p = XML_ParserCreateNS("UTF-8", SEP);
	if (!x->p) {
		fail(x, -ENOMEM, "internal-server-error", "out of memory");
		return -ENOMEM;
	}
	XML_SetReturnNSTriplet(x->p, XML_TRUE);
	XML_SetUserData(x->p, x);
	XML_SetParamEntityParsing(x->p, XML_PARAM_ENTITY_PARSING_NEVER);
#if XML_MAJOR_VERSION > 2 || (XML_MAJOR_VERSION == 2 && XML_MINOR_VERSION >= 6)
	/* expat 2.6's reparse deferral can hold a complete element back until more
	 * bytes come: a stream must see each element as soon as it ends. */
	XML_SetReparseDeferralEnabled(x->p, XML_FALSE);
#endif
	XML_SetElementHandler(x->p, on_start, on_end);
	XML_SetCharacterDataHandler(x->p, on_chars);
	XML_SetStartNamespaceDeclHandler(x->p, on_ns_decl);
	XML_SetXmlDeclHandler(x->p, on_decl);
	XML_SetCommentHandler(x->p, on_comment);
	XML_SetProcessingInstructionHandler(x->p, on_pi);
	XML_SetStartDoctypeDeclHandler(x->p, on_doctype);
	XML_SetEntityDeclHandler(x->p, on_entity_decl);
	XML_SetUnparsedEntityDeclHandler(x->p, on_unparsed_decl);
	XML_SetSkippedEntityHandler(x->p, on_skipped);
	XML_SetExternalEntityRefHandler(x->p, on_external);
	return 0;
}

int xstream_new(struct xstream **xp, xmpp_ctx_t *ctx, size_t max_element,
                const struct xstream_handlers *h)
{
	if (!xp || !ctx || !h || max_element == 0)
		return -EINVAL;
	struct xstream *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->ctx = ctx;
	x->h = *h;
	x->max = max_element;
	if (reset(x) != 0) {
		xstream_free(x);
		return -ENOMEM;
	}
	*xp = x;
	return 0;
}

void xstream_free(struct xstream *x)
{
	if (!x)
		return;
	drop_element(x);
	if (x->p)
		XML_ParserFree(x->p);
	free(x->default_ns);
	free(x->text);
	free(x->scratch);
	free(x);
}

int xstream_restart(struct xstream *x)
{
	if (x->in_feed) {
		/* Inside a handler: stop after this event; xstream_feed resets. */
		if (x->stop)
			return x->err;
		x->restart = true;
		x->restart_at = x->cur_end;
		x->stop = true;
		XML_StopParser(x->p, XML_TRUE);
		return 0;
	}
	return reset(x);
}

/* RFC 6120 section 11.6: U+FEFF is a character even first in a stream, so a UTF-8
 * "byte order mark" there is text before the header. expat would skip it. */
static int check_bom(struct xstream *x, const char *buf, size_t n)
{
	static const unsigned char bom[3] = {0xef, 0xbb, 0xbf};
	for (size_t i = 0; i < n && x->bom < 3; i++) {
		if ((unsigned char)buf[i] != bom[x->bom]) {
			x->bom = 3;
			break;
		}
		if (++x->bom == 3) {
			fail(x, -EBADMSG, "not-well-formed",
			     "U+FEFF before the stream header (RFC 6120 section 11.6)");
			return x->err;
		}
	}
	return 0;
}

int xstream_feed(struct xstream *x, const char *buf, size_t len, size_t *consumed)
{
	size_t off = 0;
	if (x->in_feed)
		return -EBUSY;
	if (consumed)
		*consumed = len;
	if (x->err)
		return x->err;
	while (off < len) {
		/* Bound what expat may buffer: inside a first-level element its
		 * bytes so far; elsewhere what came after the last event, which is
		 * where the next element (or the header) starts at the earliest. */
		uint64_t limit =
		    x->depth >= 2 ? x->el_start + x->max : x->ev_end + x->max + SLACK;
		if (x->fed >= limit) {
			fail(x, -EMSGSIZE, "policy-violation",
			     x->depth >= 2
			         ? "element over the size limit"
			         : "element or stream header over the size limit");
			return x->err;
		}
		size_t n = len - off;
		if (n > limit - x->fed)
			n = (size_t)(limit - x->fed);
		if (n > INT_MAX)
			n = INT_MAX;
		if (x->bom < 3 && check_bom(x, buf + off, n) != 0)
			return x->err;
		uint64_t base = x->fed;
		x->in_feed = true;
		enum XML_Status st = XML_Parse(x->p, buf + off, (int)n, XML_FALSE);
		x->in_feed = false;
		x->fed += n;
		if (x->err)
			return x->err;
		if (x->restart) {
			if (consumed)
				*consumed = off + (size_t)(x->restart_at - base);
			return reset(x);
		}
		if (st != XML_STATUS_OK) {
			fail_expat(x);
			return x->err;
		}
		off += n;
	}
	return 0;
}

const char *xstream_error_cond(const struct xstream *x)
{
	return x->cond;
}

const char *xstream_error_text(const struct xstream *x)
{
	return x->errtext;
}

bool xstream_is_open(const struct xstream *x)
{
	return !x->err && x->depth >= 1;
}

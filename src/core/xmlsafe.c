#include "presbridge/xmlsafe.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

bool utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false; /* continuation byte, overlong lead, or > U+10FFFF
			               */
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		if (cp >= 0xd800 && cp <= 0xdfff)
			return false;
		i += n + 1;
	}
	return true;
}

/* Any markup declaration is refused before parsing: presence and status
 * documents never need a DTD, and refusing early means libxml2 never builds
 * an entity table that a billion-laughs document could blow up. */
static bool has_declaration(const char *buf, size_t len)
{
	static const char *const bad[] = {"<!DOCTYPE", "<!ENTITY", "<!ELEMENT",
	                                  "<!ATTLIST"};
	const char *p = buf;
	const char *end = buf + len;

	while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
		if (end - p < 2 || p[1] != '!') { /* every declaration starts "<!" */
			p++;
			continue;
		}
		for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			size_t bl = strlen(bad[k]);
			if ((size_t)(end - p) >= bl && strncmp(p, bad[k], bl) == 0)
				return true;
		}
		p++;
	}
	return false;
}

#define XMLS_CTXT_DOCS  10000
#define XMLS_CTXT_NAMES 4096
static xmlParserCtxt *cached_ctxt;
static unsigned cached_uses;

int xmls_parse(const char *buf, size_t len, size_t max, xmlDoc **docp)
{
	if (len > max || len > INT32_MAX)
		return -E2BIG;
	if (!utf8_valid(buf, len))
		return -EILSEQ;
	if (has_declaration(buf, len))
		return -EPERM;

	/* One parser context serves one document after another (libxml2 resets it
	 * for each): creating one, with its dictionary, was a tenth of reading a
	 * PIDF. Its dictionary keeps the names it saw, so it is renewed after
	 * XMLS_CTXT_DOCS documents or once it holds XMLS_CTXT_NAMES names: a peer
	 * sending ever new element names cannot grow it without bound. */
	xmlParserCtxt *ctxt = cached_ctxt;
	cached_ctxt = NULL;
	if (!ctxt)
		ctxt = xmlNewParserCtxt();
	if (!ctxt)
		return -ENOMEM;
	int opts =
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;
	xmlDoc *doc = xmlCtxtReadMemory(ctxt, buf, (int)len, NULL, "UTF-8", opts);
	int err = 0;
	if (!doc || !ctxt->wellFormed)
		err = -EBADMSG;
	else if (doc->intSubset || doc->extSubset)
		err = -EPERM;
	else if (!xmlDocGetRootElement(doc))
		err = -EBADMSG;
	if (!err && ++cached_uses < XMLS_CTXT_DOCS &&
	    (!ctxt->dict || xmlDictSize(ctxt->dict) < XMLS_CTXT_NAMES)) {
		cached_ctxt = ctxt;
	} else {
		xmlFreeParserCtxt(ctxt);
		cached_uses = 0;
	}
	if (err) {
		xmlFreeDoc(doc);
		return err;
	}
	*docp = doc;
	return 0;
}

const char *xmls_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case -E2BIG:
		return "document too large";
	case -EILSEQ:
		return "invalid UTF-8";
	case -EPERM:
		return "DTD or entity declarations are not accepted";
	case -EBADMSG:
		return "not well-formed XML";
	case -ENOMEM:
		return "out of memory";
	default:
		return "unreadable document";
	}
}

bool xmls_is(const xmlNode *node, const char *ns, const char *name)
{
	if (!node || node->type != XML_ELEMENT_NODE)
		return false;
	if (strcmp((const char *)node->name, name) != 0)
		return false;
	if (!ns)
		return true;
	return node->ns && node->ns->href &&
	       strcmp((const char *)node->ns->href, ns) == 0;
}

xmlNode *xmls_next(const xmlNode *after, const char *ns, const char *name)
{
	for (xmlNode *n = after ? after->next : NULL; n; n = n->next)
		if (xmls_is(n, ns, name))
			return n;
	return NULL;
}

xmlNode *xmls_child(const xmlNode *parent, const char *ns, const char *name)
{
	if (!parent)
		return NULL;
	for (xmlNode *n = parent->children; n; n = n->next)
		if (xmls_is(n, ns, name))
			return n;
	return NULL;
}

char *xmls_text(const xmlNode *node)
{
	if (!node)
		return NULL;
	xmlChar *c = xmlNodeGetContent(node);
	if (!c)
		return strdup("");
	const char *s = (const char *)c;
	const char *e = s + strlen(s);
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	char *out = strndup(s, (size_t)(e - s));
	xmlFree(c);
	return out;
}

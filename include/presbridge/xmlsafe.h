/*
 * xmlsafe - the only way the bridge parses XML that a peer sent.
 *
 * Peers are on the other side of an organisation boundary. A document with a DTD,
 * an entity declaration (billion laughs) or an external entity is refused before
 * libxml2 sees it, and libxml2 runs with network access off and entity
 * substitution off. Oversize documents and invalid UTF-8 are refused too.
 */
#ifndef PRESBRIDGE_XMLSAFE_H
#define PRESBRIDGE_XMLSAFE_H

#include <stddef.h>
#include <stdbool.h>
#include <libxml/tree.h>

/* Largest presence or status document accepted by default (Lync's own
 * documents stay under 16 KiB; categories with calendar data can reach 40). */
#define XMLS_MAX_DEFAULT (64 * 1024)

/*
 * Parse buf[0..len) into *docp (caller-owns; release with xmlFreeDoc).
 * Returns 0, or:
 *   -E2BIG   len > max
 *   -EILSEQ  not valid UTF-8 (or a NUL byte inside)
 *   -EPERM   a DOCTYPE, entity declaration or entity reference to a custom entity
 *   -EBADMSG not well-formed XML
 *   -ENOMEM
 * *docp is set only on success.
 */
int xmls_parse(const char *buf, size_t len, size_t max, xmlDoc **docp);

/* Short words for an xmls_parse() error, for logs and diagnostics. */
const char *xmls_strerror(int err);

/* Strict UTF-8 check: no overlong forms, no surrogates, nothing above U+10FFFF, no NUL.
 */
bool utf8_valid(const char *s, size_t len);

/* The first element child of parent (after 'after' when non-NULL) with the given
 * local name and namespace href (ns NULL: any namespace). Borrowed. */
xmlNode *xmls_child(const xmlNode *parent, const char *ns, const char *name);
xmlNode *xmls_next(const xmlNode *after, const char *ns, const char *name);

/* Text content of node, trimmed of leading/trailing white space.
 * Caller-owns (free()); NULL if node is NULL or on ENOMEM. */
char *xmls_text(const xmlNode *node);

/* True if node's local name and namespace match. */
bool xmls_is(const xmlNode *node, const char *ns, const char *name);

#endif

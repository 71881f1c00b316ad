/*
 * xroute - what the component link does with each stanza the XMPP server sends,
 * and the answers it builds itself.
 *
 * The decision is a function of the stanza's fields (struct xroute_in), so every
 * rule is unit-tested without a server:
 *   - not iq/message/presence: ignored (it is not a stanza);
 *   - type='error': never answered with an error (that would loop); iq errors are
 *     ignored, message and presence errors go to the bridge (delivery failures);
 *   - over the size limit: policy-violation;
 *   - a sender that is missing or malformed: ignored, there is no one to answer;
 *   - a malformed recipient: jid-malformed; one outside our component domains:
 *     item-not-found;
 *   - presence and message: to the bridge;
 *   - iq get/set: the dispatch table (disco#info, disco#items, ping, version on
 *     the component domain itself); anything else service-unavailable; iq
 *     result: ignored (the link sends no requests).
 */
#ifndef PRESBRIDGE_XROUTE_H
#define PRESBRIDGE_XROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <strophe.h>

#include "presbridge/err.h"

#define XROUTE_NS_DISCO_INFO  "http://jabber.org/protocol/disco#info"
#define XROUTE_NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define XROUTE_NS_PING        "urn:xmpp:ping"
#define XROUTE_NS_VERSION     "jabber:iq:version"
#define XROUTE_NS_CHATSTATES  "http://jabber.org/protocol/chatstates"

/* The fields the decision reads. Strings are borrowed (from the stanza). */
struct xroute_in {
	const char *name; /* element name: iq, message, presence, ... */
	const char *type; /* NULL when absent */
	const char *id;
	const char *to; /* NULL when absent: addressed to the component itself */
	const char *from;
	/* iq: the first element child, the number of element children, and whether
	 * that child has a node attribute (XEP-0030 nodes) */
	const char *child_name;
	const char *child_ns;
	size_t nchildren;
	bool child_node;
	size_t size; /* serialized length */
};

enum xroute_action {
	XROUTE_IGNORE, /* nothing to send; out->why says why (for a debug log) */
	XROUTE_REFUSE, /* answer with an error: out->cond, out->why as its text */
	XROUTE_BRIDGE, /* presence or message for the bridge */
	XROUTE_IQ,     /* answer with out->iq->build() */
};

struct xroute_in;

/* Build the result of an iq the link answers itself. from: the address to answer
 * from. Returns a new stanza (caller-owns: xmpp_stanza_release) or NULL on ENOMEM. */
typedef xmpp_stanza_t *(xroute_build_h)(xmpp_ctx_t *ctx, const struct xroute_in *in,
                                        const char *from);

/* One row of the iq dispatch table. */
struct xroute_iq {
	const char *ns;   /* payload namespace */
	const char *name; /* payload element */
	const char *type; /* "get" or "set" */
	xroute_build_h *build;
	const char *what; /* for logs: "disco#info" */
};

struct xroute_out {
	enum xroute_action action;
	enum err_cond cond;         /* XROUTE_REFUSE */
	const char *why;            /* static plain words */
	const struct xroute_iq *iq; /* XROUTE_IQ: the table row */
	/* XROUTE_REFUSE, XROUTE_IQ: the address to answer from: the recipient when it
	 * is well-formed and ours, else the component domain. Borrowed. */
	const char *reply_from;
};

/* Fill in from stanza st (borrowed; in's strings point into st). size: st's
 * serialized length, which the caller has for its trace log anyway. */
void xroute_read(xmpp_stanza_t *st, size_t size, struct xroute_in *in);

/*
 * Decide what to do with in, received on the link of component domain `domain`.
 * domains[0..ndomains): every component domain of the bridge (case-insensitive).
 * max_size: the size limit (XLINK_MAX_STANZA). Fills *out; never fails.
 */
void xroute_decide(const struct xroute_in *in, const char *domain,
                   const char *const *domains, size_t ndomains, size_t max_size,
                   struct xroute_out *out);

/* The iq dispatch table (static); *n gets its length. */
const struct xroute_iq *xroute_iq_table(size_t *n);

/*
 * The error answer to in: same element name and id, to = in->from, from, type
 * 'error', an <error/> with cond, its RFC 6120 type and text (NULL: none). Never
 * call it for a stanza of type error. Caller-owns the result; NULL on ENOMEM.
 */
xmpp_stanza_t *xroute_error(xmpp_ctx_t *ctx, const struct xroute_in *in, const char *from,
                            enum err_cond cond, const char *text);

/* A JID split into its parts; pointers into the string given to xroute_jid_split,
 * lengths without terminators. local and resource are NULL when absent. */
struct xroute_jid {
	const char *local, *domain, *resource;
	size_t local_len, domain_len, resource_len;
};

/*
 * Split a JID into its parts (RFC 7622 section 3): [local@]domain[/resource].
 * Rejects an empty part after a separator, a part over ADDR_MAX_PART octets, a
 * localpart with a character RFC 7622 forbids, a domain that is neither a DNS
 * name nor an IP literal, control characters and invalid UTF-8. Returns 0 and
 * fills *out, or -EINVAL / -ENAMETOOLONG (*out untouched).
 */
int xroute_jid_split(const char *jid, struct xroute_jid *out);

struct xlink_handlers;

/* The text content of element st (its first child, when that is text), borrowed;
 * NULL for NULL, an empty element or one whose first child is an element.
 * libstrophe's xmpp_stanza_get_text_ptr() takes the text node itself and
 * dereferences NULL, which an empty <db:verify/> or <text/> from a peer gives. */
const char *xroute_text(xmpp_stanza_t *st);

/* Write an answer back to where a stanza came from (st borrowed). */
typedef int(xroute_reply_h)(xmpp_stanza_t *st, void *arg);

/*
 * One incoming stanza for hosted domain `domain`, whatever transport carried it
 * (component link or server-to-server stream): decide (xroute_decide), answer
 * link-local iqs and refusals through reply(arg), hand presence and messages to
 * h->stanza and answer its refusals. st borrowed; size its wire length.
 */
void xroute_dispatch(xmpp_ctx_t *ctx, xmpp_stanza_t *st, size_t size, const char *domain,
                     const char *const *domains, size_t ndomains,
                     const struct xlink_handlers *h, xroute_reply_h *reply, void *arg);

#endif

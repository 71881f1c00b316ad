/*
 * xlink - the XMPP leg: XEP-0114 component links to the XMPP server.
 *
 * One link (one stream, one handshake) per component domain, i.e. per XMPP-side
 * name of a `sip` row of domains.map: ejabberd_service accepts one domain per
 * handshake, and separate streams let one domain's refusal leave the others up.
 *
 * Each link connects to [xmpp] server, with TLS from the first byte (tls =
 * direct; certificate verified against [xmpp] ca and [xmpp] name) or without
 * (tls = off), opens a jabber:component:accept stream and authenticates with the
 * XEP-0114 handshake. It runs inside the daemon's event loop (no thread, no
 * polling: an idle bridge sleeps). When the server goes away or refuses, the link
 * retries with exponential back-off (1 s doubling to 30 s, with jitter), logging
 * the first failure, every change of cause and every tenth repeat.
 *
 * The link answers on its own: disco#info (a gateway/sip identity), disco#items,
 * XEP-0199 ping and XEP-0092 version on the component domain; service-unavailable
 * to any other iq request; item-not-found, jid-malformed and policy-violation to
 * stanzas it cannot route. Presence and message stanzas go to the bridge.
 *
 * At log_level = trace every stanza in and out is logged on one line, with the
 * handshake digest masked.
 */
#ifndef PRESBRIDGE_XLINK_H
#define PRESBRIDGE_XLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <strophe.h>

#include "presbridge/err.h"

struct conf;
struct loop;
struct xlink_set; /* opaque: every component link of the bridge */

/* Limits (stanzas queued per link while it is down, bytes, stanza size). */
#define XLINK_QUEUE_MAX   1000u
#define XLINK_QUEUE_BYTES (8u * 1024u * 1024u)
#define XLINK_MAX_STANZA  (64u * 1024u)
/* Time allowed for TCP connect + TLS + stream header + handshake reply. */
#define XLINK_ATTEMPT_MS 20000u
/* Time allowed for the TLS handshake alone (libstrophe blocks during it). */
#define XLINK_TLS_MS 10000u
/* Time the server gets to close the stream after our </stream:stream>. */
#define XLINK_CLOSE_MS 2000u

/* The bridge's answer to a presence or message it does not take. */
struct xlink_refusal {
	enum err_cond cond;
	const char *text; /* plain words for the <text/>; static or valid until return */
};

enum {
	XLINK_TAKEN = 0,
	XLINK_REFUSE = 1, /* answer the stanza with the refusal (never done for errors) */
};

/* The link of component domain `domain` came up (up = true: re-announce what the
 * server may have lost: probe watched users, resend presence) or went down. */
typedef void(xlink_state_h)(const char *domain, bool up, void *arg);

/*
 * A presence or message stanza for the bridge, received on the link of `domain`.
 * st is borrowed for the call (xmpp_stanza_clone to keep it). Return XLINK_TAKEN,
 * or XLINK_REFUSE after filling *r to have the link answer with an error.
 */
typedef int(xlink_stanza_h)(const char *domain, xmpp_stanza_t *st,
                            struct xlink_refusal *r, void *arg);

struct xlink_handlers {
	xlink_state_h *state;   /* may be NULL */
	xlink_stanza_h *stanza; /* may be NULL: presence taken, messages refused */
	void *arg;
};

/*
 * Create the links for the component domains of cf and start connecting at once.
 * Everything needed from cf is copied (cf may be freed afterwards). A cf with no
 * SIP-homed domain gives an empty set (logged). h is copied; l is borrowed and
 * must outlive the set. Registers the loop's idle handler. *sp: caller-owns
 * (xlink_set_free). Returns 0 or -errno (-ENOMEM, or -EINVAL for a cf without
 * [xmpp] server/secret).
 */
int xlink_set_new(struct xlink_set **sp, struct loop *l, const struct conf *cf,
                  const struct xlink_handlers *h);

/*
 * Apply a reloaded configuration (SIGHUP). Unchanged [xmpp] section and component
 * domains: nothing happens. Otherwise every stream is closed cleanly and opened
 * again at once with the new settings; stanzas queued for a domain that remains
 * are kept and sent when it is up; a domain no longer in domains.map loses its
 * link and its queue (logged). Certificate files are read again at every connect,
 * so a renewed [xmpp] ca needs no reconnect. cf is borrowed. Returns 0 or -ENOMEM.
 */
int xlink_set_apply(struct xlink_set *s, const struct conf *cf);

/*
 * Stop: close every stream cleanly (</stream:stream>, waiting up to XLINK_CLOSE_MS
 * for the server's own close), stop reconnecting, then call done(arg) once, from
 * the loop. New stanzas are refused with -ESHUTDOWN from then on.
 */
void xlink_set_stop(struct xlink_set *s, void (*done)(void *arg), void *arg);

/* Free the set: closes whatever is still open without waiting. NULL is allowed. */
void xlink_set_free(struct xlink_set *s);

/*
 * Send st (borrowed: serialized here, the caller still releases it). Its `from`
 * must be a JID at one of the component domains: that picks the link. While the
 * link is down the stanza waits in the link's bounded queue. Returns 0 (sent or
 * queued), -EINVAL (no or malformed from), -ENOENT (from is not at a component
 * domain), -E2BIG (over XLINK_MAX_STANZA), -ENOBUFS (link down and queue full),
 * -ESHUTDOWN (stopping) or -ENOMEM.
 */
int xlink_send(struct xlink_set *s, xmpp_stanza_t *st);
/*
 * st as XML text (*outp malloc'd, NUL-terminated, *lenp bytes): what
 * xlink_send() writes. Text and attribute values are escaped (& < > "), an
 * element without children is closed with "/>". Our own writer: libstrophe's
 * xmpp_stanza_to_text() formats every piece through snprintf, which was a
 * tenth of the bridge's work per message. Returns 0, -ENOMEM, -EINVAL (a
 * nameless element, nesting past 64) or -E2BIG (more than 16 attributes).
 */
int xlink_stanza_text(xmpp_stanza_t *st, char **outp, size_t *lenp);

/*
 * A libstrophe context for building stanzas to pass to xlink_send (borrowed; it
 * lives as long as the set).
 */
xmpp_ctx_t *xlink_stanza_ctx(struct xlink_set *s);

/* Is the link of component domain `domain` up? domain NULL: are all links up
 * (false for an empty set)? */
bool xlink_is_up(const struct xlink_set *s, const char *domain);

/*
 * Seconds until the link of `domain` (NULL: the latest of all links) next tries
 * to connect, at least 1 while it is down, for a SIP Retry-After; 0 when up or
 * unknown.
 */
unsigned xlink_retry_after(const struct xlink_set *s, const char *domain);

/* Number of component links and the domain of link i (borrowed; NULL past the end). */
size_t xlink_count(const struct xlink_set *s);
/* Stanzas waiting for a link or stream to come up, over all of them. */
size_t xlink_queued(const struct xlink_set *s);
const char *xlink_domain(const struct xlink_set *s, size_t i);

/* ---- test seam (fuzzing) ---- */

/* Every stanza a link of `domain` would write (text borrowed for the call). */
typedef void(xlink_tap_h)(const char *domain, const char *text, size_t len, void *arg);

/*
 * Replace the server with h: every link drops its connection attempt, stops
 * reconnecting and comes up at once (state handler called, queue flushed into
 * h), and what the links write goes to h. Only for harnesses such as
 * fuzz/fuzz_xmpp.c: the daemon never sets a tap.
 */
void xlink_set_tap(struct xlink_set *s, xlink_tap_h *h, void *arg);

/*
 * One stanza (XML text, len bytes, parsed by libstrophe) as if it arrived on the
 * link of component domain `domain`: the same routing, link-local answers and
 * bridge handlers. Needs a tap. Returns 0, -EINVAL (no tap, unknown domain),
 * -EBADMSG (not one XML element) or -ENOMEM.
 */
int xlink_feed(struct xlink_set *s, const char *domain, const char *text, size_t len);

/*
 * With [xmpp] transport = s2s: a peer's incoming stream through xs2s_feed (see
 * xs2s.h). Returns -EINVAL with transport = component.
 */
int xlink_s2s_feed(struct xlink_set *s, const char *bytes, size_t len, size_t piece,
                   const char *pre_from, const char *pre_to, xlink_tap_h *out, void *arg);

/*
 * The component domains of cf: the XMPP-side names of the SIP-homed rows of
 * domains.map, in file order, without duplicates. *vp: caller-owns (each string
 * and the array, free()). Returns 0, -ENOENT (no domains.map loaded) or -ENOMEM.
 */
int xlink_component_domains(const struct conf *cf, char ***vp, size_t *np);

/* The XMPP-side names of the SIP-homed (sip_homed) or XMPP-homed rows of
 * domains.map, as xlink_component_domains. */
int xlink_domains(const struct conf *cf, bool sip_homed, char ***vp, size_t *np);

/* Free a string vector of n strings (NULL allowed). */
void xlink_strv_free(char **v, size_t n);

#endif

/*
 * stats - what the running bridge counts, for people (presbridgectl status) and
 * for Prometheus (/metrics, the text exposition format).
 *
 * Counters are fixed arrays indexed by bounded enumerations (SIP methods, status
 * codes 100-699, stanza kinds, RFC 6120 conditions, TLS alert numbers, c-ares
 * status codes), so a peer cannot grow them: anything unknown is "other". An
 * increment is an array add on the event loop's thread; nothing locks.
 *
 * The link registry holds each thing federation rests on (an XEP-0114 component
 * link, a server-to-server peer domain, a SIP peer): up or down, since when, how
 * many failures, and the last failure's cause in the log's words.
 */
#ifndef PRESBRIDGE_STATS_H
#define PRESBRIDGE_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sbuf;

enum stats_dir { STATS_IN, STATS_OUT };

enum stats_kind { STATS_MESSAGE, STATS_PRESENCE, STATS_IQ, STATS_KIND_OTHER };

enum stats_fail {
	STATS_FAIL_XMPP,    /* an XMPP stanza error received: its condition name */
	STATS_FAIL_STREAM,  /* an XMPP stream error received: its condition name */
	STATS_FAIL_TLS,     /* a TLS alert sent or received: its name */
	STATS_FAIL_DNS,     /* a DNS lookup that failed: the resolver's status name */
	STATS_FAIL_CONNECT, /* a TCP connect that failed: the errno name */
	STATS_FAIL_COUNT
};

enum stats_hist { STATS_H_STORE_WRITE, STATS_H_LOOP_LAG, STATS_H_COUNT };

enum stats_link_kind { STATS_LINK_COMPONENT, STATS_LINK_S2S, STATS_LINK_SIP_PEER };

/* A SIP request sent or received (method as on the wire; unknown: other). */
void stats_sip_request(enum stats_dir dir, const char *method, size_t len);
/* A SIP response sent or received (codes >= 300 received are the SIP side's
 * refusals: the failures by SIP status). */
void stats_sip_response(enum stats_dir dir, int code);
/* A stanza sent to or received from the XMPP side, by its element name. */
void stats_stanza(enum stats_dir dir, const char *name);
/* A failure of kind k. cause comes from a bounded set (condition, alert, status or
 * errno names; copied): past STATS_CAUSES_MAX distinct causes a kind counts
 * "other". */
#define STATS_CAUSES_MAX 64
void stats_fail(enum stats_fail k, const char *cause);
/* One observation of a histogram, in seconds. */
void stats_observe(enum stats_hist h, double seconds);

/* Register or update a link: up or down; cause (may be NULL) is the failure's
 * words when going or staying down. A new name starts down. */
void stats_link(enum stats_link_kind k, const char *name, bool up, const char *cause);
/* Register a link as down unless it is known already (nothing changes then). */
void stats_link_register(enum stats_link_kind k, const char *name);
/* Forget a link (left the configuration). */
void stats_link_forget(enum stats_link_kind k, const char *name);

struct stats_link_info {
	enum stats_link_kind kind;
	const char *name; /* borrowed until the registry changes */
	bool up;
	int64_t since;     /* unix seconds of the last change (or registration) */
	uint64_t failures; /* down transitions and failed attempts */
	const char *cause; /* last failure's words, "" if none */
	int64_t cause_at;  /* unix seconds of it, 0 if none */
};
/* Links in registration order: i-th, or -ENOENT past the end. */
int stats_link_at(size_t i, struct stats_link_info *out);
/* The link of kind k named name; -ENOENT if unknown. */
int stats_link_get(enum stats_link_kind k, const char *name, struct stats_link_info *out);
const char *stats_link_kind_name(enum stats_link_kind k);

/* Unix seconds the process started counting (stats_reset or first use). */
int64_t stats_started(void);
/* Zero everything (tests; the daemon at start). */
void stats_reset(void);

/* Append the counters, histograms and link gauges in the Prometheus text format
 * (version 0.0.4): # HELP, # TYPE, then samples. */
void stats_prometheus(struct sbuf *sb);

#endif

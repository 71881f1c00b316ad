/*
 * xdns - where to reach the XMPP server of a domain (server-to-server), found
 * without blocking the loop: c-ares on the loop's descriptors and timers.
 *
 * The process (RFC 6120 section 3.2, XEP-0368):
 *   - ask _xmpps-server._tcp.DOMAIN (direct TLS, XEP-0368 section 3) and
 *     _xmpp-server._tcp.DOMAIN (STARTTLS, RFC 6120 section 3.2.1) at once;
 *   - both record sets are one set for the RFC 2782 order: lower priority first,
 *     weighted random within a priority, priorities and weights of the two mixed
 *     (XEP-0368 section 3, rule 1);
 *   - each SRV target's A and AAAA records give the addresses: targets in that
 *     order, a target's addresses in c-ares's order (RFC 6724 sorting), the same
 *     address, port and TLS mode only once;
 *   - a single _xmpp-server record with target "." means the domain offers no
 *     server-to-server service: -EHOSTUNREACH (RFC 6120 section 3.2.1 step 3);
 *     a "." for _xmpps-server only means "no direct TLS" (XEP-0368 section 5);
 *   - neither name has records (NXDOMAIN or NODATA): the domain's own A/AAAA on
 *     port 5269 (RFC 6120 section 3.2.2), unless _xmpps-server said "." (XEP-0368
 *     section 5 forbids the fallback then);
 *   - a resolver failure (timeout, SERVFAIL, refused) is reported, not taken for
 *     "no records": falling back then could reach a host the domain's SRV records
 *     do not name (RFC 6120 section 3.2.1 step 8).
 *
 * The rules are pure functions (xdns_srv_merge, xdns_srv_order), unit-tested
 * without DNS; the resolver only gathers answers and applies them.
 */
#ifndef PRESBRIDGE_XDNS_H
#define PRESBRIDGE_XDNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

/* The "xmpp-server" port, used when the domain has no SRV records (RFC 6120
 * section 3.2.2). */
#define XDNS_PORT_FALLBACK 5269
/* Default bound on one xdns_resolve, SRV and address lookups together. */
#define XDNS_TIMEOUT_MS 10000
/* SRV records kept per name; more are ignored (and said so in why). */
#define XDNS_SRV_MAX 32

struct xdns;       /* a resolver on the loop (one c-ares channel) */
struct xdns_query; /* one lookup in flight */

/* One place to try, in order. */
struct xdns_target {
	char *host;    /* SRV target, or the domain (fallback); owned by the result */
	char addr[46]; /* numeric IPv4 or IPv6 address */
	int family;    /* AF_INET / AF_INET6 */
	uint16_t port;
	bool direct_tls; /* from _xmpps-server (XEP-0368): TLS from the first byte */
	bool from_srv;   /* false for the A/AAAA fallback on 5269 */
};

struct xdns_result {
	/* 0: targets found (n > 0); -ENOENT: no such domain, no address, or
	 * nothing to try; -EHOSTUNREACH: SRV target "." (the domain offers no XMPP
	 * server service, RFC 6120 section 3.2.1 step 3 / RFC 2782); -ETIMEDOUT: no
	 * answer in time; -EIO: other DNS failure; -ENOMEM */
	int status;
	char why[256]; /* plain words for logs and --probe: what was asked and answered */
	struct xdns_target *v;
	size_t n;
	/* The SRV records seen, in the order received, one per line:
	 * "_xmpps-server._tcp PRIO WEIGHT PORT TARGET" ("." for the root target) */
	char srv_text[1024];
};

/* r is borrowed for the call; xdns_result_dup keeps a copy. */
typedef void(xdns_done_h)(const struct xdns_result *r, void *arg);

/* Create a resolver on l. servers: NULL uses the system's resolv.conf (and
 * /etc/hosts for addresses); "IP:PORT[,IP:PORT]" (IPv6 as [IP]:PORT) asks only
 * those servers, DNS only (tests, an [s2s] dns key). Names are always taken as
 * fully qualified: no search domains. l borrowed (must outlive the resolver).
 * *dp caller-owns (xdns_free). Returns 0, -EINVAL (bad servers), -ENOMEM or -EIO. */
int xdns_new(struct xdns **dp, struct loop *l, const char *servers);

/* Cancel every query (no callback after this) and free d. NULL allowed. Not from
 * inside a c-ares callback (xdns never calls out from one). */
void xdns_free(struct xdns *d);

/* Bound on each later xdns_resolve (default XDNS_TIMEOUT_MS); 0 restores it. */
void xdns_set_timeout(struct xdns *d, uint64_t ms);

/* Resolve where to reach the XMPP server of domain (RFC 6120 section 3.2 and
 * XEP-0368; see the top of this file). want_direct_tls false: _xmpps-server is
 * not asked. done is called exactly once, from the loop (never inside
 * xdns_resolve), unless the query is cancelled first. domain borrowed (copied);
 * a trailing dot is ignored; an IPv4 or IPv6 literal is no FQDN: it gives the
 * fallback target without DNS. *qp (qp may be NULL) is borrowed by the caller for
 * xdns_cancel until done is called; it is invalid once done returns.
 * Returns 0, -EINVAL (not a domain name) or -ENOMEM. */
int xdns_resolve(struct xdns *d, const char *domain, bool want_direct_tls,
                 xdns_done_h *done, void *arg, struct xdns_query **qp);

/* A/AAAA of a configured host on a configured port, without SRV (RFC 6120
 * section 3.2.3: a configured FQDN replaces the SRV process). Targets have
 * from_srv false and direct_tls as given; an IP literal needs no DNS. Otherwise
 * as xdns_resolve. Returns 0, -EINVAL (not a name, port 0) or -ENOMEM. */
int xdns_resolve_host(struct xdns *d, const char *host, uint16_t port, bool direct_tls,
                      xdns_done_h *done, void *arg, struct xdns_query **qp);

/* Stop q: no callback after it. NULL allowed; a no-op from inside q's own done. */
void xdns_cancel(struct xdns_query *q);

/* Deep copy of r. *dst caller-owns (xdns_result_free). Returns 0 or -ENOMEM. */
int xdns_result_dup(struct xdns_result **dst, const struct xdns_result *src);
void xdns_result_free(struct xdns_result *r);

/* -------------------------------------------------------------- pure rules */

/* One SRV record. target borrowed (from the parsed answer); "" or "." is the
 * root ("no service"). */
struct xdns_srv {
	char *target;
	uint16_t port, priority, weight;
	bool direct_tls;
};

/* Order v[0..n) in place by RFC 2782 ("Usage rules" and the Weight field of "The
 * format of the SRV RR"): lower priority first; within a priority, repeatedly
 * put the weight-0 records first, take r = rnd(arg) mod (sum of weights + 1) and
 * select the first record whose running weight sum is >= r. A weight-0 record is
 * thus chosen only when r is 0: the "very small chance" RFC 2782 gives it. */
void xdns_srv_order(struct xdns_srv *v, size_t n, uint32_t (*rnd)(void *arg), void *arg);

/* What one SRV query gave. */
struct xdns_srv_answer {
	bool asked; /* false: not queried (counts as no records) */
	int status; /* 0: v[0..n) received; -ENOENT: NXDOMAIN or NODATA; else the
	               failure (-ETIMEDOUT, -EIO, -ENOMEM) */
	const struct xdns_srv *v;
	size_t n;
};

enum xdns_plan {
	XDNS_PLAN_SRV,      /* try the records copied to out (then xdns_srv_order them) */
	XDNS_PLAN_FALLBACK, /* A/AAAA of the domain itself on XDNS_PORT_FALLBACK */
	XDNS_PLAN_FAIL,     /* nothing to try: *status says why */
};

/* Decide from both answers what to try (XEP-0368 sections 3 and 5, RFC 6120
 * section 3.2.1 step 3 and 3.2.2). On XDNS_PLAN_SRV, out (room for xmpps->n +
 * xmpp->n) gets the records other than ".", direct_tls set from their set, and
 * *nout their count; targets stay borrowed from the answers. On XDNS_PLAN_FAIL
 * *status is -EHOSTUNREACH, -ENOENT or the failure of a query. */
enum xdns_plan xdns_srv_merge(const struct xdns_srv_answer *xmpps,
                              const struct xdns_srv_answer *xmpp, struct xdns_srv *out,
                              size_t *nout, int *status);

/* A target of "" or "." (the root: "service decidedly not available"). */
bool xdns_srv_is_root(const char *target);

#endif

/*
 * sip - the SIP leg: listeners and connections (UDP, TCP, TLS with mutual
 * authentication), transactions, dialogs, peer trust and routing, driven by the
 * daemon's event loop.
 *
 * What arrives:
 *   - every message is framed (sipt.h), parsed (sipm.h) and checked; a request
 *     that cannot be served gets its answer here, with a reason phrase and an
 *     ms-diagnostics header: 400 malformed, 403 not from a configured trusted
 *     peer, 404 for a domain that is not XMPP-homed in domains.map, 405/501 for
 *     methods the bridge does not take, 481 for a dialog it does not know, 513
 *     too large. The bridge never challenges (no 401/407).
 *   - OPTIONS is answered here (200 with Allow, Accept, Supported).
 *   - a retransmitted request is absorbed by its transaction (the last response
 *     is sent again), so the bridge sees each request once.
 *   - everything else goes to sipleg_handlers.request.
 * What leaves: sipleg_request() routes a request by the domain of its
 * Request-URI to the [peer] whose `domains` lists it (the static route), over
 * a connection that peer already has with the bridge if there is one (a Lync
 * server sends on the connection it opened), else over a new one.
 *
 * Transactions are the leg's own (RFC 3261 section 17 with the RFC 6026 fixes),
 * on the loop's timers: libosip2's transaction layer polls every transaction
 * from its own clock and hands transports a bare socket number, which fits
 * neither one epoll loop nor TLS connections that come and go; libosip2's
 * parser is used for messages.
 */
#ifndef PRESBRIDGE_SIP_H
#define PRESBRIDGE_SIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "presbridge/sipm.h"

struct conf;
struct loop;

struct sipleg;     /* the leg */
struct sipleg_srv; /* a received request the bridge answers (server transaction) */
struct sipleg_clt; /* a request the bridge sent (client transaction) */
struct sipd;       /* a dialog: a subscription or an IM session */

struct sipleg_handlers {
	/*
	 * A request for the bridge: from a trusted peer, well formed, for an
	 * XMPP-homed domain (or inside a known dialog), seen for the first time.
	 * req is borrowed for the call. The bridge answers with sipleg_reply(),
	 * now or later; srv stays valid until the final response, or until gone().
	 * srv is NULL for a request that takes no response (Lync's BENOTIFY).
	 */
	void (*request)(struct sipleg_srv *srv, struct sipm *req, void *arg);
	/*
	 * srv can no longer be answered: the peer CANCELled it (the leg answered
	 * 487) or it waited longer than limits.answer_ms (the leg answered 500).
	 * May be NULL.
	 */
	void (*gone)(struct sipleg_srv *srv, void *arg);
};

/* Tunables; zero fields keep the defaults shown. */
struct sipleg_limits {
	unsigned handshake_ms; /* a TLS handshake must finish within (10000) */
	unsigned idle_ms;      /* a connection without traffic is closed after (600000) */
	unsigned answer_ms;    /* the bridge must answer a request within (30000) */
	size_t max_msg;        /* largest message accepted (SIPT_MAX_MSG) */
};

/*
 * Start the leg: open every [sip] listen address, load the TLS certificate and
 * trust anchors, resolve peer addresses. cf, l and h are borrowed: cf until the
 * next sipleg_reload(), l and h until sipleg_stop(). *lp: caller-owns
 * (sipleg_stop). Returns 0, or -errno with the cause logged (a listener that
 * cannot be opened, a certificate or key that cannot be loaded).
 */
int sipleg_start(struct sipleg **lp, struct loop *l, const struct conf *cf,
                 const struct sipleg_handlers *h, void *arg);

/* Close every connection and listener, end every transaction and dialog (no
 * callbacks), free the leg. NULL is a no-op. */
void sipleg_stop(struct sipleg *sl);

/*
 * Switch to a new configuration (SIGHUP): peers, domains, certificates and
 * listeners. Established connections, transactions and dialogs stay; each
 * connection's peer is looked up again by its certificate names or address.
 * On error nothing changes and the old cf stays in use. cf is borrowed as in
 * sipleg_start; the caller frees the old one only after a 0 return.
 */
int sipleg_reload(struct sipleg *sl, const struct conf *cf);

/* Change the tunables (lim borrowed for the call; zero fields leave a value as
 * it is). Running timers keep their old length. */
void sipleg_set_limits(struct sipleg *sl, const struct sipleg_limits *lim);

/* ---- answering --------------------------------------------------------- */

struct sipleg_reply {
	int code;
	const char *reason;          /* NULL: the standard phrase */
	const char *diagnostics;     /* errors: text of an ms-diagnostics header */
	const struct sipm_hdr *hdrs; /* extra headers; may be NULL */
	size_t nhdrs;
	const char *content_type; /* NULL: no body */
	const char *body;
	size_t body_len;
	/* A 2xx to an INVITE or SUBSCRIBE outside a dialog creates the dialog
	 * (returned through dlgp). Lync's ms-piggyback-first-notify: a body on the
	 * 200 to a SUBSCRIBE that asked for it is the first NOTIFY's content. */
	/* Called (if set) once the response is built and its dialog (if any, else
	 * NULL) exists, before a byte of it leaves: what the bridge must have on
	 * disk before the peer sees it acknowledged goes there. */
	void (*before_send)(struct sipd *dlg, void *arg);
	void *before_arg;
};

/*
 * Answer srv. A 1xx leaves srv open; a final response ends it for the bridge
 * (the leg keeps absorbing retransmissions). dlgp (may be NULL) receives the
 * dialog a 2xx created, or the one the request belonged to (borrowed, leg-owned).
 * Returns 0, -EALREADY if a final response was sent, -EINVAL, -ENOMEM.
 */
int sipleg_reply(struct sipleg_srv *srv, const struct sipleg_reply *r,
                 struct sipd **dlgp);

/* Answer srv with code, the standard phrase and, for errors, why (may be NULL)
 * in the reason phrase and ms-diagnostics. */
int sipleg_reply_code(struct sipleg_srv *srv, int code, const char *why);

/* The [peer] section name srv came from (borrowed, valid while srv is). */
const char *sipleg_srv_peer(const struct sipleg_srv *srv);
/* The dialog srv belongs to, NULL if none. */
struct sipd *sipleg_srv_dialog(const struct sipleg_srv *srv);
/* Did the request ask for ms-piggyback-first-notify (Supported)? */
bool sipleg_srv_piggyback(const struct sipleg_srv *srv);

/* ---- sending ------------------------------------------------------------- */

struct sipleg_req {
	const char *method;
	struct sipd *dialog; /* in a dialog: the rest of the addressing comes
	                        from it; NULL for a new request */
	const char *ruri;    /* new requests: "sip:bob@sip.test" */
	const char *from;    /* new requests: "<sip:alice@xmpp.test>" (tag added) */
	const char *to;      /* new requests: NULL means the R-URI */
	const char *peer;    /* new requests: a [peer] name, overriding routing
	                        by the R-URI's domain (OPTIONS pings); NULL */
	const struct sipm_hdr *hdrs;
	size_t nhdrs;
	const char *content_type;
	const char *body;
	size_t body_len;
	bool create_dialog;  /* SUBSCRIBE/INVITE: a 2xx creates a dialog */
	const char *call_id; /* new requests: the Call-ID (an RFC 3261 callid the
	                        caller checked); NULL: a random one */
	size_t max_len;      /* refuse with -EMSGSIZE a request larger than this
	                        many bytes once built (RFC 3428 section 8); 0: none */
};

/*
 * The outcome of a request: status is the final status code. resp is the
 * response (borrowed for the call), or NULL when the leg made the status up:
 * 408 no answer in time (64*T1), 503 the peer could not be reached (the log
 * says why). dlg: the dialog a 2xx created (create_dialog), else the request's
 * dialog, else NULL. An INVITE's 2xx is acknowledged by the leg.
 */
typedef void(sipleg_resp_h)(int status, struct sipm *resp, struct sipd *dlg, void *arg);

/*
 * Send a request. h (may be NULL) is called once with the final outcome, never
 * from inside this call. *cp (may be NULL) receives a handle for
 * sipleg_clt_abandon, valid until h runs. Returns 0, or:
 *   -ENOENT  no [peer] routes the R-URI's domain (answer the originator with
 *            err_bridge(ERR_BRIDGE_DOMAIN_UNMAPPED): 404 / item-not-found)
 *   -EINVAL  a missing or malformed field, an unknown peer name
 *   -EMSGSIZE the built request is over rq->max_len
 *   -ENOMEM
 */
int sipleg_request(struct sipleg *sl, const struct sipleg_req *rq, sipleg_resp_h *h,
                   void *arg, struct sipleg_clt **cp);

/* Forget c's callback (the request goes on; its outcome is only logged). */
void sipleg_clt_abandon(struct sipleg_clt *c);

/* ---- dialogs ------------------------------------------------------------- */

/* The dialog with these identifiers (RFC 3261 section 12), NULL if none. */
struct sipd *sipd_find(struct sipleg *sl, const char *call_id, const char *local_tag,
                       const char *remote_tag);
/* End d: it is forgotten at once (the bridge sends BYE or the final NOTIFY
 * first, with sipleg_request). */
void sipd_terminate(struct sipd *d);

/* The bridge's own pointer for d (NULL until set). */
void sipd_set_arg(struct sipd *d, void *arg);
void *sipd_arg(const struct sipd *d);

/* Borrowed identifiers, valid while d is. */
const char *sipd_call_id(const struct sipd *d);
const char *sipd_local_tag(const struct sipd *d);
const char *sipd_remote_tag(const struct sipd *d);
const char *sipd_local_uri(const struct sipd *d);  /* the bridge's side */
const char *sipd_remote_uri(const struct sipd *d); /* the peer's user */
const char *sipd_peer(const struct sipd *d);       /* [peer] section name */

/* The CSeq of the last request the bridge sent in d. */
uint32_t sipd_local_cseq(const struct sipd *d);
/* The peer's Contact: where in-dialog requests go (borrowed). */
const char *sipd_remote_target(const struct sipd *d);
/* The route set in use order, one value a line; "" if none. Caller-owns. */
char *sipd_route_set(const struct sipd *d);

/* A restored dialog's first request uses the saved CSeq plus this. */
#define SIPD_CSEQ_RESUME_GAP 1000u

/* What the bridge saves of a dialog to resume it after a restart. */
struct sipd_saved {
	const char *call_id;
	const char *local_tag;
	const char *remote_tag;
	const char *local_uri;     /* the bridge's side, "sip:bob@xmpp.test" */
	const char *remote_uri;    /* the peer's user */
	const char *remote_target; /* the peer's Contact */
	const char *route_set;     /* as sipd_route_set() wrote it; NULL or "" for none */
	uint32_t local_cseq;
	const char *peer; /* [peer] section name */
	bool invite;
};

/*
 * Recreate a dialog saved before a restart (s borrowed). Returns it (leg-owned),
 * or NULL if a field is missing, the dialog already exists, or memory ran out.
 * Nothing is sent: the bridge decides what the dialog's next request is.
 */
struct sipd *sipd_restore(struct sipleg *sl, const struct sipd_saved *s);

/* ---- test seam (fuzzing) ------------------------------------------------ */

/* Every byte the leg would write: on a stream connection (stream true) or as a
 * datagram. buf is borrowed for the call. */
typedef void(sipleg_tap_h)(bool stream, const char *buf, size_t len, void *arg);

/*
 * Send the leg's output to h instead of its sockets (h NULL: back to the
 * sockets). Only for harnesses such as fuzz/fuzz_sipbridge.c: the daemon never
 * sets a tap. Connecting to a stream peer still opens a socket, so harnesses
 * route to udp peers.
 */
void sipleg_set_tap(struct sipleg *sl, sipleg_tap_h *h, void *arg);

/*
 * Durability before acknowledgement (a store whose writes commit later, the
 * PostgreSQL one): while gate(arg) returns a non-zero write sequence number,
 * every message the leg would send (responses, requests, retransmissions) is
 * kept in order instead, tagged with that number; sipleg_release(sl, seq)
 * sends those whose number is <= seq, in order. NULL gate: none (SQLite).
 * sipleg_drop_held() forgets them unsent (a fenced node must not speak).
 */
typedef uint64_t(sipleg_gate_h)(void *arg);
void sipleg_set_gate(struct sipleg *sl, sipleg_gate_h *h, void *arg);
void sipleg_release(struct sipleg *sl, uint64_t durable);
size_t sipleg_drop_held(struct sipleg *sl);
/* Messages held now. */
size_t sipleg_held(const struct sipleg *sl);
/* Bytes waiting to leave: the fullest connection's output buffer plus every
 * held message. Bulk senders (the NOTIFYs after a restart or takeover) pace
 * themselves by it, below the connection's limit (SIPLEG_BACKLOG_MAX). */
size_t sipleg_backlog(const struct sipleg *sl);
#define SIPLEG_BACKLOG_MAX (4u * 1024 * 1024)

/*
 * Bytes from `ip` (an IP literal) as they would arrive from a socket, through
 * the same framing, checks, transactions and bridge handlers: stream true, on a
 * new inbound TCP connection, chunk bytes at a time (0: all at once), closed at
 * the end as by the peer; stream false, as one datagram on the first UDP
 * listener of ip's family. Needs a tap (sipleg_set_tap). buf is borrowed.
 * Returns 0, -EINVAL (no tap, ip not a literal, no UDP listener) or -ENOMEM.
 */
int sipleg_feed(struct sipleg *sl, bool stream, const char *ip, const char *buf,
                size_t len, size_t chunk);

/* Number of open dialogs and connections (for tests and status). */
size_t sipleg_dialog_count(const struct sipleg *sl);
size_t sipleg_conn_count(const struct sipleg *sl);
/* Open connections attributed to [peer name]. */
size_t sipleg_peer_conn_count(const struct sipleg *sl, const char *peer);

/* len - 1 random lower-case hex characters and a NUL into out (RAND_bytes):
 * branches, tags, Call-IDs. */
void sip_random_token(char *out, size_t len);

/* What to do when a peer answers the bridge with 401/407, in the words both the
 * leg's log and --probe use. */
extern const char *const sip_challenge_help;

#endif

/*
 * bridge_int - what the bridge's parts share: the bridge object, addressing and
 * error helpers (bridge.c), and the handlers of its two halves:
 *   bridge_pres.c  subscriptions and presence (RFC 8048), both directions;
 *   bridge_im.c    instant messages (RFC 7572), page and session mode, typing.
 */
#ifndef PRESBRIDGE_BRIDGE_INT_H
#define PRESBRIDGE_BRIDGE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <strophe.h>

#include "presbridge/addr.h"
#include "presbridge/bridge.h"
#include "presbridge/conf.h"
#include "presbridge/err.h"
#include "presbridge/loop.h"
#include "presbridge/msg.h"
#include "presbridge/sip.h"
#include "presbridge/state.h"
#include "presbridge/store.h"
#include "presbridge/sub.h"
#include "presbridge/xlink.h"

#define BR_MOD "bridge"

/* An IM session's local CSeq restored by another node is raised by this much
 * for its BYE (issue 18): a MESSAGE the dead node sent but had not saved keeps
 * its number below ours (RFC 3261 section 12.2.2: only a lower CSeq is
 * refused). Subscriptions need no step: their saved CSeq is a ceiling
 * (state.h, STATE_CSEQ_HEADROOM). */
#define BR_TAKEOVER_CSEQ_STEP 100

struct bi_tab;

struct bridge {
	const struct conf *cf; /* borrowed; replaced on reload */
	struct loop *loop;
	struct sipleg *sip;
	struct xlink_set *xmpp;
	struct store *store;
	struct state *state;
	struct sub_limits sublim;
	struct msg_limits msglim;
	unsigned im_idle_ms; /* an IM session without traffic ends with BYE after this;
	                      * 0: never */
	struct bi_tab *im;   /* the IM half's run-time data (bridge_im.c) */
	/* Refused subscriptions are logged at most once per BR_REFUSE_LOG_S
	 * per cause ([0] the watcher's limit, [1] the bridge's), so a flood does
	 * not become a log flood. */
	int64_t refuse_logged_at[2];
	unsigned refuse_quiet[2]; /* refused since that line, not logged */
	/* SIP watchers resumed at start-up, NOTIFYed a batch at a time
	 * (bridge_pres.c, bp_restore): entries are bp_rt, NULL once released. */
	void **renotify;
	size_t nrenotify, renotify_next;
	struct loop_timer renotify_t;
	bool stopping;
	/* Pool (issue 18): the store is the daemon's, shared across the bridges
	 * one node runs (own_store false); takeover: the rows were served by
	 * another node until now (bridge_start_on). */
	bool own_store;
	bool takeover;
	/* XMPP output held until the writes it acknowledges are durable
	 * (br_xmpp_send, bridge_durable): a FIFO of stanza copies. */
	struct br_held *xheld, *xheld_tail;
	size_t nxheld;
	void (*done)(void *arg);
	void *done_arg;
	struct loop_timer stop_timer;
};

/* Wall-clock milliseconds: what is persisted (expiry, refresh) must mean the
 * same after a restart, which the loop's monotonic clock does not. */
int64_t br_now(void);

/* ---- XMPP ---- */

/* A new stanza (caller releases) with the attributes that are non-NULL. */
xmpp_stanza_t *br_stanza(struct bridge *b, const char *name, const char *type,
                         const char *from, const char *to);
/* Add <name>text</name> (ns may be NULL) to st. */
void br_stanza_text(struct bridge *b, xmpp_stanza_t *st, const char *name, const char *ns,
                    const char *text);
/* Send st (borrowed) and log a failure in plain words. With a store whose
 * writes commit later (PostgreSQL) a copy is held until they are durable. */
int br_xmpp_send(struct bridge *b, xmpp_stanza_t *st);
/* Send an error stanza of kind `name` from `from` to `to` (about a stanza with
 * id, may be NULL), with the condition of RFC 6120 and a text. */
void br_xmpp_error(struct bridge *b, const char *name, const char *from, const char *to,
                   const char *id, enum err_cond cond, const char *text);
/* The same with character data in the condition element (NULL: none), as <gone/>
 * and <redirect/> carry an address (RFC 6120 sections 8.3.3.5 and 8.3.3.14). */
void br_xmpp_error_data(struct bridge *b, const char *name, const char *from,
                        const char *to, const char *id, enum err_cond cond,
                        const char *data, const char *text);

/* ---- SIP ---- */

/* Answer srv with the bridge's refusal `why` (err_bridge row); detail (may be
 * NULL) goes to the reason phrase and ms-diagnostics. */
void br_sip_refuse(struct bridge *b, struct sipleg_srv *srv, enum err_bridge why,
                   const char *detail);
/* Is the XMPP side of a SIP user of sip_domain reachable? If not, srv is answered
 * the xmpp-down refusal (err_bridge row) with Retry-After and false returned. */
bool br_xmpp_ready(struct bridge *b, struct sipleg_srv *srv, const char *sip_uri);

/* ---- addresses ---- */

/* addr_sip_to_jid / addr_jid_to_sip over the configured maps (results caller-owns). */
int br_uri_to_jid(struct bridge *b, const char *uri, char **jidp, enum addr_home *homep);
int br_jid_to_uri(struct bridge *b, const char *jid, char **urip, char **resourcep,
                  enum addr_home *homep);
/* addr_sip_to_full_jid / addr_jid_to_gruu: as above, keeping the device (a GRUU's
 * gr <-> a resourcepart, RFC 7247 section 6.3); results caller-owns. */
int br_uri_to_full_jid(struct bridge *b, const char *uri, char **jidp,
                       enum addr_home *homep);
int br_jid_to_gruu(struct bridge *b, const char *jid, char **urip, enum addr_home *homep);
/* The refusal for an address error: unmapped domain or malformed address. */
enum err_bridge br_addr_refusal(int err);
/* "<sip:...>" for From/To headers (caller-owns). */
char *br_name_addr(const char *uri);

/* ---- the halves ---- */

void bp_sip_subscribe(struct bridge *b, struct sipleg_srv *srv, struct sipm *req);
void bp_sip_notify(struct bridge *b, struct sipleg_srv *srv, struct sipm *req);
/* While stopping: answer 200 to a NOTIFY terminated (the final NOTIFY of an
 * unsubscribe the stop sent, RFC 6665 4.1.2.3) and return true; false for any
 * other request. */
bool bp_sip_final_notify(struct bridge *b, struct sipleg_srv *srv, struct sipm *req);
int bp_xmpp_presence(struct bridge *b, xmpp_stanza_t *st, struct xlink_refusal *r);
void bp_link_state(struct bridge *b, const char *domain, bool up);
void bp_restore(struct bridge *b);
/* Tell every watcher the bridge is going; returns the number of requests sent. */
void bp_shutdown(struct bridge *b);
void bp_free(struct bridge *b);

void bi_sip_message(struct bridge *b, struct sipleg_srv *srv, struct sipm *req);
void bi_sip_invite(struct bridge *b, struct sipleg_srv *srv, struct sipm *req);
void bi_sip_bye(struct bridge *b, struct sipleg_srv *srv, struct sipm *req);
void bi_sip_info(struct bridge *b, struct sipleg_srv *srv, struct sipm *req);
int bi_xmpp_message(struct bridge *b, xmpp_stanza_t *st, struct xlink_refusal *r);
void bi_restore(struct bridge *b);
void bi_shutdown(struct bridge *b);
void bi_free(struct bridge *b);

#endif

/*
 * bridge - joins the SIP leg and the XMPP leg: subscriptions, presence and
 * instant messages crossing in both directions, over the persisted state table.
 *
 * Every rule a user might question is in src/core (address, presence, message
 * and error translation, the subscription state machine) or in mappings/; this
 * module only moves values between the legs, the core and the state table.
 */
#ifndef PRESBRIDGE_BRIDGE_H
#define PRESBRIDGE_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bridge;
struct conf;
struct loop;

/*
 * Open the state store at cf->state, load the state table, start both legs and
 * restore what the table holds. cf and l are borrowed (cf until the next
 * bridge_reload). *bp: caller-owns (bridge_free). Returns 0, or -errno with the
 * cause logged.
 */
int bridge_new(struct bridge **bp, struct loop *l, const struct conf *cf);

/*
 * The same on a store the caller opened and keeps (the PostgreSQL store of a
 * pool node, which outlives the bridges the node runs). takeover: the rows were
 * served by another node until now; each restored SIP dialog's local CSeq is
 * above every CSeq sent (state.h, STATE_CSEQ_HEADROOM) and IM sessions are ended
 * with BYE, their CSeq raised by BR_TAKEOVER_CSEQ_STEP (a
 * subscription's NOTIFY or SUBSCRIBE refresh carries this node's Contact, RFC
 * 6665 sections 3.1 and 3.2, as after a restart).
 */
struct store;
int bridge_start_on(struct bridge **bp, struct loop *l, const struct conf *cf,
                    struct store *st, bool takeover);

/* Writes up to seq are durable: send the output that waited for them. */
void bridge_durable(struct bridge *b, uint64_t seq);

/* Fencing: free the bridge without a word to either side (held output dropped,
 * no NOTIFY, no BYE, no unavailable); the store stays the caller's. */
void bridge_abandon(struct bridge *b);

/* Apply a reloaded configuration (SIGHUP) without dropping sessions. On error
 * the old one stays in use and the caller keeps it. */
int bridge_reload(struct bridge *b, const struct conf *cf);

/*
 * Stop gracefully: NOTIFY terminated to SIP watchers, unavailable presence to
 * XMPP subscribers, XMPP streams closed, state saved; then done(arg) from the
 * loop. A second call stops at once.
 */
void bridge_stop(struct bridge *b, void (*done)(void *arg), void *arg);

/* One line for people (systemd STATUS=): links up, SIP connections, counts. */
void bridge_summary(const struct bridge *b, char *buf, size_t len);

/* ---- for operators (bridge_ctl.c): presbridgectl and /metrics ---- */
struct sbuf;
/* Append the status: version, uptime, each link and peer (up/down since when,
 * last failure), counts. For people, or one JSON object. */
void bridge_ctl_status(struct bridge *b, struct sbuf *sb, bool json);
/* Append every link and peer of the link registry (stats.h). */
void bridge_ctl_peers(struct bridge *b, struct sbuf *sb, bool json);
/* Append the subscriptions of filter (a user with or without sip:, or a domain;
 * NULL: all). Returns how many. */
size_t bridge_ctl_subscriptions(struct bridge *b, const char *filter, struct sbuf *sb,
                                bool json);
/* Append the IM sessions. Returns how many. */
size_t bridge_ctl_sessions(struct bridge *b, struct sbuf *sb, bool json);
/* Append the Prometheus exposition: stats.h's counters and the bridge's gauges. */
void bridge_metrics(struct bridge *b, struct sbuf *sb);

void bridge_free(struct bridge *b);

#endif

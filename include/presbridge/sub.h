/*
 * sub - the state machine of one bridged presence subscription.
 *
 * A bridged subscription is one (watcher, presentity) pair that crosses the bridge in
 * one direction:
 *
 *   SUB_DIR_SIP_WATCHER   a SIP (Lync) user watches an XMPP user. The bridge is the
 *                         SIP notifier (RFC 6665) and, on the watcher's behalf, the
 *                         XMPP user's server that holds a roster subscription to the
 *                         XMPP user's presence (RFC 6121 section 3).
 *   SUB_DIR_XMPP_WATCHER  an XMPP user watches a SIP user. The bridge answers the
 *                         XMPP subscription as the contact's server and is the SIP
 *                         subscriber toward the Lync peer, refreshing the SIP
 *                         subscription for as long as the roster subscription stands.
 *
 * A pair watched both ways is two entries. Everything here is pure: no I/O, no clock,
 * no allocation. The caller feeds one event with the time and the values it read from
 * the wire, gets the next state and a set of actions, and performs the actions.
 *
 * State: one combined phase per entry, not an (XMPP side, SIP side) pair. Of the
 * 4 x 5 side combinations per direction only five or six are reachable; a combined
 * enum makes the others unrepresentable, lets the table be checked for totality
 * (every phase x event of a direction has a row or the documented default), and is
 * what the store persists. Each phase's comment names its two sides.
 */
#ifndef PRESBRIDGE_SUB_H
#define PRESBRIDGE_SUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sub_dir {
	SUB_DIR_SIP_WATCHER,
	SUB_DIR_XMPP_WATCHER,
	SUB_DIR_COUNT,
};

/*
 * Phases. SUB_IDLE belongs to both directions and means "no entry": feed it for a
 * pair (or a SIP dialog) the bridge has nothing stored for. The others belong to one
 * direction. The store persists phases by name (sub_phase_name/sub_phase_parse).
 */
enum sub_phase {
	SUB_IDLE,
	/* SIP watcher -> XMPP presentity; "dialog" is the watcher's SUBSCRIBE dialog.
	 *                           SIP side                   XMPP side            */
	SUB_SW_PENDING,         /* dialog up, NOTIFY pending | subscribe sent       */
	SUB_SW_ACTIVE,          /* dialog up, NOTIFY active  | subscribed           */
	SUB_SW_DORMANT,         /* no dialog (signed out)    | subscribed           */
	SUB_SW_DORMANT_PENDING, /* no dialog (signed out)    | subscribe sent       */
	/* XMPP watcher -> SIP presentity; "pending in": the XMPP request unanswered.
	 *                       SIP side                       XMPP side            */
	SUB_XW_ASKING,      /* SUBSCRIBE sent, no NOTIFY yet | pending in           */
	SUB_XW_PENDING,     /* notifier holds it pending     | pending in           */
	SUB_XW_ASK_BACKOFF, /* no dialog, retry timer set    | pending in           */
	SUB_XW_ACTIVE,      /* active                        | subscribed sent      */
	SUB_XW_RECOVERING,  /* SUBSCRIBE again, or pending   | subscribed sent      */
	SUB_XW_BACKOFF,     /* no dialog, retry timer set    | subscribed sent      */
	SUB_XW_ENDING,      /* Expires: 0 sent, dialog kept  | unsubscribe received */
	                    /* until the final NOTIFY (RFC 6665 4.1.2.3)          */
	SUB_PHASE_COUNT,
};

/* The persistent state of one entry. Zero-initialised = SUB_IDLE with no retries. */
struct sub_state {
	enum sub_dir dir;
	enum sub_phase phase;
	uint32_t retries; /* consecutive failed SIP attempts; sets the back-off */
};

/*
 * Events. Each applies to one direction or both (sub_event_applies); feeding an event
 * to the other direction is a caller bug and sub_transition() refuses it. Events
 * marked "request" are SIP requests: every phase has a row for them, and the row
 * answers them (SUB_ACT_SIP_RESPONSE). Classify wire input with
 * sub_subscribe_event(), sub_response_event() and sub_notify_event().
 */
enum sub_event {
	/* SIP watcher: requests from the watcher */
	SUB_EV_SIP_SUBSCRIBE,     /* request: new dialog, Expires >= min_expires */
	SUB_EV_SIP_FETCH,         /* request: new dialog, Expires: 0 (a poll) */
	SUB_EV_SIP_TOO_BRIEF,     /* request: 0 < Expires < min_expires */
	SUB_EV_SIP_REFRESH,       /* request: in-dialog, Expires >= min_expires */
	SUB_EV_SIP_SIGNOUT,       /* request: in-dialog Expires: 0, watcher signing out */
	SUB_EV_SIP_UNSUBSCRIBE,   /* request: in-dialog Expires: 0, contact removed */
	SUB_EV_TIMER_EXPIRY,      /* the watcher's dialog expired unrefreshed */
	SUB_EV_XMPP_SUBSCRIBED,   /* the XMPP user approved */
	SUB_EV_XMPP_UNSUBSCRIBED, /* the XMPP user denied or revoked */
	/* XMPP watcher: answers and requests from the SIP notifier */
	SUB_EV_SIP_2XX,            /* 2xx to our SUBSCRIBE granting > 0 s */
	SUB_EV_SIP_2XX_ENDED,      /* 2xx granting 0 s: the answer to an unsubscribe */
	SUB_EV_SIP_ERR_GONE,       /* 408, 481: the dialog or the transaction is gone */
	SUB_EV_SIP_ERR_REJECT,     /* 403, 404, 489, 6xx...: the peer refuses for good */
	SUB_EV_SIP_ERR_RETRY,      /* 503, 500, 3xx, 401...: try again later */
	SUB_EV_SIP_ERR_INTERVAL,   /* 423 with a usable Min-Expires */
	SUB_EV_SIP_NOTIFY_ACTIVE,  /* request */
	SUB_EV_SIP_NOTIFY_PENDING, /* request (also unknown substates) */
	SUB_EV_SIP_NOTIFY_END_RETRY, /* request: terminated, re-subscribe now */
	SUB_EV_SIP_NOTIFY_END_LATER, /* request: terminated, re-subscribe after a wait */
	SUB_EV_SIP_NOTIFY_END_FINAL, /* request: terminated, do not re-subscribe */
	SUB_EV_TIMER_REFRESH,    /* refresh due (scheduled by SUB_ACT_SCHEDULE_REFRESH) */
	SUB_EV_TIMER_RETRY,      /* retry due (scheduled by SUB_ACT_SCHEDULE_RETRY) */
	SUB_EV_XMPP_SUBSCRIBE,   /* the XMPP user asks to see the SIP user */
	SUB_EV_XMPP_UNSUBSCRIBE, /* the XMPP user stops watching */
	SUB_EV_XMPP_PROBE,       /* the XMPP user's server asks for current presence */
	/* both directions */
	SUB_EV_XMPP_LINK_DOWN, /* the component link to the XMPP server dropped */
	SUB_EV_XMPP_LINK_UP,   /* ... and is back: re-announce what may have been lost */
	SUB_EV_RESTORE,        /* start-up: the entry was read back from the store */
	SUB_EV_SHUTDOWN,       /* graceful stop */
	SUB_EV_COUNT,
};

/*
 * Actions, as bits. Perform them in ascending bit order: the order is the protocol's
 * (a SUBSCRIBE is answered before its NOTIFY, RFC 6665 section 4.2.1.2; `subscribed`
 * goes before the presence it unlocks, RFC 6121 section 3.1.5; `unsubscribed` before
 * `unavailable`, RFC 6121 section 3.2.2; the store is written last).
 * An entry has at most one timer: a SCHEDULE_* action replaces it.
 */
enum sub_action {
	SUB_ACT_CANCEL_TIMER = 1u << 0,
	/* Answer the request with sub_result.sip_status; a 200 carries
	 * sub_result.expires as Expires, a 423 as Min-Expires. */
	SUB_ACT_SIP_RESPONSE = 1u << 1,
	/* Send sub_result.notify with sub_result.body. */
	SUB_ACT_SIP_NOTIFY = 1u << 2,
	/* SUBSCRIBE in a new dialog (forget any old one), Expires: sub_result.expires. */
	SUB_ACT_SIP_SUBSCRIBE = 1u << 3,
	/* SUBSCRIBE in the current dialog, Expires: sub_result.expires. */
	SUB_ACT_SIP_REFRESH = 1u << 4,
	/* Send the SUBSCRIBE that got a 423 again as it was (in its dialog or not),
	 * with Expires: sub_result.expires (RFC 3261 21.4.17). */
	SUB_ACT_SIP_RESEND = 1u << 5,
	/* SUBSCRIBE Expires: 0 in the current dialog. If the dialog is not up yet there
	 * is nothing to send: its late 2xx reaches SUB_IDLE, whose row unsubscribes. */
	SUB_ACT_SIP_UNSUBSCRIBE = 1u << 6,
	SUB_ACT_XMPP_SUBSCRIBE = 1u << 7,
	SUB_ACT_XMPP_UNSUBSCRIBE = 1u << 8,
	SUB_ACT_XMPP_SUBSCRIBED = 1u << 9,
	SUB_ACT_XMPP_UNSUBSCRIBED = 1u << 10,
	SUB_ACT_XMPP_PROBE = 1u << 11,
	/* The presentity's current (cached) presence. */
	SUB_ACT_XMPP_PRESENCE = 1u << 12,
	/* <presence type='unavailable'/>. */
	SUB_ACT_XMPP_UNAVAILABLE = 1u << 13,
	/* Timers: at sub_result.timer_at, feed SUB_EV_TIMER_EXPIRY, _REFRESH, _RETRY.
	 * A refresh timer set on entering SUB_XW_ENDING is the end of the wait for
	 * the final NOTIFY (SUB_ENDING_WAIT). */
	SUB_ACT_SCHEDULE_EXPIRY = 1u << 14,
	SUB_ACT_SCHEDULE_REFRESH = 1u << 15,
	SUB_ACT_SCHEDULE_RETRY = 1u << 16,
	/* Store sub_result.next. */
	SUB_ACT_PERSIST = 1u << 17,
	/* Delete the entry from memory and from the store. */
	SUB_ACT_DROP = 1u << 18,
};
#define SUB_ACT_ALL ((1u << 19) - 1)

/* What a NOTIFY carries. */
enum sub_body {
	SUB_BODY_NONE,    /* no presence document: not authorized (yet) */
	SUB_BODY_CURRENT, /* the presentity's current (cached) presence */
	SUB_BODY_CLOSED,  /* closed/offline: the bridge cannot see the presentity */
};

/* Subscription-State values (RFC 6665 section 8.2.3 grammar). */
enum sub_ss {
	SUB_SS_NONE, /* no header / not set */
	SUB_SS_ACTIVE,
	SUB_SS_PENDING,
	SUB_SS_TERMINATED,
	SUB_SS_OTHER, /* an extension substate */
	SUB_SS_COUNT,
};

/* Subscription-State reason values (RFC 6665 section 4.1.3). */
enum sub_reason {
	SUB_REASON_NONE, /* no reason parameter */
	SUB_REASON_DEACTIVATED,
	SUB_REASON_PROBATION,
	SUB_REASON_REJECTED,
	SUB_REASON_TIMEOUT,
	SUB_REASON_GIVEUP,
	SUB_REASON_NORESOURCE,
	SUB_REASON_INVARIANT,
	SUB_REASON_OTHER, /* an extension reason */
	SUB_REASON_COUNT,
};

/* A parsed (or to-be-formatted) Subscription-State header value. */
struct sub_substate {
	enum sub_ss state;
	enum sub_reason reason;
	uint32_t expires;     /* meaningful when has_expires */
	uint32_t retry_after; /* meaningful when has_retry_after */
	bool has_expires;
	bool has_retry_after;
};

/* Longest Subscription-State value sub_substate_parse() reads. */
#define SUB_SUBSTATE_MAX 512

/* A Retry-After longer than this (one day) is cut to it. */
#define SUB_RETRY_AFTER_MAX 86400u

/* Seconds SUB_XW_ENDING waits for the notifier's final NOTIFY after the bridge's
 * Expires: 0 (RFC 6665 4.1.2.3 says one follows, not when): 64*T1, the time a
 * SIP transaction may take (RFC 3261 17.1.2.2), then the dialog is forgotten. */
#define SUB_ENDING_WAIT 32u

/* Expires the bridge assumes for a presence SUBSCRIBE without one (RFC 3856 6.4). */
#define SUB_EXPIRES_PRESENCE_DEFAULT 3600u

/* Durations, in seconds. */
struct sub_limits {
	/* A SUBSCRIBE asking for less gets 423 with this Min-Expires. */
	uint32_t min_expires;
	/* Longer grants are shortened to this; a 423 asking for more is not followed. */
	uint32_t max_expires;
	/* What the bridge asks for in its own SUBSCRIBEs. */
	uint32_t default_expires;
	/* Back-off: the first wait, doubled per failure up to retry_max. */
	uint32_t retry_min;
	uint32_t retry_max;
	/* retry-after of the NOTIFY terminated;reason=probation sent at shutdown. */
	uint32_t shutdown_retry_after;
};

/* What the caller read with the event. Fields an event does not use are ignored. */
struct sub_event_info {
	/* Seconds, on the clock the caller's timers run on. */
	int64_t now;
	/* SIP_SUBSCRIBE, SIP_REFRESH: the requested Expires. SIP_2XX: the granted
	 * Expires. NOTIFY_ACTIVE, NOTIFY_PENDING: Subscription-State expires, 0 if
	 * absent. SIP_ERR_INTERVAL: the Expires we had asked for. */
	uint32_t expires;
	/* SIP_ERR_INTERVAL: the 423's Min-Expires. */
	uint32_t min_expires;
	/* The Retry-After of an error response or the retry-after of a terminated
	 * NOTIFY; 0 if absent. Used whenever the row backs off. */
	uint32_t retry_after;
};

/* What to do. Filled by sub_transition(); fields not named by an action are zero. */
struct sub_result {
	struct sub_state next;
	unsigned actions; /* SUB_ACT_* bits */
	int sip_status;   /* SUB_ACT_SIP_RESPONSE */
	uint32_t expires; /* see SUB_ACT_SIP_RESPONSE, _SUBSCRIBE, _REFRESH, _RESEND */
	/* SUB_ACT_SIP_NOTIFY: the Subscription-State to send. has_expires is set when
	 * this event granted the duration; otherwise the caller sends the time left. */
	struct sub_substate notify;
	enum sub_body body; /* SUB_ACT_SIP_NOTIFY */
	int64_t timer_at;   /* SUB_ACT_SCHEDULE_* */
	int rule;           /* index into sub_rules(), or -1: no row, ignored */
};

/* One row of the transition table (read-only view for tests and diagnostics). */
struct sub_rule {
	enum sub_dir dir;
	enum sub_phase phase;
	enum sub_event event;
	enum sub_phase next;
	unsigned actions;
	int sip_status;
	enum sub_ss notify;
	enum sub_reason reason;
	enum sub_body body;
	const char *why; /* the rule's basis (RFC section or DESIGN.md) */
};

/* Fill lim with the defaults: 60 / 7200 / 3600 s Expires, back-off 30 s .. 30 min,
 * shutdown retry-after 30 s. */
void sub_limits_init(struct sub_limits *lim);

/* 0 if lim is usable (every value > 0, min <= default <= max, retry_min <=
 * retry_max), else -EINVAL. */
int sub_limits_check(const struct sub_limits *lim);

/*
 * Apply event ev to the entry in state cur. lim may be NULL for the defaults; info
 * is required (at least .now). On success returns 0 and fills *res; res->next is the
 * entry's new state. An event with no row for cur's phase is the documented default:
 * ignored (res->next = *cur, no actions, res->rule = -1); SIP requests always have
 * a row. Returns -EINVAL, leaving *res untouched, if an argument is NULL or out of
 * range, the phase or event does not belong to cur->dir, lim fails
 * sub_limits_check(), or info contradicts the event (SIP_SUBSCRIBE/REFRESH with
 * expires < min_expires, SIP_ERR_INTERVAL without min_expires). All pointers are
 * borrowed; cur and res may be the same object.
 */
int sub_transition(const struct sub_state *cur, enum sub_event ev,
                   const struct sub_event_info *info, const struct sub_limits *lim,
                   struct sub_result *res);

/* The transition table (borrowed, static); *n gets its length. */
const struct sub_rule *sub_rules(size_t *n);

/* True if ev / phase belongs to direction dir. */
bool sub_event_applies(enum sub_dir dir, enum sub_event ev);
bool sub_phase_applies(enum sub_dir dir, enum sub_phase phase);

/* True if ev is a SIP request the bridge must answer. */
bool sub_event_is_request(enum sub_event ev);

/*
 * Classify a SUBSCRIBE from a SIP watcher (expires: its Expires, or
 * SUB_EXPIRES_PRESENCE_DEFAULT if it had none). An in-dialog Expires: 0 is read as
 * SUB_EV_SIP_SIGNOUT: SIP cannot tell a sign-out from a contact removal, and
 * DESIGN.md has a sign-out end the dialog and keep the roster subscription. Feed
 * SUB_EV_SIP_UNSUBSCRIBE instead only when the bridge knows the contact was removed.
 * lim NULL: defaults.
 */
enum sub_event sub_subscribe_event(bool in_dialog, uint32_t expires,
                                   const struct sub_limits *lim);

/*
 * Classify a final response to the bridge's SUBSCRIBE. info->expires: the 2xx's
 * Expires, or for a 423 the Expires we asked for; info->min_expires: the 423's
 * Min-Expires (0 if absent). A 423 is SUB_EV_SIP_ERR_INTERVAL only if Min-Expires is
 * above what we asked and within lim->max_expires, else SUB_EV_SIP_ERR_RETRY.
 * Returns 0 and sets *ev, or -EINVAL if status is not 200..699 or a pointer is NULL
 * (lim NULL: defaults).
 */
int sub_response_event(int status, const struct sub_event_info *info,
                       const struct sub_limits *lim, enum sub_event *ev);

/*
 * Classify a NOTIFY by its Subscription-State. terminated: rejected, noresource,
 * invariant, giveup -> END_FINAL; probation, or any other reason with retry-after
 * -> END_LATER; deactivated, timeout, none or unknown -> END_RETRY (RFC 6665 4.1.3).
 * An extension substate grants nothing and reads as pending. Returns 0 and sets *ev,
 * or -EINVAL for NULL or a state of SUB_SS_NONE.
 */
int sub_notify_event(const struct sub_substate *ss, enum sub_event *ev);

/*
 * Parse a Subscription-State header value (without the name and colon), e.g.
 * "active;expires=3600" or "terminated;reason=probation;retry-after=30". Strict:
 * tokens and parameters per RFC 3261 25.1, white space only around ';' and '=',
 * reason/expires/retry-after at most once each and with a value, delta-seconds
 * within 32 bits; other parameters are skipped. Returns 0 and fills *out, or
 * -EINVAL (NULL argument), -E2BIG (len > SUB_SUBSTATE_MAX), -EBADMSG (malformed).
 * *out is set only on success.
 */
int sub_substate_parse(const char *s, size_t len, struct sub_substate *out);

/*
 * Write ss as a Subscription-State value into buf (NUL-terminated). Returns the
 * length written (without the NUL), -EINVAL for a state or reason that has no name
 * (NONE/OTHER state, OTHER reason), or -ENOSPC if buf is too small.
 */
int sub_substate_format(const struct sub_substate *ss, char *buf, size_t size);

/*
 * When to refresh a subscription granted `expires` seconds at `now`: the later of
 * 80 % of the duration and 60 s before it ends, never sooner than now + 1. The 60 s
 * margin exceeds SIP Timer F (64*T1 = 32 s, RFC 3261 17.1.2.2), so a refresh that
 * gets no answer fails while the old subscription still holds (RFC 6665 4.1.2.2).
 */
int64_t sub_refresh_at(int64_t now, uint32_t expires);

/*
 * Seconds to wait before retry number `retries` (1 = first): the peer's retry_after
 * if non-zero (cut to SUB_RETRY_AFTER_MAX), else lim->retry_min doubled per earlier
 * retry, up to lim->retry_max. lim NULL: defaults.
 */
uint32_t sub_retry_delay(const struct sub_limits *lim, uint32_t retries,
                         uint32_t retry_after);

/* Names for logs and the store: lower case with dashes ("sw-active",
 * "sip-notify-end-final"); "?" for a value out of range. Static strings. */
const char *sub_dir_name(enum sub_dir dir);
const char *sub_phase_name(enum sub_phase phase);
const char *sub_event_name(enum sub_event ev);
const char *sub_ss_name(enum sub_ss ss);
const char *sub_reason_name(enum sub_reason reason);
/* Name of one action bit; "?" if act is not exactly one known bit. */
const char *sub_action_name(unsigned act);

/* The names of the bits in actions, joined by '|' ("none" for 0), into buf.
 * Returns the length, or -ENOSPC (buf then holds a truncated, terminated string). */
int sub_actions_format(unsigned actions, char *buf, size_t size);

/* Read back a name written by sub_dir_name / sub_phase_name. Returns 0, or
 * -EINVAL for NULL or an unknown name (*out untouched). */
int sub_dir_parse(const char *name, enum sub_dir *out);
int sub_phase_parse(const char *name, enum sub_phase *out);

#endif

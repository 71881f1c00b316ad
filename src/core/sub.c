#include "presbridge/sub.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Direction masks for the property tables. */
#define D_SW (1u << SUB_DIR_SIP_WATCHER)
#define D_XW (1u << SUB_DIR_XMPP_WATCHER)

static const char *const dir_names[SUB_DIR_COUNT] = {
    [SUB_DIR_SIP_WATCHER] = "sip-watcher",
    [SUB_DIR_XMPP_WATCHER] = "xmpp-watcher",
};

static const struct {
	const char *name;
	unsigned dirs;
} phase_props[SUB_PHASE_COUNT] = {
    [SUB_IDLE] = {"idle", D_SW | D_XW},
    [SUB_SW_PENDING] = {"sw-pending", D_SW},
    [SUB_SW_ACTIVE] = {"sw-active", D_SW},
    [SUB_SW_DORMANT] = {"sw-dormant", D_SW},
    [SUB_SW_DORMANT_PENDING] = {"sw-dormant-pending", D_SW},
    [SUB_XW_ASKING] = {"xw-asking", D_XW},
    [SUB_XW_PENDING] = {"xw-pending", D_XW},
    [SUB_XW_ASK_BACKOFF] = {"xw-ask-backoff", D_XW},
    [SUB_XW_ACTIVE] = {"xw-active", D_XW},
    [SUB_XW_RECOVERING] = {"xw-recovering", D_XW},
    [SUB_XW_BACKOFF] = {"xw-backoff", D_XW},
    [SUB_XW_ENDING] = {"xw-ending", D_XW},
};

static const struct {
	const char *name;
	unsigned dirs;
	bool request;
} event_props[SUB_EV_COUNT] = {
    [SUB_EV_SIP_SUBSCRIBE] = {"sip-subscribe", D_SW, true},
    [SUB_EV_SIP_FETCH] = {"sip-fetch", D_SW, true},
    [SUB_EV_SIP_TOO_BRIEF] = {"sip-too-brief", D_SW, true},
    [SUB_EV_SIP_REFRESH] = {"sip-refresh", D_SW, true},
    [SUB_EV_SIP_SIGNOUT] = {"sip-signout", D_SW, true},
    [SUB_EV_SIP_UNSUBSCRIBE] = {"sip-unsubscribe", D_SW, true},
    [SUB_EV_TIMER_EXPIRY] = {"timer-expiry", D_SW, false},
    [SUB_EV_XMPP_SUBSCRIBED] = {"xmpp-subscribed", D_SW, false},
    [SUB_EV_XMPP_UNSUBSCRIBED] = {"xmpp-unsubscribed", D_SW, false},
    [SUB_EV_SIP_2XX] = {"sip-2xx", D_XW, false},
    [SUB_EV_SIP_2XX_ENDED] = {"sip-2xx-ended", D_XW, false},
    [SUB_EV_SIP_ERR_GONE] = {"sip-err-gone", D_XW, false},
    [SUB_EV_SIP_ERR_REJECT] = {"sip-err-reject", D_XW, false},
    [SUB_EV_SIP_ERR_RETRY] = {"sip-err-retry", D_XW, false},
    [SUB_EV_SIP_ERR_INTERVAL] = {"sip-err-interval", D_XW, false},
    [SUB_EV_SIP_NOTIFY_ACTIVE] = {"sip-notify-active", D_XW, true},
    [SUB_EV_SIP_NOTIFY_PENDING] = {"sip-notify-pending", D_XW, true},
    [SUB_EV_SIP_NOTIFY_END_RETRY] = {"sip-notify-end-retry", D_XW, true},
    [SUB_EV_SIP_NOTIFY_END_LATER] = {"sip-notify-end-later", D_XW, true},
    [SUB_EV_SIP_NOTIFY_END_FINAL] = {"sip-notify-end-final", D_XW, true},
    [SUB_EV_TIMER_REFRESH] = {"timer-refresh", D_XW, false},
    [SUB_EV_TIMER_RETRY] = {"timer-retry", D_XW, false},
    [SUB_EV_XMPP_SUBSCRIBE] = {"xmpp-subscribe", D_XW, false},
    [SUB_EV_XMPP_UNSUBSCRIBE] = {"xmpp-unsubscribe", D_XW, false},
    [SUB_EV_XMPP_PROBE] = {"xmpp-probe", D_XW, false},
    [SUB_EV_XMPP_LINK_DOWN] = {"xmpp-link-down", D_SW | D_XW, false},
    [SUB_EV_XMPP_LINK_UP] = {"xmpp-link-up", D_SW | D_XW, false},
    [SUB_EV_RESTORE] = {"restore", D_SW | D_XW, false},
    [SUB_EV_SHUTDOWN] = {"shutdown", D_SW | D_XW, false},
};

/* Indexed by bit position. */
static const char *const action_names[] = {
    "cancel-timer",
    "sip-response",
    "sip-notify",
    "sip-subscribe",
    "sip-refresh",
    "sip-resend",
    "sip-unsubscribe",
    "xmpp-subscribe",
    "xmpp-unsubscribe",
    "xmpp-subscribed",
    "xmpp-unsubscribed",
    "xmpp-probe",
    "xmpp-presence",
    "xmpp-unavailable",
    "schedule-expiry",
    "schedule-refresh",
    "schedule-retry",
    "persist",
    "drop",
};

static const char *const ss_names[SUB_SS_COUNT] = {
    [SUB_SS_NONE] = "none",       [SUB_SS_ACTIVE] = "active",
    [SUB_SS_PENDING] = "pending", [SUB_SS_TERMINATED] = "terminated",
    [SUB_SS_OTHER] = "other",
};

static const char *const reason_names[SUB_REASON_COUNT] = {
    [SUB_REASON_NONE] = "none",
    [SUB_REASON_DEACTIVATED] = "deactivated",
    [SUB_REASON_PROBATION] = "probation",
    [SUB_REASON_REJECTED] = "rejected",
    [SUB_REASON_TIMEOUT] = "timeout",
    [SUB_REASON_GIVEUP] = "giveup",
    [SUB_REASON_NORESOURCE] = "noresource",
    [SUB_REASON_INVARIANT] = "invariant",
    [SUB_REASON_OTHER] = "other",
};

/*
 * What a terminated NOTIFY's reason asks of the subscriber (RFC 6665 4.1.3).
 * giveup may be retried by the RFC, but a retry "will likely get put back into
 * pending state": the bridge ends it and lets the XMPP user ask again.
 */
static const enum sub_event reason_events[SUB_REASON_COUNT] = {
    [SUB_REASON_NONE] = SUB_EV_SIP_NOTIFY_END_RETRY,
    [SUB_REASON_DEACTIVATED] = SUB_EV_SIP_NOTIFY_END_RETRY,
    [SUB_REASON_PROBATION] = SUB_EV_SIP_NOTIFY_END_LATER,
    [SUB_REASON_REJECTED] = SUB_EV_SIP_NOTIFY_END_FINAL,
    [SUB_REASON_TIMEOUT] = SUB_EV_SIP_NOTIFY_END_RETRY,
    [SUB_REASON_GIVEUP] = SUB_EV_SIP_NOTIFY_END_FINAL,
    [SUB_REASON_NORESOURCE] = SUB_EV_SIP_NOTIFY_END_FINAL,
    [SUB_REASON_INVARIANT] = SUB_EV_SIP_NOTIFY_END_FINAL,
    [SUB_REASON_OTHER] = SUB_EV_SIP_NOTIFY_END_RETRY,
};

/*
 * Final responses to our SUBSCRIBE that differ from their class's default (3xx and
 * 5xx: retry later, 4xx and 6xx: refused). 408/481 mean the dialog usage is gone
 * (RFC 5057 5.1). Redirects and challenges are configuration faults between trusted
 * peers (the bridge neither follows redirects nor answers challenges, DESIGN.md):
 * retrying heals once fixed, refusing would tear down every roster subscription.
 */
static const struct {
	int status;
	enum sub_event ev;
} status_events[] = {
    {401, SUB_EV_SIP_ERR_RETRY},  {407, SUB_EV_SIP_ERR_RETRY},
    {408, SUB_EV_SIP_ERR_GONE},   {423, SUB_EV_SIP_ERR_INTERVAL},
    {480, SUB_EV_SIP_ERR_RETRY},  {481, SUB_EV_SIP_ERR_GONE},
    {491, SUB_EV_SIP_ERR_RETRY},  {501, SUB_EV_SIP_ERR_REJECT},
    {505, SUB_EV_SIP_ERR_REJECT}, {513, SUB_EV_SIP_ERR_REJECT},
};

static const enum sub_event status_class_events[] = {
    [3] = SUB_EV_SIP_ERR_RETRY,
    [4] = SUB_EV_SIP_ERR_REJECT,
    [5] = SUB_EV_SIP_ERR_RETRY,
    [6] = SUB_EV_SIP_ERR_REJECT,
};

/* Short names so that each row of the table fits on one line. */
#define CANCEL   SUB_ACT_CANCEL_TIMER
#define RESP     SUB_ACT_SIP_RESPONSE
#define NOTIFY   SUB_ACT_SIP_NOTIFY
#define SUB      SUB_ACT_SIP_SUBSCRIBE
#define REFRESH  SUB_ACT_SIP_REFRESH
#define RESEND   SUB_ACT_SIP_RESEND
#define UNSUB    SUB_ACT_SIP_UNSUBSCRIBE
#define X_SUB    SUB_ACT_XMPP_SUBSCRIBE
#define X_UNSUB  SUB_ACT_XMPP_UNSUBSCRIBE
#define X_SUBD   SUB_ACT_XMPP_SUBSCRIBED
#define X_UNSUBD SUB_ACT_XMPP_UNSUBSCRIBED
#define X_PROBE  SUB_ACT_XMPP_PROBE
#define X_PRES   SUB_ACT_XMPP_PRESENCE
#define X_UNAV   SUB_ACT_XMPP_UNAVAILABLE
#define T_EXP    SUB_ACT_SCHEDULE_EXPIRY
#define T_REF    SUB_ACT_SCHEDULE_REFRESH
#define T_RETRY  SUB_ACT_SCHEDULE_RETRY
#define PERSIST  SUB_ACT_PERSIST
#define DROP     SUB_ACT_DROP

#define ACTIVE_  SUB_SS_ACTIVE
#define PENDING_ SUB_SS_PENDING
#define END_     SUB_SS_TERMINATED

/* A row with no SIP response or NOTIFY, one answering a request, one with a NOTIFY. */
#define SW(ph, ev, nx, act, why)                                                         \
	{                                                                                \
		SUB_DIR_SIP_WATCHER, ph, ev, nx, act, 0, SUB_SS_NONE, SUB_REASON_NONE,   \
		    SUB_BODY_NONE, why                                                   \
	}
#define SWR(ph, ev, nx, act, st, why)                                                    \
	{                                                                                \
		SUB_DIR_SIP_WATCHER, ph, ev, nx, (act) | RESP, st, SUB_SS_NONE,          \
		    SUB_REASON_NONE, SUB_BODY_NONE, why                                  \
	}
#define SWN(ph, ev, nx, act, st, ss, rs, body, why)                                      \
	{                                                                                \
		SUB_DIR_SIP_WATCHER, ph, ev, nx, (act) | NOTIFY | ((st) ? RESP : 0u),    \
		    st, ss, SUB_REASON_##rs, SUB_BODY_##body, why                        \
	}
#define XW(ph, ev, nx, act, why)                                                         \
	{                                                                                \
		SUB_DIR_XMPP_WATCHER, ph, ev, nx, act, 0, SUB_SS_NONE, SUB_REASON_NONE,  \
		    SUB_BODY_NONE, why                                                   \
	}
#define XWR(ph, ev, nx, act, st, why)                                                    \
	{                                                                                \
		SUB_DIR_XMPP_WATCHER, ph, ev, nx, (act) | RESP, st, SUB_SS_NONE,         \
		    SUB_REASON_NONE, SUB_BODY_NONE, why                                  \
	}

/* clang-format off */
static const struct sub_rule rules[] = {
/* ---- SIP watcher -> XMPP presentity -------------------------------------------- */
/* No entry: a SUBSCRIBE starts one and asks the XMPP user; in-dialog requests are for
 * a dialog we do not have (RFC 3261 12.2.2, RFC 6665 4.2.1.2). */
SWN(SUB_IDLE, SUB_EV_SIP_SUBSCRIBE, SUB_SW_PENDING, X_SUB | T_EXP | PERSIST, 200, PENDING_, NONE, NONE, "RFC 8048 5.3.1; RFC 6665 4.2.1.1, 4.2.1.3"),
SWN(SUB_IDLE, SUB_EV_SIP_FETCH, SUB_IDLE, 0, 200, END_, TIMEOUT, NONE, "RFC 6665 4.4.3: a poll of a pair nobody authorized gets no document"),
SWR(SUB_IDLE, SUB_EV_SIP_TOO_BRIEF, SUB_IDLE, 0, 423, "RFC 6665 4.2.1.1"),
SWR(SUB_IDLE, SUB_EV_SIP_REFRESH, SUB_IDLE, 0, 481, "RFC 3261 12.2.2: no such dialog"),
SWR(SUB_IDLE, SUB_EV_SIP_SIGNOUT, SUB_IDLE, 0, 481, "RFC 3261 12.2.2: no such dialog"),
SWR(SUB_IDLE, SUB_EV_SIP_UNSUBSCRIBE, SUB_IDLE, 0, 481, "RFC 3261 12.2.2: no such dialog"),
/* Dialog up, XMPP user not yet asked or not yet answered. */
SWN(SUB_SW_PENDING, SUB_EV_SIP_SUBSCRIBE, SUB_SW_PENDING, T_EXP, 200, PENDING_, NONE, NONE, "RFC 6665 4.2.1.1: a new dialog replaces the lost one"),
SWN(SUB_SW_PENDING, SUB_EV_SIP_FETCH, SUB_SW_PENDING, 0, 200, END_, TIMEOUT, NONE, "RFC 6665 4.4.3: not authorized yet"),
SWR(SUB_SW_PENDING, SUB_EV_SIP_TOO_BRIEF, SUB_SW_PENDING, 0, 423, "RFC 6665 4.2.1.1"),
SWN(SUB_SW_PENDING, SUB_EV_SIP_REFRESH, SUB_SW_PENDING, T_EXP, 200, PENDING_, NONE, NONE, "RFC 6665 4.2.1.2"),
SWN(SUB_SW_PENDING, SUB_EV_SIP_SIGNOUT, SUB_SW_DORMANT_PENDING, CANCEL | PERSIST, 200, END_, TIMEOUT, NONE, "DESIGN.md: sign-out ends the dialog, not the roster request; RFC 6665 4.2.1.4"),
SWN(SUB_SW_PENDING, SUB_EV_SIP_UNSUBSCRIBE, SUB_IDLE, X_UNSUB | CANCEL | DROP, 200, END_, TIMEOUT, NONE, "RFC 8048 5.3.3; RFC 6665 4.2.1.4; RFC 6121 3.3"),
SWN(SUB_SW_PENDING, SUB_EV_TIMER_EXPIRY, SUB_SW_DORMANT_PENDING, CANCEL | PERSIST, 0, END_, TIMEOUT, NONE, "RFC 6665 4.2.2; an unrefreshed dialog is a sign-out"),
SWN(SUB_SW_PENDING, SUB_EV_XMPP_SUBSCRIBED, SUB_SW_ACTIVE, PERSIST, 0, ACTIVE_, NONE, CURRENT, "RFC 6121 3.1.6; RFC 6665 4.2.1.3: pending -> active"),
SWN(SUB_SW_PENDING, SUB_EV_XMPP_UNSUBSCRIBED, SUB_IDLE, CANCEL | DROP, 0, END_, REJECTED, NONE, "RFC 6121 3.2; RFC 6665 4.1.3 rejected"),
SW(SUB_SW_PENDING, SUB_EV_XMPP_LINK_UP, SUB_SW_PENDING, X_SUB, "the request may have died with the link; a repeat is harmless (RFC 6121 3.1.2)"),
SW(SUB_SW_PENDING, SUB_EV_RESTORE, SUB_SW_DORMANT_PENDING, CANCEL | PERSIST, "SIP dialogs do not survive a restart; the watcher re-subscribes after its 481"),
SWN(SUB_SW_PENDING, SUB_EV_SHUTDOWN, SUB_SW_PENDING, CANCEL, 0, END_, PROBATION, NONE, "DESIGN.md graceful stop; RFC 6665 4.1.3 probation: come back after retry-after"),
/* Dialog up and authorized. */
SWN(SUB_SW_ACTIVE, SUB_EV_SIP_SUBSCRIBE, SUB_SW_ACTIVE, T_EXP, 200, ACTIVE_, NONE, CURRENT, "RFC 6665 4.2.1.1: a new dialog replaces the lost one"),
SWN(SUB_SW_ACTIVE, SUB_EV_SIP_FETCH, SUB_SW_ACTIVE, 0, 200, END_, TIMEOUT, CURRENT, "RFC 6665 4.4.3; RFC 8048 7.3 (answered from the cache)"),
SWR(SUB_SW_ACTIVE, SUB_EV_SIP_TOO_BRIEF, SUB_SW_ACTIVE, 0, 423, "RFC 6665 4.2.1.1"),
SWN(SUB_SW_ACTIVE, SUB_EV_SIP_REFRESH, SUB_SW_ACTIVE, T_EXP, 200, ACTIVE_, NONE, CURRENT, "RFC 6665 4.2.1.2; RFC 8048 5.3.2"),
SWN(SUB_SW_ACTIVE, SUB_EV_SIP_SIGNOUT, SUB_SW_DORMANT, CANCEL | PERSIST, 200, END_, TIMEOUT, CLOSED, "RFC 8048 5.3.3: closed, terminated;reason=timeout; DESIGN.md: sign-out ends the dialog, not the roster subscription"),
SWN(SUB_SW_ACTIVE, SUB_EV_SIP_UNSUBSCRIBE, SUB_IDLE, X_UNSUB | CANCEL | DROP, 200, END_, TIMEOUT, CLOSED, "RFC 8048 5.3.3: closed, terminated;reason=timeout; RFC 6665 4.2.1.4; RFC 6121 3.3"),
SWN(SUB_SW_ACTIVE, SUB_EV_TIMER_EXPIRY, SUB_SW_DORMANT, CANCEL | PERSIST, 0, END_, TIMEOUT, NONE, "RFC 6665 4.2.2; an unrefreshed dialog is a sign-out"),
SWN(SUB_SW_ACTIVE, SUB_EV_XMPP_UNSUBSCRIBED, SUB_IDLE, CANCEL | DROP, 0, END_, REJECTED, NONE, "RFC 6121 3.2 revocation; RFC 6665 4.1.3 rejected"),
SWN(SUB_SW_ACTIVE, SUB_EV_XMPP_LINK_DOWN, SUB_SW_ACTIVE, 0, 0, ACTIVE_, NONE, CLOSED, "blind to the XMPP side: closed beats stale"),
SW(SUB_SW_ACTIVE, SUB_EV_XMPP_LINK_UP, SUB_SW_ACTIVE, X_PROBE, "RFC 6121 4.3.1: probe to learn presence missed while down"),
SW(SUB_SW_ACTIVE, SUB_EV_RESTORE, SUB_SW_DORMANT, CANCEL | PERSIST, "SIP dialogs do not survive a restart; the watcher re-subscribes after its 481"),
SWN(SUB_SW_ACTIVE, SUB_EV_SHUTDOWN, SUB_SW_ACTIVE, CANCEL, 0, END_, PROBATION, NONE, "DESIGN.md graceful stop; RFC 6665 4.1.3 probation"),
/* Watcher signed out, XMPP subscription kept: a new SUBSCRIBE is answered at once. */
SWN(SUB_SW_DORMANT, SUB_EV_SIP_SUBSCRIBE, SUB_SW_ACTIVE, T_EXP | PERSIST, 200, ACTIVE_, NONE, CURRENT, "DESIGN.md: roster kept, cached presence at once"),
SWN(SUB_SW_DORMANT, SUB_EV_SIP_FETCH, SUB_SW_DORMANT, 0, 200, END_, TIMEOUT, CURRENT, "RFC 6665 4.4.3; RFC 8048 7.3 (answered from the cache)"),
SWR(SUB_SW_DORMANT, SUB_EV_SIP_TOO_BRIEF, SUB_SW_DORMANT, 0, 423, "RFC 6665 4.2.1.1"),
SWR(SUB_SW_DORMANT, SUB_EV_SIP_REFRESH, SUB_SW_DORMANT, 0, 481, "RFC 6665 4.1.2.2: the watcher then makes a new subscription"),
SWR(SUB_SW_DORMANT, SUB_EV_SIP_SIGNOUT, SUB_SW_DORMANT, 0, 481, "RFC 3261 12.2.2: no such dialog"),
SWR(SUB_SW_DORMANT, SUB_EV_SIP_UNSUBSCRIBE, SUB_IDLE, X_UNSUB | DROP, 481, "no dialog, but the removal is meant: RFC 8048 5.3.3"),
SW(SUB_SW_DORMANT, SUB_EV_XMPP_UNSUBSCRIBED, SUB_IDLE, DROP, "RFC 6121 3.2: the XMPP user revoked it"),
SW(SUB_SW_DORMANT, SUB_EV_XMPP_LINK_UP, SUB_SW_DORMANT, X_PROBE, "RFC 6121 4.3.1: keep the cache right for the next SUBSCRIBE"),
/* Watcher signed out before the XMPP user answered. */
SWN(SUB_SW_DORMANT_PENDING, SUB_EV_SIP_SUBSCRIBE, SUB_SW_PENDING, T_EXP | PERSIST, 200, PENDING_, NONE, NONE, "RFC 6665 4.2.1.3: still awaiting authorization"),
SWN(SUB_SW_DORMANT_PENDING, SUB_EV_SIP_FETCH, SUB_SW_DORMANT_PENDING, 0, 200, END_, TIMEOUT, NONE, "RFC 6665 4.4.3: not authorized yet"),
SWR(SUB_SW_DORMANT_PENDING, SUB_EV_SIP_TOO_BRIEF, SUB_SW_DORMANT_PENDING, 0, 423, "RFC 6665 4.2.1.1"),
SWR(SUB_SW_DORMANT_PENDING, SUB_EV_SIP_REFRESH, SUB_SW_DORMANT_PENDING, 0, 481, "RFC 6665 4.1.2.2"),
SWR(SUB_SW_DORMANT_PENDING, SUB_EV_SIP_SIGNOUT, SUB_SW_DORMANT_PENDING, 0, 481, "RFC 3261 12.2.2: no such dialog"),
SWR(SUB_SW_DORMANT_PENDING, SUB_EV_SIP_UNSUBSCRIBE, SUB_IDLE, X_UNSUB | DROP, 481, "no dialog, but the removal is meant: RFC 6121 3.3 cancels the request"),
SW(SUB_SW_DORMANT_PENDING, SUB_EV_XMPP_SUBSCRIBED, SUB_SW_DORMANT, PERSIST, "RFC 6121 3.1.6: approval stands for the next sign-in"),
SW(SUB_SW_DORMANT_PENDING, SUB_EV_XMPP_UNSUBSCRIBED, SUB_IDLE, DROP, "RFC 6121 3.2: denied"),
SW(SUB_SW_DORMANT_PENDING, SUB_EV_XMPP_LINK_UP, SUB_SW_DORMANT_PENDING, X_SUB, "RFC 6121 3.1.2: repeat a request the link may have lost"),

/* ---- XMPP watcher -> SIP presentity -------------------------------------------- */
/* No entry. A probe is adopted: servers probe only contacts they hold a subscription
 * to (RFC 6121 4.3.1), so the bridge lost its state (e.g. state = :memory:);
 * answering `unsubscribed` (4.3.2) would tear the roster down. Lync decides. */
XW(SUB_IDLE, SUB_EV_SIP_2XX, SUB_IDLE, UNSUB, "RFC 6665 4.1.2.3: end a subscription nobody wants"),
XWR(SUB_IDLE, SUB_EV_SIP_NOTIFY_ACTIVE, SUB_IDLE, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XWR(SUB_IDLE, SUB_EV_SIP_NOTIFY_PENDING, SUB_IDLE, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XWR(SUB_IDLE, SUB_EV_SIP_NOTIFY_END_RETRY, SUB_IDLE, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XWR(SUB_IDLE, SUB_EV_SIP_NOTIFY_END_LATER, SUB_IDLE, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XWR(SUB_IDLE, SUB_EV_SIP_NOTIFY_END_FINAL, SUB_IDLE, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XW(SUB_IDLE, SUB_EV_XMPP_SUBSCRIBE, SUB_XW_ASKING, SUB | PERSIST, "RFC 8048 5.2.1"),
XW(SUB_IDLE, SUB_EV_XMPP_PROBE, SUB_XW_ASKING, SUB | PERSIST, "RFC 6121 4.3.1: a probe means a subscription we forgot"),
/* XMPP request pending, SUBSCRIBE sent. Never re-subscribes at once: a failure here
 * backs off, so a peer cannot drive a tight loop. */
XW(SUB_XW_ASKING, SUB_EV_SIP_2XX, SUB_XW_ASKING, T_REF, "RFC 6665 4.1.2.1"),
XW(SUB_XW_ASKING, SUB_EV_SIP_ERR_GONE, SUB_XW_ASK_BACKOFF, T_RETRY | PERSIST, "no answer to a new SUBSCRIBE: back off"),
XW(SUB_XW_ASKING, SUB_EV_SIP_ERR_REJECT, SUB_IDLE, X_UNSUBD | CANCEL | DROP, "RFC 8048 5.2.1; RFC 6121 3.2: denied"),
XW(SUB_XW_ASKING, SUB_EV_SIP_ERR_RETRY, SUB_XW_ASK_BACKOFF, T_RETRY | PERSIST, "RFC 3261 21.5.4 Retry-After"),
XW(SUB_XW_ASKING, SUB_EV_SIP_ERR_INTERVAL, SUB_XW_ASKING, RESEND, "RFC 3261 21.4.17"),
XWR(SUB_XW_ASKING, SUB_EV_SIP_NOTIFY_ACTIVE, SUB_XW_ACTIVE, X_SUBD | X_PRES | T_REF | PERSIST, 200, "RFC 8048 5.2.1; RFC 6121 3.1.5"),
XWR(SUB_XW_ASKING, SUB_EV_SIP_NOTIFY_PENDING, SUB_XW_PENDING, T_REF | PERSIST, 200, "RFC 6665 4.1.3 pending: wait"),
XWR(SUB_XW_ASKING, SUB_EV_SIP_NOTIFY_END_RETRY, SUB_XW_ASK_BACKOFF, T_RETRY | PERSIST, 200, "ended before it began: back off"),
XWR(SUB_XW_ASKING, SUB_EV_SIP_NOTIFY_END_LATER, SUB_XW_ASK_BACKOFF, T_RETRY | PERSIST, 200, "RFC 6665 4.1.3 probation / retry-after"),
XWR(SUB_XW_ASKING, SUB_EV_SIP_NOTIFY_END_FINAL, SUB_IDLE, X_UNSUBD | CANCEL | DROP, 200, "RFC 6665 4.1.3; RFC 6121 3.2: denied"),
XW(SUB_XW_ASKING, SUB_EV_TIMER_REFRESH, SUB_XW_ASKING, REFRESH, "RFC 6665 4.1.2.2"),
XW(SUB_XW_ASKING, SUB_EV_XMPP_UNSUBSCRIBE, SUB_XW_ENDING, UNSUB | CANCEL | T_REF | PERSIST, "RFC 8048 5.2.3; RFC 6665 4.1.2.3: wait for the final NOTIFY"),
XW(SUB_XW_ASKING, SUB_EV_RESTORE, SUB_XW_ASKING, SUB | CANCEL, "SIP dialogs do not survive a restart"),
XW(SUB_XW_ASKING, SUB_EV_SHUTDOWN, SUB_XW_ASKING, UNSUB | CANCEL, "RFC 6665 4.1.2.3; the phase stays for the restore"),
/* XMPP request pending, the notifier holds the SIP subscription pending. */
XW(SUB_XW_PENDING, SUB_EV_SIP_2XX, SUB_XW_PENDING, T_REF, "RFC 6665 4.1.2.2: refresh accepted"),
XW(SUB_XW_PENDING, SUB_EV_SIP_ERR_GONE, SUB_XW_ASKING, SUB | CANCEL | PERSIST, "RFC 6665 4.1.2.2: dialog gone, start a new one"),
XW(SUB_XW_PENDING, SUB_EV_SIP_ERR_REJECT, SUB_IDLE, X_UNSUBD | CANCEL | DROP, "RFC 6665 4.1.2.2; RFC 6121 3.2: denied"),
XW(SUB_XW_PENDING, SUB_EV_SIP_ERR_RETRY, SUB_XW_ASK_BACKOFF, T_RETRY | PERSIST, "RFC 3261 21.5.4 Retry-After"),
XW(SUB_XW_PENDING, SUB_EV_SIP_ERR_INTERVAL, SUB_XW_PENDING, RESEND, "RFC 3261 21.4.17"),
XWR(SUB_XW_PENDING, SUB_EV_SIP_NOTIFY_ACTIVE, SUB_XW_ACTIVE, X_SUBD | X_PRES | T_REF | PERSIST, 200, "RFC 8048 5.2.1; RFC 6121 3.1.5"),
XWR(SUB_XW_PENDING, SUB_EV_SIP_NOTIFY_PENDING, SUB_XW_PENDING, T_REF, 200, "RFC 6665 4.1.3 pending"),
XWR(SUB_XW_PENDING, SUB_EV_SIP_NOTIFY_END_RETRY, SUB_XW_ASKING, SUB | CANCEL | PERSIST, 200, "RFC 6665 4.1.3 deactivated/timeout: re-subscribe now"),
XWR(SUB_XW_PENDING, SUB_EV_SIP_NOTIFY_END_LATER, SUB_XW_ASK_BACKOFF, T_RETRY | PERSIST, 200, "RFC 6665 4.1.3 probation / retry-after"),
XWR(SUB_XW_PENDING, SUB_EV_SIP_NOTIFY_END_FINAL, SUB_IDLE, X_UNSUBD | CANCEL | DROP, 200, "RFC 6665 4.1.3; RFC 6121 3.2: denied"),
XW(SUB_XW_PENDING, SUB_EV_TIMER_REFRESH, SUB_XW_PENDING, REFRESH, "RFC 6665 4.1.2.2"),
XW(SUB_XW_PENDING, SUB_EV_XMPP_UNSUBSCRIBE, SUB_XW_ENDING, UNSUB | CANCEL | T_REF | PERSIST, "RFC 8048 5.2.3; RFC 6665 4.1.2.3: wait for the final NOTIFY"),
XW(SUB_XW_PENDING, SUB_EV_RESTORE, SUB_XW_ASKING, SUB | CANCEL | PERSIST, "SIP dialogs do not survive a restart"),
XW(SUB_XW_PENDING, SUB_EV_SHUTDOWN, SUB_XW_PENDING, UNSUB | CANCEL, "RFC 6665 4.1.2.3; the phase stays for the restore"),
/* XMPP request pending, no SIP dialog, waiting to retry. */
XW(SUB_XW_ASK_BACKOFF, SUB_EV_SIP_2XX, SUB_XW_ASK_BACKOFF, UNSUB, "RFC 6665 4.1.2.3: a late dialog we gave up on"),
XWR(SUB_XW_ASK_BACKOFF, SUB_EV_SIP_NOTIFY_ACTIVE, SUB_XW_ASK_BACKOFF, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XWR(SUB_XW_ASK_BACKOFF, SUB_EV_SIP_NOTIFY_PENDING, SUB_XW_ASK_BACKOFF, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XWR(SUB_XW_ASK_BACKOFF, SUB_EV_SIP_NOTIFY_END_RETRY, SUB_XW_ASK_BACKOFF, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XWR(SUB_XW_ASK_BACKOFF, SUB_EV_SIP_NOTIFY_END_LATER, SUB_XW_ASK_BACKOFF, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XWR(SUB_XW_ASK_BACKOFF, SUB_EV_SIP_NOTIFY_END_FINAL, SUB_XW_ASK_BACKOFF, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XW(SUB_XW_ASK_BACKOFF, SUB_EV_TIMER_RETRY, SUB_XW_ASKING, SUB | CANCEL | PERSIST, "RFC 6665 4.1.3: retry after the wait"),
XW(SUB_XW_ASK_BACKOFF, SUB_EV_XMPP_UNSUBSCRIBE, SUB_IDLE, CANCEL | DROP, "RFC 6121 3.3.3; no dialog to end"),
XW(SUB_XW_ASK_BACKOFF, SUB_EV_RESTORE, SUB_XW_ASKING, SUB | CANCEL | PERSIST, "a restart is a fresh start"),
XW(SUB_XW_ASK_BACKOFF, SUB_EV_SHUTDOWN, SUB_XW_ASK_BACKOFF, CANCEL, "the phase stays for the restore"),
/* Authorized and active. */
XW(SUB_XW_ACTIVE, SUB_EV_SIP_2XX, SUB_XW_ACTIVE, T_REF, "RFC 6665 4.1.2.2: refresh accepted"),
XW(SUB_XW_ACTIVE, SUB_EV_SIP_ERR_GONE, SUB_XW_RECOVERING, SUB | CANCEL | PERSIST, "RFC 6665 4.1.2.2; RFC 8048 5.2.2: keep it up while the roster stands"),
XW(SUB_XW_ACTIVE, SUB_EV_SIP_ERR_REJECT, SUB_IDLE, X_UNSUBD | X_UNAV | CANCEL | DROP, "RFC 6665 4.1.2.2; RFC 6121 3.2.2: revoked"),
XW(SUB_XW_ACTIVE, SUB_EV_SIP_ERR_RETRY, SUB_XW_BACKOFF, X_UNAV | T_RETRY | PERSIST, "RFC 3261 21.5.4; presence unknown until the retry"),
XW(SUB_XW_ACTIVE, SUB_EV_SIP_ERR_INTERVAL, SUB_XW_ACTIVE, RESEND, "RFC 3261 21.4.17"),
XWR(SUB_XW_ACTIVE, SUB_EV_SIP_NOTIFY_ACTIVE, SUB_XW_ACTIVE, X_PRES | T_REF, 200, "RFC 8048 6.2"),
XWR(SUB_XW_ACTIVE, SUB_EV_SIP_NOTIFY_PENDING, SUB_XW_RECOVERING, X_UNAV | T_REF | PERSIST, 200, "RFC 6665 4.1.3: authorization in doubt, reveal nothing"),
XWR(SUB_XW_ACTIVE, SUB_EV_SIP_NOTIFY_END_RETRY, SUB_XW_RECOVERING, SUB | CANCEL | PERSIST, 200, "RFC 6665 4.1.3 deactivated/timeout; no unavailable: avoids a flap"),
XWR(SUB_XW_ACTIVE, SUB_EV_SIP_NOTIFY_END_LATER, SUB_XW_BACKOFF, X_UNAV | T_RETRY | PERSIST, 200, "RFC 6665 4.1.3 probation / retry-after"),
XWR(SUB_XW_ACTIVE, SUB_EV_SIP_NOTIFY_END_FINAL, SUB_IDLE, X_UNSUBD | X_UNAV | CANCEL | DROP, 200, "RFC 6665 4.1.3; RFC 6121 3.2.2: revoked"),
XW(SUB_XW_ACTIVE, SUB_EV_TIMER_REFRESH, SUB_XW_ACTIVE, REFRESH, "RFC 6665 4.1.2.2"),
XW(SUB_XW_ACTIVE, SUB_EV_XMPP_SUBSCRIBE, SUB_XW_ACTIVE, X_SUBD | X_PRES, "RFC 6121 3.1.3: auto-reply when already subscribed"),
XW(SUB_XW_ACTIVE, SUB_EV_XMPP_UNSUBSCRIBE, SUB_XW_ENDING, UNSUB | X_UNAV | CANCEL | T_REF | PERSIST, "RFC 8048 5.2.3; RFC 6121 3.3.3; RFC 6665 4.1.2.3: wait for the final NOTIFY"),
XW(SUB_XW_ACTIVE, SUB_EV_XMPP_PROBE, SUB_XW_ACTIVE, REFRESH | X_PRES, "RFC 6121 4.3.2: answered from the cache; RFC 8048 5.2.2: a probe asks for a new SUBSCRIBE (its NOTIFY brings what changed)"),
XW(SUB_XW_ACTIVE, SUB_EV_XMPP_LINK_UP, SUB_XW_ACTIVE, X_SUBD | X_PRES, "re-announce; a repeated subscribed is ignored (RFC 6121 3.1.6)"),
XW(SUB_XW_ACTIVE, SUB_EV_RESTORE, SUB_XW_RECOVERING, SUB | CANCEL | PERSIST, "SIP dialogs do not survive a restart"),
XW(SUB_XW_ACTIVE, SUB_EV_SHUTDOWN, SUB_XW_ACTIVE, UNSUB | X_UNAV | CANCEL, "DESIGN.md graceful stop; RFC 6665 4.1.2.3"),
/* Authorized, SIP side being re-established. Like ASKING, never re-subscribes at
 * once. */
XW(SUB_XW_RECOVERING, SUB_EV_SIP_2XX, SUB_XW_RECOVERING, T_REF, "RFC 6665 4.1.2.1"),
XW(SUB_XW_RECOVERING, SUB_EV_SIP_ERR_GONE, SUB_XW_BACKOFF, X_UNAV | T_RETRY | PERSIST, "second failure in a row: back off"),
XW(SUB_XW_RECOVERING, SUB_EV_SIP_ERR_REJECT, SUB_IDLE, X_UNSUBD | X_UNAV | CANCEL | DROP, "RFC 6121 3.2.2: revoked"),
XW(SUB_XW_RECOVERING, SUB_EV_SIP_ERR_RETRY, SUB_XW_BACKOFF, X_UNAV | T_RETRY | PERSIST, "RFC 3261 21.5.4 Retry-After"),
XW(SUB_XW_RECOVERING, SUB_EV_SIP_ERR_INTERVAL, SUB_XW_RECOVERING, RESEND, "RFC 3261 21.4.17"),
XWR(SUB_XW_RECOVERING, SUB_EV_SIP_NOTIFY_ACTIVE, SUB_XW_ACTIVE, X_PRES | T_REF | PERSIST, 200, "RFC 8048 6.2"),
XWR(SUB_XW_RECOVERING, SUB_EV_SIP_NOTIFY_PENDING, SUB_XW_RECOVERING, T_REF, 200, "RFC 6665 4.1.3 pending"),
XWR(SUB_XW_RECOVERING, SUB_EV_SIP_NOTIFY_END_RETRY, SUB_XW_BACKOFF, X_UNAV | T_RETRY | PERSIST, 200, "ended again right away: back off"),
XWR(SUB_XW_RECOVERING, SUB_EV_SIP_NOTIFY_END_LATER, SUB_XW_BACKOFF, X_UNAV | T_RETRY | PERSIST, 200, "RFC 6665 4.1.3 probation / retry-after"),
XWR(SUB_XW_RECOVERING, SUB_EV_SIP_NOTIFY_END_FINAL, SUB_IDLE, X_UNSUBD | X_UNAV | CANCEL | DROP, 200, "RFC 6665 4.1.3; RFC 6121 3.2.2: revoked"),
XW(SUB_XW_RECOVERING, SUB_EV_TIMER_REFRESH, SUB_XW_RECOVERING, REFRESH, "RFC 6665 4.1.2.2"),
XW(SUB_XW_RECOVERING, SUB_EV_XMPP_SUBSCRIBE, SUB_XW_RECOVERING, X_SUBD, "RFC 6121 3.1.3: auto-reply when already subscribed"),
XW(SUB_XW_RECOVERING, SUB_EV_XMPP_UNSUBSCRIBE, SUB_XW_ENDING, UNSUB | X_UNAV | CANCEL | T_REF | PERSIST, "RFC 8048 5.2.3; RFC 6121 3.3.3; RFC 6665 4.1.2.3: wait for the final NOTIFY"),
XW(SUB_XW_RECOVERING, SUB_EV_XMPP_PROBE, SUB_XW_RECOVERING, X_UNAV, "RFC 6121 4.3.2; nothing current to vouch for"),
XW(SUB_XW_RECOVERING, SUB_EV_XMPP_LINK_UP, SUB_XW_RECOVERING, X_SUBD | X_UNAV, "re-announce what is known"),
XW(SUB_XW_RECOVERING, SUB_EV_RESTORE, SUB_XW_RECOVERING, SUB | CANCEL, "SIP dialogs do not survive a restart"),
XW(SUB_XW_RECOVERING, SUB_EV_SHUTDOWN, SUB_XW_RECOVERING, UNSUB | X_UNAV | CANCEL, "DESIGN.md graceful stop; RFC 6665 4.1.2.3"),
/* Authorized, no SIP dialog, waiting to retry. */
XW(SUB_XW_BACKOFF, SUB_EV_SIP_2XX, SUB_XW_BACKOFF, UNSUB, "RFC 6665 4.1.2.3: a late dialog we gave up on"),
XWR(SUB_XW_BACKOFF, SUB_EV_SIP_NOTIFY_ACTIVE, SUB_XW_BACKOFF, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XWR(SUB_XW_BACKOFF, SUB_EV_SIP_NOTIFY_PENDING, SUB_XW_BACKOFF, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XWR(SUB_XW_BACKOFF, SUB_EV_SIP_NOTIFY_END_RETRY, SUB_XW_BACKOFF, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XWR(SUB_XW_BACKOFF, SUB_EV_SIP_NOTIFY_END_LATER, SUB_XW_BACKOFF, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XWR(SUB_XW_BACKOFF, SUB_EV_SIP_NOTIFY_END_FINAL, SUB_XW_BACKOFF, 0, 481, "RFC 6665 4.1.3: no such subscription"),
XW(SUB_XW_BACKOFF, SUB_EV_TIMER_RETRY, SUB_XW_RECOVERING, SUB | CANCEL | PERSIST, "RFC 8048 5.2.2: keep it up while the roster stands"),
XW(SUB_XW_BACKOFF, SUB_EV_XMPP_SUBSCRIBE, SUB_XW_BACKOFF, X_SUBD, "RFC 6121 3.1.3: auto-reply when already subscribed"),
XW(SUB_XW_BACKOFF, SUB_EV_XMPP_UNSUBSCRIBE, SUB_IDLE, CANCEL | DROP, "RFC 6121 3.3.3; unavailable was sent on entry"),
XW(SUB_XW_BACKOFF, SUB_EV_XMPP_PROBE, SUB_XW_BACKOFF, X_UNAV, "RFC 6121 4.3.2: subscribed, nothing available"),
XW(SUB_XW_BACKOFF, SUB_EV_XMPP_LINK_UP, SUB_XW_BACKOFF, X_SUBD | X_UNAV, "re-announce what is known"),
XW(SUB_XW_BACKOFF, SUB_EV_RESTORE, SUB_XW_RECOVERING, SUB | CANCEL | PERSIST, "a restart is a fresh start"),
XW(SUB_XW_BACKOFF, SUB_EV_SHUTDOWN, SUB_XW_BACKOFF, CANCEL, "the phase stays for the restore"),
/* The XMPP user unsubscribed; the SUBSCRIBE Expires: 0 is out and the dialog stays
 * until the notifier's final NOTIFY, which is answered 200, not 481. */
XW(SUB_XW_ENDING, SUB_EV_SIP_2XX_ENDED, SUB_XW_ENDING, X_UNSUBD, "RFC 8048 5.2.3: unsubscribed upon the 200; RFC 6665 4.1.2.3: the final NOTIFY follows"),
XW(SUB_XW_ENDING, SUB_EV_SIP_2XX, SUB_XW_ENDING, UNSUB, "RFC 6665 4.1.2.3: the dialog came up after the unsubscribe: end it"),
XW(SUB_XW_ENDING, SUB_EV_SIP_ERR_GONE, SUB_IDLE, X_UNSUBD | CANCEL | DROP, "RFC 5057 5.1: the dialog is gone, no final NOTIFY will come"),
XW(SUB_XW_ENDING, SUB_EV_SIP_ERR_REJECT, SUB_IDLE, X_UNSUBD | CANCEL | DROP, "RFC 6665 4.1.2.3: the unsubscribe failed for good; the XMPP side is ended all the same"),
XW(SUB_XW_ENDING, SUB_EV_SIP_ERR_RETRY, SUB_IDLE, X_UNSUBD | CANCEL | DROP, "the unsubscribe failed; the subscription expires by itself (RFC 6665 4.1.2.3)"),
XW(SUB_XW_ENDING, SUB_EV_SIP_ERR_INTERVAL, SUB_IDLE, X_UNSUBD | CANCEL | DROP, "a 423 to Expires: 0 cannot be followed; the subscription expires by itself"),
XWR(SUB_XW_ENDING, SUB_EV_SIP_NOTIFY_ACTIVE, SUB_XW_ENDING, 0, 200, "RFC 6665 4.1.2.3: NOTIFYs may precede the final one"),
XWR(SUB_XW_ENDING, SUB_EV_SIP_NOTIFY_PENDING, SUB_XW_ENDING, 0, 200, "RFC 6665 4.1.2.3: NOTIFYs may precede the final one"),
XWR(SUB_XW_ENDING, SUB_EV_SIP_NOTIFY_END_RETRY, SUB_IDLE, CANCEL | DROP, 200, "RFC 6665 4.1.2.3: the final NOTIFY ends the dialog"),
XWR(SUB_XW_ENDING, SUB_EV_SIP_NOTIFY_END_LATER, SUB_IDLE, CANCEL | DROP, 200, "RFC 6665 4.1.2.3: the final NOTIFY ends the dialog"),
XWR(SUB_XW_ENDING, SUB_EV_SIP_NOTIFY_END_FINAL, SUB_IDLE, CANCEL | DROP, 200, "RFC 6665 4.1.2.3: the final NOTIFY ends the dialog"),
XW(SUB_XW_ENDING, SUB_EV_TIMER_REFRESH, SUB_IDLE, CANCEL | DROP, "no final NOTIFY within SUB_ENDING_WAIT: forget the dialog"),
XW(SUB_XW_ENDING, SUB_EV_XMPP_SUBSCRIBE, SUB_XW_ASKING, SUB | CANCEL | PERSIST, "RFC 8048 5.2.1: a new request, a new dialog"),
XW(SUB_XW_ENDING, SUB_EV_RESTORE, SUB_XW_ENDING, X_UNSUBD | T_REF, "SIP dialogs do not survive a restart: confirm, wait the final NOTIFY's time, forget"),
XW(SUB_XW_ENDING, SUB_EV_SHUTDOWN, SUB_XW_ENDING, CANCEL, "the phase stays for the restore"),
};
/* clang-format on */

#undef CANCEL
#undef RESP
#undef NOTIFY
#undef SUB
#undef REFRESH
#undef RESEND
#undef UNSUB
#undef X_SUB
#undef X_UNSUB
#undef X_SUBD
#undef X_UNSUBD
#undef X_PROBE
#undef X_PRES
#undef X_UNAV
#undef T_EXP
#undef T_REF
#undef T_RETRY
#undef PERSIST
#undef DROP
#undef ACTIVE_
#undef PENDING_
#undef END_
#undef SW
#undef SWR
#undef SWN
#undef XW
#undef XWR

static const struct sub_limits default_limits = {
    .min_expires = 60,
    .max_expires = 7200,
    .default_expires = SUB_EXPIRES_PRESENCE_DEFAULT,
    .retry_min = 30,
    .retry_max = 1800,
    .shutdown_retry_after = 30,
};

void sub_limits_init(struct sub_limits *lim)
{
	if (lim)
		*lim = default_limits;
}

int sub_limits_check(const struct sub_limits *lim)
{
	if (!lim || lim->min_expires == 0 || lim->retry_min == 0 ||
	    lim->shutdown_retry_after == 0)
		return -EINVAL;
	if (lim->min_expires > lim->default_expires ||
	    lim->default_expires > lim->max_expires || lim->retry_min > lim->retry_max)
		return -EINVAL;
	return 0;
}

static const struct sub_limits *limits_or_default(const struct sub_limits *lim)
{
	return lim ? lim : &default_limits;
}

bool sub_event_applies(enum sub_dir dir, enum sub_event ev)
{
	if ((unsigned)dir >= SUB_DIR_COUNT || (unsigned)ev >= SUB_EV_COUNT)
		return false;
	return (event_props[ev].dirs & (1u << dir)) != 0;
}

bool sub_phase_applies(enum sub_dir dir, enum sub_phase phase)
{
	if ((unsigned)dir >= SUB_DIR_COUNT || (unsigned)phase >= SUB_PHASE_COUNT)
		return false;
	return (phase_props[phase].dirs & (1u << dir)) != 0;
}

bool sub_event_is_request(enum sub_event ev)
{
	return (unsigned)ev < SUB_EV_COUNT && event_props[ev].request;
}

const struct sub_rule *sub_rules(size_t *n)
{
	if (n)
		*n = NELEM(rules);
	return rules;
}

static int64_t add_seconds(int64_t now, uint32_t secs)
{
	if (now > INT64_MAX - (int64_t)secs)
		return INT64_MAX;
	return now + (int64_t)secs;
}

int64_t sub_refresh_at(int64_t now, uint32_t expires)
{
	uint32_t margin = expires / 5 < 60 ? expires / 5 : 60;
	uint32_t delay = expires - margin;

	return add_seconds(now, delay > 0 ? delay : 1);
}

uint32_t sub_retry_delay(const struct sub_limits *lim, uint32_t retries,
                         uint32_t retry_after)
{
	lim = limits_or_default(lim);
	if (retry_after)
		return retry_after < SUB_RETRY_AFTER_MAX ? retry_after
		                                         : SUB_RETRY_AFTER_MAX;
	uint64_t delay = lim->retry_min;
	for (uint32_t i = 1; i < retries && delay < lim->retry_max; i++)
		delay *= 2;
	return delay < lim->retry_max ? (uint32_t)delay : lim->retry_max;
}

/* Info an event cannot do without; anything else would make a malformed message. */
static bool info_fits(enum sub_event ev, const struct sub_event_info *info,
                      const struct sub_limits *lim)
{
	switch (ev) {
	case SUB_EV_SIP_SUBSCRIBE:
	case SUB_EV_SIP_REFRESH:
		return info->expires >= lim->min_expires;
	case SUB_EV_SIP_ERR_INTERVAL:
		return info->min_expires > 0;
	default:
		return true;
	}
}

static const struct sub_rule *find_rule(enum sub_dir dir, enum sub_phase phase,
                                        enum sub_event ev)
{
	for (size_t i = 0; i < NELEM(rules); i++)
		if (rules[i].dir == dir && rules[i].phase == phase &&
		    rules[i].event == ev)
			return &rules[i];
	return NULL;
}

/*
 * The Expires a row's SIP action carries: the grant for an accepted SUBSCRIBE
 * (shortened, never lengthened: RFC 6665 4.2.1.1), our Min-Expires in a 423, the
 * peer's Min-Expires when re-sending after its 423, our own ask otherwise.
 */
static uint32_t row_expires(const struct sub_rule *r, enum sub_event ev,
                            const struct sub_event_info *info,
                            const struct sub_limits *lim)
{
	if (r->actions & SUB_ACT_SIP_RESEND)
		return info->min_expires;
	if (r->actions & (SUB_ACT_SIP_SUBSCRIBE | SUB_ACT_SIP_REFRESH))
		return lim->default_expires;
	if (r->sip_status == 423)
		return lim->min_expires;
	if (r->sip_status == 200 &&
	    (ev == SUB_EV_SIP_SUBSCRIBE || ev == SUB_EV_SIP_REFRESH))
		return info->expires < lim->max_expires ? info->expires
		                                        : lim->max_expires;
	return 0;
}

int sub_transition(const struct sub_state *cur, enum sub_event ev,
                   const struct sub_event_info *info, const struct sub_limits *lim,
                   struct sub_result *res)
{
	if (!cur || !info || !res)
		return -EINVAL;
	if (lim && sub_limits_check(lim) != 0)
		return -EINVAL;
	lim = limits_or_default(lim);
	if (!sub_phase_applies(cur->dir, cur->phase) || !sub_event_applies(cur->dir, ev))
		return -EINVAL;
	if (!info_fits(ev, info, lim))
		return -EINVAL;

	struct sub_result out = {.next = *cur, .rule = -1};
	const struct sub_rule *r = find_rule(cur->dir, cur->phase, ev);
	if (!r) {
		*res = out;
		return 0;
	}

	out.rule = (int)(r - rules);
	out.next.phase = r->next;
	out.actions = r->actions;
	out.sip_status = r->sip_status;
	out.expires = row_expires(r, ev, info, lim);
	out.body = r->body;
	if (r->actions & SUB_ACT_SIP_NOTIFY) {
		out.notify.state = r->notify;
		out.notify.reason = r->reason;
		/* A NOTIFY answering a SUBSCRIBE states the grant (RFC 6665 4.2.2). */
		if (r->notify != SUB_SS_TERMINATED && out.sip_status == 200) {
			out.notify.expires = out.expires;
			out.notify.has_expires = true;
		}
		if (r->reason == SUB_REASON_PROBATION) {
			out.notify.retry_after = lim->shutdown_retry_after;
			out.notify.has_retry_after = true;
		}
	}

	if (r->actions & SUB_ACT_SCHEDULE_EXPIRY)
		out.timer_at = add_seconds(info->now, out.expires);
	if (r->actions & SUB_ACT_SCHEDULE_REFRESH) {
		/* A NOTIFY without expires leaves the refresh where the 2xx put it. */
		if (r->next == SUB_XW_ENDING)
			out.timer_at = add_seconds(info->now, SUB_ENDING_WAIT);
		else if (info->expires > 0)
			out.timer_at = sub_refresh_at(info->now, info->expires);
		else
			out.actions &= ~(unsigned)SUB_ACT_SCHEDULE_REFRESH;
	}
	if (r->actions & SUB_ACT_SCHEDULE_RETRY) {
		if (out.next.retries < UINT32_MAX)
			out.next.retries++;
		out.timer_at = add_seconds(
		    info->now, sub_retry_delay(lim, out.next.retries, info->retry_after));
	}
	/* The peer took the subscription: the next failure starts a fresh back-off. */
	if (r->next == SUB_IDLE || r->next == SUB_XW_ACTIVE || r->next == SUB_XW_PENDING)
		out.next.retries = 0;

	*res = out;
	return 0;
}

enum sub_event sub_subscribe_event(bool in_dialog, uint32_t expires,
                                   const struct sub_limits *lim)
{
	lim = limits_or_default(lim);
	if (expires == 0)
		return in_dialog ? SUB_EV_SIP_SIGNOUT : SUB_EV_SIP_FETCH;
	if (expires < lim->min_expires)
		return SUB_EV_SIP_TOO_BRIEF;
	return in_dialog ? SUB_EV_SIP_REFRESH : SUB_EV_SIP_SUBSCRIBE;
}

int sub_response_event(int status, const struct sub_event_info *info,
                       const struct sub_limits *lim, enum sub_event *ev)
{
	if (!info || !ev || status < 200 || status > 699)
		return -EINVAL;
	lim = limits_or_default(lim);
	if (status < 300) {
		*ev = info->expires > 0 ? SUB_EV_SIP_2XX : SUB_EV_SIP_2XX_ENDED;
		return 0;
	}
	enum sub_event e = status_class_events[status / 100];
	for (size_t i = 0; i < NELEM(status_events); i++)
		if (status_events[i].status == status)
			e = status_events[i].ev;
	/* Following a 423 must make progress and stay within policy, or a peer could
	 * keep the bridge re-sending (RFC 3261 21.4.17). */
	if (e == SUB_EV_SIP_ERR_INTERVAL &&
	    !(info->min_expires > info->expires && info->min_expires <= lim->max_expires))
		e = SUB_EV_SIP_ERR_RETRY;
	*ev = e;
	return 0;
}

int sub_notify_event(const struct sub_substate *ss, enum sub_event *ev)
{
	if (!ss || !ev || (unsigned)ss->state >= SUB_SS_COUNT ||
	    (unsigned)ss->reason >= SUB_REASON_COUNT)
		return -EINVAL;
	switch (ss->state) {
	case SUB_SS_ACTIVE:
		*ev = SUB_EV_SIP_NOTIFY_ACTIVE;
		return 0;
	case SUB_SS_PENDING:
	case SUB_SS_OTHER:
		*ev = SUB_EV_SIP_NOTIFY_PENDING;
		return 0;
	case SUB_SS_TERMINATED:
		break;
	default:
		return -EINVAL;
	}
	enum sub_event e = reason_events[ss->reason];
	/* RFC 6665 4.1.3: with retry-after the client SHOULD NOT re-subscribe sooner. */
	if (e == SUB_EV_SIP_NOTIFY_END_RETRY && ss->has_retry_after &&
	    ss->retry_after > 0)
		e = SUB_EV_SIP_NOTIFY_END_LATER;
	*ev = e;
	return 0;
}

/* ---- Subscription-State parsing (RFC 6665 8.2.3; RFC 3261 25.1) ---------------- */

struct cursor {
	const char *p;
	const char *end;
};

static bool is_token_char(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("-.!%*_+`'~", c) != NULL;
}

/* gen-value may also be a host: an IPv6 reference brings ':' '[' ']'. */
static bool is_gen_value_char(unsigned char c)
{
	return is_token_char(c) || c == ':' || c == '[' || c == ']';
}

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

/* Take a run of chars accepted by ok(); false if empty. */
static bool take_run(struct cursor *c, bool (*ok)(unsigned char), const char **s,
                     size_t *n)
{
	const char *start = c->p;

	while (c->p < c->end && ok((unsigned char)*c->p))
		c->p++;
	*s = start;
	*n = (size_t)(c->p - start);
	return *n > 0;
}

/* quoted-string: DQUOTE *(qdtext / quoted-pair) DQUOTE; no control characters. */
static bool take_quoted(struct cursor *c)
{
	if (c->p >= c->end || *c->p != '"')
		return false;
	for (c->p++; c->p < c->end; c->p++) {
		unsigned char ch = (unsigned char)*c->p;
		if (ch == '"') {
			c->p++;
			return true;
		}
		if (ch == '\\') {
			if (++c->p >= c->end)
				return false;
			ch = (unsigned char)*c->p;
			if (ch == '\r' || ch == '\n' || ch == '\0')
				return false;
			continue;
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return false;
	}
	return false;
}

static bool token_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* delta-seconds = 1*DIGIT, within 32 bits. */
static bool parse_delta(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > UINT32_MAX)
			return false;
	}
	*out = (uint32_t)v;
	return n > 0;
}

enum param_id { P_REASON, P_EXPIRES, P_RETRY_AFTER, P_GENERIC };

static const struct {
	const char *name;
	enum param_id id;
} params[] = {
    {"reason", P_REASON},
    {"expires", P_EXPIRES},
    {"retry-after", P_RETRY_AFTER},
};

static const struct {
	const char *name;
	enum sub_ss ss;
} substates[] = {
    {"active", SUB_SS_ACTIVE},
    {"pending", SUB_SS_PENDING},
    {"terminated", SUB_SS_TERMINATED},
};

/* Store one known parameter's value; false if repeated or malformed. */
static bool set_param(struct sub_substate *ss, enum param_id id, unsigned *seen,
                      const char *v, size_t vn)
{
	if (id == P_GENERIC)
		return true;
	if (*seen & (1u << id))
		return false;
	*seen |= 1u << id;
	switch (id) {
	case P_REASON:
		ss->reason = SUB_REASON_OTHER;
		for (size_t i = SUB_REASON_NONE + 1; i < SUB_REASON_OTHER; i++)
			if (token_is(v, vn, reason_names[i]))
				ss->reason = (enum sub_reason)i;
		return true;
	case P_EXPIRES:
		ss->has_expires = true;
		return parse_delta(v, vn, &ss->expires);
	case P_RETRY_AFTER:
		ss->has_retry_after = true;
		return parse_delta(v, vn, &ss->retry_after);
	default:
		return false;
	}
}

static int parse_param(struct cursor *c, struct sub_substate *ss, unsigned *seen)
{
	const char *name, *v = NULL;
	size_t nn, vn = 0;
	enum param_id id = P_GENERIC;

	skip_ws(c);
	if (!take_run(c, is_token_char, &name, &nn))
		return -EBADMSG;
	for (size_t i = 0; i < NELEM(params); i++)
		if (token_is(name, nn, params[i].name))
			id = params[i].id;
	skip_ws(c);
	if (c->p < c->end && *c->p == '=') {
		c->p++;
		skip_ws(c);
		if (c->p < c->end && *c->p == '"') {
			/* Only a generic parameter may be quoted. */
			if (id != P_GENERIC || !take_quoted(c))
				return -EBADMSG;
			return 0;
		}
		if (!take_run(c, id == P_GENERIC ? is_gen_value_char : is_token_char, &v,
		              &vn))
			return -EBADMSG;
	} else if (id != P_GENERIC) {
		return -EBADMSG;
	}
	return set_param(ss, id, seen, v, vn) ? 0 : -EBADMSG;
}

int sub_substate_parse(const char *s, size_t len, struct sub_substate *out)
{
	if (!s || !out)
		return -EINVAL;
	if (len > SUB_SUBSTATE_MAX)
		return -E2BIG;

	struct cursor c = {s, s + len};
	struct sub_substate ss = {.state = SUB_SS_OTHER};
	const char *tok;
	size_t tn;
	unsigned seen = 0;

	skip_ws(&c);
	if (!take_run(&c, is_token_char, &tok, &tn))
		return -EBADMSG;
	for (size_t i = 0; i < NELEM(substates); i++)
		if (token_is(tok, tn, substates[i].name))
			ss.state = substates[i].ss;
	for (;;) {
		skip_ws(&c);
		if (c.p == c.end)
			break;
		if (*c.p != ';')
			return -EBADMSG;
		c.p++;
		int err = parse_param(&c, &ss, &seen);
		if (err)
			return err;
	}
	*out = ss;
	return 0;
}

int sub_substate_format(const struct sub_substate *ss, char *buf, size_t size)
{
	if (!ss || !buf || size == 0)
		return -EINVAL;
	if (ss->state != SUB_SS_ACTIVE && ss->state != SUB_SS_PENDING &&
	    ss->state != SUB_SS_TERMINATED)
		return -EINVAL;
	if ((unsigned)ss->reason >= SUB_REASON_OTHER)
		return -EINVAL;

	char reason[32] = "", expires[24] = "", retry[28] = "";
	if (ss->reason != SUB_REASON_NONE)
		snprintf(reason, sizeof(reason), ";reason=%s", reason_names[ss->reason]);
	if (ss->has_expires)
		snprintf(expires, sizeof(expires), ";expires=%" PRIu32, ss->expires);
	if (ss->has_retry_after)
		snprintf(retry, sizeof(retry), ";retry-after=%" PRIu32, ss->retry_after);
	int n =
	    snprintf(buf, size, "%s%s%s%s", ss_names[ss->state], reason, expires, retry);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= size)
		return -ENOSPC;
	return n;
}

/* ---- names ----------------------------------------------------------------------- */

const char *sub_dir_name(enum sub_dir dir)
{
	return (unsigned)dir < SUB_DIR_COUNT ? dir_names[dir] : "?";
}

const char *sub_phase_name(enum sub_phase phase)
{
	return (unsigned)phase < SUB_PHASE_COUNT ? phase_props[phase].name : "?";
}

const char *sub_event_name(enum sub_event ev)
{
	return (unsigned)ev < SUB_EV_COUNT ? event_props[ev].name : "?";
}

const char *sub_ss_name(enum sub_ss ss)
{
	return (unsigned)ss < SUB_SS_COUNT ? ss_names[ss] : "?";
}

const char *sub_reason_name(enum sub_reason reason)
{
	return (unsigned)reason < SUB_REASON_COUNT ? reason_names[reason] : "?";
}

const char *sub_action_name(unsigned act)
{
	for (size_t i = 0; i < NELEM(action_names); i++)
		if (act == 1u << i)
			return action_names[i];
	return "?";
}

/* Append s at *used; on truncation keep buf terminated and report -ENOSPC. */
static int append(char *buf, size_t size, size_t *used, const char *s)
{
	int n = snprintf(buf + *used, size - *used, "%s", s);

	if (n < 0 || (size_t)n >= size - *used) {
		*used = size - 1;
		return -ENOSPC;
	}
	*used += (size_t)n;
	return 0;
}

int sub_actions_format(unsigned actions, char *buf, size_t size)
{
	size_t used = 0;

	if (!buf || size == 0)
		return -EINVAL;
	buf[0] = '\0';
	if (actions == 0)
		return append(buf, size, &used, "none") ? -ENOSPC : (int)used;
	for (unsigned i = 0; i < 32; i++) {
		unsigned bit = 1u << i;
		if (!(actions & bit))
			continue;
		if ((used && append(buf, size, &used, "|")) ||
		    append(buf, size, &used, sub_action_name(bit)))
			return -ENOSPC;
	}
	return (int)used;
}

int sub_dir_parse(const char *name, enum sub_dir *out)
{
	if (!name || !out)
		return -EINVAL;
	for (size_t i = 0; i < SUB_DIR_COUNT; i++)
		if (strcmp(name, dir_names[i]) == 0) {
			*out = (enum sub_dir)i;
			return 0;
		}
	return -EINVAL;
}

int sub_phase_parse(const char *name, enum sub_phase *out)
{
	if (!name || !out)
		return -EINVAL;
	for (size_t i = 0; i < SUB_PHASE_COUNT; i++)
		if (strcmp(name, phase_props[i].name) == 0) {
			*out = (enum sub_phase)i;
			return 0;
		}
	return -EINVAL;
}

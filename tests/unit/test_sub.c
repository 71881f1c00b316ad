#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/sub.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define NOW      ((int64_t)1700000000)

/* The test's own short names; the expectations below are written from the RFCs and
 * DESIGN.md, not copied from the table. */
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
#define T_ANY    (T_EXP | T_REF | T_RETRY)

#define SWD   SUB_DIR_SIP_WATCHER
#define XWD   SUB_DIR_XMPP_WATCHER
#define EV(x) SUB_EV_##x
#define IDLE  SUB_IDLE
#define SP    SUB_SW_PENDING
#define SA    SUB_SW_ACTIVE
#define SD    SUB_SW_DORMANT
#define SDP   SUB_SW_DORMANT_PENDING
#define XA    SUB_XW_ASKING
#define XP    SUB_XW_PENDING
#define XAB   SUB_XW_ASK_BACKOFF
#define XX    SUB_XW_ACTIVE
#define XR    SUB_XW_RECOVERING
#define XB    SUB_XW_BACKOFF
#define XE    SUB_XW_ENDING

#define IN(e)                                                                            \
	{                                                                                \
		.expires = (e)                                                           \
	}
#define IN_RA(e, ra)                                                                     \
	{                                                                                \
		.expires = (e), .retry_after = (ra)                                      \
	}
#define IN_423(asked, min)                                                               \
	{                                                                                \
		.expires = (asked), .min_expires = (min)                                 \
	}

static const char *acts(unsigned a, char *buf, size_t n)
{
	sub_actions_format(a, buf, n);
	return buf;
}

/* ---- one case per table row ------------------------------------------------------ */

struct row_case {
	const char *name;
	enum sub_dir dir;
	enum sub_phase phase;
	enum sub_event ev;
	enum sub_phase want;
	unsigned act;
	int status;
	struct sub_event_info in; /* .now is set by the runner */
	uint32_t exp;             /* sub_result.expires */
	enum sub_ss ss;           /* NOTIFY Subscription-State */
	enum sub_reason reason;
	enum sub_body body;
	uint32_t nexp;      /* NOTIFY expires=, 0: must be absent */
	uint32_t nretry;    /* NOTIFY retry-after=, 0: must be absent */
	int64_t timer;      /* timer_at - NOW when a SCHEDULE_* bit is set */
	uint32_t rin, rout; /* retries before and after */
	bool ignored;       /* the documented default: no row */
};

#define TERM SUB_SS_TERMINATED
#define ACT  SUB_SS_ACTIVE
#define PEND SUB_SS_PENDING

static const struct row_case row_cases[] = {
    /* SIP watcher, no entry */
    {"sw idle subscribe: 200, NOTIFY pending, ask the XMPP user", SWD, IDLE,
     EV(SIP_SUBSCRIBE), SP, RESP | NOTIFY | X_SUB | T_EXP | PERSIST, 200, IN(3600),
     .exp = 3600, .ss = PEND, .nexp = 3600, .timer = 3600},
    {"sw idle subscribe for a day: grant shortened to max_expires", SWD, IDLE,
     EV(SIP_SUBSCRIBE), SP, RESP | NOTIFY | X_SUB | T_EXP | PERSIST, 200, IN(86400),
     .exp = 7200, .ss = PEND, .nexp = 7200, .timer = 7200},
    {"sw idle fetch: 200, terminated;timeout, no document for an unauthorized pair", SWD,
     IDLE, EV(SIP_FETCH), IDLE, RESP | NOTIFY, 200, IN(0), .ss = TERM,
     .reason = SUB_REASON_TIMEOUT},
    {"sw idle too brief: 423 with Min-Expires", SWD, IDLE, EV(SIP_TOO_BRIEF), IDLE, RESP,
     423, IN(10), .exp = 60},
    {"sw idle refresh on an unknown dialog: 481", SWD, IDLE, EV(SIP_REFRESH), IDLE, RESP,
     481, IN(3600), .exp = 0},
    {"sw idle sign-out on an unknown dialog: 481", SWD, IDLE, EV(SIP_SIGNOUT), IDLE, RESP,
     481, IN(0), .exp = 0},
    {"sw idle unsubscribe on an unknown dialog: 481", SWD, IDLE, EV(SIP_UNSUBSCRIBE),
     IDLE, RESP, 481, IN(0), .exp = 0},
    {"sw idle stray subscribed: ignored (RFC 6121 3.1.6)", SWD, IDLE, EV(XMPP_SUBSCRIBED),
     IDLE, 0, 0, IN(0), .ignored = true},
    {"sw idle link up: nothing to re-announce", SWD, IDLE, EV(XMPP_LINK_UP), IDLE, 0, 0,
     IN(0), .ignored = true},
    /* SIP watcher, dialog up, awaiting the XMPP user */
    {"sw pending new dialog: NOTIFY pending again", SWD, SP, EV(SIP_SUBSCRIBE), SP,
     RESP | NOTIFY | T_EXP, 200, IN(3600), .exp = 3600, .ss = PEND, .nexp = 3600,
     .timer = 3600},
    {"sw pending fetch: no document before approval", SWD, SP, EV(SIP_FETCH), SP,
     RESP | NOTIFY, 200, IN(0), .ss = TERM, .reason = SUB_REASON_TIMEOUT},
    {"sw pending too brief: 423", SWD, SP, EV(SIP_TOO_BRIEF), SP, RESP, 423, IN(30),
     .exp = 60},
    {"sw pending refresh: 200, NOTIFY pending, new expiry", SWD, SP, EV(SIP_REFRESH), SP,
     RESP | NOTIFY | T_EXP, 200, IN(1800), .exp = 1800, .ss = PEND, .nexp = 1800,
     .timer = 1800},
    {"sw pending sign-out: dialog ends, roster request kept", SWD, SP, EV(SIP_SIGNOUT),
     SDP, RESP | NOTIFY | CANCEL | PERSIST, 200, IN(0), .ss = TERM,
     .reason = SUB_REASON_TIMEOUT},
    {"sw pending unsubscribe: request withdrawn, entry dropped", SWD, SP,
     EV(SIP_UNSUBSCRIBE), IDLE, RESP | NOTIFY | X_UNSUB | CANCEL | DROP, 200, IN(0),
     .ss = TERM, .reason = SUB_REASON_TIMEOUT},
    {"sw pending expiry: terminated;timeout, roster request kept", SWD, SP,
     EV(TIMER_EXPIRY), SDP, NOTIFY | CANCEL | PERSIST, 0, IN(0), .ss = TERM,
     .reason = SUB_REASON_TIMEOUT},
    {"sw pending approved: NOTIFY active with presence", SWD, SP, EV(XMPP_SUBSCRIBED), SA,
     NOTIFY | PERSIST, 0, IN(0), .ss = ACT, .body = SUB_BODY_CURRENT},
    {"sw pending denied: NOTIFY terminated;rejected", SWD, SP, EV(XMPP_UNSUBSCRIBED),
     IDLE, NOTIFY | CANCEL | DROP, 0, IN(0), .ss = TERM, .reason = SUB_REASON_REJECTED},
    {"sw pending link up: ask the XMPP user again", SWD, SP, EV(XMPP_LINK_UP), SP, X_SUB,
     0, IN(0), .exp = 0},
    {"sw pending link down: nothing to say", SWD, SP, EV(XMPP_LINK_DOWN), SP, 0, 0, IN(0),
     .ignored = true},
    {"sw pending restore: dialog lost, request kept", SWD, SP, EV(RESTORE), SDP,
     CANCEL | PERSIST, 0, IN(0), .exp = 0},
    {"sw pending shutdown: terminated;probation;retry-after", SWD, SP, EV(SHUTDOWN), SP,
     NOTIFY | CANCEL, 0, IN(0), .ss = TERM, .reason = SUB_REASON_PROBATION, .nretry = 30},
    /* SIP watcher, dialog up, authorized */
    {"sw active new dialog: NOTIFY active at once", SWD, SA, EV(SIP_SUBSCRIBE), SA,
     RESP | NOTIFY | T_EXP, 200, IN(3600), .exp = 3600, .ss = ACT,
     .body = SUB_BODY_CURRENT, .nexp = 3600, .timer = 3600},
    {"sw active fetch: terminated;timeout with presence", SWD, SA, EV(SIP_FETCH), SA,
     RESP | NOTIFY, 200, IN(0), .ss = TERM, .reason = SUB_REASON_TIMEOUT,
     .body = SUB_BODY_CURRENT},
    {"sw active too brief: 423, dialog untouched", SWD, SA, EV(SIP_TOO_BRIEF), SA, RESP,
     423, IN(59), .exp = 60},
    {"sw active refresh: 200, NOTIFY active, new expiry", SWD, SA, EV(SIP_REFRESH), SA,
     RESP | NOTIFY | T_EXP, 200, IN(3600), .exp = 3600, .ss = ACT,
     .body = SUB_BODY_CURRENT, .nexp = 3600, .timer = 3600},
    /* RFC 8048 5.3.3 step 1: the NOTIFY carries basic closed, terminated;timeout */
    {"sw active sign-out: closed, terminated;timeout, roster subscription kept", SWD, SA,
     EV(SIP_SIGNOUT), SD, RESP | NOTIFY | CANCEL | PERSIST, 200, IN(0), .ss = TERM,
     .reason = SUB_REASON_TIMEOUT, .body = SUB_BODY_CLOSED},
    {"sw active unsubscribe: closed, XMPP unsubscribe, entry dropped", SWD, SA,
     EV(SIP_UNSUBSCRIBE), IDLE, RESP | NOTIFY | X_UNSUB | CANCEL | DROP, 200, IN(0),
     .ss = TERM, .reason = SUB_REASON_TIMEOUT, .body = SUB_BODY_CLOSED},
    {"sw active expiry: terminated;timeout, roster subscription kept", SWD, SA,
     EV(TIMER_EXPIRY), SD, NOTIFY | CANCEL | PERSIST, 0, IN(0), .ss = TERM,
     .reason = SUB_REASON_TIMEOUT},
    {"sw active revoked: NOTIFY terminated;rejected", SWD, SA, EV(XMPP_UNSUBSCRIBED),
     IDLE, NOTIFY | CANCEL | DROP, 0, IN(0), .ss = TERM, .reason = SUB_REASON_REJECTED},
    {"sw active duplicate approval: ignored", SWD, SA, EV(XMPP_SUBSCRIBED), SA, 0, 0,
     IN(0), .ignored = true},
    {"sw active link down: NOTIFY closed", SWD, SA, EV(XMPP_LINK_DOWN), SA, NOTIFY, 0,
     IN(0), .ss = ACT, .body = SUB_BODY_CLOSED},
    {"sw active link up: probe", SWD, SA, EV(XMPP_LINK_UP), SA, X_PROBE, 0, IN(0),
     .exp = 0},
    {"sw active restore: dialog lost, roster kept", SWD, SA, EV(RESTORE), SD,
     CANCEL | PERSIST, 0, IN(0), .exp = 0},
    {"sw active shutdown: terminated;probation;retry-after", SWD, SA, EV(SHUTDOWN), SA,
     NOTIFY | CANCEL, 0, IN(0), .ss = TERM, .reason = SUB_REASON_PROBATION, .nretry = 30},
    /* SIP watcher signed out, roster kept */
    {"sw dormant subscribe: NOTIFY active at once, no new XMPP request", SWD, SD,
     EV(SIP_SUBSCRIBE), SA, RESP | NOTIFY | T_EXP | PERSIST, 200, IN(3600), .exp = 3600,
     .ss = ACT, .body = SUB_BODY_CURRENT, .nexp = 3600, .timer = 3600},
    {"sw dormant fetch: presence from the cache", SWD, SD, EV(SIP_FETCH), SD,
     RESP | NOTIFY, 200, IN(0), .ss = TERM, .reason = SUB_REASON_TIMEOUT,
     .body = SUB_BODY_CURRENT},
    {"sw dormant too brief: 423", SWD, SD, EV(SIP_TOO_BRIEF), SD, RESP, 423, IN(1),
     .exp = 60},
    {"sw dormant refresh of the lost dialog: 481", SWD, SD, EV(SIP_REFRESH), SD, RESP,
     481, IN(3600), .exp = 0},
    {"sw dormant sign-out again: 481", SWD, SD, EV(SIP_SIGNOUT), SD, RESP, 481, IN(0),
     .exp = 0},
    {"sw dormant unsubscribe: 481 but the removal is carried out", SWD, SD,
     EV(SIP_UNSUBSCRIBE), IDLE, RESP | X_UNSUB | DROP, 481, IN(0), .exp = 0},
    {"sw dormant revoked: dropped quietly", SWD, SD, EV(XMPP_UNSUBSCRIBED), IDLE, DROP, 0,
     IN(0), .exp = 0},
    {"sw dormant link up: probe for the cache", SWD, SD, EV(XMPP_LINK_UP), SD, X_PROBE, 0,
     IN(0), .exp = 0},
    {"sw dormant stale expiry timer: ignored", SWD, SD, EV(TIMER_EXPIRY), SD, 0, 0, IN(0),
     .ignored = true},
    {"sw dormant restore: nothing to fix", SWD, SD, EV(RESTORE), SD, 0, 0, IN(0),
     .ignored = true},
    /* SIP watcher signed out before approval */
    {"sw dormant-pending subscribe: NOTIFY pending", SWD, SDP, EV(SIP_SUBSCRIBE), SP,
     RESP | NOTIFY | T_EXP | PERSIST, 200, IN(3600), .exp = 3600, .ss = PEND,
     .nexp = 3600, .timer = 3600},
    {"sw dormant-pending fetch: no document", SWD, SDP, EV(SIP_FETCH), SDP, RESP | NOTIFY,
     200, IN(0), .ss = TERM, .reason = SUB_REASON_TIMEOUT},
    {"sw dormant-pending too brief: 423", SWD, SDP, EV(SIP_TOO_BRIEF), SDP, RESP, 423,
     IN(2), .exp = 60},
    {"sw dormant-pending refresh: 481", SWD, SDP, EV(SIP_REFRESH), SDP, RESP, 481,
     IN(3600), .exp = 0},
    {"sw dormant-pending sign-out: 481", SWD, SDP, EV(SIP_SIGNOUT), SDP, RESP, 481, IN(0),
     .exp = 0},
    {"sw dormant-pending unsubscribe: 481, request withdrawn", SWD, SDP,
     EV(SIP_UNSUBSCRIBE), IDLE, RESP | X_UNSUB | DROP, 481, IN(0), .exp = 0},
    {"sw dormant-pending approved: kept for the next sign-in", SWD, SDP,
     EV(XMPP_SUBSCRIBED), SD, PERSIST, 0, IN(0), .exp = 0},
    {"sw dormant-pending denied: dropped", SWD, SDP, EV(XMPP_UNSUBSCRIBED), IDLE, DROP, 0,
     IN(0), .exp = 0},
    {"sw dormant-pending link up: ask again", SWD, SDP, EV(XMPP_LINK_UP), SDP, X_SUB, 0,
     IN(0), .exp = 0},

    /* XMPP watcher, no entry */
    {"xw idle stray 2xx: unsubscribe it", XWD, IDLE, EV(SIP_2XX), IDLE, UNSUB, 0,
     IN(3600), .exp = 0},
    {"xw idle 2xx to our unsubscribe: ignored, no loop", XWD, IDLE, EV(SIP_2XX_ENDED),
     IDLE, 0, 0, IN(0), .ignored = true},
    {"xw idle NOTIFY active for nobody: 481", XWD, IDLE, EV(SIP_NOTIFY_ACTIVE), IDLE,
     RESP, 481, IN(3600), .exp = 0},
    {"xw idle NOTIFY pending for nobody: 481", XWD, IDLE, EV(SIP_NOTIFY_PENDING), IDLE,
     RESP, 481, IN(3600), .exp = 0},
    {"xw idle NOTIFY terminated (retry) for nobody: 481", XWD, IDLE,
     EV(SIP_NOTIFY_END_RETRY), IDLE, RESP, 481, IN(0), .exp = 0},
    {"xw idle NOTIFY terminated (later) for nobody: 481", XWD, IDLE,
     EV(SIP_NOTIFY_END_LATER), IDLE, RESP, 481, IN(0), .exp = 0},
    {"xw idle NOTIFY terminated (final) for nobody: 481", XWD, IDLE,
     EV(SIP_NOTIFY_END_FINAL), IDLE, RESP, 481, IN(0), .exp = 0},
    {"xw idle subscribe: SIP SUBSCRIBE", XWD, IDLE, EV(XMPP_SUBSCRIBE), XA, SUB | PERSIST,
     0, IN(0), .exp = 3600},
    {"xw idle probe: adopt the forgotten subscription", XWD, IDLE, EV(XMPP_PROBE), XA,
     SUB | PERSIST, 0, IN(0), .exp = 3600},
    {"xw idle unsubscribe: ignored", XWD, IDLE, EV(XMPP_UNSUBSCRIBE), IDLE, 0, 0, IN(0),
     .ignored = true},
    {"xw idle error response: ignored", XWD, IDLE, EV(SIP_ERR_GONE), IDLE, 0, 0, IN(0),
     .ignored = true},
    /* XMPP watcher, asking */
    {"xw asking 2xx: schedule refresh 60 s early", XWD, XA, EV(SIP_2XX), XA, T_REF, 0,
     IN(3600), .timer = 3540},
    {"xw asking 408: back off", XWD, XA, EV(SIP_ERR_GONE), XAB, T_RETRY | PERSIST, 0,
     IN(0), .timer = 30, .rout = 1},
    {"xw asking 403: unsubscribed", XWD, XA, EV(SIP_ERR_REJECT), IDLE,
     X_UNSUBD | CANCEL | DROP, 0, IN(0), .exp = 0},
    {"xw asking 503 Retry-After 120: wait 120 s", XWD, XA, EV(SIP_ERR_RETRY), XAB,
     T_RETRY | PERSIST, 0, IN_RA(0, 120), .timer = 120, .rout = 1},
    {"xw asking 423: resend with Min-Expires", XWD, XA, EV(SIP_ERR_INTERVAL), XA, RESEND,
     0, IN_423(3600, 5000), .exp = 5000},
    {"xw asking NOTIFY active: subscribed and presence", XWD, XA, EV(SIP_NOTIFY_ACTIVE),
     XX, RESP | X_SUBD | X_PRES | T_REF | PERSIST, 200, IN(3600), .timer = 3540},
    {"xw asking NOTIFY pending: wait, request stays pending", XWD, XA,
     EV(SIP_NOTIFY_PENDING), XP, RESP | T_REF | PERSIST, 200, IN(600), .timer = 540},
    {"xw asking NOTIFY deactivated: back off, not a tight loop", XWD, XA,
     EV(SIP_NOTIFY_END_RETRY), XAB, RESP | T_RETRY | PERSIST, 200, IN(0), .timer = 30,
     .rout = 1},
    {"xw asking NOTIFY probation retry-after 300", XWD, XA, EV(SIP_NOTIFY_END_LATER), XAB,
     RESP | T_RETRY | PERSIST, 200, IN_RA(0, 300), .timer = 300, .rout = 1},
    {"xw asking NOTIFY rejected: unsubscribed", XWD, XA, EV(SIP_NOTIFY_END_FINAL), IDLE,
     RESP | X_UNSUBD | CANCEL | DROP, 200, IN(0), .exp = 0},
    {"xw asking refresh due: in-dialog SUBSCRIBE", XWD, XA, EV(TIMER_REFRESH), XA,
     REFRESH, 0, IN(0), .exp = 3600},
    {"xw asking watcher withdraws: unsubscribe, wait for the final NOTIFY", XWD, XA,
     EV(XMPP_UNSUBSCRIBE), XE, UNSUB | CANCEL | T_REF | PERSIST, 0, IN(0), .exp = 0,
     .timer = SUB_ENDING_WAIT},
    {"xw asking restore: SUBSCRIBE again", XWD, XA, EV(RESTORE), XA, SUB | CANCEL, 0,
     IN(0), .exp = 3600},
    {"xw asking shutdown: unsubscribe, keep the phase", XWD, XA, EV(SHUTDOWN), XA,
     UNSUB | CANCEL, 0, IN(0), .exp = 0},
    {"xw asking repeated subscribe: ignored", XWD, XA, EV(XMPP_SUBSCRIBE), XA, 0, 0,
     IN(0), .ignored = true},
    {"xw asking probe: reveals nothing", XWD, XA, EV(XMPP_PROBE), XA, 0, 0, IN(0),
     .ignored = true},
    /* XMPP watcher, pending on the SIP side */
    {"xw pending 2xx to refresh: reschedule", XWD, XP, EV(SIP_2XX), XP, T_REF, 0,
     IN(3600), .timer = 3540},
    {"xw pending 481: new SUBSCRIBE", XWD, XP, EV(SIP_ERR_GONE), XA,
     SUB | CANCEL | PERSIST, 0, IN(0), .exp = 3600},
    {"xw pending 404: unsubscribed", XWD, XP, EV(SIP_ERR_REJECT), IDLE,
     X_UNSUBD | CANCEL | DROP, 0, IN(0), .exp = 0},
    {"xw pending 503: back off", XWD, XP, EV(SIP_ERR_RETRY), XAB, T_RETRY | PERSIST, 0,
     IN(0), .timer = 30, .rout = 1},
    {"xw pending 423: resend", XWD, XP, EV(SIP_ERR_INTERVAL), XP, RESEND, 0,
     IN_423(600, 1200), .exp = 1200},
    {"xw pending NOTIFY active: subscribed and presence", XWD, XP, EV(SIP_NOTIFY_ACTIVE),
     XX, RESP | X_SUBD | X_PRES | T_REF | PERSIST, 200, IN(3600), .timer = 3540},
    {"xw pending NOTIFY pending: 200, reschedule", XWD, XP, EV(SIP_NOTIFY_PENDING), XP,
     RESP | T_REF, 200, IN(100), .timer = 80},
    {"xw pending NOTIFY pending without expires: timer left alone", XWD, XP,
     EV(SIP_NOTIFY_PENDING), XP, RESP, 200, IN(0), .exp = 0},
    {"xw pending NOTIFY deactivated: new SUBSCRIBE", XWD, XP, EV(SIP_NOTIFY_END_RETRY),
     XA, RESP | SUB | CANCEL | PERSIST, 200, IN(0), .exp = 3600},
    {"xw pending NOTIFY probation: back off", XWD, XP, EV(SIP_NOTIFY_END_LATER), XAB,
     RESP | T_RETRY | PERSIST, 200, IN(0), .timer = 30, .rout = 1},
    {"xw pending NOTIFY giveup: unsubscribed", XWD, XP, EV(SIP_NOTIFY_END_FINAL), IDLE,
     RESP | X_UNSUBD | CANCEL | DROP, 200, IN(0), .exp = 0},
    {"xw pending refresh due", XWD, XP, EV(TIMER_REFRESH), XP, REFRESH, 0, IN(0),
     .exp = 3600},
    {"xw pending watcher withdraws: wait for the final NOTIFY", XWD, XP,
     EV(XMPP_UNSUBSCRIBE), XE, UNSUB | CANCEL | T_REF | PERSIST, 0, IN(0), .exp = 0,
     .timer = SUB_ENDING_WAIT},
    {"xw pending restore: new SUBSCRIBE", XWD, XP, EV(RESTORE), XA,
     SUB | CANCEL | PERSIST, 0, IN(0), .exp = 3600},
    {"xw pending shutdown: unsubscribe", XWD, XP, EV(SHUTDOWN), XP, UNSUB | CANCEL, 0,
     IN(0), .exp = 0},
    /* XMPP watcher, request pending, backing off */
    {"xw ask-backoff late 2xx: unsubscribe it", XWD, XAB, EV(SIP_2XX), XAB, UNSUB, 0,
     IN(3600), .rin = 1, .rout = 1},
    {"xw ask-backoff NOTIFY active: 481", XWD, XAB, EV(SIP_NOTIFY_ACTIVE), XAB, RESP, 481,
     IN(3600), .exp = 0},
    {"xw ask-backoff NOTIFY pending: 481", XWD, XAB, EV(SIP_NOTIFY_PENDING), XAB, RESP,
     481, IN(3600), .exp = 0},
    {"xw ask-backoff NOTIFY terminated (retry): 481", XWD, XAB, EV(SIP_NOTIFY_END_RETRY),
     XAB, RESP, 481, IN(0), .exp = 0},
    {"xw ask-backoff NOTIFY terminated (later): 481", XWD, XAB, EV(SIP_NOTIFY_END_LATER),
     XAB, RESP, 481, IN(0), .exp = 0},
    {"xw ask-backoff NOTIFY terminated (final): 481", XWD, XAB, EV(SIP_NOTIFY_END_FINAL),
     XAB, RESP, 481, IN(0), .exp = 0},
    {"xw ask-backoff retry due: SUBSCRIBE", XWD, XAB, EV(TIMER_RETRY), XA,
     SUB | CANCEL | PERSIST, 0, IN(0), .exp = 3600, .rin = 2, .rout = 2},
    {"xw ask-backoff watcher withdraws: drop", XWD, XAB, EV(XMPP_UNSUBSCRIBE), IDLE,
     CANCEL | DROP, 0, IN(0), .rin = 3},
    {"xw ask-backoff restore: SUBSCRIBE", XWD, XAB, EV(RESTORE), XA,
     SUB | CANCEL | PERSIST, 0, IN(0), .exp = 3600},
    {"xw ask-backoff shutdown: cancel the timer", XWD, XAB, EV(SHUTDOWN), XAB, CANCEL, 0,
     IN(0), .exp = 0},
    {"xw ask-backoff stale refresh timer: ignored", XWD, XAB, EV(TIMER_REFRESH), XAB, 0,
     0, IN(0), .ignored = true},
    /* XMPP watcher, active */
    {"xw active 2xx to refresh", XWD, XX, EV(SIP_2XX), XX, T_REF, 0, IN(3600),
     .timer = 3540},
    {"xw active refresh 481: new subscription", XWD, XX, EV(SIP_ERR_GONE), XR,
     SUB | CANCEL | PERSIST, 0, IN(0), .exp = 3600},
    {"xw active refresh 403: unsubscribed, unavailable", XWD, XX, EV(SIP_ERR_REJECT),
     IDLE, X_UNSUBD | X_UNAV | CANCEL | DROP, 0, IN(0), .exp = 0},
    {"xw active refresh 503: unavailable, back off", XWD, XX, EV(SIP_ERR_RETRY), XB,
     X_UNAV | T_RETRY | PERSIST, 0, IN(0), .timer = 30, .rout = 1},
    {"xw active refresh 423: resend", XWD, XX, EV(SIP_ERR_INTERVAL), XX, RESEND, 0,
     IN_423(3600, 7200), .exp = 7200},
    {"xw active NOTIFY active: presence update", XWD, XX, EV(SIP_NOTIFY_ACTIVE), XX,
     RESP | X_PRES | T_REF, 200, IN(1200), .timer = 1140},
    {"xw active NOTIFY pending: unavailable, reveal nothing", XWD, XX,
     EV(SIP_NOTIFY_PENDING), XR, RESP | X_UNAV | T_REF | PERSIST, 200, IN(3600),
     .timer = 3540},
    {"xw active NOTIFY deactivated: re-subscribe now", XWD, XX, EV(SIP_NOTIFY_END_RETRY),
     XR, RESP | SUB | CANCEL | PERSIST, 200, IN(0), .exp = 3600},
    {"xw active NOTIFY probation: unavailable, back off", XWD, XX,
     EV(SIP_NOTIFY_END_LATER), XB, RESP | X_UNAV | T_RETRY | PERSIST, 200, IN_RA(0, 45),
     .timer = 45, .rout = 1},
    {"xw active NOTIFY noresource: unsubscribed, unavailable", XWD, XX,
     EV(SIP_NOTIFY_END_FINAL), IDLE, RESP | X_UNSUBD | X_UNAV | CANCEL | DROP, 200, IN(0),
     .exp = 0},
    {"xw active refresh due", XWD, XX, EV(TIMER_REFRESH), XX, REFRESH, 0, IN(0),
     .exp = 3600},
    {"xw active repeated subscribe: auto-reply subscribed", XWD, XX, EV(XMPP_SUBSCRIBE),
     XX, X_SUBD | X_PRES, 0, IN(0), .exp = 0},
    {"xw active watcher leaves: Expires 0, unavailable, wait for the final NOTIFY", XWD,
     XX, EV(XMPP_UNSUBSCRIBE), XE, UNSUB | X_UNAV | CANCEL | T_REF | PERSIST, 0, IN(0),
     .exp = 0, .timer = SUB_ENDING_WAIT},
    {"xw active probe: cached presence and a new SUBSCRIBE (RFC 8048 5.2.2)", XWD, XX,
     EV(XMPP_PROBE), XX, REFRESH | X_PRES, 0, IN(0), .exp = 3600},
    {"xw active link up: re-announce", XWD, XX, EV(XMPP_LINK_UP), XX, X_SUBD | X_PRES, 0,
     IN(0), .exp = 0},
    {"xw active link down: nothing to send on a dead link", XWD, XX, EV(XMPP_LINK_DOWN),
     XX, 0, 0, IN(0), .ignored = true},
    {"xw active restore: re-subscribe", XWD, XX, EV(RESTORE), XR, SUB | CANCEL | PERSIST,
     0, IN(0), .exp = 3600},
    {"xw active shutdown: unsubscribe, unavailable", XWD, XX, EV(SHUTDOWN), XX,
     UNSUB | X_UNAV | CANCEL, 0, IN(0), .exp = 0},
    {"xw active stale retry timer: ignored", XWD, XX, EV(TIMER_RETRY), XX, 0, 0, IN(0),
     .ignored = true},
    /* XMPP watcher, recovering */
    {"xw recovering 2xx", XWD, XR, EV(SIP_2XX), XR, T_REF, 0, IN(3600), .timer = 3540,
     .rin = 2, .rout = 2},
    {"xw recovering 481 again: unavailable, back off", XWD, XR, EV(SIP_ERR_GONE), XB,
     X_UNAV | T_RETRY | PERSIST, 0, IN(0), .timer = 60, .rin = 1, .rout = 2},
    {"xw recovering 603: unsubscribed, unavailable", XWD, XR, EV(SIP_ERR_REJECT), IDLE,
     X_UNSUBD | X_UNAV | CANCEL | DROP, 0, IN(0), .rin = 4},
    {"xw recovering 500: back off", XWD, XR, EV(SIP_ERR_RETRY), XB,
     X_UNAV | T_RETRY | PERSIST, 0, IN(0), .timer = 30, .rout = 1},
    {"xw recovering 423: resend", XWD, XR, EV(SIP_ERR_INTERVAL), XR, RESEND, 0,
     IN_423(3600, 4000), .exp = 4000},
    {"xw recovering NOTIFY active: presence, retries reset", XWD, XR,
     EV(SIP_NOTIFY_ACTIVE), XX, RESP | X_PRES | T_REF | PERSIST, 200, IN(3600),
     .timer = 3540, .rin = 4, .rout = 0},
    {"xw recovering NOTIFY pending: wait", XWD, XR, EV(SIP_NOTIFY_PENDING), XR,
     RESP | T_REF, 200, IN(3600), .timer = 3540},
    {"xw recovering NOTIFY deactivated again: back off", XWD, XR,
     EV(SIP_NOTIFY_END_RETRY), XB, RESP | X_UNAV | T_RETRY | PERSIST, 200, IN(0),
     .timer = 30, .rout = 1},
    {"xw recovering NOTIFY probation: back off", XWD, XR, EV(SIP_NOTIFY_END_LATER), XB,
     RESP | X_UNAV | T_RETRY | PERSIST, 200, IN_RA(0, 600), .timer = 600, .rout = 1},
    {"xw recovering NOTIFY rejected: unsubscribed", XWD, XR, EV(SIP_NOTIFY_END_FINAL),
     IDLE, RESP | X_UNSUBD | X_UNAV | CANCEL | DROP, 200, IN(0), .exp = 0},
    {"xw recovering refresh due", XWD, XR, EV(TIMER_REFRESH), XR, REFRESH, 0, IN(0),
     .exp = 3600},
    {"xw recovering repeated subscribe: subscribed", XWD, XR, EV(XMPP_SUBSCRIBE), XR,
     X_SUBD, 0, IN(0), .exp = 0},
    {"xw recovering watcher leaves: wait for the final NOTIFY", XWD, XR,
     EV(XMPP_UNSUBSCRIBE), XE, UNSUB | X_UNAV | CANCEL | T_REF | PERSIST, 0, IN(0),
     .exp = 0, .timer = SUB_ENDING_WAIT},
    {"xw recovering probe: unavailable", XWD, XR, EV(XMPP_PROBE), XR, X_UNAV, 0, IN(0),
     .exp = 0},
    {"xw recovering link up: subscribed, unavailable", XWD, XR, EV(XMPP_LINK_UP), XR,
     X_SUBD | X_UNAV, 0, IN(0), .exp = 0},
    {"xw recovering restore: SUBSCRIBE", XWD, XR, EV(RESTORE), XR, SUB | CANCEL, 0, IN(0),
     .exp = 3600},
    {"xw recovering shutdown", XWD, XR, EV(SHUTDOWN), XR, UNSUB | X_UNAV | CANCEL, 0,
     IN(0), .exp = 0},
    /* XMPP watcher, backing off */
    {"xw backoff late 2xx: unsubscribe it", XWD, XB, EV(SIP_2XX), XB, UNSUB, 0, IN(3600),
     .exp = 0},
    {"xw backoff NOTIFY active: 481", XWD, XB, EV(SIP_NOTIFY_ACTIVE), XB, RESP, 481,
     IN(3600), .exp = 0},
    {"xw backoff NOTIFY pending: 481", XWD, XB, EV(SIP_NOTIFY_PENDING), XB, RESP, 481,
     IN(3600), .exp = 0},
    {"xw backoff NOTIFY terminated (retry): 481", XWD, XB, EV(SIP_NOTIFY_END_RETRY), XB,
     RESP, 481, IN(0), .exp = 0},
    {"xw backoff NOTIFY terminated (later): 481", XWD, XB, EV(SIP_NOTIFY_END_LATER), XB,
     RESP, 481, IN(0), .exp = 0},
    {"xw backoff NOTIFY terminated (final): 481", XWD, XB, EV(SIP_NOTIFY_END_FINAL), XB,
     RESP, 481, IN(0), .exp = 0},
    {"xw backoff retry due: SUBSCRIBE", XWD, XB, EV(TIMER_RETRY), XR,
     SUB | CANCEL | PERSIST, 0, IN(0), .exp = 3600, .rin = 5, .rout = 5},
    {"xw backoff repeated subscribe: subscribed", XWD, XB, EV(XMPP_SUBSCRIBE), XB, X_SUBD,
     0, IN(0), .exp = 0},
    {"xw backoff watcher leaves: drop", XWD, XB, EV(XMPP_UNSUBSCRIBE), IDLE,
     CANCEL | DROP, 0, IN(0), .rin = 5},
    {"xw backoff probe: unavailable", XWD, XB, EV(XMPP_PROBE), XB, X_UNAV, 0, IN(0),
     .exp = 0},
    {"xw backoff link up: subscribed, unavailable", XWD, XB, EV(XMPP_LINK_UP), XB,
     X_SUBD | X_UNAV, 0, IN(0), .exp = 0},
    {"xw backoff restore: SUBSCRIBE", XWD, XB, EV(RESTORE), XR, SUB | CANCEL | PERSIST, 0,
     IN(0), .exp = 3600},
    {"xw backoff shutdown: cancel the timer", XWD, XB, EV(SHUTDOWN), XB, CANCEL, 0, IN(0),
     .exp = 0},
    {"xw backoff stale error: ignored", XWD, XB, EV(SIP_ERR_REJECT), XB, 0, 0, IN(0),
     .ignored = true},
    /* XMPP watcher unsubscribed, SUBSCRIBE Expires: 0 sent (RFC 8048 5.2.3 F17-F25) */
    {"xw ending 200 to Expires 0: unsubscribed (RFC 8048 5.2.3 F21)", XWD, XE,
     EV(SIP_2XX_ENDED), XE, X_UNSUBD, 0, IN(0), .exp = 0},
    {"xw ending late 2xx of the first SUBSCRIBE: Expires 0 in its dialog", XWD, XE,
     EV(SIP_2XX), XE, UNSUB, 0, IN(3600), .exp = 0},
    {"xw ending 481 to Expires 0: gone, unsubscribed", XWD, XE, EV(SIP_ERR_GONE), IDLE,
     X_UNSUBD | CANCEL | DROP, 0, IN(0), .exp = 0},
    {"xw ending 403 to Expires 0: unsubscribed", XWD, XE, EV(SIP_ERR_REJECT), IDLE,
     X_UNSUBD | CANCEL | DROP, 0, IN(0), .exp = 0},
    {"xw ending 503 to Expires 0: unsubscribed, it expires by itself", XWD, XE,
     EV(SIP_ERR_RETRY), IDLE, X_UNSUBD | CANCEL | DROP, 0, IN(0), .exp = 0},
    {"xw ending 423 to Expires 0: unsubscribed", XWD, XE, EV(SIP_ERR_INTERVAL), IDLE,
     X_UNSUBD | CANCEL | DROP, 0, IN_423(0, 60), .exp = 0},
    {"xw ending NOTIFY active before the final one: 200 (RFC 6665 4.1.2.3)", XWD, XE,
     EV(SIP_NOTIFY_ACTIVE), XE, RESP, 200, IN(100), .exp = 0},
    {"xw ending NOTIFY pending: 200", XWD, XE, EV(SIP_NOTIFY_PENDING), XE, RESP, 200,
     IN(100), .exp = 0},
    {"xw ending final NOTIFY (timeout): 200, not 481 (RFC 6665 4.1.2.3)", XWD, XE,
     EV(SIP_NOTIFY_END_RETRY), IDLE, RESP | CANCEL | DROP, 200, IN(0), .exp = 0},
    {"xw ending final NOTIFY (probation): 200", XWD, XE, EV(SIP_NOTIFY_END_LATER), IDLE,
     RESP | CANCEL | DROP, 200, IN_RA(0, 30), .exp = 0},
    {"xw ending final NOTIFY (noresource): 200", XWD, XE, EV(SIP_NOTIFY_END_FINAL), IDLE,
     RESP | CANCEL | DROP, 200, IN(0), .exp = 0},
    {"xw ending no final NOTIFY in time: forget the dialog", XWD, XE, EV(TIMER_REFRESH),
     IDLE, CANCEL | DROP, 0, IN(0), .exp = 0},
    {"xw ending subscribes again: a new dialog (RFC 8048 5.2.1)", XWD, XE,
     EV(XMPP_SUBSCRIBE), XA, SUB | CANCEL | PERSIST, 0, IN(0), .exp = 3600},
    {"xw ending restore: unsubscribed, wait once more, then forget", XWD, XE, EV(RESTORE),
     XE, X_UNSUBD | T_REF, 0, IN(0), .timer = SUB_ENDING_WAIT},
    {"xw ending shutdown: keep the phase", XWD, XE, EV(SHUTDOWN), XE, CANCEL, 0, IN(0),
     .exp = 0},
    {"xw ending repeated unsubscribe: ignored", XWD, XE, EV(XMPP_UNSUBSCRIBE), XE, 0, 0,
     IN(0), .ignored = true},
    {"xw ending probe: reveals nothing", XWD, XE, EV(XMPP_PROBE), XE, 0, 0, IN(0),
     .ignored = true},
};

static void check_row_case(const struct row_case *c, bool *hit, size_t nrules)
{
	char b1[256], b2[256];
	struct sub_state cur = {c->dir, c->phase, c->rin};
	struct sub_event_info in = c->in;
	struct sub_result res;

	in.now = NOW;
	memset(&res, 0xa5, sizeof(res));
	int rc = sub_transition(&cur, c->ev, &in, NULL, &res);
	if (rc != 0)
		fail_msg("case '%s': returned %d", c->name, rc);
	if (c->ignored != (res.rule < 0))
		fail_msg("case '%s': rule %d, want %s", c->name, res.rule,
		         c->ignored ? "the default" : "a row");
	if (res.rule >= 0) {
		if ((size_t)res.rule >= nrules)
			fail_msg("case '%s': rule %d out of range", c->name, res.rule);
		hit[res.rule] = true;
	}
	if (res.next.dir != c->dir || res.next.phase != c->want)
		fail_msg("case '%s': next %s, want %s", c->name,
		         sub_phase_name(res.next.phase), sub_phase_name(c->want));
	if (res.actions != c->act)
		fail_msg("case '%s': actions %s, want %s", c->name,
		         acts(res.actions, b1, sizeof(b1)), acts(c->act, b2, sizeof(b2)));
	if (res.sip_status != c->status)
		fail_msg("case '%s': status %d, want %d", c->name, res.sip_status,
		         c->status);
	if (res.expires != c->exp)
		fail_msg("case '%s': expires %u, want %u", c->name, (unsigned)res.expires,
		         (unsigned)c->exp);
	if (res.notify.state != c->ss || res.notify.reason != c->reason ||
	    res.body != c->body)
		fail_msg("case '%s': NOTIFY %s;%s body %d, want %s;%s body %d", c->name,
		         sub_ss_name(res.notify.state),
		         sub_reason_name(res.notify.reason), res.body, sub_ss_name(c->ss),
		         sub_reason_name(c->reason), c->body);
	if (res.notify.has_expires != (c->nexp != 0) ||
	    (c->nexp && res.notify.expires != c->nexp))
		fail_msg("case '%s': NOTIFY expires %d/%u, want %u", c->name,
		         res.notify.has_expires, (unsigned)res.notify.expires,
		         (unsigned)c->nexp);
	if (res.notify.has_retry_after != (c->nretry != 0) ||
	    (c->nretry && res.notify.retry_after != c->nretry))
		fail_msg("case '%s': NOTIFY retry-after %d/%u, want %u", c->name,
		         res.notify.has_retry_after, (unsigned)res.notify.retry_after,
		         (unsigned)c->nretry);
	int64_t want_timer = (c->act & T_ANY) ? NOW + c->timer : 0;
	if (res.timer_at != want_timer)
		fail_msg("case '%s': timer at now%+lld, want now%+lld", c->name,
		         (long long)(res.timer_at - NOW), (long long)(want_timer - NOW));
	if (res.next.retries != c->rout)
		fail_msg("case '%s': retries %u, want %u", c->name,
		         (unsigned)res.next.retries, (unsigned)c->rout);
}

/* Every row is exercised by a named case, and every case behaves as written. */
static void test_rows(void **state)
{
	(void)state;
	size_t n;
	const struct sub_rule *rules = sub_rules(&n);
	bool *hit = calloc(n, sizeof(*hit));

	assert_non_null(hit);
	for (size_t i = 0; i < NELEM(row_cases); i++)
		check_row_case(&row_cases[i], hit, n);
	for (size_t i = 0; i < n; i++)
		if (!hit[i])
			fail_msg("row %zu (%s, %s + %s) has no test case", i,
			         sub_dir_name(rules[i].dir),
			         sub_phase_name(rules[i].phase),
			         sub_event_name(rules[i].event));
	free(hit);
}

/* ---- properties of the whole table ----------------------------------------------- */

static bool in_set(enum sub_phase p, const enum sub_phase *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == p)
			return true;
	return false;
}

#define IN_SET(p, ...)                                                                   \
	in_set(p, (const enum sub_phase[]){__VA_ARGS__},                                 \
	       sizeof((const enum sub_phase[]){__VA_ARGS__}) / sizeof(enum sub_phase))

static bool has_timer(enum sub_phase p)
{
	return IN_SET(p, SP, SA, XA, XP, XAB, XX, XR, XB, XE);
}

static bool is_backoff(enum sub_phase p)
{
	return IN_SET(p, XAB, XB);
}

static bool sw_dialog(enum sub_phase p)
{
	return IN_SET(p, SP, SA);
}

static bool sw_authorized(enum sub_phase p)
{
	return IN_SET(p, SA, SD);
}

static bool xw_authorized(enum sub_phase p)
{
	return IN_SET(p, XX, XR, XB);
}

static int popcount(unsigned v)
{
	int n = 0;
	for (; v; v &= v - 1)
		n++;
	return n;
}

static void check_rule(size_t i, const struct sub_rule *r)
{
	const unsigned sw_only = NOTIFY | X_SUB | X_UNSUB | X_PROBE | T_EXP;
	const unsigned xw_only = SUB | REFRESH | RESEND | UNSUB | X_SUBD | X_UNSUBD |
	                         X_PRES | X_UNAV | T_REF | T_RETRY;
	const unsigned a = r->actions;
	const bool sw = r->dir == SWD;
	char name[160];

	snprintf(name, sizeof(name), "row %zu (%s, %s + %s)", i, sub_dir_name(r->dir),
	         sub_phase_name(r->phase), sub_event_name(r->event));
#define RULE(cond, what)                                                                 \
	do {                                                                             \
		if (!(cond))                                                             \
			fail_msg("%s: %s", name, what);                                  \
	} while (0)
	RULE(sub_phase_applies(r->dir, r->phase) && sub_phase_applies(r->dir, r->next),
	     "phase of another direction");
	RULE(sub_event_applies(r->dir, r->event), "event of another direction");
	RULE((a & ~SUB_ACT_ALL) == 0, "unknown action bit");
	RULE(r->why && *r->why, "no basis given");
	RULE(((a & DROP) != 0) == (r->next == IDLE && r->phase != IDLE),
	     "DROP exactly when an entry ends");
	RULE(((a & PERSIST) != 0) == (r->next != r->phase && r->next != IDLE),
	     "PERSIST exactly when a kept entry changes phase");
	RULE(!(has_timer(r->phase) && !has_timer(r->next)) || (a & CANCEL),
	     "leaves a timer running into a phase without one");
	RULE(!(is_backoff(r->next) && !is_backoff(r->phase)) || (a & T_RETRY),
	     "enters back-off without a retry timer");
	RULE(!(a & T_RETRY) || is_backoff(r->next), "retry timer outside back-off");
	RULE(!(a & SUB) || !has_timer(r->phase) || (a & CANCEL),
	     "new dialog with the old dialog's timer running");
	RULE(sub_event_is_request(r->event) == ((a & RESP) != 0),
	     "requests, and only requests, are answered");
	RULE(!(a & RESP) || r->sip_status == 200 || r->sip_status == 423 ||
	         r->sip_status == 481,
	     "unexpected status");
	RULE((a & RESP) || r->sip_status == 0, "status without a response");
	RULE(!(sw ? (a & xw_only) : (a & sw_only)), "action of the other role");
	RULE(popcount(a & (SUB | REFRESH | RESEND | UNSUB)) <= 1, "two SIP requests");
	RULE(popcount(a & (X_PRES | X_UNAV)) <= 1, "presence and unavailable");
	RULE(popcount(a & T_ANY) <= 1, "two timers");
	RULE(((a & NOTIFY) != 0) == (r->notify != SUB_SS_NONE), "NOTIFY without state");
	RULE((r->reason != SUB_REASON_NONE) == (r->notify == SUB_SS_TERMINATED),
	     "reason exactly on terminated");
	RULE(r->body == SUB_BODY_NONE || (a & NOTIFY), "body without NOTIFY");
	if (sw) {
		RULE(!(sw_dialog(r->next) && !sw_dialog(r->phase)) || (a & T_EXP),
		     "new dialog without an expiry timer");
		RULE(!(r->sip_status == 200 &&
		       (r->event == EV(SIP_SUBSCRIBE) || r->event == EV(SIP_REFRESH))) ||
		         (a & T_EXP),
		     "accepted SUBSCRIBE without an expiry timer");
		/* Presence goes only to watchers the XMPP user approved. */
		RULE(r->body != SUB_BODY_CURRENT || sw_authorized(r->next),
		     "presence to an unauthorized watcher");
		RULE(!(sw_authorized(r->next) && !sw_authorized(r->phase)) ||
		         r->event == EV(XMPP_SUBSCRIBED),
		     "authorized without the XMPP user's approval");
		/* DESIGN.md: a SIP dialog ending is not a roster removal. */
		RULE(!(r->event == EV(SIP_SIGNOUT) || r->event == EV(TIMER_EXPIRY)) ||
		         !(a & (DROP | X_UNSUB)),
		     "sign-out or expiry removes the roster subscription");
	} else {
		RULE(!(a & X_PRES) || r->next == XX, "presence while not active");
		RULE(!(xw_authorized(r->next) && !xw_authorized(r->phase)) ||
		         (r->event == EV(SIP_NOTIFY_ACTIVE) && (a & X_SUBD)),
		     "authorized without NOTIFY active");
		RULE(!(a & X_SUBD) || xw_authorized(r->next),
		     "subscribed while not authorized");
		/* RFC 8048 5.2.3: unsubscribed goes once the unsubscribe is answered,
		 * while the dialog waits for its final NOTIFY. */
		RULE(!(a & X_UNSUBD) || r->next == IDLE || r->next == XE,
		     "unsubscribed but kept");
		/* A failed attempt never re-subscribes at once: no peer-driven tight
		 * loop. */
		RULE(!(IN_SET(r->phase, XA, XR) && r->event != EV(RESTORE)) || !(a & SUB),
		     "immediate re-subscribe after a failed attempt");
	}
	RULE(!(r->event == EV(RESTORE) || r->event == EV(SHUTDOWN) ||
	       r->event == EV(XMPP_LINK_DOWN) || r->event == EV(XMPP_LINK_UP)) ||
	         !(a & DROP),
	     "a restart or link flap drops an entry");
	RULE(r->event != EV(SHUTDOWN) || (r->next == r->phase && (a & CANCEL)),
	     "shutdown must keep the phase for the restore and stop timers");
#undef RULE
}

static void test_table_properties(void **state)
{
	(void)state;
	size_t n;
	const struct sub_rule *rules = sub_rules(&n);

	assert_true(n > 0);
	for (size_t i = 0; i < n; i++) {
		check_rule(i, &rules[i]);
		for (size_t j = 0; j < i; j++)
			if (rules[j].dir == rules[i].dir &&
			    rules[j].phase == rules[i].phase &&
			    rules[j].event == rules[i].event)
				fail_msg("rows %zu and %zu both match %s + %s", j, i,
				         sub_phase_name(rules[i].phase),
				         sub_event_name(rules[i].event));
	}
}

/* Every (direction, phase, event) has a defined outcome: a row, or for non-requests
 * the documented default (ignored, nothing changes). Foreign inputs are refused. */
static void test_totality(void **state)
{
	(void)state;
	unsigned rows = 0, ignored = 0;

	for (int d = 0; d < SUB_DIR_COUNT; d++)
		for (int p = 0; p < SUB_PHASE_COUNT; p++)
			for (int e = 0; e < SUB_EV_COUNT; e++) {
				struct sub_state cur = {(enum sub_dir)d,
				                        (enum sub_phase)p, 2};
				struct sub_event_info in = {
				    .now = NOW, .expires = 3600, .min_expires = 7200};
				struct sub_result res = {.rule = 12345};
				int rc = sub_transition(&cur, (enum sub_event)e, &in,
				                        NULL, &res);
				bool fits = sub_phase_applies(cur.dir, cur.phase) &&
				            sub_event_applies(cur.dir, (enum sub_event)e);
				const char *what = sub_event_name((enum sub_event)e);
				if (!fits) {
					if (rc != -EINVAL || res.rule != 12345)
						fail_msg(
						    "%s %s + %s: foreign input gave %d",
						    sub_dir_name(cur.dir),
						    sub_phase_name(cur.phase), what, rc);
					continue;
				}
				if (rc != 0)
					fail_msg("%s + %s: returned %d",
					         sub_phase_name(cur.phase), what, rc);
				if (res.rule >= 0) {
					rows++;
					continue;
				}
				ignored++;
				if (sub_event_is_request((enum sub_event)e))
					fail_msg("%s + %s: a SIP request left unanswered",
					         sub_phase_name(cur.phase), what);
				if (res.actions != 0 || res.next.phase != cur.phase ||
				    res.next.dir != cur.dir ||
				    res.next.retries != cur.retries ||
				    res.timer_at != 0 || res.sip_status != 0)
					fail_msg(
					    "%s + %s: the default must change nothing",
					    sub_phase_name(cur.phase), what);
			}
	size_t n;
	sub_rules(&n);
	assert_int_equal(rows, n);
	assert_true(ignored > 0);
}

/* ---- scenarios a user would notice ----------------------------------------------- */

struct step {
	enum sub_event ev;
	struct sub_event_info in; /* .now is an offset from NOW */
	enum sub_phase want;
	unsigned must, must_not;
	enum sub_ss ss; /* if set: the NOTIFY's state */
	enum sub_reason reason;
	enum sub_body body;
};

struct scenario {
	const char *name;
	enum sub_dir dir;
	const struct step *steps;
	size_t n;
};

#define STEPS(...)                                                                       \
	(const struct step[]){__VA_ARGS__},                                              \
	    sizeof((const struct step[]){__VA_ARGS__}) / sizeof(struct step)

static const struct scenario scenarios[] = {
    {"pending authorization: NOTIFY pending, then active on approval", SWD,
     STEPS({EV(SIP_SUBSCRIBE), IN(3600), SP, RESP | NOTIFY | X_SUB, X_PRES, PEND, 0,
            SUB_BODY_NONE},
           {EV(SIP_REFRESH), IN(3600), SP, RESP | NOTIFY, X_SUB, PEND, 0, SUB_BODY_NONE},
           {EV(XMPP_SUBSCRIBED), IN(0), SA, NOTIFY, DROP, ACT, 0, SUB_BODY_CURRENT},
           {EV(SIP_REFRESH), IN(3600), SA, RESP | NOTIFY | T_EXP, X_SUB, ACT, 0,
            SUB_BODY_CURRENT})},
    {"rejection: unsubscribed gives NOTIFY terminated;rejected", SWD,
     STEPS({EV(SIP_SUBSCRIBE), IN(3600), SP, X_SUB, 0, .ss = SUB_SS_NONE},
           {EV(XMPP_UNSUBSCRIBED), IN(0), IDLE, NOTIFY | DROP, 0, TERM,
            SUB_REASON_REJECTED, SUB_BODY_NONE},
           {EV(SIP_REFRESH), IN(3600), IDLE, RESP, NOTIFY, .ss = SUB_SS_NONE})},
    {"revocation after approval ends the dialog", SWD,
     STEPS({EV(SIP_SUBSCRIBE), IN(3600), SP, X_SUB, 0, .ss = SUB_SS_NONE},
           {EV(XMPP_SUBSCRIBED), IN(0), SA, NOTIFY, 0, ACT, 0, SUB_BODY_CURRENT},
           {EV(XMPP_UNSUBSCRIBED), IN(0), IDLE, NOTIFY | CANCEL | DROP, X_UNSUB, TERM,
            SUB_REASON_REJECTED, SUB_BODY_NONE})},
    {"sign-out keeps the roster subscription and the entry", SWD,
     STEPS({EV(SIP_SUBSCRIBE), IN(3600), SP, X_SUB, 0, .ss = SUB_SS_NONE},
           {EV(XMPP_SUBSCRIBED), IN(0), SA, NOTIFY, 0, .ss = SUB_SS_NONE},
           {EV(SIP_SIGNOUT), IN(0), SD, RESP | NOTIFY | PERSIST, DROP | X_UNSUB, TERM,
            SUB_REASON_TIMEOUT, SUB_BODY_CLOSED},
           {EV(XMPP_LINK_UP), IN(0), SD, X_PROBE, 0, .ss = SUB_SS_NONE},
           {EV(SIP_SUBSCRIBE), IN(3600), SA, RESP | NOTIFY | T_EXP | PERSIST, X_SUB, ACT,
            0, SUB_BODY_CURRENT})},
    {"unsubscribe removes the roster subscription and the entry", SWD,
     STEPS({EV(SIP_SUBSCRIBE), IN(3600), SP, X_SUB, 0, .ss = SUB_SS_NONE},
           {EV(XMPP_SUBSCRIBED), IN(0), SA, NOTIFY, 0, .ss = SUB_SS_NONE},
           {EV(SIP_UNSUBSCRIBE), IN(0), IDLE, RESP | NOTIFY | X_UNSUB | DROP, PERSIST,
            TERM, SUB_REASON_TIMEOUT, SUB_BODY_CLOSED},
           {EV(SIP_SUBSCRIBE), IN(3600), SP, X_SUB, 0, .ss = SUB_SS_NONE})},
    {"expiry without refresh behaves as a sign-out", SWD,
     STEPS({EV(SIP_SUBSCRIBE), IN(120), SP, T_EXP, 0, .ss = SUB_SS_NONE},
           {EV(XMPP_SUBSCRIBED), IN(0), SA, 0, 0, .ss = SUB_SS_NONE},
           {EV(TIMER_EXPIRY),
            {.now = 120},
            SD,
            NOTIFY | PERSIST,
            DROP | X_UNSUB,
            TERM,
            SUB_REASON_TIMEOUT,
            SUB_BODY_NONE},
           {EV(TIMER_EXPIRY), {.now = 121}, SD, 0, SUB_ACT_ALL, .ss = SUB_SS_NONE},
           {EV(XMPP_UNSUBSCRIBED), IN(0), IDLE, DROP, NOTIFY, .ss = SUB_SS_NONE})},
    {"sign-out before approval keeps the request; approval arrives while away", SWD,
     STEPS(
         {EV(SIP_SUBSCRIBE), IN(3600), SP, X_SUB, 0, .ss = SUB_SS_NONE},
         {EV(SIP_SIGNOUT), IN(0), SDP, RESP | NOTIFY, DROP | X_UNSUB, .ss = SUB_SS_NONE},
         {EV(XMPP_SUBSCRIBED), IN(0), SD, PERSIST, NOTIFY, .ss = SUB_SS_NONE},
         {EV(SIP_SUBSCRIBE), IN(3600), SA, NOTIFY, X_SUB, ACT, 0, SUB_BODY_CURRENT})},
    {"sip watcher restart: restore, 481 to the old dialog, re-subscribe", SWD,
     STEPS({EV(SIP_SUBSCRIBE), IN(3600), SP, 0, 0, .ss = SUB_SS_NONE},
           {EV(XMPP_SUBSCRIBED), IN(0), SA, 0, 0, .ss = SUB_SS_NONE},
           {EV(SHUTDOWN), IN(0), SA, NOTIFY | CANCEL, DROP, TERM, SUB_REASON_PROBATION,
            SUB_BODY_NONE},
           {EV(RESTORE), IN(0), SD, PERSIST, DROP | NOTIFY, .ss = SUB_SS_NONE},
           {EV(XMPP_LINK_UP), IN(0), SD, X_PROBE, 0, .ss = SUB_SS_NONE},
           {EV(SIP_REFRESH), IN(3600), SD, RESP, NOTIFY, .ss = SUB_SS_NONE},
           {EV(SIP_SUBSCRIBE), IN(3600), SA, NOTIFY, X_SUB, ACT, 0, SUB_BODY_CURRENT})},
    {"sip watcher link down/up: closed while blind, probe on return", SWD,
     STEPS({EV(SIP_SUBSCRIBE), IN(3600), SP, 0, 0, .ss = SUB_SS_NONE},
           {EV(XMPP_SUBSCRIBED), IN(0), SA, 0, 0, .ss = SUB_SS_NONE},
           {EV(XMPP_LINK_DOWN), IN(0), SA, NOTIFY, PERSIST, ACT, 0, SUB_BODY_CLOSED},
           {EV(XMPP_LINK_UP), IN(0), SA, X_PROBE, NOTIFY, .ss = SUB_SS_NONE})},
    {"xmpp watcher: subscribe, 2xx, NOTIFY active, refresh cycle", XWD,
     STEPS({EV(XMPP_SUBSCRIBE), IN(0), XA, SUB, X_SUBD, .ss = SUB_SS_NONE},
           {EV(SIP_2XX), IN(3600), XA, T_REF, X_SUBD, .ss = SUB_SS_NONE},
           {EV(SIP_NOTIFY_ACTIVE), IN(3600), XX, RESP | X_SUBD | X_PRES, 0,
            .ss = SUB_SS_NONE},
           {EV(TIMER_REFRESH), {.now = 3540}, XX, REFRESH, SUB, .ss = SUB_SS_NONE},
           {EV(SIP_2XX), {.now = 3541, .expires = 3600}, XX, T_REF, 0, .ss = SUB_SS_NONE},
           {EV(SIP_NOTIFY_ACTIVE),
            {.now = 4000},
            XX,
            RESP | X_PRES,
            X_SUBD | T_REF,
            .ss = SUB_SS_NONE})},
    {"xmpp watcher: NOTIFY before the 2xx still works (RFC 6665 4.1.2.4)", XWD,
     STEPS({EV(XMPP_SUBSCRIBE), IN(0), XA, SUB, 0, .ss = SUB_SS_NONE},
           {EV(SIP_NOTIFY_ACTIVE), IN(0), XX, RESP | X_SUBD | X_PRES, T_REF,
            .ss = SUB_SS_NONE},
           {EV(SIP_2XX), IN(3600), XX, T_REF, 0, .ss = SUB_SS_NONE})},
    {"xmpp watcher: pending, then approved by the Lync user", XWD,
     STEPS(
         {EV(XMPP_SUBSCRIBE), IN(0), XA, SUB, 0, .ss = SUB_SS_NONE},
         {EV(SIP_NOTIFY_PENDING), IN(3600), XP, RESP, X_SUBD | X_PRES, .ss = SUB_SS_NONE},
         {EV(XMPP_PROBE), IN(0), XP, 0, SUB_ACT_ALL, .ss = SUB_SS_NONE},
         {EV(SIP_NOTIFY_ACTIVE), IN(3600), XX, X_SUBD | X_PRES, 0, .ss = SUB_SS_NONE})},
    {"xmpp watcher: pending, then rejected", XWD,
     STEPS({EV(XMPP_SUBSCRIBE), IN(0), XA, SUB, 0, .ss = SUB_SS_NONE},
           {EV(SIP_NOTIFY_PENDING), IN(3600), XP, RESP, X_SUBD, .ss = SUB_SS_NONE},
           {EV(SIP_NOTIFY_END_FINAL), IN(0), IDLE, RESP | X_UNSUBD | DROP, X_SUBD,
            .ss = SUB_SS_NONE})},
    {"xmpp watcher: deactivated re-subscribes once, then backs off", XWD,
     STEPS(
         {EV(XMPP_SUBSCRIBE), IN(0), XA, SUB, 0, .ss = SUB_SS_NONE},
         {EV(SIP_NOTIFY_ACTIVE), IN(3600), XX, X_SUBD, 0, .ss = SUB_SS_NONE},
         {EV(SIP_NOTIFY_END_RETRY), IN(0), XR, SUB, X_UNAV | T_RETRY, .ss = SUB_SS_NONE},
         {EV(SIP_NOTIFY_END_RETRY), IN(0), XB, X_UNAV | T_RETRY, SUB, .ss = SUB_SS_NONE},
         {EV(TIMER_RETRY), {.now = 30}, XR, SUB, 0, .ss = SUB_SS_NONE},
         {EV(SIP_ERR_RETRY), {.now = 31}, XB, T_RETRY, SUB, .ss = SUB_SS_NONE},
         {EV(TIMER_RETRY), {.now = 91}, XR, SUB, 0, .ss = SUB_SS_NONE},
         {EV(SIP_NOTIFY_ACTIVE),
          {.now = 92, .expires = 3600},
          XX,
          X_PRES,
          X_SUBD,
          .ss = SUB_SS_NONE})},
    {"xmpp watcher: refresh 481 makes a new subscription", XWD,
     STEPS({EV(XMPP_SUBSCRIBE), IN(0), XA, SUB, 0, .ss = SUB_SS_NONE},
           {EV(SIP_NOTIFY_ACTIVE), IN(3600), XX, 0, 0, .ss = SUB_SS_NONE},
           {EV(TIMER_REFRESH), IN(0), XX, REFRESH, 0, .ss = SUB_SS_NONE},
           {EV(SIP_ERR_GONE), IN(0), XR, SUB | CANCEL, X_UNAV | X_UNSUBD,
            .ss = SUB_SS_NONE},
           {EV(SIP_2XX), IN(3600), XR, T_REF, 0, .ss = SUB_SS_NONE},
           {EV(SIP_NOTIFY_ACTIVE), IN(3600), XX, X_PRES, 0, .ss = SUB_SS_NONE})},
    {"xmpp watcher: 423 then accepted", XWD,
     STEPS({EV(XMPP_SUBSCRIBE), IN(0), XA, SUB, 0, .ss = SUB_SS_NONE},
           {EV(SIP_ERR_INTERVAL), IN_423(3600, 5400), XA, RESEND, SUB, .ss = SUB_SS_NONE},
           {EV(SIP_2XX), IN(5400), XA, T_REF, 0, .ss = SUB_SS_NONE})},
    {"xmpp watcher: watcher leaves while the first SUBSCRIBE is in flight", XWD,
     STEPS({EV(XMPP_SUBSCRIBE), IN(0), XA, SUB, 0, .ss = SUB_SS_NONE},
           {EV(XMPP_UNSUBSCRIBE), IN(0), XE, UNSUB, DROP, .ss = SUB_SS_NONE},
           {EV(SIP_2XX), IN(3600), XE, UNSUB, 0, .ss = SUB_SS_NONE},
           {EV(SIP_2XX_ENDED), IN(0), XE, X_UNSUBD, DROP, .ss = SUB_SS_NONE},
           {EV(SIP_NOTIFY_END_RETRY), IN(0), IDLE, RESP | DROP, SUB, .ss = SUB_SS_NONE})},
    /* RFC 8048 5.2.3 F16-F25 as written: unsubscribe, SUBSCRIBE Expires: 0, its
     * 200, unsubscribed, the final NOTIFY answered 200 (RFC 6665 4.1.2.3). */
    {"xmpp watcher: unsubscribe flow of RFC 8048 5.2.3", XWD,
     STEPS({EV(XMPP_SUBSCRIBE), IN(0), XA, SUB, 0, .ss = SUB_SS_NONE},
           {EV(SIP_NOTIFY_ACTIVE), IN(3600), XX, X_SUBD | X_PRES, 0, .ss = SUB_SS_NONE},
           {EV(XMPP_UNSUBSCRIBE), IN(0), XE, UNSUB | X_UNAV, DROP | X_UNSUBD,
            .ss = SUB_SS_NONE},
           {EV(SIP_2XX_ENDED), IN(0), XE, X_UNSUBD, DROP | RESP, .ss = SUB_SS_NONE},
           {EV(SIP_NOTIFY_END_RETRY), IN(0), IDLE, RESP | DROP, SUB | X_UNSUBD,
            .ss = SUB_SS_NONE})},
    {"xmpp watcher restart: shutdown, restore, recover", XWD,
     STEPS({EV(XMPP_SUBSCRIBE), IN(0), XA, SUB, 0, .ss = SUB_SS_NONE},
           {EV(SIP_NOTIFY_ACTIVE), IN(3600), XX, 0, 0, .ss = SUB_SS_NONE},
           {EV(SHUTDOWN), IN(0), XX, UNSUB | X_UNAV | CANCEL, DROP | PERSIST,
            .ss = SUB_SS_NONE},
           {EV(RESTORE), IN(0), XR, SUB | PERSIST, DROP, .ss = SUB_SS_NONE},
           {EV(XMPP_LINK_UP), IN(0), XR, X_SUBD | X_UNAV, X_PRES, .ss = SUB_SS_NONE},
           {EV(SIP_NOTIFY_ACTIVE), IN(3600), XX, X_PRES, 0, .ss = SUB_SS_NONE})},
    {"xmpp watcher link down/up: nothing sent while down, re-announce after", XWD,
     STEPS({EV(XMPP_SUBSCRIBE), IN(0), XA, SUB, 0, .ss = SUB_SS_NONE},
           {EV(SIP_NOTIFY_ACTIVE), IN(3600), XX, 0, 0, .ss = SUB_SS_NONE},
           {EV(XMPP_LINK_DOWN), IN(0), XX, 0, SUB_ACT_ALL, .ss = SUB_SS_NONE},
           {EV(XMPP_LINK_UP), IN(0), XX, X_SUBD | X_PRES, 0, .ss = SUB_SS_NONE})},
    {"xmpp watcher: state lost, a probe re-adopts the subscription", XWD,
     STEPS(
         {EV(XMPP_PROBE), IN(0), XA, SUB | PERSIST, X_UNSUBD | X_PRES, .ss = SUB_SS_NONE},
         {EV(SIP_NOTIFY_ACTIVE), IN(3600), XX, X_SUBD | X_PRES, 0, .ss = SUB_SS_NONE})},
};

static void test_scenarios(void **state)
{
	(void)state;
	char b1[256], b2[256], b3[256];

	for (size_t s = 0; s < NELEM(scenarios); s++) {
		const struct scenario *sc = &scenarios[s];
		struct sub_state st = {sc->dir, SUB_IDLE, 0};
		for (size_t i = 0; i < sc->n; i++) {
			const struct step *p = &sc->steps[i];
			struct sub_event_info in = p->in;
			struct sub_result res;
			in.now += NOW;
			int rc = sub_transition(&st, p->ev, &in, NULL, &res);
			if (rc != 0)
				fail_msg("scenario '%s' step %zu (%s): returned %d",
				         sc->name, i, sub_event_name(p->ev), rc);
			if (res.next.phase != p->want)
				fail_msg("scenario '%s' step %zu (%s): phase %s, want %s",
				         sc->name, i, sub_event_name(p->ev),
				         sub_phase_name(res.next.phase),
				         sub_phase_name(p->want));
			if ((res.actions & p->must) != p->must ||
			    (res.actions & p->must_not) != 0)
				fail_msg(
				    "scenario '%s' step %zu (%s): actions %s; must %s, "
				    "must not %s",
				    sc->name, i, sub_event_name(p->ev),
				    acts(res.actions, b1, sizeof(b1)),
				    acts(p->must, b2, sizeof(b2)),
				    acts(p->must_not & res.actions, b3, sizeof(b3)));
			if (p->ss &&
			    (res.notify.state != p->ss ||
			     res.notify.reason != p->reason || res.body != p->body))
				fail_msg(
				    "scenario '%s' step %zu (%s): NOTIFY %s;%s body %d",
				    sc->name, i, sub_event_name(p->ev),
				    sub_ss_name(res.notify.state),
				    sub_reason_name(res.notify.reason), res.body);
			st = res.next;
		}
	}
}

/* A NOTIFY terminated, as read off the wire, leads to the right XMPP outcome. */
struct end_case {
	const char *header;
	enum sub_phase from;
	enum sub_phase want;
	unsigned must; /* the outcome the XMPP watcher sees */
	int64_t wait;  /* retry timer, when backing off */
};

static const struct end_case end_cases[] = {
    {"terminated;reason=rejected", XX, IDLE, X_UNSUBD | X_UNAV | DROP, 0},
    {"terminated;reason=noresource", XX, IDLE, X_UNSUBD | X_UNAV | DROP, 0},
    {"terminated;reason=invariant", XX, IDLE, X_UNSUBD | X_UNAV | DROP, 0},
    {"terminated;reason=giveup", XP, IDLE, X_UNSUBD | DROP, 0},
    {"terminated;reason=giveup;retry-after=60", XP, IDLE, X_UNSUBD | DROP, 0},
    {"terminated;reason=deactivated", XX, XR, SUB, 0},
    {"terminated;reason=timeout", XX, XR, SUB, 0},
    {"terminated", XX, XR, SUB, 0},
    {"terminated;reason=migrated", XX, XR, SUB, 0},
    {"terminated;reason=deactivated;retry-after=10", XX, XB, X_UNAV | T_RETRY, 10},
    {"terminated;reason=probation", XX, XB, X_UNAV | T_RETRY, 30},
    {"Terminated ; Reason=Probation ; Retry-After=120", XX, XB, X_UNAV | T_RETRY, 120},
    {"terminated;reason=probation;retry-after=999999", XX, XB, X_UNAV | T_RETRY,
     SUB_RETRY_AFTER_MAX},
    {"terminated;reason=deactivated", XP, XA, SUB, 0},
    {"terminated;reason=deactivated", XA, XAB, T_RETRY, 30},
    {"terminated;reason=rejected", XA, IDLE, X_UNSUBD | DROP, 0},
};

static void test_notify_terminated_outcome(void **state)
{
	(void)state;
	char b[256];

	for (size_t i = 0; i < NELEM(end_cases); i++) {
		const struct end_case *c = &end_cases[i];
		struct sub_substate ss;
		enum sub_event ev;
		struct sub_result res;
		struct sub_state cur = {XWD, c->from, 0};
		struct sub_event_info in = {.now = NOW};

		if (sub_substate_parse(c->header, strlen(c->header), &ss) != 0)
			fail_msg("case '%s': does not parse", c->header);
		if (sub_notify_event(&ss, &ev) != 0)
			fail_msg("case '%s': not classified", c->header);
		in.retry_after = ss.has_retry_after ? ss.retry_after : 0;
		if (sub_transition(&cur, ev, &in, NULL, &res) != 0)
			fail_msg("case '%s': transition failed", c->header);
		if (res.next.phase != c->want || (res.actions & c->must) != c->must ||
		    res.sip_status != 200)
			fail_msg("case '%s' from %s: %s with %s, status %d", c->header,
			         sub_phase_name(c->from), sub_phase_name(res.next.phase),
			         acts(res.actions, b, sizeof(b)), res.sip_status);
		if ((c->must & T_RETRY) && res.timer_at != NOW + c->wait)
			fail_msg("case '%s': retry in %lld s, want %lld", c->header,
			         (long long)(res.timer_at - NOW), (long long)c->wait);
	}
}

/* ---- classifiers ------------------------------------------------------------------- */

struct resp_case {
	int status;
	uint32_t asked, min;
	int rc;
	enum sub_event want;
};

static const struct resp_case resp_cases[] = {
    {200, 3600, 0, 0, EV(SIP_2XX)},
    {202, 3600, 0, 0, EV(SIP_2XX)},
    {200, 0, 0, 0, EV(SIP_2XX_ENDED)},
    {408, 0, 0, 0, EV(SIP_ERR_GONE)},
    {481, 0, 0, 0, EV(SIP_ERR_GONE)},
    {403, 0, 0, 0, EV(SIP_ERR_REJECT)},
    {404, 0, 0, 0, EV(SIP_ERR_REJECT)},
    {410, 0, 0, 0, EV(SIP_ERR_REJECT)},
    {489, 0, 0, 0, EV(SIP_ERR_REJECT)},
    {499, 0, 0, 0, EV(SIP_ERR_REJECT)},
    {501, 0, 0, 0, EV(SIP_ERR_REJECT)},
    {603, 0, 0, 0, EV(SIP_ERR_REJECT)},
    {604, 0, 0, 0, EV(SIP_ERR_REJECT)},
    {699, 0, 0, 0, EV(SIP_ERR_REJECT)},
    {503, 0, 0, 0, EV(SIP_ERR_RETRY)},
    {500, 0, 0, 0, EV(SIP_ERR_RETRY)},
    {504, 0, 0, 0, EV(SIP_ERR_RETRY)},
    {599, 0, 0, 0, EV(SIP_ERR_RETRY)},
    {480, 0, 0, 0, EV(SIP_ERR_RETRY)},
    {491, 0, 0, 0, EV(SIP_ERR_RETRY)},
    {401, 0, 0, 0, EV(SIP_ERR_RETRY)},
    {407, 0, 0, 0, EV(SIP_ERR_RETRY)},
    {302, 0, 0, 0, EV(SIP_ERR_RETRY)},
    {423, 3600, 5000, 0, EV(SIP_ERR_INTERVAL)},
    {423, 3600, 7200, 0, EV(SIP_ERR_INTERVAL)},
    {423, 3600, 7201, 0, EV(SIP_ERR_RETRY)}, /* beyond max_expires */
    {423, 3600, 3600, 0, EV(SIP_ERR_RETRY)}, /* no progress: would loop */
    {423, 3600, 0, 0, EV(SIP_ERR_RETRY)},    /* Min-Expires missing */
    {100, 0, 0, -EINVAL, 0},
    {199, 0, 0, -EINVAL, 0},
    {700, 0, 0, -EINVAL, 0},
    {-1, 0, 0, -EINVAL, 0},
};

static void test_response_event(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(resp_cases); i++) {
		const struct resp_case *c = &resp_cases[i];
		struct sub_event_info in = {.expires = c->asked, .min_expires = c->min};
		enum sub_event ev = SUB_EV_COUNT;
		int rc = sub_response_event(c->status, &in, NULL, &ev);
		if (rc != c->rc || (rc == 0 && ev != c->want))
			fail_msg("case %d (asked %u, Min-Expires %u): %d %s, want %d %s",
			         c->status, (unsigned)c->asked, (unsigned)c->min, rc,
			         sub_event_name(ev), c->rc, sub_event_name(c->want));
		if (rc != 0 && ev != SUB_EV_COUNT)
			fail_msg("case %d: *ev written on error", c->status);
	}
	enum sub_event ev;
	assert_int_equal(sub_response_event(200, NULL, NULL, &ev), -EINVAL);
}

struct subscribe_case {
	const char *name;
	bool in_dialog;
	uint32_t expires;
	enum sub_event want;
};

static const struct subscribe_case subscribe_cases[] = {
    {"new, 3600", false, 3600, EV(SIP_SUBSCRIBE)},
    {"new, exactly min", false, 60, EV(SIP_SUBSCRIBE)},
    {"new, below min", false, 59, EV(SIP_TOO_BRIEF)},
    {"new, 1 s", false, 1, EV(SIP_TOO_BRIEF)},
    {"new, 0: a fetch", false, 0, EV(SIP_FETCH)},
    {"in dialog, 3600", true, 3600, EV(SIP_REFRESH)},
    {"in dialog, huge", true, UINT32_MAX, EV(SIP_REFRESH)},
    {"in dialog, below min", true, 30, EV(SIP_TOO_BRIEF)},
    {"in dialog, 0: read as sign-out, never as removal", true, 0, EV(SIP_SIGNOUT)},
};

static void test_subscribe_event(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(subscribe_cases); i++) {
		const struct subscribe_case *c = &subscribe_cases[i];
		enum sub_event ev = sub_subscribe_event(c->in_dialog, c->expires, NULL);
		if (ev != c->want)
			fail_msg("case '%s': %s, want %s", c->name, sub_event_name(ev),
			         sub_event_name(c->want));
	}
	struct sub_limits lim;
	sub_limits_init(&lim);
	lim.min_expires = 600;
	assert_int_equal(sub_subscribe_event(false, 599, &lim), EV(SIP_TOO_BRIEF));
	assert_int_equal(sub_subscribe_event(false, 600, &lim), EV(SIP_SUBSCRIBE));
}

/* ---- Subscription-State parser ----------------------------------------------------- */

struct ss_case {
	const char *name;
	const char *in;
	int rc;
	enum sub_ss state;
	enum sub_reason reason;
	long long expires;     /* -1: absent */
	long long retry_after; /* -1: absent */
};

static const struct ss_case ss_cases[] = {
    {"active", "active", 0, SUB_SS_ACTIVE, SUB_REASON_NONE, -1, -1},
    {"active with expires", "active;expires=3600", 0, SUB_SS_ACTIVE, SUB_REASON_NONE,
     3600, -1},
    {"pending", "pending", 0, SUB_SS_PENDING, SUB_REASON_NONE, -1, -1},
    {"pending with expires", "pending;expires=0", 0, SUB_SS_PENDING, SUB_REASON_NONE, 0,
     -1},
    {"terminated", "terminated", 0, SUB_SS_TERMINATED, SUB_REASON_NONE, -1, -1},
    {"rejected + retry-after", "terminated;reason=rejected;retry-after=30", 0,
     SUB_SS_TERMINATED, SUB_REASON_REJECTED, -1, 30},
    {"deactivated", "terminated;reason=deactivated", 0, SUB_SS_TERMINATED,
     SUB_REASON_DEACTIVATED, -1, -1},
    {"probation", "terminated;reason=probation;retry-after=600", 0, SUB_SS_TERMINATED,
     SUB_REASON_PROBATION, -1, 600},
    {"timeout", "terminated;reason=timeout", 0, SUB_SS_TERMINATED, SUB_REASON_TIMEOUT, -1,
     -1},
    {"giveup", "terminated;reason=giveup", 0, SUB_SS_TERMINATED, SUB_REASON_GIVEUP, -1,
     -1},
    {"noresource", "terminated;reason=noresource", 0, SUB_SS_TERMINATED,
     SUB_REASON_NORESOURCE, -1, -1},
    {"invariant", "terminated;reason=invariant", 0, SUB_SS_TERMINATED,
     SUB_REASON_INVARIANT, -1, -1},
    {"unknown reason token", "terminated;reason=moved-elsewhere", 0, SUB_SS_TERMINATED,
     SUB_REASON_OTHER, -1, -1},
    {"case-insensitive", "ACTIVE;EXPIRES=10", 0, SUB_SS_ACTIVE, SUB_REASON_NONE, 10, -1},
    {"reason case-insensitive", "terminated;reason=NoResource", 0, SUB_SS_TERMINATED,
     SUB_REASON_NORESOURCE, -1, -1},
    {"white space around separators", " active ;\texpires = 60 ", 0, SUB_SS_ACTIVE,
     SUB_REASON_NONE, 60, -1},
    {"parameter order free", "terminated;retry-after=5;reason=probation", 0,
     SUB_SS_TERMINATED, SUB_REASON_PROBATION, -1, 5},
    {"generic parameter skipped", "active;expires=5;x-foo=bar", 0, SUB_SS_ACTIVE,
     SUB_REASON_NONE, 5, -1},
    {"generic flag skipped", "active;x-flag;expires=5", 0, SUB_SS_ACTIVE, SUB_REASON_NONE,
     5, -1},
    {"generic quoted value", "active;x-q=\"a;b \\\" c\";expires=7", 0, SUB_SS_ACTIVE,
     SUB_REASON_NONE, 7, -1},
    {"generic host value", "active;x-h=[2001:db8::1]", 0, SUB_SS_ACTIVE, SUB_REASON_NONE,
     -1, -1},
    {"repeated generic parameter", "active;x=1;x=2", 0, SUB_SS_ACTIVE, SUB_REASON_NONE,
     -1, -1},
    {"extension substate", "waiting;expires=30", 0, SUB_SS_OTHER, SUB_REASON_NONE, 30,
     -1},
    {"leading zeros", "active;expires=0003600", 0, SUB_SS_ACTIVE, SUB_REASON_NONE, 3600,
     -1},
    {"largest delta-seconds", "active;expires=4294967295", 0, SUB_SS_ACTIVE,
     SUB_REASON_NONE, 4294967295LL, -1},
    /* garbage */
    {"empty", "", -EBADMSG, 0, 0, -1, -1},
    {"blank", "   ", -EBADMSG, 0, 0, -1, -1},
    {"no substate", ";expires=5", -EBADMSG, 0, 0, -1, -1},
    {"trailing semicolon", "active;", -EBADMSG, 0, 0, -1, -1},
    {"double semicolon", "active;;expires=5", -EBADMSG, 0, 0, -1, -1},
    {"space instead of semicolon", "active expires=5", -EBADMSG, 0, 0, -1, -1},
    {"comma list", "active, pending", -EBADMSG, 0, 0, -1, -1},
    {"expires without value", "active;expires", -EBADMSG, 0, 0, -1, -1},
    {"expires empty", "active;expires=", -EBADMSG, 0, 0, -1, -1},
    {"expires negative", "active;expires=-1", -EBADMSG, 0, 0, -1, -1},
    {"expires not a number", "active;expires=soon", -EBADMSG, 0, 0, -1, -1},
    {"expires with junk", "active;expires=60s", -EBADMSG, 0, 0, -1, -1},
    {"expires quoted", "active;expires=\"60\"", -EBADMSG, 0, 0, -1, -1},
    {"expires beyond 32 bits", "active;expires=4294967296", -EBADMSG, 0, 0, -1, -1},
    {"expires absurdly long", "active;expires=99999999999999999999999", -EBADMSG, 0, 0,
     -1, -1},
    {"expires twice", "active;expires=1;expires=2", -EBADMSG, 0, 0, -1, -1},
    {"reason twice", "terminated;reason=rejected;reason=timeout", -EBADMSG, 0, 0, -1, -1},
    {"reason without value", "terminated;reason", -EBADMSG, 0, 0, -1, -1},
    {"reason empty", "terminated;reason=", -EBADMSG, 0, 0, -1, -1},
    {"reason quoted", "terminated;reason=\"rejected\"", -EBADMSG, 0, 0, -1, -1},
    {"retry-after not a number", "terminated;retry-after=x", -EBADMSG, 0, 0, -1, -1},
    {"unterminated quote", "active;x=\"abc", -EBADMSG, 0, 0, -1, -1},
    {"escape at the end", "active;x=\"abc\\", -EBADMSG, 0, 0, -1, -1},
    {"control char in quote", "active;x=\"a\x01\"", -EBADMSG, 0, 0, -1, -1},
    {"CRLF inside", "active;\r\n expires=5", -EBADMSG, 0, 0, -1, -1},
    {"header name included", "Subscription-State: active", -EBADMSG, 0, 0, -1, -1},
    {"non-ASCII token", "activ\xc3\xa9", -EBADMSG, 0, 0, -1, -1},
    {"equals without name", "active;=5", -EBADMSG, 0, 0, -1, -1},
    {"XML", "<active/>", -EBADMSG, 0, 0, -1, -1},
};

static void check_ss(const char *name, const char *in, size_t len, int want_rc,
                     const struct ss_case *c)
{
	struct sub_substate ss, before;

	memset(&ss, 0x5a, sizeof(ss));
	memcpy(&before, &ss, sizeof(ss));
	int rc = sub_substate_parse(in, len, &ss);
	if (rc != want_rc)
		fail_msg("case '%s': returned %d, want %d", name, rc, want_rc);
	if (rc != 0) {
		if (memcmp(&ss, &before, sizeof(ss)) != 0)
			fail_msg("case '%s': output written on error", name);
		return;
	}
	if (!c)
		return;
	if (ss.state != c->state || ss.reason != c->reason ||
	    ss.has_expires != (c->expires >= 0) ||
	    (c->expires >= 0 && ss.expires != (uint32_t)c->expires) ||
	    ss.has_retry_after != (c->retry_after >= 0) ||
	    (c->retry_after >= 0 && ss.retry_after != (uint32_t)c->retry_after))
		fail_msg("case '%s': got %s reason %s expires %d/%u retry-after %d/%u",
		         name, sub_ss_name(ss.state), sub_reason_name(ss.reason),
		         ss.has_expires, (unsigned)ss.expires, ss.has_retry_after,
		         (unsigned)ss.retry_after);
}

static void test_substate_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(ss_cases); i++)
		check_ss(ss_cases[i].name, ss_cases[i].in, strlen(ss_cases[i].in),
		         ss_cases[i].rc, &ss_cases[i]);

	/* Inputs that a string literal cannot carry, or that test the limits. */
	const char nul[] = "active\0;expires=5";
	check_ss("embedded NUL", nul, sizeof(nul) - 1, -EBADMSG, NULL);
	check_ss("length bounds the read", "active;expires=5", 6, 0, NULL);

	char big[SUB_SUBSTATE_MAX + 2];
	memset(big, ' ', sizeof(big));
	memcpy(big, "active", 6);
	check_ss("at the size limit", big, SUB_SUBSTATE_MAX, 0, NULL);
	check_ss("over the size limit", big, SUB_SUBSTATE_MAX + 1, -E2BIG, NULL);

	struct sub_substate ss;
	assert_int_equal(sub_substate_parse(NULL, 0, &ss), -EINVAL);
	assert_int_equal(sub_substate_parse("active", 6, NULL), -EINVAL);
}

/* Every byte value in every position of a valid header: no crash, no read past
 * len (ASan), and either a clean parse or -EBADMSG. */
static void test_substate_parse_mutations(void **state)
{
	(void)state;
	const char *base = "terminated;reason=probation;retry-after=30;x=\"q\"";
	size_t len = strlen(base);
	char *buf = malloc(len);

	assert_non_null(buf);
	for (size_t pos = 0; pos < len; pos++)
		for (int b = 0; b < 256; b++) {
			struct sub_substate ss;
			memcpy(buf, base, len);
			buf[pos] = (char)b;
			int rc = sub_substate_parse(buf, len, &ss);
			if (rc != 0 && rc != -EBADMSG)
				fail_msg("byte 0x%02x at %zu: returned %d", b, pos, rc);
		}
	for (size_t cut = 0; cut <= len; cut++) {
		struct sub_substate ss;
		memcpy(buf, base, len);
		int rc = sub_substate_parse(buf, cut, &ss);
		if (rc != 0 && rc != -EBADMSG)
			fail_msg("cut at %zu: returned %d", cut, rc);
	}
	free(buf);
}

struct fmt_case {
	struct sub_substate ss;
	const char *want; /* NULL: refused */
};

static const struct fmt_case fmt_cases[] = {
    {{SUB_SS_ACTIVE, SUB_REASON_NONE, 3600, 0, true, false}, "active;expires=3600"},
    {{SUB_SS_PENDING, SUB_REASON_NONE, 0, 0, false, false}, "pending"},
    {{SUB_SS_TERMINATED, SUB_REASON_REJECTED, 0, 0, false, false},
     "terminated;reason=rejected"},
    {{SUB_SS_TERMINATED, SUB_REASON_PROBATION, 0, 30, false, true},
     "terminated;reason=probation;retry-after=30"},
    {{SUB_SS_TERMINATED, SUB_REASON_TIMEOUT, 0, 0, false, false},
     "terminated;reason=timeout"},
    {{SUB_SS_TERMINATED, SUB_REASON_OTHER, 0, 0, false, false}, NULL},
    {{SUB_SS_OTHER, SUB_REASON_NONE, 0, 0, false, false}, NULL},
    {{SUB_SS_NONE, SUB_REASON_NONE, 0, 0, false, false}, NULL},
};

static void test_substate_format(void **state)
{
	(void)state;
	char buf[128];

	for (size_t i = 0; i < NELEM(fmt_cases); i++) {
		const struct fmt_case *c = &fmt_cases[i];
		int n = sub_substate_format(&c->ss, buf, sizeof(buf));
		if (!c->want) {
			if (n != -EINVAL)
				fail_msg("case %zu: formatted an unnamed value (%d)", i,
				         n);
			continue;
		}
		if (n < 0 || strcmp(buf, c->want) != 0 || (size_t)n != strlen(c->want))
			fail_msg("case %zu: got '%s' (%d), want '%s'", i,
			         n >= 0 ? buf : "", n, c->want);
		/* What we write, we read back the same. */
		struct sub_substate back;
		if (sub_substate_parse(buf, (size_t)n, &back) != 0 ||
		    back.state != c->ss.state || back.reason != c->ss.reason ||
		    back.has_expires != c->ss.has_expires ||
		    back.has_retry_after != c->ss.has_retry_after)
			fail_msg("case %zu: '%s' does not read back", i, buf);
		if (sub_substate_format(&c->ss, buf, (size_t)n) != -ENOSPC)
			fail_msg("case %zu: no -ENOSPC for a buffer one byte short", i);
	}
}

/* ---- timing helpers --------------------------------------------------------------- */

static void test_refresh_at(void **state)
{
	(void)state;
	static const struct {
		uint32_t expires;
		int64_t want; /* seconds after now */
	} cases[] = {
	    {3600, 3540}, /* 60 s margin: longer than Timer F */
	    {600, 540},
	    {300, 240},
	    {301, 241},
	    {299, 240}, /* 80 % from here down */
	    {120, 96},
	    {60, 48},
	    {10, 8},
	    {5, 4},
	    {1, 1},
	    {0, 1}, /* a 0 s grant never makes an immediate loop */
	    {UINT32_MAX, (int64_t)UINT32_MAX - 60},
	};
	for (size_t i = 0; i < NELEM(cases); i++) {
		int64_t at = sub_refresh_at(NOW, cases[i].expires);
		if (at != NOW + cases[i].want)
			fail_msg("case expires=%u: refresh at now%+lld, want now%+lld",
			         (unsigned)cases[i].expires, (long long)(at - NOW),
			         (long long)cases[i].want);
		if (cases[i].expires > 0 && at >= NOW + cases[i].expires &&
		    cases[i].expires > 1)
			fail_msg("case expires=%u: refresh after the subscription lapsed",
			         (unsigned)cases[i].expires);
	}
	assert_true(sub_refresh_at(INT64_MAX - 5, 3600) == INT64_MAX);
}

static void test_retry_delay(void **state)
{
	(void)state;
	static const struct {
		uint32_t retries, retry_after, want;
	} cases[] = {
	    {0, 0, 30},
	    {1, 0, 30},
	    {2, 0, 60},
	    {3, 0, 120},
	    {4, 0, 240},
	    {6, 0, 960},
	    {7, 0, 1800},
	    {8, 0, 1800},
	    {40, 0, 1800},
	    {UINT32_MAX, 0, 1800},
	    {1, 5, 5},
	    {9, 7200, 7200}, /* the peer's word beats our cap */
	    {1, SUB_RETRY_AFTER_MAX + 1, SUB_RETRY_AFTER_MAX},
	};
	for (size_t i = 0; i < NELEM(cases); i++) {
		uint32_t d =
		    sub_retry_delay(NULL, cases[i].retries, cases[i].retry_after);
		if (d != cases[i].want)
			fail_msg("case retries=%u retry-after=%u: %u, want %u",
			         (unsigned)cases[i].retries,
			         (unsigned)cases[i].retry_after, (unsigned)d,
			         (unsigned)cases[i].want);
	}
}

/* Back-off grows across failures and resets when the peer accepts. */
static void test_backoff_growth(void **state)
{
	(void)state;
	struct sub_state st = {XWD, XX, 0};
	static const int64_t want[] = {30, 60, 120, 240, 480, 960, 1800, 1800};

	for (size_t i = 0; i < NELEM(want); i++) {
		struct sub_event_info in = {.now = NOW};
		struct sub_result res;
		assert_int_equal(sub_transition(&st, EV(SIP_ERR_RETRY), &in, NULL, &res),
		                 0);
		assert_int_equal(res.next.phase, XB);
		if (res.timer_at - NOW != want[i])
			fail_msg("failure %zu: wait %lld, want %lld", i + 1,
			         (long long)(res.timer_at - NOW), (long long)want[i]);
		assert_int_equal(
		    sub_transition(&res.next, EV(TIMER_RETRY), &in, NULL, &res), 0);
		assert_int_equal(res.next.phase, XR);
		st = res.next;
	}
	struct sub_event_info in = {.now = NOW, .expires = 3600};
	struct sub_result res;
	assert_int_equal(sub_transition(&st, EV(SIP_NOTIFY_ACTIVE), &in, NULL, &res), 0);
	assert_int_equal(res.next.phase, XX);
	assert_int_equal(res.next.retries, 0);
}

/* ---- limits and argument checks --------------------------------------------------- */

static void test_limits(void **state)
{
	(void)state;
	struct sub_limits d, l;

	sub_limits_init(&d);
	assert_int_equal(sub_limits_check(&d), 0);
	assert_int_equal(sub_limits_check(NULL), -EINVAL);
	static const struct {
		const char *name;
		size_t off;
		uint32_t value;
	} bad[] = {
	    {"min 0", offsetof(struct sub_limits, min_expires), 0},
	    {"min above default", offsetof(struct sub_limits, min_expires), 3601},
	    {"default above max", offsetof(struct sub_limits, default_expires), 7201},
	    {"max below default", offsetof(struct sub_limits, max_expires), 3599},
	    {"retry_min 0", offsetof(struct sub_limits, retry_min), 0},
	    {"retry_min above max", offsetof(struct sub_limits, retry_min), 1801},
	    {"shutdown retry-after 0", offsetof(struct sub_limits, shutdown_retry_after),
	     0},
	};
	for (size_t i = 0; i < NELEM(bad); i++) {
		l = d;
		memcpy((char *)&l + bad[i].off, &bad[i].value, sizeof(uint32_t));
		if (sub_limits_check(&l) != -EINVAL)
			fail_msg("case '%s': accepted", bad[i].name);
		struct sub_state cur = {SWD, IDLE, 0};
		struct sub_event_info in = {.now = NOW, .expires = 3600};
		struct sub_result res;
		if (sub_transition(&cur, EV(SIP_SUBSCRIBE), &in, &l, &res) != -EINVAL)
			fail_msg("case '%s': transition ran with bad limits",
			         bad[i].name);
	}

	/* Custom limits flow into the results. */
	l = d;
	l.min_expires = 300;
	l.max_expires = 900;
	l.default_expires = 600;
	struct sub_state cur = {SWD, IDLE, 0};
	struct sub_event_info in = {.now = NOW, .expires = 3600};
	struct sub_result res;
	assert_int_equal(sub_transition(&cur, EV(SIP_SUBSCRIBE), &in, &l, &res), 0);
	assert_int_equal(res.expires, 900);
	assert_int_equal(res.timer_at, NOW + 900);
	assert_int_equal(sub_transition(&cur, EV(SIP_TOO_BRIEF), &in, &l, &res), 0);
	assert_int_equal(res.sip_status, 423);
	assert_int_equal(res.expires, 300);
	struct sub_state xw = {XWD, IDLE, 0};
	assert_int_equal(sub_transition(&xw, EV(XMPP_SUBSCRIBE), &in, &l, &res), 0);
	assert_int_equal(res.expires, 600);
}

struct bad_input {
	const char *name;
	struct sub_state cur;
	int ev;
	struct sub_event_info in;
};

static const struct bad_input bad_inputs[] = {
    {"dir out of range", {(enum sub_dir)2, IDLE, 0}, EV(XMPP_LINK_UP), {0}},
    {"negative dir", {(enum sub_dir) - 1, IDLE, 0}, EV(XMPP_LINK_UP), {0}},
    {"phase out of range", {SWD, SUB_PHASE_COUNT, 0}, EV(XMPP_LINK_UP), {0}},
    {"event out of range", {SWD, IDLE, 0}, SUB_EV_COUNT, {0}},
    {"negative event", {SWD, IDLE, 0}, -1, {0}},
    {"xw phase on a sip watcher", {SWD, XX, 0}, EV(XMPP_LINK_UP), {0}},
    {"sw phase on an xmpp watcher", {XWD, SA, 0}, EV(XMPP_LINK_UP), {0}},
    {"NOTIFY fed to a sip watcher", {SWD, SA, 0}, EV(SIP_NOTIFY_ACTIVE), {0}},
    {"SUBSCRIBE fed to an xmpp watcher", {XWD, XX, 0}, EV(SIP_SUBSCRIBE), IN(3600)},
    {"probe fed to a sip watcher", {SWD, SA, 0}, EV(XMPP_PROBE), {0}},
    {"SUBSCRIBE below min_expires", {SWD, IDLE, 0}, EV(SIP_SUBSCRIBE), IN(59)},
    {"refresh with Expires 0", {SWD, SA, 0}, EV(SIP_REFRESH), IN(0)},
    {"423 without Min-Expires", {XWD, XA, 0}, EV(SIP_ERR_INTERVAL), IN(3600)},
};

static void test_bad_input(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(bad_inputs); i++) {
		const struct bad_input *b = &bad_inputs[i];
		struct sub_result res;
		struct sub_result before;
		memset(&res, 0x77, sizeof(res));
		memcpy(&before, &res, sizeof(res));
		int rc =
		    sub_transition(&b->cur, (enum sub_event)b->ev, &b->in, NULL, &res);
		if (rc != -EINVAL)
			fail_msg("case '%s': returned %d, want -EINVAL", b->name, rc);
		if (memcmp(&res, &before, sizeof(res)) != 0)
			fail_msg("case '%s': result written on error", b->name);
	}
	struct sub_state cur = {SWD, IDLE, 0};
	struct sub_event_info in = {.now = NOW, .expires = 3600};
	struct sub_result res;
	assert_int_equal(sub_transition(NULL, EV(SIP_SUBSCRIBE), &in, NULL, &res),
	                 -EINVAL);
	assert_int_equal(sub_transition(&cur, EV(SIP_SUBSCRIBE), NULL, NULL, &res),
	                 -EINVAL);
	assert_int_equal(sub_transition(&cur, EV(SIP_SUBSCRIBE), &in, NULL, NULL),
	                 -EINVAL);

	/* cur and res may be the same object. */
	struct sub_result inplace;
	inplace.next = cur;
	assert_int_equal(
	    sub_transition(&inplace.next, EV(SIP_SUBSCRIBE), &in, NULL, &inplace), 0);
	assert_int_equal(inplace.next.phase, SP);

	/* The NOTIFY classifier refuses what it cannot read. */
	enum sub_event ev;
	struct sub_substate none = {0};
	assert_int_equal(sub_notify_event(&none, &ev), -EINVAL);
	assert_int_equal(sub_notify_event(NULL, &ev), -EINVAL);
	struct sub_substate odd = {.state = SUB_SS_OTHER};
	assert_int_equal(sub_notify_event(&odd, &ev), 0);
	assert_int_equal(ev, EV(SIP_NOTIFY_PENDING));
	struct sub_substate act = {.state = SUB_SS_ACTIVE, .reason = SUB_REASON_REJECTED};
	assert_int_equal(sub_notify_event(&act, &ev), 0);
	assert_int_equal(ev, EV(SIP_NOTIFY_ACTIVE));
}

/* ---- names ------------------------------------------------------------------------- */

static void check_names(const char *what, int count, const char *(*name)(int))
{
	for (int i = 0; i < count; i++) {
		const char *n = name(i);
		if (!n || !*n || strcmp(n, "?") == 0)
			fail_msg("%s %d has no name", what, i);
		for (const char *p = n; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			      *p == '-'))
				fail_msg("%s '%s': not lower case with dashes", what, n);
		for (int j = 0; j < i; j++)
			if (strcmp(n, name(j)) == 0)
				fail_msg("%s %d and %d share the name '%s'", what, j, i,
				         n);
	}
	if (strcmp(name(count), "?") != 0 || strcmp(name(-1), "?") != 0)
		fail_msg("%s: out-of-range values must read '?'", what);
}

static const char *dir_n(int v)
{
	return sub_dir_name((enum sub_dir)v);
}
static const char *phase_n(int v)
{
	return sub_phase_name((enum sub_phase)v);
}
static const char *event_n(int v)
{
	return sub_event_name((enum sub_event)v);
}
static const char *ss_n(int v)
{
	return sub_ss_name((enum sub_ss)v);
}
static const char *reason_n(int v)
{
	return sub_reason_name((enum sub_reason)v);
}
static const char *action_n(int v)
{
	return v < 0 || v >= 32 ? "?" : sub_action_name(1u << v);
}

static void test_names(void **state)
{
	(void)state;
	check_names("direction", SUB_DIR_COUNT, dir_n);
	check_names("phase", SUB_PHASE_COUNT, phase_n);
	check_names("event", SUB_EV_COUNT, event_n);
	check_names("substate", SUB_SS_COUNT, ss_n);
	check_names("reason", SUB_REASON_COUNT, reason_n);
	check_names("action", popcount(SUB_ACT_ALL), action_n);
	assert_string_equal(sub_action_name(0), "?");
	assert_string_equal(sub_action_name(RESP | NOTIFY), "?");

	/* The store writes names and reads them back. */
	for (int p = 0; p < SUB_PHASE_COUNT; p++) {
		enum sub_phase back = SUB_PHASE_COUNT;
		assert_int_equal(
		    sub_phase_parse(sub_phase_name((enum sub_phase)p), &back), 0);
		assert_int_equal(back, p);
	}
	for (int d = 0; d < SUB_DIR_COUNT; d++) {
		enum sub_dir back = SUB_DIR_COUNT;
		assert_int_equal(sub_dir_parse(sub_dir_name((enum sub_dir)d), &back), 0);
		assert_int_equal(back, d);
	}
	enum sub_phase ph = SP;
	assert_int_equal(sub_phase_parse("sw-Active", &ph), -EINVAL);
	assert_int_equal(sub_phase_parse("", &ph), -EINVAL);
	assert_int_equal(sub_phase_parse(NULL, &ph), -EINVAL);
	assert_int_equal(ph, SP);
	enum sub_dir dir = XWD;
	assert_int_equal(sub_dir_parse("both", &dir), -EINVAL);
	assert_int_equal(dir, XWD);

	char buf[64];
	assert_int_equal(sub_actions_format(0, buf, sizeof(buf)), 4);
	assert_string_equal(buf, "none");
	assert_int_equal(sub_actions_format(RESP | NOTIFY | DROP, buf, sizeof(buf)),
	                 (int)strlen("sip-response|sip-notify|drop"));
	assert_string_equal(buf, "sip-response|sip-notify|drop");
	assert_int_equal(sub_actions_format(SUB_ACT_ALL, buf, 20), -ENOSPC);
	assert_true(strlen(buf) < 20);
	assert_int_equal(sub_actions_format(RESP, buf, 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_table_properties),
	    cmocka_unit_test(test_totality),
	    cmocka_unit_test(test_scenarios),
	    cmocka_unit_test(test_notify_terminated_outcome),
	    cmocka_unit_test(test_response_event),
	    cmocka_unit_test(test_subscribe_event),
	    cmocka_unit_test(test_substate_parse),
	    cmocka_unit_test(test_substate_parse_mutations),
	    cmocka_unit_test(test_substate_format),
	    cmocka_unit_test(test_refresh_at),
	    cmocka_unit_test(test_retry_delay),
	    cmocka_unit_test(test_backoff_growth),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

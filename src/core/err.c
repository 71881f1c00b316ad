#include "presbridge/err.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Names and RFC 6120 section 8.3.3 types; undefined-condition has no single
 * type in RFC 6120, its example uses modify. */
static const struct {
	const char *name;
	enum err_type type;
} conds[ERR_COND_COUNT] = {
    [ERR_COND_BAD_REQUEST] = {"bad-request", ERR_TYPE_MODIFY},
    [ERR_COND_CONFLICT] = {"conflict", ERR_TYPE_CANCEL},
    [ERR_COND_FEATURE_NOT_IMPLEMENTED] = {"feature-not-implemented", ERR_TYPE_CANCEL},
    [ERR_COND_FORBIDDEN] = {"forbidden", ERR_TYPE_AUTH},
    [ERR_COND_GONE] = {"gone", ERR_TYPE_CANCEL},
    [ERR_COND_INTERNAL_SERVER_ERROR] = {"internal-server-error", ERR_TYPE_CANCEL},
    [ERR_COND_ITEM_NOT_FOUND] = {"item-not-found", ERR_TYPE_CANCEL},
    [ERR_COND_JID_MALFORMED] = {"jid-malformed", ERR_TYPE_MODIFY},
    [ERR_COND_NOT_ACCEPTABLE] = {"not-acceptable", ERR_TYPE_MODIFY},
    [ERR_COND_NOT_ALLOWED] = {"not-allowed", ERR_TYPE_CANCEL},
    [ERR_COND_NOT_AUTHORIZED] = {"not-authorized", ERR_TYPE_AUTH},
    [ERR_COND_POLICY_VIOLATION] = {"policy-violation", ERR_TYPE_MODIFY},
    [ERR_COND_RECIPIENT_UNAVAILABLE] = {"recipient-unavailable", ERR_TYPE_WAIT},
    [ERR_COND_REDIRECT] = {"redirect", ERR_TYPE_MODIFY},
    [ERR_COND_REGISTRATION_REQUIRED] = {"registration-required", ERR_TYPE_AUTH},
    [ERR_COND_REMOTE_SERVER_NOT_FOUND] = {"remote-server-not-found", ERR_TYPE_CANCEL},
    [ERR_COND_REMOTE_SERVER_TIMEOUT] = {"remote-server-timeout", ERR_TYPE_WAIT},
    [ERR_COND_RESOURCE_CONSTRAINT] = {"resource-constraint", ERR_TYPE_WAIT},
    [ERR_COND_SERVICE_UNAVAILABLE] = {"service-unavailable", ERR_TYPE_CANCEL},
    [ERR_COND_SUBSCRIPTION_REQUIRED] = {"subscription-required", ERR_TYPE_AUTH},
    [ERR_COND_UNDEFINED_CONDITION] = {"undefined-condition", ERR_TYPE_MODIFY},
    [ERR_COND_UNEXPECTED_REQUEST] = {"unexpected-request", ERR_TYPE_WAIT},
};

static const char *const types[ERR_TYPE_COUNT] = {
    [ERR_TYPE_AUTH] = "auth",         [ERR_TYPE_CANCEL] = "cancel",
    [ERR_TYPE_CONTINUE] = "continue", [ERR_TYPE_MODIFY] = "modify",
    [ERR_TYPE_WAIT] = "wait",
};

const char *err_cond_name(enum err_cond cond)
{
	return (unsigned)cond < ERR_COND_COUNT ? conds[cond].name : NULL;
}

int err_cond_from_name(const char *name, enum err_cond *condp)
{
	if (!name)
		return -EINVAL;
	for (size_t i = 0; i < ERR_COND_COUNT; i++) {
		if (strcmp(conds[i].name, name) == 0) {
			*condp = (enum err_cond)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *err_type_name(enum err_type type)
{
	return (unsigned)type < ERR_TYPE_COUNT ? types[type] : NULL;
}

int err_type_from_name(const char *name, enum err_type *typep)
{
	if (!name)
		return -EINVAL;
	for (size_t i = 0; i < ERR_TYPE_COUNT; i++) {
		if (strcmp(types[i], name) == 0) {
			*typep = (enum err_type)i;
			return 0;
		}
	}
	return -EINVAL;
}

enum err_type err_cond_type(enum err_cond cond)
{
	return (unsigned)cond < ERR_COND_COUNT ? conds[cond].type : ERR_TYPE_CANCEL;
}

/* RFC 7247 section 7.2, Table 3, the coded rows in the RFC's order (its 3xx,
 * 4xx, 5xx and 6xx rows are the class defaults below). */
static const struct {
	int code;
	enum err_cond cond;
} sip2xmpp[] = {
    {300, ERR_COND_REDIRECT},
    {301, ERR_COND_GONE}, /* note 1: with the new address */
    {302, ERR_COND_REDIRECT},
    {305, ERR_COND_REDIRECT},
    {380, ERR_COND_NOT_ACCEPTABLE},
    {400, ERR_COND_BAD_REQUEST},
    {401, ERR_COND_NOT_AUTHORIZED},
    {402, ERR_COND_BAD_REQUEST},    /* note 2 */
    {403, ERR_COND_FORBIDDEN},      /* note 3 */
    {404, ERR_COND_ITEM_NOT_FOUND}, /* note 4 */
    {405, ERR_COND_FEATURE_NOT_IMPLEMENTED},
    {406, ERR_COND_NOT_ACCEPTABLE},
    {407, ERR_COND_REGISTRATION_REQUIRED},
    {408, ERR_COND_REMOTE_SERVER_TIMEOUT}, /* note 5 */
    {410, ERR_COND_GONE},                  /* note 1: without an address */
    {413, ERR_COND_POLICY_VIOLATION},
    {414, ERR_COND_POLICY_VIOLATION},
    {415, ERR_COND_NOT_ACCEPTABLE},
    {416, ERR_COND_NOT_ACCEPTABLE},
    {420, ERR_COND_FEATURE_NOT_IMPLEMENTED},
    {421, ERR_COND_NOT_ACCEPTABLE},
    {423, ERR_COND_RESOURCE_CONSTRAINT},
    {430, ERR_COND_RECIPIENT_UNAVAILABLE},   /* note 6 */
    {439, ERR_COND_FEATURE_NOT_IMPLEMENTED}, /* note 6 */
    {440, ERR_COND_POLICY_VIOLATION},        /* note 7 */
    {480, ERR_COND_RECIPIENT_UNAVAILABLE},
    {481, ERR_COND_ITEM_NOT_FOUND},
    {482, ERR_COND_NOT_ACCEPTABLE},
    {483, ERR_COND_NOT_ACCEPTABLE},
    {484, ERR_COND_ITEM_NOT_FOUND},
    {485, ERR_COND_ITEM_NOT_FOUND},
    {486, ERR_COND_RECIPIENT_UNAVAILABLE},
    {487, ERR_COND_RECIPIENT_UNAVAILABLE},
    {488, ERR_COND_NOT_ACCEPTABLE},
    {489, ERR_COND_POLICY_VIOLATION}, /* note 8 */
    {491, ERR_COND_UNEXPECTED_REQUEST},
    {493, ERR_COND_BAD_REQUEST},
    {500, ERR_COND_INTERNAL_SERVER_ERROR},
    {501, ERR_COND_FEATURE_NOT_IMPLEMENTED},
    {502, ERR_COND_REMOTE_SERVER_NOT_FOUND},
    {503, ERR_COND_INTERNAL_SERVER_ERROR}, /* note 9: not service-unavailable */
    {504, ERR_COND_REMOTE_SERVER_TIMEOUT},
    {505, ERR_COND_NOT_ACCEPTABLE},
    {513, ERR_COND_POLICY_VIOLATION},
    {600, ERR_COND_RECIPIENT_UNAVAILABLE},
    {603, ERR_COND_RECIPIENT_UNAVAILABLE},
    {604, ERR_COND_ITEM_NOT_FOUND},
    {606, ERR_COND_NOT_ACCEPTABLE},
};

/* RFC 7247 section 7.2, first paragraph: a code Table 3 does not list gets its
 * class's condition. Indexed by the class digit. */
static const enum err_cond class_default[7] = {
    [3] = ERR_COND_REDIRECT,
    [4] = ERR_COND_BAD_REQUEST,
    [5] = ERR_COND_INTERNAL_SERVER_ERROR,
    [6] = ERR_COND_RECIPIENT_UNAVAILABLE,
};

int err_sip_to_xmpp(int status, struct err_xmpp *out)
{
	if (status < 300 || status > 699)
		return -EINVAL;
	enum err_cond cond = class_default[status / 100];
	for (size_t i = 0; i < N(sip2xmpp); i++)
		if (sip2xmpp[i].code == status) {
			cond = sip2xmpp[i].cond;
			break;
		}
	out->cond = cond;
	out->type = err_cond_type(cond);
	return 0;
}

/* RFC 7247 section 7.1, Table 2, in the RFC's order. Where the RFC gives two
 * codes, alt_code applies when the caller sets flag (see err.h). */
static const struct {
	enum err_cond cond;
	int code;
	unsigned flag;
	int alt_code;
} xmpp2sip[ERR_COND_COUNT] = {
    {ERR_COND_BAD_REQUEST, 400, 0, 0},
    {ERR_COND_CONFLICT, 400, 0, 0},
    /* note 1: 405 for a full JID, 501 for a bare JID */
    {ERR_COND_FEATURE_NOT_IMPLEMENTED, 405, ERR_X2S_BARE_JID, 501},
    /* note 2: the 4xx code for a full JID, the 6xx code for a bare JID */
    {ERR_COND_FORBIDDEN, 403, ERR_X2S_BARE_JID, 603},
    /* note 3: 301 when the new address is given, 410 otherwise */
    {ERR_COND_GONE, 410, ERR_X2S_NEW_ADDRESS, 301},
    {ERR_COND_INTERNAL_SERVER_ERROR, 500, 0, 0},
    {ERR_COND_ITEM_NOT_FOUND, 404, ERR_X2S_BARE_JID, 604}, /* note 2 */
    {ERR_COND_JID_MALFORMED, 400, 0, 0},
    {ERR_COND_NOT_ACCEPTABLE, 406, ERR_X2S_BARE_JID, 606}, /* note 2 */
    {ERR_COND_NOT_ALLOWED, 403, 0, 0},
    {ERR_COND_NOT_AUTHORIZED, 401, 0, 0},
    {ERR_COND_POLICY_VIOLATION, 403, 0, 0},
    {ERR_COND_RECIPIENT_UNAVAILABLE, 480, ERR_X2S_BARE_JID, 600}, /* note 2 */
    {ERR_COND_REDIRECT, 302, 0, 0},
    {ERR_COND_REGISTRATION_REQUIRED, 407, 0, 0},
    /* note 4: 404 when the server does not exist, 408 when it cannot be
     * resolved */
    {ERR_COND_REMOTE_SERVER_NOT_FOUND, 404, ERR_X2S_UNRESOLVED, 408},
    {ERR_COND_REMOTE_SERVER_TIMEOUT, 408, 0, 0},
    {ERR_COND_RESOURCE_CONSTRAINT, 500, 0, 0},
    /* note 5: never 503; 403 and 405 are the closest */
    {ERR_COND_SERVICE_UNAVAILABLE, 403, ERR_X2S_METHOD, 405},
    {ERR_COND_SUBSCRIPTION_REQUIRED, 400, 0, 0},
    {ERR_COND_UNDEFINED_CONDITION, 400, 0, 0},
    /* "491 or 400": 491 only where a request of the dialog is pending (RFC
     * 3261 section 14.2), which is what the SIP code says */
    {ERR_COND_UNEXPECTED_REQUEST, 400, ERR_X2S_PENDING, 491},
};

int err_xmpp_to_sip(enum err_cond cond, unsigned flags, struct err_sip *out)
{
	for (size_t i = 0; i < N(xmpp2sip); i++) {
		if (xmpp2sip[i].cond != cond)
			continue;
		int code =
		    (flags & xmpp2sip[i].flag) ? xmpp2sip[i].alt_code : xmpp2sip[i].code;
		out->code = code;
		out->reason = err_sip_reason(code);
		return 0;
	}
	return -EINVAL;
}

/* RFC 3261 section 21, plus the RFCs that registered the other codes. */
static const struct {
	int code;
	const char *reason;
} reasons[] = {
    {100, "Trying"},
    {180, "Ringing"},
    {181, "Call Is Being Forwarded"},
    {182, "Queued"},
    {183, "Session Progress"},
    {199, "Early Dialog Terminated"},
    {200, "OK"},
    {202, "Accepted"},
    {204, "No Notification"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Moved Temporarily"},
    {305, "Use Proxy"},
    {380, "Alternative Service"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {410, "Gone"},
    {412, "Conditional Request Failed"},
    {413, "Request Entity Too Large"},
    {414, "Request-URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Unsupported URI Scheme"},
    {417, "Unknown Resource-Priority"},
    {420, "Bad Extension"},
    {421, "Extension Required"},
    {422, "Session Interval Too Small"},
    {423, "Interval Too Brief"},
    {428, "Use Identity Header"},
    {429, "Provide Referrer Identity"},
    {430, "Flow Failed"},
    {433, "Anonymity Disallowed"},
    {436, "Bad Identity-Info"},
    {437, "Unsupported Certificate"},
    {438, "Invalid Identity Header"},
    {439, "First Hop Lacks Outbound Support"},
    {440, "Max-Breadth Exceeded"},
    {469, "Bad Info Package"},
    {470, "Consent Needed"},
    {480, "Temporarily Unavailable"},
    {481, "Call/Transaction Does Not Exist"},
    {482, "Loop Detected"},
    {483, "Too Many Hops"},
    {484, "Address Incomplete"},
    {485, "Ambiguous"},
    {486, "Busy Here"},
    {487, "Request Terminated"},
    {488, "Not Acceptable Here"},
    {489, "Bad Event"},
    {491, "Request Pending"},
    {493, "Undecipherable"},
    {494, "Security Agreement Required"},
    {500, "Server Internal Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Server Time-out"},
    {505, "Version Not Supported"},
    {513, "Message Too Large"},
    {580, "Precondition Failure"},
    {600, "Busy Everywhere"},
    {603, "Decline"},
    {604, "Does Not Exist Anywhere"},
    {606, "Not Acceptable"},
};

static const char *reason_of(int code)
{
	for (size_t i = 0; i < N(reasons); i++)
		if (reasons[i].code == code)
			return reasons[i].reason;
	return NULL;
}

const char *err_sip_reason(int code)
{
	if (code < 100 || code > 699)
		return NULL;
	const char *r = reason_of(code);
	return r ? r : reason_of(code / 100 * 100);
}

/* The bridge's refusals. Each row's SIP code and XMPP condition are a pair of
 * RFC 7247 section 7: Table 3 (7.2) maps the code to the condition, and Table 2
 * (7.1) maps the condition back to the code, except where a SIP rule names a
 * more specific code than Table 2 can give (the SIP codes being the finer set,
 * as section 7 notes) or Table 3 a more general condition:
 *   - address-malformed: 400 -> bad-request in Table 3; jid-malformed is
 *     what the XMPP sender needs, and Table 2 maps it to 400;
 *   - limit: 500 -> internal-server-error in Table 3; resource-constraint
 *     (type wait) says "later", and Table 2 maps it to 500; Retry-After rides
 *     on the 500 (RFC 3261 section 20.33);
 *   - shutting-down: 503 (RFC 3261 section 21.5.4, maintenance; a client
 *     tries another server, RFC 3263 section 4.3), which Table 3 maps to
 *     internal-server-error (note 9); Table 2 gives that 500. 503 is right
 *     here for the reason note 5 gives against it elsewhere: the whole bridge
 *     is going away;
 *   - too-large 413 (RFC 3261 section 21.4.11), unsupported-media 415 and
 *     no-session 481 (RFC 3261 sections 8.2.3 and 12.2.2: MUST): Table 3 maps
 *     each to the condition used; Table 2 would give 403, 406 and 404.
 * A link to one XMPP domain being down is not the whole server (note 5 again),
 * so xmpp-down is 480 with Retry-After / recipient-unavailable, a pair both
 * tables agree on. No refusal is service-unavailable/503. */
static const struct err_refusal refusals[ERR_BRIDGE_COUNT] = {
    [ERR_BRIDGE_DOMAIN_UNMAPPED] = {"domain-unmapped", 404, 0, ERR_COND_ITEM_NOT_FOUND,
                                    ERR_TYPE_CANCEL,
                                    "the destination domain is not bridged (it is not "
                                    "listed in domains.map)"},
    [ERR_BRIDGE_ADDRESS_MALFORMED] = {"address-malformed", 400, 0, ERR_COND_JID_MALFORMED,
                                      ERR_TYPE_MODIFY,
                                      "the address cannot be written on the other side"},
    [ERR_BRIDGE_PEER_FORBIDDEN] = {"peer-forbidden", 403, 0, ERR_COND_FORBIDDEN,
                                   ERR_TYPE_AUTH,
                                   "the sending server is not a configured, trusted peer "
                                   "of this bridge"},
    [ERR_BRIDGE_LIMIT] = {"limit", 500, 60, ERR_COND_RESOURCE_CONSTRAINT, ERR_TYPE_WAIT,
                          "the bridge is at a configured limit; try again later"},
    [ERR_BRIDGE_XMPP_DOWN] = {"xmpp-down", 480, 30, ERR_COND_RECIPIENT_UNAVAILABLE,
                              ERR_TYPE_WAIT,
                              "the bridge has lost its link to the XMPP server and is "
                              "reconnecting"},
    [ERR_BRIDGE_SIP_DOWN] = {"sip-down", 408, 0, ERR_COND_REMOTE_SERVER_TIMEOUT,
                             ERR_TYPE_WAIT,
                             "the bridge cannot reach the SIP server of the destination "
                             "domain"},
    [ERR_BRIDGE_SHUTTING_DOWN] = {"shutting-down", 503, 60,
                                  ERR_COND_INTERNAL_SERVER_ERROR, ERR_TYPE_CANCEL,
                                  "the bridge is stopping"},
    [ERR_BRIDGE_TOO_LARGE] = {"too-large", 413, 0, ERR_COND_POLICY_VIOLATION,
                              ERR_TYPE_MODIFY,
                              "the message is longer than the bridge or the recipient's "
                              "server accepts"},
    [ERR_BRIDGE_UNSUPPORTED_MEDIA] =
        {"unsupported-media", 415, 0, ERR_COND_NOT_ACCEPTABLE, ERR_TYPE_MODIFY,
         "the message format cannot be translated (plain text "
         "and HTML in UTF-8 can)"},
    [ERR_BRIDGE_BAD_BODY] = {"bad-body", 400, 0, ERR_COND_BAD_REQUEST, ERR_TYPE_MODIFY,
                             "the message is not valid UTF-8 or not well-formed"},
    [ERR_BRIDGE_NO_SESSION] = {"no-session", 481, 0, ERR_COND_ITEM_NOT_FOUND,
                               ERR_TYPE_CANCEL,
                               "the conversation this belongs to has ended or is "
                               "unknown to the bridge"},
    [ERR_BRIDGE_INTERNAL] = {"internal", 500, 0, ERR_COND_INTERNAL_SERVER_ERROR,
                             ERR_TYPE_CANCEL, "the bridge failed; see its log"},
};

const struct err_refusal *err_bridge(enum err_bridge why)
{
	return (unsigned)why < ERR_BRIDGE_COUNT ? &refusals[why] : NULL;
}

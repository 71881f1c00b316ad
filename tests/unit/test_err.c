#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/err.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* RFC 6120 section 8.3.3: every defined condition, its name and its type. */
static const struct {
	enum err_cond cond;
	const char *name;
	enum err_type type;
} cond_rows[] = {
    {ERR_COND_BAD_REQUEST, "bad-request", ERR_TYPE_MODIFY},
    {ERR_COND_CONFLICT, "conflict", ERR_TYPE_CANCEL},
    {ERR_COND_FEATURE_NOT_IMPLEMENTED, "feature-not-implemented", ERR_TYPE_CANCEL},
    {ERR_COND_FORBIDDEN, "forbidden", ERR_TYPE_AUTH},
    {ERR_COND_GONE, "gone", ERR_TYPE_CANCEL},
    {ERR_COND_INTERNAL_SERVER_ERROR, "internal-server-error", ERR_TYPE_CANCEL},
    {ERR_COND_ITEM_NOT_FOUND, "item-not-found", ERR_TYPE_CANCEL},
    {ERR_COND_JID_MALFORMED, "jid-malformed", ERR_TYPE_MODIFY},
    {ERR_COND_NOT_ACCEPTABLE, "not-acceptable", ERR_TYPE_MODIFY},
    {ERR_COND_NOT_ALLOWED, "not-allowed", ERR_TYPE_CANCEL},
    {ERR_COND_NOT_AUTHORIZED, "not-authorized", ERR_TYPE_AUTH},
    {ERR_COND_POLICY_VIOLATION, "policy-violation", ERR_TYPE_MODIFY},
    {ERR_COND_RECIPIENT_UNAVAILABLE, "recipient-unavailable", ERR_TYPE_WAIT},
    {ERR_COND_REDIRECT, "redirect", ERR_TYPE_MODIFY},
    {ERR_COND_REGISTRATION_REQUIRED, "registration-required", ERR_TYPE_AUTH},
    {ERR_COND_REMOTE_SERVER_NOT_FOUND, "remote-server-not-found", ERR_TYPE_CANCEL},
    {ERR_COND_REMOTE_SERVER_TIMEOUT, "remote-server-timeout", ERR_TYPE_WAIT},
    {ERR_COND_RESOURCE_CONSTRAINT, "resource-constraint", ERR_TYPE_WAIT},
    {ERR_COND_SERVICE_UNAVAILABLE, "service-unavailable", ERR_TYPE_CANCEL},
    {ERR_COND_SUBSCRIPTION_REQUIRED, "subscription-required", ERR_TYPE_AUTH},
    {ERR_COND_UNDEFINED_CONDITION, "undefined-condition", ERR_TYPE_MODIFY},
    {ERR_COND_UNEXPECTED_REQUEST, "unexpected-request", ERR_TYPE_WAIT},
};

static void test_cond_names(void **state)
{
	(void)state;
	assert_int_equal(N(cond_rows), ERR_COND_COUNT);
	for (size_t i = 0; i < N(cond_rows); i++) {
		const char *name = cond_rows[i].name;
		enum err_cond c = ERR_COND_COUNT;
		if (!err_cond_name(cond_rows[i].cond) ||
		    strcmp(err_cond_name(cond_rows[i].cond), name) != 0)
			fail_msg("case '%s': wrong name", name);
		if (err_cond_from_name(name, &c) || c != cond_rows[i].cond)
			fail_msg("case '%s': does not read back", name);
		if (err_cond_type(c) != cond_rows[i].type)
			fail_msg("case '%s': type %s", name,
			         err_type_name(err_cond_type(c)));
	}
	/* Legacy, misspelt and empty names are not conditions. */
	static const char *const bad[] = {"payment-required", "Bad-Request",
	                                  "bad_request",      "",
	                                  "item-not-found ",  "stanza-error"};
	for (size_t i = 0; i < N(bad); i++) {
		enum err_cond c = ERR_COND_GONE;
		if (err_cond_from_name(bad[i], &c) != -EINVAL || c != ERR_COND_GONE)
			fail_msg("case '%s': accepted", bad[i]);
	}
	enum err_cond c;
	assert_int_equal(err_cond_from_name(NULL, &c), -EINVAL);
	assert_null(err_cond_name(ERR_COND_COUNT));
	assert_null(err_cond_name((enum err_cond) - 1));
	assert_int_equal(err_cond_type(ERR_COND_COUNT), ERR_TYPE_CANCEL);
}

static const struct {
	enum err_type type;
	const char *name;
} type_rows[] = {
    {ERR_TYPE_AUTH, "auth"},         {ERR_TYPE_CANCEL, "cancel"},
    {ERR_TYPE_CONTINUE, "continue"}, {ERR_TYPE_MODIFY, "modify"},
    {ERR_TYPE_WAIT, "wait"},
};

static void test_type_names(void **state)
{
	(void)state;
	assert_int_equal(N(type_rows), ERR_TYPE_COUNT);
	for (size_t i = 0; i < N(type_rows); i++) {
		enum err_type t = ERR_TYPE_COUNT;
		if (!err_type_name(type_rows[i].type) ||
		    strcmp(err_type_name(type_rows[i].type), type_rows[i].name) != 0)
			fail_msg("case '%s': wrong name", type_rows[i].name);
		if (err_type_from_name(type_rows[i].name, &t) || t != type_rows[i].type)
			fail_msg("case '%s': does not read back", type_rows[i].name);
	}
	enum err_type t;
	assert_int_equal(err_type_from_name("Cancel", &t), -EINVAL);
	assert_int_equal(err_type_from_name(NULL, &t), -EINVAL);
	assert_null(err_type_name(ERR_TYPE_COUNT));
}

/* RFC 7247 section 7.2, Table 3: one row per coded row of the table, in its
 * order, the condition typed from the RFC text. */
static const struct {
	int code;
	enum err_cond cond;
} sip_rows[] = {
    {300, ERR_COND_REDIRECT},
    {301, ERR_COND_GONE}, /* note 1 */
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
    {410, ERR_COND_GONE},                  /* note 1 */
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
    {503, ERR_COND_INTERNAL_SERVER_ERROR}, /* note 9 */
    {504, ERR_COND_REMOTE_SERVER_TIMEOUT},
    {505, ERR_COND_NOT_ACCEPTABLE},
    {513, ERR_COND_POLICY_VIOLATION},
    {600, ERR_COND_RECIPIENT_UNAVAILABLE},
    {603, ERR_COND_RECIPIENT_UNAVAILABLE},
    {604, ERR_COND_ITEM_NOT_FOUND},
    {606, ERR_COND_NOT_ACCEPTABLE},
};

/* RFC 7247 section 7.2, first paragraph and the 3xx/4xx/5xx/6xx rows of Table 3:
 * a code the table does not list gets its class's condition. Among them codes
 * registered after RFC 7247 or left out of Table 3 on purpose (433-470, 494,
 * 580), and the gaps next to listed codes. */
static const struct {
	int code;
	enum err_cond cond;
} class_rows[] = {
    {303, ERR_COND_REDIRECT},
    {399, ERR_COND_REDIRECT},
    {409, ERR_COND_BAD_REQUEST},
    {411, ERR_COND_BAD_REQUEST},
    {412, ERR_COND_BAD_REQUEST},
    {422, ERR_COND_BAD_REQUEST},
    {428, ERR_COND_BAD_REQUEST},
    {433, ERR_COND_BAD_REQUEST},
    {437, ERR_COND_BAD_REQUEST},
    {438, ERR_COND_BAD_REQUEST},
    {469, ERR_COND_BAD_REQUEST},
    {470, ERR_COND_BAD_REQUEST},
    {490, ERR_COND_BAD_REQUEST},
    {494, ERR_COND_BAD_REQUEST},
    {499, ERR_COND_BAD_REQUEST},
    {506, ERR_COND_INTERNAL_SERVER_ERROR},
    {580, ERR_COND_INTERNAL_SERVER_ERROR},
    {599, ERR_COND_INTERNAL_SERVER_ERROR},
    {601, ERR_COND_RECIPIENT_UNAVAILABLE},
    {605, ERR_COND_RECIPIENT_UNAVAILABLE},
    {607, ERR_COND_RECIPIENT_UNAVAILABLE},
    {699, ERR_COND_RECIPIENT_UNAVAILABLE},
};

static void check_sip(int code, enum err_cond want, const char *what)
{
	struct err_xmpp x = {ERR_COND_COUNT, ERR_TYPE_COUNT};
	int err = err_sip_to_xmpp(code, &x);
	if (err || x.cond != want)
		fail_msg("case %s %d: got %d %s, want %s", what, code, err,
		         err ? "-" : err_cond_name(x.cond), err_cond_name(want));
	if (x.type != err_cond_type(want))
		fail_msg("case %s %d: type %s", what, code, err_type_name(x.type));
}

static void test_sip_to_xmpp(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(sip_rows); i++)
		check_sip(sip_rows[i].code, sip_rows[i].cond, "Table 3");
	for (size_t i = 0; i < N(class_rows); i++) {
		for (size_t k = 0; k < N(sip_rows); k++)
			if (sip_rows[k].code == class_rows[i].code)
				fail_msg("case %d: listed in Table 3",
				         class_rows[i].code);
		check_sip(class_rows[i].code, class_rows[i].cond, "class default");
	}
	/* Note 9 (section 7.2) and note 5 (section 7.1): no SIP code yields
	 * service-unavailable. */
	for (int code = 300; code <= 699; code++) {
		struct err_xmpp x;
		if (err_sip_to_xmpp(code, &x) || x.cond == ERR_COND_SERVICE_UNAVAILABLE)
			fail_msg("case %d: %s", code, err_cond_name(x.cond));
	}

	/* Provisional and success responses, and non-codes, are not errors. */
	static const int not_errors[] = {-1,  0,   99,  100, 180, 183,
	                                 200, 202, 299, 700, 999};
	for (size_t i = 0; i < N(not_errors); i++) {
		struct err_xmpp x = {ERR_COND_GONE, ERR_TYPE_AUTH};
		if (err_sip_to_xmpp(not_errors[i], &x) != -EINVAL ||
		    x.cond != ERR_COND_GONE || x.type != ERR_TYPE_AUTH)
			fail_msg("case %d: mapped to an error", not_errors[i]);
	}
}

/* RFC 7247 section 7.1, Table 2: one row per row of the table. code: the SIP
 * code with no flag (a full JID, no new address, ...); alt_flag/alt_code: the
 * other code the row or its note gives and the flag that selects it. */
static const struct {
	enum err_cond cond;
	int code;
	const char *reason;
	unsigned alt_flag;
	int alt_code;
} xmpp_rows[] = {
    {ERR_COND_BAD_REQUEST, 400, "Bad Request", 0, 0},
    {ERR_COND_CONFLICT, 400, "Bad Request", 0, 0},
    /* note 1: full JID 405, bare JID 501 */
    {ERR_COND_FEATURE_NOT_IMPLEMENTED, 405, "Method Not Allowed", ERR_X2S_BARE_JID, 501},
    /* note 2: full JID 4xx, bare JID 6xx */
    {ERR_COND_FORBIDDEN, 403, "Forbidden", ERR_X2S_BARE_JID, 603},
    /* note 3: 301 with the new address, else 410 */
    {ERR_COND_GONE, 410, "Gone", ERR_X2S_NEW_ADDRESS, 301},
    {ERR_COND_INTERNAL_SERVER_ERROR, 500, "Server Internal Error", 0, 0},
    {ERR_COND_ITEM_NOT_FOUND, 404, "Not Found", ERR_X2S_BARE_JID, 604}, /* note 2 */
    {ERR_COND_JID_MALFORMED, 400, "Bad Request", 0, 0},
    {ERR_COND_NOT_ACCEPTABLE, 406, "Not Acceptable", ERR_X2S_BARE_JID, 606}, /* note 2 */
    {ERR_COND_NOT_ALLOWED, 403, "Forbidden", 0, 0},
    {ERR_COND_NOT_AUTHORIZED, 401, "Unauthorized", 0, 0},
    {ERR_COND_POLICY_VIOLATION, 403, "Forbidden", 0, 0},
    /* note 2 */
    {ERR_COND_RECIPIENT_UNAVAILABLE, 480, "Temporarily Unavailable", ERR_X2S_BARE_JID,
     600},
    {ERR_COND_REDIRECT, 302, "Moved Temporarily", 0, 0},
    {ERR_COND_REGISTRATION_REQUIRED, 407, "Proxy Authentication Required", 0, 0},
    /* note 4: (a) does not exist 404, (b) cannot be resolved 408 */
    {ERR_COND_REMOTE_SERVER_NOT_FOUND, 404, "Not Found", ERR_X2S_UNRESOLVED, 408},
    {ERR_COND_REMOTE_SERVER_TIMEOUT, 408, "Request Timeout", 0, 0},
    {ERR_COND_RESOURCE_CONSTRAINT, 500, "Server Internal Error", 0, 0},
    /* note 5: not 503; 403 or 405 */
    {ERR_COND_SERVICE_UNAVAILABLE, 403, "Forbidden", ERR_X2S_METHOD, 405},
    {ERR_COND_SUBSCRIPTION_REQUIRED, 400, "Bad Request", 0, 0},
    {ERR_COND_UNDEFINED_CONDITION, 400, "Bad Request", 0, 0},
    /* "491 or 400" */
    {ERR_COND_UNEXPECTED_REQUEST, 400, "Bad Request", ERR_X2S_PENDING, 491},
};

static const unsigned all_flags = ERR_X2S_BARE_JID | ERR_X2S_NEW_ADDRESS |
                                  ERR_X2S_UNRESOLVED | ERR_X2S_PENDING | ERR_X2S_METHOD;

static void test_xmpp_to_sip(void **state)
{
	(void)state;
	assert_int_equal(N(xmpp_rows), ERR_COND_COUNT);
	for (size_t i = 0; i < N(xmpp_rows); i++) {
		const char *name = err_cond_name(xmpp_rows[i].cond);
		struct err_sip s = {0, NULL};
		if (err_xmpp_to_sip(xmpp_rows[i].cond, 0, &s) ||
		    s.code != xmpp_rows[i].code || !s.reason ||
		    strcmp(s.reason, xmpp_rows[i].reason) != 0)
			fail_msg("case '%s': got %d %s", name, s.code, s.reason);
		/* Flags meant for other conditions change nothing. */
		unsigned others = all_flags & ~xmpp_rows[i].alt_flag;
		if (err_xmpp_to_sip(xmpp_rows[i].cond, others, &s) ||
		    s.code != xmpp_rows[i].code)
			fail_msg("case '%s': unrelated flags gave %d", name, s.code);
		/* Note 5: 503 is never the answer. */
		if (err_xmpp_to_sip(xmpp_rows[i].cond, all_flags, &s) || s.code == 503)
			fail_msg("case '%s': 503", name);
		if (!xmpp_rows[i].alt_flag)
			continue;
		if (err_xmpp_to_sip(xmpp_rows[i].cond, xmpp_rows[i].alt_flag, &s) ||
		    s.code != xmpp_rows[i].alt_code || !s.reason ||
		    strcmp(s.reason, err_sip_reason(xmpp_rows[i].alt_code)) != 0)
			fail_msg("case '%s' alternative: got %d", name, s.code);
		if (err_xmpp_to_sip(xmpp_rows[i].cond, all_flags, &s) ||
		    s.code != xmpp_rows[i].alt_code)
			fail_msg("case '%s' all flags: got %d", name, s.code);
	}
	struct err_sip s = {7, "x"};
	assert_int_equal(err_xmpp_to_sip(ERR_COND_COUNT, 0, &s), -EINVAL);
	assert_int_equal(err_xmpp_to_sip((enum err_cond) - 3, 0, &s), -EINVAL);
	assert_int_equal(s.code, 7);
}

/* Reason phrases: RFC 3261 section 21 and the RFCs that registered the rest. */
static const struct {
	int code;
	const char *reason;
} reason_rows[] = {
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
    /* unregistered codes: the class's x00 phrase */
    {198, "Trying"},
    {299, "OK"},
    {399, "Multiple Choices"},
    {499, "Bad Request"},
    {599, "Server Internal Error"},
    {699, "Busy Everywhere"},
};

static void test_reasons(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(reason_rows); i++) {
		const char *r = err_sip_reason(reason_rows[i].code);
		if (!r || strcmp(r, reason_rows[i].reason) != 0)
			fail_msg("case %d: got \"%s\", want \"%s\"", reason_rows[i].code,
			         r, reason_rows[i].reason);
	}
	static const int invalid[] = {-100, 0, 99, 700, 1000};
	for (size_t i = 0; i < N(invalid); i++)
		if (err_sip_reason(invalid[i]))
			fail_msg("case %d: has a reason phrase", invalid[i]);
	/* Every code the RFC 7247 tables name has its own registered phrase. */
	for (size_t i = 0; i < N(sip_rows); i++) {
		int found = 0;
		for (size_t k = 0; k < N(reason_rows) && !found; k++)
			found = reason_rows[k].code == sip_rows[i].code;
		if (!found)
			fail_msg("case %d: no registered reason phrase",
			         sip_rows[i].code);
	}
}

/* The bridge's refusals, row by row. t3: RFC 7247 section 7.2 Table 3 maps the
 * code to the condition; t2: section 7.1 Table 2 maps the condition to the code
 * (with no flag, or with bare). Where one is 0, err.c names the SIP rule that
 * fixes the code or the reason for the finer condition. */
static const struct {
	enum err_bridge why;
	const char *name;
	int code;
	unsigned retry_after;
	enum err_cond cond;
	int t3, t2;
} refusal_rows[] = {
    {ERR_BRIDGE_DOMAIN_UNMAPPED, "domain-unmapped", 404, 0, ERR_COND_ITEM_NOT_FOUND, 1,
     1},
    /* Table 3: 400 -> bad-request; jid-malformed is finer */
    {ERR_BRIDGE_ADDRESS_MALFORMED, "address-malformed", 400, 0, ERR_COND_JID_MALFORMED, 0,
     1},
    {ERR_BRIDGE_PEER_FORBIDDEN, "peer-forbidden", 403, 0, ERR_COND_FORBIDDEN, 1, 1},
    /* Table 2: resource-constraint -> 500; Table 3: 500 -> internal-server-error */
    {ERR_BRIDGE_LIMIT, "limit", 500, 60, ERR_COND_RESOURCE_CONSTRAINT, 0, 1},
    /* both tables: recipient-unavailable <-> 480 (note 2, 4xx form) */
    {ERR_BRIDGE_XMPP_DOWN, "xmpp-down", 480, 30, ERR_COND_RECIPIENT_UNAVAILABLE, 1, 1},
    /* both tables: remote-server-timeout <-> 408 */
    {ERR_BRIDGE_SIP_DOWN, "sip-down", 408, 0, ERR_COND_REMOTE_SERVER_TIMEOUT, 1, 1},
    /* Table 3 note 9: 503 -> internal-server-error; Table 2 gives 500 */
    {ERR_BRIDGE_SHUTTING_DOWN, "shutting-down", 503, 60, ERR_COND_INTERNAL_SERVER_ERROR,
     1, 0},
    {ERR_BRIDGE_TOO_LARGE, "too-large", 413, 0, ERR_COND_POLICY_VIOLATION, 1, 0},
    {ERR_BRIDGE_UNSUPPORTED_MEDIA, "unsupported-media", 415, 0, ERR_COND_NOT_ACCEPTABLE,
     1, 0},
    {ERR_BRIDGE_BAD_BODY, "bad-body", 400, 0, ERR_COND_BAD_REQUEST, 1, 1},
    {ERR_BRIDGE_NO_SESSION, "no-session", 481, 0, ERR_COND_ITEM_NOT_FOUND, 1, 0},
    {ERR_BRIDGE_INTERNAL, "internal", 500, 0, ERR_COND_INTERNAL_SERVER_ERROR, 1, 1},
};

static void test_refusals(void **state)
{
	(void)state;
	assert_int_equal(N(refusal_rows), ERR_BRIDGE_COUNT);
	for (size_t i = 0; i < N(refusal_rows); i++) {
		const char *name = refusal_rows[i].name;
		const struct err_refusal *r = err_bridge(refusal_rows[i].why);
		if (!r || strcmp(r->name, name) != 0)
			fail_msg("case '%s': wrong row", name);
		if (r->sip_code != refusal_rows[i].code ||
		    r->cond != refusal_rows[i].cond ||
		    r->retry_after != refusal_rows[i].retry_after)
			fail_msg("case '%s': %d %s retry %u", name, r->sip_code,
			         err_cond_name(r->cond), r->retry_after);
		if (r->type != err_cond_type(r->cond))
			fail_msg("case '%s': type %s", name, err_type_name(r->type));
		if (!r->explanation || strlen(r->explanation) < 10)
			fail_msg("case '%s': no explanation", name);
		/* RFC 3261 section 20.33: Retry-After goes with 404, 413, 480, 486,
		 * 500, 503, 600 and 603. */
		static const int ra_codes[] = {404, 413, 480, 486, 500, 503, 600, 603};
		int ra_ok = !r->retry_after;
		for (size_t k = 0; k < N(ra_codes); k++)
			ra_ok |= r->sip_code == ra_codes[k];
		if (!ra_ok)
			fail_msg("case '%s': Retry-After on %d", name, r->sip_code);
		/* RFC 7247 section 7.1 note 5: no refusal pairs service-unavailable with
		 * 503, nor uses either. */
		if (r->cond == ERR_COND_SERVICE_UNAVAILABLE)
			fail_msg("case '%s': service-unavailable", name);
		struct err_xmpp x;
		struct err_sip s, sb;
		assert_int_equal(err_sip_to_xmpp(r->sip_code, &x), 0);
		assert_int_equal(err_xmpp_to_sip(r->cond, 0, &s), 0);
		assert_int_equal(err_xmpp_to_sip(r->cond, ERR_X2S_BARE_JID, &sb), 0);
		int t3 = x.cond == r->cond;
		int t2 = s.code == r->sip_code || sb.code == r->sip_code;
		if (t3 != refusal_rows[i].t3 || t2 != refusal_rows[i].t2)
			fail_msg("case '%s': Table 3 %d (%s), Table 2 %d (%d)", name, t3,
			         err_cond_name(x.cond), t2, s.code);
		if (!t3 && !t2)
			fail_msg("case '%s': agrees with neither table", name);
	}
	assert_null(err_bridge(ERR_BRIDGE_COUNT));
	assert_null(err_bridge((enum err_bridge) - 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cond_names),  cmocka_unit_test(test_type_names),
	    cmocka_unit_test(test_sip_to_xmpp), cmocka_unit_test(test_xmpp_to_sip),
	    cmocka_unit_test(test_reasons),     cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * err - errors across the bridge: SIP response codes <-> XMPP stanza errors.
 *
 * The mapping tables are those of RFC 7247 section 7, on which the IM mapping
 * of RFC 7572 relies: Table 2 of section 7.1 (XMPP condition -> SIP code) with
 * its notes 1-5, and Table 3 of section 7.2 (SIP code -> XMPP condition), whose
 * opening paragraph gives the class defaults for codes it does not list (3xx
 * redirect, 4xx bad-request, 5xx internal-server-error, 6xx
 * recipient-unavailable). Error types (cancel/continue/modify/auth/wait) are
 * those RFC 6120 section 8.3.3 gives each condition.
 *
 * The bridge's own refusals (address not bridged, peer not trusted, limits,
 * links down) are named rows of one table, so both sides always get the same,
 * explainable answer; each row's SIP code and XMPP condition are a pair under
 * both RFC 7247 tables, or under one with the reason given in err.c (and in
 * docs/design-notes.md, "Error mapping").
 */
#ifndef PRESBRIDGE_ERR_H
#define PRESBRIDGE_ERR_H

/* RFC 6120 section 8.3.3 defined stanza error conditions. */
enum err_cond {
	ERR_COND_BAD_REQUEST,
	ERR_COND_CONFLICT,
	ERR_COND_FEATURE_NOT_IMPLEMENTED,
	ERR_COND_FORBIDDEN,
	ERR_COND_GONE,
	ERR_COND_INTERNAL_SERVER_ERROR,
	ERR_COND_ITEM_NOT_FOUND,
	ERR_COND_JID_MALFORMED,
	ERR_COND_NOT_ACCEPTABLE,
	ERR_COND_NOT_ALLOWED,
	ERR_COND_NOT_AUTHORIZED,
	ERR_COND_POLICY_VIOLATION,
	ERR_COND_RECIPIENT_UNAVAILABLE,
	ERR_COND_REDIRECT,
	ERR_COND_REGISTRATION_REQUIRED,
	ERR_COND_REMOTE_SERVER_NOT_FOUND,
	ERR_COND_REMOTE_SERVER_TIMEOUT,
	ERR_COND_RESOURCE_CONSTRAINT,
	ERR_COND_SERVICE_UNAVAILABLE,
	ERR_COND_SUBSCRIPTION_REQUIRED,
	ERR_COND_UNDEFINED_CONDITION,
	ERR_COND_UNEXPECTED_REQUEST,
	ERR_COND_COUNT
};

/* RFC 6120 section 8.3.2 error types. */
enum err_type {
	ERR_TYPE_AUTH,
	ERR_TYPE_CANCEL,
	ERR_TYPE_CONTINUE,
	ERR_TYPE_MODIFY,
	ERR_TYPE_WAIT,
	ERR_TYPE_COUNT
};

#define ERR_NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

struct err_xmpp {
	enum err_cond cond;
	enum err_type type;
};

struct err_sip {
	int code;
	const char *reason; /* static */
};

/* Element name of a condition ("item-not-found"); NULL out of range. Static. */
const char *err_cond_name(enum err_cond cond);
/* Condition from its element name. Returns 0 or -EINVAL (unknown or NULL). */
int err_cond_from_name(const char *name, enum err_cond *condp);
/* Type attribute value ("cancel"); NULL out of range. Static. */
const char *err_type_name(enum err_type type);
/* Type from its attribute value. Returns 0 or -EINVAL. */
int err_type_from_name(const char *name, enum err_type *typep);
/* The type RFC 6120 section 8.3.3 gives a condition (cancel when out of range). */
enum err_type err_cond_type(enum err_cond cond);

/*
 * SIP final response -> XMPP error (RFC 7247 section 7.2, Table 3 and its class
 * defaults). Returns 0, or -EINVAL when status is not an error (below 300 or
 * above 699): a 1xx or 2xx has no XMPP error. *out is set only on success.
 * For 301 the caller owes the <gone/> element the new address as character data
 * (note 1: MUST), taken from the response's Contact; for 410 it MUST NOT add any.
 * The alternatives of notes 3-5 (403, 404, 408) are not taken.
 */
int err_sip_to_xmpp(int status, struct err_xmpp *out);

/*
 * Where RFC 7247 section 7.1 gives two SIP codes for one condition, the caller
 * says which situation it is in; with no flag the first code of each pair below
 * applies.
 */
enum err_x2s_flag {
	/* the error relates to a bare JID (local@domain), not a full JID: notes 1
	 * and 2 recommend 501 instead of 405 for feature-not-implemented, and the
	 * 6xx code instead of the 4xx for forbidden (603), item-not-found (604),
	 * not-acceptable (606) and recipient-unavailable (600) */
	ERR_X2S_BARE_JID = 1 << 0,
	/* gone: the error carries the entity's new address, 301 (needs a Contact)
	 * instead of 410 (note 3: MUST either way) */
	ERR_X2S_NEW_ADDRESS = 1 << 1,
	/* remote-server-not-found: the remote server exists but its name cannot be
	 * resolved, 408 instead of 404 for one that does not exist (note 4) */
	ERR_X2S_UNRESOLVED = 1 << 2,
	/* unexpected-request: another request of the dialog is still pending, 491
	 * instead of 400 */
	ERR_X2S_PENDING = 1 << 3,
	/* service-unavailable: what is unsupported is the request's method, 405
	 * (needs an Allow header) instead of 403; never 503 (note 5) */
	ERR_X2S_METHOD = 1 << 4,
};

/*
 * XMPP error condition -> SIP response (RFC 7247 section 7.1); flags
 * is a set of enum err_x2s_flag. Returns 0 or -EINVAL (condition out of
 * range). *out is set only on success.
 */
int err_xmpp_to_sip(enum err_cond cond, unsigned flags, struct err_sip *out);

/*
 * The reason phrase for a SIP status code: RFC 3261 section 21 and the RFCs
 * that registered the codes RFC 7247 maps. Unregistered codes in 100-699 get
 * their class's x00 phrase; NULL outside 100-699. Static.
 */
const char *err_sip_reason(int code);

/* The bridge's own refusals. */
enum err_bridge {
	/* the address's domain is not in domains.map */
	ERR_BRIDGE_DOMAIN_UNMAPPED,
	/* the address cannot be written on the other side (bad URI or JID) */
	ERR_BRIDGE_ADDRESS_MALFORMED,
	/* the request came from a host that is not a configured, trusted peer */
	ERR_BRIDGE_PEER_FORBIDDEN,
	/* a configured limit (sessions, subscriptions, request rate) is reached */
	ERR_BRIDGE_LIMIT,
	/* the bridge's link to the XMPP server is down; it reconnects by itself */
	ERR_BRIDGE_XMPP_DOWN,
	/* the SIP server for the destination domain cannot be reached */
	ERR_BRIDGE_SIP_DOWN,
	/* the bridge is stopping */
	ERR_BRIDGE_SHUTTING_DOWN,
	/* the message is over the size or length limit (msg -E2BIG) */
	ERR_BRIDGE_TOO_LARGE,
	/* the body's media type or charset cannot be translated (msg -ENOTSUP) */
	ERR_BRIDGE_UNSUPPORTED_MEDIA,
	/* the body is not valid UTF-8 or not well-formed (msg -EILSEQ/-EBADMSG) */
	ERR_BRIDGE_BAD_BODY,
	/* a request inside a session (dialog) the bridge does not know */
	ERR_BRIDGE_NO_SESSION,
	/* the bridge failed (out of memory, storage error) */
	ERR_BRIDGE_INTERNAL,
	ERR_BRIDGE_COUNT
};

struct err_refusal {
	const char *name;        /* short identifier for logs, e.g. "domain-unmapped" */
	int sip_code;            /* reason phrase: err_sip_reason(sip_code) */
	unsigned retry_after;    /* seconds for a Retry-After header; 0: none */
	enum err_cond cond;      /* XMPP condition */
	enum err_type type;      /* XMPP error type */
	const char *explanation; /* plain words for the <text/>, a Warning and logs */
};

/* The row for a refusal (static; NULL out of range). */
const struct err_refusal *err_bridge(enum err_bridge why);

#endif

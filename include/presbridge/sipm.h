/*
 * sipm - SIP messages: parsing (libosip2's parser), header access, and the
 * text of the requests and responses the bridge writes.
 *
 * Parsing keeps the raw text beside libosip2's structure: header values are
 * read from the text (compact forms and line folding understood, RFC 3261
 * sections 7.3.1 and 7.3.3), so a header the bridge needs is found whether or
 * not libosip2 has a field for it. Responses are built from the raw text of the
 * request, so a request libosip2 refuses can still get its 400 when the five
 * headers a response needs (Via, From, To, Call-ID, CSeq) can be read
 * (RFC 3261 section 8.2.6.2).
 *
 * Nothing here does I/O; every function is safe on any input.
 */
#ifndef PRESBRIDGE_SIPM_H
#define PRESBRIDGE_SIPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sipm; /* opaque: a parsed SIP message */

/* One extra header line: "name: value". */
struct sipm_hdr {
	const char *name;
	const char *value;
};

/*
 * Parse the message buf[0..len) (header and body exactly: framing is the
 * transport's business). *mp: caller-owns (sipm_free). On error *whyp (may be
 * NULL) gets plain words (static). Returns 0, -EBADMSG (not a SIP message, a
 * header libosip2 cannot read, or one of Via/From/To/Call-ID/CSeq missing or
 * unreadable), or -ENOMEM.
 */
int sipm_parse(struct sipm **mp, const char *buf, size_t len, const char **whyp);
void sipm_free(struct sipm *m);

bool sipm_is_request(const struct sipm *m);
/* Request method, or for a response the CSeq method. Borrowed from m. */
const char *sipm_method(const struct sipm *m);
/* Response status code; 0 for a request. */
int sipm_status(const struct sipm *m);
/* Request-URI as text (requests), borrowed; and its user part ("" if none)
 * and host (lower case). */
const char *sipm_ruri(const struct sipm *m);
const char *sipm_ruri_user(const struct sipm *m);
const char *sipm_ruri_host(const struct sipm *m);
/* From/To URIs (without display name or parameters) and tags ("" if none). */
const char *sipm_from_uri(const struct sipm *m);
const char *sipm_from_tag(const struct sipm *m);
const char *sipm_to_uri(const struct sipm *m);
const char *sipm_to_tag(const struct sipm *m);
const char *sipm_call_id(const struct sipm *m);
uint32_t sipm_cseq(const struct sipm *m);
/* The top Via's branch ("" if none) and sent-by "host:port" (port 5060 or
 * 5061 when absent, by transport), lower-cased. */
const char *sipm_via_branch(const struct sipm *m);
const char *sipm_via_sentby(const struct sipm *m);
/* The Contact URI (first Contact, without <>), "" if none. */
const char *sipm_contact_uri(const struct sipm *m);
/* Record-Route values in message order; *np gets the count. Borrowed. */
const char *const *sipm_record_routes(const struct sipm *m, size_t *np);
/* The whole message text, borrowed. */
const char *sipm_text(const struct sipm *m, size_t *lenp);

/*
 * The idx-th value (0-based) of header name (case-insensitive, compact form
 * accepted; one line = one value, commas are not split), unfolded and trimmed.
 * Borrowed from m, valid until sipm_free; NULL when absent or out of memory.
 */
const char *sipm_header(struct sipm *m, const char *name, unsigned idx);
/* True if a Supported (or k) header lists option tag (case-insensitive). */
bool sipm_supported(struct sipm *m, const char *tag);
/* Body and its length (borrowed; NULL and 0 when empty). */
const char *sipm_body(const struct sipm *m, size_t *lenp);

/* ---- raw text ----------------------------------------------------------- */

/*
 * Find the idx-th line of header name (or its compact form, RFC 3261 section
 * 7.3.3) in the header block hdr[0..len) (start line included, body not).
 * *vp and *vlenp get the value as written (folding not removed, leading white space
 * skipped). Returns 0 or -ENOENT.
 */
int sipm_raw_header(const char *hdr, size_t len, const char *name, unsigned idx,
                    const char **vp, size_t *vlenp);

/* One header field of a raw header block, as sipm_field_next() finds it. */
struct sipm_field {
	const char *name; /* as written, nlen bytes */
	size_t nlen;
	const char *val; /* as sipm_raw_header() gives it */
	size_t vlen;
};
/*
 * The next header field of hdr[0..len) (start line included) from *posp, 0 for
 * the first; *posp moves past it. Lines without a colon are skipped, the empty
 * line ends the header. One pass over a header visits every field once, where
 * sipm_raw_header() per name would scan it again for each. false at the end.
 */
bool sipm_field_next(const char *hdr, size_t len, size_t *posp, struct sipm_field *f);
/* f is header name (nlen bytes, any case) or its compact form cf (0: none). */
bool sipm_field_is(const struct sipm_field *f, const char *name, size_t nlen, char cf);

/* Length of the header block (through the empty line) of buf, 0 if none. */
size_t sipm_header_len(const char *buf, size_t len);

/* ---- writing ------------------------------------------------------------ */

struct sipm_reply {
	int code;
	const char *reason;          /* NULL: err_sip_reason(code) */
	const char *to_tag;          /* added to To when it has none; NULL: none */
	const char *src_ip;          /* where the request came from: Via received/rport */
	unsigned src_port;           /* (RFC 3261 section 18.2.1, RFC 3581 section 4) */
	const struct sipm_hdr *hdrs; /* extra headers, may be NULL */
	size_t nhdrs;
	const char *content_type; /* NULL: no body */
	const char *body;
	size_t body_len;
};

/*
 * Build a response to the request req[0..len) (raw text; it need not have
 * parsed): status line, every Via (the top one with received/rport), From,
 * To (with to_tag), Call-ID, CSeq, the extra headers, Content-Length and body.
 * From, To and Call-ID are copied only when the request has them (a request
 * lacking them is answered 400 without them, RFC 4475 section 3.3.1).
 * *outp: caller-owns (free()), NUL-terminated; *lenp its length. Returns 0,
 * -EBADMSG when the request has no Via or no CSeq (nothing could route or
 * match the response), -EINVAL for a code outside 100-699, or -ENOMEM.
 */
int sipm_reply_build(const char *req, size_t len, const struct sipm_reply *r, char **outp,
                     size_t *lenp);

struct sipm_request {
	const char *method;
	const char *ruri;
	const char *via;  /* the whole Via value, branch included */
	const char *from; /* whole header values, tags included */
	const char *to;
	const char *call_id;
	uint32_t cseq;
	const char *contact;       /* NULL: none */
	const char *const *routes; /* Route values, in order; may be NULL */
	size_t nroutes;
	const struct sipm_hdr *hdrs;
	size_t nhdrs;
	const char *content_type; /* NULL: no body */
	const char *body;
	size_t body_len;
};

/* Build a request (Max-Forwards 70, Content-Length always). Same ownership and
 * errors as sipm_reply_build (-EINVAL for a missing field). */
int sipm_request_build(const struct sipm_request *r, char **outp, size_t *lenp);

/* ---- Lync IM sessions (SDP) ---------------------------------------------- */

/* True if the SDP offer body[0..len) holds an IM media line "m=message ...
 * sip ..." (Lync's "m=message 5060 sip null"). */
bool sipm_sdp_is_im(const char *body, size_t len);

/* The answer to an IM offer, written the way Lync writes it: Content-Type
 * SIPM_SDP_IM_TYPE, "m=message 5060 sip null" and the accept-types the bridge
 * reads. addr is the bridge's address for o=/c= (IPv6 literals are written as
 * IP6). *outp: caller-owns (free()). Returns 0 or -ENOMEM. */
int sipm_sdp_im_answer(const char *addr, char **outp, size_t *lenp);

#define SIPM_SDP_IM_TYPE "application/sdp;call-type=im"

/* ---- request checks before and after parsing (RFC 4475 torture cases) ---- */

/* The Request-Line of buf[0..len) read as METHOD SP Request-URI SP SIP-Version
 * (RFC 3261 section 7.1). Returns 505 when the version is not SIP/2.0 (RFC 3261
 * section 8.1.1.1; RFC 4475 section 3.1.2.16), 416 when the URI's scheme is
 * neither sip nor sips (RFC 3261 section 8.2.2.1; RFC 4475 sections 3.3.2 and
 * 3.3.3), else 0 (also for a start line of another shape, which the parser
 * judges). A response's status line is 0. */
int sipm_start_line_check(const char *buf, size_t len);

/* True if a Via branch is an RFC 3261 transaction identifier: the magic cookie
 * z9hG4bK followed by at least one character (RFC 3261 section 17.2.3; a bare
 * cookie identifies nothing, RFC 4475 section 3.2.1). */
bool sipm_branch_unique(const char *branch);

/* The option tags of a Require value (comma-separated) that are not among
 * supported (comma-separated), written to out as "a, b" (truncated to outlen).
 * Returns how many there are (RFC 3261 sections 8.2.2.3 and 20.32). */
size_t sipm_unsupported(const char *require, const char *supported, char *out,
                        size_t outlen);

/* True if the media type "type/subtype" (parameters ignored, case-insensitive)
 * is in list, a comma-separated Accept value (RFC 3261 section 20.1), including
 * the ranges whose subtype, or type and subtype, are a star. */
bool sipm_type_in(const char *list, const char *type);

#endif

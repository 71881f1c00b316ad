/*
 * xs2s_proto - the pure parts of server-to-server XMPP streams (RFC 6120,
 * XEP-0220 dialback): dialback keys, stream ids and secrets, the name check of
 * a peer's certificate, domain syntax and the plain words for stream and
 * dialback errors.
 *
 * Nothing here does I/O or keeps state; the stream engine calls it. Every
 * string returned is static; every string passed in is borrowed.
 */
#ifndef PRESBRIDGE_XS2S_PROTO_H
#define PRESBRIDGE_XS2S_PROTO_H

#include <stdbool.h>
#include <stddef.h>

struct x509_st; /* OpenSSL's X509 */

#define XS2S_KEY_LEN       64 /* hex chars of an HMAC-SHA256 dialback key */
#define XS2S_STREAM_ID_LEN 32 /* chars of a stream id we make */
#define XS2S_SECRET_LEN    64 /* hex chars of a secret we make */

/*
 * The dialback key as XEP-0185 section 2 recommends (XEP-0220 section 2.1.1
 * uses it): the lower-case hex HMAC-SHA256 whose HMAC key is the 64 lower-case
 * hex characters of SHA-256(secret) -- the ASCII text, not the 32 raw bytes --
 * over "receiving originating stream_id", joined by single spaces (U+0020).
 * receiving: the Receiving Server's domain (the stream's 'to' as the originating
 * server sends it); originating: the Sender Domain. out gets XS2S_KEY_LEN chars
 * and a NUL; it is a credential: callers clear it after use and never log it.
 * Returns 0, -EINVAL (a NULL or empty argument) or -ENOMEM.
 */
int xs2s_dialback_key(const char *secret, const char *receiving, const char *originating,
                      const char *stream_id, char out[XS2S_KEY_LEN + 1]);

/* Whether two keys are equal, in time independent of where they differ (the
 * length is not secret). NULL and "" equal nothing. The caller trims the white space
 * around a key taken from a <db:result/> or <db:verify/> element. */
bool xs2s_key_equal(const char *a, const char *b);

/*
 * A new stream id: RFC 6120 section 4.7.3 wants it unpredictable and
 * non-repeating because dialback (XEP-0220) relies on it. XS2S_STREAM_ID_LEN
 * characters of [A-Za-z0-9] drawn without bias from RAND_bytes (about 190
 * bits) and a NUL. Returns 0, -EIO (no randomness) or -EINVAL (out NULL).
 */
int xs2s_stream_id(char out[XS2S_STREAM_ID_LEN + 1]);

/* A dialback secret for when the configuration gives none (XEP-0185 section 2,
 * note 3: configured, or random at start-up): 32 random bytes as
 * XS2S_SECRET_LEN lower-case hex chars and a NUL; a credential, never logged.
 * Returns 0, -EIO or -EINVAL (out NULL). */
int xs2s_random_secret(char out[XS2S_SECRET_LEN + 1]);

/* Which presented identity of a certificate matched (RFC 6125 section 1.8). */
enum xs2s_id_kind {
	XS2S_ID_NONE,
	XS2S_ID_DNS,          /* SAN dNSName equal to the domain */
	XS2S_ID_DNS_WILDCARD, /* SAN dNSName "*.parent" */
	XS2S_ID_SRV,          /* SAN otherName SRVName "_xmpp-server.domain" */
	XS2S_ID_XMPPADDR,     /* SAN otherName XmppAddr "domain" */
	XS2S_ID_CN,           /* subject CN, the certificate having no SAN identity */
};

/*
 * Does the peer certificate cert name the XMPP domain it claims (the 'from' of
 * its stream header, or the domain we connected to)? RFC 6120 section
 * 13.7.2.1 applies RFC 6125 section 6 with XmppAddr as an extra identifier:
 *   - DNS-ID: a SAN dNSName; a wildcard only as the whole left-most label,
 *     standing for exactly one label (RFC 6125 section 6.4.3 rules 1-2, RFC
 *     6120 section 13.7.1.2.1), and not directly above a top-level domain
 *     ("*.com", RFC 6125 section 7.2);
 *   - SRV-ID: a SAN otherName id-on-dnsSRV (1.3.6.1.5.5.7.8.7) IA5String
 *     "_xmpp-server.<domain>" (RFC 6125 section 6.5.1); other services do not
 *     stand for a server-to-server peer;
 *   - XmppAddr: a SAN otherName id-on-xmppAddr (1.3.6.1.5.5.7.8.5) UTF8String
 *     equal to the domain; a JID with a localpart or resource names no domain;
 *   - CN-ID: the subject CN, only if the certificate has none of the above nor
 *     a URI SAN (RFC 6125 sections 6.3 and 6.4.4), compared as a DNS-ID.
 * Names compare case-insensitively (ASCII, RFC 6125 section 6.4.1) with a
 * trailing dot ignored (RFC 7622 section 3.2); a name with an embedded NUL
 * never matches. U-labels are compared as they are (no IDNA conversion).
 * Returns false for a NULL certificate or a domain that fails xs2s_domain_ok.
 * *m (may be NULL) gets the kind that matched, preferring exact DNS, SRV,
 * XmppAddr, then wildcard; XS2S_ID_NONE when nothing did. cert is borrowed.
 */
bool xs2s_cert_names_domain(struct x509_st *cert, const char *domain,
                            enum xs2s_id_kind *m);

/* Every identity cert presents, for logs: "DNS:a, SRV:_xmpp-server.b,
 * XmppAddr:c, URI:d" in certificate order, or "CN:e" when it has no SAN
 * identity; "(none)". Control characters are shown as '?'; truncated with
 * "..." to fit len. */
void xs2s_cert_ids_str(struct x509_st *cert, char *buf, size_t len);

/* Does cert carry a DNS-ID (SAN dNSName, exact, no wildcard, case-insensitive,
 * trailing dot ignored) for domain? Cisco IM&P wants DNS-form SANs for every
 * federated domain; `presbridge -n` checks it. The CN does not count. */
bool xs2s_cert_has_dns_san(struct x509_st *cert, const char *domain);

/* A stream error condition (RFC 6120 section 4.9.3) in plain words. */
struct xs2s_streamerr {
	const char *cond;  /* element name, e.g. "host-unknown"; NULL: catch-all */
	const char *words; /* what the peer meant */
	const char *fix;   /* what to change when our side is the likely cause; "" */
};

/* The row for cond; NULL or a name RFC 6120 does not define: the catch-all
 * row. Never NULL. Static. */
const struct xs2s_streamerr *xs2s_stream_error(const char *cond);

/* Is cond one of the 25 conditions of RFC 6120 sections 4.9.3.1-4.9.3.25? */
bool xs2s_stream_error_known(const char *cond);

/* Plain words for the stanza error condition inside a <db:result/> or
 * <db:verify/> of type 'error' (XEP-0220 section 2.5 table; RFC 6120 section
 * 8.3.3 for internal-server-error); a catch-all for others and NULL. Static. */
const char *xs2s_dialback_error_words(const char *cond);

/*
 * Is domain a domainpart we may put in or accept from a stream header (RFC
 * 7622 section 3.2)? 1 to 1023 octets; ASCII only letters, digits and hyphens
 * (NR-LDH labels, section 3.2.1) split by single dots, or an IPv6 literal in
 * brackets (section 3.1, no zone identifier); other octets valid UTF-8
 * (U-labels, not checked further); no
 * label over 63 octets (RFC 1034's limit, which section 3.2 keeps); one
 * trailing dot allowed, which the caller strips before comparing. So no '@',
 * '/', white space, control characters or XML metacharacters. Lower-casing is
 * the caller's.
 */
bool xs2s_domain_ok(const char *domain);

#endif

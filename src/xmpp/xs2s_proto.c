#include "presbridge/xs2s_proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "presbridge/siptls.h"
#include "presbridge/xmlsafe.h"

static const char hexdig[] = "0123456789abcdef";

static void to_hex(const unsigned char *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdig[b[i] >> 4];
		out[2 * i + 1] = hexdig[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

/* ---- dialback keys (XEP-0185 section 2) ---- */

int xs2s_dialback_key(const char *secret, const char *receiving, const char *originating,
                      const char *stream_id, char out[XS2S_KEY_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hkey[2 * 32 + 1];
	size_t maclen = 0;
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	int err = -ENOMEM;

	if (!secret || !*secret || !receiving || !*receiving || !originating ||
	    !*originating || !stream_id || !*stream_id || !out)
		return -EINVAL;
	/* Note 2: the secret is hashed first; note 4: the hash is used as hex text. */
	if (EVP_Digest(secret, strlen(secret), md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		goto out;
	to_hex(md, mdlen, hkey);

	mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	if (!ctx)
		goto out;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};
	/* Note 5: receiving, originating and stream id joined by U+0020. */
	if (EVP_MAC_init(ctx, (const unsigned char *)hkey, 2 * mdlen, params) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)receiving, strlen(receiving)) !=
	        1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)" ", 1) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)originating,
	                   strlen(originating)) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)" ", 1) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)stream_id, strlen(stream_id)) !=
	        1 ||
	    EVP_MAC_final(ctx, md, &maclen, sizeof(md)) != 1 ||
	    maclen * 2 != XS2S_KEY_LEN)
		goto out;
	to_hex(md, maclen, out);
	err = 0;
out:
	OPENSSL_cleanse(md, sizeof(md));
	OPENSSL_cleanse(hkey, sizeof(hkey));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return err;
}

bool xs2s_key_equal(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	size_t n = strlen(a);
	if (n == 0 || n != strlen(b))
		return false;
	return CRYPTO_memcmp(a, b, n) == 0;
}

/* ---- stream ids and secrets ---- */

int xs2s_stream_id(char out[XS2S_STREAM_ID_LEN + 1])
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	/* 248 = 4 * 62: bytes from 248 up are dropped, so every character is equally
	 * likely (a plain modulo would favour the first eight). */
	const unsigned limit = 4 * (sizeof(alpha) - 1);
	unsigned char rnd[64];
	size_t n = 0;

	if (!out)
		return -EINVAL;
	while (n < XS2S_STREAM_ID_LEN) {
		if (RAND_bytes(rnd, (int)sizeof(rnd)) != 1)
			return -EIO;
		for (size_t i = 0; i < sizeof(rnd) && n < XS2S_STREAM_ID_LEN; i++)
			if (rnd[i] < limit)
				out[n++] = alpha[rnd[i] % (sizeof(alpha) - 1)];
	}
	out[n] = '\0';
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return 0;
}

int xs2s_random_secret(char out[XS2S_SECRET_LEN + 1])
{
	unsigned char rnd[XS2S_SECRET_LEN / 2];

	if (!out)
		return -EINVAL;
	if (RAND_bytes(rnd, (int)sizeof(rnd)) != 1)
		return -EIO;
	to_hex(rnd, sizeof(rnd), out);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return 0;
}

/* ---- certificate identities (RFC 6125 section 6, RFC 6120 section 13.7) ---- */

/* Longest presented identity we look at: a domainpart is at most 1023 octets
 * (RFC 7622 section 3.2); an SRV-ID adds its service label. */
#define ID_MAX 1100

enum ident_type {
	IDENT_DNS,
	IDENT_SRV,
	IDENT_XMPPADDR,
	IDENT_URI,
	IDENT_CN,
};

static const char *const ident_tag[] = {"DNS", "SRV", "XmppAddr", "URI", "CN"};

/* Called with each presented identity as a C string; returns true to stop. */
typedef bool(ident_h)(enum ident_type t, const char *s, void *arg);

/* Copies an ASN.1 string to buf when it is usable as a C string: not empty,
 * no embedded NUL (an attack on C string handling), not too long. */
static bool asn1_cstr(const ASN1_STRING *a, char *buf, size_t size)
{
	int len = a ? ASN1_STRING_length(a) : 0;
	if (len <= 0 || (size_t)len >= size)
		return false;
	const unsigned char *d = ASN1_STRING_get0_data(a);
	if (memchr(d, '\0', (size_t)len))
		return false;
	memcpy(buf, d, (size_t)len);
	buf[len] = '\0';
	return true;
}

/* The identity a SAN entry presents, with its type; false for other entries
 * (IP addresses, e-mail, other otherNames) and for unusable strings. *kindp is
 * set even for an unusable string, so it still counts as present. */
static bool san_ident(const GENERAL_NAME *g, enum ident_type *tp, bool *kindp, char *buf,
                      size_t size)
{
	*kindp = false;
	switch (g->type) {
	case GEN_DNS:
		*tp = IDENT_DNS;
		*kindp = true;
		return asn1_cstr(g->d.dNSName, buf, size);
	case GEN_URI:
		*tp = IDENT_URI;
		*kindp = true;
		return asn1_cstr(g->d.uniformResourceIdentifier, buf, size);
	case GEN_OTHERNAME: {
		const OTHERNAME *on = g->d.otherName;
		int nid = OBJ_obj2nid(on->type_id);
		if (nid == NID_SRVName) {
			/* RFC 4985 section 2: SRVName ::= IA5String */
			*tp = IDENT_SRV;
			*kindp = true;
			return on->value && on->value->type == V_ASN1_IA5STRING &&
			       asn1_cstr(on->value->value.ia5string, buf, size);
		}
		if (nid == NID_XmppAddr) {
			/* RFC 6120 section 13.7.1.4: XmppAddr ::= UTF8String */
			*tp = IDENT_XMPPADDR;
			*kindp = true;
			return on->value && on->value->type == V_ASN1_UTF8STRING &&
			       asn1_cstr(on->value->value.utf8string, buf, size) &&
			       utf8_valid(buf, strlen(buf));
		}
		return false;
	}
	default:
		return false;
	}
}

/*
 * Calls h with every identity cert presents: its SAN entries in order, then
 * the subject CNs if (RFC 6125 sections 6.3 and 6.4.4) there was no DNS-ID,
 * SRV-ID, URI-ID or XmppAddr among them. Returns 0 or -EINVAL.
 */
static int walk_idents(X509 *cert, ident_h *h, void *arg)
{
	char buf[ID_MAX];
	bool any = false, stop = false;

	if (!cert)
		return -EINVAL;
	GENERAL_NAMES *san = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; san && i < sk_GENERAL_NAME_num(san) && !stop; i++) {
		enum ident_type t;
		bool kind;
		bool ok =
		    san_ident(sk_GENERAL_NAME_value(san, i), &t, &kind, buf, sizeof(buf));
		any = any || kind;
		if (ok)
			stop = h(t, buf, arg);
	}
	GENERAL_NAMES_free(san);
	if (any || stop)
		return 0;
	X509_NAME *subj = X509_get_subject_name(cert);
	for (int idx = -1; !stop;) {
		idx = X509_NAME_get_index_by_NID(subj, NID_commonName, idx);
		if (idx < 0)
			break;
		const ASN1_STRING *cn =
		    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
		unsigned char *utf8 = NULL;
		int len = ASN1_STRING_to_UTF8(&utf8, cn);
		if (len > 0 && (size_t)len < sizeof(buf) &&
		    !memchr(utf8, '\0', (size_t)len)) {
			memcpy(buf, utf8, (size_t)len);
			buf[len] = '\0';
			stop = h(IDENT_CN, buf, arg);
		}
		OPENSSL_free(utf8);
	}
	return 0;
}

/* Length of s without one trailing dot (RFC 7622 section 3.2). */
static size_t undotted_len(const char *s)
{
	size_t n = strlen(s);
	return n && s[n - 1] == '.' ? n - 1 : n;
}

/*
 * A wildcard DNS-ID: "*" as the whole left-most label stands for exactly one
 * label (RFC 6125 section 6.4.3 rules 1 and 2; RFC 6120 section 13.7.1.2.1
 * allows no other form), and the rest must have two labels or more so that
 * "*.com" vouches for nothing (RFC 6125 section 7.2). The domain has passed
 * xs2s_domain_ok (no '*', no empty label), so comparing the rest whole also
 * refuses "*.*.example.com" and "a.*.example.com".
 */
static bool wildcard_match(const char *name, const char *domain)
{
	if (name[0] != '*' || name[1] != '.')
		return false;
	const char *rest = name + 2;
	size_t rl = undotted_len(rest);
	const char *d1 = strchr(domain, '.');
	if (!memchr(rest, '.', rl) || !d1)
		return false;
	const char *drest = d1 + 1;
	return undotted_len(drest) == rl && strncasecmp(drest, rest, rl) == 0;
}

/* The match kinds, best first: exact names before the wildcard. */
static int kind_rank(enum xs2s_id_kind k)
{
	switch (k) {
	case XS2S_ID_DNS:
		return 1;
	case XS2S_ID_SRV:
		return 2;
	case XS2S_ID_XMPPADDR:
		return 3;
	case XS2S_ID_DNS_WILDCARD:
		return 4;
	case XS2S_ID_CN:
		return 5;
	default:
		return 99;
	}
}

struct match_ctx {
	const char *domain;
	enum xs2s_id_kind best;
};

static enum xs2s_id_kind ident_match(enum ident_type t, const char *s, const char *domain)
{
	/* RFC 6125 section 6.5.1: the service compares case-insensitively. */
	static const char srv[] = "_xmpp-server.";

	switch (t) {
	case IDENT_DNS:
		if (siptls_name_match(s, domain))
			return XS2S_ID_DNS;
		return wildcard_match(s, domain) ? XS2S_ID_DNS_WILDCARD : XS2S_ID_NONE;
	case IDENT_SRV:
		return strncasecmp(s, srv, sizeof(srv) - 1) == 0 &&
		               siptls_name_match(s + sizeof(srv) - 1, domain)
		           ? XS2S_ID_SRV
		           : XS2S_ID_NONE;
	case IDENT_XMPPADDR:
		/* A JID with a localpart or resourcepart names an account, not the
		 * server: the whole value must equal the domain, which holds no '@' or
		 * '/' (xs2s_domain_ok). */
		return siptls_name_match(s, domain) ? XS2S_ID_XMPPADDR : XS2S_ID_NONE;
	case IDENT_CN:
		/* RFC 6125 section 6.4.4: compared as a DNS-ID, wildcard included. */
		return siptls_name_match(s, domain) || wildcard_match(s, domain)
		           ? XS2S_ID_CN
		           : XS2S_ID_NONE;
	default:
		return XS2S_ID_NONE;
	}
}

static bool match_h(enum ident_type t, const char *s, void *arg)
{
	struct match_ctx *mc = arg;
	enum xs2s_id_kind k = ident_match(t, s, mc->domain);
	if (k != XS2S_ID_NONE && kind_rank(k) < kind_rank(mc->best))
		mc->best = k;
	return mc->best == XS2S_ID_DNS; /* nothing is better */
}

bool xs2s_cert_names_domain(struct x509_st *cert, const char *domain,
                            enum xs2s_id_kind *m)
{
	struct match_ctx mc = {domain, XS2S_ID_NONE};

	if (cert && xs2s_domain_ok(domain))
		walk_idents(cert, match_h, &mc);
	if (m)
		*m = mc.best;
	return mc.best != XS2S_ID_NONE;
}

struct str_ctx {
	char **v;
	size_t n;
	int err;
};

static bool str_h(enum ident_type t, const char *s, void *arg)
{
	struct str_ctx *sc = arg;
	char **nv = realloc(sc->v, (sc->n + 1) * sizeof(*nv));
	if (!nv) {
		sc->err = -ENOMEM;
		return true;
	}
	sc->v = nv;
	size_t tl = strlen(ident_tag[t]), sl = strlen(s);
	char *c = malloc(tl + 1 + sl + 1);
	if (!c) {
		sc->err = -ENOMEM;
		return true;
	}
	memcpy(c, ident_tag[t], tl);
	c[tl] = ':';
	/* A peer's certificate must not write control characters into our log. */
	for (size_t i = 0; i < sl; i++) {
		unsigned char ch = (unsigned char)s[i];
		c[tl + 1 + i] = (char)(ch < 0x20 || ch == 0x7f ? '?' : ch);
	}
	c[tl + 1 + sl] = '\0';
	sc->v[sc->n++] = c;
	return false;
}

void xs2s_cert_ids_str(struct x509_st *cert, char *buf, size_t len)
{
	struct str_ctx sc = {NULL, 0, 0};

	if (!buf || !len)
		return;
	walk_idents(cert, str_h, &sc);
	if (sc.err)
		snprintf(buf, len, "(out of memory)");
	else
		siptls_names_str(sc.v, sc.n, buf, len);
	siptls_names_free(sc.v, sc.n);
}

bool xs2s_cert_has_dns_san(struct x509_st *cert, const char *domain)
{
	char **names = NULL;
	size_t n = 0;
	bool from_cn = false;

	if (!cert || !domain || !*domain)
		return false;
	/* siptls_cert_names falls back to the CN only when there is no dNSName. */
	if (siptls_cert_names(cert, &names, &n, &from_cn) != 0)
		return false;
	bool ok = !from_cn && siptls_names_match(names, n, domain);
	siptls_names_free(names, n);
	return ok;
}

/* ---- stream errors (RFC 6120 section 4.9.3) ---- */

static const char defect[] = "this is a presbridge defect: report it with a trace log";

/* The 25 conditions of sections 4.9.3.1 to 4.9.3.25, in that order, then the
 * catch-all row. */
static const struct xs2s_streamerr stream_errors[] = {
    /* 4.9.3.1 */
    {"bad-format", "the peer could not process the XML we sent", defect},
    /* 4.9.3.2 */
    {"bad-namespace-prefix",
     "the peer refused a namespace prefix we used (or its absence) on an element",
     defect},
    /* 4.9.3.3 */
    {"conflict",
     "the peer closed or refused this stream because another stream for the same "
     "domain pair, or from our address, conflicts with it",
     "check that only one bridge federates these domains; the next attempt "
     "usually succeeds once the old stream is gone"},
    /* 4.9.3.4 */
    {"connection-timeout",
     "the peer believes we stopped answering on this stream and gave up on it",
     "check the network path (firewalls or NAT that drop idle connections)"},
    /* 4.9.3.5 */
    {"host-gone", "the peer no longer serves the domain we addressed in 'to'",
     "remove or correct the [s2s-peer] section of that domain"},
    /* 4.9.3.6 */
    {"host-unknown",
     "the peer does not serve the domain we addressed in 'to' (its DNS records "
     "may point at the wrong server)",
     "check the domain's _xmpp-server._tcp SRV record, or the address of its "
     "[s2s-peer] section"},
    /* 4.9.3.7 */
    {"improper-addressing", "a stanza we sent lacked a valid 'to' or 'from' address",
     defect},
    /* 4.9.3.8 */
    {"internal-server-error",
     "the peer failed internally or is misconfigured (see its log)", ""},
    /* 4.9.3.9 */
    {"invalid-from", "we sent from a domain that was not authenticated on this stream",
     "check that the domain is one the bridge serves and that the peer accepted "
     "its dialback or certificate"},
    /* 4.9.3.10 */
    {"invalid-namespace",
     "the peer does not accept our stream or content namespace (it expects "
     "jabber:server on a server-to-server port)",
     "check that the address we connect to is the peer's server-to-server port "
     "(5269), not a client (5222) or component port"},
    /* 4.9.3.11 */
    {"invalid-xml", "the peer's schema validation refused XML we sent", defect},
    /* 4.9.3.12 */
    {"not-authorized",
     "the peer refused data before the stream was authenticated, or refused our "
     "authentication",
     "check that the peer trusts our certificate ([s2s] cert) or allows dialback, "
     "and [s2s] auth"},
    /* 4.9.3.13 */
    {"not-well-formed", "the peer found XML we sent not well-formed", defect},
    /* 4.9.3.14 */
    {"policy-violation",
     "the peer applied a local policy (a size or rate limit, or TLS or "
     "authentication it requires)",
     "read the peer's <text/> if any; check [s2s] tls and [s2s] auth against what "
     "the peer requires"},
    /* 4.9.3.15 */
    {"remote-connection-failed",
     "the peer could not reach a server it needs for authentication (for dialback: "
     "our authoritative server for the sending domain)",
     "check that the peer can connect to our [s2s] listen address on port 5269 and "
     "that our domains' _xmpp-server._tcp SRV records point at it"},
    /* 4.9.3.16 */
    {"reset",
     "the peer closed the stream to renegotiate security (new features, or "
     "certificates that changed or expired)",
     ""},
    /* 4.9.3.17 */
    {"resource-constraint", "the peer lacks the resources to serve the stream now", ""},
    /* 4.9.3.18 */
    {"restricted-xml",
     "we sent restricted XML (a comment, processing instruction, DTD or entity "
     "reference)",
     defect},
    /* 4.9.3.19 */
    {"see-other-host",
     "the peer redirects us to another host of the same service (named in the "
     "error)",
     ""},
    /* 4.9.3.20 */
    {"system-shutdown", "the peer is shutting down", ""},
    /* 4.9.3.21 */
    {"undefined-condition",
     "the peer reported an error of its own kind (see its application condition "
     "and text)",
     ""},
    /* 4.9.3.22 */
    {"unsupported-encoding", "the peer refused the encoding of our stream (not UTF-8)",
     defect},
    /* 4.9.3.23 */
    {"unsupported-feature",
     "we do not support a stream feature the peer requires (and it offered no other)",
     "see which feature the peer requires; with TLS required on its side, [s2s] "
     "tls must not be off"},
    /* 4.9.3.24 */
    {"unsupported-stanza-type",
     "the peer does not understand an element we sent at the top level of the "
     "stream",
     defect},
    /* 4.9.3.25 */
    {"unsupported-version",
     "the peer does not support the XMPP version of our stream header", ""},
    {NULL, "the peer closed the stream with an error RFC 6120 does not define", ""},
};

#define NSTREAM (sizeof(stream_errors) / sizeof(stream_errors[0]))

const struct xs2s_streamerr *xs2s_stream_error(const char *cond)
{
	for (size_t i = 0; cond && i + 1 < NSTREAM; i++)
		if (strcmp(stream_errors[i].cond, cond) == 0)
			return &stream_errors[i];
	return &stream_errors[NSTREAM - 1];
}

bool xs2s_stream_error_known(const char *cond)
{
	return xs2s_stream_error(cond)->cond != NULL;
}

/* ---- dialback errors (XEP-0220 section 2.5) ---- */

static const struct {
	const char *cond;
	const char *words;
} db_errors[] = {
    {"item-not-found", "the peer does not serve the domain the request was addressed to"},
    {"remote-connection-failed",
     "the peer could not connect to the authoritative server of the sending domain to "
     "verify the key"},
    {"remote-server-not-found",
     "the peer could not find the authoritative server of the sending domain (no such "
     "host or host-unknown)"},
    {"remote-server-timeout",
     "the peer lost its connection to the authoritative server before the key was "
     "verified"},
    {"policy-violation", "the peer requires TLS before dialback"},
    {"not-authorized",
     "the peer requires a certificate naming the sending domain (or other proof) and "
     "got none"},
    {"forbidden", "the authoritative server told the peer the key is invalid"},
    {"not-acceptable", "the peer could not establish the sending server's identity"},
    {"resource-constraint",
     "the peer cannot add this domain pair to the stream; a new connection may "
     "succeed"},
    /* RFC 6120 section 8.3.3.6 */
    {"internal-server-error", "the peer failed internally during dialback"},
};

const char *xs2s_dialback_error_words(const char *cond)
{
	for (size_t i = 0; cond && i < sizeof(db_errors) / sizeof(db_errors[0]); i++)
		if (strcmp(db_errors[i].cond, cond) == 0)
			return db_errors[i].words;
	return "the peer refused dialback for this domain pair with an error";
}

/* ---- domainparts (RFC 7622 section 3.2) ---- */

static bool ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-';
}

/* "[" IPv6address "]" (RFC 7622 section 3.1), checked loosely: hex digits,
 * colons and dots (an embedded IPv4 address), with at least one colon. */
static bool ip_literal_ok(const char *s, size_t n)
{
	if (n < 4 || s[0] != '[' || s[n - 1] != ']' || !memchr(s, ':', n))
		return false;
	for (size_t i = 1; i + 1 < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
			return false;
	}
	return true;
}

bool xs2s_domain_ok(const char *domain)
{
	if (!domain)
		return false;
	size_t n = strnlen(domain, 1025);
	if (n == 0 || n > 1023)
		return false;
	if (domain[0] == '[')
		return ip_literal_ok(domain, n);
	if (!utf8_valid(domain, n))
		return false;
	/* The trailing dot is no label (section 3.2: stripped before use). */
	size_t end = domain[n - 1] == '.' ? n - 1 : n;
	size_t label = 0;
	for (size_t i = 0; i < end; i++) {
		unsigned char c = (unsigned char)domain[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (c < 0x80 && !ldh(c))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

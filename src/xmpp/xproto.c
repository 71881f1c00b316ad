#include "presbridge/xproto.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <string.h>

#include "presbridge/sbuf.h"

int xproto_handshake_digest(const char *stream_id, const char *secret,
                            char out[XPROTO_DIGEST_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int err = -ENOMEM;

	if (!stream_id || !secret || !out)
		return -EINVAL;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c)
		return -ENOMEM;
	if (EVP_DigestInit_ex(c, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(c, stream_id, strlen(stream_id)) != 1 ||
	    EVP_DigestUpdate(c, secret, strlen(secret)) != 1 ||
	    EVP_DigestFinal_ex(c, md, &mdlen) != 1 || mdlen * 2 != XPROTO_DIGEST_LEN)
		goto out;
	for (unsigned i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[XPROTO_DIGEST_LEN] = '\0';
	err = 0;
out:
	memset(md, 0, sizeof(md));
	EVP_MD_CTX_free(c);
	return err;
}

int xproto_stream_id(const char *logmsg, char *buf, size_t size)
{
	static const char head[] = "RECV: <stream:stream";

	if (!logmsg || strncmp(logmsg, head, sizeof(head) - 1) != 0)
		return -ENOENT;
	/* libstrophe writes the header's attributes as ` name="value"`; the value is
	 * the parsed one, so it holds no quote we could mistake for the end. */
	const char *p = logmsg + sizeof(head) - 1;
	for (;;) {
		p = strstr(p, " id=");
		if (!p)
			return -EBADMSG;
		p += 4;
		if (*p == '"' || *p == '\'')
			break;
	}
	char q = *p++;
	const char *end = strchr(p, q);
	if (!end || end == p)
		return -EBADMSG;
	size_t n = (size_t)(end - p);
	if (n > XPROTO_STREAM_ID_MAX || n + 1 > size)
		return -E2BIG;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 0;
}

/* libstrophe log messages that carry an errno, and where the number starts. */
static const struct {
	const char *prefix; /* the message starts with it */
	const char *key;    /* the number follows this (NULL: a clean close) */
} errno_msgs[] = {
    {"connection failed, error ", "connection failed, error "},
    {"error=", " errno="},
    {"Socket closed by remote host.", NULL},
};

bool xproto_log_errno(const char *logmsg, int *errnop)
{
	for (size_t i = 0; logmsg && i < sizeof(errno_msgs) / sizeof(errno_msgs[0]);
	     i++) {
		if (strncmp(logmsg, errno_msgs[i].prefix, strlen(errno_msgs[i].prefix)) !=
		    0)
			continue;
		if (!errno_msgs[i].key) {
			*errnop = 0;
			return true;
		}
		const char *p = strstr(logmsg, errno_msgs[i].key);
		if (!p)
			return false;
		p += strlen(errno_msgs[i].key);
		int v = 0;
		if (*p < '0' || *p > '9')
			return false;
		for (; *p >= '0' && *p <= '9' && v < 100000; p++)
			v = v * 10 + (*p - '0');
		/* 0 and the retry codes describe no failure. */
		if (v == 0 || v == EAGAIN || v == EWOULDBLOCK || v == EINTR)
			return false;
		*errnop = v;
		return true;
	}
	return false;
}

char *xproto_mask(const char *xml, size_t len)
{
	static const char open[] = "<handshake>", close[] = "</handshake>";
	struct sbuf sb;
	const char *p = xml, *end = xml + len;

	sbuf_init(&sb);
	while (p < end) {
		const char *o = NULL;
		for (const char *q = p; q + sizeof(open) - 1 <= end; q++)
			if (memcmp(q, open, sizeof(open) - 1) == 0) {
				o = q;
				break;
			}
		if (!o) {
			sbuf_putn(&sb, p, (size_t)(end - p));
			break;
		}
		const char *body = o + sizeof(open) - 1;
		sbuf_putn(&sb, p, (size_t)(body - p));
		sbuf_puts(&sb, "****");
		/* Without a closing tag the rest is all digest: mask it all. */
		const char *c = NULL;
		for (const char *q = body; q + sizeof(close) - 1 <= end; q++)
			if (memcmp(q, close, sizeof(close) - 1) == 0) {
				c = q;
				break;
			}
		p = c ? c : end;
	}
	return sbuf_take(&sb, NULL);
}

uint32_t xproto_backoff_ms(unsigned attempt, uint32_t rnd)
{
	uint32_t base = XPROTO_BACKOFF_FIRST_MS;
	for (unsigned i = 1; i < attempt && base < XPROTO_BACKOFF_MAX_MS; i++)
		base *= 2;
	if (base > XPROTO_BACKOFF_MAX_MS)
		base = XPROTO_BACKOFF_MAX_MS;
	/* Subtracting the jitter keeps the cap a true maximum. */
	return base - rnd % (base / 10 + 1);
}

bool xproto_log_failure(unsigned attempt, bool cause_changed)
{
	return attempt <= 1 || cause_changed || attempt % XPROTO_LOG_EVERY == 0;
}

static const char unknown_ca[] = "certificate signed by an unknown CA";
static const char add_ca[] = "add the XMPP server's CA to [xmpp] ca";

static const struct xproto_certerr cert_errors[] = {
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, unknown_ca, add_ca},
    {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, unknown_ca, add_ca},
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, unknown_ca, add_ca},
    {X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, unknown_ca,
     "add the XMPP server's CA (and any intermediate CA) to [xmpp] ca"},
    {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "self-signed certificate",
     "give the XMPP server a certificate from your CA, or add this certificate to "
     "[xmpp] ca"},
    {X509_V_ERR_CERT_HAS_EXPIRED, "certificate expired",
     "renew the XMPP server's certificate"},
    {X509_V_ERR_CERT_NOT_YET_VALID, "certificate not valid yet",
     "check the clocks of both machines and the certificate's start date"},
    {X509_V_ERR_HOSTNAME_MISMATCH, "certificate does not carry the expected name",
     "set [xmpp] name to a name the certificate carries, or reissue the certificate "
     "for it"},
    {X509_V_ERR_IP_ADDRESS_MISMATCH, "certificate does not carry the expected address",
     "set [xmpp] name to a name the certificate carries, or reissue the certificate "
     "for it"},
    {X509_V_ERR_CERT_REVOKED, "certificate revoked",
     "renew the XMPP server's certificate"},
    {X509_V_ERR_INVALID_PURPOSE, "certificate is not for TLS servers",
     "reissue it with the serverAuth extended key usage"},
    {X509_V_ERR_CERT_SIGNATURE_FAILURE, "certificate signature is invalid",
     "reissue the XMPP server's certificate"},
    {X509_V_ERR_EE_KEY_TOO_SMALL,
     "certificate key too small for OpenSSL's security level",
     "reissue it with a 2048-bit RSA or an EC key"},
    {X509_V_ERR_CA_MD_TOO_WEAK, "certificate signed with a weak digest",
     "reissue it signed with SHA-256"},
    {0, "certificate refused", "check the XMPP server's certificate and [xmpp] ca"},
};

#define NCERT (sizeof(cert_errors) / sizeof(cert_errors[0]))

const struct xproto_certerr *xproto_cert_error(int code)
{
	for (size_t i = 0; i + 1 < NCERT; i++)
		if (cert_errors[i].code == code)
			return &cert_errors[i];
	return &cert_errors[NCERT - 1];
}

const struct xproto_certerr *xproto_cert_error_text(const char *msg)
{
	for (size_t i = 0; msg && i + 1 < NCERT; i++)
		if (strcmp(X509_verify_cert_error_string(cert_errors[i].code), msg) == 0)
			return &cert_errors[i];
	return &cert_errors[NCERT - 1];
}

static const struct xproto_streamerr stream_errors[] = {
    /* ejabberd answers both a wrong secret and a domain outside its hosts so;
     * Prosody (mod_component) a wrong secret only. */
    {"not-authorized", "handshake refused: the server does not accept our secret for %s",
     "check [xmpp] secret against the ejabberd_service password, and that the domain "
     "is in that listener's hosts; on Prosody, against the component_secret of its "
     "Component section"},
    /* Prosody answers so, on a stream header whose id is empty (XEP-0114
     * section 3), for a domain that has no Component section. */
    {"host-unknown", "the server does not serve the component domain %s",
     "add it to the hosts of the server's component listener (ejabberd), or give "
     "Prosody a Component section for it with a component_secret"},
    /* Prosody's default (component_conflict_resolve = "kick_new"): a second
     * login for the domain is refused after its handshake. */
    {"conflict", "another component is already connected as %s",
     "if a presbridge is running with this configuration, that is it: a second "
     "link (or --probe) cannot log in beside it; otherwise stop the other bridge, "
     "or give each its own component domain"},
    {"invalid-namespace", "the server did not accept our component stream for %s",
     "check that [xmpp] server points at a component (XEP-0114) listener, not a "
     "client one"},
    {"bad-format", "the server could not read what we sent for %s",
     "this is a presbridge defect: report it with a trace log"},
    {"not-well-formed", "the server could not read what we sent for %s",
     "this is a presbridge defect: report it with a trace log"},
    {"invalid-from", "the server refused a sender address we used for %s",
     "this is a presbridge defect: report it with a trace log"},
    {"policy-violation",
     "the server closed the stream of %s for its policy (size or "
     "rate limits)",
     "check the listener's max_stanza_size and shaper"},
    {"system-shutdown", "the server is shutting down (stream of %s closed)", ""},
    {"connection-timeout", "the server closed the idle stream of %s", ""},
    {"reset", "the server reset the stream of %s", ""},
    {NULL, "the server closed the stream of %s with an error", ""},
};

#define NSTREAM (sizeof(stream_errors) / sizeof(stream_errors[0]))

const struct xproto_streamerr *xproto_stream_error(const char *cond)
{
	for (size_t i = 0; cond && i + 1 < NSTREAM; i++)
		if (strcmp(stream_errors[i].cond, cond) == 0)
			return &stream_errors[i];
	return &stream_errors[NSTREAM - 1];
}

/* OpenSSL errors that mean the two ends disagree about TLS on that port. */
static const struct {
	const char *openssl;
	const char *words;
} tls_errors[] = {
    {"wrong version number", XPROTO_NO_TLS_WORDS},
    {"packet length too long", XPROTO_NO_TLS_WORDS},
    {"unexpected eof",
     "the server closed the connection during the TLS handshake; its component "
     "listener may lack tls: true or a certfile (ejabberd); Prosody's "
     "component_ports are plain TCP: use [xmpp] tls = off there, or its "
     "mod_net_multiplex ssl_ports for direct TLS"},
};

const char *xproto_tls_words(const char *openssl_text)
{
	for (size_t i = 0; openssl_text && i < sizeof(tls_errors) / sizeof(tls_errors[0]);
	     i++)
		if (strstr(openssl_text, tls_errors[i].openssl))
			return tls_errors[i].words;
	return NULL;
}

uint32_t xproto_jitter(uint32_t *state)
{
	uint32_t x = *state ? *state : 2463534242u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

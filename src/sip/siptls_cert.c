#include "presbridge/siptls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* RFC 8446 section 6 and RFC 5246 section 7.2 alert descriptions. The
 * explanations name the likely cause in a federation with Lync/SfB or another
 * SIP server. */
static const struct siptls_alert alerts[] = {
    {0, "close_notify", "the peer closed the TLS session",
     "the bridge closed the TLS session"},
    {10, "unexpected_message",
     "the peer got a TLS message out of order (a bug or an "
     "interrupted handshake)",
     "the peer sent a TLS message out of order"},
    {20, "bad_record_mac", "the peer could not decrypt our data (corrupted in transit)",
     "the peer's data could not be decrypted (corrupted in transit)"},
    {22, "record_overflow", "the peer got a TLS record that was too long",
     "the peer sent a TLS record that was too long"},
    {40, "handshake_failure",
     "the peer refused the handshake: no TLS version or cipher suite in common, or it "
     "requires a client certificate we did not send",
     "no TLS version or cipher suite in common with the peer, or it sent no client "
     "certificate"},
    {42, "bad_certificate",
     "the peer refused our certificate (corrupt, or signed with an algorithm it does "
     "not take)",
     "the peer's certificate could not be used"},
    {43, "unsupported_certificate",
     "the peer refused our certificate for its purpose: it most likely lacks the "
     "clientAuth EKU (we were the client; Lync refuses federation peers without it) "
     "or serverAuth (we were the server) -- reissue it with serverAuth and clientAuth",
     "the peer's certificate is not allowed for its role: its extended key usage lacks "
     "clientAuth (peer as client) or serverAuth (peer as server) -- reissue it with "
     "both"},
    {44, "certificate_revoked",
     "the peer says our certificate was revoked: issue a new one",
     "the peer's certificate was revoked by its CA"},
    {45, "certificate_expired",
     "the peer says our certificate has expired (or its clock is wrong): renew it",
     "the peer's certificate has expired (or is not yet valid): the peer must renew "
     "it"},
    {46, "certificate_unknown",
     "the peer could not accept our certificate (often: it does not trust our CA, or "
     "the name does not match what it expects)",
     "the peer's certificate could not be accepted"},
    {47, "illegal_parameter", "the peer found a bad field in our handshake",
     "the peer sent a bad field in its handshake"},
    {48, "unknown_ca",
     "the peer does not trust the CA that issued our certificate: add that CA to the "
     "peer's trusted roots (on Lync/SfB: the Windows certificate store of every pool "
     "server and Edge)",
     "the peer's certificate was issued by a CA that [sip] ca does not hold: add that "
     "CA's certificate to [sip] ca"},
    {49, "access_denied", "the peer denied access after the handshake",
     "the bridge denied the peer access"},
    {50, "decode_error", "the peer could not decode our handshake",
     "the peer's handshake could not be decoded"},
    {51, "decrypt_error",
     "a handshake signature failed on the peer's side (key and certificate do not "
     "match?)",
     "a handshake signature of the peer failed to verify"},
    {70, "protocol_version",
     "no TLS version in common: the bridge speaks TLS 1.2 and 1.3; enable TLS 1.2 on "
     "the peer",
     "the peer offered only a TLS version the bridge refuses (below 1.2)"},
    {71, "insufficient_security", "the peer wants stronger cipher suites than ours",
     "the peer offered only cipher suites too weak for the bridge"},
    {80, "internal_error",
     "the peer failed internally during the handshake (see its log)",
     "the bridge failed internally during the handshake"},
    {86, "inappropriate_fallback", "the peer detected a protocol downgrade",
     "a protocol downgrade was detected"},
    {90, "user_canceled", "the peer cancelled the handshake",
     "the handshake was cancelled"},
    {109, "missing_extension", "the peer needs a TLS extension we did not send",
     "the peer did not send a TLS extension TLS 1.3 needs"},
    {110, "unsupported_extension", "the peer got a TLS extension it did not ask for",
     "the peer sent a TLS extension that was not asked for"},
    {112, "unrecognized_name", "the peer does not serve the name we asked for (SNI)",
     "the peer asked for a server name (SNI) the bridge does not serve"},
    {113, "bad_certificate_status_response", "the peer refused our OCSP status response",
     "the peer's OCSP status response was bad"},
    {115, "unknown_psk_identity", "the peer does not know our session key identity",
     "the peer's session key identity is unknown"},
    {116, "certificate_required",
     "the peer requires a client certificate and got none: set [sip] cert and key",
     "the peer sent no client certificate; mutual TLS requires one (configure the "
     "peer to present its certificate)"},
    {120, "no_application_protocol", "no application protocol in common (ALPN)",
     "no application protocol in common (ALPN)"},
};

static const struct siptls_alert unknown_alert = {
    -1, "unknown_alert",
    "the peer ended the handshake with an alert the bridge does not know",
    "the bridge sent an alert it does not describe"};

const struct siptls_alert *siptls_alert(int code)
{
	for (size_t i = 0; i < sizeof(alerts) / sizeof(alerts[0]); i++)
		if (alerts[i].code == code)
			return &alerts[i];
	return &unknown_alert;
}

static const struct siptls_verr verrs[] = {
    {X509_V_ERR_CERT_HAS_EXPIRED, "the certificate has expired",
     "the peer must renew its certificate (or fix its clock, or ours)"},
    {X509_V_ERR_CERT_NOT_YET_VALID, "the certificate is not valid yet",
     "check the clocks of both machines, or wait until the certificate's start date"},
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
     "the certificate was issued by a CA that [sip] ca does not hold",
     "add the issuing CA's certificate (and any intermediate) to [sip] ca, or have the "
     "peer send its full chain"},
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, "the certificate's issuer is not in [sip] ca",
     "add the issuing CA's certificate to [sip] ca"},
    {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "the certificate is self-signed",
     "issue the peer a certificate from a CA that [sip] ca holds"},
    {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
     "the certificate chains to a root that [sip] ca does not hold",
     "add that root CA to [sip] ca"},
    {X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE,
     "the certificate's issuer is unknown and the peer sent no chain",
     "add the issuing CA to [sip] ca"},
    {X509_V_ERR_INVALID_PURPOSE,
     "the certificate's extended key usage does not allow its role (a TLS client needs "
     "clientAuth, a server serverAuth)",
     "reissue the certificate with both serverAuth and clientAuth"},
    {X509_V_ERR_CERT_REVOKED, "the certificate was revoked",
     "the peer needs a new certificate"},
    {X509_V_ERR_CERT_SIGNATURE_FAILURE, "the certificate's signature does not verify",
     "the certificate is corrupt or forged; reissue it"},
    {X509_V_ERR_CERT_CHAIN_TOO_LONG, "the certificate chain is too long",
     "shorten the chain"},
    {X509_V_ERR_INVALID_CA, "a CA certificate in the chain is not marked as a CA",
     "fix the CA certificates (basicConstraints CA:TRUE)"},
    {X509_V_ERR_EE_KEY_TOO_SMALL, "the certificate's key is too small",
     "reissue it with at least a 2048-bit RSA or a 256-bit EC key"},
    {X509_V_ERR_CA_MD_TOO_WEAK,
     "the certificate is signed with a weak digest (MD5/SHA-1)",
     "reissue it signed with SHA-256"},
};

static const struct siptls_verr unknown_verr = {
    -1, "the certificate failed verification",
    "check it with: openssl verify -CAfile <[sip] ca> <certificate>"};

const struct siptls_verr *siptls_verify_error(long code)
{
	for (size_t i = 0; i < sizeof(verrs) / sizeof(verrs[0]); i++)
		if (verrs[i].code == code)
			return &verrs[i];
	return &unknown_verr;
}

const char *siptls_role_eku(enum siptls_role role)
{
	return role == SIPTLS_CLIENT ? "clientAuth" : "serverAuth";
}

int siptls_eku_check(struct x509_st *cert, enum siptls_role role)
{
	if (!cert)
		return -EINVAL;
	int crit = 0;
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(cert, NID_ext_key_usage, &crit, NULL);
	if (!eku)
		return crit == -1 ? 0 : -EINVAL; /* -1: no extension (unrestricted) */
	int want = role == SIPTLS_CLIENT ? NID_client_auth : NID_server_auth;
	int ok = 0;
	for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
		int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
		if (nid == want)
			ok = 1;
	}
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return ok ? 0 : -EPERM;
}

void siptls_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int add_name(char ***v, size_t *n, const unsigned char *s, int len)
{
	if (len <= 0 || memchr(s, '\0', (size_t)len))
		return 0; /* an embedded NUL is an attack on C strings: ignore it */
	char **nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	char *c = malloc((size_t)len + 1);
	if (!c)
		return -ENOMEM;
	for (int i = 0; i < len; i++)
		c[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
	c[len] = '\0';
	nv[(*n)++] = c;
	return 0;
}

int siptls_cert_names(struct x509_st *cert, char ***namesp, size_t *np, bool *from_cnp)
{
	char **v = NULL;
	size_t n = 0;
	int err = 0;

	if (!cert)
		return -EINVAL;
	GENERAL_NAMES *san = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; san && i < sk_GENERAL_NAME_num(san) && !err; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
		if (g->type == GEN_DNS)
			err = add_name(&v, &n, ASN1_STRING_get0_data(g->d.dNSName),
			               ASN1_STRING_length(g->d.dNSName));
	}
	GENERAL_NAMES_free(san);
	bool from_cn = false;
	/* RFC 6125 section 6.4.4: the CN only when there is no dNSName. */
	if (!err && n == 0) {
		X509_NAME *subj = X509_get_subject_name(cert);
		int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
		if (idx >= 0) {
			ASN1_STRING *cn =
			    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
			unsigned char *utf8 = NULL;
			int len = ASN1_STRING_to_UTF8(&utf8, cn);
			if (len > 0) {
				err = add_name(&v, &n, utf8, len);
				from_cn = true;
			}
			OPENSSL_free(utf8);
		}
	}
	if (err) {
		siptls_names_free(v, n);
		return err;
	}
	*namesp = v;
	*np = n;
	if (from_cnp)
		*from_cnp = from_cn;
	return 0;
}

bool siptls_name_match(const char *name, const char *host)
{
	size_t nl = strlen(name), hl = strlen(host);
	if (nl && name[nl - 1] == '.')
		nl--;
	if (hl && host[hl - 1] == '.')
		hl--;
	if (!nl || nl != hl || memchr(name, '*', nl))
		return false;
	return strncasecmp(name, host, nl) == 0;
}

bool siptls_names_match(char *const *names, size_t n, const char *host)
{
	for (size_t i = 0; i < n; i++)
		if (siptls_name_match(names[i], host))
			return true;
	return false;
}

void siptls_names_str(char *const *names, size_t n, char *buf, size_t len)
{
	if (!len)
		return;
	buf[0] = '\0';
	if (n == 0) {
		snprintf(buf, len, "(none)");
		return;
	}
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", names[i]);
		if (w < 0 || (size_t)w >= len - o) {
			if (len > 4)
				memcpy(buf + len - 4, "...", 4);
			return;
		}
		o += (size_t)w;
	}
}

int siptls_key_check(struct x509_st *cert, const char *keyfile)
{
	FILE *kf = fopen(keyfile, "r");
	EVP_PKEY *key = kf ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
	if (kf)
		fclose(kf);
	int r = !key                                     ? -ENOKEY
	        : X509_check_private_key(cert, key) != 1 ? -EKEYREJECTED
	                                                 : 0;
	EVP_PKEY_free(key);
	ERR_clear_error();
	return r;
}

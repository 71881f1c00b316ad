/*
 * Offline checks of the TLS material a federation depends on, for
 * `presbridge -n` and for the SIP leg's start-up: the same causes, in the same
 * words, wherever they are found.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "presbridge/addr.h"
#include "presbridge/conf.h"
#include "presbridge/siptls.h"

/* Warn this long before a certificate expires. */
#define EXPIRY_WARN_DAYS 30
/* Lync and Skype for Business refuse RSA keys under 2048 bits for federation,
 * and Lync 2010/2013 accept RSA keys only. */
#define RSA_MIN_BITS 2048

/*
 * Public CAs that have stopped, or announced they stop, putting clientAuth in
 * TLS server certificates (browser root-program rules, 2025-2026). A renewal
 * from them quietly drops the EKU Lync needs (alert 43).
 */
static const char *const public_cas[] = {
    "Let's Encrypt", "DigiCert", "Sectigo",   "GlobalSign",
    "GoDaddy",       "Entrust",  "IdenTrust", "Google Trust Services",
    "Amazon",
};

static STACK_OF(X509) * read_certs(const char *path)
{
	FILE *f = fopen(path, "r");
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *x;
	if (!f || !sk) {
		if (f)
			fclose(f);
		sk_X509_free(sk);
		return NULL;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
		sk_X509_push(sk, x);
	ERR_clear_error(); /* the end of the file reads as an error */
	fclose(f);
	return sk;
}

static void days_left(const ASN1_TIME *t, int *days)
{
	int d = 0, s = 0;
	if (ASN1_TIME_diff(&d, &s, NULL, t) != 1)
		d = 0;
	*days = d;
}

static bool issued_by_public_ca(X509 *x, const char **which)
{
	char issuer[512];
	X509_NAME_oneline(X509_get_issuer_name(x), issuer, sizeof(issuer));
	for (size_t i = 0; i < sizeof(public_cas) / sizeof(public_cas[0]); i++)
		if (strstr(issuer, public_cas[i])) {
			*which = public_cas[i];
			return true;
		}
	return false;
}

static void check_key(struct diag_list *dl, const char *file, unsigned line,
                      const char *cert_path, X509 *x)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	if (!pk)
		return;
	if (EVP_PKEY_base_id(pk) == EVP_PKEY_RSA) {
		if (EVP_PKEY_get_bits(pk) < RSA_MIN_BITS)
			diag_add(
			    dl, DIAG_ERROR, file, line,
			    "cert: %s has a %d-bit RSA key; Lync/SfB refuses keys under "
			    "%d bits: reissue it with RSA 2048 or more",
			    cert_path, EVP_PKEY_get_bits(pk), RSA_MIN_BITS);
	} else {
		diag_add(
		    dl, DIAG_WARN, file, line,
		    "cert: %s has a %s key; Lync 2010/2013 accept RSA keys only: use RSA "
		    "2048 if such servers federate with the bridge",
		    cert_path, OBJ_nid2sn(EVP_PKEY_base_id(pk)));
	}
}

/* The names certificates are checked against: each TLS peer's host, the XMPP
 * server's name, and the names the bridge's own certificate offers. */
static void check_names(const struct conf *cf, struct diag_list *dl)
{
	for (size_t i = 0; i < cf->npeers; i++) {
		const struct conf_peer *p = &cf->peers[i];
		if (p->transport == CONF_TP_TLS && p->host && addr_is_ip(p->host))
			diag_add(
			    dl, DIAG_ERROR, cf->file,
			    p->host_line ? p->host_line : p->line,
			    "[peer %s] host '%s' is an IP address: SIP certificates name "
			    "servers by DNS name (RFC 5922), so the bridge could never "
			    "verify this peer; set host to the FQDN its certificate "
			    "carries and put the address in address",
			    p->name, p->host);
	}
	if (cf->xmpp_tls == CONF_XMPP_TLS_DIRECT && cf->xmpp_server.host &&
	    !conf_key_line(cf, "xmpp", "name") && addr_is_ip(cf->xmpp_server.host))
		diag_add(
		    dl, DIAG_WARN, cf->file, conf_key_line(cf, "xmpp", "server"),
		    "[xmpp] has no name: the server's certificate must then carry the "
		    "address %s, which certificates rarely do; set name to the name in "
		    "the XMPP server's certificate (usually its domain)",
		    cf->xmpp_server.host);
}

/* The bridge's certificate must offer a DNS name: a SIP server's static route
 * (Lync: New-CsStaticRoute -Destination) names it, and Lync matches that name
 * against the subjectAltName. */
static void check_own_names(const struct conf *cf, struct diag_list *dl, X509 *own)
{
	char **names = NULL;
	size_t n = 0;
	bool from_cn = false;
	if (siptls_cert_names(own, &names, &n, &from_cn) != 0)
		return;
	if (n == 0)
		diag_add(
		    dl, DIAG_ERROR, cf->file, conf_key_line(cf, "sip", "cert"),
		    "cert: %s names no host (no subjectAltName DNS entry, no CN): no "
		    "peer can verify the bridge; reissue it with the bridge's FQDN in "
		    "subjectAltName",
		    cf->cert);
	else if (from_cn)
		diag_add(
		    dl, DIAG_WARN, cf->file, conf_key_line(cf, "sip", "cert"),
		    "cert: %s carries its name %s in the CN only: Lync/SfB matches a "
		    "static route's destination against subjectAltName DNS entries; "
		    "reissue it with %s in subjectAltName",
		    cf->cert, names[0], names[0]);
	siptls_names_free(names, n);
}

/* The bridge's own certificate: it is a TLS server and a TLS client. */
static void check_own(const struct conf *cf, struct diag_list *dl,
                      STACK_OF(X509) * anchors)
{
	unsigned cl = conf_key_line(cf, "sip", "cert");
	unsigned kl = conf_key_line(cf, "sip", "key");
	STACK_OF(X509) *chain = read_certs(cf->cert);
	X509 *own = chain && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
	int days;

	if (!own) {
		diag_add(dl, DIAG_ERROR, cf->file, cl,
		         "cert: %s holds no PEM certificate the bridge can read",
		         cf->cert);
		goto out;
	}
	int kc = siptls_key_check(own, cf->key);
	if (kc == -ENOKEY)
		diag_add(
		    dl, DIAG_ERROR, cf->file, kl,
		    "key: %s holds no unencrypted PEM private key the bridge can read",
		    cf->key);
	else if (kc == -EKEYREJECTED)
		diag_add(dl, DIAG_ERROR, cf->file, kl,
		         "key: %s does not belong to the certificate %s: use the key the "
		         "certificate was issued for",
		         cf->key, cf->cert);

	if (X509_cmp_current_time(X509_get0_notBefore(own)) > 0)
		diag_add(
		    dl, DIAG_ERROR, cf->file, cl,
		    "cert: %s is not valid yet: every TLS peer refuses it; check the "
		    "clock, or the certificate's dates",
		    cf->cert);
	else if (X509_cmp_current_time(X509_get0_notAfter(own)) < 0)
		diag_add(dl, DIAG_ERROR, cf->file, cl,
		         "cert: %s has expired: every TLS peer refuses it (TLS alert 45, "
		         "certificate_expired); renew it",
		         cf->cert);
	else if (days_left(X509_get0_notAfter(own), &days), days < EXPIRY_WARN_DAYS)
		diag_add(dl, DIAG_WARN, cf->file, cl,
		         "cert: %s expires in %d days; renew it (with serverAuth and "
		         "clientAuth) before federation stops",
		         cf->cert, days);

	for (int r = SIPTLS_CLIENT; r <= SIPTLS_SERVER; r++)
		if (siptls_eku_check(own, (enum siptls_role)r) == -EPERM)
			diag_add(dl, DIAG_ERROR, cf->file, cl,
			         "cert: %s lacks the %s EKU: %s; reissue it with "
			         "serverAuth and "
			         "clientAuth",
			         cf->cert, siptls_role_eku((enum siptls_role)r),
			         r == SIPTLS_CLIENT
			             ? "Lync/SfB refuses it when the bridge connects "
			               "(TLS alert 43, unsupported_certificate)"
			             : "peers refuse it when they connect to the "
			               "bridge");
	check_key(dl, cf->file, cl, cf->cert, own);
	check_own_names(cf, dl, own);
	const char *ca_name;
	if (issued_by_public_ca(own, &ca_name))
		diag_add(
		    dl, DIAG_WARN, cf->file, cl,
		    "cert: %s comes from %s, a public CA that no longer puts clientAuth "
		    "in "
		    "server certificates: its next renewal will lack the EKU Lync needs; "
		    "plan an enterprise CA",
		    cf->cert, ca_name);

	if (anchors && sk_X509_num(anchors) > 0) {
		X509_STORE *st = X509_STORE_new();
		X509_STORE_CTX *ctx = X509_STORE_CTX_new();
		for (int i = 0; st && i < sk_X509_num(anchors); i++)
			X509_STORE_add_cert(st, sk_X509_value(anchors, i));
		STACK_OF(X509) *rest = sk_X509_dup(chain);
		if (rest)
			(void)sk_X509_shift(rest);
		if (st && ctx && X509_STORE_CTX_init(ctx, st, own, rest) == 1) {
			/* Dates are reported above on their own; here only the chain
			 * counts. */
			X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
			if (X509_verify_cert(ctx) != 1) {
				int ve = X509_STORE_CTX_get_error(ctx);
				diag_add(dl, DIAG_ERROR, cf->file, cl,
				         "cert: %s does not chain to a CA in [sip] ca "
				         "(%s): peers "
				         "that trust the same CA will refuse it; add the "
				         "issuing "
				         "CA to %s or use a certificate from it",
				         cf->cert, X509_verify_cert_error_string(ve),
				         cf->ca);
			}
		}
		sk_X509_free(rest);
		X509_STORE_CTX_free(ctx);
		X509_STORE_free(st);
	}
out:
	sk_X509_pop_free(chain, X509_free);
	ERR_clear_error();
}

static STACK_OF(X509) * check_anchors(const struct conf *cf, struct diag_list *dl,
                                      const char *section, const char *path)
{
	STACK_OF(X509) *sk = read_certs(path);
	if (!sk || sk_X509_num(sk) == 0)
		diag_add(dl, DIAG_ERROR, cf->file, conf_key_line(cf, section, "ca"),
		         "ca: %s holds no PEM certificate: no peer could be verified",
		         path);
	return sk;
}

int siptls_check_conf(const struct conf *cf, struct diag_list *dl)
{
	size_t before = diag_count(dl, DIAG_ERROR);
	STACK_OF(X509) *anchors = NULL;

	if (cf->ca)
		anchors = check_anchors(cf, dl, "sip", cf->ca);
	if (cf->cert && cf->key)
		check_own(cf, dl, anchors);
	sk_X509_pop_free(anchors, X509_free);
	check_names(cf, dl);
	if (cf->xmpp_ca && cf->xmpp_tls == CONF_XMPP_TLS_DIRECT) {
		STACK_OF(X509) *x = check_anchors(cf, dl, "xmpp", cf->xmpp_ca);
		sk_X509_pop_free(x, X509_free);
	}
	return diag_count(dl, DIAG_ERROR) > before ? -EINVAL : 0;
}

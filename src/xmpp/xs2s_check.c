/*
 * Offline checks of the server-to-server TLS material, for `presbridge -n`, the
 * probe's offline part and the transport's start: the certificate presented for
 * the hosted domains must name each of them with a DNS subjectAltName (RFC 6125
 * DNS-ID; Cisco IM&P and Expressway want the DNS form, not XmppAddr only), carry
 * serverAuth and clientAuth (the bridge is TLS server on streams peers open and
 * TLS client on its own, RFC 6120 section 13.7.1.1), match its key and not be
 * expired. (Its chain is judged by each peer against the peer's own trust
 * anchors, which the bridge cannot see; --probe shows what the peer accepts.)
 */
#include "presbridge/xs2s.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "presbridge/conf.h"
#include "presbridge/diag.h"
#include "presbridge/siptls.h"
#include "presbridge/xlink.h"
#include "presbridge/xs2s_proto.h"

static unsigned key_line(const struct conf *cf, const char *key, const char *sip_key)
{
	unsigned l = conf_key_line(cf, "s2s", key);
	return l ? l : conf_key_line(cf, "sip", sip_key);
}

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	ERR_clear_error();
	return x;
}

int xs2s_check_conf(const struct conf *cf, struct diag_list *dl)
{
	size_t before = diag_count(dl, DIAG_ERROR);
	char **hosted = NULL;
	size_t nhosted = 0;

	if (cf->xmpp_transport != CONF_XMPP_S2S || !cf->s2s_cert || !cf->s2s_key)
		return 0;
	unsigned cl = key_line(cf, "cert", "cert"), kl = key_line(cf, "key", "key");
	X509 *own = read_cert(cf->s2s_cert);
	if (!own) {
		diag_add(dl, DIAG_ERROR, cf->file, cl,
		         "[s2s] cert: %s holds no PEM certificate the bridge can read",
		         cf->s2s_cert);
		return -EINVAL;
	}
	int kc = siptls_key_check(own, cf->s2s_key);
	if (kc == -ENOKEY)
		diag_add(
		    dl, DIAG_ERROR, cf->file, kl,
		    "[s2s] key: %s holds no unencrypted PEM private key the bridge can "
		    "read",
		    cf->s2s_key);
	else if (kc == -EKEYREJECTED)
		diag_add(dl, DIAG_ERROR, cf->file, kl,
		         "[s2s] key: %s does not belong to the certificate %s",
		         cf->s2s_key, cf->s2s_cert);

	if (X509_cmp_current_time(X509_get0_notAfter(own)) < 0)
		diag_add(dl, DIAG_ERROR, cf->file, cl,
		         "[s2s] cert: %s has expired: every federating server refuses it",
		         cf->s2s_cert);
	for (int r = SIPTLS_CLIENT; r <= SIPTLS_SERVER; r++)
		if (siptls_eku_check(own, (enum siptls_role)r) == -EPERM)
			diag_add(dl, DIAG_ERROR, cf->file, cl,
			         "[s2s] cert: %s lacks the %s EKU: %s; reissue it with "
			         "serverAuth and clientAuth",
			         cf->s2s_cert, siptls_role_eku((enum siptls_role)r),
			         r == SIPTLS_CLIENT
			             ? "peers refuse SASL EXTERNAL (and some the TLS "
			               "handshake) on streams the bridge opens"
			             : "peers refuse the TLS handshake on streams they "
			               "open to the bridge");
	if (xlink_domains(cf, true, &hosted, &nhosted) == 0) {
		char ids[400];
		xs2s_cert_ids_str(own, ids, sizeof(ids));
		for (size_t i = 0; i < nhosted; i++)
			if (!xs2s_cert_has_dns_san(own, hosted[i]))
				diag_add(
				    dl, DIAG_ERROR, cf->file, cl,
				    "[s2s] cert: %s does not name the hosted domain %s "
				    "with a DNS subjectAltName (it names %s): peers "
				    "check the stream's domain against it (RFC 6125 "
				    "DNS-ID; Cisco IM&P and Expressway want the DNS "
				    "form); reissue it with DNS:%s",
				    cf->s2s_cert, hosted[i], ids, hosted[i]);
		xlink_strv_free(hosted, nhosted);
	}
	X509_free(own);
	return diag_count(dl, DIAG_ERROR) > before ? -EINVAL : 0;
}

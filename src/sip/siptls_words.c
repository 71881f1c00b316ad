/*
 * The plain words of TLS failures, shared by the SIP leg's run-time log and
 * `presbridge --probe`, so an operator reads the same cause and fix wherever a
 * federation fails (issue: trust diagnostics).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "presbridge/siptls.h"

void siptls_alert_rcvd_text(int alert, bool inbound, char *out, size_t len)
{
	const struct siptls_alert *a = siptls_alert(alert);
	if (alert == 43)
		snprintf(
		    out, len,
		    "TLS alert 43 unsupported_certificate from the peer: the peer "
		    "refused our certificate; it lacks the %s EKU (the bridge was the "
		    "TLS %s%s) -- reissue it with serverAuth and clientAuth",
		    inbound ? "serverAuth" : "clientAuth", inbound ? "server" : "client",
		    inbound ? "" : "; Lync/SfB refuses federation peers without it");
	else
		snprintf(out, len, "TLS alert %d %s from the peer: %s", alert, a->name,
		         a->when_received);
}

void siptls_eku_text(const char *subject, enum siptls_role role, char *out, size_t len)
{
	snprintf(out, len,
	         "its certificate (%s) lacks the %s EKU it needs as TLS %s; reissue it "
	         "with serverAuth and clientAuth",
	         subject, siptls_role_eku(role),
	         role == SIPTLS_CLIENT ? "client" : "server");
}

void siptls_wrong_name_text(const char *names, const char *host, const char *peer,
                            char *out, size_t len)
{
	snprintf(out, len,
	         "its certificate names %s, not %s, the host of [peer %s] (RFC 5922 "
	         "section 7.2; wildcards never match): fix host in [peer %s] or put %s "
	         "in the certificate's subjectAltName",
	         names, host, peer, peer, host);
}

static void closed_text(const struct siptls_fail *f, char *cause, size_t n, char *key,
                        size_t kn)
{
	snprintf(cause, n, "the peer closed the connection during the TLS handshake%s",
	         f->inbound ? ""
	                    : " (it may have refused our certificate without an alert, "
	                      "or it does not speak TLS on this port)");
	snprintf(key, kn, "hs-closed");
}

void siptls_fail_text(const struct siptls_fail *f, char *cause, size_t n, char *key,
                      size_t kn)
{
	unsigned long e = f->ssl_err;
	bool eof = e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	           ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;

	if (f->verr) {
		const struct siptls_verr *v = siptls_verify_error(f->verr);
		if (f->verr == X509_V_ERR_INVALID_PURPOSE)
			siptls_eku_text(f->verr_subject,
			                f->inbound ? SIPTLS_CLIENT : SIPTLS_SERVER, cause,
			                n);
		else
			snprintf(cause, n,
			         "its certificate (%s) was refused: %s (%s); %s",
			         f->verr_subject, v->what,
			         X509_verify_cert_error_string(f->verr), v->fix);
		snprintf(key, kn, "verify-%ld", f->verr);
	} else if (f->alert_rcvd >= 0) {
		siptls_alert_rcvd_text(f->alert_rcvd, f->inbound, cause, n);
		snprintf(key, kn, "alert-rcvd-%d", f->alert_rcvd);
	} else if (eof) {
		/* OpenSSL 3 also "sends" decode_error here; the cause is the close. */
		closed_text(f, cause, n, key, kn);
	} else if (f->alert_sent >= 0) {
		const struct siptls_alert *a = siptls_alert(f->alert_sent);
		snprintf(cause, n, "we sent TLS alert %d %s: %s", f->alert_sent, a->name,
		         a->when_sent);
		snprintf(key, kn, "alert-sent-%d", f->alert_sent);
	} else if (e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	           (ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER ||
	            ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST ||
	            ERR_GET_REASON(e) == SSL_R_PACKET_LENGTH_TOO_LONG ||
	            ERR_GET_REASON(e) == SSL_R_UNKNOWN_PROTOCOL)) {
		snprintf(
		    cause, n,
		    "the peer does not speak TLS here (plain SIP sent to a TLS port, "
		    "or its transport is not tls): point the route at its TLS "
		    "listener, or set transport to match");
		snprintf(key, kn, "not-tls");
	} else if (f->timed_out) {
		snprintf(
		    cause, n,
		    "no TLS answer: the port accepted the connection but said nothing "
		    "(a plain TCP listener waiting for a SIP request, or a stalled "
		    "peer): point the route at its TLS listener");
		snprintf(key, kn, "hs-timeout");
	} else if (f->ssl_get_error == SSL_ERROR_SYSCALL ||
	           f->ssl_get_error == SSL_ERROR_ZERO_RETURN || !e) {
		closed_text(f, cause, n, key, kn);
	} else {
		char buf[256];
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(cause, n, "TLS handshake error: %s", buf);
		snprintf(key, kn, "hs-%lu", e);
	}
	if (f->verr && f->alert_sent >= 0) {
		size_t l = strlen(cause);
		if (l < n)
			snprintf(cause + l, n - l, "; we sent TLS alert %d %s",
			         f->alert_sent, siptls_alert(f->alert_sent)->name);
	}
}

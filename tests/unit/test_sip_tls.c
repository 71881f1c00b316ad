/* TLS knowledge of the SIP leg: alert and verification tables, certificate
 * names (SAN, CN, wildcards) and extended key usage, on committed certificates
 * (tests/data/sip/certs). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "presbridge/siptls.h"

static X509 *load_cert(const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/sip/certs/%s.crt", PB_TEST_DATA, name);
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s", path);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x)
		fail_msg("cannot read %s", path);
	return x;
}

static const struct {
	int code;
	const char *name;
	const char *received_mentions; /* in when_received */
	const char *sent_mentions;     /* in when_sent */
} alert_rows[] = {
    {40, "handshake_failure", "cipher", "client certificate"},
    {42, "bad_certificate", "our certificate", "certificate"},
    {43, "unsupported_certificate", "clientAuth", "clientAuth"},
    {44, "certificate_revoked", "revoked", "revoked"},
    {45, "certificate_expired", "expired", "expired"},
    {46, "certificate_unknown", "CA", "certificate"},
    {48, "unknown_ca", "trusted roots", "[sip] ca"},
    {70, "protocol_version", "TLS 1.2", "1.2"},
    {80, "internal_error", "internal", "internal"},
    {116, "certificate_required", "[sip] cert", "no client certificate"},
    {112, "unrecognized_name", "SNI", "SNI"},
    {0, "close_notify", "closed", "closed"},
    {250, "unknown_alert", "does not know", "does not describe"},
    {-3, "unknown_alert", "does not know", "does not describe"},
};

static void test_alert_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(alert_rows) / sizeof(alert_rows[0]); i++) {
		const struct siptls_alert *a = siptls_alert(alert_rows[i].code);
		assert_non_null(a);
		if (strcmp(a->name, alert_rows[i].name) != 0)
			fail_msg("alert %d: %s, want %s", alert_rows[i].code, a->name,
			         alert_rows[i].name);
		if (!strstr(a->when_received, alert_rows[i].received_mentions))
			fail_msg("alert %d received: '%s' lacks '%s'", alert_rows[i].code,
			         a->when_received, alert_rows[i].received_mentions);
		if (!strstr(a->when_sent, alert_rows[i].sent_mentions))
			fail_msg("alert %d sent: '%s' lacks '%s'", alert_rows[i].code,
			         a->when_sent, alert_rows[i].sent_mentions);
	}
}

static void test_verify_error_table(void **state)
{
	(void)state;
	static const struct {
		long code;
		const char *what, *fix;
	} rows[] = {
	    {X509_V_ERR_CERT_HAS_EXPIRED, "expired", "renew"},
	    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "[sip] ca does not hold",
	     "[sip] ca"},
	    {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "self-signed", "CA"},
	    {X509_V_ERR_INVALID_PURPOSE, "clientAuth", "serverAuth and clientAuth"},
	    {X509_V_ERR_CERT_NOT_YET_VALID, "not valid yet", "clocks"},
	    {X509_V_ERR_CERT_REVOKED, "revoked", "new certificate"},
	    {999999, "failed verification", "openssl verify"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct siptls_verr *v = siptls_verify_error(rows[i].code);
		if (!strstr(v->what, rows[i].what) || !strstr(v->fix, rows[i].fix))
			fail_msg("verify error %ld: '%s' / '%s'", rows[i].code, v->what,
			         v->fix);
	}
}

static const struct {
	const char *cert;
	const char *names; /* as siptls_names_str writes them */
	bool from_cn;
	const char *host;  /* must match ... */
	const char *other; /* ... and must not */
} name_rows[] = {
    {"both", "sipp.sip.test, lync01.sip.test", false, "LYNC01.sip.test", "sip.test"},
    {"cn-only", "sipp.sip.test", true, "sipp.sip.test", "other.sip.test"},
    {"san-and-cn", "sipp.sip.test", false, "sipp.sip.test", "other.sip.test"},
    {"wildcard", "*.sip.test", false, NULL, "sipp.sip.test"},
    {"ip-only", "sipp.sip.test", true, "sipp.sip.test", "127.0.0.1"},
};

static void test_cert_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(name_rows) / sizeof(name_rows[0]); i++) {
		X509 *x = load_cert(name_rows[i].cert);
		char **names = NULL, buf[200];
		size_t n = 0;
		bool from_cn = !name_rows[i].from_cn;
		assert_int_equal(siptls_cert_names(x, &names, &n, &from_cn), 0);
		siptls_names_str(names, n, buf, sizeof(buf));
		if (strcmp(buf, name_rows[i].names) != 0)
			fail_msg("%s: names '%s', want '%s'", name_rows[i].cert, buf,
			         name_rows[i].names);
		if (from_cn != name_rows[i].from_cn)
			fail_msg("%s: CN used %d", name_rows[i].cert, from_cn);
		if (name_rows[i].host && !siptls_names_match(names, n, name_rows[i].host))
			fail_msg("%s: does not match %s", name_rows[i].cert,
			         name_rows[i].host);
		if (siptls_names_match(names, n, name_rows[i].other))
			fail_msg("%s: matches %s", name_rows[i].cert, name_rows[i].other);
		siptls_names_free(names, n);
		X509_free(x);
	}
}

static void test_name_match_table(void **state)
{
	(void)state;
	static const struct {
		const char *name, *host;
		bool match;
	} rows[] = {
	    {"lync01.sip.test", "lync01.sip.test", true},
	    {"LYNC01.SIP.TEST", "lync01.sip.test", true},
	    {"lync01.sip.test.", "lync01.sip.test", true},
	    {"lync01.sip.test", "lync01.sip.test.", true},
	    {"*.sip.test", "lync01.sip.test", false}, /* RFC 5922 7.2 */
	    {"*", "lync01", false},
	    {"lync01.sip.test", "lync01.sip.tes", false},
	    {"lync01.sip.tes", "lync01.sip.test", false},
	    {"sip.test", "lync01.sip.test", false},
	    {"", "", false},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (siptls_name_match(rows[i].name, rows[i].host) != rows[i].match)
			fail_msg("'%s' vs '%s': want %d", rows[i].name, rows[i].host,
			         rows[i].match);
	char buf[12];
	char *long_names[] = {"aaaa.test", "bbbb.test"};
	siptls_names_str(long_names, 2, buf, sizeof(buf));
	assert_string_equal(buf, "aaaa.tes...");
	siptls_names_str(NULL, 0, buf, sizeof(buf));
	assert_string_equal(buf, "(none)");
}

static void test_eku_table(void **state)
{
	(void)state;
	static const struct {
		const char *cert;
		int as_client, as_server;
	} rows[] = {
	    {"both", 0, 0},
	    {"server-only", -EPERM, 0},
	    {"client-only", 0, -EPERM},
	    {"no-eku", 0, 0}, /* RFC 5280 4.2.1.12: no extension, no restriction */
	    {"any-eku", -EPERM, -EPERM}, /* as OpenSSL decides it in the handshake */
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		X509 *x = load_cert(rows[i].cert);
		int c = siptls_eku_check(x, SIPTLS_CLIENT),
		    s = siptls_eku_check(x, SIPTLS_SERVER);
		if (c != rows[i].as_client || s != rows[i].as_server)
			fail_msg("%s: as client %d, as server %d", rows[i].cert, c, s);
		X509_free(x);
	}
	assert_int_equal(siptls_eku_check(NULL, SIPTLS_CLIENT), -EINVAL);
	assert_string_equal(siptls_role_eku(SIPTLS_CLIENT), "clientAuth");
	assert_string_equal(siptls_role_eku(SIPTLS_SERVER), "serverAuth");
}

/* OpenSSL's own purpose check, which makes the server send alert 43, agrees
 * with siptls_eku_check on the committed certificates. */
static void test_openssl_purpose_agrees(void **state)
{
	(void)state;
	static const char *certs[] = {"both", "server-only", "client-only", "no-eku",
	                              "any-eku"};
	for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
		X509 *x = load_cert(certs[i]);
		int ossl = X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0) == 1;
		int ours = siptls_eku_check(x, SIPTLS_CLIENT) == 0;
		if (ossl != ours)
			fail_msg("%s: OpenSSL says %d, siptls %d", certs[i], ossl, ours);
		X509_free(x);
	}
}

/* siptls_fail_text: which cause wins, its words and its once-per-cause key. The
 * SIP leg's log and --probe both print these. */
static void test_fail_text_table(void **state)
{
	(void)state;
	const unsigned long not_tls =
	    ERR_PACK(ERR_LIB_SSL, 0, SSL_R_WRONG_VERSION_NUMBER);
	const unsigned long eof =
	    ERR_PACK(ERR_LIB_SSL, 0, SSL_R_UNEXPECTED_EOF_WHILE_READING);
	static const char subj[] = "/CN=lync01.sip.test";
	const struct {
		struct siptls_fail f;
		const char *key;
		const char *words;
	} rows[] = {
	    {{.verr = X509_V_ERR_CERT_HAS_EXPIRED,
	      .verr_subject = subj,
	      .alert_rcvd = -1,
	      .alert_sent = 45},
	     "verify-10",
	     "its certificate (/CN=lync01.sip.test) was refused: "},
	    {{.verr = X509_V_ERR_CERT_HAS_EXPIRED,
	      .verr_subject = subj,
	      .alert_rcvd = -1,
	      .alert_sent = 45},
	     "verify-10",
	     "; we sent TLS alert 45 certificate_expired"},
	    {{.verr = X509_V_ERR_INVALID_PURPOSE,
	      .verr_subject = subj,
	      .inbound = true,
	      .alert_rcvd = -1,
	      .alert_sent = -1},
	     "verify-26",
	     "lacks the clientAuth EKU it needs as TLS client"},
	    {{.verr = X509_V_ERR_INVALID_PURPOSE,
	      .verr_subject = subj,
	      .alert_rcvd = -1,
	      .alert_sent = -1},
	     "verify-26",
	     "lacks the serverAuth EKU it needs as TLS server"},
	    {{.alert_rcvd = 43, .alert_sent = -1},
	     "alert-rcvd-43",
	     "TLS alert 43 unsupported_certificate from the peer: the peer refused our "
	     "certificate; it lacks the clientAuth EKU (the bridge was the TLS client"},
	    {{.alert_rcvd = 43, .alert_sent = -1, .inbound = true},
	     "alert-rcvd-43",
	     "it lacks the serverAuth EKU (the bridge was the TLS server)"},
	    {{.alert_rcvd = 48, .alert_sent = -1},
	     "alert-rcvd-48",
	     "TLS alert 48 unknown_ca"},
	    {{.alert_rcvd = -1, .alert_sent = 42},
	     "alert-sent-42",
	     "we sent TLS alert 42"},
	    {{.alert_rcvd = -1, .alert_sent = -1, .ssl_err = not_tls},
	     "not-tls",
	     "the peer does not speak TLS here"},
	    {{.alert_rcvd = -1, .alert_sent = 50, .inbound = true, .ssl_err = eof},
	     "hs-closed",
	     "the peer closed the connection during the TLS handshake"},
	    {{.alert_rcvd = -1, .alert_sent = -1, .timed_out = true},
	     "hs-timeout",
	     "no TLS answer: the port accepted the connection but said nothing"},
	    {{.alert_rcvd = -1, .alert_sent = -1, .ssl_get_error = SSL_ERROR_SYSCALL},
	     "hs-closed",
	     "closed the connection during the TLS handshake (it may have refused our "
	     "certificate without an alert"},
	    {{.alert_rcvd = -1,
	      .alert_sent = -1,
	      .inbound = true,
	      .ssl_get_error = SSL_ERROR_SYSCALL},
	     "hs-closed",
	     "the peer closed the connection during the TLS handshake"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char cause[900], key[64];
		siptls_fail_text(&rows[i].f, cause, sizeof(cause), key, sizeof(key));
		if (strcmp(key, rows[i].key) != 0 || !strstr(cause, rows[i].words))
			fail_msg("row %zu: key '%s' cause '%s'", i, key, cause);
	}
	char out[300];
	siptls_wrong_name_text("kamailio.sip.test, sip.test", "lync01.sip.test", "lync",
	                       out, sizeof(out));
	assert_non_null(strstr(out, "its certificate names kamailio.sip.test, sip.test, "
	                            "not lync01.sip.test, the host of [peer lync]"));
	siptls_fail_text(&rows[0].f, out, 20, (char[8]){0}, 8); /* truncation is safe */
	assert_int_equal(strlen(out), 19);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alert_table),
	    cmocka_unit_test(test_verify_error_table),
	    cmocka_unit_test(test_cert_names),
	    cmocka_unit_test(test_name_match_table),
	    cmocka_unit_test(test_eku_table),
	    cmocka_unit_test(test_openssl_purpose_agrees),
	    cmocka_unit_test(test_fail_text_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

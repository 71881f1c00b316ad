/* The link's own TLS checks: the server certificate against [xmpp] ca alone and
 * [xmpp] name (DNS or IP), and the watchdog that bounds libstrophe's blocking TLS
 * handshake. Certificates are made here with OpenSSL. */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "presbridge/xtls.h"

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	assert_non_null(k);
	return k;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(cert, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for cn signed by (issuer, ikey); self-signed when issuer is NULL.
 * days_from/days_to: validity relative to now. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey,
                       const char *san, const char *eku, bool ca, long days_from,
                       long days_to)
{
	static long serial = 1;
	X509 *c = X509_new();
	assert_non_null(c);
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
	X509_gmtime_adj(X509_getm_notBefore(c), days_from * 86400L);
	X509_gmtime_adj(X509_getm_notAfter(c), days_to * 86400L);
	X509_set_pubkey(c, key);
	X509_NAME *n = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
	                           -1, 0);
	X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n);
	add_ext(c, issuer ? issuer : c, NID_basic_constraints,
	        ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (ca)
		add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
	if (san)
		add_ext(c, issuer ? issuer : c, NID_subject_alt_name, san);
	if (eku)
		add_ext(c, issuer ? issuer : c, NID_ext_key_usage, eku);
	assert_true(X509_sign(c, issuer ? ikey : key, EVP_sha256()) > 0);
	return c;
}

static char *pem_of(X509 *c)
{
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, c);
	char *p;
	long n = BIO_get_mem_data(b, &p);
	char *s = strndup(p, (size_t)n);
	BIO_free(b);
	return s;
}

static void write_pem(const char *path, X509 *c)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	PEM_write_X509(f, c);
	fclose(f);
}

static void test_check_peer(void **state)
{
	(void)state;
	EVP_PKEY *cak = new_key(), *rk = new_key(), *lk = new_key();
	X509 *ca = make_cert(cak, "test CA", NULL, NULL, NULL, NULL, true, -1, 3650);
	X509 *rogue = make_cert(rk, "rogue CA", NULL, NULL, NULL, NULL, true, -1, 3650);
	X509 *good = make_cert(lk, "xmpp.test", ca, cak, "DNS:xmpp.test,IP:127.0.0.1",
	                       "serverAuth", false, -1, 365);
	X509 *byrogue = make_cert(lk, "xmpp.test", rogue, rk, "DNS:xmpp.test",
	                          "serverAuth", false, -1, 365);
	X509 *expired = make_cert(lk, "xmpp.test", ca, cak, "DNS:xmpp.test", "serverAuth",
	                          false, -30, -1);
	X509 *client = make_cert(lk, "xmpp.test", ca, cak, "DNS:xmpp.test", "clientAuth",
	                         false, -1, 365);
	X509 *wild = make_cert(lk, "*.sip.test", ca, cak, "DNS:*.sip.test", "serverAuth",
	                       false, -1, 365);

	char cafile[] = "/tmp/test_xlink_tls.XXXXXX";
	int fd = mkstemp(cafile);
	assert_true(fd >= 0);
	close(fd);
	write_pem(cafile, ca);

	static const struct {
		int cert; /* index below */
		const char *name;
		int err;
		const char *why;
	} rows[] = {
	    {0, "xmpp.test", 0, ""},
	    {0, "XMPP.test", 0, ""},
	    {0, "127.0.0.1", 0, ""},
	    {0, "other.test", -EACCES, "does not carry the expected name for other.test"},
	    {0, "127.0.0.2", -EACCES, "does not carry the expected address"},
	    {1, "xmpp.test", -EACCES, "signed by an unknown CA"},
	    {2, "xmpp.test", -EACCES, "expired"},
	    {3, "xmpp.test", -EACCES, "not for TLS servers"},
	    {4, "a.sip.test", 0, ""}, /* a full-label wildcard matches one label */
	    {4, "a.b.sip.test", -EACCES, "expected name"},
	};
	X509 *certs[] = {good, byrogue, expired, client, wild};
	char why[400];
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *pem = pem_of(certs[rows[i].cert]);
		int err = xtls_check_peer(pem, cafile, rows[i].name, why, sizeof(why));
		if (err != rows[i].err || !strstr(why, rows[i].why))
			fail_msg("row %zu: %d '%s'", i, err, why);
		free(pem);
	}
	char *pem = pem_of(good);
	assert_int_equal(
	    xtls_check_peer(pem, "/nonexistent/ca.crt", "xmpp.test", why, sizeof(why)),
	    -ENOENT);
	assert_int_equal(
	    xtls_check_peer("not a certificate", cafile, "xmpp.test", why, sizeof(why)),
	    -EINVAL);
	assert_int_equal(xtls_check_peer(NULL, cafile, "xmpp.test", why, sizeof(why)),
	                 -EINVAL);
	/* the rogue CA trusted instead: the good certificate is refused */
	write_pem(cafile, rogue);
	assert_int_equal(xtls_check_peer(pem, cafile, "xmpp.test", why, sizeof(why)),
	                 -EACCES);
	free(pem);
	unlink(cafile);

	X509 *all[] = {ca, rogue, good, byrogue, expired, client, wild};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		X509_free(all[i]);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(lk);
}

/* A read that would wait for ever ends when the watchdog fires; disarmed in time,
 * it does nothing. */
static void test_watchdog(void **state)
{
	(void)state;
	int sv[2];
	char c;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(xtls_watchdog_init(), 0);

	xtls_watchdog_arm(sv[0], 1000);
	assert_false(xtls_watchdog_disarm());
	struct pollfd p = {.fd = sv[0], .events = POLLIN};
	assert_int_equal(poll(&p, 1, 1200), 0); /* nothing happened to the socket */

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	xtls_watchdog_arm(sv[0], 200);
	ssize_t r;
	do
		r = read(sv[0], &c, 1); /* blocks until the socket is shut down */
	while (r < 0 && errno == EINTR);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(r, 0);
	assert_true(xtls_watchdog_disarm());
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 150 && ms < 2000);

	xtls_watchdog_fini();
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_peer),
	    cmocka_unit_test(test_watchdog),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The pure parts of the component link: handshake digest, stream id, trace
 * masking, back-off schedule, log policy and the plain words for failures. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "presbridge/xproto.h"

/* Expected digests computed independently: printf '%s%s' ID SECRET | sha1sum. */
static void test_digest(void **state)
{
	(void)state;
	static const struct {
		const char *id, *secret, *hex;
	} rows[] = {
	    /* an id and secret ejabberd 23.01 accepted in a real handshake */
	    {"17676126446590417023", "s3cret",
	     "f69cffb7e071b432de62ed4c635b4a7bc08ef193"},
	    {"3BF96D75", "sunshine", "1fde9c4664f12ed6859ad048d7931d5cbd7845ef"},
	    {"", "", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
	    {"abc", "", "a9993e364706816aba3e25717850c26c9cd0d89d"},
	    {"", "secret", "e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4"},
	};
	char out[XPROTO_DIGEST_LEN + 1];
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(out, 'x', sizeof(out));
		assert_int_equal(xproto_handshake_digest(rows[i].id, rows[i].secret, out),
		                 0);
		assert_string_equal(out, rows[i].hex);
	}
	assert_int_equal(xproto_handshake_digest(NULL, "s", out), -EINVAL);
	assert_int_equal(xproto_handshake_digest("i", NULL, out), -EINVAL);
}

static void test_stream_id(void **state)
{
	(void)state;
	static const struct {
		const char *msg;
		int err;
		const char *id;
	} rows[] = {
	    /* what libstrophe 0.12.2 logs for ejabberd 23.01's header */
	    {"RECV: <stream:stream id=\"179580797014833768\" lang=\"en\" "
	     "from=\"sip.test\">",
	     0, "179580797014833768"},
	    {"RECV: <stream:stream from=\"sip.test\" id=\"abc-1\">", 0, "abc-1"},
	    {"RECV: <stream:stream id='single'>", 0, "single"},
	    /* an attribute ending in "id" is not the id */
	    {"RECV: <stream:stream xid=\"no\" id=\"yes\">", 0, "yes"},
	    {"RECV: <stream:stream xid=\"no\">", -EBADMSG, NULL},
	    {"RECV: <stream:stream from=\"sip.test\">", -EBADMSG, NULL},
	    {"RECV: <stream:stream id=\"\">", -EBADMSG, NULL},
	    {"RECV: <stream:stream id=\"unterminated>", -EBADMSG, NULL},
	    {"RECV: <stream:stream id=unquoted>", -EBADMSG, NULL},
	    {"RECV: <iq id=\"x\"/>", -ENOENT, NULL},
	    {"SENT: <stream:stream id=\"x\">", -ENOENT, NULL},
	    {"", -ENOENT, NULL},
	};
	char buf[XPROTO_STREAM_ID_MAX + 1];
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int err = xproto_stream_id(rows[i].msg, buf, sizeof(buf));
		assert_int_equal(err, rows[i].err);
		if (!err)
			assert_string_equal(buf, rows[i].id);
	}
	assert_int_equal(xproto_stream_id(NULL, buf, sizeof(buf)), -ENOENT);
	/* too long for the buffer, and over the limit whatever the buffer */
	char small[4];
	assert_int_equal(
	    xproto_stream_id("RECV: <stream:stream id=\"12345\">", small, sizeof(small)),
	    -E2BIG);
	char msg[700], big[600];
	memset(big, '7', XPROTO_STREAM_ID_MAX + 1);
	big[XPROTO_STREAM_ID_MAX + 1] = '\0';
	snprintf(msg, sizeof(msg), "RECV: <stream:stream id=\"%s\">", big);
	assert_int_equal(xproto_stream_id(msg, big, sizeof(big)), -E2BIG);
}

static void test_mask(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} rows[] = {
	    {"<handshake>f69cffb7e071b432de62ed4c635b4a7bc08ef193</handshake>",
	     "<handshake>****</handshake>"},
	    {"<handshake></handshake>", "<handshake>****</handshake>"},
	    /* the server's empty answer has nothing to hide */
	    {"<handshake xmlns=\"jabber:component:accept\"/>",
	     "<handshake xmlns=\"jabber:component:accept\"/>"},
	    {"<iq id=\"1\"/>", "<iq id=\"1\"/>"},
	    {"a<handshake>1</handshake>b<handshake>2</handshake>c",
	     "a<handshake>****</handshake>b<handshake>****</handshake>c"},
	    /* a cut-off element: everything after the tag may be digest */
	    {"<handshake>f69cffb7e071", "<handshake>****"},
	    {"", ""},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *m = xproto_mask(rows[i].in, strlen(rows[i].in));
		assert_non_null(m);
		assert_string_equal(m, rows[i].out);
		free(m);
	}
	/* only len bytes are read */
	char *m = xproto_mask("<iq/><handshake>secret</handshake>", 5);
	assert_string_equal(m, "<iq/>");
	free(m);
}

static void test_backoff(void **state)
{
	(void)state;
	/* without jitter: 1 s, doubling, capped at 30 s */
	static const uint32_t want[] = {1000,  1000,  2000,  4000, 8000,
	                                16000, 30000, 30000, 30000};
	for (unsigned a = 0; a < sizeof(want) / sizeof(want[0]); a++)
		assert_int_equal(xproto_backoff_ms(a, 0), want[a]);
	assert_int_equal(xproto_backoff_ms(1000000, 0), 30000);
	/* the jitter takes off at most a tenth and never exceeds the cap */
	uint32_t rnd = 12345;
	for (unsigned a = 1; a < 12; a++) {
		uint32_t base = a < 6 ? 1000u << (a - 1) : 30000u;
		for (int i = 0; i < 1000; i++) {
			rnd = rnd * 1103515245u + 12345u;
			uint32_t d = xproto_backoff_ms(a, rnd);
			assert_true(d <= base && d >= base - base / 10);
		}
	}
	/* different random values spread the retries */
	assert_int_not_equal(xproto_backoff_ms(5, 3), xproto_backoff_ms(5, 700));
}

static void test_log_policy(void **state)
{
	(void)state;
	static const struct {
		unsigned attempt;
		bool changed, log;
	} rows[] = {
	    {1, false, true},  {2, false, false},  {3, false, false}, {9, false, false},
	    {10, false, true}, {11, false, false}, {20, false, true}, {2, true, true},
	    {7, true, true},   {0, false, true},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(xproto_log_failure(rows[i].attempt, rows[i].changed),
		                 rows[i].log);
}

static void test_log_errno(void **state)
{
	(void)state;
	static const struct {
		const char *msg;
		bool found;
		int err;
	} rows[] = {
	    {"connection failed, error 111", true, ECONNREFUSED},
	    {"error=SSL_ERROR_SYSCALL(5) errno=104 lasterror=0", true, ECONNRESET},
	    {"Socket closed by remote host.", true, 0},
	    {"error=SSL_ERROR_ZERO_RETURN(6) errno=0 lasterror=0", false, 0},
	    {"error=SSL_ERROR_WANT_READ(2) errno=11 lasterror=0", false, 0},
	    {"connection failed, error x", false, 0},
	    {"error:0A000086:SSL routines::certificate verify failed", false, 0},
	    {"RECV: <iq/>", false, 0},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int e = -1;
		assert_int_equal(xproto_log_errno(rows[i].msg, &e), rows[i].found);
		if (rows[i].found)
			assert_int_equal(e, rows[i].err);
	}
}

static void test_cert_words(void **state)
{
	(void)state;
	static const struct {
		int code;
		const char *words, *fix;
	} rows[] = {
	    {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, "signed by an unknown CA",
	     "[xmpp] ca"},
	    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "signed by an unknown CA",
	     "[xmpp] ca"},
	    {X509_V_ERR_CERT_HAS_EXPIRED, "expired", "renew"},
	    {X509_V_ERR_HOSTNAME_MISMATCH, "expected name", "[xmpp] name"},
	    {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "self-signed", "[xmpp] ca"},
	    {X509_V_ERR_CERT_NOT_YET_VALID, "not valid yet", "clocks"},
	    {X509_V_ERR_INVALID_PURPOSE, "not for TLS servers", "serverAuth"},
	    {X509_V_ERR_OUT_OF_MEM, "certificate refused", "[xmpp] ca"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct xproto_certerr *ce = xproto_cert_error(rows[i].code);
		assert_non_null(strstr(ce->words, rows[i].words));
		assert_non_null(strstr(ce->fix, rows[i].fix));
		/* libstrophe passes only OpenSSL's text: it must find the same row */
		const struct xproto_certerr *ct =
		    xproto_cert_error_text(X509_verify_cert_error_string(rows[i].code));
		assert_ptr_equal(ct, ce);
	}
	assert_int_equal(xproto_cert_error_text("no such text")->code, 0);
	assert_int_equal(xproto_cert_error_text(NULL)->code, 0);
}

static void test_stream_words(void **state)
{
	(void)state;
	static const struct {
		const char *cond, *words, *fix;
	} rows[] = {
	    {"not-authorized", "does not accept our secret", "ejabberd_service password"},
	    /* Prosody's names for the same remedies (mod_component, 0.12) */
	    {"not-authorized", "does not accept our secret",
	     "Prosody, against the component_secret"},
	    {"host-unknown", "does not serve", "hosts"},
	    {"host-unknown", "does not serve", "give Prosody a Component section"},
	    {"conflict", "already connected", "stop the other bridge"},
	    {"conflict", "already connected", "--probe"},
	    {"system-shutdown", "shutting down", ""},
	    {"something-new", "with an error", ""},
	    {NULL, "with an error", ""},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct xproto_streamerr *se = xproto_stream_error(rows[i].cond);
		assert_non_null(strstr(se->words, rows[i].words));
		assert_non_null(strstr(se->fix, rows[i].fix));
		/* every row names the domain exactly once, for snprintf */
		const char *p = strstr(se->words, "%s");
		assert_non_null(p);
		assert_null(strchr(p + 2, '%'));
	}
}

/* OpenSSL errors that mean "no TLS on that port" get words with the fix; others
 * none (the caller prints OpenSSL's own text). */
static void test_tls_words(void **state)
{
	(void)state;
	static const struct {
		const char *openssl;
		const char *words; /* NULL: no row */
	} rows[] = {
	    {"error:0A00010B:SSL routines::wrong version number", "does not speak TLS"},
	    /* Prosody: plain component port; direct TLS via mod_net_multiplex */
	    {"error:0A00010B:SSL routines::wrong version number",
	     "Prosody: component_ports are plain TCP"},
	    {"error:0A00010B:SSL routines::wrong version number", "ssl_ports"},
	    {"error:0A000126:SSL routines::unexpected eof while reading", "ssl_ports"},
	    {"error:0A0000C6:SSL routines::packet length too long", "does not speak TLS"},
	    {"error:0A000126:SSL routines::unexpected eof while reading",
	     "closed the connection during the TLS handshake"},
	    {"error:0A000086:SSL routines::certificate verify failed", NULL},
	    {"", NULL},
	    {NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *w = xproto_tls_words(rows[i].openssl);
		if (!rows[i].words)
			assert_null(w);
		else
			assert_non_null(strstr(w, rows[i].words));
	}
}

/* xorshift32 (Marsaglia, "Xorshift RNGs", shifts 13, 17, 5): from 1 the first
 * value is 270369; a zero state would stay zero for ever, so it is replaced. */
static void test_jitter(void **state)
{
	(void)state;
	uint32_t st = 1;
	assert_int_equal(xproto_jitter(&st), 270369u);
	assert_int_equal(st, 270369u);
	uint32_t z = 0;
	uint32_t a = xproto_jitter(&z), b = xproto_jitter(&z);
	assert_int_not_equal(a, 0);
	assert_int_not_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jitter),       cmocka_unit_test(test_digest),
	    cmocka_unit_test(test_stream_id),    cmocka_unit_test(test_mask),
	    cmocka_unit_test(test_backoff),      cmocka_unit_test(test_log_policy),
	    cmocka_unit_test(test_log_errno),    cmocka_unit_test(test_cert_words),
	    cmocka_unit_test(test_stream_words), cmocka_unit_test(test_tls_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

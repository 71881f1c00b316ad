/* The pure parts of server-to-server streams: dialback keys (XEP-0185), stream
 * ids and secrets, the RFC 6125 name check of peer certificates (made here with
 * OpenSSL), stream and dialback error words, domainpart syntax. */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/xs2s_proto.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- dialback keys ---- */

static void test_dialback_key_vectors(void **state)
{
	(void)state;
	/* Every row is a worked example of the standards themselves. */
	static const struct {
		const char *where, *secret, *receiving, *originating, *id, *key;
	} rows[] = {
	    {"XEP-0185 section 3 (steps 3-4 and 8-9)", "s3cr3tf0rd14lb4ck",
	     "xmpp.example.com", "example.org", "D60000229F",
	     "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"},
	    {"XEP-0220 section 2.1.1 (Example 1)", "s3cr3tf0rd14lb4ck",
	     "montague.example", "capulet.example", "D60000229F",
	     "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3"},
	    {"XEP-0220 section 2.2.2 (Example 13)", "d14lb4ck43v3r", "capulet.example",
	     "montague.example", "417GAF25",
	     "225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d"},
	};
	char out[XS2S_KEY_LEN + 1];
	for (size_t i = 0; i < N(rows); i++) {
		memset(out, 'x', sizeof(out));
		assert_int_equal(xs2s_dialback_key(rows[i].secret, rows[i].receiving,
		                                   rows[i].originating, rows[i].id, out),
		                 0);
		if (strcmp(out, rows[i].key) != 0)
			fail_msg("%s: got %s", rows[i].where, out);
		assert_true(xs2s_key_equal(out, rows[i].key));
	}
}

/* Each of the four inputs of XEP-0185 section 2 changes the key, and so does
 * the order of the domains; the spaces of note 5 keep "example.in" +
 * "form.example.org" apart from "example.info" + "rm.example.org". */
static void test_dialback_key_inputs(void **state)
{
	(void)state;
	static const struct {
		const char *secret, *receiving, *originating, *id;
	} rows[] = {
	    {"s3cr3tf0rd14lb4ck", "xmpp.example.com", "example.org", "D60000229F"},
	    {"s3cr3tf0rd14lb4cK", "xmpp.example.com", "example.org", "D60000229F"},
	    {"s3cr3tf0rd14lb4ck", "xmpp.example.net", "example.org", "D60000229F"},
	    {"s3cr3tf0rd14lb4ck", "xmpp.example.com", "example.net", "D60000229F"},
	    {"s3cr3tf0rd14lb4ck", "xmpp.example.com", "example.org", "D60000229E"},
	    {"s3cr3tf0rd14lb4ck", "example.org", "xmpp.example.com", "D60000229F"},
	    {"s3cr3tf0rd14lb4ck", "example.in", "form.example.org", "D60000229F"},
	    {"s3cr3tf0rd14lb4ck", "example.info", "rm.example.org", "D60000229F"},
	};
	char keys[N(rows)][XS2S_KEY_LEN + 1];
	for (size_t i = 0; i < N(rows); i++) {
		assert_int_equal(xs2s_dialback_key(rows[i].secret, rows[i].receiving,
		                                   rows[i].originating, rows[i].id,
		                                   keys[i]),
		                 0);
		/* XEP-0185 section 2 note 4: hexadecimal; ours lower case */
		assert_int_equal(strlen(keys[i]), XS2S_KEY_LEN);
		assert_int_equal(strspn(keys[i], "0123456789abcdef"), XS2S_KEY_LEN);
		for (size_t j = 0; j < i; j++)
			assert_false(xs2s_key_equal(keys[i], keys[j]));
	}
	/* NULL or empty inputs */
	const char *ok[4] = {"s", "r.example", "o.example", "id"};
	char out[XS2S_KEY_LEN + 1];
	for (int a = 0; a < 4; a++) {
		for (int empty = 0; empty < 2; empty++) {
			const char *v[4] = {ok[0], ok[1], ok[2], ok[3]};
			v[a] = empty ? "" : NULL;
			assert_int_equal(xs2s_dialback_key(v[0], v[1], v[2], v[3], out),
			                 -EINVAL);
		}
	}
	assert_int_equal(xs2s_dialback_key(ok[0], ok[1], ok[2], ok[3], NULL), -EINVAL);
}

static void test_key_equal(void **state)
{
	(void)state;
	static const char k[] =
	    "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643";
	static const struct {
		const char *a, *b;
		bool eq;
	} rows[] = {
	    {k, k, true},
	    {k, "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075644",
	     false},
	    {k, "47c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643",
	     false},
	    {k, "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b8932307564", false},
	    {k, "37C69B1CF07A3F67C04A5EF5902FA5114F2C76FE4A2686482BA5B89323075643",
	     false},
	    {"37c6", k, false},
	    {"", "", false},
	    {k, "", false},
	    {NULL, k, false},
	    {k, NULL, false},
	    {NULL, NULL, false},
	};
	for (size_t i = 0; i < N(rows); i++)
		assert_int_equal(xs2s_key_equal(rows[i].a, rows[i].b), rows[i].eq);
}

/* ---- stream ids and secrets ---- */

static void test_stream_id(void **state)
{
	(void)state;
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	char a[XS2S_STREAM_ID_LEN + 1], b[XS2S_STREAM_ID_LEN + 1];
	unsigned seen[256] = {0};

	assert_int_equal(xs2s_stream_id(a), 0);
	assert_int_equal(xs2s_stream_id(b), 0);
	/* RFC 6120 section 4.7.3: unpredictable and non-repeating */
	assert_string_not_equal(a, b);
	enum { IDS = 20000 };
	for (int n = 0; n < IDS; n++) {
		memset(a, 0x7f, sizeof(a));
		assert_int_equal(xs2s_stream_id(a), 0);
		assert_int_equal(strlen(a), XS2S_STREAM_ID_LEN);
		assert_int_equal(strspn(a, alpha), XS2S_STREAM_ID_LEN);
		for (size_t i = 0; i < XS2S_STREAM_ID_LEN; i++)
			seen[(unsigned char)a[i]]++;
	}
	/* Without bias each of the 62 characters comes 640000 / 62 = 10323 times,
	 * give or take 101 (one standard deviation); a byte taken modulo 62 gives
	 * the first eight about 12800. A bound of 7% (7 deviations) catches that
	 * and practically never fails by chance. */
	const double want = (double)IDS * XS2S_STREAM_ID_LEN / 62;
	for (const char *p = alpha; *p; p++) {
		double got = seen[(unsigned char)*p];
		if (got < want * 0.93 || got > want * 1.07)
			fail_msg("'%c' drawn %.0f times, expected about %.0f", *p, got,
			         want);
	}
	assert_int_equal(xs2s_stream_id(NULL), -EINVAL);
}

static void test_random_secret(void **state)
{
	(void)state;
	char a[XS2S_SECRET_LEN + 1], b[XS2S_SECRET_LEN + 1];
	memset(a, 'x', sizeof(a));
	assert_int_equal(xs2s_random_secret(a), 0);
	assert_int_equal(xs2s_random_secret(b), 0);
	assert_int_equal(strlen(a), 64);
	assert_int_equal(strspn(a, "0123456789abcdef"), 64);
	assert_string_not_equal(a, b);
	/* usable as a dialback secret */
	char k[XS2S_KEY_LEN + 1];
	assert_int_equal(xs2s_dialback_key(a, "r.example", "o.example", "id", k), 0);
	assert_int_equal(xs2s_random_secret(NULL), -EINVAL);
}

/* ---- certificates ---- */

static EVP_PKEY *key;

static int setup_key(void **state)
{
	(void)state;
	key = EVP_EC_gen("P-256");
	return key ? 0 : -1;
}

static int teardown_key(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	return 0;
}

/* OpenSSL's configuration syntax for the SAN kinds of RFC 6120 section
 * 13.7.1.2.2: SRVName (id-on-dnsSRV, RFC 4985) is an IA5String, XmppAddr
 * (id-on-xmppAddr, section 13.7.1.4) a UTF8String. */
#define SRV(s)  "otherName:1.3.6.1.5.5.7.8.7;IA5STRING:" s
#define XMPP(s) "otherName:1.3.6.1.5.5.7.8.5;UTF8:" s

/* A self-signed certificate with subject CN cn (NULL: none) and the SAN entries
 * san in OpenSSL's syntax (NULL: no extension). Caller-owns (X509_free). */
static X509 *make_cert(const char *cn, const char *san)
{
	static long serial = 1;
	X509 *c = X509_new();
	assert_non_null(c);
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
	X509_gmtime_adj(X509_getm_notBefore(c), -86400L);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400L);
	X509_set_pubkey(c, key);
	X509_NAME *n = X509_get_subject_name(c);
	if (cn)
		assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
		                                            (const unsigned char *)cn, -1,
		                                            -1, 0),
		                 1);
	X509_set_issuer_name(c, n);
	if (san) {
		X509V3_CTX v3;
		X509V3_set_ctx(&v3, c, c, NULL, NULL, 0);
		X509_EXTENSION *ext =
		    X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		if (!ext)
			fail_msg("bad SAN in test: %s", san);
		assert_int_equal(X509_add_ext(c, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(c, key, EVP_sha256()) > 0);
	return c;
}

/* RFC 6125 section 6 as RFC 6120 section 13.7.2.1 applies it to a peer server. */
static void test_cert_names_domain(void **state)
{
	(void)state;
	static const struct {
		const char *san, *cn, *domain;
		enum xs2s_id_kind kind; /* XS2S_ID_NONE: no match */
	} rows[] = {
	    /* DNS-ID, 6.4.1: case-insensitive; RFC 7622 3.2: trailing dot stripped */
	    {"DNS:example.com", NULL, "example.com", XS2S_ID_DNS},
	    {"DNS:Example.COM", NULL, "example.com", XS2S_ID_DNS},
	    {"DNS:example.com", NULL, "EXAMPLE.com", XS2S_ID_DNS},
	    {"DNS:example.com.", NULL, "example.com", XS2S_ID_DNS},
	    {"DNS:example.com", NULL, "example.com.", XS2S_ID_DNS},
	    {"DNS:example.org", NULL, "example.com", XS2S_ID_NONE},
	    {"DNS:example.com", NULL, "badexample.com", XS2S_ID_NONE},
	    {"DNS:example.com", NULL, "a.example.com", XS2S_ID_NONE},
	    {"DNS:a.example.com", NULL, "example.com", XS2S_ID_NONE},
	    {"DNS:example.com", NULL, "example.co", XS2S_ID_NONE},
	    /* wildcards, 6.4.3 rules 1-2 and RFC 6120 13.7.1.2.1: the whole
	     * left-most label, standing for exactly one label */
	    {"DNS:*.example.com", NULL, "a.example.com", XS2S_ID_DNS_WILDCARD},
	    {"DNS:*.Example.Com", NULL, "A.EXAMPLE.com.", XS2S_ID_DNS_WILDCARD},
	    {"DNS:*.example.com", NULL, "example.com", XS2S_ID_NONE},
	    {"DNS:*.example.com", NULL, "a.b.example.com", XS2S_ID_NONE},
	    {"DNS:*.example.com", NULL, "aexample.com", XS2S_ID_NONE},
	    {"DNS:*.example.com", NULL, "a.example.com.evil.example", XS2S_ID_NONE},
	    {"DNS:example.com", NULL, "example.com.evil.example", XS2S_ID_NONE},
	    {"DNS:a.*.example.com", NULL, "a.b.example.com", XS2S_ID_NONE},
	    {"DNS:*.*.example.com", NULL, "a.b.example.com", XS2S_ID_NONE},
	    /* 6.4.3 rule 3 is a MAY; RFC 6120 13.7.1.2.1 allows only the whole label */
	    {"DNS:a*.example.com", NULL, "ab.example.com", XS2S_ID_NONE},
	    {"DNS:*b.example.com", NULL, "ab.example.com", XS2S_ID_NONE},
	    /* 7.2: a wildcard directly over a top-level domain vouches for nothing */
	    {"DNS:*.com", NULL, "example.com", XS2S_ID_NONE},
	    {"DNS:*", NULL, "example", XS2S_ID_NONE},
	    /* an exact name beats a wildcard for the same domain */
	    {"DNS:*.example.com,DNS:a.example.com", NULL, "a.example.com", XS2S_ID_DNS},
	    /* SRV-ID, 6.5.1: only the _xmpp-server service, compared case-insensitively
	     */
	    {SRV("_xmpp-server.example.com"), NULL, "example.com", XS2S_ID_SRV},
	    {SRV("_XMPP-Server.Example.com."), NULL, "example.com", XS2S_ID_SRV},
	    {SRV("_xmpp-client.example.com"), NULL, "example.com", XS2S_ID_NONE},
	    {SRV("_xmpp-server.example.com"), NULL, "a.example.com", XS2S_ID_NONE},
	    {SRV("xmpp-server.example.com"), NULL, "example.com", XS2S_ID_NONE},
	    {SRV("_xmpp-server.example.com"), NULL, "_xmpp-server.example.com",
	     XS2S_ID_NONE},
	    /* RFC 4985: an SRVName that is not an IA5String is malformed */
	    {"otherName:1.3.6.1.5.5.7.8.7;UTF8:_xmpp-server.example.com", NULL,
	     "example.com", XS2S_ID_NONE},
	    /* XmppAddr, RFC 6120 13.7.1.4 / 13.7.2.1: a domain, not a user's JID */
	    {XMPP("example.com"), NULL, "example.com", XS2S_ID_XMPPADDR},
	    {XMPP("Example.Com"), NULL, "example.com", XS2S_ID_XMPPADDR},
	    {XMPP("user@example.com"), NULL, "example.com", XS2S_ID_NONE},
	    {XMPP("example.com/res"), NULL, "example.com", XS2S_ID_NONE},
	    {XMPP("*.example.com"), NULL, "a.example.com", XS2S_ID_NONE},
	    {"otherName:1.3.6.1.5.5.7.8.5;IA5STRING:example.com", NULL, "example.com",
	     XS2S_ID_NONE},
	    /* CN-ID, 6.4.4: only without DNS-ID, SRV-ID, URI-ID or XmppAddr */
	    {NULL, "example.com", "example.com", XS2S_ID_CN},
	    {NULL, "EXAMPLE.COM", "example.com.", XS2S_ID_CN},
	    {NULL, "*.example.com", "a.example.com", XS2S_ID_CN},
	    {NULL, "*.example.com", "a.b.example.com", XS2S_ID_NONE},
	    {NULL, "example.org", "example.com", XS2S_ID_NONE},
	    {NULL, "Example Products, Inc.", "example.com", XS2S_ID_NONE},
	    {"DNS:other.example", "example.com", "example.com", XS2S_ID_NONE},
	    {SRV("_xmpp-client.other.example"), "example.com", "example.com",
	     XS2S_ID_NONE},
	    {XMPP("user@other.example"), "example.com", "example.com", XS2S_ID_NONE},
	    {"URI:sip:other.example", "example.com", "example.com", XS2S_ID_NONE},
	    /* an IP address or e-mail SAN is none of those: the CN still counts */
	    {"IP:192.0.2.1", "example.com", "example.com", XS2S_ID_CN},
	    {"email:a@example.com", "example.com", "example.com", XS2S_ID_CN},
	    /* the CN never counts beside a SAN identity, even a matching one */
	    {"DNS:example.com", "other.example", "example.com", XS2S_ID_DNS},
	    /* the domain asked must be a domainpart */
	    {"DNS:*.example.com", NULL, "*.example.com", XS2S_ID_NONE},
	    {"DNS:example.com", NULL, "", XS2S_ID_NONE},
	    {"DNS:example.com", NULL, NULL, XS2S_ID_NONE},
	    {NULL, NULL, "example.com", XS2S_ID_NONE},
	};
	/* The second example certificate of RFC 6120 section 13.7.1.2.2. */
	/* clang-format off */
	static const char rfc6120_example[] =
	    SRV("_xmpp-client.example.net") ","
	    SRV("_xmpp-server.example.net") ","
	    SRV("_xmpp-server.chat.example.net") ","
	    "DNS:example.net,"
	    "DNS:*.example.net,"
	    XMPP("example.net") ","
	    XMPP("chat.example.net");
	/* clang-format on */
	static const struct {
		const char *domain;
		enum xs2s_id_kind kind;
	} ex[] = {
	    {"example.net", XS2S_ID_DNS},
	    {"chat.example.net", XS2S_ID_SRV}, /* the exact SRV-ID before *.example.net */
	    {"muc.example.net", XS2S_ID_DNS_WILDCARD},
	    {"a.chat.example.net", XS2S_ID_NONE},
	    {"example.com", XS2S_ID_NONE},
	};

	for (size_t i = 0; i < N(rows); i++) {
		X509 *c = make_cert(rows[i].cn, rows[i].san);
		enum xs2s_id_kind m = (enum xs2s_id_kind) - 1;
		bool ok = xs2s_cert_names_domain(c, rows[i].domain, &m);
		if (ok != (rows[i].kind != XS2S_ID_NONE) || m != rows[i].kind)
			fail_msg("row %zu (SAN %s, CN %s, domain %s): got %d kind %d", i,
			         rows[i].san ? rows[i].san : "-",
			         rows[i].cn ? rows[i].cn : "-",
			         rows[i].domain ? rows[i].domain : "-", ok, m);
		assert_int_equal(xs2s_cert_names_domain(c, rows[i].domain, NULL), ok);
		X509_free(c);
	}
	X509 *c = make_cert("Example Internet Services", rfc6120_example);
	for (size_t i = 0; i < N(ex); i++) {
		enum xs2s_id_kind m;
		assert_int_equal(xs2s_cert_names_domain(c, ex[i].domain, &m),
		                 ex[i].kind != XS2S_ID_NONE);
		assert_int_equal(m, ex[i].kind);
	}
	X509_free(c);
	enum xs2s_id_kind m = XS2S_ID_DNS;
	assert_false(xs2s_cert_names_domain(NULL, "example.com", &m));
	assert_int_equal(m, XS2S_ID_NONE);
}

/* A certificate whose single SAN entry holds raw bytes, as a forger would write
 * them: a dNSName (xmpp false) or an XmppAddr (xmpp true). */
static X509 *make_raw_san(bool xmpp, const char *data, int len)
{
	X509 *c = make_cert("example.com", NULL);
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *g = GENERAL_NAME_new();
	assert_non_null(gens);
	assert_non_null(g);
	if (xmpp) {
		ASN1_TYPE *t = ASN1_TYPE_new();
		ASN1_UTF8STRING *s = ASN1_UTF8STRING_new();
		assert_int_equal(ASN1_STRING_set(s, data, len), 1);
		ASN1_TYPE_set(t, V_ASN1_UTF8STRING, s);
		assert_int_equal(
		    GENERAL_NAME_set0_othername(g, OBJ_nid2obj(NID_XmppAddr), t), 1);
	} else {
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		assert_int_equal(ASN1_STRING_set(s, data, len), 1);
		GENERAL_NAME_set0_value(g, GEN_DNS, s);
	}
	sk_GENERAL_NAME_push(gens, g);
	assert_int_equal(
	    X509_add1_ext_i2d(c, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), 1);
	GENERAL_NAMES_free(gens);
	return c;
}

/* A NUL inside a name ("example.com\0.evil.example") is a forgery aimed at C
 * strings: such a name matches nothing, not even the CN fallback, and an
 * XmppAddr that is no UTF-8 matches nothing either. */
static void test_cert_hostile_names(void **state)
{
	(void)state;
	static const char nul[] = "example.com\0.evil.example";
	static const char badutf8[] = "example.com\xff";
	static const struct {
		bool xmpp;
		const char *data;
		int len;
		const char *ids; /* xs2s_cert_ids_str */
	} rows[] = {
	    {false, nul, (int)sizeof(nul) - 1, "(none)"},
	    {true, nul, (int)sizeof(nul) - 1, "(none)"},
	    {true, badutf8, (int)sizeof(badutf8) - 1, "(none)"},
	    {false, "example.com\n", 12, "DNS:example.com?"},
	};
	for (size_t i = 0; i < N(rows); i++) {
		X509 *c = make_raw_san(rows[i].xmpp, rows[i].data, rows[i].len);
		enum xs2s_id_kind m;
		assert_false(xs2s_cert_names_domain(c, "example.com", &m));
		assert_int_equal(m, XS2S_ID_NONE);
		assert_false(xs2s_cert_has_dns_san(c, "example.com"));
		char buf[128];
		xs2s_cert_ids_str(c, buf, sizeof(buf));
		assert_string_equal(buf, rows[i].ids);
		X509_free(c);
	}
}

static void test_cert_ids_str(void **state)
{
	(void)state;
	static const struct {
		const char *san, *cn;
		size_t len;
		const char *out;
	} rows[] = {
	    {"DNS:a.example," SRV("_xmpp-server.b.example") "," XMPP("c.example"),
	     "ignored", 128,
	     "DNS:a.example, SRV:_xmpp-server.b.example, XmppAddr:c.example"},
	    {"URI:xmpp:d.example,IP:192.0.2.1", "ignored", 128, "URI:xmpp:d.example"},
	    {NULL, "d.example", 128, "CN:d.example"},
	    {"IP:192.0.2.1", "d.example", 128, "CN:d.example"},
	    {NULL, NULL, 128, "(none)"},
	    {"IP:192.0.2.1", NULL, 128, "(none)"},
	    {"DNS:a.example,DNS:b.example,DNS:c.example", NULL, 20,
	     "DNS:a.example, D..."},
	};
	for (size_t i = 0; i < N(rows); i++) {
		X509 *c = make_cert(rows[i].cn, rows[i].san);
		char buf[128];
		memset(buf, 'x', sizeof(buf));
		xs2s_cert_ids_str(c, buf, rows[i].len);
		assert_string_equal(buf, rows[i].out);
		assert_true(strlen(buf) < rows[i].len);
		X509_free(c);
	}
	char buf[16] = "x";
	xs2s_cert_ids_str(NULL, buf, sizeof(buf));
	assert_string_equal(buf, "(none)");
}

/* Cisco IM&P: a dNSName for every federated domain; nothing else will do. */
static void test_cert_has_dns_san(void **state)
{
	(void)state;
	static const struct {
		const char *san, *cn, *domain;
		bool has;
	} rows[] = {
	    {"DNS:example.com", NULL, "example.com", true},
	    {"DNS:other.example,DNS:EXAMPLE.com.", NULL, "example.com", true},
	    {"DNS:example.com", NULL, "Example.Com.", true},
	    {"DNS:*.example.com", NULL, "a.example.com", false},
	    {"DNS:example.com", NULL, "a.example.com", false},
	    {NULL, "example.com", "example.com", false},
	    {"IP:192.0.2.1", "example.com", "example.com", false},
	    {SRV("_xmpp-server.example.com"), NULL, "example.com", false},
	    {XMPP("example.com"), NULL, "example.com", false},
	    {"DNS:example.com", NULL, "", false},
	    {"DNS:example.com", NULL, NULL, false},
	};
	for (size_t i = 0; i < N(rows); i++) {
		X509 *c = make_cert(rows[i].cn, rows[i].san);
		if (xs2s_cert_has_dns_san(c, rows[i].domain) != rows[i].has)
			fail_msg("row %zu: %s for %s", i, rows[i].san ? rows[i].san : "-",
			         rows[i].domain ? rows[i].domain : "-");
		X509_free(c);
	}
	assert_false(xs2s_cert_has_dns_san(NULL, "example.com"));
}

/* ---- errors ---- */

static void test_stream_errors(void **state)
{
	(void)state;
	/* RFC 6120 sections 4.9.3.1 to 4.9.3.25, in order */
	static const char *const rfc[] = {
	    "bad-format",
	    "bad-namespace-prefix",
	    "conflict",
	    "connection-timeout",
	    "host-gone",
	    "host-unknown",
	    "improper-addressing",
	    "internal-server-error",
	    "invalid-from",
	    "invalid-namespace",
	    "invalid-xml",
	    "not-authorized",
	    "not-well-formed",
	    "policy-violation",
	    "remote-connection-failed",
	    "reset",
	    "resource-constraint",
	    "restricted-xml",
	    "see-other-host",
	    "system-shutdown",
	    "undefined-condition",
	    "unsupported-encoding",
	    "unsupported-feature",
	    "unsupported-stanza-type",
	    "unsupported-version",
	};
	assert_int_equal(N(rfc), 25);
	const struct xs2s_streamerr *rows[N(rfc)];
	for (size_t i = 0; i < N(rfc); i++) {
		const struct xs2s_streamerr *se = xs2s_stream_error(rfc[i]);
		assert_true(xs2s_stream_error_known(rfc[i]));
		assert_non_null(se->cond);
		assert_string_equal(se->cond, rfc[i]);
		assert_true(strlen(se->words) > 10);
		assert_non_null(se->fix);
		rows[i] = se;
		for (size_t j = 0; j < i; j++)
			assert_ptr_not_equal(rows[j], se);
	}
	/* what a user reads for the causes on our side */
	static const struct {
		const char *cond, *words, *fix;
	} words[] = {
	    {"host-unknown", "does not serve", "SRV"},
	    {"invalid-namespace", "jabber:server", "5269"},
	    {"not-authorized", "authentication", "[s2s] cert"},
	    {"policy-violation", "policy", "[s2s] tls"},
	    {"remote-connection-failed", "authoritative", "[s2s] listen"},
	    {"unsupported-feature", "requires", "[s2s] tls"},
	    {"not-well-formed", "not well-formed", "defect"},
	    {"system-shutdown", "shutting down", ""},
	};
	for (size_t i = 0; i < N(words); i++) {
		const struct xs2s_streamerr *se = xs2s_stream_error(words[i].cond);
		assert_non_null(strstr(se->words, words[i].words));
		assert_non_null(strstr(se->fix, words[i].fix));
	}
	/* XML names are case-sensitive; RFC 3920's old name is not RFC 6120's */
	static const char *const unknown[] = {"xml-not-well-formed", "Host-Unknown",
	                                      "stanza-too-big", "", NULL};
	const struct xs2s_streamerr *other = xs2s_stream_error(NULL);
	assert_null(other->cond);
	assert_non_null(strstr(other->words, "does not define"));
	for (size_t i = 0; i < N(unknown); i++) {
		assert_false(xs2s_stream_error_known(unknown[i]));
		assert_ptr_equal(xs2s_stream_error(unknown[i]), other);
	}
}

/* XEP-0220 section 2.5 (its table), RFC 6120 section 8.3.3.6. */
static void test_dialback_errors(void **state)
{
	(void)state;
	static const struct {
		const char *cond, *words;
	} rows[] = {
	    {"item-not-found", "does not serve"},
	    {"remote-connection-failed", "could not connect"},
	    {"remote-server-not-found", "could not find"},
	    {"remote-server-timeout", "lost its connection"},
	    {"policy-violation", "requires TLS"},
	    {"not-authorized", "certificate"},
	    {"forbidden", "invalid"},
	    {"not-acceptable", "identity"},
	    {"resource-constraint", "new connection"},
	    {"internal-server-error", "failed internally"},
	    {"bad-request", "refused dialback"},
	    {"", "refused dialback"},
	    {NULL, "refused dialback"},
	};
	for (size_t i = 0; i < N(rows); i++) {
		const char *w = xs2s_dialback_error_words(rows[i].cond);
		assert_non_null(w);
		if (!strstr(w, rows[i].words))
			fail_msg("%s: %s", rows[i].cond ? rows[i].cond : "NULL", w);
	}
}

/* ---- domainparts ---- */

static void test_domain_ok(void **state)
{
	(void)state;
	char label63[80], label64[80], long1023[1100], long1024[1100];
	memset(label63, 'a', 63);
	strcpy(label63 + 63, ".example");
	memset(label64, 'a', 64);
	strcpy(label64 + 64, ".example");
	/* labels of three letters: exactly 1023 octets, then one more */
	for (size_t i = 0; i < 1023; i++)
		long1023[i] = (i % 4 == 3) ? '.' : 'a';
	long1023[1023] = '\0';
	memcpy(long1024, long1023, 1023);
	long1024[1023] = 'a';
	long1024[1024] = '\0';
	assert_int_equal(strlen(long1023), 1023);

	const struct {
		const char *d;
		bool ok;
	} rows[] = {
	    /* RFC 7622 section 3.2 */
	    {"example.com", true},
	    {"Example.COM", true},  /* lower-casing is the caller's */
	    {"example.com.", true}, /* the trailing dot is stripped by the caller */
	    {"localhost", true},    /* an unqualified hostname */
	    {"192.0.2.1", true},
	    {"[2001:db8::1]", true},
	    {"[::ffff:192.0.2.1]", true},
	    {"xn--bcher-kva.example", true},
	    {"b\xc3\xbc"
	     "cher.example",
	     true}, /* a U-label in UTF-8 */
	    {"a-b.example", true},
	    {"", false},
	    {".", false},
	    {"example.com..", false},
	    {".example.com", false},
	    {"a..example", false},
	    {"user@example.com", false},
	    {"example.com/res", false},
	    {"exa mple.com", false},
	    {"example.com\t", false},
	    {"example.com\r\n", false},
	    {"exa\x7fmple.com", false},
	    {"example.com'", false},
	    {"<example.com>", false},
	    {"a&b.example", false},
	    {"_xmpp-server.example.com", false}, /* NR-LDH: no underscore */
	    {"*.example.com", false},
	    {"example.com:5269", false},
	    {"[2001:db8::1", false},
	    {"[example.com]", false},
	    {"[]", false},
	    {"[abcd]", false},
	    {"[192.0.2.1]", false},     /* IPv4 goes without brackets */
	    {"exa\xffmple.com", false}, /* not UTF-8 */
	    {"\xc0\xae"
	     "example",
	     false}, /* an overlong '.' */
	    {label63, true},
	    {label64, false},
	    {long1023, true},
	    {long1024, false},
	    {NULL, false},
	};
	for (size_t i = 0; i < N(rows); i++)
		if (xs2s_domain_ok(rows[i].d) != rows[i].ok)
			fail_msg("row %zu: \"%.40s\" should be %s", i,
			         rows[i].d ? rows[i].d : "(null)",
			         rows[i].ok ? "ok" : "refused");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialback_key_vectors),
	    cmocka_unit_test(test_dialback_key_inputs),
	    cmocka_unit_test(test_key_equal),
	    cmocka_unit_test(test_stream_id),
	    cmocka_unit_test(test_random_secret),
	    cmocka_unit_test(test_cert_names_domain),
	    cmocka_unit_test(test_cert_hostile_names),
	    cmocka_unit_test(test_cert_ids_str),
	    cmocka_unit_test(test_cert_has_dns_san),
	    cmocka_unit_test(test_stream_errors),
	    cmocka_unit_test(test_dialback_errors),
	    cmocka_unit_test(test_domain_ok),
	};
	return cmocka_run_group_tests(tests, setup_key, teardown_key);
}

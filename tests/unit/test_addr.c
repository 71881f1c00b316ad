#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/addr.h"

static const char domains[] = "# home domain other\n"
                              "sip   sip.test        sip.test   ; Lync users\n"
                              "xmpp  xmpp.test       xmpp.test\n"
                              "sip   lync.example.com  lync-xmpp.example.com\n"
                              "xmpp  cisco.example.net  sip-cisco.example.com\n";

static const char users[] = "sip:john.doe@lync.example.com  jdoe@lync-xmpp.example.com\n"
                            "sip:Marie%20Curie@sip.test      mcurie@sip.test\n";

static int setup(void **state)
{
	struct diag_list dl;
	struct addr_map *m = addr_map_new();

	diag_init(&dl);
	assert_int_equal(
	    addr_map_load_domains(m, domains, strlen(domains), "domains.map", &dl), 0);
	assert_int_equal(addr_map_load_users(m, users, strlen(users), "users.map", &dl),
	                 0);
	assert_int_equal(dl.n, 0);
	diag_free(&dl);
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	addr_map_free(*state);
	return 0;
}

/* One address translation: in -> out (NULL on failure) with err and home. */
struct conv_case {
	const char *name;
	const char *in;
	int err;
	const char *out;
	enum addr_home home;
};

static const struct conv_case s2j[] = {
    {"plain sip-homed", "sip:alice@sip.test", 0, "alice@sip.test", ADDR_HOME_SIP},
    {"sips scheme", "sips:alice@sip.test", 0, "alice@sip.test", ADDR_HOME_SIP},
    {"scheme case", "SIP:alice@SIP.Test", 0, "alice@sip.test", ADDR_HOME_SIP},
    {"xmpp-homed seen from SIP", "sip:bob@xmpp.test", 0, "bob@xmpp.test", ADDR_HOME_XMPP},
    {"renamed sip domain", "sip:carol@lync.example.com", 0, "carol@lync-xmpp.example.com",
     ADDR_HOME_SIP},
    {"renamed xmpp domain", "sip:dave@sip-cisco.example.com", 0, "dave@cisco.example.net",
     ADDR_HOME_XMPP},
    {"port params headers dropped", "sip:alice@sip.test:5061;transport=tls?subject=x", 0,
     "alice@sip.test", ADDR_HOME_SIP},
    {"password dropped", "sip:alice:secret@sip.test", 0, "alice@sip.test", ADDR_HOME_SIP},
    {"user alias", "sip:john.doe@lync.example.com", 0, "jdoe@lync-xmpp.example.com",
     ADDR_HOME_SIP},
    {"alias of encoded user", "sip:Marie%20Curie@sip.test", 0, "mcurie@sip.test",
     ADDR_HOME_SIP},
    {"alias with other encoding", "sip:Marie%20Curi%65@sip.test", 0, "mcurie@sip.test",
     ADDR_HOME_SIP},
    {"percent-decoded then XEP-0106", "sip:a%20b@sip.test", 0, "a\\20b@sip.test",
     ADDR_HOME_SIP},
    {"slash and ampersand escaped", "sip:r&d/x@sip.test", 0, "r\\26d\\2fx@sip.test",
     ADDR_HOME_SIP},
    {"quote escaped", "sip:o'neil@sip.test", 0, "o\\27neil@sip.test", ADDR_HOME_SIP},
    {"encoded at and colon", "sip:a%40b%3Ac@sip.test", 0, "a\\40b\\3ac@sip.test",
     ADDR_HOME_SIP},
    {"encoded angle brackets", "sip:%3Cx%3E@sip.test", 0, "\\3cx\\3e@sip.test",
     ADDR_HOME_SIP},
    {"lone backslash kept", "sip:a%5Cb@sip.test", 0, "a\\b@sip.test", ADDR_HOME_SIP},
    {"backslash that looks like escape", "sip:a%5C20b@sip.test", 0, "a\\5c20b@sip.test",
     ADDR_HOME_SIP},
    {"XEP-0106 5.1 example 9 from SIP", "sip:c%3A%5Cnet@sip.test", 0,
     "c\\3a\\net@sip.test", ADDR_HOME_SIP},
    {"utf-8 user", "sip:%C3%A9lodie@sip.test", 0, "\xc3\xa9lodie@sip.test",
     ADDR_HOME_SIP},
    {"unmapped domain", "sip:eve@evil.example", -ENOENT, NULL, 0},
    {"no user part", "sip:sip.test", -EINVAL, NULL, 0},
    {"empty user", "sip:@sip.test", -EINVAL, NULL, 0},
    {"tel scheme", "tel:+15551234", -EPROTONOSUPPORT, NULL, 0},
    {"xmpp scheme", "xmpp:alice@sip.test", -EPROTONOSUPPORT, NULL, 0},
    {"no scheme", "alice@sip.test", -EINVAL, NULL, 0},
    {"bad percent", "sip:a%2@sip.test", -EINVAL, NULL, 0},
    {"percent nul", "sip:a%00b@sip.test", -EINVAL, NULL, 0},
    {"decoded control char", "sip:a%0Ab@sip.test", -EINVAL, NULL, 0},
    {"decoded invalid utf-8", "sip:a%C3%28@sip.test", -EILSEQ, NULL, 0},
    {"raw space", "sip:a b@sip.test", -EINVAL, NULL, 0},
    {"bad domain", "sip:alice@sip..test", -EINVAL, NULL, 0},
    {"bad port", "sip:alice@sip.test:50x", -EINVAL, NULL, 0},
    {"leading space after decoding", "sip:%20alice@sip.test", -EINVAL, NULL, 0},
};

/* Run a table of translations through fn (addr_sip_to_jid, _full_jid,
 * addr_jid_to_gruu: the same shape). */
static void run_conv(const struct addr_map *m, const struct conv_case *rows, size_t n,
                     int (*fn)(const struct addr_map *, const char *, char **,
                               enum addr_home *))
{
	for (size_t i = 0; i < n; i++) {
		const struct conv_case *c = &rows[i];
		char *out = NULL;
		enum addr_home home = (enum addr_home) - 1;
		int err = fn(m, c->in, &out, &home);
		if (err != c->err)
			fail_msg("case '%s': err %d (%s), want %d", c->name, err,
			         addr_strerror(err), c->err);
		if (c->out && (!out || strcmp(out, c->out) != 0))
			fail_msg("case '%s': got '%s', want '%s'", c->name,
			         out ? out : "(null)", c->out);
		if (c->out && home != c->home)
			fail_msg("case '%s': home %d, want %d", c->name, home, c->home);
		if (!c->out && out)
			fail_msg("case '%s': result set on failure", c->name);
		free(out);
	}
}

static void test_sip_to_jid(void **state)
{
	run_conv(*state, s2j, sizeof(s2j) / sizeof(s2j[0]), addr_sip_to_jid);
}

struct j2s_case {
	const char *name;
	const char *jid;
	int err;
	const char *uri;
	const char *resource;
	enum addr_home home;
};

static const struct j2s_case j2s[] = {
    {"plain xmpp-homed", "bob@xmpp.test", 0, "sip:bob@xmpp.test", NULL, ADDR_HOME_XMPP},
    {"resource returned", "bob@xmpp.test/laptop", 0, "sip:bob@xmpp.test", "laptop",
     ADDR_HOME_XMPP},
    {"resource with slash", "bob@xmpp.test/a/b", 0, "sip:bob@xmpp.test", "a/b",
     ADDR_HOME_XMPP},
    {"sip-homed at component", "alice@sip.test", 0, "sip:alice@sip.test", NULL,
     ADDR_HOME_SIP},
    {"domain case", "bob@XMPP.test", 0, "sip:bob@xmpp.test", NULL, ADDR_HOME_XMPP},
    {"renamed xmpp domain", "dave@cisco.example.net", 0, "sip:dave@sip-cisco.example.com",
     NULL, ADDR_HOME_XMPP},
    {"renamed sip domain", "carol@lync-xmpp.example.com", 0, "sip:carol@lync.example.com",
     NULL, ADDR_HOME_SIP},
    {"alias", "jdoe@lync-xmpp.example.com", 0, "sip:john.doe@lync.example.com", NULL,
     ADDR_HOME_SIP},
    {"alias case-insensitive localpart", "JDoe@lync-xmpp.example.com/pc", 0,
     "sip:john.doe@lync.example.com", "pc", ADDR_HOME_SIP},
    {"alias to encoded user", "mcurie@sip.test", 0, "sip:Marie%20Curie@sip.test", NULL,
     ADDR_HOME_SIP},
    {"XEP-0106 space", "a\\20b@xmpp.test", 0, "sip:a%20b@xmpp.test", NULL,
     ADDR_HOME_XMPP},
    {"XEP-0106 at sign", "a\\40b@xmpp.test", 0, "sip:a%40b@xmpp.test", NULL,
     ADDR_HOME_XMPP},
    {"XEP-0106 colon and lt", "a\\3ab\\3c@xmpp.test", 0, "sip:a%3Ab%3C@xmpp.test", NULL,
     ADDR_HOME_XMPP},
    {"user-unreserved kept", "r\\26d\\2fx@xmpp.test", 0, "sip:r&d/x@xmpp.test", NULL,
     ADDR_HOME_XMPP},
    {"non-ascii encoded", "\xc3\xa9lodie@xmpp.test", 0, "sip:%C3%A9lodie@xmpp.test", NULL,
     ADDR_HOME_XMPP},
    {"unknown escape kept", "a\\zzb@xmpp.test", 0, "sip:a%5Czzb@xmpp.test", NULL,
     ADDR_HOME_XMPP},
    {"unmapped domain", "mallory@evil.example", -ENOENT, NULL, NULL, 0},
    {"domain only", "xmpp.test", -EINVAL, NULL, NULL, 0},
    {"empty local", "@xmpp.test", -EINVAL, NULL, NULL, 0},
    {"empty domain", "bob@", -EINVAL, NULL, NULL, 0},
    {"empty resource", "bob@xmpp.test/", -EINVAL, NULL, NULL, 0},
    {"raw space in local", "a b@xmpp.test", -EINVAL, NULL, NULL, 0},
    {"raw quote in local", "a\"b@xmpp.test", -EINVAL, NULL, NULL, 0},
    {"two at signs", "a@b@xmpp.test", -EINVAL, NULL, NULL, 0},
    {"invalid utf-8", "a\xff@xmpp.test", -EILSEQ, NULL, NULL, 0},
    {"control char", "a\x01@xmpp.test", -EINVAL, NULL, NULL, 0},
};

static void test_jid_to_sip(void **state)
{
	const struct addr_map *m = *state;

	for (size_t i = 0; i < sizeof(j2s) / sizeof(j2s[0]); i++) {
		const struct j2s_case *c = &j2s[i];
		char *uri = NULL, *res = NULL;
		enum addr_home home = (enum addr_home) - 1;
		int err = addr_jid_to_sip(m, c->jid, &uri, &res, &home);
		if (err != c->err)
			fail_msg("case '%s': err %d (%s), want %d", c->name, err,
			         addr_strerror(err), c->err);
		if (c->uri && (!uri || strcmp(uri, c->uri) != 0))
			fail_msg("case '%s': uri '%s', want '%s'", c->name,
			         uri ? uri : "(null)", c->uri);
		if (c->uri && ((c->resource == NULL) != (res == NULL) ||
		               (res && strcmp(res, c->resource) != 0)))
			fail_msg("case '%s': resource '%s', want '%s'", c->name,
			         res ? res : "(null)",
			         c->resource ? c->resource : "(null)");
		if (c->uri && home != c->home)
			fail_msg("case '%s': home %d, want %d", c->name, home, c->home);
		free(uri);
		free(res);
	}
}

/* Every plain user survives a trip through the bridge and back. */
static void test_round_trip(void **state)
{
	const struct addr_map *m = *state;
	static const char *const uris[] = {
	    "sip:alice@sip.test",         "sip:a%20b@sip.test",  "sip:r&d/x@xmpp.test",
	    "sip:%C3%A9lodie@xmpp.test",  "sip:a%40b@xmpp.test", "sip:x%5C20y@sip.test",
	    "sip:carol@lync.example.com", "sip:a%5Cb@xmpp.test",
	};
	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
		char *jid = NULL, *back = NULL;
		assert_int_equal(addr_sip_to_jid(m, uris[i], &jid, NULL), 0);
		assert_int_equal(addr_jid_to_sip(m, jid, &back, NULL, NULL), 0);
		if (strcmp(back, uris[i]) != 0)
			fail_msg("round trip %s -> %s -> %s", uris[i], jid, back);
		free(jid);
		free(back);
	}
}

static void test_too_long(void **state)
{
	const struct addr_map *m = *state;
	char uri[4096], jid[ADDR_MAX_PART + 64];
	char *out = NULL;

	/* 1023 octets is the RFC 7622 limit: accepted; 1024 refused. */
	strcpy(uri, "sip:");
	memset(uri + 4, 'u', ADDR_MAX_PART);
	strcpy(uri + 4 + ADDR_MAX_PART, "@sip.test");
	assert_int_equal(addr_sip_to_jid(m, uri, &out, NULL), 0);
	free(out);
	out = NULL;
	strcpy(uri + 4, "u");
	memset(uri + 4, 'u', ADDR_MAX_PART + 1);
	strcpy(uri + 5 + ADDR_MAX_PART, "@sip.test");
	assert_int_equal(addr_sip_to_jid(m, uri, &out, NULL), -ENAMETOOLONG);
	/* Escaping can push a legal SIP user over the JID limit. */
	strcpy(uri, "sip:");
	for (int i = 0; i < 400; i++)
		strcat(uri, "a%20");
	strcat(uri, "a@sip.test");
	assert_int_equal(addr_sip_to_jid(m, uri, &out, NULL), -ENAMETOOLONG);
	memset(jid, 'j', ADDR_MAX_PART + 1);
	strcpy(jid + ADDR_MAX_PART + 1, "@xmpp.test");
	assert_int_equal(addr_jid_to_sip(m, jid, &out, NULL, NULL), -ENAMETOOLONG);
	assert_null(out);
}

/*
 * Instances (RFC 7247 section 6.3): the "gr" URI parameter <-> the resourcepart.
 * SIP -> XMPP follows section 6.4 (its three examples, on our test domains),
 * XMPP -> SIP section 6.5 (likewise); RFC 7572 sections 4 and 5 use the same
 * mapping for the sender of a message.
 */
static const struct conv_case s2fj[] = {
    {"RFC 7247 6.4 example 1 (step 3)", "sip:f%C3%BC@sip.test", 0, "f\xc3\xbc@sip.test",
     ADDR_HOME_SIP},
    {"RFC 7247 6.4 example 2 (step 5)", "sip:o'malley@sip.test", 0,
     "o\\27malley@sip.test", ADDR_HOME_SIP},
    {"RFC 7247 6.4 example 3 (step 8)", "sip:foo@sip.test;gr=bar", 0, "foo@sip.test/bar",
     ADDR_HOME_SIP},
    {"RFC 7247 6.4 step 8, XMPP-homed", "sip:bob@xmpp.test;gr=laptop", 0,
     "bob@xmpp.test/laptop", ADDR_HOME_XMPP},
    {"RFC 7572 5 sender GRUU", "sip:romeo@sip.test;gr=dr4hcr0st3lup4c", 0,
     "romeo@sip.test/dr4hcr0st3lup4c", ADDR_HOME_SIP},
    {"RFC 7247 6.3 non-ASCII gr percent-decoded", "sip:foo@sip.test;gr=caf%C3%A9", 0,
     "foo@sip.test/caf\xc3\xa9", ADDR_HOME_SIP},
    {"RFC 7247 6.3 encoded slash in gr", "sip:foo@sip.test;gr=a%2Fb", 0,
     "foo@sip.test/a/b", ADDR_HOME_SIP},
    {"RFC 5627 urn:uuid gr", "sip:alice@sip.test;gr=urn:uuid:f81d4fae-7dec-11d0-a765", 0,
     "alice@sip.test/urn:uuid:f81d4fae-7dec-11d0-a765", ADDR_HOME_SIP},
    {"RFC 3261 19.1.1 gr among other params",
     "sip:alice@sip.test;transport=tls;gr=pc1;lr", 0, "alice@sip.test/pc1",
     ADDR_HOME_SIP},
    {"RFC 3261 19.1.1 port before params", "sip:alice@sip.test:5061;gr=pc1", 0,
     "alice@sip.test/pc1", ADDR_HOME_SIP},
    {"RFC 3261 19.1.4 param name case", "sip:alice@sip.test;GR=pc1", 0,
     "alice@sip.test/pc1", ADDR_HOME_SIP},
    {"RFC 3261 19.1.1 gr in headers is no param", "sip:alice@sip.test?gr=pc1", 0,
     "alice@sip.test", ADDR_HOME_SIP},
    {"another param named like gr", "sip:alice@sip.test;grx=pc1", 0, "alice@sip.test",
     ADDR_HOME_SIP},
    {"RFC 7247 6.4: no gr, bare JID", "sip:alice@sip.test", 0, "alice@sip.test",
     ADDR_HOME_SIP},
    {"RFC 7247 6.3 temporary GRUU (valueless gr) stays bare", "sip:alice@sip.test;gr", 0,
     "alice@sip.test", ADDR_HOME_SIP},
    {"RFC 7247 6.4 alias keeps gr", "sip:john.doe@lync.example.com;gr=pc", 0,
     "jdoe@lync-xmpp.example.com/pc", ADDR_HOME_SIP},
    {"RFC 3261 25.1 empty gr value", "sip:alice@sip.test;gr=", -EINVAL, NULL, 0},
    {"RFC 7622 3.4 control char in gr", "sip:alice@sip.test;gr=a%0Ab", -EINVAL, NULL, 0},
    {"gr decodes to NUL", "sip:alice@sip.test;gr=a%00b", -EINVAL, NULL, 0},
    {"RFC 7622 3.4 gr not UTF-8", "sip:alice@sip.test;gr=a%C3%28", -EILSEQ, NULL, 0},
    {"unmapped domain with gr", "sip:eve@evil.example;gr=x", -ENOENT, NULL, 0},
};

static void test_sip_to_full_jid(void **state)
{
	run_conv(*state, s2fj, sizeof(s2fj) / sizeof(s2fj[0]), addr_sip_to_full_jid);
}

static const struct conv_case j2gr[] = {
    {"RFC 7247 6.5 example 1 (step 3)", "m\\26m@xmpp.test", 0, "sip:m&m@xmpp.test",
     ADDR_HOME_XMPP},
    {"RFC 7247 6.5 example 2 (step 5)", "tsch\xc3\xbcss@xmpp.test", 0,
     "sip:tsch%C3%BCss@xmpp.test", ADDR_HOME_XMPP},
    {"RFC 7247 6.5 example 3 (step 8)", "baz@xmpp.test/qux", 0,
     "sip:baz@xmpp.test;gr=qux", ADDR_HOME_XMPP},
    {"RFC 7572 4 note 1: sender's resource as GRUU", "juliet@xmpp.test/yn0cl4bnw0yr3vym",
     0, "sip:juliet@xmpp.test;gr=yn0cl4bnw0yr3vym", ADDR_HOME_XMPP},
    {"RFC 7247 6.5 step 8 non-ASCII resource encoded", "bob@xmpp.test/caf\xc3\xa9", 0,
     "sip:bob@xmpp.test;gr=caf%C3%A9", ADDR_HOME_XMPP},
    {"RFC 3261 25.1 paramchar: space ; = encoded", "bob@xmpp.test/my phone;x=1", 0,
     "sip:bob@xmpp.test;gr=my%20phone%3Bx%3D1", ADDR_HOME_XMPP},
    {"RFC 3261 25.1 paramchar: / : kept, @ ? % encoded", "bob@xmpp.test/a/b:c@d?e%", 0,
     "sip:bob@xmpp.test;gr=a/b:c%40d%3Fe%25", ADDR_HOME_XMPP},
    {"SIP-homed user at the component", "alice@sip.test/pc1", 0,
     "sip:alice@sip.test;gr=pc1", ADDR_HOME_SIP},
    {"alias keeps the resource", "JDoe@lync-xmpp.example.com/pc", 0,
     "sip:john.doe@lync.example.com;gr=pc", ADDR_HOME_SIP},
    {"bare JID, plain URI", "bob@xmpp.test", 0, "sip:bob@xmpp.test", ADDR_HOME_XMPP},
    {"RFC 7622 3.4 empty resource", "bob@xmpp.test/", -EINVAL, NULL, 0},
    {"unmapped domain", "mallory@evil.example/x", -ENOENT, NULL, 0},
};

static void test_jid_to_gruu(void **state)
{
	run_conv(*state, j2gr, sizeof(j2gr) / sizeof(j2gr[0]), addr_jid_to_gruu);
}

/* A message or presence for one device comes back to that device: full JID ->
 * GRUU -> the same full JID, and GRUU -> full JID -> the same GRUU (RFC 7247
 * sections 6.4 and 6.5, step 8 of each). */
static void test_instance_round_trip(void **state)
{
	const struct addr_map *m = *state;
	static const char *const jids[] = {
	    "bob@xmpp.test/laptop",         "bob@xmpp.test/caf\xc3\xa9",
	    "bob@xmpp.test/my phone;x=1",   "bob@xmpp.test/a/b:c@d?e%",
	    "alice@sip.test/urn:uuid:f81d", "a\\20b@xmpp.test/r",
	};
	static const char *const uris[] = {
	    "sip:bob@xmpp.test;gr=laptop",
	    "sip:alice@sip.test;gr=urn:uuid:f81d4fae-7dec-11d0-a765",
	    "sip:bob@xmpp.test;gr=caf%C3%A9",
	    "sip:bob@xmpp.test;gr=a%20b",
	};
	for (size_t i = 0; i < sizeof(jids) / sizeof(jids[0]); i++) {
		char *uri = NULL, *back = NULL;
		assert_int_equal(addr_jid_to_gruu(m, jids[i], &uri, NULL), 0);
		assert_int_equal(addr_sip_to_full_jid(m, uri, &back, NULL), 0);
		if (strcmp(back, jids[i]) != 0)
			fail_msg("round trip %s -> %s -> %s", jids[i], uri, back);
		free(uri);
		free(back);
	}
	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
		char *jid = NULL, *back = NULL;
		assert_int_equal(addr_sip_to_full_jid(m, uris[i], &jid, NULL), 0);
		assert_int_equal(addr_jid_to_gruu(m, jid, &back, NULL), 0);
		if (strcmp(back, uris[i]) != 0)
			fail_msg("round trip %s -> %s -> %s", uris[i], jid, back);
		free(jid);
		free(back);
	}
}

/* The plain functions name the user, never the device: a GRUU gives the bare JID
 * (the key of subscriptions and of the presence cache). */
static void test_plain_drops_instance(void **state)
{
	const struct addr_map *m = *state;
	char *jid = NULL;
	assert_int_equal(addr_sip_to_jid(m, "sip:foo@sip.test;gr=bar", &jid, NULL), 0);
	assert_string_equal(jid, "foo@sip.test");
	free(jid);
}

struct esc_case {
	const char *name;
	const char *in;
	int err;
	const char *out;
};

/*
 * XEP-0106 section 5.1, examples 1-12 (user input -> escaped JID), and the
 * exceptions of section 4.3. Examples 9-11 keep a backslash that starts no escape
 * sequence, as sections 4.1 rule 7, 4.2 step 3 and 4.3 say; the table of section
 * 3.2 alone would make it "\5c" (the decision: docs/design-notes.md, "Addresses").
 */
static const struct esc_case escs[] = {
    {"XEP-0106 5.1 example 1", "space cadet", 0, "space\\20cadet"},
    {"XEP-0106 5.1 example 2", "call me \"ishmael\"", 0, "call\\20me\\20\\22ishmael\\22"},
    {"XEP-0106 5.1 example 3", "at&t guy", 0, "at\\26t\\20guy"},
    {"XEP-0106 5.1 example 4", "d'artagnan", 0, "d\\27artagnan"},
    {"XEP-0106 5.1 example 5", "/.fanboy", 0, "\\2f.fanboy"},
    {"XEP-0106 5.1 example 6", "::foo::", 0, "\\3a\\3afoo\\3a\\3a"},
    {"XEP-0106 5.1 example 7", "<foo>", 0, "\\3cfoo\\3e"},
    {"XEP-0106 5.1 example 8", "user@host", 0, "user\\40host"},
    {"XEP-0106 5.1 example 9: lone backslash kept", "c:\\net", 0, "c\\3a\\net"},
    {"XEP-0106 5.1 example 10: double backslash kept", "c:\\\\net", 0, "c\\3a\\\\net"},
    {"XEP-0106 5.1 example 11: backslash before non-sequence", "c:\\cool stuff", 0,
     "c\\3a\\cool\\20stuff"},
    {"XEP-0106 5.1 example 12: \\5c escaped", "c:\\5commas", 0, "c\\3a\\5c5commas"},
    {"XEP-0106 4.2 step 3: text that looks like an escape", "a\\27b", 0, "a\\5c27b"},
    {"XEP-0106 4.3 partial escape sequence", "\\2plus\\2is\\4", 0, "\\2plus\\2is\\4"},
    {"XEP-0106 4.3 invalid escape sequence 1", "foo\\bar", 0, "foo\\bar"},
    {"XEP-0106 4.3 invalid escape sequence 2", "foob\\41r", 0, "foob\\41r"},
    {"XEP-0106 4.3 upper-case hex is no sequence (3.1: case significant)", "a\\2Fb", 0,
     "a\\2Fb"},
    {"XEP-0106 4.1 rule 6: leading space", " x", -EINVAL, NULL},
    {"XEP-0106 4.1 rule 6: trailing space", "x ", -EINVAL, NULL},
    {"RFC 7622 3.3: empty localpart", "", -EINVAL, NULL},
    {"RFC 7247 6.1: control character", "a\tb", -EINVAL, NULL},
};

/* The pieces the PIDF mapping uses (RFC 7247 sections 6.3-6.5, the gr
 * parameter alone, on a URI the caller already has). */
static void test_gruu_parts(void **state)
{
	static const struct {
		const char *name;
		const char *uri;
		int err;
		const char *res; /* NULL: no resource */
	} reads[] = {
	    {"6.4 step 8 example", "sip:foo@sip.example;gr=bar", 0, "bar"},
	    {"6.3: percent-decoded", "sip:foo@sip.example;gr=f%C3%BC", 0, "f\xc3\xbc"},
	    {"other parameters around it", "sip:a@b;transport=tcp;gr=x;lr", 0, "x"},
	    {"parameter names ignore case (RFC 3261 19.1.4)", "sip:a@b;GR=x", 0, "x"},
	    {"no gr", "sip:a@b;transport=tcp", 0, NULL},
	    {"6.3: temporary GRUU (valueless gr) left out", "sip:a@b;gr", 0, NULL},
	    {"RFC 3261 25.1: gr= is malformed", "sip:a@b;gr=", -EINVAL, NULL},
	    {"RFC 7622 3.4: no control characters", "sip:a@b;gr=a%0Ab", -EINVAL, NULL},
	    {"UTF-8 only", "sip:a@b;gr=%FF", -EILSEQ, NULL},
	};
	static const struct {
		const char *name;
		const char *aor, *res;
		int err;
		const char *uri;
	} makes[] = {
	    {"6.5 example", "sip:baz@xmpp.example", "qux", 0,
	     "sip:baz@xmpp.example;gr=qux"},
	    {"6.5 step 8: non-ASCII encoded", "sip:a@b", "f\xc3\xbc", 0,
	     "sip:a@b;gr=f%C3%BC"},
	    {"RFC 3261 25.1 paramchar kept", "sip:a@b", "x[]/:&+$-_.!~*'()", 0,
	     "sip:a@b;gr=x[]/:&+$-_.!~*'()"},
	    {"'%', ';', '=', '@' encoded", "sip:a@b", "%;=@", 0,
	     "sip:a@b;gr=%25%3B%3D%40"},
	    {"an empty resource is no GRUU", "sip:a@b", "", -EINVAL, NULL},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		char *res = (char *)"unset";
		int err = addr_gruu_resource(reads[i].uri, &res);
		if (err != reads[i].err)
			fail_msg("read '%s': %d, want %d", reads[i].name, err,
			         reads[i].err);
		if (err)
			continue;
		if (reads[i].res ? !res || strcmp(res, reads[i].res) != 0 : res != NULL)
			fail_msg("read '%s': '%s', want '%s'", reads[i].name,
			         res ? res : "(none)",
			         reads[i].res ? reads[i].res : "(none)");
		free(res);
	}
	for (size_t i = 0; i < sizeof(makes) / sizeof(makes[0]); i++) {
		char *uri = NULL;
		int err = addr_gruu_make(makes[i].aor, makes[i].res, &uri);
		if (err != makes[i].err)
			fail_msg("make '%s': %d, want %d", makes[i].name, err,
			         makes[i].err);
		if (!err) {
			if (strcmp(uri, makes[i].uri) != 0)
				fail_msg("make '%s': %s, want %s", makes[i].name, uri,
				         makes[i].uri);
			/* and back: 6.4 step 8 inverts 6.5 step 8 */
			char *back = NULL;
			assert_int_equal(addr_gruu_resource(uri, &back), 0);
			assert_non_null(back);
			assert_string_equal(back, makes[i].res);
			free(back);
		}
		free(uri);
	}
}

static void test_escape(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(escs) / sizeof(escs[0]); i++) {
		const struct esc_case *c = &escs[i];
		char *out = NULL;
		int err = addr_jid_escape(c->in, strlen(c->in), &out);
		if (err != c->err)
			fail_msg("case '%s': err %d, want %d", c->name, err, c->err);
		if (c->out && strcmp(out, c->out) != 0)
			fail_msg("case '%s': '%s', want '%s'", c->name, out, c->out);
		if (c->out) {
			char *back = NULL;
			assert_int_equal(addr_jid_unescape(out, &back), 0);
			if (strcmp(back, c->in) != 0)
				fail_msg("case '%s': unescape gave '%s'", c->name, back);
			free(back);
		}
		free(out);
	}
}

struct map_case {
	const char *name;
	const char *domains;
	const char *users;
	const char *want; /* substring of the first problem, NULL: no problem */
	unsigned line;
};

static const struct map_case map_cases[] = {
    {"good", "sip a.test a.test\nxmpp b.test b.test\n", "", NULL, 0},
    {"comments and blanks", "# c\n\n  ; c\nsip a.test a.test # c\n", "", NULL, 0},
    {"unknown home", "sip a.test a.test\nh323 b.test b.test\n", "",
     "neither 'sip' nor 'xmpp'", 2},
    {"two fields", "sip a.test\n", "", "expected 3 fields", 1},
    {"four fields", "sip a.test a.test extra\n", "", "expected 3 fields", 1},
    {"bad domain", "sip a_b.test a.test\n", "", "not a valid domain name", 1},
    {"ip literal", "sip 10.0.0.300 a.test\n", "", NULL, 0},
    {"duplicate sip name", "sip a.test a.test\nxmpp c.test a.test\n", "",
     "already mapped at line 1", 2},
    {"duplicate xmpp name", "sip a.test x.test\nsip b.test x.test\n", "",
     "already mapped at line 1", 2},
    {"alias good", "sip a.test a.test\n", "sip:u@a.test v@a.test\n", NULL, 0},
    {"alias unmapped", "sip a.test a.test\n", "sip:u@z.test v@a.test\n",
     "not in domains.map", 1},
    {"alias wrong domain", "sip a.test a.test\nxmpp b.test b.test\n",
     "sip:u@a.test v@b.test\n", "maps the SIP domain to another", 1},
    {"alias resource", "sip a.test a.test\n", "sip:u@a.test v@a.test/r\n",
     "not a bare JID", 1},
    {"alias not sip", "sip a.test a.test\n", "tel:123 v@a.test\n", "not a usable SIP URI",
     1},
    {"alias duplicate", "sip a.test a.test\n",
     "sip:u@a.test v@a.test\nsip:w@a.test V@a.test\n", "repeats an address of line 1", 2},
    {"alias one field", "sip a.test a.test\n", "sip:u@a.test\n", "expected 2 fields", 1},
};

static void test_map_files(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(map_cases) / sizeof(map_cases[0]); i++) {
		const struct map_case *c = &map_cases[i];
		struct addr_map *m = addr_map_new();
		struct diag_list dl;
		diag_init(&dl);
		int e1 = addr_map_load_domains(m, c->domains, strlen(c->domains), "d.map",
		                               &dl);
		int e2 = addr_map_load_users(m, c->users, strlen(c->users), "u.map", &dl);
		if (!c->want && (e1 || e2 || dl.n))
			fail_msg("case '%s': unexpected problem '%s'", c->name,
			         dl.n ? dl.v[0].msg : "?");
		if (c->want) {
			if (dl.n == 0 || (e1 == 0 && e2 == 0))
				fail_msg("case '%s': no problem reported", c->name);
			if (!strstr(dl.v[0].msg, c->want) || dl.v[0].line != c->line)
				fail_msg("case '%s': got line %u '%s', want line %u '%s'",
				         c->name, dl.v[0].line, dl.v[0].msg, c->line,
				         c->want);
		}
		diag_free(&dl);
		addr_map_free(m);
	}
}

/* "ip literal" above: 10.0.0.300 is a syntactically valid DNS-ish name; the map accepts
 * names, and a second test shows an empty map refuses everything. */
/* The rows listed in the order loaded (what the XMPP leg opens a component
 * link for), then -ENOENT past the last. */
static void test_domain_rows(void **state)
{
	const struct addr_map *m = *state;
	static const struct {
		enum addr_home home;
		const char *sip, *xmpp;
	} rows[] = {
	    {ADDR_HOME_SIP, "sip.test", "sip.test"},
	    {ADDR_HOME_XMPP, "xmpp.test", "xmpp.test"},
	    {ADDR_HOME_SIP, "lync.example.com", "lync-xmpp.example.com"},
	    {ADDR_HOME_XMPP, "sip-cisco.example.com", "cisco.example.net"},
	};
	size_t n = sizeof(rows) / sizeof(rows[0]);
	assert_int_equal(addr_map_domain_count(m), n);
	for (size_t i = 0; i < n; i++) {
		enum addr_home home;
		const char *sip, *xmpp;
		assert_int_equal(addr_map_domain(m, i, &home, &sip, &xmpp), 0);
		assert_int_equal(home, rows[i].home);
		assert_string_equal(sip, rows[i].sip);
		assert_string_equal(xmpp, rows[i].xmpp);
		assert_int_equal(addr_map_domain(m, i, NULL, NULL, NULL), 0);
	}
	assert_int_equal(addr_map_domain(m, n, NULL, NULL, NULL), -ENOENT);
	assert_int_equal(addr_map_domain(m, (size_t)-1, NULL, NULL, NULL), -ENOENT);
}

static void test_empty_map_refuses(void **state)
{
	(void)state;
	struct addr_map *m = addr_map_new();
	char *out = NULL;
	assert_int_equal(addr_sip_to_jid(m, "sip:a@sip.test", &out, NULL), -ENOENT);
	assert_int_equal(addr_jid_to_sip(m, "a@xmpp.test", &out, NULL, NULL), -ENOENT);
	assert_null(out);
	addr_map_free(m);
}

static void test_shipped_domains_map(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof(path), "%s/mappings/domains.map", PB_SOURCE_DIR);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	struct addr_map *m = addr_map_new();
	struct diag_list dl;
	diag_init(&dl);
	assert_int_equal(addr_map_load_domains(m, buf, n, path, &dl), 0);
	assert_int_equal(dl.n, 0);
	enum addr_home home;
	assert_int_equal(addr_domain_sip(m, "sip.test", &home, NULL), 0);
	assert_int_equal(home, ADDR_HOME_SIP);
	assert_int_equal(addr_domain_xmpp(m, "xmpp.test", &home, NULL), 0);
	assert_int_equal(home, ADDR_HOME_XMPP);
	diag_free(&dl);
	addr_map_free(m);
}

/* IP literals: what certificates name by iPAddress, never by dNSName. */
static void test_is_ip(void **state)
{
	(void)state;
	assert_true(addr_is_ip("127.0.0.1"));
	assert_true(addr_is_ip("::1"));
	assert_false(addr_is_ip("xmpp.test"));
	assert_false(addr_is_ip("[::1]"));
	assert_false(addr_is_ip(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_is_ip),
	    cmocka_unit_test_setup_teardown(test_sip_to_jid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jid_to_sip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sip_to_full_jid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jid_to_gruu, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_instance_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plain_drops_instance, setup, teardown),
	    cmocka_unit_test(test_gruu_parts),
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_map_files),
	    cmocka_unit_test_setup_teardown(test_domain_rows, setup, teardown),
	    cmocka_unit_test(test_empty_map_refuses),
	    cmocka_unit_test(test_shipped_domains_map),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

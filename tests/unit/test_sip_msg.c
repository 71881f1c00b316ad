/* SIP messages: parsing real peers' shapes, header access, building answers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/sipm.h"

#include "test_sip_golden.h"

static const struct raw_case {
	const char *hdr;
	const char *name;
	unsigned idx;
	const char *want; /* NULL: absent */
} raw_cases[] = {
    {"M x SIP/2.0\r\nFrom: <sip:a@b>;tag=1\r\n\r\n", "From", 0, "<sip:a@b>;tag=1"},
    {"M x SIP/2.0\r\nf: <sip:a@b>\r\n\r\n", "From", 0, "<sip:a@b>"},
    {"M x SIP/2.0\r\nF:<sip:a@b>\r\n\r\n", "from", 0, "<sip:a@b>"},
    {"M x SIP/2.0\r\nFROM  :  v\r\n\r\n", "From", 0, "v"},
    {"M x SIP/2.0\r\nVia: a\r\nv: b\r\nVia: c\r\n\r\n", "Via", 1, "b"},
    {"M x SIP/2.0\r\nVia: a\r\n\r\n", "Via", 1, NULL},
    {"M x SIP/2.0\r\nSubject: one\r\n two\r\n\r\n", "Subject", 0, "one\r\n two"},
    {"M x SIP/2.0\r\nTokens: x\r\n\r\n", "To", 0, NULL},
    {"M x SIP/2.0\r\nX-To: x\r\n\r\n", "To", 0, NULL},
    {"M x SIP/2.0\r\n\r\nTo: in the body\r\n", "To", 0, NULL},
    {"To: x SIP/2.0\r\n\r\n", "To", 0, NULL}, /* the start line is no header */
    {"M x SIP/2.0\r\nMs-Text-Format: text/plain; ms-body=SGk=\r\n\r\n", "ms-text-format",
     0, "text/plain; ms-body=SGk="},
    {"M x SIP/2.0\r\nk: ms-benotify\r\n\r\n", "Supported", 0, "ms-benotify"},
};

static void test_raw_header_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(raw_cases) / sizeof(raw_cases[0]); i++) {
		const struct raw_case *c = &raw_cases[i];
		const char *v = NULL;
		size_t vl = 0;
		size_t len = sipm_header_len(c->hdr, strlen(c->hdr));
		int e = sipm_raw_header(c->hdr, len ? len : strlen(c->hdr), c->name,
		                        c->idx, &v, &vl);
		if (!c->want) {
			if (e != -ENOENT)
				fail_msg("case %zu (%s): found '%.*s'", i, c->name,
				         (int)vl, v);
			continue;
		}
		if (e != 0 || vl != strlen(c->want) || memcmp(v, c->want, vl) != 0)
			fail_msg("case %zu (%s): got %d '%.*s', want '%s'", i, c->name, e,
			         (int)vl, v ? v : "", c->want);
	}
}

static const struct golden_case {
	const char *file;
	int err; /* sipm_parse result */
	const char *method, *ruri_user, *ruri_host, *from_tag, *to_uri, *call_id;
	uint32_t cseq;
	const char *branch, *sentby;
	size_t nrr;
	int piggyback;                   /* Supported: ms-piggyback-first-notify */
	const char *probe, *probe_value; /* a header and its unfolded value */
} golden_cases[] = {
    {"lync-options.sip", 0, "OPTIONS", "", "bridge.xmpp.test", "8B5E0A3D9C7F1E2A",
     "sip:bridge.xmpp.test", "4f2b6a1e9c8d7b3a5e0f1d2c3b4a5968", 1,
     "z9hG4bK7A3C1F2E.9B8D7C6E5F4A3B2C", "10.0.0.10:5061", 0, 0, "Ms-Keep-Alive",
     "UAC;hop-hop=yes"},
    {"lync-subscribe-piggyback.sip", 0, "SUBSCRIBE", "bob", "xmpp.test", "7c9d1e4f5a",
     "sip:bob@xmpp.test", "1f2e3d4c5b6a79881726354453627180", 1,
     "z9hG4bK6E1B2C3D.4A5B6C7D8E9F0A1B", "10.0.0.10:5061", 0, 1, "Event", "presence"},
    {"lync-benotify.sip", 0, "BENOTIFY", "", "bridge.xmpp.test", "7c9d1e4f5a",
     "sip:bob@xmpp.test", "1f2e3d4c5b6a79881726354453627180", 2,
     "z9hG4bK1D2E3F4A.5B6C7D8E9F0A1B2C", "10.0.0.10:5061", 0, 0, "subscription-state",
     "active;expires=3600"},
    {"lync-invite-im.sip", 0, "INVITE", "bob", "xmpp.test", "3a4b5c6d7e",
     "sip:bob@xmpp.test", "9a8b7c6d5e4f30211203948576abcdef", 1,
     "z9hG4bK0A1B2C3D.4E5F6A7B8C9D0E1F", "10.0.0.10:5061", 1, 0, "Content-Type",
     "application/sdp;call-type=im"},
    {"lync-message-in-session.sip", 0, "MESSAGE", "", "bridge.xmpp.test", "3a4b5c6d7e",
     "sip:bob@xmpp.test", "9a8b7c6d5e4f30211203948576abcdef", 2,
     "z9hG4bK5F6A7B8C.9D0E1F2A3B4C5D6E", "10.0.0.10:5061", 0, 0, "Content-Type",
     "text/plain;charset=UTF-8"},
    {"lync-bye.sip", 0, "BYE", "", "bridge.xmpp.test", "3a4b5c6d7e", "sip:bob@xmpp.test",
     "9a8b7c6d5e4f30211203948576abcdef", 3, "z9hG4bK9A8B7C6D.5E4F3A2B1C0D9E8F",
     "10.0.0.10:5061", 0, 0, "ms-client-diagnostics",
     "52094; reason=\"Instant Messaging conversation terminated on user sign out\""},
    {"kamailio-options.sip", 0, "OPTIONS", "", "127.0.0.1",
     "d8c8ad3b2c7f3a6e0ba1a0a5d7e0b2c3-3b1f", "sip:127.0.0.1:5061;transport=tls",
     "6f0e2b7a1c3d4e5f-7612@127.0.0.1", 10,
     "z9hG4bK0b2e.c9a4f3e1000000000000000000000000.0", "127.0.0.1:5061", 0, 0,
     "User-Agent", "kamailio-test"},
    {"kamailio-message-relayed.sip", 0, "MESSAGE", "bob", "xmpp.test", "2417SIPpTag001",
     "sip:bob@xmpp.test", "1-2417@127.0.0.1", 1,
     "z9hG4bK4a3c.1b5e0f7d7a2c6b1e9f3d8a4c2b6e1f0a.0", "127.0.0.1:5061", 2, 0, "Via",
     "SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK4a3c.1b5e0f7d7a2c6b1e9f3d8a4c2b6e1f0a.0"},
    {"sipp-options.sip", 0, "OPTIONS", "", "bridge.xmpp.test", "2417SIPpTag002",
     "sip:bridge.xmpp.test", "2-2417@127.0.0.1", 1, "z9hG4bK-2417-2-0", "127.0.0.1:5070",
     0, 0, "Accept", "application/sdp"},
    {"compact-message.sip", 0, "MESSAGE", "bob", "xmpp.test", "cmp1", "sip:bob@xmpp.test",
     "compact-1@127.0.0.1", 1, "z9hG4bK-compact-1", "127.0.0.1:5070", 0, 0,
     "Content-Type", "text/plain"},
    {"bad-no-cseq.sip", -EBADMSG, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0, 0,
     NULL, NULL},
    {"bad-cseq-method.sip", -EBADMSG, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL,
     0, 0, NULL, NULL},
    {"bad-garbage.sip", -EBADMSG, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0, 0,
     NULL, NULL},
};

static void check_str(const char *file, const char *what, const char *got,
                      const char *want)
{
	if (strcmp(got, want) != 0)
		fail_msg("%s: %s '%s', want '%s'", file, what, got, want);
}

static void test_golden_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(golden_cases) / sizeof(golden_cases[0]); i++) {
		const struct golden_case *c = &golden_cases[i];
		size_t len;
		char *text = golden_load(c->file, "b1d9e", &len);
		assert_non_null(text);
		struct sipm *m = NULL;
		const char *why = NULL;
		int e = sipm_parse(&m, text, len, &why);
		free(text);
		if (e != c->err)
			fail_msg("%s: parse %d (%s), want %d", c->file, e, why ? why : "",
			         c->err);
		if (e) {
			assert_non_null(why);
			continue;
		}
		assert_true(sipm_is_request(m));
		check_str(c->file, "method", sipm_method(m), c->method);
		check_str(c->file, "R-URI user", sipm_ruri_user(m), c->ruri_user);
		check_str(c->file, "R-URI host", sipm_ruri_host(m), c->ruri_host);
		check_str(c->file, "From tag", sipm_from_tag(m), c->from_tag);
		check_str(c->file, "To URI", sipm_to_uri(m), c->to_uri);
		check_str(c->file, "Call-ID", sipm_call_id(m), c->call_id);
		check_str(c->file, "branch", sipm_via_branch(m), c->branch);
		check_str(c->file, "sent-by", sipm_via_sentby(m), c->sentby);
		if (sipm_cseq(m) != c->cseq)
			fail_msg("%s: CSeq %u, want %u", c->file, sipm_cseq(m), c->cseq);
		size_t nrr;
		sipm_record_routes(m, &nrr);
		if (nrr != c->nrr)
			fail_msg("%s: %zu Record-Route, want %zu", c->file, nrr, c->nrr);
		if (sipm_supported(m, "ms-piggyback-first-notify") != (c->piggyback != 0))
			fail_msg("%s: piggyback support misread", c->file);
		const char *v = sipm_header(m, c->probe, 0);
		check_str(c->file, c->probe, v ? v : "(absent)", c->probe_value);
		sipm_free(m);
	}
}

static void test_golden_body(void **state)
{
	(void)state;
	size_t len, blen;
	char *text = golden_load("lync-invite-im.sip", NULL, &len);
	struct sipm *m = NULL;
	assert_int_equal(sipm_parse(&m, text, len, NULL), 0);
	const char *body = sipm_body(m, &blen);
	assert_non_null(body);
	assert_true(sipm_sdp_is_im(body, blen));
	assert_non_null(
	    strstr(sipm_header(m, "Ms-Text-Format", 0), "ms-body=SGVsbG8gQm9i"));
	assert_true(sipm_supported(m, "ms-early-media"));
	assert_false(sipm_supported(m, "ms-early"));
	sipm_free(m);
	free(text);

	text = golden_load("bad-invite-audio.sip", NULL, &len);
	assert_int_equal(sipm_parse(&m, text, len, NULL), 0);
	body = sipm_body(m, &blen);
	assert_false(sipm_sdp_is_im(body, blen));
	sipm_free(m);
	free(text);
}

static const struct reply_case {
	const char *file;
	const char *src_ip;
	unsigned src_port;
	int code;
	const char *reason;
	const char *want[4]; /* lines (or prefixes) the answer must hold, in order */
	int err;
} reply_cases[] = {
    {"lync-subscribe-piggyback.sip",
     "127.0.0.1",
     40000,
     200,
     NULL,
     {"SIP/2.0 200 OK\r\n",
      "Via: SIP/2.0/TLS "
      "10.0.0.10:5061;branch=z9hG4bK6E1B2C3D.4A5B6C7D8E9F0A1B;branched=FALSE;"
      "ms-internal-info=\"ccYk3bdr7fGz5qW8nA0AAA\";received=127.0.0.1\r\n",
      "Via: SIP/2.0/TLS "
      "10.0.0.20:51234;ms-received-port=51234;ms-received-cid=2A1F00\r\n",
      "To: <sip:bob@xmpp.test>;tag=ourtag\r\n"},
     0},
    {"sipp-options.sip",
     "127.0.0.1",
     5071,
     404,
     "Not Found (domain not bridged)",
     {"SIP/2.0 404 Not Found (domain not bridged)\r\n",
      "Via: SIP/2.0/UDP "
      "127.0.0.1:5070;branch=z9hG4bK-2417-2-0;rport=5071;received=127.0.0.1\r\n",
      "CSeq: 1 OPTIONS\r\n", "Content-Length: 0\r\n\r\n"},
     0},
    {"kamailio-message-relayed.sip",
     "127.0.0.2",
     5061,
     480,
     "evil\r\nX-Injected: 1",
     {"SIP/2.0 480 evil  X-Injected: 1\r\n",
      "Via: SIP/2.0/TLS "
      "127.0.0.1:5061;branch=z9hG4bK4a3c.1b5e0f7d7a2c6b1e9f3d8a4c2b6e1f0a.0;"
      "received=127.0.0.2\r\n",
      "Via: SIP/2.0/UDP 127.0.0.1:5070;rport=5070;branch=z9hG4bK-2417-1-0\r\n",
      "From: <sip:sipp@sip.test>;tag=2417SIPpTag001\r\n"},
     0},
    {"lync-bye.sip",
     "127.0.0.1",
     1,
     200,
     NULL,
     {"To: <sip:bob@xmpp.test>;tag=b1d9e\r\n", NULL, NULL, NULL},
     0},
    {"bad-no-cseq.sip", "127.0.0.1", 1, 400, NULL, {NULL, NULL, NULL, NULL}, -EBADMSG},
    {"bad-garbage.sip", "127.0.0.1", 1, 400, NULL, {NULL, NULL, NULL, NULL}, -EBADMSG},
    {"bad-cseq-method.sip",
     "127.0.0.1",
     1,
     400,
     NULL,
     {"SIP/2.0 400 Bad Request\r\n", "CSeq: 1 INVITE\r\n", NULL, NULL},
     0},
    {"sipp-options.sip", "127.0.0.1", 1, 700, NULL, {NULL, NULL, NULL, NULL}, -EINVAL},
};

static void test_reply_build(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		const struct reply_case *c = &reply_cases[i];
		size_t len, olen;
		char *req = golden_load(c->file, "b1d9e", &len), *out = NULL;
		assert_non_null(req);
		struct sipm_hdr h[] = {{"X-Extra", "bad\r\nX-Injected: 2"}};
		struct sipm_reply r = {.code = c->code,
		                       .reason = c->reason,
		                       .to_tag = "ourtag",
		                       .src_ip = c->src_ip,
		                       .src_port = c->src_port,
		                       .hdrs = h,
		                       .nhdrs = 1};
		int e = sipm_reply_build(req, len, &r, &out, &olen);
		free(req);
		if (e != c->err)
			fail_msg("%s: %d, want %d", c->file, e, c->err);
		if (e)
			continue;
		const char *at = out;
		for (size_t k = 0; k < 4 && c->want[k]; k++) {
			const char *p = strstr(at, c->want[k]);
			if (!p)
				fail_msg("%s: no '%s' after position %zu in:\n%s",
				         c->file, c->want[k], (size_t)(at - out), out);
			at = p + strlen(c->want[k]);
		}
		if (strstr(out, "\r\nX-Injected"))
			fail_msg("%s: a line break from a caller reached the wire:\n%s",
			         c->file, out);
		/* what we write parses back */
		struct sipm *m = NULL;
		assert_int_equal(sipm_parse(&m, out, olen, NULL), 0);
		assert_int_equal(sipm_status(m), c->code);
		sipm_free(m);
		free(out);
	}
}

/* A request lacking headers a response copies (RFC 3261 section 8.2.6.2). */
static const struct partial_case {
	const char *file;
	int err;
	const char *has[3];    /* lines (or prefixes) the answer holds */
	const char *absent[3]; /* header lines it must not hold */
} partial_cases[] = {
    /* RFC 4475 section 3.3.1: no Call-ID, From or To; ideally a 400. Its Via
     * and CSeq route and match it (RFC 3261 sections 18.2.2 and 17.1.3). */
    {"bad-no-dialog-ids.sip",
     0,
     {"SIP/2.0 400 Bad Request\r\n",
      "\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-bad-3;rport=5070",
      "\r\nCSeq: 193942 MESSAGE\r\n"},
     {"\r\nFrom:", "\r\nTo:", "\r\nCall-ID:"}},
    /* without a CSeq nothing could match the answer: none is built */
    {"bad-no-cseq.sip", -EBADMSG, {NULL, NULL, NULL}, {NULL, NULL, NULL}},
};

static void test_reply_build_partial(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(partial_cases) / sizeof(partial_cases[0]); i++) {
		const struct partial_case *c = &partial_cases[i];
		size_t len, olen;
		char *req = golden_load(c->file, NULL, &len), *out = NULL;
		assert_non_null(req);
		struct sipm_reply r = {.code = 400,
		                       .to_tag = "ourtag",
		                       .src_ip = "127.0.0.1",
		                       .src_port = 5070};
		int e = sipm_reply_build(req, len, &r, &out, &olen);
		free(req);
		if (e != c->err)
			fail_msg("%s: %d, want %d", c->file, e, c->err);
		if (e)
			continue;
		for (size_t k = 0; k < 3 && c->has[k]; k++)
			if (!strstr(out, c->has[k]))
				fail_msg("%s: no '%s' in:\n%s", c->file, c->has[k], out);
		for (size_t k = 0; k < 3 && c->absent[k]; k++)
			if (strstr(out, c->absent[k]))
				fail_msg(
				    "%s: '%s' in an answer to a request without it:\n%s",
				    c->file, c->absent[k] + 2, out);
		free(out);
	}
}

static void test_request_build(void **state)
{
	(void)state;
	const char *routes[] = {"<sip:lync01.sip.test:5061;transport=tls;lr>"};
	struct sipm_hdr h[] = {{"Event", "presence"}};
	struct sipm_request rq = {
	    .method = "NOTIFY",
	    .ruri = "sip:alice@sip.test;opaque=user:epid:x;gruu",
	    .via = "SIP/2.0/TLS bridge.xmpp.test:5061;branch=z9hG4bKabc;rport",
	    .from = "<sip:bob@xmpp.test>;tag=1",
	    .to = "<sip:alice@sip.test>;tag=2",
	    .call_id = "cid@x",
	    .cseq = 7,
	    .contact = "<sip:bridge.xmpp.test:5061;transport=tls>",
	    .routes = routes,
	    .nroutes = 1,
	    .hdrs = h,
	    .nhdrs = 1,
	    .content_type = "application/pidf+xml",
	    .body = "<presence/>",
	    .body_len = 11};
	char *out = NULL;
	size_t len;
	assert_int_equal(sipm_request_build(&rq, &out, &len), 0);
	assert_non_null(
	    strstr(out, "NOTIFY sip:alice@sip.test;opaque=user:epid:x;gruu SIP/2.0\r\n"));
	assert_non_null(
	    strstr(out, "\r\nRoute: <sip:lync01.sip.test:5061;transport=tls;lr>\r\n"));
	assert_non_null(strstr(out, "\r\nCSeq: 7 NOTIFY\r\n"));
	assert_non_null(strstr(out, "\r\nContent-Length: 11\r\n\r\n<presence/>"));
	struct sipm *m = NULL;
	assert_int_equal(sipm_parse(&m, out, len, NULL), 0);
	assert_string_equal(sipm_via_branch(m), "z9hG4bKabc");
	assert_string_equal(sipm_header(m, "Event", 0), "presence");
	sipm_free(m);
	free(out);
	rq.call_id = NULL;
	assert_int_equal(sipm_request_build(&rq, &out, &len), -EINVAL);
}

static void test_sdp_answer(void **state)
{
	(void)state;
	char *sdp = NULL;
	size_t len;
	assert_int_equal(sipm_sdp_im_answer("192.0.2.1", &sdp, &len), 0);
	assert_non_null(strstr(sdp, "c=IN IP4 192.0.2.1\r\n"));
	assert_non_null(strstr(sdp, "m=message 5060 sip null\r\n"));
	assert_true(sipm_sdp_is_im(sdp, len));
	free(sdp);
	assert_int_equal(sipm_sdp_im_answer("::1", &sdp, &len), 0);
	assert_non_null(strstr(sdp, "c=IN IP6 ::1\r\n"));
	free(sdp);
	static const struct {
		const char *sdp;
		bool im;
	} rows[] = {
	    {"m=message 5060 sip null\r\n", true},
	    {"v=0\r\nm=message 5060 SIP null", true},
	    {"m=message 5060 tcp/msrp *\r\n", false},
	    {"m=audio 5060 RTP/AVP 0\r\n", false},
	    {"", false},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (sipm_sdp_is_im(rows[i].sdp, strlen(rows[i].sdp)) != rows[i].im)
			fail_msg("row %zu misread", i);
}

/* Nothing a peer sends may crash the parser: every prefix of every golden
 * message, and byte-flipped copies, parse or fail cleanly. */
static void test_parse_mangled(void **state)
{
	(void)state;
	static const char *files[] = {
	    "lync-invite-im.sip", "kamailio-message-relayed.sip", "lync-benotify.sip"};
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		size_t len;
		char *text = golden_load(files[f], "t", &len);
		for (size_t cut = 0; cut <= len; cut += 7) {
			struct sipm *m = NULL;
			if (sipm_parse(&m, text, cut, NULL) == 0)
				sipm_free(m);
			char *out = NULL;
			size_t ol;
			struct sipm_reply r = {
			    .code = 400, .src_ip = "127.0.0.1", .src_port = 1};
			if (sipm_reply_build(text, cut, &r, &out, &ol) == 0)
				free(out);
		}
		srand(42);
		for (int k = 0; k < 200; k++) {
			char *copy = malloc(len);
			memcpy(copy, text, len);
			for (int j = 0; j < 4; j++)
				copy[rand() % (int)len] = (char)(rand() & 0xff);
			struct sipm *m = NULL;
			if (sipm_parse(&m, copy, len, NULL) == 0)
				sipm_free(m);
			free(copy);
		}
		free(text);
	}
}

/* ---- RFC 4475 rules: start line, branch, Require, media types -------------- */

static const struct start_case {
	const char *line;
	int want;
} start_cases[] = {
    /* RFC 3261 section 8.1.1.1 / RFC 4475 section 3.1.2.16: only SIP/2.0. */
    {"OPTIONS sip:t.watson@example.org SIP/7.0\r\n", 505},
    {"OPTIONS sip:a@b SIP/2.1\r\n", 505},
    {"OPTIONS sip:a@b SIP/20\r\n", 505},
    {"OPTIONS sip:a@b SIP/2.0\r\n", 0},
    /* RFC 3261 section 8.2.2.1 / RFC 4475 sections 3.3.2 and 3.3.3: 416. */
    {"OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0\r\n", 416},
    {"OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0\r\n", 416},
    {"MESSAGE tel:+15551234 SIP/2.0\r\n", 416},
    {"MESSAGE SIPS:a@b SIP/2.0\r\n", 0},
    {"MESSAGE Sip:a@b SIP/2.0\r\n", 0},
    /* Other shapes are the parser's (RFC 4475 sections 3.1.2.7-3.1.2.10). */
    {"INVITE <sip:user@example.com> SIP/2.0\r\n", 0},
    {"INVITE  sip:user@example.com  SIP/2.0\r\n", 0},
    {"INVITE sip:user@example.com; lr SIP/2.0\r\n", 0},
    {"OPTIONS sip:a@b SIP/2.0  \r\n", 0},
    {"OPTIONS 1bad:x SIP/2.0\r\n", 0},
    {"OPTIONS nocolon SIP/2.0\r\n", 0},
    {"OPTIONS sip:a@b HTTP/1.1\r\n", 0},
    /* A status line is never judged here. */
    {"SIP/2.0 200 OK\r\n", 0},
    {"SIP/7.0 200 OK\r\n", 0},
    {"garbage", 0},
};

static void test_start_line_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(start_cases) / sizeof(start_cases[0]); i++) {
		const struct start_case *c = &start_cases[i];
		int got = sipm_start_line_check(c->line, strlen(c->line));
		if (got != c->want)
			fail_msg("case %zu (%s): got %d, want %d", i, c->line, got,
			         c->want);
	}
}

static const struct branch_case {
	const char *branch;
	bool unique;
} branch_cases[] = {
    /* RFC 3261 section 17.2.3; RFC 4475 section 3.2.1: the bare cookie. */
    {"z9hG4bK", false},
    {"z9hG4bKkdjuw", true},
    {"z9hG4bK-.!%66*_+`'~", true},
    {"390skdjuw", false},
    {"", false},
    {"z9hG4b", false},
    {"Z9HG4BKabc", false}, /* the cookie is case-sensitive */
};

static void test_branch_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(branch_cases) / sizeof(branch_cases[0]); i++)
		if (sipm_branch_unique(branch_cases[i].branch) != branch_cases[i].unique)
			fail_msg("case %zu (%s)", i, branch_cases[i].branch);
}

static const struct require_case {
	const char *require, *supported;
	size_t want_n;
	const char *want;
} require_cases[] = {
    /* RFC 3261 section 8.2.2.3; RFC 4475 section 3.3.5. */
    {"nothingSupportsThis, nothingSupportsThisEither", "ms-benotify", 2,
     "nothingSupportsThis, nothingSupportsThisEither"},
    {"ms-benotify", "ms-piggyback-first-notify, ms-benotify", 0, ""},
    {"MS-BENOTIFY", "ms-benotify", 0, ""}, /* option tags are case-insensitive */
    {"ms-benotify,100rel", "ms-benotify", 1, "100rel"},
    {" , timer ,, ", "ms-benotify", 1, "timer"},
    {"", "ms-benotify", 0, ""},
    {"ms-ben", "ms-benotify", 1, "ms-ben"}, /* whole tags only */
};

static void test_require_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(require_cases) / sizeof(require_cases[0]); i++) {
		const struct require_case *c = &require_cases[i];
		char out[200];
		size_t n = sipm_unsupported(c->require, c->supported, out, sizeof(out));
		if (n != c->want_n || strcmp(out, c->want) != 0)
			fail_msg("case %zu: got %zu '%s', want %zu '%s'", i, n, out,
			         c->want_n, c->want);
	}
	char small[8];
	assert_int_equal(sipm_unsupported("aaaaaa, bbbbbb", "", small, sizeof(small)), 2);
	assert_true(strlen(small) < sizeof(small));
}

static const struct type_case {
	const char *list, *type;
	bool in;
} type_cases[] = {
    /* RFC 3261 sections 8.2.3 and 20.1; RFC 4475 sections 3.3.6 and 3.3.15. */
    {"application/sdp", "application/unknownformat", false},
    {"application/sdp", "application/sdp", true},
    {"application/sdp", "Application/SDP; charset=utf-8", true},
    {"text/nobodyKnowsThis", "application/sdp", false},
    {"text/plain, application/sdp;q=0.5", "application/sdp", true},
    {"application/*", "application/sdp", true},
    {"*/*", "application/sdp", true},
    {"text/*", "application/sdp", false},
    {"application/sdpx", "application/sdp", false},
    {"", "application/sdp", false},
};

static void test_type_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(type_cases) / sizeof(type_cases[0]); i++)
		if (sipm_type_in(type_cases[i].list, type_cases[i].type) !=
		    type_cases[i].in)
			fail_msg("case %zu: %s in %s", i, type_cases[i].type,
			         type_cases[i].list);
}

/* RFC 3261 section 25.1 quoted-pair; RFC 4475 section 3.1.1.2: a NUL escaped
 * inside a quoted string is valid, anywhere else in the header it is not. */
static const struct nul_case {
	const char *pre, *post; /* the message is pre NUL post */
	int want;
} nul_cases[] = {
    {"To: \"NUL:\\", "\" <sip:b@h>\r\n", 0},
    {"To: NUL:\\", " <sip:b@h>\r\n", -EBADMSG},
    {"To: \"NUL:", "\" <sip:b@h>\r\n", -EBADMSG},
    {"To: \"a\" <sip:b@h>", "\r\n", -EBADMSG},
};

static void test_nul_table(void **state)
{
	(void)state;
	const char *head =
	    "OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
	    "From: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n";
	const char *tail = "Content-Length: 0\r\n\r\n";
	for (size_t i = 0; i < sizeof(nul_cases) / sizeof(nul_cases[0]); i++) {
		char buf[512];
		size_t n = 0;
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", head,
		                      nul_cases[i].pre);
		buf[n++] = '\0';
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", nul_cases[i].post,
		                      tail);
		struct sipm *m = NULL;
		int e = sipm_parse(&m, buf, n, NULL);
		if (e != nul_cases[i].want)
			fail_msg("case %zu: got %d, want %d", i, e, nul_cases[i].want);
		if (!e) {
			assert_string_equal(sipm_to_uri(m), "sip:b@h");
			size_t len;
			assert_memory_equal(sipm_text(m, &len), buf,
			                    n); /* kept as sent */
		}
		sipm_free(m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_raw_header_table),
	    cmocka_unit_test(test_golden_parse),
	    cmocka_unit_test(test_golden_body),
	    cmocka_unit_test(test_reply_build),
	    cmocka_unit_test(test_reply_build_partial),
	    cmocka_unit_test(test_request_build),
	    cmocka_unit_test(test_sdp_answer),
	    cmocka_unit_test(test_parse_mangled),
	    cmocka_unit_test(test_start_line_table),
	    cmocka_unit_test(test_branch_table),
	    cmocka_unit_test(test_require_table),
	    cmocka_unit_test(test_type_table),
	    cmocka_unit_test(test_nul_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

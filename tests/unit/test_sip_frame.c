/* Stream and datagram framing of SIP messages (sipt.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/sipt.h"

#define OPT_HDR                                                                          \
	"OPTIONS sip:b@xmpp.test SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"      \
	"From: <sip:a@sip.test>;tag=1\r\nTo: <sip:b@xmpp.test>\r\nCall-ID: x\r\n"        \
	"CSeq: 1 OPTIONS\r\n"
#define L(s) (sizeof(s) - 1)
#define MSG0 OPT_HDR "Content-Length: 0\r\n\r\n"
#define MSG5 OPT_HDR "Content-Length: 5\r\n\r\nhello"

static const struct frame_case {
	const char *name;
	const char *in;
	size_t max;
	enum sipt_frame_kind kind;
	size_t len, hdr_len, body_len;
	const char *why; /* substring, or NULL for none */
} frame_cases[] = {
    {"empty", "", 0, SIPT_FRAME_MORE, 0, 0, 0, NULL},
    {"no body", MSG0, 0, SIPT_FRAME_MSG, L(MSG0), L(MSG0), 0, NULL},
    {"body", MSG5, 0, SIPT_FRAME_MSG, L(MSG5), L(MSG5) - 5, 5, NULL},
    {"body still coming", OPT_HDR "Content-Length: 5\r\n\r\nhel", 0, SIPT_FRAME_MORE, 0,
     0, 0, NULL},
    {"header still coming", OPT_HDR "Content-Len", 0, SIPT_FRAME_MORE, 0, 0, 0, NULL},
    {"compact l", OPT_HDR "l: 5\r\n\r\nhello", 0, SIPT_FRAME_MSG,
     L(OPT_HDR "l: 5\r\n\r\nhello"), L(OPT_HDR "l: 5\r\n\r\n"), 5, NULL},
    {"lower case, spaces before colon", OPT_HDR "content-length  :  2\r\n\r\nhi", 0,
     SIPT_FRAME_MSG, L(OPT_HDR "content-length  :  2\r\n\r\nhi"),
     L(OPT_HDR "content-length  :  2\r\n\r\n"), 2, NULL},
    {"ping", "\r\n\r\n", 0, SIPT_FRAME_PING, 4, 0, 0, NULL},
    {"ping then message", "\r\n\r\n" MSG0, 0, SIPT_FRAME_PING, 4, 0, 0, NULL},
    {"lone CRLF may grow into a ping", "\r\n", 0, SIPT_FRAME_MORE, 0, 0, 0, NULL},
    {"CRLF CR may grow into a ping", "\r\n\r", 0, SIPT_FRAME_MORE, 0, 0, 0, NULL},
    {"pong before a message", "\r\nOPTIONS", 0, SIPT_FRAME_CRLF, 2, 0, 0, NULL},
    {"bare LF", "\nX", 0, SIPT_FRAME_CRLF, 1, 0, 0, NULL},
    {"stray CR", "\rX", 0, SIPT_FRAME_BAD, 0, 0, 0, "carriage return"},
    {"missing Content-Length", OPT_HDR "\r\n", 0, SIPT_FRAME_MSG, L(OPT_HDR "\r\n"),
     L(OPT_HDR "\r\n"), 0, "Content-Length is missing"},
    {"Content-Length not a number", OPT_HDR "Content-Length: 1x\r\n\r\n", 0,
     SIPT_FRAME_BAD, 0, 0, 0, "not a number"},
    {"Content-Length negative", OPT_HDR "Content-Length: -1\r\n\r\n", 0, SIPT_FRAME_BAD,
     0, 0, 0, "not a number"},
    {"Content-Length empty", OPT_HDR "Content-Length:\r\n\r\n", 0, SIPT_FRAME_BAD, 0, 0,
     0, "not a number"},
    {"two Content-Lengths disagree", OPT_HDR "Content-Length: 1\r\nl: 2\r\n\r\nab", 0,
     SIPT_FRAME_BAD, 0, 0, 0, "disagree"},
    {"two Content-Lengths agree", OPT_HDR "Content-Length: 2\r\nl: 2\r\n\r\nab", 0,
     SIPT_FRAME_MSG, L(OPT_HDR "Content-Length: 2\r\nl: 2\r\n\r\nab"),
     L(OPT_HDR "Content-Length: 2\r\nl: 2\r\n\r\n"), 2, NULL},
    {"absurd Content-Length", OPT_HDR "Content-Length: 99999999999999999999\r\n\r\n", 0,
     SIPT_FRAME_BAD, 0, 0, 0, "absurdly large"},
    {"over the limit, header readable", OPT_HDR "Content-Length: 500\r\n\r\nxx", 200,
     SIPT_FRAME_TOO_LARGE, L(OPT_HDR "Content-Length: 500\r\n\r\n"),
     L(OPT_HDR "Content-Length: 500\r\n\r\n"), 500, "larger"},
    {"no end of header within the limit", OPT_HDR "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaa", 100,
     SIPT_FRAME_BAD, 0, 0, 0, "no end of header"},
};

static void test_frame_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(frame_cases) / sizeof(frame_cases[0]); i++) {
		const struct frame_case *c = &frame_cases[i];
		struct sipt_frame f;
		sipt_frame_next(c->in, strlen(c->in), c->max ? c->max : SIPT_MAX_MSG, &f);
		if (f.kind != c->kind)
			fail_msg("%s: kind %d, want %d", c->name, f.kind, c->kind);
		if (c->kind != SIPT_FRAME_MORE && c->kind != SIPT_FRAME_BAD &&
		    f.len != c->len)
			fail_msg("%s: len %zu, want %zu", c->name, f.len, c->len);
		if ((c->kind == SIPT_FRAME_MSG || c->kind == SIPT_FRAME_TOO_LARGE) &&
		    (f.hdr_len != c->hdr_len || f.body_len != c->body_len))
			fail_msg("%s: hdr %zu body %zu, want %zu %zu", c->name, f.hdr_len,
			         f.body_len, c->hdr_len, c->body_len);
		if (c->why && (!f.why || !strstr(f.why, c->why)))
			fail_msg("%s: why '%s', want '%s'", c->name,
			         f.why ? f.why : "(null)", c->why);
		if (!c->why && f.why)
			fail_msg("%s: unexpected why '%s'", c->name, f.why);
	}
}

/* A message arriving one byte per read is framed only once it is whole, and
 * every prefix leaves the framer asking for more. */
static void test_split_reads(void **state)
{
	(void)state;
	const char *m = MSG5;
	size_t n = strlen(m);
	for (size_t i = 1; i < n; i++) {
		struct sipt_frame f;
		sipt_frame_next(m, i, SIPT_MAX_MSG, &f);
		if (f.kind != SIPT_FRAME_MORE)
			fail_msg("prefix of %zu bytes: kind %d", i, f.kind);
	}
	struct sipt_frame f;
	sipt_frame_next(m, n, SIPT_MAX_MSG, &f);
	assert_int_equal(f.kind, SIPT_FRAME_MSG);
	assert_int_equal(f.len, n);
}

/* Several messages and keep-alives in one read come out in order. */
static void test_many_in_one_read(void **state)
{
	(void)state;
	const char *in = "\r\n\r\n" MSG5 "\r\n" MSG0 MSG5 "\r\n\r\n";
	static const enum sipt_frame_kind want[] = {SIPT_FRAME_PING, SIPT_FRAME_MSG,
	                                            SIPT_FRAME_CRLF, SIPT_FRAME_MSG,
	                                            SIPT_FRAME_MSG,  SIPT_FRAME_PING};
	size_t off = 0, len = strlen(in);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct sipt_frame f;
		sipt_frame_next(in + off, len - off, SIPT_MAX_MSG, &f);
		if (f.kind != want[i])
			fail_msg("frame %zu: kind %d, want %d", i, f.kind, want[i]);
		off += f.len;
	}
	assert_int_equal(off, len);
}

/* Frames of in as a stream read chunk bytes at a time (chunk 0: all at once
 * through sipt_frame_next), written to out as "kind:len " up to the first BAD
 * or the end; the unconsumed rest moves to the front of the buffer the way the
 * SIP leg's connection does. */
static void stream_frames(const char *in, size_t chunk, size_t max, char *out,
                          size_t outsz)
{
	char buf[2048];
	size_t have = 0, fed = 0, len = strlen(in), o = 0;
	assert_true(len <= sizeof(buf));
	struct sipt_scan sc = {0, 0};
	out[0] = '\0';
	while (fed < len || chunk == 0) {
		size_t n = chunk ? (len - fed < chunk ? len - fed : chunk) : len;
		memcpy(buf + have, in + fed, n);
		have += n;
		fed += n;
		size_t off = 0;
		for (;;) {
			struct sipt_frame f;
			if (chunk)
				sipt_frame_more(buf + off, have - off, max, &sc, &f);
			else
				sipt_frame_next(buf + off, have - off, max, &f);
			if (f.kind == SIPT_FRAME_MORE || off == have)
				break;
			o += (size_t)snprintf(out + o, outsz - o, "%d:%zu ", f.kind,
			                      f.len);
			if (f.kind == SIPT_FRAME_BAD)
				return;
			off += f.len ? f.len : 1;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
		if (chunk == 0)
			break;
	}
}

/* sipt_frame_more over any read size cuts the same frames as sipt_frame_next
 * over the whole stream, for every case of the table and a mixed stream. */
static void test_resume_same_frames(void **state)
{
	(void)state;
	const char *mixed = "\r\n\r\n" MSG5 "\r\n" MSG0 MSG5 "\r\n\r\n";
	size_t ncase = sizeof(frame_cases) / sizeof(frame_cases[0]);
	for (size_t i = 0; i <= ncase; i++) {
		const char *in = i < ncase ? frame_cases[i].in : mixed;
		size_t max =
		    i < ncase && frame_cases[i].max ? frame_cases[i].max : SIPT_MAX_MSG;
		char want[256], got[256];
		stream_frames(in, 0, max, want, sizeof(want));
		for (size_t chunk = 1; chunk <= 9; chunk++) {
			stream_frames(in, chunk, max, got, sizeof(got));
			if (strcmp(want, got) != 0)
				fail_msg("%s, %zu-byte reads: frames '%s', want '%s'",
				         i < ncase ? frame_cases[i].name : "mixed", chunk,
				         got, want);
		}
	}
}

/* What a piecewise scan remembers: a header arriving a byte at a time is
 * searched once (scanned follows the data), and once it is whole only the
 * body's length is awaited. */
static void test_resume_state(void **state)
{
	(void)state;
	const char *m = MSG5;
	size_t n = strlen(m), hdr = n - 5;
	struct sipt_scan sc = {0, 0};
	struct sipt_frame f;
	for (size_t i = 1; i < hdr; i++) {
		sipt_frame_more(m, i, SIPT_MAX_MSG, &sc, &f);
		assert_int_equal(f.kind, SIPT_FRAME_MORE);
		if (sc.scanned != i || sc.need != 0)
			fail_msg("after %zu bytes: scanned %zu need %zu", i, sc.scanned,
			         sc.need);
	}
	for (size_t i = hdr; i < n; i++) {
		sipt_frame_more(m, i, SIPT_MAX_MSG, &sc, &f);
		assert_int_equal(f.kind, SIPT_FRAME_MORE);
		assert_int_equal(sc.need, n);
	}
	sipt_frame_more(m, n, SIPT_MAX_MSG, &sc, &f);
	assert_int_equal(f.kind, SIPT_FRAME_MSG);
	assert_int_equal(f.len, n);
	assert_int_equal(sc.scanned, 0);
	assert_int_equal(sc.need, 0);
}

static const struct dgram_case {
	const char *name;
	const char *in;
	int err;
	size_t skip, hdr, body;
} dgram_cases[] = {
    {"no length: rest is body", OPT_HDR "\r\nabc", 0, 0, L(OPT_HDR "\r\n"), 3},
    {"shorter length drops the extra", OPT_HDR "l: 1\r\n\r\nabc", 0, 0,
     L(OPT_HDR "l: 1\r\n\r\n"), 1},
    {"longer length is an error", OPT_HDR "l: 9\r\n\r\nabc", -EBADMSG, 0, 0, 0},
    {"leading CRLFs skipped", "\r\n\r\n" MSG0, 0, 4, L(MSG0), 0},
    {"keep-alive only", "\r\n\r\n", -ENODATA, 0, 0, 0},
    {"no end of header", "OPTIONS sip:x SIP/2.0\r\nVia: y", -EBADMSG, 0, 0, 0},
    {"bad length", OPT_HDR "Content-Length: abc\r\n\r\n", -EBADMSG, 0, 0, 0},
};

static void test_dgram_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(dgram_cases) / sizeof(dgram_cases[0]); i++) {
		const struct dgram_case *c = &dgram_cases[i];
		size_t skip = 99, hdr = 99, body = 99;
		const char *why = NULL;
		int e = sipt_dgram(c->in, strlen(c->in), &skip, &hdr, &body, &why);
		if (e != c->err)
			fail_msg("%s: %d, want %d", c->name, e, c->err);
		if (e == -EBADMSG && !why)
			fail_msg("%s: no reason given", c->name);
		if (!e && (skip != c->skip || hdr != c->hdr || body != c->body))
			fail_msg("%s: skip %zu hdr %zu body %zu, want %zu %zu %zu",
			         c->name, skip, hdr, body, c->skip, c->hdr, c->body);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frame_table),
	    cmocka_unit_test(test_split_reads),
	    cmocka_unit_test(test_many_in_one_read),
	    cmocka_unit_test(test_resume_same_frames),
	    cmocka_unit_test(test_resume_state),
	    cmocka_unit_test(test_dgram_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

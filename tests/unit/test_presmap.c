#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/presmap.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MAP_PATH     PB_SOURCE_DIR "/mappings/presence.map"
#define NOROW        (-1) /* the map has no row, or its row says '-' */

static char *slurp(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n = -1;

	if (!f) {
		fail_msg("cannot open %s", path);
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		fail_msg("cannot size %s", path);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		fail_msg("cannot read %s", path);
	buf[n] = '\0';
	fclose(f);
	*lenp = (size_t)n;
	return buf;
}

static int load_shipped(void **state)
{
	struct diag_list dl;
	struct presmap *m = NULL;
	size_t len;
	char *text = slurp(MAP_PATH, &len);

	diag_init(&dl);
	int err = presmap_parse(&m, text, len, "presence.map", &dl);
	for (size_t i = 0; i < dl.n; i++) {
		char line[1200];
		diag_format(&dl.v[i], line, sizeof(line));
		print_error("%s\n", line);
	}
	diag_free(&dl);
	free(text);
	if (err)
		return -1;
	*state = m;
	return 0;
}

static int free_map(void **state)
{
	presmap_free(*state);
	return 0;
}

/* The shipped file parses with no diagnostic at all, not even a warning. */
static void test_shipped_clean(void **state)
{
	struct diag_list dl;
	struct presmap *m = (struct presmap *)1;
	size_t len;
	char *text = slurp(MAP_PATH, &len);

	(void)state;
	diag_init(&dl);
	assert_int_equal(presmap_parse(&m, text, len, MAP_PATH, &dl), 0);
	assert_int_equal(dl.n, 0);
	presmap_free(m);
	diag_free(&dl);
	free(text);
}

static void expect(const char *kind, const char *what, int err, enum pres_activity got,
                   int want)
{
	if (want == NOROW && err != -ENOENT)
		fail_msg("%s '%s': got %s (%d), want no decision", kind, what,
		         err ? "error" : pres_activity_name(got), err);
	if (want != NOROW && (err != 0 || (int)got != want))
		fail_msg("%s '%s': got %s (%d), want %s", kind, what,
		         err ? "no decision" : pres_activity_name(got), err,
		         pres_activity_name((enum pres_activity)want));
}

/* One case per show-in row, plus what is not a show. */
static const struct {
	const char *show;
	int want;
} show_in_cases[] = {
    {NULL, PRES_ACT_AVAILABLE},
    {"", PRES_ACT_AVAILABLE},
    {"chat", PRES_ACT_CHAT},
    {"away", PRES_ACT_AWAY},
    {"xa", PRES_ACT_XA},
    {"dnd", PRES_ACT_DND},
    {"none", NOROW},
    {"busy", NOROW},
    {"AWAY", NOROW},
};

static void test_show_in(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(show_in_cases); i++) {
		enum pres_activity a = PRES_ACT_COUNT;
		int err = presmap_show_in(*state, show_in_cases[i].show, &a);
		expect("show-in",
		       show_in_cases[i].show ? show_in_cases[i].show : "(null)", err, a,
		       show_in_cases[i].want);
	}
}

static const struct {
	enum pres_activity act;
	const char *show; /* NULL: no <show/> */
} show_out_cases[] = {
    {PRES_ACT_AVAILABLE, NULL}, {PRES_ACT_CHAT, "chat"},  {PRES_ACT_AWAY, "away"},
    {PRES_ACT_XA, "xa"},        {PRES_ACT_BUSY, "dnd"},   {PRES_ACT_DND, "dnd"},
    {PRES_ACT_BRB, "away"},     {PRES_ACT_OFFLINE, NULL},
};

static void test_show_out(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(show_out_cases); i++) {
		const char *got = presmap_show_out(*state, show_out_cases[i].act);
		const char *want = show_out_cases[i].show;
		if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0))
			fail_msg("show-out '%s': got %s, want %s",
			         pres_activity_name(show_out_cases[i].act),
			         got ? got : "none", want ? want : "none");
	}
}

/* Every RFC 4480 section 3.2 activity, plus a name that is not one. */
static const struct {
	const char *token;
	int want;
} rpid_in_cases[] = {
    {"appointment", PRES_ACT_BUSY},
    {"away", PRES_ACT_AWAY},
    {"breakfast", PRES_ACT_AWAY},
    {"busy", PRES_ACT_BUSY},
    {"dinner", PRES_ACT_AWAY},
    {"holiday", PRES_ACT_XA},
    {"in-transit", PRES_ACT_AWAY},
    {"looking-for-work", NOROW},
    {"lunch", PRES_ACT_AWAY},
    {"meal", PRES_ACT_AWAY},
    {"meeting", PRES_ACT_BUSY},
    {"on-the-phone", PRES_ACT_BUSY},
    {"other", NOROW},
    {"performance", PRES_ACT_BUSY},
    {"permanent-absence", PRES_ACT_XA},
    {"playing", PRES_ACT_AWAY},
    {"presentation", PRES_ACT_DND},
    {"shopping", PRES_ACT_AWAY},
    {"sleeping", PRES_ACT_XA},
    {"spectator", PRES_ACT_AWAY},
    {"steering", PRES_ACT_BUSY},
    {"travel", PRES_ACT_XA},
    {"tv", PRES_ACT_AWAY},
    {"unknown", NOROW},
    {"vacation", PRES_ACT_XA},
    {"working", NOROW},
    {"worship", PRES_ACT_BUSY},
    {"in-a-meeting", NOROW},
};

static void test_rpid_in(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(rpid_in_cases); i++) {
		enum pres_activity a = PRES_ACT_COUNT;
		int err = presmap_rpid_in(*state, rpid_in_cases[i].token, &a);
		expect("rpid-in", rpid_in_cases[i].token, err, a, rpid_in_cases[i].want);
	}
}

static const struct {
	enum pres_activity act;
	const char *token;
} rpid_out_cases[] = {
    {PRES_ACT_AVAILABLE, NULL}, {PRES_ACT_CHAT, NULL},    {PRES_ACT_AWAY, "away"},
    {PRES_ACT_XA, "away"},      {PRES_ACT_BUSY, "busy"},  {PRES_ACT_DND, "busy"},
    {PRES_ACT_BRB, "away"},     {PRES_ACT_OFFLINE, NULL},
};

static void test_rpid_out(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(rpid_out_cases); i++) {
		const char *got = presmap_rpid_out(*state, rpid_out_cases[i].act);
		const char *want = rpid_out_cases[i].token;
		if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0))
			fail_msg("rpid-out '%s': got %s, want %s",
			         pres_activity_name(rpid_out_cases[i].act),
			         got ? got : "-", want ? want : "-");
	}
}

/* Both edges of every lync-in range. */
static const struct {
	uint32_t avail;
	int want;
} lync_in_cases[] = {
    {0, NOROW},
    {2999, NOROW},
    {3000, PRES_ACT_CHAT},
    {3499, PRES_ACT_CHAT},
    {3500, PRES_ACT_AVAILABLE},
    {4499, PRES_ACT_AVAILABLE},
    {4500, PRES_ACT_AWAY},
    {5999, PRES_ACT_AWAY},
    {6000, PRES_ACT_BUSY},
    {7499, PRES_ACT_BUSY},
    {7500, PRES_ACT_BUSY},
    {8999, PRES_ACT_BUSY},
    {9000, PRES_ACT_DND},
    {11999, PRES_ACT_DND},
    {12000, PRES_ACT_BRB},
    {14999, PRES_ACT_BRB},
    {15000, PRES_ACT_AWAY},
    {15999, PRES_ACT_AWAY},
    {16000, PRES_ACT_XA},
    {17999, PRES_ACT_XA},
    {18000, PRES_ACT_OFFLINE},
    {UINT32_MAX, PRES_ACT_OFFLINE},
};

static void test_lync_in(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(lync_in_cases); i++) {
		char what[16];
		enum pres_activity a = PRES_ACT_COUNT;
		int err = presmap_lync_in(*state, lync_in_cases[i].avail, &a);
		snprintf(what, sizeof(what), "%u", (unsigned)lync_in_cases[i].avail);
		expect("lync-in", what, err, a, lync_in_cases[i].want);
	}
}

/* Lync ContactAvailability values, and presbridge's own for chat and xa. */
static const struct {
	enum pres_activity act;
	uint32_t avail;
} lync_out_cases[] = {
    {PRES_ACT_AVAILABLE, 3500}, {PRES_ACT_CHAT, 3250},     {PRES_ACT_AWAY, 15500},
    {PRES_ACT_XA, 17000},       {PRES_ACT_BUSY, 6500},     {PRES_ACT_DND, 9500},
    {PRES_ACT_BRB, 12500},      {PRES_ACT_OFFLINE, 18500},
};

static void test_lync_out(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(lync_out_cases); i++) {
		uint32_t got = presmap_lync_out(*state, lync_out_cases[i].act);
		if (got != lync_out_cases[i].avail)
			fail_msg("lync-out '%s': got %u, want %u",
			         pres_activity_name(lync_out_cases[i].act), (unsigned)got,
			         (unsigned)lync_out_cases[i].avail);
	}
}

/* The ranking used for aggregation: Lync's scale, most available first. */
static void test_rank_order(void **state)
{
	static const enum pres_activity order[] = {
	    PRES_ACT_CHAT, PRES_ACT_AVAILABLE, PRES_ACT_BUSY, PRES_ACT_DND,
	    PRES_ACT_BRB,  PRES_ACT_AWAY,      PRES_ACT_XA,   PRES_ACT_OFFLINE,
	};
	for (size_t i = 1; i < ARRAY_LEN(order); i++)
		if (presmap_rank(*state, order[i - 1]) >= presmap_rank(*state, order[i]))
			fail_msg("rank: %s should be more available than %s",
			         pres_activity_name(order[i - 1]),
			         pres_activity_name(order[i]));
}

static const struct {
	uint32_t v;
	int want;
} msrtc_avail_cases[] = {
    {0, PRES_ACT_OFFLINE}, {99, PRES_ACT_OFFLINE}, {100, NOROW},
    {999, NOROW},          {1000, NOROW},
};

static const struct {
	uint32_t v;
	int want;
} msrtc_act_cases[] = {
    {0, NOROW},
    {99, NOROW},
    {100, PRES_ACT_AWAY},
    {149, PRES_ACT_AWAY},
    {150, PRES_ACT_AWAY},
    {199, PRES_ACT_AWAY},
    {200, PRES_ACT_AWAY},
    {299, PRES_ACT_AWAY},
    {300, PRES_ACT_BRB},
    {399, PRES_ACT_BRB},
    {400, PRES_ACT_AVAILABLE},
    {499, PRES_ACT_AVAILABLE},
    {500, PRES_ACT_BUSY},
    {599, PRES_ACT_BUSY},
    {600, PRES_ACT_BUSY},
    {699, PRES_ACT_BUSY},
    {700, PRES_ACT_AWAY},
    {799, PRES_ACT_AWAY},
    {800, PRES_ACT_AVAILABLE},
    {999, PRES_ACT_AVAILABLE},
    {1000, NOROW},
};

static void test_msrtc(void **state)
{
	char what[16];

	for (size_t i = 0; i < ARRAY_LEN(msrtc_avail_cases); i++) {
		enum pres_activity a = PRES_ACT_COUNT;
		int err =
		    presmap_msrtc_availability_in(*state, msrtc_avail_cases[i].v, &a);
		snprintf(what, sizeof(what), "%u", (unsigned)msrtc_avail_cases[i].v);
		expect("msrtc-availability", what, err, a, msrtc_avail_cases[i].want);
	}
	for (size_t i = 0; i < ARRAY_LEN(msrtc_act_cases); i++) {
		enum pres_activity a = PRES_ACT_COUNT;
		int err = presmap_msrtc_activity_in(*state, msrtc_act_cases[i].v, &a);
		snprintf(what, sizeof(what), "%u", (unsigned)msrtc_act_cases[i].v);
		expect("msrtc-activity", what, err, a, msrtc_act_cases[i].want);
	}
}

/* --- parse errors ------------------------------------------------------------
 * A small valid map in blocks; each case swaps or adds lines and names the
 * line the error must point at by a text found only on it. */

#define SHOW_IN_NO_XA                                                                    \
	"show-in none available\nshow-in chat chat\nshow-in away away\n"                 \
	"show-in dnd do-not-disturb\n"
#define SHOW_IN SHOW_IN_NO_XA "show-in xa extended-away\n"
#define SHOW_OUT                                                                         \
	"show-out available none\nshow-out chat chat\nshow-out away away\n"              \
	"show-out extended-away xa\nshow-out busy dnd\nshow-out do-not-disturb dnd\n"    \
	"show-out be-right-back away\n"
#define RPID_OUT_NO_CHAT                                                                 \
	"rpid-out available -\nrpid-out away away\nrpid-out extended-away away\n"        \
	"rpid-out busy busy\nrpid-out do-not-disturb busy\nrpid-out be-right-back "      \
	"away\n"                                                                         \
	"rpid-out offline -\n"
#define RPID_OUT RPID_OUT_NO_CHAT "rpid-out chat -\n"
#define LYNC_IN_HEAD                                                                     \
	"lync-in 0 2999 -\nlync-in 3000 3499 chat\nlync-in 3500 4499 available\n"
#define LYNC_IN_MID                                                                      \
	"lync-in 4500 8999 busy\nlync-in 9000 11999 do-not-disturb\n"                    \
	"lync-in 12000 14999 be-right-back\nlync-in 15000 15999 away\n"                  \
	"lync-in 16000 17999 extended-away\n"
#define LYNC_IN_TAIL "lync-in 18000 max offline\n"
#define LYNC_IN      LYNC_IN_HEAD LYNC_IN_MID LYNC_IN_TAIL
#define LYNC_OUT_NO_CHAT                                                                 \
	"lync-out available 3500\nlync-out away 15500\nlync-out extended-away 17000\n"   \
	"lync-out busy 6500\nlync-out do-not-disturb 9500\nlync-out be-right-back "      \
	"12500\n"                                                                        \
	"lync-out offline 18500\n"
#define LYNC_OUT LYNC_OUT_NO_CHAT "lync-out chat 3250\n"
#define MSRTC                                                                            \
	"msrtc-availability 0 99 offline\nmsrtc-availability 100 999 -\n"                \
	"msrtc-activity 0 399 -\nmsrtc-activity 400 999 available\n"
#define VALID SHOW_IN SHOW_OUT RPID_OUT LYNC_IN LYNC_OUT MSRTC

static const struct parse_case {
	const char *name;
	const char *text;
	const char *marker; /* the error's line holds this; NULL: line 0 */
	const char *needle; /* in the error message */
} parse_cases[] = {
    {"unknown keyword", VALID "frobnicate 1 2\n", "frobnicate",
     "unknown keyword 'frobnicate'"},
    {"bad number", SHOW_IN SHOW_OUT RPID_OUT "lync-in 0 29x9 -\n" LYNC_IN LYNC_OUT MSRTC,
     "29x9", "'29x9' is not a decimal number"},
    {"number too large", VALID "lync-in 5 4294967296 away\n", "4294967296",
     "larger than 4294967295"},
    {"max outside lync-in", VALID "msrtc-activity 0 max -\n", "msrtc-activity 0 max",
     "'max' is not a decimal number"},
    {"overlap", VALID "lync-in 4000 4100 busy\n", "lync-in 4000",
     "overlaps 3500..4499 at line 23"},
    {"gap",
     SHOW_IN SHOW_OUT RPID_OUT LYNC_IN_HEAD
     "lync-in 4500 8999 busy\nlync-in 9000 11999 do-not-disturb\n"
     "lync-in 15000 15999 away\nlync-in 16000 17999 extended-away\n" LYNC_IN_TAIL LYNC_OUT
         MSRTC,
     "lync-in 15000", "gap, nothing maps 12000..14999"},
    {"gap reported by lync-out",
     SHOW_IN SHOW_OUT RPID_OUT LYNC_IN_HEAD
     "lync-in 4500 8999 busy\nlync-in 9000 11999 do-not-disturb\n"
     "lync-in 15000 15999 away\nlync-in 16000 17999 extended-away\n" LYNC_IN_TAIL LYNC_OUT
         MSRTC,
     "be-right-back 12500", "reads back as nothing"},
    {"no start",
     SHOW_IN SHOW_OUT RPID_OUT
     "lync-in 3000 3499 chat\n"
     "lync-in 3500 4499 available\n" LYNC_IN_MID LYNC_IN_TAIL LYNC_OUT MSRTC,
     "3000 3499", "nothing maps 0..2999"},
    {"no end", SHOW_IN SHOW_OUT RPID_OUT LYNC_IN_HEAD LYNC_IN_MID LYNC_OUT MSRTC, "16000",
     "nothing maps 18000..max"},
    {"empty range", VALID "msrtc-activity 5 4 away\n", "msrtc-activity 5 4", "is empty"},
    {"msrtc beyond 999", VALID "msrtc-activity 900 1000 away\n", "900 1000",
     "values stop at 999"},
    {"unknown activity", VALID "rpid-in meeting bussy\n", "bussy",
     "unknown activity 'bussy'"},
    {"unknown rpid token", VALID "rpid-in meetings busy\n", "meetings",
     "'meetings' is not an RFC 4480 activity"},
    {"unknown show", SHOW_IN "show-out available nothing\n" SHOW_OUT, "nothing",
     "unknown XMPP show 'nothing'"},
    {"duplicate", VALID "show-in away busy\n", "show-in away busy",
     "duplicate show-in row for 'away' (first at line 3)"},
    {"duplicate rpid-in", VALID "rpid-in lunch away\nrpid-in lunch busy\n",
     "rpid-in lunch busy", "duplicate rpid-in row for 'lunch'"},
    {"field count", VALID "show-in away\n", "show-in away\n",
     "show-in takes 2 fields (show-in SHOW ACTIVITY), found 1"},
    {"too many fields", VALID "lync-in 1 2 away extra\n", "extra",
     "lync-in takes 3 fields"},
    {"offline shown",
     SHOW_IN_NO_XA "show-in xa offline\n" SHOW_OUT RPID_OUT LYNC_IN LYNC_OUT MSRTC,
     "xa offline", "'offline' is not allowed here"},
    {"dash not allowed",
     SHOW_IN_NO_XA "show-in xa -\n" SHOW_OUT RPID_OUT LYNC_IN LYNC_OUT MSRTC, "xa -",
     "'-' is not allowed here"},
    {"rpid-out other",
     SHOW_IN SHOW_OUT RPID_OUT_NO_CHAT "rpid-out chat other\n" LYNC_IN LYNC_OUT MSRTC,
     "chat other", "'other' cannot be written"},
    {"lync-out reads back wrong",
     SHOW_IN SHOW_OUT RPID_OUT LYNC_IN LYNC_OUT_NO_CHAT "lync-out chat 3600\n" MSRTC,
     "chat 3600", "lync-out chat 3600 reads back as available (lync-in line 23)"},
    {"lync-out reads back '-'",
     SHOW_IN SHOW_OUT RPID_OUT LYNC_IN LYNC_OUT_NO_CHAT "lync-out chat 10\n" MSRTC,
     "chat 10", "reads back as '-'"},
    {"missing show-in", SHOW_IN_NO_XA SHOW_OUT RPID_OUT LYNC_IN LYNC_OUT MSRTC, NULL,
     "no show-in row for XMPP show 'xa'"},
    {"missing rpid-out", SHOW_IN SHOW_OUT RPID_OUT_NO_CHAT LYNC_IN LYNC_OUT MSRTC, NULL,
     "no rpid-out row for activity 'chat'"},
    {"missing lync-out", SHOW_IN SHOW_OUT RPID_OUT LYNC_IN LYNC_OUT_NO_CHAT MSRTC, NULL,
     "no lync-out row for activity 'chat'"},
    {"missing msrtc table", SHOW_IN SHOW_OUT RPID_OUT LYNC_IN LYNC_OUT, NULL,
     "no msrtc-availability rows"},
    {"invalid UTF-8", VALID "# caf\xe9\n", "caf", "not valid UTF-8"},
    {"semicolon comment still strict", VALID "show-in away away ; dup\n", "; dup",
     "duplicate show-in row for 'away'"},
};

static unsigned line_of(const char *text, const char *marker)
{
	const char *at = strstr(text, marker);
	unsigned line = 1;

	if (!at) {
		fail_msg("marker '%s' not in the case's text", marker);
		return 0;
	}
	if (strstr(at + 1, marker))
		fail_msg("marker '%s' is not unique in the case's text", marker);
	for (const char *p = text; p < at; p++)
		if (*p == '\n')
			line++;
	return line;
}

/* The line just after the VALID block. */
static unsigned after_valid(void)
{
	unsigned line = 1;

	for (const char *p = VALID; *p; p++)
		line += *p == '\n';
	return line;
}

static bool has_diag(const struct diag_list *dl, unsigned line, const char *needle)
{
	for (size_t i = 0; i < dl->n; i++)
		if (dl->v[i].level == DIAG_ERROR && dl->v[i].line == line &&
		    dl->v[i].file && strcmp(dl->v[i].file, "test.map") == 0 &&
		    strstr(dl->v[i].msg, needle))
			return true;
	return false;
}

static void test_valid_base(void **state)
{
	struct diag_list dl;
	struct presmap *m = NULL;

	(void)state;
	diag_init(&dl);
	assert_int_equal(presmap_parse(&m, VALID, strlen(VALID), "test.map", &dl), 0);
	assert_int_equal(dl.n, 0);
	presmap_free(m);
	diag_free(&dl);
}

static void test_parse_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct diag_list dl;
		struct presmap *m = NULL;
		unsigned line = c->marker ? line_of(c->text, c->marker) : 0;

		diag_init(&dl);
		int err = presmap_parse(&m, c->text, strlen(c->text), "test.map", &dl);
		if (err != -EINVAL || m != NULL)
			fail_msg("case '%s': got %d, want -EINVAL and no map", c->name,
			         err);
		if (!has_diag(&dl, line, c->needle)) {
			for (size_t k = 0; k < dl.n; k++) {
				char buf[1200];
				diag_format(&dl.v[k], buf, sizeof(buf));
				print_error("  %s\n", buf);
			}
			fail_msg("case '%s': no error at test.map:%u containing \"%s\"",
			         c->name, line, c->needle);
		}
		diag_free(&dl);
	}
}

/* A file with several mistakes reports every one, each at its line. */
static void test_every_problem_reported(void **state)
{
	static const char text[] = VALID "show-in away busy\n"
	                                 "lync-in 1 x away\n"
	                                 "rpid-in nap away\n"
	                                 "colour red\n";
	struct diag_list dl;
	struct presmap *m = NULL;

	(void)state;
	diag_init(&dl);
	assert_int_equal(presmap_parse(&m, text, strlen(text), "test.map", &dl), -EINVAL);
	assert_null(m);
	assert_int_equal(diag_count(&dl, DIAG_ERROR), 4);
	assert_true(has_diag(&dl, line_of(text, "away busy"), "duplicate show-in"));
	assert_true(
	    has_diag(&dl, line_of(text, "1 x away"), "'x' is not a decimal number"));
	assert_true(
	    has_diag(&dl, line_of(text, "nap"), "'nap' is not an RFC 4480 activity"));
	assert_true(has_diag(&dl, line_of(text, "colour"), "unknown keyword 'colour'"));
	diag_free(&dl);
}

/* An overlap is one mistake and is reported once, not also as a gap after it. */
static void test_overlap_reported_once(void **state)
{
	static const char text[] = VALID "lync-in 4000 4100 busy\n";
	struct diag_list dl;
	struct presmap *m = NULL;

	(void)state;
	diag_init(&dl);
	assert_int_equal(presmap_parse(&m, text, strlen(text), "test.map", &dl), -EINVAL);
	assert_int_equal(diag_count(&dl, DIAG_ERROR), 1);
	assert_true(has_diag(&dl, line_of(text, "4000 4100"), "overlaps 3500..4499"));
	diag_free(&dl);
}

static void test_nul_byte(void **state)
{
	static const char text[] = VALID "show-in away\0 away\n";
	struct diag_list dl;
	struct presmap *m = NULL;

	(void)state;
	diag_init(&dl);
	assert_int_equal(presmap_parse(&m, text, sizeof(text) - 1, "test.map", &dl),
	                 -EINVAL);
	assert_null(m);
	assert_true(has_diag(&dl, after_valid(), "NUL byte"));
	diag_free(&dl);
}

static void test_long_line(void **state)
{
	size_t base = strlen(VALID);
	char *text = malloc(base + 2000 + 2);
	struct diag_list dl;
	struct presmap *m = NULL;

	(void)state;
	assert_non_null(text);
	memcpy(text, VALID, base);
	memset(text + base, 'x', 2000);
	memcpy(text + base + 2000, "\n", 2);
	diag_init(&dl);
	assert_int_equal(presmap_parse(&m, text, strlen(text), "test.map", &dl), -EINVAL);
	assert_true(has_diag(&dl, after_valid(), "line longer than"));
	diag_free(&dl);
	free(text);
}

int main(void)
{
	const struct CMUnitTest shipped[] = {
	    cmocka_unit_test(test_show_in),    cmocka_unit_test(test_show_out),
	    cmocka_unit_test(test_rpid_in),    cmocka_unit_test(test_rpid_out),
	    cmocka_unit_test(test_lync_in),    cmocka_unit_test(test_lync_out),
	    cmocka_unit_test(test_rank_order), cmocka_unit_test(test_msrtc),
	};
	const struct CMUnitTest parsing[] = {
	    cmocka_unit_test(test_shipped_clean),
	    cmocka_unit_test(test_valid_base),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_every_problem_reported),
	    cmocka_unit_test(test_overlap_reported_once),
	    cmocka_unit_test(test_nul_byte),
	    cmocka_unit_test(test_long_line),
	};
	int failed = cmocka_run_group_tests_name("presence.map rows", shipped,
	                                         load_shipped, free_map);
	failed +=
	    cmocka_run_group_tests_name("presence.map parsing", parsing, NULL, NULL);
	return failed;
}

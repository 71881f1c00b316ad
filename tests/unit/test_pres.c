#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/pres.h"
#include "presbridge/presmap.h"
#include "presbridge/xmlsafe.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MAP_PATH     PB_SOURCE_DIR "/mappings/presence.map"
#define PIDF         "application/pidf+xml"
#define MSRTC        "text/xml+msrtc.pidf"
#define CATS         "application/msrtc-event-categories+xml"

static struct presmap *map;

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

static int setup(void **state)
{
	struct diag_list dl;
	size_t len;
	char *text = slurp(MAP_PATH, &len);

	(void)state;
	diag_init(&dl);
	int err = presmap_parse(&map, text, len, MAP_PATH, &dl);
	diag_free(&dl);
	free(text);
	return err ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	presmap_free(map);
	return 0;
}

static struct pres *new_pres(void)
{
	struct pres *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	pres_init(p);
	return p;
}

static const char *act(enum pres_activity a)
{
	return pres_activity_name(a) ? pres_activity_name(a) : "?";
}

/* --- XMPP in ------------------------------------------------------------------ */

static const struct xmpp_in_case {
	const char *name;
	const char *type, *show, *status;
	int priority;
	const char *resource;
	int err;
	bool open;
	enum pres_activity act;
	const char *note;
	int want_prio;
} xmpp_in_cases[] = {
    {"plain available", NULL, NULL, NULL, 0, "laptop", 0, true, PRES_ACT_AVAILABLE, "",
     0},
    {"empty type", "", "", "", 5, "laptop", 0, true, PRES_ACT_AVAILABLE, "", 5},
    {"chat", NULL, "chat", "Talk to me", 1, "r", 0, true, PRES_ACT_CHAT, "Talk to me", 1},
    {"away", NULL, "away", "Lunch", 0, "r", 0, true, PRES_ACT_AWAY, "Lunch", 0},
    {"xa", NULL, "xa", NULL, 0, "r", 0, true, PRES_ACT_XA, "", 0},
    {"dnd", NULL, "dnd", "Focus time", 0, "r", 0, true, PRES_ACT_DND, "Focus time", 0},
    {"unknown show is none", NULL, "busy", NULL, 0, "r", 0, true, PRES_ACT_AVAILABLE, "",
     0},
    {"unavailable", "unavailable", NULL, "Gone home", 0, "r", 0, false, PRES_ACT_OFFLINE,
     "Gone home", 0},
    {"unavailable ignores show", "unavailable", "chat", NULL, 0, "r", 0, false,
     PRES_ACT_OFFLINE, "", 0},
    {"negative priority", NULL, NULL, NULL, -1, "r", 0, true, PRES_ACT_AVAILABLE, "", -1},
    {"priority clamped high", NULL, NULL, NULL, 500, "r", 0, true, PRES_ACT_AVAILABLE, "",
     127},
    {"priority clamped low", NULL, NULL, NULL, -500, "r", 0, true, PRES_ACT_AVAILABLE, "",
     -128},
    {"no resource", NULL, NULL, NULL, 0, NULL, 0, true, PRES_ACT_AVAILABLE, "", 0},
    {"status normalised", NULL, "away", "  line one\r\nline\x01two\rthree\t \n", 0, "r",
     0, true, PRES_ACT_AWAY, "line one\nline two\nthree", 0},
    {"subscribe is not presence", "subscribe", NULL, NULL, 0, "r", -EINVAL, false,
     PRES_ACT_OFFLINE, "", 0},
    {"error is not presence", "error", NULL, NULL, 0, "r", -EINVAL, false,
     PRES_ACT_OFFLINE, "", 0},
    {"status not UTF-8", NULL, NULL, "caf\xe9", 0, "r", -EILSEQ, false, PRES_ACT_OFFLINE,
     "", 0},
    {"resource not UTF-8", NULL, NULL, NULL, 0, "\xff", -EILSEQ, false, PRES_ACT_OFFLINE,
     "", 0},
};

static void test_xmpp_in(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(xmpp_in_cases); i++) {
		const struct xmpp_in_case *c = &xmpp_in_cases[i];
		struct pres_entry e;
		memset(&e, 0x55, sizeof(e));
		int err = pres_from_xmpp(map, c->type, c->show, c->status, c->priority,
		                         c->resource, &e);
		if (err != c->err)
			fail_msg("case '%s': got %d, want %d", c->name, err, c->err);
		if (err) {
			if (e.id[0] != 0x55)
				fail_msg("case '%s': entry written on error", c->name);
			continue;
		}
		if (e.open != c->open || e.activity != c->act ||
		    e.priority != c->want_prio || strcmp(e.note, c->note) != 0 ||
		    strcmp(e.id, c->resource ? c->resource : "") != 0)
			fail_msg("case '%s': got %s/%s/prio %d/note '%s'/id '%s'",
			         c->name, e.open ? "open" : "closed", act(e.activity),
			         e.priority, e.note, e.id);
	}

	/* RFC 7622 caps a resource at 1023 bytes; one more is refused. */
	char *res = malloc(PRES_ID_MAX + 2);
	struct pres_entry e;
	assert_non_null(res);
	memset(res, 'r', PRES_ID_MAX + 1);
	res[PRES_ID_MAX + 1] = '\0';
	assert_int_equal(pres_from_xmpp(map, NULL, NULL, NULL, 0, res, &e), -E2BIG);
	res[PRES_ID_MAX] = '\0';
	assert_int_equal(pres_from_xmpp(map, NULL, NULL, NULL, 0, res, &e), 0);
	assert_int_equal(strlen(e.id), PRES_ID_MAX);
	free(res);
}

/* --- XMPP out ----------------------------------------------------------------- */

static const struct {
	enum pres_activity act;
	bool available;
	const char *show;
} xmpp_out_cases[] = {
    {PRES_ACT_AVAILABLE, true, NULL}, {PRES_ACT_CHAT, true, "chat"},
    {PRES_ACT_AWAY, true, "away"},    {PRES_ACT_XA, true, "xa"},
    {PRES_ACT_BUSY, true, "dnd"},     {PRES_ACT_DND, true, "dnd"},
    {PRES_ACT_BRB, true, "away"},     {PRES_ACT_OFFLINE, false, NULL},
};

static void test_xmpp_out(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(xmpp_out_cases); i++) {
		struct pres_entry e = {.activity = xmpp_out_cases[i].act, .priority = 3};
		struct pres_xmpp x;
		e.open = e.activity != PRES_ACT_OFFLINE;
		strcpy(e.note, "note");
		pres_to_xmpp(map, &e, &x);
		const char *want = xmpp_out_cases[i].show;
		if (x.available != xmpp_out_cases[i].available || x.priority != 3 ||
		    strcmp(x.status, "note") != 0 || (x.show == NULL) != (want == NULL) ||
		    (want && strcmp(x.show, want) != 0))
			fail_msg("case '%s': got %s show %s", act(e.activity),
			         x.available ? "available" : "unavailable",
			         x.show ? x.show : "none");
	}
}

/* --- aggregation -------------------------------------------------------------- */

struct res {
	const char *id;
	enum pres_activity act;
	int prio;
	const char *note;
};

static const struct agg_case {
	const char *name;
	struct res r[3];
	size_t n;
	const char *want_id;
	enum pres_activity want;
	const char *want_note;
} agg_cases[] = {
    {"one resource", {{"a", PRES_ACT_AWAY, 0, "x"}}, 1, "a", PRES_ACT_AWAY, "x"},
    {"higher priority wins over more available",
     {{"desk", PRES_ACT_AVAILABLE, 1, ""}, {"phone", PRES_ACT_DND, 5, "call"}},
     2,
     "phone",
     PRES_ACT_DND,
     "call"},
    {"tie: more available wins",
     {{"desk", PRES_ACT_AWAY, 0, ""},
      {"phone", PRES_ACT_BUSY, 0, ""},
      {"web", PRES_ACT_XA, 0, ""}},
     3,
     "phone",
     PRES_ACT_BUSY,
     ""},
    {"tie: chat over available",
     {{"a", PRES_ACT_AVAILABLE, 2, ""}, {"b", PRES_ACT_CHAT, 2, ""}},
     2,
     "b",
     PRES_ACT_CHAT,
     ""},
    {"tie on everything: first wins",
     {{"a", PRES_ACT_AWAY, 2, "first"}, {"b", PRES_ACT_AWAY, 2, "second"}},
     2,
     "a",
     PRES_ACT_AWAY,
     "first"},
    {"closed resources never win",
     {{"a", PRES_ACT_OFFLINE, 100, "bye"}, {"b", PRES_ACT_XA, -5, "zzz"}},
     2,
     "b",
     PRES_ACT_XA,
     "zzz"},
    {"negative priority still counts",
     {{"bot", PRES_ACT_AVAILABLE, -1, ""}},
     1,
     "bot",
     PRES_ACT_AVAILABLE,
     ""},
    {"zero beats negative",
     {{"bot", PRES_ACT_CHAT, -1, ""}, {"desk", PRES_ACT_BRB, 0, "brb"}},
     2,
     "desk",
     PRES_ACT_BRB,
     "brb"},
    {"all unavailable",
     {{"a", PRES_ACT_OFFLINE, 3, "gone home"}, {"b", PRES_ACT_OFFLINE, 9, "later"}},
     2,
     "a",
     PRES_ACT_OFFLINE,
     "gone home"},
    {"nothing at all", {{0}}, 0, "", PRES_ACT_OFFLINE, ""},
};

static void fill(struct pres *p, const struct res *r, size_t n)
{
	pres_init(p);
	for (size_t i = 0; i < n; i++) {
		struct pres_entry *e = &p->e[p->n++];
		memset(e, 0, sizeof(*e));
		strcpy(e->id, r[i].id);
		e->activity = r[i].act;
		e->open = r[i].act != PRES_ACT_OFFLINE;
		e->priority = r[i].prio;
		strcpy(e->note, r[i].note);
	}
}

static void test_aggregation(void **state)
{
	struct pres *p = new_pres();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(agg_cases); i++) {
		const struct agg_case *c = &agg_cases[i];
		struct pres_entry s;
		fill(p, c->r, c->n);
		pres_summary(p, map, &s);
		if (s.activity != c->want || s.open != (c->want != PRES_ACT_OFFLINE) ||
		    strcmp(s.id, c->want_id) != 0 || strcmp(s.note, c->want_note) != 0)
			fail_msg("case '%s': got '%s' %s note '%s'", c->name, s.id,
			         act(s.activity), s.note);
	}
	free(p);
}

/* A sequence of XMPP presences from several resources. */
static void test_update(void **state)
{
	struct pres *p = new_pres();
	struct pres_entry e, s;

	(void)state;
	assert_int_equal(pres_from_xmpp(map, NULL, "away", "coffee", 1, "desk", &e), 0);
	assert_int_equal(pres_update(p, &e), 0);
	assert_int_equal(pres_from_xmpp(map, NULL, "dnd", NULL, 5, "phone", &e), 0);
	assert_int_equal(pres_update(p, &e), 0);
	assert_int_equal(p->n, 2);
	pres_summary(p, map, &s);
	assert_string_equal(s.id, "phone");

	/* The same resource again replaces its entry. */
	assert_int_equal(pres_from_xmpp(map, NULL, "chat", NULL, 5, "phone", &e), 0);
	assert_int_equal(pres_update(p, &e), 0);
	assert_int_equal(p->n, 2);
	assert_int_equal(p->e[1].activity, PRES_ACT_CHAT);

	/* A resource leaving removes it; the last one leaving stays, closed. */
	assert_int_equal(pres_from_xmpp(map, "unavailable", NULL, NULL, 0, "phone", &e),
	                 0);
	assert_int_equal(pres_update(p, &e), 0);
	assert_int_equal(p->n, 1);
	assert_string_equal(p->e[0].id, "desk");
	assert_int_equal(
	    pres_from_xmpp(map, "unavailable", NULL, "Gone home", 0, "desk", &e), 0);
	assert_int_equal(pres_update(p, &e), 0);
	assert_int_equal(p->n, 1);
	pres_summary(p, map, &s);
	assert_false(s.open);
	assert_string_equal(s.note, "Gone home");

	/* Coming back drops the goodbye. */
	assert_int_equal(pres_from_xmpp(map, NULL, NULL, NULL, 0, "web", &e), 0);
	assert_int_equal(pres_update(p, &e), 0);
	assert_int_equal(p->n, 1);
	assert_string_equal(p->e[0].id, "web");
	assert_true(p->e[0].open);

	/* At most PRES_MAX_ENTRIES resources. */
	for (int i = 0; i < PRES_MAX_ENTRIES + 1; i++) {
		char id[16];
		snprintf(id, sizeof(id), "r%d", i);
		assert_int_equal(pres_from_xmpp(map, NULL, NULL, NULL, 0, id, &e), 0);
		assert_int_equal(pres_update(p, &e),
		                 i < PRES_MAX_ENTRIES - 1 ? 0 : -E2BIG);
	}
	assert_int_equal(p->n, PRES_MAX_ENTRIES);
	free(p);
}

/* --- golden documents ----------------------------------------------------------- */

static const struct golden_case {
	const char *file;
	const char *ctype;
	size_t n;
	unsigned have;
	const char *id0; /* first entry's id */
	int prio0;
	/* the summary */
	enum pres_activity act;
	const char *note;
} golden_cases[] = {
    {"lync2013_categories_busy.xml", CATS, 1, PRES_HAVE_STATE | PRES_HAVE_NOTE, "", 0,
     PRES_ACT_BUSY, "Budget review until 11 & then lunch"},
    {"lync2013_categories_states.xml", CATS, 1, PRES_HAVE_STATE, "", 0, PRES_ACT_AWAY,
     ""},
    {"sfb_categories_offline_oof.xml", CATS, 1, PRES_HAVE_STATE | PRES_HAVE_NOTE, "", 0,
     PRES_ACT_OFFLINE,
     "On holiday until 15 August. Urgent matters: Frank (+49 30 1234)."},
    {"lync2013_categories_note_only.xml", CATS, 1, PRES_HAVE_NOTE, "", 0,
     PRES_ACT_OFFLINE, "Back at my desk \xe2\x80\x94 caf\xc3\xa9 was closed"},
    {"msrtc_lcs2005_incall.xml", MSRTC, 1, PRES_HAVE_STATE | PRES_HAVE_NOTE, "8bfb9f3f24",
     0, PRES_ACT_BUSY, ""},
    {"msrtc_ocs_userinfo_note.xml", MSRTC, 1, PRES_HAVE_STATE | PRES_HAVE_NOTE,
     "03d7b1a3c1", 0, PRES_ACT_AVAILABLE, "Working from the Lisbon office"},
    {"msrtc_offline.xml", MSRTC, 1, PRES_HAVE_STATE | PRES_HAVE_NOTE, "", 0,
     PRES_ACT_OFFLINE, ""},
    {"rfc3863_example.xml", PIDF, 2, PRES_HAVE_STATE | PRES_HAVE_NOTE, "ck38g9", 83,
     PRES_ACT_AVAILABLE, "Don't Disturb Please!"},
    {"rfc4480_example.xml", PIDF, 1, PRES_HAVE_STATE | PRES_HAVE_NOTE, "bs35r9", 102,
     PRES_ACT_BUSY, "Meeting with the auditors"},
    {"kamailio_pua_xmpp.xml", PIDF, 1, PRES_HAVE_STATE | PRES_HAVE_NOTE, "0x7f3a2c1b9e40",
     0, PRES_ACT_AWAY, "Out for lunch"},
    {"ocs_pidf_legacy_activities.xml", PIDF, 1, PRES_HAVE_STATE | PRES_HAVE_NOTE, "1", 0,
     PRES_ACT_BUSY, "On a customer call"},
    {"lync_pidf_ms_availability.xml", PIDF, 1, PRES_HAVE_STATE | PRES_HAVE_NOTE,
     "b3f2aa91c4", 64, PRES_ACT_DND, "Presenting the Q3 figures"},
    {"pidf_person_only.xml", PIDF, 1, PRES_HAVE_STATE | PRES_HAVE_NOTE, "", 0,
     PRES_ACT_BRB, ""},
    {"pidf_two_resources.xml", PIDF, 3, PRES_HAVE_STATE | PRES_HAVE_NOTE, "desktop", 65,
     PRES_ACT_BUSY, "Driving"},
};

static void test_golden(void **state)
{
	struct pres *p = new_pres();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(golden_cases); i++) {
		const struct golden_case *c = &golden_cases[i];
		char path[512];
		size_t len;
		struct pres_entry s;

		snprintf(path, sizeof(path), "%s/pres/%s", PB_TEST_DATA, c->file);
		char *body = slurp(path, &len);
		int err = pres_read(c->ctype, body, len, map, p);
		free(body);
		if (err)
			fail_msg("case '%s': read failed: %d (%s)", c->file, err,
			         xmls_strerror(err));
		pres_summary(p, map, &s);
		if (p->n != c->n || p->have != c->have ||
		    strcmp(p->e[0].id, c->id0) != 0 || p->e[0].priority != c->prio0)
			fail_msg("case '%s': %zu entries, have %u, first '%s' prio %d",
			         c->file, p->n, p->have, p->e[0].id, p->e[0].priority);
		if (s.activity != c->act || s.open != (c->act != PRES_ACT_OFFLINE) ||
		    strcmp(s.note, c->note) != 0)
			fail_msg("case '%s': summary %s %s note '%s'", c->file,
			         s.open ? "open" : "closed", act(s.activity), s.note);
	}
	free(p);
}

/* Entry by entry, for the documents with several tuples. */
static void test_golden_entries(void **state)
{
	struct pres *p = new_pres();
	size_t len;
	char *body = slurp(PB_TEST_DATA "/pres/pidf_two_resources.xml", &len);

	(void)state;
	assert_int_equal(pres_read(PIDF, body, len, map, p), 0);
	free(body);
	static const struct {
		const char *id;
		bool open;
		enum pres_activity act;
		int prio;
		const char *note;
	} want[] = {
	    /* contact priority 0.506, 0.525, 0.9: q * 127 rounded up (RFC 8048
	     * section 6.2 note 6 maps 0..1 onto XMPP 0..127) */
	    {"desktop", true, PRES_ACT_AWAY, 65, "Gone for coffee"},
	    {"phone", true, PRES_ACT_BUSY, 67, "Driving"},
	    {"tablet", false, PRES_ACT_OFFLINE, 115, ""},
	};
	assert_int_equal(p->n, ARRAY_LEN(want));
	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		const struct pres_entry *e = &p->e[i];
		if (strcmp(e->id, want[i].id) != 0 || e->open != want[i].open ||
		    e->activity != want[i].act || e->priority != want[i].prio ||
		    strcmp(e->note, want[i].note) != 0)
			fail_msg("entry %zu: got '%s' %s prio %d note '%s'", i, e->id,
			         act(e->activity), e->priority, e->note);
	}
	free(p);
}

/* --- how evidence is weighed (presence.map's "How a document is read") --------- */

#define PIDF_HEAD                                                                        \
	"<presence xmlns='urn:ietf:params:xml:ns:pidf' "                                 \
	"xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model' "                             \
	"xmlns:rpid='urn:ietf:params:xml:ns:pidf:rpid' "                                 \
	"xmlns:ms='http://schemas.microsoft.com/2006/09/sip/state' entity='sip:x@y'>"
#define CATS_STATE(n)                                                                    \
	"<categories xmlns='http://schemas.microsoft.com/2006/09/sip/categories'>"       \
	"<category name='state'><state "                                                 \
	"xmlns='http://schemas.microsoft.com/2006/09/sip/state' "                        \
	"xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance' "                         \
	"xsi:type='aggregateState'>"                                                     \
	"<availability>" n "</availability></state></category></categories>"
#define MSRTC_DOC(av, ac)                                                                \
	"<presentity uri='x@y'><availability aggregate='" av "'/>"                       \
	"<activity aggregate='" ac "'/></presentity>"

static const struct rule_case {
	const char *name;
	const char *ctype;
	const char *body;
	enum pres_activity want;
} rule_cases[] = {
    {"closed beats everything", PIDF,
     PIDF_HEAD "<tuple id='t'><status><basic>closed</basic></status>"
               "<ms:availability>3500</ms:availability></tuple></presence>",
     PRES_ACT_OFFLINE},
    {"number beats RPID", PIDF,
     PIDF_HEAD "<tuple id='t'><status><basic>open</basic></status>"
               "<rpid:activities><rpid:away/></rpid:activities>"
               "<ms:availability>6500</ms:availability></tuple></presence>",
     PRES_ACT_BUSY},
    {"number 18000 closes an open tuple", PIDF,
     PIDF_HEAD "<tuple id='t'><status><basic>open</basic></status>"
               "<ms:availability>18000</ms:availability></tuple></presence>",
     PRES_ACT_OFFLINE},
    {"unknown number falls back to RPID", PIDF,
     PIDF_HEAD "<tuple id='t'><status><basic>open</basic></status>"
               "<ms:availability>2999</ms:availability></tuple>"
               "<dm:person id='p'><rpid:activities><rpid:vacation/></rpid:activities>"
               "</dm:person></presence>",
     PRES_ACT_XA},
    {"tuple number beats person number", PIDF,
     PIDF_HEAD "<tuple id='t'><status><basic>open</basic></status>"
               "<ms:availability>12500</ms:availability></tuple>"
               "<dm:person id='p'><ms:availability>9500</ms:availability></dm:person>"
               "</presence>",
     PRES_ACT_BRB},
    {"person number applies to the tuple", PIDF,
     PIDF_HEAD "<tuple id='t'><status><basic>open</basic></status></tuple>"
               "<dm:person id='p'><ms:availability>4500</ms:availability></dm:person>"
               "</presence>",
     PRES_ACT_AWAY},
    {"non-numeric availability is passed over", PIDF,
     PIDF_HEAD "<tuple id='t'><status><basic>open</basic></status>"
               "<ms:availability>busy</ms:availability></tuple></presence>",
     PRES_ACT_AVAILABLE},
    {"availability outside Microsoft namespaces is ignored", PIDF,
     PIDF_HEAD "<tuple id='t'><status><basic>open</basic></status>"
               "<availability xmlns='urn:example'>9500</availability></tuple></presence>",
     PRES_ACT_AVAILABLE},
    {"least available RPID wins", PIDF,
     PIDF_HEAD "<tuple id='t'><status><basic>open</basic></status></tuple>"
               "<dm:person id='p'><rpid:activities><rpid:lunch/><rpid:meeting/>"
               "<rpid:working/></rpid:activities></dm:person></presence>",
     PRES_ACT_AWAY},
    {"RPID that says nothing leaves basic", PIDF,
     PIDF_HEAD "<tuple id='t'><status><basic>open</basic></status></tuple>"
               "<dm:person id='p'><rpid:activities><rpid:unknown/><rpid:other>knitting"
               "</rpid:other></rpid:activities></dm:person></presence>",
     PRES_ACT_AVAILABLE},
    {"no basic and no evidence is offline", PIDF,
     PIDF_HEAD "<tuple id='t'><status/></tuple></presence>", PRES_ACT_OFFLINE},
    {"no basic but RPID says reachable", PIDF,
     PIDF_HEAD "<tuple id='t'><status/></tuple><dm:person id='p'><rpid:activities>"
               "<rpid:on-the-phone/></rpid:activities></dm:person></presence>",
     PRES_ACT_BUSY},
    {"basic is read case-insensitively", PIDF,
     PIDF_HEAD "<tuple id='t'><status><basic> Open </basic></status></tuple></presence>",
     PRES_ACT_AVAILABLE},
    {"no tuple, no person", PIDF, PIDF_HEAD "</presence>", PRES_ACT_OFFLINE},
    {"categories 3499", CATS, CATS_STATE("3499"), PRES_ACT_CHAT},
    {"categories 3500", CATS, CATS_STATE("3500"), PRES_ACT_AVAILABLE},
    {"categories 4499", CATS, CATS_STATE("4499"), PRES_ACT_AVAILABLE},
    {"categories 4500 (idle)", CATS, CATS_STATE("4500"), PRES_ACT_AWAY},
    {"categories 7500 (busy idle)", CATS, CATS_STATE("7500"), PRES_ACT_BUSY},
    {"categories 9500", CATS, CATS_STATE("9500"), PRES_ACT_DND},
    {"categories 12500", CATS, CATS_STATE("12500"), PRES_ACT_BRB},
    {"categories 17999", CATS, CATS_STATE("17999"), PRES_ACT_XA},
    {"categories unknown presence", CATS, CATS_STATE("0"), PRES_ACT_OFFLINE},
    {"categories garbage number", CATS, CATS_STATE("-3500"), PRES_ACT_OFFLINE},
    {"categories number too large", CATS, CATS_STATE("99999999999"), PRES_ACT_OFFLINE},
    {"categories without aggregate uses the first state", CATS,
     "<categories xmlns='http://schemas.microsoft.com/2006/09/sip/categories'>"
     "<category name='state'><state "
     "xmlns='http://schemas.microsoft.com/2006/09/sip/state'>"
     "<availability>12500</availability></state></category></categories>",
     PRES_ACT_BRB},
    {"msrtc cannot receive calls", MSRTC, MSRTC_DOC("99", "400"), PRES_ACT_OFFLINE},
    {"msrtc no activity information", MSRTC, MSRTC_DOC("300", "0"), PRES_ACT_AVAILABLE},
    {"msrtc lunch", MSRTC, MSRTC_DOC("300", "150"), PRES_ACT_AWAY},
    {"msrtc be right back", MSRTC, MSRTC_DOC("200", "300"), PRES_ACT_BRB},
    {"msrtc busy", MSRTC, MSRTC_DOC("300", "600"), PRES_ACT_BUSY},
    {"msrtc availability out of range", MSRTC, MSRTC_DOC("1000", "400"),
     PRES_ACT_OFFLINE},
    {"msrtc without availability", MSRTC,
     "<presentity uri='x@y'><activity aggregate='400'/>"
     "</presentity>",
     PRES_ACT_OFFLINE},
};

static void test_rules(void **state)
{
	struct pres *p = new_pres();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rule_cases); i++) {
		const struct rule_case *c = &rule_cases[i];
		struct pres_entry s;
		int err = pres_read(c->ctype, c->body, strlen(c->body), map, p);
		if (err)
			fail_msg("case '%s': read failed: %d", c->name, err);
		pres_summary(p, map, &s);
		if (s.activity != c->want || s.open != (c->want != PRES_ACT_OFFLINE))
			fail_msg("case '%s': got %s %s, want %s", c->name,
			         s.open ? "open" : "closed", act(s.activity),
			         act(c->want));
	}
	free(p);
}

/* --- round trip: model -> PIDF -> model ----------------------------------------- */

static const struct rt_case {
	const char *name;
	struct res r[3];
	size_t n;
} rt_cases[] = {
    {"available", {{"laptop", PRES_ACT_AVAILABLE, 0, ""}}, 1},
    {"chat", {{"laptop", PRES_ACT_CHAT, 1, "Ask me anything"}}, 1},
    {"away", {{"laptop", PRES_ACT_AWAY, -1, "coffee"}}, 1},
    {"extended-away", {{"laptop", PRES_ACT_XA, 127, ""}}, 1},
    {"busy", {{"laptop", PRES_ACT_BUSY, -128, ""}}, 1},
    {"do-not-disturb", {{"laptop", PRES_ACT_DND, 42, "Focus"}}, 1},
    {"be-right-back", {{"laptop", PRES_ACT_BRB, 0, ""}}, 1},
    {"offline", {{"laptop", PRES_ACT_OFFLINE, 0, "Gone home"}}, 1},
    {"three resources, one note",
     {{"desk", PRES_ACT_AWAY, 1, ""},
      {"phone", PRES_ACT_DND, 5, "In a call"},
      {"web", PRES_ACT_CHAT, 0, ""}},
     3},
    {"awkward resource names",
     {{"My Phone (2)", PRES_ACT_AVAILABLE, 0, ""},
      {"", PRES_ACT_AWAY, 0, ""},
      {"\xc3\x9cmlaut-\xe2\x82\xac", PRES_ACT_BUSY, 0, ""}},
     3},
    {"names that look escaped",
     {{"_x41", PRES_ACT_AVAILABLE, 0, ""},
      {"_person", PRES_ACT_AWAY, 0, ""},
      {"9lives", PRES_ACT_BUSY, 0, ""}},
     3},
    {"notes that need escaping",
     {{"a", PRES_ACT_AWAY, 0, "<b>5 < 6 & \"quoted\" 'single'</b> ]]>"},
      {"b", PRES_ACT_BUSY, 0,
       "Gr\xc3\xbc\xc3\x9f"
       "e \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac "
       "\xf0\x9f\x98\x80\nsecond line\ttab"}},
     2},
};

static void test_round_trip(void **state)
{
	struct pres *p = new_pres();
	struct pres *q = new_pres();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rt_cases); i++) {
		const struct rt_case *c = &rt_cases[i];
		char *doc = NULL;
		size_t len = 0;

		fill(p, c->r, c->n);
		assert_int_equal(
		    pres_write_pidf(p, map, "sip:alice@xmpp.test", &doc, &len), 0);
		/* What comes back: a negative priority is not mapped (RFC 8048
		 * section 6.2 note 6), so it reads as the default 0; the tuples
		 * come best first (test_tuple_order checks that order). */
		size_t order[PRES_MAX_ENTRIES];
		struct res want[3];
		pres_order(p, map, order);
		for (size_t k = 0; k < c->n; k++) {
			want[k] = c->r[order[k]];
			if (want[k].prio < 0)
				want[k].prio = 0;
		}
		fill(p, want, c->n);
		assert_int_equal(strlen(doc), len);
		int err = pres_read(PIDF, doc, len, map, q);
		if (err)
			fail_msg("case '%s': written document does not read: %d\n%s",
			         c->name, err, doc);
		if (!pres_equal(p, q)) {
			for (size_t k = 0; k < q->n; k++)
				print_error("  read '%s' %s prio %d note '%s'\n",
				            q->e[k].id, act(q->e[k].activity),
				            q->e[k].priority, q->e[k].note);
			fail_msg("case '%s': model changed through PIDF\n%s", c->name,
			         doc);
		}
		free(doc);
	}
	free(p);
	free(q);
}

/* What a watcher of the written PIDF sees, piece by piece. */
static void test_pidf_shape(void **state)
{
	struct pres *p = new_pres();
	static const struct res r[] = {
	    {"desk", PRES_ACT_AWAY, 1, ""},
	    {"phone", PRES_ACT_DND, 5, "In a call <with> \"Bob\" & 'Eve'"},
	    {"My Phone", PRES_ACT_OFFLINE, 0, ""},
	};
	/* Best first: phone (priority 5), desk (1), then the closed tuple. */
	static const char *const must[] = {
	    "entity=\"sip:al&amp;ice@xmpp.test\">\n <tuple id=\"phone\">"
	    "<status><basic>open</basic>"
	    "<show xmlns=\"jabber:client\">dnd</show></status>"
	    "<rpid:activities><rpid:busy/></rpid:activities>"
	    "<ms:availability>9500</ms:availability><contact priority=\"0.039\">",
	    "<note>In a call &lt;with&gt; &quot;Bob&quot; &amp; &apos;Eve&apos;</note>"
	    "</tuple>\n <tuple id=\"desk\">",
	    "<tuple id=\"desk\"><status><basic>open</basic>"
	    "<show xmlns=\"jabber:client\">away</show></status>"
	    "<rpid:activities><rpid:away/></rpid:activities>"
	    "<ms:availability>15500</ms:availability>"
	    "<contact "
	    "priority=\"0.007\">sip:al&amp;ice@xmpp.test</contact><note/></tuple>\n"
	    " <tuple id=\"_x4d792050686f6e65\">",
	    "<tuple id=\"_x4d792050686f6e65\"><status><basic>closed</basic></status>"
	    "<ms:availability>18500</ms:availability><contact priority=\"0.000\">",
	    "<dm:person id=\"_person\"><rpid:activities><rpid:busy/></rpid:activities>"
	    "<ms:availability>9500</ms:availability><dm:note>In a call &lt;with&gt;",
	};
	char *doc = NULL;
	size_t len;

	(void)state;
	fill(p, r, ARRAY_LEN(r));
	assert_int_equal(pres_write_pidf(p, map, "sip:al&ice@xmpp.test", &doc, &len), 0);
	for (size_t i = 0; i < ARRAY_LEN(must); i++)
		if (!strstr(doc, must[i]))
			fail_msg("written PIDF lacks %s\n%s", must[i], doc);
	assert_null(strstr(doc, "<with>"));
	free(doc);

	/* An empty model is one closed tuple, and stays offline. */
	pres_init(p);
	assert_int_equal(pres_write_pidf(p, map, "sip:a@b", &doc, &len), 0);
	assert_non_null(strstr(doc, "<tuple id=\"_x\"><status><basic>closed</basic>"));
	free(doc);

	assert_int_equal(pres_write_pidf(p, map, "", &doc, &len), -EINVAL);
	assert_int_equal(pres_write_pidf(p, map, "sip:\xff", &doc, &len), -EINVAL);
	free(p);
}

/* --- notes ----------------------------------------------------------------------- */

static void test_note_truncation(void **state)
{
	struct pres_entry e;
	char big[3 * 600 + 1];

	(void)state;
	/* 600 three-byte characters: 1800 bytes, cut to 341 characters. */
	for (int i = 0; i < 600; i++)
		memcpy(big + 3 * i, "\xe2\x82\xac", 3);
	big[1800] = '\0';
	assert_int_equal(pres_entry_set_note(&e, big, 1800), 0);
	assert_int_equal(strlen(e.note), 1023);
	assert_true(utf8_valid(e.note, strlen(e.note)));

	/* ASCII fills the limit exactly. */
	memset(big, 'a', 1500);
	assert_int_equal(pres_entry_set_note(&e, big, 1500), 0);
	assert_int_equal(strlen(e.note), PRES_NOTE_MAX);

	/* A note read from a document is cut the same way. */
	struct pres *p = new_pres();
	char doc[4096];
	int n = snprintf(doc, sizeof(doc),
	                 PIDF_HEAD
	                 "<tuple id='t'><status><basic>open</basic></status><note>");
	for (int i = 0; i < 700; i++)
		n += snprintf(doc + n, sizeof(doc) - (size_t)n, "\xc3\xa9");
	n += snprintf(doc + n, sizeof(doc) - (size_t)n, "</note></tuple></presence>");
	assert_int_equal(pres_read(PIDF, doc, (size_t)n, map, p), 0);
	assert_int_equal(strlen(p->e[0].note), PRES_NOTE_MAX);
	assert_true(utf8_valid(p->e[0].note, PRES_NOTE_MAX));
	free(p);

	/* Characters XML cannot carry become spaces; U+FFFF too. */
	assert_int_equal(pres_entry_set_note(&e,
	                                     "a\x02"
	                                     "b\xef\xbf\xbf"
	                                     "c",
	                                     7),
	                 0);
	assert_string_equal(e.note, "a b c");
}

/* --- hostile input ----------------------------------------------------------------- */

#define LOL  "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"
#define LOL2 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"

static const struct hostile_case {
	const char *name;
	const char *ctype;
	const char *body;
	int want;
} hostile_cases[] = {
    {"DTD", PIDF,
     "<!DOCTYPE presence SYSTEM 'http://127.0.0.1:1/pidf.dtd'>" PIDF_HEAD "</presence>",
     -EPERM},
    {"billion laughs", PIDF,
     "<?xml version='1.0'?><!DOCTYPE presence [<!ENTITY lol 'lol'>"
     "<!ENTITY lol2 '" LOL "'><!ENTITY lol3 '" LOL2 "'>]>" PIDF_HEAD
     "<note>&lol3;</note></presence>",
     -EPERM},
    {"external entity in categories", CATS,
     "<!DOCTYPE c [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><categories "
     "xmlns='http://schemas.microsoft.com/2006/09/sip/categories'>&x;</categories>",
     -EPERM},
    {"entity in msrtc", MSRTC, "<!ENTITY x 'y'><presentity uri='a'/>", -EPERM},
    {"invalid UTF-8", PIDF, PIDF_HEAD "<note>caf\xe9</note></presence>", -EILSEQ},
    {"overlong UTF-8", MSRTC, "<presentity uri='\xc0\xaf'/>", -EILSEQ},
    {"malformed", PIDF, PIDF_HEAD "<tuple id='t'></presence>", -EBADMSG},
    {"empty body", PIDF, "", -EBADMSG},
    {"not XML", CATS, "availability=3500", -EBADMSG},
    {"PIDF root in wrong namespace", PIDF, "<presence xmlns='urn:example'/>", -EBADMSG},
    {"categories sent as PIDF", PIDF, CATS_STATE("3500"), -EBADMSG},
    {"PIDF sent as categories", CATS, PIDF_HEAD "</presence>", -EBADMSG},
    {"categories root outside Microsoft namespaces", CATS, "<categories xmlns='urn:x'/>",
     -EBADMSG},
    {"PIDF sent as msrtc", MSRTC, PIDF_HEAD "</presence>", -EBADMSG},
    {"msrtc root in foreign namespace", MSRTC, "<presentity xmlns='urn:x' uri='a'/>",
     -EBADMSG},
    {"XPIDF is not supported", "application/xpidf+xml", "<presence/>", -ENOTSUP},
    {"no content type", NULL, PIDF_HEAD "</presence>", -ENOTSUP},
    {"prefix of a type", "application/pidf", PIDF_HEAD "</presence>", -ENOTSUP},
    {"type with parameters and case", " Application/PIDF+XML ; charset=UTF-8",
     PIDF_HEAD "</presence>", 0},
    {"msrtc type in capitals", "TEXT/XML+MSRTC.PIDF", MSRTC_DOC("300", "400"), 0},
};

static void test_hostile(void **state)
{
	struct pres *p = new_pres();
	struct pres *before = new_pres();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(hostile_cases); i++) {
		const struct hostile_case *c = &hostile_cases[i];
		memset(p, 0x5a, sizeof(*p));
		memcpy(before, p, sizeof(*p));
		int err = pres_read(c->ctype, c->body, strlen(c->body), map, p);
		if (err != c->want)
			fail_msg("case '%s': got %d, want %d", c->name, err, c->want);
		if (err && memcmp(before, p, sizeof(*p)) != 0)
			fail_msg("case '%s': model written on error", c->name);
	}
	free(p);
	free(before);
}

static void test_oversize(void **state)
{
	struct pres *p = new_pres();
	size_t len = XMLS_MAX_DEFAULT + 1;
	char *body = malloc(len);
	const char *head = PIDF_HEAD "<note>";
	const char *tail = "</note></presence>";

	(void)state;
	assert_non_null(body);
	memset(body, 'a', len);
	memcpy(body, head, strlen(head));
	memcpy(body + len - strlen(tail), tail, strlen(tail));
	assert_int_equal(pres_read(PIDF, body, len, map, p), -E2BIG);
	/* One byte less is a document like any other. */
	memcpy(body + len - 1 - strlen(tail), tail, strlen(tail));
	assert_int_equal(pres_read(PIDF, body, len - 1, map, p), 0);
	assert_int_equal(p->n, 0);
	free(body);
	free(p);
}

static void test_too_many_tuples(void **state)
{
	struct pres *p = new_pres();
	char *doc = malloc(16384);
	size_t n;

	(void)state;
	assert_non_null(doc);
	for (int count = PRES_MAX_ENTRIES; count <= PRES_MAX_ENTRIES + 1; count++) {
		n = (size_t)snprintf(doc, 16384, PIDF_HEAD);
		for (int i = 0; i < count; i++)
			n +=
			    (size_t)snprintf(doc + n, 16384 - n,
			                     "<tuple id='t%d'><status><basic>open</basic>"
			                     "</status></tuple>",
			                     i);
		n += (size_t)snprintf(doc + n, 16384 - n, "</presence>");
		assert_int_equal(pres_read(PIDF, doc, n, map, p),
		                 count <= PRES_MAX_ENTRIES ? 0 : -E2BIG);
	}
	free(doc);
	free(p);
}

/* --- RFC 8048 section 6: the rules the mapping must follow --------------------- */

/* The <contact> of the only tuple written for one resource of priority prio. */
static char *contact_of(int prio)
{
	struct pres *p = new_pres();
	struct res r = {"r", PRES_ACT_AVAILABLE, prio, ""};
	char *doc = NULL, *out;
	size_t len;

	fill(p, &r, 1);
	assert_int_equal(pres_write_pidf(p, map, "sip:a@b", &doc, &len), 0);
	char *c = strstr(doc, "<contact");
	assert_non_null(c);
	char *end = strchr(c, '>');
	out = strndup(c, (size_t)(end - c + 1));
	free(doc);
	free(p);
	return out;
}

/* RFC 8048 section 6.2 note 6 (and 6.3 note 2, the way back). */
static void test_priority_rfc8048(void **state)
{
	static const struct {
		const char *why;
		int prio;
		const char *contact;
	} out[] = {
	    {"6.2 note 6: XMPP 0 is PIDF 0", 0, "<contact priority=\"0.000\">"},
	    {"6.2 note 6: XMPP 127 is PIDF 1", 127, "<contact priority=\"1.000\">"},
	    {"6.2 note 6 example: 1 -> 0.007", 1, "<contact priority=\"0.007\">"},
	    {"6.2 note 6 example: 2 -> 0.015", 2, "<contact priority=\"0.015\">"},
	    {"6.2 note 6 example: 126 -> 0.992", 126, "<contact priority=\"0.992\">"},
	    {"6.2 note 6: a negative priority MUST NOT be mapped", -1, "<contact>"},
	    {"6.2 note 6: nor the lowest", -128, "<contact>"},
	};
	static const struct {
		const char *why;
		const char *q; /* NULL: no priority attribute */
		int prio;
	} in[] = {
	    {"6.3 note 2: PIDF 0 is XMPP 0", "0", 0},
	    {"6.3 note 2: PIDF 1 is XMPP 127", "1", 127},
	    {"6.3 note 2: PIDF 1.000 is XMPP 127", "1.000", 127},
	    {"6.3 note 2: 0.007 back to 1", "0.007", 1},
	    {"6.3 note 2: 0.992 back to 126", "0.992", 126},
	    {"an intermediate qvalue lands between", "0.5", 64},
	    {"no priority: the XMPP default 0 (RFC 6121 4.7.2.3)", NULL, 0},
	    {"not a qvalue (RFC 3863): default 0", "1.5", 0},
	    {"four decimals are not a qvalue: default 0", "0.5000", 0},
	};
	struct pres *p = new_pres();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(out); i++) {
		char *c = contact_of(out[i].prio);
		if (strcmp(c, out[i].contact) != 0)
			fail_msg("%s: wrote %s, want %s", out[i].why, c, out[i].contact);
		free(c);
	}
	/* "mapping intermediate values ... so that they are unique", and each
	 * comes back as itself. */
	char seen[PRES_PRIO_MAX + 1][40];
	for (int prio = 0; prio <= PRES_PRIO_MAX; prio++) {
		char *c = contact_of(prio);
		snprintf(seen[prio], sizeof(seen[prio]), "%s", c);
		for (int k = 0; k < prio; k++)
			if (strcmp(seen[k], c) != 0)
				continue;
			else
				fail_msg("6.2 note 6: priorities %d and %d both write %s",
				         k, prio, c);
		char doc[512];
		snprintf(doc, sizeof(doc),
		         "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'>"
		         "<tuple id='r'><status><basic>open</basic></status>"
		         "%ssip:a@b</contact></tuple></presence>",
		         c);
		free(c);
		assert_int_equal(pres_read(PIDF, doc, strlen(doc), map, p), 0);
		if (p->e[0].priority != prio)
			fail_msg("6.3 note 2: priority %d read back as %d", prio,
			         p->e[0].priority);
	}
	for (size_t i = 0; i < ARRAY_LEN(in); i++) {
		char doc[512];
		snprintf(doc, sizeof(doc),
		         "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'>"
		         "<tuple id='r'><status><basic>open</basic></status>"
		         "<contact%s%s%s>sip:a@b</contact></tuple></presence>",
		         in[i].q ? " priority='" : "", in[i].q ? in[i].q : "",
		         in[i].q ? "'" : "");
		assert_int_equal(pres_read(PIDF, doc, strlen(doc), map, p), 0);
		if (p->e[0].priority != in[i].prio)
			fail_msg("%s: read %d, want %d", in[i].why, p->e[0].priority,
			         in[i].prio);
	}
	free(p);
}

#define RFC8048_TUPLE(status)                                                            \
	"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:romeo@example.net'>" \
	"<tuple id='ID-dr4hcr0st3lup4c'><status>" status "</status></tuple></presence>"

/* RFC 8048 section 6.2 note 7 (writing <show/>) and 6.3 note 3 (reading it). */
static void test_show_rfc8048(void **state)
{
	static const struct {
		enum pres_activity act;
		const char *status; /* the tuple's whole <status> as written */
	} out[] = {
	    {PRES_ACT_AWAY, "<status><basic>open</basic>"
	                    "<show xmlns=\"jabber:client\">away</show></status>"},
	    {PRES_ACT_DND, "<status><basic>open</basic>"
	                   "<show xmlns=\"jabber:client\">dnd</show></status>"},
	    {PRES_ACT_XA, "<status><basic>open</basic>"
	                  "<show xmlns=\"jabber:client\">xa</show></status>"},
	    {PRES_ACT_CHAT, "<status><basic>open</basic>"
	                    "<show xmlns=\"jabber:client\">chat</show></status>"},
	    /* no <show/> in XMPP, none in the PIDF */
	    {PRES_ACT_AVAILABLE, "<status><basic>open</basic></status>"},
	    /* unavailable is basic closed alone (6.2 note 4) */
	    {PRES_ACT_OFFLINE, "<status><basic>closed</basic></status>"},
	};
	static const struct {
		const char *why;
		const char *body;
		enum pres_activity want;
	} in[] = {
	    {"RFC 8048 example 4 (open, show away)",
	     RFC8048_TUPLE("<basic>open</basic><show xmlns='jabber:client'>away</show>"),
	     PRES_ACT_AWAY},
	    {"show dnd",
	     RFC8048_TUPLE("<basic>open</basic><show xmlns='jabber:client'>dnd</show>"),
	     PRES_ACT_DND},
	    {"show xa",
	     RFC8048_TUPLE("<basic>open</basic><show xmlns='jabber:client'>xa</show>"),
	     PRES_ACT_XA},
	    {"show chat",
	     RFC8048_TUPLE("<basic>open</basic><show xmlns='jabber:client'>chat</show>"),
	     PRES_ACT_CHAT},
	    {"show beats RPID (6.3 note 3: the gateway includes it)",
	     "<presence xmlns='urn:ietf:params:xml:ns:pidf' "
	     "xmlns:rpid='urn:ietf:params:xml:ns:pidf:rpid' entity='pres:r@e'>"
	     "<tuple id='t'><status><basic>open</basic>"
	     "<show xmlns='jabber:client'>xa</show></status>"
	     "<rpid:activities><rpid:busy/></rpid:activities></tuple></presence>",
	     PRES_ACT_XA},
	    {"show outside jabber:client is not XMPP's",
	     RFC8048_TUPLE("<basic>open</basic><show xmlns='urn:example'>away</show>"),
	     PRES_ACT_AVAILABLE},
	    {"a value RFC 6121 does not define says nothing",
	     RFC8048_TUPLE(
	         "<basic>open</basic><show xmlns='jabber:client'>sleepy</show>"),
	     PRES_ACT_AVAILABLE},
	    {"closed with a show is still unavailable (6.3 note 1)",
	     RFC8048_TUPLE(
	         "<basic>closed</basic><show xmlns='jabber:client'>away</show>"),
	     PRES_ACT_OFFLINE},
	    {"RFC 8048 example 20 (closed)", RFC8048_TUPLE("<basic>closed</basic>"),
	     PRES_ACT_OFFLINE},
	};
	struct pres *p = new_pres();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(out); i++) {
		struct res r = {"r", out[i].act, 0, ""};
		char *doc = NULL;
		size_t len;
		fill(p, &r, 1);
		assert_int_equal(pres_write_pidf(p, map, "sip:a@b", &doc, &len), 0);
		if (!strstr(doc, out[i].status))
			fail_msg("%s: written tuple lacks %s\n%s", act(out[i].act),
			         out[i].status, doc);
		/* and reads back the same (6.3 note 3) */
		assert_int_equal(pres_read(PIDF, doc, len, map, p), 0);
		assert_int_equal(p->e[0].activity, out[i].act);
		free(doc);
	}
	for (size_t i = 0; i < ARRAY_LEN(in); i++) {
		struct pres_entry s;
		assert_int_equal(pres_read(PIDF, in[i].body, strlen(in[i].body), map, p),
		                 0);
		pres_summary(p, map, &s);
		if (s.activity != in[i].want ||
		    s.open != (in[i].want != PRES_ACT_OFFLINE))
			fail_msg("%s: got %s %s", in[i].why, s.open ? "open" : "closed",
			         act(s.activity));
		/* and what XMPP gets: the same show */
		struct pres_xmpp x;
		pres_to_xmpp(map, &s, &x);
		assert_int_equal(x.available, in[i].want != PRES_ACT_OFFLINE);
	}
	free(p);
}

/* RFC 8048 section 6.3 note 1: basic open is XMPP available, whatever else a
 * tuple says; the one exception kept is Lync's Offline number (presence.map,
 * docs/design-notes.md). Checked with a map whose rpid-in row says offline. */
static void test_open_never_unavailable(void **state)
{
	size_t len;
	char *text = slurp(MAP_PATH, &len);
	const char *row = "rpid-in unknown            -";
	char *at = strstr(text, row);
	struct presmap *m2 = NULL;
	struct diag_list dl;
	struct pres *p = new_pres();
	struct pres_entry s;

	(void)state;
	assert_non_null(at);
	memcpy(at, "rpid-in unknown offline     ", strlen(row));
	diag_init(&dl);
	assert_int_equal(presmap_parse(&m2, text, len, "test", &dl), 0);
	diag_free(&dl);
	free(text);
	static const struct {
		const char *why;
		const char *body;
		bool open;
	} cases[] = {
	    {"open + an rpid-in row saying offline: available",
	     "<presence xmlns='urn:ietf:params:xml:ns:pidf' "
	     "xmlns:rpid='urn:ietf:params:xml:ns:pidf:rpid' entity='pres:r@e'>"
	     "<tuple id='t'><status><basic>open</basic></status>"
	     "<rpid:activities><rpid:unknown/></rpid:activities></tuple></presence>",
	     true},
	    {"no basic + the same row: offline (nothing says open)",
	     "<presence xmlns='urn:ietf:params:xml:ns:pidf' "
	     "xmlns:rpid='urn:ietf:params:xml:ns:pidf:rpid' entity='pres:r@e'>"
	     "<tuple id='t'><status/>"
	     "<rpid:activities><rpid:unknown/></rpid:activities></tuple></presence>",
	     false},
	    {"open + Lync Offline number (18500): the documented Lync rule",
	     "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:r@e'>"
	     "<tuple id='t'><status><basic>open</basic></status>"
	     "<availability xmlns='http://schemas.microsoft.com/2006/09/sip/state'>"
	     "18500</availability></tuple></presence>",
	     false},
	    {"open + Lync unknown number (0): falls through to open",
	     "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:r@e'>"
	     "<tuple id='t'><status><basic>open</basic></status>"
	     "<availability xmlns='http://schemas.microsoft.com/2006/09/sip/state'>"
	     "0</availability></tuple></presence>",
	     true},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		assert_int_equal(
		    pres_read(PIDF, cases[i].body, strlen(cases[i].body), m2, p), 0);
		pres_summary(p, m2, &s);
		if (s.open != cases[i].open)
			fail_msg("%s: got %s", cases[i].why, act(s.activity));
	}
	presmap_free(m2);
	free(p);
}

/* Tuples best first (RFC 8048 section 6.2: a watcher shows the most available
 * resource; a simple one reads the first tuple only). */
static void test_tuple_order(void **state)
{
	static const struct {
		const char *name;
		struct res r[4];
		size_t n;
		const char *order; /* tuple ids in written order, space separated */
	} cases[] = {
	    {"RFC 8048 6.2: away, dnd, available -> available first",
	     {{"a", PRES_ACT_AWAY, 0, ""},
	      {"d", PRES_ACT_DND, 0, ""},
	      {"v", PRES_ACT_AVAILABLE, 0, ""}},
	     3,
	     "v d a"},
	    {"higher priority first, whatever the activity",
	     {{"low", PRES_ACT_AVAILABLE, 1, ""}, {"high", PRES_ACT_AWAY, 9, ""}},
	     2,
	     "high low"},
	    {"closed last, even with the highest priority",
	     {{"gone", PRES_ACT_OFFLINE, 127, ""}, {"here", PRES_ACT_XA, 0, ""}},
	     2,
	     "here"}, /* pres_update keeps no closed entry beside open ones; the
	               * writer still puts one last */
	    {"ties keep their order",
	     {{"b", PRES_ACT_AWAY, 3, ""}, {"a", PRES_ACT_AWAY, 3, ""}},
	     2,
	     "b a"},
	};
	struct pres *p = new_pres();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *doc = NULL, got[128] = "";
		size_t len;
		fill(p, cases[i].r, cases[i].n);
		assert_int_equal(pres_write_pidf(p, map, "sip:a@b", &doc, &len), 0);
		for (const char *t = strstr(doc, "<tuple id=\""); t;
		     t = strstr(t + 1, "<tuple id=\"")) {
			const char *id = t + strlen("<tuple id=\"");
			size_t n = strcspn(id, "\"");
			if (got[0])
				strcat(got, " ");
			strncat(got, id, n);
		}
		size_t want_n = strlen(cases[i].order);
		if (strncmp(got, cases[i].order, want_n) != 0)
			fail_msg("case '%s': tuples %s, want %s first", cases[i].name,
			         got, cases[i].order);
		free(doc);
	}
	free(p);
}

/* RFC 7247 section 6.5 step 8 on the written tuple: a device entry's <contact>
 * is entity;gr=resource, encoded as a URI parameter (RFC 3261 25.1 paramchar);
 * anything else keeps the entity. */
static void test_contact_gruu_written(void **state)
{
	static const struct {
		const char *name;
		const char *entity;
		const char *id;
		bool device;
		const char *contact; /* what <contact> must hold */
	} cases[] = {
	    {"RFC 7247 6.5 example: baz@xmpp.example/qux", "sip:baz@xmpp.example", "qux",
	     true, ">sip:baz@xmpp.example;gr=qux</contact>"},
	    {"6.5 step 8: non-ASCII percent-encoded", "sip:bob@xmpp.test", "b\xc3\xbcro",
	     true, ">sip:bob@xmpp.test;gr=b%C3%BCro</contact>"},
	    {"RFC 3261 25.1: ';' '=' and space are not paramchar", "sip:bob@xmpp.test",
	     "a b;c=d", true, ">sip:bob@xmpp.test;gr=a%20b%3Bc%3Dd</contact>"},
	    {"sips: entity", "sips:bob@xmpp.test", "desk", true,
	     ">sips:bob@xmpp.test;gr=desk</contact>"},
	    {"6.5 step 8: gr only for sip/sips, not pres:", "pres:bob@xmpp.test", "desk",
	     true, ">pres:bob@xmpp.test</contact>"},
	    {"not a device: the entity", "sip:bob@xmpp.test", "t1", false,
	     ">sip:bob@xmpp.test</contact>"},
	    {"no resource: the entity", "sip:bob@xmpp.test", "", true,
	     ">sip:bob@xmpp.test</contact>"},
	};
	struct pres *p = new_pres();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *doc = NULL;
		size_t len;
		pres_init(p);
		p->n = 1;
		memset(&p->e[0], 0, sizeof(p->e[0]));
		snprintf(p->e[0].id, sizeof(p->e[0].id), "%s", cases[i].id);
		p->e[0].device = cases[i].device;
		p->e[0].open = true;
		p->e[0].activity = PRES_ACT_AVAILABLE;
		assert_int_equal(pres_write_pidf(p, map, cases[i].entity, &doc, &len), 0);
		if (!strstr(doc, cases[i].contact))
			fail_msg("case '%s': no %s in\n%s", cases[i].name,
			         cases[i].contact, doc);
		free(doc);
	}
	free(p);
}

/* RFC 7247 section 6.4 step 8 on a read tuple: a <contact> that is a GRUU of
 * the entity names a device whose resource is the gr value (6.3: percent-
 * decoded); other contacts leave the tuple id. */
static void test_contact_gruu_read(void **state)
{
	static const struct {
		const char *name;
		const char *entity;
		const char *contact;
		const char *id;
		bool device;
	} cases[] = {
	    {"6.4 step 8: sip:foo@sip.example;gr=bar -> bar", "sip:foo@sip.example",
	     "sip:foo@sip.example;gr=bar", "bar", true},
	    {"6.3: percent-decoded", "sip:foo@sip.example",
	     "sip:foo@sip.example;gr=b%C3%BCro", "b\xc3\xbcro", true},
	    {"white space around the URI", "sip:foo@sip.example",
	     "\n  sip:foo@sip.example;gr=bar \n", "bar", true},
	    {"host compares in any case (RFC 3261 19.1.4)", "sip:foo@SIP.example",
	     "sip:foo@sip.EXAMPLE;gr=bar", "bar", true},
	    {"pres: entity, sip: contact", "pres:foo@sip.example",
	     "sip:foo@sip.example;transport=tcp;gr=bar", "bar", true},
	    {"another user's GRUU is not this one's device", "sip:foo@sip.example",
	     "sip:other@sip.example;gr=bar", "t1", false},
	    {"user parts are case-sensitive (RFC 3261 19.1.4)", "sip:foo@sip.example",
	     "sip:Foo@sip.example;gr=bar", "t1", false},
	    {"6.3: a temporary GRUU (valueless gr) is left out", "sip:foo@sip.example",
	     "sip:foo@sip.example;gr", "t1", false},
	    {"no gr: not a device", "sip:foo@sip.example", "sip:foo@sip.example", "t1",
	     false},
	    {"a gr that is no resourcepart (control character)", "sip:foo@sip.example",
	     "sip:foo@sip.example;gr=a%01b", "t1", false},
	};
	struct pres *p = new_pres();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char doc[1024];
		int n = snprintf(doc, sizeof(doc),
		                 "<presence xmlns='urn:ietf:params:xml:ns:pidf' "
		                 "entity='%s'><tuple id='t1'><status><basic>open</basic>"
		                 "</status><contact>%s</contact></tuple></presence>",
		                 cases[i].entity, cases[i].contact);
		assert_int_equal(pres_read(PIDF, doc, (size_t)n, map, p), 0);
		assert_int_equal(p->n, 1);
		if (strcmp(p->e[0].id, cases[i].id) != 0 ||
		    p->e[0].device != cases[i].device)
			fail_msg("case '%s': id '%s' device %d, want '%s' %d",
			         cases[i].name, p->e[0].id, p->e[0].device, cases[i].id,
			         cases[i].device);
	}
	free(p);
}

/* What the writer says of a device, the reader takes back (RFC 7247 6.4/6.5
 * are inverse for the gr <-> resourcepart part). */
static void test_contact_gruu_round_trip(void **state)
{
	static const char *const resources[] = {"desk", "b\xc3\xbcro", "a b;c=d",
	                                        "1st",  "x/y@z",       "50%"};
	struct pres *p = new_pres(), *q = new_pres();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(resources); i++) {
		struct pres_entry e;
		char *doc = NULL;
		size_t len;
		pres_init(p);
		assert_int_equal(
		    pres_from_xmpp(map, NULL, NULL, NULL, 5, resources[i], &e), 0);
		assert_true(e.device);
		assert_int_equal(pres_update(p, &e), 0);
		assert_int_equal(pres_write_pidf(p, map, "sip:bob@xmpp.test", &doc, &len),
		                 0);
		assert_int_equal(pres_read(PIDF, doc, len, map, q), 0);
		assert_int_equal(q->n, 1);
		assert_string_equal(q->e[0].id, resources[i]);
		assert_true(q->e[0].device);
		free(doc);
	}
	free(p);
	free(q);
}

static void test_activity_names(void **state)
{
	(void)state;
	for (int a = 0; a < PRES_ACT_COUNT; a++) {
		enum pres_activity back;
		assert_int_equal(
		    pres_activity_parse(pres_activity_name((enum pres_activity)a), &back),
		    0);
		assert_int_equal(back, a);
	}
	assert_null(pres_activity_name(PRES_ACT_COUNT));
	enum pres_activity x;
	assert_int_equal(pres_activity_parse("Away", &x), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_activity_names),
	    cmocka_unit_test(test_xmpp_in),
	    cmocka_unit_test(test_xmpp_out),
	    cmocka_unit_test(test_aggregation),
	    cmocka_unit_test(test_update),
	    cmocka_unit_test(test_golden),
	    cmocka_unit_test(test_golden_entries),
	    cmocka_unit_test(test_rules),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_pidf_shape),
	    cmocka_unit_test(test_note_truncation),
	    cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_oversize),
	    cmocka_unit_test(test_too_many_tuples),
	    cmocka_unit_test(test_priority_rfc8048),
	    cmocka_unit_test(test_show_rfc8048),
	    cmocka_unit_test(test_open_never_unavailable),
	    cmocka_unit_test(test_tuple_order),
	    cmocka_unit_test(test_contact_gruu_written),
	    cmocka_unit_test(test_contact_gruu_read),
	    cmocka_unit_test(test_contact_gruu_round_trip),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

#include "presbridge/presmap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/maptext.h"
#include "presbridge/xmlsafe.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define NONE         (-1) /* a row that says '-', or no row */
#define RANGES_MAX   64

/* XMPP <show/> values, RFC 6121 section 4.7.2.1; "none" stands for no <show/>. */
static const char *const xmpp_shows[] = {"none", "chat", "away", "xa", "dnd"};
#define SHOW_COUNT ((int)ARRAY_LEN(xmpp_shows))

/* RFC 4480 section 3.2: every activity element <rpid:activities> may hold. */
static const char *const rpid_tokens[] = {
    "appointment",
    "away",
    "breakfast",
    "busy",
    "dinner",
    "holiday",
    "in-transit",
    "looking-for-work",
    "lunch",
    "meal",
    "meeting",
    "on-the-phone",
    "other",
    "performance",
    "permanent-absence",
    "playing",
    "presentation",
    "shopping",
    "sleeping",
    "spectator",
    "steering",
    "travel",
    "tv",
    "unknown",
    "vacation",
    "working",
    "worship",
};
#define RPID_COUNT ((int)ARRAY_LEN(rpid_tokens))

struct range {
	uint32_t lo, hi;
	int act; /* enum pres_activity or NONE */
	unsigned line;
};

struct range_table {
	const char *kw;
	uint32_t max; /* the rows must cover 0..max */
	bool bad;     /* a row was refused: coverage errors would only repeat it */
	size_t n;
	struct range r[RANGES_MAX];
};

struct presmap {
	int show_in[SHOW_COUNT];
	int show_out[PRES_ACT_COUNT];
	int rpid_in[RPID_COUNT];
	int rpid_out[PRES_ACT_COUNT];
	uint32_t lync_out[PRES_ACT_COUNT];
	struct range_table lync_in;
	struct range_table msrtc_avail;
	struct range_table msrtc_act;
	/* Lines where each single-valued row was defined (0: not yet), for
	 * duplicate and completeness errors. */
	unsigned show_in_line[SHOW_COUNT];
	unsigned show_out_line[PRES_ACT_COUNT];
	unsigned rpid_in_line[RPID_COUNT];
	unsigned rpid_out_line[PRES_ACT_COUNT];
	unsigned lync_out_line[PRES_ACT_COUNT];
};

struct parser {
	struct presmap *m;
	const char *fname;
	struct diag_list *dl;
	unsigned line;
	bool failed;
};

static void perr(struct parser *ps, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void perr(struct parser *ps, unsigned line, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	diag_add(ps->dl, DIAG_ERROR, ps->fname, line, "%s", buf);
	ps->failed = true;
}

static int word_index(const char *const *words, int n, const char *w)
{
	for (int i = 0; i < n; i++)
		if (strcmp(words[i], w) == 0)
			return i;
	return NONE;
}

/* '-' is allowed where the row may say nothing; offline where it can be meant. */
static bool parse_activity(struct parser *ps, const char *s, bool allow_none,
                           bool allow_offline, int *out)
{
	enum pres_activity a;

	if (strcmp(s, "-") == 0) {
		if (allow_none) {
			*out = NONE;
			return true;
		}
		perr(ps, ps->line,
		     "'-' is not allowed here: this row must name an activity");
		return false;
	}
	if (pres_activity_parse(s, &a) != 0) {
		perr(ps, ps->line,
		     "unknown activity '%s'; expected available, chat, away, "
		     "extended-away, "
		     "busy, do-not-disturb, be-right-back or offline",
		     s);
		return false;
	}
	if (a == PRES_ACT_OFFLINE && !allow_offline) {
		perr(ps, ps->line,
		     "'offline' is not allowed here: an available XMPP presence is never "
		     "offline (offline is type='unavailable')");
		return false;
	}
	*out = (int)a;
	return true;
}

static bool parse_number(struct parser *ps, const char *s, bool allow_max, uint32_t *out)
{
	uint64_t v = 0;

	if (allow_max && strcmp(s, "max") == 0) {
		*out = UINT32_MAX;
		return true;
	}
	if (!*s)
		goto bad;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			goto bad;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX) {
			perr(ps, ps->line, "number '%s' is larger than 4294967295", s);
			return false;
		}
	}
	*out = (uint32_t)v;
	return true;
bad:
	perr(ps, ps->line, "'%s' is not a decimal number%s", s,
	     allow_max ? " or 'max'" : "");
	return false;
}

static bool check_dup(struct parser *ps, unsigned *seen, const char *kw, const char *key)
{
	if (*seen) {
		perr(ps, ps->line, "duplicate %s row for '%s' (first at line %u)", kw,
		     key, *seen);
		return false;
	}
	*seen = ps->line;
	return true;
}

static void row_show_in(struct parser *ps, char **f)
{
	int show = word_index(xmpp_shows, SHOW_COUNT, f[1]);
	int act;

	if (show == NONE) {
		perr(ps, ps->line,
		     "unknown XMPP show '%s'; expected none, chat, away, xa or dnd",
		     f[1]);
		return;
	}
	if (check_dup(ps, &ps->m->show_in_line[show], "show-in", f[1]) &&
	    parse_activity(ps, f[2], false, false, &act))
		ps->m->show_in[show] = act;
}

static void row_show_out(struct parser *ps, char **f)
{
	int act;
	int show;

	if (!parse_activity(ps, f[1], false, false, &act) ||
	    !check_dup(ps, &ps->m->show_out_line[act], "show-out", f[1]))
		return;
	show = word_index(xmpp_shows, SHOW_COUNT, f[2]);
	if (show == NONE)
		perr(ps, ps->line,
		     "unknown XMPP show '%s'; expected none, chat, away, xa or dnd",
		     f[2]);
	else
		ps->m->show_out[act] = show;
}

static int rpid_token(struct parser *ps, const char *s)
{
	int t = word_index(rpid_tokens, RPID_COUNT, s);

	if (t == NONE)
		perr(ps, ps->line, "'%s' is not an RFC 4480 activity (section 3.2)", s);
	return t;
}

static void row_rpid_in(struct parser *ps, char **f)
{
	int t = rpid_token(ps, f[1]);
	int act;

	if (t != NONE && check_dup(ps, &ps->m->rpid_in_line[t], "rpid-in", f[1]) &&
	    parse_activity(ps, f[2], true, true, &act))
		ps->m->rpid_in[t] = act;
}

static void row_rpid_out(struct parser *ps, char **f)
{
	int act;
	int t = NONE;

	if (!parse_activity(ps, f[1], false, true, &act) ||
	    !check_dup(ps, &ps->m->rpid_out_line[act], "rpid-out", f[1]))
		return;
	if (strcmp(f[2], "-") != 0) {
		t = rpid_token(ps, f[2]);
		if (t == NONE)
			return;
		if (strcmp(f[2], "other") == 0) {
			perr(ps, ps->line,
			     "'other' cannot be written: RFC 4480 wants it to carry free "
			     "text");
			return;
		}
	}
	ps->m->rpid_out[act] = t;
}

static bool range_row(struct parser *ps, struct range_table *t, char **f, bool allow_max,
                      struct range *r)
{
	if (!parse_number(ps, f[1], false, &r->lo) ||
	    !parse_number(ps, f[2], allow_max, &r->hi) ||
	    !parse_activity(ps, f[3], true, true, &r->act))
		return false;
	if (r->lo > r->hi) {
		perr(ps, ps->line,
		     "range %s..%s is empty: the first number must not be larger", f[1],
		     f[2]);
		return false;
	}
	if (r->hi > t->max) {
		perr(ps, ps->line, "%s values stop at %u; %s is out of range", t->kw,
		     (unsigned)t->max, f[2]);
		return false;
	}
	if (t->n == RANGES_MAX) {
		perr(ps, ps->line, "more than %d %s rows", RANGES_MAX, t->kw);
		return false;
	}
	return true;
}

static void add_range(struct parser *ps, struct range_table *t, char **f, bool allow_max)
{
	struct range r = {.line = ps->line};

	if (range_row(ps, t, f, allow_max, &r))
		t->r[t->n++] = r;
	else
		t->bad = true;
}

static void row_lync_in(struct parser *ps, char **f)
{
	add_range(ps, &ps->m->lync_in, f, true);
}

static void row_msrtc_avail(struct parser *ps, char **f)
{
	add_range(ps, &ps->m->msrtc_avail, f, false);
}

static void row_msrtc_act(struct parser *ps, char **f)
{
	add_range(ps, &ps->m->msrtc_act, f, false);
}

static void row_lync_out(struct parser *ps, char **f)
{
	int act;
	uint32_t n;

	if (parse_activity(ps, f[1], false, true, &act) &&
	    check_dup(ps, &ps->m->lync_out_line[act], "lync-out", f[1]) &&
	    parse_number(ps, f[2], false, &n))
		ps->m->lync_out[act] = n;
}

static const struct row_kind {
	const char *kw;
	size_t nfields; /* including the keyword */
	const char *usage;
	void (*parse)(struct parser *ps, char **f);
} row_kinds[] = {
    {"show-in", 3, "show-in SHOW ACTIVITY", row_show_in},
    {"show-out", 3, "show-out ACTIVITY SHOW", row_show_out},
    {"rpid-in", 3, "rpid-in TOKEN ACTIVITY|-", row_rpid_in},
    {"rpid-out", 3, "rpid-out ACTIVITY TOKEN|-", row_rpid_out},
    {"lync-in", 4, "lync-in LOW HIGH|max ACTIVITY|-", row_lync_in},
    {"lync-out", 3, "lync-out ACTIVITY NUMBER", row_lync_out},
    {"msrtc-availability", 4, "msrtc-availability LOW HIGH ACTIVITY|-", row_msrtc_avail},
    {"msrtc-activity", 4, "msrtc-activity LOW HIGH ACTIVITY|-", row_msrtc_act},
};

static void parse_row(struct parser *ps, const struct maptext_row *row)
{
	const struct row_kind *k = NULL;

	ps->line = row->line;
	if (row->too_long) {
		perr(ps, row->line, "line longer than %d characters", MAPTEXT_MAX_LINE);
		return;
	}
	for (size_t i = 0; i < ARRAY_LEN(row_kinds); i++)
		if (strcmp(row->f[0], row_kinds[i].kw) == 0)
			k = &row_kinds[i];
	if (!k) {
		perr(ps, row->line,
		     "unknown keyword '%s'; expected show-in, show-out, rpid-in, "
		     "rpid-out, "
		     "lync-in, lync-out, msrtc-availability or msrtc-activity",
		     row->f[0]);
		return;
	}
	if (row->n != k->nfields || row->too_many) {
		perr(ps, row->line, "%s takes %zu fields (%s), found %zu", k->kw,
		     k->nfields - 1, k->usage, row->n - 1);
		return;
	}
	k->parse(ps, (char **)row->f);
}

/* The range rows of one table must tile 0..max exactly. */
static void check_ranges(struct parser *ps, struct range_table *t)
{
	struct range *r = t->r;

	if (t->bad)
		return;
	if (t->n == 0) {
		perr(ps, 0, "no %s rows: every value 0..%u needs one", t->kw,
		     (unsigned)t->max);
		return;
	}
	for (size_t i = 1; i < t->n; i++) {
		struct range x = r[i];
		size_t j = i;
		while (j > 0 && r[j - 1].lo > x.lo) {
			r[j] = r[j - 1];
			j--;
		}
		r[j] = x;
	}
	if (r[0].lo != 0)
		perr(ps, r[0].line, "%s: nothing maps 0..%u", t->kw,
		     (unsigned)r[0].lo - 1);
	/* top: how far the rows so far reach, and the row that reaches it. */
	const struct range *top = &r[0];
	for (size_t i = 1; i < t->n; i++) {
		if (r[i].lo <= top->hi)
			perr(ps, r[i].line, "%s %u..%u overlaps %u..%u at line %u", t->kw,
			     (unsigned)r[i].lo, (unsigned)r[i].hi, (unsigned)top->lo,
			     (unsigned)top->hi, top->line);
		else if (r[i].lo != top->hi + 1)
			perr(
			    ps, r[i].line,
			    "%s: gap, nothing maps %u..%u (between line %u and this one)",
			    t->kw, (unsigned)top->hi + 1, (unsigned)r[i].lo - 1,
			    top->line);
		if (r[i].hi > top->hi)
			top = &r[i];
	}
	if (top->hi != t->max)
		perr(ps, top->line, "%s: nothing maps %u..%s", t->kw,
		     (unsigned)top->hi + 1, t->max == UINT32_MAX ? "max" : "999");
}

static const struct range *find_range(const struct range_table *t, uint32_t v)
{
	for (size_t i = 0; i < t->n; i++)
		if (v >= t->r[i].lo && v <= t->r[i].hi)
			return &t->r[i];
	return NULL;
}

static void check_complete(struct parser *ps)
{
	struct presmap *m = ps->m;

	for (int s = 0; s < SHOW_COUNT; s++)
		if (!m->show_in_line[s])
			perr(ps, 0, "no show-in row for XMPP show '%s'", xmpp_shows[s]);
	for (int a = 0; a < PRES_ACT_COUNT; a++) {
		const char *name = pres_activity_name((enum pres_activity)a);
		if (a != PRES_ACT_OFFLINE && !m->show_out_line[a])
			perr(ps, 0, "no show-out row for activity '%s'", name);
		if (!m->rpid_out_line[a])
			perr(ps, 0, "no rpid-out row for activity '%s'", name);
		if (!m->lync_out_line[a])
			perr(ps, 0, "no lync-out row for activity '%s'", name);
	}
}

/* A number the bridge writes must read back as the activity it was written
 * for, or a PIDF round trip (and a Lync user's colour) would change it. */
static void check_lync_out(struct parser *ps)
{
	struct presmap *m = ps->m;

	if (m->lync_in.bad)
		return;
	for (int a = 0; a < PRES_ACT_COUNT; a++) {
		if (!m->lync_out_line[a])
			continue;
		const struct range *r = find_range(&m->lync_in, m->lync_out[a]);
		const char *name = pres_activity_name((enum pres_activity)a);
		char got[64];

		if (r && r->act == a)
			continue;
		if (!r)
			snprintf(got, sizeof(got), "nothing");
		else
			snprintf(got, sizeof(got), "%s (lync-in line %u)",
			         r->act == NONE
			             ? "'-'"
			             : pres_activity_name((enum pres_activity)r->act),
			         r->line);
		perr(ps, m->lync_out_line[a],
		     "lync-out %s %u reads back as %s; it must read back as %s", name,
		     (unsigned)m->lync_out[a], got, name);
	}
}

/* maptext stops a field at a NUL byte and does not look at encodings: refuse
 * both here, so nothing after a stray byte is silently ignored. */
static void check_bytes(struct parser *ps, const char *text, size_t len)
{
	unsigned line = 1;
	const char *p = text;
	const char *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		if (memchr(p, '\0', n))
			perr(ps, line, "NUL byte in the line");
		else if (!utf8_valid(p, n))
			perr(ps, line, "the line is not valid UTF-8");
		p = nl ? nl + 1 : end;
		line++;
	}
}

int presmap_parse(struct presmap **mapp, const char *text, size_t len, const char *fname,
                  struct diag_list *dl)
{
	struct presmap *m = calloc(1, sizeof(*m));
	struct parser ps = {.m = m, .fname = fname, .dl = dl};
	struct maptext mt;
	struct maptext_row row;
	int err = 0;

	if (!m)
		return -ENOMEM;
	for (int i = 0; i < SHOW_COUNT; i++)
		m->show_in[i] = NONE;
	for (int i = 0; i < RPID_COUNT; i++)
		m->rpid_in[i] = NONE;
	for (int i = 0; i < PRES_ACT_COUNT; i++) {
		m->show_out[i] = NONE;
		m->rpid_out[i] = NONE;
	}
	m->lync_in = (struct range_table){.kw = "lync-in", .max = UINT32_MAX};
	m->msrtc_avail = (struct range_table){.kw = "msrtc-availability", .max = 999};
	m->msrtc_act = (struct range_table){.kw = "msrtc-activity", .max = 999};

	check_bytes(&ps, text, len);
	maptext_init(&mt, text, len);
	while (maptext_next(&mt, &row))
		parse_row(&ps, &row);
	check_ranges(&ps, &m->lync_in);
	check_ranges(&ps, &m->msrtc_avail);
	check_ranges(&ps, &m->msrtc_act);
	check_complete(&ps);
	check_lync_out(&ps);

	if (dl->oom)
		err = -ENOMEM;
	else if (ps.failed)
		err = -EINVAL;
	if (err) {
		free(m);
		return err;
	}
	*mapp = m;
	return 0;
}

void presmap_free(struct presmap *map)
{
	free(map);
}

static int decided(int act, enum pres_activity *out)
{
	if (act == NONE)
		return -ENOENT;
	*out = (enum pres_activity)act;
	return 0;
}

int presmap_show_in(const struct presmap *map, const char *show, enum pres_activity *out)
{
	bool absent = !show || !*show;
	int s = absent ? 0 : word_index(xmpp_shows, SHOW_COUNT, show);

	/* "none" is this file's word for no <show/>, not an XMPP value. */
	if (s == NONE || (s == 0 && !absent))
		return -ENOENT;
	return decided(map->show_in[s], out);
}

int presmap_rpid_in(const struct presmap *map, const char *token, enum pres_activity *out)
{
	int t = word_index(rpid_tokens, RPID_COUNT, token);

	return t == NONE ? -ENOENT : decided(map->rpid_in[t], out);
}

static int range_in(const struct range_table *t, uint32_t v, enum pres_activity *out)
{
	const struct range *r = find_range(t, v);

	return r ? decided(r->act, out) : -ENOENT;
}

int presmap_lync_in(const struct presmap *map, uint32_t avail, enum pres_activity *out)
{
	return range_in(&map->lync_in, avail, out);
}

int presmap_msrtc_availability_in(const struct presmap *map, uint32_t v,
                                  enum pres_activity *out)
{
	return range_in(&map->msrtc_avail, v, out);
}

int presmap_msrtc_activity_in(const struct presmap *map, uint32_t v,
                              enum pres_activity *out)
{
	return range_in(&map->msrtc_act, v, out);
}

const char *presmap_show_out(const struct presmap *map, enum pres_activity a)
{
	if ((unsigned)a >= PRES_ACT_COUNT || a == PRES_ACT_OFFLINE)
		return NULL;
	int s = map->show_out[a];
	return s <= 0 ? NULL : xmpp_shows[s];
}

const char *presmap_rpid_out(const struct presmap *map, enum pres_activity a)
{
	if ((unsigned)a >= PRES_ACT_COUNT || map->rpid_out[a] == NONE)
		return NULL;
	return rpid_tokens[map->rpid_out[a]];
}

uint32_t presmap_lync_out(const struct presmap *map, enum pres_activity a)
{
	return (unsigned)a < PRES_ACT_COUNT ? map->lync_out[a] : UINT32_MAX;
}

uint32_t presmap_rank(const struct presmap *map, enum pres_activity a)
{
	return presmap_lync_out(map, a);
}

#include "presbridge/msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "presbridge/sbuf.h"
#include "presbridge/xmlsafe.h"

/* ---- element table ---------------------------------------------------------- */

enum tag_kind {
	TAG_INLINE, /* anything not listed: no effect on layout */
	TAG_BR,
	TAG_LINE, /* block without vertical margins: a new line */
	TAG_PARA, /* block with margins: a blank line */
	TAG_RAW,  /* content is never shown */
	TAG_PRE,
	TAG_UL,
	TAG_OL,
	TAG_LI,
	TAG_CELL,
	TAG_IMG,
	TAG_A,
};

/* Default rendering of HTML elements as browsers' user-agent style sheets give
 * it: display:block with or without a margin. */
static const struct {
	const char *name;
	enum tag_kind kind;
} tags[] = {
    {"a", TAG_A},           {"address", TAG_LINE},    {"article", TAG_LINE},
    {"aside", TAG_LINE},    {"blockquote", TAG_PARA}, {"br", TAG_BR},
    {"caption", TAG_LINE},  {"center", TAG_LINE},     {"dd", TAG_LINE},
    {"details", TAG_LINE},  {"dialog", TAG_LINE},     {"dir", TAG_UL},
    {"div", TAG_LINE},      {"dl", TAG_PARA},         {"dt", TAG_LINE},
    {"fieldset", TAG_LINE}, {"figcaption", TAG_LINE}, {"figure", TAG_PARA},
    {"footer", TAG_LINE},   {"form", TAG_LINE},       {"h1", TAG_PARA},
    {"h2", TAG_PARA},       {"h3", TAG_PARA},         {"h4", TAG_PARA},
    {"h5", TAG_PARA},       {"h6", TAG_PARA},         {"header", TAG_LINE},
    {"hr", TAG_PARA},       {"iframe", TAG_RAW},      {"img", TAG_IMG},
    {"legend", TAG_LINE},   {"li", TAG_LI},           {"listing", TAG_PRE},
    {"main", TAG_LINE},     {"menu", TAG_UL},         {"nav", TAG_LINE},
    {"noembed", TAG_RAW},   {"noframes", TAG_RAW},    {"ol", TAG_OL},
    {"p", TAG_PARA},        {"pre", TAG_PRE},         {"script", TAG_RAW},
    {"section", TAG_LINE},  {"style", TAG_RAW},       {"summary", TAG_LINE},
    {"table", TAG_LINE},    {"td", TAG_CELL},         {"th", TAG_CELL},
    {"title", TAG_RAW},     {"tr", TAG_LINE},         {"ul", TAG_UL},
    {"xmp", TAG_PRE},
};

static enum tag_kind tag_kind(const char *name)
{
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		if (strcmp(tags[i].name, name) == 0)
			return tags[i].kind;
	return TAG_INLINE;
}

/* ---- character references --------------------------------------------------- */

/* The named references people and mail/IM editors actually write. Names are
 * case-sensitive; unknown names are left as typed, as browsers do. */
static const struct {
	const char *name;
	uint32_t cp;
} entities[] = {
    {"AMP", 0x26},      {"GT", 0x3e},       {"LT", 0x3c},      {"QUOT", 0x22},
    {"Eacute", 0xc9},   {"aacute", 0xe1},   {"agrave", 0xe0},  {"amp", 0x26},
    {"apos", 0x27},     {"auml", 0xe4},     {"bdquo", 0x201e}, {"bull", 0x2022},
    {"ccedil", 0xe7},   {"cent", 0xa2},     {"copy", 0xa9},    {"darr", 0x2193},
    {"deg", 0xb0},      {"divide", 0xf7},   {"eacute", 0xe9},  {"egrave", 0xe8},
    {"emsp", 0x2003},   {"ensp", 0x2002},   {"euro", 0x20ac},  {"frac12", 0xbd},
    {"frac14", 0xbc},   {"frac34", 0xbe},   {"gt", 0x3e},      {"harr", 0x2194},
    {"hearts", 0x2665}, {"hellip", 0x2026}, {"iexcl", 0xa1},   {"iquest", 0xbf},
    {"laquo", 0xab},    {"larr", 0x2190},   {"ldquo", 0x201c}, {"lrm", 0x200e},
    {"lsquo", 0x2018},  {"lt", 0x3c},       {"mdash", 0x2014}, {"micro", 0xb5},
    {"middot", 0xb7},   {"nbsp", 0xa0},     {"ndash", 0x2013}, {"ntilde", 0xf1},
    {"ouml", 0xf6},     {"para", 0xb6},     {"plusmn", 0xb1},  {"pound", 0xa3},
    {"quot", 0x22},     {"raquo", 0xbb},    {"rarr", 0x2192},  {"rdquo", 0x201d},
    {"reg", 0xae},      {"rlm", 0x200f},    {"rsquo", 0x2019}, {"sbquo", 0x201a},
    {"sect", 0xa7},     {"shy", 0xad},      {"szlig", 0xdf},   {"thinsp", 0x2009},
    {"times", 0xd7},    {"trade", 0x2122},  {"uarr", 0x2191},  {"uuml", 0xfc},
    {"yen", 0xa5},      {"zwj", 0x200d},    {"zwnj", 0x200c},
};

/* HTML5 reads numeric references 128-159 as Windows-1252, because that is what
 * the authors of such pages meant; 0 marks the five bytes 1252 leaves unused. */
static const uint16_t cp1252[32] = {
    0x20ac, 0,      0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
    0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017d, 0,
    0,      0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
    0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0,      0x017e, 0x0178,
};

#define REPLACEMENT        0xfffd
#define ENTITY_NAME_MAX    10
#define NUMERIC_DIGITS_MAX 8

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int hexval(char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static uint32_t numeric_fixup(uint32_t v)
{
	if (v >= 0x80 && v <= 0x9f && cp1252[v - 0x80])
		return cp1252[v - 0x80];
	if (v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return REPLACEMENT;
	return v;
}

/* Decode the character reference at p ('&'). Returns the bytes it spans, or 0
 * when p does not start one (the '&' is then plain text). */
static size_t char_ref(const char *p, const char *end, uint32_t *cp)
{
	const char *q = p + 1;

	if (q < end && *q == '#') {
		q++;
		bool hex = q < end && (*q == 'x' || *q == 'X');
		if (hex)
			q++;
		uint32_t v = 0;
		size_t nd = 0;
		for (; q < end; q++) {
			int d = hex ? hexval(*q) : (is_digit(*q) ? *q - '0' : -1);
			if (d < 0)
				break;
			if (++nd <= NUMERIC_DIGITS_MAX)
				v = v * (hex ? 16 : 10) + (uint32_t)d;
			else
				v = 0x110000; /* too many digits: out of range */
		}
		if (nd == 0)
			return 0;
		if (q < end && *q == ';')
			q++;
		*cp = numeric_fixup(v);
		return (size_t)(q - p);
	}

	size_t n = 0;
	while (q + n < end && n <= ENTITY_NAME_MAX && (is_alpha(q[n]) || is_digit(q[n])))
		n++;
	if (n == 0 || n > ENTITY_NAME_MAX || q + n >= end || q[n] != ';')
		return 0;
	for (size_t i = 0; i < sizeof(entities) / sizeof(entities[0]); i++) {
		if (strlen(entities[i].name) == n &&
		    memcmp(entities[i].name, q, n) == 0) {
			*cp = entities[i].cp;
			return n + 2;
		}
	}
	return 0;
}

/* Decode one UTF-8 sequence (the input was validated as a whole). */
static size_t utf8_get(const char *s, uint32_t *cp)
{
	const unsigned char *p = (const unsigned char *)s;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] < 0xe0) {
		*cp = ((uint32_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f);
		return 2;
	}
	if (p[0] < 0xf0) {
		*cp = ((uint32_t)(p[0] & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) |
		      (p[2] & 0x3f);
		return 3;
	}
	*cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) |
	      ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
	return 4;
}

static void put_utf8(struct sbuf *sb, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	sbuf_putn(sb, b, n);
}

/* ---- layout ---------------------------------------------------------------- */

#define LIST_DEPTH_MAX 16
#define HREF_MAX       2048

struct span {
	const char *p;
	size_t n;
};

struct out {
	struct sbuf sb;
	unsigned want;  /* line breaks owed before the next content */
	bool line_open; /* the current line has content */
	bool space;     /* a collapsible space is owed */
	bool tab;       /* a table-cell separator is owed */
	unsigned pre;   /* <pre> nesting: white space is content */
	bool pre_lf;    /* a LF right after <pre> is not content (HTML5) */
	unsigned lists;
	struct {
		bool ordered;
		unsigned n;
	} list[LIST_DEPTH_MAX];
	bool in_a;
	size_t a_start; /* where the link's visible text begins in sb */
	struct span href;
};

static bool is_space_cp(uint32_t cp)
{
	return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f';
}

/* Spaces and tabs at the end of a line are invisible in a browser; dropping
 * them turns a line holding only &nbsp; into the empty line it looks like. */
static void trim_line_end(struct out *o)
{
	while (o->sb.len &&
	       (o->sb.p[o->sb.len - 1] == ' ' || o->sb.p[o->sb.len - 1] == '\t'))
		o->sb.len--;
	if (o->sb.p)
		o->sb.p[o->sb.len] = '\0';
	if (o->a_start > o->sb.len)
		o->a_start = o->sb.len;
}

static void flush(struct out *o)
{
	if (o->want && o->sb.len) {
		trim_line_end(o);
		for (unsigned i = 0; i < o->want; i++)
			sbuf_putc(&o->sb, '\n');
	} else if (o->tab) {
		sbuf_putc(&o->sb, '\t');
	} else if (o->space) {
		sbuf_putc(&o->sb, ' ');
	}
	o->want = 0;
	o->tab = false;
	o->space = false;
}

static void content(struct out *o, uint32_t cp)
{
	if (!msg_char_allowed(cp))
		return;
	flush(o);
	put_utf8(&o->sb, cp);
	o->line_open = true;
}

static void line_break(struct out *o)
{
	/* Cap: a flood of <br> must not turn a small body into a huge one. */
	if (o->want < 64)
		o->want++;
	o->line_open = false;
	o->space = false;
	o->tab = false;
}

/* A block boundary: level 1 ends the line, level 2 also leaves a blank line.
 * Adjacent margins collapse, as in CSS. */
static void block(struct out *o, unsigned level)
{
	if (o->want < level)
		o->want = level;
	o->line_open = false;
	o->space = false;
	o->tab = false;
}

/* Text as it appears in the document: white space collapses unless in <pre>. */
static void text_cp(struct out *o, uint32_t cp)
{
	if (cp == '\r')
		cp = '\n';
	if (o->pre_lf) {
		o->pre_lf = false;
		if (cp == '\n')
			return;
	}
	if (cp == 0xa0) {
		content(o, ' '); /* a space that never collapses */
		return;
	}
	if (!is_space_cp(cp)) {
		content(o, cp);
		return;
	}
	if (o->pre) {
		if (cp == '\n')
			line_break(o);
		else
			content(o, cp == '\f' ? ' ' : cp);
		return;
	}
	if (o->line_open)
		o->space = true;
}

/* Text with character references, e.g. an attribute value or a text run. */
static void text_span(struct out *o, const char *p, const char *end)
{
	while (p < end) {
		uint32_t cp;
		size_t n;
		if (*p == '&' && (n = char_ref(p, end, &cp)) > 0) {
			p += n;
		} else if (*p == '\r' && p + 1 < end && p[1] == '\n') {
			p++; /* CRLF is one line break (HTML5 input preprocessing) */
			continue;
		} else {
			p += utf8_get(p, &cp);
		}
		text_cp(o, cp);
	}
}

/* ---- links ------------------------------------------------------------------ */

static const char *const link_schemes[] = {
    "http:", "https:", "mailto:", "sip:", "sips:", "tel:", "ftp:"};

static bool has_prefix(const char *s, size_t n, const char *prefix)
{
	size_t pl = strlen(prefix);

	return n >= pl && strncasecmp(s, prefix, pl) == 0;
}

static void trim(const char **s, size_t *n)
{
	while (*n && is_space_cp((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_space_cp((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

/* The link target is worth showing when it says more than the link text:
 * "alice@example.com" for mailto:alice@example.com says it all. */
static bool href_adds(const char *h, size_t hn, const char *t, size_t tn)
{
	static const char *const implied[] = {"mailto:", "sip:", "tel:"};

	if (hn && h[hn - 1] == '/')
		hn--;
	if (tn && t[tn - 1] == '/')
		tn--;
	if (hn == tn && memcmp(h, t, hn) == 0)
		return false;
	for (size_t i = 0; i < sizeof(implied) / sizeof(implied[0]); i++) {
		size_t pl = strlen(implied[i]);
		if (has_prefix(h, hn, implied[i]) && hn - pl == tn &&
		    memcmp(h + pl, t, tn) == 0)
			return false;
	}
	return true;
}

static void link_close(struct out *o)
{
	if (!o->in_a)
		return;
	o->in_a = false;

	struct out tmp = {0};
	sbuf_init(&tmp.sb);
	text_span(&tmp, o->href.p, o->href.p + o->href.n);
	if (tmp.sb.err) {
		o->sb.err = tmp.sb.err;
		goto out;
	}
	const char *h = tmp.sb.p ? tmp.sb.p : "";
	size_t hn = tmp.sb.len;
	trim(&h, &hn);
	bool known = false;
	for (size_t i = 0; i < sizeof(link_schemes) / sizeof(link_schemes[0]); i++)
		known = known || has_prefix(h, hn, link_schemes[i]);
	if (!known || hn > HREF_MAX || o->a_start > o->sb.len)
		goto out;
	const char *t = o->sb.p ? o->sb.p + o->a_start : "";
	size_t tn = o->sb.len - o->a_start;
	trim(&t, &tn);
	if (!href_adds(h, hn, t, tn))
		goto out;
	if (o->line_open)
		o->space = true;
	content(o, '<');
	for (size_t i = 0; i < hn;) {
		uint32_t cp;
		i += utf8_get(h + i, &cp);
		content(o, cp);
	}
	content(o, '>');
out:
	sbuf_free(&tmp.sb);
}

/* ---- tags ------------------------------------------------------------------- */

#define NAME_MAX_LEN 16

struct tag {
	char name[NAME_MAX_LEN + 1]; /* lower-cased; "" when too long to be known */
	bool end;
	struct span alt;
	struct span href;
	bool has_href;
};

static bool is_tag_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Read a name (tag or attribute) at p into buf, lower-cased. */
static const char *read_name(const char *p, const char *end, char *buf, bool attr)
{
	size_t n = 0;

	while (p < end && !is_tag_space(*p) && *p != '/' && *p != '>' &&
	       (!attr || *p != '=')) {
		if (n < NAME_MAX_LEN) {
			char c = *p;
			buf[n] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		}
		n++;
		p++;
	}
	buf[n <= NAME_MAX_LEN ? n : 0] = '\0';
	return p;
}

/*
 * Parse the tag starting at p ('<' already checked to be followed by a letter
 * or "/letter"). Returns the position after its '>', or NULL when the input
 * ends inside the tag: browsers then drop the tag and everything after it.
 */
static const char *read_tag(const char *p, const char *end, struct tag *t)
{
	memset(t, 0, sizeof(*t));
	p++;
	if (*p == '/') {
		t->end = true;
		p++;
	}
	p = read_name(p, end, t->name, false);
	for (;;) {
		while (p < end && (is_tag_space(*p) || *p == '/'))
			p++;
		if (p >= end)
			return NULL;
		if (*p == '>')
			return p + 1;

		char an[NAME_MAX_LEN + 1];
		p = read_name(p, end, an, true);
		while (p < end && is_tag_space(*p))
			p++;
		if (p >= end)
			return NULL;
		if (*p != '=')
			continue;
		p++;
		while (p < end && is_tag_space(*p))
			p++;
		if (p >= end)
			return NULL;
		struct span v;
		if (*p == '"' || *p == '\'') {
			const char *q = memchr(p + 1, *p, (size_t)(end - p - 1));
			if (!q)
				return NULL;
			v.p = p + 1;
			v.n = (size_t)(q - p - 1);
			p = q + 1;
		} else {
			v.p = p;
			while (p < end && !is_tag_space(*p) && *p != '>')
				p++;
			v.n = (size_t)(p - v.p);
		}
		if (strcmp(an, "alt") == 0 && !t->alt.p)
			t->alt = v;
		else if (strcmp(an, "href") == 0 && !t->has_href) {
			t->href = v;
			t->has_href = true;
		}
	}
}

static void list_item(struct out *o)
{
	/* Past LIST_DEPTH_MAX levels items are shown at that level, so that deep
	 * nesting cannot multiply the indentation. */
	unsigned depth = o->lists < LIST_DEPTH_MAX ? o->lists : LIST_DEPTH_MAX;
	bool ordered =
	    o->lists && o->lists <= LIST_DEPTH_MAX && o->list[o->lists - 1].ordered;

	block(o, 1);
	for (unsigned i = 1; i < depth; i++) {
		content(o, ' ');
		content(o, ' ');
	}
	if (ordered) {
		char num[16];
		unsigned n = ++o->list[o->lists - 1].n;
		size_t len = 0;
		do {
			num[len++] = (char)('0' + n % 10);
			n /= 10;
		} while (n);
		while (len)
			content(o, (unsigned char)num[--len]);
		content(o, '.');
	} else {
		content(o, 0x2022); /* bullet */
	}
	o->space = true;
}

static void start_tag(struct out *o, const struct tag *t, enum tag_kind k)
{
	switch (k) {
	case TAG_BR:
		line_break(o);
		break;
	case TAG_LINE:
		block(o, 1);
		break;
	case TAG_PARA:
		block(o, 2);
		break;
	case TAG_PRE:
		block(o, 2);
		o->pre++;
		o->pre_lf = true;
		break;
	case TAG_UL:
	case TAG_OL:
		block(o, o->lists ? 1 : 2);
		if (o->lists < LIST_DEPTH_MAX) {
			o->list[o->lists].ordered = k == TAG_OL;
			o->list[o->lists].n = 0;
		}
		o->lists++;
		break;
	case TAG_LI:
		list_item(o);
		break;
	case TAG_CELL:
		if (o->line_open)
			o->tab = true;
		break;
	case TAG_IMG:
		if (t->alt.p)
			text_span(o, t->alt.p, t->alt.p + t->alt.n);
		break;
	case TAG_A:
		link_close(o);
		if (t->has_href) {
			o->in_a = true;
			o->href = t->href;
			o->a_start = o->sb.len;
		}
		break;
	case TAG_RAW:
	case TAG_INLINE:
		break;
	}
}

static void end_tag(struct out *o, enum tag_kind k)
{
	switch (k) {
	case TAG_BR:
		line_break(o); /* </br> is a <br> in HTML5 */
		break;
	case TAG_LINE:
	case TAG_LI:
		block(o, 1);
		break;
	case TAG_PARA:
		block(o, 2);
		break;
	case TAG_PRE:
		if (o->pre)
			o->pre--;
		o->pre_lf = false;
		block(o, 2);
		break;
	case TAG_UL:
	case TAG_OL:
		if (o->lists)
			o->lists--;
		block(o, o->lists ? 1 : 2);
		break;
	case TAG_A:
		link_close(o);
		break;
	case TAG_CELL:
	case TAG_IMG:
	case TAG_RAW:
	case TAG_INLINE:
		break;
	}
}

/* Skip the content of a raw-text element up to its end tag; NULL when it
 * never ends (the rest of the input is then its content). */
static const char *skip_raw(const char *p, const char *end, const char *name)
{
	size_t n = strlen(name);

	for (; p < end; p++) {
		if (*p != '<' || (size_t)(end - p) < n + 2 || p[1] != '/')
			continue;
		if (strncasecmp(p + 2, name, n) != 0)
			continue;
		const char *q = p + 2 + n;
		if (q == end || is_tag_space(*q) || *q == '/' || *q == '>')
			return p;
	}
	return NULL;
}

/* Skip a comment starting at p ("<!--"). NULL when it never closes. */
static const char *skip_comment(const char *p, const char *end)
{
	const char *q = p + 4;

	/* "<!-->" and "<!--->" are complete (empty) comments in HTML5. */
	if (q < end && *q == '>')
		return q + 1;
	if (end - q >= 2 && q[0] == '-' && q[1] == '>')
		return q + 2;
	for (; q < end; q++) {
		if (end - q >= 3 && memcmp(q, "-->", 3) == 0)
			return q + 3;
		if (end - q >= 4 && memcmp(q, "--!>", 4) == 0)
			return q + 4;
	}
	return NULL;
}

/* Skip a bogus comment ("<!...>", "<?...>", "</ ...>") up to the next '>'. */
static const char *skip_to_gt(const char *p, const char *end)
{
	const char *q = memchr(p, '>', (size_t)(end - p));

	return q ? q + 1 : NULL;
}

/* One markup construct at p ('<'). Returns where scanning continues, or NULL
 * when the rest of the input is swallowed. Sets *literal when the '<' is text. */
static const char *markup(struct out *o, const char *p, const char *end, bool *literal)
{
	size_t rest = (size_t)(end - p);

	*literal = false;
	if (rest >= 4 && memcmp(p, "<!--", 4) == 0)
		return skip_comment(p, end);
	if (rest >= 2 && (p[1] == '!' || p[1] == '?'))
		return skip_to_gt(p, end);
	if (rest >= 3 && p[1] == '/' && p[2] == '>')
		return p + 3;
	if (rest >= 3 && p[1] == '/' && !is_alpha(p[2]))
		return skip_to_gt(p, end);
	if (!(rest >= 2 && is_alpha(p[1])) &&
	    !(rest >= 3 && p[1] == '/' && is_alpha(p[2]))) {
		*literal = true;
		return p + 1;
	}

	struct tag t;
	const char *next = read_tag(p, end, &t);
	if (!next)
		return NULL;
	enum tag_kind k = tag_kind(t.name);
	if (t.end) {
		end_tag(o, k);
		return next;
	}
	start_tag(o, &t, k);
	if (k == TAG_RAW)
		return skip_raw(next, end, t.name);
	return next;
}

int msg_html_to_text(const char *html, size_t len, const struct msg_limits *lim,
                     char **textp, size_t *lenp)
{
	if (msg_check_size(len, lim))
		return -E2BIG;
	if (!html) /* NULL + 0 is undefined behaviour */
		html = "";
	if (!utf8_valid(html, len))
		return -EILSEQ;

	struct out o = {0};
	sbuf_init(&o.sb);
	/* sbuf_take() terminates only what was appended: start with "". */
	sbuf_puts(&o.sb, "");
	const char *p = html;
	const char *end = html + len;
	while (p && p < end) {
		const char *run = p;
		while (p < end && *p != '<')
			p++;
		text_span(&o, run, p);
		if (p >= end)
			break;
		bool literal;
		const char *next = markup(&o, p, end, &literal);
		if (literal)
			text_cp(&o, '<');
		p = next;
	}
	link_close(&o);
	trim_line_end(&o);

	int err;
	size_t n = 0;
	char *text = sbuf_take(&o.sb, &n);
	if (!text)
		return -ENOMEM;
	err = msg_check_limits(text, n, lim);
	if (err) {
		free(text);
		return err;
	}
	*textp = text;
	if (lenp)
		*lenp = n;
	return 0;
}

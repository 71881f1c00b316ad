#include "presbridge/pres.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "presbridge/presmap.h"
#include "presbridge/xmlsafe.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The neutral activity names used in presence.map, in enum order. */
static const char *const activity_names[PRES_ACT_COUNT] = {
    [PRES_ACT_AVAILABLE] = "available", [PRES_ACT_CHAT] = "chat",
    [PRES_ACT_AWAY] = "away",           [PRES_ACT_XA] = "extended-away",
    [PRES_ACT_BUSY] = "busy",           [PRES_ACT_DND] = "do-not-disturb",
    [PRES_ACT_BRB] = "be-right-back",   [PRES_ACT_OFFLINE] = "offline",
};

const char *pres_activity_name(enum pres_activity a)
{
	return (unsigned)a < PRES_ACT_COUNT ? activity_names[a] : NULL;
}

int pres_activity_parse(const char *name, enum pres_activity *out)
{
	for (int a = 0; a < PRES_ACT_COUNT; a++) {
		if (strcmp(name, activity_names[a]) == 0) {
			*out = (enum pres_activity)a;
			return 0;
		}
	}
	return -ENOENT;
}

void pres_init(struct pres *p)
{
	p->n = 0;
	p->have = PRES_HAVE_STATE | PRES_HAVE_NOTE;
}

void pres_copy(struct pres *dst, const struct pres *src)
{
	dst->n = src->n;
	dst->have = src->have;
	memcpy(dst->e, src->e, src->n * sizeof(src->e[0]));
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int pres_entry_set_note(struct pres_entry *e, const char *s, size_t len)
{
	char buf[PRES_NOTE_MAX + 1];
	size_t o = 0;
	bool cut = false;

	if (!utf8_valid(s, len))
		return -EILSEQ;
	while (len > 0 && is_ws(*s)) {
		s++;
		len--;
	}
	/* Normalised as an XML parser would read the text back (line ends made
	 * LF; characters XML 1.0 forbids made spaces), so a note survives a
	 * document the bridge wrote unchanged. */
	for (size_t i = 0; i < len; i++) {
		const unsigned char *u = (const unsigned char *)s + i;
		char c = s[i];
		if (c == '\r' && i + 1 < len && s[i + 1] == '\n')
			continue;
		if (c == '\r')
			c = '\n';
		else if (u[0] < 0x20 && c != '\n' && c != '\t')
			c = ' ';
		else if (u[0] == 0xef && i + 2 < len && u[1] == 0xbf &&
		         (u[2] & 0xfe) == 0xbe) {
			c = ' '; /* U+FFFE, U+FFFF */
			i += 2;
		}
		if (o == PRES_NOTE_MAX) {
			buf[o] = c;
			cut = true;
			break;
		}
		buf[o++] = c;
	}
	/* buf[o] is the first byte left out: never keep half a character. */
	while (cut && o > 0 && ((unsigned char)buf[o] & 0xc0) == 0x80)
		o--;
	while (o > 0 && is_ws(buf[o - 1]))
		o--;
	memcpy(e->note, buf, o);
	e->note[o] = '\0';
	return 0;
}

static void remove_at(struct pres *p, size_t i)
{
	memmove(&p->e[i], &p->e[i + 1], (p->n - i - 1) * sizeof(p->e[0]));
	p->n--;
}

static ssize_t find_id(const struct pres *p, const char *id)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->e[i].id, id) == 0)
			return (ssize_t)i;
	return -1;
}

int pres_update(struct pres *p, const struct pres_entry *e)
{
	ssize_t at = find_id(p, e->id);

	if (!e->open) {
		if (at >= 0)
			remove_at(p, (size_t)at);
		if (p->n == 0) {
			p->e[0] = *e;
			p->n = 1;
		}
		return 0;
	}
	for (size_t i = p->n; i-- > 0;) {
		if (!p->e[i].open) {
			remove_at(p, i);
			if (at > (ssize_t)i)
				at--;
			else if (at == (ssize_t)i)
				at = -1;
		}
	}
	if (at >= 0) {
		p->e[at] = *e;
		return 0;
	}
	if (p->n == PRES_MAX_ENTRIES)
		return -E2BIG;
	p->e[p->n++] = *e;
	return 0;
}

void pres_summary(const struct pres *p, const struct presmap *map, struct pres_entry *out)
{
	const struct pres_entry *best = NULL;

	for (size_t i = 0; i < p->n; i++) {
		const struct pres_entry *e = &p->e[i];
		if (!e->open)
			continue;
		if (!best || e->priority > best->priority ||
		    (e->priority == best->priority &&
		     presmap_rank(map, e->activity) < presmap_rank(map, best->activity)))
			best = e;
	}
	if (best) {
		*out = *best;
		return;
	}
	memset(out, 0, sizeof(*out));
	out->open = false;
	out->activity = PRES_ACT_OFFLINE;
	if (p->n > 0) {
		memcpy(out->id, p->e[0].id, sizeof(out->id));
		memcpy(out->note, p->e[0].note, sizeof(out->note));
	}
}

/* Does a come before b in pres_order()? (Index order breaks the last tie.) */
static bool better(const struct pres_entry *a, const struct pres_entry *b,
                   const struct presmap *map)
{
	if (a->open != b->open)
		return a->open;
	if (!a->open)
		return false;
	if (a->priority != b->priority)
		return a->priority > b->priority;
	return presmap_rank(map, a->activity) < presmap_rank(map, b->activity);
}

void pres_order(const struct pres *p, const struct presmap *map, size_t *order)
{
	/* Insertion sort: stable, and p->n is at most PRES_MAX_ENTRIES. */
	for (size_t i = 0; i < p->n; i++) {
		size_t k = i;
		while (k > 0 && better(&p->e[i], &p->e[order[k - 1]], map)) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = i;
	}
}

static bool entry_equal(const struct pres_entry *a, const struct pres_entry *b)
{
	return a->open == b->open && a->activity == b->activity &&
	       a->priority == b->priority && a->device == b->device &&
	       strcmp(a->id, b->id) == 0 && strcmp(a->note, b->note) == 0;
}

bool pres_equal(const struct pres *a, const struct pres *b)
{
	if (a->n != b->n || a->have != b->have)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!entry_equal(&a->e[i], &b->e[i]))
			return false;
	return true;
}

int pres_from_xmpp(const struct presmap *map, const char *type, const char *show,
                   const char *status, int priority, const char *resource,
                   struct pres_entry *out)
{
	struct pres_entry e;
	size_t rlen = resource ? strlen(resource) : 0;
	int err;

	memset(&e, 0, sizeof(e));
	if (type && *type && strcmp(type, "unavailable") != 0)
		return -EINVAL;
	if (rlen > PRES_ID_MAX)
		return -E2BIG;
	if (!utf8_valid(resource ? resource : "", rlen))
		return -EILSEQ;
	memcpy(e.id, resource ? resource : "", rlen);
	e.device = rlen > 0; /* RFC 7247 section 6.3: a resource is a device */
	if (status && (err = pres_entry_set_note(&e, status, strlen(status))) != 0)
		return err;
	e.priority = priority < PRES_PRIO_MIN   ? PRES_PRIO_MIN
	             : priority > PRES_PRIO_MAX ? PRES_PRIO_MAX
	                                        : priority;
	if (type && *type) {
		e.open = false;
		e.activity = PRES_ACT_OFFLINE;
	} else {
		if (presmap_show_in(map, show, &e.activity) != 0 &&
		    presmap_show_in(map, NULL, &e.activity) != 0)
			e.activity = PRES_ACT_AVAILABLE;
		e.open = true;
	}
	*out = e;
	return 0;
}

void pres_to_xmpp(const struct presmap *map, const struct pres_entry *e,
                  struct pres_xmpp *out)
{
	out->available = e->open && e->activity != PRES_ACT_OFFLINE;
	out->show = out->available ? presmap_show_out(map, e->activity) : NULL;
	out->status = e->note;
	out->priority = e->priority;
}

/* --- dispatch -------------------------------------------------------------- */

static const struct pres_reader {
	const char *type;
	int (*read)(const char *body, size_t len, const struct presmap *map,
	            struct pres *out);
} pres_readers[] = {
    {"application/pidf+xml", pres_read_pidf},
    {"text/xml+msrtc.pidf", pres_read_msrtc},
    {"application/msrtc-event-categories+xml", pres_read_categories},
};

int pres_read(const char *content_type, const char *body, size_t len,
              const struct presmap *map, struct pres *out)
{
	const char *s = content_type ? content_type : "";
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	for (n = 0; s[n] && s[n] != ';' && s[n] != ' ' && s[n] != '\t'; n++)
		;
	for (size_t i = 0; i < ARRAY_LEN(pres_readers); i++) {
		const struct pres_reader *r = &pres_readers[i];
		if (strlen(r->type) == n && strncasecmp(s, r->type, n) == 0)
			return r->read(body, len, map, out);
	}
	return -ENOTSUP;
}

/*
 * Presence documents: the PIDF, msrtc.pidf and Lync categories readers, and
 * the PIDF writer. How evidence is weighed is documented in presence.map's
 * header; the tables themselves are looked up through presmap.h.
 */
#include "presbridge/pres.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "presbridge/addr.h"
#include "presbridge/presmap.h"
#include "presbridge/sbuf.h"
#include "presbridge/xmlsafe.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define NS_PIDF       "urn:ietf:params:xml:ns:pidf"            /* RFC 3863 */
#define NS_DM         "urn:ietf:params:xml:ns:pidf:data-model" /* RFC 4479 */
#define NS_RPID       "urn:ietf:params:xml:ns:pidf:rpid"       /* RFC 4480 */
#define NS_XSI        "http://www.w3.org/2001/XMLSchema-instance"
#define NS_MS_STATE   "http://schemas.microsoft.com/2006/09/sip/state"
#define NS_CATEGORIES "http://schemas.microsoft.com/2006/09/sip/categories"
/* RFC 8048 section 6.2 note 7: the XMPP <show/> element, in its own namespace,
 * is carried inside the PIDF status. */
#define NS_JABBER "jabber:client"

/* How deep under a tuple or person an availability number or an
 * <activities> element is looked for (tuple/status/activities is 2). */
#define EVIDENCE_DEPTH 3

/* Written tuple ids that are not the resource itself start with this; a
 * resource id is kept as the tuple id only if it starts with a letter, so the
 * two never meet. The person id starts with '_' for the same reason. */
#define ID_ESCAPE "_x"
#define PERSON_ID "_person"

/* Namespaces the msrtc.pidf <presentity> is seen in: LCS writes the first;
 * MS-SIP appendix A's schema declares the second; MS-SIP 3.3.5.1's example
 * has none. */
static const char *const msrtc_namespaces[] = {
    "http://schemas.microsoft.com/2002/09/sip/presence",
    "http://schemas.microsoft.com/09/2002/sip/presence",
};

/* Microsoft publishes its schemas under both http and https names (the Lync
 * 2010 SDK pages use https); any of its namespaces is taken for the
 * availability element, whose meaning is the same in all of them. */
static const char *const ms_ns_prefixes[] = {
    "http://schemas.microsoft.com/",
    "https://schemas.microsoft.com/",
};

static bool ms_ns(const xmlNode *n)
{
	if (!n->ns || !n->ns->href)
		return false;
	for (size_t i = 0; i < ARRAY_LEN(ms_ns_prefixes); i++)
		if (strncmp((const char *)n->ns->href, ms_ns_prefixes[i],
		            strlen(ms_ns_prefixes[i])) == 0)
			return true;
	return false;
}

static bool named(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE &&
	       strcmp((const char *)n->name, name) == 0;
}

/* Decimal digits with optional surrounding white space, at most UINT32_MAX. */
static int parse_u32(const char *s, uint32_t *out)
{
	uint64_t v = 0;
	size_t digits = 0;

	if (!s)
		return -EINVAL;
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	for (; *s >= '0' && *s <= '9'; s++, digits++) {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > UINT32_MAX)
			return -ERANGE;
	}
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	if (!digits || *s)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int text_u32(const xmlNode *n, uint32_t *out)
{
	char *t;
	int err;

	if (!n)
		return -ENOENT;
	if (!(t = xmls_text(n)))
		return -ENOMEM;
	err = parse_u32(t, out);
	free(t);
	return err;
}

static int attr_u32(const xmlNode *n, const char *name, uint32_t *out)
{
	xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
	int err = parse_u32((const char *)v, out);

	xmlFree(v);
	return err;
}

static int note_from(struct pres_entry *e, const xmlNode *n)
{
	char *t = xmls_text(n);
	int err;

	if (!t)
		return -ENOMEM;
	err = pres_entry_set_note(e, t, strlen(t));
	free(t);
	return err;
}

static void set_activity(struct pres_entry *e, enum pres_activity a)
{
	e->activity = a;
	e->open = a != PRES_ACT_OFFLINE;
}

/* Parse a document and check its root; the caller frees *docp. */
static int parse_doc(const char *body, size_t len, bool (*root_ok)(const xmlNode *),
                     xmlDoc **docp, const xmlNode **rootp)
{
	xmlDoc *doc = NULL;
	int err = xmls_parse(body, len, XMLS_MAX_DEFAULT, &doc);

	if (err)
		return err;
	const xmlNode *root = xmlDocGetRootElement(doc);
	if (!root_ok(root)) {
		xmlFreeDoc(doc);
		return -EBADMSG;
	}
	*docp = doc;
	*rootp = root;
	return 0;
}

/* --- application/pidf+xml -------------------------------------------------- */

/* What one tuple or person says; node pointers are borrowed from the doc. */
struct evidence {
	int basic; /* -1 none, 0 closed, 1 open */
	bool have_number;
	uint32_t number;
	const xmlNode *show; /* <show xmlns='jabber:client'> (RFC 8048 6.2 note 7) */
	const xmlNode *activities;
	const xmlNode *note;
};

static bool is_ms_availability(const xmlNode *n)
{
	return named(n, "availability") && ms_ns(n);
}

/* Elements named activities in any namespace: RFC 4480 uses the RPID one,
 * OCS-era servers put <activities><activity>busy</activity></activities> in
 * the PIDF namespace inside <status>. */
static bool is_activities(const xmlNode *n)
{
	return named(n, "activities");
}

static bool is_xmpp_show(const xmlNode *n)
{
	return n && n->type == XML_ELEMENT_NODE && xmls_is(n, NS_JABBER, "show");
}

static const xmlNode *find_below(const xmlNode *n, bool (*pred)(const xmlNode *),
                                 int depth)
{
	if (depth == 0)
		return NULL;
	for (const xmlNode *c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (pred(c))
			return c;
		const xmlNode *f = find_below(c, pred, depth - 1);
		if (f)
			return f;
	}
	return NULL;
}

static int gather(const xmlNode *n, struct evidence *ev)
{
	ev->basic = -1;
	const xmlNode *basic =
	    xmls_child(xmls_child(n, NS_PIDF, "status"), NS_PIDF, "basic");
	if (basic) {
		char *t = xmls_text(basic);
		if (!t)
			return -ENOMEM;
		if (strcasecmp(t, "open") == 0)
			ev->basic = 1;
		else if (strcasecmp(t, "closed") == 0)
			ev->basic = 0;
		free(t);
	}
	/* The first availability that is a number counts; an element that is not
	 * (msrtc's attribute form, say) is passed over. */
	for (const xmlNode *c = n->children; c && !ev->have_number; c = c->next) {
		const xmlNode *a = is_ms_availability(c) ? c : NULL;
		if (!a && c->type == XML_ELEMENT_NODE)
			a = find_below(c, is_ms_availability, EVIDENCE_DEPTH - 1);
		if (a) {
			int err = text_u32(a, &ev->number);
			if (err == -ENOMEM)
				return err;
			ev->have_number = err == 0;
		}
	}
	ev->show = find_below(n, is_xmpp_show, EVIDENCE_DEPTH);
	ev->activities = find_below(n, is_activities, EVIDENCE_DEPTH);
	return 0;
}

/* RFC 4480 activities, element form (<rpid:meeting/>) or the legacy text
 * form (<activity>meeting</activity>); the least available that decides wins. */
static int rpid_decide(const xmlNode *acts, const struct presmap *map, bool *found,
                       enum pres_activity *out)
{
	*found = false;
	for (const xmlNode *c = acts ? acts->children : NULL; c; c = c->next) {
		enum pres_activity a;
		char *text = NULL;
		const char *token = (const char *)c->name;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (strcmp(token, "activity") == 0) {
			text = xmls_text(c);
			if (!text)
				return -ENOMEM;
			token = text;
		}
		if (presmap_rpid_in(map, token, &a) == 0 &&
		    (!*found || presmap_rank(map, a) > presmap_rank(map, *out))) {
			*out = a;
			*found = true;
		}
		free(text);
	}
	return 0;
}

/* The XMPP <show/> a PIDF carries (RFC 8048 section 6.3 note 3), if its value
 * is one RFC 6121 defines and presence.map maps. */
static int show_decide(const xmlNode *show, const struct presmap *map,
                       enum pres_activity *out)
{
	char *t;
	int err;

	if (!show)
		return -ENOENT;
	if (!(t = xmls_text(show)))
		return -ENOMEM;
	/* "none" is presence.map's word for no <show/>, never a wire value. */
	err = *t && strcmp(t, "none") != 0 ? presmap_show_in(map, t, out) : -ENOENT;
	free(t);
	return err;
}

/* The order of presence.map's "How a document is read", steps 1 to 5. */
static int pidf_decide(const struct presmap *map, const struct evidence *own,
                       const struct evidence *person, struct pres_entry *e)
{
	const struct evidence *num = own->have_number ? own : person;
	const xmlNode *show = own->show ? own->show : person->show;
	const xmlNode *acts = own->activities ? own->activities : person->activities;
	enum pres_activity a = PRES_ACT_OFFLINE;
	bool found = false;
	int err;

	if (own->basic == 0) {
		set_activity(e, PRES_ACT_OFFLINE);
		return 0;
	}
	/* The one rule that may close an open tuple: Lync's own availability
	 * number in its Offline range (presence.map, lync-in; docs/design-notes.md
	 * "Presence (RFC 8048)"). */
	if (num->have_number && presmap_lync_in(map, num->number, &a) == 0) {
		set_activity(e, a);
		return 0;
	}
	if ((err = show_decide(show, map, &a)) != -ENOENT) {
		if (err)
			return err;
		found = true;
	}
	if (!found && (err = rpid_decide(acts, map, &found, &a)) != 0)
		return err;
	/* RFC 8048 section 6.3 note 1: basic open is XMPP available. Nothing but
	 * the Lync number above makes it unavailable, whatever rpid-in says. */
	if (found && a == PRES_ACT_OFFLINE && own->basic == 1)
		a = PRES_ACT_AVAILABLE;
	if (!found)
		a = own->basic == 1 ? PRES_ACT_AVAILABLE : PRES_ACT_OFFLINE;
	set_activity(e, a);
	return 0;
}

static int hexval(char c)
{
	return (c >= '0' && c <= '9')   ? c - '0'
	       : (c >= 'a' && c <= 'f') ? c - 'a' + 10
	                                : -1;
}

/* An entry id from a tuple id or an msrtc epid. A tuple id the writer
 * escaped is decoded back to the resource; any other id is kept as it is,
 * cut to PRES_ID_MAX on a character boundary. */
static void set_entry_id(struct pres_entry *e, const char *id)
{
	size_t len = strlen(id);
	size_t pl = strlen(ID_ESCAPE);

	if (len >= pl && strncmp(id, ID_ESCAPE, pl) == 0 && (len - pl) % 2 == 0 &&
	    (len - pl) / 2 <= PRES_ID_MAX) {
		char buf[PRES_ID_MAX + 1] = {0};
		size_t n = 0;
		bool ok = true;
		for (size_t i = pl; i < len && ok; i += 2) {
			int hi = hexval(id[i]);
			int lo = hexval(id[i + 1]);
			ok = hi >= 0 && lo >= 0 && (hi | lo) != 0;
			buf[n++] = (char)(hi * 16 + lo);
		}
		if (ok && utf8_valid(buf, n)) {
			memcpy(e->id, buf, n);
			e->id[n] = '\0';
			return;
		}
	}
	if (len > PRES_ID_MAX) {
		len = PRES_ID_MAX;
		while (len > 0 && ((unsigned char)id[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(e->id, id, len);
	e->id[len] = '\0';
}

/*
 * RFC 8048 section 6.2 note 6: XMPP priority 0..127 is PIDF contact priority
 * 0..1 (RFC 3863: a qvalue, at most three decimals), 0 as 0 and 127 as 1, the
 * values between kept distinct: q = floor(p * 1000 / 127) thousandths, which
 * gives the RFC's own examples (1 -> 0.007, 2 -> 0.015, 126 -> 0.992). A
 * negative XMPP priority is not mapped (the MUST NOT of the same note): no
 * priority attribute is written. Reading inverts it: p = ceil(q * 127 / 1000),
 * exact for every value written and spread evenly for any other qvalue; a
 * missing or invalid qvalue is the XMPP default priority 0 (RFC 6121 4.7.2.3).
 */
static int prio_from_q(const char *q)
{
	unsigned milli = 0;
	unsigned digits = 0;

	if (!q || (q[0] != '0' && q[0] != '1'))
		return 0;
	milli = (unsigned)(q[0] - '0') * 1000;
	if (q[1] == '.') {
		for (const char *p = q + 2; *p; p++, digits++) {
			if (*p < '0' || *p > '9' || digits == 3)
				return 0;
			milli += (unsigned)(*p - '0') * (digits == 0   ? 100
			                                 : digits == 1 ? 10
			                                               : 1);
		}
	} else if (q[1]) {
		return 0;
	}
	if (milli > 1000)
		return 0;
	return (int)((milli * (unsigned)PRES_PRIO_MAX + 999) / 1000);
}

/* Thousandths for XMPP priority prio, or -1: not mapped (negative). */
static int q_from_prio(int prio)
{
	if (prio < 0)
		return -1;
	if (prio > PRES_PRIO_MAX)
		prio = PRES_PRIO_MAX;
	return prio * 1000 / PRES_PRIO_MAX;
}

/* "user@host" of a sip:, sips: or pres: URI (RFC 3261 19.1.1; RFC 3859): *lenp
 * octets from the returned pointer, up to the first parameter; NULL otherwise. */
static const char *aor_part(const char *uri, size_t *lenp)
{
	static const char *const schemes[] = {"sip:", "sips:", "pres:"};

	for (size_t i = 0; uri && i < ARRAY_LEN(schemes); i++) {
		size_t sl = strlen(schemes[i]);
		if (strncasecmp(uri, schemes[i], sl) == 0) {
			*lenp = strcspn(uri + sl, ";?>");
			return uri + sl;
		}
	}
	return NULL;
}

/* Same user (exact, RFC 3261 19.1.4) and host (any case) in both URIs? */
static bool same_aor(const char *a, const char *b)
{
	size_t al, bl;
	const char *pa = aor_part(a, &al), *pb = aor_part(b, &bl);
	const char *ata = pa ? memchr(pa, '@', al) : NULL;
	const char *atb = pb ? memchr(pb, '@', bl) : NULL;

	if (!ata || !atb || ata - pa != atb - pb || al != bl)
		return false;
	return strncmp(pa, pb, (size_t)(ata - pa)) == 0 &&
	       strncasecmp(ata, atb, al - (size_t)(ata - pa)) == 0;
}

/*
 * RFC 7247 section 6.4 step 8 applied to a tuple's <contact>: a GRUU of the
 * entity names one device, whose resourcepart is the gr value (section 6.3).
 * A contact of another AOR, a temporary GRUU or a gr that is no resourcepart
 * leaves the entry as the tuple made it. -ENOMEM only.
 */
static int contact_device(const xmlNode *tuple, const char *entity, struct pres_entry *e)
{
	const xmlNode *c = xmls_child(tuple, NS_PIDF, "contact");
	char *uri = c ? xmls_text(c) : NULL;
	char *res = NULL;
	int err = 0;

	if (c && !uri)
		return -ENOMEM;
	if (!uri)
		return 0;
	/* RFC 3863 4.1.4: the contact is a URI; white space around it is not. */
	char *start = uri + strspn(uri, " \t\r\n");
	start[strcspn(start, " \t\r\n")] = '\0';
	if (entity && same_aor(start, entity)) {
		int e2 = addr_gruu_resource(start, &res);
		if (e2 == -ENOMEM)
			err = e2;
		if (res && strlen(res) <= PRES_ID_MAX) {
			snprintf(e->id, sizeof(e->id), "%s", res);
			e->device = true;
		}
	}
	free(res);
	free(uri);
	return err;
}

static int pidf_entry(const xmlNode *tuple, const struct evidence *person,
                      const xmlNode *doc_note, const struct presmap *map,
                      const char *entity, struct pres_entry *e)
{
	struct evidence own = {0};
	const xmlNode *note;
	int err;

	memset(e, 0, sizeof(*e));
	if ((err = gather(tuple, &own)) != 0 ||
	    (err = pidf_decide(map, &own, person, e)) != 0)
		return err;
	if (xmls_is(tuple, NS_PIDF, "tuple")) {
		xmlChar *id = xmlGetNoNsProp(tuple, (const xmlChar *)"id");
		xmlChar *q = xmlGetNoNsProp(xmls_child(tuple, NS_PIDF, "contact"),
		                            (const xmlChar *)"priority");
		set_entry_id(e, id ? (const char *)id : "");
		e->priority = prio_from_q((const char *)q);
		xmlFree(id);
		xmlFree(q);
		if ((err = contact_device(tuple, entity, e)) != 0)
			return err;
		note = xmls_child(tuple, NS_PIDF, "note");
	} else {
		note = NULL;
	}
	if (!note)
		note = person->note;
	if (!note)
		note = doc_note;
	return note ? note_from(e, note) : 0;
}

static bool pidf_root(const xmlNode *root)
{
	return xmls_is(root, NS_PIDF, "presence");
}

int pres_read_pidf(const char *body, size_t len, const struct presmap *map,
                   struct pres *out)
{
	struct pres *p = malloc(sizeof(*p)); /* 66 KB: only what is used is set */
	struct evidence person = {.basic = -1};
	xmlDoc *doc = NULL;
	const xmlNode *root;
	int err;

	if (!p)
		return -ENOMEM;
	pres_init(p);
	if ((err = parse_doc(body, len, pidf_root, &doc, &root)) != 0)
		goto out;
	const xmlNode *pn = xmls_child(root, NS_DM, "person");
	if (pn) {
		if ((err = gather(pn, &person)) != 0)
			goto out;
		person.note = xmls_child(pn, NS_DM, "note");
	}
	const xmlNode *doc_note = xmls_child(root, NS_PIDF, "note");
	xmlChar *entity = xmlGetNoNsProp(root, (const xmlChar *)"entity");
	for (const xmlNode *t = xmls_child(root, NS_PIDF, "tuple"); t;
	     t = xmls_next(t, NS_PIDF, "tuple")) {
		if (p->n == PRES_MAX_ENTRIES) {
			err = -E2BIG;
			xmlFree(entity);
			goto out;
		}
		if ((err = pidf_entry(t, &person, doc_note, map, (const char *)entity,
		                      &p->e[p->n])) != 0) {
			xmlFree(entity);
			goto out;
		}
		p->n++;
	}
	if (p->n == 0 && pn) {
		if ((err = pidf_entry(pn, &person, doc_note, map, NULL, &p->e[0])) != 0) {
			xmlFree(entity);
			goto out;
		}
		p->n = 1;
	}
	xmlFree(entity);
	pres_copy(out, p);
out:
	xmlFreeDoc(doc);
	free(p);
	return err;
}

/* --- text/xml+msrtc.pidf --------------------------------------------------- */

static bool msrtc_root(const xmlNode *root)
{
	if (!named(root, "presentity"))
		return false;
	if (!root->ns)
		return true;
	for (size_t i = 0; i < ARRAY_LEN(msrtc_namespaces); i++)
		if (xmls_is(root, msrtc_namespaces[i], "presentity"))
			return true;
	return false;
}

static const xmlNode *child_named(const xmlNode *parent, const char *name)
{
	for (const xmlNode *c = parent ? parent->children : NULL; c; c = c->next)
		if (named(c, name))
			return c;
	return NULL;
}

int pres_read_msrtc(const char *body, size_t len, const struct presmap *map,
                    struct pres *out)
{
	struct pres *p = malloc(sizeof(*p)); /* 66 KB: only what is used is set */
	xmlDoc *doc = NULL;
	const xmlNode *root;
	struct pres_entry *e;
	enum pres_activity a = PRES_ACT_OFFLINE;
	uint32_t v;
	int err;

	if (!p)
		return -ENOMEM;
	pres_init(p);
	if ((err = parse_doc(body, len, msrtc_root, &doc, &root)) != 0)
		goto out;
	e = &p->e[0];
	memset(e, 0, sizeof(*e));
	p->n = 1;
	/* The presentity's own availability and activity are those of the most
	 * available device (MS-SIP 2.2.1); the devices list is not needed. */
	const xmlNode *avail = child_named(root, "availability");
	const xmlNode *act = child_named(root, "activity");
	if (avail && attr_u32(avail, "aggregate", &v) == 0 && v <= 999) {
		if (presmap_msrtc_availability_in(map, v, &a) != 0 &&
		    (!act || attr_u32(act, "aggregate", &v) != 0 ||
		     presmap_msrtc_activity_in(map, v, &a) != 0))
			a = PRES_ACT_AVAILABLE;
		xmlChar *epid = xmlGetNoNsProp(avail, (const xmlChar *)"epid");
		if (epid)
			set_entry_id(e, (const char *)epid);
		xmlFree(epid);
	}
	set_activity(e, a);
	const xmlNode *note = child_named(child_named(root, "userInfo"), "note");
	if (note && (err = note_from(e, note)) != 0)
		goto out;
	pres_copy(out, p);
out:
	xmlFreeDoc(doc);
	free(p);
	return err;
}

/* --- application/msrtc-event-categories+xml -------------------------------- */

static bool categories_root(const xmlNode *root)
{
	return named(root, "categories") && ms_ns(root);
}

static bool is_aggregate_state(const xmlNode *state)
{
	xmlChar *t =
	    xmlGetNsProp(state, (const xmlChar *)"type", (const xmlChar *)NS_XSI);
	const char *s = (const char *)t;
	bool yes;

	if (s && strchr(s, ':'))
		s = strchr(s, ':') + 1;
	yes = s && strcasecmp(s, "aggregateState") == 0;
	xmlFree(t);
	return yes;
}

/* The body types a note category holds, in the order they are preferred: the
 * user's own words first, the Outlook out-of-office text next. */
static const char *const note_types[] = {"personal", "OOF"};

struct categories {
	const xmlNode *aggregate; /* <state xsi:type="aggregateState"> */
	const xmlNode *fallback;  /* first state with an availability */
	bool have_note;
	const xmlNode *note[ARRAY_LEN(note_types)];
};

static void category_state(struct categories *cs, const xmlNode *cat)
{
	for (const xmlNode *s = cat->children; s; s = s->next) {
		if (!named(s, "state") || !ms_ns(s))
			continue;
		if (!cs->aggregate && is_aggregate_state(s))
			cs->aggregate = s;
		if (!cs->fallback && child_named(s, "availability"))
			cs->fallback = s;
	}
}

static void category_note(struct categories *cs, const xmlNode *cat)
{
	for (const xmlNode *n = cat->children; n; n = n->next) {
		if (!named(n, "note") || !ms_ns(n))
			continue;
		cs->have_note = true;
		for (const xmlNode *b = n->children; b; b = b->next) {
			if (!named(b, "body"))
				continue;
			xmlChar *type = xmlGetNoNsProp(b, (const xmlChar *)"type");
			for (size_t k = 0; type && k < ARRAY_LEN(note_types); k++)
				if (!cs->note[k] &&
				    strcasecmp((const char *)type, note_types[k]) == 0)
					cs->note[k] = b;
			xmlFree(type);
		}
	}
}

static const struct category_kind {
	const char *name;
	void (*read)(struct categories *cs, const xmlNode *cat);
} category_kinds[] = {
    {"state", category_state},
    {"note", category_note},
};

int pres_read_categories(const char *body, size_t len, const struct presmap *map,
                         struct pres *out)
{
	struct pres *p = malloc(sizeof(*p)); /* 66 KB: only what is used is set */
	struct categories cs = {0};
	xmlDoc *doc = NULL;
	const xmlNode *root;
	int err;

	if (!p)
		return -ENOMEM;
	pres_init(p);
	if ((err = parse_doc(body, len, categories_root, &doc, &root)) != 0)
		goto out;
	for (const xmlNode *c = root->children; c; c = c->next) {
		if (!named(c, "category"))
			continue;
		xmlChar *name = xmlGetNoNsProp(c, (const xmlChar *)"name");
		for (size_t k = 0; name && k < ARRAY_LEN(category_kinds); k++)
			if (strcmp((const char *)name, category_kinds[k].name) == 0)
				category_kinds[k].read(&cs, c);
		xmlFree(name);
	}

	struct pres_entry *e = &p->e[0];
	const xmlNode *state = cs.aggregate ? cs.aggregate : cs.fallback;

	memset(e, 0, sizeof(*e));
	enum pres_activity a = PRES_ACT_OFFLINE;
	uint32_t v;

	p->n = 1;
	p->have = 0;
	if (state)
		p->have |= PRES_HAVE_STATE;
	if (state && text_u32(child_named(state, "availability"), &v) == 0)
		presmap_lync_in(map, v, &a);
	set_activity(e, a);
	if (cs.have_note) {
		p->have |= PRES_HAVE_NOTE;
		for (size_t k = 0; k < ARRAY_LEN(note_types); k++) {
			if (cs.note[k]) {
				if ((err = note_from(e, cs.note[k])) != 0)
					goto out;
				break;
			}
		}
	}
	pres_copy(out, p);
out:
	xmlFreeDoc(doc);
	free(p);
	return err;
}

/* --- PIDF writer ----------------------------------------------------------- */

static bool id_char(char c, bool first)
{
	bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
	return first
	           ? letter
	           : letter || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/* The tuple id for a resource: an XML NCName (RFC 3863 declares it xs:ID). */
static void put_tuple_id(struct sbuf *sb, const char *id)
{
	bool plain = *id != '\0';

	for (const char *c = id; *c && plain; c++)
		plain = id_char(*c, c == id);
	if (plain) {
		sbuf_puts(sb, id);
		return;
	}
	sbuf_puts(sb, ID_ESCAPE);
	for (const unsigned char *c = (const unsigned char *)id; *c; c++)
		sbuf_printf(sb, "%02x", *c);
}

/* The activity as RPID (for every PIDF watcher) and as a Lync availability
 * number (the element of the Lync state schema, which Lync-family readers and
 * presbridge's own reader take before RPID). */
static void put_state(struct sbuf *sb, const struct presmap *map, enum pres_activity a)
{
	const char *token = presmap_rpid_out(map, a);

	if (token)
		sbuf_printf(sb, "<rpid:activities><rpid:%s/></rpid:activities>", token);
	sbuf_printf(sb, "<ms:availability>%u</ms:availability>",
	            (unsigned)presmap_lync_out(map, a));
}

static void put_tuple(struct sbuf *sb, const struct presmap *map,
                      const struct pres_entry *e, const char *entity,
                      bool person_has_note)
{
	int q = q_from_prio(e->priority);
	const char *show = e->open ? presmap_show_out(map, e->activity) : NULL;

	sbuf_puts(sb, " <tuple id=\"");
	put_tuple_id(sb, e->id);
	sbuf_printf(sb, "\"><status><basic>%s</basic>", e->open ? "open" : "closed");
	/* RFC 8048 section 6.2 note 7 (RECOMMENDED): the XMPP <show/> itself. */
	if (show)
		sbuf_printf(sb, "<show xmlns=\"" NS_JABBER "\">%s</show>", show);
	sbuf_puts(sb, "</status>");
	put_state(sb, map, e->activity);
	if (q >= 0)
		sbuf_printf(sb, "<contact priority=\"%d.%03d\">", q / 1000, q % 1000);
	else
		sbuf_puts(sb, "<contact>");
	/* RFC 7247 section 6.5 step 8: a device's contact is its GRUU (only for
	 * sip:/sips:), so the watcher sees which device each tuple is. */
	char *gruu = NULL;
	if (e->device && e->id[0] &&
	    (strncasecmp(entity, "sip:", 4) == 0 ||
	     strncasecmp(entity, "sips:", 5) == 0) &&
	    !strpbrk(entity, ";?>"))
		addr_gruu_make(entity, e->id, &gruu); /* NULL on ENOMEM: the entity */
	sbuf_put_xml(sb, gruu ? gruu : entity);
	free(gruu);
	sbuf_puts(sb, "</contact>");
	/* An empty note is written when the person has one, or a reader would
	 * give this tuple the person's. */
	if (e->note[0]) {
		sbuf_puts(sb, "<note>");
		sbuf_put_xml(sb, e->note);
		sbuf_puts(sb, "</note>");
	} else if (person_has_note) {
		sbuf_puts(sb, "<note/>");
	}
	sbuf_puts(sb, "</tuple>\n");
}

int pres_write_pidf(const struct pres *p, const struct presmap *map, const char *entity,
                    char **docp, size_t *lenp)
{
	struct pres_entry summary;
	struct sbuf sb;

	if (!entity || !*entity || !utf8_valid(entity, strlen(entity)))
		return -EINVAL;
	pres_summary(p, map, &summary);
	sbuf_init(&sb);
	sbuf_puts(&sb,
	          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	          "<presence xmlns=\"" NS_PIDF "\" xmlns:dm=\"" NS_DM
	          "\" xmlns:rpid=\"" NS_RPID "\" xmlns:ms=\"" NS_MS_STATE "\" entity=\"");
	sbuf_put_xml(&sb, entity);
	sbuf_puts(&sb, "\">\n");
	if (p->n == 0) {
		struct pres_entry off = {.activity = PRES_ACT_OFFLINE};
		put_tuple(&sb, map, &off, entity, false);
	}
	size_t order[PRES_MAX_ENTRIES];
	pres_order(p, map, order);
	for (size_t i = 0; i < p->n; i++)
		put_tuple(&sb, map, &p->e[order[i]], entity, summary.note[0] != '\0');
	sbuf_puts(&sb, " <dm:person id=\"" PERSON_ID "\">");
	put_state(&sb, map, summary.activity);
	if (summary.note[0]) {
		sbuf_puts(&sb, "<dm:note>");
		sbuf_put_xml(&sb, summary.note);
		sbuf_puts(&sb, "</dm:note>");
	}
	sbuf_puts(&sb, "</dm:person>\n</presence>\n");

	char *doc = sbuf_take(&sb, lenp);
	if (!doc)
		return -ENOMEM;
	*docp = doc;
	return 0;
}

/*
 * pres - the neutral presence model, and the readers and writers that turn
 * presence documents and XMPP presence fields into it and back.
 *
 * A presentity's presence is a set of entries, one per XMPP resource, PIDF
 * tuple or Lync endpoint. Each entry says whether it is reachable (open), what
 * the person is doing (one of eight neutral activities), a note, and an XMPP
 * priority. Every rule that picks an activity is in mappings/presence.map (see
 * presmap.h); the rules that combine the evidence of one document are described
 * in that file's header and implemented here.
 *
 * The model holds no pointers: it is plain data with fixed-size buffers, so it
 * can be copied with memcpy, cached, compared with pres_equal() and needs no
 * freeing. It is large (about 66 KiB): allocate it on the heap or statically.
 *
 * Invariant kept by every function here: an entry is closed exactly when its
 * activity is PRES_ACT_OFFLINE.
 */
#ifndef PRESBRIDGE_PRES_H
#define PRESBRIDGE_PRES_H

#include <stdbool.h>
#include <stddef.h>

struct presmap;

/* The neutral activities. The enum order means nothing: presence.map's
 * lync-out numbers rank them (presmap_rank()). */
enum pres_activity {
	PRES_ACT_AVAILABLE,
	PRES_ACT_CHAT,
	PRES_ACT_AWAY,
	PRES_ACT_XA, /* "extended-away" */
	PRES_ACT_BUSY,
	PRES_ACT_DND, /* "do-not-disturb" */
	PRES_ACT_BRB, /* "be-right-back" */
	PRES_ACT_OFFLINE,
	PRES_ACT_COUNT
};

/* A note longer than this is cut on a UTF-8 character boundary. Lync keeps
 * notes and userInfo to 1024 characters (MS-SIP 2.2.1); XMPP has no limit. */
#define PRES_NOTE_MAX 1024
/* Room for any XMPP resourcepart (RFC 7622: at most 1023 octets). */
#define PRES_ID_MAX 1023
/* More tuples or resources than this is refused (-E2BIG): no client signs in
 * from 32 places, and a bound keeps a hostile document's cost fixed. */
#define PRES_MAX_ENTRIES 32
/* XMPP priority range (RFC 6121 section 4.7.2.3); values outside are clamped. */
#define PRES_PRIO_MIN (-128)
#define PRES_PRIO_MAX 127

struct pres_entry {
	char id[PRES_ID_MAX + 1]; /* resource, tuple id or endpoint id; may be "" */
	bool open;                /* PIDF basic open; XMPP available */
	enum pres_activity activity;
	char note[PRES_NOTE_MAX +
	          1]; /* UTF-8, trimmed, no control characters; may be "" */
	int priority; /* XMPP priority; PIDF contact priority mapped */
	/* id names one device (RFC 7247 section 6.3): an XMPP resource, or the gr
	 * value of a PIDF tuple whose <contact> is a GRUU of the entity. */
	bool device;
};

/* Which parts of the presence a document stated. Lync sends only the categories
 * that changed, so a categories document may carry a note and no state: the
 * caller then keeps the activity it had. Every other reader states both. */
#define PRES_HAVE_STATE 0x1u
#define PRES_HAVE_NOTE  0x2u

struct pres {
	size_t n;
	unsigned have; /* PRES_HAVE_* */
	struct pres_entry e[PRES_MAX_ENTRIES];
};

/* "available", "chat", "away", "extended-away", "busy", "do-not-disturb",
 * "be-right-back", "offline"; NULL for an out-of-range value. Static. */
const char *pres_activity_name(enum pres_activity a);
/* Inverse of pres_activity_name(); -ENOENT for an unknown name. */
int pres_activity_parse(const char *name, enum pres_activity *out);

/* An empty model (no entry, stating both state and note). */
void pres_init(struct pres *p);
/* *dst = *src, copying only the src->n entries in use (struct pres is ~66 KB). */
void pres_copy(struct pres *dst, const struct pres *src);

/* Set e->note from s[0..len): whitespace trimmed, CR LF and CR made LF, other
 * control characters made spaces, cut at PRES_NOTE_MAX on a character boundary.
 * -EILSEQ if s is not valid UTF-8 (e->note is then unchanged). */
int pres_entry_set_note(struct pres_entry *e, const char *s, size_t len);

/*
 * Apply one resource's new state, as an XMPP presence does:
 *   - an open entry replaces the entry with the same id, or is added;
 *     closed entries are dropped (the resource that said goodbye is gone
 *     once another one is online);
 *   - a closed entry removes the entry with its id; if that leaves nothing,
 *     the closed entry stays so its note ("gone home") is still shown.
 * Returns 0, or -E2BIG when PRES_MAX_ENTRIES open entries are already there.
 * e is copied.
 */
int pres_update(struct pres *p, const struct pres_entry *e);

/*
 * The one state a watcher that shows a single status sees: the open entry
 * with the highest priority; ties go to the more available activity (lower
 * presmap_rank()), then to the earlier entry. With no open entry: closed and
 * offline, with the first entry's note (or none). *out is a copy.
 */
void pres_summary(const struct pres *p, const struct presmap *map,
                  struct pres_entry *out);

/*
 * The entries best first, as indexes into p->e (order has room for p->n):
 * open before closed; among open ones higher priority first, then the more
 * available activity (lower presmap_rank()); otherwise their order in p. The
 * first index is the entry pres_summary() picks when any entry is open. The
 * PIDF writer puts its tuples in this order, because a simple watcher reads
 * only the first tuple (RFC 8048 section 6.2: a watcher shows the "most
 * available" resource).
 */
void pres_order(const struct pres *p, const struct presmap *map, size_t *order);

/* True if both models have the same entries in the same order. */
bool pres_equal(const struct pres *a, const struct pres *b);

/* --- XMPP ------------------------------------------------------------------ */

/*
 * One XMPP <presence/> as an entry. type: NULL or "" for available,
 * "unavailable"; any other type (subscribe, probe, error...) is not presence
 * state: -EINVAL. show: NULL or "" for none; values RFC 6121 does not define
 * are taken as none. status: NULL for none. resource: NULL for none.
 * A non-empty resource makes the entry a device (pres_entry.device).
 * Returns 0, -EILSEQ (status or resource not UTF-8), -E2BIG (resource too long),
 * -EINVAL. *out is set only on success. All strings are borrowed and copied.
 */
int pres_from_xmpp(const struct presmap *map, const char *type, const char *show,
                   const char *status, int priority, const char *resource,
                   struct pres_entry *out);

struct pres_xmpp {
	bool available;     /* false: send type='unavailable' */
	const char *show;   /* NULL: no <show/>; static string */
	const char *status; /* borrowed from the entry; "" means no <status/> */
	int priority;
};

/* The XMPP presence fields for one entry (for a bare-JID view, pass the
 * pres_summary()). out->status points into e: keep e alive while using it. */
void pres_to_xmpp(const struct presmap *map, const struct pres_entry *e,
                  struct pres_xmpp *out);

/* --- documents ------------------------------------------------------------- */

/*
 * Read a presence document. content_type is matched case-insensitively, its
 * parameters ignored: application/pidf+xml, text/xml+msrtc.pidf,
 * application/msrtc-event-categories+xml. body is borrowed.
 * Returns 0 and fills *out, or:
 *   -ENOTSUP  another content type
 *   -E2BIG    body over XMLS_MAX_DEFAULT, or more than PRES_MAX_ENTRIES tuples
 *   -EILSEQ   not UTF-8
 *   -EPERM    DTD or entity declarations
 *   -EBADMSG  not well-formed, or not the root element the content type names
 *   -ENOMEM
 * *out is set only on success.
 */
int pres_read(const char *content_type, const char *body, size_t len,
              const struct presmap *map, struct pres *out);

/* The readers pres_read() dispatches to, with the same contract. */
int pres_read_pidf(const char *body, size_t len, const struct presmap *map,
                   struct pres *out);
int pres_read_msrtc(const char *body, size_t len, const struct presmap *map,
                    struct pres *out);
int pres_read_categories(const char *body, size_t len, const struct presmap *map,
                         struct pres *out);

/*
 * Write p as application/pidf+xml for entity (e.g. "sip:alice@xmpp.test").
 * One <tuple> per entry, best first (pres_order()), its id made from the entry id (an
 * NCName: ids made of ASCII letters, digits, '.', '-', '_' and starting with a letter are
 * kept; any other id is written as "_x" and its bytes in hex; pres_read_pidf() decodes it
 * back). Each tuple has <basic> and the entry's XMPP <show/> (RFC 8048 section 6.2 note
 * 7) in its <status>, its RPID activity and Lync availability number, a <contact> whose
 * priority carries an XMPP priority of 0..127 (RFC 8048 6.2 note 6; a negative one is not
 * written), and its note. The <contact> is the device's GRUU, entity ";gr=" id (RFC 7247
 * section 6.5 step 8), for a device entry of a sip:/sips: entity, else the entity.
 * The reader takes it back: a tuple whose <contact> is a GRUU of the entity is a device
 * entry with the gr value as its id (RFC 7247 section 6.4 step 8). A <dm:person> carries
 * the pres_summary() the same way. An empty model is written as one closed tuple. *docp
 * (caller-owns, free()) is NUL-terminated; *lenp excludes the NUL. Returns 0, -EINVAL
 * (empty entity, or entity not UTF-8), -ENOMEM.
 */
int pres_write_pidf(const struct pres *p, const struct presmap *map, const char *entity,
                    char **docp, size_t *lenp);

#endif

/*
 * presmap - mappings/presence.map: the tables that translate between the
 * neutral activities of pres.h, XMPP <show/>, RFC 4480 RPID activities and
 * Lync availability numbers.
 *
 * The file is the only source of these rules; its header comment documents the
 * format and how the readers use each table. The parser is strict and reports
 * every problem with file:line.
 */
#ifndef PRESBRIDGE_PRESMAP_H
#define PRESBRIDGE_PRESMAP_H

#include <stddef.h>
#include <stdint.h>

#include "presbridge/diag.h"
#include "presbridge/pres.h"

struct presmap;

/*
 * Parse presence.map text (text[0..len), borrowed; the caller read the file).
 * fname is used in diagnostics only. Every problem is added to dl as an error
 * with its line (0 for a problem with the file as a whole, such as a missing
 * row). Returns 0 and sets *mapp (caller-owns, presmap_free()) only when no
 * error was found; -EINVAL otherwise, -ENOMEM if memory ran out.
 */
int presmap_parse(struct presmap **mapp, const char *text, size_t len, const char *fname,
                  struct diag_list *dl);

/* Release a map from presmap_parse(); NULL is allowed. */
void presmap_free(struct presmap *map);

/* The lookups below return 0 and set *out when the row decides an activity;
 * -ENOENT when the map has no row for the value or its row says '-'. */

/* XMPP <show/> received (NULL or "" for none) -> activity (show-in rows). */
int presmap_show_in(const struct presmap *map, const char *show, enum pres_activity *out);
/* RFC 4480 activity name ("meeting") -> activity (rpid-in rows). */
int presmap_rpid_in(const struct presmap *map, const char *token,
                    enum pres_activity *out);
/* Lync availability number -> activity (lync-in rows). */
int presmap_lync_in(const struct presmap *map, uint32_t avail, enum pres_activity *out);
/* Legacy msrtc.pidf aggregate values (0..999) -> activity. */
int presmap_msrtc_availability_in(const struct presmap *map, uint32_t v,
                                  enum pres_activity *out);
int presmap_msrtc_activity_in(const struct presmap *map, uint32_t v,
                              enum pres_activity *out);

/* activity -> XMPP <show/> to send (show-out rows); NULL means no <show/>,
 * and always for offline (sent as type='unavailable'). Static string. */
const char *presmap_show_out(const struct presmap *map, enum pres_activity a);
/* activity -> RFC 4480 activity element name to write; NULL writes none. Static. */
const char *presmap_rpid_out(const struct presmap *map, enum pres_activity a);
/* activity -> Lync availability number to write (lync-out rows). */
uint32_t presmap_lync_out(const struct presmap *map, enum pres_activity a);
/* Rank of an activity: lower is more available. It is the lync-out number,
 * Lync's own scale, so the bridge and Lync agree on what "more available" is. */
uint32_t presmap_rank(const struct presmap *map, enum pres_activity a);

#endif

/*
 * addr - SIP URI <-> JID translation (RFC 7247 section 6), domain mapping from
 * mappings/domains.map and per-user aliases from mappings/users.map.
 *
 * A domain is bridged only if domains.map names it; anything else is refused,
 * never guessed. Each domain has a home (the side its users live on) and a name
 * on the other side:
 *
 *     home  domain     other-side-name
 *     sip   sip.test   sip.test      SIP-homed users; XMPP sees them at the component
 *     xmpp  xmpp.test  xmpp.test     XMPP-homed users; SIP sees them at the bridge
 *
 * Localparts: a SIP user part is percent-decoded, then escaped with XEP-0106 where
 * it holds a character a JID localpart forbids; the reverse unescapes XEP-0106 and
 * percent-encodes what RFC 3261's `user` production does not allow (RFC 7247
 * section 6.2). A backslash is escaped only where it starts one of XEP-0106's
 * escape sequences (docs/design-notes.md, "Addresses", says why).
 *
 * Instances (RFC 7247 section 6.3): the "gr" URI parameter of a GRUU and the
 * resourcepart of a full JID name one device; addr_sip_to_full_jid() and
 * addr_jid_to_gruu() map one to the other, the plain functions drop them.
 */
#ifndef PRESBRIDGE_ADDR_H
#define PRESBRIDGE_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "presbridge/diag.h"

/* RFC 7622 section 3.1: each JID part is at most 1023 octets. */
#define ADDR_MAX_PART 1023
/* Longest SIP URI or JID accepted as input. */
#define ADDR_MAX_INPUT 2048

enum addr_home {
	ADDR_HOME_SIP,  /* the user lives on the SIP side (Lync) */
	ADDR_HOME_XMPP, /* the user lives on the XMPP side */
};

struct addr_map; /* opaque: domains and user aliases */

/*
 * Refusal codes, shared by every function below:
 *   -EINVAL        malformed URI or JID (no user part, bad escape, bad characters)
 *   -ENAMETOOLONG  a part is longer than ADDR_MAX_PART, or the input than ADDR_MAX_INPUT
 *   -EILSEQ        a part is not valid UTF-8 after decoding
 *   -EPROTONOSUPPORT  a URI scheme other than sip: or sips:
 *   -ENOENT        the domain is not named in domains.map
 *   -ENOMEM
 */

/* Allocate an empty map (no domains: every address is refused). NULL on ENOMEM. */
struct addr_map *addr_map_new(void);
void addr_map_free(struct addr_map *m);

/*
 * Add the rows of a domains.map text (already read by the caller). Every problem
 * is recorded in dl with fname:line. Returns 0, or -EINVAL if any row was bad
 * (the good rows are kept so later checks can still run).
 */
int addr_map_load_domains(struct addr_map *m, const char *text, size_t len,
                          const char *fname, struct diag_list *dl);

/*
 * Add the rows of a users.map text. Load domains first: each alias must use
 * bridged domains consistently. Returns 0, or -EINVAL if any row was bad.
 */
int addr_map_load_users(struct addr_map *m, const char *text, size_t len,
                        const char *fname, struct diag_list *dl);

size_t addr_map_domain_count(const struct addr_map *m);
/*
 * Row i (0 .. addr_map_domain_count() - 1, in the order loaded) of the domain
 * map: its home and both names (borrowed from m; NULL pointers skipped).
 * Returns 0, or -ENOENT past the last row.
 */
int addr_map_domain(const struct addr_map *m, size_t i, enum addr_home *homep,
                    const char **sip_domainp, const char **xmpp_domainp);
size_t addr_map_alias_count(const struct addr_map *m);

/*
 * Look up a SIP-side domain name (case-insensitive). On success sets *homep and,
 * if xmpp_domainp is non-NULL, *xmpp_domainp to the XMPP-side name (borrowed from m).
 */
int addr_domain_sip(const struct addr_map *m, const char *sip_domain,
                    enum addr_home *homep, const char **xmpp_domainp);

/* Look up an XMPP-side domain name; sets the home and the SIP-side name (borrowed). */
int addr_domain_xmpp(const struct addr_map *m, const char *xmpp_domain,
                     enum addr_home *homep, const char **sip_domainp);

/*
 * Translate a SIP URI (sip: or sips:, with optional display parts stripped by the
 * caller; port, URI parameters and headers are ignored) to a bare JID.
 * *jidp: caller-owns (free()). *homep (optional): where the user lives.
 */
int addr_sip_to_jid(const struct addr_map *m, const char *uri, char **jidp,
                    enum addr_home *homep);

/*
 * Translate a JID (localpart required, resource allowed) to a SIP URI "sip:user@domain".
 * *urip: caller-owns. *resourcep (optional): the resource, caller-owns, NULL if none.
 */
int addr_jid_to_sip(const struct addr_map *m, const char *jid, char **urip,
                    char **resourcep, enum addr_home *homep);

/*
 * As addr_sip_to_jid(), keeping the instance (RFC 7247 section 6.4 step 8): a "gr"
 * URI parameter, percent-decoded, becomes the resourcepart, so
 * "sip:foo@sip.test;gr=bar" gives "foo@sip.test/bar". A URI without gr, or with a
 * valueless "gr" (a temporary GRUU, which section 6.3 leaves out), gives the bare
 * JID. A gr value that is empty, not UTF-8 or holds a control character is
 * refused like a bad user part. *jidp: caller-owns.
 */
int addr_sip_to_full_jid(const struct addr_map *m, const char *uri, char **jidp,
                         enum addr_home *homep);

/*
 * As addr_jid_to_sip(), keeping the instance (RFC 7247 section 6.5 step 8): the
 * resourcepart of a full JID becomes the "gr" URI parameter, percent-encoded where
 * it holds non-ASCII octets or characters a URI parameter cannot carry
 * (RFC 3261 section 25.1), so "baz@xmpp.test/qux" gives
 * "sip:baz@xmpp.test;gr=qux". A bare JID gives the plain URI. *urip: caller-owns.
 */
int addr_jid_to_gruu(const struct addr_map *m, const char *jid, char **urip,
                     enum addr_home *homep);

/*
 * The resourcepart a GRUU names (RFC 7247 section 6.3): the "gr" URI parameter of
 * uri, percent-decoded and checked as addr_sip_to_full_jid() does. *resp:
 * caller-owns, set to NULL when uri has no gr or a valueless one (a temporary
 * GRUU). Returns 0, -EINVAL, -ENAMETOOLONG, -EILSEQ, -ENOMEM.
 */
int addr_gruu_resource(const char *uri, char **resp);

/*
 * The GRUU of one device of aor (a "sip:user@domain" URI without parameters):
 * aor ";gr=" resource, encoded as addr_jid_to_gruu() does (RFC 7247 section 6.5
 * step 8). *urip: caller-owns. Returns 0, -EINVAL (no aor, empty resource),
 * -ENOMEM.
 */
int addr_gruu_make(const char *aor, const char *resource, char **urip);

/* XEP-0106 escape a decoded localpart. Caller-owns *outp. -EINVAL for a leading or
 * trailing space (XEP-0106 section 4.1 rule 6, and the note under the table of
 * section 3.2) or a control character. */
int addr_jid_escape(const char *local, size_t len, char **outp);

/* XEP-0106 unescape a localpart. Caller-owns *outp. */
int addr_jid_unescape(const char *local, char **outp);

/* Percent-decode s[0..len) into a NUL-terminated string; -EINVAL on a bad or %00 escape.
 */
int addr_pct_decode(const char *s, size_t len, char **outp);

/* A DNS name as RFC 1123 allows it (letters, digits, hyphens; labels of 1-63, 253 in
 * all; no leading or trailing hyphen). Bridged domains and peer hosts are names. */
bool addr_domain_valid(const char *name);

/* True if s is an IPv4 or IPv6 address literal (without brackets); false for
 * NULL. */
bool addr_is_ip(const char *s);

/* Plain words for a refusal code, for logs and error texts. */
const char *addr_strerror(int err);

#endif

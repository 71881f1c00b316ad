#include "presbridge/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "presbridge/maptext.h"
#include "presbridge/sbuf.h"
#include "presbridge/xmlsafe.h"

struct addr_domain {
	enum addr_home home;
	char *sip_name;  /* the name SIP users and servers use */
	char *xmpp_name; /* the name XMPP users and servers use */
	unsigned line;
};

struct addr_alias {
	char *sip_key; /* decoded user "@" lower-case domain */
	char *jid_key; /* lower-case bare JID */
	char *uri;     /* the SIP URI to emit */
	char *jid;     /* the JID to emit */
	enum addr_home home;
	unsigned line;
};

struct addr_map {
	struct addr_domain *dom;
	size_t ndom;
	struct addr_alias *alias;
	size_t nalias;
	size_t cap_alias;
	/* Sorted views for lookup by either side; rebuilt after each load. */
	struct addr_alias **by_sip;
	struct addr_alias **by_jid;
};

/* XEP-0106 section 3.2: the characters a localpart may not hold, and their escapes. */
static const struct {
	char c;
	const char *esc;
} xep0106[] = {
    {' ', "\\20"}, {'"', "\\22"}, {'&', "\\26"}, {'\'', "\\27"}, {'/', "\\2f"},
    {':', "\\3a"}, {'<', "\\3c"}, {'>', "\\3e"}, {'@', "\\40"},  {'\\', "\\5c"},
};

#define XEP0106_N (sizeof(xep0106) / sizeof(xep0106[0]))

struct addr_map *addr_map_new(void)
{
	return calloc(1, sizeof(struct addr_map));
}

void addr_map_free(struct addr_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->ndom; i++) {
		free(m->dom[i].sip_name);
		free(m->dom[i].xmpp_name);
	}
	for (size_t i = 0; i < m->nalias; i++) {
		free(m->alias[i].sip_key);
		free(m->alias[i].jid_key);
		free(m->alias[i].uri);
		free(m->alias[i].jid);
	}
	free(m->dom);
	free(m->alias);
	free(m->by_sip);
	free(m->by_jid);
	free(m);
}

size_t addr_map_domain_count(const struct addr_map *m)
{
	return m->ndom;
}

int addr_map_domain(const struct addr_map *m, size_t i, enum addr_home *homep,
                    const char **sip_domainp, const char **xmpp_domainp)
{
	if (i >= m->ndom)
		return -ENOENT;
	if (homep)
		*homep = m->dom[i].home;
	if (sip_domainp)
		*sip_domainp = m->dom[i].sip_name;
	if (xmpp_domainp)
		*xmpp_domainp = m->dom[i].xmpp_name;
	return 0;
}

size_t addr_map_alias_count(const struct addr_map *m)
{
	return m->nalias;
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

bool addr_is_ip(const char *s)
{
	unsigned char buf[16];
	return s && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

/* A DNS name as RFC 1123 allows it: letters, digits, hyphens, dots; no empty label,
 * no label over 63, no leading or trailing hyphen. IP literals are not bridged
 * domains: federation is by name. */
bool addr_domain_valid(const char *d)
{
	size_t len = strlen(d), label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = d[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '-';
		if (!ok || (label == 0 && c == '-'))
			return false;
		label++;
	}
	return true;
}

static const struct addr_domain *find_domain(const struct addr_map *m, const char *name,
                                             bool sip_side)
{
	for (size_t i = 0; i < m->ndom; i++) {
		const char *n = sip_side ? m->dom[i].sip_name : m->dom[i].xmpp_name;
		if (strcasecmp(n, name) == 0)
			return &m->dom[i];
	}
	return NULL;
}

int addr_domain_sip(const struct addr_map *m, const char *sip_domain,
                    enum addr_home *homep, const char **xmpp_domainp)
{
	const struct addr_domain *d = find_domain(m, sip_domain, true);
	if (!d)
		return -ENOENT;
	if (homep)
		*homep = d->home;
	if (xmpp_domainp)
		*xmpp_domainp = d->xmpp_name;
	return 0;
}

int addr_domain_xmpp(const struct addr_map *m, const char *xmpp_domain,
                     enum addr_home *homep, const char **sip_domainp)
{
	const struct addr_domain *d = find_domain(m, xmpp_domain, false);
	if (!d)
		return -ENOENT;
	if (homep)
		*homep = d->home;
	if (sip_domainp)
		*sip_domainp = d->sip_name;
	return 0;
}

static const struct {
	const char *word;
	enum addr_home home;
} homes[] = {
    {"sip", ADDR_HOME_SIP},
    {"xmpp", ADDR_HOME_XMPP},
};

int addr_map_load_domains(struct addr_map *m, const char *text, size_t len,
                          const char *fname, struct diag_list *dl)
{
	struct maptext mt;
	struct maptext_row row;
	int err = 0;

	maptext_init(&mt, text, len);
	while (maptext_next(&mt, &row)) {
		if (row.too_long || row.n != 3) {
			diag_add(
			    dl, DIAG_ERROR, fname, row.line,
			    "expected 3 fields 'home domain other-side-name', found %s",
			    row.too_long ? "an over-long line"
			    : row.n < 3  ? "fewer"
			                 : "more");
			err = -EINVAL;
			continue;
		}
		size_t h;
		for (h = 0; h < sizeof(homes) / sizeof(homes[0]); h++)
			if (strcmp(row.f[0], homes[h].word) == 0)
				break;
		if (h == sizeof(homes) / sizeof(homes[0])) {
			diag_add(dl, DIAG_ERROR, fname, row.line,
			         "home '%s' is neither 'sip' nor 'xmpp'", row.f[0]);
			err = -EINVAL;
			continue;
		}
		bool bad = false;
		for (int k = 1; k <= 2; k++) {
			if (!addr_domain_valid(row.f[k])) {
				diag_add(dl, DIAG_ERROR, fname, row.line,
				         "'%s' is not a valid domain name", row.f[k]);
				bad = true;
			}
			lower(row.f[k]);
		}
		if (bad) {
			err = -EINVAL;
			continue;
		}
		/* For a SIP-homed row the first name is the SIP one; for an XMPP-homed
		 * row the first is the XMPP one and SIP sees the other-side name. */
		const char *sip_name =
		    homes[h].home == ADDR_HOME_SIP ? row.f[1] : row.f[2];
		const char *xmpp_name =
		    homes[h].home == ADDR_HOME_SIP ? row.f[2] : row.f[1];
		const struct addr_domain *dup = find_domain(m, sip_name, true);
		if (!dup)
			dup = find_domain(m, xmpp_name, false);
		if (dup) {
			diag_add(dl, DIAG_ERROR, fname, row.line,
			         "domain already mapped at line %u (%s %s <-> xmpp %s)",
			         dup->line,
			         dup->home == ADDR_HOME_SIP ? "sip-homed" : "xmpp-homed",
			         dup->sip_name, dup->xmpp_name);
			err = -EINVAL;
			continue;
		}
		struct addr_domain *v = realloc(m->dom, (m->ndom + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		m->dom = v;
		struct addr_domain *d = &m->dom[m->ndom];
		d->home = homes[h].home;
		d->line = row.line;
		d->sip_name = strdup(sip_name);
		d->xmpp_name = strdup(xmpp_name);
		if (!d->sip_name || !d->xmpp_name) {
			free(d->sip_name);
			free(d->xmpp_name);
			return -ENOMEM;
		}
		m->ndom++;
	}
	return err;
}

int addr_pct_decode(const char *s, size_t len, char **outp)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			out[o++] = s[i];
			continue;
		}
		int v = 0;
		for (int k = 1; k <= 2; k++) {
			char c = i + (size_t)k < len ? s[i + (size_t)k] : '\0';
			int d = (c >= '0' && c <= '9')   ? c - '0'
			        : (c >= 'a' && c <= 'f') ? c - 'a' + 10
			        : (c >= 'A' && c <= 'F') ? c - 'A' + 10
			                                 : -1;
			if (d < 0) {
				free(out);
				return -EINVAL;
			}
			v = v * 16 + d;
		}
		if (v == 0) {
			free(out);
			return -EINVAL;
		}
		out[o++] = (char)v;
		i += 2;
	}
	out[o] = '\0';
	*outp = out;
	return 0;
}

static bool has_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

int addr_jid_escape(const char *local, size_t len, char **outp)
{
	struct sbuf sb;

	if (len == 0 || local[0] == ' ' || local[len - 1] == ' ' ||
	    has_control(local, len))
		return -EINVAL;
	sbuf_init(&sb);
	for (size_t i = 0; i < len; i++) {
		size_t k;
		for (k = 0; k < XEP0106_N; k++)
			if (local[i] == xep0106[k].c)
				break;
		if (k == XEP0106_N) {
			sbuf_putc(&sb, local[i]);
			continue;
		}
		/* A backslash is escaped only where it would otherwise read as an escape
		 * (XEP-0106 section 4.1 rule 7, section 4.2 step 3, section 4.3), so
		 * "a\b" stays "a\b" as examples 9-11 of section 5.1 show; RFC 7622 allows
		 * the backslash in a localpart (docs/design-notes.md, "Addresses"). */
		if (local[i] == '\\') {
			bool seq = false;
			for (size_t e = 0; e < XEP0106_N && !seq; e++)
				seq = len - i >= 3 &&
				      strncmp(local + i, xep0106[e].esc, 3) == 0;
			if (!seq) {
				sbuf_putc(&sb, '\\');
				continue;
			}
		}
		sbuf_puts(&sb, xep0106[k].esc);
	}
	char *out = sbuf_take(&sb, NULL);
	if (!out)
		return -ENOMEM;
	*outp = out;
	return 0;
}

int addr_jid_unescape(const char *local, char **outp)
{
	struct sbuf sb;

	sbuf_init(&sb);
	for (const char *p = local; *p;) {
		size_t k = XEP0106_N;
		if (*p == '\\')
			for (k = 0; k < XEP0106_N; k++)
				if (strncmp(p, xep0106[k].esc, 3) == 0)
					break;
		if (k < XEP0106_N) {
			sbuf_putc(&sb, xep0106[k].c);
			p += 3;
		} else {
			sbuf_putc(&sb, *p++);
		}
	}
	char *out = sbuf_take(&sb, NULL);
	if (!out)
		return -ENOMEM;
	*outp = out;
	return 0;
}

/* RFC 3261 section 25.1: user = 1*( unreserved / escaped / user-unreserved ). */
static bool sip_user_char(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("-_.!~*'()&=+$,;?/", c) != NULL;
}

/* RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
static bool has_scheme(const char *s)
{
	size_t n = strspn(
	    s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
	return n > 0 && s[n] == ':' && !(s[0] >= '0' && s[0] <= '9');
}

/* "sip:" user "@" domain, the user percent-encoded where RFC 3261 requires it.
 * Caller-owns; NULL on ENOMEM. */
static char *sip_uri_build(const char *user, const char *domain)
{
	struct sbuf sb;

	sbuf_init(&sb);
	sbuf_puts(&sb, "sip:");
	for (const unsigned char *c = (const unsigned char *)user; *c; c++) {
		if (sip_user_char(*c))
			sbuf_putc(&sb, (char)*c);
		else
			sbuf_printf(&sb, "%%%02X", *c);
	}
	sbuf_putc(&sb, '@');
	sbuf_puts(&sb, domain);
	return sbuf_take(&sb, NULL);
}

struct sip_uri {
	char *user;   /* percent-decoded */
	char *domain; /* lower case */
};

static void sip_uri_free(struct sip_uri *u)
{
	free(u->user);
	free(u->domain);
}

static int parse_sip_uri(const char *uri, struct sip_uri *u)
{
	const char *p;
	int err;

	memset(u, 0, sizeof(*u));
	if (strlen(uri) > ADDR_MAX_INPUT)
		return -ENAMETOOLONG;
	if (strncasecmp(uri, "sip:", 4) == 0)
		p = uri + 4;
	else if (strncasecmp(uri, "sips:", 5) == 0)
		p = uri + 5;
	else
		return has_scheme(uri) ? -EPROTONOSUPPORT : -EINVAL;

	const char *at = strchr(p, '@');
	if (!at || at == p)
		return -EINVAL; /* presence and IM need a user part */
	/* userinfo may carry ":password" (RFC 3261 section 19.1.1): never used here. */
	const char *uend = memchr(p, ':', (size_t)(at - p));
	if (!uend)
		uend = at;
	if (uend == p)
		return -EINVAL;
	for (const char *c = p; c < uend; c++)
		if (*c != '%' && !sip_user_char((unsigned char)*c))
			return -EINVAL;

	const char *h = at + 1;
	size_t hlen = strcspn(h, ":;?>");
	if (hlen == 0)
		return -EINVAL;
	if (h[hlen] == ':') {
		const char *port = h + hlen + 1;
		size_t plen = strspn(port, "0123456789");
		if (plen == 0 || plen > 5 || (port[plen] && !strchr(";?>", port[plen])))
			return -EINVAL;
	}
	if ((size_t)(uend - p) > ADDR_MAX_PART * 3 || hlen > ADDR_MAX_PART)
		return -ENAMETOOLONG;

	err = addr_pct_decode(p, (size_t)(uend - p), &u->user);
	if (err)
		return err;
	size_t ulen = strlen(u->user);
	if (ulen > ADDR_MAX_PART) {
		err = -ENAMETOOLONG;
		goto out;
	}
	if (!utf8_valid(u->user, ulen)) {
		err = -EILSEQ;
		goto out;
	}
	if (has_control(u->user, ulen)) {
		err = -EINVAL;
		goto out;
	}
	u->domain = strndup(h, hlen);
	if (!u->domain) {
		err = -ENOMEM;
		goto out;
	}
	if (!addr_domain_valid(u->domain)) {
		err = -EINVAL;
		goto out;
	}
	lower(u->domain);
	return 0;
out:
	sip_uri_free(u);
	return err;
}

struct jid {
	char *local;    /* as on the wire (escaped) */
	char *domain;   /* lower case */
	char *resource; /* NULL if none */
};

static void jid_free(struct jid *j)
{
	free(j->local);
	free(j->domain);
	free(j->resource);
}

/* RFC 7622 section 3.3.1: characters a localpart never holds unescaped. */
static const char jid_local_forbidden[] = " \"&'/:<>@";

static int parse_jid(const char *s, struct jid *j)
{
	int err = -EINVAL;
	size_t len = strlen(s);

	memset(j, 0, sizeof(*j));
	if (len > ADDR_MAX_INPUT * 2)
		return -ENAMETOOLONG;
	if (!utf8_valid(s, len))
		return -EILSEQ;
	const char *slash = strchr(s, '/');
	const char *bare_end = slash ? slash : s + len;
	const char *at = memchr(s, '@', (size_t)(bare_end - s));
	if (!at || at == s || at + 1 == bare_end)
		return -EINVAL;
	size_t llen = (size_t)(at - s), dlen = (size_t)(bare_end - at - 1);
	if (llen > ADDR_MAX_PART || dlen > ADDR_MAX_PART)
		return -ENAMETOOLONG;
	if (slash && (strlen(slash + 1) == 0 || strlen(slash + 1) > ADDR_MAX_PART))
		return strlen(slash + 1) == 0 ? -EINVAL : -ENAMETOOLONG;
	for (size_t i = 0; i < llen; i++)
		if (strchr(jid_local_forbidden, s[i]))
			return -EINVAL;
	if (has_control(s, len))
		return -EINVAL;
	j->local = strndup(s, llen);
	j->domain = strndup(at + 1, dlen);
	j->resource = slash ? strdup(slash + 1) : NULL;
	if (!j->local || !j->domain || (slash && !j->resource)) {
		err = -ENOMEM;
		goto out;
	}
	if (!addr_domain_valid(j->domain))
		goto out;
	lower(j->domain);
	return 0;
out:
	jid_free(j);
	return err;
}

static char *join(const char *a, const char *sep, const char *b)
{
	struct sbuf sb;
	sbuf_init(&sb);
	sbuf_puts(&sb, a);
	sbuf_puts(&sb, sep);
	sbuf_puts(&sb, b);
	return sbuf_take(&sb, NULL);
}

static int cmp_sip(const void *a, const void *b)
{
	return strcmp((*(struct addr_alias *const *)a)->sip_key,
	              (*(struct addr_alias *const *)b)->sip_key);
}

static int cmp_jid(const void *a, const void *b)
{
	return strcmp((*(struct addr_alias *const *)a)->jid_key,
	              (*(struct addr_alias *const *)b)->jid_key);
}

static struct addr_alias *find_alias(const struct addr_map *m, const char *key, bool sip)
{
	struct addr_alias probe, *pp = &probe, **hit;

	if (m->nalias == 0)
		return NULL;
	probe.sip_key = probe.jid_key = (char *)key;
	hit = bsearch(&pp, sip ? m->by_sip : m->by_jid, m->nalias, sizeof(*hit),
	              sip ? cmp_sip : cmp_jid);
	return hit ? *hit : NULL;
}

static int rebuild_index(struct addr_map *m)
{
	struct addr_alias **s = realloc(m->by_sip, (m->nalias + 1) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	m->by_sip = s;
	struct addr_alias **j = realloc(m->by_jid, (m->nalias + 1) * sizeof(*j));
	if (!j)
		return -ENOMEM;
	m->by_jid = j;
	for (size_t i = 0; i < m->nalias; i++)
		m->by_sip[i] = m->by_jid[i] = &m->alias[i];
	qsort(m->by_sip, m->nalias, sizeof(*s), cmp_sip);
	qsort(m->by_jid, m->nalias, sizeof(*j), cmp_jid);
	return 0;
}

static const struct addr_alias *linear_alias(const struct addr_map *m, const char *key,
                                             bool sip)
{
	for (size_t i = 0; i < m->nalias; i++)
		if (strcmp(sip ? m->alias[i].sip_key : m->alias[i].jid_key, key) == 0)
			return &m->alias[i];
	return NULL;
}

int addr_map_load_users(struct addr_map *m, const char *text, size_t len,
                        const char *fname, struct diag_list *dl)
{
	struct maptext mt;
	struct maptext_row row;
	int err = 0;

	maptext_init(&mt, text, len);
	while (maptext_next(&mt, &row)) {
		struct sip_uri u;
		struct jid j;
		int e;

		if (row.too_long || row.n != 2) {
			diag_add(dl, DIAG_ERROR, fname, row.line,
			         "expected 2 fields 'sip:user@domain user@domain'");
			err = -EINVAL;
			continue;
		}
		e = parse_sip_uri(row.f[0], &u);
		if (e) {
			diag_add(dl, DIAG_ERROR, fname, row.line,
			         "'%s' is not a usable SIP URI: %s", row.f[0],
			         addr_strerror(e));
			err = -EINVAL;
			continue;
		}
		e = parse_jid(row.f[1], &j);
		if (e || j.resource) {
			diag_add(dl, DIAG_ERROR, fname, row.line,
			         "'%s' is not a bare JID: %s", row.f[1],
			         e ? addr_strerror(e) : "it has a resource");
			sip_uri_free(&u);
			if (!e)
				jid_free(&j);
			err = -EINVAL;
			continue;
		}
		const struct addr_domain *d = find_domain(m, u.domain, true);
		const char *why = NULL;
		if (!d)
			why = "the SIP domain is not in domains.map";
		else if (strcmp(d->xmpp_name, j.domain) != 0)
			why = "domains.map maps the SIP domain to another XMPP domain";
		if (why) {
			diag_add(dl, DIAG_ERROR, fname, row.line, "alias %s <-> %s: %s",
			         row.f[0], row.f[1], why);
			err = -EINVAL;
			goto next;
		}
		char *sip_key = join(u.user, "@", u.domain);
		char *jid_key = join(j.local, "@", j.domain);
		if (!sip_key || !jid_key) {
			free(sip_key);
			free(jid_key);
			sip_uri_free(&u);
			jid_free(&j);
			return -ENOMEM;
		}
		lower(jid_key);
		const struct addr_alias *dup = linear_alias(m, sip_key, true);
		if (!dup)
			dup = linear_alias(m, jid_key, false);
		if (dup) {
			diag_add(dl, DIAG_ERROR, fname, row.line,
			         "alias %s <-> %s repeats an address of line %u",
			         row.f[0], row.f[1], dup->line);
			free(sip_key);
			free(jid_key);
			err = -EINVAL;
			goto next;
		}
		if (m->nalias == m->cap_alias) {
			size_t cap = m->cap_alias ? m->cap_alias * 2 : 16;
			struct addr_alias *v = realloc(m->alias, cap * sizeof(*v));
			if (!v) {
				free(sip_key);
				free(jid_key);
				sip_uri_free(&u);
				jid_free(&j);
				return -ENOMEM;
			}
			m->alias = v;
			m->cap_alias = cap;
		}
		struct addr_alias *a = &m->alias[m->nalias++];
		a->sip_key = sip_key;
		a->jid_key = jid_key;
		a->home = d->home;
		a->line = row.line;
		a->uri = sip_uri_build(u.user, u.domain);
		a->jid = join(j.local, "@", j.domain);
		if (!a->uri || !a->jid) {
			sip_uri_free(&u);
			jid_free(&j);
			return -ENOMEM;
		}
	next:
		sip_uri_free(&u);
		jid_free(&j);
	}
	int e = rebuild_index(m);
	return e ? e : err;
}

int addr_sip_to_jid(const struct addr_map *m, const char *uri, char **jidp,
                    enum addr_home *homep)
{
	struct sip_uri u;
	enum addr_home home;
	const char *xdom;
	char *local = NULL, *key = NULL, *out = NULL;
	int err = parse_sip_uri(uri, &u);

	if (err)
		return err;
	err = addr_domain_sip(m, u.domain, &home, &xdom);
	if (err)
		goto out;
	key = join(u.user, "@", u.domain);
	if (!key) {
		err = -ENOMEM;
		goto out;
	}
	const struct addr_alias *a = find_alias(m, key, true);
	if (a) {
		out = strdup(a->jid);
	} else {
		err = addr_jid_escape(u.user, strlen(u.user), &local);
		if (err)
			goto out;
		if (strlen(local) > ADDR_MAX_PART) {
			err = -ENAMETOOLONG;
			goto out;
		}
		out = join(local, "@", xdom);
	}
	if (!out) {
		err = -ENOMEM;
		goto out;
	}
	*jidp = out;
	if (homep)
		*homep = home;
out:
	free(local);
	free(key);
	sip_uri_free(&u);
	return err;
}

int addr_jid_to_sip(const struct addr_map *m, const char *jid, char **urip,
                    char **resourcep, enum addr_home *homep)
{
	struct jid j;
	enum addr_home home;
	const char *sdom;
	char *user = NULL, *key = NULL, *out = NULL;
	int err = parse_jid(jid, &j);

	if (err)
		return err;
	err = addr_domain_xmpp(m, j.domain, &home, &sdom);
	if (err)
		goto out;
	key = join(j.local, "@", j.domain);
	if (!key) {
		err = -ENOMEM;
		goto out;
	}
	lower(key);
	const struct addr_alias *a = find_alias(m, key, false);
	if (a) {
		out = strdup(a->uri);
	} else {
		err = addr_jid_unescape(j.local, &user);
		if (err)
			goto out;
		out = sip_uri_build(user, sdom);
	}
	if (!out) {
		err = -ENOMEM;
		goto out;
	}
	*urip = out;
	if (resourcep) {
		*resourcep = j.resource;
		j.resource = NULL;
	}
	if (homep)
		*homep = home;
out:
	free(user);
	free(key);
	jid_free(&j);
	return err;
}

/*
 * The value of URI parameter `name` of a sip:/sips: URI (RFC 3261 section 19.1.1:
 * parameters follow the hostport, up to the headers). *valp points into uri;
 * *lenp is 0 and *valp NULL when the parameter has no "=value". Returns 0, or
 * -ENOENT when uri has no such parameter. Names compare case-insensitively
 * (RFC 3261 section 19.1.4).
 */
static int uri_param(const char *uri, const char *name, const char **valp, size_t *lenp)
{
	const char *at = strchr(uri, '@');
	const char *p = at ? at + strcspn(at, ";?>") : NULL;
	size_t nlen = strlen(name);

	while (p && *p == ';') {
		const char *pn = p + 1;
		size_t plen = strcspn(pn, ";?>");
		size_t klen = strcspn(pn, "=;?>");
		if (klen == nlen && strncasecmp(pn, name, nlen) == 0) {
			*valp = klen < plen ? pn + klen + 1 : NULL;
			*lenp = klen < plen ? plen - klen - 1 : 0;
			return 0;
		}
		p = pn + plen;
	}
	return -ENOENT;
}

/*
 * RFC 7247 section 6.3: the resourcepart the "gr" parameter of uri names.
 * *resp: caller-owns, NULL when uri names no AOR-associated GRUU (no gr, or a bare
 * "gr" as temporary GRUUs carry, which section 6.3 leaves out).
 */
int addr_gruu_resource(const char *uri, char **resp)
{
	const char *v;
	size_t len;
	char *res = NULL;
	int err;

	*resp = NULL;
	if (uri_param(uri, "gr", &v, &len) != 0 || !v)
		return 0;
	/* RFC 3261 section 25.1: pvalue = 1*paramchar, so "gr=" is malformed. */
	if (len == 0 || len > ADDR_MAX_PART * 3)
		return len ? -ENAMETOOLONG : -EINVAL;
	/* Section 6.3: non-ASCII characters arrive percent-encoded. */
	err = addr_pct_decode(v, len, &res);
	if (err)
		return err;
	size_t rlen = strlen(res);
	if (rlen > ADDR_MAX_PART)
		err = -ENAMETOOLONG;
	else if (!utf8_valid(res, rlen))
		err = -EILSEQ;
	else if (has_control(res, rlen))
		err = -EINVAL; /* RFC 7622 section 3.4: OpaqueString has no controls */
	if (err) {
		free(res);
		return err;
	}
	*resp = res;
	return 0;
}

int addr_sip_to_full_jid(const struct addr_map *m, const char *uri, char **jidp,
                         enum addr_home *homep)
{
	char *bare = NULL, *res = NULL, *out;
	int err = addr_sip_to_jid(m, uri, &bare, homep);

	if (err)
		return err;
	err = addr_gruu_resource(uri, &res);
	if (err) {
		free(bare);
		return err;
	}
	if (!res) {
		*jidp = bare;
		return 0;
	}
	/* RFC 7247 section 6.4 step 8: "/" and the gr value make the full JID. */
	out = join(bare, "/", res);
	free(bare);
	free(res);
	if (!out)
		return -ENOMEM;
	*jidp = out;
	return 0;
}

/* RFC 3261 section 25.1: paramchar = param-unreserved / unreserved / escaped. */
static bool sip_param_char(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("[]/:&+$-_.!~*'()", c) != NULL;
}

int addr_gruu_make(const char *aor, const char *resource, char **urip)
{
	struct sbuf sb;

	if (!aor || !resource || !*resource)
		return -EINVAL;
	/* RFC 7247 section 6.5 step 8 (and its example "baz@xmpp.example/qux" ->
	 * "sip:baz@xmpp.example;gr=qux"): the resourcepart becomes the gr value,
	 * non-ASCII octets percent-encoded; so is every octet RFC 3261's paramchar
	 * does not allow, or the URI would not parse. */
	sbuf_init(&sb);
	sbuf_puts(&sb, aor);
	sbuf_puts(&sb, ";gr=");
	for (const unsigned char *c = (const unsigned char *)resource; *c; c++) {
		if (sip_param_char(*c))
			sbuf_putc(&sb, (char)*c);
		else
			sbuf_printf(&sb, "%%%02X", *c);
	}
	char *out = sbuf_take(&sb, NULL);
	if (!out)
		return -ENOMEM;
	*urip = out;
	return 0;
}

int addr_jid_to_gruu(const struct addr_map *m, const char *jid, char **urip,
                     enum addr_home *homep)
{
	char *uri = NULL, *res = NULL;
	int err = addr_jid_to_sip(m, jid, &uri, &res, homep);

	if (err)
		return err;
	if (!res) {
		*urip = uri;
		return 0;
	}
	err = addr_gruu_make(uri, res, urip);
	free(uri);
	free(res);
	return err;
}

const char *addr_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case -EINVAL:
		return "malformed address";
	case -ENAMETOOLONG:
		return "address part too long";
	case -EILSEQ:
		return "address is not valid UTF-8";
	case -EPROTONOSUPPORT:
		return "only sip: and sips: URIs are bridged";
	case -ENOENT:
		return "domain is not bridged (not in domains.map)";
	case -ENOMEM:
		return "out of memory";
	default:
		return "unusable address";
	}
}

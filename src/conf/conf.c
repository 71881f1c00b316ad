#include "presbridge/conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <libpq-fe.h>

#include "presbridge/addr.h"
#include "presbridge/presmap.h"

#include "conf_file.h"

enum sect {
	SECT_NONE, /* before the first header, or in an unknown section */
	SECT_BRIDGE,
	SECT_SIP,
	SECT_XMPP,
	SECT_PEER,
	SECT_S2S,
	SECT_S2S_PEER,
	SECT_CONTROL,
	SECT_METRICS,
	SECT_STORE,
	SECT_POOL,
	SECT_COUNT
};

enum ktype {
	KT_STRING,
	KT_SECRET,
	KT_FILE,  /* a readable file, relative to the config folder */
	KT_DIR,   /* an existing folder, relative to the config folder */
	KT_STATE, /* ":memory:" or a path */
	KT_ENUM,
	KT_HOSTPORT,
	KT_LISTEN, /* repeatable: scheme:host:port */
	KT_BOOL,
	KT_DOMAINS,
	KT_UINT,           /* a whole number from 0 to 4294967295 */
	KT_S2S_LISTEN,     /* repeatable: host[:port], port 5269 by default */
	KT_S2S_LISTEN_TLS, /* the same for direct TLS, port 5270 by default */
	KT_AUTHS,          /* a list of external, dialback */
};

struct enum_row {
	const char *name;
	int value;
};

static const struct enum_row log_levels[] = {
    {"error", CONF_LOG_ERROR}, {"warn", CONF_LOG_WARN},   {"info", CONF_LOG_INFO},
    {"debug", CONF_LOG_DEBUG}, {"trace", CONF_LOG_TRACE}, {NULL, 0},
};
static const struct enum_row state_syncs[] = {
    {"normal", CONF_SYNC_NORMAL}, {"full", CONF_SYNC_FULL}, {NULL, 0}};
static const struct enum_row transports[] = {
    {"udp", CONF_TP_UDP}, {"tcp", CONF_TP_TCP}, {"tls", CONF_TP_TLS}, {NULL, 0}};
static const struct enum_row xmpp_tls_modes[] = {
    {"direct", CONF_XMPP_TLS_DIRECT}, {"off", CONF_XMPP_TLS_OFF}, {NULL, 0}};
static const struct enum_row im_modes[] = {
    {"session", CONF_IM_SESSION}, {"page", CONF_IM_PAGE}, {NULL, 0}};
static const struct enum_row xmpp_transports[] = {
    {"component", CONF_XMPP_COMPONENT}, {"s2s", CONF_XMPP_S2S}, {NULL, 0}};
static const struct enum_row s2s_tls_modes[] = {{"required", CONF_S2S_TLS_REQUIRED},
                                                {"optional", CONF_S2S_TLS_OPTIONAL},
                                                {"off", CONF_S2S_TLS_OFF},
                                                {NULL, 0}};
static const struct enum_row s2s_auths[] = {{"external", CONF_S2S_AUTH_EXTERNAL},
                                            {"dialback", CONF_S2S_AUTH_DIALBACK},
                                            {NULL, 0}};
static const struct enum_row store_backends[] = {
    {"sqlite", CONF_STORE_SQLITE}, {"postgresql", CONF_STORE_PG}, {NULL, 0}};
static const struct enum_row booleans[] = {
    {"yes", 1}, {"no", 0}, {"true", 1}, {"false", 0}, {"on", 1}, {"off", 0}, {NULL, 0}};

/*
 * Every key the file may hold, its type and where it lands (offset into struct
 * conf, or into struct conf_peer for [peer] keys). One table serves parsing,
 * duplicate detection and required-key checks.
 */
struct key_def {
	enum sect sect;
	const char *name;
	enum ktype type;
	size_t off;
	const struct enum_row *enums;
	uint16_t default_port; /* KT_HOSTPORT: port when the value has none */
	bool port_optional;    /* KT_HOSTPORT: no port leaves 0, filled in later */
	bool required;
};

#define C(f) offsetof(struct conf, f)
#define P(f) offsetof(struct conf_peer, f)
#define S(f) offsetof(struct conf_s2s_peer, f)

static const struct key_def keys[] = {
    {SECT_BRIDGE, "state", KT_STATE, C(state), NULL, 0, false, false},
    {SECT_BRIDGE, "mappings", KT_DIR, C(mappings), NULL, 0, false, false},
    {SECT_BRIDGE, "log_level", KT_ENUM, C(log_level), log_levels, 0, false, false},
    {SECT_BRIDGE, "state_sync", KT_ENUM, C(state_sync), state_syncs, 0, false, false},
    {SECT_BRIDGE, "max_subscriptions", KT_UINT, C(max_subscriptions), NULL, 0, false,
     false},
    {SECT_BRIDGE, "max_subscriptions_per_user", KT_UINT, C(max_subscriptions_per_user),
     NULL, 0, false, false},
    {SECT_BRIDGE, "im_idle_timeout", KT_UINT, C(im_idle_timeout), NULL, 0, false, false},
    {SECT_SIP, "listen", KT_LISTEN, 0, NULL, 0, false, true},
    {SECT_SIP, "cert", KT_FILE, C(cert), NULL, 0, false, false},
    {SECT_SIP, "key", KT_FILE, C(key), NULL, 0, false, false},
    {SECT_SIP, "ca", KT_FILE, C(ca), NULL, 0, false, false},
    {SECT_SIP, "idle_timeout", KT_UINT, C(sip_idle_timeout), NULL, 0, false, false},
    /* server and secret are required with transport = component (check_xmpp) */
    {SECT_XMPP, "server", KT_HOSTPORT, C(xmpp_server), NULL, 5275, false, false},
    {SECT_XMPP, "secret", KT_SECRET, C(xmpp_secret), NULL, 0, false, false},
    {SECT_XMPP, "transport", KT_ENUM, C(xmpp_transport), xmpp_transports, 0, false,
     false},
    {SECT_XMPP, "tls", KT_ENUM, C(xmpp_tls), xmpp_tls_modes, 0, false, false},
    {SECT_XMPP, "ca", KT_FILE, C(xmpp_ca), NULL, 0, false, false},
    {SECT_XMPP, "name", KT_STRING, C(xmpp_name), NULL, 0, false, false},
    {SECT_PEER, "host", KT_STRING, P(host), NULL, 0, false, true},
    {SECT_PEER, "address", KT_HOSTPORT, P(address), NULL, 0, true, false},
    {SECT_PEER, "transport", KT_ENUM, P(transport), transports, 0, false, false},
    {SECT_PEER, "domains", KT_DOMAINS, 0, NULL, 0, false, true},
    {SECT_PEER, "trusted", KT_BOOL, P(trusted), booleans, 0, false, false},
    {SECT_PEER, "im", KT_ENUM, P(im), im_modes, 0, false, false},
    {SECT_S2S, "listen", KT_S2S_LISTEN, 0, NULL, 0, false, false},
    {SECT_S2S, "listen_tls", KT_S2S_LISTEN_TLS, 0, NULL, 0, false, false},
    {SECT_S2S, "cert", KT_FILE, C(s2s_cert), NULL, 0, false, false},
    {SECT_S2S, "key", KT_FILE, C(s2s_key), NULL, 0, false, false},
    {SECT_S2S, "ca", KT_FILE, C(s2s_ca), NULL, 0, false, false},
    {SECT_S2S, "dialback_secret", KT_STRING, C(s2s_secret), NULL, 0, false, false},
    {SECT_S2S, "tls", KT_ENUM, C(s2s_tls), s2s_tls_modes, 0, false, false},
    {SECT_S2S, "auth", KT_AUTHS, C(s2s_auth), s2s_auths, 0, false, false},
    {SECT_S2S, "idle_timeout", KT_UINT, C(s2s_idle_timeout), NULL, 0, false, false},
    {SECT_S2S, "connect_timeout", KT_UINT, C(s2s_connect_timeout), NULL, 0, false, false},
    {SECT_S2S, "dns", KT_STRING, C(s2s_dns), NULL, 0, false, false},
    {SECT_S2S, "direct_tls", KT_BOOL, C(s2s_direct_tls), booleans, 0, false, false},
    {SECT_S2S_PEER, "address", KT_HOSTPORT, S(address), NULL, CONF_S2S_PORT_DEFAULT,
     false, false},
    {SECT_S2S_PEER, "tls", KT_ENUM, S(tls), s2s_tls_modes, 0, false, false},
    {SECT_S2S_PEER, "auth", KT_AUTHS, S(auth), s2s_auths, 0, false, false},
    {SECT_S2S_PEER, "direct_tls", KT_BOOL, S(direct_tls), booleans, 0, false, false},
    {SECT_CONTROL, "socket", KT_STRING, C(control_socket), NULL, 0, false, false},
    {SECT_METRICS, "listen", KT_HOSTPORT, C(metrics_listen), NULL,
     CONF_METRICS_PORT_DEFAULT, false, false},
    {SECT_STORE, "backend", KT_ENUM, C(store_backend), store_backends, 0, false, false},
    {SECT_STORE, "conninfo", KT_SECRET, C(store_conninfo), NULL, 0, false, false},
    {SECT_POOL, "node", KT_STRING, C(pool_node), NULL, 0, false, false},
    {SECT_POOL, "lease", KT_UINT, C(pool_lease), NULL, 0, false, false},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(NKEYS <= CONF_MAX_KEYS, "raise CONF_MAX_KEYS");

static const struct {
	const char *name;
	enum sect sect;
} sections[] = {
    {"bridge", SECT_BRIDGE}, {"sip", SECT_SIP},         {"xmpp", SECT_XMPP},
    {"s2s", SECT_S2S},       {"control", SECT_CONTROL}, {"metrics", SECT_METRICS},
    {"store", SECT_STORE},   {"pool", SECT_POOL},
};

struct loader {
	struct conf *cf;
	struct diag_list *dl;
	const char *fname;
	struct conf_file src;
	enum sect sect;
	unsigned sect_line[SECT_COUNT];   /* first header line of each global section */
	unsigned global_seen[NKEYS];      /* line each key was set at, global sections */
	unsigned (*peer_seen)[NKEYS];     /* the same for each peer */
	unsigned (*s2s_peer_seen)[NKEYS]; /* and for each [s2s-peer] */
	int oom;
};

/* Record a problem of the configuration file itself at line (0: the whole file). */
static void report(struct loader *ld, enum diag_level level, unsigned line,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void report(struct loader *ld, enum diag_level level, unsigned line,
                   const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag_add(ld->dl, level, ld->fname, line, "%s", msg);
}

#define err_at(ld, ...)  report(ld, DIAG_ERROR, __VA_ARGS__)
#define warn_at(ld, ...) report(ld, DIAG_WARN, __VA_ARGS__)

static char *resolve(struct loader *ld, const char *path)
{
	char *out;
	if (path[0] == '/' || strcmp(ld->cf->dir, ".") == 0) {
		out = strdup(path);
	} else {
		size_t n = strlen(ld->cf->dir) + strlen(path) + 2;
		out = malloc(n);
		if (out)
			snprintf(out, n, "%s/%s", ld->cf->dir, path);
	}
	if (!out)
		ld->oom = 1;
	return out;
}

/* "host:port", "[v6]:port", or "host" when default_port is non-zero. */
static int parse_hostport(const char *v, uint16_t default_port, bool port_optional,
                          struct conf_hostport *hp, const char **why)
{
	char host[256];
	const char *port = NULL;
	size_t hlen;

	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		if (!close) {
			*why = "an IPv6 address needs a closing ']'";
			return -EINVAL;
		}
		hlen = (size_t)(close - v - 1);
		if (hlen >= sizeof(host)) {
			*why = "the host is too long";
			return -EINVAL;
		}
		memcpy(host, v + 1, hlen);
		host[hlen] = '\0';
		unsigned char buf[16];
		if (inet_pton(AF_INET6, host, buf) != 1) {
			*why = "not an IPv6 address inside [ ]";
			return -EINVAL;
		}
		if (close[1] == ':')
			port = close + 2;
		else if (close[1]) {
			*why = "expected ':port' after ']'";
			return -EINVAL;
		}
	} else {
		const char *colon = strrchr(v, ':');
		if (colon && strchr(v, ':') != colon) {
			*why = "write an IPv6 address in brackets, as [::1]:5061";
			return -EINVAL;
		}
		hlen = colon ? (size_t)(colon - v) : strlen(v);
		if (hlen >= sizeof(host)) {
			*why = "the host is too long";
			return -EINVAL;
		}
		memcpy(host, v, hlen);
		host[hlen] = '\0';
		if (!addr_is_ip(host) && !addr_domain_valid(host)) {
			*why = "the host is neither an IP address nor a host name";
			return -EINVAL;
		}
		if (colon)
			port = colon + 1;
	}
	unsigned long p = default_port;
	if (port) {
		char *end;
		errno = 0;
		p = strtoul(port, &end, 10);
		if (!*port || *end || errno || p == 0 || p > 65535 || port[0] == '+' ||
		    port[0] == '-') {
			*why = "the port must be a number from 1 to 65535";
			return -EINVAL;
		}
	} else if (!default_port && !port_optional) {
		*why = "a port is required, as host:port";
		return -EINVAL;
	}
	hp->host = strdup(host);
	if (!hp->host)
		return -ENOMEM;
	hp->port = (uint16_t)p;
	return 0;
}

static int enum_lookup(const struct enum_row *rows, const char *v, int *out)
{
	for (; rows->name; rows++)
		if (strcasecmp(rows->name, v) == 0) {
			*out = rows->value;
			return 0;
		}
	return -ENOENT;
}

static void enum_list(const struct enum_row *rows, char *buf, size_t len)
{
	buf[0] = '\0';
	for (const struct enum_row *r = rows; r->name; r++) {
		strncat(buf, r->name, len - strlen(buf) - 1);
		if (r[1].name)
			strncat(buf, r == rows ? ", " : ", ", len - strlen(buf) - 1);
	}
}

static void set_string(struct loader *ld, char **slot, const char *v)
{
	free(*slot);
	*slot = strdup(v);
	if (!*slot)
		ld->oom = 1;
}

static void parse_listen(struct loader *ld, const char *v, unsigned line)
{
	const char *colon = strchr(v, ':');
	char scheme[8];
	int tp;
	const char *why = NULL;
	struct conf_hostport hp = {0};

	if (!colon || (size_t)(colon - v) >= sizeof(scheme)) {
		err_at(ld, line,
		       "listen '%s': expected scheme:host:port, as tls:127.0.0.1:5061",
		       v);
		return;
	}
	memcpy(scheme, v, (size_t)(colon - v));
	scheme[colon - v] = '\0';
	if (enum_lookup(transports, scheme, &tp)) {
		err_at(ld, line, "listen '%s': scheme '%s' is not udp, tcp or tls", v,
		       scheme);
		return;
	}
	int e = parse_hostport(colon + 1, 0, false, &hp, &why);
	if (e == -ENOMEM) {
		ld->oom = 1;
		return;
	}
	if (e) {
		err_at(ld, line, "listen '%s': %s", v, why);
		return;
	}
	for (size_t i = 0; i < ld->cf->nlisten; i++) {
		const struct conf_listen *l = &ld->cf->listen[i];
		if (l->addr.port == hp.port && strcmp(l->addr.host, hp.host) == 0 &&
		    (l->tp == CONF_TP_UDP) == (tp == CONF_TP_UDP)) {
			err_at(ld, line,
			       "listen '%s': the same address is already used at line %u",
			       v, l->line);
			free(hp.host);
			return;
		}
	}
	struct conf_listen *nl =
	    realloc(ld->cf->listen, (ld->cf->nlisten + 1) * sizeof(*nl));
	if (!nl) {
		free(hp.host);
		ld->oom = 1;
		return;
	}
	ld->cf->listen = nl;
	nl[ld->cf->nlisten].tp = (enum conf_tp)tp;
	nl[ld->cf->nlisten].addr = hp;
	nl[ld->cf->nlisten].line = line;
	ld->cf->nlisten++;
}

static void parse_domains(struct loader *ld, struct conf_peer *p, const char *v,
                          unsigned line)
{
	char *copy = strdup(v), *save = NULL;
	if (!copy) {
		ld->oom = 1;
		return;
	}
	for (char *tok = strtok_r(copy, ", \t", &save); tok;
	     tok = strtok_r(NULL, ", \t", &save)) {
		if (!addr_domain_valid(tok)) {
			err_at(ld, line, "domains: '%s' is not a domain name", tok);
			continue;
		}
		char **nd = realloc(p->domains, (p->ndomains + 1) * sizeof(*nd));
		if (!nd || !(nd[p->ndomains] = strdup(tok))) {
			if (nd)
				p->domains = nd;
			ld->oom = 1;
			break;
		}
		p->domains = nd;
		p->ndomains++;
	}
	if (p->ndomains == 0 && !ld->oom)
		err_at(ld, line,
		       "domains: give at least one SIP domain this peer serves");
	free(copy);
}

static void parse_s2s_listen(struct loader *ld, const char *v, unsigned line, bool tls)
{
	struct conf *cf = ld->cf;
	struct conf_hostport hp = {0};
	const char *why = NULL;
	const char *key = tls ? "listen_tls" : "listen";
	unsigned dport = tls ? CONF_S2S_TLS_PORT_DEFAULT : CONF_S2S_PORT_DEFAULT;
	struct conf_hostport **vp = tls ? &cf->s2s_listen_tls : &cf->s2s_listen;
	size_t *np = tls ? &cf->ns2s_listen_tls : &cf->ns2s_listen;
	int e = parse_hostport(v, (uint16_t)dport, false, &hp, &why);

	if (e == -ENOMEM) {
		ld->oom = 1;
		return;
	}
	if (e) {
		err_at(ld, line, "%s '%s': %s", key, v, why);
		return;
	}
	if (!addr_is_ip(hp.host)) {
		err_at(ld, line,
		       "%s '%s': give the IP address to listen on, as 192.0.2.10:%u", key,
		       v, dport);
		free(hp.host);
		return;
	}
	for (int t = 0; t < 2; t++) {
		const struct conf_hostport *w = t ? cf->s2s_listen_tls : cf->s2s_listen;
		size_t n = t ? cf->ns2s_listen_tls : cf->ns2s_listen;
		for (size_t i = 0; i < n; i++)
			if (w[i].port == hp.port && strcmp(w[i].host, hp.host) == 0) {
				err_at(ld, line,
				       "%s '%s': the same address is listed twice", key,
				       v);
				free(hp.host);
				return;
			}
	}
	struct conf_hostport *nl = realloc(*vp, (*np + 1) * sizeof(*nl));
	if (!nl) {
		free(hp.host);
		ld->oom = 1;
		return;
	}
	*vp = nl;
	nl[(*np)++] = hp;
}

/* "external, dialback": the methods a peer may authenticate with. */
static void parse_auths(struct loader *ld, const struct key_def *k, unsigned *mask,
                        const char *v, unsigned line)
{
	char *copy = strdup(v), *save = NULL;
	unsigned m = 0;
	char list[128];
	int ev;

	if (!copy) {
		ld->oom = 1;
		return;
	}
	for (char *tok = strtok_r(copy, ", \t", &save); tok;
	     tok = strtok_r(NULL, ", \t", &save)) {
		if (enum_lookup(k->enums, tok, &ev)) {
			enum_list(k->enums, list, sizeof(list));
			err_at(ld, line, "%s: '%s' is not one of %s", k->name, tok, list);
			free(copy);
			return;
		}
		m |= (unsigned)ev;
	}
	free(copy);
	if (!m) {
		err_at(ld, line, "%s: name at least one of external, dialback", k->name);
		return;
	}
	*mask = m;
}

static void apply(struct loader *ld, const struct key_def *k, void *base, const char *v,
                  unsigned line)
{
	char **slot = (char **)((char *)base + k->off);
	const char *why = NULL;
	char list[128];
	int ev;

	if (k->type != KT_LISTEN && k->type != KT_S2S_LISTEN &&
	    k->type != KT_S2S_LISTEN_TLS && k->type != KT_SECRET && !*v) {
		err_at(ld, line, "%s: needs a value", k->name);
		return;
	}
	switch (k->type) {
	case KT_STRING:
		set_string(ld, slot, v);
		break;
	case KT_SECRET:
		if (!*v) {
			err_at(ld, line,
			       "%s: the XEP-0114 shared secret may not be empty",
			       k->name);
			return;
		}
		if (strlen(v) < 8)
			warn_at(
			    ld, line,
			    "%s: shorter than 8 characters; anyone who guesses it can "
			    "impersonate the bridge to the XMPP server",
			    k->name);
		set_string(ld, slot, v);
		break;
	case KT_STATE:
		if (strcmp(v, ":memory:") == 0)
			set_string(ld, slot, v);
		else {
			free(*slot);
			*slot = resolve(ld, v);
		}
		break;
	case KT_FILE:
	case KT_DIR: {
		char *path = resolve(ld, v);
		struct stat st;
		if (!path)
			return;
		if (stat(path, &st) != 0 || access(path, R_OK) != 0)
			err_at(ld, line, "%s: cannot read '%s': %s", k->name, path,
			       strerror(errno));
		else if (k->type == KT_DIR && !S_ISDIR(st.st_mode))
			err_at(ld, line, "%s: '%s' is not a folder", k->name, path);
		else if (k->type == KT_FILE && !S_ISREG(st.st_mode))
			err_at(ld, line, "%s: '%s' is not a regular file", k->name, path);
		free(*slot);
		*slot = path;
		break;
	}
	case KT_ENUM:
	case KT_BOOL:
		if (enum_lookup(k->enums, v, &ev)) {
			enum_list(k->enums, list, sizeof(list));
			err_at(ld, line, "%s: '%s' is not one of %s", k->name, v, list);
			return;
		}
		if (k->type == KT_BOOL)
			*(bool *)((char *)base + k->off) = ev != 0;
		else
			*(int *)((char *)base + k->off) = ev;
		break;
	case KT_HOSTPORT: {
		struct conf_hostport *hp =
		    (struct conf_hostport *)((char *)base + k->off);
		struct conf_hostport nhp = {0};
		int e = parse_hostport(v, k->default_port, k->port_optional, &nhp, &why);
		if (e == -ENOMEM)
			ld->oom = 1;
		else if (e)
			err_at(ld, line, "%s '%s': %s", k->name, v, why);
		else {
			free(hp->host);
			*hp = nhp;
		}
		break;
	}
	case KT_LISTEN:
		parse_listen(ld, v, line);
		break;
	case KT_UINT: {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(v, &end, 10);
		if (*end || errno || v[0] == '-' || v[0] == '+' || n > UINT32_MAX) {
			err_at(ld, line,
			       "%s: '%s' is not a whole number from 0 to 4294967295",
			       k->name, v);
			return;
		}
		*(uint32_t *)((char *)base + k->off) = (uint32_t)n;
		break;
	}
	case KT_DOMAINS:
		parse_domains(ld, base, v, line);
		break;
	case KT_S2S_LISTEN:
		parse_s2s_listen(ld, v, line, false);
		break;
	case KT_S2S_LISTEN_TLS:
		parse_s2s_listen(ld, v, line, true);
		break;
	case KT_AUTHS:
		parse_auths(ld, k, (unsigned *)((char *)base + k->off), v, line);
		break;
	}
}

/* [s2s-peer DOMAIN]: settings for one federated XMPP domain. */
static void begin_s2s_peer(struct loader *ld, const char *dn, unsigned line)
{
	struct conf *cf = ld->cf;

	while (*dn == ' ' || *dn == '\t')
		dn++;
	if (!*dn || !addr_domain_valid(dn)) {
		err_at(ld, line,
		       "section [s2s-peer %s]: name the XMPP domain, as [s2s-peer "
		       "cisco.example.com]",
		       dn);
		return;
	}
	for (size_t i = 0; i < cf->ns2s_peers; i++)
		if (strcasecmp(cf->s2s_peers[i].domain, dn) == 0) {
			err_at(ld, line,
			       "section [s2s-peer %s]: already defined at line %u", dn,
			       cf->s2s_peers[i].line);
			return;
		}
	struct conf_s2s_peer *np =
	    realloc(cf->s2s_peers, (cf->ns2s_peers + 1) * sizeof(*np));
	if (!np) {
		ld->oom = 1;
		return;
	}
	cf->s2s_peers = np;
	unsigned(*ns)[NKEYS] =
	    realloc(ld->s2s_peer_seen, (cf->ns2s_peers + 1) * sizeof(*ns));
	if (!ns) {
		ld->oom = 1;
		return;
	}
	ld->s2s_peer_seen = ns;
	memset(ns[cf->ns2s_peers], 0, sizeof(ns[0]));
	struct conf_s2s_peer *p = &np[cf->ns2s_peers];
	memset(p, 0, sizeof(*p));
	p->domain = strdup(dn);
	if (!p->domain) {
		ld->oom = 1;
		return;
	}
	for (char *c = p->domain; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	p->line = line;
	cf->ns2s_peers++;
	ld->sect = SECT_S2S_PEER;
}

static void begin_section(void *arg, const char *name, unsigned line)
{
	struct loader *ld = arg;
	struct conf *cf = ld->cf;

	ld->sect = SECT_NONE;
	if (strncmp(name, "s2s-peer", 8) == 0 &&
	    (name[8] == ' ' || name[8] == '\t' || !name[8])) {
		begin_s2s_peer(ld, name + 8, line);
		return;
	}
	if (strncmp(name, "peer", 4) == 0 &&
	    (name[4] == ' ' || name[4] == '\t' || !name[4])) {
		const char *pn = name + 4;
		while (*pn == ' ' || *pn == '\t')
			pn++;
		if (!*pn ||
		    strspn(pn, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		               "0123456789_.-") != strlen(pn)) {
			err_at(ld, line,
			       "section [%s]: a peer section is [peer NAME], NAME of "
			       "letters, "
			       "digits, '_', '.', '-'",
			       name);
			return;
		}
		for (size_t i = 0; i < cf->npeers; i++)
			if (strcmp(cf->peers[i].name, pn) == 0) {
				err_at(
				    ld, line,
				    "section [peer %s]: a peer of that name is already "
				    "defined at line %u",
				    pn, cf->peers[i].line);
				return;
			}
		struct conf_peer *np = realloc(cf->peers, (cf->npeers + 1) * sizeof(*np));
		if (!np) {
			ld->oom = 1;
			return;
		}
		cf->peers = np;
		unsigned(*ns)[NKEYS] =
		    realloc(ld->peer_seen, (cf->npeers + 1) * sizeof(*ns));
		if (!ns) {
			ld->oom = 1;
			return;
		}
		ld->peer_seen = ns;
		memset(ns[cf->npeers], 0, sizeof(ns[0]));
		struct conf_peer *p = &np[cf->npeers];
		memset(p, 0, sizeof(*p));
		p->name = strdup(pn);
		if (!p->name) {
			ld->oom = 1;
			return;
		}
		p->line = line;
		p->transport = CONF_TP_TLS;
		p->im = CONF_IM_SESSION;
		cf->npeers++;
		ld->sect = SECT_PEER;
		return;
	}
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		if (strcmp(name, sections[i].name) != 0)
			continue;
		if (ld->sect_line[sections[i].sect]) {
			err_at(ld, line, "section [%s] appears again (first at line %u)",
			       name, ld->sect_line[sections[i].sect]);
			return;
		}
		ld->sect_line[sections[i].sect] = line;
		ld->sect = sections[i].sect;
		return;
	}
	err_at(ld, line,
	       "unknown section [%s] (known: bridge, sip, xmpp, s2s, peer NAME, s2s-peer "
	       "DOMAIN)",
	       name);
}

static void on_key(void *arg, const char *name, const char *value, unsigned line)
{
	struct loader *ld = arg;

	if (ld->sect == SECT_NONE) {
		/* Keys under an unknown section were reported with the section. */
		if (!ld->src.any_section)
			err_at(ld, line, "'%s' is outside any section", name);
		return;
	}
	size_t i;
	for (i = 0; i < NKEYS; i++)
		if (keys[i].sect == ld->sect && strcmp(keys[i].name, name) == 0)
			break;
	if (i == NKEYS) {
		char known[256] = "";
		for (size_t k = 0; k < NKEYS; k++)
			if (keys[k].sect == ld->sect) {
				if (*known)
					strncat(known, ", ",
					        sizeof(known) - strlen(known) - 1);
				strncat(known, keys[k].name,
				        sizeof(known) - strlen(known) - 1);
			}
		err_at(ld, line, "unknown key '%s' (known here: %s)", name, known);
		return;
	}
	unsigned *seen = ld->sect == SECT_PEER ? &ld->peer_seen[ld->cf->npeers - 1][i]
	                 : ld->sect == SECT_S2S_PEER
	                     ? &ld->s2s_peer_seen[ld->cf->ns2s_peers - 1][i]
	                     : &ld->global_seen[i];
	if (*seen && keys[i].type != KT_LISTEN && keys[i].type != KT_S2S_LISTEN &&
	    keys[i].type != KT_S2S_LISTEN_TLS) {
		err_at(ld, line, "'%s' is already set at line %u", name, *seen);
		return;
	}
	if (!*seen)
		*seen = line;
	void *base = ld->sect == SECT_PEER ? (void *)&ld->cf->peers[ld->cf->npeers - 1]
	             : ld->sect == SECT_S2S_PEER
	                 ? (void *)&ld->cf->s2s_peers[ld->cf->ns2s_peers - 1]
	                 : (void *)ld->cf;
	apply(ld, &keys[i], base, value, line);
}

static int ini_handler_cb(void *user, const char *section, const char *name,
                          const char *value)
{
	struct loader *ld = user;
	(void)section; /* the reader tracks sections itself, with their line numbers */
	on_key(ld, name, value, ld->src.line);
	return 1;
}

static void check_required(struct loader *ld)
{
	static const struct {
		enum sect sect;
		const char *name;
	} need[] = {{SECT_SIP, "sip"}, {SECT_XMPP, "xmpp"}};

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!ld->sect_line[need[i].sect])
			err_at(ld, 0, "section [%s] is missing", need[i].name);
	for (size_t k = 0; k < NKEYS; k++) {
		if (!keys[k].required)
			continue;
		if (keys[k].sect == SECT_PEER) {
			for (size_t p = 0; p < ld->cf->npeers; p++)
				if (!ld->peer_seen[p][k])
					err_at(ld, ld->cf->peers[p].line,
					       "[peer %s] needs '%s'",
					       ld->cf->peers[p].name, keys[k].name);
		} else if (ld->sect_line[keys[k].sect] && !ld->global_seen[k]) {
			err_at(ld, ld->sect_line[keys[k].sect], "[%s] needs '%s'",
			       keys[k].sect == SECT_SIP       ? "sip"
			       : keys[k].sect == SECT_XMPP    ? "xmpp"
			       : keys[k].sect == SECT_S2S     ? "s2s"
			       : keys[k].sect == SECT_CONTROL ? "control"
			       : keys[k].sect == SECT_METRICS ? "metrics"
			       : keys[k].sect == SECT_STORE   ? "store"
			       : keys[k].sect == SECT_POOL    ? "pool"
			                                      : "bridge",
			       keys[k].name);
		}
	}
}

static size_t key_index(enum sect sect, const char *name)
{
	for (size_t k = 0; k < NKEYS; k++)
		if (keys[k].sect == sect && strcmp(keys[k].name, name) == 0)
			return k;
	return NKEYS;
}

static char *dup_at(struct loader *ld, const char *s)
{
	char *d = s ? strdup(s) : NULL;
	if (s && !d)
		ld->oom = 1;
	return d;
}

/*
 * [xmpp] transport picks what the rest of [xmpp] and [s2s] must hold: a component
 * needs server and secret; server-to-server needs a listener and TLS material
 * (its own, or the [sip] certificate, which already names the bridge).
 */
static void check_xmpp(struct loader *ld)
{
	struct conf *cf = ld->cf;
	unsigned xl = ld->sect_line[SECT_XMPP], sl = ld->sect_line[SECT_S2S];

	for (size_t i = 0; i < cf->ns2s_peers; i++) {
		struct conf_s2s_peer *p = &cf->s2s_peers[i];
		unsigned *seen = ld->s2s_peer_seen[i];
		p->address_line = seen[key_index(SECT_S2S_PEER, "address")];
		p->tls_line = seen[key_index(SECT_S2S_PEER, "tls")];
		p->auth_line = seen[key_index(SECT_S2S_PEER, "auth")];
		p->has_tls = p->tls_line != 0;
	}
	if (!xl)
		return;
	if (cf->xmpp_transport == CONF_XMPP_COMPONENT) {
		static const char *const need[] = {"server", "secret"};
		for (size_t i = 0; i < 2; i++)
			if (!ld->global_seen[key_index(SECT_XMPP, need[i])])
				err_at(ld, xl,
				       "[xmpp] needs '%s' (transport = component)",
				       need[i]);
		if (sl || cf->ns2s_peers)
			warn_at(ld, sl ? sl : cf->s2s_peers[0].line,
			        "[s2s] settings are not used: [xmpp] transport is "
			        "component");
		return;
	}
	/* server-to-server */
	if (!sl) {
		err_at(ld, xl,
		       "[xmpp] transport = s2s needs an [s2s] section with 'listen'");
		return;
	}
	if (!cf->ns2s_listen && !cf->ns2s_listen_tls)
		err_at(ld, sl,
		       "[s2s] needs 'listen': the address peers connect to (port 5269 "
		       "unless given; listen_tls for direct TLS, XEP-0368)");
	if (!cf->s2s_cert)
		cf->s2s_cert = dup_at(ld, cf->cert);
	if (!cf->s2s_key)
		cf->s2s_key = dup_at(ld, cf->key);
	if (!cf->s2s_ca)
		cf->s2s_ca = dup_at(ld, cf->ca);
	static const char *const material[] = {"cert", "key", "ca"};
	char *const have[] = {cf->s2s_cert, cf->s2s_key, cf->s2s_ca};
	for (size_t m = 0; m < 3; m++)
		if (!have[m])
			err_at(ld, sl,
			       "[s2s] needs '%s' (or [sip] %s): server-to-server streams "
			       "use TLS",
			       material[m], material[m]);
	if (!cf->s2s_auth)
		cf->s2s_auth = CONF_S2S_AUTH_EXTERNAL | CONF_S2S_AUTH_DIALBACK;
	if (!cf->s2s_idle_timeout)
		cf->s2s_idle_timeout = CONF_S2S_IDLE_TIMEOUT_DEFAULT;
	if (!cf->s2s_connect_timeout)
		cf->s2s_connect_timeout = CONF_S2S_CONNECT_TIMEOUT_DEFAULT;
	if (cf->s2s_connect_timeout > 600)
		err_at(ld, ld->global_seen[key_index(SECT_S2S, "connect_timeout")],
		       "[s2s] connect_timeout: 1 to 600 seconds");
	if (cf->s2s_idle_timeout > 86400u)
		err_at(ld, ld->global_seen[key_index(SECT_S2S, "idle_timeout")],
		       "[s2s] idle_timeout: 1 to 86400 seconds");
	unsigned secret_line = ld->global_seen[key_index(SECT_S2S, "dialback_secret")];
	if (cf->s2s_secret && strlen(cf->s2s_secret) < 16)
		warn_at(
		    ld, secret_line,
		    "[s2s] dialback_secret: shorter than 16 characters; dialback keys "
		    "made from it can be guessed (XEP-0185 section 2: they are an HMAC "
		    "keyed with it)");
	if (!cf->s2s_secret && (cf->s2s_auth & CONF_S2S_AUTH_DIALBACK))
		warn_at(
		    ld, sl,
		    "[s2s] has no dialback_secret: a random one is made at every start, "
		    "so dialback keys of streams opened before a restart (or by another "
		    "node serving the same domain) cannot be verified");
	if (cf->s2s_tls == CONF_S2S_TLS_OFF)
		warn_at(ld, ld->global_seen[key_index(SECT_S2S, "tls")],
		        "[s2s] tls = off: every federated stanza crosses the network in "
		        "clear text and peers are authenticated by dialback alone");
	for (size_t i = 0; i < cf->ns2s_peers; i++) {
		const struct conf_s2s_peer *p = &cf->s2s_peers[i];
		unsigned auth = p->auth ? p->auth : cf->s2s_auth;
		enum conf_s2s_tls tls = p->has_tls ? p->tls : cf->s2s_tls;
		if (tls == CONF_S2S_TLS_OFF && p->has_tls)
			warn_at(ld, p->tls_line,
			        "[s2s-peer %s] tls = off: plain TCP, authenticated by "
			        "dialback alone; anyone on the path reads and changes "
			        "the stanzas",
			        p->domain);
		if (tls == CONF_S2S_TLS_OFF && !(auth & CONF_S2S_AUTH_DIALBACK))
			err_at(ld, p->auth_line ? p->auth_line : p->line,
			       "[s2s-peer %s] without TLS only dialback can authenticate "
			       "the peer: add dialback to auth",
			       p->domain);
		if (p->direct_tls && !p->address.host)
			err_at(
			    ld, p->line,
			    "[s2s-peer %s] direct_tls needs 'address' (a static route); "
			    "DNS finds direct TLS by _xmpps-server SRV records",
			    p->domain);
	}
}

/* Cross-checks that need the whole file: TLS material, peers among themselves. */
/* [control] and [metrics]: the operator's interfaces (presbridgectl, Prometheus). */
static void check_ops(struct loader *ld)
{
	struct conf *cf = ld->cf;
	unsigned sl = ld->global_seen[key_index(SECT_CONTROL, "socket")];
	if (cf->control_socket && strcmp(cf->control_socket, "off") != 0) {
		if (cf->control_socket[0] != '/')
			err_at(ld, sl,
			       "[control] socket: an absolute path (or off), as "
			       "/run/presbridge/control.sock");
		else if (strlen(cf->control_socket) >= 108) /* sizeof(sun_path) */
			err_at(
			    ld, sl,
			    "[control] socket: at most 107 bytes (a Unix socket path)");
	}
	unsigned ml = ld->global_seen[key_index(SECT_METRICS, "listen")];
	if (ml && cf->metrics_listen.host) {
		const char *h = cf->metrics_listen.host;
		if (strncmp(h, "127.", 4) != 0 && strcmp(h, "::1") != 0 &&
		    strcmp(h, "localhost") != 0)
			warn_at(
			    ld, ml,
			    "[metrics] listen = %s: /metrics is served without "
			    "authentication beyond this host; prefer loopback behind a "
			    "proxy, or firewall it",
			    h);
	}
}

/* [store] and [pool]: the PostgreSQL store shared by a pool of bridges. */
static void check_store(struct loader *ld)
{
	struct conf *cf = ld->cf;
	unsigned bl = ld->global_seen[key_index(SECT_STORE, "backend")];
	unsigned cl = ld->global_seen[key_index(SECT_STORE, "conninfo")];
	unsigned nl = ld->global_seen[key_index(SECT_POOL, "node")];
	unsigned ll = ld->global_seen[key_index(SECT_POOL, "lease")];

	if (cf->store_backend != CONF_STORE_PG) {
		if (cl)
			warn_at(
			    ld, cl,
			    "[store] conninfo is not used: [store] backend is sqlite");
		if (ld->sect_line[SECT_POOL])
			warn_at(ld, ld->sect_line[SECT_POOL],
			        "[pool] is not used: a pool needs [store] backend = "
			        "postgresql");
		return;
	}
	if (!cf->store_conninfo || !cf->store_conninfo[0]) {
		err_at(
		    ld, bl ? bl : ld->sect_line[SECT_STORE],
		    "[store] backend = postgresql needs 'conninfo' (a libpq "
		    "connection string, as host=db1 dbname=presbridge user=presbridge)");
	} else {
		char *why = NULL;
		PQconninfoOption *o = PQconninfoParse(cf->store_conninfo, &why);
		if (!o) {
			char msg[300];
			snprintf(msg, sizeof(msg), "%s", why ? why : "out of memory");
			msg[strcspn(msg, "\n")] = '\0';
			err_at(ld, cl, "[store] conninfo: libpq cannot read it: %s", msg);
		}
		PQconninfoFree(o);
		PQfreemem(why);
	}
	if (cf->xmpp_transport == CONF_XMPP_S2S && !cf->s2s_secret)
		warn_at(
		    ld, ld->sect_line[SECT_S2S] ? ld->sect_line[SECT_S2S] : bl,
		    "a pool federating over S2S needs the same [s2s] dialback_secret on "
		    "every node: a peer may check a dialback key (XEP-0185) with "
		    "another node than the one that made it");
	if (ll && (cf->pool_lease < 1 || cf->pool_lease > 60))
		err_at(ld, ll, "[pool] lease = %u: from 1 to 60 seconds", cf->pool_lease);
	if (!cf->pool_lease)
		cf->pool_lease = CONF_POOL_LEASE_DEFAULT;
	if (cf->pool_node) {
		size_t n = strlen(cf->pool_node);
		bool ok = n > 0 && n <= 63;
		for (size_t i = 0; ok && i < n; i++) {
			char c = cf->pool_node[i];
			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
		}
		if (!ok)
			err_at(ld, nl,
			       "[pool] node = %s: 1 to 63 letters, digits, '-', '.' or "
			       "'_' (unique in the pool)",
			       cf->pool_node);
	} else {
		char host[256] = "";
		if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
			snprintf(host, sizeof(host), "presbridge");
		host[63] = '\0';
		cf->pool_node = strdup(host);
		if (!cf->pool_node)
			ld->oom = 1;
	}
}

static void check_consistency(struct loader *ld)
{
	struct conf *cf = ld->cf;
	unsigned tls_line = 0;

	for (size_t i = 0; i < cf->nlisten; i++)
		if (cf->listen[i].tp == CONF_TP_TLS && !tls_line)
			tls_line = cf->listen[i].line;
	for (size_t i = 0; i < cf->npeers; i++) {
		struct conf_peer *p = &cf->peers[i];
		unsigned *seen = ld->peer_seen[i];
		p->host_line = seen[key_index(SECT_PEER, "host")];
		p->address_line = seen[key_index(SECT_PEER, "address")];
		p->transport_line = seen[key_index(SECT_PEER, "transport")];
		p->domains_line = seen[key_index(SECT_PEER, "domains")];
		p->has_address = p->address.host != NULL;
		if (p->host && !addr_domain_valid(p->host))
			err_at(
			    ld, p->host_line,
			    "[peer %s] host '%s' must be the peer's FQDN, the name its "
			    "certificate carries",
			    p->name, p->host);
		if (!p->has_address && p->host) {
			p->address.host = strdup(p->host);
			if (!p->address.host)
				ld->oom = 1;
		}
		if (!p->address.port)
			p->address.port = p->transport == CONF_TP_TLS ? 5061 : 5060;
		if (p->transport == CONF_TP_TLS) {
			if (!tls_line)
				tls_line = p->line;
		} else {
			warn_at(ld, p->transport_line ? p->transport_line : p->line,
			        "[peer %s] uses plain %s: its traffic is not encrypted "
			        "and it is "
			        "recognised by source address only; use transport = tls",
			        p->name, conf_tp_name(p->transport));
		}
		for (size_t j = 0; j < i; j++) {
			const struct conf_peer *q = &cf->peers[j];
			if (!p->host || !q->host)
				continue;
			/* TLS peers are told apart by certificate name, others by
			 * address. */
			if (p->transport == CONF_TP_TLS && q->transport == CONF_TP_TLS &&
			    strcasecmp(p->host, q->host) == 0)
				err_at(ld, p->host_line,
				       "[peer %s] has the same host as [peer %s] (line "
				       "%u): the "
				       "bridge could not tell their certificates apart",
				       p->name, q->name, q->host_line);
			else if (p->transport != CONF_TP_TLS &&
			         q->transport != CONF_TP_TLS && p->address.host &&
			         q->address.host &&
			         strcmp(p->address.host, q->address.host) == 0)
				err_at(ld,
				       p->address_line ? p->address_line : p->host_line,
				       "[peer %s] has the same address as [peer %s] "
				       "(line %u): "
				       "requests from it could not be told apart",
				       p->name, q->name, q->line);
			for (size_t a = 0; a < p->ndomains; a++)
				for (size_t b = 0; b < q->ndomains; b++)
					if (strcasecmp(p->domains[a], q->domains[b]) == 0)
						err_at(ld, p->domains_line,
						       "[peer %s] routes domain '%s' "
						       "that [peer %s] "
						       "already routes (line %u)",
						       p->name, p->domains[a], q->name,
						       q->domains_line);
		}
	}
	if (tls_line) {
		static const char *const material[] = {"cert", "key", "ca"};
		for (size_t m = 0; m < 3; m++)
			if (!ld->global_seen[key_index(SECT_SIP, material[m])])
				err_at(ld,
				       ld->sect_line[SECT_SIP] ? ld->sect_line[SECT_SIP]
				                               : tls_line,
				       "[sip] needs '%s': a TLS listener or TLS peer "
				       "(line %u) "
				       "uses it",
				       material[m], tls_line);
	}
	check_xmpp(ld);
	check_store(ld);
	if (ld->sect_line[SECT_XMPP] && cf->xmpp_transport == CONF_XMPP_COMPONENT &&
	    cf->xmpp_tls == CONF_XMPP_TLS_DIRECT &&
	    !ld->global_seen[key_index(SECT_XMPP, "ca")])
		err_at(ld, ld->sect_line[SECT_XMPP],
		       "[xmpp] needs 'ca' to verify the XMPP server's certificate (tls = "
		       "direct)");
	if (ld->sect_line[SECT_XMPP] && cf->xmpp_transport == CONF_XMPP_COMPONENT &&
	    cf->xmpp_tls == CONF_XMPP_TLS_OFF)
		warn_at(
		    ld, ld->global_seen[key_index(SECT_XMPP, "tls")],
		    "[xmpp] tls = off: the component secret and every stanza cross the "
		    "network in clear text");
	/* A week is already longer than any IM window stays open; the bound keeps the
	 * timer arithmetic far from overflow. */
	if (cf->im_idle_timeout > 7u * 24u * 3600u)
		err_at(ld, ld->global_seen[key_index(SECT_BRIDGE, "im_idle_timeout")],
		       "im_idle_timeout: at most 604800 seconds (a week); 0 means never");
	/* A silent connection holds a descriptor and a read buffer: a day at most. */
	if (cf->sip_idle_timeout < 1 || cf->sip_idle_timeout > 86400u)
		err_at(ld, ld->global_seen[key_index(SECT_SIP, "idle_timeout")],
		       "[sip] idle_timeout: 1 to 86400 seconds");
	if (!cf->xmpp_name && cf->xmpp_server.host) {
		cf->xmpp_name = strdup(cf->xmpp_server.host);
		if (!cf->xmpp_name)
			ld->oom = 1;
	}
	if (cf->npeers == 0 && ld->sect_line[SECT_SIP])
		warn_at(
		    ld, 0,
		    "no [peer] section: no SIP server can reach the bridge, nor it them");
	check_ops(ld);
}

static const char *const map_files[CONF_MAP_FILES] = {"domains.map", "users.map",
                                                      "presence.map"};

static int read_mapping(struct loader *ld, const char *file, bool required, char **textp,
                        size_t *lenp, char **pathp)
{
	char *path = malloc(strlen(ld->cf->mappings) + strlen(file) + 2);
	if (!path) {
		ld->oom = 1;
		return -ENOMEM;
	}
	sprintf(path, "%s/%s", ld->cf->mappings, file);
	int e = conf_file_read(path, textp, lenp);
	if (e == -ENOENT && !required) {
		free(path);
		return e;
	}
	if (e) {
		diag_add(ld->dl, DIAG_ERROR, path, 0, "cannot read: %s%s", strerror(-e),
		         e == -EFBIG ? " (mapping files are limited to 16 MiB)" : "");
		free(path);
		return e;
	}
	/* FNV-1a of the bytes, so a reload can tell which file changed (conf_diff). */
	for (size_t i = 0; i < CONF_MAP_FILES; i++)
		if (strcmp(file, map_files[i]) == 0) {
			uint64_t h = 1469598103934665603ull;
			for (size_t k = 0; k < *lenp; k++)
				h = (h ^ (unsigned char)(*textp)[k]) * 1099511628211ull;
			ld->cf->map_hash[i] = h;
		}
	*pathp = path;
	return 0;
}

static void load_mappings(struct loader *ld)
{
	struct conf *cf = ld->cf;
	char *text = NULL, *path = NULL;
	size_t len;

	cf->addr = addr_map_new();
	if (!cf->addr) {
		ld->oom = 1;
		return;
	}
	if (read_mapping(ld, "domains.map", true, &text, &len, &path) == 0) {
		addr_map_load_domains(cf->addr, text, len, path, ld->dl);
		if (addr_map_domain_count(cf->addr) == 0)
			diag_add(
			    ld->dl, DIAG_ERROR, path, 0,
			    "no domain is mapped: the bridge would refuse every address");
		free(text);
		free(path);
	}
	if (read_mapping(ld, "users.map", false, &text, &len, &path) == 0) {
		addr_map_load_users(cf->addr, text, len, path, ld->dl);
		free(text);
		free(path);
	}
	if (read_mapping(ld, "presence.map", true, &text, &len, &path) == 0) {
		presmap_parse(&cf->pres, text, len, path, ld->dl);
		free(text);
		free(path);
	}
	/* An [s2s-peer] section tunes a federated domain; one that names no
	 * XMPP-homed row of domains.map does nothing (domains.map is the allow
	 * list), most likely a typo. */
	for (size_t i = 0; i < cf->ns2s_peers; i++) {
		const struct conf_s2s_peer *sp = &cf->s2s_peers[i];
		enum addr_home home;
		const char *xname = NULL;
		bool found = false;
		for (size_t r = 0; addr_map_domain(cf->addr, r, &home, NULL, &xname) == 0;
		     r++)
			if (home == ADDR_HOME_XMPP && strcasecmp(xname, sp->domain) == 0)
				found = true;
		if (!found)
			warn_at(
			    ld, sp->line,
			    "[s2s-peer %s] names no xmpp row of domains.map: the bridge "
			    "does not federate with that domain, so the section has no "
			    "effect",
			    sp->domain);
	}
	/* Each peer's domains must be SIP-homed domains of domains.map: that is the
	 * static route, and a typo there silently loses a whole domain. */
	for (size_t i = 0; i < cf->npeers; i++) {
		const struct conf_peer *p = &cf->peers[i];
		for (size_t d = 0; d < p->ndomains; d++) {
			enum addr_home home;
			if (addr_domain_sip(cf->addr, p->domains[d], &home, NULL) != 0)
				err_at(ld, p->domains_line,
				       "[peer %s] domain '%s' is not in domains.map",
				       p->name, p->domains[d]);
			else if (home != ADDR_HOME_SIP)
				err_at(ld, p->domains_line,
				       "[peer %s] domain '%s' is XMPP-homed in "
				       "domains.map; a peer "
				       "serves SIP-homed domains",
				       p->name, p->domains[d]);
		}
	}
}

int conf_load(struct conf **cfp, const char *path, struct diag_list *dl)
{
	struct loader ld;
	struct conf *cf = calloc(1, sizeof(*cf));
	int err;

	if (!cf)
		return -ENOMEM;
	memset(&ld, 0, sizeof(ld));
	ld.cf = cf;
	ld.dl = dl;
	ld.fname = path;
	cf->log_level = CONF_LOG_INFO;
	cf->max_subscriptions = CONF_MAX_SUBSCRIPTIONS_DEFAULT;
	cf->max_subscriptions_per_user = CONF_MAX_SUBSCRIPTIONS_PER_USER_DEFAULT;
	cf->im_idle_timeout = CONF_IM_IDLE_TIMEOUT_DEFAULT;
	cf->sip_idle_timeout = CONF_SIP_IDLE_TIMEOUT_DEFAULT;
	cf->xmpp_tls = CONF_XMPP_TLS_DIRECT;
	cf->file = strdup(path);
	cf->dir = conf_file_dir(path);
	if (!cf->file || !cf->dir) {
		err = -ENOMEM;
		goto out;
	}
	err = conf_file_open(&ld.src, path, begin_section, &ld);
	if (err) {
		diag_add(dl, DIAG_ERROR, path, 0, "cannot read: %s", strerror(-err));
		goto out;
	}
	size_t before = diag_count(dl, DIAG_ERROR);
	ld.src.dl = dl;
	ld.src.fname = path;
	if (ini_parse_stream(conf_file_reader, &ld.src, ini_handler_cb, &ld) < 0)
		ld.oom = 1;
	conf_file_close(&ld.src);

	if (!cf->state)
		cf->state = resolve(&ld, "state/presbridge.db");
	if (!cf->mappings) {
		cf->mappings = resolve(&ld, "mappings");
		struct stat st;
		if (cf->mappings &&
		    (stat(cf->mappings, &st) != 0 || !S_ISDIR(st.st_mode)))
			err_at(&ld, ld.sect_line[SECT_BRIDGE],
			       "mappings: folder '%s' does not exist (set [bridge] "
			       "mappings)",
			       cf->mappings);
	}
	check_required(&ld);
	check_consistency(&ld);
	if (cf->mappings && !ld.oom)
		load_mappings(&ld);

	if (ld.oom || dl->oom)
		err = -ENOMEM;
	else if (diag_count(dl, DIAG_ERROR) > before)
		err = -EINVAL;
out:
	free(ld.peer_seen);
	free(ld.s2s_peer_seen);
	if (err) {
		conf_free(cf);
		return err;
	}
	memcpy(cf->key_lines, ld.global_seen, sizeof(ld.global_seen));
	*cfp = cf;
	return 0;
}

unsigned conf_key_line(const struct conf *cf, const char *section, const char *key)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strcmp(sections[i].name, section) == 0) {
			size_t k = key_index(sections[i].sect, key);
			return k < NKEYS ? cf->key_lines[k] : 0;
		}
	return 0;
}

int conf_key_at(size_t i, const char **section, const char **key)
{
	static const char *const sect_names[] = {
	    [SECT_NONE] = "",
	    [SECT_BRIDGE] = "bridge",
	    [SECT_SIP] = "sip",
	    [SECT_XMPP] = "xmpp",
	    [SECT_PEER] = "peer",
	    [SECT_S2S] = "s2s",
	    [SECT_S2S_PEER] = "s2s-peer",
	    [SECT_CONTROL] = "control",
	    [SECT_METRICS] = "metrics",
	    [SECT_STORE] = "store",
	    [SECT_POOL] = "pool",
	};
	if (i >= NKEYS)
		return -ENOENT;
	*section = sect_names[keys[i].sect];
	*key = keys[i].name;
	return 0;
}

/* ---- what a reload changes ---------------------------------------------- */

static bool str_differ(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

static bool hp_differ(const struct conf_hostport *a, const struct conf_hostport *b)
{
	return str_differ(a->host, b->host) || a->port != b->port;
}

static bool hps_differ(const struct conf_hostport *a, size_t na,
                       const struct conf_hostport *b, size_t nb)
{
	if (na != nb)
		return true;
	for (size_t i = 0; i < na; i++)
		if (hp_differ(&a[i], &b[i]))
			return true;
	return false;
}

/* Does key k differ between the records at a and b (a conf, peer or s2s peer)? */
static bool key_differs(const struct key_def *k, const void *a, const void *b)
{
	const char *pa = (const char *)a + k->off, *pb = (const char *)b + k->off;
	switch (k->type) {
	case KT_STRING:
	case KT_SECRET:
	case KT_FILE:
	case KT_DIR:
	case KT_STATE:
		return str_differ(*(char *const *)pa, *(char *const *)pb);
	case KT_ENUM:
		return *(const int *)pa != *(const int *)pb;
	case KT_BOOL:
		return *(const bool *)pa != *(const bool *)pb;
	case KT_UINT:
		return *(const uint32_t *)pa != *(const uint32_t *)pb;
	case KT_AUTHS:
		return *(const unsigned *)pa != *(const unsigned *)pb;
	case KT_HOSTPORT:
		return hp_differ((const struct conf_hostport *)pa,
		                 (const struct conf_hostport *)pb);
	case KT_LISTEN: {
		const struct conf *ca = a, *cb = b;
		if (ca->nlisten != cb->nlisten)
			return true;
		for (size_t i = 0; i < ca->nlisten; i++)
			if (ca->listen[i].tp != cb->listen[i].tp ||
			    hp_differ(&ca->listen[i].addr, &cb->listen[i].addr))
				return true;
		return false;
	}
	case KT_S2S_LISTEN: {
		const struct conf *ca = a, *cb = b;
		return hps_differ(ca->s2s_listen, ca->ns2s_listen, cb->s2s_listen,
		                  cb->ns2s_listen);
	}
	case KT_S2S_LISTEN_TLS: {
		const struct conf *ca = a, *cb = b;
		return hps_differ(ca->s2s_listen_tls, ca->ns2s_listen_tls,
		                  cb->s2s_listen_tls, cb->ns2s_listen_tls);
	}
	case KT_DOMAINS: {
		const struct conf_peer *x = a, *y = b;
		if (x->ndomains != y->ndomains)
			return true;
		for (size_t i = 0; i < x->ndomains; i++)
			if (strcasecmp(x->domains[i], y->domains[i]) != 0)
				return true;
		return false;
	}
	}
	return false;
}

void conf_diff(const struct conf *a, const struct conf *b, conf_diff_h *h, void *arg)
{
	static const char *const names[SECT_COUNT] = {
	    [SECT_BRIDGE] = "bridge",   [SECT_SIP] = "sip",
	    [SECT_XMPP] = "xmpp",       [SECT_S2S] = "s2s",
	    [SECT_CONTROL] = "control", [SECT_METRICS] = "metrics",
	    [SECT_STORE] = "store",     [SECT_POOL] = "pool",
	};
	char what[400];
	for (size_t k = 0; k < NKEYS; k++) {
		if (keys[k].sect == SECT_PEER || keys[k].sect == SECT_S2S_PEER)
			continue;
		if (key_differs(&keys[k], a, b)) {
			snprintf(what, sizeof(what), "[%s] %s", names[keys[k].sect],
			         keys[k].name);
			h(what, arg);
		}
	}
	for (size_t i = 0; i < a->npeers; i++) {
		const struct conf_peer *pb = NULL;
		for (size_t j = 0; j < b->npeers && !pb; j++)
			if (strcmp(a->peers[i].name, b->peers[j].name) == 0)
				pb = &b->peers[j];
		if (!pb) {
			snprintf(what, sizeof(what), "[peer %s] removed",
			         a->peers[i].name);
			h(what, arg);
			continue;
		}
		for (size_t k = 0; k < NKEYS; k++)
			if (keys[k].sect == SECT_PEER &&
			    key_differs(&keys[k], &a->peers[i], pb)) {
				snprintf(what, sizeof(what), "[peer %s] %s", pb->name,
				         keys[k].name);
				h(what, arg);
			}
	}
	for (size_t j = 0; j < b->npeers; j++) {
		bool old = false;
		for (size_t i = 0; i < a->npeers && !old; i++)
			old = strcmp(a->peers[i].name, b->peers[j].name) == 0;
		if (!old) {
			snprintf(what, sizeof(what), "[peer %s] added", b->peers[j].name);
			h(what, arg);
		}
	}
	for (size_t i = 0; i < a->ns2s_peers; i++) {
		const struct conf_s2s_peer *pa = &a->s2s_peers[i];
		const struct conf_s2s_peer *pb = conf_s2s_peer(b, pa->domain);
		if (!pb) {
			snprintf(what, sizeof(what), "[s2s-peer %s] removed", pa->domain);
			h(what, arg);
			continue;
		}
		for (size_t k = 0; k < NKEYS; k++)
			if (keys[k].sect == SECT_S2S_PEER &&
			    key_differs(&keys[k], pa, pb)) {
				snprintf(what, sizeof(what), "[s2s-peer %s] %s",
				         pb->domain, keys[k].name);
				h(what, arg);
			}
	}
	for (size_t j = 0; j < b->ns2s_peers; j++)
		if (!conf_s2s_peer(a, b->s2s_peers[j].domain)) {
			snprintf(what, sizeof(what), "[s2s-peer %s] added",
			         b->s2s_peers[j].domain);
			h(what, arg);
		}
	for (size_t i = 0; i < CONF_MAP_FILES; i++)
		if (a->map_hash[i] != b->map_hash[i])
			h(map_files[i], arg);
}

const struct conf_peer *conf_peer_for_domain(const struct conf *cf,
                                             const char *sip_domain)
{
	for (size_t i = 0; i < cf->npeers; i++)
		for (size_t d = 0; d < cf->peers[i].ndomains; d++)
			if (strcasecmp(cf->peers[i].domains[d], sip_domain) == 0)
				return &cf->peers[i];
	return NULL;
}

static void explicit_wipe(char *s)
{
	volatile char *v = s;
	while (*v)
		*v++ = 0;
}

const struct conf_s2s_peer *conf_s2s_peer(const struct conf *cf, const char *domain)
{
	for (size_t i = 0; i < cf->ns2s_peers; i++)
		if (strcasecmp(cf->s2s_peers[i].domain, domain) == 0)
			return &cf->s2s_peers[i];
	return NULL;
}

enum conf_s2s_tls conf_s2s_tls_for(const struct conf *cf, const char *domain)
{
	const struct conf_s2s_peer *p = conf_s2s_peer(cf, domain);
	return p && p->has_tls ? p->tls : cf->s2s_tls;
}

unsigned conf_s2s_auth_for(const struct conf *cf, const char *domain)
{
	const struct conf_s2s_peer *p = conf_s2s_peer(cf, domain);
	return p && p->auth ? p->auth : cf->s2s_auth;
}

void conf_free(struct conf *cf)
{
	if (!cf)
		return;
	free(cf->file);
	free(cf->dir);
	free(cf->state);
	free(cf->mappings);
	for (size_t i = 0; i < cf->nlisten; i++)
		free(cf->listen[i].addr.host);
	free(cf->listen);
	free(cf->cert);
	free(cf->key);
	free(cf->ca);
	free(cf->xmpp_server.host);
	free(cf->xmpp_secret);
	free(cf->xmpp_ca);
	free(cf->xmpp_name);
	free(cf->control_socket);
	free(cf->metrics_listen.host);
	free(cf->store_conninfo);
	free(cf->pool_node);
	for (size_t i = 0; i < cf->npeers; i++) {
		struct conf_peer *p = &cf->peers[i];
		free(p->name);
		free(p->host);
		free(p->address.host);
		for (size_t d = 0; d < p->ndomains; d++)
			free(p->domains[d]);
		free(p->domains);
	}
	free(cf->peers);
	for (size_t i = 0; i < cf->ns2s_listen; i++)
		free(cf->s2s_listen[i].host);
	free(cf->s2s_listen);
	for (size_t i = 0; i < cf->ns2s_listen_tls; i++)
		free(cf->s2s_listen_tls[i].host);
	free(cf->s2s_listen_tls);
	free(cf->s2s_cert);
	free(cf->s2s_key);
	free(cf->s2s_ca);
	if (cf->s2s_secret) {
		explicit_wipe(cf->s2s_secret);
		free(cf->s2s_secret);
	}
	free(cf->s2s_dns);
	for (size_t i = 0; i < cf->ns2s_peers; i++) {
		free(cf->s2s_peers[i].domain);
		free(cf->s2s_peers[i].address.host);
	}
	free(cf->s2s_peers);
	addr_map_free(cf->addr);
	presmap_free(cf->pres);
	free(cf);
}

const char *conf_tp_name(enum conf_tp tp)
{
	for (const struct enum_row *r = transports; r->name; r++)
		if (r->value == (int)tp)
			return r->name;
	return "?";
}

const char *conf_log_name(enum conf_log lvl)
{
	for (const struct enum_row *r = log_levels; r->name; r++)
		if (r->value == (int)lvl)
			return r->name;
	return "?";
}

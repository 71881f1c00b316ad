/*
 * conf - the INI configuration file and the mapping files it points at.
 *
 * conf_load() reads everything a running bridge needs, validates it strictly and
 * records every problem with file:line in a diag_list; `presbridge -n` prints them.
 * Paths in the file are relative to the file's own folder.
 */
#ifndef PRESBRIDGE_CONF_H
#define PRESBRIDGE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "presbridge/diag.h"

struct addr_map;
struct presmap;

#define CONF_MAX_KEYS 64

/* Defaults of the [bridge] limits: room for a large enterprise, a bound on what a
 * misbehaving peer can make the bridge hold. */
#define CONF_MAX_SUBSCRIPTIONS_DEFAULT          200000u
#define CONF_MAX_SUBSCRIPTIONS_PER_USER_DEFAULT 2000u
#define CONF_IM_IDLE_TIMEOUT_DEFAULT            600u
#define CONF_SIP_IDLE_TIMEOUT_DEFAULT           600u
/* [control] socket when not set: used if its folder exists (systemd's
 * RuntimeDirectory), else no control socket. */
#define CONF_CONTROL_SOCKET_DEFAULT "/run/presbridge/control.sock"
#define CONF_METRICS_PORT_DEFAULT   9478u
#define CONF_MAP_FILES              3 /* domains.map, users.map, presence.map */

enum conf_tp {
	CONF_TP_UDP,
	CONF_TP_TCP,
	CONF_TP_TLS,
};

enum conf_log {
	CONF_LOG_ERROR,
	CONF_LOG_WARN,
	CONF_LOG_INFO,
	CONF_LOG_DEBUG,
	CONF_LOG_TRACE,
};

enum conf_sync {
	CONF_SYNC_NORMAL, /* state durable against a crash of the process */
	CONF_SYNC_FULL,   /* ... and of the machine (an fsync per write) */
};

enum conf_store {
	CONF_STORE_SQLITE, /* [bridge] state, one node */
	CONF_STORE_PG,     /* PostgreSQL, shared by a pool of nodes */
};

/* [pool] lease when not given, seconds: a dead node's rows are taken over within
 * lease + 0.5 s. */
#define CONF_POOL_LEASE_DEFAULT 3

enum conf_xmpp_tls {
	CONF_XMPP_TLS_DIRECT, /* TLS from the first byte */
	CONF_XMPP_TLS_OFF,
};

/* How the XMPP leg reaches the XMPP side. */
enum conf_xmpp_transport {
	CONF_XMPP_COMPONENT, /* XEP-0114 component of the site's own XMPP server */
	CONF_XMPP_S2S,       /* the bridge is itself the XMPP server of the SIP domains
	                        and federates server-to-server (RFC 6120) */
};

/* TLS on a server-to-server stream (RFC 7590: required by default). */
enum conf_s2s_tls {
	CONF_S2S_TLS_REQUIRED, /* STARTTLS or direct TLS, never plain text */
	CONF_S2S_TLS_OPTIONAL, /* TLS when the peer offers it, plain text otherwise */
	CONF_S2S_TLS_OFF,      /* plain TCP (dialback only); a warning from -n */
};

/* Authentication methods a server-to-server peer may use (bit mask). */
enum {
	CONF_S2S_AUTH_EXTERNAL = 1 << 0, /* SASL EXTERNAL with certificates, XEP-0178 */
	CONF_S2S_AUTH_DIALBACK = 1 << 1, /* server dialback, XEP-0220 */
};

#define CONF_S2S_PORT_DEFAULT            5269u
#define CONF_S2S_TLS_PORT_DEFAULT        5270u
#define CONF_S2S_IDLE_TIMEOUT_DEFAULT    600u
#define CONF_S2S_CONNECT_TIMEOUT_DEFAULT 20u

enum conf_im {
	CONF_IM_SESSION, /* INVITE + MESSAGE in the dialog, as Lync does */
	CONF_IM_PAGE,    /* MESSAGE outside a dialog (RFC 3428) */
};

struct conf_hostport {
	char *host; /* a name or an IP literal without brackets */
	uint16_t port;
};

/* One [s2s-peer DOMAIN] section: what differs for one federated XMPP domain. */
struct conf_s2s_peer {
	char *domain; /* from the section header */
	unsigned line;
	struct conf_hostport
	    address; /* static route; host NULL: DNS (SRV, then A/AAAA) */
	unsigned address_line;
	enum conf_s2s_tls tls;
	bool has_tls; /* tls set here; otherwise [s2s] tls applies */
	unsigned tls_line;
	unsigned auth; /* CONF_S2S_AUTH_* mask; 0: [s2s] auth applies */
	unsigned auth_line;
	bool direct_tls; /* the static route speaks TLS from the first byte (XEP-0368) */
};

struct conf_listen {
	enum conf_tp tp;
	struct conf_hostport addr;
	unsigned line;
};

struct conf_peer {
	char *name;    /* from the section header [peer NAME] */
	unsigned line; /* of the section header */
	char *host;    /* FQDN the peer's certificate must name */
	unsigned host_line;
	struct conf_hostport address; /* where to connect; host:5061 when not given */
	bool has_address;
	unsigned address_line;
	enum conf_tp transport;
	unsigned transport_line;
	char **domains; /* SIP domains routed to this peer */
	size_t ndomains;
	unsigned domains_line;
	bool trusted;
	enum conf_im im;
};

struct conf {
	char *file; /* the path given to conf_load */
	char *dir;  /* its folder; relative paths are resolved against it */

	/* [bridge] */
	char *state;    /* resolved path, or ":memory:" */
	char *mappings; /* resolved folder */
	enum conf_log log_level;
	enum conf_sync state_sync;
	uint32_t max_subscriptions;          /* in all; 0: no limit */
	uint32_t max_subscriptions_per_user; /* per watcher; 0: no limit */
	uint32_t im_idle_timeout;            /* seconds before an idle IM session ends */

	/* [sip] */
	struct conf_listen *listen;
	size_t nlisten;
	char *cert, *key, *ca;     /* resolved paths; NULL when not given */
	uint32_t sip_idle_timeout; /* seconds a connection may stay silent, also in the
	                              middle of a message; 0 (a conf not from
	                              conf_load): the leg's default */

	/* [xmpp] */
	struct conf_hostport xmpp_server;
	char *xmpp_secret;
	enum conf_xmpp_tls xmpp_tls;
	char *xmpp_ca;
	char *xmpp_name; /* the name the server certificate must carry */

	enum conf_xmpp_transport xmpp_transport;

	/* [s2s]: the bridge as the XMPP server of the SIP domains */
	struct conf_hostport *s2s_listen; /* host:port, port 5269 when not given */
	size_t ns2s_listen;
	struct conf_hostport *s2s_listen_tls; /* direct TLS (XEP-0368), port 5270 */
	size_t ns2s_listen_tls;
	unsigned s2s_listen_line;
	char *s2s_cert, *s2s_key, *s2s_ca; /* resolved; default: the [sip] ones */
	char *s2s_secret;                  /* dialback secret; NULL: random per start */
	enum conf_s2s_tls s2s_tls;
	unsigned s2s_auth;         /* CONF_S2S_AUTH_* allowed by default */
	uint32_t s2s_idle_timeout; /* seconds an idle stream stays open */
	uint32_t
	    s2s_connect_timeout; /* seconds from connect to an authenticated stream */
	char *s2s_dns;           /* "IP:PORT[,IP:PORT]": resolver; NULL: resolv.conf */
	bool s2s_direct_tls;     /* also look up _xmpps-server (XEP-0368) */
	struct conf_s2s_peer *s2s_peers;
	size_t ns2s_peers;

	struct conf_peer *peers;
	size_t npeers;

	/* [control]: the presbridgectl socket; NULL: the default; "off": none. */
	char *control_socket;
	/* [metrics]: the Prometheus endpoint; host NULL: off (the default). */
	struct conf_hostport metrics_listen;

	/* [store]: which backend keeps the state table. */
	enum conf_store store_backend;
	char *store_conninfo; /* libpq connection string or URI (postgresql) */
	/* [pool] (postgresql): this node's name (default: the host name) and the
	 * lease in seconds (CONF_POOL_LEASE_DEFAULT when not given). */
	char *pool_node;
	uint32_t pool_lease;

	/* Loaded from the mappings folder. */
	struct addr_map *addr;
	struct presmap *pres;
	/* FNV-1a of domains.map, users.map, presence.map as read; 0: not read. */
	uint64_t map_hash[CONF_MAP_FILES];

	/* Line of each global key in the file, indexed by conf.c's key table. */
	unsigned key_lines[CONF_MAX_KEYS];
};

/*
 * Read and validate the configuration at path and the mapping files it names.
 * Every problem (and warning) goes to dl. Returns 0 and sets *cfp (caller-owns,
 * conf_free) when there is no error; otherwise a negative errno and *cfp untouched.
 */
int conf_load(struct conf **cfp, const char *path, struct diag_list *dl);
void conf_free(struct conf *cf);

/* The line of key in section ("sip", "xmpp", "bridge") of the loaded file, 0 if unset. */
unsigned conf_key_line(const struct conf *cf, const char *section, const char *key);

/*
 * The i-th key of the key table: its section ("bridge", "sip", "xmpp", "peer",
 * "s2s", "s2s-peer"; static) and name (static). Returns 0, or -ENOENT past the
 * last key. For documentation checks (presbridge.conf(5) lists every key).
 */
int conf_key_at(size_t i, const char **section, const char **key);

/*
 * What differs between two loaded configurations, one call of h per difference
 * in file order: "[sip] listen", "[peer lync] address", "[peer x] added",
 * "[s2s-peer d] removed", then each mapping file whose bytes changed
 * ("presence.map"). Secrets are named, never shown.
 */
typedef void(conf_diff_h)(const char *what, void *arg);
void conf_diff(const struct conf *a, const struct conf *b, conf_diff_h *h, void *arg);

/* The peer whose `domains` lists sip_domain (case-insensitive); NULL if none. Borrowed.
 */
const struct conf_peer *conf_peer_for_domain(const struct conf *cf,
                                             const char *sip_domain);

/* The [s2s-peer] section of an XMPP domain (case-insensitive); NULL if none. */
const struct conf_s2s_peer *conf_s2s_peer(const struct conf *cf, const char *domain);

/* What applies to a federated XMPP domain: its [s2s-peer] values, else [s2s]. */
enum conf_s2s_tls conf_s2s_tls_for(const struct conf *cf, const char *domain);
unsigned conf_s2s_auth_for(const struct conf *cf, const char *domain);

const char *conf_tp_name(enum conf_tp tp);
const char *conf_log_name(enum conf_log lvl);

#endif

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

#define CONF_MAX_KEYS 32

/* Defaults of the [bridge] limits: room for a large enterprise, a bound on what a
 * misbehaving peer can make the bridge hold. */
#define CONF_MAX_SUBSCRIPTIONS_DEFAULT          200000u
#define CONF_MAX_SUBSCRIPTIONS_PER_USER_DEFAULT 2000u
#define CONF_IM_IDLE_TIMEOUT_DEFAULT            600u
#define CONF_SIP_IDLE_TIMEOUT_DEFAULT           600u

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

enum conf_xmpp_tls {
	CONF_XMPP_TLS_DIRECT, /* TLS from the first byte */
	CONF_XMPP_TLS_OFF,
};

enum conf_im {
	CONF_IM_SESSION, /* INVITE + MESSAGE in the dialog, as Lync does */
	CONF_IM_PAGE,    /* MESSAGE outside a dialog (RFC 3428) */
};

struct conf_hostport {
	char *host; /* a name or an IP literal without brackets */
	uint16_t port;
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

	struct conf_peer *peers;
	size_t npeers;

	/* Loaded from the mappings folder. */
	struct addr_map *addr;
	struct presmap *pres;

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

/* The peer whose `domains` lists sip_domain (case-insensitive); NULL if none. Borrowed.
 */
const struct conf_peer *conf_peer_for_domain(const struct conf *cf,
                                             const char *sip_domain);

const char *conf_tp_name(enum conf_tp tp);
const char *conf_log_name(enum conf_log lvl);

#endif

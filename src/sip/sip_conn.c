/*
 * Listeners and connections of the SIP leg: UDP sockets, TCP and TLS streams,
 * OpenSSL with mutual authentication, stream framing, write buffering, idle
 * and handshake timeouts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "presbridge/diag.h"
#include "presbridge/log.h"
#include "presbridge/stats.h"
#include "presbridge/sipm.h"
#include "presbridge/sipt.h"
#include "presbridge/siptls.h"

#include "sip_int.h"

/* A peer that stops reading must not grow our memory without bound. */
#define SIP_OUT_MAX SIPLEG_BACKLOG_MAX
#define SIP_UDP_BUF (65536 + 1)

static void conn_io(int fd, unsigned events, void *arg);
static void conn_flush(struct sip_conn *c);

static void addr_str(const struct sockaddr *sa, socklen_t len, char *ip, size_t iplen,
                     unsigned *port)
{
	char serv[16];
	if (getnameinfo(sa, len, ip, (socklen_t)iplen, serv, sizeof(serv),
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(ip, iplen, "?");
		*port = 0;
		return;
	}
	/* Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d. */
	if (strncmp(ip, "::ffff:", 7) == 0 && strchr(ip + 7, '.'))
		memmove(ip, ip + 7, strlen(ip + 7) + 1);
	*port = (unsigned)strtoul(serv, NULL, 10);
}

static void hostport(char *out, size_t len, const char *ip, unsigned port)
{
	if (strchr(ip, ':'))
		snprintf(out, len, "[%s]:%u", ip, port);
	else
		snprintf(out, len, "%s:%u", ip, port);
}

/* The address this host uses toward dst (a connected UDP socket sends nothing). */
static void local_ip_toward(const struct sockaddr *dst, socklen_t len, char *ip,
                            size_t iplen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	unsigned port;
	int fd = socket(dst->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ip, iplen, "%s", dst->sa_family == AF_INET6 ? "::1" : "127.0.0.1");
	if (fd < 0)
		return;
	if (connect(fd, dst, len) == 0 &&
	    getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		addr_str((struct sockaddr *)&ss, sl, ip, iplen, &port);
	close(fd);
}

static bool listener_is_wildcard(const struct sip_listener *l)
{
	if (l->sa.ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
		    &((const struct sockaddr_in6 *)&l->sa)->sin6_addr);
	return ((const struct sockaddr_in *)&l->sa)->sin_addr.s_addr == htonl(INADDR_ANY);
}

/* ---- TLS context --------------------------------------------------------- */

static int ssl_conn_idx = -1;

static struct sip_conn *conn_of_ssl(const SSL *ssl)
{
	return SSL_get_ex_data(ssl, ssl_conn_idx);
}

/* Remember the first reason a peer certificate failed, so the refusal can be
 * logged in plain words; OpenSSL still sends the matching alert. */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct sip_conn *c = ssl ? conn_of_ssl(ssl) : NULL;
	if (!ok && c && !c->verr) {
		c->verr = X509_STORE_CTX_get_error(x);
		X509 *cur = X509_STORE_CTX_get_current_cert(x);
		c->verr_subject[0] = '\0';
		if (cur)
			X509_NAME_oneline(X509_get_subject_name(cur), c->verr_subject,
			                  sizeof(c->verr_subject));
	}
	return ok;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
	if (!(where & SSL_CB_ALERT))
		return;
	struct sip_conn *c = conn_of_ssl(ssl);
	int desc = ret & 0xff;
	if (!c || desc == 0)
		return; /* close_notify is no failure */
	if ((where & SSL_CB_READ) && c->alert_rcvd < 0)
		c->alert_rcvd = desc;
	if ((where & SSL_CB_WRITE) && c->alert_sent < 0)
		c->alert_sent = desc;
}

static void log_ssl_errors(const char *what)
{
	unsigned long e;
	char buf[256];
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_error("sip", "%s: %s", what, buf);
	}
}

/* The same checks, in the same words, as `presbridge -n` (siptls_check_conf). */
static void check_own_cert(const struct conf *cf)
{
	struct diag_list dl;
	char line[1400];

	diag_init(&dl);
	siptls_check_conf(cf, &dl);
	for (size_t i = 0; i < dl.n; i++) {
		diag_format(&dl.v[i], line, sizeof(line));
		if (dl.v[i].level == DIAG_ERROR)
			log_error("sip", "%s", line);
		else
			log_warn("sip", "%s", line);
	}
	diag_free(&dl);
}

int sip_tls_ctx(const struct conf *cf, SSL_CTX **ctxp, char **namep)
{
	SSL_CTX *ctx = NULL;
	char **names = NULL;
	size_t n = 0;
	int err = -EINVAL;

	*ctxp = NULL;
	*namep = NULL;
	if (!cf->cert || !cf->key || !cf->ca)
		return 0;
	if (ssl_conn_idx < 0)
		ssl_conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ctx = SSL_CTX_new(TLS_method());
	if (!ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(ctx, cf->cert) != 1) {
		log_ssl_errors("sip: cannot load [sip] cert");
		log_error("sip", "cannot load the certificate %s (PEM expected)",
		          cf->cert);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cf->key, SSL_FILETYPE_PEM) != 1) {
		log_ssl_errors("sip: cannot load [sip] key");
		log_error("sip", "cannot load the key %s (unencrypted PEM expected)",
		          cf->key);
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		log_error("sip", "the key %s does not belong to the certificate %s",
		          cf->key, cf->cert);
		goto out;
	}
	if (SSL_CTX_load_verify_locations(ctx, cf->ca, NULL) != 1) {
		log_ssl_errors("sip: cannot load [sip] ca");
		log_error("sip", "cannot load the trust anchors %s (PEM expected)",
		          cf->ca);
		goto out;
	}
	/* Mutual TLS with every peer, in both roles (DESIGN: trust). */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
	                   verify_cb);
	SSL_CTX_set_info_callback(ctx, info_cb);
	X509 *own = SSL_CTX_get0_certificate(ctx);
	check_own_cert(cf);
	if (siptls_cert_names(own, &names, &n, NULL) == 0 && n > 0) {
		*namep = strdup(names[0]);
		if (!*namep) {
			err = -ENOMEM;
			goto out;
		}
	}
	*ctxp = ctx;
	ctx = NULL;
	err = 0;
out:
	siptls_names_free(names, n);
	SSL_CTX_free(ctx);
	return err;
}

/* ---- connections ------------------------------------------------------- */

struct sip_conn *sip_conn_by_id(struct sipleg *sl, uint64_t id)
{
	for (struct sip_conn *c = sl->conns; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static void set_who(struct sip_conn *c, const char *name)
{
	char hp[80];
	hostport(hp, sizeof(hp), c->ip, c->port);
	if (name)
		snprintf(c->who, sizeof(c->who), "%s (%s)", name, hp);
	else
		snprintf(c->who, sizeof(c->who), "%s", hp);
}

static void reap(void *arg)
{
	struct sipleg *sl = arg;
	while (sl->dead) {
		struct sip_conn *c = sl->dead;
		sl->dead = c->next;
		free(c->in);
		free(c->out);
		free(c->peer);
		free(c->expect);
		free(c->unknown_why);
		siptls_names_free(c->names, c->nnames);
		free(c);
	}
}

/* The link registry's view of [peer name] (stats.h): up while a connection
 * attributed to it is open; cause (may be NULL) records a failure. */
static void peer_update(struct sipleg *sl, const char *name, const char *cause)
{
	bool up = false;
	for (const struct sip_conn *o = sl->conns; o && !up; o = o->next)
		up = !o->dead && o->state == SIP_CONN_OPEN && o->peer &&
		     strcmp(o->peer, name) == 0;
	stats_link(STATS_LINK_SIP_PEER, name, up, cause);
}

/* Close c now; its memory goes at the next turn, so callers up the stack may
 * still look at c->dead. Transactions on it fail with 503. */
static void conn_close(struct sip_conn *c, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void conn_close(struct sip_conn *c, enum log_level lvl, const char *fmt, ...)
{
	struct sipleg *sl = c->sl;
	char why[512] = "";
	if (c->dead)
		return;
	/* What this loop turn wrote still goes (a reply before a close). */
	if (c->flush_due && c->state == SIP_CONN_OPEN) {
		conn_flush(c);
		if (c->dead)
			return;
	}
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
		log_msg(lvl, "sip", "peer %s: %s; connection closed", c->who, why);
	}
	loop_fd_del(sl->loop, c->fd);
	if (c->ssl) {
		if (c->state == SIP_CONN_OPEN)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd);
	c->fd = -1;
	loop_timer_cancel(sl->loop, &c->idle_t);
	loop_timer_cancel(sl->loop, &c->hs_t);
	c->dead = true;
	for (struct sip_conn **pp = &sl->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->next = sl->dead;
	sl->dead = c;
	if (c->peer) /* an idle or orderly close (info) is no failure */
		peer_update(sl, c->peer, fmt && lvl != LOG_LVL_INFO ? why : NULL);
	loop_timer_start(sl->loop, &sl->reap_t, 0, reap, sl);
	sip_clt_conn_failed(sl, c->id, why[0] ? why : "the connection closed");
}

static void idle_fired(void *arg)
{
	struct sip_conn *c = arg;
	struct sipleg *sl = c->sl;
	uint64_t now = loop_now(sl->loop), idle = sl->lim.idle_ms;
	if (now - c->last_rx < idle) {
		loop_timer_start(sl->loop, &c->idle_t, idle - (now - c->last_rx),
		                 idle_fired, c);
		return;
	}
	conn_close(c, LOG_LVL_INFO, "no traffic for %llu s",
	           (unsigned long long)(idle / 1000));
}

static void hs_fired(void *arg)
{
	struct sip_conn *c = arg;
	enum log_level lvl =
	    sip_once(c->sl, c->ip, "tls-timeout") ? LOG_LVL_WARN : LOG_LVL_DEBUG;
	if (c->state == SIP_CONN_CONNECTING) {
		conn_close(c, lvl, "cannot connect within %u s",
		           c->sl->lim.handshake_ms / 1000);
		return;
	}
	if (!c->inbound) { /* in the words of --probe */
		const struct siptls_fail f = {
		    .timed_out = true, .alert_rcvd = -1, .alert_sent = -1};
		char cause[600], key[32];
		siptls_fail_text(&f, cause, sizeof(cause), key, sizeof(key));
		conn_close(c, lvl, "TLS handshake failed: %s", cause);
		return;
	}
	conn_close(c, lvl,
	           "no TLS handshake within %u s (a client that connects and never "
	           "speaks TLS, or plain SIP on a TLS port)",
	           c->sl->lim.handshake_ms / 1000);
}

static struct sip_conn *conn_new(struct sipleg *sl, int fd, enum conf_tp tp, bool inbound,
                                 const struct sockaddr *ra, socklen_t ralen)
{
	struct sip_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->sl = sl;
	c->id = ++sl->next_id;
	c->fd = fd;
	c->tp = tp;
	c->inbound = inbound;
	c->alert_sent = c->alert_rcvd = -1;
	memcpy(&c->ra, ra, ralen);
	c->ralen = ralen;
	addr_str(ra, ralen, c->ip, sizeof(c->ip), &c->port);
	struct sockaddr_storage la;
	socklen_t lalen = sizeof(la);
	if (getsockname(fd, (struct sockaddr *)&la, &lalen) == 0)
		addr_str((struct sockaddr *)&la, lalen, c->lip, sizeof(c->lip),
		         &c->lport);
	set_who(c, NULL);
	c->last_rx = loop_now(sl->loop);
	c->state = SIP_CONN_OPEN;
	if (tp == CONF_TP_TLS) {
		c->ssl = SSL_new(sl->tls);
		if (!c->ssl || !SSL_set_ex_data(c->ssl, ssl_conn_idx, c) ||
		    SSL_set_fd(c->ssl, fd) != 1) {
			SSL_free(c->ssl);
			free(c);
			return NULL;
		}
		if (inbound)
			SSL_set_accept_state(c->ssl);
		else
			SSL_set_connect_state(c->ssl);
		c->state = SIP_CONN_HANDSHAKE;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (loop_fd_add(sl->loop, fd, LOOP_READ, conn_io, c) != 0) {
		SSL_free(c->ssl);
		free(c);
		return NULL;
	}
	c->next = sl->conns;
	sl->conns = c;
	loop_timer_start(sl->loop, &c->idle_t, sl->lim.idle_ms, idle_fired, c);
	if (tp == CONF_TP_TLS)
		loop_timer_start(sl->loop, &c->hs_t, sl->lim.handshake_ms, hs_fired, c);
	return c;
}

/* Who an inbound plain connection is: by its source address. */
static void identify_by_ip(struct sip_conn *c)
{
	const struct conf_peer *p =
	    sippeer_by_ip(c->sl->peers, (struct sockaddr *)&c->ra);
	free(c->peer);
	free(c->unknown_why);
	c->peer = NULL;
	c->unknown_why = NULL;
	if (p) {
		c->peer = strdup(p->name);
		set_who(c, p->host);
		if (c->peer)
			peer_update(c->sl, c->peer, NULL);
	} else {
		char buf[160];
		snprintf(buf, sizeof(buf),
		         "source address %s is the address of no plain (tcp/udp) [peer]",
		         c->ip);
		c->unknown_why = strdup(buf);
		set_who(c, NULL);
	}
}

static void identify_by_names(struct sip_conn *c)
{
	const struct conf_peer *p = sippeer_by_names(c->sl->peers, c->names, c->nnames);
	char names[200];
	free(c->peer);
	free(c->unknown_why);
	c->peer = NULL;
	c->unknown_why = NULL;
	siptls_names_str(c->names, c->nnames, names, sizeof(names));
	if (p) {
		c->peer = strdup(p->name);
		set_who(c, p->host);
	} else {
		char buf[400];
		snprintf(buf, sizeof(buf),
		         "its certificate names %s, which is the host of no TLS [peer] "
		         "(wildcards never match, RFC 5922 section 7.2)",
		         names);
		c->unknown_why = strdup(buf);
		set_who(c, c->nnames ? c->names[0] : NULL);
	}
}

void sip_conns_reidentify(struct sipleg *sl)
{
	for (struct sip_conn *c = sl->conns; c; c = c->next) {
		if (c->inbound && c->tp == CONF_TP_TLS && c->state == SIP_CONN_OPEN)
			identify_by_names(c);
		else if (c->inbound && c->tp == CONF_TP_TCP)
			identify_by_ip(c);
		else if (!c->inbound && c->peer &&
		         !sippeer_by_section(sl->peers, c->peer)) {
			free(c->peer);
			c->peer = NULL;
		}
	}
}

/* What a received alert means (siptls_alert_rcvd_text: the words --probe uses). */
static void alert_rcvd_text(const struct sip_conn *c, char *out, size_t len)
{
	siptls_alert_rcvd_text(c->alert_rcvd, c->inbound, out, len);
}

static void tls_failed(struct sip_conn *c, int sslerr)
{
	char cause[900], key[64];
	const struct siptls_fail f = {
	    .inbound = c->inbound,
	    .verr = c->verr,
	    .verr_subject = c->verr_subject,
	    .alert_rcvd = c->alert_rcvd,
	    .alert_sent = c->alert_sent,
	    .ssl_err = ERR_peek_last_error(),
	    .ssl_get_error = sslerr,
	};
	siptls_fail_text(&f, cause, sizeof(cause), key, sizeof(key));
	ERR_clear_error();
	if (c->alert_rcvd >= 0)
		stats_fail(STATS_FAIL_TLS, siptls_alert(c->alert_rcvd)->name);
	if (c->alert_sent >= 0)
		stats_fail(STATS_FAIL_TLS, siptls_alert(c->alert_sent)->name);
	const char *ident = c->expect ? c->expect : c->ip;
	enum log_level lvl = sip_once(c->sl, ident, key) ? LOG_LVL_WARN : LOG_LVL_DEBUG;
	conn_close(c, lvl, "TLS handshake failed: %s", cause);
}

static void tls_established(struct sip_conn *c)
{
	X509 *cert = SSL_get1_peer_certificate(c->ssl);
	enum siptls_role role = c->inbound ? SIPTLS_CLIENT : SIPTLS_SERVER;
	char names[200];

	loop_timer_cancel(c->sl->loop, &c->hs_t);
	if (!cert) { /* cannot happen with FAIL_IF_NO_PEER_CERT; refuse anyway */
		conn_close(c, LOG_LVL_WARN, "the peer presented no certificate");
		return;
	}
	siptls_names_free(c->names, c->nnames);
	c->names = NULL;
	c->nnames = 0;
	int e = siptls_cert_names(cert, &c->names, &c->nnames, NULL);
	int eku = siptls_eku_check(cert, role);
	X509_free(cert);
	if (e) {
		conn_close(c, LOG_LVL_ERROR, "cannot read the peer certificate's names");
		return;
	}
	siptls_names_str(c->names, c->nnames, names, sizeof(names));
	if (eku) {
		char key[32];
		snprintf(key, sizeof(key), "eku-%d", (int)role);
		enum log_level lvl =
		    sip_once(c->sl, c->ip, key) ? LOG_LVL_WARN : LOG_LVL_DEBUG;
		char cause[600];
		siptls_eku_text(names, role, cause, sizeof(cause));
		conn_close(c, lvl, "%s", cause);
		return;
	}
	if (c->inbound) {
		identify_by_names(c);
		if (c->peer)
			log_info("sip",
			         "peer %s: TLS (%s) established, certificate verified, "
			         "[peer %s]",
			         c->who, SSL_get_version(c->ssl), c->peer);
		else if (sip_once(c->sl, c->ip,
		                  c->unknown_why ? c->unknown_why : "tls-no-peer"))
			log_warn("sip",
			         "peer %s: TLS established but %s; its requests get 403 "
			         "(add a [peer] "
			         "whose host is one of those names)",
			         c->who,
			         c->unknown_why ? c->unknown_why
			                        : "it is no configured peer");
	} else {
		if (!siptls_names_match(c->names, c->nnames, c->expect)) {
			char key[32];
			snprintf(key, sizeof(key), "tls-wrong-name");
			enum log_level lvl = sip_once(c->sl, c->expect, key)
			                         ? LOG_LVL_WARN
			                         : LOG_LVL_DEBUG;
			char cause[900];
			siptls_wrong_name_text(names, c->expect, c->peer ? c->peer : "?",
			                       cause, sizeof(cause));
			conn_close(c, lvl, "%s", cause);
			return;
		}
		log_info("sip", "peer %s: TLS (%s) established, certificate verified",
		         c->who, SSL_get_version(c->ssl));
	}
	c->state = SIP_CONN_OPEN;
	if (c->peer)
		peer_update(c->sl, c->peer, NULL);
}

static void conn_handshake(struct sip_conn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		tls_established(c);
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		loop_fd_mod(c->sl->loop, c->fd, LOOP_READ);
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		loop_fd_mod(c->sl->loop, c->fd, LOOP_READ | LOOP_WRITE);
		return;
	}
	tls_failed(c, e);
}

static void conn_src(struct sip_conn *c, struct sip_src *s)
{
	memset(s, 0, sizeof(*s));
	s->back.tp = c->tp;
	s->back.conn_id = c->id;
	s->back.udp_fd = -1;
	if (c->peer)
		snprintf(s->back.peer, sizeof(s->back.peer), "%s", c->peer);
	s->conn = c;
	snprintf(s->ip, sizeof(s->ip), "%s", c->ip);
	s->port = c->port;
	snprintf(s->lip, sizeof(s->lip), "%s", c->lip);
	s->lport = c->lport;
	s->peer = c->peer ? sippeer_by_section(c->sl->peers, c->peer) : NULL;
	s->who = c->who;
	s->unknown_why = c->unknown_why;
}

static int conn_write(struct sip_conn *c, const char *buf, size_t len)
{
	if (c->dead)
		return -ENOTCONN;
	if (c->outlen - c->outoff + len > SIP_OUT_MAX) {
		conn_close(c, LOG_LVL_WARN,
		           "the peer does not read (over %u KiB waiting)",
		           SIP_OUT_MAX / 1024);
		return -ENOBUFS;
	}
	if (c->outoff) {
		memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
		c->outlen -= c->outoff;
		c->outoff = 0;
	}
	if (c->outlen + len > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;
		while (cap < c->outlen + len)
			cap *= 2;
		char *n = realloc(c->out, cap);
		if (!n)
			return -ENOMEM;
		c->out = n;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, buf, len);
	c->outlen += len;
	/* Everything written in one loop turn leaves in one send (conns_flush):
	 * under load that is one system call for a batch of answers, not one
	 * each. The test tap wants its bytes at once. */
	if (c->state == SIP_CONN_OPEN) {
		if (c->sl->tap)
			conn_flush(c);
		else
			c->flush_due = true;
	}
	return 0;
}

/* Idle hook: send what this loop turn wrote, before the loop waits again. */
static int conns_flush(void *arg)
{
	struct sipleg *sl = arg;
	struct sip_conn *next;
	for (struct sip_conn *c = sl->conns; c; c = next) {
		next = c->next; /* conn_flush may close c */
		if (c->flush_due && !c->dead && c->state == SIP_CONN_OPEN)
			conn_flush(c);
	}
	return -1;
}

static void conn_flush(struct sip_conn *c)
{
	bool want_write = false;
	c->flush_due = false;
	if (c->sl->tap) { /* test seam: the bytes go to the tap, not to a socket */
		c->sl->tap(true, c->out + c->outoff, c->outlen - c->outoff,
		           c->sl->tap_arg);
		c->outoff = c->outlen = 0;
		return;
	}
	while (!c->dead && c->outoff < c->outlen) {
		size_t n = c->outlen - c->outoff;
		ssize_t w;
		if (c->ssl) {
			ERR_clear_error();
			int r = SSL_write(c->ssl, c->out + c->outoff,
			                  n > INT32_MAX ? INT32_MAX : (int)n);
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE) {
					want_write = true;
					break;
				}
				if (e == SSL_ERROR_WANT_READ)
					break;
				conn_close(c, LOG_LVL_INFO, "TLS write failed");
				return;
			}
			w = r;
		} else {
			w = send(c->fd, c->out + c->outoff, n, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					want_write = true;
					break;
				}
				conn_close(c, LOG_LVL_INFO, "write failed: %s",
				           strerror(errno));
				return;
			}
		}
		c->outoff += (size_t)w;
	}
	if (c->dead)
		return;
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	loop_fd_mod(c->sl->loop, c->fd, LOOP_READ | (want_write ? LOOP_WRITE : 0));
}

static void conn_process(struct sip_conn *c)
{
	struct sipleg *sl = c->sl;
	size_t off = 0;
	struct sipt_frame f;

	while (!c->dead && off < c->inlen) {
		if (c->discard) {
			size_t n =
			    c->inlen - off < c->discard ? c->inlen - off : c->discard;
			off += n;
			c->discard -= n;
			continue;
		}
		sipt_frame_more(c->in + off, c->inlen - off, sl->lim.max_msg, &c->scan,
		                &f);
		struct sip_src s;
		switch (f.kind) {
		case SIPT_FRAME_MORE:
			goto done;
		case SIPT_FRAME_PING:
			/* RFC 5626 section 4.4.1: pong. */
			log_trace("sip", "peer %s: keep-alive ping, pong sent", c->who);
			conn_write(c, "\r\n", 2);
			off += f.len;
			break;
		case SIPT_FRAME_CRLF:
			off += f.len;
			break;
		case SIPT_FRAME_TOO_LARGE:
			conn_src(c, &s);
			sip_too_large(sl, &s, c->in + off, f.hdr_len,
			              f.hdr_len + f.body_len);
			off += f.hdr_len;
			c->discard = f.body_len;
			break;
		case SIPT_FRAME_BAD:
			conn_close(
			    c, sip_once(sl, c->ip, f.why) ? LOG_LVL_WARN : LOG_LVL_DEBUG,
			    "unreadable stream (%s)", f.why);
			return;
		case SIPT_FRAME_MSG:
			conn_src(c, &s);
			sip_recv(sl, &s, c->in + off, f.len, f.why);
			off += f.len;
			break;
		}
	}
done:
	if (c->dead)
		return;
	if (off) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
}

/* Reads of one connection per readiness event: a peer that always has more to
 * send must not keep the loop from the XMPP leg, timers and other peers (the
 * poll is level-triggered: the rest is read next turn). */
#define CONN_READS_PER_TURN 4

static void conn_read(struct sip_conn *c)
{
	struct sipleg *sl = c->sl;
	for (unsigned reads = 1;; reads++) {
		size_t want = sl->lim.max_msg + 8192;
		if (c->incap < want) {
			char *n = realloc(c->in, want);
			if (!n) {
				conn_close(c, LOG_LVL_ERROR, "out of memory");
				return;
			}
			c->in = n;
			c->incap = want;
		}
		if (c->inlen == c->incap) {
			/* sipt_frame_next reports BAD before this: a guard, not a path */
			conn_close(c, LOG_LVL_WARN, "input buffer full");
			return;
		}
		size_t room = c->incap - c->inlen;
		ssize_t n;
		if (c->ssl) {
			ERR_clear_error();
			int r = SSL_read(c->ssl, c->in + c->inlen,
			                 room > INT32_MAX ? INT32_MAX : (int)room);
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ)
					return;
				if (e == SSL_ERROR_WANT_WRITE) {
					loop_fd_mod(sl->loop, c->fd,
					            LOOP_READ | LOOP_WRITE);
					return;
				}
				if (e == SSL_ERROR_ZERO_RETURN)
					conn_close(c, LOG_LVL_INFO,
					           "the peer closed the TLS session");
				else if (c->alert_rcvd >= 0) {
					/* TLS 1.3: a client learns that its certificate
					 * was refused only on its first read after the
					 * handshake. */
					char cause[600];
					alert_rcvd_text(c, cause, sizeof(cause));
					char key[32];
					snprintf(key, sizeof(key), "alert-rcvd-%d",
					         c->alert_rcvd);
					conn_close(c,
					           sip_once(sl,
					                    c->expect ? c->expect : c->ip,
					                    key)
					               ? LOG_LVL_WARN
					               : LOG_LVL_DEBUG,
					           "%s", cause);
				} else
					conn_close(c, LOG_LVL_INFO,
					           "the peer closed the connection");
				return;
			}
			n = r;
		} else {
			n = recv(c->fd, c->in + c->inlen, room, 0);
			if (n == 0) {
				conn_close(c, LOG_LVL_INFO,
				           "the peer closed the connection");
				return;
			}
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return;
				conn_close(c, LOG_LVL_INFO, "read failed: %s",
				           strerror(errno));
				return;
			}
		}
		c->inlen += (size_t)n;
		c->last_rx = loop_now(sl->loop);
		conn_process(c);
		if (c->dead)
			return;
		/* Decrypted bytes inside OpenSSL wake no poll: read them now. */
		if (reads >= CONN_READS_PER_TURN && !(c->ssl && SSL_pending(c->ssl) > 0))
			return;
	}
}

static void conn_io(int fd, unsigned events, void *arg)
{
	struct sip_conn *c = arg;
	(void)fd;
	if (c->dead)
		return;
	if (c->state == SIP_CONN_CONNECTING) {
		if (!(events & (LOOP_WRITE | LOOP_ERROR)))
			return;
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			enum log_level lvl = sip_once(c->sl, c->who, strerror(err))
			                         ? LOG_LVL_WARN
			                         : LOG_LVL_DEBUG;
			stats_fail(STATS_FAIL_CONNECT, strerror(err));
			conn_close(c, lvl, "cannot connect: %s", strerror(err));
			return;
		}
		struct sockaddr_storage la;
		socklen_t lalen = sizeof(la);
		if (getsockname(c->fd, (struct sockaddr *)&la, &lalen) == 0)
			addr_str((struct sockaddr *)&la, lalen, c->lip, sizeof(c->lip),
			         &c->lport);
		c->state = c->tp == CONF_TP_TLS ? SIP_CONN_HANDSHAKE : SIP_CONN_OPEN;
		if (c->state == SIP_CONN_OPEN && c->peer)
			peer_update(c->sl, c->peer, NULL);
		if (c->tp == CONF_TP_TLS) {
			loop_timer_start(c->sl->loop, &c->hs_t, c->sl->lim.handshake_ms,
			                 hs_fired, c);
		} else {
			/* the connect is done: its bound must not close a working
			 * plain connection later */
			loop_timer_cancel(c->sl->loop, &c->hs_t);
			log_info("sip", "peer %s: connected over tcp", c->who);
		}
	}
	if (c->state == SIP_CONN_HANDSHAKE) {
		conn_handshake(c);
		if (c->dead || c->state != SIP_CONN_OPEN)
			return;
		/* Application data may have come with the last handshake flight. */
		events |= LOOP_READ;
	}
	if (events & (LOOP_READ | LOOP_ERROR))
		conn_read(c);
	if (!c->dead)
		conn_flush(c);
}

/* ---- listeners ----------------------------------------------------------- */

static void on_accept(int fd, unsigned events, void *arg)
{
	struct sip_listener *l = arg;
	(void)events;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ra;
		socklen_t ralen = sizeof(ra);
		int cfd = accept(fd, (struct sockaddr *)&ra, &ralen);
		if (cfd >= 0 && (fcntl(cfd, F_SETFL, O_NONBLOCK) != 0 ||
		                 fcntl(cfd, F_SETFD, FD_CLOEXEC) != 0)) {
			close(cfd);
			continue;
		}
		if (cfd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED && sip_once(l->sl, l->name, "accept"))
				log_error("sip", "%s: accept failed: %s", l->name,
				          strerror(errno));
			return;
		}
		struct sip_conn *c =
		    conn_new(l->sl, cfd, l->tp, true, (struct sockaddr *)&ra, ralen);
		if (!c) {
			close(cfd);
			log_error("sip", "%s: out of memory for a new connection",
			          l->name);
			continue;
		}
		if (l->tp == CONF_TP_TCP)
			identify_by_ip(c);
		log_debug("sip", "peer %s: connected to %s", c->who, l->name);
	}
}

static void udp_src(struct sip_listener *l, const struct sockaddr_storage *sa,
                    socklen_t salen, struct sip_src *s, char *who, size_t wholen)
{
	struct sipleg *sl = l->sl;
	char hp[80];
	memset(s, 0, sizeof(*s));
	s->back.tp = CONF_TP_UDP;
	s->back.udp_fd = l->fd;
	memcpy(&s->back.sa, sa, salen);
	s->back.salen = salen;
	addr_str((const struct sockaddr *)sa, salen, s->ip, sizeof(s->ip), &s->port);
	hostport(hp, sizeof(hp), s->ip, s->port);
	s->peer = sippeer_by_ip(sl->peers, (const struct sockaddr *)sa);
	if (s->peer && s->peer->transport == CONF_TP_UDP) /* heard from: up */
		stats_link(STATS_LINK_SIP_PEER, s->peer->name, true, NULL);
	if (s->peer) {
		snprintf(s->back.peer, sizeof(s->back.peer), "%s", s->peer->name);
		snprintf(who, wholen, "%s (%s)", s->peer->host, hp);
	} else {
		snprintf(who, wholen, "%s", hp);
		s->unknown_why =
		    "its source address is the address of no plain (tcp/udp) [peer]";
	}
	s->who = who;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&l->sa;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&l->sa;
	bool wildcard = l->sa.ss_family == AF_INET6
	                    ? IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr)
	                    : a4->sin_addr.s_addr == htonl(INADDR_ANY);
	if (wildcard)
		local_ip_toward((const struct sockaddr *)sa, salen, s->lip,
		                sizeof(s->lip));
	else
		addr_str((struct sockaddr *)&l->sa, l->salen, s->lip, sizeof(s->lip),
		         &s->lport);
	s->lport = l->port;
}

/* One datagram of len bytes (its first SIP_UDP_BUF in sl->udp_buf) from sa. */
static void udp_datagram(struct sip_listener *l, const struct sockaddr_storage *sa,
                         socklen_t salen, size_t len)
{
	struct sipleg *sl = l->sl;
	size_t max =
	    sl->lim.max_msg < SIP_UDP_BUF - 1 ? sl->lim.max_msg : SIP_UDP_BUF - 1;
	struct sip_src s;
	char who[320];
	udp_src(l, sa, salen, &s, who, sizeof(who));
	if (len > max) {
		size_t got = len < SIP_UDP_BUF ? len : SIP_UDP_BUF;
		size_t hdr = sipm_header_len(sl->udp_buf, got);
		if (hdr)
			sip_too_large(sl, &s, sl->udp_buf, hdr, len);
		else if (sip_once(sl, s.ip, "udp-too-large"))
			log_warn(
			    "sip",
			    "peer %s: dropped a %zu-byte datagram: over the %zu-byte "
			    "limit and no readable header",
			    s.who, len, max);
		return;
	}
	size_t skip, hl, bl;
	const char *why = NULL;
	int e = sipt_dgram(sl->udp_buf, len, &skip, &hl, &bl, &why);
	if (e == -ENODATA)
		return; /* a CRLF keep-alive: RFC 5626 uses STUN on UDP */
	if (e)
		sip_recv(sl, &s, sl->udp_buf, len, why);
	else
		sip_recv(sl, &s, sl->udp_buf + skip, hl + bl, NULL);
}

static void on_udp(int fd, unsigned events, void *arg)
{
	struct sip_listener *l = arg;
	(void)events;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		ssize_t n = recvfrom(fd, l->sl->udp_buf, SIP_UDP_BUF, MSG_TRUNC,
		                     (struct sockaddr *)&sa, &salen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		udp_datagram(l, &sa, salen, (size_t)n);
	}
}

static int listener_open(struct sipleg *sl, const struct conf_listen *cl,
                         struct sip_listener **lp)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICSERV | AI_PASSIVE,
	                         .ai_socktype =
	                             cl->tp == CONF_TP_UDP ? SOCK_DGRAM : SOCK_STREAM};
	struct addrinfo *res = NULL;
	char port[8];
	int fd = -1, err;
	struct sip_listener *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->sl = sl;
	l->tp = cl->tp;
	l->port = cl->addr.port;
	snprintf(port, sizeof(port), "%u", cl->addr.port);
	if (strchr(cl->addr.host, ':'))
		snprintf(l->name, sizeof(l->name), "%s:[%s]:%u", conf_tp_name(cl->tp),
		         cl->addr.host, cl->addr.port);
	else
		snprintf(l->name, sizeof(l->name), "%s:%s:%u", conf_tp_name(cl->tp),
		         cl->addr.host, cl->addr.port);
	int g = getaddrinfo(cl->addr.host, port, &hints, &res);
	if (g != 0) {
		log_error("sip", "listen %s: cannot resolve the address: %s", l->name,
		          gai_strerror(g));
		err = -EADDRNOTAVAIL;
		goto out;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		log_error("sip", "listen %s: %s", l->name, strerror(errno));
		goto out;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
	    (cl->tp != CONF_TP_UDP && listen(fd, 128) != 0)) {
		err = -errno;
		log_error("sip", "listen %s (line %u): %s%s", l->name, cl->line,
		          strerror(errno),
		          errno == EADDRINUSE ? " (another process holds the port)" : "");
		goto out;
	}
	memcpy(&l->sa, res->ai_addr, res->ai_addrlen);
	l->salen = res->ai_addrlen;
	err = loop_fd_add(sl->loop, fd, LOOP_READ,
	                  cl->tp == CONF_TP_UDP ? on_udp : on_accept, l);
	if (err)
		goto out;
	l->fd = fd;
	fd = -1;
	log_info("sip", "listening on %s", l->name);
	*lp = l;
	l = NULL;
out:
	if (res)
		freeaddrinfo(res);
	if (fd >= 0)
		close(fd);
	free(l);
	return err;
}

static void listener_close(struct sipleg *sl, struct sip_listener *l)
{
	loop_fd_del(sl->loop, l->fd);
	close(l->fd);
	log_info("sip", "stopped listening on %s", l->name);
	free(l);
}

static bool listener_is(const struct sip_listener *l, const struct conf_listen *cl)
{
	char want[80];
	if (strchr(cl->addr.host, ':'))
		snprintf(want, sizeof(want), "%s:[%s]:%u", conf_tp_name(cl->tp),
		         cl->addr.host, cl->addr.port);
	else
		snprintf(want, sizeof(want), "%s:%s:%u", conf_tp_name(cl->tp),
		         cl->addr.host, cl->addr.port);
	return strcmp(want, l->name) == 0;
}

int sip_conn_start(struct sipleg *sl)
{
	int err = sip_tls_ctx(sl->cf, &sl->tls, &sl->tls_name);
	if (err)
		return err;
	sl->udp_buf = malloc(SIP_UDP_BUF);
	if (!sl->udp_buf)
		return -ENOMEM;
	for (size_t i = 0; i < sl->cf->nlisten; i++) {
		struct sip_listener *l = NULL;
		err = listener_open(sl, &sl->cf->listen[i], &l);
		if (err)
			return err;
		l->next = sl->ls;
		sl->ls = l;
	}
	return loop_idle_add(sl->loop, conns_flush, sl);
}

int sip_conn_reload(struct sipleg *sl, const struct conf *cf, SSL_CTX **new_tls,
                    char **new_name)
{
	struct sip_listener *fresh = NULL;
	int err = sip_tls_ctx(cf, new_tls, new_name);
	if (err)
		return err;
	for (struct sip_listener *l = sl->ls; l; l = l->next)
		l->mark = false;
	for (size_t i = 0; i < cf->nlisten; i++) {
		bool have = false;
		for (struct sip_listener *l = sl->ls; l; l = l->next)
			if (listener_is(l, &cf->listen[i])) {
				l->mark = true;
				have = true;
			}
		if (have)
			continue;
		struct sip_listener *l = NULL;
		err = listener_open(sl, &cf->listen[i], &l);
		if (err) {
			while (fresh) {
				struct sip_listener *n = fresh->next;
				listener_close(sl, fresh);
				fresh = n;
			}
			SSL_CTX_free(*new_tls);
			free(*new_name);
			*new_tls = NULL;
			*new_name = NULL;
			return err;
		}
		l->mark = true;
		l->next = fresh;
		fresh = l;
	}
	for (struct sip_listener **pp = &sl->ls; *pp;) {
		struct sip_listener *l = *pp;
		if (!l->mark) {
			*pp = l->next;
			listener_close(sl, l);
		} else {
			pp = &l->next;
		}
	}
	while (fresh) {
		struct sip_listener *n = fresh->next;
		fresh->next = sl->ls;
		sl->ls = fresh;
		fresh = n;
	}
	return 0;
}

void sip_conn_stop(struct sipleg *sl)
{
	sipleg_drop_held(sl);
	loop_idle_del(sl->loop, conns_flush, sl);
	while (sl->conns)
		conn_close(sl->conns, LOG_LVL_DEBUG, NULL);
	reap(sl);
	loop_timer_cancel(sl->loop, &sl->reap_t);
	while (sl->ls) {
		struct sip_listener *l = sl->ls;
		sl->ls = l->next;
		listener_close(sl, l);
	}
	SSL_CTX_free(sl->tls);
	sl->tls = NULL;
	free(sl->tls_name);
	sl->tls_name = NULL;
	free(sl->udp_buf);
	sl->udp_buf = NULL;
}

/* ---- sending ------------------------------------------------------------ */

static struct sip_conn *conn_for_peer(struct sipleg *sl, const char *peer,
                                      enum conf_tp tp)
{
	struct sip_conn *best = NULL;
	for (struct sip_conn *c = sl->conns; c; c = c->next) {
		if (c->dead || !c->peer || strcmp(c->peer, peer) != 0 || c->tp != tp)
			continue;
		if (!best || (c->state == SIP_CONN_OPEN && best->state != SIP_CONN_OPEN))
			best = c;
	}
	return best;
}

/* Count what leaves (stats.h): a response by its code, a request by its method. */
static void count_out(const char *buf, size_t len)
{
	if (len > 12 && memcmp(buf, "SIP/2.0 ", 8) == 0)
		stats_sip_response(STATS_OUT, atoi(buf + 8));
	else
		stats_sip_request(STATS_OUT, buf,
		                  strcspn(buf, " \r\n") < len ? strcspn(buf, " \r\n")
		                                              : len);
}

static int send_now(struct sipleg *sl, const struct sip_dest *d, const char *buf,
                    size_t len);

/* Keep a message until the write it acknowledges is durable (sipleg_set_gate). */
static int hold(struct sipleg *sl, const struct sip_dest *d, const char *buf, size_t len,
                uint64_t need)
{
	struct sip_held *h = malloc(sizeof(*h) + len);
	if (!h)
		return -ENOMEM;
	h->next = NULL;
	h->need = need;
	h->d = *d;
	h->len = len;
	memcpy(h->buf, buf, len);
	if (sl->held_tail)
		sl->held_tail->next = h;
	else
		sl->held = h;
	sl->held_tail = h;
	sl->nheld++;
	sl->held_bytes += len;
	return 0;
}

void sipleg_set_gate(struct sipleg *sl, sipleg_gate_h *h, void *arg)
{
	sl->gate = h;
	sl->gate_arg = arg;
}

/* Take the oldest held message off the queue (caller frees it). */
static struct sip_held *held_pop(struct sipleg *sl)
{
	struct sip_held *h = sl->held;
	sl->held = h->next;
	if (!sl->held)
		sl->held_tail = NULL;
	sl->nheld--;
	sl->held_bytes -= h->len;
	return h;
}

void sipleg_release(struct sipleg *sl, uint64_t durable)
{
	while (sl->held && sl->held->need <= durable) {
		struct sip_held *h = held_pop(sl);
		send_now(sl, &h->d, h->buf, h->len);
		free(h);
	}
}

size_t sipleg_drop_held(struct sipleg *sl)
{
	size_t n = sl->nheld;
	while (sl->held)
		free(held_pop(sl));
	return n;
}

size_t sipleg_held(const struct sipleg *sl)
{
	return sl->nheld;
}

size_t sipleg_backlog(const struct sipleg *sl)
{
	size_t most = 0;
	for (const struct sip_conn *c = sl->conns; c; c = c->next)
		if (!c->dead && c->outlen - c->outoff > most)
			most = c->outlen - c->outoff;
	return most + sl->held_bytes;
}

int sip_send(struct sipleg *sl, const struct sip_dest *d, const char *buf, size_t len)
{
	count_out(buf, len);
	/* Output never overtakes held output: a NOTIFY must not pass the 200 that
	 * created its dialog. */
	uint64_t need = sl->gate ? sl->gate(sl->gate_arg) : 0;
	if (!need && sl->held_tail)
		need = sl->held_tail->need;
	if (need)
		return hold(sl, d, buf, len, need);
	return send_now(sl, d, buf, len);
}

static int send_now(struct sipleg *sl, const struct sip_dest *d, const char *buf,
                    size_t len)
{
	if (d->tp == CONF_TP_UDP && sl->tap) {
		sl->tap(false, buf, len, sl->tap_arg);
		return 0;
	}
	if (d->tp == CONF_TP_UDP) {
		ssize_t n = sendto(d->udp_fd, buf, len, 0,
		                   (const struct sockaddr *)&d->sa, d->salen);
		if (n < 0) {
			char ip[INET6_ADDRSTRLEN];
			unsigned port;
			addr_str((const struct sockaddr *)&d->sa, d->salen, ip,
			         sizeof(ip), &port);
			log_warn("sip", "peer %s:%u: UDP send failed: %s", ip, port,
			         strerror(errno));
			return -errno;
		}
		return 0;
	}
	struct sip_conn *c = sip_conn_by_id(sl, d->conn_id);
	/* RFC 3261 section 18.2.2: answer on the request's connection; when it is
	 * gone, another connection with the same peer will do. */
	if ((!c || c->dead) && d->peer[0])
		c = conn_for_peer(sl, d->peer, d->tp);
	if (!c || c->dead)
		return -ENOTCONN;
	return conn_write(c, buf, len);
}

static int resolve(const struct conf_peer *p, int socktype, struct sockaddr_storage *sa,
                   socklen_t *salen)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICSERV, .ai_socktype = socktype};
	struct addrinfo *res = NULL;
	char port[8];
	snprintf(port, sizeof(port), "%u", p->address.port);
	/* Addresses are IP literals or names in /etc/hosts in practice; a DNS
	 * name blocks the loop for the lookup (Lync federations use a static
	 * route with a fixed address). */
	int g = getaddrinfo(p->address.host, port, &hints, &res);
	if (g != 0) {
		log_warn("sip", "peer %s: cannot resolve %s: %s", p->name,
		         p->address.host, gai_strerror(g));
		return -EHOSTUNREACH;
	}
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	*salen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static const struct sip_listener *listener_for(struct sipleg *sl, enum conf_tp tp,
                                               int family)
{
	const struct sip_listener *any = NULL;
	for (const struct sip_listener *l = sl->ls; l; l = l->next)
		if (l->tp == tp) {
			if (l->sa.ss_family == family)
				return l;
			if (!any)
				any = l;
		}
	return any;
}

int sip_dest_for_peer(struct sipleg *sl, const struct conf_peer *p, struct sip_dest *d,
                      char *host, size_t hostlen, unsigned *portp)
{
	memset(d, 0, sizeof(*d));
	d->tp = p->transport;
	d->udp_fd = -1;
	snprintf(d->peer, sizeof(d->peer), "%s", p->name);

	if (p->transport == CONF_TP_UDP) {
		int err = resolve(p, SOCK_DGRAM, &d->sa, &d->salen);
		if (err)
			return err;
		const struct sip_listener *l =
		    listener_for(sl, CONF_TP_UDP, d->sa.ss_family);
		if (!l || l->sa.ss_family != d->sa.ss_family) {
			log_error(
			    "sip",
			    "peer %s: transport udp but no UDP listener of its address "
			    "family: add a [sip] listen = udp:... line",
			    p->name);
			return -EAFNOSUPPORT;
		}
		d->udp_fd = l->fd;
		/* The socket sends from the address it is bound to: that address
		 * goes into Via and Contact. Only a wildcard listener takes the
		 * kernel's source toward the peer (a pool's nodes on one host
		 * each listen on their own address, issue 18). */
		if (listener_is_wildcard(l))
			local_ip_toward((struct sockaddr *)&d->sa, d->salen, host,
			                hostlen);
		else
			addr_str((const struct sockaddr *)&l->sa, l->salen, host, hostlen,
			         &(unsigned){0});
		*portp = l->port;
		return 0;
	}
	if (p->transport == CONF_TP_TLS && !sl->tls) {
		log_error("sip", "peer %s: transport tls but [sip] has no cert/key/ca",
		          p->name);
		return -EINVAL;
	}
	struct sip_conn *c = conn_for_peer(sl, p->name, p->transport);
	if (!c) {
		struct sockaddr_storage sa;
		socklen_t salen;
		int err = resolve(p, SOCK_STREAM, &sa, &salen);
		if (err)
			return err;
		int fd =
		    socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, salen) != 0 &&
		    errno != EINPROGRESS) {
			err = -errno;
			if (sip_once(sl, p->name, strerror(errno)))
				log_warn("sip", "peer %s: cannot connect to %s:%u: %s",
				         p->name, p->address.host, p->address.port,
				         strerror(errno));
			close(fd);
			return err;
		}
		c = conn_new(sl, fd, p->transport, false, (struct sockaddr *)&sa, salen);
		if (!c) {
			close(fd);
			return -ENOMEM;
		}
		c->peer = strdup(p->name);
		c->expect = strdup(p->host);
		if (!c->peer || !c->expect) {
			conn_close(c, LOG_LVL_ERROR, "out of memory");
			return -ENOMEM;
		}
		if (c->ssl)
			SSL_set_tlsext_host_name(c->ssl, p->host);
		set_who(c, p->host);
		c->state = SIP_CONN_CONNECTING;
		loop_timer_cancel(sl->loop, &c->hs_t);
		/* The handshake timer also bounds the TCP connect. */
		loop_timer_start(sl->loop, &c->hs_t, sl->lim.handshake_ms, hs_fired, c);
		loop_fd_mod(sl->loop, fd, LOOP_READ | LOOP_WRITE);
		log_debug("sip", "peer %s: connecting over %s", c->who,
		          conf_tp_name(c->tp));
	}
	d->conn_id = c->id;
	const struct sip_listener *l = listener_for(sl, p->transport, c->ra.ss_family);
	if (p->transport == CONF_TP_TLS && sl->tls_name)
		snprintf(host, hostlen, "%s", sl->tls_name);
	else
		snprintf(host, hostlen, "%s", c->lip[0] ? c->lip : "127.0.0.1");
	*portp = l ? l->port : c->lport;
	return 0;
}

/* ---- test seam (fuzzing) -------------------------------------------------- */

void sipleg_set_tap(struct sipleg *sl, sipleg_tap_h *h, void *arg)
{
	sl->tap = h;
	sl->tap_arg = arg;
}

static int feed_addr(const char *ip, struct sockaddr_storage *sa, socklen_t *salen)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;
	memset(sa, 0, sizeof(*sa));
	if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(40000);
		*salen = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(40000);
		*salen = sizeof(*a6);
		return 0;
	}
	return -EINVAL;
}

/* An inbound TCP connection without a socket: what on_accept() and conn_read()
 * do, with the bytes taken from buf in chunks instead of from recv(). */
static int feed_stream(struct sipleg *sl, const struct sockaddr_storage *sa,
                       socklen_t salen, const char *buf, size_t len, size_t chunk)
{
	struct sip_conn *c = calloc(1, sizeof(*c));
	size_t want = sl->lim.max_msg + 8192;
	if (!c || !(c->in = malloc(want))) {
		free(c);
		return -ENOMEM;
	}
	c->incap = want;
	c->sl = sl;
	c->id = ++sl->next_id;
	c->fd = -1;
	c->tp = CONF_TP_TCP;
	c->inbound = true;
	c->alert_sent = c->alert_rcvd = -1;
	memcpy(&c->ra, sa, salen);
	c->ralen = salen;
	addr_str((const struct sockaddr *)sa, salen, c->ip, sizeof(c->ip), &c->port);
	const struct sip_listener *l = listener_for(sl, CONF_TP_TCP, sa->ss_family);
	snprintf(c->lip, sizeof(c->lip), "%s",
	         sa->ss_family == AF_INET6 ? "::1" : "127.0.0.1");
	c->lport = l ? l->port : 5060;
	c->last_rx = loop_now(sl->loop);
	c->state = SIP_CONN_OPEN;
	c->next = sl->conns;
	sl->conns = c;
	loop_timer_start(sl->loop, &c->idle_t, sl->lim.idle_ms, idle_fired, c);
	identify_by_ip(c);
	for (size_t off = 0; off < len && !c->dead;) {
		size_t n = len - off < chunk ? len - off : chunk;
		if (n > c->incap - c->inlen)
			n = c->incap - c->inlen;
		if (n == 0) {
			conn_close(c, LOG_LVL_WARN, "input buffer full");
			break;
		}
		memcpy(c->in + c->inlen, buf + off, n);
		c->inlen += n;
		off += n;
		c->last_rx = loop_now(sl->loop);
		conn_process(c);
	}
	if (!c->dead)
		conn_close(c, LOG_LVL_INFO, "the peer closed the connection");
	return 0;
}

int sipleg_feed(struct sipleg *sl, bool stream, const char *ip, const char *buf,
                size_t len, size_t chunk)
{
	struct sockaddr_storage sa;
	socklen_t salen;

	if (!sl->tap || feed_addr(ip, &sa, &salen) != 0)
		return -EINVAL;
	if (stream)
		return feed_stream(sl, &sa, salen, buf, len, chunk ? chunk : len);
	for (struct sip_listener *l = sl->ls; l; l = l->next) {
		if (l->tp != CONF_TP_UDP || l->sa.ss_family != sa.ss_family)
			continue;
		memcpy(sl->udp_buf, buf, len < SIP_UDP_BUF ? len : SIP_UDP_BUF);
		udp_datagram(l, &sa, salen, len);
		return 0;
	}
	return -EINVAL;
}

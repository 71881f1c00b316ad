/*
 * `presbridge --probe` (probe.h): the offline checks, then every target live.
 *
 * Blocking sockets with SO_RCVTIMEO/SO_SNDTIMEO keep each step bounded without
 * an event loop; the probe is a one-shot tool that runs beside, not inside, the
 * daemon. TLS verification failures are recorded rather than fatal here, so
 * the report can show the chain and still learn whether the peer accepts the
 * bridge's certificate; the verdict is the same as the running leg's (which
 * refuses on the first failure).
 */
#include "presbridge/probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "presbridge/addr.h"
#include "presbridge/base64.h"
#include "presbridge/conf.h"
#include "presbridge/diag.h"
#include "presbridge/sip.h"
#include "presbridge/sipm.h"
#include "presbridge/sipt.h"
#include "presbridge/siptls.h"
#include "presbridge/version.h"
#include "presbridge/xlink.h"
#include "presbridge/loop.h"
#include "presbridge/xdns.h"
#include "presbridge/xs2s.h"
#include "presbridge/xs2s_proto.h"
#include "presbridge/xproto.h"
#include "presbridge/xtls.h"

#define CONNECT_MS 3000 /* TCP connect */
#define IO_MS      5000 /* TLS handshake, each read and write */
#define UDP_T1_MS  500  /* first UDP retransmission (RFC 3261 T1) */
#define UDP_MS     4000 /* give up on UDP after this long */
#define MAX_CHECKS 40
#define MAX_CHAIN  6

enum res {
	PR_OK,
	PR_INFO,
	PR_WARN,
	PR_FAIL,
};
static const char *const res_word[] = {"ok  ", "info", "warn", "FAIL"};
static const char *const res_json[] = {"ok", "info", "warn", "fail"};

struct check {
	enum res res;
	const char *id; /* stable name for tools: "reachable", "tls", "options", ... */
	char text[1400];
};

struct certinfo {
	char subject[256], issuer[256], not_after[40], names[400], ekus[160];
};

/* One probed target; -1 in an int field means "not learned". */
struct target {
	const char *kind; /* "sip-peer" | "xmpp-server" */
	char name[128];
	char host[256]; /* the name its certificate must carry */
	char address[300];
	const char *transport;
	unsigned line;
	int reachable;
	double connect_ms;
	char tls_version[32], cipher[96];
	struct certinfo chain[MAX_CHAIN];
	int nchain;
	int verified, names_match, eku_server, eku_client, cert_requested, peer_accepted;
	int alert_rcvd;
	int options_status;
	char options_reason[96];
	double rtt_ms;
	int handshakes, handshakes_ok;
	struct check checks[MAX_CHECKS];
	int nchecks;
};

static void target_init(struct target *t, const char *kind)
{
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->reachable = t->verified = t->names_match = t->eku_server = t->eku_client = -1;
	t->cert_requested = t->peer_accepted = t->alert_rcvd = t->options_status = -1;
	t->connect_ms = t->rtt_ms = -1;
}

__attribute__((format(printf, 4, 5))) static void
add(struct target *t, enum res r, const char *id, const char *fmt, ...)
{
	if (t->nchecks >= MAX_CHECKS)
		return;
	struct check *c = &t->checks[t->nchecks++];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->text, sizeof(c->text), fmt, ap);
	va_end(ap);
	c->res = r;
	c->id = id;
}

static bool failed(const struct target *t)
{
	for (int i = 0; i < t->nchecks; i++)
		if (t->checks[i].res == PR_FAIL)
			return true;
	return false;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void hostport(char *out, size_t n, const char *host, unsigned port)
{
	if (strchr(host, ':'))
		snprintf(out, n, "[%s]:%u", host, port);
	else
		snprintf(out, n, "%s:%u", host, port);
}

/* ---- sockets ---------------------------------------------------------------- */

static void set_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = IO_MS / 1000, .tv_usec = (IO_MS % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/*
 * Connect to host:port (a stream with a bounded wait, or a connected datagram
 * socket). On failure records the "reachable" check in plain words, with
 * `refused` as the explanation of a refused connection. Returns the socket or -1.
 */
static int net_connect(struct target *t, const char *host, unsigned port, bool dgram,
                       const char *refused)
{
	struct addrinfo hints = {.ai_socktype = dgram ? SOCK_DGRAM : SOCK_STREAM};
	struct addrinfo *ai = NULL;
	char ps[8];
	int last = 0;

	snprintf(ps, sizeof(ps), "%u", port);
	int g = getaddrinfo(host, ps, &hints, &ai);
	if (g) {
		t->reachable = 0;
		add(t, PR_FAIL, "reachable",
		    "cannot resolve %s: %s; fix the address or DNS", host,
		    gai_strerror(g));
		return -1;
	}
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			last = errno;
			continue;
		}
		if (dgram) {
			if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
				last = errno;
				close(fd);
				continue;
			}
			set_timeouts(fd);
			freeaddrinfo(ai);
			return fd;
		}
		double t0 = now_ms();
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
			last = errno;
			close(fd);
			continue;
		}
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int r = poll(&p, 1, CONNECT_MS);
		int se = 0;
		socklen_t sl = sizeof(se);
		if (r == 0)
			se = ETIMEDOUT;
		else if (r < 0)
			se = errno;
		else
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &se, &sl);
		if (se) {
			last = se;
			close(fd);
			continue;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		set_timeouts(fd);
		t->connect_ms = now_ms() - t0;
		t->reachable = 1;
		add(t, PR_OK, "reachable", "reachable: TCP connection to %s in %.1f ms",
		    t->address, t->connect_ms);
		freeaddrinfo(ai);
		return fd;
	}
	freeaddrinfo(ai);
	t->reachable = 0;
	if (last == ECONNREFUSED)
		add(t, PR_FAIL, "reachable", "connection refused at %s: %s", t->address,
		    refused);
	else if (last == ETIMEDOUT)
		add(t, PR_FAIL, "reachable",
		    "no answer from %s within %d s: a firewall drops the packets, or the "
		    "address is wrong",
		    t->address, CONNECT_MS / 1000);
	else
		add(t, PR_FAIL, "reachable", "cannot connect to %s: %s", t->address,
		    strerror(last ? last : EIO));
	return -1;
}

/* ---- TLS ------------------------------------------------------------------- */

/* What one handshake taught us (callbacks write it; one handshake at a time). */
struct tlsrec {
	long verr;
	char verr_subject[256];
	int alert_rcvd, alert_sent;
	bool cert_requested;
};
static struct tlsrec *cur_rec;

static int verify_cb(int ok, X509_STORE_CTX *x)
{
	if (!ok && cur_rec && !cur_rec->verr) {
		cur_rec->verr = X509_STORE_CTX_get_error(x);
		X509 *c = X509_STORE_CTX_get_current_cert(x);
		if (c)
			X509_NAME_oneline(X509_get_subject_name(c), cur_rec->verr_subject,
			                  sizeof(cur_rec->verr_subject));
	}
	return 1; /* go on: the report shows the chain and the peer's verdict too */
}

static void info_cb(const SSL *ssl, int where, int ret)
{
	(void)ssl;
	int desc = ret & 0xff;
	if (!(where & SSL_CB_ALERT) || !cur_rec || desc == 0)
		return;
	if ((where & SSL_CB_READ) && cur_rec->alert_rcvd < 0)
		cur_rec->alert_rcvd = desc;
	if ((where & SSL_CB_WRITE) && cur_rec->alert_sent < 0)
		cur_rec->alert_sent = desc;
}

/* A CertificateRequest from the server: it asks for the bridge's certificate. */
static void msg_cb(int write_p, int version, int content_type, const void *buf,
                   size_t len, SSL *ssl, void *arg)
{
	(void)version, (void)ssl, (void)arg;
	if (!write_p && cur_rec && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
	    ((const unsigned char *)buf)[0] == SSL3_MT_CERTIFICATE_REQUEST)
		cur_rec->cert_requested = true;
}

static SSL_CTX *client_ctx(const char *cert, const char *key, const char *ca)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if ((cert && (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	              SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	              SSL_CTX_check_private_key(ctx) != 1)) ||
	    (ca && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)) {
		SSL_CTX_free(ctx);
		ERR_clear_error();
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	SSL_CTX_set_info_callback(ctx, info_cb);
	SSL_CTX_set_msg_callback(ctx, msg_cb);
	return ctx;
}

/* The EKUs of x as "serverAuth, clientAuth", or a note when it has none. */
static void ekus_str(X509 *x, char *out, size_t n)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	out[0] = '\0';
	if (!eku) {
		snprintf(out, n, "(no EKU extension: any purpose)");
		return;
	}
	for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
		char name[80];
		const ASN1_OBJECT *o = sk_ASN1_OBJECT_value(eku, i);
		int nid = OBJ_obj2nid(o);
		if (nid != NID_undef)
			snprintf(name, sizeof(name), "%s", OBJ_nid2sn(nid));
		else
			OBJ_obj2txt(name, sizeof(name), o, 1);
		size_t l = strlen(out);
		snprintf(out + l, n - l, "%s%s", l ? ", " : "", name);
	}
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
}

static void cert_info(X509 *x, struct certinfo *ci)
{
	char **names = NULL;
	size_t nn = 0;
	X509_NAME_oneline(X509_get_subject_name(x), ci->subject, sizeof(ci->subject));
	X509_NAME_oneline(X509_get_issuer_name(x), ci->issuer, sizeof(ci->issuer));
	BIO *b = BIO_new(BIO_s_mem());
	ci->not_after[0] = '\0';
	if (b && ASN1_TIME_print(b, X509_get0_notAfter(x)) == 1) {
		int l = BIO_read(b, ci->not_after, (int)sizeof(ci->not_after) - 1);
		ci->not_after[l > 0 ? l : 0] = '\0';
	}
	BIO_free(b);
	if (siptls_cert_names(x, &names, &nn, NULL) == 0)
		siptls_names_str(names, nn, ci->names, sizeof(ci->names));
	else
		snprintf(ci->names, sizeof(ci->names), "(unreadable)");
	siptls_names_free(names, nn);
	ekus_str(x, ci->ekus, sizeof(ci->ekus));
}

/* Version, cipher and the chain the server sent. */
static void report_session(struct target *t, SSL *ssl)
{
	snprintf(t->tls_version, sizeof(t->tls_version), "%s", SSL_get_version(ssl));
	snprintf(t->cipher, sizeof(t->cipher), "%s", SSL_get_cipher_name(ssl));
	add(t, PR_OK, "tls", "TLS: %s, %s", t->tls_version, t->cipher);
	STACK_OF(X509) *sk = SSL_get_peer_cert_chain(ssl);
	for (int i = 0; sk && i < sk_X509_num(sk) && t->nchain < MAX_CHAIN; i++)
		cert_info(sk_X509_value(sk, i), &t->chain[t->nchain++]);
	add(t, PR_INFO, "chain", "chain received: %d certificate%s", t->nchain,
	    t->nchain == 1 ? "" : "s");
	for (int i = 0; i < t->nchain; i++) {
		const struct certinfo *ci = &t->chain[i];
		add(t, PR_INFO, "chain",
		    "  [%d] %s; issued by %s; valid until %s; names %s; EKU %s", i,
		    ci->subject, ci->issuer, ci->not_after, ci->names, ci->ekus);
	}
}

static SSL *tls_start(struct target *t, SSL_CTX *ctx, int fd, const char *sni,
                      struct tlsrec *rec, struct siptls_fail *f)
{
	SSL *ssl = SSL_new(ctx);
	memset(rec, 0, sizeof(*rec));
	rec->alert_rcvd = rec->alert_sent = -1;
	cur_rec = rec;
	memset(f, 0, sizeof(*f));
	if (!ssl) {
		f->ssl_err = ERR_peek_last_error();
		return NULL;
	}
	SSL_set_fd(ssl, fd);
	if (!addr_is_ip(sni))
		SSL_set_tlsext_host_name(ssl, sni);
	ERR_clear_error();
	errno = 0;
	int r = SSL_connect(ssl);
	if (r == 1)
		return ssl;
	int ge = SSL_get_error(ssl, r);
	f->inbound = false;
	f->timed_out =
	    ge == SSL_ERROR_WANT_READ || ge == SSL_ERROR_WANT_WRITE ||
	    (ge == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK));
	f->alert_rcvd = rec->alert_rcvd;
	f->alert_sent = rec->alert_sent;
	f->ssl_err = ERR_peek_last_error();
	f->ssl_get_error = ge;
	t->alert_rcvd = rec->alert_rcvd;
	SSL_free(ssl);
	return NULL;
}

/* ---- SIP peers ---------------------------------------------------------------- */

static const char *tp_upper(enum conf_tp tp)
{
	return tp == CONF_TP_TLS ? "TLS" : tp == CONF_TP_TCP ? "TCP" : "UDP";
}

static void local_hostport(int fd, char *out, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "0.0.0.0";
	unsigned port = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
			port = ntohs(s6->sin6_port);
			snprintf(out, n, "[%s]:%u", ip, port);
			return;
		}
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
	}
	snprintf(out, n, "%s:%u", ip, port);
}

/* An answer to our OPTIONS: its status and reason, the challenge if any. */
struct answer {
	int status;
	char reason[96];
	char challenge[300];
};

static bool read_answer(const char *buf, size_t len, const char *call_id,
                        struct answer *a)
{
	struct sipm *m = NULL;
	if (sipm_parse(&m, buf, len, NULL) != 0)
		return false;
	bool ours = !sipm_is_request(m) && strcmp(sipm_call_id(m), call_id) == 0;
	if (ours) {
		a->status = sipm_status(m);
		const char *sp = memchr(buf, ' ', len), *eol = memchr(buf, '\r', len);
		sp = sp ? memchr(sp + 1, ' ', (size_t)(buf + len - sp - 1)) : NULL;
		a->reason[0] = '\0';
		if (sp && eol && eol > sp) {
			size_t rl = (size_t)(eol - sp - 1);
			if (rl >= sizeof(a->reason))
				rl = sizeof(a->reason) - 1;
			memcpy(a->reason, sp + 1, rl);
			a->reason[rl] = '\0';
		}
		const char *ch = sipm_header(
		    m, a->status == 407 ? "Proxy-Authenticate" : "WWW-Authenticate", 0);
		snprintf(a->challenge, sizeof(a->challenge), "%s", ch ? ch : "");
	}
	sipm_free(m);
	return ours;
}

/* Send OPTIONS over a stream (ssl or fd) and read the final answer. Returns 0,
 * or -ETIMEDOUT / -ECONNRESET / -EBADMSG / -EPROTO (a TLS alert: rec says which). */
static int options_stream(int fd, SSL *ssl, const char *req, size_t len,
                          const char *call_id, struct answer *a)
{
	static char buf[SIPT_MAX_MSG];
	size_t have = 0;
	int w =
	    ssl ? SSL_write(ssl, req, (int)len) : (int)send(fd, req, len, MSG_NOSIGNAL);
	if (w != (int)len)
		return ssl && cur_rec && cur_rec->alert_rcvd >= 0 ? -EPROTO : -ECONNRESET;
	double t0 = now_ms();
	for (;;) {
		struct sipt_frame fr;
		sipt_frame_next(buf, have, sizeof(buf), &fr);
		if (fr.kind == SIPT_FRAME_MSG) {
			bool ours = read_answer(buf, fr.len, call_id, a);
			memmove(buf, buf + fr.len, have - fr.len);
			have -= fr.len;
			if (ours && a->status >= 200)
				return 0;
			continue;
		}
		if (fr.kind == SIPT_FRAME_PING || fr.kind == SIPT_FRAME_CRLF) {
			memmove(buf, buf + fr.len, have - fr.len);
			have -= fr.len;
			continue;
		}
		if (fr.kind != SIPT_FRAME_MORE)
			return -EBADMSG;
		if (now_ms() - t0 > IO_MS)
			return -ETIMEDOUT;
		errno = 0;
		int n = ssl ? SSL_read(ssl, buf + have, (int)(sizeof(buf) - have))
		            : (int)recv(fd, buf + have, sizeof(buf) - have, 0);
		if (n <= 0) {
			if (ssl && cur_rec && cur_rec->alert_rcvd >= 0)
				return -EPROTO;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -ETIMEDOUT;
			return -ECONNRESET;
		}
		have += (size_t)n;
	}
}

/* OPTIONS over UDP with RFC 3261 retransmissions (T1 doubling). Returns 0,
 * -ECONNREFUSED (ICMP port unreachable) or -ETIMEDOUT. */
static int options_dgram(int fd, const char *req, size_t len, const char *call_id,
                         struct answer *a)
{
	static char buf[SIPT_MAX_MSG];
	double t0 = now_ms();
	int wait = UDP_T1_MS;
	while (now_ms() - t0 < UDP_MS) {
		if (send(fd, req, len, 0) < 0 && errno == ECONNREFUSED)
			return -ECONNREFUSED;
		double until = now_ms() + wait;
		for (;;) {
			int left = (int)(until - now_ms());
			if (left <= 0)
				break;
			struct pollfd p = {.fd = fd, .events = POLLIN};
			if (poll(&p, 1, left) <= 0)
				break;
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			if (n < 0) {
				if (errno == ECONNREFUSED)
					return -ECONNREFUSED;
				continue;
			}
			size_t skip, hl, bl;
			if (sipt_dgram(buf, (size_t)n, &skip, &hl, &bl, NULL) == 0 &&
			    read_answer(buf + skip, hl + bl, call_id, a) &&
			    a->status >= 200)
				return 0;
		}
		wait *= 2;
	}
	return -ETIMEDOUT;
}

static void judge_answer(struct target *t, const struct answer *a)
{
	t->options_status = a->status;
	snprintf(t->options_reason, sizeof(t->options_reason), "%s", a->reason);
	if (a->status >= 200 && a->status < 300)
		add(t, PR_OK, "options",
		    "OPTIONS: %d %s in %.1f ms; the peer did not challenge the bridge",
		    a->status, a->reason, t->rtt_ms);
	else if (a->status == 401 || a->status == 407)
		add(t, PR_FAIL, "options", "OPTIONS: %d %s (%s: %s): %s", a->status,
		    a->reason,
		    a->status == 401 ? "WWW-Authenticate" : "Proxy-Authenticate",
		    a->challenge[0] ? a->challenge : "no challenge header",
		    sip_challenge_help);
	else if (a->status == 403)
		add(t, PR_FAIL, "options",
		    "OPTIONS: 403 %s: the peer refuses the bridge's requests; it must "
		    "trust the bridge (on Lync/SfB: a trusted application pool and "
		    "application for the bridge's FQDN, New-CsTrustedApplicationPool / "
		    "New-CsTrustedApplication)",
		    a->reason);
	else
		add(t, PR_WARN, "options",
		    "OPTIONS: %d %s in %.1f ms: the path works, but the peer does not "
		    "answer OPTIONS for sip:%s with 200",
		    a->status, a->reason, t->rtt_ms, t->host);
}

static void sip_options(struct target *t, const struct conf_peer *p, int fd, SSL *ssl,
                        const char *own, struct tlsrec *rec)
{
	char local[80], via[200], from[200], to[300], ruri[300], call_id[80],
	    contact[200];
	char branch[17], tag[17], cid[33];
	const char *tp = conf_tp_name(p->transport);

	sip_random_token(branch, sizeof(branch));
	sip_random_token(tag, sizeof(tag));
	sip_random_token(cid, sizeof(cid));
	local_hostport(fd, local, sizeof(local));
	snprintf(via, sizeof(via), "SIP/2.0/%s %s;branch=z9hG4bK-probe-%s;rport",
	         tp_upper(p->transport), local, branch);
	snprintf(from, sizeof(from), "<sip:presbridge-probe@%s>;tag=%s", own, tag);
	snprintf(to, sizeof(to), "<sip:%s>", p->host);
	snprintf(ruri, sizeof(ruri), "sip:%s;transport=%s", p->host, tp);
	snprintf(call_id, sizeof(call_id), "%s@%s", cid, own);
	snprintf(contact, sizeof(contact), "<sip:%s;transport=%s>", local, tp);
	const struct sipm_hdr hdrs[] = {
	    {"User-Agent", "presbridge/" PB_VERSION " probe"},
	    {"Accept", "application/sdp"},
	};
	const struct sipm_request rq = {.method = "OPTIONS",
	                                .ruri = ruri,
	                                .via = via,
	                                .from = from,
	                                .to = to,
	                                .call_id = call_id,
	                                .cseq = 1,
	                                .contact = contact,
	                                .hdrs = hdrs,
	                                .nhdrs = 2};
	char *req = NULL;
	size_t len = 0;
	if (sipm_request_build(&rq, &req, &len) != 0) {
		add(t, PR_FAIL, "options",
		    "could not build an OPTIONS request (out of memory?)");
		return;
	}
	struct answer a = {0};
	double t0 = now_ms();
	int e = p->transport == CONF_TP_UDP
	            ? options_dgram(fd, req, len, call_id, &a)
	            : options_stream(fd, ssl, req, len, call_id, &a);
	t->rtt_ms = now_ms() - t0;
	free(req);

	if (ssl) {
		if (e == -EPROTO) {
			char cause[700];
			t->alert_rcvd = rec->alert_rcvd;
			t->peer_accepted = 0;
			siptls_alert_rcvd_text(rec->alert_rcvd, false, cause,
			                       sizeof(cause));
			add(t, PR_FAIL, "peer-accepts-our-cert", "%s", cause);
			return;
		}
		if (e == 0 && rec->cert_requested) {
			t->peer_accepted = 1;
			add(t, PR_OK, "peer-accepts-our-cert",
			    "the peer asked for the bridge's certificate and accepted "
			    "it");
		}
	}
	switch (e) {
	case 0:
		if (p->transport == CONF_TP_UDP) {
			t->reachable = 1;
			add(t, PR_OK, "reachable", "reachable: UDP answer from %s",
			    t->address);
		}
		judge_answer(t, &a);
		break;
	case -ECONNREFUSED:
		t->reachable = 0;
		add(t, PR_FAIL, "reachable",
		    "nothing listens on UDP %s (ICMP port unreachable): check address "
		    "and transport in [peer %s]",
		    t->address, p->name);
		break;
	case -ETIMEDOUT:
		if (p->transport == CONF_TP_UDP)
			t->reachable = 0;
		add(t, PR_FAIL, "options", "OPTIONS: no answer within %d s%s",
		    (p->transport == CONF_TP_UDP ? UDP_MS : IO_MS) / 1000,
		    p->transport == CONF_TP_UDP ? ": nothing answers SIP over UDP there; "
		                                  "check address and transport"
		                                : ": the peer accepted the connection "
		                                  "but does not answer SIP on it");
		break;
	case -EBADMSG:
		add(t, PR_FAIL, "options",
		    "OPTIONS: the answer is not a SIP message the bridge can frame: is "
		    "this a SIP port?");
		break;
	default:
		add(t, PR_FAIL, "options",
		    "OPTIONS: the peer closed the connection without answering%s",
		    ssl && !rec->cert_requested
		        ? ""
		        : (ssl ? " (it may have refused the bridge's certificate without "
		                 "an alert)"
		               : ""));
		break;
	}
}

static void probe_peer(struct target *t, const struct conf *cf, const struct conf_peer *p,
                       SSL_CTX *ctx, const char *own)
{
	char refused[300];
	target_init(t, "sip-peer");
	snprintf(t->name, sizeof(t->name), "%s", p->name);
	snprintf(t->host, sizeof(t->host), "%s", p->host ? p->host : "");
	hostport(t->address, sizeof(t->address), p->address.host, p->address.port);
	t->transport = conf_tp_name(p->transport);
	t->line = p->line;

	if (p->transport != CONF_TP_TLS)
		add(t, PR_WARN, "transport",
		    "plain %s: traffic to and from this peer is not encrypted and the "
		    "peer is not authenticated by certificate",
		    t->transport);
	snprintf(refused, sizeof(refused),
	         "nothing listens there; check address (line %u) and transport in [peer "
	         "%s], and that the peer's %s listener runs",
	         p->address_line ? p->address_line : p->line, p->name,
	         tp_upper(p->transport));
	int fd = net_connect(t, p->address.host, p->address.port,
	                     p->transport == CONF_TP_UDP, refused);
	if (fd < 0)
		return;
	SSL *ssl = NULL;
	struct tlsrec rec = {.alert_rcvd = -1, .alert_sent = -1};
	if (p->transport == CONF_TP_TLS) {
		if (!ctx) {
			add(t, PR_FAIL, "tls",
			    "not probed over TLS: the bridge's certificate, key or [sip] "
			    "ca "
			    "cannot be used (see the offline checks)");
			close(fd);
			return;
		}
		struct siptls_fail f;
		ssl = tls_start(t, ctx, fd, p->host, &rec, &f);
		if (!ssl) {
			char cause[900], key[64];
			siptls_fail_text(&f, cause, sizeof(cause), key, sizeof(key));
			if (f.alert_rcvd >= 0)
				t->peer_accepted = 0;
			add(t, PR_FAIL, "tls", "TLS handshake failed: %s", cause);
			close(fd);
			return;
		}
		report_session(t, ssl);
		t->cert_requested = rec.cert_requested;
		X509 *leaf = SSL_get0_peer_certificate(ssl);
		char names[400] = "(none)";
		char **nv = NULL;
		size_t nn = 0;
		if (leaf && siptls_cert_names(leaf, &nv, &nn, NULL) == 0)
			siptls_names_str(nv, nn, names, sizeof(names));
		if (rec.verr) {
			struct siptls_fail vf = {.verr = rec.verr,
			                         .verr_subject = rec.verr_subject,
			                         .alert_rcvd = -1,
			                         .alert_sent = -1};
			char cause[900], key[64];
			siptls_fail_text(&vf, cause, sizeof(cause), key, sizeof(key));
			t->verified = 0;
			add(t, PR_FAIL, "verify", "the bridge refuses this peer: %s",
			    cause);
		} else {
			t->verified = 1;
			add(t, PR_OK, "verify",
			    "its chain verifies against [sip] ca (%s)", cf->ca);
		}
		t->names_match = siptls_names_match(nv, nn, p->host);
		if (t->names_match) {
			add(t, PR_OK, "names",
			    "its certificate names %s: matches host %s", names, p->host);
		} else {
			char cause[900];
			siptls_wrong_name_text(names, p->host, p->name, cause,
			                       sizeof(cause));
			add(t, PR_FAIL, "names", "the bridge refuses this peer: %s",
			    cause);
		}
		siptls_names_free(nv, nn);
		t->eku_server = leaf && siptls_eku_check(leaf, SIPTLS_SERVER) == 0;
		t->eku_client = leaf && siptls_eku_check(leaf, SIPTLS_CLIENT) == 0;
		if (!t->eku_server) {
			char cause[600];
			siptls_eku_text(names, SIPTLS_SERVER, cause, sizeof(cause));
			add(t, PR_FAIL, "eku", "the bridge refuses this peer: %s", cause);
		} else if (!t->eku_client) {
			char cause[600];
			siptls_eku_text(names, SIPTLS_CLIENT, cause, sizeof(cause));
			add(t, PR_FAIL, "eku",
			    "when the peer connects to the bridge, the bridge refuses it "
			    "(TLS alert 43): %s",
			    cause);
		} else {
			add(t, PR_OK, "eku",
			    "EKUs allow it as TLS server (serverAuth) and as TLS client "
			    "(clientAuth)");
		}
		if (!rec.cert_requested)
			add(t, PR_WARN, "peer-accepts-our-cert",
			    "the peer did not ask for the bridge's certificate: it does "
			    "not "
			    "authenticate the bridge by mutual TLS (Lync/SfB always "
			    "does); "
			    "require client certificates on its TLS listener");
	}
	sip_options(t, p, fd, ssl, own, &rec);
	if (ssl) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	cur_rec = NULL;
	close(fd);
}

/* ---- XMPP server ----------------------------------------------------------- */

struct xstream {
	int fd;
	SSL *ssl;
	char buf[16384];
	size_t len;
};

static int xs_write(struct xstream *x, const char *s)
{
	size_t n = strlen(s);
	int w =
	    x->ssl ? SSL_write(x->ssl, s, (int)n) : (int)send(x->fd, s, n, MSG_NOSIGNAL);
	return w == (int)n ? 0 : -EIO;
}

/* Read until one of the needles appears (or the stream closes / times out).
 * Returns the index of the needle found, -ETIMEDOUT, or -ECONNRESET. */
/* Read once more. Returns 0, -ETIMEDOUT (also: buffer full) or -ECONNRESET. */
static int xs_more(struct xstream *x)
{
	if (x->len + 1 >= sizeof(x->buf))
		return -ETIMEDOUT;
	errno = 0;
	size_t room = sizeof(x->buf) - 1 - x->len;
	int n = x->ssl ? SSL_read(x->ssl, x->buf + x->len, (int)room)
	               : (int)recv(x->fd, x->buf + x->len, room, 0);
	if (n <= 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -ECONNRESET;
	x->len += (size_t)n;
	x->buf[x->len] = '\0';
	return 0;
}

static int xs_wait(struct xstream *x, const char *const *needles, int nn)
{
	double t0 = now_ms();
	for (;;) {
		for (int i = 0; i < nn; i++)
			if (strstr(x->buf, needles[i]))
				return i;
		if (now_ms() - t0 > IO_MS)
			return -ETIMEDOUT;
		int e = xs_more(x);
		if (e)
			return e;
	}
}

/* The value of attribute attr in the start tag beginning at tag. */
static bool attr_of(const char *tag, const char *attr, char *out, size_t n)
{
	const char *end = strchr(tag, '>');
	size_t al = strlen(attr);
	for (const char *p = tag; end && (p = strstr(p, attr)) && p < end; p += al) {
		if (p[-1] != ' ' && p[-1] != '\n' && p[-1] != '\t')
			continue;
		const char *q = p + al;
		while (*q == ' ')
			q++;
		if (*q != '=')
			continue;
		q++;
		while (*q == ' ')
			q++;
		if (*q != '\'' && *q != '"')
			continue;
		const char *v = q + 1, *ve = strchr(v, *q);
		if (!ve || ve > end || (size_t)(ve - v) >= n)
			return false;
		memcpy(out, v, (size_t)(ve - v));
		out[ve - v] = '\0';
		return true;
	}
	return false;
}

/* The defined condition of a <stream:error> in buf (the first child element in
 * the streams namespace other than <text>). */
static void stream_error_cond(const char *buf, char *cond, size_t n, char *text,
                              size_t tn)
{
	const char *e = strstr(buf, "<stream:error");
	cond[0] = text[0] = '\0';
	if (!e)
		return;
	for (const char *p = strchr(e, '>'); p && (p = strchr(p + 1, '<'));) {
		if (p[1] == '/')
			break;
		size_t l = strcspn(p + 1, " />\t\n");
		if (l == 4 && strncmp(p + 1, "text", 4) == 0) {
			const char *tb = strchr(p, '>'),
			           *te = tb ? strstr(tb, "</text>") : NULL;
			if (tb && te && (size_t)(te - tb - 1) < tn) {
				memcpy(text, tb + 1, (size_t)(te - tb - 1));
				text[te - tb - 1] = '\0';
			}
			continue;
		}
		if (!cond[0] && l < n) {
			memcpy(cond, p + 1, l);
			cond[l] = '\0';
		}
	}
}

static void xmpp_handshake(struct target *t, struct xstream *x, const struct conf *cf,
                           const char *domain)
{
	char hdr[600], id[XPROTO_STREAM_ID_MAX + 1], digest[XPROTO_DIGEST_LEN + 1];
	char msg[80];
	static const char *const opened[] = {"<stream:stream", "</stream:stream>"};
	static const char *const answered[] = {"<handshake/>", "<handshake></handshake>",
	                                       "</stream:error>", "</stream:stream>"};
	t->handshakes++;
	snprintf(hdr, sizeof(hdr),
	         "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
	         "xmlns:stream='http://etherx.jabber.org/streams' to='%s'>",
	         domain);
	if (xs_write(x, hdr) != 0) {
		add(t, PR_FAIL, "handshake",
		    "component %s: the server closed the connection "
		    "before the stream header could be sent",
		    domain);
		return;
	}
	int r = xs_wait(x, opened, 2);
	/* the rest of the start tag, if it came in pieces */
	while (r == 0 && !strchr(strstr(x->buf, "<stream:stream"), '>'))
		r = xs_more(x);
	const char *st = strstr(x->buf, "<stream:stream");
	if (r < 0 || !st) {
		add(t, PR_FAIL, "handshake", "component %s: %s", domain,
		    r == -ETIMEDOUT ? "the server opened no stream within 5 s"
		                    : (cf->xmpp_tls == CONF_XMPP_TLS_OFF
		                           ? XPROTO_NO_STREAM_PLAIN_WORDS
		                           : "the server closed the connection before "
		                             "opening a stream"));
		return;
	}
	if (!attr_of(st, "id", id, sizeof(id)) || !id[0] ||
	    xproto_handshake_digest(id, cf->xmpp_secret, digest) != 0) {
		/* A refusing server opens its stream (Prosody: with id='') and
		 * sends the stream error next (XEP-0114 section 3): read it. */
		r = xs_wait(x, answered + 2, 2);
		if (r >= 0)
			r += 2; /* an index into answered[], never "accepted" */
		if (!strstr(x->buf, "<stream:error")) {
			add(t, PR_FAIL, "handshake",
			    "component %s: the server's stream header "
			    "carries no id, so no handshake is possible, and it "
			    "sent no stream error",
			    domain);
			return;
		}
	} else {
		snprintf(msg, sizeof(msg), "<handshake>%s</handshake>", digest);
		OPENSSL_cleanse(digest, sizeof(digest));
		r = xs_write(x, msg) == 0 ? xs_wait(x, answered, 4) : -ECONNRESET;
		OPENSSL_cleanse(msg, sizeof(msg));
	}
	if (r == 0 || r == 1) {
		t->handshakes_ok++;
		add(t, PR_OK, "handshake",
		    "component %s: handshake accepted (XEP-0114, the secret matches)",
		    domain);
		xs_write(x, "</stream:stream>");
		return;
	}
	if (strstr(x->buf, "<stream:error")) {
		char cond[64], text[300], words[400];
		stream_error_cond(x->buf, cond, sizeof(cond), text, sizeof(text));
		const struct xproto_streamerr *se =
		    xproto_stream_error(cond[0] ? cond : NULL);
		snprintf(words, sizeof(words), se->words, domain);
		if (strcmp(cond, "conflict") == 0) {
			/* Most often the bridge itself holds the component: a
			 * server that takes one login per domain refuses the
			 * probe's (XEP-0114 section 3 names <conflict/>; Prosody
			 * 0.12 sends it after checking the secret, with its
			 * default component_conflict_resolve = "kick_new"). */
			add(t, PR_WARN, "handshake",
			    "component %s: %s%s%s%s; this is expected while "
			    "presbridge runs with this configuration and its link "
			    "is up (the server takes one connection per component "
			    "domain); otherwise stop the other bridge, or give each "
			    "its own component domain",
			    domain, words, text[0] ? " (\"" : "", text,
			    text[0] ? "\")" : "");
			return;
		}
		add(t, PR_FAIL, "handshake", "component %s: %s%s%s%s%s%s", domain, words,
		    text[0] ? " (\"" : "", text, text[0] ? "\")" : "",
		    se->fix[0] ? "; " : "", se->fix);
		return;
	}
	add(t, PR_FAIL, "handshake", "component %s: %s", domain,
	    r == -ETIMEDOUT ? "the server did not answer the handshake within 5 s"
	                    : "the server closed the connection without answering the "
	                      "handshake");
}

static void probe_xmpp(struct target *t, const struct conf *cf)
{
	char **domains = NULL;
	size_t nd = 0;
	bool tls = cf->xmpp_tls == CONF_XMPP_TLS_DIRECT;

	target_init(t, "xmpp-server");
	snprintf(t->name, sizeof(t->name), "xmpp");
	snprintf(t->host, sizeof(t->host), "%s", cf->xmpp_name ? cf->xmpp_name : "");
	hostport(t->address, sizeof(t->address), cf->xmpp_server.host,
	         cf->xmpp_server.port);
	t->transport = tls ? "tls" : "tcp";
	t->line = conf_key_line(cf, "xmpp", "server");
	if (!tls)
		add(t, PR_WARN, "transport",
		    "[xmpp] tls = off: the component secret and every stanza cross the "
		    "network in clear text");
	int e = xlink_component_domains(cf, &domains, &nd);
	if (e || nd == 0) {
		add(t, PR_FAIL, "handshake",
		    "domains.map lists no SIP-homed domain: the bridge has no component "
		    "to "
		    "connect as");
		nd = 0;
	}
	SSL_CTX *ctx = tls ? client_ctx(NULL, NULL, NULL) : NULL;
	if (ctx)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE,
		                   NULL); /* xtls_check_peer decides */
	/* One connection per component domain, as the bridge holds them. */
	for (size_t i = 0; i < (nd ? nd : 1); i++) {
		struct target scratch;
		bool first = i == 0;
		struct target *tt = first ? t : &scratch;
		if (!first) {
			target_init(&scratch, "xmpp-server");
			snprintf(scratch.address, sizeof(scratch.address), "%s",
			         t->address);
		}
		int fd =
		    net_connect(tt, cf->xmpp_server.host, cf->xmpp_server.port, false,
		                "check that the XMPP server runs with its component "
		                "listener on this port");
		if (fd < 0) {
			if (!first) {
				add(t, PR_FAIL, "handshake", "component %s: %s",
				    domains[i], scratch.checks[scratch.nchecks - 1].text);
				continue;
			}
			break;
		}
		struct xstream *x = calloc(1, sizeof(*x));
		if (!x) {
			close(fd);
			break;
		}
		x->fd = fd;
		if (tls) {
			struct tlsrec rec;
			struct siptls_fail f;
			x->ssl =
			    ctx ? tls_start(tt, ctx, fd, cf->xmpp_name, &rec, &f) : NULL;
			if (!x->ssl) {
				char err[256] = "";
				const char *w = NULL;
				if (f.ssl_err) {
					ERR_error_string_n(f.ssl_err, err, sizeof(err));
					w = xproto_tls_words(err);
				}
				if (f.timed_out)
					add(tt, PR_FAIL, "tls",
					    "TLS: " XPROTO_TLS_TIMEOUT_WORDS,
					    IO_MS / 1000);
				else if (f.alert_rcvd >= 0)
					add(tt, PR_FAIL, "tls",
					    "TLS: alert %d %s from the server: %s",
					    f.alert_rcvd,
					    siptls_alert(f.alert_rcvd)->name,
					    siptls_alert(f.alert_rcvd)->when_received);
				else if (w)
					add(tt, PR_FAIL, "tls", "TLS: %s", w);
				else
					add(tt, PR_FAIL, "tls",
					    "TLS handshake failed (%s)",
					    err[0] ? err
					           : "the server closed the connection");
				if (!first)
					add(t, PR_FAIL, "handshake", "component %s: %s",
					    domains[i],
					    scratch.checks[scratch.nchecks - 1].text);
				close(fd);
				free(x);
				break;
			}
			if (first) {
				report_session(t, x->ssl);
				X509 *leaf = SSL_get0_peer_certificate(x->ssl);
				char *pem = NULL, why[700];
				BIO *b = BIO_new(BIO_s_mem());
				if (b && leaf && PEM_write_bio_X509(b, leaf) == 1) {
					BUF_MEM *bm;
					BIO_get_mem_ptr(b, &bm);
					pem = strndup(bm->data, bm->length);
				}
				BIO_free(b);
				int v = xtls_check_peer(pem, cf->xmpp_ca, cf->xmpp_name,
				                        why, sizeof(why));
				free(pem);
				t->verified = v == 0;
				t->names_match = v == 0 ? 1 : -1;
				if (v == 0)
					add(t, PR_OK, "verify",
					    "its certificate verifies against [xmpp] ca "
					    "(%s) and "
					    "names %s",
					    cf->xmpp_ca, cf->xmpp_name);
				else
					add(t, PR_FAIL, "verify", "TLS: %s", why);
			}
		}
		if (nd)
			xmpp_handshake(t, x, cf, domains[i]);
		if (x->ssl) {
			SSL_shutdown(x->ssl);
			SSL_free(x->ssl);
		}
		cur_rec = NULL;
		close(fd);
		free(x);
		if (!nd)
			break;
	}
	SSL_CTX_free(ctx);
	for (size_t i = 0; i < nd; i++)
		free(domains[i]);
	free(domains);
}

/* ---- XMPP peers, server-to-server ----------------------------------------------- */

struct s2s_dns_wait {
	bool done;
	struct xdns_result *r;
};

static void s2s_dns_done(const struct xdns_result *r, void *arg)
{
	struct s2s_dns_wait *w = arg;
	w->done = true;
	xdns_result_dup(&w->r, r);
}

/* Find where `domain`'s XMPP server listens as the bridge would: its [s2s-peer]
 * static route, else DNS (SRV, then A/AAAA). Fills host/port (first target). */
static bool s2s_where(struct target *t, const struct conf *cf, const char *domain,
                      char *addr, size_t n, unsigned *port, bool *direct)
{
	const struct conf_s2s_peer *p = conf_s2s_peer(cf, domain);
	if (p && p->address.host) {
		snprintf(addr, n, "%s", p->address.host);
		*port = p->address.port;
		*direct = p->direct_tls;
		add(t, PR_OK, "dns", "static route [s2s-peer %s]: %s:%u (DNS not asked)",
		    domain, p->address.host, *port);
		return true;
	}
	struct loop *l = NULL;
	struct xdns *d = NULL;
	struct s2s_dns_wait w = {false, NULL};
	bool ok = false;
	if (loop_new(&l) != 0 || xdns_new(&d, l, cf->s2s_dns) != 0) {
		add(t, PR_FAIL, "dns", "cannot start the DNS resolver");
		goto out;
	}
	if (xdns_resolve(d, domain, cf->s2s_direct_tls, s2s_dns_done, &w, NULL) != 0) {
		add(t, PR_FAIL, "dns", "cannot ask DNS about %s", domain);
		goto out;
	}
	double t0 = now_ms();
	while (!w.done && now_ms() - t0 < 15000)
		loop_run_once(l, 200);
	if (!w.r) {
		add(t, PR_FAIL, "dns", "no DNS answer about %s within 15 s", domain);
		goto out;
	}
	if (w.r->srv_text[0]) {
		char srv[1024];
		snprintf(srv, sizeof(srv), "%s", w.r->srv_text);
		for (char *c = srv; *c; c++)
			if (*c == '\n')
				*c = ';';
		add(t, PR_OK, "dns", "SRV records: %s", srv);
	}
	if (w.r->status != 0 || w.r->n == 0) {
		add(t, PR_FAIL, "dns",
		    "DNS: %s -- publish _xmpp-server._tcp.%s SRV records (or "
		    "an A record), or give [s2s-peer %s] address",
		    w.r->why, domain, domain);
		goto out;
	}
	snprintf(addr, n, "%s", w.r->v[0].addr);
	*port = w.r->v[0].port;
	add(t, PR_OK, "dns", "%s: %zu address%s to try; first %s:%u (%s, %s)", domain,
	    w.r->n, w.r->n == 1 ? "" : "es", w.r->v[0].addr, *port,
	    w.r->v[0].from_srv ? "from SRV" : "A/AAAA fallback on 5269",
	    w.r->v[0].direct_tls ? "direct TLS" : "STARTTLS");
	*direct = w.r->v[0].direct_tls;
	ok = true;
out:
	xdns_result_free(w.r);
	xdns_free(d);
	loop_free(l);
	return ok;
}

static bool s2s_features(struct target *t, struct xstream *x, const char *from,
                         const char *to, const char *stage)
{
	char hdr[600];
	static const char *const want[] = {"</stream:features>", "<stream:features/>",
	                                   "</stream:stream>", "stream:error"};
	x->len = 0;
	x->buf[0] = '\0';
	snprintf(hdr, sizeof(hdr),
	         "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
	         "xmlns:stream='http://etherx.jabber.org/streams' "
	         "xmlns:db='jabber:server:dialback' from='%s' to='%s' version='1.0'>",
	         from, to);
	if (xs_write(x, hdr) != 0) {
		add(t, PR_FAIL, "stream", "%s: the peer closed the connection", stage);
		return false;
	}
	int r = xs_wait(x, want, 4);
	if (r < 0 || r >= 2) {
		char cond[64] = "", text[256] = "";
		stream_error_cond(x->buf, cond, sizeof(cond), text, sizeof(text));
		add(t, PR_FAIL, "stream", "%s: no stream features from the peer%s%s%s%s",
		    stage, cond[0] ? " (stream error " : "", cond, cond[0] ? ")" : "",
		    cond[0] && strcmp(cond, "host-unknown") == 0
		        ? ": it does not serve that domain"
		        : "");
		return false;
	}
	return true;
}

/* Authenticate as the bridge would (EXTERNAL first, dialback after a refusal or
 * where EXTERNAL is not offered) and report what the peer answered. A dialback
 * key is made with [s2s] dialback_secret, so the peer's verification reaches
 * the running bridge (found by sip.test's own DNS records) and succeeds only if
 * that bridge runs with the same secret: what a real stream needs too. */
static void s2s_auth_try(struct target *t, const struct conf *cf, struct xstream *x,
                         const char *hosted, const char *domain, bool ext, bool db,
                         const char *sid)
{
	static const char *const sasl[] = {"<success", "<failure", "</stream:stream>",
	                                   "stream:error"};
	char req[600];
	if (ext) {
		char *b64 = NULL;
		size_t n = 0;
		if (base64_encode((const unsigned char *)hosted, strlen(hosted), &b64,
		                  &n) != 0)
			return;
		snprintf(req, sizeof(req),
		         "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
		         "mechanism='EXTERNAL'>%s</auth>",
		         b64);
		free(b64);
		x->len = 0;
		x->buf[0] = '\0';
		int r = xs_write(x, req) == 0 ? xs_wait(x, sasl, 4) : -EIO;
		if (r == 0) {
			add(t, PR_OK, "auth",
			    "SASL EXTERNAL: the peer accepted the bridge's certificate "
			    "for %s",
			    hosted);
			return;
		}
		const char *f = r == 1 ? strstr(x->buf, "<failure") : NULL;
		const char *c = f ? strchr(f + 1, '<') : NULL;
		char cond[64] = "";
		if (c && c[1] != '/')
			sscanf(c + 1, "%63[a-z-]", cond);
		add(t, db ? PR_WARN : PR_FAIL, "auth",
		    "SASL EXTERNAL: the peer refused the bridge's certificate for "
		    "%s%s%s%s%s",
		    hosted, cond[0] ? " (" : "", cond, cond[0] ? ")" : "",
		    db ? "; the bridge then uses dialback, tried next"
		       : " -- have the peer trust the CA of [s2s] cert and check the "
		         "certificate names the domain, or allow dialback");
		if (r != 1 || !db)
			return;
	}
	if (!db)
		return;
	if (!cf->s2s_secret) {
		add(t, PR_WARN, "auth",
		    "dialback not tried: without [s2s] dialback_secret the probe cannot "
		    "make "
		    "the keys the running bridge would confirm");
		return;
	}
	char key[XS2S_KEY_LEN + 1];
	if (!sid[0] || xs2s_dialback_key(cf->s2s_secret, domain, hosted, sid, key) != 0) {
		add(t, PR_FAIL, "auth",
		    "dialback: the peer's stream header carries no id");
		return;
	}
	snprintf(req, sizeof(req), "<db:result from='%s' to='%s'>%s</db:result>", hosted,
	         domain, key);
	OPENSSL_cleanse(key, sizeof(key));
	x->len = 0;
	x->buf[0] = '\0';
	static const char *const res[] = {"<db:result", "</stream:stream>",
	                                  "stream:error"};
	int r = xs_write(x, req) == 0 ? -ETIMEDOUT : -EIO;
	/* The peer first asks sip.test's authoritative server: give it time. */
	for (int i = 0; i < 4 && r == -ETIMEDOUT; i++)
		r = xs_wait(x, res, 3);
	const char *el = r == 0 ? strstr(x->buf, "<db:result") : NULL;
	if (el && !strchr(el, '>')) {
		static const char *const gt[] = {">"};
		xs_wait(x, gt, 1);
		el = strstr(x->buf, "<db:result");
	}
	char type[16] = "";
	if (el)
		attr_of(el, "type", type, sizeof(type));
	if (strcmp(type, "valid") == 0)
		add(t, PR_OK, "auth",
		    "dialback: the peer confirmed the bridge's key with %s's "
		    "authoritative "
		    "server (the bridge as DNS names it)",
		    hosted);
	else
		add(t, PR_FAIL, "auth",
		    "dialback: %s -- the peer asks %s's authoritative server, the bridge "
		    "as "
		    "%s's SRV records name it: check that it runs there with this "
		    "dialback_secret and that the peer can reach it",
		    type[0]           ? (strcmp(type, "invalid") == 0
		                             ? "the peer found the key invalid"
		                             : "the peer answered with an error")
		    : r == -ETIMEDOUT ? "no answer within 20 s"
		                      : "the peer closed the stream",
		    hosted, hosted);
}

static void probe_s2s(struct target *t, const struct conf *cf, const char *domain,
                      const char *hosted)
{
	char addr[256];
	unsigned port = 0;
	const struct conf_s2s_peer *p = conf_s2s_peer(cf, domain);

	target_init(t, "xmpp-peer");
	snprintf(t->name, sizeof(t->name), "s2s %s", domain);
	snprintf(t->host, sizeof(t->host), "%s", domain);
	t->transport = "s2s";
	t->line = p ? p->line : conf_key_line(cf, "xmpp", "transport");
	bool direct = false;
	if (!s2s_where(t, cf, domain, addr, sizeof(addr), &port, &direct))
		return;
	hostport(t->address, sizeof(t->address), addr, port);
	int fd = net_connect(t, addr, port, false,
	                     "check that the peer's XMPP server listens for servers "
	                     "there and its firewall lets the bridge in");
	if (fd < 0)
		return;
	struct xstream *x = calloc(1, sizeof(*x));
	SSL_CTX *ctx = client_ctx(cf->s2s_cert, cf->s2s_key, cf->s2s_ca);
	if (!x || !ctx)
		goto out;
	x->fd = fd;
	if (!direct) {
		if (!s2s_features(t, x, hosted, domain, "stream"))
			goto out;
		bool tls_offered =
		    strstr(x->buf, "urn:ietf:params:xml:ns:xmpp-tls") != NULL;
		enum conf_s2s_tls want = conf_s2s_tls_for(cf, domain);
		if (!tls_offered) {
			add(t, want == CONF_S2S_TLS_REQUIRED ? PR_FAIL : PR_WARN, "tls",
			    "the peer does not offer STARTTLS%s",
			    want == CONF_S2S_TLS_REQUIRED
			        ? ", and the bridge requires TLS (RFC 7590)"
			        : "");
			goto out;
		}
		add(t, PR_OK, "tls", "STARTTLS offered%s",
		    strstr(x->buf, "<required") ? " (required by the peer)" : "");
		static const char *const proceed[] = {"<proceed", "<failure"};
		x->len = 0;
		x->buf[0] = '\0';
		if (xs_write(x, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>") !=
		        0 ||
		    xs_wait(x, proceed, 2) != 0) {
			add(t, PR_FAIL, "tls", "the peer refused STARTTLS");
			goto out;
		}
	}
	struct tlsrec rec;
	struct siptls_fail f;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	x->ssl = tls_start(t, ctx, fd, domain, &rec, &f);
	if (!x->ssl) {
		add(t, PR_FAIL, "tls", "TLS handshake failed%s",
		    f.alert_rcvd >= 0 ? " (the peer sent an alert)" : "");
		goto out;
	}
	report_session(t, x->ssl);
	X509 *leaf = SSL_get0_peer_certificate(x->ssl);
	long vr = SSL_get_verify_result(x->ssl);
	enum xs2s_id_kind kind = XS2S_ID_NONE;
	char ids[400];
	if (leaf)
		xs2s_cert_ids_str(leaf, ids, sizeof(ids));
	if (!leaf)
		add(t, PR_FAIL, "verify", "the peer sent no certificate");
	else if (vr != X509_V_OK)
		add(t, PR_WARN, "verify",
		    "its certificate does not verify against [s2s] ca (%s): %s; only "
		    "dialback can authenticate it",
		    cf->s2s_ca, X509_verify_cert_error_string(vr));
	else if (!xs2s_cert_names_domain(leaf, domain, &kind))
		add(t, PR_WARN, "verify",
		    "its certificate does not name %s (it names %s; RFC 6125); only "
		    "dialback "
		    "can authenticate it",
		    domain, ids);
	else
		add(t, PR_OK, "verify",
		    "its certificate verifies against [s2s] ca and names %s", domain);
	if (!s2s_features(t, x, hosted, domain, "stream after TLS"))
		goto out;
	bool ext = strstr(x->buf, ">EXTERNAL<") != NULL;
	bool db = strstr(x->buf, "urn:xmpp:features:dialback") != NULL ||
	          strstr(x->buf, "jabber:server:dialback") != NULL;
	unsigned auth = conf_s2s_auth_for(cf, domain);
	add(t, PR_OK, "auth", "the peer offers %s%s%s", ext ? "SASL EXTERNAL" : "",
	    ext && db ? " and " : "", db ? "dialback" : (ext ? "" : "no authentication"));
	if (!((ext && (auth & CONF_S2S_AUTH_EXTERNAL)) ||
	      (db && (auth & CONF_S2S_AUTH_DIALBACK))))
		add(t, PR_FAIL, "auth",
		    "no authentication both sides accept: allow %s in [s2s] auth or "
		    "[s2s-peer %s] auth",
		    ext ? "external" : "dialback", domain);
	else {
		char sid[256] = "";
		const char *hdr = strstr(x->buf, "<stream:stream");
		if (hdr)
			attr_of(hdr, "id", sid, sizeof(sid));
		s2s_auth_try(t, cf, x, hosted, domain,
		             ext && (auth & CONF_S2S_AUTH_EXTERNAL),
		             db && (auth & CONF_S2S_AUTH_DIALBACK), sid);
	}
out:
	if (x && x->ssl) {
		SSL_shutdown(x->ssl);
		SSL_free(x->ssl);
	}
	cur_rec = NULL;
	SSL_CTX_free(ctx);
	free(x);
	close(fd);
}

/* ---- report --------------------------------------------------------------------- */

/* ---- [store] backend = postgresql: the pool's database (issue 18) ---- */

/* A value of the first row of a query, or "" (borrowed from r). */
static const char *db_value(PGresult *r, int col)
{
	return PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 &&
	               col < PQnfields(r) && !PQgetisnull(r, 0, col)
	           ? PQgetvalue(r, 0, col)
	           : "";
}

static void probe_db(struct target *t, const struct conf *cf)
{
	target_init(t, "database");
	snprintf(t->name, sizeof(t->name), "%s", cf->pool_node ? cf->pool_node : "");
	t->transport = "postgresql";
	t->line = conf_key_line(cf, "store", "conninfo");
	char *why = NULL;
	PQconninfoOption *o = PQconninfoParse(cf->store_conninfo, &why);
	PQfreemem(why);
	const char *host = "", *port = "", *db = "";
	for (PQconninfoOption *i = o; i && i->keyword; i++) {
		if (!i->val)
			continue;
		if (strcmp(i->keyword, "host") == 0)
			host = i->val;
		else if (strcmp(i->keyword, "port") == 0)
			port = i->val;
		else if (strcmp(i->keyword, "dbname") == 0)
			db = i->val;
	}
	snprintf(t->address, sizeof(t->address), "%s%s%s%s%s",
	         host[0] ? host : "(default)", port[0] ? ":" : "", port,
	         db[0] ? " database " : "", db);
	snprintf(t->host, sizeof(t->host), "%s", host);
	PQconninfoFree(o);

	/* libpq's connect_timeout bounds the attempt (a URI keeps its own). */
	char ci[2048];
	snprintf(ci, sizeof(ci),
	         strstr(cf->store_conninfo, "://") ? "%s" : "connect_timeout=5 %s",
	         cf->store_conninfo);
	double t0 = now_ms();
	PGconn *c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK) {
		char msg[600];
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		for (char *q = msg; *q; q++)
			if (*q == '\n')
				*q = ' ';
		t->reachable = 0;
		add(t, PR_FAIL, "reachable",
		    "cannot connect to the database: %s(check [store] conninfo, that the "
		    "server listens there and that pg_hba.conf lets this host and user "
		    "in)",
		    msg);
		PQfinish(c);
		return;
	}
	t->reachable = 1;
	t->connect_ms = now_ms() - t0;
	add(t, PR_OK, "reachable", "connected in %.1f ms as %s to %s (PostgreSQL %d)",
	    t->connect_ms, PQuser(c), PQdb(c), PQserverVersion(c));
	PGresult *r = PQexec(c, "SELECT value FROM pb_meta WHERE key = 'schema'");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) == 0) {
		add(t, PR_INFO, "schema",
		    "no presbridge schema yet: the first node to start creates it (the "
		    "user needs CREATE on the database)");
		PQclear(r);
		PQfinish(c);
		return;
	}
	add(t, PR_OK, "schema", "schema version %s", db_value(r, 0));
	PQclear(r);
	r = PQexec(c, "SELECT coalesce(holder, ''), epoch, until > clock_timestamp(),"
	              " (SELECT count(*) FROM pb_sub), (SELECT count(*) FROM pb_im)"
	              " FROM pb_lease WHERE id = 1");
	bool valid = strcmp(db_value(r, 2), "t") == 0;
	if (valid)
		add(t, PR_OK, "lease",
		    "node %s is active (epoch %s); %s subscriptions, %s IM "
		    "sessions",
		    db_value(r, 0), db_value(r, 1), db_value(r, 3), db_value(r, 4));
	else
		add(t, PR_INFO, "lease",
		    "no node holds the lease now (%s subscriptions, %s IM sessions wait "
		    "for "
		    "one)",
		    db_value(r, 3), db_value(r, 4));
	PQclear(r);
	r = PQexec(c, "SELECT name, coalesce(address, ''), coalesce(role, ''),"
	              " round(extract(epoch FROM clock_timestamp() - seen)::numeric, 1)"
	              " FROM pb_node ORDER BY name");
	int n = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;
	for (int i = 0; i < n; i++)
		add(t, PR_INFO, "member",
		    "pool member %s at %s: %s, last seen %s s ago%s", PQgetvalue(r, i, 0),
		    PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
		    cf->pool_node && strcmp(PQgetvalue(r, i, 0), cf->pool_node) == 0
		        ? " (this node's name)"
		        : "");
	if (!n)
		add(t, PR_INFO, "member", "no pool member has started yet");
	PQclear(r);
	PQfinish(c);
}

static void print_target(FILE *out, const struct target *t, const char *file)
{
	if (strcmp(t->kind, "database") == 0)
		fprintf(out, "[store] PostgreSQL at %s, node %s (%s:%u)\n", t->address,
		        t->name, file, t->line);
	else if (strcmp(t->kind, "sip-peer") == 0)
		fprintf(out, "[peer %s] %s over %s at %s (%s:%u)\n", t->name, t->host,
		        t->transport, t->address, file, t->line);
	else if (strcmp(t->kind, "xmpp-peer") == 0)
		fprintf(out, "[s2s] XMPP domain %s, server-to-server at %s (%s:%u)\n",
		        t->host, t->address[0] ? t->address : "(not found)", file,
		        t->line);
	else
		fprintf(out, "[xmpp] server %s over %s, name %s (%s:%u)\n", t->address,
		        t->transport, t->host, file, t->line);
	for (int i = 0; i < t->nchecks; i++)
		fprintf(out, "  %s  %s\n", res_word[t->checks[i].res], t->checks[i].text);
	int nf = 0;
	for (int i = 0; i < t->nchecks; i++)
		nf += t->checks[i].res == PR_FAIL;
	if (nf)
		fprintf(out,
		        "  => federation through this target fails: %d problem%s\n\n", nf,
		        nf == 1 ? "" : "s");
	else
		fprintf(out, "  => works\n\n");
}

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

/* prefix "key":"value" (prefix "{" or "," or ",{"). */
static void json_kv(FILE *out, const char *prefix, const char *key, const char *v)
{
	fprintf(out, "%s\"%s\":", prefix, key);
	json_str(out, v);
}

static void json_tri(FILE *out, const char *key, int v)
{
	fprintf(out, ",\"%s\":%s", key, v < 0 ? "null" : v ? "true" : "false");
}

static void json_target(FILE *out, const struct target *t)
{
	json_kv(out, "{", "kind", t->kind);
	json_kv(out, ",", "name", t->name);
	json_kv(out, ",", "host", t->host);
	json_kv(out, ",", "address", t->address);
	json_kv(out, ",", "transport", t->transport);
	fprintf(out, ",\"line\":%u,\"ok\":%s", t->line, failed(t) ? "false" : "true");
	json_tri(out, "reachable", t->reachable);
	if (t->connect_ms >= 0)
		fprintf(out, ",\"connect_ms\":%.2f", t->connect_ms);
	if (t->tls_version[0]) {
		fputs(",\"tls\":{\"version\":", out);
		json_str(out, t->tls_version);
		json_kv(out, ",", "cipher", t->cipher);
		fputs(",\"chain\":[", out);
		for (int i = 0; i < t->nchain; i++) {
			const struct certinfo *c = &t->chain[i];
			json_kv(out, i ? ",{" : "{", "subject", c->subject);
			json_kv(out, ",", "issuer", c->issuer);
			json_kv(out, ",", "not_after", c->not_after);
			json_kv(out, ",", "names", c->names);
			json_kv(out, ",", "ekus", c->ekus);
			fputc('}', out);
		}
		fputc(']', out);
		json_tri(out, "verified", t->verified);
		json_tri(out, "names_match", t->names_match);
		json_tri(out, "eku_server_auth", t->eku_server);
		json_tri(out, "eku_client_auth", t->eku_client);
		json_tri(out, "asked_for_our_certificate", t->cert_requested);
		fputc('}', out);
	}
	json_tri(out, "peer_accepted_our_certificate", t->peer_accepted);
	if (t->alert_rcvd >= 0) {
		fprintf(out, ",\"alert_received\":{\"code\":%d,\"name\":", t->alert_rcvd);
		json_str(out, siptls_alert(t->alert_rcvd)->name);
		fputc('}', out);
	}
	if (t->options_status >= 0) {
		fprintf(out,
		        ",\"options\":{\"status\":%d,\"reason\":", t->options_status);
		json_str(out, t->options_reason);
		fprintf(out, ",\"rtt_ms\":%.2f,\"challenged\":%s}", t->rtt_ms,
		        t->options_status == 401 || t->options_status == 407 ? "true"
		                                                             : "false");
	}
	if (t->handshakes)
		fprintf(out, ",\"component_handshakes\":{\"tried\":%d,\"accepted\":%d}",
		        t->handshakes, t->handshakes_ok);
	fputs(",\"checks\":[", out);
	for (int i = 0; i < t->nchecks; i++) {
		json_kv(out, i ? ",{" : "{", "check", t->checks[i].id);
		json_kv(out, ",", "result", res_json[t->checks[i].res]);
		json_kv(out, ",", "text", t->checks[i].text);
		fputc('}', out);
	}
	fputs("]}", out);
}

int probe_run(const char *config_path, bool json, FILE *out)
{
	struct diag_list dl;
	struct conf *cf = NULL;
	char line[1400];

	/* A peer that closes while the probe writes (a component server refusing
	 * the domain, an S2S peer ending the stream, both over TLS where
	 * SSL_write() uses write()) must give a verdict, not kill the probe. */
	signal(SIGPIPE, SIG_IGN);
	diag_init(&dl);
	int err = conf_load(&cf, config_path, &dl);
	if (!err) {
		siptls_check_conf(cf, &dl);
		xs2s_check_conf(cf, &dl);
	}
	size_t offline_errors = diag_count(&dl, DIAG_ERROR);

	if (!json) {
		fprintf(out, "presbridge %s probe of %s\n\noffline checks:\n", PB_VERSION,
		        config_path);
		for (size_t i = 0; i < dl.n; i++) {
			diag_format(&dl.v[i], line, sizeof(line));
			fprintf(out, "  %s\n", line);
		}
		if (dl.n == 0)
			fprintf(out, "  configuration OK\n");
		fputc('\n', out);
	}
	if (err) {
		if (json) {
			json_kv(out, "{", "config", config_path);
			fputs(",\"ok\":false,\"offline\":[", out);
			for (size_t i = 0; i < dl.n; i++) {
				diag_format(&dl.v[i], line, sizeof(line));
				if (i)
					fputc(',', out);
				json_str(out, line);
			}
			fputs("],\"targets\":[]}\n", out);
		} else {
			fprintf(out,
			        "result: the configuration has errors; nothing probed\n");
		}
		diag_free(&dl);
		return EXIT_FAILURE;
	}

	/* The bridge's own name: the From of OPTIONS, and what a static route
	 * toward the bridge must name. */
	char own[256] = "presbridge.invalid";
	SSL_CTX *sctx = NULL;
	if (cf->cert && cf->key && cf->ca) {
		sctx = client_ctx(cf->cert, cf->key, cf->ca);
		if (sctx) {
			char **nv = NULL;
			size_t nn = 0;
			if (siptls_cert_names(SSL_CTX_get0_certificate(sctx), &nv, &nn,
			                      NULL) == 0 &&
			    nn > 0)
				snprintf(own, sizeof(own), "%s", nv[0]);
			if (!json && nn > 0) {
				siptls_names_str(nv, nn, line, sizeof(line));
				fprintf(
				    out,
				    "the bridge's certificate names %s: a SIP server's "
				    "static "
				    "route toward the bridge must use one of them\n\n",
				    line);
			}
			siptls_names_free(nv, nn);
		}
	}

	char **peers = NULL, **hosted = NULL;
	size_t npeer_domains = 0, nhosted = 0;
	bool s2s = cf->xmpp_transport == CONF_XMPP_S2S;
	if (s2s) {
		xlink_domains(cf, false, &peers, &npeer_domains);
		xlink_domains(cf, true, &hosted, &nhosted);
	}
	bool pg = cf->store_backend == CONF_STORE_PG;
	size_t nt = cf->npeers + (s2s ? (nhosted ? npeer_domains : 0) : 1) + (pg ? 1 : 0);
	struct target *ts = calloc(nt ? nt : 1, sizeof(*ts));
	if (!ts) {
		xlink_strv_free(peers, npeer_domains);
		xlink_strv_free(hosted, nhosted);
		SSL_CTX_free(sctx);
		conf_free(cf);
		diag_free(&dl);
		fprintf(out, "error: out of memory\n");
		return EXIT_FAILURE;
	}
	int nfail = 0;
	for (size_t i = 0; i < nt; i++) {
		if (pg && i == nt - 1)
			probe_db(&ts[i], cf);
		else if (i < cf->npeers)
			probe_peer(&ts[i], cf, &cf->peers[i], sctx, own);
		else if (s2s)
			probe_s2s(&ts[i], cf, peers[i - cf->npeers], hosted[0]);
		else
			probe_xmpp(&ts[i], cf);
		nfail += failed(&ts[i]);
		if (!json) {
			print_target(out, &ts[i], cf->file);
			fflush(out);
		}
	}
	bool ok = offline_errors == 0 && nfail == 0;
	if (json) {
		json_kv(out, "{", "config", config_path);
		fprintf(out, ",\"version\":\"%s\",\"ok\":%s,\"offline\":[", PB_VERSION,
		        ok ? "true" : "false");
		for (size_t i = 0; i < dl.n; i++) {
			diag_format(&dl.v[i], line, sizeof(line));
			if (i)
				fputc(',', out);
			json_str(out, line);
		}
		fputs("],\"targets\":[", out);
		for (size_t i = 0; i < nt; i++) {
			if (i)
				fputc(',', out);
			json_target(out, &ts[i]);
		}
		fputs("]}\n", out);
	} else if (ok) {
		fprintf(out, "result: federation would work (%zu targets probed)\n", nt);
	} else {
		fprintf(out,
		        "result: federation would NOT work: %d of %zu targets fail%s\n",
		        nfail, nt,
		        offline_errors ? ", and the offline checks found errors" : "");
	}
	free(ts);
	xlink_strv_free(peers, npeer_domains);
	xlink_strv_free(hosted, nhosted);
	SSL_CTX_free(sctx);
	conf_free(cf);
	diag_free(&dl);
	return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

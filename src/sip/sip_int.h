/*
 * The SIP leg's internal pieces, shared by its files:
 *   sip_conn.c  listeners, connections, TLS, framing, write buffering
 *   sip_txn.c   client and server transactions (RFC 3261 section 17)
 *   sip_dlg.c   dialogs (RFC 3261 section 12)
 *   sipleg.c    the leg: checks, method dispatch, trust, routing, Lync dialect
 */
#ifndef PB_SIP_INT_H
#define PB_SIP_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "presbridge/conf.h"
#include "presbridge/loop.h"
#include "presbridge/sip.h"
#include "presbridge/sippeer.h"
#include "presbridge/sipt.h"

/* RFC 3261 section 17.1.1.1 timer values, in ms. */
#define SIP_T1          500u
#define SIP_T2          4000u
#define SIP_T4          5000u
#define SIP_TXN_TIMEOUT (64u * SIP_T1)

#define SIP_HASH         1024u
#define SIP_DLG_HASH_MIN 64u /* dialog buckets to start with; doubled as needed */

struct sip_listener {
	struct sipleg *sl;
	int fd;
	enum conf_tp tp;
	struct sockaddr_storage sa;
	socklen_t salen;
	char name[80]; /* "tls:[::1]:5061" for logs */
	unsigned port;
	bool mark; /* reload: still configured */
	struct sip_listener *next;
};

enum sip_conn_state {
	SIP_CONN_CONNECTING,
	SIP_CONN_HANDSHAKE,
	SIP_CONN_OPEN,
};

struct sip_conn {
	struct sipleg *sl;
	uint64_t id;
	int fd;
	enum conf_tp tp;
	bool inbound;
	bool dead;
	enum sip_conn_state state;
	SSL *ssl;
	struct sockaddr_storage ra;
	socklen_t ralen;
	char ip[INET6_ADDRSTRLEN];
	unsigned port;
	char lip[INET6_ADDRSTRLEN]; /* our end */
	unsigned lport;
	char *peer;        /* [peer] section name once identified; NULL: nobody */
	char *expect;      /* outbound TLS: the host the certificate must name */
	char *unknown_why; /* why an inbound connection matched no peer */
	char **names;      /* TLS: the peer certificate's names */
	size_t nnames;
	char who[320]; /* "lync01.sip.test (127.0.0.1:41234)" */
	char *in;
	size_t inlen, incap, discard;
	struct sipt_scan scan; /* of the frame at in[0] (sipt_frame_more) */
	char *out;
	size_t outlen, outoff, outcap;
	bool flush_due; /* written this loop turn: sent by the idle hook (conns_flush) */
	uint64_t last_rx;
	struct loop_timer idle_t, hs_t;
	long verr; /* first certificate verification error, 0 if none */
	char verr_subject[256];
	int alert_sent, alert_rcvd; /* -1: none */
	struct sip_conn *next;
};

/* Where a message goes: a stream connection, or a UDP address. */
struct sip_dest {
	enum conf_tp tp;
	uint64_t conn_id;
	int udp_fd;
	struct sockaddr_storage sa;
	socklen_t salen;
	char peer[64]; /* [peer] section, for another connection if this one is gone */
};

/* Where a message came from. */
struct sip_src {
	struct sip_dest back;  /* how to answer */
	struct sip_conn *conn; /* streams */
	char ip[INET6_ADDRSTRLEN];
	unsigned port;
	char lip[INET6_ADDRSTRLEN]; /* our address it reached */
	unsigned lport;
	const struct conf_peer *peer; /* identified peer (current conf), NULL if none */
	const char *who;              /* for logs */
	const char *unknown_why;      /* why no peer */
};

struct sipleg_srv {
	struct sipleg *sl;
	char *key;
	struct sipm *req;
	struct sip_src src; /* copy; src.conn and pointers not used after the call */
	char who[320];
	char peer[64];
	char to_tag[24];
	bool invite;
	bool final;     /* a final response was sent */
	bool tu;        /* the bridge holds it (not yet answered) */
	bool keepalive; /* answer with ms-keep-alive */
	struct sipd *dlg;
	char *last; /* last response sent */
	size_t last_len;
	int last_code;
	struct loop_timer retx_t, life_t, answer_t;
	unsigned retx_iv;
	struct sipleg_srv *hnext;
};

enum sip_clt_state {
	SIP_CLT_CALLING,
	SIP_CLT_PROCEEDING,
	SIP_CLT_COMPLETED,
};

struct sipleg_clt {
	struct sipleg *sl;
	char *key; /* branch|METHOD */
	char *method;
	bool invite;
	enum sip_clt_state state;
	char *msg;
	size_t len;
	struct sip_dest dest;
	char peer[64];
	sipleg_resp_h *h;
	void *arg;
	struct loop_timer retx_t, timeout_t;
	unsigned retx_iv;
	int fail_status; /* made-up outcome delivered from timeout_t */
	const char *fail_why;
	uint64_t dlg_id; /* in-dialog: the dialog's id (0: none) */
	bool create_dialog;
	/* To build the ACK of a non-2xx and the dialog of a 2xx. */
	char *ruri, *via, *from, *from_uri, *from_tag, *to, *call_id;
	uint32_t cseq;
	char **routes;
	size_t nroutes;
	char *ack; /* the ACK sent for a non-2xx final (resent on retransmissions) */
	size_t ack_len;
	struct sipleg_clt *hnext;
};

/* What an INVITE dialog keeps beyond a subscription's. */
struct sipd_inv {
	/* UAS INVITE: the 2xx, retransmitted until ACK (RFC 3261 section 13.3.1.4) */
	char *ok;
	size_t ok_len;
	uint32_t ok_cseq;
	struct sip_dest ok_dest;
	struct loop_timer ok_t;
	unsigned ok_iv, ok_elapsed;
	/* UAC INVITE: the ACK of the 2xx, resent when the 2xx is retransmitted */
	char *ack;
	size_t ack_len;
	struct sip_dest ack_dest;
};

struct sipd {
	struct sipleg *sl;
	uint64_t id;
	char *call_id, *local_tag, *remote_tag;
	char *local_uri, *remote_uri, *remote_target;
	char **routes;
	size_t nroutes;
	uint32_t local_cseq, remote_cseq;
	bool have_remote_cseq;
	bool invite;
	unsigned nsrv; /* server transactions whose dlg is this (sip_srv_set_dlg) */
	char peer[64];
	void *arg;
	/* INVITE dialogs only (allocated when first needed): a subscription's
	 * dialog does without the 500 bytes. */
	struct sipd_inv *inv;
	struct sipd *next, *prev;
	struct sipd *hnext_cid, *hnext_id; /* chains of sipleg's dialog hash tables */
};

/* Log a line at most once an hour per (key, cause); repeats go to debug. */
struct sip_once {
	char key[160];
	uint64_t at;
	unsigned repeats;
};

#define SIP_ONCE_MAX 256

struct sipleg {
	struct loop *loop;
	const struct conf *cf;
	struct sippeer_tab *peers;
	struct sipleg_handlers h;
	void *arg;
	struct sipleg_limits lim;
	SSL_CTX *tls;
	char *tls_name; /* our certificate's first name: our host over TLS */
	struct sip_listener *ls;
	struct sip_conn *conns;
	struct sip_conn *dead; /* closed, freed by reap_t */
	struct loop_timer reap_t;
	uint64_t next_id;
	struct sipleg_srv *srv[SIP_HASH];
	struct sipleg_clt *clt[SIP_HASH];
	size_t nsrv, nclt;
	struct sipd *dlgs;
	size_t ndlgs;
	/* Dialogs by Call-ID and by id (dlg_nb buckets each, a power of two,
	 * allocated with the first dialog and doubled past two dialogs a bucket):
	 * a bridge holds one per subscription, 100,000 and more, and looks one up
	 * for every in-dialog request and response. */
	struct sipd **dlg_by_cid, **dlg_by_id;
	size_t dlg_nb;
	struct sip_once once[SIP_ONCE_MAX];
	char *udp_buf;
	sipleg_tap_h *tap; /* test seam: NULL in the daemon (sipleg_set_tap) */
	void *tap_arg;
	/* Output held until the state it acknowledges is durable (sipleg_set_gate):
	 * a FIFO of messages, each with the write sequence it waits for. */
	sipleg_gate_h *gate;
	void *gate_arg;
	struct sip_held *held, *held_tail;
	size_t nheld, held_bytes;
};

struct sip_held {
	struct sip_held *next;
	uint64_t need;
	struct sip_dest d;
	size_t len;
	char buf[];
};

/* ---- sip_conn.c ---- */
/* RFC 3261 section 12.1: m's Contact (if any) and every Record-Route value are
 * usable SIP/SIPS URIs, so they may become a dialog's remote target and route
 * set (sipleg.c). */
/* Append the From and To of a request in d (RFC 3261 section 12.2.1.1): the
 * local URI with the local tag; the remote URI with the remote tag, or with
 * none when it is null (section 12.1.1: an RFC 2543 peer sent no From tag). */
struct sbuf;
void sip_dlg_from_to(const struct sipd *d, struct sbuf *from, struct sbuf *to);
bool sip_target_ok(struct sipm *m);
/* From/To URIs, tags and Call-ID of m usable in the requests of a dialog. */
bool sip_names_ok(const struct sipm *m);

int sip_conn_start(struct sipleg *sl);
void sip_conn_stop(struct sipleg *sl);
int sip_conn_reload(struct sipleg *sl, const struct conf *cf, SSL_CTX **new_tls,
                    char **new_name);
int sip_tls_ctx(const struct conf *cf, SSL_CTX **ctxp, char **namep);
/* Send buf on d; -ENOTCONN when the connection is gone and no other serves the peer. */
int sip_send(struct sipleg *sl, const struct sip_dest *d, const char *buf, size_t len);
/* A destination for peer p: an open connection, a new one, or UDP. Fills our
 * address as the peer will see it (host for Via/Contact, port). */
int sip_dest_for_peer(struct sipleg *sl, const struct conf_peer *p, struct sip_dest *d,
                      char *host, size_t hostlen, unsigned *portp);
struct sip_conn *sip_conn_by_id(struct sipleg *sl, uint64_t id);
void sip_conns_reidentify(struct sipleg *sl);

/* ---- sip_txn.c ---- */
unsigned sip_hash(const char *s);
char *sip_srv_key(struct sipm *m, const char *method);
struct sipleg_srv *sip_srv_find(struct sipleg *sl, const char *key);
struct sipleg_srv *sip_srv_new(struct sipleg *sl, char *key, struct sipm *req,
                               const struct sip_src *src);
/* Send a response text for srv and run its state machine. Takes text. */
void sip_srv_respond(struct sipleg_srv *st, int code, char *text, size_t len);
void sip_srv_retransmission(struct sipleg_srv *st);
void sip_srv_ack(struct sipleg_srv *st);
void sip_srv_free(struct sipleg_srv *st);
/* Tie st to dialog d (NULL: to none), counted in d->nsrv so that ending a
 * dialog looks for its transactions only when it has some. */
void sip_srv_set_dlg(struct sipleg_srv *st, struct sipd *d);
struct sipleg_clt *sip_clt_new(struct sipleg *sl);
int sip_clt_send(struct sipleg_clt *c);
void sip_clt_response(struct sipleg *sl, struct sipm *resp);
void sip_clt_conn_failed(struct sipleg *sl, uint64_t conn_id, const char *why);
void sip_clt_free(struct sipleg_clt *c);
void sip_txn_stop(struct sipleg *sl);

/* ---- sip_dlg.c ---- */
struct sipd *sip_dlg_new(struct sipleg *sl, const char *call_id, const char *local_tag,
                         const char *remote_tag, const char *local_uri,
                         const char *remote_uri, const char *remote_target,
                         const char *peer, bool invite);
int sip_dlg_set_routes(struct sipd *d, const char *const *rr, size_t n, bool reverse);
struct sipd *sip_dlg_by_id(struct sipleg *sl, uint64_t id);
/*
 * RFC 3261 section 12.2.1.1: the Request-URI and Route values of a request in
 * dialog d. With no route set or a loose first route (";lr"): the remote
 * target and the route set as it is. With a strict first route: its URI (the
 * part inside the angle brackets) is the Request-URI, the other routes follow
 * and the remote target goes last as "<target>". Returns 0 or -ENOMEM;
 * sip_dlg_route_free() after use.
 */
struct sip_dlg_route {
	const char *ruri;
	const char *const *routes;
	size_t nroutes;
	char *own_ruri, *own_last; /* strict routing's copies */
	const char **own_list;
};
int sip_dlg_route(const struct sipd *d, struct sip_dlg_route *r);
void sip_dlg_route_free(struct sip_dlg_route *r);
void sip_dlg_ok_start(struct sipd *d, const char *msg, size_t len, uint32_t cseq,
                      const struct sip_dest *dest);
void sip_dlg_ack_received(struct sipd *d, uint32_t cseq);
/* d's INVITE-only part, allocated on first use; NULL when out of memory. */
struct sipd_inv *sip_dlg_inv(struct sipd *d);
void sip_dlg_stop(struct sipleg *sl);

/* ---- sipleg.c ---- */
void sip_recv(struct sipleg *sl, struct sip_src *s, const char *buf, size_t len,
              const char *frame_why);
void sip_too_large(struct sipleg *sl, struct sip_src *s, const char *hdr, size_t hdr_len,
                   size_t total);
/* Answer a request from its raw text (it may not have parsed). */
int sip_reply_raw(struct sipleg *sl, const struct sip_src *s, const char *req, size_t len,
                  int code, const char *why);
bool sip_once(struct sipleg *sl, const char *who, const char *cause);
void sip_src_fill_peer(struct sipleg *sl, struct sip_src *s);

#endif

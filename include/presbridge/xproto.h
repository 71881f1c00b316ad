/*
 * xproto - the pure parts of the XEP-0114 component link: the handshake digest,
 * reading the stream id, masking the secret in trace logs, the reconnect
 * schedule and the plain words for TLS and stream failures.
 *
 * Nothing here does I/O or keeps state, so every rule is unit-tested on values.
 */
#ifndef PRESBRIDGE_XPROTO_H
#define PRESBRIDGE_XPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hex characters of a SHA-1 digest. */
#define XPROTO_DIGEST_LEN 40

/* Longest stream id accepted from a server (ejabberd sends about 20 digits). */
#define XPROTO_STREAM_ID_MAX 255

/* Reconnect schedule: the first wait, doubled per failed attempt up to the cap. */
#define XPROTO_BACKOFF_FIRST_MS 1000u
#define XPROTO_BACKOFF_MAX_MS   30000u

/* While failures repeat with the same cause, log one line in this many attempts. */
#define XPROTO_LOG_EVERY 10u

/*
 * XEP-0114 section 3: the handshake is the lower-case hex SHA-1 of the stream id
 * followed by the secret. out receives XPROTO_DIGEST_LEN characters and a NUL.
 * Returns 0, -EINVAL (NULL argument) or -ENOMEM. Callers clear out after use.
 */
int xproto_handshake_digest(const char *stream_id, const char *secret,
                            char out[XPROTO_DIGEST_LEN + 1]);

/*
 * Read the id attribute of a server's stream header from a libstrophe debug log
 * message ("RECV: <stream:stream id=\"...\" ...>"): libstrophe 0.12 keeps the id
 * in a private field and logs the header it received, nothing else shows it.
 * Returns 0 and writes the id to buf, or -ENOENT (not a stream header),
 * -EBADMSG (a header without a usable id), -E2BIG (id longer than size - 1 or
 * than XPROTO_STREAM_ID_MAX).
 */
int xproto_stream_id(const char *logmsg, char *buf, size_t size);

/*
 * Read the operating system's error from a libstrophe debug log message. Its
 * connection events carry no errno (a refused connect reports 0, a TLS connection
 * an SSL_ERROR_* code), while its log says "connection failed, error 111",
 * "error=SSL_ERROR_SYSCALL(5) errno=104 ..." or "Socket closed by remote host.".
 * Returns true and sets *errnop (0 for a clean close by the server) for such a
 * message; false for any other, and for errno 0, EAGAIN or EINTR, which
 * describe no failure.
 */
bool xproto_log_errno(const char *logmsg, int *errnop);

/*
 * A copy of xml[0..len) for a trace log with the content of every <handshake>
 * element replaced by "****", so the digest (a function of the secret) never
 * reaches a log. Caller-owns (free()); NULL on ENOMEM.
 */
char *xproto_mask(const char *xml, size_t len);

/*
 * Milliseconds to wait before reconnect attempt number `attempt` (1 = after the
 * first failure): 1 s doubled per attempt up to 30 s, less a jitter of up to a
 * tenth taken from rnd, so bridges restarted together do not retry in step.
 * attempt 0 is treated as 1.
 */
uint32_t xproto_backoff_ms(unsigned attempt, uint32_t rnd);

/* The next number of a xorshift32 sequence kept in *state (never 0): the
 * back-off's jitter, not security. */
uint32_t xproto_jitter(uint32_t *state);

/*
 * Whether failed attempt number `attempt` deserves a log line at warning level:
 * the first one, any whose cause differs from the previous one's, and every
 * XPROTO_LOG_EVERY-th while the same cause repeats. The rest go to debug.
 */
bool xproto_log_failure(unsigned attempt, bool cause_changed);

/* Plain words for an OpenSSL certificate verification failure. */
struct xproto_certerr {
	int code;          /* X509_V_ERR_*; 0 for the catch-all row */
	const char *words; /* what is wrong, e.g. "certificate signed by an unknown CA" */
	const char *fix;   /* what to do, e.g. "add the XMPP server's CA to [xmpp] ca" */
};

/* The row for an X509_V_ERR_* code; the catch-all row for codes not listed. Static. */
const struct xproto_certerr *xproto_cert_error(int code);

/* The row whose OpenSSL text (X509_verify_cert_error_string) is msg, as
 * libstrophe's certificate failure callback passes only the text. Static. */
const struct xproto_certerr *xproto_cert_error_text(const char *msg);

/* Plain words for a stream error condition (RFC 6120 section 4.9.3) sent by the
 * server, with the fix when the bridge's configuration is the likely cause. */
struct xproto_streamerr {
	const char *cond;  /* element name, e.g. "not-authorized"; NULL: catch-all */
	const char *words; /* what happened; "%s" stands for the component domain */
	const char *fix;   /* "" when there is nothing to configure */
};

/* The row for cond (NULL or unknown: the catch-all row). Static. */
const struct xproto_streamerr *xproto_stream_error(const char *cond);

/* Plain words with the fix for an OpenSSL error text (ERR_error_string) that
 * means the XMPP server and the bridge disagree about TLS on the component
 * port; NULL for other errors. Static. */
const char *xproto_tls_words(const char *openssl_text);

/* What the link says when a server accepts TCP but gives no TLS answer within
 * the limit (printf format: the limit in seconds). */
#define XPROTO_TLS_TIMEOUT_WORDS                                                         \
	"no TLS answer within %u s; the server accepted the connection but does not "    \
	"speak TLS there: set tls: true on its component listener, or [xmpp] tls = "     \
	"off" XPROTO_PROSODY_TLS_HINT

/* Prosody's side of the TLS hints: its component port (component_ports) takes
 * plain TCP only; direct TLS to a component goes through mod_net_multiplex's
 * ssl_ports, or the bridge runs on the same host with tls = off. */
#define XPROTO_PROSODY_TLS_HINT                                                          \
	" (Prosody: component_ports are plain TCP, so [xmpp] tls = off on the same "     \
	"host; for direct TLS load mod_net_multiplex and point [xmpp] server at its "    \
	"ssl_ports)"

/* An OpenSSL error that means the port speaks no TLS (tls = direct). */
#define XPROTO_NO_TLS_WORDS                                                              \
	"the server does not speak TLS on that port; set tls: true on its component "    \
	"listener, or [xmpp] tls = off" XPROTO_PROSODY_TLS_HINT

/* tls = off and the server closed before its stream header: the port may want
 * TLS from the first byte. */
#define XPROTO_NO_STREAM_PLAIN_WORDS                                                     \
	"the server closed the connection before opening a stream: if its component "    \
	"listener has tls: true, set [xmpp] tls = direct (the same for Prosody's "       \
	"mod_net_multiplex ssl_ports)"

#endif

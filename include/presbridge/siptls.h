/*
 * siptls - what the SIP leg knows about TLS certificates and alerts, as tables
 * and pure checks (the connections themselves live in the leg, sip.h).
 *
 * Identity (RFC 5922 section 7.2, RFC 6125 section 6.4): a certificate names
 * the DNS names of its subjectAltName, or its subject CN only when it has no
 * dNSName at all. Names compare case-insensitively and whole: RFC 5922 section
 * 7.2 forbids wildcard matching for SIP domains, so "*.sip.test" never matches
 * (the refusal says so).
 *
 * Extended key usage (RFC 5280 section 4.2.1.12): a peer acting as TLS client
 * must be allowed clientAuth, as server serverAuth. A certificate without the
 * extension is unrestricted, as RFC 5280 and Windows read it; a certificate
 * with the extension must list the purpose itself: anyExtendedKeyUsage alone
 * does not do, because OpenSSL, which runs the handshake, refuses it too. Lync
 * refuses a federation peer whose certificate lacks clientAuth with TLS alert
 * 43, unsupported_certificate.
 */
#ifndef PRESBRIDGE_SIPTLS_H
#define PRESBRIDGE_SIPTLS_H

#include <stdbool.h>
#include <stddef.h>

struct x509_st; /* OpenSSL's X509 */

/* A TLS alert (RFC 8446 section 6, RFC 5246 section 7.2) in plain words. */
struct siptls_alert {
	int code;
	const char *name;          /* "unsupported_certificate" */
	const char *when_received; /* what it likely means when the peer sends it */
	const char *when_sent;     /* ... when the bridge sends it */
};

/* The row for an alert code; an unknown code gets a generic row whose name is
 * "unknown_alert". Never NULL. Static. */
const struct siptls_alert *siptls_alert(int code);

/* Does keyfile hold an unencrypted PEM private key (-ENOKEY if not) that belongs
 * to cert (-EKEYREJECTED if not)? 0 when both hold. For -n's checks of [sip] and
 * [s2s]. */
int siptls_key_check(struct x509_st *cert, const char *keyfile);

/* A certificate verification failure (X509_V_ERR_*) in plain words. */
struct siptls_verr {
	long code;
	const char *what; /* "the certificate has expired" */
	const char *fix;  /* "renew the peer's certificate" */
};

/* The row for an X509_V_ERR_* code; unknown codes get a generic row. Static. */
const struct siptls_verr *siptls_verify_error(long code);

enum siptls_role {
	SIPTLS_CLIENT, /* the certificate's holder opened the connection */
	SIPTLS_SERVER, /* ... accepted it */
};

/* 0 if cert may be used in role (see above), -EPERM if its EKU extension
 * excludes it, -EINVAL for a NULL or unreadable certificate. */
int siptls_eku_check(struct x509_st *cert, enum siptls_role role);

/* The name an EKU is written with in logs: "clientAuth" / "serverAuth". */
const char *siptls_role_eku(enum siptls_role role);

/*
 * The identities cert carries: SAN dNSNames, or the CN when there is none.
 * *namesp: caller-owns (siptls_names_free), lower case. *from_cnp (may be NULL)
 * tells whether the CN was used. Returns 0 (possibly with no name), -EINVAL
 * or -ENOMEM.
 */
int siptls_cert_names(struct x509_st *cert, char ***namesp, size_t *np, bool *from_cnp);
void siptls_names_free(char **names, size_t n);

/* Does certificate identity `name` stand for host? Exact, case-insensitive,
 * a trailing dot ignored; wildcards never match. */
bool siptls_name_match(const char *name, const char *host);

/* Does any of names[0..n) stand for host? */
bool siptls_names_match(char *const *names, size_t n, const char *host);

/* Write names as "a, b, c" into buf (truncated with "..."); "(none)" if n is 0. */
void siptls_names_str(char *const *names, size_t n, char *buf, size_t len);

/* ---- the words of failures (the SIP leg's log and --probe say the same) ---- */

/* What a TLS handshake that failed knew about the failure. */
struct siptls_fail {
	bool inbound;             /* the bridge was the TLS server */
	bool timed_out;           /* the peer said nothing within the limit */
	long verr;                /* first X509_V_ERR_* of the peer's chain; 0: none */
	const char *verr_subject; /* subject of the certificate verr is about */
	int alert_rcvd;           /* alert from the peer, -1: none */
	int alert_sent;           /* alert we sent, -1: none */
	unsigned long ssl_err;    /* ERR_peek_last_error() at the failure */
	int ssl_get_error;        /* SSL_get_error() of the failing call */
};

/* The cause of a failed handshake in plain words with the fix (cause, n bytes)
 * and a short key naming the cause, for logging each cause once (key, kn). */
void siptls_fail_text(const struct siptls_fail *f, char *cause, size_t n, char *key,
                      size_t kn);

/* A TLS alert received from the peer; inbound: the bridge was the TLS server.
 * Alert 43 names the EKU our certificate lacks. */
void siptls_alert_rcvd_text(int alert, bool inbound, char *out, size_t len);

/* A peer certificate (subject or names) that lacks the EKU of role. */
void siptls_eku_text(const char *subject, enum siptls_role role, char *out, size_t len);

/* A peer certificate whose names (as siptls_names_str writes them) do not
 * include host, the host of [peer peer]. */
void siptls_wrong_name_text(const char *names, const char *host, const char *peer,
                            char *out, size_t len);

struct conf;
struct diag_list;

/*
 * Check the TLS material of cf offline, as `presbridge -n` and the SIP leg's
 * start-up do: the bridge's certificate and key (readable, matching, dates,
 * chain to [sip] ca, both serverAuth and clientAuth EKUs, an RSA key of 2048
 * bits or more, a public CA that no longer issues clientAuth) and the trust
 * anchors of [sip] and [xmpp]. Every finding goes to dl with the config file and
 * the line of its key. Returns 0, or -EINVAL if any finding is an error.
 */
int siptls_check_conf(const struct conf *cf, struct diag_list *dl);

#endif

/*
 * xtls - what the component link checks about TLS itself, where libstrophe 0.12
 * cannot be relied on alone:
 *
 *  - libstrophe adds the system trust store to [xmpp] ca (it always calls
 *    SSL_CTX_set_default_verify_paths), and checks the server name with
 *    X509_VERIFY_PARAM_set1_host, which never matches an IP address. After its
 *    handshake the link therefore verifies the server certificate once more,
 *    against [xmpp] ca alone and against [xmpp] name (a DNS name or an IP
 *    address).
 *  - xmpp_conn_tls_start() runs the TLS handshake synchronously and waits for
 *    the server without a time limit. A watchdog (a one-shot POSIX timer whose
 *    SIGALRM handler shuts the socket down) bounds it, so a server that accepts
 *    TCP and then says nothing cannot freeze the bridge's one event loop.
 */
#ifndef PRESBRIDGE_XTLS_H
#define PRESBRIDGE_XTLS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Verify the PEM certificate cert_pem against the trust anchors in cafile only
 * (no system store, no partial chains) and the name it must carry (SAN DNS
 * entries, or SAN IP entries for an IP literal; the subject CN only when the
 * certificate has no SAN, as OpenSSL does). On failure writes plain words with
 * the fix into why (NUL-terminated, truncated to n). Returns 0, -EACCES
 * (certificate refused), -EINVAL (a PEM that does not parse, no cafile) or
 * -ENOENT (cafile unreadable).
 */
int xtls_check_peer(const char *cert_pem, const char *cafile, const char *name, char *why,
                    size_t n);

/* Install the watchdog's SIGALRM handler and timer. Returns 0 or -errno. */
int xtls_watchdog_init(void);
/* Remove them again (restores the previous SIGALRM action). */
void xtls_watchdog_fini(void);
/* Shut fd down (shutdown(2), both directions) if not disarmed within ms. */
void xtls_watchdog_arm(int fd, unsigned ms);
/* Stop the timer. Returns true if it had fired (the socket is shut down). */
bool xtls_watchdog_disarm(void);

#endif

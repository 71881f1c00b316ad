/*
 * xs2s - the server-to-server transport of the XMPP leg (RFC 6120).
 *
 * With [xmpp] transport = s2s the bridge is itself the XMPP server of the
 * XMPP-side names of the `sip` rows of domains.map (the hosted domains) and
 * federates with the domains of the `xmpp` rows (the allow list): no other XMPP
 * server sits in between, which is how Cisco IM&P and Expressway-E federate.
 *
 * One stream per direction (RFC 6120 section 4.5): streams we open carry our
 * stanzas to a peer domain, streams a peer opens carry its stanzas to us. Both
 * run on the daemon's event loop with non-blocking sockets, OpenSSL and an expat
 * stream parser (xstream); peers are found with c-ares (xdns) or a static route.
 * Every stream: STARTTLS (required unless configured), the peer's certificate
 * checked per RFC 6125, then SASL EXTERNAL (XEP-0178) or server dialback
 * (XEP-0220, keys per XEP-0185) in every role, as the configuration allows for
 * that peer domain.
 *
 * xlink.c is the one interface the bridge sees; with transport = s2s its
 * functions call these. Stanzas received are handled exactly as on a component
 * link (xroute_dispatch); stanzas that cannot be delivered because the peer
 * cannot be reached come back to the bridge as error stanzas from the peer
 * domain (remote-server-not-found, remote-server-timeout), as an XMPP server
 * returns them to its own users (RFC 6120 section 10.4.3).
 */
#ifndef PRESBRIDGE_XS2S_H
#define PRESBRIDGE_XS2S_H

#include <stdbool.h>
#include <stddef.h>
#include <strophe.h>

struct conf;
struct loop;
struct xlink_handlers;
struct xs2s;

/* Stanzas waiting per peer domain while its stream is being set up. */
#define XS2S_QUEUE_MAX 1000u
/* Whitespace keep-alive on an otherwise silent outgoing stream (RFC 6120 4.6.1). */
#define XS2S_KEEPALIVE_MS 60000u
/* Time the peer gets to close the stream after our </stream:stream>. */
#define XS2S_CLOSE_MS 2000u

/*
 * Listen on every [s2s] listen address and be ready to open streams. ctx: the
 * libstrophe context stanzas are made in (borrowed, outlives the transport); h
 * copied; l borrowed. The state handler is called (up) for each hosted domain
 * once listening. *sp caller-owns (xs2s_free). Returns 0, -ENOMEM, -EINVAL (no
 * hosted domain, TLS material unusable: logged) or the listener's -errno
 * (logged).
 */
int xs2s_new(struct xs2s **sp, struct loop *l, const struct conf *cf, xmpp_ctx_t *ctx,
             const struct xlink_handlers *h);

/* SIGHUP: unchanged settings keep every stream; otherwise streams are closed and
 * opened again on demand with the new settings (queued stanzas kept for domains
 * that remain). Listeners are kept when their addresses are. cf borrowed. */
int xs2s_apply(struct xs2s *s, const struct conf *cf);

/* Close every stream cleanly, then call done(arg) once from the loop. */
void xs2s_stop(struct xs2s *s, void (*done)(void *arg), void *arg);
void xs2s_free(struct xs2s *s);

/*
 * Send st (borrowed) from a hosted domain to a peer domain: at once on an
 * authenticated stream, else queued while the stream is set up. Returns 0, -EINVAL
 * (no or malformed from/to), -ENOENT (from not hosted), -EPERM (to not on the
 * allow list), -E2BIG, -ENOBUFS (queue full), -ESHUTDOWN or -ENOMEM.
 */
int xs2s_send(struct xs2s *s, xmpp_stanza_t *st);

/* Is the transport serving hosted domain `domain` (NULL: all)? True while it
 * listens: streams to peers are opened on demand. */
bool xs2s_is_up(const struct xs2s *s, const char *domain);

/*
 * Offline checks of the [s2s] TLS material (`presbridge -n`): the certificate
 * names every hosted domain with a DNS subjectAltName, carries serverAuth and
 * clientAuth, matches its key and has not expired. Problems go to dl with
 * file:line. Returns 0 or -EINVAL. Nothing is checked with transport =
 * component.
 */
struct diag_list;
int xs2s_check_conf(const struct conf *cf, struct diag_list *dl);

/*
 * Test seam (fuzzing): bytes as if a peer sent them on a new incoming stream
 * without a socket, fed to the parser `piece` bytes at a time (0: at once), the
 * same state machine and bridge handlers; what the bridge writes on that stream
 * goes to out (domain: the stream's hosted domain, "" before the header). With
 * pre_from/pre_to the stream counts as authenticated for that pair from the
 * start, so stanzas reach the bridge. TLS cannot start there (the stream fails
 * as on a broken handshake). Returns 0 or -ENOMEM.
 */
typedef void(xlink_tap_h)(const char *domain, const char *text, size_t len, void *arg);
int xs2s_feed(struct xs2s *s, const char *bytes, size_t len, size_t piece,
              const char *pre_from, const char *pre_to, xlink_tap_h *out, void *arg);

size_t xs2s_count(const struct xs2s *s);
/* Stanzas waiting for an outgoing stream, over all routes. */
size_t xs2s_queued(const struct xs2s *s);
const char *xs2s_domain(const struct xs2s *s, size_t i);

#endif

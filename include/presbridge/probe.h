/*
 * probe - `presbridge -c FILE --probe`: the offline checks of `-n`, then a live
 * look at every target the bridge federates through, reported per target in
 * plain words (or as JSON for tools):
 *
 *   each [peer]     reachable; TLS version and cipher; the chain it sends, whether
 *                   it verifies against [sip] ca, its names against the peer's
 *                   host, its EKUs (serverAuth to serve the bridge, clientAuth to
 *                   connect to it); whether it asked for and accepted the
 *                   bridge's certificate (or the alert it sent, decoded); an
 *                   OPTIONS round trip, and whether the peer challenged it
 *                   (401/407: the peer must exclude the bridge from
 *                   authentication).
 *   [xmpp] server   reachable; TLS as above against [xmpp] ca and name; the
 *                   XEP-0114 handshake of every component domain.
 *
 * The causes are written by the same functions as the legs' run-time logs
 * (siptls_fail_text, xproto tables), so the probe and the log agree word for
 * word. The probe is synchronous, one target after the other, each step bounded
 * by a timeout; it never changes state at the peers beyond one OPTIONS and one
 * component stream it closes at once.
 */
#ifndef PRESBRIDGE_PROBE_H
#define PRESBRIDGE_PROBE_H

#include <stdbool.h>
#include <stdio.h>

/* Probe the federation configured in config_path; write the report to out
 * (human-readable, or one JSON document when json). Returns the process exit
 * status: 0 only if federation would work (no error offline, no failed check
 * live), 1 otherwise. */
int probe_run(const char *config_path, bool json, FILE *out);

#endif

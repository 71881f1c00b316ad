/*
 * sippeer - who is talking to the bridge: a [peer] of the configuration, or
 * nobody.
 *
 * A TLS peer is recognised by the name its (verified) certificate carries,
 * matched against the `host` of every TLS [peer]; a TCP or UDP peer by its
 * source IP address, matched against the address of every plain [peer]
 * (source ports are ephemeral, so they are never compared). A TLS peer that
 * connects without TLS is nobody: its identity rests on its certificate.
 */
#ifndef PRESBRIDGE_SIPPEER_H
#define PRESBRIDGE_SIPPEER_H

#include <stddef.h>
#include <sys/socket.h>

#include "presbridge/conf.h"

struct sippeer_tab; /* opaque: the peers of one configuration, addresses resolved */

/*
 * Build the table for cf (borrowed: it must outlive the table). Names in a plain
 * peer's address are resolved here, once (getaddrinfo blocks, so this runs at
 * start and reload only); a name that does not resolve is logged and matches no
 * source. *tp: caller-owns (sippeer_tab_free). Returns 0 or -ENOMEM.
 */
int sippeer_tab_new(struct sippeer_tab **tp, const struct conf *cf);
void sippeer_tab_free(struct sippeer_tab *t);

/* The plain (TCP/UDP) peer whose address is sa's IP (IPv4-mapped IPv6 reads as
 * IPv4); NULL if none. Borrowed from the configuration. */
const struct conf_peer *sippeer_by_ip(const struct sippeer_tab *t,
                                      const struct sockaddr *sa);

/* The TLS peer whose host is one of the certificate names names[0..n); NULL if
 * none. Borrowed. */
const struct conf_peer *sippeer_by_names(const struct sippeer_tab *t, char *const *names,
                                         size_t n);

/* The peer of section [peer name]; NULL if none. Borrowed. */
const struct conf_peer *sippeer_by_section(const struct sippeer_tab *t, const char *name);

/* The configuration the table was built for. */
const struct conf *sippeer_conf(const struct sippeer_tab *t);

#endif

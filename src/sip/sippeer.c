#include "presbridge/sippeer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "presbridge/log.h"
#include "presbridge/siptls.h"

/* One IP (v4 as 4 bytes, v6 as 16) a plain peer may send from. */
struct peer_ip {
	const struct conf_peer *p;
	int family;
	unsigned char a[16];
};

struct sippeer_tab {
	const struct conf *cf;
	struct peer_ip *ips;
	size_t nips;
};

/* IPv4-mapped IPv6 (::ffff:a.b.c.d) from a dual-stack socket is IPv4. */
static void norm(const struct sockaddr *sa, int *fam, unsigned char a[16])
{
	memset(a, 0, 16);
	*fam = AF_UNSPEC;
	if (sa->sa_family == AF_INET) {
		*fam = AF_INET;
		memcpy(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *in6 =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(in6)) {
			*fam = AF_INET;
			memcpy(a, in6->s6_addr + 12, 4);
		} else {
			*fam = AF_INET6;
			memcpy(a, in6->s6_addr, 16);
		}
	}
}

static int add_ip(struct sippeer_tab *t, const struct conf_peer *p,
                  const struct sockaddr *sa)
{
	struct peer_ip ip = {.p = p};
	norm(sa, &ip.family, ip.a);
	if (ip.family == AF_UNSPEC)
		return 0;
	for (size_t i = 0; i < t->nips; i++)
		if (t->ips[i].p == p && t->ips[i].family == ip.family &&
		    memcmp(t->ips[i].a, ip.a, 16) == 0)
			return 0;
	struct peer_ip *v = realloc(t->ips, (t->nips + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->ips = v;
	v[t->nips++] = ip;
	return 0;
}

int sippeer_tab_new(struct sippeer_tab **tp, const struct conf *cf)
{
	struct sippeer_tab *t = calloc(1, sizeof(*t));
	int err = 0;
	if (!t)
		return -ENOMEM;
	t->cf = cf;
	for (size_t i = 0; i < cf->npeers && !err; i++) {
		const struct conf_peer *p = &cf->peers[i];
		if (p->transport == CONF_TP_TLS || !p->address.host)
			continue;
		struct addrinfo hints = {.ai_family = AF_UNSPEC,
		                         .ai_socktype = SOCK_DGRAM};
		struct addrinfo *res = NULL;
		int g = getaddrinfo(p->address.host, NULL, &hints, &res);
		if (g != 0) {
			log_warn(
			    "sip",
			    "peer %s: address %s does not resolve (%s); requests from it "
			    "will be refused until a reload resolves it",
			    p->name, p->address.host, gai_strerror(g));
			continue;
		}
		for (struct addrinfo *a = res; a && !err; a = a->ai_next)
			err = add_ip(t, p, a->ai_addr);
		freeaddrinfo(res);
	}
	if (err) {
		sippeer_tab_free(t);
		return err;
	}
	*tp = t;
	return 0;
}

void sippeer_tab_free(struct sippeer_tab *t)
{
	if (!t)
		return;
	free(t->ips);
	free(t);
}

const struct conf_peer *sippeer_by_ip(const struct sippeer_tab *t,
                                      const struct sockaddr *sa)
{
	int fam;
	unsigned char a[16];
	norm(sa, &fam, a);
	for (size_t i = 0; i < t->nips; i++)
		if (t->ips[i].family == fam && memcmp(t->ips[i].a, a, 16) == 0)
			return t->ips[i].p;
	return NULL;
}

const struct conf_peer *sippeer_by_names(const struct sippeer_tab *t, char *const *names,
                                         size_t n)
{
	for (size_t i = 0; i < t->cf->npeers; i++) {
		const struct conf_peer *p = &t->cf->peers[i];
		if (p->transport == CONF_TP_TLS && p->host &&
		    siptls_names_match(names, n, p->host))
			return p;
	}
	return NULL;
}

const struct conf_peer *sippeer_by_section(const struct sippeer_tab *t, const char *name)
{
	for (size_t i = 0; i < t->cf->npeers; i++)
		if (strcmp(t->cf->peers[i].name, name) == 0)
			return &t->cf->peers[i];
	return NULL;
}

const struct conf *sippeer_conf(const struct sippeer_tab *t)
{
	return t->cf;
}

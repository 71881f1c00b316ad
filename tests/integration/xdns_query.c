/*
 * xdns_query: one xdns_resolve on a real loop, for t_xdns.sh and by hand.
 *
 *   xdns_query SERVERS DOMAIN [--no-direct] [--timeout MS]
 *
 * SERVERS: "IP:PORT[,IP:PORT]", or "system" for resolv.conf. --no-direct: do not
 * ask _xmpps-server (XEP-0368). --timeout: the bound of the resolve (default
 * 10000 ms). Output (stdout), then exit 0 whatever the status:
 *   status N NAME            N the errno-style status, NAME ok/ENOENT/...
 *   why TEXT
 *   srv _xmpp-server._tcp PRIO WEIGHT PORT TARGET     one per SRV record seen
 *   target HOST ADDR PORT tls|starttls srv|fallback   one per place to try, in order
 * Exit 2 on bad arguments, 1 if the resolver cannot start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/log.h"
#include "presbridge/loop.h"
#include "presbridge/xdns.h"

static const struct {
	int status;
	const char *name;
} names[] = {
    {0, "ok"},
    {-ENOENT, "ENOENT"},
    {-EHOSTUNREACH, "EHOSTUNREACH"},
    {-ETIMEDOUT, "ETIMEDOUT"},
    {-EIO, "EIO"},
    {-ENOMEM, "ENOMEM"},
};

static const char *status_name(int st)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].status == st)
			return names[i].name;
	return "other";
}

static void on_done(const struct xdns_result *r, void *arg)
{
	struct loop *l = arg;
	printf("status %d %s\n", r->status, status_name(r->status));
	printf("why %s\n", r->why);
	const char *p = r->srv_text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		printf("srv %.*s\n", (int)len, p);
		p += len + (nl ? 1 : 0);
	}
	for (size_t i = 0; i < r->n; i++)
		printf("target %s %s %u %s %s\n", r->v[i].host, r->v[i].addr,
		       r->v[i].port, r->v[i].direct_tls ? "tls" : "starttls",
		       r->v[i].from_srv ? "srv" : "fallback");
	fflush(stdout);
	loop_stop(l);
}

static int usage(void)
{
	fprintf(stderr, "usage: xdns_query SERVERS|system DOMAIN [--no-direct] "
	                "[--timeout MS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	bool direct = true;
	unsigned long timeout = 0;

	if (argc < 3)
		return usage();
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--no-direct") == 0) {
			direct = false;
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			char *end;
			timeout = strtoul(argv[++i], &end, 10);
			if (*end || timeout == 0)
				return usage();
		} else {
			return usage();
		}
	}
	const char *servers = strcmp(argv[1], "system") == 0 ? NULL : argv[1];
	if (getenv("XDNS_DEBUG"))
		log_set_level(LOG_LVL_DEBUG);

	struct loop *l;
	struct xdns *d;
	int e = loop_new(&l);
	if (e) {
		fprintf(stderr, "xdns_query: loop: %s\n", strerror(-e));
		return 1;
	}
	e = xdns_new(&d, l, servers);
	if (e) {
		fprintf(stderr, "xdns_query: resolver: %s\n", strerror(-e));
		loop_free(l);
		return e == -EINVAL ? 2 : 1;
	}
	if (timeout)
		xdns_set_timeout(d, timeout);
	e = xdns_resolve(d, argv[2], direct, on_done, l, NULL);
	if (e) {
		fprintf(stderr, "xdns_query: %s: %s\n", argv[2], strerror(-e));
		xdns_free(d);
		loop_free(l);
		return 2;
	}
	e = loop_run(l);
	xdns_free(d);
	loop_free(l);
	return e ? 1 : 0;
}

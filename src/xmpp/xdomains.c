/*
 * The XMPP-side names of domains.map: the component (or hosted server-to-server)
 * domains are those of the SIP-homed rows, the federated peers those of the
 * XMPP-homed rows.
 */
#include "presbridge/xlink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/addr.h"
#include "presbridge/conf.h"

void xlink_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int xlink_domains(const struct conf *cf, bool sip_homed, char ***vp, size_t *np)
{
	char **v = NULL;
	size_t n = 0;
	enum addr_home home;
	const char *xname;

	*vp = NULL;
	*np = 0;
	if (!cf->addr)
		return -ENOENT;
	/* The rows conf_load() read, in file order; xmpp names are unique there. */
	for (size_t i = 0; addr_map_domain(cf->addr, i, &home, NULL, &xname) == 0; i++) {
		if ((home == ADDR_HOME_SIP) != sip_homed)
			continue;
		char **nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv || !(nv[n] = strdup(xname))) {
			xlink_strv_free(nv ? nv : v, n);
			return -ENOMEM;
		}
		v = nv;
		n++;
	}
	*vp = v;
	*np = n;
	return 0;
}

int xlink_component_domains(const struct conf *cf, char ***vp, size_t *np)
{
	return xlink_domains(cf, true, vp, np);
}

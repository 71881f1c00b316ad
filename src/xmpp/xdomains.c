/*
 * The component domains: the XMPP-side names of the SIP-homed rows of
 * domains.map, one component link each.
 */
#include "presbridge/xlink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/addr.h"
#include "presbridge/conf.h"

int xlink_component_domains(const struct conf *cf, char ***vp, size_t *np)
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
		if (home != ADDR_HOME_SIP)
			continue;
		char **nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv || !(nv[n] = strdup(xname))) {
			if (nv)
				v = nv;
			for (size_t j = 0; j < n; j++)
				free(v[j]);
			free(v);
			return -ENOMEM;
		}
		v = nv;
		n++;
	}
	*vp = v;
	*np = n;
	return 0;
}

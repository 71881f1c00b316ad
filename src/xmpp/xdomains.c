/*
 * The component domains: the XMPP-side names of the SIP-homed rows of
 * domains.map, one component link each.
 */
#include "presbridge/xlink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "presbridge/addr.h"
#include "presbridge/conf.h"
#include "presbridge/maptext.h"

static int read_file(const char *path, char **textp, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int err = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			if (cap > (1u << 22)) {
				err = -EFBIG;
				break;
			}
			cap = cap ? cap * 2 : 8192;
			char *n = realloc(buf, cap);
			if (!n) {
				err = -ENOMEM;
				break;
			}
			buf = n;
		}
		size_t r = fread(buf + len, 1, 4096, f);
		len += r;
		if (r < 4096) {
			if (ferror(f))
				err = -EIO;
			break;
		}
	}
	fclose(f);
	if (err) {
		free(buf);
		return err;
	}
	buf[len] = '\0';
	*textp = buf;
	*lenp = len;
	return 0;
}

int xlink_component_domains(const struct conf *cf, char ***vp, size_t *np)
{
	char *path = NULL, *text = NULL, **v = NULL;
	size_t len = 0, n = 0;
	struct maptext mt;
	struct maptext_row row;
	int err;

	*vp = NULL;
	*np = 0;
	if (!cf->mappings || !cf->addr)
		return -ENOENT;
	/* addr.h answers lookups by name but cannot list its domains: the names come
	 * from the file conf_load() read, and addr decides which are SIP-homed and
	 * what their XMPP names are, so only rows the loaded map holds count. */
	size_t plen = strlen(cf->mappings) + sizeof("/domains.map");
	path = malloc(plen);
	if (!path)
		return -ENOMEM;
	snprintf(path, plen, "%s/domains.map", cf->mappings);
	err = read_file(path, &text, &len);
	if (err)
		goto out;
	maptext_init(&mt, text, len);
	while (maptext_next(&mt, &row)) {
		enum addr_home home;
		const char *xname;
		if (row.too_long || row.n != 3 ||
		    addr_domain_sip(cf->addr, row.f[1], &home, &xname) != 0 ||
		    home != ADDR_HOME_SIP)
			continue;
		bool dup = false;
		for (size_t i = 0; i < n && !dup; i++)
			dup = strcasecmp(v[i], xname) == 0;
		if (dup)
			continue;
		char **nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv || !(nv[n] = strdup(xname))) {
			v = nv ? nv : v;
			err = -ENOMEM;
			goto out;
		}
		v = nv;
		n++;
	}
	*vp = v;
	*np = n;
	v = NULL;
	n = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	free(text);
	free(path);
	return err;
}

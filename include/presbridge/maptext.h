/*
 * maptext - the shared line syntax of the mapping files in mappings/.
 *
 * One record a line; '#' starts a comment anywhere, and so does ';' after white
 * space (the style of the domains.map contract); fields are separated by white
 * space. Lines are numbered from 1 for file:line errors.
 */
#ifndef PRESBRIDGE_MAPTEXT_H
#define PRESBRIDGE_MAPTEXT_H

#include <stddef.h>

#define MAPTEXT_MAX_FIELDS 8
#define MAPTEXT_MAX_LINE   1024

struct maptext {
	const char *p; /* borrowed: the text being read */
	const char *end;
	unsigned line; /* number of the line last returned */
	char buf[MAPTEXT_MAX_LINE + 1];
};

struct maptext_row {
	unsigned line;
	size_t n; /* number of fields; more than MAPTEXT_MAX_FIELDS is reported as
	             too_many */
	int too_many;
	int too_long; /* the line exceeded MAPTEXT_MAX_LINE; fields are not usable */
	char *f[MAPTEXT_MAX_FIELDS]; /* borrowed: point into the reader's buffer */
};

void maptext_init(struct maptext *mt, const char *text, size_t len);

/* Next non-empty record. Returns 1 and fills row, or 0 at the end. The fields stay
 * valid until the next call. */
int maptext_next(struct maptext *mt, struct maptext_row *row);

#endif

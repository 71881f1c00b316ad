#include "presbridge/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void diag_init(struct diag_list *dl)
{
	memset(dl, 0, sizeof(*dl));
}

void diag_free(struct diag_list *dl)
{
	for (size_t i = 0; i < dl->n; i++) {
		free(dl->v[i].file);
		free(dl->v[i].msg);
	}
	free(dl->v);
	diag_init(dl);
}

void diag_add(struct diag_list *dl, enum diag_level level, const char *file,
              unsigned line, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);

	if (dl->n == dl->cap) {
		size_t cap = dl->cap ? dl->cap * 2 : 8;
		struct diag *v = realloc(dl->v, cap * sizeof(*v));
		if (!v) {
			dl->oom = 1;
			return;
		}
		dl->v = v;
		dl->cap = cap;
	}
	struct diag *d = &dl->v[dl->n];
	d->level = level;
	d->line = line;
	d->file = file ? strdup(file) : NULL;
	d->msg = strdup(buf);
	if ((file && !d->file) || !d->msg) {
		free(d->file);
		free(d->msg);
		dl->oom = 1;
		return;
	}
	dl->n++;
}

size_t diag_count(const struct diag_list *dl, enum diag_level level)
{
	size_t c = 0;
	for (size_t i = 0; i < dl->n; i++)
		if (dl->v[i].level == level)
			c++;
	return c;
}

void diag_format(const struct diag *d, char *buf, size_t len)
{
	const char *lvl = d->level == DIAG_ERROR ? "error" : "warning";

	if (d->file && d->line)
		snprintf(buf, len, "%s:%u: %s: %s", d->file, d->line, lvl, d->msg);
	else if (d->file)
		snprintf(buf, len, "%s: %s: %s", d->file, lvl, d->msg);
	else
		snprintf(buf, len, "%s: %s", lvl, d->msg);
}

int diag_has(const struct diag_list *dl, const char *needle)
{
	for (size_t i = 0; i < dl->n; i++)
		if (strstr(dl->v[i].msg, needle))
			return 1;
	return 0;
}

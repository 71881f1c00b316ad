/*
 * diag - a list of problems found while reading configuration or mapping files.
 *
 * Readers never stop at the first problem: they add every problem with the file
 * and line it comes from, so `presbridge -n` can print them all at once.
 */
#ifndef PRESBRIDGE_DIAG_H
#define PRESBRIDGE_DIAG_H

#include <stddef.h>

enum diag_level {
	DIAG_ERROR,
	DIAG_WARN,
};

struct diag {
	enum diag_level level;
	char *file;    /* owned; may be NULL when the problem has no file */
	unsigned line; /* 0 when the problem is about the whole file */
	char *msg;     /* owned */
};

struct diag_list {
	struct diag *v;
	size_t n;
	size_t cap;
	int oom; /* set if a problem could not be recorded */
};

void diag_init(struct diag_list *dl);
void diag_free(struct diag_list *dl);

/* Record a problem; file is copied. Out of memory sets dl->oom. */
void diag_add(struct diag_list *dl, enum diag_level level, const char *file,
              unsigned line, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

size_t diag_count(const struct diag_list *dl, enum diag_level level);

/* Format one problem as "file:line: error: msg" into buf (truncating). */
void diag_format(const struct diag *d, char *buf, size_t len);

/* True if any recorded problem's message contains needle (for tests). */
int diag_has(const struct diag_list *dl, const char *needle);

#endif

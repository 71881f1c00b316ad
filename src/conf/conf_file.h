/*
 * conf_file - reading configuration text for libinih with line numbers.
 *
 * Debian's libinih is built without INI_HANDLER_LINENO, so the handler never
 * learns which line it is on. We feed inih through our own reader instead: it
 * counts lines, reports section headers (even of empty sections) with their line,
 * and turns lines inih would misread into diagnostics of their own.
 */
#ifndef PRESBRIDGE_CONF_FILE_H
#define PRESBRIDGE_CONF_FILE_H

#include <stddef.h>

#include "presbridge/diag.h"

/* Configuration and mapping files larger than this are refused. */
#define CONF_FILE_MAX (16u * 1024 * 1024)

typedef void(conf_section_h)(void *arg, const char *name, unsigned line);

struct conf_file {
	char *text; /* owned */
	size_t len;
	size_t pos;
	unsigned line; /* number of the line last handed to inih */
	int any_section;
	conf_section_h *on_section;
	void *arg;
	struct diag_list *dl; /* borrowed */
	const char *fname;    /* borrowed */
};

/* Read a whole file. *textp: caller-owns, NUL-terminated. -EFBIG above CONF_FILE_MAX,
 * -EILSEQ if it holds a NUL byte, else -errno. */
int conf_file_read(const char *path, char **textp, size_t *lenp);

/* The folder of path ("." if none). Caller-owns; NULL on ENOMEM. */
char *conf_file_dir(const char *path);

int conf_file_open(struct conf_file *cf, const char *path, conf_section_h *on_section,
                   void *arg);
void conf_file_close(struct conf_file *cf);

/* An ini_reader for ini_parse_stream(); stream is a struct conf_file. */
char *conf_file_reader(char *str, int num, void *stream);

#endif

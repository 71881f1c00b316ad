#include "presbridge/maptext.h"

#include <string.h>

void maptext_init(struct maptext *mt, const char *text, size_t len)
{
	mt->p = text;
	mt->end = text + len;
	mt->line = 0;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

int maptext_next(struct maptext *mt, struct maptext_row *row)
{
	while (mt->p < mt->end) {
		const char *nl = memchr(mt->p, '\n', (size_t)(mt->end - mt->p));
		const char *eol = nl ? nl : mt->end;
		size_t len = (size_t)(eol - mt->p);

		mt->line++;
		memset(row, 0, sizeof(*row));
		row->line = mt->line;
		if (len > MAPTEXT_MAX_LINE) {
			row->too_long = 1;
			mt->p = nl ? nl + 1 : mt->end;
			return 1;
		}
		memcpy(mt->buf, mt->p, len);
		mt->buf[len] = '\0';
		mt->p = nl ? nl + 1 : mt->end;

		/* A comment starts at '#', or at ';' that follows white space or opens
		 * the line. */
		for (size_t i = 0; i < len; i++) {
			if (mt->buf[i] == '#' ||
			    (mt->buf[i] == ';' && (i == 0 || is_space(mt->buf[i - 1])))) {
				mt->buf[i] = '\0';
				break;
			}
		}
		char *s = mt->buf;
		while (*s) {
			while (is_space(*s))
				s++;
			if (!*s)
				break;
			char *start = s;
			while (*s && !is_space(*s))
				s++;
			if (*s)
				*s++ = '\0';
			if (row->n < MAPTEXT_MAX_FIELDS)
				row->f[row->n] = start;
			else
				row->too_many = 1;
			row->n++;
		}
		if (row->n > 0)
			return 1;
	}
	return 0;
}

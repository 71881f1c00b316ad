/*
 * sbuf - a growable string used to build documents and stanzas.
 *
 * Errors are sticky: after an allocation failure every call is a no-op and
 * sbuf_take() returns NULL, so builders check once at the end.
 */
#ifndef PRESBRIDGE_SBUF_H
#define PRESBRIDGE_SBUF_H

#include <stddef.h>

struct sbuf {
	char *p;
	size_t len;
	size_t cap;
	int err; /* 0 or -ENOMEM */
};

void sbuf_init(struct sbuf *sb);
void sbuf_free(struct sbuf *sb);
/* Room for n more bytes now, so a builder that knows its size allocates once. */
void sbuf_reserve(struct sbuf *sb, size_t n);
void sbuf_putn(struct sbuf *sb, const char *s, size_t n);
void sbuf_puts(struct sbuf *sb, const char *s);
void sbuf_putc(struct sbuf *sb, char c);
void sbuf_printf(struct sbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append s escaped for XML text and attribute values (& < > " '). */
void sbuf_put_xml(struct sbuf *sb, const char *s);
void sbuf_put_xmln(struct sbuf *sb, const char *s, size_t n);
/* Append s (NULL: "") as a JSON string (RFC 8259 section 7): quotes, backslash
 * and control characters escaped; bytes >= 0x80 pass as they are (UTF-8 in). */
void sbuf_put_json(struct sbuf *sb, const char *s);
/* Caller-owns the returned NUL-terminated string; NULL after any error. */
char *sbuf_take(struct sbuf *sb, size_t *lenp);

#endif

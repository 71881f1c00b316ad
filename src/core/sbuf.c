#include "presbridge/sbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sbuf_init(struct sbuf *sb)
{
	memset(sb, 0, sizeof(*sb));
}

void sbuf_free(struct sbuf *sb)
{
	free(sb->p);
	sbuf_init(sb);
}

static int grow(struct sbuf *sb, size_t extra)
{
	if (sb->err)
		return -1;
	if (extra > SIZE_MAX / 2 - sb->len) {
		sb->err = -ENOMEM;
		return -1;
	}
	size_t need = sb->len + extra + 1;
	if (need <= sb->cap)
		return 0;
	size_t cap = sb->cap ? sb->cap : 128;
	while (cap < need)
		cap *= 2;
	char *p = realloc(sb->p, cap);
	if (!p) {
		sb->err = -ENOMEM;
		return -1;
	}
	sb->p = p;
	sb->cap = cap;
	return 0;
}

void sbuf_reserve(struct sbuf *sb, size_t n)
{
	grow(sb, n);
}

void sbuf_putn(struct sbuf *sb, const char *s, size_t n)
{
	if (grow(sb, n))
		return;
	memcpy(sb->p + sb->len, s, n);
	sb->len += n;
	sb->p[sb->len] = '\0';
}

void sbuf_puts(struct sbuf *sb, const char *s)
{
	sbuf_putn(sb, s, strlen(s));
}

void sbuf_putc(struct sbuf *sb, char c)
{
	sbuf_putn(sb, &c, 1);
}

void sbuf_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	char small[256];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		sb->err = -EINVAL;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		sbuf_putn(sb, small, (size_t)n);
		return;
	}
	if (grow(sb, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(sb->p + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

void sbuf_put_xmln(struct sbuf *sb, const char *s, size_t n)
{
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		const char *rep;
		switch (s[i]) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		default:
			continue;
		}
		sbuf_putn(sb, s + run, i - run);
		sbuf_puts(sb, rep);
		run = i + 1;
	}
	sbuf_putn(sb, s + run, n - run);
}

void sbuf_put_xml(struct sbuf *sb, const char *s)
{
	sbuf_put_xmln(sb, s, strlen(s));
}

char *sbuf_take(struct sbuf *sb, size_t *lenp)
{
	if (sb->err || grow(sb, 0)) {
		sbuf_free(sb);
		return NULL;
	}
	char *p = sb->p;
	p[sb->len] = '\0'; /* grow() reserves the byte but only appends write it */
	if (lenp)
		*lenp = sb->len;
	sbuf_init(sb);
	return p;
}

void sbuf_put_json(struct sbuf *sb, const char *s)
{
	sbuf_putc(sb, '"');
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\') {
			sbuf_putc(sb, '\\');
			sbuf_putc(sb, (char)*p);
		} else if (*p < 0x20 || *p == 0x7f) {
			sbuf_printf(sb, "\\u%04x", *p);
		} else {
			sbuf_putc(sb, (char)*p);
		}
	}
	sbuf_putc(sb, '"');
}

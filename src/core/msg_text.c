#include "presbridge/msg.h"

#include <errno.h>
#include <stdlib.h>

#include "presbridge/sbuf.h"
#include "presbridge/xmlsafe.h"

bool msg_char_allowed(uint32_t cp)
{
	if (cp < 0x20)
		return cp == 0x09 || cp == 0x0a || cp == 0x0d;
	if (cp <= 0xd7ff)
		return true;
	if (cp >= 0xe000 && cp <= 0xfffd)
		return true;
	return cp >= 0x10000 && cp <= 0x10ffff;
}

size_t msg_utf16_len(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			n++;
		if (p[i] >= 0xf0)
			n++; /* outside the BMP: a surrogate pair */
	}
	return n;
}

int msg_check_size(size_t len, const struct msg_limits *lim)
{
	size_t max = lim && lim->max_body ? lim->max_body : MSG_MAX_BODY_DEFAULT;

	return len > max ? -E2BIG : 0;
}

int msg_check_limits(const char *text, size_t len, const struct msg_limits *lim)
{
	struct msg_limits l = lim ? *lim : MSG_LIMITS_DEFAULT;

	if (msg_check_size(len, &l))
		return -E2BIG;
	if (l.max_chars && msg_utf16_len(text, len) > l.max_chars)
		return -E2BIG;
	return 0;
}

/*
 * Copy s[0..len) (valid UTF-8) into out, writing every line break (CRLF, CR,
 * LF, VT, FF) as eol and dropping what msg_char_allowed refuses. Only ASCII
 * controls and U+FFFE/U+FFFF can be refused in valid UTF-8, so multi-byte
 * sequences other than those two are copied as they are.
 */
static void clean(const char *s, size_t len, const char *eol, struct sbuf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		size_t skip;

		if (c == 0xef && len - i >= 3 && p[i + 1] == 0xbf &&
		    (p[i + 2] == 0xbe || p[i + 2] == 0xbf)) {
			skip = 3;
		} else if (c < 0x20 && c != '\t') {
			skip = 1;
		} else {
			continue;
		}
		sbuf_putn(out, s + run, i - run);
		if (c == '\r' && i + 1 < len && p[i + 1] == '\n')
			skip = 2;
		if (c == '\r' || c == '\n' || c == '\v' || c == '\f')
			sbuf_puts(out, eol);
		i += skip - 1;
		run = i + 1;
	}
	sbuf_putn(out, s + run, len - run);
}

static int convert(const char *s, size_t len, const char *eol,
                   const struct msg_limits *lim, char **outp, size_t *lenp)
{
	if (msg_check_size(len, lim))
		return -E2BIG;
	if (!utf8_valid(s, len))
		return -EILSEQ;

	struct sbuf sb;
	sbuf_init(&sb);
	clean(s, len, eol, &sb);
	size_t n = 0;
	char *out = sbuf_take(&sb, &n);
	if (!out)
		return -ENOMEM;
	int err = msg_check_limits(out, n, lim);
	if (err) {
		free(out);
		return err;
	}
	*outp = out;
	if (lenp)
		*lenp = n;
	return 0;
}

int msg_plain_to_text(const char *s, size_t len, const struct msg_limits *lim,
                      char **textp, size_t *lenp)
{
	return convert(s, len, "\n", lim, textp, lenp);
}

int msg_text_to_sip(const char *text, size_t len, const struct msg_limits *lim,
                    char **bodyp, size_t *lenp)
{
	return convert(text, len, "\r\n", lim, bodyp, lenp);
}

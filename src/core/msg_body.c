#include "presbridge/msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* White space inside header values; CR and LF appear in folded MIME headers. */
static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 2045 token characters. */
static bool is_token(char c)
{
	unsigned char u = (unsigned char)c;

	return u > 0x20 && u < 0x7f && !strchr("()<>@,;:\\\"/[]?=", c);
}

static int copy_lower(char *dst, size_t cap, const char *s, size_t n)
{
	if (n == 0 || n >= cap)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++)
		dst[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	dst[n] = '\0';
	return 0;
}

int msg_ctype_parse(const char *s, size_t len, struct msg_ctype *ct)
{
	size_t i = 0;
	struct msg_ctype out;

	while (i < len && is_ws(s[i]))
		i++;
	size_t t0 = i;
	while (i < len && is_token(s[i]))
		i++;
	if (copy_lower(out.type, sizeof(out.type), s + t0, i - t0))
		return -EBADMSG;
	if (i >= len || s[i] != '/')
		return -EBADMSG;
	size_t s0 = ++i;
	while (i < len && is_token(s[i]))
		i++;
	if (copy_lower(out.subtype, sizeof(out.subtype), s + s0, i - s0))
		return -EBADMSG;
	while (i < len && is_ws(s[i]))
		i++;
	if (i < len && s[i] != ';')
		return -EBADMSG;
	*ct = out;
	return 0;
}

int msg_ctype_param(const char *s, size_t len, const char *name, const char **valp,
                    size_t *vlenp)
{
	size_t nlen = strlen(name);
	size_t i = 0;

	/* The media type holds no quotes, so the first ';' starts the parameters. */
	while (i < len && s[i] != ';')
		i++;
	while (i < len) {
		i++; /* the ';' */
		while (i < len && is_ws(s[i]))
			i++;
		size_t a0 = i;
		while (i < len && s[i] != '=' && s[i] != ';' && !is_ws(s[i]))
			i++;
		size_t alen = i - a0;
		while (i < len && is_ws(s[i]))
			i++;
		if (i >= len || s[i] != '=')
			continue;
		i++;
		while (i < len && is_ws(s[i]))
			i++;
		const char *v;
		size_t vlen;
		if (i < len && s[i] == '"') {
			size_t q0 = ++i;
			while (i < len && s[i] != '"' && s[i] != '\\')
				i++;
			if (i >= len || s[i] == '\\')
				return -EBADMSG;
			v = s + q0;
			vlen = i - q0;
			while (i < len && s[i] != ';')
				i++;
		} else {
			size_t v0 = i;
			while (i < len && s[i] != ';')
				i++;
			size_t e = i;
			while (e > v0 && is_ws(s[e - 1]))
				e--;
			v = s + v0;
			vlen = e - v0;
		}
		if (alen == nlen && strncasecmp(s + a0, name, nlen) == 0) {
			*valp = v;
			*vlenp = vlen;
			return 0;
		}
	}
	return -ENOENT;
}

static bool value_is(const char *v, size_t vlen, const char *want)
{
	return strlen(want) == vlen && strncasecmp(v, want, vlen) == 0;
}

static const struct {
	const char *type;
	const char *subtype;
	enum msg_kind kind;
} kinds[] = {
    {"text", "plain", MSG_KIND_TEXT},
    {"text", "html", MSG_KIND_TEXT},
    {"multipart", "alternative", MSG_KIND_TEXT},
    {"multipart", "related", MSG_KIND_TEXT},
    {"application", "im-iscomposing+xml", MSG_KIND_ISCOMPOSING},
    {"application", "xml", MSG_KIND_KBACTIVITY},
};

static enum msg_kind kind_of(const struct msg_ctype *ct)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(ct->type, kinds[i].type) == 0 &&
		    strcmp(ct->subtype, kinds[i].subtype) == 0)
			return kinds[i].kind;
	return MSG_KIND_UNSUPPORTED;
}

enum msg_kind msg_kind_of(const char *content_type)
{
	struct msg_ctype ct;

	if (!content_type || msg_ctype_parse(content_type, strlen(content_type), &ct))
		return MSG_KIND_UNSUPPORTED;
	return kind_of(&ct);
}

/* Charsets whose bytes are read as UTF-8 (ASCII is a subset; a UTF-8 body
 * labelled us-ascii by a careless sender still shows correctly). */
static const char *const charsets[] = {"utf-8", "us-ascii"};

static int charset_ok(const char *ct, size_t ctlen)
{
	const char *v;
	size_t vlen;
	int err = msg_ctype_param(ct, ctlen, "charset", &v, &vlen);

	if (err == -ENOENT)
		return 0;
	if (err)
		return err;
	for (size_t i = 0; i < sizeof(charsets) / sizeof(charsets[0]); i++)
		if (value_is(v, vlen, charsets[i]))
			return 0;
	return -ENOTSUP;
}

/* A single text part: ct[0..ctlen) is its Content-Type value. */
static int text_part(const char *ct, size_t ctlen, const char *body, size_t len,
                     const struct msg_limits *lim, char **textp, size_t *lenp)
{
	struct msg_ctype t;

	if (msg_ctype_parse(ct, ctlen, &t))
		return -EBADMSG;
	int err = charset_ok(ct, ctlen);
	if (err)
		return err;
	if (strcmp(t.type, "text") == 0 && strcmp(t.subtype, "plain") == 0)
		return msg_plain_to_text(body, len, lim, textp, lenp);
	if (strcmp(t.type, "text") == 0 && strcmp(t.subtype, "html") == 0)
		return msg_html_to_text(body, len, lim, textp, lenp);
	return -ENOTSUP;
}

/* ---- multipart (RFC 2046 section 5.1) ------------------------------------- */

#define BOUNDARY_MAX 70

struct part {
	const char *ct; /* Content-Type value; "text/plain" when absent (RFC 2045) */
	size_t ctlen;
	const char *cte; /* Content-Transfer-Encoding value, NULL when absent */
	size_t ctelen;
	const char *body;
	size_t len;
};

static const char *find(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	if (nlen == 0 || hlen < nlen)
		return NULL;
	for (size_t i = 0; i + nlen <= hlen; i++)
		if (hay[i] == needle[0] && memcmp(hay + i, needle, nlen) == 0)
			return hay + i;
	return NULL;
}

/* The value of header name in the header block h[0..hlen), unfolded spans
 * included (the Content-Type reader treats CR and LF as white space). */
static bool header(const char *h, size_t hlen, const char *name, const char **vp,
                   size_t *vlenp)
{
	size_t nlen = strlen(name);
	size_t i = 0;

	while (i < hlen) {
		size_t l0 = i;
		while (i < hlen && h[i] != '\n')
			i++;
		/* Folded continuation lines belong to this header. */
		while (i + 1 < hlen && (h[i + 1] == ' ' || h[i + 1] == '\t')) {
			i++;
			while (i < hlen && h[i] != '\n')
				i++;
		}
		size_t l1 = i;
		if (i < hlen)
			i++;
		if (l1 - l0 > nlen && strncasecmp(h + l0, name, nlen) == 0 &&
		    h[l0 + nlen] == ':') {
			size_t v0 = l0 + nlen + 1;
			while (l1 > v0 && is_ws(h[l1 - 1]))
				l1--;
			while (v0 < l1 && is_ws(h[v0]))
				v0++;
			*vp = h + v0;
			*vlenp = l1 - v0;
			return true;
		}
	}
	return false;
}

static void split_part(const char *p, size_t len, struct part *out)
{
	size_t hlen = len;
	size_t b0 = len;

	if (len >= 1 && p[0] == '\n') {
		hlen = 0;
		b0 = 1;
	} else if (len >= 2 && p[0] == '\r' && p[1] == '\n') {
		hlen = 0;
		b0 = 2;
	} else {
		for (size_t i = 0; i + 1 < len; i++) {
			if (p[i] != '\n')
				continue;
			if (p[i + 1] == '\n') {
				hlen = i;
				b0 = i + 2;
				break;
			}
			if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n') {
				hlen = i;
				b0 = i + 3;
				break;
			}
		}
	}
	out->ct = "text/plain";
	out->ctlen = strlen(out->ct);
	out->cte = NULL;
	out->ctelen = 0;
	header(p, hlen, "Content-Type", &out->ct, &out->ctlen);
	header(p, hlen, "Content-Transfer-Encoding", &out->cte, &out->ctelen);
	out->body = p + b0;
	out->len = len - b0;
}

static bool identity_encoding(const struct part *pt)
{
	static const char *const ok[] = {"7bit", "8bit", "binary"};

	if (!pt->cte)
		return true;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (value_is(pt->cte, pt->ctelen, ok[i]))
			return true;
	return false;
}

/* Preference among the parts of a multipart: the sender's own plain text first
 * (nothing to convert, nothing to lose), then its HTML. */
static const char *const preferred[] = {"plain", "html"};

static int multipart(const char *ct, const char *body, size_t len,
                     const struct msg_limits *lim, char **textp, size_t *lenp)
{
	const char *b;
	size_t blen;
	int err = msg_ctype_param(ct, strlen(ct), "boundary", &b, &blen);

	if (err)
		return -EBADMSG;
	if (blen == 0 || blen > BOUNDARY_MAX)
		return -EBADMSG;

	char delim[BOUNDARY_MAX + 3] = "\n--";
	memcpy(delim + 3, b, blen);
	size_t dlen = blen + 3;

	/* The first delimiter may open the body; later ones follow a line break.
	 * p is the position just after the current delimiter's boundary. */
	const char *end = body + len;
	const char *p;
	if (len >= dlen - 1 && memcmp(body, delim + 1, dlen - 1) == 0) {
		p = body + dlen - 1;
	} else {
		const char *d = find(body, len, delim, dlen);
		if (!d)
			return -EBADMSG;
		p = d + dlen;
	}

	struct part best = {0};
	int best_rank = -1;
	for (;;) {
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			break;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && *p == '\r')
			p++;
		if (p >= end || *p != '\n')
			return -EBADMSG;
		p++;
		const char *next = find(p, (size_t)(end - p), delim, dlen);
		if (!next)
			return -EBADMSG; /* no closing delimiter */
		const char *pend = next;
		if (pend > p && pend[-1] == '\r')
			pend--;

		struct part pt;
		struct msg_ctype t;
		split_part(p, (size_t)(pend - p), &pt);
		if (msg_ctype_parse(pt.ct, pt.ctlen, &t) == 0 &&
		    strcmp(t.type, "text") == 0 && identity_encoding(&pt) &&
		    charset_ok(pt.ct, pt.ctlen) == 0) {
			for (int r = 0;
			     r < (int)(sizeof(preferred) / sizeof(preferred[0])); r++) {
				if (strcmp(t.subtype, preferred[r]) != 0)
					continue;
				if (best_rank < 0 || r < best_rank) {
					best = pt;
					best_rank = r;
				}
			}
		}
		p = next + dlen;
	}
	if (best_rank < 0)
		return -ENOTSUP;
	return text_part(best.ct, best.ctlen, best.body, best.len, lim, textp, lenp);
}

int msg_sip_to_text(const char *content_type, const char *body, size_t len,
                    const struct msg_limits *lim, char **textp, size_t *lenp)
{
	struct msg_ctype ct;

	if (msg_check_size(len, lim))
		return -E2BIG;
	if (!content_type)
		return -EBADMSG;
	if (!body) /* a request without a body (found by fuzz/fuzz_sipbridge.c) */
		body = "";
	size_t ctlen = strlen(content_type);
	if (msg_ctype_parse(content_type, ctlen, &ct))
		return -EBADMSG;
	if (kind_of(&ct) != MSG_KIND_TEXT)
		return -ENOTSUP;
	if (strcmp(ct.type, "multipart") == 0)
		return multipart(content_type, body, len, lim, textp, lenp);
	return text_part(content_type, ctlen, body, len, lim, textp, lenp);
}

/*
 * msg_page - the page-mode mapping rules of RFC 7572 that are not the body:
 * language tags, Subject, thread / Call-ID, and the text of the report a SIP
 * user gets when an XMPP error comes back after the bridge answered 202.
 */
#include "presbridge/msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/sbuf.h"
#include "presbridge/xmlsafe.h"

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* s[0..len) is primary-tag *("-" subtag) (see msg.h). */
static bool lang_ok(const char *s, size_t len)
{
	size_t run = 0;
	bool primary = true;

	if (len == 0 || len >= MSG_LANG_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '-') {
			if (run == 0)
				return false;
			primary = false;
			run = 0;
			continue;
		}
		if (!is_alpha(c) && (primary || !is_digit(c)))
			return false;
		if (++run > 8)
			return false;
	}
	return run > 0;
}

static bool is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int lang_copy(const char *s, size_t len, char out[MSG_LANG_MAX])
{
	while (len && is_lws(*s)) {
		s++;
		len--;
	}
	while (len && is_lws(s[len - 1]))
		len--;
	if (len == 0)
		return -ENOENT;
	if (!lang_ok(s, len))
		return -EBADMSG;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

int msg_lang_from_sip(const char *value, char out[MSG_LANG_MAX])
{
	if (!value)
		return -ENOENT;
	/* RFC 3261 section 20.13: language-tag *(COMMA language-tag). */
	return lang_copy(value, strcspn(value, ","), out);
}

int msg_lang_to_sip(const char *xml_lang, char out[MSG_LANG_MAX])
{
	if (!xml_lang)
		return -ENOENT;
	size_t len = strlen(xml_lang);
	/* A tag with surrounding white space is not a tag: xml:lang holds the
	 * tag alone (XML 1.0 section 2.12). */
	if (len && (is_lws(xml_lang[0]) || is_lws(xml_lang[len - 1])))
		return -EBADMSG;
	return lang_copy(xml_lang, len, out);
}

/* RFC 3261 section 25.1: word = 1*(alphanum / "-" / "." / "!" / "%" / "*" /
 * "_" / "+" / "`" / "'" / "~" / "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE /
 * "/" / "[" / "]" / "?" / "{" / "}"). */
static bool word_char(char c)
{
	return is_alpha(c) || is_digit(c) ||
	       (c && strchr("-.!%*_+`'~()<>:\\\"/[]?{}", c));
}

bool msg_callid_ok(const char *thread)
{
	if (!thread)
		return false;
	size_t len = strlen(thread), at = 0, run = 0;
	if (len == 0 || len > MSG_CALLID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (thread[i] == '@') {
			if (at++ || run == 0)
				return false;
			run = 0;
		} else if (!word_char(thread[i])) {
			return false;
		} else {
			run++;
		}
	}
	return run > 0;
}

int msg_subject_from_sip(const char *value, const struct msg_limits *lim, char **textp)
{
	if (!value)
		return -ENOENT;
	size_t len = strlen(value);
	while (len && is_lws(*value)) {
		value++;
		len--;
	}
	while (len && is_lws(value[len - 1]))
		len--;
	if (len == 0)
		return -ENOENT;
	return msg_plain_to_text(value, len, lim, textp, NULL);
}

int msg_subject_to_sip(const char *text, const struct msg_limits *lim, char **valuep)
{
	if (!text)
		return -ENOENT;
	size_t len = strlen(text);
	if (msg_check_size(len, lim))
		return -E2BIG;
	if (!utf8_valid(text, len))
		return -EILSEQ;

	struct sbuf sb;
	bool space = false;
	sbuf_init(&sb);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
		    c == '\f') {
			space = true;
			continue;
		}
		if (c < 0x20 || c == 0x7f)
			continue;
		if (space && sb.len)
			sbuf_putc(&sb, ' ');
		space = false;
		sbuf_putc(&sb, (char)c);
	}
	size_t n = 0;
	char *out = sbuf_take(&sb, &n);
	if (!out)
		return -ENOMEM;
	if (n == 0) {
		free(out);
		return -ENOENT;
	}
	*valuep = out;
	return 0;
}

int msg_excerpt(const char *text, size_t max_chars, char **outp)
{
	size_t len = text ? strlen(text) : 0;
	if (!utf8_valid(text ? text : "", len))
		return -EILSEQ;

	struct sbuf sb;
	size_t chars = 0, i = 0;
	sbuf_init(&sb);
	for (; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if ((c & 0xc0) != 0x80 && chars++ == max_chars)
			break;
		if (c == '\r' && i + 1 < len && text[i + 1] == '\n')
			continue; /* CRLF is one line break: one space */
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		sbuf_putc(&sb, (char)c);
	}
	if (i < len)
		sbuf_puts(&sb, "...");
	char *out = sbuf_take(&sb, NULL);
	if (!out)
		return -ENOMEM;
	*outp = out;
	return 0;
}

int msg_report_build(const struct msg_report *r, char **bodyp)
{
	char *peer = NULL;
	if (!r || !r->to || !r->excerpt || !r->cond)
		return -EINVAL;
	if (r->text && *r->text) {
		int e = msg_excerpt(r->text, 2 * MSG_EXCERPT_CHARS, &peer);
		if (e)
			return e;
	}

	struct sbuf sb;
	sbuf_init(&sb);
	sbuf_printf(&sb, "Not delivered to %s: ", r->to);
	if (r->sip_code)
		sbuf_printf(&sb, "%d %s ", r->sip_code,
		            r->sip_reason ? r->sip_reason : "");
	sbuf_printf(&sb, "(XMPP %s%s%s).\nYour message: \"%s\"", r->cond,
	            peer ? ": " : "", peer ? peer : "", r->excerpt);
	free(peer);
	char *out = sbuf_take(&sb, NULL);
	if (!out)
		return -ENOMEM;
	*bodyp = out;
	return 0;
}

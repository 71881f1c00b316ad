#include "presbridge/sipt.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "presbridge/sipm.h"

/* Skip SP/HTAB. */
static size_t skip_ws(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

/*
 * Content-Length is digits only (RFC 3261 section 20.14); several values
 * (several headers, or a comma list) must agree, or the body's end is unknown
 * and the stream is lost.
 */
int sipt_content_length(const char *hdr, size_t len, size_t *clp, const char **whyp)
{
	bool found = false;
	size_t cl = 0;

	struct sipm_field fl;
	size_t pos = 0;
	while (sipm_field_next(hdr, len, &pos, &fl)) {
		if (!sipm_field_is(&fl, "Content-Length", 14, 'l'))
			continue;
		const char *v = fl.val;
		size_t vlen = fl.vlen;
		size_t i = 0, val = 0, digits = 0;
		while (i < vlen && v[i] >= '0' && v[i] <= '9') {
			if (val > SIPT_MAX_MSG * (size_t)16) {
				*whyp = "Content-Length is absurdly large";
				return -EBADMSG;
			}
			val = val * 10 + (size_t)(v[i] - '0');
			i++;
			digits++;
		}
		i = skip_ws(v, i, vlen);
		while (i < vlen &&
		       (v[i] == '\r' || v[i] == '\n' || v[i] == ' ' || v[i] == '\t'))
			i++;
		if (!digits || i != vlen) {
			*whyp = "Content-Length is not a number";
			return -EBADMSG;
		}
		if (found && val != cl) {
			*whyp = "two Content-Length headers disagree";
			return -EBADMSG;
		}
		found = true;
		cl = val;
	}
	if (!found)
		return -ENOENT;
	*clp = cl;
	return 0;
}

/* The end of the header is searched for from byte from on: the caller knows
 * buf[0..from+3) holds none. */
static void frame(const char *buf, size_t len, size_t max, size_t from,
                  struct sipt_frame *f)
{
	memset(f, 0, sizeof(*f));
	f->kind = SIPT_FRAME_MORE;
	if (len == 0)
		return;
	/* RFC 5626 section 4.4.1: CRLFCRLF is a ping, a single CRLF its pong;
	 * RFC 3261 section 7.5 lets CRLFs precede a message. A lone CR or CRLF at
	 * the end of the data may still grow into a ping, so wait for more. */
	if (buf[0] == '\r') {
		if (len >= 4 && memcmp(buf, "\r\n\r\n", 4) == 0) {
			f->kind = SIPT_FRAME_PING;
			f->len = 4;
			return;
		}
		if (len >= 2 && buf[1] != '\n') {
			f->kind = SIPT_FRAME_BAD;
			f->why = "a stray carriage return between messages";
			return;
		}
		if (len == 1 || len == 2 || (len == 3 && buf[2] == '\r'))
			return;
		f->kind = SIPT_FRAME_CRLF;
		f->len = 2;
		return;
	}
	if (buf[0] == '\n') {
		/* A bare LF keep-alive, as some clients send. */
		f->kind = SIPT_FRAME_CRLF;
		f->len = 1;
		return;
	}
	size_t lim = len < max ? len : max;
	size_t hdr = from < lim ? sipm_header_len(buf + from, lim - from) : 0;
	if (hdr)
		hdr += from;
	if (!hdr) {
		if (len >= max) {
			f->kind = SIPT_FRAME_BAD;
			f->why = "no end of header within the size limit";
		}
		return;
	}
	size_t cl = 0;
	const char *why = NULL;
	int e = sipt_content_length(buf, hdr, &cl, &why);
	if (e == -EBADMSG) {
		f->kind = SIPT_FRAME_BAD;
		f->why = why;
		return;
	}
	f->hdr_len = hdr;
	if (e == -ENOENT) {
		/* RFC 3261 section 18.3: mandatory on streams. */
		f->kind = SIPT_FRAME_MSG;
		f->len = hdr;
		f->why = "Content-Length is missing (mandatory over TCP and TLS)";
		return;
	}
	f->body_len = cl;
	if (hdr + cl > max) {
		f->kind = SIPT_FRAME_TOO_LARGE;
		f->len = hdr;
		f->why = "the message is larger than the bridge accepts";
		return;
	}
	if (len < hdr + cl)
		return;
	f->kind = SIPT_FRAME_MSG;
	f->len = hdr + cl;
}

void sipt_frame_next(const char *buf, size_t len, size_t max, struct sipt_frame *f)
{
	frame(buf, len, max, 0, f);
}

void sipt_frame_more(const char *buf, size_t len, size_t max, struct sipt_scan *sc,
                     struct sipt_frame *f)
{
	if (sc->need && len < sc->need) {
		memset(f, 0, sizeof(*f));
		f->kind = SIPT_FRAME_MORE;
		return;
	}
	frame(buf, len, max, sc->scanned > 3 ? sc->scanned - 3 : 0, f);
	if (f->kind != SIPT_FRAME_MORE) {
		*sc = (struct sipt_scan){0};
	} else if (f->hdr_len) {
		/* The header is whole; only the body's length matters now. */
		sc->scanned = f->hdr_len - 1;
		sc->need = f->hdr_len + f->body_len;
	} else {
		sc->scanned = len < max ? len : max;
	}
}

int sipt_dgram(const char *buf, size_t len, size_t *skipp, size_t *hdr_lenp,
               size_t *body_lenp, const char **whyp)
{
	size_t i = 0;
	while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
		i++;
	if (i == len)
		return -ENODATA;
	buf += i;
	len -= i;
	size_t hdr = sipm_header_len(buf, len);
	if (!hdr) {
		*whyp = "no end of header in the datagram";
		return -EBADMSG;
	}
	size_t cl;
	int e = sipt_content_length(buf, hdr, &cl, whyp);
	if (e == -EBADMSG)
		return e;
	if (e == -ENOENT)
		cl = len - hdr;
	else if (cl > len - hdr) {
		*whyp = "Content-Length is larger than the datagram's body";
		return -EBADMSG;
	}
	*skipp = i;
	*hdr_lenp = hdr;
	*body_lenp = cl;
	return 0;
}

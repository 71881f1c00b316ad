/*
 * sipt - SIP transport framing: how messages are cut out of a TCP/TLS byte
 * stream and out of UDP datagrams (RFC 3261 section 18.3), and keep-alives
 * (RFC 5626 section 4.4.1: a CRLFCRLF "ping" is answered with a CRLF "pong").
 *
 * Pure functions over buffers; the sockets live in the SIP leg (sip.h).
 */
#ifndef PRESBRIDGE_SIPT_H
#define PRESBRIDGE_SIPT_H

#include <stddef.h>

/* Largest message the bridge accepts, header and body. Lync's own IM limits
 * (msg.h) and presence documents stay well below it. */
#define SIPT_MAX_MSG (64 * 1024)

enum sipt_frame_kind {
	SIPT_FRAME_MORE,      /* nothing complete yet: read more */
	SIPT_FRAME_MSG,       /* a message of len bytes (hdr_len + body_len) */
	SIPT_FRAME_PING,      /* CRLFCRLF keep-alive (len 4): answer with CRLF */
	SIPT_FRAME_CRLF,      /* a lone CRLF (a pong, or padding): skip len bytes */
	SIPT_FRAME_TOO_LARGE, /* header readable but the message is over max:
	                         len = hdr_len; then skip body_len more bytes */
	SIPT_FRAME_BAD,       /* framing lost: close the stream */
};

struct sipt_frame {
	enum sipt_frame_kind kind;
	size_t len;      /* bytes of buf this frame covers */
	size_t hdr_len;  /* MSG, TOO_LARGE: header block, empty line included */
	size_t body_len; /* MSG, TOO_LARGE: Content-Length */
	const char *why; /* BAD, TOO_LARGE, or a MSG without Content-Length:
	                    plain words (static); NULL otherwise */
};

/*
 * Cut the next frame out of the stream data buf[0..len), a message being at
 * most max bytes. Content-Length (or "l") is mandatory on a stream: a message
 * without one is a MSG with body_len 0 and why set (answer 400, the framing
 * holds if it had no body). An unreadable or contradictory Content-Length, or
 * no end of header within max bytes, is BAD.
 */
void sipt_frame_next(const char *buf, size_t len, size_t max, struct sipt_frame *f);

/*
 * sipt_frame_next() for a stream that arrives piecewise, with what earlier
 * calls on the same frame learnt kept in *sc: how many leading bytes hold no
 * end of header, and once the header is whole, how many bytes the message
 * needs. A peer that sends a message a byte at a time then costs one scan of
 * it, not one per byte (quadratic in its size). Zero *sc for a new stream;
 * it is zeroed again whenever a frame other than MORE comes out, and stays
 * valid when the caller moves the unconsumed bytes to the front of its buffer.
 */
struct sipt_scan {
	size_t scanned; /* buf[0..scanned) has no complete end of header */
	size_t need;    /* 0, or the whole message's length, header known */
};
void sipt_frame_more(const char *buf, size_t len, size_t max, struct sipt_scan *sc,
                     struct sipt_frame *f);

/*
 * A datagram buf[0..len): the message starts *skipp bytes in (after CRLFs RFC 3261
 * section 7.5 allows) and has *hdr_lenp header and *body_lenp body bytes. A
 * Content-Length shorter than the rest is honoured (the extra is dropped); a
 * longer one is -EBADMSG (RFC 3261 section 18.3: answer 400); without one the
 * body is the rest of the datagram. Returns 0, -EBADMSG with *whyp set (static),
 * or -ENODATA for a datagram of only CRLFs (a keep-alive).
 */
int sipt_dgram(const char *buf, size_t len, size_t *skipp, size_t *hdr_lenp,
               size_t *body_lenp, const char **whyp);

/*
 * Read the Content-Length of the header block hdr[0..len). Returns 0 with *clp,
 * -ENOENT when absent, or -EBADMSG (not a number, too large, or two that
 * differ) with *whyp (static).
 */
int sipt_content_length(const char *hdr, size_t len, size_t *clp, const char **whyp);

#endif

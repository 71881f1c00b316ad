/*
 * msg - instant-message bodies and typing notifications between SIP and XMPP.
 *
 * SIP -> XMPP: a MESSAGE body (text/plain, text/html, or a multipart/alternative
 * or multipart/related holding one of them) becomes plain UTF-8 text for an XMPP
 * <body/>. XMPP -> SIP: body text becomes text/plain; charset=UTF-8. Lync's first
 * session message rides base64-encoded in the INVITE's Ms-Text-Format header.
 * Typing: RFC 3994 isComposing documents and Lync's KeyboardActivity INFO bodies
 * <-> XEP-0085 chat states.
 *
 * Text rules (both directions):
 *   - input must be valid UTF-8 (no NUL): -EILSEQ otherwise;
 *   - characters XML 1.0 forbids are removed, so the text can always go into a
 *     stanza: C0 controls other than TAB, LF and CR (U+0000-U+0008, U+000B,
 *     U+000C, U+000E-U+001F) and U+FFFE/U+FFFF. Vertical tab and form feed
 *     become a line feed (they are line breaks to the person typing); DEL and
 *     the C1 controls are legal XML and stay;
 *   - SIP -> XMPP line breaks are LF (CRLF and lone CR become LF): XML parsers
 *     turn CRLF into LF anyway, so this is what the XMPP client would see;
 *   - XMPP -> SIP line breaks are CRLF: RFC 2046 section 4.1.1 makes CRLF the
 *     canonical line break of every MIME text type, Lync writes CRLF, and
 *     pidgin-sipe (written against Lync) sends CRLF too.
 *
 * Limits: a body larger than limits.max_body bytes, or a text longer than
 * limits.max_chars characters, is refused with -E2BIG so that the sender gets an
 * error rather than a silently cut message. Measured on OCS 2007 (Lync's
 * predecessor, whose limits Lync kept as far as we know): the client refuses an
 * IM over 8,000 characters and the server a first message carried in the
 * INVITE over 800. Characters are counted as Windows does, in UTF-16 code
 * units. MSG_MAX_CHARS_DEFAULT and MSG_MSTF_MAX_CHARS follow those numbers.
 */
#ifndef PRESBRIDGE_MSG_H
#define PRESBRIDGE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a body as received (before conversion) and of the converted text.
 * Lync's own HTML for an 8,000-character IM stays well below this. */
#define MSG_MAX_BODY_DEFAULT (64 * 1024)
/* Characters (UTF-16 code units) of a converted text: Lync's IM limit. */
#define MSG_MAX_CHARS_DEFAULT 8000
/* Characters of a first message carried in Ms-Text-Format: Lync servers refuse
 * a larger INVITE-borne message, so a longer one must go as a MESSAGE after
 * the session is up. */
#define MSG_MSTF_MAX_CHARS 800

struct msg_limits {
	size_t max_body;  /* bytes; 0 means MSG_MAX_BODY_DEFAULT */
	size_t max_chars; /* UTF-16 code units of the text; 0 means no limit */
};

#define MSG_LIMITS_DEFAULT                                                               \
	((struct msg_limits){MSG_MAX_BODY_DEFAULT, MSG_MAX_CHARS_DEFAULT})

/* The Content-Type of every body the bridge writes toward SIP. */
#define MSG_SIP_CONTENT_TYPE "text/plain; charset=UTF-8"

/* ---- Content-Type values ------------------------------------------------- */

/* RFC 6838 section 4.2 caps type and subtype names at 127 characters. */
struct msg_ctype {
	char type[128];    /* lower-cased, e.g. "text" */
	char subtype[128]; /* lower-cased, e.g. "plain" */
};

/*
 * Parse the media type of a Content-Type (or Ms-Text-Format) value s[0..len).
 * Returns 0, or -EBADMSG when it is not "type/subtype[;params]" or a name is
 * over 127 characters. *ct is set only on success.
 */
int msg_ctype_parse(const char *s, size_t len, struct msg_ctype *ct);

/*
 * Find parameter name (case-insensitive) in the value s[0..len). *valp points
 * into s (borrowed) at the value without its quotes; *vlenp is its length.
 * Returns 0, -ENOENT when absent, or -EBADMSG for an unterminated or escaped
 * quoted string. Unquoted values run to the next ';' (trailing white space
 * dropped), because Lync writes base64 values with '/' and '=' unquoted.
 */
int msg_ctype_param(const char *s, size_t len, const char *name, const char **valp,
                    size_t *vlenp);

/* What a SIP body carries, decided by its Content-Type. */
enum msg_kind {
	MSG_KIND_UNSUPPORTED, /* refuse with 415 (err ERR_BRIDGE_UNSUPPORTED_MEDIA) */
	MSG_KIND_TEXT,        /* text/plain, text/html, multipart/alternative|related */
	MSG_KIND_ISCOMPOSING, /* application/im-iscomposing+xml (RFC 3994) */
	MSG_KIND_KBACTIVITY,  /* application/xml: Lync's KeyboardActivity (INFO) */
};

/* Classify a Content-Type value (NULL or unparsable: MSG_KIND_UNSUPPORTED). */
enum msg_kind msg_kind_of(const char *content_type);

/* ---- Text ------------------------------------------------------------------ */

/* True if code point cp may appear in XML 1.0 character data (see above). */
bool msg_char_allowed(uint32_t cp);

/* Length of valid UTF-8 s[0..len) in UTF-16 code units, as Windows counts. */
size_t msg_utf16_len(const char *s, size_t len);

/* 0, or -E2BIG if len bytes is over lim->max_body (lim NULL: defaults). */
int msg_check_size(size_t len, const struct msg_limits *lim);

/* 0, or -E2BIG if text[0..len) (valid UTF-8) is over lim's byte or character
 * limit (lim NULL: defaults). */
int msg_check_limits(const char *text, size_t len, const struct msg_limits *lim);

/*
 * SIP -> XMPP: turn a SIP body into plain text for an XMPP <body/>.
 * content_type is the Content-Type header value (borrowed); body[0..len) the
 * body (borrowed, need not be NUL-terminated); lim may be NULL for defaults.
 * *textp is caller-owned (free()), NUL-terminated, *lenp its length (may be
 * NULL). The result may be empty (markup only): the caller decides whether an
 * empty message is worth relaying. Returns 0, or:
 *   -ENOTSUP  a media type other than those of MSG_KIND_TEXT, a charset other
 *             than UTF-8/US-ASCII (absent is read as UTF-8: MIME's default,
 *             US-ASCII, is a subset, and SIP clients write UTF-8),
 *             a multipart with no text part, or a Content-Transfer-Encoding
 *             other than 7bit/8bit/binary
 *   -EILSEQ   not valid UTF-8
 *   -EBADMSG  an unreadable Content-Type or multipart body
 *   -E2BIG    body or text over the limits
 *   -ENOMEM
 */
int msg_sip_to_text(const char *content_type, const char *body, size_t len,
                    const struct msg_limits *lim, char **textp, size_t *lenp);

/*
 * The text/plain rules alone: check, clean and normalise line breaks to LF.
 * Same ownership and errors as msg_sip_to_text (no -ENOTSUP).
 */
int msg_plain_to_text(const char *s, size_t len, const struct msg_limits *lim,
                      char **textp, size_t *lenp);

/*
 * text/html -> readable plain text, as a browser would show it. RFC 7572
 * section 7 would have text/html become XHTML-IM (XEP-0071, now Deprecated);
 * the bridge sends the text alone (docs/design-notes.md, "Messages"):
 *   - <script>, <style>, <title>, <iframe>, <noembed>, <noframes> content,
 *     comments, doctypes and processing instructions are dropped;
 *   - white space collapses to one space; <pre> keeps it; spaces and tabs at
 *     the end of a line go (so a line holding only &nbsp; is an empty line);
 *   - <br> is a line break; div, li, tr, table, dt, dd and the other block
 *     elements without a default margin start a new line; p, h1-h6, ul, ol,
 *     dl, blockquote, pre, figure and hr (default CSS margins) are separated by
 *     a blank line. Following the browser's defaults matters: HTML editors
 *     write one <div> per typed line (<div><br></div> for an empty one), so a
 *     blank line per <div>, as a naive converter does, would double-space every
 *     message. Style attributes (margin:0 and the like) are not read;
 *   - runs of line breaks are capped at 64, so a flood of <br> stays small;
 *   - list items get "• " (ul) or "N. " (ol), two spaces of indent per nesting
 *     level, up to 16 levels;
 *   - table cells in a row are separated by a TAB;
 *   - <img alt="..."> shows its alt text (emoticons);
 *   - <a href="U">T</a> shows "T <U>" when U is an http(s)/mailto/sip(s)/tel/
 *     ftp link that says more than T, so the link survives (Lync's own plain
 *     text form of a link); other schemes (javascript:) are not shown;
 *   - character references are decoded: a table of common named entities
 *     (&amp; &lt; &gt; &quot; &apos; &nbsp; ...), numeric ones in decimal and hex
 *     (128-159 as Windows-1252, as HTML5 does; invalid ones as U+FFFD); &nbsp;
 *     becomes a space that is never collapsed; unknown names stay as typed;
 *   - a '<' that does not start a tag is text; an unterminated tag, comment or
 *     attribute quote swallows the rest of the input (as browsers do); a '>'
 *     inside a quoted attribute value does not end the tag.
 * The scanner is hand-written, single pass and bounded by the input (output is
 * at most about ten times the input before the limit check); it never builds a
 * tree, so libxml2's HTML parser and its recovery rules are not involved. Same
 * ownership and errors as msg_plain_to_text.
 */
int msg_html_to_text(const char *html, size_t len, const struct msg_limits *lim,
                     char **textp, size_t *lenp);

/*
 * XMPP -> SIP: body text (valid UTF-8, borrowed) -> a text/plain body with
 * CRLF line breaks, to be sent as MSG_SIP_CONTENT_TYPE. *bodyp is caller-owned
 * (free()), NUL-terminated, *lenp its length (may be NULL). Returns 0, -EILSEQ,
 * -E2BIG (text or resulting body over the limits) or -ENOMEM.
 */
int msg_text_to_sip(const char *text, size_t len, const struct msg_limits *lim,
                    char **bodyp, size_t *lenp);

/* ---- Lync Ms-Text-Format --------------------------------------------------- */

/*
 * Read the first message from an Ms-Text-Format header value (NUL-terminated,
 * borrowed), e.g.
 *   text/plain; charset=UTF-8; msgr=WAAtAE0...AA0ACgA; ms-body=SGVsbG8=
 * ms-body is RFC 4648 base64, padded or not; the decoded bytes are converted as
 * a body of the value's own media type (msg_sip_to_text). msgr (fonts and
 * colours as UTF-16 X-MMS-IM-Format) is ignored: the XMPP side gets plain text.
 * Same ownership as msg_sip_to_text. Returns 0, -ENOENT when there is no
 * ms-body (an INVITE without a first message), -EBADMSG for invalid base64,
 * or the errors of msg_sip_to_text.
 */
int msg_mstf_parse(const char *value, const struct msg_limits *lim, char **textp,
                   size_t *lenp);

/*
 * Build an Ms-Text-Format value carrying text (valid UTF-8, borrowed) as the
 * first message: "text/plain; charset=UTF-8; ms-body=<base64 of the CRLF form>".
 * *valuep is caller-owned (free()), *lenp its length (may be NULL). Returns 0,
 * -EILSEQ, -E2BIG when the text is over MSG_MSTF_MAX_CHARS (send it as a
 * MESSAGE once the session is up instead), or -ENOMEM.
 */
int msg_mstf_build(const char *text, size_t len, char **valuep, size_t *lenp);

/* ---- Typing ------------------------------------------------------------------ */

/* XEP-0085 chat states. */
enum msg_chatstate {
	MSG_CHAT_ACTIVE,
	MSG_CHAT_COMPOSING,
	MSG_CHAT_PAUSED,
	MSG_CHAT_INACTIVE,
	MSG_CHAT_GONE,
};

/* The SIP side's notion of typing: RFC 3994 active/idle, Lync type/idle. */
enum msg_typing {
	MSG_TYPING_IDLE,
	MSG_TYPING_ACTIVE,
};

#define MSG_NS_CHATSTATES            "http://jabber.org/protocol/chatstates"
#define MSG_NS_ISCOMPOSING           "urn:ietf:params:xml:ns:im-iscomposing"
#define MSG_ISCOMPOSING_CONTENT_TYPE "application/im-iscomposing+xml"
#define MSG_KBACTIVITY_CONTENT_TYPE  "application/xml"
/* Refresh written with an active isComposing: XEP-0085 clients send <paused/>
 * within about 30 s, so 60 s is never the thing that clears the indicator
 * unless the XMPP side goes silent. */
#define MSG_ISCOMPOSING_REFRESH_DEFAULT 60

/* Element name of a chat state ("composing"); NULL if out of range. Static. */
const char *msg_chatstate_name(enum msg_chatstate cs);
/* Chat state from an element name. Returns 0 or -EINVAL. */
int msg_chatstate_from_name(const char *name, enum msg_chatstate *csp);

/*
 * SIP typing -> XEP-0085: active -> composing; idle -> paused. RFC 3994 sends
 * an explicit idle only when the user stopped typing without sending (a sent
 * message clears the indicator by itself), which is XEP-0085's <paused/>
 * ("had been composing but now has stopped"), not <active/>.
 */
enum msg_chatstate msg_typing_to_chatstate(enum msg_typing t); /* other t: paused */

/*
 * XEP-0085 -> SIP typing: composing -> active; paused, active, inactive and
 * gone -> idle (none of them is typing). Returns 0 or -EINVAL (out of range).
 * Sending only changes (not every idle) is the caller's business.
 */
int msg_chatstate_to_typing(enum msg_chatstate cs, enum msg_typing *tp);

/*
 * Read an RFC 3994 isComposing document (parsed by xmls_parse, so DTDs,
 * entities and oversize documents are refused). *tp receives the state;
 * *refreshp (may be NULL) the <refresh> seconds, 0 when absent. Returns 0, or
 * -EINVAL (buf NULL), the xmls_parse errors (documents over 4 KiB: -E2BIG),
 * -EBADMSG (wrong root/namespace, missing <state>, a refresh that is not a
 * positive decimal number), or -ENOTSUP (a state other than active/idle).
 * Out-parameters are set only on success.
 */
int msg_iscomposing_parse(const char *buf, size_t len, enum msg_typing *tp,
                          unsigned *refreshp);

/*
 * Write an isComposing document for t; refresh (seconds) is written only for
 * active and only when non-zero. <contenttype> is text/plain. *docp is
 * caller-owned (free()), *lenp (may be NULL) its length. Returns 0, -EINVAL
 * or -ENOMEM.
 */
int msg_iscomposing_build(enum msg_typing t, unsigned refresh, char **docp, size_t *lenp);

/*
 * Read Lync's typing notification: inside an IM session Lync sends INFO with
 * Content-Type application/xml and <KeyboardActivity><status status="type"/>
 * </KeyboardActivity> ("type" is active, "idle" is idle), not RFC 3994.
 * Same errors as msg_iscomposing_parse.
 */
int msg_kbactivity_parse(const char *buf, size_t len, enum msg_typing *tp);

/* Write a KeyboardActivity document for t. Same ownership and errors as
 * msg_iscomposing_build. */
int msg_kbactivity_build(enum msg_typing t, char **docp, size_t *lenp);

/* ---- Page mode (RFC 7572 sections 4-6, RFC 3428) ---------------------------- */

/* RFC 3428 section 8: a MESSAGE outside a session is at most 1300 bytes, the
 * whole request; RFC 7572 section 6 has the XMPP sender get <policy-violation/>
 * for a message that would make a larger one. */
#define MSG_PAGE_MAX_REQUEST 1300

/* A language tag as both sides can carry it: RFC 3261 section 20.13 (primary tag
 * of 1-8 letters, "-", subtags of 1-8 characters). Subtags may hold digits, as
 * BCP 47 (RFC 5646: "es-419") allows and xml:lang carries: RFC 3261's
 * letters-only subtag predates it. Buffers of MSG_LANG_MAX bytes hold any tag
 * these functions accept. */
#define MSG_LANG_MAX 64

/*
 * RFC 7572 section 8 (a MUST, both ways): Content-Language <-> xml:lang.
 * msg_lang_from_sip takes the first tag of a Content-Language value
 * ("de, en" -> "de"; xml:lang holds one); msg_lang_to_sip checks an xml:lang
 * value. Either writes the tag to out[MSG_LANG_MAX]. Returns 0, -ENOENT (NULL
 * or empty: no language; an empty xml:lang means none, XML 1.0 section 2.12),
 * or -EBADMSG (not a tag of the form above, which also keeps a header
 * injection out of the SIP request).
 */
int msg_lang_from_sip(const char *value, char out[MSG_LANG_MAX]);
int msg_lang_to_sip(const char *xml_lang, char out[MSG_LANG_MAX]);

/* The longest <thread/> taken as a Call-ID. */
#define MSG_CALLID_MAX 128

/*
 * RFC 7572 section 4 table 1: <thread/> -> Call-ID. True when thread can be the
 * Call-ID of a page-mode MESSAGE as it is: RFC 3261 section 25.1
 * callid = word ["@" word], at most MSG_CALLID_MAX bytes. Otherwise the SIP
 * leg picks a Call-ID of its own (the thread cannot be carried).
 */
bool msg_callid_ok(const char *thread);

/*
 * SIP Subject (RFC 3261 section 20.36, TEXT-UTF8-TRIM) -> <subject/> text
 * (RFC 7572 section 5 table 2): trimmed, valid UTF-8 and cleaned as a body.
 * *textp is caller-owned. Returns 0, -ENOENT (NULL or only white space),
 * -EILSEQ, -E2BIG (over lim's limits; lim NULL: defaults) or -ENOMEM.
 */
int msg_subject_from_sip(const char *value, const struct msg_limits *lim, char **textp);

/*
 * <subject/> text (valid UTF-8) -> a Subject header value (RFC 7572 section 4
 * table 1): one line (line breaks and tabs become one space, runs of white
 * space one space), trimmed, without the controls a header cannot hold (RFC
 * 3261 section 25.1 TEXT-UTF8char: C0 and DEL). *valuep is caller-owned.
 * Returns 0, -ENOENT (nothing left), -EILSEQ, -E2BIG or -ENOMEM.
 */
int msg_subject_to_sip(const char *text, const struct msg_limits *lim, char **valuep);

/* Characters of the message an undelivered-message report quotes. */
#define MSG_EXCERPT_CHARS 60

/*
 * The first max_chars characters (code points) of text (valid UTF-8, borrowed)
 * on one line: line breaks and tabs become spaces; "..." is appended when text
 * was longer. *outp is caller-owned. Returns 0, -EILSEQ or -ENOMEM.
 */
int msg_excerpt(const char *text, size_t max_chars, char **outp);

/* What an undelivered-message report says (all borrowed; text may be NULL). */
struct msg_report {
	const char *to;      /* the XMPP recipient, e.g. "bob@xmpp.test" */
	const char *excerpt; /* msg_excerpt of the message */
	const char *cond;    /* the XMPP condition, e.g. "item-not-found" */
	int sip_code;        /* what RFC 7247 section 7.1 maps cond to */
	const char *sip_reason;
	const char *text; /* the XMPP error's <text/>, from the peer, or NULL */
};

/*
 * The text of the MESSAGE that tells a SIP user an XMPP error came back for a
 * message the bridge had already answered 202 (RFC 3428 section 7: delivery
 * beyond a gateway is confirmed "via some other mechanism"), e.g.
 *   Not delivered to bob@xmpp.test: 404 Not Found (XMPP item-not-found).
 *   Your message: "hello?"
 * The peer's text is cleaned and cut as an excerpt. *bodyp is caller-owned
 * UTF-8 with LF line breaks (msg_text_to_sip makes the SIP form). Returns 0,
 * -EINVAL (to, excerpt or cond NULL), -EILSEQ or -ENOMEM.
 */
int msg_report_build(const struct msg_report *r, char **bodyp);

#endif

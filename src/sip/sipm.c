#include "presbridge/sipm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <osipparser2/osip_parser.h>
#include <osipparser2/osip_port.h>

#include "presbridge/err.h"
#include "presbridge/log.h"
#include "presbridge/sbuf.h"

struct sipm {
	osip_message_t *osip;
	char *text;
	size_t len, hdr_len;
	char *method, *ruri, *ruri_user, *ruri_host;
	char *from_uri, *from_tag, *to_uri, *to_tag, *call_id;
	char *branch, *sentby, *contact;
	char **rr;
	size_t nrr;
	uint32_t cseq;
	int status;
	char **cache; /* unfolded header values handed out by sipm_header */
	size_t ncache;
	struct sipm_field *fields; /* the header fields, found once (find_field) */
	size_t nfields;
	bool indexed;
};

/* RFC 3261 section 7.3.3 and the registry's later compact forms. */
static const struct {
	const char *name;
	char compact;
} compact_forms[] = {
    {"Accept-Contact", 'a'},
    {"Allow-Events", 'u'},
    {"Call-ID", 'i'},
    {"Contact", 'm'},
    {"Content-Encoding", 'e'},
    {"Content-Length", 'l'},
    {"Content-Type", 'c'},
    {"Event", 'o'},
    {"From", 'f'},
    {"Identity", 'y'},
    {"Refer-To", 'r'},
    {"Referred-By", 'b'},
    {"Reject-Contact", 'j'},
    {"Request-Disposition", 'd'},
    {"Session-Expires", 'x'},
    {"Subject", 's'},
    {"Supported", 'k'},
    {"To", 't'},
    {"Via", 'v'},
};

static char compact_of(const char *name)
{
	char c0 = (char)(name[0] | 0x20);
	for (size_t i = 0; i < sizeof(compact_forms) / sizeof(compact_forms[0]); i++)
		if ((compact_forms[i].name[0] | 0x20) == c0 &&
		    strcasecmp(compact_forms[i].name, name) == 0)
			return compact_forms[i].compact;
	return 0;
}

size_t sipm_header_len(const char *buf, size_t len)
{
	for (const char *p = buf, *end = buf + len;
	     len >= 4 && (p = memchr(p, '\r', (size_t)(end - p) - 3)) != NULL; p++)
		if (p[1] == '\n' && p[2] == '\r' && p[3] == '\n')
			return (size_t)(p - buf) + 4;
	return 0;
}

/* End of the line starting at i: index of its first CR or LF, or len. */
static size_t line_end(const char *s, size_t i, size_t len)
{
	const char *lf = memchr(s + i, '\n', len - i);
	size_t e = lf ? (size_t)(lf - s) : len;
	const char *cr = memchr(s + i, '\r', e - i);
	return cr ? (size_t)(cr - s) : e;
}

static size_t next_line(const char *s, size_t i, size_t len)
{
	i = line_end(s, i, len);
	if (i < len && s[i] == '\r')
		i++;
	if (i < len && s[i] == '\n')
		i++;
	return i;
}

bool sipm_field_next(const char *hdr, size_t len, size_t *posp, struct sipm_field *f)
{
	size_t i = *posp ? *posp : next_line(hdr, 0, len);

	while (i < len) {
		size_t eol = line_end(hdr, i, len);
		if (eol == i)
			break; /* the empty line ends the header */
		if (hdr[i] == ' ' || hdr[i] == '\t') {
			i = next_line(hdr, i, len);
			continue;
		}
		size_t n = i;
		while (n < eol && hdr[n] != ':' && hdr[n] != ' ' && hdr[n] != '\t')
			n++;
		size_t c = n;
		while (c < eol && (hdr[c] == ' ' || hdr[c] == '\t'))
			c++;
		size_t end = next_line(hdr, i, len);
		/* RFC 3261 section 7.3.1: continuation lines start with white space. */
		while (end < len && (hdr[end] == ' ' || hdr[end] == '\t'))
			end = next_line(hdr, end, len);
		if (c < eol && hdr[c] == ':') {
			size_t v = c + 1;
			while (v < end && (hdr[v] == ' ' || hdr[v] == '\t'))
				v++;
			size_t e = end;
			while (e > v && (hdr[e - 1] == '\r' || hdr[e - 1] == '\n' ||
			                 hdr[e - 1] == ' ' || hdr[e - 1] == '\t'))
				e--;
			f->name = hdr + i;
			f->nlen = n - i;
			f->val = hdr + v;
			f->vlen = e - v;
			*posp = end;
			return true;
		}
		i = end; /* no colon: not a header field */
	}
	*posp = len;
	return false;
}

bool sipm_field_is(const struct sipm_field *f, const char *name, size_t nlen, char cf)
{
	return (f->nlen == nlen && strncasecmp(f->name, name, nlen) == 0) ||
	       (cf && f->nlen == 1 && (f->name[0] | 0x20) == cf);
}

int sipm_raw_header(const char *hdr, size_t len, const char *name, unsigned idx,
                    const char **vp, size_t *vlenp)
{
	size_t nlen = strlen(name), pos = 0;
	char cf = compact_of(name);
	struct sipm_field f;
	unsigned seen = 0;

	while (sipm_field_next(hdr, len, &pos, &f)) {
		if (sipm_field_is(&f, name, nlen, cf) && seen++ == idx) {
			*vp = f.val;
			*vlenp = f.vlen;
			return 0;
		}
	}
	return -ENOENT;
}

/* ---- parsing ---------------------------------------------------------- */

static void osip_trace_sink(const char *fi, int li, osip_trace_level_t level,
                            const char *chfr, va_list ap)
{
	char buf[512];
	(void)level;
	if (!log_enabled(LOG_LVL_TRACE))
		return;
	vsnprintf(buf, sizeof(buf), chfr, ap);
	buf[strcspn(buf, "\r\n")] = '\0';
	log_trace("sip", "libosip2 %s:%d: %s", fi, li, buf);
}

static void parser_once(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	/* libosip2 prints parse errors on stderr by default: a peer's garbage
	 * would flood the log. Its words go to trace level instead. */
	osip_trace_initialize_func(TRACE_LEVEL7, osip_trace_sink);
	for (int lvl = TRACE_LEVEL0; lvl < END_TRACE_LEVEL; lvl++)
		osip_trace_enable_level((osip_trace_level_t)lvl);
	parser_init();
}

void sipm_free(struct sipm *m)
{
	if (!m)
		return;
	if (m->osip)
		osip_message_free(m->osip);
	free(m->text);
	char **strs[] = {&m->method,   &m->ruri,     &m->ruri_user, &m->ruri_host,
	                 &m->from_uri, &m->from_tag, &m->to_uri,    &m->to_tag,
	                 &m->call_id,  &m->branch,   &m->sentby,    &m->contact};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	for (size_t i = 0; i < m->nrr; i++)
		free(m->rr[i]);
	free(m->rr);
	for (size_t i = 0; i < m->ncache; i++)
		free(m->cache[i]);
	free(m->cache);
	free(m->fields);
	free(m);
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

static void lower(char *s)
{
	for (; s && *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s + 32);
}

static char *uri_str(const osip_uri_t *u)
{
	char *s = NULL;
	if (!u || osip_uri_to_str(u, &s) != 0)
		return NULL;
	return s;
}

static char *tag_of(osip_from_t *f)
{
	osip_generic_param_t *tag = NULL;
	osip_from_get_tag(f, &tag);
	return dup_or_empty(tag && tag->gvalue ? tag->gvalue : NULL);
}

/* CSeq numbers are 32-bit unsigned, below 2^31 (RFC 3261 section 8.1.1.5). */
static int cseq_number(const char *s, uint32_t *out)
{
	unsigned long v = 0;
	if (!s || !*s)
		return -EBADMSG;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EBADMSG;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v >= 0x80000000ul)
			return -EBADMSG;
	}
	*out = (uint32_t)v;
	return 0;
}

static int fill(struct sipm *m, const char **whyp)
{
	osip_message_t *o = m->osip;
	osip_via_t *via = osip_list_get(&o->vias, 0);

	if (!via || !via->host || !via->protocol) {
		*whyp = "no Via header";
		return -EBADMSG;
	}
	if (!o->from || !o->from->url) {
		*whyp = "no readable From header";
		return -EBADMSG;
	}
	if (!o->to || !o->to->url) {
		*whyp = "no readable To header";
		return -EBADMSG;
	}
	if (!o->call_id || !o->call_id->number) {
		*whyp = "no Call-ID header";
		return -EBADMSG;
	}
	if (!o->cseq || !o->cseq->method || cseq_number(o->cseq->number, &m->cseq)) {
		*whyp = "no readable CSeq header";
		return -EBADMSG;
	}
	if (MSG_IS_REQUEST(o)) {
		if (!o->req_uri || !o->req_uri->host || !o->sip_method) {
			*whyp = "no readable Request-URI";
			return -EBADMSG;
		}
		if (strcmp(o->sip_method, o->cseq->method) != 0) {
			*whyp = "the CSeq method differs from the request method";
			return -EBADMSG;
		}
		m->method = strdup(o->sip_method);
		m->ruri = uri_str(o->req_uri);
		m->ruri_user = dup_or_empty(o->req_uri->username);
		m->ruri_host = dup_or_empty(o->req_uri->host);
		lower(m->ruri_host);
	} else {
		m->status = o->status_code;
		if (m->status < 100 || m->status > 699) {
			*whyp = "a status code outside 100-699";
			return -EBADMSG;
		}
		m->method = strdup(o->cseq->method);
		m->ruri = strdup("");
		m->ruri_user = strdup("");
		m->ruri_host = strdup("");
	}
	m->from_uri = uri_str(o->from->url);
	m->to_uri = uri_str(o->to->url);
	m->from_tag = tag_of(o->from);
	m->to_tag = tag_of(o->to);
	m->call_id = NULL;
	osip_call_id_to_str(o->call_id, &m->call_id);

	osip_generic_param_t *br = NULL;
	osip_via_param_get_byname(via, "branch", &br);
	m->branch = dup_or_empty(br && br->gvalue ? br->gvalue : NULL);
	const char *port = via->port;
	if (!port || !*port)
		port = strcasecmp(via->protocol, "TLS") == 0 ? "5061" : "5060";
	size_t sl = strlen(via->host) + strlen(port) + 4;
	m->sentby = malloc(sl);
	if (m->sentby) {
		if (strchr(via->host, ':'))
			snprintf(m->sentby, sl, "[%s]:%s", via->host, port);
		else
			snprintf(m->sentby, sl, "%s:%s", via->host, port);
		lower(m->sentby);
	}
	osip_contact_t *ct = osip_list_get(&o->contacts, 0);
	m->contact = ct && ct->url ? uri_str(ct->url) : strdup("");

	int n = osip_list_size(&o->record_routes);
	if (n > 0) {
		m->rr = calloc((size_t)n, sizeof(*m->rr));
		if (!m->rr)
			return -ENOMEM;
		for (int i = 0; i < n; i++) {
			osip_record_route_t *r = osip_list_get(&o->record_routes, i);
			char *s = NULL;
			if (!r || osip_record_route_to_str(r, &s) != 0 || !s)
				return -ENOMEM;
			m->rr[m->nrr++] = s;
		}
	}
	if (!m->method || !m->ruri || !m->ruri_user || !m->ruri_host || !m->from_uri ||
	    !m->to_uri || !m->from_tag || !m->to_tag || !m->call_id || !m->branch ||
	    !m->sentby || !m->contact)
		return -ENOMEM;
	return 0;
}

/* RFC 3261 section 25.1: quoted-pair = "\\" (%x00-09 / %x0B-0C / %x0E-7F), so
 * a NUL may stand in a header only escaped inside a quoted string (RFC 4475
 * section 3.1.1.2). Returns how many such NULs h[0..n) holds, or -1 for a NUL
 * anywhere else. */
static int quoted_nuls(const char *h, size_t n)
{
	bool q = false;
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		if (h[i] == '\0')
			return -1;
		if (q && h[i] == '\\' && i + 1 < n) {
			if (h[++i] == '\0')
				count++;
		} else if (h[i] == '"') {
			q = !q;
		} else if (h[i] == '\n') {
			q = false; /* a quoted string ends on its line */
		}
	}
	return count;
}

int sipm_parse(struct sipm **mp, const char *buf, size_t len, const char **whyp)
{
	const char *why_local = NULL;
	const char **why = whyp ? whyp : &why_local;
	struct sipm *m;
	char *copy = NULL;
	const char *ptext = buf;
	int err;

	parser_once();
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->text = malloc(len + 1);
	if (!m->text) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(m->text, buf, len);
	m->text[len] = '\0';
	m->len = len;
	m->hdr_len = sipm_header_len(buf, len);
	int nuls = m->hdr_len ? quoted_nuls(buf, m->hdr_len) : 0;
	if (!m->hdr_len || nuls < 0) {
		*why = m->hdr_len ? "a NUL byte in the header" : "no end of header";
		err = -EBADMSG;
		goto out;
	}
	if (nuls > 0) {
		/* libosip2 reads C strings: it sees a space where the escaped NUL
		 * is; m->text (what is echoed and read by sipm_header) keeps it. */
		copy = malloc(len);
		if (!copy) {
			err = -ENOMEM;
			goto out;
		}
		memcpy(copy, buf, len);
		for (size_t i = 0; i < m->hdr_len; i++)
			if (copy[i] == '\0')
				copy[i] = ' ';
		ptext = copy;
	}
	if (osip_message_init(&m->osip) != 0) {
		err = -ENOMEM;
		goto out;
	}
	if (osip_message_parse(m->osip, ptext, len) != 0) {
		*why = "the start line or a header cannot be parsed";
		err = -EBADMSG;
		goto out;
	}
	err = fill(m, why);
out:
	free(copy);
	if (err) {
		sipm_free(m);
		return err;
	}
	*mp = m;
	return 0;
}

bool sipm_is_request(const struct sipm *m)
{
	return m->status == 0;
}

const char *sipm_method(const struct sipm *m)
{
	return m->method;
}

int sipm_status(const struct sipm *m)
{
	return m->status;
}

const char *sipm_ruri(const struct sipm *m)
{
	return m->ruri;
}

const char *sipm_ruri_user(const struct sipm *m)
{
	return m->ruri_user;
}

const char *sipm_ruri_host(const struct sipm *m)
{
	return m->ruri_host;
}

const char *sipm_from_uri(const struct sipm *m)
{
	return m->from_uri;
}

const char *sipm_from_tag(const struct sipm *m)
{
	return m->from_tag;
}

const char *sipm_to_uri(const struct sipm *m)
{
	return m->to_uri;
}

const char *sipm_to_tag(const struct sipm *m)
{
	return m->to_tag;
}

const char *sipm_call_id(const struct sipm *m)
{
	return m->call_id;
}

uint32_t sipm_cseq(const struct sipm *m)
{
	return m->cseq;
}

const char *sipm_via_branch(const struct sipm *m)
{
	return m->branch;
}

const char *sipm_via_sentby(const struct sipm *m)
{
	return m->sentby;
}

const char *sipm_contact_uri(const struct sipm *m)
{
	return m->contact;
}

const char *const *sipm_record_routes(const struct sipm *m, size_t *np)
{
	*np = m->nrr;
	return (const char *const *)m->rr;
}

const char *sipm_text(const struct sipm *m, size_t *lenp)
{
	if (lenp)
		*lenp = m->len;
	return m->text;
}

/* The idx-th field called name: from the index of m's fields, built on the
 * first look-up (one pass over the header instead of one per look-up). */
static int find_field(struct sipm *m, const char *name, unsigned idx, const char **vp,
                      size_t *vlenp)
{
	if (!m->indexed) {
		size_t pos = 0, cap = 0;
		struct sipm_field f;
		while (sipm_field_next(m->text, m->hdr_len, &pos, &f)) {
			if (m->nfields == cap) {
				cap = cap ? 2 * cap : 24;
				struct sipm_field *n =
				    realloc(m->fields, cap * sizeof(*n));
				if (!n) { /* no index: scan the text */
					m->nfields = 0;
					return sipm_raw_header(m->text, m->hdr_len, name,
					                       idx, vp, vlenp);
				}
				m->fields = n;
			}
			m->fields[m->nfields++] = f;
		}
		m->indexed = true;
	}
	size_t nlen = strlen(name);
	char cf = compact_of(name);
	unsigned seen = 0;
	for (size_t i = 0; i < m->nfields; i++) {
		if (sipm_field_is(&m->fields[i], name, nlen, cf) && seen++ == idx) {
			*vp = m->fields[i].val;
			*vlenp = m->fields[i].vlen;
			return 0;
		}
	}
	return -ENOENT;
}

const char *sipm_header(struct sipm *m, const char *name, unsigned idx)
{
	const char *v;
	size_t vlen;
	if (find_field(m, name, idx, &v, &vlen) != 0)
		return NULL;
	char **nc = realloc(m->cache, (m->ncache + 1) * sizeof(*nc));
	if (!nc)
		return NULL;
	m->cache = nc;
	char *out = malloc(vlen + 1);
	if (!out)
		return NULL;
	/* Unfold: CRLF plus white space becomes one space (RFC 3261 section 7.3.1). */
	size_t o = 0;
	for (size_t i = 0; i < vlen; i++) {
		if (v[i] == '\r' || v[i] == '\n') {
			while (i + 1 < vlen && (v[i + 1] == '\r' || v[i + 1] == '\n' ||
			                        v[i + 1] == ' ' || v[i + 1] == '\t'))
				i++;
			out[o++] = ' ';
			continue;
		}
		out[o++] = v[i];
	}
	out[o] = '\0';
	m->cache[m->ncache++] = out;
	return out;
}

bool sipm_supported(struct sipm *m, const char *tag)
{
	size_t tl = strlen(tag);
	for (unsigned i = 0;; i++) {
		const char *v = sipm_header(m, "Supported", i);
		if (!v)
			return false;
		while (*v) {
			v += strspn(v, " \t,");
			size_t n = strcspn(v, " \t,");
			if (n == tl && strncasecmp(v, tag, tl) == 0)
				return true;
			v += n;
		}
	}
}

const char *sipm_body(const struct sipm *m, size_t *lenp)
{
	size_t n = m->len > m->hdr_len ? m->len - m->hdr_len : 0;
	if (lenp)
		*lenp = n;
	return n ? m->text + m->hdr_len : NULL;
}

/* ---- writing ---------------------------------------------------------- */

/* Header values and reason phrases never carry a line break: a caller's text
 * (a peer's display name, an explanation) cannot inject a header. */
/* s[0..n) with CR, LF and NUL made spaces (no header injection), in runs. */
static void put_safe(struct sbuf *sb, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && s[j] != '\r' && s[j] != '\n' && s[j] != '\0')
			j++;
		sbuf_putn(sb, s + i, j - i);
		if (j < n) {
			sbuf_putc(sb, ' ');
			j++;
		}
		i = j;
	}
}

static void put_hdrs(struct sbuf *sb, const struct sipm_hdr *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!h[i].name || !h[i].value)
			continue;
		put_safe(sb, h[i].name, strlen(h[i].name));
		sbuf_puts(sb, ": ");
		put_safe(sb, h[i].value, strlen(h[i].value));
		sbuf_puts(sb, "\r\n");
	}
}

static void put_body(struct sbuf *sb, const char *ctype, const char *body, size_t len)
{
	if (ctype && body && len) {
		sbuf_puts(sb, "Content-Type: ");
		put_safe(sb, ctype, strlen(ctype));
		sbuf_puts(sb, "\r\n");
	} else {
		len = 0;
	}
	sbuf_printf(sb, "Content-Length: %zu\r\n\r\n", len);
	if (len)
		sbuf_putn(sb, body, len);
}

/* Find parameter name (";name" or ";name=value") in the Via element
 * v[0..n); returns the index just past the name, or 0 if absent. */
static size_t via_param(const char *v, size_t n, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < n; i++) {
		if (v[i] != ';')
			continue;
		size_t j = i + 1;
		while (j < n && (v[j] == ' ' || v[j] == '\t'))
			j++;
		if (j + nl <= n && strncasecmp(v + j, name, nl) == 0 &&
		    (j + nl == n || strchr("=; \t,", v[j + nl])))
			return j + nl;
	}
	return 0;
}

/*
 * The top Via element, with received= (RFC 3261 section 18.2.1: whenever the
 * sent-by host is not the source address; RFC 3581 section 4: always when rport
 * is asked) and rport=<source port> filled in.
 */
static void put_top_via(struct sbuf *sb, const char *v, size_t n, const char *ip,
                        unsigned port)
{
	size_t first = 0;
	bool quoted = false;
	while (first < n && (quoted || v[first] != ',')) {
		if (v[first] == '"')
			quoted = !quoted;
		first++;
	}
	if (!ip) {
		put_safe(sb, v, n);
		return;
	}
	size_t rport = via_param(v, first, "rport");
	bool rport_empty = rport && (rport == first || v[rport] != '=');
	bool has_received = via_param(v, first, "received") != 0;
	/* sent-by host: after "SIP/2.0/<transport>" and white space */
	size_t h = 0;
	while (h < first && v[h] != ' ' && v[h] != '\t')
		h++;
	while (h < first && (v[h] == ' ' || v[h] == '\t'))
		h++;
	size_t he = h;
	if (he < first && v[he] == '[') {
		while (he < first && v[he] != ']')
			he++;
		if (he < first)
			he++;
	} else {
		while (he < first && !strchr(":; \t", v[he]))
			he++;
	}
	size_t hl = he - h;
	const char *hs = v + h;
	if (hl >= 2 && hs[0] == '[') {
		hs++;
		hl -= 2;
	}
	bool same_host = hl == strlen(ip) && strncasecmp(hs, ip, hl) == 0;

	if (rport_empty) {
		put_safe(sb, v, rport);
		sbuf_printf(sb, "=%u", port);
		put_safe(sb, v + rport, first - rport);
	} else {
		put_safe(sb, v, first);
	}
	if (!has_received && (!same_host || rport)) {
		sbuf_puts(sb, ";received=");
		sbuf_puts(sb, ip);
	}
	put_safe(sb, v + first, n - first);
}

int sipm_reply_build(const char *req, size_t len, const struct sipm_reply *r, char **outp,
                     size_t *lenp)
{
	static const struct {
		const char *name;
		size_t nlen;
		char cf;
	} copied[] = {
	    {"From", 4, 'f'}, {"To", 2, 't'}, {"Call-ID", 7, 'i'}, {"CSeq", 4, 0}};
	const char *vals[4] = {NULL, NULL, NULL, NULL};
	size_t vlens[4] = {0, 0, 0, 0};
	size_t hdr = sipm_header_len(req, len), pos = 0;
	unsigned vias = 0;
	struct sipm_field f;
	struct sbuf sb;

	if (!hdr)
		hdr = len;
	if (r->code < 100 || r->code > 699)
		return -EINVAL;
	const char *reason = r->reason ? r->reason : err_sip_reason(r->code);
	sbuf_init(&sb);
	sbuf_reserve(&sb, hdr + r->body_len + 256); /* one allocation, mostly */
	sbuf_printf(&sb, "SIP/2.0 %d ", r->code);
	put_safe(&sb, reason, strlen(reason));
	sbuf_puts(&sb, "\r\n");
	/* One pass: the Vias in order as they come, the first of each other. */
	while (sipm_field_next(req, hdr, &pos, &f)) {
		if (sipm_field_is(&f, "Via", 3, 'v')) {
			sbuf_puts(&sb, "Via: ");
			if (vias++ == 0)
				put_top_via(&sb, f.val, f.vlen, r->src_ip, r->src_port);
			else
				put_safe(&sb, f.val, f.vlen);
			sbuf_puts(&sb, "\r\n");
			continue;
		}
		for (size_t i = 0; i < 4; i++) {
			if (!vals[i] && sipm_field_is(&f, copied[i].name, copied[i].nlen,
			                              copied[i].cf)) {
				vals[i] = f.val;
				vlens[i] = f.vlen;
				break;
			}
		}
	}
	/* The Via routes the response back (RFC 3261 section 18.2.2) and its
	 * branch with the CSeq method is what the client matches it on (section
	 * 17.1.3): without them no answer can reach anyone. From, To and Call-ID
	 * are copied when the request has them (section 8.2.6.2); a request
	 * lacking them still gets its 400 (RFC 4475 section 3.3.1, RFC 3261
	 * section 21.4.1), which then lacks them too. */
	if (vias == 0 || !vals[3] || vlens[3] == 0) {
		sbuf_free(&sb);
		return -EBADMSG;
	}
	for (size_t i = 0; i < 4; i++) {
		if (!vals[i] || vlens[i] == 0)
			continue;
		sbuf_puts(&sb, copied[i].name);
		sbuf_puts(&sb, ": ");
		put_safe(&sb, vals[i], vlens[i]);
		/* To gets our tag unless the request had one (RFC 3261 8.2.6.2). */
		if (i == 1 && r->to_tag && *r->to_tag &&
		    !via_param(vals[i], vlens[i], "tag")) {
			sbuf_puts(&sb, ";tag=");
			put_safe(&sb, r->to_tag, strlen(r->to_tag));
		}
		sbuf_puts(&sb, "\r\n");
	}
	put_hdrs(&sb, r->hdrs, r->nhdrs);
	put_body(&sb, r->content_type, r->body, r->body_len);
	*outp = sbuf_take(&sb, lenp);
	return *outp ? 0 : -ENOMEM;
}

int sipm_request_build(const struct sipm_request *r, char **outp, size_t *lenp)
{
	struct sbuf sb;
	if (!r->method || !r->ruri || !r->via || !r->from || !r->to || !r->call_id)
		return -EINVAL;
	sbuf_init(&sb);
	sbuf_reserve(&sb, r->body_len + 1024);
	put_safe(&sb, r->method, strlen(r->method));
	sbuf_putc(&sb, ' ');
	put_safe(&sb, r->ruri, strlen(r->ruri));
	sbuf_puts(&sb, " SIP/2.0\r\nVia: ");
	put_safe(&sb, r->via, strlen(r->via));
	sbuf_puts(&sb, "\r\nMax-Forwards: 70\r\n");
	for (size_t i = 0; i < r->nroutes; i++) {
		sbuf_puts(&sb, "Route: ");
		put_safe(&sb, r->routes[i], strlen(r->routes[i]));
		sbuf_puts(&sb, "\r\n");
	}
	const struct sipm_hdr basic[] = {
	    {"From", r->from}, {"To", r->to}, {"Call-ID", r->call_id}};
	put_hdrs(&sb, basic, 3);
	sbuf_printf(&sb, "CSeq: %u ", (unsigned)r->cseq);
	put_safe(&sb, r->method, strlen(r->method));
	sbuf_puts(&sb, "\r\n");
	if (r->contact) {
		sbuf_puts(&sb, "Contact: ");
		put_safe(&sb, r->contact, strlen(r->contact));
		sbuf_puts(&sb, "\r\n");
	}
	put_hdrs(&sb, r->hdrs, r->nhdrs);
	put_body(&sb, r->content_type, r->body, r->body_len);
	*outp = sbuf_take(&sb, lenp);
	return *outp ? 0 : -ENOMEM;
}

/* ---- SDP for Lync IM sessions ----------------------------------------- */

bool sipm_sdp_is_im(const char *body, size_t len)
{
	for (size_t i = 0; body && i < len;) {
		size_t e = line_end(body, i, len);
		/* m=<media> <port> <proto> <fmt>: media "message", proto "sip" */
		if (e - i > 10 && strncmp(body + i, "m=message ", 10) == 0) {
			size_t p = i + 10;
			while (p < e && body[p] != ' ')
				p++;
			while (p < e && body[p] == ' ')
				p++;
			if (e - p >= 3 && strncasecmp(body + p, "sip", 3) == 0 &&
			    (e - p == 3 || body[p + 3] == ' '))
				return true;
		}
		i = next_line(body, i, len);
	}
	return false;
}

int sipm_sdp_im_answer(const char *addr, char **outp, size_t *lenp)
{
	struct sbuf sb;
	const char *fam = strchr(addr, ':') ? "IP6" : "IP4";
	sbuf_init(&sb);
	sbuf_printf(&sb,
	            "v=0\r\n"
	            "o=- 0 0 IN %s %s\r\n"
	            "s=session\r\n"
	            "c=IN %s %s\r\n"
	            "t=0 0\r\n"
	            "m=message 5060 sip null\r\n"
	            "a=accept-types:text/plain text/html multipart/alternative "
	            "application/im-iscomposing+xml\r\n",
	            fam, addr, fam, addr);
	*outp = sbuf_take(&sb, lenp);
	return *outp ? 0 : -ENOMEM;
}

/* ---- request checks (RFC 4475 torture cases) ------------------------------ */

int sipm_start_line_check(const char *buf, size_t len)
{
	size_t eol = line_end(buf, 0, len);
	const char *sp1 = memchr(buf, ' ', eol);
	if (!sp1 || (len >= 4 && strncmp(buf, "SIP/", 4) == 0))
		return 0;
	const char *uri = sp1 + 1, *end = buf + eol;
	const char *sp2 = memchr(uri, ' ', (size_t)(end - uri));
	/* Exactly three fields; anything else (extra spaces, LWS inside the
	 * URI) is for the parser to refuse (RFC 4475 sections 3.1.2.8-3.1.2.10). */
	if (!sp2 || sp2 == uri || memchr(sp2 + 1, ' ', (size_t)(end - sp2 - 1)))
		return 0;
	const char *ver = sp2 + 1;
	size_t vlen = (size_t)(end - ver);
	if (vlen < 5 || strncmp(ver, "SIP/", 4) != 0)
		return 0;
	if (vlen != 7 || strncmp(ver, "SIP/2.0", 7) != 0)
		return 505;
	size_t ulen = (size_t)(sp2 - uri);
	const char *colon = memchr(uri, ':', ulen);
	if (!colon)
		return 0;
	size_t slen = (size_t)(colon - uri);
	if ((slen == 3 && strncasecmp(uri, "sip", 3) == 0) ||
	    (slen == 4 && strncasecmp(uri, "sips", 4) == 0))
		return 0;
	/* RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
	if (slen == 0 || !((uri[0] | 0x20) >= 'a' && (uri[0] | 0x20) <= 'z'))
		return 0;
	for (size_t i = 1; i < slen; i++) {
		char c = uri[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
		if (!ok)
			return 0;
	}
	return 416;
}

bool sipm_branch_unique(const char *branch)
{
	return strncmp(branch, "z9hG4bK", 7) == 0 && branch[7] != '\0';
}

/* The next comma-separated item of *sp, spaces trimmed: its start and length. */
static bool next_item(const char **sp, const char **item, size_t *n)
{
	const char *s = *sp;
	while (*s == ' ' || *s == '\t' || *s == ',')
		s++;
	if (!*s)
		return false;
	const char *e = s + strcspn(s, ",");
	*sp = e;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*item = s;
	*n = (size_t)(e - s);
	return true;
}

static bool item_in(const char *list, const char *w, size_t n)
{
	const char *it;
	size_t in;
	while (next_item(&list, &it, &in))
		if (in == n && strncasecmp(it, w, n) == 0)
			return true;
	return false;
}

size_t sipm_unsupported(const char *require, const char *supported, char *out,
                        size_t outlen)
{
	size_t count = 0, o = 0;
	const char *it;
	size_t n;
	if (outlen)
		out[0] = '\0';
	while (next_item(&require, &it, &n)) {
		if (item_in(supported, it, n))
			continue;
		count++;
		if (!outlen)
			continue;
		int w =
		    snprintf(out + o, outlen - o, "%s%.*s", o ? ", " : "", (int)n, it);
		if (w < 0 || (size_t)w >= outlen - o)
			o = outlen - 1;
		else
			o += (size_t)w;
	}
	return count;
}

bool sipm_type_in(const char *list, const char *type)
{
	size_t tlen = strcspn(type, "; \t");
	const char *slash = memchr(type, '/', tlen);
	size_t major = slash ? (size_t)(slash - type) : tlen;
	const char *it;
	size_t n;
	while (next_item(&list, &it, &n)) {
		n = strcspn(it, "; \t,") < n ? strcspn(it, "; \t,") : n;
		if ((n == tlen && strncasecmp(it, type, n) == 0) ||
		    (n == 3 && strncmp(it, "*/*", 3) == 0) ||
		    (n == major + 2 && strncasecmp(it, type, major) == 0 &&
		     strncmp(it + major, "/*", 2) == 0))
			return true;
	}
	return false;
}

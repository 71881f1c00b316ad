#include "presbridge/xroute.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "presbridge/addr.h"
#include "presbridge/version.h"
#include "presbridge/log.h"
#include "presbridge/stats.h"
#include "presbridge/xlink.h"
#include "presbridge/xmlsafe.h"

#define MOD "xmpp"

/* RFC 7622 section 3.3.1: characters a localpart never holds unescaped. */
static const char local_forbidden[] = " \"&'/:<>@";

static bool has_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

/* A DNS name (letters, digits, hyphens and non-ASCII labels, no empty label), an
 * IPv4 literal (which that rule also covers) or a bracketed IPv6 literal. */
static bool domain_ok(const char *d, size_t len)
{
	if (len == 0)
		return false;
	if (d[0] == '[') {
		if (len < 4 || d[len - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < len; i++)
			if (!strchr("0123456789abcdefABCDEF:.", d[i]))
				return false;
		return true;
	}
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!(c >= 0x80 || c == '-' || (c >= '0' && c <= '9') ||
		      ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

int xroute_jid_split(const char *jid, struct xroute_jid *out)
{
	struct xroute_jid j = {0};

	if (!jid)
		return -EINVAL;
	size_t len = strlen(jid);
	if (len > ADDR_MAX_INPUT)
		return -ENAMETOOLONG;
	if (!utf8_valid(jid, len))
		return -EINVAL;
	const char *slash = strchr(jid, '/');
	size_t bare = slash ? (size_t)(slash - jid) : len;
	const char *at = memchr(jid, '@', bare);
	if (at) {
		j.local = jid;
		j.local_len = (size_t)(at - jid);
		j.domain = at + 1;
	} else {
		j.domain = jid;
	}
	j.domain_len = (size_t)(jid + bare - j.domain);
	if (slash) {
		j.resource = slash + 1;
		j.resource_len = len - bare - 1;
	}
	if ((at && j.local_len == 0) || (slash && j.resource_len == 0))
		return -EINVAL;
	if (j.local_len > ADDR_MAX_PART || j.domain_len > ADDR_MAX_PART ||
	    j.resource_len > ADDR_MAX_PART)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < j.local_len; i++)
		if (strchr(local_forbidden, j.local[i]))
			return -EINVAL;
	if (has_control(jid, len) || !domain_ok(j.domain, j.domain_len))
		return -EINVAL;
	*out = j;
	return 0;
}

static bool domain_is(const struct xroute_jid *j, const char *d)
{
	return strlen(d) == j->domain_len &&
	       strncasecmp(j->domain, d, j->domain_len) == 0;
}

/* --- answers the link builds itself ------------------------------------------ */

/* Append a new child element to parent, handing it over (add_child_ex with no
 * clone: parent owns it and releases it with itself). Returns the child, borrowed. */
static xmpp_stanza_t *child(xmpp_stanza_t *parent, const char *name, const char *ns)
{
	xmpp_ctx_t *ctx = xmpp_stanza_get_context(parent);
	xmpp_stanza_t *c = xmpp_stanza_new(ctx);
	if (!c)
		return NULL;
	if (xmpp_stanza_set_name(c, name) != XMPP_EOK ||
	    (ns && xmpp_stanza_set_ns(c, ns)) ||
	    xmpp_stanza_add_child_ex(parent, c, 0) != XMPP_EOK) {
		xmpp_stanza_release(c);
		return NULL;
	}
	return c;
}

static int text_child(xmpp_stanza_t *parent, const char *name, const char *ns,
                      const char *text)
{
	xmpp_stanza_t *c = child(parent, name, ns);
	if (!c)
		return -ENOMEM;
	xmpp_stanza_t *t = xmpp_stanza_new(xmpp_stanza_get_context(parent));
	if (!t)
		return -ENOMEM;
	if (xmpp_stanza_set_text(t, text) != XMPP_EOK ||
	    xmpp_stanza_add_child_ex(c, t, 0) != XMPP_EOK) {
		xmpp_stanza_release(t);
		return -ENOMEM;
	}
	return 0;
}

static int set_attr(xmpp_stanza_t *st, const char *name, const char *value)
{
	if (!value)
		return 0;
	return xmpp_stanza_set_attribute(st, name, value) == XMPP_EOK ? 0 : -ENOMEM;
}

/* <NAME type=TYPE id=in->id to=in->from from=FROM/>; caller-owns. */
static xmpp_stanza_t *answer(xmpp_ctx_t *ctx, const struct xroute_in *in,
                             const char *name, const char *type, const char *from)
{
	xmpp_stanza_t *st = xmpp_stanza_new(ctx);
	if (!st)
		return NULL;
	if (xmpp_stanza_set_name(st, name) != XMPP_EOK || set_attr(st, "type", type) ||
	    set_attr(st, "id", in->id) || set_attr(st, "to", in->from) ||
	    set_attr(st, "from", from)) {
		xmpp_stanza_release(st);
		return NULL;
	}
	return st;
}

/* The features a client may rely on: the ones the link answers itself, and what
 * the bridge carries (XEP-0085 chat states, from Lync's typing indications). */
static const char *const features[] = {
    XROUTE_NS_DISCO_INFO, XROUTE_NS_DISCO_ITEMS, XROUTE_NS_PING,
    XROUTE_NS_VERSION,    XROUTE_NS_CHATSTATES,
};

static xmpp_stanza_t *build_disco_info(xmpp_ctx_t *ctx, const struct xroute_in *in,
                                       const char *from)
{
	xmpp_stanza_t *st = answer(ctx, in, "iq", "result", from);
	xmpp_stanza_t *q = st ? child(st, "query", XROUTE_NS_DISCO_INFO) : NULL;
	xmpp_stanza_t *id = q ? child(q, "identity", NULL) : NULL;
	if (!id || set_attr(id, "category", "gateway") || set_attr(id, "type", "sip") ||
	    set_attr(id, "name", "presbridge"))
		goto fail;
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		xmpp_stanza_t *f = child(q, "feature", NULL);
		if (!f || set_attr(f, "var", features[i]))
			goto fail;
	}
	return st;
fail:
	if (st)
		xmpp_stanza_release(st);
	return NULL;
}

static xmpp_stanza_t *build_disco_items(xmpp_ctx_t *ctx, const struct xroute_in *in,
                                        const char *from)
{
	xmpp_stanza_t *st = answer(ctx, in, "iq", "result", from);
	if (st && !child(st, "query", XROUTE_NS_DISCO_ITEMS)) {
		xmpp_stanza_release(st);
		return NULL;
	}
	return st;
}

static xmpp_stanza_t *build_ping(xmpp_ctx_t *ctx, const struct xroute_in *in,
                                 const char *from)
{
	return answer(ctx, in, "iq", "result", from);
}

/* XEP-0092: name and version; the optional <os/> is left out (it tells an
 * outside party more about the host than federation needs). */
static xmpp_stanza_t *build_version(xmpp_ctx_t *ctx, const struct xroute_in *in,
                                    const char *from)
{
	xmpp_stanza_t *st = answer(ctx, in, "iq", "result", from);
	xmpp_stanza_t *q = st ? child(st, "query", XROUTE_NS_VERSION) : NULL;
	if (!q || text_child(q, "name", NULL, "presbridge") ||
	    text_child(q, "version", NULL, PB_VERSION)) {
		if (st)
			xmpp_stanza_release(st);
		return NULL;
	}
	return st;
}

static const struct xroute_iq iq_table[] = {
    {XROUTE_NS_DISCO_INFO, "query", "get", build_disco_info, "disco#info"},
    {XROUTE_NS_DISCO_ITEMS, "query", "get", build_disco_items, "disco#items"},
    {XROUTE_NS_PING, "ping", "get", build_ping, "ping"},
    {XROUTE_NS_VERSION, "query", "get", build_version, "version"},
};

const struct xroute_iq *xroute_iq_table(size_t *n)
{
	*n = sizeof(iq_table) / sizeof(iq_table[0]);
	return iq_table;
}

xmpp_stanza_t *xroute_error(xmpp_ctx_t *ctx, const struct xroute_in *in, const char *from,
                            enum err_cond cond, const char *text)
{
	const char *cname = err_cond_name(cond);
	xmpp_stanza_t *st = cname ? answer(ctx, in, in->name, "error", from) : NULL;
	xmpp_stanza_t *e = st ? child(st, "error", NULL) : NULL;
	if (!e || set_attr(e, "type", err_type_name(err_cond_type(cond))) ||
	    !child(e, cname, ERR_NS_STANZAS) ||
	    (text && text_child(e, "text", ERR_NS_STANZAS, text))) {
		if (st)
			xmpp_stanza_release(st);
		return NULL;
	}
	return st;
}

/* --- the decision ------------------------------------------------------------ */

enum kind {
	KIND_OTHER,
	KIND_IQ,
	KIND_MESSAGE,
	KIND_PRESENCE,
};

static const struct {
	const char *name;
	enum kind kind;
} kinds[] = {
    {"iq", KIND_IQ},
    {"message", KIND_MESSAGE},
    {"presence", KIND_PRESENCE},
};

static enum kind kind_of(const char *name)
{
	for (size_t i = 0; name && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].name, name) == 0)
			return kinds[i].kind;
	return KIND_OTHER;
}

void xroute_read(xmpp_stanza_t *st, size_t size, struct xroute_in *in)
{
	memset(in, 0, sizeof(*in));
	in->name = xmpp_stanza_get_name(st);
	in->type = xmpp_stanza_get_type(st);
	in->id = xmpp_stanza_get_id(st);
	in->to = xmpp_stanza_get_to(st);
	in->from = xmpp_stanza_get_from(st);
	in->size = size;
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(st); c;
	     c = xmpp_stanza_get_next(c)) {
		if (!xmpp_stanza_is_tag(c))
			continue;
		if (in->nchildren++ == 0) {
			in->child_name = xmpp_stanza_get_name(c);
			in->child_ns = xmpp_stanza_get_ns(c);
			in->child_node = xmpp_stanza_get_attribute(c, "node") != NULL;
		}
	}
}

static void set_out(struct xroute_out *out, enum xroute_action action, enum err_cond cond,
                    const char *why)
{
	out->action = action;
	out->cond = cond;
	out->why = why;
}

/* An error stanza is never answered with an error: two entities doing that
 * would bounce errors at each other for ever. */
static void refuse(struct xroute_out *out, bool is_error, enum err_cond cond,
                   const char *why)
{
	set_out(out, is_error ? XROUTE_IGNORE : XROUTE_REFUSE, cond, why);
}

static void decide_iq(const struct xroute_in *in, const struct xroute_jid *to,
                      struct xroute_out *out)
{
	static const char *const requests[] = {"get", "set"};
	bool request = false;

	for (size_t i = 0; in->type && i < 2; i++)
		request |= strcmp(in->type, requests[i]) == 0;
	if (!request) {
		if (in->type && strcmp(in->type, "result") == 0)
			set_out(out, XROUTE_IGNORE, 0,
			        "an iq result (the link sends no requests)");
		else
			set_out(out, XROUTE_REFUSE, ERR_COND_BAD_REQUEST,
			        "an iq needs type get, set, result or error");
		return;
	}
	if (!in->id || in->nchildren != 1) {
		set_out(out, XROUTE_REFUSE, ERR_COND_BAD_REQUEST,
		        !in->id ? "an iq request needs an id"
		                : "an iq request carries exactly one payload element");
		return;
	}
	/* The table answers for the component itself, not for the SIP users behind it:
	 * the bridge cannot know whether those exist. */
	if (to && (to->local || to->resource)) {
		set_out(out, XROUTE_REFUSE, ERR_COND_SERVICE_UNAVAILABLE,
		        "the bridge answers no requests on behalf of SIP users");
		return;
	}
	for (size_t i = 0; i < sizeof(iq_table) / sizeof(iq_table[0]); i++) {
		const struct xroute_iq *row = &iq_table[i];
		if (!in->child_ns || strcmp(row->ns, in->child_ns) != 0 ||
		    strcmp(row->name, in->child_name) != 0 ||
		    strcmp(row->type, in->type) != 0)
			continue;
		if (in->child_node) {
			set_out(out, XROUTE_REFUSE, ERR_COND_ITEM_NOT_FOUND,
			        "the bridge has no disco nodes");
			return;
		}
		set_out(out, XROUTE_IQ, 0, row->what);
		out->iq = row;
		return;
	}
	set_out(out, XROUTE_REFUSE, ERR_COND_SERVICE_UNAVAILABLE,
	        "the bridge does not support this request");
}

void xroute_decide(const struct xroute_in *in, const char *domain,
                   const char *const *domains, size_t ndomains, size_t max_size,
                   struct xroute_out *out)
{
	struct xroute_jid from, to;

	memset(out, 0, sizeof(*out));
	out->reply_from = domain;
	enum kind kind = kind_of(in->name);
	if (kind == KIND_OTHER) {
		set_out(out, XROUTE_IGNORE, 0, "not a stanza");
		return;
	}
	bool is_error = in->type && strcmp(in->type, "error") == 0;
	if (is_error && kind == KIND_IQ) {
		set_out(out, XROUTE_IGNORE, 0,
		        "an iq error (the link sends no requests)");
		return;
	}
	if (xroute_jid_split(in->from, &from) != 0) {
		set_out(out, XROUTE_IGNORE, 0, "sender address missing or malformed");
		return;
	}
	if (in->to) {
		if (xroute_jid_split(in->to, &to) != 0) {
			refuse(out, is_error, ERR_COND_JID_MALFORMED,
			       "recipient address malformed");
			return;
		}
		bool ours = false;
		for (size_t i = 0; i < ndomains && !ours; i++)
			ours = domain_is(&to, domains[i]);
		if (!ours) {
			refuse(out, is_error, ERR_COND_ITEM_NOT_FOUND,
			       "the recipient's domain is not bridged here");
			return;
		}
		out->reply_from = in->to;
	}
	if (in->size > max_size) {
		refuse(out, is_error, ERR_COND_POLICY_VIOLATION,
		       "stanza larger than the bridge accepts");
		return;
	}
	if (kind != KIND_IQ) {
		set_out(out, XROUTE_BRIDGE, 0, "for the bridge");
		return;
	}
	decide_iq(in, in->to ? &to : NULL, out);
}

/* ---- one incoming stanza, whatever transport carried it ---- */

static void to_bridge(xmpp_ctx_t *ctx, xmpp_stanza_t *st, const char *domain,
                      const struct xroute_in *in, const struct xroute_out *out,
                      const struct xlink_handlers *h, xroute_reply_h *reply, void *arg)
{
	struct xlink_refusal r = {ERR_COND_SERVICE_UNAVAILABLE,
	                          "this bridge does not relay messages"};
	int v;

	if (h->stanza)
		v = h->stanza(domain, st, &r, h->arg);
	else
		v = strcmp(in->name, "message") == 0 ? XLINK_REFUSE : XLINK_TAKEN;
	if (v != XLINK_REFUSE || (in->type && strcmp(in->type, "error") == 0))
		return;
	xmpp_stanza_t *e = xroute_error(ctx, in, out->reply_from, r.cond, r.text);
	if (e) {
		reply(e, arg);
		xmpp_stanza_release(e);
	}
}

/* Count a received stanza, and the condition of an error stanza (stats.h). */
static void count_in(xmpp_stanza_t *st, const struct xroute_in *in)
{
	stats_stanza(STATS_IN, in->name);
	if (!in->type || strcmp(in->type, "error") != 0)
		return;
	xmpp_stanza_t *e = xmpp_stanza_get_child_by_name(st, "error");
	const char *cond = NULL;
	enum err_cond c;
	for (xmpp_stanza_t *k = e ? xmpp_stanza_get_children(e) : NULL; k && !cond;
	     k = xmpp_stanza_get_next(k)) {
		const char *ns = xmpp_stanza_get_ns(k), *n = xmpp_stanza_get_name(k);
		if (ns && n && strcmp(ns, ERR_NS_STANZAS) == 0 &&
		    err_cond_from_name(n, &c) == 0)
			cond = err_cond_name(c);
	}
	stats_fail(STATS_FAIL_XMPP, cond);
}

void xroute_dispatch(xmpp_ctx_t *ctx, xmpp_stanza_t *st, size_t size, const char *domain,
                     const char *const *domains, size_t ndomains,
                     const struct xlink_handlers *h, xroute_reply_h *reply, void *arg)
{
	struct xroute_in in;
	struct xroute_out out;
	xmpp_stanza_t *answer = NULL;

	xroute_read(st, size, &in);
	count_in(st, &in);
	xroute_decide(&in, domain, domains, ndomains, XLINK_MAX_STANZA, &out);
	switch (out.action) {
	case XROUTE_IGNORE:
		log_debug(MOD, "%s: <%s type='%s'> from %s to %s ignored: %s", domain,
		          in.name ? in.name : "?", in.type ? in.type : "",
		          in.from ? in.from : "?", in.to ? in.to : domain, out.why);
		return;
	case XROUTE_REFUSE:
		log_debug(MOD, "%s: <%s> from %s to %s refused with %s: %s", domain,
		          in.name, in.from, in.to ? in.to : domain,
		          err_cond_name(out.cond), out.why);
		answer = xroute_error(ctx, &in, out.reply_from, out.cond, out.why);
		break;
	case XROUTE_IQ:
		answer = out.iq->build(ctx, &in, out.reply_from);
		break;
	case XROUTE_BRIDGE:
		to_bridge(ctx, st, domain, &in, &out, h, reply, arg);
		return;
	}
	if (!answer) {
		log_error(MOD, "%s: out of memory answering <%s> from %s", domain,
		          in.name, in.from);
		return;
	}
	reply(answer, arg);
	xmpp_stanza_release(answer);
}

const char *xroute_text(xmpp_stanza_t *st)
{
	xmpp_stanza_t *c = st ? xmpp_stanza_get_children(st) : NULL;
	return c && xmpp_stanza_is_text(c) ? xmpp_stanza_get_text_ptr(c) : NULL;
}

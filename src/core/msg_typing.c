#include "presbridge/msg.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "presbridge/sbuf.h"
#include "presbridge/xmlsafe.h"

/* Typing documents are a few hundred bytes; anything near this is not one. */
#define TYPING_DOC_MAX 4096

static const char *const chatstate_names[] = {
    [MSG_CHAT_ACTIVE] = "active", [MSG_CHAT_COMPOSING] = "composing",
    [MSG_CHAT_PAUSED] = "paused", [MSG_CHAT_INACTIVE] = "inactive",
    [MSG_CHAT_GONE] = "gone",
};

#define N_CHATSTATES (sizeof(chatstate_names) / sizeof(chatstate_names[0]))

const char *msg_chatstate_name(enum msg_chatstate cs)
{
	if ((unsigned)cs >= N_CHATSTATES)
		return NULL;
	return chatstate_names[cs];
}

int msg_chatstate_from_name(const char *name, enum msg_chatstate *csp)
{
	if (!name)
		return -EINVAL;
	for (size_t i = 0; i < N_CHATSTATES; i++) {
		if (strcmp(chatstate_names[i], name) == 0) {
			*csp = (enum msg_chatstate)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* XEP-0085 -> SIP. Only composing is typing; see msg.h for why the others are
 * all idle. */
static const struct {
	enum msg_chatstate cs;
	enum msg_typing t;
} to_sip[] = {
    {MSG_CHAT_ACTIVE, MSG_TYPING_IDLE}, {MSG_CHAT_COMPOSING, MSG_TYPING_ACTIVE},
    {MSG_CHAT_PAUSED, MSG_TYPING_IDLE}, {MSG_CHAT_INACTIVE, MSG_TYPING_IDLE},
    {MSG_CHAT_GONE, MSG_TYPING_IDLE},
};

int msg_chatstate_to_typing(enum msg_chatstate cs, enum msg_typing *tp)
{
	for (size_t i = 0; i < sizeof(to_sip) / sizeof(to_sip[0]); i++) {
		if (to_sip[i].cs == cs) {
			*tp = to_sip[i].t;
			return 0;
		}
	}
	return -EINVAL;
}

/* SIP typing: the state name in RFC 3994, in Lync's KeyboardActivity, and the
 * XEP-0085 chat state it becomes. */
static const struct {
	enum msg_typing t;
	const char *iscomposing;
	const char *lync;
	enum msg_chatstate cs;
} typing[] = {
    {MSG_TYPING_IDLE, "idle", "idle", MSG_CHAT_PAUSED},
    {MSG_TYPING_ACTIVE, "active", "type", MSG_CHAT_COMPOSING},
};

#define N_TYPING (sizeof(typing) / sizeof(typing[0]))

enum msg_chatstate msg_typing_to_chatstate(enum msg_typing t)
{
	for (size_t i = 0; i < N_TYPING; i++)
		if (typing[i].t == t)
			return typing[i].cs;
	return MSG_CHAT_PAUSED;
}

static int typing_row(enum msg_typing t)
{
	for (size_t i = 0; i < N_TYPING; i++)
		if (typing[i].t == t)
			return (int)i;
	return -1;
}

static int parse_doc(const char *buf, size_t len, xmlDoc **docp)
{
	if (!buf)
		return -EINVAL;
	return xmls_parse(buf, len, TYPING_DOC_MAX, docp);
}

/* Strict decimal seconds: digits only, no sign, > 0, fits in unsigned. */
static int parse_seconds(const char *s, unsigned *out)
{
	unsigned long v = 0;

	if (!*s)
		return -EBADMSG;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EBADMSG;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > UINT_MAX)
			return -EBADMSG;
	}
	if (v == 0)
		return -EBADMSG;
	*out = (unsigned)v;
	return 0;
}

int msg_iscomposing_parse(const char *buf, size_t len, enum msg_typing *tp,
                          unsigned *refreshp)
{
	xmlDoc *doc = NULL;
	char *state = NULL;
	char *refresh = NULL;
	unsigned secs = 0;
	int err = parse_doc(buf, len, &doc);

	if (err)
		return err;
	xmlNode *root = xmlDocGetRootElement(doc);
	if (!xmls_is(root, MSG_NS_ISCOMPOSING, "isComposing")) {
		err = -EBADMSG;
		goto out;
	}
	xmlNode *sn = xmls_child(root, MSG_NS_ISCOMPOSING, "state");
	if (!sn) {
		err = -EBADMSG;
		goto out;
	}
	if (!(state = xmls_text(sn))) {
		err = -ENOMEM;
		goto out;
	}
	xmlNode *rn = xmls_child(root, MSG_NS_ISCOMPOSING, "refresh");
	if (rn) {
		if (!(refresh = xmls_text(rn))) {
			err = -ENOMEM;
			goto out;
		}
		if ((err = parse_seconds(refresh, &secs)))
			goto out;
	}
	err = -ENOTSUP;
	for (size_t i = 0; i < N_TYPING; i++) {
		if (strcmp(state, typing[i].iscomposing) == 0) {
			*tp = typing[i].t;
			if (refreshp)
				*refreshp = secs;
			err = 0;
			break;
		}
	}
out:
	free(state);
	free(refresh);
	xmlFreeDoc(doc);
	return err;
}

static int take(struct sbuf *sb, char **docp, size_t *lenp)
{
	size_t n = 0;
	char *doc = sbuf_take(sb, &n);

	if (!doc)
		return -ENOMEM;
	*docp = doc;
	if (lenp)
		*lenp = n;
	return 0;
}

int msg_iscomposing_build(enum msg_typing t, unsigned refresh, char **docp, size_t *lenp)
{
	int row = typing_row(t);
	struct sbuf sb;

	if (row < 0)
		return -EINVAL;
	sbuf_init(&sb);
	sbuf_puts(&sb, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	               "<isComposing xmlns=\"" MSG_NS_ISCOMPOSING "\">\n"
	               "  <state>");
	sbuf_puts(&sb, typing[row].iscomposing);
	sbuf_puts(&sb, "</state>\n"
	               "  <contenttype>text/plain</contenttype>\n");
	if (t == MSG_TYPING_ACTIVE && refresh)
		sbuf_printf(&sb, "  <refresh>%u</refresh>\n", refresh);
	sbuf_puts(&sb, "</isComposing>\n");
	return take(&sb, docp, lenp);
}

int msg_kbactivity_parse(const char *buf, size_t len, enum msg_typing *tp)
{
	xmlDoc *doc = NULL;
	xmlChar *status = NULL;
	int err = parse_doc(buf, len, &doc);

	if (err)
		return err;
	xmlNode *root = xmlDocGetRootElement(doc);
	xmlNode *st = xmls_child(root, NULL, "status");
	if (!xmls_is(root, NULL, "KeyboardActivity") || !st ||
	    !(status = xmlGetProp(st, (const xmlChar *)"status"))) {
		err = -EBADMSG;
		goto out;
	}
	err = -ENOTSUP;
	for (size_t i = 0; i < N_TYPING; i++) {
		if (strcmp((const char *)status, typing[i].lync) == 0) {
			*tp = typing[i].t;
			err = 0;
			break;
		}
	}
out:
	xmlFree(status);
	xmlFreeDoc(doc);
	return err;
}

int msg_kbactivity_build(enum msg_typing t, char **docp, size_t *lenp)
{
	int row = typing_row(t);
	struct sbuf sb;

	if (row < 0)
		return -EINVAL;
	sbuf_init(&sb);
	sbuf_puts(&sb, "<?xml version=\"1.0\"?><KeyboardActivity><status status=\"");
	sbuf_puts(&sb, typing[row].lync);
	sbuf_puts(&sb, "\" /></KeyboardActivity>");
	return take(&sb, docp, lenp);
}

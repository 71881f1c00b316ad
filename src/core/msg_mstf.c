#include "presbridge/msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/base64.h"
#include "presbridge/sbuf.h"
#include "presbridge/xmlsafe.h"

#define MSTF_PREFIX "text/plain; charset=UTF-8; ms-body="

int msg_mstf_parse(const char *value, const struct msg_limits *lim, char **textp,
                   size_t *lenp)
{
	const char *b64;
	size_t blen;

	if (!value)
		return -EINVAL;
	int err = msg_ctype_param(value, strlen(value), "ms-body", &b64, &blen);
	if (err)
		return err;
	/* Refuse before decoding what could only decode to an oversize body. */
	if (msg_check_size(blen / 4 * 3, lim))
		return -E2BIG;

	unsigned char *body = NULL;
	size_t len = 0;
	err = base64_decode(b64, blen, &body, &len);
	if (err)
		return err;
	err = msg_sip_to_text(value, (const char *)body, len, lim, textp, lenp);
	free(body);
	return err;
}

int msg_mstf_build(const char *text, size_t len, char **valuep, size_t *lenp)
{
	struct msg_limits lim = {MSG_MAX_BODY_DEFAULT, MSG_MSTF_MAX_CHARS};
	char *body = NULL;
	size_t blen = 0;

	int err = msg_text_to_sip(text, len, &lim, &body, &blen);
	if (err)
		return err;

	char *b64 = NULL;
	size_t b64len = 0;
	err = base64_encode((const unsigned char *)body, blen, &b64, &b64len);
	free(body);
	if (err)
		return err;

	struct sbuf sb;
	sbuf_init(&sb);
	sbuf_puts(&sb, MSTF_PREFIX);
	sbuf_putn(&sb, b64, b64len);
	free(b64);
	size_t n = 0;
	char *out = sbuf_take(&sb, &n);
	if (!out)
		return -ENOMEM;
	*valuep = out;
	if (lenp)
		*lenp = n;
	return 0;
}

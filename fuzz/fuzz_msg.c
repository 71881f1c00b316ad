/* libFuzzer: instant-message bodies and Lync's side channels. The first byte
 * picks the reader. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	struct msg_limits lim = MSG_LIMITS_DEFAULT;
	char *text = NULL;
	size_t tlen = 0;
	enum msg_typing t;
	unsigned refresh;

	switch (data[0] % 6) {
	case 0:
		msg_sip_to_text("text/html; charset=UTF-8", body, len, &lim, &text,
		                &tlen);
		break;
	case 1:
		msg_sip_to_text("text/plain; charset=UTF-8", body, len, &lim, &text,
		                &tlen);
		break;
	case 2:
		msg_sip_to_text("multipart/alternative; boundary=b", body, len, &lim,
		                &text, &tlen);
		break;
	case 3: {
		/* Ms-Text-Format is a header value: a C string. */
		char *v = malloc(len + 1);
		if (!v)
			return 0;
		memcpy(v, body, len);
		v[len] = '\0';
		msg_mstf_parse(v, &lim, &text, &tlen);
		free(v);
		break;
	}
	case 4:
		msg_iscomposing_parse(body, len, &t, &refresh);
		break;
	default:
		msg_kbactivity_parse(body, len, &t);
		break;
	}
	free(text);
	return 0;
}

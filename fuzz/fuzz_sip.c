/* libFuzzer: bytes arriving on a SIP stream, cut into frames as the transport
 * does and each message parsed as the leg does. */
#include <stdint.h>
#include <stdlib.h>

#include "presbridge/sipm.h"
#include "presbridge/sipt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;

	while (off < size) {
		struct sipt_frame f;
		sipt_frame_next(buf + off, size - off, SIPT_MAX_MSG, &f);
		if (f.kind == SIPT_FRAME_MORE || f.kind == SIPT_FRAME_BAD || f.len == 0)
			break;
		if (f.kind == SIPT_FRAME_TOO_LARGE) {
			off += f.len + f.body_len; /* what the transport skips */
			continue;
		}
		if (f.kind == SIPT_FRAME_MSG) {
			struct sipm *m = NULL;
			if (sipm_parse(&m, buf + off, f.len, NULL) == 0) {
				size_t blen;
				sipm_body(m, &blen);
				sipm_header(m, "Subscription-State", 0);
				sipm_supported(m, "ms-piggyback-first-notify");
				sipm_free(m);
			}
		}
		off += f.len;
	}
	/* The same bytes as one datagram. */
	struct sipm *m = NULL;
	if (sipm_parse(&m, buf, size, NULL) == 0)
		sipm_free(m);
	return 0;
}

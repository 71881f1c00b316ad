/*
 * Golden SIP messages of tests/data/sip for the SIP unit tests: LF becomes CRLF,
 * ${LEN} the body length, ${TAG} the given dialog tag (see tests/data/sip/README).
 */
#ifndef PB_TEST_SIP_GOLDEN_H
#define PB_TEST_SIP_GOLDEN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Caller-owns the result (free()); NULL if the file cannot be read. */
static char *golden_load(const char *name, const char *tag, size_t *lenp)
{
	char path[512], raw[16384];
	snprintf(path, sizeof(path), "%s/sip/%s", PB_TEST_DATA, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t n = fread(raw, 1, sizeof(raw) - 1, f);
	fclose(f);
	raw[n] = '\0';
	char *out = malloc(2 * n + 256);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(raw + i, "${TAG}", 6) == 0) {
			o += (size_t)sprintf(out + o, "%s", tag ? tag : "notag");
			i += 5;
			continue;
		}
		if (raw[i] == '\n')
			out[o++] = '\r';
		out[o++] = raw[i];
	}
	out[o] = '\0';
	char *end = strstr(out, "\r\n\r\n");
	char *len = strstr(out, "${LEN}");
	if (len && end) {
		size_t body = o - (size_t)(end + 4 - out);
		char num[16];
		int w = snprintf(num, sizeof(num), "%zu", body);
		memmove(len + w, len + 6, o - (size_t)(len + 6 - out) + 1);
		memcpy(len, num, (size_t)w);
		o = o - 6 + (size_t)w;
	}
	*lenp = o;
	return out;
}

#endif

#include "presbridge/base64.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for an alphabet character, -1 for anything else (including '='). */
static int sextet(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_decode(const char *src, size_t len, unsigned char **outp, size_t *outlenp)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t data = len;

	/* Padding is optional, but if present it must complete the last quantum. */
	if (len % 4 == 0 && len > 0 && s[len - 1] == '=') {
		data--;
		if (s[len - 2] == '=')
			data--;
	}
	if (data % 4 == 1)
		return -EBADMSG;

	unsigned char *out = malloc(BASE64_DECODED_MAX(data) + 1);
	if (!out)
		return -ENOMEM;

	size_t o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	for (size_t i = 0; i < data; i++) {
		int v = sextet(s[i]);
		if (v < 0) {
			free(out);
			return -EBADMSG;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) {
		free(out);
		return -EBADMSG;
	}
	out[o] = '\0';
	*outp = out;
	*outlenp = o;
	return 0;
}

int base64_encode(const unsigned char *src, size_t len, char **outp, size_t *outlenp)
{
	if (len / 3 >= (SIZE_MAX - 1) / 4 - 1)
		return -E2BIG;
	size_t n = (len + 2) / 3 * 4;
	char *out = malloc(n + 1);
	if (!out)
		return -ENOMEM;

	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)src[i] << 16;
		size_t rem = len - i;
		if (rem > 1)
			v |= (uint32_t)src[i + 1] << 8;
		if (rem > 2)
			v |= src[i + 2];
		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = rem > 1 ? alphabet[(v >> 6) & 63] : '=';
		out[o++] = rem > 2 ? alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	*outp = out;
	*outlenp = o;
	return 0;
}

/*
 * base64 - RFC 4648 section 4 (standard alphabet) encoding and decoding.
 *
 * Lync carries the first message of a session base64-encoded in the INVITE's
 * Ms-Text-Format header (ms-body=...). Some writers drop the '=' padding, so
 * decoding accepts input with or without it, and nothing else: no white space,
 * no URL-safe alphabet, no data after padding, no non-zero bits left over in the
 * last character (RFC 4648 section 3.5), so every body has exactly one spelling.
 */
#ifndef PRESBRIDGE_BASE64_H
#define PRESBRIDGE_BASE64_H

#include <stddef.h>

/* Upper bound of the decoded size of len characters of base64. */
#define BASE64_DECODED_MAX(len) (((len) / 4) * 3 + 3)

/*
 * Decode src[0..len) into *outp (caller-owns; free(); NUL-terminated for
 * convenience, the NUL not counted in *outlenp). Returns 0, or:
 *   -EBADMSG  a character outside the alphabet, misplaced or excess padding,
 *             a length that no encoding produces, or non-zero leftover bits
 *   -ENOMEM
 * *outp and *outlenp are set only on success.
 */
int base64_decode(const char *src, size_t len, unsigned char **outp, size_t *outlenp);

/*
 * Encode src[0..len) with '=' padding into *outp (caller-owns; free();
 * NUL-terminated, *outlenp excludes the NUL). Returns 0, -E2BIG if the result
 * would not fit in a size_t, or -ENOMEM. Out-parameters are set only on success.
 */
int base64_encode(const unsigned char *src, size_t len, char **outp, size_t *outlenp);

#endif

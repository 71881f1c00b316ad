/* libFuzzer: SIP bytes from a trusted peer through the leg's framing, checks
 * and transactions to the bridge's decision (SUBSCRIBE, NOTIFY, MESSAGE,
 * INVITE, BYE, INFO handlers), with the sockets replaced by buffers
 * (sipleg_feed, fuzz/bridge_harness.h), not skipped.
 *
 * The first byte picks the transport: odd, the bytes up to the first NUL arrive
 * on one TCP connection, (byte >> 1) + 1 bytes per read, and the connection then
 * closes; even, no stream. The rest (or all after the first byte) is pieces
 * separated by NUL bytes: "<..." a stanza from the XMPP server, anything else
 * one SIP datagram. */
#include "bridge_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	hb_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	struct bridge *b = hb_start();
	if (data[0] & 1) {
		const char *z = memchr(p, '\0', n);
		size_t len = z ? (size_t)(z - p) : n;
		sipleg_feed(b->sip, true, HB_PEER_IP, p, len, (size_t)(data[0] >> 1) + 1);
		p += len;
		n -= len;
	}
	hb_pieces(b, p, n);
	hb_finish(b);
	return 0;
}

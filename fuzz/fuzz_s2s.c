/* libFuzzer: a peer server's whole server-to-server stream into the bridge
 * ([xmpp] transport = s2s): the stream header, features, STARTTLS, SASL,
 * dialback (db:result, db:verify), stream errors and stanzas, through the
 * expat stream parser, the S2S state machine (xs2s.c), the shared routing and
 * the bridge's handlers, with every output checked (fuzz/bridge_harness.h).
 *
 * The first input byte is a mode: bit 0 puts a valid stream header from
 * xmpp.test to sip.test in front of the rest; bit 1 counts the stream as
 * already authenticated for (xmpp.test, sip.test), so stanzas reach the bridge;
 * bits 2-7 the size of the pieces the parser gets (0: all at once). */
#include "bridge_harness.h"

#include "presbridge/xlink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define HEADER                                                                           \
	"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "                     \
	"xmlns:stream='http://etherx.jabber.org/streams' "                               \
	"xmlns:db='jabber:server:dialback' "                                             \
	"from='xmpp.test' to='sip.test' version='1.0'>"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	hb_s2s = true;
	hb_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	const char *rest = (const char *)data + 1;
	size_t n = size - 1, hl = (mode & 1) ? strlen(HEADER) : 0;
	char *in = malloc(hl + n + 1);
	if (!in)
		return 0;
	memcpy(in, HEADER, hl);
	memcpy(in + hl, rest, n);
	struct bridge *b = hb_start();
	xlink_s2s_feed(b->xmpp, in, hl + n, mode >> 2, (mode & 2) ? "xmpp.test" : NULL,
	               (mode & 2) ? "sip.test" : NULL, hb_s2s_out, NULL);
	hb_finish(b);
	hb_s2s_check();
	free(in);
	return 0;
}

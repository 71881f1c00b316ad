/* libFuzzer: stanzas from the XMPP server (ejabberd's component stream) through
 * the link's routing and link-local answers into the bridge's presence and
 * message handlers, with both legs' output captured (fuzz/bridge_harness.h).
 * The input is pieces separated by NUL bytes: "<..." a stanza on the link of
 * sip.test, anything else a SIP datagram from the trusted peer, so a seed can
 * set up a SIP subscription or IM session before the stanzas that use it. */
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
	struct bridge *b = hb_start();
	hb_pieces(b, (const char *)data, size);
	hb_finish(b);
	return 0;
}

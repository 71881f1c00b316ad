/* libFuzzer: what administrators and peers write that the bridge reads as text:
 * mapping files, addresses, Subscription-State values. The first byte picks the
 * reader. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/addr.h"
#include "presbridge/diag.h"
#include "presbridge/presmap.h"
#include "presbridge/sub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char domains[] = "sip sip.test sip.test\nxmpp xmpp.test xmpp.test\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	struct diag_list dl;
	struct addr_map *m = addr_map_new();
	char *s = malloc(len + 1), *out = NULL, *res = NULL;

	if (!m || !s)
		goto out;
	memcpy(s, text, len);
	s[len] = '\0';
	diag_init(&dl);
	addr_map_load_domains(m, domains, strlen(domains), "domains.map", &dl);
	switch (data[0] % 6) {
	case 0:
		addr_map_load_domains(m, text, len, "domains.map", &dl);
		break;
	case 1:
		addr_map_load_users(m, text, len, "users.map", &dl);
		break;
	case 2: {
		struct presmap *pm = NULL;
		if (presmap_parse(&pm, text, len, "presence.map", &dl) == 0)
			presmap_free(pm);
		break;
	}
	case 3: {
		struct sub_substate ss;
		sub_substate_parse(text, len, &ss);
		break;
	}
	case 4:
		if (addr_sip_to_jid(m, s, &out, NULL) == 0)
			addr_jid_to_sip(m, out, &res, NULL, NULL);
		break;
	default:
		if (addr_jid_to_sip(m, s, &out, NULL, NULL) == 0)
			addr_sip_to_jid(m, out, &res, NULL);
		break;
	}
	diag_free(&dl);
out:
	free(out);
	free(res);
	free(s);
	addr_map_free(m);
	return 0;
}

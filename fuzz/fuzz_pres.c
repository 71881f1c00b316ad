/* libFuzzer: presence documents as peers send them (PIDF/RPID, msrtc PIDF, msrtc
 * categories), through pres_read() and back out as PIDF. The first byte picks
 * the content type. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/diag.h"
#include "presbridge/pres.h"
#include "presbridge/presmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct presmap *map;
static struct pres *model;

static const char *const types[] = {
    "application/pidf+xml",
    "text/xml+msrtc.pidf",
    "application/msrtc-event-categories+xml",
    "application/xpidf+xml",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	FILE *f = fopen(PB_SOURCE_DIR "/mappings/presence.map", "rb");
	static char text[65536];
	size_t n = f ? fread(text, 1, sizeof(text), f) : 0;
	struct diag_list dl;
	if (f)
		fclose(f);
	diag_init(&dl);
	if (presmap_parse(&map, text, n, "presence.map", &dl) != 0)
		abort(); /* the shipped map must load */
	diag_free(&dl);
	model = malloc(sizeof(*model));
	return model ? 0 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	if (pres_read(type, (const char *)data + 1, size - 1, map, model) == 0) {
		char *doc = NULL;
		size_t len;
		if (pres_write_pidf(model, map, "sip:fuzz@xmpp.test", &doc, &len) == 0)
			free(doc);
	}
	return 0;
}

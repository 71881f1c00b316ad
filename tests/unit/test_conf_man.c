/*
 * presbridge.conf(5) against the configuration key table (issue 17 item 5): every
 * key conf.c accepts is documented under its section's ".Ss [section]" heading as
 * an ".It Ic key" line, and the page documents no key the code does not accept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/conf.h"

#define MAX_DOC 256

struct doc_key {
	char sect[32];
	char key[64];
};

/* Keys of the SECTIONS part of an mdoc page given as text. Returns the count. */
static size_t doc_keys(const char *text, struct doc_key *out, size_t max)
{
	size_t n = 0;
	char sect[32] = "";
	int in_sections = 0;
	const char *p = text;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char line[256];
		if (len >= sizeof(line))
			len = sizeof(line) - 1;
		memcpy(line, p, len);
		line[len] = '\0';
		p += eol ? len + 1 : len;
		if (strncmp(line, ".Sh ", 4) == 0) {
			in_sections = strcmp(line + 4, "SECTIONS") == 0;
			sect[0] = '\0';
		} else if (in_sections && strncmp(line, ".Ss [", 5) == 0) {
			size_t k = strcspn(line + 5, " ]");
			if (k >= sizeof(sect))
				k = sizeof(sect) - 1;
			memcpy(sect, line + 5, k);
			sect[k] = '\0';
		} else if (in_sections && sect[0] && strncmp(line, ".It Ic ", 7) == 0 &&
		           n < max) {
			size_t k = strcspn(line + 7, " ");
			if (k >= sizeof(out[n].key))
				k = sizeof(out[n].key) - 1;
			snprintf(out[n].sect, sizeof(out[n].sect), "%s", sect);
			memcpy(out[n].key, line + 7, k);
			out[n].key[k] = '\0';
			n++;
		}
	}
	return n;
}

/* Differences between the page's keys and the code's, printed; their count. */
static int compare(const struct doc_key *doc, size_t ndoc, int verbose)
{
	int diffs = 0;
	const char *s, *k;
	for (size_t i = 0; conf_key_at(i, &s, &k) == 0; i++) {
		size_t j = 0;
		while (j < ndoc &&
		       !(strcmp(doc[j].sect, s) == 0 && strcmp(doc[j].key, k) == 0))
			j++;
		if (j == ndoc) {
			if (verbose)
				printf("# [%s] %s: in the key table, not in "
				       "presbridge.conf(5)\n",
				       s, k);
			diffs++;
		}
	}
	for (size_t j = 0; j < ndoc; j++) {
		size_t i = 0;
		while (conf_key_at(i, &s, &k) == 0 &&
		       !(strcmp(doc[j].sect, s) == 0 && strcmp(doc[j].key, k) == 0))
			i++;
		if (conf_key_at(i, &s, &k) != 0) {
			if (verbose)
				printf("# [%s] %s: in presbridge.conf(5), not in the key "
				       "table\n",
				       doc[j].sect, doc[j].key);
			diffs++;
		}
	}
	return diffs;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20);
	size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

static void test_page_matches_key_table(void **state)
{
	(void)state;
	char *text = slurp(PB_SOURCE_DIR "/man/presbridge.conf.5");
	assert_non_null(text);
	struct doc_key doc[MAX_DOC];
	size_t n = doc_keys(text, doc, MAX_DOC);
	free(text);
	assert_true(n > 0);
	assert_int_equal(compare(doc, n, 1), 0);
}

/* The check itself: a page missing a key, and one with a key the code lacks. */
static void test_check_finds_differences(void **state)
{
	(void)state;
	const char *s, *k;
	size_t nkeys = 0;
	while (conf_key_at(nkeys, &s, &k) == 0)
		nkeys++;
	assert_true(nkeys > 1);
	assert_int_equal(conf_key_at(nkeys, &s, &k), -ENOENT);

	struct doc_key doc[MAX_DOC + 1];
	assert_true(nkeys < MAX_DOC);
	for (size_t i = 0; i < nkeys; i++) {
		assert_int_equal(conf_key_at(i, &s, &k), 0);
		snprintf(doc[i].sect, sizeof(doc[i].sect), "%s", s);
		snprintf(doc[i].key, sizeof(doc[i].key), "%s", k);
	}
	assert_int_equal(compare(doc, nkeys, 0), 0);
	/* one key dropped: one difference */
	assert_int_equal(compare(doc + 1, nkeys - 1, 0), 1);
	/* one key the code does not know, and a known key in the wrong section */
	snprintf(doc[nkeys].sect, sizeof(doc[nkeys].sect), "bridge");
	snprintf(doc[nkeys].key, sizeof(doc[nkeys].key), "no_such_key");
	assert_int_equal(compare(doc, nkeys + 1, 0), 1);
	snprintf(doc[nkeys].sect, sizeof(doc[nkeys].sect), "peer");
	snprintf(doc[nkeys].key, sizeof(doc[nkeys].key), "state_sync");
	assert_int_equal(compare(doc, nkeys + 1, 0), 1);
}

/* The page parser: keys outside SECTIONS or before a section heading are not keys. */
static void test_parser(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		size_t n;
		const char *sect0, *key0;
	} rows[] = {
	    {".Sh SECTIONS\n.Ss [sip]\n.It Ic listen Ar x\n", 1, "sip", "listen"},
	    {".Sh SECTIONS\n.Ss [peer NAME]\n.It Ic host Ar fqdn\n", 1, "peer", "host"},
	    {".Sh SECTIONS\n.Ss [s2s-peer DOMAIN]\n.It Ic tls\n", 1, "s2s-peer", "tls"},
	    {".Sh FILES\n.Ss [sip]\n.It Ic listen\n", 0, NULL, NULL},
	    {".Sh SECTIONS\n.It Ic listen\n", 0, NULL, NULL},
	    {".Sh SECTIONS\n.Ss [sip]\n.It Ic a\n.Sh FILES\n.It Ic b\n", 1, "sip", "a"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct doc_key doc[4];
		size_t n = doc_keys(rows[i].text, doc, 4);
		assert_int_equal(n, rows[i].n);
		if (n) {
			assert_string_equal(doc[0].sect, rows[i].sect0);
			assert_string_equal(doc[0].key, rows[i].key0);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parser),
	    cmocka_unit_test(test_check_finds_differences),
	    cmocka_unit_test(test_page_matches_key_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

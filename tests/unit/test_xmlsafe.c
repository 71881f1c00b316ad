#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/xmlsafe.h"

struct parse_case {
	const char *name;
	const char *doc;
	int want;
};

static const struct parse_case parse_cases[] = {
    {"plain", "<a xmlns='urn:x'><b>t</b></a>", 0},
    {"prolog", "<?xml version='1.0' encoding='UTF-8'?><a/>", 0},
    {"cdata", "<a><![CDATA[<b>]]></a>", 0},
    {"comment", "<a><!-- c --></a>", 0},
    {"not well-formed", "<a><b></a>", -EBADMSG},
    {"empty", "", -EBADMSG},
    {"text only", "hello", -EBADMSG},
    {"undefined entity", "<a>&foo;</a>", -EBADMSG},
    {"builtin entities", "<a>&lt;&amp;&#233;</a>", 0},
    {"doctype", "<!DOCTYPE a><a/>", -EPERM},
    {"billion laughs",
     "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
     "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
     "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>"
     "<lolz>&lol3;</lolz>",
     -EPERM},
    {"external entity",
     "<?xml version='1.0'?><!DOCTYPE a [<!ENTITY x SYSTEM "
     "'http://127.0.0.1:1/x'>]><a>&x;</a>",
     -EPERM},
    {"external dtd", "<!DOCTYPE a SYSTEM 'file:///etc/passwd'><a/>", -EPERM},
    {"entity without doctype", "<a><!ENTITY x 'y'></a>", -EPERM},
    {"invalid utf8", "<a>\xc3\x28</a>", -EILSEQ},
    {"overlong utf8", "<a>\xc0\xaf</a>", -EILSEQ},
    {"surrogate utf8", "<a>\xed\xa0\x80</a>", -EILSEQ},
    {"valid utf8", "<a>\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80</a>", 0},
};

static void test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		xmlDoc *doc = NULL;
		int err = xmls_parse(c->doc, strlen(c->doc), XMLS_MAX_DEFAULT, &doc);
		if (err != c->want)
			fail_msg("case '%s': got %d (%s), want %d", c->name, err,
			         xmls_strerror(err), c->want);
		if (err == 0)
			assert_non_null(doc);
		else
			assert_null(doc);
		xmlFreeDoc(doc);
	}
}

/* The parser context is kept from one document to the next: every case gives
 * the same answer in any order, and documents with ever new names (past the
 * renewal limits) each read back their own root and text. */
static void test_context_reuse(void **state)
{
	(void)state;
	size_t n = sizeof(parse_cases) / sizeof(parse_cases[0]);
	for (size_t round = 0; round < 3 * n; round++) {
		const struct parse_case *c = &parse_cases[(round * 7) % n];
		xmlDoc *doc = NULL;
		int err = xmls_parse(c->doc, strlen(c->doc), XMLS_MAX_DEFAULT, &doc);
		if (err != c->want)
			fail_msg("round %zu, case '%s': got %d, want %d", round, c->name,
			         err, c->want);
		xmlFreeDoc(doc);
	}
	for (unsigned i = 0; i < 12000; i++) {
		char buf[96], name[32];
		snprintf(name, sizeof(name), "e%u", i);
		int len =
		    snprintf(buf, sizeof(buf), "<%s a='%u'>t%u</%s>", name, i, i, name);
		xmlDoc *doc = NULL;
		assert_int_equal(xmls_parse(buf, (size_t)len, XMLS_MAX_DEFAULT, &doc), 0);
		xmlNode *root = xmlDocGetRootElement(doc);
		xmlChar *text = xmlNodeGetContent(root);
		char want[16];
		snprintf(want, sizeof(want), "t%u", i);
		if (strcmp((const char *)root->name, name) != 0 ||
		    strcmp((const char *)text, want) != 0)
			fail_msg("document %u read back as <%s>%s", i, root->name, text);
		xmlFree(text);
		xmlFreeDoc(doc);
	}
}

static void test_oversize(void **state)
{
	(void)state;
	const char *doc = "<a>0123456789</a>";
	xmlDoc *d = NULL;
	assert_int_equal(xmls_parse(doc, strlen(doc), 10, &d), -E2BIG);
	assert_null(d);
	assert_int_equal(xmls_parse(doc, strlen(doc), strlen(doc), &d), 0);
	xmlFreeDoc(d);
}

static void test_embedded_nul(void **state)
{
	(void)state;
	const char doc[] = "<a>x\0y</a>";
	xmlDoc *d = NULL;
	assert_int_equal(xmls_parse(doc, sizeof(doc) - 1, 100, &d), -EILSEQ);
}

static void test_navigation(void **state)
{
	(void)state;
	const char *doc =
	    "<r xmlns='urn:a' xmlns:b='urn:b'><x>1</x><b:x> two </b:x><x>3</x></r>";
	xmlDoc *d = NULL;
	assert_int_equal(xmls_parse(doc, strlen(doc), 1000, &d), 0);
	xmlNode *root = xmlDocGetRootElement(d);
	xmlNode *x = xmls_child(root, "urn:b", "x");
	char *t = xmls_text(x);
	assert_string_equal(t, "two");
	free(t);
	x = xmls_child(root, "urn:a", "x");
	x = xmls_next(x, "urn:a", "x");
	t = xmls_text(x);
	assert_string_equal(t, "3");
	free(t);
	assert_null(xmls_next(x, NULL, "x"));
	xmlFreeDoc(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_table), cmocka_unit_test(test_context_reuse),
	    cmocka_unit_test(test_oversize),    cmocka_unit_test(test_embedded_nul),
	    cmocka_unit_test(test_navigation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

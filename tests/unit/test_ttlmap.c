/* ttlmap: the bounded, expiring table behind the bridge's memory of messages
 * awaiting an XMPP error (RFC 3428 section 7 reports) and of SIP users that
 * refused typing notifications (RFC 3994 section 4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/ttlmap.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int freed;

static void count_free(void *v)
{
	freed++;
	free(v);
}

static void *val(int n)
{
	int *p = malloc(sizeof(*p));
	assert_non_null(p);
	*p = n;
	return p;
}

enum op { PUT, HAS, MISSING, TAKE };

struct step {
	enum op op;
	const char *key;
	int64_t now;
	int n;        /* PUT: the value; TAKE: the value expected (0: none) */
	size_t count; /* entries after the step */
	int freed;    /* values released so far */
};

static void run(const char *name, size_t max, int64_t ttl, const struct step *s,
                size_t ns)
{
	struct ttlmap m;
	freed = 0;
	ttlmap_init(&m, max, ttl, count_free, 1, 2);
	for (size_t i = 0; i < ns; i++) {
		const struct step *st = &s[i];
		switch (st->op) {
		case PUT:
			assert_int_equal(ttlmap_put(&m, st->key, val(st->n), st->now), 0);
			break;
		case HAS:
			if (!ttlmap_has(&m, st->key, st->now))
				fail_msg("%s step %zu: '%s' missing", name, i, st->key);
			break;
		case MISSING:
			if (ttlmap_has(&m, st->key, st->now))
				fail_msg("%s step %zu: '%s' still there", name, i,
				         st->key);
			break;
		case TAKE: {
			int *v = ttlmap_take(&m, st->key, st->now);
			if ((v ? *v : 0) != st->n)
				fail_msg("%s step %zu: took %d, want %d", name, i,
				         v ? *v : 0, st->n);
			free(v);
			break;
		}
		}
		if (m.n != st->count || freed != st->freed)
			fail_msg("%s step %zu: %zu entries and %d freed, want %zu and %d",
			         name, i, m.n, freed, st->count, st->freed);
	}
	size_t left = m.n;
	int before = freed;
	ttlmap_free(&m);
	assert_int_equal(freed - before, (int)left);
}

static void test_ttlmap(void **state)
{
	/* An XMPP error for a relayed message is matched while it is remembered. */
	static const struct step basic[] = {
	    {PUT, "pbim-1", 0, 1, 1, 0},
	    {HAS, "pbim-1", 10, 0, 1, 0},
	    {MISSING, "pbim-2", 10, 0, 1, 0},
	    {TAKE, "pbim-1", 20, 1, 0, 0}, /* taken: the caller owns it, not freed */
	    {TAKE, "pbim-1", 20, 0, 0, 0}, /* one report per message */
	};
	/* Bounded in time: gone at exactly its TTL, released then. */
	static const struct step ttl[] = {
	    {PUT, "a", 0, 1, 1, 0},    {PUT, "b", 50, 2, 2, 0},
	    {HAS, "a", 99, 0, 2, 0},   {MISSING, "a", 100, 0, 1, 1},
	    {TAKE, "b", 149, 2, 0, 1}, {PUT, "c", 200, 3, 1, 1},
	    {TAKE, "c", 300, 0, 0, 2}, /* expired: not reported */
	};
	/* Bounded in memory: the oldest goes when the table is full. */
	static const struct step full[] = {
	    {PUT, "a", 0, 1, 1, 0},     {PUT, "b", 1, 2, 2, 0},
	    {PUT, "c", 2, 3, 3, 0},     {PUT, "d", 3, 4, 3, 1},
	    {MISSING, "a", 3, 0, 3, 1}, {HAS, "b", 3, 0, 3, 1},
	    {HAS, "d", 3, 0, 3, 1},     {PUT, "e", 4, 5, 3, 2},
	    {MISSING, "b", 4, 0, 3, 2},
	};
	/* The same key again (a user refusing typing twice): one entry, renewed. */
	static const struct step again[] = {
	    {PUT, "sip:alice@sip.test", 0, 1, 1, 0},
	    {PUT, "sip:alice@sip.test", 60, 2, 1, 1},
	    {HAS, "sip:alice@sip.test", 150, 0, 1, 1}, /* lives from its renewal */
	    {TAKE, "sip:alice@sip.test", 150, 2, 0, 1},
	};
	(void)state;
	run("basic", 8, 100, basic, N(basic));
	run("ttl", 8, 100, ttl, N(ttl));
	run("full", 3, 1000, full, N(full));
	run("again", 8, 100, again, N(again));
}

/* Values the table does not own (free_val NULL) are never released by it. */
static void test_ttlmap_unowned(void **state)
{
	struct ttlmap m;
	(void)state;
	ttlmap_init(&m, 2, 10, NULL, 3, 4);
	assert_int_equal(ttlmap_put(&m, "x", NULL, 0), 0);
	assert_int_equal(ttlmap_put(&m, "y", NULL, 1), 0);
	assert_int_equal(ttlmap_put(&m, "z", NULL, 2), 0);
	assert_false(ttlmap_has(&m, "x", 2));
	assert_true(ttlmap_has(&m, "z", 2));
	assert_false(ttlmap_has(&m, "z", 12));
	assert_int_equal(m.n, 0);
	ttlmap_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ttlmap),
	    cmocka_unit_test(test_ttlmap_unowned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

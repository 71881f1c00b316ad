#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/hmap.h"

/* Reference vectors from the SipHash paper's appendix: key 00..0f, message
 * 00..(n-1). */
static const struct {
	size_t len;
	uint64_t want;
} vectors[] = {
    {0, 0x726fdb47dd0e0e31ULL}, {1, 0x74f839c593dc67fdULL},  {7, 0xab0200f58b01d137ULL},
    {8, 0x93f5f5799a932462ULL}, {15, 0xa129ca6149be45e5ULL}, {63, 0x958a324ceb064572ULL},
};

static void test_siphash_vectors(void **state)
{
	(void)state;
	unsigned char msg[64];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)i;
	uint64_t k0 = 0x0706050403020100ULL, k1 = 0x0f0e0d0c0b0a0908ULL;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		uint64_t got = hmap_siphash(k0, k1, msg, vectors[i].len);
		if (got != vectors[i].want)
			fail_msg("length %zu: %016llx, want %016llx", vectors[i].len,
			         (unsigned long long)got,
			         (unsigned long long)vectors[i].want);
	}
}

struct item {
	char key[32];
	int v;
};

/* Insert, look up, delete and re-insert many keys, checking against a plain array. */
static void test_map_model(void **state)
{
	(void)state;
	enum { N = 5000 };
	struct item *it = calloc(N, sizeof(*it));
	struct hmap m;
	hmap_init(&m, 1, 2);
	for (int i = 0; i < N; i++) {
		snprintf(it[i].key, sizeof(it[i].key), "sip:user%d@sip.test", i);
		it[i].v = i;
		assert_int_equal(hmap_put(&m, it[i].key, strlen(it[i].key), &it[i]), 0);
	}
	assert_int_equal(m.n, N);
	assert_int_equal(hmap_put(&m, it[7].key, strlen(it[7].key), &it[8]), -EEXIST);
	for (int i = 0; i < N; i += 2)
		assert_ptr_equal(hmap_del(&m, it[i].key, strlen(it[i].key)), &it[i]);
	assert_null(hmap_del(&m, it[0].key, strlen(it[0].key)));
	for (int i = 0; i < N; i++) {
		struct item *got = hmap_get(&m, it[i].key, strlen(it[i].key));
		if (i % 2 == 0 && got)
			fail_msg("deleted key %s still found", it[i].key);
		if (i % 2 == 1 && got != &it[i])
			fail_msg("key %s lost", it[i].key);
	}
	/* Deleted slots are reused and the table stays bounded. */
	for (int round = 0; round < 20; round++)
		for (int i = 0; i < N; i += 2) {
			assert_int_equal(
			    hmap_put(&m, it[i].key, strlen(it[i].key), &it[i]), 0);
			assert_ptr_equal(hmap_del(&m, it[i].key, strlen(it[i].key)),
			                 &it[i]);
		}
	assert_true(m.cap <= 4 * 4096);
	size_t pos = 0, seen = 0;
	while (hmap_next(&m, &pos))
		seen++;
	assert_int_equal(seen, N / 2);
	/* Keys that are prefixes of each other are different keys. */
	assert_null(hmap_get(&m, "sip:user1", 9));
	hmap_free(&m);
	free(it);
}

static void test_empty(void **state)
{
	(void)state;
	struct hmap m;
	size_t pos = 0;
	hmap_init(&m, 3, 4);
	assert_null(hmap_get(&m, "x", 1));
	assert_null(hmap_del(&m, "x", 1));
	assert_null(hmap_next(&m, &pos));
	hmap_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_siphash_vectors),
	    cmocka_unit_test(test_map_model),
	    cmocka_unit_test(test_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

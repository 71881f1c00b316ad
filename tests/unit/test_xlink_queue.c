/* The bounded queue of stanzas that wait while the link is down. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "presbridge/xlink.h"
#include "presbridge/xqueue.h"

static char *item(unsigned i)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "<m%u/>", i);
	return strdup(buf);
}

/* Full by count: the new stanza is refused (and stays the caller's), the queued
 * ones are kept in order, also across the ring's wrap-around. */
static void test_count_bound(void **state)
{
	(void)state;
	struct xqueue q;
	assert_int_equal(xqueue_init(&q, 3, 1000), 0);
	unsigned next = 0, popped = 0;
	for (int round = 0; round < 5; round++) {
		while (xqueue_count(&q) < 3) {
			char *s = item(next);
			assert_int_equal(xqueue_push(&q, s, strlen(s)), 0);
			next++;
		}
		char *extra = item(999);
		assert_int_equal(xqueue_push(&q, extra, strlen(extra)), -ENOBUFS);
		free(extra); /* still ours */
		size_t len;
		char *s = xqueue_pop(&q, &len);
		char want[32];
		snprintf(want, sizeof(want), "<m%u/>", popped++);
		assert_string_equal(s, want);
		assert_int_equal(len, strlen(want));
		free(s);
	}
	assert_int_equal(xqueue_clear(&q), 2);
	assert_int_equal(xqueue_count(&q), 0);
	assert_null(xqueue_pop(&q, NULL));
	xqueue_free(&q);
	xqueue_free(&q); /* twice is harmless */
}

static void test_byte_bound(void **state)
{
	(void)state;
	struct xqueue q;
	assert_int_equal(xqueue_init(&q, 100, 10), 0);
	char *a = strdup("123456"), *b = strdup("12345"), *c = strdup("1234");
	assert_int_equal(xqueue_push(&q, a, 6), 0);
	assert_int_equal(xqueue_push(&q, b, 5), -ENOBUFS); /* 11 > 10 */
	assert_int_equal(xqueue_push(&q, c, 4), 0);        /* exactly 10 */
	assert_int_equal(xqueue_bytes(&q), 10);
	free(xqueue_pop(&q, NULL));
	assert_int_equal(xqueue_bytes(&q), 4);
	assert_int_equal(xqueue_push(&q, b, 5), 0);
	assert_int_equal(xqueue_count(&q), 2);
	xqueue_free(&q);
}

static void test_init(void **state)
{
	(void)state;
	struct xqueue q;
	assert_int_equal(xqueue_init(&q, 0, 10), -EINVAL);
	assert_int_equal(xqueue_init(&q, 10, 0), -EINVAL);
	xqueue_free(&q);
	/* the link's defaults */
	assert_int_equal(xqueue_init(&q, XLINK_QUEUE_MAX, XLINK_QUEUE_BYTES), 0);
	for (unsigned i = 0; i < XLINK_QUEUE_MAX; i++) {
		char *s = item(i);
		assert_int_equal(xqueue_push(&q, s, strlen(s)), 0);
	}
	char *s = item(0);
	assert_int_equal(xqueue_push(&q, s, strlen(s)), -ENOBUFS);
	free(s);
	assert_int_equal(xqueue_clear(&q), XLINK_QUEUE_MAX);
	xqueue_free(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_count_bound),
	    cmocka_unit_test(test_byte_bound),
	    cmocka_unit_test(test_init),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_pool - the pool's timing rules (issue 18; include/presbridge/pool.h,
 * docs/design-notes.md "Pool"): one row per lease length.
 *
 * The rules: the active node renews every lease/4; it fences itself lease -
 * lease/4 after the last confirmed renewal was sent, so before the lease can
 * have expired in the database (whose clock standbys go by); a standby polls
 * every POOL_POLL_MS (or lease/4 if shorter), so a takeover comes at most
 * lease + poll after the last renewal; a query unanswered for lease/2 resets the
 * connection, early enough for a fresh one to renew before the fence; the
 * lease written when the node takes over is 4 x lease, so the blocking restore
 * of a large table does not fence the node that just took over (found by the
 * benchmark: 100,000 rows took 2.6 s), renewed to lease when the restore ends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "presbridge/pool.h"

static void test_timing_rows(void **state)
{
	(void)state;
	static const struct {
		uint32_t lease_s;
		struct pool_timing want;
	} rows[] = {
	    /* lease_s  lease   renew  fence  poll  query  take */
	    // clang-format off
	    {1, {1000, 250, 750, 250, 500, 4000}},
	    {2, {2000, 500, 1500, 500, 1000, 8000}},
	    {3, {3000, 750, 2250, 500, 1500, 12000}}, /* the default: takeover <= 3.5 s */
	    {4, {4000, 1000, 3000, 500, 2000, 16000}},
	    {60, {60000, 15000, 45000, 500, 30000, 240000}},
	    // clang-format on
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct pool_timing t;
		pool_timing(rows[i].lease_s, &t);
		assert_int_equal(t.lease_ms, rows[i].want.lease_ms);
		assert_int_equal(t.renew_ms, rows[i].want.renew_ms);
		assert_int_equal(t.fence_ms, rows[i].want.fence_ms);
		assert_int_equal(t.poll_ms, rows[i].want.poll_ms);
		assert_int_equal(t.query_ms, rows[i].want.query_ms);
		assert_int_equal(t.take_ms, rows[i].want.take_ms);
	}
}

/* The invariants, over every lease the configuration allows (1..60 s). */
static void test_timing_invariants(void **state)
{
	(void)state;
	for (uint32_t s = 1; s <= 60; s++) {
		struct pool_timing t;
		pool_timing(s, &t);
		/* fenced strictly before the lease can expire for the others */
		assert_true(t.fence_ms < t.lease_ms);
		/* at least two renewals fit before the fence: one lost is no fence */
		assert_true(2 * t.renew_ms <= t.fence_ms);
		/* a hung query is dropped before the fence, so a new connection
		 * still has time to renew */
		assert_true(t.query_ms < t.fence_ms);
		/* the takeover's lease outlasts the normal one */
		assert_true(t.take_ms > t.lease_ms);
		/* the bound with the default lease: detection within 5 s */
		if (s == 3)
			assert_true(t.lease_ms + t.poll_ms <= 5000);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_timing_rows),
	    cmocka_unit_test(test_timing_invariants),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

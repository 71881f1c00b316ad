#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "presbridge/loop.h"

struct rec {
	struct loop *l;
	int order[64];
	int n;
};

struct tctx {
	struct rec *r;
	int id;
	struct loop_timer t;
};

static void fire(void *arg)
{
	struct tctx *c = arg;
	c->r->order[c->r->n++] = c->id;
}

/* Timers fire in due order whatever order they were started and cancelled in. */
static void test_timer_order(void **state)
{
	(void)state;
	struct rec r = {0};
	assert_int_equal(loop_new(&r.l), 0);
	static const struct {
		int id;
		unsigned ms;
	} starts[] = {{1, 40}, {2, 10}, {3, 30}, {4, 20},
	              {5, 5},  {6, 25}, {7, 15}, {8, 35}};
	struct tctx c[8];
	memset(c, 0, sizeof(c));
	for (size_t i = 0; i < 8; i++) {
		c[i].r = &r;
		c[i].id = starts[i].id;
		loop_timer_start(r.l, &c[i].t, starts[i].ms, fire, &c[i]);
	}
	loop_timer_cancel(r.l, &c[2].t);                /* id 3 */
	loop_timer_cancel(r.l, &c[4].t);                /* id 5, the earliest */
	loop_timer_start(r.l, &c[0].t, 1, fire, &c[0]); /* id 1 moves to the front */
	assert_false(loop_timer_running(&c[2].t));
	uint64_t t0 = loop_clock_ms();
	while (r.n < 6 && loop_clock_ms() - t0 < 2000)
		assert_int_equal(loop_run_once(r.l, 100), 0);
	static const int want[] = {1, 2, 7, 4, 6, 8};
	assert_int_equal(r.n, 6);
	for (int i = 0; i < 6; i++)
		if (r.order[i] != want[i])
			fail_msg("position %d: timer %d, want %d", i, r.order[i],
			         want[i]);
	loop_free(r.l);
}

static void on_read(int fd, unsigned events, void *arg)
{
	struct rec *r = arg;
	char buf[16];
	if (events & LOOP_READ) {
		ssize_t n = read(fd, buf, sizeof(buf));
		r->order[r->n++] = (int)n;
	}
	if (r->n == 2)
		loop_fd_del(r->l, fd);
}

static void stop_cb(void *arg)
{
	loop_stop(((struct rec *)arg)->l);
}

static void test_fd_and_stop(void **state)
{
	(void)state;
	struct rec r = {0};
	int p[2];
	struct loop_timer t = {0};
	assert_int_equal(pipe(p), 0);
	assert_int_equal(loop_new(&r.l), 0);
	assert_int_equal(loop_fd_add(r.l, p[0], LOOP_READ, on_read, &r), 0);
	assert_int_equal(write(p[1], "abc", 3), 3);
	assert_int_equal(loop_run_once(r.l, 1000), 0);
	assert_int_equal(write(p[1], "de", 2), 2);
	assert_int_equal(loop_run_once(r.l, 1000), 0);
	assert_int_equal(write(p[1], "f", 1), 1); /* fd was removed: not read */
	loop_timer_start(r.l, &t, 20, stop_cb, &r);
	assert_int_equal(loop_run(r.l), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.order[0], 3);
	assert_int_equal(r.order[1], 2);
	close(p[0]);
	close(p[1]);
	loop_free(r.l);
}

static void on_sig(int signo, void *arg)
{
	struct rec *r = arg;
	r->order[r->n++] = signo;
	loop_stop(r->l);
}

static void test_signal(void **state)
{
	(void)state;
	struct rec r = {0};
	assert_int_equal(loop_new(&r.l), 0);
	assert_int_equal(loop_signal(r.l, SIGUSR1, on_sig, &r), 0);
	kill(getpid(), SIGUSR1);
	assert_int_equal(loop_run(r.l), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.order[0], SIGUSR1);
	loop_free(r.l);
}

/* An idle loop sleeps: one turn with nothing to do waits for its timeout. */
static void test_idle_waits(void **state)
{
	(void)state;
	struct loop *l;
	assert_int_equal(loop_new(&l), 0);
	uint64_t t0 = loop_clock_ms();
	assert_int_equal(loop_run_once(l, 50), 0);
	assert_true(loop_clock_ms() - t0 >= 45);
	loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_timer_order),
	    cmocka_unit_test(test_fd_and_stop),
	    cmocka_unit_test(test_signal),
	    cmocka_unit_test(test_idle_waits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

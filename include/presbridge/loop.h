/*
 * loop - the one event loop that drives both legs: file descriptors (epoll),
 * timers (a binary heap on the monotonic clock) and signals (signalfd).
 *
 * Single-threaded. Handlers may add, change and remove descriptors and timers,
 * including their own, while they run.
 */
#ifndef PRESBRIDGE_LOOP_H
#define PRESBRIDGE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

enum {
	LOOP_READ = 1 << 0,
	LOOP_WRITE = 1 << 1,
	LOOP_ERROR = 1 << 2, /* hang-up or error; reported whatever was asked */
};

typedef void(loop_fd_h)(int fd, unsigned events, void *arg);
typedef void(loop_timer_h)(void *arg);
typedef void(loop_signal_h)(int signo, void *arg);
/* Runs once per turn after events and timers; for libraries (libstrophe) that
 * buffer work of their own. Returns the longest the loop may then sleep, in ms,
 * or -1 for no limit. */
typedef int(loop_idle_h)(void *arg);

/* A timer lives in its owner's struct; the loop only links it. */
struct loop_timer {
	uint64_t due; /* monotonic ms */
	size_t slot;  /* heap index + 1; 0 when not running */
	loop_timer_h *h;
	void *arg;
};

/* Create a loop. *lp: caller-owns (loop_free). Returns 0 or -errno. */
int loop_new(struct loop **lp);
void loop_free(struct loop *l);

int loop_fd_add(struct loop *l, int fd, unsigned events, loop_fd_h *h, void *arg);
int loop_fd_mod(struct loop *l, int fd, unsigned events);
/* Forget fd (the caller closes it). Safe from inside any handler. A descriptor
 * number reused in the same turn may see one spurious readiness: handlers must
 * treat EAGAIN as normal. */
void loop_fd_del(struct loop *l, int fd);

/* (Re)start t to fire once after ms milliseconds. */
void loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t ms, loop_timer_h *h,
                      void *arg);
void loop_timer_cancel(struct loop *l, struct loop_timer *t);
bool loop_timer_running(const struct loop_timer *t);

/* Deliver signo through the loop (it is blocked for normal delivery). */
int loop_signal(struct loop *l, int signo, loop_signal_h *h, void *arg);

/* At most this many idle hooks (one per library that buffers work). */
#define LOOP_IDLE_MAX 4

/* Add an idle hook; -ENOSPC past LOOP_IDLE_MAX. */
int loop_idle_add(struct loop *l, loop_idle_h *h, void *arg);
/* Remove the hook added with the same h and arg; safe from inside a hook. */
void loop_idle_del(struct loop *l, loop_idle_h *h, void *arg);

/* Run until loop_stop(). Returns 0, or -errno if epoll fails. */
int loop_run(struct loop *l);
/* Run one turn, waiting at most max_ms (-1: as long as needed). */
int loop_run_once(struct loop *l, int max_ms);
void loop_stop(struct loop *l);

/* The loop's monotonic clock in milliseconds, read once per turn. */
uint64_t loop_now(const struct loop *l);
uint64_t loop_clock_ms(void);

#endif

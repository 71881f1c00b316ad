#include "presbridge/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "presbridge/stats.h"

struct fd_slot {
	int fd;
	unsigned events;
	loop_fd_h *h;
	void *arg;
	bool live;
};

struct sig_slot {
	int signo;
	loop_signal_h *h;
	void *arg;
};

struct loop {
	int ep;
	uint64_t now;
	bool stop;
	struct fd_slot *fds; /* indexed by descriptor */
	size_t nfds;
	struct loop_timer **heap;
	size_t nheap, capheap;
	int sigfd;
	sigset_t sigs;
	struct sig_slot sig[16];
	size_t nsig;
	struct {
		loop_idle_h *h;
		void *arg;
	} idle[LOOP_IDLE_MAX];
	size_t nidle;
};

uint64_t loop_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int loop_new(struct loop **lp)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0) {
		int e = -errno;
		free(l);
		return e;
	}
	l->sigfd = -1;
	sigemptyset(&l->sigs);
	l->now = loop_clock_ms();
	*lp = l;
	return 0;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	if (l->sigfd >= 0) {
		close(l->sigfd);
		sigprocmask(SIG_UNBLOCK, &l->sigs, NULL);
	}
	close(l->ep);
	free(l->fds);
	free(l->heap);
	free(l);
}

static uint32_t to_epoll(unsigned ev)
{
	return (ev & LOOP_READ ? EPOLLIN : 0u) | (ev & LOOP_WRITE ? EPOLLOUT : 0u);
}

int loop_fd_add(struct loop *l, int fd, unsigned events, loop_fd_h *h, void *arg)
{
	if (fd < 0)
		return -EBADF;
	if ((size_t)fd >= l->nfds) {
		size_t n = l->nfds ? l->nfds : 64;
		while (n <= (size_t)fd)
			n *= 2;
		struct fd_slot *v = realloc(l->fds, n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memset(v + l->nfds, 0, (n - l->nfds) * sizeof(*v));
		l->fds = v;
		l->nfds = n;
	}
	struct epoll_event ee = {.events = to_epoll(events), .data.fd = fd};
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ee) != 0)
		return -errno;
	l->fds[fd] = (struct fd_slot){fd, events, h, arg, true};
	return 0;
}

int loop_fd_mod(struct loop *l, int fd, unsigned events)
{
	if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].live)
		return -EBADF;
	if (l->fds[fd].events == events)
		return 0;
	struct epoll_event ee = {.events = to_epoll(events), .data.fd = fd};
	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ee) != 0)
		return -errno;
	l->fds[fd].events = events;
	return 0;
}

void loop_fd_del(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].live)
		return;
	epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
	l->fds[fd].live = false;
}

/* Binary min-heap on due time; slot holds index + 1 so 0 means "not queued". */
static void heap_set(struct loop *l, size_t i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->slot = i + 1;
}

static void heap_up(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (l->heap[p]->due <= t->due)
			break;
		heap_set(l, i, l->heap[p]);
		i = p;
	}
	heap_set(l, i, t);
}

static void heap_down(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && l->heap[c + 1]->due < l->heap[c]->due)
			c++;
		if (t->due <= l->heap[c]->due)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	if (!t->slot)
		return;
	size_t i = t->slot - 1;
	t->slot = 0;
	l->nheap--;
	if (i == l->nheap)
		return;
	struct loop_timer *moved = l->heap[l->nheap];
	heap_set(l, i, moved);
	heap_up(l, i);
	heap_down(l, moved->slot - 1);
}

void loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t ms, loop_timer_h *h,
                      void *arg)
{
	loop_timer_cancel(l, t);
	if (l->nheap == l->capheap) {
		size_t cap = l->capheap ? l->capheap * 2 : 64;
		struct loop_timer **v = realloc(l->heap, cap * sizeof(*v));
		if (!v)
			abort(); /* a lost timer would silently stall a subscription */
		l->heap = v;
		l->capheap = cap;
	}
	t->due = l->now + ms;
	t->h = h;
	t->arg = arg;
	heap_set(l, l->nheap++, t);
	heap_up(l, l->nheap - 1);
}

bool loop_timer_running(const struct loop_timer *t)
{
	return t->slot != 0;
}

static void on_signalfd(int fd, unsigned events, void *arg)
{
	struct loop *l = arg;
	struct signalfd_siginfo si;
	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		for (size_t i = 0; i < l->nsig; i++)
			if (l->sig[i].signo == (int)si.ssi_signo)
				l->sig[i].h((int)si.ssi_signo, l->sig[i].arg);
}

int loop_signal(struct loop *l, int signo, loop_signal_h *h, void *arg)
{
	if (l->nsig == sizeof(l->sig) / sizeof(l->sig[0]))
		return -ENOSPC;
	sigaddset(&l->sigs, signo);
	if (sigprocmask(SIG_BLOCK, &l->sigs, NULL) != 0)
		return -errno;
	int fd = signalfd(l->sigfd, &l->sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (l->sigfd < 0) {
		int e = loop_fd_add(l, fd, LOOP_READ, on_signalfd, l);
		if (e) {
			close(fd);
			return e;
		}
		l->sigfd = fd;
	}
	l->sig[l->nsig++] = (struct sig_slot){signo, h, arg};
	return 0;
}

int loop_idle_add(struct loop *l, loop_idle_h *h, void *arg)
{
	if (l->nidle == LOOP_IDLE_MAX)
		return -ENOSPC;
	l->idle[l->nidle].h = h;
	l->idle[l->nidle].arg = arg;
	l->nidle++;
	return 0;
}

void loop_idle_del(struct loop *l, loop_idle_h *h, void *arg)
{
	for (size_t i = 0; i < l->nidle; i++)
		if (l->idle[i].h == h && l->idle[i].arg == arg) {
			l->idle[i] = l->idle[--l->nidle];
			return;
		}
}

static void run_timers(struct loop *l)
{
	while (l->nheap && l->heap[0]->due <= l->now) {
		struct loop_timer *t = l->heap[0];
		/* How late the loop is: the event-loop lag of stats.h. */
		stats_observe(STATS_H_LOOP_LAG, (double)(l->now - t->due) / 1000.0);
		loop_timer_cancel(l, t);
		t->h(t->arg);
	}
}

int loop_run_once(struct loop *l, int max_ms)
{
	struct epoll_event ev[64];
	int wait = max_ms;

	l->now = loop_clock_ms();
	run_timers(l);
	/* A hook may remove itself: walk backwards so a removal moves only hooks
	 * that already ran. */
	for (size_t i = l->nidle; i-- > 0;) {
		int w = l->idle[i].h(l->idle[i].arg);
		if (w >= 0 && (wait < 0 || w < wait))
			wait = w;
	}
	if (l->nheap) {
		uint64_t d = l->heap[0]->due > l->now ? l->heap[0]->due - l->now : 0;
		if (wait < 0 || d < (uint64_t)wait)
			wait = (int)(d > 60000 ? 60000 : d);
	}
	if (l->stop)
		return 0;
	int n = epoll_wait(l->ep, ev, (int)(sizeof(ev) / sizeof(ev[0])), wait);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		return -errno;
	}
	l->now = loop_clock_ms();
	for (int i = 0; i < n; i++) {
		int fd = ev[i].data.fd;
		/* An earlier handler this turn may have removed fd. */
		if ((size_t)fd >= l->nfds || !l->fds[fd].live)
			continue;
		unsigned e = 0;
		if (ev[i].events & EPOLLIN)
			e |= LOOP_READ;
		if (ev[i].events & EPOLLOUT)
			e |= LOOP_WRITE;
		if (ev[i].events & (EPOLLERR | EPOLLHUP))
			e |= LOOP_ERROR | (l->fds[fd].events & LOOP_READ);
		l->fds[fd].h(fd, e, l->fds[fd].arg);
	}
	run_timers(l);
	return 0;
}

int loop_run(struct loop *l)
{
	l->stop = false;
	while (!l->stop) {
		int e = loop_run_once(l, -1);
		if (e)
			return e;
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

uint64_t loop_now(const struct loop *l)
{
	return l->now;
}

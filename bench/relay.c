/*
 * relay: the benchmark's floor. A plain TCP relay that forwards bytes unchanged
 * between each accepted connection and a new connection to the target, in one
 * thread with epoll: what any SIP<->XMPP middlebox costs at the least (two
 * reads and two writes per message), with no parsing at all.
 *
 *   relay LISTEN_PORT TARGET_PORT
 */
#include <signal.h>
#include <stdbool.h>
#include <sys/epoll.h>

#include "bench.h"

struct side {
	int fd;
	bool want_out, dead;
	struct bbuf out; /* bytes waiting to go to this side */
	struct side *peer;
};

static int ep;

static void arm(struct side *s)
{
	struct epoll_event ev = {.events = EPOLLIN | (s->want_out ? EPOLLOUT : 0u),
	                         .data.ptr = s};
	epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
}

/* Both sides of a dead pair are freed after the batch of events: the other
 * side may still be in it. */
static struct side *graveyard[128];
static size_t ngrave;

static void drop(struct side *s)
{
	struct side *p = s->peer;
	if (s->dead)
		return;
	s->dead = p->dead = true;
	epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
	epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
	close(s->fd);
	close(p->fd);
	graveyard[ngrave++] = s;
}

static void bury(void)
{
	for (size_t i = 0; i < ngrave; i++) {
		struct side *s = graveyard[i], *p = s->peer;
		free(s->out.p);
		free(p->out.p);
		free(s);
		free(p);
	}
	ngrave = 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: relay LISTEN_PORT TARGET_PORT\n");
		return 2;
	}
	int target = atoi(argv[2]);
	int lfd = bench_listen(atoi(argv[1]));
	if (lfd < 0) {
		perror("relay: listen");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	ep = epoll_create1(0);
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
	static char buf[1 << 16];
	for (;;) {
		struct epoll_event ev[64];
		int n = epoll_wait(ep, ev, 64, -1);
		for (int i = 0; i < n; i++) {
			struct side *s = ev[i].data.ptr;
			if (s && s->dead)
				continue;
			if (!s) {
				int fd = accept(lfd, NULL, NULL);
				if (fd < 0)
					continue;
				int tfd = bench_connect(target);
				if (tfd < 0) {
					close(fd);
					continue;
				}
				bench_nonblock(fd);
				struct side *a = calloc(1, sizeof(*a)),
				            *b = calloc(1, sizeof(*b));
				if (!a || !b)
					return 2;
				a->fd = fd;
				b->fd = tfd;
				a->peer = b;
				b->peer = a;
				struct epoll_event ea = {.events = EPOLLIN,
				                         .data.ptr = a};
				struct epoll_event eb = {.events = EPOLLIN,
				                         .data.ptr = b};
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ea);
				epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &eb);
				continue;
			}
			if (ev[i].events & EPOLLOUT) {
				if (bbuf_flush(&s->out, s->fd) < 0) {
					drop(s);
					continue;
				}
				if (!bbuf_used(&s->out)) {
					s->want_out = false;
					arm(s);
				}
			}
			if (!(ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				continue;
			ssize_t r = recv(s->fd, buf, sizeof(buf), 0);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				drop(s);
				continue;
			}
			if (r < 0)
				continue;
			struct side *p = s->peer;
			bbuf_put(&p->out, buf, (size_t)r);
			if (!p->want_out) {
				if (bbuf_flush(&p->out, p->fd) < 0) {
					drop(s);
					continue;
				}
				if (bbuf_used(&p->out)) {
					p->want_out = true;
					arm(p);
				}
			}
		}
		bury();
	}
}

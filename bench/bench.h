/*
 * Helpers the benchmark programs share (loadgen, xmppsink, relay): clocks,
 * sockets, growable byte buffers and latency samples. Header-only: each program
 * is one file plus this one, so bench/ builds without the daemon's libraries.
 */
#ifndef PB_BENCH_H
#define PB_BENCH_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The monotonic clock is shared by every process on the machine, so a time
 * stamp written by one program can be read against the clock of another. */
static inline int64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void bench_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A listening TCP socket on 127.0.0.1:port (non-blocking), or -1. */
static inline int bench_listen(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)port)};

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 128) != 0) {
		close(fd);
		return -1;
	}
	bench_nonblock(fd);
	return fd;
}

/* A blocking connect to addr:port (addr in network order), then
 * non-blocking; or -1. */
static inline int bench_connect_to(uint32_t addr, int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)port)};

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = addr;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	bench_nonblock(fd);
	return fd;
}

/* A blocking connect to 127.0.0.1:port, then non-blocking; or -1. */
static inline int bench_connect(int port)
{
	return bench_connect_to(htonl(INADDR_LOOPBACK), port);
}

/* A growable byte buffer: data lives in [off, len). */
struct bbuf {
	char *p;
	size_t off, len, cap;
};

static inline void bbuf_reserve(struct bbuf *b, size_t more)
{
	if (b->off && b->off == b->len)
		b->off = b->len = 0;
	if (b->len + more <= b->cap)
		return;
	if (b->off) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + more <= b->cap)
			return;
	}
	size_t cap = b->cap ? b->cap : 65536;
	while (cap < b->len + more)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		perror("realloc");
		exit(2);
	}
	b->p = p;
	b->cap = cap;
}

static inline void bbuf_put(struct bbuf *b, const char *s, size_t n)
{
	bbuf_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static inline size_t bbuf_used(const struct bbuf *b)
{
	return b->len - b->off;
}

/* Write what the socket takes; returns -1 when the peer is gone. */
static inline int bbuf_flush(struct bbuf *b, int fd)
{
	while (bbuf_used(b)) {
		ssize_t n = send(fd, b->p + b->off, bbuf_used(b), MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		b->off += (size_t)n;
	}
	b->off = b->len = 0;
	return 0;
}

/* Read what is there; returns bytes read, 0 on EOF, -1 on error, -2 on EAGAIN. */
static inline ssize_t bbuf_fill(struct bbuf *b, int fd)
{
	bbuf_reserve(b, 65536);
	ssize_t n = recv(fd, b->p + b->len, b->cap - b->len, 0);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -2 : -1;
	b->len += (size_t)n;
	return n;
}

/* Latency samples in nanoseconds. */
struct lat {
	int64_t *v;
	size_t n, cap;
};

static inline void lat_add(struct lat *l, int64_t ns)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4096;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v) {
			perror("realloc");
			exit(2);
		}
	}
	l->v[l->n++] = ns;
}

static inline int lat_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Percentile q (0..1) in microseconds; sorts the samples. */
static inline double lat_pct(struct lat *l, double q)
{
	if (!l->n)
		return 0;
	qsort(l->v, l->n, sizeof(*l->v), lat_cmp);
	size_t i = (size_t)(q * (double)(l->n - 1) + 0.5);
	return (double)l->v[i] / 1000.0;
}

/* The time stamp marker "#T<ns>#" in a body; 0 when there is none. */
static inline int64_t bench_marker(const char *p, size_t n)
{
	for (size_t i = 0; i + 2 < n; i++)
		if (p[i] == '#' && p[i + 1] == 'T') {
			int64_t v = 0;
			for (i += 2; i < n && p[i] >= '0' && p[i] <= '9'; i++)
				v = v * 10 + (p[i] - '0');
			return v;
		}
	return 0;
}

#endif

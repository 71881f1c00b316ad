/*
 * rawsip - a misbehaving SIP peer for the fault tests (t_bridge_faults.sh): one
 * TCP connection to HOST:PORT, the bytes of stdin sent as they are, then one of
 *   --rst          close at once with a TCP reset (SO_LINGER 0): the peer's
 *                  connection reset in the middle of a message;
 *   --wait SECS    stay silent until the server closes the connection, at most
 *                  SECS; prints "closed after S.SSS s" or "still open after SECS s"
 *                  (exit 1), and every line the server sent before, on stdout;
 *   --reply SECS   wait at most SECS for the first response header (up to its
 *                  blank line), print it and close (exit 1 if none came).
 * stdin may be empty (a client that connects and never speaks, e.g. on a TLS
 * port). Exit 0 on success, 1 on a timeout, 2 on a usage or connect error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int header_end(const char *b, size_t n)
{
	for (size_t i = 0; i + 4 <= n; i++)
		if (memcmp(b + i, "\r\n\r\n", 4) == 0)
			return 1;
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
	        "usage: rawsip HOST PORT --rst | --wait SECS | --reply SECS  < bytes\n");
	return 2;
}

int main(int argc, char **argv)
{
	static char buf[1 << 16];
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd;

	if (argc < 4 || inet_pton(AF_INET, argv[1], &a.sin_addr) != 1)
		return usage();
	a.sin_port = htons((unsigned short)atoi(argv[2]));
	int rst = strcmp(argv[3], "--rst") == 0;
	int reply = strcmp(argv[3], "--reply") == 0;
	double wait =
	    argc > 4 && (reply || strcmp(argv[3], "--wait") == 0) ? atof(argv[4]) : 0;
	size_t got = 0;
	if (!rst && wait <= 0)
		return usage();

	size_t len = fread(buf, 1, sizeof(buf), stdin);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		fprintf(stderr, "rawsip: connect: %s\n", strerror(errno));
		return 2;
	}
	double t0 = now_s();
	if (len && send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
		fprintf(stderr, "rawsip: send: %s\n", strerror(errno));
		return 2;
	}
	if (rst) {
		struct linger lg = {1, 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
		printf("sent %zu bytes, then reset\n", len);
		return 0;
	}
	for (;;) {
		double left = wait - (now_s() - t0);
		if (left <= 0) {
			printf(reply ? "no response within %.0f s\n"
			             : "still open after %.0f s\n",
			       wait);
			return 1;
		}
		struct pollfd p = {fd, POLLIN, 0};
		int r = poll(&p, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0 && reply) {
			static char hdr[1 << 16];
			size_t k =
			    (size_t)n < sizeof(hdr) - got ? (size_t)n : sizeof(hdr) - got;
			memcpy(hdr + got, buf, k);
			got += k;
			if (header_end(hdr, got) || got == sizeof(hdr)) {
				fwrite(hdr, 1, got, stdout);
				close(fd);
				return 0;
			}
			continue;
		}
		if (n > 0) {
			fwrite(buf, 1, (size_t)n, stdout);
			continue;
		}
		printf("\nclosed after %.3f s\n", now_s() - t0);
		return 0;
	}
}

#include "presbridge/metrics.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "presbridge/conf.h"
#include "presbridge/log.h"
#include "presbridge/loop.h"
#include "presbridge/sbuf.h"

#define MOD "metrics"

struct metrics {
	struct loop *loop;
	struct MHD_Daemon *d;
	int epfd;
	struct loop_timer t;
	metrics_render_h *h;
	void *arg;
};

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned code,
                              const char *type, char *body, size_t len)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_len, void **con_cls)
{
	struct metrics *m = cls;
	(void)version;
	(void)upload;
	(void)con_cls;
	if (*upload_len) /* a body we do not want: drop it */
		*upload_len = 0;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		char *b = strdup("only GET /metrics\n");
		return b ? answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", b,
		                  strlen(b))
		         : MHD_NO;
	}
	if (strcmp(url, "/metrics") != 0) {
		char *b = strdup("presbridge serves /metrics only\n");
		return b ? answer(conn, MHD_HTTP_NOT_FOUND, "text/plain", b, strlen(b))
		         : MHD_NO;
	}
	struct sbuf sb;
	sbuf_init(&sb);
	m->h(m->arg, &sb);
	size_t len = 0;
	char *body = sbuf_take(&sb, &len);
	if (!body)
		return MHD_NO;
	return answer(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body,
	              len);
}

static void run(struct metrics *m);

static void on_timer(void *arg)
{
	run(arg);
}

/* Let libmicrohttpd do what is due, then wake it again when it wants. */
static void run(struct metrics *m)
{
	MHD_run(m->d);
	MHD_UNSIGNED_LONG_LONG ms = 0;
	if (MHD_get_timeout(m->d, &ms) == MHD_YES)
		loop_timer_start(m->loop, &m->t, ms < 1000 ? ms : 1000, on_timer, m);
	else
		loop_timer_start(m->loop, &m->t, 1000, on_timer, m);
}

static void on_io(int fd, unsigned events, void *arg)
{
	(void)fd;
	(void)events;
	run(arg);
}

int metrics_new(struct metrics **mp, struct loop *l, const struct conf_hostport *addr,
                metrics_render_h *h, void *arg)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char port[8];
	snprintf(port, sizeof(port), "%u", addr->port);
	int g = getaddrinfo(addr->host, port, &hints, &res);
	if (g != 0) {
		log_error(MOD, "[metrics] listen %s: %s", addr->host, gai_strerror(g));
		return -EINVAL;
	}
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m) {
		freeaddrinfo(res);
		return -ENOMEM;
	}
	m->loop = l;
	m->h = h;
	m->arg = arg;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (res->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* At most 16 scrapers at once, each for at most 10 s: a slow or silent
	 * client cannot hold the endpoint, and never the loop. */
	m->d = MHD_start_daemon(
	    flags, addr->port, NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR,
	    res->ai_addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536, MHD_OPTION_END);
	freeaddrinfo(res);
	if (!m->d) {
		int e = errno ? errno : EADDRINUSE;
		free(m);
		return -e;
	}
	const union MHD_DaemonInfo *info =
	    MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD);
	m->epfd = info ? info->epoll_fd : -1;
	if (m->epfd < 0 || loop_fd_add(l, m->epfd, LOOP_READ, on_io, m) != 0) {
		MHD_stop_daemon(m->d);
		free(m);
		return -EIO;
	}
	log_info(MOD, "serving /metrics on %s%s%s:%u", strchr(addr->host, ':') ? "[" : "",
	         addr->host, strchr(addr->host, ':') ? "]" : "", addr->port);
	run(m);
	*mp = m;
	return 0;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	loop_timer_cancel(m->loop, &m->t);
	loop_fd_del(m->loop, m->epfd);
	MHD_stop_daemon(m->d);
	free(m);
}

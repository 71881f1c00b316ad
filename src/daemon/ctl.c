#include "presbridge/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "presbridge/log.h"
#include "presbridge/loop.h"
#include "presbridge/sbuf.h"

#define MOD "control"

struct client {
	struct ctl *ctl;
	int fd;
	char in[CTL_LINE_MAX + 1];
	size_t inlen;
	char *out; /* the answer, while it is being written */
	size_t outlen, outoff;
	struct loop_timer timeout;
};

struct ctl {
	struct loop *loop;
	int fd;
	char *path;
	ctl_cmd_h *h;
	void *arg;
	struct client *clients[CTL_CLIENTS];
};

static void client_free(struct client *c)
{
	struct ctl *ctl = c->ctl;
	loop_fd_del(ctl->loop, c->fd);
	close(c->fd);
	loop_timer_cancel(ctl->loop, &c->timeout);
	for (size_t i = 0; i < CTL_CLIENTS; i++)
		if (ctl->clients[i] == c)
			ctl->clients[i] = NULL;
	free(c->out);
	free(c);
}

static void on_timeout(void *arg)
{
	struct client *c = arg;
	log_debug(MOD, "a client of the control socket was too slow; dropped");
	client_free(c);
}

/* Write what the socket takes; done: close. */
static void client_write(struct client *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n =
		    send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			client_free(c);
			return;
		}
		c->outoff += (size_t)n;
	}
	client_free(c);
}

static void run_line(struct client *c)
{
	char *argv[64];
	int argc = 0;
	bool json = false;
	for (char *save = NULL, *w = strtok_r(c->in, " \t\r", &save); w && argc < 63;
	     w = strtok_r(NULL, " \t\r", &save)) {
		if (argc == 0 && !json && strcmp(w, "--json") == 0)
			json = true;
		else
			argv[argc++] = w;
	}
	argv[argc] = NULL;
	struct sbuf body, out;
	sbuf_init(&body);
	sbuf_init(&out);
	int status = argc ? c->ctl->h(c->ctl->arg, argc, argv, json, &body) : 2;
	if (!argc)
		sbuf_puts(&body, "no command\n");
	char *b = sbuf_take(&body, NULL);
	sbuf_printf(&out, "%d\n%s", status, b ? b : "out of memory\n");
	free(b);
	c->out = sbuf_take(&out, &c->outlen);
	if (!c->out) {
		client_free(c);
		return;
	}
	loop_fd_mod(c->ctl->loop, c->fd, LOOP_WRITE);
	client_write(c);
}

static void client_io(int fd, unsigned events, void *arg)
{
	struct client *c = arg;
	(void)fd;
	if (c->out) {
		if (events & (LOOP_WRITE | LOOP_ERROR))
			client_write(c);
		return;
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->inlen, CTL_LINE_MAX - c->inlen, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			client_free(c);
			return;
		}
		c->inlen += (size_t)n;
		c->in[c->inlen] = '\0';
		char *nl = memchr(c->in, '\n', c->inlen);
		if (nl) {
			*nl = '\0';
			run_line(c);
			return;
		}
		if (c->inlen == CTL_LINE_MAX) {
			log_debug(MOD, "a control request longer than %d bytes; dropped",
			          CTL_LINE_MAX);
			client_free(c);
			return;
		}
	}
}

static void on_accept(int fd, unsigned events, void *arg)
{
	struct ctl *ctl = arg;
	(void)events;
	for (;;) {
		int cfd = accept(fd, NULL, NULL);
		if (cfd < 0)
			return;
		if (fcntl(cfd, F_SETFL, O_NONBLOCK) != 0 ||
		    fcntl(cfd, F_SETFD, FD_CLOEXEC) != 0) {
			close(cfd);
			continue;
		}
		size_t slot = 0;
		while (slot < CTL_CLIENTS && ctl->clients[slot])
			slot++;
		struct client *c = slot < CTL_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			log_debug(MOD, "control socket: %d clients at once; one refused",
			          CTL_CLIENTS);
			close(cfd);
			continue;
		}
		c->ctl = ctl;
		c->fd = cfd;
		if (loop_fd_add(ctl->loop, cfd, LOOP_READ, client_io, c) != 0) {
			close(cfd);
			free(c);
			continue;
		}
		ctl->clients[slot] = c;
		loop_timer_start(ctl->loop, &c->timeout, CTL_TIMEOUT_MS, on_timeout, c);
	}
}

int ctl_new(struct ctl **cp, struct loop *l, const char *path, ctl_cmd_h *h, void *arg)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST; /* never remove what is not a socket */
		/* A live daemon answers; a stale file from a crash does not. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int live =
		    probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (probe >= 0)
			close(probe);
		if (live)
			return -EADDRINUSE;
		unlink(path);
	}
	struct ctl *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = l;
	c->h = h;
	c->arg = arg;
	c->path = strdup(path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int err = 0;
	bool bound = false;
	if (!c->path || c->fd < 0) {
		err = c->fd < 0 ? -errno : -ENOMEM;
		goto fail;
	}
	/* Created 0660 from the start: no moment in which others could connect. */
	mode_t old = umask(0117);
	int r = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	bound = r == 0;
	if (r != 0 || listen(c->fd, CTL_CLIENTS) != 0) {
		err = -errno;
		goto fail;
	}
	struct group *g = getgrnam("presbridge");
	if (g && chown(path, geteuid() == 0 ? 0 : (uid_t)-1, g->gr_gid) != 0)
		log_warn(MOD, "%s: cannot give it to group presbridge: %s", path,
		         strerror(errno));
	err = loop_fd_add(l, c->fd, LOOP_READ, on_accept, c);
	if (err)
		goto fail;
	*cp = c;
	return 0;
fail:
	if (c->fd >= 0) {
		close(c->fd);
		if (bound)
			unlink(c->path);
	}
	free(c->path);
	free(c);
	return err;
}

void ctl_free(struct ctl *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < CTL_CLIENTS; i++)
		if (c->clients[i])
			client_free(c->clients[i]);
	loop_fd_del(c->loop, c->fd);
	close(c->fd);
	unlink(c->path);
	free(c->path);
	free(c);
}

#include "presbridge/sdnotify.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "presbridge/log.h"
#include "presbridge/loop.h"

#define STATUS_EVERY_MS 5000u

struct sdnotify {
	struct loop *loop;
	sdnotify_summary_h *summary;
	void *arg;
	bool on;              /* started by systemd with a NOTIFY_SOCKET */
	uint64_t watchdog_ms; /* 0: no watchdog */
	struct loop_timer watchdog_t, status_t;
	char last[256]; /* the STATUS= last sent: sent again only when it changes */
	int failed;     /* sd_notify errors logged once */
};

static void notify(struct sdnotify *n, const char *state)
{
	int r = sd_notify(0, state);
	if (r < 0 && !n->failed) {
		n->failed = 1;
		log_warn("daemon", "cannot notify systemd (%s): %s", state, strerror(-r));
	}
}

static void on_watchdog(void *arg)
{
	struct sdnotify *n = arg;
	notify(n, "WATCHDOG=1");
	loop_timer_start(n->loop, &n->watchdog_t, n->watchdog_ms / 2, on_watchdog, n);
}

static void send_status(struct sdnotify *n, const char *text)
{
	if (strcmp(text, n->last) == 0)
		return;
	snprintf(n->last, sizeof(n->last), "%s", text);
	char line[sizeof(n->last) + 8];
	snprintf(line, sizeof(line), "STATUS=%s", text);
	notify(n, line);
}

static void on_status(void *arg)
{
	struct sdnotify *n = arg;
	char text[sizeof(n->last)];
	n->summary(n->arg, text, sizeof(text));
	send_status(n, text);
	loop_timer_start(n->loop, &n->status_t, STATUS_EVERY_MS, on_status, n);
}

int sdnotify_new(struct sdnotify **np, struct loop *l, sdnotify_summary_h *summary,
                 void *arg)
{
	struct sdnotify *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->loop = l;
	n->summary = summary;
	n->arg = arg;
	n->on = getenv("NOTIFY_SOCKET") != NULL;
	if (!n->on) {
		*np = n; /* not under systemd: every call is a no-op */
		return 0;
	}
	uint64_t usec = 0;
	/* unset_environment = 0: the variables stay for a re-exec; the daemon
	 * starts no children. */
	int r = sd_watchdog_enabled(0, &usec);
	if (r > 0 && usec >= 2000) {
		n->watchdog_ms = usec / 1000;
		log_info("daemon", "systemd watchdog: WATCHDOG=1 every %llu ms",
		         (unsigned long long)(n->watchdog_ms / 2));
		on_watchdog(n);
	} else if (r < 0) {
		log_warn("daemon", "systemd watchdog settings unreadable: %s",
		         strerror(-r));
	}
	*np = n;
	return 0;
}

void sdnotify_ready(struct sdnotify *n)
{
	if (!n->on)
		return;
	char text[sizeof(n->last)];
	n->summary(n->arg, text, sizeof(text));
	snprintf(n->last, sizeof(n->last), "%s", text);
	char line[sizeof(n->last) + 24];
	snprintf(line, sizeof(line), "READY=1\nSTATUS=%s", text);
	notify(n, line);
	loop_timer_start(n->loop, &n->status_t, STATUS_EVERY_MS, on_status, n);
}

void sdnotify_stopping(struct sdnotify *n)
{
	if (!n->on)
		return;
	loop_timer_cancel(n->loop, &n->status_t);
	snprintf(n->last, sizeof(n->last), "stopping");
	notify(n, "STOPPING=1\nSTATUS=stopping: saying goodbye on both legs");
}

void sdnotify_status(struct sdnotify *n, const char *text)
{
	if (n->on)
		send_status(n, text);
}

void sdnotify_free(struct sdnotify *n)
{
	if (!n)
		return;
	loop_timer_cancel(n->loop, &n->watchdog_t);
	loop_timer_cancel(n->loop, &n->status_t);
	free(n);
}

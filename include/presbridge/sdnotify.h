/*
 * sdnotify - the daemon's side of systemd's service protocol (sd_notify(3),
 * libsystemd): READY=1 once both legs are listening and the XMPP side connected
 * or retrying, STATUS= with a one-line summary while running, STOPPING=1 when a
 * graceful stop begins, and WATCHDOG=1 from the event loop at half the unit's
 * WatchdogSec, so a loop that stops turning gets the service restarted. Without
 * NOTIFY_SOCKET (not started by systemd with Type=notify) every call does nothing.
 */
#ifndef PRESBRIDGE_SDNOTIFY_H
#define PRESBRIDGE_SDNOTIFY_H

struct loop;
struct sdnotify;

/* summary(arg, buf, len) writes the STATUS= line; called every few seconds. */
typedef void(sdnotify_summary_h)(void *arg, char *buf, unsigned len);

/* Start the watchdog and status timers on l. *np: caller-owns (sdnotify_free).
 * Returns 0 or -errno. */
int sdnotify_new(struct sdnotify **np, struct loop *l, sdnotify_summary_h *summary,
                 void *arg);
void sdnotify_ready(struct sdnotify *n);
void sdnotify_stopping(struct sdnotify *n);
/* STATUS= now (e.g. after a reload), besides the periodic update. */
void sdnotify_status(struct sdnotify *n, const char *text);
void sdnotify_free(struct sdnotify *n);

#endif

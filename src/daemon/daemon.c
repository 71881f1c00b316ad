#include "presbridge/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/bridge.h"
#include "presbridge/conf.h"
#include "presbridge/log.h"
#include "presbridge/loop.h"
#include "presbridge/sdnotify.h"
#include "presbridge/version.h"

_Static_assert((int)CONF_LOG_TRACE == (int)LOG_LVL_TRACE &&
                   (int)CONF_LOG_ERROR == (int)LOG_LVL_ERROR,
               "conf and log levels must line up");

struct daemon {
	const char *path;
	struct conf *cf; /* owned; replaced on a successful reload */
	struct loop *loop;
	struct bridge *bridge;
	struct sdnotify *notify; /* systemd's service protocol */
	int status;
};

static void summary(void *arg, char *buf, unsigned len)
{
	struct daemon *d = arg;
	bridge_summary(d->bridge, buf, len);
}

static void log_diags(const struct diag_list *dl)
{
	char line[1400];
	for (size_t i = 0; i < dl->n; i++) {
		diag_format(&dl->v[i], line, sizeof(line));
		if (dl->v[i].level == DIAG_ERROR)
			log_error("conf", "%s", line);
		else
			log_warn("conf", "%s", line);
	}
}

static void on_stopped(void *arg)
{
	struct daemon *d = arg;
	loop_stop(d->loop);
}

/* Graceful: the bridge says goodbye on both legs, then calls on_stopped. A second
 * signal stops at once. */
static void on_stop(int signo, void *arg)
{
	struct daemon *d = arg;
	log_info("daemon", "%s: stopping", strsignal(signo));
	sdnotify_stopping(d->notify);
	bridge_stop(d->bridge, on_stopped, d);
}

/* A reload is all or nothing: a file with any error leaves the running
 * configuration in place, so a typo never takes a federation down. */
static void on_reload(int signo, void *arg)
{
	struct daemon *d = arg;
	struct diag_list dl;
	struct conf *cf = NULL;
	(void)signo;

	diag_init(&dl);
	int err = conf_load(&cf, d->path, &dl);
	log_diags(&dl);
	diag_free(&dl);
	if (!err)
		err = bridge_reload(d->bridge, cf);
	if (err) {
		log_error(
		    "daemon",
		    "reload of %s refused (%s); still running the previous configuration",
		    d->path, strerror(-err));
		conf_free(cf);
		return;
	}
	conf_free(d->cf);
	d->cf = cf;
	log_set_level((enum log_level)cf->log_level);
	log_info("daemon", "reloaded %s", d->path);
	char line[256];
	bridge_summary(d->bridge, line, sizeof(line));
	sdnotify_status(d->notify, line);
}

int daemon_run(const char *config_path)
{
	struct daemon d = {.path = config_path, .status = EXIT_SUCCESS};
	struct diag_list dl;
	int err;

	log_journal_detect();
	diag_init(&dl);
	err = conf_load(&d.cf, config_path, &dl);
	log_diags(&dl);
	diag_free(&dl);
	if (err) {
		log_error("daemon",
		          "cannot start: %s has errors (check with presbridge -n)",
		          config_path);
		return EXIT_FAILURE;
	}
	log_set_level((enum log_level)d.cf->log_level);
	signal(SIGPIPE,
	       SIG_IGN); /* a peer closing mid-write is an error return, not death */

	err = loop_new(&d.loop);
	if (!err)
		err = loop_signal(d.loop, SIGTERM, on_stop, &d);
	if (!err)
		err = loop_signal(d.loop, SIGINT, on_stop, &d);
	if (!err)
		err = loop_signal(d.loop, SIGHUP, on_reload, &d);
	if (err) {
		log_error("daemon", "cannot set up the event loop: %s", strerror(-err));
		d.status = EXIT_FAILURE;
		goto out;
	}
	err = bridge_new(&d.bridge, d.loop, d.cf);
	if (err) {
		log_error("daemon", "cannot start the bridge: %s", strerror(-err));
		d.status = EXIT_FAILURE;
		goto out;
	}
	err = sdnotify_new(&d.notify, d.loop, summary, &d);
	if (err) {
		log_error("daemon", "cannot start: %s", strerror(-err));
		d.status = EXIT_FAILURE;
		goto out;
	}
	log_info("daemon", "presbridge %s running with %s", PB_VERSION, config_path);
	/* Both legs are listening, and the XMPP side connecting or retrying. */
	sdnotify_ready(d.notify);
	err = loop_run(d.loop);
	if (err) {
		log_error("daemon", "event loop failed: %s", strerror(-err));
		d.status = EXIT_FAILURE;
	}
	log_info("daemon", "stopped");
out:
	sdnotify_free(d.notify);
	bridge_free(d.bridge);
	loop_free(d.loop);
	conf_free(d.cf);
	return d.status;
}

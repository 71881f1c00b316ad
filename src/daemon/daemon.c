#include "presbridge/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/conf.h"
#include "presbridge/log.h"
#include "presbridge/loop.h"
#include "presbridge/version.h"
#include "presbridge/xlink.h"

_Static_assert((int)CONF_LOG_TRACE == (int)LOG_LVL_TRACE &&
                   (int)CONF_LOG_ERROR == (int)LOG_LVL_ERROR,
               "conf and log levels must line up");

struct daemon {
	const char *path;
	struct conf *cf; /* owned; replaced on a successful reload */
	struct loop *loop;
	struct xlink_set *xmpp; /* owned: the XMPP leg */
	bool stopping;
	int status;
};

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

/* The XMPP leg's link came up or went down. The bridge module (a later issue)
 * re-announces presence here; until it exists the event is only logged. */
static void on_xmpp_state(const char *domain, bool up, void *arg)
{
	(void)arg;
	log_debug("daemon", "component %s is %s", domain, up ? "up" : "down");
}

/*
 * A presence or message for a SIP user, from the XMPP leg. There is no bridge
 * module yet: presence is logged and taken, and a message is refused so its
 * sender learns it was not delivered rather than losing it silently.
 */
static int on_xmpp_stanza(const char *domain, xmpp_stanza_t *st, struct xlink_refusal *r,
                          void *arg)
{
	const char *name = xmpp_stanza_get_name(st), *type = xmpp_stanza_get_type(st);
	const char *from = xmpp_stanza_get_from(st), *to = xmpp_stanza_get_to(st);
	(void)arg;

	log_debug("daemon", "%s: %s from %s to %s (type %s) reached the bridge", domain,
	          name, from ? from : "?", to ? to : domain, type ? type : "none");
	if (strcmp(name, "message") != 0)
		return XLINK_TAKEN;
	r->cond = ERR_COND_SERVICE_UNAVAILABLE;
	r->text = "presbridge does not relay instant messages yet";
	return XLINK_REFUSE;
}

static void on_xmpp_closed(void *arg)
{
	struct daemon *d = arg;
	loop_stop(d->loop);
}

/* Close the XMPP streams cleanly (the leg calls on_xmpp_closed when done, at
 * most XLINK_CLOSE_MS later), then leave the loop. A second signal stops at once. */
static void on_stop(int signo, void *arg)
{
	struct daemon *d = arg;
	log_info("daemon", "%s: stopping", strsignal(signo));
	if (d->stopping || !d->xmpp) {
		loop_stop(d->loop);
		return;
	}
	d->stopping = true;
	xlink_set_stop(d->xmpp, on_xmpp_closed, d);
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
	if (err) {
		log_error("daemon",
		          "reload of %s refused (%s); still running the previous "
		          "configuration",
		          d->path, strerror(-err));
		return;
	}
	conf_free(d->cf);
	d->cf = cf;
	log_set_level((enum log_level)cf->log_level);
	log_info("daemon", "reloaded %s", d->path);
	/* A changed [xmpp] section or component domain list reconnects the XMPP leg;
	 * an unchanged one leaves the streams alone. */
	if (d->xmpp)
		xlink_set_apply(d->xmpp, cf);
}

int daemon_run(const char *config_path)
{
	struct daemon d = {.path = config_path, .status = EXIT_SUCCESS};
	struct diag_list dl;
	int err;

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
	signal(SIGPIPE,
	       SIG_IGN); /* a peer closing mid-write is an error return, not death */

	struct xlink_handlers h = {on_xmpp_state, on_xmpp_stanza, &d};
	err = xlink_set_new(&d.xmpp, d.loop, d.cf, &h);
	if (err) {
		log_error("daemon", "cannot start the XMPP leg: %s", strerror(-err));
		d.status = EXIT_FAILURE;
		goto out;
	}

	log_info("daemon", "presbridge %s running with %s", PB_VERSION, config_path);
	err = loop_run(d.loop);
	if (err) {
		log_error("daemon", "event loop failed: %s", strerror(-err));
		d.status = EXIT_FAILURE;
	}
	log_info("daemon", "stopped");
out:
	xlink_set_free(d.xmpp);
	loop_free(d.loop);
	conf_free(d.cf);
	return d.status;
}

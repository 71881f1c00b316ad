#include "presbridge/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "presbridge/bridge.h"
#include "presbridge/conf.h"
#include "presbridge/ctl.h"
#include "presbridge/log.h"
#include "presbridge/loop.h"
#include "presbridge/metrics.h"
#include "presbridge/pool.h"
#include "presbridge/sbuf.h"
#include "presbridge/sdnotify.h"
#include "presbridge/stats.h"
#include "presbridge/store.h"
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
	struct ctl *ctl;         /* presbridgectl's socket; NULL: none */
	char *ctl_path;
	struct metrics *metrics; /* /metrics; NULL: off */
	struct loop_timer stop_t;
	int status;
	/* [store] backend = postgresql: the store outlives the bridges this node
	 * runs; bridge is NULL while the node stands by. */
	struct store *store;
	struct pool *pool;
	struct loop_timer drain_t;
	uint64_t drain_until;
	bool goodbye; /* stopping with goodbyes (the last node of the pool) */
};

static void summary(void *arg, char *buf, unsigned len)
{
	struct daemon *d = arg;
	if (d->bridge) {
		bridge_summary(d->bridge, buf, len);
		return;
	}
	struct sbuf sb;
	sbuf_init(&sb);
	pool_describe(d->pool, &sb, false);
	char *t = sbuf_take(&sb, NULL);
	snprintf(buf, len, "%s", t ? t : "standby");
	free(t);
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

/* A pool node's last step: wait (at most 2 s) until every write is durable, so
 * the output they acknowledge has left, then hand the lease over. */
static void drain(void *arg)
{
	struct daemon *d = arg;
	store_flush(d->store);
	if (store_pending(d->store) && loop_now(d->loop) < d->drain_until) {
		loop_timer_start(d->loop, &d->drain_t, 20, drain, d);
		return;
	}
	if (store_pending(d->store))
		log_warn("pool", "writes still unconfirmed after 2 s; stopping anyway");
	if (d->bridge && !d->goodbye) {
		bridge_abandon(d->bridge);
		d->bridge = NULL;
	}
	pool_release(d->pool);
	loop_stop(d->loop);
}

static void on_stopped(void *arg)
{
	struct daemon *d = arg;
	if (d->pool) {
		d->drain_until = loop_now(d->loop) + 2000;
		drain(d);
		return;
	}
	loop_stop(d->loop);
}

/* Graceful: the bridge says goodbye on both legs, then calls on_stopped. A second
 * signal stops at once. In a pool, the active node hands over instead when a
 * standby is alive: no goodbyes, the lease released, the standby takes every
 * subscription over as after a failure, only sooner. */
static void on_stop(int signo, void *arg)
{
	struct daemon *d = arg;
	log_info("daemon", "%s: stopping", strsignal(signo));
	sdnotify_stopping(d->notify);
	if (d->pool && !d->bridge) {
		pool_release(d->pool); /* a standby leaves: only its pb_node row */
		loop_stop(d->loop);
		return;
	}
	if (d->pool && !d->goodbye && pool_peers_alive(d->pool) > 0) {
		log_info(
		    "pool",
		    "node %s hands over to a standby: no goodbyes, the lease released",
		    pool_node(d->pool));
		on_stopped(d);
		return;
	}
	d->goodbye = true;
	bridge_stop(d->bridge, on_stopped, d);
}

static int ops_start(struct daemon *d);
static void ops_stop(struct daemon *d);

struct diff_out {
	struct sbuf *sb;
	size_t n;
};

static void on_diff(const char *what, void *arg)
{
	struct diff_out *o = arg;
	sbuf_printf(o->sb, "%s%s", o->n++ ? ", " : "", what);
}

/*
 * A reload is all or nothing: a file with any error leaves the running
 * configuration in place, so a typo never takes a federation down. out (may be
 * NULL): what changed, or every problem and why it was refused, for
 * presbridgectl reload. Returns 0 or -errno.
 */
static int reload(struct daemon *d, struct sbuf *out)
{
	struct diag_list dl;
	struct conf *cf = NULL;
	char line[1400];

	diag_init(&dl);
	int err = conf_load(&cf, d->path, &dl);
	log_diags(&dl);
	for (size_t i = 0; out && i < dl.n; i++) {
		diag_format(&dl.v[i], line, sizeof(line));
		sbuf_printf(out, "%s: %s\n",
		            dl.v[i].level == DIAG_ERROR ? "error" : "warning", line);
	}
	diag_free(&dl);
	if (!err && d->bridge)
		err = bridge_reload(d->bridge, cf);
	if (err) {
		log_error(
		    "daemon",
		    "reload of %s refused (%s); still running the previous configuration",
		    d->path, strerror(-err));
		if (out)
			sbuf_printf(
			    out,
			    "reload of %s refused (%s); still running the previous "
			    "configuration\n",
			    d->path, strerror(-err));
		conf_free(cf);
		return err;
	}
	struct sbuf changed;
	sbuf_init(&changed);
	struct diff_out o = {&changed, 0};
	conf_diff(d->cf, cf, on_diff, &o);
	bool ops_changed =
	    (d->cf->control_socket == NULL) != (cf->control_socket == NULL) ||
	    (cf->control_socket &&
	     strcmp(cf->control_socket, d->cf->control_socket) != 0) ||
	    (d->cf->metrics_listen.host == NULL) != (cf->metrics_listen.host == NULL) ||
	    (cf->metrics_listen.host &&
	     (strcmp(cf->metrics_listen.host, d->cf->metrics_listen.host) != 0 ||
	      cf->metrics_listen.port != d->cf->metrics_listen.port));
	if (ops_changed)
		ops_stop(d);
	conf_free(d->cf);
	d->cf = cf;
	if (ops_changed)
		ops_start(d);
	log_set_level((enum log_level)cf->log_level);
	char *ch = sbuf_take(&changed, NULL);
	log_info("daemon", "reloaded %s: %s", d->path,
	         o.n ? (ch ? ch : "?") : "nothing changed");
	if (out)
		sbuf_printf(out, "reloaded %s: %s%s\n", d->path, o.n ? "changed " : "",
		            o.n ? (ch ? ch : "?") : "nothing changed");
	free(ch);
	summary(d, line, sizeof(line));
	sdnotify_status(d->notify, line);
	return 0;
}

static void on_reload(int signo, void *arg)
{
	(void)signo;
	reload(arg, NULL);
}

/* The stop command: after its answer has left. */
static void stop_later(void *arg)
{
	on_stop(SIGTERM, arg);
}

static int ctl_usage(struct sbuf *out)
{
	sbuf_puts(out, "commands: status, peers, subscriptions [USER|DOMAIN], sessions, "
	               "reload, log-level error|warn|info|debug|trace, stop\n");
	return 2;
}

static int on_command(void *arg, int argc, char **argv, bool json, struct sbuf *out)
{
	struct daemon *d = arg;
	const char *cmd = argv[0];
	bool serving = strcmp(cmd, "peers") == 0 || strcmp(cmd, "subscriptions") == 0 ||
	               strcmp(cmd, "sessions") == 0;
	if (!d->bridge && strcmp(cmd, "status") == 0 && argc == 1) {
		if (json) {
			sbuf_puts(out, "{\"version\":\"" PB_VERSION "\",\"pool\":");
			pool_describe(d->pool, out, true);
			sbuf_puts(out, "}\n");
		} else {
			sbuf_puts(out, "presbridge " PB_VERSION "\n");
			pool_describe(d->pool, out, false);
			sbuf_puts(out, "\n");
		}
		return 0;
	}
	if (!d->bridge && serving) {
		sbuf_printf(out,
		            "node %s stands by and serves nothing: ask the active node "
		            "(%s)\n",
		            pool_node(d->pool),
		            pool_holder(d->pool)[0] ? pool_holder(d->pool) : "none now");
		return 1;
	}
	if (strcmp(cmd, "status") == 0 && argc == 1) {
		bridge_ctl_status(d->bridge, out, json);
		if (d->pool && !json) {
			pool_describe(d->pool, out, false);
			sbuf_puts(out, "\n");
		}
	} else if (strcmp(cmd, "peers") == 0 && argc == 1) {
		bridge_ctl_peers(d->bridge, out, json);
	} else if (strcmp(cmd, "subscriptions") == 0 && argc <= 2) {
		bridge_ctl_subscriptions(d->bridge, argc == 2 ? argv[1] : NULL, out,
		                         json);
	} else if (strcmp(cmd, "sessions") == 0 && argc == 1) {
		bridge_ctl_sessions(d->bridge, out, json);
	} else if (strcmp(cmd, "reload") == 0 && argc == 1) {
		struct sbuf text;
		sbuf_init(&text);
		int err = reload(d, &text);
		char *t = sbuf_take(&text, NULL);
		if (json) {
			sbuf_printf(
			    out, "{\"reloaded\":%s,\"message\":", err ? "false" : "true");
			sbuf_put_json(out, t);
			sbuf_puts(out, "}");
		} else {
			sbuf_puts(out, t ? t : "");
		}
		free(t);
		return err ? 1 : 0;
	} else if (strcmp(cmd, "log-level") == 0 && argc == 2) {
		static const char *const levels[] = {"error", "warn", "info", "debug",
		                                     "trace"};
		for (int i = 0; i < 5; i++)
			if (strcmp(argv[1], levels[i]) == 0) {
				log_set_level((enum log_level)i);
				log_info("daemon", "log level %s (presbridgectl)",
				         levels[i]);
				sbuf_printf(out,
				            json ? "{\"log_level\":\"%s\"}"
				                 : "log level %s until the next reload\n",
				            levels[i]);
				return 0;
			}
		sbuf_printf(out, "unknown level '%s'\n", argv[1]);
		return ctl_usage(out);
	} else if (strcmp(cmd, "stop") == 0 && argc == 1) {
		sbuf_puts(out, json ? "{\"stopping\":true}" : "stopping\n");
		log_info("daemon", "stop requested through the control socket");
		loop_timer_start(d->loop, &d->stop_t, 50, stop_later, d);
	} else {
		if (strcmp(cmd, "help") != 0)
			sbuf_printf(out, "unknown command or arguments: %s\n", cmd);
		return ctl_usage(out);
	}
	if (json)
		sbuf_puts(out, "\n");
	return 0;
}

static void render_metrics(void *arg, struct sbuf *sb)
{
	struct daemon *d = arg;
	if (d->bridge)
		bridge_metrics(d->bridge, sb);
	if (d->pool)
		sbuf_printf(sb,
		            "# HELP presbridge_pool_active 1 if this node holds the pool "
		            "lease and serves, 0 if it stands by.\n"
		            "# TYPE presbridge_pool_active gauge\n"
		            "presbridge_pool_active %d\n",
		            pool_is_active(d->pool) ? 1 : 0);
}

/* ---- a node of a pool (issue 18) ---------------------------------------- */

static void on_store_event(enum store_event ev, uint64_t seq, void *arg)
{
	struct daemon *d = arg;
	switch (ev) {
	case STORE_EV_DURABLE:
		if (d->bridge)
			bridge_durable(d->bridge, seq);
		break;
	case STORE_EV_DOWN:
		log_warn(
		    "store",
		    "the database connection is lost; reconnecting. Writes wait, and "
		    "nothing they acknowledge leaves until they are committed");
		break;
	case STORE_EV_UP:
		log_info("store",
		         "connected to the database again; unconfirmed writes sent "
		         "again");
		break;
	case STORE_EV_FENCED:
		if (d->pool)
			pool_fence(d->pool,
			           "the database refused a write: another node holds "
			           "the lease");
		break;
	}
}

static void on_pool_active(const struct pool_takeover *t, void *arg)
{
	struct daemon *d = arg;
	const char *node = pool_node(d->pool);
	uint64_t t0 = loop_clock_ms();
	store_set_owner(d->store, node, t->epoch);
	bool takeover = t->previous[0] && strcmp(t->previous, node) != 0;
	int err = bridge_start_on(&d->bridge, d->loop, d->cf, d->store, takeover);
	if (err) {
		log_error("pool",
		          "node %s took the lease but cannot serve (%s); giving it up",
		          node, strerror(-err));
		d->bridge = NULL;
		pool_release(d->pool);
		d->status = EXIT_FAILURE;
		loop_stop(d->loop);
		return;
	}
	log_info(
	    "pool",
	    "node %s is active (epoch %lld); took over %llu subscriptions and %llu IM "
	    "sessions from %s in %llu ms",
	    node, (long long)t->epoch, (unsigned long long)t->subs,
	    (unsigned long long)t->ims, t->previous[0] ? t->previous : "nobody",
	    (unsigned long long)(loop_clock_ms() - t0));
	char line[300];
	summary(d, line, sizeof(line));
	sdnotify_status(d->notify, line);
}

static void on_pool_fenced(const char *why, void *arg)
{
	struct daemon *d = arg;
	(void)why; /* pool.c logged it */
	bridge_abandon(d->bridge);
	d->bridge = NULL;
	/* Epoch 0 is never valid: whatever the store still holds is refused. */
	store_set_owner(d->store, pool_node(d->pool), 0);
	char line[300];
	summary(d, line, sizeof(line));
	sdnotify_status(d->notify, line);
}

static int pool_start(struct daemon *d)
{
	const char *why = NULL;
	int err = store_open_pg(&d->store, d->loop, d->cf->store_conninfo, &why);
	if (err) {
		log_error("store", "cannot use the database of [store] conninfo: %s",
		          why ? why : strerror(-err));
		return err;
	}
	store_set_events(d->store, on_store_event, d);
	char addr[300] = "";
	if (d->cf->nlisten) {
		const struct conf_listen *l = &d->cf->listen[0];
		snprintf(addr, sizeof(addr),
		         strchr(l->addr.host, ':') ? "%s:[%s]:%u" : "%s:%s:%u",
		         conf_tp_name(l->tp), l->addr.host, l->addr.port);
	}
	static const struct pool_handlers ph = {on_pool_active, on_pool_fenced};
	err = pool_new(&d->pool, d->loop, d->cf, addr, &ph, d);
	if (err)
		return err;
	log_info("pool", "node %s (%s) joins the pool: standby until it holds the lease",
	         d->cf->pool_node, addr);
	return 0;
}

/* The operator's interfaces. Their failure never stops the federation: it is
 * logged, and the bridge runs without them. */
static int ops_start(struct daemon *d)
{
	const char *path = d->cf->control_socket;
	bool explicit = path != NULL;
	if (!path)
		path = CONF_CONTROL_SOCKET_DEFAULT;
	if (strcmp(path, "off") != 0) {
		char dir[256];
		snprintf(dir, sizeof(dir), "%s", path);
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		struct stat st;
		if (!explicit && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
			log_debug("daemon", "no control socket: %s does not exist", dir);
		} else {
			int err = ctl_new(&d->ctl, d->loop, path, on_command, d);
			if (err)
				log_warn("daemon", "no control socket at %s: %s%s", path,
				         strerror(-err),
				         err == -EADDRINUSE
				             ? " (another presbridge answers there)"
				             : "");
			else
				log_info("daemon",
				         "control socket %s (presbridgectl -s %s status)",
				         path, path);
			d->ctl_path = d->ctl ? strdup(path) : NULL;
		}
	}
	if (d->cf->metrics_listen.host) {
		int err = metrics_new(&d->metrics, d->loop, &d->cf->metrics_listen,
		                      render_metrics, d);
		if (err)
			log_warn("daemon", "no /metrics on %s:%u: %s",
			         d->cf->metrics_listen.host, d->cf->metrics_listen.port,
			         strerror(-err));
	}
	return 0;
}

static void ops_stop(struct daemon *d)
{
	ctl_free(d->ctl);
	d->ctl = NULL;
	free(d->ctl_path);
	d->ctl_path = NULL;
	metrics_free(d->metrics);
	d->metrics = NULL;
}

int daemon_run(const char *config_path)
{
	struct daemon d = {.path = config_path, .status = EXIT_SUCCESS};
	struct diag_list dl;
	int err;

	log_journal_detect();
	stats_reset();
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
	if (d.cf->store_backend == CONF_STORE_PG)
		err = pool_start(&d);
	else
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
	ops_start(&d);
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
	loop_timer_cancel(d.loop, &d.stop_t);
	loop_timer_cancel(d.loop, &d.drain_t);
	ops_stop(&d);
	sdnotify_free(d.notify);
	bridge_free(d.bridge);
	pool_free(d.pool);
	store_close(d.store);
	loop_free(d.loop);
	conf_free(d.cf);
	return d.status;
}

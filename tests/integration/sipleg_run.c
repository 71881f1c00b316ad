/*
 * sipleg_run - the SIP leg of presbridge alone, for integration tests.
 *
 *   sipleg_run -c FILE [--handshake-ms N] [--idle-ms N] [--answer-ms N]
 *              [--max-msg N] [--ping PEER]... [--ping-ms N]
 *
 * Loads the configuration like the daemon (conf_load), runs the SIP leg on the
 * event loop until SIGTERM/SIGINT, and answers what the bridge would while it
 * knows no users: OPTIONS (by the leg), 480 to an INVITE, 404 to any other
 * request for a user. Each request handed to the bridge is logged once as
 *   sipleg_run: handling METHOD URI from [peer NAME] (call-id ID)
 * so a test can count how often a request was processed. --ping sends an
 * OPTIONS to [peer PEER] at start (and every --ping-ms) and logs
 *   sipleg_run: OPTIONS to [peer PEER]: STATUS
 * SIGHUP reloads the configuration, as the daemon does.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presbridge/conf.h"
#include "presbridge/log.h"
#include "presbridge/loop.h"
#include "presbridge/msg.h"
#include "presbridge/sip.h"

#define MAX_PINGS 8

struct run {
	const char *path;
	struct conf *cf;
	struct loop *loop;
	struct sipleg *sip;
	const char *pings[MAX_PINGS];
	size_t npings;
	unsigned ping_ms;
	struct loop_timer ping_t;
};

static void log_diags(const struct diag_list *dl)
{
	char line[1400];
	for (size_t i = 0; i < dl->n; i++) {
		diag_format(&dl->v[i], line, sizeof(line));
		log_msg(dl->v[i].level == DIAG_ERROR ? LOG_LVL_ERROR : LOG_LVL_WARN,
		        "conf", "%s", line);
	}
}

static void on_request(struct sipleg_srv *srv, struct sipm *req, void *arg)
{
	(void)arg;
	const char *method = sipm_method(req);
	log_info("sipleg_run", "handling %s %s from [peer %s] (call-id %s)", method,
	         sipm_ruri(req), srv ? sipleg_srv_peer(srv) : "-", sipm_call_id(req));
	const char *mstf = sipm_header(req, "Ms-Text-Format", 0);
	if (mstf) {
		char *text = NULL;
		if (msg_mstf_parse(mstf, NULL, &text, NULL) == 0)
			log_info("sipleg_run", "first message in Ms-Text-Format: %s",
			         text);
		free(text);
	}
	if (!srv)
		return; /* BENOTIFY */
	if (strcmp(method, "INVITE") == 0)
		sipleg_reply_code(srv, 480, "no such user is online");
	else
		sipleg_reply_code(srv, 404, "no such user");
}

static void on_gone(struct sipleg_srv *srv, void *arg)
{
	(void)arg;
	log_info("sipleg_run", "request from [peer %s] withdrawn", sipleg_srv_peer(srv));
}

static void on_ping_answer(int status, struct sipm *resp, struct sipd *dlg, void *arg)
{
	(void)dlg;
	log_info("sipleg_run", "OPTIONS to [peer %s]: %d%s", (const char *)arg, status,
	         resp ? "" : " (no response)");
}

static void send_pings(void *arg)
{
	struct run *r = arg;
	for (size_t i = 0; i < r->npings; i++) {
		const struct conf_peer *p = NULL;
		for (size_t k = 0; k < r->cf->npeers; k++)
			if (strcmp(r->cf->peers[k].name, r->pings[i]) == 0)
				p = &r->cf->peers[k];
		if (!p) {
			log_error("sipleg_run", "--ping %s: no such [peer]", r->pings[i]);
			continue;
		}
		char ruri[300];
		snprintf(ruri, sizeof(ruri), "sip:%s", p->host);
		struct sipleg_req rq = {.method = "OPTIONS",
		                        .ruri = ruri,
		                        .from = "<sip:presbridge@xmpp.test>",
		                        .peer = p->name};
		int e = sipleg_request(r->sip, &rq, on_ping_answer, (void *)r->pings[i],
		                       NULL);
		if (e)
			log_error("sipleg_run", "OPTIONS to [peer %s] not sent: %s",
			          p->name, strerror(-e));
	}
	if (r->ping_ms)
		loop_timer_start(r->loop, &r->ping_t, r->ping_ms, send_pings, r);
}

static void on_stop(int signo, void *arg)
{
	struct run *r = arg;
	log_info("sipleg_run", "signal %d: stopping", signo);
	loop_stop(r->loop);
}

static void on_reload(int signo, void *arg)
{
	struct run *r = arg;
	struct diag_list dl;
	struct conf *cf = NULL;
	(void)signo;
	diag_init(&dl);
	int e = conf_load(&cf, r->path, &dl);
	log_diags(&dl);
	diag_free(&dl);
	if (e)
		return;
	if (sipleg_reload(r->sip, cf) != 0) {
		conf_free(cf);
		return;
	}
	conf_free(r->cf);
	r->cf = cf;
}

static unsigned num(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || !*s) {
		fprintf(stderr, "sipleg_run: '%s' is not a number\n", s);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	struct run r = {0};
	struct sipleg_limits lim = {0};
	struct diag_list dl;
	int status = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			fprintf(stderr, "sipleg_run: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (strcmp(a, "-c") == 0)
			r.path = v;
		else if (strcmp(a, "--handshake-ms") == 0)
			lim.handshake_ms = num(v);
		else if (strcmp(a, "--idle-ms") == 0)
			lim.idle_ms = num(v);
		else if (strcmp(a, "--answer-ms") == 0)
			lim.answer_ms = num(v);
		else if (strcmp(a, "--max-msg") == 0)
			lim.max_msg = num(v);
		else if (strcmp(a, "--ping-ms") == 0)
			r.ping_ms = num(v);
		else if (strcmp(a, "--ping") == 0 && r.npings < MAX_PINGS)
			r.pings[r.npings++] = v;
		else {
			fprintf(stderr, "sipleg_run: unknown option %s\n", a);
			return 2;
		}
	}
	if (!r.path) {
		fprintf(stderr,
		        "usage: sipleg_run -c FILE [--handshake-ms N] [--idle-ms N] "
		        "[--answer-ms N] [--max-msg N] [--ping PEER] [--ping-ms N]\n");
		return 2;
	}
	diag_init(&dl);
	int e = conf_load(&r.cf, r.path, &dl);
	log_diags(&dl);
	diag_free(&dl);
	if (e)
		return 1;
	log_set_level((enum log_level)r.cf->log_level);
	signal(SIGPIPE, SIG_IGN);
	if (loop_new(&r.loop) != 0 || loop_signal(r.loop, SIGTERM, on_stop, &r) != 0 ||
	    loop_signal(r.loop, SIGINT, on_stop, &r) != 0 ||
	    loop_signal(r.loop, SIGHUP, on_reload, &r) != 0)
		goto out;
	struct sipleg_handlers h = {.request = on_request, .gone = on_gone};
	if (sipleg_start(&r.sip, r.loop, r.cf, &h, &r) != 0)
		goto out;
	sipleg_set_limits(r.sip, &lim);
	if (r.npings)
		loop_timer_start(r.loop, &r.ping_t, 0, send_pings, &r);
	log_info("sipleg_run", "running with %s", r.path);
	status = loop_run(r.loop) == 0 ? 0 : 1;
	log_info("sipleg_run", "stopped");
out:
	sipleg_stop(r.sip);
	loop_free(r.loop);
	conf_free(r.cf);
	return status;
}

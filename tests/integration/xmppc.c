/*
 * xmppc -- a small scripted XMPP client for the presbridge integration tests.
 *
 *   xmppc --jid alice@xmpp.test[/resource] --password pw [--host 127.0.0.1]
 *         [--port 5222] --ca ca.crt [--timeout S] [--direct-tls] [--insecure]
 *         [--keep-going] [--verbose]
 *
 * It logs in with STARTTLS (mandatory), verifying the server certificate against
 * --ca and the JID's domain.  libstrophe 0.12.2 makes this easy enough:
 * xmpp_conn_set_cafile() adds the CA file to the trust store and the library
 * itself checks the certificate name against the JID's domain (not against
 * --host); any failure calls our certfail handler, which prints the reason
 * ("hostname mismatch", "self-signed certificate in certificate chain"...) and
 * refuses.  Checked on Debian 12: a certificate from another CA and one for another
 * name are both refused.  (The system trust store is consulted as well, which does
 * not matter for test certificates.)  Then it prints "CONNECTED <jid>" and runs
 * the commands read from stdin, one per line:
 *
 *   send <raw xml>              send the XML as is
 *   expect <pattern> [secs]     wait until a received stanza matches <pattern>
 *   absent <pattern> [secs]     fail if a stanza matching <pattern> arrives within
 *                               secs (default 1)
 *   sleep <ms>                  keep receiving for <ms> milliseconds
 *   flush                       forget every stanza not yet matched by an expect
 *   quit                        close the stream and exit 0 (so does end of input)
 *   # comment, empty lines      ignored
 * A command is one line: write a newline inside a stanza as &#10;.
 *
 * A <pattern> is one or more substrings separated by "&&" (spaces around each are
 * ignored); a stanza matches when it contains all of them.  Stanzas are matched in
 * their printed form (below), where libstrophe writes attributes with double
 * quotes and in no fixed order: match attributes one by one, e.g.
 *   expect <presence&&from="bob@sip.test/&&<show>away</show>
 * Each stanza can satisfy one expect: an expect consumes the oldest matching stanza
 * received since start (or since "flush") that no earlier expect consumed.
 * A trailing number is taken as the timeout (default --timeout): to match a pattern
 * that ends in a number, give the timeout explicitly.
 *
 * Output (stdout, line-buffered): "CONNECTED <bound jid>" once logged in, then every
 * received stanza as one line "RECV <xml>" (newlines written as &#10;), and
 * "DISCONNECTED" at the end.  Errors go to stderr.
 *
 * --keep-going: a failed expect/absent does not end the session; every expect/absent
 * prints "OK expect <pattern>" or "FAILED expect <pattern>" (same for absent) on
 * stdout, and the exit code is 1 at the end if any failed.  For long-lived clients
 * driven from a test script through a FIFO (see xmpp.sh).
 *
 * Exit codes: 0 success; 1 an expect timed out or an absent pattern arrived;
 * 2 usage error or unknown command; 3 connection, TLS or login failure, or the
 * server closed the stream.
 *
 * Pings (XEP-0199) from the server are answered automatically (and still printed).
 * libstrophe 0.12 has no public socket descriptor, so the loop alternates
 * xmpp_run_once(ctx, 10 ms) with a non-blocking poll of stdin: latency <= 10 ms.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>
#include <time.h>
#include <unistd.h>

enum exit_code { EX_OK = 0, EX_EXPECT = 1, EX_USAGE = 2, EX_CONN = 3 };

enum conn_state { ST_CONNECTING, ST_ONLINE, ST_QUITTING, ST_DONE, ST_FAILED };

enum wait_kind { W_NONE, W_EXPECT, W_ABSENT, W_SLEEP };

struct strlist {
	char **v;
	size_t n;
	size_t cap;
};

struct options {
	const char *jid;
	const char *password;
	const char *host;
	unsigned short port;
	const char *ca;
	double timeout;
	int direct_tls;
	int insecure;
	int verbose;
	int keep_going;
};

struct app {
	struct options opt;
	xmpp_ctx_t *ctx;
	xmpp_conn_t *conn;
	enum conn_state state;
	int exit_code;
	int ever_connected;

	struct strlist received; /* stanzas not yet consumed by an expect */
	struct strlist commands; /* command lines read from stdin, in order */
	size_t next_command;
	char *inbuf; /* partial stdin line */
	size_t inlen;
	size_t incap;
	int stdin_eof;

	unsigned failures; /* failed expect/absent with --keep-going */
	enum wait_kind wait;
	char *pattern; /* for W_EXPECT / W_ABSENT */
	double wait_secs;
	long long deadline_ms;
};

static struct app app;
static volatile sig_atomic_t got_signal;

_Noreturn static void die_oom(void)
{
	fputs("xmppc: out of memory\n", stderr);
	exit(EX_CONN);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (q == NULL)
		die_oom();
	return q;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (d == NULL)
		die_oom();
	return d;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void strlist_push(struct strlist *l, char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = s;
}

static void strlist_remove(struct strlist *l, size_t i)
{
	free(l->v[i]);
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof *l->v);
	l->n--;
}

static void strlist_clear(struct strlist *l)
{
	size_t i;
	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

static void strlist_free(struct strlist *l)
{
	strlist_clear(l);
	free(l->v);
	l->v = NULL;
	l->cap = 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void
errorf(const char *fmt, ...)
{
	va_list ap;
	fputs("xmppc: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Finish with an exit code: close the stream politely when we can. */
static void finish(int code)
{
	if (app.state == ST_DONE || app.state == ST_FAILED || app.state == ST_QUITTING) {
		if (app.exit_code == EX_OK)
			app.exit_code = code;
		return;
	}
	app.exit_code = code;
	if (app.state == ST_ONLINE) {
		app.state = ST_QUITTING;
		app.deadline_ms = now_ms() + 2000;
		xmpp_disconnect(app.conn);
	} else {
		app.state = ST_DONE;
	}
}

/* ------------------------------------------------------------------ matching */

static int contains_all(const char *text, const char *pattern)
{
	const char *p = pattern;
	while (*p != '\0') {
		const char *end = strstr(p, "&&");
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *b = p;
		const char *e = p + len;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > b) {
			size_t n = (size_t)(e - b);
			const char *t = text;
			int found = 0;
			while ((t = strchr(t, *b)) != NULL) {
				if (strncmp(t, b, n) == 0) {
					found = 1;
					break;
				}
				t++;
			}
			if (!found)
				return 0;
		}
		if (end == NULL)
			break;
		p = end + 2;
	}
	return 1;
}

/* Index of the oldest unconsumed stanza matching the pattern, or -1. */
static long find_match(const char *pattern)
{
	size_t i;
	for (i = 0; i < app.received.n; i++)
		if (contains_all(app.received.v[i], pattern))
			return (long)i;
	return -1;
}

/* ------------------------------------------------------------------ stanzas */

/* One line: newlines and carriage returns become character references. */
static char *one_line(const char *xml, size_t len)
{
	size_t i, extra = 0, o = 0;
	char *out;
	for (i = 0; i < len; i++)
		if (xml[i] == '\n' || xml[i] == '\r')
			extra += 4;
	out = xrealloc(NULL, len + extra + 1);
	for (i = 0; i < len; i++) {
		if (xml[i] == '\n') {
			memcpy(out + o, "&#10;", 5);
			o += 5;
		} else if (xml[i] == '\r') {
			memcpy(out + o, "&#13;", 5);
			o += 5;
		} else {
			out[o++] = xml[i];
		}
	}
	out[o] = '\0';
	return out;
}

static void answer_ping(xmpp_stanza_t *stanza)
{
	const char *type = xmpp_stanza_get_type(stanza);
	const char *name = xmpp_stanza_get_name(stanza);
	xmpp_stanza_t *reply;
	if (name == NULL || strcmp(name, "iq") != 0 || type == NULL ||
	    strcmp(type, "get") != 0)
		return;
	if (xmpp_stanza_get_child_by_name_and_ns(stanza, "ping", "urn:xmpp:ping") == NULL)
		return;
	reply = xmpp_stanza_reply(stanza);
	if (reply == NULL)
		return;
	xmpp_stanza_set_type(reply, "result");
	xmpp_send(app.conn, reply);
	xmpp_stanza_release(reply);
}

static int stanza_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
	char *buf = NULL;
	size_t len = 0;
	const char *id = xmpp_stanza_get_id(stanza);
	(void)conn;
	(void)userdata;
	/* libstrophe's own login iqs (bind/session results) are not for the script */
	if (id != NULL && strncmp(id, "_xmpp_", 6) == 0)
		return 1;
	if (xmpp_stanza_to_text(stanza, &buf, &len) == XMPP_EOK && buf != NULL) {
		char *line = one_line(buf, len);
		xmpp_free(app.ctx, buf);
		printf("RECV %s\n", line);
		fflush(stdout);
		strlist_push(&app.received, line);
	}
	answer_ping(stanza);
	return 1; /* keep the handler */
}

/* ------------------------------------------------------------------ connection */

static const char *stream_error_name(xmpp_error_type_t t)
{
	static const char *const names[] = {
	    "bad-format",
	    "bad-namespace-prefix",
	    "conflict",
	    "connection-timeout",
	    "host-gone",
	    "host-unknown",
	    "improper-addressing",
	    "internal-server-error",
	    "invalid-from",
	    "invalid-id",
	    "invalid-namespace",
	    "invalid-xml",
	    "not-authorized",
	    "policy-violation",
	    "remote-connection-failed",
	    "resource-constraint",
	    "restricted-xml",
	    "see-other-host",
	    "system-shutdown",
	    "undefined-condition",
	    "unsupported-encoding",
	    "unsupported-stanza-type",
	    "unsupported-version",
	    "xml-not-well-formed",
	};
	size_t i = (size_t)t;
	if (i < sizeof names / sizeof names[0])
		return names[i];
	return "unknown";
}

static void conn_handler(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                         xmpp_stream_error_t *stream_error, void *userdata)
{
	(void)userdata;
	if (event == XMPP_CONN_CONNECT) {
		const char *bound = xmpp_conn_get_bound_jid(conn);
		if (!xmpp_conn_is_secured(conn) && !app.opt.insecure) {
			errorf("logged in without TLS: refusing");
			app.state = ST_FAILED;
			app.exit_code = EX_CONN;
			return;
		}
		app.ever_connected = 1;
		app.state = ST_ONLINE;
		xmpp_handler_add(conn, stanza_handler, NULL, NULL, NULL, NULL);
		printf("CONNECTED %s\n", bound ? bound : app.opt.jid);
		fflush(stdout);
		return;
	}
	/* XMPP_CONN_DISCONNECT, XMPP_CONN_FAIL, XMPP_CONN_RAW_CONNECT */
	if (event == XMPP_CONN_RAW_CONNECT)
		return;
	if (app.state == ST_QUITTING) {
		app.state = ST_DONE;
		return;
	}
	if (stream_error != NULL)
		errorf("stream error from server: %s%s%s",
		       stream_error_name(stream_error->type),
		       stream_error->text ? ": " : "",
		       stream_error->text ? stream_error->text : "");
	if (error != 0)
		errorf("connection error: %s", strerror(error));
	if (!app.ever_connected)
		errorf("could not log in as %s at %s:%u (see the reason above; --verbose "
		       "shows "
		       "the whole stream)",
		       app.opt.jid, app.opt.host, (unsigned)app.opt.port);
	else
		errorf("server closed the connection");
	app.state = ST_FAILED;
	if (app.exit_code == EX_OK)
		app.exit_code = EX_CONN;
}

/* libstrophe log: everything with --verbose; otherwise only errors, warnings and
 * the reason of a failed TCP connect (logged at debug level by libstrophe). */
static void log_handler(void *userdata, xmpp_log_level_t level, const char *area,
                        const char *msg)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	(void)userdata;
	if (!app.opt.verbose && level < XMPP_LEVEL_WARN &&
	    strncmp(msg, "connection failed", 17) != 0)
		return;
	fprintf(stderr, "xmppc: libstrophe %s %s: %s\n",
	        (size_t)level < sizeof names / sizeof names[0] ? names[level] : "?", area,
	        msg);
}

static int certfail_handler(const xmpp_tlscert_t *cert, const char *const errormsg)
{
	const char *subject = xmpp_tlscert_get_string(cert, XMPP_CERT_SUBJECT);
	errorf("server certificate rejected: %s (subject: %s)", errormsg ? errormsg : "?",
	       subject ? subject : "?");
	return 0; /* refuse */
}

/* ------------------------------------------------------------------ commands */

/* Split "pattern [secs]" into pattern and timeout. */
static double split_timeout(char *arg, double dflt)
{
	char *sp = strrchr(arg, ' ');
	char *endp;
	double v;
	if (sp == NULL || sp[1] == '\0')
		return dflt;
	if (strspn(sp + 1, "0123456789.") != strlen(sp + 1))
		return dflt;
	errno = 0;
	v = strtod(sp + 1, &endp);
	if (errno != 0 || *endp != '\0' || v < 0)
		return dflt;
	while (sp > arg && (sp[-1] == ' ' || sp[-1] == '\t'))
		sp--;
	*sp = '\0';
	return v;
}

static void start_wait(enum wait_kind kind, char *arg, double dflt)
{
	double secs = split_timeout(arg, dflt);
	app.wait = kind;
	free(app.pattern);
	app.pattern = xstrdup(arg);
	app.wait_secs = secs;
	app.deadline_ms = now_ms() + (long long)(secs * 1000.0);
}

static void dump_unmatched(void)
{
	size_t i;
	if (app.received.n == 0) {
		fputs("xmppc: no unmatched stanza received\n", stderr);
		return;
	}
	fprintf(stderr, "xmppc: %zu unmatched stanza(s) received:\n", app.received.n);
	for (i = 0; i < app.received.n; i++)
		fprintf(stderr, "  %s\n", app.received.v[i]);
}

/* Run one command line; returns 0 to go on, 1 when the command must wait. */
static int run_command(char *line)
{
	char *arg;
	size_t len = strlen(line);
	while (len > 0 &&
	       (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		line[--len] = '\0';
	while (*line == ' ' || *line == '\t')
		line++;
	if (*line == '\0' || *line == '#')
		return 0;
	arg = strpbrk(line, " \t");
	if (arg != NULL) {
		*arg++ = '\0';
		while (*arg == ' ' || *arg == '\t')
			arg++;
	} else {
		arg = line + strlen(line);
	}

	if (strcmp(line, "send") == 0) {
		if (*arg == '\0') {
			errorf("send: nothing to send");
			finish(EX_USAGE);
			return 1;
		}
		if (app.opt.verbose)
			fprintf(stderr, "SEND %s\n", arg);
		xmpp_send_raw(app.conn, arg, strlen(arg));
		return 0;
	}
	if (strcmp(line, "expect") == 0 || strcmp(line, "absent") == 0) {
		int expect = line[0] == 'e';
		if (*arg == '\0') {
			errorf("%s: missing pattern", line);
			finish(EX_USAGE);
			return 1;
		}
		start_wait(expect ? W_EXPECT : W_ABSENT, arg,
		           expect ? app.opt.timeout : 1.0);
		return 1;
	}
	if (strcmp(line, "sleep") == 0) {
		char *endp;
		long ms = strtol(arg, &endp, 10);
		if (*arg == '\0' || *endp != '\0' || ms < 0) {
			errorf("sleep: expected milliseconds, got '%s'", arg);
			finish(EX_USAGE);
			return 1;
		}
		app.wait = W_SLEEP;
		app.deadline_ms = now_ms() + ms;
		return 1;
	}
	if (strcmp(line, "flush") == 0) {
		strlist_clear(&app.received);
		return 0;
	}
	if (strcmp(line, "quit") == 0) {
		finish(EX_OK);
		return 1;
	}
	errorf("unknown command '%s' (send, expect, absent, sleep, flush, quit)", line);
	finish(EX_USAGE);
	return 1;
}

/* An expect/absent is settled: report it (--keep-going: "OK ..."/"FAILED ..." on
 * stdout and go on; otherwise a failure ends the session with exit code 1). */
static int settle(int ok)
{
	const char *cmd = app.wait == W_EXPECT ? "expect" : "absent";
	app.wait = W_NONE;
	if (app.opt.keep_going) {
		printf("%s %s %s\n", ok ? "OK" : "FAILED", cmd, app.pattern);
		fflush(stdout);
		if (!ok)
			app.failures++;
		return 0;
	}
	if (ok)
		return 0;
	finish(EX_EXPECT);
	return 1;
}

/* Check the pending wait; returns 1 while it must go on waiting. */
static int check_wait(void)
{
	long idx;
	switch (app.wait) {
	case W_NONE:
		return 0;
	case W_SLEEP:
		if (now_ms() < app.deadline_ms)
			return 1;
		break;
	case W_EXPECT:
		idx = find_match(app.pattern);
		if (idx >= 0) {
			strlist_remove(&app.received, (size_t)idx);
			return settle(1);
		}
		if (now_ms() < app.deadline_ms)
			return 1;
		errorf("expect timed out after %gs waiting for: %s", app.wait_secs,
		       app.pattern);
		dump_unmatched();
		return settle(0);
	case W_ABSENT:
		idx = find_match(app.pattern);
		if (idx >= 0) {
			errorf("absent: received a stanza matching: %s", app.pattern);
			fprintf(stderr, "  %s\n", app.received.v[idx]);
			strlist_remove(&app.received, (size_t)idx);
			return settle(0);
		}
		if (now_ms() < app.deadline_ms)
			return 1;
		return settle(1);
	}
	app.wait = W_NONE;
	return 0;
}

static void run_commands(void)
{
	while (app.state == ST_ONLINE) {
		if (check_wait())
			return;
		if (app.next_command >= app.commands.n) {
			if (app.stdin_eof)
				finish(EX_OK);
			return;
		}
		/* a command that waits (or ends the session) is checked on the next turn
		 */
		(void)run_command(app.commands.v[app.next_command++]);
	}
}

/* Read whatever stdin has, without blocking; queue complete lines. */
static void read_stdin(void)
{
	struct pollfd pfd;
	char chunk[4096];
	ssize_t n;
	size_t i, start;
	if (app.stdin_eof)
		return;
	for (;;) {
		pfd.fd = STDIN_FILENO;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 0) <= 0)
			return;
		n = read(STDIN_FILENO, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (app.inlen > 0) {
				strlist_push(&app.commands, xstrdup(app.inbuf));
				app.inlen = 0;
			}
			app.stdin_eof = 1;
			return;
		}
		if (app.inlen + (size_t)n + 1 > app.incap) {
			app.incap = (app.inlen + (size_t)n + 1) * 2;
			app.inbuf = xrealloc(app.inbuf, app.incap);
		}
		memcpy(app.inbuf + app.inlen, chunk, (size_t)n);
		app.inlen += (size_t)n;
		app.inbuf[app.inlen] = '\0';
		start = 0;
		for (i = 0; i < app.inlen; i++) {
			if (app.inbuf[i] == '\n') {
				app.inbuf[i] = '\0';
				strlist_push(&app.commands, xstrdup(app.inbuf + start));
				start = i + 1;
			}
		}
		memmove(app.inbuf, app.inbuf + start, app.inlen - start);
		app.inlen -= start;
		app.inbuf[app.inlen] = '\0';
	}
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
	fputs("usage: xmppc --jid JID --password PW [--host 127.0.0.1] [--port 5222]\n"
	      "             (--ca CA.crt | --insecure) [--timeout SECS] [--direct-tls]\n"
	      "             [--keep-going] [--verbose]\n"
	      "Commands on stdin: send XML | expect PATTERN [SECS] | absent PATTERN "
	      "[SECS] |\n"
	      "                   sleep MS | flush | quit     (PATTERN: substrings "
	      "joined by &&)\n",
	      f);
}

static void on_signal(int sig)
{
	got_signal = sig;
}

static int parse_args(int argc, char **argv)
{
	int i;
	app.opt.host = "127.0.0.1";
	app.opt.port = 5222;
	app.opt.timeout = 10.0;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(EX_OK);
		} else if (strcmp(a, "--insecure") == 0) {
			app.opt.insecure = 1;
		} else if (strcmp(a, "--direct-tls") == 0) {
			app.opt.direct_tls = 1;
		} else if (strcmp(a, "--keep-going") == 0) {
			app.opt.keep_going = 1;
		} else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
			app.opt.verbose = 1;
		} else if (v == NULL) {
			errorf("%s: unknown option or missing value", a);
			return -1;
		} else if (strcmp(a, "--jid") == 0) {
			app.opt.jid = v;
			i++;
		} else if (strcmp(a, "--password") == 0) {
			app.opt.password = v;
			i++;
		} else if (strcmp(a, "--host") == 0) {
			app.opt.host = v;
			i++;
		} else if (strcmp(a, "--port") == 0) {
			char *endp;
			long p = strtol(v, &endp, 10);
			if (*endp != '\0' || p <= 0 || p > 65535) {
				errorf("--port: bad port '%s'", v);
				return -1;
			}
			app.opt.port = (unsigned short)p;
			i++;
		} else if (strcmp(a, "--ca") == 0) {
			app.opt.ca = v;
			i++;
		} else if (strcmp(a, "--timeout") == 0) {
			char *endp;
			app.opt.timeout = strtod(v, &endp);
			if (*endp != '\0' || app.opt.timeout <= 0) {
				errorf("--timeout: bad value '%s'", v);
				return -1;
			}
			i++;
		} else {
			errorf("unknown option %s", a);
			return -1;
		}
	}
	if (app.opt.jid == NULL || app.opt.password == NULL) {
		errorf("--jid and --password are required");
		return -1;
	}
	if (app.opt.ca == NULL && !app.opt.insecure) {
		errorf("--ca is required (or --insecure to skip certificate checks)");
		return -1;
	}
	if (app.opt.ca != NULL && access(app.opt.ca, R_OK) != 0) {
		errorf("--ca %s: %s", app.opt.ca, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	xmpp_log_t logger = {log_handler, NULL};
	unsigned long flags;
	long long connect_deadline;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_args(argc, argv) != 0) {
		usage(stderr);
		return EX_USAGE;
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	xmpp_initialize();
	app.ctx = xmpp_ctx_new(NULL, &logger);
	if (app.ctx == NULL)
		die_oom();
	app.conn = xmpp_conn_new(app.ctx);
	if (app.conn == NULL)
		die_oom();

	flags = XMPP_CONN_FLAG_DISABLE_SM;
	flags |=
	    app.opt.direct_tls ? XMPP_CONN_FLAG_LEGACY_SSL : XMPP_CONN_FLAG_MANDATORY_TLS;
	if (app.opt.insecure)
		flags |= XMPP_CONN_FLAG_TRUST_TLS;
	if (xmpp_conn_set_flags(app.conn, (long)flags) != XMPP_EOK) {
		errorf("cannot set connection flags");
		return EX_CONN;
	}
	xmpp_conn_set_jid(app.conn, app.opt.jid);
	xmpp_conn_set_pass(app.conn, app.opt.password);
	if (app.opt.ca != NULL)
		xmpp_conn_set_cafile(app.conn, app.opt.ca);
	xmpp_conn_set_certfail_handler(app.conn, certfail_handler);

	app.state = ST_CONNECTING;
	connect_deadline = now_ms() + (long long)(app.opt.timeout * 1000.0);
	/* altdomain = host: connect there, but authenticate/verify as the JID's domain */
	if (xmpp_connect_client(app.conn, app.opt.host, app.opt.port, conn_handler,
	                        NULL) != XMPP_EOK) {
		errorf("cannot connect to %s:%u", app.opt.host, (unsigned)app.opt.port);
		app.state = ST_FAILED;
		app.exit_code = EX_CONN;
	}

	while (app.state != ST_DONE && app.state != ST_FAILED) {
		xmpp_run_once(app.ctx, 10);
		if (got_signal) {
			errorf("signal %d: quitting", (int)got_signal);
			got_signal = 0;
			finish(EX_CONN);
		}
		if (app.state == ST_CONNECTING && now_ms() > connect_deadline) {
			errorf("timed out after %gs logging in as %s at %s:%u",
			       app.opt.timeout, app.opt.jid, app.opt.host,
			       (unsigned)app.opt.port);
			app.state = ST_FAILED;
			app.exit_code = EX_CONN;
			break;
		}
		if (app.state == ST_QUITTING && now_ms() > app.deadline_ms) {
			app.state =
			    ST_DONE; /* the server did not close its side in time */
			break;
		}
		read_stdin();
		run_commands();
	}
	if (app.ever_connected) {
		printf("DISCONNECTED\n");
		fflush(stdout);
	}
	if (app.exit_code == EX_OK && app.failures > 0)
		app.exit_code = EX_EXPECT;

	xmpp_conn_release(app.conn);
	xmpp_ctx_free(app.ctx);
	xmpp_shutdown();
	strlist_free(&app.received);
	strlist_free(&app.commands);
	free(app.inbuf);
	free(app.pattern);
	return app.exit_code;
}

/*
 * The component link end to end, in process: a scripted XEP-0114 server on the
 * same event loop (plain TCP, tls = off) checks the stream header and the
 * handshake digest, and the test drives up, down, queueing, reconnects, refusals
 * and a clean stop. TLS and ejabberd itself are covered by
 * tests/integration/t_xmpp_link.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "presbridge/addr.h"
#include "presbridge/conf.h"
#include "presbridge/log.h"
#include "presbridge/loop.h"
#include "presbridge/xlink.h"
#include "presbridge/xproto.h"

#define SECRET    "unit-test-secret"
#define STREAM_ID "4242"

struct server {
	struct loop *l;
	int lfd, cfd;
	uint16_t port;
	char buf[1 << 20];
	size_t len;
	bool header_answered;
	bool handshake_seen;
	bool mute; /* never answer anything */
	/* answer the stream header with this text, then close (NULL: accept) */
	const char *refuse;
	unsigned handshakes, accepts;
	bool closed_by_client;
};

struct env {
	struct server srv;
	struct loop *l;
	struct xlink_set *set;
	struct conf cf;
	char dir[64];
	unsigned ups, downs, stanzas, messages;
	bool stopped;
};

static void srv_send(struct server *s, const char *text)
{
	size_t n = strlen(text);
	while (n) {
		ssize_t w = write(s->cfd, text, n);
		assert_true(w > 0);
		text += w;
		n -= (size_t)w;
	}
}

static void srv_drop(struct server *s)
{
	if (s->cfd < 0)
		return;
	loop_fd_del(s->l, s->cfd);
	close(s->cfd);
	s->cfd = -1;
}

static void srv_on_data(int fd, unsigned events, void *arg)
{
	struct server *s = arg;
	(void)events;
	ssize_t r = read(fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);
	if (r <= 0) {
		s->closed_by_client = true;
		srv_drop(s);
		return;
	}
	s->len += (size_t)r;
	s->buf[s->len] = '\0';
	if (s->mute)
		return;
	if (!s->header_answered && strstr(s->buf, "<stream:stream") &&
	    strchr(s->buf, '>')) {
		/* what the link must send: the component namespace and our domain */
		assert_non_null(strstr(s->buf, "jabber:component:accept"));
		assert_non_null(strstr(s->buf, "to=\"sip.test\""));
		s->header_answered = true;
		if (s->refuse) {
			srv_send(s, s->refuse);
			srv_drop(s);
			return;
		}
		srv_send(s, "<?xml version='1.0'?><stream:stream "
		            "xmlns='jabber:component:accept' "
		            "xmlns:stream='http://etherx.jabber.org/streams' "
		            "id='" STREAM_ID "' from='sip.test'>");
	}
	const char *h = strstr(s->buf, "<handshake>");
	if (!s->handshake_seen && h && strstr(h, "</handshake>")) {
		char want[XPROTO_DIGEST_LEN + 1];
		assert_int_equal(xproto_handshake_digest(STREAM_ID, SECRET, want), 0);
		s->handshake_seen = true;
		s->handshakes++;
		if (strncmp(h + 11, want, XPROTO_DIGEST_LEN) != 0) {
			srv_send(
			    s,
			    "<stream:error><not-authorized "
			    "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
			    "</stream:stream>");
			srv_drop(s);
		} else {
			srv_send(s, "<handshake/>");
		}
	}
}

static void srv_on_accept(int fd, unsigned events, void *arg)
{
	struct server *s = arg;
	(void)events;
	int c = accept(fd, NULL, NULL);
	if (c < 0)
		return;
	srv_drop(s); /* one client at a time */
	fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
	s->cfd = c;
	s->len = 0;
	s->buf[0] = '\0';
	s->header_answered = s->handshake_seen = false;
	s->accepts++;
	assert_int_equal(loop_fd_add(s->l, c, LOOP_READ, srv_on_data, s), 0);
}

static void srv_start(struct server *s, struct loop *l)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(0x7f000001)};
	socklen_t al = sizeof(a);
	s->l = l;
	s->cfd = -1;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 4), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(loop_fd_add(l, s->lfd, LOOP_READ, srv_on_accept, s), 0);
}

/* --- the bridge's side ------------------------------------------------------- */

static void on_state(const char *domain, bool up, void *arg)
{
	struct env *e = arg;
	assert_string_equal(domain, "sip.test");
	if (up)
		e->ups++;
	else
		e->downs++;
}

static int on_stanza(const char *domain, xmpp_stanza_t *st, struct xlink_refusal *r,
                     void *arg)
{
	struct env *e = arg;
	assert_string_equal(domain, "sip.test");
	e->stanzas++;
	if (strcmp(xmpp_stanza_get_name(st), "message") == 0) {
		e->messages++;
		r->cond = ERR_COND_ITEM_NOT_FOUND;
		r->text = "no such user";
		return XLINK_REFUSE;
	}
	return XLINK_TAKEN;
}

static void on_stopped(void *arg)
{
	struct env *e = arg;
	e->stopped = true;
}

typedef bool(cond_fn)(struct env *e);

/* Run the loop until c(e) holds or ms pass; returns whether it held. */
static bool run_until(struct env *e, cond_fn *c, unsigned ms)
{
	uint64_t end = loop_clock_ms() + ms;
	while (!c(e)) {
		if (loop_clock_ms() >= end)
			return false;
		assert_int_equal(loop_run_once(e->l, 50), 0);
	}
	return true;
}

static bool is_up(struct env *e)
{
	return xlink_is_up(e->set, "sip.test");
}

static bool is_down(struct env *e)
{
	return !xlink_is_up(e->set, "sip.test");
}

static bool stopped(struct env *e)
{
	return e->stopped;
}

static const char *want_text;
static bool srv_got(struct env *e)
{
	return strstr(e->srv.buf, want_text) != NULL;
}

static bool got(struct env *e, const char *text, unsigned ms)
{
	want_text = text;
	return run_until(e, srv_got, ms);
}

static void env_conf(struct env *e, const char *secret)
{
	static const char map[] = "sip  sip.test  sip.test\nxmpp xmpp.test xmpp.test\n";
	struct diag_list dl;
	char path[128];

	snprintf(e->dir, sizeof(e->dir), "/tmp/test_xlink_link.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(path, sizeof(path), "%s/domains.map", e->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(map, f);
	fclose(f);
	memset(&e->cf, 0, sizeof(e->cf));
	e->cf.mappings = e->dir;
	e->cf.addr = addr_map_new();
	diag_init(&dl);
	assert_int_equal(addr_map_load_domains(e->cf.addr, map, strlen(map), path, &dl),
	                 0);
	diag_free(&dl);
	e->cf.xmpp_server.host = (char *)"127.0.0.1";
	e->cf.xmpp_server.port = e->srv.port;
	e->cf.xmpp_secret = (char *)secret;
	e->cf.xmpp_tls = CONF_XMPP_TLS_OFF;
	e->cf.xmpp_name = (char *)"xmpp.test";
}

static void env_free(struct env *e)
{
	char path[128];
	xlink_set_free(e->set);
	srv_drop(&e->srv);
	loop_fd_del(e->l, e->srv.lfd);
	close(e->srv.lfd);
	addr_map_free(e->cf.addr);
	snprintf(path, sizeof(path), "%s/domains.map", e->dir);
	unlink(path);
	rmdir(e->dir);
	loop_free(e->l);
	free(e);
}

static struct env *env_new(const char *secret)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	assert_int_equal(loop_new(&e->l), 0);
	srv_start(&e->srv, e->l);
	env_conf(e, secret);
	struct xlink_handlers h = {on_state, on_stanza, e};
	assert_int_equal(xlink_set_new(&e->set, e->l, &e->cf, &h), 0);
	return e;
}

static xmpp_stanza_t *presence(struct env *e, const char *from, const char *id)
{
	xmpp_stanza_t *p = xmpp_presence_new(xlink_stanza_ctx(e->set));
	assert_non_null(p);
	xmpp_stanza_set_from(p, from);
	xmpp_stanza_set_to(p, "alice@xmpp.test");
	xmpp_stanza_set_id(p, id);
	return p;
}

static int send_presence(struct env *e, const char *from, const char *id)
{
	xmpp_stanza_t *p = presence(e, from, id);
	int err = xlink_send(e->set, p);
	xmpp_stanza_release(p);
	return err;
}

static void test_component_domains(void **state)
{
	(void)state;
	struct env *e = calloc(1, sizeof(*e));
	e->srv.port = 1;
	env_conf(e, SECRET);
	char **v;
	size_t n;
	assert_int_equal(xlink_component_domains(&e->cf, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "sip.test");
	free(v[0]);
	free(v);
	addr_map_free(e->cf.addr);
	char path[128];
	snprintf(path, sizeof(path), "%s/domains.map", e->dir);
	unlink(path);
	rmdir(e->dir);
	free(e);
}

/* Up, queue flushed, iq answered, message to the bridge, down, queue bounded,
 * reconnect, clean stop. */
static void test_lifecycle(void **state)
{
	(void)state;
	struct env *e = env_new(SECRET);
	assert_int_equal(xlink_count(e->set), 1);
	assert_string_equal(xlink_domain(e->set, 0), "sip.test");
	assert_null(xlink_domain(e->set, 1));

	/* sent before the link is up: queued, then delivered in order */
	assert_false(xlink_is_up(e->set, NULL));
	assert_int_equal(send_presence(e, "x@sip.test", "early1"), 0);
	assert_int_equal(send_presence(e, "x@sip.test/r", "early2"), 0);
	assert_true(run_until(e, is_up, 3000));
	assert_true(xlink_is_up(e->set, NULL));
	assert_int_equal(xlink_retry_after(e->set, NULL), 0);
	assert_int_equal(e->ups, 1);
	assert_true(got(e, "early2", 2000));
	assert_true(strstr(e->srv.buf, "early1") < strstr(e->srv.buf, "early2"));

	/* refusals the caller sees */
	assert_int_equal(send_presence(e, "x@elsewhere.test", "n1"), -ENOENT);
	assert_int_equal(send_presence(e, "bad jid@sip.test", "n2"), -EINVAL);
	xmpp_stanza_t *p = presence(e, "x@sip.test", "big");
	char *big = malloc(XLINK_MAX_STANZA + 1);
	memset(big, 'a', XLINK_MAX_STANZA);
	big[XLINK_MAX_STANZA] = '\0';
	xmpp_stanza_set_attribute(p, "x-pad", big);
	assert_int_equal(xlink_send(e->set, p), -E2BIG);
	xmpp_stanza_release(p);
	free(big);

	/* the link answers a ping itself, hands a message to the bridge and sends the
	 * bridge's refusal */
	srv_send(&e->srv, "<iq type='get' id='ping1' from='alice@xmpp.test/r' "
	                  "to='sip.test'><ping xmlns='urn:xmpp:ping'/></iq>"
	                  "<message id='msg1' from='alice@xmpp.test/r' to='x@sip.test'>"
	                  "<body>hi</body></message>");
	assert_true(got(e, "<item-not-found", 2000));
	assert_non_null(strstr(e->srv.buf, "id=\"ping1\""));
	assert_int_equal(e->messages, 1);

	/* idle: the loop sleeps instead of spinning */
	clock_t c0 = clock();
	uint64_t t0 = loop_clock_ms();
	while (loop_clock_ms() - t0 < 500)
		assert_int_equal(loop_run_once(e->l, 100), 0);
	double cpu_ms = (double)(clock() - c0) * 1000.0 / CLOCKS_PER_SEC;
	assert_true(cpu_ms < 50.0);

	/* the server goes away: down, stanzas queue up to the bound */
	srv_drop(&e->srv);
	assert_true(run_until(e, is_down, 2000));
	assert_int_equal(e->downs, 1);
	assert_true(xlink_retry_after(e->set, "sip.test") >= 1);
	char id[32];
	for (unsigned i = 0; i < XLINK_QUEUE_MAX; i++) {
		snprintf(id, sizeof(id), "q%u", i);
		assert_int_equal(send_presence(e, "x@sip.test", id), 0);
	}
	assert_int_equal(send_presence(e, "x@sip.test", "overflow"), -ENOBUFS);

	/* it reconnects by itself (1 s back-off) and sends the queue */
	assert_true(run_until(e, is_up, 4000));
	assert_int_equal(e->ups, 2);
	snprintf(id, sizeof(id), "\"q%u\"", XLINK_QUEUE_MAX - 1);
	assert_true(got(e, id, 3000));
	assert_null(strstr(e->srv.buf, "overflow"));

	/* a clean stop: </stream:stream>, then the done callback */
	xlink_set_stop(e->set, on_stopped, e);
	assert_int_equal(send_presence(e, "x@sip.test", "late"), -ESHUTDOWN);
	assert_true(got(e, "</stream:stream>", 2000));
	srv_drop(&e->srv); /* the server's side of the close */
	assert_true(run_until(e, stopped, 3000));
	assert_int_equal(e->downs, 2);
	env_free(e);
}

/* A refused handshake: never up, retried with back-off, not in a tight loop. */
static void test_refused(void **state)
{
	(void)state;
	struct env *e = env_new("wrong-secret");
	uint64_t t0 = loop_clock_ms();
	while (loop_clock_ms() - t0 < 3500)
		assert_int_equal(loop_run_once(e->l, 100), 0);
	assert_int_equal(e->ups, 0);
	/* attempts after 0, ~1 and ~3 s */
	assert_true(e->srv.handshakes >= 2 && e->srv.handshakes <= 3);
	assert_true(xlink_retry_after(e->set, NULL) >= 1);
	/* stopping while down needs no server */
	xlink_set_stop(e->set, on_stopped, e);
	assert_true(run_until(e, stopped, 1000));
	env_free(e);
}

/* A server that never answers the stream header: the attempt is abandoned at the
 * deadline, and freeing the set mid-attempt leaks nothing. */
static void test_free_mid_attempt(void **state)
{
	(void)state;
	struct env *e = env_new(SECRET);
	e->srv.mute = true;
	for (int i = 0; i < 5; i++)
		assert_int_equal(loop_run_once(e->l, 50), 0);
	assert_int_equal(e->srv.accepts, 1);
	assert_false(xlink_is_up(e->set, "sip.test"));
	env_free(e);
}

/* Run the link against a server that answers the stream header with `answer`
 * and closes; the warning logged for the failed attempt must hold `want` and
 * not `unwanted`. The log goes to stderr: it is caught in a file. */
static void refused_says(const char *answer, const char *want, const char *unwanted)
{
	char path[] = "/tmp/test_xlink_link.log.XXXXXX", text[8192];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	enum log_level lvl = log_get_level();
	log_set_level(LOG_LVL_WARN);

	struct env *e = env_new(SECRET);
	e->srv.refuse = answer;
	uint64_t t0 = loop_clock_ms();
	while (loop_clock_ms() - t0 < 500)
		assert_int_equal(loop_run_once(e->l, 50), 0);
	assert_int_equal(e->ups, 0);
	env_free(e);

	log_set_level(lvl);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n > 0);
	text[n] = '\0';
	if (!strstr(text, want) || (unwanted && strstr(text, unwanted)))
		fail_msg("log:\n%s\nwanted: %s", text, want);
}

#define HDR_NO_ID                                                                        \
	"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "           \
	"xmlns:stream='http://etherx.jabber.org/streams' version='1.0' id=''>"

/* XEP-0114 section 3: a server that will not serve the domain answers with a
 * stream header, a stream error and the closing tag. Prosody 0.12's header has
 * an empty id; the error is what the log must report, with Prosody's remedy. */
static void test_refused_domain(void **state)
{
	(void)state;
	refused_says(HDR_NO_ID
	             "<stream:error><host-unknown "
	             "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text "
	             "xmlns='urn:ietf:params:xml:ns:xmpp-streams'>sip.test does not "
	             "match any configured external components</text></stream:error>"
	             "</stream:stream>",
	             "sip.test: the server does not serve the component domain sip.test "
	             "(\"sip.test does not match any configured external components\"); "
	             "add it to the hosts of the server's component listener "
	             "(ejabberd), or give Prosody a Component section",
	             "no id");
	/* a header without id and no error: said so, without blaming libstrophe */
	refused_says(HDR_NO_ID "</stream:stream>",
	             "sip.test: the server's stream header carries no id, so no "
	             "handshake is possible, then closed the stream without a stream "
	             "error",
	             "log format");
}

int main(void)
{
	log_set_level(getenv("PB_TEST_TRACE") ? LOG_LVL_TRACE : LOG_LVL_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_component_domains),
	    cmocka_unit_test(test_lifecycle),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_free_mid_attempt),
	    cmocka_unit_test(test_refused_domain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The SIP leg in process, over UDP on loopback: golden messages of Lync,
 * Kamailio and SIPp get the answers a peer would see; retransmissions are
 * absorbed; trust and routing refuse what they must; requests the bridge sends
 * are retransmitted, matched, and build dialogs with the right route sets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "presbridge/conf.h"
#include "presbridge/log.h"
#include "presbridge/loop.h"
#include "presbridge/msg.h"
#include "presbridge/sip.h"

#include "test_sip_golden.h"

struct env {
	char dir[64];
	struct loop *loop;
	struct conf *cf;
	struct sipleg *sip;
	int peer; /* our UDP socket, the [peer lync] */
	unsigned peer_port, bridge_port;
	/* what the bridge saw */
	int requests, benotifies, in_dialog;
	char last_method[32];
	char mstf[64];
	/* what the bridge's requests got */
	int status;
	struct sipd *dlg;
	int answered;
	struct sipd *srv_dlg; /* the dialog of the last SUBSCRIBE answered */
};

static unsigned bound_port(int fd)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &l);
	return ntohs(a.sin_port);
}

static int udp_socket(const char *ip)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	inet_pton(AF_INET, ip, &a.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		fail_msg("cannot bind a UDP socket on %s", ip);
	return fd;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void write_conf(struct env *e, const char *trusted)
{
	char conf[1024];
	snprintf(conf, sizeof(conf),
	         "[bridge]\nstate = :memory:\nmappings = maps\nlog_level = error\n"
	         "[sip]\nlisten = udp:127.0.0.1:%u\n"
	         "[xmpp]\nserver = 127.0.0.1:5275\nsecret = not-used-here\ntls = off\n"
	         "[peer lync]\nhost = lync01.sip.test\naddress = 127.0.0.1:%u\n"
	         "transport = udp\ndomains = sip.test\ntrusted = %s\n",
	         e->bridge_port, e->peer_port, trusted);
	write_file(e->dir, "presbridge.conf", conf);
}

static struct conf *load(struct env *e)
{
	char path[128];
	struct diag_list dl;
	struct conf *cf = NULL;
	snprintf(path, sizeof(path), "%s/presbridge.conf", e->dir);
	diag_init(&dl);
	int err = conf_load(&cf, path, &dl);
	for (size_t i = 0; err && i < dl.n; i++) {
		char line[1400];
		diag_format(&dl.v[i], line, sizeof(line));
		print_error("%s\n", line);
	}
	diag_free(&dl);
	assert_int_equal(err, 0);
	return cf;
}

/* ---- the bridge's side: table of answers by method ----------------------- */

static void on_request(struct sipleg_srv *srv, struct sipm *req, void *arg)
{
	struct env *e = arg;
	const char *m = sipm_method(req);
	snprintf(e->last_method, sizeof(e->last_method), "%s", m);
	if (!srv) {
		e->benotifies++;
		return;
	}
	e->requests++;
	if (sipleg_srv_dialog(srv))
		e->in_dialog++;
	const char *mstf = sipm_header(req, "Ms-Text-Format", 0);
	if (mstf) {
		char *text = NULL;
		if (msg_mstf_parse(mstf, NULL, &text, NULL) == 0)
			snprintf(e->mstf, sizeof(e->mstf), "%s", text);
		free(text);
	}
	if (strcmp(m, "SUBSCRIBE") == 0) {
		static const char pidf[] =
		    "<presence xmlns='urn:ietf:params:xml:ns:pidf' "
		    "entity='sip:bob@xmpp.test'/>";
		struct sipm_hdr h[] = {{"Expires", "3600"}, {"Event", "presence"}};
		struct sipleg_reply r = {.code = 200, .hdrs = h, .nhdrs = 2};
		if (sipleg_srv_piggyback(srv)) {
			r.content_type = "application/pidf+xml";
			r.body = pidf;
			r.body_len = sizeof(pidf) - 1;
		}
		assert_int_equal(sipleg_reply(srv, &r, NULL), 0);
		assert_int_equal(sipleg_reply(srv, &r, NULL), -EALREADY);
		e->srv_dlg = sipleg_srv_dialog(srv);
	} else if (strcmp(m, "BYE") == 0) {
		/* the dialog may end before the answer goes out */
		sipd_terminate(sipleg_srv_dialog(srv));
		assert_null(sipleg_srv_dialog(srv));
		assert_int_equal(sipleg_reply_code(srv, 200, NULL), 0);
	} else if (strcmp(m, "INVITE") == 0 || strcmp(m, "MESSAGE") == 0) {
		assert_int_equal(sipleg_reply_code(srv, 200, NULL), 0);
	} else {
		assert_int_equal(sipleg_reply_code(srv, 404, "no such user"), 0);
	}
}

/* Send text from fd to the bridge; collect what comes back within ms, stopping
 * at the first final response. Returns the concatenation (caller frees). */
static char *exchange(struct env *e, int fd, const char *text, size_t len, unsigned ms)
{
	struct sockaddr_in to = {.sin_family = AF_INET,
	                         .sin_port = htons(e->bridge_port)};
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	if (text)
		assert_true(sendto(fd, text, len, 0, (struct sockaddr *)&to,
		                   sizeof(to)) == (ssize_t)len);
	char *all = calloc(1, 1);
	size_t alen = 0;
	uint64_t end = loop_clock_ms() + ms;
	while (loop_clock_ms() < end) {
		loop_run_once(e->loop, 10);
		char buf[70000];
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		all = realloc(all, alen + (size_t)n + 1);
		memcpy(all + alen, buf, (size_t)n + 1);
		alen += (size_t)n;
		if (strncmp(buf, "SIP/2.0 ", 8) == 0 && buf[8] != '1')
			break;
	}
	return all;
}

static char *send_golden(struct env *e, const char *file, const char *tag, unsigned ms)
{
	size_t len;
	char *text = golden_load(file, tag, &len);
	assert_non_null(text);
	char *out = exchange(e, e->peer, text, len, ms);
	free(text);
	return out;
}

/* The To tag of the last final response in out. */
static void to_tag(const char *out, char *tag, size_t len)
{
	const char *t = NULL, *p = out;
	while ((p = strstr(p, "\r\nTo: ")) != NULL) {
		t = p;
		p++;
	}
	assert_non_null(t);
	t = strstr(t, ";tag=");
	assert_non_null(t);
	t += 5;
	size_t n = strcspn(t, ";\r");
	snprintf(tag, len, "%.*s", (int)n, t);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/test_sip_leg.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	char maps[128], pres[256], cmd[600];
	snprintf(maps, sizeof(maps), "%s/maps", e->dir);
	mkdir(maps, 0700);
	write_file(maps, "domains.map",
	           "sip sip.test sip.test\nxmpp xmpp.test xmpp.test\n");
	snprintf(pres, sizeof(pres), "%s/mappings/presence.map", PB_SOURCE_DIR);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s/'", pres, maps);
	assert_int_equal(system(cmd), 0);
	e->peer = udp_socket("127.0.0.1");
	e->peer_port = bound_port(e->peer);
	int probe = udp_socket("127.0.0.1");
	e->bridge_port = bound_port(probe);
	close(probe);
	write_conf(e, "yes");
	e->cf = load(e);
	log_set_level(LOG_LVL_ERROR);
	assert_int_equal(loop_new(&e->loop), 0);
	struct sipleg_handlers h = {.request = on_request};
	assert_int_equal(sipleg_start(&e->sip, e->loop, e->cf, &h, e), 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char cmd[128];
	sipleg_stop(e->sip);
	loop_free(e->loop);
	conf_free(e->cf);
	close(e->peer);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		print_error("could not remove %s\n", e->dir);
	free(e);
	return 0;
}

enum dlg_ref { NONE, SUB, INV };

static const struct golden_row {
	const char *file;
	enum dlg_ref tag;   /* ${TAG}: the bridge's tag of that dialog */
	int status;         /* final status; 0: no response at all */
	const char *has[4]; /* substrings of the response */
	int requests;       /* handler calls this row causes */
	enum dlg_ref save;  /* remember the response's To tag as this dialog */
} golden_rows[] = {
    {"lync-options.sip",
     NONE,
     200,
     {"\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, INFO, SUBSCRIBE, NOTIFY, "
      "BENOTIFY",
      "\r\nAccept: application/sdp, application/pidf+xml, text/xml+msrtc.pidf",
      "\r\nSupported: ms-piggyback-first-notify, ms-benotify",
      "\r\nms-keep-alive: UAS; tcp=no; hop-hop=yes; end=no; timeout=300"},
     0,
     NONE},
    {"sipp-options.sip", NONE, 200, {"\r\nCSeq: 1 OPTIONS\r\n"}, 0, NONE},
    {"kamailio-options.sip", NONE, 200, {"\r\nCSeq: 10 OPTIONS\r\n"}, 0, NONE},
    {"lync-subscribe-piggyback.sip",
     NONE,
     200,
     {"\r\nSupported: ms-piggyback-first-notify\r\n",
      "\r\nContent-Type: application/pidf+xml\r\n", "\r\nExpires: 3600\r\n",
      "\r\nContact: <sip:127.0.0.1:"},
     1,
     SUB},
    {"lync-benotify.sip", SUB, 0, {NULL}, 0, NONE},
    {"lync-invite-im.sip",
     NONE,
     200,
     {"\r\nContent-Type: application/sdp;call-type=im\r\n",
      "\r\nm=message 5060 sip null\r\n",
      "\r\nRecord-Route: "
      "<sip:lync01.sip.test:5061;transport=tls;opaque=state:T;lr>;tag="
      "0AF6D9E2C7B81A34\r\n",
      "\r\nms-keep-alive: UAS"},
     1,
     INV},
    {"lync-message-in-session.sip", INV, 200, {"\r\nCSeq: 2 MESSAGE\r\n"}, 1, NONE},
    {"lync-bye.sip", INV, 200, {"\r\nCSeq: 3 BYE\r\n"}, 1, NONE},
    /* the same BYE again: a retransmission, absorbed, the 200 resent */
    {"lync-bye.sip", INV, 200, {"\r\nCSeq: 3 BYE\r\n"}, 0, NONE},
    {"kamailio-message-relayed.sip",
     NONE,
     200,
     {"\r\nVia: SIP/2.0/TLS "
      "127.0.0.1:5061;branch=z9hG4bK4a3c.1b5e0f7d7a2c6b1e9f3d8a4c2b6e1f0a.0\r\n",
      "\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;rport=5070;branch=z9hG4bK-2417-1-0\r\n"},
     1,
     NONE},
    {"kamailio-message-relayed.sip", NONE, 200, {NULL}, 0, NONE},
    {"compact-message.sip", NONE, 200, {"\r\nCall-ID: compact-1@127.0.0.1\r\n"}, 1, NONE},
    {"bad-no-cseq.sip", NONE, 0, {NULL}, 0, NONE},
    {"bad-garbage.sip", NONE, 0, {NULL}, 0, NONE},
    /* RFC 4475 section 3.3.1: no Call-ID, From or To: not handled, ideally
     * a 400 naming the problem (RFC 3261 section 21.4.1). */
    {"bad-no-dialog-ids.sip",
     NONE,
     400,
     {"SIP/2.0 400 Bad Request (no readable From header)",
      "\r\nCSeq: 193942 MESSAGE\r\n"},
     0,
     NONE},
    {"bad-cseq-method.sip",
     NONE,
     400,
     {"SIP/2.0 400 Bad Request (the CSeq method differs from the request method)",
      "\r\nms-diagnostics: 1000;reason=\"the CSeq method differs"},
     0,
     NONE},
    {"bad-unknown-method.sip",
     NONE,
     501,
     {"SIP/2.0 501 Not Implemented (unknown method)", "\r\nAllow: INVITE"},
     0,
     NONE},
    {"bad-register.sip",
     NONE,
     405,
     {"SIP/2.0 405 Method Not Allowed", "\r\nAllow: INVITE"},
     0,
     NONE},
    {"bad-unmapped-domain.sip",
     NONE,
     404,
     {"SIP/2.0 404 Not Found (domain not bridged)",
      "\r\nms-diagnostics: 1000;reason=\"domain not bridged: elsewhere.test is not in "
      "domains.map\""},
     0,
     NONE},
    {"bad-unknown-dialog.sip", NONE, 481, {"SIP/2.0 481 "}, 0, NONE},
    /* found by fuzz_sipbridge: the dialog's requests went to a Request-URI no
     * parser reads */
    {"bad-contact-scheme.sip",
     NONE,
     400,
     {"SIP/2.0 400 Bad Request (the Contact or a Record-Route is not a well-formed sip: "
      "or sips: URI)"},
     0,
     NONE},
    {"bad-record-route.sip",
     NONE,
     400,
     {"SIP/2.0 400 Bad Request (the Contact or a Record-Route is not a well-formed "
      "sip: or sips: URI)"},
     0,
     NONE},
    {"bad-contact-bytes.sip",
     NONE,
     400,
     {"SIP/2.0 400 Bad Request (the Contact or a Record-Route is not a well-formed sip: "
      "or sips: URI)"},
     0,
     NONE},
    /* found by fuzz_sipbridge: the To URI's bytes became the From of the
     * dialog's NOTIFY */
    {"bad-to-bytes.sip",
     NONE,
     400,
     {"SIP/2.0 400 Bad Request (the From or To URI, a tag or the Call-ID holds bytes SIP "
      "does not allow there)"},
     0,
     NONE},
    /* found by fuzz_sipbridge: libosip2 reads this To as "sip:bob@xmpp.test:",
     * which it then refuses to parse in the NOTIFY's From */
    {"bad-to-empty-port.sip",
     NONE,
     400,
     {"SIP/2.0 400 Bad Request (the From or To URI, a tag or the Call-ID holds bytes SIP "
      "does not allow there)"},
     0,
     NONE},
    {"bad-from-tag-bytes.sip",
     NONE,
     400,
     {"SIP/2.0 400 Bad Request (the From or To URI, a tag or the Call-ID holds bytes SIP "
      "does not allow there)"},
     0,
     NONE},
};

static void test_golden_answers(void **state)
{
	struct env *e = *state;
	char tags[3][64] = {"", "", ""};
	char *prev = NULL;
	const char *prev_file = NULL;
	for (size_t i = 0; i < sizeof(golden_rows) / sizeof(golden_rows[0]); i++) {
		const struct golden_row *r = &golden_rows[i];
		int before = e->requests;
		char *out = send_golden(e, r->file, tags[r->tag], r->status ? 1500 : 300);
		char want[16];
		snprintf(want, sizeof(want), "SIP/2.0 %d ", r->status);
		if (!r->status && *out)
			fail_msg("%s: expected no answer, got:\n%s", r->file, out);
		if (r->status && !strstr(out, want))
			fail_msg("%s: no %d in:\n%s", r->file, r->status, out);
		for (size_t k = 0; k < 4 && r->has[k]; k++)
			if (!strstr(out, r->has[k]))
				fail_msg("%s: no '%s' in:\n%s", r->file, r->has[k], out);
		if (e->requests - before != r->requests)
			fail_msg("%s: the bridge saw %d requests, want %d", r->file,
			         e->requests - before, r->requests);
		if (strstr(out, "\r\nWWW-Authenticate") || strstr(out, "SIP/2.0 401") ||
		    strstr(out, "SIP/2.0 407"))
			fail_msg("%s: the bridge challenged", r->file);
		/* a retransmission gets the very same final response */
		if (prev_file && strcmp(prev_file, r->file) == 0 && r->status) {
			const char *a = strstr(prev, want), *b = strstr(out, want);
			if (!a || !b || strcmp(a, b) != 0)
				fail_msg("%s: retransmission answered differently",
				         r->file);
		}
		if (r->save != NONE)
			to_tag(out, tags[r->save], sizeof(tags[0]));
		if (r->save == INV) {
			/* acknowledge the 2xx, or the leg keeps retransmitting it */
			char ack[1024];
			int n = snprintf(
			    ack, sizeof(ack),
			    "ACK sip:bridge.xmpp.test SIP/2.0\r\n"
			    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKack1\r\n"
			    "From: <sip:alice@sip.test>;tag=3a4b5c6d7e\r\n"
			    "To: <sip:bob@xmpp.test>;tag=%s\r\n"
			    "Call-ID: 9a8b7c6d5e4f30211203948576abcdef\r\n"
			    "CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: "
			    "0\r\n\r\n",
			    tags[INV]);
			free(exchange(e, e->peer, ack, (size_t)n, 700));
		}
		free(prev);
		prev = out;
		prev_file = r->file;
	}
	free(prev);
	assert_int_equal(e->benotifies, 1);
	assert_string_equal(e->mstf, "Hello Bob");
	assert_int_equal(e->in_dialog, 2); /* the MESSAGE and the BYE of the session */
	/* the SUBSCRIBE's dialog stays; the IM session ended with its BYE */
	assert_int_equal(sipleg_dialog_count(e->sip), 1);
	/* the INVITE's 2xx was acknowledged: no stray retransmission arrives */
	char *late = exchange(e, e->peer, NULL, 0, 1200);
	if (*late)
		fail_msg("unexpected traffic after the ACK:\n%s", late);
	free(late);
}

/* Over UDP an error to an INVITE is retransmitted (Timer G) until its ACK, which
 * belongs to the INVITE's transaction (same branch), and then stops. */
static void test_invite_error_until_ack(void **state)
{
	struct env *e = *state;
	char *out = send_golden(e, "bad-invite-audio.sip", NULL, 1500);
	const char *first = strstr(out, "SIP/2.0 488 ");
	assert_non_null(first);
	char *again = exchange(e, e->peer, NULL, 0, 900);
	assert_non_null(strstr(again, "SIP/2.0 488 "));
	assert_string_equal(strstr(again, "SIP/2.0 488 "), first);
	char tag[64], ack[1024];
	to_tag(out, tag, sizeof(tag));
	int n = snprintf(
	    ack, sizeof(ack),
	    "ACK sip:bob@xmpp.test SIP/2.0\r\n"
	    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-bad-7;rport\r\n"
	    "From: <sip:alice@sip.test>;tag=bad7\r\nTo: <sip:bob@xmpp.test>;tag=%s\r\n"
	    "Call-ID: bad-7@127.0.0.1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\n"
	    "Content-Length: 0\r\n\r\n",
	    tag);
	char *late = exchange(e, e->peer, ack, (size_t)n, 2500);
	if (*late)
		fail_msg("the 488 went on after its ACK:\n%s", late);
	assert_int_equal(e->requests, 0);
	free(out);
	free(again);
	free(late);
}

static void test_trust(void **state)
{
	struct env *e = *state;
	/* from an address that is no [peer] */
	int other = udp_socket("127.0.0.2");
	size_t len;
	char *req = golden_load("kamailio-message-relayed.sip", NULL, &len);
	req = realloc(req, len + 1);
	char *out = exchange(e, other, req, len, 1500);
	assert_non_null(strstr(out, "SIP/2.0 403 Forbidden (not a configured peer)"));
	assert_non_null(
	    strstr(out, "\r\nms-diagnostics: 1000;reason=\"not a configured peer"));
	free(out);
	close(other);
	/* a configured peer that is not trusted: refused, never challenged */
	write_conf(e, "no");
	struct conf *cf = load(e);
	assert_int_equal(sipleg_reload(e->sip, cf), 0);
	conf_free(e->cf);
	e->cf = cf;
	char *text = golden_load("compact-message.sip", NULL, &len);
	out = exchange(e, e->peer, text, len, 1500);
	assert_non_null(strstr(out, "SIP/2.0 403 Forbidden (peer not trusted)"));
	assert_null(strstr(out, "Authenticate"));
	assert_int_equal(e->requests, 0);
	free(out);
	free(text);
	free(req);
}

/* ---- requests the bridge sends ------------------------------------------- */

static void on_response(int status, struct sipm *resp, struct sipd *dlg, void *arg)
{
	struct env *e = arg;
	(void)resp;
	e->status = status;
	e->dlg = dlg;
	e->answered++;
}

/* Wait for a request from the bridge on our peer socket. */
static char *peer_recv(struct env *e, unsigned ms, struct sockaddr_in *from)
{
	uint64_t end = loop_clock_ms() + ms;
	while (loop_clock_ms() < end) {
		loop_run_once(e->loop, 10);
		char buf[8192];
		socklen_t fl = sizeof(*from);
		ssize_t n = recvfrom(e->peer, buf, sizeof(buf) - 1, MSG_DONTWAIT,
		                     (struct sockaddr *)from, &fl);
		if (n > 0) {
			buf[n] = '\0';
			return strdup(buf);
		}
	}
	return NULL;
}

static char *hdr_line(const char *msg, const char *name)
{
	char key[64];
	snprintf(key, sizeof(key), "\r\n%s: ", name);
	const char *p = strstr(msg, key);
	if (!p)
		return NULL;
	p += strlen(key);
	return strndup(p, strcspn(p, "\r"));
}

/* Answer req with code, echoing its Via/From/To/Call-ID/CSeq. */
static void peer_answer(struct env *e, const char *req, int code, const char *extra,
                        const struct sockaddr_in *to)
{
	char *via = hdr_line(req, "Via"), *from = hdr_line(req, "From"),
	     *t = hdr_line(req, "To"), *cid = hdr_line(req, "Call-ID"),
	     *cseq = hdr_line(req, "CSeq");
	char resp[4096];
	int n = snprintf(
	    resp, sizeof(resp),
	    "SIP/2.0 %d Whatever\r\nVia: %s\r\nFrom: %s\r\nTo: %s;tag=peertag\r\n"
	    "Call-ID: %s\r\nCSeq: %s\r\n%sContent-Length: 0\r\n\r\n",
	    code, via, from, t, cid, cseq, extra ? extra : "");
	sendto(e->peer, resp, (size_t)n, 0, (const struct sockaddr *)to, sizeof(*to));
	free(via);
	free(from);
	free(t);
	free(cid);
	free(cseq);
}

static void wait_answer(struct env *e, int n)
{
	uint64_t end = loop_clock_ms() + 2000;
	while (e->answered < n && loop_clock_ms() < end)
		loop_run_once(e->loop, 10);
	assert_int_equal(e->answered, n);
}

static void test_client_transactions(void **state)
{
	struct env *e = *state;
	struct sockaddr_in from;

	/* OPTIONS ping over UDP: retransmitted at T1 until answered */
	struct sipleg_req ping = {.method = "OPTIONS",
	                          .ruri = "sip:lync01.sip.test",
	                          .from = "<sip:presbridge@xmpp.test>",
	                          .peer = "lync"};
	assert_int_equal(sipleg_request(e->sip, &ping, on_response, e, NULL), 0);
	char *first = peer_recv(e, 1000, &from);
	assert_non_null(first);
	assert_non_null(strstr(first, "OPTIONS sip:lync01.sip.test SIP/2.0\r\n"));
	assert_non_null(strstr(first, ";branch=z9hG4bK"));
	assert_non_null(strstr(first, ";rport\r\n"));
	assert_non_null(strstr(first, "\r\nMax-Forwards: 70\r\n"));
	assert_non_null(strstr(first, "\r\nCSeq: 1 OPTIONS\r\n"));
	uint64_t t0 = loop_clock_ms();
	char *again = peer_recv(e, 1500, &from);
	uint64_t dt = loop_clock_ms() - t0;
	assert_non_null(again);
	assert_string_equal(first, again); /* Timer E: the same request, ~T1 later */
	if (dt < 350 || dt > 900)
		fail_msg("retransmitted after %llu ms, want about 500",
		         (unsigned long long)dt);
	peer_answer(e, first, 200, NULL, &from);
	wait_answer(e, 1);
	assert_int_equal(e->status, 200);
	free(first);
	free(again);

	/* routed by the R-URI's domain; a challenge is reported as such */
	struct sipleg_req msg = {.method = "MESSAGE",
	                         .ruri = "sip:alice@sip.test",
	                         .from = "<sip:bob@xmpp.test>",
	                         .content_type = "text/plain",
	                         .body = "hi",
	                         .body_len = 2};
	assert_int_equal(sipleg_request(e->sip, &msg, on_response, e, NULL), 0);
	char *m = peer_recv(e, 1000, &from);
	assert_non_null(m);
	assert_non_null(strstr(m, "\r\nContent-Length: 2\r\n\r\nhi"));
	peer_answer(e, m, 401, "WWW-Authenticate: Digest realm=\"x\", nonce=\"y\"\r\n",
	            &from);
	wait_answer(e, 2);
	assert_int_equal(e->status, 401);
	free(m);

	/* no [peer] routes the domain */
	msg.ruri = "sip:alice@nowhere.test";
	assert_int_equal(sipleg_request(e->sip, &msg, on_response, e, NULL), -ENOENT);
	msg.ruri = "sip:alice@sip.test";
	msg.method = "BAD METHOD";
	assert_int_equal(sipleg_request(e->sip, &msg, on_response, e, NULL), -EINVAL);

	/* SUBSCRIBE creates a dialog; an in-dialog NOTIFY follows its route set */
	struct sipleg_req sub = {.method = "SUBSCRIBE",
	                         .ruri = "sip:alice@sip.test",
	                         .from = "<sip:bob@xmpp.test>",
	                         .create_dialog = true};
	assert_int_equal(sipleg_request(e->sip, &sub, on_response, e, NULL), 0);
	char *s = peer_recv(e, 1000, &from);
	assert_non_null(s);
	assert_non_null(strstr(s, "\r\nContact: <sip:127.0.0.1:"));
	char extra[300];
	snprintf(
	    extra, sizeof(extra),
	    "Contact: <sip:alice@127.0.0.1:%u>\r\nRecord-Route: <sip:rr1.sip.test;lr>\r\n"
	    "Record-Route: <sip:rr2.sip.test;lr>\r\nExpires: 600\r\n",
	    e->peer_port);
	peer_answer(e, s, 200, extra, &from);
	wait_answer(e, 3);
	assert_int_equal(e->status, 200);
	assert_non_null(e->dlg);
	assert_string_equal(sipd_remote_tag(e->dlg), "peertag");
	assert_string_equal(sipd_remote_uri(e->dlg), "sip:alice@sip.test");
	assert_ptr_equal(
	    sipd_find(e->sip, sipd_call_id(e->dlg), sipd_local_tag(e->dlg), "peertag"),
	    e->dlg);
	struct sipleg_req notify = {.method = "NOTIFY", .dialog = e->dlg};
	assert_int_equal(sipleg_request(e->sip, &notify, on_response, e, NULL), 0);
	char *n = peer_recv(e, 1000, &from);
	assert_non_null(n);
	char want[128];
	snprintf(want, sizeof(want), "NOTIFY sip:alice@127.0.0.1:%u SIP/2.0\r\n",
	         e->peer_port);
	assert_non_null(strstr(n, want));
	/* RFC 3261 12.1.2: the UAC's route set is the Record-Route reversed */
	const char *r2 = strstr(n, "\r\nRoute: <sip:rr2.sip.test;lr>\r\n");
	const char *r1 = strstr(n, "\r\nRoute: <sip:rr1.sip.test;lr>\r\n");
	assert_true(r2 && r1 && r2 < r1);
	assert_non_null(strstr(n, "\r\nCSeq: 2 NOTIFY\r\n"));
	assert_non_null(strstr(n, ";tag=peertag\r\n"));
	peer_answer(e, n, 200, NULL, &from);
	wait_answer(e, 4);
	free(s);
	free(n);

	/* INVITE: the leg acknowledges the 2xx inside the new dialog */
	struct sipleg_req inv = {.method = "INVITE",
	                         .ruri = "sip:alice@sip.test",
	                         .from = "<sip:bob@xmpp.test>",
	                         .create_dialog = true,
	                         .content_type = "application/sdp;call-type=im",
	                         .body = "v=0\r\nm=message 5060 sip null\r\n",
	                         .body_len = 30};
	assert_int_equal(sipleg_request(e->sip, &inv, on_response, e, NULL), 0);
	char *iv = peer_recv(e, 1000, &from);
	assert_non_null(iv);
	snprintf(extra, sizeof(extra),
	         "Contact: <sip:alice@127.0.0.1:%u;transport=udp>\r\n", e->peer_port);
	peer_answer(e, iv, 200, extra, &from);
	wait_answer(e, 5);
	char *ack = peer_recv(e, 1000, &from);
	assert_non_null(ack);
	snprintf(want, sizeof(want),
	         "ACK sip:alice@127.0.0.1:%u;transport=udp SIP/2.0\r\n", e->peer_port);
	assert_non_null(strstr(ack, want));
	assert_non_null(strstr(ack, "\r\nCSeq: 1 ACK\r\n"));
	free(iv);
	free(ack);
	sipd_terminate(e->dlg);

	/* RFC 3261 12.2.1.1, a strict router first: its URI, without the angle
	 * brackets, is the Request-URI; the remote target goes last as a Route */
	assert_int_equal(sipleg_request(e->sip, &sub, on_response, e, NULL), 0);
	char *ss = peer_recv(e, 1000, &from);
	assert_non_null(ss);
	snprintf(
	    extra, sizeof(extra),
	    "Contact: <sip:alice@127.0.0.1:%u>\r\nRecord-Route: <sip:rr1.sip.test>\r\n"
	    "Record-Route: <sip:rr2.sip.test;maddr=127.0.0.1>\r\nExpires: 600\r\n",
	    e->peer_port);
	peer_answer(e, ss, 200, extra, &from);
	wait_answer(e, 6);
	assert_int_equal(e->status, 200);
	notify.dialog = e->dlg;
	assert_int_equal(sipleg_request(e->sip, &notify, on_response, e, NULL), 0);
	char *sn = peer_recv(e, 1000, &from);
	assert_non_null(sn);
	assert_non_null(
	    strstr(sn, "NOTIFY sip:rr2.sip.test;maddr=127.0.0.1 SIP/2.0\r\n"));
	snprintf(want, sizeof(want), "\r\nRoute: <sip:alice@127.0.0.1:%u>\r\n",
	         e->peer_port);
	const char *sr1 = strstr(sn, "\r\nRoute: <sip:rr1.sip.test>\r\n");
	const char *st = strstr(sn, want);
	assert_true(sr1 && st && sr1 < st);
	assert_null(strstr(sn, "Route: <sip:rr2"));
	peer_answer(e, sn, 200, NULL, &from);
	wait_answer(e, 7);
	free(ss);
	free(sn);
	sipd_terminate(e->dlg);

	/* a 2xx whose Contact is no SIP URI builds no dialog: the caller sees 502 */
	assert_int_equal(sipleg_request(e->sip, &sub, on_response, e, NULL), 0);
	char *bs = peer_recv(e, 1000, &from);
	assert_non_null(bs);
	peer_answer(e, bs, 200, "Contact: <http://peer.example/x>\r\nExpires: 600\r\n",
	            &from);
	wait_answer(e, 8);
	assert_int_equal(e->status, 502);
	assert_null(e->dlg);
	free(bs);
}

static void on_tcp_resp(int status, struct sipm *resp, struct sipd *dlg, void *arg)
{
	(void)resp, (void)dlg;
	*(int *)arg = status;
}

/* Read one request from fd (blocking up to ms) and answer it 200. */
static bool answer_tcp(struct loop *l, int fd, unsigned ms)
{
	char buf[4096] = "";
	size_t have = 0;
	uint64_t end = loop_clock_ms() + ms;
	while (loop_clock_ms() < end && !strstr(buf, "\r\n\r\n")) {
		loop_run_once(l, 10);
		ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, MSG_DONTWAIT);
		if (n > 0)
			have += (size_t)n;
		buf[have] = '\0';
	}
	if (!strstr(buf, "\r\n\r\n"))
		return false;
	char resp[2048];
	int n = snprintf(resp, sizeof(resp), "SIP/2.0 200 OK\r\n");
	static const char *const hs[] = {"Via:", "From:", "To:", "Call-ID:", "CSeq:"};
	for (size_t i = 0; i < 5; i++) {
		const char *h = strstr(buf, hs[i]);
		assert_non_null(h);
		n += snprintf(resp + n, sizeof(resp) - (size_t)n, "%.*s\r\n",
		              (int)strcspn(h, "\r"), h);
	}
	n += snprintf(resp + n, sizeof(resp) - (size_t)n, "Content-Length: 0\r\n\r\n");
	return send(fd, resp, (size_t)n, 0) == n;
}

/* An outbound plain TCP connection outlives the bound on its connect (which is
 * the TLS handshake limit): it once closed every such connection after 10 s. */
/* 300 subscription dialogs: the dialog tables start at 64 buckets and double
 * past two dialogs a bucket (64 -> 128 -> 256), so every dialog below was
 * created before, across or after a regrowth; each must still be found by its
 * in-dialog refresh, and a refresh to a tag nobody issued must not be. */
static void test_many_dialogs(void **state)
{
	struct env *e = *state;
	enum { N = 300 };
	static char tags[N][64];
	char msg[1024];
	for (int i = 0; i < N; i++) {
		int n =
		    snprintf(msg, sizeof(msg),
		             "SUBSCRIBE sip:bob@xmpp.test SIP/2.0\r\n"
		             "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK-many-%d\r\n"
		             "Max-Forwards: 70\r\n"
		             "From: <sip:u%d@sip.test>;tag=f%d\r\n"
		             "To: <sip:bob@xmpp.test>\r\n"
		             "Call-ID: many-%d@127.0.0.1\r\n"
		             "CSeq: 1 SUBSCRIBE\r\n"
		             "Contact: <sip:u%d@127.0.0.1:%u>\r\n"
		             "Event: presence\r\nExpires: 3600\r\n"
		             "Content-Length: 0\r\n\r\n",
		             e->peer_port, i, i, i, i, i, e->peer_port);
		char *out = exchange(e, e->peer, msg, (size_t)n, 2000);
		assert_non_null(strstr(out, "SIP/2.0 200 "));
		to_tag(out, tags[i], sizeof(tags[i]));
		free(out);
	}
	assert_int_equal(sipleg_dialog_count(e->sip), N);
	int before = e->in_dialog;
	for (int i = 0; i <= N; i++) {
		/* i == N: a tag of no dialog, on a Call-ID that has one */
		int n =
		    snprintf(msg, sizeof(msg),
		             "SUBSCRIBE sip:bob@xmpp.test SIP/2.0\r\n"
		             "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK-refresh-%d\r\n"
		             "Max-Forwards: 70\r\n"
		             "From: <sip:u%d@sip.test>;tag=f%d\r\n"
		             "To: <sip:bob@xmpp.test>;tag=%s\r\n"
		             "Call-ID: many-%d@127.0.0.1\r\n"
		             "CSeq: 2 SUBSCRIBE\r\n"
		             "Contact: <sip:u%d@127.0.0.1:%u>\r\n"
		             "Event: presence\r\nExpires: 3600\r\n"
		             "Content-Length: 0\r\n\r\n",
		             e->peer_port, i, i % N, i % N, i < N ? tags[i] : "nobody",
		             i % N, i % N, e->peer_port);
		char *out = exchange(e, e->peer, msg, (size_t)n, 2000);
		assert_non_null(strstr(out, i < N ? "SIP/2.0 200 " : "SIP/2.0 481 "));
		free(out);
	}
	assert_int_equal(e->in_dialog - before, N);
	assert_int_equal(sipleg_dialog_count(e->sip), N);
}

/* RFC 3261 section 12.1.1: a SUBSCRIBE without a From tag (RFC 2543) makes a
 * dialog with a null remote tag; the bridge's NOTIFY in it carries a To without
 * a tag (before: "To: <...>;tag=", which no parser reads; fuzz_sipbridge), and
 * the peer's refresh without a From tag finds the dialog. */
static void test_no_from_tag(void **state)
{
	struct env *e = *state;
	struct sockaddr_in from;
	char msg[1024], tag[64];
	const char *fmt = "SUBSCRIBE sip:bob@xmpp.test SIP/2.0\r\n"
	                  "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK-notag-%d\r\n"
	                  "Max-Forwards: 70\r\n"
	                  "From: <sip:old@sip.test>\r\n"
	                  "To: <sip:bob@xmpp.test>%s%s\r\n"
	                  "Call-ID: notag@127.0.0.1\r\n"
	                  "CSeq: %d SUBSCRIBE\r\n"
	                  "Contact: <sip:old@127.0.0.1:%u>\r\n"
	                  "Event: presence\r\nExpires: 3600\r\n"
	                  "Content-Length: 0\r\n\r\n";
	int n = snprintf(msg, sizeof(msg), fmt, e->peer_port, 1, "", "", 1, e->peer_port);
	char *out = exchange(e, e->peer, msg, (size_t)n, 2000);
	assert_non_null(strstr(out, "SIP/2.0 200 "));
	to_tag(out, tag, sizeof(tag));
	free(out);
	assert_non_null(e->srv_dlg);
	assert_string_equal(sipd_remote_tag(e->srv_dlg), "");

	struct sipleg_req notify = {.method = "NOTIFY", .dialog = e->srv_dlg};
	assert_int_equal(sipleg_request(e->sip, &notify, on_response, e, NULL), 0);
	char *nt = peer_recv(e, 1000, &from);
	assert_non_null(nt);
	assert_non_null(strstr(nt, "\r\nTo: <sip:old@sip.test>\r\n"));
	char want[128];
	snprintf(want, sizeof(want), "\r\nFrom: <sip:bob@xmpp.test>;tag=%s\r\n", tag);
	assert_non_null(strstr(nt, want));
	struct sipm *m = NULL;
	assert_int_equal(sipm_parse(&m, nt, strlen(nt), NULL), 0);
	sipm_free(m);
	peer_answer(e, nt, 200, NULL, &from);
	wait_answer(e, 1);
	free(nt);

	int before = e->in_dialog;
	n = snprintf(msg, sizeof(msg), fmt, e->peer_port, 2, ";tag=", tag, 2,
	             e->peer_port);
	out = exchange(e, e->peer, msg, (size_t)n, 2000);
	assert_non_null(strstr(out, "SIP/2.0 200 "));
	free(out);
	assert_int_equal(e->in_dialog, before + 1);
}

static void test_tcp_peer_outlives_connect_bound(void **state)
{
	(void)state;
	log_set_level(LOG_LVL_ERROR);
	char dir[64] = "/tmp/test_sip_tcp.XXXXXX", conf[700], maps[128], cmd[600];
	assert_non_null(mkdtemp(dir));
	snprintf(maps, sizeof(maps), "%s/maps", dir);
	mkdir(maps, 0700);
	write_file(maps, "domains.map",
	           "sip sip.test sip.test\nxmpp xmpp.test xmpp.test\n");
	snprintf(cmd, sizeof(cmd), "cp '%s/mappings/presence.map' '%s/'", PB_SOURCE_DIR,
	         maps);
	assert_int_equal(system(cmd), 0);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	fcntl(lfd, F_SETFL, O_NONBLOCK);
	int probe = udp_socket("127.0.0.1");
	unsigned bport = bound_port(probe);
	close(probe);
	snprintf(conf, sizeof(conf),
	         "[bridge]\nstate = :memory:\nmappings = maps\nlog_level = error\n"
	         "[sip]\nlisten = udp:127.0.0.1:%u\n"
	         "[xmpp]\nserver = 127.0.0.1:5275\nsecret = not-used-here\ntls = off\n"
	         "[peer lync]\nhost = lync01.sip.test\naddress = 127.0.0.1:%u\n"
	         "transport = tcp\ndomains = sip.test\ntrusted = yes\n",
	         bport, bound_port(lfd));
	write_file(dir, "presbridge.conf", conf);
	struct env e = {0};
	snprintf(e.dir, sizeof(e.dir), "%s", dir);
	struct conf *cf = load(&e);
	struct loop *l = NULL;
	struct sipleg *sl = NULL;
	struct sipleg_handlers h = {.request = on_request};
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(sipleg_start(&sl, l, cf, &h, &e), 0);
	sipleg_set_limits(sl, &(struct sipleg_limits){.handshake_ms = 200});

	int status = 0;
	struct sipleg_req ping = {.method = "OPTIONS",
	                          .ruri = "sip:lync01.sip.test",
	                          .from = "<sip:presbridge@xmpp.test>",
	                          .peer = "lync"};
	assert_int_equal(sipleg_request(sl, &ping, on_tcp_resp, &status, NULL), 0);
	int cfd = -1;
	uint64_t end = loop_clock_ms() + 2000;
	while (cfd < 0 && loop_clock_ms() < end) {
		loop_run_once(l, 10);
		cfd = accept(lfd, NULL, NULL);
	}
	assert_true(cfd >= 0);
	fcntl(cfd, F_SETFL, O_NONBLOCK);
	assert_true(answer_tcp(l, cfd, 2000));
	end = loop_clock_ms() + 600; /* three times the bound */
	while (loop_clock_ms() < end)
		loop_run_once(l, 10);
	assert_int_equal(status, 200);
	/* the same connection carries the next request; none was closed or opened */
	status = 0;
	assert_int_equal(sipleg_request(sl, &ping, on_tcp_resp, &status, NULL), 0);
	assert_true(answer_tcp(l, cfd, 2000));
	end = loop_clock_ms() + 1000;
	while (status == 0 && loop_clock_ms() < end)
		loop_run_once(l, 10);
	assert_int_equal(status, 200);
	assert_true(accept(lfd, NULL, NULL) < 0);
	char c;
	assert_int_equal(recv(cfd, &c, 1, MSG_DONTWAIT), -1); /* open, nothing more */

	close(cfd);
	close(lfd);
	sipleg_stop(sl);
	loop_free(l);
	conf_free(cf);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- RFC 4475 rules at the leg ------------------------------------------- */

static const struct torture_row {
	const char *what;
	const char *start;   /* the Request-Line without CRLF */
	const char *branch;  /* after "branch=" */
	const char *cseq;    /* "N METHOD" */
	const char *headers; /* extra lines, each ending in CRLF */
	const char *ctype;   /* NULL: no body */
	const char *body;
	int status;
	const char *has; /* substring of the response, or NULL */
} torture_rows[] = {
    /* RFC 3261 section 8.1.1.1; RFC 4475 section 3.1.2.16 */
    {"version", "OPTIONS sip:bob@xmpp.test SIP/7.0", "z9hG4bKv1", "1 OPTIONS", "", NULL,
     NULL, 505, NULL},
    /* RFC 3261 section 8.2.2.1; RFC 4475 sections 3.3.2, 3.3.3 */
    {"scheme", "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0", "z9hG4bKs1",
     "1 OPTIONS", "", NULL, NULL, 416, NULL},
    {"scheme tel", "MESSAGE tel:+15551234 SIP/2.0", "z9hG4bKs2", "1 MESSAGE", "", NULL,
     NULL, 416, NULL},
    /* RFC 3261 section 8.2.2.3; RFC 4475 section 3.3.5 */
    {"require", "OPTIONS sip:bob@xmpp.test SIP/2.0", "z9hG4bKr1", "1 OPTIONS",
     "Require: nothingSupportsThis, ms-benotify\r\n", NULL, NULL, 420,
     "\r\nUnsupported: nothingSupportsThis\r\n"},
    {"require known", "OPTIONS sip:bob@xmpp.test SIP/2.0", "z9hG4bKr2", "1 OPTIONS",
     "Require: ms-benotify\r\n", NULL, NULL, 200, NULL},
    {"require message", "MESSAGE sip:bob@xmpp.test SIP/2.0", "z9hG4bKr3", "1 MESSAGE",
     "Require: 100rel\r\n", "text/plain", "hi", 420, "\r\nUnsupported: 100rel\r\n"},
    /* RFC 3261 section 20.29: Proxy-Require is not for a UAS */
    {"proxy-require", "OPTIONS sip:bob@xmpp.test SIP/2.0", "z9hG4bKr4", "1 OPTIONS",
     "Proxy-Require: noProxiesSupportThis\r\n", NULL, NULL, 200, NULL},
    /* RFC 3261 section 8.2.3; RFC 4475 section 3.3.6 */
    {"body type", "INVITE sip:bob@xmpp.test SIP/2.0", "z9hG4bKb1", "1 INVITE", "",
     "application/unknownformat", "<audio>\r\n <pcmu port=\"443\"/>\r\n</audio>\r\n", 415,
     "\r\nAccept: application/sdp\r\n"},
    /* RFC 4475 section 3.3.15 (RFC 3261 section 21.4.7) */
    {"accept", "INVITE sip:bob@xmpp.test SIP/2.0", "z9hG4bKa1", "1 INVITE",
     "Accept: text/nobodyKnowsThis\r\n", "application/sdp",
     "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
     "m=message 5060 sip null\r\n",
     406, "\r\nWarning: 399 "},
    /* RFC 3261 section 8.2.1; RFC 4475 section 3.1.2.18 */
    {"unknown method, CSeq mismatch", "NEWMETHOD sip:bob@xmpp.test SIP/2.0", "z9hG4bKm1",
     "8 INVITE", "", NULL, NULL, 501, "\r\nAllow: INVITE"},
    /* RFC 3261 section 17.2.3; RFC 4475 section 3.2.1: two different requests
     * with a bare cookie are two transactions, each answered on its own */
    {"bare branch 1", "OPTIONS sip:bob@xmpp.test SIP/2.0", "z9hG4bK", "8 OPTIONS",
     "Require: bare1\r\n", NULL, NULL, 420, "\r\nUnsupported: bare1\r\n"},
    {"bare branch 2", "OPTIONS sip:bob@xmpp.test SIP/2.0", "z9hG4bK", "9 OPTIONS", "",
     NULL, NULL, 200, NULL},
};

/* Send row r as Call-ID "torture-<i>" and return the final response with that
 * Call-ID (caller frees), or an empty string. */
static char *torture_send(struct env *e, const struct torture_row *r, size_t i)
{
	char req[2048], cid[32];
	snprintf(cid, sizeof(cid), "torture-%zu", i);
	size_t blen = r->body ? strlen(r->body) : 0;
	int n = snprintf(req, sizeof(req),
	                 "%s\r\nVia: SIP/2.0/UDP 127.0.0.1:%u;branch=%s\r\n"
	                 "Max-Forwards: 70\r\nFrom: <sip:alice@sip.test>;tag=t%zu\r\n"
	                 "To: <sip:bob@xmpp.test>\r\nCall-ID: %s\r\nCSeq: %s\r\n%s"
	                 "%s%s%sContent-Length: %zu\r\n\r\n%s",
	                 r->start, e->peer_port, r->branch, i, cid, r->cseq, r->headers,
	                 r->ctype ? "Content-Type: " : "", r->ctype ? r->ctype : "",
	                 r->ctype ? "\r\n" : "", blen, r->body ? r->body : "");
	assert_true(n > 0 && (size_t)n < sizeof(req));
	char *all = exchange(e, e->peer, req, (size_t)n, 1500);
	char want[64];
	snprintf(want, sizeof(want), "\r\nCall-ID: %s\r\n", cid);
	/* other rows' INVITE errors are retransmitted (Timer G): skip those */
	for (int tries = 0; tries < 4 && !strstr(all, want); tries++) {
		char *more = exchange(e, e->peer, NULL, 0, 600);
		all = realloc(all, strlen(all) + strlen(more) + 1);
		strcat(all, more);
		free(more);
	}
	const char *p = strstr(all, want);
	char *out = strdup("");
	if (p) {
		const char *start = p;
		while (start > all &&
		       !(start[-1] == '\n' && strncmp(start, "SIP/2.0 ", 8) == 0))
			start--;
		const char *end = strstr(p, "\r\n\r\n");
		free(out);
		out = strndup(start, end ? (size_t)(end - start) + 4 : strlen(start));
	}
	free(all);
	return out;
}

/* Output holding (issue 18, durability before acknowledgement): while the gate
 * names a write not yet durable nothing leaves; release sends in order what that
 * write covers; a message never overtakes one held before it; drop forgets. */
static uint64_t gate_need;
static uint64_t test_gate(void *arg)
{
	(void)arg;
	return gate_need;
}

static char *options_exchange(struct env *e, const char *branch, unsigned ms)
{
	char req[700];
	int n = snprintf(req, sizeof(req),
	                 "OPTIONS sip:bridge.xmpp.test SIP/2.0\r\n"
	                 "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK-%s;rport\r\n"
	                 "Max-Forwards: 70\r\nFrom: <sip:lync@sip.test>;tag=g-%s\r\n"
	                 "To: <sip:bridge.xmpp.test>\r\nCall-ID: gate-%s@127.0.0.1\r\n"
	                 "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	                 e->peer_port, branch, branch, branch);
	return exchange(e, e->peer, req, (size_t)n, ms);
}

static void test_output_gate(void **state)
{
	struct env *e = *state;
	sipleg_set_gate(e->sip, test_gate, NULL);

	gate_need = 5; /* write 5 not yet durable: the 200 waits */
	char *out = options_exchange(e, "gate1", 300);
	assert_string_equal(out, "");
	assert_int_equal(sipleg_held(e->sip), 1);
	free(out);

	gate_need = 0; /* durable now, but the first is still held: no overtaking */
	out = options_exchange(e, "gate2", 300);
	assert_string_equal(out, "");
	assert_int_equal(sipleg_held(e->sip), 2);
	free(out);

	sipleg_release(e->sip, 4); /* not far enough */
	assert_int_equal(sipleg_held(e->sip), 2);
	sipleg_release(e->sip, 5);
	assert_int_equal(sipleg_held(e->sip), 0);
	out = exchange(e, e->peer, NULL, 0, 300); /* one answer per call */
	char *next = exchange(e, e->peer, NULL, 0, 300);
	if (!strstr(out, "branch=z9hG4bK-gate1") || !strstr(next, "branch=z9hG4bK-gate2"))
		fail_msg("both answers, in order, after the release:\n%s\n--\n%s", out,
		         next);
	free(out);
	free(next);

	gate_need = 9; /* dropped (a fenced node): never sent */
	out = options_exchange(e, "gate3", 200);
	assert_int_equal(sipleg_drop_held(e->sip), 1);
	sipleg_release(e->sip, 9);
	char *late = exchange(e, e->peer, NULL, 0, 300);
	assert_string_equal(out, "");
	assert_string_equal(late, "");
	free(out);
	free(late);

	gate_need = 0; /* nothing pending: straight out */
	out = options_exchange(e, "gate4", 300);
	assert_non_null(strstr(out, "SIP/2.0 200 "));
	free(out);
	sipleg_set_gate(e->sip, NULL, NULL);
}

static void test_rfc4475_rules(void **state)
{
	struct env *e = *state;
	for (size_t i = 0; i < sizeof(torture_rows) / sizeof(torture_rows[0]); i++) {
		const struct torture_row *r = &torture_rows[i];
		char *out = torture_send(e, r, i);
		char want[16];
		snprintf(want, sizeof(want), "SIP/2.0 %d ", r->status);
		if (strncmp(out, want, strlen(want)) != 0)
			fail_msg("%s: want %d, got:\n%s", r->what, r->status, out);
		if (r->has && !strstr(out, r->has))
			fail_msg("%s: no '%s' in:\n%s", r->what, r->has, out);
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tcp_peer_outlives_connect_bound),
	    cmocka_unit_test_setup_teardown(test_golden_answers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invite_error_until_ack, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trust, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rfc4475_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_output_gate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_dialogs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_from_tag, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_transactions, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

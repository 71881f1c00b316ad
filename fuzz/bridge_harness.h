/*
 * A whole bridge for the fuzz targets fuzz_xmpp and fuzz_sipbridge: the real
 * bridge_new() over a ":memory:" store, one UDP [peer] (a Kamailio/Lync-style
 * trusted server at 127.0.0.1) and the XMPP component link to "sip.test", with
 * the legs' sockets replaced by their test seams (sipleg_set_tap/sipleg_feed,
 * xlink_set_tap/xlink_feed). A new bridge per input, so a crash replays alone.
 *
 * Oracle besides the sanitizers: everything the bridge writes must be readable
 * by the other side: each SIP message is one whole message on the wire (and
 * parses, if it is a request the bridge makes), each XMPP stanza is one XML
 * element.
 *
 * hb_s2s (set before hb_init): the XMPP leg is server-to-server instead
 * ([xmpp] transport = s2s, hosting sip.test; xmpp.test's static route points at
 * a closed loopback port, so nothing leaves the machine), for fuzz_s2s.
 *
 * Environment: PB_FUZZ_LOG=1 logs everything (trace) to stderr, to follow one
 * input; PB_FUZZ_PAGE=1 makes the peer `im = page` instead of Lync's session.
 */
#ifndef PB_FUZZ_BRIDGE_HARNESS_H
#define PB_FUZZ_BRIDGE_HARNESS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <strophe.h>

#include "../src/bridge/bridge_int.h"
#include "presbridge/bridge.h"
#include "presbridge/conf.h"
#include "presbridge/diag.h"
#include "presbridge/log.h"
#include "presbridge/loop.h"
#include "presbridge/sip.h"
#include "presbridge/sipm.h"
#include "presbridge/sipt.h"
#include "presbridge/store.h"
#include "presbridge/sbuf.h"
#include "presbridge/xlink.h"
#include "presbridge/xstream.h"

#define HB_PEER_IP "127.0.0.1"
#define HB_DOMAIN  "sip.test" /* the component domain of mappings/domains.map */

static struct conf *hb_cf;
static struct loop *hb_loop;
static xmpp_ctx_t *hb_xctx;
static size_t hb_out; /* bytes the bridge wrote in this run */
static bool hb_s2s;   /* server-to-server instead of the component link */

/* A port nothing listens on, for the bridge's UDP listener and the peer. */
static unsigned hb_free_port(int type)
{
	int fd = socket(AF_INET, type, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		abort();
	close(fd);
	return ntohs(a.sin_port);
}

/* (Re)load hb_cf with fresh ports for the bridge's UDP listener, the XMPP
 * server and the peer. */
static void hb_conf(void)
{
	char dir[] = "/tmp/pb-fuzz-XXXXXX", path[64];
	struct diag_list dl;

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/fuzz.ini", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		abort();
	fprintf(f,
	        "[bridge]\nstate = :memory:\nmappings = %s/mappings\nlog_level = error\n"
	        "max_subscriptions = 64\nmax_subscriptions_per_user = 8\n"
	        "[sip]\nlisten = udp:127.0.0.1:%u\n"
	        "[peer kam]\nhost = kamailio.sip.test\naddress = %s:%u\n"
	        "transport = udp\ndomains = sip.test\ntrusted = yes\nim = %s\n",
	        PB_SOURCE_DIR, hb_free_port(SOCK_DGRAM), HB_PEER_IP,
	        hb_free_port(SOCK_DGRAM), getenv("PB_FUZZ_PAGE") ? "page" : "session");
	if (hb_s2s)
		fprintf(
		    f,
		    "[xmpp]\ntransport = s2s\n"
		    "[s2s]\nlisten = 127.0.0.1:%u\ncert = %s/examples/certs/bridge.crt\n"
		    "key = %s/examples/certs/bridge.key\nca = %s/examples/certs/ca.crt\n"
		    "dialback_secret = fuzzing-dialback-secret-0123456789\n"
		    "tls = optional\n"
		    "[s2s-peer xmpp.test]\naddress = 127.0.0.1:%u\n",
		    hb_free_port(SOCK_STREAM), PB_SOURCE_DIR, PB_SOURCE_DIR,
		    PB_SOURCE_DIR, hb_free_port(SOCK_STREAM));
	else
		fprintf(f, "[xmpp]\nserver = 127.0.0.1:%u\nsecret = s3cret\ntls = off\n",
		        hb_free_port(SOCK_STREAM));
	fclose(f);
	conf_free(hb_cf);
	hb_cf = NULL;
	diag_init(&dl);
	if (conf_load(&hb_cf, path, &dl) != 0) {
		fprintf(stderr, "fuzz: %s does not load\n", path);
		abort();
	}
	diag_free(&dl);
	unlink(path);
	rmdir(dir);
}

static void hb_init(void)
{
	log_set_level(getenv("PB_FUZZ_LOG") ? LOG_LVL_TRACE : LOG_LVL_ERROR);
	hb_conf();
	if (loop_new(&hb_loop) != 0)
		abort();
	xmpp_initialize();
	hb_xctx = xmpp_ctx_new(NULL, NULL);
	store_keep_memory(true); /* the schema once, not per input */
}

/* A response echoes the request's Via, From, To, Call-ID and CSeq as they came
 * (RFC 3261 section 8.2.6.2), so a 400 to a malformed request may not parse
 * either: it must still be one whole message on the wire. A request the bridge
 * makes must parse. */
static void hb_sip_out(bool stream, const char *buf, size_t len, void *arg)
{
	struct sipm *m = NULL;
	struct sipt_frame f;
	(void)stream;
	(void)arg;
	hb_out += len;
	if (len == 2 && memcmp(buf, "\r\n", 2) == 0)
		return; /* pong */
	sipt_frame_next(buf, len, len + 1, &f);
	bool ok = f.kind == SIPT_FRAME_MSG && f.len == len;
	if (ok && strncmp(buf, "SIP/2.0 ", 8) != 0) {
		ok = sipm_parse(&m, buf, len, NULL) == 0;
		sipm_free(m);
	}
	if (!ok) {
		fprintf(stderr,
		        "fuzz: the bridge wrote an unreadable SIP message:\n%.*s\n",
		        (int)len, buf);
		abort();
	}
}

static void hb_xmpp_out(const char *domain, const char *text, size_t len, void *arg)
{
	(void)domain;
	(void)arg;
	hb_out += len;
	char *z = strndup(text, len);
	xmpp_stanza_t *st = z ? xmpp_stanza_new_from_string(hb_xctx, z) : NULL;
	if (!st || strlen(z) != len) {
		fprintf(stderr, "fuzz: the bridge wrote an unreadable stanza:\n%.*s\n",
		        (int)len, text);
		abort();
	}
	xmpp_stanza_release(st);
	free(z);
}

/* What the bridge writes on a server-to-server stream, collected per input and
 * read at the end by the same stream parser a peer would use (hb_s2s_check). */
static struct sbuf hb_s2s_buf;

__attribute__((unused)) static void hb_s2s_out(const char *domain, const char *text,
                                               size_t len, void *arg)
{
	(void)domain;
	(void)arg;
	hb_out += len;
	sbuf_putn(&hb_s2s_buf, text, len);
}

static void hb_s2s_el(xmpp_stanza_t *st, size_t size, void *arg)
{
	(void)st;
	(void)size;
	(void)arg;
}

/* The bridge's side of the stream must be well-formed XMPP (RFC 6120 section
 * 11) from its first byte: a header before anything, a stream error included. */
__attribute__((unused)) static void hb_s2s_check(void)
{
	struct xstream *x = NULL;
	struct xstream_handlers h = {NULL, hb_s2s_el, NULL, NULL};
	if (!hb_s2s_buf.len)
		return;
	if (xstream_new(&x, hb_xctx, 1u << 20, &h) != 0)
		abort();
	if (xstream_feed(x, hb_s2s_buf.p, hb_s2s_buf.len, NULL) != 0) {
		fprintf(stderr,
		        "fuzz: the bridge wrote an S2S stream a peer cannot read (%s: "
		        "%s):\n%.*s\n",
		        xstream_error_cond(x), xstream_error_text(x), (int)hb_s2s_buf.len,
		        hb_s2s_buf.p);
		abort();
	}
	xstream_free(x);
	hb_s2s_buf.len = 0;
}

static struct bridge *hb_start(void)
{
	struct bridge *b = NULL;
	/* Each bridge binds its UDP listener anew, and between two inputs another
	 * process on the machine may take that port (it is an ephemeral one): then
	 * the bridge does not start, and the next try has new ports. */
	for (int tries = 0; bridge_new(&b, hb_loop, hb_cf) != 0; tries++) {
		if (tries == 10)
			abort();
		hb_conf();
	}
	hb_out = 0;
	sipleg_set_tap(b->sip, hb_sip_out, NULL);
	xlink_set_tap(b->xmpp, hb_xmpp_out, NULL);
	return b;
}

/* One piece: "<..." is a stanza from the XMPP server, anything else a SIP
 * datagram from the peer. */
__attribute__((unused)) static void hb_piece(struct bridge *b, const char *p, size_t n)
{
	if (n && p[0] == '<')
		xlink_feed(b->xmpp, HB_DOMAIN, p, n);
	else if (n)
		sipleg_feed(b->sip, false, HB_PEER_IP, p, n, 0);
}

/* Pieces separated by NUL bytes, in order; then the loop's due timers run (what
 * the legs defer to "never from inside this call") and the bridge stops. */
__attribute__((unused)) static void hb_pieces(struct bridge *b, const char *p, size_t n)
{
	while (n) {
		const char *z = memchr(p, '\0', n);
		size_t len = z ? (size_t)(z - p) : n;
		hb_piece(b, p, len);
		p += len;
		n -= len;
		if (z) {
			p++;
			n--;
		}
	}
}

static void hb_finish(struct bridge *b)
{
	loop_run_once(hb_loop, 0);
	bridge_free(b);
	loop_run_once(hb_loop, 0);
}

#endif

/*
 * bridge_ctl - what the bridge tells its operators: the status, peers,
 * subscriptions and sessions that presbridgectl prints (for people, or JSON for
 * tools), and the gauges of /metrics. Read only: nothing here changes state.
 */
#include "bridge_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "presbridge/sbuf.h"
#include "presbridge/stats.h"
#include "presbridge/version.h"

static void iso(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t <= 0 || !gmtime_r(&tt, &tm)) {
		snprintf(out, len, "-");
		return;
	}
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void span(int64_t s, char *out, size_t len)
{
	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(out, len, "%lldd %lldh", (long long)(s / 86400),
		         (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(out, len, "%lldh %lldm", (long long)(s / 3600),
		         (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(out, len, "%lldm %llds", (long long)(s / 60),
		         (long long)(s % 60));
	else
		snprintf(out, len, "%llds", (long long)s);
}

/* Subscriptions of each direction. */
struct sub_counts {
	size_t n[SUB_DIR_COUNT];
};

static void count_sub(struct state_sub *sub, void *arg)
{
	struct sub_counts *c = arg;
	if ((unsigned)sub->st.dir < SUB_DIR_COUNT)
		c->n[sub->st.dir]++;
}

static void link_json(struct sbuf *sb, const struct stats_link_info *li)
{
	sbuf_puts(sb, "{\"kind\":");
	sbuf_put_json(sb, stats_link_kind_name(li->kind));
	sbuf_puts(sb, ",\"name\":");
	sbuf_put_json(sb, li->name);
	sbuf_printf(sb, ",\"up\":%s,\"since\":%lld,\"failures\":%llu,\"last_failure\":",
	            li->up ? "true" : "false", (long long)li->since,
	            (unsigned long long)li->failures);
	if (li->cause[0]) {
		sbuf_printf(sb, "{\"at\":%lld,\"cause\":", (long long)li->cause_at);
		sbuf_put_json(sb, li->cause);
		sbuf_puts(sb, "}");
	} else {
		sbuf_puts(sb, "null");
	}
}

static void link_text(struct sbuf *sb, const struct stats_link_info *li,
                      const char *extra)
{
	char since[32], ago[32];
	iso(li->since, since, sizeof(since));
	span((int64_t)time(NULL) - li->since, ago, sizeof(ago));
	sbuf_printf(sb, "  %-10s %-32s %-4s since %s (%s)%s\n",
	            stats_link_kind_name(li->kind), li->name, li->up ? "up" : "down",
	            since, ago, extra ? extra : "");
	if (li->cause[0]) {
		char at[32];
		iso(li->cause_at, at, sizeof(at));
		sbuf_printf(sb, "             last failure %s (%llu in all): %s\n", at,
		            (unsigned long long)li->failures, li->cause);
	}
}

static const struct conf_peer *peer_conf(const struct bridge *b, const char *name)
{
	for (size_t i = 0; i < b->cf->npeers; i++)
		if (strcasecmp(b->cf->peers[i].name, name) == 0)
			return &b->cf->peers[i];
	return NULL;
}

void bridge_ctl_peers(struct bridge *b, struct sbuf *sb, bool json)
{
	struct stats_link_info li;
	if (json)
		sbuf_puts(sb, "[");
	for (size_t i = 0; stats_link_at(i, &li) == 0; i++) {
		const struct conf_peer *p =
		    li.kind == STATS_LINK_SIP_PEER ? peer_conf(b, li.name) : NULL;
		size_t conns = p ? sipleg_peer_conn_count(b->sip, p->name) : 0;
		if (json) {
			if (i)
				sbuf_puts(sb, ",");
			link_json(sb, &li);
			if (p) {
				sbuf_puts(sb, ",\"host\":");
				sbuf_put_json(sb, p->host);
				sbuf_puts(sb, ",\"transport\":");
				sbuf_put_json(sb, conf_tp_name(p->transport));
				sbuf_printf(sb, ",\"connections\":%zu", conns);
			}
			sbuf_puts(sb, "}");
			continue;
		}
		char extra[200] = "";
		if (p)
			snprintf(extra, sizeof(extra), "; %s over %s, %zu connection%s",
			         p->host, conf_tp_name(p->transport), conns,
			         conns == 1 ? "" : "s");
		link_text(sb, &li, extra);
	}
	sbuf_puts(sb, json ? "]" : "");
}

void bridge_ctl_status(struct bridge *b, struct sbuf *sb, bool json)
{
	struct sub_counts sc = {{0}};
	state_sub_each(b->state, count_sub, &sc);
	int64_t started = stats_started(), now = (int64_t)time(NULL);
	size_t ims = state_im_count(b->state), queued = xlink_queued(b->xmpp);
	size_t conns = sipleg_conn_count(b->sip), dlgs = sipleg_dialog_count(b->sip);
	const char *tp = b->cf->xmpp_transport == CONF_XMPP_S2S ? "s2s" : "component";
	struct stats_link_info li;
	size_t links = 0, links_up = 0, peers = 0, peers_up = 0;
	for (size_t i = 0; stats_link_at(i, &li) == 0; i++) {
		bool sip = li.kind == STATS_LINK_SIP_PEER;
		peers += sip;
		peers_up += sip && li.up;
		links += !sip;
		links_up += !sip && li.up;
	}
	if (json) {
		sbuf_puts(sb, "{\"version\":");
		sbuf_put_json(sb, PB_VERSION);
		sbuf_printf(
		    sb, ",\"pid\":%ld,\"started\":%lld,\"uptime_s\":%lld,\"state\":",
		    (long)getpid(), (long long)started, (long long)(now - started));
		sbuf_put_json(sb, b->stopping ? "stopping" : "running");
		sbuf_puts(sb, ",\"config\":");
		sbuf_put_json(sb, b->cf->file);
		sbuf_puts(sb, ",\"xmpp\":{\"transport\":");
		sbuf_put_json(sb, tp);
		sbuf_printf(sb, ",\"up\":%zu,\"total\":%zu},\"sip\":{\"listeners\":[",
		            links_up, links);
		for (size_t i = 0; i < b->cf->nlisten; i++) {
			char l[300];
			const struct conf_listen *cl = &b->cf->listen[i];
			snprintf(l, sizeof(l),
			         strchr(cl->addr.host, ':') ? "%s:[%s]:%u" : "%s:%s:%u",
			         conf_tp_name(cl->tp), cl->addr.host, cl->addr.port);
			if (i)
				sbuf_puts(sb, ",");
			sbuf_put_json(sb, l);
		}
		sbuf_printf(sb, "],\"peers_up\":%zu,\"peers\":%zu},\"links\":", peers_up,
		            peers);
		bridge_ctl_peers(b, sb, true);
		sbuf_printf(
		    sb,
		    ",\"counts\":{\"subscriptions\":%zu,\"sip_watchers\":%zu,"
		    "\"xmpp_watchers\":%zu,\"im_sessions\":%zu,\"queued_stanzas\":%zu,"
		    "\"sip_connections\":%zu,\"sip_dialogs\":%zu}}",
		    sc.n[SUB_DIR_SIP_WATCHER] + sc.n[SUB_DIR_XMPP_WATCHER],
		    sc.n[SUB_DIR_SIP_WATCHER], sc.n[SUB_DIR_XMPP_WATCHER], ims, queued,
		    conns, dlgs);
		return;
	}
	char at[32], up[32];
	iso(started, at, sizeof(at));
	span(now - started, up, sizeof(up));
	sbuf_printf(sb, "presbridge %s, %s, pid %ld, up %s (since %s)\n", PB_VERSION,
	            b->stopping ? "stopping" : "running", (long)getpid(), up, at);
	sbuf_printf(sb, "configuration: %s\n", b->cf->file);
	sbuf_printf(sb, "XMPP (%s): %zu of %zu up; SIP peers: %zu of %zu up\n", tp,
	            links_up, links, peers_up, peers);
	sbuf_puts(sb, "SIP listeners:");
	for (size_t i = 0; i < b->cf->nlisten; i++) {
		const struct conf_listen *cl = &b->cf->listen[i];
		sbuf_printf(sb, strchr(cl->addr.host, ':') ? " %s:[%s]:%u" : " %s:%s:%u",
		            conf_tp_name(cl->tp), cl->addr.host, cl->addr.port);
	}
	sbuf_puts(sb, "\nlinks and peers:\n");
	bridge_ctl_peers(b, sb, false);
	sbuf_printf(sb,
	            "subscriptions: %zu (SIP users watching XMPP users: %zu, XMPP users "
	            "watching SIP users: %zu)\nIM sessions: %zu\nstanzas queued for the "
	            "XMPP side: "
	            "%zu\nSIP connections: %zu, dialogs: %zu\n",
	            sc.n[SUB_DIR_SIP_WATCHER] + sc.n[SUB_DIR_XMPP_WATCHER],
	            sc.n[SUB_DIR_SIP_WATCHER], sc.n[SUB_DIR_XMPP_WATCHER], ims, queued,
	            conns, dlgs);
}

/* Does a subscription concern filter: a user (watcher or presentity, with or
 * without sip:) or a domain (the part after @ of either)? NULL matches all. */
static bool sub_matches(const struct state_sub *sub, const char *f)
{
	if (!f || !*f)
		return true;
	if (strncasecmp(f, "sip:", 4) == 0 || strncasecmp(f, "xmpp:", 5) == 0)
		f = strchr(f, ':') + 1;
	const char *v[2] = {sub->watcher, sub->presentity};
	for (int i = 0; i < 2; i++) {
		const char *a = v[i];
		if (!a)
			continue;
		if (strncasecmp(a, "sip:", 4) == 0)
			a += 4;
		size_t n = strcspn(a, ";/"); /* no URI parameters, no resource */
		if (strlen(f) == n && strncasecmp(a, f, n) == 0)
			return true;
		const char *at = memchr(a, '@', n);
		if (!strchr(f, '@') && at && strlen(f) == (size_t)(a + n - at - 1) &&
		    strncasecmp(at + 1, f, strlen(f)) == 0)
			return true;
	}
	return false;
}

struct sub_list {
	struct sbuf *sb;
	const char *filter;
	bool json;
	size_t n;
};

static void list_sub(struct state_sub *sub, void *arg)
{
	struct sub_list *l = arg;
	if (!sub_matches(sub, l->filter))
		return;
	char exp[32];
	iso(sub->expires_at / 1000, exp, sizeof(exp));
	if (l->json) {
		sbuf_puts(l->sb, l->n ? ",{\"direction\":" : "{\"direction\":");
		sbuf_put_json(l->sb, sub_dir_name(sub->st.dir));
		sbuf_puts(l->sb, ",\"watcher\":");
		sbuf_put_json(l->sb, sub->watcher);
		sbuf_puts(l->sb, ",\"presentity\":");
		sbuf_put_json(l->sb, sub->presentity);
		sbuf_puts(l->sb, ",\"phase\":");
		sbuf_put_json(l->sb, sub_phase_name(sub->st.phase));
		sbuf_puts(l->sb, ",\"peer\":");
		sbuf_put_json(l->sb, sub->peer);
		sbuf_puts(l->sb, ",\"call_id\":");
		sbuf_put_json(l->sb, sub->call_id);
		sbuf_printf(l->sb, ",\"expires\":%lld}",
		            (long long)(sub->expires_at / 1000));
	} else {
		sbuf_printf(l->sb, "%-13s %-32s -> %-32s %-14s %s\n",
		            sub_dir_name(sub->st.dir), sub->watcher, sub->presentity,
		            sub_phase_name(sub->st.phase), sub->expires_at ? exp : "-");
	}
	l->n++;
}

size_t bridge_ctl_subscriptions(struct bridge *b, const char *filter, struct sbuf *sb,
                                bool json)
{
	struct sub_list l = {sb, filter, json, 0};
	if (json)
		sbuf_puts(sb, "[");
	else
		sbuf_printf(sb, "%-13s %-32s    %-32s %-14s %s\n", "direction", "watcher",
		            "presentity", "phase", "expires");
	state_sub_each(b->state, list_sub, &l);
	if (json)
		sbuf_puts(sb, "]");
	else
		sbuf_printf(sb, "%zu subscription%s%s%s\n", l.n, l.n == 1 ? "" : "s",
		            filter ? " of " : "", filter ? filter : "");
	return l.n;
}

static void list_im(struct state_im *im, void *arg)
{
	struct sub_list *l = arg;
	char last[32];
	iso(im->last_activity / 1000, last, sizeof(last));
	if (l->json) {
		sbuf_puts(l->sb, l->n ? ",{\"sip\":" : "{\"sip\":");
		sbuf_put_json(l->sb, im->sip_uri);
		sbuf_puts(l->sb, ",\"jid\":");
		sbuf_put_json(l->sb, im->jid);
		sbuf_puts(l->sb, ",\"thread\":");
		sbuf_put_json(l->sb, im->thread);
		sbuf_puts(l->sb, ",\"started_by\":");
		sbuf_put_json(l->sb, im->sip_initiated ? "sip" : "xmpp");
		sbuf_puts(l->sb, ",\"call_id\":");
		sbuf_put_json(l->sb, im->call_id);
		sbuf_printf(l->sb, ",\"last_activity\":%lld}",
		            (long long)(im->last_activity / 1000));
	} else {
		sbuf_printf(l->sb, "%-36s <-> %-36s %-5s %s\n", im->sip_uri, im->jid,
		            im->sip_initiated ? "sip" : "xmpp", last);
	}
	l->n++;
}

size_t bridge_ctl_sessions(struct bridge *b, struct sbuf *sb, bool json)
{
	struct sub_list l = {sb, NULL, json, 0};
	if (json)
		sbuf_puts(sb, "[");
	else
		sbuf_printf(sb, "%-36s     %-36s %-5s %s\n", "SIP user", "XMPP user",
		            "from", "last activity");
	state_im_each(b->state, list_im, &l);
	if (json)
		sbuf_puts(sb, "]");
	else
		sbuf_printf(sb, "%zu IM session%s\n", l.n, l.n == 1 ? "" : "s");
	return l.n;
}

void bridge_metrics(struct bridge *b, struct sbuf *sb)
{
	struct sub_counts sc = {{0}};
	state_sub_each(b->state, count_sub, &sc);
	stats_prometheus(sb);
	sbuf_puts(sb,
	          "# HELP presbridge_subscriptions Bridged subscriptions, by the side of "
	          "the watcher\n# TYPE presbridge_subscriptions gauge\n");
	for (int d = 0; d < SUB_DIR_COUNT; d++)
		sbuf_printf(sb, "presbridge_subscriptions{watcher=\"%s\"} %zu\n",
		            d == SUB_DIR_SIP_WATCHER ? "sip" : "xmpp", sc.n[d]);
	sbuf_printf(
	    sb,
	    "# HELP presbridge_im_sessions IM sessions (Lync session mode)\n"
	    "# TYPE presbridge_im_sessions gauge\npresbridge_im_sessions %zu\n"
	    "# HELP presbridge_xmpp_queued_stanzas Stanzas waiting for the XMPP "
	    "side to come up\n# TYPE presbridge_xmpp_queued_stanzas gauge\n"
	    "presbridge_xmpp_queued_stanzas %zu\n"
	    "# HELP presbridge_sip_connections Open SIP connections\n"
	    "# TYPE presbridge_sip_connections gauge\npresbridge_sip_connections %zu\n"
	    "# HELP presbridge_sip_dialogs SIP dialogs (subscriptions and IM "
	    "sessions)\n# TYPE presbridge_sip_dialogs gauge\npresbridge_sip_dialogs "
	    "%zu\n",
	    state_im_count(b->state), xlink_queued(b->xmpp), sipleg_conn_count(b->sip),
	    sipleg_dialog_count(b->sip));
}

#include "presbridge/pool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "presbridge/conf.h"
#include "presbridge/log.h"
#include "presbridge/loop.h"
#include "presbridge/sbuf.h"

#define MOD "pool"

/* A connection attempt gets this long (libpq's connect_timeout is whole
 * seconds and blocks only PQconnectdb, not the polled PQconnectStart). */
#define POOL_CONNECT_MS     2000u
#define POOL_BACKOFF_MAX_MS 1000u

enum query { Q_NONE, Q_STANDBY, Q_ACTIVE };

struct pool {
	struct loop *loop;
	struct pool_handlers h;
	void *arg;
	char *conninfo;
	char node[64];
	char *address;
	struct pool_timing t;

	PGconn *pc;
	int fd;           /* watched on the loop; -1 when none */
	bool connected;   /* CONNECTION_OK, queries may go */
	uint64_t backoff; /* ms before the next connection attempt */
	enum query q;     /* the query in flight */
	uint64_t q_sent;  /* when it left (monotonic ms) */
	unsigned q_res;   /* results of it read so far */

	bool active;
	int64_t epoch;
	uint64_t confirmed_sent; /* the last renewal confirmed: when it was sent */
	uint32_t confirmed_ms;   /* ...and the lease it wrote */
	char holder[64];
	unsigned peers;
	bool down_logged;

	struct pool_takeover won; /* filled by the standby query's results */
	char won_prev[64];
	bool won_row;

	struct loop_timer tick_t, fence_t, retry_t, connect_t;
};

void pool_timing(uint32_t lease_s, struct pool_timing *t)
{
	t->lease_ms = lease_s * 1000u;
	t->renew_ms = t->lease_ms / 4;
	t->fence_ms = t->lease_ms - t->lease_ms / 4;
	t->poll_ms = POOL_POLL_MS < t->renew_ms ? POOL_POLL_MS : t->renew_ms;
	t->query_ms = t->lease_ms / 2;
	t->take_ms = 4 * t->lease_ms;
}

static void connect_start(struct pool *p);
static void tick(void *arg);

static void on_retry(void *arg)
{
	connect_start(arg);
}

static void unwatch(struct pool *p)
{
	if (p->fd >= 0)
		loop_fd_del(p->loop, p->fd);
	p->fd = -1;
}

static void drop_conn(struct pool *p, const char *why)
{
	unwatch(p);
	if (p->pc)
		PQfinish(p->pc);
	p->pc = NULL;
	p->connected = false;
	p->q = Q_NONE;
	loop_timer_cancel(p->loop, &p->connect_t);
	if (why && !p->down_logged) {
		log_warn(MOD, "node %s: lost the database (%s); reconnecting", p->node,
		         why);
		p->down_logged = true;
	}
	if (!loop_timer_running(&p->retry_t)) {
		p->backoff = p->backoff ? p->backoff * 2 : 100;
		if (p->backoff > POOL_BACKOFF_MAX_MS)
			p->backoff = POOL_BACKOFF_MAX_MS;
		loop_timer_start(p->loop, &p->retry_t, p->backoff, on_retry, p);
	}
}

static void do_fence(struct pool *p, const char *why)
{
	if (!p->active)
		return;
	p->active = false;
	p->epoch = 0;
	loop_timer_cancel(p->loop, &p->fence_t);
	log_error(MOD,
	          "fenced: node %s stops serving: %s. Its subscriptions and IM sessions "
	          "are another node's to take over; this node stands by",
	          p->node, why);
	p->h.fenced(why, p->arg);
}

static void on_fence_timer(void *arg)
{
	struct pool *p = arg;
	char why[160];
	snprintf(why, sizeof(why),
	         "the lease was not renewed for %u ms (the database is unreachable or "
	         "too slow)",
	         p->t.fence_ms);
	do_fence(p, why);
	/* A connection that let the renewal hang is not trusted again. */
	if (p->q != Q_NONE)
		drop_conn(p, "a query hung");
}

void pool_fence(struct pool *p, const char *why)
{
	do_fence(p, why);
}

static void arm_fence(struct pool *p)
{
	uint64_t now = loop_now(p->loop);
	/* Fenced a quarter lease before the lease written can expire. */
	uint64_t due = p->confirmed_sent + p->confirmed_ms - p->t.lease_ms / 4;
	loop_timer_start(p->loop, &p->fence_t, due > now ? due - now : 0, on_fence_timer,
	                 p);
}

static char *lit(struct pool *p, const char *s)
{
	return PQescapeLiteral(p->pc, s, strlen(s));
}

/* One round trip per tick, as one simple-protocol string (one transaction). */
static void send_query(struct pool *p)
{
	char *node = lit(p, p->node), *addr = lit(p, p->address);
	char sql[1024];
	if (!node || !addr) {
		PQfreemem(node);
		PQfreemem(addr);
		drop_conn(p, "out of memory");
		return;
	}
	if (p->active)
		snprintf(sql, sizeof(sql),
		         "SELECT pb_renew(%s, %" PRId64 ", %u);"
		         "SELECT pb_seen(%s, %s, 'active', %" PRId64 ", %u);"
		         "SELECT count(*) FROM pb_node WHERE name <> %s AND seen > "
		         "clock_timestamp() - interval '%u milliseconds'",
		         node, p->epoch, p->t.lease_ms, node, addr, p->epoch,
		         p->t.lease_ms, node, p->t.lease_ms);
	else
		snprintf(
		    sql, sizeof(sql),
		    "SELECT pb_seen(%s, %s, 'standby', 0, %u);"
		    "SELECT epoch, coalesce(previous, ''), subs, ims FROM pb_acquire(%s, "
		    "%u);"
		    "SELECT coalesce(holder, ''), epoch, until > clock_timestamp(),"
		    " (SELECT count(*) FROM pb_node WHERE name <> %s AND seen > "
		    "clock_timestamp() - interval '%u milliseconds') FROM pb_lease WHERE "
		    "id = 1",
		    node, addr, p->t.lease_ms, node, p->t.take_ms, node, p->t.lease_ms);
	PQfreemem(node);
	PQfreemem(addr);
	if (!PQsendQuery(p->pc, sql)) {
		drop_conn(p, PQerrorMessage(p->pc));
		return;
	}
	p->q = p->active ? Q_ACTIVE : Q_STANDBY;
	p->q_sent = loop_now(p->loop);
	p->q_res = 0;
	p->won_row = false;
	int f = PQflush(p->pc);
	if (f < 0)
		drop_conn(p, PQerrorMessage(p->pc));
	else
		loop_fd_mod(p->loop, p->fd, LOOP_READ | (f ? LOOP_WRITE : 0));
}

static void one_result(struct pool *p, PGresult *r)
{
	ExecStatusType s = PQresultStatus(r);
	unsigned i = p->q_res++;
	if (s != PGRES_TUPLES_OK) {
		char why[300];
		snprintf(why, sizeof(why), "%s", PQresultErrorMessage(r));
		why[strcspn(why, "\n")] = '\0';
		log_warn(MOD, "node %s: lease query failed: %s", p->node, why);
		return;
	}
	if (p->q == Q_ACTIVE) {
		if (i == 0) {
			bool ok =
			    PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
			if (ok && p->active) {
				p->confirmed_sent = p->q_sent;
				p->confirmed_ms = p->t.lease_ms;
				arm_fence(p);
			} else if (p->active) {
				do_fence(p, "another node holds the lease now");
			}
		} else if (i == 2 && PQntuples(r) == 1) {
			p->peers = (unsigned)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
		}
		return;
	}
	if (i == 1 && PQntuples(r) == 1) {
		p->won_row = true;
		p->won.epoch = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		snprintf(p->won_prev, sizeof(p->won_prev), "%s", PQgetvalue(r, 0, 1));
		p->won.previous = p->won_prev;
		p->won.subs = strtoull(PQgetvalue(r, 0, 2), NULL, 10);
		p->won.ims = strtoull(PQgetvalue(r, 0, 3), NULL, 10);
	} else if (i == 2 && PQntuples(r) == 1) {
		char prev[64];
		snprintf(prev, sizeof(prev), "%s", p->holder);
		bool valid = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
		snprintf(p->holder, sizeof(p->holder), "%s",
		         valid ? PQgetvalue(r, 0, 0) : "");
		p->peers = (unsigned)strtoul(PQgetvalue(r, 0, 3), NULL, 10);
		if (!p->won_row && strcmp(prev, p->holder) != 0) {
			if (p->holder[0])
				log_info(MOD, "node %s is standby; the active node is %s",
				         p->node, p->holder);
			else
				log_info(MOD,
				         "node %s is standby; no node holds the lease",
				         p->node);
		}
	}
}

static void query_done(struct pool *p)
{
	enum query q = p->q;
	p->q = Q_NONE;
	if (q == Q_STANDBY && p->won_row && !p->active) {
		p->active = true;
		p->epoch = p->won.epoch;
		p->confirmed_sent = p->q_sent;
		p->confirmed_ms = p->t.take_ms;
		snprintf(p->holder, sizeof(p->holder), "%s", p->node);
		arm_fence(p);
		p->h.active(&p->won, p->arg);
		/* The restore is done (it blocks the loop): the long lease of the
		 * acquisition becomes a normal one at once. */
		if (p->active)
			loop_timer_start(p->loop, &p->tick_t, 0, tick, p);
	}
}

static void on_io(int fd, unsigned ev, void *arg)
{
	struct pool *p = arg;
	(void)fd;
	if (!p->connected) {
		PostgresPollingStatusType s = PQconnectPoll(p->pc);
		if (s == PGRES_POLLING_FAILED) {
			char why[300];
			snprintf(why, sizeof(why), "%s", PQerrorMessage(p->pc));
			why[strcspn(why, "\n")] = '\0';
			drop_conn(p, why);
			return;
		}
		if (PQsocket(p->pc) != p->fd) { /* libpq may try the next address */
			unwatch(p);
			p->fd = PQsocket(p->pc);
			loop_fd_add(p->loop, p->fd, LOOP_READ, on_io, p);
		}
		if (s == PGRES_POLLING_OK) {
			p->connected = true;
			p->backoff = 0;
			loop_timer_cancel(p->loop, &p->connect_t);
			PQsetnonblocking(p->pc, 1);
			loop_fd_mod(p->loop, p->fd, LOOP_READ);
			if (p->down_logged)
				log_info(MOD, "node %s: connected to the database again",
				         p->node);
			p->down_logged = false;
			tick(p);
		} else {
			loop_fd_mod(p->loop, p->fd,
			            s == PGRES_POLLING_WRITING ? LOOP_WRITE : LOOP_READ);
		}
		return;
	}
	if (ev & LOOP_WRITE) {
		int f = PQflush(p->pc);
		if (f < 0) {
			drop_conn(p, PQerrorMessage(p->pc));
			return;
		}
		loop_fd_mod(p->loop, p->fd, LOOP_READ | (f ? LOOP_WRITE : 0));
	}
	if (!(ev & (LOOP_READ | LOOP_ERROR)))
		return;
	if (!PQconsumeInput(p->pc)) {
		char why[300];
		snprintf(why, sizeof(why), "%s", PQerrorMessage(p->pc));
		why[strcspn(why, "\n")] = '\0';
		drop_conn(p, why);
		return;
	}
	while (p->q != Q_NONE && !PQisBusy(p->pc)) {
		PGresult *r = PQgetResult(p->pc);
		if (!r) {
			query_done(p);
			break;
		}
		one_result(p, r);
		PQclear(r);
	}
	if (PQstatus(p->pc) == CONNECTION_BAD)
		drop_conn(p, "the server closed the connection");
}

static void on_connect_timeout(void *arg)
{
	struct pool *p = arg;
	drop_conn(p, "no answer to the connection attempt");
}

static void connect_start(struct pool *p)
{
	p->pc = PQconnectStart(p->conninfo);
	if (!p->pc || PQstatus(p->pc) == CONNECTION_BAD) {
		drop_conn(p, p->pc ? PQerrorMessage(p->pc) : "out of memory");
		return;
	}
	p->fd = PQsocket(p->pc);
	if (p->fd < 0 || loop_fd_add(p->loop, p->fd, LOOP_WRITE, on_io, p) != 0) {
		p->fd = -1;
		drop_conn(p, "no socket");
		return;
	}
	loop_timer_start(p->loop, &p->connect_t, POOL_CONNECT_MS, on_connect_timeout, p);
}

static void tick(void *arg)
{
	struct pool *p = arg;
	loop_timer_start(p->loop, &p->tick_t, p->active ? p->t.renew_ms : p->t.poll_ms,
	                 tick, p);
	if (!p->connected)
		return;
	if (p->q != Q_NONE) {
		if (loop_now(p->loop) - p->q_sent >= p->t.query_ms)
			drop_conn(p, "a lease query went unanswered");
		return;
	}
	send_query(p);
}

int pool_new(struct pool **pp, struct loop *l, const struct conf *cf, const char *address,
             const struct pool_handlers *h, void *arg)
{
	struct pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->loop = l;
	p->h = *h;
	p->arg = arg;
	p->fd = -1;
	p->conninfo = strdup(cf->store_conninfo ? cf->store_conninfo : "");
	p->address = strdup(address ? address : "");
	if (!p->conninfo || !p->address) {
		pool_free(p);
		return -ENOMEM;
	}
	snprintf(p->node, sizeof(p->node), "%s", cf->pool_node ? cf->pool_node : "");
	pool_timing(cf->pool_lease ? cf->pool_lease : CONF_POOL_LEASE_DEFAULT, &p->t);
	connect_start(p);
	loop_timer_start(l, &p->tick_t, p->t.poll_ms, tick, p);
	*pp = p;
	return 0;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	loop_timer_cancel(p->loop, &p->tick_t);
	loop_timer_cancel(p->loop, &p->fence_t);
	loop_timer_cancel(p->loop, &p->retry_t);
	loop_timer_cancel(p->loop, &p->connect_t);
	unwatch(p);
	if (p->pc)
		PQfinish(p->pc);
	free(p->conninfo);
	free(p->address);
	free(p);
}

bool pool_is_active(const struct pool *p)
{
	return p && p->active;
}

int64_t pool_epoch(const struct pool *p)
{
	return p->epoch;
}

const char *pool_node(const struct pool *p)
{
	return p->node;
}

const char *pool_holder(const struct pool *p)
{
	return p->holder;
}

unsigned pool_peers_alive(const struct pool *p)
{
	return p->peers;
}

/* A short blocking connection of its own: the daemon is stopping. */
static PGconn *stop_conn(const struct pool *p)
{
	size_t n = strlen(p->conninfo) + 32;
	char *ci = malloc(n);
	if (!ci)
		return NULL;
	/* A URI cannot take " key=value" appended; libpq's default timeout applies. */
	if (strstr(p->conninfo, "://"))
		snprintf(ci, n, "%s", p->conninfo);
	else
		snprintf(ci, n, "%s connect_timeout=2", p->conninfo);
	PGconn *c = PQconnectdb(ci);
	free(ci);
	return c;
}

static int stop_exec(PGconn *c, const char *sql, int n, const char *const *v)
{
	if (!c || PQstatus(c) != CONNECTION_OK)
		return -ECONNREFUSED;
	PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
	int err =
	    PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK
	        ? 0
	        : -EIO;
	PQclear(r);
	return err;
}

int pool_release(struct pool *p)
{
	int64_t epoch = p->epoch;
	bool was_active = p->active;
	p->active = false;
	p->epoch = 0;
	loop_timer_cancel(p->loop, &p->fence_t);
	PGconn *c = stop_conn(p);
	int err = 0;
	if (was_active) {
		char e[32];
		snprintf(e, sizeof(e), "%" PRId64, epoch);
		const char *v[2] = {p->node, e};
		err = stop_exec(c, "SELECT pb_release($1, $2::bigint)", 2, v);
		if (err)
			log_warn(MOD,
			         "node %s: could not release the lease (%s); a standby "
			         "takes over when it expires",
			         p->node, c ? PQerrorMessage(c) : "out of memory");
		else
			log_info(MOD,
			         "lease released: node %s hands over (epoch %" PRId64 ")",
			         p->node, epoch);
	}
	/* Leaving: the others no longer count this node among the living (an
	 * active node stopping hands over only when a standby is alive). */
	const char *v[1] = {p->node};
	stop_exec(c,
	          "UPDATE pb_node SET role = 'stopped', seen = '-infinity' WHERE name = "
	          "$1",
	          1, v);
	PQfinish(c);
	return err;
}

void pool_describe(const struct pool *p, struct sbuf *sb, bool json)
{
	if (json) {
		sbuf_puts(sb, "{\"node\":");
		sbuf_put_json(sb, p->node);
		sbuf_printf(sb, ",\"role\":\"%s\",\"epoch\":%" PRId64 ",\"active_node\":",
		            p->active ? "active" : "standby", p->epoch);
		sbuf_put_json(sb, p->holder);
		sbuf_printf(sb, ",\"database\":%s,\"peers_alive\":%u,\"lease_ms\":%u}",
		            p->connected ? "true" : "false", p->peers, p->t.lease_ms);
		return;
	}
	if (p->active)
		sbuf_printf(sb,
		            "pool: node %s active (epoch %" PRId64
		            "), %u other node%s alive, "
		            "lease %u ms, database %s",
		            p->node, p->epoch, p->peers, p->peers == 1 ? "" : "s",
		            p->t.lease_ms, p->connected ? "connected" : "unreachable");
	else
		sbuf_printf(sb, "pool: node %s standby; active node %s; database %s",
		            p->node, p->holder[0] ? p->holder : "none",
		            p->connected ? "connected" : "unreachable");
}

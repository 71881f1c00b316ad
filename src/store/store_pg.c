/*
 * store_pg - the store in PostgreSQL, shared by a pool of bridges (issue 18).
 *
 * Writes never wait for the database: each is copied into a queue (a later
 * write of the same key replaces a queued one) and gets the next sequence
 * number. store_flush() sends the whole queue as one transaction in libpq's
 * pipeline mode, on the loop:
 *
 *   [ROLLBACK] BEGIN; SELECT pb_fence(node, epoch); write...; COMMIT; Sync
 *
 * One batch is in flight at a time. When its Sync comes back clean, every
 * write up to the batch's last sequence number is durable (STORE_EV_DURABLE).
 * SQLSTATE PB001 from the fence means another node holds the pool lease: the
 * batch and the queue are dropped (STORE_EV_FENCED). A write the database
 * refuses for its data (SQLSTATE class 22 or 23) is logged with its key and
 * dropped, and the rest of the batch goes again; any other failure sends the
 * batch again after a pause. A lost connection is made again without
 * blocking (100 ms doubling to 1 s between attempts) and the unconfirmed
 * batch is sent again: every write is an idempotent upsert or delete.
 *
 * Opening (connect, schema) and the _each readers block: they are start-up
 * and takeover work.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "presbridge/hmap.h"
#include "presbridge/log.h"
#include "presbridge/loop.h"
#include "presbridge/stats.h"
#include "store_int.h"

#define PG_QUEUE_MAX          262144 /* queued writes; a put beyond gets -EAGAIN */
#define PG_BACKOFF_MIN_MS     100
#define PG_BACKOFF_MAX_MS     1000
#define PG_CONNECT_TIMEOUT_MS 5000  /* one non-blocking connection attempt */
#define PG_CLOSE_WAIT_MS      2000  /* store_close() waits this long for the last batch */
#define PG_READ_WAIT_MS       10000 /* an _each waits this long for queued writes */
#define PG_MIGRATE_LOCK       7362426 /* pg_advisory_xact_lock key of migrations */

/*
 * Schema versions, applied in order, one transaction each, under an advisory
 * lock so that two nodes starting together do not both migrate. pb_meta's
 * 'schema' row records how far the database has come; a database from a newer
 * build is refused rather than guessed at.
 */
static const char *const migrations[] = {
    /* 1 */
    "CREATE TABLE pb_sub ("
    " dir int NOT NULL, watcher text NOT NULL, presentity text NOT NULL,"
    " phase text NOT NULL, retries int NOT NULL DEFAULT 0, peer text,"
    " call_id text, local_tag text, remote_tag text,"
    " local_cseq bigint NOT NULL DEFAULT 0, remote_cseq bigint NOT NULL DEFAULT 0,"
    " remote_target text, route_set text,"
    " expires_at bigint NOT NULL DEFAULT 0, refresh_at bigint NOT NULL DEFAULT 0,"
    " owner text NOT NULL DEFAULT '',"
    " PRIMARY KEY (dir, watcher, presentity));"
    "CREATE INDEX pb_sub_owner ON pb_sub (owner);"
    "CREATE TABLE pb_pres ("
    " entity text NOT NULL, resource text NOT NULL, open bool NOT NULL,"
    " activity text NOT NULL, note text NOT NULL DEFAULT '', priority int NOT NULL,"
    " updated bigint NOT NULL, device bool NOT NULL DEFAULT false,"
    " PRIMARY KEY (entity, resource));"
    "CREATE TABLE pb_im ("
    " call_id text PRIMARY KEY, local_tag text, remote_tag text,"
    " sip_uri text NOT NULL, jid text NOT NULL, thread text NOT NULL,"
    " sip_initiated bool NOT NULL, local_cseq bigint NOT NULL DEFAULT 0,"
    " remote_target text, route_set text, last_activity bigint NOT NULL,"
    " owner text NOT NULL DEFAULT '');"
    "CREATE INDEX pb_im_owner ON pb_im (owner);"
    /* The pool lease: one row. until is the database's clock. */
    "CREATE TABLE pb_lease ("
    " id int PRIMARY KEY CHECK (id = 1), holder text,"
    " epoch bigint NOT NULL DEFAULT 0,"
    " until timestamptz NOT NULL DEFAULT '-infinity', taken_at timestamptz);"
    "INSERT INTO pb_lease (id) VALUES (1);"
    "CREATE TABLE pb_node ("
    " name text PRIMARY KEY, address text, role text, epoch bigint,"
    " seen timestamptz, started timestamptz);"
    /* Every write transaction starts with this: the row lock keeps pb_acquire
     * (FOR UPDATE) waiting until the transaction ends, so no write of a node
     * lands after another node took the lease over. KEY SHARE rather than
     * SHARE: pb_renew and pb_release (updates of non-key columns) need not
     * wait for a slow batch. */
    "CREATE FUNCTION pb_fence(p_node text, p_epoch bigint) RETURNS void"
    " LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "  PERFORM 1 FROM pb_lease l WHERE l.id = 1 AND l.holder = p_node"
    "   AND l.epoch = p_epoch AND l.until > clock_timestamp() FOR KEY SHARE;\n"
    "  IF NOT FOUND THEN\n"
    "    RAISE EXCEPTION USING ERRCODE = 'PB001', MESSAGE = format("
    "'node %s does not hold the pool lease of epoch %s (it expired or another"
    " node took it over)', p_node, p_epoch);\n"
    "  END IF;\n"
    "END $$;"
    /* Take the lease if it is free or expired: exactly one of several callers
     * wins (the row lock), the epoch goes up, and every subscription and IM
     * session row becomes the caller's. No row: another node holds it. */
    "CREATE FUNCTION pb_acquire(p_node text, p_lease_ms int)"
    " RETURNS TABLE(epoch bigint, previous text, subs bigint, ims bigint)"
    " LANGUAGE plpgsql AS $$\n"
    "#variable_conflict use_column\n"
    "DECLARE l pb_lease%ROWTYPE; t timestamptz; ns bigint; ni bigint;\n"
    "BEGIN\n"
    "  SELECT * INTO l FROM pb_lease WHERE id = 1 FOR UPDATE;\n"
    "  t := clock_timestamp();\n"
    "  IF l.holder IS NOT NULL AND l.until > t THEN RETURN; END IF;\n"
    "  UPDATE pb_lease SET holder = p_node, epoch = l.epoch + 1,"
    "   until = t + p_lease_ms * interval '1 millisecond', taken_at = t WHERE id = 1;\n"
    "  UPDATE pb_sub SET owner = p_node WHERE owner <> p_node;\n"
    "  GET DIAGNOSTICS ns = ROW_COUNT;\n"
    "  UPDATE pb_im SET owner = p_node WHERE owner <> p_node;\n"
    "  GET DIAGNOSTICS ni = ROW_COUNT;\n"
    "  INSERT INTO pb_node AS n (name, role, epoch, seen, started)"
    "   VALUES (p_node, 'active', l.epoch + 1, t, t)"
    "   ON CONFLICT (name) DO UPDATE SET role = 'active', epoch = EXCLUDED.epoch,"
    "   seen = EXCLUDED.seen;\n"
    "  RETURN QUERY SELECT l.epoch + 1, l.holder, ns, ni;\n"
    "END $$;"
    "CREATE FUNCTION pb_renew(p_node text, p_epoch bigint, p_lease_ms int)"
    " RETURNS boolean LANGUAGE plpgsql AS $$\n"
    "DECLARE n int;\n"
    "BEGIN\n"
    "  UPDATE pb_lease l SET until = clock_timestamp() + p_lease_ms * interval"
    "   '1 millisecond' WHERE l.id = 1 AND l.holder = p_node AND l.epoch = p_epoch"
    "   AND l.until > clock_timestamp();\n"
    "  GET DIAGNOSTICS n = ROW_COUNT;\n"
    "  RETURN n = 1;\n"
    "END $$;"
    "CREATE FUNCTION pb_release(p_node text, p_epoch bigint) RETURNS void"
    " LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "  UPDATE pb_lease l SET until = '-infinity' WHERE l.id = 1"
    "   AND l.holder = p_node AND l.epoch = p_epoch;\n"
    "END $$;"
    /* A node's heartbeat for the probe. started is kept while the node keeps
     * reporting; one unseen for three leases has restarted. */
    "CREATE FUNCTION pb_seen(p_node text, p_address text, p_role text,"
    " p_epoch bigint, p_lease_ms int) RETURNS void LANGUAGE plpgsql AS $$\n"
    "DECLARE t timestamptz := clock_timestamp();\n"
    "BEGIN\n"
    "  INSERT INTO pb_node AS n (name, address, role, epoch, seen, started)"
    "   VALUES (p_node, p_address, p_role, p_epoch, t, t)"
    "   ON CONFLICT (name) DO UPDATE SET address = EXCLUDED.address,"
    "   role = EXCLUDED.role, epoch = EXCLUDED.epoch, seen = EXCLUDED.seen,"
    "   started = CASE WHEN n.seen IS NULL OR n.seen < t - 3 * p_lease_ms *"
    "   interval '1 millisecond' THEN t ELSE n.started END;\n"
    "END $$;",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- the writes --------------------------------------------------------- */

enum pgw_kind {
	W_SUB_PUT,
	W_SUB_DEL,
	W_PRES_PUT,
	W_PRES_DEL,
	W_IM_PUT,
	W_IM_DEL,
	W_KINDS
};

#define PGW_MAXP 16

static const struct pgw_def {
	const char *stmt; /* prepared statement name */
	const char *sql;
	int nparams; /* owner included */
	int nkey;    /* the first nkey parameters are the row's key */
	bool owned;  /* the last parameter is the owner, filled in at sending */
	char class;  /* first byte of the coalescing key: put and del share it */
	const char *what;
} wdefs[W_KINDS] = {
    [W_SUB_PUT] = {"pb_sub_put",
                   "INSERT INTO pb_sub (dir, watcher, presentity, phase, retries, peer,"
                   " call_id, local_tag, remote_tag, local_cseq, remote_cseq,"
                   " remote_target, route_set, expires_at, refresh_at, owner) VALUES"
                   " ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)"
                   " ON CONFLICT (dir, watcher, presentity) DO UPDATE SET"
                   " phase = EXCLUDED.phase, retries = EXCLUDED.retries,"
                   " peer = EXCLUDED.peer, call_id = EXCLUDED.call_id,"
                   " local_tag = EXCLUDED.local_tag, remote_tag = EXCLUDED.remote_tag,"
                   " local_cseq = EXCLUDED.local_cseq,"
                   " remote_cseq = EXCLUDED.remote_cseq,"
                   " remote_target = EXCLUDED.remote_target,"
                   " route_set = EXCLUDED.route_set, expires_at = EXCLUDED.expires_at,"
                   " refresh_at = EXCLUDED.refresh_at, owner = EXCLUDED.owner",
                   16, 3, true, 's', "subscription"},
    [W_SUB_DEL] = {"pb_sub_del",
                   "DELETE FROM pb_sub WHERE dir = $1 AND watcher = $2"
                   " AND presentity = $3",
                   3, 3, false, 's', "subscription"},
    [W_PRES_PUT] = {"pb_pres_put",
                    "INSERT INTO pb_pres (entity, resource, open, activity, note,"
                    " priority, updated, device) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
                    " ON CONFLICT (entity, resource) DO UPDATE SET"
                    " open = EXCLUDED.open, activity = EXCLUDED.activity,"
                    " note = EXCLUDED.note, priority = EXCLUDED.priority,"
                    " updated = EXCLUDED.updated, device = EXCLUDED.device",
                    8, 2, false, 'p', "presence"},
    [W_PRES_DEL] = {"pb_pres_del",
                    "DELETE FROM pb_pres WHERE entity = $1 AND resource = $2", 2, 2,
                    false, 'p', "presence"},
    [W_IM_PUT] = {"pb_im_put",
                  "INSERT INTO pb_im (call_id, local_tag, remote_tag, sip_uri, jid,"
                  " thread, sip_initiated, local_cseq, remote_target, route_set,"
                  " last_activity, owner) VALUES"
                  " ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)"
                  " ON CONFLICT (call_id) DO UPDATE SET"
                  " local_tag = EXCLUDED.local_tag, remote_tag = EXCLUDED.remote_tag,"
                  " sip_uri = EXCLUDED.sip_uri, jid = EXCLUDED.jid,"
                  " thread = EXCLUDED.thread, sip_initiated = EXCLUDED.sip_initiated,"
                  " local_cseq = EXCLUDED.local_cseq,"
                  " remote_target = EXCLUDED.remote_target,"
                  " route_set = EXCLUDED.route_set,"
                  " last_activity = EXCLUDED.last_activity, owner = EXCLUDED.owner",
                  12, 1, true, 'i', "IM session"},
    [W_IM_DEL] = {"pb_im_del", "DELETE FROM pb_im WHERE call_id = $1", 1, 1, false, 'i',
                  "IM session"},
};

/* One queued write: its parameters as text (NULL: SQL NULL), copied. */
struct pgw {
	uint64_t seq;
	enum pgw_kind kind;
	size_t qi;       /* index in the queue while queued */
	const char *key; /* class byte, then the key parameters, NUL-separated */
	size_t klen;
	const char *p[PGW_MAXP]; /* the owner, when owned, is not here */
	char data[];
};

struct pgv {
	struct pgw **v;
	size_t n, cap;
};

/* What the next result in the pipeline answers. >= 0: the batch's write i. */
enum {
	T_SETUP = -1, /* a PQsendPrepare after connecting */
	T_SETUP_SYNC = -2,
	T_ROLLBACK = -3,
	T_BEGIN = -4,
	T_FENCE = -5,
	T_COMMIT = -6,
	T_SYNC = -7,
};

enum pg_state {
	PG_DOWN,       /* waiting for the next attempt (timer) */
	PG_CONNECTING, /* PQconnectPoll on the loop (timer: give up) */
	PG_SETUP,      /* connected; statements being prepared */
	PG_READY,
};

struct store_pg {
	struct store head; /* first: a struct store * is one of these */
	struct loop *loop;
	char *conninfo;
	PGconn *conn;
	int fd;            /* registered on the loop, or -1 */
	unsigned interest; /* LOOP_READ | LOOP_WRITE asked for fd */
	enum pg_state state;
	struct loop_timer timer; /* reconnect, connect timeout, batch retry */
	unsigned backoff_ms;
	bool up;          /* connected and set up since the last STORE_EV_DOWN */
	bool outage_told; /* the outage's first failure was logged */
	bool retry_wait;  /* the batch failed; timer sends it again */
	bool
	    need_rollback; /* a failed batch left the session in an aborted transaction */
	bool grouping;     /* store_begin() .. store_commit(): flush holds back */
	bool reading;      /* inside an _each: out of pipeline mode */
	bool cap_told;

	struct pgv queue; /* not sent yet */
	struct hmap qidx; /* queued write by key */
	struct pgv batch; /* sent, not confirmed */
	uint64_t batch_seq;
	uint64_t batch_sent_ms;

	/* The pipeline's expected results, in order. */
	int *tags;
	size_t ntags, tpos, tcap;
	bool got; /* a result of tags[tpos] was seen (the NULL after it is next) */
	/* What the batch in flight met. */
	bool fenced;
	bool failed; /* a failure that is not the data's: send again later */
	long bad;    /* index of a write refused for its data, or -1 */
	bool setup_failed;
	char fence_msg[256];

	char err[512]; /* store_errmsg() */
};

static const struct store_ops pg_ops;

static struct store_pg *pgs(struct store *st)
{
	return (struct store_pg *)st;
}

/* The first line of a libpq message, without its newline. */
static void set_err(struct store_pg *pg, const char *prefix, const char *msg)
{
	size_t n = msg ? strcspn(msg, "\n") : 0;
	snprintf(pg->err, sizeof(pg->err), "%s%s%.*s", prefix, n ? ": " : "", (int)n,
	         msg ? msg : "");
}

static void quiet_notice(void *arg, const char *msg)
{
	(void)arg;
	log_debug("store", "postgresql: %.*s", (int)strcspn(msg, "\n"), msg);
}

/* Connection keywords: ours first, so that conninfo (expanded from dbname)
 * overrides them. */
static const char *const conn_keys[] = {"connect_timeout",
                                        "application_name",
                                        "keepalives_idle",
                                        "keepalives_interval",
                                        "keepalives_count",
                                        "dbname",
                                        NULL};

static void conn_vals(const char *vals[], const char *conninfo, const char *timeout)
{
	vals[0] = timeout;
	vals[1] = "presbridge";
	vals[2] = "10";
	vals[3] = "3";
	vals[4] = "3";
	vals[5] = conninfo;
	vals[6] = NULL;
}

/* ---- queue ---------------------------------------------------------------- */

static int pgv_push(struct pgv *v, struct pgw *w)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		struct pgw **nv = realloc(v->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = w;
	return 0;
}

static void pgv_clear(struct pgv *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i]);
	v->n = 0;
}

static void qidx_reset(struct store_pg *pg)
{
	uint64_t k[2] = {0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL};
	/* Keys are peers' addresses: without randomness the map only loses its
	 * defence against chosen collisions. */
	if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k))
		k[0] ^= (uint64_t)(uintptr_t)pg;
	hmap_free(&pg->qidx);
	hmap_init(&pg->qidx, k[0], k[1]);
}

/* A copy of the write's parameters; vals[i] NULL is SQL NULL. */
static struct pgw *pgw_new(enum pgw_kind kind, const char *const vals[])
{
	const struct pgw_def *d = &wdefs[kind];
	int n = d->nparams - (d->owned ? 1 : 0);
	size_t len[PGW_MAXP], size = 1, klen = 1;

	for (int i = 0; i < n; i++) {
		len[i] = vals[i] ? strlen(vals[i]) : 0;
		if (i < d->nkey)
			klen += len[i] + 1;
		if (vals[i])
			size += len[i] + 1;
	}
	struct pgw *w = malloc(sizeof(*w) + klen + size);
	if (!w)
		return NULL;
	memset(w, 0, sizeof(*w));
	w->kind = kind;
	char *o = w->data;
	w->key = o;
	w->klen = klen;
	*o++ = d->class;
	for (int i = 0; i < d->nkey; i++) {
		memcpy(o, vals[i] ? vals[i] : "", len[i]);
		o += len[i];
		*o++ = '\0';
	}
	for (int i = 0; i < n; i++) {
		if (!vals[i])
			continue;
		memcpy(o, vals[i], len[i] + 1);
		w->p[i] = o;
		o += len[i] + 1;
	}
	return w;
}

/* Queue a write, replacing a queued write of the same key. */
static int enqueue(struct store_pg *pg, enum pgw_kind kind, const char *const vals[])
{
	struct pgw *w = pgw_new(kind, vals);
	if (!w)
		return -ENOMEM;
	struct pgw *old = hmap_get(&pg->qidx, w->key, w->klen);
	if (!old && pg->queue.n >= PG_QUEUE_MAX) {
		if (!pg->cap_told)
			log_error("store",
			          "postgresql: %d writes wait for the database; "
			          "refusing more until it takes them",
			          PG_QUEUE_MAX);
		pg->cap_told = true;
		snprintf(pg->err, sizeof(pg->err), "%d writes wait for the database",
		         PG_QUEUE_MAX);
		free(w);
		return -EAGAIN;
	}
	if (old) {
		hmap_del(&pg->qidx, old->key, old->klen);
		w->qi = old->qi;
		pg->queue.v[w->qi] = w;
		free(old);
	} else {
		w->qi = pg->queue.n;
		if (pgv_push(&pg->queue, w)) {
			free(w);
			return -ENOMEM;
		}
	}
	if (hmap_put(&pg->qidx, w->key, w->klen, w)) {
		/* Not indexed: a later write of the key queues beside it, in order. */
		log_debug("store", "postgresql: write not indexed for coalescing");
	}
	w->seq = ++pg->head.wseq;
	return 0;
}

/* ---- the connection --------------------------------------------------------- */

static void on_io(int fd, unsigned events, void *arg);
static void on_timer(void *arg);
static void flush_queue(struct store_pg *pg);
static int send_batch(struct store_pg *pg);

static void watch(struct store_pg *pg, unsigned interest)
{
	if (pg->fd >= 0 && interest != pg->interest &&
	    loop_fd_mod(pg->loop, pg->fd, interest) == 0)
		pg->interest = interest;
}

static void tags_reset(struct store_pg *pg)
{
	pg->ntags = pg->tpos = 0;
	pg->got = false;
}

static int tag_push(struct store_pg *pg, int tag)
{
	if (pg->ntags == pg->tcap) {
		size_t cap = pg->tcap ? pg->tcap * 2 : 64;
		int *nt = realloc(pg->tags, cap * sizeof(*nt));
		if (!nt)
			return -ENOMEM;
		pg->tags = nt;
		pg->tcap = cap;
	}
	pg->tags[pg->ntags++] = tag;
	return 0;
}

/* Forget the connection (the batch stays, to be sent again). */
static void conn_drop(struct store_pg *pg)
{
	if (pg->fd >= 0)
		loop_fd_del(pg->loop, pg->fd);
	pg->fd = -1;
	pg->interest = 0;
	if (pg->conn)
		PQfinish(pg->conn);
	pg->conn = NULL;
	tags_reset(pg);
	pg->need_rollback = false; /* a new session has no transaction */
	pg->retry_wait = false;
}

static void schedule(struct store_pg *pg, unsigned ms)
{
	loop_timer_start(pg->loop, &pg->timer, ms, on_timer, pg);
}

/* An attempt failed or the connection broke: try again after the backoff. */
static void conn_retry(struct store_pg *pg)
{
	conn_drop(pg);
	pg->state = PG_DOWN;
	schedule(pg, pg->backoff_ms);
	pg->backoff_ms = pg->backoff_ms * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS
	                                                        : pg->backoff_ms * 2;
}

static void conn_lost(struct store_pg *pg)
{
	bool was_up = pg->up;

	set_err(pg, "connection to the database lost",
	        pg->conn ? PQerrorMessage(pg->conn) : NULL);
	if (!pg->outage_told)
		log_warn("store", "postgresql: %s; %zu writes unconfirmed; reconnecting",
		         pg->err, pg->batch.n + pg->queue.n);
	pg->outage_told = true;
	pg->up = false;
	pg->backoff_ms = PG_BACKOFF_MIN_MS;
	conn_retry(pg);
	if (was_up)
		store_emit(&pg->head, STORE_EV_DOWN, pg->head.dseq);
}

/* Push buffered output; watch for writability while some is left. */
static int out_flush(struct store_pg *pg)
{
	int r = PQflush(pg->conn);
	if (r < 0) {
		conn_lost(pg);
		return -EIO;
	}
	watch(pg, LOOP_READ | (r == 1 ? LOOP_WRITE : 0));
	return 0;
}

/* Prepare the statements of the writes and the fence in the pipeline. */
static int conn_setup(struct store_pg *pg)
{
	PQsetNoticeProcessor(pg->conn, quiet_notice, NULL);
	if (PQsetnonblocking(pg->conn, 1) != 0 || PQenterPipelineMode(pg->conn) != 1)
		return -EIO;
	tags_reset(pg);
	pg->setup_failed = false;
	for (int k = 0; k < W_KINDS; k++) {
		if (!PQsendPrepare(pg->conn, wdefs[k].stmt, wdefs[k].sql, 0, NULL) ||
		    tag_push(pg, T_SETUP))
			return -EIO;
	}
	if (!PQsendPrepare(pg->conn, "pb_fence", "SELECT pb_fence($1, $2)", 0, NULL) ||
	    tag_push(pg, T_SETUP) || !PQpipelineSync(pg->conn) ||
	    tag_push(pg, T_SETUP_SYNC))
		return -EIO;
	pg->state = PG_SETUP;
	pg->fd = PQsocket(pg->conn);
	if (pg->fd < 0 || loop_fd_add(pg->loop, pg->fd, LOOP_READ, on_io, pg) != 0) {
		pg->fd = -1;
		return -EIO;
	}
	pg->interest = LOOP_READ;
	return out_flush(pg) ? -EIO : 0;
}

static void attempt_failed(struct store_pg *pg, const char *why)
{
	set_err(pg, "cannot connect to the database", why);
	if (!pg->outage_told)
		log_warn("store", "postgresql: %s; trying again", pg->err);
	else
		log_debug("store", "postgresql: %s", pg->err);
	pg->outage_told = true;
	conn_retry(pg);
}

static void connect_start(struct store_pg *pg)
{
	const char *vals[8];

	conn_vals(vals, pg->conninfo, NULL);
	pg->conn = PQconnectStartParams(conn_keys, vals, 1);
	if (!pg->conn || PQstatus(pg->conn) == CONNECTION_BAD) {
		attempt_failed(pg, pg->conn ? PQerrorMessage(pg->conn) : "out of memory");
		return;
	}
	pg->state = PG_CONNECTING;
	pg->fd = PQsocket(pg->conn);
	if (pg->fd < 0 || loop_fd_add(pg->loop, pg->fd, LOOP_WRITE, on_io, pg) != 0) {
		pg->fd = -1;
		attempt_failed(pg, "cannot watch the socket");
		return;
	}
	pg->interest = LOOP_WRITE;
	schedule(pg, PG_CONNECT_TIMEOUT_MS);
}

/* One step of a non-blocking connection attempt. libpq may move to another
 * socket (another address of the host), so the watch is made anew. */
static void connect_step(struct store_pg *pg)
{
	PostgresPollingStatusType ps = PQconnectPoll(pg->conn);
	unsigned interest = 0;

	if (ps == PGRES_POLLING_FAILED) {
		attempt_failed(pg, PQerrorMessage(pg->conn));
		return;
	}
	if (pg->fd >= 0)
		loop_fd_del(pg->loop, pg->fd);
	pg->fd = -1;
	if (ps == PGRES_POLLING_OK) {
		loop_timer_cancel(pg->loop, &pg->timer);
		if (conn_setup(pg) != 0 && pg->conn)
			attempt_failed(pg, PQerrorMessage(pg->conn));
		return;
	}
	interest = ps == PGRES_POLLING_READING ? LOOP_READ : LOOP_WRITE;
	pg->fd = PQsocket(pg->conn);
	if (pg->fd < 0 || loop_fd_add(pg->loop, pg->fd, interest, on_io, pg) != 0) {
		pg->fd = -1;
		attempt_failed(pg, "cannot watch the socket");
		return;
	}
	pg->interest = interest;
}

/* The prepared statements are in place: the store is usable. */
static void setup_done(struct store_pg *pg)
{
	bool again = !pg->up; /* false at the first connection: store_open_pg */

	if (pg->setup_failed) {
		attempt_failed(pg, pg->err);
		return;
	}
	pg->state = PG_READY;
	pg->backoff_ms = PG_BACKOFF_MIN_MS;
	pg->outage_told = false;
	pg->up = true;
	if (again) {
		log_info("store",
		         "postgresql: connected again; sending %zu unconfirmed writes",
		         pg->batch.n + pg->queue.n);
		store_emit(&pg->head, STORE_EV_UP, pg->head.dseq);
		if (pg->state != PG_READY)
			return; /* the handler closed or broke it */
	}
	if (pg->batch.n)
		send_batch(pg);
	else
		flush_queue(pg);
}

/* ---- batches ----------------------------------------------------------------- */

static int send_write(struct store_pg *pg, const struct pgw *w)
{
	const struct pgw_def *d = &wdefs[w->kind];
	const char *p[PGW_MAXP];

	memcpy(p, w->p, sizeof(p));
	if (d->owned)
		p[d->nparams - 1] = pg->head.owner ? pg->head.owner : "";
	return PQsendQueryPrepared(pg->conn, d->stmt, d->nparams, p, NULL, NULL, 0)
	           ? 0
	           : -EIO;
}

static int send_plain(struct store_pg *pg, const char *sql, int tag)
{
	if (!PQsendQueryParams(pg->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
		return -EIO;
	return tag_push(pg, tag);
}

/* Send the batch as one transaction; results come back through on_io. */
static int send_batch(struct store_pg *pg)
{
	char epoch[24];
	int e = 0;

	tags_reset(pg);
	pg->fenced = pg->failed = false;
	pg->bad = -1;
	pg->batch_sent_ms = loop_clock_ms();
	if (pg->need_rollback)
		e = send_plain(pg, "ROLLBACK", T_ROLLBACK);
	pg->need_rollback = false;
	if (!e)
		e = send_plain(pg, "BEGIN", T_BEGIN);
	if (!e && pg->head.owner) {
		const char *p[2] = {pg->head.owner, epoch};
		snprintf(epoch, sizeof(epoch), "%" PRId64, pg->head.epoch);
		e = PQsendQueryPrepared(pg->conn, "pb_fence", 2, p, NULL, NULL, 0)
		        ? tag_push(pg, T_FENCE)
		        : -EIO;
	}
	for (size_t i = 0; !e && i < pg->batch.n; i++) {
		e = send_write(pg, pg->batch.v[i]);
		if (!e)
			e = tag_push(pg, (int)i);
	}
	if (!e)
		e = send_plain(pg, "COMMIT", T_COMMIT);
	if (!e)
		e = PQpipelineSync(pg->conn) ? tag_push(pg, T_SYNC) : -EIO;
	if (e) {
		conn_lost(pg);
		return -EIO;
	}
	return out_flush(pg);
}

/* Move the queue into a new batch and send it, when nothing is in flight. */
static void flush_queue(struct store_pg *pg)
{
	if (pg->grouping || pg->reading || pg->state != PG_READY || pg->retry_wait ||
	    pg->batch.n || !pg->queue.n)
		return;
	struct pgv t = pg->batch;
	pg->batch = pg->queue;
	pg->queue = t;
	pg->queue.n = 0;
	qidx_reset(pg);
	pg->cap_told = false;
	pg->batch_seq = pg->head.wseq;
	send_batch(pg);
}

/* The words for a write in logs: its kind and key. */
static void describe_write(const struct pgw *w, char *buf, size_t len)
{
	const struct pgw_def *d = &wdefs[w->kind];
	switch (w->kind) {
	case W_SUB_PUT:
	case W_SUB_DEL:
		snprintf(buf, len, "%s %s -> %s (dir %s)", d->what, w->p[1], w->p[2],
		         w->p[0]);
		break;
	case W_PRES_PUT:
	case W_PRES_DEL:
		snprintf(buf, len, "%s of %s/%s", d->what, w->p[0], w->p[1]);
		break;
	default:
		snprintf(buf, len, "%s %s", d->what, w->p[0]);
		break;
	}
}

/* Note what a statement's failure means for the batch. */
static void note_error(struct store_pg *pg, int tag, const PGresult *r)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	if (!msg)
		msg = PQresultErrorMessage(r);
	if (tag == T_SETUP) {
		pg->setup_failed = true;
		set_err(pg, "cannot prepare the statements", msg);
		return;
	}
	if (state && strcmp(state, "PB001") == 0) {
		pg->fenced = true;
		snprintf(pg->fence_msg, sizeof(pg->fence_msg), "%s", msg);
		return;
	}
	/* Classes 22 (data exception) and 23 (integrity constraint): the write's
	 * own fault; sending it again would fail again. */
	if (tag >= 0 && state &&
	    (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)) {
		if (pg->bad < 0)
			pg->bad = tag;
		set_err(pg, "a write was refused", msg);
		return;
	}
	if (!pg->failed) {
		set_err(pg, "a batch of writes failed", msg);
		if (state)
			snprintf(pg->err + strlen(pg->err),
			         sizeof(pg->err) - strlen(pg->err), " (SQLSTATE %s)",
			         state);
	}
	pg->failed = true;
}

static void batch_done(struct store_pg *pg)
{
	char what[512];

	if (pg->fenced) {
		size_t dropped = pg->batch.n + pg->queue.n;
		set_err(pg, "writes refused by the pool fence", pg->fence_msg);
		log_warn("store", "postgresql: %s; %zu writes dropped", pg->err, dropped);
		pgv_clear(&pg->batch);
		pgv_clear(&pg->queue);
		qidx_reset(pg);
		pg->need_rollback = true;
		/* Nothing is left to wait for: output that waited on these writes
		 * is dropped with the fenced node's bridge. */
		pg->head.dseq = pg->head.wseq;
		store_emit(&pg->head, STORE_EV_FENCED, pg->batch_seq);
		return;
	}
	if (pg->bad >= 0 && !pg->failed) {
		struct pgw *w = pg->batch.v[pg->bad];
		describe_write(w, what, sizeof(what));
		log_error("store", "postgresql: %s dropped: %s", what, pg->err);
		free(w);
		memmove(&pg->batch.v[pg->bad], &pg->batch.v[pg->bad + 1],
		        (pg->batch.n - (size_t)pg->bad - 1) * sizeof(pg->batch.v[0]));
		pg->batch.n--;
		pg->need_rollback = true;
		if (pg->batch.n) {
			send_batch(pg);
			return;
		}
	} else if (pg->failed || pg->bad >= 0) {
		log_warn("store", "postgresql: %s; sending the %zu writes again", pg->err,
		         pg->batch.n);
		pg->need_rollback = true;
		pg->retry_wait = true;
		schedule(pg, PG_BACKOFF_MAX_MS);
		return;
	}
	stats_observe(STATS_H_STORE_WRITE,
	              (double)(loop_clock_ms() - pg->batch_sent_ms) / 1000.0);
	pgv_clear(&pg->batch);
	/* With nothing queued every write issued is settled (some may have been
	 * dropped by a fence, store_set_owner epoch 0). */
	pg->head.dseq = pg->queue.n ? pg->batch_seq : pg->head.wseq;
	store_emit(&pg->head, STORE_EV_DURABLE, pg->head.dseq);
	flush_queue(pg);
}

/* Read every result that has arrived and act on each completed segment. */
static void on_results(struct store_pg *pg)
{
	while (pg->conn && pg->state >= PG_SETUP && !pg->reading) {
		if (PQstatus(pg->conn) == CONNECTION_BAD) {
			conn_lost(pg);
			return;
		}
		if (PQisBusy(pg->conn))
			return;
		PGresult *r = PQgetResult(pg->conn);
		if (!r) {
			if (!pg->got)
				return; /* nothing more has arrived */
			pg->got = false;
			pg->tpos++;
			continue;
		}
		ExecStatusType rs = PQresultStatus(r);
		int tag = pg->tpos < pg->ntags ? pg->tags[pg->tpos] : T_SYNC;
		if (rs == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			if (tag != T_SYNC && tag != T_SETUP_SYNC) {
				set_err(pg, "the pipeline's results are out of step",
				        NULL);
				conn_lost(pg);
				return;
			}
			pg->tpos++;
			pg->got = false;
			if (tag == T_SETUP_SYNC)
				setup_done(pg);
			else
				batch_done(pg);
			continue;
		}
		pg->got = true;
		if (rs == PGRES_FATAL_ERROR || rs == PGRES_NONFATAL_ERROR)
			note_error(pg, tag, r);
		PQclear(r);
	}
}

static void on_io(int fd, unsigned events, void *arg)
{
	struct store_pg *pg = arg;
	(void)fd;

	if (pg->state == PG_CONNECTING) {
		connect_step(pg);
		return;
	}
	if (!pg->conn)
		return;
	if ((events & (LOOP_READ | LOOP_ERROR)) && !PQconsumeInput(pg->conn)) {
		conn_lost(pg);
		return;
	}
	if ((pg->interest & LOOP_WRITE) && out_flush(pg))
		return;
	on_results(pg);
}

static void on_timer(void *arg)
{
	struct store_pg *pg = arg;

	switch (pg->state) {
	case PG_DOWN:
		connect_start(pg);
		break;
	case PG_CONNECTING:
		attempt_failed(pg, "no answer in time");
		break;
	case PG_SETUP:
		break;
	case PG_READY:
		if (pg->retry_wait) {
			pg->retry_wait = false;
			if (pg->batch.n)
				send_batch(pg);
			else
				flush_queue(pg);
		}
		break;
	}
}

/*
 * Drive the connection without the loop until every queued write is durable
 * (or dropped), for at most ms. The loop's own handlers do the work; events
 * reach the store's handler as usual. Returns 0 or -ETIMEDOUT.
 */
static int wait_idle(struct store_pg *pg, uint64_t ms)
{
	uint64_t deadline = loop_clock_ms() + ms;
	bool grouping = pg->grouping;

	pg->grouping = false; /* what is waited for must be sent */
	for (;;) {
		flush_queue(pg);
		if (pg->state == PG_READY && !pg->batch.n && !pg->queue.n)
			break;
		uint64_t now = loop_clock_ms();
		if (now >= deadline) {
			pg->grouping = grouping;
			return -ETIMEDOUT;
		}
		uint64_t wait = deadline - now;
		if (loop_timer_running(&pg->timer)) {
			uint64_t due = pg->timer.due > now ? pg->timer.due - now : 0;
			if (due < wait)
				wait = due;
		}
		struct pollfd pfd = {.fd = pg->fd, .events = 0};
		if (pg->interest & LOOP_READ)
			pfd.events |= POLLIN;
		if (pg->interest & LOOP_WRITE)
			pfd.events |= POLLOUT;
		int n = poll(&pfd, pg->fd >= 0 ? 1 : 0, (int)wait);
		if (n > 0 && pg->fd >= 0) {
			unsigned ev = 0;
			if (pfd.revents & POLLIN)
				ev |= LOOP_READ;
			if (pfd.revents & POLLOUT)
				ev |= LOOP_WRITE;
			if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))
				ev |= LOOP_ERROR;
			on_io(pg->fd, ev, pg);
		}
		if (loop_timer_running(&pg->timer) && pg->timer.due <= loop_clock_ms()) {
			loop_timer_cancel(pg->loop, &pg->timer);
			on_timer(pg);
		}
	}
	pg->grouping = grouping;
	return 0;
}

/* ---- store_ops ----------------------------------------------------------------- */

static void pg_close(struct store *st)
{
	struct store_pg *pg = pgs(st);

	st->ev_h = NULL; /* the owner is going away: no more events */
	pg->grouping = false;
	if ((pg->batch.n || pg->queue.n) && wait_idle(pg, PG_CLOSE_WAIT_MS) != 0)
		log_warn("store", "postgresql: closing with %zu writes unconfirmed: %s",
		         pg->batch.n + pg->queue.n, pg->err);
	conn_drop(pg);
	loop_timer_cancel(pg->loop, &pg->timer);
	pgv_clear(&pg->batch);
	pgv_clear(&pg->queue);
	free(pg->batch.v);
	free(pg->queue.v);
	hmap_free(&pg->qidx);
	free(pg->tags);
	free(pg->conninfo);
	store_head_clear(st);
	free(pg);
}

static int pg_begin(struct store *st)
{
	struct store_pg *pg = pgs(st);
	if (pg->grouping)
		return -EBUSY;
	pg->grouping = true;
	return 0;
}

static int pg_commit(struct store *st)
{
	struct store_pg *pg = pgs(st);
	if (!pg->grouping)
		return -EINVAL;
	pg->grouping = false;
	return 0;
}

static int pg_flush(struct store *st)
{
	flush_queue(pgs(st));
	return 0;
}

#define I64(buf, v) (snprintf(buf, sizeof(buf), "%" PRId64, (int64_t)(v)), buf)

static int pg_sub_put(struct store *st, const struct store_sub *s)
{
	char n[6][24];
	const char *v[PGW_MAXP] = {I64(n[0], s->dir),
	                           s->watcher,
	                           s->presentity,
	                           s->phase,
	                           I64(n[1], s->retries),
	                           s->peer,
	                           s->call_id,
	                           s->local_tag,
	                           s->remote_tag,
	                           I64(n[2], s->local_cseq),
	                           I64(n[3], s->remote_cseq),
	                           s->remote_target,
	                           s->route_set,
	                           I64(n[4], s->expires_at),
	                           I64(n[5], s->refresh_at)};
	return enqueue(pgs(st), W_SUB_PUT, v);
}

static int pg_sub_del(struct store *st, int dir, const char *watcher,
                      const char *presentity)
{
	char n[24];
	const char *v[PGW_MAXP] = {I64(n, dir), watcher, presentity};
	return enqueue(pgs(st), W_SUB_DEL, v);
}

static int pg_pres_put(struct store *st, const struct store_pres *p)
{
	char n[2][24];
	const char *v[PGW_MAXP] = {p->entity,
	                           p->resource,
	                           p->open ? "t" : "f",
	                           p->activity,
	                           p->note ? p->note : "",
	                           I64(n[0], p->priority),
	                           I64(n[1], p->updated),
	                           p->device ? "t" : "f"};
	return enqueue(pgs(st), W_PRES_PUT, v);
}

static int pg_pres_del(struct store *st, const char *entity, const char *resource)
{
	const char *v[PGW_MAXP] = {entity, resource};
	return enqueue(pgs(st), W_PRES_DEL, v);
}

static int pg_im_put(struct store *st, const struct store_im *im)
{
	char n[2][24];
	const char *v[PGW_MAXP] = {im->call_id,
	                           im->local_tag,
	                           im->remote_tag,
	                           im->sip_uri,
	                           im->jid,
	                           im->thread,
	                           im->sip_initiated ? "t" : "f",
	                           I64(n[0], im->local_cseq),
	                           im->remote_target,
	                           im->route_set,
	                           I64(n[1], im->last_activity)};
	return enqueue(pgs(st), W_IM_PUT, v);
}

static int pg_im_del(struct store *st, const char *call_id)
{
	const char *v[PGW_MAXP] = {call_id};
	return enqueue(pgs(st), W_IM_DEL, v);
}

/* Column values of a row: NULL for SQL NULL; valid until the result is freed. */
static const char *col(const PGresult *r, int c)
{
	return PQgetisnull(r, 0, c) ? NULL : PQgetvalue(r, 0, c);
}

static int64_t col_i64(const PGresult *r, int c)
{
	const char *s = col(r, c);
	return s ? strtoll(s, NULL, 10) : 0;
}

static bool col_bool(const PGresult *r, int c)
{
	const char *s = col(r, c);
	return s && s[0] == 't';
}

typedef int(row_h)(const PGresult *r, void *h, void *arg);

/*
 * Run a read once every queued write is durable: out of pipeline mode, one row
 * at a time. A non-zero return from row stops the calls and is returned.
 */
static int read_rows(struct store_pg *pg, const char *sql, row_h *row, void *h, void *arg)
{
	int e = 0;

	if (pg->reading)
		return -EBUSY;
	if (wait_idle(pg, PG_READ_WAIT_MS) != 0) {
		log_warn("store", "postgresql: cannot read: %s", pg->err);
		return -EIO;
	}
	if (PQexitPipelineMode(pg->conn) != 1 || PQsetnonblocking(pg->conn, 0) != 0) {
		set_err(pg, "cannot leave pipeline mode", PQerrorMessage(pg->conn));
		conn_lost(pg);
		return -EIO;
	}
	pg->reading = true;
	if (pg->need_rollback) {
		/* A batch refused (the fence, a bad write) left its transaction
		 * open and aborted: nothing reads until it is rolled back. */
		PGresult *rb = PQexec(pg->conn, "ROLLBACK");
		PQclear(rb);
		pg->need_rollback = false;
	}
	if (!PQsendQueryParams(pg->conn, sql, 0, NULL, NULL, NULL, NULL, 0) ||
	    !PQsetSingleRowMode(pg->conn)) {
		set_err(pg, "cannot read", PQerrorMessage(pg->conn));
		e = -EIO;
	}
	PGresult *r;
	while (pg->conn && (r = PQgetResult(pg->conn))) {
		ExecStatusType rs = PQresultStatus(r);
		if (rs == PGRES_SINGLE_TUPLE) {
			if (!e)
				e = row(r, h, arg);
		} else if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK) {
			set_err(pg, "cannot read", PQresultErrorMessage(r));
			if (!e)
				e = -EIO;
		}
		PQclear(r);
	}
	pg->reading = false;
	if (PQstatus(pg->conn) == CONNECTION_BAD || PQsetnonblocking(pg->conn, 1) != 0 ||
	    PQenterPipelineMode(pg->conn) != 1) {
		conn_lost(pg);
		return e ? e : -EIO;
	}
	flush_queue(pg); /* writes the callbacks made */
	return e;
}

static int sub_row(const PGresult *r, void *h, void *arg)
{
	struct store_sub s = {
	    .dir = (int)col_i64(r, 0),
	    .watcher = col(r, 1),
	    .presentity = col(r, 2),
	    .phase = col(r, 3),
	    .retries = (uint32_t)col_i64(r, 4),
	    .peer = col(r, 5),
	    .call_id = col(r, 6),
	    .local_tag = col(r, 7),
	    .remote_tag = col(r, 8),
	    .local_cseq = (uint32_t)col_i64(r, 9),
	    .remote_cseq = (uint32_t)col_i64(r, 10),
	    .remote_target = col(r, 11),
	    .route_set = col(r, 12),
	    .expires_at = col_i64(r, 13),
	    .refresh_at = col_i64(r, 14),
	};
	return ((store_sub_h *)h)(&s, arg);
}

/* One statement outside the pipeline, committed when it returns (read_rows'
 * path: it waits for the queued writes first). */
static int pg_sub_raise_cseq(struct store *st, uint32_t delta)
{
	char sql[96];
	snprintf(sql, sizeof(sql), "UPDATE pb_sub SET local_cseq = local_cseq + %u",
	         delta);
	return read_rows(pgs(st), sql, sub_row, NULL, NULL);
}

static int pg_sub_each(struct store *st, store_sub_h *h, void *arg)
{
	return read_rows(pgs(st),
	                 "SELECT dir, watcher, presentity, phase, retries, peer, call_id,"
	                 " local_tag, remote_tag, local_cseq, remote_cseq, remote_target,"
	                 " route_set, expires_at, refresh_at FROM pb_sub",
	                 sub_row, (void *)h, arg);
}

static int pres_row(const PGresult *r, void *h, void *arg)
{
	struct store_pres p = {
	    .entity = col(r, 0),
	    .resource = col(r, 1),
	    .open = col_bool(r, 2),
	    .activity = col(r, 3),
	    .note = col(r, 4),
	    .priority = (int)col_i64(r, 5),
	    .updated = col_i64(r, 6),
	    .device = col_bool(r, 7),
	};
	return ((store_pres_h *)h)(&p, arg);
}

static int pg_pres_each(struct store *st, store_pres_h *h, void *arg)
{
	return read_rows(
	    pgs(st),
	    "SELECT entity, resource, open, activity, note, priority, updated,"
	    " device FROM pb_pres",
	    pres_row, (void *)h, arg);
}

static int im_row(const PGresult *r, void *h, void *arg)
{
	struct store_im im = {
	    .call_id = col(r, 0),
	    .local_tag = col(r, 1),
	    .remote_tag = col(r, 2),
	    .sip_uri = col(r, 3),
	    .jid = col(r, 4),
	    .thread = col(r, 5),
	    .sip_initiated = col_bool(r, 6),
	    .local_cseq = (uint32_t)col_i64(r, 7),
	    .remote_target = col(r, 8),
	    .route_set = col(r, 9),
	    .last_activity = col_i64(r, 10),
	};
	return ((store_im_h *)h)(&im, arg);
}

static int pg_im_each(struct store *st, store_im_h *h, void *arg)
{
	return read_rows(pgs(st),
	                 "SELECT call_id, local_tag, remote_tag, sip_uri, jid, thread,"
	                 " sip_initiated, local_cseq, remote_target, route_set,"
	                 " last_activity FROM pb_im",
	                 im_row, (void *)h, arg);
}

static const char *pg_errmsg(const struct store *st)
{
	const struct store_pg *pg = (const struct store_pg *)st;
	return pg->err[0] ? pg->err : "no error";
}

/* Fenced (store_set_owner with epoch 0): the queue goes; a batch in flight
 * ends as the database decides (its pb_fence ran under the old epoch). */
static void pg_discard(struct store *st)
{
	struct store_pg *pg = pgs(st);
	size_t n = pg->queue.n;
	pgv_clear(&pg->queue);
	qidx_reset(pg);
	if (!pg->batch.n)
		pg->head.dseq = pg->head.wseq;
	if (n)
		log_info("store", "postgresql: %zu queued writes dropped (fenced)", n);
}

static const struct store_ops pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .flush = pg_flush,
    .sub_put = pg_sub_put,
    .sub_del = pg_sub_del,
    .sub_each = pg_sub_each,
    .pres_put = pg_pres_put,
    .pres_del = pg_pres_del,
    .pres_each = pg_pres_each,
    .im_put = pg_im_put,
    .im_del = pg_im_del,
    .im_each = pg_im_each,
    .errmsg = pg_errmsg,
    .sub_raise_cseq = pg_sub_raise_cseq,
    .discard = pg_discard,
};

/* ---- opening ------------------------------------------------------------------- */

/* Run sql (no parameters) blocking; 0 or -EIO with the reason in pg->err. */
static int exec_ok(struct store_pg *pg, const char *sql, const char *what)
{
	PGresult *r = PQexec(pg->conn, sql);
	ExecStatusType rs = PQresultStatus(r);
	int e = rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK ? 0 : -EIO;
	if (e)
		set_err(pg, what, r ? PQresultErrorMessage(r) : PQerrorMessage(pg->conn));
	PQclear(r);
	return e;
}

/* Bring the schema to SCHEMA_VERSION, one migration per transaction. */
static int migrate(struct store_pg *pg)
{
	char sql[160];

	for (;;) {
		snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%d)",
		         PG_MIGRATE_LOCK);
		if (exec_ok(pg, sql, "cannot start the schema check") ||
		    exec_ok(pg,
		            "CREATE TABLE IF NOT EXISTS pb_meta (key text PRIMARY KEY,"
		            " value text)",
		            "cannot create table pb_meta"))
			goto fail;
		PGresult *r =
		    PQexec(pg->conn, "SELECT value FROM pb_meta WHERE key = 'schema'");
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			set_err(pg, "cannot read the schema version",
			        PQresultErrorMessage(r));
			PQclear(r);
			goto fail;
		}
		int version = PQntuples(r) ? atoi(PQgetvalue(r, 0, 0)) : 0;
		PQclear(r);
		if (version > SCHEMA_VERSION) {
			snprintf(
			    pg->err, sizeof(pg->err),
			    "the database holds schema %d, written by a newer presbridge"
			    " (this one knows up to %d)",
			    version, SCHEMA_VERSION);
			exec_ok(pg, "ROLLBACK", "rollback");
			return -EPROTO;
		}
		if (version == SCHEMA_VERSION)
			return exec_ok(pg, "COMMIT", "cannot end the schema check") ? -EIO
			                                                            : 0;
		snprintf(sql, sizeof(sql),
		         "INSERT INTO pb_meta VALUES ('schema', '%d') ON CONFLICT (key)"
		         " DO UPDATE SET value = EXCLUDED.value",
		         version + 1);
		if (exec_ok(pg, migrations[version], "cannot migrate the schema") ||
		    exec_ok(pg, sql, "cannot record the schema version") ||
		    exec_ok(pg, "COMMIT", "cannot commit the schema"))
			goto fail;
		log_info("store", "postgresql: schema version %d in place", version + 1);
	}
fail:
	PQexec(pg->conn, "ROLLBACK");
	return -EIO;
}

int store_open_pg(struct store **sp, struct loop *l, const char *conninfo,
                  const char **whyp)
{
	struct store_pg *pg;
	const char *vals[8];
	int err = -EIO;

	if (!l || !conninfo) {
		if (whyp)
			*whyp = "no loop or no connection string";
		return -EINVAL;
	}
	pg = calloc(1, sizeof(*pg));
	if (!pg)
		return -ENOMEM;
	store_head_init(&pg->head, &pg_ops);
	pg->loop = l;
	pg->fd = -1;
	pg->bad = -1;
	pg->backoff_ms = PG_BACKOFF_MIN_MS;
	hmap_init(&pg->qidx, 0, 0);
	qidx_reset(pg);
	pg->conninfo = strdup(conninfo);
	if (!pg->conninfo) {
		err = -ENOMEM;
		snprintf(pg->err, sizeof(pg->err), "out of memory");
		goto out;
	}
	conn_vals(vals, conninfo, "10");
	pg->conn = PQconnectdbParams(conn_keys, vals, 1);
	if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK) {
		set_err(pg, "cannot connect to the database",
		        pg->conn ? PQerrorMessage(pg->conn) : "out of memory");
		goto out;
	}
	PQsetNoticeProcessor(pg->conn, quiet_notice, NULL);
	err = migrate(pg);
	if (err)
		goto out;
	err = -EIO;
	if (conn_setup(pg) != 0) {
		set_err(pg, "cannot set up the connection", PQerrorMessage(pg->conn));
		goto out;
	}
	pg->up = true;
	/* Start-up may block: the first flush finds the statements prepared. */
	if (wait_idle(pg, PG_CONNECT_TIMEOUT_MS) != 0 || pg->state != PG_READY) {
		if (!pg->err[0])
			set_err(pg, "the database did not answer in time", NULL);
		goto out;
	}
	*sp = &pg->head;
	return 0;
out:
	/* The reason lives in the store, which is going: a static copy. */
	{
		static char why[sizeof(pg->err)];
		memcpy(why, pg->err, sizeof(why));
		if (whyp)
			*whyp = why;
	}
	pg_close(&pg->head);
	return err;
}

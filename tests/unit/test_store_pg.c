/*
 * The PostgreSQL store (src/store/store_pg.c) against a scratch cluster that
 * the ctest fixture pg_server starts (tests/integration/pg.sh); the file named
 * by PB_PG_CONNINFO_FILE holds its connection string. Every case starts from
 * an empty schema.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <libpq-fe.h>

#include "presbridge/loop.h"
#include "presbridge/store.h"

static char conninfo[512];
static char sqlite_path[128];
static char sqlite_dir[64];

/* ---- the administrator's connection ----------------------------------------- */

static PGconn *adm;

static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static PGconn *adm_connect(void)
{
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("cannot connect to the test database: %s", PQerrorMessage(c));
	PQsetNoticeProcessor(c, quiet, NULL);
	return c;
}

/* Run sql; on failure the test fails with the server's words. */
static void sql_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType rs = PQresultStatus(r);
	if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
}

/* The first column of the first row of sql as text ("" for no row; the
 * returned buffer is static). */
static const char *sql_val(PGconn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *sql_val(PGconn *c, const char *fmt, ...)
{
	static char out[256];
	char sql[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	snprintf(out, sizeof(out), "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return out;
}

static long sql_long(PGconn *c, const char *sql)
{
	return atol(sql_val(c, "%s", sql));
}

static int group_setup(void **state)
{
	(void)state;
	const char *f = getenv("PB_PG_CONNINFO_FILE");
	if (!f)
		fail_msg("PB_PG_CONNINFO_FILE is not set (run through ctest: fixture "
		         "pg_server)");
	FILE *fp = fopen(f, "r");
	if (!fp)
		fail_msg("%s: cannot read the conninfo (did fixture pg_server run?)", f);
	if (!fgets(conninfo, sizeof(conninfo), fp))
		fail_msg("%s: empty", f);
	fclose(fp);
	conninfo[strcspn(conninfo, "\n")] = '\0';
	adm = adm_connect();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	PQfinish(adm);
	return 0;
}

/* ---- a store on a loop, and what it told ------------------------------------------ */

struct fx {
	struct loop *l;
	struct store *st;
	int n[4]; /* events by kind */
	uint64_t last[4];
	char order[64]; /* event kinds in order: D(urable) d(own) U(p) F(enced) */
};

static void on_event(enum store_event ev, uint64_t seq, void *arg)
{
	struct fx *f = arg;
	static const char code[] = "DdUF";
	f->n[ev]++;
	f->last[ev] = seq;
	size_t k = strlen(f->order);
	if (k + 1 < sizeof(f->order))
		f->order[k] = code[ev];
}

static void fx_open(struct fx *f)
{
	const char *why = NULL;
	int e = store_open_pg(&f->st, f->l, conninfo, &why);
	if (e)
		fail_msg("store_open_pg: %d %s", e, why ? why : "");
	store_set_events(f->st, on_event, f);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	sql_ok(adm, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
	            "DO $$BEGIN EXECUTE format('ALTER DATABASE %I RESET lock_timeout',"
	            " current_database()); END$$");
	assert_int_equal(loop_new(&f->l), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->st);
	loop_free(f->l);
	free(f);
	return 0;
}

/* Flush once per turn, as the bridge's idle hook does, until done(f) or ms. */
static bool drive(struct fx *f, bool (*done)(struct fx *), int ms)
{
	uint64_t end = loop_clock_ms() + (uint64_t)ms;
	while (!done(f)) {
		if (loop_clock_ms() > end)
			return false;
		store_flush(f->st);
		loop_run_once(f->l, 20);
	}
	return true;
}

static bool settled(struct fx *f)
{
	return store_pending(f->st) == 0;
}

static bool fenced(struct fx *f)
{
	return f->n[STORE_EV_FENCED] > 0;
}

/* ---- records ------------------------------------------------------------------ */

static int eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static const struct store_sub subs[] = {
    {.dir = 0,
     .watcher = "sip:alice@sip.test",
     .presentity = "bob@xmpp.test",
     .phase = "sw-active",
     .retries = 0,
     .peer = "lync",
     .call_id = "c1@lync",
     .local_tag = "lt1",
     .remote_tag = "rt1",
     .local_cseq = 4000000000u,
     .remote_cseq = 7,
     .remote_target = "sip:alice@10.0.0.1:5061;transport=tls",
     .route_set = "<sip:lync01.sip.test;lr>",
     .expires_at = 1764000000000,
     .refresh_at = 0},
    {.dir = 1,
     .watcher = "bob@xmpp.test",
     .presentity = "sip:alice@sip.test",
     .phase = "xw-backoff",
     .retries = 4,
     .peer = "lync",
     .expires_at = 0,
     .refresh_at = 1764000060000},
    {.dir = 0,
     .watcher = "sip:\xc3\xa9lodie@sip.test",
     .presentity = "o'neil@xmpp.test",
     .phase = "sw-dormant",
     .peer = NULL},
};
#define NSUBS (sizeof(subs) / sizeof(subs[0]))

static const struct store_pres pres[] = {
    {.entity = "bob@xmpp.test",
     .resource = "laptop",
     .open = true,
     .activity = "away",
     .note = "at lunch <back 2pm> & \"soon\"",
     .priority = -5,
     .device = true,
     .updated = 1764000000001},
    {.entity = "bob@xmpp.test",
     .resource = "",
     .open = false,
     .activity = "busy",
     .note = "",
     .priority = 127,
     .updated = 2},
};
#define NPRES (sizeof(pres) / sizeof(pres[0]))

static const struct store_im ims[] = {
    {.call_id = "im-1",
     .local_tag = "a",
     .remote_tag = "b",
     .sip_uri = "sip:alice@sip.test",
     .jid = "bob@xmpp.test",
     .thread = "thr-1",
     .sip_initiated = true,
     .local_cseq = 9,
     .remote_target = "sip:alice@10.0.0.1",
     .route_set = NULL,
     .last_activity = 5},
    {.call_id = "im-2",
     .sip_uri = "sip:carol@sip.test",
     .jid = "dave@xmpp.test",
     .thread = "thr-2",
     .sip_initiated = false,
     .last_activity = 6},
};
#define NIMS (sizeof(ims) / sizeof(ims[0]))

struct seen {
	int n;
	int matched[4];
};

static int see_sub(const struct store_sub *s, void *arg)
{
	struct seen *c = arg;
	c->n++;
	for (size_t i = 0; i < NSUBS; i++) {
		const struct store_sub *w = &subs[i];
		if (s->dir == w->dir && eq(s->watcher, w->watcher) &&
		    eq(s->presentity, w->presentity) && eq(s->phase, w->phase) &&
		    s->retries == w->retries && eq(s->peer, w->peer) &&
		    eq(s->call_id, w->call_id) && eq(s->local_tag, w->local_tag) &&
		    eq(s->remote_tag, w->remote_tag) && s->local_cseq == w->local_cseq &&
		    s->remote_cseq == w->remote_cseq &&
		    eq(s->remote_target, w->remote_target) &&
		    eq(s->route_set, w->route_set) && s->expires_at == w->expires_at &&
		    s->refresh_at == w->refresh_at)
			c->matched[i]++;
	}
	return 0;
}

static int see_pres(const struct store_pres *p, void *arg)
{
	struct seen *c = arg;
	c->n++;
	for (size_t i = 0; i < NPRES; i++) {
		const struct store_pres *w = &pres[i];
		if (eq(p->entity, w->entity) && eq(p->resource, w->resource) &&
		    p->open == w->open && eq(p->activity, w->activity) &&
		    eq(p->note, w->note) && p->priority == w->priority &&
		    p->device == w->device && p->updated == w->updated)
			c->matched[i]++;
	}
	return 0;
}

static int see_im(const struct store_im *im, void *arg)
{
	struct seen *c = arg;
	c->n++;
	for (size_t i = 0; i < NIMS; i++) {
		const struct store_im *w = &ims[i];
		if (eq(im->call_id, w->call_id) && eq(im->local_tag, w->local_tag) &&
		    eq(im->remote_tag, w->remote_tag) && eq(im->sip_uri, w->sip_uri) &&
		    eq(im->jid, w->jid) && eq(im->thread, w->thread) &&
		    im->sip_initiated == w->sip_initiated &&
		    im->local_cseq == w->local_cseq &&
		    eq(im->remote_target, w->remote_target) &&
		    eq(im->route_set, w->route_set) &&
		    im->last_activity == w->last_activity)
			c->matched[i]++;
	}
	return 0;
}

static void expect_all(struct store *st, int nsub, int npres, int nim)
{
	struct seen c = {0};
	assert_int_equal(store_sub_each(st, see_sub, &c), 0);
	assert_int_equal(c.n, nsub);
	for (int i = 0; i < nsub; i++)
		if (c.matched[i] != 1)
			fail_msg("subscription %d came back %d times", i, c.matched[i]);
	c = (struct seen){0};
	assert_int_equal(store_pres_each(st, see_pres, &c), 0);
	assert_int_equal(c.n, npres);
	for (int i = 0; i < npres; i++)
		if (c.matched[i] != 1)
			fail_msg("presence %d came back %d times", i, c.matched[i]);
	c = (struct seen){0};
	assert_int_equal(store_im_each(st, see_im, &c), 0);
	assert_int_equal(c.n, nim);
	for (int i = 0; i < nim; i++)
		if (c.matched[i] != 1)
			fail_msg("IM session %d came back %d times", i, c.matched[i]);
}

/* ---- both backends: the same round trip -------------------------------------------- */

static const struct backend {
	const char *name;
	bool del_knows_absent; /* SQLite answers -ENOENT; PostgreSQL's delete is queued */
} backends[] = {
    {"sqlite", true},
    {"postgresql", false},
};

static void open_backend(struct fx *f, const struct backend *b)
{
	if (strcmp(b->name, "sqlite") == 0) {
		assert_int_equal(store_open(&f->st, sqlite_path, STORE_SYNC_NORMAL, NULL),
		                 0);
		store_set_events(f->st, on_event, f);
	} else {
		fx_open(f);
	}
	assert_string_equal(store_backend(f->st), b->name);
}

/* Every field of every record kind, NULLs included, survives a close and a
 * reopen; replacing by key keeps one row; deletes remove. */
static void test_round_trip(void **state)
{
	struct fx *f = *state;
	strcpy(sqlite_dir, "/tmp/pbstorepgXXXXXX");
	assert_non_null(mkdtemp(sqlite_dir));
	snprintf(sqlite_path, sizeof(sqlite_path), "%s/state.db", sqlite_dir);
	for (size_t b = 0; b < sizeof(backends) / sizeof(backends[0]); b++) {
		const struct backend *be = &backends[b];
		open_backend(f, be);
		for (size_t i = 0; i < NSUBS; i++)
			assert_int_equal(store_sub_put(f->st, &subs[i]), 0);
		assert_int_equal(store_sub_put(f->st, &subs[0]), 0);
		for (size_t i = 0; i < NPRES; i++)
			assert_int_equal(store_pres_put(f->st, &pres[i]), 0);
		for (size_t i = 0; i < NIMS; i++)
			assert_int_equal(store_im_put(f->st, &ims[i]), 0);
		if (!drive(f, settled, 5000))
			fail_msg("%s: writes not durable: %s", be->name,
			         store_errmsg(f->st));
		store_close(f->st);
		f->st = NULL;
		open_backend(f, be);
		expect_all(f->st, NSUBS, NPRES, NIMS);
		assert_int_equal(
		    store_sub_del(f->st, 1, "bob@xmpp.test", "sip:alice@sip.test"), 0);
		assert_int_equal(store_pres_del(f->st, "bob@xmpp.test", ""), 0);
		assert_int_equal(store_im_del(f->st, "im-2"), 0);
		if (be->del_knows_absent)
			assert_int_equal(store_im_del(f->st, "im-2"), -ENOENT);
		drive(f, settled, 5000);
		struct seen c = {0};
		assert_int_equal(store_sub_each(f->st, see_sub, &c), 0);
		assert_int_equal(c.n, 2);
		assert_int_equal(c.matched[1], 0);
		c = (struct seen){0};
		assert_int_equal(store_pres_each(f->st, see_pres, &c), 0);
		assert_int_equal(c.n, 1);
		assert_int_equal(c.matched[0], 1);
		c = (struct seen){0};
		assert_int_equal(store_im_each(f->st, see_im, &c), 0);
		assert_int_equal(c.n, 1);
		assert_int_equal(c.matched[0], 1);
		/* SQLite's writes are durable at once: no sequence, no event. */
		if (strcmp(be->name, "sqlite") == 0) {
			assert_int_equal(store_pending(f->st), 0);
			assert_int_equal(f->n[STORE_EV_DURABLE], 0);
		} else {
			assert_true(f->n[STORE_EV_DURABLE] > 0);
		}
		store_close(f->st);
		f->st = NULL;
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", sqlite_dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- durability ------------------------------------------------------------- */

static bool durable2(struct fx *f)
{
	return f->n[STORE_EV_DURABLE] >= 2;
}

/* A write is pending with its sequence until its batch commits; a write made
 * while a batch is in flight goes in the next batch, sent without another
 * flush call. */
static void test_pending_then_durable(void **state)
{
	struct fx *f = *state;
	fx_open(f);
	assert_int_equal(store_pending(f->st), 0);
	assert_int_equal(store_sub_put(f->st, &subs[0]), 0);
	uint64_t s1 = store_pending(f->st);
	assert_true(s1 > 0);
	assert_string_equal(sql_val(adm, "SELECT count(*) FROM pb_sub"), "0");
	assert_int_equal(store_flush(f->st), 0);
	assert_int_equal(store_sub_put(f->st, &subs[1]), 0);
	uint64_t s2 = store_pending(f->st);
	assert_true(s2 > s1);
	/* Run the loop only: the second batch must follow the first by itself. */
	uint64_t end = loop_clock_ms() + 5000;
	while (f->n[STORE_EV_DURABLE] < 2 && loop_clock_ms() < end)
		loop_run_once(f->l, 20);
	assert_true(durable2(f));
	assert_int_equal(f->last[STORE_EV_DURABLE], s2);
	assert_int_equal(store_pending(f->st), 0);
	assert_string_equal(f->order, "DD");
	assert_string_equal(sql_val(adm, "SELECT count(*) FROM pb_sub"), "2");
}

/* 1000 writes make one transaction (one xmin on every row); writes made while
 * it is in flight make the next one; writes of one key coalesce. */
static void test_batching(void **state)
{
	struct fx *f = *state;
	char w[64];
	fx_open(f);
	for (int i = 0; i < 1000; i++) {
		snprintf(w, sizeof(w), "sip:user%d@sip.test", i);
		struct store_sub s = {
		    .watcher = w, .presentity = "b@x.test", .phase = "p"};
		assert_int_equal(store_sub_put(f->st, &s), 0);
	}
	assert_int_equal(store_flush(f->st), 0);
	for (int i = 1000; i < 1500; i++) {
		snprintf(w, sizeof(w), "sip:user%d@sip.test", i);
		struct store_sub s = {
		    .watcher = w, .presentity = "b@x.test", .phase = "p"};
		assert_int_equal(store_sub_put(f->st, &s), 0);
	}
	for (uint32_t r = 0; r < 100; r++) { /* one key, 100 times: the last stays */
		struct store_sub s = {.watcher = "sip:same@x.test",
		                      .presentity = "b@x.test",
		                      .phase = "p",
		                      .retries = r};
		assert_int_equal(store_sub_put(f->st, &s), 0);
	}
	assert_int_equal(store_pending(f->st), 1600);
	if (!drive(f, settled, 10000))
		fail_msg("not durable: %s", store_errmsg(f->st));
	assert_int_equal(f->n[STORE_EV_DURABLE], 2);
	assert_int_equal(f->last[STORE_EV_DURABLE], 1600);
	assert_int_equal(sql_long(adm, "SELECT count(*) FROM pb_sub"), 1501);
	assert_int_equal(sql_long(adm, "SELECT count(DISTINCT xmin::text) FROM pb_sub"),
	                 2);
	assert_int_equal(sql_long(adm, "SELECT count(DISTINCT xmin::text) FROM pb_sub"
	                               " WHERE watcher ~ '^sip:user[0-9]{1,3}@'"),
	                 1);
	assert_string_equal(
	    sql_val(adm, "SELECT retries FROM pb_sub WHERE watcher = 'sip:same@x.test'"),
	    "99");
}

/* store_close() sends what is queued and waits for it; a new store reads it
 * all back. store_begin/commit group without a transaction of their own. */
static void test_close_flushes(void **state)
{
	struct fx *f = *state;
	fx_open(f);
	assert_int_equal(store_commit(f->st), -EINVAL);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_begin(f->st), -EBUSY);
	for (size_t i = 0; i < NSUBS; i++)
		assert_int_equal(store_sub_put(f->st, &subs[i]), 0);
	assert_int_equal(store_flush(f->st), 0); /* grouped: held back */
	loop_run_once(f->l, 50);
	assert_int_equal(store_commit(f->st), 0);
	assert_string_equal(sql_val(adm, "SELECT count(*) FROM pb_sub"), "0");
	for (size_t i = 0; i < NPRES; i++)
		assert_int_equal(store_pres_put(f->st, &pres[i]), 0);
	for (size_t i = 0; i < NIMS; i++)
		assert_int_equal(store_im_put(f->st, &ims[i]), 0);
	store_close(f->st); /* without a turn of the loop */
	f->st = NULL;
	fx_open(f);
	expect_all(f->st, NSUBS, NPRES, NIMS);
}

/* A write the database refuses for its data (retries beyond int) is dropped
 * alone; the others of its batch land, and the store goes on. */
static void test_bad_write_dropped(void **state)
{
	struct fx *f = *state;
	fx_open(f);
	struct store_sub bad = {.watcher = "sip:bad@x.test",
	                        .presentity = "b@x.test",
	                        .phase = "p",
	                        .retries = 4000000000u};
	assert_int_equal(store_sub_put(f->st, &subs[0]), 0);
	assert_int_equal(store_sub_put(f->st, &bad), 0);
	assert_int_equal(store_sub_put(f->st, &subs[1]), 0);
	if (!drive(f, settled, 5000))
		fail_msg("wedged: %s", store_errmsg(f->st));
	assert_non_null(strstr(store_errmsg(f->st), "out of range"));
	assert_string_equal(sql_val(adm,
	                            "SELECT string_agg(watcher, ',' ORDER BY watcher)"
	                            " FROM pb_sub"),
	                    "bob@xmpp.test,sip:alice@sip.test");
	assert_int_equal(store_sub_put(f->st, &subs[2]), 0);
	assert_true(drive(f, settled, 5000));
	assert_string_equal(sql_val(adm, "SELECT count(*) FROM pb_sub"), "3");
}

/* A failure that is not the data's (here a lock not granted in time) keeps
 * the batch: it goes again until it lands. */
static void test_transient_failure_retried(void **state)
{
	struct fx *f = *state;
	fx_open(f); /* the schema */
	store_close(f->st);
	f->st = NULL;
	sql_ok(adm,
	       "DO $$BEGIN EXECUTE format('ALTER DATABASE %I SET lock_timeout = 100',"
	       " current_database()); END$$");
	fx_open(f);
	PGconn *locker = adm_connect();
	sql_ok(locker, "BEGIN; LOCK TABLE pb_sub IN ACCESS EXCLUSIVE MODE");
	assert_int_equal(store_sub_put(f->st, &subs[0]), 0);
	store_flush(f->st);
	uint64_t end = loop_clock_ms() + 600;
	while (loop_clock_ms() < end)
		loop_run_once(f->l, 20);
	assert_true(store_pending(f->st) > 0);
	assert_non_null(strstr(store_errmsg(f->st), "55P03"));
	sql_ok(locker, "ROLLBACK");
	PQfinish(locker);
	if (!drive(f, settled, 5000))
		fail_msg("not sent again: %s", store_errmsg(f->st));
	assert_string_equal(sql_val(adm, "SELECT count(*) FROM pb_sub"), "1");
	assert_int_equal(f->n[STORE_EV_FENCED] + f->n[STORE_EV_DOWN], 0);
}

/* Past 262144 queued writes a new key is refused (-EAGAIN); a queued key is
 * still replaced. */
static void test_queue_cap(void **state)
{
	struct fx *f = *state;
	char k[32];
	fx_open(f);
	for (int i = 0; i < 262144; i++) {
		snprintf(k, sizeof(k), "e%d", i);
		if (store_pres_del(f->st, k, "") != 0)
			fail_msg("write %d refused", i);
	}
	assert_int_equal(store_pres_del(f->st, "one-more", ""), -EAGAIN);
	assert_non_null(strstr(store_errmsg(f->st), "wait for the database"));
	assert_int_equal(store_pres_del(f->st, "e5", ""), 0);
	assert_int_equal(store_pending(f->st), 262145);
	/* Fenced, so that closing drops the lot rather than deleting nothing. */
	store_set_owner(f->st, "nobody", 7);
	store_close(f->st);
	f->st = NULL;
}

/* ---- the pool lease ------------------------------------------------------------------
 */

/* A node's writes land while it holds the lease; once another node took the
 * lease over, its next batch is refused whole (PB001) and dropped. */
static void test_fencing(void **state)
{
	struct fx *f = *state;
	fx_open(f);
	long e = atol(sql_val(adm, "SELECT epoch FROM pb_acquire('a', 60000)"));
	assert_int_equal(e, 1);
	store_set_owner(f->st, "a", e);
	assert_int_equal(store_sub_put(f->st, &subs[0]), 0);
	assert_int_equal(store_im_put(f->st, &ims[0]), 0);
	assert_true(drive(f, settled, 5000));
	assert_string_equal(sql_val(adm, "SELECT owner FROM pb_sub"), "a");
	assert_string_equal(sql_val(adm, "SELECT owner FROM pb_im"), "a");
	/* Node a stalls; its lease runs out; b takes over. */
	sql_ok(adm, "UPDATE pb_lease SET until = clock_timestamp() - interval '1 s'");
	assert_string_equal(
	    sql_val(adm, "SELECT format('%%s/%%s/%%s/%%s', epoch, previous, subs, ims)"
	                 " FROM pb_acquire('b', 60000)"),
	    "2/a/1/1");
	assert_int_equal(store_sub_put(f->st, &subs[1]), 0);
	assert_int_equal(
	    store_sub_del(f->st, subs[0].dir, subs[0].watcher, subs[0].presentity), 0);
	uint64_t seq = store_pending(f->st);
	if (!drive(f, fenced, 5000))
		fail_msg("not fenced: %s", store_errmsg(f->st));
	assert_int_equal(f->last[STORE_EV_FENCED], seq);
	assert_non_null(strstr(store_errmsg(f->st), "node a"));
	assert_string_equal(sql_val(adm, "SELECT string_agg(watcher || '=' || owner, ',')"
	                                 " FROM pb_sub"),
	                    "sip:alice@sip.test=b");
	/* A fenced store still reads (a node that rejoins and later takes the
	 * lease again loads the rows through it): the refused batch's aborted
	 * transaction does not stand in the way. */
	struct seen c = {0};
	assert_int_equal(store_sub_each(f->st, see_sub, &c), 0);
	assert_int_equal(c.n, 1);
	/* ... and raises the CSeq ceilings the way a takeover's state_open does */
	char sum0[32];
	snprintf(sum0, sizeof(sum0), "%s",
	         sql_val(adm, "SELECT sum(local_cseq) FROM pb_sub"));
	assert_int_equal(store_sub_raise_cseq(f->st, 1100), 0);
	char want[32];
	snprintf(want, sizeof(want), "%lld", atoll(sum0) + 1100);
	assert_string_equal(sql_val(adm, "SELECT sum(local_cseq) FROM pb_sub"), want);
	/* Still fenced for the next batch; with b's token the store writes again. */
	assert_int_equal(store_sub_put(f->st, &subs[2]), 0);
	assert_true(drive(f, fenced, 5000));
	assert_true(f->n[STORE_EV_FENCED] >= 1);
	int before = f->n[STORE_EV_FENCED];
	store_set_owner(f->st, "b", e + 1);
	assert_int_equal(store_sub_put(f->st, &subs[2]), 0);
	assert_true(drive(f, settled, 5000));
	assert_int_equal(f->n[STORE_EV_FENCED], before);
	assert_string_equal(sql_val(adm, "SELECT count(*) FROM pb_sub WHERE owner = 'b'"),
	                    "2");
}

static bool back_and_durable(struct fx *f)
{
	return f->n[STORE_EV_UP] > 0 && store_pending(f->st) == 0;
}

/* The store's connection is killed between writes and again while a batch
 * waits on a lock: it tells DOWN then UP, and the writes land. */
static void test_reconnect(void **state)
{
	struct fx *f = *state;
	fx_open(f);
	assert_int_equal(store_sub_put(f->st, &subs[0]), 0);
	assert_true(drive(f, settled, 5000));
	assert_string_equal(sql_val(adm, "SELECT count(pg_terminate_backend(pid)) FROM"
	                                 " pg_stat_activity WHERE application_name ="
	                                 " 'presbridge'"),
	                    "1");
	assert_int_equal(store_sub_put(f->st, &subs[1]), 0);
	if (!drive(f, back_and_durable, 10000))
		fail_msg("not back: %s (events %s)", store_errmsg(f->st), f->order);
	assert_int_equal(f->n[STORE_EV_DOWN], 1);
	assert_int_equal(f->n[STORE_EV_UP], 1);
	assert_non_null(strchr(f->order, 'd'));
	assert_true(strchr(f->order, 'd') < strchr(f->order, 'U'));
	assert_string_equal(sql_val(adm, "SELECT count(*) FROM pb_sub"), "2");

	/* A batch in flight when the connection goes is sent again. */
	PGconn *locker = adm_connect();
	sql_ok(locker, "BEGIN; LOCK TABLE pb_sub IN ACCESS EXCLUSIVE MODE");
	assert_int_equal(store_sub_put(f->st, &subs[2]), 0);
	store_flush(f->st);
	for (int i = 0; i < 20; i++)
		loop_run_once(f->l, 10);
	assert_true(store_pending(f->st) > 0); /* waits on the lock */
	sql_val(adm, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	             " WHERE application_name = 'presbridge'");
	sql_ok(locker, "ROLLBACK");
	PQfinish(locker);
	memset(f->n, 0, sizeof(f->n));
	if (!drive(f, back_and_durable, 10000))
		fail_msg("not back: %s (events %s)", store_errmsg(f->st), f->order);
	assert_int_equal(f->n[STORE_EV_DOWN], 1);
	assert_string_equal(sql_val(adm, "SELECT count(*) FROM pb_sub"), "3");
}

/* A write transaction under way (its pb_fence done) holds a takeover off until
 * it ends; renewing is not held up by it. */
static void test_fence_holds_off_takeover(void **state)
{
	struct fx *f = *state;
	fx_open(f);
	sql_ok(adm, "SELECT * FROM pb_acquire('a', 60000)");
	PGconn *w = adm_connect();
	sql_ok(w, "BEGIN; SELECT pb_fence('a', 1)");
	sql_ok(adm, "SET statement_timeout = '2s'");
	assert_string_equal(sql_val(adm, "SELECT pb_renew('a', 1, 60000)"), "t");
	sql_ok(adm, "UPDATE pb_lease SET until = clock_timestamp() - interval '1 s'");
	PGconn *b = adm_connect();
	assert_int_equal(PQsendQuery(b, "SELECT epoch FROM pb_acquire('b', 60000)"), 1);
	nanosleep(&(struct timespec){.tv_nsec = 300 * 1000 * 1000}, NULL);
	assert_int_equal(PQconsumeInput(b), 1);
	assert_int_equal(PQisBusy(b), 1); /* waits for a's transaction */
	sql_ok(w, "COMMIT");
	PGresult *r = PQgetResult(b);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(r), 1);
	assert_string_equal(PQgetvalue(r, 0, 0), "2");
	PQclear(r);
	while ((r = PQgetResult(b)))
		PQclear(r);
	r = PQexec(w, "SELECT pb_fence('a', 1)");
	assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "PB001");
	PQclear(r);
	sql_ok(adm, "RESET statement_timeout");
	PQfinish(b);
	PQfinish(w);
}

/* pb_acquire: of two nodes asking at once exactly one gets a row; it moves
 * every row to itself and says how many and from whom. */
static void test_acquire_once(void **state)
{
	struct fx *f = *state;
	fx_open(f); /* creates the schema */
	sql_ok(adm,
	       "INSERT INTO pb_sub (dir, watcher, presentity, phase, owner) VALUES"
	       " (0, 'w1', 'p', 'x', 'old'), (0, 'w2', 'p', 'x', 'old'),"
	       " (1, 'w3', 'p', 'x', '');"
	       "INSERT INTO pb_im (call_id, sip_uri, jid, thread, sip_initiated,"
	       " last_activity, owner) VALUES ('c1', 's', 'j', 't', true, 0, 'old')");
	for (int round = 0; round < 5; round++) {
		PGconn *c[2] = {adm_connect(), adm_connect()};
		char sql[2][128];
		sql_ok(adm, "UPDATE pb_lease SET until = '-infinity'");
		for (int i = 0; i < 2; i++) {
			snprintf(sql[i], sizeof(sql[i]),
			         "SELECT epoch, previous, subs, ims FROM "
			         "pb_acquire('n%d', 60000)",
			         i);
			assert_int_equal(PQsendQuery(c[i], sql[i]), 1);
		}
		int winners = 0, winner = -1;
		for (int i = 0; i < 2; i++) {
			PGresult *r = PQgetResult(c[i]);
			assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
			if (PQntuples(r) == 1) {
				winners++;
				winner = i;
				if (round == 0) {
					assert_string_equal(PQgetvalue(r, 0, 0), "1");
					assert_true(PQgetisnull(r, 0, 1));
					assert_string_equal(PQgetvalue(r, 0, 2), "3");
					assert_string_equal(PQgetvalue(r, 0, 3), "1");
				}
			}
			PQclear(r);
			while ((r = PQgetResult(c[i])))
				PQclear(r);
			PQfinish(c[i]);
		}
		if (winners != 1)
			fail_msg("round %d: %d nodes took the lease", round, winners);
		char owner[16];
		snprintf(owner, sizeof(owner), "n%d", winner);
		assert_string_equal(sql_val(adm, "SELECT holder FROM pb_lease"), owner);
		assert_int_equal(atol(sql_val(adm, "SELECT epoch FROM pb_lease")),
		                 round + 1);
		assert_string_equal(sql_val(adm,
		                            "SELECT string_agg(DISTINCT owner, ',') FROM"
		                            " (SELECT owner FROM pb_sub UNION ALL SELECT "
		                            "owner FROM pb_im) o"),
		                    owner);
		assert_string_equal(
		    sql_val(adm, "SELECT role FROM pb_node WHERE name = '%s'", owner),
		    "active");
	}
	/* Held and valid: nobody else gets it, and nothing moves. */
	const char *holder = sql_val(adm, "SELECT holder FROM pb_lease");
	char other[8];
	snprintf(other, sizeof(other), "%s", strcmp(holder, "n0") == 0 ? "n1" : "n0");
	assert_string_equal(
	    sql_val(adm, "SELECT count(*) FROM pb_acquire('%s', 60000)", other), "0");
	assert_string_equal(
	    sql_val(adm, "SELECT count(*) FROM pb_sub WHERE owner = '%s'", other), "0");
	/* Taken again by the node that holds every row: nothing to move. */
	sql_ok(adm, "UPDATE pb_lease SET until = '-infinity'");
	char own[8];
	snprintf(own, sizeof(own), "%s", sql_val(adm, "SELECT holder FROM pb_lease"));
	assert_string_equal(sql_val(adm,
	                            "SELECT format('%%s/%%s/%%s', previous, subs, ims)"
	                            " FROM pb_acquire('%s', 60000)",
	                            own),
	                    strcmp(own, "n0") == 0 ? "n0/0/0" : "n1/0/0");
}

/* pb_renew, pb_release, pb_fence and pb_seen: the lease row is set up, the call
 * made, and its answer and the row after it checked. */
static const struct lease_case {
	const char *holder;
	int epoch;
	const char *until; /* SQL expression */
	const char *call;
	const char *answer; /* the call's value, "PB001" for that error */
	const char *after;  /* SQL: true when the lease row is as expected */
} lease_cases[] = {
    {"a", 3, "clock_timestamp() + interval '1 s'", "SELECT pb_renew('a', 3, 60000)", "t",
     "SELECT until > clock_timestamp() + interval '50 s' FROM pb_lease"},
    {"a", 3, "clock_timestamp() + interval '1 s'", "SELECT pb_renew('a', 2, 60000)", "f",
     "SELECT until < clock_timestamp() + interval '2 s' FROM pb_lease"},
    {"a", 3, "clock_timestamp() + interval '1 s'", "SELECT pb_renew('b', 3, 60000)", "f",
     "SELECT until < clock_timestamp() + interval '2 s' FROM pb_lease"},
    {"a", 3, "clock_timestamp() - interval '1 ms'", "SELECT pb_renew('a', 3, 60000)", "f",
     "SELECT until < clock_timestamp() FROM pb_lease"},
    {"a", 3, "'-infinity'", "SELECT pb_renew('a', 3, 60000)", "f",
     "SELECT until = '-infinity' FROM pb_lease"},
    {"a", 3, "clock_timestamp() + interval '9 s'", "SELECT pb_release('a', 3)", "",
     "SELECT until = '-infinity' AND holder = 'a' AND epoch = 3 FROM pb_lease"},
    {"a", 3, "clock_timestamp() + interval '9 s'", "SELECT pb_release('a', 2)", "",
     "SELECT until > clock_timestamp() FROM pb_lease"},
    {"a", 3, "clock_timestamp() + interval '9 s'", "SELECT pb_release('b', 3)", "",
     "SELECT until > clock_timestamp() FROM pb_lease"},
    {"a", 3, "clock_timestamp() + interval '9 s'", "SELECT pb_fence('a', 3)", "",
     "SELECT true"},
    {"a", 3, "clock_timestamp() + interval '9 s'", "SELECT pb_fence('a', 2)", "PB001",
     "SELECT true"},
    {"a", 3, "clock_timestamp() + interval '9 s'", "SELECT pb_fence('a', 4)", "PB001",
     "SELECT true"},
    {"a", 3, "clock_timestamp() + interval '9 s'", "SELECT pb_fence('b', 3)", "PB001",
     "SELECT true"},
    {"a", 3, "clock_timestamp() - interval '1 ms'", "SELECT pb_fence('a', 3)", "PB001",
     "SELECT true"},
    {"a", 3, "'-infinity'", "SELECT pb_fence('a', 3)", "PB001", "SELECT true"},
    {NULL, 0, "'-infinity'", "SELECT pb_fence('a', 0)", "PB001", "SELECT true"},
    {"a", 3, "'-infinity'", "SELECT pb_seen('a', '127.0.0.1:5060', 'standby', 3, 3000)",
     "",
     "SELECT count(*) = 1 FROM pb_node WHERE name = 'a' AND role = 'standby' AND"
     " address = '127.0.0.1:5060' AND seen > clock_timestamp() - interval '1 s'"},
};

static void test_lease_rules(void **state)
{
	struct fx *f = *state;
	fx_open(f);
	for (size_t i = 0; i < sizeof(lease_cases) / sizeof(lease_cases[0]); i++) {
		const struct lease_case *c = &lease_cases[i];
		char sql[512];
		snprintf(sql, sizeof(sql),
		         "UPDATE pb_lease SET holder = %s%s%s, epoch = %d, until = %s",
		         c->holder ? "'" : "", c->holder ? c->holder : "NULL",
		         c->holder ? "'" : "", c->epoch, c->until);
		sql_ok(adm, sql);
		PGresult *r = PQexec(adm, c->call);
		const char *got;
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			got = PQgetvalue(r, 0, 0);
		else
			got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (!got || strcmp(got, c->answer) != 0)
			fail_msg("case %zu (%s): %s, want %s", i, c->call,
			         got ? got : "(null)", c->answer);
		if (strcmp(c->answer, "PB001") == 0 &&
		    !strstr(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), "node "))
			fail_msg("case %zu: the refusal does not name the node", i);
		PQclear(r);
		if (strcmp(sql_val(adm, "%s", c->after), "t") != 0)
			fail_msg("case %zu (%s): afterwards not %s", i, c->call,
			         c->after);
	}
	/* pb_seen keeps started while the node keeps reporting. */
	const char *s1 = sql_val(adm, "SELECT started FROM pb_node WHERE name = 'a'");
	char started[64];
	snprintf(started, sizeof(started), "%s", s1);
	sql_ok(adm, "SELECT pb_seen('a', '127.0.0.1:5060', 'active', 4, 3000)");
	assert_string_equal(sql_val(adm, "SELECT started FROM pb_node WHERE name = 'a'"),
	                    started);
	assert_string_equal(sql_val(adm, "SELECT role FROM pb_node WHERE name = 'a'"),
	                    "active");
}

/* ---- opening -------------------------------------------------------------------------
 */

static void test_newer_schema_refused(void **state)
{
	struct fx *f = *state;
	const char *why = NULL;
	struct store *st = NULL;
	fx_open(f);
	store_close(f->st);
	f->st = NULL;
	char version[16];
	snprintf(version, sizeof(version), "%s",
	         sql_val(adm, "SELECT value FROM pb_meta WHERE key = 'schema'"));
	assert_true(atoi(version) >= 1);
	sql_ok(adm, "UPDATE pb_meta SET value = '999' WHERE key = 'schema'");
	assert_int_equal(store_open_pg(&st, f->l, conninfo, &why), -EPROTO);
	assert_null(st);
	assert_non_null(why);
	assert_non_null(strstr(why, "newer presbridge"));
	assert_non_null(strstr(why, "999"));
	/* The refusal changed nothing. */
	assert_string_equal(
	    sql_val(adm, "SELECT value FROM pb_meta WHERE key = 'schema'"), "999");
}

/* Nodes starting together on an empty database: each opens, the schema is
 * created once (the advisory lock), the lease row is one. */
static void test_concurrent_first_start(void **state)
{
	(void)state;
	pid_t pids[4];
	for (int i = 0; i < 4; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct loop *l;
			struct store *st;
			const char *why = NULL;
			if (loop_new(&l) != 0)
				_exit(2);
			int e = store_open_pg(&st, l, conninfo, &why);
			if (e) {
				fprintf(stderr, "node %d: %d %s\n", i, e, why ? why : "");
				_exit(1);
			}
			store_close(st);
			loop_free(l);
			_exit(0);
		}
	}
	for (int i = 0; i < 4; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("node %d could not open the store (status %d)", i,
			         status);
	}
	assert_string_equal(
	    sql_val(adm, "SELECT value FROM pb_meta WHERE key = 'schema'"), "1");
	assert_string_equal(sql_val(adm, "SELECT count(*) FROM pb_lease"), "1");
}

/* A second store opening the existing schema leaves it as it is. */
static void test_schema_kept(void **state)
{
	struct fx *f = *state;
	fx_open(f);
	assert_int_equal(store_sub_put(f->st, &subs[0]), 0);
	store_close(f->st);
	f->st = NULL;
	fx_open(f);
	assert_string_equal(sql_val(adm, "SELECT count(*) FROM pb_lease"), "1");
	assert_string_equal(sql_val(adm, "SELECT count(*) FROM pb_sub"), "1");
}

static const struct {
	const char *conninfo;
	const char *why; /* in the reason */
} bad_conninfos[] = {
    {"host=127.0.0.1 port=1 dbname=presbridge connect_timeout=2", "connect"},
    {"nonsense=1", "invalid connection option"},
    {"postgresql://[", "IPv6 host address"},
};

static void test_bad_conninfo(void **state)
{
	struct fx *f = *state;
	for (size_t i = 0; i < sizeof(bad_conninfos) / sizeof(bad_conninfos[0]); i++) {
		const char *why = NULL;
		struct store *st = NULL;
		assert_int_equal(
		    store_open_pg(&st, f->l, bad_conninfos[i].conninfo, &why), -EIO);
		assert_null(st);
		if (!why || !strstr(why, bad_conninfos[i].why))
			fail_msg("%s: reason \"%s\" lacks \"%s\"",
			         bad_conninfos[i].conninfo, why ? why : "(null)",
			         bad_conninfos[i].why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pending_then_durable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batching, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_flushes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_write_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_transient_failure_retried, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_queue_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fencing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fence_holds_off_takeover, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_acquire_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lease_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schema_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_first_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_conninfo, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

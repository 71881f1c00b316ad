#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "presbridge/store.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/pbstoreXXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/state.db", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

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
     .local_cseq = 3,
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
     .call_id = NULL,
     .local_tag = NULL,
     .remote_tag = NULL,
     .remote_target = NULL,
     .route_set = NULL,
     .expires_at = 0,
     .refresh_at = 1764000060000},
    {.dir = 0,
     .watcher = "sip:\xc3\xa9lodie@sip.test",
     .presentity = "o'neil@xmpp.test",
     .phase = "sw-dormant",
     .peer = NULL},
};

struct collect {
	int n;
	int matched[8];
};

static int match_sub(const struct store_sub *s, void *arg)
{
	struct collect *c = arg;
	c->n++;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
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

/* Every field, NULLs included, survives a close and reopen of the file. */
static void test_sub_round_trip(void **state)
{
	(void)state;
	struct store *st;
	struct collect c = {0};
	assert_int_equal(store_open(&st, path, STORE_SYNC_NORMAL, NULL), 0);
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		assert_int_equal(store_sub_put(st, &subs[i]), 0);
	/* Replacing by key keeps one row. */
	assert_int_equal(store_sub_put(st, &subs[0]), 0);
	store_close(st);
	assert_int_equal(store_open(&st, path, STORE_SYNC_NORMAL, NULL), 0);
	assert_int_equal(store_sub_each(st, match_sub, &c), 0);
	assert_int_equal(c.n, 3);
	for (size_t i = 0; i < 3; i++)
		if (c.matched[i] != 1)
			fail_msg("subscription %zu came back %d times", i, c.matched[i]);
	assert_int_equal(store_sub_del(st, 1, "bob@xmpp.test", "sip:alice@sip.test"), 0);
	assert_int_equal(store_sub_del(st, 1, "bob@xmpp.test", "sip:alice@sip.test"),
	                 -ENOENT);
	c = (struct collect){0};
	assert_int_equal(store_sub_each(st, match_sub, &c), 0);
	assert_int_equal(c.n, 2);
	store_close(st);
}

static int stop_at_first(const struct store_sub *s, void *arg)
{
	(void)s;
	(*(int *)arg)++;
	return 42;
}

static void test_each_stops(void **state)
{
	(void)state;
	struct store *st;
	int calls = 0;
	assert_int_equal(store_open(&st, ":memory:", STORE_SYNC_NORMAL, NULL), 0);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(store_sub_put(st, &subs[i]), 0);
	assert_int_equal(store_sub_each(st, stop_at_first, &calls), 42);
	assert_int_equal(calls, 1);
	/* The statement was reset: a second walk starts over. */
	calls = 0;
	assert_int_equal(store_sub_each(st, stop_at_first, &calls), 42);
	assert_int_equal(calls, 1);
	store_close(st);
}

/* store_sub_raise_cseq: every saved ceiling up by delta, in one statement
 * (state.h, STATE_CSEQ_HEADROOM), nothing else changed. */
static int sum_cseq(const struct store_sub *s, void *arg)
{
	*(uint64_t *)arg += s->local_cseq;
	return 0;
}

static void test_raise_cseq(void **state)
{
	(void)state;
	struct store *st;
	assert_int_equal(store_open(&st, ":memory:", STORE_SYNC_NORMAL, NULL), 0);
	uint64_t before = 0, after = 0;
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(store_sub_put(st, &subs[i]), 0);
		before += subs[i].local_cseq;
	}
	assert_int_equal(store_sub_raise_cseq(st, 1100), 0);
	assert_int_equal(store_sub_each(st, sum_cseq, &after), 0);
	assert_int_equal(after, before + 3 * 1100);
	store_close(st);
}

static const struct store_sub bad_subs[] = {
    {.dir = 0, .watcher = NULL, .presentity = "b@x.test", .phase = "sw-active"},
    {.dir = 0, .watcher = "a@x.test", .presentity = NULL, .phase = "sw-active"},
    {.dir = 0, .watcher = "a@x.test", .presentity = "b@x.test", .phase = NULL},
};

static void test_refuses_incomplete(void **state)
{
	(void)state;
	struct store *st;
	assert_int_equal(store_open(&st, ":memory:", STORE_SYNC_NORMAL, NULL), 0);
	for (size_t i = 0; i < sizeof(bad_subs) / sizeof(bad_subs[0]); i++)
		if (store_sub_put(st, &bad_subs[i]) != -EINVAL)
			fail_msg("incomplete subscription %zu accepted", i);
	struct store_pres p = {
	    .entity = "a@x.test", .resource = NULL, .activity = "away"};
	assert_int_equal(store_pres_put(st, &p), -EINVAL);
	struct store_im im = {
	    .call_id = "c", .sip_uri = "sip:a@b.test", .jid = NULL, .thread = "t"};
	assert_int_equal(store_im_put(st, &im), -EINVAL);
	store_close(st);
}

static int count_pres(const struct store_pres *p, void *arg)
{
	int *n = arg;
	if (strcmp(p->entity, "bob@xmpp.test") == 0 &&
	    strcmp(p->resource, "laptop") == 0) {
		assert_true(p->open);
		assert_string_equal(p->activity, "away");
		assert_string_equal(p->note, "at lunch <back 2pm> & \"soon\"");
		assert_int_equal(p->priority, -5);
	}
	(*n)++;
	return 0;
}

static int check_im(const struct store_im *im, void *arg)
{
	(void)arg;
	assert_string_equal(im->call_id, "im-1");
	assert_string_equal(im->thread, "thr-1");
	assert_true(im->sip_initiated);
	assert_null(im->route_set);
	assert_int_equal(im->local_cseq, 9);
	return 0;
}

static void test_pres_and_im(void **state)
{
	(void)state;
	struct store *st;
	int n = 0;
	assert_int_equal(store_open(&st, path, STORE_SYNC_FULL, NULL), 0);
	struct store_pres p = {.entity = "bob@xmpp.test",
	                       .resource = "laptop",
	                       .open = true,
	                       .activity = "away",
	                       .note = "at lunch <back 2pm> & \"soon\"",
	                       .priority = -5,
	                       .updated = 1};
	assert_int_equal(store_pres_put(st, &p), 0);
	p.resource = "";
	p.note = NULL; /* stored as "" */
	assert_int_equal(store_pres_put(st, &p), 0);
	struct store_im im = {.call_id = "im-1",
	                      .local_tag = "a",
	                      .remote_tag = "b",
	                      .sip_uri = "sip:alice@sip.test",
	                      .jid = "bob@xmpp.test",
	                      .thread = "thr-1",
	                      .sip_initiated = true,
	                      .local_cseq = 9,
	                      .last_activity = 5};
	assert_int_equal(store_im_put(st, &im), 0);
	store_close(st);
	assert_int_equal(store_open(&st, path, STORE_SYNC_NORMAL, NULL), 0);
	assert_int_equal(store_pres_each(st, count_pres, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_im_each(st, check_im, NULL), 0);
	assert_int_equal(store_pres_del(st, "bob@xmpp.test", ""), 0);
	assert_int_equal(store_pres_del(st, "bob@xmpp.test", ""), -ENOENT);
	assert_int_equal(store_im_del(st, "im-1"), 0);
	assert_int_equal(store_im_del(st, "im-1"), -ENOENT);
	store_close(st);
}

static int count_any(const struct store_sub *s, void *arg)
{
	(void)s;
	(*(int *)arg)++;
	return 0;
}

static int count_pres_any(const struct store_pres *p, void *arg)
{
	(void)p;
	(*(int *)arg)++;
	return 0;
}

static int count_im_any(const struct store_im *im, void *arg)
{
	(void)im;
	(*(int *)arg)++;
	return 0;
}

/* store_keep_memory (the fuzz targets): an in-memory store comes back empty
 * and usable, the same one; a file store is never kept; off lets go of it. */
static void test_keep_memory(void **state)
{
	(void)state;
	struct store *st, *first;
	struct store_pres p = {.entity = "bob@xmpp.test",
	                       .resource = "",
	                       .open = true,
	                       .activity = "away",
	                       .updated = 1};
	struct store_im im = {.call_id = "im-1",
	                      .sip_uri = "sip:alice@sip.test",
	                      .jid = "bob@xmpp.test",
	                      .thread = "t",
	                      .last_activity = 1};
	store_keep_memory(true);
	for (int round = 0; round < 3; round++) {
		int n = 0;
		assert_int_equal(store_open(&st, ":memory:", STORE_SYNC_NORMAL, NULL), 0);
		if (round == 0)
			first = st;
		else
			assert_ptr_equal(st, first);
		assert_int_equal(store_sub_each(st, count_any, &n), 0);
		assert_int_equal(store_pres_each(st, count_pres_any, &n), 0);
		assert_int_equal(store_im_each(st, count_im_any, &n), 0);
		if (n != 0)
			fail_msg("round %d: %d rows left from the last round", round, n);
		for (size_t i = 0; i < 3; i++)
			assert_int_equal(store_sub_put(st, &subs[i]), 0);
		assert_int_equal(store_pres_put(st, &p), 0); /* open batch at close */
		assert_int_equal(store_im_put(st, &im), 0);
		assert_int_equal(store_pres_put(st, &p), 0);
		store_close(st);
	}
	assert_int_equal(store_open(&st, path, STORE_SYNC_NORMAL, NULL), 0);
	assert_ptr_not_equal(st, first);
	assert_int_equal(store_sub_put(st, &subs[0]), 0);
	store_close(st);
	assert_int_equal(store_open(&st, path, STORE_SYNC_NORMAL, NULL), 0);
	int n = 0;
	assert_int_equal(store_sub_each(st, count_any, &n), 0);
	assert_int_equal(n, 1); /* a file's rows stay */
	store_close(st);
	store_keep_memory(false); /* closes the kept one (LeakSanitizer checks) */
}

/* What the bridge acknowledged before kill -9 is there after it: a child writes
 * rows one transaction each, tells the parent how many, and kills itself. */
static void test_survives_sigkill(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *st;
		char w[64];
		close(fds[0]);
		if (store_open(&st, path, STORE_SYNC_NORMAL, NULL) != 0)
			_exit(2);
		for (int i = 0; i < 500; i++) {
			snprintf(w, sizeof(w), "sip:user%d@sip.test", i);
			struct store_sub s = {.dir = 0,
			                      .watcher = w,
			                      .presentity = "bob@xmpp.test",
			                      .phase = "sw-pending"};
			if (store_sub_put(st, &s) != 0)
				_exit(3);
			if (write(fds[1], "x", 1) != 1) /* "acknowledged" */
				_exit(4);
		}
		raise(SIGKILL);
		_exit(5);
	}
	close(fds[1]);
	int acked = 0;
	char buf[64];
	ssize_t r;
	while ((r = read(fds[0], buf, sizeof(buf))) > 0)
		acked += (int)r;
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(acked, 500);
	struct store *st;
	int n = 0;
	assert_int_equal(store_open(&st, path, STORE_SYNC_NORMAL, NULL), 0);
	assert_int_equal(store_sub_each(st, count_any, &n), 0);
	assert_int_equal(n, acked);
	store_close(st);
}

static void test_newer_schema_refused(void **state)
{
	(void)state;
	sqlite3 *db;
	const char *why = NULL;
	struct store *st = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(&st, path, STORE_SYNC_NORMAL, &why), -EPROTO);
	assert_null(st);
	assert_non_null(strstr(why, "newer presbridge"));
}

/* A state file of schema 1 (before pres.device) opens, keeps its rows, reads
 * them as not a device, and stores the flag from then on; restarts across the
 * upgrade keep working. */
static int check_device(const struct store_pres *p, void *arg)
{
	int *seen = arg;
	if (strcmp(p->resource, "old") == 0) {
		assert_false(p->device);
		assert_string_equal(p->activity, "away");
		seen[0]++;
	} else if (strcmp(p->resource, "desk") == 0) {
		assert_true(p->device);
		seen[1]++;
	}
	return 0;
}

static void test_schema1_upgrade(void **state)
{
	(void)state;
	sqlite3 *db;
	struct store *st = NULL;
	int seen[2] = {0, 0};
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(
	        db,
	        "CREATE TABLE sub (dir INTEGER NOT NULL, watcher TEXT NOT NULL,"
	        " presentity TEXT NOT NULL, phase TEXT NOT NULL, retries INTEGER"
	        " NOT NULL DEFAULT 0, peer TEXT, call_id TEXT, local_tag TEXT,"
	        " remote_tag TEXT, local_cseq INTEGER NOT NULL DEFAULT 0,"
	        " remote_cseq INTEGER NOT NULL DEFAULT 0, remote_target TEXT,"
	        " route_set TEXT, expires_at INTEGER NOT NULL DEFAULT 0,"
	        " refresh_at INTEGER NOT NULL DEFAULT 0,"
	        " PRIMARY KEY (dir, watcher, presentity)) WITHOUT ROWID;"
	        "CREATE TABLE pres (entity TEXT NOT NULL, resource TEXT NOT NULL,"
	        " open INTEGER NOT NULL, activity TEXT NOT NULL, note TEXT NOT"
	        " NULL DEFAULT '', priority INTEGER NOT NULL, updated INTEGER NOT"
	        " NULL, PRIMARY KEY (entity, resource)) WITHOUT ROWID;"
	        "CREATE TABLE im (call_id TEXT PRIMARY KEY, local_tag TEXT,"
	        " remote_tag TEXT, sip_uri TEXT NOT NULL, jid TEXT NOT NULL,"
	        " thread TEXT NOT NULL, sip_initiated INTEGER NOT NULL,"
	        " local_cseq INTEGER NOT NULL DEFAULT 0, remote_target TEXT,"
	        " route_set TEXT, last_activity INTEGER NOT NULL) WITHOUT ROWID;"
	        "INSERT INTO pres VALUES ('bob@xmpp.test','old',1,'away','',0,1);"
	        "PRAGMA user_version = 1;",
	        NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(&st, path, STORE_SYNC_NORMAL, NULL), 0);
	struct store_pres p = {.entity = "bob@xmpp.test",
	                       .resource = "desk",
	                       .open = true,
	                       .activity = "available",
	                       .note = "",
	                       .device = true,
	                       .updated = 2};
	assert_int_equal(store_pres_put(st, &p), 0);
	store_close(st);
	assert_int_equal(store_open(&st, path, STORE_SYNC_NORMAL, NULL), 0);
	assert_int_equal(store_pres_each(st, check_device, seen), 0);
	assert_int_equal(seen[0], 1);
	assert_int_equal(seen[1], 1);
	store_close(st);
}

static void test_unopenable(void **state)
{
	(void)state;
	const char *why = NULL;
	struct store *st = NULL;
	assert_int_equal(
	    store_open(&st, "/nonexistent-dir/x/state.db", STORE_SYNC_NORMAL, &why),
	    -EIO);
	assert_null(st);
	assert_non_null(why);
}

static void test_transactions(void **state)
{
	(void)state;
	struct store *st;
	assert_int_equal(store_open(&st, ":memory:", STORE_SYNC_NORMAL, NULL), 0);
	assert_int_equal(store_commit(st), -EINVAL);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_begin(st), -EBUSY);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(store_sub_put(st, &subs[i]), 0);
	assert_int_equal(store_commit(st), 0);
	int n = 0;
	assert_int_equal(store_sub_each(st, count_any, &n), 0);
	assert_int_equal(n, 3);
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sub_round_trip, setup, teardown),
	    cmocka_unit_test(test_each_stops),
	    cmocka_unit_test(test_raise_cseq),
	    cmocka_unit_test(test_refuses_incomplete),
	    cmocka_unit_test_setup_teardown(test_pres_and_im, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_survives_sigkill, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schema1_upgrade, setup, teardown),
	    cmocka_unit_test(test_unopenable),
	    cmocka_unit_test(test_transactions),
	    cmocka_unit_test_setup_teardown(test_keep_memory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

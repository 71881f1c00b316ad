/*
 * store_sqlite - the store in one SQLite file (or ":memory:"): every write is
 * durable when its call returns, so store_pending() is always 0 and no event
 * is ever raised.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <stdbool.h>
#include <time.h>

#include "presbridge/stats.h"
#include "store_int.h"

/*
 * Schema versions, applied in order inside one transaction each; PRAGMA
 * user_version records how far a file has come. A file from a newer build is
 * refused rather than guessed at.
 */
static const char *const migrations[] = {
    /* 1 */
    "CREATE TABLE sub ("
    " dir INTEGER NOT NULL, watcher TEXT NOT NULL, presentity TEXT NOT NULL,"
    " phase TEXT NOT NULL, retries INTEGER NOT NULL DEFAULT 0, peer TEXT,"
    " call_id TEXT, local_tag TEXT, remote_tag TEXT,"
    " local_cseq INTEGER NOT NULL DEFAULT 0, remote_cseq INTEGER NOT NULL DEFAULT 0,"
    " remote_target TEXT, route_set TEXT,"
    " expires_at INTEGER NOT NULL DEFAULT 0, refresh_at INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (dir, watcher, presentity)) WITHOUT ROWID;"
    "CREATE TABLE pres ("
    " entity TEXT NOT NULL, resource TEXT NOT NULL, open INTEGER NOT NULL,"
    " activity TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', priority INTEGER NOT NULL,"
    " updated INTEGER NOT NULL, PRIMARY KEY (entity, resource)) WITHOUT ROWID;"
    "CREATE TABLE im ("
    " call_id TEXT PRIMARY KEY, local_tag TEXT, remote_tag TEXT, sip_uri TEXT NOT NULL,"
    " jid TEXT NOT NULL, thread TEXT NOT NULL, sip_initiated INTEGER NOT NULL,"
    " local_cseq INTEGER NOT NULL DEFAULT 0, remote_target TEXT, route_set TEXT,"
    " last_activity INTEGER NOT NULL) WITHOUT ROWID;",
    /* 2: whether a cached resource names a device (RFC 7247 section 6.3): an
     * XMPP resource, or a PIDF tuple whose contact is a GRUU. Rows of a
     * version 1 file read as not a device until the next presence replaces
     * them. */
    "ALTER TABLE pres ADD COLUMN device INTEGER NOT NULL DEFAULT 0;",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum stmt {
	ST_SUB_PUT,
	ST_SUB_DEL,
	ST_SUB_ALL,
	ST_PRES_PUT,
	ST_PRES_DEL,
	ST_PRES_ALL,
	ST_IM_PUT,
	ST_IM_DEL,
	ST_IM_ALL,
	ST_BEGIN,
	ST_COMMIT,
	ST_CLEAR_SUB, /* store_keep_memory() */
	ST_CLEAR_PRES,
	ST_CLEAR_IM,
	ST_COUNT
};

static const char *const sql[ST_COUNT] = {
    [ST_SUB_PUT] = "INSERT OR REPLACE INTO sub VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [ST_SUB_DEL] = "DELETE FROM sub WHERE dir = ? AND watcher = ? AND presentity = ?",
    [ST_SUB_ALL] = "SELECT dir, watcher, presentity, phase, retries, peer, call_id,"
                   " local_tag, remote_tag, local_cseq, remote_cseq, remote_target,"
                   " route_set, expires_at, refresh_at FROM sub",
    [ST_PRES_PUT] = "INSERT OR REPLACE INTO pres (entity, resource, open, activity,"
                    " note, priority, updated, device) VALUES (?,?,?,?,?,?,?,?)",
    [ST_PRES_DEL] = "DELETE FROM pres WHERE entity = ? AND resource = ?",
    [ST_PRES_ALL] = "SELECT entity, resource, open, activity, note, priority, updated,"
                    " device FROM pres",
    [ST_IM_PUT] = "INSERT OR REPLACE INTO im VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    [ST_IM_DEL] = "DELETE FROM im WHERE call_id = ?",
    [ST_IM_ALL] = "SELECT call_id, local_tag, remote_tag, sip_uri, jid, thread,"
                  " sip_initiated, local_cseq, remote_target, route_set, last_activity"
                  " FROM im",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_CLEAR_SUB] = "DELETE FROM sub",
    [ST_CLEAR_PRES] = "DELETE FROM pres",
    [ST_CLEAR_IM] = "DELETE FROM im",
};

struct store_sqlite {
	struct store head; /* first: a struct store * is one of these */
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	bool in_tx;
	bool pres_batch; /* the open transaction is presence writes' (store_flush) */
	bool memory;     /* ":memory:" */
};

/* store_keep_memory(): one emptied in-memory store kept for the next open. */
static bool keep_memory;
static struct store_sqlite *kept;

static const struct store_ops sqlite_ops;

static struct store_sqlite *lite(struct store *st)
{
	return (struct store_sqlite *)st;
}

static int exec(struct store_sqlite *st, const char *s)
{
	return sqlite3_exec(st->db, s, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

static int migrate(struct store_sqlite *st, const char **whyp)
{
	sqlite3_stmt *q;
	int version = 0;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(q) == SQLITE_ROW)
		version = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	if (version > SCHEMA_VERSION) {
		*whyp = "the state file was written by a newer presbridge";
		return -EPROTO;
	}
	for (int v = version; v < SCHEMA_VERSION; v++) {
		char pragma[48];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
		if (exec(st, "BEGIN IMMEDIATE") || exec(st, migrations[v]) ||
		    exec(st, pragma) || exec(st, "COMMIT")) {
			*whyp = sqlite3_errmsg(st->db);
			exec(st, "ROLLBACK");
			return -EIO;
		}
	}
	return 0;
}

static void sqlite_close(struct store *base);
static int flush_pres(struct store_sqlite *st);

int store_open(struct store **sp, const char *path, enum store_sync sync,
               const char **whyp)
{
	struct store_sqlite *st;
	int err = -EIO;
	const char *why = "out of memory";

	if (kept && strcmp(path, ":memory:") == 0) {
		*sp = &kept->head;
		kept = NULL;
		return 0;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	store_head_init(&st->head, &sqlite_ops);
	st->memory = strcmp(path, ":memory:") == 0;
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
	                    NULL) != SQLITE_OK) {
		why = st->db ? sqlite3_errmsg(st->db) : "cannot open";
		goto out;
	}
	/* Another process holding the file (a second bridge on the same state) gets a
	 * clear error within a second rather than a hang. */
	sqlite3_busy_timeout(st->db, 1000);
	if (exec(st, "PRAGMA journal_mode = WAL") ||
	    exec(st, sync == STORE_SYNC_FULL ? "PRAGMA synchronous = FULL"
	                                     : "PRAGMA synchronous = NORMAL") ||
	    exec(st, "PRAGMA foreign_keys = OFF")) {
		why = sqlite3_errmsg(st->db);
		goto out;
	}
	err = migrate(st, &why);
	if (err)
		goto out;
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                       &st->st[i], NULL) != SQLITE_OK) {
			why = sqlite3_errmsg(st->db);
			err = -EIO;
			goto out;
		}
	}
	*sp = &st->head;
	return 0;
out:
	if (whyp)
		*whyp = why;
	sqlite_close(&st->head);
	return err;
}

void store_keep_memory(bool on)
{
	keep_memory = on;
	if (!on && kept) {
		struct store_sqlite *st = kept;
		kept = NULL;
		sqlite_close(&st->head);
	}
}

static void sqlite_close(struct store *base)
{
	struct store_sqlite *st = lite(base);

	store_head_clear(base);
	flush_pres(st);
	if (keep_memory && st->memory && !kept && !st->in_tx) {
		bool emptied = true;
		for (int i = 0; i < ST_COUNT; i++)
			sqlite3_reset(st->st[i]);
		for (int i = ST_CLEAR_SUB; i <= ST_CLEAR_IM; i++) {
			emptied = emptied && sqlite3_step(st->st[i]) == SQLITE_DONE;
			sqlite3_reset(st->st[i]);
		}
		if (emptied) {
			kept = st;
			return;
		}
	}
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(st->st[i]);
	sqlite3_close(st->db);
	free(st);
}

static const char *sqlite_errmsg(const struct store *base)
{
	return sqlite3_errmsg(((const struct store_sqlite *)base)->db);
}

/* Bind helpers: NULL text binds SQL NULL, so "no dialog" survives a round trip. */
static void bind_text(sqlite3_stmt *q, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(q, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, i);
}

static const char *col_text(sqlite3_stmt *q, int i)
{
	return (const char *)sqlite3_column_text(q, i);
}

/* Execute q once; a write's time goes to the store-write histogram (stats.h):
 * outside a transaction and for COMMIT it includes the sync to disk. */
static int run(sqlite3_stmt *q)
{
	bool timed = !sqlite3_stmt_readonly(q);
	struct timespec t0, t1;
	if (timed)
		clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = sqlite3_step(q);
	if (timed) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		stats_observe(STATS_H_STORE_WRITE,
		              (double)(t1.tv_sec - t0.tv_sec) +
		                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/*
 * Presence writes (the cache of last-known presence, one per NOTIFY or
 * <presence/>) gather in one transaction until store_flush(): a commit each
 * cost a quarter of the bridge's CPU under presence load. Nothing acknowledged
 * depends on them. Every other write first commits the gathered ones and then
 * runs on its own as before, so a subscription is still on disk before its
 * acknowledgement leaves.
 */
static int flush_pres(struct store_sqlite *st)
{
	if (!st->pres_batch)
		return 0;
	st->pres_batch = false;
	int e = run(st->st[ST_COMMIT]);
	if (e) { /* leave no transaction behind whatever happened */
		exec(st, "ROLLBACK");
	}
	st->in_tx = false;
	return e;
}

static int sqlite_flush(struct store *base)
{
	return flush_pres(lite(base));
}

static void pres_batch_begin(struct store_sqlite *st)
{
	if (!st->in_tx && run(st->st[ST_BEGIN]) == 0)
		st->in_tx = st->pres_batch = true;
}

static int sqlite_begin(struct store *base)
{
	struct store_sqlite *st = lite(base);
	flush_pres(st);
	if (st->in_tx)
		return -EBUSY;
	int e = run(st->st[ST_BEGIN]);
	if (!e)
		st->in_tx = true;
	return e;
}

static int sqlite_commit(struct store *base)
{
	struct store_sqlite *st = lite(base);
	if (!st->in_tx)
		return -EINVAL;
	int e = run(st->st[ST_COMMIT]);
	if (!e)
		st->in_tx = false;
	return e;
}

static int sqlite_sub_put(struct store *base, const struct store_sub *s)
{
	struct store_sqlite *st = lite(base);
	sqlite3_stmt *q = st->st[ST_SUB_PUT];

	flush_pres(st);
	sqlite3_bind_int(q, 1, s->dir);
	bind_text(q, 2, s->watcher);
	bind_text(q, 3, s->presentity);
	bind_text(q, 4, s->phase);
	sqlite3_bind_int64(q, 5, s->retries);
	bind_text(q, 6, s->peer);
	bind_text(q, 7, s->call_id);
	bind_text(q, 8, s->local_tag);
	bind_text(q, 9, s->remote_tag);
	sqlite3_bind_int64(q, 10, s->local_cseq);
	sqlite3_bind_int64(q, 11, s->remote_cseq);
	bind_text(q, 12, s->remote_target);
	bind_text(q, 13, s->route_set);
	sqlite3_bind_int64(q, 14, s->expires_at);
	sqlite3_bind_int64(q, 15, s->refresh_at);
	return run(q);
}

static int sqlite_sub_del(struct store *base, int dir, const char *watcher,
                          const char *presentity)
{
	struct store_sqlite *st = lite(base);
	flush_pres(st);
	sqlite3_stmt *q = st->st[ST_SUB_DEL];
	sqlite3_bind_int(q, 1, dir);
	bind_text(q, 2, watcher);
	bind_text(q, 3, presentity);
	int e = run(q);
	return e ? e : sqlite3_changes(st->db) ? 0 : -ENOENT;
}

static int sqlite_sub_raise_cseq(struct store *base, uint32_t delta)
{
	struct store_sqlite *st = lite(base);
	char q[96];
	flush_pres(st);
	snprintf(q, sizeof(q), "UPDATE sub SET local_cseq = local_cseq + %u", delta);
	return exec(st, q);
}

static int sqlite_sub_each(struct store *base, store_sub_h *h, void *arg)
{
	struct store_sqlite *st = lite(base);
	sqlite3_stmt *q = st->st[ST_SUB_ALL];
	int rc, e = 0;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_sub s = {
		    .dir = sqlite3_column_int(q, 0),
		    .watcher = col_text(q, 1),
		    .presentity = col_text(q, 2),
		    .phase = col_text(q, 3),
		    .retries = (uint32_t)sqlite3_column_int64(q, 4),
		    .peer = col_text(q, 5),
		    .call_id = col_text(q, 6),
		    .local_tag = col_text(q, 7),
		    .remote_tag = col_text(q, 8),
		    .local_cseq = (uint32_t)sqlite3_column_int64(q, 9),
		    .remote_cseq = (uint32_t)sqlite3_column_int64(q, 10),
		    .remote_target = col_text(q, 11),
		    .route_set = col_text(q, 12),
		    .expires_at = sqlite3_column_int64(q, 13),
		    .refresh_at = sqlite3_column_int64(q, 14),
		};
		e = h(&s, arg);
		if (e)
			break;
	}
	if (!e && rc != SQLITE_DONE)
		e = -EIO;
	sqlite3_reset(q);
	return e;
}

static int sqlite_pres_put(struct store *base, const struct store_pres *p)
{
	struct store_sqlite *st = lite(base);
	sqlite3_stmt *q = st->st[ST_PRES_PUT];

	pres_batch_begin(st);
	bind_text(q, 1, p->entity);
	bind_text(q, 2, p->resource);
	sqlite3_bind_int(q, 3, p->open);
	bind_text(q, 4, p->activity);
	bind_text(q, 5, p->note ? p->note : "");
	sqlite3_bind_int(q, 6, p->priority);
	sqlite3_bind_int64(q, 7, p->updated);
	sqlite3_bind_int(q, 8, p->device);
	return run(q);
}

static int sqlite_pres_del(struct store *base, const char *entity, const char *resource)
{
	struct store_sqlite *st = lite(base);
	sqlite3_stmt *q = st->st[ST_PRES_DEL];
	pres_batch_begin(st);
	bind_text(q, 1, entity);
	bind_text(q, 2, resource);
	int e = run(q);
	return e ? e : sqlite3_changes(st->db) ? 0 : -ENOENT;
}

static int sqlite_pres_each(struct store *base, store_pres_h *h, void *arg)
{
	struct store_sqlite *st = lite(base);
	sqlite3_stmt *q = st->st[ST_PRES_ALL];
	int rc, e = 0;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_pres p = {
		    .entity = col_text(q, 0),
		    .resource = col_text(q, 1),
		    .open = sqlite3_column_int(q, 2) != 0,
		    .activity = col_text(q, 3),
		    .note = col_text(q, 4),
		    .priority = sqlite3_column_int(q, 5),
		    .updated = sqlite3_column_int64(q, 6),
		    .device = sqlite3_column_int(q, 7) != 0,
		};
		e = h(&p, arg);
		if (e)
			break;
	}
	if (!e && rc != SQLITE_DONE)
		e = -EIO;
	sqlite3_reset(q);
	return e;
}

static int sqlite_im_put(struct store *base, const struct store_im *im)
{
	struct store_sqlite *st = lite(base);
	sqlite3_stmt *q = st->st[ST_IM_PUT];
	flush_pres(st);
	bind_text(q, 1, im->call_id);
	bind_text(q, 2, im->local_tag);
	bind_text(q, 3, im->remote_tag);
	bind_text(q, 4, im->sip_uri);
	bind_text(q, 5, im->jid);
	bind_text(q, 6, im->thread);
	sqlite3_bind_int(q, 7, im->sip_initiated);
	sqlite3_bind_int64(q, 8, im->local_cseq);
	bind_text(q, 9, im->remote_target);
	bind_text(q, 10, im->route_set);
	sqlite3_bind_int64(q, 11, im->last_activity);
	return run(q);
}

static int sqlite_im_del(struct store *base, const char *call_id)
{
	struct store_sqlite *st = lite(base);
	sqlite3_stmt *q = st->st[ST_IM_DEL];
	flush_pres(st);
	bind_text(q, 1, call_id);
	int e = run(q);
	return e ? e : sqlite3_changes(st->db) ? 0 : -ENOENT;
}

static int sqlite_im_each(struct store *base, store_im_h *h, void *arg)
{
	struct store_sqlite *st = lite(base);
	sqlite3_stmt *q = st->st[ST_IM_ALL];
	int rc, e = 0;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_im im = {
		    .call_id = col_text(q, 0),
		    .local_tag = col_text(q, 1),
		    .remote_tag = col_text(q, 2),
		    .sip_uri = col_text(q, 3),
		    .jid = col_text(q, 4),
		    .thread = col_text(q, 5),
		    .sip_initiated = sqlite3_column_int(q, 6) != 0,
		    .local_cseq = (uint32_t)sqlite3_column_int64(q, 7),
		    .remote_target = col_text(q, 8),
		    .route_set = col_text(q, 9),
		    .last_activity = sqlite3_column_int64(q, 10),
		};
		e = h(&im, arg);
		if (e)
			break;
	}
	if (!e && rc != SQLITE_DONE)
		e = -EIO;
	sqlite3_reset(q);
	return e;
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sqlite_close,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .flush = sqlite_flush,
    .sub_put = sqlite_sub_put,
    .sub_del = sqlite_sub_del,
    .sub_each = sqlite_sub_each,
    .sub_raise_cseq = sqlite_sub_raise_cseq,
    .pres_put = sqlite_pres_put,
    .pres_del = sqlite_pres_del,
    .pres_each = sqlite_pres_each,
    .im_put = sqlite_im_put,
    .im_del = sqlite_im_del,
    .im_each = sqlite_im_each,
    .errmsg = sqlite_errmsg,
};

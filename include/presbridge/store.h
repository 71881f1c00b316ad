/*
 * store - the bridge's state, persisted in SQLite at [bridge] state (the
 * default, src/store/store_sqlite.c) or in PostgreSQL shared by a pool of
 * bridges ([store] backend = postgresql, src/store/store_pg.c). One interface;
 * the backends are files of their own behind src/store/store_int.h.
 *
 * Three tables: bridged subscriptions (both directions, with the SIP dialog that
 * carries them), the last known presence of every bridged entity per resource,
 * and IM sessions. The bridge writes a row before it acknowledges anything to
 * either side, so an acknowledged subscription survives kill -9: the database
 * runs in WAL mode with synchronous=NORMAL, which makes every committed
 * transaction durable against a crash of the process (not of the machine; for
 * that, set [bridge] state_sync = full).
 *
 * Records passed in are borrowed for the call. Records passed to an _each
 * callback are valid only during the callback.
 */
#ifndef PRESBRIDGE_STORE_H
#define PRESBRIDGE_STORE_H

#include <stdbool.h>
#include <stdint.h>

struct store;

enum store_sync {
	STORE_SYNC_NORMAL, /* durable against a process crash */
	STORE_SYNC_FULL,   /* durable against power loss; an fsync per write */
};

struct store_sub {
	int dir;             /* enum sub_dir */
	const char *watcher; /* how the bridge keys it: bare JID or sip: URI */
	const char *presentity;
	const char *phase; /* sub_phase_name(): stored by name, so a reordered enum
	                    * can never reinterpret saved state */
	uint32_t retries;
	const char *peer;    /* [peer NAME] that carries the SIP side, or NULL */
	const char *call_id; /* SIP dialog, or NULL while there is none */
	const char *local_tag;
	const char *remote_tag;
	uint32_t local_cseq;
	uint32_t remote_cseq;
	const char *remote_target; /* Contact of the other side */
	const char *route_set; /* Record-Route values, comma-separated, in use order */
	int64_t expires_at;    /* unix ms; 0 when not running */
	int64_t refresh_at;
};

struct store_pres {
	const char *entity;   /* bare address the cache is for */
	const char *resource; /* XMPP resource, tuple or endpoint id; "" for one */
	bool open;
	const char *activity; /* pres_activity_name() */
	const char *note;
	int priority;
	bool device;     /* resource names a device (pres_entry.device); schema 2 */
	int64_t updated; /* unix ms */
};

struct store_im {
	const char *call_id; /* the SIP dialog of the session */
	const char *local_tag;
	const char *remote_tag;
	const char *sip_uri; /* the SIP party */
	const char *jid;     /* the XMPP party (bare) */
	const char *thread;  /* the XMPP <thread/> */
	bool sip_initiated;
	uint32_t local_cseq;
	const char *remote_target;
	const char *route_set;
	int64_t last_activity; /* unix ms */
};

/*
 * Open (creating if needed) the store at path, or an in-memory one for
 * ":memory:". The folder must exist. *sp: caller-owns (store_close).
 * Returns 0, -EIO with the reason in *whyp (static string) if SQLite refuses
 * the file, -EPROTO if the file holds a newer schema than this build knows.
 */
int store_open(struct store **sp, const char *path, enum store_sync sync,
               const char **whyp);
void store_close(struct store *st);

/*
 * For the fuzz targets, which build a whole bridge per input: with on,
 * store_close() of a ":memory:" store empties its tables and keeps it (schema
 * and prepared statements) for the next store_open(":memory:"), which is most
 * of a bridge's start-up. Off (the default) closes a kept store. Files are
 * never kept.
 */
void store_keep_memory(bool on);

/* Group many writes into one transaction (restore, shutdown). Nesting is an error. */
int store_begin(struct store *st);
int store_commit(struct store *st);
/* Commit the presence writes gathered since the last call (store_pres_put and
 * store_pres_del join one open transaction; every other write commits them
 * first). The bridge calls it once per loop turn; store_close() too. */
int store_flush(struct store *st);

/* Insert or replace the subscription keyed by (dir, watcher, presentity). */
int store_sub_put(struct store *st, const struct store_sub *s);
/* Delete it; -ENOENT if there was none. */
int store_sub_del(struct store *st, int dir, const char *watcher, const char *presentity);
/* Add delta to the saved local CSeq of every subscription, in one statement,
 * durable when it returns (blocking for PostgreSQL: start-up and takeover only).
 * state_open() uses it to give every resumed dialog CSeq headroom at once. */
int store_sub_raise_cseq(struct store *st, uint32_t delta);
typedef int(store_sub_h)(const struct store_sub *s, void *arg);
/* Call h for every subscription; a non-zero return from h stops and is returned. */
int store_sub_each(struct store *st, store_sub_h *h, void *arg);

int store_pres_put(struct store *st, const struct store_pres *p);
int store_pres_del(struct store *st, const char *entity, const char *resource);
typedef int(store_pres_h)(const struct store_pres *p, void *arg);
int store_pres_each(struct store *st, store_pres_h *h, void *arg);

int store_im_put(struct store *st, const struct store_im *im);
int store_im_del(struct store *st, const char *call_id);
typedef int(store_im_h)(const struct store_im *im, void *arg);
int store_im_each(struct store *st, store_im_h *h, void *arg);

/* The backend's words for the last failure, for logs. */
const char *store_errmsg(const struct store *st);

/* ---- PostgreSQL and the pool (issue 18) -------------------------------- */

struct loop;

/*
 * Open a PostgreSQL store: connect (blocking: start-up only), create or migrate
 * the schema (versioned, table pb_meta), then keep the connection on loop l,
 * non-blocking. conninfo is a libpq connection string or URI. Writes are
 * queued and sent once per loop turn (store_flush) as one pipelined
 * transaction; the _each calls are blocking reads (start-up, takeover).
 * Returns 0, -EIO with the reason in *whyp (static or store-owned string: copy
 * it before store_close), -EPROTO for a schema newer than this build.
 */
int store_open_pg(struct store **sp, struct loop *l, const char *conninfo,
                  const char **whyp);

/* "sqlite" or "postgresql". */
const char *store_backend(const struct store *st);

/*
 * Durability of queued writes. SQLite's writes are durable when the call
 * returns (store_pending() is then always 0). PostgreSQL's are durable once
 * their transaction commits: store_pending() returns 0 when every write issued
 * so far is durable, else the sequence number of the last one issued. Output
 * that acknowledges state (a 2xx to SUBSCRIBE, a NOTIFY, a subscribed stanza)
 * may leave once a STORE_EV_DURABLE event reports a sequence >= that number.
 */
uint64_t store_pending(const struct store *st);

enum store_event {
	STORE_EV_DURABLE, /* writes up to seq are committed */
	STORE_EV_DOWN,    /* the connection is lost; the store reconnects and sends
	                   * the writes not yet committed again */
	STORE_EV_UP,      /* connected again */
	STORE_EV_FENCED,  /* a batch was refused: this node no longer holds the
	                   * pool lease of store_set_owner(); queued writes dropped */
};
typedef void(store_event_h)(enum store_event ev, uint64_t seq, void *arg);
/* Register the one event handler (NULL to remove). */
void store_set_events(struct store *st, store_event_h *h, void *arg);

/*
 * The pool's fencing token (PostgreSQL): every later transaction first checks,
 * in the database, that node still holds the pool lease taken with this epoch
 * (function pb_fence) and writes node as the owner of the subscription and IM
 * session rows it writes. node is copied. No-op for SQLite.
 * Epoch 0 (never a valid one: pb_acquire starts at 1) fences the store at once:
 * writes queued and not yet sent are dropped, later ones refused with
 * STORE_EV_FENCED, so nothing a fenced node did lands after it stopped.
 */
void store_set_owner(struct store *st, const char *node, int64_t epoch);

#endif

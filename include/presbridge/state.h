/*
 * state - the bridge's state table: what crosses the bridge right now.
 *
 *   subscriptions  one per (direction, watcher, presentity), indexed by that key,
 *                  by the SIP dialog that carries it, and by presentity (to fan a
 *                  presence change out to every watcher);
 *   presence       the last known presence of every bridged entity, per resource;
 *   IM sessions    one per SIP dialog, also found by XMPP (jid, thread).
 *
 * Every change that either side will be told about is written to the store
 * first (state_*_save), so what was acknowledged survives kill -9. Timers and
 * leg objects (dialogs) are the bridge's: the table only keeps a pointer for them.
 *
 * Strings in records are owned by the table; callers get borrowed pointers valid
 * until the record is changed or removed.
 */
#ifndef PRESBRIDGE_STATE_H
#define PRESBRIDGE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "presbridge/pres.h"
#include "presbridge/store.h"
#include "presbridge/sub.h"

struct state;

struct state_sub {
	struct sub_state st; /* direction, phase, retries */
	char *watcher;
	char *presentity;
	char *peer;
	/* The SIP dialog, NULL while there is none. */
	char *call_id;
	char *local_tag;
	char *remote_tag;
	uint32_t local_cseq;
	uint32_t remote_cseq;
	char *remote_target;
	char *route_set;
	int64_t expires_at; /* unix ms */
	int64_t refresh_at;
	void *rt; /* the bridge's run-time data (timers, leg dialog); not persisted */
	/* private to state.c */
	char *key;
	char *dlg_key;
	size_t by_pres_slot;
};

struct state_res {
	char *resource;
	bool open;
	enum pres_activity activity;
	char *note;
	int priority;
	bool device; /* pres_entry.device */
	int64_t updated;
};

struct state_pres {
	char *entity;
	struct state_res *res;
	size_t nres;
};

struct state_im {
	char *call_id;
	char *local_tag;
	char *remote_tag;
	char *sip_uri;
	char *jid;
	char *thread;
	bool sip_initiated;
	uint32_t local_cseq;
	char *remote_target;
	char *route_set;
	int64_t last_activity;
	void *rt;
	char *thread_key; /* private */
};

struct state_limits {
	size_t max_subs;          /* in all; 0 = no limit */
	size_t max_subs_per_user; /* per watcher; 0 = no limit */
};

/*
 * Every subscription's saved local CSeq is a ceiling on the CSeqs sent in its
 * dialog (bridge_pres.c, reserve_cseq). state_open() raises every saved ceiling
 * by this much, in one statement, before it loads them: a resumed dialog starts
 * at the old ceiling + SIPD_CSEQ_RESUME_GAP (above anything sent, whatever an
 * older build saved) and may send 100 requests before it has to save again,
 * so a restart or takeover of 100,000 dialogs costs one UPDATE, not 100,000
 * writes ahead of its first NOTIFY.
 */
#define STATE_CSEQ_HEADROOM 1100u

/*
 * Open the table over a store (borrowed; must outlive the table) and load
 * everything it holds. Rows the store holds but this build cannot read (an
 * unknown phase name) are skipped and counted in *skippedp. *sp: caller-owns.
 */
int state_open(struct state **sp, struct store *store, size_t *skippedp);
void state_free(struct state *s);

void state_set_limits(struct state *s, const struct state_limits *lim);

/* ---- subscriptions ---- */

struct state_sub *state_sub_get(const struct state *s, enum sub_dir dir,
                                const char *watcher, const char *presentity);

/*
 * A new subscription in phase SUB_IDLE (not yet stored: save it once the
 * transition has decided its first phase). Returns 0, -EEXIST, -EDQUOT when the
 * watcher already has max_subs_per_user, -ENOSPC when the table holds max_subs.
 */
int state_sub_add(struct state *s, enum sub_dir dir, const char *watcher,
                  const char *presentity, struct state_sub **subp);

/* Set (or with call_id NULL, clear) the SIP dialog of sub, re-indexing it. */
int state_sub_set_dialog(struct state *s, struct state_sub *sub, const char *call_id,
                         const char *local_tag, const char *remote_tag);
/* Replace a string field (peer, remote_target, route_set) with a copy of v (NULL ok). */
int state_set_str(char **field, const char *v);

struct state_sub *state_sub_by_dialog(const struct state *s, const char *call_id,
                                      const char *local_tag);

/* Write sub to the store. */
int state_sub_save(struct state *s, const struct state_sub *sub);
/* Remove sub from the table and the store; sub is freed. */
int state_sub_drop(struct state *s, struct state_sub *sub);

/* The subscriptions whose presentity is `presentity` (any direction), and those
 * whose presentity is a full JID of that bare JID (one device): *np entries,
 * borrowed, valid until the table changes. */
struct state_sub *const *state_subs_of(const struct state *s, const char *presentity,
                                       size_t *np);

typedef void(state_sub_h)(struct state_sub *sub, void *arg);
/* Call h for every subscription; h may drop the one it is given. */
void state_sub_each(struct state *s, state_sub_h *h, void *arg);
size_t state_sub_count(const struct state *s);
size_t state_sub_count_of_watcher(const struct state *s, const char *watcher);

/* ---- presence cache ---- */

const struct state_pres *state_pres_get(const struct state *s, const char *entity);

/*
 * Record one resource's presence (an offline entry removes the resource, so the
 * cache holds what is there, not what went away; an entity with no resource left
 * is kept with nres = 0 as "known offline"). Saved to the store.
 */
int state_pres_set(struct state *s, const char *entity, const struct pres_entry *e,
                   int64_t now);

/* Fill p with the cached presence of entity (empty model if unknown). */
void state_pres_model(const struct state *s, const char *entity, struct pres *p);

/* ---- IM sessions ---- */

int state_im_add(struct state *s, const char *call_id, const char *sip_uri,
                 const char *jid, const char *thread, bool sip_initiated,
                 struct state_im **imp);
struct state_im *state_im_by_dialog(const struct state *s, const char *call_id);
struct state_im *state_im_by_thread(const struct state *s, const char *jid,
                                    const char *thread);
int state_im_save(struct state *s, const struct state_im *im);
int state_im_drop(struct state *s, struct state_im *im);
size_t state_im_count(const struct state *s);
/* Call h for every IM session; h must not add or drop sessions. */
void state_im_each(struct state *s, void (*h)(struct state_im *im, void *arg), void *arg);

#endif

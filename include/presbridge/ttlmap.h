/*
 * ttlmap - a bounded table of expiring entries keyed by a string, for what the
 * bridge remembers about traffic it cannot control the amount of (messages
 * whose XMPP error must still reach their SIP sender, SIP users who refused
 * typing notifications).
 *
 * Every entry lives for the table's one TTL, so insertion order is expiry
 * order: the oldest entry is expired first, and evicted first when the table is
 * full. Memory is bounded by max entries whatever the traffic; time by the TTL.
 * The caller passes the clock (milliseconds), so the rules are testable.
 */
#ifndef PRESBRIDGE_TTLMAP_H
#define PRESBRIDGE_TTLMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "presbridge/hmap.h"

struct ttlmap_ent;

struct ttlmap {
	struct hmap map;
	struct ttlmap_ent *head, *tail; /* oldest first */
	size_t n, max;
	int64_t ttl_ms;
	void (*free_val)(void *); /* releases a value; NULL: values are not owned */
};

/* An empty table of at most max (>= 1) entries living ttl_ms each. */
void ttlmap_init(struct ttlmap *m, size_t max, int64_t ttl_ms, void (*free_val)(void *),
                 uint64_t k0, uint64_t k1);

/*
 * Remember val under key (copied) at time now, replacing what key held; expired
 * entries go first, then the oldest while the table is full. val is owned by
 * the table from now on, also on failure (released then). Returns 0 or -ENOMEM.
 */
int ttlmap_put(struct ttlmap *m, const char *key, void *val, int64_t now);

/* Is key remembered at time now? */
bool ttlmap_has(struct ttlmap *m, const char *key, int64_t now);

/* Take key's value out (caller-owns it), or NULL when absent or expired. */
void *ttlmap_take(struct ttlmap *m, const char *key, int64_t now);

/* Release every entry (and value) and the table. */
void ttlmap_free(struct ttlmap *m);

#endif

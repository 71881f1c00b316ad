/*
 * pool - one node of a pool of bridges sharing their state in PostgreSQL
 * (issue 18; docs/design-notes.md, "Pool").
 *
 * One node is active, the others stand by. The active node holds the lease, one
 * row (pb_lease) it renews every lease/4 from a connection of its own; a
 * standby tries pb_acquire() every POOL_POLL_MS and so takes over at most
 * lease + POOL_POLL_MS after the active node's last renewal. pb_acquire takes
 * the lease with a new epoch and makes this node the owner of every row, in one
 * transaction under the lease row's lock: exactly one node wins.
 *
 * Fencing: the active node counts, on its monotonic clock, from the moment it
 * SENT the last renewal the database confirmed; when lease - lease/4 has passed
 * without another confirmation it stops serving (handlers.fenced) before the
 * lease can have expired in the database, whose clock the others go by. The
 * store's transactions carry (node, epoch) to pb_fence as the database-side
 * guard. A fenced node is a standby again.
 */
#ifndef PRESBRIDGE_POOL_H
#define PRESBRIDGE_POOL_H

#include <stdbool.h>
#include <stdint.h>

struct conf;
struct loop;
struct sbuf;
struct pool;

#define POOL_POLL_MS 500u

struct pool_takeover {
	int64_t epoch;
	const char *previous; /* the node that held the lease before; "" if none */
	uint64_t subs, ims;   /* rows whose owner changed to this node */
};

struct pool_handlers {
	/* This node took the lease: start serving. */
	void (*active)(const struct pool_takeover *t, void *arg);
	/* Stop serving now, without a word to anyone: why in plain words. */
	void (*fenced)(const char *why, void *arg);
};

/* Timings of a lease of lease_s seconds (table-driven in test_pool). */
struct pool_timing {
	uint32_t lease_ms; /* written to the database */
	uint32_t renew_ms; /* the active node renews this often */
	uint32_t fence_ms; /* ...and fences itself this long after the last
	                    * confirmed renewal was sent */
	uint32_t poll_ms;  /* a standby tries to take the lease this often */
	uint32_t query_ms; /* a query unanswered this long: the connection is reset */
	uint32_t take_ms;  /* the lease pb_acquire writes: long enough for the
	                    * restore that follows (blocking, 100,000 rows take
	                    * seconds), renewed to lease_ms as soon as it is done */
};
void pool_timing(uint32_t lease_s, struct pool_timing *t);

/*
 * Connect (non-blocking, on l) to cf's [store] conninfo as node cf->pool_node;
 * address names this node in pb_node (its first SIP listener). Strings are
 * copied; h and arg borrowed until pool_free. Returns 0 or -errno.
 */
int pool_new(struct pool **pp, struct loop *l, const struct conf *cf, const char *address,
             const struct pool_handlers *h, void *arg);
void pool_free(struct pool *p);

bool pool_is_active(const struct pool *p);
int64_t pool_epoch(const struct pool *p);
const char *pool_node(const struct pool *p);
/* The node holding the lease as last seen ("" if unknown). */
const char *pool_holder(const struct pool *p);
/* Other nodes seen alive (renewing or polling) within the lease. */
unsigned pool_peers_alive(const struct pool *p);

/* Fence now (the store reported a refused write); handlers.fenced runs. */
void pool_fence(struct pool *p, const char *why);

/* Stopping: give the lease up (if held) so a standby takes over at once, and
 * mark this node stopped in pb_node (blocking, at most ~2 s). Returns 0, or
 * -errno if the database could not be told of the release. */
int pool_release(struct pool *p);

/* One line (or a JSON object) for presbridgectl status and STATUS=. */
void pool_describe(const struct pool *p, struct sbuf *sb, bool json);

#endif

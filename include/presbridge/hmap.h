/*
 * hmap - a string-keyed hash map for the state table's indexes.
 *
 * Keys are chosen by peers (addresses, Call-IDs, tags), so the hash is SipHash-2-4
 * under a per-map random key: nobody outside can make entries collide on purpose.
 * Open addressing with linear probing; the map never copies keys or values: a key
 * is borrowed from the value it indexes and must live as long as the entry.
 */
#ifndef PRESBRIDGE_HMAP_H
#define PRESBRIDGE_HMAP_H

#include <stddef.h>
#include <stdint.h>

/* 24 bytes: the bridge keeps several maps of one slot pair per subscription. */
struct hmap_slot {
	const char *key; /* borrowed; NULL: empty; HMAP_TOMB: deleted */
	void *val;
	uint32_t hash; /* the low bits of the key's SipHash: enough to index and to
	                * skip most unequal keys */
	uint32_t klen;
};

struct hmap {
	struct hmap_slot *s;
	size_t cap;      /* power of two, or 0 */
	size_t n;        /* live entries */
	size_t used;     /* live + deleted slots */
	uint64_t k0, k1; /* SipHash key */
};

/* An empty map keyed with k0/k1 (pass random bits; tests may pass constants). */
void hmap_init(struct hmap *m, uint64_t k0, uint64_t k1);
/* Release the table; values are the caller's. */
void hmap_free(struct hmap *m);

/* The value under key, or NULL. */
void *hmap_get(const struct hmap *m, const char *key, size_t klen);

/* Insert val under key (borrowed). Returns 0, -EEXIST if the key is present
 * (nothing changes), -E2BIG for a key of 4 GiB or more, or -ENOMEM. */
int hmap_put(struct hmap *m, const char *key, size_t klen, void *val);

/* Remove key; returns its value, or NULL if absent. */
void *hmap_del(struct hmap *m, const char *key, size_t klen);

/* Iterate: start with *pos = 0; returns the next value or NULL at the end. The map
 * must not change during iteration, except by hmap_del of the value just returned. */
void *hmap_next(const struct hmap *m, size_t *pos);

uint64_t hmap_siphash(uint64_t k0, uint64_t k1, const void *data, size_t len);

#endif

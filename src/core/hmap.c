#include "presbridge/hmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char tomb_marker;
#define HMAP_TOMB (&tomb_marker)

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                         \
	do {                                                                             \
		v0 += v1;                                                                \
		v1 = ROTL(v1, 13);                                                       \
		v1 ^= v0;                                                                \
		v0 = ROTL(v0, 32);                                                       \
		v2 += v3;                                                                \
		v3 = ROTL(v3, 16);                                                       \
		v3 ^= v2;                                                                \
		v0 += v3;                                                                \
		v3 = ROTL(v3, 21);                                                       \
		v3 ^= v0;                                                                \
		v2 += v1;                                                                \
		v1 = ROTL(v1, 17);                                                       \
		v1 ^= v2;                                                                \
		v2 = ROTL(v2, 32);                                                       \
	} while (0)

/* SipHash-2-4 (Aumasson and Bernstein, 2012), little-endian message words. */
uint64_t hmap_siphash(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
	uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
	uint64_t v3 = k1 ^ 0x7465646279746573ULL;
	uint64_t b = (uint64_t)len << 56;
	size_t whole = len & ~(size_t)7;

	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = 0;
		for (int k = 7; k >= 0; k--)
			m = (m << 8) | p[i + (size_t)k];
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t i = 0; i < (len & 7); i++)
		b |= (uint64_t)p[whole + i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

void hmap_init(struct hmap *m, uint64_t k0, uint64_t k1)
{
	memset(m, 0, sizeof(*m));
	m->k0 = k0;
	m->k1 = k1;
}

void hmap_free(struct hmap *m)
{
	free(m->s);
	m->s = NULL;
	m->cap = m->n = m->used = 0;
}

static struct hmap_slot *find(const struct hmap *m, uint64_t h64, const char *key,
                              size_t klen)
{
	uint32_t h = (uint32_t)h64;
	if (!m->cap || klen > UINT32_MAX)
		return NULL;
	for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct hmap_slot *s = &m->s[i];
		if (!s->key)
			return NULL;
		if (s->key != HMAP_TOMB && s->hash == h && s->klen == klen &&
		    memcmp(s->key, key, klen) == 0)
			return s;
	}
}

static int grow(struct hmap *m)
{
	/* Keep the table at most half full, live and deleted slots alike, so probes
	 * stay short and always end at an empty slot. */
	size_t cap = m->cap ? m->cap : 16;
	while (m->n * 2 + 2 > cap)
		cap *= 2;
	struct hmap_slot *s = calloc(cap, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		const struct hmap_slot *o = &m->s[i];
		if (!o->key || o->key == HMAP_TOMB)
			continue;
		size_t j = o->hash & (cap - 1);
		while (s[j].key)
			j = (j + 1) & (cap - 1);
		s[j] = *o;
	}
	free(m->s);
	m->s = s;
	m->cap = cap;
	m->used = m->n;
	return 0;
}

void *hmap_get(const struct hmap *m, const char *key, size_t klen)
{
	struct hmap_slot *s = find(m, hmap_siphash(m->k0, m->k1, key, klen), key, klen);
	return s ? s->val : NULL;
}

int hmap_put(struct hmap *m, const char *key, size_t klen, void *val)
{
	uint64_t h = hmap_siphash(m->k0, m->k1, key, klen);

	if (klen > UINT32_MAX)
		return -E2BIG;
	if (find(m, h, key, klen))
		return -EEXIST;
	if ((m->used + 1) * 2 > m->cap) {
		int e = grow(m);
		if (e)
			return e;
	}
	size_t i = h & (m->cap - 1);
	while (m->s[i].key && m->s[i].key != HMAP_TOMB)
		i = (i + 1) & (m->cap - 1);
	if (!m->s[i].key)
		m->used++;
	m->s[i] = (struct hmap_slot){key, val, (uint32_t)h, (uint32_t)klen};
	m->n++;
	return 0;
}

void *hmap_del(struct hmap *m, const char *key, size_t klen)
{
	struct hmap_slot *s = find(m, hmap_siphash(m->k0, m->k1, key, klen), key, klen);
	if (!s)
		return NULL;
	void *val = s->val;
	s->key = HMAP_TOMB;
	s->val = NULL;
	m->n--;
	return val;
}

void *hmap_next(const struct hmap *m, size_t *pos)
{
	while (*pos < m->cap) {
		const struct hmap_slot *s = &m->s[(*pos)++];
		if (s->key && s->key != HMAP_TOMB)
			return s->val;
	}
	return NULL;
}

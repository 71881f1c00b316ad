#include "presbridge/ttlmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct ttlmap_ent {
	char *key;
	int64_t expires;
	void *val;
	struct ttlmap_ent *prev, *next;
};

void ttlmap_init(struct ttlmap *m, size_t max, int64_t ttl_ms, void (*free_val)(void *),
                 uint64_t k0, uint64_t k1)
{
	memset(m, 0, sizeof(*m));
	hmap_init(&m->map, k0, k1);
	m->max = max ? max : 1;
	m->ttl_ms = ttl_ms;
	m->free_val = free_val;
}

static void unlink_ent(struct ttlmap *m, struct ttlmap_ent *e)
{
	hmap_del(&m->map, e->key, strlen(e->key));
	if (e->prev)
		e->prev->next = e->next;
	else
		m->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		m->tail = e->prev;
	m->n--;
	free(e->key);
}

static void drop(struct ttlmap *m, struct ttlmap_ent *e)
{
	unlink_ent(m, e);
	if (e->val && m->free_val)
		m->free_val(e->val);
	free(e);
}

static void expire(struct ttlmap *m, int64_t now)
{
	while (m->head && m->head->expires <= now)
		drop(m, m->head);
}

int ttlmap_put(struct ttlmap *m, const char *key, void *val, int64_t now)
{
	expire(m, now);
	struct ttlmap_ent *e = hmap_get(&m->map, key, strlen(key));
	if (e)
		drop(m, e);
	while (m->n >= m->max && m->head)
		drop(m, m->head);
	e = calloc(1, sizeof(*e));
	if (e)
		e->key = strdup(key);
	if (!e || !e->key || hmap_put(&m->map, e->key, strlen(e->key), e) != 0) {
		if (e)
			free(e->key);
		free(e);
		if (val && m->free_val)
			m->free_val(val);
		return -ENOMEM;
	}
	e->val = val;
	e->expires = now + m->ttl_ms;
	e->prev = m->tail;
	if (m->tail)
		m->tail->next = e;
	else
		m->head = e;
	m->tail = e;
	m->n++;
	return 0;
}

bool ttlmap_has(struct ttlmap *m, const char *key, int64_t now)
{
	expire(m, now);
	return hmap_get(&m->map, key, strlen(key)) != NULL;
}

void *ttlmap_take(struct ttlmap *m, const char *key, int64_t now)
{
	expire(m, now);
	struct ttlmap_ent *e = hmap_get(&m->map, key, strlen(key));
	if (!e)
		return NULL;
	void *val = e->val;
	unlink_ent(m, e);
	free(e);
	return val;
}

void ttlmap_free(struct ttlmap *m)
{
	while (m->head)
		drop(m, m->head);
	hmap_free(&m->map);
}

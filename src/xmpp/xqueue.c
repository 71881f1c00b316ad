#include "presbridge/xqueue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int xqueue_init(struct xqueue *q, size_t max, size_t max_bytes)
{
	memset(q, 0, sizeof(*q));
	if (max == 0 || max_bytes == 0)
		return -EINVAL;
	q->v = calloc(max, sizeof(*q->v));
	q->len = calloc(max, sizeof(*q->len));
	if (!q->v || !q->len) {
		free(q->v);
		free(q->len);
		memset(q, 0, sizeof(*q));
		return -ENOMEM;
	}
	q->cap = max;
	q->max_bytes = max_bytes;
	return 0;
}

void xqueue_free(struct xqueue *q)
{
	if (!q->v)
		return;
	xqueue_clear(q);
	free(q->v);
	free(q->len);
	memset(q, 0, sizeof(*q));
}

int xqueue_push(struct xqueue *q, char *s, size_t len)
{
	if (q->n == q->cap || len > q->max_bytes - q->bytes)
		return -ENOBUFS;
	size_t i = (q->head + q->n) % q->cap;
	q->v[i] = s;
	q->len[i] = len;
	q->n++;
	q->bytes += len;
	return 0;
}

char *xqueue_pop(struct xqueue *q, size_t *lenp)
{
	if (q->n == 0)
		return NULL;
	char *s = q->v[q->head];
	size_t len = q->len[q->head];
	q->v[q->head] = NULL;
	q->head = (q->head + 1) % q->cap;
	q->n--;
	q->bytes -= len;
	if (lenp)
		*lenp = len;
	return s;
}

size_t xqueue_count(const struct xqueue *q)
{
	return q->n;
}

size_t xqueue_bytes(const struct xqueue *q)
{
	return q->bytes;
}

size_t xqueue_clear(struct xqueue *q)
{
	size_t n = q->n;
	char *s;
	while ((s = xqueue_pop(q, NULL)))
		free(s);
	q->head = 0;
	return n;
}

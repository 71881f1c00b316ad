/*
 * xqueue - the bounded queue of serialized stanzas that wait while the component
 * link is down.
 *
 * Bounded by count and by bytes: a link down for an hour must not grow the
 * process without limit. When full, the new stanza is refused with -ENOBUFS so
 * the caller (the bridge) sees it and can answer its own side with an error; the
 * stanzas already accepted are kept, in order. The link's bounds are
 * XLINK_QUEUE_MAX and XLINK_QUEUE_BYTES (xlink.h).
 */
#ifndef PRESBRIDGE_XQUEUE_H
#define PRESBRIDGE_XQUEUE_H

#include <stddef.h>

struct xqueue {
	char **v;     /* ring of owned strings */
	size_t *len;  /* their lengths */
	size_t cap;   /* slots (max stanzas) */
	size_t head;  /* index of the oldest */
	size_t n;     /* stanzas queued */
	size_t bytes; /* sum of their lengths */
	size_t max_bytes;
};

/* Prepare q for at most max stanzas and max_bytes bytes. Returns 0, -EINVAL
 * (max 0) or -ENOMEM. */
int xqueue_init(struct xqueue *q, size_t max, size_t max_bytes);

/* Free every queued string and the ring. q may be zeroed or already freed. */
void xqueue_free(struct xqueue *q);

/*
 * Append s (len bytes, NUL-terminated). On success the queue owns s. Returns 0,
 * or -ENOBUFS when the queue holds max stanzas or s would pass max_bytes (s stays
 * the caller's).
 */
int xqueue_push(struct xqueue *q, char *s, size_t len);

/* Remove the oldest string: caller-owns (free()); *lenp gets its length. NULL when
 * empty. */
char *xqueue_pop(struct xqueue *q, size_t *lenp);

size_t xqueue_count(const struct xqueue *q);
size_t xqueue_bytes(const struct xqueue *q);

/* Drop everything; returns how many stanzas were dropped. */
size_t xqueue_clear(struct xqueue *q);

#endif

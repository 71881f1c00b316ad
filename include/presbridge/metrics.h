/*
 * metrics - the Prometheus endpoint: GET /metrics answered in the text
 * exposition format (version 0.0.4) by libmicrohttpd running on the event loop
 * (its epoll descriptor is one of the loop's; MHD_run from there, no thread).
 * Other paths get 404, other methods 405. Off unless [metrics] listen is set.
 */
#ifndef PRESBRIDGE_METRICS_H
#define PRESBRIDGE_METRICS_H

struct conf_hostport;
struct loop;
struct metrics;
struct sbuf;

/* Append the exposition to sb (called per scrape). */
typedef void(metrics_render_h)(void *arg, struct sbuf *sb);

/* Listen at addr (borrowed for the call). *mp: caller-owns (metrics_free).
 * Returns 0 or -errno. */
int metrics_new(struct metrics **mp, struct loop *l, const struct conf_hostport *addr,
                metrics_render_h *h, void *arg);
void metrics_free(struct metrics *m);

#endif

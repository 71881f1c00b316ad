/*
 * ctl - the control socket presbridgectl talks to: a Unix stream socket on the
 * event loop.
 *
 * Protocol (one request per connection): the client sends one line of at most
 * CTL_LINE_MAX bytes, words separated by blanks, the first word optionally
 * "--json", then the command and its arguments. The daemon answers with one line
 * holding the exit status the client should end with (0 done, 1 refused or
 * failed, 2 usage), then the output, and closes. A client that sends no line
 * within CTL_TIMEOUT_MS, or does not read its answer in that time, is dropped:
 * the daemon never waits for a client.
 */
#ifndef PRESBRIDGE_CTL_H
#define PRESBRIDGE_CTL_H

#include <stdbool.h>

struct loop;
struct sbuf;
struct ctl;

#define CTL_LINE_MAX   4096
#define CTL_TIMEOUT_MS 5000
#define CTL_CLIENTS    16

/* Run one command; write its output to out; return the exit status (0/1/2). */
typedef int(ctl_cmd_h)(void *arg, int argc, char **argv, bool json, struct sbuf *out);

/*
 * Listen at path (an existing socket file there is replaced, any other file is
 * an error), mode 0660, group `presbridge` when it exists. *cp: caller-owns
 * (ctl_free, which removes the file). Returns 0 or -errno.
 */
int ctl_new(struct ctl **cp, struct loop *l, const char *path, ctl_cmd_h *h, void *arg);
void ctl_free(struct ctl *c);

#endif

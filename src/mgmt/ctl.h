/* ctl.h: sipd's control socket: a Unix stream socket on which the local administrator's tool (sipctl) asks
 * a running sipd what only its memory holds, and changes it. One request per connection: a line of words
 * ("show blocks"); the answer is "OK" or "ERR why" on its first line, then the command's lines (fields
 * separated by tabs), then the end of the connection. Only the user sipd runs as, and root, are answered. */
#ifndef SIPD_MGMT_CTL_H
#define SIPD_MGMT_CTL_H

#include <stddef.h>
#include <stdio.h>

#define CTL_LINE_MAX 1024 /* a request's line, its newline included */
#define CTL_WORDS_MAX 16

/* Runs one request, on the control socket's own thread: writes its answer's lines to out and returns 0,
 * or writes why it failed (one line, no newline) to err and returns -1 (what it wrote to out is dropped).
 * The answer is sent once the handler returns, so it may hold locks the workers need while it writes. */
typedef int ctl_handler(void *arg, int argc, char **argv, FILE *out, char *err, size_t errlen);

struct ctl;

/* Listens on path (mode 0600), in a thread of its own. A socket file left by a sipd that is gone is
 * replaced; one that a running process answers on is not: EADDRINUSE. 0 or an errno. */
int ctl_new(struct ctl **cp, const char *path, ctl_handler *fn, void *arg);
/* Stops the thread (after the request it is running) and removes the socket file. */
void ctl_free(struct ctl *c);

/* The client side, for sipctl: sends the words as one request and reads the whole answer into a
 * malloc'd, NUL-terminated *answer (the first line "OK" or "ERR ..."). 0 or an errno (ENOENT, ECONNREFUSED:
 * no sipd there; EACCES: not allowed; ETIMEDOUT; EMSGSIZE: the request is too long). */
int ctl_request(const char *path, int argc, char **argv, char **answer, unsigned timeout_ms);

#endif

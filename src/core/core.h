/* core.h: sipd's UAS core (RFC 3261 8.2): takes every message from the transports, checks it, answers the
 * protocol-level errors and what sipd answers itself (OPTIONS, CANCEL), and runs the server transactions. */
#ifndef SIPD_CORE_CORE_H
#define SIPD_CORE_CORE_H

#include <stdio.h>

#include "base/config.h"
#include "net/transport.h"

struct core;

int core_new(struct core **cp, const struct config *cfg);
/* Frees what core_stopped has not. */
void core_free(struct core *c);
/* Ends every transaction (cancelling its timers) once the workers are joined but their loops still
 * exist (tp_config.stopped). */
void core_stopped(struct tp *tp, void *arg);
/* The transports' receive callback (tp_recv_h); arg is the core. */
void core_on_message(struct tp_msg *msg, void *arg);
/* tp_config.unreachable: the client transactions still waiting on that destination end (8.1.3.1, 17.1.4). */
void core_unreachable(enum tp_proto proto, const struct tp_addr *peer, int err, bool lost, void *arg);
/* Frees the calling worker's buffers (tp_worker_h, run as each worker stops). */
void core_worker_stop(struct tp_worker *w, void *arg);
/* Stream framing for the transports (tp_frame_h). */
long core_frame(const char *buf, size_t len, size_t max);
/* SIGHUP: the users of the configuration file become these (copied), and the store's are read again.
 * Other settings take effect at the next start. 0 or an errno. */
int core_reload_users(struct core *c, const struct config_user *users, unsigned n);
/* Now and then (every 10 s), from the main thread: what only time ends, with no traffic to see it. */
void core_housekeeping(struct core *c);
/* The subscribers and their authentication. */
struct auth *core_auth(struct core *c);
/* The control socket's requests (a ctl_handler of src/mgmt/ctl.h; arg is the core): "ping", "show
 * blocks" (a line per authentication block: kind, user, address, seconds left, length), "unblock all",
 * "unblock user NAME [address ADDR]", "unblock address ADDR" (the number of blocks lifted). */
int core_admin(void *arg, int argc, char **argv, FILE *out, char *err, size_t errlen);
/* For tests: make every transaction allocation fail (answers 500 with Retry-After). */
void core_fault_txn_alloc(struct core *c, int on);

#endif

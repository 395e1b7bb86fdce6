/* registrar.h: REGISTER as RFC 3261 10.3 says: who may bind what, contact rules, durable bindings
 * (a 200 OK only once the binding is on disk) and the location service the proxy reads. */
#ifndef SIPD_REGISTRAR_REGISTRAR_H
#define SIPD_REGISTRAR_REGISTRAR_H

#include <stdbool.h>

#include "auth/auth.h"
#include "base/config.h"
#include "registrar/location.h"
#include "sip/msg.h"
#include "sip/uri.h"
#include "store/store.h"
#include "txn/txn.h"

struct registrar;

/* Opens the store, loads the live bindings, starts the writer and the expiry thread. */
int registrar_new(struct registrar **rp, const struct config *cfg, struct auth *auth);
/* Once the workers stopped: stops expiring, flushes the writer (commits complete, answers are dropped). */
void registrar_shutdown(struct registrar *r);
void registrar_free(struct registrar *r);
/* A REGISTER that passed the core's checks, with its transaction (the request kept in it). The answer
 * may come later, from the worker that owns the transaction. */
void registrar_handle(struct registrar *r, struct txn *tx, const struct sip_msg *req, const struct txn_origin *o);
/* A REGISTER without credentials is challenged (401) statelessly, as a retransmission would just get
 * another nonce: true when answered; no transaction is kept for it. */
bool registrar_challenge(struct registrar *r, const struct txn_table *txns, const struct sip_msg *req,
			 const struct txn_origin *o);
/* A response that matched no transaction: true when it answers one of the NAT keep-alives (its phone
 * counts as alive; nat_keepalive_timeout), which are sent without a transaction. From any worker. */
bool registrar_keepalive_answer(struct registrar *r, const struct sip_msg *m);
/* Whether host (a Request-URI or To host) is one of sipd's domains. */
bool registrar_is_local(const struct registrar *r, struct slice host);
/* Whether host names this server: one of its own names or addresses, or one of its domains. What a
 * Route, a Via or a Record-Route of sipd's carries (RFC 3261 16.4), whatever domains it serves. */
bool registrar_is_self(const struct registrar *r, struct slice host);
struct loc *registrar_location(struct registrar *r);
/* The canonical address of record of a sip/sips URI ("sip:alice@example.com"); false if it has none. */
bool registrar_aor(const struct sip_uri *u, char *out, size_t n);
/* The key of u's AOR in the location service: registrar_aor, with sipd's own names and addresses
 * written as one host when no domain is configured (they are one domain then). */
bool registrar_aor_key(const struct registrar *r, const struct sip_uri *u, char *out, size_t n);

#endif

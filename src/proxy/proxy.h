/* proxy.h: the stateful proxy (RFC 3261 16): route pre-processing, the target set from the location
 * service, forking by q, response selection, CANCEL, Timer C, and in-dialog routing by Route. */
#ifndef SIPD_PROXY_PROXY_H
#define SIPD_PROXY_PROXY_H

#include <stdbool.h>

#include "auth/auth.h"
#include "base/config.h"
#include "net/transport.h"
#include "registrar/registrar.h"
#include "sip/msg.h"
#include "txn/txn.h"

struct proxy;

int proxy_new(struct proxy **pp, const struct config *cfg, struct txn_table *txns, struct registrar *reg,
	      struct auth *auth);
void proxy_free(struct proxy *p);
/* The transports have stopped (their loops still exist): DNS stops and what waited for it is dropped. */
void proxy_stopped(struct proxy *p);
/* What proxy_route did with a request. */
enum proxy_verdict {
	PROXY_TAKEN,  /* routed, or answered: a Route to follow (16.4), a user of sipd's domains with a target
	               * (16.5), a request for elsewhere, or refused */
	PROXY_SELF,   /* not the proxy's: sipd is the UAS (its own URI, a REGISTER, a CANCEL, a bad Request-URI) */
	PROXY_NOBODY, /* a user of sipd's domains that does not exist, or a dialog it has no way into: the
	               * proxy's target set is empty, and the core answers (16.5: 404; 12.2.2: 481) */
};
enum proxy_verdict proxy_route(struct proxy *p, const struct tp_msg *tm, const struct sip_msg *req,
			       const struct txn_origin *o);
/* A request for sipd itself that no proxying touches (no Route, a Request-URI of sipd's without a
 * user part or a maddr): proxy_route would give it back to the core. */
bool proxy_for_sipd(const struct proxy *p, const struct sip_msg *req);
/* The CANCEL of an INVITE (16.10): true when that INVITE is the proxy's (its branches get CANCELled). */
bool proxy_cancel(struct proxy *p, struct txn *inv);
/* A server transaction ends (on its loop): the proxy lets go of what it held for it. */
void proxy_txn_end(struct proxy *p, struct txn *tx);
/* A 2xx to an INVITE that an Accepted client transaction matched after its first (a retransmission,
 * another fork's answer: RFC 6026 8.4): passed on by its next Via when the top one is sipd's (16.11),
 * from the calling thread's worker. */
void proxy_relay_2xx(struct proxy *p, const struct sip_msg *resp);
/* Now and then, from any thread: what time alone ends (calls whose BYE never came, max_call_duration). */
void proxy_housekeeping(struct proxy *p);

#endif

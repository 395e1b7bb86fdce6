/* flow.h: flow tokens, the address of a TCP connection a phone registered over, signed, carried in the
 * Record-Route of a branch that went out on that connection (RFC 5626 5.2's idea, in sipd's own shape),
 * so that the requests of the dialog reach the phone on that connection too. */
#ifndef SIPD_PROXY_FLOW_H
#define SIPD_PROXY_FLOW_H

#include <stdbool.h>

#include "net/transport.h"
#include "sip/build.h"

/* Appends ";flow=TOKEN" for the connection with peer (nothing when the MAC cannot be computed). */
void flow_token_write(struct sbuf *b, const struct tp_addr *peer);
/* The peer a token names, when it is one of this process's (its MAC holds under the key drawn at start). */
bool flow_token_read(struct slice token, struct tp_addr *peer);

#endif

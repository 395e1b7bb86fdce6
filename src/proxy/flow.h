/* flow.h: flow tokens, a peer's address signed: in the Record-Route of a branch that went out on a TCP
 * connection a phone registered over (RFC 5626 5.2's idea, in sipd's own shape), so that the requests
 * of the dialog reach the phone on that connection too; and in the Contact of a party behind a NAT
 * (";nat="), so that the requests of the dialog reach it at its NAT's address rather than at the
 * private one it wrote. */
#ifndef SIPD_PROXY_FLOW_H
#define SIPD_PROXY_FLOW_H

#include <stdbool.h>

#include "net/transport.h"
#include "sip/build.h"

/* Appends ";PARAM=TOKEN" for peer (param "flow" or "nat"; nothing when the MAC cannot be computed). */
void flow_token_write(struct sbuf *b, const char *param, const struct tp_addr *peer);
/* Appends the TOKEN alone; false (nothing written) when the MAC cannot be computed. */
bool flow_token_value(struct sbuf *b, const struct tp_addr *peer);
/* Keys the tokens from a secret that outlives sipd (the Record-Route signatures' key, kept in the
 * database), so that a dialog's tokens hold across a restart; until then (or without it) a random key
 * of this process's. Before the workers start. */
void flow_key_derive(const uint8_t *secret, size_t len);
/* The peer a token names, when it is one of this process's (its MAC holds under the key drawn at start). */
bool flow_token_read(struct slice token, struct tp_addr *peer);

#endif

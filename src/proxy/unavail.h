/* unavail.h: the next hops that answered 503 Service Unavailable with a Retry-After, which sipd leaves
 * alone until it has passed (RFC 3261 21.5.4: "SHOULD NOT forward any other requests to that server
 * for the duration specified in the Retry-After"). A small fixed table shared by the workers: it is
 * consulted only for next hops located by DNS (RFC 3263), which have alternatives to go to. */
#ifndef SIPD_PROXY_UNAVAIL_H
#define SIPD_PROXY_UNAVAIL_H

#include <stdint.h>

#include "net/transport.h"

#define UNAVAIL_MAX 64 /* next hops remembered at once; past it the one whose wait ends first goes */

struct unavail;

int unavail_new(struct unavail **up);
void unavail_free(struct unavail *u);
/* proto/addr is unavailable until until_ms (a CLOCK_MONOTONIC time in milliseconds); a later mark of the
 * same next hop replaces the time. */
void unavail_mark(struct unavail *u, enum tp_proto proto, const struct tp_addr *addr, uint64_t until_ms);
/* Milliseconds proto/addr stays unavailable after now_ms; 0 when it is available. */
uint64_t unavail_left(struct unavail *u, enum tp_proto proto, const struct tp_addr *addr, uint64_t now_ms);

#endif

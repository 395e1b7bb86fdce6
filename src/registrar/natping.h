/* natping.h: keep-alive requests to phones registered over UDP from behind a NAT (Kamailio's nathelper
 * "sipping", Asterisk's qualify): an OPTIONS now and then through the pinhole the REGISTER came by, so
 * that the NAT keeps it open for the calls sipd sends there. */
#ifndef SIPD_REGISTRAR_NATPING_H
#define SIPD_REGISTRAR_NATPING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/slice.h"
#include "registrar/location.h"

/* Whether a binding's phone is behind a NAT, as far as a registrar can tell: its REGISTER came from
 * ("udp:ADDR", "tcp:ADDR") another address or port than its Contact names (a host name counts too). */
bool natping_behind_nat(const char *contact, const char *received);
/* Whether the pings are for it: behind a NAT, registered over UDP, with no Path (an edge proxy in front
 * keeps its own pinholes). */
bool natping_wanted(const char *contact, const char *received, const char *path);

struct natping;

int natping_new(struct natping **np);
void natping_free(struct natping *np);

/* For second now, sends the pings due: every binding natping_wanted is pinged once every interval
 * seconds, the location service's shards spread over the interval. With timeout (0: never), a binding
 * whose phone has answered no ping for longer than that is not pinged but listed in *gone (*ngone of
 * them, malloc'd; the caller frees), as the removal the registrar makes of it. Once a second, from one
 * thread; the sends go out through worker 0's socket. */
void natping_tick(struct natping *np, struct loc *l, unsigned interval, unsigned timeout, int64_t now,
		  struct store_unbind **gone, size_t *ngone);

/* A response whose Call-ID is one of the pings' (the phone answered, whatever the code): true when it
 * was, and the binding it was sent to counts as alive. From any thread. */
bool natping_answer(struct natping *np, struct slice call_id);

/* The OPTIONS for contact (its headers left off the Request-URI) from local, into buf: its length, 0
 * when it does not fit. key names the binding in the Call-ID ("ka<key>.<id>@sipd", as natping_answer
 * reads it back); id makes the branch, tag and Call-ID unique. */
size_t natping_build(char *buf, size_t n, const char *contact, const char *local, uint64_t key, uint64_t id);

#endif

/* calls.h: a light record of the calls sipd proxies (Call-ID, parties, start, answer, end, final status),
 * written to the log as a call detail line when the call ends; management will show and account them. */
#ifndef SIPD_PROXY_CALLS_H
#define SIPD_PROXY_CALLS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/slice.h"

struct calls;

/* max: calls remembered at once; past it new calls are routed but not recorded (and counted).
 * max_duration_s: an answered call whose BYE sipd has not seen after this long (it went elsewhere, or a
 * phone died) is logged as such and forgotten, so that records do not pile up to max; 0: kept until
 * its BYE. Expired records are taken as new calls come (a few each), never by a scan. */
int calls_new(struct calls **cp, size_t max, unsigned max_duration_s);
void calls_free(struct calls *c);
/* An INVITE that starts a dialog was forwarded. */
void calls_start(struct calls *c, struct slice call_id, struct slice from, struct slice to);
/* Its first 2xx went up: the call is answered. on_path: sipd Record-Routed the dialog and will see
 * its BYE; else the call is logged now, its end unknown to sipd, and forgotten. */
void calls_answered(struct calls *c, struct slice call_id, bool on_path);
/* It ended without an answer (status: the final sent upstream): logged and forgotten. */
void calls_failed(struct calls *c, struct slice call_id, unsigned status);
/* A BYE of the call was forwarded: logged with its duration and forgotten. */
void calls_ended(struct calls *c, struct slice call_id);
size_t calls_active(struct calls *c);

/* Where a call's requests go, for its Record-Route signatures (rrsig.h): side 0 is the caller, 1 the
 * callee. pin: the hop requests toward that side were signed toward when the dialog began (the
 * side's Contact). Pins longer than CALLS_PIN_MAX are not kept (a refresh is then not followed). */
#define CALLS_PIN_MAX 48 /* a newline, "[IPv6]:port" fits; a long host name does not */
void calls_signed_toward(struct calls *c, struct slice call_id, unsigned side, struct slice pin);
/* A target refresh of the call sent toward target (a pin) moved its sender to contact (a pin): requests
 * toward the sender may go there from now on. false when sipd keeps no such call. */
bool calls_refresh(struct calls *c, struct slice call_id, struct slice target, struct slice contact);
/* Whether a refresh moved one side of the call to target: then *was (CALLS_PIN_MAX bytes) is where
 * requests toward it were signed toward, and its length is returned; else 0. */
size_t calls_moved(struct calls *c, struct slice call_id, struct slice target, char was[CALLS_PIN_MAX]);
/* Every answered call older than max_duration: logged (end=unknown) and forgotten, whatever shard it is
 * in. Calls starting sweep their own shard too; this is for a server with no new calls (any thread). */
void calls_expire(struct calls *c);

#endif

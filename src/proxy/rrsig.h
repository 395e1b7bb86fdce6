/* rrsig.h: the signature in sipd's Record-Route: a MAC under a key the store keeps over the dialog's
 * Call-ID and the next hop its holder's requests go to after sipd (the "pin": the nearest hop beyond sipd
 * in the route set, else the peer's Contact), so that a request naming sipd in its Route is relayed only
 * for a dialog sipd Record-Routed, and only toward that dialog's peer. Without it, anyone could send a
 * request "of a dialog" through sipd to any host, a trunk that trusts sipd's address among them; without
 * the pin, anyone who had taken part in one dialog through sipd could. Each side of a dialog gets its own:
 * the callee's in the request, the caller's written into the responses sipd relays (RFC 3261 16.7 step 4
 * lets a proxy rewrite its Record-Route there). */
#ifndef SIPD_PROXY_RRSIG_H
#define SIPD_PROXY_RRSIG_H

#include <stdbool.h>
#include <stdint.h>

#include "base/slice.h"
#include "sip/build.h"

#define RRSIG_KEY 16
#define RRSIG_PARAM "sg"
#define RRSIG_HEX 16 /* the value's length: hex digits of the first 8 bytes of the MAC */
#define RRSIG_PIN 264 /* a pin's bytes: "\n", host (cut at 255), ':', port */

/* The key stored in the database at db_path (drawn and stored by the first sipd on it), so that dialogs
 * outlive a restart; a key of this process alone when the store cannot give one (logged). 0, or an errno
 * when no key at all could be had. */
int rrsig_key_load(uint8_t key[RRSIG_KEY], const char *db_path);
/* The pin naming host and port (0: none written), as the URI gave them, host in lower case; in buf. */
struct slice rrsig_pin(char buf[RRSIG_PIN], struct slice host, uint16_t port);
/* The pin of a name-addr or URI (a Record-Route, Route or Contact value); SLICE_NULL when it does not
 * parse (nothing can be signed toward it). */
struct slice rrsig_pin_of(char buf[RRSIG_PIN], struct slice addr);
/* The 16 hex digits for the dialog of call_id toward pin; false when the MAC cannot be computed. */
bool rrsig_sign(const uint8_t key[RRSIG_KEY], struct slice call_id, struct slice pin, char hex[RRSIG_HEX]);
/* Appends ";sg=MAC" for the dialog of call_id toward pin (nothing when the MAC cannot be computed). */
void rrsig_write(struct sbuf *b, const uint8_t key[RRSIG_KEY], struct slice call_id, struct slice pin);
/* Whether the URI parameters params (";lr;sg=..." as sip_uri_parse leaves them) carry the signature of
 * call_id's dialog toward pin. */
bool rrsig_valid(const uint8_t key[RRSIG_KEY], struct slice params, struct slice call_id, struct slice pin);

#endif

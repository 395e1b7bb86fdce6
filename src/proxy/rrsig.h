/* rrsig.h: the signature in sipd's Record-Route: a MAC over the dialog's Call-ID under a key the store
 * keeps, so that a request naming sipd in its Route is relayed only for a dialog sipd Record-Routed.
 * Without it, anyone could send a request "of a dialog" through sipd to any host, a trunk that trusts
 * sipd's address among them. */
#ifndef SIPD_PROXY_RRSIG_H
#define SIPD_PROXY_RRSIG_H

#include <stdbool.h>
#include <stdint.h>

#include "base/slice.h"
#include "sip/build.h"

#define RRSIG_KEY 16
#define RRSIG_PARAM "sg"
#define RRSIG_HEX 16 /* the value's length: hex digits of the first 8 bytes of the MAC */

/* The key stored in the database at db_path (drawn and stored by the first sipd on it), so that dialogs
 * outlive a restart; a key of this process alone when the store cannot give one (logged). 0, or an errno
 * when no key at all could be had. */
int rrsig_key_load(uint8_t key[RRSIG_KEY], const char *db_path);
/* Appends ";sg=MAC" for the dialog of call_id (nothing when the MAC cannot be computed). */
void rrsig_write(struct sbuf *b, const uint8_t key[RRSIG_KEY], struct slice call_id);
/* Whether the URI parameters params (";lr;sg=..." as sip_uri_parse leaves them) carry the signature of
 * call_id's dialog. */
bool rrsig_valid(const uint8_t key[RRSIG_KEY], struct slice params, struct slice call_id);

#endif

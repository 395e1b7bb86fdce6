/* rrsig.c: Record-Route signatures: ";sg=" and 16 hex digits, the first 8 bytes of SipHash-2-4-128 under a
 * key kept in the store's secrets, over the Call-ID (the one field every request of a dialog carries, both
 * ways), a newline (which no Call-ID holds) and the pin, "host:port" of the hop the holder's requests go to
 * after sipd. A forged one is a 2^-64 guess per request. */
#include "proxy/rrsig.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth/digest.h"
#include "base/log.h"
#include "sip/msg.h"
#include "sip/uri.h"
#include "store/store.h"

#define RRSIG_BYTES (RRSIG_HEX / 2)

int rrsig_key_load(uint8_t key[RRSIG_KEY], const char *db_path)
{
	uint8_t fresh[RRSIG_KEY];
	struct store *s = NULL;
	const char *why = NULL;
	int err;

	if (RAND_bytes(fresh, sizeof(fresh)) != 1)
		return EIO;
	err = db_path && db_path[0] ? store_open(&s, db_path, true, &why) : EINVAL;
	if (!err) {
		err = store_secret(s, "record_route", fresh, sizeof(fresh), key);
		store_close(s);
	}
	if (err) {
		/* dialogs still work, but not across a restart or between sipd processes on one database */
		log_warn("proxy: no stored key for Record-Route signatures (%s): dialogs through sipd end at its restart",
			 why ? why : strerror(err));
		memcpy(key, fresh, sizeof(fresh));
	}
	OPENSSL_cleanse(fresh, sizeof(fresh));
	return 0;
}

struct slice rrsig_pin(char buf[RRSIG_PIN], struct slice host, uint16_t port)
{
	size_t n = 0;
	struct sbuf port_b;

	buf[n++] = '\n';
	for (size_t i = 0; i < host.l && i < 255; i++)
		buf[n++] = (char)slice__lower((unsigned char)host.p[i]);
	buf[n++] = ':';
	sbuf_init(&port_b, buf + n, RRSIG_PIN - n); /* no snprintf: this runs for every request of a dialog */
	if (port)
		sbuf_addu(&port_b, port);
	return slice_make(buf, n + port_b.len);
}

struct slice rrsig_pin_of(char buf[RRSIG_PIN], struct slice addr)
{
	struct sip_addr a;
	struct sip_uri u;

	if (sip_addr_parse(&a, addr) || sip_uri_parse(&u, a.uri))
		return SLICE_NULL;
	return rrsig_pin(buf, u.host, u.port);
}

bool rrsig_sign(const uint8_t key[RRSIG_KEY], struct slice call_id, struct slice pin, char hex[RRSIG_HEX])
{
	uint8_t mac[DIGEST_MAC_LEN];

	if (!pin.l || !digest_mac(key, call_id, pin, mac))
		return false;
	for (unsigned i = 0; i < RRSIG_BYTES; i++)
		slice_put_hex(hex + 2 * i, mac[i], 2);
	return true;
}

void rrsig_write(struct sbuf *b, const uint8_t key[RRSIG_KEY], struct slice call_id, struct slice pin)
{
	char hex[RRSIG_HEX];

	if (!rrsig_sign(key, call_id, pin, hex))
		return;
	sbuf_addlit(b, ";" RRSIG_PARAM "=");
	sbuf_add(b, hex, sizeof(hex));
}

bool rrsig_valid(const uint8_t key[RRSIG_KEY], struct slice params, struct slice call_id, struct slice pin)
{
	struct slice v;
	char hex[RRSIG_HEX];

	return sip_param_find(params, RRSIG_PARAM, &v) && v.l == RRSIG_HEX && rrsig_sign(key, call_id, pin, hex) &&
	       CRYPTO_memcmp(hex, v.p, RRSIG_HEX) == 0;
}

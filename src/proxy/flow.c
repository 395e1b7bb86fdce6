/* flow.c: flow tokens: the peer address in hex, a dot, and 16 hex digits of HMAC-SHA256 over it, under a
 * key derived from the database's secret (flow_key_derive), else drawn for the process. Without the MAC,
 * anyone could have sipd write requests into any connection it holds, or send them anywhere. */
#include "proxy/flow.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base/log.h"

#define FLOW_MAC_HEX 16
#define FLOW_ADDR_MAX 64 /* "[v6 address]:port" fits */

static unsigned char flow_key[32];
static bool flow_key_ok;
static pthread_once_t flow_once = PTHREAD_ONCE_INIT;

static void flow_key_init(void)
{
	flow_key_ok = RAND_bytes(flow_key, sizeof(flow_key)) == 1;
	if (!flow_key_ok)
		log_warn("proxy: no random key for flow tokens: dialogs over a phone's TCP connection follow its Contact");
}

static bool flow_mac(const char *addr, size_t len, char hex[FLOW_MAC_HEX])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	pthread_once(&flow_once, flow_key_init);
	if (!flow_key_ok || !HMAC(EVP_sha256(), flow_key, sizeof(flow_key), (const unsigned char *)addr, len, mac, &n) ||
	    n < FLOW_MAC_HEX / 2)
		return false;
	for (unsigned i = 0; i < FLOW_MAC_HEX / 2; i++)
		slice_put_hex(hex + 2 * i, mac[i], 2);
	return true;
}

void flow_key_derive(const uint8_t *secret, size_t len)
{
	static const char label[] = "sipd flow tokens";
	unsigned int n = 0;

	pthread_once(&flow_once, flow_key_init);
	if (HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)label, sizeof(label) - 1, flow_key, &n) &&
	    n == sizeof(flow_key))
		flow_key_ok = true;
}

void flow_token_write(struct sbuf *b, const char *param, const struct tp_addr *peer)
{
	struct sbuf v;
	char buf[2 * FLOW_ADDR_MAX + FLOW_MAC_HEX + 2];

	sbuf_init(&v, buf, sizeof(buf));
	if (!flow_token_value(&v, peer) || v.overflow)
		return;
	sbuf_addlit(b, ";");
	sbuf_adds(b, param);
	sbuf_addlit(b, "=");
	sbuf_add(b, buf, v.len);
}

bool flow_token_value(struct sbuf *b, const struct tp_addr *peer)
{
	char addr[FLOW_ADDR_MAX], mac[FLOW_MAC_HEX], hex[2];
	size_t len;

	tp_addr_str(peer, addr, sizeof(addr));
	len = strlen(addr);
	if (!flow_mac(addr, len, mac))
		return false;
	for (size_t i = 0; i < len; i++) {
		slice_put_hex(hex, (unsigned char)addr[i], 2);
		sbuf_add(b, hex, 2);
	}
	sbuf_addlit(b, ".");
	sbuf_add(b, mac, sizeof(mac));
	return true;
}

bool flow_token_read(struct slice token, struct tp_addr *peer)
{
	const char *dot = token.l ? memchr(token.p, '.', token.l) : NULL;
	char addr[FLOW_ADDR_MAX], mac[FLOW_MAC_HEX];
	size_t hexlen, len;

	if (!dot)
		return false;
	hexlen = (size_t)(dot - token.p);
	len = hexlen / 2;
	if (hexlen % 2 || !len || len >= sizeof(addr) || token.l - hexlen - 1 != FLOW_MAC_HEX)
		return false;
	for (size_t i = 0; i < len; i++) {
		int hi = slice_hex_digit(token.p[2 * i]), lo = slice_hex_digit(token.p[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		addr[i] = (char)(hi << 4 | lo);
	}
	addr[len] = '\0';
	if (!flow_mac(addr, len, mac) || CRYPTO_memcmp(mac, dot + 1, FLOW_MAC_HEX) != 0)
		return false;
	return tp_addr_parse(peer, addr, 0) == 0 && tp_addr_port(peer) != 0;
}

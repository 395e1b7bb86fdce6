/* siphash.h: SipHash-2-4 with its 128-bit output (Aumasson and Bernstein, 2012), the keyed PRF behind
 * sipd's nonces and Record-Route signatures. The same function as OpenSSL's EVP_MAC "SIPHASH" (whose
 * default is this size and these rounds), without the EVP layer: there a MAC of 30 bytes cost about
 * 1 000 instructions, 700 of them in setting up and reading out the context; here about 400. The unit
 * test holds it to OpenSSL's output for every length up to 200 bytes. */
#ifndef SIPD_BASE_SIPHASH_H
#define SIPD_BASE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY 16
#define SIPHASH_OUT 16

/* The message is a followed by b (either may be empty: NULL with length 0). */
void siphash128(const uint8_t key[SIPHASH_KEY], const void *a, size_t al, const void *b, size_t bl,
		uint8_t out[SIPHASH_OUT]);

#endif

/* siphash.c: SipHash-2-4-128 over a message in two pieces (see siphash.h). Words are read
 * little-endian, as the specification says, whatever the machine. */
#include <string.h>

#include "base/siphash.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND()                               \
	do {                                     \
		v0 += v1;                        \
		v1 = ROTL(v1, 13) ^ v0;          \
		v0 = ROTL(v0, 32);               \
		v2 += v3;                        \
		v3 = ROTL(v3, 16) ^ v2;          \
		v0 += v3;                        \
		v3 = ROTL(v3, 21) ^ v0;          \
		v2 += v1;                        \
		v1 = ROTL(v1, 17) ^ v2;          \
		v2 = ROTL(v2, 32);               \
	} while (0)

static inline uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(&v, p, 8);
#else
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
#endif
	return v;
}

static inline void le64_put(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* The word at byte offset o of a followed by b: from a or b alone when it lies in one of them. */
static inline uint64_t word_at(const uint8_t *a, size_t al, const uint8_t *b, size_t o)
{
	uint64_t v = 0;

	if (o + 8 <= al)
		return le64(a + o);
	if (o >= al)
		return le64(b + (o - al));
	for (int i = 7; i >= 0; i--) /* straddling the two pieces: once per message at most */
		v = v << 8 | (o + (size_t)i < al ? a[o + (size_t)i] : b[o + (size_t)i - al]);
	return v;
}

void siphash128(const uint8_t key[SIPHASH_KEY], const void *pa, size_t al, const void *pb, size_t bl,
		uint8_t out[SIPHASH_OUT])
{
	const uint8_t *a = pa, *b = pb;
	uint64_t k0 = le64(key), k1 = le64(key + 8), m, last = 0;
	uint64_t v0 = k0 ^ UINT64_C(0x736f6d6570736575);
	uint64_t v1 = k1 ^ UINT64_C(0x646f72616e646f6d) ^ 0xee; /* 0xee: the 128-bit variant */
	uint64_t v2 = k0 ^ UINT64_C(0x6c7967656e657261);
	uint64_t v3 = k1 ^ UINT64_C(0x7465646279746573);
	size_t len = al + bl, o;

	for (o = 0; o + 8 <= len; o += 8) {
		m = word_at(a, al, b, o);
		v3 ^= m;
		SIPROUND();
		SIPROUND();
		v0 ^= m;
	}
	if (o < len) { /* the last 1-7 bytes, zero-padded; the length's low byte goes on top */
		uint8_t tail[8] = { 0 };

		if (o >= al)
			memcpy(tail, b + (o - al), len - o);
		else if (len <= al)
			memcpy(tail, a + o, len - o);
		else
			for (size_t i = o; i < len; i++)
				tail[i - o] = i < al ? a[i] : b[i - al];
		last = le64(tail);
	}
	m = last | (uint64_t)len << 56;
	v3 ^= m;
	SIPROUND();
	SIPROUND();
	v0 ^= m;
	v2 ^= 0xee;
	SIPROUND();
	SIPROUND();
	SIPROUND();
	SIPROUND();
	le64_put(out, v0 ^ v1 ^ v2 ^ v3);
	v1 ^= 0xdd;
	SIPROUND();
	SIPROUND();
	SIPROUND();
	SIPROUND();
	le64_put(out + 8, v0 ^ v1 ^ v2 ^ v3);
}

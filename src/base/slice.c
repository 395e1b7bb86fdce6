/* slice.c: comparisons and conversions on (pointer, length) views. */
#include "base/slice.h"

#include <stdint.h>
#include <string.h>

bool slice_eq(struct slice a, struct slice b)
{
	return a.l == b.l && (a.l == 0 || memcmp(a.p, b.p, a.l) == 0);
}

bool slice_caseeq_cstr(struct slice a, const char *s)
{
	size_t i = 0;

	for (; i < a.l; i++) {
		if (!s[i] || !slice__byte_caseeq(a.p[i], s[i]))
			return false;
	}
	return s[i] == '\0';
}

bool slice_to_u32(struct slice s, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (s.l == 0 || s.l > 10)
		return false;
	for (size_t i = 0; i < s.l; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	}
	if (v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

char *slice_copy(char *dst, size_t n, struct slice s)
{
	size_t l = s.l < n - 1 ? s.l : n - 1;

	if (l)
		memcpy(dst, s.p, l);
	dst[l] = '\0';
	return dst;
}

void slice_put_hex(char *out, uint64_t v, unsigned digits)
{
	while (digits--) {
		out[digits] = "0123456789abcdef"[v & 15];
		v >>= 4;
	}
}

/* A byte loop cost about 8 instructions a character; a word, about as many for 8 of them. */
void slice_lower_copy(char *dst, const char *src, size_t l)
{
	size_t i = 0;

	for (; i + 8 <= l; i += 8) {
		uint64_t w;

		memcpy(&w, src + i, 8);
		w |= slice__bytes_in(w, 'A', 'Z') >> 2; /* 0x80 >> 2: the case bit */
		memcpy(dst + i, &w, 8);
	}
	for (; i < l; i++)
		dst[i] = (char)slice__lower((unsigned char)src[i]);
}

/* Both hashes read 8 bytes at a time (they run on every Call-ID, branch and host sipd looks up): a
 * multiply and a shift per word, the length folded into the start so that trailing zero bytes count,
 * and a final mix so that every input bit reaches the low 32 bits that tables use. */
#define HASH_MUL UINT64_C(0x9e3779b97f4a7c15)

static uint64_t hash_word(uint64_t h, uint64_t w)
{
	h = (h ^ w) * HASH_MUL;
	return h ^ (h >> 29);
}

static uint32_t hash_bytes(struct slice s, uint32_t seed, uint64_t fold)
{
	uint64_t h = (HASH_MUL ^ seed) + s.l, w;
	size_t i = 0;

	for (; i + 8 <= s.l; i += 8) {
		memcpy(&w, s.p + i, 8);
		h = hash_word(h, w | fold);
	}
	if (i < s.l) {
		size_t rest = s.l - i;

		/* the last 8 bytes, shifted: on little-endian machines the very word copying the rest gives,
		 * without a call to memcpy (elsewhere another word, as stable and as case-blind) */
		if (s.l >= 8) {
			memcpy(&w, s.p + s.l - 8, 8);
			w >>= 8 * (8 - rest);
		} else {
			w = 0;
			memcpy(&w, s.p + i, rest);
		}
		h = hash_word(h, w | (fold >> (8 * (8 - rest))));
	}
	h ^= h >> 32;
	h *= UINT64_C(0xd6e8feb86659fd93);
	h ^= h >> 32;
	return (uint32_t)h;
}

uint32_t slice_hash(struct slice s, uint32_t seed)
{
	return hash_bytes(s, seed, 0);
}

/* Agrees with case-insensitive equality: every byte has its 0x20 bit set first, which makes 'A' and
 * 'a' the same (and a few punctuation pairs too, which only costs a rare collision). */
uint32_t slice_casehash(struct slice s, uint32_t seed)
{
	return hash_bytes(s, seed, UINT64_C(0x2020202020202020));
}

/* slice.h: the (pointer, length) view that every parsed byte in sipd is seen through. */
#ifndef SIPD_BASE_SLICE_H
#define SIPD_BASE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A view into someone else's buffer; never NUL-terminated, never owned. */
struct slice {
	const char *p;
	size_t l;
};

#define SLICE_LIT(s) ((struct slice){ (s), sizeof(s) - 1 })
#define SLICE_NULL ((struct slice){ NULL, 0 })
#define SLICE_FMT "%.*s"
#define SLICE_ARG(s) (int)(s).l, (s).p

static inline struct slice slice_make(const char *p, size_t l)
{
	return (struct slice){ p, l };
}

static inline struct slice slice_cstr(const char *s)
{
	return (struct slice){ s, s ? strlen(s) : 0 };
}

static inline bool slice_isset(struct slice s)
{
	return s.p != NULL;
}

bool slice_eq(struct slice a, struct slice b);

static inline unsigned char slice__lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* ASCII case-insensitive, as strncasecmp in the C locale, without the library call: these compare
 * parameter and header names a few bytes long, many times per request, so they are inline. A NUL
 * in a is a byte like any other, never a match for the end of s. */
static inline bool slice__byte_caseeq(char a, char b)
{
	return a == b || slice__lower((unsigned char)a) == slice__lower((unsigned char)b);
}

static inline bool slice_caseeq(struct slice a, struct slice b)
{
	if (a.l != b.l)
		return false;
	for (size_t i = 0; i < a.l; i++)
		if (!slice__byte_caseeq(a.p[i], b.p[i]))
			return false;
	return true;
}

/* Against a string literal: its length is known when compiling, so most mismatches cost one compare. */
#define slice_caseeq_lit(a, lit) slice_caseeq((a), SLICE_LIT(lit))

/* token (RFC 3261 token characters, any case) equals lc, token.l bytes of lower-case letters and '-'
 * (a known header or parameter name), as slice_caseeq would say: in 8- or 4-byte words, the last one
 * overlapping the one before it, reading no byte of either past token.l. Within token characters, OR
 * 0x20 lowers the letters and changes nothing else into a letter or '-'. Inlined, always: it runs once
 * per header field, where a call and its length dispatch cost as much as the compare. */
static inline __attribute__((always_inline)) bool slice_token_eq_lc(struct slice token, const char *lc)
{
	size_t i = 0, l = token.l;
	uint64_t a, b;
	uint32_t a4, b4, c4, d4;

	if (l >= 8) {
		for (; i + 8 <= l; i += 8) {
			memcpy(&a, token.p + i, 8);
			memcpy(&b, lc + i, 8);
			if ((a | 0x2020202020202020ull) != b)
				return false;
		}
		if (i == l)
			return true;
		memcpy(&a, token.p + l - 8, 8);
		memcpy(&b, lc + l - 8, 8);
		return (a | 0x2020202020202020ull) == b;
	}
	if (l >= 4) {
		memcpy(&a4, token.p, 4);
		memcpy(&b4, lc, 4);
		memcpy(&c4, token.p + l - 4, 4);
		memcpy(&d4, lc + l - 4, 4);
		return (a4 | 0x20202020u) == b4 && (c4 | 0x20202020u) == d4;
	}
	for (; i < l; i++)
		if ((token.p[i] | 0x20) != lc[i])
			return false;
	return true;
}

bool slice_caseeq_cstr(struct slice a, const char *s);

static inline bool slice__is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Without the white space (SP, HT, CR, LF) at either end. */
static inline struct slice slice_trim(struct slice s)
{
	while (s.l && slice__is_lws(s.p[0])) {
		s.p++;
		s.l--;
	}
	while (s.l && slice__is_lws(s.p[s.l - 1]))
		s.l--;
	return s;
}

/* Parses an unsigned decimal of at most 'max' value; false on junk or overflow. */
bool slice_to_u32(struct slice s, uint32_t max, uint32_t *out);

/* Finds c in s; returns its offset or -1. */
static inline long slice_chr(struct slice s, char c)
{
	const char *hit = s.l ? memchr(s.p, c, s.l) : NULL;

	return hit ? (long)(hit - s.p) : -1;
}
/* Copies into dst (size n, NUL-terminated, truncated); returns dst. */
char *slice_copy(char *dst, size_t n, struct slice s);
/* The low 4 * digits bits of v as lower-case hex into out, digits bytes, no terminator (branch ids:
 * without stdio, which costs a thousand instructions a call). */
void slice_put_hex(char *out, uint64_t v, unsigned digits);
/* The value of one hex digit, either case; -1 for any other character. */
static inline int slice_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}
/* Eight bytes at a time: 0x80 in each byte of w that lies in [lo, hi], 0 in the others; lo >= 1,
 * hi <= 0x7e, and a byte with its top bit set is in no range. Each sum stays within its byte (at most
 * 0x7f + 0x7f), so no carry crosses into the next. */
#define SLICE__BYTES_01 UINT64_C(0x0101010101010101)
#define SLICE__BYTES_80 (SLICE__BYTES_01 * 0x80)
static inline uint64_t slice__bytes_in(uint64_t w, unsigned char lo, unsigned char hi)
{
	uint64_t low7 = w & ~SLICE__BYTES_80;
	uint64_t ge_lo = low7 + SLICE__BYTES_01 * (0x80u - lo); /* top bit set: byte >= lo */
	uint64_t gt_hi = low7 + SLICE__BYTES_01 * (0x7fu - hi); /* top bit set: byte > hi */

	return ge_lo & ~gt_hi & ~w & SLICE__BYTES_80;
}
/* dst = src with A-Z in lower case, l bytes (no terminator); dst may be src. Host names, digests. */
void slice_lower_copy(char *dst, const char *src, size_t l);
uint32_t slice_hash(struct slice s, uint32_t seed);
uint32_t slice_casehash(struct slice s, uint32_t seed);

#endif

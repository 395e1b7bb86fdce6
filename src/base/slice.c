/* slice.c: comparisons and conversions on (pointer, length) views. */
#include "base/slice.h"

#include <strings.h>

bool slice_eq(struct slice a, struct slice b)
{
	return a.l == b.l && (a.l == 0 || memcmp(a.p, b.p, a.l) == 0);
}

bool slice_caseeq(struct slice a, struct slice b)
{
	return a.l == b.l && (a.l == 0 || strncasecmp(a.p, b.p, a.l) == 0);
}

bool slice_caseeq_cstr(struct slice a, const char *s)
{
	return slice_caseeq(a, slice_cstr(s));
}

static bool is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

struct slice slice_trim(struct slice s)
{
	while (s.l && is_lws(s.p[0])) {
		s.p++;
		s.l--;
	}
	while (s.l && is_lws(s.p[s.l - 1]))
		s.l--;
	return s;
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

long slice_chr(struct slice s, char c)
{
	const char *hit = s.l ? memchr(s.p, c, s.l) : NULL;

	return hit ? (long)(hit - s.p) : -1;
}

char *slice_copy(char *dst, size_t n, struct slice s)
{
	size_t l = s.l < n - 1 ? s.l : n - 1;

	if (l)
		memcpy(dst, s.p, l);
	dst[l] = '\0';
	return dst;
}

/* FNV-1a: short keys (Call-IDs, branches), good spread, no tables. */
uint32_t slice_hash(struct slice s, uint32_t seed)
{
	uint32_t h = 2166136261u ^ seed;

	for (size_t i = 0; i < s.l; i++) {
		h ^= (uint8_t)s.p[i];
		h *= 16777619u;
	}
	return h;
}

uint32_t slice_casehash(struct slice s, uint32_t seed)
{
	uint32_t h = 2166136261u ^ seed;

	for (size_t i = 0; i < s.l; i++) {
		uint8_t c = (uint8_t)s.p[i];

		if (c >= 'A' && c <= 'Z')
			c += 32;
		h ^= c;
		h *= 16777619u;
	}
	return h;
}

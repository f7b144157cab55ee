/*
 * str.h - bounded string helpers and overflow-checked arithmetic; no mail
 * knowledge.  Replaces the banned strcpy/strcat/sprintf family.
 */
#ifndef POSTERN_UTIL_STR_H
#define POSTERN_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Copies src[0..len) into dst (size bytes) and NUL-terminates.  Returns
 * false, leaving dst empty, when it does not fit.
 */
bool str_copy(char *dst, size_t size, const char *src, size_t len);

/* Like str_copy for a NUL-terminated src. */
bool str_set(char *dst, size_t size, const char *src);

/* True when s[0..len) equals the NUL-terminated lit, ignoring ASCII case. */
bool str_eq_nocase(const char *s, size_t len, const char *lit);

/* Lowers ASCII letters of s in place. */
void str_lower(char *s);

/* Removes leading and trailing spaces and tabs in place; returns s. */
char *str_trim(char *s);

/* *out = a + b, false on overflow. */
static inline bool
str_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

/* *out = a * b, false on overflow. */
static inline bool
str_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

/*
 * Parses an unsigned decimal s (whole string) into *out; false on anything
 * else or overflow.
 */
bool str_to_u64(const char *s, uint64_t *out);

/* True when s[0..len) holds an octet above 0x7f (8-bit text). */
bool str_has_8bit(const char *s, size_t len);

#endif

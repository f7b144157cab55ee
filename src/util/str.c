/*
 * str.c - bounded copies, case-insensitive compares and number parsing for
 * strings we own (config values, table keys).  Wire bytes are parsed in
 * proto/, not here.
 */
#include <ctype.h>
#include <string.h>

#include "util/str.h"

bool
str_copy(char *dst, size_t size, const char *src, size_t len)
{
	if (size == 0)
		return false;
	if (len >= size) {
		dst[0] = '\0';
		return false;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

bool
str_set(char *dst, size_t size, const char *src)
{
	return str_copy(dst, size, src, strlen(src));
}

bool
str_eq_nocase(const char *s, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	return n == len && strncasecmp(s, lit, n) == 0;
}

void
str_lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

char *
str_trim(char *s)
{
	size_t n;
	char *p = s;

	while (*p == ' ' || *p == '\t')
		p++;
	n = strlen(p);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' ||
			 p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	memmove(s, p, n);
	s[n] = '\0';
	return s;
}

bool
str_to_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (!str_mul_u64(v, 10, &v) ||
		    !str_add_u64(v, (uint64_t)(*s - '0'), &v))
			return false;
	}
	*out = v;
	return true;
}

bool
str_has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/*
 * mtasts.c - RFC 8461's record, policy and MX matching (mtasts.h).
 *
 * Called by policy/tlspolicy.c (the lookups and the HTTPS fetch) and
 * outbound/client.c (which MX host may get the mail).  Pure: everything
 * it reads comes in as arguments, from a network peer; nothing is
 * trusted, every length is checked, nothing is allocated.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/mtasts.h"
#include "util/str.h"

#define STS_PREFIX "v=STSv1"
#define STS_VALUE_MAX 256

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* id: 1*32 (ALPHA / DIGIT). */
static bool
id_ok(const char *s, size_t n)
{
	if (n == 0 || n >= STS_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]))
			return false;
	return true;
}

/*
 * One record: "v=STSv1" ";" then fields "name=value" separated by ";",
 * blanks around them; the id field required, others (extensions)
 * allowed when well formed.
 */
static bool
txt_parse(const char *s, size_t len, char id[STS_ID_MAX])
{
	size_t i = sizeof STS_PREFIX - 1;
	bool has_id = false;

	if (len < i || memcmp(s, STS_PREFIX, i) != 0)
		return false;
	while (i < len && is_wsp(s[i]))
		i++;
	if (i == len || s[i] != ';')
		return false;
	while (i < len) {
		size_t name, eq, end;
		i++; /* the ';' */
		while (i < len && is_wsp(s[i]))
			i++;
		if (i == len)
			break; /* a trailing ';' */
		name = i;
		while (i < len && (isalnum((unsigned char)s[i]) ||
				   s[i] == '_' || s[i] == '-' || s[i] == '.'))
			i++;
		if (i == name || i - name > 32 || i == len || s[i] != '=')
			return false;
		eq = i++;
		while (i < len && s[i] != ';' && !is_wsp(s[i]))
			i++;
		end = i;
		while (i < len && is_wsp(s[i]))
			i++;
		if (i < len && s[i] != ';')
			return false;
		if (eq - name == 2 && memcmp(s + name, "id", 2) == 0) {
			if (has_id || !id_ok(s + eq + 1, end - eq - 1))
				return false;
			str_copy(id, STS_ID_MAX, s + eq + 1, end - eq - 1);
			has_id = true;
		} else if (end == eq + 1) {
			return false; /* an extension needs a value */
		}
	}
	return has_id;
}

int
sts_txt_pick(const char *const *txt, const size_t *len, size_t n,
	     char id[STS_ID_MAX])
{
	size_t found = 0, at = 0;

	for (size_t i = 0; i < n; i++) {
		size_t l = len ? len[i] : strlen(txt[i]);
		size_t p = sizeof STS_PREFIX - 1;
		/* "begin with v=STSv1;" (blanks before the ';' allowed) */
		if (l < p || memcmp(txt[i], STS_PREFIX, p) != 0)
			continue;
		while (p < l && is_wsp(txt[i][p]))
			p++;
		if (p < l && txt[i][p] == ';') {
			found++;
			at = i;
		}
	}
	if (found != 1 ||
	    !txt_parse(txt[at], len ? len[at] : strlen(txt[at]), id))
		return -1;
	return 0;
}

/* A policy mx pattern: ["*."] domain, LDH labels, no empty label. */
static bool
pattern_ok(const char *v)
{
	const char *p = strncmp(v, "*.", 2) == 0 ? v + 2 : v;
	size_t label = 0;

	if (*p == '\0')
		return false;
	for (; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)*p) || *p == '-' ||
			   *p == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 || p[-1] == '.';
}

int
sts_policy_parse(const char *body, size_t len, struct sts_policy *p,
		 char *err, size_t errsize)
{
	bool has_version = false, has_mode = false, has_age = false;
	size_t i = 0;

	memset(p, 0, sizeof *p);
	while (i < len) {
		size_t start = i, end, k, v;
		char key[32], val[STS_VALUE_MAX];

		while (i < len && body[i] != '\n')
			i++;
		end = i;
		if (i < len)
			i++; /* the LF */
		if (end > start && body[end - 1] == '\r')
			end--;
		if (end == start)
			continue; /* an empty line, e.g. at the end */
		for (k = start; k < end && body[k] != ':'; k++)
			;
		if (k == end || k == start || k - start >= sizeof key) {
			snprintf(err, errsize, "line \"%.*s\" is not "
				 "\"key: value\"", (int)(end - start > 60 ? 60 :
						       end - start),
				 body + start);
			return -1;
		}
		str_copy(key, sizeof key, body + start, k - start);
		v = k + 1;
		while (v < end && is_wsp(body[v]))
			v++;
		while (end > v && is_wsp(body[end - 1]))
			end--;
		if (end - v >= sizeof val) {
			snprintf(err, errsize, "the value of %s is too long",
				 key);
			return -1;
		}
		str_copy(val, sizeof val, body + v, end - v);
		if (strcmp(key, "version") == 0 && !has_version) {
			if (strcmp(val, "STSv1") != 0) {
				snprintf(err, errsize, "version is %s, not "
					 "STSv1", val);
				return -1;
			}
			has_version = true;
		} else if (strcmp(key, "mode") == 0 && !has_mode) {
			if (strcmp(val, "enforce") == 0)
				p->mode = STS_MODE_ENFORCE;
			else if (strcmp(val, "testing") == 0)
				p->mode = STS_MODE_TESTING;
			else if (strcmp(val, "none") == 0)
				p->mode = STS_MODE_NONE;
			else {
				snprintf(err, errsize, "mode is %s, not "
					 "enforce, testing or none", val);
				return -1;
			}
			has_mode = true;
		} else if (strcmp(key, "max_age") == 0 && !has_age) {
			unsigned long n = 0;
			size_t d = 0;
			for (; val[d] >= '0' && val[d] <= '9' && d < 10; d++)
				n = n * 10 + (unsigned long)(val[d] - '0');
			if (d == 0 || val[d] != '\0' || n > STS_MAX_AGE_MAX) {
				snprintf(err, errsize, "max_age is %s, not a "
					 "number of seconds up to %u", val,
					 STS_MAX_AGE_MAX);
				return -1;
			}
			p->max_age = (uint32_t)n;
			has_age = true;
		} else if (strcmp(key, "mx") == 0) {
			for (char *c = val; *c; c++)
				*c = (char)tolower((unsigned char)*c);
			if (!pattern_ok(val)) {
				snprintf(err, errsize, "mx %s is not a host "
					 "name or *.domain pattern", val);
				return -1;
			}
			if (p->n_mx < STS_MX_MAX) {
				size_t l = strlen(val);
				if (l > 0 && val[l - 1] == '.')
					val[l - 1] = '\0';
				str_set(p->mx[p->n_mx++], sizeof p->mx[0],
					val);
			}
		}
		/* other keys: ignored (RFC 8461 3.2) */
	}
	if (!has_version || !has_mode || !has_age) {
		snprintf(err, errsize, "no %s line",
			 !has_version ? "version: STSv1"
			 : !has_mode  ? "mode"
				      : "max_age");
		return -1;
	}
	if (p->mode != STS_MODE_NONE && p->n_mx == 0) {
		snprintf(err, errsize, "mode %s names no mx",
			 p->mode == STS_MODE_ENFORCE ? "enforce" : "testing");
		return -1;
	}
	return 0;
}

bool
sts_mx_match(const struct sts_policy *p, const char *host)
{
	char h[256];
	size_t n;

	if (!str_set(h, sizeof h, host))
		return false;
	n = strlen(h);
	if (n > 0 && h[n - 1] == '.')
		h[--n] = '\0';
	for (size_t i = 0; i < p->n_mx; i++) {
		const char *pat = p->mx[i];
		if (strncmp(pat, "*.", 2) == 0) {
			const char *dot = strchr(h, '.');
			/* one label, then exactly the rest */
			if (dot != NULL && dot != h &&
			    strcasecmp(dot + 1, pat + 2) == 0)
				return true;
		} else if (strcasecmp(h, pat) == 0) {
			return true;
		}
	}
	return false;
}

size_t
sts_policy_strings(const struct sts_policy *p, char *buf, size_t size,
		   const char **out, size_t max)
{
	static const char *const modes[] = {"none", "testing", "enforce"};
	size_t n = 0, o = 0;

#define STS_LINE(...)                                                        \
	do {                                                                 \
		int w = snprintf(buf + o, size - o, __VA_ARGS__);            \
		if (w < 0 || (size_t)w >= size - o || n == max)              \
			return n;                                            \
		out[n++] = buf + o;                                          \
		o += (size_t)w + 1;                                          \
	} while (0)
	if (size == 0)
		return 0;
	STS_LINE("version: STSv1");
	STS_LINE("mode: %s", modes[p->mode]);
	for (size_t i = 0; i < p->n_mx; i++)
		STS_LINE("mx: %s", p->mx[i]);
	STS_LINE("max_age: %u", (unsigned)p->max_age);
#undef STS_LINE
	return n;
}

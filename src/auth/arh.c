/*
 * arh.c - Authentication-Results (RFC 8601), written and stripped.
 *
 * Called by the auth runner and `postern auth check`.  Pure: no I/O.
 *
 * Values (RFC 8601 2.2, 2.3): a pvalue is written bare when it is an
 * RFC 2045 token, or an address or domain ([local-part "@"] domain-name,
 * the form RFC 8601 allows unquoted for smtp.mailfrom and header.from);
 * otherwise as a quoted-string with '"' and '\' escaped.  Control
 * characters, which no header may carry, become '?'.  Comments escape
 * '(' ')' and '\'.
 *
 * Stripping (RFC 8601 5): a field named Authentication-Results in any
 * case whose value reads [CFWS] authserv-id [CFWS [version]] [CFWS] ";"
 * where authserv-id is a token or quoted-string equal to ours without
 * case.  Anything else is kept: a field we cannot read is not provably
 * ours, and RFC 8601 5 asks us to remove only what claims our id.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "auth/arh.h"
#include "auth/hdr.h"

#define ARH_NAME "Authentication-Results"
#define ARH_LINE_MAX 78
#define ARH_ID_MAX 256

struct arh_out {
	char *buf;
	size_t size, used, col;
	bool is_full;
};

static void
arh_put(struct arh_out *o, const char *s, size_t n)
{
	if (o->is_full || n >= o->size - o->used) {
		o->is_full = true;
		return;
	}
	memcpy(o->buf + o->used, s, n);
	o->used += n;
	o->buf[o->used] = '\0';
	o->col += n;
}

static void
arh_puts(struct arh_out *o, const char *s)
{
	arh_put(o, s, strlen(s));
}

static void
arh_newline(struct arh_out *o)
{
	arh_puts(o, "\r\n\t");
	o->col = 8; /* a tab */
}

static bool
arh_is_token_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static bool
arh_is_atext(unsigned char c)
{
	return c >= 0x80 ||
	       (c > ' ' && c < 0x7f && strchr("()<>@,;:\\\".[]", c) == NULL);
}

static bool
arh_is_token(const char *s)
{
	if (s[0] == '\0')
		return false;
	for (; *s; s++)
		if (!arh_is_token_char((unsigned char)*s))
			return false;
	return true;
}

/* A dot-atom (local part) or domain-name; is_domain narrows to LDH. */
static bool
arh_is_dotted(const char *s, size_t n, bool is_domain)
{
	bool is_start = true;

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (is_start)
				return false;
			is_start = true;
			continue;
		}
		is_start = false;
		if (is_domain
			? !(c >= 0x80 || c == '-' || c == '_' ||
			    (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			    (c >= 'A' && c <= 'Z'))
			: !arh_is_atext(c))
			return false;
	}
	return !is_start;
}

/* [local-part "@"] domain-name, RFC 8601 2.3's bare pvalue. */
static bool
arh_is_address(const char *s)
{
	const char *at = strrchr(s, '@');

	if (at == NULL)
		return arh_is_dotted(s, strlen(s), true);
	if (at != s && !arh_is_dotted(s, (size_t)(at - s), false))
		return false;
	return arh_is_dotted(at + 1, strlen(at + 1), true);
}

/* s, escaping the characters in esc with '\', controls as '?'. */
static void
arh_put_escaped(struct arh_out *o, const char *s, const char *esc)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < ' ' || c == 0x7f) {
			arh_put(o, "?", 1);
			continue;
		}
		if (strchr(esc, c) != NULL)
			arh_put(o, "\\", 1);
		arh_put(o, s, 1);
	}
}

static void
arh_put_value(struct arh_out *o, const char *v)
{
	if (arh_is_token(v) || arh_is_address(v)) {
		arh_puts(o, v);
		return;
	}
	arh_put(o, "\"", 1);
	arh_put_escaped(o, v, "\"\\");
	arh_put(o, "\"", 1);
}

/* The length arh_put_value would write, for folding. */
static size_t
arh_value_len(const char *v)
{
	size_t n = 2;

	if (arh_is_token(v) || arh_is_address(v))
		return strlen(v);
	for (; *v; v++)
		n += *v == '"' || *v == '\\' ? 2 : 1;
	return n;
}

static void
arh_put_entry(struct arh_out *o, const struct arh_entry *e)
{
	arh_puts(o, e->method != NULL ? e->method : "unknown");
	arh_put(o, "=", 1);
	arh_puts(o, e->result != NULL ? e->result : "none");
	if (e->comment != NULL) {
		arh_puts(o, " (");
		arh_put_escaped(o, e->comment, "()\\");
		arh_put(o, ")", 1);
	}
	if (e->reason != NULL) {
		arh_puts(o, " reason=\"");
		arh_put_escaped(o, e->reason, "\"\\");
		arh_put(o, "\"", 1);
	}
	for (size_t i = 0; i < e->n_props && i < ARH_PROPS_MAX; i++) {
		const struct arh_prop *p = &e->props[i];
		const char *v = p->value != NULL ? p->value : "";
		size_t w;

		if (p->ptype == NULL || p->property == NULL)
			continue;
		w = 1 + strlen(p->ptype) + 1 + strlen(p->property) + 1 +
		    arh_value_len(v);
		if (o->col + w > ARH_LINE_MAX)
			arh_newline(o);
		else
			arh_put(o, " ", 1);
		arh_puts(o, p->ptype);
		arh_put(o, ".", 1);
		arh_puts(o, p->property);
		arh_put(o, "=", 1);
		arh_put_value(o, v);
	}
}

size_t
arh_format(char *buf, size_t size, const char *authserv_id,
	   const struct arh_entry *e, size_t n)
{
	struct arh_out o = {.buf = buf, .size = size};

	if (size == 0)
		return 0;
	buf[0] = '\0';
	arh_puts(&o, ARH_NAME ": ");
	arh_put_value(&o, authserv_id != NULL ? authserv_id : "");
	arh_put(&o, ";", 1);
	if (n == 0)
		arh_puts(&o, " none");
	for (size_t i = 0; i < n; i++) {
		arh_newline(&o);
		arh_put_entry(&o, &e[i]);
		if (i + 1 < n)
			arh_put(&o, ";", 1);
	}
	arh_puts(&o, "\r\n");
	if (o.is_full) {
		buf[0] = '\0';
		return 0;
	}
	return o.used;
}

/* Skips CFWS from *i in v[0..n); false on an unclosed comment. */
static bool
arh_skip_cfws(const char *v, size_t n, size_t *i)
{
	while (*i < n) {
		char c = v[*i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			(*i)++;
		} else if (c == '(') {
			unsigned depth = 0;

			do {
				if (v[*i] == '\\' && *i + 1 < n)
					(*i)++;
				else if (v[*i] == '(')
					depth++;
				else if (v[*i] == ')')
					depth--;
				(*i)++;
			} while (*i < n && depth > 0);
			if (depth > 0)
				return false;
		} else {
			return true;
		}
	}
	return true;
}

/* True when the field value v[0..n) names id as its authserv-id. */
static bool
arh_is_ours(const char *v, size_t n, const char *id)
{
	char got[ARH_ID_MAX];
	size_t i = 0, g = 0;

	if (!arh_skip_cfws(v, n, &i) || i >= n)
		return false;
	if (v[i] == '"') {
		for (i++; i < n && v[i] != '"'; i++) {
			if (v[i] == '\\' && i + 1 < n)
				i++;
			if (g + 1 >= sizeof got)
				return false;
			got[g++] = v[i];
		}
		if (i >= n)
			return false;
		i++;
	} else {
		for (; i < n && arh_is_token_char((unsigned char)v[i]); i++) {
			if (g + 1 >= sizeof got)
				return false;
			got[g++] = v[i];
		}
	}
	got[g] = '\0';
	if (g == 0 || strcasecmp(got, id) != 0 || !arh_skip_cfws(v, n, &i))
		return false;
	if (i < n && v[i] >= '0' && v[i] <= '9') { /* authres-version */
		while (i < n && v[i] >= '0' && v[i] <= '9')
			i++;
		if (!arh_skip_cfws(v, n, &i))
			return false;
	}
	return i < n && v[i] == ';';
}

size_t
arh_strip(char *msg, size_t len, const char *authserv_id)
{
	struct hdr_iter it;
	struct hdr_field f;
	size_t hlen;

	if (msg == NULL || authserv_id == NULL || authserv_id[0] == '\0')
		return len;
	(void)hdr_end(msg, len, &hlen);
	hdr_iter_init(&it, msg, hlen);
	while (hdr_next(&it, &f)) {
		if (!hdr_name_is(&f, ARH_NAME) ||
		    !arh_is_ours(f.value, f.value_len, authserv_id))
			continue;
		memmove(msg + f.at, msg + f.at + f.len, len - f.at - f.len);
		len -= f.len;
		hlen -= f.len;
		it.len = hlen;
		it.pos = f.at;
	}
	return len;
}

/*
 * mime7_head.c - header sections for mime7.c: parsed for what matters
 * (Content-Type, its boundary, Content-Transfer-Encoding, MIME-Version,
 * 8-bit octets), and written again with lines over 998 octets folded.
 */
#include <string.h>

#include "proto/mime7_int.h"

/* ---- header fields */

/* True when l can be a line of a header section (as Python's parser
 * sees it): a continuation, "name:" or the mbox "From ". */
static bool
is_header_line(const struct line *l, bool is_first)
{
	size_t i = 0;

	if (l->len == 0)
		return false;
	if (is_wsp(l->p[0]))
		return !is_first;
	if (l->len >= 5 && memcmp(l->p, "From ", 5) == 0)
		return true;
	while (i < l->len) {
		unsigned char c = (unsigned char)l->p[i];
		if (c == ':')
			return true;
		if (c < 0x21 || c > 0x7e)
			return false;
		i++;
	}
	return false;
}

/* Whether the field starting at l is named name (lower case). */
static bool
field_is(const struct line *l, const char *name)
{
	size_t n = strlen(name), i;

	if (l->len <= n)
		return false;
	for (i = 0; i < n; i++)
		if (lower(l->p[i]) != name[i])
			return false;
	while (i < l->len && is_wsp(l->p[i]))
		i++;
	return i < l->len && l->p[i] == ':';
}

/*
 * A field's value, unfolded (line ends dropped) into dst: the part after
 * the colon of its first line and each continuation line.
 */
static void
field_value(const char *s, const char *end, char *dst, size_t size)
{
	const char *pos = s;
	struct line l;
	size_t o = 0;
	bool is_first = true;

	while (m7_line_next(&pos, end, &l)) {
		size_t i = 0;
		if (is_first) {
			const char *colon = memchr(l.p, ':', l.len);
			i = colon ? (size_t)(colon - l.p) + 1 : l.len;
		} else if (l.len == 0 || !is_wsp(l.p[0])) {
			break;
		}
		is_first = false;
		for (; i < l.len; i++) {
			if (o + 1 == size) {
				/* Too long: the parameter cut off is
				 * dropped whole. */
				char *semi = memrchr(dst, ';', o);
				o = semi ? (size_t)(semi - dst) : o;
				dst[o] = '\0';
				return;
			}
			dst[o++] = l.p[i];
		}
	}
	dst[o] = '\0';
}

/* Skips white space and (nested) comments (RFC 5322 3.2.2 CFWS). */
static const char *
skip_cfws(const char *p)
{
	for (;;) {
		while (is_wsp(*p) || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			return p;
		for (int depth = 0; *p != '\0'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0) {
				p++;
				break;
			}
		}
	}
}

/* RFC 2045 5.1 token characters. */
static bool
is_token_char(char c)
{
	unsigned char u = (unsigned char)c;

	return u > 0x20 && u < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* A token or quoted-string into dst (size > 0); returns the text after
 * it.  *ok is false when there was neither. */
static const char *
get_value(const char *p, char *dst, size_t size, bool *ok)
{
	size_t o = 0;

	*ok = true;
	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			if (o + 1 < size)
				dst[o++] = *p;
			else
				*ok = false;
		}
		if (*p == '"')
			p++;
	} else {
		while (is_token_char(*p)) {
			if (o + 1 < size)
				dst[o++] = *p;
			else
				*ok = false;
			p++;
		}
		if (o == 0)
			*ok = false;
	}
	dst[o] = '\0';
	return p;
}

/* Content-Type (RFC 2045 5.1): the type in lower case, and boundary=. */
static void
parse_content_type(const char *v, struct head *h)
{
	char name[MIME7_TYPE_MAX], val[MIME7_BOUNDARY_MAX + 2];
	const char *p = skip_cfws(v);
	size_t o = 0;
	bool ok;

	while ((is_token_char(*p) || *p == '/') && o + 1 < sizeof h->type) {
		h->type[o++] = lower(*p);
		p++;
	}
	h->type[o] = '\0';
	if (strchr(h->type, '/') == NULL)
		h->type[0] = '\0'; /* unusable: the default type applies */
	for (;;) {
		p = skip_cfws(p);
		while (*p != '\0' && *p != ';')
			p++; /* whatever does not parse up to the next ';' */
		if (*p == '\0')
			return;
		p = skip_cfws(p + 1);
		p = get_value(p, name, sizeof name, &ok);
		p = skip_cfws(p);
		if (!ok || *p != '=')
			continue;
		p = get_value(skip_cfws(p + 1), val, sizeof val, &ok);
		for (size_t i = 0; name[i] != '\0'; i++)
			name[i] = lower(name[i]);
		if (h->has_boundary || strcmp(name, "boundary") != 0)
			continue;
		/* Python takes the value with trailing blanks removed. */
		o = strlen(val);
		while (o > 0 && is_wsp(val[o - 1]))
			val[--o] = '\0';
		if (ok && o > 0 && o <= MIME7_BOUNDARY_MAX) {
			memcpy(h->boundary, val, o + 1);
			h->has_boundary = true;
		}
	}
}

static enum cte
parse_cte(const char *v)
{
	static const struct {
		const char *name;
		enum cte cte;
	} names[] = {
	    {"7bit", CTE_7BIT},	    {"8bit", CTE_8BIT},
	    {"binary", CTE_BINARY}, {"quoted-printable", CTE_QP},
	    {"base64", CTE_BASE64},
	};
	char tok[MIME7_TYPE_MAX];
	const char *p = skip_cfws(v);
	size_t o = 0;

	while (is_token_char(*p) && o + 1 < sizeof tok) {
		tok[o++] = lower(*p);
		p++;
	}
	tok[o] = '\0';
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(tok, names[i].name) == 0)
			return names[i].cte;
	return CTE_OTHER;
}

/* Reads the header section of the entity s[0..n) into h. */
void
m7_parse_head(const char *s, size_t n, struct head *h)
{
	const char *pos = s, *end = s + n, *field = NULL;
	char v[MIME7_FIELD_MAX] = "";
	bool is_first = true, has_cte = false;
	struct line l = {NULL, 0, 0};

	memset(h, 0, sizeof *h);
	h->cte = CTE_NONE;
	for (;;) {
		const char *at = pos;
		if (!m7_line_next(&pos, end, &l) ||
		    !is_header_line(&l, is_first)) {
			h->len = (size_t)(at - s);
			if (at < end && l.len == 0) {
				h->has_blank = true;
				h->blank_len = l.eol_len;
			}
			return;
		}
		is_first = false;
		for (size_t i = 0; i < l.len; i++)
			if ((unsigned char)l.p[i] >= 0x80)
				h->has_8bit = true;
		if (is_wsp(l.p[0]))
			continue;
		field = l.p;
		if (field_is(&l, "mime-version")) {
			h->has_mime_version = true;
		} else if (field_is(&l, "content-type") && !h->has_type) {
			h->has_type = true;
			field_value(field, end, v, sizeof v);
			parse_content_type(v, h);
		} else if (field_is(&l, "content-transfer-encoding") &&
			   !has_cte) {
			has_cte = true;
			field_value(field, end, v, sizeof v);
			h->cte = parse_cte(v);
		}
	}
}

/*
 * One header line, folded so that no piece passes 998 octets: before the
 * last blank that leaves text on both sides, else after the last ',' or
 * ';' or at the limit with a space inserted.  Trailing blanks, which mean
 * nothing in a field, are dropped from a line that needs folding.
 */
static void
fold_line(struct m7 *x, const struct line *l)
{
	const char *c = l->p;
	size_t len = l->len, pos = 0, lead = 0;

	if (len <= MIME7_LINE_MAX) {
		m7_put_s(x, c, len);
		m7_put_eol(x, l);
		return;
	}
	while (len > 0 && is_wsp(c[len - 1]))
		len--;
	while (lead + (len - pos) > MIME7_LINE_MAX) {
		size_t room = MIME7_LINE_MAX - lead, first = pos, k, cut = 0;

		while (first < len && is_wsp(c[first]))
			first++;
		if (first > pos + room) {
			/* A run of blanks longer than a line: one is kept. */
			pos = first - 1;
			lead = 0;
			continue;
		}
		for (k = pos + room; k > first; k--)
			if (is_wsp(c[k]))
				break;
		if (k > first) {
			/* c[k] is a blank with text before it and after it
			 * (c[len - 1] is no blank). */
			m7_put_s(x, c + pos, k - pos);
			m7_put_s(x, "\r\n", 2);
			pos = k;
			lead = 0;
			continue;
		}
		for (k = pos + room - 1; k > first; k--)
			if (c[k] == ',' || c[k] == ';') {
				cut = k + 1;
				break;
			}
		if (cut == 0) {
			cut = pos + room;
			/* Not inside a UTF-8 sequence, if it can be helped. */
			while (cut > first + 1 &&
			       ((unsigned char)c[cut] & 0xc0) == 0x80)
				cut--;
		}
		m7_put_s(x, c + pos, cut - pos);
		m7_put_s(x, "\r\n ", 3);
		pos = cut;
		lead = 1;
	}
	m7_put_s(x, c + pos, len - pos);
	m7_put_eol(x, l);
}

/*
 * The header section s[0..h->len), long lines folded; the
 * Content-Transfer-Encoding fields left out when cte is not NULL, and
 * then the fields of add, in order, and cte's.
 */
void
m7_put_head(struct m7 *x, const char *s, const struct head *h, const char *add,
	    const char *cte)
{
	const char *pos = s, *end = s + h->len;
	bool is_skipping = false, has_eol = true;
	struct line l;

	while (m7_line_next(&pos, end, &l)) {
		if (!is_wsp(l.p[0]))
			is_skipping = cte != NULL &&
				      field_is(&l, "content-transfer-encoding");
		if (is_skipping)
			continue;
		fold_line(x, &l);
		has_eol = l.eol_len > 0;
	}
	if (add == NULL && cte == NULL)
		return;
	if (!has_eol)
		m7_put_s(x, "\r\n", 2);
	if (add != NULL)
		m7_put_str(x, add);
	if (cte != NULL) {
		m7_put_str(x, "Content-Transfer-Encoding: ");
		m7_put_str(x, cte);
		m7_put_s(x, "\r\n", 2);
	}
}

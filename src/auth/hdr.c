/*
 * hdr.c - the header block of a message, read in place.
 *
 * Called by dmarc (the From domain), arh_strip (our old
 * Authentication-Results) and by whoever runs the checks on a received
 * message.  Pure: no allocation, no I/O; input is (ptr, len), never
 * assumed NUL-terminated.
 *
 * hdr_from_domain() is a small RFC 5322 3.4 address-list reader: it drops
 * comments (nested, with quoted-pairs) and whitespace, keeps quoted
 * strings as single words so that their "," "<" "@" mean nothing, and
 * then walks the list: a ":" outside angle brackets opens a group (the
 * words before it were the group's name), ";" closes it, "," ends a
 * mailbox, and in a mailbox the domain is what follows the last "@" of
 * the angle address if there is one, else of the whole mailbox.  Inside
 * "<...>" an obs-route ("@a,@b:") is skipped by reading only what follows
 * its last ":".  Empty list members (obs-mbox-list) and empty groups are
 * allowed; no mailbox at all is HDR_FROM_BAD.  RFC 7489 6.6.1 leaves
 * From fields with several mailboxes to the receiver; we accept them when
 * every mailbox has the same domain, and call them MULTIPLE otherwise.
 */
#include <string.h>
#include <strings.h>

#include "auth/hdr.h"

/* RFC 5321 4.5.3.1.2: a domain is at most 255 octets. */
#define HDR_DOMAIN_MAX 255

bool
hdr_end(const char *msg, size_t len, size_t *hdr_len)
{
	size_t pos = 0;

	while (pos < len) {
		const char *nl;

		if (msg[pos] == '\n') {
			*hdr_len = pos + 1;
			return true;
		}
		if (msg[pos] == '\r' && pos + 1 < len && msg[pos + 1] == '\n') {
			*hdr_len = pos + 2;
			return true;
		}
		nl = memchr(msg + pos, '\n', len - pos);
		if (nl == NULL)
			break;
		pos = (size_t)(nl - msg) + 1;
	}
	*hdr_len = len;
	return false;
}

void
hdr_iter_init(struct hdr_iter *it, const char *msg, size_t len)
{
	it->msg = msg;
	it->len = len;
	it->pos = 0;
}

/* Offset just past the line starting at pos (its LF, or the end). */
static size_t
hdr_line_end(const char *msg, size_t len, size_t pos)
{
	const char *nl = memchr(msg + pos, '\n', len - pos);

	return nl == NULL ? len : (size_t)(nl - msg) + 1;
}

static bool
hdr_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

bool
hdr_next(struct hdr_iter *it, struct hdr_field *f)
{
	const char *m = it->msg;
	size_t pos = it->pos, end, colon, stop;

	if (pos >= it->len || m[pos] == '\n' ||
	    (m[pos] == '\r' && pos + 1 < it->len && m[pos + 1] == '\n'))
		return false;
	end = hdr_line_end(m, it->len, pos);
	while (end < it->len && hdr_is_wsp(m[end]))
		end = hdr_line_end(m, it->len, end);
	memset(f, 0, sizeof *f);
	f->at = pos;
	f->len = end - pos;
	/* The value stops before the field's last line end. */
	stop = end;
	if (stop > pos && m[stop - 1] == '\n') {
		stop--;
		if (stop > pos && m[stop - 1] == '\r')
			stop--;
	}
	for (colon = pos; colon < stop && m[colon] != ':' && m[colon] != '\n';
	     colon++)
		;
	if (colon < stop && m[colon] == ':' && !hdr_is_wsp(m[pos])) {
		size_t n = colon - pos;

		while (n > 0 && hdr_is_wsp(m[pos + n - 1]))
			n--;
		f->name = m + pos;
		f->name_len = n;
		f->value = m + colon + 1;
		f->value_len = stop - colon - 1;
	} else {
		f->name = m + pos;
		f->value = m + pos;
	}
	it->pos = end;
	return true;
}

bool
hdr_name_is(const struct hdr_field *f, const char *name)
{
	size_t n = strlen(name);

	return f->name_len == n && n > 0 && strncasecmp(f->name, name, n) == 0;
}

/* The From reader: a lexer over the field's value. */
enum hdr_tok {
	HDR_T_END,
	HDR_T_WORD, /* atom or dot-atom text, or a quoted string */
	HDR_T_DLIT, /* [domain literal] */
	HDR_T_SPECIAL,
	HDR_T_ERR,
};

struct hdr_lex {
	const char *s;
	size_t len, pos;
	const char *tok; /* the token's text (a WORD's, quotes included) */
	size_t tok_len;
	char special; /* for HDR_T_SPECIAL: < > @ , : ; */
};

/* Skips a comment at l->pos ("(" seen); false when it never closes. */
static bool
hdr_skip_comment(struct hdr_lex *l)
{
	unsigned depth = 0;

	while (l->pos < l->len) {
		char c = l->s[l->pos++];

		if (c == '\\') {
			if (l->pos < l->len)
				l->pos++;
		} else if (c == '(') {
			depth++;
		} else if (c == ')') {
			if (--depth == 0)
				return true;
		}
	}
	return false;
}

/* Skips a quoted string or domain literal up to close; false if open. */
static bool
hdr_skip_quoted(struct hdr_lex *l, char close)
{
	l->pos++;
	while (l->pos < l->len) {
		char c = l->s[l->pos++];

		if (c == '\\') {
			if (l->pos < l->len)
				l->pos++;
		} else if (c == close) {
			return true;
		}
	}
	return false;
}

static bool
hdr_is_word_char(unsigned char c)
{
	if (c >= 0x80)
		return true; /* UTF-8 (RFC 6532) */
	if (c <= ' ' || c == 0x7f)
		return false;
	return strchr("()<>@,;:\\\"[]", c) == NULL;
}

static enum hdr_tok
hdr_lex_next(struct hdr_lex *l)
{
	unsigned char c;
	size_t at;

	for (;;) {
		if (l->pos >= l->len)
			return HDR_T_END;
		c = (unsigned char)l->s[l->pos];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			l->pos++;
			continue;
		}
		if (c == '(') {
			if (!hdr_skip_comment(l))
				return HDR_T_ERR;
			continue;
		}
		break;
	}
	at = l->pos;
	l->tok = l->s + at;
	if (c == '"' || c == '[') {
		if (!hdr_skip_quoted(l, c == '"' ? '"' : ']'))
			return HDR_T_ERR;
		l->tok_len = l->pos - at;
		return c == '"' ? HDR_T_WORD : HDR_T_DLIT;
	}
	if (strchr("<>@,:;", c) != NULL && c != '\0') {
		l->pos++;
		l->tok_len = 1;
		l->special = (char)c;
		return HDR_T_SPECIAL;
	}
	if (!hdr_is_word_char(c))
		return HDR_T_ERR;
	while (l->pos < l->len && hdr_is_word_char((unsigned char)l->s[l->pos]))
		l->pos++;
	l->tok_len = l->pos - at;
	return HDR_T_WORD;
}

/* What the walk has seen of the current mailbox. */
struct hdr_mbox {
	bool has_words; /* anything at all */
	bool in_angle, had_angle;
	bool has_at; /* an "@" in the part that counts */
	bool is_bad; /* a domain literal or junk where the domain goes */
	char domain[HDR_DOMAIN_MAX + 1];
	size_t domain_len;
};

/* The domain seen so far, for the first mailbox or compared to it. */
struct hdr_from_acc {
	unsigned n;
	bool is_multiple;
	char domain[HDR_DOMAIN_MAX + 1];
};

static void
hdr_mbox_reset_addr(struct hdr_mbox *m)
{
	m->has_at = false;
	m->domain_len = 0;
	m->domain[0] = '\0';
	m->is_bad = false;
}

static bool
hdr_domain_ok(const char *d, size_t n)
{
	size_t label = 0;

	if (n == 0 || d[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!(c >= 0x80 || c == '-' || c == '_' ||
		      (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z')))
			return false;
		label++;
	}
	return label > 0;
}

/* Ends a mailbox: false when it is unusable. */
static bool
hdr_mbox_end(struct hdr_mbox *m, struct hdr_from_acc *acc)
{
	size_t n = m->domain_len;

	if (m->in_angle)
		return false;
	if (!m->has_words && !m->had_angle)
		goto reset; /* an empty member: obs-mbox-list */
	if (!m->has_at || m->is_bad)
		return false;
	if (n > 0 && m->domain[n - 1] == '.')
		n--; /* a fully qualified name's root dot */
	if (!hdr_domain_ok(m->domain, n))
		return false;
	m->domain[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (m->domain[i] >= 'A' && m->domain[i] <= 'Z')
			m->domain[i] = (char)(m->domain[i] - 'A' + 'a');
	if (acc->n++ == 0)
		memcpy(acc->domain, m->domain, n + 1);
	else if (strcmp(acc->domain, m->domain) != 0)
		acc->is_multiple = true;
reset:
	memset(m, 0, sizeof *m);
	return true;
}

/* A word or literal in a mailbox. */
static void
hdr_mbox_word(struct hdr_mbox *m, enum hdr_tok t, const char *s, size_t n)
{
	m->has_words = true;
	if (m->had_angle && !m->in_angle)
		return; /* after the angle address: ignored */
	if (!m->has_at)
		return; /* display name or local part */
	if (t == HDR_T_DLIT || s[0] == '"') {
		m->is_bad = true;
		return;
	}
	/* obs-domain: CFWS may stand around dots, nowhere else. */
	if ((m->domain_len > 0 && m->domain[m->domain_len - 1] != '.' &&
	     s[0] != '.') ||
	    m->domain_len + n > HDR_DOMAIN_MAX) {
		m->is_bad = true;
		return;
	}
	memcpy(m->domain + m->domain_len, s, n);
	m->domain_len += n;
	m->domain[m->domain_len] = '\0';
}

/* A special character; false on a syntax error. */
static bool
hdr_mbox_special(struct hdr_mbox *m, char c, bool *in_group,
		 struct hdr_from_acc *acc)
{
	switch (c) {
	case '<':
		if (m->in_angle || m->had_angle)
			return false;
		m->in_angle = m->had_angle = true;
		hdr_mbox_reset_addr(m);
		return true;
	case '>':
		if (!m->in_angle)
			return false;
		m->in_angle = false;
		return true;
	case '@':
		if (m->had_angle && !m->in_angle)
			return false;
		/* The last "@" counts: restart the domain. */
		m->has_words = true;
		hdr_mbox_reset_addr(m);
		m->has_at = true;
		return true;
	case ':':
		if (m->in_angle) { /* the end of an obs-route */
			hdr_mbox_reset_addr(m);
			return true;
		}
		if (*in_group || m->had_angle || m->has_at)
			return false;
		*in_group = true;
		memset(m, 0, sizeof *m); /* the group's name */
		return true;
	case ',':
		if (m->in_angle) /* inside an obs-route */
			return true;
		return hdr_mbox_end(m, acc);
	case ';':
		if (!*in_group)
			return false;
		*in_group = false;
		return hdr_mbox_end(m, acc);
	default:
		return false;
	}
}

static enum hdr_from_status
hdr_from_parse(const char *v, size_t n, char *domain, size_t size)
{
	struct hdr_lex l = {.s = v, .len = n};
	struct hdr_mbox m;
	struct hdr_from_acc acc;
	bool in_group = false;
	enum hdr_tok t;

	memset(&m, 0, sizeof m);
	memset(&acc, 0, sizeof acc);
	while ((t = hdr_lex_next(&l)) != HDR_T_END) {
		if (t == HDR_T_ERR)
			return HDR_FROM_BAD;
		if (t == HDR_T_SPECIAL) {
			if (!hdr_mbox_special(&m, l.special, &in_group, &acc))
				return HDR_FROM_BAD;
			continue;
		}
		hdr_mbox_word(&m, t, l.tok, l.tok_len);
	}
	if (in_group || !hdr_mbox_end(&m, &acc) || acc.n == 0)
		return HDR_FROM_BAD;
	if (acc.is_multiple)
		return HDR_FROM_MULTIPLE;
	if (strlen(acc.domain) >= size)
		return HDR_FROM_BAD;
	memcpy(domain, acc.domain, strlen(acc.domain) + 1);
	return HDR_FROM_OK;
}

enum hdr_from_status
hdr_from_domain(const char *msg, size_t len, char *domain, size_t size)
{
	struct hdr_iter it;
	struct hdr_field f, from = {0};
	size_t hlen;
	unsigned n = 0;

	if (size > 0)
		domain[0] = '\0';
	(void)hdr_end(msg, len, &hlen);
	hdr_iter_init(&it, msg, hlen);
	while (hdr_next(&it, &f)) {
		if (hdr_name_is(&f, "From") && n++ == 0)
			from = f;
	}
	if (n == 0)
		return HDR_FROM_NONE;
	if (n > 1)
		return HDR_FROM_MULTIPLE;
	if (size == 0)
		return HDR_FROM_BAD;
	return hdr_from_parse(from.value, from.value_len, domain, size);
}

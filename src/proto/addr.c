/*
 * addr.c - parsing of RFC 5321 reverse- and forward-paths.
 *
 * Called by the MAIL and RCPT handlers (addr_parse_path), by HELO/EHLO
 * (addr_is_domain) and by config and the 551 client code
 * (addr_parse_mailbox).  Pure: no allocation, no lookups, no I/O.
 *
 * The grammar is RFC 5321 4.1.2, followed to the letter:
 *   Path       = "<" [ A-d-l ":" ] Mailbox ">"   (route dropped, App. C)
 *   Mailbox    = Local-part "@" ( Domain / address-literal )
 *   Local-part = Dot-string / Quoted-string
 *   Domain     = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]
 *   address-literal = "[" ( IPv4 / "IPv6:" IPv6 / tag ":" 1*dcontent ) "]"
 * "<>" only with ADDR_ALLOW_NULL, "<Postmaster>" (any case) only with
 * ADDR_ALLOW_POSTMASTER.  No angle brackets (but see ADDR_ALLOW_BARE
 * below), empty parts, stray dots, labels starting or ending in "-", a
 * trailing dot, spaces, controls and DEL are all ADDR_ERR_SYNTAX.  IP literals must pass inet_pton(), so an
 * IPv4 literal is a plain dotted quad without leading zeros.
 *
 * RFC 6531 3.3: well-formed UTF-8 (no overlongs, surrogates or code points
 * past U+10FFFF) may stand in atoms, quoted strings and domain labels; the
 * parser always accepts it and, when the whole path is otherwise valid but
 * ADDR_ALLOW_UTF8 is not set, answers ADDR_ERR_NEEDS_UTF8 so the session
 * can say "SMTPUTF8 required" rather than "syntax error".  Malformed UTF-8
 * is a syntax error.
 *
 * Lengths (RFC 5321 4.5.3.1): domain > 255 or a label > 63 octets, path >
 * 256 octets as written (route and brackets included), a local part > 64
 * octets with ADDR_STRICT_LOCAL.  Without that flag the local part is
 * bounded by the path alone: 4.5.3.1 asks for no limits where possible,
 * and VERP and SRS senders are longer than 64 (Postfix and Exim take
 * them).  They are counted in octets, UTF-8 labels too.  "%" and "!" are
 * atext and are parsed; refusing them is policy's job.
 *
 * With ADDR_ALLOW_BARE, addr_parse_path() also takes a mailbox written
 * without angle brackets ("MAIL FROM:a@b SIZE=10"), as Postfix does with
 * strict_rfc821_envelopes = no.  The mailbox is the text up to the first
 * space, and all of that text must be the mailbox: this is how any reader
 * that splits the line at spaces sees it, so no reader can take a
 * parameter for part of the address or the other way round.  A quoted
 * local part holding a space would be read whole by a reader that knows
 * quoting and cut by one that does not, so bare it is a syntax error
 * (bracketed it is fine).  A bare source route and a bare null path are
 * syntax errors too: real senders write neither, and an empty argument is
 * more likely a client that lost its address than a bounce.
 */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "proto/addr.h"

#define ADDR_POSTMASTER "Postmaster"
#define ADDR_POSTMASTER_LEN (sizeof(ADDR_POSTMASTER) - 1)
#define ADDR_IPV6_TAG "IPv6"
#define ADDR_IPV6_TAG_LEN (sizeof(ADDR_IPV6_TAG) - 1)

struct addr_cur {
	const unsigned char *s;
	size_t len;
	size_t pos;
	bool has_utf8;
};

/* Where the parts of a mailbox lie in the input. */
struct addr_span {
	size_t local_at;
	size_t local_len;
	size_t domain_at;
	size_t domain_len;
	bool is_quoted;
	bool is_literal;
};

/* Length of the well-formed UTF-8 sequence at p[0..len), 0 if there is none. */
static size_t
addr_utf8_seq(const unsigned char *p, size_t len)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n, i;

	if (len == 0)
		return 0;
	if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		n = 2;
	} else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		n = 3;
		if (p[0] == 0xE0)
			lo = 0xA0; /* overlong */
		else if (p[0] == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		n = 4;
		if (p[0] == 0xF0)
			lo = 0x90; /* overlong */
		else if (p[0] == 0xF4)
			hi = 0x8F; /* past U+10FFFF */
	} else {
		return 0;
	}
	if (len < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	}
	return n;
}

bool
addr_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		n = addr_utf8_seq(p + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static int
addr_peek(const struct addr_cur *c)
{
	return c->pos < c->len ? c->s[c->pos] : -1;
}

static bool
addr_is_alnum(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9');
}

/* RFC 5322 3.2.3 atext. */
static bool
addr_is_atext(int ch)
{
	return ch > 0 && (addr_is_alnum(ch) || strchr("!#$%&'*+-/=?^_`{|}~",
						       ch) != NULL);
}

/* Takes one well-formed UTF-8 sequence at the cursor, if there is one. */
static bool
addr_take_utf8(struct addr_cur *c)
{
	size_t n;

	if (addr_peek(c) < 0x80)
		return false;
	n = addr_utf8_seq(c->s + c->pos, c->len - c->pos);
	if (n == 0)
		return false;
	c->pos += n;
	c->has_utf8 = true;
	return true;
}

/* Atom = 1*atext (RFC 6531: or UTF-8). */
static bool
addr_scan_atom(struct addr_cur *c)
{
	size_t start = c->pos;

	for (;;) {
		if (addr_is_atext(addr_peek(c)))
			c->pos++;
		else if (!addr_take_utf8(c))
			break;
	}
	return c->pos > start;
}

/* Dot-string = Atom *("." Atom) */
static bool
addr_scan_dot_string(struct addr_cur *c)
{
	if (!addr_scan_atom(c))
		return false;
	while (addr_peek(c) == '.') {
		c->pos++;
		if (!addr_scan_atom(c))
			return false;
	}
	return true;
}

/* Quoted-string = DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE */
static bool
addr_scan_quoted(struct addr_cur *c)
{
	int ch;

	c->pos++; /* the opening quote */
	for (;;) {
		ch = addr_peek(c);
		if (ch == '"') {
			c->pos++;
			return true;
		}
		if (ch == '\\') {
			c->pos++;
			ch = addr_peek(c);
			if (ch < 32 || ch > 126)
				return false;
			c->pos++;
		} else if (ch >= 32 && ch <= 126) {
			c->pos++;
		} else if (!addr_take_utf8(c)) {
			return false;
		}
	}
}

/* sub-domain = Let-dig [Ldh-str], at most SMTP_LABEL_MAX octets. */
static enum addr_result
addr_scan_label(struct addr_cur *c)
{
	size_t start = c->pos;
	bool ends_in_hyphen = false;
	int ch;

	for (;;) {
		ch = addr_peek(c);
		if (addr_is_alnum(ch)) {
			c->pos++;
			ends_in_hyphen = false;
		} else if (ch == '-' && c->pos > start) {
			c->pos++;
			ends_in_hyphen = true;
		} else if (addr_take_utf8(c)) {
			ends_in_hyphen = false;
		} else {
			break;
		}
	}
	if (c->pos == start || ends_in_hyphen)
		return ADDR_ERR_SYNTAX;
	if (c->pos - start > SMTP_LABEL_MAX)
		return ADDR_ERR_DOMAIN_TOO_LONG;
	return ADDR_OK;
}

/* Domain = sub-domain *("." sub-domain); no trailing dot. */
static enum addr_result
addr_scan_domain(struct addr_cur *c)
{
	size_t start = c->pos;
	enum addr_result r;

	for (;;) {
		r = addr_scan_label(c);
		if (r != ADDR_OK)
			return r;
		if (addr_peek(c) != '.')
			break;
		c->pos++;
	}
	if (c->pos - start > SMTP_DOMAIN_MAX)
		return ADDR_ERR_DOMAIN_TOO_LONG;
	return ADDR_OK;
}

/* Standardized-tag = Ldh-str: letters, digits, hyphens, not ending in "-". */
static bool
addr_is_tag(const unsigned char *s, size_t len)
{
	size_t i;

	if (len == 0 || !addr_is_alnum(s[len - 1]))
		return false;
	for (i = 0; i < len; i++) {
		if (!addr_is_alnum(s[i]) && s[i] != '-')
			return false;
	}
	return true;
}

/* Checks the inside of an address literal, "[" and "]" stripped. */
static bool
addr_literal_ok(const unsigned char *s, size_t len)
{
	char buf[SMTP_DOMAIN_MAX + 1];
	unsigned char bin[16];
	const unsigned char *colon = memchr(s, ':', len);
	size_t tag_len;

	if (colon == NULL) {
		memcpy(buf, s, len);
		buf[len] = '\0';
		return inet_pton(AF_INET, buf, bin) == 1;
	}
	tag_len = (size_t)(colon - s);
	if (tag_len == ADDR_IPV6_TAG_LEN &&
	    strncasecmp((const char *)s, ADDR_IPV6_TAG, tag_len) == 0) {
		memcpy(buf, colon + 1, len - tag_len - 1);
		buf[len - tag_len - 1] = '\0';
		return inet_pton(AF_INET6, buf, bin) == 1;
	}
	/* General-address-literal = Standardized-tag ":" 1*dcontent */
	return addr_is_tag(s, tag_len) && len - tag_len - 1 > 0;
}

/* address-literal = "[" ... "]" of dcontent (%d33-90 / %d94-126). */
static enum addr_result
addr_scan_literal(struct addr_cur *c)
{
	size_t start = c->pos;
	int ch;

	c->pos++; /* "[" */
	for (;;) {
		ch = addr_peek(c);
		if (ch == ']')
			break;
		if (ch < 33 || ch > 126 || ch == '[' || ch == '\\')
			return ADDR_ERR_SYNTAX;
		c->pos++;
	}
	c->pos++; /* "]" */
	if (c->pos - start > SMTP_DOMAIN_MAX)
		return ADDR_ERR_DOMAIN_TOO_LONG;
	if (!addr_literal_ok(c->s + start + 1, c->pos - start - 2))
		return ADDR_ERR_SYNTAX;
	return ADDR_OK;
}

/* A-d-l = At-domain *( "," At-domain ), then ":"; the cursor is at "@". */
static enum addr_result
addr_scan_route(struct addr_cur *c)
{
	enum addr_result r;

	for (;;) {
		if (addr_peek(c) != '@')
			return ADDR_ERR_SYNTAX;
		c->pos++;
		r = addr_scan_domain(c);
		if (r != ADDR_OK)
			return r;
		if (addr_peek(c) == ':') {
			c->pos++;
			return ADDR_OK;
		}
		if (addr_peek(c) != ',')
			return ADDR_ERR_SYNTAX;
		c->pos++;
	}
}

/* The longest local part the caller's flags allow. */
static size_t
addr_local_max(unsigned flags)
{
	return (flags & ADDR_STRICT_LOCAL) ? SMTP_LOCAL_RFC_MAX
					   : SMTP_LOCAL_MAX;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ) */
static enum addr_result
addr_scan_mailbox(struct addr_cur *c, struct addr_span *sp, size_t local_max)
{
	enum addr_result r;
	bool ok;

	sp->local_at = c->pos;
	sp->is_quoted = addr_peek(c) == '"';
	ok = sp->is_quoted ? addr_scan_quoted(c) : addr_scan_dot_string(c);
	if (!ok || addr_peek(c) != '@')
		return ADDR_ERR_SYNTAX;
	sp->local_len = c->pos - sp->local_at;
	if (sp->local_len > local_max)
		return ADDR_ERR_LOCAL_TOO_LONG;
	c->pos++;
	sp->domain_at = c->pos;
	sp->is_literal = addr_peek(c) == '[';
	r = sp->is_literal ? addr_scan_literal(c) : addr_scan_domain(c);
	if (r != ADDR_OK)
		return r;
	sp->domain_len = c->pos - sp->domain_at;
	return ADDR_OK;
}

/* Copies a checked mailbox into *out; the lengths fit the buffers. */
static void
addr_fill(struct addr *out, const unsigned char *s, const struct addr_span *sp)
{
	size_t n = 0;

	memcpy(out->local, s + sp->local_at, sp->local_len);
	out->local[sp->local_len] = '\0';
	memcpy(out->domain, s + sp->domain_at, sp->domain_len);
	out->domain[sp->domain_len] = '\0';
	memcpy(out->mailbox, out->local, sp->local_len);
	n = sp->local_len;
	out->mailbox[n++] = '@';
	memcpy(out->mailbox + n, out->domain, sp->domain_len);
	out->mailbox[n + sp->domain_len] = '\0';
	out->is_quoted = sp->is_quoted;
	out->is_literal = sp->is_literal;
}

/* Fills *out for the bare Postmaster of s[0..len), as written. */
static void
addr_fill_postmaster(struct addr *out, const char *s)
{
	memcpy(out->local, s, ADDR_POSTMASTER_LEN);
	out->local[ADDR_POSTMASTER_LEN] = '\0';
	memcpy(out->mailbox, s, ADDR_POSTMASTER_LEN);
	out->mailbox[ADDR_POSTMASTER_LEN] = '\0';
	out->is_postmaster = true;
}

/* True when s[0..len) starts with "Postmaster", in any case. */
static bool
addr_is_postmaster(const char *s, size_t len)
{
	return len >= ADDR_POSTMASTER_LEN &&
	       strncasecmp(s, ADDR_POSTMASTER, ADDR_POSTMASTER_LEN) == 0;
}

/* True when s[0..len) starts with "<Postmaster>", in any case. */
static bool
addr_is_postmaster_path(const char *s, size_t len)
{
	return len >= ADDR_POSTMASTER_LEN + 2 &&
	       s[ADDR_POSTMASTER_LEN + 1] == '>' &&
	       addr_is_postmaster(s + 1, len - 1);
}

/*
 * ADDR_ALLOW_BARE: s[0..len) does not start with "<"; the mailbox is
 * everything up to the first space (see the top of this file).
 */
static enum addr_result
addr_parse_bare(const char *s, size_t len, unsigned flags, struct addr *out,
		size_t *consumed_out)
{
	const char *space = memchr(s, ' ', len);
	size_t n = space != NULL ? (size_t)(space - s) : len;
	enum addr_result r;

	/* Not empty (the null path is "<>" only); no route ("@a:b@c"). */
	if (n == 0 || s[0] == '@')
		return ADDR_ERR_SYNTAX;
	r = addr_parse_mailbox(s, n, flags & ~(unsigned)ADDR_ALLOW_NULL, out);
	if (r != ADDR_OK)
		return r;
	out->is_bare = true;
	*consumed_out = n;
	return ADDR_OK;
}

enum addr_result
addr_parse_path(const char *s, size_t len, unsigned flags, struct addr *out,
		size_t *consumed_out)
{
	struct addr_cur c = { (const unsigned char *)s, len, 1, false };
	struct addr_span sp;
	enum addr_result r;
	bool has_route = false, route_utf8;

	memset(out, 0, sizeof(*out));
	*consumed_out = 0;
	if ((flags & ADDR_ALLOW_BARE) && len > 0 && s[0] != '<')
		return addr_parse_bare(s, len, flags, out, consumed_out);
	if (len < 2 || s[0] != '<')
		return ADDR_ERR_SYNTAX;
	if (s[1] == '>') {
		if (!(flags & ADDR_ALLOW_NULL))
			return ADDR_ERR_SYNTAX;
		out->is_null = true;
		*consumed_out = 2;
		return ADDR_OK;
	}
	if ((flags & ADDR_ALLOW_POSTMASTER) &&
	    addr_is_postmaster_path(s, len)) {
		addr_fill_postmaster(out, s + 1);
		*consumed_out = ADDR_POSTMASTER_LEN + 2;
		return ADDR_OK;
	}
	if (s[1] == '@') {
		r = addr_scan_route(&c);
		if (r != ADDR_OK)
			return r;
		has_route = true;
	}
	/* A UTF-8 route needs SMTPUTF8 too; is_utf8 tells of the mailbox. */
	route_utf8 = c.has_utf8;
	c.has_utf8 = false;
	r = addr_scan_mailbox(&c, &sp, addr_local_max(flags));
	if (r != ADDR_OK)
		return r;
	if (addr_peek(&c) != '>')
		return ADDR_ERR_SYNTAX;
	c.pos++;
	if (c.pos > SMTP_PATH_MAX)
		return ADDR_ERR_PATH_TOO_LONG;
	if ((route_utf8 || c.has_utf8) && !(flags & ADDR_ALLOW_UTF8))
		return ADDR_ERR_NEEDS_UTF8;
	addr_fill(out, c.s, &sp);
	out->has_route = has_route;
	out->is_utf8 = c.has_utf8;
	*consumed_out = c.pos;
	return ADDR_OK;
}

enum addr_result
addr_parse_mailbox(const char *s, size_t len, unsigned flags,
		   struct addr *out)
{
	struct addr_cur c = { (const unsigned char *)s, len, 0, false };
	struct addr_span sp;
	enum addr_result r;

	memset(out, 0, sizeof(*out));
	if (len == 0) {
		if (!(flags & ADDR_ALLOW_NULL))
			return ADDR_ERR_SYNTAX;
		out->is_null = true;
		return ADDR_OK;
	}
	if ((flags & ADDR_ALLOW_POSTMASTER) && len == ADDR_POSTMASTER_LEN &&
	    addr_is_postmaster(s, len)) {
		addr_fill_postmaster(out, s);
		return ADDR_OK;
	}
	r = addr_scan_mailbox(&c, &sp, addr_local_max(flags));
	if (r != ADDR_OK)
		return r;
	if (c.pos != len)
		return ADDR_ERR_SYNTAX;
	/* It must fit in a path: "<" mailbox ">". */
	if (len > SMTP_PATH_MAX - 2)
		return ADDR_ERR_PATH_TOO_LONG;
	if (c.has_utf8 && !(flags & ADDR_ALLOW_UTF8))
		return ADDR_ERR_NEEDS_UTF8;
	addr_fill(out, c.s, &sp);
	out->is_utf8 = c.has_utf8;
	return ADDR_OK;
}

unsigned
addr_envelope_flags(bool is_strict)
{
	return is_strict ? ADDR_STRICT_LOCAL : ADDR_ALLOW_BARE;
}

bool
addr_is_domain(const char *s, size_t len, bool allow_utf8)
{
	struct addr_cur c = { (const unsigned char *)s, len, 0, false };
	enum addr_result r;

	if (len == 0)
		return false;
	r = s[0] == '[' ? addr_scan_literal(&c) : addr_scan_domain(&c);
	return r == ADDR_OK && c.pos == len && (allow_utf8 || !c.has_utf8);
}

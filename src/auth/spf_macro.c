/*
 * spf_macro.c - SPF macros (RFC 7208 7) and the domain names they make:
 * the macro-string and domain-spec syntax, the expansion of %{s l o d i
 * p v h} (and c r t in exp= text), URL escaping, and the checks and
 * trimming a target name gets before it is looked up (4.3, 4.8).
 *
 * Called by spf.c (term targets, exp= text, the public spf_expand()) and
 * spf_record.c (the syntax of domain-specs and modifier values), through
 * spf_int.h.  Promises: the output is always NUL-terminated and cut to
 * the caller's size; a syntax error is reported, never half-expanded
 * into a name; %{p} reads at most 10 PTR names (5.5) and asks for all
 * the answers it is missing in one round, returning "pending" until
 * they are in the view (none asked while the context is quiet).  Pure:
 * DNS only through spf_get().
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/spf.h"
#include "auth/spf_int.h"

#define SPF_LABEL_MAX 63   /* RFC 1035 2.3.4 */
#define SPF_PARTS_MAX 1024 /* parts of a macro value split up */

/* ---- addresses as macros spell them ---- */

/* The client's address as %{i} spells it: dotted quad or 32 nibbles. */
static void
spf_ip_dotted(const struct spf_ip *ip, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (!ip->is_v6) {
		snprintf(out, size, "%u.%u.%u.%u", ip->b[0], ip->b[1], ip->b[2],
			 ip->b[3]);
		return;
	}
	for (unsigned i = 0; i < 32 && n + 2 < size; i++) {
		unsigned v = i % 2 ? ip->b[i / 2] & 0xf : ip->b[i / 2] >> 4;

		if (i > 0)
			out[n++] = '.';
		out[n++] = hex[v];
	}
	out[n] = '\0';
}

/* ---- names ---- */

/*
 * RFC 7208 4.3 and 4.8: labels of 1 to 63 octets, at least two of them,
 * 253 octets at most (no trailing dot here), printable ASCII only (an
 * address literal "[192.0.2.1]" is no name either).
 */
bool
spf_name_valid(const char *s)
{
	size_t len = strlen(s), label = 0, labels = 1;

	if (len == 0 || len > SPF_NAME_MAX || s[0] == '[')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] <= ' ' || s[i] > '~')
			return false; /* not a name a resolver would ask */
		if (s[i] != '.') {
			if (++label > SPF_LABEL_MAX)
				return false;
			continue;
		}
		if (label == 0)
			return false;
		label = 0;
		labels++;
	}
	return label > 0 && labels >= 2;
}

/*
 * RFC 7208 4.8 on an expanded domain-spec in place: no trailing dot, and
 * past 253 octets whole labels come off the left.
 */
void
spf_name_fit(char *s)
{
	size_t len = strlen(s);

	if (len > 0 && s[len - 1] == '.')
		s[--len] = '\0';
	while (len > SPF_NAME_MAX) {
		char *dot = strchr(s, '.');
		size_t cut;

		if (dot == NULL) {
			s[0] = '\0';
			return;
		}
		cut = (size_t)(dot - s) + 1;
		memmove(s, s + cut, len - cut + 1);
		len -= cut;
	}
}

/* ---- macros (RFC 7208 7) ---- */

static bool
spf_is_delim(int ch)
{
	return ch != '\0' && strchr(".-+,/_=", ch) != NULL;
}

/*
 * Reads one macro-expand at s[0..len), s[0] == '%': its length, or 0 when
 * it is not one.  *letter_out: the macro letter as written, or the
 * character after '%' for %% %_ %-.
 */
static size_t
spf_macro_len(const char *s, size_t len, bool is_exp, char *letter_out)
{
	size_t i = 3;
	int ch;

	if (len < 2)
		return 0;
	*letter_out = s[1];
	if (s[1] == '%' || s[1] == '_' || s[1] == '-')
		return 2;
	if (s[1] != '{' || len < 4)
		return 0;
	ch = s[2] | 0x20;
	*letter_out = s[2];
	if (strchr(is_exp ? "slodipvhcrt" : "slodipvh", ch) == NULL ||
	    !spf_is_alpha(s[2]))
		return 0;
	if (i < len && s[i] >= '0' && s[i] <= '9') {
		bool is_zero = true;

		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			is_zero = is_zero && s[i] == '0';
		if (is_zero)
			return 0; /* 7.3: the digit count must be nonzero */
	}
	if (i < len && (s[i] | 0x20) == 'r')
		i++;
	while (i < len && spf_is_delim(s[i]))
		i++;
	if (i >= len || s[i] != '}')
		return 0;
	return i + 1;
}

/*
 * RFC 7208 7.1: macro-string (is_exp: explain-string, spaces too).  When
 * valid, *last_macro_end_out is where the last macro-expand ended (0 if
 * none).
 */
bool
spf_macro_string_valid(const char *s, size_t len, bool is_exp,
		       size_t *last_macro_end_out)
{
	size_t i = 0, m;
	char letter;

	*last_macro_end_out = 0;
	while (i < len) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '%') {
			m = spf_macro_len(s + i, len - i, is_exp, &letter);
			if (m == 0)
				return false;
			i += m;
			*last_macro_end_out = i;
			continue;
		}
		if (!(ch >= 0x21 && ch <= 0x7e) && !(is_exp && ch == ' '))
			return false;
		i++;
	}
	return true;
}

/*
 * RFC 7208 4.6.1 domain-spec = macro-string domain-end, domain-end =
 * ( "." toplabel [ "." ] ) / macro-expand.
 */
bool
spf_domain_spec_valid(const char *s, size_t len)
{
	size_t end, dot, i;
	bool has_alpha = false;

	if (len == 0 || !spf_macro_string_valid(s, len, false, &end))
		return false;
	if (end == len)
		return true;
	if (s[len - 1] == '.')
		len--;
	for (dot = len; dot > end && s[dot - 1] != '.'; dot--)
		;
	if (dot == end || dot == len || s[dot - 1] != '.')
		return false;
	/* toplabel: alphanumerics with a letter, or with an inner hyphen */
	if (s[dot] == '-' || s[len - 1] == '-')
		return false;
	for (i = dot; i < len; i++) {
		if (s[i] == '-') {
			has_alpha = true; /* "1-2" is a valid toplabel */
			continue;
		}
		if (!spf_is_alnum(s[i]))
			return false;
		has_alpha = has_alpha || spf_is_alpha(s[i]);
	}
	return has_alpha;
}

/*
 * RFC 7208 5.5 for %{p}: among the first 10 PTR names of the client
 * whose addresses include it, one equal to domain, else one under it,
 * else the first; "unknown" when none or on a DNS error.  Returns 1 when
 * answers are missing (all of them asked at once).
 */
static int
spf_validated_name(struct spf_ctx *c, const char *domain, char *out,
		   size_t size)
{
	char rev[SPF_REV_MAX];
	const struct adns_answer *ptr, *a;
	const char *best = NULL;
	int best_rank = 0;
	bool is_pending = false;
	size_t dlen = strlen(domain);

	snprintf(out, size, "unknown");
	spf_ip_reverse(&c->ip, rev, sizeof rev);
	ptr = spf_get(c, rev, ADNS_PTR);
	if (ptr == NULL)
		return 1;
	for (size_t i = 0;
	     ptr->status == ADNS_OK && i < ptr->n && i < SPF_PTR_MAX; i++) {
		const char *name = ptr->rr[i];
		size_t nlen = strlen(name);
		int rank;

		a = spf_get(c, name, spf_addr_type(c));
		if (a == NULL) {
			is_pending = true;
			continue;
		}
		if (!spf_addrs_match(c, a, c->ip.is_v6 ? 128 : 32))
			continue;
		if (strcasecmp(name, domain) == 0)
			rank = 3;
		else if (nlen > dlen && name[nlen - dlen - 1] == '.' &&
			 strcasecmp(name + nlen - dlen, domain) == 0)
			rank = 2;
		else
			rank = 1;
		if (rank > best_rank) {
			best_rank = rank;
			best = name;
		}
	}
	if (is_pending)
		return 1;
	if (best != NULL)
		snprintf(out, size, "%s", best);
	return 0;
}

/* The value of a macro letter (lower case) before transformers. */
static int
spf_macro_value(struct spf_ctx *c, char letter, const char *domain, char *buf,
		size_t size, const char **value_out)
{
	*value_out = buf;
	switch (letter) {
	case 's':
		*value_out = c->out->sender;
		return 0;
	case 'l':
		*value_out = c->local;
		return 0;
	case 'o':
		*value_out = c->sdom;
		return 0;
	case 'd':
		*value_out = domain;
		return 0;
	case 'i':
		spf_ip_dotted(&c->ip, buf, size);
		return 0;
	case 'p':
		return spf_validated_name(c, domain, buf, size);
	case 'v':
		*value_out = c->ip.is_v6 ? "ip6" : "in-addr";
		return 0;
	case 'h':
		*value_out = c->rq->helo ? c->rq->helo : "";
		return 0;
	case 'c':
		if (inet_ntop(c->ip.is_v6 ? AF_INET6 : AF_INET, c->ip.b, buf,
			      (socklen_t)size) == NULL)
			buf[0] = '\0';
		return 0;
	case 'r':
		*value_out = c->rq->receiver && c->rq->receiver[0]
				 ? c->rq->receiver
				 : "unknown";
		return 0;
	default: /* 't' */
		snprintf(buf, size, "%" PRId64, c->rq->now);
		return 0;
	}
}

/* Appends s[0..len) to out at *n, URL-escaping when is_escaped (7.3). */
static void
spf_put(char *out, size_t size, size_t *n, const char *s, size_t len,
	bool is_escaped)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		bool is_plain = spf_is_alnum(ch) || ch == '-' || ch == '.' ||
				ch == '_' || ch == '~';

		if (!is_escaped || is_plain) {
			if (*n + 1 < size)
				out[(*n)++] = (char)ch;
			continue;
		}
		if (*n + 3 < size) {
			out[(*n)++] = '%';
			out[(*n)++] = hex[ch >> 4];
			out[(*n)++] = hex[ch & 0xf];
		}
	}
	out[*n] = '\0';
}

/*
 * Expands the macro-expand m[0..mlen) = "%{" letter digits [r] delims "}"
 * into out at *n (RFC 7208 7.3).
 */
static int
spf_expand_one(struct spf_ctx *c, const char *m, size_t mlen,
	       const char *domain, char *out, size_t size, size_t *n)
{
	struct {
		uint16_t at, len;
	} parts[SPF_PARTS_MAX];
	char buf[SPF_LOCAL_MAX], delims[8] = "";
	const char *value;
	size_t i = 3, nparts = 0, start = 0, vlen, keep = 0, from, nd = 0;
	bool is_reversed = false,
	     is_escaped = spf_is_alpha(m[2]) && m[2] >= 'A' && m[2] <= 'Z';
	int rc;

	rc = spf_macro_value(c, (char)(m[2] | 0x20), domain, buf, sizeof buf,
			     &value);
	if (rc != 0)
		return rc;
	for (; m[i] >= '0' && m[i] <= '9'; i++)
		keep = keep > SPF_PARTS_MAX ? keep
					    : keep * 10 + (size_t)(m[i] - '0');
	if ((m[i] | 0x20) == 'r') {
		is_reversed = true;
		i++;
	}
	for (; i < mlen - 1; i++)
		if (nd + 1 < sizeof delims && strchr(delims, m[i]) == NULL)
			delims[nd++] = m[i], delims[nd] = '\0';
	if (nd == 0)
		delims[0] = '.', delims[1] = '\0';
	vlen = strlen(value);
	if (vlen >= UINT16_MAX)
		vlen = UINT16_MAX - 1;
	for (size_t k = 0; k <= vlen && nparts < SPF_PARTS_MAX; k++) {
		if (k < vlen && strchr(delims, value[k]) == NULL)
			continue;
		parts[nparts].at = (uint16_t)start;
		parts[nparts].len = (uint16_t)(k - start);
		nparts++;
		start = k + 1;
	}
	if (is_reversed)
		for (size_t a = 0, b = nparts - 1; a < b; a++, b--) {
			__typeof__(parts[0]) t = parts[a];

			parts[a] = parts[b];
			parts[b] = t;
		}
	from = keep == 0 || keep >= nparts ? 0 : nparts - keep;
	for (size_t k = from; k < nparts; k++) {
		if (k > from)
			spf_put(out, size, n, ".", 1, false);
		spf_put(out, size, n, value + parts[k].at, parts[k].len,
			is_escaped);
	}
	return 0;
}

/*
 * Expands s[0..len) into out; the syntax has been checked unless
 * is_checked is false.  Returns 0, -1 (syntax), 1 (pending %{p}).
 */
int
spf_expand_str(struct spf_ctx *c, const char *s, size_t len, const char *domain,
	       bool is_exp, char *out, size_t size)
{
	size_t i = 0, n = 0, end, m;
	char letter;
	int rc;

	out[0] = '\0';
	if (!spf_macro_string_valid(s, len, is_exp, &end))
		return -1;
	while (i < len) {
		if (s[i] != '%') {
			spf_put(out, size, &n, s + i, 1, false);
			i++;
			continue;
		}
		m = spf_macro_len(s + i, len - i, is_exp, &letter);
		if (m == 2) {
			const char *lit = letter == '%'	  ? "%"
					  : letter == '_' ? " "
							  : "%20";

			spf_put(out, size, &n, lit, strlen(lit), false);
		} else {
			rc = spf_expand_one(c, s + i, m, domain, out, size, &n);
			if (rc != 0)
				return rc;
		}
		i += m;
	}
	return 0;
}

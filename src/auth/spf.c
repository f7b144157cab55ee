/*
 * spf.c - RFC 7208 check_host(): record selection, the mechanisms and
 * modifiers, macros, and the processing limits, over the DNS view of
 * auth/adns.h.
 *
 * Called by policy's auth run (and the unit tests, the fuzzer) through
 * spf_eval().  Pure and restartable: every call evaluates from the start
 * against the answers the view holds; at the first answer missing it asks
 * for it with need() and the whole evaluation reports SPF_PENDING.  Where
 * one step needs several answers at once (the addresses of every MX host,
 * of every PTR name) all are asked in the same round, and when a record
 * stops on a missing answer the TXT records of its later include: and
 * redirect= targets are asked ahead too.  Asking ahead never changes a
 * result: evaluation reads only what the sequential algorithm would read.
 *
 * What it promises (RFC 7208 sections):
 *   4.3   an initial domain that is malformed or does not exist: none
 *   4.5   exactly one TXT record starting "v=spf1" (then space or end);
 *         none: none; several: permerror
 *   4.6   the whole record is checked for syntax before anything is
 *         evaluated; any error is permerror
 *   4.6.4 10 DNS-querying terms (include a mx ptr exists redirect), 2
 *         void lookups (a term whose lookup got NODATA or NXDOMAIN), 10
 *         MX names (more: permerror), 10 PTR names (the rest ignored)
 *   5     the mechanisms, with 5.2's include table and dual CIDR lengths
 *   6     redirect= (once; no record there: permerror), exp= (once; only
 *         on fail; any trouble getting it: no explanation)
 *   7     macros s l o d i p v h, and c r t in exp= text only
 * A TEMPFAIL answer is temperror, except where 5.5 says a ptr lookup
 * error is no match, and for exp= (no explanation).
 *
 * Decisions where the RFC leaves room: the void limit counts one per
 * term (the a/exists address, the mx MX set, the ptr PTR set), not the
 * addresses of MX hosts; a target that is not a valid name after macro
 * expansion is a void lookup for a/mx/ptr/exists and "none" for
 * include/redirect (so permerror); %{d0} is a syntax error.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/spf.h"
#include "util/str.h"

#define SPF_NAME_MAX 253 /* RFC 7208 4.8: longer is cut from the left */
#define SPF_LABEL_MAX 63 /* RFC 1035 2.3.4 */
/* include/redirect nesting; the lookup limit stops well before */
#define SPF_DEPTH_MAX 12
#define SPF_EXPAND_MAX 2048 /* a macro-expanded string before cutting */
#define SPF_PARTS_MAX 1024  /* parts of a macro value split up */
#define SPF_CIDR4_MAX 32
#define SPF_CIDR6_MAX 128
#define SPF_REV_MAX 80 /* "....ip6.arpa": 64 + 9 */
#define SPF_LOCAL_MAX 520
#define SPF_SHOWN_MAX 64 /* octets of a name or term in a problem */

enum spf_mech {
	SPF_M_ALL,
	SPF_M_INCLUDE,
	SPF_M_A,
	SPF_M_MX,
	SPF_M_PTR,
	SPF_M_IP4,
	SPF_M_IP6,
	SPF_M_EXISTS,
};

enum spf_mod { SPF_MOD_REDIRECT, SPF_MOD_EXP, SPF_MOD_OTHER };

/* One term of a record, pointing into the record's text. */
struct spf_term {
	bool is_modifier;
	enum spf_mod mod;
	enum spf_mech mech;
	enum spf_result qualifier;
	const char *spec; /* domain-spec or modifier value; NULL: none */
	size_t spec_len;
	unsigned cidr4, cidr6;
	unsigned char net[16];
};

struct spf_ip {
	bool is_v6;
	unsigned char b[16]; /* IPv4 in b[0..4) */
};

struct spf_ctx {
	const struct spf_request *rq;
	const struct adns_view *dns;
	struct spf_outcome *out;
	struct spf_ip ip;
	const char *local; /* sender's local part, "postmaster" when none */
	const char *sdom;  /* sender's domain */
	char local_buf[SPF_LOCAL_MAX];
	unsigned voids;
	bool is_quiet; /* asking ahead: no need() for %{p} */
};

/* A match, no match, or a result that ends the evaluation. */
enum spf_step { SPF_NOMATCH, SPF_MATCH, SPF_STOP };

static enum spf_result spf_check_host(struct spf_ctx *c, const char *domain,
				      unsigned depth, bool can_explain);

const char *
spf_result_name(enum spf_result r)
{
	static const char *const names[] = {
	    "none",	"neutral",   "pass",	  "fail",
	    "softfail", "temperror", "permerror", "pending",
	};

	return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

/* The first reason wins: it is the deepest, most specific one. */
static void __attribute__((format(printf, 2, 3)))
spf_problem(struct spf_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->out->problem[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(c->out->problem, sizeof c->out->problem, fmt, ap);
	va_end(ap);
}

/* A length for "%.*s" in a problem: short enough to leave room. */
static int
spf_short(size_t len)
{
	return len > SPF_SHOWN_MAX ? SPF_SHOWN_MAX : (int)len;
}

static const struct adns_answer *
spf_get(struct spf_ctx *c, const char *name, enum adns_type type)
{
	const struct adns_answer *a = c->dns->get(c->dns->ctx, name, type);

	if (a == NULL && !c->is_quiet)
		c->dns->need(c->dns->ctx, name, type);
	return a;
}

static bool
spf_is_void(const struct adns_answer *a)
{
	return a->status == ADNS_NXDOMAIN || a->status == ADNS_NODATA ||
	       (a->status == ADNS_OK && a->n == 0);
}

static enum spf_result
spf_tempfail(struct spf_ctx *c, const char *name, enum adns_type type)
{
	spf_problem(c, "DNS error looking up %s %.*s", adns_type_name(type),
		    SPF_SHOWN_MAX, name);
	return SPF_TEMPERROR;
}

/* RFC 7208 4.6.4: one more void lookup; false past the limit. */
static bool
spf_count_void(struct spf_ctx *c)
{
	if (++c->voids <= SPF_VOID_MAX)
		return true;
	spf_problem(c, "%s", "void lookup limit");
	return false;
}

/* RFC 7208 4.6.4: one more DNS-querying term; false past the limit. */
static bool
spf_count_lookup(struct spf_ctx *c)
{
	if (++c->out->lookups <= SPF_LOOKUP_MAX)
		return true;
	spf_problem(c, "%s", "too many DNS lookups");
	return false;
}

/* ---- addresses ---- */

static bool
spf_ip_parse(const char *s, struct spf_ip *ip)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0,	   0,
						 0, 0, 0, 0, 0xff, 0xff};

	memset(ip, 0, sizeof *ip);
	if (s == NULL)
		return false;
	if (inet_pton(AF_INET, s, ip->b) == 1)
		return true;
	if (inet_pton(AF_INET6, s, ip->b) != 1)
		return false;
	if (memcmp(ip->b, mapped, sizeof mapped) == 0) {
		memmove(ip->b, ip->b + 12, 4);
		memset(ip->b + 4, 0, 12);
		return true;
	}
	ip->is_v6 = true;
	return true;
}

/* True when the first bits of a and b agree. */
static bool
spf_ip_in(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	unsigned char mask;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* Does any address record in a fall in the client's network? */
static bool
spf_addrs_match(const struct spf_ctx *c, const struct adns_answer *a,
		unsigned cidr)
{
	unsigned char b[16];

	for (size_t i = 0; a->status == ADNS_OK && i < a->n; i++) {
		memset(b, 0, sizeof b);
		if (inet_pton(c->ip.is_v6 ? AF_INET6 : AF_INET, a->rr[i], b) !=
		    1)
			continue;
		if (spf_ip_in(c->ip.b, b, cidr))
			return true;
	}
	return false;
}

static enum adns_type
spf_addr_type(const struct spf_ctx *c)
{
	return c->ip.is_v6 ? ADNS_AAAA : ADNS_A;
}

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

/* The PTR query name of the client's address. */
static void
spf_ip_reverse(const struct spf_ip *ip, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (!ip->is_v6) {
		snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", ip->b[3],
			 ip->b[2], ip->b[1], ip->b[0]);
		return;
	}
	for (int i = 31; i >= 0 && n + 2 < size; i--) {
		unsigned v = i % 2 ? ip->b[i / 2] & 0xf : ip->b[i / 2] >> 4;

		out[n++] = hex[v];
		out[n++] = '.';
	}
	out[n] = '\0';
	snprintf(out + n, size - n, "ip6.arpa");
}

/* ---- names ---- */

static bool
spf_is_alnum(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9');
}

static bool
spf_is_alpha(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/*
 * RFC 7208 4.3 and 4.8: labels of 1 to 63 octets, at least two of them,
 * 253 octets at most (no trailing dot here), printable ASCII only (an
 * address literal "[192.0.2.1]" is no name either).
 */
static bool
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
static void
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
static bool
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
static bool
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
static int
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

/* ---- record parsing (RFC 7208 4.6.1, 5, 6) ---- */

/* A CIDR length "/N" at s[0..len): 0..max, no leading zero. */
static bool
spf_cidr_parse(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (len == 0 || len > 3 || (s[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/*
 * Takes a dual-cidr-length off the end of s[0..*len): "/N", "//M",
 * "/N//M".  False when one is there but bad.
 */
static bool
spf_dual_cidr(const char *s, size_t *len, struct spf_term *t)
{
	size_t i = *len;

	while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
		i--;
	if (i == *len || i == 0 || s[i - 1] != '/')
		return true;
	if (i >= 2 && s[i - 2] == '/') {
		if (!spf_cidr_parse(s + i, *len - i, SPF_CIDR6_MAX, &t->cidr6))
			return false;
		*len = i - 2;
		i = *len;
		while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
			i--;
		if (i == *len || i == 0 || s[i - 1] != '/')
			return true;
	}
	if (!spf_cidr_parse(s + i, *len - i, SPF_CIDR4_MAX, &t->cidr4))
		return false;
	*len = i - 1;
	return true;
}

/* ip4:/ip6: network [ "/" length ]. */
static bool
spf_parse_net(const char *s, size_t len, bool is_v6, struct spf_term *t)
{
	char buf[INET6_ADDRSTRLEN + 1];
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	unsigned max = is_v6 ? SPF_CIDR6_MAX : SPF_CIDR4_MAX;

	if (alen == 0 || alen >= sizeof buf)
		return false;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(is_v6 ? AF_INET6 : AF_INET, buf, t->net) != 1)
		return false;
	if (slash == NULL) {
		t->cidr4 = max;
		return true;
	}
	return spf_cidr_parse(slash + 1, len - alen - 1, max, &t->cidr4);
}

static bool
spf_parse_modifier(const char *s, size_t len, struct spf_term *t)
{
	size_t i = 1;

	if (len == 0 || !spf_is_alpha(s[0]))
		return false;
	while (i < len && (spf_is_alnum(s[i]) || s[i] == '-' || s[i] == '_' ||
			   s[i] == '.'))
		i++;
	if (i >= len || s[i] != '=')
		return false;
	t->is_modifier = true;
	t->spec = s + i + 1;
	t->spec_len = len - i - 1;
	if (str_eq_nocase(s, i, "redirect"))
		t->mod = SPF_MOD_REDIRECT;
	else if (str_eq_nocase(s, i, "exp"))
		t->mod = SPF_MOD_EXP;
	else
		t->mod = SPF_MOD_OTHER;
	return true;
}

/*
 * Parses one term s[0..len) (no spaces).  Returns false on a syntax
 * error (RFC 7208 4.6: the record is permerror).
 */
static bool
spf_parse_term(const char *s, size_t len, struct spf_term *t)
{
	static const struct {
		const char *name;
		enum spf_mech mech;
	} mechs[] = {
	    {"all", SPF_M_ALL}, {"include", SPF_M_INCLUDE}, {"a", SPF_M_A},
	    {"mx", SPF_M_MX},	{"ptr", SPF_M_PTR},	    {"ip4", SPF_M_IP4},
	    {"ip6", SPF_M_IP6}, {"exists", SPF_M_EXISTS},
	};
	size_t nlen = 0, k;

	memset(t, 0, sizeof *t);
	if (spf_parse_modifier(s, len, t)) {
		if (t->mod == SPF_MOD_OTHER) {
			size_t end;

			return spf_macro_string_valid(t->spec, t->spec_len,
						      false, &end);
		}
		return spf_domain_spec_valid(t->spec, t->spec_len);
	}
	t->qualifier = SPF_PASS;
	if (len > 0 && strchr("+-~?", s[0]) != NULL) {
		t->qualifier = s[0] == '+'   ? SPF_PASS
			       : s[0] == '-' ? SPF_FAIL
			       : s[0] == '~' ? SPF_SOFTFAIL
					     : SPF_NEUTRAL;
		s++;
		len--;
	}
	while (nlen < len && s[nlen] != ':' && s[nlen] != '/')
		nlen++;
	for (k = 0; k < sizeof mechs / sizeof mechs[0]; k++)
		if (str_eq_nocase(s, nlen, mechs[k].name))
			break;
	if (k == sizeof mechs / sizeof mechs[0])
		return false;
	t->mech = mechs[k].mech;
	t->cidr4 = SPF_CIDR4_MAX;
	t->cidr6 = SPF_CIDR6_MAX;
	s += nlen;
	len -= nlen;
	switch (t->mech) {
	case SPF_M_ALL:
		return len == 0;
	case SPF_M_IP4:
	case SPF_M_IP6:
		return len > 1 && s[0] == ':' &&
		       spf_parse_net(s + 1, len - 1, t->mech == SPF_M_IP6, t);
	case SPF_M_A:
	case SPF_M_MX:
		if (!spf_dual_cidr(s, &len, t))
			return false;
		break;
	default:
		break;
	}
	if (len == 0)
		return t->mech != SPF_M_INCLUDE && t->mech != SPF_M_EXISTS;
	if (s[0] != ':')
		return false;
	t->spec = s + 1;
	t->spec_len = len - 1;
	return spf_domain_spec_valid(t->spec, t->spec_len);
}

/* The next term of rec at *pos: its text, false at the end. */
static bool
spf_next_term(const char *rec, size_t *pos, const char **s, size_t *len)
{
	size_t i = *pos;

	while (rec[i] == ' ')
		i++;
	if (rec[i] == '\0') {
		*pos = i;
		return false;
	}
	*s = rec + i;
	while (rec[i] != ' ' && rec[i] != '\0')
		i++;
	*len = (size_t)(rec + i - *s);
	*pos = i;
	return true;
}

/* Length of "v=spf1" in rec when rec is an SPF record, else 0 (4.5). */
static size_t
spf_version_len(const char *rec)
{
	static const char v[] = "v=spf1";

	if (strncasecmp(rec, v, sizeof v - 1) != 0)
		return 0;
	if (rec[sizeof v - 1] != ' ' && rec[sizeof v - 1] != '\0')
		return 0;
	return sizeof v - 1;
}

/*
 * Checks the whole record (4.6) and finds its redirect= and exp=.
 * Returns false (problem set) on a syntax error or a repeated modifier.
 */
static bool
spf_record_check(struct spf_ctx *c, const char *rec, struct spf_term *redir,
		 struct spf_term *exp)
{
	size_t pos = spf_version_len(rec), len;
	const char *s;
	struct spf_term t;
	bool has_redir = false, has_exp = false;

	while (spf_next_term(rec, &pos, &s, &len)) {
		if (!spf_parse_term(s, len, &t)) {
			spf_problem(c, "syntax error near '%.*s'",
				    spf_short(len), s);
			return false;
		}
		if (!t.is_modifier || t.mod == SPF_MOD_OTHER)
			continue;
		if ((t.mod == SPF_MOD_REDIRECT && has_redir) ||
		    (t.mod == SPF_MOD_EXP && has_exp)) {
			spf_problem(c, "repeated modifier '%.*s'",
				    spf_short(len), s);
			return false;
		}
		if (t.mod == SPF_MOD_REDIRECT) {
			*redir = t;
			has_redir = true;
		} else {
			*exp = t;
			has_exp = true;
		}
	}
	return true;
}

/* ---- evaluation ---- */

/*
 * The target of a term: its domain-spec expanded and fitted (4.8), or the
 * current domain.  Returns 0, or 1 when pending.
 */
static int
spf_target(struct spf_ctx *c, const struct spf_term *t, const char *domain,
	   char *out, size_t size)
{
	char buf[SPF_EXPAND_MAX];
	int rc;

	if (t->spec == NULL) {
		snprintf(out, size, "%s", domain);
		return 0;
	}
	rc = spf_expand_str(c, t->spec, t->spec_len, domain, false, buf,
			    sizeof buf);
	if (rc > 0)
		return rc;
	if (rc < 0 || strlen(buf) + 1 >= sizeof buf)
		buf[0] = '\0'; /* too long to be cut right: not a name */
	spf_name_fit(buf);
	snprintf(out, size, "%s", buf);
	return 0;
}

/*
 * A lookup of a term's target: the answer, or NULL with *res_out set
 * (pending, temperror, or a void lookup: no match unless past the
 * limit).
 */
static const struct adns_answer *
spf_term_lookup(struct spf_ctx *c, const char *name, enum adns_type type,
		enum spf_step *step_out, enum spf_result *res_out)
{
	const struct adns_answer *a;

	*step_out = SPF_STOP;
	if (!spf_name_valid(name)) {
		*step_out = SPF_NOMATCH;
		if (!spf_count_void(c)) {
			*step_out = SPF_STOP;
			*res_out = SPF_PERMERROR;
		}
		return NULL;
	}
	a = spf_get(c, name, type);
	if (a == NULL) {
		*res_out = SPF_PENDING;
		return NULL;
	}
	if (a->status == ADNS_TEMPFAIL) {
		*res_out = spf_tempfail(c, name, type);
		return NULL;
	}
	if (spf_is_void(a)) {
		*step_out = SPF_NOMATCH;
		if (!spf_count_void(c)) {
			*step_out = SPF_STOP;
			*res_out = SPF_PERMERROR;
		}
		return NULL;
	}
	return a;
}

/* 5.4: the addresses of every MX host, all asked in one round. */
static enum spf_step
spf_eval_mx(struct spf_ctx *c, const char *name, unsigned cidr,
	    enum spf_result *res_out)
{
	const struct adns_answer *mx, *a;
	enum spf_step step;
	bool is_pending = false;

	mx = spf_term_lookup(c, name, ADNS_MX, &step, res_out);
	if (mx == NULL)
		return step; /* pending, temperror, void or a bad name */
	if (mx->n > SPF_MX_MAX) {
		spf_problem(c, "more than %d MX records for %.*s", SPF_MX_MAX,
			    SPF_SHOWN_MAX, name);
		*res_out = SPF_PERMERROR;
		return SPF_STOP;
	}
	for (size_t i = 0; i < mx->n; i++) {
		if (mx->rr[i][0] == '\0' || !spf_name_valid(mx->rr[i]))
			continue; /* null MX (RFC 7505) */
		a = spf_get(c, mx->rr[i], spf_addr_type(c));
		if (a == NULL) {
			is_pending = true;
			continue;
		}
		if (is_pending)
			continue;
		if (a->status == ADNS_TEMPFAIL) {
			*res_out = spf_tempfail(c, mx->rr[i], spf_addr_type(c));
			return SPF_STOP;
		}
		if (spf_addrs_match(c, a, cidr))
			return SPF_MATCH;
	}
	if (is_pending) {
		*res_out = SPF_PENDING;
		return SPF_STOP;
	}
	return SPF_NOMATCH;
}

/*
 * 5.5: a PTR name of the client, among the first 10, that is target or
 * under it and has the client's address.  DNS errors are no match.  Only
 * the names that could match are looked up, all in one round.
 */
static enum spf_step
spf_eval_ptr(struct spf_ctx *c, const char *target, enum spf_result *res_out)
{
	char rev[SPF_REV_MAX];
	const struct adns_answer *ptr, *a;
	size_t tlen = strlen(target);
	bool is_pending = false;

	spf_ip_reverse(&c->ip, rev, sizeof rev);
	ptr = spf_get(c, rev, ADNS_PTR);
	if (ptr == NULL) {
		*res_out = SPF_PENDING;
		return SPF_STOP;
	}
	if (ptr->status == ADNS_TEMPFAIL)
		return SPF_NOMATCH;
	if (spf_is_void(ptr)) {
		if (spf_count_void(c))
			return SPF_NOMATCH;
		*res_out = SPF_PERMERROR;
		return SPF_STOP;
	}
	for (size_t i = 0; i < ptr->n && i < SPF_PTR_MAX; i++) {
		const char *name = ptr->rr[i];
		size_t nlen = strlen(name);

		if (strcasecmp(name, target) != 0 &&
		    !(nlen > tlen && name[nlen - tlen - 1] == '.' &&
		      strcasecmp(name + nlen - tlen, target) == 0))
			continue;
		if (!spf_name_valid(name))
			continue;
		a = spf_get(c, name, spf_addr_type(c));
		if (a == NULL)
			is_pending = true;
		else if (spf_addrs_match(c, a, c->ip.is_v6 ? 128 : 32))
			return SPF_MATCH;
	}
	if (is_pending) {
		*res_out = SPF_PENDING;
		return SPF_STOP;
	}
	return SPF_NOMATCH;
}

/* 5.2: include's result table. */
static enum spf_step
spf_eval_include(struct spf_ctx *c, const char *target, unsigned depth,
		 enum spf_result *res_out)
{
	enum spf_result r = spf_check_host(c, target, depth + 1, false);

	switch (r) {
	case SPF_PASS:
		return SPF_MATCH;
	case SPF_FAIL:
	case SPF_SOFTFAIL:
	case SPF_NEUTRAL:
		return SPF_NOMATCH;
	case SPF_NONE:
		c->out->problem[0] = '\0';
		spf_problem(c, "no SPF record at included %.*s", SPF_SHOWN_MAX,
			    target);
		*res_out = SPF_PERMERROR;
		return SPF_STOP;
	default:
		*res_out = r;
		return SPF_STOP;
	}
}

/* One mechanism: match, no match, or a result that ends it all. */
static enum spf_step
spf_eval_mech(struct spf_ctx *c, const struct spf_term *t, const char *domain,
	      unsigned depth, enum spf_result *res_out)
{
	char target[SPF_NAME_MAX + 2];
	const struct adns_answer *a;
	enum spf_step step;
	unsigned cidr = c->ip.is_v6 ? t->cidr6 : t->cidr4;

	switch (t->mech) {
	case SPF_M_ALL:
		return SPF_MATCH;
	case SPF_M_IP4:
		return !c->ip.is_v6 && spf_ip_in(c->ip.b, t->net, t->cidr4)
			   ? SPF_MATCH
			   : SPF_NOMATCH;
	case SPF_M_IP6:
		return c->ip.is_v6 && spf_ip_in(c->ip.b, t->net, t->cidr4)
			   ? SPF_MATCH
			   : SPF_NOMATCH;
	default:
		break;
	}
	if (!spf_count_lookup(c)) {
		*res_out = SPF_PERMERROR;
		return SPF_STOP;
	}
	if (spf_target(c, t, domain, target, sizeof target) != 0) {
		*res_out = SPF_PENDING;
		return SPF_STOP;
	}
	switch (t->mech) {
	case SPF_M_INCLUDE:
		return spf_eval_include(c, target, depth, res_out);
	case SPF_M_A:
		a = spf_term_lookup(c, target, spf_addr_type(c), &step,
				    res_out);
		if (a == NULL)
			return step;
		return spf_addrs_match(c, a, cidr) ? SPF_MATCH : SPF_NOMATCH;
	case SPF_M_MX:
		return spf_eval_mx(c, target, cidr, res_out);
	case SPF_M_PTR:
		return spf_eval_ptr(c, target, res_out);
	default: /* exists: always an A query (5.7) */
		a = spf_term_lookup(c, target, ADNS_A, &step, res_out);
		return a == NULL ? step : SPF_MATCH;
	}
}

/*
 * Asks ahead for the TXT records of the include: and redirect= targets
 * after pos in rec, when an earlier term waits for DNS.
 */
static void
spf_ask_ahead(struct spf_ctx *c, const char *rec, size_t pos,
	      const char *domain)
{
	char target[SPF_NAME_MAX + 2];
	struct spf_term t;
	const char *s;
	size_t len;

	c->is_quiet = true;
	while (spf_next_term(rec, &pos, &s, &len)) {
		if (!spf_parse_term(s, len, &t))
			break;
		if (t.is_modifier ? t.mod != SPF_MOD_REDIRECT
				  : t.mech != SPF_M_INCLUDE)
			continue;
		if (spf_target(c, &t, domain, target, sizeof target) != 0 ||
		    !spf_name_valid(target))
			continue;
		c->dns->need(c->dns->ctx, target, ADNS_TXT);
	}
	c->is_quiet = false;
}

/* 6.2: the explanation of a fail, when there is one to be had. */
static enum spf_result
spf_explain(struct spf_ctx *c, const struct spf_term *exp, const char *domain)
{
	char target[SPF_NAME_MAX + 2];
	const struct adns_answer *a;
	char *out = c->out->explanation;

	if (exp->spec == NULL)
		return SPF_FAIL;
	if (spf_target(c, exp, domain, target, sizeof target) != 0)
		return SPF_PENDING;
	if (!spf_name_valid(target))
		return SPF_FAIL;
	a = spf_get(c, target, ADNS_TXT);
	if (a == NULL)
		return SPF_PENDING;
	if (a->status != ADNS_OK || a->n != 1)
		return SPF_FAIL;
	switch (spf_expand_str(c, a->rr[0], strlen(a->rr[0]), domain, true, out,
			       sizeof c->out->explanation)) {
	case 1:
		out[0] = '\0';
		return SPF_PENDING;
	case -1:
		out[0] = '\0';
		return SPF_FAIL;
	default:
		return SPF_FAIL;
	}
}

/* 4.4, 4.5: the one SPF record of domain, or a result. */
static enum spf_result
spf_select(struct spf_ctx *c, const char *domain, const char **rec_out)
{
	const struct adns_answer *a;
	size_t found = 0;

	if (!spf_name_valid(domain)) {
		spf_problem(c, "invalid domain '%.*s'", SPF_SHOWN_MAX, domain);
		return SPF_NONE;
	}
	a = spf_get(c, domain, ADNS_TXT);
	if (a == NULL)
		return SPF_PENDING;
	if (a->status == ADNS_TEMPFAIL)
		return spf_tempfail(c, domain, ADNS_TXT);
	for (size_t i = 0; a->status == ADNS_OK && i < a->n; i++) {
		if (spf_version_len(a->rr[i]) == 0)
			continue;
		*rec_out = a->rr[i];
		found++;
	}
	if (found > 1) {
		spf_problem(c, "several SPF records at %.*s", SPF_SHOWN_MAX,
			    domain);
		return SPF_PERMERROR;
	}
	if (found == 0) {
		spf_problem(c, "%s %.*s",
			    a->status == ADNS_NXDOMAIN ? "no domain"
						       : "no SPF record at",
			    SPF_SHOWN_MAX, domain);
		return SPF_NONE;
	}
	return SPF_NEUTRAL; /* found one; the value only means "go on" */
}

/* 4: check_host(<ip>, <domain>, <sender>). */
static enum spf_result
spf_check_host(struct spf_ctx *c, const char *domain, unsigned depth,
	       bool can_explain)
{
	struct spf_term redir = {0}, exp = {0}, t;
	char target[SPF_NAME_MAX + 2];
	const char *rec = NULL, *s;
	size_t pos, len;
	enum spf_result r;

	if (depth > SPF_DEPTH_MAX) {
		spf_problem(c, "%s", "too many DNS lookups");
		return SPF_PERMERROR;
	}
	r = spf_select(c, domain, &rec);
	if (rec == NULL || r != SPF_NEUTRAL)
		return r;
	if (!spf_record_check(c, rec, &redir, &exp))
		return SPF_PERMERROR;
	pos = spf_version_len(rec);
	while (spf_next_term(rec, &pos, &s, &len)) {
		enum spf_step step;

		(void)spf_parse_term(s, len, &t);
		if (t.is_modifier)
			continue;
		step = spf_eval_mech(c, &t, domain, depth, &r);
		if (step == SPF_NOMATCH)
			continue;
		if (step == SPF_STOP) {
			if (r == SPF_PENDING)
				spf_ask_ahead(c, rec, pos, domain);
			return r;
		}
		if (t.qualifier == SPF_FAIL && can_explain)
			return spf_explain(c, &exp, domain);
		return t.qualifier;
	}
	if (redir.spec == NULL)
		return SPF_NEUTRAL;
	if (!spf_count_lookup(c))
		return SPF_PERMERROR;
	if (spf_target(c, &redir, domain, target, sizeof target) != 0)
		return SPF_PENDING;
	r = spf_check_host(c, target, depth + 1, can_explain);
	if (r == SPF_NONE) {
		c->out->problem[0] = '\0';
		spf_problem(c, "no SPF record at redirect %.*s", SPF_SHOWN_MAX,
			    target);
		return SPF_PERMERROR;
	}
	return r;
}

/* Sets the identity, <sender>, local part and domain (RFC 7208 2.4, 4.3). */
static void
spf_ctx_init(struct spf_ctx *c, const struct spf_request *rq,
	     const struct adns_view *dns, struct spf_outcome *out)
{
	const char *sender = rq->sender ? rq->sender : "";
	const char *at = strrchr(sender, '@');
	const char *helo = rq->helo ? rq->helo : "";
	const char *dom;
	size_t llen;

	memset(c, 0, sizeof *c);
	memset(out, 0, sizeof *out);
	c->rq = rq;
	c->dns = dns;
	c->out = out;
	if (sender[0] == '\0') {
		out->identity = "helo";
		llen = 0;
		dom = helo;
	} else {
		out->identity = "mailfrom";
		llen = at ? (size_t)(at - sender) : 0;
		dom = at ? at + 1 : sender;
	}
	if (llen == 0 ||
	    !str_copy(c->local_buf, sizeof c->local_buf, sender, llen))
		snprintf(c->local_buf, sizeof c->local_buf, "postmaster");
	c->local = c->local_buf;
	snprintf(out->domain, sizeof out->domain, "%s", dom);
	llen = strlen(out->domain);
	if (llen > 0 && out->domain[llen - 1] == '.')
		out->domain[llen - 1] = '\0';
	c->sdom = out->domain;
	snprintf(out->sender, sizeof out->sender, "%s@%s", c->local,
		 out->domain);
}

enum spf_result
spf_eval(const struct spf_request *rq, const struct adns_view *dns,
	 struct spf_outcome *out)
{
	struct spf_ctx c;
	enum spf_result r;

	spf_ctx_init(&c, rq, dns, out);
	if (!spf_ip_parse(rq->ip, &c.ip)) {
		spf_problem(&c, "%s", "client address is not an IP address");
		out->result = SPF_PERMERROR;
		return out->result;
	}
	r = spf_check_host(&c, out->domain, 0, true);
	if (r != SPF_FAIL)
		out->explanation[0] = '\0';
	if (r == SPF_PASS || r == SPF_FAIL || r == SPF_SOFTFAIL ||
	    r == SPF_NEUTRAL || r == SPF_PENDING)
		out->problem[0] = '\0';
	out->result = r;
	return r;
}

int
spf_expand(const struct spf_request *rq, const struct adns_view *dns,
	   const char *domain, const char *spec, bool is_exp, char *out,
	   size_t size)
{
	struct spf_outcome o;
	struct spf_ctx c;

	if (size == 0)
		return -1;
	out[0] = '\0';
	spf_ctx_init(&c, rq, dns, &o);
	if (!spf_ip_parse(rq->ip, &c.ip))
		return -1;
	return spf_expand_str(&c, spec, strlen(spec), domain, is_exp, out,
			      size);
}

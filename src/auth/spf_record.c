/*
 * spf_record.c - the SPF record grammar (RFC 7208 4.5, 4.6.1, 5, 6):
 * the version tag, splitting a record into terms, and parsing each
 * mechanism (qualifier, name, domain-spec, ip4/ip6 network, dual CIDR
 * length) and modifier into a struct spf_term.
 *
 * Called by spf.c, through spf_int.h, to select a record, check a whole
 * record before evaluating it (4.6: any syntax error is permerror) and
 * walk its terms.  Promises: a parsed term points into the record's text
 * and copies nothing; CIDR lengths are within 0..32 and 0..128, with no
 * leading zero; a repeated redirect= or exp= is an error, unknown
 * modifiers are checked for syntax and otherwise ignored.  Pure: no DNS.
 */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "auth/spf.h"
#include "auth/spf_int.h"
#include "util/str.h"

/* ---- record parsing (RFC 7208 4.6.1, 5, 6) ---- */

/* A length for "%.*s" in a problem: short enough to leave room. */
static int
spf_short(size_t len)
{
	return len > SPF_SHOWN_MAX ? SPF_SHOWN_MAX : (int)len;
}

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
bool
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
bool
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
size_t
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
bool
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

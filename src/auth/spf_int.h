/*
 * spf_int.h - what the three files of the SPF check share, and nothing
 * for anyone else: the parsed term, the client address, the evaluation
 * context, and the functions one file offers the others.
 *
 * Included by auth/spf.c (check_host and the mechanisms), auth/spf_macro.c
 * (macros and domain names) and auth/spf_record.c (the record grammar)
 * only; callers outside use auth/spf.h.  Everything here keeps spf.h's
 * promises: no allocation, no I/O, no logging, DNS only through the
 * adns_view in the context.
 */
#ifndef POSTERN_AUTH_SPF_INT_H
#define POSTERN_AUTH_SPF_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/adns.h"
#include "auth/spf.h"

#define SPF_NAME_MAX 253 /* RFC 7208 4.8: longer is cut from the left */
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

/* ASCII classes of the RFC 7208 grammar, whatever the locale. */
static inline bool
spf_is_alnum(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9');
}

static inline bool
spf_is_alpha(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* The address query type that matches the client's family. */
static inline enum adns_type
spf_addr_type(const struct spf_ctx *c)
{
	return c->ip.is_v6 ? ADNS_AAAA : ADNS_A;
}

/* ---- spf.c: the context's services ---- */

/* Sets out->problem unless a reason is there already (the first wins). */
void spf_problem(struct spf_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The view's answer for (name, type); NULL when missing, after asking for
 * it with need() unless c->is_quiet. */
const struct adns_answer *spf_get(struct spf_ctx *c, const char *name,
				  enum adns_type type);

/* True when an address record of a falls in the client's first cidr
 * bits. */
bool spf_addrs_match(const struct spf_ctx *c, const struct adns_answer *a,
		     unsigned cidr);

/* The PTR query name of ip ("d.c.b.a.in-addr.arpa", nibbles for IPv6). */
void spf_ip_reverse(const struct spf_ip *ip, char *out, size_t size);

/* ---- spf_macro.c: macros (RFC 7208 7) and domain names ---- */

/* RFC 7208 4.3, 4.8: s is a name a check may look up. */
bool spf_name_valid(const char *s);

/* RFC 7208 4.8 in place: trailing dot off, left labels off past 253. */
void spf_name_fit(char *s);

/* RFC 7208 7.1 macro-string (is_exp: explain-string).  When true,
 * *last_macro_end_out is where the last macro-expand ended (0 if none). */
bool spf_macro_string_valid(const char *s, size_t len, bool is_exp,
			    size_t *last_macro_end_out);

/* RFC 7208 4.6.1 domain-spec. */
bool spf_domain_spec_valid(const char *s, size_t len);

/* Expands s[0..len) for check_host(domain) into out (size bytes,
 * truncated to fit).  Returns 0, -1 (syntax), 1 (%{p} pending). */
int spf_expand_str(struct spf_ctx *c, const char *s, size_t len,
		   const char *domain, bool is_exp, char *out, size_t size);

/* ---- spf_record.c: the record grammar (RFC 7208 4.5, 4.6, 5, 6) ---- */

/* Length of "v=spf1" in rec when rec is an SPF record, else 0. */
size_t spf_version_len(const char *rec);

/* The next term of rec at *pos (advanced): its text, false at the end. */
bool spf_next_term(const char *rec, size_t *pos, const char **s, size_t *len);

/* Parses one term s[0..len) into *t (pointing into s); false on a syntax
 * error. */
bool spf_parse_term(const char *s, size_t len, struct spf_term *t);

/* Checks the whole record and finds its redirect= and exp= (left as they
 * were when absent).  False, with the problem set, on a syntax error or a
 * repeated modifier. */
bool spf_record_check(struct spf_ctx *c, const char *rec,
		      struct spf_term *redir, struct spf_term *exp);

#endif

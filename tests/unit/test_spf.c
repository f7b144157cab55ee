/*
 * test_spf.c - the SPF check of RFC 7208 (src/auth/spf.c) against a
 * table zone (adns_table.h), section by section: record selection (4.5),
 * each mechanism with its qualifiers and CIDR lengths (5), include's
 * result table (5.2), redirect= and exp= (6), the limits (4.6.4: terms,
 * void lookups, MX and PTR names), syntax errors (4.6), temperror paths,
 * the HELO identity of the null sender (2.4), and macros (7, every line
 * of 7.4's examples).
 *
 * Every case runs lazily - evaluate, answer the questions asked, evaluate
 * again - as the server does, and again over a table that answers at
 * once: both must agree, which is what "restartable" promises.  Separate
 * tests count the rounds where asking in parallel matters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "adns_table.h"
#include "auth/spf.h"

#define IP4 "192.0.2.3"
#define IP6 "2001:db8::cb01"
#define ROUNDS_MAX 40

#define R_NONE SPF_NONE
#define R_NEUTRAL SPF_NEUTRAL
#define R_PASS SPF_PASS
#define R_FAIL SPF_FAIL
#define R_SOFT SPF_SOFTFAIL
#define R_TEMP SPF_TEMPERROR
#define R_PERM SPF_PERMERROR

/* Rows of the zone, one a line. */
/* clang-format off */
#define TXT(n, t) {n, ADNS_TXT, ADNS_OK, {t}}
#define A(n, ...) {n, ADNS_A, ADNS_OK, {__VA_ARGS__}}
#define AAAA(n, ...) {n, ADNS_AAAA, ADNS_OK, {__VA_ARGS__}}
#define MX(n, ...) {n, ADNS_MX, ADNS_OK, {__VA_ARGS__}}
#define PTR(n, ...) {n, ADNS_PTR, ADNS_OK, {__VA_ARGS__}}
#define TEMP(n, type) {n, type, ADNS_TEMPFAIL, {0}}
/* clang-format on */

#define REV4 "3.2.0.192.in-addr.arpa"

/* clang-format off */
static const struct adns_row zone[] = {
	/* 4.5 record selection */
	TXT("nospf.t.example", "google-site-verification=x"),
	{"two.t.example", ADNS_TXT, ADNS_OK, {"v=spf1 +all", "v=spf1 -all"}},
	{"other.t.example", ADNS_TXT, ADNS_OK, {"hello", "v=spf1 -all"}},
	TXT("spf10.t.example", "v=spf10 +all"),
	TXT("upper.t.example", "V=SpF1 +all"),
	TXT("empty.t.example", "v=spf1"),
	TXT("spaces.t.example", "v=spf1   ip4:192.0.2.3   -all  "),
	A("aonly.t.example", "192.0.2.3"),
	TEMP("slowtxt.t.example", ADNS_TXT),
	/* 5.1 all and the qualifiers */
	TXT("plus.t.example", "v=spf1 +all"),
	TXT("bare.t.example", "v=spf1 all"),
	TXT("minus.t.example", "v=spf1 -all"),
	TXT("tilde.t.example", "v=spf1 ~all"),
	TXT("quest.t.example", "v=spf1 ?all"),
	TXT("order.t.example", "v=spf1 -ip4:192.0.2.3 +all"),
	/* 5.6 ip4 ip6 */
	TXT("ip4.t.example", "v=spf1 ip4:192.0.2.0/24 -all"),
	TXT("ip4x.t.example", "v=spf1 ip4:192.0.3.0/24 -all"),
	TXT("ip4h.t.example", "v=spf1 ip4:192.0.2.3 -all"),
	TXT("ip40.t.example", "v=spf1 ip4:10.0.0.0/0 -all"),
	TXT("ip4odd.t.example", "v=spf1 ip4:192.0.2.2/31 -all"),
	TXT("ip6.t.example", "v=spf1 ip6:2001:db8::/32 -all"),
	TXT("ip6h.t.example", "v=spf1 ip6:2001:db8::cb01 -all"),
	TXT("ip6x.t.example", "v=spf1 ip6:2001:db9::/32 -all"),
	/* 5.3 a */
	TXT("a.t.example", "v=spf1 a -all"),
	A("a.t.example", "198.51.100.1", "192.0.2.3"),
	AAAA("a.t.example", "2001:db8::cb01"),
	TXT("aother.t.example", "v=spf1 a:host.aother.t.example -all"),
	A("host.aother.t.example", "192.0.2.3"),
	TXT("a24.t.example", "v=spf1 a/24 -all"),
	A("a24.t.example", "192.0.2.200"),
	AAAA("a24.t.example", "2001:db8::1"),
	TXT("a64.t.example", "v=spf1 a/32//64 -all"),
	A("a64.t.example", "192.0.2.200"),
	AAAA("a64.t.example", "2001:db8::1"),
	TXT("anone.t.example", "v=spf1 a:nx.anone.t.example -all"),
	TXT("atemp.t.example", "v=spf1 a:slow.atemp.t.example -all"),
	TEMP("slow.atemp.t.example", ADNS_A),
	TXT("atrail.t.example", "v=spf1 a:host.aother.t.example. -all"),
	/* 5.4 mx */
	TXT("mx.t.example", "v=spf1 mx -all"),
	MX("mx.t.example", "mx1.mx.t.example", "mx2.mx.t.example"),
	A("mx1.mx.t.example", "198.51.100.1"),
	A("mx2.mx.t.example", "192.0.2.3"),
	AAAA("mx2.mx.t.example", "2001:db8::cb01"),
	TXT("mx24.t.example", "v=spf1 mx:mx.t.example/24 -all"),
	TXT("mxnull.t.example", "v=spf1 mx -all"),
	MX("mxnull.t.example", ""),
	TXT("mxtemp.t.example", "v=spf1 mx -all"),
	TEMP("mxtemp.t.example", ADNS_MX),
	TXT("mxhtemp.t.example", "v=spf1 mx -all"),
	MX("mxhtemp.t.example", "h.mxhtemp.t.example"),
	TEMP("h.mxhtemp.t.example", ADNS_A),
	/* 5.5 ptr; the client's PTR names */
	PTR(REV4, "mail.ptr.t.example", "fake.ptrx.t.example", "other.example"),
	A("mail.ptr.t.example", "192.0.2.3"),
	A("fake.ptrx.t.example", "198.51.100.9"),
	TXT("ptr.t.example", "v=spf1 ptr -all"),
	TXT("ptrx.t.example", "v=spf1 ptr -all"),
	TXT("ptrarg.t.example", "v=spf1 ptr:ptr.t.example -all"),
	/* 5.7 exists */
	TXT("ex.t.example", "v=spf1 exists:%{ir}.%{v}._spf.%{d} -all"),
	A("3.2.0.192.in-addr._spf.ex.t.example", "127.0.0.2"),
	TXT("exno.t.example", "v=spf1 exists:%{ir}.%{v}._spf.%{d} -all"),
	TXT("extemp.t.example", "v=spf1 exists:slow.extemp.t.example -all"),
	TEMP("slow.extemp.t.example", ADNS_A),
	TXT("exp.t.example", "v=spf1 exists:%{p}.exp.t.example -all"),
	A("mail.ptr.t.example.exp.t.example", "127.0.0.2"),
	/* 5.2 include */
	TXT("inc.t.example", "v=spf1 include:pass.i.example -all"),
	TXT("pass.i.example", "v=spf1 ip4:192.0.2.3 -all"),
	TXT("incf.t.example", "v=spf1 include:fail.i.example ?all"),
	TXT("fail.i.example", "v=spf1 -all"),
	TXT("incs.t.example", "v=spf1 include:soft.i.example ?all"),
	TXT("soft.i.example", "v=spf1 ~all"),
	TXT("incn.t.example", "v=spf1 include:neutral.i.example -all"),
	TXT("neutral.i.example", "v=spf1 ?all"),
	TXT("inct.t.example", "v=spf1 include:temp.i.example -all"),
	TEMP("temp.i.example", ADNS_TXT),
	TXT("incp.t.example", "v=spf1 include:perm.i.example -all"),
	TXT("perm.i.example", "v=spf1 bogus"),
	TXT("incnone.t.example", "v=spf1 include:none.i.example +all"),
	A("none.i.example", "192.0.2.3"),
	TXT("incnx.t.example", "v=spf1 include:nx.i.example +all"),
	TXT("incexp.t.example", "v=spf1 include:expfail.i.example -all "
			    "exp=e.incexp.t.example"),
	TXT("expfail.i.example", "v=spf1 -all exp=e.i.example"),
	TXT("e.i.example", "included record's text"),
	TXT("e.incexp.t.example", "outer text"),
	TXT("incloop.t.example", "v=spf1 include:incloop.t.example -all"),
	/* 6.1 redirect */
	TXT("red.t.example", "v=spf1 redirect=target.r.example"),
	TXT("target.r.example", "v=spf1 ip4:192.0.2.3 -all exp=e.r.example"),
	TXT("e.r.example", "target's text for %{d}"),
	TXT("redm.t.example", "v=spf1 ip4:192.0.2.3 redirect=nx.r.example"),
	TXT("redall.t.example", "v=spf1 ?all redirect=target.r.example"),
	TXT("rednone.t.example", "v=spf1 redirect=nx.r.example"),
	TXT("redexp.t.example", "v=spf1 redirect=target.r.example "
			    "exp=e.redexp.t.example"),
	TXT("e.redexp.t.example", "original text"),
	TXT("redloop.t.example", "v=spf1 redirect=redloop.t.example"),
	/* 6.2 exp */
	TXT("expl.t.example", "v=spf1 -all exp=e.expl.t.example"),
	TXT("e.expl.t.example", "%{i} is not one of %{d}'s designated mail "
			    "servers; see %{l}@%{o} %% %_%-"),
	TXT("expcrt.t.example", "v=spf1 -all exp=e.expcrt.t.example"),
	TXT("e.expcrt.t.example", "%{c} %{r} %{t}"),
	TXT("expsoft.t.example", "v=spf1 ~all exp=e.expl.t.example"),
	TXT("exptemp.t.example", "v=spf1 -all exp=slow.exptemp.t.example"),
	TEMP("slow.exptemp.t.example", ADNS_TXT),
	TXT("expnx.t.example", "v=spf1 -all exp=nx.expnx.t.example"),
	TXT("exptwo.t.example", "v=spf1 -all exp=e.exptwo.t.example"),
	{"e.exptwo.t.example", ADNS_TXT, ADNS_OK, {"one", "two"}},
	TXT("expbad.t.example", "v=spf1 -all exp=e.expbad.t.example"),
	TXT("e.expbad.t.example", "bad %{x} macro"),
	/* 4.6 syntax */
	TXT("syn1.t.example", "v=spf1 ip4:1.2.3 -all"),
	TXT("syn2.t.example", "v=spf1 foo -all"),
	TXT("syn3.t.example", "v=spf1 a:foo -all"),
	TXT("syn4.t.example", "v=spf1 ip4:1.2.3.4/33 -all"),
	TXT("syn5.t.example", "v=spf1 a/24//129 -all"),
	TXT("syn6.t.example", "v=spf1 -all:x"),
	TXT("syn7.t.example", "v=spf1 redirect=a.example redirect=b.example"),
	TXT("syn8.t.example", "v=spf1 -all exp=a.example exp=b.example"),
	TXT("syn9.t.example", "v=spf1 exists:%{x}.example -all"),
	TXT("syn10.t.example", "v=spf1 exists:%{d0}.example -all"),
	TXT("syn11.t.example", "v=spf1 exists:%{c}.example -all"),
	TXT("syn12.t.example", "v=spf1 +all ip4:bad"),
	TXT("syn13.t.example", "v=spf1 include -all"),
	TXT("syn14.t.example", "v=spf1 ip6:2001:db8::/129 -all"),
	TXT("syn15.t.example", "v=spf1 ptr/24 -all"),
	TXT("syn16.t.example", "v=spf1 ip4:192.0.2.03 -all"),
	TXT("syn17.t.example", "v=spf1 exists:a.example.123 -all"),
	TXT("syn18.t.example", "v=spf1 a:1.2.3.4 -all"),
	TXT("syn19.t.example", "v=spf1 -all exp="),
	TXT("syn20.t.example", "v=spf1 ip4:192.0.2.3/024 -all"),
	TXT("syn21.t.example", "v=spf1 -all foo=%{"),
	TXT("syn22.t.example", "v=spf1 ip4:192.0.2.3\t-all"),
	TXT("mod.t.example", "v=spf1 foo=bar x.y-z=%{d} ip4:192.0.2.3 -all"),
	TXT("toplab.t.example", "v=spf1 a:host.aother.t.example -a:%{d}.x-1 "
			    "-a:x.1-x ~all"),
	/* 4.6.4 limits */
	TXT("ten.t.example", "v=spf1 a:h.l.example a:h.l.example "
			 "a:h.l.example a:h.l.example a:h.l.example "
			 "a:h.l.example a:h.l.example a:h.l.example "
			 "a:h.l.example a:h.l.example -all"),
	TXT("eleven.t.example", "v=spf1 a:h.l.example a:h.l.example "
			    "a:h.l.example a:h.l.example a:h.l.example "
			    "a:h.l.example a:h.l.example a:h.l.example "
			    "a:h.l.example a:h.l.example a:h.l.example "
			    "-all"),
	TXT("elevenm.t.example", "v=spf1 a:h.l.example a:h.l.example "
			     "a:h.l.example a:h.l.example a:h.l.example "
			     "a:h.l.example a:h.l.example a:h.l.example "
			     "a:h.l.example ip4:192.0.2.3 a:h.l.example "
			     "a:h.l.example -all"),
	TXT("incten.t.example", "v=spf1 include:i5.l.example "
			    "include:i5.l.example -all"),
	TXT("i5.l.example", "v=spf1 a:h.l.example a:h.l.example "
			"a:h.l.example a:h.l.example ?all"),
	A("h.l.example", "198.51.100.1"),
	TXT("void2.t.example", "v=spf1 a:nx1.l.example a:nx2.l.example -all"),
	TXT("void3.t.example", "v=spf1 a:nx1.l.example mx:nx2.l.example "
			   "exists:nx3.l.example -all"),
	TXT("voidnd.t.example", "v=spf1 a:h.l.example//128 "
			    "a:nodata.l.example a:nodata.l.example "
			    "a:nodata.l.example -all"),
	TXT("nodata.l.example", "not spf"),
	TXT("mx10.t.example", "v=spf1 mx:mx10.l.example -all"),
	TXT("mx11.t.example", "v=spf1 mx:mx11.l.example -all"),
	TXT("ptr11.t.example", "v=spf1 ptr:p.l.example -all"),
	A("p10.p.l.example", "192.0.2.3"),
	A("p11.p.l.example", "192.0.2.3"),
	/* 2.4 HELO, 4.3 the initial domain */
	TXT("helo.t.example", "v=spf1 a -all"),
	A("helo.t.example", "192.0.2.3"),
	{0},
};
/* clang-format on */

struct spf_case {
	const char *name;
	const char *sender;
	const char *ip;
	enum spf_result result;
	const char *problem;	 /* NULL: not checked; else a substring */
	const char *explanation; /* NULL: must be "" */
};

static const struct spf_case cases[] = {
    /* 4.3, 4.5 */
    {"nxdomain_is_none", "u@nx.t.example", IP4, R_NONE, "no domain", NULL},
    {"no_spf_txt_is_none", "u@nospf.t.example", IP4, R_NONE, "no SPF record",
     NULL},
    {"no_txt_at_all_is_none", "u@aonly.t.example", IP4, R_NONE, NULL, NULL},
    {"two_records_permerror", "u@two.t.example", IP4, R_PERM,
     "several SPF records", NULL},
    {"other_txt_ignored", "u@other.t.example", IP4, R_FAIL, NULL, NULL},
    {"spf10_is_not_spf1", "u@spf10.t.example", IP4, R_NONE, NULL, NULL},
    {"version_any_case", "u@upper.t.example", IP4, R_PASS, NULL, NULL},
    {"empty_record_neutral", "u@empty.t.example", IP4, R_NEUTRAL, NULL, NULL},
    {"extra_spaces", "u@spaces.t.example", IP4, R_PASS, NULL, NULL},
    {"txt_tempfail", "u@slowtxt.t.example", IP4, R_TEMP,
     "DNS error looking up TXT slowtxt.t.example", NULL},
    {"single_label_is_none", "u@localhost", IP4, R_NONE, "invalid domain",
     NULL},
    {"empty_label_is_none", "u@a..t.example", IP4, R_NONE, NULL, NULL},
    {"long_label_is_none",
     "u@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     ".example",
     IP4, R_NONE, NULL, NULL},
    {"trailing_dot_ok", "u@plus.t.example.", IP4, R_PASS, NULL, NULL},
    /* 4.6.2, 5.1 */
    {"plus_all", "u@plus.t.example", IP4, R_PASS, NULL, NULL},
    {"bare_all_is_pass", "u@bare.t.example", IP4, R_PASS, NULL, NULL},
    {"minus_all", "u@minus.t.example", IP4, R_FAIL, NULL, NULL},
    {"tilde_all", "u@tilde.t.example", IP4, R_SOFT, NULL, NULL},
    {"question_all", "u@quest.t.example", IP4, R_NEUTRAL, NULL, NULL},
    {"first_match_wins", "u@order.t.example", IP4, R_FAIL, NULL, NULL},
    /* 5.6 */
    {"ip4_net", "u@ip4.t.example", IP4, R_PASS, NULL, NULL},
    {"ip4_other_net", "u@ip4x.t.example", IP4, R_FAIL, NULL, NULL},
    {"ip4_host", "u@ip4h.t.example", IP4, R_PASS, NULL, NULL},
    {"ip4_slash0", "u@ip40.t.example", IP4, R_PASS, NULL, NULL},
    {"ip4_slash31", "u@ip4odd.t.example", IP4, R_PASS, NULL, NULL},
    {"ip4_not_for_v6", "u@ip4.t.example", IP6, R_FAIL, NULL, NULL},
    {"ip4_for_mapped_v6", "u@ip4.t.example", "::ffff:192.0.2.3", R_PASS, NULL,
     NULL},
    {"ip6_net", "u@ip6.t.example", IP6, R_PASS, NULL, NULL},
    {"ip6_host", "u@ip6h.t.example", IP6, R_PASS, NULL, NULL},
    {"ip6_other_net", "u@ip6x.t.example", IP6, R_FAIL, NULL, NULL},
    {"ip6_not_for_v4", "u@ip6.t.example", IP4, R_FAIL, NULL, NULL},
    /* 5.3 */
    {"a_second_address", "u@a.t.example", IP4, R_PASS, NULL, NULL},
    {"a_v6", "u@a.t.example", IP6, R_PASS, NULL, NULL},
    {"a_v6_no_match", "u@a.t.example", "2001:db8::1", R_FAIL, NULL, NULL},
    {"a_other_host", "u@aother.t.example", IP4, R_PASS, NULL, NULL},
    {"a_trailing_dot", "u@atrail.t.example", IP4, R_PASS, NULL, NULL},
    {"a_cidr24", "u@a24.t.example", IP4, R_PASS, NULL, NULL},
    {"a_cidr24_not_v6", "u@a24.t.example", IP6, R_FAIL, NULL, NULL},
    {"a_dual_cidr_v6", "u@a64.t.example", IP6, R_PASS, NULL, NULL},
    {"a_dual_cidr_v4", "u@a64.t.example", IP4, R_FAIL, NULL, NULL},
    {"a_nxdomain_no_match", "u@anone.t.example", IP4, R_FAIL, NULL, NULL},
    {"a_tempfail", "u@atemp.t.example", IP4, R_TEMP,
     "DNS error looking up A slow.atemp.t.example", NULL},
    /* 5.4 */
    {"mx_second_host", "u@mx.t.example", IP4, R_PASS, NULL, NULL},
    {"mx_v6", "u@mx.t.example", IP6, R_PASS, NULL, NULL},
    {"mx_cidr", "u@mx24.t.example", "192.0.2.99", R_PASS, NULL, NULL},
    {"mx_no_cidr_no_match", "u@mx.t.example", "192.0.2.99", R_FAIL, NULL, NULL},
    {"mx_null_mx", "u@mxnull.t.example", IP4, R_FAIL, NULL, NULL},
    {"mx_tempfail", "u@mxtemp.t.example", IP4, R_TEMP, NULL, NULL},
    {"mx_host_tempfail", "u@mxhtemp.t.example", IP4, R_TEMP, NULL, NULL},
    /* 5.5 */
    {"ptr_validated", "u@ptr.t.example", IP4, R_PASS, NULL, NULL},
    {"ptr_not_validated", "u@ptrx.t.example", IP4, R_FAIL, NULL, NULL},
    {"ptr_with_domain", "u@ptrarg.t.example", IP4, R_PASS, NULL, NULL},
    {"ptr_no_ptr_record", "u@ptr.t.example", "192.0.2.4", R_FAIL, NULL, NULL},
    /* 5.7 */
    {"exists_match", "u@ex.t.example", IP4, R_PASS, NULL, NULL},
    {"exists_no_match", "u@exno.t.example", IP4, R_FAIL, NULL, NULL},
    {"exists_v6_asks_a", "u@exno.t.example", IP6, R_FAIL, NULL, NULL},
    {"exists_tempfail", "u@extemp.t.example", IP4, R_TEMP, NULL, NULL},
    {"exists_with_p_macro", "u@exp.t.example", IP4, R_PASS, NULL, NULL},
    /* 5.2 */
    {"include_pass_matches", "u@inc.t.example", IP4, R_PASS, NULL, NULL},
    {"include_pass_for_others_fails", "u@inc.t.example", "192.0.2.4", R_FAIL,
     NULL, NULL},
    {"include_fail_no_match", "u@incf.t.example", IP4, R_NEUTRAL, NULL, NULL},
    {"include_softfail_no_match", "u@incs.t.example", IP4, R_NEUTRAL, NULL,
     NULL},
    {"include_neutral_no_match", "u@incn.t.example", IP4, R_FAIL, NULL, NULL},
    {"include_temperror", "u@inct.t.example", IP4, R_TEMP, "temp.i.example",
     NULL},
    {"include_permerror", "u@incp.t.example", IP4, R_PERM,
     "syntax error near 'bogus'", NULL},
    {"include_none_is_permerror", "u@incnone.t.example", IP4, R_PERM,
     "no SPF record at included none.i.example", NULL},
    {"include_nxdomain_is_permerror", "u@incnx.t.example", IP4, R_PERM, NULL,
     NULL},
    {"include_exp_not_used", "u@incexp.t.example", IP4, R_FAIL, NULL,
     "outer text"},
    {"include_loop_hits_limit", "u@incloop.t.example", IP4, R_PERM,
     "too many DNS lookups", NULL},
    /* 6.1 */
    {"redirect_pass", "u@red.t.example", IP4, R_PASS, NULL, NULL},
    {"redirect_fail_with_target_exp", "u@red.t.example", "192.0.2.4", R_FAIL,
     NULL, "target's text for target.r.example"},
    {"redirect_unused_after_match", "u@redm.t.example", IP4, R_PASS, NULL,
     NULL},
    {"redirect_ignored_with_all", "u@redall.t.example", IP4, R_NEUTRAL, NULL,
     NULL},
    {"redirect_to_none_permerror", "u@rednone.t.example", IP4, R_PERM,
     "no SPF record at redirect nx.r.example", NULL},
    {"redirect_original_exp_unused", "u@redexp.t.example", "192.0.2.4", R_FAIL,
     NULL, "target's text for target.r.example"},
    {"redirect_loop_hits_limit", "u@redloop.t.example", IP4, R_PERM,
     "too many DNS lookups", NULL},
    /* 6.2 */
    {"exp_expanded", "strong-bad@expl.t.example", IP4, R_FAIL, NULL,
     "192.0.2.3 is not one of expl.t.example's designated mail servers; "
     "see strong-bad@expl.t.example %  %20"},
    {"exp_c_r_t", "u@expcrt.t.example", IP6, R_FAIL, NULL,
     "2001:db8::cb01 mx.example.test 1700000000"},
    {"exp_not_on_softfail", "u@expsoft.t.example", IP4, R_SOFT, NULL, NULL},
    {"exp_tempfail_no_text", "u@exptemp.t.example", IP4, R_FAIL, NULL, NULL},
    {"exp_nxdomain_no_text", "u@expnx.t.example", IP4, R_FAIL, NULL, NULL},
    {"exp_two_records_no_text", "u@exptwo.t.example", IP4, R_FAIL, NULL, NULL},
    {"exp_bad_macro_no_text", "u@expbad.t.example", IP4, R_FAIL, NULL, NULL},
    /* 4.6 syntax, 5 mechanism grammar, 7.1 macro grammar */
    {"syn_short_ip4", "u@syn1.t.example", IP4, R_PERM,
     "syntax error near 'ip4:1.2.3'", NULL},
    {"syn_unknown_mechanism", "u@syn2.t.example", IP4, R_PERM,
     "syntax error near 'foo'", NULL},
    {"syn_no_toplabel", "u@syn3.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_cidr4_33", "u@syn4.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_cidr6_129", "u@syn5.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_all_with_arg", "u@syn6.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_two_redirects", "u@syn7.t.example", IP4, R_PERM, "repeated modifier",
     NULL},
    {"syn_two_exps", "u@syn8.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_unknown_macro", "u@syn9.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_macro_digit_zero", "u@syn10.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_c_outside_exp", "u@syn11.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_error_after_match", "u@syn12.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_include_without_domain", "u@syn13.t.example", IP4, R_PERM, NULL,
     NULL},
    {"syn_ip6_cidr_129", "u@syn14.t.example", IP6, R_PERM, NULL, NULL},
    {"syn_ptr_cidr", "u@syn15.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_ip4_leading_zero", "u@syn16.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_numeric_toplabel", "u@syn17.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_a_with_address", "u@syn18.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_empty_exp", "u@syn19.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_cidr_leading_zero", "u@syn20.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_bad_unknown_modifier", "u@syn21.t.example", IP4, R_PERM, NULL, NULL},
    {"syn_tab_is_no_separator", "u@syn22.t.example", IP4, R_PERM, NULL, NULL},
    {"unknown_modifiers_ignored", "u@mod.t.example", IP4, R_PASS, NULL, NULL},
    {"toplabel_forms", "u@toplab.t.example", IP4, R_PASS, NULL, NULL},
    /* 4.6.4 */
    {"ten_lookups_ok", "u@ten.t.example", IP4, R_FAIL, NULL, NULL},
    {"eleven_lookups_permerror", "u@eleven.t.example", IP4, R_PERM,
     "too many DNS lookups", NULL},
    {"limit_not_reached_after_match", "u@elevenm.t.example", IP4, R_PASS, NULL,
     NULL},
    {"limit_counts_inside_includes", "u@incten.t.example", IP4, R_FAIL, NULL,
     NULL},
    {"two_void_lookups_ok", "u@void2.t.example", IP4, R_FAIL, NULL, NULL},
    {"third_void_lookup_permerror", "u@void3.t.example", IP4, R_PERM,
     "void lookup limit", NULL},
    {"nodata_is_void_too", "u@voidnd.t.example", IP4, R_PERM,
     "void lookup limit", NULL},
    {"ten_mx_ok", "u@mx10.t.example", IP4, R_FAIL, NULL, NULL},
    {"eleven_mx_permerror", "u@mx11.t.example", IP4, R_PERM, "more than 10 MX",
     NULL},
    {"eleventh_ptr_ignored", "u@ptr11.t.example", IP4, R_FAIL, NULL, NULL},
    {"bad_client_address", "u@plus.t.example", "192.0.2", R_PERM, NULL, NULL},
};

/*
 * A view over the table that also knows a few answers too long for a
 * table row (ADNS_ROW_RR_MAX): the 10 and 11 MX hosts, the 11 PTR names.
 */
static const char *const mx10[] = {
    "m1.l.example", "m2.l.example",  "m3.l.example", "m4.l.example",
    "m5.l.example", "m6.l.example",  "m7.l.example", "m8.l.example",
    "m9.l.example", "m10.l.example", "m11.l.example"};
static const char *const ptr11[] = {
    "p1.p.l.example", "p2.p.l.example", "p3.p.l.example", "p4.p.l.example",
    "p5.p.l.example", "p6.p.l.example", "p7.p.l.example", "p8.p.l.example",
    "p9.p.l.example", "p10x.l.example", "p11.p.l.example"};
static const struct adns_answer ans_mx10 = {ADNS_OK, 10, mx10};
static const struct adns_answer ans_mx11 = {ADNS_OK, 11, mx10};
static const struct adns_answer ans_ptr11 = {ADNS_OK, 11, ptr11};

static const struct adns_answer *
long_get(void *ctx, const char *name, enum adns_type type)
{
	if (type == ADNS_MX && strcasecmp(name, "mx10.l.example") == 0)
		return &ans_mx10;
	if (type == ADNS_MX && strcasecmp(name, "mx11.l.example") == 0)
		return &ans_mx11;
	if (type == ADNS_PTR && strcasecmp(name, REV4) == 0 &&
	    adns_table_find(ctx, "ptr11.t.example", ADNS_TXT) != NULL)
		return &ans_ptr11;
	return adns_table_get(ctx, name, type);
}

/* Evaluates, answers, evaluates again ... until a result. */
static enum spf_result
run(struct spf_request *rq, struct adns_table *t, bool is_lazy,
    struct spf_outcome *out)
{
	struct adns_view v = adns_table_view(t, zone, is_lazy);
	enum spf_result r = SPF_PENDING;

	v.get = long_get;
	for (int i = 0; i < ROUNDS_MAX; i++) {
		r = spf_eval(rq, &v, out);
		if (r != SPF_PENDING)
			return r;
		if (!adns_table_round(t))
			break;
	}
	return r;
}

static struct spf_request
req(const char *sender, const char *ip)
{
	return (struct spf_request){ip, "helo.t.example", sender,
				    "mx.example.test", 1700000000};
}

static void
test_spf_cases(void **state)
{
	static struct adns_table t, t2;
	struct spf_outcome out, out2;
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct spf_case *c = &cases[i];
		struct spf_request rq = req(c->sender, c->ip);
		enum spf_result r = run(&rq, &t, true, &out);
		enum spf_result r2 = run(&rq, &t2, false, &out2);
		const char *want_exp = c->explanation ? c->explanation : "";
		bool ok = r == c->result && r2 == r &&
			  strcmp(out.explanation, want_exp) == 0 &&
			  strcmp(out2.explanation, out.explanation) == 0 &&
			  out.lookups == out2.lookups &&
			  (c->problem == NULL ||
			   strstr(out.problem, c->problem) != NULL) &&
			  strcmp(out.identity, "mailfrom") == 0;

		if (ok)
			continue;
		failed++;
		print_error("%s: got %s (eager %s) want %s; problem '%s' "
			    "exp '%s' lookups %u\n",
			    c->name, spf_result_name(r), spf_result_name(r2),
			    spf_result_name(c->result), out.problem,
			    out.explanation, out.lookups);
	}
	assert_int_equal(failed, 0);
}

static bool
asked(const struct adns_table *t, const char *name, enum adns_type type)
{
	for (size_t i = 0; i < t->n_asked; i++)
		if (t->asked[i].type == type &&
		    strcasecmp(t->asked[i].name, name) == 0)
			return true;
	return false;
}

static bool
asked_type(const struct adns_table *t, enum adns_type type)
{
	for (size_t i = 0; i < t->n_asked; i++)
		if (t->asked[i].type == type)
			return true;
	return false;
}

static void
test_spf_outcome_fields(void **state)
{
	static struct adns_table t;
	struct spf_outcome out;
	struct spf_request rq = req("u@ten.t.example", IP4);

	(void)state;
	assert_int_equal(run(&rq, &t, true, &out), SPF_FAIL);
	assert_int_equal(out.lookups, 10);
	assert_string_equal(out.domain, "ten.t.example");
	assert_string_equal(out.sender, "u@ten.t.example");
	assert_string_equal(out.problem, "");
	/* a sender without local part is postmaster (4.3) */
	rq = req("@plus.t.example", IP4);
	assert_int_equal(run(&rq, &t, true, &out), SPF_PASS);
	assert_string_equal(out.sender, "postmaster@plus.t.example");
	rq = req("plus.t.example", IP4);
	assert_int_equal(run(&rq, &t, true, &out), SPF_PASS);
	assert_string_equal(out.sender, "postmaster@plus.t.example");
	assert_string_equal(spf_result_name(SPF_SOFTFAIL), "softfail");
	assert_string_equal(spf_result_name(SPF_PERMERROR), "permerror");
	assert_string_equal(spf_result_name(SPF_TEMPERROR), "temperror");
	assert_string_equal(spf_result_name(SPF_NONE), "none");
}

/* 2.4: the null sender is checked as postmaster@HELO. */
static void
test_spf_null_sender_checks_helo(void **state)
{
	static struct adns_table t;
	struct spf_outcome out;
	struct spf_request rq = req("", IP4);

	(void)state;
	assert_int_equal(run(&rq, &t, true, &out), SPF_PASS);
	assert_string_equal(out.identity, "helo");
	assert_string_equal(out.domain, "helo.t.example");
	assert_string_equal(out.sender, "postmaster@helo.t.example");
	rq.ip = "192.0.2.4";
	assert_int_equal(run(&rq, &t, true, &out), SPF_FAIL);
	/* An address literal is no domain: none, without a lookup. */
	rq.helo = "[192.0.2.3]";
	assert_int_equal(run(&rq, &t, true, &out), SPF_NONE);
	assert_int_equal(t.n_asked, 0);
	rq.helo = "localhost";
	assert_int_equal(run(&rq, &t, true, &out), SPF_NONE);
	assert_int_equal(t.n_asked, 0);
}

/* The mx term asks for every host's address in one round. */
static void
test_spf_mx_hosts_asked_in_one_round(void **state)
{
	static struct adns_table t;
	struct spf_outcome out;
	struct spf_request rq = req("u@mx.t.example", "192.0.2.99");

	(void)state;
	assert_int_equal(run(&rq, &t, true, &out), SPF_FAIL);
	assert_int_equal(t.rounds, 3); /* TXT, MX, both hosts' A */
	assert_true(asked(&t, "mx1.mx.t.example", ADNS_A));
	assert_true(asked(&t, "mx2.mx.t.example", ADNS_A));
	/* 10 hosts: still one round for their addresses */
	rq = req("u@mx10.t.example", IP4);
	assert_int_equal(run(&rq, &t, true, &out), SPF_FAIL);
	assert_int_equal(t.rounds, 2); /* TXT; MX known; all ten A */
	assert_true(asked(&t, "m10.l.example", ADNS_A));
	assert_false(asked(&t, "m11.l.example", ADNS_A));
}

/* The includes of a record are fetched together once one waits. */
static void
test_spf_includes_asked_ahead(void **state)
{
	static const struct adns_row z[] = {
	    TXT("top.example", "v=spf1 include:a.example "
			       "include:b.example include:c.example "
			       "redirect=d.example"),
	    TXT("a.example", "v=spf1 ip4:198.51.100.1 -all"),
	    TXT("b.example", "v=spf1 ip4:198.51.100.2 -all"),
	    TXT("c.example", "v=spf1 ip4:198.51.100.3 -all"),
	    TXT("d.example", "v=spf1 ip4:192.0.2.3 -all"),
	    {0},
	};
	static struct adns_table t;
	struct adns_view v = adns_table_view(&t, z, true);
	struct spf_outcome out;
	struct spf_request rq = req("u@top.example", IP4);
	enum spf_result r;
	int i;

	(void)state;
	for (i = 0; i < ROUNDS_MAX; i++) {
		r = spf_eval(&rq, &v, &out);
		if (r != SPF_PENDING)
			break;
		assert_true(adns_table_round(&t));
	}
	assert_int_equal(r, SPF_PASS);
	assert_int_equal(t.rounds, 2);
	assert_int_equal(out.lookups, 4);
}

/* Only AAAA for an IPv6 client, only A for IPv4; exists always asks A. */
static void
test_spf_address_type_follows_client(void **state)
{
	static struct adns_table t;
	struct spf_outcome out;
	struct spf_request rq = req("u@mx.t.example", IP6);

	(void)state;
	assert_int_equal(run(&rq, &t, true, &out), SPF_PASS);
	assert_true(asked(&t, "mx2.mx.t.example", ADNS_AAAA));
	assert_false(asked_type(&t, ADNS_A));
	rq = req("u@a.t.example", IP4);
	assert_int_equal(run(&rq, &t, true, &out), SPF_PASS);
	assert_false(asked_type(&t, ADNS_AAAA));
	rq = req("u@exno.t.example", IP6);
	assert_int_equal(run(&rq, &t, true, &out), SPF_FAIL);
	assert_true(asked(&t,
			  "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
			  "8.b.d.0.1.0.0.2.ip6._spf.exno.t.example",
			  ADNS_A));
	assert_false(asked_type(&t, ADNS_AAAA));
}

/* 6.2: exp= is looked up on fail only; 5.5: ptr asks only names that
 * could match. */
static void
test_spf_asks_only_what_it_needs(void **state)
{
	static struct adns_table t;
	struct spf_outcome out;
	struct spf_request rq = req("u@expsoft.t.example", IP4);

	(void)state;
	assert_int_equal(run(&rq, &t, true, &out), SPF_SOFTFAIL);
	assert_false(asked(&t, "e.expl.t.example", ADNS_TXT));
	rq = req("u@expl.t.example", IP4);
	assert_int_equal(run(&rq, &t, true, &out), SPF_FAIL);
	assert_true(asked(&t, "e.expl.t.example", ADNS_TXT));
	rq = req("u@ptr.t.example", IP4);
	assert_int_equal(run(&rq, &t, true, &out), SPF_PASS);
	assert_true(asked(&t, "mail.ptr.t.example", ADNS_A));
	assert_false(asked(&t, "other.example", ADNS_A));
	assert_false(asked(&t, "fake.ptrx.t.example", ADNS_A));
	/* a syntax error anywhere: nothing but the record is looked up */
	rq = req("u@syn12.t.example", IP4);
	assert_int_equal(run(&rq, &t, true, &out), SPF_PERMERROR);
	assert_int_equal(t.n_asked, 1);
}

struct macro_case {
	const char *ip;
	const char *spec;
	const char *want;
};

/* RFC 7208 7.4, every line, and a few more. */
static void
test_spf_macro_examples(void **state)
{
	static const struct macro_case mc[] = {
	    {IP4, "%{s}", "strong-bad@email.example.com"},
	    {IP4, "%{o}", "email.example.com"},
	    {IP4, "%{d}", "email.example.com"},
	    {IP4, "%{d4}", "email.example.com"},
	    {IP4, "%{d3}", "email.example.com"},
	    {IP4, "%{d2}", "example.com"},
	    {IP4, "%{d1}", "com"},
	    {IP4, "%{dr}", "com.example.email"},
	    {IP4, "%{d2r}", "example.email"},
	    {IP4, "%{l}", "strong-bad"},
	    {IP4, "%{l-}", "strong.bad"},
	    {IP4, "%{lr}", "strong-bad"},
	    {IP4, "%{lr-}", "bad.strong"},
	    {IP4, "%{l1r-}", "strong"},
	    {IP4, "%{ir}.%{v}._spf.%{d2}",
	     "3.2.0.192.in-addr._spf.example.com"},
	    {IP4, "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
	    {IP4, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
	     "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
	    {IP4, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
	     "3.2.0.192.in-addr.strong.lp._spf.example.com"},
	    {IP4, "%{d2}.trusted-domains.example.net",
	     "example.com.trusted-domains.example.net"},
	    {IP6, "%{ir}.%{v}._spf.%{d2}",
	     "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0."
	     "2.ip6._spf.example.com"},
	    /* more: literals, escapes, case, delimiters */
	    {IP4, "%%%_%-", "% %20"},
	    {IP4, "%{S}", "strong-bad%40email.example.com"},
	    {IP4, "%{L-}", "strong.bad"},
	    {IP4, "%{D}", "email.example.com"},
	    {IP4, "%{dR}", "com.example.email"},
	    {IP4, "%{d9}", "email.example.com"},
	    {IP4, "%{d1-.}", "com"},
	    {IP4, "%{s.=}", "strong-bad@email.example.com"},
	    {IP4, "%{l+-}", "strong.bad"},
	    {IP4, "%{v}%{h}", "in-addrhelo.t.example"},
	    {IP4, "%{i}", "192.0.2.3"},
	    {"::ffff:192.0.2.3", "%{i}.%{v}", "192.0.2.3.in-addr"},
	    {IP6, "%{c}", "2001:db8::cb01"},
	    {IP4, "%{r}.%{t}", "mx.example.test.1700000000"},
	};
	static struct adns_table t;
	struct adns_view v = adns_table_view(&t, zone, false);
	char out[512];

	(void)state;
	for (size_t i = 0; i < sizeof mc / sizeof mc[0]; i++) {
		struct spf_request rq =
		    req("strong-bad@email.example.com", mc[i].ip);

		if (spf_expand(&rq, &v, "email.example.com", mc[i].spec, true,
			       out, sizeof out) != 0)
			fail_msg("%s: not expanded", mc[i].spec);
		if (strcmp(out, mc[i].want) != 0)
			fail_msg("%s: got '%s' want '%s'", mc[i].spec, out,
				 mc[i].want);
	}
}

static void
test_spf_macro_syntax(void **state)
{
	static const char *const bad[] = {
	    "%",     "%x",  "%{",   "%{d",  "%{x}", "%{d0}", "%{d2rr}",
	    "%{d:}", "a b", "%{c}", "%{r}", "%{t}", "\x80",
	};
	static struct adns_table t;
	struct adns_view v = adns_table_view(&t, zone, false);
	struct spf_request rq = req("a@b.example", IP4);
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (spf_expand(&rq, &v, "b.example", bad[i], false, out,
			       sizeof out) != -1)
			fail_msg("'%s' should be a syntax error", bad[i]);
	/* exp text: spaces and c r t are fine there */
	assert_int_equal(spf_expand(&rq, &v, "b.example", "a %{c} %{t}", true,
				    out, sizeof out),
			 0);
	assert_string_equal(out, "a 192.0.2.3 1700000000");
	/* a small buffer truncates, never overruns */
	assert_int_equal(
	    spf_expand(&rq, &v, "b.example", "%{s}%{s}%{s}", false, out, 8), 0);
	assert_int_equal(strlen(out), 7);
}

/* %{p} (5.5, 7.3): a validated name, preferring <domain>'s own. */
static void
test_spf_macro_p(void **state)
{
	static const struct adns_row z[] = {
	    PTR(REV4, "x.other.example", "mx.example.org", "bad.example"),
	    A("x.other.example", "192.0.2.3"),
	    A("mx.example.org", "192.0.2.3"),
	    A("bad.example", "198.51.100.1"),
	    {0},
	};
	static struct adns_table t;
	struct adns_view v = adns_table_view(&t, z, true);
	struct spf_request rq = req("strong-bad@email.example.com", IP4);
	char out[128];

	(void)state;
	/* first round: the PTR; second: all three names' A at once */
	assert_int_equal(
	    spf_expand(&rq, &v, "example.org", "%{p}", false, out, sizeof out),
	    1);
	assert_true(adns_table_round(&t));
	assert_int_equal(
	    spf_expand(&rq, &v, "example.org", "%{p}", false, out, sizeof out),
	    1);
	assert_true(adns_table_round(&t));
	assert_int_equal(t.n_asked, 4);
	assert_int_equal(
	    spf_expand(&rq, &v, "example.org", "%{p}", false, out, sizeof out),
	    0);
	assert_string_equal(out, "mx.example.org");
	assert_int_equal(spf_expand(&rq, &v, "mx.example.org", "%{p2}", false,
				    out, sizeof out),
			 0);
	assert_string_equal(out, "example.org");
	assert_int_equal(spf_expand(&rq, &v, "elsewhere.example", "%{p}", false,
				    out, sizeof out),
			 0);
	assert_string_equal(out, "x.other.example");
	rq.ip = "192.0.2.9"; /* no PTR */
	v = adns_table_view(&t, z, false);
	assert_int_equal(
	    spf_expand(&rq, &v, "example.org", "%{p}", false, out, sizeof out),
	    0);
	assert_string_equal(out, "unknown");
}

/* 4.8: a target longer than 253 octets loses labels on the left. */
static void
test_spf_long_target_cut_from_left(void **state)
{
	static const struct adns_row z[] = {
	    TXT("long.example", "v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}."
				"x.example -all"),
	    {0},
	};
	static struct adns_table t;
	struct adns_view v = adns_table_view(&t, z, false);
	struct spf_outcome out;
	char local[64], sender[128];
	const char *name;

	(void)state;
	memset(local, 'l', 60);
	local[60] = '\0';
	snprintf(sender, sizeof sender, "%s@long.example", local);
	struct spf_request rq = req(sender, IP4);

	assert_int_equal(spf_eval(&rq, &v, &out), SPF_FAIL);
	name = t.asked[t.n_asked - 1].name;
	assert_true(strlen(name) <= 253);
	assert_int_equal(strlen(name), 4 * 61 + 9);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spf_cases),
	    cmocka_unit_test(test_spf_outcome_fields),
	    cmocka_unit_test(test_spf_null_sender_checks_helo),
	    cmocka_unit_test(test_spf_mx_hosts_asked_in_one_round),
	    cmocka_unit_test(test_spf_includes_asked_ahead),
	    cmocka_unit_test(test_spf_address_type_follows_client),
	    cmocka_unit_test(test_spf_asks_only_what_it_needs),
	    cmocka_unit_test(test_spf_macro_examples),
	    cmocka_unit_test(test_spf_macro_syntax),
	    cmocka_unit_test(test_spf_macro_p),
	    cmocka_unit_test(test_spf_long_target_cut_from_left),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_tlsrpt.c - SMTP TLS Reporting (src/auth/tlsrpt.c): picking the
 * _smtp._tls TXT record and its rua URIs (RFC 8460 3), mailto decoding,
 * the JSON report (section 4) against literal output, parsed back by a
 * small JSON checker below, escaping, dates, and the file name and
 * Subject (5.3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/tlsrpt.h"

#define TXT_MAX 4
#define RUA_MAX 4
#define JSON_DEPTH_MAX 16
#define BUF 512

/* ---- a strict JSON checker (RFC 8259), for the tests only ---- */

struct json_in {
	const char *s;
	size_t i;
	int depth;
};

static bool json_value(struct json_in *in);

static void
json_ws(struct json_in *in)
{
	while (strchr(" \t\r\n", in->s[in->i]) != NULL && in->s[in->i] != '\0')
		in->i++;
}

static int
json_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A string at in->i; its decoded octets into out (when not NULL; \u
 * escapes of U+0000-U+007F only, others as '?'). */
static bool
json_string(struct json_in *in, char *out, size_t size)
{
	size_t n = 0;

	if (in->s[in->i] != '"')
		return false;
	in->i++;
	for (;;) {
		unsigned char c = (unsigned char)in->s[in->i];
		unsigned v = 0;

		if (c == '"')
			break;
		if (c < 0x20)
			return false;
		in->i++;
		if (c == '\\') {
			char e = in->s[in->i++];

			if (e == 'u') {
				for (int k = 0; k < 4; k++) {
					int h = json_hex(in->s[in->i++]);

					if (h < 0)
						return false;
					v = v * 16 + (unsigned)h;
				}
				c = v < 0x80 ? (unsigned char)v : '?';
			} else if (e != '\0' &&
				   strchr("\"\\/bfnrt", e) != NULL) {
				c = (unsigned char)(e == 'n'   ? '\n'
						    : e == 't' ? '\t'
						    : e == 'r' ? '\r'
						    : e == 'b' ? '\b'
						    : e == 'f' ? '\f'
							       : e);
			} else {
				return false;
			}
		} else if (c >= 0x80) {
			/* Only well-formed UTF-8 lead/continuation shapes. */
			int more = c >= 0xf0   ? 3
				   : c >= 0xe0 ? 2
				   : c >= 0xc2 ? 1
					       : -1;

			if (more < 0 || c > 0xf4)
				return false;
			if (out != NULL && n + 1 < size)
				out[n++] = (char)c;
			for (int k = 0; k < more; k++) {
				unsigned char t = (unsigned char)in->s[in->i++];

				if (t < 0x80 || t > 0xbf)
					return false;
				if (out != NULL && n + 1 < size)
					out[n++] = (char)t;
			}
			continue;
		}
		if (out != NULL && n + 1 < size)
			out[n++] = (char)c;
	}
	in->i++;
	if (out != NULL)
		out[n] = '\0';
	return true;
}

static bool
json_number(struct json_in *in)
{
	size_t start;

	if (in->s[in->i] == '-')
		in->i++;
	start = in->i;
	while (in->s[in->i] >= '0' && in->s[in->i] <= '9')
		in->i++;
	if (in->i == start || (in->s[start] == '0' && in->i - start > 1))
		return false;
	return true;
}

static bool
json_members(struct json_in *in, char close, bool is_object)
{
	in->i++;
	json_ws(in);
	if (in->s[in->i] == close) {
		in->i++;
		return true;
	}
	for (;;) {
		json_ws(in);
		if (is_object) {
			if (!json_string(in, NULL, 0))
				return false;
			json_ws(in);
			if (in->s[in->i++] != ':')
				return false;
		}
		if (!json_value(in))
			return false;
		json_ws(in);
		if (in->s[in->i] == close) {
			in->i++;
			return true;
		}
		if (in->s[in->i++] != ',')
			return false;
	}
}

static bool
json_value(struct json_in *in)
{
	bool is_ok;

	json_ws(in);
	if (++in->depth > JSON_DEPTH_MAX)
		return false;
	switch (in->s[in->i]) {
	case '{':
		is_ok = json_members(in, '}', true);
		break;
	case '[':
		is_ok = json_members(in, ']', false);
		break;
	case '"':
		is_ok = json_string(in, NULL, 0);
		break;
	default:
		is_ok = json_number(in);
		break;
	}
	in->depth--;
	return is_ok;
}

/* True when s is exactly one JSON value. */
static bool
json_is_valid(const char *s)
{
	struct json_in in = {s, 0, 0};

	if (!json_value(&in))
		return false;
	json_ws(&in);
	return s[in.i] == '\0';
}

/* The decoded string after the first "key": in s. */
static bool
json_get(const char *s, const char *key, char *out, size_t size)
{
	char pat[BUF];
	const char *at;
	struct json_in in;

	(void)snprintf(pat, sizeof pat, "\"%s\":", key);
	at = strstr(s, pat);
	if (at == NULL)
		return false;
	in.s = at + strlen(pat);
	in.i = 0;
	in.depth = 0;
	return json_string(&in, out, size);
}

/* ---- the TXT record ---- */

struct txt_case {
	const char *txt[TXT_MAX];
	const char *rua[RUA_MAX + 1]; /* NULL-ended */
};

static void
test_tlsrpt_txt_pick_table(void **state)
{
	static const struct txt_case cases[] = {
	    /* RFC 8460 3's examples. */
	    {{"v=TLSRPTv1; rua=mailto:reports@example.com"},
	     {"mailto:reports@example.com"}},
	    {{"v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt"},
	     {"https://reporting.example.com/v1/tlsrpt"}},
	    {{"v=TLSRPTv1; rua=mailto:a@example.com,https://r.example/x"},
	     {"mailto:a@example.com", "https://r.example/x"}},
	    /* Spaces around "," and ";", a trailing ";", other fields. */
	    {{"v=TLSRPTv1 ;rua=mailto:a@x.example , HTTPS://r.example ; "
	      "ext=1;"},
	     {"mailto:a@x.example", "https://r.example"}},
	    {{"v=TLSRPTv1;ext=foo;rua=MailTo:a%2Bb@x.example"},
	     {"mailto:a%2Bb@x.example"}},
	    /* Other records discarded. */
	    {{"v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@x.example"},
	     {"mailto:a@x.example"}},
	    /* Other schemes skipped, the rest kept. */
	    {{"v=TLSRPTv1; rua=http://r.example,ftp://f.example,"
	      "mailto:a@x.example"},
	     {"mailto:a@x.example"}},
	    /* The first rua= counts. */
	    {{"v=TLSRPTv1; rua=mailto:a@x.example; rua=mailto:b@x.example"},
	     {"mailto:a@x.example"}},
	    /* Two records: none. */
	    {{"v=TLSRPTv1; rua=mailto:a@x.example",
	      "v=TLSRPTv1; rua=mailto:b@x.example"},
	     {NULL}},
	    {{NULL}, {NULL}},
	    {{"v=TLSRPTv10; rua=mailto:a@x.example"}, {NULL}},
	    {{"v=tlsrptv1; rua=mailto:a@x.example"}, {NULL}},
	    {{"v=TLSRPTv1"}, {NULL}},
	    /* Kept but invalid: none. */
	    {{"v=TLSRPTv1;"}, {NULL}},
	    {{"v=TLSRPTv1; ext=1"}, {NULL}},
	    {{"v=TLSRPTv1; rua="}, {NULL}},
	    {{"v=TLSRPTv1; rua=mailto:a@x.example,"}, {NULL}},
	    {{"v=TLSRPTv1; rua=a@x.example"}, {NULL}},
	    {{"v=TLSRPTv1; rua=mailto:a!b@x.example"}, {NULL}},
	    {{"v=TLSRPTv1; rua=mailto:a%2@x.example"}, {NULL}},
	    {{"v=TLSRPTv1; rua=mailto:a b@x.example"}, {NULL}},
	    {{"v=TLSRPTv1; RUA=mailto:a@x.example"}, {NULL}},
	    {{"v=TLSRPTv1; rua=mailto:a@x.example;; x=1"}, {NULL}},
	    {{"v=TLSRPTv1; rua=mailto:a@x.example; x="}, {NULL}},
	    /* Only unknown schemes: nothing usable. */
	    {{"v=TLSRPTv1; rua=http://r.example"}, {NULL}},
	};
	char rua[RUA_MAX][TLSRPT_RUA_SIZE];

	(void)state;
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		size_t len[TXT_MAX], n = 0, want = 0, got;

		while (n < TXT_MAX && cases[k].txt[n] != NULL) {
			len[n] = strlen(cases[k].txt[n]);
			n++;
		}
		while (cases[k].rua[want] != NULL)
			want++;
		got = tlsrpt_txt_pick(cases[k].txt, len, n, rua, RUA_MAX);
		if (got != want)
			fail_msg("case %zu: %zu URIs, want %zu", k, got, want);
		for (size_t j = 0; j < want; j++)
			assert_string_equal(rua[j], cases[k].rua[j]);
	}
}

static void
test_tlsrpt_txt_pick_limits(void **state)
{
	char txt[2 * TLSRPT_RUA_SIZE];
	const char *t[] = {txt};
	size_t len[1];
	char rua[RUA_MAX][TLSRPT_RUA_SIZE];
	int n;

	(void)state;
	/* Room for 2: the first 2 kept. */
	(void)snprintf(txt, sizeof txt,
		       "v=TLSRPTv1; rua=mailto:a@x.example,mailto:b@x.example,"
		       "mailto:c@x.example");
	len[0] = strlen(txt);
	assert_int_equal(tlsrpt_txt_pick(t, len, 1, rua, 2), 2);
	assert_string_equal(rua[1], "mailto:b@x.example");
	/* A URI of TLSRPT_RUA_SIZE octets is skipped, the next kept. */
	n = snprintf(txt, sizeof txt, "v=TLSRPTv1; rua=https://x.example/");
	memset(txt + n, 'a', TLSRPT_RUA_SIZE - 18);
	(void)snprintf(txt + n + TLSRPT_RUA_SIZE - 18,
		       sizeof txt - (size_t)n - TLSRPT_RUA_SIZE + 18,
		       ",mailto:a@x.example");
	len[0] = strlen(txt);
	assert_int_equal(tlsrpt_txt_pick(t, len, 1, rua, RUA_MAX), 1);
	assert_string_equal(rua[0], "mailto:a@x.example");
	/* One octet shorter: kept. */
	memmove(txt + n, txt + n + 1, strlen(txt + n + 1) + 1);
	len[0] = strlen(txt);
	assert_int_equal(tlsrpt_txt_pick(t, len, 1, rua, RUA_MAX), 2);
	assert_int_equal(strlen(rua[0]), TLSRPT_RUA_SIZE - 1);
	/* The length counts, not a NUL. */
	(void)snprintf(txt, sizeof txt, "v=TLSRPTv1; rua=mailto:a@x.example");
	len[0] = sizeof "v=TLSRPTv1; rua=mailto:a@x.exam" - 1;
	assert_int_equal(tlsrpt_txt_pick(t, len, 1, rua, RUA_MAX), 1);
	assert_string_equal(rua[0], "mailto:a@x.exam");
	len[0] = 5;
	assert_int_equal(tlsrpt_txt_pick(t, len, 1, rua, RUA_MAX), 0);
}

static void
test_tlsrpt_mailto(void **state)
{
	static const struct {
		const char *uri, *addr; /* addr NULL: refused */
	} cases[] = {
	    {"mailto:reports@example.com", "reports@example.com"},
	    {"MAILTO:tls+rpt@example.com", "tls+rpt@example.com"},
	    {"mailto:tls%2Brpt@example.com", "tls+rpt@example.com"},
	    {"mailto:a%40b@example.com", "a@b@example.com"},
	    {"mailto:r@example.com?subject=x", "r@example.com"},
	    {"mailto:r%2Cs@example.com", NULL},
	    {"mailto:r%20s@example.com", NULL},
	    {"mailto:r%0d%0aBcc:x@example.com", NULL},
	    {"mailto:r%4@example.com", NULL},
	    {"mailto:r%@example.com", NULL},
	    {"mailto:example.com", NULL},
	    {"mailto:@example.com", NULL},
	    {"mailto:r@", NULL},
	    {"mailto:", NULL},
	    {"https://r.example/", NULL},
	};
	char addr[BUF], tiny[4];

	(void)state;
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		bool is_ok = tlsrpt_rua_mailto(cases[k].uri, addr, sizeof addr);

		if (is_ok != (cases[k].addr != NULL))
			fail_msg("case %zu: %s", k, cases[k].uri);
		assert_string_equal(addr, is_ok ? cases[k].addr : "");
	}
	assert_false(
	    tlsrpt_rua_mailto("mailto:ab@x.example", tiny, sizeof tiny));
	assert_string_equal(tiny, "");
	assert_true(tlsrpt_rua_is_https("HTTPS://r.example/"));
	assert_false(tlsrpt_rua_is_https("mailto:a@x.example"));
}

/* ---- the JSON report ---- */

static const char *const sts_lines[] = {"version: STSv1", "mode: testing",
					"mx: *.mail.company-y.example",
					"max_age: 86400"};

static void
fill_failure(struct tlsrpt_failure *f, const char *type, const char *ip,
	     const char *mx, const char *rip, uint64_t count)
{
	memset(f, 0, sizeof *f);
	(void)snprintf(f->result_type, sizeof f->result_type, "%s", type);
	(void)snprintf(f->sending_mta_ip, sizeof f->sending_mta_ip, "%s", ip);
	(void)snprintf(f->receiving_mx_hostname,
		       sizeof f->receiving_mx_hostname, "%s", mx);
	(void)snprintf(f->receiving_ip, sizeof f->receiving_ip, "%s", rip);
	f->count = count;
}

static void
test_tlsrpt_json_rfc_example(void **state)
{
	/* The report of RFC 8460 Appendix B, in our key order. */
	static const char want[] =
	    "{\"organization-name\":\"Company-X\","
	    "\"date-range\":{\"start-datetime\":\"2016-04-01T00:00:00Z\","
	    "\"end-datetime\":\"2016-04-01T23:59:59Z\"},"
	    "\"contact-info\":\"sts-reporting@company-x.example\","
	    "\"report-id\":\"5065427c-23d3-47ca-b6e0-946ea0e8c4be\","
	    "\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
	    "\"policy-string\":[\"version: STSv1\",\"mode: testing\","
	    "\"mx: *.mail.company-y.example\",\"max_age: 86400\"],"
	    "\"policy-domain\":\"company-y.example\","
	    "\"mx-host\":\"*.mail.company-y.example\"},"
	    "\"summary\":{\"total-successful-session-count\":5326,"
	    "\"total-failure-session-count\":303},"
	    "\"failure-details\":[{\"result-type\":\"certificate-expired\","
	    "\"sending-mta-ip\":\"2001:db8:abcd:0012::1\","
	    "\"receiving-mx-hostname\":\"mx1.mail.company-y.example\","
	    "\"receiving-ip\":\"203.0.113.56\","
	    "\"failed-session-count\":100},"
	    "{\"result-type\":\"starttls-not-supported\","
	    "\"sending-mta-ip\":\"2001:db8:abcd:0013::1\","
	    "\"receiving-mx-hostname\":\"mx2.mail.company-y.example\","
	    "\"receiving-mx-helo\":\"mx2.mail.company-y.example\","
	    "\"receiving-ip\":\"203.0.113.80\","
	    "\"failed-session-count\":200,"
	    "\"additional-information\":\"https://reports.company-x.example/"
	    "report_info?id=5065427c-23d3#StarttlsNotSupported\"},"
	    "{\"result-type\":\"validation-failure\","
	    "\"sending-mta-ip\":\"198.51.100.62\","
	    "\"receiving-mx-hostname\":\"mx-backup.mail.company-y.example\","
	    "\"receiving-ip\":\"203.0.113.58\","
	    "\"failed-session-count\":3,"
	    "\"failure-reason-code\":\"X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED\""
	    "}]}]}";
	struct tlsrpt_failure f[3];
	struct tlsrpt_policy p;
	struct tlsrpt_report r;
	char *json;

	(void)state;
	fill_failure(&f[0], TLSRPT_CERTIFICATE_EXPIRED, "2001:db8:abcd:0012::1",
		     "mx1.mail.company-y.example", "203.0.113.56", 100);
	fill_failure(&f[1], TLSRPT_STARTTLS_NOT_SUPPORTED,
		     "2001:db8:abcd:0013::1", "mx2.mail.company-y.example",
		     "203.0.113.80", 200);
	(void)snprintf(f[1].receiving_mx_helo, sizeof f[1].receiving_mx_helo,
		       "mx2.mail.company-y.example");
	f[1].additional_information = "https://reports.company-x.example/"
				      "report_info?id=5065427c-23d3#"
				      "StarttlsNotSupported";
	fill_failure(&f[2], TLSRPT_VALIDATION_FAILURE, "198.51.100.62",
		     "mx-backup.mail.company-y.example", "203.0.113.58", 3);
	(void)snprintf(f[2].failure_reason_code,
		       sizeof f[2].failure_reason_code,
		       "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED");

	memset(&p, 0, sizeof p);
	(void)snprintf(p.policy_type, sizeof p.policy_type, TLSRPT_POLICY_STS);
	p.policy_strings = sts_lines;
	p.n_strings = 4;
	(void)snprintf(p.policy_domain, sizeof p.policy_domain,
		       "company-y.example");
	(void)snprintf(p.mx_host, sizeof p.mx_host, "*.mail.company-y.example");
	p.n_success = 5326;
	p.n_failure = 303;
	p.failures = f;
	p.n_failures = 3;

	memset(&r, 0, sizeof r);
	r.org_name = "Company-X";
	r.contact_info = "sts-reporting@company-x.example";
	(void)snprintf(r.report_id, sizeof r.report_id,
		       "5065427c-23d3-47ca-b6e0-946ea0e8c4be");
	r.start = 1459468800;
	r.end = 1459555199;
	r.policies = &p;
	r.n_policies = 1;

	json = tlsrpt_json(&r);
	assert_non_null(json);
	assert_string_equal(json, want);
	assert_true(json_is_valid(json));
	free(json);
}

static void
test_tlsrpt_json_optional_left_out(void **state)
{
	static const char want[] =
	    "{\"organization-name\":\"\",\"date-range\":{\"start-datetime\":"
	    "\"1970-01-01T00:00:00Z\",\"end-datetime\":"
	    "\"1970-01-02T00:00:00Z\"},\"contact-info\":\"\",\"report-id\":"
	    "\"r1\",\"policies\":[{\"policy\":{\"policy-type\":"
	    "\"no-policy-found\",\"policy-domain\":\"x.example\"},"
	    "\"summary\":{\"total-successful-session-count\":"
	    "18446744073709551615,\"total-failure-session-count\":0}},"
	    "{\"policy\":{\"policy-type\":\"tlsa\",\"policy-domain\":\"\"},"
	    "\"summary\":{\"total-successful-session-count\":0,"
	    "\"total-failure-session-count\":1},\"failure-details\":"
	    "[{\"result-type\":\"dane-required\",\"failed-session-count\":1}]}"
	    "]}";
	struct tlsrpt_failure f;
	struct tlsrpt_policy p[2];
	struct tlsrpt_report r;
	char *json;

	(void)state;
	memset(&f, 0, sizeof f);
	(void)snprintf(f.result_type, sizeof f.result_type,
		       TLSRPT_DANE_REQUIRED);
	f.count = 1;
	memset(p, 0, sizeof p);
	(void)snprintf(p[0].policy_type, sizeof p[0].policy_type,
		       TLSRPT_POLICY_NONE);
	(void)snprintf(p[0].policy_domain, sizeof p[0].policy_domain,
		       "x.example");
	p[0].n_success = UINT64_MAX;
	(void)snprintf(p[1].policy_type, sizeof p[1].policy_type,
		       TLSRPT_POLICY_TLSA);
	p[1].n_failure = 1;
	p[1].failures = &f;
	p[1].n_failures = 1;
	memset(&r, 0, sizeof r);
	(void)snprintf(r.report_id, sizeof r.report_id, "r1");
	r.end = 86400;
	r.policies = p;
	r.n_policies = 2;
	json = tlsrpt_json(&r);
	assert_non_null(json);
	assert_string_equal(json, want);
	assert_true(json_is_valid(json));
	free(json);

	/* No policies: still an array. */
	r.n_policies = 0;
	json = tlsrpt_json(&r);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"policies\":[]}"));
	assert_true(json_is_valid(json));
	free(json);
}

static void
test_tlsrpt_json_escaping(void **state)
{
	static const struct {
		const char *in, *escaped, *decoded;
	} cases[] = {
	    {"plain", "\"plain\"", "plain"},
	    {"a\"b\\c/d", "\"a\\\"b\\\\c/d\"", "a\"b\\c/d"},
	    {"l1\nl2\r\t\x01\x1f",
	     "\"l1\\u000al2\\u000d\\u0009\\u0001\\u001f\"",
	     "l1\nl2\r\t\x01\x1f"},
	    {"del\x7f", "\"del\x7f\"", "del\x7f"},
	    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7",
	     "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7\"",
	     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7"},
	    /* Not UTF-8: a lone byte, overlong, surrogate, truncated. */
	    {"x\xffy", "\"x\\ufffdy\"", NULL},
	    {"\xc0\xaf", "\"\\ufffd\\ufffd\"", NULL},
	    {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"", NULL},
	    {"ab\xe2\x82", "\"ab\\ufffd\\ufffd\"", NULL},
	    {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", NULL},
	};
	struct tlsrpt_report r;
	char want[BUF], got[BUF];

	(void)state;
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		char *json;

		memset(&r, 0, sizeof r);
		r.org_name = cases[k].in;
		json = tlsrpt_json(&r);
		assert_non_null(json);
		(void)snprintf(want, sizeof want, "{\"organization-name\":%s,",
			       cases[k].escaped);
		if (strncmp(json, want, strlen(want)) != 0)
			fail_msg("case %zu: %s", k, json);
		if (!json_is_valid(json))
			fail_msg("case %zu: not JSON: %s", k, json);
		if (cases[k].decoded != NULL) {
			assert_true(json_get(json, "organization-name", got,
					     sizeof got));
			assert_string_equal(got, cases[k].decoded);
		}
		free(json);
	}
}

static void
test_tlsrpt_json_dates(void **state)
{
	static const struct {
		int64_t t;
		const char *date;
	} cases[] = {
	    {0, "1970-01-01T00:00:00Z"},
	    {-1, "1969-12-31T23:59:59Z"},
	    {951782400, "2000-02-29T00:00:00Z"},
	    {951868799, "2000-02-29T23:59:59Z"},
	    {4107542400, "2100-03-01T00:00:00Z"},
	    {1764892800, "2025-12-05T00:00:00Z"},
	    {253402300799, "9999-12-31T23:59:59Z"},
	    {INT64_MAX, "9999-12-31T23:59:59Z"},
	    {-62167219200, "0000-01-01T00:00:00Z"},
	    {INT64_MIN, "0000-01-01T00:00:00Z"},
	};
	struct tlsrpt_report r;
	char got[BUF];

	(void)state;
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		char *json;

		memset(&r, 0, sizeof r);
		r.start = cases[k].t;
		json = tlsrpt_json(&r);
		assert_non_null(json);
		assert_true(json_get(json, "start-datetime", got, sizeof got));
		if (strcmp(got, cases[k].date) != 0)
			fail_msg("%lld: %s", (long long)cases[k].t, got);
		free(json);
	}
}

static void
test_tlsrpt_day_before(void **state)
{
	int64_t start, end;

	(void)state;
	tlsrpt_day_before(1764979200 + 3600, &start, &end);
	assert_int_equal(start, 1764892800);
	assert_int_equal(end, 1764979199);
	tlsrpt_day_before(1764979200, &start, &end);
	assert_int_equal(start, 1764892800);
	tlsrpt_day_before(-1, &start, &end);
	assert_int_equal(start, -2 * 86400);
	assert_int_equal(end, -86401);
	tlsrpt_day_before(INT64_MIN, &start, &end);
	assert_true(start < end);
	tlsrpt_day_before(INT64_MAX, &start, &end);
	assert_int_equal(end - start, 86399);
}

/* ---- file name, Subject, result types ---- */

static void
test_tlsrpt_filename_subject(void **state)
{
	char buf[BUF], small[16];

	(void)state;
	/* RFC 8460 5.3's example. */
	assert_true(tlsrpt_filename(buf, sizeof buf, "mail.sender.example",
				    "example.com", 1470013207, 1470186007,
				    "001", true));
	assert_string_equal(
	    buf, "mail.sender.example!example.com!1470013207!1470186007!001."
		 "json.gz");
	assert_true(tlsrpt_filename(buf, sizeof buf, "s.example", "d.example",
				    0, 86400, NULL, false));
	assert_string_equal(buf, "s.example!d.example!0!86400.json");
	assert_true(tlsrpt_filename(buf, sizeof buf, "s.example", "d.example",
				    0, 86400, "", true));
	assert_string_equal(buf, "s.example!d.example!0!86400.json.gz");
	assert_false(tlsrpt_filename(buf, sizeof buf, "s!x", "d.example", 0, 1,
				     NULL, true));
	assert_string_equal(buf, "");
	assert_false(tlsrpt_filename(buf, sizeof buf, "s.example", "../d", 0, 1,
				     NULL, true));
	assert_false(tlsrpt_filename(buf, sizeof buf, "", "d.example", 0, 1,
				     NULL, true));
	assert_false(tlsrpt_filename(buf, sizeof buf, "s.example", "d.example",
				     -1, 1, NULL, true));
	assert_false(tlsrpt_filename(buf, sizeof buf, "s.example", "d.example",
				     0, 1, "a-1", true));
	assert_false(tlsrpt_filename(small, sizeof small, "s.example",
				     "d.example", 0, 1, NULL, true));
	assert_string_equal(small, "");

	assert_true(tlsrpt_subject(buf, sizeof buf, "example.net",
				   "mail.sender.example",
				   "735ff.e317+bf22029@mailexample.net"));
	assert_string_equal(buf, "Report Domain: example.net Submitter: "
				 "mail.sender.example Report-ID: "
				 "<735ff.e317+bf22029@mailexample.net>");
	assert_false(tlsrpt_subject(buf, sizeof buf, "example.net\r\nBcc: x",
				    "s.example", "id"));
	assert_string_equal(buf, "");
	assert_false(
	    tlsrpt_subject(buf, sizeof buf, "d.example", "s.example", ""));
	assert_false(tlsrpt_subject(small, sizeof small, "d.example",
				    "s.example", "id"));
	assert_string_equal(small, "");
}

static void
test_tlsrpt_result_types(void **state)
{
	static const char *const known[] = {
	    "starttls-not-supported", "certificate-host-mismatch",
	    "certificate-expired",    "certificate-not-trusted",
	    "validation-failure",     "tlsa-invalid",
	    "dnssec-invalid",	      "dane-required",
	    "sts-policy-fetch-error", "sts-policy-invalid",
	    "sts-webpki-invalid"};

	(void)state;
	for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
		assert_true(tlsrpt_result_type_is_known(known[k]));
	assert_false(tlsrpt_result_type_is_known("STARTTLS-not-supported"));
	assert_false(tlsrpt_result_type_is_known(""));
	assert_false(tlsrpt_result_type_is_known("sts"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tlsrpt_txt_pick_table),
	    cmocka_unit_test(test_tlsrpt_txt_pick_limits),
	    cmocka_unit_test(test_tlsrpt_mailto),
	    cmocka_unit_test(test_tlsrpt_json_rfc_example),
	    cmocka_unit_test(test_tlsrpt_json_optional_left_out),
	    cmocka_unit_test(test_tlsrpt_json_escaping),
	    cmocka_unit_test(test_tlsrpt_json_dates),
	    cmocka_unit_test(test_tlsrpt_day_before),
	    cmocka_unit_test(test_tlsrpt_filename_subject),
	    cmocka_unit_test(test_tlsrpt_result_types),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

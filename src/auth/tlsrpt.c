/*
 * tlsrpt.c - SMTP TLS Reporting (RFC 8460): the _smtp._tls TXT record,
 * the JSON report, the report's file name and Subject.
 *
 * Called by the sending side, which counts TLS sessions per policy
 * domain, sends a report a day to each domain that asks for one, and
 * does the DNS, the gzip, the DKIM signature and the delivery; and by
 * the unit tests and the fuzzer.  Pure: no I/O, no clock, no logging;
 * tlsrpt_json() allocates the string it returns, nothing else does.
 *
 * RFC 8460 as read here:
 *   3    TXT: a record not beginning with "v=TLSRPTv1" *WSP ";" is
 *        discarded; not exactly one left = no reporting.  The one left
 *        follows the grammar (fields split by *WSP ";" *WSP, a trailing
 *        delimiter allowed; rua= required; other fields name "=" value
 *        with the value's characters %x21-3A / %x3C / %x3E-7E) or it
 *        counts as none: we would not guess where to send reports.
 *        Of rua='s URIs, "mailto" and "https" are the two schemes 3
 *        names; others are skipped.
 *   4    The JSON schema: key order as in section 4's listing; the
 *        optional details (receiving-mx-hostname, receiving-mx-helo,
 *        additional-information, failure-reason-code), mx-host and
 *        policy-string are left out when empty.
 *   5.3  The file name and the Subject.
 * Every string is written as JSON wants it whatever the caller passes:
 * escaped, and octets that are not UTF-8 replaced by U+FFFD, so a
 * hostname or reason code taken from a peer cannot break the report.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/tlsrpt.h"
#include "util/str.h"

#define TLSRPT_TXT_VERSION "v=TLSRPTv1"
#define TLSRPT_NAME_LEN_MAX 32 /* ext-name, as in RFC 8461 */
#define TLSRPT_MAILTO "mailto:"
#define TLSRPT_HTTPS "https:"
#define TLSRPT_JSON_START 2048 /* the first allocation; it doubles */
#define TLSRPT_NUM_SIZE 24     /* a decimal uint64_t and a NUL */
#define TLSRPT_DATE_SIZE 24    /* "YYYY-MM-DDTHH:MM:SSZ" and a NUL */
#define TLSRPT_HEX_BASE 16
#define TLSRPT_HEX_DIGIT 10

/* Time: seconds a day; days in 400 Gregorian years; days from
 * 0000-03-01 to 1970-01-01; the first and last second written. */
#define TLSRPT_DAY 86400
#define TLSRPT_ERA_DAYS 146097
#define TLSRPT_EPOCH_SHIFT 719468
#define TLSRPT_TIME_MIN (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define TLSRPT_TIME_MAX 253402300799LL	 /* 9999-12-31T23:59:59Z */

static const char *const tlsrpt_result_types[] = {
    TLSRPT_STARTTLS_NOT_SUPPORTED, TLSRPT_CERTIFICATE_HOST_MISMATCH,
    TLSRPT_CERTIFICATE_EXPIRED,	   TLSRPT_CERTIFICATE_NOT_TRUSTED,
    TLSRPT_VALIDATION_FAILURE,	   TLSRPT_TLSA_INVALID,
    TLSRPT_DNSSEC_INVALID,	   TLSRPT_DANE_REQUIRED,
    TLSRPT_STS_POLICY_FETCH_ERROR, TLSRPT_STS_POLICY_INVALID,
    TLSRPT_STS_WEBPKI_INVALID,
};

bool
tlsrpt_result_type_is_known(const char *s)
{
	for (size_t k = 0;
	     k < sizeof tlsrpt_result_types / sizeof tlsrpt_result_types[0];
	     k++)
		if (strcmp(s, tlsrpt_result_types[k]) == 0)
			return true;
	return false;
}

static bool
tlsrpt_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool
tlsrpt_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
tlsrpt_is_alnum(char c)
{
	return tlsrpt_is_alpha(c) || (c >= '0' && c <= '9');
}

static int
tlsrpt_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + TLSRPT_HEX_DIGIT;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + TLSRPT_HEX_DIGIT;
	return -1;
}

static size_t
tlsrpt_skip_wsp(const char *s, size_t i, size_t len)
{
	while (i < len && tlsrpt_is_wsp(s[i]))
		i++;
	return i;
}

/* Length of the ext-name at s[i..len), 0 when none or too long. */
static size_t
tlsrpt_name_len(const char *s, size_t i, size_t len)
{
	size_t start = i;

	if (i >= len || !tlsrpt_is_alnum(s[i]))
		return 0;
	while (i < len && (tlsrpt_is_alnum(s[i]) || s[i] == '_' ||
			   s[i] == '-' || s[i] == '.'))
		i++;
	return i - start > TLSRPT_NAME_LEN_MAX ? 0 : i - start;
}

/* A URI character of RFC 3986 but for "," "!" ";" (RFC 8460 3), and
 * not "%" (checked by the caller). */
static bool
tlsrpt_is_uri_char(char c)
{
	return tlsrpt_is_alnum(c) ||
	       (c != '\0' && strchr("-._~:/?#[]@$&'()*+=", c) != NULL);
}

/* Length of an RFC 3986 scheme and its ":" at the start of s[0..len),
 * 0 when there is none. */
static size_t
tlsrpt_scheme_len(const char *s, size_t len)
{
	size_t i = 1;

	if (len == 0 || !tlsrpt_is_alpha(s[0]))
		return 0;
	while (i < len && (tlsrpt_is_alnum(s[i]) || s[i] == '+' ||
			   s[i] == '-' || s[i] == '.'))
		i++;
	return i < len && s[i] == ':' ? i + 1 : 0;
}

/* Where the rua= list's copies go. */
struct tlsrpt_rua_out {
	char (*rua)[TLSRPT_RUA_SIZE];
	size_t max, n;
	bool is_copying; /* false for a repeated rua= */
};

static void
tlsrpt_rua_keep(struct tlsrpt_rua_out *o, const char *s, size_t len)
{
	size_t scheme = tlsrpt_scheme_len(s, len);

	if (!o->is_copying || o->n >= o->max || len >= TLSRPT_RUA_SIZE)
		return;
	if (!str_eq_nocase(s, scheme, TLSRPT_MAILTO) &&
	    !str_eq_nocase(s, scheme, TLSRPT_HTTPS))
		return;
	(void)str_copy(o->rua[o->n], TLSRPT_RUA_SIZE, s, len);
	for (size_t k = 0; k < scheme; k++)
		if (o->rua[o->n][k] >= 'A' && o->rua[o->n][k] <= 'Z')
			o->rua[o->n][k] = (char)(o->rua[o->n][k] - 'A' + 'a');
	o->n++;
}

/*
 * The URIs of rua= from s[i..len): uri *(*WSP "," *WSP uri).  Returns the
 * offset after the last URI, or 0 when the list is malformed (0 is never
 * a valid answer: the version comes first).
 */
static size_t
tlsrpt_rua_list(const char *s, size_t i, size_t len, struct tlsrpt_rua_out *o)
{
	for (;;) {
		size_t start = i, j;

		while (i < len) {
			if (s[i] == '%') {
				if (i + 2 >= len || tlsrpt_hex(s[i + 1]) < 0 ||
				    tlsrpt_hex(s[i + 2]) < 0)
					return 0;
				i += 3;
			} else if (tlsrpt_is_uri_char(s[i])) {
				i++;
			} else {
				break;
			}
		}
		if (tlsrpt_scheme_len(s + start, i - start) == 0)
			return 0;
		tlsrpt_rua_keep(o, s + start, i - start);
		j = tlsrpt_skip_wsp(s, i, len);
		if (j >= len || s[j] != ',')
			return i;
		i = tlsrpt_skip_wsp(s, j + 1, len);
	}
}

/* Offset past "v=TLSRPTv1" *WSP ";", or 0 when s does not begin so. */
static size_t
tlsrpt_version_end(const char *s, size_t len)
{
	size_t vlen = sizeof(TLSRPT_TXT_VERSION) - 1;
	size_t i;

	if (s == NULL || len < vlen || memcmp(s, TLSRPT_TXT_VERSION, vlen) != 0)
		return 0;
	i = tlsrpt_skip_wsp(s, vlen, len);
	return i < len && s[i] == ';' ? i + 1 : 0;
}

/* The fields after the version's ";"; false when the record is not
 * valid. */
static bool
tlsrpt_fields(const char *s, size_t i, size_t len, struct tlsrpt_rua_out *o)
{
	bool has_rua = false;

	for (;;) {
		size_t name, value;

		i = tlsrpt_skip_wsp(s, i, len);
		if (i == len && has_rua)
			return true; /* after a trailing delimiter */
		name = tlsrpt_name_len(s, i, len);
		if (name == 0 || i + name >= len || s[i + name] != '=')
			return false;
		value = i + name + 1;
		if (name == 3 && memcmp(s + i, "rua", 3) == 0) {
			o->is_copying = !has_rua;
			has_rua = true;
			i = tlsrpt_rua_list(s, value, len, o);
			if (i == 0)
				return false;
		} else {
			for (i = value; i < len && s[i] > ' ' && s[i] <= '~' &&
					s[i] != ';' && s[i] != '=';
			     i++)
				;
			if (i == value)
				return false;
		}
		i = tlsrpt_skip_wsp(s, i, len);
		if (i == len)
			return has_rua;
		if (s[i] != ';')
			return false;
		i++;
	}
}

size_t
tlsrpt_txt_pick(const char *const *txt, const size_t *len, size_t n,
		char rua[][TLSRPT_RUA_SIZE], size_t max)
{
	struct tlsrpt_rua_out o = {rua, max, 0, true};
	size_t kept = 0, which = 0, start = 0;

	for (size_t k = 0; k < n; k++) {
		size_t end = tlsrpt_version_end(txt[k], len[k]);

		if (end != 0) {
			kept++;
			which = k;
			start = end;
		}
	}
	if (kept != 1 || !tlsrpt_fields(txt[which], start, len[which], &o))
		return 0;
	return o.n;
}

bool
tlsrpt_rua_mailto(const char *uri, char *addr, size_t size)
{
	size_t out = 0, at = 0;
	const char *p;

	if (size == 0)
		return false;
	addr[0] = '\0';
	if (strncasecmp(uri, TLSRPT_MAILTO, sizeof(TLSRPT_MAILTO) - 1) != 0)
		return false;
	for (p = uri + sizeof(TLSRPT_MAILTO) - 1; *p != '\0' && *p != '?';
	     p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '%') {
			int hi = tlsrpt_hex(p[1]), lo;

			lo = hi < 0 ? -1 : tlsrpt_hex(p[2]);
			if (lo < 0)
				goto fail;
			c = (unsigned char)(hi * TLSRPT_HEX_BASE + lo);
			p += 2;
		}
		if (c <= ' ' || c == 0x7f || c == ',' || out + 1 >= size)
			goto fail;
		if (c == '@')
			at = out + 1;
		addr[out++] = (char)c;
	}
	if (at < 2 || at >= out)
		goto fail;
	addr[out] = '\0';
	return true;
fail:
	addr[0] = '\0';
	return false;
}

bool
tlsrpt_rua_is_https(const char *uri)
{
	return strncasecmp(uri, TLSRPT_HTTPS, sizeof(TLSRPT_HTTPS) - 1) == 0;
}

/* The JSON under construction; is_failed once an allocation failed. */
struct tlsrpt_buf {
	char *p;
	size_t len, cap;
	bool is_failed;
};

static bool
tlsrpt_grow(struct tlsrpt_buf *b, size_t more)
{
	size_t need, cap;
	char *p;

	if (b->is_failed)
		return false;
	if (__builtin_add_overflow(b->len, more, &need) ||
	    __builtin_add_overflow(need, 1, &need)) {
		b->is_failed = true;
		return false;
	}
	if (need <= b->cap && b->p != NULL)
		return true;
	cap = b->cap > 0 ? b->cap : TLSRPT_JSON_START;
	while (cap < need && !__builtin_mul_overflow(cap, 2, &cap))
		;
	p = cap >= need ? realloc(b->p, cap) : NULL;
	if (p == NULL) {
		b->is_failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void
tlsrpt_put(struct tlsrpt_buf *b, const char *s, size_t n)
{
	if (!tlsrpt_grow(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
tlsrpt_lit(struct tlsrpt_buf *b, const char *s)
{
	tlsrpt_put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence of 2 to 4 octets at s (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF), else 0.
 * s is NUL-terminated, so a short sequence stops at the NUL. */
static size_t
tlsrpt_utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++)
		if (s[k] < 0x80 || s[k] > 0xbf)
			return 0;
	return n;
}

/* s (NULL: "") as a JSON string. */
static void
tlsrpt_str(struct tlsrpt_buf *b, const char *s)
{
	const unsigned char *u = (const unsigned char *)(s != NULL ? s : "");

	tlsrpt_lit(b, "\"");
	while (*u != '\0') {
		size_t run = 0, n;
		char esc[8];

		while (u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' &&
		       u[run] != '\\')
			run++;
		tlsrpt_put(b, (const char *)u, run);
		u += run;
		if (*u == '\0')
			break;
		if (*u == '"' || *u == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*u;
			tlsrpt_put(b, esc, 2);
			u++;
		} else if (*u < 0x20) {
			(void)snprintf(esc, sizeof esc, "\\u%04x", *u);
			tlsrpt_lit(b, esc);
			u++;
		} else if ((n = tlsrpt_utf8_len(u)) > 0) {
			tlsrpt_put(b, (const char *)u, n);
			u += n;
		} else {
			tlsrpt_lit(b, "\\ufffd");
			u++;
		}
	}
	tlsrpt_lit(b, "\"");
}

/* "," unless first, then "key":. */
static void
tlsrpt_key(struct tlsrpt_buf *b, const char *key, bool *is_first)
{
	if (!*is_first)
		tlsrpt_lit(b, ",");
	*is_first = false;
	tlsrpt_str(b, key);
	tlsrpt_lit(b, ":");
}

static void
tlsrpt_field_str(struct tlsrpt_buf *b, const char *key, const char *v,
		 bool *is_first)
{
	tlsrpt_key(b, key, is_first);
	tlsrpt_str(b, v);
}

/* Like tlsrpt_field_str, left out when v is NULL or "". */
static void
tlsrpt_field_opt(struct tlsrpt_buf *b, const char *key, const char *v,
		 bool *is_first)
{
	if (v != NULL && v[0] != '\0')
		tlsrpt_field_str(b, key, v, is_first);
}

static void
tlsrpt_field_u64(struct tlsrpt_buf *b, const char *key, uint64_t v,
		 bool *is_first)
{
	char num[TLSRPT_NUM_SIZE];

	(void)snprintf(num, sizeof num, "%" PRIu64, v);
	tlsrpt_key(b, key, is_first);
	tlsrpt_lit(b, num);
}

/* Floor division of t by d (d > 0). */
static int64_t
tlsrpt_floor_div(int64_t t, int64_t d)
{
	return t / d - (t % d < 0 ? 1 : 0);
}

/* t as RFC 3339 UTC, clamped to years 0000-9999.  The date comes from
 * the count of days since 0000-03-01 in 400-year eras (a year that
 * starts in March puts the leap day last). */
static void
tlsrpt_date(int64_t t, char out[TLSRPT_DATE_SIZE])
{
	int64_t days, secs, z, era, doe, yoe, doy, mp, y, m, d;

	if (t < TLSRPT_TIME_MIN)
		t = TLSRPT_TIME_MIN;
	if (t > TLSRPT_TIME_MAX)
		t = TLSRPT_TIME_MAX;
	days = tlsrpt_floor_div(t, TLSRPT_DAY);
	secs = t - days * TLSRPT_DAY;
	z = days + TLSRPT_EPOCH_SHIFT;
	era = tlsrpt_floor_div(z, TLSRPT_ERA_DAYS);
	doe = z - era * TLSRPT_ERA_DAYS; /* 0..146096 */
	yoe =
	    (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);		   /* 0..365 */
	mp = (5 * doy + 2) / 153; /* 0 = March */
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (m <= 2 ? 1 : 0);
	/* The clamp keeps each part in its width; the modulos say so to
	 * the compiler. */
	(void)snprintf(out, TLSRPT_DATE_SIZE, "%04u-%02u-%02uT%02u:%02u:%02uZ",
		       (unsigned)(y % 10000), (unsigned)(m % 100),
		       (unsigned)(d % 100), (unsigned)(secs / 3600 % 100),
		       (unsigned)(secs / 60 % 60), (unsigned)(secs % 60));
}

static void
tlsrpt_failure_json(struct tlsrpt_buf *b, const struct tlsrpt_failure *f)
{
	bool is_first = true;

	tlsrpt_lit(b, "{");
	tlsrpt_field_str(b, "result-type", f->result_type, &is_first);
	tlsrpt_field_opt(b, "sending-mta-ip", f->sending_mta_ip, &is_first);
	tlsrpt_field_opt(b, "receiving-mx-hostname", f->receiving_mx_hostname,
			 &is_first);
	tlsrpt_field_opt(b, "receiving-mx-helo", f->receiving_mx_helo,
			 &is_first);
	tlsrpt_field_opt(b, "receiving-ip", f->receiving_ip, &is_first);
	tlsrpt_field_u64(b, "failed-session-count", f->count, &is_first);
	tlsrpt_field_opt(b, "additional-information", f->additional_information,
			 &is_first);
	tlsrpt_field_opt(b, "failure-reason-code", f->failure_reason_code,
			 &is_first);
	tlsrpt_lit(b, "}");
}

static void
tlsrpt_policy_json(struct tlsrpt_buf *b, const struct tlsrpt_policy *p)
{
	bool is_first = true, is_inner = true;

	tlsrpt_lit(b, "{");
	tlsrpt_key(b, "policy", &is_first);
	tlsrpt_lit(b, "{");
	tlsrpt_field_str(b, "policy-type", p->policy_type, &is_inner);
	if (p->policy_strings != NULL && p->n_strings > 0) {
		tlsrpt_key(b, "policy-string", &is_inner);
		tlsrpt_lit(b, "[");
		for (size_t k = 0; k < p->n_strings; k++) {
			if (k > 0)
				tlsrpt_lit(b, ",");
			tlsrpt_str(b, p->policy_strings[k]);
		}
		tlsrpt_lit(b, "]");
	}
	tlsrpt_field_str(b, "policy-domain", p->policy_domain, &is_inner);
	tlsrpt_field_opt(b, "mx-host", p->mx_host, &is_inner);
	tlsrpt_lit(b, "}");
	tlsrpt_key(b, "summary", &is_first);
	is_inner = true;
	tlsrpt_lit(b, "{");
	tlsrpt_field_u64(b, "total-successful-session-count", p->n_success,
			 &is_inner);
	tlsrpt_field_u64(b, "total-failure-session-count", p->n_failure,
			 &is_inner);
	tlsrpt_lit(b, "}");
	if (p->failures != NULL && p->n_failures > 0) {
		tlsrpt_key(b, "failure-details", &is_first);
		tlsrpt_lit(b, "[");
		for (size_t k = 0; k < p->n_failures; k++) {
			if (k > 0)
				tlsrpt_lit(b, ",");
			tlsrpt_failure_json(b, &p->failures[k]);
		}
		tlsrpt_lit(b, "]");
	}
	tlsrpt_lit(b, "}");
}

char *
tlsrpt_json(const struct tlsrpt_report *r)
{
	struct tlsrpt_buf b = {NULL, 0, 0, false};
	char date[TLSRPT_DATE_SIZE];
	bool is_first = true, is_range = true;

	tlsrpt_lit(&b, "{");
	tlsrpt_field_str(&b, "organization-name", r->org_name, &is_first);
	tlsrpt_key(&b, "date-range", &is_first);
	tlsrpt_lit(&b, "{");
	tlsrpt_date(r->start, date);
	tlsrpt_field_str(&b, "start-datetime", date, &is_range);
	tlsrpt_date(r->end, date);
	tlsrpt_field_str(&b, "end-datetime", date, &is_range);
	tlsrpt_lit(&b, "}");
	tlsrpt_field_str(&b, "contact-info", r->contact_info, &is_first);
	tlsrpt_field_str(&b, "report-id", r->report_id, &is_first);
	tlsrpt_key(&b, "policies", &is_first);
	tlsrpt_lit(&b, "[");
	for (size_t k = 0; r->policies != NULL && k < r->n_policies; k++) {
		if (k > 0)
			tlsrpt_lit(&b, ",");
		tlsrpt_policy_json(&b, &r->policies[k]);
	}
	tlsrpt_lit(&b, "]}");
	if (b.is_failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

void
tlsrpt_day_before(int64_t now, int64_t *start, int64_t *end)
{
	int64_t day;

	if (now < TLSRPT_TIME_MIN + TLSRPT_DAY)
		now = TLSRPT_TIME_MIN + TLSRPT_DAY;
	if (now > TLSRPT_TIME_MAX)
		now = TLSRPT_TIME_MAX;
	day = tlsrpt_floor_div(now, TLSRPT_DAY);
	*start = (day - 1) * TLSRPT_DAY;
	*end = day * TLSRPT_DAY - 1;
}

/* A domain for the file name: letters, digits, "-", "_", "."; no "!"
 * or "/" can slip into it. */
static bool
tlsrpt_name_ok(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!tlsrpt_is_alnum(*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

static bool
tlsrpt_done(char *buf, size_t size, int n)
{
	if (n < 0 || (size_t)n >= size) {
		buf[0] = '\0';
		return false;
	}
	return true;
}

bool
tlsrpt_filename(char *buf, size_t size, const char *sender,
		const char *policy_domain, int64_t begin, int64_t end,
		const char *unique_id, bool is_gzip)
{
	bool has_id = unique_id != NULL && unique_id[0] != '\0';

	if (size == 0)
		return false;
	buf[0] = '\0';
	if (!tlsrpt_name_ok(sender) || !tlsrpt_name_ok(policy_domain) ||
	    begin < 0 || end < 0)
		return false;
	for (const char *p = has_id ? unique_id : ""; *p != '\0'; p++)
		if (!tlsrpt_is_alnum(*p))
			return false;
	return tlsrpt_done(
	    buf, size,
	    snprintf(buf, size, "%s!%s!%" PRId64 "!%" PRId64 "%s%s.json%s",
		     sender, policy_domain, begin, end, has_id ? "!" : "",
		     has_id ? unique_id : "", is_gzip ? ".gz" : ""));
}

/* Non-empty, and no control character, space or DEL. */
static bool
tlsrpt_word_ok(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

bool
tlsrpt_subject(char *buf, size_t size, const char *policy_domain,
	       const char *submitter, const char *report_id)
{
	if (size == 0)
		return false;
	buf[0] = '\0';
	if (!tlsrpt_word_ok(policy_domain) || !tlsrpt_word_ok(submitter) ||
	    !tlsrpt_word_ok(report_id))
		return false;
	return tlsrpt_done(
	    buf, size,
	    snprintf(buf, size,
		     "Report Domain: %s Submitter: %s Report-ID: <%s>",
		     policy_domain, submitter, report_id));
}

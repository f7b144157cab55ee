/*
 * tlsrpt.c - RFC 8460's record and report JSON (tlsrpt.h).
 *
 * Called by policy/tlspolicy.c (`postern tls-report`, the daily
 * reports).  The record comes from DNS: every length is checked.  The
 * JSON is written into a growing buffer (open_memstream); every string
 * from outside (host names, reasons) is escaped.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/tlsrpt.h"
#include "util/str.h"

#define TLSRPT_PREFIX "v=TLSRPTv1"

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* The rua URIs of one record, or 0 when it is malformed. */
static size_t
txt_rua(const char *s, size_t len, char rua[][512], size_t max)
{
	size_t i = sizeof TLSRPT_PREFIX - 1, n = 0;
	bool has_rua = false;

	while (i < len) {
		size_t name;
		while (i < len && (is_wsp(s[i]) || s[i] == ';'))
			i++;
		if (i == len)
			break;
		name = i;
		while (i < len && s[i] != '=' && s[i] != ';')
			i++;
		if (i == len || s[i] != '=')
			return 0;
		if (i - name == 3 && memcmp(s + name, "rua", 3) == 0 &&
		    !has_rua) {
			has_rua = true;
			i++;
			while (i < len && s[i] != ';') {
				size_t u;
				while (i < len && (is_wsp(s[i]) || s[i] == ','))
					i++;
				u = i;
				while (i < len && s[i] != ',' && s[i] != ';' &&
				       !is_wsp(s[i]))
					i++;
				if (i > u && n < max &&
				    (strncasecmp(s + u, "mailto:", 7) == 0 ||
				     strncasecmp(s + u, "https:", 6) == 0) &&
				    i - u < sizeof rua[0])
					str_copy(rua[n++], sizeof rua[0], s + u,
						 i - u);
			}
		} else {
			while (i < len && s[i] != ';')
				i++;
		}
	}
	return n;
}

size_t
tlsrpt_txt_pick(const char *const *txt, const size_t *len, size_t n,
		char rua[][512], size_t max)
{
	size_t found = 0, at = 0, p = sizeof TLSRPT_PREFIX - 1;

	for (size_t i = 0; i < n; i++) {
		size_t l = len ? len[i] : strlen(txt[i]);
		/* the version, then the end, a blank or a ';' */
		if (l >= p && memcmp(txt[i], TLSRPT_PREFIX, p) == 0 &&
		    (l == p || is_wsp(txt[i][p]) || txt[i][p] == ';')) {
			found++;
			at = i;
		}
	}
	if (found != 1)
		return 0;
	return txt_rua(txt[at], len ? len[at] : strlen(txt[at]), rua, max);
}

static void
json_str(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(fp, "\\u%04x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

static void
json_time(FILE *fp, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[32];

	gmtime_r(&tt, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_str(fp, buf);
}

/* "key": "value", only when value is not empty. */
static void
json_opt(FILE *fp, const char *key, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return;
	fprintf(fp, ",\"%s\":", key);
	json_str(fp, value);
}

static void
json_policy(FILE *fp, const struct tlsrpt_policy *p)
{
	fputs("{\"policy\":{\"policy-type\":", fp);
	json_str(fp, p->policy_type);
	if (p->n_strings > 0) {
		fputs(",\"policy-string\":[", fp);
		for (size_t i = 0; i < p->n_strings; i++) {
			if (i)
				fputc(',', fp);
			json_str(fp, p->policy_strings[i]);
		}
		fputc(']', fp);
	}
	fputs(",\"policy-domain\":", fp);
	json_str(fp, p->policy_domain);
	json_opt(fp, "mx-host", p->mx_host);
	fprintf(fp,
		"},\"summary\":{\"total-successful-session-count\":%llu,"
		"\"total-failure-session-count\":%llu}",
		(unsigned long long)p->n_success,
		(unsigned long long)p->n_failure);
	if (p->n_failures > 0) {
		fputs(",\"failure-details\":[", fp);
		for (size_t i = 0; i < p->n_failures; i++) {
			const struct tlsrpt_failure *f = &p->failures[i];
			fputs(i ? ",{\"result-type\":" : "{\"result-type\":",
			      fp);
			json_str(fp, f->result_type);
			json_opt(fp, "sending-mta-ip", f->sending_mta_ip);
			json_opt(fp, "receiving-mx-hostname",
				 f->receiving_mx_hostname);
			json_opt(fp, "receiving-ip", f->receiving_ip);
			fprintf(fp, ",\"failed-session-count\":%llu",
				(unsigned long long)f->count);
			json_opt(fp, "failure-reason-code",
				 f->failure_reason_code);
			fputc('}', fp);
		}
		fputc(']', fp);
	}
	fputc('}', fp);
}

char *
tlsrpt_json(const struct tlsrpt_report *r)
{
	char *out = NULL;
	size_t size = 0;
	FILE *fp = open_memstream(&out, &size);

	if (fp == NULL)
		return NULL;
	fputs("{\"organization-name\":", fp);
	json_str(fp, r->org_name ? r->org_name : "");
	fputs(",\"date-range\":{\"start-datetime\":", fp);
	json_time(fp, r->start);
	fputs(",\"end-datetime\":", fp);
	json_time(fp, r->end);
	fputs("},\"contact-info\":", fp);
	json_str(fp, r->contact_info ? r->contact_info : "");
	fputs(",\"report-id\":", fp);
	json_str(fp, r->report_id);
	fputs(",\"policies\":[", fp);
	for (size_t i = 0; i < r->n_policies; i++) {
		if (i)
			fputc(',', fp);
		json_policy(fp, &r->policies[i]);
	}
	fputs("]}", fp);
	if (fclose(fp) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/*
 * milter_send.c - the packets postern sends a milter: option
 * negotiation, then one SMTP transaction as milter protocol version 6
 * frames it (CONNECT with macros j, {daemon_name} and v, HELO, MAIL with
 * i and {mail_addr}, one RCPT per recipient with {rcpt_addr}, DATA, one
 * HEADER per field, EOH, BODY in chunks of at most MILTER_CHUNK_MAX
 * octets, BODYEOB).
 *
 * milter.c calls milter_send_optneg() once connected and milter_emit()
 * whenever the filter may be sent the next step; it skips the steps the
 * filter declined in its OPTNEG answer and says whether a reply is due
 * (the no-reply flags).  Formatting into the connection's evbuffer only:
 * no socket, no timer (a header field is formatted in a buffer freed at
 * once; the body is added by reference).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/milter_int.h"
#include "proto/limits.h"
#include "util/str.h"

/* Per step: the flag that skips it and the one that spares its reply. */
static const struct {
	uint32_t skip, no_reply;
} step_flags[] = {
    [STEP_CONNECT] = {MILTER_P_NOCONNECT, MILTER_P_NR_CONN},
    [STEP_HELO] = {MILTER_P_NOHELO, MILTER_P_NR_HELO},
    [STEP_MAIL] = {MILTER_P_NOMAIL, MILTER_P_NR_MAIL},
    [STEP_RCPT] = {MILTER_P_NORCPT, MILTER_P_NR_RCPT},
    [STEP_DATA] = {MILTER_P_NODATA, MILTER_P_NR_DATA},
    [STEP_HEADER] = {MILTER_P_NOHDRS, MILTER_P_NR_HDR},
    [STEP_EOH] = {MILTER_P_NOEOH, MILTER_P_NR_EOH},
    [STEP_BODY] = {MILTER_P_NOBODY, MILTER_P_NR_BODY},
};

static int
pkt_begin(struct evbuffer *out, char cmd, size_t payload_len)
{
	unsigned char h[MILTER_LEN_BYTES + 1];
	uint32_t n = (uint32_t)payload_len + 1;

	if (payload_len >= (size_t)MILTER_PACKET_MAX * 2)
		return -1;
	h[0] = (unsigned char)(n >> 24);
	h[1] = (unsigned char)(n >> 16);
	h[2] = (unsigned char)(n >> 8);
	h[3] = (unsigned char)n;
	h[4] = (unsigned char)cmd;
	return evbuffer_add(out, h, sizeof h);
}

static int
add_u32(struct evbuffer *out, uint32_t v)
{
	unsigned char b[MILTER_LEN_BYTES] = {
	    (unsigned char)(v >> 24), (unsigned char)(v >> 16),
	    (unsigned char)(v >> 8), (unsigned char)v};

	return evbuffer_add(out, b, sizeof b);
}

/* A packet whose payload is the strings given, each with its NUL. */
static int
pkt_strings(struct evbuffer *out, char cmd, const char *const *s, size_t n)
{
	size_t len = 0;
	int rc;

	for (size_t i = 0; i < n; i++)
		len += strlen(s[i]) + 1;
	rc = pkt_begin(out, cmd, len);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = evbuffer_add(out, s[i], strlen(s[i]) + 1);
	return rc;
}

/* SMFIC_MACRO for stage: the stage's command, then name/value pairs. */
static int
pkt_macros(struct evbuffer *out, char stage, const char *const *kv, size_t n)
{
	size_t len = 1;
	int rc;

	for (size_t i = 0; i < n; i++)
		len += strlen(kv[i]) + 1;
	rc = pkt_begin(out, MILTER_C_MACRO, len);
	if (rc == 0)
		rc = evbuffer_add(out, &stage, 1);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = evbuffer_add(out, kv[i], strlen(kv[i]) + 1);
	return rc;
}

int
milter_send_optneg(struct evbuffer *out)
{
	if (pkt_begin(out, MILTER_C_OPTNEG,
		      (size_t)MILTER_OPTNEG_WORDS * MILTER_LEN_BYTES) != 0 ||
	    add_u32(out, MILTER_VERSION) != 0 ||
	    add_u32(out, MILTER_ACTIONS) != 0)
		return -1;
	return add_u32(out, MILTER_PROTOCOL);
}

/* SMFIC_CONNECT: name, family '4' '6' or 'U', port, address. */
static int
send_connect(struct milter_job *j, struct evbuffer *out)
{
	const char *me = j->m->cfg->server_hostname;
	const char *kv[] = {
	    "j", me ? me : "",	    "{daemon_name}", MILTER_DAEMON_NAME,
	    "v", MILTER_DAEMON_NAME};
	unsigned char a[sizeof(struct in6_addr)];
	char name[SMTP_DOMAIN_MAX + 3];
	const char *host = j->client_name;
	char family = 'U';
	size_t len;
	uint16_t port = 0;

	if (inet_pton(AF_INET, j->client_ip, a) == 1)
		family = '4';
	else if (inet_pton(AF_INET6, j->client_ip, a) == 1)
		family = '6';
	if (host[0] == '\0') {
		snprintf(name, sizeof name, "[%s]", j->client_ip);
		host = name;
	}
	if (pkt_macros(out, MILTER_C_CONNECT, kv, sizeof kv / sizeof kv[0]))
		return -1;
	len = strlen(host) + 2;
	if (family != 'U')
		len += sizeof port + strlen(j->client_ip) + 1;
	if (pkt_begin(out, MILTER_C_CONNECT, len) != 0 ||
	    evbuffer_add(out, host, strlen(host) + 1) != 0 ||
	    evbuffer_add(out, &family, 1) != 0)
		return -1;
	if (family == 'U')
		return 0;
	if (evbuffer_add(out, &port, sizeof port) != 0)
		return -1;
	return evbuffer_add(out, j->client_ip, strlen(j->client_ip) + 1);
}

/* "<addr>" into buf for MAIL and RCPT. */
static const char *
bracket(const char *addr, char *buf, size_t size)
{
	snprintf(buf, size, "<%s>", addr);
	return buf;
}

static int
send_mail(struct milter_job *j, struct evbuffer *out)
{
	char path[SMTP_PATH_MAX + 3];
	const char *kv[] = {"i", j->qid, "{mail_addr}", j->sender};
	const char *arg = bracket(j->sender, path, sizeof path);

	if (pkt_macros(out, MILTER_C_MAIL, kv, sizeof kv / sizeof kv[0]))
		return -1;
	return pkt_strings(out, MILTER_C_MAIL, &arg, 1);
}

static int
send_rcpt(struct milter_job *j, struct evbuffer *out)
{
	char path[SMTP_PATH_MAX + 3];
	const char *rcpt = j->rcpts[j->idx];
	const char *kv[] = {"{rcpt_addr}", rcpt};
	const char *arg = bracket(rcpt, path, sizeof path);

	if (pkt_macros(out, MILTER_C_RCPT, kv, sizeof kv / sizeof kv[0]))
		return -1;
	return pkt_strings(out, MILTER_C_RCPT, &arg, 1);
}

static int
send_header(struct milter_job *j, struct evbuffer *out)
{
	const struct milter_field *f = &j->hdrs.v[j->idx];
	size_t size = f->len + 2, n;
	char *buf = malloc(size);
	int rc = -1;

	if (buf != NULL && (n = milter_field_format(f, buf, size)) > 0 &&
	    pkt_begin(out, MILTER_C_HEADER, n) == 0)
		rc = evbuffer_add(out, buf, n);
	free(buf);
	return rc;
}

/* One body chunk, by reference: j->data outlives the bufferevent. */
static int
send_body(struct milter_job *j, struct evbuffer *out)
{
	size_t left = j->data_len - j->idx;
	size_t n = left < MILTER_CHUNK_MAX ? left : MILTER_CHUNK_MAX;

	if (pkt_begin(out, MILTER_C_BODY, n) != 0 ||
	    evbuffer_add_reference(out, j->data + j->idx, n, NULL, NULL) != 0)
		return -1;
	j->idx += n;
	return 0;
}

/* The step after j->step, with j->idx at its start. */
static void
step_next(struct milter_job *j)
{
	j->step++;
	j->idx = j->step == STEP_BODY ? j->hdrs.body_start : 0;
}

/* True when j->step has nothing (more) to send. */
static bool
step_is_empty(const struct milter_job *j)
{
	switch (j->step) {
	case STEP_RCPT:
		return j->idx >= j->n_rcpts;
	case STEP_HEADER:
		return j->idx >= j->hdrs.n;
	case STEP_BODY:
		return j->idx >= j->data_len;
	default:
		return false;
	}
}

/* Sends the packet of j->step and moves on; *is_reply_out: one is due. */
int
milter_emit(struct milter_job *j, struct evbuffer *out, bool *is_reply_out)
{
	enum milter_step s = j->step;
	int rc = 0;

	*is_reply_out = false;
	if (s < STEP_EOB &&
	    (step_is_empty(j) || (j->protocol & step_flags[s].skip))) {
		step_next(j);
		return 0;
	}
	switch (s) {
	case STEP_CONNECT:
		rc = send_connect(j, out);
		break;
	case STEP_HELO:
		rc = pkt_strings(out, MILTER_C_HELO,
				 (const char *const *)&j->helo, 1);
		break;
	case STEP_MAIL:
		rc = send_mail(j, out);
		break;
	case STEP_RCPT:
		rc = send_rcpt(j, out);
		j->idx++;
		break;
	case STEP_DATA:
		rc = pkt_begin(out, MILTER_C_DATA, 0);
		break;
	case STEP_HEADER:
		rc = send_header(j, out);
		j->idx++;
		break;
	case STEP_EOH:
		rc = pkt_begin(out, MILTER_C_EOH, 0);
		break;
	case STEP_BODY:
		rc = send_body(j, out);
		break;
	case STEP_EOB:
		rc = pkt_begin(out, MILTER_C_BODYEOB, 0);
		break;
	default:
		return -1;
	}
	*is_reply_out =
	    s == STEP_EOB || !(j->protocol & step_flags[s].no_reply);
	j->awaited = s;
	if (s == STEP_EOB ||
	    (s != STEP_RCPT && s != STEP_HEADER && s != STEP_BODY) ||
	    step_is_empty(j))
		step_next(j);
	return rc;
}

/*
 * msg.c - the in-memory message and its envelope encoding.
 *
 * The envelope is text so a spool segment can be read with `strings`:
 *
 *	v 1
 *	arrival 1764069000
 *	flags 0
 *	sender alice@example.test
 *	rcpt 1<TAB>bob@example.test<TAB>bob+x@example.test
 *
 * flags is the enum msg_flag bits as a decimal number: a new bit
 * (MSG_F_REQUIRETLS, MSG_F_TLS_OPTIONAL) needs no new line, a spool
 * written before it existed reads back with the bit clear, and every bit
 * set survives a restart.
 *
 * Addresses never hold a tab or newline (RFC 5321 4.1.2 qtextSMTP), so
 * they need no escaping.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool/msg.h"
#include "util/str.h"

#define ENVELOPE_LINE_MAX 1024
/* A rcpt line but its strings: notify is sized for any unsigned, not only
 * the enum msg_notify bits, since msg_envelope_parse takes any. */
#define ENVELOPE_RCPT_FIXED sizeof "rcpt N\t\t\t4294967295\t\n"
_Static_assert(UINT_MAX == 4294967295u, "ENVELOPE_RCPT_FIXED: 10 digits");

struct msg *
msg_new(void)
{
	struct msg *m = calloc(1, sizeof *m);

	if (m != NULL && (m->sender = strdup("")) == NULL) {
		free(m);
		return NULL;
	}
	if (m != NULL)
		m->refs = 1;
	return m;
}

struct msg *
msg_ref(struct msg *m)
{
	__atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
	return m;
}

void
msg_free(struct msg *m)
{
	if (m == NULL || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (size_t i = 0; i < m->n_rcpts; i++) {
		free(m->rcpts[i].mailbox);
		free(m->rcpts[i].orig);
		free(m->rcpts[i].orcpt);
	}
	free(m->envid);
	free(m->rcpts);
	free(m->sender);
	free(m->data);
	free(m);
}

void
msg_set_qid(struct msg *m, uint64_t qid)
{
	m->qid = qid;
	snprintf(m->qid_str, sizeof m->qid_str, "%016" PRIX64, qid);
}

int
msg_add_rcpt(struct msg *m, const char *mailbox, const char *orig,
	     enum msg_route route)
{
	struct msg_rcpt *v = realloc(m->rcpts, (m->n_rcpts + 1) * sizeof *v);
	struct msg_rcpt *r;

	if (v == NULL)
		return -1;
	m->rcpts = v;
	r = &v[m->n_rcpts];
	r->mailbox = strdup(mailbox);
	r->orig = strdup(orig);
	r->route = route;
	r->is_done = false;
	r->notify = 0;
	r->orcpt = NULL;
	if (r->mailbox == NULL || r->orig == NULL) {
		free(r->mailbox);
		free(r->orig);
		return -1;
	}
	m->n_rcpts++;
	return 0;
}

/* Appends s[0..n) at *o (the caller sized buf). */
static void
put(char *buf, size_t *o, const char *s, size_t n)
{
	memcpy(buf + *o, s, n);
	*o += n;
}

static void
put_str(char *buf, size_t *o, const char *s)
{
	put(buf, o, s, strlen(s));
}

int
msg_rcpt_set_dsn(struct msg *m, size_t idx, unsigned notify,
		 const char *orcpt)
{
	struct msg_rcpt *r = &m->rcpts[idx];

	r->notify = notify;
	free(r->orcpt);
	r->orcpt = orcpt ? strdup(orcpt) : NULL;
	return orcpt && r->orcpt == NULL ? -1 : 0;
}

/*
 * The DSN lines and fields (RFC 3461) are written only when the client
 * asked for a DSN, so the common envelope stays as short as before:
 *	ret 2			(MSG_RET_HDRS)
 *	envid QQ314159
 *	rcpt 1<TAB>mailbox<TAB>orig<TAB>notify<TAB>orcpt
 * Formatted by hand: open_memstream and fprintf cost eight times more
 * (callgrind), and this runs for every message on the committer.
 */
char *
msg_envelope_format(const struct msg *m, size_t *len_out)
{
	char head[ENVELOPE_LINE_MAX], dsn[ENVELOPE_LINE_MAX];
	int h = snprintf(head, sizeof head, "v 1\narrival %" PRId64
			 "\nflags %u\nsender ", m->arrival, m->flags);
	int d = 0;
	size_t size, o = 0;
	char *buf;

	if (m->ret != MSG_RET_NONE)
		d = snprintf(dsn, sizeof dsn, "ret %d\n", (int)m->ret);
	if (m->envid != NULL && d >= 0 && (size_t)d < sizeof dsn)
		d += snprintf(dsn + d, sizeof dsn - (size_t)d, "envid %s\n",
			      m->envid);
	if (h < 0 || (size_t)h >= sizeof head || d < 0 ||
	    (size_t)d >= sizeof dsn)
		return NULL;
	size = (size_t)h + strlen(m->sender) + 1 + (size_t)d;
	for (size_t i = 0; i < m->n_rcpts; i++)
		size += ENVELOPE_RCPT_FIXED +
			strlen(m->rcpts[i].mailbox) + strlen(m->rcpts[i].orig) +
			(m->rcpts[i].orcpt ? strlen(m->rcpts[i].orcpt) : 0);
	if ((buf = malloc(size)) == NULL)
		return NULL;
	put(buf, &o, head, (size_t)h);
	put_str(buf, &o, m->sender);
	put(buf, &o, "\n", 1);
	put(buf, &o, dsn, (size_t)d);
	for (size_t i = 0; i < m->n_rcpts; i++) {
		const struct msg_rcpt *r = &m->rcpts[i];
		char route = r->route == MSG_ROUTE_REMOTE ? '2' : '1';
		put(buf, &o, "rcpt ", 5);
		put(buf, &o, &route, 1);
		put(buf, &o, "\t", 1);
		put_str(buf, &o, r->mailbox);
		put(buf, &o, "\t", 1);
		put_str(buf, &o, r->orig);
		if (r->notify || r->orcpt) {
			char n[16];
			int k = snprintf(n, sizeof n, "\t%u\t", r->notify);
			put(buf, &o, n, (size_t)k);
			put_str(buf, &o, r->orcpt ? r->orcpt : "");
		}
		put(buf, &o, "\n", 1);
	}
	*len_out = o;
	return buf;
}

/* "route TAB mailbox TAB orig [TAB notify TAB orcpt]"; -1 when malformed. */
static int
rcpt_line(struct msg *m, char *sp)
{
	char *mailbox = strchr(sp, '\t'), *orig, *notify, *orcpt = NULL;
	uint64_t u, n = 0;

	orig = mailbox ? strchr(mailbox + 1, '\t') : NULL;
	if (orig == NULL)
		return -1;
	*mailbox++ = '\0';
	*orig++ = '\0';
	if ((notify = strchr(orig, '\t')) != NULL) {
		*notify++ = '\0';
		if ((orcpt = strchr(notify, '\t')) == NULL ||
		    (*orcpt++ = '\0', !str_to_u64(notify, &n)) ||
		    n > UINT_MAX)
			return -1;
	}
	if (!str_to_u64(sp, &u) ||
	    (u != MSG_ROUTE_LOCAL && u != MSG_ROUTE_REMOTE))
		return -1;
	if (msg_add_rcpt(m, mailbox, orig, (enum msg_route)u) != 0)
		return -1;
	if (notify == NULL)
		return 0;
	return msg_rcpt_set_dsn(m, m->n_rcpts - 1, (unsigned)n,
				orcpt[0] ? orcpt : NULL);
}

/* Handles one envelope line; -1 when malformed. */
static int
envelope_line(struct msg *m, char *line)
{
	char *sp = strchr(line, ' ');
	uint64_t u;

	if (sp == NULL)
		return -1;
	*sp++ = '\0';
	if (strcmp(line, "v") == 0)
		return strcmp(sp, "1") == 0 ? 0 : -1;
	if (strcmp(line, "arrival") == 0) {
		if (!str_to_u64(sp, &u) || u > INT64_MAX)
			return -1;
		m->arrival = (int64_t)u;
		return 0;
	}
	if (strcmp(line, "flags") == 0) {
		if (!str_to_u64(sp, &u) || u > UINT_MAX)
			return -1;
		m->flags = (unsigned)u;
		return 0;
	}
	if (strcmp(line, "sender") == 0) {
		free(m->sender);
		m->sender = strdup(sp);
		return m->sender ? 0 : -1;
	}
	if (strcmp(line, "ret") == 0) {
		if (!str_to_u64(sp, &u) || u > MSG_RET_HDRS)
			return -1;
		m->ret = (enum msg_ret)u;
		return 0;
	}
	if (strcmp(line, "envid") == 0) {
		free(m->envid);
		m->envid = strdup(sp);
		return m->envid ? 0 : -1;
	}
	if (strcmp(line, "rcpt") != 0)
		return -1;
	return rcpt_line(m, sp);
}

int
msg_envelope_parse(struct msg *m, const char *buf, size_t len)
{
	char line[ENVELOPE_LINE_MAX];
	size_t start = 0;

	while (start < len) {
		const char *nl = memchr(buf + start, '\n', len - start);
		size_t n;
		if (nl == NULL)
			return -1;
		n = (size_t)(nl - (buf + start));
		if (n >= sizeof line)
			return -1;
		memcpy(line, buf + start, n);
		line[n] = '\0';
		if (envelope_line(m, line) != 0)
			return -1;
		start += n + 1;
	}
	return m->n_rcpts > 0 ? 0 : -1;
}

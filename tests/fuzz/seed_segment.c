/*
 * seed_segment.c - writes the seeds of fuzz_segment into DIR (`make
 * fuzz-seeds`): real segments made by the spool's own record and envelope
 * code (mode 0 and 1), and descriptions of messages with each kind of
 * damage (mode 2), in the input format fuzz_segment.c's header gives.
 * Run it again after a change of either format.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool/msg.h"
#include "spool/record.h"

#define SEED_MAX 65536

enum { MODE_RAW, MODE_FIXED, MODE_PROMISE };
enum { TRUNCATE, FLIP_BURST, FLIP_ALL, GARBAGE, ZERO };

struct seed {
	unsigned char b[SEED_MAX];
	size_t n;
};

static void
put(struct seed *s, const void *p, size_t n)
{
	if (s->n + n > sizeof s->b) {
		fprintf(stderr, "seed_segment: seed too big\n");
		exit(1);
	}
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void
put_le(struct seed *s, unsigned long long v, size_t octets)
{
	for (size_t i = 0; i < octets; i++) {
		unsigned char c = (unsigned char)(v >> (8 * i));
		put(s, &c, 1);
	}
}

static void
put_str(struct seed *s, const char *str)
{
	put_le(s, strlen(str), 2);
	put(s, str, strlen(str));
}

static void
save(const char *dir, const char *name, const struct seed *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(s->b, 1, s->n, f) != s->n || fclose(f) != 0) {
		fprintf(stderr, "seed_segment: %s: %s\n", path,
			strerror(errno));
		exit(1);
	}
}

/* The sample messages: a plain one, one with DSN, one with no text. */
static struct msg *
sample(int which)
{
	static const char *const texts[] = {
		"Received: from client.test\r\nSubject: hello\r\n\r\nbody\r\n",
		"Subject: dsn\r\n\r\n..stuffed\r\n",
		"",
	};
	struct msg *m = msg_new();

	msg_set_qid(m, 0x19A0000000000001ull + (unsigned)which);
	m->arrival = 1764069000 + which;
	m->flags = (unsigned)which;
	free(m->sender);
	m->sender = strdup(which == 2 ? "" : "alice@example.test");
	msg_add_rcpt(m, "bob@example.test", "bob+x@example.test",
		     MSG_ROUTE_LOCAL);
	if (which == 1) {
		m->ret = MSG_RET_HDRS;
		m->envid = strdup("QQ314159");
		msg_add_rcpt(m, "carol@elsewhere.example",
			     "carol@elsewhere.example", MSG_ROUTE_REMOTE);
		msg_rcpt_set_dsn(m, 1, MSG_NOTIFY_FAILURE | MSG_NOTIFY_DELAY,
				 "rfc822;carol@elsewhere.example");
	}
	m->data_len = strlen(texts[which]);
	m->data = strdup(texts[which]);
	return m;
}

/* Appends m's record as the committer writes it. */
static void
put_record(struct seed *s, const struct msg *m)
{
	struct spool_rec_hdr h;
	size_t env_len;
	char *env = msg_envelope_format(m, &env_len);

	spool_rec_hdr_fill(&h, m->qid, env, env_len, m->data, m->data_len);
	put(s, &h, sizeof h);
	put(s, env, env_len);
	put(s, m->data, m->data_len);
	free(env);
}

/* Mode 1: [u16 env_len][u16 data_len][u8 qid] envelope text. */
static void
put_fixed(struct seed *s, const struct msg *m)
{
	size_t env_len;
	char *env = msg_envelope_format(m, &env_len);

	put_le(s, env_len, 2);
	put_le(s, m->data_len, 2);
	put_le(s, m->qid & 0xff, 1);
	put(s, env, env_len);
	put(s, m->data, m->data_len);
	free(env);
}

/* Mode 2: a message as fuzz_segment.c's take_msg reads it. */
static void
put_desc(struct seed *s, const struct msg *m)
{
	put_le(s, m->qid, 8);
	put_le(s, (unsigned long long)m->arrival, 8);
	put_le(s, m->flags, 4);
	put_le(s, (unsigned)m->ret | (m->envid ? 4u : 0u), 1);
	put_str(s, m->sender);
	if (m->envid)
		put_str(s, m->envid);
	put_le(s, m->n_rcpts - 1, 1);
	for (size_t i = 0; i < m->n_rcpts; i++) {
		const struct msg_rcpt *r = &m->rcpts[i];
		put_le(s, (r->route == MSG_ROUTE_REMOTE ? 1u : 0u) |
				  (r->orcpt ? 2u : 0u) | (r->notify ? 4u : 0u),
		       1);
		put_str(s, r->mailbox);
		put_str(s, r->orig);
		if (r->orcpt)
			put_str(s, r->orcpt);
		if (r->notify)
			put_le(s, r->notify, 4);
	}
	put_le(s, m->data_len, 2);
	put(s, m->data, m->data_len);
}

int
main(int argc, char **argv)
{
	static const char *const damages[] = {"truncate", "flip_burst",
					      "flip_all", "garbage", "zero"};
	static const unsigned points[] = {150, 40, 300, 0, 200};
	struct msg *m[3];
	struct seed s;

	if (argc != 2) {
		fprintf(stderr, "usage: seed_segment DIR\n");
		return 2;
	}
	for (int i = 0; i < 3; i++)
		m[i] = sample(i);

	s.n = 0;
	put_le(&s, MODE_RAW, 1);
	put_record(&s, m[0]);
	save(argv[1], "raw_one", &s);
	put_record(&s, m[1]);
	put_record(&s, m[2]);
	save(argv[1], "raw_three", &s);
	put_le(&s, 0, 8);
	put_le(&s, 0, 8);
	save(argv[1], "raw_zero_tail", &s);
	s.n -= 16 + 10;
	save(argv[1], "raw_torn", &s);

	s.n = 0;
	put_le(&s, MODE_FIXED, 1);
	for (int i = 0; i < 3; i++)
		put_fixed(&s, m[i]);
	save(argv[1], "fixed_three", &s);

	for (int d = 0; d < 5; d++) {
		char name[64];
		s.n = 0;
		put_le(&s, MODE_PROMISE, 1);
		put_le(&s, (unsigned)d, 1);
		put_le(&s, points[d], 4);
		put_le(&s, 7, 1);
		if (d == GARBAGE)
			put_str(&s, "PSM1 not a record");
		for (int i = 0; i < 3; i++)
			put_desc(&s, m[i]);
		snprintf(name, sizeof name, "promise_%s", damages[d]);
		save(argv[1], name, &s);
	}
	for (int i = 0; i < 3; i++)
		msg_free(m[i]);
	return 0;
}

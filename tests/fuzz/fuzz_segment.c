/*
 * fuzz_segment.c - libFuzzer target for the spool segment reader that
 * recovery trusts (src/spool/record.c) and the envelope encoding inside
 * each record (src/spool/msg.c).
 *
 * Byte 0 picks the mode (% 3):
 *
 *   0 RAW      the rest is a segment's bytes, as recovery would mmap it.
 *   1 FIXED    the rest is records given as [u16 env_len][u16 data_len]
 *              [u8 qid] then the envelope and text octets, each put behind
 *              a header with correct CRCs (so the envelope parser sees
 *              fuzzed bytes), then whatever is left as a raw tail.
 *   2 PROMISE  bytes 1-6: damage kind, u32 position, PRNG seed; then
 *              messages (see take_msg) with envelopes and texts within the
 *              protocol's limits.  They are written as the committer
 *              writes them (msg_envelope_format, spool_rec_hdr_fill), the
 *              segment is damaged - truncated, octets flipped (a burst of
 *              at most 4, or all) from a point on, garbage appended, or
 *              zeroed from a point on - and read back.
 *
 * Checks, on every segment read (recover.c calls spool_rec_scan exactly
 * so and truncates the file to what it returns):
 *   - spool_rec_scan stays inside the buffer (ASan), reports records back
 *     to back from offset 0, each of which spool_rec_check finds whole
 *     again with the same header, and returns the offset where they end;
 *     no whole record starts there, and is_torn says whether anything but
 *     zeros follows;
 *   - spool_rec_msg of a record gives its qid and text, and an envelope
 *     it parses survives msg_envelope_format + msg_envelope_parse
 *     unchanged, the second format identical to the first;
 *   - PROMISE: every record lying wholly before the first damaged octet
 *     is returned, first and in order, with the same qid, envelope and
 *     text.  Where the damage cannot hide (truncation, a burst of at most
 *     32 bits, zeros from a record boundary, zeros appended) exactly
 *     those records come back and the scan ends where they end.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/limits.h"
#include "spool/msg.h"
#include "spool/record.h"

#define FUZZ_CHECK(cond)                                                      \
	do {                                                                  \
		if (!(cond))                                                  \
			__builtin_trap();                                     \
	} while (0)

enum fuzz_mode { MODE_RAW, MODE_FIXED, MODE_PROMISE, MODE_COUNT };

enum fuzz_damage {
	DAMAGE_TRUNCATE,
	DAMAGE_FLIP_BURST, /* 1-4 octets from the point */
	DAMAGE_FLIP_ALL,   /* every octet from the point on */
	DAMAGE_GARBAGE,	   /* fuzz octets appended */
	DAMAGE_ZERO,	   /* zeros from the point on */
	DAMAGE_COUNT,
};

#define FUZZ_RECORDS_MAX 64
#define FUZZ_MSGS_MAX 8
#define FUZZ_RCPTS_MAX 6
#define FUZZ_TEXT_MAX 4096
#define FUZZ_BURST_MAX 4
/* RFC 3461 4.4: ENVID is at most 100 characters; be generous. */
#define FUZZ_ENVID_MAX 500
/* session_cmd_rcpt.c keeps a decoded ORCPT of at most this. */
#define FUZZ_ORCPT_MAX (SMTP_PATH_MAX + 31)

/* The fuzz input, consumed from the front. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static unsigned
take_u8(struct fuzz_in *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

/* Little-endian; the octets are taken in order (one call a statement). */
static unsigned
take_u16(struct fuzz_in *in)
{
	unsigned lo = take_u8(in);

	return lo | take_u8(in) << 8;
}

static uint32_t
take_u32(struct fuzz_in *in)
{
	uint32_t lo = take_u16(in);

	return lo | (uint32_t)take_u16(in) << 16;
}

static uint64_t
take_u64(struct fuzz_in *in)
{
	uint64_t lo = take_u32(in);

	return lo | (uint64_t)take_u32(in) << 32;
}

/* Up to max octets (a u16 length first), clamped to what is left. */
static const uint8_t *
take_bytes(struct fuzz_in *in, size_t max, size_t *len_out)
{
	size_t len = take_u16(in) % (max + 1);
	const uint8_t *p = in->p;

	if (len > in->n)
		len = in->n;
	in->p += len;
	in->n -= len;
	*len_out = len;
	return p;
}

/*
 * A string as the session stores one in an envelope: no NUL, and no TAB
 * or LF (RFC 5321 4.1.2: addresses hold neither; msg.c relies on it).
 * Such octets become 'x'.  Returns a malloc'd copy.
 */
static char *
take_str(struct fuzz_in *in, size_t max, bool is_nonempty)
{
	size_t len;
	const uint8_t *p = take_bytes(in, max, &len);
	char *s = malloc(len + 2);

	if (s == NULL)
		abort();
	for (size_t i = 0; i < len; i++)
		s[i] = p[i] == '\0' || p[i] == '\t' || p[i] == '\n'
			       ? 'x'
			       : (char)p[i];
	if (len == 0 && is_nonempty)
		s[len++] = 'x';
	s[len] = '\0';
	return s;
}

/* A message within what the session can hand the committer. */
static struct msg *
take_msg(struct fuzz_in *in)
{
	struct msg *m = msg_new();
	size_t n_rcpts, len;
	const uint8_t *text;
	unsigned bits;

	if (m == NULL)
		abort();
	msg_set_qid(m, take_u64(in));
	m->arrival = (int64_t)(take_u64(in) & INT64_MAX);
	m->flags = take_u32(in);
	bits = take_u8(in);
	m->ret = (enum msg_ret)(bits % 3);
	free(m->sender);
	m->sender = take_str(in, SMTP_PATH_MAX, false);
	if (bits & 4)
		m->envid = take_str(in, FUZZ_ENVID_MAX, true);
	n_rcpts = 1 + take_u8(in) % FUZZ_RCPTS_MAX;
	for (size_t i = 0; i < n_rcpts; i++) {
		unsigned rb = take_u8(in);
		char *mailbox = take_str(in, SMTP_PATH_MAX, false);
		char *orig = take_str(in, SMTP_PATH_MAX, false);
		char *orcpt = rb & 2 ? take_str(in, FUZZ_ORCPT_MAX, true) : NULL;
		unsigned notify = rb & 4 ? take_u32(in) : 0;

		if (msg_add_rcpt(m, mailbox, orig,
				 rb & 1 ? MSG_ROUTE_REMOTE : MSG_ROUTE_LOCAL) !=
			    0 ||
		    msg_rcpt_set_dsn(m, i, notify, orcpt) != 0)
			abort();
		free(mailbox);
		free(orig);
		free(orcpt);
	}
	text = take_bytes(in, FUZZ_TEXT_MAX, &len);
	m->data = malloc(len + 1);
	if (m->data == NULL)
		abort();
	memcpy(m->data, text, len);
	m->data_len = len;
	return m;
}

static bool
str_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Same envelope (qid aside): what recovery hands on must be what was sent. */
static bool
envelope_same(const struct msg *a, const struct msg *b)
{
	if (a->arrival != b->arrival || a->flags != b->flags ||
	    a->ret != b->ret || !str_same(a->sender, b->sender) ||
	    !str_same(a->envid, b->envid) || a->n_rcpts != b->n_rcpts)
		return false;
	for (size_t i = 0; i < a->n_rcpts; i++) {
		const struct msg_rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
		if (!str_same(x->mailbox, y->mailbox) ||
		    !str_same(x->orig, y->orig) || x->route != y->route ||
		    x->notify != y->notify || !str_same(x->orcpt, y->orcpt))
			return false;
	}
	return true;
}

/*
 * A parsed envelope is a fixed point: formatting it and parsing that
 * gives it back, and formatting again gives the same octets.
 */
static void
check_envelope_round_trip(const struct msg *m)
{
	struct msg *again = msg_new();
	size_t len1, len2;
	char *f1, *f2;

	if (again == NULL || (f1 = msg_envelope_format(m, &len1)) == NULL)
		abort();
	FUZZ_CHECK(msg_envelope_parse(again, f1, len1) == 0);
	FUZZ_CHECK(envelope_same(m, again));
	if ((f2 = msg_envelope_format(again, &len2)) == NULL)
		abort();
	FUZZ_CHECK(len1 == len2 && memcmp(f1, f2, len1) == 0);
	free(f1);
	free(f2);
	msg_free(again);
}

/* One record spool_rec_scan reported. */
struct fuzz_rec {
	size_t off, total;
	struct spool_rec_hdr h;
	struct msg *m; /* spool_rec_msg, NULL when its envelope is bad */
};

struct fuzz_scan {
	struct fuzz_rec v[FUZZ_RECORDS_MAX];
	size_t n;
	size_t next_off; /* where the next record must start */
	bool is_overflow;
};

static void
on_record(void *arg, const char *buf, size_t off, size_t total,
	  const struct spool_rec_hdr *h)
{
	struct fuzz_scan *sc = arg;
	struct spool_rec_hdr again;
	struct fuzz_rec *r;

	FUZZ_CHECK(off == sc->next_off);
	FUZZ_CHECK(total >= sizeof *h);
	FUZZ_CHECK(total == sizeof *h + h->env_len + h->data_len);
	sc->next_off = off + total;
	if (sc->n == FUZZ_RECORDS_MAX) {
		sc->is_overflow = true;
		return;
	}
	r = &sc->v[sc->n++];
	r->off = off;
	r->total = total;
	r->h = *h;
	r->m = spool_rec_msg(buf, off, h);
	/* The record alone, in a buffer of its own size, is still whole. */
	FUZZ_CHECK(spool_rec_check(buf + off, total, 0, &again) == total);
	FUZZ_CHECK(memcmp(&again, h, sizeof again) == 0);
	if (r->m != NULL) {
		FUZZ_CHECK(r->m->qid == h->qid);
		FUZZ_CHECK(r->m->data_len == h->data_len);
		FUZZ_CHECK(memcmp(r->m->data, buf + off + sizeof *h + h->env_len,
				  r->m->data_len) == 0);
		check_envelope_round_trip(r->m);
	}
}

static bool
is_zero(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* Scans buf as recovery does and checks what any segment must give. */
static size_t
scan(const char *buf, size_t len, struct fuzz_scan *sc, bool *is_torn)
{
	struct spool_rec_hdr h;
	size_t end;

	sc->n = 0;
	sc->next_off = 0;
	sc->is_overflow = false;
	end = spool_rec_scan(buf, len, on_record, sc, is_torn);
	FUZZ_CHECK(end <= len);
	FUZZ_CHECK(end == sc->next_off);
	FUZZ_CHECK(spool_rec_check(buf, len, end, &h) == 0);
	FUZZ_CHECK(*is_torn == !is_zero(buf + end, len - end));
	return end;
}

static void
scan_free(struct fuzz_scan *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		msg_free(sc->v[i].m);
}

/* Builds a segment from records whose envelope and text are fuzz octets. */
static void
run_fixed(struct fuzz_in *in)
{
	char *seg = malloc(in->n * 2 + sizeof(struct spool_rec_hdr) *
					       FUZZ_RECORDS_MAX + 1);
	size_t len = 0, n = 0, offs[FUZZ_RECORDS_MAX];
	uint64_t qids[FUZZ_RECORDS_MAX];
	struct fuzz_scan sc;
	bool is_torn;

	if (seg == NULL)
		abort();
	while (in->n >= 5 && n < FUZZ_RECORDS_MAX) {
		struct spool_rec_hdr h;
		size_t env_len = take_u16(in), data_len = take_u16(in);
		uint64_t qid = take_u8(in);
		const char *env = (const char *)in->p;

		if (env_len > in->n)
			env_len = in->n;
		if (data_len > in->n - env_len)
			data_len = in->n - env_len;
		spool_rec_hdr_fill(&h, qid, env, env_len, env + env_len,
				   data_len);
		memcpy(seg + len, &h, sizeof h);
		memcpy(seg + len + sizeof h, env, env_len + data_len);
		offs[n] = len;
		qids[n++] = qid;
		len += sizeof h + env_len + data_len;
		in->p += env_len + data_len;
		in->n -= env_len + data_len;
	}
	memcpy(seg + len, in->p, in->n);
	scan(seg, len + in->n, &sc, &is_torn);
	/* Every record built is whole: all come back, where they were. */
	FUZZ_CHECK(sc.n >= n && sc.next_off >= len);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(sc.v[i].off == offs[i] && sc.v[i].h.qid == qids[i]);
	scan_free(&sc);
	free(seg);
}

static uint32_t
fuzz_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/*
 * Writes msgs as the committer does; returns the segment and the end of
 * each record in ends[].
 */
static char *
write_segment(struct msg **msgs, size_t n, size_t *ends, size_t *len_out,
	      size_t extra)
{
	char *envs[FUZZ_MSGS_MAX];
	size_t env_lens[FUZZ_MSGS_MAX], len = 0;
	char *seg;

	for (size_t i = 0; i < n; i++) {
		envs[i] = msg_envelope_format(msgs[i], &env_lens[i]);
		if (envs[i] == NULL)
			abort();
		/* The session's limits keep an envelope far below this. */
		FUZZ_CHECK(env_lens[i] <= SPOOL_ENVELOPE_MAX);
		len += sizeof(struct spool_rec_hdr) + env_lens[i] +
		       msgs[i]->data_len;
	}
	seg = malloc(len + extra + 1);
	if (seg == NULL)
		abort();
	len = 0;
	for (size_t i = 0; i < n; i++) {
		struct spool_rec_hdr h;
		spool_rec_hdr_fill(&h, msgs[i]->qid, envs[i], env_lens[i],
				   msgs[i]->data, msgs[i]->data_len);
		memcpy(seg + len, &h, sizeof h);
		len += sizeof h;
		memcpy(seg + len, envs[i], env_lens[i]);
		len += env_lens[i];
		memcpy(seg + len, msgs[i]->data, msgs[i]->data_len);
		len += msgs[i]->data_len;
		ends[i] = len;
		free(envs[i]);
	}
	*len_out = len;
	return seg;
}

/* The record that must come back intact: same qid, envelope, text. */
static void
check_intact(const struct fuzz_rec *r, const struct msg *m, size_t off,
	     size_t end)
{
	FUZZ_CHECK(r->off == off && r->off + r->total == end);
	FUZZ_CHECK(r->m != NULL);
	FUZZ_CHECK(r->m->qid == m->qid);
	FUZZ_CHECK(envelope_same(r->m, m));
	FUZZ_CHECK(r->m->data_len == m->data_len);
	FUZZ_CHECK(memcmp(r->m->data, m->data, m->data_len) == 0);
}

static void
run_promise(struct fuzz_in *in)
{
	enum fuzz_damage kind = (enum fuzz_damage)(take_u8(in) % DAMAGE_COUNT);
	uint32_t where = take_u32(in), x = take_u8(in) | 0x100u;
	struct msg *msgs[FUZZ_MSGS_MAX];
	size_t ends[FUZZ_MSGS_MAX], n = 0, len, at, first_bad, seg_len;
	size_t n_whole = 0, whole_end = 0, garbage_len = 0;
	const uint8_t *garbage = NULL;
	bool is_exact = false, is_torn;
	struct fuzz_scan sc;
	char *seg;

	if (kind == DAMAGE_GARBAGE)
		garbage = take_bytes(in, FUZZ_TEXT_MAX, &garbage_len);
	do
		msgs[n++] = take_msg(in);
	while (in->n > 0 && n < FUZZ_MSGS_MAX);
	seg = write_segment(msgs, n, ends, &len, garbage_len);
	at = where % (len + 1);
	seg_len = len;
	first_bad = len;
	switch (kind) {
	case DAMAGE_TRUNCATE:
		seg_len = first_bad = at;
		is_exact = true; /* a cut record's lengths run past the end */
		break;
	case DAMAGE_FLIP_BURST:
	case DAMAGE_FLIP_ALL: {
		size_t stop = len;
		if (kind == DAMAGE_FLIP_BURST) {
			stop = at + 1 + fuzz_rand(&x) % FUZZ_BURST_MAX;
			if (stop > len)
				stop = len;
			/* CRC-32C catches every burst of 32 bits or less. */
			is_exact = true;
		}
		for (size_t i = at; i < stop; i++)
			seg[i] ^= (char)(1 + fuzz_rand(&x) % 255);
		first_bad = at;
		break;
	}
	case DAMAGE_GARBAGE:
		memcpy(seg + len, garbage, garbage_len);
		seg_len = len + garbage_len;
		is_exact = is_zero((const char *)garbage, garbage_len);
		break;
	case DAMAGE_ZERO:
		while (at < len && seg[at] == 0)
			at++; /* zeros over zeros change nothing */
		first_bad = at;
		memset(seg + at, 0, len - at);
		break;
	default:
		abort();
	}
	while (n_whole < n && ends[n_whole] <= first_bad)
		whole_end = ends[n_whole++];
	if (kind == DAMAGE_ZERO && first_bad == whole_end)
		is_exact = true; /* zeros from a boundary: space written ahead */
	scan(seg, seg_len, &sc, &is_torn);
	FUZZ_CHECK(sc.n >= n_whole);
	for (size_t i = 0; i < n_whole; i++)
		check_intact(&sc.v[i], msgs[i], i ? ends[i - 1] : 0, ends[i]);
	FUZZ_CHECK(sc.next_off >= whole_end);
	if (is_exact) {
		FUZZ_CHECK(sc.n == n_whole);
		FUZZ_CHECK(sc.next_off == whole_end);
		if (kind != DAMAGE_FLIP_BURST)
			FUZZ_CHECK(is_torn == (seg_len > whole_end &&
					       kind == DAMAGE_TRUNCATE));
	}
	scan_free(&sc);
	for (size_t i = 0; i < n; i++)
		msg_free(msgs[i]);
	free(seg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data + 1, size ? size - 1 : 0};
	struct fuzz_scan sc;
	bool is_torn;

	if (size == 0)
		return 0;
	switch (data[0] % MODE_COUNT) {
	case MODE_RAW:
		scan((const char *)in.p, in.n, &sc, &is_torn);
		scan_free(&sc);
		break;
	case MODE_FIXED:
		run_fixed(&in);
		break;
	default:
		run_promise(&in);
		break;
	}
	return 0;
}

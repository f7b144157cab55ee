/*
 * test_milter.c - the milter client against real processes: OpenDKIM from
 * Debian signing a message (skipped only when /usr/sbin/opendkim is not
 * installed), a small fake milter of our own in a thread on a loopback
 * socket, and a port where nothing listens.  No mocks: every check goes
 * over a real socket through a real libevent loop.
 *
 * Covered: the framing and header edits (pure, table-driven); REPLYCODE
 * 550 -> reject with its text, 451 -> tempfail; TEMPFAIL, DISCARD;
 * ACCEPT at CONNECT skips the rest; ADDHEADER, INSHEADER (folded value),
 * CHGHEADER change and delete after PROGRESS; a body over 64 KiB in
 * chunks of at most 65535 octets with no-reply flags and SKIP; hang-up
 * mid-exchange, silence past timeout = 1 s and nothing listening ->
 * failed; a malformed [filter] milter; close fails what is pending.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "policy/milter.h"

#define WAIT_SECONDS 20 /* for a verdict before the test fails */
#define OPENDKIM "/usr/sbin/opendkim"
#define OPENDKIM_GENKEY "/usr/sbin/opendkim-genkey"
#define START_MS 10000 /* for opendkim to listen */
#define STEP_MS 20
#define BIG_BODY (3 * 65535 + 1234)
#define PATH_MAX_TEST 4096

static const char msg_text[] = "From: Alice <alice@example.test>\r\n"
			       "To: bob@example.test\r\n"
			       "Subject: hello\r\n"
			       "X-Drop: me\r\n"
			       "Received: from a\r\n"
			       "\tby b\r\n"
			       "\r\n"
			       "Hi Bob.\r\n"
			       "\r\n"
			       ".. a dot line\r\n";

static const char *const rcpts[] = {"bob@example.test", "carol@example.test"};

/* ---- the loop side ---- */

struct outcome {
	int calls;
	enum milter_verdict verdict;
	char reply[MILTER_REPLY_TEXT_MAX];
	char *data;
	size_t data_len;
	struct event_base *base;
};

static void
on_done(void *arg, struct milter_result *res)
{
	struct outcome *o = arg;

	o->calls++;
	o->verdict = res->verdict;
	snprintf(o->reply, sizeof o->reply, "%s", res->reply);
	o->data = res->data; /* taken */
	o->data_len = res->data_len;
	res->data = NULL;
	event_base_loopbreak(o->base);
}

static void
on_guard(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static struct milter_msg
default_msg(const char *data, size_t len)
{
	return (struct milter_msg){
	    .client_ip = "127.0.0.1",
	    .client_name = "localhost",
	    .helo = "client.example.test",
	    .sender = "alice@example.test",
	    .rcpts = rcpts,
	    .n_rcpts = 2,
	    .data = data,
	    .data_len = len,
	    .qid = "0123456789abcdef",
	};
}

/* Runs one check of msg against spec; the verdict in *o. */
static void
run_check(const char *spec, unsigned timeout, const struct milter_msg *msg,
	  struct outcome *o, double *seconds_out)
{
	struct config cfg = {.filter_milter = (char *)spec,
			     .filter_timeout = timeout,
			     .server_hostname = "mx.example.test"};
	struct timeval guard = {WAIT_SECONDS, 0};
	struct timespec t0, t1;
	char err[256] = "";
	struct event_base *base = event_base_new();
	struct event *ev = evtimer_new(base, on_guard, base);
	struct milter *m = milter_open(&cfg, base, err, sizeof err);

	assert_non_null(m);
	*o = (struct outcome){.base = base};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	milter_check(m, msg, on_done, o);
	assert_int_equal(o->calls, 0); /* never inside milter_check */
	evtimer_add(ev, &guard);
	event_base_dispatch(base);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (seconds_out)
		*seconds_out = (double)(t1.tv_sec - t0.tv_sec) +
			       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	milter_close(m);
	assert_int_equal(o->calls, 1);
	event_free(ev);
	event_base_free(base);
}

/* ---- a fake milter in a thread ---- */

enum fake_mode {
	FAKE_REPLYCODE_550,
	FAKE_REPLYCODE_451,
	FAKE_TEMPFAIL,
	FAKE_DISCARD,
	FAKE_ACCEPT_AT_CONNECT,
	FAKE_HANG_UP,
	FAKE_SILENT,
	FAKE_EDITS,
	FAKE_BIG_BODY,
	FAKE_UNKNOWN_REPLY,
};

struct fake {
	enum fake_mode mode;
	int lfd;
	unsigned short port;
	pthread_t thread;
	/* What it saw. */
	char mail[256];
	int n_rcpt, n_header, n_body;
	size_t body_bytes, body_chunk_max;
	char first_header[256];
	bool saw_quit;
};

static int
read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void
fake_send(int fd, char cmd, const void *payload, size_t len)
{
	unsigned char h[5];
	ssize_t n;

	put32(h, (uint32_t)len + 1);
	h[4] = (unsigned char)cmd;
	n = write(fd, h, sizeof h);
	if (len)
		n = write(fd, payload, len);
	(void)n;
}

/* name\0value\0, with a 4-octet index first when has_index. */
static void
fake_edit(int fd, char cmd, bool has_index, uint32_t index, const char *name,
	  const char *value)
{
	unsigned char buf[512];
	size_t n = 0;

	if (has_index) {
		put32(buf, index);
		n = 4;
	}
	memcpy(buf + n, name, strlen(name) + 1);
	n += strlen(name) + 1;
	memcpy(buf + n, value, strlen(value) + 1);
	n += strlen(value) + 1;
	fake_send(fd, cmd, buf, n);
}

static void
fake_optneg(struct fake *f, int fd)
{
	unsigned char w[12];
	uint32_t proto = 0;

	if (f->mode == FAKE_BIG_BODY)
		proto = MILTER_P_NR_HDR | MILTER_P_NR_BODY | MILTER_P_NOEOH |
			MILTER_P_SKIP;
	put32(w, MILTER_VERSION);
	put32(w + 4, MILTER_F_ADDHDRS | MILTER_F_CHGHDRS);
	put32(w + 8, proto);
	fake_send(fd, MILTER_C_OPTNEG, w, sizeof w);
}

/* The answer at BODYEOB. */
static void
fake_eob(struct fake *f, int fd)
{
	static const char r550[] = "550 5.7.1 Spam";
	static const char r451[] = "451 4.7.1 Later";

	switch (f->mode) {
	case FAKE_REPLYCODE_550:
		fake_send(fd, MILTER_R_REPLYCODE, r550, sizeof r550);
		break;
	case FAKE_REPLYCODE_451:
		fake_send(fd, MILTER_R_REPLYCODE, r451, sizeof r451);
		break;
	case FAKE_TEMPFAIL:
		fake_send(fd, MILTER_R_TEMPFAIL, NULL, 0);
		break;
	case FAKE_DISCARD:
		fake_send(fd, MILTER_R_DISCARD, NULL, 0);
		break;
	case FAKE_UNKNOWN_REPLY:
		fake_send(fd, 'Z', NULL, 0);
		break;
	case FAKE_EDITS:
		fake_edit(fd, MILTER_R_ADDHEADER, false, 0, "X-Spam", "no");
		fake_send(fd, MILTER_R_PROGRESS, NULL, 0);
		fake_edit(fd, MILTER_R_CHGHEADER, true, 1, "subject",
			  "changed");
		fake_edit(fd, MILTER_R_CHGHEADER, true, 1, "X-Drop", "");
		fake_edit(fd, MILTER_R_INSHEADER, true, 0, "X-First",
			  "one\n\ttwo");
		fake_send(fd, MILTER_R_ACCEPT, NULL, 0);
		break;
	default:
		fake_send(fd, MILTER_R_CONTINUE, NULL, 0);
		break;
	}
}

/* Answers one command; false to stop talking. */
static bool
fake_answer(struct fake *f, int fd, char cmd, const char *p, size_t len)
{
	switch (cmd) {
	case MILTER_C_OPTNEG:
		fake_optneg(f, fd);
		return true;
	case MILTER_C_MACRO:
		return true;
	case MILTER_C_QUIT:
		f->saw_quit = true;
		return false;
	case MILTER_C_CONNECT:
		if (f->mode == FAKE_ACCEPT_AT_CONNECT) {
			fake_send(fd, MILTER_R_ACCEPT, NULL, 0);
			return true;
		}
		break;
	case MILTER_C_HELO:
		if (f->mode == FAKE_HANG_UP)
			return false;
		break;
	case MILTER_C_MAIL:
		snprintf(f->mail, sizeof f->mail, "%.*s", (int)len, p);
		break;
	case MILTER_C_RCPT:
		f->n_rcpt++;
		break;
	case MILTER_C_HEADER:
		if (f->n_header++ == 0)
			snprintf(f->first_header, sizeof f->first_header,
				 "%s=%s", p, p + strlen(p) + 1);
		if (f->mode == FAKE_BIG_BODY)
			return true; /* NR_HDR */
		break;
	case MILTER_C_BODY:
		f->n_body++;
		f->body_bytes += len;
		if (len > f->body_chunk_max)
			f->body_chunk_max = len;
		if (f->mode == FAKE_BIG_BODY)
			return true; /* NR_BODY */
		break;
	case MILTER_C_BODYEOB:
		fake_eob(f, fd);
		return true;
	default:
		break;
	}
	fake_send(fd, MILTER_R_CONTINUE, NULL, 0);
	return true;
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->lfd, NULL, NULL);
	unsigned char h[4];
	char *buf = NULL;

	if (fd < 0)
		return NULL;
	while (read_full(fd, h, 4) == 0) {
		uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
			       (uint32_t)h[2] << 8 | h[3];

		free(buf);
		buf = calloc(1, (size_t)len + 1);
		if (buf == NULL || len == 0 || read_full(fd, buf, len) != 0)
			break;
		if (f->mode == FAKE_SILENT && buf[0] != MILTER_C_OPTNEG)
			continue; /* never answers past the negotiation */
		if (!fake_answer(f, fd, buf[0], buf + 1, len - 1))
			break;
	}
	free(buf);
	close(fd);
	return NULL;
}

static void
fake_start(struct fake *f, enum fake_mode mode)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof sin;

	*f = (struct fake){.mode = mode};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sin, &sl), 0);
	f->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void
fake_join(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
}

/* Runs the default message against a fake in mode. */
static void
run_fake(enum fake_mode mode, struct fake *f, struct outcome *o,
	 double *seconds_out)
{
	char spec[64];
	struct milter_msg msg = default_msg(msg_text, sizeof msg_text - 1);

	fake_start(f, mode);
	snprintf(spec, sizeof spec, "inet:127.0.0.1:%u", f->port);
	run_check(spec, 1, &msg, o, seconds_out);
	fake_join(f);
}

/* ---- pure: framing and edits ---- */

static void
test_packet_parse_frames_and_limits(void **state)
{
	static const unsigned char ok[] = {0, 0, 0, 3, 'y', '5', 0, 'x'};
	static const unsigned char zero[] = {0, 0, 0, 0, 'c'};
	static const unsigned char big[] = {0, 0x10, 0, 0, 'c'};
	const unsigned char *p;
	size_t plen, used;
	char cmd;

	(void)state;
	assert_int_equal(milter_packet_parse(ok, 3, &cmd, &p, &plen, &used),
			 MILTER_PARSE_MORE);
	assert_int_equal(milter_packet_parse(ok, 6, &cmd, &p, &plen, &used),
			 MILTER_PARSE_MORE);
	assert_int_equal(
	    milter_packet_parse(ok, sizeof ok, &cmd, &p, &plen, &used),
	    MILTER_PARSE_OK);
	assert_int_equal(cmd, 'y');
	assert_int_equal(plen, 2);
	assert_int_equal(used, 7);
	assert_memory_equal(p, "5", 2);
	assert_int_equal(
	    milter_packet_parse(zero, sizeof zero, &cmd, &p, &plen, &used),
	    MILTER_PARSE_ERR_LENGTH);
	assert_int_equal(
	    milter_packet_parse(big, sizeof big, &cmd, &p, &plen, &used),
	    MILTER_PARSE_ERR_LENGTH);
}

static void
test_hdrs_split_fields_and_body(void **state)
{
	struct milter_hdrs h;
	char buf[256];
	size_t n;

	(void)state;
	assert_int_equal(milter_hdrs_split(&h, msg_text, sizeof msg_text - 1),
			 MILTER_PARSE_OK);
	assert_int_equal(h.n, 5);
	assert_string_equal(msg_text + h.body_start,
			    "Hi Bob.\r\n\r\n.. a dot line\r\n");
	n = milter_field_format(&h.v[4], buf, sizeof buf);
	assert_int_equal(n, sizeof "Received" + sizeof "from a\n\tby b");
	assert_string_equal(buf, "Received");
	assert_string_equal(buf + sizeof "Received", "from a\n\tby b");
	assert_int_equal(milter_field_format(&h.v[4], buf, 10), 0);
	milter_hdrs_free(&h);

	/* No empty line: the fields end at the first line that is none. */
	assert_int_equal(milter_hdrs_split(&h, "A: 1\r\nnot a field\r\n", 19),
			 MILTER_PARSE_OK);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.hdr_end, 6);
	assert_int_equal(h.body_start, 6);
	milter_hdrs_free(&h);
}

static void
test_hdrs_edit_rules(void **state)
{
	static const struct {
		char cmd;
		uint32_t index;
		const char *name, *value;
		const char *want;
	} rows[] = {
	    {'h', 0, "X-A", "1", "A: 1\r\nB: 2\r\nA: 3\r\nX-A: 1\r\n\r\nb"},
	    {'i', 0, "X-A", "1", "X-A: 1\r\nA: 1\r\nB: 2\r\nA: 3\r\n\r\nb"},
	    {'i', 2, "X-A", "1", "A: 1\r\nB: 2\r\nX-A: 1\r\nA: 3\r\n\r\nb"},
	    {'i', 99, "X-A", "1", "A: 1\r\nB: 2\r\nA: 3\r\nX-A: 1\r\n\r\nb"},
	    {'m', 2, "a", "x\ny", "A: 1\r\nB: 2\r\na: x\r\ny\r\n\r\nb"},
	    {'m', 1, "A", "", "B: 2\r\nA: 3\r\n\r\nb"},
	    {'m', 3, "A", "", "A: 1\r\nB: 2\r\nA: 3\r\n\r\nb"},
	    {'m', 3, "A", "new", "A: 1\r\nB: 2\r\nA: 3\r\nA: new\r\n\r\nb"},
	};
	static const char data[] = "A: 1\r\nB: 2\r\nA: 3\r\n\r\nb";

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		unsigned char p[64];
		struct milter_hdrs h;
		size_t n = 0, len;
		char *out;

		if (rows[i].cmd != 'h') {
			put32(p, rows[i].index);
			n = 4;
		}
		memcpy(p + n, rows[i].name, strlen(rows[i].name) + 1);
		n += strlen(rows[i].name) + 1;
		memcpy(p + n, rows[i].value, strlen(rows[i].value) + 1);
		n += strlen(rows[i].value) + 1;
		assert_int_equal(milter_hdrs_split(&h, data, sizeof data - 1),
				 MILTER_PARSE_OK);
		assert_int_equal(milter_hdrs_edit(&h, rows[i].cmd, p, n),
				 MILTER_PARSE_OK);
		assert_int_equal(milter_hdrs_render(&h, &out, &len), 0);
		assert_string_equal(out, rows[i].want);
		assert_int_equal(len, strlen(rows[i].want));
		free(out);
		/* Malformed: no NUL after the value, a name with a colon. */
		assert_int_equal(milter_hdrs_edit(&h, rows[i].cmd, p, n - 1),
				 MILTER_PARSE_ERR_SYNTAX);
		milter_hdrs_free(&h);
	}
}

/* ---- the fake milter ---- */

static void
test_fake_replycode_550_rejects_with_text(void **state)
{
	struct fake f;
	struct outcome o;

	(void)state;
	run_fake(FAKE_REPLYCODE_550, &f, &o, NULL);
	assert_int_equal(o.verdict, MILTER_REJECT);
	assert_string_equal(o.reply, "550 5.7.1 Spam");
	assert_null(o.data);
	/* It saw the whole transaction, and our QUIT. */
	assert_string_equal(f.mail, "<alice@example.test>");
	assert_int_equal(f.n_rcpt, 2);
	assert_int_equal(f.n_header, 5);
	assert_string_equal(f.first_header, "From=Alice <alice@example.test>");
	assert_int_equal(f.body_bytes,
			 strlen("Hi Bob.\r\n\r\n.. a dot line\r\n"));
	assert_true(f.saw_quit);
}

static void
test_fake_replycode_451_tempfails(void **state)
{
	struct fake f;
	struct outcome o;

	(void)state;
	run_fake(FAKE_REPLYCODE_451, &f, &o, NULL);
	assert_int_equal(o.verdict, MILTER_TEMPFAIL);
	assert_string_equal(o.reply, "451 4.7.1 Later");
}

static void
test_fake_tempfail_and_discard(void **state)
{
	struct fake f;
	struct outcome o;

	(void)state;
	run_fake(FAKE_TEMPFAIL, &f, &o, NULL);
	assert_int_equal(o.verdict, MILTER_TEMPFAIL);
	assert_string_equal(o.reply, "");
	run_fake(FAKE_DISCARD, &f, &o, NULL);
	assert_int_equal(o.verdict, MILTER_DISCARD);
}

static void
test_fake_accept_at_connect_skips_the_rest(void **state)
{
	struct fake f;
	struct outcome o;

	(void)state;
	run_fake(FAKE_ACCEPT_AT_CONNECT, &f, &o, NULL);
	assert_int_equal(o.verdict, MILTER_ACCEPT);
	assert_null(o.data);
	assert_int_equal(f.n_rcpt, 0);
	assert_int_equal(f.n_header, 0);
}

static void
test_fake_edits_rewrite_the_header(void **state)
{
	static const char want[] = "X-First: one\r\n\ttwo\r\n"
				   "From: Alice <alice@example.test>\r\n"
				   "To: bob@example.test\r\n"
				   "subject: changed\r\n"
				   "Received: from a\r\n"
				   "\tby b\r\n"
				   "X-Spam: no\r\n"
				   "\r\n"
				   "Hi Bob.\r\n"
				   "\r\n"
				   ".. a dot line\r\n";
	struct fake f;
	struct outcome o;

	(void)state;
	run_fake(FAKE_EDITS, &f, &o, NULL);
	assert_int_equal(o.verdict, MILTER_ACCEPT);
	assert_non_null(o.data);
	assert_int_equal(o.data_len, sizeof want - 1);
	assert_memory_equal(o.data, want, sizeof want - 1);
	free(o.data);
}

static void
test_fake_big_body_goes_in_chunks(void **state)
{
	static const char head[] = "From: a@example.test\r\n\r\n";
	size_t len = sizeof head - 1 + BIG_BODY;
	char *data = malloc(len);
	struct milter_msg msg;
	struct outcome o;
	struct fake f;
	char spec[64];

	(void)state;
	assert_non_null(data);
	memcpy(data, head, sizeof head - 1);
	for (size_t i = sizeof head - 1; i < len; i++)
		data[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : 'x';
	msg = default_msg(data, len);
	fake_start(&f, FAKE_BIG_BODY);
	snprintf(spec, sizeof spec, "inet:127.0.0.1:%u", f.port);
	run_check(spec, 5, &msg, &o, NULL);
	fake_join(&f);
	assert_int_equal(o.verdict, MILTER_ACCEPT);
	assert_null(o.data);
	assert_int_equal(f.body_bytes, BIG_BODY);
	assert_int_equal(f.body_chunk_max, MILTER_CHUNK_MAX);
	assert_int_equal(f.n_body, 4);
	free(data);
}

static void
test_fake_hang_up_mid_exchange_fails(void **state)
{
	struct fake f;
	struct outcome o;

	(void)state;
	run_fake(FAKE_HANG_UP, &f, &o, NULL);
	assert_int_equal(o.verdict, MILTER_FAILED);
}

static void
test_fake_silent_fails_after_timeout(void **state)
{
	struct fake f;
	struct outcome o;
	double secs;

	(void)state;
	run_fake(FAKE_SILENT, &f, &o, &secs);
	assert_int_equal(o.verdict, MILTER_FAILED);
	assert_true(secs >= 0.9);
	assert_true(secs < 5.0);
}

static void
test_fake_unknown_reply_fails(void **state)
{
	struct fake f;
	struct outcome o;

	(void)state;
	run_fake(FAKE_UNKNOWN_REPLY, &f, &o, NULL);
	assert_int_equal(o.verdict, MILTER_FAILED);
}

/* ---- nothing there, bad values, close ---- */

static unsigned short
free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void
test_nothing_listening_fails_quickly(void **state)
{
	struct milter_msg msg = default_msg(msg_text, sizeof msg_text - 1);
	struct outcome o;
	char spec[64];
	double secs;

	(void)state;
	snprintf(spec, sizeof spec, "inet:127.0.0.1:%u", free_port());
	run_check(spec, 30, &msg, &o, &secs);
	assert_int_equal(o.verdict, MILTER_FAILED);
	assert_true(secs < 1.0);
	run_check("unix:/nonexistent/milter.sock", 30, &msg, &o, &secs);
	assert_int_equal(o.verdict, MILTER_FAILED);
	assert_true(secs < 1.0);
}

static void
test_open_rejects_malformed_values(void **state)
{
	static const char *const bad[] = {
	    "",
	    "127.0.0.1:8891",
	    "inet:127.0.0.1",
	    "inet:127.0.0.1:0",
	    "inet:127.0.0.1:70000",
	    "inet:[::1]:x",
	    "unix:",
	};
	static const char *const good[] = {
	    "inet:127.0.0.1:8891",
	    "inet:[::1]:8891",
	    "inet:8891@127.0.0.1",
	    "unix:/run/milter.sock",
	};
	struct event_base *base = event_base_new();

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct config cfg = {.filter_milter = (char *)bad[i],
				     .filter_timeout = 1};
		char err[256] = "";

		assert_null(milter_open(&cfg, base, err, sizeof err));
		assert_non_null(strstr(err, "fix [filter] milter"));
	}
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct config cfg = {.filter_milter = (char *)good[i],
				     .filter_timeout = 1};
		char err[256] = "";
		struct milter *m = milter_open(&cfg, base, err, sizeof err);

		assert_non_null(m);
		milter_close(m);
	}
	milter_close(NULL);
	event_base_free(base);
}

static void
test_close_fails_pending_checks(void **state)
{
	struct milter_msg msg = default_msg(msg_text, sizeof msg_text - 1);
	struct outcome o1 = {0}, o2 = {0};
	struct fake f;
	char spec[64], err[256];
	struct event_base *base = event_base_new();
	struct config cfg = {.filter_timeout = 30};
	struct milter *m;

	(void)state;
	fake_start(&f, FAKE_SILENT);
	snprintf(spec, sizeof spec, "inet:127.0.0.1:%u", f.port);
	cfg.filter_milter = spec;
	m = milter_open(&cfg, base, err, sizeof err);
	assert_non_null(m);
	o1.base = o2.base = base;
	milter_check(m, &msg, on_done, &o1);
	milter_check(m, &msg, on_done, &o2);
	event_base_loop(base, EVLOOP_NONBLOCK);
	milter_close(m);
	assert_int_equal(o1.calls, 1);
	assert_int_equal(o2.calls, 1);
	assert_int_equal(o1.verdict, MILTER_FAILED);
	assert_int_equal(o2.verdict, MILTER_FAILED);
	/* libevent closes a freed bufferevent's socket from the loop (or
	 * here), so the fake sees its end only now. */
	event_base_free(base);
	fake_join(&f);
}

/* ---- OpenDKIM ---- */

static char dkim_dir[] = "/tmp/postern-test-milter-XXXXXX";

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static pid_t
spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static bool
is_listening(unsigned short port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
	close(fd);
	return ok;
}

/* Copies opendkim's log to stderr, to see why it did not sign. */
static void
dump(const char *path)
{
	char buf[1024];
	size_t n;
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		return;
	while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(fp);
}

static void
test_opendkim_signs_a_local_message(void **state)
{
	char conf[PATH_MAX_TEST], key[PATH_MAX_TEST], log[PATH_MAX_TEST];
	char spec[64];
	struct milter_msg msg = default_msg(msg_text, sizeof msg_text - 1);
	unsigned short port;
	struct outcome o;
	FILE *fp;
	pid_t pid;
	int status;

	(void)state;
	if (access(OPENDKIM, X_OK) != 0 || access(OPENDKIM_GENKEY, X_OK) != 0)
		skip();
	assert_non_null(mkdtemp(dkim_dir));
	snprintf(log, sizeof log, "%s/log", dkim_dir);
	{
		char *argv[] = {OPENDKIM_GENKEY, "-D", dkim_dir, "-d",
				"example.test",	 "-s", "test",	 NULL};

		pid = spawn(argv, log);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	port = free_port();
	snprintf(key, sizeof key, "%s/test.private", dkim_dir);
	snprintf(conf, sizeof conf, "%s/opendkim.conf", dkim_dir);
	fp = fopen(conf, "w");
	assert_non_null(fp);
	fprintf(fp,
		"Mode s\nDomain example.test\nSelector test\nKeyFile %s\n"
		"Socket inet:%u@127.0.0.1\nSyslog no\nPidFile %s/pid\n"
		"RequireSafeKeys no\nInternalHosts 127.0.0.1\n",
		key, port, dkim_dir);
	fclose(fp);
	{
		char *argv[] = {OPENDKIM, "-f", "-x", conf, NULL};

		pid = spawn(argv, log);
	}
	for (int ms = 0; !is_listening(port); ms += STEP_MS) {
		assert_true(ms < START_MS);
		usleep(STEP_MS * 1000);
	}
	snprintf(spec, sizeof spec, "inet:127.0.0.1:%u", port);
	run_check(spec, 10, &msg, &o, NULL);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	if (o.verdict != MILTER_ACCEPT || o.data == NULL)
		dump(log);
	assert_int_equal(o.verdict, MILTER_ACCEPT);
	assert_non_null(o.data);
	assert_true(strncmp(o.data, "DKIM-Signature:", 15) == 0 ||
		    strstr(o.data, "\r\nDKIM-Signature:") != NULL);
	assert_non_null(strstr(o.data, "d=example.test"));
	assert_non_null(strstr(o.data, "s=test"));
	/* The rest of the message is as it was. */
	assert_non_null(strstr(o.data, "\r\n\r\nHi Bob.\r\n\r\n.. a dot line"));
	free(o.data);
	nftw(dkim_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_packet_parse_frames_and_limits),
	    cmocka_unit_test(test_hdrs_split_fields_and_body),
	    cmocka_unit_test(test_hdrs_edit_rules),
	    cmocka_unit_test(test_fake_replycode_550_rejects_with_text),
	    cmocka_unit_test(test_fake_replycode_451_tempfails),
	    cmocka_unit_test(test_fake_tempfail_and_discard),
	    cmocka_unit_test(test_fake_accept_at_connect_skips_the_rest),
	    cmocka_unit_test(test_fake_edits_rewrite_the_header),
	    cmocka_unit_test(test_fake_big_body_goes_in_chunks),
	    cmocka_unit_test(test_fake_hang_up_mid_exchange_fails),
	    cmocka_unit_test(test_fake_silent_fails_after_timeout),
	    cmocka_unit_test(test_fake_unknown_reply_fails),
	    cmocka_unit_test(test_nothing_listening_fails_quickly),
	    cmocka_unit_test(test_open_rejects_malformed_values),
	    cmocka_unit_test(test_close_fails_pending_checks),
	    cmocka_unit_test(test_opendkim_signs_a_local_message),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

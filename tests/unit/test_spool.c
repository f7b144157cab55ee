/*
 * test_spool.c - the spool's promise, in process: what a commit callback
 * reported durable comes back after the spool is closed and reopened
 * (a restart), recipients marked done do not, and a torn record at the
 * end of a segment (a crash mid-write) is dropped without hiding the
 * records before it, and so are the zeros the committer writes ahead.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "spool/spool.h"

#define N_MSGS 50

struct seen {
	struct msg *v[N_MSGS * 2];
	size_t n;
	int committed, failed;
};

static void
on_recover(void *arg, struct msg *m)
{
	struct seen *s = arg;

	assert_true(s->n < N_MSGS * 2);
	s->v[s->n++] = m;
}

static void
on_commit(void *arg, struct msg *m, int err)
{
	struct seen *s = arg;

	if (err == 0)
		s->committed++;
	else
		s->failed++;
	s->v[s->n++] = m;
}

static struct msg *
make_msg(struct spool *sp, int i)
{
	struct msg *m = msg_new();
	char text[64];

	msg_set_qid(m, spool_new_qid(sp));
	m->arrival = 1700000000 + i;
	free(m->sender);
	m->sender = strdup("a@x.test");
	msg_add_rcpt(m, "alice@example.test", "alice+t@example.test",
		     MSG_ROUTE_LOCAL);
	msg_add_rcpt(m, "bob@example.test", "\"b b\"@example.test",
		     MSG_ROUTE_LOCAL);
	if (i % 2 == 1) { /* a DSN request on every other message */
		m->ret = MSG_RET_HDRS;
		m->envid = strdup("QQ 314");
		msg_rcpt_set_dsn(m, 0, MSG_NOTIFY_FAILURE | MSG_NOTIFY_DELAY,
				 "rfc822;alice+t@example.test");
	}
	snprintf(text, sizeof text, "Subject: %d\r\n\r\nbody %d\r\n", i, i);
	m->data = strdup(text);
	m->data_len = strlen(text);
	return m;
}

static void
clear(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		msg_free(s->v[i]);
	memset(s, 0, sizeof *s);
}

static void
test_committed_messages_survive_reopen_and_done_ones_do_not(void **state)
{
	char dir[] = "/tmp/postern-test-spool-XXXXXX", err[256];
	struct event_base *base;
	struct seen seen = {0};
	struct spool *sp;
	uint64_t qids[N_MSGS];

	(void)state;
	assert_non_null(mkdtemp(dir));
	evthread_use_pthreads();
	base = event_base_new();
	sp = spool_open(dir, 0, base, on_recover, &seen, err, sizeof err);
	assert_non_null(sp);
	assert_int_equal(seen.n, 0);
	for (int i = 0; i < N_MSGS; i++) {
		struct msg *m = make_msg(sp, i);
		qids[i] = m->qid;
		spool_commit(sp, m, on_commit, &seen);
	}
	while (seen.committed + seen.failed < N_MSGS)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(seen.committed, N_MSGS);
	/* Everything to bob is delivered, and all of message 0. */
	for (size_t i = 0; i < seen.n; i++) {
		spool_done(sp, seen.v[i], 1);
		if (seen.v[i]->qid == qids[0])
			spool_done(sp, seen.v[i], 0);
	}
	spool_close(sp);
	clear(&seen);

	sp = spool_open(dir, 0, base, on_recover, &seen, err, sizeof err);
	assert_non_null(sp);
	assert_int_equal(seen.n, N_MSGS - 1);
	for (size_t i = 0; i < seen.n; i++) {
		struct msg *m = seen.v[i];
		assert_int_equal(m->qid, qids[i + 1]);
		assert_true(m->is_recovered);
		assert_false(m->rcpts[0].is_done);
		assert_true(m->rcpts[1].is_done);
		assert_string_equal(m->rcpts[1].orig, "\"b b\"@example.test");
		assert_string_equal(m->sender, "a@x.test");
		assert_int_equal(m->arrival, 1700000000 + (int)i + 1);
		assert_non_null(strstr(m->data, "body"));
		if ((i + 1) % 2 == 1) {
			assert_int_equal(m->ret, MSG_RET_HDRS);
			assert_string_equal(m->envid, "QQ 314");
			assert_int_equal(m->rcpts[0].notify,
					 MSG_NOTIFY_FAILURE | MSG_NOTIFY_DELAY);
			assert_string_equal(m->rcpts[0].orcpt,
					    "rfc822;alice+t@example.test");
			assert_null(m->rcpts[1].orcpt);
		} else {
			assert_int_equal(m->ret, MSG_RET_NONE);
			assert_null(m->envid);
			assert_int_equal(m->rcpts[0].notify, 0);
		}
	}
	spool_close(sp);
	clear(&seen);
	event_base_free(base);
}

static void
test_torn_tail_is_dropped_and_earlier_records_kept(void **state)
{
	char dir[] = "/tmp/postern-test-spool-XXXXXX", err[256], path[512];
	struct event_base *base;
	struct seen seen = {0};
	struct spool *sp;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	base = event_base_new();
	sp = spool_open(dir, 0, base, on_recover, &seen, err, sizeof err);
	for (int i = 0; i < 3; i++)
		spool_commit(sp, make_msg(sp, i), on_commit, &seen);
	while (seen.committed < 3)
		event_base_loop(base, EVLOOP_ONCE);
	spool_close(sp);
	clear(&seen);
	/* A crash in the middle of a fourth record. */
	snprintf(path, sizeof path, "%s/00000001.log", dir);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\x50\x53\x4d\x31garbage", 11), 11);
	close(fd);
	sp = spool_open(dir, 0, base, on_recover, &seen, err, sizeof err);
	assert_non_null(sp);
	assert_int_equal(seen.n, 3);
	spool_close(sp);
	clear(&seen);
	/* Truncated: a second open sees the same three and no warning. */
	sp = spool_open(dir, 0, base, on_recover, &seen, err, sizeof err);
	assert_int_equal(seen.n, 3);
	spool_close(sp);
	clear(&seen);
	event_base_free(base);
}

static void
test_zero_tail_of_a_crashed_segment_is_trimmed_and_records_kept(void **state)
{
	char dir[] = "/tmp/postern-test-spool-XXXXXX", err[256], path[512];
	static const char zeros[1 << 16];
	struct event_base *base;
	struct seen seen = {0};
	struct spool *sp;
	struct stat st;
	off_t size;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	base = event_base_new();
	sp = spool_open(dir, 0, base, on_recover, &seen, err, sizeof err);
	for (int i = 0; i < 3; i++)
		spool_commit(sp, make_msg(sp, i), on_commit, &seen);
	while (seen.committed < 3)
		event_base_loop(base, EVLOOP_ONCE);
	spool_close(sp);
	clear(&seen);
	/* A clean close leaves no preallocated zeros behind... */
	snprintf(path, sizeof path, "%s/00000001.log", dir);
	assert_int_equal(stat(path, &st), 0);
	size = st.st_size;
	/* ...a crash does: the committer writes zeros ahead of its records. */
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, zeros, sizeof zeros), sizeof zeros);
	close(fd);
	sp = spool_open(dir, 0, base, on_recover, &seen, err, sizeof err);
	assert_non_null(sp);
	assert_int_equal(seen.n, 3);
	spool_close(sp);
	clear(&seen);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, size);
	event_base_free(base);
}

static void
test_second_spool_on_same_dir_is_refused(void **state)
{
	char dir[] = "/tmp/postern-test-spool-XXXXXX", err[256];
	struct event_base *base = event_base_new();
	struct seen seen = {0};
	struct spool *a, *b;

	(void)state;
	assert_non_null(mkdtemp(dir));
	a = spool_open(dir, 0, base, on_recover, &seen, err, sizeof err);
	assert_non_null(a);
	b = spool_open(dir, 0, base, on_recover, &seen, err, sizeof err);
	assert_null(b);
	assert_non_null(strstr(err, "in use by another postern"));
	spool_close(a);
	event_base_free(base);
}

/*
 * Done records wake the committer without a commit behind them: they
 * reach the segment's .done file while the spool stays open, and a
 * restart then finds nothing to deliver and removes the segment.
 */
static void
test_done_records_are_written_without_a_new_commit(void **state)
{
	char dir[] = "/tmp/postern-test-spool-XXXXXX", err[256], path[512];
	struct event_base *base;
	struct seen seen = {0};
	struct spool *sp;
	struct stat st = {0};

	(void)state;
	assert_non_null(mkdtemp(dir));
	base = event_base_new();
	sp = spool_open(dir, 0, base, on_recover, &seen, err, sizeof err);
	assert_non_null(sp);
	for (int i = 0; i < N_MSGS; i++)
		spool_commit(sp, make_msg(sp, i), on_commit, &seen);
	while (seen.committed + seen.failed < N_MSGS)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(seen.committed, N_MSGS);
	for (size_t i = 0; i < seen.n; i++) {
		spool_done(sp, seen.v[i], 0);
		spool_done(sp, seen.v[i], 1);
	}
	snprintf(path, sizeof path, "%s/%08u.done", dir,
		 1u /* the first segment */);
	for (int tries = 0; tries < 200; tries++) {
		if (stat(path, &st) == 0 && st.st_size == N_MSGS * 2 * 16)
			break;
		usleep(10 * 1000);
	}
	assert_int_equal(st.st_size, N_MSGS * 2 * 16);
	spool_close(sp);
	clear(&seen);

	sp = spool_open(dir, 0, base, on_recover, &seen, err, sizeof err);
	assert_non_null(sp);
	assert_int_equal(seen.n, 0);
	assert_int_not_equal(stat(path, &st), 0);
	spool_close(sp);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
		test_committed_messages_survive_reopen_and_done_ones_do_not),
	    cmocka_unit_test(
		test_torn_tail_is_dropped_and_earlier_records_kept),
	    cmocka_unit_test(
		test_zero_tail_of_a_crashed_segment_is_trimmed_and_records_kept),
	    cmocka_unit_test(test_second_spool_on_same_dir_is_refused),
	    cmocka_unit_test(
		test_done_records_are_written_without_a_new_commit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

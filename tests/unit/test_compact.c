/*
 * test_compact.c - the spool's disk use follows the queue, not the
 * traffic (src/spool/compact.c): one message that is never delivered
 * does not keep the segments around it, whatever arrives after it; and
 * a message found twice after a crash in the middle of a compaction is
 * delivered once, with what was done in either copy.
 */
#include <dirent.h>
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

#include "spool/record.h"
#include "spool/spool.h"
#include "util/log.h"

#define SEGMENT (64u << 10) /* the smallest [spool] segment_size */
#define TEXT 1000	    /* octets of text per message */
#define ROUNDS 60
#define PER_ROUND 10

struct seen {
	struct msg **v;
	size_t n, cap;
	int committed, failed;
};

static void
push(struct seen *s, struct msg *m)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = realloc(s->v, s->cap * sizeof *s->v);
		assert_non_null(s->v);
	}
	s->v[s->n++] = m;
}

static void
on_recover(void *arg, struct msg *m)
{
	push(arg, m);
}

static void
on_commit(void *arg, struct msg *m, int err)
{
	struct seen *s = arg;

	if (err == 0)
		s->committed++;
	else
		s->failed++;
	push(s, m);
}

static void
clear(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		msg_free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof *s);
}

/* A message of n_rcpts local recipients and TEXT octets of text. */
static struct msg *
make_msg(struct spool *sp, int i, size_t n_rcpts)
{
	struct msg *m = msg_new();
	char rcpt[64];
	size_t len;

	msg_set_qid(m, spool_new_qid(sp));
	m->arrival = 1700000000 + i;
	free(m->sender);
	m->sender = strdup("a@x.test");
	for (size_t k = 0; k < n_rcpts; k++) {
		snprintf(rcpt, sizeof rcpt, "r%zu@example.test", k);
		msg_add_rcpt(m, rcpt, rcpt, MSG_ROUTE_LOCAL);
	}
	m->data = malloc(TEXT + 1);
	len = (size_t)snprintf(m->data, TEXT + 1, "Subject: %d\r\n\r\n", i);
	memset(m->data + len, 'a' + i % 26, TEXT - len - 2);
	memcpy(m->data + TEXT - 2, "\r\n", 2);
	m->data_len = TEXT;
	return m;
}

/* Opens the spool in dir with the small segment size. */
static struct spool *
open_spool(const char *dir, struct event_base *base, struct seen *seen)
{
	char err[256];
	struct spool *sp = spool_open(dir, SEGMENT, base, on_recover, seen,
				      err, sizeof err);

	assert_non_null(sp);
	return sp;
}

/* Commits the messages and waits for their callbacks. */
static void
commit_all(struct event_base *base, struct spool *sp, struct seen *s,
	   struct msg **v, size_t n)
{
	int want = s->committed + (int)n;

	for (size_t i = 0; i < n; i++)
		spool_commit(sp, v[i], on_commit, s);
	while (s->committed + s->failed < want)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(s->committed, want);
}

/* Octets of the spool's segment and .done files. */
static uint64_t
disk_use(const char *dir, int *n_logs)
{
	char path[512];
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	uint64_t sum = 0;

	assert_non_null(d);
	*n_logs = 0;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len < 5 || (strcmp(de->d_name + len - 4, ".log") != 0 &&
				strcmp(de->d_name + len - 5, ".done") != 0))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0)
			sum += (uint64_t)st.st_size;
		*n_logs += strcmp(de->d_name + len - 4, ".log") == 0;
	}
	closedir(d);
	return sum;
}

/* Waits until the committer's figures show `live` octets needed. */
static void
wait_live(struct spool *sp, uint64_t live)
{
	struct spool_stats st;

	for (int tries = 0; tries < 500; tries++) {
		spool_stats(sp, &st);
		if (st.live == live)
			return;
		usleep(10 * 1000);
	}
	spool_stats(sp, &st);
	assert_int_equal(st.live, live);
}

/*
 * A temporary spool directory in dir, and a loop that may be woken from
 * the committer thread.
 */
static struct event_base *
setup(char *dir)
{
	struct event_base *base;

	assert_non_null(mkdtemp(dir));
	evthread_use_pthreads();
	base = event_base_new();
	assert_non_null(base);
	return base;
}

/*
 * One round of PER_ROUND messages of n_rcpts recipients numbered from
 * first, committed and then delivered, until only `live` octets are
 * needed again.
 */
static void
round_delivered(struct event_base *base, struct spool *sp, struct seen *s,
		int first, size_t n_rcpts, uint64_t live)
{
	struct msg *batch[PER_ROUND];
	size_t from = s->n;

	for (int i = 0; i < PER_ROUND; i++)
		batch[i] = make_msg(sp, first + i, n_rcpts);
	commit_all(base, sp, s, batch, PER_ROUND);
	for (size_t i = from; i < s->n; i++)
		for (size_t k = 0; k < n_rcpts; k++)
			spool_done(sp, s->v[i], k);
	wait_live(sp, live);
}

/* The octets of one record of make_msg's shape: header, envelope, text. */
static uint64_t
record_size(const struct msg *m)
{
	size_t env_len;
	char *env = msg_envelope_format(m, &env_len);

	free(env);
	return 32 + env_len + m->data_len;
}

/*
 * One message to a destination that never answers, then about nine
 * segments' worth of mail delivered at once: at every step the files
 * hold no more than the pinned message + one segment + the batch, and
 * a restart finds the pinned message once, intact.
 */
static void
test_one_waiting_message_does_not_pin_its_segment(void **state)
{
	char dir[] = "/tmp/postern-test-compact-XXXXXX";
	struct event_base *base;
	struct seen seen = {0};
	struct spool_stats st;
	struct spool *sp;
	struct msg *pinned;
	uint64_t pinned_qid, pinned_len, most = 0;
	int n_logs;

	(void)state;
	base = setup(dir);
	sp = open_spool(dir, base, &seen);
	pinned = make_msg(sp, 0, 1);
	pinned_qid = pinned->qid;
	pinned_len = record_size(pinned);
	commit_all(base, sp, &seen, &pinned, 1);
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t use;
		round_delivered(base, sp, &seen, 1 + r * PER_ROUND, 2,
				pinned_len);
		use = disk_use(dir, &n_logs);
		most = use > most ? use : most;
		assert_true(use <= pinned_len + SEGMENT +
				       PER_ROUND * record_size(seen.v[1]));
	}
	spool_stats(sp, &st);
	assert_true(st.copied > 0); /* it was compacted, not just rolled */
	assert_true(st.disk <= pinned_len + SEGMENT);
	print_message("  %d x %u octets through a %u-octet segment size: "
		      "at most %llu on disk, %llu copied\n",
		      ROUNDS * PER_ROUND, TEXT, SEGMENT,
		      (unsigned long long)most,
		      (unsigned long long)st.copied);
	spool_close(sp);
	clear(&seen);

	sp = open_spool(dir, base, &seen);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.v[0]->qid, pinned_qid);
	assert_int_equal(seen.v[0]->data_len, TEXT);
	assert_memory_equal(seen.v[0]->data, "Subject: 0\r\n\r\naaaa", 18);
	assert_false(seen.v[0]->rcpts[0].is_done);
	spool_close(sp);
	clear(&seen);
	event_base_free(base);
}

/* Copies dir/name to dir/name.keep, or back. */
static void
copy_file(const char *dir, const char *from, const char *to)
{
	char a[512], b[512], buf[1 << 16];
	ssize_t r;
	int in, out;

	snprintf(a, sizeof a, "%s/%s", dir, from);
	snprintf(b, sizeof b, "%s/%s", dir, to);
	in = open(a, O_RDONLY);
	assert_true(in >= 0);
	out = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(out >= 0);
	while ((r = read(in, buf, sizeof buf)) > 0)
		assert_int_equal(write(out, buf, (size_t)r), r);
	close(in);
	close(out);
}

/* Rewrites every .done file of dir but `keep` without qid's record idx. */
static void
drop_done(const char *dir, const char *keep, uint64_t qid, uint32_t idx)
{
	struct rec {
		uint64_t qid;
		uint32_t idx, crc;
	} v[4096];
	char path[512];
	DIR *d = opendir(dir);
	struct dirent *de;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name), n = 0, k = 0;
		ssize_t r;
		int fd;
		if (len < 5 || strcmp(de->d_name + len - 5, ".done") != 0 ||
		    strcmp(de->d_name, keep) == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		fd = open(path, O_RDWR);
		assert_true(fd >= 0);
		r = read(fd, v, sizeof v);
		assert_true(r >= 0 && (size_t)r < sizeof v);
		n = (size_t)r / sizeof v[0];
		for (size_t i = 0; i < n; i++)
			if (v[i].qid != qid || v[i].idx != idx)
				v[k++] = v[i];
		assert_int_equal(ftruncate(fd, 0), 0);
		assert_int_equal(pwrite(fd, v, k * sizeof v[0], 0),
				 (ssize_t)(k * sizeof v[0]));
		close(fd);
	}
	closedir(d);
}

/*
 * A crash after the copies were synced and before the old segment was
 * removed leaves a message in two segments, and the copy's done records
 * may not have reached the disk.  Recovery hands it over once, with the
 * recipients done in either copy done, writes down what only the old
 * copy knew, and removes the old segment: a second restart still knows.
 */
static void
test_message_in_two_segments_is_recovered_once(void **state)
{
	char dir[] = "/tmp/postern-test-compact-XXXXXX", path[512];
	struct event_base *base;
	struct seen seen = {0};
	struct spool *sp;
	struct msg *three;
	uint64_t qid, three_len;
	struct stat st;
	int n_logs;

	(void)state;
	base = setup(dir);
	sp = open_spool(dir, base, &seen);
	three = make_msg(sp, 0, 3);
	qid = three->qid;
	three_len = record_size(three);
	commit_all(base, sp, &seen, &three, 1);
	spool_done(sp, seen.v[0], 0);
	/* Two rounds of delivered mail: segment 1 is not full yet. */
	for (int r = 0; r < 6; r++) {
		round_delivered(base, sp, &seen, 1 + r * PER_ROUND, 1,
				three_len);
		if (r == 0) {
			/* Segment 1 (not full yet) as a crash during its
			 * compaction would leave it. */
			copy_file(dir, "00000001.log", "saved-log");
			copy_file(dir, "00000001.done", "saved-done");
		}
	}
	snprintf(path, sizeof path, "%s/00000001.log", dir);
	assert_int_not_equal(stat(path, &st), 0); /* compacted away */
	spool_done(sp, seen.v[0], 1);		    /* in the copy only */
	spool_close(sp);
	clear(&seen);
	copy_file(dir, "saved-log", "00000001.log");
	copy_file(dir, "saved-done", "00000001.done");
	/* Recipient 0 is done in the old copy only. */
	drop_done(dir, "00000001.done", qid, 0);

	for (int restart = 0; restart < 2; restart++) {
		sp = open_spool(dir, base, &seen);
		assert_int_equal(seen.n, 1);
		assert_int_equal(seen.v[0]->qid, qid);
		assert_true(seen.v[0]->rcpts[0].is_done);
		assert_true(seen.v[0]->rcpts[1].is_done);
		assert_false(seen.v[0]->rcpts[2].is_done);
		/* The old copy went. */
		assert_int_not_equal(stat(path, &st), 0);
		spool_close(sp);
		clear(&seen);
	}
	(void)disk_use(dir, &n_logs);
	assert_int_equal(n_logs, 1);
	event_base_free(base);
}

/*
 * Compaction into a segment opened for it (the one being written was
 * removed at an idle tick): the zeros written ahead for the next commits
 * start after the copies, never over them.
 */
static void
test_copies_into_a_fresh_segment_survive_later_commits(void **state)
{
	char dir[] = "/tmp/postern-test-compact-XXXXXX", path[512];
	struct event_base *base;
	struct seen seen = {0};
	struct msg *batch[PER_ROUND + 5];
	struct spool *sp;
	struct stat st;
	uint64_t keep_qid, len;
	size_t n_first;

	(void)state;
	base = setup(dir);
	sp = open_spool(dir, base, &seen);
	/* Segment 1: fifteen messages waiting, past its roll-over point. */
	for (int i = 0; i < PER_ROUND + 5; i++)
		batch[i] = make_msg(sp, i, 1);
	len = record_size(batch[0]);
	commit_all(base, sp, &seen, batch, PER_ROUND + 5);
	n_first = seen.n;
	keep_qid = seen.v[0]->qid;
	/* Segment 2: delivered at once, then removed at an idle tick. */
	round_delivered(base, sp, &seen, 100, 1, (uint64_t)n_first * len);
	snprintf(path, sizeof path, "%s/00000002.log", dir);
	for (int tries = 0; tries < 500 && stat(path, &st) == 0; tries++)
		usleep(10 * 1000);
	assert_int_not_equal(stat(path, &st), 0);
	/* All of segment 1 but one delivered: compacted into segment 3. */
	for (size_t i = 1; i < n_first; i++)
		spool_done(sp, seen.v[i], 0);
	wait_live(sp, len);
	snprintf(path, sizeof path, "%s/00000001.log", dir);
	for (int tries = 0; tries < 500 && stat(path, &st) == 0; tries++)
		usleep(10 * 1000);
	assert_int_not_equal(stat(path, &st), 0);
	for (int i = 0; i < 3; i++)
		batch[i] = make_msg(sp, 200 + i, 1);
	commit_all(base, sp, &seen, batch, 3);
	spool_close(sp);
	clear(&seen);

	sp = open_spool(dir, base, &seen);
	assert_int_equal(seen.n, 4);
	assert_int_equal(seen.v[0]->qid, keep_qid);
	spool_close(sp);
	clear(&seen);
	event_base_free(base);
}

static void
count_record(void *arg, const char *buf, size_t off, size_t len,
	     const struct spool_rec_hdr *h)
{
	(void)buf;
	(void)off;
	(void)len;
	(void)h;
	(*(int *)arg)++;
}

/* A segment of length 0 (a kill -9 right after it was made) is mapped as
 * no buffer at all: nothing in it, and not torn. */
static void
test_empty_segment_scans_to_nothing(void **state)
{
	bool is_torn = true;
	int n = 0;

	(void)state;
	assert_int_equal(spool_rec_scan(NULL, 0, count_record, &n, &is_torn),
			 0);
	assert_int_equal(n, 0);
	assert_false(is_torn);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
		test_one_waiting_message_does_not_pin_its_segment),
	    cmocka_unit_test(test_message_in_two_segments_is_recovered_once),
	    cmocka_unit_test(test_empty_segment_scans_to_nothing),
	    cmocka_unit_test(
		test_copies_into_a_fresh_segment_survive_later_commits),
	};
	log_set_level(LOG_WARN); /* not a line per compaction */
	return cmocka_run_group_tests(tests, NULL, NULL);
}

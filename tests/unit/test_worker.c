/*
 * test_worker.c - util/worker.c: jobs run in the order queued, a whole
 * queue per batch (the group commit depends on it) or batch_max at most;
 * results reach ops->done on the loop thread, in order; stopping runs
 * what is queued and what done callbacks hand back; requeued jobs wait
 * for their time or a new job; a kick runs an empty batch; idle fires.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "util/worker.h"

#define N_JOBS 40
#define MAX_BATCHES (N_JOBS * 2)

struct job {
	struct worker_job wj;
	int id;
	int runs;
};

/* What a test's worker saw, shared by its two threads. */
struct rec {
	struct worker *w;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool is_gate_closed; /* run waits while set */
	bool is_in_run;	     /* run has begun its first batch */
	int ran[N_JOBS * 2];
	int n_ran;
	int batch_size[MAX_BATCHES];
	int n_batches;
	int n_empty; /* batches of a kick */
	int done[N_JOBS * 2];
	int n_done;
	int n_idle;
	bool is_done_off_loop;
	pthread_t loop;
	time_t requeue_at; /* run requeues every job once, for then */
	int settle_from;   /* done of job < 0 hands back job -id */
	struct job extra[N_JOBS];
	bool is_submit_in_done; /* done tries to queue another job */
	int n_refused;
};

static void
rec_init(struct rec *r)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->loop = pthread_self();
}

static void
rec_destroy(struct rec *r)
{
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}

static struct job *
job_new(int id)
{
	struct job *j = calloc(1, sizeof *j);

	assert_non_null(j);
	j->id = id;
	return j;
}

static void
rec_run(void *arg, struct worker_job *batch)
{
	struct rec *r = arg;
	struct worker_job *again = NULL, **again_tail = &again;
	int n = 0;

	pthread_mutex_lock(&r->mu);
	r->is_in_run = true;
	pthread_cond_broadcast(&r->cv);
	while (r->is_gate_closed)
		pthread_cond_wait(&r->cv, &r->mu);
	for (struct worker_job *wj = batch; wj; wj = wj->next, n++)
		r->ran[r->n_ran++] = ((struct job *)wj)->id;
	if (batch == NULL)
		r->n_empty++;
	else
		r->batch_size[r->n_batches++] = n;
	pthread_mutex_unlock(&r->mu);
	while (batch) {
		struct worker_job *next = batch->next;
		struct job *j = (struct job *)batch;
		batch->next = NULL;
		if (r->requeue_at && j->runs++ == 0) {
			*again_tail = batch;
			again_tail = &batch->next;
		} else {
			worker_hand_back(r->w, batch);
		}
		batch = next;
	}
	if (again)
		worker_requeue(r->w, again, r->requeue_at);
}

static void
rec_done(void *arg, struct worker_job *wj)
{
	struct rec *r = arg;
	struct job *j = (struct job *)wj;

	if (!pthread_equal(pthread_self(), r->loop))
		r->is_done_off_loop = true;
	r->done[r->n_done++] = j->id;
	if (j->id < r->settle_from) {
		/* A result known at once, handed back from the loop. */
		struct job *x = &r->extra[r->n_done];
		x->id = 1000 + j->id;
		worker_hand_back(r->w, &x->wj);
	}
	if (r->is_submit_in_done && !worker_submit(r->w, &r->extra[0].wj))
		r->n_refused++;
	if (j->id < 1000)
		free(j);
}

static void
rec_idle(void *arg)
{
	struct rec *r = arg;

	pthread_mutex_lock(&r->mu);
	r->n_idle++;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static const struct worker_ops all_ops = {
    .run = rec_run,
    .done = rec_done,
};

static const struct worker_ops max_ops = {
    .run = rec_run,
    .done = rec_done,
    .batch_max = 7,
};

static const struct worker_ops idle_ops = {
    .run = rec_run,
    .done = rec_done,
    .idle = rec_idle,
    .idle_seconds = 1,
};

/* Runs the loop until n results arrived. */
static void
loop_until_done(struct event_base *base, struct rec *r, int n)
{
	while (r->n_done < n)
		event_base_loop(base, EVLOOP_ONCE);
}

/* Holds the worker inside its first batch while more jobs queue. */
static void
gate_hold_first(struct rec *r)
{
	pthread_mutex_lock(&r->mu);
	while (!r->is_in_run)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
}

static void
gate_open(struct rec *r)
{
	pthread_mutex_lock(&r->mu);
	r->is_gate_closed = false;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void
test_jobs_run_in_order_and_whole_queue_is_one_batch(void **state)
{
	struct event_base *base = *state;
	struct rec r;

	rec_init(&r);
	r.is_gate_closed = true;
	r.w = worker_start(&all_ops, &r, base);
	assert_non_null(r.w);
	assert_true(worker_submit(r.w, &job_new(0)->wj));
	gate_hold_first(&r);
	for (int i = 1; i < N_JOBS; i++)
		assert_true(worker_submit(r.w, &job_new(i)->wj));
	gate_open(&r);
	loop_until_done(base, &r, N_JOBS);
	/* One batch for the first job, one for all that queued meanwhile. */
	assert_int_equal(r.n_batches, 2);
	assert_int_equal(r.batch_size[0], 1);
	assert_int_equal(r.batch_size[1], N_JOBS - 1);
	for (int i = 0; i < N_JOBS; i++) {
		assert_int_equal(r.ran[i], i);
		assert_int_equal(r.done[i], i);
	}
	assert_false(r.is_done_off_loop);
	assert_null(worker_stop(r.w));
	rec_destroy(&r);
}

static void
test_batch_max_caps_a_batch(void **state)
{
	struct event_base *base = *state;
	struct rec r;

	rec_init(&r);
	r.is_gate_closed = true;
	r.w = worker_start(&max_ops, &r, base);
	assert_true(worker_submit(r.w, &job_new(0)->wj));
	gate_hold_first(&r);
	for (int i = 1; i < N_JOBS; i++)
		assert_true(worker_submit(r.w, &job_new(i)->wj));
	gate_open(&r);
	loop_until_done(base, &r, N_JOBS);
	for (int i = 0; i < r.n_batches; i++)
		assert_true(r.batch_size[i] <= 7);
	assert_int_equal(r.n_batches, 1 + (N_JOBS - 1 + 6) / 7);
	for (int i = 0; i < N_JOBS; i++)
		assert_int_equal(r.done[i], i);
	assert_null(worker_stop(r.w));
	rec_destroy(&r);
}

static void
test_stop_runs_queued_jobs_and_what_done_hands_back(void **state)
{
	struct event_base *base = *state;
	struct rec r;

	rec_init(&r);
	r.is_gate_closed = true;
	r.settle_from = 3; /* jobs 0, 1, 2 settle one more each */
	r.w = worker_start(&all_ops, &r, base);
	for (int i = 0; i < N_JOBS; i++)
		assert_true(worker_submit(r.w, &job_new(i)->wj));
	gate_hold_first(&r);
	gate_open(&r);
	/* No loop turn: every result arrives inside worker_stop. */
	assert_null(worker_stop(r.w));
	assert_int_equal(r.n_ran, N_JOBS);
	assert_int_equal(r.n_done, N_JOBS + 3);
	for (int i = 0; i < N_JOBS; i++)
		assert_int_equal(r.done[i], i);
	assert_int_equal(r.done[N_JOBS], 1000);
	assert_int_equal(r.done[N_JOBS + 2], 1002);
	assert_false(r.is_done_off_loop);
	rec_destroy(&r);
}

static void
test_requeued_jobs_wait_and_are_left_at_stop(void **state)
{
	struct event_base *base = *state;
	struct worker_job *left;
	struct rec r;
	int n = 0;

	rec_init(&r);
	r.requeue_at = time(NULL) + 3600;
	r.w = worker_start(&all_ops, &r, base);
	for (int i = 0; i < 3; i++)
		assert_true(worker_submit(r.w, &job_new(i)->wj));
	pthread_mutex_lock(&r.mu);
	while (r.n_ran < 3)
		pthread_cond_wait(&r.cv, &r.mu);
	pthread_mutex_unlock(&r.mu);
	usleep(50 * 1000);
	pthread_mutex_lock(&r.mu);
	assert_int_equal(r.n_ran, 3); /* not again before their time */
	pthread_mutex_unlock(&r.mu);
	left = worker_stop(r.w);
	for (struct worker_job *wj = left; wj; n++) {
		struct worker_job *next = wj->next;
		assert_int_equal(((struct job *)wj)->id, n);
		free(wj);
		wj = next;
	}
	assert_int_equal(n, 3);
	assert_int_equal(r.n_done, 0);
	rec_destroy(&r);
}

static void
test_requeued_jobs_run_again_with_a_new_job(void **state)
{
	struct event_base *base = *state;
	struct rec r;

	rec_init(&r);
	r.requeue_at = time(NULL) + 3600;
	r.w = worker_start(&all_ops, &r, base);
	assert_true(worker_submit(r.w, &job_new(0)->wj));
	pthread_mutex_lock(&r.mu);
	while (r.n_ran < 1)
		pthread_cond_wait(&r.cv, &r.mu);
	pthread_mutex_unlock(&r.mu);
	usleep(20 * 1000);
	assert_true(worker_submit(r.w, &job_new(1)->wj));
	/* Job 0 (its second run) and job 1 (requeued once) ... */
	loop_until_done(base, &r, 1);
	assert_int_equal(r.done[0], 0);
	assert_int_equal(r.ran[1], 0); /* requeued ahead of the new one */
	assert_int_equal(r.ran[2], 1);
	/* ... and job 1 is left, its time not come. */
	free(worker_stop(r.w));
	rec_destroy(&r);
}

static void
test_kick_runs_an_empty_batch_and_idle_fires(void **state)
{
	struct event_base *base = *state;
	struct rec r;

	rec_init(&r);
	r.w = worker_start(&idle_ops, &r, base);
	worker_kick(r.w);
	pthread_mutex_lock(&r.mu);
	while (r.n_empty < 1)
		pthread_cond_wait(&r.cv, &r.mu);
	while (r.n_idle < 1)
		pthread_cond_wait(&r.cv, &r.mu);
	pthread_mutex_unlock(&r.mu);
	assert_int_equal(r.n_batches, 0);
	assert_null(worker_stop(r.w));
	assert_null(worker_stop(NULL));
	rec_destroy(&r);
}

static void
test_submit_after_stop_began_is_refused(void **state)
{
	struct event_base *base = *state;
	struct rec r;

	rec_init(&r);
	r.w = worker_start(&all_ops, &r, base);
	r.is_submit_in_done = true;
	assert_true(worker_submit(r.w, &job_new(0)->wj));
	/* Job 0's result arrives inside worker_stop, whose callback's
	 * submit is refused (the job stays the caller's). */
	assert_null(worker_stop(r.w));
	assert_int_equal(r.n_done, 1);
	assert_int_equal(r.n_refused, 1);
	rec_destroy(&r);
}

static int
setup(void **state)
{
	*state = event_base_new();
	return *state ? 0 : -1;
}

static int
teardown(void **state)
{
	event_base_free(*state);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
		test_jobs_run_in_order_and_whole_queue_is_one_batch),
	    cmocka_unit_test(test_batch_max_caps_a_batch),
	    cmocka_unit_test(
		test_stop_runs_queued_jobs_and_what_done_hands_back),
	    cmocka_unit_test(test_requeued_jobs_wait_and_are_left_at_stop),
	    cmocka_unit_test(test_requeued_jobs_run_again_with_a_new_job),
	    cmocka_unit_test(test_kick_runs_an_empty_batch_and_idle_fires),
	    cmocka_unit_test(test_submit_after_stop_began_is_refused),
	};

	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, setup, teardown);
}

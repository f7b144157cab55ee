/*
 * worker.c - one worker thread with a job queue; results back to the
 * event loop through one activated event.
 *
 * Used by the spool's committer (spool/commit.c), the delivery worker
 * (deliver/deliver.c) and the greylist store (policy/greylist.c): the
 * loop thread never blocks, the work that may is done here.
 *
 * Promises: jobs run in the order queued, a batch at a time, on the one
 * thread; every job handed back reaches ops->done exactly once, on the
 * loop thread, after worker_hand_back() returned, at the latest inside
 * worker_stop().  The thread waits on a condition variable, with a
 * deadline only for ops->idle or for requeued jobs (CLOCK_REALTIME, as
 * time(NULL)).  Stopping runs what is queued first: an accepted job is
 * not dropped, bar requeued ones still waiting for their time, which
 * worker_stop() returns.
 *
 * Left to the owner: what a job is, its memory, and any work kept beside
 * the queue (it calls worker_kick()).  libevent must have been told to
 * use pthreads (evthread_use_pthreads) for event_active from here.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "util/worker.h"

struct worker {
	const struct worker_ops *ops;
	void *arg;
	struct event *ev_done;
	pthread_t thread;

	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv;
	bool is_stopping;
	bool is_kicked;
	bool is_fresh;	 /* jobs were queued since the last batch */
	time_t retry_at; /* requeued jobs wait until then; 0: none */
	struct worker_job *queue, **queue_tail;
	struct worker_job *done, **done_tail;
};

/* The last job of a non-empty list. */
static struct worker_job *
list_last(struct worker_job *jobs)
{
	while (jobs->next)
		jobs = jobs->next;
	return jobs;
}

/* True when the queue has a batch to run now (mutex held). */
static bool
is_due(const struct worker *w)
{
	return w->queue != NULL &&
	       (w->is_fresh || w->retry_at == 0 || time(NULL) >= w->retry_at);
}

/* Detaches the next batch (mutex held, queue not empty). */
static struct worker_job *
take_batch(struct worker *w)
{
	struct worker_job *jobs = w->queue, *j = jobs;
	size_t max = w->ops->batch_max;

	if (max == 0) {
		w->queue = NULL;
	} else {
		for (size_t n = 1; j->next && n < max; n++)
			j = j->next;
		w->queue = j->next;
		j->next = NULL;
	}
	if (w->queue == NULL) {
		w->queue_tail = &w->queue;
		w->is_fresh = false;
	}
	w->retry_at = 0;
	return jobs;
}

/*
 * Waits for work (mutex held): until a job, a kick or stop; until
 * retry_at for requeued jobs; until idle_seconds, then runs ops->idle.
 */
static void
wait_for_work(struct worker *w)
{
	struct timespec ts = {0, 0};
	bool is_idle_wait = false;
	int r;

	if (w->queue != NULL) {
		ts.tv_sec = w->retry_at;
	} else if (w->ops->idle != NULL) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)w->ops->idle_seconds;
		is_idle_wait = true;
	}
	if (ts.tv_sec == 0) {
		pthread_cond_wait(&w->cv, &w->mu);
		return;
	}
	r = pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	if (r == ETIMEDOUT && is_idle_wait && w->queue == NULL &&
	    !w->is_kicked) {
		pthread_mutex_unlock(&w->mu);
		w->ops->idle(w->arg);
		pthread_mutex_lock(&w->mu);
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	if (w->ops->thread_start)
		w->ops->thread_start(w->arg);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct worker_job *batch = NULL;
		bool has_batch = is_due(w);

		if (!has_batch && !w->is_kicked) {
			if (w->is_stopping)
				break;
			wait_for_work(w);
			continue;
		}
		if (has_batch)
			batch = take_batch(w);
		w->is_kicked = false;
		pthread_mutex_unlock(&w->mu);
		w->ops->run(w->arg, batch);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	if (w->ops->thread_exit)
		w->ops->thread_exit(w->arg);
	return NULL;
}

/* Runs ops->done for what was handed back so far (loop thread). */
static void
run_done(struct worker *w)
{
	struct worker_job *jobs;

	pthread_mutex_lock(&w->mu);
	jobs = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	pthread_mutex_unlock(&w->mu);
	while (jobs) {
		struct worker_job *next = jobs->next;
		w->ops->done(w->arg, jobs);
		jobs = next;
	}
}

static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_done(arg);
}

static void
worker_free(struct worker *w)
{
	if (w->ev_done)
		event_free(w->ev_done);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}

struct worker *
worker_start(const struct worker_ops *ops, void *arg, struct event_base *base)
{
	struct worker *w = calloc(1, sizeof *w);

	if (w == NULL)
		return NULL;
	w->ops = ops;
	w->arg = arg;
	w->queue_tail = &w->queue;
	w->done_tail = &w->done;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (ops->done != NULL &&
	    (w->ev_done = event_new(base, -1, 0, on_done, w)) == NULL) {
		worker_free(w);
		return NULL;
	}
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		worker_free(w);
		return NULL;
	}
	return w;
}

bool
worker_submit(struct worker *w, struct worker_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->is_stopping) {
		pthread_mutex_unlock(&w->mu);
		return false;
	}
	*w->queue_tail = job;
	w->queue_tail = &job->next;
	w->is_fresh = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return true;
}

void
worker_kick(struct worker *w)
{
	pthread_mutex_lock(&w->mu);
	w->is_kicked = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void
worker_hand_back(struct worker *w, struct worker_job *jobs)
{
	struct worker_job *last;

	if (jobs == NULL)
		return;
	last = list_last(jobs);
	pthread_mutex_lock(&w->mu);
	*w->done_tail = jobs;
	w->done_tail = &last->next;
	event_active(w->ev_done, EV_READ, 0);
	pthread_mutex_unlock(&w->mu);
}

void
worker_requeue(struct worker *w, struct worker_job *jobs, time_t at)
{
	struct worker_job *last;

	if (jobs == NULL)
		return;
	last = list_last(jobs);
	pthread_mutex_lock(&w->mu);
	last->next = w->queue;
	if (w->queue == NULL)
		w->queue_tail = &last->next;
	w->queue = jobs;
	if (w->retry_at == 0 || at < w->retry_at)
		w->retry_at = at;
	pthread_mutex_unlock(&w->mu);
}

struct worker_job *
worker_stop(struct worker *w)
{
	struct worker_job *left;

	if (w == NULL)
		return NULL;
	pthread_mutex_lock(&w->mu);
	w->is_stopping = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	/* Callbacks may hand back more (results settled at once). */
	while (w->ops->done != NULL && w->done != NULL)
		run_done(w);
	left = w->queue;
	worker_free(w);
	return left;
}

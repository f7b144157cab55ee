/*
 * worker.h - one worker thread with a job queue, for work the event loop
 * must not wait on (fsync, file writes, a database).
 *
 * The owner embeds a struct worker_job as the first member of its own job
 * and queues it with worker_submit().  The thread takes every job queued
 * (or up to batch_max) in one go and passes that batch, in queue order, to
 * ops->run: a batch per wake-up is what lets the spool fsync many messages
 * at once.  Results go back to the event loop with worker_hand_back(): one
 * event, activated with event_active(), runs ops->done for each job on the
 * loop thread, in the order they were handed back.
 *
 *	static const struct worker_ops ops = {.run = my_run, .done = my_done};
 *	struct worker *w = worker_start(&ops, me, base);
 *	worker_submit(w, &job->wj);
 *	...
 *	worker_stop(w);
 */
#ifndef POSTERN_UTIL_WORKER_H
#define POSTERN_UTIL_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <event2/event.h>

/* The link of a queued job; the first member of the owner's job struct. */
struct worker_job {
	struct worker_job *next;
};

struct worker;

struct worker_ops {
	/*
	 * Worker thread: runs a batch (a NULL-terminated list, queue order;
	 * NULL when the thread was only woken by worker_kick).  The jobs are
	 * the owner's again: it hands them back, requeues or frees them.
	 */
	void (*run)(void *arg, struct worker_job *batch);
	/* Loop thread: one job handed back; the owner's again.  May be NULL
	 * when nothing is ever handed back (then base may be NULL). */
	void (*done)(void *arg, struct worker_job *job);
	/* Worker thread: nothing to do for idle_seconds.  May be NULL. */
	void (*idle)(void *arg);
	/* Worker thread: first and last thing it does.  May be NULL. */
	void (*thread_start)(void *arg);
	void (*thread_exit)(void *arg);
	unsigned idle_seconds; /* with idle: how long without work */
	size_t batch_max;      /* jobs per batch at most; 0 for all queued */
};

/*
 * Starts the thread; ops (static) and arg are borrowed for its life,
 * results are reported on base.  NULL when out of memory or when no
 * thread could be made.
 */
struct worker *worker_start(const struct worker_ops *ops, void *arg,
			    struct event_base *base);

/*
 * Queues job for a coming batch and wakes the thread.  Any thread.  False,
 * job not taken, once worker_stop() has begun.
 */
bool worker_submit(struct worker *w, struct worker_job *job);

/*
 * Wakes the thread for a run with an empty batch (work the owner keeps
 * elsewhere); a run (of a batch or not) begins after each call.  Any
 * thread.
 */
void worker_kick(struct worker *w);

/*
 * Hands the list jobs back to the loop, where ops->done runs for each.
 * Any thread, the loop's included (a result known at once still arrives
 * after the caller returns).  NULL is a no-op.
 */
void worker_hand_back(struct worker *w, struct worker_job *jobs);

/*
 * From ops->run: puts jobs back at the head of the queue.  They run again
 * when a new job is queued, or from time at (time(NULL) seconds).  NULL
 * is a no-op.
 */
void worker_requeue(struct worker *w, struct worker_job *jobs, time_t at);

/*
 * Lets the thread run what is queued (requeued jobs whose time has not
 * come excepted), joins it, then runs ops->done for everything handed
 * back, also for what those callbacks hand back, and frees w.  Returns
 * the jobs left in the queue, the caller's to free.  Loop thread;
 * worker_stop(NULL) is a no-op.
 */
struct worker_job *worker_stop(struct worker *w);

#endif

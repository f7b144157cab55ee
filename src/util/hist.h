/*
 * hist.h - a fixed-bucket latency histogram, the shape Prometheus exposes
 * (util/prom.c writes it); no mail knowledge.
 *
 *	struct hist h;
 *	hist_init(&h, HIST_FSYNC);
 *	hist_observe(&h, seconds);
 *	...
 *	prom_hist(fp, "postern_spool_fsync_seconds", NULL, 0, &h);
 *
 * No locking inside.  The owner keeps one struct hist per thread (the loop
 * thread's own, one per worker) and sums them at scrape time with
 * hist_merge() under whatever hand-off the threads already use (the
 * worker's lock, or a copy it sends to the loop), or guards a shared one
 * with its own lock.  Reading a hist while another thread observes into it
 * is a data race, not merely a stale value.
 */
#ifndef POSTERN_UTIL_HIST_H
#define POSTERN_UTIL_HIST_H

#include <stddef.h>
#include <stdint.h>

/* Most finite buckets a histogram may have; the +Inf bucket is extra. */
#define HIST_BUCKETS_MAX 24

/*
 * A bucket set: n finite upper bounds in seconds, strictly increasing.
 * Prometheus's buckets are "less than or equal": an observation v falls
 * into the first bucket i with v <= le[i], else into +Inf.
 */
struct hist_buckets {
	const double *le;
	size_t n;
};

struct hist {
	const struct hist_buckets *buckets; /* borrowed; static in practice */
	uint64_t counts[HIST_BUCKETS_MAX + 1]; /* per bucket, NOT cumulative;
						  counts[n] is +Inf */
	uint64_t count; /* observations, = the sum of counts[] */
	double sum;	/* of the observed values, in seconds */
};

/* The predefined sets; hist.c says why these bounds. */
extern const struct hist_buckets hist_fsync_buckets;
extern const struct hist_buckets hist_eod_buckets;
extern const struct hist_buckets hist_delivery_buckets;

/* Group-commit fsync of the spool: 0.1 ms .. 1 s. */
#define HIST_FSYNC (&hist_fsync_buckets)
/* End of DATA (or last BDAT) to the 250: 0.5 ms .. 10 s. */
#define HIST_EOD (&hist_eod_buckets)
/* One delivery attempt, local or remote: 1 ms .. 600 s. */
#define HIST_DELIVERY (&hist_delivery_buckets)

/*
 * Empties h and ties it to buckets (borrowed: must outlive h).  Returns
 * -1, leaving h empty with no buckets, when buckets has no bound, more than
 * HIST_BUCKETS_MAX, or bounds that are not finite and strictly increasing.
 */
int hist_init(struct hist *h, const struct hist_buckets *buckets);

/*
 * Counts one observation of seconds: O(log n).  A negative value (a clock
 * stepped back) counts as 0; NaN and infinities are dropped, since they
 * would poison the sum for the life of the process.
 */
void hist_observe(struct hist *h, double seconds);

/*
 * Adds src's counts and sum into dst.  Both must use the same bucket set
 * (the same pointer, or equal bounds); otherwise returns -1 and leaves dst
 * unchanged.  Counters wrap at 2^64, as Prometheus counters may.
 */
int hist_merge(struct hist *dst, const struct hist *src);

#endif

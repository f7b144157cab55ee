/*
 * hist.c - fixed-bucket latency histograms for the /metrics endpoint.
 *
 * Called by whoever times something (the spool committer, the session at
 * end of DATA, the delivery workers); util/prom.c writes the result in
 * Prometheus's text format.  Promises: hist_observe() is O(log n) with no
 * allocation and no locking, so it may sit on the loop thread's hot path;
 * the caller owns the thread-safety (hist.h).
 *
 * The bucket sets are roughly 1-2.5-5 per decade, the spacing
 * histogram_quantile() interpolates well over, and each spans the range its
 * operation really takes so that neither the first nor the +Inf bucket
 * swallows the interesting part.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "util/hist.h"

/*
 * The spool's group-commit fsync.  On an SSD with a write cache an fsync
 * is ~0.1-5 ms; on a spinning disk or a busy virtual disk up to ~50 ms;
 * anything near a second is a disk in trouble, and that is where we stop
 * caring how much worse it is.
 */
static const double hist_fsync_le[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,  0.05,    0.1,    0.25,  0.5,    1,
};

/*
 * End of DATA to the 250: the message's own write, waiting for its group
 * commit (one fsync plus up to a batch window) and any milter.  0.5 ms is
 * a fast local commit; 10 s is past where clients start giving up (RFC
 * 5321 4.5.3.2.6 gives them 10 minutes, but nobody should come close).
 */
static const double hist_eod_le[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,	   1,	  2.5,	5,     10,
};

/*
 * One delivery attempt: a Maildir write takes milliseconds, LMTP tens of
 * them, a remote MX from a few hundred milliseconds to minutes (DNS, TLS,
 * slow servers; RFC 5321 4.5.3.2 lets the DATA phase alone run 10 minutes,
 * hence 600 s at the top).
 */
static const double hist_delivery_le[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1,	   2.5,	   5,	  10,	30,    60,   120, 300,	600,
};

#define HIST_NELEM(a) (sizeof(a) / sizeof((a)[0]))

const struct hist_buckets hist_fsync_buckets = {
    hist_fsync_le,
    HIST_NELEM(hist_fsync_le),
};
const struct hist_buckets hist_eod_buckets = {
    hist_eod_le,
    HIST_NELEM(hist_eod_le),
};
const struct hist_buckets hist_delivery_buckets = {
    hist_delivery_le,
    HIST_NELEM(hist_delivery_le),
};

static bool
hist_buckets_are_valid(const struct hist_buckets *b)
{
	if (b == NULL || b->le == NULL || b->n == 0 || b->n > HIST_BUCKETS_MAX)
		return false;
	for (size_t i = 0; i < b->n; i++) {
		if (!isfinite(b->le[i]))
			return false;
		if (i > 0 && !(b->le[i] > b->le[i - 1]))
			return false;
	}
	return true;
}

int
hist_init(struct hist *h, const struct hist_buckets *buckets)
{
	memset(h, 0, sizeof(*h));
	if (!hist_buckets_are_valid(buckets))
		return -1;
	h->buckets = buckets;
	return 0;
}

void
hist_observe(struct hist *h, double seconds)
{
	const struct hist_buckets *b = h->buckets;
	size_t lo = 0, hi, mid;

	if (b == NULL || !isfinite(seconds))
		return;
	if (seconds < 0)
		seconds = 0;
	/* The first bound >= seconds; b->n (the +Inf bucket) if none. */
	hi = b->n;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (b->le[mid] < seconds)
			lo = mid + 1;
		else
			hi = mid;
	}
	h->counts[lo]++;
	h->count++;
	h->sum += seconds;
}

static bool
hist_same_buckets(const struct hist_buckets *a, const struct hist_buckets *b)
{
	if (a == b)
		return true;
	if (a == NULL || b == NULL || a->n != b->n)
		return false;
	return memcmp(a->le, b->le, a->n * sizeof(a->le[0])) == 0;
}

int
hist_merge(struct hist *dst, const struct hist *src)
{
	if (dst->buckets == NULL ||
	    !hist_same_buckets(dst->buckets, src->buckets))
		return -1;
	for (size_t i = 0; i <= dst->buckets->n; i++)
		dst->counts[i] += src->counts[i];
	dst->count += src->count;
	dst->sum += src->sum;
	return 0;
}

/*
 * live.c - the committer's index of the records that still have a
 * recipient not done: qid -> where the record is and which recipients
 * are done.  It tells how many octets of each segment are still needed
 * (compact.c) and which .done file a done record goes to, wherever
 * compaction has moved the message since it was committed.
 *
 * Open addressing with linear probing and backward-shift deletion; the
 * qids are already well spread (a clock and a counter), so they are
 * mixed once more and used as they are.  Committer thread only (and
 * recovery before it starts): nothing here locks.
 */
#include <stdlib.h>

#include "spool/spool_int.h"

static size_t
slot_of(uint64_t qid, size_t cap)
{
	qid ^= qid >> 33;
	qid *= 0xff51afd7ed558ccdULL;
	qid ^= qid >> 33;
	return (size_t)qid & (cap - 1);
}

struct spool_live *
spool_live_find(const struct spool *sp, uint64_t qid)
{
	const struct spool_index *ix = &sp->index;

	if (ix->cap == 0)
		return NULL;
	for (size_t i = slot_of(qid, ix->cap); ix->slot[i];
	     i = (i + 1) & (ix->cap - 1))
		if (ix->slot[i]->qid == qid)
			return ix->slot[i];
	return NULL;
}

static void
put(struct spool_live **slot, size_t cap, struct spool_live *e)
{
	size_t i = slot_of(e->qid, cap);

	while (slot[i])
		i = (i + 1) & (cap - 1);
	slot[i] = e;
}

/* Doubles the table (at least 64 slots); -1 when out of memory. */
static int
grow(struct spool_index *ix)
{
	size_t cap = ix->cap ? ix->cap * 2 : 64;
	struct spool_live **slot = calloc(cap, sizeof(struct spool_live *));

	if (slot == NULL)
		return -1;
	for (size_t i = 0; i < ix->cap; i++)
		if (ix->slot[i])
			put(slot, cap, ix->slot[i]);
	free(ix->slot);
	ix->slot = slot;
	ix->cap = cap;
	return 0;
}

int
spool_live_add(struct spool *sp, struct spool_live *e)
{
	struct spool_index *ix = &sp->index;

	/* At most half full, so probes stay short. */
	if ((ix->n + 1) * 2 > ix->cap && grow(ix) != 0)
		return -1;
	put(ix->slot, ix->cap, e);
	ix->n++;
	return 0;
}

int
spool_live_for(const struct msg *m, uint32_t segment, uint64_t off,
	       uint64_t len, uint32_t crc, struct spool_live **out)
{
	uint32_t n = (uint32_t)m->n_rcpts;
	struct spool_live *e = calloc(1, sizeof *e);

	*out = NULL;
	if (e == NULL ||
	    (n > 64 && (e->big = calloc((n + 63) / 64, sizeof *e->big)) ==
			   NULL)) {
		free(e);
		return -1;
	}
	*e = (struct spool_live){.qid = m->qid, .segment = segment, .n_rcpts = n,
				 .undone = n, .off = off, .len = len,
				 .crc = crc, .big = e->big};
	for (uint32_t i = 0; i < n; i++)
		if (m->rcpts[i].is_done)
			spool_live_mark(e, i);
	if (e->undone == 0)
		spool_live_free(e);
	else
		*out = e;
	return 0;
}

bool
spool_live_is_done(const struct spool_live *e, uint32_t idx)
{
	const uint64_t *w = e->big ? &e->big[idx / 64] : &e->bits;

	return idx < e->n_rcpts && (*w >> (idx % 64) & 1);
}

bool
spool_live_mark(struct spool_live *e, uint32_t idx)
{
	uint64_t *w = e->big ? &e->big[idx / 64] : &e->bits;

	if (idx >= e->n_rcpts || (*w >> (idx % 64) & 1))
		return false;
	*w |= 1ULL << (idx % 64);
	e->undone--;
	return true;
}

void
spool_live_free(struct spool_live *e)
{
	if (e != NULL)
		free(e->big);
	free(e);
}

void
spool_live_remove(struct spool *sp, struct spool_live *e)
{
	struct spool_index *ix = &sp->index;
	size_t mask = ix->cap - 1, i, j;

	for (i = slot_of(e->qid, ix->cap); ix->slot[i] != e; i = (i + 1) & mask)
		;
	/* Backward shift: pull later entries of the run into the hole when
	 * their home slot is not between the hole and them. */
	for (j = (i + 1) & mask; ix->slot[j]; j = (j + 1) & mask) {
		size_t home = slot_of(ix->slot[j]->qid, ix->cap);
		if (((j - home) & mask) >= ((j - i) & mask)) {
			ix->slot[i] = ix->slot[j];
			i = j;
		}
	}
	ix->slot[i] = NULL;
	ix->n--;
	spool_live_free(e);
}

void
spool_live_each(const struct spool *sp,
		void (*fn)(void *arg, struct spool_live *e), void *arg)
{
	for (size_t i = 0; i < sp->index.cap; i++)
		if (sp->index.slot[i])
			fn(arg, sp->index.slot[i]);
}

void
spool_live_free_all(struct spool *sp)
{
	for (size_t i = 0; i < sp->index.cap; i++)
		spool_live_free(sp->index.slot[i]);
	free(sp->index.slot);
	sp->index = (struct spool_index){0};
}

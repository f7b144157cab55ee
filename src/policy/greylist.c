/*
 * greylist.c - greylisting: the triplet rules, the allow-list, and the
 * worker thread that asks the state store.
 *
 * The server calls greylist_check() for each RCPT on the loop thread.  A
 * client or sender domain on [greylist] allow passes at once; any other
 * check becomes the triplet key (client /24 or /64, sender, recipient) and
 * a job for the worker thread, the only one that touches the store.  The
 * worker (util/worker.c) takes every job queued (up to GREYLIST_BATCH_MAX),
 * runs them in one store transaction, and hands the verdicts back to the
 * loop through an activated libevent event, like the spool's committer.
 *
 * The rules (Postgrey's, as in greylist_decide()): the first sight of a
 * triplet is deferred for [greylist] delay seconds; a retry after the
 * delay and before [greylist] expire passes and confirms the triplet; a
 * confirmed triplet passes for [greylist] lifetime seconds after its last
 * pass, each pass renewing it; an unconfirmed triplet older than expire is
 * forgotten and starts over.
 *
 * Promises: every callback runs exactly once, on the loop thread, after
 * greylist_check() has returned.  A store failure of any kind (SQLite busy,
 * locked, full or corrupt; Redis down or slow) gives GREYLIST_ERROR for
 * the whole batch, never GREYLIST_PASS: the server answers 451 4.3.0 and
 * the policy is never skipped silently.  The verdicts of a batch are sent
 * only after its transaction committed.
 *
 * Left to others: the replies (server/session_cmd_rcpt.c picks 450 4.2.0
 * or 451 4.3.0), the store's own I/O (greylist_sqlite.c, greylist_redis.c).
 * REPLY-CODES.md rows 450 and 451; issue 4.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "policy/greylist.h"
#include "policy/greylist_int.h"
#include "util/log.h"
#include "util/str.h"
#include "util/worker.h"

#define GREYLIST_BATCH_MAX 256	    /* checks in one store transaction */
#define GREYLIST_PRUNE_SECONDS 3600 /* between prunes of stale triplets */
#define GREYLIST_SPARE_JOBS 64	    /* jobs kept for out-of-memory errors */
#define GREYLIST_ALLOW_ITEM_MAX (SMTP_DOMAIN_MAX + 1)
#define GREYLIST_IP_TEXT_MAX 64 /* an address as text, zone included */
#define GREYLIST_V4_NET_BITS 24
#define GREYLIST_V6_NET_BITS 64
#define GREYLIST_V4_MAPPED_BITS 96 /* ::ffff:0:0/96 */

/* A check; wj first (util/worker.h). */
struct greylist_job {
	struct worker_job wj;
	greylist_done_fn cb;
	void *arg;
	time_t now;
	enum greylist_verdict verdict;
	unsigned wait;
	bool is_spare;
	char key[GREYLIST_KEY_MAX];
};

struct greylist {
	const struct config *cfg;
	const struct greylist_store_ops *ops;
	struct greylist_store *st;
	struct greylist_policy pol;
	struct worker *w;
	time_t (*now)(void);
	time_t next_prune; /* worker only */

	pthread_mutex_t spare_mu; /* guards is_spare_used */
	struct greylist_job spares[GREYLIST_SPARE_JOBS];
	bool is_spare_used[GREYLIST_SPARE_JOBS];
};

static const struct greylist_store_ops *const stores[] = {
    &greylist_sqlite_ops,
    &greylist_redis_ops,
};

/* An IP address in network order; IPv4-mapped IPv6 becomes IPv4. */
struct ip_addr {
	int family;
	unsigned char b[16];
};

void
greylist_decide(const struct greylist_rec *old, time_t now,
		const struct greylist_policy *pol, struct greylist_outcome *out)
{
	time_t age;

	*out = (struct greylist_outcome){.verdict = GREYLIST_DEFER};
	if (old != NULL && old->is_passed &&
	    now - old->last_seen <= pol->lifetime) {
		out->verdict = GREYLIST_PASS;
		out->rec = (struct greylist_rec){old->first_seen, now, true};
		out->ttl = pol->lifetime;
		out->is_dirty = true;
		return;
	}
	if (old != NULL && !old->is_passed) {
		/* A clock that went back counts as no time passed. */
		age = now > old->first_seen ? now - old->first_seen : 0;
		if (age >= pol->delay && age < pol->expire) {
			out->verdict = GREYLIST_PASS;
			out->rec =
			    (struct greylist_rec){old->first_seen, now, true};
			out->ttl = pol->lifetime;
			out->is_dirty = true;
			return;
		}
		if (age < pol->delay) {
			/* An early retry changes nothing: no write. */
			out->wait = (unsigned)(pol->delay - age);
			out->rec = *old;
			out->ttl = pol->expire - age;
			return;
		}
	}
	/* First sight, or a triplet forgotten: start over. */
	out->wait = (unsigned)pol->delay;
	out->rec = (struct greylist_rec){now, now, false};
	out->ttl = pol->expire;
	out->is_dirty = true;
}

/* Parses an address ("1.2.3.4", "::1", "[::1]", "fe80::1%eth0"). */
static bool
ip_parse(const char *s, size_t len, struct ip_addr *out)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0,	   0,
						 0, 0, 0, 0, 0xff, 0xff};
	char buf[GREYLIST_IP_TEXT_MAX];
	char *pct;

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (!str_copy(buf, sizeof buf, s, len))
		return false;
	if ((pct = strchr(buf, '%')) != NULL)
		*pct = '\0';
	memset(out, 0, sizeof *out);
	if (inet_pton(AF_INET, buf, out->b) == 1) {
		out->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, buf, out->b) != 1)
		return false;
	out->family = AF_INET6;
	if (memcmp(out->b, mapped, sizeof mapped) == 0) {
		memmove(out->b, out->b + sizeof mapped, 4);
		memset(out->b + 4, 0, sizeof out->b - 4);
		out->family = AF_INET;
	}
	return true;
}

static unsigned
ip_bits(const struct ip_addr *a)
{
	return a->family == AF_INET ? 32 : 128;
}

/* True when a and b agree on their first bits bits. */
static bool
ip_prefix_eq(const struct ip_addr *a, const struct ip_addr *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (a->family != b->family)
		return false;
	if (memcmp(a->b, b->b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a->b[whole] ^ b->b[whole]) & (0xff << (8 - rest))) == 0;
}

/* Zeroes every bit after the first bits. */
static void
ip_mask(struct ip_addr *a, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (rest != 0)
		a->b[whole++] &= (unsigned char)(0xff << (8 - rest));
	memset(a->b + whole, 0, sizeof a->b - whole);
}

/* Parses "addr" or "addr/bits"; false when it is neither. */
static bool
cidr_parse(const char *s, struct ip_addr *out, unsigned *bits_out)
{
	const char *slash = strchr(s, '/');
	uint64_t bits;
	bool is_v6_text;

	if (!ip_parse(s, slash ? (size_t)(slash - s) : strlen(s), out))
		return false;
	if (slash == NULL) {
		*bits_out = ip_bits(out);
		return true;
	}
	if (!str_to_u64(slash + 1, &bits))
		return false;
	is_v6_text = memchr(s, ':', (size_t)(slash - s)) != NULL;
	if (is_v6_text && out->family == AF_INET) {
		/* ::ffff:a.b.c.d/n: the IPv4 part's prefix. */
		if (bits < GREYLIST_V4_MAPPED_BITS)
			return false;
		bits -= GREYLIST_V4_MAPPED_BITS;
	}
	if (bits > ip_bits(out))
		return false;
	*bits_out = (unsigned)bits;
	return true;
}

/* A domain as an allow entry: letters, digits, '-', '_' and dots. */
static bool
is_domain(const char *s)
{
	bool has_letter = false;

	if (*s == '\0' || *s == '.')
		return false;
	for (; *s; s++) {
		if (isalpha((unsigned char)*s))
			has_letter = true;
		else if (!isdigit((unsigned char)*s) && *s != '-' &&
			 *s != '_' && *s != '.')
			return false;
	}
	/* All digits and dots is a mistyped address, not a domain. */
	return has_letter;
}

/*
 * Copies the next comma-separated item of *p into buf, trimmed, lower-case
 * and without a leading "*." or "."; false at the end.  An item too long
 * comes back as "" with *is_long_out set.
 */
static bool
allow_next(const char **p, char *buf, size_t size, bool *is_long_out)
{
	const char *s = *p, *end;
	char *item;

	if (*s == '\0')
		return false;
	end = strchr(s, ',');
	if (end == NULL)
		end = s + strlen(s);
	*p = *end ? end + 1 : end;
	*is_long_out = !str_copy(buf, size, s, (size_t)(end - s));
	str_trim(buf);
	str_lower(buf);
	item = buf;
	if (item[0] == '*' && item[1] == '.')
		item += 2;
	else if (item[0] == '.')
		item++;
	memmove(buf, item, strlen(item) + 1);
	return true;
}

/* The domain of a sender path, lower-cased into buf; false if none. */
static bool
sender_domain(const char *sender, char *buf, size_t size)
{
	const char *at = sender ? strrchr(sender, '@') : NULL;
	size_t len;

	if (at == NULL)
		return false;
	len = strlen(at + 1);
	if (len > 0 && at[len] == '>')
		len--;
	while (len > 0 && at[len] == '.')
		len--;
	if (len == 0 || !str_copy(buf, size, at + 1, len))
		return false;
	str_lower(buf);
	return true;
}

/* True when dom is entry or ends in "." entry. */
static bool
domain_under(const char *dom, const char *entry)
{
	size_t dl = strlen(dom), el = strlen(entry);

	if (el == 0 || el > dl)
		return false;
	if (strcmp(dom + dl - el, entry) != 0)
		return false;
	return dl == el || dom[dl - el - 1] == '.';
}

bool
greylist_allowed(const struct config *cfg, const char *client_ip,
		 const char *sender)
{
	char item[GREYLIST_ALLOW_ITEM_MAX], dom[GREYLIST_ALLOW_ITEM_MAX];
	const char *p = cfg->greylist_allow ? cfg->greylist_allow : "";
	struct ip_addr client, net;
	bool has_client, has_dom, is_long;
	unsigned bits;

	has_client =
	    client_ip && ip_parse(client_ip, strlen(client_ip), &client);
	has_dom = sender_domain(sender, dom, sizeof dom);
	while (allow_next(&p, item, sizeof item, &is_long)) {
		if (is_long || item[0] == '\0')
			continue;
		if (cidr_parse(item, &net, &bits)) {
			if (has_client && ip_prefix_eq(&client, &net, bits))
				return true;
		} else if (has_dom && domain_under(dom, item)) {
			return true;
		}
	}
	return false;
}

/* Checks every allow entry; -1 with the fix in err. */
static int
allow_validate(const char *list, char *err, size_t size)
{
	char item[GREYLIST_ALLOW_ITEM_MAX];
	const char *p = list ? list : "";
	struct ip_addr net;
	bool is_long;
	unsigned bits;

	while (allow_next(&p, item, sizeof item, &is_long)) {
		if (!is_long && item[0] == '\0')
			continue;
		if (!is_long &&
		    (cidr_parse(item, &net, &bits) || is_domain(item)))
			continue;
		snprintf(err, size,
			 "greylist allow entry \"%s\" is neither "
			 "an address, a CIDR (1.2.3.0/24, 2001:db8::/32) nor a "
			 "domain; fix [greylist] allow",
			 item);
		return -1;
	}
	return 0;
}

/* A path lower-cased without its angle brackets; "" becomes "<>". */
static bool
path_norm(const char *path, char *buf, size_t size)
{
	size_t len = path ? strlen(path) : 0;

	if (len >= 2 && path[0] == '<' && path[len - 1] == '>') {
		path++;
		len -= 2;
	}
	if (len == 0)
		return str_set(buf, size, "<>");
	if (!str_copy(buf, size, path, len))
		return false;
	str_lower(buf);
	return true;
}

bool
greylist_key(const char *client_ip, const char *sender, const char *rcpt,
	     char *buf, size_t size)
{
	char net[GREYLIST_NET_MAX], text[INET6_ADDRSTRLEN];
	char s[SMTP_PATH_MAX + 1], r[SMTP_PATH_MAX + 1];
	struct ip_addr a;
	unsigned bits;
	int n;

	if (client_ip == NULL || !ip_parse(client_ip, strlen(client_ip), &a))
		return false;
	bits =
	    a.family == AF_INET ? GREYLIST_V4_NET_BITS : GREYLIST_V6_NET_BITS;
	ip_mask(&a, bits);
	if (inet_ntop(a.family, a.b, text, sizeof text) == NULL)
		return false;
	snprintf(net, sizeof net, "%s/%u", text, bits);
	if (!path_norm(sender, s, sizeof s) || !path_norm(rcpt, r, sizeof r) ||
	    strcmp(r, "<>") == 0)
		return false;
	n = snprintf(buf, size, "%s|%s|%s", net, s, r);
	return n >= 0 && (size_t)n < size;
}

/* Runs one batch in one store transaction; sets every job's verdict. */
static struct greylist_job *
job_of(struct worker_job *wj)
{
	return (struct greylist_job *)wj;
}

static void
run_batch(struct greylist *g, struct worker_job *jobs)
{
	const struct greylist_store_ops *ops = g->ops;
	struct greylist_outcome out;
	time_t last = 0;

	if (ops->begin(g->st) != 0)
		goto fail;
	for (struct worker_job *wj = jobs; wj; wj = wj->next) {
		struct greylist_job *j = job_of(wj);
		if (ops->update(g->st, j->key, j->now, &g->pol, &out) != 0) {
			ops->rollback(g->st);
			goto fail;
		}
		j->verdict = out.verdict;
		j->wait = out.verdict == GREYLIST_DEFER ? out.wait : 0;
		if (j->now > last)
			last = j->now;
	}
	if (ops->commit(g->st) != 0) {
		ops->rollback(g->st);
		goto fail;
	}
	if (ops->prune && last >= g->next_prune) {
		ops->prune(g->st, last, &g->pol);
		g->next_prune = last + GREYLIST_PRUNE_SECONDS;
	}
	return;
fail:
	for (struct worker_job *wj = jobs; wj; wj = wj->next) {
		job_of(wj)->verdict = GREYLIST_ERROR;
		job_of(wj)->wait = 0;
	}
}

/* Worker thread: one transaction, then the verdicts to the loop. */
static void
greylist_run(void *arg, struct worker_job *batch)
{
	struct greylist *g = arg;

	run_batch(g, batch);
	worker_hand_back(g->w, batch);
}

static void
job_free(struct greylist *g, struct greylist_job *j)
{
	if (j->is_spare) {
		pthread_mutex_lock(&g->spare_mu);
		g->is_spare_used[j - g->spares] = false;
		pthread_mutex_unlock(&g->spare_mu);
	} else {
		free(j);
	}
}

/* Loop thread: the callback of one finished check. */
static void
greylist_done(void *arg, struct worker_job *wj)
{
	struct greylist *g = arg;
	struct greylist_job *j = job_of(wj);
	greylist_done_fn cb = j->cb;
	void *cb_arg = j->arg;
	enum greylist_verdict v = j->verdict;
	unsigned wait = j->wait;

	job_free(g, j);
	cb(cb_arg, v, wait);
}

static const struct worker_ops greylist_worker_ops = {
    .run = greylist_run,
    .done = greylist_done,
    .batch_max = GREYLIST_BATCH_MAX,
};

/* A job from malloc, or one of the spares when memory is out. */
static struct greylist_job *
job_new(struct greylist *g)
{
	struct greylist_job *j = calloc(1, sizeof *j);

	if (j != NULL)
		return j;
	pthread_mutex_lock(&g->spare_mu);
	for (size_t i = 0; i < GREYLIST_SPARE_JOBS; i++) {
		if (!g->is_spare_used[i]) {
			g->is_spare_used[i] = true;
			j = &g->spares[i];
			break;
		}
	}
	pthread_mutex_unlock(&g->spare_mu);
	if (j != NULL)
		*j = (struct greylist_job){.is_spare = true};
	return j;
}

/* Queues j's callback with a verdict known now (loop thread). */
static void
settle(struct greylist *g, struct greylist_job *j, enum greylist_verdict v)
{
	j->verdict = v;
	j->wait = 0;
	worker_hand_back(g->w, &j->wj);
}

void
greylist_check(struct greylist *g, const char *client_ip, const char *sender,
	       const char *rcpt, greylist_done_fn cb, void *arg)
{
	struct greylist_job *j = job_new(g);

	if (j == NULL) {
		/* Out of memory with every spare in flight: the one case
		 * where the callback runs before greylist_check returns. */
		log_msg(LOG_ERR, "ev=greylist_out_of_memory");
		cb(arg, GREYLIST_ERROR, 0);
		return;
	}
	j->cb = cb;
	j->arg = arg;
	j->now = g->now();
	if (greylist_allowed(g->cfg, client_ip, sender)) {
		settle(g, j, GREYLIST_PASS);
		return;
	}
	if (!greylist_key(client_ip, sender, rcpt, j->key, sizeof j->key)) {
		log_msg(LOG_WARN, "ev=greylist_bad_triplet client=%s",
			log_q(client_ip));
		settle(g, j, GREYLIST_ERROR);
		return;
	}
	if (!worker_submit(g->w, &j->wj))
		settle(g, j, GREYLIST_ERROR); /* closing */
}

static time_t
clock_now(void)
{
	return time(NULL);
}

void
greylist_set_clock(struct greylist *g, time_t (*now)(void))
{
	g->now = now ? now : clock_now;
}

/* Picks the store by the scheme of spec and opens it. */
static int
store_open(struct greylist *g, const char *spec, const char *dir, char *err,
	   size_t size)
{
	for (size_t i = 0; i < sizeof stores / sizeof stores[0]; i++) {
		size_t n = strlen(stores[i]->scheme);

		if (strncasecmp(spec, stores[i]->scheme, n) != 0)
			continue;
		g->ops = stores[i];
		g->st = stores[i]->open(spec + n, dir, err, size);
		return g->st ? 0 : -1;
	}
	snprintf(err, size,
		 "greylist store \"%s\" is neither sqlite:PATH nor "
		 "redis://host:port/db; fix [greylist] store",
		 spec);
	return -1;
}

static int
policy_from(struct greylist_policy *pol, const struct config *cfg, char *err,
	    size_t size)
{
	pol->delay = (time_t)cfg->greylist_delay;
	pol->expire = (time_t)cfg->greylist_expire;
	pol->lifetime = (time_t)cfg->greylist_lifetime;
	if (pol->delay < 1 || pol->expire <= pol->delay) {
		snprintf(err, size,
			 "greylist expire (%lld s) must be longer "
			 "than delay (%lld s), or no retry could pass; fix "
			 "[greylist] expire or delay",
			 (long long)pol->expire, (long long)pol->delay);
		return -1;
	}
	return 0;
}

struct greylist *
greylist_open(const struct config *cfg, struct event_base *base, char *err,
	      size_t size)
{
	struct greylist *g = calloc(1, sizeof *g);

	if (g == NULL) {
		snprintf(err, size, "out of memory");
		return NULL;
	}
	g->cfg = cfg;
	g->now = clock_now;
	pthread_mutex_init(&g->spare_mu, NULL);
	if (policy_from(&g->pol, cfg, err, size) != 0 ||
	    allow_validate(cfg->greylist_allow, err, size) != 0 ||
	    store_open(g, cfg->greylist_store ? cfg->greylist_store : "",
		       cfg->dir ? cfg->dir : ".", err, size) != 0)
		goto fail;
	g->w = worker_start(&greylist_worker_ops, g, base);
	if (g->w == NULL) {
		snprintf(err, size, "cannot start the greylist worker thread");
		goto fail;
	}
	return g;
fail:
	greylist_close(g);
	return NULL;
}

void
greylist_close(struct greylist *g)
{
	if (g == NULL)
		return;
	/* Runs what is queued; callbacks may queue more checks, and those
	 * settle as errors.  Nothing is requeued: nothing is left. */
	(void)worker_stop(g->w);
	if (g->st)
		g->ops->close(g->st);
	pthread_mutex_destroy(&g->spare_mu);
	free(g);
}

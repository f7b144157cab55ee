/*
 * greylist_redis.c - the greylist state in Redis ([greylist] store =
 * redis://host:port/db), shared by every postern node behind one MX: a
 * triplet greylisted by one node passes on another.
 *
 * One string key per triplet, "postern:greylist:" + the triplet, holding
 * "first_seen last_seen passed" and written with SET ... EX, so Redis
 * forgets stale triplets by itself (no prune): an unconfirmed one when its
 * expire is up, a confirmed one [greylist] lifetime after its last pass.
 * Nodes race harmlessly: two first sights write the same kind of record,
 * and a value that does not parse is overwritten as a first sight.
 *
 * Connecting and each command time out after GREYLIST_REDIS_TIMEOUT_MS.
 * Any failure (refused, timeout, an error reply) drops the connection and
 * fails the batch, so greylist.c answers GREYLIST_ERROR; the next batch
 * connects again.  A kept connection that the server closed meanwhile (a
 * restart) is reconnected once at once, so the first check after a restart
 * works.  A batch fails at its first error, so a dead server costs a
 * queue of checks one timeout, not one each.  Redis being down at start
 * is not an error: open only parses the address.
 *
 * Called only by greylist.c: open on the loop thread, the rest on the
 * worker thread.  https://redis.io/commands/set/
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "policy/greylist_int.h"
#include "util/log.h"
#include "util/str.h"

#define GREYLIST_REDIS_TIMEOUT_MS 2000
#define GREYLIST_REDIS_PORT 6379
#define GREYLIST_REDIS_PORT_MAX 65535
#define GREYLIST_REDIS_HOST_MAX 256
#define GREYLIST_REDIS_PREFIX "postern:greylist:"
#define GREYLIST_REDIS_KEY_MAX (sizeof GREYLIST_REDIS_PREFIX + GREYLIST_KEY_MAX)
#define GREYLIST_REDIS_VALUE_MAX 64

struct greylist_store {
	char host[GREYLIST_REDIS_HOST_MAX];
	int port;
	unsigned db;
	redisContext *c;
	bool is_down;	/* the last try failed: logged once per outage */
	bool is_proven; /* c answered in this batch */
};

/* Logs the first failure of an outage, drops the connection; -1. */
static int
fail(struct greylist_store *st, const char *what, const char *why)
{
	if (!st->is_down)
		log_msg(LOG_WARN,
			"ev=greylist_store_failed store=redis "
			"server=%s:%d op=%s error=%s",
			st->host, st->port, what, log_q(why));
	st->is_down = true;
	if (st->c != NULL)
		redisFree(st->c);
	st->c = NULL;
	return -1;
}

/* Parses "host[:port][/db]", host maybe "[v6]"; -1 with the fix in err. */
static int
parse_addr(struct greylist_store *st, const char *spec, char *err, size_t size)
{
	const char *p = spec, *host_end, *slash = strchr(spec, '/');
	char num[GREYLIST_REDIS_VALUE_MAX];
	uint64_t v = GREYLIST_REDIS_PORT;
	size_t host_len;

	if (*p == '[') {
		host_end = strchr(p, ']');
		p++;
		if (host_end == NULL)
			goto bad;
		host_len = (size_t)(host_end - p);
		host_end++;
	} else {
		host_end = p + strcspn(p, ":/");
		host_len = (size_t)(host_end - p);
	}
	if (host_len == 0 || !str_copy(st->host, sizeof st->host, p, host_len))
		goto bad;
	if (*host_end == ':') {
		size_t n = slash ? (size_t)(slash - host_end - 1)
				 : strlen(host_end + 1);
		if (!str_copy(num, sizeof num, host_end + 1, n) ||
		    !str_to_u64(num, &v))
			goto bad;
	} else if (*host_end != '/' && *host_end != '\0') {
		goto bad;
	}
	if (v == 0 || v > GREYLIST_REDIS_PORT_MAX)
		goto bad;
	st->port = (int)v;
	v = 0;
	if (slash && slash[1] != '\0' &&
	    (!str_to_u64(slash + 1, &v) || v > INT_MAX))
		goto bad;
	st->db = (unsigned)v;
	return 0;
bad:
	snprintf(err, size,
		 "greylist store redis://%s is not "
		 "redis://host:port/db (e.g. redis://127.0.0.1:6379/0); fix "
		 "[greylist] store",
		 spec);
	return -1;
}

static struct greylist_store *
redis_open(const char *spec, const char *dir, char *err, size_t size)
{
	struct greylist_store *st = calloc(1, sizeof *st);

	(void)dir;
	if (st == NULL) {
		snprintf(err, size, "out of memory");
		return NULL;
	}
	if (parse_addr(st, spec, err, size) != 0) {
		free(st);
		return NULL;
	}
	return st;
}

static int
redis_connect(struct greylist_store *st)
{
	struct timeval tv = {
	    .tv_sec = GREYLIST_REDIS_TIMEOUT_MS / 1000,
	    .tv_usec = (suseconds_t)(GREYLIST_REDIS_TIMEOUT_MS % 1000) * 1000,
	};
	redisReply *r;
	bool is_ok;

	st->c = redisConnectWithTimeout(st->host, st->port, tv);
	if (st->c == NULL)
		return fail(st, "connect", strerror(ENOMEM));
	if (st->c->err)
		return fail(st, "connect", st->c->errstr);
	if (redisSetTimeout(st->c, tv) != REDIS_OK)
		return fail(st, "connect", st->c->errstr);
	if (st->db != 0) {
		r = redisCommand(st->c, "SELECT %u", st->db);
		is_ok = r && r->type == REDIS_REPLY_STATUS;
		if (!is_ok) {
			char why[GREYLIST_REDIS_HOST_MAX];
			snprintf(why, sizeof why, "%s",
				 r ? (r->str ? r->str : "bad reply")
				   : st->c->errstr);
			freeReplyObject(r);
			return fail(st, "select", why);
		}
		freeReplyObject(r);
	}
	st->is_proven = true;
	if (st->is_down)
		log_msg(LOG_INFO,
			"ev=greylist_store_up store=redis "
			"server=%s:%d",
			st->host, st->port);
	st->is_down = false;
	return 0;
}

static int
redis_begin(struct greylist_store *st)
{
	st->is_proven = false;
	return st->c != NULL ? 0 : redis_connect(st);
}

/*
 * True when a connection kept from an earlier batch turned out closed by
 * the server (a restart, an idle timeout): worth one reconnect.
 */
static bool
is_stale(const struct greylist_store *st)
{
	int e = st->c->err;

	return !st->is_proven &&
	       (e == REDIS_ERR_EOF ||
		(e == REDIS_ERR_IO && (errno == ECONNRESET || errno == EPIPE)));
}

/*
 * Sends one command; NULL after fail() on any error, else a reply for
 * the caller to free.  A reply of the wrong type (want) is an error.
 */
static redisReply *
command(struct greylist_store *st, const char *op, int want, int want2,
	const char *fmt, ...)
{
	char why[GREYLIST_REDIS_HOST_MAX];
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(st->c, fmt, ap);
	va_end(ap);
	if (r == NULL && is_stale(st)) {
		redisFree(st->c);
		st->c = NULL;
		if (redis_connect(st) != 0)
			return NULL;
		va_start(ap, fmt);
		r = redisvCommand(st->c, fmt, ap);
		va_end(ap);
	}
	if (r == NULL) {
		fail(st, op, st->c->errstr);
		return NULL;
	}
	if (r->type != want && r->type != want2) {
		snprintf(why, sizeof why, "%s",
			 r->type == REDIS_REPLY_ERROR
			     ? r->str
			     : "unexpected reply type");
		freeReplyObject(r);
		fail(st, op, why);
		return NULL;
	}
	st->is_proven = true;
	return r;
}

/* Parses one number and the separator after it; false on anything else. */
static bool
field(const char **s, char sep, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(*s, &end, 10);
	if (errno != 0 || end == *s || *end != sep || *out < 0)
		return false;
	*s = sep ? end + 1 : end;
	return true;
}

/* Parses "first_seen last_seen passed"; false when it is not ours. */
static bool
value_parse(const char *s, struct greylist_rec *rec)
{
	long long first, last, passed;

	if (!field(&s, ' ', &first) || !field(&s, ' ', &last) ||
	    !field(&s, '\0', &passed) || passed > 1)
		return false;
	rec->first_seen = (time_t)first;
	rec->last_seen = (time_t)last;
	rec->is_passed = passed == 1;
	return true;
}

/* Reads key: 1 found, 0 none (or not ours), -1 error. */
static int
get(struct greylist_store *st, const char *rkey, struct greylist_rec *rec)
{
	redisReply *r = command(st, "get", REDIS_REPLY_NIL, REDIS_REPLY_STRING,
				"GET %s", rkey);
	int found = 0;

	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_STRING) {
		found = value_parse(r->str, rec);
		if (!found)
			log_msg(LOG_WARN,
				"ev=greylist_bad_value store=redis "
				"key=%s",
				log_q(rkey));
	}
	freeReplyObject(r);
	return found;
}

static int
put(struct greylist_store *st, const char *rkey,
    const struct greylist_outcome *o)
{
	char value[GREYLIST_REDIS_VALUE_MAX];
	redisReply *r;

	snprintf(value, sizeof value, "%lld %lld %d",
		 (long long)o->rec.first_seen, (long long)o->rec.last_seen,
		 o->rec.is_passed ? 1 : 0);
	r = command(st, "set", REDIS_REPLY_STATUS, REDIS_REPLY_STATUS,
		    "SET %s %s EX %lld", rkey, value,
		    (long long)(o->ttl > 0 ? o->ttl : 1));
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

static int
redis_update(struct greylist_store *st, const char *key, time_t now,
	     const struct greylist_policy *pol, struct greylist_outcome *out)
{
	char rkey[GREYLIST_REDIS_KEY_MAX];
	struct greylist_rec old;
	int found;

	if (st->c == NULL)
		return -1; /* a failure earlier in this batch */
	snprintf(rkey, sizeof rkey, "%s%s", GREYLIST_REDIS_PREFIX, key);
	found = get(st, rkey, &old);
	if (found < 0)
		return -1;
	greylist_decide(found ? &old : NULL, now, pol, out);
	if (out->is_dirty && put(st, rkey, out) != 0)
		return -1;
	return 0;
}

static int
redis_commit(struct greylist_store *st)
{
	(void)st;
	return 0;
}

static void
redis_rollback(struct greylist_store *st)
{
	(void)st;
}

static void
redis_close(struct greylist_store *st)
{
	if (st->c != NULL)
		redisFree(st->c);
	free(st);
}

const struct greylist_store_ops greylist_redis_ops = {
    .scheme = "redis://",
    .open = redis_open,
    .begin = redis_begin,
    .update = redis_update,
    .commit = redis_commit,
    .rollback = redis_rollback,
    .prune = NULL,
    .close = redis_close,
};

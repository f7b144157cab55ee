/*
 * srs.c - the Sender Rewriting Scheme, SRS0 and SRS1.
 *
 * Called by the forwarding route (srs_forward) and by RCPT handling for
 * our own domain (srs_reverse).  Pure: the time comes from the caller;
 * no I/O, no allocation.
 *
 * The forms are those of Shevek's scheme (libsrs2, postsrsd):
 *   SRS0=HHHH=TT=orig.domain=local@our.domain
 *   SRS1=HHHH=first.domain==HHHH=TT=orig.domain=local@our.domain
 * what we decide ourselves, since only we read our own hashes back:
 *   - HHHH is the first 4 characters of the base64 of HMAC-SHA1 keyed
 *     with the secret over the ASCII-lowercased text
 *         SRS0: TT "=" orig.domain "=" local
 *         SRS1: first.domain "=" rest
 *     where rest is the SRS0 local part after "SRS0" (its separator
 *     included).  The "=" between the parts makes the split unambiguous
 *     (a domain holds no "="; senders whose domain does are refused), so
 *     one valid address cannot be re-cut into another.  Lowercasing
 *     lets an address that a relay lowercased still verify; the hash is
 *     compared without case for the same reason (that leaves about 21
 *     bits, as libsrs2's).
 *   - TT is the day (seconds / 86400) modulo 1024 in two base32 digits
 *     (RFC 4648 alphabet A-Z 2-7), most significant first.  An address is
 *     good while (today - TT) mod 1024 <= max_age_days, so the 1024-day
 *     wrap is harmless; a stamp from the future reads as very old.
 *   - SRS1 keeps the first forwarder's domain and the SRS0 part as they
 *     are; reversing it gives back that SRS0 address at the first
 *     forwarder, who checks its own hash and time.  Forwarding an SRS1
 *     address again keeps its first domain and rest, with our hash (its
 *     old hash is not ours to check).
 * The prefixes are matched without case; the separator after "SRS0" or
 * "SRS1" may be "=", "+" or "-" (all three are in use), the others are
 * "=".
 */
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/srs.h"
#include "util/str.h"

#define SRS_HASH_LEN 4
#define SRS_STAMP_LEN 2
#define SRS_PREFIX_LEN 4 /* "SRS0" */
#define SRS_DATA_MAX 1024
#define SRS_SECONDS_PER_DAY 86400
#define SRS_BASE32_BITS 5
#define SRS_BASE32_MASK 31
#define SRS_B64_SIZE 32 /* base64 of a 20-octet digest: 28 + NUL */

static const char srs_base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* Which SRS form a local part has. */
enum srs_kind { SRS_KIND_NONE, SRS_KIND_0, SRS_KIND_1 };

static bool
srs_is_sep(char c)
{
	return c == '=' || c == '+' || c == '-';
}

static enum srs_kind
srs_kind_of(const char *local)
{
	if (strncasecmp(local, "SRS", 3) != 0 ||
	    (local[3] != '0' && local[3] != '1') || !srs_is_sep(local[4]))
		return SRS_KIND_NONE;
	return local[3] == '0' ? SRS_KIND_0 : SRS_KIND_1;
}

/* The day number modulo SRS_TIME_WRAP. */
static unsigned
srs_today(int64_t now)
{
	int64_t day = now / SRS_SECONDS_PER_DAY;

	if (now < 0 && now % SRS_SECONDS_PER_DAY != 0)
		day--;
	day %= SRS_TIME_WRAP;
	if (day < 0)
		day += SRS_TIME_WRAP;
	return (unsigned)day;
}

static int
srs_base32_value(char c)
{
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

/*
 * HMAC-SHA1 over the lowercased parts joined by "=", base64, the first
 * SRS_HASH_LEN characters into hash.  False when the secret is empty,
 * the text too long, or OpenSSL fails.
 */
static bool
srs_hash(const char *secret, const char *const *part, const size_t *len,
	 size_t n, char hash[SRS_HASH_LEN + 1])
{
	unsigned char data[SRS_DATA_MAX], md[EVP_MAX_MD_SIZE];
	unsigned char b64[SRS_B64_SIZE];
	unsigned md_len = 0;
	size_t used = 0;

	hash[0] = '\0';
	if (secret == NULL || secret[0] == '\0')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (len[i] + 1 > sizeof data - used)
			return false;
		if (i > 0)
			data[used++] = '=';
		for (size_t k = 0; k < len[i]; k++) {
			unsigned char c = (unsigned char)part[i][k];

			data[used++] = c >= 'A' && c <= 'Z'
					   ? (unsigned char)(c - 'A' + 'a')
					   : c;
		}
	}
	if (HMAC(EVP_sha1(), secret, (int)strlen(secret), data, used, md,
		 &md_len) == NULL ||
	    md_len == 0 || (size_t)md_len * 4 / 3 + 4 > sizeof b64 - 1)
		return false;
	if (EVP_EncodeBlock(b64, md, (int)md_len) < SRS_HASH_LEN)
		return false;
	memcpy(hash, b64, SRS_HASH_LEN);
	hash[SRS_HASH_LEN] = '\0';
	return true;
}

/* Appends to out[0..size) at *used; false when it does not fit. */
static bool
srs_put(char *out, size_t size, size_t *used, const char *s, size_t n)
{
	if (n >= size - *used)
		return false;
	memcpy(out + *used, s, n);
	*used += n;
	out[*used] = '\0';
	return true;
}

static int
srs_forward_0(const char *secret, const char *local, size_t local_len,
	      const char *domain, const char *our, int64_t now, char *out,
	      size_t size)
{
	unsigned day = srs_today(now);
	char stamp[SRS_STAMP_LEN + 1] = {
	    srs_base32[(day >> SRS_BASE32_BITS) & SRS_BASE32_MASK],
	    srs_base32[day & SRS_BASE32_MASK], '\0'};
	const char *part[] = {stamp, domain, local};
	size_t len[] = {SRS_STAMP_LEN, strlen(domain), local_len}, used = 0;
	char hash[SRS_HASH_LEN + 1];

	if (!srs_hash(secret, part, len, 3, hash))
		return SRS_ERR_SECRET;
	if (!srs_put(out, size, &used, "SRS0=", 5) ||
	    !srs_put(out, size, &used, hash, SRS_HASH_LEN) ||
	    !srs_put(out, size, &used, "=", 1) ||
	    !srs_put(out, size, &used, stamp, SRS_STAMP_LEN) ||
	    !srs_put(out, size, &used, "=", 1) ||
	    !srs_put(out, size, &used, domain, len[1]) ||
	    !srs_put(out, size, &used, "=", 1) ||
	    !srs_put(out, size, &used, local, local_len) ||
	    !srs_put(out, size, &used, "@", 1) ||
	    !srs_put(out, size, &used, our, strlen(our)))
		return SRS_ERR_SPACE;
	return 0;
}

/* SRS1=HHHH=first==rest...@our, first and rest as given. */
static int
srs_forward_1(const char *secret, const char *first, size_t first_len,
	      const char *rest, size_t rest_len, const char *our, char *out,
	      size_t size)
{
	const char *part[] = {first, rest};
	size_t len[] = {first_len, rest_len}, used = 0;
	char hash[SRS_HASH_LEN + 1];

	if (!srs_hash(secret, part, len, 2, hash))
		return SRS_ERR_SECRET;
	if (!srs_put(out, size, &used, "SRS1=", 5) ||
	    !srs_put(out, size, &used, hash, SRS_HASH_LEN) ||
	    !srs_put(out, size, &used, "=", 1) ||
	    !srs_put(out, size, &used, first, first_len) ||
	    !srs_put(out, size, &used, "=", 1) ||
	    !srs_put(out, size, &used, rest, rest_len) ||
	    !srs_put(out, size, &used, "@", 1) ||
	    !srs_put(out, size, &used, our, strlen(our)))
		return SRS_ERR_SPACE;
	return 0;
}

/*
 * An SRS1 local part "SRS1<sep>HHHH=first=rest": the hash, the first
 * domain and the rest (from its separator on); false when malformed.
 */
static bool
srs_split_1(const char *local, const char **hash, size_t *hash_len,
	    const char **first, size_t *first_len, const char **rest)
{
	const char *h = local + SRS_PREFIX_LEN + 1;
	const char *e1 = strchr(h, '=');
	const char *e2 = e1 != NULL ? strchr(e1 + 1, '=') : NULL;

	if (e2 == NULL || e2 == e1 + 1 || !srs_is_sep(e2[1]))
		return false;
	*hash = h;
	*hash_len = (size_t)(e1 - h);
	*first = e1 + 1;
	*first_len = (size_t)(e2 - e1 - 1);
	*rest = e2 + 1;
	return true;
}

int
srs_forward(const char *secret, const char *sender, const char *our_domain,
	    int64_t now, char *out, size_t size)
{
	const char *at, *domain, *first, *rest, *hash;
	size_t local_len, first_len, hash_len;
	int r;

	if (size > 0)
		out[0] = '\0';
	if (sender == NULL || sender[0] == '\0' || strcmp(sender, "<>") == 0)
		return SRS_ERR_NULL_SENDER;
	if (size == 0)
		return SRS_ERR_SPACE;
	if (secret == NULL || secret[0] == '\0')
		return SRS_ERR_SECRET;
	at = strrchr(sender, '@');
	if (at == NULL || at == sender || at[1] == '\0' ||
	    strchr(at + 1, '=') != NULL || our_domain == NULL ||
	    our_domain[0] == '\0')
		return SRS_ERR_SENDER;
	domain = at + 1;
	local_len = (size_t)(at - sender);
	switch (srs_kind_of(sender)) {
	case SRS_KIND_0:
		/* rest: from the separator after "SRS0" to the "@". */
		r = srs_forward_1(
		    secret, domain, strlen(domain), sender + SRS_PREFIX_LEN,
		    local_len - SRS_PREFIX_LEN, our_domain, out, size);
		break;
	case SRS_KIND_1: {
		char local[SRS_DATA_MAX];

		if (!str_copy(local, sizeof local, sender, local_len) ||
		    !srs_split_1(local, &hash, &hash_len, &first, &first_len,
				 &rest)) {
			r = srs_forward_0(secret, sender, local_len, domain,
					  our_domain, now, out, size);
			break;
		}
		r = srs_forward_1(secret, first, first_len, rest, strlen(rest),
				  our_domain, out, size);
		break;
	}
	default:
		r = srs_forward_0(secret, sender, local_len, domain, our_domain,
				  now, out, size);
	}
	if (r != 0 && size > 0)
		out[0] = '\0';
	return r;
}

static bool
srs_hash_ok(const char *secret, const char *const *part, const size_t *len,
	    size_t n, const char *given, size_t given_len)
{
	char hash[SRS_HASH_LEN + 1];

	return given_len == SRS_HASH_LEN &&
	       srs_hash(secret, part, len, n, hash) &&
	       strncasecmp(hash, given, SRS_HASH_LEN) == 0;
}

static enum srs_status
srs_reverse_0(const char *secret, const char *local, int64_t now,
	      unsigned max_age, char *orig, size_t size)
{
	const char *h = local + SRS_PREFIX_LEN + 1;
	const char *e1 = strchr(h, '=');
	const char *ts, *dom, *e3, *user;
	int hi, lo;
	unsigned stamp, age;
	int n;

	if (e1 == NULL)
		return SRS_MALFORMED;
	ts = e1 + 1;
	if (strlen(ts) < SRS_STAMP_LEN + 1 || ts[SRS_STAMP_LEN] != '=')
		return SRS_MALFORMED;
	hi = srs_base32_value(ts[0]);
	lo = srs_base32_value(ts[1]);
	dom = ts + SRS_STAMP_LEN + 1;
	e3 = strchr(dom, '=');
	if (hi < 0 || lo < 0 || e3 == NULL || e3 == dom || e3[1] == '\0')
		return SRS_MALFORMED;
	user = e3 + 1;
	{
		const char *part[] = {ts, dom, user};
		size_t len[] = {SRS_STAMP_LEN, (size_t)(e3 - dom),
				strlen(user)};

		if (!srs_hash_ok(secret, part, len, 3, h, (size_t)(e1 - h)))
			return SRS_BAD_HASH;
	}
	stamp = (unsigned)hi << SRS_BASE32_BITS | (unsigned)lo;
	age = (srs_today(now) + SRS_TIME_WRAP - stamp) % SRS_TIME_WRAP;
	if (age > max_age)
		return SRS_EXPIRED;
	n = snprintf(orig, size, "%s@%.*s", user, (int)(e3 - dom), dom);
	if (n < 0 || (size_t)n >= size)
		return SRS_MALFORMED;
	return SRS_OK;
}

static enum srs_status
srs_reverse_1(const char *secret, const char *local, char *orig, size_t size)
{
	const char *hash, *first, *rest;
	size_t hash_len, first_len;
	int n;

	if (!srs_split_1(local, &hash, &hash_len, &first, &first_len, &rest))
		return SRS_MALFORMED;
	{
		const char *part[] = {first, rest};
		size_t len[] = {first_len, strlen(rest)};

		if (!srs_hash_ok(secret, part, len, 2, hash, hash_len))
			return SRS_BAD_HASH;
	}
	n = snprintf(orig, size, "SRS0%s@%.*s", rest, (int)first_len, first);
	if (n < 0 || (size_t)n >= size)
		return SRS_MALFORMED;
	return SRS_OK;
}

enum srs_status
srs_reverse(const char *secret, const char *local_part, int64_t now,
	    unsigned max_age_days, char *orig, size_t size)
{
	enum srs_status r;

	if (size == 0)
		return SRS_MALFORMED;
	orig[0] = '\0';
	if (local_part == NULL)
		return SRS_NOT_SRS;
	if (max_age_days == 0)
		max_age_days = SRS_MAX_AGE_DEFAULT;
	if (max_age_days >= SRS_TIME_WRAP)
		max_age_days = SRS_TIME_WRAP - 1;
	switch (srs_kind_of(local_part)) {
	case SRS_KIND_0:
		r = srs_reverse_0(secret, local_part, now, max_age_days, orig,
				  size);
		break;
	case SRS_KIND_1:
		r = srs_reverse_1(secret, local_part, orig, size);
		break;
	default:
		return SRS_NOT_SRS;
	}
	if (r != SRS_OK)
		orig[0] = '\0';
	return r;
}

/*
 * session_cmd_auth.c - AUTH PLAIN and LOGIN (RFC 4954, RFC 4616).
 *
 * Offered and accepted only under TLS: in cleartext AUTH gets 538 5.7.11.
 * Passwords are checked against the users file's crypt(3) hashes with
 * libcrypt's crypt_r on a worker thread, so a slow hash (yescrypt) never
 * stalls the loop; an unknown user costs the same hash as a known one.
 * Failures are counted per client address over CLIENT_AUTH_WINDOW: the n-th
 * failure is answered after n seconds, and max_auth_failures ends the
 * session with 421 4.7.0.  Passwords are wiped after use and never logged.
 */
#include <crypt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "server/clients.h"
#include "server/session_int.h"
#include "util/log.h"
#include "util/str.h"

#define AUTH_FAIL_DELAY_MAX 10 /* seconds at most before a 535 */
#define AUTH_SECRET_MAX 1024
/* A hash to spend time on when the user has none (never matches). */
#define AUTH_DUMMY_HASH "$6$postern.dummy$" \
	"0000000000000000000000000000000000000000000000000000000000000000000" \
	"0000000000000000000000"

struct auth_job {
	struct session *s; /* NULL once the session is gone */
	struct event *ev;
	char user[SMTP_LOCAL_MAX + SMTP_DOMAIN_MAX + 2];
	char password[AUTH_SECRET_MAX];
	char hash[256];
	bool has_user;
	bool is_ok;
};

static void
job_free(struct auth_job *j)
{
	if (j->ev)
		event_free(j->ev);
	OPENSSL_cleanse(j->password, sizeof j->password);
	free(j);
}

void
session_auth_cancel(struct session *s)
{
	if (s->auth_job != NULL)
		s->auth_job->s = NULL; /* the worker's result is dropped */
	s->auth_job = NULL;
	if (s->ev_auth_delay != NULL)
		event_free(s->ev_auth_delay);
	s->ev_auth_delay = NULL;
}

/* Worker thread: one crypt_r, then back to the loop. */
static void *
job_run(void *arg)
{
	struct auth_job *j = arg;
	struct crypt_data *cd = calloc(1, sizeof *cd);
	const char *hash = j->has_user ? j->hash : AUTH_DUMMY_HASH;
	const char *out = cd ? crypt_r(j->password, hash, cd) : NULL;

	j->is_ok = j->has_user && out != NULL && out[0] != '*' &&
		   strlen(out) == strlen(j->hash) &&
		   CRYPTO_memcmp(out, j->hash, strlen(j->hash)) == 0;
	if (cd != NULL) {
		OPENSSL_cleanse(cd, sizeof *cd);
		free(cd);
	}
	OPENSSL_cleanse(j->password, sizeof j->password);
	event_active(j->ev, 0, 0);
	return NULL;
}

static void
on_delay_done(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	event_free(s->ev_auth_delay);
	s->ev_auth_delay = NULL;
	if (s->state == SESSION_CLOSING)
		return;
	s->state = SESSION_CMD;
	session_reply(s, REPLY_AUTH_FAILED);
	session_resume(s);
}

/* A failed attempt: slower each time, 421 at max_auth_failures. */
static void
auth_failed(struct session *s)
{
	struct client_stat *c = clients_get(s->srv, s->ip, true);
	unsigned n = c ? ++c->auth_failures : 1;
	struct timeval tv = {n < AUTH_FAIL_DELAY_MAX ? n : AUTH_FAIL_DELAY_MAX,
			     0};

	if (c != NULL)
		c->auth_last = time(NULL);
	log_msg(LOG_INFO, "ev=auth sid=%s client=%s user=%s result=failed "
		"failures=%u", s->sid, s->client,
		log_q(s->auth_login_user), n);
	if (n >= s->srv->cfg->server_max_auth_failures) {
		s->state = SESSION_CMD;
		session_reply(s, REPLY_AUTH_TOO_MANY,
			      s->srv->cfg->server_hostname);
		return;
	}
	s->state = SESSION_AUTH_CHECK;
	s->ev_auth_delay = evtimer_new(s->srv->base, on_delay_done, s);
	if (s->ev_auth_delay == NULL || evtimer_add(s->ev_auth_delay, &tv)) {
		s->state = SESSION_CMD;
		session_reply(s, REPLY_AUTH_FAILED);
	}
}

static void
on_job_done(evutil_socket_t fd, short what, void *arg)
{
	struct auth_job *j = arg;
	struct session *s = j->s;

	(void)fd;
	(void)what;
	if (s == NULL) {
		job_free(j);
		return;
	}
	s->auth_job = NULL;
	if (s->state == SESSION_CLOSING) {
		job_free(j);
		return;
	}
	if (!j->is_ok) {
		job_free(j);
		auth_failed(s);
		return;
	}
	s->is_auth = true;
	str_set(s->auth_user, sizeof s->auth_user, j->user);
	job_free(j);
	log_msg(LOG_INFO, "ev=auth sid=%s client=%s user=%s result=ok",
		s->sid, s->client, log_q(s->auth_user));
	s->state = SESSION_CMD;
	session_reply(s, REPLY_AUTH_OK);
	session_resume(s);
}

/* Starts the password check for user; the reply comes from on_job_done. */
static void
auth_check(struct session *s, const char *user, size_t user_len,
	   const char *password, size_t password_len)
{
	struct auth_job *j = calloc(1, sizeof *j);
	pthread_attr_t attr;
	pthread_t tid;
	const char *hash;

	str_copy(s->auth_login_user, sizeof s->auth_login_user, user,
		 user_len < sizeof s->auth_login_user
			 ? user_len
			 : sizeof s->auth_login_user - 1);
	if (j == NULL ||
	    !str_copy(j->user, sizeof j->user, user, user_len) ||
	    password_len >= sizeof j->password) {
		free(j);
		auth_failed(s);
		return;
	}
	str_lower(j->user);
	memcpy(j->password, password, password_len);
	hash = users_hash(s->srv->users, j->user);
	j->has_user = hash != NULL && str_set(j->hash, sizeof j->hash, hash);
	j->s = s;
	j->ev = event_new(s->srv->base, -1, 0, on_job_done, j);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (j->ev == NULL || pthread_create(&tid, &attr, job_run, j) != 0) {
		pthread_attr_destroy(&attr);
		job_free(j);
		s->state = SESSION_CMD;
		session_reply(s, REPLY_AUTH_TEMPFAIL);
		return;
	}
	pthread_attr_destroy(&attr);
	s->auth_job = j;
	s->state = SESSION_AUTH_CHECK;
}

/* Decodes base64 into out (NUL-terminated); -1 when invalid. */
static int
b64_decode(const char *in, size_t len, char *out, size_t size, size_t *n_out)
{
	int n;
	size_t pad = 0;

	if (len == 0) {
		out[0] = '\0';
		*n_out = 0;
		return 0;
	}
	if (len % 4 != 0 || len / 4 * 3 >= size)
		return -1;
	n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)in,
			    (int)len);
	if (n < 0)
		return -1;
	while (pad < 2 && in[len - 1 - pad] == '=')
		pad++;
	*n_out = (size_t)n - pad;
	out[*n_out] = '\0';
	return 0;
}

/* RFC 4616: [authzid] NUL authcid NUL passwd. */
static void
auth_plain(struct session *s, const char *msg, size_t len)
{
	const char *p1 = memchr(msg, '\0', len), *p2;
	size_t authz_len, user_len;

	if (p1 == NULL || (p2 = memchr(p1 + 1, '\0', len - (size_t)(p1 + 1 -
								   msg))) == NULL) {
		auth_failed(s);
		return;
	}
	authz_len = (size_t)(p1 - msg);
	user_len = (size_t)(p2 - (p1 + 1));
	/* Acting for someone else is not offered. */
	if (authz_len > 0 && (authz_len != user_len ||
			      strncasecmp(msg, p1 + 1, user_len) != 0)) {
		auth_failed(s);
		return;
	}
	auth_check(s, p1 + 1, user_len, p2 + 1, len - (size_t)(p2 + 1 - msg));
}

/* One SASL step's decoded response. */
static void
auth_step(struct session *s, const char *msg, size_t len)
{
	switch (s->auth_step) {
	case AUTH_STEP_PLAIN:
		auth_plain(s, msg, len);
		return;
	case AUTH_STEP_LOGIN_USER:
		str_copy(s->auth_login_user, sizeof s->auth_login_user, msg,
			 len < sizeof s->auth_login_user
				 ? len
				 : sizeof s->auth_login_user - 1);
		s->auth_step = AUTH_STEP_LOGIN_PASS;
		s->state = SESSION_AUTH;
		session_reply(s, REPLY_AUTH_CHALLENGE, "UGFzc3dvcmQ6");
		return;
	case AUTH_STEP_LOGIN_PASS: {
		char user[sizeof s->auth_login_user];
		str_set(user, sizeof user, s->auth_login_user);
		auth_check(s, user, strlen(user), msg, len);
		return;
	}
	}
}

/* Decodes a base64 response (or the initial one) and takes the step. */
static void
auth_response(struct session *s, const char *line, size_t len)
{
	char msg[AUTH_SECRET_MAX];
	size_t n = 0;

	s->state = SESSION_CMD;
	if (len == 1 && line[0] == '*') {
		session_reply(s, REPLY_AUTH_CANCELED);
		return;
	}
	if (len == 1 && line[0] == '=')
		len = 0; /* RFC 4954 4: "=" is an empty initial response */
	if (b64_decode(line, len, msg, sizeof msg, &n) != 0) {
		session_reply(s, REPLY_AUTH_BAD_BASE64);
		return;
	}
	auth_step(s, msg, n);
	OPENSSL_cleanse(msg, sizeof msg);
}

void
session_auth_line(struct session *s, const char *line, size_t len)
{
	auth_response(s, line, len);
}

void
cmd_auth(struct session *s, const struct cmd *c)
{
	const char *sp = memchr(c->arg, ' ', c->arg_len);
	size_t mech_len = sp ? (size_t)(sp - c->arg) : c->arg_len;
	const char *initial = sp ? sp + 1 : NULL;
	size_t initial_len = sp ? c->arg_len - mech_len - 1 : 0;

	if (str_eq_nocase(c->arg, mech_len, "PLAIN")) {
		s->auth_step = AUTH_STEP_PLAIN;
		if (initial == NULL) {
			s->state = SESSION_AUTH;
			session_reply(s, REPLY_AUTH_CHALLENGE, "");
			return;
		}
	} else if (str_eq_nocase(c->arg, mech_len, "LOGIN")) {
		s->auth_step = AUTH_STEP_LOGIN_USER;
		if (initial == NULL) {
			s->state = SESSION_AUTH;
			session_reply(s, REPLY_AUTH_CHALLENGE, "VXNlcm5hbWU6");
			return;
		}
	} else {
		char mech[32];
		str_copy(mech, sizeof mech, c->arg,
			 mech_len < sizeof mech ? mech_len : sizeof mech - 1);
		session_reply(s, REPLY_AUTH_MECHANISM, mech);
		return;
	}
	auth_response(s, initial, initial_len);
}

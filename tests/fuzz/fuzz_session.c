/*
 * fuzz_session.c - libFuzzer target for the whole SMTP session: bytes in
 * from the client, replies out (src/server/ and everything below it).
 *
 * Once per process a real server is built (server_new_embedded) with a config in
 * a temporary directory (under /dev/shm when there is one): spool, users,
 * forwards, a Maildir, a fresh self-signed certificate; its listener is
 * closed again.  Per input, one end of a socketpair is handed to
 * session_start() as an accepted connection would be, and this thread
 * drives the server's event loop while it writes the client's bytes into
 * the other end and reads the replies, until the session is gone.
 *
 * Input: byte 0 holds flags - bit 0: the session is on the submission
 * port (AUTH before MAIL); bit 1: the first piece is written before the
 * session starts (an early talker); bit 2: at the first "STARTTLS" line
 * the harness answers the 220 with a real TLS handshake and sends the
 * rest through TLS (so AUTH can be reached).  Byte 1 seeds the sizes of
 * the pieces written (0: all at once).  The rest is what the client
 * sends, except that an octet 0xff (never in UTF-8) is not sent: there
 * the client waits until the server has answered everything before, as
 * the transcripts' client waits for its S: lines (without any, all is
 * pipelined, and EHLO or DATA followed by more gets 554).  When all of it
 * is written and the session waits for more, the client shuts its side
 * down: the server sees EOF.
 *
 * Checks:
 *   - no crash, no leak, no sanitizer report, anywhere in the server;
 *   - the session ends (a bound of SESSION_BOUND_SECONDS), and the first
 *     reply is the 220 banner (or 554 to an early talker);
 *   - every reply line is three digits, the first 2 to 5 and the second
 *     0 to 5 (RFC 5321 4.2), then a space or a dash, text without
 *     control octets, CRLF, 512 octets at most (4.5.3.1.5); the lines of a
 *     multi-line reply share their code and end with a space line; an
 *     enhanced code's class is the reply's (RFC 3463); the stream ends
 *     with a whole reply;
 *   - nothing follows a 221 or a 421: the server closes after them.
 *
 * Time: the per-client AUTH failure delay (1 s and more) is cut short
 * by firing its timer at once; a session that waits on the spool or a
 * password check is waited for, the loop waking every TICK_USEC at
 * least.  Each input uses its own client address, so per-client counters
 * (AUTH failures, rate) start at zero.  Delivered mail is removed from
 * the Maildir now and then.
 *
 * FUZZ_SESSION_TRACE=1 in the environment prints each session's replies.
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config/config.h"
#include "proto/limits.h"
#include "server/server.h"
#include "server/session.h"
#include "util/log.h"

#define FUZZ_CHECK(cond)                                                      \
	do {                                                                  \
		if (!(cond))                                                  \
			__builtin_trap();                                     \
	} while (0)

#define FUZZ_HEADER 2
#define F_SUBMISSION 1u
#define F_EARLY 2u
#define F_TLS 4u
/* Not sent: the client waits here until the server has answered. */
#define WAIT_MARK 0xff

#define PIECE_MAX 64
#define SESSION_BOUND_SECONDS 20
#define HANDSHAKE_BOUND_SECONDS 5
#define TICK_USEC 1000
#define MAIL_CLEAN_EVERY 512
#define IO_CHUNK 16384

/* alice's password, as in the transcripts (tests/transcripts/README.md),
 * hashed with SHA-256 crypt at its fewest rounds: AUTH costs little. */
#define ALICE_PASSWORD "correct horse"
#define ALICE_SALT "$5$rounds=1000$fuzz$"

static char fixture_dir[256];
static struct config *cfg;
static struct server *srv;
static struct event *ev_tick;
static SSL_CTX *client_ctx;
static unsigned long n_inputs;

/* ---- the fixture: files, certificate, server ---------------------- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes delivered messages (files under a Maildir's new/). */
static int
rm_delivered(const char *path, const struct stat *st, int flag,
	     struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_F && strstr(path, "/new/") != NULL)
		unlink(path);
	return 0;
}

static void
write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", fixture_dir, name);
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

/* A self-signed P-256 certificate for mx.example.test. */
static void
write_cert(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	char path[512];
	FILE *f;

	if (key == NULL || x == NULL)
		abort();
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"mx.example.test", -1,
				   -1, 0);
	X509_set_issuer_name(x, name);
	if (X509_sign(x, key, EVP_sha256()) == 0)
		abort();
	snprintf(path, sizeof path, "%s/key.pem", fixture_dir);
	if ((f = fopen(path, "w")) == NULL ||
	    !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL))
		abort();
	fclose(f);
	snprintf(path, sizeof path, "%s/cert.pem", fixture_dir);
	if ((f = fopen(path, "w")) == NULL || !PEM_write_X509(f, x))
		abort();
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(key);
}

static void
fixture_free(void)
{
	if (srv != NULL) {
		event_free(ev_tick);
		server_free(srv);
		config_free(cfg);
		SSL_CTX_free(client_ctx);
		srv = NULL;
	}
	if (fixture_dir[0] != '\0')
		nftw(fixture_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/*
 * A loopback port free just now: the config needs a listener (port 0 is
 * refused), which fixture_make closes again at once.
 */
static unsigned
free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
		abort();
	close(fd);
	return ntohs(sin.sin_port);
}

/*
 * The server's config: as the transcripts' (tests/pylib/postern_test.py)
 * with small limits, so the fuzzer reaches them, and nothing that would
 * leave the machine: no DNS checks, no greylist, no filter; mail for
 * other domains (after AUTH) goes to a relayhost nobody listens on and
 * bounces at once.
 */
static void
fixture_make(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	struct timeval tick = {0, TICK_USEC};
	char path[512], err[1024], conf[1024], users[512], *errors = NULL;
	static struct crypt_data cd;
	const char *hash;

	snprintf(fixture_dir, sizeof fixture_dir,
		 "%s/postern-fuzz-session-XXXXXX", base);
	if (mkdtemp(fixture_dir) == NULL) {
		perror("fuzz_session: mkdtemp");
		abort();
	}
	atexit(fixture_free);
	hash = crypt_r(ALICE_PASSWORD, ALICE_SALT, &cd);
	if (hash == NULL || hash[0] != '$')
		abort();
	snprintf(users, sizeof users,
		 "postmaster@example.test\nalice@example.test: %s\n"
		 "bob@example.test\n",
		 hash);
	write_file("users", users);
	write_file("forwards", "carol@example.test bob@example.test forward\n"
			       "dave@example.test dave@elsewhere.example "
			       "refuse\n");
	write_cert();
	snprintf(conf, sizeof conf,
		 "[server]\n"
		 "smtp = 127.0.0.1:%u\n"
		 "hostname = mx.example.test\n"
		 "idle_timeout = 2\n"
		 "min_data_rate = 0\n"
		 "max_message_size = 2048\n"
		 "max_recipients = 5\n"
		 "log_level = err\n"
		 "[spool]\n"
		 "dir = spool\n"
		 "reserve = 0\n"
		 "dsn_reserve = 0\n"
		 "segment_size = 65536\n"
		 "[local]\n"
		 "domains = example.test\n"
		 "users = users\n"
		 "forwards = forwards\n"
		 "maildir = mail/%%d/%%u\n"
		 "[delivery]\n"
		 "routes =\n"
		 "relayhost = 127.0.0.1:9\n"
		 "lifetime = 0\n"
		 "[tls]\n"
		 "cert = cert.pem\n"
		 "key = key.pem\n",
		 free_port());
	write_file("postern.conf", conf);
	snprintf(path, sizeof path, "%s/postern.conf", fixture_dir);
	cfg = config_load(path, &errors);
	if (cfg == NULL) {
		fprintf(stderr, "fuzz_session: config: %s\n", errors);
		abort();
	}
	log_set_level((enum log_level)config_log_level(cfg));
	signal(SIGPIPE, SIG_IGN);
	srv = server_new_embedded(cfg, err, sizeof err);
	if (srv == NULL) {
		fprintf(stderr, "fuzz_session: server_new: %s\n", err);
		abort();
	}
	listener_stop(srv); /* sessions come from socketpairs only */
	/* The loop never sleeps longer than this, whatever it waits for. */
	ev_tick = event_new(srv->base, -1, EV_PERSIST, on_tick, NULL);
	if (ev_tick == NULL || event_add(ev_tick, &tick) != 0)
		abort();
	client_ctx = SSL_CTX_new(TLS_client_method());
	if (client_ctx == NULL)
		abort();
	SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
}

/* ---- the client side ------------------------------------------------ */

struct client {
	int fd;			/* our end of the socketpair */
	SSL *ssl;		/* once STARTTLS is answered, NULL before */
	const uint8_t *in;	/* what to send, WAIT_MARKs included */
	size_t in_len;
	size_t tls_at;		/* in + tls_at: the rest after STARTTLS */
	uint32_t rand;		/* piece sizes; 0: all at once */
	bool is_shut;		/* our side shut down: the server saw EOF */
	char *replies;		/* everything received */
	size_t len, cap;
};

static uint32_t
fuzz_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static struct session *
the_session(void)
{
	return srv->sessions;
}

static void
client_store(struct client *c, const char *p, size_t n)
{
	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : IO_CHUNK;
		while (cap < c->len + n)
			cap *= 2;
		if ((c->replies = realloc(c->replies, cap)) == NULL)
			abort();
		c->cap = cap;
	}
	memcpy(c->replies + c->len, p, n);
	c->len += n;
}

/* Reads what the server has sent so far. */
static void
client_read(struct client *c)
{
	char buf[IO_CHUNK];

	for (;;) {
		int n;
		if (c->ssl != NULL) {
			n = SSL_read(c->ssl, buf, sizeof buf);
			if (n <= 0) {
				ERR_clear_error();
				return;
			}
		} else {
			ssize_t r = recv(c->fd, buf, sizeof buf, 0);
			if (r <= 0)
				return;
			n = (int)r;
		}
		client_store(c, buf, (size_t)n);
	}
}

/*
 * How much to send: a piece, never past the STARTTLS line nor up to a
 * WAIT_MARK.
 */
static size_t
client_piece(struct client *c, size_t sent)
{
	size_t stop = c->ssl == NULL && c->tls_at ? c->tls_at : c->in_len;
	size_t n = c->rand ? 1 + fuzz_rand(&c->rand) % PIECE_MAX : stop;
	const uint8_t *mark;

	if (sent < stop &&
	    (mark = memchr(c->in + sent, WAIT_MARK, stop - sent)) != NULL)
		stop = (size_t)(mark - c->in);

	return sent + n > stop ? stop - sent : n;
}

/* Sends the next piece; returns the octets taken (0: not now). */
static size_t
client_write(struct client *c, const uint8_t *p, size_t n)
{
	if (n == 0)
		return 0;
	if (c->ssl != NULL) {
		int w = SSL_write(c->ssl, p, (int)n);
		if (w <= 0) {
			ERR_clear_error();
			return 0;
		}
		return (size_t)w;
	}
	ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
	return w > 0 ? (size_t)w : 0;
}

/*
 * Where the rest of the input goes through TLS: just after the first
 * line that is STARTTLS (any case) and its CRLF; 0 when there is none.
 */
static size_t
find_starttls(const uint8_t *p, size_t len)
{
	static const char cmd[] = "STARTTLS\r\n";
	const size_t n = sizeof cmd - 1;

	for (size_t i = 0; i + n <= len; i++) {
		if ((i == 0 || p[i - 1] == '\n' || p[i - 1] == WAIT_MARK) &&
		    strncasecmp((const char *)p + i, cmd, n) == 0)
			return i + n;
	}
	return 0;
}

/*
 * True when the session has taken all it was sent, answered it and waits
 * for the client: it is in a state that reads, its output has gone, and
 * the socket holds nothing unread (libevent runs the read callback as it
 * reads; what stays in the input buffer is a part the session waits to
 * see completed).  Checked twice, around a turn of the loop, so callbacks
 * made ready by the first look (a TLS filter's) have run.
 */
static bool
server_waits(int server_fd)
{
	struct session *s = the_session();
	struct bufferevent *under;
	int pending = 0;

	if (s == NULL)
		return true;
	switch (s->state) {
	case SESSION_CMD:
	case SESSION_AUTH:
	case SESSION_DATA:
	case SESSION_BDAT:
	case SESSION_TLS: /* the handshake waits for the client */
		break;
	default:
		return false; /* the spool, a check, closing: it is busy */
	}
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) != 0)
		return false;
	under = bufferevent_get_underlying(s->bev);
	if (under != NULL &&
	    evbuffer_get_length(bufferevent_get_output(under)) != 0)
		return false;
	return ioctl(server_fd, FIONREAD, &pending) == 0 && pending == 0;
}

static bool
server_is_idle(int server_fd)
{
	if (!server_waits(server_fd))
		return false;
	event_base_loop(srv->base, EVLOOP_NONBLOCK);
	return server_waits(server_fd);
}

/* The AUTH failure delay: time passes at once here. */
static void
skip_auth_delay(void)
{
	struct session *s = the_session();

	if (s != NULL && s->ev_auth_delay != NULL &&
	    evtimer_pending(s->ev_auth_delay, NULL))
		event_active(s->ev_auth_delay, EV_TIMEOUT, 1);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Gives up on the rest of the input: our side shuts down. */
static void
client_give_up(struct client *c, size_t *sent)
{
	*sent = c->in_len;
	if (!c->is_shut)
		shutdown(c->fd, SHUT_WR);
	c->is_shut = true;
}

/*
 * The STARTTLS line has gone.  Returns false while the server has not
 * decided; true once TLS is up, or when the server refused (the rest goes
 * in clear) or the session ended.
 */
static bool
client_starttls(struct client *c, size_t *sent)
{
	struct session *s = the_session();
	double deadline = now() + HANDSHAKE_BOUND_SECONDS;
	struct bufferevent *under;
	int r;

	if (s == NULL)
		return true;
	if (s->state != SESSION_TLS) {
		if (!server_is_idle(bufferevent_getfd(s->bev)))
			return false;
		c->tls_at = 0; /* refused, or it was text: go on in clear */
		return true;
	}
	/* The 220 leaves in clear; read it all before the first record. */
	under = bufferevent_get_underlying(s->bev);
	if (under != NULL &&
	    evbuffer_get_length(bufferevent_get_output(under)) != 0)
		return false;
	client_read(c);
	c->ssl = SSL_new(client_ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		abort();
	SSL_set_connect_state(c->ssl);
	while ((r = SSL_do_handshake(c->ssl)) != 1) {
		int e = SSL_get_error(c->ssl, r);
		ERR_clear_error();
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			client_give_up(c, sent);
			break;
		}
		if (the_session() == NULL)
			break;
		FUZZ_CHECK(now() < deadline);
		event_base_loop(srv->base, EVLOOP_ONCE);
	}
	return true;
}

/* Runs one session over a socketpair; the replies end up in c. */
static void
run_session(struct client *c, unsigned flags)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	double deadline = now() + SESSION_BOUND_SECONDS;
	int sv[2];
	size_t sent = 0, n;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       sv) != 0)
		abort();
	c->fd = sv[1];
	/* 10.0.0.0/8, a new client each time. */
	sin.sin_addr.s_addr = htonl(0x0a000000u | (n_inputs & 0xffffffu));
	sin.sin_port = htons((uint16_t)(1024 + n_inputs % 60000));
	if (flags & F_EARLY)
		sent += client_write(c, c->in, client_piece(c, 0));
	session_start(srv, flags & F_SUBMISSION ? LISTEN_SUBMISSION
						: LISTEN_SMTP,
		      sv[0], (const struct sockaddr *)&sin, sizeof sin);
	while (srv->sessions != NULL) {
		FUZZ_CHECK(now() < deadline);
		skip_auth_delay();
		if (c->tls_at && c->ssl == NULL && sent == c->tls_at &&
		    !client_starttls(c, &sent)) {
			event_base_loop(srv->base, EVLOOP_ONCE);
		} else if (sent < c->in_len && c->in[sent] == WAIT_MARK) {
			if (server_is_idle(sv[0]))
				sent++;
			else
				event_base_loop(srv->base, EVLOOP_ONCE);
		} else if (sent < c->in_len) {
			n = client_write(c, c->in + sent,
					 client_piece(c, sent));
			if (n == 0 && c->ssl != NULL)
				client_give_up(c, &sent); /* TLS broke */
			sent += n;
			event_base_loop(srv->base, n ? EVLOOP_NONBLOCK
						     : EVLOOP_ONCE);
		} else if (!c->is_shut && server_is_idle(sv[0])) {
			client_give_up(c, &sent);
		} else {
			event_base_loop(srv->base, EVLOOP_ONCE);
		}
		client_read(c);
	}
	client_read(c);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	close(c->fd);
}

/* ---- the checks ----------------------------------------------------- */

/* Checks the reply stream; returns the number of replies. */
static size_t
check_replies(const char *p, size_t len, unsigned flags)
{
	size_t at = 0, n_replies = 0;
	char code[3] = {0};
	bool in_multi = false;
	int last_code = 0;

	while (at < len) {
		const char *line = p + at, *lf = memchr(line, '\n', len - at);
		size_t ll;

		FUZZ_CHECK(last_code != 221 && last_code != 421);
		FUZZ_CHECK(lf != NULL); /* the stream ends with a whole line */
		ll = (size_t)(lf - line) + 1;
		FUZZ_CHECK(ll >= 6 && ll <= SMTP_REPLY_LINE_MAX);
		FUZZ_CHECK(line[ll - 2] == '\r');
		FUZZ_CHECK(line[0] >= '2' && line[0] <= '5');
		FUZZ_CHECK(line[1] >= '0' && line[1] <= '5');
		FUZZ_CHECK(line[2] >= '0' && line[2] <= '9');
		FUZZ_CHECK(line[3] == ' ' || line[3] == '-');
		for (size_t i = 4; i + 2 < ll; i++)
			FUZZ_CHECK(((unsigned char)line[i] >= ' ' &&
				    line[i] != 0x7f) ||
				   line[i] == '\t');
		if (in_multi)
			FUZZ_CHECK(memcmp(code, line, 3) == 0);
		memcpy(code, line, 3);
		/* RFC 3463: an enhanced code's class is the reply's. */
		if (ll > 9 && line[4] >= '2' && line[4] <= '5' &&
		    line[5] == '.' && line[6] >= '0' && line[6] <= '9')
			FUZZ_CHECK(line[4] == line[0]);
		in_multi = line[3] == '-';
		if (!in_multi) {
			last_code = (line[0] - '0') * 100 +
				    (line[1] - '0') * 10 + (line[2] - '0');
			if (n_replies == 0)
				FUZZ_CHECK(last_code == 220 ||
					   ((flags & F_EARLY) &&
					    last_code == 554));
			n_replies++;
		}
		at += ll;
	}
	FUZZ_CHECK(!in_multi);
	return n_replies;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client c = {0};
	unsigned flags;

	if (size < FUZZ_HEADER)
		return 0;
	if (srv == NULL)
		fixture_make();
	flags = data[0];
	c.in = data + FUZZ_HEADER;
	c.in_len = size - FUZZ_HEADER;
	c.rand = data[1];
	if (flags & F_TLS)
		c.tls_at = find_starttls(c.in, c.in_len);
	run_session(&c, flags);
	if (getenv("FUZZ_SESSION_TRACE") != NULL) /* to read a crash's replies */
		fprintf(stderr, "--- replies:\n%.*s---\n", (int)c.len,
			c.replies ? c.replies : "");
	FUZZ_CHECK(check_replies(c.replies, c.len, flags) > 0);
	free(c.replies);
	if (++n_inputs % MAIL_CLEAN_EVERY == 0) {
		char mail[512];
		snprintf(mail, sizeof mail, "%s/mail", fixture_dir);
		nftw(mail, rm_delivered, 16, FTW_PHYS);
	}
	return 0;
}

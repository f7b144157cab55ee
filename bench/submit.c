/*
 * submit.c - the load client of the benchmark's auth step (bench/auth.py):
 * the same SMTP load for postern and for Postfix, with STARTTLS and
 * AUTH PLAIN, which smtp-source cannot do, and a message taken from a
 * file (a pre-signed one for the verification row), which smtp-source
 * cannot send either.
 *
 *   submit [-s SESSIONS] [-m MESSAGES] -f FILE -F FROM -t TO
 *          [-u USER -p PASS] [-N] host:port
 *
 * Each of SESSIONS threads opens one connection and reads the banner;
 * EHLO; STARTTLS if the server offers it (unless -N), then EHLO again;
 * AUTH PLAIN if the server offers it and -u was given; then MESSAGES
 * transactions on that connection (MAIL, RCPT, DATA, the text, one
 * command at a time, no pipelining), then QUIT.  The text is FILE with
 * every line ended in CRLF and dot-stuffed, prepared once.  The clock
 * runs from before the first connection to after the last QUIT.
 *
 * Prints one line to stdout: "sessions=S messages=N sent=K failed=F
 * seconds=T rate=R tls=X auth=Y" (sent: answered 250 after the text; tls
 * and auth: sessions that did each).  Exits 1 when any message failed or
 * a session could not be set up, with the first reply that went wrong on
 * stderr.  The certificate is not checked: it is a benchmark on loopback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct opts {
	const char *from, *to, *user, *pass;
	const char *host;
	int port;
	long sessions, messages;
	bool is_tls_off;
	char *text; /* CRLF, dot-stuffed, ending in ".\r\n" */
	size_t text_len;
	SSL_CTX *ctx;
};

struct totals {
	atomic_long sent, failed, tls, auth, broken;
	atomic_flag said; /* the first error has gone to stderr */
};

struct conn {
	int fd;
	SSL *ssl;
	char buf[16384];
	size_t off, len;
};

static void
say_once(struct totals *t, const char *what, const char *line)
{
	if (!atomic_flag_test_and_set(&t->said))
		fprintf(stderr, "submit: %s: %s\n", what, line);
}

static int
conn_write(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		long w;

		if (c->ssl) {
			size_t done = 0;

			if (SSL_write_ex(c->ssl, p, n, &done) != 1)
				return -1;
			w = (long)done;
		} else {
			w = write(c->fd, p, n);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
conn_fill(struct conn *c)
{
	if (c->off > 0) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == sizeof c->buf)
		return -1;
	for (;;) {
		long r;

		if (c->ssl) {
			size_t got = 0;

			if (SSL_read_ex(c->ssl, c->buf + c->len,
					sizeof c->buf - c->len, &got) != 1)
				return -1;
			r = (long)got;
		} else {
			r = read(c->fd, c->buf + c->len,
				 sizeof c->buf - c->len);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return -1;
		}
		c->len += (size_t)r;
		return 0;
	}
}

/*
 * Reads one reply, all its lines; returns its code (0 on a broken
 * connection).  The last line goes to last[] for error messages; with
 * ext non-NULL, the EHLO keywords seen are ORed in as flags.
 */
enum { EXT_STARTTLS = 1, EXT_AUTH_PLAIN = 2 };

static int
read_reply(struct conn *c, char *last, size_t last_size, int *ext)
{
	for (;;) {
		char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);

		if (!nl) {
			if (conn_fill(c) < 0)
				return 0;
			continue;
		}
		size_t n = (size_t)(nl - (c->buf + c->off));
		char *line = c->buf + c->off;

		c->off += n + 1;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		snprintf(last, last_size, "%.*s", (int)n, line);
		if (n < 3)
			return 0;
		if (ext && n > 4) {
			const char *kw = line + 4;
			size_t kn = n - 4;

			if (kn >= 8 && strncasecmp(kw, "STARTTLS", 8) == 0)
				*ext |= EXT_STARTTLS;
			if (kn >= 5 && strncasecmp(kw, "AUTH ", 5) == 0) {
				char tmp[256];

				snprintf(tmp, sizeof tmp, " %.*s ", (int)kn,
					 kw);
				for (char *q = tmp; *q; q++)
					if (*q >= 'a' && *q <= 'z')
						*q = (char)(*q - 'a' + 'A');
				if (strstr(tmp, " PLAIN "))
					*ext |= EXT_AUTH_PLAIN;
			}
		}
		if (n == 3 || line[3] == ' ')
			return (line[0] - '0') * 100 + (line[1] - '0') * 10 +
			       (line[2] - '0');
	}
}

static int
command(struct conn *c, const char *cmd, char *last, size_t last_size, int *ext)
{
	if (conn_write(c, cmd, strlen(cmd)) < 0)
		return 0;
	return read_reply(c, last, last_size, ext);
}

static int
connect_to(const struct opts *o)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)o->port)};
	int fd, one = 1;

	if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* EHLO, STARTTLS + EHLO, AUTH PLAIN: 0 when the session may send. */
static int
greet(struct conn *c, const struct opts *o, struct totals *t)
{
	char last[512];
	int ext = 0;

	if (read_reply(c, last, sizeof last, NULL) != 220)
		return say_once(t, "banner", last), -1;
	if (command(c, "EHLO submit.bench.test\r\n", last, sizeof last, &ext) !=
	    250)
		return say_once(t, "EHLO", last), -1;
	if ((ext & EXT_STARTTLS) && !o->is_tls_off) {
		if (command(c, "STARTTLS\r\n", last, sizeof last, NULL) != 220)
			return say_once(t, "STARTTLS", last), -1;
		c->ssl = SSL_new(o->ctx);
		if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 ||
		    SSL_connect(c->ssl) != 1)
			return say_once(t, "TLS handshake", "failed"), -1;
		c->off = c->len = 0;
		atomic_fetch_add(&t->tls, 1);
		ext = 0;
		if (command(c, "EHLO submit.bench.test\r\n", last, sizeof last,
			    &ext) != 250)
			return say_once(t, "EHLO after STARTTLS", last), -1;
	}
	if (o->user && (ext & EXT_AUTH_PLAIN)) {
		char plain[512], b64[720], cmd[760];
		int n = snprintf(plain, sizeof plain, "%c%s%c%s", 0, o->user, 0,
				 o->pass);

		if (n < 0 || (size_t)n >= sizeof plain)
			return say_once(t, "AUTH", "credentials too long"), -1;
		EVP_EncodeBlock((unsigned char *)b64,
				(const unsigned char *)plain, n);
		snprintf(cmd, sizeof cmd, "AUTH PLAIN %s\r\n", b64);
		if (command(c, cmd, last, sizeof last, NULL) / 100 != 2)
			return say_once(t, "AUTH PLAIN", last), -1;
		atomic_fetch_add(&t->auth, 1);
	}
	return 0;
}

struct worker {
	pthread_t tid;
	const struct opts *o;
	struct totals *t;
};

static void *
session(void *arg)
{
	struct worker *w = arg;
	const struct opts *o = w->o;
	struct totals *t = w->t;
	struct conn *c = calloc(1, sizeof *c);
	char mail[600], rcpt[600], last[512];
	long done = 0;

	snprintf(mail, sizeof mail, "MAIL FROM:<%s>\r\n", o->from);
	snprintf(rcpt, sizeof rcpt, "RCPT TO:<%s>\r\n", o->to);
	if (!c)
		goto broken;
	c->fd = connect_to(o);
	if (c->fd < 0) {
		say_once(t, "connect", strerror(errno));
		goto broken;
	}
	if (greet(c, o, t) < 0)
		goto broken;
	for (; done < o->messages; done++) {
		int code = command(c, mail, last, sizeof last, NULL);

		if (code == 250)
			code = command(c, rcpt, last, sizeof last, NULL);
		if (code == 250 || code == 251)
			code = command(c, "DATA\r\n", last, sizeof last, NULL);
		if (code == 354) {
			if (conn_write(c, o->text, o->text_len) < 0)
				code = 0;
			else
				code = read_reply(c, last, sizeof last, NULL);
			if (code == 250) {
				atomic_fetch_add(&t->sent, 1);
				continue;
			}
		}
		if (code == 0) {
			say_once(t, "connection lost", last);
			goto broken;
		}
		say_once(t, "transaction", last);
		atomic_fetch_add(&t->failed, 1);
		if (command(c, "RSET\r\n", last, sizeof last, NULL) != 250)
			goto broken;
	}
	command(c, "QUIT\r\n", last, sizeof last, NULL);
	goto out;
broken:
	atomic_fetch_add(&t->broken, 1);
	atomic_fetch_add(&t->failed, o->messages - done);
out:
	if (c) {
		if (c->ssl) {
			SSL_shutdown(c->ssl);
			SSL_free(c->ssl);
		}
		if (c->fd > 0)
			close(c->fd);
		free(c);
	}
	return NULL;
}

/* FILE as SMTP DATA text: CRLF line ends, dot-stuffed, then ".\r\n". */
static int
load_text(struct opts *o, const char *path)
{
	FILE *f = fopen(path, "rb");
	char *raw = NULL, *out;
	size_t n = 0, cap = 0, k = 0;

	if (!f)
		return -1;
	for (;;) {
		if (n == cap) {
			char *p = realloc(raw, cap = cap ? cap * 2 : 65536);

			if (!p) {
				free(raw);
				fclose(f);
				return -1;
			}
			raw = p;
		}
		size_t r = fread(raw + n, 1, cap - n, f);

		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	out = malloc(2 * n + 8);
	if (!out) {
		free(raw);
		return -1;
	}
	bool is_bol = true;

	for (size_t i = 0; i < n; i++) {
		char ch = raw[i];

		if (is_bol && ch == '.')
			out[k++] = '.';
		if (ch == '\r' && i + 1 < n && raw[i + 1] == '\n')
			continue; /* the \n below writes CRLF */
		if (ch == '\n') {
			out[k++] = '\r';
			out[k++] = '\n';
			is_bol = true;
			continue;
		}
		out[k++] = ch;
		is_bol = false;
	}
	if (!is_bol) {
		out[k++] = '\r';
		out[k++] = '\n';
	}
	out[k++] = '.';
	out[k++] = '\r';
	out[k++] = '\n';
	out[k] = '\0';
	o->text = out;
	o->text_len = k;
	free(raw);
	return 0;
}

static long
number(const char *s, const char *what)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 1 || v > 100000000) {
		fprintf(stderr, "submit: bad %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

static void
usage(void)
{
	fprintf(stderr, "usage: submit [-s sessions] [-m messages] -f file "
			"-F from -t to [-u user -p pass] [-N] host:port\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct opts o = {.sessions = 1, .messages = 1};
	struct totals t = {.said = ATOMIC_FLAG_INIT};
	const char *file = NULL;
	struct timespec t0, t1;
	char host[64];
	int ch;

	while ((ch = getopt(argc, argv, "s:m:f:F:t:u:p:N")) != -1) {
		switch (ch) {
		case 's':
			o.sessions = number(optarg, "sessions");
			break;
		case 'm':
			o.messages = number(optarg, "messages");
			break;
		case 'f':
			file = optarg;
			break;
		case 'F':
			o.from = optarg;
			break;
		case 't':
			o.to = optarg;
			break;
		case 'u':
			o.user = optarg;
			break;
		case 'p':
			o.pass = optarg;
			break;
		case 'N':
			o.is_tls_off = true;
			break;
		default:
			usage();
		}
	}
	if (optind + 1 != argc || !file || !o.from || !o.to ||
	    (o.user && !o.pass))
		usage();
	const char *colon = strrchr(argv[optind], ':');

	if (!colon || (size_t)(colon - argv[optind]) >= sizeof host)
		usage();
	snprintf(host, sizeof host, "%.*s", (int)(colon - argv[optind]),
		 argv[optind]);
	o.host = host;
	o.port = (int)number(colon + 1, "port");
	if (load_text(&o, file) < 0) {
		fprintf(stderr, "submit: cannot read %s\n", file);
		return 2;
	}
	o.ctx = SSL_CTX_new(TLS_client_method());

	struct worker *w = calloc((size_t)o.sessions, sizeof *w);

	if (!o.ctx || !w) {
		free(o.text);
		free(w);
		SSL_CTX_free(o.ctx);
		return 2;
	}
	SSL_CTX_set_verify(o.ctx, SSL_VERIFY_NONE, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < o.sessions; i++) {
		w[i].o = &o;
		w[i].t = &t;
		if (pthread_create(&w[i].tid, NULL, session, &w[i]) != 0) {
			fprintf(stderr, "submit: cannot start a thread\n");
			exit(2); /* the threads started hold o and t */
		}
	}
	for (long i = 0; i < o.sessions; i++)
		pthread_join(w[i].tid, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	double secs = (double)(t1.tv_sec - t0.tv_sec) +
		      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	long sent = atomic_load(&t.sent);

	printf("sessions=%ld messages=%ld sent=%ld failed=%ld seconds=%.4f "
	       "rate=%.1f tls=%ld auth=%ld\n",
	       o.sessions, o.sessions * o.messages, sent,
	       atomic_load(&t.failed), secs, secs > 0 ? (double)sent / secs : 0,
	       atomic_load(&t.tls), atomic_load(&t.auth));
	free(w);
	free(o.text);
	SSL_CTX_free(o.ctx);
	return atomic_load(&t.failed) || atomic_load(&t.broken) ? 1 : 0;
}

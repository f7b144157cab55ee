/*
 * latency.c - end-of-DATA to 250 latency at a fixed offered load.
 *
 *	latency -s SESSIONS -r RATE -n MESSAGES -l LENGTH -f FROM -t TO
 *		HOST:PORT
 *
 * Opens SESSIONS connections (EHLO once each), then sends MESSAGES
 * messages of LENGTH octets of text, paced so that message k is due at
 * start + k / RATE: a due message goes to the first idle session, so the
 * offered load is RATE as long as the server keeps up.  For each message
 * it takes the time when the last octet of "CRLF.CRLF" was handed to the
 * kernel and the time the complete "250 " reply line arrived, and prints
 *
 *	n=N rate=ACHIEVED p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. errors=E
 *
 * One thread and poll(2), no pipelining (RFC 5321 commands one at a
 * time, as smtp-source does), so the client adds little to what it
 * measures.  Used by bench/run.py at half of each server's peak rate.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LAT_SESSIONS_MAX 1000
#define LAT_REPLY_MAX 4096
#define LAT_CMD_MAX 600
#define LAT_TIMEOUT_SECONDS 60

enum lat_state {
	LAT_BANNER,
	LAT_EHLO,
	LAT_IDLE,
	LAT_MAIL,
	LAT_RCPT,
	LAT_DATA,
	LAT_BODY, /* writing the text */
	LAT_DOT,  /* text written, waiting for the 250 */
	LAT_QUIT,
	LAT_DONE,
};

struct lat_session {
	int fd;
	enum lat_state state;
	char in[LAT_REPLY_MAX];
	size_t in_len;
	const char *out; /* pending output */
	size_t out_len;
	char cmd[LAT_CMD_MAX];
	double t_dot;
};

struct lat {
	struct lat_session s[LAT_SESSIONS_MAX];
	int n_sessions;
	double rate;
	long n_msgs, n_started, n_done, n_errors, n_lat;
	char *body;
	size_t body_len;
	const char *from, *to;
	double *lat_ms;
	double t_start;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The text smtp-source -l sends: headers, then lines of 78 'X'. */
static char *
make_body(size_t length, size_t *len_out)
{
	const char *hdr = "From: <bench@bench.test>\r\nTo: <alice@bench.test>"
			  "\r\nSubject: latency\r\n\r\n";
	size_t h = strlen(hdr), o = h;
	char *b = malloc(h + length + length / 78 * 2 + 16);

	if (b == NULL)
		return NULL;
	memcpy(b, hdr, h);
	for (size_t i = 0; i < length; i++) {
		b[o++] = 'X';
		if (i % 78 == 77) {
			b[o++] = '\r';
			b[o++] = '\n';
		}
	}
	memcpy(b + o, "\r\n.\r\n", 5);
	*len_out = o + 5;
	return b;
}

static int
dial(const char *hostport)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd, one = 1;

	if (colon == NULL || (size_t)(colon - hostport) >= sizeof host)
		return -1;
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	sin.sin_port = htons((unsigned short)strtoul(colon + 1, NULL, 10));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void
send_cmd(struct lat_session *s, enum lat_state next, const char *fmt,
	 const char *arg)
{
	int n = snprintf(s->cmd, sizeof s->cmd, fmt, arg);

	s->out = s->cmd;
	s->out_len = n < 0 ? 0 : (size_t)n;
	s->state = next;
}

/* Writes what is pending; false on a hard error. */
static bool
flush_out(struct lat *L, struct lat_session *s)
{
	while (s->out_len > 0) {
		ssize_t w = write(s->fd, s->out, s->out_len);
		if (w < 0)
			return errno == EAGAIN || errno == EINTR;
		s->out += w;
		s->out_len -= (size_t)w;
	}
	if (s->state == LAT_BODY) {
		s->t_dot = now();
		s->state = LAT_DOT;
	}
	(void)L;
	return true;
}

/* The code of a complete reply at the start of in, or 0; *used_out is
 * its length. */
static int
reply_code(const struct lat_session *s, size_t *used_out)
{
	size_t start = 0;

	for (;;) {
		const char *nl = memchr(s->in + start, '\n', s->in_len - start);
		if (nl == NULL)
			return 0;
		if (nl - (s->in + start) >= 4 && s->in[start + 3] == ' ') {
			*used_out = (size_t)(nl - s->in) + 1;
			return (int)strtol(s->in + start, NULL, 10);
		}
		start = (size_t)(nl - s->in) + 1;
	}
}

static void
on_reply(struct lat *L, struct lat_session *s, int code)
{
	bool is_ok = code / 100 == 2 || (s->state == LAT_DATA && code == 354);

	if (!is_ok && s->state != LAT_QUIT) {
		fprintf(stderr, "latency: unexpected reply %d\n", code);
		L->n_errors++;
		if (s->state >= LAT_MAIL && s->state <= LAT_DOT)
			L->n_done++;
		s->state = LAT_DONE;
		return;
	}
	switch (s->state) {
	case LAT_BANNER:
		send_cmd(s, LAT_EHLO, "EHLO %s\r\n", "latency.bench.test");
		break;
	case LAT_EHLO:
		s->state = LAT_IDLE;
		break;
	case LAT_MAIL:
		send_cmd(s, LAT_RCPT, "RCPT TO:<%s>\r\n", L->to);
		break;
	case LAT_RCPT:
		send_cmd(s, LAT_DATA, "%s", "DATA\r\n");
		break;
	case LAT_DATA:
		s->out = L->body;
		s->out_len = L->body_len;
		s->state = LAT_BODY;
		break;
	case LAT_DOT:
		L->lat_ms[L->n_lat++] = (now() - s->t_dot) * 1000.0;
		L->n_done++;
		s->state = LAT_IDLE;
		break;
	default:
		s->state = LAT_DONE;
		break;
	}
}

static bool
on_readable(struct lat *L, struct lat_session *s)
{
	ssize_t r = read(s->fd, s->in + s->in_len, sizeof s->in - s->in_len);
	size_t used;
	int code;

	if (r <= 0)
		return r < 0 && (errno == EAGAIN || errno == EINTR);
	s->in_len += (size_t)r;
	while ((code = reply_code(s, &used)) != 0) {
		memmove(s->in, s->in + used, s->in_len - used);
		s->in_len -= used;
		on_reply(L, s, code);
	}
	return s->in_len < sizeof s->in;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(const double *v, long n, double p)
{
	long i = (long)(p * (double)(n - 1) + 0.5);

	return n > 0 ? v[i] : 0.0;
}

/* Starts due messages on idle sessions. */
static void
start_due(struct lat *L)
{
	double t = now();

	for (int i = 0; i < L->n_sessions && L->n_started < L->n_msgs; i++) {
		struct lat_session *s = &L->s[i];
		if (s->state != LAT_IDLE)
			continue;
		if (L->t_start + (double)L->n_started / L->rate > t)
			return;
		send_cmd(s, LAT_MAIL, "MAIL FROM:<%s>\r\n", L->from);
		L->n_started++;
	}
}

static int
run(struct lat *L, const char *target)
{
	struct pollfd pfd[LAT_SESSIONS_MAX];
	double deadline;
	int ready = 0;

	for (int i = 0; i < L->n_sessions; i++) {
		L->s[i].fd = dial(target);
		if (L->s[i].fd < 0) {
			fprintf(stderr, "latency: cannot connect to %s\n",
				target);
			return -1;
		}
	}
	deadline = now() + LAT_TIMEOUT_SECONDS;
	while (L->n_done < L->n_msgs && now() < deadline) {
		int idle = 0;
		for (int i = 0; i < L->n_sessions; i++)
			idle += L->s[i].state == LAT_IDLE;
		if (!ready && idle == L->n_sessions) {
			ready = 1;
			L->t_start = now();
		}
		if (ready)
			start_due(L);
		for (int i = 0; i < L->n_sessions; i++) {
			struct lat_session *s = &L->s[i];
			if (s->out_len > 0 && !flush_out(L, s))
				return -1;
			pfd[i].fd = s->state == LAT_DONE ? -1 : s->fd;
			pfd[i].events = POLLIN | (s->out_len ? POLLOUT : 0);
			pfd[i].revents = 0;
		}
		if (poll(pfd, (nfds_t)L->n_sessions, 1) < 0 && errno != EINTR)
			return -1;
		for (int i = 0; i < L->n_sessions; i++) {
			struct lat_session *s = &L->s[i];
			if ((pfd[i].revents & POLLOUT) && !flush_out(L, s))
				return -1;
			if ((pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    !on_readable(L, s)) {
				fprintf(stderr, "latency: connection lost\n");
				return -1;
			}
		}
	}
	for (int i = 0; i < L->n_sessions; i++) {
		/* A polite end; the reply does not matter. */
		if (write(L->s[i].fd, "QUIT\r\n", 6) < 0)
			perror("latency: QUIT");
		close(L->s[i].fd);
	}
	return L->n_done == L->n_msgs ? 0 : -1;
}

int
main(int argc, char **argv)
{
	static struct lat L;
	size_t length = 4096;
	double elapsed;
	long n_ok;
	int c;

	L.n_sessions = 20;
	L.rate = 100;
	L.n_msgs = 1000;
	L.from = "bench@bench.test";
	L.to = "alice@bench.test";
	while ((c = getopt(argc, argv, "s:r:n:l:f:t:")) != -1) {
		switch (c) {
		case 's': L.n_sessions = (int)strtol(optarg, NULL, 10); break;
		case 'r': L.rate = strtod(optarg, NULL); break;
		case 'n': L.n_msgs = atol(optarg); break;
		case 'l': length = strtoul(optarg, NULL, 10); break;
		case 'f': L.from = optarg; break;
		case 't': L.to = optarg; break;
		default: goto usage;
		}
	}
	if (optind + 1 != argc || L.n_sessions < 1 ||
	    L.n_sessions > LAT_SESSIONS_MAX || L.rate <= 0 || L.n_msgs < 1)
		goto usage;
	L.body = make_body(length, &L.body_len);
	L.lat_ms = calloc((size_t)L.n_msgs, sizeof *L.lat_ms);
	if (L.body == NULL || L.lat_ms == NULL)
		return 1;
	if (run(&L, argv[optind]) != 0) {
		fprintf(stderr, "latency: %ld of %ld messages done\n",
			L.n_done, L.n_msgs);
		return 1;
	}
	elapsed = now() - L.t_start;
	n_ok = L.n_lat;
	qsort(L.lat_ms, (size_t)n_ok, sizeof *L.lat_ms, cmp_double);
	printf("n=%ld rate=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
	       "max_ms=%.3f errors=%ld\n",
	       n_ok, (double)L.n_done / elapsed, pct(L.lat_ms, n_ok, 0.50),
	       pct(L.lat_ms, n_ok, 0.90), pct(L.lat_ms, n_ok, 0.99),
	       pct(L.lat_ms, n_ok, 1.0), L.n_errors);
	return L.n_errors ? 1 : 0;
usage:
	fprintf(stderr, "usage: latency -s SESSIONS -r RATE -n MESSAGES "
		"-l LENGTH -f FROM -t TO HOST:PORT\n");
	return 2;
}

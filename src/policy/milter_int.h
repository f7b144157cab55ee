/*
 * milter_int.h - what milter.c (the check: connection, timer, replies)
 * and milter_send.c (the packets of the transaction) share.
 */
#ifndef POSTERN_POLICY_MILTER_INT_H
#define POSTERN_POLICY_MILTER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "policy/milter.h"

#define MILTER_SPEC_MAX 512 /* [filter] milter as written, for logs */
#define MILTER_PORT_MAX 65535
#define MILTER_OPTNEG_WORDS 3 /* version, actions, protocol */
#define MILTER_DAEMON_NAME "postern"
#define MILTER_REPLY_MIN_DIGITS 3
#define MILTER_WHY_MAX 64 /* a failure's reason, for the log */

#define MILTER_ACTIONS                                                         \
	(MILTER_F_ADDHDRS | MILTER_F_CHGHDRS | MILTER_F_SETSYMLIST)
#define MILTER_PROTOCOL                                                        \
	(MILTER_P_NOCONNECT | MILTER_P_NOHELO | MILTER_P_NOMAIL |              \
	 MILTER_P_NORCPT | MILTER_P_NOBODY | MILTER_P_NOHDRS |                 \
	 MILTER_P_NOEOH | MILTER_P_NR_HDR | MILTER_P_NOUNKNOWN |               \
	 MILTER_P_NODATA | MILTER_P_SKIP | MILTER_P_RCPT_REJ |                 \
	 MILTER_P_NR_CONN | MILTER_P_NR_HELO | MILTER_P_NR_MAIL |              \
	 MILTER_P_NR_RCPT | MILTER_P_NR_DATA | MILTER_P_NR_UNKN |              \
	 MILTER_P_NR_EOH | MILTER_P_NR_BODY)

/* The steps of one exchange, in order. */
enum milter_step {
	STEP_OPTNEG,
	STEP_CONNECT,
	STEP_HELO,
	STEP_MAIL,
	STEP_RCPT,
	STEP_DATA,
	STEP_HEADER,
	STEP_EOH,
	STEP_BODY,
	STEP_EOB,
	STEP_END, /* BODYEOB sent: edits and the final word come */
};

struct milter_job {
	struct milter *m;
	struct milter_job *prev, *next;
	milter_done_fn cb;
	void *arg;
	struct bufferevent *bev;
	struct event *ev_timer, *ev_finish;

	char *client_ip, *client_name, *helo, *sender, *qid;
	char **rcpts;
	size_t n_rcpts;
	char *data;
	size_t data_len;
	struct milter_hdrs hdrs;

	uint32_t actions, protocol; /* as the filter took them */
	enum milter_step step;	    /* the next to send */
	enum milter_step awaited;   /* whose reply is awaited */
	size_t idx;		    /* recipient, field or body offset */
	bool is_waiting;
	bool is_finished;
	char why[MILTER_WHY_MAX]; /* of MILTER_FAILED, for the log */
	struct milter_result res;
};

struct milter {
	const struct config *cfg;
	struct event_base *base;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct timeval timeout;
	char spec[MILTER_SPEC_MAX];
	struct milter_job *jobs;
	bool is_closing;
};

/* milter_send.c: OPTNEG (version, our actions, our protocol flags). */
int milter_send_optneg(struct evbuffer *out);

/*
 * milter_send.c: writes the packet of j->step to out and moves j on
 * (skipping steps the filter declined or that have nothing to send);
 * *is_reply_out says whether the filter answers it.  -1 when out of
 * memory or j->step is past the end.
 */
int milter_emit(struct milter_job *j, struct evbuffer *out,
		bool *is_reply_out);

#endif

/*
 * limits.h - protocol limits fixed by the RFCs.
 *
 * Every limit here is a number an RFC names; tunable limits are rows of
 * src/config/keys.def instead.  Counts include the trailing CRLF where the
 * RFC's does.
 */
#ifndef POSTERN_PROTO_LIMITS_H
#define POSTERN_PROTO_LIMITS_H

/* RFC 5321 4.5.3.1.4: a command line, including the verb and CRLF. */
#define SMTP_CMD_LINE_MAX 512
/* RFC 5321 4.5.3.1.6: a line of message text, including CRLF. */
#define SMTP_TEXT_LINE_MAX 1000
/* RFC 5321 4.5.3.1.2: a domain name or address literal. */
#define SMTP_DOMAIN_MAX 255
/* RFC 5321 4.5.3.1.3: a reverse- or forward-path, including "<" and ">". */
#define SMTP_PATH_MAX 256
/*
 * RFC 5321 4.5.3.1.1: the local part every implementation must take;
 * [server] strict_envelopes holds peers to it (addr.h ADDR_STRICT_LOCAL).
 */
#define SMTP_LOCAL_RFC_MAX 64
/*
 * The longest local part postern handles: 4.5.3.1 asks for no limits where
 * possible, and VERP and SRS senders run past 64 octets, so only the path
 * bounds it: "<" local "@" a one-octet domain ">".  Every buffer that holds
 * a local part is sized from this.
 */
#define SMTP_LOCAL_MAX (SMTP_PATH_MAX - 4)
/* RFC 5321 4.5.3.1.5: a reply line, including the code and CRLF. */
#define SMTP_REPLY_LINE_MAX 512
/* RFC 4954 4: an AUTH command line and each SASL response line. */
#define SMTP_AUTH_LINE_MAX 12288
/* RFC 5321 4.5.3.1.8: recipients a server must be ready to buffer. */
#define SMTP_RCPT_MIN_BUFFER 100
/* RFC 1035 2.3.4: one label of a domain name. */
#define SMTP_LABEL_MAX 63

#endif

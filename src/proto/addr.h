/*
 * addr.h - parsing of RFC 5321 reverse- and forward-paths (pure).
 *
 * RFC 5321 4.1.2 grammar: "<" [ A-d-l ":" ] Mailbox ">", Mailbox =
 * Local-part "@" ( Domain / address-literal ); "<>" as a reverse-path; the
 * bare "<Postmaster>" as a forward-path (4.5.1).  Source routes are parsed
 * and ignored as Appendix C asks.  RFC 6531 3.3: UTF-8 in local part and
 * domain only when the caller allows it (SMTPUTF8 on MAIL).  Length limits
 * from proto/limits.h: local parts up to the path limit unless the caller
 * asks for RFC 5321's 64 octets.  Only with ADDR_ALLOW_BARE, a path
 * without angle brackets.  Nothing here looks anything up.
 */
#ifndef POSTERN_PROTO_ADDR_H
#define POSTERN_PROTO_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/limits.h"

enum addr_flags {
	ADDR_ALLOW_NULL = 1 << 0,	/* "<>" is valid (reverse-path) */
	ADDR_ALLOW_POSTMASTER = 1 << 1, /* "<Postmaster>" is valid */
	ADDR_ALLOW_UTF8 = 1 << 2,	/* RFC 6531 UTF-8 addresses */
	/*
	 * addr_parse_path: a mailbox without "<" ">" is a path too (Postfix's
	 * strict_rfc821_envelopes = no).  It runs to the first space or the
	 * end and must be all mailbox: no source route, no null path.
	 */
	ADDR_ALLOW_BARE = 1 << 3,
	/* Local parts over SMTP_LOCAL_RFC_MAX are ADDR_ERR_LOCAL_TOO_LONG. */
	ADDR_STRICT_LOCAL = 1 << 4,
};

enum addr_result {
	ADDR_OK,
	ADDR_ERR_SYNTAX,	   /* not a path: missing <>, empty part... */
	ADDR_ERR_LOCAL_TOO_LONG,   /* over SMTP_LOCAL_MAX (or the RFC's 64) */
	ADDR_ERR_DOMAIN_TOO_LONG,  /* domain over SMTP_DOMAIN_MAX or label > 63 */
	ADDR_ERR_PATH_TOO_LONG,	   /* path over SMTP_PATH_MAX */
	ADDR_ERR_NEEDS_UTF8,	   /* non-ASCII without ADDR_ALLOW_UTF8 */
};

struct addr {
	bool is_null;		/* "<>" */
	bool is_postmaster;	/* bare "<Postmaster>", domain is empty */
	bool has_route;		/* a source route was present and dropped */
	bool is_quoted;		/* local part was a quoted string */
	bool is_literal;	/* domain is an address literal "[...]" */
	bool is_utf8;		/* local part or domain holds non-ASCII */
	bool is_bare;		/* the path came without angle brackets */
	/* The local part as written (quotes included when quoted). */
	char local[SMTP_LOCAL_MAX + 1];
	/* The domain as written, or the literal with its brackets. */
	char domain[SMTP_DOMAIN_MAX + 1];
	/* "local@domain", "" for the null path, "Postmaster" alone. */
	char mailbox[SMTP_PATH_MAX + 1];
};

/*
 * Parses the path at s[0..len): s starts at "<" (or, with ADDR_ALLOW_BARE,
 * at the mailbox).  On ADDR_OK fills *out and sets *consumed_out to the
 * bytes through ">" (through the mailbox when bare); what follows is either
 * the end or a space and ESMTP parameters (esmtp.h), which the caller
 * checks.  On an error *consumed_out is 0.
 */
enum addr_result addr_parse_path(const char *s, size_t len, unsigned flags,
				 struct addr *out, size_t *consumed_out);

/*
 * The flags a server's MAIL and RCPT add for [server] strict_envelopes:
 * ADDR_STRICT_LOCAL when strict (RFC 5321 to the letter), else
 * ADDR_ALLOW_BARE (and local parts up to the path limit).
 */
unsigned addr_envelope_flags(bool is_strict);

/* Parses a bare mailbox "local@domain" (config files, 551 targets). */
enum addr_result addr_parse_mailbox(const char *s, size_t len, unsigned flags,
				    struct addr *out);

/* True when s[0..len) is a valid domain or address literal (EHLO/HELO). */
bool addr_is_domain(const char *s, size_t len, bool allow_utf8);

/*
 * True when s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF); plain ASCII is.  esmtp.c uses it for
 * RFC 6531 parameter values.
 */
bool addr_utf8_valid(const char *s, size_t len);

#endif

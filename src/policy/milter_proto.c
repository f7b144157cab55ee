/*
 * milter_proto.c - the pure part of the milter client: packet framing,
 * the message's header fields as the filter sees them, and the header
 * edits it sends back.  No sockets, no libevent; milter.c drives it,
 * tests/unit/test_milter.c and tests/fuzz/fuzz_milter.c feed it.
 *
 * A packet is a 4-octet length in network order, then that many octets:
 * one command octet and its payload.  Strings in payloads end in NUL.
 *
 * Header edits (sent after SMFIC_BODYEOB), as sendmail and Postfix apply
 * them:
 *   SMFIR_ADDHEADER  name, value            appended after the last field
 *   SMFIR_INSHEADER  index, name, value     inserted before field #index
 *                                           (0 = first; past the end:
 *                                           appended)
 *   SMFIR_CHGHEADER  index, name, value     the index-th (from 1) field of
 *                                           that name, any case, gets the
 *                                           value; an empty value deletes
 *                                           it; no such field: appended
 * index is a 4-octet number in network order.  A value's lines are
 * separated by LF (folded: LF then a space or tab); they become CRLF here.
 * Without SMFIP_HDR_LEADSPC (we do not offer it) the filter's values come
 * without the space after the colon, and ours go without it.
 *
 * Promises: nothing here reads past the lengths it is given, every growth
 * is capped (MILTER_PACKET_MAX, MILTER_HEADERS_MAX), and a failed edit
 * leaves the fields as they were.  Left to milter.c: when each packet is
 * sent or expected.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/milter.h"
#include "util/str.h"

#define FIELDS_FIRST_CAP 16
#define CRLF_LEN 2

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

enum milter_parse
milter_packet_parse(const unsigned char *buf, size_t len, char *cmd_out,
		    const unsigned char **payload_out, size_t *payload_len_out,
		    size_t *used_out)
{
	uint32_t n;

	if (len < MILTER_LEN_BYTES)
		return MILTER_PARSE_MORE;
	n = be32(buf);
	if (n == 0 || n > MILTER_PACKET_MAX)
		return MILTER_PARSE_ERR_LENGTH;
	if (len - MILTER_LEN_BYTES < n)
		return MILTER_PARSE_MORE;
	*cmd_out = (char)buf[MILTER_LEN_BYTES];
	*payload_out = buf + MILTER_LEN_BYTES + 1;
	*payload_len_out = n - 1;
	*used_out = MILTER_LEN_BYTES + (size_t)n;
	return MILTER_PARSE_OK;
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* A field name octet (RFC 5322 section 2.2: printable, not colon). */
static bool
is_name_char(char c)
{
	return c > ' ' && c < 127 && c != ':';
}

/*
 * The length of the name of the field starting line (len octets), spaces
 * before the colon left out; 0 when line is no field.
 */
static size_t
field_name_len(const char *line, size_t len)
{
	size_t i = 0, name;

	while (i < len && is_name_char(line[i]))
		i++;
	name = i;
	while (i < len && is_wsp(line[i]))
		i++;
	if (name == 0 || i >= len || line[i] != ':')
		return 0;
	return name;
}

static int
fields_grow(struct milter_hdrs *h)
{
	size_t cap;
	struct milter_field *v;

	if (h->n < h->cap)
		return 0;
	if (h->n >= MILTER_HEADERS_MAX)
		return -1;
	cap = h->cap ? h->cap * 2 : FIELDS_FIRST_CAP;
	if (cap > MILTER_HEADERS_MAX)
		cap = MILTER_HEADERS_MAX;
	v = realloc(h->v, cap * sizeof *v);
	if (v == NULL)
		return -1;
	h->v = v;
	h->cap = cap;
	return 0;
}

enum milter_parse
milter_hdrs_split(struct milter_hdrs *h, const char *data, size_t len)
{
	size_t pos = 0;

	*h = (struct milter_hdrs){.data = data, .data_len = len};
	h->hdr_end = h->body_start = len;
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - data) + 1 : len;
		size_t text = end - pos, name;
		bool is_empty = nl && (text == 1 ||
				       (text == CRLF_LEN && data[pos] == '\r'));

		if (is_empty) {
			h->hdr_end = pos;
			h->body_start = end;
			break;
		}
		if (is_wsp(data[pos]) && h->n > 0) {
			h->v[h->n - 1].len += text;
			pos = end;
			continue;
		}
		name = field_name_len(data + pos, text);
		if (name == 0) {
			h->hdr_end = h->body_start = pos;
			break;
		}
		if (h->n >= MILTER_HEADERS_MAX)
			return MILTER_PARSE_ERR_TOO_MANY;
		if (fields_grow(h) != 0)
			return MILTER_PARSE_ERR_NO_MEMORY;
		h->v[h->n++] =
		    (struct milter_field){data + pos, text, name, NULL};
		pos = end;
	}
	return MILTER_PARSE_OK;
}

size_t
milter_field_format(const struct milter_field *f, char *buf, size_t size)
{
	const char *colon = memchr(f->text, ':', f->len);
	const char *p, *end = f->text + f->len;
	size_t n = 0;

	if (colon == NULL || size < f->name_len + 1)
		return 0;
	memcpy(buf, f->text, f->name_len);
	n = f->name_len;
	buf[n++] = '\0';
	if (end > colon && end[-1] == '\n')
		end--;
	if (end > colon && end[-1] == '\r')
		end--;
	for (p = colon + 1; p < end && is_wsp(*p); p++)
		;
	for (; p < end; p++) {
		if (*p == '\r' && p + 1 < end && p[1] == '\n')
			continue;
		if (n >= size)
			return 0;
		buf[n++] = *p;
	}
	if (n >= size)
		return 0;
	buf[n++] = '\0';
	return n;
}

/*
 * A new field's text, "name: value\r\n", each LF of value not after a CR
 * made CRLF.  NULL when out of memory.
 */
static char *
field_text(const char *name, size_t name_len, const char *value,
	   size_t value_len, size_t *len_out)
{
	size_t n = 0, lfs = 0;
	uint64_t size;
	char *t;

	for (size_t i = 0; i < value_len; i++)
		if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
			lfs++;
	/* name ": " value (+ a CR per LF) CRLF NUL */
	if (!str_add_u64(name_len, value_len, &size) ||
	    !str_add_u64(size, lfs + CRLF_LEN + CRLF_LEN + 1, &size) ||
	    size > (uint64_t)MILTER_PACKET_MAX * 2 || (t = malloc(size)) == NULL)
		return NULL;
	memcpy(t, name, name_len);
	n = name_len;
	t[n++] = ':';
	if (value_len > 0)
		t[n++] = ' ';
	for (size_t i = 0; i < value_len; i++) {
		if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
			t[n++] = '\r';
		t[n++] = value[i];
	}
	t[n++] = '\r';
	t[n++] = '\n';
	t[n] = '\0';
	*len_out = n;
	return t;
}

/* Reads "name\0value\0" at p; false when it is not there. */
static bool
name_value(const unsigned char *p, size_t len, const char **name_out,
	   size_t *name_len_out, const char **value_out, size_t *value_len_out)
{
	const unsigned char *nul = memchr(p, '\0', len), *nul2;
	size_t name_len;

	if (nul == NULL)
		return false;
	name_len = (size_t)(nul - p);
	nul2 = memchr(nul + 1, '\0', len - name_len - 1);
	if (nul2 == NULL || name_len == 0)
		return false;
	for (size_t i = 0; i < name_len; i++)
		if (!is_name_char((char)p[i]))
			return false;
	*name_out = (const char *)p;
	*name_len_out = name_len;
	*value_out = (const char *)nul + 1;
	*value_len_out = (size_t)(nul2 - nul - 1);
	return true;
}

static void
field_drop(struct milter_hdrs *h, size_t i)
{
	free(h->v[i].own);
	memmove(h->v + i, h->v + i + 1, (h->n - i - 1) * sizeof *h->v);
	h->n--;
}

/* Inserts a new field at i (<= n); -1 when out of room. */
static int
field_insert(struct milter_hdrs *h, size_t i, const char *name, size_t name_len,
	     const char *value, size_t value_len)
{
	struct milter_field f = {.name_len = name_len};

	if (fields_grow(h) != 0)
		return -1;
	f.own = field_text(name, name_len, value, value_len, &f.len);
	if (f.own == NULL)
		return -1;
	f.text = f.own;
	memmove(h->v + i + 1, h->v + i, (h->n - i) * sizeof *h->v);
	h->v[i] = f;
	h->n++;
	return 0;
}

/* The position of the index-th (from 1) field named name; n if none. */
static size_t
field_find(const struct milter_hdrs *h, const char *name, size_t name_len,
	   uint32_t index)
{
	uint32_t seen = 0;

	if (index == 0)
		index = 1;
	for (size_t i = 0; i < h->n; i++) {
		if (h->v[i].name_len == name_len &&
		    strncasecmp(h->v[i].text, name, name_len) == 0 &&
		    ++seen == index)
			return i;
	}
	return h->n;
}

static enum milter_parse
field_change(struct milter_hdrs *h, size_t i, const char *name, size_t name_len,
	     const char *value, size_t value_len)
{
	struct milter_field f = {.name_len = name_len};

	if (i == h->n) {
		if (value_len == 0)
			return MILTER_PARSE_OK; /* deleting what is not there */
		return field_insert(h, h->n, name, name_len, value, value_len)
			   ? MILTER_PARSE_ERR_NO_MEMORY
			   : MILTER_PARSE_OK;
	}
	if (value_len == 0) {
		field_drop(h, i);
		return MILTER_PARSE_OK;
	}
	f.own = field_text(name, name_len, value, value_len, &f.len);
	if (f.own == NULL)
		return MILTER_PARSE_ERR_NO_MEMORY;
	f.text = f.own;
	free(h->v[i].own);
	h->v[i] = f;
	return MILTER_PARSE_OK;
}

enum milter_parse
milter_hdrs_edit(struct milter_hdrs *h, char cmd, const unsigned char *payload,
		 size_t len)
{
	const char *name, *value;
	size_t name_len, value_len, at;
	uint32_t index = 0;
	enum milter_parse rc;

	if (cmd == MILTER_R_INSHEADER || cmd == MILTER_R_CHGHEADER) {
		if (len < MILTER_LEN_BYTES)
			return MILTER_PARSE_ERR_SYNTAX;
		index = be32(payload);
		payload += MILTER_LEN_BYTES;
		len -= MILTER_LEN_BYTES;
	} else if (cmd != MILTER_R_ADDHEADER) {
		return MILTER_PARSE_ERR_SYNTAX;
	}
	if (!name_value(payload, len, &name, &name_len, &value, &value_len))
		return MILTER_PARSE_ERR_SYNTAX;
	if (cmd == MILTER_R_CHGHEADER) {
		at = field_find(h, name, name_len, index);
		rc = field_change(h, at, name, name_len, value, value_len);
	} else {
		if (h->n >= MILTER_HEADERS_MAX)
			return MILTER_PARSE_ERR_TOO_MANY;
		at = cmd == MILTER_R_ADDHEADER || index > h->n ? h->n : index;
		rc = field_insert(h, at, name, name_len, value, value_len)
			 ? MILTER_PARSE_ERR_NO_MEMORY
			 : MILTER_PARSE_OK;
	}
	if (rc == MILTER_PARSE_OK)
		h->is_edited = true;
	return rc;
}

int
milter_hdrs_render(const struct milter_hdrs *h, char **data_out,
		   size_t *len_out)
{
	uint64_t total = h->data_len - h->hdr_end;
	size_t n = 0;
	char *out;

	for (size_t i = 0; i < h->n; i++)
		if (!str_add_u64(total, h->v[i].len, &total))
			return -1;
	if (total >= SIZE_MAX || (out = malloc((size_t)total + 1)) == NULL)
		return -1;
	for (size_t i = 0; i < h->n; i++) {
		memcpy(out + n, h->v[i].text, h->v[i].len);
		n += h->v[i].len;
	}
	memcpy(out + n, h->data + h->hdr_end, h->data_len - h->hdr_end);
	n += h->data_len - h->hdr_end;
	out[n] = '\0';
	*data_out = out;
	*len_out = n;
	return 0;
}

void
milter_hdrs_free(struct milter_hdrs *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i].own);
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}

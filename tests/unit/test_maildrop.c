/*
 * test_maildrop.c - the maildrop file (spool/maildrop.c): what
 * maildrop_write leaves is read back whole, damaged or foreign files are
 * refused with a reason, and the text of a local program is made CRLF
 * (LF, bare CR, a missing last line end) and ends at a lone "." unless
 * told not to.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "spool/maildrop.h"

#define ERR_MAX 256
#define MAX_SIZE 1048576

static char dir[] = "/tmp/postern-test-maildrop-XXXXXX";

static int
setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
teardown(void **state)
{
	(void)state;
	return nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void
test_write_then_read_gives_the_same_message(void **state)
{
	static const char text[] = "Subject: hi\r\n\r\nbody\r\n";
	char md[512], name[MAILDROP_NAME_MAX], err[ERR_MAX] = "";
	char path[1024];
	struct msg *m = msg_new(), *back = NULL;
	struct stat st;

	(void)state;
	assert_true(maildrop_dir_format(dir, md, sizeof md));
	assert_int_equal(maildrop_dir_make(md), 0);
	free(m->sender);
	m->sender = strdup("alice@example.test");
	assert_int_equal(msg_add_rcpt(m, "x", "bob@example.test",
				      MSG_ROUTE_LOCAL), 0);
	assert_int_equal(msg_add_rcpt(m, "y", "carol@far.example",
				      MSG_ROUTE_LOCAL), 0);
	m->data = strdup(text);
	m->data_len = strlen(text);
	assert_int_equal(maildrop_write(md, m, name, sizeof name), 0);
	snprintf(path, sizeof path, "%s/%s", md, name);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(maildrop_read(md, name, MAX_SIZE, &back, err,
				       sizeof err), MAILDROP_OK);
	assert_string_equal(back->sender, "alice@example.test");
	assert_int_equal(back->n_rcpts, 2);
	assert_string_equal(back->rcpts[0].mailbox, "bob@example.test");
	assert_string_equal(back->rcpts[0].orig, "bob@example.test");
	assert_int_equal(back->rcpts[0].route, MSG_ROUTE_REMOTE);
	assert_string_equal(back->rcpts[1].orig, "carol@far.example");
	assert_int_equal(back->data_len, strlen(text));
	assert_memory_equal(back->data, text, strlen(text));
	msg_free(back);
	/* Nothing is left behind in tmp/. */
	snprintf(path, sizeof path, "%s/tmp", md);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(maildrop_read(md, name, 8, &back, err, sizeof err),
			 MAILDROP_ERR_FORMAT);
	msg_free(m);
}

static void
test_null_sender_round_trips(void **state)
{
	static const char f[] = "postern-maildrop 1\nsender \nrcpt a@b.test\n"
				"\nx\r\n";
	struct msg *m = NULL;
	char err[ERR_MAX];

	(void)state;
	assert_int_equal(maildrop_parse(f, strlen(f), &m, err, sizeof err),
			 MAILDROP_OK);
	assert_string_equal(m->sender, "");
	msg_free(m);
}

static const struct {
	const char *file;
	const char *why; /* a word of the error */
} bad[] = {
	{"", "not a maildrop file"},
	{"From alice Mon Jan 1\n", "not a maildrop file"},
	{"postern-maildrop 2\nsender a@b\nrcpt c@d\n\nx\r\n", "not a maildrop"},
	{"postern-maildrop 1\nrcpt c@d\n\nx\r\n", "sender"},
	{"postern-maildrop 1\nsender a@b\n\nx\r\n", "no 'rcpt"},
	{"postern-maildrop 1\nsender a@b\nrcpt c@d\n", "empty line"},
	{"postern-maildrop 1\nsender a@b\nrcpt c@d", "empty line"},
	{"postern-maildrop 1\nsender a@b\nrcpt c\td\n\nx\r\n", "rcpt ADDRESS"},
	{"postern-maildrop 1\nsender a@b\nto c@d\n\nx\r\n", "rcpt ADDRESS"},
	{"postern-maildrop 1\nsender a@b\nrcpt c@d\r\n\nx\r\n", "rcpt"},
	{"postern-maildrop 1\nsender a@b\nrcpt c@d\n\nx\n", "bare CR or LF"},
	{"postern-maildrop 1\nsender a@b\nrcpt c@d\n\nx\ry\r\n", "bare CR"},
	{"postern-maildrop 1\nsender a@b\nrcpt c@d\n\nx\r\ny", "end with CRLF"},
};

static void
test_malformed_files_are_refused_with_a_reason(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct msg *m = NULL;
		char err[ERR_MAX] = "";

		assert_int_equal(maildrop_parse(bad[i].file,
						strlen(bad[i].file), &m, err,
						sizeof err),
				 MAILDROP_ERR_FORMAT);
		assert_null(m);
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, err,
				 bad[i].why);
	}
}

static void
test_nul_in_the_text_is_refused(void **state)
{
	static const char f[] = "postern-maildrop 1\nsender a@b\nrcpt c@d\n"
				"\nx\0y\r\n";
	struct msg *m = NULL;
	char err[ERR_MAX];

	(void)state;
	assert_int_equal(maildrop_parse(f, sizeof f - 1, &m, err, sizeof err),
			 MAILDROP_ERR_FORMAT);
	assert_non_null(strstr(err, "NUL"));
}

static const struct {
	const char *in;
	bool is_dot_end;
	const char *out;
} texts[] = {
	{"a\nb\n", true, "a\r\nb\r\n"},
	{"a\r\nb\r\n", true, "a\r\nb\r\n"},
	{"a\nb", true, "a\r\nb\r\n"},
	{"a\rb\r", true, "a\r\nb\r\n"},
	{"a\r\r\nb\n", true, "a\r\n\r\nb\r\n"},
	{"a\n.\nb\n", true, "a\r\n"},
	{"a\r\n.\r\nb\n", true, "a\r\n"},
	{"a\n.", true, "a\r\n"},
	{"a\n.\nb\n", false, "a\r\n.\r\nb\r\n"},
	{"a\n..\nb\n", true, "a\r\n..\r\nb\r\n"},
	{"a\n.x\n", true, "a\r\n.x\r\n"},
	{"", true, ""},
};

static void
test_text_is_made_crlf_and_ends_at_a_lone_dot(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		struct maildrop_text *t =
			maildrop_text_new(texts[i].is_dot_end, MAX_SIZE);
		const char *in = texts[i].in;

		/* One octet at a time: a CRLF split across reads counts. */
		for (size_t j = 0; in[j] && !t->is_done; j++)
			assert_int_equal(maildrop_text_add(t, in + j, 1), 0);
		assert_int_equal(maildrop_text_end(t), 0);
		if (t->len != strlen(texts[i].out) ||
		    memcmp(t->data ? t->data : "", texts[i].out, t->len) != 0)
			fail_msg("case %zu: got %zu octets", i, t->len);
		maildrop_text_free(t);
		/* And all at once. */
		t = maildrop_text_new(texts[i].is_dot_end, MAX_SIZE);
		assert_int_equal(maildrop_text_add(t, in, strlen(in)), 0);
		assert_int_equal(maildrop_text_end(t), 0);
		assert_int_equal(t->len, strlen(texts[i].out));
		maildrop_text_free(t);
	}
}

static void
test_text_with_nul_or_over_max_is_flagged(void **state)
{
	struct maildrop_text *t = maildrop_text_new(true, MAX_SIZE);

	(void)state;
	assert_int_equal(maildrop_text_add(t, "a\0b\n", 4), 0);
	assert_true(t->has_nul);
	maildrop_text_free(t);
	t = maildrop_text_new(false, 8);
	assert_int_equal(maildrop_text_add(t, "12345\n6789\n", 11), 0);
	assert_true(t->is_too_big);
	maildrop_text_free(t);
	maildrop_text_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_then_read_gives_the_same_message),
		cmocka_unit_test(test_null_sender_round_trips),
		cmocka_unit_test(test_malformed_files_are_refused_with_a_reason),
		cmocka_unit_test(test_nul_in_the_text_is_refused),
		cmocka_unit_test(test_text_is_made_crlf_and_ends_at_a_lone_dot),
		cmocka_unit_test(test_text_with_nul_or_over_max_is_flagged),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

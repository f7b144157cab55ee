/*
 * lang.c - the five languages of the reference (ref/lang.def) and the
 * choice of one from the environment.
 *
 * The locale variables are read in POSIX order of precedence for
 * messages: LC_ALL, then LC_MESSAGES, then LANG.  The first one set and
 * non-empty decides; a language postern has no headings for, "C" and
 * "POSIX" give English.
 */
#include <stdlib.h>
#include <string.h>

#include "explain/explain.h"

/* "fr" in "fr_FR.UTF-8": ISO 639-1 codes are two letters. */
#define LANG_TAG_LEN 2

static const struct explain_lang langs[] = {
#define L(tag, native, de, wh, fx, df, wc, lm, st, sb, se, sc, sl) \
	{ (tag), (native), (de), (wh), (fx), (df), (wc), (lm), (st), (sb), \
	  (se), (sc), (sl) },
#include "../../ref/lang.def"
#undef L
};

#define N_LANGS (sizeof langs / sizeof langs[0])

size_t
explain_lang_count(void)
{
	return N_LANGS;
}

const struct explain_lang *
explain_lang_at(size_t i)
{
	return i < N_LANGS ? &langs[i] : NULL;
}

const struct explain_lang *
explain_lang_find(const char *tag)
{
	if (tag == NULL)
		return NULL;
	for (size_t i = 0; i < N_LANGS; i++)
		if (strcmp(langs[i].tag, tag) == 0)
			return &langs[i];
	return NULL;
}

/* "fr_FR.UTF-8", "fr.UTF-8", "fr" -> fr; anything else -> NULL. */
static const struct explain_lang *
from_locale(const char *value)
{
	char tag[LANG_TAG_LEN + 1];

	if (strlen(value) < LANG_TAG_LEN)
		return NULL;
	if (value[LANG_TAG_LEN] != '\0' && value[LANG_TAG_LEN] != '_' &&
	    value[LANG_TAG_LEN] != '.' && value[LANG_TAG_LEN] != '@' &&
	    value[LANG_TAG_LEN] != '-')
		return NULL;
	memcpy(tag, value, LANG_TAG_LEN);
	tag[LANG_TAG_LEN] = '\0';
	return explain_lang_find(tag);
}

const struct explain_lang *
explain_lang_from_env(void)
{
	static const char *const vars[] = { "LC_ALL", "LC_MESSAGES", "LANG" };

	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		const char *v = getenv(vars[i]);
		const struct explain_lang *l;

		if (v == NULL || *v == '\0')
			continue;
		l = from_locale(v);
		return l != NULL ? l : &langs[0];
	}
	return &langs[0];
}

/*
 * dkim.c - `postern dkim keygen DOMAIN [--selector S] [--type rsa|ed25519]
 * [--bits N] [-c FILE]`: makes a DKIM signing key in [dkim] keys as
 * DOMAIN.SELECTOR.key (PEM, mode 0600, never over an existing file) and
 * prints the DNS TXT record to publish, in zone-file form.  Also the file
 * side of src/auth/dkim.c, which does no I/O: dkim_keygen() and
 * dkim_signer_load().
 *
 * Started as root with [server] user set, the key is given to that user:
 * the server reads it after it has dropped its privileges.  The default
 * selector is "s" and the year and month (s202612), so a key made next
 * year gets a new name and both can be published while mail moves over.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/dkim.h"
#include "cli/cli.h"
#include "cli/cli_int.h"
#include "util/str.h"

#define DKIM_RSA_BITS_DEFAULT 2048
#define DKIM_RSA_BITS_MIN 1024
#define DKIM_RSA_BITS_MAX 4096
#define DKIM_TXT_MAX 2048
#define DKIM_ERR_MAX 512
#define DKIM_PATH_MAX 4096
#define DKIM_PEM_MAX 65536
#define DKIM_TXT_CHUNK 255 /* octets in one DNS character-string */

static const char usage[] =
    "usage: postern dkim keygen DOMAIN [--selector S] [--type rsa|ed25519]\n"
    "                           [--bits N] [-c FILE]\n"
    "\n"
    "Makes a DKIM signing key for DOMAIN and writes it to the [dkim] keys\n"
    "directory as DOMAIN.S.key (PEM, mode 0600; an existing file is never\n"
    "replaced), then prints the DNS TXT record to publish at\n"
    "S._domainkey.DOMAIN.  Mail leaving with a From: address at DOMAIN is\n"
    "signed with it.\n"
    "  --selector S   the key's name in DNS; default s and this year and\n"
    "                 month (s202612)\n"
    "  --type T       rsa (default; 2048 bits, --bits 1024..4096) or\n"
    "                 ed25519 (RFC 8463; not every receiver checks it:\n"
    "                 sign with an RSA key too)\n";

static EVP_PKEY *
generate(const char *type, unsigned bits)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(
	    NULL, strcmp(type, "rsa") == 0 ? "RSA" : "ED25519", NULL);
	EVP_PKEY *key = NULL;

	if (pc == NULL || EVP_PKEY_keygen_init(pc) != 1 ||
	    (strcmp(type, "rsa") == 0 &&
	     EVP_PKEY_CTX_set_rsa_keygen_bits(pc, (int)bits) != 1) ||
	    EVP_PKEY_generate(pc, &key) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(pc);
	return key;
}

/* key as PKCS#8 PEM, written whole to fd. */
static int
write_pem(int fd, EVP_PKEY *key, char **pem_out, size_t *len_out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long n;
	size_t off = 0;

	if (bio == NULL ||
	    PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) !=
		1 ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0) {
		BIO_free(bio);
		errno = ENOMEM;
		return -1;
	}
	while (off < (size_t)n) {
		ssize_t w = write(fd, data + off, (size_t)n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			BIO_free(bio);
			return -1;
		}
		off += (size_t)w;
	}
	*pem_out = malloc((size_t)n);
	if (*pem_out != NULL)
		memcpy(*pem_out, data, (size_t)n);
	*len_out = (size_t)n;
	BIO_free(bio);
	return *pem_out ? 0 : -1;
}

int
dkim_keygen(const char *path, const char *type, unsigned bits, char *txt,
	    size_t txtsize, char *err, size_t errsize)
{
	struct dkim_signer *k;
	EVP_PKEY *key;
	char *pem = NULL;
	size_t pem_len = 0;
	int fd, r;

	if (strcmp(type, "rsa") != 0 && strcmp(type, "ed25519") != 0) {
		snprintf(err, errsize,
			 "unknown key type '%s': say rsa or "
			 "ed25519",
			 type);
		return -1;
	}
	if (bits == 0)
		bits = DKIM_RSA_BITS_DEFAULT;
	if (strcmp(type, "rsa") == 0 &&
	    (bits < DKIM_RSA_BITS_MIN || bits > DKIM_RSA_BITS_MAX)) {
		snprintf(err, errsize,
			 "RSA keys have 1024 to 4096 bits "
			 "(2048 recommended), not %u",
			 bits);
		return -1;
	}
	if ((key = generate(type, bits)) == NULL) {
		snprintf(err, errsize, "cannot generate a %s key (OpenSSL)",
			 type);
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			snprintf(err, errsize,
				 "%s exists: remove it or pick "
				 "another selector (--selector)",
				 path);
		else
			snprintf(err, errsize, "cannot create %s: %s", path,
				 strerror(errno));
		EVP_PKEY_free(key);
		return -1;
	}
	r = write_pem(fd, key, &pem, &pem_len);
	EVP_PKEY_free(key);
	if (close(fd) != 0 || r != 0) {
		snprintf(err, errsize, "cannot write %s: %s", path,
			 strerror(errno));
		unlink(path);
		free(pem);
		return -1;
	}
	/* The TXT record from the file's text: what the server will load. */
	k = dkim_signer_from_pem(pem, pem_len, "example.org", "s", err,
				 errsize);
	free(pem);
	if (k == NULL)
		return -1;
	r = dkim_signer_txt(k, txt, txtsize);
	dkim_signer_free(k);
	if (r != 0)
		snprintf(err, errsize, "TXT record does not fit");
	return r;
}

struct dkim_signer *
dkim_signer_load(const char *path, const char *domain, const char *selector,
		 char *err, size_t size)
{
	char *pem = malloc(DKIM_PEM_MAX);
	struct dkim_signer *k = NULL;
	FILE *fp;
	size_t n;

	if (pem == NULL) {
		snprintf(err, size, "out of memory");
		return NULL;
	}
	if ((fp = fopen(path, "re")) == NULL) {
		snprintf(err, size, "cannot read %s: %s", path,
			 strerror(errno));
		free(pem);
		return NULL;
	}
	n = fread(pem, 1, DKIM_PEM_MAX, fp);
	fclose(fp);
	if (n == DKIM_PEM_MAX)
		snprintf(err, size, "%s: too long for a key", path);
	else
		k = dkim_signer_from_pem(pem, n, domain, selector, err, size);
	if (k == NULL && n < DKIM_PEM_MAX) {
		size_t l = strlen(err);

		snprintf(err + l, size - l, " (%s)", path);
	}
	free(pem);
	return k;
}

/* The record as a zone-file line: quoted strings of at most 255 octets. */
static void
print_record(const char *selector, const char *domain, const char *txt)
{
	const char *p = strstr(txt, "p=");
	size_t head = p ? (size_t)(p - txt) : 0, n = strlen(txt);

	printf("%s._domainkey.%s. IN TXT (", selector, domain);
	if (head > 0)
		printf(" \"%.*s\"", (int)head, txt);
	for (size_t i = head; i < n; i += DKIM_TXT_CHUNK) {
		size_t k = n - i < DKIM_TXT_CHUNK ? n - i : DKIM_TXT_CHUNK;

		printf(" \"%.*s\"", (int)k, txt + i);
	}
	printf(" )\n");
}

/* As root with [server] user: the server reads the key as that user. */
static int
give_to_user(const struct config *cfg, const char *path)
{
	struct passwd *pw;

	if (geteuid() != 0 || cfg->server_user[0] == '\0')
		return 0;
	if ((pw = getpwnam(cfg->server_user)) == NULL) {
		fprintf(stderr,
			"postern dkim: no user '%s' ([server] user) "
			"to own %s\n",
			cfg->server_user, path);
		return -1;
	}
	if (chown(path, pw->pw_uid, pw->pw_gid) != 0) {
		fprintf(stderr, "postern dkim: cannot give %s to %s: %s\n",
			path, cfg->server_user, strerror(errno));
		return -1;
	}
	return 0;
}

static int
keygen(const char *conf, const char *domain, const char *selector,
       const char *type, unsigned bits)
{
	char path[DKIM_PATH_MAX], txt[DKIM_TXT_MAX], err[DKIM_ERR_MAX];
	struct config *cfg;
	struct stat st;
	int n;

	if ((cfg = cli_config_load_tool(conf)) == NULL)
		return 1;
	if (stat(cfg->dkim_keys, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr,
			"postern dkim: the key directory %s ([dkim] "
			"keys) does not exist; create it: mkdir -p %s\n",
			cfg->dkim_keys, cfg->dkim_keys);
		config_free(cfg);
		return 1;
	}
	n = snprintf(path, sizeof path, "%s/%s.%s.key", cfg->dkim_keys, domain,
		     selector);
	if (n < 0 || (size_t)n >= sizeof path) {
		fprintf(stderr, "postern dkim: key path too long\n");
		config_free(cfg);
		return 1;
	}
	if (dkim_keygen(path, type, bits, txt, sizeof txt, err, sizeof err) !=
	    0) {
		fprintf(stderr, "postern dkim: %s\n", err);
		config_free(cfg);
		return 1;
	}
	n = give_to_user(cfg, path);
	config_free(cfg);
	if (n != 0)
		return 1;
	printf("wrote %s\n", path);
	print_record(selector, domain, txt);
	printf("publish this TXT record in the DNS zone of %s; mail from "
	       "@%s is signed with selector %s\n",
	       domain, domain, selector);
	return 0;
}

/* Domain and selector end up in a file name and a DNS name. */
static bool
is_name(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max || s[0] == '.' || s[0] == '-' ||
	    strstr(s, "..") != NULL)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' ||
		      *s == '_'))
			return false;
	return true;
}

int
cli_dkim(int argc, char **argv)
{
	const char *conf = CLI_DEFAULT_CONFIG, *domain = NULL;
	const char *selector = NULL, *type = "rsa";
	char def_selector[32];
	uint64_t bits = 0;
	time_t now = time(NULL);
	struct tm tm;
	int i = 2;

	if (argc >= 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "keygen") != 0) {
		fprintf(stderr, "postern dkim: say keygen\n%s", usage);
		return 2;
	}
	for (; i < argc; i++) {
		bool has_arg = i + 1 < argc;

		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "-c") == 0 && has_arg) {
			conf = argv[++i];
		} else if (strcmp(argv[i], "--selector") == 0 && has_arg) {
			selector = argv[++i];
		} else if (strcmp(argv[i], "--type") == 0 && has_arg) {
			type = argv[++i];
		} else if (strcmp(argv[i], "--bits") == 0 && has_arg) {
			if (!str_to_u64(argv[++i], &bits) ||
			    bits > DKIM_RSA_BITS_MAX)
				bits = 1; /* refused below, with the range */
		} else if (argv[i][0] != '-' && domain == NULL) {
			domain = argv[i];
		} else {
			fprintf(stderr, "postern dkim: unexpected '%s'\n%s",
				argv[i], usage);
			return 2;
		}
	}
	if (domain == NULL || !is_name(domain, 254)) {
		fprintf(stderr, "postern dkim keygen: %s\n%s",
			domain ? "bad DOMAIN" : "needs a DOMAIN", usage);
		return 2;
	}
	if (strcmp(type, "rsa") != 0 && strcmp(type, "ed25519") != 0) {
		fprintf(stderr,
			"postern dkim keygen: --type is rsa or "
			"ed25519, not '%s'\n",
			type);
		return 2;
	}
	if (selector == NULL) {
		gmtime_r(&now, &tm);
		snprintf(def_selector, sizeof def_selector, "s%04d%02d",
			 tm.tm_year + 1900, tm.tm_mon + 1);
		selector = def_selector;
	}
	if (!is_name(selector, 64)) {
		fprintf(stderr,
			"postern dkim keygen: bad selector '%s': use "
			"letters, digits, '-' and dots\n",
			selector);
		return 2;
	}
	return keygen(conf, domain, selector, type, (unsigned)bits);
}

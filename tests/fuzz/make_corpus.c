/*
 * Writes the seed corpus of fuzz_recover: small valid logs made by the
 * library itself, one per shape the recovery code distinguishes, plus a few
 * damaged ones so the fuzzer starts next to the interesting branches.
 *
 *   make_corpus OUTDIR
 *
 * The files are checked in under tests/fuzz/corpus/; rerun this after a
 * format change. Their bytes differ from run to run (the file header holds
 * the creation time), which does not matter to the fuzzer.
 */
#include <dskvs.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *outdir;

static void die(const char *what, int rc)
{
	fprintf(stderr, "make_corpus: %s: %s (%s)\n", what,
	        rc ? dskvs_err_name(rc) : strerror(errno), dskvs_errmsg(NULL));
	exit(1);
}

#define OK(expr)                         \
	do {                             \
		int rc_ = (expr);        \
		if (rc_ != DSKVS_OK)     \
			die(#expr, rc_); \
	} while (0)

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b;
	if (f == NULL)
		die(path, 0);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc(*len + 1);
	if (b == NULL || fread(b, 1, *len, f) != *len)
		die(path, 0);
	fclose(f);
	return b;
}

/* Save the first `len` bytes of the store's log (all if len is 0), with
 * byte `flip` (if not 0) xor'ed, as OUTDIR/name. */
static void save(const char *dir, const char *name, size_t len, size_t flip)
{
	char src[512], dst[512];
	size_t n;
	snprintf(src, sizeof(src), "%s/dskvs.log", dir);
	snprintf(dst, sizeof(dst), "%s/%s", outdir, name);
	unsigned char *b = slurp(src, &n);
	if (len == 0 || len > n)
		len = n;
	if (flip && flip < len)
		b[flip] ^= 0x5a;
	FILE *f = fopen(dst, "wb");
	if (f == NULL || fwrite(b, 1, len, f) != len || fclose(f) != 0)
		die(dst, 0);
	free(b);
	printf("%-24s %6zu bytes\n", name, len);
}

static void rmtree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];
	while (d && (e = readdir(d)) != NULL) {
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static dskvs *fresh(char *dir, size_t cap)
{
	dskvs *s;
	snprintf(dir, cap, "/tmp/dskvs-corpus-XXXXXX");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", 0);
	OK(dskvs_open(dir, NULL, &s));
	return s;
}

static void put(dskvs *s, const char *key, const char *val)
{
	OK(dskvs_put(s, key, val, strlen(val), NULL, NULL));
}

int main(int argc, char **argv)
{
	char dir[64];
	dskvs *s;

	if (argc != 2) {
		fprintf(stderr, "usage: make_corpus OUTDIR\n");
		return 2;
	}
	outdir = argv[1];
	mkdir(outdir, 0755);

	/* A fresh log: the file header alone. */
	s = fresh(dir, sizeof(dir));
	OK(dskvs_close(s));
	save(dir, "empty", 0, 0);
	save(dir, "torn-header", 13, 0);
	rmtree(dir);

	/* Puts, deletes and DeleteAlls; then damaged copies of it. */
	s = fresh(dir, sizeof(dir));
	put(s, "artist/daft_punk", "discovery");
	put(s, "artist/air", "moon safari");
	put(s, "album/homework", "1997");
	put(s, "artist/daft_punk", "homework");
	OK(dskvs_delete(s, "artist/air"));
	put(s, "label/virgin", "");
	OK(dskvs_delete_all(s, "album"));
	put(s, "album/tron", "legacy");
	OK(dskvs_close(s));
	save(dir, "mixed", 0, 0);
	save(dir, "mixed-torn-tail", 250, 0);
	save(dir, "mixed-damaged-middle", 0, 80);
	save(dir, "mixed-damaged-header", 0, 20);
	rmtree(dir);

	/* Members with slashes, binary values, one value over 4 KiB. */
	s = fresh(dir, sizeof(dir));
	put(s, "a/b/c/d", "nested member");
	OK(dskvs_put(s, "bin/x", "\0\1\2\3\xff", 5, NULL, NULL));
	{
		char *big = malloc(5000);
		if (big == NULL)
			die("malloc", 0);
		memset(big, 'v', 5000);
		OK(dskvs_put(s, "big/v", big, 5000, NULL, NULL));
		free(big);
	}
	OK(dskvs_delete(s, "a/b/c/d"));
	OK(dskvs_close(s));
	save(dir, "shapes", 0, 0);
	rmtree(dir);

	/* A compacted log: a snapshot then later records, several reopens
	 * (sequence numbers continue). */
	s = fresh(dir, sizeof(dir));
	for (int i = 0; i < 30; i++) {
		char k[32], v[32];
		snprintf(k, sizeof(k), "c%d/k%d", i % 3, i % 7);
		snprintf(v, sizeof(v), "value %d", i);
		put(s, k, v);
	}
	OK(dskvs_compact(s));
	put(s, "c0/after", "compaction");
	OK(dskvs_delete_all(s, "c1"));
	OK(dskvs_close(s));
	OK(dskvs_open(dir, NULL, &s));
	put(s, "c2/k0", "reopened");
	OK(dskvs_close(s));
	save(dir, "compacted", 0, 0);
	rmtree(dir);
	return 0;
}

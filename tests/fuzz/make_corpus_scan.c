/*
 * Writes the seed corpus of fuzz_scan (tests/fuzz/corpus_scan/):
 *  - raw-*: real logs (mode byte 0, then the file) written by the library
 *    through the public API, some cut or with a byte flipped, and format-1
 *    logs encoded from descriptions;
 *  - d-*: descriptions (fuzz_scan.h, fuzz_scan.c) of one shape each: clean
 *    logs of every record type, sealed parts, each kind of damage, record
 *    images inside values, nested images, impossible records, headers of
 *    other versions.
 *
 *   make_corpus_scan OUTDIR
 *
 * Rerun after a format or description-language change. The raw files of
 * real stores differ from run to run (salt, creation time), which does not
 * matter to the fuzzer. Every file is small (at most a few KiB).
 */
#include "fuzz_scan.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *outdir;
static unsigned nfiles;

static void die(const char *what, int rc)
{
	fprintf(stderr, "make_corpus_scan: %s: %s (%s)\n", what,
	        rc ? dskvs_err_name(rc) : strerror(errno), dskvs_errmsg(NULL));
	exit(1);
}

#define OK(expr)                         \
	do {                             \
		int rc_ = (expr);        \
		if (rc_ != DSKVS_OK)     \
			die(#expr, rc_); \
	} while (0)

static void write_file(const char *name, const void *a, size_t alen,
                       const void *b, size_t blen)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(a, 1, alen, f) != alen ||
	    (blen && fwrite(b, 1, blen, f) != blen) || fclose(f) != 0)
		die(path, 0);
	printf("%-28s %6zu bytes\n", name, alen + blen);
	nfiles++;
}

/* ---- real logs ---------------------------------------------------------- */

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

/* The store's log as a raw input: its first `len` bytes (all if 0), byte
 * `flip` (if not 0) xor'ed. */
static void save_raw(const char *dir, const char *name, size_t len, size_t flip)
{
	static const unsigned char mode = FS_MODE_RAW;
	char src[512];
	size_t n;
	snprintf(src, sizeof(src), "%s/" DSKVS_LOG_NAME, dir);
	unsigned char *b = slurp(src, &n);
	if (len == 0 || len > n)
		len = n;
	if (flip && flip < len)
		b[flip] ^= 0x5a;
	write_file(name, &mode, 1, b, len);
	free(b);
}

static size_t n_log(const char *dir)
{
	char src[512];
	size_t n;
	snprintf(src, sizeof(src), "%s/" DSKVS_LOG_NAME, dir);
	free(slurp(src, &n));
	return n;
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
	dskvs_options o;
	snprintf(dir, cap, "/tmp/dskvs-corpus-XXXXXX");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", 0);
	dskvs_options_init(&o);
	o.auto_compact = 0;
	OK(dskvs_open(dir, &o, &s));
	return s;
}

static void put(dskvs *s, const char *key, const char *val)
{
	OK(dskvs_put(s, key, val, strlen(val), NULL, NULL));
}

static void real_logs(void)
{
	char dir[64];
	dskvs *s;

	s = fresh(dir, sizeof(dir));
	OK(dskvs_close(s));
	save_raw(dir, "raw-empty", 0, 0);
	save_raw(dir, "raw-torn-header", 13, 0);
	rmtree(dir);

	/* Batches (one per sync), each proven by the next or by a mark. */
	s = fresh(dir, sizeof(dir));
	put(s, "artist/daft_punk", "discovery");
	put(s, "artist/air", "moon safari");
	OK(dskvs_sync(s));
	put(s, "album/homework", "1997");
	OK(dskvs_delete(s, "artist/air"));
	OK(dskvs_sync(s));
	OK(dskvs_delete_all(s, "album"));
	put(s, "label/virgin", "");
	OK(dskvs_sync(s));
	put(s, "album/tron", "legacy");
	OK(dskvs_close(s));
	save_raw(dir, "raw-batches", 0, 0);
	save_raw(dir, "raw-batches-torn", 300, 0);
	save_raw(dir, "raw-batches-flip-first", 0, 40);
	save_raw(dir, "raw-batches-flip-hdr", 0, 70);
	save_raw(dir, "raw-batches-flip-data", 0, 90);
	rmtree(dir);

	/* A compacted log: a sealed part, then batches, then a reopen. */
	s = fresh(dir, sizeof(dir));
	for (int i = 0; i < 12; i++) {
		char k[32], v[32];
		snprintf(k, sizeof(k), "c%d/k%d", i % 3, i % 5);
		snprintf(v, sizeof(v), "value %d", i);
		put(s, k, v);
	}
	OK(dskvs_compact(s));
	put(s, "c0/after", "compaction");
	OK(dskvs_sync(s));
	OK(dskvs_delete_all(s, "c1"));
	OK(dskvs_close(s));
	OK(dskvs_open(dir, NULL, &s));
	put(s, "c2/k0", "reopened");
	OK(dskvs_close(s));
	save_raw(dir, "raw-compacted", 0, 0);
	save_raw(dir, "raw-compacted-flip-sealed", 0, 100);
	save_raw(dir, "raw-compacted-short", 500, 0);
	save_raw(dir, "raw-compacted-torn", n_log(dir) - 5, 0);
	rmtree(dir);

	/* Odd keys and values. */
	s = fresh(dir, sizeof(dir));
	put(s, "a/b/c/d", "nested member");
	OK(dskvs_put(s, "bin/x", "\0\1\2\3\xff", 5, NULL, NULL));
	{
		char big[1500];
		memset(big, 'v', sizeof(big));
		OK(dskvs_put(s, "big/v", big, sizeof(big), NULL, NULL));
	}
	OK(dskvs_delete(s, "a/b/c/d"));
	OK(dskvs_close(s));
	save_raw(dir, "raw-shapes", 0, 0);
	rmtree(dir);
}

/* ---- descriptions ------------------------------------------------------- */

struct desc {
	unsigned char b[1024];
	size_t n;
};

static void d8(struct desc *d, unsigned v)
{
	if (d->n == sizeof(d->b)) {
		fprintf(stderr, "make_corpus_scan: description too long\n");
		exit(1);
	}
	d->b[d->n++] = (unsigned char)v;
}
static void d32(struct desc *d, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		d8(d, (v >> (8 * i)) & 0xff);
}
static void d64(struct desc *d, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		d8(d, (unsigned)(v >> (8 * i)) & 0xff);
}

static void begin(struct desc *d, unsigned mode)
{
	d->n = 0;
	d8(d, mode);
	if (mode == FS_MODE_V2)
		d32(d, 0xc0ffee42u);
}
static void op(struct desc *d, unsigned kind, unsigned h)
{
	d8(d, kind | (h << 4));
}
/* A put (key byte kb, value length byte vb), optionally ending its batch. */
static void dput(struct desc *d, unsigned kb, unsigned vb, int end)
{
	op(d, FS_REC, end ? 4 : 0);
	d8(d, kb);
	d8(d, vb);
}
/* A put with the x byte of FS_REC (extra bytes, if x asks for them, are
 * the caller's, after this). */
static void dputx(struct desc *d, unsigned x, int end)
{
	op(d, FS_REC, 8 | (end ? 4 : 0));
	d8(d, x);
}
static void ddel(struct desc *d, unsigned kb, int end)
{
	op(d, FS_REC, 2 | (end ? 4 : 0));
	d8(d, kb);
}
static void ddelall(struct desc *d, unsigned kb, int end)
{
	op(d, FS_REC, 3 | (end ? 4 : 0));
	d8(d, kb);
}
/* Members of a batch of writes (flag DSKVS_REC_GRP): a put, a delete; the
 * next record without the flag ends the group. */
static void dgput(struct desc *d, unsigned kb, unsigned vb)
{
	op(d, FS_REC, 1);
	d8(d, kb & 0x7f);
	d8(d, vb);
}
static void dgdel(struct desc *d, unsigned kb)
{
	op(d, FS_REC, 1);
	d8(d, kb | 0x80);
}
static void dmark(struct desc *d, unsigned h)
{
	op(d, FS_MARK, h);
}
/* Three batches, each ended and followed by a mark in format 2. */
static void batches(struct desc *d, int marks)
{
	dput(d, 0x01, 8, 0);
	dput(d, 0x12, 20, 0);
	ddel(d, 0x01, 1);
	if (marks)
		dmark(d, 0);
	dput(d, 0x23, 3, 0);
	ddelall(d, 0x10, 1);
	if (marks)
		dmark(d, 0);
	dput(d, 0x34, 40, 1);
	if (marks)
		dmark(d, 0);
}

static void save_desc(const char *name, const struct desc *d)
{
	write_file(name, d->b, d->n, NULL, 0);
}

/* The log a description stands for, saved as a raw input. */
static void save_compiled(const char *name, const struct desc *d)
{
	static const unsigned char mode = FS_MODE_RAW;
	size_t len;
	int clean;
	const unsigned char *log = fuzz_scan_log(d->b, d->n, &len, &clean);
	write_file(name, &mode, 1, log, len);
}

static void descriptions(void)
{
	struct desc d;

	/* Clean logs. */
	begin(&d, FS_MODE_V2);
	batches(&d, 1);
	save_desc("d-v2-batches", &d);
	begin(&d, FS_MODE_V1);
	batches(&d, 0);
	save_desc("d-v1-batches", &d);
	save_compiled("raw-v1-batches", &d);
	/* Format 1 before its first end of batch: not ordered yet. */
	begin(&d, FS_MODE_V1);
	dputx(&d, 0x02, 0); /* seq hi+2+byte */
	d8(&d, 9);
	d8(&d, 0x01);
	d8(&d, 4);
	dputx(&d, 0x03, 1); /* seq hi-1-byte: allowed, unordered */
	d8(&d, 2);
	d8(&d, 0x02);
	d8(&d, 4);
	dput(&d, 0x03, 4, 1);
	save_desc("d-v1-unordered", &d);
	save_compiled("raw-v1-unordered", &d);
	begin(&d, FS_MODE_V20);
	batches(&d, 1);
	save_desc("d-v2-salt0", &d);

	/* A sealed part, then batches numbered from 1. */
	begin(&d, FS_MODE_V2K);
	dput(&d, 0x01, 10, 0);
	dput(&d, 0x02, 10, 0);
	dputx(&d, 0x18, 0); /* seq hi+1, batch raw: 0 */
	d32(&d, 0);
	d8(&d, 0x03);
	d8(&d, 5);
	op(&d, FS_SEAL, 0);
	batches(&d, 1);
	save_desc("d-sealed", &d);
	/* ... with damage inside it (the second record, of 12). */
	op(&d, FS_FLIP, 2);
	d8(&d, 40);
	d8(&d, 0);
	d8(&d, 0x10);
	d8(&d, 10);
	save_desc("d-sealed-flip", &d);
	/* The whole file sealed. */
	begin(&d, FS_MODE_V2K);
	batches(&d, 1);
	op(&d, FS_SEAL, 0);
	save_desc("d-all-sealed", &d);
	/* A sealed length past the end, inside a record. */
	begin(&d, FS_MODE_V2K);
	batches(&d, 1);
	op(&d, FS_SEAL, 1);
	d8(&d, 0xf0);
	save_desc("d-sealed-inside-rec", &d);
	op(&d, FS_SEAL, 1);
	d8(&d, 0x10);
	save_desc("d-sealed-past-end", &d);

	/* Damage in the last batch: a torn tail. */
	begin(&d, FS_MODE_V2K);
	batches(&d, 0);
	dput(&d, 0x45, 30, 0);
	dput(&d, 0x46, 30, 0);
	op(&d, FS_TRUNC, 1);
	d8(&d, 7);
	save_desc("d-torn-cut", &d);
	begin(&d, FS_MODE_V2K);
	batches(&d, 0);
	dput(&d, 0x45, 30, 0);
	dput(&d, 0x46, 30, 0);
	op(&d, FS_FLIP, 1 | 4); /* the last record's header */
	d8(&d, 13);
	d8(&d, 0);
	d8(&d, 0x04);
	save_desc("d-torn-flip", &d);
	begin(&d, FS_MODE_V2K);
	batches(&d, 1);
	op(&d, FS_GARB, 0); /* 64 zero bytes */
	d8(&d, 63);
	save_desc("d-torn-zeros", &d);
	begin(&d, FS_MODE_V2K);
	batches(&d, 0);
	op(&d, FS_GARB, 3); /* plausible header starts */
	d8(&d, 200);
	save_desc("d-torn-plausible", &d);

	/* Damage followed by a later batch: synced data was damaged. */
	begin(&d, FS_MODE_V2K);
	dput(&d, 0x01, 10, 0);
	dput(&d, 0x02, 10, 1);
	dput(&d, 0x03, 10, 1);
	op(&d, FS_FLIP, 2); /* data of the record two back */
	d8(&d, 40);
	d8(&d, 0);
	d8(&d, 1);
	d8(&d, 0x01);
	save_desc("d-proof-later-batch", &d);
	/* ... proven by a mark only. */
	begin(&d, FS_MODE_V2K);
	dput(&d, 0x01, 10, 0);
	dput(&d, 0x02, 10, 1);
	dmark(&d, 0);
	op(&d, FS_FLIP, 2);
	d8(&d, 37);
	d8(&d, 0);
	d8(&d, 1);
	d8(&d, 0x20);
	save_desc("d-proof-mark", &d);
	/* Damage in batch 2, then a record of batch 3 whose sequence
	 * number is not above the records before the damage: no proof. */
	begin(&d, FS_MODE_V2K);
	dput(&d, 0x01, 10, 1);
	dput(&d, 0x02, 10, 0);
	dputx(&d, 0x03 | 0x08, 1); /* seq hi-1, next batch */
	d8(&d, 0);
	d8(&d, 0x03);
	d8(&d, 10);
	op(&d, FS_FLIP, 2); /* the second record */
	d8(&d, 45);
	d8(&d, 0);
	d8(&d, 0x01);
	d8(&d, 1);
	save_desc("d-noproof-seq", &d);
	/* Damage, then a later batch from another file: no proof. */
	begin(&d, FS_MODE_V2K);
	dput(&d, 0x01, 10, 1);
	dputx(&d, 0x40, 1);
	d8(&d, 0x02);
	d8(&d, 10);
	op(&d, FS_FLIP, 2); /* the first record */
	d8(&d, 50);
	d8(&d, 0);
	d8(&d, 0x01);
	d8(&d, 1);
	save_desc("d-noproof-salt", &d);

	/* Record images inside values. */
	begin(&d, FS_MODE_V2K);
	batches(&d, 1);
	op(&d, FS_EMBED, 1 | 2 | 4); /* the last, with prefix and suffix */
	d8(&d, 3);
	d8(&d, 5);
	d8(&d, 0x55);
	op(&d, FS_EMBED, 0);
	d8(&d, 2);
	d8(&d, 0x56);
	save_desc("d-embed", &d);
	op(&d, FS_FLIP, 1);
	d8(&d, 70);
	d8(&d, 0);
	d8(&d, 0x01);
	save_desc("d-embed-flip", &d);
	/* Nested: a record wrapped six times. */
	begin(&d, FS_MODE_V2K);
	dput(&d, 0x01, 16, 0);
	for (int i = 0; i < 6; i++) {
		op(&d, FS_EMBED, 1 | 8);
		d8(&d, 0x10 + (unsigned)i);
	}
	dput(&d, 0x02, 4, 1);
	save_desc("d-nested", &d);
	/* Forged images: own salt (proof after damage), salt 0, another. */
	for (unsigned v = 0; v < 3; v++) {
		char name[32];
		begin(&d, FS_MODE_V2K);
		dput(&d, 0x01, 10, 0);
		dput(&d, 0x02, 10, 0);
		op(&d, FS_FORGE, v | (v == 1 ? 4 : 0));
		d8(&d, 0);
		d8(&d, 3);
		d8(&d, 0x03);
		op(&d, FS_FLIP, 2);
		d8(&d, 40);
		d8(&d, 1);
		d8(&d, 0x01);
		d8(&d, 0x08);
		snprintf(name, sizeof(name), "d-forge-%u", v);
		save_desc(name, &d);
	}

	/* Duplicates and sequence numbers against the rules. */
	begin(&d, FS_MODE_V2K);
	batches(&d, 1);
	op(&d, FS_COPY, 0);
	d8(&d, 2);
	save_desc("d-copy", &d);
	begin(&d, FS_MODE_V2K);
	batches(&d, 1);
	op(&d, FS_COPY, 1); /* the last mark again: allowed */
	dput(&d, 0x44, 2, 1);
	save_desc("d-copy-mark", &d);
	begin(&d, FS_MODE_V2K);
	dput(&d, 0x01, 2, 0);
	dputx(&d, 0x05, 1); /* the largest sequence number */
	d8(&d, 0x02);
	d8(&d, 2);
	dmark(&d, 0);
	dput(&d, 0x03, 2, 0); /* one more */
	save_desc("d-seq-max", &d);
	begin(&d, FS_MODE_V2K);
	dput(&d, 0x01, 2, 1);
	dmark(&d, 4); /* a mark below the last record */
	dput(&d, 0x02, 2, 1);
	save_desc("d-mark-low", &d);
	begin(&d, FS_MODE_V2K);
	dputx(&d, 0x04, 1); /* seq 0 */
	d8(&d, 0x01);
	d8(&d, 2);
	save_desc("d-seq-zero", &d);
	begin(&d, FS_MODE_V1);
	dput(&d, 0x01, 2, 1);
	dmark(&d, 0); /* no marks in format 1 */
	save_desc("d-v1-mark", &d);

	/* Impossible records with valid checksums. */
	static const struct {
		const char *name;
		unsigned char op, flags, r0, r1;
		uint32_t klen, vlen;
		unsigned n;
	} raws[] = {
		{ "d-raw-reserved", 1, 0, 1, 0, 3, 1, 4 },
		{ "d-raw-flags", 1, 2, 0, 0, 3, 1, 4 },
		{ "d-raw-op", 9, 0, 0, 0, 3, 1, 4 },
		{ "d-raw-mark-key", 4, 0, 0, 0, 3, 0, 3 },
		{ "d-raw-del-value", 2, 0, 0, 0, 3, 1, 4 },
		{ "d-raw-no-key", 1, 0, 0, 0, 0, 4, 4 },
		{ "d-raw-long", 1, 0, 0, 0, 3, 0x7fffffff, 20 },
		{ "d-raw-bad-key", 1, 0, 0, 0, 3, 1, 4 },
	};
	for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
		begin(&d, FS_MODE_V2K);
		dput(&d, 0x01, 5, 1);
		op(&d, FS_RAW, 0);
		d8(&d, raws[i].op);
		d8(&d, raws[i].flags);
		d8(&d, raws[i].r0);
		d8(&d, raws[i].r1);
		d32(&d, raws[i].klen);
		d32(&d, raws[i].vlen);
		d32(&d, 2);
		d64(&d, 2);
		d8(&d, raws[i].n);
		const char *key =
		    strcmp(raws[i].name, "d-raw-bad-key") == 0 ? "abc" : "a/b";
		for (unsigned j = 0; j < raws[i].n; j++)
			d8(&d, j < 3 ? (unsigned char)key[j] : 'v');
		dput(&d, 0x02, 5, 1);
		save_desc(raws[i].name, &d);
	}
	/* Raw keys: a member with a slash, then one with a NUL. */
	begin(&d, FS_MODE_V2K);
	dputx(&d, 0x20, 0);
	d8(&d, 4);
	d8(&d, 3);
	d8(&d, 'a');
	d8(&d, '/');
	d8(&d, '/');
	d8(&d, 'b');
	dputx(&d, 0x20, 1);
	d8(&d, 3);
	d8(&d, 1);
	d8(&d, 'a');
	d8(&d, '/');
	d8(&d, 0);
	save_desc("d-raw-keys", &d);

	/* Verify's walk: several damages, each resynced. */
	begin(&d, FS_MODE_V2K);
	for (unsigned i = 0; i < 4; i++) {
		dput(&d, 0x01 + i, 12, 0);
		dput(&d, 0x11 + i, 12, 1);
		op(&d, FS_FLIP, 1);
		d8(&d, 34);
		d8(&d, 0);
		d8(&d, 0x02);
		dput(&d, 0x21 + i, 12, 1);
	}
	save_desc("d-resync", &d);
	begin(&d, FS_MODE_V2K);
	dput(&d, 0x01, 12, 1);
	op(&d, FS_COPY, 1 | 2); /* a header whose data is not there */
	op(&d, FS_GARB, 2);
	d8(&d, 20);
	for (int i = 0; i < 21; i++)
		d8(&d, 0x11 * (unsigned)i);
	dput(&d, 0x02, 12, 1);
	dput(&d, 0x03, 12, 1);
	save_desc("d-resync-garbage", &d);

	/* File headers. */
	static const struct {
		const char *name;
		unsigned h;
		unsigned arg;
	} hdrs[] = {
		{ "d-hdr-major3", 0, 3 }, { "d-hdr-major0", 0, 0 },
		{ "d-hdr-minor", 1, 7 },  { "d-hdr-crc", 4, 1 },
		{ "d-hdr-magic", 5, 3 },  { "d-hdr-v1", 7, 0 },
	};
	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		begin(&d, FS_MODE_V2K);
		batches(&d, 1);
		op(&d, FS_HDR, hdrs[i].h);
		if (hdrs[i].h != 7)
			d8(&d, hdrs[i].arg);
		save_desc(hdrs[i].name, &d);
	}
	begin(&d, FS_MODE_V2K);
	batches(&d, 1);
	op(&d, FS_HDR, 3); /* later records with another salt */
	d32(&d, 77);
	dput(&d, 0x51, 4, 1);
	save_desc("d-hdr-rsalt", &d);
	begin(&d, FS_MODE_V2K);
	dput(&d, 0x01, 5, 1);
	op(&d, FS_TRUNC, 0);
	d8(&d, 60); /* into the file header */
	save_desc("d-hdr-cut", &d);

	/* Batches of writes. Clean: a group of puts and a delete, ended by
	 * a put that also ends the janitor's batch, then a mark. */
	begin(&d, FS_MODE_V2K);
	batches(&d, 1);
	dgput(&d, 0x41, 10);
	dgdel(&d, 0x42);
	dgput(&d, 0x43, 5);
	dput(&d, 0x44, 5, 1);
	dmark(&d, 0);
	save_desc("d-group-clean", &d);
	/* A group at the end of the file that never ends: torn from its
	 * first record. */
	begin(&d, FS_MODE_V2K);
	batches(&d, 1);
	dgput(&d, 0x41, 10);
	dgput(&d, 0x42, 10);
	save_desc("d-group-open", &d);
	/* Its last record cut short. */
	begin(&d, FS_MODE_V2K);
	batches(&d, 1);
	dgput(&d, 0x41, 10);
	dgdel(&d, 0x42);
	dput(&d, 0x43, 30, 0);
	op(&d, FS_TRUNC, 1);
	d8(&d, 9);
	save_desc("d-group-cut", &d);
	/* Damage in a group that a later batch proves synced. */
	begin(&d, FS_MODE_V2K);
	batches(&d, 1);
	dgput(&d, 0x41, 10);
	dgput(&d, 0x42, 10);
	dput(&d, 0x43, 10, 1);
	dput(&d, 0x44, 10, 1);
	op(&d, FS_FLIP, 2); /* the group's second record */
	d8(&d, 40);
	d8(&d, 0);
	d8(&d, 1);
	d8(&d, 0x02);
	save_desc("d-group-proof", &d);
	/* Groups a crash cannot write: a member that also ends a batch, a
	 * delete-all inside, a group across two batches, one across the end
	 * of the sealed part. */
	begin(&d, FS_MODE_V2K);
	dgput(&d, 0x41, 10);
	op(&d, FS_REC, 1 | 4);
	d8(&d, 0x42);
	d8(&d, 10);
	dput(&d, 0x43, 10, 1);
	save_desc("d-group-end-flag", &d);
	begin(&d, FS_MODE_V2K);
	dgput(&d, 0x41, 10);
	ddelall(&d, 0x40, 1);
	save_desc("d-group-delall", &d);
	begin(&d, FS_MODE_V2K);
	dgput(&d, 0x41, 10);
	dputx(&d, 0x08, 1); /* seq hi+1, the next batch */
	d8(&d, 0x42);
	d8(&d, 10);
	save_desc("d-group-two-batches", &d);
	begin(&d, FS_MODE_V2K);
	dgput(&d, 0x41, 10);
	op(&d, FS_SEAL, 0);
	dput(&d, 0x42, 10, 1);
	save_desc("d-group-sealed", &d);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_corpus_scan OUTDIR\n");
		return 2;
	}
	outdir = argv[1];
	mkdir(outdir, 0755);
	real_logs();
	descriptions();
	printf("%u files\n", nfiles);
	return 0;
}

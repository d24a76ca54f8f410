/*
 * libFuzzer target: the log scanner (src/format.c) on its own, in memory,
 * without opening a store (about ten thousand inputs a second in one process
 * under ASan+UBSan, against fuzz_recover's hundred).
 *
 * An input is a log in one of two ways, chosen by its first byte
 * (fuzz_scan.h):
 *  - raw (bit 0 clear): the rest of the input is the file as it is;
 *  - described (bit 0 set): the rest is a short program of records and
 *    damage that the harness turns into a log, computing every checksum
 *    itself (format 2 through dskvs__file_hdr_encode and
 *    dskvs__rec_hdr_encode, or format 1: major 1, salt 0). Mutating a raw
 *    log almost never gets a CRC32C right, so raw inputs rarely get past the
 *    first record; described ones reach the proof search, resync, sealed
 *    parts and sequence rules with every mutation. The language is below,
 *    at "the description".
 *
 * Each log is scanned three times, on copies whose bytes past the end are
 * poisoned under ASan (so that a read past the end is a report):
 *  1. recovery's walk: dskvs__scan_header, then dskvs__scan_next until it
 *     returns something other than a record;
 *  2. the same again on another copy: the outcome must be identical;
 *  3. verify's walk: after DSKVS__SCAN_CORRUPT, dskvs__scan_resync and go
 *     on, until the end of the file, a torn tail or a read error.
 * Checked on every record returned: it lies inside the input (key and
 * value pointers too), starts where the last one ended (so offsets rise
 * strictly), its checksums are valid and its fields are possible, and its
 * sequence number obeys the rules (outside the sealed part, once ordered:
 * above every earlier record, a mark's at least as high). After every call:
 * the bytes checksummed (sc.work) stay within 64 per input byte plus 4096.
 * On a stop: a clean end is at the end of the file; a torn tail starts
 * where the last record ended, outside the sealed part, and no record after
 * it (after the whole damaged record, when its header is valid) proves its
 * batch was synced (walk 1 looks for one itself); a proof reported is a
 * valid header of a later batch with a larger sequence number, and the
 * first one; in walk 1, damage outside the sealed part refused without a
 * proof is a record with a valid header (impossible content); damage said
 * to lie in the sealed part does; a resync lands on a whole valid record or
 * the end; read errors cannot happen. For a description with no damage and no
 * broken rule, the scanner must return exactly the records written and end
 * cleanly. Any violation abort()s.
 *
 * FUZZ_SCAN_SKIP (environment): a comma-separated list of checks to leave
 * out, to fuzz on past a bug that is reported and not fixed yet (all are on
 * by default): "in-sealed" (damage said to lie in the sealed part does),
 * "verify-work" (the linear bound in verify's walk, which then stops where
 * it is passed; recovery's walk is always held to it). FUZZ_SCAN_VERBOSE:
 * one line per input on stderr (what a seed does). FUZZ_SCAN_DUMP=FILE:
 * write the log an input stands for to FILE (to read a description's
 * log with a hex dump).
 *
 * Built as `fuzz_scan` (clang, -fsanitize=fuzzer) with -DDSKVS_FUZZ=ON,
 * with format.c and crc32c.c compiled in without comparison tracing (see
 * CMakeLists.txt); scripts/fuzz.sh runs it. Built everywhere as
 * `fuzz_scan_replay` with replay_main.c, which replays tests/fuzz/corpus_scan/
 * under CTest.
 */
#include "fuzz_scan.h"
#include "internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(FUZZ_ASAN)
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(a, n)   ((void)(a), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                               \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "fuzz_scan: %s:%d: %s: ", __FILE__, \
			        __LINE__, #cond);                           \
			fprintf(stderr, __VA_ARGS__);                       \
			fputc('\n', stderr);                                \
			abort();                                            \
		}                                                           \
	} while (0)

#define ULL(x) ((unsigned long long)(x))

/* The checks are the oracle, not code to explore: no coverage feedback from
 * them (their branches would only add noise to the corpus), and less time
 * spent per input. */
#if defined(__clang__) && __clang_major__ >= 13
#define NO_COV __attribute__((no_sanitize("coverage")))
#else
#define NO_COV
#endif

/* The largest sequence number a log may hold: DSKVS_SEQ_MAX, or less where
 * the format keeps room below it (DSKVS_SEQ_LIMIT). */
#ifdef DSKVS_SEQ_LIMIT
#define SEQ_LIMIT DSKVS_SEQ_LIMIT
#else
#define SEQ_LIMIT DSKVS_SEQ_MAX
#endif

static const char magic[8] = { 'D', 'S', 'K', 'V', 'S', 'L', 'O', 'G' };

static uint16_t rd16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const unsigned char *p)
{
	return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}
static void wr16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}
static void wr32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static void wr64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* ---- the format's rules, stated again -----------------------------------
 * Independent of the scanner's code: what a record must be (format.c's top
 * comment), used to judge what it returns. */

NO_COV static bool key_valid(unsigned op, const unsigned char *key, size_t klen)
{
	/* The collection: 1 .. NAME_MAX bytes up to the first '/', no NUL;
	 * the member: any 0 .. NAME_MAX bytes (the _bin calls write NULs
	 * and empty members). */
	const unsigned char *slash = memchr(key, '/', klen);
	size_t clen = slash ? (size_t)(slash - key) : klen;
	if (clen < 1 || clen > DSKVS_NAME_MAX || memchr(key, '\0', clen))
		return false;
	if (op == DSKVS_REC_DELALL)
		return slash == NULL;
	return slash != NULL && klen - clen - 1 <= DSKVS_NAME_MAX;
}

/* Type, reserved bits and lengths of the header at p. */
NO_COV static bool hdr_possible(unsigned major, const unsigned char *p)
{
	unsigned op = p[8];
	uint32_t klen = rd32(p + 12), vlen = rd32(p + 16);
	if ((p[9] & ~(DSKVS_REC_END | DSKVS_REC_GRP)) || p[10] || p[11])
		return false;
	/* A batch of writes: every record but its last is a put or delete
	 * flagged DSKVS_REC_GRP, never with DSKVS_REC_END. */
	if ((p[9] & DSKVS_REC_GRP) &&
	    ((p[9] & DSKVS_REC_END) ||
	     (op != DSKVS_REC_PUT && op != DSKVS_REC_DEL)))
		return false;
	if (op < DSKVS_REC_PUT || op > DSKVS_REC_MARK ||
	    (op == DSKVS_REC_MARK && major < 2))
		return false;
	if (op == DSKVS_REC_MARK)
		return klen == 0 && vlen == 0;
	return klen >= 1 && klen <= DSKVS_KEY_MAX && vlen <= DSKVS_VALUE_MAX &&
	       (op == DSKVS_REC_PUT || vlen == 0);
}

NO_COV static bool hdr_crc_ok(uint32_t salt, const unsigned char *p)
{
	return dskvs__crc32c(salt, p + 4, DSKVS_REC_HDR - 4) == rd32(p);
}

NO_COV static bool later_batch(uint32_t b, uint32_t than)
{
	return b != than && (uint32_t)(b - than) < (1u << 31);
}

/* ---- the description ----------------------------------------------------
 * After the mode byte (and, for FS_MODE_V2, 4 bytes of salt) come
 * instructions, each a byte c: kind c & 15, flags h = c >> 4, then the
 * bytes the kind reads. Input that runs out reads as zeros. The file
 * header is written first and again by FS_SEAL and FS_HDR (so damage to it
 * lasts until the next of those). Records are appended to the end; the
 * harness keeps the list of the records in the log (the last ones are
 * what FS_FLIP, FS_EMBED, FS_COPY and FS_TRUNC aim at), the highest
 * sequence number written (hi) and the current batch (starts at 1, moves
 * on after a record with the end-of-batch flag, as the janitor numbers).
 *
 *  0..5 FS_REC  op h&3 (put, a member of a batch of writes, delete,
 *               delete-all), h&4 end-of-batch; a member of a batch of
 *               writes (flag DSKVS_REC_GRP) is a put, or a delete when its
 *               key byte has bit 7 set, and the next record without the
 *               flag ends its group;
 *               h&8: a byte x follows: x&7 sequence number (hi+1, hi,
 *               hi+2+byte, hi-1-byte, 0, SEQ_LIMIT, SEQ_LIMIT+1, 8 raw
 *               bytes), x>>3&3 batch (current, next, previous, 4 raw
 *               bytes), x&32 raw key, x&64 another file's salt, x&128
 *               value bytes that are plausible header starts; then a key
 *               byte (a
 *               generated key "cN/mX"; raw: its length, then the key),
 *               for a put a value length byte (v < 240: v % 64 bytes; else
 *               (v-239)*64: small logs scan fast, big ones stay rare).
 *  6    FS_MARK seq hi, batch current; h&1 end flag, h&2 seq+1, h&4
 *               seq-1, h&8 batch+1.
 *  7    FS_RAW  header bytes 8..31 raw (24 bytes), a byte n and n bytes of
 *               data; checksums computed (data over what is there); h&1
 *               another salt, h&2 wrong data checksum.
 *  8    FS_FLIP a 16-bit position and a xor mask; h&3: anywhere, in the
 *               last record, in a record chosen by a byte, from the end;
 *               h&4 within the record's header; h&8 set instead of xor.
 *  9    FS_TRUNC cut 1+byte bytes (h&2: 1+16-bit; h&1: inside the last
 *               record).
 *  10   FS_GARB append 1+byte bytes: zeros, 0xff, input, or plausible
 *               header starts (h&3).
 *  11   FS_EMBED a put whose value is a copy of an earlier record (h&1 the
 *               last, else a byte picks it), with a prefix (h&2) and a
 *               suffix (h&4) of byte lengths; h&8 wraps the last record
 *               (it becomes the value, so that wrapping again nests).
 *  12   FS_COPY a verbatim copy of an earlier record (h&1 the last, else
 *               a byte picks it); h&2 its header only.
 *               Neither copies a record over COPY_MAX bytes (wrapping
 *               excepted): copies of copies would fill every log.
 *  13   FS_SEAL sealed length (h&3): the current length, that plus a
 *               signed byte, 8 raw bytes, the header only; batches start
 *               again at 1 after it.
 *  14   FS_FORGE a put whose value holds the image of a record claiming a
 *               later batch (+1+byte) and a larger sequence number
 *               (hi+2+byte), with the file's salt, 0 or another (h&3), a
 *               mark (h&4), after a prefix of a byte's length (h&8).
 *  15   FS_HDR  h&7: major (byte), minor (byte), the header's salt (4
 *               bytes), the salt of later records (4 bytes), break the
 *               header checksum, break the magic, sealed (8 bytes), switch
 *               between formats 1 and 2.
 */

/* A log is at most GEN_MAX bytes: small logs keep the fuzzer fast (the
 * proof search and the resync look at every byte position, and each input
 * is walked three times) and bulk finds nothing (in memory the scanner has
 * no size threshold below DSKVS_NAME_MAX, 64 KiB, whose names are tested
 * by test_persist and test_keys). */
#define GEN_MAX     ((size_t)4 << 10)
#define COPY_MAX    ((size_t)2048)
#define GEN_RECS    (GEN_MAX / DSKVS_REC_HDR)
#define FIXED_TIME  UINT32_C(1700000000)
#define OTHER_SALT  UINT32_C(0x9e3779b9)
#define SALT_PRESET UINT32_C(0x12345678)

struct gen {
	unsigned char *buf; /* kept from input to input */
	size_t len, cap;
	const uint8_t *in;
	size_t in_len, pos;
	unsigned major, minor;
	uint32_t salt;  /* the header's */
	uint32_t rsalt; /* what record header checksums are seeded with */
	uint64_t sealed;
	uint64_t hi;
	uint32_t batch;
	/* A batch of writes is open (a DSKVS_REC_GRP record was the last
	 * record), in batch grp_batch, on the side of the sealed length that
	 * grp_sealed says. Only whole groups of puts and deletes within one
	 * batch and one side make a clean log. */
	bool grp_open, grp_sealed;
	uint32_t grp_batch;
	bool clean;
	bool overflow; /* more records than the list holds */
	size_t nrec;
	uint64_t rec_off[GEN_RECS], rec_size[GEN_RECS];
};
static struct gen G;

static unsigned in8(struct gen *g)
{
	return g->pos < g->in_len ? g->in[g->pos++] : 0;
}
static unsigned in16(struct gen *g)
{
	unsigned lo = in8(g);
	return lo | (in8(g) << 8);
}
static uint32_t in32(struct gen *g)
{
	uint32_t lo = in16(g);
	return lo | ((uint32_t)in16(g) << 16);
}
static uint64_t in64(struct gen *g)
{
	uint64_t lo = in32(g);
	return lo | ((uint64_t)in32(g) << 32);
}
static void in_bytes(struct gen *g, unsigned char *out, size_t n)
{
	size_t have = g->in_len - g->pos;
	if (have > n)
		have = n;
	memcpy(out, g->in + g->pos, have);
	memset(out + have, 0, n - have);
	g->pos += have;
}

/* n more bytes at the end, or NULL when the log would pass GEN_MAX. */
static unsigned char *grow(struct gen *g, size_t n)
{
	if (n > GEN_MAX - g->len)
		return NULL;
	if (g->len + n > g->cap) {
		size_t cap = g->cap ? g->cap : 4096;
		while (cap < g->len + n)
			cap *= 2;
		unsigned char *p = realloc(g->buf, cap);
		FUZZ_CHECK(p != NULL, "out of memory");
		g->buf = p;
		g->cap = cap;
	}
	g->len += n;
	return g->buf + g->len - n;
}

static void gen_header(struct gen *g)
{
	unsigned char *p = g->buf;
	if (g->len < DSKVS_FILE_HDR)
		return;
	if (g->major == DSKVS_FORMAT_MAJOR) {
		dskvs__file_hdr_encode(p, g->salt, g->sealed);
		wr16(p + 10, g->minor);
		/* The encoder writes the time: keep the bytes reproducible. */
		wr32(p + 24, FIXED_TIME);
	} else {
		memset(p, 0, DSKVS_FILE_HDR);
		memcpy(p, magic, 8);
		wr16(p + 8, g->major);
		wr16(p + 10, g->minor);
		if (g->major == 1) {
			/* flags (0), creation time in ns, reserved */
			wr64(p + 16, (uint64_t)FIXED_TIME * 1000000000u);
		} else {
			wr32(p + 12, g->salt);
			wr64(p + 16, g->sealed);
			wr32(p + 24, FIXED_TIME);
		}
	}
	wr32(p + 28, dskvs__crc32c(0, p, 28));
}

static void push(struct gen *g, uint64_t off, uint64_t size)
{
	if (g->nrec == GEN_RECS) {
		g->overflow = true;
		return;
	}
	g->rec_off[g->nrec] = off;
	g->rec_size[g->nrec] = size;
	g->nrec++;
}

/* Drop the records the log no longer holds whole. */
static void pop_cut(struct gen *g)
{
	while (g->nrec &&
	       g->rec_off[g->nrec - 1] + g->rec_size[g->nrec - 1] > g->len)
		g->nrec--;
}

/* Index of the last record (last) or of one picked by a byte from the
 * end; SIZE_MAX when there is none. */
static size_t pick(struct gen *g, bool last)
{
	if (g->nrec == 0)
		return SIZE_MAX;
	return last ? g->nrec - 1 : g->nrec - 1 - in8(g) % g->nrec;
}

/* A record with sequence number seq: the description stays clean only if
 * it follows the rules given the records before it (everywhere, sealed part
 * or not); remember the highest. */
static void note_seq(struct gen *g, unsigned op, uint64_t seq)
{
	bool mark = op == DSKVS_REC_MARK;
	if (seq > SEQ_LIMIT || (!mark && seq <= g->hi) ||
	    (mark && seq < g->hi) || (mark && g->major < 2))
		g->clean = false;
	if (seq > g->hi && seq <= SEQ_LIMIT)
		g->hi = seq;
}

static void fill(unsigned char *p, size_t n, unsigned kind, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15u + 1;
	switch (kind) {
	case 0: /* xorshift */
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			p[i] = (unsigned char)x;
		}
		break;
	case 1: /* a plausible header start (op 1, zero flags) every 4 */
		for (size_t i = 0; i < n; i++)
			p[i] = (i % 4 == 0) ? 1 : 0;
		break;
	case 2:
		memset(p, 0, n);
		break;
	default:
		memset(p, 0xff, n);
		break;
	}
}

/* Room for a record of dlen data bytes at the end; its offset, or
 * SIZE_MAX when the log is full. */
static size_t rec_open(struct gen *g, size_t dlen)
{
	unsigned char *p = grow(g, DSKVS_REC_HDR + dlen);
	return p ? (size_t)(p - g->buf) : SIZE_MAX;
}

/* Encode the header of the record at off over its data as it lies. */
static void rec_close(struct gen *g, size_t off, uint32_t salt, unsigned op,
                      unsigned flags, uint32_t batch, size_t klen, size_t vlen,
                      uint64_t seq)
{
	unsigned char *p = g->buf + off;
	dskvs__rec_hdr_encode(p, salt, op, flags, batch,
	                      (const char *)p + DSKVS_REC_HDR, klen,
	                      p + DSKVS_REC_HDR + klen, vlen, seq);
	push(g, off, DSKVS_REC_HDR + klen + vlen);
}

/* Keys: generated from a byte ("cN/mX", or "cN" for a delete-all), or
 * raw from the input. */
static size_t key_len(unsigned op, bool raw, unsigned kb)
{
	if (!raw)
		return op == DSKVS_REC_DELALL ? 2 : 5;
	return kb;
}

static void key_fill(struct gen *g, unsigned char *p, size_t klen, unsigned op,
                     bool raw, unsigned kb)
{
	static const char hex[] = "0123456789abcdef";
	if (!raw) {
		p[0] = 'c';
		p[1] = (unsigned char)('0' + ((kb >> 4) & 7));
		if (op != DSKVS_REC_DELALL) {
			p[2] = '/';
			p[3] = 'm';
			p[4] = (unsigned char)hex[kb & 15];
		}
	} else {
		in_bytes(g, p, klen);
	}
	if (raw && !key_valid(op, p, klen))
		g->clean = false;
}

/* The record about to be written at off (op, flags, batch) against the
 * open batch of writes: what breaks the group rules makes the log unclean
 * (format.c's "Batches of writes"). */
static void grp_note(struct gen *g, unsigned op, unsigned flags, uint32_t batch,
                     size_t off)
{
	bool sealed = off < g->sealed;
	if ((flags & DSKVS_REC_GRP) && (flags & DSKVS_REC_END))
		g->clean = false;
	if (g->grp_open && ((op != DSKVS_REC_PUT && op != DSKVS_REC_DEL) ||
	                    batch != g->grp_batch || sealed != g->grp_sealed))
		g->clean = false;
	if ((flags & DSKVS_REC_GRP) && !g->grp_open) {
		g->grp_batch = batch;
		g->grp_sealed = sealed;
	}
	g->grp_open = flags & DSKVS_REC_GRP;
}

static void do_rec(struct gen *g, unsigned h)
{
	static const unsigned ops[4] = { DSKVS_REC_PUT, DSKVS_REC_PUT,
		                         DSKVS_REC_DEL, DSKVS_REC_DELALL };
	unsigned op = ops[h & 3];
	bool grp = (h & 3) == 1;
	unsigned flags =
	    ((h & 4) ? DSKVS_REC_END : 0) | (grp ? DSKVS_REC_GRP : 0);
	unsigned x = (h & 8) ? in8(g) : 0;
	bool raw = x & 0x20, other = x & 0x40;
	uint64_t seq;
	uint32_t batch = g->batch;

	switch (x & 7) {
	case 0:
		seq = g->hi + 1;
		break;
	case 1:
		seq = g->hi;
		break;
	case 2:
		seq = g->hi + 2 + in8(g);
		break;
	case 3: {
		uint64_t d = 1 + in8(g);
		seq = g->hi > d ? g->hi - d : 0;
		break;
	}
	case 4:
		seq = 0;
		break;
	case 5:
		seq = SEQ_LIMIT;
		break;
	case 6:
		seq = SEQ_LIMIT + 1;
		break;
	default:
		seq = in64(g);
		break;
	}
	switch ((x >> 3) & 3) {
	case 1:
		batch = ++g->batch;
		break;
	case 2:
		batch = g->batch - 1;
		break;
	case 3:
		batch = g->batch = in32(g);
		break;
	}
	unsigned kb = in8(g);
	if (grp && (kb & 0x80))
		op = DSKVS_REC_DEL;
	size_t klen = key_len(op, raw, kb), vlen = 0;
	if (op == DSKVS_REC_PUT) {
		unsigned vb = in8(g);
		vlen = vb < 240 ? vb % 64 : (size_t)(vb - 239) * 64;
	}
	size_t off = rec_open(g, klen + vlen);
	if (off == SIZE_MAX)
		return;
	unsigned char *p = g->buf + off + DSKVS_REC_HDR;
	key_fill(g, p, klen, op, raw, kb);
	fill(p + klen, vlen, (x & 0x80) ? 1 : 0, seq ^ off);
	if (other)
		g->clean = false;
	note_seq(g, op, seq);
	grp_note(g, op, flags, batch, off);
	rec_close(g, off, other ? g->rsalt ^ OTHER_SALT : g->rsalt, op, flags,
	          batch, klen, vlen, seq);
	if (flags & DSKVS_REC_END)
		g->batch = batch + 1;
}

static void do_mark(struct gen *g, unsigned h)
{
	uint64_t seq = g->hi;
	uint32_t batch = g->batch + ((h & 8) ? 1 : 0);
	unsigned flags = (h & 1) ? DSKVS_REC_END : 0;
	if (h & 2)
		seq++;
	if ((h & 4) && seq)
		seq--;
	size_t off = rec_open(g, 0);
	if (off == SIZE_MAX)
		return;
	note_seq(g, DSKVS_REC_MARK, seq);
	grp_note(g, DSKVS_REC_MARK, flags, batch, off);
	rec_close(g, off, g->rsalt, DSKVS_REC_MARK, flags, batch, 0, 0, seq);
	g->batch = flags ? batch + 1 : batch;
}

static void do_raw(struct gen *g, unsigned h)
{
	unsigned char hdr[DSKVS_REC_HDR];
	in_bytes(g, hdr + 8, DSKVS_REC_HDR - 8);
	size_t n = in8(g);
	size_t off = rec_open(g, n);
	if (off == SIZE_MAX)
		return;
	unsigned char *p = g->buf + off;
	memcpy(p + 8, hdr + 8, DSKVS_REC_HDR - 8);
	in_bytes(g, p + DSKVS_REC_HDR, n);
	uint64_t claimed = (uint64_t)rd32(p + 12) + rd32(p + 16);
	uint32_t dcrc = dskvs__crc32c(0, p + DSKVS_REC_HDR,
	                              claimed < n ? (size_t)claimed : n);
	wr32(p + 4, (h & 2) ? dcrc ^ 1 : dcrc);
	wr32(p, dskvs__crc32c((h & 1) ? g->rsalt ^ OTHER_SALT : g->rsalt, p + 4,
	                      DSKVS_REC_HDR - 4));
	push(g, off, DSKVS_REC_HDR + n);
	uint64_t seq = rd64(p + 24);
	if (seq > g->hi && seq <= SEQ_LIMIT)
		g->hi = seq;
	grp_note(g, p[8], p[9], rd32(p + 20), off);
	g->clean = false;
}

static void do_flip(struct gen *g, unsigned h)
{
	size_t pos = in16(g);
	unsigned m = in8(g);
	size_t at, i = SIZE_MAX;
	g->clean = false;
	if ((h & 3) == 1 || (h & 3) == 2)
		i = pick(g, (h & 3) == 1);
	if (g->len == 0)
		return;
	if (i != SIZE_MAX) {
		uint64_t span = g->rec_size[i];
		if ((h & 4) && span > DSKVS_REC_HDR)
			span = DSKVS_REC_HDR;
		at = (size_t)(g->rec_off[i] + pos % span);
	} else if ((h & 3) == 3) {
		at = g->len - 1 - pos % g->len;
	} else {
		at = pos % g->len;
	}
	if (at >= g->len)
		return;
	if (h & 8)
		g->buf[at] = (unsigned char)m;
	else
		g->buf[at] ^= (unsigned char)(m ? m : 1);
}

static void do_trunc(struct gen *g, unsigned h)
{
	size_t n;
	g->clean = false;
	if ((h & 1) && g->nrec)
		n = 1 + in8(g) % g->rec_size[g->nrec - 1];
	else if (h & 2)
		n = 1 + in16(g);
	else
		n = 1 + in8(g);
	g->len -= n < g->len ? n : g->len;
	pop_cut(g);
}

static void do_garb(struct gen *g, unsigned h)
{
	size_t n = 1 + in8(g);
	unsigned char *p = grow(g, n);
	g->clean = false;
	if (p == NULL)
		return;
	switch (h & 3) {
	case 0:
		memset(p, 0, n);
		break;
	case 1:
		memset(p, 0xff, n);
		break;
	case 2:
		in_bytes(g, p, n);
		break;
	default:
		fill(p, n, 1, 0);
		break;
	}
}

static void do_embed(struct gen *g, unsigned h)
{
	size_t i = pick(g, h & 1);
	size_t pre = (h & 2) ? in8(g) : 0, suf = (h & 4) ? in8(g) : 0;
	unsigned kb = in8(g);
	if (i == SIZE_MAX)
		return;
	size_t so = (size_t)g->rec_off[i], ss = (size_t)g->rec_size[i];
	size_t klen = key_len(DSKVS_REC_PUT, false, kb);
	size_t vlen = pre + ss + suf, off;
	bool wrap = (h & 8) && i == g->nrec - 1 && so + ss == g->len;
	if (!wrap && ss > COPY_MAX)
		return;
	if (wrap) {
		/* Wrap: the record moves into the value of the new one. */
		if (grow(g, DSKVS_REC_HDR + klen + pre + suf) == NULL)
			return;
		off = so;
		memmove(g->buf + so + DSKVS_REC_HDR + klen + pre, g->buf + so,
		        ss);
		g->nrec--;
		/* A wrapped record of the sealed part: the new one runs
		 * across the sealed length. */
		if (so < g->sealed)
			g->clean = false;
		/* The record before it decides whether a batch of writes
		 * is open again (the wrapped one may have ended it). */
		g->grp_open = false;
		if (g->nrec > 0) {
			size_t po = (size_t)g->rec_off[g->nrec - 1];
			if (g->buf[po + 9] & DSKVS_REC_GRP) {
				g->grp_open = true;
				g->grp_batch = rd32(g->buf + po + 20);
				g->grp_sealed = po < g->sealed;
			}
		}
	} else {
		if ((off = rec_open(g, klen + vlen)) == SIZE_MAX)
			return;
		memcpy(g->buf + off + DSKVS_REC_HDR + klen + pre, g->buf + so,
		       ss);
	}
	unsigned char *p = g->buf + off + DSKVS_REC_HDR;
	key_fill(g, p, klen, DSKVS_REC_PUT, false, kb);
	fill(p + klen, pre, 0, off);
	fill(p + klen + pre + ss, suf, 0, off + 1);
	uint64_t seq = g->hi + 1;
	note_seq(g, DSKVS_REC_PUT, seq);
	grp_note(g, DSKVS_REC_PUT, 0, g->batch, off);
	rec_close(g, off, g->rsalt, DSKVS_REC_PUT, 0, g->batch, klen, vlen,
	          seq);
}

static void do_copy(struct gen *g, unsigned h)
{
	size_t i = pick(g, h & 1);
	if (i == SIZE_MAX)
		return;
	size_t so = (size_t)g->rec_off[i];
	size_t ss = (h & 2) ? DSKVS_REC_HDR : (size_t)g->rec_size[i];
	if (ss > COPY_MAX || grow(g, ss) == NULL)
		return;
	unsigned char *p = g->buf + g->len - ss;
	memcpy(p, g->buf + so, ss);
	if (h & 2)
		g->clean = false;
	else
		note_seq(g, p[8], rd64(p + 24));
	grp_note(g, p[8], p[9], rd32(p + 20), g->len - ss);
	push(g, g->len - ss, ss);
}

static void do_seal(struct gen *g, unsigned h)
{
	switch (h & 3) {
	case 0:
		g->sealed = g->len;
		break;
	case 1: {
		int d = (signed char)in8(g);
		g->sealed = g->len + (uint64_t)(int64_t)d;
		if (d)
			g->clean = false;
		break;
	}
	case 2:
		g->sealed = in64(g);
		g->clean = false;
		break;
	default:
		g->sealed = DSKVS_FILE_HDR;
		break;
	}
	if (g->len < DSKVS_FILE_HDR || g->grp_open)
		g->clean = false;
	g->batch = 1;
	gen_header(g);
}

static void do_forge(struct gen *g, unsigned h)
{
	static const char ikey[3] = { 'f', '/', 'x' };
	static const char ival[4] = { 'A', 'B', 'C', 'D' };
	uint32_t batch = g->batch + 1 + in8(g);
	uint64_t iseq = g->hi + 2 + in8(g);
	unsigned kb = in8(g);
	size_t pre = (h & 8) ? in8(g) : 0;
	bool mark = h & 4;
	uint32_t salt = (h & 3) == 1   ? 0
	                : (h & 3) == 2 ? g->rsalt ^ OTHER_SALT
	                               : g->rsalt;
	size_t ilen = DSKVS_REC_HDR + (mark ? 0 : 7);
	size_t klen = key_len(DSKVS_REC_PUT, false, kb);
	size_t off = rec_open(g, klen + pre + ilen);
	if (off == SIZE_MAX)
		return;
	unsigned char *p = g->buf + off + DSKVS_REC_HDR;
	key_fill(g, p, klen, DSKVS_REC_PUT, false, kb);
	fill(p + klen, pre, 0, off);
	unsigned char *img = p + klen + pre;
	if (!mark) {
		memcpy(img + DSKVS_REC_HDR, ikey, 3);
		memcpy(img + DSKVS_REC_HDR + 3, ival, 4);
	}
	dskvs__rec_hdr_encode(img, salt, mark ? DSKVS_REC_MARK : DSKVS_REC_PUT,
	                      DSKVS_REC_END, batch, mark ? NULL : ikey,
	                      mark ? 0 : 3, ival, mark ? 0 : 4, iseq);
	uint64_t seq = g->hi + 1;
	note_seq(g, DSKVS_REC_PUT, seq);
	grp_note(g, DSKVS_REC_PUT, 0, g->batch, off);
	rec_close(g, off, g->rsalt, DSKVS_REC_PUT, 0, g->batch, klen,
	          pre + ilen, seq);
}

static void do_hdr(struct gen *g, unsigned h)
{
	switch (h & 7) {
	case 0:
		g->major = in8(g);
		break;
	case 1:
		g->minor = in8(g);
		gen_header(g);
		return;
	case 2:
		g->salt = in32(g);
		break;
	case 3:
		g->rsalt = in32(g);
		break;
	case 4:
		if (g->len >= DSKVS_FILE_HDR)
			g->buf[28 + in8(g) % 4] ^= 0xff;
		g->clean = false;
		return;
	case 5:
		if (g->len >= DSKVS_FILE_HDR)
			g->buf[in8(g) % 8] ^= 0x20;
		g->clean = false;
		return;
	case 6:
		g->sealed = in64(g);
		break;
	default:
		g->major = g->major == 1 ? 2 : 1;
		break;
	}
	g->clean = false;
	gen_header(g);
}

static const unsigned char *describe(const uint8_t *data, size_t size,
                                     size_t *len, int *clean)
{
	struct gen *g = &G;
	unsigned mode = (data[0] >> 1) & 3;

	g->in = data;
	g->in_len = size;
	g->pos = 1;
	g->len = 0;
	g->major = mode == 2 ? 1 : 2;
	g->minor = 0;
	/* Format 1 (mode 2) and mode 3: salt 0. */
	g->salt = mode == 0 ? in32(g) : mode == 1 ? SALT_PRESET : 0;
	g->rsalt = g->salt;
	g->sealed = DSKVS_FILE_HDR;
	g->hi = 0;
	g->batch = 1;
	g->grp_open = false;
	g->clean = true;
	g->overflow = false;
	g->nrec = 0;
	grow(g, DSKVS_FILE_HDR);
	gen_header(g);

	while (g->pos < g->in_len) {
		unsigned c = in8(g), h = c >> 4;
		switch (c & 15) {
		case FS_MARK:
			do_mark(g, h);
			break;
		case FS_RAW:
			do_raw(g, h);
			break;
		case FS_FLIP:
			do_flip(g, h);
			break;
		case FS_TRUNC:
			do_trunc(g, h);
			break;
		case FS_GARB:
			do_garb(g, h);
			break;
		case FS_EMBED:
			do_embed(g, h);
			break;
		case FS_COPY:
			do_copy(g, h);
			break;
		case FS_SEAL:
			do_seal(g, h);
			break;
		case FS_FORGE:
			do_forge(g, h);
			break;
		case FS_HDR:
			do_hdr(g, h);
			break;
		default:
			do_rec(g, h);
			break;
		}
	}
	*len = g->len;
	*clean = g->clean && !g->overflow && !g->grp_open;
	return g->buf;
}

const unsigned char *fuzz_scan_log(const uint8_t *data, size_t size,
                                   size_t *len, int *clean)
{
	*clean = 0;
	if (size == 0) {
		*len = 0;
		return (const unsigned char *)"";
	}
	if ((data[0] & 1) == 0) {
		*len = size - 1;
		return data + 1;
	}
	return describe(data, size, len, clean);
}

/* ---- the walks ---------------------------------------------------------- */

/* FUZZ_SCAN_VERBOSE set: one line per input on stderr (what a seed does). */
static bool verbose;
/* FUZZ_SCAN_DUMP */
static const char *dump_path;
/* FUZZ_SCAN_SKIP */
static bool skip_in_sealed, skip_verify_work;

struct walk {
	const unsigned char *buf;
	uint64_t size;
	struct dskvs__scan sc;
	/* The file header as the harness reads it. */
	unsigned major;
	uint32_t salt;
	uint64_t sealed;
	/* What the records returned so far say. */
	uint64_t records;
	uint64_t expect; /* where the next record must start */
	uint64_t max_seq;
	bool ordered;
	uint32_t last_batch;
	bool last_ended;
	bool in_grp; /* the last record returned has DSKVS_REC_GRP */
	uint64_t hash;
	/* The records a clean description wrote, or NULL. */
	const uint64_t *want;
	size_t nwant;
	bool verify; /* verify's walk */
};

struct outcome {
	int hdr, k;
	uint64_t records, off, bad_off, proof_off, max_seq, work, hash;
	bool in_sealed;
	const char *why;
};

static void walk_init(struct walk *w, const unsigned char *buf, uint64_t size)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->size = size;
	dskvs__win_init_mem(&w->sc.w, buf, size);
}

/* Within the linear bound; false (verify's walk, when FUZZ_SCAN_SKIP
 * leaves the check out) to give up on the walk instead. */
NO_COV static bool check_work(const struct walk *w)
{
	if (w->verify && skip_verify_work)
		return w->sc.work <= 64 * w->size + 4096;
	FUZZ_CHECK(w->sc.work <= 64 * w->size + 4096,
	           "the scanner checksummed %llu bytes of a %llu-byte log",
	           ULL(w->sc.work), ULL(w->size));
	return true;
}

NO_COV static void check_header(struct walk *w, int h)
{
	const unsigned char *p = w->buf;
	uint64_t size = w->size;
	bool torn = size < DSKVS_FILE_HDR;

	FUZZ_CHECK(h == DSKVS_OK || h == DSKVS__SCAN_TORN_HEADER ||
	               h == DSKVS_ECORRUPT || h == DSKVS_EVERSION,
	           "scan_header returned %d", h);
	if (torn && size > 0 &&
	    memcmp(p, magic, size < 8 ? (size_t)size : 8) != 0) {
		for (size_t i = 0; i < size; i++)
			torn = torn && p[i] == 0;
	}
	FUZZ_CHECK((h == DSKVS__SCAN_TORN_HEADER) == torn,
	           "scan_header says %d for a %llu-byte file", h, ULL(size));
	if (size < DSKVS_FILE_HDR) {
		FUZZ_CHECK(h != DSKVS_OK, "a %llu-byte header accepted",
		           ULL(size));
		return;
	}
	bool mg = memcmp(p, magic, 8) == 0;
	unsigned major = rd16(p + 8);
	bool crc = dskvs__crc32c(0, p, 28) == rd32(p + 28);
	uint64_t sealed = major == 1 ? DSKVS_FILE_HDR : rd64(p + 16);
	bool ok = mg && crc && major >= 1 && major <= DSKVS_FORMAT_MAJOR &&
	          sealed >= DSKVS_FILE_HDR && sealed <= size;
	FUZZ_CHECK((h == DSKVS_OK) == ok,
	           "scan_header says %d; magic %d, major %u, checksum %d, "
	           "sealed %llu of %llu",
	           h, mg, major, crc, ULL(sealed), ULL(size));
	if (h == DSKVS_EVERSION)
		FUZZ_CHECK(mg && major > DSKVS_FORMAT_MAJOR,
		           "DSKVS_EVERSION for major %u", major);
	if (h != DSKVS_OK)
		return;
	w->major = major;
	w->salt = major == 1 ? 0 : rd32(p + 12);
	w->sealed = sealed;
	FUZZ_CHECK(w->sc.major == major && w->sc.salt == w->salt &&
	               w->sc.sealed == sealed && w->sc.off == DSKVS_FILE_HDR &&
	               w->sc.max_seq == 0,
	           "scanner state after the header");
	w->expect = DSKVS_FILE_HDR;
	w->ordered = major >= 2;
	w->last_batch = 0;
	w->last_ended = true;
}

/* A whole valid record at q (what a resync must land on). */
NO_COV static bool valid_at(const struct walk *w, uint64_t q)
{
	if (q < DSKVS_FILE_HDR || w->size - q < DSKVS_REC_HDR)
		return false;
	const unsigned char *p = w->buf + q;
	if (!hdr_crc_ok(w->salt, p) || !hdr_possible(w->major, p))
		return false;
	uint64_t dlen = (uint64_t)rd32(p + 12) + rd32(p + 16);
	if (dlen > w->size - q - DSKVS_REC_HDR)
		return false;
	return dskvs__crc32c(0, p + DSKVS_REC_HDR, (size_t)dlen) ==
	           rd32(p + 4) &&
	       (p[8] == DSKVS_REC_MARK ||
	        key_valid(p[8], p + DSKVS_REC_HDR, rd32(p + 12)));
}

/* How far the batch of writes (DSKVS_REC_GRP) that opens at q goes:
 * whole valid records of puts and deletes, all of q's batch and on q's
 * side of the sealed length, each flagged but the last. Returns the offset
 * where it stops: past its last record when it ends whole (*whole), else
 * the first offset that is not such a member (*foreign when a whole valid
 * record lies there that cannot belong to the group), or `limit` if it gets
 * there first. */
struct grp_walk {
	bool whole, foreign;
	uint32_t batch;
};
NO_COV static uint64_t group_walk(const struct walk *w, uint64_t q,
                                  uint64_t limit, struct grp_walk *g)
{
	bool sealed = q < w->sealed;
	g->batch = rd32(w->buf + q + 20);
	g->whole = g->foreign = false;
	for (;;) {
		if (q == limit || !valid_at(w, q) ||
		    !hdr_possible(w->major, w->buf + q))
			return q;
		const unsigned char *p = w->buf + q;
		uint64_t n =
		    DSKVS_REC_HDR + (uint64_t)rd32(p + 12) + rd32(p + 16);
		if (rd32(p + 20) != g->batch ||
		    (p[8] != DSKVS_REC_PUT && p[8] != DSKVS_REC_DEL) ||
		    (q < w->sealed) != sealed ||
		    (sealed && q + n > w->sealed)) {
			g->foreign = true;
			return q;
		}
		q += n;
		if (!(p[9] & DSKVS_REC_GRP)) {
			g->whole = true;
			return q;
		}
	}
}

/* The members [start, stop) of a batch of writes count as records before
 * damage at stop: w's state after them, as check_rec would leave it
 * (sequence numbers; the batch of the last, or none if it ends the sealed
 * part). */
NO_COV static void group_as_before(struct walk *w, uint64_t start,
                                   uint64_t stop)
{
	for (uint64_t q = start; q < stop;) {
		const unsigned char *p = w->buf + q;
		uint64_t n =
		    DSKVS_REC_HDR + (uint64_t)rd32(p + 12) + rd32(p + 16);
		if (rd64(p + 24) > w->max_seq)
			w->max_seq = rd64(p + 24);
		if (q + n == w->sealed) {
			w->last_batch = 0;
			w->last_ended = true;
		} else if (q >= w->sealed) {
			w->last_batch = rd32(p + 20);
			w->last_ended = p[9] & DSKVS_REC_END;
		}
		q += n;
	}
}

NO_COV static bool group_whole(const struct walk *w, uint64_t q)
{
	struct grp_walk g;
	group_walk(w, q, UINT64_MAX, &g);
	return g.whole;
}

NO_COV static void check_rec(struct walk *w, const struct dskvs__rec *r)
{
	const struct dskvs__scan *sc = &w->sc;
	uint64_t size = w->size;

	FUZZ_CHECK(r->off == w->expect,
	           "record at %llu, the one before ended at %llu", ULL(r->off),
	           ULL(w->expect));
	FUZZ_CHECK(r->off >= DSKVS_FILE_HDR && r->size <= size &&
	               r->off <= size - r->size,
	           "record [%llu, +%llu) outside the %llu-byte log",
	           ULL(r->off), ULL(r->size), ULL(size));
	FUZZ_CHECK(r->size == (uint64_t)DSKVS_REC_HDR + r->klen + r->vlen,
	           "record size %llu, key %zu, value %zu", ULL(r->size),
	           r->klen, r->vlen);
	const unsigned char *p = w->buf + r->off;
	FUZZ_CHECK(
	    (const unsigned char *)r->key == p + DSKVS_REC_HDR &&
	        (const unsigned char *)r->val == p + DSKVS_REC_HDR + r->klen,
	    "key or value pointer not inside the record at %llu", ULL(r->off));
	FUZZ_CHECK(sc->off == r->off + r->size, "scanner at %llu after %llu",
	           ULL(sc->off), ULL(r->off + r->size));
	FUZZ_CHECK(r->op == p[8] && r->flags == p[9] &&
	               r->klen == rd32(p + 12) && r->vlen == rd32(p + 16) &&
	               r->batch == rd32(p + 20) && r->seq == rd64(p + 24),
	           "fields of the record at %llu decoded wrong", ULL(r->off));
	FUZZ_CHECK(hdr_crc_ok(w->salt, p),
	           "record at %llu with a bad header checksum", ULL(r->off));
	FUZZ_CHECK(dskvs__crc32c(0, p + DSKVS_REC_HDR, r->klen + r->vlen) ==
	               rd32(p + 4),
	           "record at %llu with a bad data checksum", ULL(r->off));
	FUZZ_CHECK(hdr_possible(w->major, p),
	           "impossible record at %llu: op %u flags %u key %zu value "
	           "%zu",
	           ULL(r->off), r->op, r->flags, r->klen, r->vlen);
	FUZZ_CHECK(r->op == DSKVS_REC_MARK ||
	               key_valid(r->op, (const unsigned char *)r->key, r->klen),
	           "record at %llu with a malformed key", ULL(r->off));
	FUZZ_CHECK(!(r->off < w->sealed && r->off + r->size > w->sealed),
	           "record [%llu, %llu) across the sealed length %llu",
	           ULL(r->off), ULL(r->off + r->size), ULL(w->sealed));
	bool mark = r->op == DSKVS_REC_MARK;
	FUZZ_CHECK(r->seq <= SEQ_LIMIT && (mark || r->seq > 0),
	           "sequence number %llu at %llu", ULL(r->seq), ULL(r->off));
	if (r->off >= w->sealed && w->ordered)
		FUZZ_CHECK(mark ? r->seq >= w->max_seq : r->seq > w->max_seq,
		           "sequence number %llu at %llu after %llu%s",
		           ULL(r->seq), ULL(r->off), ULL(w->max_seq),
		           mark ? " (a mark)" : "");
	if (w->want != NULL) {
		FUZZ_CHECK(
		    w->records < w->nwant && r->off == w->want[w->records],
		    "clean log: record %llu at %llu, written at %llu",
		    ULL(w->records), ULL(r->off),
		    ULL(w->records < w->nwant ? w->want[w->records] : 0));
	}

	if (r->seq > w->max_seq)
		w->max_seq = r->seq;
	if (r->flags & DSKVS_REC_END)
		w->ordered = true;
	if (r->off + r->size == w->sealed) {
		w->last_batch = 0;
		w->last_ended = true;
	} else if (r->off >= w->sealed) {
		w->last_batch = r->batch;
		w->last_ended = r->flags & DSKVS_REC_END;
	}
	/* All or none: the scanner hands out the first record of a batch of
	 * writes only when the whole group lies in the file (recovery's
	 * walk; verify's may resync into the middle of one). */
	if ((r->flags & DSKVS_REC_GRP) && !w->in_grp && !w->verify)
		FUZZ_CHECK(group_whole(w, r->off),
		           "the first record of a batch of writes at %llu "
		           "handed out, but the group does not end whole",
		           ULL(r->off));
	w->in_grp = r->flags & DSKVS_REC_GRP;
	w->expect = r->off + r->size;
	w->records++;
	w->hash = (w->hash ^ r->off ^ (r->seq << 20) ^ r->op) * 0x100000001b3u;
	FUZZ_CHECK(sc->max_seq == w->max_seq && sc->records == w->records,
	           "scanner counts %llu records, highest seq %llu; the harness "
	           "%llu, %llu",
	           ULL(sc->records), ULL(sc->max_seq), ULL(w->records),
	           ULL(w->max_seq));
}

/* The first offset from `from` on holding what proves the damaged batch
 * synced: a valid header of this file, possible, of a later batch, with a
 * sequence number above every record returned; 0 if none. */
NO_COV static uint64_t find_proof(const struct walk *w, uint64_t from)
{
	uint32_t b = w->last_ended ? w->last_batch + 1 : w->last_batch;
	for (uint64_t q = from; q + DSKVS_REC_HDR <= w->size; q++) {
		const unsigned char *p = w->buf + q;
		/* Type and reserved bytes first: most positions fail. A
		 * record of a batch of writes (DSKVS_REC_GRP) proves as well
		 * as any: the janitor writes a later batch only after the
		 * earlier one's fdatasync, and a group never spans two. */
		if (p[8] - 1u > 3u ||
		    (p[9] & ~(DSKVS_REC_END | DSKVS_REC_GRP)) || p[10] || p[11])
			continue;
		if (!hdr_possible(w->major, p) || !hdr_crc_ok(w->salt, p))
			continue;
		uint64_t seq = rd64(p + 24);
		if (later_batch(rd32(p + 20), b) && seq > w->max_seq &&
		    seq <= SEQ_LIMIT)
			return q;
	}
	return 0;
}

/* Where the proof search after damage at o starts: past the damaged
 * record when its header is valid and it lies within the file (images in
 * its own value never count), else at the next byte. */
NO_COV static uint64_t search_from(const struct walk *w, uint64_t o)
{
	if (w->size - o >= DSKVS_REC_HDR && hdr_crc_ok(w->salt, w->buf + o)) {
		const unsigned char *p = w->buf + o;
		uint64_t n =
		    DSKVS_REC_HDR + (uint64_t)rd32(p + 12) + rd32(p + 16);
		if (n <= w->size - o)
			return o + n;
	}
	return o + 1;
}

/* A result other than a record; deep: also judge torn tail against proof
 * (a search of its own over the rest of the log). */
NO_COV static void check_stop(struct walk *w, int k, bool deep)
{
	const struct dskvs__scan *sc = &w->sc;
	uint64_t size = w->size, o = sc->off;

	FUZZ_CHECK(w->verify || !w->in_grp,
	           "recovery stops at %llu (%d) inside a batch of writes it "
	           "began to hand out",
	           ULL(o), k);
	if (w->want != NULL)
		FUZZ_CHECK(k == DSKVS__SCAN_END && w->records == w->nwant,
		           "clean log of %zu records: %d after %llu "
		           "records at %llu (%s)",
		           w->nwant, k, ULL(w->records), ULL(o),
		           sc->why ? sc->why : "");
	switch (k) {
	case DSKVS__SCAN_END:
		FUZZ_CHECK(o == size && w->expect == size,
		           "end at %llu of %llu", ULL(o), ULL(size));
		return;
	case DSKVS__SCAN_TORN:
		FUZZ_CHECK(o == w->expect && o < size,
		           "torn tail at %llu; the last record ended at %llu, "
		           "the log at %llu",
		           ULL(o), ULL(w->expect), ULL(size));
		FUZZ_CHECK(o >= w->sealed,
		           "torn tail at %llu inside the sealed part (%llu)",
		           ULL(o), ULL(w->sealed));
		FUZZ_CHECK(sc->proof_off == 0 && sc->why && *sc->why,
		           "torn tail with a proof or without a reason");
		if (deep && size - o >= DSKVS_REC_HDR) {
			const unsigned char *p = w->buf + o;
			bool bad = true;
			if (hdr_crc_ok(w->salt, p)) {
				FUZZ_CHECK(hdr_possible(w->major, p),
				           "an impossible record at %llu taken "
				           "for a torn tail",
				           ULL(o));
				uint64_t dlen =
				    (uint64_t)rd32(p + 12) + rd32(p + 16);
				bad = dlen <= size - o - DSKVS_REC_HDR;
				/* A valid record may open a torn tail only
				 * as the first of a batch of writes
				 * (DSKVS_REC_GRP) that does not end whole:
				 * the scanner tears such a group from its
				 * first record (format.c). */
				FUZZ_CHECK(!bad || !valid_at(w, o) ||
				               (p[9] & DSKVS_REC_GRP),
				           "a valid record at %llu taken for a "
				           "torn tail",
				           ULL(o));
			}
			uint64_t from = search_from(w, o);
			struct walk wg = *w;
			if (valid_at(w, o) && (p[9] & DSKVS_REC_GRP)) {
				/* A group torn from its first record: the
				 * damage is where it stops, after members
				 * whose numbers count as records before it. */
				struct grp_walk g;
				uint64_t at = group_walk(w, o, UINT64_MAX, &g);
				FUZZ_CHECK(!g.whole && !g.foreign,
				           "a batch of writes at %llu that %s "
				           "taken for a torn tail",
				           ULL(o),
				           g.whole
				               ? "ends whole"
				               : "a foreign record interrupts");
				group_as_before(&wg, o, at);
				/* As for any torn record at `at`: a valid
				 * header whose record runs past the end of
				 * the file is the end (no search); else the
				 * search starts after it. */
				bad = at < size;
				if (bad && size - at >= DSKVS_REC_HDR &&
				    hdr_crc_ok(w->salt, w->buf + at)) {
					const unsigned char *a = w->buf + at;
					uint64_t alen = (uint64_t)rd32(a + 12) +
					                rd32(a + 16);
					bad = alen <= size - at - DSKVS_REC_HDR;
				}
				from = bad ? search_from(w, at) : size;
			}
			uint64_t q = bad ? find_proof(&wg, from) : 0;
			FUZZ_CHECK(q == 0,
			           "torn tail at %llu (%s), but the record at "
			           "%llu proves its batch was synced",
			           ULL(o), sc->why, ULL(q));
		}
		return;
	case DSKVS__SCAN_CORRUPT: {
		FUZZ_CHECK(sc->bad_off == o && o >= w->expect && o < size,
		           "damage at %llu, scanner at %llu, the last record "
		           "ended at %llu",
		           ULL(sc->bad_off), ULL(o), ULL(w->expect));
		/* Past the last record returned: damage to a member of a
		 * batch of writes that opens there, found by the scanner's
		 * lookahead; the members before it are records before the
		 * damage for the proof. */
		struct walk wg = *w;
		if (o > w->expect) {
			uint64_t e = w->expect;
			struct grp_walk g;
			FUZZ_CHECK(valid_at(w, e) &&
			               (w->buf[e + 9] & DSKVS_REC_GRP) &&
			               group_walk(w, e, o, &g) == o,
			           "damage at %llu, not a member of a batch of "
			           "writes that opens at %llu, where the last "
			           "record ended",
			           ULL(o), ULL(e));
			group_as_before(&wg, e, o);
		}
		FUZZ_CHECK(sc->why && *sc->why, "damage without a reason");
		FUZZ_CHECK(
		    !sc->in_sealed || o < w->sealed || skip_in_sealed,
		    "damage at %llu (%s) said to lie in the sealed part, "
		    "which ends at %llu",
		    ULL(o), sc->why, ULL(w->sealed));
		if (sc->proof_off) {
			FUZZ_CHECK(sc->proof_off > o &&
			               sc->proof_off + DSKVS_REC_HDR <= size,
			           "proof at %llu for damage at %llu",
			           ULL(sc->proof_off), ULL(o));
			uint64_t q = deep ? find_proof(&wg, search_from(w, o))
			                  : sc->proof_off;
			FUZZ_CHECK(q == sc->proof_off,
			           "proof at %llu for damage at %llu; the "
			           "first is at %llu",
			           ULL(sc->proof_off), ULL(o), ULL(q));
		} else if (deep && o >= w->sealed) {
			/* Recovery's walk: damage outside the sealed part
			 * with no proof is an impossible record, whose header
			 * is valid, never a torn one. */
			FUZZ_CHECK(
			    size - o >= DSKVS_REC_HDR &&
			        hdr_crc_ok(w->salt, w->buf + o),
			    "damage at %llu (%s) refused without a proof "
			    "of sync",
			    ULL(o), sc->why);
		}
		return;
	}
	default:
		FUZZ_CHECK(0, "scan_next returned %d at %llu of a memory log",
		           k, ULL(o));
	}
}

/* Recovery's walk. */
static void walk_recover(const unsigned char *buf, uint64_t size,
                         struct outcome *out, bool deep, const uint64_t *want,
                         size_t nwant)
{
	struct walk w;
	struct dskvs__rec r;
	walk_init(&w, buf, size);
	w.want = want;
	w.nwant = nwant;
	memset(out, 0, sizeof(*out));
	out->hdr = dskvs__scan_header(&w.sc, "fuzz");
	check_header(&w, out->hdr);
	check_work(&w);
	if (want != NULL)
		FUZZ_CHECK(out->hdr == DSKVS_OK,
		           "clean log: scan_header says %d (%s)", out->hdr,
		           dskvs_errmsg(NULL));
	if (out->hdr == DSKVS_OK) {
		for (;;) {
			out->k = dskvs__scan_next(&w.sc, &r);
			check_work(&w);
			if (out->k != DSKVS__SCAN_REC)
				break;
			check_rec(&w, &r);
		}
		check_stop(&w, out->k, deep);
	}
	out->records = w.records;
	out->off = w.sc.off;
	out->bad_off = w.sc.bad_off;
	out->proof_off = w.sc.proof_off;
	out->max_seq = w.sc.max_seq;
	out->work = w.sc.work;
	out->hash = w.hash;
	out->in_sealed = w.sc.in_sealed;
	out->why = w.sc.why;
	dskvs__win_free(&w.sc.w);
}

NO_COV static void same_outcome(const struct outcome *a,
                                const struct outcome *b)
{
	FUZZ_CHECK(a->hdr == b->hdr && a->k == b->k &&
	               a->records == b->records && a->off == b->off &&
	               a->bad_off == b->bad_off &&
	               a->proof_off == b->proof_off &&
	               a->max_seq == b->max_seq && a->work == b->work &&
	               a->hash == b->hash && a->in_sealed == b->in_sealed &&
	               (a->why == NULL) == (b->why == NULL) &&
	               (a->why == NULL || strcmp(a->why, b->why) == 0),
	           "two walks of the same log differ: %d/%d %llu records at "
	           "%llu, then %d/%d %llu records at %llu",
	           a->hdr, a->k, ULL(a->records), ULL(a->off), b->hdr, b->k,
	           ULL(b->records), ULL(b->off));
}

/* Verify's walk; its part up to the first stop must be recovery's. */
static void walk_verify(const unsigned char *buf, uint64_t size,
                        const struct outcome *rec)
{
	uint64_t damages = 0;
	struct walk w;
	struct dskvs__rec r;
	bool first = true, resynced = false;
	walk_init(&w, buf, size);
	w.verify = true;
	int h = dskvs__scan_header(&w.sc, "fuzz");
	FUZZ_CHECK(h == rec->hdr, "header: %d, then %d", rec->hdr, h);
	if (h != DSKVS_OK)
		return;
	check_header(&w, h);
	for (uint64_t steps = 0;; steps++) {
		FUZZ_CHECK(steps <= 2 * size, "verify's walk does not end");
		int k = dskvs__scan_next(&w.sc, &r);
		if (!check_work(&w))
			break;
		if (k == DSKVS__SCAN_REC) {
			check_rec(&w, &r);
			resynced = false;
			continue;
		}
		if (first) {
			FUZZ_CHECK(
			    k == rec->k && w.records == rec->records &&
			        w.sc.off == rec->off &&
			        w.sc.proof_off == rec->proof_off &&
			        w.sc.work == rec->work,
			    "verify's walk stops first with %d after %llu "
			    "records at %llu, recovery's with %d after "
			    "%llu at %llu",
			    k, ULL(w.records), ULL(w.sc.off), rec->k,
			    ULL(rec->records), ULL(rec->off));
			first = false;
		}
		/* A resync lands on a whole valid record: next comes that
		 * record, or damage, or (the record opens a batch of writes
		 * that does not end whole) the group as a torn tail. */
		FUZZ_CHECK(!resynced || k == DSKVS__SCAN_CORRUPT ||
		               (k == DSKVS__SCAN_TORN &&
		                (w.buf[w.sc.off + 9] & DSKVS_REC_GRP) &&
		                !group_whole(&w, w.sc.off)),
		           "resynced to %llu, then scan_next says %d",
		           ULL(w.sc.off), k);
		check_stop(&w, k, false);
		if (k != DSKVS__SCAN_CORRUPT)
			break;
		uint64_t from = w.sc.off;
		uint64_t q = dskvs__scan_resync(&w.sc);
		if (!check_work(&w))
			break;
		damages++;
		FUZZ_CHECK(q == w.sc.off && q > from && q <= size,
		           "resync from %llu to %llu, scanner at %llu",
		           ULL(from), ULL(q), ULL(w.sc.off));
		if (q == size)
			break;
		FUZZ_CHECK(valid_at(&w, q),
		           "resync from %llu to %llu: no whole valid record "
		           "there",
		           ULL(from), ULL(q));
		w.expect = q;
		resynced = true;
	}
	if (verbose)
		fprintf(stderr,
		        "  verify: %llu records, %llu damaged, work %.2f B/B\n",
		        ULL(w.records), ULL(damages),
		        size ? (double)w.sc.work / (double)size : 0.0);
	dskvs__win_free(&w.sc.w);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	verbose = getenv("FUZZ_SCAN_VERBOSE") != NULL;
	dump_path = getenv("FUZZ_SCAN_DUMP");
	const char *skip = getenv("FUZZ_SCAN_SKIP");
	while (skip && *skip) {
		size_t n = strcspn(skip, ",");
		if (n == 9 && memcmp(skip, "in-sealed", 9) == 0)
			skip_in_sealed = true;
		else if (n == 11 && memcmp(skip, "verify-work", 11) == 0)
			skip_verify_work = true;
		else if (n) {
			fprintf(stderr,
			        "fuzz_scan: FUZZ_SCAN_SKIP: unknown check "
			        "'%.*s' (in-sealed, verify-work)\n",
			        (int)n, skip);
			exit(2);
		}
		skip += n + (skip[n] == ',');
	}
	if (skip_in_sealed || skip_verify_work)
		fprintf(stderr, "fuzz_scan: leaving out%s%s\n",
		        skip_in_sealed ? " in-sealed" : "",
		        skip_verify_work ? " verify-work" : "");
	return 0;
}

/* A copy of the log in a buffer kept from input to input, the bytes past
 * its end poisoned under ASan: a read past the end is a sanitizer report,
 * as with a malloc of exactly its size, without one per input. */
struct copy {
	unsigned char *buf;
	size_t cap;
};

static unsigned char *copy_of(struct copy *c, const unsigned char *src,
                              size_t len)
{
	if (len > c->cap || c->buf == NULL) {
		ASAN_UNPOISON_MEMORY_REGION(c->buf, c->cap);
		free(c->buf);
		c->cap = (len + 4095) & ~(size_t)4095;
		if (c->cap == 0)
			c->cap = 4096;
		c->buf = malloc(c->cap);
		FUZZ_CHECK(c->buf != NULL, "out of memory");
	}
	ASAN_UNPOISON_MEMORY_REGION(c->buf, len);
	memcpy(c->buf, src, len);
	ASAN_POISON_MEMORY_REGION(c->buf + len, c->cap - len);
	return c->buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct copy ca, cb;
	size_t len;
	int clean;
	const unsigned char *src = fuzz_scan_log(data, size, &len, &clean);
	if (dump_path != NULL) {
		FILE *f = fopen(dump_path, "wb");
		if (f != NULL) {
			fwrite(src, 1, len, f);
			fclose(f);
		}
	}
	/* Two copies: each walk of recovery's gets its own. */
	unsigned char *a = copy_of(&ca, src, len), *b = copy_of(&cb, src, len);
	struct outcome o1, o2;

	walk_recover(a, len, &o1, true, clean ? G.rec_off : NULL,
	             clean ? G.nrec : 0);
	walk_recover(b, len, &o2, false, NULL, 0);
	same_outcome(&o1, &o2);
	if (verbose) {
		static const char *const res[] = { "?",          "record",
			                           "end",        "torn",
			                           "corrupt",    "eio",
			                           "torn header" };
		fprintf(stderr,
		        "%s log of %zu bytes%s: header %d, %s after %llu "
		        "records at %llu%s%s%s, proof %llu, work %.2f B/B\n",
		        size && (data[0] & 1) ? "described" : "raw", len,
		        clean ? " (clean)" : "", o1.hdr,
		        o1.k >= 0 && o1.k <= 6 ? res[o1.k] : "?",
		        ULL(o1.records), ULL(o1.off), o1.why ? " (" : "",
		        o1.why ? o1.why : "", o1.why ? ")" : "",
		        ULL(o1.proof_off),
		        len ? (double)o1.work / (double)len : 0.0);
	}
	walk_verify(a, len, &o1);
	return 0;
}

/*
 * The log format: file header, record encoding, and the one scanner that
 * recovery, verify and the fuzzer share. Everything that decides "torn tail
 * or damage" lives here, once.
 *
 * Format 2 (all integers little-endian)
 * -------------------------------------
 * File header, 32 bytes:
 *    0  8  magic "DSKVSLOG"
 *    8  2  major format version (2)     a reader refuses a newer major
 *   10  2  minor format version (0)     (DSKVS_EVERSION)
 *   12  4  salt: random per file; seeds every record header checksum, so a
 *          record copied from another file (another store, or an earlier
 *          log of this one) never passes for one of this file's
 *   16  8  sealed length: bytes [0, sealed) were written and fdatasync'ed
 *          whole before this file became the log (a compacted or rewritten
 *          file); 32 for a log created empty
 *   24  4  creation time, Unix seconds
 *   28  4  CRC32C of bytes 0..27
 *
 * Record, 32-byte header then key then value:
 *    0  4  CRC32C, seeded with the salt, of header bytes 4..31
 *    4  4  CRC32C of key and value
 *    8  1  op: 1 put, 2 delete, 3 delete-all, 4 mark
 *    9  1  flags: bit 0 set on the last record of a batch; bit 1 on every
 *          record of a batch of writes but its last (see below); others 0
 *   10  2  reserved (0)
 *   12  4  key length: "coll/member" for put and delete, the collection
 *          name for delete-all, 0 for a mark
 *   16  4  value length (0 unless put)
 *   20  4  batch number (0 inside the sealed part)
 *   24  8  sequence number: of the write for put, delete and delete-all
 *          (1 .. DSKVS_SEQ_MAX); for a mark, the highest one handed out
 *          before it
 *
 * Format 1 (still read, and appended to until the store's next compaction,
 * which writes format 2): no salt (header checksums seeded with 0), no
 * sealed length (bytes 12..27 are flags, a creation time in ns, reserved),
 * no marks. A compacted format-1 file is one batch whose last record has the
 * end-of-batch flag.
 *
 * Which batches are known synced
 * ------------------------------
 * Everything written between two fdatasyncs of the log is one batch: its
 * records carry the batch's number, the last one the end-of-batch flag. The
 * janitor writes anything of batch N + 1 only after the fdatasync of batch
 * N returned, so any record of a later batch on disk proves that batch N
 * was synced. A mark is a record with no data that opens the next batch:
 * the janitor writes one right after a batch's fdatasync when nothing else
 * is queued (before it tells waiters the batch is durable), and close ends
 * the log with a synced one, so the last batch of an idle or cleanly closed
 * log is proven too, at the cost of a 32-byte write and no extra fdatasync.
 * The sealed part of a compacted file needs no proof.
 *
 * The rules, applied by dskvs__scan_next:
 *  - damage (a bad checksum, or a record that runs past the end of the
 *    file) inside the sealed part, or a file shorter than its sealed part:
 *    DSKVS_ECORRUPT;
 *  - a record whose checksums are valid but whose content is impossible
 *    (reserved bits, unknown op, lengths, a malformed key, a sequence number
 *    out of range or not above every earlier one outside the sealed part):
 *    DSKVS_ECORRUPT; a crash cannot write such a record;
 *  - other damage falls in batch B (the batch of the last good record, or
 *    the next one if that record ended its batch). If a record that could
 *    really follow B appears anywhere after it (a valid salted header, a
 *    later batch number, a sequence number above every record before the
 *    damage), B was synced: DSKVS_ECORRUPT. Otherwise the damage is the
 *    torn tail of a batch nobody was told was durable.
 *
 * Batches of writes (dskvs_write_batch)
 * -------------------------------------
 * The puts and deletes of one dskvs_write_batch are consecutive records;
 * each but the last carries flag bit 1 (DSKVS_REC_GRP), the last does not,
 * so a batch of one is an ordinary record. They are applied all or none:
 * the scanner hands out the first record of such a group only once it has
 * checked every record up to its end (a lookahead; each record is then
 * checked again as it is handed out: at most three checks a byte, still
 * linear). The writer keeps a group inside one of the janitor's batches
 * (the queue commits and dequeues it whole), and a compaction copies it
 * whole into the sealed part. So:
 *  - a group cut short by the end of the file, or by damage that the rules
 *    above call a torn tail, is torn from its first record: the tail moved
 *    aside starts there, and none of its records is applied;
 *  - damage inside a group that a later batch proves synced, or inside the
 *    sealed part, is DSKVS_ECORRUPT as anywhere else;
 *  - a group that mixes batch numbers, runs across the end of the sealed
 *    part, holds a mark or a delete-all, or whose record also ends a batch
 *    (both flags), cannot be written by a crash: DSKVS_ECORRUPT.
 * The flag is valid in format 1 and 2.0 files too (a store appends to the
 * log it opened, whatever its version): a dskvs 1.1 library (format 2.0)
 * refuses a log holding a group with DSKVS_ECORRUPT ("reserved header bits
 * are not zero") and never applies part of one. The minor version stays 0
 * for that reason: a file's header is written when it is created, before
 * anyone knows whether groups will follow, so it could not tell an older
 * reader anything the flag does not.
 *
 * Why the proof only looks at headers: a valid salted header checksum is
 * the evidence that the record was written by this file's writer; its data
 * checksum adds nothing to that (a copy of a whole record inside a value
 * carries a valid data checksum too) and checking it for every candidate is
 * what made the old scan quadratic on crafted input. A copy of one of this
 * file's own records inside a value has a sequence number no larger than
 * the records already written when the copy was made, so it never counts.
 *
 * Cost: every byte is looked at by the record loop once; after damage the
 * proof search looks at each position once, with cheap filters (type and
 * reserved bytes) in front of a 28-byte checksum; verify's resync checks a
 * candidate's data at most once per byte, skipping a record whose header is
 * valid but whose data is not. Linear in the file's size on any input.
 */
#include "format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

static const char magic[8] = { 'D', 'S', 'K', 'V', 'S', 'L', 'O', 'G' };

static inline void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}
static inline void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static inline void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}
static inline uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

/* ---- encoding ----------------------------------------------------------- */

void dskvs__file_hdr_encode(unsigned char out[DSKVS_FILE_HDR], uint32_t salt,
                            uint64_t sealed)
{
	memset(out, 0, DSKVS_FILE_HDR);
	memcpy(out, magic, 8);
	put16(out + 8, DSKVS_FORMAT_MAJOR);
	put16(out + 10, DSKVS_FORMAT_MINOR);
	put32(out + 12, salt);
	put64(out + 16, sealed);
	put32(out + 24, (uint32_t)time(NULL));
	put32(out + 28, dskvs__crc32c(0, out, 28));
}

void dskvs__rec_hdr_encode(unsigned char out[DSKVS_REC_HDR], uint32_t salt,
                           unsigned op, unsigned flags, uint32_t batch,
                           const char *key, size_t klen, const void *val,
                           size_t vlen, uint64_t seq)
{
	uint32_t dcrc = dskvs__crc32c(0, key, klen);
	if (vlen)
		dcrc = dskvs__crc32c(dcrc, val, vlen);
	memset(out, 0, DSKVS_REC_HDR);
	put32(out + 4, dcrc);
	out[8] = (unsigned char)op;
	out[9] = (unsigned char)flags;
	put32(out + 12, (uint32_t)klen);
	put32(out + 16, (uint32_t)vlen);
	put32(out + 20, batch);
	put64(out + 24, seq);
	put32(out, dskvs__crc32c(salt, out + 4, DSKVS_REC_HDR - 4));
}

/* Random, from getrandom; the clock when that fails (the salt only has to
 * differ between files, not be secret). */
uint32_t dskvs__new_salt(void)
{
	uint32_t salt;
	if (getrandom(&salt, sizeof(salt), GRND_NONBLOCK) != sizeof(salt))
		salt =
		    (uint32_t)(dskvs__now_ns() * 0x9e3779b97f4a7c15ull >> 32);
	return salt;
}

/* ---- the window ----------------------------------------------------------
 * The scanner reads the file through a window: a buffer holding
 * [start, start + len), refilled with pread, at least DSKVS_WIN_BYTES at a
 * time and as much as one whole record needs (a record is at most
 * DSKVS_REC_HDR + DSKVS_KEY_MAX + DSKVS_VALUE_MAX bytes, so that bounds the
 * buffer). A memory source (the fuzzer, tests) is its own window. */

void dskvs__win_init_fd(struct dskvs__win *w, int fd, uint64_t size)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->size = size;
}

void dskvs__win_init_mem(struct dskvs__win *w, const void *buf, uint64_t size)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->mem = buf;
	w->size = size;
	w->len = size;
}

void dskvs__win_free(struct dskvs__win *w)
{
	free(w->buf);
	w->buf = NULL;
	w->cap = 0;
}

const unsigned char *dskvs__win_fill(struct dskvs__win *w, uint64_t off,
                                     size_t n)
{
	if (w->mem != NULL)
		return off + n <= w->size ? w->mem + off : NULL;
	if (off > w->size || n > w->size - off) {
		w->err = 0;
		return NULL;
	}
	size_t want = DSKVS_WIN_BYTES;
	if (want < n)
		want = n;
	if (want > w->size - off)
		want = (size_t)(w->size - off);
	if (want > w->cap) {
		unsigned char *p = realloc(w->buf, want);
		if (p == NULL) {
			w->err = -ENOMEM;
			w->err_off = off;
			return NULL;
		}
		w->buf = p;
		w->cap = want;
	}
	ssize_t got = dskvs__read_all(w->fd, w->buf, want, (off_t)off);
	if (got < 0) {
		w->err = (int)got;
		w->err_off = off;
		w->start = 0;
		w->len = 0;
		return NULL;
	}
	w->start = off;
	w->len = (size_t)got;
	if ((size_t)got < n) {
		/* The file shrank under us (verify of a store being opened):
		 * what is not there is not there. */
		w->size = off + (uint64_t)got;
		return NULL;
	}
	return w->buf;
}

/* ---- the header --------------------------------------------------------- */

/* A file shorter than a header whose bytes are a prefix of one (or zeros):
 * a crash while the file was being created (format 1 created the log in
 * place). */
static bool torn_header(const unsigned char *buf, size_t size)
{
	if (size == 0)
		return true;
	if (memcmp(buf, magic, size < 8 ? size : 8) == 0)
		return true;
	for (size_t i = 0; i < size; i++)
		if (buf[i])
			return false;
	return true;
}

int dskvs__scan_header(struct dskvs__scan *sc, const char *file)
{
	struct dskvs__win *w = &sc->w;
	uint64_t n = w->size < DSKVS_FILE_HDR ? w->size : DSKVS_FILE_HDR;
	const unsigned char *p = n ? dskvs__win_get(w, 0, (size_t)n) : NULL;

	if (n && p == NULL)
		goto io;
	if (w->size < DSKVS_FILE_HDR) {
		if (torn_header(p, (size_t)n))
			return DSKVS__SCAN_TORN_HEADER;
		return dskvs__fail(DSKVS_ECORRUPT,
		                   "%s: not a dskvs log (%llu bytes, bad magic "
		                   "number)",
		                   file, (unsigned long long)w->size);
	}
	if (memcmp(p, magic, 8) != 0)
		return dskvs__fail(DSKVS_ECORRUPT,
		                   "%s: not a dskvs log (bad magic number)",
		                   file);
	sc->major = get16(p + 8);
	sc->minor = get16(p + 10);
	if (sc->major > DSKVS_FORMAT_MAJOR)
		return dskvs__fail(DSKVS_EVERSION,
		                   "%s: format version %u.%u is newer than "
		                   "this library's %u.%u",
		                   file, sc->major, sc->minor,
		                   DSKVS_FORMAT_MAJOR, DSKVS_FORMAT_MINOR);
	if (sc->major == 0 || dskvs__crc32c(0, p, 28) != get32(p + 28))
		return dskvs__fail(DSKVS_ECORRUPT,
		                   "%s: damaged file header (offset 0)", file);
	sc->off = DSKVS_FILE_HDR;
	sc->max_seq = 0;
	sc->last_batch = 0;
	sc->last_ended = true;
	if (sc->major == 1) {
		sc->salt = 0;
		sc->sealed = DSKVS_FILE_HDR;
		sc->ordered = false; /* until the first batch ended */
	} else {
		sc->salt = get32(p + 12);
		sc->sealed = get64(p + 16);
		sc->ordered = true;
		if (sc->sealed < DSKVS_FILE_HDR)
			return dskvs__fail(DSKVS_ECORRUPT,
			                   "%s: damaged file header (sealed "
			                   "length %llu)",
			                   file,
			                   (unsigned long long)sc->sealed);
		if (sc->sealed > w->size)
			return dskvs__fail(
			    DSKVS_ECORRUPT,
			    "%s: the file is %llu bytes, shorter than the "
			    "%llu bytes its compaction synced whole: synced "
			    "data was cut off",
			    file, (unsigned long long)w->size,
			    (unsigned long long)sc->sealed);
	}
	return DSKVS_OK;
io:
	return dskvs__fail(w->err == -ENOMEM ? DSKVS_ENOMEM : DSKVS_EIO,
	                   "%s: read at offset 0: %s", file, strerror(-w->err));
}

/* ---- records ------------------------------------------------------------ */

enum { REC_OK, REC_TORN, REC_BAD, REC_INVALID };

/* A record's key: "coll" for a DeleteAll, "coll/member" otherwise. The
 * collection name is 1 .. DSKVS_NAME_MAX bytes without NUL (and without
 * '/': it ends at the first one); the member is any 0 .. DSKVS_NAME_MAX
 * bytes, NUL and '/' included (the binary-safe _bin calls write those). */
static bool key_ok(unsigned op, const char *key, size_t klen)
{
	const char *slash = memchr(key, '/', klen);
	size_t clen = slash ? (size_t)(slash - key) : klen;
	if (clen == 0 || clen > DSKVS_NAME_MAX ||
	    memchr(key, '\0', clen) != NULL)
		return false;
	if (op == DSKVS_REC_DELALL)
		return slash == NULL;
	return slash != NULL && klen - clen - 1 <= DSKVS_NAME_MAX;
}

/* Cheap filters in front of the header checksum. */
static inline bool hdr_plausible(const unsigned char *p)
{
	return p[8] >= DSKVS_REC_PUT && p[8] <= DSKVS_REC_MARK &&
	       (p[9] & ~(DSKVS_REC_END | DSKVS_REC_GRP)) == 0 && p[10] == 0 &&
	       p[11] == 0;
}

/* Decode the header at p (valid checksum assumed) into r. */
static void hdr_decode(const unsigned char *p, uint64_t off,
                       struct dskvs__rec *r)
{
	r->off = off;
	r->op = p[8];
	r->flags = p[9];
	r->klen = get32(p + 12);
	r->vlen = get32(p + 16);
	r->batch = get32(p + 20);
	r->seq = get64(p + 24);
	r->size = (uint64_t)DSKVS_REC_HDR + r->klen + r->vlen;
}

bool dskvs__rec_hdr_read(const unsigned char *p, uint32_t salt, uint64_t off,
                         struct dskvs__rec *r)
{
	if (dskvs__crc32c(salt, p + 4, DSKVS_REC_HDR - 4) != get32(p))
		return false;
	hdr_decode(p, off, r);
	return true;
}

/* Lengths and type a header may carry. */
static const char *hdr_content_error(const struct dskvs__scan *sc,
                                     const unsigned char *p,
                                     const struct dskvs__rec *r)
{
	if ((r->flags & ~(DSKVS_REC_END | DSKVS_REC_GRP)) || p[10] || p[11])
		return "reserved header bits are not zero";
	if ((r->flags & DSKVS_REC_GRP) &&
	    ((r->flags & DSKVS_REC_END) ||
	     (r->op != DSKVS_REC_PUT && r->op != DSKVS_REC_DEL)))
		return "a batch-of-writes flag on a record that cannot carry "
		       "it";
	if (r->op < DSKVS_REC_PUT || r->op > DSKVS_REC_MARK ||
	    (r->op == DSKVS_REC_MARK && sc->major < 2))
		return "unknown record type";
	if (r->op == DSKVS_REC_MARK)
		return r->klen || r->vlen ? "a mark with a key or value" : NULL;
	if (r->klen == 0 || r->klen > DSKVS_KEY_MAX ||
	    r->vlen > DSKVS_VALUE_MAX || (r->op != DSKVS_REC_PUT && r->vlen))
		return "record lengths out of range";
	return NULL;
}

/* Is the header at p one this file's writer wrote? */
static inline bool hdr_valid(struct dskvs__scan *sc, const unsigned char *p)
{
	sc->work += DSKVS_REC_HDR - 4;
	return dskvs__crc32c(sc->salt, p + 4, DSKVS_REC_HDR - 4) == get32(p);
}

/*
 * Decode the record at sc->off. REC_TORN: the file ends inside it (r->size
 * is set when the header was whole and valid). REC_BAD: a checksum does not
 * match. REC_INVALID: checksums valid, content impossible. *why says which.
 * On a read error returns -1 with sc->w.err set.
 */
static int rec_at(struct dskvs__scan *sc, struct dskvs__rec *r,
                  const char **why)
{
	struct dskvs__win *w = &sc->w;
	uint64_t off = sc->off;
	const unsigned char *p;

	r->size = 0;
	if (w->size - off < DSKVS_REC_HDR) {
		*why = "file ends inside a record header";
		return REC_TORN;
	}
	if ((p = dskvs__win_get(w, off, DSKVS_REC_HDR)) == NULL)
		return w->err ? -1 : REC_TORN;
	if (!hdr_valid(sc, p)) {
		*why = "bad record header checksum";
		return REC_BAD;
	}
	hdr_decode(p, off, r);
	if ((*why = hdr_content_error(sc, p, r)) != NULL) {
		r->size = 0; /* its lengths are not to be trusted */
		return REC_INVALID;
	}
	if (r->size > w->size - off) {
		*why = "file ends inside a record";
		return REC_TORN;
	}
	if ((p = dskvs__win_get(w, off, (size_t)r->size)) == NULL) {
		*why = "file ends inside a record";
		return w->err ? -1 : REC_TORN;
	}
	r->key = (const char *)p + DSKVS_REC_HDR;
	r->val = p + DSKVS_REC_HDR + r->klen;
	sc->work += r->klen + r->vlen;
	if (dskvs__crc32c(0, r->key, r->klen + r->vlen) != get32(p + 4)) {
		*why = "bad record data checksum";
		return REC_BAD;
	}
	if (r->op != DSKVS_REC_MARK && !key_ok(r->op, r->key, r->klen)) {
		*why = "malformed key in record";
		return REC_INVALID;
	}
	return REC_OK;
}

/* Sequence number rules for a record whose checksums are valid. */
static const char *seq_error(const struct dskvs__scan *sc,
                             const struct dskvs__rec *r)
{
	bool mark = r->op == DSKVS_REC_MARK;
	if (r->seq > DSKVS_SEQ_LIMIT || (r->seq == 0 && !mark))
		return "sequence number out of range";
	if (r->off < sc->sealed || !sc->ordered)
		return NULL;
	if (mark ? r->seq < sc->max_seq : r->seq <= sc->max_seq)
		return "sequence number not above the records before it";
	return NULL;
}

/* The batch a damage right after the last good record falls in. */
static inline uint32_t damaged_batch(const struct dskvs__scan *sc)
{
	return sc->last_ended ? sc->last_batch + 1 : sc->last_batch;
}

/* b is a later batch than `than` (numbers are compared modulo 2^32, as
 * they may wrap in a log that is never compacted). */
static inline bool later_batch(uint32_t b, uint32_t than)
{
	return b != than && (uint32_t)(b - than) < (1u << 31);
}

/*
 * The proof that batch B was synced: the first offset after `from` holding a
 * valid header of a later batch with a sequence number above every record
 * before the damage. 0 if there is none. Headers only; see the top comment.
 */
static uint64_t proof_after(struct dskvs__scan *sc, uint64_t from, uint32_t b)
{
	struct dskvs__win *w = &sc->w;
	for (uint64_t q = from; q + DSKVS_REC_HDR <= w->size; q++) {
		const unsigned char *p = dskvs__win_get(w, q, DSKVS_REC_HDR);
		if (p == NULL)
			return w->err ? UINT64_MAX : 0;
		sc->work++;
		if (!hdr_plausible(p) || !hdr_valid(sc, p))
			continue;
		struct dskvs__rec r;
		hdr_decode(p, q, &r);
		if (hdr_content_error(sc, p, &r) == NULL &&
		    later_batch(r.batch, b) && r.seq > sc->max_seq &&
		    r.seq <= DSKVS_SEQ_LIMIT)
			return q;
	}
	return 0;
}

static int scan_io(struct dskvs__scan *sc)
{
	sc->why = sc->w.err == -ENOMEM ? "out of memory for the read window"
	                               : strerror(-sc->w.err);
	sc->bad_off = sc->w.err_off;
	return DSKVS__SCAN_EIO;
}

static int scan_one(struct dskvs__scan *sc, struct dskvs__rec *r)
{
	const char *why = NULL;

	sc->proof_off = 0;
	sc->in_sealed = false;
	if (sc->off >= sc->w.size)
		return DSKVS__SCAN_END;
	int k = rec_at(sc, r, &why);
	if (k < 0)
		return scan_io(sc);
	sc->bad_off = sc->off;
	/* Where a resync may start (verify): past a record whose header was
	 * valid and that lies within the file, so that no byte's data is
	 * checksummed twice; else the next byte. */
	sc->skip_to = r->size && r->size <= sc->w.size - sc->off
	                  ? sc->off + r->size
	                  : sc->off + 1;
	if (k == REC_OK) {
		if (sc->off < sc->sealed && sc->off + r->size > sc->sealed) {
			sc->why = "a record runs across the end of the part "
			          "sealed by a compaction";
			return DSKVS__SCAN_CORRUPT;
		}
		if ((why = seq_error(sc, r)) != NULL) {
			sc->why = why;
			return DSKVS__SCAN_CORRUPT;
		}
		if (r->seq > sc->max_seq)
			sc->max_seq = r->seq;
		if (sc->off + r->size == sc->sealed) {
			/* The sealed part ends: the janitor's batches
			 * start at 1 after it. */
			sc->last_batch = 0;
			sc->last_ended = true;
		} else if (sc->off >= sc->sealed) {
			sc->last_batch = r->batch;
			sc->last_ended = r->flags & DSKVS_REC_END;
		}
		if (!sc->ordered && (r->flags & DSKVS_REC_END))
			sc->ordered = true;
		sc->off += r->size;
		sc->records++;
		return DSKVS__SCAN_REC;
	}
	sc->why = why;
	if (k == REC_INVALID)
		return DSKVS__SCAN_CORRUPT;
	if (sc->off < sc->sealed) {
		sc->in_sealed = true;
		return DSKVS__SCAN_CORRUPT;
	}
	if (k == REC_BAD && sc->after_damage) {
		/* verify, past damage already refused: every region that a
		 * valid record follows is damage anyway (resync finds it), and
		 * one proof search per region would be quadratic. */
		return DSKVS__SCAN_CORRUPT;
	}
	if (k == REC_BAD) {
		/* A valid header over bad data: the record's own bytes (its
		 * value may hold images of records) are not searched. */
		uint64_t q = proof_after(sc, sc->skip_to, damaged_batch(sc));
		if (q == UINT64_MAX)
			return scan_io(sc);
		if (q) {
			sc->proof_off = q;
			return DSKVS__SCAN_CORRUPT;
		}
	}
	return DSKVS__SCAN_TORN;
}

/* What a group's lookahead moves and must put back. */
struct scan_pos {
	uint64_t off, max_seq, records;
	uint32_t last_batch;
	bool last_ended, ordered;
};
static void pos_save(const struct dskvs__scan *sc, struct scan_pos *p)
{
	*p = (struct scan_pos){ sc->off,        sc->max_seq,    sc->records,
		                sc->last_batch, sc->last_ended, sc->ordered };
}
static void pos_restore(struct dskvs__scan *sc, const struct scan_pos *p)
{
	sc->off = p->off;
	sc->max_seq = p->max_seq;
	sc->records = p->records;
	sc->last_batch = p->last_batch;
	sc->last_ended = p->last_ended;
	sc->ordered = p->ordered;
}

/* The lookahead of group_check stops on damage at `at`, inside the group:
 * the counts go back to what was handed out (the members before `at` never
 * are), the position stays at the damage, which bad_off names. */
static int group_damage(struct dskvs__scan *sc, const struct scan_pos *before,
                        uint64_t at, int k)
{
	pos_restore(sc, before);
	sc->off = at;
	return k;
}

/*
 * r, at `start`, opens a batch of writes (DSKVS_REC_GRP): check every
 * record up to its end before handing r out (top comment, "batches of
 * writes"). `before` is the scanner's position before r. Returns what
 * scan_next returns. After DSKVS__SCAN_CORRUPT the scanner stands at the
 * damaged record (bad_off), which may lie past `start`; the counts are
 * those before r.
 */
static int group_check(struct dskvs__scan *sc, struct dskvs__rec *r,
                       uint64_t start, const struct scan_pos *before)
{
	uint32_t batch = r->batch;
	bool sealed = start < sc->sealed;
	struct dskvs__rec t;

	for (;;) {
		uint64_t at = sc->off;
		int k = scan_one(sc, &t);
		if (k == DSKVS__SCAN_REC) {
			if ((t.op != DSKVS_REC_PUT && t.op != DSKVS_REC_DEL) ||
			    t.batch != batch || (at < sc->sealed) != sealed) {
				sc->bad_off = at;
				sc->proof_off = 0;
				sc->in_sealed = false;
				sc->why = "a batch of writes interrupted by a "
				          "record that cannot belong to it";
				return group_damage(sc, before, at,
				                    DSKVS__SCAN_CORRUPT);
			}
			if (!(t.flags & DSKVS_REC_GRP))
				break;
			continue;
		}
		if (k != DSKVS__SCAN_END && k != DSKVS__SCAN_TORN)
			/* Damage shown synced, or a read error. */
			return group_damage(sc, before, at, k);
		if (sealed) {
			/* The sealed part ends (or the file does) before the
			 * group: the group itself is the damage. */
			pos_restore(sc, before);
			sc->bad_off = start;
			sc->proof_off = 0;
			sc->in_sealed = true;
			sc->why = "a batch of writes cut short inside the part "
			          "sealed by a compaction";
			return DSKVS__SCAN_CORRUPT;
		}
		/* Torn (the batch of the damage is not proven synced; the
		 * record loop searched for the proof) or cut at a record's
		 * end: the tail starts at the group's first record. */
		pos_restore(sc, before);
		sc->bad_off = start;
		sc->why = k == DSKVS__SCAN_END
		              ? "the file ends inside a batch of writes"
		              : "a batch of writes torn by the end of the file";
		return DSKVS__SCAN_TORN;
	}
	sc->grp_end = sc->off;
	pos_restore(sc, before);
	return scan_one(sc, r);
}

int dskvs__scan_next(struct dskvs__scan *sc, struct dskvs__rec *r)
{
	struct scan_pos before;
	uint64_t start = sc->off;

	pos_save(sc, &before);
	int k = scan_one(sc, r);
	if (k != DSKVS__SCAN_REC || !(r->flags & DSKVS_REC_GRP) ||
	    start < sc->grp_end)
		return k;
	return group_check(sc, r, start, &before);
}

uint64_t dskvs__scan_resync(struct dskvs__scan *sc)
{
	struct dskvs__win *w = &sc->w;
	uint64_t q = sc->skip_to > sc->off ? sc->skip_to : sc->off + 1;

	sc->after_damage = true;
	while (q + DSKVS_REC_HDR <= w->size) {
		const unsigned char *p = dskvs__win_get(w, q, DSKVS_REC_HDR);
		if (p == NULL)
			break;
		sc->work++;
		if (!hdr_plausible(p) || !hdr_valid(sc, p)) {
			q++;
			continue;
		}
		struct dskvs__rec r;
		const char *why;
		uint64_t save = sc->off;
		sc->off = q;
		int k = rec_at(sc, &r, &why);
		if (k == REC_OK) {
			/* Resume here; what follows is judged by the same
			 * rules, against everything before the damage. */
			sc->last_batch = r.batch;
			sc->last_ended = false;
			return q;
		}
		sc->off = save;
		if (k < 0 || k == REC_TORN)
			break;
		/* A valid header over bad data (or a bad key), lying within
		 * the file: skip what it covers, so that no byte is
		 * checksummed twice. Lengths out of range: move on by one
		 * byte (nothing was checksummed but the header). */
		q = r.size && r.size <= w->size - q ? q + r.size : q + 1;
	}
	sc->off = w->size;
	return w->size;
}

/* The failure the scanner reported, as a code with the thread's detail. */
int dskvs__scan_failure(const struct dskvs__scan *sc, int k, const char *file)
{
	if (k == DSKVS__SCAN_EIO)
		return dskvs__fail(DSKVS_EIO, "%s: read at offset %llu: %s",
		                   file, (unsigned long long)sc->bad_off,
		                   sc->why);
	if (sc->proof_off)
		return dskvs__fail(
		    DSKVS_ECORRUPT,
		    "%s: damaged record at offset %llu (%s); the record of a "
		    "later batch at offset %llu shows it had been synced; "
		    "refusing to drop data (inspect with 'dskvs verify')",
		    file, (unsigned long long)sc->bad_off, sc->why,
		    (unsigned long long)sc->proof_off);
	if (sc->in_sealed)
		return dskvs__fail(
		    DSKVS_ECORRUPT,
		    "%s: damaged record at offset %llu (%s), inside the "
		    "%llu bytes a compaction synced whole; refusing to drop "
		    "data (inspect with 'dskvs verify')",
		    file, (unsigned long long)sc->bad_off, sc->why,
		    (unsigned long long)sc->sealed);
	return dskvs__fail(DSKVS_ECORRUPT,
	                   "%s: record at offset %llu: %s; a crash cannot "
	                   "write that (inspect with 'dskvs verify')",
	                   file, (unsigned long long)sc->bad_off, sc->why);
}

/* ---- torn tails' names --------------------------------------------------- */

void dskvs__torn_name(uint64_t off, unsigned k, char *name, size_t cap)
{
	if (k == 0)
		snprintf(name, cap, DSKVS_TORN_PREFIX "%llu",
		         (unsigned long long)off);
	else
		snprintf(name, cap, DSKVS_TORN_PREFIX "%llu.%u",
		         (unsigned long long)off, k);
}

int dskvs__torn_name_free(int dirfd, uint64_t off, char *name, size_t cap)
{
	struct stat st;
	for (unsigned k = 0; k < DSKVS_TORN_MAX_TRIES; k++) {
		dskvs__torn_name(off, k, name, cap);
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			return errno == ENOENT ? 0 : -errno;
	}
	return -EEXIST;
}

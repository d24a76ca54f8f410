/*
 * The log file: format, replay at open, and verification.
 *
 * Format (all integers little-endian)
 * -----------------------------------
 * File header, 32 bytes:
 *    0  8  magic "DSKVSLOG"
 *    8  2  major format version (1)     a reader refuses a newer major
 *   10  2  minor format version (0)     (DSKVS_EVERSION); the layout after
 *   12  4  flags (0)                    these 12 bytes may change with it
 *   16  8  creation time, Unix ns
 *   24  4  reserved (0)
 *   28  4  CRC32C of bytes 0..27
 *
 * Record, 32-byte header then key then value:
 *    0  4  CRC32C of header bytes 4..31
 *    4  4  CRC32C of key and value
 *    8  1  op: 1 put, 2 delete, 3 delete-all
 *    9  1  flags: bit 0 set on the last record of a batch; others 0
 *   10  2  reserved (0)
 *   12  4  key length: "coll/member" for put and delete, the collection
 *          name for delete-all
 *   16  4  value length (0 unless put)
 *   20  4  batch number (see below)
 *   24  8  sequence number of the write
 *
 * The header has its own checksum so that its lengths are trusted before
 * anything is sized from them; lengths are also checked against the limits
 * and against the bytes left in the file before any allocation.
 *
 * Batches. Everything written between two fdatasyncs of the file is one
 * batch; its records carry the batch's number and the last one the
 * end-of-batch flag. The janitor writes batch N + 1 only after the
 * fdatasync of batch N returned, so a record of batch N + 1 on disk proves
 * that batch N was durable. A batch whose fdatasync had not returned when
 * the power went can reach the disk in any order, page by page.
 *
 * Recovery: records are replayed in file order. At the first damage (or the
 * end of the file inside a record), let B be the batch the damage is in:
 * the batch of the last good record, or the next one if that record ended
 * its batch. If no valid record follows, or every valid record that
 * follows belongs to B, the damage is the torn tail of a batch that was
 * never acknowledged: the file is truncated there and synced. If a record
 * of a later batch follows, acknowledged data was damaged: DSKVS_ECORRUPT,
 * rather than silently dropping what follows.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

void dskvs__file_hdr_encode(unsigned char out[DSKVS_FILE_HDR])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(out, 0, DSKVS_FILE_HDR);
	memcpy(out, magic, 8);
	put16(out + 8, DSKVS_FORMAT_MAJOR);
	put16(out + 10, DSKVS_FORMAT_MINOR);
	put64(out + 16,
	      (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
	put32(out + 28, dskvs__crc32c(0, out, 28));
}

void dskvs__rec_hdr_encode(unsigned char out[DSKVS_REC_HDR], unsigned op,
                           unsigned flags, uint32_t batch, const char *key,
                           size_t klen, const void *val, size_t vlen,
                           uint64_t seq)
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
	put32(out, dskvs__crc32c(0, out + 4, DSKVS_REC_HDR - 4));
}

void dskvs__rec_hdr_set_end(unsigned char hdr[DSKVS_REC_HDR])
{
	hdr[9] |= DSKVS_REC_END;
	put32(hdr, dskvs__crc32c(0, hdr + 4, DSKVS_REC_HDR - 4));
}

/* ---- parsing ------------------------------------------------------------- */

enum { REC_OK = 0, REC_TORN = 1, REC_BAD = -1 };

struct rec {
	unsigned op;
	unsigned flags;
	uint32_t batch;
	const char *key;
	size_t klen;
	const void *val;
	size_t vlen;
	uint64_t seq;
	size_t size;
};

static bool key_ok(unsigned op, const char *key, size_t klen)
{
	if (memchr(key, '\0', klen) != NULL)
		return false;
	const char *slash = memchr(key, '/', klen);
	if (op == DSKVS_OP_DELALL)
		return slash == NULL && klen <= DSKVS_NAME_MAX;
	if (slash == NULL)
		return false;
	size_t clen = (size_t)(slash - key), mlen = klen - clen - 1;
	return clen >= 1 && clen <= DSKVS_NAME_MAX && mlen >= 1 &&
	       mlen <= DSKVS_NAME_MAX;
}

/* Decode the record at off. REC_TORN: the file ends inside it. */
static int rec_at(const unsigned char *buf, size_t size, size_t off,
                  struct rec *r, const char **why)
{
	const unsigned char *p = buf + off;
	if (size - off < DSKVS_REC_HDR) {
		*why = "file ends inside a record header";
		return REC_TORN;
	}
	if (dskvs__crc32c(0, p + 4, DSKVS_REC_HDR - 4) != get32(p)) {
		*why = "bad record header checksum";
		return REC_BAD;
	}
	r->op = p[8];
	r->flags = p[9];
	r->klen = get32(p + 12);
	r->vlen = get32(p + 16);
	r->batch = get32(p + 20);
	r->seq = get64(p + 24);
	if ((r->flags & ~DSKVS_REC_END) || p[10] || p[11]) {
		*why = "reserved header bits are not zero";
		return REC_BAD;
	}
	if (r->op < DSKVS_OP_PUT || r->op > DSKVS_OP_DELALL) {
		*why = "unknown record type";
		return REC_BAD;
	}
	if (r->klen == 0 || r->klen > DSKVS_KEY_MAX ||
	    r->vlen > DSKVS_VALUE_MAX || (r->op != DSKVS_OP_PUT && r->vlen)) {
		*why = "record lengths out of range";
		return REC_BAD;
	}
	r->size = DSKVS_REC_HDR + r->klen + r->vlen;
	if (r->size > size - off) {
		*why = "file ends inside a record";
		return REC_TORN;
	}
	r->key = (const char *)p + DSKVS_REC_HDR;
	r->val = p + DSKVS_REC_HDR + r->klen;
	if (dskvs__crc32c(0, p + DSKVS_REC_HDR, r->klen + r->vlen) !=
	    get32(p + 4)) {
		*why = "bad record data checksum";
		return REC_BAD;
	}
	if (!key_ok(r->op, r->key, r->klen)) {
		*why = "malformed key in record";
		return REC_BAD;
	}
	return REC_OK;
}

/* First offset after `from` holding a whole valid record, or 0. Cheap
 * filters (type byte, reserved bytes) keep the checksums to a few
 * candidates per kilobyte of garbage. */
static size_t next_valid(const unsigned char *buf, size_t size, size_t from)
{
	struct rec r;
	const char *why;
	for (size_t q = from; q + DSKVS_REC_HDR <= size; q++) {
		const unsigned char *p = buf + q;
		if (p[8] < DSKVS_OP_PUT || p[8] > DSKVS_OP_DELALL ||
		    (p[9] & ~DSKVS_REC_END) || p[10] || p[11])
			continue;
		if (rec_at(buf, size, q, &r, &why) == REC_OK)
			return q;
	}
	return 0;
}

/* The first valid record at or after `from` whose batch is not `batch`, or
 * 0 if every valid record there belongs to it (see "Batches" above). */
static size_t other_batch_after(const unsigned char *buf, size_t size,
                                size_t from, uint32_t batch)
{
	size_t q = next_valid(buf, size, from);
	while (q != 0 && q < size) {
		struct rec r;
		const char *why;
		if (rec_at(buf, size, q, &r, &why) != REC_OK) {
			q = next_valid(buf, size, q + 1);
			continue;
		}
		if (r.batch != batch)
			return q;
		q += r.size;
	}
	return 0;
}

/* The batch a damage right after the record `last` falls in. */
static inline uint32_t damaged_batch(uint32_t last_batch, bool last_ended)
{
	return last_ended ? last_batch + 1 : last_batch;
}

/* Check the file header. Returns DSKVS_OK, DSKVS_EVERSION or
 * DSKVS_ECORRUPT (with the thread's detail set). */
static int check_hdr(const unsigned char *buf, size_t size, const char *file,
                     unsigned *major, unsigned *minor)
{
	if (size < DSKVS_FILE_HDR || memcmp(buf, magic, 8) != 0)
		return dskvs__fail(DSKVS_ECORRUPT,
		                   "%s: not a dskvs log (bad magic number)",
		                   file);
	*major = get16(buf + 8);
	*minor = get16(buf + 10);
	if (*major > DSKVS_FORMAT_MAJOR)
		return dskvs__fail(DSKVS_EVERSION,
		                   "%s: format version %u.%u is newer than "
		                   "this library's %u.%u",
		                   file, *major, *minor, DSKVS_FORMAT_MAJOR,
		                   DSKVS_FORMAT_MINOR);
	if (*major == 0 || dskvs__crc32c(0, buf, 28) != get32(buf + 28))
		return dskvs__fail(DSKVS_ECORRUPT,
		                   "%s: damaged file header (offset 0)", file);
	return DSKVS_OK;
}

/* A file shorter than a header whose bytes are a prefix of one (or zeros):
 * a crash while the file was being created. */
static bool torn_header(const unsigned char *buf, size_t size)
{
	if (size >= DSKVS_FILE_HDR)
		return false;
	if (size == 0)
		return true;
	if (memcmp(buf, magic, size < 8 ? size : 8) == 0)
		return true;
	for (size_t i = 0; i < size; i++)
		if (buf[i])
			return false;
	return true;
}

static int map_file(int fd, size_t size, const unsigned char **out)
{
	if (size == 0) {
		*out = NULL;
		return 0;
	}
	void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	madvise(p, size, MADV_SEQUENTIAL);
	*out = p;
	return 0;
}

/* ---- recovery ------------------------------------------------------------ */

int dskvs__log_create(dskvs *s, const char *name)
{
	unsigned char hdr[DSKVS_FILE_HDR];
	struct iovec iov = { hdr, sizeof(hdr) };
	int fd = dskvs__io.openat(
	    s->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    (mode_t)s->opts.file_mode);
	if (fd < 0) {
		int e = errno;
		dskvs__log(s, DSKVS_LOG_ERROR, "%s/%s: create: %s", s->path,
		           name, strerror(e));
		return dskvs__fail(DSKVS_EIO, "%s/%s: create: %s", s->path,
		                   name, strerror(e));
	}
	dskvs__file_hdr_encode(hdr);
	int rc = dskvs__write_all(fd, &iov, 1, 0);
	if (rc != 0) {
		dskvs__io.close(fd);
		dskvs__io.unlinkat(s->dirfd, name, 0);
		dskvs__log(s, DSKVS_LOG_ERROR, "%s/%s: write header: %s",
		           s->path, name, strerror(-rc));
		return dskvs__fail(DSKVS_EIO, "%s/%s: write header: %s",
		                   s->path, name, strerror(-rc));
	}
	return fd;
}

/* A new, empty log: written under a temporary name, synced, renamed into
 * place and the directory synced, so a crash never leaves a log without a
 * whole header. */
static int create_fresh(dskvs *s)
{
	int fd = dskvs__log_create(s, DSKVS_LOG_TMP);
	if (fd < 0)
		return fd;
	if (dskvs__io.fdatasync(fd) != 0 ||
	    dskvs__io.renameat(s->dirfd, DSKVS_LOG_TMP, s->dirfd,
	                       DSKVS_LOG_NAME) != 0 ||
	    dskvs__io.fsync(s->dirfd) != 0) {
		int e = errno;
		dskvs__io.close(fd);
		dskvs__io.unlinkat(s->dirfd, DSKVS_LOG_TMP, 0);
		return dskvs__fail(
		    DSKVS_EIO, "%s/" DSKVS_LOG_NAME ": creating the log: %s",
		    s->path, strerror(e));
	}
	s->logfd = fd;
	s->log_size = DSKVS_FILE_HDR;
	s->seq_base = 0;
	s->batch_no = 1;
	return DSKVS_OK;
}

static int replay(dskvs *s, const struct rec *r)
{
	switch (r->op) {
	case DSKVS_OP_PUT:
		return dskvs__replay_put(s, r->key, r->klen, r->val, r->vlen,
		                         r->seq, r->size);
	case DSKVS_OP_DEL:
		return dskvs__replay_del(s, r->key, r->klen, r->seq);
	default:
		return dskvs__replay_delall(s, r->key, r->klen, r->seq);
	}
}

/* ---- parallel replay -----------------------------------------------------
 * A large log is replayed in two passes. Pass 1 (the loop in
 * dskvs__log_recover) checks every record as before and sums the bytes of
 * each of PAR_BUCKETS buckets of collection names; the buckets are then
 * dealt out to the threads, largest first, each to the least loaded thread.
 * Pass 2 runs the threads: each walks the checked range [header, end) and
 * applies, in file order, the records of the collections it owns.
 *
 * Why this is the same as replaying in order: every record touches one
 * collection only, and all the records of a collection are applied by one
 * thread in file order, so each collection sees exactly the history a
 * single thread would give it. What the threads share:
 *  - s->colls: written (collection created or dropped) only under
 *    s->colls_lock, read lock-free by the other threads' lookups inside
 *    read-side sections, as at run time; a dropped collection is freed
 *    through call_rcu (replay_drop in engine.c), never under a reader.
 *  - a collection's members table and counters: one thread only (its owner).
 *  - the mapped file: read-only. The replayer structs: each thread writes
 *    its own; the opening thread reads them after pthread_join.
 */
#define PAR_BUCKETS     64
#define PAR_MAX_THREADS 16
/* Below this much log, starting threads costs more than it saves. */
#define PAR_MIN_BYTES (8u << 20)

struct replayer {
	dskvs *s;
	const unsigned char *buf;
	size_t end;                 /* pass 1's checked end */
	const unsigned char *owner; /* bucket -> thread, shared, read-only */
	unsigned id;
	int rc;         /* first failure, or DSKVS_OK */
	size_t bad_off; /* its record's offset */
	pthread_t thr;
};

/* Bucket of the collection a checked record belongs to (FNV-1a of its
 * name: only the split across threads depends on it). */
static unsigned rec_bucket(const unsigned char *p)
{
	const unsigned char *k = p + DSKVS_REC_HDR;
	size_t n = get32(p + 12);
	if (p[8] != DSKVS_OP_DELALL)
		n = (size_t)((const unsigned char *)memchr(k, '/', n) - k);
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 16777619u;
	return (h ^ (h >> 16)) % PAR_BUCKETS;
}

/* A record pass 1 has checked: decode without checking again. */
static void rec_trusted(const unsigned char *buf, size_t off, struct rec *r)
{
	const unsigned char *p = buf + off;
	r->op = p[8];
	r->klen = get32(p + 12);
	r->vlen = get32(p + 16);
	r->seq = get64(p + 24);
	r->size = DSKVS_REC_HDR + r->klen + r->vlen;
	r->key = (const char *)p + DSKVS_REC_HDR;
	r->val = p + DSKVS_REC_HDR + r->klen;
}

static void *replayer_run(void *arg)
{
	struct replayer *w = arg;
	size_t off = DSKVS_FILE_HDR;
	w->rc = DSKVS_OK;
	while (off < w->end) {
		struct rec r;
		rec_trusted(w->buf, off, &r);
		if (w->owner[rec_bucket(w->buf + off)] == w->id) {
			int rc = replay(w->s, &r);
			if (rc != DSKVS_OK) {
				w->rc = rc;
				w->bad_off = off;
				break;
			}
		}
		off += r.size;
	}
	return NULL;
}

/* How many threads replay a log of `size` bytes. */
static unsigned replay_threads(const dskvs *s, size_t size)
{
	unsigned n = s->opts.recovery_threads;
	if (n == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		if (size < PAR_MIN_BYTES || cpus < 2)
			return 1;
		n = cpus > 8 ? 8 : (unsigned)cpus;
	}
	return n > PAR_MAX_THREADS ? PAR_MAX_THREADS : n;
}

/* Pass 2 over [header, end) on at most *n threads: `bytes` are pass 1's
 * sums per bucket. Sets *n to the threads that had records to apply.
 * Returns DSKVS_OK or the failure of the record with the lowest offset (in
 * *bad). */
static int replay_parallel(dskvs *s, const unsigned char *buf, size_t end,
                           const uint64_t bytes[PAR_BUCKETS], unsigned *n,
                           size_t *bad)
{
	struct replayer w[PAR_MAX_THREADS];
	unsigned char owner[PAR_BUCKETS];
	uint64_t load[PAR_MAX_THREADS] = { 0 };
	bool taken[PAR_BUCKETS] = { false };
	unsigned used = 0, started = 0;
	int rc = DSKVS_OK;

	/* Largest bucket first, to the least loaded thread. */
	for (unsigned k = 0; k < PAR_BUCKETS; k++) {
		unsigned big = PAR_BUCKETS, t = 0;
		for (unsigned b = 0; b < PAR_BUCKETS; b++)
			if (!taken[b] &&
			    (big == PAR_BUCKETS || bytes[b] > bytes[big]))
				big = b;
		for (unsigned i = 1; i < *n; i++)
			if (load[i] < load[t])
				t = i;
		taken[big] = true;
		owner[big] = (unsigned char)t;
		load[t] += bytes[big];
		if (bytes[big] && t + 1 > used)
			used = t + 1;
	}
	for (unsigned i = 0; i < used; i++)
		w[i] = (struct replayer){
			.s = s, .buf = buf, .end = end, .owner = owner, .id = i
		};
	/* Thread 0 is the opening thread itself. If a thread cannot be
	 * started, the opening thread runs that share too, after its own:
	 * each share is still applied whole and in file order. */
	for (unsigned i = 1; i < used; i++) {
		if (pthread_create(&w[i].thr, NULL, replayer_run, &w[i]) != 0)
			break;
		started = i;
	}
	for (unsigned i = 0; i < used; i++)
		if (i == 0 || i > started)
			replayer_run(&w[i]);
	for (unsigned i = 1; i <= started; i++)
		pthread_join(w[i].thr, NULL);
	*bad = SIZE_MAX;
	for (unsigned i = 0; i < used; i++)
		if (w[i].rc != DSKVS_OK && w[i].bad_off < *bad) {
			rc = w[i].rc;
			*bad = w[i].bad_off;
		}
	*n = used ? used : 1;
	return rc;
}

int dskvs__log_recover(dskvs *s)
{
	const unsigned char *buf = NULL;
	struct stat st;
	unsigned major, minor;
	size_t size, off;
	uint64_t max_seq = 0, records = 0;
	uint32_t last_batch = 0; /* the file header "ends" batch 0 */
	bool last_ended = true;
	int fd, rc = DSKVS_OK;
	const char *why = NULL;
	unsigned threads = 1;
	uint64_t bucket_bytes[PAR_BUCKETS] = { 0 };

	/* A leftover of a compaction that did not finish: never renamed, so
	 * never the live log. */
	if (dskvs__io.unlinkat(s->dirfd, DSKVS_LOG_TMP, 0) != 0 &&
	    errno != ENOENT)
		return dskvs__fail(DSKVS_EIO,
		                   "%s/" DSKVS_LOG_TMP ": unlink: %s", s->path,
		                   strerror(errno));
	fd = dskvs__io.openat(s->dirfd, DSKVS_LOG_NAME,
	                      O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return create_fresh(s);
		return dskvs__fail(errno == ELOOP || errno == EACCES ||
		                           errno == EISDIR
		                       ? DSKVS_EPATH
		                       : DSKVS_EIO,
		                   "%s/" DSKVS_LOG_NAME ": open: %s", s->path,
		                   strerror(errno));
	}
	if (dskvs__io.fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		dskvs__io.close(fd);
		return dskvs__fail(DSKVS_EPATH,
		                   "%s/" DSKVS_LOG_NAME ": not a regular file",
		                   s->path);
	}
	size = (size_t)st.st_size;
	int e = map_file(fd, size, &buf);
	if (e) {
		dskvs__io.close(fd);
		return dskvs__fail(e == -ENOMEM ? DSKVS_ENOMEM : DSKVS_EIO,
		                   "%s/" DSKVS_LOG_NAME ": mmap: %s", s->path,
		                   strerror(-e));
	}

	if (torn_header(buf, size)) {
		/* Crash while creating: nothing was ever logged. */
		unsigned char hdr[DSKVS_FILE_HDR];
		struct iovec iov = { hdr, sizeof(hdr) };
		dskvs__file_hdr_encode(hdr);
		if (dskvs__io.ftruncate(fd, 0) != 0 ||
		    dskvs__write_all(fd, &iov, 1, 0) != 0 ||
		    dskvs__io.fdatasync(fd) != 0) {
			rc = dskvs__fail(DSKVS_EIO,
			                 "%s/" DSKVS_LOG_NAME
			                 ": rewriting a torn header: %s",
			                 s->path, strerror(errno));
			goto out;
		}
		dskvs__log(s, DSKVS_LOG_WARN,
		           "%s/" DSKVS_LOG_NAME
		           ": torn file header (%zu bytes) rewritten",
		           s->path, size);
		size = DSKVS_FILE_HDR;
		off = DSKVS_FILE_HDR;
		goto done;
	}
	rc = check_hdr(buf, size, DSKVS_LOG_NAME, &major, &minor);
	if (rc != DSKVS_OK)
		goto out;

	/* One thread: check and apply in one pass. More: pass 1 checks and
	 * sizes the buckets, replay_parallel applies (see above). */
	threads = replay_threads(s, size);
	off = DSKVS_FILE_HDR;
	while (off < size) {
		struct rec r;
		int k = rec_at(buf, size, off, &r, &why);
		if (k == REC_OK) {
			if (threads > 1) {
				bucket_bytes[rec_bucket(buf + off)] += r.size;
			} else if ((rc = replay(s, &r)) != DSKVS_OK) {
				rc = dskvs__fail(rc,
				                 "%s/" DSKVS_LOG_NAME
				                 ": replaying the record at "
				                 "offset %zu: %s",
				                 s->path, off,
				                 dskvs_strerror(rc));
				goto out;
			}
			if (r.seq > max_seq)
				max_seq = r.seq;
			last_batch = r.batch;
			last_ended = r.flags & DSKVS_REC_END;
			records++;
			off += r.size;
			continue;
		}
		if (k == REC_BAD) {
			uint32_t b = damaged_batch(last_batch, last_ended);
			size_t q = other_batch_after(buf, size, off + 1, b);
			if (q) {
				rc = dskvs__fail(
				    DSKVS_ECORRUPT,
				    "%s/" DSKVS_LOG_NAME
				    ": damaged record at offset %zu (%s); "
				    "the record of a later batch at offset "
				    "%zu shows it had been synced; refusing "
				    "to drop data (inspect with 'dskvs "
				    "verify')",
				    s->path, off, why, q);
				goto out;
			}
		}
		break;
	}
	if (threads > 1) {
		size_t bad;
		rc = replay_parallel(s, buf, off, bucket_bytes, &threads, &bad);
		if (rc != DSKVS_OK) {
			rc = dskvs__fail(rc,
			                 "%s/" DSKVS_LOG_NAME
			                 ": replaying the record at offset "
			                 "%zu: %s",
			                 s->path, bad, dskvs_strerror(rc));
			goto out;
		}
	}
	if (off < size) {
		/* The torn tail of a batch never acknowledged. */
		if (dskvs__io.ftruncate(fd, (off_t)off) != 0 ||
		    dskvs__io.fdatasync(fd) != 0) {
			rc = dskvs__fail(DSKVS_EIO,
			                 "%s/" DSKVS_LOG_NAME
			                 ": truncating a torn tail at offset "
			                 "%zu: %s",
			                 s->path, off, strerror(errno));
			goto out;
		}
		dskvs__log(s, DSKVS_LOG_WARN,
		           "%s/" DSKVS_LOG_NAME
		           ": truncated a torn tail of %zu bytes at offset %zu "
		           "(%s)",
		           s->path, size - off, off, why);
	}
done:
	s->logfd = fd;
	s->log_size = off;
	s->seq_base = max_seq;
	/* Continue the numbering: a batch cut short by the truncation keeps
	 * its number, so the records after it still count as its tail. */
	s->batch_no = damaged_batch(last_batch, last_ended);
	dskvs__log(s, DSKVS_LOG_INFO,
	           "%s: replayed %llu records, %zu bytes, %u thread%s", s->path,
	           (unsigned long long)records, off, threads,
	           threads == 1 ? "" : "s");
	if (buf)
		munmap((void *)buf, size);
	return DSKVS_OK;
out:
	if (buf)
		munmap((void *)buf, size);
	dskvs__io.close(fd);
	return rc;
}

/* ---- verification -------------------------------------------------------- */

/*
 * How verify reads the log without the risk of SIGBUS. A mapped file that
 * shrinks under the map faults on the pages past its new end, and a log
 * shrinks in one case: dskvs_open truncating a torn tail, always with the
 * store's lock held exclusively. So verify maps the file only while it holds
 * that lock shared (nobody has the store open; an open meanwhile fails with
 * DSKVS_EBUSY until verify returns). When it cannot (the store is open, or
 * being opened, here or in another process; or there is no lock file yet),
 * it reads the file into memory with pread instead: a file that shrinks
 * meanwhile only makes the read short.
 */
static int verify_load(const char *dir, int fd, size_t *size,
                       const unsigned char **buf, bool *mapped, int *lockfd)
{
	char *lock;
	*lockfd = -1;
	*mapped = false;
	if (asprintf(&lock, "%s/" DSKVS_LOCK_NAME, dir) >= 0) {
		*lockfd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		free(lock);
		if (*lockfd >= 0 && flock(*lockfd, LOCK_SH | LOCK_NB) != 0) {
			close(*lockfd);
			*lockfd = -1;
		}
	}
	if (*lockfd >= 0) {
		/* The size seen before the lock was taken may be stale: an
		 * open that held the lock meanwhile may have truncated. */
		struct stat st;
		if (fstat(fd, &st) != 0)
			return -errno;
		*size = (size_t)st.st_size;
		*mapped = true;
		return map_file(fd, *size, buf);
	}
	if (*size == 0) {
		*buf = NULL;
		return 0;
	}
	unsigned char *p = malloc(*size);
	if (p == NULL)
		return -ENOMEM;
	ssize_t got = dskvs__read_all(fd, p, *size, 0);
	if (got < 0) {
		free(p);
		return (int)got;
	}
	*size = (size_t)got;
	*buf = p;
	return 0;
}

int dskvs_verify(const char *path, dskvs_damage_fn fn, void *arg,
                 dskvs_verify_report *rep)
{
	dskvs_verify_report local;
	const unsigned char *buf = NULL;
	struct stat st;
	char *file;
	size_t size, off;
	uint32_t last_batch = 0;
	bool last_ended = true, mapped;
	int fd, lockfd, rc = DSKVS_OK;

	if (rep == NULL)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	if (path == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_verify: NULL path");
	if (asprintf(&file, "%s/" DSKVS_LOG_NAME, path) < 0)
		return dskvs__fail(DSKVS_ENOMEM, "dskvs_verify");
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = dskvs__fail(DSKVS_EPATH, "%s: %s", file, strerror(errno));
		free(file);
		return rc;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		rc = dskvs__fail(DSKVS_EPATH, "%s: not a regular file", file);
		free(file);
		return rc;
	}
	size = (size_t)st.st_size;
	int e = verify_load(path, fd, &size, &buf, &mapped, &lockfd);
	close(fd);
	if (e) {
		if (lockfd >= 0)
			close(lockfd);
		rc = dskvs__fail(e == -ENOMEM ? DSKVS_ENOMEM : DSKVS_EIO,
		                 "%s: reading: %s", file, strerror(-e));
		free(file);
		return rc;
	}
	rep->file_bytes = size;
	if (torn_header(buf, size)) {
		rep->torn_tail = 1;
		if (fn)
			fn(file, 0,
			   "file header incomplete (crash while creating); "
			   "open will rewrite it",
			   arg);
		goto out;
	}
	rc = check_hdr(buf, size, file, &rep->format_major, &rep->format_minor);
	if (rc != DSKVS_OK) {
		rep->damaged = 1;
		if (fn)
			fn(file, 0, dskvs_errmsg(NULL), arg);
		goto out;
	}
	off = DSKVS_FILE_HDR;
	rep->valid_bytes = off;
	while (off < size) {
		struct rec r;
		const char *why;
		char msg[256];
		int k = rec_at(buf, size, off, &r, &why);
		if (k == REC_OK) {
			last_batch = r.batch;
			last_ended = r.flags & DSKVS_REC_END;
			rep->records++;
			rep->puts += r.op == DSKVS_OP_PUT;
			rep->deletes += r.op == DSKVS_OP_DEL;
			rep->delete_alls += r.op == DSKVS_OP_DELALL;
			off += r.size;
			if (!rep->damaged)
				rep->valid_bytes = off;
			continue;
		}
		uint32_t b = damaged_batch(last_batch, last_ended);
		size_t q =
		    k == REC_BAD ? other_batch_after(buf, size, off + 1, b) : 0;
		if (q == 0) {
			rep->torn_tail = 1;
			snprintf(msg, sizeof(msg),
			         "%s; the last %zu bytes are a torn tail that "
			         "open will truncate",
			         why, size - off);
			if (fn)
				fn(file, off, msg, arg);
			break;
		}
		rep->damaged++;
		snprintf(msg, sizeof(msg),
		         "%s; %zu damaged bytes before the next valid record "
		         "at offset %zu",
		         why, q - off, q);
		if (fn)
			fn(file, off, msg, arg);
		rc = dskvs__fail(DSKVS_ECORRUPT, "%s: damaged at offset %zu",
		                 file, off);
		off = q;
	}
out:
	if (mapped && buf)
		munmap((void *)buf, size);
	else
		free((void *)buf);
	if (lockfd >= 0)
		close(lockfd); /* releases the shared lock */
	free(file);
	return rc;
}

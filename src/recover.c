/*
 * Recovery at open: replaying the log (serially or on several threads)
 * into the tables, and moving a torn tail aside before cutting it. The
 * format and the rule that tells a torn tail from damage are in format.c;
 * this file only acts on what the scanner decides, so open and verify
 * (verify.c) always agree.
 *
 * Every read goes through the scanner's pread window (dskvs__io), never a
 * mapping: a media error is DSKVS_EIO with the file and offset, never a
 * SIGBUS, and a log that shrinks under verify only makes a read short.
 */
#include "janitor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* The log state of a file that holds only a header (or whose every byte
 * is proven synced, as after recovery of a log that ends with a mark). */
static void log_state_empty(struct dskvs__janitor *j, int fd, uint32_t salt)
{
	j->logfd = fd;
	j->log_size = DSKVS_FILE_HDR;
	j->log_major = DSKVS_FORMAT_MAJOR;
	j->log_salt = salt;
	j->batch_no = 1;
	j->tail_proven = true;
	j->mark_unsynced = false;
}

/* A new, empty log: written under a temporary name, synced, renamed into
 * place and the directory synced, so a crash never leaves a log without a
 * whole header. */
static int create_fresh(struct dskvs__janitor *j)
{
	uint32_t salt = dskvs__new_salt();
	int fd = dskvs__log_create(j, DSKVS_LOG_TMP, salt);
	if (fd < 0)
		return fd;
	if (dskvs__io.fdatasync(fd) != 0 ||
	    dskvs__io.renameat(j->dirfd, DSKVS_LOG_TMP, j->dirfd,
	                       DSKVS_LOG_NAME) != 0 ||
	    dskvs__io.fsync(j->dirfd) != 0) {
		int e = errno;
		dskvs__io.close(fd);
		dskvs__io.unlinkat(j->dirfd, DSKVS_LOG_TMP, 0);
		return dskvs__fail(
		    DSKVS_EIO, "%s/" DSKVS_LOG_NAME ": creating the log: %s",
		    j->path, strerror(e));
	}
	log_state_empty(j, fd, salt);
	return DSKVS_OK;
}

/* ---- torn tails ------------------------------------------------------------
 * The bytes of a torn tail are never destroyed: open copies them into
 * "dskvs.torn.<offset>" in the store's directory (the first of
 * "dskvs.torn.<offset>.1", ".2", ... that is free if that name is taken),
 * syncs the copy and the directory, and only then truncates the log. */

/* Copy [off, size) of the log into a new torn file, synced. */
static int move_aside(struct dskvs__janitor *j, int fd, uint64_t off,
                      uint64_t size, char *name, size_t cap)
{
	int tfd = -1, e = 0;
	unsigned char *buf = NULL;
	size_t chunk = 1u << 20;

	for (unsigned k = 0; k < DSKVS_TORN_MAX_TRIES && tfd < 0; k++) {
		dskvs__torn_name(off, k, name, cap);
		tfd = dskvs__io.openat(j->dirfd, name,
		                       O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
		                           O_NOFOLLOW,
		                       (mode_t)j->opts->file_mode);
		if (tfd < 0 && errno != EEXIST) {
			e = errno;
			break;
		}
	}
	if (tfd < 0)
		return dskvs__fail(DSKVS_EIO, "%s/%s: create: %s", j->path,
		                   name, strerror(e ? e : EEXIST));
	if ((buf = malloc(chunk)) == NULL) {
		e = ENOMEM;
		goto fail;
	}
	for (uint64_t done = 0; done < size - off;) {
		size_t n = size - off - done < chunk
		               ? (size_t)(size - off - done)
		               : chunk;
		ssize_t got = dskvs__read_all(fd, buf, n, (off_t)(off + done));
		if (got < 0) {
			e = (int)-got;
			goto fail;
		}
		if (got == 0)
			break;
		struct iovec iov = { buf, (size_t)got };
		int rc = dskvs__write_all(tfd, &iov, 1, (off_t)done);
		if (rc != 0) {
			e = -rc;
			goto fail;
		}
		done += (uint64_t)got;
	}
	if (dskvs__io.fdatasync(tfd) != 0 || dskvs__io.fsync(j->dirfd) != 0) {
		e = errno;
		goto fail;
	}
	free(buf);
	dskvs__io.close(tfd);
	return DSKVS_OK;
fail:
	free(buf);
	dskvs__io.close(tfd);
	dskvs__io.unlinkat(j->dirfd, name, 0);
	return dskvs__fail(
	    DSKVS_EIO, "%s/%s: keeping the %llu bytes of a torn tail: %s",
	    j->path, name, (unsigned long long)(size - off), strerror(e));
}

static int replay(struct dskvs__janitor *j, const struct dskvs__rec *r)
{
	switch (r->op) {
	case DSKVS_REC_PUT:
		return dskvs__replay_put(j->t, r->key, r->klen, r->val, r->vlen,
		                         r->seq);
	case DSKVS_REC_DEL:
		return dskvs__replay_del(j->t, r->key, r->klen, r->seq);
	case DSKVS_REC_DELALL:
		return dskvs__replay_delall(j->t, r->key, r->klen, r->seq);
	default:
		return DSKVS_OK; /* a mark carries no data */
	}
}

/* ---- parallel replay -----------------------------------------------------
 * A large log is replayed in two passes. Pass 1 (the scan in
 * dskvs__log_recover) checks every record and sums the bytes of each of
 * PAR_BUCKETS buckets of collection names; the buckets are then dealt out
 * to the threads, largest first, each to the least loaded thread. Pass 2
 * runs the threads: each reads the checked range [header, end) through a
 * window of its own and applies, in file order, the records of the
 * collections it owns.
 *
 * Why this is the same as replaying in order: every record touches one
 * collection only, and all the records of a collection are applied by one
 * thread in file order, so each collection sees exactly the history a
 * single thread would give it. What the threads share:
 *  - j->colls: written (collection created or dropped) only under
 *    j->colls_lock, read lock-free by the other threads' lookups inside
 *    read-side sections, as at run time; a dropped collection is freed
 *    through call_rcu (replay_drop in engine.c), never under a reader.
 *  - a collection's members table and counters: one thread only (its owner).
 *  - the file: read-only, through pread. The replayer structs: each thread
 *    writes its own; the opening thread reads them after pthread_join.
 * Pass 2 reads bytes pass 1 checked; it checks each header's checksum again
 * (cheap) so that a file changed in between is an error, not a misread.
 */
#define PAR_BUCKETS     64
#define PAR_MAX_THREADS 16
/* Below this much log, starting threads costs more than it saves. */
#define PAR_MIN_BYTES (8u << 20)

struct replayer {
	struct dskvs__janitor *j;
	int fd;
	uint32_t salt;
	uint64_t end;               /* pass 1's checked end */
	const unsigned char *owner; /* bucket -> thread, shared, read-only */
	unsigned id;
	int rc;           /* first failure, or DSKVS_OK */
	uint64_t bad_off; /* its record's offset */
	pthread_t thr;
};

/* Hash of a collection name (FNV-1a, 64 bits): its bucket, and its
 * identity in pass 1's counts (a collision only merges two counts, which
 * are size hints). */
static uint64_t name_hash(const unsigned char *k, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 1099511628211ull;
	return h;
}

/* Bucket of a collection name: only the split across threads depends on
 * it. */
static unsigned name_bucket(const unsigned char *k, size_t n)
{
	uint64_t h = name_hash(k, n);
	return (unsigned)((h ^ (h >> 32)) % PAR_BUCKETS);
}

/* ---- pass 1's counts: puts per collection --------------------------------
 * An open-addressing table of name hashes (0: empty) and their put
 * records, for the first HINT_SLOTS / 2 collection names pass 1 meets;
 * later names are not counted, and their collections grow as without a
 * hint. Written by the opening thread in pass 1, read-only while the
 * replay threads run (through table.c's hint), freed after they are
 * joined. 16 bytes a slot: 128 KiB. */
#define HINT_SLOTS 8192

struct hint_map {
	uint64_t h[HINT_SLOTS];
	uint64_t puts[HINT_SLOTS];
	unsigned n;
};

static inline uint64_t hint_key(const unsigned char *k, size_t n)
{
	uint64_t h = name_hash(k, n);
	return h ? h : 1;
}

static void hint_count(struct hint_map *m, const unsigned char *k, size_t n)
{
	uint64_t h = hint_key(k, n);
	for (unsigned i = (unsigned)h & (HINT_SLOTS - 1);;
	     i = (i + 1) & (HINT_SLOTS - 1)) {
		if (m->h[i] == h) {
			m->puts[i]++;
			return;
		}
		if (m->h[i] == 0) {
			if (m->n >= HINT_SLOTS / 2)
				return; /* full enough: not counted */
			m->h[i] = h;
			m->puts[i] = 1;
			m->n++;
			return;
		}
	}
}

static uint64_t hint_puts(const void *arg, const char *name, size_t len)
{
	const struct hint_map *m = arg;
	uint64_t h = hint_key((const unsigned char *)name, len);
	for (unsigned i = (unsigned)h & (HINT_SLOTS - 1);;
	     i = (i + 1) & (HINT_SLOTS - 1)) {
		if (m->h[i] == h)
			return m->puts[i];
		if (m->h[i] == 0)
			return 0;
	}
}

/* The collection name of a checked record. */
static size_t rec_coll_len(unsigned op, const unsigned char *key, size_t klen)
{
	if (op == DSKVS_REC_DELALL)
		return klen;
	return (size_t)((const unsigned char *)memchr(key, '/', klen) - key);
}

static void *replayer_run(void *arg)
{
	struct replayer *w = arg;
	struct dskvs__win win;
	uint64_t off = DSKVS_FILE_HDR;

	dskvs__win_init_fd(&win, w->fd, w->end);
	w->rc = DSKVS_OK;
	while (off < w->end) {
		const unsigned char *p =
		    dskvs__win_get(&win, off, DSKVS_REC_HDR);
		struct dskvs__rec r;
		if (p == NULL || !dskvs__rec_hdr_read(p, w->salt, off, &r)) {
			w->rc = DSKVS_EIO;
			w->bad_off = off;
			break;
		}
		if (r.op != DSKVS_REC_MARK) {
			p = dskvs__win_get(&win, off, DSKVS_REC_HDR + r.klen);
			if (p == NULL) {
				w->rc = DSKVS_EIO;
				w->bad_off = off;
				break;
			}
			const unsigned char *k = p + DSKVS_REC_HDR;
			unsigned b =
			    name_bucket(k, rec_coll_len(r.op, k, r.klen));
			if (w->owner[b] == w->id) {
				p = dskvs__win_get(&win, off, (size_t)r.size);
				if (p == NULL) {
					w->rc = DSKVS_EIO;
					w->bad_off = off;
					break;
				}
				r.key = (const char *)p + DSKVS_REC_HDR;
				r.val = p + DSKVS_REC_HDR + r.klen;
				int rc = replay(w->j, &r);
				if (rc != DSKVS_OK) {
					w->rc = rc;
					w->bad_off = off;
					break;
				}
			}
		}
		off += r.size;
	}
	dskvs__win_free(&win);
	return NULL;
}

/* How many threads replay a log of `size` bytes. */
static unsigned replay_threads(const struct dskvs__janitor *j, uint64_t size)
{
	unsigned n = j->opts->recovery_threads;
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
static int replay_parallel(struct dskvs__janitor *j, int fd, uint32_t salt,
                           uint64_t end, const uint64_t bytes[PAR_BUCKETS],
                           unsigned *n, uint64_t *bad)
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
		w[i] = (struct replayer){ .j = j,
			                  .fd = fd,
			                  .salt = salt,
			                  .end = end,
			                  .owner = owner,
			                  .id = i };
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
	*bad = UINT64_MAX;
	for (unsigned i = 0; i < used; i++)
		if (w[i].rc != DSKVS_OK && w[i].bad_off < *bad) {
			rc = w[i].rc;
			*bad = w[i].bad_off;
		}
	*n = used ? used : 1;
	return rc;
}

/* ---- recovery ------------------------------------------------------------ */

/* A file cut short while it was created (format 1 wrote the header in
 * place): nothing was ever logged; write a fresh header. */
static int rewrite_torn_header(struct dskvs__janitor *j, int fd, uint64_t size)
{
	unsigned char hdr[DSKVS_FILE_HDR];
	struct iovec iov = { hdr, sizeof(hdr) };
	uint32_t salt = dskvs__new_salt();
	dskvs__file_hdr_encode(hdr, salt, DSKVS_FILE_HDR);
	if (dskvs__io.ftruncate(fd, 0) != 0 ||
	    dskvs__write_all(fd, &iov, 1, 0) != 0 ||
	    dskvs__io.fdatasync(fd) != 0)
		return dskvs__fail(DSKVS_EIO,
		                   "%s/" DSKVS_LOG_NAME
		                   ": rewriting a torn header: %s",
		                   j->path, strerror(errno));
	dskvs__diag(j->diag, DSKVS_LOG_WARN,
	            "%s/" DSKVS_LOG_NAME
	            ": torn file header (%llu bytes) rewritten",
	            j->path, (unsigned long long)size);
	log_state_empty(j, fd, salt);
	return DSKVS_OK;
}

/*
 * Where the numbering goes on. A log that ends with its closing mark was
 * closed: no sequence number above that mark's was ever handed out. Any
 * other log was left by a crash (or by a close that could not write its
 * mark), and its process may have handed out numbers above the highest in
 * the log, for writes that never reached it, and shown them as versions
 * (dskvs_get_seq, dskvs_put_seq). Giving one of those to another value
 * would let a compare-and-swap that holds the lost version succeed against
 * it. Such a process had at most a ring of writes queued (queue_capacity,
 * at most 2^24) and one batch dequeued (at most a ring) beyond what it had
 * synced: numbering goes on 2^32 above the highest number in the log,
 * which leaves room for 2^30 crashes below DSKVS_SEQ_LIMIT (or half of
 * what is left, near it).
 */
#define SEQ_GAP_AFTER_CRASH (UINT64_C(1) << 32)
static uint64_t next_seq_base(uint64_t max_seq, bool closed)
{
	if (closed || max_seq >= DSKVS_SEQ_LIMIT)
		return max_seq;
	uint64_t room = (DSKVS_SEQ_LIMIT - max_seq) / 2;
	return max_seq +
	       (room < SEQ_GAP_AFTER_CRASH ? room : SEQ_GAP_AFTER_CRASH);
}

int dskvs__recover(struct dskvs__janitor *j, uint64_t *seq_base)
{
	struct dskvs__scan sc;
	struct dskvs__rec r;
	struct stat st;
	uint64_t size, bucket_bytes[PAR_BUCKETS] = { 0 };
	struct hint_map *hints = NULL;
	unsigned threads = 1;
	bool last_mark = false, last_closing = false;
	char *file = NULL;
	int fd, k, rc = DSKVS_OK;

	/* A leftover of a compaction that did not finish: never renamed, so
	 * never the live log. */
	if (dskvs__io.unlinkat(j->dirfd, DSKVS_LOG_TMP, 0) != 0 &&
	    errno != ENOENT)
		return dskvs__fail(DSKVS_EIO,
		                   "%s/" DSKVS_LOG_TMP ": unlink: %s", j->path,
		                   strerror(errno));
	fd = dskvs__io.openat(j->dirfd, DSKVS_LOG_NAME,
	                      O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return create_fresh(j);
		return dskvs__fail(errno == ELOOP || errno == EACCES ||
		                           errno == EISDIR
		                       ? DSKVS_EPATH
		                       : DSKVS_EIO,
		                   "%s/" DSKVS_LOG_NAME ": open: %s", j->path,
		                   strerror(errno));
	}
	if (dskvs__io.fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		dskvs__io.close(fd);
		return dskvs__fail(DSKVS_EPATH,
		                   "%s/" DSKVS_LOG_NAME ": not a regular file",
		                   j->path);
	}
	if (asprintf(&file, "%s/" DSKVS_LOG_NAME, j->path) < 0) {
		dskvs__io.close(fd);
		return dskvs__fail(DSKVS_ENOMEM, "dskvs_open");
	}
	size = (uint64_t)st.st_size;
	memset(&sc, 0, sizeof(sc));
	dskvs__win_init_fd(&sc.w, fd, size);
	rc = dskvs__scan_header(&sc, file);
	if (rc == DSKVS__SCAN_TORN_HEADER) {
		/* Nothing was ever logged; still, keep what is there. */
		char name[64];
		if (size > 0 && (rc = move_aside(j, fd, 0, size, name,
		                                 sizeof(name))) != DSKVS_OK)
			goto out;
		rc = rewrite_torn_header(j, fd, size);
		if (rc != DSKVS_OK)
			goto out;
		goto done;
	}
	if (rc != DSKVS_OK)
		goto out;

	/* One thread: check and apply in one pass. More: pass 1 checks and
	 * sizes the buckets, replay_parallel applies (see above). */
	threads = replay_threads(j, size);
	/* Pass 1's counts (a hint: without memory for them, none). */
	if (threads > 1)
		hints = calloc(1, sizeof(*hints));
	while ((k = dskvs__scan_next(&sc, &r)) == DSKVS__SCAN_REC) {
		last_mark = r.op == DSKVS_REC_MARK;
		last_closing = last_mark && (r.flags & DSKVS_REC_END);
		if (last_mark)
			continue;
		if (threads > 1) {
			const unsigned char *key = (const unsigned char *)r.key;
			size_t cl = rec_coll_len(r.op, key, r.klen);
			bucket_bytes[name_bucket(key, cl)] += r.size;
			if (hints && r.op == DSKVS_REC_PUT)
				hint_count(hints, key, cl);
		} else if ((rc = replay(j, &r)) != DSKVS_OK) {
			rc = dskvs__fail(rc,
			                 "%s: replaying the record at offset "
			                 "%llu: %s",
			                 file, (unsigned long long)r.off,
			                 dskvs_strerror(rc));
			goto out;
		}
	}
	if (k == DSKVS__SCAN_CORRUPT || k == DSKVS__SCAN_EIO) {
		rc = dskvs__scan_failure(&sc, k, file);
		goto out;
	}
	if (threads > 1) {
		uint64_t bad;
		struct dskvs__replay_hint hint = { hint_puts, hints };
		if (hints)
			dskvs__replay_set_hint(j->t, &hint, hints->n);
		rc = replay_parallel(j, fd, sc.salt, sc.off, bucket_bytes,
		                     &threads, &bad);
		dskvs__replay_finish(j->t);
		if (rc != DSKVS_OK) {
			rc = dskvs__fail(rc,
			                 "%s: replaying the record at offset "
			                 "%llu: %s",
			                 file, (unsigned long long)bad,
			                 dskvs_strerror(rc));
			goto out;
		}
	}
	if (k == DSKVS__SCAN_TORN) {
		/* The torn tail of a batch nobody was told was durable:
		 * kept aside, then cut off. */
		char name[64];
		uint64_t off = sc.off;
		rc = move_aside(j, fd, off, size, name, sizeof(name));
		if (rc != DSKVS_OK)
			goto out;
		if (dskvs__io.ftruncate(fd, (off_t)off) != 0 ||
		    dskvs__io.fdatasync(fd) != 0) {
			rc = dskvs__fail(DSKVS_EIO,
			                 "%s: truncating a torn tail at offset "
			                 "%llu: %s",
			                 file, (unsigned long long)off,
			                 strerror(errno));
			goto out;
		}
		dskvs__diag(j->diag, DSKVS_LOG_WARN,
		            "%s: torn tail of %llu bytes at offset %llu (%s) "
		            "moved aside to %s/%s",
		            file, (unsigned long long)(size - off),
		            (unsigned long long)off, sc.why, j->path, name);
		/* What is left is synced now. If it ends with records of the
		 * cut batch, the mark below proves them and the next batch
		 * gets the next number. */
		if (!last_mark)
			sc.last_ended = true;
	} else if (sc.off > DSKVS_FILE_HDR && dskvs__io.fdatasync(fd) != 0) {
		/* The log may hold a batch whose writer was killed before its
		 * fdatasync: it is reported durable from now on (seq_base), so
		 * make it so, and before anything of a later batch is written
		 * (which would claim it synced). */
		rc = dskvs__fail(DSKVS_EIO, "%s: fdatasync: %s", file,
		                 strerror(errno));
		goto out;
	}
	j->logfd = fd;
	j->log_size = sc.off;
	/* Before the mark below, which uses it. */
	j->tail_closed = k == DSKVS__SCAN_END && last_closing;
	/* The last record returned ends where the log now ends; a mark of
	 * the sealed part is never written over. */
	j->tail_mark_off = last_mark && j->log_size - DSKVS_REC_HDR >= sc.sealed
	                       ? j->log_size - DSKVS_REC_HDR
	                       : 0;
	*seq_base = next_seq_base(sc.max_seq, j->tail_closed);
	j->log_major = sc.major;
	j->log_salt = sc.salt;
	/* Continue the numbering. A batch cut short by the truncation was
	 * synced above: the next one gets the next number, and proves it. */
	j->batch_no = sc.last_ended ? sc.last_batch + 1 : sc.last_batch;
	j->tail_proven = last_mark || sc.off == sc.sealed;
	j->mark_unsynced = false; /* synced above */
	if (j->log_major >= 2) {
		/* Everything in the log is synced now and reported durable.
		 * Before open returns, the log says so and says where the
		 * numbering goes on: a mark carrying the new base (written
		 * over the mark the log ends with, if any, else appended),
		 * synced. Without it, a process killed before its first batch
		 * reached the log would leave the log as it found it, and the
		 * next open would start from the same base and give again the
		 * versions this process showed. */
		if (dskvs__janitor_open_mark(j) != DSKVS_OK ||
		    dskvs__io.fdatasync(fd) != 0) {
			int e = j->io_errno ? j->io_errno : errno;
			rc = dskvs__fail(DSKVS_EIO,
			                 "%s: writing the mark of where the "
			                 "numbering goes on: %s",
			                 file, strerror(e));
			j->logfd = -1;
			goto out;
		}
		j->mark_unsynced = false;
	}
done:
	dskvs__diag(
	    j->diag, DSKVS_LOG_INFO,
	    "%s: replayed %llu records, %llu bytes, %u thread%s, format "
	    "%u",
	    j->path, (unsigned long long)sc.records,
	    (unsigned long long)j->log_size, threads, threads == 1 ? "" : "s",
	    j->log_major);
	dskvs__win_free(&sc.w);
	free(hints);
	free(file);
	return DSKVS_OK;
out:
	dskvs__win_free(&sc.w);
	free(hints);
	free(file);
	dskvs__io.close(fd);
	return rc;
}

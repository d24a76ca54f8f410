/*
 * Layer 0: what every other layer uses. Nothing here knows a store, a table
 * or the queue.
 *
 * The layers of src/, bottom up; a file includes only headers of its own
 * layer or below, and scripts/check-layers.sh checks it:
 *   L0  base.h   error.c (codes, detail, diagnostics hook, clock), key.c,
 *                crc32c.c, io.c, trim.c (freed memory back to the
 *                system); rcu.h with rcu.c; slab.h with slab.c (the
 *                blocks' allocator, on huge pages)
 *   L1  blk.h    blk.c: the value block
 *   L2  table.h  table.c: collections and members (ck_ht), replay, snapshot
 *       queue.h  queue.c: the ring, sequence numbers, durability, waits,
 *                sticky error
 *       format.h format.c: the log format and its one scanner
 *   L3  janitor.h batch.c: batches and marks; compact.c: compaction;
 *                janitor.c: the thread and its requests (calls compact.c
 *                and batch.c; compact.c calls batch.c);
 *                recover.c: replay at open; verify.c: dskvs_verify
 *   L4  store.h  api.c: the public calls on data; store.c: open, close,
 *                options, stats, lock file, fork
 * A layer's functions take their own part of the state (a table, the
 * queue, the janitor), not the whole store; only L4 sees struct dskvs.
 *
 * One return convention: io.c returns -errno (and says so); every other
 * internal function returns DSKVS_OK or a DSKVS_E* code (the errno behind
 * an I/O failure goes in the thread's detail or, in the janitor, in
 * j->io_errno), or a value its declaration describes (an fd, a count).
 *
 * Preconditions are written on declarations the liburcu way: "call inside a
 * read-side section", "call with the collection's lock held", "may sleep".
 * A function that needs a collection's lock says so in its name (_locked).
 */
#ifndef DSKVS_BASE_H
#define DSKVS_BASE_H

#include "dskvs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#define DSKVS_LOCAL __attribute__((visibility("hidden")))

#if defined(DSKVS_DEBUG_CHECKS)
#include <stdio.h>
#include <stdlib.h>
#define DSKVS_CHECK(cond, what)                                           \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr,                                   \
			        "dskvs debug check failed: %s (%s:%d)\n", \
			        (what), __FILE__, __LINE__);              \
			abort();                                          \
		}                                                         \
	} while (0)
#else
#define DSKVS_CHECK(cond, what) ((void)0)
#endif

#define DSKVS_LIKELY(x)   __builtin_expect(!!(x), 1)
#define DSKVS_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Cache lines: fields written by different threads are kept on lines of
 * their own (DSKVS_ALIGNED), so that a writer does not evict what readers
 * read (a collection's lock against its members table, the queue's
 * producer and consumer counters). Structures holding such fields are
 * allocated 64-aligned. */
#define DSKVS_CACHELINE 64
#define DSKVS_ALIGNED   __attribute__((aligned(DSKVS_CACHELINE)))

/* ---- errors and diagnostics (error.c) -------------------------------- */

/* Set the calling thread's error detail; returns code. */
DSKVS_LOCAL int dskvs__fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
DSKVS_LOCAL void dskvs__clear_detail(void);

/* The diagnostics hook (dskvs_options.log_fn): the only way the library
 * says anything. Constant after open; may be called from any thread. */
struct dskvs__diag {
	dskvs_log_fn fn;
	void *arg;
};
DSKVS_LOCAL void dskvs__diag(const struct dskvs__diag *d, int level,
                             const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* CLOCK_MONOTONIC in ns. */
DSKVS_LOCAL uint64_t dskvs__now_ns(void);

/* ---- trim.c: freed memory back to the system ---------------------------
 * Any thread: count bytes given back to malloc. */
DSKVS_LOCAL void dskvs__note_freed(size_t bytes);
/* Bytes freed since the last trim (any thread; racy, a hint). */
DSKVS_LOCAL uint64_t dskvs__untrimmed_bytes(void);
/* malloc_trim(0) if at least min_bytes were freed since the last trim and
 * the last was min_interval_ns ago; true if it trimmed. May take tens of
 * milliseconds and holds up other threads' malloc meanwhile: the janitor
 * only, never inside a read-side section or holding a lock. */
DSKVS_LOCAL bool dskvs__trim(uint64_t min_bytes, uint64_t min_interval_ns);

/* ---- keys --------------------------------------------------------------- */

struct dskvs__key {
	const char *coll; /* points into the caller's string */
	size_t clen;
	const char *member; /* NULL for a collection key */
	size_t mlen;
};

/* want_member: 1 member key required, 0 collection key required.
 * DSKVS_EBADKEY, DSKVS_ETOOBIG. A member parsed from a string is never
 * empty and holds no NUL. */
DSKVS_LOCAL int dskvs__key_parse(const char *key, int want_member,
                                 struct dskvs__key *k);
/* The binary-safe form (the _bin calls): coll[0..clen) must be 1 ..
 * DSKVS_NAME_MAX bytes without '/' or NUL; with want_member, the member
 * is any mlen <= DSKVS_NAME_MAX bytes (NUL included, empty allowed;
 * member may be NULL when mlen is 0); without, member is ignored.
 * DSKVS_EBADKEY, DSKVS_ETOOBIG. k points into the caller's buffers. */
DSKVS_LOCAL int dskvs__key_make(const char *coll, size_t clen,
                                const void *member, size_t mlen,
                                int want_member, struct dskvs__key *k);

/* ---- CRC32C (crc32c.c) -------------------------------------------------- */

DSKVS_LOCAL uint32_t dskvs__crc32c(uint32_t crc, const void *buf, size_t len);

/* ---- file I/O seam (io.c) -----------------------------------------------
 *
 * Every file operation of the library goes through dskvs__io so that tests
 * can inject faults or simulate power loss. Production uses libc.
 */
struct dskvs__io_ops {
	int (*openat)(int dirfd, const char *name, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	ssize_t (*pwritev)(int fd, const struct iovec *iov, int cnt, off_t off);
	int (*fdatasync)(int fd);
	int (*fsync)(int fd);
	int (*ftruncate)(int fd, off_t len);
	int (*renameat)(int olddir, const char *oldname, int newdir,
	                const char *newname);
	int (*unlinkat)(int dirfd, const char *name, int flags);
	int (*fstat)(int fd, struct stat *st);
};
extern struct dskvs__io_ops dskvs__io;
extern const struct dskvs__io_ops dskvs__io_libc;

/* pwritev the whole iovec (looping on short writes). Returns 0 or -errno
 * (-EIO for a write that makes no progress). */
DSKVS_LOCAL int dskvs__write_all(int fd, struct iovec *iov, int cnt, off_t off);
/* Read exactly n bytes (short file: returns bytes read). -errno on error. */
DSKVS_LOCAL ssize_t dskvs__read_all(int fd, void *buf, size_t n, off_t off);

/* ---- test hook seam (io.c) ---------------------------------------------
 *
 * Points where a white-box test may watch a thread or hold it, so that a
 * race it checks happens the same way on every run (tests/mutants/). NULL
 * in production, where each point costs one predictable branch. Set only
 * by tests, before any store is opened; called in the thread that reaches
 * the point.
 */
enum dskvs__hook_point {
	/* queue.c: a writer is about to queue a record (arg: its struct
	 * dskvs__rec_ref, blk.h); it holds the record's collection lock. */
	DSKVS__HOOK_ENQUEUE = 1,
	/* blk.c: a block's last reference is gone, just before it is freed
	 * or recycled into its store's pool (arg: the block). */
	DSKVS__HOOK_BLK_FREE,
	/* compact.c: the snapshot's gather lets the queue move (arg: bool *,
	 * true while a collection lock is busy): the janitor thread, outside
	 * any read-side section, holding no collection lock. */
	DSKVS__HOOK_GATHER,
	/* table.c: memory ck_ht allocated (a map) is about to be freed, at
	 * once or at the end of its grace period (arg: the pointer ck_ht
	 * was given). */
	DSKVS__HOOK_MAP_FREE,
	/* queue.c: a producer has just moved the ring's p_tail, publishing
	 * its slots to the janitor (arg: the struct dskvs__queue). */
	DSKVS__HOOK_PUBLISH,
	/* table.c: a collection's members are about to be gathered (arg:
	 * the struct dskvs__coll, whose lock the caller must hold). */
	DSKVS__HOOK_MEMBERS_GATHER,
	/* table.c: a member is about to be inserted (arg: int *, DSKVS_OK;
	 * a test sets it to DSKVS_ENOMEM to fail the insert before it
	 * changes anything, as a failed grow of the map would). The caller
	 * holds the collection's lock. */
	DSKVS__HOOK_MEMBER_SET,
};
extern void (*dskvs__hook)(int point, void *arg);
#define DSKVS_HOOK(point, arg)                           \
	do {                                             \
		if (DSKVS_UNLIKELY(dskvs__hook != NULL)) \
			dskvs__hook((point), (arg));     \
	} while (0)

#endif

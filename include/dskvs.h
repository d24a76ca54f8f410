/*
 * dskvs: a Dead Simple Key-Value Store.
 *
 * This header is the whole API and its reference manual. Anything that is not
 * declared here is internal and may change without notice.
 *
 * The model
 * ---------
 * A store lives in one directory. Every read and write is served from memory
 * through lock-free hash tables; a background thread per store (the janitor)
 * appends each write to a log file soon after it happens and fdatasync()s it,
 * and dskvs_open() replays that log. A write is therefore "eventually
 * persisted": it is visible to every thread as soon as the call returns, and
 * on disk shortly afterwards. dskvs_sync() (or DSKVS_SYNC_ALWAYS) turns
 * "shortly" into "now".
 *
 * Keys are "collection/member" strings. The collection is everything before
 * the first '/', the member everything after it, so "artist/daft_punk/x" is
 * member "daft_punk/x" of collection "artist". A key without a '/' or with
 * nothing after it ("artist", "artist/") names a collection. A collection
 * exists while it has at least one member. Values are arbitrary bytes.
 * Member names holding NUL bytes, or empty, are reached through the _bin
 * forms of the calls (collection and member given apart with lengths; see
 * "Binary-safe names" below).
 *
 * Threads
 * -------
 * Every function may be called from any thread at any time, except that
 * dskvs_close() must not race with any other call on the same handle.
 * Callers never register threads with RCU or call any RCU function; a thread
 * may exit at any time between calls.
 *
 * A read that starts after a write returned (in any thread) sees that write or
 * a later one. Writes to one key are applied, logged and replayed in the same
 * order.
 *
 * Errors
 * ------
 * Every function that can fail returns DSKVS_OK (0) or one of the negative
 * DSKVS_E* / DSKVS_NOTFOUND codes below. They live in their own range
 * (-31999 .. -31000), so they can never be mistaken for a -errno value.
 * dskvs_strerror() gives a sentence for a code, dskvs_err_name() its
 * symbolic name, and dskvs_errmsg() the detail behind the last failure seen
 * by the calling thread (file, offset, errno).
 *
 * Memory
 * ------
 * Memory that dskvs hands to the caller (dskvs_get_alloc()'s *val, put's
 * *old) comes from malloc() and is released with free(). Pointers passed to
 * callbacks are valid only until the callback returns.
 */
#ifndef DSKVS_H
#define DSKVS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DSKVS_STATIC_DEFINE)
#define DSKVS_EXTERN
#elif defined(__GNUC__) && __GNUC__ >= 4
#define DSKVS_EXTERN __attribute__((visibility("default")))
#else
#define DSKVS_EXTERN
#endif

/* Library version. DSKVS_VERSION_HEX is 0xMMmmpp. 1.1: log format 2 (1.0
 * cannot open its logs; 1.1 opens and upgrades 1.0 logs) and a larger
 * dskvs_verify_report: rebuild programs built against the 1.0 header.
 * 1.2: versions, conditional puts, dskvs_update, batches of writes, hot
 * backup and the binary-safe _bin forms (§3b); the log format stays 2.0,
 * but a 1.1 library refuses a log that holds a batch of writes or a NUL
 * byte or empty member name (DSKVS_ECORRUPT, nothing applied), so a store
 * written by 1.2 with those is for 1.2 on. */
#define DSKVS_VERSION_MAJOR  1
#define DSKVS_VERSION_MINOR  2
#define DSKVS_VERSION_PATCH  0
#define DSKVS_VERSION_STRING "1.2.0"
#define DSKVS_VERSION_HEX                                           \
	((DSKVS_VERSION_MAJOR << 16) | (DSKVS_VERSION_MINOR << 8) | \
	 DSKVS_VERSION_PATCH)

/* Largest collection name and largest member name, in bytes (the limit of a
 * ck_ht bytestring key, and of the 16-bit lengths a block keeps). A
 * member of exactly DSKVS_NAME_MAX bytes is accepted, one byte more is
 * DSKVS_ETOOBIG. */
#define DSKVS_NAME_MAX 65535u
/* Largest value, in bytes: 64 MiB. */
#define DSKVS_VALUE_MAX (64u * 1024u * 1024u)

/*
 * The error codes, one list: code name, value, sentence.
 */
#define DSKVS_ERRNO_MAP(XX)                                                   \
	XX(NOTFOUND, -31001, "key or collection not found")                   \
	XX(EINVAL, -31002, "invalid argument")                                \
	XX(EBADKEY, -31003,                                                   \
	   "malformed key, or a collection key where a member key is needed " \
	   "(or the reverse)")                                                \
	XX(ETOOBIG, -31004, "name or value larger than the documented limit") \
	XX(ERANGE, -31005, "buffer too small for the value")                  \
	XX(ENOMEM, -31006, "out of memory")                                   \
	XX(EBUSY, -31007,                                                     \
	   "store directory is in use by another handle or "                  \
	   "process")                                                         \
	XX(EPATH, -31008,                                                     \
	   "store path is not a usable directory (a file, or no permission)") \
	XX(EIO, -31009,                                                       \
	   "input/output error (once a write or sync of the log has failed, " \
	   "the store refuses writes until it is rewritten or reopened)")     \
	XX(ECORRUPT, -31010,                                                  \
	   "data file is damaged where it is known to have been synced")      \
	XX(EVERSION, -31011,                                                  \
	   "data file was written by a newer, incompatible format version")   \
	XX(ETIMEDOUT, -31012, "timed out")                                    \
	XX(EEXIST, -31013,                                                    \
	   "the member already exists, or a backup's destination is not "     \
	   "empty (nothing was changed)")                                     \
	XX(ECONFLICT, -31014,                                                 \
	   "the member's version is not the one expected (nothing was "       \
	   "changed)")                                                        \
	XX(EBATCH, -31020,                                                    \
	   "batch of writes larger than the documented limit (nothing was "   \
	   "changed)")

typedef enum {
	DSKVS_OK = 0,
#define DSKVS__ERR_ENUM(name, value, msg) DSKVS_##name = (value),
	DSKVS_ERRNO_MAP(DSKVS__ERR_ENUM)
#undef DSKVS__ERR_ENUM
} dskvs_errno_t;

typedef struct dskvs dskvs; /* opaque store handle */

/* Durability modes (dskvs_options.sync_mode).
 * DSKVS_SYNC_ASYNC: a write returns once applied in memory and queued.
 * DSKVS_SYNC_ALWAYS: a write returns once its record is fdatasync'ed. */
#define DSKVS_SYNC_ASYNC  0
#define DSKVS_SYNC_ALWAYS 1

/* Log levels passed to dskvs_options.log_fn. */
#define DSKVS_LOG_ERROR 0
#define DSKVS_LOG_WARN  1
#define DSKVS_LOG_INFO  2

typedef void (*dskvs_log_fn)(void *arg, int level, const char *msg);

/*
 * Options for dskvs_open(). Always fill with dskvs_options_init() first and
 * then change the fields you care about; a zero field is not a default.
 */
typedef struct dskvs_options {
	/* DSKVS_SYNC_ASYNC (default) or DSKVS_SYNC_ALWAYS. In ALWAYS mode
	 * concurrent writers share one fdatasync (group commit). */
	int sync_mode;
	/* Capacity of the janitor's queue in records; rounded up to a power of
	 * two, 16 .. 2^24 (the ring keeps one slot free, so it holds one
	 * record fewer). Writers wait (sleeping, not spinning) while it is
	 * full. Default 65536. It takes bursts at memory speed; under a
	 * writer faster than the disk it fills, and the put -> durable lag
	 * then grows with it, up to capacity / the janitor's drain rate plus
	 * any fdatasync stall (README, Guarantees). */
	unsigned int queue_capacity;
	/* Permission bits of files the store creates. Default 0600. The
	 * directory, if created, gets 0700 plus the read/execute bits that
	 * match file_mode's group/other read bits. */
	unsigned int file_mode;
	/* Most records and bytes the janitor writes in one batch (one pwritev,
	 * one fdatasync). Defaults 16384 records, 8 MiB. A single larger
	 * record is still written whole. */
	unsigned int batch_max_records;
	size_t batch_max_bytes;
	/* Automatic compaction: the janitor rewrites the log when it is larger
	 * than compact_min_bytes and garbage makes up more than
	 * compact_garbage_pct percent of it. Defaults 1, 64 MiB, 50. */
	int auto_compact;
	uint64_t compact_min_bytes;
	unsigned int compact_garbage_pct;
	/* Create the directory (and its parents) when missing. Default 1. */
	int create;
	/* Optional logging hook; dskvs never prints anything by itself. May be
	 * called from the janitor thread. Default NULL. */
	dskvs_log_fn log_fn;
	void *log_arg;
	/* Threads that replay the log in dskvs_open. 0 (default): one per
	 * online CPU, at most 8, for a log of 8 MiB or more, else 1. Any other
	 * value is used as given (above 16 counts as 16). The log is checked
	 * in one pass, then each thread applies the records of its share of
	 * the collections: a store with a single collection replays on one
	 * thread whatever this says. */
	unsigned int recovery_threads;
} dskvs_options;

/* Fill *opts with the defaults. */
DSKVS_EXTERN void dskvs_options_init(dskvs_options *opts);

/* Library version as DSKVS_VERSION_HEX of the library actually linked. */
DSKVS_EXTERN unsigned int dskvs_version(void);
DSKVS_EXTERN const char *dskvs_version_string(void);

/*
 * Open (creating if needed) the store in directory `path` and load
 * everything persisted in it before returning.
 *
 * in:  path   directory of the store; created with its parents if missing
 *             (unless opts->create is 0).
 *      opts   options, or NULL for the defaults.
 * out: *out   the new handle on success, NULL on failure.
 *
 * A torn tail of the log (the unsynced end of a batch a crash cut short,
 * which nobody was told was durable) is cut back to the last whole record;
 * its bytes are first copied to "dskvs.torn.<offset>" in the store's
 * directory (never destroyed), and log_fn names that file. Damage the log
 * proves was synced is never cut: see DSKVS_ECORRUPT below and
 * dskvs_verify(). A log written by format 1 (dskvs 1.0) is read, and
 * rewritten in the current format by a compaction before open returns (if
 * that fails, log_fn says why and the store keeps appending format 1).
 *
 * Some possible errors are:
 *   DSKVS_EINVAL    path or out is NULL, or an option is out of range.
 *   DSKVS_EPATH     path is a regular file, or cannot be created or opened.
 *   DSKVS_EBUSY     the directory is already open, in this process or in
 *                   another (an flock'ed lock file; dies with its process).
 *   DSKVS_ECORRUPT  the log is damaged where it was synced (a later batch
 *                   or a mark follows the damage, or it lies in the part a
 *                   compaction synced whole), or holds a record a crash
 *                   cannot write; dskvs_errmsg(NULL) names the file, the
 *                   offset and the proof. The file is left as it was.
 *   DSKVS_EVERSION  the log was written by a newer major format version.
 *   DSKVS_EIO       reading (a media error: file and offset in
 *                   dskvs_errmsg), moving a torn tail aside, truncating or
 *                   syncing failed.
 *   DSKVS_ENOMEM    out of memory.
 */
DSKVS_EXTERN int dskvs_open(const char *path, const dskvs_options *opts,
                            dskvs **out);

/*
 * Persist every pending write durably, stop the janitor, release the lock and
 * free everything. `s` is invalid afterwards even when an error is returned.
 * Closing NULL is a harmless no-op returning DSKVS_OK. Must not race with any
 * other call on the same handle.
 *
 * Returns DSKVS_OK, or DSKVS_EIO if any write could not be persisted
 * (during close or earlier: the sticky error is reported here).
 */
DSKVS_EXTERN int dskvs_close(dskvs *s);

/*
 * Copy the value of member key `key` into buf.
 *
 * in:  buf, cap  destination; buf may be NULL when cap is 0.
 * out: *len      the value's full length (set on DSKVS_OK and DSKVS_ERANGE).
 *
 * Copies min(cap, length) bytes. Returns DSKVS_OK, or:
 *   DSKVS_ERANGE    cap was smaller than the value (the prefix was copied).
 *   DSKVS_NOTFOUND  no such member.
 *   DSKVS_EBADKEY   key is NULL, empty, starts with '/' or is a collection.
 *   DSKVS_ETOOBIG   a name in key is longer than DSKVS_NAME_MAX.
 *   DSKVS_EINVAL    s or len is NULL, or buf is NULL with cap > 0.
 * Lock-free; never waits for a writer.
 */
DSKVS_EXTERN int dskvs_get(dskvs *s, const char *key, void *buf, size_t cap,
                           size_t *len);

/*
 * Like dskvs_get(), but *val receives a malloc'd copy of the value (non-NULL,
 * even for an empty value) that the caller releases with free(). *len may be
 * NULL. On error *val is NULL. Extra error: DSKVS_ENOMEM.
 */
DSKVS_EXTERN int dskvs_get_alloc(dskvs *s, const char *key, void **val,
                                 size_t *len);

/*
 * Zero-copy read: call fn(val, len, arg) with the value in place, then return
 * what fn returned. `val` is valid only until fn returns and must not be
 * written. fn runs inside an RCU read-side section: it must be quick, may
 * call the read functions, and must not write to, sync or close any store.
 * Returns fn's result, or (without calling fn) the errors of dskvs_get().
 */
typedef int (*dskvs_read_fn)(const void *val, size_t len, void *arg);
DSKVS_EXTERN int dskvs_get_with(dskvs *s, const char *key, dskvs_read_fn fn,
                                void *arg);

/*
 * Call fn once per member of `collection` ("artist" or "artist/") with the
 * NUL-terminated member name and its value. A non-zero return from fn stops
 * the walk and is returned. A missing or empty collection returns DSKVS_OK
 * with no calls. fn is called exactly once per member of the collection as
 * it was at one moment during the call: the members are gathered under the
 * collection's writer lock (held for the time it takes to copy their
 * pointers), then walked without it. So a batch of writes is seen whole or
 * not at all. It is not a snapshot of the whole store (other collections
 * move on). The pointers are valid until fn returns. fn may call the read
 * functions; it must not write to, close or sync the store, and should be
 * quick (it delays memory reclamation).
 *
 * Waiting: unlike dskvs_get(), which never waits, the gather waits for the
 * collection's writers: a dskvs_update callback on it, a batch, and a
 * writer that holds the lock while it waits for room in the janitor's queue
 * (when writes outrun the disk). Other collections' writers never delay it.
 *
 * From inside a dskvs_update callback (on this store or another): the
 * callback's own collection is walked as it was before the update (its
 * lock is the one the callback holds); any other collection, of any
 * store, gets DSKVS_EINVAL (waiting for its lock while holding one could
 * deadlock with a callback doing the same the other way round).
 *
 * Errors: DSKVS_EBADKEY (NULL, empty, leading '/', or a member key),
 * DSKVS_ETOOBIG, DSKVS_EINVAL (s or fn NULL; another collection from
 * inside an update callback), DSKVS_ENOMEM.
 */
typedef int (*dskvs_visit_fn)(const char *member, size_t member_len,
                              const void *val, size_t val_len, void *arg);
DSKVS_EXTERN int dskvs_get_all(dskvs *s, const char *collection,
                               dskvs_visit_fn fn, void *arg);

/*
 * Set member key `key` to a copy of val[0..len). Creates the collection on
 * first use. If old is non-NULL, *old receives a malloc'd copy of the
 * previous value and *old_len its length (NULL and 0 when there was none;
 * old_len may be NULL). val may be NULL when len is 0.
 *
 * Errors: DSKVS_EBADKEY, DSKVS_ETOOBIG (name over DSKVS_NAME_MAX or value
 * over DSKVS_VALUE_MAX), DSKVS_EINVAL, DSKVS_ENOMEM (nothing was changed),
 * DSKVS_EIO (the store has a sticky I/O error; nothing was changed; in
 * DSKVS_SYNC_ALWAYS mode also: the write was applied in memory but could not
 * be made durable).
 */
DSKVS_EXTERN int dskvs_put(dskvs *s, const char *key, const void *val,
                           size_t len, void **old, size_t *old_len);

/* Remove member key `key`. DSKVS_NOTFOUND if it was absent; otherwise the
 * errors of dskvs_put(). */
DSKVS_EXTERN int dskvs_delete(dskvs *s, const char *key);

/* Remove every member of `collection`. DSKVS_NOTFOUND if the collection did
 * not exist (or had no members). Logged as one record. Errors otherwise as
 * dskvs_put(), with DSKVS_EBADKEY for a member key. */
DSKVS_EXTERN int dskvs_delete_all(dskvs *s, const char *collection);

/*
 * Wait until every write that returned before this call is on disk
 * (fdatasync'ed). Returns DSKVS_OK, or DSKVS_EIO if the store has a sticky
 * I/O error (writes since the error are not persisted).
 */
DSKVS_EXTERN int dskvs_sync(dskvs *s);

/* The sentence for an error code; "unknown error" for unknown codes. */
DSKVS_EXTERN const char *dskvs_strerror(int err);
/* The symbolic name ("DSKVS_EIO") of an error code; "DSKVS_UNKNOWN"
 * for unknown codes. */
DSKVS_EXTERN const char *dskvs_err_name(int err);

/*
 * Detail behind the last error a dskvs call returned to the calling thread:
 * the operation, file, offset and errno when there is one, e.g.
 * "dskvs.log: record at offset 4096: bad checksum; 2 valid records follow".
 * s is ignored (the detail is per thread, not per store) and may be NULL,
 * as after a failed dskvs_open. Returns "" when there is none.
 * The string lives in thread-local storage until the thread's next dskvs call.
 */
DSKVS_EXTERN const char *dskvs_errmsg(const dskvs *s);

/* ---- Durability tickets -------------------------------------------------
 *
 * Every write gets a sequence number; a larger number is a later write. A
 * write with sequence number q is on disk once dskvs_durable_seq() >= q.
 */

/* Like dskvs_put/delete/delete_all, and *seq (may be NULL) receives the
 * write's sequence number on success. */
DSKVS_EXTERN int dskvs_put_seq(dskvs *s, const char *key, const void *val,
                               size_t len, void **old, size_t *old_len,
                               uint64_t *seq);
DSKVS_EXTERN int dskvs_delete_seq(dskvs *s, const char *key, uint64_t *seq);
DSKVS_EXTERN int dskvs_delete_all_seq(dskvs *s, const char *collection,
                                      uint64_t *seq);

/* Highest sequence number known durable: every write numbered <= it is
 * fdatasync'ed. It covers a write as soon as dskvs_sync() (or, in
 * DSKVS_SYNC_ALWAYS mode, the write itself) returned. 0 for a NULL store.
 * Numbers are not dense: an open after a crash (a log without its closing
 * mark) goes on 2^32 above the highest number in the log, so that no
 * number the crashed process may have shown is handed out again. */
DSKVS_EXTERN uint64_t dskvs_durable_seq(dskvs *s);

/*
 * Wait until the write numbered `seq` is durable, at most timeout_ms
 * milliseconds (negative: no limit, 0: just check). Returns DSKVS_OK,
 * DSKVS_ETIMEDOUT, DSKVS_EIO (sticky error before it became durable), or
 * DSKVS_EINVAL (s is NULL, seq is larger than any number handed out, or a
 * call from inside a dskvs_update callback on s).
 */
DSKVS_EXTERN int dskvs_wait_durable(dskvs *s, uint64_t seq, int timeout_ms);

/*
 * A file descriptor (an eventfd, non-blocking, close-on-exec) that becomes
 * readable whenever dskvs_durable_seq() advances or a sticky error occurs.
 * Read 8 bytes from it to clear it, then check dskvs_durable_seq(). Owned by
 * the store: do not close it; it is closed by dskvs_close(). Returns the fd,
 * or a negative DSKVS_E* code.
 */
DSKVS_EXTERN int dskvs_durable_fd(dskvs *s);

/* ---- Versions, conditional puts and read-modify-write --------------------
 *
 * A member's version is the sequence number of the write that made its
 * current value (the number dskvs_put_seq() returned for it). It is
 * stable across close/open, dskvs_compact() and dskvs_rewrite(), and it
 * compares with every other sequence number of the same store: a larger
 * version was written later, by any thread, to any key; two values of
 * one member never share a version, and a member that is deleted and put
 * again gets a new, larger one. 0 is never a version: it means absent.
 * Versions of different stores are unrelated.
 */

/*
 * dskvs_get() that also gives the value's version in *seq (may be NULL;
 * set on DSKVS_OK and DSKVS_ERANGE, 0 on any other result). Lock-free like
 * dskvs_get(): the value and the version come from the same write.
 * Errors: those of dskvs_get().
 */
DSKVS_EXTERN int dskvs_get_seq(dskvs *s, const char *key, void *buf, size_t cap,
                               size_t *len, uint64_t *seq);

/*
 * Put val[0..len) as member key `key` only if the member is absent. The
 * decision and the write happen under the collection's writer lock, so of
 * several threads racing to create one member exactly one succeeds.
 * *seq (may be NULL) receives the new version on DSKVS_OK, the existing
 * member's version on DSKVS_EEXIST.
 *
 * Errors: DSKVS_EEXIST (the member exists; nothing was changed, and
 * dskvs_errmsg() is left empty: it is an answer, not a failure); otherwise
 * those of dskvs_put().
 */
DSKVS_EXTERN int dskvs_put_if_absent(dskvs *s, const char *key, const void *val,
                                     size_t len, uint64_t *seq);

/*
 * Put only if the member's current version is `expect` (0: only if the
 * member is absent); DSKVS_ECONFLICT otherwise, and nothing changes.
 * Decided and written under the collection's writer lock (compare and
 * swap). *seq (may be NULL) receives the new version on DSKVS_OK, and the
 * member's current version (0 if absent) on DSKVS_ECONFLICT, so that a
 * CAS loop can retry without another read:
 *
 *     uint64_t v = 0; // or from dskvs_get_seq()
 *     do { ...compute val from the value of version v...
 *     } while ((rc = dskvs_put_if_seq(s, key, val, len, v, &v))
 *              == DSKVS_ECONFLICT);
 *
 * Errors: DSKVS_ECONFLICT (no detail, as for DSKVS_EEXIST); otherwise those
 * of dskvs_put().
 */
DSKVS_EXTERN int dskvs_put_if_seq(dskvs *s, const char *key, const void *val,
                                  size_t len, uint64_t expect, uint64_t *seq);

/*
 * Read-modify-write of one member. fn sees the current value (exists = 0
 * and old NULL, old_len 0 when absent; old is valid until fn returns and
 * must not be written) and returns:
 *   DSKVS_UPDATE_SET     dskvs copies *new_val[0..*new_len) (set by fn;
 *                        it must stay valid until dskvs_update returns
 *                        and may point into old) as the new value;
 *   DSKVS_UPDATE_DELETE  the member is removed (absent: nothing changes,
 *                        not an error);
 *   DSKVS_UPDATE_KEEP    nothing changes;
 *   a negative code      nothing changes; dskvs_update returns it as is.
 * Any other return (a positive value that is none of the three) changes
 * nothing and dskvs_update returns DSKVS_EINVAL.
 *
 * fn runs once, in the calling thread, while the member's collection is
 * locked and inside an RCU read-side section. That is the cost: while it
 * runs, every writer of that collection waits, and so does dskvs_get_all()
 * of that collection (memory reclamation of the whole store is delayed
 * too); readers of single keys (dskvs_get and friends) never wait. So fn
 * must be quick. It may read any key, and dskvs_get_all() its own
 * collection (as it was before this update); dskvs_get_all() of any other
 * collection, of any store, returns DSKVS_EINVAL from inside fn. It must not
 * write to, sync, wait on, compact or close that store: those calls, made from
 * inside fn on the same store, return DSKVS_EINVAL without doing anything
 * (checked in every build: a thread-local flag; dskvs_close too, which
 * then leaves the handle open; dskvs_wait_durable too, which would wait
 * with the lock held). Writing to another store from fn is allowed but must not
 * form a cycle of update callbacks between stores (that deadlocks).
 *
 * *seq (may be NULL) receives the version written by SET, or the sequence
 * number of the delete (a durability ticket for dskvs_wait_durable(); the
 * member's version is now 0); it is left unchanged for KEEP, an abort, or
 * DELETE of an absent member.
 *
 * Returns DSKVS_OK (also for KEEP), fn's negative code, or:
 *   DSKVS_EINVAL    s or fn NULL, a garbage return code from fn, SET with
 *                   *new_val NULL and *new_len > 0, or a call from inside
 *                   an update callback on the same store.
 *   DSKVS_ETOOBIG   SET of a value over DSKVS_VALUE_MAX (nothing changed).
 *   DSKVS_EBADKEY, DSKVS_ENOMEM, DSKVS_EIO as dskvs_put().
 */
#define DSKVS_UPDATE_KEEP   0
#define DSKVS_UPDATE_SET    1
#define DSKVS_UPDATE_DELETE 2
typedef int (*dskvs_update_fn)(const void *old, size_t old_len, int exists,
                               const void **new_val, size_t *new_len,
                               void *arg);
DSKVS_EXTERN int dskvs_update(dskvs *s, const char *key, dskvs_update_fn fn,
                              void *arg, uint64_t *seq);

/* ---- Binary-safe names: the _bin forms ------------------------------------
 *
 * A string key cannot hold a NUL byte nor name an empty member ("coll/"
 * is a collection). Every call that takes a key has a _bin form that takes
 * the collection and the member apart, each with its length:
 *
 *   coll, clen      the collection: 1 .. DSKVS_NAME_MAX bytes, no '/' and
 *                   no NUL (the same names as in string keys); need not be
 *                   NUL-terminated.
 *   member, mlen    the member: any 0 .. DSKVS_NAME_MAX bytes ('/', NUL,
 *                   anything; empty is a member like any other); member
 *                   may be NULL when mlen is 0.
 *
 * The member "a/b" of collection "x" is the same member whether written
 * as the string key "x/a/b" or as ("x", 1, "a/b", 3). Such names survive
 * close/open, compaction, verify and the tool's dump/load exactly.
 * dskvs_get_all() and dskvs_get_all_bin() hand fn each member's exact
 * length (a NUL inside the name is part of it; a NUL always follows it).
 *
 * Errors as the string form, with DSKVS_EBADKEY for a NULL or empty
 * collection, a '/' or NUL in it, or a NULL member with mlen > 0, and
 * DSKVS_ETOOBIG for clen or mlen over DSKVS_NAME_MAX. The _bin forms of
 * put, delete and delete_all take the *seq out-parameter of the _seq forms
 * (may be NULL); dskvs_get_bin takes that of dskvs_get_seq.
 */
DSKVS_EXTERN int dskvs_get_bin(dskvs *s, const char *coll, size_t clen,
                               const void *member, size_t mlen, void *buf,
                               size_t cap, size_t *len, uint64_t *seq);
DSKVS_EXTERN int dskvs_get_alloc_bin(dskvs *s, const char *coll, size_t clen,
                                     const void *member, size_t mlen,
                                     void **val, size_t *len);
DSKVS_EXTERN int dskvs_get_with_bin(dskvs *s, const char *coll, size_t clen,
                                    const void *member, size_t mlen,
                                    dskvs_read_fn fn, void *arg);
DSKVS_EXTERN int dskvs_get_all_bin(dskvs *s, const char *coll, size_t clen,
                                   dskvs_visit_fn fn, void *arg);
DSKVS_EXTERN int dskvs_put_bin(dskvs *s, const char *coll, size_t clen,
                               const void *member, size_t mlen, const void *val,
                               size_t len, void **old, size_t *old_len,
                               uint64_t *seq);
DSKVS_EXTERN int dskvs_delete_bin(dskvs *s, const char *coll, size_t clen,
                                  const void *member, size_t mlen,
                                  uint64_t *seq);
DSKVS_EXTERN int dskvs_delete_all_bin(dskvs *s, const char *coll, size_t clen,
                                      uint64_t *seq);
DSKVS_EXTERN int dskvs_put_if_absent_bin(dskvs *s, const char *coll,
                                         size_t clen, const void *member,
                                         size_t mlen, const void *val,
                                         size_t len, uint64_t *seq);
DSKVS_EXTERN int dskvs_put_if_seq_bin(dskvs *s, const char *coll, size_t clen,
                                      const void *member, size_t mlen,
                                      const void *val, size_t len,
                                      uint64_t expect, uint64_t *seq);
DSKVS_EXTERN int dskvs_update_bin(dskvs *s, const char *coll, size_t clen,
                                  const void *member, size_t mlen,
                                  dskvs_update_fn fn, void *arg, uint64_t *seq);

/* ---- Batches of writes ----------------------------------------------------
 *
 * Several puts and deletes of one collection, applied in order under one
 * acquisition of the collection's writer lock, and logged so that a crash
 * keeps all of them or none (recovery replays a batch only once it has read
 * it whole; a batch the crash cut short is part of the torn tail, moved
 * aside like any torn tail).
 *
 *   member  NUL-terminated member name: 1 .. DSKVS_NAME_MAX bytes (as in
 *           a string key "coll/member"; may contain '/').
 *   val,len the value (val may be NULL when len is 0), copied; ignored
 *           when del is set.
 *   del     non-zero: delete the member. Deleting an absent member is not
 *           an error and writes nothing for that op.
 *
 * The same member may appear more than once: ops apply in order, so the
 * last one wins.
 *
 * Visibility: a reader of single keys (dskvs_get and friends) may see the
 * ops one by one while the batch is applied; dskvs_get_all() and
 * dskvs_get_all_bin() of the collection see all of them or none (they
 * gather the members under the same lock).
 *
 * Versions and durability: op i gets sequence number *seq - (n - 1) + i,
 * which is the version of the value a put op writes (dskvs_get_seq). *seq
 * (may be NULL) receives the batch's number, the last op's: a durability
 * ticket for dskvs_wait_durable() that covers the whole batch. The batch
 * counts as one write for dskvs_sync() and DSKVS_SYNC_ALWAYS (one wait).
 *
 * Limits (DSKVS_EBATCH): at most min(batch_max_records, queue capacity - 1)
 * ops (defaults: 16384), and at most DSKVS_BATCH_BYTES_MAX bytes of log
 * records: for each op its member name and value, the collection's name
 * and 33 bytes (the janitor writes a batch inside one of its own, one
 * pwritev and one fdatasync, and the queue must hold it whole).
 *
 * Returns DSKVS_OK; nothing is applied when it returns anything else but
 * DSKVS_EIO in DSKVS_SYNC_ALWAYS mode (applied in memory, not durable):
 *   DSKVS_EINVAL    s NULL, n == 0, ops NULL, a NULL val with len > 0, or
 *                   a call from inside a dskvs_update callback.
 *   DSKVS_EBADKEY   collection NULL, empty, starting with '/' or a member
 *                   key ("coll/x"); a member name NULL or empty (the _bin
 *                   form: a NULL member with member_len > 0).
 *   DSKVS_ETOOBIG   a collection or member name over DSKVS_NAME_MAX, or a
 *                   value over DSKVS_VALUE_MAX.
 *   DSKVS_EBATCH    more ops, or more bytes, than the limits above.
 *   DSKVS_ENOMEM, DSKVS_EIO as dskvs_put().
 * dskvs_errmsg() names the op at fault ("op 3: ...").
 * Thread rule: any thread; writers of other collections never wait for it
 * beyond the queue's commit of its records; writers of this collection wait
 * for the whole batch.
 */
#define DSKVS_BATCH_BYTES_MAX (64u * 1024u * 1024u)
typedef struct dskvs_batch_op {
	const char *member; /* NUL-terminated member name */
	const void *val;
	size_t len;
	int del;
} dskvs_batch_op;
DSKVS_EXTERN int dskvs_write_batch(dskvs *s, const char *collection,
                                   const dskvs_batch_op *ops, size_t n,
                                   uint64_t *seq);

/* The binary-safe form (see "Binary-safe names"): the collection as coll,
 * clen, and each member as member, member_len (any 0 .. DSKVS_NAME_MAX
 * bytes, NUL and '/' included, empty allowed; member may be NULL when
 * member_len is 0). Otherwise as dskvs_write_batch(). */
typedef struct dskvs_batch_op_bin {
	const void *member;
	size_t member_len;
	const void *val;
	size_t len;
	int del;
} dskvs_batch_op_bin;
DSKVS_EXTERN int dskvs_write_batch_bin(dskvs *s, const char *coll, size_t clen,
                                       const dskvs_batch_op_bin *ops, size_t n,
                                       uint64_t *seq);

/* ---- Maintenance -------------------------------------------------------- */

/* Rewrite the log now with only the live data (what the janitor does by
 * itself when garbage dominates). Waits for it to finish. Readers are never
 * blocked; writers only wait if the queue fills up meanwhile, and batches
 * keep being written and synced to the current log between chunks of the
 * new one, so a dskvs_sync() meanwhile waits about one chunk
 * (batch_max_bytes) and one fdatasync.
 * Errors: DSKVS_EIO (the store has a sticky error; or writing the new file
 * failed: then nothing changed, the current log still holds every write and
 * the store goes on accepting writes), DSKVS_ENOMEM. */
DSKVS_EXTERN int dskvs_compact(dskvs *s);

/*
 * After a sticky I/O error: write the whole live set from memory to a fresh
 * log file, sync it, rename it over the old one and sync the directory. On
 * success the error is cleared and the store accepts writes again. Without
 * a sticky error it is dskvs_compact(). Returns DSKVS_OK (also when there
 * was no error), DSKVS_EIO (the store stays as it was: sticky if it was,
 * accepting writes with every write in the current log if it was not),
 * DSKVS_ENOMEM.
 */
DSKVS_EXTERN int dskvs_rewrite(dskvs *s);

/* Statistics, a consistent-enough snapshot for monitoring. */
typedef struct dskvs_stats {
	uint64_t collections;    /* collections with at least one member */
	uint64_t entries;        /* members in all collections */
	uint64_t live_bytes;     /* member name + value bytes of every member */
	uint64_t log_bytes;      /* size of the log file */
	uint64_t log_live_bytes; /* bytes of log records still live */
	uint64_t queue_depth;    /* records queued for the janitor */
	uint64_t queue_capacity;
	uint64_t seq;               /* sequence number of the latest write */
	uint64_t durable_seq;       /* see dskvs_durable_seq() */
	uint64_t pending_bytes;     /* bytes queued but not yet durable */
	uint64_t oldest_pending_ns; /* age of the oldest write not durable */
	uint64_t batches;           /* batches written (one fdatasync each) */
	uint64_t records_written;
	uint64_t bytes_written;
	uint64_t last_batch_records;
	uint64_t last_batch_bytes;
	uint64_t fsync_last_ns; /* latency of the last fdatasync */
	uint64_t fsync_p50_ns;  /* over the last 1024 fdatasyncs */
	uint64_t fsync_p99_ns;
	uint64_t fsync_max_ns;
	uint64_t compactions;
	int64_t last_compaction_unix; /* 0 if none since open */
	int last_error;               /* sticky DSKVS_E* code, or 0 */
	int last_errno;               /* errno behind it, or 0 */
	unsigned int format_major, format_minor;
} dskvs_stats;

/* Fill *out. Safe from any thread at any time; takes short internal locks
 * (never a collection's writer lock for long), walks the table of
 * collections, and costs time linear in the number of collections.
 * Errors: DSKVS_EINVAL (s or out NULL). */
DSKVS_EXTERN int dskvs_stats_get(dskvs *s, dskvs_stats *out);

/* Call fn once per non-empty collection with its name (NUL-terminated,
 * name_len bytes; valid until fn returns), member count and the sum of its
 * value sizes (both as of some moment during the call). Stops at and
 * returns fn's first non-zero result. fn runs inside an RCU read-side
 * section: it may call the read functions, must not write to, sync or close
 * the store, and should be quick. Collections created or dropped during
 * the walk may or may not be seen.
 * Errors: DSKVS_EINVAL (s or fn NULL), DSKVS_ENOMEM. */
typedef int (*dskvs_collection_fn)(const char *name, size_t name_len,
                                   uint64_t members, uint64_t value_bytes,
                                   void *arg);
DSKVS_EXTERN int dskvs_list_collections(dskvs *s, dskvs_collection_fn fn,
                                        void *arg);

/*
 * Check every record of the store at `path` without changing anything, by
 * the same rules dskvs_open() applies. For each damage found fn (may be
 * NULL) is called with the file name, the offset and a description; a
 * torn tail is reported through fn too.
 *
 * Returns:
 *   DSKVS_OK        the log is healthy. A torn tail (the unsynced end of a
 *                   crash) counts as healthy: rep->torn_tail says so, and
 *                   rep->torn_file names the file in the store's directory
 *                   that open will move those bytes to before cutting them.
 *   DSKVS_ECORRUPT  damage that open refuses: inside a batch the log proves
 *                   was synced (a later batch or a mark follows it, or it
 *                   lies in the part a compaction synced whole), or a record
 *                   whose checksums are valid but whose content a crash
 *                   cannot produce (a sequence number out of range or going
 *                   backwards, a malformed key). rep->damaged counts the
 *                   damaged regions.
 *   DSKVS_EVERSION, DSKVS_EPATH, DSKVS_EIO (a read failed; fn gets the
 *   offset), DSKVS_ENOMEM, DSKVS_EINVAL (path is NULL).
 *
 * Safe on a store that is open, in this process or another, or being
 * opened: verify reads the log with pread and checks what it read. When
 * nobody has the store open it holds the store's lock shared while it
 * checks, so a dskvs_open of that store meanwhile fails with DSKVS_EBUSY.
 * Time and memory: linear in the log's size on any input; one read window
 * of 8 MiB (more for a record larger than that).
 */
typedef struct dskvs_verify_report {
	uint64_t records; /* whole, valid records of writes */
	uint64_t puts, deletes, delete_alls;
	uint64_t marks;        /* records that only prove a batch synced */
	uint64_t file_bytes;   /* size of the log file */
	uint64_t valid_bytes;  /* bytes up to the end of the last valid record
	                          before any damage */
	uint64_t sealed_bytes; /* bytes a compaction synced whole (0: none, or
	                          a format-1 log) */
	uint64_t damaged;      /* damaged regions found */
	int torn_tail;         /* 1 if the log ends in a torn tail */
	uint64_t torn_offset;  /* where the torn tail starts */
	uint64_t torn_bytes;   /* its length */
	char torn_file[64];    /* where open will keep it, in the store's
	                          directory ("dskvs.torn.<offset>[.<k>]") */
	uint64_t kept_torn_files; /* dskvs.torn.* files already in the
	                             directory, kept by earlier opens */
	unsigned int format_major, format_minor;
} dskvs_verify_report;
typedef void (*dskvs_damage_fn)(const char *file, uint64_t offset,
                                const char *what, void *arg);
DSKVS_EXTERN int dskvs_verify(const char *path, dskvs_damage_fn fn, void *arg,
                              dskvs_verify_report *rep);

/* ---- Hot backup ---------------------------------------------------------
 *
 * A backup is a store directory holding one log file: a copy of a prefix
 * of the source's log that ends at a batch boundary. dskvs_open opens it
 * like any store (it may append a 32-byte mark on its first open), and
 * dskvs_verify checks it.
 *
 * Destination rules (both functions): `dest` must not exist (it is then
 * created, mode 0700; its parent must exist) or be an empty directory,
 * and must not be the store's directory or lie inside it. Errors:
 *   DSKVS_EINVAL  dest NULL or empty, or inside the store's directory;
 *   DSKVS_EEXIST  dest exists and is a file (or anything but a
 *                 directory), or a directory that is not empty;
 *   DSKVS_EPATH   dest cannot be created or written (no permission, a
 *                 missing parent, not a directory on the way).
 * On any error nothing is left at dest: a directory the call created is
 * removed, an empty one it was given is left empty.
 *
 * The copy is durable when the call returns: the log is written as
 * "dskvs.log.tmp", fdatasync'ed, renamed to "dskvs.log", and the directory
 * is fsync'ed (and its parent, when the call created it). A crash during
 * the call leaves dest empty or holding the whole copy.
 */

/*
 * Back up the open store s to `dest` while it serves. The backup holds the
 * state of the whole store at one moment during the call: every write
 * that returned before the call, and no write without every write that
 * returned before it (a consistent cut of the log order, which is the
 * memory order of every key). Writes in flight during the call may or may
 * not be in it, but never one without those before it.
 *
 * How: the call waits until every write that returned before it is
 * durable (like dskvs_sync), then asks the janitor for the log's size at
 * a batch boundary and a descriptor of the log file, and copies that
 * prefix with pread/pwrite, holding no lock: readers and writers go on
 * meanwhile, and a compaction that replaces the log meanwhile does not
 * disturb the copy. It waits behind a compaction already running (the
 * janitor serves the request between batches). Concurrent backups of one
 * store are served one at a time.
 *
 * Time: the wait for durability, then linear in the log's size (not the
 * live set's: compact first for a smaller backup). Memory: a 4 MiB buffer.
 * Thread rule: any thread, not from inside an update callback on s.
 *
 * Returns DSKVS_OK, or the destination errors above, or:
 *   DSKVS_EINVAL  s NULL, or called from inside an update callback on s;
 *   DSKVS_EIO     the store has a sticky I/O error (nothing is copied),
 *                 or reading the log, writing or syncing the copy failed;
 *   DSKVS_ENOMEM.
 */
DSKVS_EXTERN int dskvs_backup(dskvs *s, const char *dest);

/* What dskvs_backup_path copied. */
typedef struct dskvs_backup_report {
	uint64_t bytes;      /* bytes of the log copied (0: the store had no
	                        log; the backup is an empty store) */
	uint64_t file_bytes; /* size of the source log when it was read */
	uint64_t seq;        /* highest sequence number in the copy: every
	                        write the source reported durable up to this
	                        point is in it (0: none) */
	uint64_t records;    /* write records in the copy */
	int open_elsewhere;  /* 1: the store was open (its lock held) */
} dskvs_backup_report;

/*
 * Back up the store in directory `path` without opening it, whether or
 * not another handle or process has it open: copy the part of its log
 * that is provably synced when it is read (the part a compaction sealed,
 * every batch followed by a mark or by a later batch: the rules open
 * applies, see dskvs_verify), then check the copy with dskvs_verify. What
 * a process writes meanwhile, and a last batch not yet proven, are left
 * out: a batch is proven by the next one, or by the mark written after its
 * fdatasync when nothing else is queued, so under a steady load the copy
 * trails what the source reported durable by up to one batch (at most
 * batch_max_records writes); rep->seq says up to which write the copy is
 * complete. When nobody has the store open it
 * holds the store's lock shared meanwhile, so an open of that store
 * fails with DSKVS_EBUSY. Changes nothing in the store.
 *
 * Returns DSKVS_OK, the destination errors above, or:
 *   DSKVS_EINVAL    path NULL or empty;
 *   DSKVS_EPATH     path is not a directory, or its log cannot be opened;
 *   DSKVS_ECORRUPT  the log is damaged where it was synced (as open);
 *   DSKVS_EVERSION, DSKVS_EIO, DSKVS_ENOMEM.
 */
DSKVS_EXTERN int dskvs_backup_path(const char *path, const char *dest,
                                   dskvs_backup_report *rep);

#ifdef __cplusplus
}
#endif
#endif /* DSKVS_H */

/*
 * dskvs-stress: shared declarations.
 *
 * The harness has four parts:
 *   value.c   self-validating values: every byte of a value follows from
 *             (key id, writer id, version), so a torn, misdirected or stale
 *             read is recognised from the bytes alone;
 *   report.c  violation bookkeeping, the clock, the summary;
 *   run.c     the threaded run (readers, writers, the shared collection,
 *             periodic close + reopen against the model);
 *   crash.c   crash mode (a writing child killed with SIGKILL, then the
 *             parent reopens and checks every acknowledged write).
 */
#ifndef DSKVS_STRESS_H
#define DSKVS_STRESS_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dskvs.h"

/* ---- options ------------------------------------------------------------ */

enum op_kind {
	OP_GET,
	OP_PUT,
	OP_DELETE,
	OP_GET_ALL,
	OP_DELETE_ALL,
	OP_SYNC,
	OP_NKINDS
};
extern const char *const op_name[OP_NKINDS];

enum sync_choice { SYNC_ASYNC, SYNC_ALWAYS, SYNC_MIXED };

struct stress_opts {
	double seconds;       /* length of the threaded run */
	unsigned int readers; /* reader threads */
	unsigned int writers; /* writer threads (and crash-child writers) */
	unsigned int keys;    /* keys owned by each writer */
	unsigned int colls; /* collections each writer spreads its keys over */
	unsigned int shared_keys; /* keys of the shared collection */
	unsigned int shared_pct;  /* % of operations aimed at it */
	size_t value_min, value_max;
	double mix[OP_NKINDS];   /* relative weights */
	int sync;                /* enum sync_choice */
	double reopen_every;     /* seconds; 0 = only at the end */
	double compact_every;    /* seconds; 0 = never call dskvs_compact() */
	uint64_t compact_min;    /* dskvs_options.compact_min_bytes */
	unsigned int queue;      /* dskvs_options.queue_capacity, 0 = default */
	unsigned int churn_pct;  /* % of steps on short-lived keys and
	                          * collections (threaded run only) */
	unsigned int atomic_pct; /* % of steps on the atomic mix: counters
	                          * (dskvs_update, put_if_seq) and
	                          * put_if_absent races */
	unsigned int crash;      /* crash cycles; 0 = threaded run */
	unsigned int kill_min_ms, kill_max_ms;
	unsigned int crash_compact_ms; /* mean gap between compactions */
	uint64_t seed;
	const char *dir; /* work directory; the store is <dir>/store */
	bool keep;
	unsigned int max_report; /* violations described in full */
	bool quiet;
	/* Set only in the re-executed crash child. */
	int child_fd;
	const char *child_model;
	unsigned int child_cycle;
	long child_parent; /* pid the child must have as parent */
};

/* ---- keys -----------------------------------------------------------------
 *
 * Key ids: writer w's key i is w * keys + i, in collection "w<w>c<i % colls>"
 * as member "k<i>"; shared key j is id writers * keys + j, member "s<j>" of
 * collection "shared". Names are built once; the hot loops index arrays.
 */
#define KEY_NAME_MAX 48

struct keyspace {
	unsigned int writers, keys, colls, shared;
	uint32_t owned;             /* writers * keys */
	char (*key)[KEY_NAME_MAX];  /* by key id, owned then shared */
	char (*coll)[KEY_NAME_MAX]; /* by writer * colls + c */
	unsigned int per_coll_max;  /* most keys in one owned collection */
};

int keyspace_init(struct keyspace *ks, const struct stress_opts *o);
void keyspace_free(struct keyspace *ks);
/* Parse an owned member name ("k000123") of collection c: its key index i
 * within the writer, or -1 when the name is not one the harness writes. */
long parse_owned_member(const struct keyspace *ks, unsigned int c,
                        const char *m, size_t len);
/* Same for "s0012" in the shared collection. */
long parse_shared_member(const struct keyspace *ks, const char *m, size_t len);

/* ---- values ------------------------------------------------------------- */

#define SV_HDR 32u /* smallest value: the header alone */

struct sv_info {
	uint32_t key;
	uint32_t writer;
	uint64_t version;
	size_t len;
};

/* The length every write of (key, version) uses: deterministic, so a reader
 * that knows the version knows the exact bytes. */
size_t sv_len(const struct stress_opts *o, uint32_t key, uint64_t version);
void sv_fill(void *buf, size_t len, uint32_t key, uint32_t writer,
             uint64_t version);
/* true when buf[0..len) is a whole value of some (key, writer, version)
 * whose length is sv_len(); *out gets its identity. Otherwise false and
 * why[] says what is wrong with it (header, length, first bad byte). */
bool sv_check(const struct stress_opts *o, const void *buf, size_t len,
              struct sv_info *out, char *why, size_t whycap);

/* ---- counters (the atomic mix) ----------------------------------------------
 *
 * Counters live in the collection ATOMIC_COLL: NCTR_UPD members "u<i>"
 * incremented with dskvs_update(), then NCTR_CAS members "c<i>" incremented
 * with dskvs_get_seq() + dskvs_put_if_seq() loops, by every writer. Counter
 * i (0 .. NCTR-1) is member ctr_key(i). Only ever +1, so a counter's value
 * is the number of increments applied to it; run.c and crash.c check it
 * against the increments begun and finished (or acknowledged).
 *
 * Later parts of the atomic mix (dskvs_write_batch, dskvs_backup) get
 * their own collections and their own sections in run.c / crash.c; see
 * "the atomic mix" there.
 */
#define ATOMIC_COLL "atomic"
#define NCTR_UPD    2
#define NCTR_CAS    2
#define NCTR        (NCTR_UPD + NCTR_CAS)
#define CTR_LEN     24u

void ctr_fill(void *buf, uint32_t id, uint64_t count);
/* true when buf[0..len) is a whole counter value of counter `id`; *count
 * gets its count. Otherwise false and why[] says what is wrong. */
bool ctr_check(const void *buf, size_t len, uint32_t id, uint64_t *count,
               char *why, size_t whycap);
/* The full key ("atomic/u0", "atomic/c3") of counter i. */
void ctr_key(char *buf, size_t cap, unsigned int i);

/* dskvs_update() callback that increments counter `id` (the arg is a
 * struct ctr_incr). mode CTR_SET: +1 (absent counts as 0); CTR_KEEP:
 * returns DSKVS_UPDATE_KEEP; CTR_ABORT: returns CTR_ABORT_RC. A value that
 * is not a whole counter of `id` sets `bad` (why[] says why) and aborts. */
#define CTR_ABORT_RC (-424242) /* our own code, far from dskvs's */
enum { CTR_SET, CTR_KEEP, CTR_ABORT };
struct ctr_incr {
	uint32_t id;
	int mode;
	bool bad, called, exists;
	uint64_t old; /* count seen (0 when absent) */
	unsigned char nv[CTR_LEN];
	char why[160];
};
int ctr_incr_fn(const void *old, size_t old_len, int exists,
                const void **new_val, size_t *new_len, void *arg);

/* ---- batches (the atomic mix) -----------------------------------------------
 *
 * Batch collections: "bo<w>" (owned: only writer w writes it, so its
 * batches apply in number order) and "bs<j>" (BAT_SHARED of them, written
 * by every writer). Collection ci (owned: w; shared: BAT_CI_SHARED + j)
 * has a fixed member set m0 .. m(k-1), and every batch writes all of it:
 * batch number b puts member i with the value (key id bat_kid(ci, i),
 * version b) when bat_present(b, i), else deletes it. So the collection
 * always holds exactly one batch's pattern, and a get_all that sees
 * members of two batch numbers, or a member set other than the pattern of
 * the batch it sees, saw part of a batch. Batches with b % 3 == 0 put m0
 * twice: first a decoy (version b | BAT_DECOY), m0 last: the last op
 * wins, so a decoy value is never visible. b % 11 == 0: every member
 * deleted (b == 0, a collection never written, is the same state); b % 5
 * == 0: the odd members deleted.
 */
#define BAT_KID       0x60000000u
#define BAT_KMAX      40u
#define BAT_SHARED    2u
#define BAT_CI_SHARED 4096u
#define BAT_DECOY     (1ull << 62)
#define BAT_REJECT    (1ull << 61) /* values of batches that must fail */

unsigned int bat_k_owned(unsigned int w);
unsigned int bat_k_shared(unsigned int j);
void bat_coll_name(char *buf, size_t cap, bool shared, unsigned int i);
uint32_t bat_kid(uint32_t ci, unsigned int i);
bool bat_all_del(uint64_t b);
bool bat_present(uint64_t b, unsigned int i);
/* Bytes of vbuf bat_ops() needs. */
size_t bat_buf_size(const struct stress_opts *o);
/* Fill ops[] (room for BAT_KMAX + 1) with batch b of collection ci (k
 * members); names[] (k of them) and vbuf hold what the ops point to.
 * Returns the number of ops. */
size_t bat_ops(const struct stress_opts *o, dskvs_batch_op *ops,
               char (*names)[8], unsigned char *vbuf, uint32_t ci,
               unsigned int k, uint64_t b, uint32_t writer);
struct bat_seen {
	uint64_t b;       /* the batch seen; 0: no member visited */
	uint64_t members; /* members visited */
	uint64_t bytes;   /* their value bytes */
	bool mixed, bad;  /* two batch numbers; any violation */
};
/* get_all of coll: every member a whole value of one batch, the member
 * set exactly that batch's (violations reported, kind `batch`). Returns
 * false when anything was wrong. The caller checks *out->b. */
bool bat_walk(const struct stress_opts *o, dskvs *s, const char *who,
              const char *what, const char *coll, uint32_t ci, unsigned int k,
              struct bat_seen *out);

/* ---- violations and notes ------------------------------------------------ */

enum vkind {
	V_TORN,        /* bytes not a whole value */
	V_MISDIRECTED, /* a whole value of another key */
	V_STALE,       /* older than the rules allow */
	V_PHANTOM,     /* a version nobody wrote (yet) */
	V_LOST,        /* absent, but must be present */
	V_RESURRECTED, /* present, but must be absent */
	V_BAD_OLD,     /* put's *old is not the value it replaced */
	V_LOST_UPDATE, /* two puts replaced the same value */
	V_WALK,        /* get_all: missing, duplicate or unknown member */
	V_COUNT,       /* stats / list_collections disagree with the model */
	V_RC,          /* unexpected return code */
	V_DURABILITY,  /* an acknowledgement that was not durable */
	V_OPEN,        /* open / verify / close of the store failed */
	V_CHILD,       /* crash child died in an unplanned way */
	V_WINNERS,     /* put_if_absent: not exactly one winner per key */
	V_VERSION,     /* a version (seq) that breaks the rules */
	V_BATCH,       /* part of a batch, or two batches mixed */
	V_BACKUP,      /* dskvs_backup failed, or its copy is not a cut */
	V_NKINDS
};
extern const char *const vkind_name[V_NKINDS];

void report_init(unsigned int max_report);
/* Record one violation: counted, and the first max_report are printed on
 * stderr at once and kept for the summary. Thread-safe. */
void violation(enum vkind k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void vviolation(enum vkind k, const char *fmt, va_list ap);
/* Something worth knowing that the contract does not forbid. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t violations_total(void);
uint64_t notes_total(void);
void report_summary(FILE *f);

/* Seconds since report_init(), monotonic. */
double now_s(void);
void sleep_s(double s);

/* ---- small helpers --------------------------------------------------------
 */

static inline uint64_t mix64(uint64_t z)
{
	/* splitmix64's finaliser: every input bit moves every output bit. */
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix64(*s);
}

/* Uniform in [0, n), n > 0. The modulo bias is irrelevant at these sizes. */
static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return rng_next(s) % n;
}

static inline double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Pick an operation by weight among the kinds allowed in `mask`
 * (bit 1 << OP_x); -1 when they all weigh 0. */
int pick_op(const struct stress_opts *o, unsigned int mask, uint64_t *rng);

/* Error text for a dskvs return code. */
const char *rc_name(int rc);

/* Options to open the store with, from the harness options. */
void store_options(const struct stress_opts *o, int sync_mode,
                   dskvs_options *out);

int run_main(struct stress_opts *o, const char *store_dir);
int crash_main(struct stress_opts *o, const char *work_dir,
               const char *store_dir);
int crash_child_main(struct stress_opts *o, const char *store_dir);

#endif

/*
 * Layer 2: the log format (layout and rules at the top of format.c) and the
 * one scanner that recovery, verify and the fuzzer share.
 */
#ifndef DSKVS_FORMAT_H
#define DSKVS_FORMAT_H

#include "base.h"

/* ---- log format (format.c) ----------------------------------------------
 * The layout and the rules that tell a torn tail from damage are described
 * at the top of format.c. */

#define DSKVS_LOG_NAME  "dskvs.log"
#define DSKVS_LOG_TMP   "dskvs.log.tmp"
#define DSKVS_LOCK_NAME "dskvs.lock"
/* Bytes cut off a torn tail are kept in "dskvs.torn.<offset>" (then
 * ".<offset>.1", ".2", ... if that name is taken). */
#define DSKVS_TORN_PREFIX  "dskvs.torn."
#define DSKVS_FORMAT_MAJOR 2
#define DSKVS_FORMAT_MINOR 0
#define DSKVS_FILE_HDR     32
#define DSKVS_REC_HDR      32
/* A record's key: "coll/member" or a collection name. */
#define DSKVS_KEY_MAX (2 * (size_t)DSKVS_NAME_MAX + 1)
/* Largest sequence number the format allows: 2^62, so that no count of
 * writes a store can see in its life comes near a wrap. A log may hold
 * sequence numbers up to DSKVS_SEQ_LIMIT only, which leaves 2^40 writes of
 * room after any log that opens: no writer gets near it in the life of a
 * store, and one that did would make a store that no longer opens. */
#define DSKVS_SEQ_MAX   (UINT64_C(1) << 62)
#define DSKVS_SEQ_LIMIT (DSKVS_SEQ_MAX - (UINT64_C(1) << 40))

/* Record types in the file (1..3 equal the ring's DSKVS_OP_*). */
#define DSKVS_REC_PUT    1u
#define DSKVS_REC_DEL    2u
#define DSKVS_REC_DELALL 3u
#define DSKVS_REC_MARK   4u /* format 2: opens a batch, no data */
/* Record header flags: the last record of a batch (of the janitor's:
 * what one fdatasync covered). */
#define DSKVS_REC_END 1u
/* A record of a dskvs_write_batch that is not its last: the records up to
 * and including the next one without this flag are applied all or none
 * (format.c, "batches of writes"). */
#define DSKVS_REC_GRP 2u

static inline size_t dskvs__rec_size(size_t klen, size_t vlen)
{
	return DSKVS_REC_HDR + klen + vlen;
}

/* A format-2 file header with the given salt and sealed length. */
DSKVS_LOCAL void dskvs__file_hdr_encode(unsigned char out[DSKVS_FILE_HDR],
                                        uint32_t salt, uint64_t sealed);
/* A record header; `salt` is the file's (0 for format 1). */
DSKVS_LOCAL void dskvs__rec_hdr_encode(unsigned char out[DSKVS_REC_HDR],
                                       uint32_t salt, unsigned op,
                                       unsigned flags, uint32_t batch,
                                       const char *key, size_t klen,
                                       const void *val, size_t vlen,
                                       uint64_t seq);

/* A read window over the log: a buffer refilled with pread (through the
 * I/O seam, so a media error is an error code, never a signal), or a
 * caller's buffer. Owned by one thread. */
#define DSKVS_WIN_BYTES ((size_t)8 << 20)
struct dskvs__win {
	int fd;                   /* -1 for a memory source */
	const unsigned char *mem; /* memory source, or NULL */
	uint64_t size;            /* bytes in the source */
	unsigned char *buf;       /* pread buffer */
	size_t cap;
	uint64_t start; /* buf (or mem) holds [start, start + len) */
	size_t len;
	int err;          /* -errno of the failed read, or 0 */
	uint64_t err_off; /* where it failed */
};
DSKVS_LOCAL void dskvs__win_init_fd(struct dskvs__win *w, int fd,
                                    uint64_t size);
DSKVS_LOCAL void dskvs__win_init_mem(struct dskvs__win *w, const void *buf,
                                     uint64_t size);
DSKVS_LOCAL void dskvs__win_free(struct dskvs__win *w);
/* Bytes [off, off + n) of the source, valid until the next call on w; NULL
 * when they are not all there (w->err == 0: the source ends first; else
 * the read failed). */
DSKVS_LOCAL const unsigned char *dskvs__win_fill(struct dskvs__win *w,
                                                 uint64_t off, size_t n);
static inline const unsigned char *dskvs__win_get(struct dskvs__win *w,
                                                  uint64_t off, size_t n)
{
	if (DSKVS_LIKELY(off >= w->start && n <= w->len &&
	                 off - w->start <= w->len - n))
		return (w->mem ? w->mem : w->buf) + (off - w->start);
	return dskvs__win_fill(w, off, n);
}

/* One decoded record; key and val point into the window (valid until the
 * next scanner call). */
struct dskvs__rec {
	unsigned op, flags;
	uint32_t batch;
	const char *key;
	size_t klen;
	const void *val;
	size_t vlen;
	uint64_t seq;
	uint64_t off;  /* offset of the record in the file */
	uint64_t size; /* header + key + value */
};

/*
 * The scanner: walks a log's records in file order and decides, at the
 * first damage, between a torn tail and damage to synced data (format.c).
 * Set up `w` with dskvs__win_init_*, then dskvs__scan_header, then
 * dskvs__scan_next until it stops returning DSKVS__SCAN_REC.
 */
struct dskvs__scan {
	struct dskvs__win w;
	unsigned major, minor;
	uint32_t salt;
	uint64_t sealed; /* end of the part known synced whole */
	uint64_t off;    /* next record */
	uint64_t max_seq;
	uint32_t last_batch;
	bool last_ended;
	bool ordered;      /* sequence numbers must rise from here on */
	bool in_sealed;    /* the last damage lies in the sealed part */
	bool after_damage; /* set by dskvs__scan_resync: see scan_next */
	uint64_t skip_to;  /* where a resync after the last damage starts */
	/* End of the batch of writes (DSKVS_REC_GRP) checked whole, whose
	 * records are being handed out; 0 when none. */
	uint64_t grp_end;
	uint64_t records;
	/* After a result other than DSKVS__SCAN_REC: */
	const char *why;    /* what is wrong, a phrase */
	uint64_t bad_off;   /* where (the record, or the failed read) */
	uint64_t proof_off; /* CORRUPT: the record that proves the batch
	                       was synced, or 0 */
	uint64_t work;      /* bytes checksummed (tests: linear time) */
};
enum {
	DSKVS__SCAN_REC = 1,     /* *r holds the next record */
	DSKVS__SCAN_END,         /* clean end of the file */
	DSKVS__SCAN_TORN,        /* [off, size) is a torn tail */
	DSKVS__SCAN_CORRUPT,     /* damage at bad_off, or impossible record */
	DSKVS__SCAN_EIO,         /* read failed at bad_off */
	DSKVS__SCAN_TORN_HEADER, /* header: a file cut short while created */
};
/* Check the file header; returns DSKVS_OK, DSKVS__SCAN_TORN_HEADER, or a
 * DSKVS_E* code with the thread's detail set (names `file`). */
DSKVS_LOCAL int dskvs__scan_header(struct dskvs__scan *sc, const char *file);
DSKVS_LOCAL int dskvs__scan_next(struct dskvs__scan *sc, struct dskvs__rec *r);
/* Decode the header at p (offset off) of a record a scan already
 * checked, checking its salted checksum again (false: the bytes changed
 * since). Sets every field of r but key and val. */
DSKVS_LOCAL bool dskvs__rec_hdr_read(const unsigned char *p, uint32_t salt,
                                     uint64_t off, struct dskvs__rec *r);
/* After DSKVS__SCAN_CORRUPT (verify only): move to the next whole valid
 * record after the damage; returns its offset, or the size of the source
 * if there is none. */
DSKVS_LOCAL uint64_t dskvs__scan_resync(struct dskvs__scan *sc);

/* The failure dskvs__scan_next reported (k: DSKVS__SCAN_CORRUPT or
 * DSKVS__SCAN_EIO) as DSKVS_ECORRUPT or DSKVS_EIO, with the thread's
 * detail naming `file`, the offset, and the proof of sync if there is one. */
DSKVS_LOCAL int dskvs__scan_failure(const struct dskvs__scan *sc, int k,
                                    const char *file);

/* The k-th name for the torn tail cut at `off` (DSKVS_TORN_PREFIX). */
#define DSKVS_TORN_MAX_TRIES 1000
DSKVS_LOCAL void dskvs__torn_name(uint64_t off, unsigned k, char *name,
                                  size_t cap);
/* The first of those names that does not exist in dirfd: 0, or -errno
 * (-EEXIST when all are taken). */
DSKVS_LOCAL int dskvs__torn_name_free(int dirfd, uint64_t off, char *name,
                                      size_t cap);

/* A random salt for a new log file. */
DSKVS_LOCAL uint32_t dskvs__new_salt(void);

#endif

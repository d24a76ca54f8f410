/*
 * A minimal encoder of the log format version 1.0, written from the format
 * comment at the top of src/log.c (not from its encoder), so that the tests
 * can hand-craft logs that today's library writes, and logs it never would:
 * records with valid checksums but impossible sequence numbers, or inputs
 * shaped to make recovery slow.
 */
#ifndef DSKVS_V1LOG_H
#define DSKVS_V1LOG_H

#include <stddef.h>
#include <stdint.h>

#define V1_FILE_HDR 32
#define V1_REC_HDR  32
#define V1_PUT      1
#define V1_DEL      2
#define V1_DELALL   3
#define V1_END      1 /* record flag: last record of its batch */

/* A log being built in memory. */
struct v1log {
	unsigned char *buf;
	size_t len, cap;
};

/* Start a log: the 32-byte file header (version 1.0, flags 0). */
void v1_init(struct v1log *l);
/* Append a record with valid checksums. key is NUL-terminated; val may be
 * NULL when vlen is 0. */
void v1_rec(struct v1log *l, unsigned op, unsigned flags, uint32_t batch,
            const char *key, const void *val, size_t vlen, uint64_t seq);
/* Write the log to path (created or replaced). */
void v1_write(const struct v1log *l, const char *path);
void v1_free(struct v1log *l);

/*
 * A log of total_bytes shaped to make a scan for "the next valid record"
 * quadratic: a valid header, one valid record (batch 1), one record header
 * with a bad checksum, then back-to-back 32-byte record headers, each with
 * a valid header checksum, op put, key length 1, a value length reaching
 * the end of the file (capped at 64 MiB), a wrong data checksum, batch 1;
 * zeros fill what is left. Written to path.
 */
void v1_crafted_quadratic(const char *path, size_t total_bytes);

#endif

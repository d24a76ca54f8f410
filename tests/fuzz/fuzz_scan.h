/*
 * The input language of fuzz_scan (fuzz_scan.c), shared with the seed
 * generator make_corpus_scan.c.
 */
#ifndef DSKVS_FUZZ_SCAN_H
#define DSKVS_FUZZ_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* First byte of an input: bit 0 clear, the rest of the input is a log as
 * it is; bit 0 set, the rest describes a log (the instructions below) that
 * the harness encodes with valid checksums. Bits 1-2 of a description's
 * first byte choose the file header. */
#define FS_MODE_RAW 0x00
#define FS_MODE_V2  0x01 /* format 2, salt from the next 4 bytes */
#define FS_MODE_V2K 0x03 /* format 2, salt 0x12345678 */
#define FS_MODE_V1  0x05 /* format 1 (salt 0, no sealed length) */
#define FS_MODE_V20 0x07 /* format 2 with salt 0 */

/* Instructions: one byte, low nibble the kind, high nibble its flags. */
enum {
	FS_REC = 0,    /* 0..5: a record, see fuzz_scan.c */
	FS_MARK = 6,   /* a mark */
	FS_RAW = 7,    /* a record from 24 raw header bytes */
	FS_FLIP = 8,   /* damage: xor one byte */
	FS_TRUNC = 9,  /* damage: cut bytes off the end */
	FS_GARB = 10,  /* damage: append garbage */
	FS_EMBED = 11, /* a put whose value holds a copy of a record */
	FS_COPY = 12,  /* a verbatim copy of an earlier record */
	FS_SEAL = 13,  /* set the sealed length, rewrite the file header */
	FS_FORGE = 14, /* a put whose value holds a made-up record image */
	FS_HDR = 15,   /* change file header fields */
};

/* The log an input stands for: for a raw input, data + 1; for a
 * description, a buffer owned by the harness (valid until the next call).
 * *clean is set when the description holds no damage and breaks no rule,
 * so that the scanner must return every record and end cleanly. */
const unsigned char *fuzz_scan_log(const uint8_t *data, size_t size,
                                   size_t *len, int *clean);

#endif

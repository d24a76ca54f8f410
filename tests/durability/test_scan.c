/*
 * The scanner (src/format.c) costs time linear in the log's size on any
 * input, crafted or not. It counts the bytes it checksums (sc.work); this
 * test builds inputs shaped against it and checks that count against the
 * input's size, for recovery's walk (stop at the first damage) and verify's
 * (resync after each damage and go on). No timing: the count is the
 * measure, exact and the same on every machine.
 *
 * The inputs, each at 1 and 8 MiB:
 *  - format 1, v1_crafted_quadratic: one damaged record, then back-to-back
 *    headers with valid header checksums, each claiming a value up to the
 *    end of the file with a wrong data checksum (the old scan checksummed
 *    the rest of the file for each of them: quadratic);
 *  - format 2, the same shape with the file's salt;
 *  - format 2, back-to-back valid headers claiming 64-byte values with bad
 *    data (verify's resync must skip each, not re-read it);
 *  - format 2, every byte position a plausible header start (op byte and
 *    reserved bytes pass the cheap filters) with a bad checksum;
 *  - from a review: overlapping records with valid checksums and bad keys,
 *    and marks with holes between them (each hole damage, the last mark a
 *    proof): both were quadratic in verify's walk;
 *  - the three format-2 inputs again with the whole file sealed, so that
 *    every damage is refused and verify resyncs after each one.
 * Then the outcome of recovery and verify on a crafted file through the
 * public API, with the real pread window.
 */
#include "dt.h"
#include "internal.h"
#include "v1log.h"

#include <string.h>

/* Work per input byte at most: a position looked at counts 1, a header
 * checksum 28, a data checksum its bytes; 28 for a header checksum at
 * every position of the proof search or a resync, once more for the
 * records, plus the data of records whose header was valid. */
#define WORK_PER_BYTE 64

static uint64_t walk(const unsigned char *buf, size_t len, bool resync,
                     int *first)
{
	struct dskvs__scan sc;
	struct dskvs__rec r;
	memset(&sc, 0, sizeof(sc));
	dskvs__win_init_mem(&sc.w, buf, len);
	DT_CHECK(dskvs__scan_header(&sc, "crafted") == DSKVS_OK, "header");
	*first = 0;
	for (;;) {
		int k = dskvs__scan_next(&sc, &r);
		if (k == DSKVS__SCAN_REC)
			continue;
		if (*first == 0)
			*first = k;
		if (k != DSKVS__SCAN_CORRUPT || !resync)
			break;
		if (dskvs__scan_resync(&sc) >= len)
			break;
	}
	return sc.work;
}

static void check_linear(const char *what, const unsigned char *buf, size_t len)
{
	int f1, f2;
	uint64_t w1 = walk(buf, len, false, &f1);
	uint64_t w2 = walk(buf, len, true, &f2);
	printf("%-34s %5zu KiB: recovery checksums %.2f B/B, verify %.2f "
	       "B/B\n",
	       what, len >> 10, (double)w1 / (double)len,
	       (double)w2 / (double)len);
	DT_CHECK(w1 <= WORK_PER_BYTE * (uint64_t)len + 4096,
	         "%s: recovery checksummed %llu bytes of a %zu-byte input",
	         what, (unsigned long long)w1, len);
	DT_CHECK(w2 <= WORK_PER_BYTE * (uint64_t)len + 4096,
	         "%s: verify checksummed %llu bytes of a %zu-byte input", what,
	         (unsigned long long)w2, len);
	DT_CHECK(f1 == f2,
	         "%s: recovery and verify disagree on the first "
	         "damage",
	         what);
}

/* The sealed length of the format-2 inputs: with the whole file sealed,
 * every damage is damage to synced data, so verify resyncs after each one
 * and walks the whole input. */
static size_t sealed_len;

static unsigned char *v2_header(size_t len, uint32_t salt)
{
	unsigned char *b = calloc(1, len);
	DT_CHECK(b != NULL, "out of memory");
	dskvs__file_hdr_encode(b, salt,
	                       sealed_len ? sealed_len : DSKVS_FILE_HDR);
	return b;
}

/* A valid record at off; returns its end. */
static size_t put_rec(unsigned char *b, size_t off, uint32_t salt,
                      uint32_t batch, uint64_t seq, size_t vlen)
{
	const char *key = "c/m";
	dskvs__rec_hdr_encode(b + off, salt, DSKVS_REC_PUT, DSKVS_REC_END,
	                      batch, key, 3, b + off + DSKVS_REC_HDR + 3, vlen,
	                      seq);
	memcpy(b + off + DSKVS_REC_HDR, key, 3);
	/* The checksum above covered the value bytes as they are now. */
	return off + DSKVS_REC_HDR + 3 + vlen;
}

/* Back-to-back headers with valid checksums over bad data, each claiming
 * `vlen` (0: up to the end of the file, capped at DSKVS_VALUE_MAX). */
static unsigned char *v2_crafted(size_t len, size_t vlen)
{
	uint32_t salt = 0x12345678u;
	unsigned char *b = v2_header(len, salt);
	size_t off = put_rec(b, DSKVS_FILE_HDR, salt, 1, 1, 8);
	memset(b + off, 0xa5, DSKVS_REC_HDR); /* a damaged header */
	off += DSKVS_REC_HDR;
	for (uint64_t seq = 2; off + DSKVS_REC_HDR <= len; seq++) {
		size_t v = vlen ? vlen : len - off - DSKVS_REC_HDR - 1;
		if (v > DSKVS_VALUE_MAX)
			v = DSKVS_VALUE_MAX;
		unsigned char hdr[DSKVS_REC_HDR];
		/* Same batch, so no header is proof of a sync, and each is
		 * a candidate the scan must look at. */
		dskvs__rec_hdr_encode(hdr, salt, DSKVS_REC_PUT, 0, 1, "x", 1,
		                      NULL, 0, seq);
		/* Claim v bytes of value, keeping the header checksum valid
		 * and the data checksum wrong. */
		hdr[16] = (unsigned char)v;
		hdr[17] = (unsigned char)(v >> 8);
		hdr[18] = (unsigned char)(v >> 16);
		hdr[19] = (unsigned char)(v >> 24);
		uint32_t c = dskvs__crc32c(salt, hdr + 4, DSKVS_REC_HDR - 4);
		memcpy(hdr, &c, 4);
		memcpy(b + off, hdr, DSKVS_REC_HDR);
		off += vlen ? DSKVS_REC_HDR + 1 + vlen : DSKVS_REC_HDR;
	}
	return b;
}

/* Every byte a plausible header start that fails its checksum. */
static unsigned char *v2_plausible_everywhere(size_t len)
{
	unsigned char *b = v2_header(len, 7);
	size_t off = put_rec(b, DSKVS_FILE_HDR, 7, 1, 1, 8);
	/* Bytes 8..11 of a header at any position q read b[q+8..q+11]: with
	 * every byte 1 after the record, the op is 1 (put) but the reserved
	 * bytes are not 0; with a period of 4 (1,0,0,0) some positions pass
	 * the filters everywhere. Use the period that passes most. */
	for (size_t i = off; i < len; i++)
		b[i] = (i % 4 == 0) ? 1 : 0;
	return b;
}

/* From the review of the scanner: records every 32 bytes, each with a
 * valid header and a data checksum valid over the rest of the file, and a
 * malformed key (checksums valid, content impossible). */
static unsigned char *overlapping_invalid(size_t len)
{
	uint32_t salt = 0x12345678u;
	unsigned char *b = v2_header(len, salt);
	size_t k = (len - 32 - 1) / 32, end = 32 + k * 32 + 1;
	b[end - 1] = 'x';
	for (size_t i = k; i-- > 0;) {
		size_t off = 32 + i * 32, vlen = end - off - 33;
		dskvs__rec_hdr_encode(b + off, salt, DSKVS_REC_PUT, 0, 1,
		                      (const char *)b + off + 32, 1,
		                      b + off + 33, vlen, 1);
	}
	return b;
}

/* Also from the review: [mark, batch 5][32 zero bytes] repeated, then a
 * mark of batch 6: every zero block is damage, and a proof search from
 * each to the end would be quadratic. */
static unsigned char *marks_and_holes(size_t len)
{
	uint32_t salt = 0x12345678u;
	unsigned char *b = v2_header(len, salt);
	size_t off = 32;
	while (off + 96 <= len) {
		dskvs__rec_hdr_encode(b + off, salt, DSKVS_REC_MARK, 0, 5, NULL,
		                      0, NULL, 0, 7);
		off += 64;
	}
	dskvs__rec_hdr_encode(b + off, salt, DSKVS_REC_MARK, 0, 6, NULL, 0,
	                      NULL, 0, 8);
	return b;
}

int main(void)
{
	static const size_t sizes[] = { 1u << 20, 8u << 20 };
	char *dir = dt_mkdtemp("scan");
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);

	dt_seed("test_scan", 0);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t len = sizes[k], n;
		v1_crafted_quadratic(log, len);
		unsigned char *b = dt_read_file(log, &n);
		DT_CHECK(b != NULL && n == len, "v1 crafted");
		check_linear("format 1, headers to the end", b, len);
		free(b);
		b = v2_crafted(len, 0);
		check_linear("format 2, headers to the end", b, len);
		free(b);
		b = v2_crafted(len, 64);
		check_linear("format 2, 64-byte bad records", b, len);
		free(b);
		b = v2_plausible_everywhere(len);
		check_linear("format 2, plausible everywhere", b, len);
		free(b);
		if (k == 0) {
			/* Building it costs quadratic time (each record's
			 * data checksum covers the rest): 256 KiB only. */
			b = overlapping_invalid(256u << 10);
			check_linear("overlapping valid, bad keys", b,
			             256u << 10);
			free(b);
		}
		b = marks_and_holes(len);
		check_linear("marks and holes", b, len);
		free(b);
		sealed_len = len;
		b = v2_crafted(len, 0);
		check_linear("sealed, headers to the end", b, len);
		free(b);
		b = v2_crafted(len, 64);
		check_linear("sealed, 64-byte bad records", b, len);
		free(b);
		b = v2_plausible_everywhere(len);
		check_linear("sealed, plausible everywhere", b, len);
		free(b);
		sealed_len = 0;
	}

	/* Through the public API: the crafted format-1 file holds damage in
	 * its only batch and nothing of a later batch: a torn tail. */
	v1_crafted_quadratic(log, 4u << 20);
	dskvs_verify_report rep;
	DT_RC(dskvs_verify(dir, NULL, NULL, &rep), DSKVS_OK);
	DT_CHECK(rep.torn_tail == 1 && rep.records == 1,
	         "verify: torn %d, %llu "
	         "records",
	         rep.torn_tail, (unsigned long long)rep.records);
	dskvs *s = NULL;
	DT_RC(dskvs_open(dir, NULL, &s), DSKVS_OK);
	DT_RC(dskvs_close(s), DSKVS_OK);
	dt_rmtree(dir);
	free(log);
	free(dir);
	printf("scan: ok\n");
	return 0;
}

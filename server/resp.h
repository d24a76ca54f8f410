/*
 * The RESP layer of dskvs-server: an incremental request parser and a reply
 * writer. Neither knows about sockets, threads or the store, so the fuzz
 * target (server/fuzz/fuzz_resp.c) drives the parser exactly as a
 * connection does.
 *
 * Requests
 * --------
 * Two forms, as Redis accepts them:
 *   multibulk  "*<n>\r\n" then n times "$<len>\r\n<len bytes>\r\n";
 *   inline     one line of words split on blanks, with "..." (C escapes,
 *              \xHH) and '...' (only \' ) quoting, ended by "\n" or "\r\n".
 * The parser works on the connection's input buffer in place: an argument is
 * an offset and a length into that buffer (inline quoting is undone in
 * place, which only ever shrinks the text). It keeps its position between
 * calls, so bytes are looked at once however the request is split across
 * reads.
 *
 * Bounds (each refused with Redis's protocol error, after which the
 * connection must reply and close):
 *   RESP_INLINE_MAX    an inline request, or a "*<n>" / "$<len>" line, not
 *                      terminated within 64 KiB ("too big inline request",
 *                      "too big mbulk count string", "too big bulk count
 *                      string"), as Redis's PROTO_INLINE_MAX_SIZE;
 *   RESP_MBULK_MAX     more than 1,048,576 arguments ("invalid multibulk
 *                      length"), Redis 7.0's limit; the argument array
 *                      grows as arguments arrive, so a large count costs
 *                      nothing until the arguments are sent;
 *   bulk_max           a bulk over DSKVS_VALUE_MAX (the server passes it)
 *                      is refused on its "$<len>" line, before its bytes are
 *                      read ("invalid bulk length");
 *   unauthenticated    before AUTH on a server with a password, 10
 *                      arguments and 16 KiB bulks at most (Redis 7.0's
 *                      "unauthenticated multibulk length" / "... bulk
 *                      length"), so that a stranger cannot make the server
 *                      buffer megabytes.
 * The total size of one request is bounded by the caller (see
 * RESP_QUERY_MAX in server.h).
 */
#ifndef DSKVS_SERVER_RESP_H
#define DSKVS_SERVER_RESP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define RESP_INLINE_MAX (64u * 1024u)
#define RESP_MBULK_MAX  (1024 * 1024)
/* Limits before authentication (Redis 7.0's values). */
#define RESP_UNAUTH_MBULK_MAX 10
#define RESP_UNAUTH_BULK_MAX  16384

typedef struct resp_arg {
	size_t off; /* offset in the input buffer */
	size_t len;
} resp_arg;

typedef struct resp_parser {
	/* Where the current request starts and where parsing stands, as
	 * offsets in the caller's buffer. */
	size_t start;
	size_t pos;
	/* Multibulk state: 0 between requests; otherwise arguments still to
	 * come (mb_left) and the length of the bulk being read (-1: its
	 * "$<len>" line is next). */
	int in_mbulk;
	long long mb_left;
	long long bulk_len;
	/* The arguments of the request being parsed. */
	resp_arg *argv;
	size_t argc, argcap;
	/* Bytes the parser needs in the buffer, counted from `start`, before
	 * it can make progress (a hint for sizing reads of large bulks). */
	size_t want;
	/* Limits, set by the owner: the largest bulk, and whether the
	 * unauthenticated limits apply. */
	size_t bulk_max;
	int unauth;
} resp_parser;

enum {
	RESP_MORE = 0, /* need more bytes */
	RESP_REQ = 1,  /* a whole request: argv[0..argc) */
	RESP_ERR = 2,  /* protocol error: *err says which */
	RESP_NOMEM = 3,
};

void resp_parser_init(resp_parser *p, size_t bulk_max);
void resp_parser_free(resp_parser *p);

/*
 * Parse on from p->pos in buf[0..len). Returns RESP_REQ with the request's
 * arguments in p->argv (argc may be 0 for an empty inline line or a
 * multibulk of count <= 0: the caller just skips it), RESP_MORE, RESP_ERR
 * with *err the full error line ("ERR Protocol error: ..."), or
 * RESP_NOMEM. buf is modified in place (inline unquoting). Precondition:
 * buf[0..p->pos) is what the previous calls saw, unchanged.
 */
int resp_parse(resp_parser *p, char *buf, size_t len, const char **err);

/* After RESP_REQ has been handled: start the next request at p->pos. */
void resp_parser_next(resp_parser *p);

/* The caller dropped the first `n` bytes of its buffer (n <= p->start):
 * shift every offset. */
void resp_parser_rebase(resp_parser *p, size_t n);

/* ---- replies ---------------------------------------------------------- */

/*
 * A growing output buffer: bytes [sent, len) are still to be written.
 * A failed allocation sets `oom` and drops the rest of the reply; the
 * connection is then closed by its owner (the reply would be garbage).
 */
typedef struct resp_out {
	char *buf;
	size_t len, cap, sent;
	int proto; /* 2 or 3 */
	int oom;
} resp_out;

void resp_out_free(resp_out *o);
/* Room for n more bytes at o->buf + o->len, or NULL (o->oom set). */
char *resp_out_reserve(resp_out *o, size_t n);
/* Drop what was sent; keep the buffer small once it is drained. */
void resp_out_compact(resp_out *o);
static inline size_t resp_out_pending(const resp_out *o)
{
	return o->len - o->sent;
}

void resp_raw(resp_out *o, const void *p, size_t n);
void resp_simple(resp_out *o, const char *s);
/* "-<text>\r\n": text is printf-formatted; CR and LF become spaces. */
void resp_error(resp_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void resp_verror(resp_out *o, const char *fmt, va_list ap);
void resp_int(resp_out *o, long long v);
void resp_bulk(resp_out *o, const void *p, size_t n);
void resp_bulk_cstr(resp_out *o, const char *s);
/* Bulk header "$<n>\r\n" then n bytes to be written by the caller at the
 * returned pointer, then "\r\n"; NULL on oom. */
char *resp_bulk_reserve(resp_out *o, size_t n);
void resp_null(resp_out *o);       /* $-1 / _ */
void resp_null_array(resp_out *o); /* *-1 / _ */
void resp_array(resp_out *o, size_t n);
void resp_map(resp_out *o, size_t n); /* RESP2: array of 2n */
void resp_set(resp_out *o, size_t n); /* RESP2: array */
void resp_double(resp_out *o, double d);
void resp_bool(resp_out *o, int b);
/* A verbatim string (RESP3 "=<n>\r\ntxt:..."), a bulk in RESP2. */
void resp_verbatim(resp_out *o, const char *p, size_t n);

/* Redis's textual forms of numbers. */
int resp_ll2str(char *buf, long long v); /* returns length */
/* Parse a whole buffer as a long long exactly as Redis's string2ll: no
 * blanks, no '+', no leading zeros. 1 on success. */
int resp_str2ll(const char *p, size_t n, long long *out);
/* Parse a long double as Redis's string2ld (strtold, whole buffer, no
 * blanks, not NaN). 1 on success. */
int resp_str2ld(const char *p, size_t n, long double *out);
/* Format as Redis's ld2string in human mode (%.17Lf, trailing zeros
 * dropped). Returns the length, 0 when it does not fit. */
int resp_ld2str(char *buf, size_t cap, long double v);

#endif

/*
 * The text codecs of the dskvs tool: strict UTF-8 checking, JSON strings,
 * base64, the escaped text of human-readable output, and a parser for the
 * one-level JSON objects of a dump line.
 *
 * Nothing here knows about stores; codec_test.c exercises it alone.
 */
#ifndef DSKVS_TOOL_CODEC_H
#define DSKVS_TOOL_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer. Allocation failure is fatal (the tool prints a
 * message and exits 3): a tool with no memory left cannot do anything
 * useful, and threading ENOMEM through every formatter would bury the logic. */
struct cbuf {
	char *p;
	size_t len, cap;
};

void cbuf_reserve(struct cbuf *b, size_t extra);
void cbuf_put(struct cbuf *b, const void *p, size_t n);
void cbuf_putc(struct cbuf *b, char c);
void cbuf_puts(struct cbuf *b, const char *s);
void cbuf_free(struct cbuf *b);

/* Length of the well-formed UTF-8 sequence at p[0..n) (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0 if there is
 * none. */
size_t utf8_seq_len(const unsigned char *p, size_t n);
/* 1 if all of p[0..n) is well-formed UTF-8. */
int utf8_valid(const void *p, size_t n);

/* Append p[0..n), which must be valid UTF-8, as a quoted JSON string.
 * Control characters and DEL are escaped, everything else is copied, so the
 * result is plain JSON that any parser maps back to the same bytes. */
void json_put_string(struct cbuf *b, const void *p, size_t n);

/* Standard base64 (RFC 4648 section 4) with padding. */
void base64_put(struct cbuf *b, const void *p, size_t n);
/* Decode in[0..n) into out (which may equal in: the output is never longer
 * than the input). Padding is optional, whitespace is not allowed. Returns
 * the decoded length, or -1 if the text is not base64. */
long long base64_decode(const char *in, size_t n, char *out);

/* Append p[0..n) for a human reader on one line: valid UTF-8 text is copied,
 * '\\' '\t' '\n' '\r' become \\ \t \n \r, and every byte of any other
 * control character (C0, DEL, C1) or of invalid UTF-8 becomes \xHH. The
 * result holds no tab, newline or terminal escape, so it is safe in columns
 * and on a terminal, and a reader can still recover the bytes. */
void text_put_escaped(struct cbuf *b, const void *p, size_t n);

/* Append one dump record line, '\n' included:
 *   {"key":"...","value":"..."}  with key_b64 / value_b64 for the parts
 * that are not valid UTF-8. */
void dump_put_record(struct cbuf *b, const char *key, size_t klen,
                     const void *val, size_t vlen);

/* One field of a parsed JSON object. Strings are decoded in place in the
 * parsed line and NUL-terminated there (they may hold NUL bytes themselves;
 * use len). Numbers, true, false and null keep their source text. */
enum json_type { JSON_STRING, JSON_NUMBER, JSON_TRUE, JSON_FALSE, JSON_NULL };

struct json_field {
	char *name;
	size_t name_len;
	enum json_type type;
	char *val;
	size_t len;
};

/*
 * Parse line[0..n), one JSON object whose values are strings, numbers,
 * true, false or null (no nested objects or arrays), surrounded by optional
 * whitespace. Decodes in place, destroying the line. Returns the number of
 * fields stored in f[0..max), or -1 with *err set to a static sentence and
 * *col to the 1-based byte column where the problem is. A repeated field
 * name and more than max fields are errors.
 */
int json_parse_object(char *line, size_t n, struct json_field *f, int max,
                      const char **err, size_t *col);

/* Parse a JSON number field holding an integer 0 .. 2^63-1. Returns 0 and
 * sets *out, or -1. */
int json_to_u64(const struct json_field *f, uint64_t *out);

#endif /* DSKVS_TOOL_CODEC_H */

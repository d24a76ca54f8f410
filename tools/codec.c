/*
 * Text codecs of the dskvs tool; see codec.h.
 *
 * The dump format has to carry arbitrary bytes through JSON, which can only
 * hold Unicode text. The rule is simple enough to state in the man page:
 * bytes that are well-formed UTF-8 travel as a JSON string, anything else as
 * base64. That makes "well-formed" load-bearing: a lenient check would let
 * through byte strings (overlong forms, surrogates) that other JSON tools
 * reject or rewrite, so utf8_seq_len() follows RFC 3629 exactly.
 */
#include "codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(void)
{
	/* 3 is the tool's "store error" status; see dskvs.1. */
	fputs("dskvs: out of memory\n", stderr);
	exit(3);
}

void cbuf_reserve(struct cbuf *b, size_t extra)
{
	size_t want, cap;
	char *p;

	if (extra > SIZE_MAX - b->len - 1)
		oom();
	want = b->len + extra + 1; /* room for a terminating NUL */
	if (want <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	p = realloc(b->p, cap);
	if (!p)
		oom();
	b->p = p;
	b->cap = cap;
}

void cbuf_put(struct cbuf *b, const void *p, size_t n)
{
	cbuf_reserve(b, n);
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void cbuf_putc(struct cbuf *b, char c)
{
	cbuf_put(b, &c, 1);
}

void cbuf_puts(struct cbuf *b, const char *s)
{
	cbuf_put(b, s, strlen(s));
}

void cbuf_free(struct cbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- UTF-8 ---------------------------------------------------------------
 *
 * The well-formed sequences (RFC 3629, section 4):
 *   00..7F
 *   C2..DF 80..BF
 *   E0 A0..BF 80..BF | E1..EC 80..BF 80..BF | ED 80..9F 80..BF
 *   EE..EF 80..BF 80..BF
 *   F0 90..BF 80..BF 80..BF | F1..F3 80..BF 80..BF 80..BF
 *   F4 80..8F 80..BF 80..BF
 */
size_t utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c, lo = 0x80, hi = 0xBF;
	size_t len, i;

	if (n == 0)
		return 0;
	c = p[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0; /* no overlong forms */
		else if (c == 0xED)
			hi = 0x9F; /* no UTF-16 surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90; /* no overlong forms */
		else if (c == 0xF4)
			hi = 0x8F; /* nothing above U+10FFFF */
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return len;
}

int utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0, l;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		l = utf8_seq_len(s + i, n - i);
		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

static const char hexdig[] = "0123456789abcdef";

void json_put_string(struct cbuf *b, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i, run = 0;
	char esc[6] = { '\\', 'u', '0', '0', 0, 0 };

	cbuf_reserve(b, n + 2);
	cbuf_putc(b, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];
		const char *rep = NULL;

		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
			continue;
		/* Flush the plain run before this byte. */
		cbuf_put(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"':
			rep = "\\\"";
			break;
		case '\\':
			rep = "\\\\";
			break;
		case '\b':
			rep = "\\b";
			break;
		case '\f':
			rep = "\\f";
			break;
		case '\n':
			rep = "\\n";
			break;
		case '\r':
			rep = "\\r";
			break;
		case '\t':
			rep = "\\t";
			break;
		default:
			esc[4] = hexdig[c >> 4];
			esc[5] = hexdig[c & 15];
			cbuf_put(b, esc, 6);
			continue;
		}
		cbuf_puts(b, rep);
	}
	cbuf_put(b, s + run, n - run);
	cbuf_putc(b, '"');
}

/* ---- base64 ------------------------------------------------------------- */

static const char b64dig[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_put(struct cbuf *b, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;
	char *o;

	cbuf_reserve(b, (n + 2) / 3 * 4);
	o = b->p + b->len;
	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v =
		    (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		*o++ = b64dig[v >> 18];
		*o++ = b64dig[(v >> 12) & 63];
		*o++ = b64dig[(v >> 6) & 63];
		*o++ = b64dig[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;
		*o++ = b64dig[v >> 18];
		*o++ = b64dig[(v >> 12) & 63];
		*o++ = '=';
		*o++ = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
		*o++ = b64dig[v >> 18];
		*o++ = b64dig[(v >> 12) & 63];
		*o++ = b64dig[(v >> 6) & 63];
		*o++ = '=';
	}
	b->len = (size_t)(o - b->p);
	b->p[b->len] = '\0';
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long long base64_decode(const char *in, size_t n, char *out)
{
	size_t i, o = 0, pad = 0, full;
	uint32_t v = 0;
	int bits = 0;

	while (pad < 2 && n > 0 && in[n - 1] == '=') {
		n--;
		pad++;
	}
	/* With padding the text is whole quartets; without, a lone sixth
	 * character can never encode a byte. */
	if (pad && (n + pad) % 4 != 0)
		return -1;
	if (n % 4 == 1)
		return -1;
	full = n;
	for (i = 0; i < full; i++) {
		int d = b64val((unsigned char)in[i]);
		if (d < 0)
			return -1;
		v = v << 6 | (uint32_t)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			/* o < i always holds here, so decoding in place never
			 * overwrites a character not yet read. */
			out[o++] = (char)(v >> bits & 0xff);
		}
	}
	return (long long)o;
}

/* ---- escaped text for people -------------------------------------------- */

static void put_hex_byte(struct cbuf *b, unsigned char c)
{
	char e[4] = { '\\', 'x', hexdig[c >> 4], hexdig[c & 15] };
	cbuf_put(b, e, 4);
}

void text_put_escaped(struct cbuf *b, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0, l;

	cbuf_reserve(b, n);
	while (i < n) {
		unsigned char c = s[i];

		if (c < 0x80) {
			switch (c) {
			case '\\':
				cbuf_put(b, "\\\\", 2);
				break;
			case '\t':
				cbuf_put(b, "\\t", 2);
				break;
			case '\n':
				cbuf_put(b, "\\n", 2);
				break;
			case '\r':
				cbuf_put(b, "\\r", 2);
				break;
			default:
				if (c < 0x20 || c == 0x7f)
					put_hex_byte(b, c);
				else
					cbuf_putc(b, (char)c);
			}
			i++;
			continue;
		}
		l = utf8_seq_len(s + i, n - i);
		if (l == 0) {
			put_hex_byte(b, c);
			i++;
		} else if (l == 2 && c == 0xC2 && s[i + 1] < 0xA0) {
			/* C1 controls (U+0080..U+009F): some terminals act on
			 * them (U+009B is CSI). */
			put_hex_byte(b, c);
			put_hex_byte(b, s[i + 1]);
			i += 2;
		} else {
			cbuf_put(b, s + i, l);
			i += l;
		}
	}
}

void dump_put_record(struct cbuf *b, const char *key, size_t klen,
                     const void *val, size_t vlen)
{
	if (utf8_valid(key, klen)) {
		cbuf_puts(b, "{\"key\":");
		json_put_string(b, key, klen);
	} else {
		cbuf_puts(b, "{\"key_b64\":\"");
		base64_put(b, key, klen);
		cbuf_putc(b, '"');
	}
	if (utf8_valid(val, vlen)) {
		cbuf_puts(b, ",\"value\":");
		json_put_string(b, val, vlen);
	} else {
		cbuf_puts(b, ",\"value_b64\":\"");
		base64_put(b, val, vlen);
		cbuf_putc(b, '"');
	}
	cbuf_put(b, "}\n", 2);
}

/* ---- JSON object parser ------------------------------------------------- */

struct jp {
	char *s;
	size_t n, i;
	const char *err;
};

static void skip_ws(struct jp *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
	                       p->s[p->i] == '\n' || p->s[p->i] == '\r'))
		p->i++;
}

static int fail(struct jp *p, const char *err)
{
	p->err = err;
	return -1;
}

static int hex4(struct jp *p, unsigned *out)
{
	unsigned v = 0;
	size_t k;

	if (p->n - p->i < 4)
		return fail(p, "truncated \\u escape");
	for (k = 0; k < 4; k++) {
		char c = p->s[p->i + k];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return fail(p, "bad hex digit in \\u escape");
	}
	p->i += 4;
	*out = v;
	return 0;
}

/* Write code point cp as UTF-8 at *dst. An escape is never shorter than
 * what it decodes to (\uXXXX is 6 bytes for at most 3, a surrogate pair 12
 * for 4), so in-place decoding stays behind the read position. */
static char *put_utf8(char *dst, unsigned cp)
{
	if (cp < 0x80) {
		*dst++ = (char)cp;
	} else if (cp < 0x800) {
		*dst++ = (char)(0xC0 | cp >> 6);
		*dst++ = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		*dst++ = (char)(0xE0 | cp >> 12);
		*dst++ = (char)(0x80 | (cp >> 6 & 0x3F));
		*dst++ = (char)(0x80 | (cp & 0x3F));
	} else {
		*dst++ = (char)(0xF0 | cp >> 18);
		*dst++ = (char)(0x80 | (cp >> 12 & 0x3F));
		*dst++ = (char)(0x80 | (cp >> 6 & 0x3F));
		*dst++ = (char)(0x80 | (cp & 0x3F));
	}
	return dst;
}

/* Parse the string starting at the '"' at p->i; decode it in place. */
static int parse_string(struct jp *p, char **out, size_t *len)
{
	char *start, *dst;

	p->i++; /* opening quote */
	start = dst = p->s + p->i;
	for (;;) {
		unsigned char c;

		if (p->i >= p->n)
			return fail(p, "unterminated string");
		c = (unsigned char)p->s[p->i];
		if (c == '"') {
			p->i++;
			break;
		}
		if (c < 0x20)
			return fail(p, "unescaped control character in string");
		if (c >= 0x80) {
			size_t l = utf8_seq_len((unsigned char *)p->s + p->i,
			                        p->n - p->i);
			if (!l)
				return fail(p,
				            "invalid UTF-8 in string (binary "
				            "data goes in a *_b64 field)");
			memmove(dst, p->s + p->i, l);
			dst += l;
			p->i += l;
			continue;
		}
		if (c != '\\') {
			*dst++ = (char)c;
			p->i++;
			continue;
		}
		if (++p->i >= p->n)
			return fail(p, "unterminated string");
		c = (unsigned char)p->s[p->i++];
		switch (c) {
		case '"':
		case '\\':
		case '/':
			*dst++ = (char)c;
			break;
		case 'b':
			*dst++ = '\b';
			break;
		case 'f':
			*dst++ = '\f';
			break;
		case 'n':
			*dst++ = '\n';
			break;
		case 'r':
			*dst++ = '\r';
			break;
		case 't':
			*dst++ = '\t';
			break;
		case 'u': {
			unsigned cp, lo;

			if (hex4(p, &cp))
				return -1;
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return fail(p, "unpaired UTF-16 surrogate");
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (p->n - p->i < 2 || p->s[p->i] != '\\' ||
				    p->s[p->i + 1] != 'u')
					return fail(p, "unpaired UTF-16 "
					               "surrogate");
				p->i += 2;
				if (hex4(p, &lo))
					return -1;
				if (lo < 0xDC00 || lo > 0xDFFF)
					return fail(p, "unpaired UTF-16 "
					               "surrogate");
				cp = 0x10000 + ((cp - 0xD800) << 10) +
				     (lo - 0xDC00);
			}
			dst = put_utf8(dst, cp);
			break;
		}
		default:
			p->i--;
			return fail(p, "invalid escape in string");
		}
	}
	*len = (size_t)(dst - start);
	*dst = '\0'; /* at most where the closing quote was */
	*out = start;
	return 0;
}

static int parse_number(struct jp *p)
{
	size_t d;

	if (p->i < p->n && p->s[p->i] == '-')
		p->i++;
	if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
		return fail(p, "invalid number");
	if (p->s[p->i] == '0') {
		p->i++;
	} else {
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	}
	if (p->i < p->n && p->s[p->i] == '.') {
		p->i++;
		for (d = 0;
		     p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9'; d++)
			p->i++;
		if (!d)
			return fail(p, "invalid number");
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		for (d = 0;
		     p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9'; d++)
			p->i++;
		if (!d)
			return fail(p, "invalid number");
	}
	return 0;
}

static int parse_literal(struct jp *p, const char *word)
{
	size_t l = strlen(word);

	if (p->n - p->i < l || memcmp(p->s + p->i, word, l) != 0)
		return fail(p, "expected a string, number, true, false or "
		               "null");
	p->i += l;
	return 0;
}

static int parse_value(struct jp *p, struct json_field *f)
{
	char c;

	if (p->i >= p->n)
		return fail(p, "missing value");
	c = p->s[p->i];
	f->val = p->s + p->i;
	switch (c) {
	case '"':
		f->type = JSON_STRING;
		return parse_string(p, &f->val, &f->len);
	case 't':
		f->type = JSON_TRUE;
		break;
	case 'f':
		f->type = JSON_FALSE;
		break;
	case 'n':
		f->type = JSON_NULL;
		break;
	case '{':
	case '[':
		return fail(p, "nested objects and arrays are not part of "
		               "the format");
	default:
		f->type = JSON_NUMBER;
		if (parse_number(p))
			return -1;
		f->len = (size_t)(p->s + p->i - f->val);
		return 0;
	}
	if (parse_literal(p, c == 't' ? "true" : c == 'f' ? "false" : "null"))
		return -1;
	f->len = (size_t)(p->s + p->i - f->val);
	return 0;
}

static int parse_object(struct jp *p, struct json_field *f, int max)
{
	int nf = 0, k;

	skip_ws(p);
	if (p->i >= p->n || p->s[p->i] != '{')
		return fail(p, "expected '{'");
	p->i++;
	skip_ws(p);
	if (p->i < p->n && p->s[p->i] == '}') {
		p->i++;
		goto end;
	}
	for (;;) {
		struct json_field tmp;
		size_t at;

		if (p->i >= p->n || p->s[p->i] != '"')
			return fail(p, "expected a field name in quotes");
		at = p->i;
		if (parse_string(p, &tmp.name, &tmp.name_len))
			return -1;
		for (k = 0; k < nf; k++) {
			if (f[k].name_len == tmp.name_len &&
			    memcmp(f[k].name, tmp.name, tmp.name_len) == 0) {
				p->i = at;
				return fail(p, "repeated field name");
			}
		}
		skip_ws(p);
		if (p->i >= p->n || p->s[p->i] != ':')
			return fail(p, "expected ':'");
		p->i++;
		skip_ws(p);
		if (parse_value(p, &tmp))
			return -1;
		if (nf == max) {
			p->i = at;
			return fail(p, "too many fields");
		}
		f[nf++] = tmp;
		skip_ws(p);
		if (p->i < p->n && p->s[p->i] == ',') {
			p->i++;
			skip_ws(p);
			continue;
		}
		if (p->i < p->n && p->s[p->i] == '}') {
			p->i++;
			break;
		}
		return fail(p, "expected ',' or '}'");
	}
end:
	skip_ws(p);
	if (p->i != p->n)
		return fail(p, "text after the closing '}'");
	return nf;
}

int json_parse_object(char *line, size_t n, struct json_field *f, int max,
                      const char **err, size_t *col)
{
	struct jp p = { line, n, 0, NULL };
	int r = parse_object(&p, f, max);

	if (r < 0) {
		*err = p.err;
		*col = p.i + 1;
	}
	return r;
}

int json_to_u64(const struct json_field *f, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (f->type != JSON_NUMBER || f->len == 0 || f->len > 19)
		return -1;
	for (i = 0; i < f->len; i++) {
		if (f->val[i] < '0' || f->val[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(f->val[i] - '0');
	}
	if (v > (uint64_t)INT64_MAX)
		return -1;
	*out = v;
	return 0;
}

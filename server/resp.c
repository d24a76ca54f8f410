/*
 * RESP request parser and reply writer; resp.h says what each does and the
 * bounds the parser keeps.
 */
#include "resp.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parser ------------------------------------------------------------ */

void resp_parser_init(resp_parser *p, size_t bulk_max)
{
	memset(p, 0, sizeof(*p));
	p->bulk_len = -1;
	p->bulk_max = bulk_max;
}

void resp_parser_free(resp_parser *p)
{
	free(p->argv);
	p->argv = NULL;
	p->argc = p->argcap = 0;
}

void resp_parser_next(resp_parser *p)
{
	p->start = p->pos;
	p->argc = 0;
	p->in_mbulk = 0;
	p->mb_left = 0;
	p->bulk_len = -1;
	p->want = 0;
	/* A request with many arguments must not pin a large array for the
	 * rest of the connection's life. */
	if (p->argcap > 1024) {
		free(p->argv);
		p->argv = NULL;
		p->argcap = 0;
	}
}

void resp_parser_rebase(resp_parser *p, size_t n)
{
	p->start -= n;
	p->pos -= n;
	for (size_t i = 0; i < p->argc; i++)
		p->argv[i].off -= n;
}

static int push_arg(resp_parser *p, size_t off, size_t len)
{
	if (p->argc == p->argcap) {
		size_t ncap = p->argcap ? p->argcap * 2 : 8;
		resp_arg *v = realloc(p->argv, ncap * sizeof(*v));
		if (v == NULL)
			return -1;
		p->argv = v;
		p->argcap = ncap;
	}
	p->argv[p->argc].off = off;
	p->argv[p->argc].len = len;
	p->argc++;
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

/* Does the closing quote at buf[i] end its word, as Redis requires (the
 * line, a NUL or a blank follows it)? */
static int quote_ends_word(const char *buf, size_t i, size_t e)
{
	return i + 1 >= e || buf[i + 1] == '\0' ||
	       is_blank((unsigned char)buf[i + 1]);
}

/*
 * Split the inline line buf[s..e) into words, unquoting in place. The line
 * ends early at a NUL byte, as Redis's C-string splitter does. Returns 0,
 * 1 for unbalanced quotes, -1 for no memory.
 */
static int split_inline(resp_parser *p, char *buf, size_t s, size_t e)
{
	size_t i = s;

	for (;;) {
		while (i < e && buf[i] != '\0' &&
		       is_blank((unsigned char)buf[i]))
			i++;
		if (i >= e || buf[i] == '\0')
			return 0;
		size_t w = i; /* write position: never passes i */
		size_t start = w;
		int inq = 0, insq = 0, done = 0;
		while (!done) {
			if (i >= e || buf[i] == '\0') {
				if (inq || insq)
					return 1;
				done = 1;
			} else if (inq) {
				if (buf[i] == '\\' && i + 3 < e &&
				    buf[i + 1] == 'x' &&
				    hexval((unsigned char)buf[i + 2]) >= 0 &&
				    hexval((unsigned char)buf[i + 3]) >= 0) {
					buf[w++] =
					    (char)(hexval((unsigned char)
					                      buf[i + 2]) *
					               16 +
					           hexval((unsigned char)
					                      buf[i + 3]));
					i += 4;
				} else if (buf[i] == '\\' && i + 1 < e &&
				           buf[i + 1] != '\0') {
					char c = buf[i + 1];
					switch (c) {
					case 'n':
						c = '\n';
						break;
					case 'r':
						c = '\r';
						break;
					case 't':
						c = '\t';
						break;
					case 'b':
						c = '\b';
						break;
					case 'a':
						c = '\a';
						break;
					default:
						break;
					}
					buf[w++] = c;
					i += 2;
				} else if (buf[i] == '"') {
					if (!quote_ends_word(buf, i, e))
						return 1;
					i++;
					done = 1;
				} else {
					buf[w++] = buf[i++];
				}
			} else if (insq) {
				if (buf[i] == '\\' && i + 1 < e &&
				    buf[i + 1] == '\'') {
					buf[w++] = '\'';
					i += 2;
				} else if (buf[i] == '\'') {
					if (!quote_ends_word(buf, i, e))
						return 1;
					i++;
					done = 1;
				} else {
					buf[w++] = buf[i++];
				}
			} else {
				char c = buf[i];
				if (is_blank((unsigned char)c)) {
					done = 1;
				} else if (c == '"') {
					inq = 1;
					i++;
				} else if (c == '\'') {
					insq = 1;
					i++;
				} else {
					buf[w++] = c;
					i++;
				}
			}
		}
		if (push_arg(p, start, w - start) < 0)
			return -1;
	}
}

/* Find "\r\n"-terminated line from `from`; returns the offset of '\r' or
 * (size_t)-1 when the line is not complete yet. Like Redis, the line ends
 * at the first '\r', which must be followed by '\n' once it has arrived
 * (anything else there is taken as the terminator's second byte). */
static size_t find_cr(const char *buf, size_t from, size_t len)
{
	const char *cr = memchr(buf + from, '\r', len - from);
	if (cr == NULL)
		return (size_t)-1;
	size_t at = (size_t)(cr - buf);
	if (at + 1 >= len)
		return (size_t)-1;
	return at;
}

static int parse_inline(resp_parser *p, char *buf, size_t len, const char **err)
{
	const char *nl = memchr(buf + p->pos, '\n', len - p->pos);
	if (nl == NULL) {
		if (len - p->start > RESP_INLINE_MAX) {
			*err = "ERR Protocol error: too big inline request";
			return RESP_ERR;
		}
		p->pos = len; /* looked at: no newline yet */
		return RESP_MORE;
	}
	size_t e = (size_t)(nl - buf);
	if (e - p->start > RESP_INLINE_MAX) {
		*err = "ERR Protocol error: too big inline request";
		return RESP_ERR;
	}
	size_t end = e;
	if (end > p->start && buf[end - 1] == '\r')
		end--;
	int rc = split_inline(p, buf, p->start, end);
	if (rc < 0)
		return RESP_NOMEM;
	if (rc > 0) {
		*err = "ERR Protocol error: unbalanced quotes in request";
		return RESP_ERR;
	}
	p->pos = e + 1;
	return RESP_REQ;
}

int resp_parse(resp_parser *p, char *buf, size_t len, const char **err)
{
	*err = NULL;
	if (!p->in_mbulk) {
		if (p->pos >= len)
			return RESP_MORE;
		if (buf[p->start] != '*')
			return parse_inline(p, buf, len, err);
		/* "*<count>\r\n" */
		size_t cr = find_cr(buf, p->start, len);
		if (cr == (size_t)-1) {
			if (len - p->start > RESP_INLINE_MAX) {
				*err = "ERR Protocol error: too big mbulk "
				       "count string";
				return RESP_ERR;
			}
			p->pos = len;
			return RESP_MORE;
		}
		if (cr - p->start > RESP_INLINE_MAX) {
			*err = "ERR Protocol error: too big mbulk count string";
			return RESP_ERR;
		}
		long long n;
		if (!resp_str2ll(buf + p->start + 1, cr - p->start - 1, &n) ||
		    n > RESP_MBULK_MAX) {
			*err = "ERR Protocol error: invalid multibulk length";
			return RESP_ERR;
		}
		if (n > RESP_UNAUTH_MBULK_MAX && p->unauth) {
			*err = "ERR Protocol error: unauthenticated multibulk "
			       "length";
			return RESP_ERR;
		}
		p->pos = cr + 2;
		if (n <= 0)
			return RESP_REQ; /* empty request, skipped */
		p->in_mbulk = 1;
		p->mb_left = n;
		p->bulk_len = -1;
	}
	while (p->mb_left > 0) {
		if (p->bulk_len < 0) {
			if (p->pos >= len)
				return RESP_MORE;
			size_t cr = find_cr(buf, p->pos, len);
			if (cr == (size_t)-1) {
				if (len - p->pos > RESP_INLINE_MAX) {
					*err = "ERR Protocol error: too big "
					       "bulk count string";
					return RESP_ERR;
				}
				return RESP_MORE;
			}
			if (cr - p->pos > RESP_INLINE_MAX) {
				*err = "ERR Protocol error: too big bulk count "
				       "string";
				return RESP_ERR;
			}
			if (buf[p->pos] != '$') {
				static __thread char msg[64];
				char c = buf[p->pos];
				snprintf(msg, sizeof(msg),
				         "ERR Protocol error: expected '$', "
				         "got '%c'",
				         c == '\0' ? ' ' : c);
				*err = msg;
				return RESP_ERR;
			}
			long long bl;
			if (!resp_str2ll(buf + p->pos + 1, cr - p->pos - 1,
			                 &bl) ||
			    bl < 0 || (unsigned long long)bl > p->bulk_max) {
				*err =
				    "ERR Protocol error: invalid bulk length";
				return RESP_ERR;
			}
			if (bl > RESP_UNAUTH_BULK_MAX && p->unauth) {
				*err = "ERR Protocol error: unauthenticated "
				       "bulk length";
				return RESP_ERR;
			}
			p->bulk_len = bl;
			p->pos = cr + 2;
		}
		/* The bulk's bytes and its "\r\n" (not checked, as Redis). */
		size_t need = (size_t)p->bulk_len + 2;
		if (len - p->pos < need) {
			p->want = p->pos + need - p->start;
			return RESP_MORE;
		}
		if (push_arg(p, p->pos, (size_t)p->bulk_len) < 0)
			return RESP_NOMEM;
		p->pos += need;
		p->bulk_len = -1;
		p->mb_left--;
	}
	p->in_mbulk = 0;
	p->want = 0;
	return RESP_REQ;
}

/* ---- numbers ---------------------------------------------------------- */

int resp_ll2str(char *buf, long long v)
{
	char tmp[24];
	unsigned long long u =
	    v < 0 ? (unsigned long long)(-(v + 1)) + 1 : (unsigned long long)v;
	int n = 0;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	int k = 0;
	if (v < 0)
		buf[k++] = '-';
	while (n)
		buf[k++] = tmp[--n];
	buf[k] = '\0';
	return k;
}

int resp_str2ll(const char *p, size_t n, long long *out)
{
	if (n == 0 || n > 20)
		return 0;
	if (n == 1 && p[0] == '0') {
		*out = 0;
		return 1;
	}
	size_t i = 0;
	int neg = 0;
	if (p[0] == '-') {
		neg = 1;
		i = 1;
		if (n == 1)
			return 0;
	}
	if (p[i] < '1' || p[i] > '9')
		return 0;
	unsigned long long v = 0;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		unsigned d = (unsigned)(p[i] - '0');
		if (v > (~0ull - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	if (neg) {
		if (v > (unsigned long long)LLONG_MAX + 1)
			return 0;
		*out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN
		                                              : -(long long)v;
	} else {
		if (v > (unsigned long long)LLONG_MAX)
			return 0;
		*out = (long long)v;
	}
	return 1;
}

int resp_str2ld(const char *p, size_t n, long double *out)
{
	char buf[5120];
	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, p, n);
	buf[n] = '\0';
	if (isspace((unsigned char)buf[0]))
		return 0;
	char *end;
	errno = 0;
	long double v = strtold(buf, &end);
	if ((size_t)(end - buf) != n || isnan(v))
		return 0;
	if (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0))
		return 0;
	*out = v;
	return 1;
}

int resp_ld2str(char *buf, size_t cap, long double v)
{
	if (isinf(v)) {
		int l = snprintf(buf, cap, "%s", v > 0 ? "inf" : "-inf");
		return l < 0 || (size_t)l >= cap ? 0 : l;
	}
	int l = snprintf(buf, cap, "%.17Lf", v);
	if (l < 0 || (size_t)l >= cap)
		return 0;
	if (strchr(buf, '.') != NULL) {
		while (l > 0 && buf[l - 1] == '0')
			l--;
		if (l > 0 && buf[l - 1] == '.')
			l--;
		buf[l] = '\0';
	}
	if (l == 2 && buf[0] == '-' && buf[1] == '0') {
		buf[0] = '0';
		buf[1] = '\0';
		l = 1;
	}
	return l;
}

/* ---- replies ---------------------------------------------------------- */

void resp_out_free(resp_out *o)
{
	free(o->buf);
	o->buf = NULL;
	o->len = o->cap = o->sent = 0;
}

char *resp_out_reserve(resp_out *o, size_t n)
{
	if (o->oom)
		return NULL;
	if (o->cap - o->len < n) {
		/* Reclaim the sent prefix before growing. */
		if (o->sent > 0) {
			memmove(o->buf, o->buf + o->sent, o->len - o->sent);
			o->len -= o->sent;
			o->sent = 0;
		}
		if (o->cap - o->len < n) {
			size_t ncap = o->cap ? o->cap : 4096;
			while (ncap - o->len < n) {
				if (ncap > ((size_t)-1) / 2) {
					o->oom = 1;
					return NULL;
				}
				ncap *= 2;
			}
			char *b = realloc(o->buf, ncap);
			if (b == NULL) {
				o->oom = 1;
				return NULL;
			}
			o->buf = b;
			o->cap = ncap;
		}
	}
	return o->buf + o->len;
}

void resp_out_compact(resp_out *o)
{
	if (o->sent == o->len) {
		o->sent = o->len = 0;
		/* A large reply must not pin its buffer. */
		if (o->cap > 256 * 1024) {
			free(o->buf);
			o->buf = NULL;
			o->cap = 0;
		}
	}
}

void resp_raw(resp_out *o, const void *p, size_t n)
{
	if (n == 0)
		return; /* p may be NULL (an empty scratch buffer) */
	char *w = resp_out_reserve(o, n);
	if (w == NULL)
		return;
	memcpy(w, p, n);
	o->len += n;
}

static void prefix_num(resp_out *o, char c, long long v)
{
	char *w = resp_out_reserve(o, 24);
	if (w == NULL)
		return;
	w[0] = c;
	int l = resp_ll2str(w + 1, v);
	w[l + 1] = '\r';
	w[l + 2] = '\n';
	o->len += (size_t)l + 3;
}

void resp_simple(resp_out *o, const char *s)
{
	size_t n = strlen(s);
	char *w = resp_out_reserve(o, n + 3);
	if (w == NULL)
		return;
	w[0] = '+';
	memcpy(w + 1, s, n);
	w[n + 1] = '\r';
	w[n + 2] = '\n';
	o->len += n + 3;
}

void resp_verror(resp_out *o, const char *fmt, va_list ap)
{
	char tmp[512];
	int l = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	if (l < 0)
		l = 0;
	if ((size_t)l >= sizeof(tmp))
		l = sizeof(tmp) - 1;
	for (int i = 0; i < l; i++)
		if (tmp[i] == '\r' || tmp[i] == '\n')
			tmp[i] = ' ';
	char *w = resp_out_reserve(o, (size_t)l + 3);
	if (w == NULL)
		return;
	w[0] = '-';
	memcpy(w + 1, tmp, (size_t)l);
	w[l + 1] = '\r';
	w[l + 2] = '\n';
	o->len += (size_t)l + 3;
}

void resp_error(resp_out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	resp_verror(o, fmt, ap);
	va_end(ap);
}

void resp_int(resp_out *o, long long v)
{
	prefix_num(o, ':', v);
}

char *resp_bulk_reserve(resp_out *o, size_t n)
{
	char *w = resp_out_reserve(o, n + 26);
	if (w == NULL)
		return NULL;
	w[0] = '$';
	int l = resp_ll2str(w + 1, (long long)n);
	w[l + 1] = '\r';
	w[l + 2] = '\n';
	char *data = w + l + 3;
	data[n] = '\r';
	data[n + 1] = '\n';
	o->len += (size_t)l + 3 + n + 2;
	return data;
}

void resp_bulk(resp_out *o, const void *p, size_t n)
{
	char *d = resp_bulk_reserve(o, n);
	if (d != NULL && n > 0)
		memcpy(d, p, n);
}

void resp_bulk_cstr(resp_out *o, const char *s)
{
	resp_bulk(o, s, strlen(s));
}

void resp_null(resp_out *o)
{
	if (o->proto >= 3)
		resp_raw(o, "_\r\n", 3);
	else
		resp_raw(o, "$-1\r\n", 5);
}

void resp_null_array(resp_out *o)
{
	if (o->proto >= 3)
		resp_raw(o, "_\r\n", 3);
	else
		resp_raw(o, "*-1\r\n", 5);
}

void resp_array(resp_out *o, size_t n)
{
	prefix_num(o, '*', (long long)n);
}

void resp_map(resp_out *o, size_t n)
{
	if (o->proto >= 3)
		prefix_num(o, '%', (long long)n);
	else
		prefix_num(o, '*', (long long)(2 * n));
}

void resp_set(resp_out *o, size_t n)
{
	prefix_num(o, o->proto >= 3 ? '~' : '*', (long long)n);
}

void resp_double(resp_out *o, double d)
{
	char tmp[64];
	int l;
	if (isinf(d))
		l = snprintf(tmp, sizeof(tmp), "%s", d > 0 ? "inf" : "-inf");
	else
		l = snprintf(tmp, sizeof(tmp), "%.17g", d);
	if (l < 0)
		return;
	if (o->proto >= 3) {
		resp_raw(o, ",", 1);
		resp_raw(o, tmp, (size_t)l);
		resp_raw(o, "\r\n", 2);
	} else {
		resp_bulk(o, tmp, (size_t)l);
	}
}

void resp_bool(resp_out *o, int b)
{
	if (o->proto >= 3)
		resp_raw(o, b ? "#t\r\n" : "#f\r\n", 4);
	else
		resp_int(o, b ? 1 : 0);
}

void resp_verbatim(resp_out *o, const char *p, size_t n)
{
	if (o->proto < 3) {
		resp_bulk(o, p, n);
		return;
	}
	prefix_num(o, '=', (long long)(n + 4));
	resp_raw(o, "txt:", 4);
	resp_raw(o, p, n);
	resp_raw(o, "\r\n", 2);
}

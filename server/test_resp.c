/*
 * Criterion tests of the RESP layer (server/resp.c): requests split at
 * every byte, inline quoting, each protocol error and bound, and the reply
 * encodings in RESP2 and RESP3.
 */
#include "resp.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse all of in[0..n) fed in pieces of `step` bytes (0: whole); write
 * each request's arguments space-separated, requests '|'-separated, into
 * out. Returns the protocol error or NULL. */
static const char *parse_all(const char *in, size_t n, size_t step,
                             size_t bulk_max, int unauth, char *out, size_t cap)
{
	resp_parser p;
	resp_parser_init(&p, bulk_max);
	p.unauth = unauth;
	char *buf = malloc(n + 1);
	size_t len = 0, off = 0;
	const char *err = NULL;
	out[0] = '\0';
	cr_assert_not_null(buf);
	while (off < n && err == NULL) {
		size_t k = step == 0 || step > n - off ? n - off : step;
		memcpy(buf + len, in + off, k);
		len += k;
		off += k;
		for (;;) {
			int rc = resp_parse(&p, buf, len, &err);
			if (rc == RESP_MORE)
				break;
			cr_assert_neq(rc, RESP_NOMEM);
			if (rc == RESP_ERR)
				break;
			for (size_t i = 0; i < p.argc; i++) {
				strncat(out, buf + p.argv[i].off,
				        p.argv[i].len < cap - strlen(out) - 2
				            ? p.argv[i].len
				            : 0);
				if (i + 1 < p.argc)
					strcat(out, " ");
			}
			strcat(out, "|");
			resp_parser_next(&p);
		}
		if (p.start > 0) {
			memmove(buf, buf + p.start, len - p.start);
			len -= p.start;
			resp_parser_rebase(&p, p.start);
		}
	}
	free(buf);
	resp_parser_free(&p);
	return err;
}

static void check(const char *in, const char *want_reqs, const char *want_err)
{
	char out[4096];
	for (size_t step = 0; step <= 7; step++) {
		const char *err =
		    parse_all(in, strlen(in), step, 1024, 0, out, sizeof(out));
		cr_assert_str_eq(out, want_reqs, "step %zu: requests", step);
		if (want_err)
			cr_assert(err && !strcmp(err, want_err),
			          "step %zu: error '%s', want '%s'", step,
			          err ? err : "(none)", want_err);
		else
			cr_assert_null(err, "step %zu: error %s", step, err);
	}
}

Test(resp, multibulk_pipeline_at_every_split)
{
	check("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv v\r\n*1\r\n$4\r\nPING\r\n",
	      "SET k v v|PING|", NULL);
}

Test(resp, empty_requests_are_skipped)
{
	check("*0\r\n*-10\r\n\r\n   \r\n*1\r\n$4\r\nPING\r\n", "||||PING|",
	      NULL);
}

Test(resp, inline_quoting)
{
	check("set \"a\\x41\\n\" 'it\\'s' plain\r\n", "set aA\n it's plain|",
	      NULL);
	check("echo \"\"\n", "echo |", NULL);
}

Test(resp, protocol_errors)
{
	check("*3000000000\r\n", "",
	      "ERR Protocol error: invalid multibulk length");
	check("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", "",
	      "ERR Protocol error: expected '$', got 'f'");
	check("*1\r\n$-10\r\n", "", "ERR Protocol error: invalid bulk length");
	check("*1\r\n$blabla\r\n", "",
	      "ERR Protocol error: invalid bulk length");
	check("*1\r\n$1025\r\n", "", "ERR Protocol error: invalid bulk length");
	check("set \"\"\"k\"\"\" v\r\nping\r\n", "",
	      "ERR Protocol error: unbalanced quotes in request");
	check("ping\r\nset 'a\r\n", "ping|",
	      "ERR Protocol error: unbalanced quotes in request");
}

Test(resp, bulk_exactly_at_the_limit)
{
	char *in = malloc(2000);
	int n = sprintf(in, "*1\r\n$1024\r\n");
	memset(in + n, 'x', 1024);
	memcpy(in + n + 1024, "\r\n", 2);
	char *out = malloc(4096);
	cr_assert_null(
	    parse_all(in, (size_t)n + 1026, 100, 1024, 0, out, 4096));
	cr_assert_eq(strlen(out), 1025);
	free(in);
	free(out);
}

Test(resp, unterminated_lines_are_bounded)
{
	size_t n = RESP_INLINE_MAX + 10;
	char *in = malloc(n + 8);
	char out[64];
	memset(in, 'A', n);
	cr_assert_str_eq(parse_all(in, n, 4096, 1024, 0, out, sizeof(out)),
	                 "ERR Protocol error: too big inline request");
	in[0] = '*';
	cr_assert_str_eq(parse_all(in, n, 4096, 1024, 0, out, sizeof(out)),
	                 "ERR Protocol error: too big mbulk count string");
	memcpy(in, "*1\r\n$", 5);
	cr_assert_str_eq(parse_all(in, n, 4096, 1024, 0, out, sizeof(out)),
	                 "ERR Protocol error: too big bulk count string");
	free(in);
}

Test(resp, unauthenticated_limits)
{
	char out[256];
	const char *in = "*11\r\n";
	cr_assert_str_eq(
	    parse_all(in, strlen(in), 0, 1 << 20, 1, out, sizeof(out)),
	    "ERR Protocol error: unauthenticated multibulk length");
	in = "*1\r\n$16385\r\n";
	cr_assert_str_eq(
	    parse_all(in, strlen(in), 0, 1 << 20, 1, out, sizeof(out)),
	    "ERR Protocol error: unauthenticated bulk length");
	cr_assert_null(
	    parse_all(in, strlen(in), 0, 1 << 20, 0, out, sizeof(out)));
}

static void out_is(resp_out *o, const char *want)
{
	cr_assert_eq(o->len, strlen(want), "got %.*s", (int)o->len, o->buf);
	cr_assert(!memcmp(o->buf, want, o->len), "got %.*s", (int)o->len,
	          o->buf);
	resp_out_free(o);
}

Test(resp, replies_resp2_and_resp3)
{
	for (int proto = 2; proto <= 3; proto++) {
		resp_out o = { .proto = proto };
		resp_null(&o);
		resp_map(&o, 1);
		resp_set(&o, 2);
		resp_double(&o, 1.5);
		resp_bool(&o, 1);
		resp_verbatim(&o, "ab", 2);
		out_is(
		    &o,
		    proto == 2
		        ? "$-1\r\n*2\r\n*2\r\n$3\r\n1.5\r\n:1\r\n$2\r\nab\r\n"
		        : "_\r\n%1\r\n~2\r\n,1.5\r\n#t\r\n=6\r\ntxt:ab\r\n");
	}
	resp_out o = { .proto = 2 };
	resp_error(&o, "ERR a\r\nb %d", 7);
	resp_int(&o, -9223372036854775807LL - 1);
	resp_bulk(&o, "", 0);
	out_is(&o, "-ERR a  b 7\r\n:-9223372036854775808\r\n$0\r\n\r\n");
}

Test(resp, numbers_as_redis)
{
	long long v;
	cr_assert(resp_str2ll("-9223372036854775808", 20, &v) &&
	          v == -9223372036854775807LL - 1);
	cr_assert(!resp_str2ll("9223372036854775808", 19, &v));
	cr_assert(!resp_str2ll("01", 2, &v));
	cr_assert(!resp_str2ll(" 1", 2, &v));
	cr_assert(!resp_str2ll("+1", 2, &v));
	cr_assert(!resp_str2ll("-", 1, &v));
	cr_assert(resp_str2ll("0", 1, &v) && v == 0);
	long double d;
	cr_assert(resp_str2ld("10.5", 4, &d) && d == 10.5L);
	cr_assert(!resp_str2ld(" 1", 2, &d));
	cr_assert(!resp_str2ld("nan", 3, &d));
	cr_assert(!resp_str2ld("1x", 2, &d));
	char b[64];
	cr_assert_str_eq((resp_ld2str(b, sizeof(b), 10.5L), b), "10.5");
	cr_assert_str_eq((resp_ld2str(b, sizeof(b), 3.0L), b), "3");
	cr_assert_str_eq((resp_ld2str(b, sizeof(b), -0.0L), b), "0");
}

/*
 * Tests of the tool's text codecs (codec.c) on their own: the dump format
 * depends on them mapping every byte string to JSON and back exactly.
 * Deterministic (fixed seeds), a few milliseconds. Exit status 0 on success.
 */
#include "codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			        __LINE__, #cond);                              \
			failures++;                                            \
		}                                                              \
	} while (0)

/* xorshift64*: a fixed sequence, so a failure reproduces. */
static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static unsigned rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (unsigned)((rng * 0x2545F4914F6CDD1Dull) >> 32);
}

static void test_utf8(void)
{
	static const struct {
		const char *s;
		size_t n;
		int ok;
	} cases[] = {
		{ "", 0, 1 },
		{ "plain ascii", 11, 1 },
		{ "\xc3\xa9", 2, 1 },         /* e acute */
		{ "\xe2\x82\xac", 3, 1 },     /* euro sign */
		{ "\xf0\x9f\x98\x80", 4, 1 }, /* U+1F600 */
		{ "\xf4\x8f\xbf\xbf", 4, 1 }, /* U+10FFFF */
		{ "\x00", 1, 1 },             /* NUL is text */
		{ "\xc0\x80", 2, 0 },         /* overlong NUL */
		{ "\xc1\xbf", 2, 0 },         /* overlong */
		{ "\xe0\x80\xaf", 3, 0 },     /* overlong '/' */
		{ "\xed\xa0\x80", 3, 0 },     /* surrogate D800 */
		{ "\xed\xbf\xbf", 3, 0 },     /* surrogate DFFF */
		{ "\xf0\x80\x80\x80", 4, 0 }, /* overlong */
		{ "\xf4\x90\x80\x80", 4, 0 }, /* above U+10FFFF */
		{ "\xf5\x80\x80\x80", 4, 0 }, /* bad lead byte */
		{ "\xff", 1, 0 },
		{ "\x80", 1, 0 },     /* lone continuation */
		{ "\xe2\x82", 2, 0 }, /* truncated */
		{ "a\xc3", 2, 0 },    /* truncated at end */
		{ "\xc3\x28", 2, 0 }, /* bad continuation */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (utf8_valid(cases[i].s, cases[i].n) != cases[i].ok) {
			fprintf(stderr, "utf8 case %zu wrong\n", i);
			failures++;
		}
	}
}

static void test_base64(void)
{
	static const char *vec[][2] = {
		{ "", "" },
		{ "f", "Zg==" },
		{ "fo", "Zm8=" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	static const char *bad[] = { "Z",     "Zg=",   "Zg===", "Z===",
		                     "Zm9v!", "Zm 9v", "=Zm9",  "Zm=v" };
	struct cbuf b = { 0 };
	char out[512], in[512];

	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		b.len = 0;
		base64_put(&b, vec[i][0], strlen(vec[i][0]));
		CHECK(b.len == strlen(vec[i][1]) &&
		      memcmp(b.p, vec[i][1], b.len) == 0);
		CHECK(base64_decode(vec[i][1], strlen(vec[i][1]), out) ==
		      (long long)strlen(vec[i][0]));
		CHECK(memcmp(out, vec[i][0], strlen(vec[i][0])) == 0);
	}
	/* Padding is optional on input. */
	CHECK(base64_decode("Zm8", 3, out) == 2 && memcmp(out, "fo", 2) == 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(base64_decode(bad[i], strlen(bad[i]), out) < 0);
	/* Random round trips, decoded in place. */
	for (int t = 0; t < 2000; t++) {
		size_t n = rnd() % 300;
		for (size_t i = 0; i < n; i++)
			in[i] = (char)rnd();
		b.len = 0;
		base64_put(&b, in, n);
		CHECK(base64_decode(b.p, b.len, b.p) == (long long)n);
		CHECK(memcmp(b.p, in, n) == 0);
	}
	cbuf_free(&b);
}

/* Random bytes biased towards the interesting ones: controls, quotes,
 * backslashes, multi-byte sequences and invalid bytes. */
static size_t random_bytes(char *p, size_t max)
{
	static const char *pieces[] = { "\"",
		                        "\\",
		                        "\n",
		                        "\t",
		                        "\x01",
		                        "\x7f",
		                        "\xc3\xa9",
		                        "\xe2\x82\xac",
		                        "\xf0\x9f\x98\x80",
		                        "\xc2\x9b",
		                        "/",
		                        "\xff",
		                        "\xed\xa0\x80",
		                        "a",
		                        "\0" };
	size_t n = 0, want = rnd() % max;

	while (n < want) {
		const char *s = pieces[rnd() % 15];
		size_t l = s[0] ? strlen(s) : 1;
		if (n + l > max)
			break;
		memcpy(p + n, s, l);
		n += l;
	}
	return n;
}

static void test_json_roundtrip(void)
{
	struct cbuf b = { 0 };
	struct json_field f[8];
	const char *err;
	size_t col;
	char s[256];

	for (int t = 0; t < 5000; t++) {
		size_t n = random_bytes(s, sizeof(s));
		int nf;

		if (!utf8_valid(s, n))
			continue;
		b.len = 0;
		cbuf_puts(&b, "{\"v\":");
		json_put_string(&b, s, n);
		cbuf_puts(&b, "}\n");
		/* The output is plain printable JSON: no raw controls. */
		for (size_t i = 0; i < b.len - 1; i++)
			CHECK((unsigned char)b.p[i] >= 0x20 && b.p[i] != 0x7f);
		nf = json_parse_object(b.p, b.len, f, 8, &err, &col);
		CHECK(nf == 1);
		if (nf == 1)
			CHECK(f[0].type == JSON_STRING && f[0].len == n &&
			      memcmp(f[0].val, s, n) == 0);
	}
	cbuf_free(&b);
}

static void test_dump_record(void)
{
	struct cbuf b = { 0 };
	struct json_field f[8];
	const char *err;
	size_t col;
	char key[256], val[256];

	b.len = 0;
	dump_put_record(&b, "a/b", 3, "x\"y", 3);
	CHECK(strcmp(b.p, "{\"key\":\"a/b\",\"value\":\"x\\\"y\"}\n") == 0);
	b.len = 0;
	dump_put_record(&b, "img/\xff", 5, "\x89PNG", 4);
	CHECK(strcmp(b.p, "{\"key_b64\":\"aW1nL/8=\",\"value_b64\":"
	                  "\"iVBORw==\"}\n") == 0);
	b.len = 0;
	dump_put_record(&b, "e/", 2, "", 0);
	CHECK(strcmp(b.p, "{\"key\":\"e/\",\"value\":\"\"}\n") == 0);

	for (int t = 0; t < 5000; t++) {
		size_t kl = random_bytes(key, sizeof(key));
		size_t vl = random_bytes(val, sizeof(val));
		int nf;
		char *k = NULL, *v = NULL;
		size_t kn = 0, vn = 0;

		b.len = 0;
		dump_put_record(&b, key, kl, val, vl);
		CHECK(b.p[b.len - 1] == '\n');
		CHECK(memchr(b.p, '\n', b.len) == b.p + b.len - 1);
		nf = json_parse_object(b.p, b.len, f, 8, &err, &col);
		CHECK(nf == 2);
		for (int i = 0; i < nf; i++) {
			long long d;
			if (strcmp(f[i].name, "key") == 0) {
				k = f[i].val;
				kn = f[i].len;
			} else if (strcmp(f[i].name, "key_b64") == 0) {
				d = base64_decode(f[i].val, f[i].len, f[i].val);
				CHECK(d >= 0);
				k = f[i].val;
				kn = (size_t)d;
			} else if (strcmp(f[i].name, "value") == 0) {
				v = f[i].val;
				vn = f[i].len;
			} else if (strcmp(f[i].name, "value_b64") == 0) {
				d = base64_decode(f[i].val, f[i].len, f[i].val);
				CHECK(d >= 0);
				v = f[i].val;
				vn = (size_t)d;
			}
		}
		CHECK(k && kn == kl && memcmp(k, key, kl) == 0);
		CHECK(v && vn == vl && memcmp(v, val, vl) == 0);
	}
	cbuf_free(&b);
}

static int parse(const char *text, struct json_field *f, const char **err)
{
	static char buf[512];
	size_t col;

	snprintf(buf, sizeof(buf), "%s", text);
	return json_parse_object(buf, strlen(buf), f, 8, err, &col);
}

static void test_json_parser(void)
{
	struct json_field f[8];
	const char *err;
	uint64_t v;

	CHECK(parse("{}", f, &err) == 0);
	CHECK(parse("  { \"a\" : \"b\" , \"n\":12, \"t\":true,\"f\":false,"
	            "\"z\":null }\r\n",
	            f, &err) == 5);
	CHECK(f[1].type == JSON_NUMBER && json_to_u64(&f[1], &v) == 0 &&
	      v == 12);
	CHECK(f[2].type == JSON_TRUE && f[3].type == JSON_FALSE &&
	      f[4].type == JSON_NULL);
	/* Escapes, including a surrogate pair and an escaped slash. */
	CHECK(parse("{\"s\":\"\\ud83d\\ude00\\u00e9\\/\\b\\f\\u0000\"}", f,
	            &err) == 1);
	CHECK(f[0].len == 10 &&
	      memcmp(f[0].val, "\xf0\x9f\x98\x80\xc3\xa9/\b\f\0", 10) == 0);
	CHECK(parse("{\"s\":\"\\ud83d\"}", f, &err) < 0);
	CHECK(parse("{\"s\":\"\\ude00\"}", f, &err) < 0);
	CHECK(parse("{\"s\":\"\\ud83dx\"}", f, &err) < 0);
	CHECK(parse("{\"s\":\"\\x41\"}", f, &err) < 0);
	CHECK(parse("{\"s\":\"\\u12\"}", f, &err) < 0);
	CHECK(parse("{\"s\":\"a\tb\"}", f, &err) < 0); /* raw control */
	CHECK(parse("{\"s\":\"\xff\"}", f, &err) < 0); /* bad UTF-8 */
	CHECK(parse("{\"s\":\"abc}", f, &err) < 0);
	CHECK(parse("{\"a\":1,\"a\":2}", f, &err) < 0);
	CHECK(parse("{\"a\":{}}", f, &err) < 0);
	CHECK(parse("{\"a\":[1]}", f, &err) < 0);
	CHECK(parse("{\"a\":1} x", f, &err) < 0);
	CHECK(parse("{\"a\":1,}", f, &err) < 0);
	CHECK(parse("{\"a\" 1}", f, &err) < 0);
	CHECK(parse("{a:1}", f, &err) < 0);
	CHECK(parse("[]", f, &err) < 0);
	CHECK(parse("", f, &err) < 0);
	CHECK(parse("{\"a\":01}", f, &err) < 0);
	CHECK(parse("{\"a\":-}", f, &err) < 0);
	CHECK(parse("{\"a\":1.}", f, &err) < 0);
	CHECK(parse("{\"a\":tru}", f, &err) < 0);
	CHECK(parse("{\"a\":-1.5e+3}", f, &err) == 1);
	CHECK(json_to_u64(&f[0], &v) < 0);
	CHECK(parse("{\"a\":99999999999999999999}", f, &err) == 1);
	CHECK(json_to_u64(&f[0], &v) < 0);
	CHECK(parse("{\"1\":1,\"2\":2,\"3\":3,\"4\":4,\"5\":5,\"6\":6,"
	            "\"7\":7,\"8\":8,\"9\":9}",
	            f, &err) < 0);
}

static void test_text_escape(void)
{
	struct cbuf b = { 0 };

	text_put_escaped(&b, "a\tb\nc\\d\r\x1b[31m\x7f\xc3\xa9\xc2\x9b\xff",
	                 19);
	CHECK(strcmp(b.p, "a\\tb\\nc\\\\d\\r\\x1b[31m\\x7f\xc3\xa9"
	                  "\\xc2\\x9b\\xff") == 0);
	cbuf_free(&b);
}

int main(void)
{
	test_utf8();
	test_base64();
	test_json_roundtrip();
	test_dump_record();
	test_json_parser();
	test_text_escape();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	puts("codec tests passed");
	return 0;
}

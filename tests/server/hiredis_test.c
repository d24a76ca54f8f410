/*
 * The dskvs-server tests through hiredis, the C client: commands with
 * binary arguments, pipelining with redisAppendCommand, exact error
 * strings. The server is at $SRV_HOST:$SRV_PORT (tests/server/run.sh starts
 * one). Each test uses keys of its own, so the tests may run in parallel.
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static redisContext *connect_srv(void)
{
	const char *host = getenv("SRV_HOST"), *port = getenv("SRV_PORT");
	struct timeval tv = { 60, 0 };
	redisContext *c;

	cr_assert(host && port, "SRV_HOST and SRV_PORT must be set");
	c = redisConnectWithTimeout(host, atoi(port), tv);
	cr_assert(c && !c->err, "cannot connect: %s", c ? c->errstr : "?");
	cr_assert_eq(redisSetTimeout(c, tv), REDIS_OK);
	return c;
}

/* Run a command (printf-like, as redisCommand) and return its reply;
 * fails the test on a connection error. */
#define CMD(c, ...)                                                 \
	({                                                          \
		redisReply *r_ = redisCommand((c), __VA_ARGS__);    \
		cr_assert(r_, "connection error: %s", (c)->errstr); \
		r_;                                                 \
	})

static void expect_int(redisReply *r, long long v)
{
	cr_assert_eq(r->type, REDIS_REPLY_INTEGER, "type %d (%s)", r->type,
	             r->str ? r->str : "");
	cr_assert_eq(r->integer, v);
	freeReplyObject(r);
}

static void expect_str(redisReply *r, const void *p, size_t n)
{
	cr_assert_eq(r->type, REDIS_REPLY_STRING, "type %d (%s)", r->type,
	             r->type == REDIS_REPLY_ERROR ? r->str : "");
	cr_assert_eq(r->len, n);
	cr_assert(memcmp(r->str, p, n) == 0);
	freeReplyObject(r);
}

static void expect_status(redisReply *r, const char *s)
{
	cr_assert_eq(r->type, REDIS_REPLY_STATUS, "type %d (%s)", r->type,
	             r->str ? r->str : "");
	cr_assert_str_eq(r->str, s);
	freeReplyObject(r);
}

static void expect_nil(redisReply *r)
{
	cr_assert_eq(r->type, REDIS_REPLY_NIL, "type %d", r->type);
	freeReplyObject(r);
}

static void expect_err(redisReply *r, const char *s)
{
	cr_assert_eq(r->type, REDIS_REPLY_ERROR, "type %d", r->type);
	cr_assert_str_eq(r->str, s);
	freeReplyObject(r);
}

Test(hiredis, hash_commands_binary_safe)
{
	redisContext *c = connect_srv();
	const char field[] = { 'f', '\0', 'x', '\r', '\n' };
	const char val[] = { '\0', '\1', '\0' };
	redisReply *r;

	freeReplyObject(CMD(c, "DEL hr:h1"));
	expect_int(
	    CMD(c, "HSET hr:h1 %b %b", field, sizeof(field), val, sizeof(val)),
	    1);
	expect_str(CMD(c, "HGET hr:h1 %b", field, sizeof(field)), val,
	           sizeof(val));
	expect_int(CMD(c, "HSET hr:h1 %b %b", "", (size_t)0, "", (size_t)0), 1);
	expect_str(CMD(c, "HGET hr:h1 %b", "", (size_t)0), "", 0);
	expect_int(CMD(c, "HLEN hr:h1"), 2);
	expect_int(CMD(c, "HSTRLEN hr:h1 %b", field, sizeof(field)), 3);
	expect_int(CMD(c, "HEXISTS hr:h1 %b", field, sizeof(field)), 1);
	expect_nil(CMD(c, "HGET hr:h1 nope"));
	expect_int(CMD(c, "HINCRBY hr:h1 n -3"), -3);
	expect_str(CMD(c, "HINCRBYFLOAT hr:h1 fl 2.5"), "2.5", 3);
	expect_int(CMD(c, "HSETNX hr:h1 n 1"), 0);

	r = CMD(c, "HMGET hr:h1 n nope");
	cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
	cr_assert_eq(r->elements, 2);
	cr_assert_eq(r->element[0]->type, REDIS_REPLY_STRING);
	cr_assert_str_eq(r->element[0]->str, "-3");
	cr_assert_eq(r->element[1]->type, REDIS_REPLY_NIL);
	freeReplyObject(r);

	r = CMD(c, "HGETALL hr:h1");
	cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
	cr_assert_eq(r->elements, 8);
	freeReplyObject(r);
	expect_int(CMD(c, "HDEL hr:h1 n fl nope"), 2);
	expect_status(CMD(c, "HMSET hr:h1 a 1 b 2"), "OK");
	expect_int(CMD(c, "DEL hr:h1"), 1);
	expect_int(CMD(c, "EXISTS hr:h1"), 0);
	redisFree(c);
}

Test(hiredis, big_values_argv)
{
	redisContext *c = connect_srv();
	size_t n = 4u << 20;
	char *big = malloc(n);
	const char *argv[4] = { "HSET", "hr:big", "v", big };
	size_t lens[4] = { 4, 6, 1, n };

	cr_assert(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)(i * 7 + (i >> 11));
	expect_int(redisCommandArgv(c, 4, argv, lens), 1);
	expect_str(CMD(c, "HGET hr:big v"), big, n);
	expect_int(CMD(c, "HSTRLEN hr:big v"), (long long)n);
	expect_status(CMD(c, "SET hr:bigs %b", big, n), "OK");
	expect_str(CMD(c, "GET hr:bigs"), big, n);
	expect_int(CMD(c, "DEL hr:big hr:bigs"), 2);
	free(big);
	redisFree(c);
}

Test(hiredis, pipeline)
{
	redisContext *c = connect_srv();
	enum { N = 20000 };
	redisReply *r;

	freeReplyObject(CMD(c, "DEL hr:p hr:pc"));
	for (int i = 0; i < N; i++) {
		cr_assert_eq(redisAppendCommand(c, "HSET hr:p f%d v%d", i, i),
		             REDIS_OK);
		cr_assert_eq(redisAppendCommand(c, "INCR hr:pc"), REDIS_OK);
	}
	cr_assert_eq(redisAppendCommand(c, "HLEN hr:p"), REDIS_OK);
	cr_assert_eq(redisAppendCommand(c, "HGET hr:p f%d", N - 1), REDIS_OK);
	cr_assert_eq(redisAppendCommand(c, "GET hr:p"), REDIS_OK);
	cr_assert_eq(redisAppendCommand(c, "PING"), REDIS_OK);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
		expect_int(r, 1);
		cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
		expect_int(r, i + 1);
	}
	cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
	expect_int(r, N);
	cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
	char want[32];
	snprintf(want, sizeof(want), "v%d", N - 1);
	expect_str(r, want, strlen(want));
	cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
	expect_err(r, "WRONGTYPE Operation against a key holding the wrong "
	              "kind of value");
	cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
	expect_status(r, "PONG");
	expect_int(CMD(c, "DEL hr:p hr:pc"), 2);
	redisFree(c);
}

Test(hiredis, error_strings)
{
	redisContext *c = connect_srv();

	freeReplyObject(CMD(c, "DEL hr:e hr:es hr:max"));
	expect_err(CMD(c, "HSET hr:e f"),
	           "ERR wrong number of arguments for 'hset' command");
	expect_err(CMD(c, "HGETALL"),
	           "ERR wrong number of arguments for 'hgetall' command");
	expect_status(CMD(c, "SET hr:es x"), "OK");
	expect_err(CMD(c, "HGET hr:es f"), "WRONGTYPE Operation against a key "
	                                   "holding the wrong kind of value");
	expect_err(CMD(c, "NOSUCHCMD a"), "ERR unknown command 'NOSUCHCMD', "
	                                  "with args beginning with: 'a' ");
	expect_err(CMD(c, "SET hr:es x NX XX"), "ERR syntax error");
	expect_err(CMD(c, "HINCRBY hr:e f notanumber"),
	           "ERR value is not an integer or out of range");
	expect_err(CMD(c, "INCR hr:es"),
	           "ERR value is not an integer or out of range");
	expect_status(CMD(c, "SET hr:max 9223372036854775807"), "OK");
	expect_err(CMD(c, "INCR hr:max"),
	           "ERR increment or decrement would overflow");
	expect_int(CMD(c, "DEL hr:e hr:es hr:max"), 2);
	redisFree(c);
}

Test(hiredis, strings_and_keys)
{
	redisContext *c = connect_srv();
	redisReply *r;

	freeReplyObject(CMD(c, "DEL hr:s1 hr:s2 hr:n"));
	expect_status(CMD(c, "MSET hr:s1 a hr:s2 b"), "OK");
	r = CMD(c, "MGET hr:s1 hr:s2 hr:none");
	cr_assert_eq(r->elements, 3);
	cr_assert_str_eq(r->element[1]->str, "b");
	cr_assert_eq(r->element[2]->type, REDIS_REPLY_NIL);
	freeReplyObject(r);
	expect_int(CMD(c, "APPEND hr:s1 bc"), 3);
	expect_int(CMD(c, "STRLEN hr:s1"), 3);
	expect_int(CMD(c, "SETNX hr:s1 z"), 0);
	expect_str(CMD(c, "GETDEL hr:s2"), "b", 1);
	expect_nil(CMD(c, "GET hr:s2"));
	expect_int(CMD(c, "INCRBY hr:n 7"), 7);
	expect_int(CMD(c, "DECRBY hr:n 10"), -3);
	expect_int(CMD(c, "DECR hr:n"), -4);
	expect_status(CMD(c, "TYPE hr:n"), "string");
	expect_nil(CMD(c, "SET hr:s1 q NX"));
	expect_str(CMD(c, "SET hr:s1 q GET"), "abc", 3);
	expect_int(CMD(c, "UNLINK hr:s1 hr:n"), 2);
	expect_status(CMD(c, "PING"), "PONG");
	redisFree(c);
}

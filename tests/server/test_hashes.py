"""Hash commands through redis-py, with exact replies checked on the raw
protocol where the client would hide them (errors, reply types)."""
import srv


class Hashes(srv.ServerTest):
    def test_hset_hget_hmget(self):
        r = self.r
        self.assertEqual(r.hset("h", "a", "1"), 1)
        self.assertEqual(r.hset("h", "a", "2"), 0)  # update: not new
        self.assertEqual(r.hset("h", mapping={"b": "x", "c": "y", "a": "3"}),
                         2)
        self.assertEqual(r.hget("h", "a"), b"3")
        self.assertIsNone(r.hget("h", "nope"))
        self.assertIsNone(r.hget("nohash", "a"))
        self.assertEqual(r.hmget("h", ["a", "zz", "c"]), [b"3", None, b"y"])
        self.assertEqual(r.hmget("nohash", ["a", "b"]), [None, None])
        with self.raw() as c:
            self.assertEqual(c.cmd("HMSET", "h2", "f", "v", "g", "w"), "OK")
            self.assertEqual(c.cmd("HSET", "h2", "f", "v", "f", "v2"), 0)
            self.assertEqual(c.cmd("HGET", "h2", "f"), b"v2")

    def test_binary_fields(self):
        r = self.r
        fields = {b"": b"empty name", b"nul\x00byte": b"\x00\x01\x02",
                  b"e": b"", bytes(range(256)): bytes(range(255, -1, -1))}
        self.assertEqual(r.hset("bin", mapping=fields), 4)
        self.assertEqual(r.hgetall("bin"), fields)
        self.assertEqual(r.hget("bin", b""), b"empty name")
        self.assertEqual(r.hstrlen("bin", b"e"), 0)
        self.assertTrue(r.hexists("bin", b"e"))
        big = bytes(i % 251 for i in range(3 * 1024 * 1024))
        r.hset("bin", "big", big)
        self.assertEqual(r.hget("bin", "big"), big)
        self.assertEqual(r.hstrlen("bin", "big"), len(big))

    def test_hsetnx(self):
        r = self.r
        self.assertEqual(r.hsetnx("h", "a", "1"), 1)
        self.assertEqual(r.hsetnx("h", "a", "2"), 0)
        self.assertEqual(r.hget("h", "a"), b"1")

    def test_getall_keys_vals_len(self):
        r = self.r
        d = {("f%03d" % i).encode(): ("v%d" % i).encode() for i in range(300)}
        r.hset("h", mapping=d)
        self.assertEqual(r.hgetall("h"), d)
        self.assertEqual(sorted(r.hkeys("h")), sorted(d))
        self.assertEqual(sorted(r.hvals("h")), sorted(d.values()))
        self.assertEqual(r.hlen("h"), 300)
        self.assertEqual(r.hlen("nohash"), 0)
        self.assertEqual(r.hgetall("nohash"), {})
        self.assertEqual(r.hkeys("nohash"), [])
        self.assertEqual(r.hvals("nohash"), [])
        # HKEYS and HVALS come in the same order, as HGETALL's pairs.
        with self.raw() as c:
            flat = c.cmd("HGETALL", "h")
            self.assertEqual(c.cmd("HKEYS", "h"), flat[0::2])
            self.assertEqual(c.cmd("HVALS", "h"), flat[1::2])

    def test_hexists_hdel_hstrlen(self):
        r = self.r
        r.hset("h", mapping={"a": "1", "b": "22", "c": "333"})
        self.assertTrue(r.hexists("h", "a"))
        self.assertFalse(r.hexists("h", "z"))
        self.assertFalse(r.hexists("nohash", "a"))
        self.assertEqual(r.hstrlen("h", "c"), 3)
        self.assertEqual(r.hstrlen("h", "z"), 0)
        self.assertEqual(r.hstrlen("nohash", "z"), 0)
        self.assertEqual(r.hdel("h", "a", "z", "a"), 1)
        self.assertEqual(r.hdel("h", "b", "c"), 2)
        # The last field gone, the key is gone.
        self.assertEqual(r.exists("h"), 0)
        self.assertEqual(r.type("h"), b"none")
        self.assertEqual(r.hdel("nohash", "a"), 0)

    def test_hincrby(self):
        r = self.r
        self.assertEqual(r.hincrby("h", "n", 5), 5)
        self.assertEqual(r.hincrby("h", "n", -7), -2)
        r.hset("h", "s", "abc")
        r.hset("h", "max", str(2 ** 63 - 1))
        r.hset("h", "sp", " 1")
        with self.raw() as c:
            self.assertErr(c.cmd("HINCRBY", "h", "s", 1),
                           "ERR hash value is not an integer")
            self.assertErr(c.cmd("HINCRBY", "h", "sp", 1),
                           "ERR hash value is not an integer")
            self.assertErr(c.cmd("HINCRBY", "h", "n", "x"),
                           "ERR value is not an integer or out of range")
            self.assertErr(c.cmd("HINCRBY", "h", "n", "9223372036854775808"),
                           "ERR value is not an integer or out of range")
            self.assertErr(c.cmd("HINCRBY", "h", "max", 1),
                           "ERR increment or decrement would overflow")
            self.assertEqual(c.cmd("HGET", "h", "max"), b"9223372036854775807")
            self.assertEqual(c.cmd("HINCRBY", "h", "max",
                                   "-9223372036854775807"), 0)

    def test_hincrbyfloat(self):
        r = self.r
        with self.raw() as c:
            self.assertEqual(c.cmd("HINCRBYFLOAT", "h", "f", "1.5"), b"1.5")
            self.assertEqual(c.cmd("HINCRBYFLOAT", "h", "f", "0.25"),
                             b"1.75")
            self.assertEqual(c.cmd("HINCRBYFLOAT", "h", "f", "-1.75"), b"0")
            self.assertEqual(c.cmd("HINCRBYFLOAT", "h", "g", "3"), b"3")
            self.assertEqual(c.cmd("HINCRBYFLOAT", "h", "e", "5.0e3"),
                             b"5000")
            c.cmd("HSET", "h", "s", "abc")
            self.assertErr(c.cmd("HINCRBYFLOAT", "h", "s", "1"),
                           "ERR hash value is not a float")
            self.assertErr(c.cmd("HINCRBYFLOAT", "h", "f", "abc"),
                           "ERR value is not a valid float")
            self.assertErr(c.cmd("HINCRBYFLOAT", "h", "f", "inf"),
                           "ERR value is NaN or Infinity")
            c.cmd("HSET", "h", "big", "1.1e4932")
            self.assertErr(c.cmd("HINCRBYFLOAT", "h", "big", "1.1e4932"),
                           "ERR increment would produce NaN or Infinity")
        self.assertEqual(r.hget("h", "f"), b"0")

    def test_hrandfield(self):
        r = self.r
        d = {("f%d" % i).encode(): ("v%d" % i).encode() for i in range(20)}
        r.hset("h", mapping=d)
        with self.raw() as c:
            self.assertIsNone(c.cmd("HRANDFIELD", "nohash"))
            self.assertEqual(c.cmd("HRANDFIELD", "nohash", 3), [])
            self.assertIn(c.cmd("HRANDFIELD", "h"), d)
            # A positive count: distinct fields, at most the hash's size.
            got = c.cmd("HRANDFIELD", "h", 5)
            self.assertEqual(len(got), 5)
            self.assertEqual(len(set(got)), 5)
            self.assertTrue(set(got) <= set(d))
            got = c.cmd("HRANDFIELD", "h", 100)
            self.assertEqual(sorted(got), sorted(d))
            # A negative count: exactly that many, repeats allowed.
            got = c.cmd("HRANDFIELD", "h", -50)
            self.assertEqual(len(got), 50)
            self.assertTrue(set(got) <= set(d))
            got = c.cmd("HRANDFIELD", "h", 4, "WITHVALUES")
            self.assertEqual(len(got), 8)
            for f, v in zip(got[0::2], got[1::2]):
                self.assertEqual(d[f], v)
            got = c.cmd("HRANDFIELD", "h", -30, "WITHVALUES")
            self.assertEqual(len(got), 60)
            for f, v in zip(got[0::2], got[1::2]):
                self.assertEqual(d[f], v)
            self.assertEqual(c.cmd("HRANDFIELD", "h", 0), [])
            self.assertErr(c.cmd("HRANDFIELD", "h", "x"),
                           "ERR value is not an integer or out of range")
            self.assertErr(c.cmd("HRANDFIELD", "h", 3, "WITHVALUE"),
                           "ERR syntax error")
            # RESP3: WITHVALUES gives [field, value] pairs.
            c.cmd("HELLO", 3)
            got = c.cmd("HRANDFIELD", "h", 3, "WITHVALUES")
            self.assertEqual(len(got), 3)
            for pair in got:
                self.assertEqual(d[pair[0]], pair[1])

    def test_hscan(self):
        r = self.r
        d = {("f%04d" % i).encode(): b"v" for i in range(1000)}
        d[b"other"] = b"w"
        r.hset("h", mapping=d)
        seen = {}
        cursor = 0
        rounds = 0
        while True:
            cursor, part = r.hscan("h", cursor, count=50)
            seen.update(part)
            rounds += 1
            self.assertLess(rounds, 100000)
            if cursor == 0:
                break
        self.assertEqual(seen, d)
        seen = {}
        cursor = 0
        while True:
            cursor, part = r.hscan("h", cursor, match="f00*", count=100)
            seen.update(part)
            if cursor == 0:
                break
        self.assertEqual(set(seen), {("f%04d" % i).encode()
                                     for i in range(100)})
        self.assertEqual(r.hscan("nohash", 0), (0, {}))
        with self.raw() as c:
            self.assertErr(c.cmd("HSCAN", "h", "x"), "ERR invalid cursor")
            self.assertErr(c.cmd("HSCAN", "h", 0, "COUNT", 0),
                           "ERR syntax error")
            self.assertErr(c.cmd("HSCAN", "h", 0, "BOGUS", 1),
                           "ERR syntax error")

    def test_wrong_arity(self):
        with self.raw() as c:
            for cmd in (["HSET", "h", "f"], ["HSET", "h", "f", "v", "g"],
                        ["HGET", "h"], ["HMSET", "h"], ["HSETNX", "h", "f"],
                        ["HMGET", "h"], ["HGETALL"], ["HKEYS"], ["HVALS"],
                        ["HLEN"], ["HEXISTS", "h"], ["HDEL", "h"],
                        ["HSTRLEN", "h"], ["HINCRBY", "h", "f"],
                        ["HINCRBYFLOAT", "h", "f"], ["HRANDFIELD"],
                        ["HSCAN", "h"]):
                self.assertErr(c.cmd(*cmd),
                               "ERR wrong number of arguments for '%s' "
                               "command" % cmd[0].lower())

    def test_wrongtype(self):
        wt = "WRONGTYPE Operation against a key holding the wrong kind of value"
        with self.raw() as c:
            c.cmd("SET", "s", "x")
            for cmd in (["HSET", "s", "f", "v"], ["HGET", "s", "f"],
                        ["HMGET", "s", "f"], ["HGETALL", "s"], ["HKEYS", "s"],
                        ["HVALS", "s"], ["HLEN", "s"], ["HEXISTS", "s", "f"],
                        ["HDEL", "s", "f"], ["HSTRLEN", "s", "f"],
                        ["HINCRBY", "s", "f", 1],
                        ["HINCRBYFLOAT", "s", "f", 1], ["HSETNX", "s", "f", 1],
                        ["HRANDFIELD", "s"], ["HSCAN", "s", 0]):
                self.assertErr(c.cmd(*cmd), wt)
            c.cmd("HSET", "h", "f", "v")
            for cmd in (["GET", "h"], ["APPEND", "h", "x"], ["STRLEN", "h"],
                        ["INCR", "h"], ["DECRBY", "h", 2], ["GETDEL", "h"],
                        ["SET", "h", "x", "GET"]):
                self.assertErr(c.cmd(*cmd), wt)
            # MGET does not complain: a non-string is nil.
            self.assertEqual(c.cmd("MGET", "h", "s"), [None, b"x"])
            # SET replaces whatever the key held, as in Redis.
            self.assertEqual(c.cmd("SET", "h", "now a string"), "OK")
            self.assertEqual(c.cmd("TYPE", "h"), "string")
            self.assertErr(c.cmd("HGET", "h", "f"), wt)
            self.assertEqual(c.cmd("GET", "h"), b"now a string")


if __name__ == "__main__":
    srv.main()

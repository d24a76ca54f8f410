"""RESP3 after HELLO 3: the reply types (map, set, double, null, ...) on
the raw protocol, and the way back to RESP2."""
import srv
from srv import Double, Map, NULL, Set


class Resp3(srv.ServerTest):
    def test_types(self):
        r = self.r
        r.hset("h", mapping={"a": "1", "b": "2"})
        r.set("s", "x")
        with self.raw() as c:
            # RESP2 first: flat arrays, null bulk.
            self.assertEqual(sorted(c.cmd("HGETALL", "h")),
                             [b"1", b"2", b"a", b"b"])
            self.assertIsNone(c.cmd("GET", "none"))
            self.assertIsNone(c.cmd("HGET", "h", "none"))
            self.assertEqual(c.cmd("HMGET", "h", "a", "z"), [b"1", None])
            self.assertIsInstance(c.cmd("HINCRBYFLOAT", "fl", "f", "1.5"),
                                  bytes)

            c.cmd("HELLO", 3)
            m = c.cmd("HGETALL", "h")
            self.assertIsInstance(m, Map)
            self.assertEqual(dict(m), {b"a": b"1", b"b": b"2"})
            empty = c.cmd("HGETALL", "none")
            self.assertIsInstance(empty, Map)
            self.assertEqual(empty, [])
            # Nulls are RESP3's '_'.
            self.assertEqual(c.cmd("GET", "none"), NULL)
            self.assertEqual(c.cmd("HGET", "h", "none"), NULL)
            self.assertEqual(c.cmd("HMGET", "h", "a", "z"), [b"1", NULL])
            self.assertEqual(c.cmd("HRANDFIELD", "none"), NULL)
            self.assertEqual(c.cmd("SET", "s", "y", "NX"), NULL)
            self.assertEqual(c.cmd("CLIENT", "GETNAME"), NULL)
            # HINCRBYFLOAT stays a bulk string in RESP3 (as in Redis).
            self.assertEqual(c.cmd("HINCRBYFLOAT", "fl", "f", "1"), b"2.5")
            # Integers stay integers; simple strings stay simple.
            self.assertEqual(c.cmd("HLEN", "h"), 2)
            self.assertEqual(c.cmd("PING"), "PONG")
            # Errors are the same.
            self.assertEqual(str(c.cmd("GET", "h")),
                             "WRONGTYPE Operation against a key holding the "
                             "wrong kind of value")
            # CONFIG GET is a map; COMMAND DOCS a map of maps.
            self.assertIsInstance(c.cmd("CONFIG", "GET", "maxclients"), Map)
            docs = c.cmd("COMMAND", "DOCS", "get")
            self.assertIsInstance(docs, Map)
            self.assertIsInstance(dict(docs)[b"get"], Map)
            # A command's flags are a set.
            entry = [e for e in c.cmd("COMMAND") if e[0] == b"get"][0]
            self.assertIsInstance(entry[2], Set)
            self.assertIn("readonly", entry[2])
            # INFO and CLIENT INFO are verbatim strings in RESP3.
            info = c.cmd("INFO", "server")
            self.assertEqual(getattr(info, "fmt", None), "txt")
            self.assertIn(b"redis_version:", info)
            # HELLO 2 goes back to RESP2.
            h = c.cmd("HELLO", 2)
            self.assertIsInstance(h, list)
            self.assertNotIsInstance(h, Map)
            self.assertIsNone(c.cmd("GET", "none"))

    def test_scan_shapes(self):
        self.r.hset("h", mapping={"a": "1"})
        with self.raw() as c:
            c.cmd("HELLO", 3)
            cur, items = c.cmd("HSCAN", "h", 0)
            self.assertEqual(cur, b"0")
            self.assertEqual(items, [b"a", b"1"])
            cur, keys = c.cmd("SCAN", 0)
            self.assertEqual(keys, [b"h"])
            self.assertEqual(c.cmd("KEYS", "*"), [b"h"])
            self.assertEqual(c.cmd("TIME")[0].isdigit(), True)

    def test_parser_types(self):
        # No command of the list answers a double in RESP3 in Redis 7.0
        # (HINCRBYFLOAT stays a bulk string; doubles come from sorted
        # sets, outside the data model), so the harness's parser is
        # checked on raw bytes, that a double or a set sent would be read
        # right.
        c = srv.Raw.__new__(srv.Raw)
        c.buf = b",3.25\r\n~2\r\n+a\r\n:1\r\n_\r\n,inf\r\n#t\r\n(12345\r\n"
        c.sock = None
        self.assertEqual(c.reply(), Double(3.25))
        s = c.reply()
        self.assertIsInstance(s, Set)
        self.assertEqual(s, ["a", 1])
        self.assertEqual(c.reply(), NULL)
        self.assertEqual(c.reply(), float("inf"))
        self.assertEqual(c.reply(), True)
        self.assertEqual(c.reply(), 12345)


if __name__ == "__main__":
    srv.main()

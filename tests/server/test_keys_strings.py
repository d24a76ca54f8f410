"""Key-space and string commands (redis-py and the raw protocol)."""
import threading

import srv
from srv import Err

WT = "WRONGTYPE Operation against a key holding the wrong kind of value"


class Keys(srv.ServerTest):
    def fill(self):
        r = self.r
        r.set("s1", "a")
        r.set("s2", "b")
        r.hset("h1", "f", "v")
        r.hset("h2", mapping={"f": "v", "g": "w"})

    def test_del_unlink_exists(self):
        r = self.r
        self.fill()
        self.assertEqual(r.exists("s1", "h1", "nope", "s1"), 3)
        self.assertEqual(r.delete("s1", "h1", "nope"), 2)
        self.assertEqual(r.exists("s1", "h1"), 0)
        self.assertEqual(r.unlink("s2", "h2", "s2"), 2)
        self.assertEqual(r.dbsize(), 0)
        self.assertEqual(r.hgetall("h2"), {})

    def test_type(self):
        r = self.r
        self.fill()
        self.assertEqual(r.type("s1"), b"string")
        self.assertEqual(r.type("h1"), b"hash")
        self.assertEqual(r.type("none"), b"none")

    def test_keys_dbsize(self):
        r = self.r
        self.fill()
        r.set(b"bin\x00key", "x")
        r.set(b"", "empty key")
        self.assertEqual(r.dbsize(), 6)
        self.assertEqual(sorted(r.keys("*")),
                         [b"", b"bin\x00key", b"h1", b"h2", b"s1", b"s2"])
        self.assertEqual(sorted(r.keys("s*")), [b"s1", b"s2"])
        self.assertEqual(sorted(r.keys("?1")), [b"h1", b"s1"])
        self.assertEqual(sorted(r.keys("[hx]2")), [b"h2"])
        self.assertEqual(r.keys("zz*"), [])

    def test_scan(self):
        r = self.r
        names = set()
        for i in range(400):
            r.set("s%03d" % i, i)
            names.add(("s%03d" % i).encode())
        for i in range(100):
            r.hset("h%03d" % i, "f", i)
            names.add(("h%03d" % i).encode())
        seen = set()
        cursor = 0
        rounds = 0
        while True:
            cursor, part = r.scan(cursor, count=37)
            seen.update(part)
            rounds += 1
            self.assertLess(rounds, 100000)
            if cursor == 0:
                break
        self.assertEqual(seen, names)
        self.assertEqual(set(r.scan_iter(match="h0*")),
                         {("h%03d" % i).encode() for i in range(100)})
        self.assertEqual(set(r.scan_iter(_type="hash")),
                         {("h%03d" % i).encode() for i in range(100)})
        self.assertEqual(len(set(r.scan_iter(_type="string"))), 400)
        with self.raw() as c:
            self.assertErr(c.cmd("SCAN", "abc"), "ERR invalid cursor")
            self.assertErr(c.cmd("SCAN", 0, "COUNT", 0), "ERR syntax error")
            self.assertErr(c.cmd("SCAN", 0, "COUNT", "x"),
                           "ERR value is not an integer or out of range")
            self.assertErr(c.cmd("SCAN", 0, "FOO"), "ERR syntax error")

    def test_flush(self):
        r = self.r
        self.fill()
        self.assertTrue(r.flushdb())
        self.assertEqual(r.dbsize(), 0)
        self.fill()
        self.assertTrue(r.flushall())
        self.assertEqual(r.dbsize(), 0)
        self.assertEqual(r.keys("*"), [])
        with self.raw() as c:
            self.assertEqual(c.cmd("FLUSHALL", "SYNC"), "OK")
            self.assertEqual(c.cmd("FLUSHDB", "ASYNC"), "OK")
            self.assertErr(c.cmd("FLUSHALL", "NOW"), "ERR syntax error")

    def test_arity(self):
        with self.raw() as c:
            for cmd in (["DEL"], ["UNLINK"], ["EXISTS"], ["TYPE"],
                        ["KEYS"], ["SCAN"], ["DBSIZE", "x"], ["GET"],
                        ["SET", "k"], ["MGET"], ["MSET", "a"],
                        ["MSET", "a", "1", "b"], ["SETNX", "k"],
                        ["GETDEL"], ["INCR"], ["INCRBY", "k"], ["DECR"],
                        ["DECRBY", "k"], ["APPEND", "k"], ["STRLEN"],
                        ["TYPE", "a", "b"]):
                self.assertErr(c.cmd(*cmd),
                               "ERR wrong number of arguments for '%s' "
                               "command" % cmd[0].lower())


class Strings(srv.ServerTest):
    def test_get_set(self):
        r = self.r
        self.assertIsNone(r.get("k"))
        self.assertTrue(r.set("k", "v"))
        self.assertEqual(r.get("k"), b"v")
        self.assertTrue(r.set("k", "w"))
        self.assertEqual(r.get("k"), b"w")
        val = bytes(range(256)) * 4096
        r.set(b"\x00bin\xff", val)
        self.assertEqual(r.get(b"\x00bin\xff"), val)
        r.set("empty", "")
        self.assertEqual(r.get("empty"), b"")
        self.assertEqual(r.strlen("empty"), 0)
        self.assertEqual(r.exists("empty"), 1)

    def test_set_options(self):
        with self.raw() as c:
            self.assertIsNone(c.cmd("SET", "k", "1", "XX"))
            self.assertEqual(c.cmd("SET", "k", "1", "NX"), "OK")
            self.assertIsNone(c.cmd("SET", "k", "2", "NX"))
            self.assertEqual(c.cmd("SET", "k", "3", "XX"), "OK")
            self.assertEqual(c.cmd("GET", "k"), b"3")
            self.assertEqual(c.cmd("SET", "k", "4", "GET"), b"3")
            self.assertIsNone(c.cmd("SET", "new", "5", "GET"))
            self.assertEqual(c.cmd("GET", "new"), b"5")
            self.assertEqual(c.cmd("SET", "k", "6", "XX", "GET"), b"4")
            self.assertIsNone(c.cmd("SET", "none", "6", "XX", "GET"))
            self.assertIsNone(c.cmd("GET", "none"))
            # Redis 7.0 accepts NX with GET.
            self.assertEqual(c.cmd("SET", "k", "7", "NX", "GET"), b"6")
            self.assertEqual(c.cmd("GET", "k"), b"6")
            self.assertIsNone(c.cmd("SET", "k2", "7", "NX", "GET"))
            self.assertEqual(c.cmd("GET", "k2"), b"7")
            self.assertEqual(c.cmd("SET", "k", "8", "nx", "xx"),
                             Err("ERR syntax error"))
            self.assertErr(c.cmd("SET", "k", "8", "BOGUS"), "ERR syntax error")
            self.assertErr(c.cmd("SET", "k", "v", "NX", "NX", "XX"),
                           "ERR syntax error")

    def test_mget_mset_setnx_getdel(self):
        r = self.r
        self.assertTrue(r.mset({"a": "1", "b": "2", "a ": "3"}))
        self.assertEqual(r.mget("a", "b", "c", "a "), [b"1", b"2", None, b"3"])
        with self.raw() as c:
            self.assertEqual(c.cmd("MSET", "x", "1", "x", "2"), "OK")
            self.assertEqual(c.cmd("GET", "x"), b"2")
        self.assertTrue(r.setnx("n", "1"))
        self.assertFalse(r.setnx("n", "2"))
        self.assertEqual(r.get("n"), b"1")
        self.assertEqual(r.getdel("n"), b"1")
        self.assertIsNone(r.getdel("n"))
        self.assertEqual(r.exists("n"), 0)
        r.hset("h", "f", "v")
        # SETNX on a hash key: the key exists, nothing changes.
        self.assertFalse(r.setnx("h", "x"))
        self.assertEqual(r.type("h"), b"hash")

    def test_incr_decr(self):
        r = self.r
        self.assertEqual(r.incr("c"), 1)
        self.assertEqual(r.incrby("c", 10), 11)
        self.assertEqual(r.decr("c"), 10)
        self.assertEqual(r.decrby("c", 15), -5)
        self.assertEqual(r.get("c"), b"-5")
        self.assertEqual(r.decr("d"), -1)
        with self.raw() as c:
            c.cmd("SET", "max", "9223372036854775807")
            c.cmd("SET", "min", "-9223372036854775808")
            c.cmd("SET", "txt", "12a")
            c.cmd("SET", "sp", "1 ")
            self.assertErr(c.cmd("INCR", "max"),
                           "ERR increment or decrement would overflow")
            self.assertErr(c.cmd("DECR", "min"),
                           "ERR increment or decrement would overflow")
            self.assertErr(c.cmd("INCRBY", "max", 1),
                           "ERR increment or decrement would overflow")
            self.assertErr(c.cmd("DECRBY", "min", 1),
                           "ERR increment or decrement would overflow")
            self.assertErr(c.cmd("INCR", "txt"),
                           "ERR value is not an integer or out of range")
            self.assertErr(c.cmd("INCR", "sp"),
                           "ERR value is not an integer or out of range")
            self.assertErr(c.cmd("INCRBY", "c", "1.5"),
                           "ERR value is not an integer or out of range")
            self.assertErr(c.cmd("INCRBY", "c", "99999999999999999999"),
                           "ERR value is not an integer or out of range")
            self.assertErr(c.cmd("DECRBY", "c", "-9223372036854775808"),
                           "ERR decrement would overflow")
            self.assertEqual(c.cmd("GET", "max"), b"9223372036854775807")
            self.assertEqual(c.cmd("INCRBY", "max", "-9223372036854775807"),
                             0)

    def test_append_strlen(self):
        r = self.r
        self.assertEqual(r.append("a", "hello"), 5)
        self.assertEqual(r.append("a", b" \x00world"), 12)
        self.assertEqual(r.get("a"), b"hello \x00world")
        self.assertEqual(r.strlen("a"), 12)
        self.assertEqual(r.strlen("none"), 0)
        self.assertEqual(r.append("e", ""), 0)
        self.assertEqual(r.exists("e"), 1)

    def test_concurrent_creation_as_both_types(self):
        """Two clients create the same names at once, one as a string
        (SETNX, INCR), one as a hash (HSET, HINCRBY): for every name
        exactly one wins, the other gets WRONGTYPE (or SETNX's 0), and the
        key holds the winner's type and value."""
        n = 300
        res = {}

        def worker(kind):
            c = self.raw()
            out = []
            for i in range(n):
                if kind == "s":
                    out.append(c.cmd("SETNX", "x%d" % i, "str"))
                    out.append(c.cmd("INCR", "y%d" % i))
                else:
                    out.append(c.cmd("HSET", "x%d" % i, "f", "hash"))
                    out.append(c.cmd("HINCRBY", "y%d" % i, "f", 1))
            c.close()
            res[kind] = out

        ts = [threading.Thread(target=worker, args=(k,)) for k in "sh"]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        with self.raw() as c:
            for i in range(n):
                s_x, s_y = res["s"][2 * i], res["s"][2 * i + 1]
                h_x, h_y = res["h"][2 * i], res["h"][2 * i + 1]
                t = c.cmd("TYPE", "x%d" % i)
                if s_x == 1:
                    self.assertErr(h_x, WT)
                    self.assertEqual(t, "string")
                    self.assertEqual(c.cmd("GET", "x%d" % i), b"str")
                else:
                    self.assertEqual((s_x, h_x), (0, 1))
                    self.assertEqual(t, "hash")
                    self.assertEqual(c.cmd("HGET", "x%d" % i, "f"), b"hash")
                t = c.cmd("TYPE", "y%d" % i)
                if s_y == 1:
                    self.assertErr(h_y, WT)
                    self.assertEqual(t, "string")
                else:
                    self.assertErr(s_y, WT)
                    self.assertEqual(h_y, 1)
                    self.assertEqual(t, "hash")
            self.assertEqual(c.cmd("DBSIZE"), 2 * n)


if __name__ == "__main__":
    srv.main()

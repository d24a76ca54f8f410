"""dskvs-only: the key mapping (a '/' key is a hash member) and the names
dskvs cannot hold, refused and never mangled."""
import srv
from srv import Err

NAME_MAX = 65535  # DSKVS_NAME_MAX


@srv.dskvs_only
class Mapping(srv.ServerTest):
    def test_slash_key_is_a_member(self):
        r = self.r
        self.assertTrue(r.set("artist/daft_punk", "x"))
        self.assertEqual(r.hget("artist", "daft_punk"), b"x")
        self.assertEqual(r.type("artist"), b"hash")
        self.assertEqual(r.hset("artist", "justice", "y"), 1)
        self.assertEqual(r.get("artist/justice"), b"y")
        # Everything after the first '/' is the member.
        r.set("artist/a/b", "z")
        self.assertEqual(r.hget("artist", "a/b"), b"z")
        self.assertEqual(r.incr("artist/n"), 1)
        self.assertEqual(r.hget("artist", "n"), b"1")
        self.assertEqual(r.append("artist/n", "0"), 2)
        self.assertEqual(r.strlen("artist/n"), 2)
        self.assertEqual(r.mget("artist/n", "artist/none"), [b"10", None])
        self.assertEqual(r.getdel("artist/n"), b"10")
        self.assertFalse(r.hexists("artist", "n"))
        self.assertEqual(sorted(r.hkeys("artist")),
                         [b"a/b", b"daft_punk", b"justice"])
        # The hash is one key; its members are not keys of their own.
        self.assertEqual(r.keys("*"), [b"artist"])
        self.assertEqual(r.dbsize(), 1)
        # A member holding bytes.
        r.set(b"bin/\x00\xff", b"\x00")
        self.assertEqual(r.hgetall("bin"), {b"\x00\xff": b"\x00"})
        # An empty member name.
        r.set("e/", "empty member")
        self.assertEqual(r.hget("e", ""), b"empty member")

    def test_slash_key_on_a_string_key(self):
        with self.raw() as c:
            c.cmd("SET", "plain", "v")
            # 'plain' holds a string: its members cannot be addressed.
            r = c.cmd("SET", "plain/m", "x")
            self.assertErr(r, "WRONGTYPE Operation against a key holding "
                           "the wrong kind of value")
            self.assertEqual(c.cmd("GET", "plain"), b"v")

    def test_bad_hash_keys_refused(self):
        with self.raw() as c:
            for key in (b"a/b", b"a\x00b", b"/", b"\x00"):
                for cmd in (("HSET", key, "f", "v"), ("HINCRBY", key, "f", 1),
                            ("HSETNX", key, "f", "v"),
                            ("HMSET", key, "f", "v")):
                    r = c.cmd(*cmd)
                    self.assertIsInstance(r, Err, (cmd, r))
                    self.assertTrue(str(r).startswith("ERR "), r)
            # Nothing was stored under a mangled name.
            self.assertEqual(c.cmd("KEYS", "*"), [])
            self.assertEqual(c.cmd("DBSIZE"), 0)

    def test_name_limits(self):
        with self.raw() as c:
            ok = b"k" * NAME_MAX
            over = b"k" * (NAME_MAX + 1)
            self.assertEqual(c.cmd("HSET", "h", ok, "v"), 1)
            self.assertEqual(c.cmd("HGET", "h", ok), b"v")
            self.assertEqual(c.cmd("HSET", b"H" * NAME_MAX, "f", "v"), 1)
            self.assertEqual(c.cmd("SET", b"S" * NAME_MAX, "v"), "OK")
            for cmd in (("HSET", "h", over, "v"), ("HSET", over, "f", "v"),
                        ("SET", over, "v"), ("HINCRBY", "h", over, 1),
                        ("HSETNX", "h", over, "v"), ("APPEND", over, "x")):
                r = c.cmd(*cmd)
                self.assertIsInstance(r, Err, cmd[0])
                self.assertTrue(str(r).startswith("ERR "), r)
            # A read of a name that cannot exist finds nothing (or is
            # refused), and above all is not cut to the limit, which would
            # find the 65535-byte name.
            for cmd in (("HGET", "h", over), ("GET", over),
                        ("HEXISTS", "h", over)):
                r = c.cmd(*cmd)
                self.assertTrue(r in (None, 0) or
                                (isinstance(r, Err) and
                                 str(r).startswith("ERR ")), (cmd[0], r))
            self.assertEqual(c.cmd("HLEN", "h"), 1)
            self.assertEqual(c.cmd("DBSIZE"), 3)


if __name__ == "__main__":
    srv.main()

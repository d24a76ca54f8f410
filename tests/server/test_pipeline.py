"""Pipelining: redis-py pipelines, raw pipelines split at every byte,
and redis-cli --pipe."""
import subprocess

import srv


class Pipeline(srv.ServerTest):
    def test_redis_py_pipeline(self):
        p = self.r.pipeline(transaction=False)
        for i in range(2000):
            p.hset("h%d" % (i % 10), "f%d" % i, i)
            p.set("s%d" % i, i)
            p.incr("ctr")
        p.hlen("h0")
        p.get("s1999")
        p.get("h0")  # WRONGTYPE in the middle of a pipeline
        p.ping()
        res = p.execute(raise_on_error=False)
        self.assertEqual(res[:3], [1, True, 1])
        self.assertEqual(res[-4], 200)
        self.assertEqual(res[-3], b"1999")
        self.assertIn("WRONGTYPE", str(res[-2]))
        self.assertEqual(res[-1], True)
        self.assertEqual(self.r.get("ctr"), b"2000")

    def test_raw_pipeline_any_split(self):
        """The same requests, cut into pieces at every possible place,
        give the same replies: the parser keeps partial requests."""
        reqs = (srv.Raw.encode("HSET", "h", "field", "v" * 300) +
                srv.Raw.encode("HGET", "h", "field") +
                b"PING\r\n" +
                srv.Raw.encode("HGETALL", "h") +
                srv.Raw.encode("ECHO", b"\r\n\x00"))
        with self.raw() as c:
            c.send(reqs)
            want = [c.reply() for _ in range(5)]
            want[0] = 0  # the field exists after the first round
        for cut in range(1, len(reqs)):
            with self.raw() as c:
                c.send(reqs[:cut])
                c.send(reqs[cut:])
                got = [c.reply() for _ in range(5)]
                self.assertEqual(got, want, "cut at %d" % cut)

    def test_deep_pipeline(self):
        """Many thousand requests sent before any reply is read: the
        server must not deadlock on a full socket buffer."""
        n = 50000
        with self.raw() as c:
            blob = b"".join(srv.Raw.encode("SET", "k%d" % i, "x" * 100)
                            for i in range(n))
            import threading
            t = threading.Thread(target=c.send, args=(blob,))
            t.start()
            for _ in range(n):
                self.assertEqual(c.reply(), "OK")
            t.join()
        self.assertEqual(self.r.dbsize(), n)

    def test_redis_cli_pipe(self):
        data = b"".join(srv.Raw.encode("HSET", "piped", "f%d" % i, "v%d" % i)
                        for i in range(5000))
        data += srv.Raw.encode("SET", b"bin\x00key", b"\x00\xff")
        out = subprocess.run(["redis-cli", "-h", self.srv.host, "-p",
                              str(self.srv.port), "--pipe"],
                             input=data, capture_output=True, check=True)
        self.assertIn(b"errors: 0, replies: 5001", out.stdout)
        self.assertEqual(self.r.hlen("piped"), 5000)
        self.assertEqual(self.r.get(b"bin\x00key"), b"\x00\xff")


if __name__ == "__main__":
    srv.main()

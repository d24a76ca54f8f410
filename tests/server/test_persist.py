"""What is acknowledged is on disk. A restart keeps everything; SIGTERM
with writes in flight loses no acknowledged write and exits 0; kill -9
with --sync always loses no acknowledged write. The issue lists them as
dskvs-only; against redis they run with appendonly yes (appendfsync
always for the kill -9 test), which checks the tests themselves."""
import signal
import threading
import unittest

import srv

# Enough writes that the stop lands in the middle of the traffic.
SIGNAL_AFTER = 3000


class Writer(threading.Thread):
    """Writes w<tid>_<i> = i (alternately as HSET and as a bare string)
    until the connection ends; acked lists the writes whose reply came.
    pipeline: requests in flight at once."""

    def __init__(self, srvr, tid, pipeline):
        super().__init__()
        self.c = srvr.raw()
        self.tid = tid
        self.pipeline = pipeline
        self.acked = []
        self.errors = []

    def req(self, i):
        if i % 2:
            return srv.Raw.encode("HSET", "w%d" % self.tid, "f%d" % i, i)
        return srv.Raw.encode("SET", "w%d_%d" % (self.tid, i), i)

    def run(self):
        i = 0
        inflight = []
        try:
            while True:
                while len(inflight) < self.pipeline:
                    self.c.send(self.req(i))
                    inflight.append(i)
                    i += 1
                r = self.c.reply()
                j = inflight.pop(0)
                if r not in (1, "OK"):
                    self.errors.append((j, r))
                    return
                self.acked.append(j)
        except (srv.Closed, OSError):
            return
        finally:
            self.c.close()


def total(ws):
    return sum(len(w.acked) for w in ws)


class Persist(unittest.TestCase):
    def setUp(self):
        self.s = srv.Server(persist=True)

    def tearDown(self):
        self.s.cleanup()

    def restart(self, **kw):
        s = srv.Server(store=self.s.store, persist=True, **kw)
        s.tmp, s.log = self.s.tmp, self.s.log
        self.s = s.start()

    def check(self, ws):
        with self.s.raw() as c:
            for w in ws:
                self.assertEqual(w.errors, [])
                for i in w.acked:
                    if i % 2:
                        got = c.cmd("HGET", "w%d" % w.tid, "f%d" % i)
                    else:
                        got = c.cmd("GET", "w%d_%d" % (w.tid, i))
                    self.assertEqual(got, b"%d" % i,
                                     "writer %d write %d" % (w.tid, i))

    def wait_acks(self, ws, n):
        import time
        deadline = time.monotonic() + srv.START_WAIT
        while total(ws) < n and time.monotonic() < deadline:
            if not any(w.is_alive() for w in ws):
                break
            time.sleep(0.01)
        self.assertGreaterEqual(total(ws), n, self.s.logtext())

    def test_restart_keeps_everything(self):
        self.s.start()
        r = self.s.redis()
        data = {b"f%d" % i: bytes([i % 256]) * i for i in range(500)}
        data[b""] = b""
        data[b"\x00"] = b"\x00"
        r.hset("h", mapping=data)
        r.set("s", "string")
        r.set(b"\x00bin", b"\xff")
        r.incrby("n", 42)
        if srv.MODE == "dskvs":
            r.set("coll/member", "m")
        r.close()
        self.assertEqual(self.s.stop(signal.SIGINT), 0)
        self.restart()
        r = self.s.redis()
        self.assertEqual(r.hgetall("h"), data)
        self.assertEqual(r.get("s"), b"string")
        self.assertEqual(r.get(b"\x00bin"), b"\xff")
        self.assertEqual(r.get("n"), b"42")
        if srv.MODE == "dskvs":
            self.assertEqual(r.hget("coll", "member"), b"m")
            r.delete("coll")
        self.assertEqual(r.type("s"), b"string")
        self.assertEqual(r.type("h"), b"hash")
        self.assertEqual(r.dbsize(), 4)
        # SHUTDOWN persists too.
        r.hset("h2", "after", "restart")
        try:
            r.shutdown()
        except Exception:
            pass  # redis-py sees the connection close
        self.assertEqual(self.s.wait_exit(), 0)
        self.restart()
        r = self.s.redis()
        self.assertEqual(r.hget("h2", "after"), b"restart")
        r.close()

    def test_sigterm_with_writes_in_flight(self):
        self.s.start()
        ws = [Writer(self.s, t, pipeline=64) for t in range(4)]
        for w in ws:
            w.start()
        self.wait_acks(ws, SIGNAL_AFTER)
        self.assertEqual(self.s.stop(signal.SIGTERM), 0, self.s.logtext())
        for w in ws:
            w.join()
        self.restart()
        self.check(ws)

    def test_kill9_with_sync_always(self):
        self.s.sync = "always"
        self.s.start()
        ws = [Writer(self.s, t, pipeline=1 + 7 * (t % 2)) for t in range(4)]
        for w in ws:
            w.start()
        self.wait_acks(ws, SIGNAL_AFTER // 3)
        self.s.stop(signal.SIGKILL)
        for w in ws:
            w.join()
        self.restart(sync="always")
        self.check(ws)


if __name__ == "__main__":
    srv.main()

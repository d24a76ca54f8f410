"""
The harness of the dskvs-server tests: start a server on a free loopback
port, wait until it answers PING, hand out clients, stop it.

Every test runs against any Redis-protocol server. SRV_MODE chooses which:

  SRV_MODE=dskvs   (default) dskvs-server, the program in $DSKVS_SERVER,
                   over a fresh store in a temporary directory;
  SRV_MODE=redis   Debian's redis-server (the oracle: its replies are the
                   expected ones), without persistence, one database.

Tests that only make sense for dskvs (the '/' mapping, persistence across
a restart, the name limits) carry @dskvs_only and are skipped against
redis. Nothing here asserts a timing: waits have generous bounds and only
fail a test that would otherwise hang.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

MODE = os.environ.get("SRV_MODE", "dskvs")
if MODE not in ("dskvs", "redis"):
    raise SystemExit("SRV_MODE must be dskvs or redis")
DSKVS_SERVER = os.environ.get("DSKVS_SERVER", "dskvs-server")
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")

dskvs_only = unittest.skipIf(MODE != "dskvs", "dskvs-only")

# Bounds on waits that only stop a broken run from hanging.
START_WAIT = 30.0
STOP_WAIT = 60.0


def free_port():
    """A loopback TCP port nobody listens on now (the server binds it a
    moment later; start() retries on the rare clash)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """One server process. store: the store directory to use (dskvs; kept
    across restarts so persistence can be tested), else a fresh one."""

    def __init__(self, store=None, password=None, timeout=None, sync=None,
                 maxclients=None, threads=None, persist=False,
                 unixsocket=None, extra=()):
        self.tmp = tempfile.mkdtemp(prefix="dskvs-srvtest-")
        self.store = store or os.path.join(self.tmp, "store")
        self.password = password
        self.timeout = timeout
        self.sync = sync
        self.maxclients = maxclients
        self.threads = threads
        # redis: keep data across restarts in self.store, with
        # appendonly yes (appendfsync always for sync="always", else
        # everysec). dskvs always persists.
        self.persist = persist
        self.unixsocket = unixsocket
        self.extra = list(extra)
        self.proc = None
        self.port = None
        self.host = "127.0.0.1"
        self.log = os.path.join(self.tmp, "server.log")

    def argv(self):
        if MODE == "redis":
            if self.persist:
                os.makedirs(self.store, exist_ok=True)
                dur = ["--appendonly", "yes", "--dir", self.store,
                       "--appendfsync",
                       "always" if self.sync == "always" else "everysec"]
            else:
                dur = ["--appendonly", "no", "--dir", self.tmp]
            a = [REDIS_SERVER, "--port", str(self.port), "--bind", self.host,
                 "--save", ""] + dur + [
                 "--databases", "1", "--daemonize", "no",
                 # The value limit of dskvs (DSKVS_VALUE_MAX), so the bulk
                 # length checks compare like with like.
                 "--proto-max-bulk-len", str(64 * 1024 * 1024)]
            if self.password is not None:
                a += ["--requirepass", self.password]
            if self.timeout is not None:
                a += ["--timeout", str(self.timeout)]
            if self.maxclients is not None:
                a += ["--maxclients", str(self.maxclients)]
            if self.unixsocket is not None:
                a += ["--unixsocket", self.unixsocket]
            return a + self.extra
        a = [DSKVS_SERVER, "--store", self.store, "--bind", self.host,
             "--port", str(self.port)]
        if self.password is not None:
            a += ["--requirepass", self.password]
        if self.timeout is not None:
            a += ["--timeout", str(self.timeout)]
        if self.sync is not None:
            a += ["--sync", self.sync]
        if self.maxclients is not None:
            a += ["--maxclients", str(self.maxclients)]
        if self.threads is not None:
            a += ["--threads", str(self.threads)]
        if self.unixsocket is not None:
            a += ["--unixsocket", self.unixsocket]
        return a + self.extra

    def start(self):
        for _ in range(5):
            self.port = free_port()
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(self.argv(), stdout=log,
                                             stderr=log)
            if self._wait_ready():
                return self
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        raise RuntimeError("server did not start: " + self.logtext())

    def _wait_ready(self):
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # exited: maybe the port was taken
            try:
                with socket.create_connection((self.host, self.port), 1) as s:
                    s.sendall(b"PING\r\n")
                    line = s.recv(100)
                    # Answering at all (PONG, or NOAUTH with a password)
                    # means it is serving.
                    if line.startswith((b"+PONG", b"-NOAUTH")):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def logtext(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM):
        """Stop with sig and return the exit status (negative: killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("server did not stop on signal %d" % sig)
        self.proc = None
        return rc

    def wait_exit(self):
        rc = self.proc.wait(STOP_WAIT)
        self.proc = None
        return rc

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def redis(self, **kw):
        import redis
        if self.password is not None and "password" not in kw:
            kw["password"] = self.password
        return redis.Redis(host=self.host, port=self.port,
                           socket_timeout=STOP_WAIT, **kw)

    def raw(self, **kw):
        return Raw(self.host, self.port, **kw)


# ---- a raw RESP2/RESP3 client: exact bytes and reply types -------------

class Err(str):
    """An error reply; the str is its text, "ERR ..." or "WRONGTYPE ..."."""


class Map(list):
    """A RESP3 map '%': a list of (key, value) pairs, in order."""


class Set(list):
    """A RESP3 set '~'."""


class Push(list):
    """A RESP3 push '>'."""


class Double(float):
    """A RESP3 double ','."""


class Verbatim(bytes):
    """A RESP3 verbatim string '='; .fmt is its 3-letter format."""


class Null:
    """RESP3 null '_' (RESP2's null bulk and null array are None)."""

    def __repr__(self):
        return "Null"

    def __eq__(self, other):
        return isinstance(other, Null)

    def __hash__(self):
        return 0


NULL = Null()


class Closed(Exception):
    """The server closed the connection."""


class Raw:
    def __init__(self, host, port, timeout=STOP_WAIT):
        self.sock = socket.create_connection((host, port), timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def cmd(self, *args):
        self.send(self.encode(*args))
        return self.reply()

    def _fill(self):
        data = self.sock.recv(1 << 16)
        if not data:
            raise Closed()
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return Err(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._bytes(n)
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return None
            items = [self.reply() for _ in range(n)]
            return {b"*": list, b"~": Set, b">": Push}[t](items)
        if t == b"%":
            n = int(rest)
            return Map((self.reply(), self.reply()) for _ in range(n))
        if t == b"_":
            return NULL
        if t == b",":
            return Double(rest.decode())
        if t == b"#":
            return rest == b"t"
        if t == b"(":
            return int(rest)
        if t == b"=":
            data = self._bytes(int(rest))
            v = Verbatim(data[4:])
            v.fmt = data[:3].decode()
            return v
        if t == b"|":  # attribute: skip it, return what follows
            n = int(rest)
            for _ in range(2 * n):
                self.reply()
            return self.reply()
        raise AssertionError("bad reply type: %r" % line)

    def closed(self):
        """True once the server closed the connection (reading and
        dropping whatever it sent before that)."""
        try:
            while True:
                self._fill()
                self.buf = b""
        except Closed:
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True


class ServerTest(unittest.TestCase):
    """A TestCase with one server for the whole class, emptied (FLUSHALL)
    before each test. Subclasses may set server_kw."""

    server_kw = {}

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(**cls.server_kw).start()

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.srv.proc is not None:
                rc = cls.srv.stop()
                if rc != 0:
                    raise AssertionError("server exit status %s: %s" %
                                         (rc, cls.srv.logtext()))
        finally:
            cls.srv.cleanup()

    def setUp(self):
        self.r = self.srv.redis()
        self.r.flushall()

    def tearDown(self):
        self.r.close()

    def raw(self):
        return self.srv.raw()

    def assertErr(self, reply, text):
        self.assertIsInstance(reply, Err, "expected an error, got %r" %
                              (reply,))
        self.assertEqual(str(reply), text)



def main():
    unittest.main(verbosity=2)


def exec_with_server(argv):
    """srv.py exec CMD...: start a server, run CMD with SRV_HOST and
    SRV_PORT set, stop the server; fail if CMD fails or the server does
    not exit 0."""
    s = Server().start()
    try:
        env = dict(os.environ, SRV_HOST=s.host, SRV_PORT=str(s.port))
        rc = subprocess.call(argv, env=env)
        src = s.stop()
        if src != 0:
            print("server exit status %s: %s" % (src, s.logtext()))
            return 1
        return rc
    finally:
        s.cleanup()


if __name__ == "__main__":
    import sys
    if len(sys.argv) > 2 and sys.argv[1] == "exec":
        sys.exit(exec_with_server(sys.argv[2:]))
    raise SystemExit("usage: srv.py exec CMD [ARGS...]")

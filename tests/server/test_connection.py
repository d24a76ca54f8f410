"""Connection and server commands, AUTH/NOAUTH, SHUTDOWN, WAITAOF."""
import srv
from srv import Map, NULL


class Connection(srv.ServerTest):
    def test_ping_echo(self):
        with self.raw() as c:
            self.assertEqual(c.cmd("PING"), "PONG")
            self.assertEqual(c.cmd("PING", "hi\x00there"), b"hi\x00there")
            self.assertEqual(c.cmd("ECHO", ""), b"")
            self.assertEqual(c.cmd("ECHO", "a b"), b"a b")
            self.assertErr(c.cmd("PING", "a", "b"),
                           "ERR wrong number of arguments for 'ping' command")
            self.assertErr(c.cmd("ECHO"),
                           "ERR wrong number of arguments for 'echo' command")
            # Inline commands, as telnet and redis-cli --pipe send them.
            c.send(b"PING\r\n")
            self.assertEqual(c.reply(), "PONG")
            c.send(b"ECHO   two  \r\n")
            self.assertEqual(c.reply(), b"two")
            c.send(b"ECHO \"quoted \\x41 str\"\n")
            self.assertEqual(c.reply(), b"quoted A str")

    def test_select(self):
        with self.raw() as c:
            self.assertEqual(c.cmd("SELECT", 0), "OK")
            self.assertErr(c.cmd("SELECT", 1), "ERR DB index is out of range")
            self.assertErr(c.cmd("SELECT", "x"),
                           "ERR value is not an integer or out of range")

    def test_hello(self):
        with self.raw() as c:
            h = c.cmd("HELLO")
            self.assertIsInstance(h, list)
            d = dict(zip(h[0::2], h[1::2]))
            self.assertEqual(d[b"proto"], 2)
            self.assertIsInstance(d[b"id"], int)
            for k in (b"server", b"version", b"mode", b"role", b"modules"):
                self.assertIn(k, d)
            h = c.cmd("HELLO", 3)
            self.assertIsInstance(h, Map)
            d = dict(h)
            self.assertEqual(d[b"proto"], 3)
            self.assertEqual(d[b"role"], b"master")
            self.assertEqual(d[b"modules"], [])
            self.assertErr(c.cmd("HELLO", 4),
                           "NOPROTO unsupported protocol version")
            self.assertErr(c.cmd("HELLO", 1),
                           "NOPROTO unsupported protocol version")
            self.assertErr(c.cmd("HELLO", "x"),
                           "ERR Protocol version is not an integer or out "
                           "of range")
            h = c.cmd("HELLO", 2, "SETNAME", "me")
            self.assertIsInstance(h, list)
            self.assertEqual(c.cmd("CLIENT", "GETNAME"), b"me")
            # Without a password the default user takes any password.
            self.assertIsInstance(c.cmd("HELLO", 3, "AUTH", "default", "pw"),
                                  Map)
            self.assertErr(c.cmd("AUTH", "pw"),
                           "ERR AUTH <password> called without any password "
                           "configured for the default user. Are you sure "
                           "your configuration is correct?")
            self.assertEqual(c.cmd("AUTH", "default", "pw"), "OK")

    def test_client(self):
        with self.raw() as c, self.raw() as d:
            self.assertIsNone(c.cmd("CLIENT", "GETNAME"))
            self.assertEqual(c.cmd("CLIENT", "SETNAME", "worker-1"), "OK")
            self.assertEqual(c.cmd("CLIENT", "GETNAME"), b"worker-1")
            self.assertErr(c.cmd("CLIENT", "SETNAME", "with space"),
                           "ERR Client names cannot contain spaces, newlines "
                           "or special characters.")
            cid, did = c.cmd("CLIENT", "ID"), d.cmd("CLIENT", "ID")
            self.assertIsInstance(cid, int)
            self.assertNotEqual(cid, did)
            info = c.cmd("CLIENT", "INFO").decode()
            self.assertIn("id=%d " % cid, info)
            self.assertIn(" name=worker-1 ", info)
            self.assertTrue(info.endswith("\n"))
            lst = c.cmd("CLIENT", "LIST").decode()
            lines = lst.strip("\n").split("\n")
            ids = {int(l.split(" ")[0][3:]) for l in lines}
            self.assertTrue({cid, did} <= ids)
            self.assertEqual(c.cmd("CLIENT", "SETNAME", ""), "OK")
            self.assertIsNone(c.cmd("CLIENT", "GETNAME"))
            self.assertErr(c.cmd("CLIENT", "NOSUCH"),
                           "ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.")

    def test_reset_quit(self):
        with self.raw() as c:
            c.cmd("CLIENT", "SETNAME", "x")
            c.cmd("HELLO", 3)
            self.assertEqual(c.cmd("RESET"), "RESET")
            self.assertIsNone(c.cmd("CLIENT", "GETNAME"))
            # Back to RESP2: a null bulk, not RESP3's null.
            self.assertIsNone(c.cmd("GET", "nokey"))
            self.assertEqual(c.cmd("QUIT"), "OK")
            self.assertTrue(c.closed())

    def test_info(self):
        self.r.set("a", "1")
        self.r.hset("h", "f", "v")
        with self.raw() as c:
            info = c.cmd("INFO").decode()
            for sec in ("# Server", "# Clients", "# Memory", "# Persistence",
                        "# Stats", "# Keyspace"):
                self.assertIn(sec + "\r\n", info)
            self.assertIn("db0:keys=2,", info)
            ks = c.cmd("INFO", "keyspace").decode()
            self.assertTrue(ks.startswith("# Keyspace\r\n"))
            self.assertNotIn("# Server", ks)
            srvsec = c.cmd("INFO", "server").decode()
            self.assertIn("redis_version:", srvsec)
            self.assertIn("tcp_port:%d\r\n" % self.srv.port, srvsec)
            cl = c.cmd("INFO", "clients").decode()
            self.assertIn("connected_clients:", cl)
            self.assertEqual(c.cmd("INFO", "nosuchsection"), b"")

    def test_config(self):
        with self.raw() as c:
            got = c.cmd("CONFIG", "GET", "maxclients")
            self.assertEqual(got[0], b"maxclients")
            self.assertGreater(int(got[1]), 0)
            self.assertEqual(c.cmd("CONFIG", "GET", "nosuchparam"), [])
            # Encoding parameters: accepted (and ignored by dskvs).
            self.assertEqual(c.cmd("CONFIG", "SET",
                                   "hash-max-listpack-entries", "256"), "OK")
            self.assertEqual(c.cmd("CONFIG", "SET",
                                   "hash-max-ziplist-value", "64"), "OK")
            self.assertErr(c.cmd("CONFIG", "SET", "nosuchparam", "1"),
                           "ERR Unknown option or number of arguments for "
                           "CONFIG SET - 'nosuchparam'")
            self.assertErr(c.cmd("CONFIG", "GET"),
                           "ERR wrong number of arguments for 'config|get' "
                           "command")
            c.cmd("HELLO", 3)
            got = c.cmd("CONFIG", "GET", "maxclients")
            self.assertIsInstance(got, Map)

    def test_command(self):
        with self.raw() as c:
            n = c.cmd("COMMAND", "COUNT")
            self.assertIsInstance(n, int)
            table = c.cmd("COMMAND")
            self.assertEqual(len(table), n)
            names = {e[0] for e in table}
            for name in (b"hset", b"hget", b"get", b"set", b"ping", b"scan",
                         b"hello", b"info", b"command"):
                self.assertIn(name, names)
            for e in table:
                if e[0] == b"hset":
                    self.assertEqual(e[1], -4)  # arity
                if e[0] == b"get":
                    self.assertEqual(e[1], 2)
            docs = c.cmd("COMMAND", "DOCS", "hset", "get")
            d = dict(zip(docs[0::2], docs[1::2]))
            self.assertEqual(set(d), {b"hset", b"get"})
            hs = dict(zip(d[b"hset"][0::2], d[b"hset"][1::2]))
            self.assertIn(b"summary", hs)
            self.assertIn(b"arguments", hs)
            self.assertEqual(c.cmd("COMMAND", "DOCS", "nosuchcmd"), [])

    def test_time(self):
        with self.raw() as c:
            t = c.cmd("TIME")
            self.assertEqual(len(t), 2)
            self.assertGreater(int(t[0]), 1600000000)
            self.assertTrue(0 <= int(t[1]) < 1000000)

    def test_tooling_noops(self):
        with self.raw() as c:
            self.assertEqual(c.cmd("FUNCTION", "FLUSH"), "OK")
            self.assertEqual(c.cmd("FUNCTION", "LIST"), [])
            self.assertEqual(c.cmd("SCRIPT", "FLUSH"), "OK")

    def test_unknown_command(self):
        with self.raw() as c:
            self.assertErr(c.cmd("NOSUCH"),
                           "ERR unknown command 'NOSUCH', with args "
                           "beginning with: ")
            self.assertErr(c.cmd("nosuch", "a", "b c"),
                           "ERR unknown command 'nosuch', with args "
                           "beginning with: 'a' 'b c' ")
            # The connection goes on.
            self.assertEqual(c.cmd("PING"), "PONG")


class Auth(srv.ServerTest):
    server_kw = {"password": "s3cret pw"}

    def test_noauth_and_auth(self):
        with self.raw() as c:
            self.assertErr(c.cmd("GET", "k"),
                           "NOAUTH Authentication required.")
            self.assertErr(c.cmd("HSET", "h", "f", "v"),
                           "NOAUTH Authentication required.")
            self.assertErr(c.cmd("AUTH", "wrong"),
                           "WRONGPASS invalid username-password pair or "
                           "user is disabled.")
            self.assertErr(c.cmd("AUTH", "default", "wrong"),
                           "WRONGPASS invalid username-password pair or "
                           "user is disabled.")
            self.assertErr(c.cmd("GET", "k"),
                           "NOAUTH Authentication required.")
            self.assertEqual(c.cmd("AUTH", "s3cret pw"), "OK")
            self.assertIsNone(c.cmd("GET", "k"))
        with self.raw() as c:
            self.assertEqual(c.cmd("AUTH", "default", "s3cret pw"), "OK")
            self.assertEqual(c.cmd("PING"), "PONG")
        with self.raw() as c:
            self.assertErr(c.cmd("HELLO", 3),
                           "NOAUTH HELLO must be called with the client "
                           "already authenticated, otherwise the HELLO "
                           "AUTH <user> <pass> option can be used "
                           "to authenticate the client and select the "
                           "RESP protocol version at the same time")
            h = c.cmd("HELLO", 3, "AUTH", "default", "s3cret pw")
            self.assertIsInstance(h, Map)
            self.assertEqual(c.cmd("GET", "k"), NULL)
        with self.raw() as c:
            # RESET forgets the authentication.
            c.cmd("AUTH", "s3cret pw")
            self.assertEqual(c.cmd("RESET"), "RESET")
            self.assertErr(c.cmd("GET", "k"),
                           "NOAUTH Authentication required.")

    def test_unauthenticated_big_multibulk(self):
        # Before AUTH, a request may not announce more than a handful of
        # arguments: the connection is refused and closed.
        with self.raw() as c:
            c.send(b"*100\r\n")
            self.assertErr(c.reply(), "ERR Protocol error: unauthenticated "
                           "multibulk length")
            self.assertTrue(c.closed())


@srv.dskvs_only
class AuthFile(srv.ServerTest):
    """--requirepass-file: the password is the file's first line."""

    @classmethod
    def setUpClass(cls):
        s = srv.Server()
        pwfile = s.tmp + "/pw"
        with open(pwfile, "w") as f:
            f.write("from a file\n")
        s.extra = ["--requirepass-file", pwfile]
        s.password = None
        cls.srv = s.start()

    def setUp(self):
        pass

    def tearDown(self):
        pass

    def test_file_password(self):
        with self.raw() as c:
            self.assertErr(c.cmd("GET", "k"),
                           "NOAUTH Authentication required.")
            self.assertErr(c.cmd("AUTH", "from a file\n"),
                           "WRONGPASS invalid username-password pair or "
                           "user is disabled.")
            self.assertEqual(c.cmd("AUTH", "from a file"), "OK")


@srv.dskvs_only
class WaitAof(srv.ServerTest):
    """WAITAOF numlocal 0 timeout (Redis 7.2's reply: [local, replicas]).
    Redis 7.0, the oracle, does not have the command."""

    def test_waitaof(self):
        with self.raw() as c:
            self.assertEqual(c.cmd("WAITAOF", 0, 0, 0), [1, 0])
            c.cmd("HSET", "h", "f", "v")
            self.assertEqual(c.cmd("WAITAOF", 1, 0, 0), [1, 0])
            c.cmd("SET", "k", "v")
            self.assertEqual(c.cmd("WAITAOF", 1, 0, 1000), [1, 0])
            # Pipelined after a burst of writes: answered in order.
            c.send(b"".join(c.encode("HSET", "p", "f%d" % i, i)
                            for i in range(500)) +
                   c.encode("WAITAOF", 1, 0, 0))
            for _ in range(500):
                self.assertEqual(c.reply(), 1)
            self.assertEqual(c.reply(), [1, 0])
            self.assertErr(c.cmd("WAITAOF", "x", 0, 0),
                           "ERR value is not an integer or out of range")
            self.assertErr(c.cmd("WAITAOF", 1, 0),
                           "ERR wrong number of arguments for 'waitaof' "
                           "command")


class UnixSocket(srv.ServerTest):
    """--unixsocket PATH: the same protocol on a Unix-domain socket, next
    to the TCP port."""

    @classmethod
    def setUpClass(cls):
        s = srv.Server()
        s.unixsocket = s.tmp + "/srv.sock"
        cls.srv = s.start()

    def test_unix_socket(self):
        import socket
        import subprocess
        u = socket.socket(socket.AF_UNIX)
        u.settimeout(srv.STOP_WAIT)
        u.connect(self.srv.unixsocket)
        c = srv.Raw.__new__(srv.Raw)
        c.sock, c.buf = u, b""
        with c:
            self.assertEqual(c.cmd("PING"), "PONG")
            self.assertEqual(c.cmd("HSET", "uh", "f", "v"), 1)
        self.assertEqual(self.r.hget("uh", "f"), b"v")
        out = subprocess.run(["redis-cli", "-s", self.srv.unixsocket,
                              "HGET", "uh", "f"], capture_output=True,
                             check=True)
        self.assertEqual(out.stdout, b"v\n")


class Threads(srv.ServerTest):
    """--threads 3 (dskvs; redis has one loop): connections spread over
    event loops still see one store, and each its own replies in order."""
    server_kw = {"threads": 3}

    def test_many_clients_over_loops(self):
        import threading
        errors = []

        def client(k):
            try:
                with self.raw() as c:
                    reqs = b"".join(srv.Raw.encode("HSET", "t%d" % k,
                                                   "f%d" % i, i)
                                    for i in range(500))
                    c.send(reqs + srv.Raw.encode("HLEN", "t%d" % k))
                    for _ in range(500):
                        if c.reply() != 1:
                            errors.append(k)
                    if c.reply() != 500:
                        errors.append(k)
            except Exception as e:  # recorded for the test thread
                errors.append((k, e))

        ts = [threading.Thread(target=client, args=(k,)) for k in range(12)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        with self.raw() as c:
            self.assertEqual(c.cmd("DBSIZE"), 12)
            for k in range(12):
                self.assertEqual(c.cmd("HLEN", "t%d" % k), 500)
            ids = {int(l.split(" ")[0][3:])
                   for l in c.cmd("CLIENT", "LIST").decode().split("\n")
                   if l}
            self.assertIn(c.cmd("CLIENT", "ID"), ids)


class Shutdown(srv.ServerTest):
    def test_shutdown(self):
        self.r.set("k", "v")
        with self.raw() as c:
            c.send(c.encode("SHUTDOWN"))
            # Redis closes the connection without a reply on success.
            self.assertTrue(c.closed())
        self.assertEqual(self.srv.wait_exit(), 0)


if __name__ == "__main__":
    srv.main()

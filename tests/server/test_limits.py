"""The bad inputs of the issue's item 4: each gets Redis's error and a
closed connection, and the server goes on serving everyone else."""
import subprocess

import srv
from srv import Err

VALUE_MAX = 64 * 1024 * 1024  # DSKVS_VALUE_MAX (redis: proto-max-bulk-len)


class Limits(srv.ServerTest):
    def tearDown(self):
        # Whatever a test did to its connection, the server still serves.
        self.assertTrue(self.r.ping())
        super().tearDown()

    def expect_close(self, data, error):
        with self.raw() as c:
            c.send(data)
            self.assertErr(c.reply(), error)
            self.assertTrue(c.closed())

    def test_bulk_length_over_value_limit(self):
        # Refused from the header alone: the bytes are never sent.
        self.expect_close(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" %
                          (VALUE_MAX + 1),
                          "ERR Protocol error: invalid bulk length")
        self.expect_close(b"*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\nf\r\n$%d\r\n"
                          % (VALUE_MAX + 1),
                          "ERR Protocol error: invalid bulk length")
        self.expect_close(b"*1\r\n$-5\r\n",
                          "ERR Protocol error: invalid bulk length")
        self.expect_close(b"*1\r\n$abc\r\n",
                          "ERR Protocol error: invalid bulk length")
        self.expect_close(b"*1\r\n+PING\r\n",
                          "ERR Protocol error: expected '$', got '+'")

    def test_value_at_the_limit(self):
        # Exactly the limit is a value like any other.
        with self.raw() as c:
            c.send(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % VALUE_MAX)
            chunk = b"z" * (1 << 20)
            for _ in range(VALUE_MAX // len(chunk)):
                c.send(chunk)
            c.send(b"\r\n")
            self.assertEqual(c.reply(), "OK")
            self.assertEqual(c.cmd("STRLEN", "big"), VALUE_MAX)
            self.assertEqual(c.cmd("DEL", "big"), 1)

    def test_multibulk_count(self):
        self.expect_close(b"*%d\r\n" % (2 ** 31),
                          "ERR Protocol error: invalid multibulk length")
        self.expect_close(b"*x\r\n",
                          "ERR Protocol error: invalid multibulk length")

    @srv.dskvs_only
    def test_too_many_arguments(self):
        # dskvs bounds the arguments of one request (Redis allows 2^31).
        with self.raw() as c:
            c.send(b"*100000000\r\n")
            r = c.reply()
            self.assertIsInstance(r, Err)
            self.assertTrue(str(r).startswith("ERR Protocol error"), r)
            self.assertTrue(c.closed())

    def test_unterminated_inline(self):
        # 70 KB without a newline: over the inline limit (64 KiB).
        with self.raw() as c:
            try:
                c.send(b"a" * 70000)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.assertErr(c.reply(),
                           "ERR Protocol error: too big inline request")
            self.assertTrue(c.closed())

    def test_unterminated_count(self):
        with self.raw() as c:
            try:
                c.send(b"*" + b"1" * 70000)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.assertErr(c.reply(),
                           "ERR Protocol error: too big mbulk count string")
            self.assertTrue(c.closed())
        with self.raw() as c:
            try:
                c.send(b"*1\r\n$" + b"1" * 70000)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.assertErr(c.reply(),
                           "ERR Protocol error: too big bulk count string")
            self.assertTrue(c.closed())

    def test_unbalanced_quotes(self):
        self.expect_close(b'ECHO "abc\r\n',
                          "ERR Protocol error: unbalanced quotes in request")

    def test_many_connections_stay_bounded(self):
        """A hundred clients each leaving half a request: the server keeps
        answering the others."""
        conns = []
        try:
            for i in range(100):
                c = self.raw()
                c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\n" + b"x" * 500)
                conns.append(c)
            self.assertTrue(self.r.ping())
            for c in conns:
                c.send(b"y" * 500 + b"\r\n")
                self.assertEqual(c.reply(), "OK")
        finally:
            for c in conns:
                c.close()


class IdleTimeout(srv.ServerTest):
    server_kw = {"timeout": 1}

    def test_idle_client_closed(self):
        with self.raw() as c:
            self.assertEqual(c.cmd("PING"), "PONG")
            # Idle past --timeout: closed (Redis sends nothing before).
            self.assertTrue(c.closed())
        with self.raw() as c:
            # Half a request does not keep a connection alive either.
            c.send(b"*2\r\n$4\r\nECHO\r\n")
            self.assertTrue(c.closed())


class MaxClients(srv.ServerTest):
    server_kw = {"maxclients": 10}

    def setUp(self):
        pass

    def tearDown(self):
        pass

    def test_maxclients(self):
        conns = []
        try:
            for i in range(10):
                c = self.raw()
                self.assertEqual(c.cmd("PING"), "PONG")
                conns.append(c)
            with self.raw() as c:
                self.assertErr(c.reply(), "ERR max number of clients reached")
                self.assertTrue(c.closed())
        finally:
            for c in conns:
                c.close()


@srv.dskvs_only
class Bind(srv.ServerTest):
    """Like Redis's protected mode: no non-loopback address without a
    password."""

    @classmethod
    def setUpClass(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        pass

    def setUp(self):
        pass

    def tearDown(self):
        pass

    def test_refuses_public_bind_without_password(self):
        for addr in ("0.0.0.0",):
            s = srv.Server()
            try:
                s.host = addr
                s.port = srv.free_port()
                p = subprocess.run(s.argv(), capture_output=True,
                                   timeout=20)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn(b"password", p.stderr)
            finally:
                s.cleanup()


if __name__ == "__main__":
    srv.main()

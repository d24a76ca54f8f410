"""
dskvs export --resp | redis-cli --pipe into Debian's redis-server, then
every hash compared with the store's content (dskvs dump).

  export_redis.py DSKVS

DSKVS is the dskvs tool. The store holds many hashes: binary member names
and values (NUL bytes, every byte value), empty members and values, large
values, one collection big enough to be split over several HSETs, and one
exported with --strings, whose members must come back as string keys.
"""
import base64
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["SRV_MODE"] = "redis"
import srv  # noqa: E402


def b64(b):
    return base64.b64encode(b).decode()


STRINGS = b"strs"


def make_data(rng):
    data = {}
    for i in range(300):
        coll = "c%03d" % i
        h = {}
        for j in range(rng.randint(1, 40)):
            name = bytes(rng.randrange(256) for _ in range(rng.randint(0, 12)))
            h[name] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        data[coll.encode()] = h
    data[b"edge"] = {b"": b"", b"\x00": b"\x00\x00", b"empty": b"",
                     bytes(range(256)): bytes(range(256)),
                     b"crlf\r\n": b"\r\n$3\r\n*1\r\n",
                     b"a/b/c": b"slash in a member"}
    data[b"large"] = {b"v%d" % k: os.urandom(1 << 20) * (k + 1)
                      for k in range(4)}
    data[b"large"][b"8MiB"] = os.urandom(8 << 20)
    data[b"many"] = {b"m%06d" % k: b"%d" % k for k in range(25000)}
    data["utf8 ☃".encode()] = {"clé".encode(): "valeur ✓".encode()}
    # Exported with --strings: string keys, as dskvs-server's bare keys.
    data[STRINGS] = {b"str:%d" % k: b"v%d" % k for k in range(500)}
    data[STRINGS][b"str:\x00bin"] = b"\x00"
    data[STRINGS][b"str:empty"] = b""
    return data


def main():
    dskvs = sys.argv[1]
    rng = random.Random(14)
    tmp = tempfile.mkdtemp(prefix="dskvs-export-test-")
    server = None
    try:
        data = make_data(rng)
        store = os.path.join(tmp, "store")
        lines = []
        for coll, h in data.items():
            for m, v in h.items():
                lines.append(json.dumps({"key_b64": b64(coll + b"/" + m),
                                         "value_b64": b64(v)}))
        dump = os.path.join(tmp, "in.jsonl")
        with open(dump, "w") as f:
            f.write("\n".join(lines) + "\n")
        subprocess.run([dskvs, "--no-progress", "-s", store, "load", dump],
                       check=True)

        # The store's content, read back through the tool.
        out = subprocess.run([dskvs, "--no-progress", "-s", store, "dump"],
                             check=True, capture_output=True).stdout
        content = {}
        for line in out.decode().splitlines():
            rec = json.loads(line)
            if "key" not in rec and "key_b64" not in rec:
                continue
            key = (base64.b64decode(rec["key_b64"]) if "key_b64" in rec
                   else rec["key"].encode())
            val = (base64.b64decode(rec["value_b64"]) if "value_b64" in rec
                   else rec["value"].encode())
            coll, member = key.split(b"/", 1)
            content.setdefault(coll, {})[member] = val
        assert content == data, "the store does not hold what was loaded"

        server = srv.Server().start()
        pipe = ("set -o pipefail; '%s' --no-progress -s '%s' export --resp "
                "--strings %s | redis-cli -h %s -p %d --pipe" %
                (dskvs, store, STRINGS.decode(), server.host, server.port))
        p = subprocess.run(["bash", "-c", pipe], capture_output=True)
        print(p.stdout.decode(), p.stderr.decode())
        assert p.returncode == 0, "export | redis-cli --pipe failed"
        assert b"errors: 0," in p.stdout, p.stdout

        r = server.redis()
        keys = set(r.keys("*"))
        want = (set(content) - {STRINGS}) | set(content[STRINGS])
        assert keys == want, (sorted(keys ^ want)[:10])
        for k, v in content[STRINGS].items():
            assert r.type(k) == b"string", k
            assert r.get(k) == v, k
        for coll, h in content.items():
            if coll == STRINGS:
                continue
            assert r.type(coll) == b"hash", coll
            got = r.hgetall(coll)
            assert got == h, "hash %r differs" % coll
        print("export_redis: %d hashes, %d fields, all equal" %
              (len(content), sum(len(h) for h in content.values())))
        r.close()
        assert server.stop() == 0
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

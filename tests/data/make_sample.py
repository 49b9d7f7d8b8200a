#!/usr/bin/env python3
"""Make tests/data/sample-7.0.15.core.zst: a small real core of Debian's redis-server 7.0.15.

Starts redis-server on a free port, fills a few thousand keys of every 7.0 type and
encoding (TTLs far in the future so the sample never expires), records DEBUG DIGEST and
DBSIZE per db in sample-7.0.15.expected.json, takes a core with gcore and compresses it
with zstd -19. Needs redis-server 7.0.15 (Debian 12), gdb and zstd.

    python3 tests/data/make_sample.py
"""
import json, os, shutil, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
FAR = 4102444800000  # 2100-01-01 in ms: expire times that stay in the future


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")
        self.queue = []

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.queue.append(b"".join(out))

    def reply(self):
        line = self.f.readline()
        kind, body = line[:1], line[1:-2]
        if kind == b"-":
            raise RuntimeError(body.decode())
        if kind in b"+:":
            return body
        if kind == b"$":
            n = int(body)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if kind == b"*":
            return [self.reply() for _ in range(int(body))]
        raise RuntimeError("bad reply %r" % line)

    def flush(self):
        self.s.sendall(b"".join(self.queue))
        replies = [self.reply() for _ in self.queue]
        self.queue = []
        return replies


def fill(c):
    c.cmd("CONFIG", "SET", "list-compress-depth", "1")
    c.cmd("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1000")
    for db in (0, 1, 5):
        c.cmd("SELECT", db)
        for i in range(400):
            c.cmd("SET", f"user:{i}:visits", i * 13 - 50)
            c.cmd("SET", f"user:{i}:name", f"name-{i}" * (1 + i % 5))
            c.cmd("SET", f"session:{i}", "s" * (45 + i % 300))
        c.cmd("SET", "page:cache", "<html>" + "lorem ipsum " * 4000 + "</html>")
        c.cmd("SET", b"bin\x00\xffkey", b"\x00\xff\r\n")
        c.cmd("RPUSH", "queue:small", "a", "b", "3", "-4")
        for i in range(2000):
            c.cmd("RPUSH", "queue:big", f"job-{i}-" + "p" * (i % 40), i)
        c.cmd("RPUSH", "queue:plain", "x", "P" * 4000, "y", "Q" * 2500, "z")
        c.cmd("SADD", "ids:small", *range(20))
        c.cmd("SADD", "ids:big", *range(0, 3000, 3))
        c.cmd("SADD", "tags", *[f"tag{i}" for i in range(200)])
        c.cmd("ZADD", "rank:small", 1, "a", 2.5, "b", -3, "c")
        args = []
        for i in range(300):
            args += [i * 0.75 - 20, f"player{i}"]
        c.cmd("ZADD", "rank:big", *args)
        c.cmd("ZADD", "rank:big", "inf", "top", "-inf", "bottom")
        c.cmd("HSET", "cfg:small", "a", "1", "b", "two")
        args = []
        for i in range(600):
            args += [f"field{i}", f"value{i}"]
        c.cmd("HSET", "cfg:big", *args)
        for k in ("user:1:name", "session:2", "queue:big", "rank:big", "cfg:big", "ids:small"):
            c.cmd("PEXPIREAT", k, FAR + db)
    c.flush()


def main():
    tmp = tempfile.mkdtemp(prefix="rescue-sample-")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", tmp, "--enable-debug-command", "yes"],
        stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                c = Conn(port)
                break
            except OSError:
                time.sleep(0.05)
        fill(c)
        c.cmd("DEBUG", "DIGEST")
        digest = c.flush()[0].decode()
        sizes = {}
        for db in range(16):
            c.cmd("SELECT", db)
            c.cmd("DBSIZE")
            n = int(c.flush()[1])
            if n:
                sizes[str(db)] = n
        subprocess.run(["gcore", "-o", os.path.join(tmp, "core"), str(server.pid)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        core = os.path.join(tmp, f"core.{server.pid}")
        out = os.path.join(HERE, "sample-7.0.15.core.zst")
        subprocess.run(["zstd", "-19", "-T0", "-q", "-f", core, "-o", out], check=True)
        version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
        with open(os.path.join(HERE, "sample-7.0.15.expected.json"), "w") as f:
            json.dump({"redis": version, "digest": digest, "dbsize": sizes}, f, indent=2)
            f.write("\n")
        print(f"{out}: {os.path.getsize(out)} bytes, digest {digest}, dbsize {sizes}")
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Many idle connections and slow ones, functionally (issue 13, "Goals"; the latency goal itself
is measured by `strata bench connections`, docs/benchmarks.md, never asserted here):

- started with a soft open-file limit of 1024 (a common default), the server raises it to the
  hard limit and says so, and then holds 1,100 idle connections while it answers normal
  requests and /healthz at once;
- the idle ones are closed by --idle-timeout-ms, the 1,101st-over-the-limit is answered 503
  naming the limit;
- slow-drip connections (a header one byte at a time, a body that never comes) are cut by the
  timeouts, and a slow-drip object upload too when the build has --min-upload-bytes-per-second.

Usage: test_connections.py STRATA_BINARY
"""
import http.client
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_e2e  # noqa: E402

STRATA = None
IDLE = 1100  # more than a soft limit of 1024 descriptors allows
IDLE_TIMEOUT_MS = 4000


def soft_limit_1024():
    """preexec_fn: the child starts with a soft RLIMIT_NOFILE of 1024 (hard unchanged)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))


class Server(strata_e2e.ServerProcess):
    """ServerProcess, started with a soft open-file limit of 1024."""

    def __init__(self, data_dir, extra):
        super().__init__(STRATA, data_dir, extra, log_level="info", preexec_fn=soft_limit_1024)

    def request(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


def closed_by_server(sock, within_s):
    """Seconds until the server closed `sock` (EOF or reset), or None within `within_s`."""
    start = time.monotonic()
    sock.settimeout(within_s)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return time.monotonic() - start
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - start
    except socket.timeout:
        return None


class ConnectionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < IDLE + 1500:
            raise unittest.SkipTest("the hard open-file limit %d is too low for %d connections"
                                    % (hard, IDLE))
        # This process holds the connections too.
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        cls.tmp = tempfile.mkdtemp(prefix="strata_conn_")
        help_text = subprocess.run([STRATA, "serve", "--help"], capture_output=True, text=True,
                                   timeout=30).stdout
        cls.min_rate = "--min-upload-bytes-per-second" in help_text
        extra = ["--max-connections", str(IDLE + 20), "--idle-timeout-ms", str(IDLE_TIMEOUT_MS)]
        if cls.min_rate:
            extra += ["--min-upload-bytes-per-second", "1024", "--upload-rate-window-ms", "1000"]
        cls.server = Server(cls.tmp, extra)
        if cls.server.request("PUT", "/v1/buckets/conn", b"{}")[0] != 200:
            cls.server.stop()  # tearDownClass does not run when setUpClass fails
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise RuntimeError("could not create the bucket")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.server.port), timeout=10)

    def test_idle_crowd_normal_requests_and_the_limit(self):
        with open(os.path.join(self.tmp, "server.log")) as f:
            self.assertIn("raised the open-file limit to the hard limit", f.read())
        idle = []
        try:
            for _ in range(IDLE):
                idle.append(self.connect())
            # While they are open: normal requests and /healthz are answered at once.
            start = time.monotonic()
            for i in range(20):
                status, body = self.server.request("PUT", "/v1/buckets/conn/objects/k%d" % i,
                                                   b"v" * 100)
                self.assertEqual(status, 200, body)
                status, body = self.server.request("GET", "/v1/buckets/conn/objects/k%d" % i)
                self.assertEqual((status, body), (200, b"v" * 100))
                self.assertEqual(self.server.request("GET", "/healthz")[0], 200)
            self.assertLess(time.monotonic() - start, 20)
            # Fill the limit (the crowd, plus a few held connections that proved they were
            # accepted), then one more is refused, naming the limit.
            held = []
            refused = None
            for _ in range(40):
                c = self.connect()
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                answer = c.recv(4096)
                if answer.startswith(b"HTTP/1.1 503"):
                    refused = answer
                    c.close()
                    break
                self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer)
                held.append(c)
            self.assertIsNotNone(refused, "no connection was refused at the limit")
            self.assertIn(b"connections: the server's connection limit is reached", refused)
            for c in held:
                c.close()
            # The idle timeout closes the crowd.
            deadline = time.monotonic() + IDLE_TIMEOUT_MS / 1000.0 + 15
            for s in idle:
                remaining = max(0.1, deadline - time.monotonic())
                self.assertIsNotNone(closed_by_server(s, remaining),
                                     "an idle connection outlived the idle timeout")
        finally:
            for s in idle:
                s.close()
        self.assertEqual(self.server.request("GET", "/healthz")[0], 200)

    def test_slow_drips_are_cut(self):
        def drip(data, interval_s):
            s = self.connect()
            stop = threading.Event()

            def send():
                try:
                    for i in range(len(data)):
                        if stop.wait(interval_s):
                            return
                        s.sendall(data[i:i + 1])
                except OSError:
                    pass

            t = threading.Thread(target=send, daemon=True)
            t.start()
            return s, stop

        cases = {
            "header one byte every 200 ms":
                drip(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200 +
                     b"\r\n\r\n", 0.2),
            "a body that never comes":
                drip(b"POST /v1/viewing/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Length: 100\r\n\r\n", 0),
            "silence": drip(b"", 0),
        }
        if self.min_rate:
            cases["an object upload one byte every 200 ms"] = drip(
                b"PUT /v1/buckets/conn/objects/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Length: 100000\r\n\r\n" + b"s" * 100000, 0.2)
        for name, (s, stop) in cases.items():
            with self.subTest(name):
                took = closed_by_server(s, IDLE_TIMEOUT_MS / 1000.0 + 10)
                stop.set()
                s.close()
                self.assertIsNotNone(took, "not cut")
        self.assertEqual(self.server.request("GET", "/healthz")[0], 200)


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

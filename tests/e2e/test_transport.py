#!/usr/bin/env python3
"""End-to-end tests of the HTTP transport of the real `strata` binary: the caps on header and
chunk-extension bytes, and the minimum upload rate.

Usage: test_transport.py PATH_TO_STRATA

Every server listens on 127.0.0.1 only, on free ports, with a throwaway data directory; every
socket has a timeout, so a server that misbehaves fails a test instead of hanging it. Only the
Python standard library is used.
"""
import http.client
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest

import strata_e2e

STRATA = None


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for pid %d" % pid)


def read_reply(sock, limit=1 << 20):
    """What the server sends until it closes, the socket times out or LIMIT bytes arrive."""
    data = b""
    try:
        while len(data) < limit:
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def metric(text, name, labels=""):
    """The value of one series in Prometheus text (0 when absent)."""
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" (\S+)"
    m = re.search(r"^" + pattern + r"$", text, re.M)
    return float(m.group(1)) if m else 0.0


class Server(strata_e2e.ServerProcess):
    def __init__(self, data_dir, extra=()):
        super().__init__(STRATA, data_dir, extra)

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def metrics(self):
        status, body = self.request("GET", "/metrics")
        assert status == 200, status
        return body.decode()

    def healthy(self):
        return self.request("GET", "/healthz")[0] == 200


def slow_drip(test, connect, path, interval=0.2, bound=8.0):
    """Starts a streamed PUT of 1 MB on a socket from CONNECT() and sends one byte every
    INTERVAL seconds until the server answers; returns (answer, seconds it took). Fails if no
    answer comes within BOUND seconds."""
    sock = connect()
    try:
        sock.sendall(b"PUT " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n")
        start = time.time()
        sock.settimeout(interval)
        reply = b""
        while time.time() - start < bound:
            try:
                sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                piece = sock.recv(65536)
                if not piece:
                    break
                reply += piece
                if b"\r\n\r\n" in reply:
                    break
            except socket.timeout:
                pass
        took = time.time() - start
        sock.settimeout(5)
        reply += read_reply(sock)
    finally:
        sock.close()
    test.assertLess(took, bound, "no answer to a slow-drip upload within %.1f s" % bound)
    return reply, took


class SlowUploadTest(unittest.TestCase):
    """An upload slower than --min-upload-bytes-per-second is cut with 408 and counted."""

    def test_slow_drip_upload_is_cut(self):
        tmp = tempfile.mkdtemp(prefix="strata_transport_slow_")
        server = Server(tmp, ["--min-upload-bytes-per-second", "1024",
                              "--upload-rate-window-ms", "1000"])
        try:
            self.assertIn(server.request("PUT", "/v1/buckets/slow", b"{}")[0], (200, 201))
            reply, took = slow_drip(
                self, lambda: socket.create_connection(("127.0.0.1", server.port), timeout=10),
                b"/v1/buckets/slow/objects/drip")
            # One window of grace, cut at the end of the first (1 s); 5 bytes/s.
            self.assertTrue(reply.startswith(b"HTTP/1.1 408"), reply[:300])
            self.assertIn(b"below the minimum of 1024 bytes/s", reply)
            self.assertGreater(took, 0.8)
            self.assertEqual(server.request("GET", "/v1/buckets/slow/objects/drip")[0], 404)
            self.assertTrue(server.healthy())
            self.assertEqual(metric(server.metrics(), "strata_http_refused_total",
                                    'reason="min_upload_rate"'), 1)
            # An upload at a normal pace is untouched.
            status, _ = server.request("PUT", "/v1/buckets/slow/objects/fast", b"y" * (1 << 20),
                                       {"Content-Type": "application/octet-stream"})
            self.assertIn(status, (200, 201))
        finally:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)


class LimitsTest(unittest.TestCase):
    """Header and chunk-extension bytes are capped; memory stays bounded."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="strata_transport_")
        cls.server = Server(cls.tmp)
        status, body = cls.server.request("PUT", "/v1/buckets/limits", b"{}")
        assert status in (200, 201), (status, body)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_a_40_mib_chunk_extension_is_refused_without_memory_growth(self):
        # Beast 1.74 buffers a chunk-size line until it ends: one 40 MiB extension grew the
        # server by 46 MB. Now the line is refused once it passes the read buffer's cap.
        pid = self.server.proc.pid
        before = rss_bytes(pid)
        peak = [before]
        sending = threading.Event()
        sending.set()

        def sample():
            while sending.is_set():
                peak[0] = max(peak[0], rss_bytes(pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=15)
        try:
            sock.sendall(b"PUT /v1/buckets/limits/objects/ext HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n5;x=")
            piece = b"a" * (1 << 20)
            try:
                for _ in range(40):
                    sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused and closed early: the point
            reply = read_reply(sock)
        finally:
            sock.close()
            sending.clear()
            sampler.join()
        self.assertTrue(reply.startswith(b"HTTP/1.1 400"), reply[:300])
        self.assertIn(b"chunk extensions: more than 4096 bytes in one request body", reply)
        grown = peak[0] - before
        self.assertLess(grown, 8 << 20, "RSS grew by %d bytes" % grown)
        self.assertTrue(self.server.healthy())
        self.assertGreaterEqual(
            metric(self.server.metrics(), "strata_http_refused_total",
                   'reason="chunk_extensions_too_large"'), 1)
        # The object was never created.
        self.assertEqual(self.server.request("GET", "/v1/buckets/limits/objects/ext")[0], 404)

    def test_many_small_chunk_extensions_add_up(self):
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=15)
        try:
            body = b"".join(b"1;n=" + b"v" * 96 + b"\r\nx\r\n" for _ in range(50)) + b"0\r\n\r\n"
            sock.sendall(b"PUT /v1/buckets/limits/objects/small HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n" + body)
            reply = read_reply(sock)
        finally:
            sock.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 400"), reply[:300])
        self.assertIn(b"chunk extensions", reply)
        # A few small extensions are fine.
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=15)
        try:
            sock.sendall(b"PUT /v1/buckets/limits/objects/small HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5;a=b\r\nhello\r\n0\r\n\r\n")
            reply = read_reply(sock)
        finally:
            sock.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 20"), reply[:300])
        self.assertEqual(self.server.request("GET", "/v1/buckets/limits/objects/small"),
                         (200, b"hello"))

    def test_oversized_headers_are_refused(self):
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=15)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " +
                         b"a" * (20 << 10) + b"\r\n\r\n")
            reply = read_reply(sock)
        finally:
            sock.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 400"), reply[:300])
        self.assertIn(b"request header exceeds 16384 bytes", reply)
        # Many fields count together.
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=15)
        try:
            fields = b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 100) for i in range(200))
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + fields + b"\r\n")
            reply = read_reply(sock)
        finally:
            sock.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 400"), reply[:300])
        self.assertTrue(self.server.healthy())
        self.assertGreaterEqual(
            metric(self.server.metrics(), "strata_http_refused_total", 'reason="header_too_large"'),
            2)

    def test_the_header_cap_is_configurable(self):
        tmp = tempfile.mkdtemp(prefix="strata_transport_hdr_")
        server = Server(tmp, ["--max-header-bytes", "65536"])
        try:
            status, _ = server.request("GET", "/healthz", headers={"X-Big": "a" * (20 << 10)})
            self.assertEqual(status, 200)
        finally:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

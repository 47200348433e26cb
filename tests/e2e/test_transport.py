#!/usr/bin/env python3
"""End-to-end tests of the HTTP transport of the real `strata` binary: TLS beside plain HTTP
(keep-alive, streamed uploads, certificate reload on SIGHUP), the caps on header and
chunk-extension bytes, and the minimum upload rate.

Usage: test_transport.py PATH_TO_STRATA

Every server listens on 127.0.0.1 only, on free ports, with a throwaway data directory; every
socket has a timeout, so a server that misbehaves fails a test instead of hanging it. Only the
Python standard library is used.
"""
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

import strata_e2e

STRATA = None


def make_cert(directory, name, common_name):
    """A self-signed certificate for 127.0.0.1 and localhost: (cert path, key path)."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=" + common_name,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def fingerprint_of_file(cert):
    with open(cert) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def client_context(*cafiles):
    """Verifies the server against CAFILES (the self-signed certificates themselves)."""
    ctx = ssl.create_default_context()
    for cafile in cafiles:
        ctx.load_verify_locations(cafile)
    return ctx


def tls_connect(port, ctx, timeout=10):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    except Exception:
        raw.close()
        raise


def peer_fingerprint(sock):
    return hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()


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
    except OSError:  # timeout, reset, a TLS stream cut short
        pass
    return data


def read_response(sock):
    """One HTTP/1.1 response with a Content-Length from SOCK: (status, headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            raise AssertionError("connection closed mid-response: %r" % data[:200])
        data += piece
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            raise AssertionError("connection closed mid-body")
        body += piece
    return int(lines[0].split()[1]), headers, body


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
        if b"\r\n\r\n" not in reply or b"Content-Length" not in reply:
            reply += read_reply(sock)
    finally:
        sock.close()
    test.assertLess(took, bound, "no answer to a slow-drip upload within %.1f s" % bound)
    return reply, took


class SlowUploadTest(unittest.TestCase):
    """An upload slower than --min-upload-bytes-per-second is cut with 408 and counted."""

    def test_slow_drip_upload_is_cut(self):
        tmp = tempfile.mkdtemp(prefix="strata_transport_slow_")
        self.addCleanup(shutil.rmtree, tmp, True)
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


class TlsServer(Server):
    """A server with TLS on its own free port beside plain HTTP (healthy when constructed)."""

    def __init__(self, data_dir, cert, key, extra=()):
        self.tls_port = strata_e2e.free_port()
        super().__init__(data_dir, ["--tls-cert", cert, "--tls-key", key,
                                    "--tls-port", str(self.tls_port), *extra])

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def reloads(self, result):
        return metric(self.metrics(), "strata_tls_reloads_total", 'result="%s"' % result)


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="strata_tls_")
        cls.cert_a, cls.key_a = make_cert(cls.tmp, "a", "strata-a")
        cls.cert_b, cls.key_b = make_cert(cls.tmp, "b", "strata-b")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def served_files(self, name):
        """Copies of certificate A, which the server is started with and SIGHUP rereads."""
        d = tempfile.mkdtemp(prefix=name + "_", dir=self.tmp)
        cert, key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
        shutil.copy(self.cert_a, cert)
        shutil.copy(self.key_a, key)
        return d, cert, key

    def test_https_keep_alive_streamed_put_and_get_beside_plain_http(self):
        d, cert, key = self.served_files("serve")
        server = TlsServer(d, cert, key)
        try:
            ctx = client_context(self.cert_a)
            conn = http.client.HTTPSConnection("127.0.0.1", server.tls_port, context=ctx,
                                               timeout=30)
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            self.assertEqual((resp.status, resp.read()), (200, b'{"status":"ok"}'))
            first_socket = conn.sock
            self.assertEqual(first_socket.version() in ("TLSv1.2", "TLSv1.3"), True)
            self.assertEqual(peer_fingerprint(first_socket), fingerprint_of_file(self.cert_a))
            conn.request("PUT", "/v1/buckets/secure", body=b"{}")
            resp = conn.getresponse()
            resp.read()
            self.assertIn(resp.status, (200, 201))
            # A streamed upload with a Content-Length, then one chunked (an iterable body).
            payload = bytes(range(256)) * 12288  # 3 MiB
            conn.request("PUT", "/v1/buckets/secure/objects/big", body=payload,
                         headers={"Content-Type": "application/octet-stream"})
            resp = conn.getresponse()
            resp.read()
            self.assertIn(resp.status, (200, 201))
            pieces = [payload[i:i + 65536] for i in range(0, len(payload), 65536)]
            conn.request("PUT", "/v1/buckets/secure/objects/chunked", body=iter(pieces),
                         headers={"Content-Type": "application/octet-stream"},
                         encode_chunked=True)
            resp = conn.getresponse()
            resp.read()
            self.assertIn(resp.status, (200, 201))
            for key_name in ("big", "chunked"):
                conn.request("GET", "/v1/buckets/secure/objects/" + key_name)
                resp = conn.getresponse()
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.read(), payload)
            # An ingest batch: answered later from the ingest pool (a deferred reply).
            started = (int(time.time()) - 86400) * 1000
            events = [{"member": 77, "kind": "play", "title": 5, "session": "s%d" % i,
                       "started_at": started + i * 60000, "event_time": started + i * 60000 + 30000,
                       "position_ms": 30000, "watched_ms": 30000} for i in range(150)]
            conn.request("POST", "/v1/viewing/events", body=json.dumps(events),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200, resp.read())
            conn.request("GET", "/v1/members/77/viewing?limit=1000")
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertEqual(len(json.loads(resp.read())["records"]), 150)
            # A range read and a 404 on the same connection: keep-alive all along.
            conn.request("GET", "/v1/buckets/secure/objects/big",
                         headers={"Range": "bytes=256-511"})
            resp = conn.getresponse()
            self.assertEqual((resp.status, resp.read()), (206, bytes(range(256))))
            conn.request("GET", "/v1/buckets/secure/objects/none")
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 404)
            self.assertIs(conn.sock, first_socket)
            conn.close()
            # Plain HTTP on its own port sees the same data.
            status, body = server.request("GET", "/v1/buckets/secure/objects/big")
            self.assertEqual((status, body), (200, payload))
            # Over TLS a bad request still gets its answer, and the connection then ends with
            # a close_notify (a clean end, not a truncation).
            sock = tls_connect(server.tls_port, ctx)
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " +
                             b"a" * (20 << 10) + b"\r\n\r\n")
                status, _, body = read_response(sock)
                self.assertEqual(status, 400)
                self.assertIn(b"request header exceeds", body)
                self.assertEqual(sock.recv(100), b"")
            finally:
                sock.close()
        finally:
            server.stop()

    def test_old_protocols_and_plain_http_on_the_tls_port_are_refused(self):
        d, cert, key = self.served_files("old")
        server = TlsServer(d, cert, key)
        try:
            # TLS 1.1 (the client has to be allowed to offer it: OpenSSL 3 refuses by default).
            ctx = client_context(self.cert_a)
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.TLSv1
                ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            with self.assertRaises(ssl.SSLError):
                tls_connect(server.tls_port, ctx).close()
            # TLS 1.2 is served.
            ctx = client_context(self.cert_a)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            sock = tls_connect(server.tls_port, ctx)
            self.assertEqual(sock.version(), "TLSv1.2")
            sock.close()
            # Plain HTTP on the TLS port: no answer, the connection is closed.
            raw = socket.create_connection(("127.0.0.1", server.tls_port), timeout=10)
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            self.assertNotIn(b"200 OK", read_reply(raw))
            raw.close()
            self.assertTrue(server.healthy())
            self.assertGreaterEqual(
                metric(server.metrics(), "strata_tls_handshake_failures_total"), 2)
        finally:
            server.stop()

    def test_sighup_reloads_the_certificate_and_keeps_open_connections(self):
        d, cert, key = self.served_files("reload")
        server = TlsServer(d, cert, key)
        try:
            ctx = client_context(self.cert_a, self.cert_b)
            fp_a, fp_b = fingerprint_of_file(self.cert_a), fingerprint_of_file(self.cert_b)
            held = http.client.HTTPSConnection("127.0.0.1", server.tls_port, context=ctx,
                                               timeout=30)
            held.request("GET", "/healthz")
            self.assertEqual(held.getresponse().read(), b'{"status":"ok"}')
            self.assertEqual(peer_fingerprint(held.sock), fp_a)
            expiry_a = metric(server.metrics(), "strata_tls_certificate_expiry_seconds")
            self.assertGreater(expiry_a, time.time())

            # New files in place, then SIGHUP: new connections get B.
            shutil.copy(self.cert_b, cert + ".new")
            shutil.copy(self.key_b, key + ".new")
            os.replace(key + ".new", key)
            os.replace(cert + ".new", cert)
            server.reload()
            deadline = time.time() + 10
            while True:
                sock = tls_connect(server.tls_port, ctx)
                fp = peer_fingerprint(sock)
                sock.close()
                if fp == fp_b:
                    break
                self.assertEqual(fp, fp_a)
                self.assertLess(time.time(), deadline, "the new certificate was not served")
                time.sleep(0.05)
            self.assertEqual(server.reloads("ok"), 1)
            # The connection opened before the reload goes on, with its certificate.
            held.request("GET", "/healthz")
            self.assertEqual(held.getresponse().read(), b'{"status":"ok"}')
            self.assertEqual(peer_fingerprint(held.sock), fp_a)

            # A broken certificate file: the reload fails, is counted, B is still served.
            with open(cert, "w") as f:
                f.write("not a certificate\n")
            server.reload()
            deadline = time.time() + 10
            while server.reloads("error") < 1:
                self.assertLess(time.time(), deadline, "the failed reload was not counted")
                time.sleep(0.05)
            sock = tls_connect(server.tls_port, ctx)
            self.assertEqual(peer_fingerprint(sock), fp_b)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            self.assertEqual(read_response(sock)[0], 200)
            sock.close()
            # So does a key that is not the certificate's.
            shutil.copy(self.cert_a, cert)
            server.reload()
            deadline = time.time() + 10
            while server.reloads("error") < 2:
                self.assertLess(time.time(), deadline, "the failed reload was not counted")
                time.sleep(0.05)
            sock = tls_connect(server.tls_port, ctx)
            self.assertEqual(peer_fingerprint(sock), fp_b)
            sock.close()
            held.request("GET", "/healthz")
            self.assertEqual(held.getresponse().status, 200)
            held.close()
            with open(os.path.join(d, "server.log")) as f:
                log = f.read()
            self.assertIn("tls reload failed", log)
            self.assertIn("is not the key of the certificate", log)
        finally:
            server.stop()

    def test_a_slow_drip_upload_over_tls_is_cut(self):
        d, cert, key = self.served_files("slow")
        server = TlsServer(d, cert, key, ["--min-upload-bytes-per-second", "1024",
                                          "--upload-rate-window-ms", "1000"])
        try:
            self.assertIn(server.request("PUT", "/v1/buckets/slow", b"{}")[0], (200, 201))
            ctx = client_context(self.cert_a)
            reply, _ = slow_drip(self, lambda: tls_connect(server.tls_port, ctx),
                                 b"/v1/buckets/slow/objects/drip")
            self.assertTrue(reply.startswith(b"HTTP/1.1 408"), reply[:300])
            self.assertEqual(server.request("GET", "/v1/buckets/slow/objects/drip")[0], 404)
        finally:
            server.stop()

    def test_tls_only_from_the_config_file(self):
        d, cert, key = self.served_files("only")
        port, tls_port = strata_e2e.free_port(), strata_e2e.free_port()
        config = os.path.join(d, "strata.toml")
        with open(config, "w") as f:
            f.write('[serve]\ndata-dir = "%s"\nport = %d\nplain-http = false\ntls-port = %d\n'
                    'tls-cert = "%s"\ntls-key = "%s"\nlog-level = "warn"\n'
                    % (os.path.join(d, "d"), port, tls_port, cert, key))
        log = open(os.path.join(d, "server.log"), "ab")
        proc = subprocess.Popen([STRATA, "serve", "--config", config], stdout=log, stderr=log)
        try:
            ctx = client_context(self.cert_a)
            deadline = time.time() + 30
            while True:
                self.assertIsNone(proc.poll(), "server exited")
                try:
                    conn = http.client.HTTPSConnection("127.0.0.1", tls_port, context=ctx,
                                                       timeout=10)
                    conn.request("GET", "/healthz")
                    self.assertEqual(conn.getresponse().status, 200)
                    conn.close()
                    break
                except (ConnectionRefusedError, ConnectionResetError):
                    self.assertLess(time.time(), deadline, "TLS listener not up")
                    time.sleep(0.05)
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            log.close()

    def test_bad_tls_settings_stop_the_start(self):
        d = tempfile.mkdtemp(prefix="bad_", dir=self.tmp)
        cases = [
            (["--tls-cert", os.path.join(d, "missing.crt"), "--tls-key", self.key_a],
             "tls_cert: cannot read"),
            (["--tls-cert", self.cert_a], "tls_key: required with tls_cert"),
            (["--tls-cert", self.cert_a, "--tls-key", self.key_b],
             "is not the key of the certificate"),
            (["--plain-http", "false"], "plain_http: cannot be off without TLS"),
            # Without API keys, TLS on a non-loopback address is refused like plain HTTP is
            # (before anything is bound).
            (["--tls-cert", self.cert_a, "--tls-key", self.key_a, "--tls-address", "0.0.0.0"],
             "tls_address: 0.0.0.0 is not a loopback address"),
        ]
        for args, message in cases:
            out = subprocess.run(
                [STRATA, "serve", "--data-dir", os.path.join(d, "d"), "--port", "0",
                 "--tls-port", "0", "--log-level", "warn", *args],
                capture_output=True, text=True, timeout=60)
            self.assertNotEqual(out.returncode, 0, args)
            self.assertIn(message, out.stderr + out.stdout, args)


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
        self.addCleanup(shutil.rmtree, tmp, True)
        server = Server(tmp, ["--max-header-bytes", "65536"])
        try:
            status, _ = server.request("GET", "/healthz", headers={"X-Big": "a" * (20 << 10)})
            self.assertEqual(status, 200)
        finally:
            server.stop()


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

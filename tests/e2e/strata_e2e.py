"""Shared helpers of the end-to-end tests: run the real `strata serve` on a free loopback port
with a throwaway data directory. Only the Python standard library is used."""
import http.client
import os
import signal
import socket
import subprocess
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`strata serve --data-dir DATA_DIR/d` on a free port, healthy when the constructor returns.
    The server's output goes to DATA_DIR/server.log. Test files subclass it with their own
    request helpers."""

    def __init__(self, strata, data_dir, extra=(), env=None):
        self.data_dir = data_dir
        self.port = free_port()
        self.log = open(os.path.join(data_dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [strata, "serve", "--data-dir", os.path.join(data_dir, "d"), "--port", str(self.port),
             "--log-level", "warn", *extra],
            stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s" % self.proc.returncode)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                try:
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        return
                finally:
                    conn.close()
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not become healthy")

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        self.log.close()

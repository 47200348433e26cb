"""Shared helpers of the end-to-end tests: run the real `strata serve` on a free loopback port
with a throwaway data directory. Only the Python standard library is used."""
import contextlib
import glob
import hashlib
import json
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET


# Which deployment the tests run against: "embedded" (RocksDB + local files, the default) or
# "distributed" (rows on Ceph RADOS, bytes on S3 = radosgw, queues on Kafka = librdkafka's mock
# cluster in strata-kafka-mock, the viewing cache in memcached),
# on the cluster that CTest's `cluster` fixture started (STRATA_CLUSTER_ENV names its env file).
DEPLOYMENT = os.environ.get("STRATA_E2E_DEPLOYMENT", "embedded")


def embedded_only(reason):
    """Skips a test on the distributed deployment, saying why (RocksDB- or disk-specific)."""
    return unittest.skipIf(DEPLOYMENT == "distributed", "embedded deployment only: " + reason)


def cluster_settings():
    path = os.environ.get("STRATA_CLUSTER_ENV")
    if not path or not os.path.exists(path):
        raise RuntimeError("STRATA_E2E_DEPLOYMENT=distributed needs STRATA_CLUSTER_ENV "
                           "(run under ctest, or: bash scripts/cluster.sh start DIR)")
    settings = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export ") and "=" in line:
                key, value = line[len("export "):].split("=", 1)
                settings[key] = value
    return settings


def deployment_tag(data_dir):
    """The pool prefix, bucket and topic prefix of a server over DATA_DIR (distributed)."""
    return "e2e-" + hashlib.sha1(os.path.abspath(data_dir).encode()).hexdigest()[:12]


def deployment(data_dir, env=None):
    """The serve flags and environment of DEPLOYMENT for a server over DATA_DIR. On the
    distributed one each data directory gets its own pools and bucket (named after it), so a
    restarted server finds its data and tests do not see each other's."""
    if DEPLOYMENT != "distributed":
        return [], env
    s = cluster_settings()
    tag = deployment_tag(data_dir)
    env = dict(env if env is not None else os.environ)
    env["STRATA_S3_ACCESS_KEY"] = s["STRATA_S3_ACCESS_KEY"]
    env["STRATA_S3_SECRET_KEY"] = s["STRATA_S3_SECRET_KEY"]
    env["STRATA_KAFKA_MOCK_CONTROL"] = s["STRATA_KAFKA_MOCK_CONTROL"]
    return ["--queue-backend", "kafka", "--queue-brokers", s["STRATA_KAFKA_BROKERS"],
            "--queue-topic-prefix", tag + ".",
            "--rows-backend", "rados", "--rows-ceph-conf", s["CEPH_CONF"],
            "--rows-pool-prefix", tag,
            "--blobs-backend", "s3", "--blobs-endpoint", s["STRATA_S3_ENDPOINT"],
            "--blobs-bucket", tag, "--blobs-create-bucket",
            "--cache-backend", "memcached", "--cache-servers", s["STRATA_MEMCACHED"]], env


def blob_names(data_dir, prefix):
    """Names of the stored blobs starting with PREFIX ("hot/media/large@"), read from the
    blob store itself: the files under DATA_DIR/d/blobs (without their "~obj" suffix; PREFIX
    may not cross a '/' after its last one), or on the distributed deployment the S3 bucket,
    listed by curl (an independent S3 client, its own SigV4)."""
    if DEPLOYMENT != "distributed":
        root = os.path.join(data_dir, "d", "blobs")
        return sorted(os.path.relpath(p, root).removesuffix("~obj")
                      for p in glob.glob(os.path.join(root, prefix + "*")))
    s = cluster_settings()
    tag = deployment_tag(data_dir)
    url = "%s/%s?list-type=2&prefix=%s" % (s["STRATA_S3_ENDPOINT"], tag,
                                          urllib.parse.quote(prefix, safe=""))
    out = subprocess.run(
        ["curl", "-sf", "--aws-sigv4", "aws:amz:%s:s3" % s.get("STRATA_S3_REGION", "us-east-1"),
         "--user", "%s:%s" % (s["STRATA_S3_ACCESS_KEY"], s["STRATA_S3_SECRET_KEY"]),
         "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", url],
        capture_output=True, check=True, timeout=30).stdout
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    return sorted(k.text for k in ET.fromstring(out).iter(ns + "Key"))


def _s3_curl(data_dir, method, name, body=None):
    """curl (an independent S3 client, its own SigV4) against the distributed deployment's
    bucket of DATA_DIR: METHOD on the object NAME, with BODY (bytes) for a PUT."""
    s = cluster_settings()
    url = "%s/%s/%s" % (s["STRATA_S3_ENDPOINT"], deployment_tag(data_dir),
                        urllib.parse.quote(name, safe="/"))
    extra = [] if body is None else ["-H", "Content-Type: application/octet-stream",
                                     "--data-binary", "@-"]
    return subprocess.run(
        ["curl", "-sf", "-X", method,
         "--aws-sigv4", "aws:amz:%s:s3" % s.get("STRATA_S3_REGION", "us-east-1"),
         "--user", "%s:%s" % (s["STRATA_S3_ACCESS_KEY"], s["STRATA_S3_SECRET_KEY"]),
         "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", *extra, url],
        input=body, capture_output=True, check=True, timeout=30).stdout


def set_bucket_policy(data_dir, policy):
    """Sets (POLICY, a dict) or removes (None) the S3 bucket policy of the distributed
    deployment's bucket of DATA_DIR, with curl. Returns the bucket's name (for the ARNs)."""
    s = cluster_settings()
    tag = deployment_tag(data_dir)
    url = "%s/%s?policy=" % (s["STRATA_S3_ENDPOINT"], tag)  # "=": what curl signs
    extra = (["-X", "DELETE"] if policy is None else
             ["-X", "PUT", "--data-binary", "@-"])
    subprocess.run(
        ["curl", "-sf", *extra,
         "--aws-sigv4", "aws:amz:%s:s3" % s.get("STRATA_S3_REGION", "us-east-1"),
         "--user", "%s:%s" % (s["STRATA_S3_ACCESS_KEY"], s["STRATA_S3_SECRET_KEY"]),
         "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", url],
        input=None if policy is None else json.dumps(policy).encode(),
        capture_output=True, check=True, timeout=30)
    return tag


def blob_path(data_dir, name):
    """The file of blob NAME on the embedded deployment (names of plain characters only: the
    store escapes '%', '~', control bytes and a leading '.' of each component)."""
    return os.path.join(data_dir, "d", "blobs", *name.split("/")) + "~obj"


def put_blob(data_dir, name, data):
    """Writes blob NAME straight into the blob store, behind the server's back (what a crash
    or a power loss can leave): a file, or an S3 object put by curl."""
    if DEPLOYMENT != "distributed":
        path = blob_path(data_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return
    _s3_curl(data_dir, "PUT", name, data)


def damage_blob(data_dir, name, offset):
    """Flips the bits of one byte of blob NAME in place, size unchanged: a file's byte on
    disk, or (S3) the object rewritten by curl with that byte flipped."""
    if DEPLOYMENT != "distributed":
        with open(blob_path(data_dir, name), "r+b") as f:
            f.seek(offset)
            b = f.read(1)
            f.seek(offset)
            f.write(bytes([b[0] ^ 0xff]))
        return
    data = bytearray(_s3_curl(data_dir, "GET", name))
    data[offset] ^= 0xff
    put_blob(data_dir, name, bytes(data))


def runs_thread_named(prefix):
    """Whether a process on this machine has a name starting with `prefix` (kernel threads
    such as DAMON's kdamond.0 are processes in /proc)."""
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/comm" % pid) as f:
                if f.read().startswith(prefix):
                    return True
        except OSError:
            pass
    return False


def check_kdamond_line(test, text, label, what, count):
    """The benches' kernel-burst line (`<label>: the machine's kdamond (DAMON) ran in N bursts
    ...; <what> overlapping one: A of B ...`) is in `text` exactly when this machine runs
    DAMON's kdamond, and when it is, B == count and A <= count."""
    line = re.search(re.escape(label) + r": the machine's kdamond \(DAMON\) ran in \d+ bursts"
                     r".*" + what + r" overlapping one: ([\d,]+) of ([\d,]+)", text)
    test.assertEqual(line is not None, runs_thread_named("kdamond"), text)
    if line:
        test.assertEqual(int(line.group(2).replace(",", "")), count)
        test.assertLessEqual(int(line.group(1).replace(",", "")), count)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`strata serve --data-dir DATA_DIR/d` on a free port, healthy when the constructor returns.
    The server's output goes to DATA_DIR/server.log. Test files subclass it with their own
    request helpers. start_timeout: seconds it may take to become healthy."""

    def __init__(self, strata, data_dir, extra=(), env=None, log_level="warn", preexec_fn=None,
                 start_timeout=30):
        self.data_dir = data_dir
        self.port = free_port()
        self.log = open(os.path.join(data_dir, "server.log"), "ab")
        backend_args, env = deployment(data_dir, env)
        self.proc = subprocess.Popen(
            [strata, "serve", "--data-dir", os.path.join(data_dir, "d"), "--port", str(self.port),
             "--log-level", log_level, *backend_args, *extra],
            stdout=self.log, stderr=self.log, env=env, preexec_fn=preexec_fn)
        deadline = time.time() + start_timeout
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

    def request(self, method, path, body=None, timeout=60):
        """One request on a fresh connection: (status, parsed JSON or raw bytes). A dict or
        list body is sent as JSON."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, (json.loads(data) if data[:1] in (b"{", b"[") else data)
        finally:
            conn.close()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)
        self.log.close()


@contextlib.contextmanager
def small_disk(test, size):
    """A tmpfs of `size` ("6m") mounted on a fresh temporary folder, for full-disk tests.
    Yields (path, grow): grow("256m") remounts it bigger in place. Skips `test` where a
    tmpfs cannot be mounted (needs root); afterwards kills any process still using a path
    under it (a server a failed test left), unmounts and removes it."""
    tmp = tempfile.mkdtemp(prefix="strata_full_")
    mnt = os.path.join(tmp, "mnt")
    os.makedirs(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", mnt],
                      capture_output=True).returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        test.skipTest("cannot mount a tmpfs here (needs root)")

    def grow(new_size):
        subprocess.run(["mount", "-o", "remount,size=" + new_size, mnt], check=True)

    try:
        yield mnt, grow
    finally:
        # A test that failed midway leaves its server running on the mount: stop it first.
        for pid in os.listdir("/proc"):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if pid.isdigit() and any(a.startswith(mnt.encode()) for a in args):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        subprocess.run(["umount", "-l", mnt], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def fill_until_refused(test, attempt, max_attempts, refusals=3):
    """Calls attempt() until it has been refused (returned False) `refusals` times, at most
    `max_attempts` calls in all (a bound: the small disk fills long before); fails `test` if
    the disk never filled. attempt() asserts on any outcome but accepted or refused."""
    refused = 0
    for _ in range(max_attempts):
        if refused == refusals:
            break
        refused += 0 if attempt() else 1
    test.assertEqual(refused, refusals, "the disk never filled")


def retry_until_accepted(test, attempt, what, seconds=30):
    """Calls attempt() every 0.5 s until it returns True (accepted), for at most `seconds`;
    fails `test` naming `what` if it never does. attempt() asserts on any other outcome."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if attempt():
            return
        time.sleep(0.5)
    test.fail("%s: still refused %d s after the disk had room" % (what, seconds))

#!/usr/bin/env python3
"""End-to-end tests of `strata serve` on the distributed backends of this build: the viewing
API with its history cache in the cluster's memcached ([cache] backend = "memcached", set in
a config file), and the start-up errors for a bad backend choice.

Usage: test_distributed.py PATH_TO_STRATA
Needs the throwaway cluster (scripts/cluster.sh): CTest's fixture `cluster` sets
STRATA_CLUSTER_ENV to its env file. Only the Python standard library is used.
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import strata_e2e

STRATA = None
# Within the recent tier (7 days): a rotation would change the history's version mid-test.
T0 = (int(time.time()) - 86400) * 1000


def cluster_setting(name):
    """`export NAME=value` from the cluster's env file (or the environment)."""
    if os.environ.get(name):
        return os.environ[name]
    path = os.environ.get("STRATA_CLUSTER_ENV")
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        for line in f:
            if line.startswith("export %s=" % name):
                return line.strip().split("=", 1)[1]
    return None


def event(member, started, session, watched=60_000, title=1):
    return {"member": member, "kind": "play", "title": title, "session": session,
            "started_at": started, "event_time": started + watched, "position_ms": watched,
            "watched_ms": watched, "device": "tv", "country": "US", "content_lang": "en",
            "audio_lang": "en", "subtitle_lang": ""}


class Server(strata_e2e.ServerProcess):
    def json(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, (json.loads(data) if data[:1] in (b"{", b"[") else data)
        finally:
            conn.close()

    def metric(self, name):
        _, text = self.json("GET", "/metrics")
        total = 0.0
        for line in text.decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total


def write_config(directory, text):
    path = os.path.join(directory, "strata.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


class MemcachedCache(unittest.TestCase):
    """The viewing API's basics with the history cache in memcached."""

    @classmethod
    def setUpClass(cls):
        cls.memcached = cluster_setting("STRATA_MEMCACHED")
        if not cls.memcached:
            raise unittest.SkipTest("no cluster: run under ctest (fixture `cluster`)")
        cls.tmp = tempfile.mkdtemp(prefix="strata-e2e-dist-")
        config = write_config(cls.tmp, '[cache]\nbackend = "memcached"\nservers = ["%s"]\n'
                              % cls.memcached)
        cls.server = Server(STRATA, cls.tmp, ["--config", config])

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "server", None):
            cls.server.stop()
        if getattr(cls, "tmp", None):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_history_summary_update_and_erase(self):
        s = self.server
        m = 501
        status, body = s.json("POST", "/v1/viewing/events", json.dumps(
            [event(m, T0, "a", title=7), event(m, T0 + 60_000, "b", title=8)]))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["accepted"], 2)
        status, page = s.json("GET", "/v1/members/%d/viewing?limit=10" % m)
        self.assertEqual(status, 200, page)
        self.assertEqual([r["session"] for r in page["records"]], ["b", "a"])
        hits = s.metric("strata_viewing_shared_cache_hits_total")
        status, page = s.json("GET", "/v1/members/%d/viewing?limit=10" % m)
        self.assertEqual(len(page["records"]), 2)
        self.assertEqual(s.metric("strata_viewing_shared_cache_hits_total"), hits + 1)

        # Progress on playback "a": the next read shows it, not the cached entry.
        status, body = s.json("POST", "/v1/viewing/events",
                              json.dumps([event(m, T0, "a", watched=90_000, title=7)]))
        self.assertEqual(status, 200, body)
        status, page = s.json("GET", "/v1/members/%d/viewing?limit=10" % m)
        by_session = {r["session"]: r for r in page["records"]}
        self.assertEqual(by_session["a"]["position_ms"], 90_000)

        status, summary = s.json("GET", "/v1/members/%d/summary" % m)
        self.assertEqual(status, 200, summary)
        self.assertEqual(sorted(t["title"] for t in summary["titles"]), [7, 8])

        status, _ = s.json("DELETE", "/v1/members/%d" % m)
        self.assertEqual(status, 200)
        status, page = s.json("GET", "/v1/members/%d/viewing?limit=10" % m)
        self.assertEqual(page["records"], [])
        self.assertGreater(s.metric("strata_viewing_shared_cache_invalidations_total"), 0)
        self.assertEqual(s.metric("strata_viewing_shared_cache_errors_total"), 0)

    def test_healthz_and_compact_on_rocksdb(self):
        status, _ = self.server.json("GET", "/healthz")
        self.assertEqual(status, 200)
        # RocksDB has a manual compaction (backends without one answer 501).
        # A job (202); ?wait=true answers once it is done.
        status, body = self.server.json("POST", "/v1/admin/compact?wait=true")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["kind"], "compact")
        self.assertEqual(body["state"], "succeeded")
        self.assertTrue(body["result"]["compacted"])


class StartupErrors(unittest.TestCase):
    """A bad backend choice stops `strata serve` at once with a message naming it."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="strata-e2e-dist-bad-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def serve(self, *args):
        p = subprocess.run([STRATA, "serve", "--data-dir", os.path.join(self.tmp, "d"),
                            "--port", "0", *args], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stderr

    def test_unknown_backend_name(self):
        code, err = self.serve("--cache-backend", "memcache")
        self.assertEqual(code, 1, err)
        self.assertIn('cache.backend: unknown backend "memcache"', err)
        config = write_config(self.tmp, '[rows]\nbackend = "cassandra"\n')
        code, err = self.serve("--config", config)
        self.assertEqual(code, 1, err)
        self.assertIn('rows.backend: unknown backend "cassandra"', err)

    def test_missing_required_setting(self):
        code, err = self.serve("--cache-backend", "memcached")
        self.assertEqual(code, 1, err)
        self.assertIn("cache.servers: required", err)
        config = write_config(self.tmp, '[blobs]\nbackend = "s3"\nbucket = "b"\n')
        code, err = self.serve("--config", config)
        self.assertEqual(code, 1, err)
        self.assertIn("blobs.endpoint: required", err)

    def test_unreachable_memcached(self):
        port = strata_e2e.free_port()  # nothing listens there
        code, err = self.serve("--cache-backend", "memcached", "--cache-servers",
                               "127.0.0.1:%d" % port)
        self.assertEqual(code, 1, err)
        self.assertIn('cache backend "memcached": server 127.0.0.1:%d unreachable' % port, err)

    def test_unreachable_ceph(self):
        code, err = self.serve("--rows-backend", "rados", "--rows-ceph-conf",
                               os.path.join(self.tmp, "no-such-ceph.conf"))
        self.assertEqual(code, 1, err)
        self.assertIn('rows backend "rados"', err)
        self.assertIn("no-such-ceph.conf", err)

    def test_misspelt_key_in_a_backend_section(self):
        config = write_config(self.tmp, '[cache]\nbackend = "memory"\nserver = ["x:1"]\n')
        code, err = self.serve("--config", config)
        self.assertNotEqual(code, 0)
        self.assertIn("cache-server", err)


def s3_versioning(bucket):
    """The bucket's versioning status ("Enabled", "Suspended" or "" for never enabled), asked
    with curl (its own SigV4) as an independent S3 client."""
    # "versioning=": curl signs a bare "?versioning" unlike S3 canonicalises it.
    url = "%s/%s?versioning=" % (cluster_setting("STRATA_S3_ENDPOINT"), bucket)
    out = subprocess.run(
        ["curl", "-sf", "--aws-sigv4",
         "aws:amz:%s:s3" % (cluster_setting("STRATA_S3_REGION") or "us-east-1"),
         "--user", "%s:%s" % (cluster_setting("STRATA_S3_ACCESS_KEY"),
                              cluster_setting("STRATA_S3_SECRET_KEY")),
         "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", url],
        capture_output=True, check=True, timeout=30).stdout.decode()
    start = out.find("<Status>")
    return out[start + 8:out.find("</Status>")] if start >= 0 else ""


class BucketVersioning(unittest.TestCase):
    """--blobs-versioning decides whether the bucket --blobs-create-bucket makes is versioned,
    and the server says at start which it uses."""

    def setUp(self):
        if not cluster_setting("STRATA_S3_ENDPOINT"):
            raise unittest.SkipTest("no cluster: run under ctest (fixture `cluster`)")
        self.tmp = tempfile.mkdtemp(prefix="strata-e2e-ver-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def start(self, bucket, *extra):
        env = dict(os.environ)
        env["STRATA_S3_ACCESS_KEY"] = cluster_setting("STRATA_S3_ACCESS_KEY")
        env["STRATA_S3_SECRET_KEY"] = cluster_setting("STRATA_S3_SECRET_KEY")
        data = os.path.join(self.tmp, bucket)
        os.makedirs(data)
        server = Server(STRATA, data,
                        ["--blobs-backend", "s3",
                         "--blobs-endpoint", cluster_setting("STRATA_S3_ENDPOINT"),
                         "--blobs-bucket", bucket, "--blobs-create-bucket", *extra],
                        env=env, log_level="info")
        server.stop()
        with open(os.path.join(data, "server.log")) as f:
            return [line for line in f if "s3 bucket opened" in line]

    def test_created_bucket_is_versioned_unless_turned_off(self):
        tag = os.urandom(4).hex()
        lines = self.start("e2e-ver-on-" + tag)
        self.assertEqual(s3_versioning("e2e-ver-on-" + tag), "Enabled")
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("versioning=enabled", lines[0])

        lines = self.start("e2e-ver-off-" + tag, "--blobs-versioning", "false")
        self.assertEqual(s3_versioning("e2e-ver-off-" + tag), "")
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("versioning=off", lines[0])
        self.assertIn("remove the bytes at once", lines[0])

    def test_bad_value_names_the_flag(self):
        p = subprocess.run([STRATA, "serve", "--data-dir", os.path.join(self.tmp, "d"),
                            "--port", "0", "--blobs-versioning", "maybe"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--blobs-versioning", p.stderr)


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""End-to-end tests of the scrub against the real `strata` binary.

Usage: test_scrub.py PATH_TO_STRATA

Damages an object's bytes in the blob store itself (a byte flipped in its file on disk, or
its S3 object rewritten with that byte flipped by curl) and checks that a scrub pass reports
it (GET /v1/admin/scrub, metric, log line), that reads of it still answer 500 as before and
the bytes are kept; then kills a slow pass mid-way and checks that it resumes after the
restart. Runs on the embedded deployment, and on the distributed one under
STRATA_E2E_DEPLOYMENT=distributed. Standard library only.
"""
import os
import shutil
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_e2e  # noqa: E402
import test_media  # noqa: E402  (Server)

STRATA = None


class ScrubTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="strata_e2e_scrub_")
        self.server = None

    def tearDown(self):
        if self.server is not None and self.server.proc.poll() is None:
            self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, *extra):
        self.server = test_media.Server(self.dir, ("--gc-daily-at", "", *extra))

    def put(self, bucket, key, data):
        status, body = self.server.json("PUT", "/v1/buckets/%s/objects/%s" % (bucket, key), data)
        self.assertEqual(status, 200, body)
        return body

    def report(self):
        status, body = self.server.json("GET", "/v1/admin/scrub")
        self.assertEqual(status, 200, body)
        return body

    def wait_pass(self, pass_id, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self.report()
            if not r["running"] and r["last"] and r["last"]["pass"] >= pass_id:
                return r
            time.sleep(0.05)
        self.fail("scrub pass %d did not finish: %s" % (pass_id, self.report()))

    def test_damaged_bytes_are_reported_kept_and_still_refused_on_read(self):
        self.start()
        first = self.wait_pass(1)  # a fresh server scrubs at once (nothing to read yet)
        self.assertEqual(first["damaged"], [])
        self.assertIsNotNone(first["next_pass_at"])
        status, _ = self.server.json("PUT", "/v1/buckets/media", b"{}")
        self.assertEqual(status, 200)
        healthy, victim = os.urandom(40_000), os.urandom(40_000)  # files, not inline rows
        self.put("media", "healthy", healthy)
        info = self.put("media", "victim", victim)
        self.put("media", "small", b"an inline row")
        blob = "%s/media/victim@%016x" % (info["storage_class"], info["generation"])
        self.assertEqual(strata_e2e.blob_names(self.dir, "hot/media/victim@"), [blob])
        strata_e2e.damage_blob(self.dir, blob, 1234)

        status, started = self.server.json("POST", "/v1/admin/scrub:run")
        self.assertEqual(status, 202, started)
        self.assertEqual(started["pass"], 2)
        r = self.wait_pass(2)
        self.assertEqual((r["last"]["objects"], r["last"]["damaged"], r["last"]["errors"]),
                         (3, 1, 0), r)
        self.assertEqual(r["damaged_objects"], 1)
        self.assertFalse(r["truncated"])
        [d] = r["damaged"]
        self.assertEqual((d["bucket"], d["key"], d["generation"], d["blob"], d["kind"]),
                         ("media", "victim", info["generation"], blob, "checksum"), d)
        self.assertIn("xxh3 stored " + info["xxh3"], d["detail"])
        self.assertIn("sha1 stored " + info["sha1"], d["detail"])
        self.assertEqual(d["last_pass"], 2)

        # Reads behave as before the scrub: a whole GET refuses bad bytes, good ones are fine.
        status, _, _ = self.server.request("GET", "/v1/buckets/media/objects/victim")
        self.assertEqual(status, 500)
        status, _, body = self.server.request("GET", "/v1/buckets/media/objects/healthy")
        self.assertEqual((status, body), (200, healthy))
        # Marked, never deleted: the bytes are all still there for an operator to look at.
        self.assertEqual(strata_e2e.blob_names(self.dir, "hot/media/victim@"), [blob])
        metrics = self.server.request("GET", "/metrics")[2].decode()
        self.assertIn('strata_scrub_damaged_total{kind="checksum"} 1', metrics)
        self.assertIn("strata_scrub_damaged_objects 1", metrics)
        with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
            log = f.read()
        self.assertIn("object bytes are damaged", log)
        self.assertIn(blob, log)
        # Bad input names the field.
        status, err = self.server.json("GET", "/v1/admin/scrub?limit=0")
        self.assertEqual(status, 400)
        self.assertIn("limit", err["error"]["message"])
        status, _ = self.server.json("DELETE", "/v1/admin/scrub")
        self.assertEqual(status, 405)

        # Rewritten: the new generation is healthy and the mark goes with the next pass.
        self.put("media", "victim", victim)
        status, _ = self.server.json("POST", "/v1/admin/scrub:run")
        self.assertEqual(status, 202)
        r = self.wait_pass(3)
        self.assertEqual((r["last"]["damaged"], r["damaged_objects"], r["damaged"]), (0, 0, []), r)

    def test_a_pass_killed_midway_resumes_where_it_stopped(self):
        # 64 KiB/s and every object costs at least 64 KiB: about one object a second. Three
        # buckets of two objects; the position is saved at the end of each bucket.
        self.start("--scrub-rate-bytes", "65536")
        self.wait_pass(1)
        for bucket in ("scrub-a", "scrub-b", "scrub-c"):
            status, _ = self.server.json("PUT", "/v1/buckets/" + bucket, b"{}")
            self.assertEqual(status, 200)
            for key in ("k1", "k2"):
                self.put(bucket, key, bucket.encode() + key.encode() * 100)
        status, started = self.server.json("POST", "/v1/admin/scrub:run")
        self.assertEqual(status, 202, started)
        status, again = self.server.json("POST", "/v1/admin/scrub:run")
        self.assertEqual(status, 409, again)  # one pass at a time
        self.assertIn("running", again["error"]["message"])
        deadline = time.time() + 30
        while time.time() < deadline:
            r = self.report()
            if r["current"] and r["current"]["position"]["bucket"] >= "scrub-b":
                break
            time.sleep(0.1)
        self.assertGreaterEqual(r["current"]["objects"], 2, r)
        self.server.stop(signal.SIGKILL)

        self.start()  # the default (fast) rate: the rest of the pass goes quickly
        r = self.report()
        if r["running"]:
            self.assertEqual(r["current"]["pass"], started["pass"], r)
            self.assertGreaterEqual(r["current"]["position"]["bucket"], "scrub-a", r)
        done = self.wait_pass(started["pass"])
        self.assertEqual(done["last"]["pass"], started["pass"], done)
        # Each object once: the counts were saved with the position (the end of a bucket),
        # and the pass went on from there instead of starting over.
        self.assertEqual(done["last"]["objects"], 6, done)
        self.assertEqual(done["last"]["damaged"], 0, done)


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    test_media.STRATA = STRATA
    unittest.main(verbosity=2)

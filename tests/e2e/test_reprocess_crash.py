#!/usr/bin/env python3
"""kill -9 in the middle of reprocessing jobs, against the real `strata` binary.

Usage: test_reprocess_crash.py PATH_TO_STRATA

1. An unpaced `set` job over 30,000 assets (4 workers) while a client thread PATCHes other
   fields of random assets; the server is killed with SIGKILL twice (once a quarter of the
   selection is processed, again at two thirds) and restarted on the same directory. The job
   must resume and succeed, and every asset must hold the job's value, the client's last
   acknowledged write, and version 1 (create) + 1 (the job: exactly once in effect) + the
   client writes that took effect (between those acknowledged and those sent).
2. An export (NDJSON) of 20,000 assets killed with SIGKILL mid-job: after the restart it
   resumes and its file holds every asset exactly once.
3. `strata bench reprocess --kill-at` scaled down: the bench's own oracle must pass, and a bad
   flag must be refused naming it.

Standard library only; bounded in time (each wait has a deadline).
"""
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import strata_e2e

STRATA = None

SCHEMA = {
    "type": "object",
    "required": ["n"],
    "properties": {
        "n": {"type": "integer"},
        "status": {"type": "string"},
        "client": {"type": "integer"},
    },
}
ASSETS = 30000


class Server(strata_e2e.ServerProcess):
    def __init__(self, data_dir):
        super().__init__(STRATA, data_dir)


class Writer(threading.Thread):
    """PATCHes /client = the asset's write number on random assets until stopped, one write
    of an asset at a time (so numbers are applied in order). Survives the server's death:
    a failed request is remembered as sent, not acknowledged."""

    def __init__(self, ids):
        super().__init__(daemon=True)
        self.ids = ids
        self.server = None
        self.sent = {}
        self.acked = {}
        self.last_acked = {}
        self.stop = threading.Event()
        self.rng = random.Random(7)

    def run(self):
        while not self.stop.is_set():
            server = self.server
            asset = self.rng.choice(self.ids)
            number = self.sent.get(asset, 0) + 1
            self.sent[asset] = number
            try:
                status, _ = server.request("PATCH", "/v1/assets/rc/" + asset,
                                           {"client": number}, timeout=10)
            except OSError:
                status = 0
                time.sleep(0.01)
            if status == 200:
                self.acked[asset] = self.acked.get(asset, 0) + 1
                self.last_acked[asset] = number
            time.sleep(0.002)


class ReprocessCrashTest(unittest.TestCase):
    def wait_job(self, server, job_id, until, timeout=240):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, job = server.request("GET", "/v1/reprocess/jobs/%d" % job_id)
            self.assertEqual(status, 200, job)
            if until(job):
                return job
            time.sleep(0.01)
        self.fail("job %d: condition not reached: %s" % (job_id, job))

    def make_assets(self, server, type_name, n):
        """Creates type TYPE_NAME (SCHEMA) and N assets {"n": i}; their ids, in order."""
        status, body = server.request("PUT", "/v1/asset-types/" + type_name, {"schema": SCHEMA})
        self.assertEqual(status, 200, body)
        ids = []
        for at in range(0, n, 1000):
            status, body = server.request("POST", "/v1/assets/%s:batch" % type_name,
                                          [{"n": at + i} for i in range(min(1000, n - at))])
            self.assertEqual(status, 200, body)
            ids += body["ids"]
        return ids

    def test_two_kills_mid_job_each_asset_changed_exactly_once(self):
        d = tempfile.mkdtemp(prefix="strata_e2e_reprocess_crash_")
        try:
            server = Server(d)
            ids = self.make_assets(server, "rc", ASSETS)
            writer = Writer(ids)
            writer.server = server
            writer.start()
            status, job = server.request("POST", "/v1/reprocess/jobs", {
                "type": "rc", "processor": {"kind": "set", "path": "/status", "value": "done"},
                "concurrency": 4})
            self.assertEqual(status, 201, job)
            kills = 0
            for share in (0.25, 0.66):
                now = self.wait_job(
                    server, job["id"],
                    lambda j: j["counts"]["processed"] >= share * ASSETS or
                    j["state"] not in ("planning", "running"))
                if now["state"] != "running":
                    break  # finished before this kill: the check below still holds
                server.stop(signal.SIGKILL)
                kills += 1
                server = Server(d)
                writer.server = server
            # The job must have been interrupted at least once for the test to mean anything.
            self.assertGreaterEqual(kills, 1, "the job finished before the first kill")
            done = self.wait_job(server, job["id"],
                                 lambda j: j["state"] in ("succeeded", "failed", "cancelled"))
            writer.stop.set()
            writer.join(timeout=30)
            self.assertEqual(done["state"], "succeeded", done)
            self.assertEqual(done["counts"]["dead_lettered"], 0, done)
            self.assertGreaterEqual(done["counts"]["selected"], ASSETS, done)
            seen = 0
            cursor = None
            while True:
                path = "/v1/assets/rc?limit=1000" + ("&cursor=" + cursor if cursor else "")
                status, page = server.request("GET", path)
                self.assertEqual(status, 200, page)
                for a in page["assets"]:
                    seen += 1
                    asset = a["id"]
                    self.assertEqual(a["payload"].get("status"), "done", a)
                    client = a["payload"].get("client", 0)
                    # No lost update: the last acknowledged write (or a later one) is there.
                    self.assertGreaterEqual(client, writer.last_acked.get(asset, 0), a)
                    self.assertLessEqual(client, writer.sent.get(asset, 0), a)
                    # Exactly once in effect: one job write on top of create and client writes.
                    low = 2 + writer.acked.get(asset, 0)
                    high = 2 + writer.sent.get(asset, 0)
                    self.assertTrue(low <= a["version"] <= high,
                                    "%s: version %d, expected %d..%d" %
                                    (asset, a["version"], low, high))
                cursor = page["next_cursor"]
                if not cursor:
                    break
            self.assertEqual(seen, ASSETS)
            self.assertGreater(len(writer.acked), 0)
            server.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_export_killed_mid_job_writes_each_asset_once(self):
        d = tempfile.mkdtemp(prefix="strata_e2e_export_crash_")
        try:
            server = Server(d)
            n = 20000
            ids = self.make_assets(server, "ex", n)
            status, job = server.request("POST", "/v1/reprocess/jobs", {
                "type": "ex", "processor": {"kind": "export"}, "concurrency": 4})
            self.assertEqual(status, 201, job)
            now = self.wait_job(server, job["id"],
                                lambda j: j["counts"]["processed"] >= 0.3 * n or
                                j["state"] not in ("planning", "running"))
            self.assertEqual(now["state"], "running", "the export finished before the kill")
            server.stop(signal.SIGKILL)
            server = Server(d)
            done = self.wait_job(server, job["id"],
                                 lambda j: j["state"] in ("succeeded", "failed", "cancelled"))
            self.assertEqual(done["state"], "succeeded", done)
            exports = os.path.join(d, "d", "exports")
            self.assertEqual([f for f in os.listdir(exports) if f.endswith(".partial")], [])
            with open(os.path.join(exports, "job-%d.ndjson" % job["id"])) as f:
                lines = [json.loads(l) for l in f]
            self.assertEqual(len(lines), n)
            by_id = {l["id"]: l for l in lines}
            self.assertEqual(set(by_id), set(ids))  # each asset once: n lines, n distinct ids
            for i, asset in enumerate(ids):
                self.assertEqual(by_id[asset]["payload"], {"n": i})
                self.assertEqual(by_id[asset]["version"], 1)
            server.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_bench_reprocess_with_a_kill(self):
        d = tempfile.mkdtemp(prefix="strata_e2e_bench_reprocess_")
        try:
            out = subprocess.run(
                [STRATA, "bench", "reprocess", "--assets", "20000", "--kill-at", "0.3",
                 "--reads-per-s", "200", "--writes-per-s", "100", "--warmup-seconds", "0",
                 "--idle-seconds", "1", "--job-concurrency", "2", "--work-dir", d],
                capture_output=True, text=True, timeout=240)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("kill -9 at", out.stdout)
            self.assertIn("settle: ", out.stdout)  # waited for the creates' compactions
            self.assertIn("oracle (no lost update, every asset processed exactly once in "
                          "effect): PASS", out.stdout)
            self.assertIn("result: PASS", out.stdout)
            bad = subprocess.run([STRATA, "bench", "reprocess", "--kill-at", "1.5"],
                                 capture_output=True, text=True, timeout=60)
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn("--kill-at", bad.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

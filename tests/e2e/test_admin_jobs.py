"""Admin jobs and a /healthz that never waits (issue 13): `strata serve` runs under
tests/tools/powerloss_shim.cc with its stall flag, which holds every fsync under the data
directory while the flag file exists (a stalled disk). That keeps a compaction running (its
flush waits) and, with --sync batch, the ingest pool's writes waiting, for as long as the test
needs, without timing luck.

- A compaction is a job: POST answers 202 with its id at once, GET /v1/admin/jobs/{id}
  follows it, a second POST gets 409 naming it, the table report runs beside it as its own
  job, and /healthz answers at once throughout.
- With the ingest pool's backlog full, further batches get 503 (Retry-After) at once: no HTTP
  thread waits for the pool (each serves its own connections), so /healthz and /metrics
  still answer.
- With --sync periodic, a stalled WAL fsync does not hold up writes: they are acknowledged at
  once (they are in the WAL file), and the next fsync after the stall makes them durable.

Usage: test_admin_jobs.py STRATA_BINARY SHIM_LIBRARY
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_e2e  # noqa: E402

STRATA = None
SHIM = None
T0 = 1_780_000_000_000  # 2026-05-28, ms
# /healthz must answer within this, seconds, while the disk is stalled. Its own work is a few
# flag reads; the margin is for a loaded CI machine.
HEALTHZ_BOUND_S = 2.0


def event(member, started):
    return {"member": member, "kind": "play", "title": 7, "session": "s",
            "started_at": started, "event_time": started + 60_000, "position_ms": 60_000,
            "watched_ms": 60_000, "device": "tv", "country": "US", "content_lang": "en",
            "audio_lang": "en", "subtitle_lang": ""}


class Server(strata_e2e.ServerProcess):
    def request(self, method, path, body=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read(), dict(resp.getheaders())
        finally:
            conn.close()

    def json(self, method, path, body=None, timeout=30):
        status, data, _ = self.request(method, path,
                                       json.dumps(body) if body is not None else None, timeout)
        return status, json.loads(data) if data else None

    def metric(self, name, timeout=HEALTHZ_BOUND_S):
        _, data, _ = self.request("GET", "/metrics", timeout=timeout)
        total = 0.0
        for line in data.decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total


@strata_e2e.embedded_only("the shim stalls fsyncs of local files")
class AdminJobsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="strata_jobs_")
        self.stall = os.path.join(self.tmp, "stall")
        self.server = None

    def tearDown(self):
        if os.path.exists(self.stall):
            os.remove(self.stall)  # the server can only stop once its fsyncs go through
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, flags):
        env = dict(os.environ)
        env["LD_PRELOAD"] = SHIM
        env["STRATA_POWERLOSS_ROOT"] = os.path.join(self.tmp, "d")
        env["STRATA_POWERLOSS_JOURNAL"] = os.path.join(self.tmp, "journal")
        env["STRATA_POWERLOSS_STALL_FLAG"] = self.stall
        self.server = Server(STRATA, self.tmp, ["--http-threads", "2", *flags], env=env)

    def assert_healthz_quick(self, times=5):
        for _ in range(times):
            t0 = time.monotonic()
            status, body, _ = self.server.request("GET", "/healthz", timeout=HEALTHZ_BOUND_S)
            self.assertEqual(status, 200, body)
            self.assertLess(time.monotonic() - t0, HEALTHZ_BOUND_S)

    def test_a_compaction_is_a_job_and_healthz_answers_while_it_runs(self):
        # No WAL fsync in the write path (periodic, and not within the test): only the
        # compaction's flush and table files meet the stalled disk.
        self.start(["--sync-interval-ms", "3600000"])
        srv = self.server
        batch = [event(100 + i % 20, T0 + i * 1000) for i in range(200)]
        status, body = srv.json("POST", "/v1/viewing/events", batch)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["accepted"], 200)

        open(self.stall, "w").close()
        t0 = time.monotonic()
        status, data, headers = srv.request("POST", "/v1/admin/compact")
        self.assertLess(time.monotonic() - t0, HEALTHZ_BOUND_S, "POST must not wait for the job")
        self.assertEqual(status, 202, data)
        job = json.loads(data)
        self.assertEqual(job["kind"], "compact")
        self.assertIn(job["state"], ("queued", "running"))
        self.assertEqual(headers["Location"], "/v1/admin/jobs/" + job["id"])

        # Running (its flush waits for the disk) for as long as the stall lasts.
        deadline = time.time() + 10
        while True:
            status, seen = srv.json("GET", "/v1/admin/jobs/" + job["id"], timeout=HEALTHZ_BOUND_S)
            self.assertEqual(status, 200, seen)
            if seen["state"] == "running" or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(seen["state"], "running", seen)
        self.assertIsNotNone(seen["started_at"])
        self.assertIsNone(seen["finished_at"])
        self.assertIsNone(seen["result"])

        status, body = srv.json("POST", "/v1/admin/compact", timeout=HEALTHZ_BOUND_S)
        self.assertEqual(status, 409, body)
        self.assertIn(job["id"], body["error"]["message"])
        status, body = srv.json("GET", "/v1/admin/compact", timeout=HEALTHZ_BOUND_S)
        self.assertTrue(body["running"], body)
        self.assertEqual(body["job"]["id"], job["id"])

        # The table report reads only: its own job finishes beside the stalled compaction.
        status, report = srv.json("POST", "/v1/admin/viewing/tables", timeout=HEALTHZ_BOUND_S)
        self.assertEqual(status, 202, report)
        self.assertEqual(report["kind"], "viewing_tables")
        status, report = srv.json("GET", "/v1/admin/jobs/%s?wait=true" % report["id"], timeout=30)
        self.assertEqual(status, 200, report)
        self.assertEqual(report["state"], "succeeded", report)
        self.assertEqual(report["result"]["records"], 200)
        self.assertEqual(report["progress"]["done"], report["progress"]["total"])
        self.assertEqual(report["progress"]["unit"], "tables")
        # The synchronous form answers the report itself (after its own job).
        status, tables = srv.json("GET", "/v1/admin/viewing/tables", timeout=30)
        self.assertEqual(status, 200, tables)
        self.assertEqual(tables["records"], 200)

        self.assert_healthz_quick()
        status, listed = srv.json("GET", "/v1/admin/jobs", timeout=HEALTHZ_BOUND_S)
        self.assertEqual(status, 200)
        self.assertEqual(listed["jobs"][0]["id"], job["id"], "active jobs are listed first")
        self.assertEqual(srv.json("GET", "/v1/admin/jobs/" + job["id"])[1]["state"], "running")

        os.remove(self.stall)
        status, done = srv.json("GET", "/v1/admin/jobs/%s?wait=true" % job["id"], timeout=60)
        self.assertEqual(status, 200, done)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertTrue(done["result"]["compacted"])
        self.assertIsNone(done["error"])
        self.assertGreaterEqual(done["finished_at"], done["started_at"])

        # `strata admin compact` follows its job to the end.
        out = subprocess.run([STRATA, "admin", "compact", "--server",
                              "http://127.0.0.1:%d" % srv.port],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        final = json.loads(out.stdout)
        self.assertEqual(final["state"], "succeeded")
        self.assertEqual(final["kind"], "compact")

    def test_healthz_answers_while_the_ingest_queue_is_full(self):
        # Every write fsyncs before it is acknowledged, so with the disk stalled the ingest
        # pool's threads wait and the batches pile up in its queue.
        self.start(["--sync", "batch"])
        srv = self.server
        open(self.stall, "w").close()
        results = []
        lock = threading.Lock()

        def post(i):
            batch = [event(1000 + i, T0 + k * 1000) for k in range(50)]
            try:
                status, data, headers = srv.request("POST", "/v1/viewing/events",
                                                    json.dumps(batch), timeout=60)
            except OSError as e:
                status, data, headers = None, str(e).encode(), {}
            with lock:
                results.append((i, status, data, headers))

        # 2 running + 64 queued fill the pool (Api::kMaxQueuedIngest); the rest must be
        # refused at once, not wait on an HTTP thread.
        posts = 2 + 64 + 6
        threads = [threading.Thread(target=post, args=(i,)) for i in range(posts)]
        for t in threads:
            t.start()
            time.sleep(0.02)
        deadline = time.time() + 20
        while time.time() < deadline:
            # Without a free HTTP thread this times out (HEALTHZ_BOUND_S) and fails the test.
            if srv.metric("strata_http_overload_refusals_total") >= 6:
                break
            time.sleep(0.1)
        self.assertEqual(srv.metric("strata_http_deferred_waits_total"), 0)
        self.assertGreaterEqual(srv.metric("strata_http_overload_refusals_total"), 6)
        self.assert_healthz_quick()

        os.remove(self.stall)
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), posts)
        refused = [r for r in results if r[1] == 503]
        accepted = [r for r in results if r[1] == 200]
        self.assertEqual(len(refused) + len(accepted), posts, [r[:3] for r in results])
        self.assertEqual(len(refused), 6, [r[:3] for r in results])
        for _, _, data, headers in refused:
            self.assertEqual(headers.get("Retry-After"), "1")
            self.assertIn("events: the server is overloaded", json.loads(data)["error"]["message"])
        for _, _, data, _ in accepted:
            self.assertEqual(json.loads(data)["accepted"], 50)
        # A refused batch was not applied; an accepted one was.
        for i, status, _, _ in results:
            status_h, page = srv.json("GET", "/v1/members/%d/viewing?limit=100" % (1000 + i))
            self.assertEqual(status_h, 200)
            self.assertEqual(len(page["records"]), 50 if status == 200 else 0, i)
        self.assert_healthz_quick()

    def test_writes_go_on_while_the_periodic_wal_fsync_waits(self):
        # --sync periodic (the default): a write is acknowledged once it is in the WAL file,
        # and a background thread fsyncs the WAL every interval. That fsync must not hold the
        # writers' lock: with the disk stalled, writes are still acknowledged at once.
        self.start(["--sync-interval-ms", "20"])
        srv = self.server
        status, body = srv.json("POST", "/v1/viewing/events",
                                [event(3000, T0 + k * 1000) for k in range(20)])
        self.assertEqual(status, 200, body)
        open(self.stall, "w").close()
        # A write after the stall began gives the sync thread something to sync: it is then
        # inside an fdatasync that waits for the flag to go.
        status, body = srv.json("POST", "/v1/viewing/events",
                                [event(3001, T0 + k * 1000) for k in range(20)])
        self.assertEqual(status, 200, body)
        deadline = time.time() + 10
        while (srv.metric("strata_rocksdb_wal_sync_running_seconds") < 0.3 and
               time.time() < deadline):
            time.sleep(0.05)
        self.assertGreaterEqual(srv.metric("strata_rocksdb_wal_sync_running_seconds"), 0.3,
                                "the WAL fsync never stalled: the test would prove nothing")
        syncs = srv.metric("strata_rocksdb_wal_syncs_total")
        for i in range(10):
            t0 = time.monotonic()
            status, body = srv.json("POST", "/v1/viewing/events",
                                    [event(3100 + i, T0 + k * 1000) for k in range(20)],
                                    timeout=HEALTHZ_BOUND_S)
            self.assertEqual(status, 200, body)
            self.assertEqual(body["accepted"], 20)
            self.assertLess(time.monotonic() - t0, HEALTHZ_BOUND_S)
        self.assertEqual(srv.metric("strata_rocksdb_wal_syncs_total"), syncs,
                         "a WAL fsync completed while the disk was stalled")
        self.assert_healthz_quick()

        os.remove(self.stall)
        deadline = time.time() + 10
        while srv.metric("strata_rocksdb_wal_syncs_total") == syncs and time.time() < deadline:
            time.sleep(0.05)
        self.assertGreater(srv.metric("strata_rocksdb_wal_syncs_total"), syncs)
        for member in [3000, 3001] + [3100 + i for i in range(10)]:
            status, page = srv.json("GET", "/v1/members/%d/viewing?limit=100" % member)
            self.assertEqual(status, 200, page)
            self.assertEqual(len(page["records"]), 20, member)


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    SHIM = os.path.abspath(sys.argv.pop(1))
    unittest.main()

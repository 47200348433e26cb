#!/usr/bin/env python3
"""End-to-end tests of the viewing-history API against the real `strata` binary.

Usage: test_viewing.py PATH_TO_STRATA

Starts `strata serve` on a free loopback port with a throwaway data directory, exercises the
HTTP API (good and bad input), then kills the server with SIGKILL in the middle of a write
stream and checks, after a restart, that every acknowledged event is still there.
Only the Python standard library is used.
"""
import http.client
import json
import os
import re
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
# Recent times: previews and language changes have a time to live (30 and 180 days).
T0 = (int(time.time()) - 10 * 86400) * 1000


class Server(strata_e2e.ServerProcess):
    def __init__(self, data_dir, extra=()):
        super().__init__(STRATA, data_dir, extra)

    def request(self, method, path, body=None, content_type="application/json"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Content-Type": content_type} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def json(self, method, path, body=None, content_type="application/json"):
        status, data = self.request(method, path, body, content_type)
        return status, (json.loads(data) if data and data[:1] in (b"{", b"[") else data)


def event(member, started, session, event_time=None, kind="play", watched=60_000, title=1,
          audio="en", subtitle=""):
    return {"member": member, "kind": kind, "title": title, "session": session,
            "started_at": started, "event_time": event_time or started + watched,
            "position_ms": watched, "watched_ms": watched, "device": "tv", "country": "US",
            "content_lang": "en", "audio_lang": audio, "subtitle_lang": subtitle}


def stored_keys(test, server, members):
    """(member, started_at, session) of every play stored for `members`, paging through."""
    stored = set()
    for member in members:
        cursor = None
        while True:
            q = "limit=1000" + ("&cursor=" + cursor if cursor else "")
            status, page = server.json("GET", "/v1/members/%d/viewing?%s" % (member, q))
            test.assertEqual(status, 200, page)
            stored.update((r["member"], r["started_at"], r["session"]) for r in page["records"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
    return stored


class ViewingApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="strata_e2e_")
        cls.server = Server(cls.dir, ["--rollup-min-live-rows", "16"])

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def post(self, events):
        # 503 means "not applied, try again" (a distributed backend busy or briefly away);
        # a client retries it, so do the tests. Anything else is the answer.
        for _ in range(10):
            status, body = self.server.json("POST", "/v1/viewing/events", json.dumps(events))
            if status != 503:
                return status, body
            time.sleep(0.5)
        return status, body

    def history(self, member, query=""):
        return self.server.json("GET", "/v1/members/%d/viewing?%s" % (member, query))

    def test_ingest_then_read_newest_first_with_paging(self):
        events = [event(10, T0 + i * 1000, "s%d" % i) for i in range(40)]
        status, body = self.post(events)
        self.assertEqual(status, 200, body)
        self.assertEqual(body, {"accepted": 40, "dropped": 0, "rejected": []})
        seen, cursor = [], None
        while True:
            q = "limit=15" + ("&cursor=" + cursor if cursor else "")
            status, page = self.history(10, q)
            self.assertEqual(status, 200, page)
            seen += [r["started_at"] for r in page["records"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(seen, sorted([e["started_at"] for e in events], reverse=True))

    def test_latest_event_wins_in_any_order(self):
        late = event(11, T0, "x", event_time=T0 + 9000, watched=9000)
        early = event(11, T0, "x", event_time=T0 + 1000, watched=1000)
        status, body = self.post([late])
        self.assertEqual((status, body["accepted"]), (200, 1), body)
        status, body = self.post([early])
        self.assertEqual(status, 200, body)  # accepted, and loses to the later event_time
        status, page = self.history(11)
        self.assertEqual(status, 200)
        self.assertEqual(len(page["records"]), 1)
        self.assertEqual(page["records"][0]["event_time"], T0 + 9000)

    def test_ndjson_and_filters(self):
        lines = "\n".join(json.dumps(e) for e in [
            event(12, T0, "a", kind="preview", watched=1000),     # short preview: dropped
            event(12, T0 + 1, "b", kind="preview", watched=30_000),
            event(12, T0 + 2, "c")])
        status, body = self.server.json("POST", "/v1/viewing/events", lines,
                                        "application/x-ndjson")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["accepted"], 2)
        self.assertEqual(body["dropped"], 1)
        status, page = self.history(12, "kind=preview")
        self.assertEqual([r["session"] for r in page["records"]], ["b"])
        status, page = self.history(12, "since=%d&until=%d" % (T0 + 2, T0 + 3))
        self.assertEqual([r["session"] for r in page["records"]], ["c"])

    def test_batch_keeps_valid_events_and_lists_rejected(self):
        bad_member = event(13, T0, "a")
        bad_member["member"] = "thirteen"
        negative = event(13, T0, "b")
        negative["started_at"] = -1
        unknown_kind = event(13, T0, "c", kind="trailer")
        year_2100 = event(13, 4102444800000, "d")  # past the default 1 h future skew
        status, body = self.post([event(13, T0, "ok"), bad_member, negative, unknown_kind,
                                  year_2100])
        self.assertEqual(status, 200, body)
        self.assertEqual(body["accepted"], 1)
        errors = {r["index"]: r["error"] for r in body["rejected"]}
        self.assertTrue(errors[1].startswith("member:"), errors)
        self.assertTrue(errors[2].startswith("started_at:"), errors)
        self.assertTrue(errors[3].startswith("kind:"), errors)
        self.assertTrue(errors[4].startswith("started_at: more than the allowed skew"), errors)

    def test_bad_requests_name_the_field(self):
        cases = [
            ("POST", "/v1/viewing/events", "{not json", 400, "body"),
            ("POST", "/v1/viewing/events", "", 400, "body"),
            ("GET", "/v1/members/abc/viewing", None, 400, "member"),
            ("GET", "/v1/members/1/viewing?limit=0", None, 400, "limit"),
            ("GET", "/v1/members/1/viewing?limit=5000", None, 400, "limit"),
            ("GET", "/v1/members/1/viewing?kind=trailer", None, 400, "kind"),
            ("GET", "/v1/members/1/viewing?since=-4", None, 400, "since"),
            ("GET", "/v1/members/1/viewing?cursor=zzzz", None, 400, "cursor"),
        ]
        for method, path, body, want_status, field in cases:
            status, data = self.server.json(method, path, body)
            self.assertEqual(status, want_status, (path, data))
            self.assertTrue(data["error"]["message"].startswith(field + ":"), (path, data))
            self.assertEqual(data["error"]["code"], "invalid_argument")
        status, _ = self.server.request("GET", "/v1/nowhere")
        self.assertEqual(status, 404)
        status, _ = self.server.request("PUT", "/v1/viewing/events", "[]")
        self.assertEqual(status, 405)

    def test_oversize_body_is_413(self):
        big = "[" + ",".join([json.dumps(event(14, T0, "s"))] * 80_000) + "]"  # > 16 MiB
        self.assertGreater(len(big), 16 << 20)
        try:
            status, _ = self.server.request("POST", "/v1/viewing/events", big)
        except (ConnectionError, BrokenPipeError):
            status = 413  # the server may close before the client finishes sending
        self.assertEqual(status, 413)

    def test_summary_languages_and_erase(self):
        events = [event(15, T0 + i * 1000, str(i), title=1 + i % 2) for i in range(30)]
        events.append(event(15, T0 + 99_000, "fr", audio="fr", subtitle="en"))
        self.assertEqual(self.post(events)[0], 200)
        self.assertEqual(self.server.request("POST", "/v1/members/15:rollup?kind=play")[0], 200)
        status, summary = self.server.json("GET", "/v1/members/15/summary")
        self.assertEqual(status, 200)
        self.assertEqual(sum(t["plays"] for t in summary["titles"]), 31)
        status, langs = self.server.json("GET", "/v1/members/15/languages")
        self.assertEqual(langs["current"]["en"]["audio_lang"], "fr")
        self.assertEqual(len(langs["changes"]), 2)
        status, _ = self.server.json("DELETE", "/v1/members/15")
        self.assertEqual(status, 200)
        status, page = self.history(15)
        self.assertEqual(page["records"], [])
        status, summary = self.server.json("GET", "/v1/members/15/summary")
        self.assertEqual(summary["titles"], [])

    def test_metrics_and_tables(self):
        self.history(10)
        self.history(10)
        status, text = self.server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        text = text.decode()
        for name in ["strata_http_requests_total", "strata_http_request_seconds_bucket",
                     "strata_viewing_cache_hits_total", "strata_viewing_filter_dropped_total",
                     "strata_table_disk_bytes", "strata_process_peak_rss_bytes"]:
            self.assertIn(name, text)
        # Made-up methods are answered, and counted under one label, not one each.
        for i in range(20):
            status, _ = self.server.request("BREW%d" % i, "/v1/viewing/events")
            self.assertEqual(status, 405)
        status, text = self.server.request("GET", "/metrics")
        text = text.decode()
        self.assertNotIn('method="BREW', text)
        self.assertIn('method="other"', text)
        status, tables = self.server.json("GET", "/v1/admin/viewing/tables")
        self.assertEqual(status, 200)
        names = {t["table"] for t in tables["tables"]}
        self.assertIn("plays_recent_live", names)
        self.assertIn("previews_recent_compressed", names)

    def test_startup_line_names_the_allocator(self):
        # The startup line says which allocator serves malloc (glibc's: apps/CMakeLists.txt).
        tmp = tempfile.mkdtemp(prefix="strata_e2e_alloc_")
        try:
            strata_e2e.ServerProcess(STRATA, tmp, log_level="info").stop()
            with open(os.path.join(tmp, "server.log"), errors="replace") as f:
                log = f.read()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertRegex(log, r'msg="strata serving".* allocator=(glibc\b|"jemalloc \d)')


class AgeTiersTest(unittest.TestCase):
    """Plays move recent -> past -> historical; reads stitch the tiers; summaries count all."""

    def test_rotation_by_read_and_by_sweep(self):
        day = 86_400_000
        d = tempfile.mkdtemp(prefix="strata_e2e_tiers_")
        server = Server(d, ["--recent-age-ms", str(day), "--historical-age-ms", str(30 * day),
                            "--rotation-slack-ms", "0", "--rotation-max-per-s", "0"])
        try:
            now = int(time.time() * 1000)
            ages = [0, 2, 5, 10, 20, 40, 60, 90]  # days: 1 recent, 4 past, 3 summarised
            for member in (700, 701):
                events = [event(member, now - a * day - 60_000 - i, "s%d" % i, title=a % 3 + 1)
                          for i, a in enumerate(ages)]
                status, body = server.json("POST", "/v1/viewing/events", json.dumps(events))
                self.assertEqual((status, body["accepted"]), (200, len(ages)), body)

            # A read of member 700 finds plays past the recent tier's age: it queues a rotation.
            status, page = server.json("GET", "/v1/members/700/viewing?limit=1")
            self.assertEqual(status, 200, page)
            deadline = time.time() + 20
            while time.time() < deadline:
                _, st = server.json("GET", "/v1/admin/viewing/rotation")
                if st["rotated_members"] >= 1 and st["queued"] == 0 and st["running"] == 0:
                    break
                time.sleep(0.05)
            self.assertGreaterEqual(st["rotated_members"], 1, st)

            status, page = server.json("GET", "/v1/members/700/viewing?limit=100")
            self.assertEqual(status, 200, page)
            self.assertIn("detail_from", page)  # older plays exist only in the summary
            self.assertEqual(len(page["records"]), 5, page)  # ages 0..20 days kept in detail
            self.assertTrue(all(r["started_at"] >= page["detail_from"] for r in page["records"]))
            status, summary = server.json("GET", "/v1/members/700/summary")
            self.assertEqual(status, 200, summary)
            self.assertEqual(sum(t["plays"] for t in summary["titles"]), len(ages), summary)
            self.assertIsNotNone(summary["detail_from"])

            # Member 701 is never read: the sweep finds it.
            status, st = server.json("POST", "/v1/admin/viewing/rotation:sweep")
            self.assertEqual(status, 202, st)
            deadline = time.time() + 20
            while time.time() < deadline:
                _, st = server.json("GET", "/v1/admin/viewing/rotation")
                if not st["sweep"]["running"] and st["queued"] == 0 and st["running"] == 0 \
                        and st["rotated_members"] >= 2:
                    break
                time.sleep(0.05)
            self.assertGreaterEqual(st["rotated_members"], 2, st)
            status, tables = server.json("GET", "/v1/admin/viewing/tables")
            by_name = {t["table"]: t for t in tables["tables"]}
            self.assertEqual(by_name["plays_past_compressed"]["tier"], "past")
            self.assertEqual(by_name["plays_past_compressed"]["records"], 2 * 4)
            self.assertEqual(by_name["plays_historical"]["records"], 2 * 3)
            self.assertEqual(by_name["plays_recent_compressed"]["records"]
                             + by_name["plays_recent_live"]["records"], 2 * 1)

            # An explicit rotation, and bad input.
            status, body = server.json("POST", "/v1/members/701:rotate")
            self.assertEqual((status, body), (200, {"rotated": True}))
            status, body = server.json("POST", "/v1/members/0:rotate")
            self.assertEqual(status, 400)
            self.assertIn("member", body["error"]["message"])
            status, body = server.json("GET", "/v1/members/701:rotate")
            self.assertEqual(status, 405)
            status, metrics = server.request("GET", "/metrics")
            # 7 plays per member left the recent tier; 3 of them went on to the summary.
            self.assertIn(b'strata_viewing_rotated_records_total{to="past"} 14', metrics)
            self.assertIn(b'strata_viewing_rotated_records_total{to="historical"} 6', metrics)
            self.assertIn(b"strata_viewing_summary_cache_hits_total", metrics)

            # Erasure reaches every tier.
            status, _ = server.json("DELETE", "/v1/members/700")
            self.assertEqual(status, 200)
            _, summary = server.json("GET", "/v1/members/700/summary")
            self.assertEqual(summary["titles"], [])
        finally:
            server.stop()
            shutil.rmtree(d, ignore_errors=True)


class ConnectionLimitsTest(unittest.TestCase):
    """--idle-timeout-ms closes a silent connection; --max-connections refuses one more."""

    def test_idle_timeout_and_connection_limit(self):
        tmp = tempfile.mkdtemp(prefix="strata_conn_")
        server = strata_e2e.ServerProcess(STRATA, tmp, ["--idle-timeout-ms", "300",
                                                 "--max-connections", "3"])
        import socket
        try:
            quiet = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            start = time.time()
            self.assertEqual(quiet.recv(1), b"")  # closed by the server, not by us
            self.assertLess(time.time() - start, 4)
            quiet.close()
        finally:
            server.stop()
        # The limit on its own server: with the 300 ms idle timeout above, a slow CI machine
        # could close a held connection before the extra one arrives, freeing its slot.
        server = strata_e2e.ServerProcess(STRATA, tmp, ["--idle-timeout-ms", "60000",
                                                 "--max-connections", "3"])
        try:
            # Each held connection proves it was accepted with a request of its own: the
            # server may still count the start-up health check's connection for a moment, in
            # which case a connection is refused (503) and is tried again.
            held = []
            for _ in range(3):
                for _attempt in range(50):
                    c = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    if c.recv(4096).startswith(b"HTTP/1.1 200"):
                        held.append(c)
                        break
                    c.close()
                    time.sleep(0.1)
            self.assertEqual(len(held), 3)
            extra = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            answer = extra.recv(4096)
            self.assertTrue(answer.startswith(b"HTTP/1.1 503"), answer)
            extra.close()
            for s in held:
                s.close()
        finally:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)


class ConfigFileTest(unittest.TestCase):
    def test_options_come_from_the_config_file_and_bad_keys_are_refused(self):
        tmp = tempfile.mkdtemp(prefix="strata_cfg_")
        try:
            port = strata_e2e.free_port()
            cfg = os.path.join(tmp, "strata.toml")
            with open(cfg, "w") as f:
                f.write('[serve]\ndata-dir = "%s"\nport = %d\nmin-preview-ms = 1000\n'
                        % (os.path.join(tmp, "d"), port))
            proc = subprocess.Popen([STRATA, "serve", "--config", cfg],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.time() + 30
                while True:
                    try:
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                        conn.request("GET", "/healthz")
                        if conn.getresponse().status == 200:
                            break
                    except OSError:
                        self.assertLess(time.time(), deadline, "server on the configured port")
                        time.sleep(0.05)
                # A 2 s preview is dropped by the default 5 s threshold, kept with 1 s.
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("POST", "/v1/viewing/events",
                             json.dumps([event(1, T0, "p", kind="preview", watched=2000)]))
                body = json.loads(conn.getresponse().read())
                self.assertEqual(body["accepted"], 1, body)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            with open(cfg, "w") as f:
                f.write("[serve]\nprot = 1\n")
            bad = subprocess.run([STRATA, "serve", "--config", cfg], capture_output=True,
                                 timeout=30)
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn(b"prot", bad.stderr + bad.stdout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


@strata_e2e.embedded_only("fills a tmpfs under the data directory; the distributed stores' "
                          "disks are the cluster's")
class DiskFullTest(unittest.TestCase):
    """Fills a small tmpfs under the server: writes must fail cleanly (503, nothing
    acknowledged that is not stored), reads must go on, and after the disk grows and the
    server restarts every acknowledged event must be there."""

    def test_full_disk_fails_writes_cleanly_and_loses_nothing(self):
        with strata_e2e.small_disk(self, "6m") as (mnt, grow):
            server = Server(mnt)
            acked, failures = [], []
            for i in range(400):  # bounded: 6 MiB fills long before this
                batch = [event(2000 + k % 20, T0 + (i * 100 + k) * 1000, "f%d" % i)
                         for k in range(100)]
                status, body = server.json("POST", "/v1/viewing/events", json.dumps(batch))
                if status == 200:
                    acked += [(e["member"], e["started_at"], e["session"]) for e in batch]
                else:
                    failures.append((status, body))
                    if len(failures) >= 3:
                        break
            self.assertTrue(failures, "the disk never filled")
            for status, body in failures:
                self.assertEqual(status, 503, body)
                self.assertEqual(body["error"]["code"], "unavailable")
            self.assertIsNone(server.proc.poll(), "the server must not crash on ENOSPC")
            status, _ = server.request("GET", "/v1/members/2000/viewing?limit=5")
            self.assertEqual(status, 200, "reads go on with a full disk")
            server.stop(signal.SIGKILL)

            grow("256m")
            server = Server(mnt)
            stored = stored_keys(self, server, range(2000, 2020))
            self.assertEqual([k for k in acked if k not in stored], [],
                             "acknowledged events lost after the disk filled")
            server.stop()

    def test_writes_resume_without_a_restart_once_the_disk_has_room(self):
        self.check_writes_resume(())

    def test_writes_resume_with_every_write_synced(self):
        # --sync batch: each write fsyncs the log through RocksDB's own writer.
        self.check_writes_resume(("--sync", "batch"))

    def check_writes_resume(self, extra):
        with strata_e2e.small_disk(self, "6m") as (mnt, grow):
            server = Server(mnt, extra)
            acked, n = [], 0

            def post():
                nonlocal n
                batch = [event(3000 + k % 20, T0 + (n * 100 + k) * 1000, "r%d" % n)
                         for k in range(100)]
                n += 1
                status, body = server.json("POST", "/v1/viewing/events", json.dumps(batch))
                if status == 200:
                    acked.extend((e["member"], e["started_at"], e["session"]) for e in batch)
                    return True
                self.assertEqual(status, 503, body)
                return False

            strata_e2e.fill_until_refused(self, post, 400)
            status, body = server.json("GET", "/healthz")
            self.assertEqual(status, 503, body)
            self.assertIn("full", json.dumps(body))

            # Room again, the same server process: writes must come back by themselves.
            grow("256m")
            strata_e2e.retry_until_accepted(self, post, "viewing writes")
            for _ in range(20):  # and they stay accepted
                self.assertTrue(post())
            status, body = server.json("GET", "/healthz")
            self.assertEqual(status, 200, body)
            status, metrics = server.request("GET", "/metrics")
            self.assertEqual(status, 200)
            self.assertRegex(metrics.decode(), r"strata_rocksdb_disk_full_resumes_total 1\b")

            # Nothing acknowledged before or after is lost, across a kill -9.
            server.stop(signal.SIGKILL)
            server = Server(mnt, extra)
            stored = stored_keys(self, server, range(3000, 3020))
            self.assertEqual([k for k in acked if k not in stored], [],
                             "acknowledged events lost around the full disk")
            server.stop()


class DurabilityTest(unittest.TestCase):
    def test_acknowledged_writes_survive_kill_9(self):
        tmp = tempfile.mkdtemp(prefix="strata_kill_")
        try:
            server = Server(tmp, ["--rollup-min-live-rows", "32"])
            acked = {}
            stop = threading.Event()

            def writer(wid):
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                i = 0
                while not stop.is_set() and i < 400:
                    batch = [event(1000 + (i * 7 + k) % 50, T0 + (wid * 100_000 + i) * 1000 + k,
                                   "w%d" % wid) for k in range(50)]
                    try:
                        conn.request("POST", "/v1/viewing/events", json.dumps(batch),
                                     {"Content-Type": "application/json"})
                        resp = conn.getresponse()
                        body = resp.read()
                        if resp.status == 200 and json.loads(body)["accepted"] == 50:
                            for e in batch:
                                acked[(e["member"], e["started_at"], e["session"])] = True
                    except (OSError, http.client.HTTPException):
                        return
                    i += 1

            threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
            for t in threads:
                t.start()
            time.sleep(1.5)
            server.proc.kill()  # SIGKILL mid-stream
            server.proc.wait()
            stop.set()
            for t in threads:
                t.join()
            self.assertGreater(len(acked), 500, "the writers should have been acknowledged")

            server.log.close()
            server = Server(tmp)
            stored = stored_keys(self, server, range(1000, 1050))
            missing = [k for k in acked if k not in stored]
            self.assertEqual(missing, [], "acknowledged events lost after kill -9")
            server.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class BenchTiersTest(unittest.TestCase):
    """`strata bench viewing --mode tiers`, scaled down: every phase runs against a real server
    and reports what the benchmark's figures are built from."""

    @strata_e2e.embedded_only("reads the in-process caches' entries, which the shared "
                              "memcached cache replaces")
    def test_tiers_mode_runs_every_phase(self):
        d = tempfile.mkdtemp(prefix="strata_e2e_bench_")
        server = Server(d)
        try:
            out = subprocess.run(
                [STRATA, "bench", "viewing", "--server", "http://127.0.0.1:%d" % server.port,
                 "--mode", "tiers", "--duration", "2", "--warmup", "0", "--after", "2",
                 "--history-members", "2", "--history-plays", "500",
                 "--rotation-members", "20", "--rotation-plays", "10",
                 "--events-per-s", "2000", "--reads-per-s", "200", "--connections", "4"],
                capture_output=True, text=True, timeout=240)
            self.assertEqual(out.returncode, 0, out.stderr)
            text = out.stdout
            # Rotation alone moved the long histories; the sweep during the mix moved the aged
            # plays (some of the 200 may share a key and be one playback).
            alone = re.search(r"rotation alone: ([\d,]+) plays moved", text)
            self.assertIsNotNone(alone, text)
            self.assertGreater(int(alone.group(1).replace(",", "")), 0, text)
            during = re.search(r"rotation during the mix: ([\d,]+) plays moved.*done in", text)
            self.assertIsNotNone(during, text)
            self.assertGreater(int(during.group(1).replace(",", "")), 150, text)
            # Three timed phases (baseline, during, after), every read type measured, no errors.
            rows = re.findall(r"^  (recent read|months read|summary read)\S*.*?(\d+)$", text,
                              re.M)
            self.assertEqual(len(rows), 9, text)
            self.assertTrue(all(errors == "0" for _, errors in rows), text)
            self.assertIn("read p99 during rotation / after:", text)
            # Three passes over the 2 long histories: the later two after the server dropped
            # its caches (POST /v1/admin/viewing/caches:drop), so 6 misses.
            self.assertRegex(text, r"summary reads on cache miss \(500 plays.*: 6 reads")
            # And three passes over the 20 rotated members, each with caches dropped first:
            # their 10-play pasts store no summary, so every read summarises their chunk.
            self.assertRegex(text, r"summary reads on cache miss \(rotated members, 10 plays "
                                   r"each\): 60 reads, .* errors 0")
            self.assertNotIn("could not drop", text)
            status, body = server.json("POST", "/v1/admin/viewing/caches:drop", "")
            self.assertEqual(status, 200, body)
            self.assertIn("summary_entries", body)
            self.assertGreater(body["history_entries"], 0, body)  # the mix filled it again
            # The operator command calls the same endpoint (a background roll-up may have
            # installed an entry since, so only the answer's shape is checked).
            cli = subprocess.run([STRATA, "admin", "drop-caches", "--server",
                                  "http://127.0.0.1:%d" % server.port],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(cli.returncode, 0, cli.stderr)
            self.assertIn('"summary_entries"', cli.stdout)
            self.assertRegex(text, r"plays_historical: \d")
        finally:
            server.stop()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

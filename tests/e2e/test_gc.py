#!/usr/bin/env python3
"""End-to-end tests of the lifecycle collector against the real `strata` binary.

Usage: test_gc.py PATH_TO_STRATA

Starts `strata serve` with a throwaway data directory, creates objects with short TTLs and
soft deletes, then: a dry run with `as_of` in the future (a forecast: nothing deleted), the
`strata gc run` CLI (objects gone, survivors intact), the runs/stats/status routes and their
errors, the NDJSON export (every line parses), a run interrupted by SIGKILL and resumed after
a restart, and finally the dashboard in headless Chromium: the DOM must hold SVG bars with the
day's data and a screenshot must show the chart colours. The dashboard test is skipped, with
a message, only when no `chromium` binary is installed. Standard library only.
"""
import glob
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_e2e  # noqa: E402
import test_media  # noqa: E402  (Server, free_port)

STRATA = None
OBJECTS_BLUE = (0x1c, 0x7e, 0xd6)
BYTES_ORANGE = (0xe8, 0x59, 0x0c)


def png_pixels(path):
    """Decodes an 8-bit RGB/RGBA, non-interlaced PNG: (width, height, rows of bytes, bpp)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and color in (2, 6) and interlace == 0, "unsupported PNG"
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def count_colour(rows, bpp, rgb, tolerance=12):
    n = 0
    for row in rows:
        for i in range(0, len(row), bpp):
            if all(abs(row[i + k] - rgb[k]) <= tolerance for k in range(3)):
                n += 1
    return n


class GcTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="strata_e2e_gc_")
        self.server = test_media.Server(self.dir, ("--gc-daily-at", ""))

    def tearDown(self):
        if self.server.proc.poll() is None:
            self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def put(self, bucket, key, data, headers=None):
        status, body = self.server.json("PUT", "/v1/buckets/%s/objects/%s" % (bucket, key),
                                        data, headers)
        self.assertEqual(status, 200, body)
        return body

    def wait_run(self, run_id, timeout=60, task="gc"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, run = self.server.json("GET", "/v1/%s/runs/%d" % (task, run_id))
            self.assertEqual(status, 200, run)
            if run["state"] in ("done", "failed"):
                return run
            time.sleep(0.1)
        self.fail("run %d did not finish" % run_id)

    def populate(self, n=40):
        """Bucket 'media': ttl 1 s for even i; odd i soft-deleted (grace 1 s) when i % 4 == 1."""
        status, _ = self.server.json("PUT", "/v1/buckets/media", b'{"grace": "1s"}')
        self.assertEqual(status, 200)
        for i in range(n):
            headers = {"x-strata-ttl": "1s"} if i % 2 == 0 else {}
            self.put("media", "o%03d" % i, b"x" * (100 + i), headers)
        for i in range(1, n, 4):
            status, _ = self.server.json("DELETE", "/v1/buckets/media/objects/o%03d" % i)
            self.assertEqual(status, 200)
        # Expected: even (ttl) + i % 4 == 1 (deleted) are eligible after 1 s.
        eligible = [i for i in range(n) if i % 2 == 0 or i % 4 == 1]
        return eligible, sum(100 + i for i in eligible)

    def test_dry_run_forecast_then_run_via_cli(self):
        eligible, eligible_bytes = self.populate()
        now_ms = int(time.time() * 1000)
        # A forecast for tomorrow: everything eligible, nothing deleted.
        status, run = self.server.json("POST", "/v1/gc/runs", json.dumps(
            {"dry_run": True, "as_of": now_ms + 86_400_000}).encode())
        self.assertEqual(status, 202, run)
        run = self.wait_run(run["id"])
        self.assertEqual(run["state"], "done")
        self.assertEqual(run["eligible"], len(eligible))
        self.assertEqual(run["eligible_bytes"], eligible_bytes)
        self.assertEqual(run["deleted"], 0)
        status, _ = self.server.json("GET", "/v1/buckets/media/objects/o000")
        self.assertEqual(status, 200)
        # A real run may not look ahead; bad input names the field.
        status, err = self.server.json("POST", "/v1/gc/runs", json.dumps(
            {"dry_run": False, "as_of": now_ms + 86_400_000}).encode())
        self.assertEqual(status, 400)
        self.assertIn("as_of", err["error"]["message"])
        status, err = self.server.json("POST", "/v1/gc/runs", b'{"dry_run": 3}')
        self.assertEqual(status, 400)
        self.assertIn("dry_run", err["error"]["message"])
        status, _ = self.server.json("GET", "/v1/gc/runs/999")
        self.assertEqual(status, 404)
        status, err = self.server.json("GET", "/v1/gc/stats?days=0")
        self.assertEqual(status, 400)

        time.sleep(1.2)
        out = subprocess.run([STRATA, "gc", "run", "--server",
                              "http://127.0.0.1:%d" % self.server.port],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
        run = json.loads(out.stdout)
        self.assertEqual(run["state"], "done")
        self.assertEqual(run["deleted"], len(eligible))
        self.assertEqual(run["deleted_bytes"], eligible_bytes)
        for i in range(40):
            status, _, _ = self.server.request("GET", "/v1/buckets/media/objects/o%03d" % i)
            self.assertEqual(status, 404 if i in eligible else 200, i)
        status, stats = self.server.json("GET", "/v1/gc/stats?days=3")
        self.assertEqual(status, 200)
        self.assertEqual(len(stats["days"]), 3)
        self.assertEqual(stats["days"][-1]["objects"], len(eligible))
        self.assertEqual(stats["days"][-1]["bytes"], eligible_bytes)
        reasons = {r["reason"]: r["objects"] for r in stats["days"][-1]["by_bucket"]}
        self.assertEqual(reasons, {"expired": 20, "deleted": 10})
        status, runs = self.server.json("GET", "/v1/gc/runs?limit=5")
        self.assertEqual([r["id"] for r in runs["runs"]], [2, 1])
        # The export: every line is JSON, partitioned by day, with a schema.
        export = os.path.join(self.dir, "d", "lifecycle-export", "gc")
        self.assertTrue(os.path.exists(os.path.join(export, "_schema.json")))
        lines = 0
        for path in glob.glob(os.path.join(export, "worklist", "dt=*", "run-2-*.ndjson")):
            with open(path) as f:
                for line in f:
                    row = json.loads(line)
                    self.assertIn(row["reason"], ("expired", "deleted"))
                    lines += 1
        self.assertEqual(lines, len(eligible))
        metrics = self.server.request("GET", "/metrics")[2].decode()
        self.assertIn('strata_lifecycle_objects_total{task="gc"} %d' % len(eligible), metrics)

    def test_archival_moves_inline_and_file_objects_to_the_cold_directory(self):
        # Small objects are inline rows by default; archival moves every object's bytes to
        # the archive class's own directory, whatever its size, and reads are unchanged.
        self.server.stop()
        self.server = test_media.Server(self.dir, ("--gc-daily-at", "", "--archive-after-ms",
                                                   "1", "--archive-daily-at", ""))
        status, _ = self.server.json("PUT", "/v1/buckets/media", b"{}")
        self.assertEqual(status, 200)
        small, large = b"tiny object", bytes(range(256)) * 160  # 11 B inline, 40 KiB a file
        self.put("media", "small", small)
        self.put("media", "large", large)
        self.assertEqual(strata_e2e.blob_names(self.dir, "hot/media/small@"), [])
        self.assertEqual(len(strata_e2e.blob_names(self.dir, "hot/media/large@")), 1)
        time.sleep(0.05)
        status, run = self.server.json("POST", "/v1/archive/runs", b'{"dry_run": false}')
        self.assertEqual(status, 202, run)
        run = self.wait_run(run["id"], task="archive")
        self.assertEqual(run["state"], "done", run)
        self.assertEqual((run["processed"], run["errors"]), (2, 0), run)
        for key, data in (("small", small), ("large", large)):
            status, headers, body = self.server.request("GET", "/v1/buckets/media/objects/" + key)
            self.assertEqual(status, 200, key)
            self.assertEqual(body, data, key)
            self.assertEqual(len(strata_e2e.blob_names(self.dir, "cold/media/" + key + "@")), 1,
                             key)
        self.assertEqual(strata_e2e.blob_names(self.dir, "hot/media/"), [])

    def test_inline_objects_survive_turning_inlining_off(self):
        # Small objects written inline stay readable and collectable after a restart with
        # --blob-inline-max-bytes 0 (new ones are files from then on).
        status, _ = self.server.json("PUT", "/v1/buckets/media", b'{"grace": "1s"}')
        self.assertEqual(status, 200)
        self.put("media", "kept", b"inline bytes")
        self.put("media", "dropped", b"inline too")
        self.server.stop()
        self.server = test_media.Server(self.dir, ("--gc-daily-at", "",
                                                   "--blob-inline-max-bytes", "0"))
        status, _, body = self.server.request("GET", "/v1/buckets/media/objects/kept")
        self.assertEqual((status, body), (200, b"inline bytes"))
        self.put("media", "new", b"a file now")
        self.assertEqual(len(strata_e2e.blob_names(self.dir, "hot/media/new@")), 1)
        status, _ = self.server.json("DELETE", "/v1/buckets/media/objects/dropped")
        self.assertEqual(status, 200)
        time.sleep(1.2)
        status, run = self.server.json("POST", "/v1/gc/runs", b'{"dry_run": false}')
        self.assertEqual(status, 202, run)
        run = self.wait_run(run["id"])
        self.assertEqual((run["state"], run["deleted"], run["errors"]), ("done", 1, 0), run)
        status, _, body = self.server.request("GET", "/v1/buckets/media/objects/kept")
        self.assertEqual((status, body), (200, b"inline bytes"))

    @unittest.skipIf(strata_e2e.DEPLOYMENT != "distributed",
                     "distributed deployment only: an S3 bucket policy makes radosgw refuse "
                     "some keys of the sweep's DeleteObjects")
    def test_keys_that_s3_refuses_to_delete_stay_for_the_next_sweep(self):
        # Every object's bytes on S3; a bucket policy denies s3:DeleteObject on the bytes of
        # bucket "locked", so radosgw answers AccessDenied for those keys of each batch's
        # DeleteObjects and deletes the others of the same request.
        self.server.stop()
        self.server = test_media.Server(self.dir, ("--gc-daily-at", "",
                                                   "--blob-inline-max-bytes", "0"))
        for bucket in ("media", "locked"):
            status, _ = self.server.json("PUT", "/v1/buckets/" + bucket, b'{"grace": "1s"}')
            self.assertEqual(status, 200)
            for i in range(10):
                self.put(bucket, "o%02d" % i, b"y" * (50 + i), {"x-strata-ttl": "1s"})
        self.put("media", "kept", b"live bytes")
        s3_bucket = strata_e2e.deployment_tag(self.dir)
        strata_e2e.set_bucket_policy(self.dir, {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Principal": {"AWS": ["*"]},
                           "Action": "s3:DeleteObject",
                           "Resource": ["arn:aws:s3:::%s/hot/locked/*" % s3_bucket]}]})
        time.sleep(1.2)
        status, run = self.server.json("POST", "/v1/gc/runs", b'{"dry_run": false}')
        self.assertEqual(status, 202, run)
        run = self.wait_run(run["id"], timeout=120)
        self.assertEqual((run["state"], run["eligible"], run["errors"]), ("done", 20, 10), run)
        self.assertEqual(strata_e2e.blob_names(self.dir, "hot/media/o"), [])
        self.assertEqual(len(strata_e2e.blob_names(self.dir, "hot/locked/o")), 10)
        status, _, body = self.server.request("GET", "/v1/buckets/media/objects/kept")
        self.assertEqual((status, body), (200, b"live bytes"))

        # The refused items kept their rows: the next run finds them again and, with the
        # policy gone, finishes them; every deletion is counted once in the day's totals.
        strata_e2e.set_bucket_policy(self.dir, None)
        status, run = self.server.json("POST", "/v1/gc/runs", b'{"dry_run": false}')
        self.assertEqual(status, 202, run)
        run = self.wait_run(run["id"], timeout=120)
        self.assertEqual((run["state"], run["eligible"], run["errors"]), ("done", 10, 0), run)
        self.assertEqual(strata_e2e.blob_names(self.dir, "hot/locked/o"), [])
        status, stats = self.server.json("GET", "/v1/gc/stats?days=1")
        self.assertEqual(status, 200)
        self.assertEqual(stats["days"][-1]["objects"], 20)
        status, run = self.server.json("POST", "/v1/gc/runs", b'{"dry_run": false}')
        run = self.wait_run(run["id"], timeout=120)
        self.assertEqual((run["state"], run["eligible"]), ("done", 0), run)

    def test_orphan_blobs_past_the_grace_are_collected_and_young_ones_kept(self):
        # Bytes that no row names (a power loss took their upload rows), planted straight in
        # the blob store: the run's orphan scan deletes the one older than the grace and
        # leaves the younger one, and every object stays readable.
        grace_s = 3
        self.server.stop()
        self.server = test_media.Server(self.dir, ("--gc-daily-at", "", "--gc-orphan-age-ms",
                                                   str(grace_s * 1000)))
        status, _ = self.server.json("PUT", "/v1/buckets/media", b"{}")
        self.assertEqual(status, 200)
        small, large = b"inline bytes", bytes(range(256)) * 160  # a row, and a file
        self.put("media", "small", small)
        self.put("media", "large", large)

        def name(key):  # a media blob name, its generation from the clock as BeginPut's
            return "hot/media/%s@%016x" % (key, int(time.time() * 1e6))

        old = name("lost/old")
        strata_e2e.put_blob(self.dir, old, b"o" * 5000)
        time.sleep(grace_s + 0.5)
        young = name("lost/young")
        strata_e2e.put_blob(self.dir, young, b"y" * 3000)
        self.assertEqual(strata_e2e.blob_names(self.dir, "hot/media/lost/"), sorted([old, young]))

        status, run = self.server.json("POST", "/v1/gc/runs", b"{}")
        self.assertEqual(status, 202, run)
        run = self.wait_run(run["id"])
        self.assertEqual(run["state"], "done", run)
        orphans = run["orphan_blobs"]
        self.assertEqual(orphans["scan"], "done", run)
        self.assertEqual((orphans["found"], orphans["collected"], orphans["collected_bytes"],
                          orphans["too_young"]), (1, 1, 5000, 1), run)
        self.assertEqual(run["errors"], 0, run)
        self.assertEqual(strata_e2e.blob_names(self.dir, "hot/media/lost/"), [young])
        for key, data in (("small", small), ("large", large)):
            status, _, body = self.server.request("GET", "/v1/buckets/media/objects/" + key)
            self.assertEqual((status, body), (200, data), key)
        # Audited: a log line naming the blob, the metric, and the day's totals.
        metrics = self.server.request("GET", "/metrics")[2].decode()
        self.assertIn('strata_lifecycle_orphan_blobs_total{task="gc"} 1', metrics)
        self.assertIn('strata_lifecycle_orphan_blob_bytes_total{task="gc"} 5000', metrics)
        status, stats = self.server.json("GET", "/v1/gc/stats?days=1")
        self.assertIn({"bucket": "media", "reason": "orphan_blob", "objects": 1, "bytes": 5000},
                      stats["days"][-1]["by_bucket"])
        with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
            log = f.read()
        self.assertIn("collected an orphan blob", log)
        self.assertIn(old, log)
        self.assertNotIn(young, log)
        status, audit = self.server.json("GET", "/v1/admin/audit?limit=100")
        self.assertEqual(status, 200, audit)
        orphan_records = [r for r in audit["records"] if r["action"] == "gc.orphan_blob"]
        self.assertEqual([(r["key"], r["target"], r["result"]) for r in orphan_records],
                         [("collector", old, "ok")], audit)
        self.assertIn("run %d" % run["id"], orphan_records[0]["detail"])

    def test_sweep_resumes_after_sigkill(self):
        # A slow sweep (5 items/s), killed mid-way; after the restart it resumes and finishes.
        self.server.stop()
        self.server = test_media.Server(self.dir, ("--gc-daily-at", "", "--gc-initial-rate", "5",
                                                   "--gc-max-rate", "5", "--gc-min-rate", "5"))
        eligible, eligible_bytes = self.populate(24)
        time.sleep(1.2)
        status, run = self.server.json("POST", "/v1/gc/runs", b"{}")
        self.assertEqual(status, 202, run)
        deadline = time.time() + 30
        while time.time() < deadline:
            status, r = self.server.json("GET", "/v1/gc/runs/%d" % run["id"])
            if r["state"] == "sweeping":
                break
            time.sleep(0.05)
        time.sleep(1.0)
        self.server.stop(signal.SIGKILL)
        self.server = test_media.Server(self.dir, ("--gc-daily-at", ""))
        done = self.wait_run(run["id"])
        self.assertEqual(done["state"], "done", done)
        self.assertEqual(done["deleted"], len(eligible))  # exactly once each
        self.assertEqual(done["deleted_bytes"], eligible_bytes)
        for i in range(24):
            status, _, _ = self.server.request("GET", "/v1/buckets/media/objects/o%03d" % i)
            self.assertEqual(status, 404 if i in eligible else 200, i)
        status, stats = self.server.json("GET", "/v1/gc/stats?days=1")
        self.assertEqual(stats["days"][0]["objects"], len(eligible))

    def test_dashboard_renders_gc_history_in_chromium(self):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            self.skipTest("chromium is not installed (apt-get install -y chromium): "
                          "dashboard not checked")
        eligible, eligible_bytes = self.populate()
        time.sleep(1.2)
        status, run = self.server.json("POST", "/v1/gc/runs", b"{}")
        self.assertEqual(status, 202)
        self.assertEqual(self.wait_run(run["id"])["state"], "done")
        status, headers, page = self.server.request("GET", "/dashboard")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/html"))
        url = "http://127.0.0.1:%d/dashboard?days=7" % self.server.port
        flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 "--user-data-dir=" + os.path.join(self.dir, "chromium"),
                 "--virtual-time-budget=5000", "--window-size=1200,800"]
        dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True,
                             timeout=120).stdout
        self.assertIn('data-loaded="true"', dom)
        bars = [b for b in dom.split("<rect ")[1:] if 'class="bar"' in b and 'data-value="' in b]
        values = sorted(b.split('data-value="')[1].split('"')[0] for b in bars)
        self.assertEqual(values, sorted([str(len(eligible)), str(eligible_bytes)]), dom[-2000:])
        shot = os.path.join(self.dir, "dashboard.png")
        subprocess.run(flags + ["--screenshot=" + shot, url], capture_output=True, timeout=120)
        self.assertTrue(os.path.exists(shot), "no screenshot")
        width, height, rows, bpp = png_pixels(shot)
        chart_rows = rows[130:400]  # the chart area below the tiles
        self.assertGreater(count_colour(chart_rows, bpp, OBJECTS_BLUE), 500,
                           "no objects bar in the screenshot")
        self.assertGreater(count_colour(chart_rows, bpp, BYTES_ORANGE), 500,
                           "no bytes bar in the screenshot")


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    test_media.STRATA = STRATA
    unittest.main(verbosity=2)

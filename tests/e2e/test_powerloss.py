"""Power-loss tests: `strata serve` runs under tests/tools/powerloss_shim.cc, which journals what
each fsync made durable; the test kills it mid-load and rebuilds the data directory a power cut
at that moment would leave (powerloss.py), then checks that every acknowledged write is there.

Usage: test_powerloss.py STRATA_BINARY SHIM_LIBRARY
"""
import hashlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import powerloss  # noqa: E402

STRATA = None
SHIM = None
T0 = powerloss.T0
event = powerloss.event
Server = powerloss.Server


def shim_env(root, journal, fail_flag=None):
    return powerloss.shim_env(SHIM, root, journal, fail_flag)


class PowerLossTest(unittest.TestCase):
    """--sync batch acknowledges a write only once it is durable: after a power cut at any
    moment every acknowledged viewing event and object must be readable, byte for byte."""

    def test_acknowledged_writes_survive_a_power_cut(self):
        tmp = tempfile.mkdtemp(prefix="strata_powerloss_")
        root = os.path.join(tmp, "d")
        journal = os.path.join(tmp, "journal")
        try:
            # A first run creates the store; it ends cleanly, so its files are the baseline.
            server = Server(STRATA, tmp, ["--sync", "batch"])
            self.assertEqual(server.json("PUT", "/v1/buckets/media", {})[0], 200)
            server.stop()
            base = powerloss.baseline(root)

            server = Server(STRATA, tmp, ["--sync", "batch", "--rollup-min-live-rows", "32"],
                            env=shim_env(root, journal))
            acked_events = set()
            acked_objects = {}
            lock = threading.Lock()
            stop = threading.Event()

            def viewing_writer(wid):
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                # Bounded, but more than 2 s of work: the cut must come while writes are in
                # flight (a faster machine once finished 300 batches before it, and the cut
                # then found everything synced: a test that shows nothing).
                for i in range(3000):
                    if stop.is_set():
                        return
                    batch = [event(2000 + (i * 5 + k) % 40, T0 + (wid * 10_000 + i) * 1000 + k,
                                   "w%d" % wid) for k in range(40)]
                    try:
                        conn.request("POST", "/v1/viewing/events", json.dumps(batch),
                                     {"Content-Type": "application/json"})
                        resp = conn.getresponse()
                        body = resp.read()
                    except (OSError, http.client.HTTPException):
                        return
                    if resp.status == 200 and json.loads(body)["accepted"] == len(batch):
                        with lock:
                            acked_events.update((e["member"], e["started_at"], e["session"])
                                                for e in batch)
                conn.close()

            def object_writer(wid):
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                for i in range(2000):
                    if stop.is_set():
                        return
                    # Sizes that land inline (rows), in one file, and in several parts; keys
                    # under new prefixes, so new blob directories are made as the load runs.
                    size = (100, 70_000, 300_000)[i % 3]
                    body = hashlib.sha256(b"%d/%d" % (wid, i)).digest() * (size // 32)
                    key = "p%d/s%d/o%d" % (wid, i // 4, i)
                    try:
                        conn.request("PUT", "/v1/buckets/media/objects/" + key, body,
                                     {"Content-Type": "application/octet-stream"})
                        resp = conn.getresponse()
                        resp.read()
                    except (OSError, http.client.HTTPException):
                        return
                    if resp.status == 200:
                        with lock:
                            acked_objects[key] = hashlib.sha256(body).hexdigest()
                conn.close()

            threads = [threading.Thread(target=viewing_writer, args=(w,)) for w in range(2)]
            threads += [threading.Thread(target=object_writer, args=(w,)) for w in range(2)]
            for t in threads:
                t.start()
            time.sleep(2.0)
            server.proc.kill()  # the power cut: nothing after this reaches the disk
            server.proc.wait()
            stop.set()
            for t in threads:
                t.join()
            server.log.close()
            self.assertGreater(len(acked_events), 200, "the viewing writers were acknowledged")
            self.assertGreater(len(acked_objects), 10, "the object writers were acknowledged")

            cut = powerloss.cut_power(root, journal, base)
            # The model must have had something to cut, or the test shows nothing.
            self.assertGreater(cut["dropped_names"] + cut["cut_bytes"], 0, cut)

            server = Server(STRATA, tmp)
            try:
                stored = server.stored_events(range(2000, 2040))
                lost = sorted(acked_events - stored)
                self.assertEqual(lost[:5], [], "%d acknowledged events lost" % len(lost))
                bad = []
                for key, digest in sorted(acked_objects.items()):
                    status, data = server.request("GET", "/v1/buckets/media/objects/" + key)
                    if status != 200 or hashlib.sha256(data).hexdigest() != digest:
                        bad.append((key, status, len(data)))
                self.assertEqual(bad[:5], [], "%d acknowledged objects lost or damaged (cut: %s)"
                                 % (len(bad), cut))
            finally:
                server.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class AssetsPowerLossTest(unittest.TestCase):
    """Assets of ~1 KiB go to RocksDB blob files (--document-blob-min-bytes, default 512),
    which a flush writes beside the SST that points into them. A small WAL cap flushes often
    and deletes the logs those flushes replace, so after a power cut every acknowledged asset
    is readable only if each blob file was durable before its log went."""

    def test_acknowledged_assets_in_blob_files_survive_a_power_cut(self):
        tmp = tempfile.mkdtemp(prefix="strata_assetpower_")
        root = os.path.join(tmp, "d")
        journal = os.path.join(tmp, "journal")
        try:
            server = Server(STRATA, tmp, ["--sync", "batch"])
            status, body = server.json("PUT", "/v1/asset-types/doc", {
                "schema": {"type": "object", "required": ["n"],
                           "properties": {"n": {"type": "integer"}, "w": {"type": "integer"},
                                          "text": {"type": "string"}}},
                "indexed": ["/w"]})
            self.assertIn(status, (200, 201), body)
            server.stop()
            base = powerloss.baseline(root)

            server = Server(STRATA, tmp, ["--sync", "batch", "--max-wal-bytes", "1048576"],
                            env=shim_env(root, journal))
            acked = {}
            lock = threading.Lock()
            stop = threading.Event()

            def writer(wid):
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                i = 0
                while not stop.is_set():
                    batch = [{"n": i * 100 + k, "w": wid,
                              "text": hashlib.sha256(b"%d/%d/%d" % (wid, i, k)).hexdigest() * 30}
                             for k in range(50)]
                    i += 1
                    try:
                        conn.request("POST", "/v1/assets/doc:batch", json.dumps(batch),
                                     {"Content-Type": "application/json"})
                        resp = conn.getresponse()
                        body = resp.read()
                    except (OSError, http.client.HTTPException):
                        return
                    if resp.status != 200:
                        return
                    ids = json.loads(body)["ids"]
                    with lock:
                        for asset, asset_id in zip(batch, ids):
                            if asset_id is not None:
                                acked[asset_id] = asset
                conn.close()

            threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
            for t in threads:
                t.start()
            time.sleep(3.0)
            server.proc.kill()  # the power cut
            server.proc.wait()
            stop.set()
            for t in threads:
                t.join()
            server.log.close()
            self.assertGreater(len(acked), 1000, "the asset writers were acknowledged")

            cut = powerloss.cut_power(root, journal, base)
            self.assertGreater(cut["dropped_names"] + cut["cut_bytes"], 0, cut)
            blob_files = [n for n in os.listdir(os.path.join(root, "rows")) if n.endswith(".blob")]
            self.assertTrue(blob_files, "the documents must have reached blob files")

            server = Server(STRATA, tmp)
            try:
                bad = []
                for asset_id, payload in sorted(acked.items()):
                    status, got = server.json("GET", "/v1/assets/doc/" + asset_id)
                    if status != 200 or got["payload"] != payload:
                        bad.append((asset_id, status))
                self.assertEqual(bad[:5], [], "%d of %d acknowledged assets lost or damaged "
                                 "(cut: %s)" % (len(bad), len(acked), cut))
            finally:
                server.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class GcPowerLossTest(unittest.TestCase):
    """The collector deletes bytes durably; the row state that made them garbage must be
    durable first. A rewrite's row is acknowledged before the periodic WAL fsync; if the GC
    then deleted the old generation's bytes and the power failed, the object would revert
    to the old generation, whose bytes are gone."""

    def test_swept_bytes_are_garbage_in_the_durable_rows(self):
        tmp = tempfile.mkdtemp(prefix="strata_gcpower_")
        root = os.path.join(tmp, "d")
        journal = os.path.join(tmp, "journal")
        try:
            server = Server(STRATA, tmp)
            self.assertEqual(server.json("PUT", "/v1/buckets/media", {})[0], 200)
            old = {}
            for i in range(5):
                body = b"old-%d " % i * 20_000
                status, _ = server.request("PUT", "/v1/buckets/media/objects/k%d" % i, body)
                self.assertEqual(status, 200)
                old[i] = body
            server.stop()
            base = powerloss.baseline(root)

            # Nothing syncs the WAL on its own for 10 minutes.
            server = Server(STRATA, tmp, ["--sync-interval-ms", "600000"],
                            env=shim_env(root, journal))
            for i in range(5):
                status, _ = server.request("PUT", "/v1/buckets/media/objects/k%d" % i,
                                           b"new-%d " % i * 20_000)
                self.assertEqual(status, 200)
            status, run = server.json("POST", "/v1/gc/runs", {})
            self.assertEqual(status, 202, run)
            deadline = time.time() + 60
            while run["state"] not in ("done", "failed") and time.time() < deadline:
                time.sleep(0.1)
                status, run = server.json("GET", "/v1/gc/runs/%d" % run["id"])
            self.assertEqual(run["state"], "done", run)
            self.assertEqual(run["by_reason"]["superseded"], 5, run)
            self.assertEqual(run["deleted"], 5, run)
            server.proc.kill()
            server.proc.wait()
            server.log.close()

            powerloss.cut_power(root, journal, base)
            server = Server(STRATA, tmp)
            try:
                for i in range(5):
                    status, data = server.request("GET", "/v1/buckets/media/objects/k%d" % i)
                    # The new generation, or (its row not durable) the old one: never an
                    # object whose bytes are gone.
                    self.assertEqual(status, 200, data[:200])
                    self.assertIn(data, (old[i], b"new-%d " % i * 20_000))
            finally:
                server.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class FailedFsyncTest(unittest.TestCase):
    """A failed WAL fsync means acknowledged writes may not be durable: the server stops
    acknowledging writes (503) and reports unhealthy, as PostgreSQL and RocksDB do."""

    def test_failed_fsync_stops_acknowledging_and_reports_unhealthy(self):
        tmp = tempfile.mkdtemp(prefix="strata_fsyncfail_")
        root = os.path.join(tmp, "d")
        flag = os.path.join(tmp, "fail-fsync")
        try:
            server = Server(STRATA, tmp, ["--sync", "periodic", "--sync-interval-ms", "20"],
                            env=shim_env(root, os.path.join(tmp, "journal"), flag))
            try:
                batch = [event(3000, T0 + k, "a") for k in range(10)]
                status, body = server.json("POST", "/v1/viewing/events", batch)
                self.assertEqual(status, 200, body)
                self.assertEqual(server.request("GET", "/healthz")[0], 200)

                open(flag, "w").close()  # the disk starts failing fsync
                deadline = time.time() + 20
                status = 200
                i = 0
                while status == 200 and time.time() < deadline:
                    i += 1
                    status, body = server.json("POST", "/v1/viewing/events",
                                               [event(3000, T0 + 1000 * i, "b")])
                    time.sleep(0.02)
                self.assertEqual(status, 503, body)
                self.assertIn("fsync", body["error"]["message"])
                status, body = server.request("GET", "/healthz")
                self.assertEqual(status, 503, body)
                self.assertIn(b"fsync", body)
                status, metrics = server.request("GET", "/metrics")
                self.assertRegex(metrics.decode(), r"strata_rocksdb_wal_sync_failures_total [1-9]")

                os.unlink(flag)  # the disk recovers, but what failed stays unknown: still 503
                time.sleep(0.2)
                status, _ = server.json("POST", "/v1/viewing/events", [event(3000, T0 + 5, "c")])
                self.assertEqual(status, 503)
                # Reads go on.
                status, page = server.json("GET", "/v1/members/3000/viewing")
                self.assertEqual(status, 200, page)
            finally:
                server.stop()
            # A restart (the operator's fix) recovers from the WAL and accepts writes again.
            server = Server(STRATA, tmp)
            try:
                status, page = server.json("GET", "/v1/members/3000/viewing?limit=1000")
                self.assertEqual(status, 200, page)
                started = {r["started_at"] for r in page["records"]}
                self.assertTrue(all(T0 + k in started for k in range(10)), started)
                status, body = server.json("POST", "/v1/viewing/events",
                                           [event(3000, T0 + 99, "d")])
                self.assertEqual(status, 200, body)
            finally:
                server.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    SHIM = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

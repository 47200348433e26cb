"""`strata backup create` while writers run, then `strata backup restore` into a new data
directory: the restored server holds everything acknowledged before the backup began, byte for
byte, and nothing half-written.

Usage: test_backup.py STRATA_BINARY
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_e2e  # noqa: E402
from test_powerloss import Server, event, T0  # noqa: E402

STRATA = None


@strata_e2e.embedded_only("backups of the distributed deployment are the cluster's own")
class BackupTest(unittest.TestCase):
    def test_online_backup_restores_everything_acknowledged_before_it(self):
        tmp = tempfile.mkdtemp(prefix="strata_backup_")
        try:
            server = Server(STRATA, tmp, ["--blob-part-bytes", "65536"])
            url = "http://127.0.0.1:%d" % server.port
            self.assertEqual(server.json("PUT", "/v1/buckets/media", {})[0], 200)
            before_events, before_objects = set(), {}
            for i in range(20):
                batch = [event(4000 + k, T0 + i * 1000 + k, "b") for k in range(25)]
                status, body = server.json("POST", "/v1/viewing/events", batch)
                self.assertEqual(status, 200, body)
                before_events.update((e["member"], e["started_at"]) for e in batch)
            for i in range(30):
                body = hashlib.sha256(b"%d" % i).digest() * ((50, 3000, 9000)[i % 3])
                key = "k/%d" % i
                self.assertEqual(server.request("PUT", "/v1/buckets/media/objects/" + key,
                                                body)[0], 200)
                before_objects[key] = body
            # Assets of ~1.3 KB: their rows go to RocksDB blob files (--document-blob-min-bytes,
            # default 512), which the backup must hold as well as the SST files.
            status, body = server.json("PUT", "/v1/asset-types/doc", {
                "schema": {"type": "object", "properties": {"n": {"type": "integer"},
                                                            "w": {"type": "integer"},
                                                            "text": {"type": "string"}}},
                "indexed": ["/w"]})
            self.assertIn(status, (200, 201), body)
            before_assets = {}
            for i in range(10):
                batch = [{"n": i * 100 + k, "w": k % 7,
                          "text": hashlib.sha256(b"%d/%d" % (i, k)).hexdigest() * 40}
                         for k in range(100)]
                status, body = server.json("POST", "/v1/assets/doc:batch", batch)
                self.assertEqual((status, body["created"]), (200, 100), body)
                before_assets.update(zip(body["ids"], batch))
            # Objects replaced and deleted before the backup stay as they were at it.
            self.assertEqual(server.request("DELETE", "/v1/buckets/media/objects/k/0")[0], 200)
            del before_objects["k/0"]

            # Writers keep going during the backup.
            stop = threading.Event()

            def writer():
                i = 0
                while not stop.is_set() and i < 2000:
                    server.json("POST", "/v1/viewing/events", [event(4100, T0 + i, "during")])
                    server.request("PUT", "/v1/buckets/media/objects/during/%d" % i, b"x" * 20000)
                    i += 1

            t = threading.Thread(target=writer)
            t.start()
            try:
                out = subprocess.run([STRATA, "backup", "create", "nightly", "--server", url],
                                     capture_output=True, text=True, timeout=120)
            finally:
                stop.set()
                t.join()
            self.assertEqual(out.returncode, 0, out.stderr)
            made = json.loads(out.stdout)
            backup_dir = made["dir"]
            self.assertTrue(os.path.exists(os.path.join(backup_dir, "STRATA_BACKUP")))
            self.assertTrue([n for n in os.listdir(os.path.join(backup_dir, "rows"))
                             if n.endswith(".blob")], "the backup holds the assets' blob files")
            # A second backup of the same name is refused, naming it; bad names too.
            out = subprocess.run([STRATA, "backup", "create", "nightly", "--server", url],
                                 capture_output=True, text=True, timeout=60)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("name:", out.stdout + out.stderr)
            status, body = server.request("POST", "/v1/admin/backup?name=../x")
            self.assertEqual(status, 400, body)
            # Backups are admin actions: audited (anonymous: this server has no keys).
            status, audit = server.json("GET", "/v1/admin/audit")
            self.assertEqual(status, 200, audit)
            backups = [(r["key"], r["target"], r["result"], r["status"])
                       for r in audit["records"] if r["action"] == "admin.backup"]
            self.assertIn(("anonymous", "/v1/admin/backup?name=nightly", "ok", 200), backups)
            self.assertIn(("anonymous", "/v1/admin/backup?name=nightly", "error", 409), backups)
            server.stop()

            # Restore into a new directory and serve it.
            restored = os.path.join(tmp, "restored")
            os.makedirs(restored)
            out = subprocess.run([STRATA, "backup", "restore", backup_dir, "--data-dir",
                                  os.path.join(restored, "d")],
                                 capture_output=True, text=True, timeout=120)
            self.assertEqual(out.returncode, 0, out.stderr)
            out = subprocess.run([STRATA, "backup", "restore", backup_dir, "--data-dir",
                                  os.path.join(restored, "d")],
                                 capture_output=True, text=True, timeout=60)
            self.assertNotEqual(out.returncode, 0, "restoring over a non-empty dir must fail")
            self.assertIn("data-dir", out.stderr)
            server = Server(STRATA, restored)
            try:
                got = set()
                for member in range(4000, 4025):
                    status, page = server.json("GET", "/v1/members/%d/viewing?limit=1000" % member)
                    self.assertEqual(status, 200, page)
                    got.update((r["member"], r["started_at"]) for r in page["records"])
                self.assertEqual(before_events - got, set())
                for key, body in before_objects.items():
                    status, data = server.request("GET", "/v1/buckets/media/objects/" + key)
                    self.assertEqual((status, hashlib.sha256(data).hexdigest()),
                                     (200, hashlib.sha256(body).hexdigest()), key)
                self.assertEqual(server.request("GET", "/v1/buckets/media/objects/k/0")[0], 404)
                bad = []
                for asset_id, payload in before_assets.items():
                    status, got = server.json("GET", "/v1/assets/doc/" + asset_id)
                    if status != 200 or got["payload"] != payload:
                        bad.append((asset_id, status))
                self.assertEqual(bad[:5], [], "%d of %d assets" % (len(bad), len(before_assets)))
                status, found = server.json("GET", "/v1/assets/doc?where=%2Fw%3D3&limit=1000")
                self.assertEqual(status, 200, found)
                self.assertEqual(sorted(a["id"] for a in found["assets"]),
                                 sorted(i for i, p in before_assets.items() if p["w"] == 3))
                # Whatever of the concurrent writes made it in is whole: every listed object
                # reads back completely.
                status, listed = server.json("GET", "/v1/buckets/media/objects?prefix=during/")
                self.assertEqual(status, 200)
                for o in listed["objects"]:
                    status, data = server.request("GET", "/v1/buckets/media/objects/" + o["key"])
                    self.assertEqual((status, data), (200, b"x" * 20000), o["key"])
                # Its audit log names the restore.
                status, audit = server.json("GET", "/v1/admin/audit")
                self.assertEqual(status, 200, audit)
                self.assertIn(("offline-cli", "backup.restore", backup_dir),
                              [(r["key"], r["action"], r["target"]) for r in audit["records"]])
                # The restored store accepts writes.
                self.assertEqual(server.json("POST", "/v1/viewing/events",
                                             [event(4200, T0, "after")])[0], 200)
            finally:
                server.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

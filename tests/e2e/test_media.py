#!/usr/bin/env python3
"""End-to-end tests of the media object API against the real `strata` binary.

Usage: test_media.py PATH_TO_STRATA

Starts `strata serve` on a free loopback port with a throwaway data directory and small blob
parts (1 MiB), then exercises buckets, streamed object uploads (chunked and with a
Content-Length), checksums against Python's hashlib, range reads, soft delete and restore,
listing with paging and prefixes, metadata search and bad input; finally kills the server
with SIGKILL in the middle of an upload and checks after a restart that no partial object is
visible. MediaDiskFullTest fills a tmpfs with uploads: failed ones leave no bytes, uploads
work again once it grows, and every acknowledged object reads back after a kill -9. Only the
Python standard library is used.
"""
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import strata_e2e

STRATA = None
MIB = 1 << 20


class Server(strata_e2e.ServerProcess):
    def __init__(self, data_dir, extra=()):
        super().__init__(STRATA, data_dir, ["--blob-part-bytes", str(MIB),
                                            "--max-object-bytes", str(16 * MIB), *extra])

    def request(self, method, path, body=None, headers=None, chunked=False):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {},
                         encode_chunked=chunked)
            resp = conn.getresponse()
            return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), resp.read()
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None, chunked=False):
        status, hdrs, data = self.request(method, path, body, headers, chunked)
        return status, (json.loads(data) if data[:1] == b"{" else data)


def pieces(data, size):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def obj(bucket, key):
    return "/v1/buckets/%s/objects/%s" % (bucket, key)


class MediaApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="strata_e2e_media_")
        cls.server = Server(cls.dir)
        status, body = cls.server.json("PUT", "/v1/buckets/media",
                                       json.dumps({"ttl": "30d", "grace": "7d",
                                                   "storage_class": "hot"}))
        assert status == 200, body

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def put(self, key, data, headers=None, chunked=False, bucket="media"):
        body = pieces(data, 64 * 1024) if chunked else data
        return self.server.json("PUT", obj(bucket, key), body, headers, chunked)

    def test_bucket_policy_round_trips_and_bad_durations_name_the_field(self):
        status, b = self.server.json("PUT", "/v1/buckets/archive-1",
                                     json.dumps({"ttl": "180d", "grace": "36h",
                                                 "storage_class": "cold"}))
        self.assertEqual(status, 200, b)
        status, b = self.server.json("GET", "/v1/buckets/archive-1")
        self.assertEqual(status, 200)
        self.assertEqual((b["ttl"], b["grace"], b["storage_class"]), ("180d", "36h", "cold"))
        self.assertEqual(b["ttl_ms"], 180 * 86400000)
        for body, field in [({"ttl": "30x"}, "ttl"), ({"grace": "-1d"}, "grace"),
                            ({"ttl": 30}, "ttl"), ({"storage_class": "Hot!"}, "storage_class"),
                            ({"colour": "red"}, "colour")]:
            status, e = self.server.json("PUT", "/v1/buckets/archive-2", json.dumps(body))
            self.assertEqual(status, 400, body)
            self.assertTrue(e["error"]["message"].startswith(field + ":"), e)
        status, e = self.server.json("PUT", "/v1/buckets/Bad..Name", "{}")
        self.assertEqual(status, 400)
        self.assertTrue(e["error"]["message"].startswith("bucket:"), e)
        status, e = self.server.json("GET", "/v1/buckets/no-such-bucket")
        self.assertEqual(status, 404)

    def test_large_object_streams_in_parts_with_checksums_and_ranges(self):
        data = random.Random(5).randbytes(5 * MIB + 123)
        for chunked, key in [(True, "films/big%20one.mxf"), (False, "films/big-two.mxf")]:
            status, meta = self.put(key, data, {"Content-Type": "application/mxf",
                                                "x-strata-meta-title": "Big One"}, chunked)
            self.assertEqual(status, 200, meta)
            self.assertEqual(meta["size"], len(data))
            self.assertEqual(meta["parts"], 6)  # 1 MiB parts
            self.assertEqual(meta["sha1"], hashlib.sha1(data).hexdigest())
            self.assertEqual(meta["md5"], hashlib.md5(data).hexdigest())
            self.assertRegex(meta["xxh3"], "^[0-9a-f]{16}$")
            self.assertEqual(meta["content_type"], "application/mxf")
            self.assertEqual(meta["meta"], {"title": "Big One"})
        self.assertEqual(meta["key"], "films/big-two.mxf")

        key = "films/big%20one.mxf"
        status, hdrs, body = self.server.request("GET", obj("media", key))
        self.assertEqual(status, 200)
        self.assertEqual(body, data)
        self.assertEqual(hdrs["x-strata-sha1"], hashlib.sha1(data).hexdigest())
        self.assertEqual(hdrs["content-type"], "application/mxf")
        self.assertEqual(hdrs["x-strata-meta-title"], "Big One")
        for rng, first, last in [("bytes=0-99", 0, 99),
                                 ("bytes=1048570-1048590", 1048570, 1048590),  # part boundary
                                 ("bytes=%d-" % (len(data) - 7), len(data) - 7, len(data) - 1),
                                 ("bytes=-10", len(data) - 10, len(data) - 1),
                                 ("bytes=100-3145827", 100, 3145827)]:  # streams out in pieces
            status, hdrs, body = self.server.request("GET", obj("media", key),
                                                     headers={"Range": rng})
            self.assertEqual(status, 206, rng)
            self.assertEqual(body, data[first:last + 1], rng)
            self.assertEqual(hdrs["content-range"], "bytes %d-%d/%d" % (first, last, len(data)))
        status, hdrs, body = self.server.request("GET", obj("media", key),
                                                 headers={"Range": "bytes=%d-" % len(data)})
        self.assertEqual(status, 416)
        self.assertEqual(hdrs["content-range"], "bytes */%d" % len(data))
        for bad in ["bytes=5-1", "bytes=a-", "bytes=0-1,4-5", "items=0-1"]:
            status, _, body = self.server.request("GET", obj("media", key),
                                                  headers={"Range": bad})
            self.assertEqual(status, 400, bad)
            self.assertIn(b'"message":"range:', body)
        status, hdrs, body = self.server.request("HEAD", obj("media", key))
        self.assertEqual(status, 200)
        self.assertEqual(int(hdrs["content-length"]), len(data))
        self.assertEqual(hdrs["x-strata-md5"], hashlib.md5(data).hexdigest())
        self.assertEqual(body, b"")

    def test_soft_delete_ends_access_and_restore_brings_it_back(self):
        self.assertEqual(self.put("del/a", b"precious")[0], 200)
        status, d = self.server.json("DELETE", obj("media", "del/a"))
        self.assertEqual(status, 200, d)
        self.assertEqual(d["restorable_until"] - d["deleted_at"], 7 * 86400000)
        self.assertEqual(self.server.request("GET", obj("media", "del/a"))[0], 404)
        self.assertEqual(self.server.request("HEAD", obj("media", "del/a"))[0], 404)
        self.assertEqual(self.server.json("DELETE", obj("media", "del/a"))[0], 404)
        status, lst = self.server.json("GET", "/v1/buckets/media/objects?prefix=del/")
        self.assertEqual(lst["objects"], [])
        status, lst = self.server.json("GET",
                                       "/v1/buckets/media/objects?prefix=del/&deleted=true")
        self.assertEqual([o["key"] for o in lst["objects"]], ["del/a"])
        self.assertEqual(lst["objects"][0]["restorable_until"], d["restorable_until"])
        self.assertEqual(self.server.json("GET", "/v1/buckets/media/objects?deleted=yes")[0], 400)
        status, r = self.server.json("POST", obj("media", "del/a") + ":restore")
        self.assertEqual(status, 200, r)
        self.assertIsNone(r["deleted_at"])
        status, _, body = self.server.request("GET", obj("media", "del/a"))
        self.assertEqual((status, body), (200, b"precious"))
        status, e = self.server.json("POST", obj("media", "del/a") + ":restore")
        self.assertEqual(status, 409, e)
        self.assertEqual(self.server.json("POST", obj("media", "del/none") + ":restore")[0], 404)

    def test_list_pages_by_prefix(self):
        keys = ["list/%02d" % i for i in range(12)] + ["listing", "other/x"]
        for k in keys:
            self.assertEqual(self.put(k, k.encode())[0], 200)
        seen, after, pages = [], "", 0
        while True:
            q = "prefix=list/&limit=5" + ("&after=" + after if after else "")
            status, page = self.server.json("GET", "/v1/buckets/media/objects?" + q)
            self.assertEqual(status, 200, page)
            self.assertLessEqual(len(page["objects"]), 5)
            seen += [o["key"] for o in page["objects"]]
            pages += 1
            after = page["next_after"]
            if after is None:
                break
        self.assertEqual(seen, keys[:12])
        self.assertEqual(pages, 3)
        status, page = self.server.json("GET", "/v1/buckets/media/objects?prefix=list&limit=100")
        self.assertEqual([o["key"] for o in page["objects"]], keys[:13])
        self.assertEqual(page["objects"][0]["size"], 7)
        self.assertEqual(self.server.json("GET", "/v1/buckets/media/objects?limit=0")[0], 400)
        self.assertEqual(self.server.json("GET", "/v1/buckets/nobucket/objects")[0], 404)

    def test_search_by_metadata(self):
        for i in range(6):
            h = {"x-strata-meta-show": "stranger" if i % 2 else "crown",
                 "x-strata-meta-episode": str(i)}
            self.assertEqual(self.put("search/%d" % i, b"x", h)[0], 200)
        status, page = self.server.json("GET", "/v1/buckets/media/objects?meta.show=crown")
        self.assertEqual(status, 200, page)
        self.assertEqual([o["key"] for o in page["objects"]], ["search/0", "search/2", "search/4"])
        self.server.json("DELETE", obj("media", "search/2"))
        status, page = self.server.json("GET",
                                        "/v1/buckets/media/objects?meta.show=crown&limit=1")
        self.assertEqual([o["key"] for o in page["objects"]], ["search/0"])
        status, page = self.server.json(
            "GET", "/v1/buckets/media/objects?meta.show=crown&after=" + page["next_after"])
        self.assertEqual([o["key"] for o in page["objects"]], ["search/4"])
        # Rewriting an object moves it in the index.
        self.put("search/4", b"y", {"x-strata-meta-show": "stranger"})
        status, page = self.server.json("GET", "/v1/buckets/media/objects?meta.show=crown")
        self.assertEqual([o["key"] for o in page["objects"]], ["search/0"])
        status, page = self.server.json("GET", "/v1/buckets/media/objects?meta.show=stranger")
        self.assertEqual([o["key"] for o in page["objects"]],
                         ["search/1", "search/3", "search/4", "search/5"])

    def test_bad_input(self):
        def expect(status_want, method, path, body=None, headers=None, field=None):
            status, e = self.server.json(method, path, body, headers)
            self.assertEqual(status, status_want, (path, e))
            if field:
                self.assertTrue(e["error"]["message"].startswith(field + ":"), e)
        expect(400, "PUT", obj("media", "a/../b"), b"x", field="key")
        expect(400, "PUT", obj("media", "a//b"), b"x", field="key")
        expect(400, "PUT", obj("media", "x" * 201), b"x", field="key")
        expect(400, "PUT", obj("media", "ok"), b"x", {"x-strata-meta-Bad!": "v"}, field="meta")
        expect(400, "PUT", obj("media", "ok"), b"x", {"x-strata-ttl": "soon"},
               field="x-strata-ttl")
        expect(400, "PUT", obj("media", "bad%zz"), b"x", field="key")
        expect(404, "PUT", obj("missing-bucket", "k"), b"x", field="bucket")
        expect(404, "GET", obj("media", "never/written"), field="key")
        expect(405, "PATCH", obj("media", "k"))
        # Over --max-object-bytes (16 MiB): refused from the Content-Length, before the body.
        status, e = self.put("too/big", b"\0" * (16 * MIB + 1))
        self.assertEqual(status, 413, e)
        self.assertEqual(e["error"]["code"], "payload_too_large")
        # ... and cut off mid-stream when chunked (no length to check up front).
        status, e = self.put("too/big", b"\0" * (16 * MIB + 1), chunked=True)
        self.assertEqual(status, 413, e)
        self.assertEqual(self.server.request("HEAD", obj("media", "too/big"))[0], 404)
        # The server is still fine.
        self.assertEqual(self.put("after/413", b"ok")[0], 200)

    def test_object_ttl_override_is_reported(self):
        status, m = self.put("ttl/short", b"x", {"x-strata-ttl": "15d"})
        self.assertEqual(status, 200, m)
        self.assertEqual(m["ttl_ms"], 15 * 86400000)
        self.assertEqual(m["expires_at"], m["created_at"] + 15 * 86400000)
        status, m = self.put("ttl/forever", b"x", {"x-strata-ttl": "0"})
        self.assertIsNone(m["expires_at"])

    def test_cli_commands(self):
        url = "http://127.0.0.1:%d" % self.server.port

        def cli(*args, ok=True):
            p = subprocess.run([STRATA, *args, "--server", url], capture_output=True, timeout=60)
            self.assertEqual(p.returncode == 0, ok, (args, p.stdout[:300], p.stderr[:300]))
            return p.stdout
        out = json.loads(cli("bucket", "put", "cli-bucket", "--ttl", "60d", "--grace", "1d"))
        self.assertEqual((out["ttl"], out["grace"]), ("60d", "1d"))
        self.assertEqual(json.loads(cli("bucket", "get", "cli-bucket"))["ttl_ms"], 60 * 86400000)
        # A value reaches the server as the string typed, quotes and all: the server names the
        # bad field, and a quote cannot end the string early and smuggle in another field.
        for bad in ['Hot"1', 'cold","grace":"1s', "back\\slash", "tab\there"]:
            err = json.loads(cli("bucket", "put", "cli-bucket", "--storage-class", bad, ok=False))
            self.assertTrue(err["error"]["message"].startswith("storage_class:"), (bad, err))
        self.assertEqual(json.loads(cli("bucket", "get", "cli-bucket"))["grace"], "1d")
        data = random.Random(3).randbytes(2 * MIB + 5)
        src = os.path.join(self.dir, "cli-src.bin")
        dst = os.path.join(self.dir, "cli-dst.bin")
        with open(src, "wb") as f:
            f.write(data)
        out = json.loads(cli("object", "put", "cli-bucket", "dir/file name.bin", src,
                             "--meta", "show=crown", "--content-type", "video/mp4"))
        self.assertEqual(out["sha1"], hashlib.sha1(data).hexdigest())
        self.assertEqual(out["parts"], 3)
        cli("object", "get", "cli-bucket", "dir/file name.bin", "-o", dst)
        with open(dst, "rb") as f:
            self.assertEqual(f.read(), data)
        part = cli("object", "get", "cli-bucket", "dir/file name.bin", "--range", "bytes=10-19")
        self.assertEqual(part, data[10:20])
        head = cli("object", "head", "cli-bucket", "dir/file name.bin").decode()
        self.assertIn("content-length: %d" % len(data), head)
        self.assertIn("x-strata-meta-show: crown", head)
        listed = json.loads(cli("object", "list", "cli-bucket", "--meta", "show=crown"))
        self.assertEqual([o["key"] for o in listed["objects"]], ["dir/file name.bin"])
        cli("object", "delete", "cli-bucket", "dir/file name.bin")
        cli("object", "get", "cli-bucket", "dir/file name.bin", ok=False)
        cli("object", "restore", "cli-bucket", "dir/file name.bin")
        listed = json.loads(cli("object", "list", "cli-bucket", "--prefix", "dir/"))
        self.assertEqual(len(listed["objects"]), 1)
        cli("object", "put", "no-such-bucket", "k", src, ok=False)


class MediaCrashTest(unittest.TestCase):
    def test_kill_during_upload_leaves_no_partial_object(self):
        d = tempfile.mkdtemp(prefix="strata_e2e_media_crash_")
        try:
            server = Server(d)
            server.json("PUT", "/v1/buckets/crash", "{}")
            data = random.Random(9).randbytes(3 * MIB)
            self.assertEqual(server.json("PUT", obj("crash", "movie"), data)[0], 200)
            # Start a second version, send half of it, then kill -9 the server.
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.putrequest("PUT", obj("crash", "movie"))
            conn.putheader("Content-Length", str(4 * MIB))
            conn.endheaders()
            conn.send(b"\1" * (2 * MIB))
            time.sleep(0.3)  # let the server write some parts (the outcome does not depend on it)
            server.stop(signal.SIGKILL)
            conn.close()
            server = Server(d)
            status, hdrs, body = server.request("GET", obj("crash", "movie"))
            self.assertEqual(status, 200)
            self.assertEqual(body, data)  # the old version, whole
            if strata_e2e.DEPLOYMENT == "embedded":
                # The local store's leftovers are cleared at start (S3's are aborted uploads,
                # covered by the S3 backend's own tests).
                tmp = os.path.join(d, "d", "blobs", "~tmp")
                self.assertEqual(os.listdir(tmp), [])
            server.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)


@strata_e2e.embedded_only("fills a tmpfs under the data directory; the distributed stores' "
                          "disks are the cluster's")
class MediaDiskFullTest(unittest.TestCase):
    """Object uploads (bytes in files, rows in RocksDB) fill a small tmpfs: uploads fail with
    503, work again in the same process once the tmpfs grows, and every acknowledged object
    reads back byte for byte after a kill -9."""

    def test_uploads_resume_once_the_disk_has_room_and_nothing_is_lost(self):
        with strata_e2e.small_disk(self, "8m") as (mnt, grow):
            server = Server(mnt)
            status, body = server.json("PUT", "/v1/buckets/full", "{}")
            self.assertEqual(status, 200, body)
            rng = random.Random(7)
            acked, n = {}, 0

            def put():
                nonlocal n
                n += 1
                key = "o%04d" % n
                data = rng.randbytes(200 * 1024)
                status, body = server.json("PUT", obj("full", key), data)
                if status in (200, 201):
                    acked[key] = hashlib.sha256(data).hexdigest()
                    return True
                self.assertEqual(status, 503, body)
                return False

            strata_e2e.fill_until_refused(self, put, 200)
            self.assertTrue(acked)

            grow("256m")
            strata_e2e.retry_until_accepted(self, put, "object uploads")
            for _ in range(5):
                self.assertTrue(put())

            # The uploads that failed left no bytes behind: one file per acknowledged object.
            files = [f for _, _, names in os.walk(os.path.join(mnt, "d", "blobs"))
                     for f in names]
            self.assertEqual(len(files), len(acked), sorted(files))
            server.stop(signal.SIGKILL)
            server = Server(mnt)
            for key, digest in acked.items():
                status, _, data = server.request("GET", obj("full", key))
                self.assertEqual(status, 200, key)
                self.assertEqual(hashlib.sha256(data).hexdigest(), digest, key)
            server.stop()


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

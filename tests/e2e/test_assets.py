#!/usr/bin/env python3
"""End-to-end tests of the asset API against the real `strata` binary.

Usage: test_assets.py PATH_TO_STRATA

Starts `strata serve` on a free loopback port with a throwaway data directory, then goes
through asset types (versions, bad schemas), asset CRUD with ETag/If-Match (412 on a stale
version), merge patches, kept versions, batched creates, paging and index search with
cursors (checked against a brute-force oracle), the change feed, bad input (each a 4xx that
names the field), the `strata asset` CLI, and finally kill -9: every acknowledged write is
there after a restart. AssetsDiskFullTest fills a tmpfs with documents (blob files) and
checks that creates resume in the same process once it grows, losing nothing. Only the Python standard library is used.
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
import time
import unittest
import urllib.parse

import strata_e2e

STRATA = None

VIDEO = {
    "schema": {
        "type": "object",
        "required": ["show_id", "format"],
        "properties": {
            "show_id": {"type": "integer", "minimum": 1},
            "format": {"type": "string", "enum": ["hd", "4k", "sd"]},
            "duration_s": {"type": "number", "minimum": 0},
            "title": {"type": "string", "maxLength": 200},
        },
    },
    "indexed": ["/show_id", "/format", "/duration_s"],
    "bucket": "day",
    "keep_versions": 2,
}


class Server(strata_e2e.ServerProcess):
    def __init__(self, data_dir, extra=()):
        super().__init__(STRATA, data_dir, ["--asset-max-payload-bytes", "4096",
                                            "--asset-max-depth", "8", *extra])

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            hdrs = dict((k.lower(), v) for k, v in resp.getheaders())
            return resp.status, hdrs, (json.loads(data) if data[:1] in (b"{", b"[") else data)
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None):
        status, _, data = self.request(method, path, body, headers)
        return status, data


def query(**params):
    pairs = []
    for k, v in params.items():
        for item in (v if isinstance(v, list) else [v]):
            pairs.append((k, str(item)))
    return "?" + urllib.parse.urlencode(pairs)


class AssetApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="strata_e2e_assets_")
        cls.server = Server(cls.dir)
        status, body = cls.server.json("PUT", "/v1/asset-types/video", VIDEO)
        assert status == 200, body

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def create(self, payload, type_="video"):
        status, body = self.server.json("POST", "/v1/assets/" + type_, payload)
        self.assertEqual(status, 201, body)
        return body

    def error(self, status, body, code, message_start):
        self.assertEqual(status, code, body)
        self.assertTrue(body["error"]["message"].startswith(message_start), body)

    def test_types_are_versioned_and_bad_schemas_named(self):
        t = dict(VIDEO, schema=dict(VIDEO["schema"], description="v2"))
        self.server.json("PUT", "/v1/asset-types/versioned", VIDEO)
        status, body = self.server.json("PUT", "/v1/asset-types/versioned", t)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["version"], 2)
        self.assertEqual([h["version"] for h in body["history"]], [2, 1])
        status, body = self.server.json("GET", "/v1/asset-types/versioned")
        self.assertEqual(body["indexed"], VIDEO["indexed"])
        self.error(*self.server.json("PUT", "/v1/asset-types/x",
                                     {"schema": {"type": "object", "properties": {
                                         "a": {"type": "integer", "maximum": "9"}}}}),
                   400, "schema /properties/a/maximum: must be a number")
        self.error(*self.server.json("PUT", "/v1/asset-types/x", {"schema": {}, "indexed": ["x"]}),
                   400, "indexed/0: JSON pointer \"x\" must start with '/'")
        self.error(*self.server.json("PUT", "/v1/asset-types/x", {"schema": {}, "bucket": "week"}),
                   400, "bucket: must be \"day\" or \"month\"")
        self.error(*self.server.json("PUT", "/v1/asset-types/x", b"{"), 400, "body: invalid JSON")
        self.error(*self.server.json("GET", "/v1/asset-types/nope"), 404, "type: no asset type")

    def test_crud_with_etag_if_match_versions_and_merge_patch(self):
        a = self.create({"show_id": 1, "format": "hd", "duration_s": 60, "title": "Pilot"})
        self.assertEqual(a["version"], 1)
        self.assertEqual(a["schema_version"], 1)
        self.assertEqual(a["created_at"], a["updated_at"])
        path = "/v1/assets/video/" + a["id"]
        status, hdrs, got = self.server.request("GET", path)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["etag"], '"1"')
        self.assertEqual(got["payload"], a["payload"])
        status, hdrs, put = self.server.request(
            "PUT", path, {"show_id": 1, "format": "4k", "duration_s": 61}, {"If-Match": '"1"'})
        self.assertEqual(status, 200, put)
        self.assertEqual(hdrs["etag"], '"2"')
        # A stale If-Match: 412 and nothing changed.
        status, body = self.server.json("PATCH", path, {"format": "sd"}, {"If-Match": '"1"'})
        self.error(status, body, 412, "If-Match: the asset is at version 2, not 1")
        self.assertEqual(self.server.json("GET", path)[1]["payload"]["format"], "4k")
        status, body = self.server.json("PATCH", path, {"title": "New", "duration_s": None},
                                        {"If-Match": '"2"'})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["payload"], {"show_id": 1, "format": "4k", "title": "New"})
        self.server.json("PATCH", path, {"title": "Newer"})
        status, body = self.server.json("GET", path + "/versions")
        self.assertEqual([v["version"] for v in body["versions"]], [4, 3, 2])  # keep_versions 2
        self.error(*self.server.json("PATCH", path, {"format": "8k"}), 400,
                   "payload /format: enum: must be one of the listed values")
        self.error(*self.server.json("DELETE", path, None, {"If-Match": '"3"'}), 412, "If-Match")
        self.error(*self.server.json("DELETE", path, None, {"If-Match": "three"}), 400,
                   "If-Match: must be")
        self.assertEqual(self.server.json("DELETE", path, None, {"If-Match": '"4"'})[0], 200)
        self.assertEqual(self.server.json("GET", path)[0], 404)
        self.assertEqual(self.server.json("GET", path + "/versions")[0], 404)

    def test_bad_payloads_and_queries_name_the_field(self):
        self.error(*self.server.json("POST", "/v1/assets/video", {"show_id": 0, "format": "hd"}),
                   400, "payload /show_id: minimum: must be >= 1")
        self.error(*self.server.json("POST", "/v1/assets/video", {"format": "hd"}),
                   400, "payload /: required: missing property \"show_id\"")
        self.error(*self.server.json("POST", "/v1/assets/video", b"[1]"), 400,
                   "payload: must be a JSON object")
        deep = {"show_id": 1, "format": "hd", "x": [[[[[[[[[[1]]]]]]]]]]}
        self.error(*self.server.json("POST", "/v1/assets/video", deep), 400,
                   "payload /x/0/0/0/0/0/0/0: nested deeper than 8 levels")
        big = {"show_id": 1, "format": "hd", "title": "x" * 5000}
        self.error(*self.server.json("POST", "/v1/assets/video", big), 413, "payload: larger than")
        self.error(*self.server.json("GET", "/v1/assets/video/not-a-uuid"), 400, "id: ")
        self.error(*self.server.json("GET", "/v1/assets/video" + query(where="/title=x")), 400,
                   "where: /title is not indexed in type video")
        self.error(*self.server.json("GET", "/v1/assets/video" + query(where="/show_id=abc")),
                   400, "where \"/show_id=abc\": value must be a number")
        self.error(*self.server.json("GET", "/v1/assets/video" + query(where="/format")), 400,
                   "where \"/format\": no operator")
        self.error(*self.server.json("GET", "/v1/assets/video" + query(cursor="xyz")), 400,
                   "cursor: malformed")
        self.error(*self.server.json("GET", "/v1/assets/video" + query(limit=0)), 400,
                   "limit: must be 1..1000")
        self.error(*self.server.json("GET", "/v1/assets/video" + query(since="yesterday")), 400,
                   "since: must be milliseconds")
        self.error(*self.server.json("GET", "/v1/assets/video" + query(colour="red")), 400,
                   "query: unknown parameter \"colour\"")
        self.error(*self.server.json("GET", "/v1/assets/video" + query(fields="payload")), 400,
                   "fields: only \"id\" is supported")
        self.error(*self.server.json("POST", "/v1/assets/nope", {}), 404, "type: no asset type")

    def test_batch_search_and_paging_against_an_oracle(self):
        self.server.json("PUT", "/v1/asset-types/clip", dict(VIDEO, bucket="month"))
        rng = random.Random(4)
        payloads = [{"show_id": rng.randint(1, 5), "format": rng.choice(["hd", "4k", "sd"]),
                     "duration_s": rng.randint(0, 1200)} for _ in range(500)]
        ids = []
        for start in range(0, len(payloads), 200):
            status, body = self.server.json("POST", "/v1/assets/clip:batch",
                                            payloads[start:start + 200])
            self.assertEqual(status, 200, body)
            self.assertEqual(body["rejected"], [])
            ids.extend(body["ids"])
        by_id = dict(zip(ids, payloads))
        status, body = self.server.json("POST", "/v1/assets/clip:batch",
                                        [{"show_id": 1, "format": "hd"}, {"show_id": -1}])
        self.assertEqual(body["created"], 1)
        self.assertIsNone(body["ids"][1])
        self.assertEqual(body["rejected"][0]["index"], 1)
        by_id[body["ids"][0]] = {"show_id": 1, "format": "hd"}

        def walk(ids_only=False, **params):
            got, cursor = [], None
            while True:
                q = dict(params, limit=37)
                if ids_only:
                    q["fields"] = "id"
                if cursor:
                    q["cursor"] = cursor
                status, page = self.server.json("GET", "/v1/assets/clip" + query(**q))
                self.assertEqual(status, 200, page)
                for a in page["assets"]:
                    self.assertEqual(list(a) == ["id"], ids_only, a)
                got.extend(a["id"] for a in page["assets"])
                cursor = page["next_cursor"]
                if not cursor:
                    return got

        everything = walk()
        self.assertEqual(everything, sorted(by_id, reverse=True))  # newest first, each once
        self.assertEqual(walk(ids_only=True), everything)  # fields=id: the same ids
        for where, pred in [
            (["/format=4k"], lambda p: p["format"] == "4k"),
            (["/duration_s>=600", "/show_id=3"],
             lambda p: p.get("duration_s", -1) >= 600 and p["show_id"] == 3),
            (["/duration_s<100"], lambda p: p.get("duration_s", 1e9) < 100),
            (["/show_id>4"], lambda p: p["show_id"] > 4),
        ]:
            got = walk(where=where)
            want = {i for i, p in by_id.items() if pred(p)}
            self.assertEqual(len(got), len(set(got)), where)
            self.assertEqual(set(got), want, where)
            self.assertEqual(walk(ids_only=True, where=where), got, where)

    def test_change_feed(self):
        self.server.json("PUT", "/v1/asset-types/feed", VIDEO)
        a = self.create({"show_id": 1, "format": "hd"}, "feed")
        self.server.json("PATCH", "/v1/assets/feed/" + a["id"], {"duration_s": 5})
        self.server.json("DELETE", "/v1/assets/feed/" + a["id"])
        status, body = self.server.json("GET", "/v1/asset-types/feed/changes")
        self.assertEqual(status, 200, body)
        self.assertEqual([(c["offset"], c["op"], c["version"]) for c in body["changes"]],
                         [(0, "create", 1), (1, "update", 2), (2, "delete", 3)])
        self.assertTrue(all(c["id"] == a["id"] and c["type"] == "feed" for c in body["changes"]))
        self.assertEqual(body["next_after"], 2)
        status, body = self.server.json("GET", "/v1/asset-types/feed/changes" +
                                        query(after=0, limit=1))
        self.assertEqual([c["offset"] for c in body["changes"]], [1])
        self.error(*self.server.json("GET", "/v1/asset-types/feed/changes" + query(after=-1)),
                   400, "after: must be an offset")

    def test_cli(self):
        url = "http://127.0.0.1:%d" % self.server.port
        schema = os.path.join(self.dir, "schema.json")
        with open(schema, "w") as f:
            json.dump(VIDEO["schema"], f)

        def cli(*args, stdin=None):
            out = subprocess.run([STRATA, "asset", *args, "--server", url], input=stdin,
                                 capture_output=True, text=True, timeout=60)
            return out.returncode, out.stdout

        rc, out = cli("type", "put", "cli", "--schema", schema, "--indexed", "/format",
                      "--bucket", "month")
        self.assertEqual(rc, 0, out)
        self.assertEqual(json.loads(out)["bucket"], "month")
        rc, out = cli("create", "cli", stdin='{"show_id": 2, "format": "sd"}')
        self.assertEqual(rc, 0, out)
        asset = json.loads(out)
        rc, out = cli("get", "cli", asset["id"])
        self.assertEqual(json.loads(out)["payload"]["format"], "sd")
        rc, out = cli("update", "cli", asset["id"], "--patch", "--data", '{"format":"hd"}',
                      "--if-match", "1")
        self.assertEqual(rc, 0, out)
        rc, out = cli("update", "cli", asset["id"], "--patch", "--data", '{"format":"4k"}',
                      "--if-match", "1")
        self.assertEqual(rc, 1, out)  # 412
        rc, out = cli("search", "cli", "--where", "/format=hd")
        self.assertEqual([a["id"] for a in json.loads(out)["assets"]], [asset["id"]])
        rc, out = cli("list", "cli", "--limit", "5")
        self.assertEqual(len(json.loads(out)["assets"]), 1)
        rc, out = cli("changes", "cli")
        self.assertEqual(len(json.loads(out)["changes"]), 2)

    def wait_job(self, server, job_id, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, job = server.json("GET", "/v1/reprocess/jobs/%d" % job_id)
            self.assertEqual(status, 200, job)
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(0.05)
        self.fail("job %d did not finish" % job_id)

    def test_reprocess_job_with_dead_letters_and_bad_input(self):
        self.server.json("PUT", "/v1/asset-types/rp", VIDEO)
        status, body = self.server.json("POST", "/v1/assets/rp:batch",
                                        [{"show_id": i + 1, "format": ["hd", "4k"][i % 2]}
                                         for i in range(200)])
        ids = body["ids"]
        # A dry run shows before and after and writes nothing.
        status, dry = self.server.json("POST", "/v1/reprocess/jobs", {
            "type": "rp", "select": {"where": ["/format=4k"]}, "dry_run": {"sample": 3},
            "processor": {"kind": "set", "path": "/title", "value": "remastered"}})
        self.assertEqual(status, 200, dry)
        self.assertEqual(len(dry["sample"]), 3)
        self.assertEqual(dry["sample"][0]["outcome"], "changed")
        self.assertEqual(dry["sample"][0]["after"], dict(dry["sample"][0]["before"],
                                                         title="remastered"))
        self.assertEqual(self.server.json("GET", "/v1/assets/rp/" + dry["sample"][0]["id"])[1]
                         ["version"], 1)
        status, job = self.server.json("POST", "/v1/reprocess/jobs", {
            "type": "rp", "select": {"where": ["/format=4k"]},
            "processor": {"kind": "set", "path": "/title", "value": "remastered"},
            "concurrency": 2})
        self.assertEqual(status, 201, job)
        job = self.wait_job(self.server, job["id"])
        self.assertEqual(job["state"], "succeeded", job)
        self.assertEqual((job["counts"]["selected"], job["counts"]["changed"]), (100, 100))
        for i, asset_id in enumerate(ids):
            status, a = self.server.json("GET", "/v1/assets/rp/" + asset_id)
            self.assertEqual(a.get("payload", {}).get("title"),
                             "remastered" if i % 2 else None, i)
        # A processor whose result breaks the schema: every asset dead-lettered, none changed.
        status, job = self.server.json("POST", "/v1/reprocess/jobs", {
            "type": "rp", "select": {"where": ["/show_id<=10"]},
            "processor": {"kind": "set", "path": "/show_id", "value": 0}})
        job = self.wait_job(self.server, job["id"])
        self.assertEqual(job["counts"]["dead_lettered"], 10, job)
        status, dead = self.server.json("GET", "/v1/reprocess/jobs/%d/dead-letters" % job["id"])
        self.assertEqual(len(dead["dead_letters"]), 10)
        self.assertIn("payload /show_id: minimum", dead["dead_letters"][0]["reason"])
        self.error(*self.server.json("POST", "/v1/reprocess/jobs/%d:pause" % job["id"]), 409,
                   "state: a succeeded job cannot become paused")
        self.error(*self.server.json("POST", "/v1/reprocess/jobs", {"type": "rp"}), 400,
                   "processor: required")
        self.error(*self.server.json("POST", "/v1/reprocess/jobs", {
            "type": "rp", "processor": {"kind": "set", "path": "/x"}}), 400,
                   "processor/value: required")
        self.error(*self.server.json("POST", "/v1/reprocess/jobs", {
            "type": "rp", "select": {"where": ["/title=x"]},
            "processor": {"kind": "remove", "path": "/x"}}), 400, "where: /title is not indexed")
        self.error(*self.server.json("GET", "/v1/reprocess/jobs/999999"), 404, "job: no job")
        self.error(*self.server.json("GET", "/v1/reprocess/jobs/x"), 400, "id: must be a job id")
        status, jobs = self.server.json("GET", "/v1/reprocess/jobs")
        self.assertGreaterEqual(len(jobs["jobs"]), 2)
        # The CLI follows a job to its end.
        out = subprocess.run(
            [STRATA, "reprocess", "start", "--wait", "--server",
             "http://127.0.0.1:%d" % self.server.port, "--data",
             json.dumps({"type": "rp", "processor": {"kind": "remove", "path": "/title"}})],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(json.loads(out.stdout)["counts"]["changed"], 100)

    def test_reprocess_job_survives_kill_9_and_touches_each_asset_once(self):
        d = tempfile.mkdtemp(prefix="strata_e2e_reprocess_crash_")
        try:
            server = Server(d)
            server.json("PUT", "/v1/asset-types/rk", VIDEO)
            status, body = server.json("POST", "/v1/assets/rk:batch",
                                       [{"show_id": i + 1, "format": "hd"} for i in range(400)])
            ids = body["ids"]
            status, job = server.json("POST", "/v1/reprocess/jobs", {
                "type": "rk", "processor": {"kind": "set", "path": "/title", "value": "v2"},
                "rate": 200, "concurrency": 2})
            self.assertEqual(status, 201, job)
            deadline = time.time() + 60
            while time.time() < deadline:
                status, now = server.json("GET", "/v1/reprocess/jobs/%d" % job["id"])
                if now["counts"]["processed"] >= 50:
                    break
                time.sleep(0.02)
            self.assertEqual(now["state"], "running", now)
            # Production writes during the job must survive it.
            for asset_id in ids[::40]:
                self.assertEqual(server.json("PATCH", "/v1/assets/rk/" + asset_id,
                                             {"format": "4k"})[0], 200)
            server.stop(signal.SIGKILL)
            server = Server(d)
            done = self.wait_job(server, job["id"])
            self.assertEqual(done["state"], "succeeded", done)
            for i, asset_id in enumerate(ids):
                status, a = server.json("GET", "/v1/assets/rk/" + asset_id)
                self.assertEqual(a["payload"]["title"], "v2", i)
                patched = i % 40 == 0
                self.assertEqual(a["payload"]["format"], "4k" if patched else "hd", i)
                # Exactly once in effect: one job write per asset (plus the client's).
                self.assertEqual(a["version"], 3 if patched else 2, i)
            server.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_kill_9_keeps_every_acknowledged_write(self):
        d = tempfile.mkdtemp(prefix="strata_e2e_assets_crash_")
        try:
            server = Server(d)
            server.json("PUT", "/v1/asset-types/k", VIDEO)
            acked = {}
            for i in range(50):
                status, body = server.json("POST", "/v1/assets/k",
                                           {"show_id": i + 1, "format": "hd"})
                self.assertEqual(status, 201)
                acked[body["id"]] = 1
            status, body = server.json("POST", "/v1/assets/k:batch",
                                       [{"show_id": 1000 + i, "format": "sd"} for i in range(300)])
            for i in body["ids"]:
                acked[i] = 1
            for i in list(acked)[:20]:
                status, body = server.json("PATCH", "/v1/assets/k/" + i, {"format": "4k"})
                self.assertEqual(status, 200)
                acked[i] = 2
            server.stop(signal.SIGKILL)
            server = Server(d)
            for i, version in acked.items():
                status, body = server.json("GET", "/v1/assets/k/" + i)
                self.assertEqual((status, body["version"]), (200, version), i)
            status, body = server.json("GET", "/v1/assets/k" + query(where="/format=4k",
                                                                         limit=1000))
            self.assertEqual(len(body["assets"]), 20)
            status, body = server.json("GET", "/v1/asset-types/k/changes" + query(limit=1000))
            seen = {(c["id"], c["version"]) for c in body["changes"]}
            for i, version in acked.items():
                self.assertIn((i, version), seen)
            server.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)


@strata_e2e.embedded_only("fills a tmpfs under the data directory; the distributed stores' "
                          "disks are the cluster's")
class AssetsDiskFullTest(unittest.TestCase):
    """Documents of ~700 bytes (kept in RocksDB blob files) fill a small tmpfs: creates fail
    with 503, come back in the same process once the tmpfs grows, and every acknowledged
    asset is there after a kill -9."""

    def test_creates_resume_once_the_disk_has_room_and_nothing_is_lost(self):
        with strata_e2e.small_disk(self, "8m") as (mnt, grow):
            server = Server(mnt)
            status, body = server.json("PUT", "/v1/asset-types/doc",
                                       {"schema": {"type": "object"}})
            self.assertEqual(status, 200, body)
            acked, n = [], 0

            def create():
                nonlocal n
                n += 1
                batch = [{"n": n * 1000 + i, "notes": "y" * 600} for i in range(200)]
                status, body = server.json("POST", "/v1/assets/doc:batch", batch)
                if status == 200:
                    acked.extend(body["ids"])
                    return True
                self.assertEqual(status, 503, body)
                return False

            strata_e2e.fill_until_refused(self, create, 300)
            self.assertTrue(acked)
            status, body = server.json("GET", "/v1/assets/doc/" + acked[0])
            self.assertEqual(status, 200, "reads go on with a full disk")

            grow("256m")
            strata_e2e.retry_until_accepted(self, create, "asset creates")
            for _ in range(10):
                self.assertTrue(create())

            server.stop(signal.SIGKILL)
            server = Server(mnt)
            stored, cursor = set(), None
            while True:
                q = {"limit": 1000, "fields": "id"}
                if cursor:
                    q["cursor"] = cursor
                status, page = server.json("GET", "/v1/assets/doc" + query(**q))
                self.assertEqual(status, 200, page)
                stored.update(a["id"] for a in page["assets"])
                cursor = page["next_cursor"]
                if not cursor:
                    break
            self.assertEqual([i for i in acked if i not in stored], [],
                             "acknowledged assets lost around the full disk")
            status, body = server.json("GET", "/v1/assets/doc/" + acked[-1])
            self.assertEqual(status, 200, body)
            self.assertEqual(body["payload"]["notes"], "y" * 600)
            server.stop()


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""End-to-end tests of the reindex, export and webhook processors, dead-letter retry and the
dashboard's reprocessing panel, against the real `strata` binary.

Usage: test_reprocess.py PATH_TO_STRATA

Starts `strata serve` on a free loopback port with a throwaway data directory. Adding a
pointer to a type's `indexed` starts a reindex job (named in the PUT's answer); searches on
it are 409 naming the pointer until the job succeeds, then match a brute-force oracle.
Exports write NDJSON and Avro files under the data directory (the Avro file read back with
Debian's python3-avro when /usr/bin/python3 has it). A webhook served by python's
http.server on 127.0.0.1 decides each asset (200, 204, 4xx dead letter, 5xx retried); its
dead letters are retried with `strata reprocess dead-letters --retry`. The dashboard is
rendered in headless Chromium when it is installed. Standard library only.
"""
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

import strata_e2e

STRATA = None

SCHEMA = {
    "type": "object",
    "required": ["n", "format"],
    "properties": {
        "n": {"type": "integer"},
        "format": {"type": "string", "enum": ["hd", "4k"]},
        "status": {"type": "string"},
        "hooked": {"type": "boolean"},
    },
}


class Server(strata_e2e.ServerProcess):
    def __init__(self, data_dir):
        super().__init__(STRATA, data_dir)


class ReprocessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="strata_e2e_reprocess_")
        cls.server = Server(cls.dir)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def make_type(self, name, count, indexed=("/format", "/n")):
        status, body = self.server.request("PUT", "/v1/asset-types/" + name,
                                           {"schema": SCHEMA, "indexed": list(indexed)})
        self.assertEqual(status, 200, body)
        payloads = [{"n": i, "format": ["hd", "4k"][i % 2]} for i in range(count)]
        for i, p in enumerate(payloads):
            if i % 3 == 0:
                p["status"] = ["new", "old"][i % 2]
        ids = []
        for at in range(0, count, 1000):
            status, body = self.server.request("POST", "/v1/assets/%s:batch" % name,
                                               payloads[at:at + 1000])
            self.assertEqual(status, 200, body)
            ids += body["ids"]
        return ids, payloads

    def wait_job(self, job_id, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, job = self.server.request("GET", "/v1/reprocess/jobs/%d" % job_id)
            self.assertEqual(status, 200, job)
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(0.05)
        self.fail("job %d did not finish: %s" % (job_id, job))

    def search(self, type_, where):
        found, cursor = [], None
        while True:
            q = [("where", where), ("limit", "1000")] + ([("cursor", cursor)] if cursor else [])
            status, body = self.server.request(
                "GET", "/v1/assets/%s?%s" % (type_, urllib.parse.urlencode(q)))
            if status != 200:
                return status, body
            found += [a["id"] for a in body["assets"]]
            cursor = body["next_cursor"]
            if not cursor:
                return 200, found

    def test_adding_an_index_builds_it_with_a_reindex_job(self):
        ids, payloads = self.make_type("ri", 3000)
        status, t = self.server.request("PUT", "/v1/asset-types/ri", {
            "schema": SCHEMA, "indexed": ["/format", "/n", "/status"]})
        self.assertEqual(status, 200, t)
        self.assertIsInstance(t["reindex_job"], int, t)
        self.assertEqual([i["ready"] for i in t["indexes"] if i["pointer"] == "/status"], [False])
        # Before the job is done a search on the pointer is refused naming it (the job may
        # already be done on a fast machine: then it answers).
        status, body = self.search("ri", "/status=old")
        if status != 200:
            self.assertEqual(status, 409, body)
            self.assertIn("/status", body["error"]["message"])
            self.assertIn("not built yet", body["error"]["message"])
        job = self.wait_job(t["reindex_job"])
        self.assertEqual(job["state"], "succeeded", job)
        self.assertEqual(job["spec"]["processor"], {"kind": "reindex", "pointers": ["/status"]})
        self.assertEqual(job["counts"]["processed"], 3000)
        self.assertEqual(job["counts"]["changed"], 1000)  # the assets with a status
        status, found = self.search("ri", "/status=old")
        self.assertEqual(status, 200, found)
        self.assertEqual(sorted(found), sorted(ids[i] for i, p in enumerate(payloads)
                                               if p.get("status") == "old"))
        status, t = self.server.request("GET", "/v1/asset-types/ri")
        self.assertEqual([i["ready"] for i in t["indexes"] if i["pointer"] == "/status"], [True])
        self.assertNotIn("reindex_job", t)
        # A PUT that adds no index starts no job.
        status, t = self.server.request("PUT", "/v1/asset-types/ri", {
            "schema": SCHEMA, "indexed": ["/format", "/n", "/status"], "keep_versions": 3})
        self.assertEqual(t["reindex_job"], None)
        # Bad reindex specs name the field.
        status, body = self.server.request("POST", "/v1/reprocess/jobs", {
            "type": "ri", "processor": {"kind": "reindex", "pointers": ["/nope"]}})
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["message"],
                         "processor/pointers/0: /nope is not indexed in type ri")

    def test_export_ndjson_and_avro(self):
        ids, payloads = self.make_type("ex", 500)
        status, nd = self.server.request("POST", "/v1/reprocess/jobs", {
            "type": "ex", "processor": {"kind": "export", "format": "ndjson"}})
        self.assertEqual(status, 201, nd)
        status, av = self.server.request("POST", "/v1/reprocess/jobs", {
            "type": "ex", "select": {"where": ["/format=4k"]},
            "processor": {"kind": "export", "format": "avro"}})
        self.assertEqual(status, 201, av)
        self.assertEqual(self.wait_job(nd["id"])["state"], "succeeded")
        self.assertEqual(self.wait_job(av["id"])["state"], "succeeded")
        exports = os.path.join(self.dir, "d", "exports")
        with open(os.path.join(exports, "job-%d.ndjson" % nd["id"])) as f:
            lines = [json.loads(l) for l in f]
        by_id = {l["id"]: l for l in lines}
        self.assertEqual(len(lines), 500)
        self.assertEqual(set(by_id), set(ids))
        for asset_id, p in zip(ids, payloads):
            self.assertEqual(by_id[asset_id]["payload"], p)
            self.assertEqual(by_id[asset_id]["type"], "ex")
            self.assertEqual(by_id[asset_id]["version"], 1)
        avro_path = os.path.join(exports, "job-%d.avro" % av["id"])
        with open(avro_path, "rb") as f:
            self.assertEqual(f.read(4), b"Obj\x01")  # an Avro object container file
        self.assertFalse(any(n.endswith(".partial") for n in os.listdir(exports)))
        # Read back by another Avro implementation when Debian's python3-avro is there.
        reader = ("import json, sys\n"
                  "from avro.datafile import DataFileReader\n"
                  "from avro.io import DatumReader\n"
                  "r = DataFileReader(open(sys.argv[1], 'rb'), DatumReader())\n"
                  "schema = json.loads(r.meta['avro.schema'].decode())\n"
                  "print(json.dumps({'schema': schema, 'records': list(r)}))\n")
        out = subprocess.run(["/usr/bin/python3", "-c", reader, avro_path],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0 and "No module named 'avro'" in out.stderr:
            self.skipTest("python3-avro is not installed: the Avro file was not read back")
        self.assertEqual(out.returncode, 0, out.stderr)
        got = json.loads(out.stdout)
        self.assertEqual(got["schema"]["name"], "Asset")
        self.assertEqual([f["name"] for f in got["schema"]["fields"]],
                         ["type", "id", "version", "schema_version", "created_at",
                          "updated_at", "payload"])
        records = {r["id"]: r for r in got["records"]}
        self.assertEqual(set(records), {ids[i] for i in range(1, 500, 2)})
        for i in range(1, 500, 2):
            self.assertEqual(json.loads(records[ids[i]]["payload"]), payloads[i])
        # An export job's dead letters cannot be retried (its file is written once).
        status, body = self.server.request(
            "POST", "/v1/reprocess/jobs/%d/dead-letters:retry" % av["id"])
        self.assertEqual(status, 409, body)
        status, body = self.server.request("POST", "/v1/reprocess/jobs", {
            "type": "ex", "processor": {"kind": "export", "format": "csv"}})
        self.assertEqual((status, body["error"]["message"]),
                         (400, 'processor/format: must be "ndjson" (the default) or "avro"'))

    def test_webhook_and_dead_letter_retry(self):
        ids, payloads = self.make_type("wh", 60)
        seen = {}
        state = {"fixed": False}

        class Hook(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                n = body["payload"]["n"]
                seen[n] = seen.get(n, 0) + 1
                if not state["fixed"] and n % 10 == 1:
                    return self.answer(422, b"no n ending in 1")
                if n % 10 == 2 and seen[n] == 1:
                    return self.answer(503, b"busy")
                if n % 10 == 4:
                    return self.answer(204, b"")
                return self.answer(200, json.dumps(dict(body["payload"], hooked=True)).encode())

            def answer(self, code, data):
                self.send_response(code)
                if code != 204:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if code != 204:
                    self.wfile.write(data)

        hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=hook.serve_forever, daemon=True).start()
        try:
            url = "http://127.0.0.1:%d/hook" % hook.server_address[1]
            status, job = self.server.request("POST", "/v1/reprocess/jobs", {
                "type": "wh", "max_attempts": 4,
                "processor": {"kind": "webhook", "url": url, "timeout_ms": 5000}})
            self.assertEqual(status, 201, job)
            job = self.wait_job(job["id"])
            self.assertEqual(job["state"], "succeeded", job)
            c = job["counts"]
            self.assertEqual((c["processed"], c["changed"], c["unchanged"], c["dead_lettered"]),
                             (54, 48, 6, 6), c)
            self.assertEqual(c["failed"], 12)  # 6 x 422, 6 x 503 (retried)
            status, dead = self.server.request(
                "GET", "/v1/reprocess/jobs/%d/dead-letters" % job["id"])
            self.assertEqual(sorted(d["id"] for d in dead["dead_letters"]),
                             sorted(ids[i] for i in range(1, 60, 10)))
            self.assertEqual(dead["dead_letters"][0]["reason"],
                             "webhook: HTTP 422: no n ending in 1")
            for i, asset_id in enumerate(ids):
                status, a = self.server.request("GET", "/v1/assets/wh/" + asset_id)
                self.assertEqual(a["payload"].get("hooked"), True if i % 10 not in (1, 4) else None)
            # Fixed, the dead letters go back on the queue from the CLI and are processed.
            state["fixed"] = True
            out = subprocess.run([STRATA, "reprocess", "dead-letters", str(job["id"]), "--retry",
                                  "--server", "http://127.0.0.1:%d" % self.server.port],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertEqual(json.loads(out.stdout)["counts"]["dead_letters_retried"], 6)
            job = self.wait_job(job["id"])
            self.assertEqual(job["state"], "succeeded", job)
            self.assertEqual((job["counts"]["dead_lettered"], job["counts"]["changed"]), (0, 54))
            status, dead = self.server.request(
                "GET", "/v1/reprocess/jobs/%d/dead-letters" % job["id"])
            self.assertEqual(dead["dead_letters"], [])
            for i in range(1, 60, 10):
                status, a = self.server.request("GET", "/v1/assets/wh/" + ids[i])
                self.assertEqual(a["payload"]["hooked"], True)
        finally:
            hook.shutdown()
            hook.server_close()
        status, body = self.server.request("POST", "/v1/reprocess/jobs", {
            "type": "wh", "processor": {"kind": "webhook", "url": "https://x/y"}})
        self.assertEqual((status, body["error"]["message"]),
                         (400, "processor/url: must start with http:// (the client speaks no TLS)"))

    def test_dashboard_lists_jobs(self):
        self.make_type("db", 50)
        status, job = self.server.request("POST", "/v1/reprocess/jobs", {
            "type": "db", "select": {"where": ["/format=4k"]},
            "processor": {"kind": "set", "path": "/status", "value": "seen"}})
        self.assertEqual(status, 201, job)
        self.assertEqual(self.wait_job(job["id"])["state"], "succeeded")
        status, progress = self.server.request("GET", "/v1/reprocess/progress?limit=1000")
        self.assertEqual(status, 200, progress)
        mine = [j for j in progress["jobs"] if j["id"] == job["id"]]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["spec"]["processor"], {"kind": "set"})  # no values
        self.assertNotIn("where", mine[0]["spec"].get("select", {}))
        self.assertEqual(mine[0]["counts"]["changed"], 25)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            self.skipTest("chromium is not installed: the panel was not rendered")
        flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
                 "--user-data-dir=" + os.path.join(self.dir, "chromium"),
                 "--virtual-time-budget=5000"]
        dom = subprocess.run(flags + ["--dump-dom",
                                      "http://127.0.0.1:%d/dashboard" % self.server.port],
                             capture_output=True, text=True, timeout=120).stdout
        self.assertIn('data-loaded="true"', dom)
        row = dom.split('<tr data-job="%d">' % job["id"])
        self.assertEqual(len(row), 2, dom[-3000:])
        cells = [c.split("</td>")[0] for c in row[1].split("</tr>")[0].split("<td>")[1:]]
        self.assertEqual(cells[:4], [str(job["id"]), "db", "set", "succeeded"], cells)
        self.assertEqual(cells[5:8], ["25", "25", "25"], cells)


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

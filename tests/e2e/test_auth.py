"""Authentication, scopes and the audit log, on the real binary (issue 13, "Access"): keys made
offline with `strata key create`, 401/403/200 per scope on each route family, revocation (over
HTTP: at once; offline: at the next start), the refusal to serve a non-loopback address without
keys, and audit records that name the key behind an admin action and a hard delete.

Usage: test_auth.py STRATA_BINARY
"""
import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_e2e  # noqa: E402

STRATA = None
T0 = 1_780_000_000_000  # 2026-05-28, ms


def event(member, started):
    return {"member": member, "kind": "play", "title": 7, "session": "s%d" % started,
            "started_at": started, "event_time": started + 60_000, "position_ms": 60_000,
            "watched_ms": 60_000, "device": "tv", "country": "US", "content_lang": "en",
            "audio_lang": "en", "subtitle_lang": ""}


def store_flags(root):
    """The flags that make `strata key` open the same row store as the server over ROOT/d: the
    data directory, and on the distributed deployment the RADOS pools the server uses."""
    serve_flags, env = strata_e2e.deployment(root)
    flags = ["--data-dir", os.path.join(root, "d")]
    for name in ("--rows-backend", "--rows-ceph-conf", "--rows-pool-prefix"):
        if name in serve_flags:
            flags += [name, serve_flags[serve_flags.index(name) + 1]]
    return flags, env


def strata_key(root, *args):
    flags, env = store_flags(root)
    return subprocess.run([STRATA, "key", *args, *flags], capture_output=True, text=True,
                          timeout=60, env=env)


def create_key(root, *args):
    out = strata_key(root, "create", *args)
    if out.returncode != 0:
        raise RuntimeError("strata key create failed: " + out.stderr)
    return json.loads(out.stdout)


class Server(strata_e2e.ServerProcess):
    def request(self, method, path, body=None, token=None, headers=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body, h)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, data, resp
        finally:
            conn.close()


class AuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="strata_auth_")
        # The first keys are made offline, before the server ever started: the only way in
        # once authentication is on.
        cls.keys = {}
        cls.keys["admin"] = create_key(cls.tmp, "--admin", "--name", "ops")
        for scope in ("viewing:read", "viewing:write", "objects:read", "objects:write",
                      "assets:read", "assets:write", "metrics:read"):
            cls.keys[scope] = create_key(cls.tmp, "--scopes", scope, "--name", scope)
        cls.keys["revoked"] = create_key(cls.tmp, "--scopes", "viewing:read")
        out = strata_key(cls.tmp, "revoke", cls.keys["revoked"]["id"])
        assert out.returncode == 0, out.stderr
        # At info: audit records are logged (msg=audit) at that level. No daily GC run: one
        # the schedule starts as the server comes up (past 03:00 UTC) races the test's own
        # POST /v1/gc/runs, which gets 409 while it runs.
        cls.server = Server(STRATA, cls.tmp, ["--gc-daily-at", ""], log_level="info")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def token(self, name):
        return self.keys[name]["token"]

    def error(self, data):
        return json.loads(data)["error"]

    def test_offline_keys_are_listed_without_secrets(self):
        self.assertTrue(self.token("admin").startswith("strata_"))
        self.assertEqual(self.keys["admin"]["scopes"], ["admin"])
        self.assertEqual(self.keys["admin"]["created_by"], "offline-cli")
        status, data, _ = self.server.request("GET", "/v1/admin/keys", token=self.token("admin"))
        self.assertEqual(status, 200, data)
        listed = {k["id"]: k for k in json.loads(data)["keys"]}
        self.assertEqual(listed[self.keys["admin"]["id"]]["name"], "ops")
        self.assertIsNotNone(listed[self.keys["revoked"]["id"]]["revoked_at"])
        secret = self.token("admin").split("_")[2]
        self.assertNotIn(secret.encode(), data)
        # Nor does any file of the data directory hold a secret in clear.
        for dirpath, _, files in os.walk(os.path.join(self.tmp, "d")):
            for f in files:
                try:
                    with open(os.path.join(dirpath, f), "rb") as fh:
                        self.assertNotIn(secret.encode(), fh.read(), os.path.join(dirpath, f))
                except FileNotFoundError:
                    pass  # removed since the walk listed it (a compaction's input file)

    def test_missing_or_invalid_key_is_401_naming_the_problem(self):
        status, data, resp = self.server.request("GET", "/v1/members/1/viewing")
        self.assertEqual(status, 401, data)
        self.assertTrue(resp.getheader("WWW-Authenticate").startswith("Bearer"))
        self.assertEqual(self.error(data)["code"], "unauthorized")
        self.assertIn("Authorization: Bearer", self.error(data)["message"])

        status, data, _ = self.server.request("GET", "/v1/members/1/viewing", token="hunter2")
        self.assertEqual(status, 401, data)
        self.assertIn("malformed API key", self.error(data)["message"])
        wrong = self.token("viewing:read")[:-1] + ("1" if self.token("viewing:read")[-1] == "0"
                                                   else "0")
        status, data, resp = self.server.request("GET", "/v1/members/1/viewing", token=wrong)
        self.assertEqual(status, 401, data)
        self.assertIn("invalid API key", self.error(data)["message"])
        self.assertIn('error="invalid_token"', resp.getheader("WWW-Authenticate"))
        status, data, _ = self.server.request("GET", "/v1/members/1/viewing",
                                              token=self.token("revoked"))
        self.assertEqual(status, 401, data)
        self.assertIn("is revoked", self.error(data)["message"])
        # /healthz stays open (load balancers, the e2e harness).
        self.assertEqual(self.server.request("GET", "/healthz")[0], 200)

    def test_each_route_family_needs_its_scope(self):
        # (method, path, body, key that may, key that may not, the scope named in the 403)
        bucket = {"ttl": "30d"}
        schema = {"schema": {"type": "object", "properties": {"format": {"type": "string"}}},
                  "indexed": ["/format"]}
        cases = [
            ("POST", "/v1/viewing/events", [event(11, T0)], "viewing:write", "viewing:read",
             "viewing:write"),
            ("GET", "/v1/members/11/viewing", None, "viewing:read", "viewing:write",
             "viewing:read"),
            ("GET", "/v1/members/11/summary", None, "viewing:read", "objects:read",
             "viewing:read"),
            ("PUT", "/v1/buckets/scoped", bucket, "objects:write", "objects:read",
             "objects:write"),
            ("PUT", "/v1/buckets/scoped/objects/a/b.txt", b"hello", "objects:write",
             "viewing:write", "objects:write"),
            ("GET", "/v1/buckets/scoped/objects/a/b.txt", None, "objects:read",
             "objects:write", "objects:read"),
            ("GET", "/v1/buckets/scoped/objects?prefix=a/", None, "objects:read",
             "assets:read", "objects:read"),
            ("PUT", "/v1/asset-types/scoped", schema, "assets:write", "assets:read",
             "assets:write"),
            ("GET", "/v1/asset-types/scoped", None, "assets:read", "assets:write",
             "assets:read"),
            ("POST", "/v1/assets/scoped", {"format": "4k"}, "assets:write", "objects:write",
             "assets:write"),
            ("GET", "/v1/reprocess/jobs", None, "assets:read", "viewing:read", "assets:read"),
            ("GET", "/metrics", None, "metrics:read", "viewing:read", "metrics:read"),
            ("GET", "/v1/gc/status", None, "metrics:read", "objects:read", "metrics:read"),
            ("GET", "/v1/gc/stats?days=2", None, "metrics:read", "objects:write",
             "metrics:read"),
            ("POST", "/v1/gc/runs", {"dry_run": True}, "admin", "metrics:read", "admin"),
            ("GET", "/v1/admin/viewing/tables", None, "admin", "viewing:write", "admin"),
            ("GET", "/v1/admin/audit?limit=1", None, "admin", "metrics:read", "admin"),
        ]
        for method, path, body, allowed, refused, scope in cases:
            with self.subTest(method=method, path=path):
                status, data, _ = self.server.request(method, path, body)
                self.assertEqual(status, 401, data)
                status, data, resp = self.server.request(method, path, body,
                                                         token=self.token(refused))
                self.assertEqual(status, 403, data)
                self.assertEqual(self.error(data)["code"], "forbidden")
                self.assertIn("needs the '%s' scope" % scope, self.error(data)["message"])
                self.assertIn('scope="%s"' % scope, resp.getheader("WWW-Authenticate"))
                status, data, _ = self.server.request(method, path, body,
                                                      token=self.token(allowed))
                self.assertIn(status, (200, 201, 202), data)
                # admin may do everything.
                if method == "GET":
                    status, data, _ = self.server.request(method, path,
                                                          token=self.token("admin"))
                    self.assertEqual(status, 200, data)

    def test_the_dashboard_opens_in_a_browser_with_basic_credentials(self):
        status, data, resp = self.server.request("GET", "/dashboard")
        self.assertEqual(status, 401, data)
        challenges = resp.msg.get_all("WWW-Authenticate")
        self.assertTrue(any(c.startswith("Basic") for c in challenges), challenges)
        basic = base64.b64encode(("viewer:" + self.token("metrics:read")).encode()).decode()
        status, data, _ = self.server.request("GET", "/dashboard",
                                              headers={"Authorization": "Basic " + basic})
        self.assertEqual(status, 200)
        self.assertIn(b"<html", data.lower())
        # Ambient Basic credentials cannot change anything.
        admin_basic = base64.b64encode(("x:" + self.token("admin")).encode()).decode()
        status, data, _ = self.server.request("POST", "/v1/admin/viewing/caches:drop",
                                              headers={"Authorization": "Basic " + admin_basic})
        self.assertEqual(status, 401, data)

    def test_revocation_over_http_is_immediate(self):
        status, data, _ = self.server.request(
            "POST", "/v1/admin/keys", {"name": "short-lived", "scopes": ["viewing:read"]},
            token=self.token("admin"))
        self.assertEqual(status, 201, data)
        made = json.loads(data)
        self.assertEqual(made["scopes"], ["viewing:read"])
        status, data, _ = self.server.request("GET", "/v1/members/1/summary",
                                              token=made["token"])
        self.assertEqual(status, 200, data)
        status, data, _ = self.server.request("DELETE", "/v1/admin/keys/" + made["id"],
                                              token=self.token("admin"))
        self.assertEqual(status, 200, data)
        self.assertIsNotNone(json.loads(data)["revoked_at"])
        status, data, _ = self.server.request("GET", "/v1/members/1/summary",
                                              token=made["token"])
        self.assertEqual(status, 401, data)
        self.assertIn("is revoked", self.error(data)["message"])

    def test_the_audit_log_names_the_key(self):
        admin_id = self.keys["admin"]["id"]
        writer_id = self.keys["viewing:write"]["id"]
        assets_id = self.keys["assets:write"]["id"]
        self.assertEqual(self.server.request("POST", "/v1/viewing/events", [event(21, T0)],
                                             token=self.token("viewing:write"))[0], 200)
        # A hard delete: erasing a member.
        status, data, _ = self.server.request("DELETE", "/v1/members/21",
                                              token=self.token("viewing:write"))
        self.assertEqual(status, 200, data)
        # An admin action.
        status, data, _ = self.server.request("POST", "/v1/admin/viewing/caches:drop",
                                              token=self.token("admin"))
        self.assertEqual(status, 200, data)
        # An asset delete.
        schema = {"schema": {"type": "object"}}
        self.assertEqual(self.server.request("PUT", "/v1/asset-types/audited", schema,
                                             token=self.token("assets:write"))[0], 200)
        status, data, _ = self.server.request("POST", "/v1/assets/audited", {"x": 1},
                                              token=self.token("assets:write"))
        self.assertEqual(status, 201, data)
        asset = json.loads(data)["id"]
        status, data, _ = self.server.request("DELETE", "/v1/assets/audited/" + asset,
                                              token=self.token("assets:write"))
        self.assertEqual(status, 200, data)
        # Refused: a key without the scope trying an admin action.
        self.assertEqual(self.server.request("POST", "/v1/admin/viewing/caches:drop",
                                             token=self.token("viewing:write"))[0], 403)

        status, data, _ = self.server.request("GET", "/v1/admin/audit?limit=200",
                                              token=self.token("admin"))
        self.assertEqual(status, 200, data)
        records = json.loads(data)["records"]
        times = [r["time"] for r in records]
        self.assertEqual(times, sorted(times, reverse=True), "newest first")

        def find(**want):
            return [r for r in records if all(r[k] == v for k, v in want.items())]

        self.assertTrue(find(key=writer_id, action="member.erase", target="/v1/members/21",
                             result="ok", status=200), records)
        self.assertTrue(find(key=admin_id, action="admin.caches_drop", result="ok"), records)
        self.assertTrue(find(key=assets_id, action="asset.delete",
                             target="/v1/assets/audited/" + asset, result="ok"), records)
        self.assertTrue(find(key=writer_id, action="admin.caches_drop", result="denied",
                             status=403), records)
        # The offline key commands are there too.
        self.assertTrue(find(key="offline-cli", action="key.create",
                             target=self.keys["admin"]["id"]), records)
        self.assertTrue(find(key="offline-cli", action="key.revoke",
                             target=self.keys["revoked"]["id"]), records)
        # And the server's log says the same.
        deadline = time.time() + 5
        while time.time() < deadline:
            with open(os.path.join(self.tmp, "server.log"), "rb") as f:
                log = f.read().decode(errors="replace")
            if "action=member.erase" in log:
                break
            time.sleep(0.1)
        self.assertIn("msg=audit key=%s action=member.erase" % writer_id, log)

    def test_the_cli_sends_the_key_from_the_environment(self):
        url = "http://127.0.0.1:%d" % self.server.port
        env = dict(os.environ)
        env.pop("STRATA_API_KEY", None)
        out = subprocess.run([STRATA, "gc", "status", "--server", url], capture_output=True,
                             text=True, timeout=60, env=env)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("unauthorized", out.stdout + out.stderr)
        env["STRATA_API_KEY"] = self.token("metrics:read")
        out = subprocess.run([STRATA, "gc", "status", "--server", url], capture_output=True,
                             text=True, timeout=60, env=env)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("backlog", out.stdout)

    def test_demo_load_and_the_bench_send_the_key_from_the_environment(self):
        url = "http://127.0.0.1:%d" % self.server.port
        env = dict(os.environ)
        env.pop("STRATA_API_KEY", None)
        demo = [STRATA, "demo", "load", "--members", "2", "--server", url]
        out = subprocess.run(demo, capture_output=True, text=True, timeout=60, env=env)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("unauthorized", out.stdout + out.stderr)
        env["STRATA_API_KEY"] = self.token("viewing:write")
        out = subprocess.run(demo, capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn('"accepted"', out.stdout)
        # A load generator: every request of the run carries the key (errors column 0).
        env["STRATA_API_KEY"] = self.token("admin")
        out = subprocess.run([STRATA, "bench", "objects", "--server", url, "--small-count", "20",
                              "--small-bytes", "1024", "--large-count", "1", "--large-bytes",
                              "100000", "--connections", "2", "--load-connections", "1"],
                             capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        rows = [line.split() for line in out.stdout.splitlines()
                if line.split()[:1] and line.split()[0] in ("put-small", "get-small",
                                                            "delete-under-load")]
        self.assertEqual(len(rows), 3, out.stdout)
        for row in rows:
            self.assertEqual(row[-1], "0", out.stdout)  # errors
        self.assertIn("0 errors", out.stdout)

    @strata_e2e.embedded_only("RocksDB admits one process; RADOS is shared by design")
    def test_offline_key_commands_refuse_a_running_servers_directory(self):
        out = strata_key(self.tmp, "list")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("is `strata serve` running", out.stderr)

    def test_bad_key_commands_name_the_problem(self):
        out = strata_key(self.tmp, "create", "--scopes", "viewing:read,everything")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("unknown scope 'everything'", out.stderr)
        out = strata_key(self.tmp, "create")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("--scopes", out.stderr)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ExposureTest(unittest.TestCase):
    """Binding every interface needs a key, unless --insecure-no-auth. Each server binds
    0.0.0.0 on a free port, is reached on 127.0.0.1 only, and is stopped at once."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="strata_exposure_")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def serve_args(self):
        flags, env = strata_e2e.deployment(self.tmp)
        return ([STRATA, "serve", "--data-dir", os.path.join(self.tmp, "d"), "--address",
                 "0.0.0.0", "--port", str(free_port()), "--log-level", "warn", *flags], env)

    def test_a_non_loopback_address_without_keys_refuses_to_start(self):
        args, env = self.serve_args()
        out = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("0.0.0.0 is not a loopback address and no API key exists", out.stderr)
        self.assertIn("strata key create --admin", out.stderr)
        self.assertIn("--insecure-no-auth", out.stderr)

    def test_insecure_no_auth_starts_it_anyway(self):
        server = Server(STRATA, self.tmp, ["--address", "0.0.0.0", "--insecure-no-auth"])
        try:
            status, data, _ = server.request("GET", "/v1/members/1/summary")
            self.assertEqual(status, 200, data)  # served without a key, as asked
        finally:
            server.stop()
        with open(os.path.join(self.tmp, "server.log"), "rb") as f:
            self.assertIn(b"WITHOUT authentication", f.read())

    def test_with_a_key_it_starts_and_requires_it(self):
        key = create_key(self.tmp, "--scopes", "viewing:read")
        server = Server(STRATA, self.tmp, ["--address", "0.0.0.0"])
        try:
            self.assertEqual(server.request("GET", "/v1/members/1/summary")[0], 401)
            self.assertEqual(server.request("GET", "/v1/members/1/summary",
                                            token=key["token"])[0], 200)
        finally:
            server.stop()

    def test_loopback_without_keys_serves_as_before(self):
        server = Server(STRATA, self.tmp)
        try:
            self.assertEqual(server.request("GET", "/v1/members/1/summary")[0], 200)
            self.assertEqual(server.request("POST", "/v1/admin/viewing/caches:drop")[0], 200)
            status, data, _ = server.request("GET", "/v1/admin/audit")
            self.assertEqual(status, 200, data)
            self.assertEqual(json.loads(data)["records"][0]["key"], "anonymous")
        finally:
            server.stop()


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

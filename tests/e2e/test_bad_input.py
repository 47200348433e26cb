#!/usr/bin/env python3
"""The bad-input corpus (issue 13, "Goals"): every crafted request of tests/e2e/bad_input/*.json
is sent to the real `strata serve`, each must get the 4xx/5xx its case expects with an error
that names the problem, and the server must be healthy afterwards.

Usage: test_bad_input.py STRATA_BINARY [CASE_NAME_SUBSTRING]

The server runs with API keys (made offline before it starts, as an operator would), so every
case goes through authentication; a case carries the admin key unless it says otherwise. Its
limits are set small (1 MiB bodies, 16 MiB objects, 8 KiB headers, 1.5 s idle timeout) so that
the oversized and slow cases cost little. Each case is one fresh connection whose bytes the
runner writes itself (a client library would refuse to send most of them). The case format
is described in tests/e2e/bad_input/README.md.

After the corpus: the process still runs, /healthz answers 200, the fixture object reads back
byte for byte, an event is accepted and read back, /metrics does not grow a series per
made-up method, and the server's log holds no handler exception.

Only the Python standard library is used.
"""
import concurrent.futures
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_e2e  # noqa: E402

STRATA = None
ONLY = None  # run only the cases whose name contains this (for iterating on the corpus)
VERBOSE = os.environ.get("STRATA_CORPUS_VERBOSE") == "1"  # print every case's answer
CORPUS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad_input")
MIB = 1 << 20

# The server's limits for the corpus run; cases that test a limit are written against these.
SERVE_FLAGS = [
    "--max-body-bytes", str(MIB),
    "--max-object-bytes", str(16 * MIB),
    "--max-header-bytes", "8192",
    "--idle-timeout-ms", "1500",
    "--write-timeout-ms", "1500",
    "--asset-max-payload-bytes", "65536",
    "--asset-max-depth", "16",
    "--asset-max-batch", "100",
    "--archive-after-ms", str(10 ** 12),
]
# Flags of transport limits that a build may not have yet: used when `serve --help` lists them
# (cases that need one say so with "requires").
OPTIONAL_FLAGS = {
    "--min-upload-bytes-per-second": ["--min-upload-bytes-per-second", "4096",
                                      "--upload-rate-window-ms", "1000"],
    "--max-chunk-extension-bytes": ["--max-chunk-extension-bytes", "4096"],
}

# Error codes of the HTTP transport's own refusals (malformed HTTP, size limits), whose
# messages are sentences naming the part of the request ("request header exceeds 8192 bytes").
TRANSPORT_CODES = {"bad_request", "payload_too_large", "request_timeout", "not_implemented"}

FIXTURE_OBJECT = bytes(range(256)) * 4  # 1 KiB at /v1/buckets/media/objects/obj.bin
BIG_OBJECT_BYTES = 12 * MIB  # big.bin: larger than the socket buffers, for the slow reader
VIDEO_TYPE = {
    "schema": {
        "type": "object",
        "required": ["show_id", "format"],
        "properties": {
            "show_id": {"type": "integer", "minimum": 1},
            "format": {"type": "string", "enum": ["hd", "4k", "sd"]},
            "duration_s": {"type": "number", "minimum": 0},
            "title": {"type": "string", "maxLength": 50},
        },
    },
    "indexed": ["/show_id", "/format"],
}


# ---------------------------------------------------------------------------------------------
# The corpus


def expand(value):
    """A string field of a case: a string, or a list of pieces, each a string or
    {"repeat": field, "times": n} (field again a string or a list of pieces)."""
    if isinstance(value, str):
        return value
    out = []
    for piece in value:
        if isinstance(piece, str):
            out.append(piece)
        else:
            out.append(expand(piece["repeat"]) * piece["times"])
    return "".join(out)


def load_corpus():
    cases = []
    for path in sorted(glob.glob(os.path.join(CORPUS_DIR, "*.json"))):
        with open(path) as f:
            family = json.load(f)
        for case in family["cases"]:
            case["family"] = os.path.basename(path)[:-len(".json")]
            case["name"] = case["family"] + "/" + case["name"]
            cases.append(case)
    return cases


class Fixtures:
    """What the cases' placeholders stand for: keys, ids and times made at start-up."""

    def __init__(self):
        self.values = {}

    def text(self, s):
        for name, value in self.values.items():
            s = s.replace("{{%s}}" % name, str(value))
        return s

    def json_value(self, v):
        if isinstance(v, str):
            m = re.fullmatch(r"\{\{(\w+)\}\}", v)
            if m and isinstance(self.values.get(m.group(1)), int):
                return self.values[m.group(1)]
            return self.text(v)
        if isinstance(v, list):
            return [self.json_value(x) for x in v]
        if isinstance(v, dict):
            return {k: self.json_value(x) for k, x in v.items()}
        return v


def request_bytes(case, fx, port):
    """The bytes a case sends: its `raw` text, or a request built from its parts."""
    if "raw" in case:
        return fx.text(expand(case["raw"])).encode("latin-1")
    if "json" in case:
        body = json.dumps(fx.json_value(case["json"])).encode()
    elif "body" in case:
        body = fx.text(expand(case["body"])).encode("utf-8")
    elif "body_bytes" in case:  # each character one byte (for invalid UTF-8)
        body = fx.text(expand(case["body_bytes"])).encode("latin-1")
    else:
        body = None
    headers = case.get("headers", [])
    if isinstance(headers, dict):
        headers = list(headers.items())
    headers = [(n, fx.text(expand(v))) for n, v in headers]
    names = {n.lower() for n, _ in headers}
    lines = ["%s %s HTTP/1.1" % (expand(case.get("method", "GET")), fx.text(expand(case["path"])))]
    if "host" not in names:
        lines.append("Host: 127.0.0.1:%d" % port)
    auth = case.get("auth", "admin")
    if auth != "none" and "authorization" not in names:
        lines.append("Authorization: Bearer " + fx.values["TOKEN_" + auth.upper()])
    if body is not None and not names & {"content-length", "transfer-encoding"}:
        lines.append("Content-Length: %d" % len(body))
        if "content-type" not in names and "json" in case:
            lines.append("Content-Type: application/json")
    for name, value in headers:
        lines.append("%s: %s" % (name, value))
    if "connection" not in names:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class Answer:
    def __init__(self):
        self.status = None      # None: the server closed (or timed out) without an answer
        self.headers = {}
        self.body = b""
        self.closed_after = None  # seconds until the server closed the connection
        self.error = None       # a transport problem seen by the runner
        self.expected_length = None  # slow readers: the Content-Length announced


def parse_answer(data, answer, head_request=False):
    """Parses one answer from `data` into `answer`; False while more bytes are needed."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    lines = head.split(b"\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        answer.error = "not an HTTP answer: %r" % data[:80]
        return True
    headers = {}  # repeated fields joined with ", "
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower().decode("latin-1")
        value = value.strip().decode("latin-1")
        headers[name] = headers[name] + ", " + value if name in headers else value
    length = 0 if head_request else int(headers.get("content-length", "0"))
    if len(rest) < length:
        return False
    answer.status = int(m.group(1))
    answer.headers = headers
    answer.body = rest[:length]
    return True


def exchange(port, data, drip=None, timeout=15, rcvbuf=None, head=False):
    """Sends `data` on a new connection (all at once, or dripped) and reads one answer."""
    answer = Answer()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    start = time.monotonic()
    try:
        s.connect(("127.0.0.1", port))
        stop = threading.Event()

        def send():
            try:
                if drip is None:
                    s.sendall(data)
                    return
                first = min(drip.get("after", 0), len(data))
                s.sendall(data[:first])
                for i in range(first, len(data)):
                    if stop.wait(drip.get("interval_ms", 0) / 1000.0):
                        return
                    s.sendall(data[i:i + 1])
            except OSError:
                pass  # the server stopped reading: its answer (or close) says why

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        if drip and drip.get("no_read"):
            # A reader that does not read: after hold_s, read what the server still sends.
            # A server that gave up on the connection (its write timeout) sent a short body.
            sender.join(timeout)
            time.sleep(drip["hold_s"])
            received = b""
            while True:
                try:
                    chunk = s.recv(1 << 20)
                except (socket.timeout, ConnectionResetError):
                    break
                if not chunk:
                    break
                received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            answer.expected_length = int(m.group(1)) if m else None
            answer.body = body
            answer.closed_after = time.monotonic() - start
            return answer
        received = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                answer.error = "no answer within %d s" % timeout
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            if answer.status is None and parse_answer(received, answer, head) and not drip:
                break
        if drip:
            answer.closed_after = time.monotonic() - start
        stop.set()
        if answer.status is None and received and answer.error is None:
            parse_answer(received, answer, head)
            if answer.status is None:
                answer.error = "incomplete answer: %r" % received[:200]
    except OSError as e:
        answer.error = "transport: %s" % e
    finally:
        s.close()
    return answer


def status_matches(want, got):
    """`want`: a status (400), a list of them ([400, 413]) or a class ("4xx")."""
    if got is None:
        return False
    if isinstance(want, int):
        return got == want
    if isinstance(want, list):
        return got in want
    return str(got)[0] == want[0]


def check(case, answer):
    """Problems with one answer, as a list of sentences (empty: the case passed)."""
    expect = case["expect"]
    problems = []
    if expect.get("short_body"):
        if answer.expected_length is None or len(answer.body) >= answer.expected_length:
            return ["the server kept writing to a reader that did not read (%s of %s bytes)" %
                    (len(answer.body), answer.expected_length)]
        return []
    if answer.status is None and answer.error is None and expect.get("or_closed"):
        return []  # closed without an answer, which the case allows
    if answer.error and not (expect.get("closed") and answer.status is None):
        return [answer.error]
    if expect.get("closed"):
        # A slow or stuck connection: the server must close it (optionally after answering)
        # within the time the case allows.
        limit = expect["closed"]
        if answer.closed_after is None or answer.closed_after > limit:
            problems.append("not closed within %s s (after %s)" % (limit, answer.closed_after))
        if answer.status is not None and answer.status not in expect.get("status_if_answered",
                                                                          [408, 400, 413]):
            problems.append("answered %s" % answer.status)
        if answer.status is None:
            return problems
    want = expect.get("status")
    if not status_matches(want, answer.status):
        problems.append("status %s, expected %s; body %r" % (answer.status, want,
                                                              answer.body[:300]))
        return problems
    if answer.status >= 500 and not expect.get("allow_5xx"):
        problems.append("server error %s: %r" % (answer.status, answer.body[:300]))
    if answer.status >= 400 and case.get("method") != "HEAD":
        try:
            err = json.loads(answer.body.decode("utf-8"))["error"]
            code, message = err["code"], err["message"]
        except (ValueError, KeyError, TypeError) as e:
            return problems + ["error body is not UTF-8 JSON {error: {code, message}} (%s): %r"
                               % (e, answer.body[:300])]
        if "code" in expect and code != expect["code"]:
            problems.append("code %r, expected %r (%s)" % (code, expect["code"], message))
        if "error" in expect and expect["error"] not in message:
            problems.append("message %r does not name %r" % (message, expect["error"]))
        # Every error message starts with what it is about: "field: problem". The transport's
        # own refusals name the request's part in a sentence ("request body exceeds N bytes").
        if (code not in TRANSPORT_CODES and
                not re.match(r"^[^:\s][^:]*: \S", message)):
            problems.append("message %r does not start with 'field: '" % message)
    if "rejected" in expect:
        # A batch (events, assets) whose one element is bad: answered 200, nothing stored, the
        # element rejected naming its field.
        body = json.loads(answer.body)
        errors = [r["error"] for r in body.get("rejected", [])]
        stored = body.get("accepted", body.get("created"))
        if stored != 0 or not errors or expect["rejected"] not in errors[0]:
            problems.append("rejected %r, stored %s, expected one naming %r" % (
                errors, stored, expect["rejected"]))
    for name, text in expect.get("headers", {}).items():
        if text not in answer.headers.get(name.lower(), ""):
            problems.append("header %s %r lacks %r" % (name, answer.headers.get(name.lower()),
                                                      text))
    return problems


# ---------------------------------------------------------------------------------------------
# The server


class Server(strata_e2e.ServerProcess):
    def call(self, method, path, body=None, token=None, headers=()):
        case = {"method": method, "path": path, "auth": "none",
                "headers": list(headers) + ([("Authorization", "Bearer " + token)] if token
                                            else [])}
        if isinstance(body, (dict, list)):
            case["json"] = body
        elif body is not None:
            case["body_bytes"] = body.decode("latin-1") if isinstance(body, bytes) else body
        return exchange(self.port, request_bytes(case, Fixtures(), self.port), timeout=30)


def serve_help():
    return subprocess.run([STRATA, "serve", "--help"], capture_output=True, text=True,
                          timeout=30).stdout


def create_key(root, *args):
    out = subprocess.run([STRATA, "key", "create", *args, "--data-dir",
                          os.path.join(root, "d")], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError("strata key create failed: " + out.stderr)
    return json.loads(out.stdout)


class BadInputCorpusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cases = load_corpus()
        cls.tmp = tempfile.mkdtemp(prefix="strata_badinput_")
        cls.fx = Fixtures()
        admin = create_key(cls.tmp, "--admin", "--name", "corpus")
        reader = create_key(cls.tmp, "--scopes", "viewing:read", "--name", "reader")
        revoked = create_key(cls.tmp, "--scopes", "viewing:read", "--name", "revoked")
        subprocess.run([STRATA, "key", "revoke", revoked["id"], "--data-dir",
                        os.path.join(cls.tmp, "d")], check=True, capture_output=True, timeout=60)
        help_text = serve_help()
        cls.flags_available = {f for f in OPTIONAL_FLAGS if f in help_text}
        flags = list(SERVE_FLAGS)
        for f in sorted(cls.flags_available):
            flags += OPTIONAL_FLAGS[f]
        cls.server = Server(STRATA, cls.tmp, flags)
        try:
            port = cls.server.port
            token = admin["token"]
            now = int(time.time() * 1000)
            cls.fx.values = {
                "TOKEN_ADMIN": token, "TOKEN_READER": reader["token"],
                "TOKEN_REVOKED": revoked["token"], "KEY_ID": admin["id"],
                "HOST": "127.0.0.1:%d" % port, "NOW": now, "PAST": now - 3_600_000,
                "FUTURE": now + 86_400_000,
                # Same shape as a real token, wrong secret; and an id no key has.
                "TOKEN_WRONG_SECRET":
                    token[:-8] + ("0" * 8 if token[-8:] != "0" * 8 else "1" * 8),
                "TOKEN_UNKNOWN_ID": "strata_" + "0" * 16 + "_" + "a" * 64,
            }
            # Fixtures the cases refer to.
            srv = cls.server
            assert srv.call("PUT", "/v1/buckets/media", {}, token).status == 200
            put = srv.call("PUT", "/v1/buckets/media/objects/obj.bin", FIXTURE_OBJECT, token)
            assert put.status == 200, put.body
            put = srv.call("PUT", "/v1/buckets/media/objects/big.bin", b"b" * BIG_OBJECT_BYTES,
                           token)
            assert put.status == 200, put.body
            assert srv.call("PUT", "/v1/asset-types/video", VIDEO_TYPE, token).status == 200
            created = srv.call("POST", "/v1/assets/video", {"show_id": 1, "format": "hd"}, token)
            assert created.status == 201, created.body
            cls.fx.values["ASSET"] = json.loads(created.body)["id"]
            job = srv.call("POST", "/v1/reprocess/jobs",
                           {"type": "video", "processor": {"kind": "set", "path": "/title",
                                                           "value": "x"}}, token)
            assert job.status == 201, job.body
            cls.fx.values["JOB"] = json.loads(job.body)["id"]
        except BaseException:
            # tearDownClass does not run when setUpClass fails: no server may outlive it.
            cls.server.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.server.proc.poll() is None:
            cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def selected(self):
        return [c for c in self.cases if ONLY is None or ONLY in c["name"]]

    def run_case(self, case):
        data = request_bytes(case, self.fx, self.server.port)
        return exchange(self.server.port, data, drip=case.get("drip"),
                        timeout=case.get("timeout", 15), rcvbuf=case.get("rcvbuf"),
                        head=case.get("method") == "HEAD")

    def test_corpus(self):
        names = [c["name"] for c in self.cases]
        self.assertEqual(len(names), len(set(names)), "case names must be unique")
        self.assertGreaterEqual(len(self.cases), 200)
        cases = self.selected()
        runnable = [c for c in cases if c.get("requires") in (None, *self.flags_available)]
        skipped = [c["name"] for c in cases if c not in runnable]
        if skipped:
            print("skipped (flag not in this build): %s" % ", ".join(skipped), file=sys.stderr)
        slow = [c for c in runnable if "drip" in c]
        fast = [c for c in runnable if "drip" not in c]
        failures = []
        statuses = {}
        # The slow cases run side by side while the others go one after the other: the server
        # must answer normal requests while slow connections are held open.
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(slow))) as pool:
            pending = {pool.submit(self.run_case, c): c for c in slow}
            for case in fast:
                answer = self.run_case(case)
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
                if VERBOSE:
                    print("%-55s %s %s" % (case["name"], answer.status, answer.body[:160]),
                          file=sys.stderr)
                for p in check(case, answer):
                    failures.append("%s: %s" % (case["name"], p))
                if self.server.proc.poll() is not None:
                    with open(os.path.join(self.tmp, "server.log"), "rb") as f:
                        tail = f.read()[-2000:].decode("utf-8", "replace")
                    self.fail("the server exited (status %s) at case %s; its log ends:\n%s" %
                              (self.server.proc.returncode, case["name"], tail))
            for future in concurrent.futures.as_completed(pending):
                case = pending[future]
                answer = future.result()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
                for p in check(case, answer):
                    failures.append("%s: %s" % (case["name"], p))
        print("%d cases run (%d slow), answers by status: %s" % (
            len(runnable), len(slow),
            ", ".join("%s: %d" % (k, v) for k, v in sorted(statuses.items(), key=str))),
            file=sys.stderr)
        self.assertIsNone(self.server.proc.poll(), "the server exited during the corpus")
        self.assertEqual(failures, [], "\n".join(failures))
        self.check_healthy()

    def check_healthy(self):
        srv, token = self.server, self.fx.values["TOKEN_ADMIN"]
        health = srv.call("GET", "/healthz")
        self.assertEqual(health.status, 200, health.body)
        got = srv.call("GET", "/v1/buckets/media/objects/obj.bin", token=token)
        self.assertEqual((got.status, got.body), (200, FIXTURE_OBJECT))
        now = int(time.time() * 1000)
        event = {"member": 424242, "kind": "play", "title": 7, "session": "after-corpus",
                 "started_at": now - 60_000, "event_time": now, "watched_ms": 60_000}
        posted = srv.call("POST", "/v1/viewing/events", [event], token)
        self.assertEqual(posted.status, 200, posted.body)
        self.assertEqual(json.loads(posted.body)["accepted"], 1, posted.body)
        read = srv.call("GET", "/v1/members/424242/viewing", token=token)
        self.assertEqual(read.status, 200, read.body)
        self.assertEqual(json.loads(read.body)["records"][0]["session"], "after-corpus")
        metrics = srv.call("GET", "/metrics", token=token)
        self.assertEqual(metrics.status, 200)
        series = [line for line in metrics.body.decode().splitlines()
                  if line.startswith("strata_http_requests_total{")]
        self.assertLess(len(series), 150, "request counters grew a series per bad input")
        with open(os.path.join(self.tmp, "server.log"), "rb") as f:
            log = f.read()
        self.assertNotIn(b"handler threw", log)
        self.assertNotIn(b"body sink threw", log)


if __name__ == "__main__":
    STRATA = os.path.abspath(sys.argv.pop(1))
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        ONLY = sys.argv.pop(1)
    unittest.main(verbosity=2)

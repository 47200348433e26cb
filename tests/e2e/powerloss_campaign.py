"""A power-loss campaign: many short cycles, each a power cut at a random moment of one path.

Each cycle picks a path (in turn, so the paths get equal shares) and a cut time drawn from
the seed, starts `strata serve` under tests/tools/powerloss_shim.cc on a copy of a prepared
data directory, drives that path's load, kills the process at the cut time, rebuilds the
directory the power cut would leave (powerloss.cut_power), restarts Strata on it without the
shim and checks what it holds against an oracle of what was acknowledged:

  writes     viewing events and new objects (inline, one file, several parts) under new
             prefixes, so new blob directories are made as the load runs
  rollup     viewing events on a few members, roll-ups after 8 live rows or 100 ms
  rotation   viewing events that start around a 1.5 s recent-tier age, roll-ups and a
             rotation sweep every 100 ms: records move from the recent to the past tier
  sweep      overwrites, TTLs of 1 s and soft deletes (grace 1 s) on a few keys, with a GC run
             started every 100 ms: the collector deletes superseded, expired, deleted bytes
  archival   overwrites of a few keys with an archival run every 100 ms (objects older than
             50 ms move to the cold class) and a GC run every 300 ms

Every path runs with --sync batch, where an acknowledgement promises durability (--sync
periodic is a control: it promises none, and the campaign must find losses). The checks
after the restart: every acknowledged viewing event is in its member's history and every
record there was sent; every object key reads back as its last acknowledged state (bytes, or
404 after an acknowledged delete) or the state of the one request in flight at the cut; an
object under a TTL may also have expired; every object the bucket lists reads back (200) with
bytes that were written under its key: no live row names missing bytes.

No wall-clock assertion: the machine may be shared, and processes paused (SIGSTOP) at times;
requests wait up to --request-timeout seconds. A cycle whose load got too little acknowledged
to test (paused right through it) counts as such, not as a failure.

Usage:
  powerloss_campaign.py --strata build/apps/strata --shim build/tests/libstrata_powerloss_shim.so
                        --cycles 1000 --seed 1 [--jobs 2] [--paths writes,sweep] [--keep-failed DIR]
Prints one line per cycle and a summary per path; exit status 1 if any acknowledged write was
lost or any check failed.
"""
import argparse
import collections
import concurrent.futures
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import powerloss  # noqa: E402

PATHS = ("writes", "rollup", "rotation", "sweep", "archival")
BUCKET = "media"
RECENT_AGE_MS = 1500

# Server flags of each path (besides --sync).
FLAGS = {
    "writes": ["--rollup-min-live-rows", "32"],
    "rollup": ["--rollup-min-live-rows", "8", "--rollup-max-live-rows", "16",
               "--rollup-max-live-age-ms", "100"],
    "rotation": ["--recent-age-ms", str(RECENT_AGE_MS), "--rotation-slack-ms", "50",
                 "--rotation-sweep-interval-ms", "100", "--rotation-max-per-s", "0",
                 "--rollup-min-live-rows", "8", "--rollup-max-live-age-ms", "100"],
    "sweep": ["--gc-daily-at", ""],
    "archival": ["--gc-daily-at", "", "--archive-after-ms", "50", "--archive-daily-at", ""],
}
BUCKET_BODY = {"sweep": {"grace": "1s"}, "archival": {"grace": "1s"}}
# What each path's /metrics shows it did before the cut (summed over the campaign).
EVIDENCE = {
    "rollups": re.compile(r"^strata_viewing_rollups_total(?:\{[^}]*\})? (\d+)", re.M),
    "rotated_records": re.compile(r"^strata_viewing_rotated_records_total(?:\{[^}]*\})? (\d+)",
                                  re.M),
    "gc_objects": re.compile(r'^strata_lifecycle_objects_total\{task="gc"[^}]*\} (\d+)', re.M),
    "archived_objects": re.compile(r'^strata_lifecycle_objects_total\{task="archive"[^}]*\} (\d+)',
                                   re.M),
}


class Oracle:
    """What the load sent and what was acknowledged. Object keys are written by one thread
    each, one request at a time, so a key has at most one request in flight at the cut."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent_events = set()
        self.acked_events = set()
        self.members = set()
        # key -> state: ("put", sha256, ttl) | ("del",)
        self.acked = {}
        self.in_flight = {}
        self.written = collections.defaultdict(set)  # key -> every sha256 ever sent
        self.requests = collections.Counter()


def connection(port, timeout):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def send(conn, method, path, body=None, headers=None):
    conn.request(method, path, body, headers or {})
    resp = conn.getresponse()
    return resp.status, resp.read()


def viewing_writer(port, args, oracle, stop, rng, wid, path, cycle):
    """POSTs batches of events on the members of the path; records what was acknowledged."""
    conn = connection(port, args.request_timeout)
    members = list(range(1000 + wid * 10, 1000 + wid * 10 + (4 if path == "rollup" else 8)))
    session = "c%dw%d" % (cycle, wid)
    seq = 0
    try:
        while not stop.is_set():
            now = int(time.time() * 1000)
            batch = []
            for _ in range(rng.randint(1, 12)):
                seq += 1
                member = rng.choice(members)
                if path == "rotation":
                    # Around the recent tier's boundary: some move to the past tier at once,
                    # others while the load runs.
                    started = now - rng.randint(0, 2 * RECENT_AGE_MS) - seq % 1000
                else:
                    started = now - 3_600_000 + seq  # well inside the recent tier
                batch.append(powerloss.event(member, started, session, title=seq % 5))
            ids = [powerloss.event_id(e) for e in batch]
            with oracle.lock:
                oracle.sent_events.update(ids)
                oracle.members.update(e["member"] for e in batch)
            try:
                status, body = send(conn, "POST", "/v1/viewing/events", json.dumps(batch),
                                    {"Content-Type": "application/json"})
            except (OSError, http.client.HTTPException):
                return
            with oracle.lock:
                oracle.requests["events"] += 1
                if status == 200 and json.loads(body)["accepted"] == len(batch):
                    oracle.acked_events.update(ids)
    finally:
        conn.close()


def object_body(rng, path):
    if path == "writes":
        size = rng.choice((100, 70_000, 300_000))
    else:
        size = rng.choice((100, 40_000, 200_000))
    seed = rng.getrandbits(64).to_bytes(8, "little")
    return (hashlib.sha256(seed).digest() * (size // 32 + 1))[:size]


def object_writer(port, args, oracle, stop, rng, wid, path, cycle):
    """writes: PUTs of new keys. sweep/archival: PUTs (some with a TTL) and deletes of a few
    keys of its own, so generations are superseded, expire and are soft deleted."""
    conn = connection(port, args.request_timeout)
    i = 0
    try:
        while not stop.is_set():
            i += 1
            headers = {"Content-Type": "application/octet-stream"}
            if path == "writes":
                key = "c%d/w%d/p%d/o%d" % (cycle, wid, i // 4, i)
                op = "put"
            else:
                key = "w%d/k%d" % (wid, rng.randrange(6))
                with oracle.lock:
                    exists = oracle.acked.get(key, ("del",))[0] == "put"
                op = "del" if exists and path == "sweep" and rng.random() < 0.25 else "put"
            ttl = op == "put" and path == "sweep" and rng.random() < 0.3
            if ttl:
                headers["x-strata-ttl"] = "1s"
            body = object_body(rng, path) if op == "put" else None
            state = ("put", hashlib.sha256(body).hexdigest(), ttl) if op == "put" else ("del",)
            with oracle.lock:
                oracle.in_flight[key] = state
                if op == "put":
                    oracle.written[key].add(state[1])
            try:
                status, resp = send(conn, "PUT" if op == "put" else "DELETE",
                                    "/v1/buckets/%s/objects/%s" % (BUCKET, key), body, headers)
            except (OSError, http.client.HTTPException):
                return
            with oracle.lock:
                oracle.requests[op] += 1
                if status == 200:
                    oracle.acked[key] = state
                    del oracle.in_flight[key]
                elif status == 404 and op == "del":
                    # Already gone (it expired): nothing to delete, nothing acknowledged.
                    del oracle.in_flight[key]
    finally:
        conn.close()


def task_runner(port, args, oracle, stop, rng, task, every_s):
    """Starts a GC or archival run every every_s seconds (a run already going answers 409)."""
    conn = connection(port, args.request_timeout)
    try:
        while not stop.wait(every_s * rng.uniform(0.5, 1.5)):
            try:
                status, _ = send(conn, "POST", "/v1/%s/runs" % task, b'{"dry_run": false}',
                                 {"Content-Type": "application/json"})
            except (OSError, http.client.HTTPException):
                return
            with oracle.lock:
                oracle.requests[task + "_runs" if status == 202 else task + "_busy"] += 1
    finally:
        conn.close()


def prepare_template(args, workdir, path):
    """A data directory with the bucket, from a clean run: the durable baseline of each cycle."""
    tdir = os.path.join(workdir, "template-" + path)
    os.makedirs(tdir)
    server = powerloss.Server(args.strata, tdir, args.sync_flags + FLAGS[path],
                              start_timeout=args.request_timeout)
    server.timeout = args.request_timeout
    status, body = server.json("PUT", "/v1/buckets/" + BUCKET, BUCKET_BODY.get(path, {}))
    if status != 200:
        raise RuntimeError("bucket: %s %s" % (status, body))
    server.stop(timeout=args.request_timeout)
    return tdir


def check(server, oracle, path):
    """Problems found after the restart (an empty list: nothing acknowledged was lost)."""
    problems = []
    stored = server.stored_events(sorted(oracle.members))
    lost = sorted(oracle.acked_events - stored)
    if lost:
        problems.append("%d acknowledged events lost, e.g. %s" % (len(lost), lost[:3]))
    phantom = sorted(stored - oracle.sent_events)
    if phantom:
        problems.append("%d events never sent, e.g. %s" % (len(phantom), phantom[:3]))

    def digest_of(key):
        status, data = server.request("GET", "/v1/buckets/%s/objects/%s" % (BUCKET, key))
        return status, hashlib.sha256(data).hexdigest() if status == 200 else data[:200]

    read = {}
    for key in sorted(set(oracle.acked) | set(oracle.in_flight)):
        status, got = read[key] = digest_of(key)
        allowed = set()  # digests it may read back; None = a 404 is allowed
        for state in (oracle.acked.get(key), oracle.in_flight.get(key)):
            if state is None:
                if key not in oracle.acked:
                    allowed.add(None)  # nothing acknowledged: not there is fine
            elif state[0] == "del":
                allowed.add(None)
            else:
                allowed.add(state[1])
                if state[2]:
                    allowed.add(None)  # a TTL of 1 s: may have expired
        if status == 200 and got in allowed:
            continue
        if status == 404 and None in allowed:
            continue
        problems.append("object %s: %s %s, acknowledged %s, in flight %s" % (
            key, status, got if status != 200 else got[:12], oracle.acked.get(key),
            oracle.in_flight.get(key)))
    for key in server.live_objects(BUCKET):
        status, got = read.get(key) or digest_of(key)
        if status != 200 or got not in oracle.written.get(key, ()):
            problems.append("listed object %s reads %s %s" % (key, status, got))
    return problems


def run_cycle(args, templates, workdir, cycle):
    rng = random.Random("%d/%d" % (args.seed, cycle))
    paths = args.paths
    path = paths[cycle % len(paths)]
    cut_s = rng.uniform(0.2, args.max_cut_s)
    tmp = tempfile.mkdtemp(prefix="c%d-" % cycle, dir=workdir)
    result = {"cycle": cycle, "path": path, "cut_s": round(cut_s, 3)}
    try:
        root = os.path.join(tmp, "d")
        shutil.copytree(os.path.join(templates[path], "d"), root)
        journal = os.path.join(tmp, "journal")
        base = powerloss.baseline(root)
        server = powerloss.Server(args.strata, tmp, args.sync_flags + FLAGS[path],
                                  env=powerloss.shim_env(args.shim, root, journal),
                                  start_timeout=args.request_timeout)
        oracle = Oracle()
        stop = threading.Event()
        threads = []

        def spawn(fn, *a):
            threads.append(threading.Thread(target=fn, args=(server.port, args, oracle, stop,
                                                             random.Random(rng.random()), *a)))

        if path in ("writes", "rollup", "rotation"):
            for w in range(2):
                spawn(viewing_writer, w, path, cycle)
        if path in ("writes", "sweep", "archival"):
            for w in range(2):
                spawn(object_writer, w, path, cycle)
        if path == "sweep":
            spawn(task_runner, "gc", 0.1)
        if path == "archival":
            spawn(task_runner, "archive", 0.1)
            spawn(task_runner, "gc", 0.3)
        for t in threads:
            t.start()
        time.sleep(cut_s)
        try:
            metrics = server.request("GET", "/metrics")[1].decode()
        except (OSError, http.client.HTTPException):
            metrics = ""
        server.proc.kill()  # the power cut: nothing after this reaches the disk
        server.proc.wait()
        stop.set()
        for t in threads:
            t.join()
        server.log.close()
        for name, pattern in EVIDENCE.items():
            result[name] = sum(int(v) for v in pattern.findall(metrics))
        result["acked_events"] = len(oracle.acked_events)
        result["acked_objects"] = sum(1 for s in oracle.acked.values() if s[0] == "put")
        result["acked_deletes"] = sum(1 for s in oracle.acked.values() if s[0] == "del")
        result["requests"] = dict(oracle.requests)

        cut = powerloss.cut_power(root, journal, base)
        result["dropped_names"] = cut["dropped_names"]
        result["cut_bytes"] = cut["cut_bytes"]
        server = powerloss.Server(args.strata, tmp, args.sync_flags + FLAGS[path],
                                  start_timeout=args.request_timeout)
        server.timeout = args.request_timeout
        try:
            result["problems"] = check(server, oracle, path)
        finally:
            server.stop(timeout=args.request_timeout)
        acked = result["acked_events"] + result["acked_objects"] + result["acked_deletes"]
        result["idle"] = acked == 0  # paused right through its load: nothing to test
    except Exception:  # noqa: BLE001 -- a broken cycle is reported, the campaign goes on
        result["problems"] = ["cycle error: " + traceback.format_exc()]
    finally:
        if result.get("problems") and args.keep_failed:
            dest = os.path.join(args.keep_failed, "cycle-%d" % cycle)
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(tmp, dest, symlinks=True, ignore_dangling_symlinks=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strata", required=True)
    parser.add_argument("--shim", required=True)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--first-cycle", type=int, default=0,
                        help="number of the first cycle (to replay one: --first-cycle N --cycles 1)")
    parser.add_argument("--jobs", type=int, default=1, help="cycles run side by side")
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--max-cut-s", type=float, default=2.5,
                        help="cut times are uniform in [0.2, this] seconds after the start")
    parser.add_argument("--request-timeout", type=float, default=300)
    parser.add_argument("--sync", default="batch", choices=("batch", "periodic"),
                        help="the server's --sync; periodic (WAL synced every 10 s) is a control: "
                        "it does not promise durability, so the campaign must find losses")
    parser.add_argument("--keep-failed", help="copy a failed cycle's directory here")
    parser.add_argument("--work-dir", help="where cycles run (default: a new temporary one)")
    parser.add_argument("--results", help="append one JSON line per cycle to this file")
    args = parser.parse_args()
    args.strata = os.path.abspath(args.strata)
    args.shim = os.path.abspath(args.shim)
    args.paths = args.paths.split(",")
    args.sync_flags = ["--sync", args.sync] + (
        ["--sync-interval-ms", "10000"] if args.sync == "periodic" else [])
    for p in args.paths:
        if p not in PATHS:
            parser.error("--paths: unknown path %r (known: %s)" % (p, ", ".join(PATHS)))
    if args.keep_failed:
        os.makedirs(args.keep_failed, exist_ok=True)

    workdir = tempfile.mkdtemp(prefix="strata_campaign_", dir=args.work_dir)
    started = time.time()
    totals = collections.defaultdict(collections.Counter)
    failed = []
    try:
        templates = {p: prepare_template(args, workdir, p) for p in args.paths}
        results_file = open(args.results, "a") if args.results else None
        cycles = range(args.first_cycle, args.first_cycle + args.cycles)
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for r in pool.map(lambda c: run_cycle(args, templates, workdir, c), cycles):
                t = totals[r["path"]]
                t["cycles"] += 1
                t["failed"] += 1 if r["problems"] else 0
                t["idle"] += 1 if r.get("idle") else 0
                for k in ("acked_events", "acked_objects", "acked_deletes", "rollups",
                          "rotated_records", "gc_objects", "archived_objects",
                          "dropped_names", "cut_bytes"):
                    t[k] += r.get(k, 0)
                if r["problems"]:
                    failed.append(r)
                line = {k: v for k, v in r.items() if k != "requests"}
                print(json.dumps(line, sort_keys=True), flush=True)
                if results_file:
                    results_file.write(json.dumps(r, sort_keys=True) + "\n")
                    results_file.flush()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.time() - started
    print("\ncampaign: seed %d, cycles %d, %.0f s (wall clock, pauses included)"
          % (args.seed, args.cycles, elapsed))
    for p in args.paths:
        t = totals[p]
        print("  %-9s %s" % (p, ", ".join("%s %d" % (k, t[k]) for k in (
            "cycles", "failed", "idle", "acked_events", "acked_objects", "acked_deletes",
            "rollups", "rotated_records", "gc_objects", "archived_objects", "dropped_names",
            "cut_bytes"))))
    print("result: %d cycles with lost or wrong data" % len(failed))
    for r in failed[:20]:
        print("  cycle %d (%s, cut at %.3f s): %s" % (r["cycle"], r["path"], r["cut_s"],
                                                     "; ".join(r["problems"])[:2000]))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

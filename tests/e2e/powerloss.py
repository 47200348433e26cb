"""What a power cut leaves of a data directory, from the journal of tests/tools/powerloss_shim.cc.

Use: snapshot = baseline(root) before starting the process under the shim (with
STRATA_POWERLOSS_ROOT=root and STRATA_POWERLOSS_JOURNAL=journal); kill -9 it; then
cut_power(root, journal, snapshot) rewrites root to what the disk would hold: only names made
durable by a directory fsync, each file cut to the size of its last fsync. The model is the
shim's (see its header): removals count as durable at once, nothing is resurrected.

Also the helpers that test_powerloss.py and powerloss_campaign.py share: a server with request
helpers, the shim's environment, viewing events and the read-back of members' histories.
"""
import http.client
import json
import os
import shutil

import strata_e2e

T0 = 1_780_000_000_000  # 2026-05-28, ms


def event(member, started, session, title=7):
    """One viewing event whose record is identified by (member, started_at, session)."""
    return {"member": member, "kind": "play", "title": title, "session": session,
            "started_at": started, "event_time": started + 60_000, "position_ms": 60_000,
            "watched_ms": 60_000, "device": "tv", "country": "US", "content_lang": "en",
            "audio_lang": "en", "subtitle_lang": ""}


def event_id(e):
    return (e["member"], e["started_at"], e["session"])


class Server(strata_e2e.ServerProcess):
    """strata serve with the request helpers of the power-loss tests. timeout: seconds a
    request may take (generous: the campaign may share the machine with benchmarks)."""

    timeout = 30

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body, headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def json(self, method, path, body=None):
        status, data = self.request(method, path, json.dumps(body) if body is not None else None,
                                    {"Content-Type": "application/json"})
        return status, json.loads(data) if data else None

    def stored_events(self, members):
        """(member, started_at, session) of every record the members' histories hold, all
        pages. Raises AssertionError on a non-200 answer."""
        stored = set()
        for member in members:
            cursor = None
            while True:
                q = "limit=1000" + ("&cursor=" + cursor if cursor else "")
                status, page = self.json("GET", "/v1/members/%d/viewing?%s" % (member, q))
                if status != 200:
                    raise AssertionError("history of %d: %s %s" % (member, status, page))
                stored.update((r["member"], r["started_at"], r["session"])
                              for r in page["records"])
                cursor = page["next_cursor"]
                if cursor is None:
                    break
        return stored

    def live_objects(self, bucket):
        """Keys of the bucket's live (not deleted) objects, all pages."""
        keys = []
        after = None
        while True:
            q = "limit=1000" + ("&after=" + after if after else "")
            status, page = self.json("GET", "/v1/buckets/%s/objects?%s" % (bucket, q))
            if status != 200:
                raise AssertionError("list of %s: %s %s" % (bucket, status, page))
            keys.extend(o["key"] for o in page["objects"])
            after = page["next_after"]
            if after is None:
                return keys


def shim_env(shim, root, journal, fail_flag=None):
    """The environment of a process under the shim, journaling ROOT into JOURNAL."""
    env = dict(os.environ)
    env["LD_PRELOAD"] = shim
    env["STRATA_POWERLOSS_ROOT"] = root
    env["STRATA_POWERLOSS_JOURNAL"] = journal
    if fail_flag:
        env["STRATA_POWERLOSS_FAIL_FLAG"] = fail_flag
    return env


def baseline(root):
    """Every name under root with its inode and size: durable as it is (synced by a prior run)."""
    names = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            names[path] = ("%d:%d" % (st.st_dev, st.st_ino), "d" if name in dirnames else "f",
                           st.st_size)
    return names


def _parent(path):
    return os.path.dirname(path)


def cut_power(root, journal, base):
    """Rewrites root to the durable state. Returns a summary dict (names dropped, bytes cut)."""
    root = os.path.abspath(root)
    durable = {p: (ino, kind) for p, (ino, kind, _) in base.items()}  # path -> (inode, kind)
    synced = {ino: size for (ino, kind, size) in base.values() if kind == "f"}
    pending = {}  # directory -> [("add", path, inode, kind) | ("del", path)]
    kinds = {ino: kind for (ino, kind, _) in base.values()}

    def drop(path):
        # Removals are durable at once: the name and any pending add of it go.
        durable.pop(path, None)
        prefix = path + "/"
        for p in [p for p in durable if p.startswith(prefix)]:
            durable.pop(p)
        ops = pending.get(_parent(path), [])
        pending[_parent(path)] = [op for op in ops if op[1] != path]

    with open(journal, "r", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            op = line[0]
            if op == "C":
                _, ino, kind, path = line.split(" ", 3)
                kinds[ino] = kind
                if kind == "f":
                    synced[ino] = 0  # a new inode (numbers are reused): nothing durable yet
                pending.setdefault(_parent(path), []).append(("add", path, ino, kind))
            elif op == "R":
                _, ino, rest = line.split(" ", 2)
                old, new = rest.split("\t", 1)
                kind = kinds.get(ino, "f")
                drop(old)
                drop(new)  # a replaced target is gone at once
                pending.setdefault(_parent(new), []).append(("add", new, ino, kind))
            elif op == "U":
                drop(line[2:])
            elif op == "S":
                _, ino, size = line.split(" ")
                synced[ino] = int(size)
            elif op == "D":
                d = line[2:]
                for entry in pending.pop(d, []):
                    if entry[0] == "add":
                        _, path, ino, kind = entry
                        durable[path] = (ino, kind)

    # Where each inode lives now.
    now = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            now["%d:%d" % (st.st_dev, st.st_ino)] = path

    def reachable(path):
        p = _parent(path)
        while p != root and len(p) > len(root):
            if p not in durable:
                return False
            p = _parent(p)
        return True

    rebuilt = root + ".powerloss"
    shutil.rmtree(rebuilt, ignore_errors=True)
    os.makedirs(rebuilt)
    kept = dropped_names = cut_bytes = 0
    missing = []
    for path in sorted(durable):
        ino, kind = durable[path]
        if not reachable(path):
            continue
        target = rebuilt + path[len(root):]
        if kind == "d":
            os.makedirs(target, exist_ok=True)
            continue
        source = now.get(ino)
        if source is None:
            missing.append(path)  # its inode is gone (replaced or removed): nothing to keep
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        size = min(synced.get(ino, 0), os.path.getsize(source))
        with open(source, "rb") as src, open(target, "wb") as dst:
            remaining = size
            while remaining > 0:
                chunk = src.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                dst.write(chunk)
                remaining -= len(chunk)
        cut_bytes += os.path.getsize(source) - size
        kept += 1
    for path in now.values():
        if path not in durable or not reachable(path):
            dropped_names += 1
    shutil.rmtree(root)
    os.rename(rebuilt, root)
    return {"kept_files": kept, "dropped_names": dropped_names, "cut_bytes": cut_bytes,
            "missing": missing}

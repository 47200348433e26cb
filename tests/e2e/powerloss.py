"""What a power cut leaves of a data directory, from the journal of tests/tools/powerloss_shim.cc.

Use: snapshot = baseline(root) before starting the process under the shim (with
STRATA_POWERLOSS_ROOT=root and STRATA_POWERLOSS_JOURNAL=journal); kill -9 it; then
cut_power(root, journal, snapshot) rewrites root to what the disk would hold: only names made
durable by a directory fsync, each file cut to the size of its last fsync. The model is the
shim's (see its header): removals count as durable at once, nothing is resurrected.
"""
import os
import shutil


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

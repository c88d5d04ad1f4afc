#!/usr/bin/env python3
"""Runtime timings for scripts/bench-runtime.sh (runs inside the benchmark's namespaces).

    bench_runtime.py bundle BUNDLE_DIR ROOTFS          write a runc/crun bundle for /bin/true
    bench_runtime.py archive OUT.tar MB                write a docker-save archive, one MB-sized layer
    bench_runtime.py compare N [--block=B] NAME=CMD... run each CMD N times (+3 warm-ups), interleaved
                                                       in a new random order each round (so load
                                                       changes hit all alike); with B > 1, in
                                                       blocks of B+1 runs of one CMD whose first
                                                       is not counted; p50/p99 each, and the p50
                                                       of each phase of `timings` lines
    bench_runtime.py mem SANDBOXES_DIR                 shims' RSS and PSS (KB), mean per shim

CMD is split like a shell would; `{i}` in it becomes the iteration number (container IDs for
runc/crun). Each run must exit 0.
Prints `key value` lines.
"""
import hashlib
import io
import json
import os
import random
import shlex
import subprocess
import sys
import tarfile
import time


def pct(v, p):
    v = sorted(v)
    return v[round((len(v) - 1) * p)]


def bundle(bdir, rootfs):
    """`runc spec` defaults (namespaces, caps, masked paths, read-only root) running /bin/true."""
    os.makedirs(bdir, exist_ok=True)
    subprocess.run(["runc", "spec", "--bundle", bdir], check=True)
    path = os.path.join(bdir, "config.json")
    cfg = json.load(open(path))
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    cfg["root"] = {"path": os.path.abspath(rootfs), "readonly": True}
    cfg["hostname"] = "bench"
    json.dump(cfg, open(path, "w"), indent=1)


def archive(out, mb):
    """A docker-save archive whose single uncompressed layer holds MB of random data."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        data = os.urandom(mb << 20)
        ti = tarfile.TarInfo("data.bin")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    layer = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["/bin/true"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": [f"k1s.local/bench-{mb}mb:latest"],
                            "Layers": ["layer/layer.tar"]}]).encode()
    with tarfile.open(out, "w") as t:
        for name, b in [("manifest.json", manifest), (cfg_name, config), ("layer/layer.tar", layer)]:
            ti = tarfile.TarInfo(name)
            ti.size = len(b)
            t.addfile(ti, io.BytesIO(b))


def compare(n, cmds, block=1):
    lat = {name: [] for name, _ in cmds}
    phases = {name: {} for name, _ in cmds}
    # A new order each round, so that a change in the machine's load hits all alike. With
    # block > 1, each command runs block + 1 times in a row per round and the first of those
    # is not counted: each runtime is measured in the steady state its own runs leave the
    # kernel in. That matters on cgroup v1: moving a process into a cgroup by its pid waits
    # for an RCU grace period unless another such move came just before (runc and crun move
    # that way; k1s's processes move themselves, which waits for nothing), so interleaved
    # single runs charge runc and crun a grace period that their back-to-back runs share.
    order = random.Random(1)
    seq = 0
    rounds = -3 if block == 1 else 0
    while min(len(v) for v in lat.values()) < n:
        rnd = list(cmds)
        order.shuffle(rnd)
        for name, cmd in rnd:
            for j in range(block + 1 if block > 1 else 1):
                argv = [a.replace("{i}", str(seq)) for a in shlex.split(cmd)]
                seq += 1
                t0 = time.monotonic()
                r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                dt = (time.monotonic() - t0) * 1000
                if r.returncode != 0:
                    raise SystemExit(f"{name}: {' '.join(argv)} exited {r.returncode}: {r.stderr[-500:]!r}")
                if rounds < 0 or (block > 1 and j == 0) or len(lat[name]) >= n:
                    continue
                lat[name].append(dt)
                for line in r.stderr.decode(errors="replace").splitlines():
                    if line.startswith("timings "):
                        for kv in line.split()[1:]:
                            k, _, v = kv.partition("=")
                            phases[name].setdefault(k, []).append(float(v))
        rounds += 1
    for name, _ in cmds:
        print(f"{name}_p50_ms {pct(lat[name], 0.5):.1f}")
        print(f"{name}_p99_ms {pct(lat[name], 0.99):.1f}")
    for name, _ in cmds:
        if phases[name]:
            print(f"{name}_phases_p50_ms" + "".join(f" {k}={pct(v, 0.5):.1f}" for k, v in phases[name].items()))
    sys.stdout.flush()


def shim_memory(sandboxes):
    """(RSS, PSS) in kB of each sandbox's shim."""
    rss, pss = [], []
    for sb in os.listdir(sandboxes):
        try:
            pid = open(os.path.join(sandboxes, sb, "shim.pid")).read().strip()
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    r = int(line.split()[1])
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    p = int(line.split()[1])
            rss.append(r)
            pss.append(p)
        except (OSError, ValueError, UnboundLocalError):
            continue
    return rss, pss


def mem(sandboxes):
    """Shim memory right after start-up, then once idle: a shim drops the pages start-up left
    resident after 2 s without work, so this polls until the average stops shrinking."""
    rss, pss = shim_memory(sandboxes)
    print(f"shims {len(rss)}")
    if not rss:
        return
    print(f"shim_rss_after_start_kb {sum(rss) / len(rss):.0f}")
    start = time.monotonic()
    last = sum(rss)
    while time.monotonic() < start + 20:
        time.sleep(1)
        rss, pss = shim_memory(sandboxes)
        if not rss or (sum(rss) >= last and time.monotonic() > start + 3):
            break
        last = min(last, sum(rss))
    if rss:
        print(f"shim_rss_kb {sum(rss) / len(rss):.0f}")
        print(f"shim_rss_max_kb {max(rss)}")
        print(f"shim_pss_kb {sum(pss) / len(pss):.0f}")


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "bundle":
        bundle(sys.argv[2], sys.argv[3])
    elif what == "archive":
        archive(sys.argv[2], int(sys.argv[3]))
    elif what == "compare":
        args = sys.argv[3:]
        block = 1
        if args and args[0].startswith("--block="):
            block = int(args.pop(0).split("=", 1)[1])
        compare(int(sys.argv[2]), [a.split("=", 1) for a in args], block)
    elif what == "mem":
        mem(sys.argv[2])
    else:
        raise SystemExit(__doc__)

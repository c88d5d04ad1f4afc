#!/usr/bin/env python3
"""Pod start timing against a running k1s (used by scripts/bench-pods.sh).

    bench_pods.py KUBECONFIG N IMAGE

Prints `key value` lines: create->Running latency p50/p99 over N pods created one at a time
(from just before each create until a watch, open since before the first create, reports
the pod's phase Running), then the time for N pods created at once (16 clients) to be all
Running. It talks HTTPS to the API server directly, so no kubectl start-up time is counted.
Pods are deleted afterwards.

With K1S_BENCH_BETWEEN set, that shell command (bench-pods.sh: one timed `podman kube play`)
runs before the first sequential pod and after every tenth, outside the timed part.
"""
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time

cfg = open(sys.argv[1]).read()
N = int(sys.argv[2])
IMAGE = sys.argv[3]
server = re.search(r"server:\s*https://([^:\s]+):(\d+)", cfg)
token = re.search(r"token:\s*(\S+)", cfg).group(1)
HOST, PORT = server.group(1), int(server.group(2))
CTX = ssl._create_unverified_context()  # loopback only; the benchmark does not test TLS
HDR = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
BASE = "/api/v1/namespaces/default/pods"


def conn():
    return http.client.HTTPSConnection(HOST, PORT, context=CTX, timeout=120)


def pod(name):
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "k1s"}},
        "spec": {"terminationGracePeriodSeconds": 1, "automountServiceAccountToken": False,
                 "containers": [{"name": "c", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                                 "command": ["sleep", "3600"]}]},
    })


def create(c, name):
    c.request("POST", BASE, pod(name), HDR)
    r = c.getresponse()
    body = r.read()
    if r.status != 201:
        raise SystemExit(f"create {name}: {r.status} {body[:200]!r}")


class Watcher(threading.Thread):
    """One watch on the bench pods from resource version `rv`, opened before the first create
    and kept for both parts: records when each pod is first seen Running. (A watch per pod, opened with each
    create, also timed the client's TLS handshake and LIST, done on the same 2 cores: about
    1 ms more per pod.)"""

    def __init__(self, rv):
        super().__init__(daemon=True)
        self.rv = rv
        self.running = {}
        self.ended = False
        self.cond = threading.Condition()

    def run(self):
        c = conn()
        c.request("GET", BASE + "?watch=1&labelSelector=bench%3Dk1s&resourceVersion=" + self.rv,
                  headers=HDR)
        r = c.getresponse()
        while True:
            line = r.readline()
            if not line:
                with self.cond:
                    self.ended = True
                    self.cond.notify_all()
                return
            obj = json.loads(line).get("object", {})
            if obj.get("status", {}).get("phase") == "Running":
                with self.cond:
                    self.running.setdefault(obj["metadata"]["name"], time.monotonic())
                    self.cond.notify_all()

    def wait(self, name):
        with self.cond:
            if not self.cond.wait_for(lambda: name in self.running or self.ended, timeout=120):
                raise SystemExit(f"{name} not Running within 120 s")
            if name not in self.running:
                raise SystemExit("watch ended early")
            return self.running[name]


def list_rv():
    c = conn()
    c.request("GET", BASE + "?limit=1", headers=HDR)
    rv = json.loads(c.getresponse().read())["metadata"]["resourceVersion"]
    c.close()
    return rv


def delete_all():
    c = conn()
    c.request("DELETE", BASE + "?labelSelector=bench%3Dk1s", headers=HDR)
    c.getresponse().read()
    # Wait until they are gone.
    while True:
        c.request("GET", BASE + "?labelSelector=bench%3Dk1s", headers=HDR)
        if not json.loads(c.getresponse().read())["items"]:
            break
        time.sleep(0.2)
    c.close()


def pct(v, p):
    v = sorted(v)
    return v[round((len(v) - 1) * p)]


BETWEEN = os.environ.get("K1S_BENCH_BETWEEN", "")


def between():
    if BETWEEN:
        subprocess.run(BETWEEN, shell=True, check=True, stdout=subprocess.DEVNULL)


# One at a time.
lat = []
c = conn()
watcher = Watcher(list_rv())
watcher.start()
for i in range(N):
    if i % 10 == 0:
        between()
    name = f"seq-{i}"
    t0 = time.monotonic()
    create(c, name)
    lat.append((watcher.wait(name) - t0) * 1000)
between()
print(f"sequential_pods {N}")
print(f"create_to_running_p50_ms {pct(lat, 0.5):.1f}")
print(f"create_to_running_p99_ms {pct(lat, 0.99):.1f}")
print(f"create_to_running_max_ms {max(lat):.1f}")
sys.stdout.flush()
delete_all()

# All at once.
names = [f"par-{i}" for i in range(N)]
t0 = time.monotonic()


def worker(k):
    cc = conn()
    for n in names[k::16]:
        create(cc, n)
    cc.close()


ws = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
for w in ws:
    w.start()
for w in ws:
    w.join()
created = time.monotonic()
all_running = max(watcher.wait(n) for n in names)
print(f"parallel_pods {N}")
print(f"parallel_created_s {created - t0:.2f}")
print(f"parallel_all_running_s {all_running - t0:.2f}")

#!/usr/bin/env bash
# Builds a minimal busybox image from Debian's static /bin/busybox, with no container daemon.
#
#   scripts/make-busybox-image.sh OUT.tar [NAME:TAG]      (default k1s.local/busybox:latest)
#
# Rootfs: /bin/busybox, a symlink in /bin for every applet of `busybox --list`, /etc/passwd
# (root, nobody 65534), /etc/group, /tmp (1777), /root (0700); one gzip layer.
#
# OUT.tar is at once a `docker save` archive (manifest.json with Config/RepoTags/Layers) and an
# OCI image layout (oci-layout, index.json, blobs/sha256/...), sharing the same blobs, as
# `docker save` writes since Docker 25. index.json names the image with both
# `io.containerd.image.name` and `org.opencontainers.image.ref.name` (full NAME:TAG), so
# `skopeo ... oci-archive:OUT.tar:NAME:TAG` and `docker-archive:OUT.tar` both work.
#
# Deterministic: fixed mtimes (SOURCE_DATE_EPOCH, default 0), uid/gid 0, sorted entries, gzip
# without name or time; the same busybox binary gives the same digests. The manifest digest is
# printed on stdout.
#
# Environment: BUSYBOX (default /bin/busybox), SOURCE_DATE_EPOCH.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || "$1" == -h || "$1" == --help ]]; then
    echo "usage: $0 OUT.tar [NAME:TAG]" >&2
    exit 2
fi
OUT="$1"
NAME="${2:-k1s.local/busybox:latest}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"

if [[ ! -x "$BUSYBOX" ]]; then
    echo "make-busybox-image: $BUSYBOX missing: apt-get install busybox-static" >&2
    exit 1
fi
if ! applets="$("$BUSYBOX" --list 2>/dev/null)" || [[ -z "$applets" ]]; then
    echo "make-busybox-image: $BUSYBOX --list failed" >&2
    exit 1
fi

mkdir -p "$(dirname "$OUT")"
python3 - "$OUT" "$NAME" "$BUSYBOX" "${SOURCE_DATE_EPOCH:-0}" "$(uname -m)" <<'PY'
import gzip, hashlib, io, json, os, subprocess, sys, tarfile, time

out, name, busybox, epoch, machine = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
if ":" not in name.rsplit("/", 1)[-1]:
    name += ":latest"
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
        "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)
created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def info(path, kind=tarfile.REGTYPE, mode=0o644, size=0, link=""):
    ti = tarfile.TarInfo(path)
    ti.type, ti.mode, ti.size, ti.linkname = kind, mode, size, link
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = epoch, 0, 0, "", ""
    return ti


def tar_bytes(entries):
    """entries: (TarInfo, bytes|None), written sorted by path."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for ti, data in sorted(entries, key=lambda e: e[0].name):
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def layer():
    with open(busybox, "rb") as f:
        bb = f.read()
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout.split()
    applets = sorted({a for a in applets if a and "/" not in a and a != "busybox"})
    files = {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "etc/group": b"root:x:0:\nnobody:x:65534:\n",
    }
    e = [
        (info("bin/", tarfile.DIRTYPE, 0o755), None),
        (info("bin/busybox", mode=0o755, size=len(bb)), bb),
        (info("etc/", tarfile.DIRTYPE, 0o755), None),
        (info("root/", tarfile.DIRTYPE, 0o700), None),
        (info("tmp/", tarfile.DIRTYPE, 0o1777), None),
    ]
    e += [(info(p, size=len(d)), d) for p, d in files.items()]
    e += [(info("bin/" + a, tarfile.SYMTYPE, 0o777, link="busybox"), None) for a in applets]
    return tar_bytes(e), len(applets)


def digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def js(o):
    return json.dumps(o, indent=None, separators=(",", ":"), sort_keys=True).encode()


raw, n_applets = layer()
gz = io.BytesIO()
with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=9) as g:
    g.write(raw)
gz = gz.getvalue()

config = js({
    "architecture": ARCH,
    "os": "linux",
    "created": created,
    "config": {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"],
    },
    "rootfs": {"type": "layers", "diff_ids": [digest(raw)]},
    "history": [{"created": created, "created_by": f"scripts/make-busybox-image.sh ({n_applets} applets)"}],
})
manifest = js({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(gz), "size": len(gz)}],
})
index = js({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest(manifest),
        "size": len(manifest),
        "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name},
    }],
})
blob = lambda b: "blobs/sha256/" + digest(b).split(":", 1)[1]
docker_manifest = js([{"Config": blob(config), "RepoTags": [name], "Layers": [blob(gz)]}])

entries = [
    (info("blobs/", tarfile.DIRTYPE, 0o755), None),
    (info("blobs/sha256/", tarfile.DIRTYPE, 0o755), None),
    (info("oci-layout", size=0), js({"imageLayoutVersion": "1.0.0"})),
    (info("index.json"), index),
    (info("manifest.json"), docker_manifest),
]
entries += [(info(blob(b)), b) for b in (config, manifest, gz)]
for ti, data in entries:
    ti.size = len(data) if data is not None else 0
tmp = out + ".tmp"
with open(tmp, "wb") as f:
    f.write(tar_bytes(entries))
os.replace(tmp, out)
print(digest(manifest))
PY

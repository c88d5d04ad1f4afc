#!/usr/bin/env python3
"""Write the field tables in schema/*.rs from upstream Kubernetes sources.

Usage: gen_schema.py <kubernetes/api git dir> <kubernetes/apimachinery git dir> [out dir]

Reads generated.proto (field numbers, wire types, message types) and types.go (JSON names,
omitempty, pointer-ness, inlined embeddings) at tag REV of both repositories, walks the message
graph from ROOTS, and writes one Rust file per module plus kinds.rs (the top-level table).
Status messages are left out: request bodies we decode never need them.
"""
import collections, os, re, subprocess, sys

REV = "v0.35.7"
API_GROUPS = {  # proto package -> (repo, dir, rust module, apiVersion)
    "k8s.io.api.core.v1": ("api", "core/v1", "core", "v1"),
    "k8s.io.api.apps.v1": ("api", "apps/v1", "apps", "apps/v1"),
    "k8s.io.api.batch.v1": ("api", "batch/v1", "batch", "batch/v1"),
    "k8s.io.api.rbac.v1": ("api", "rbac/v1", "rbac", "rbac.authorization.k8s.io/v1"),
    "k8s.io.api.autoscaling.v1": ("api", "autoscaling/v1", "autoscaling_v1", "autoscaling/v1"),
    "k8s.io.api.autoscaling.v2": ("api", "autoscaling/v2", "autoscaling_v2", "autoscaling/v2"),
    "k8s.io.api.authorization.v1": ("api", "authorization/v1", "authorization", "authorization.k8s.io/v1"),
    "k8s.io.api.authentication.v1": ("api", "authentication/v1", "authentication", "authentication.k8s.io/v1"),
    "k8s.io.api.scheduling.v1": ("api", "scheduling/v1", "scheduling", "scheduling.k8s.io/v1"),
    "k8s.io.api.policy.v1": ("api", "policy/v1", "policy", "policy/v1"),
    "k8s.io.api.networking.v1": ("api", "networking/v1", "networking", "networking.k8s.io/v1"),
    "k8s.io.api.coordination.v1": ("api", "coordination/v1", "coordination", "coordination.k8s.io/v1"),
    "k8s.io.apimachinery.pkg.apis.meta.v1": ("apimachinery", "pkg/apis/meta/v1", "meta", ""),
    "k8s.io.apimachinery.pkg.runtime": ("apimachinery", "pkg/runtime", None, None),
    "k8s.io.apimachinery.pkg.util.intstr": ("apimachinery", "pkg/util/intstr", None, None),
    "k8s.io.apimachinery.pkg.api.resource": ("apimachinery", "pkg/api/resource", None, None),
}
ROOTS = """core.v1: Pod Service ConfigMap Secret Namespace ServiceAccount ResourceQuota Event
  core.v1: PersistentVolumeClaim Binding Endpoints LimitRange
  apps.v1: Deployment StatefulSet DaemonSet ReplicaSet ControllerRevision
  batch.v1: Job CronJob
  rbac.v1: Role ClusterRole RoleBinding ClusterRoleBinding
  autoscaling.v1: HorizontalPodAutoscaler Scale
  autoscaling.v2: HorizontalPodAutoscaler
  authorization.v1: SelfSubjectAccessReview SelfSubjectRulesReview
  authentication.v1: TokenRequest SelfSubjectReview TokenReview
  scheduling.v1: PriorityClass
  policy.v1: PodDisruptionBudget Eviction
  networking.v1: Ingress
  coordination.v1: Lease
  meta: DeleteOptions"""
# Messages with their own JSON form (decoded by code, not by table).
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "IntOrStr",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "Json",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "Json",
}
SCALAR = {"string": "Str", "bytes": "Bytes", "int32": "I32", "int64": "I64", "bool": "Bool"}
HEADER = """//! {what}: field tables for `{pkg}`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery {rev}.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{{Inline as I, Keep as K, List as L, Map as M, Omit as O}};
#[allow(unused_imports)]
use super::Ty::*;
use super::{{Message, F}};
"""


def git_show(repo, path):
    return subprocess.run(["git", "-C", repo, "show", f"{REV}:{path}"], capture_output=True,
                          text=True, check=True).stdout


def git_ls(repo, path):
    out = subprocess.run(["git", "-C", repo, "ls-tree", "--name-only", REV, path + "/"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def parse_protos(repos):
    msgs = {}
    for pkg, (repo, d, _, _) in API_GROUPS.items():
        cur = None
        for line in git_show(repos[repo], d + "/generated.proto").splitlines():
            m = re.match(r"^message (\w+) \{", line)
            if m:
                cur = pkg + "." + m.group(1)
                msgs[cur] = []
                continue
            if line.startswith("}"):
                cur = None
                continue
            m = re.match(r"^\s*(optional|repeated) ([\w.]+) (\w+) = (\d+);", line)
            m2 = re.match(r"^\s*map<string, ?([\w.]+)> (\w+) = (\d+);", line)
            if cur and m:
                label, ty, name, num = m.groups()
            elif cur and m2:
                (ty, name, num), label = m2.groups(), "map"
            else:
                continue
            if ty not in SCALAR and not ty.startswith("."):
                ty = "." + pkg + "." + ty
            msgs[cur].append(dict(num=int(num), label=label, ty=ty.lstrip("."), name=name))
    return msgs


def parse_go(repos):
    """struct -> field number -> json name, omitempty, pointer, inline (from the struct tags)."""
    out = {}
    for pkg, (repo, d, _, _) in API_GROUPS.items():
        for f in git_ls(repos[repo], d):
            if not f.endswith(".go") or f.endswith("_test.go") or "generated" in f:
                continue
            cur = None
            for line in git_show(repos[repo], f).splitlines():
                m = re.match(r"^type (\w+) struct \{", line)
                if m:
                    cur = out.setdefault(pkg + "." + m.group(1), {})
                    continue
                if line.startswith("}"):
                    cur = None
                m = re.match(r"^\s*(?:(\w+)\s+)?([^\s`]+)\s+`(.*)`", line)
                pm = m and re.search(r'protobuf:"(\w+),(\d+)[,"]', m.group(3))
                if cur is None or not pm:
                    continue
                jm = re.search(r'json:"([^"]*)"', m.group(3))
                parts = (jm.group(1) if jm else "").split(",")
                cur[int(pm.group(2))] = dict(
                    json=parts[0], omit="omitempty" in parts[1:], ptr=m.group(2).startswith("*"),
                    inline="inline" in parts[1:] or parts[0] == "", gty=m.group(2))
    return out


def skipped(name):
    short = name.rsplit(".", 1)[-1]
    return name not in SCALAR and short.endswith("Status") or short.endswith("Condition")


def closure(protos, roots):
    seen = []

    def walk(n):
        if n in seen or n in SPECIAL or skipped(n):
            return
        seen.append(n)
        for f in protos[n]:
            if f["ty"] not in SCALAR:
                walk(f["ty"])
    for r in roots:
        walk(r)
    return seen


def const_name(n):
    s = n.rsplit(".", 1)[1]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", s).upper()


def main():
    repos = {"api": sys.argv[1], "apimachinery": sys.argv[2]}
    out_dir = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(__file__), "schema")
    protos, go = parse_protos(repos), parse_go(repos)
    roots = []
    for line in ROOTS.splitlines():
        grp, kinds = line.split(":")
        pkg = "k8s.io.apimachinery.pkg.apis.meta.v1" if grp.strip() == "meta" else "k8s.io.api." + grp.strip()
        roots += [pkg + "." + k for k in kinds.split()]
    pod = closure(protos, ["k8s.io.api.core.v1.PodSpec"])
    vol = closure(protos, ["k8s.io.api.core.v1.Volume", "k8s.io.api.core.v1.PersistentVolumeClaimSpec"])

    def module(n):
        m = API_GROUPS[n.rsplit(".", 1)[0]][2]
        if m == "core" and n in vol:
            return "volume"
        return "pod" if m == "core" and n in pod else m

    files = collections.defaultdict(list)
    for n in closure(protos, roots):
        fields = []
        for f in sorted(protos[n], key=lambda f: f["num"]):
            g = go[n].get(f["num"])
            t = f["ty"]
            if g is None or g["json"] == "-" or skipped(t):
                continue
            if t in SCALAR:
                ty = SCALAR[t]
            elif t in SPECIAL:
                ty = SPECIAL[t]
            else:
                ref = const_name(t) if module(t) == module(n) else f"super::{module(t)}::{const_name(t)}"
                ty = f"Msg(&{ref})"
            if g["inline"]:
                kind = "I"
            elif f["label"] == "repeated" and g["gty"] != "[]byte":
                kind = "L"
            elif f["label"] == "map":
                kind = "M"
            elif g["ptr"] or (t in SCALAR and t != "bytes" and not g["omit"]):
                kind = "K"
            else:
                kind = "O"
            fields.append(f'F({f["num"]}, "{g["json"] or f["name"]}", {kind}, {ty})')
        files[module(n)].append((n, fields))
    for mod, msgs in files.items():
        pkg = next(p for p, v in API_GROUPS.items() if v[2] == mod) if mod not in ("pod", "volume") \
            else f"k8s.io.api.core.v1 ({'pods' if mod == 'pod' else 'volumes'})"
        lines = [HEADER.format(what=mod, pkg=pkg, rev=REV).rstrip("\n")]
        for n, fields in msgs:
            lines.append(f'\npub static {const_name(n)}: Message = Message {{ name: "{n.rsplit(".", 1)[1]}", fields: &[')
            cur = "   "
            for fl in fields:
                if len(cur) + len(fl) + 2 > 100:
                    lines.append(cur)
                    cur = "   "
                cur += " " + fl + ","
            if cur.strip():
                lines.append(cur)
            lines.append("]};")
        with open(os.path.join(out_dir, mod + ".rs"), "w") as fh:
            fh.write("\n".join(lines) + "\n")
    kinds = [f"//! The top-level kinds we decode, with their messages (kubernetes/api {REV}).", "//!",
             "//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.",
             "", "use super::Message;", "",
             "/// (apiVersion, kind, message); an empty apiVersion matches any (meta/v1 option kinds).",
             "pub static KINDS: &[(&str, &str, &Message)] = &["]
    for r in roots:
        pkg, kind = r.rsplit(".", 1)
        kinds.append(f'    ("{API_GROUPS[pkg][3]}", "{kind}", &super::{module(r)}::{const_name(r)}),')
    kinds.append("];")
    with open(os.path.join(out_dir, "kinds.rs"), "w") as fh:
        fh.write("\n".join(kinds) + "\n")


if __name__ == "__main__":
    main()

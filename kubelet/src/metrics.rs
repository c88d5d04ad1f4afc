//! The kubelet's Prometheus metrics (text exposition format 0.0.4), served at `/metrics` on
//! its endpoint and reached through the API server as `nodes/<node>/proxy/metrics`.
//!
//! Counters are kept here as they happen (probe results, evictions); gauges about pods and
//! containers are computed from the runtime when scraped, so an idle node does no work for
//! metrics. Names and labels follow upstream's kubelet (`kubelet_running_pods`,
//! `prober_probe_total`, `kubelet_evictions`, ...) and the Prometheus process collector.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

type Labels = Vec<(&'static str, String)>;

/// Counter families: name -> label set -> value.
static COUNTERS: Mutex<BTreeMap<&'static str, BTreeMap<Labels, u64>>> = Mutex::new(BTreeMap::new());

pub const PROBE_TOTAL: &str = "prober_probe_total";
pub const EVICTIONS: &str = "kubelet_evictions";

fn help(name: &str) -> &'static str {
    match name {
        PROBE_TOTAL => {
            "Cumulative number of a liveness, readiness or startup probe for a container by result."
        }
        EVICTIONS => "Cumulative number of pod evictions by eviction signal",
        _ => "",
    }
}

/// Adds one to counter `name` with `labels`.
pub fn inc(name: &'static str, labels: &[(&'static str, &str)]) {
    let key: Labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
    if let Ok(mut m) = COUNTERS.lock() {
        *m.entry(name).or_default().entry(key).or_default() += 1;
    }
}

/// Forgets the counters of a pod that is gone (upstream drops a removed pod's series too).
pub fn forget_pod(uid: &str) {
    if let Ok(mut m) = COUNTERS.lock() {
        for series in m.values_mut() {
            series.retain(|labels, _| !labels.iter().any(|(k, v)| *k == "pod_uid" && v == uid));
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "\\\"")
}

fn sample(out: &mut String, name: &str, labels: &[(&str, String)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Gauges computed from the runtime at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Pods with a ready sandbox.
    pub running_pods: u64,
    /// Containers by state: created, running, exited, unknown.
    pub containers: BTreeMap<&'static str, u64>,
    /// (namespace, pod, container) -> restarts of the container's latest instance.
    pub restarts: BTreeMap<(String, String, String), u64>,
}

/// The whole exposition.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "kubelet_running_pods",
        "gauge",
        "Number of pods that have a running pod sandbox",
    );
    sample(&mut out, "kubelet_running_pods", &[], s.running_pods as f64);
    header(
        &mut out,
        "kubelet_running_containers",
        "gauge",
        "Number of containers currently running",
    );
    for (state, n) in &s.containers {
        sample(
            &mut out,
            "kubelet_running_containers",
            &[("container_state", state.to_string())],
            *n as f64,
        );
    }
    header(
        &mut out,
        "kubelet_container_restarts",
        "gauge",
        "Number of times the container was restarted by the kubelet (the status restartCount)",
    );
    for ((ns, pod, c), n) in &s.restarts {
        let labels = [
            ("namespace", ns.clone()),
            ("pod", pod.clone()),
            ("container", c.clone()),
        ];
        sample(&mut out, "kubelet_container_restarts", &labels, *n as f64);
    }
    let counters = COUNTERS.lock().map(|m| m.clone()).unwrap_or_default();
    for name in [PROBE_TOTAL, EVICTIONS] {
        header(&mut out, name, "counter", help(name));
        for (labels, v) in counters.get(name).into_iter().flatten() {
            sample(&mut out, name, labels, *v as f64);
        }
    }
    process(&mut out);
    out
}

/// The standard process collector's metrics, from /proc/self.
fn process(out: &mut String) {
    let page = 4096.0;
    let ticks = 100.0; // USER_HZ
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command (which may contain spaces) start at field 3 (state).
    let f: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| {
        f.get(n - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let cpu = (field(14) + field(15)) / ticks;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    let rows: [(&str, &str, &str, f64); 6] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            cpu,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            field(24) * page,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            field(23),
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            boot + field(22) / ticks,
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds as f64,
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            max_fds,
        ),
    ];
    for (name, kind, help, v) in rows {
        header(out, name, kind, help);
        sample(out, name, &[], v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        inc(EVICTIONS, &[("eviction_signal", "memory.available")]);
        inc(
            PROBE_TOTAL,
            &[
                ("probe_type", "Readiness"),
                ("result", "successful"),
                ("container", "c"),
                ("pod", "p\"q"),
                ("namespace", "n"),
                ("pod_uid", "u1"),
            ],
        );
        let mut s = Snapshot {
            running_pods: 2,
            ..Default::default()
        };
        s.containers.insert("running", 3);
        s.restarts.insert(("n".into(), "p".into(), "c".into()), 4);
        let text = render(&s);
        assert!(
            text.contains("# TYPE kubelet_running_pods gauge\nkubelet_running_pods 2\n"),
            "{text}"
        );
        assert!(text.contains("kubelet_running_containers{container_state=\"running\"} 3\n"));
        assert!(text
            .contains("kubelet_container_restarts{namespace=\"n\",pod=\"p\",container=\"c\"} 4\n"));
        assert!(text.contains("kubelet_evictions{eviction_signal=\"memory.available\"} 1\n"));
        assert!(text.contains("prober_probe_total{probe_type=\"Readiness\",result=\"successful\",container=\"c\",pod=\"p\\\"q\",namespace=\"n\",pod_uid=\"u1\"} 1\n"));
        let rss = text
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        assert!(rss > 1e6, "{rss}");
        forget_pod("u1");
        assert!(!render(&s).contains("pod_uid=\"u1\""));
    }
}

//! CrashLoopBackOff: when a container that exited may start again. Like upstream's
//! `flowcontrol.Backoff` keyed per container: the first restart is immediate and records the
//! base delay; each later exit that comes within the delay (measured from the exit's
//! `finishedAt`) waits it out and doubles it up to the cap; an instance that ran longer than
//! the reset period starts the sequence over. `maybe_restart` applies it to a pod's container
//! (BackOff event, CrashLoopBackOff waiting state); the start itself is `container_start`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container as KContainer, Pod};
use k8s_openapi::jiff::Timestamp;

use crate::cri::{Container, RunState, Sandbox};
use crate::sync_pod::{pod_ref, PodState, Waiting};

/// Delays of restarts per container name.
#[derive(Debug, Clone)]
pub struct RestartBackoff {
    base: Duration,
    max: Duration,
    reset: Duration,
    entries: HashMap<String, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    delay: Duration,
    /// When the last restart was allowed.
    last_update: Timestamp,
}

/// `b - a`, zero when negative.
fn since(a: Timestamp, b: Timestamp) -> Duration {
    let ns = b.as_nanosecond() - a.as_nanosecond();
    Duration::from_nanos(ns.clamp(0, u64::MAX as i128) as u64)
}

impl RestartBackoff {
    pub fn new(base: Duration, max: Duration, reset: Duration) -> Self {
        RestartBackoff {
            base,
            max,
            reset,
            entries: HashMap::new(),
        }
    }

    /// An instance that finished more than `reset` after the last restart ran long enough to
    /// be considered stable: its exit starts over.
    fn expired(&self, e: &Entry, finished: Timestamp) -> bool {
        since(e.last_update, finished) > self.reset
    }

    /// How long a restart of `key`, whose last instance finished at `finished`, must still
    /// wait at `now`; None when it may start.
    pub fn remaining(&self, key: &str, finished: Timestamp, now: Timestamp) -> Option<Duration> {
        let e = self.entries.get(key)?;
        if self.expired(e, finished) {
            return None;
        }
        e.delay
            .checked_sub(since(finished, now))
            .filter(|d| !d.is_zero())
    }

    /// Record a restart at `now` of an instance that finished at `finished`: the next exit
    /// waits the base delay, or twice the last one (capped).
    pub fn next(&mut self, key: &str, finished: Timestamp, now: Timestamp) {
        let delay = match self.entries.get(key) {
            Some(e) if !self.expired(e, finished) => (e.delay * 2).min(self.max),
            _ => self.base.min(self.max),
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                delay,
                last_update: now,
            },
        );
    }

    /// The current delay of `key` (what the CrashLoopBackOff message shows).
    pub fn delay(&self, key: &str) -> Duration {
        self.entries.get(key).map_or(self.base, |e| e.delay)
    }
}

/// A duration the way Go prints it: `500ms`, `10s`, `1m20s`, `5m0s`, `1h0m0s`.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return if ms == 0 {
            "0s".into()
        } else {
            format!("{ms}ms")
        };
    }
    let secs = d.as_secs_f64() % 60.0;
    let secs = if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs() % 60)
    } else {
        format!("{}s", (secs * 1000.0).round() / 1000.0)
    };
    let (m, h) = ((d.as_secs() / 60) % 60, d.as_secs() / 3600);
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

impl PodState {
    /// Restart `c`, whose latest instance `cur` exited, unless it is in back-off: then
    /// record a BackOff event and the CrashLoopBackOff waiting state and return how long to
    /// wait.
    pub(crate) async fn maybe_restart(
        &mut self,
        pod: &Pod,
        sb: &Sandbox,
        c: &KContainer,
        cur: Option<&Container>,
        field: &str,
    ) -> Option<Duration> {
        let cur = cur?;
        let RunState::Exited { finished_at, .. } = &cur.state else {
            return None;
        };
        let now = Timestamp::now();
        if let Some(left) = self.backoff.remaining(&c.name, *finished_at, now) {
            let pod_ref = pod_ref(pod);
            let msg = format!(
                "Back-off restarting failed container {} in pod {pod_ref}",
                c.name
            );
            self.recorder(pod)
                .event_for("Warning", "BackOff", &msg, field)
                .await;
            let delay = self.backoff.delay(&c.name);
            self.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: format!(
                        "back-off {} restarting failed container={} pod={pod_ref}",
                        go_duration(delay),
                        c.name
                    ),
                    retry_at: Instant::now() + left,
                    delay,
                },
            );
            return Some(left);
        }
        self.backoff.next(&c.name, *finished_at, now);
        if self
            .waiting
            .get(&c.name)
            .is_some_and(|w| w.reason == "CrashLoopBackOff")
        {
            self.waiting.remove(&c.name);
        }
        self.start(pod, sb, c, cur.attempt + 1).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_700_000_000_000 + ms).expect("valid time")
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Simulates a container that exits `ran` after each start, restarted as soon as allowed;
    /// returns the waits between an exit and the next start.
    fn waits(b: &mut RestartBackoff, ran: Duration, n: usize) -> Vec<Duration> {
        let mut t = at(0);
        let mut out = Vec::new();
        for _ in 0..n {
            let finished = t.checked_add(ran).expect("in range");
            let wait = b.remaining("c", finished, finished).unwrap_or_default();
            let start = finished.checked_add(wait).expect("in range");
            assert_eq!(b.remaining("c", finished, start), None);
            b.next("c", finished, start);
            out.push(wait);
            t = start;
        }
        out
    }

    #[test]
    fn first_restart_is_immediate_then_doubles_to_the_cap() {
        let mut b = RestartBackoff::new(secs(10), secs(300), secs(600));
        let got = waits(&mut b, Duration::from_millis(5), 8);
        let want = [0, 10, 20, 40, 80, 160, 300, 300].map(secs);
        assert_eq!(got, want);
    }

    #[test]
    fn an_instance_that_ran_past_the_reset_period_starts_over() {
        let mut b = RestartBackoff::new(secs(1), secs(4), secs(8));
        assert_eq!(
            waits(&mut b, Duration::from_millis(1), 4),
            [0, 1, 2, 4].map(secs)
        );
        // Ran 9 s (> 8 s since its start): restarted at once, the delay is the base again.
        let start = at(100_000);
        b.next("c", start, start);
        let finished = at(109_000);
        assert_eq!(b.remaining("c", finished, finished), None);
        b.next("c", finished, finished);
        assert_eq!(b.delay("c"), secs(1));
    }

    #[test]
    fn remaining_counts_from_the_exit() {
        let mut b = RestartBackoff::new(secs(10), secs(300), secs(600));
        b.next("c", at(0), at(0));
        assert_eq!(b.remaining("c", at(1000), at(4000)), Some(secs(7)));
        assert_eq!(b.remaining("c", at(1000), at(11_000)), None);
        assert_eq!(b.remaining("other", at(1000), at(1000)), None);
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(secs(10)), "10s");
        assert_eq!(go_duration(secs(300)), "5m0s");
        assert_eq!(go_duration(secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(secs(3600)), "1h0m0s");
    }
}

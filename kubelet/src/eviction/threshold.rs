//! Eviction signals and hard thresholds as upstream's kubelet spells them
//! (`--eviction-hard=memory.available<100Mi,nodefs.available<10%`), and the quantities the
//! messages print.

use std::fmt;

use crate::container_config::parse_quantity;

/// What the eviction manager observes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    MemoryAvailable,
    NodeFsAvailable,
    NodeFsInodesFree,
    ImageFsAvailable,
    ImageFsInodesFree,
}

impl Signal {
    pub const ALL: [Signal; 5] = [
        Signal::MemoryAvailable,
        Signal::NodeFsAvailable,
        Signal::NodeFsInodesFree,
        Signal::ImageFsAvailable,
        Signal::ImageFsInodesFree,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::ImageFsInodesFree => "imagefs.inodesFree",
        }
    }

    /// The resource the node is low on (upstream's `signalToResource`).
    pub fn resource(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory",
            Signal::NodeFsAvailable | Signal::ImageFsAvailable => "ephemeral-storage",
            Signal::NodeFsInodesFree | Signal::ImageFsInodesFree => "inodes",
        }
    }

    /// Memory signals raise MemoryPressure, the others DiskPressure.
    pub fn is_memory(self) -> bool {
        self == Signal::MemoryAvailable
    }

    fn parse(s: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|x| x.name() == s)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A threshold's value: a quantity, or a percentage of the capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Quantity(u64),
    Percentage(f64),
}

/// `signal < value`: met when the available amount is below the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub signal: Signal,
    pub value: Value,
}

impl Threshold {
    /// The value in units of the signal for a resource of `capacity`.
    pub fn quantity(&self, capacity: u64) -> u64 {
        match self.value {
            Value::Quantity(q) => q,
            Value::Percentage(p) => (capacity as f64 * p) as u64,
        }
    }

    pub fn met(&self, available: u64, capacity: u64) -> bool {
        available < self.quantity(capacity)
    }
}

/// Upstream's default `evictionHard`.
pub const DEFAULT_HARD: &str =
    "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%,imagefs.inodesFree<5%";

/// Parses `--eviction-hard`: comma-separated `signal<value`; an empty string means none.
/// Like upstream, a given list replaces the defaults entirely.
pub fn parse_hard(s: &str) -> Result<Vec<Threshold>, String> {
    let mut out: Vec<Threshold> = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, value) = item
            .split_once('<')
            .ok_or_else(|| format!("invalid eviction threshold {item:?}: expected signal<value"))?;
        let signal = Signal::parse(name.trim())
            .ok_or_else(|| format!("unsupported eviction signal {:?}", name.trim()))?;
        if out.iter().any(|t| t.signal == signal) {
            return Err(format!("duplicate eviction threshold for signal {signal}"));
        }
        let value = value.trim();
        let value = if let Some(p) = value.strip_suffix('%') {
            let p: f64 = p
                .parse()
                .map_err(|_| format!("invalid percentage {value:?} for {signal}"))?;
            if !(0.0..=100.0).contains(&p) {
                return Err(format!(
                    "eviction percentage {value} for {signal} must be between 0% and 100%"
                ));
            }
            Value::Percentage(p / 100.0)
        } else {
            let q = parse_quantity(value)
                .filter(|q| *q >= 0.0)
                .ok_or_else(|| format!("invalid quantity {value:?} for {signal}"))?;
            Value::Quantity(q as u64)
        };
        out.push(Threshold { signal, value });
    }
    Ok(out)
}

/// A byte count the way `resource.Quantity` prints a BinarySI value: the largest binary
/// suffix that divides it exactly, else plain.
pub fn format_bytes(v: u64) -> String {
    if v == 0 {
        return "0".into();
    }
    for (suffix, shift) in [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ] {
        if v.is_multiple_of(1u64 << shift) {
            return format!("{}{suffix}", v >> shift);
        }
    }
    v.to_string()
}

/// An amount of `signal`'s resource as upstream prints it.
pub fn format_amount(signal: Signal, v: u64) -> String {
    match signal {
        Signal::NodeFsInodesFree | Signal::ImageFsInodesFree => v.to_string(),
        _ => format_bytes(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_syntax() {
        let t = parse_hard(DEFAULT_HARD).expect("defaults parse");
        assert_eq!(t.len(), 5);
        assert_eq!(t[0].signal, Signal::MemoryAvailable);
        assert_eq!(t[0].value, Value::Quantity(100 << 20));
        assert_eq!(t[1].value, Value::Percentage(0.1));
        let t = parse_hard("nodefs.available<100%").expect("parses");
        assert!(t[0].met(999, 1000));
        assert!(parse_hard("").expect("empty is none").is_empty());
        assert!(parse_hard("memory.available>1Gi").is_err());
        assert!(parse_hard("cpu.available<1").is_err());
        assert!(parse_hard("nodefs.available<120%").is_err());
        assert!(parse_hard("memory.available<1Gi,memory.available<2Gi").is_err());
    }

    #[test]
    fn thresholds_against_observations() {
        let t = parse_hard("memory.available<100Mi,nodefs.available<10%").expect("parses");
        assert!(t[0].met(99 << 20, 1 << 30));
        assert!(!t[0].met(100 << 20, 1 << 30));
        assert_eq!(t[1].quantity(1000), 100);
        assert!(t[1].met(99, 1000) && !t[1].met(100, 1000));
    }

    #[test]
    fn quantities_print_like_upstream() {
        assert_eq!(format_bytes(100 << 20), "100Mi");
        assert_eq!(format_bytes(1536 * 1024), "1536Ki");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(format_amount(Signal::NodeFsInodesFree, 2048), "2048");
    }
}

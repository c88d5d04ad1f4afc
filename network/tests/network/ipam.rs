//! Host-local IPAM on a temporary directory: atomic, idempotent, persistent allocation.

use std::{collections::HashSet, net::Ipv4Addr, sync::Arc, thread};

use ipnet::Ipv4Net;
use network::{Error, Ipam};

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("cidr")
}

#[test]
fn allocation_skips_network_gateway_and_broadcast_until_exhausted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ipam =
        Ipam::open(dir.path(), net("10.42.0.0/29"), Ipv4Addr::new(10, 42, 0, 1)).expect("open");
    let ips: Vec<Ipv4Addr> = (0..5)
        .map(|i| ipam.allocate(&format!("sb{i}")).expect("allocate"))
        .collect();
    let expected: Vec<Ipv4Addr> = (2..=6).map(|d| Ipv4Addr::new(10, 42, 0, d)).collect();
    assert_eq!(ips, expected);
    assert!(matches!(
        ipam.allocate("sb5"),
        Err(Error::IpamExhausted { .. })
    ));
}

#[test]
fn same_owner_gets_same_ip_and_it_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cidr = net("10.42.0.0/24");
    let gw = Ipv4Addr::new(10, 42, 0, 1);
    let ipam = Ipam::open(dir.path(), cidr, gw).expect("open");
    let a = ipam.allocate("a").expect("a");
    assert_eq!(ipam.allocate("a").expect("a again"), a);
    let b = ipam.allocate("b").expect("b");
    assert_ne!(a, b);
    drop(ipam);

    let ipam = Ipam::open(dir.path(), cidr, gw).expect("reopen");
    assert_eq!(ipam.allocate("a").expect("a after reopen"), a);
    assert_eq!(ipam.lookup("b").expect("lookup"), Some(b));
    let c = ipam.allocate("c").expect("c");
    assert!(c != a && c != b);
    assert_eq!(
        ipam.allocations().expect("list"),
        vec![
            (a, "a".to_owned()),
            (b, "b".to_owned()),
            (c, "c".to_owned())
        ]
    );
}

#[test]
fn release_frees_the_ip_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ipam =
        Ipam::open(dir.path(), net("10.42.0.0/24"), Ipv4Addr::new(10, 42, 0, 1)).expect("open");
    let a = ipam.allocate("a").expect("a");
    assert_eq!(ipam.release("a").expect("release"), Some(a));
    assert_eq!(ipam.release("a").expect("release again"), None);
    assert!(!dir.path().join(a.to_string()).exists());
    // Freed addresses are reused last (round robin).
    let b = ipam.allocate("b").expect("b");
    assert_ne!(a, b);
}

#[test]
fn concurrent_allocations_from_two_stores_never_collide() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cidr = net("10.42.0.0/24");
    let gw = Ipv4Addr::new(10, 42, 0, 1);
    let stores: Vec<Arc<Ipam>> = (0..2)
        .map(|_| Arc::new(Ipam::open(dir.path(), cidr, gw).expect("open")))
        .collect();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let ipam = Arc::clone(&stores[t % 2]);
            thread::spawn(move || {
                (0..50)
                    .map(|i| ipam.allocate(&format!("t{t}-{i}")).expect("alloc"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<Ipv4Addr> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("join"))
        .collect();
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), 200);
}

#[test]
fn rejects_sandbox_ids_that_cannot_be_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ipam =
        Ipam::open(dir.path(), net("10.42.0.0/24"), Ipv4Addr::new(10, 42, 0, 1)).expect("open");
    for bad in ["", "a/b", "a\nb"] {
        assert!(
            matches!(ipam.allocate(bad), Err(Error::InvalidSandboxId { .. })),
            "{bad:?}"
        );
    }
}

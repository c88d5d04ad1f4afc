//! PodNetwork end to end inside a private network namespace: host setup, two pods talking,
//! unreachable ranges, IPAM persistence, teardown, and timings.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{ensure, Result};
use network::{host_veth_name, NetworkConfig, PodNetwork, PodNetworkStatus};

use crate::support::{
    block_on, expect_unreachable, fetch_from, links, serve_in, udp_probe_from, PodNetns,
};

/// A PodNetwork with its state in `dir`, host setup done.
pub async fn ready_network(dir: &Path) -> Result<PodNetwork> {
    let net = PodNetwork::new(NetworkConfig::new(dir)).await?;
    net.ensure_host_setup().await?;
    Ok(net)
}

async fn timed_setup(net: &PodNetwork, id: &str, pod: &PodNetns) -> Result<PodNetworkStatus> {
    let started = Instant::now();
    let status = net.setup_pod(id, pod.path()).await?;
    println!("setup_pod({id}) took {:?}", started.elapsed());
    Ok(status)
}

#[test]
fn two_pods_get_distinct_ips_and_reach_each_other_and_the_gateway() {
    require_root!();
    in_own_netns!("pod_network::two_pods_get_distinct_ips_and_reach_each_other_and_the_gateway");
    block_on(async {
        let dir = tempfile::tempdir()?;
        let net = ready_network(dir.path()).await?;
        let (pod_a, pod_b) = (
            PodNetns::new(dir.path(), "a")?,
            PodNetns::new(dir.path(), "b")?,
        );
        let a = timed_setup(&net, "sandbox-a", &pod_a).await?;
        let b = timed_setup(&net, "sandbox-b", &pod_b).await?;

        let cfg = net.config();
        ensure!(a.ip != b.ip, "pods share {}", a.ip);
        for s in [&a, &b] {
            ensure!(
                cfg.pod_cidr.contains(&s.ip) && s.ip != cfg.gateway(),
                "bad ip {}",
                s.ip
            );
            ensure!(s.gateway == Ipv4Addr::new(10, 42, 0, 1) && s.iface == "eth0");
            ensure!(s.mac == network::pod_mac(s.ip));
        }
        ensure!(links(Some(pod_a.path()))? == ["lo", "eth0"], "pod a links");

        let on_b = serve_in(Some(pod_b.path()), "0.0.0.0:8080", "hello from b", 1)?;
        let (body, took) = fetch_from(pod_a.path(), SocketAddr::new(b.ip.into(), on_b.port()))?;
        ensure!(body? == "hello from b", "pod a -> pod b");
        println!("pod a -> pod b tcp round trip {took:?}");

        let on_host = serve_in(None, "10.42.0.1:0", "hello from node", 1)?;
        let (body, _) = fetch_from(pod_a.path(), on_host)?;
        ensure!(body? == "hello from node", "pod a -> gateway");
        Ok(())
    });
}

/// An address in the pod or service range that nobody holds fails fast with "no route to host"
/// instead of leaking to a default route and timing out. Each probe comes from a pod of its
/// own: the node rate-limits ICMP errors per destination (`net.ipv4.icmp_ratelimit`, 1 s), so
/// a second probe from the same pod within a second would get no answer. UDP (with
/// `IP_RECVERR`) sees the error at once; TCP may take one SYN retransmit (1 s) because the
/// ICMP error can arrive while `connect()` still owns the socket, and the kernel then keeps it
/// only as a soft error.
#[test]
fn unknown_pod_and_service_ips_are_unreachable_at_once() {
    require_root!();
    in_own_netns!("pod_network::unknown_pod_and_service_ips_are_unreachable_at_once");
    block_on(async {
        let dir = tempfile::tempdir()?;
        let net = ready_network(dir.path()).await?;
        let (at_once, one_rto) = (Duration::from_millis(500), Duration::from_millis(1500));
        for (i, target) in ["10.42.7.7:80", "10.43.0.99:80"].into_iter().enumerate() {
            let to: SocketAddr = target.parse()?;
            let udp_pod = PodNetns::new(dir.path(), &format!("udp{i}"))?;
            net.setup_pod(&format!("udp{i}"), udp_pod.path()).await?;
            let (result, took) = udp_probe_from(udp_pod.path(), to)?;
            expect_unreachable(&result, took, at_once, &format!("udp pod -> {target}"))?;
            println!("udp pod -> {target}: {:?} after {took:?}", result.err());

            let tcp_pod = PodNetns::new(dir.path(), &format!("tcp{i}"))?;
            net.setup_pod(&format!("tcp{i}"), tcp_pod.path()).await?;
            let (result, took) = fetch_from(tcp_pod.path(), to)?;
            expect_unreachable(&result, took, one_rto, &format!("tcp pod -> {target}"))?;
            println!("tcp pod -> {target}: {:?} after {took:?}", result.err());

            let started = Instant::now();
            let result = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(5));
            expect_unreachable(
                &result,
                started.elapsed(),
                at_once,
                &format!("node -> {target}"),
            )?;
        }
        Ok(())
    });
}

#[test]
fn ipam_survives_recreating_the_pod_network() {
    require_root!();
    in_own_netns!("pod_network::ipam_survives_recreating_the_pod_network");
    block_on(async {
        let dir = tempfile::tempdir()?;
        let (pod_a, pod_b) = (
            PodNetns::new(dir.path(), "a")?,
            PodNetns::new(dir.path(), "b")?,
        );
        let first = ready_network(dir.path()).await?;
        let a = first.setup_pod("sandbox-a", pod_a.path()).await?;
        drop(first);

        let second = ready_network(dir.path()).await?;
        let b = second.setup_pod("sandbox-b", pod_b.path()).await?;
        ensure!(b.ip != a.ip, "new pod got the old pod's ip {}", a.ip);
        // A retried setup for the same sandbox keeps its IP and recreates its veth.
        let again = timed_setup(&second, "sandbox-a", &pod_a).await?;
        ensure!(again == a, "retry changed the status: {again:?} vs {a:?}");
        ensure!(links(Some(pod_a.path()))? == ["lo", "eth0"]);
        let on_b = serve_in(Some(pod_b.path()), "0.0.0.0:8080", "still here", 1)?;
        let (body, _) = fetch_from(pod_a.path(), SocketAddr::new(b.ip.into(), on_b.port()))?;
        ensure!(body? == "still here");
        Ok(())
    });
}

/// Teardown after the sandbox stopped (its namespace unpinned, as the kubelet and `k1s runtime
/// run --rm` do it): the IP is freed at once and the kernel takes the veth pair away with the
/// namespace, without teardown waiting for it.
#[test]
fn teardown_of_a_stopped_sandbox_leaves_the_pair_to_the_namespace() {
    require_root!();
    in_own_netns!("pod_network::teardown_of_a_stopped_sandbox_leaves_the_pair_to_the_namespace");
    block_on(async {
        let dir = tempfile::tempdir()?;
        let net = ready_network(dir.path()).await?;
        let pod = PodNetns::new(dir.path(), "a")?;
        let path = pod.path().to_path_buf();
        net.setup_pod("sandbox-a", &path).await?;
        let veth = host_veth_name("sandbox-a");
        ensure!(links(None)?.contains(&veth), "host veth {veth} missing");
        drop(pod);
        let started = Instant::now();
        net.teardown_pod("sandbox-a", Some(&path)).await?;
        println!(
            "teardown_pod of a stopped sandbox took {:?}",
            started.elapsed()
        );
        ensure!(
            net.ipam().lookup("sandbox-a")?.is_none(),
            "ip still allocated"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while links(None)?.contains(&veth) {
            ensure!(
                Instant::now() < deadline,
                "host veth {veth} outlived its namespace"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    });
}

#[test]
fn teardown_removes_the_veth_and_frees_the_ip() {
    require_root!();
    in_own_netns!("pod_network::teardown_removes_the_veth_and_frees_the_ip");
    block_on(async {
        let dir = tempfile::tempdir()?;
        let net = ready_network(dir.path()).await?;
        let pod = PodNetns::new(dir.path(), "a")?;
        let status = net.setup_pod("sandbox-a", pod.path()).await?;
        let veth = host_veth_name("sandbox-a");
        ensure!(
            links(None)?.contains(&veth),
            "host veth {veth} missing after setup"
        );

        let started = Instant::now();
        net.teardown_pod("sandbox-a", Some(pod.path())).await?;
        println!("teardown_pod took {:?}", started.elapsed());
        ensure!(
            !links(None)?.contains(&veth),
            "host veth {veth} left behind"
        );
        ensure!(links(Some(pod.path()))? == ["lo"], "eth0 left in the pod");
        ensure!(
            net.ipam().lookup("sandbox-a")?.is_none(),
            "ip {} still allocated",
            status.ip
        );
        ensure!(!net.config().ipam_dir().join(status.ip.to_string()).exists());

        // Idempotent: again, and with the namespace gone.
        net.teardown_pod("sandbox-a", Some(pod.path())).await?;
        drop(pod);
        net.teardown_pod("sandbox-a", Some(&dir.path().join("a")))
            .await?;
        net.teardown_pod("never-existed", None).await?;
        Ok(())
    });
}

/// `nft list table ip k1s`.
fn k1s_table() -> Result<String> {
    let out = std::process::Command::new("nft")
        .args(["list", "table", "ip", "k1s"])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn host_setup_is_idempotent_and_repairs() {
    require_root!();
    in_own_netns!("pod_network::host_setup_is_idempotent_and_repairs");
    block_on(async {
        let dir = tempfile::tempdir()?;
        let net = ready_network(dir.path()).await?;
        net.ensure_host_setup().await?;
        ensure!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")?.trim() == "1");
        let ruleset = k1s_table()?;
        ensure!(
            ruleset.matches("masquerade").count() == 2,
            "ruleset after two setups:\n{ruleset}"
        );
        // Unchanged since the last apply: no nft run, no transaction.
        let generation = network::nft_generation()?;
        net.ensure_host_setup().await?;
        ensure!(
            network::nft_generation()? == generation,
            "a setup with the ruleset in place committed an nftables transaction"
        );
        // Changed behind its back: the next setup puts the rules back.
        for change in [&["flush", "ruleset"][..], &["delete", "table", "ip", "k1s"]] {
            let out = std::process::Command::new("nft").args(change).output()?;
            ensure!(out.status.success(), "nft {change:?}: {out:?}");
            net.ensure_host_setup().await?;
            let ruleset = k1s_table()?;
            ensure!(
                ruleset.matches("masquerade").count() == 2,
                "ruleset after nft {change:?} and a setup:\n{ruleset}"
            );
        }
        let pod = PodNetns::new(dir.path(), "a")?;
        net.setup_pod("sandbox-a", pod.path()).await?;
        Ok(())
    });
}

#[test]
fn setup_and_teardown_timings() {
    require_root!();
    in_own_netns!("pod_network::setup_and_teardown_timings");
    block_on(async {
        const PODS: usize = 10;
        let dir = tempfile::tempdir()?;
        let net = ready_network(dir.path()).await?;
        let pods: Vec<PodNetns> = (0..PODS)
            .map(|i| PodNetns::new(dir.path(), &format!("p{i}")))
            .collect::<Result<_>>()?;
        let mut setups = Vec::new();
        for (i, pod) in pods.iter().enumerate() {
            let started = Instant::now();
            net.setup_pod(&format!("sandbox-{i}"), pod.path()).await?;
            setups.push(started.elapsed());
        }
        let mut teardowns = Vec::new();
        for (i, pod) in pods.iter().enumerate() {
            let started = Instant::now();
            net.teardown_pod(&format!("sandbox-{i}"), Some(pod.path()))
                .await?;
            teardowns.push(started.elapsed());
        }
        println!("setup_pod    x{PODS}: {}", summary(&mut setups));
        println!("teardown_pod x{PODS}: {}", summary(&mut teardowns));
        Ok(())
    });
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let total: Duration = samples.iter().sum();
    let n = u32::try_from(samples.len()).unwrap_or(1).max(1);
    format!(
        "min {:?} median {:?} max {:?} mean {:?}",
        samples.first().copied().unwrap_or_default(),
        samples.get(samples.len() / 2).copied().unwrap_or_default(),
        samples.last().copied().unwrap_or_default(),
        total / n
    )
}

//! Egress masquerade and stale-network cleanup. "Outside" is one more namespace the test
//! makes, linked to the node by a veth on 203.0.113.0/24 (TEST-NET-3); nothing leaves the
//! test's own network namespace.

use std::{
    io::Write,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::Path,
    thread,
};

use anyhow::{ensure, Context, Result};
use futures::TryStreamExt;
use network::netns;
use rtnetlink::{LinkUnspec, LinkVeth};

use crate::{
    pod_network::ready_network,
    support::{block_on, fetch_from, links, PodNetns},
};

const NODE_SIDE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

/// Links the test's namespace to a new "outside" namespace: `ext0` here, `eth0` there.
async fn make_outside(dir: &Path) -> Result<PodNetns> {
    let outside = PodNetns::new(dir, "outside")?;
    let (conn, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    let ns = std::fs::File::open(outside.path())?;
    let peer = LinkUnspec::new_with_name("eth0")
        .setns_by_fd(std::os::fd::AsRawFd::as_raw_fd(&ns))
        .build();
    let veth = LinkVeth::new("ext0", "eth0")
        .set_info_data(rtnetlink::packet_route::link::InfoData::Veth(
            rtnetlink::packet_route::link::InfoVeth::Peer(peer),
        ))
        .up()
        .build();
    handle.link().add(veth).execute().await?;
    let index = link_index(&handle, "ext0").await?;
    handle
        .address()
        .add(index, NODE_SIDE.into(), 24)
        .execute()
        .await?;
    netns::run_async(outside.path(), || async {
        let run = async {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            let index = link_index(&handle, "eth0").await?;
            handle
                .address()
                .add(index, OUTSIDE.into(), 24)
                .execute()
                .await?;
            handle
                .link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await?;
            handle
                .link()
                .set(LinkUnspec::new_with_index(1).up().build())
                .execute()
                .await?;
            anyhow::Ok(())
        };
        run.await
    })
    .await??;
    Ok(outside)
}

async fn link_index(handle: &rtnetlink::Handle, name: &str) -> Result<u32> {
    let link = handle
        .link()
        .get()
        .match_name(name.to_owned())
        .execute()
        .try_next()
        .await?;
    Ok(link.context("link vanished")?.header.index)
}

/// Serves one connection inside `netns`, answering with the peer's address as it sees it.
fn serve_peer_address(netns: &Path, addr: SocketAddr) -> Result<SocketAddr> {
    let listener = netns::run_blocking(netns, move || TcpListener::bind(addr))??;
    let local = listener.local_addr()?;
    thread::spawn(move || {
        if let Ok((mut stream, peer)) = listener.accept() {
            let _ = stream.write_all(peer.ip().to_string().as_bytes());
        }
    });
    Ok(local)
}

#[test]
fn egress_from_pods_is_masqueraded_to_the_node_address() {
    require_root!();
    in_own_netns!("egress::egress_from_pods_is_masqueraded_to_the_node_address");
    block_on(async {
        let dir = tempfile::tempdir()?;
        let net = ready_network(dir.path()).await?;
        let outside = make_outside(dir.path()).await?;
        let pod = PodNetns::new(dir.path(), "a")?;
        let status = net.setup_pod("sandbox-a", pod.path()).await?;

        let server = serve_peer_address(outside.path(), SocketAddr::new(OUTSIDE.into(), 8080))?;
        let (seen, _) = fetch_from(pod.path(), server)?;
        let seen = seen.context("pod -> outside")?;
        ensure!(
            seen == NODE_SIDE.to_string(),
            "outside saw {seen}, pod is {}",
            status.ip
        );
        Ok(())
    });
}

#[test]
fn remove_stale_cleans_up_sandboxes_that_are_gone() {
    require_root!();
    in_own_netns!("egress::remove_stale_cleans_up_sandboxes_that_are_gone");
    block_on(async {
        let dir = tempfile::tempdir()?;
        let net = ready_network(dir.path()).await?;
        let (pod_a, pod_b) = (
            PodNetns::new(dir.path(), "a")?,
            PodNetns::new(dir.path(), "b")?,
        );
        net.setup_pod("alive", pod_a.path()).await?;
        net.setup_pod("gone", pod_b.path()).await?;
        let removed = net.remove_stale(|id| id == "alive").await?;
        ensure!(removed == ["gone"], "removed {removed:?}");
        ensure!(!links(None)?.contains(&network::host_veth_name("gone")));
        ensure!(links(None)?.contains(&network::host_veth_name("alive")));
        ensure!(net.ipam().allocations()?.len() == 1);
        Ok(())
    });
}

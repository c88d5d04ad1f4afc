//! hostPort DNAT: a pod port reached through the node's address, from another pod and from the
//! node itself; removal is idempotent.

use std::net::SocketAddr;

use anyhow::{ensure, Context};
use network::Protocol;

use crate::{
    pod_network::ready_network,
    support::{block_on, fetch_from, serve_in, PodNetns},
};

#[test]
fn host_port_reaches_the_pod_from_pods_and_the_node() {
    require_root!();
    in_own_netns!("host_port::host_port_reaches_the_pod_from_pods_and_the_node");
    block_on(async {
        let dir = tempfile::tempdir()?;
        let net = ready_network(dir.path()).await?;
        let (pod_a, pod_b) = (
            PodNetns::new(dir.path(), "a")?,
            PodNetns::new(dir.path(), "b")?,
        );
        net.setup_pod("sandbox-a", pod_a.path()).await?;
        let b = net.setup_pod("sandbox-b", pod_b.path()).await?;
        serve_in(Some(pod_b.path()), "0.0.0.0:8080", "b via hostport", 3)?;
        net.add_host_port(Protocol::Tcp, 18080, b.ip, 8080).await?;
        net.add_host_port(Protocol::Tcp, 18080, b.ip, 8080).await?;

        let node: SocketAddr = "10.42.0.1:18080".parse()?;
        let (body, _) = fetch_from(pod_a.path(), node)?;
        ensure!(body.context("pod a -> node:18080")? == "b via hostport");
        // Hairpin: pod b reaches itself through its host port.
        let (body, _) = fetch_from(pod_b.path(), node)?;
        ensure!(body.context("pod b -> node:18080")? == "b via hostport");
        let mut from_node = String::new();
        std::io::Read::read_to_string(&mut std::net::TcpStream::connect(node)?, &mut from_node)?;
        ensure!(from_node == "b via hostport", "node -> node:18080");

        net.remove_host_port(Protocol::Tcp, 18080, b.ip, 8080)
            .await?;
        net.remove_host_port(Protocol::Tcp, 18080, b.ip, 8080)
            .await?;
        let (result, _) = fetch_from(pod_a.path(), node)?;
        ensure!(
            result.is_err(),
            "host port still open after removal: {result:?}"
        );
        Ok(())
    });
}

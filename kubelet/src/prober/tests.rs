//! The network probe handlers against real servers on loopback: an axum HTTP server, a
//! silent TCP listener, a closed port, and a hyper HTTP/2 server speaking the gRPC health
//! protocol.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::{Container, ContainerPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::grpc;
use super::handlers::{http_get, resolve_port, tcp, Outcome};

const T: Duration = Duration::from_secs(1);

async fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let port = l.local_addr().expect("local addr").port();
    (l, port)
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    listener().await.1
}

#[tokio::test]
async fn http_probe_sends_upstream_headers_and_judges_the_status() {
    let (l, port) = listener().await;
    let (tx, mut rx) = mpsc::unbounded_channel::<HeaderMap>();
    let app = axum::Router::new()
        .route(
            "/healthz",
            get(move |h: HeaderMap| async move {
                let _ = tx.send(h);
                "ok"
            }),
        )
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route(
            "/moved",
            get(|| async { (StatusCode::FOUND, [("location", "/elsewhere")]) }),
        );
    tokio::spawn(async move { axum::serve(l, app).await });
    let headers = vec![("X-Custom".to_string(), "v".to_string())];
    assert_eq!(
        http_get("127.0.0.1", port, "healthz", &headers, T).await,
        Outcome::Success
    );
    let h = rx.recv().await.expect("request headers");
    assert_eq!(h["user-agent"], "kube-probe/1.35");
    assert_eq!(h["x-custom"], "v");
    assert_eq!(h["host"], format!("127.0.0.1:{port}").as_str());
    assert_eq!(
        http_get("127.0.0.1", port, "/fail", &[], T).await,
        Outcome::Failure("HTTP probe failed with statuscode: 500".into())
    );
    assert_eq!(
        http_get("127.0.0.1", port, "/moved", &[], T).await,
        Outcome::Success
    );
}

#[tokio::test]
async fn refused_connections_read_like_go() {
    let port = closed_port().await;
    let dial = format!("dial tcp 127.0.0.1:{port}: connect: connection refused");
    assert_eq!(
        tcp("127.0.0.1", port, T).await,
        Outcome::Failure(dial.clone())
    );
    assert_eq!(
        http_get("127.0.0.1", port, "/", &[], T).await,
        Outcome::Failure(format!("Get \"http://127.0.0.1:{port}/\": {dial}"))
    );
    let out = grpc::check("127.0.0.1", port, "", T).await;
    assert!(
        matches!(&out, Outcome::Failure(m) if m.contains("failed to connect service") && m.contains(&dial)),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let (l, port) = listener().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    assert_eq!(tcp("127.0.0.1", port, T).await, Outcome::Success);
    let started = std::time::Instant::now();
    let out = http_get("127.0.0.1", port, "/", &[], T).await;
    assert!(
        matches!(&out, Outcome::Failure(m) if m.contains("context deadline exceeded")),
        "{out:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// gRPC health answers: "" SERVING, "db" NOT_SERVING, anything else Unimplemented.
async fn health(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<
    hyper::Response<
        StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>,
    >,
    Infallible,
> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let service = String::from_utf8_lossy(body.get(7..).unwrap_or_default()).into_owned();
    let mut trailers = HeaderMap::new();
    let frames = match service.as_str() {
        "" | "db" => {
            let status = if service.is_empty() { 1 } else { 2 };
            trailers.insert("grpc-status", "0".parse().expect("header value"));
            vec![
                Ok(Frame::data(Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]))),
                Ok(Frame::trailers(trailers)),
            ]
        }
        _ => {
            trailers.insert("grpc-status", "12".parse().expect("header value"));
            trailers.insert(
                "grpc-message",
                "unknown service".parse().expect("header value"),
            );
            vec![Ok(Frame::trailers(trailers))]
        }
    };
    let resp = hyper::Response::builder()
        .header("content-type", "application/grpc")
        .body(StreamBody::new(futures::stream::iter(frames)))
        .expect("response");
    Ok(resp)
}

#[tokio::test]
async fn grpc_health_check() {
    let (l, port) = listener().await;
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), hyper::service::service_fn(health)),
            );
        }
    });
    assert_eq!(
        grpc::check("127.0.0.1", port, "", T).await,
        Outcome::Success
    );
    assert_eq!(
        grpc::check("127.0.0.1", port, "db", T).await,
        Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
    );
    let out = grpc::check("127.0.0.1", port, "other", T).await;
    assert!(
        matches!(&out, Outcome::Failure(m) if m.contains("does not implement the grpc health protocol") && m.contains("unknown service")),
        "{out:?}"
    );
}

#[test]
fn ports_by_number_and_by_name() {
    let c = Container {
        name: "web".into(),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: 8080,
            ..Default::default()
        }]),
        ..Default::default()
    };
    assert_eq!(resolve_port(&IntOrString::Int(80), &c), Ok(80));
    assert_eq!(
        resolve_port(&IntOrString::String("http".into()), &c),
        Ok(8080)
    );
    assert_eq!(
        resolve_port(&IntOrString::String("nope".into()), &c),
        Err("port nope not found in container web".into())
    );
    assert_eq!(
        resolve_port(&IntOrString::Int(70000), &c),
        Err("invalid port number: 70000".into())
    );
}

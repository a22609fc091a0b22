//! A plain HTTP/1.1 client for the tests: exact requests (any method, headers, body) on a
//! connection the test controls, so keep-alive, status codes and streaming bodies can be
//! checked as any HTTP client would see them.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One HTTP/1.1 connection.
#[derive(Debug)]
pub struct HttpConn {
    addr: SocketAddr,
    path: String,
    send: SendRequest<Full<Bytes>>,
}

/// A whole response.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, as text.
    pub body: String,
}

impl Answer {
    /// A header's value as text (`""` when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl HttpConn {
    /// Open a connection to `addr`.
    pub async fn connect(addr: SocketAddr) -> HttpConn {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn);
        HttpConn {
            addr,
            path: "/".into(),
            send,
        }
    }

    /// Send the requests to `path` (default `/`).
    pub fn at(mut self, path: &str) -> HttpConn {
        self.path = path.into();
        self
    }

    /// Send a request and return the response with its body still streaming.
    pub async fn start(
        &mut self,
        method: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response<Incoming> {
        let mut req = Request::builder()
            .method(method)
            .uri(self.path.as_str())
            .header("host", self.addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        self.send.ready().await.expect("connection ready");
        self.send.send_request(req).await.expect("response")
    }

    /// Send a request and read the whole response.
    pub async fn send(&mut self, method: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let resp = self.start(method, headers, body).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).expect("UTF-8 body"),
        }
    }

    /// POST `body` as `application/json`.
    pub async fn post(&mut self, body: &str) -> Answer {
        self.send("POST", &[("content-type", "application/json")], body)
            .await
    }
}

/// POST `body` as `application/json` on a new connection.
pub async fn post(addr: SocketAddr, body: &str) -> Answer {
    HttpConn::connect(addr).await.post(body).await
}

/// Reads server-sent events from a streaming body: the data of each event in turn
/// (comments skipped).
#[derive(Debug)]
pub struct Events {
    body: Incoming,
    buffer: String,
}

impl Events {
    /// Read events from `resp`'s body.
    pub fn new(resp: Response<Incoming>) -> Events {
        Events {
            body: resp.into_body(),
            buffer: String::new(),
        }
    }

    /// The next event's data, or `None` when the response has ended.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                if data.is_empty() {
                    continue; // a comment (keep-alive)
                }
                return Some(data.join("\n"));
            }
            let frame = tokio::time::timeout(crate::RECV_TIMEOUT, self.body.frame())
                .await
                .expect("an event within the timeout")?
                .expect("body frame");
            if let Ok(data) = frame.into_data() {
                self.buffer
                    .push_str(std::str::from_utf8(&data).expect("UTF-8"));
            }
        }
    }
}

/// `GET path` on a new connection (`Connection: close`): status, content type and body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

/// The value of the Prometheus sample `name{labels}` (labels as the exporter writes them,
/// e.g. `method="Calculator.add",outcome="ok"`) in `text`, if present.
pub fn prometheus_sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let key = if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&key)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

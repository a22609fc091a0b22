//! The server as a `tower::Service`, to mount in an application's own HTTP server.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};

use crate::transport::http::{Endpoint, ResponseBody, Source};

use super::listen::shutdown;

/// A wirecall server as a `tower::Service` over HTTP requests: WebSocket upgrade, JSON-RPC
/// POST and server-sent events, all on the route it is mounted at. Made by
/// [`ServerBuilder::into_service`](super::ServerBuilder::into_service); cheap to clone.
#[derive(Clone)]
pub struct RpcService {
    pub(super) endpoint: Arc<Endpoint>,
}

impl fmt::Debug for RpcService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcService")
            .field("router", &self.endpoint.router)
            .finish_non_exhaustive()
    }
}

impl RpcService {
    /// Graceful shutdown of the service's sessions: new requests are refused, in-flight
    /// calls finish (up to the shutdown timeout), WebSocket sessions close with 1001.
    pub async fn shutdown(&self, timeout: Duration) {
        shutdown(&self.endpoint, timeout).await
    }
}

impl<B> tower_service::Service<Request<B>> for RpcService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let endpoint = self.endpoint.clone();
        Box::pin(async move { Ok(endpoint.handle(req, Source::default()).await) })
    }
}

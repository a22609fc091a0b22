//! Reading a request body whole — of a POST, or of the POST that asks for server-sent
//! events — within the message size limit and the body deadline ([`super::deadline`]).
//!
//! A body that came with its request head is whole at the first look, and costs nothing
//! more. One that has to be waited for gets one deadline, and on the server's own listener
//! its connection stops counting against `max_connections` and joins the gate's pending
//! bodies (the oldest of too many is cut off) until the body is whole.

use std::error::Error as StdError;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::Body;

use super::deadline::{Deadline, ReadRules, TooSlow};
use super::http::Accepted;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Why a body was not read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Over the message size limit.
    TooLarge,
    /// The body could not be read (the connection failed, bad chunked encoding…).
    Failed(BoxError),
    /// It arrived too slowly.
    TooSlow(TooSlow),
    /// The gate cut it off: too many bodies were being waited for, and this was the oldest.
    Shed,
}

/// The whole body, at most `limit` bytes, within `rules`.
pub(crate) async fn read<B>(
    body: B,
    limit: usize,
    rules: ReadRules,
    accepted: Option<&Accepted>,
) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut whole = Whole {
        body: pin!(body),
        buf: Buf::Empty,
        len: 0,
        limit,
    };
    // The common case: the body came with its head (hyper hands it over before the
    // handler's first poll). No timer, no bookkeeping.
    if let Poll::Ready(done) = poll_fn(|cx| Poll::Ready(whole.poll(cx))).await {
        return done;
    }
    let pending = accepted.map(Accepted::waiting_body);
    let mut shed = pin!(pending.as_ref().map(|p| p.shed().clone().cancelled_owned()));
    let mut deadline = Deadline::new(rules, whole.len as u64);
    poll_fn(|cx| {
        if let Poll::Ready(done) = whole.poll(cx) {
            return Poll::Ready(done);
        }
        if let Some(shed) = shed.as_mut().as_pin_mut() {
            if shed.poll(cx).is_ready() {
                return Poll::Ready(Err(BodyError::Shed));
            }
        }
        deadline
            .poll_expired(cx, whole.len as u64)
            .map(|why| Err(BodyError::TooSlow(why)))
    })
    .await
}

/// Collects a body's data frames (trailers are ignored), keeping a lone chunk as it is.
struct Whole<'a, B> {
    body: Pin<&'a mut B>,
    buf: Buf,
    len: usize,
    limit: usize,
}

enum Buf {
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl<B> Whole<'_, B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, BodyError>> {
        loop {
            let frame = match self.body.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(self.take())),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(BodyError::Failed(e.into()))),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            self.len += data.len();
            if self.len > self.limit {
                return Poll::Ready(Err(BodyError::TooLarge));
            }
            self.buf = match std::mem::replace(&mut self.buf, Buf::Empty) {
                Buf::Empty => Buf::One(data),
                Buf::One(first) => {
                    // (Not sized from the declared length: a peer could declare the limit
                    // and send two bytes.)
                    let mut many = BytesMut::with_capacity(2 * (first.len() + data.len()));
                    many.extend_from_slice(&first);
                    many.extend_from_slice(&data);
                    Buf::Many(many)
                }
                Buf::Many(mut many) => {
                    many.extend_from_slice(&data);
                    Buf::Many(many)
                }
            };
        }
    }

    fn take(&mut self) -> Bytes {
        match std::mem::replace(&mut self.buf, Buf::Empty) {
            Buf::Empty => Bytes::new(),
            Buf::One(bytes) => bytes,
            Buf::Many(many) => many.freeze(),
        }
    }
}

//! W3C trace context across calls (feature `otel`): a request's `"$traceparent"` member
//! (a POST's `traceparent` header) in, the current span's context out.
//!
//! The format is W3C Trace Context's, read and written by OpenTelemetry's own
//! [`TraceContextPropagator`]; the spans are `tracing` spans that tracing-opentelemetry's
//! layer turns into OpenTelemetry spans. A traceparent that is not valid (not a string,
//! not W3C, all-zero ids, upper-case hex, given twice) is ignored, as if absent: never an
//! error. `tracestate` is read only from a POST's `tracestate` header (with its
//! `traceparent`), and never sent. Without the feature this module is not compiled: no
//! member is read and none is written.

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The top-level member of a request that carries the caller's W3C `traceparent`.
pub(crate) const TRACEPARENT_MEMBER: &str = "$traceparent";

/// W3C's name for it (the propagator's key, and the HTTP header).
const TRACEPARENT: &str = "traceparent";

/// The caller's trace context, parsed: the parent of the call's span.
pub(crate) type Parent = Context;

/// The context a `traceparent` value stands for; `None` if it is not valid W3C.
pub(crate) fn parse(traceparent: &str) -> Option<Parent> {
    struct One<'a>(&'a str);
    impl Extractor for One<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            (key == TRACEPARENT).then_some(self.0)
        }
        fn keys(&self) -> Vec<&str> {
            vec![TRACEPARENT]
        }
    }
    remote(&One(traceparent))
}

/// The context of a POST's `traceparent` (and `tracestate`) headers; `None` without a
/// valid `traceparent`.
pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Parent> {
    struct Headers<'a>(&'a HeaderMap);
    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }
    headers.get(TRACEPARENT)?;
    remote(&Headers(headers))
}

fn remote(carrier: &dyn Extractor) -> Option<Parent> {
    let cx = TraceContextPropagator::new().extract_with_context(&Context::new(), carrier);
    cx.has_active_span().then_some(cx)
}

/// Make `span` (a call's, not entered yet) continue the caller's trace: the request's own
/// `"$traceparent"`, else the door's (a POST's header). Without either (or without
/// tracing-opentelemetry's layer, or with the span disabled) nothing changes.
pub(crate) fn continue_trace(span: &tracing::Span, own: Option<&str>, door: Option<&Parent>) {
    let parent = match own.and_then(parse) {
        Some(parent) => parent,
        None => match door {
            Some(parent) => parent.clone(),
            None => return,
        },
    };
    // (Fails only where there is no trace to continue: no layer, or a disabled span.)
    let _ = span.set_parent(parent);
}

/// The `traceparent` of the current span, for a request this side sends: `None` outside
/// a span that tracing-opentelemetry's layer records.
pub(crate) fn current() -> Option<String> {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    struct Traceparent(Option<String>);
    impl Injector for Traceparent {
        fn set(&mut self, key: &str, value: String) {
            if key == TRACEPARENT {
                self.0 = Some(value);
            }
        }
    }
    let mut out = Traceparent(None);
    TraceContextPropagator::new().inject_context(&cx, &mut out);
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceId};

    #[test]
    fn reads_valid_w3c_and_ignores_the_rest() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = parse(valid).expect("valid");
        let span = cx.span();
        let sc = span.span_context();
        assert_eq!(
            sc.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(sc.span_id(), SpanId::from_hex("00f067aa0ba902b7").unwrap());
        assert!(sc.is_remote() && sc.is_sampled());
        for bad in [
            "",
            "zz",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn nothing_to_send_outside_a_span() {
        assert_eq!(current(), None);
    }
}

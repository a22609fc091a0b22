//! The torture corpus (`idl/tests/torture`): every file is compiled by this crate's build
//! script (`src/lib.rs`, module `torture`); here, what its generated code does over
//! loopback where compiling is not proof enough.

use wirecall::{ApplicationError, Client, Context, Error, Fault, Items, Server};
use wirecall_tests::torture::generated_locals::{Boom, Data};
use wirecall_tests::torture::structure::{Floats, FloatsClient};

#[test]
fn every_file_of_the_corpus_is_compiled() {
    let mut files: Vec<String> = std::fs::read_dir("../idl/tests/torture")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wire"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, wirecall_tests::torture::FILES);
    assert!(files.len() >= 6, "{files:?}");
}

/// A user type `Data` in an error variant and a field `f`: the generated conversions and
/// `Display` use their own names.
#[test]
fn errors_whose_fields_shadow_generated_locals_round_trip() {
    let data = Data {
        f: "f".into(),
        data: "data".into(),
        error: "error".into(),
    };
    for e in [
        Boom::W { d: data.clone() },
        Boom::Fmt {
            f: "formatted".into(),
        },
        Boom::Locals {
            data: "d".into(),
            error: "e".into(),
            code: 7,
            message: "m".into(),
            self_data: data.clone(),
        },
        Boom::Bare,
    ] {
        let rpc = e.to_rpc_error();
        assert_eq!(Boom::from_rpc_error(&rpc), Some(e.clone()), "{rpc:?}");
    }
    assert_eq!(
        Boom::Fmt { f: "x".into() }.to_string(),
        r#"Fmt (code 3): f = "x""#
    );
}

struct Divider;

impl Floats for Divider {
    async fn divide(&self, _ctx: Context, a: f64, b: f64) -> Result<f64, Fault> {
        Ok(a / b)
    }
    async fn reciprocals(&self, _ctx: Context, values: Vec<f64>) -> Result<Vec<f64>, Fault> {
        Ok(values.into_iter().map(|v| 1.0 / v).collect())
    }
    async fn divide32(&self, _ctx: Context, a: f32, b: f32) -> Result<f32, Fault> {
        Ok(a / b)
    }
    async fn reciprocal_items(&self, _ctx: Context, values: Vec<f64>) -> Result<Items<f64>, Fault> {
        Ok(wirecall::items_ok(futures_util::stream::iter(
            values.into_iter().map(|v| 1.0 / v),
        )))
    }
}

/// The server's error for a result that holds a non-finite float.
fn is_not_a_json_number(e: &Error) -> bool {
    matches!(e, Error::Rpc(rpc) if rpc.code == wirecall::protocol::code::INTERNAL_ERROR
        && rpc.data.as_ref().is_some_and(|d| d.get().contains("is not a JSON number")))
}

/// NaN and ±Infinity never travel as a silent `null`: the server answers an internal
/// error naming the value, and a client refuses to send them.
#[tokio::test]
async fn non_finite_floats_are_errors_not_null() {
    let server = Server::bind("127.0.0.1:0", Divider.into_router())
        .await
        .unwrap();
    let client = FloatsClient::new(Client::connect(&server.url()).await.unwrap());
    assert_eq!(client.divide(1.0, 4.0).await.unwrap(), 0.25);
    for (a, b) in [(0.0, 0.0), (1.0, 0.0), (-1.0, 0.0)] {
        let e = client.divide(a, b).await.unwrap_err();
        assert!(is_not_a_json_number(&e), "{a} / {b}: {e:?}");
    }
    let e = client.divide32(0.0, 0.0).await.unwrap_err();
    assert!(is_not_a_json_number(&e), "{e:?}");
    assert_eq!(
        client.reciprocals(vec![2.0, 4.0]).await.unwrap(),
        [0.5, 0.25]
    );
    let e = client.reciprocals(vec![2.0, 0.0]).await.unwrap_err();
    assert!(is_not_a_json_number(&e), "{e:?}");

    // A stream: the finite items arrive, then the stream fails with the same error.
    let mut items = client.reciprocal_items(vec![2.0, 0.0, 4.0]).await.unwrap();
    assert_eq!(items.next().await.unwrap().unwrap(), 0.5);
    let e = items.next().await.unwrap().unwrap_err();
    assert!(is_not_a_json_number(&e), "{e:?}");
    assert!(items.next().await.is_none());

    // The client side: params with a non-finite float are not sent.
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        match client.divide(bad, 1.0).await {
            Err(Error::Encode(e)) => assert!(e.to_string().contains("is not a JSON number")),
            other => panic!("expected Error::Encode, got {other:?}"),
        }
        match client.reciprocals(vec![1.0, bad]).await {
            Err(Error::Encode(_)) => {}
            other => panic!("expected Error::Encode, got {other:?}"),
        }
    }
    // The connection is still fine.
    assert_eq!(client.divide(3.0, 2.0).await.unwrap(), 1.5);
}

//! The broker's side: a topic URI (`Chat.room.lobby`) resolved to a topic of the router
//! and its key; `SUBSCRIBE` and `UNSUBSCRIBE` through the session, `PUBLISH` straight to
//! the hub (checked by the topic's own type).

use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::adapter::feed;
use super::encode::wamp_error;

use super::message::{Options, Payload, PUBLISH, PUBLISHED, SUBSCRIBE, UNSUBSCRIBE, UNSUBSCRIBED};
use super::write::Part;
use super::{random_id, Sub, Subscribing, Wamp, MAX_EXCLUDED};
use crate::codec::params::Params;
use crate::codec::text::Text;
use crate::hub::topic_key;
use crate::session::policy::{admit_publication, Door};
use crate::session::router::{Route, TopicRoute};
use crate::session::Session;

/// A topic URI resolved.
struct Resolved {
    route: Arc<TopicRoute>,
    /// The topic's wire name.
    name: Arc<str>,
    /// The key as by-name params the route accepts.
    params: Box<RawValue>,
    /// The hub's name of the key.
    key: Arc<str>,
    /// The key's values (a JSON array), for the service's `authorize_<topic>` hook.
    values: String,
}

impl Wamp {
    /// The topic key a URI names (`Chat.room.lobby`), or the WAMP error why none.
    fn resolve(&self, uri: &str) -> Result<Resolved, (&'static str, String)> {
        let mut best: Option<(&str, &Arc<TopicRoute>)> = None;
        for name in self.router.names() {
            if let Some(Route::Topic(route)) = self.router.get(name) {
                let matches = uri == name
                    || (uri.starts_with(name) && uri.as_bytes().get(name.len()) == Some(&b'.'));
                if matches && best.is_none_or(|(b, _)| name.len() > b.len()) {
                    best = Some((name, route));
                }
            }
        }
        let Some((name, route)) = best else {
            return Err((
                "wamp.error.invalid_uri",
                format!("no topic of this server matches `{uri}`"),
            ));
        };
        let rest = uri.get(name.len() + 1..).unwrap_or("");
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('.').collect()
        };
        let names = &route.names;
        if parts.len() != names.len() {
            let pattern: Vec<String> = names.iter().map(|n| format!(".<{n}>")).collect();
            return Err((
                "wamp.error.invalid_uri",
                format!(
                    "`{name}` takes {} key value(s): {name}{}",
                    names.len(),
                    pattern.concat()
                ),
            ));
        }
        // Key values are URI components: strings, unless the key wants numbers or bools.
        let as_strings: Map<String, Value> = names
            .iter()
            .zip(&parts)
            .map(|(n, p)| (n.to_string(), Value::String(p.to_string())))
            .collect();
        let typed: Map<String, Value> = names
            .iter()
            .zip(&parts)
            .map(|(n, p)| {
                let v = serde_json::from_str::<Value>(p)
                    .ok()
                    .filter(|v| v.is_number() || v.is_boolean())
                    .unwrap_or_else(|| Value::String(p.to_string()));
                (n.to_string(), v)
            })
            .collect();
        let mut last = String::new();
        for candidate in [as_strings, typed] {
            let Ok(raw) = RawValue::from_string(Value::Object(candidate).to_string()) else {
                continue;
            };
            match (route.key)(Params::new(Some(&raw))) {
                Ok(values) => {
                    return Ok(Resolved {
                        route: route.clone(),
                        key: topic_key(name, &values).into(),
                        name: name.into(),
                        params: raw,
                        values,
                    })
                }
                Err(e) => last = e.message.to_string(),
            }
        }
        Err(("wamp.error.invalid_argument", last))
    }

    pub(super) async fn subscribe(
        &self,
        request: u64,
        uri: &str,
        session: &Session,
        close: &CancellationToken,
    ) {
        let Resolved {
            name, params, key, ..
        } = match self.resolve(uri) {
            Ok(found) => found,
            Err((error, m)) => {
                self.fail(SUBSCRIBE, request, error, m).await;
                return;
            }
        };
        let id = {
            let mut state = self.state();
            let id = state.next_id();
            let subscribing = Subscribing {
                request,
                method: name.clone(),
                key,
            };
            state.subscribing.insert(id, subscribing);
            id
        };
        let none = Text::default();
        feed(session, &name, Some(&params), Some(id), None, &none, close).await;
    }

    pub(super) async fn unsubscribe(
        &self,
        request: u64,
        subscription: u64,
        session: &Session,
        close: &CancellationToken,
    ) {
        let removed = {
            let mut state = self.state();
            match state.subs.get(&subscription) {
                Some(Sub::Topic { method, .. }) => {
                    let method = method.clone();
                    state.subs.remove(&subscription);
                    Some(method)
                }
                _ => None,
            }
        };
        let Some(method) = removed else {
            let m = format!("no subscription {subscription}");
            self.fail(UNSUBSCRIBE, request, "wamp.error.no_such_subscription", m)
                .await;
            return;
        };
        // A notification: the subscription is gone from the tables already (no event of
        // it goes out any more), and UNSUBSCRIBED follows at once.
        let method = format!("{method}.unsubscribe");
        let params = RawValue::from_string(format!("[{subscription}]")).ok();
        let none = Text::default();
        feed(
            session,
            &method,
            params.as_deref(),
            None,
            None,
            &none,
            close,
        )
        .await;
        self.send(&[Part::Int(UNSUBSCRIBED), Part::Int(request)])
            .await;
    }

    pub(super) async fn publish(
        &self,
        request: u64,
        options: &Options,
        uri: &str,
        args: Option<Payload<'_>>,
        kwargs: Option<Payload<'_>>,
        session: &Session,
    ) {
        let acknowledge = options.acknowledge;
        let refuse = |error: &'static str, m: String| async move {
            if acknowledge {
                self.fail(PUBLISH, request, error, m).await;
            } else {
                tracing::debug!(%m, "WAMP publication refused");
            }
        };
        let Resolved {
            route,
            name,
            key,
            values,
            ..
        } = match self.resolve(uri) {
            Ok(found) => found,
            Err((error, m)) => return refuse(error, m).await,
        };
        let Some(check) = &route.publish else {
            let m = format!("`{name}` does not take publications from clients (its .wire declaration would say @publishable)");
            return refuse("wamp.error.not_authorized", m).await;
        };
        // The server's layers, once, as for a call (a rate limit counts it), then the
        // service's `authorize_<topic>` hook, as for a subscription.
        if let Some(policy) = self.router.policy() {
            let item = match (&args, &kwargs) {
                (_, Some(k)) if k.is_object() && !k.is_empty() => Some(k.raw()),
                (Some(a), _) if a.is_array() => Some(a.raw()),
                _ => None,
            };
            let ctx = session.context().clone();
            let admitted = admit_publication(policy, &name, item.as_deref(), Door::Wamp, ctx).await;
            if let Err(e) = admitted {
                if acknowledge {
                    let (uri, args, kwargs) = wamp_error(&self.router, &name, &e);
                    self.error(PUBLISH, request, &uri, args, kwargs).await;
                } else {
                    tracing::debug!(%e, "WAMP publication refused by a layer");
                }
                return;
            }
        }
        if let Some(authorized) =
            route.authorize(session.context(), &values, "publishing to", &name)
        {
            if let Err(e) = authorized.await {
                return refuse("wamp.error.not_authorized", e.message.into_owned()).await;
            }
        }
        let args = args.filter(Payload::is_array).map(Payload::into_value);
        let kwargs = kwargs.filter(Payload::is_object).map(Payload::into_value);
        let kwargs = kwargs.as_ref().and_then(Value::as_object);
        let item = match (
            args.as_ref().and_then(Value::as_array).map(Vec::as_slice),
            kwargs,
        ) {
            (Some([item]), None) => item.clone(),
            (Some([item]), Some(k)) if k.is_empty() => item.clone(),
            (None | Some([]), Some(k)) if !k.is_empty() => Value::Object(k.clone()),
            _ => {
                let m =
                    "publish the item as the one positional argument (or as kwargs)".to_string();
                return refuse("wamp.error.invalid_argument", m).await;
            }
        };
        let json: Arc<str> = match check(&item.to_string()) {
            Ok(json) => json.into(),
            Err(e) => return refuse("wamp.error.invalid_argument", e).await,
        };
        // Remembered only while this session is subscribed to the key (else no event
        // would ever take it off the list), and a bounded number of them.
        let exclude_me = options.exclude_me && {
            let mut state = self.state();
            let subscribed = state
                .subs
                .values()
                .any(|s| matches!(s, Sub::Topic { key: k, .. } if *k == key));
            if subscribed {
                if state.excluded.len() >= MAX_EXCLUDED {
                    state.excluded.pop_front();
                }
                state.excluded.push_back((key.clone(), json.clone()));
            }
            subscribed
        };
        match self.hub.publish_json(key.clone(), json.clone()).await {
            Ok(_) => {
                if acknowledge {
                    let parts = [
                        Part::Int(PUBLISHED),
                        Part::Int(request),
                        Part::Int(random_id()),
                    ];
                    self.send(&parts).await;
                }
            }
            Err(e) => {
                if exclude_me {
                    let mut state = self.state();
                    if let Some(i) = state
                        .excluded
                        .iter()
                        .position(|(k, j)| *k == key && *j == json)
                    {
                        state.excluded.remove(i);
                    }
                }
                let uri = match e {
                    crate::hub::PublishError::LimitExceeded(_) => "wirecall.error.limit_exceeded",
                    _ => "wirecall.error.hub_unavailable",
                };
                refuse(uri, e.to_string()).await;
            }
        }
    }
}

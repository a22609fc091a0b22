// One file, though over ~500 lines: every rule is a method of one `Checker` that walks the
// old and new schema in step and shares its state (the pairs already compared, the flow of
// each value, the changes collected); the rules are listed in docs/EVOLUTION.md and each
// `Change` names its rule id, which finds the method here.
//! Is a new version of an interface compatible with the old one? The checker behind
//! `wirecall breaking` and [`crate::Builder::breaking_against`].
//!
//! The question it answers by default (buf's, for JSON on a WebSocket): **can a server built
//! from NEW serve every client built from OLD, and can every such client understand what a
//! NEW server sends** — results, stream and topic items, errors, and the calls of
//! `client { … }`, where the roles reverse. With [`Options::both`] it also asks the
//! opposite (new clients against old servers). The rules are listed, one a line with its
//! id, in `docs/EVOLUTION.md`; each [`Change`] names its rule.
//!
//! Values are compared by the flow they take: a receiver must accept everything the sender
//! may send. A method's params flow from its caller to its callee, its result, items and
//! errors back; for a server's method the old side is the caller (an old client), for a
//! `client { … }` method the old side is the callee (an old client called by a new server).

use std::collections::HashSet;

use crate::diagnostic::{Diagnostic, SourceMap};
use crate::model::*;

/// Which edits count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RuleSet {
    /// What breaks on the wire (JSON-RPC by name and by position, WAMP). The default.
    #[default]
    WireJson,
    /// Also what only breaks source code built from the interface: renamed or removed
    /// types, fields and methods that the wire would not notice.
    Strict,
}

/// What to check.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// The rule set.
    pub rules: RuleSet,
    /// Also check new clients against old servers (forward compatibility).
    pub both: bool,
}

/// Which side of a deployment a change breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breaks {
    /// Old clients against a new server (the default question).
    OldClients,
    /// New clients against an old server (asked with [`Options::both`]).
    OldServers,
    /// Source code built from the interface (asked with [`RuleSet::Strict`]).
    Source,
}

/// The way a value travels where a change breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// From a client to a server (a server method's params; a client method's result).
    ClientToServer,
    /// From a server to a client (results, items, errors; a client method's params).
    ServerToClient,
    /// Not a value: a method or a call that is missing, or an attribute's promise.
    Call,
}

impl Flow {
    fn label(self) -> &'static str {
        match self {
            Flow::ClientToServer => "client→server",
            Flow::ServerToClient => "server→client",
            Flow::Call => "call",
        }
    }
}

/// One breaking change.
#[derive(Clone, Debug)]
pub struct Change {
    /// The rule's id, as listed in `docs/EVOLUTION.md` (e.g. `FIELD_REQUIRED_ADDED`).
    pub rule: &'static str,
    /// Who it breaks.
    pub breaks: Breaks,
    /// The way the value travels (or [`Flow::Call`]).
    pub flow: Flow,
    /// What changed and why it breaks.
    pub message: String,
    /// Where: in the new file, or in the old one for what was removed.
    pub span: Span,
    /// `true` when [`Change::span`] points into the old file.
    pub in_old: bool,
}

impl Change {
    /// `file:line:col: breaking [RULE] (flow): message`, the source line and a caret.
    pub fn render(&self, old: &SourceMap, new: &SourceMap) -> String {
        let who = match self.breaks {
            Breaks::OldClients => "",
            Breaks::OldServers => ", new clients → old servers",
            Breaks::Source => ", source",
        };
        let message = format!(
            "[{}] ({}{who}) {}",
            self.rule,
            self.flow.label(),
            self.message
        );
        let sources = if self.in_old { old } else { new };
        Diagnostic::error(self.span, message).render_as("breaking", sources)
    }
}

/// Every breaking change from `old` to `new`, in the order found.
pub fn check(old: &Schema, new: &Schema, options: Options) -> Vec<Change> {
    let mut out = Checker::new(old, new, Breaks::OldClients).run();
    if options.both {
        // New clients against old servers: the same question with the versions swapped.
        let mut forward = Checker::new(new, old, Breaks::OldServers).run();
        for c in &mut forward {
            c.in_old = !c.in_old;
            c.message = forward_words(&c.message);
            c.rule = forward_rule(c.rule);
        }
        out.extend(forward);
    }
    if options.rules == RuleSet::Strict {
        out.extend(source_changes(old, new));
    }
    out
}

/// The messages are written for old clients against a new server; the forward question
/// runs the same checker with the versions swapped, so its words swap too.
fn forward_words(message: &str) -> String {
    const SWAPS: [(&str, &str); 8] = [
        ("was removed", "was added"),
        ("was added", "was removed"),
        ("old clients", "new clients"),
        ("old receivers", "new receivers"),
        ("old senders", "new senders"),
        (
            "is no longer @idempotent",
            "is @idempotent only in the new version",
        ),
        ("a server refuses", "an old server refuses"),
        ("the server may now call", "an old server may call"),
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    'text: while !rest.is_empty() {
        for (from, to) in SWAPS {
            if let Some(after) = rest.strip_prefix(from) {
                out.push_str(to);
                rest = after;
                continue 'text;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The rule of an edit seen from the other side: what removes a method for old clients
/// adds one for new clients.
fn forward_rule(rule: &'static str) -> &'static str {
    const PAIRS: [(&str, &str); 8] = [
        ("METHOD_REMOVED", "METHOD_ADDED"),
        ("CLIENT_METHOD_ADDED", "CLIENT_METHOD_REMOVED"),
        ("PARAM_REQUIRED_ADDED", "PARAM_REQUIRED_REMOVED"),
        ("PARAM_REMOVED", "PARAM_ADDED"),
        ("CLIENT_PARAM_ADDED", "CLIENT_PARAM_REMOVED"),
        ("FIELD_REQUIRED_ADDED", "FIELD_REQUIRED_REMOVED"),
        ("ENUM_VARIANT_ADDED", "ENUM_VARIANT_REMOVED"),
        ("RESULT_REMOVED", "RESULT_ADDED"),
    ];
    for (a, b) in PAIRS {
        if rule == a {
            return b;
        }
        if rule == b {
            return a;
        }
    }
    match rule {
        "IDEMPOTENT_REMOVED" => "IDEMPOTENT_ADDED",
        other => other,
    }
}

/// Which of the two versions a type or value belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    Old,
    New,
}

/// The checker of one question: can a server built from `new` serve clients built from
/// `old`? (`Breaks::OldServers` asks it with the versions swapped.)
struct Checker<'a> {
    old: &'a Schema,
    new: &'a Schema,
    breaks: Breaks,
    out: Vec<Change>,
    /// Type definitions already compared, by (old name, new name, receiver side).
    seen: HashSet<(&'a str, &'a str, bool)>,
}

/// A value's two versions: what its sender and its receiver make of it.
struct Pair<'a> {
    sender: &'a Type,
    receiver: &'a Type,
    /// The receiver is the new version (old clients send to a new server).
    receiver_new: bool,
    flow: Flow,
}

impl<'a> Checker<'a> {
    fn new(old: &'a Schema, new: &'a Schema, breaks: Breaks) -> Self {
        Checker {
            old,
            new,
            breaks,
            out: Vec::new(),
            seen: HashSet::new(),
        }
    }

    fn report(&mut self, rule: &'static str, flow: Flow, span: Span, side: Side, message: String) {
        self.out.push(Change {
            rule,
            breaks: self.breaks,
            flow,
            message,
            span,
            in_old: side == Side::Old,
        });
    }

    fn run(mut self) -> Vec<Change> {
        let old_methods = methods(self.old);
        let new_methods = methods(self.new);
        // A wire name may name one method in each direction (`S.ping` served by the server
        // and by its clients): an old method's counterpart is the new one of its wire name
        // in its direction, else (a method that moved) one in a direction that had none.
        let has = |methods: &[(String, &Service, &Method)], wire: &str, d: Direction| {
            methods
                .iter()
                .any(|(w, _, m)| w == wire && m.direction == d)
        };
        for (wire, old_service, old_m) in &old_methods {
            let same_wire = || new_methods.iter().filter(|(w, _, _)| w == wire);
            let found = same_wire()
                .find(|(_, _, m)| m.direction == old_m.direction)
                .or_else(|| same_wire().find(|(_, _, m)| !has(&old_methods, wire, m.direction)));
            match (found, old_m.direction) {
                (Some((_, new_service, new_m)), _) => {
                    self.method(wire, old_service, old_m, new_service, new_m)
                }
                (None, Direction::ToServer) => self.report(
                    "METHOD_REMOVED",
                    Flow::Call,
                    old_m.name.span,
                    Side::Old,
                    format!("`{wire}` was removed: old clients call it"),
                ),
                // A new server no longer calls it: nothing breaks.
                (None, Direction::ToClient) => {}
            }
        }
        for (wire, _, new_m) in &new_methods {
            let known = old_methods.iter().any(|(w, _, o)| {
                w == wire
                    && (o.direction == new_m.direction || !has(&new_methods, wire, o.direction))
            });
            if !known && new_m.direction == Direction::ToClient {
                self.report(
                    "CLIENT_METHOD_ADDED",
                    Flow::Call,
                    new_m.name.span,
                    Side::New,
                    format!(
                        "the server may now call `{wire}` on its clients: old clients do not serve it"
                    ),
                );
            }
        }
        self.out
    }

    fn method(
        &mut self,
        wire: &str,
        _old_service: &'a Service,
        old: &'a Method,
        _new_service: &'a Service,
        new: &'a Method,
    ) {
        if old.kind != new.kind || old.direction != new.direction {
            let what = |m: &Method| {
                let side = if m.direction == Direction::ToClient {
                    " (in `client { }`)"
                } else {
                    ""
                };
                format!("{}{side}", m.kind.keyword())
            };
            self.report(
                "METHOD_KIND_CHANGED",
                Flow::Call,
                new.name.span,
                Side::New,
                format!(
                    "`{wire}` was a {} and is now a {}: its callers expect the old form",
                    what(old),
                    what(new)
                ),
            );
            return;
        }
        // For a server's method the caller is an old client and the callee the new server;
        // for a client's method the caller is the new server and the callee an old client.
        let to_server = old.direction == Direction::ToServer;
        let (param_flow, answer_flow) = if to_server {
            (Flow::ClientToServer, Flow::ServerToClient)
        } else {
            (Flow::ServerToClient, Flow::ClientToServer)
        };
        if old.kind == MethodKind::Topic {
            self.topic_key(wire, old, new);
        } else {
            self.params(wire, old, new, to_server, param_flow);
        }
        // The answer: result (rpc), items (stream, topic), travelling back.
        match (&old.returns, &new.returns) {
            (Some(o), Some(n)) => {
                let pair = if to_server {
                    Pair {
                        sender: n,
                        receiver: o,
                        receiver_new: false,
                        flow: answer_flow,
                    }
                } else {
                    Pair {
                        sender: o,
                        receiver: n,
                        receiver_new: true,
                        flow: answer_flow,
                    }
                };
                self.value(&pair, &format!("the result of `{wire}`"));
            }
            (Some(o), None) => {
                let (span, side) = if to_server {
                    (o.span, Side::Old)
                } else {
                    (new.name.span, Side::New)
                };
                if to_server {
                    self.report(
                        "RESULT_REMOVED",
                        answer_flow,
                        span,
                        side,
                        format!("`{wire}` no longer returns a value: old clients expect a `{o}`"),
                    );
                }
            }
            (None, Some(n)) => {
                if !to_server && !matches!(n.kind, TypeKind::Optional(_) | TypeKind::Json) {
                    self.report(
                        "RESULT_ADDED",
                        answer_flow,
                        n.span,
                        Side::New,
                        format!(
                            "`{wire}` now expects a `{n}` from clients, which old clients answer with null"
                        ),
                    );
                }
                if to_server && !matches!(n.kind, TypeKind::Optional(_) | TypeKind::Json) {
                    // Old clients expect `null`: only a generated client that ignores the
                    // result would cope.
                    self.report(
                        "RESULT_ADDED",
                        answer_flow,
                        n.span,
                        Side::New,
                        format!("`{wire}` now returns a `{n}` where old clients expect null"),
                    );
                }
            }
            (None, None) => {}
        }
        self.throws(wire, old, new, to_server, answer_flow);
        if to_server && old.is_idempotent() && !new.is_idempotent() {
            // Point at the file that changed: the new one (or, asked the other way round
            // with `--both`, the one that added the attribute).
            let (span, side) = match self.breaks {
                Breaks::OldServers => (old.name.span, Side::Old),
                _ => (new.name.span, Side::New),
            };
            self.report(
                "IDEMPOTENT_REMOVED",
                Flow::Call,
                span,
                side,
                format!(
                    "`{wire}` is no longer @idempotent: old clients still send it again after a reconnect"
                ),
            );
        }
    }

    fn params(
        &mut self,
        wire: &str,
        old: &'a Method,
        new: &'a Method,
        to_server: bool,
        flow: Flow,
    ) {
        // Who receives the params: the new server (old clients call it), or an old client
        // (a new server calls it).
        let (sender, receiver, receiver_new) = if to_server {
            (old, new, true)
        } else {
            (new, old, false)
        };
        let sender_side = if receiver_new { Side::Old } else { Side::New };
        for (i, rp) in receiver.params.iter().enumerate() {
            match sender
                .params
                .iter()
                .position(|sp| sp.name.name == rp.name.name)
            {
                Some(j) => {
                    let sp = &sender.params[j];
                    if i != j {
                        self.report(
                            "PARAM_MOVED",
                            flow,
                            new_param(new, &rp.name.name).map_or(new.name.span, |p| p.name.span),
                            Side::New,
                            format!(
                                "parameter `{}` of `{wire}` moved from position {} to {}: callers that send params by position (WAMP `args`, many JSON-RPC clients) send it in the wrong place",
                                rp.name.name,
                                if receiver_new { j + 1 } else { i + 1 },
                                if receiver_new { i + 1 } else { j + 1 }
                            ),
                        );
                    }
                    let pair = Pair {
                        sender: &sp.ty,
                        receiver: &rp.ty,
                        receiver_new,
                        flow,
                    };
                    self.value(&pair, &format!("parameter `{}` of `{wire}`", rp.name.name));
                }
                None if !is_optional(&rp.ty) => {
                    let (rule, message) = if receiver_new {
                        (
                            "PARAM_REQUIRED_ADDED",
                            format!(
                                "`{wire}` has a new required parameter `{}`: old clients do not send it",
                                rp.name.name
                            ),
                        )
                    } else {
                        (
                            "PARAM_REQUIRED_REMOVED",
                            format!(
                                "parameter `{}` of `{wire}` was removed: old clients still require it",
                                rp.name.name
                            ),
                        )
                    };
                    let span = if receiver_new {
                        rp.name.span
                    } else {
                        new.name.span
                    };
                    self.report(rule, flow, span, Side::New, message);
                }
                None => {}
            }
        }
        for sp in &sender.params {
            if receiver
                .params
                .iter()
                .any(|rp| rp.name.name == sp.name.name)
            {
                continue;
            }
            // The receiver's decoder refuses a parameter it does not know.
            let (rule, span, side, message) = if receiver_new {
                (
                    "PARAM_REMOVED",
                    sp.name.span,
                    sender_side,
                    format!(
                        "parameter `{}` of `{wire}` was removed: old clients still send it, and a server refuses unknown parameters that are not null (-32602)",
                        sp.name.name
                    ),
                )
            } else {
                (
                    "CLIENT_PARAM_ADDED",
                    sp.name.span,
                    sender_side,
                    format!(
                        "`{wire}` has a new parameter `{}`: the server sends it, and old clients refuse unknown parameters that are not null (-32602)",
                        sp.name.name
                    ),
                )
            };
            self.report(rule, flow, span, side, message);
        }
    }

    fn topic_key(&mut self, wire: &str, old: &'a Method, new: &'a Method) {
        let same = old.params.len() == new.params.len()
            && old
                .params
                .iter()
                .zip(&new.params)
                .all(|(o, n)| o.name.name == n.name.name && o.ty == n.ty);
        if !same {
            let key = |m: &Method| {
                m.params
                    .iter()
                    .map(|p| format!("{}: {}", p.name.name, p.ty))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            self.report(
                "TOPIC_KEY_CHANGED",
                Flow::ClientToServer,
                new.name.span,
                Side::New,
                format!(
                    "the key of topic `{wire}` changed from ({}) to ({}): old subscribers name keys the server no longer has",
                    key(old),
                    key(new)
                ),
            );
            return;
        }
        // The same names and types: the types' definitions must still take the old keys
        // (an enum that lost a variant would refuse old subscribers' keys).
        for (o, n) in old.params.iter().zip(&new.params) {
            let pair = Pair {
                sender: &o.ty,
                receiver: &n.ty,
                receiver_new: true,
                flow: Flow::ClientToServer,
            };
            self.value(&pair, &format!("key `{}` of topic `{wire}`", n.name.name));
        }
    }

    fn throws(
        &mut self,
        wire: &str,
        old: &'a Method,
        new: &'a Method,
        to_server: bool,
        flow: Flow,
    ) {
        // Errors travel with the answer: the receiver is the caller.
        let (sender_m, receiver_m, receiver_new) = if to_server {
            (new, old, false)
        } else {
            (old, new, true)
        };
        let (Some(s), Some(r)) = (&sender_m.throws, &receiver_m.throws) else {
            // A receiver without the error type gets typed errors as untyped ones; one with
            // it when the sender no longer throws loses nothing.
            return;
        };
        let (sender_schema, receiver_schema) = self.schemas(receiver_new);
        let (Some(TypeDef::Error(se)), Some(TypeDef::Error(re))) = (
            sender_schema.type_def(&s.name),
            receiver_schema.type_def(&r.name),
        ) else {
            return;
        };
        // Only WAMP names error types (`A.Variant` URIs), and WAMP carries no calls to
        // clients.
        if s.name != r.name && to_server {
            self.report(
                "ERROR_TYPE_RENAMED",
                flow,
                new.throws.as_ref().map_or(new.name.span, |t| t.span),
                Side::New,
                format!(
                    "`{wire}` throws `{}` instead of `{}`: WAMP clients see errors as `{}.Variant` URIs",
                    new.throws.as_ref().map_or("", |t| t.name.as_str()),
                    old.throws.as_ref().map_or("", |t| t.name.as_str()),
                    old.throws.as_ref().map_or("", |t| t.name.as_str()),
                ),
            );
        }
        self.error_def(se, re, receiver_new, flow);
    }

    fn schemas(&self, receiver_new: bool) -> (&'a Schema, &'a Schema) {
        if receiver_new {
            (self.old, self.new)
        } else {
            (self.new, self.old)
        }
    }

    /// Can the receiver's type take every value of the sender's?
    fn value(&mut self, pair: &Pair<'a>, what: &str) {
        let (s, r) = (pair.sender, pair.receiver);
        let new_span = if pair.receiver_new { r.span } else { s.span };
        let changed = |this: &mut Self, rule: &'static str, why: String| {
            this.report(rule, pair.flow, new_span, Side::New, why);
        };
        match (&s.kind, &r.kind) {
            (_, TypeKind::Json) => {}
            (TypeKind::Optional(si), TypeKind::Optional(ri)) => self.value(
                &Pair {
                    sender: si,
                    receiver: ri,
                    ..*pair
                },
                what,
            ),
            (_, TypeKind::Optional(ri)) => self.value(
                &Pair {
                    sender: s,
                    receiver: ri,
                    ..*pair
                },
                what,
            ),
            (TypeKind::Optional(_), _) => changed(
                self,
                "TYPE_OPTIONALITY",
                format!(
                    "{what} may be null or absent when sent (`{}`) but is required where it is received (`{}`)",
                    s, r
                ),
            ),
            (TypeKind::List(si), TypeKind::List(ri)) => self.value(
                &Pair {
                    sender: si,
                    receiver: ri,
                    ..*pair
                },
                what,
            ),
            (TypeKind::Map(sk, sv), TypeKind::Map(rk, rv)) => {
                self.value(
                    &Pair {
                        sender: sk,
                        receiver: rk,
                        ..*pair
                    },
                    what,
                );
                self.value(
                    &Pair {
                        sender: sv,
                        receiver: rv,
                        ..*pair
                    },
                    what,
                );
            }
            (TypeKind::Named(sn), TypeKind::Named(rn)) => self.named(sn, rn, pair, what),
            (sk, rk) if sk == rk => {}
            (sk, rk) if widens(sk, rk) => {}
            _ => changed(
                self,
                "TYPE_CHANGED",
                format!(
                    "{what} changed type: `{}` is sent where `{}` is expected",
                    s, r
                ),
            ),
        }
    }

    fn named(&mut self, sender: &'a str, receiver: &'a str, pair: &Pair<'a>, what: &str) {
        let (sender_schema, receiver_schema) = self.schemas(pair.receiver_new);
        let (Some(sd), Some(rd)) = (
            sender_schema.type_def(sender),
            receiver_schema.type_def(receiver),
        ) else {
            return;
        };
        // Compare each pair of definitions once per flow.
        let (old_name, new_name) = if pair.receiver_new {
            (sender, receiver)
        } else {
            (receiver, sender)
        };
        if !self.seen.insert((old_name, new_name, pair.receiver_new)) {
            return;
        }
        if sender != receiver {
            // Another type in that place (or the same one renamed): compatible only if its
            // definition takes the same values; then one change says so.
            let found = self.out.len();
            self.definitions(sd, rd, pair, what);
            if self.out.len() > found {
                let first = self.out[found].message.clone();
                self.out.truncate(found);
                let new_span = if pair.receiver_new {
                    pair.receiver.span
                } else {
                    pair.sender.span
                };
                let (old_t, new_t) = if pair.receiver_new {
                    (sender, receiver)
                } else {
                    (receiver, sender)
                };
                self.report(
                    "TYPE_CHANGED",
                    pair.flow,
                    new_span,
                    Side::New,
                    format!(
                        "{what} changed type from `{old_t}` to `{new_t}`, which differ: {first}"
                    ),
                );
            }
            return;
        }
        self.definitions(sd, rd, pair, what);
    }

    fn definitions(&mut self, sd: &'a TypeDef, rd: &'a TypeDef, pair: &Pair<'a>, what: &str) {
        let new_def = if pair.receiver_new { rd } else { sd };
        match (sd, rd) {
            (TypeDef::Struct(s), TypeDef::Struct(r)) => self.fields(
                &s.fields,
                &r.fields,
                &r.name.name,
                (pair.receiver_new, pair.flow),
                new_def.name().span,
            ),
            (TypeDef::Enum(s), TypeDef::Enum(r)) => self.enum_def(s, r, pair),
            (TypeDef::Error(s), TypeDef::Error(r)) => {
                self.error_def(s, r, pair.receiver_new, pair.flow)
            }
            _ => self.report(
                "TYPE_KIND_CHANGED",
                pair.flow,
                new_def.name().span,
                Side::New,
                format!(
                    "{what}: `{}` was a {} and is now a {}",
                    new_def.name().name,
                    if pair.receiver_new {
                        sd.keyword()
                    } else {
                        rd.keyword()
                    },
                    new_def.keyword()
                ),
            ),
        }
    }

    fn fields(
        &mut self,
        sender: &'a [Field],
        receiver: &'a [Field],
        owner: &str,
        (receiver_new, flow): (bool, Flow),
        new_owner_span: Span,
    ) {
        for rf in receiver {
            match sender.iter().find(|sf| sf.name.name == rf.name.name) {
                Some(sf) => self.value(
                    &Pair {
                        sender: &sf.ty,
                        receiver: &rf.ty,
                        receiver_new,
                        flow,
                    },
                    &format!("field `{owner}.{}`", rf.name.name),
                ),
                None if !is_optional(&rf.ty) => {
                    if receiver_new {
                        self.report(
                            "FIELD_REQUIRED_ADDED",
                            flow,
                            rf.name.span,
                            Side::New,
                            format!(
                                "field `{owner}.{}` was added as required: old senders leave it out (make it `{}?`)",
                                rf.name.name, rf.ty
                            ),
                        );
                    } else {
                        self.report(
                            "FIELD_REQUIRED_REMOVED",
                            flow,
                            new_owner_span,
                            Side::New,
                            format!(
                                "required field `{owner}.{}` was removed: old receivers still require it",
                                rf.name.name
                            ),
                        );
                    }
                }
                None => {}
            }
        }
    }

    fn enum_def(&mut self, sender: &'a Enum, receiver: &'a Enum, pair: &Pair<'a>) {
        let tagged = |e: &Enum| e.variants.iter().any(|v| v.fields.is_some());
        let new_enum = if pair.receiver_new { receiver } else { sender };
        if tagged(sender) != tagged(receiver) {
            self.report(
                "ENUM_SHAPE_CHANGED",
                pair.flow,
                new_enum.name.span,
                Side::New,
                format!(
                    "enum `{}` changed between unit variants (JSON strings) and variants with fields (JSON objects)",
                    new_enum.name.name
                ),
            );
            return;
        }
        let open = receiver.attrs.0.iter().any(|a| a.name.name == "open");
        for sv in &sender.variants {
            match receiver
                .variants
                .iter()
                .find(|rv| rv.name.name == sv.name.name)
            {
                Some(rv) => {
                    // A variant without fields reads as one with none (`{"kind": "V"}`).
                    let (sf, rf) = (
                        sv.fields.as_deref().unwrap_or(&[]),
                        rv.fields.as_deref().unwrap_or(&[]),
                    );
                    let owner = format!("{}.{}", receiver.name.name, rv.name.name);
                    let span = if pair.receiver_new {
                        rv.name.span
                    } else {
                        sv.name.span
                    };
                    self.fields(sf, rf, &owner, (pair.receiver_new, pair.flow), span);
                }
                None if open => {}
                None => {
                    let (rule, span, side, message) = if pair.receiver_new {
                        (
                            "ENUM_VARIANT_REMOVED",
                            sv.name.span,
                            Side::Old,
                            format!(
                                "variant `{}.{}` was removed: old clients may still send it",
                                sender.name.name, sv.name.name
                            ),
                        )
                    } else {
                        (
                            "ENUM_VARIANT_ADDED",
                            sv.name.span,
                            Side::New,
                            format!(
                                "variant `{}.{}` was added: old clients cannot decode it (declare the enum `@open` so they see an unknown variant)",
                                sender.name.name, sv.name.name
                            ),
                        )
                    };
                    self.report(rule, pair.flow, span, side, message);
                }
            }
        }
    }

    fn error_def(
        &mut self,
        sender: &'a ErrorDef,
        receiver: &'a ErrorDef,
        receiver_new: bool,
        flow: Flow,
    ) {
        let key = (
            if receiver_new {
                sender.name.name.as_str()
            } else {
                receiver.name.name.as_str()
            },
            if receiver_new {
                receiver.name.name.as_str()
            } else {
                sender.name.name.as_str()
            },
            !receiver_new,
        );
        // Errors are compared once per pair (the flag keeps them apart from values).
        if !self.seen.insert(key) {
            return;
        }
        for sv in &sender.variants {
            let by_name = receiver
                .variants
                .iter()
                .find(|rv| rv.name.name == sv.name.name);
            let by_code = receiver
                .variants
                .iter()
                .find(|rv| rv.code.value.is_some() && rv.code.value == sv.code.value);
            let new_v = |rv: &'a ErrorVariant| if receiver_new { rv } else { sv };
            match (by_name, by_code) {
                (Some(rv), _) if rv.code.value != sv.code.value => {
                    let nv = new_v(rv);
                    self.report(
                        "ERROR_CODE_CHANGED",
                        flow,
                        nv.code.span,
                        Side::New,
                        format!(
                            "error `{}.{}` changed its code from {} to {}: old clients no longer recognise it",
                            receiver.name.name,
                            rv.name.name,
                            if receiver_new { sv.code.value.unwrap_or(0) } else { rv.code.value.unwrap_or(0) },
                            if receiver_new { rv.code.value.unwrap_or(0) } else { sv.code.value.unwrap_or(0) },
                        ),
                    );
                }
                (Some(rv), _) => {
                    // A variant without fields has no data: as one with none.
                    let (sf, rf) = (
                        sv.fields.as_deref().unwrap_or(&[]),
                        rv.fields.as_deref().unwrap_or(&[]),
                    );
                    let owner = format!("{}.{}", receiver.name.name, rv.name.name);
                    let span = new_v(rv).name.span;
                    self.fields(sf, rf, &owner, (receiver_new, flow), span);
                }
                (None, Some(rv)) => {
                    let nv = new_v(rv);
                    self.report(
                        "ERROR_CODE_REUSED",
                        flow,
                        nv.code.span,
                        Side::New,
                        format!(
                            "code {} now means `{}`, not `{}`: old clients read it as the old variant",
                            sv.code.value.unwrap_or(0),
                            if receiver_new { &rv.name.name } else { &sv.name.name },
                            if receiver_new { &sv.name.name } else { &rv.name.name },
                        ),
                    );
                }
                // A variant the receiver does not know arrives as an untyped error
                // (`Error::Rpc` with its code): documented, not breaking.
                (None, None) => {}
            }
        }
    }
}

fn new_param<'m>(m: &'m Method, name: &str) -> Option<&'m Param> {
    m.params.iter().find(|p| p.name.name == name)
}

fn is_optional(ty: &Type) -> bool {
    matches!(ty.kind, TypeKind::Optional(_) | TypeKind::Json)
}

/// Every method of a schema with its wire name.
fn methods(schema: &Schema) -> Vec<(String, &Service, &Method)> {
    schema
        .services
        .iter()
        .flat_map(|s| s.methods.iter().map(move |m| (m.wire_name(s), s, m)))
        .collect()
}

/// Does every value of `sender` fit `receiver` (a wider integer, a wider float)?
fn widens(sender: &TypeKind, receiver: &TypeKind) -> bool {
    fn range(t: &TypeKind) -> Option<(i128, i128)> {
        Some(match t {
            TypeKind::I8 => (i8::MIN.into(), i8::MAX.into()),
            TypeKind::I16 => (i16::MIN.into(), i16::MAX.into()),
            TypeKind::I32 => (i32::MIN.into(), i32::MAX.into()),
            TypeKind::I64 => (i64::MIN.into(), i64::MAX.into()),
            TypeKind::U8 => (0, u8::MAX.into()),
            TypeKind::U16 => (0, u16::MAX.into()),
            TypeKind::U32 => (0, u32::MAX.into()),
            TypeKind::U64 => (0, u64::MAX.into()),
            _ => return None,
        })
    }
    match (range(sender), range(receiver)) {
        (Some((smin, smax)), Some((rmin, rmax))) => rmin <= smin && smax <= rmax,
        _ => matches!((sender, receiver), (TypeKind::F32, TypeKind::F64)),
    }
}

/// What only source code notices ([`RuleSet::Strict`]): a type, field, variant or method
/// renamed or removed although the wire would not tell.
fn source_changes(old: &Schema, new: &Schema) -> Vec<Change> {
    let mut out = Vec::new();
    let mut push = |rule: &'static str, span: Span, in_old: bool, message: String| {
        out.push(Change {
            rule,
            breaks: Breaks::Source,
            flow: Flow::Call,
            message,
            span,
            in_old,
        });
    };
    for t in &old.types {
        match new.type_def(&t.name().name) {
            None => push(
                "TYPE_REMOVED",
                t.name().span,
                true,
                format!(
                    "type `{}` was removed (or renamed): code that names it no longer compiles",
                    t.name()
                ),
            ),
            Some(n) => {
                let fields = |d: &'_ TypeDef| -> Vec<String> {
                    match d {
                        TypeDef::Struct(s) => {
                            s.fields.iter().map(|f| f.name.name.clone()).collect()
                        }
                        TypeDef::Enum(e) => {
                            e.variants.iter().map(|v| v.name.name.clone()).collect()
                        }
                        TypeDef::Error(e) => {
                            e.variants.iter().map(|v| v.name.name.clone()).collect()
                        }
                    }
                };
                let now = fields(n);
                for f in fields(t) {
                    if !now.contains(&f) {
                        push(
                            "MEMBER_REMOVED",
                            n.name().span,
                            false,
                            format!("`{}.{f}` was removed (or renamed): code that names it no longer compiles", n.name()),
                        );
                    }
                }
            }
        }
    }
    let new_methods = methods(new);
    for (wire, service, m) in methods(old) {
        if let Some((_, ns, nm)) = new_methods.iter().find(|(w, _, _)| *w == wire) {
            if nm.name.name != m.name.name || ns.name.name != service.name.name {
                push(
                    "METHOD_RENAMED",
                    nm.name.span,
                    false,
                    format!(
                        "`{}.{}` is now `{}.{}` (same wire name `{wire}`): code that calls it no longer compiles",
                        service.name, m.name, ns.name, nm.name
                    ),
                );
            }
        }
    }
    out
}

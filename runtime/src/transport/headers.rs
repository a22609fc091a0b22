//! Reading the request headers that decide a door (upgrade, content type, `Accept`), the
//! Origin rule (with the allowed hosts), and the CORS preflight answer.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use super::http::ResponseBody;

/// Does the header list `name` contain `token` (comma-separated, any case)?
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

pub(super) fn is_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, header::CONNECTION, "upgrade")
        && has_token(headers, header::UPGRADE, "websocket")
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

pub(super) fn accepts_events(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|v| {
        v.to_str().unwrap_or("").split(',').any(|t| {
            t.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
        })
    })
}

/// Who may drive the server from a browser, and by which host names it may be reached.
#[derive(Clone, Debug, Default)]
pub(crate) struct OriginRule {
    /// Origins allowed besides the same origin (`*`: any).
    pub(crate) allowed_origins: Vec<String>,
    /// Host names (`Host`) the server answers to; empty: see `loopback`.
    pub(crate) allowed_hosts: Vec<String>,
    /// The scheme the server's own listener speaks (`http`, `https`); `None` for a mounted
    /// service, whose application knows it (then the request's, if it says).
    pub(crate) scheme: Option<&'static str>,
    /// The server's listener is bound to a loopback address: without `allowed_hosts`,
    /// browsers are served only under a name that cannot be rebound (an IP address,
    /// `localhost`).
    pub(crate) loopback: bool,
}

/// Why the Origin rule refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `Host` is not on the allowed-hosts list (or, on loopback, a name that could be
    /// rebound).
    Host,
    /// The origin is neither the server's own nor allowed.
    Origin,
}

impl OriginRule {
    /// The Origin policy: no `Origin` (not a browser), the same origin — scheme, host and
    /// port — as the request's, or allowed. With an allowed-hosts list every request's
    /// `Host` must be on it. `Ok(Some(origin))` for a browser's allowed origin (echoed in
    /// CORS headers).
    pub(crate) fn check(
        &self,
        headers: &HeaderMap,
        uri: &http::Uri,
    ) -> Result<Option<HeaderValue>, Refused> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()));
        if !self.allowed_hosts.is_empty()
            && !host.is_some_and(|h| host_allowed(&self.allowed_hosts, h))
        {
            return Err(Refused::Host);
        }
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(None);
        };
        let Ok(text) = origin.to_str() else {
            return Err(Refused::Origin);
        };
        if self
            .allowed_origins
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(text))
        {
            return Ok(Some(origin.clone()));
        }
        let Some(host) = host else {
            return Err(Refused::Origin);
        };
        let scheme = self.scheme.or_else(|| uri.scheme_str());
        if !same_origin(text, scheme, host) {
            return Err(Refused::Origin);
        }
        // The page's origin is the server's own — by the name the browser used, which a
        // DNS rebinding attack controls. On loopback, only names that cannot be rebound.
        if self.allowed_hosts.is_empty() && self.loopback && !unrebindable(split_port(host).0) {
            return Err(Refused::Host);
        }
        Ok(Some(origin.clone()))
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// `host[:port]` (`[v6]:port` too) split into the host and its port, if given.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((v6, after)) => (&authority[..v6.len() + 2], after.strip_prefix(':')),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

/// Is `origin` (`scheme://host[:port]`) the origin of a request to `host` (the `Host`
/// header) over `scheme` (if known)? Scheme, host and port must all be equal, a port left
/// out being the scheme's default.
fn same_origin(origin: &str, scheme: Option<&str>, host: &str) -> bool {
    let Some((origin_scheme, origin_authority)) = origin.split_once("://") else {
        return false;
    };
    let origin_scheme = origin_scheme.to_ascii_lowercase();
    if scheme.is_some_and(|s| !s.eq_ignore_ascii_case(&origin_scheme)) {
        return false;
    }
    let Some(default) = default_port(&origin_scheme) else {
        return false;
    };
    let port = |p: Option<&str>| match p {
        None => Some(default),
        Some(p) => p.parse::<u16>().ok(),
    };
    let (origin_host, origin_port) = split_port(origin_authority);
    let (host, host_port) = split_port(host);
    !host.is_empty()
        && origin_host.eq_ignore_ascii_case(host)
        && port(origin_port).is_some()
        && port(origin_port) == port(host_port)
}

/// A host name no DNS answer can point elsewhere: an IP address, or `localhost` (and its
/// subdomains, RFC 6761, which browsers resolve to loopback themselves).
fn unrebindable(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host.parse::<std::net::Ipv4Addr>().is_ok()
        || (host.starts_with('[') && host.ends_with(']'))
        || host == "localhost"
        || host.ends_with(".localhost")
}

/// Is `host` (`name[:port]`) on the list? Entries: `name` (any port), `name:port`, `.name`
/// (the name and its subdomains), or `*`.
fn host_allowed(allowed: &[String], host: &str) -> bool {
    let (name, port) = split_port(host);
    let name = name.trim_end_matches('.');
    allowed.iter().any(|entry| {
        if entry == "*" {
            return true;
        }
        let (entry_name, entry_port) = split_port(entry);
        if entry_port.is_some() && entry_port != port {
            return false;
        }
        match entry_name.strip_prefix('.') {
            Some(domain) => {
                name.eq_ignore_ascii_case(domain)
                    || (name.len() > domain.len()
                        && name[name.len() - domain.len()..].eq_ignore_ascii_case(domain)
                        && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
            }
            None => name.eq_ignore_ascii_case(entry_name),
        }
    })
}

/// `OPTIONS`: the CORS preflight of a browser whose origin passed (the caller adds
/// `Access-Control-Allow-Origin`).
pub(super) fn preflight(headers: &HeaderMap) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(
        header::ALLOW,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, GET, OPTIONS"),
    );
    let asked = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("content-type"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn content_types() {
        assert!(is_json(&headers(&[("content-type", "application/json")])));
        assert!(is_json(&headers(&[(
            "content-type",
            "Application/JSON; charset=utf-8"
        )])));
        assert!(!is_json(&headers(&[("content-type", "text/plain")])));
        assert!(!is_json(&headers(&[(
            "content-type",
            "application/json-patch+json"
        )])));
        assert!(!is_json(&headers(&[])));
    }

    #[test]
    fn accept_lists() {
        assert!(accepts_events(&headers(&[("accept", "text/event-stream")])));
        assert!(accepts_events(&headers(&[(
            "accept",
            "application/json, text/event-stream;q=0.9"
        )])));
        assert!(!accepts_events(&headers(&[("accept", "application/json")])));
    }

    #[test]
    fn upgrade_needs_both_headers() {
        assert!(is_upgrade(&headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket")
        ])));
        assert!(!is_upgrade(&headers(&[("upgrade", "websocket")])));
    }

    fn rule(loopback: bool, scheme: Option<&'static str>) -> OriginRule {
        OriginRule {
            allowed_origins: vec!["https://app.example".into()],
            allowed_hosts: Vec::new(),
            scheme,
            loopback,
        }
    }

    fn check(rule: &OriginRule, host: &str, origin: Option<&str>) -> Result<bool, Refused> {
        let mut pairs = vec![("host", host)];
        pairs.extend(origin.map(|o| ("origin", o)));
        rule.check(&headers(&pairs), &"/".parse().unwrap())
            .map(|o| o.is_some())
    }

    #[test]
    fn same_origin_means_scheme_host_and_port() {
        let plain = rule(false, Some("http"));
        assert_eq!(check(&plain, "app.test:9000", None), Ok(false));
        assert_eq!(
            check(&plain, "app.test:9000", Some("http://app.test:9000")),
            Ok(true)
        );
        assert_eq!(
            check(&plain, "App.Test:9000", Some("http://app.test:9000")),
            Ok(true)
        );
        assert_eq!(check(&plain, "app.test", Some("http://app.test")), Ok(true));
        assert_eq!(
            check(&plain, "app.test:80", Some("http://app.test")),
            Ok(true)
        );
        // Another scheme, another port, another host: another origin.
        for (host, origin) in [
            ("app.test", "https://app.test"),
            ("app.test:9000", "https://app.test:9000"),
            ("app.test:9000", "http://app.test:9001"),
            ("app.test:9000", "http://app.test"),
            ("app.test", "http://app.test:8080"),
            ("app.test:9000", "http://other.test:9000"),
            ("app.test:9000", "null"),
            ("app.test:9000", "app.test:9000"),
        ] {
            assert_eq!(
                check(&plain, host, Some(origin)),
                Err(Refused::Origin),
                "{host} {origin}"
            );
        }
        let tls = rule(false, Some("https"));
        assert_eq!(check(&tls, "app.test", Some("https://app.test")), Ok(true));
        assert_eq!(
            check(&tls, "app.test", Some("http://app.test")),
            Err(Refused::Origin)
        );
        // The allow-list, whatever the host.
        assert_eq!(
            check(&plain, "app.test", Some("https://app.example")),
            Ok(true)
        );
        // A mounted service that does not know its scheme: the origin's, ports compared.
        let mounted = rule(false, None);
        assert_eq!(
            check(&mounted, "app.test", Some("https://app.test")),
            Ok(true)
        );
        assert_eq!(
            check(&mounted, "app.test:80", Some("https://app.test")),
            Err(Refused::Origin)
        );
    }

    #[test]
    fn on_loopback_only_unrebindable_names_pass_as_same_origin() {
        let lo = rule(true, Some("http"));
        for host in [
            "127.0.0.1:9000",
            "localhost:9000",
            "app.localhost:9000",
            "[::1]:9000",
        ] {
            let origin = format!("http://{host}");
            assert_eq!(check(&lo, host, Some(&origin)), Ok(true), "{host}");
        }
        let rebound = "rebind.attacker.example:9000";
        assert_eq!(
            check(&lo, rebound, Some("http://rebind.attacker.example:9000")),
            Err(Refused::Host)
        );
        // Non-browser clients, and allowed origins, as before.
        assert_eq!(check(&lo, rebound, None), Ok(false));
        assert_eq!(check(&lo, rebound, Some("https://app.example")), Ok(true));
    }

    #[test]
    fn allowed_hosts() {
        let mut r = rule(true, Some("http"));
        r.allowed_hosts = vec![
            "app.test".into(),
            ".corp.test".into(),
            "api.test:8443".into(),
        ];
        assert_eq!(check(&r, "app.test:9000", None), Ok(false));
        assert_eq!(check(&r, "APP.test", None), Ok(false));
        assert_eq!(check(&r, "corp.test", None), Ok(false));
        assert_eq!(check(&r, "a.b.corp.test:1", None), Ok(false));
        assert_eq!(check(&r, "api.test:8443", None), Ok(false));
        assert_eq!(check(&r, "api.test:8444", None), Err(Refused::Host));
        assert_eq!(check(&r, "evilcorp.test", None), Err(Refused::Host));
        assert_eq!(check(&r, "localhost:9000", None), Err(Refused::Host));
        // Listed: same-origin pages under that name are served, loopback or not.
        assert_eq!(
            check(&r, "app.test:9000", Some("http://app.test:9000")),
            Ok(true)
        );
        r.allowed_hosts = vec!["*".into()];
        assert_eq!(
            check(
                &r,
                "rebind.attacker.example:9000",
                Some("http://rebind.attacker.example:9000")
            ),
            Ok(true)
        );
    }
}

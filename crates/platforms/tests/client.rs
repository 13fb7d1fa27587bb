//! A minimal HTTP/1.1 client (one request per connection), so the tests depend on no client library.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use storyreel_platforms::{Platform, Platforms};

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }
}

/// Sends one request; `target` is a path (`/token`) or a URL on the server. An error means the
/// connection closed without a response.
pub fn send(
    p: &Platforms,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = connect(p, method, target, headers, body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

/// Writes a request and returns the open connection without reading.
pub fn connect(
    p: &Platforms,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<TcpStream> {
    let base = p.base_url();
    let path = match target.strip_prefix(base.trim_end_matches('/')) {
        Some(rest) => rest.to_owned(),
        None => target.to_owned(),
    };
    let mut stream = TcpStream::connect(("127.0.0.1", p.port()))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
        p.port(),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    Ok(stream)
}

fn parse(raw: &[u8]) -> std::io::Result<Response> {
    let closed = || {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed without a response",
        )
    };
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(closed)?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(closed)?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

pub fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish().into_bytes()
}

pub const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
pub const JSON: (&str, &str) = ("Content-Type", "application/json; charset=UTF-8");

/// An access token, got the way a client gets one: by refreshing a granted refresh token.
pub fn access_token(p: &Platforms, platform: Platform) -> String {
    let refresh = p.grant_refresh_token(platform);
    let reply = match platform {
        Platform::YouTube => send(
            p,
            "POST",
            "/token",
            &[FORM],
            &form(&[
                ("client_id", storyreel_platforms::GOOGLE_CLIENT_ID),
                ("client_secret", storyreel_platforms::GOOGLE_CLIENT_SECRET),
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
            ]),
        ),
        Platform::TikTok => send(
            p,
            "POST",
            "/v2/oauth/token/",
            &[FORM],
            &form(&[
                ("client_key", storyreel_platforms::TIKTOK_CLIENT_KEY),
                ("client_secret", storyreel_platforms::TIKTOK_CLIENT_SECRET),
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
            ]),
        ),
    }
    .unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// The query parameter `name` of a URL.
pub fn url_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Deterministic bytes that look like nothing in particular.
pub fn bytes(n: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

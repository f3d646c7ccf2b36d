//! The HTTP client of the sync jobs: blocking `ureq` over rustls with the system's root
//! certificates, connect and overall timeouts, a cap on response size, and retries with
//! exponential backoff for transient failures.
//!
//! Retried: connection failures and resets, timeouts, a body cut short, and the statuses 408,
//! 429, 500, 502, 503 and 504. A `Retry-After` header (seconds or an HTTP date) on such a
//! response sets the wait instead of the backoff, capped at [`HttpOptions::max_wait`]. Not
//! retried: 4xx statuses other than 408/429 (401, 403, 404 need a person), DNS failures, bad
//! URLs. Credentials are only ever sent to the origin (scheme, host, port) the job was
//! configured with; a next-page link to another origin is refused.

use super::{ApiKey, Ctx, Event, SyncError};
use std::io::Read;
use std::time::Duration;
use url::Url;

/// Timeouts, retries and limits of the HTTP client.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Limit for establishing a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Limit for one whole request, body included.
    pub timeout: Duration,
    /// Retries after the first attempt for transient failures.
    pub retries: u32,
    /// The first backoff; it doubles with each retry.
    pub backoff: Duration,
    /// The longest wait between attempts (backoff or `Retry-After`).
    pub max_wait: Duration,
    /// The largest response body accepted, in bytes.
    pub max_body: u64,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            connect_timeout: Duration::from_secs(15),
            timeout: Duration::from_secs(120),
            retries: 3,
            backoff: Duration::from_secs(1),
            max_wait: Duration::from_secs(300),
            max_body: 512 << 20,
        }
    }
}

/// How requests authenticate.
#[derive(Clone, Debug)]
pub(crate) enum Auth {
    /// No credentials.
    None,
    /// HTTP basic auth (TAXII): the user and the key as password.
    Basic(String, ApiKey),
    /// `Authorization: Bearer KEY` (REST).
    Bearer(ApiKey),
}

/// A response with status 2xx and its whole body.
pub(crate) struct Response {
    headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// A header's value (case-insensitive name).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The blocking client of one job.
pub(crate) struct Client {
    agent: ureq::Agent,
    opts: HttpOptions,
    authorization: Option<String>,
    /// The origin credentials may go to.
    origin: url::Origin,
    /// Strings that must never appear in a message: the key and its encodings.
    secrets: Vec<String>,
}

/// One attempt's failure: the error, and whether (and when) to retry.
struct Failure {
    error: SyncError,
    retry: bool,
    retry_after: Option<Duration>,
}

impl Client {
    /// A client that sends `auth` to `base`'s origin only.
    pub(crate) fn new(opts: &HttpOptions, auth: Auth, base: &Url) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(opts.connect_timeout)
            .timeout(opts.timeout)
            .redirects(5)
            .user_agent(concat!("iocmatch/", env!("CARGO_PKG_VERSION")))
            .build();
        let mut secrets = Vec::new();
        let authorization = match &auth {
            Auth::None => None,
            Auth::Basic(user, key) => {
                let b64 = base64(format!("{user}:{}", key.expose()).as_bytes());
                secrets.push(key.expose().to_string());
                secrets.push(b64.clone());
                Some(format!("Basic {b64}"))
            }
            Auth::Bearer(key) => {
                secrets.push(key.expose().to_string());
                Some(format!("Bearer {}", key.expose()))
            }
        };
        Client {
            agent,
            opts: opts.clone(),
            authorization,
            origin: base.origin(),
            secrets,
        }
    }

    /// Replaces every secret in `s` with `***`.
    pub(crate) fn scrub(&self, s: &str) -> String {
        let mut out = s.to_string();
        for secret in &self.secrets {
            if !secret.is_empty() && out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }

    /// GETs `url` with `Accept: accept`, retrying transient failures, and returns a 2xx response
    /// with its body.
    pub(crate) fn get(
        &self,
        url: &Url,
        accept: &str,
        ctx: &mut Ctx<'_>,
    ) -> Result<Response, SyncError> {
        let shown = display_url(url);
        if url.origin() != self.origin && self.authorization.is_some() {
            return Err(SyncError::Protocol {
                url: shown,
                detail: format!(
                    "refusing to send the API key to another origin than {}",
                    self.origin.ascii_serialization()
                ),
            });
        }
        let attempts = self.opts.retries.saturating_add(1);
        let mut attempt = 1;
        loop {
            ctx.check_stop()?;
            ctx.emit(Event::Request { url: shown.clone() });
            match self.once(url, &shown, accept) {
                Ok(r) => return Ok(r),
                Err(f) if f.retry && attempt < attempts => {
                    let backoff = self
                        .opts
                        .backoff
                        .saturating_mul(1u32 << (attempt - 1).min(20));
                    let wait = f.retry_after.unwrap_or(backoff).min(self.opts.max_wait);
                    attempt += 1;
                    ctx.emit(Event::Retry {
                        url: shown.clone(),
                        attempt,
                        attempts,
                        wait,
                        reason: f.error.to_string(),
                    });
                    ctx.sleep(wait)?;
                }
                Err(f) => return Err(f.error),
            }
        }
    }

    fn once(&self, url: &Url, shown: &str, accept: &str) -> Result<Response, Failure> {
        let mut req = self.agent.request_url("GET", url).set("Accept", accept);
        if let Some(a) = &self.authorization {
            req = req.set("Authorization", a);
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                let retry_after = r.header("Retry-After").and_then(parse_retry_after);
                let mut body = Vec::new();
                let _ = r.into_reader().take(4096).read_to_end(&mut body);
                let retry = matches!(status, 408 | 429 | 500 | 502 | 503 | 504);
                return Err(Failure {
                    error: SyncError::Http {
                        url: shown.to_string(),
                        status,
                        detail: self.snippet(&body),
                    },
                    retry,
                    retry_after,
                });
            }
            Err(ureq::Error::Transport(t)) => return Err(self.transport(shown, &t)),
        };
        let headers: Vec<(String, String)> = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
            .collect();
        let mut body = Vec::new();
        let read = resp
            .into_reader()
            .take(self.opts.max_body.saturating_add(1))
            .read_to_end(&mut body);
        if let Err(e) = read {
            let timed_out = matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            );
            let detail = self.scrub(&format!("{e} after {} bytes", body.len()));
            return Err(Failure {
                error: if timed_out {
                    SyncError::Timeout {
                        url: shown.to_string(),
                        detail,
                    }
                } else {
                    SyncError::Truncated {
                        url: shown.to_string(),
                        detail,
                    }
                },
                retry: true,
                retry_after: None,
            });
        }
        if body.len() as u64 > self.opts.max_body {
            return Err(Failure {
                error: SyncError::Protocol {
                    url: shown.to_string(),
                    detail: format!(
                        "response larger than the limit of {} bytes",
                        self.opts.max_body
                    ),
                },
                retry: false,
                retry_after: None,
            });
        }
        Ok(Response { headers, body })
    }

    fn transport(&self, shown: &str, t: &ureq::Transport) -> Failure {
        use std::error::Error as _;
        let io_kind = t
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind);
        let mut detail = match io_kind {
            Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".to_string(),
            Some(std::io::ErrorKind::ConnectionReset) => "connection reset by the server".into(),
            Some(std::io::ErrorKind::ConnectionAborted) => "connection aborted".into(),
            _ => t
                .message()
                .map(str::to_string)
                .or_else(|| t.source().map(|s| s.to_string()))
                .unwrap_or_else(|| t.kind().to_string()),
        };
        if let Some(src) = t.source() {
            let s = src.to_string();
            if !detail.contains(&s)
                && !matches!(io_kind, Some(k) if k == std::io::ErrorKind::ConnectionRefused)
            {
                detail = format!("{detail}: {s}");
            }
        }
        let detail = self.scrub(&detail);
        let url = shown.to_string();
        use ureq::ErrorKind as K;
        let timed_out = matches!(
            io_kind,
            Some(std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
        );
        let (error, retry) = if timed_out {
            (SyncError::Timeout { url, detail }, true)
        } else {
            match t.kind() {
                K::ConnectionFailed | K::Io | K::ProxyConnect => {
                    (SyncError::Connect { url, detail }, true)
                }
                K::Dns => (SyncError::Connect { url, detail }, false),
                K::BadStatus | K::BadHeader => (
                    SyncError::Protocol {
                        url,
                        detail: format!("not an HTTP response: {detail}"),
                    },
                    true,
                ),
                _ => (SyncError::Config(format!("{url}: {detail}")), false),
            }
        };
        Failure {
            error,
            retry,
            retry_after: None,
        }
    }

    /// The first 200 printable characters of an error body, scrubbed.
    fn snippet(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let one_line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let clipped: String = one_line.chars().take(200).collect();
        self.scrub(&clipped)
    }
}

/// A URL as shown in messages: without user info.
pub(crate) fn display_url(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// Parses a configured URL: http or https, no credentials in it.
pub(crate) fn parse_url(s: &str, what: &str) -> Result<Url, SyncError> {
    let url = Url::parse(s.trim()).map_err(|e| SyncError::Config(format!("{what}: {s:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SyncError::Config(format!(
            "{what}: {}: only http and https URLs are supported",
            display_url(&url)
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SyncError::Config(format!(
            "{what}: credentials in the URL are not accepted: give the key with --key-file or ${}",
            super::KEY_ENV
        )));
    }
    Ok(url)
}

/// `Retry-After`: delay seconds, or an HTTP date (IMF-fixdate) relative to now.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let parts: Vec<&str> = v.split_whitespace().collect();
    if parts.len() != 6 {
        return None;
    }
    let day: u32 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m.eq_ignore_ascii_case(parts[2]))?
        + 1;
    let year: u32 = parts[3].parse().ok()?;
    let iso = format!("{year:04}-{month:02}-{day:02}T{}Z", parts[4]);
    let at = crate::time::Timestamp::parse(&iso)?;
    let now = crate::time::Timestamp::now();
    let ticks = at.ticks().saturating_sub(now.ticks()).max(0);
    Some(Duration::from_nanos(
        u64::try_from(ticks).unwrap_or(0).saturating_mul(100),
    ))
}

/// Standard base64 with padding.
fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"apikey:s3cret"), "YXBpa2V5OnMzY3JldA==");
    }

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert!(parse_retry_after("Fri, 31 Dec 9998 23:59:59 GMT").is_some());
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn urls() {
        assert!(parse_url("ftp://x/", "--url").is_err());
        let e = parse_url("https://u:hunter2@x/", "--url")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"));
        assert!(parse_url("not a url", "--url").is_err());
        assert!(parse_url("https://x/api/", "--url").is_ok());
    }

    #[test]
    fn scrubbing() {
        let base = Url::parse("http://127.0.0.1/").unwrap();
        let key = ApiKey::new("s3cret").unwrap();
        let c = Client::new(
            &HttpOptions::default(),
            Auth::Basic("apikey".into(), key),
            &base,
        );
        assert_eq!(
            c.scrub("bad key s3cret (YXBpa2V5OnMzY3JldA==)"),
            "bad key *** (***)"
        );
    }
}

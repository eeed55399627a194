//! Console sessions: a principal signs in with its token once and gets a session cookie
//! (HttpOnly, SameSite=Strict, `Secure` under TLS, path `/console`). The server keeps the
//! session — never the token, only its SHA-256, which is the principal's current lookup key —
//! so that a rotated or disabled principal loses every session at once. Sessions expire after
//! [`IDLE`] without a request and [`ABSOLUTE`] after sign-in, whichever comes first; each
//! carries its own CSRF token, required in the `csrf` field of every form.
//!
//! Sessions live in this node's memory, bounded by [`MAX_SESSIONS`]: a restart or another
//! node behind a load balancer asks the person to sign in again (no secret to share).

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

/// A session ends after this long without a request.
pub const IDLE: SignedDuration = SignedDuration::from_mins(30);
/// And this long after sign-in, however busy.
pub const ABSOLUTE: SignedDuration = SignedDuration::from_hours(12);
/// Sessions one node keeps at once; sign-in beyond this refuses (expired ones are purged first).
pub const MAX_SESSIONS: usize = 10_000;

/// The cookie that names a session.
pub const COOKIE: &str = "charter_session";
/// The cookie that carries the sign-in form's CSRF token before any session exists.
pub const PRE_COOKIE: &str = "charter_signin";

/// A fresh random value for a cookie or a CSRF token (256 bits, base64url).
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// Compares two secrets through their digests, so the comparison's timing says nothing about
/// either value.
pub fn same_secret(a: &str, b: &str) -> bool {
    digest(a) == digest(b)
}

/// One signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: String,
    /// SHA-256 (hex) of the token the person signed in with: the session lives only while it
    /// is still the principal's token.
    pub token_hash: String,
    pub csrf: String,
    pub signed_in_at: Timestamp,
    pub last_seen: Timestamp,
}

impl Session {
    fn expired(&self, now: Timestamp) -> bool {
        now.duration_since(self.last_seen) >= IDLE
            || now.duration_since(self.signed_in_at) >= ABSOLUTE
    }
}

/// Why a cookie did not yield a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapsed {
    Unknown,
    Expired,
}

/// The sessions of this node, keyed by the digest of their cookie value.
#[derive(Debug, Default)]
pub struct Sessions {
    by_cookie: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Starts a session; answers the cookie value, or `None` when the node holds
    /// [`MAX_SESSIONS`] live sessions.
    pub fn start(
        &self,
        principal: &str,
        token_hash: &str,
        now: Timestamp,
    ) -> Option<(String, Session)> {
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| !s.expired(now));
            if map.len() >= MAX_SESSIONS {
                return None;
            }
        }
        let cookie = random_token();
        let session = Session {
            principal: principal.to_owned(),
            token_hash: token_hash.to_owned(),
            csrf: random_token(),
            signed_in_at: now,
            last_seen: now,
        };
        map.insert(digest(&cookie), session.clone());
        Some((cookie, session))
    }

    /// The session a cookie names, touched (its idle clock restarts); an expired one is
    /// removed.
    pub fn touch(&self, cookie: &str, now: Timestamp) -> Result<Session, Lapsed> {
        let mut map = self.lock();
        let key = digest(cookie);
        let Some(session) = map.get_mut(&key) else {
            return Err(Lapsed::Unknown);
        };
        if session.expired(now) {
            map.remove(&key);
            return Err(Lapsed::Expired);
        }
        session.last_seen = now;
        Ok(session.clone())
    }

    /// Ends the session a cookie names (sign-out, or a principal no longer valid).
    pub fn end(&self, cookie: &str) {
        self.lock().remove(&digest(cookie));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic while holding the lock cannot leave a half-written session: every update
        // is a single insert, remove or field store.
        self.by_cookie.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The value of cookie `name` in a `Cookie` header, if present.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// A `Set-Cookie` value for a console cookie: HttpOnly, SameSite=Strict, path `/console`,
/// `Secure` when the listener is TLS; `max_age` `None` makes it a browser-session cookie,
/// `Some(0)` deletes it.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_session_ends_when_idle_or_too_old() {
        let sessions = Sessions::default();
        let start = t("2026-12-01T08:00:00Z");
        let (cookie, s) = sessions.start("prn_1", "abc", start).unwrap();
        assert_eq!(s.principal, "prn_1");
        // Touched every 20 minutes it stays alive...
        let mut now = start;
        for _ in 0..30 {
            now += SignedDuration::from_mins(20);
            if now.duration_since(start) >= ABSOLUTE {
                break;
            }
            assert!(sessions.touch(&cookie, now).is_ok(), "at {now}");
        }
        // ...until twelve hours after sign-in.
        assert_eq!(
            sessions.touch(&cookie, start + ABSOLUTE).unwrap_err(),
            Lapsed::Expired
        );
        assert_eq!(
            sessions.touch(&cookie, start + ABSOLUTE).unwrap_err(),
            Lapsed::Unknown
        );

        let (idle, _) = sessions.start("prn_1", "abc", start).unwrap();
        assert_eq!(
            sessions.touch(&idle, start + IDLE).unwrap_err(),
            Lapsed::Expired
        );
    }

    #[test]
    fn sign_out_forgets_the_session_and_cookies_are_strict() {
        let sessions = Sessions::default();
        let now = t("2026-12-01T08:00:00Z");
        let (cookie, _) = sessions.start("prn_1", "abc", now).unwrap();
        sessions.end(&cookie);
        assert_eq!(sessions.touch(&cookie, now).unwrap_err(), Lapsed::Unknown);
        assert!(sessions.is_empty());
        let c = set_cookie(COOKIE, "v", true, None);
        assert_eq!(
            c,
            "charter_session=v; Path=/console; HttpOnly; SameSite=Strict; Secure"
        );
        assert_eq!(
            cookie_value("a=1; charter_session=xyz; b=2", COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie_value("charter_session_x=1", COOKIE), None);
    }
}

//! Listeners: a bound TCP listener, optional TLS (rustls), one task per connection, and
//! graceful shutdown that lets in-flight requests finish. Slow and greedy clients are bounded
//! ([`ServeOptions`]): a cap on open connections overall and per client address, a TLS
//! handshake timeout, a header-read timeout (hyper's; on HTTP/1 it also bounds the wait for
//! the next request of a kept-alive connection), an idle timeout (no byte read or written
//! and no request in flight) and a body-read timeout (the whole body, from the request head).
//! Each request carries its resolved [`ClientAddr`] (trusted proxies honoured).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use charter_gateway::forwarded::{ClientAddr, TrustedProxies};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// How a listener bounds its clients. The defaults are safe for a listener facing partners.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Open connections at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Open connections per TCP peer address; further ones are closed at once. Trusted
    /// proxies are exempt (they carry many clients) and bounded by `max_connections` only.
    pub max_connections_per_address: usize,
    /// Time to complete a TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time to receive a request's head, from the moment the connection waits for one.
    pub header_read_timeout: Duration,
    /// A connection with no byte read or written and no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// Time to receive a request's whole body, from its head.
    pub body_read_timeout: Duration,
    /// Peers whose `X-Forwarded-For` / `Forwarded` name the real client.
    pub trusted_proxies: Arc<TrustedProxies>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_address: 256,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            trusted_proxies: Arc::default(),
        }
    }
}

/// A TLS acceptor from PEM files (certificate chain and private key).
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).with_context(|| format!("opening {}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("reading certificates from {}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("no certificate in {}", cert.display());
    }
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).with_context(|| format!("opening {}", key.display()))?,
    ))
    .with_context(|| format!("reading the private key from {}", key.display()))?
    .with_context(|| format!("no private key in {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not form a usable pair")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` with the default [`ServeOptions`] until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
) {
    serve_with(listener, app, tls, ServeOptions::default(), shutdown).await;
}

/// Open connections per peer address; a slot is given back when its guard drops.
#[derive(Clone, Default)]
struct PerAddress(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct AddressSlot {
    counts: PerAddress,
    ip: IpAddr,
}

impl PerAddress {
    fn take(&self, ip: IpAddr, cap: usize) -> Option<AddressSlot> {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains open connections.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) {
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "the listener has no local address");
            return;
        }
    };
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64);
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let per_address = PerAddress::default();
    let options = Arc::new(options);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let address_slot = if options.trusted_proxies.contains(peer.ip()) {
            None
        } else {
            match per_address.take(peer.ip(), options.max_connections_per_address) {
                Some(slot) => Some(slot),
                None => {
                    metrics::counter!("charter_connections_refused_total", "why" => "per_address")
                        .increment(1);
                    drop(stream);
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let in_flight = activity.clone();
        let opts = options.clone();
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let (mut parts, body) = req.into_parts();
            let addr = ClientAddr::resolve(peer.ip(), local, &parts.headers, &opts.trusted_proxies);
            parts.extensions.insert(ConnectInfo::<SocketAddr>(peer));
            parts.extensions.insert(addr);
            let body = axum::body::Body::new(Deadline::new(body, opts.body_read_timeout));
            let req = hyper::Request::from_parts(parts, body);
            let guard = in_flight.request();
            let app = app.clone();
            async move {
                let resp = tower::ServiceExt::oneshot(app, req).await;
                drop(guard);
                resp
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let options = options.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _slot = address_slot;
            let idle = options.idle_timeout;
            let result = match tls {
                None => {
                    let io = Tracked::new(stream, activity.clone());
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                    tokio::select! {
                        r = watcher.watch(conn.into_owned()) => r,
                        () = activity.idle_for(idle) => Ok(()),
                    }
                }
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(
                        options.tls_handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let io = Tracked::new(stream, activity.clone());
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                    tokio::select! {
                        r = watcher.watch(conn.into_owned()) => r,
                        () = activity.idle_for(idle) => Ok(()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout");
    }
}

/// When a connection last moved a byte, and how many of its requests are in flight.
#[derive(Clone)]
struct Activity(Arc<(tokio::time::Instant, AtomicU64, AtomicUsize)>);

struct InFlight(Activity);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        (self.0).0.2.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    fn new() -> Self {
        Self(Arc::new((
            tokio::time::Instant::now(),
            AtomicU64::new(0),
            AtomicUsize::new(0),
        )))
    }

    fn touch(&self) {
        let ms = u64::try_from(self.0.0.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.1.store(ms, Ordering::Release);
    }

    fn request(&self) -> InFlight {
        self.0.2.fetch_add(1, Ordering::AcqRel);
        self.touch();
        InFlight(self.clone())
    }

    /// Resolves once nothing moved for `idle` while no request was in flight.
    async fn idle_for(&self, idle: Duration) {
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let tick = (idle / 4).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(tick).await;
            let now = u64::try_from(self.0.0.elapsed().as_millis()).unwrap_or(u64::MAX);
            let last = self.0.1.load(Ordering::Acquire);
            if self.0.2.load(Ordering::Acquire) == 0 && now.saturating_sub(last) >= idle_ms {
                metrics::counter!("charter_connections_closed_total", "why" => "idle").increment(1);
                return;
            }
        }
    }
}

/// A connection's stream, noting each byte moved in its [`Activity`].
struct Tracked<S> {
    inner: S,
    activity: Activity,
}

impl<S> Tracked<S> {
    fn new(inner: S, activity: Activity) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that must arrive whole within its deadline (counted from the head).
struct Deadline {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Deadline {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl hyper::body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    metrics::counter!("charter_connections_closed_total", "why" => "body_timeout")
                        .increment(1);
                    Poll::Ready(Some(Err(BodyTimedOut.into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

//! The running simulator: [`Sim`] (start, inspect, steer, stop) and [`serve`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use falq_api::types::QueueStatusKind;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::catalog::Catalog;
use crate::fault::FaultEngine;
use crate::queue::{Core, Phase};
use crate::server::{Conn, ConnControl, MediaCache, ResettableStream, Shared, handle, schedule};
use crate::{Counters, FaultPlan, SimConfig, SimError, SimMode};

/// A running simulator. Dropping it stops it (the listener, the scheduler and every
/// open connection).
pub struct Sim {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").field("base_url", &self.shared.base_url).field("mode", &self.shared.config.mode).finish()
    }
}

impl Sim {
    /// Starts a simulator on `127.0.0.1` and a free port.
    pub async fn spawn(config: SimConfig) -> Result<Sim, SimError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        Sim::start(listener, config)
    }

    /// Starts a simulator on a bound listener, within the current tokio runtime.
    pub fn start(listener: TcpListener, config: SimConfig) -> Result<Sim, SimError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(SimError::Config("the simulator must start within a tokio runtime".into()));
        }
        let config = config.normalized()?;
        let local_addr = listener.local_addr()?;
        let catalog = Catalog::load(&config.extra_endpoints);
        let tls = config.tls.as_ref().map(|t| t.server_config().map(tokio_rustls::TlsAcceptor::from)).transpose()?;
        let base_url = match &config.public_url {
            Some(url) => url.clone(),
            None => {
                let mut shown = local_addr;
                if shown.ip().is_unspecified() {
                    shown.set_ip(match shown.ip() {
                        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                    });
                }
                format!("{}://{shown}{}", config.scheme(), config.path_prefix)
            }
        };
        let faults = FaultEngine::new(config.faults.clone(), config.seed);
        let shared = Arc::new(Shared {
            core: Mutex::new(Core::new(config.timing.clone(), config.seed, faults)),
            media: Mutex::new(MediaCache::new(config.media_cache_bytes)),
            wake: Notify::new(),
            catalog,
            base_url,
            tls,
            config,
            connections: std::sync::atomic::AtomicU64::new(0),
        });
        let (shutdown, _) = watch::channel(false);
        let tasks = vec![tokio::spawn(schedule(shared.clone())), tokio::spawn(accept(listener, shared.clone(), shutdown.subscribe()))];
        Ok(Sim { shared, local_addr, shutdown, tasks })
    }

    /// The base URL clients use: `http://127.0.0.1:PORT` plus the path prefix, or the
    /// configured public URL.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Relay or direct.
    pub fn mode(&self) -> SimMode {
        self.shared.config.mode
    }

    /// The configuration in force (normalized).
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// A snapshot of every counter (also `GET /_sim/counters`).
    pub fn counters(&self) -> Counters {
        self.shared.counters()
    }

    /// Installs a new fault plan; each route counts again from 1 (also `POST /_sim/faults`).
    pub fn set_faults(&self, plan: FaultPlan) {
        self.shared.core().faults.replace(plan);
    }

    /// The fault plan in force.
    pub fn faults(&self) -> FaultPlan {
        self.shared.core().faults.plan().clone()
    }

    /// When the job completed (the instant its `COMPLETED` state became visible), while it is kept.
    pub fn completed_at(&self, request_id: &str) -> Option<Instant> {
        let core = self.shared.core();
        match core.job(core.find(request_id)?)?.phase {
            Phase::Completed { at, .. } => Some(at),
            _ => None,
        }
    }

    /// The state of a job, while it is kept.
    pub fn status_of(&self, request_id: &str) -> Option<QueueStatusKind> {
        let core = self.shared.core();
        Some(core.job(core.find(request_id)?)?.phase.kind())
    }

    /// Stops the simulator and waits until its port is released.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                shared.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::spawn(connection(stream, shared.clone(), shutdown.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "falq-sim: accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let h2_max_streams = shared.config.h2_max_streams;
    let _ = stream.set_nodelay(true);
    let control = Arc::new(ConnControl::default());
    let stream = ResettableStream { stream, control: control.clone() };
    // Over TLS, the handshake first (a client that does not finish it within the stream's
    // keep-alive interval is dropped); ALPN has offered h2 and http/1.1, and the builder
    // below tells which the client speaks from its first bytes.
    let stream = match &shared.tls {
        None => Conn::Plain(stream),
        Some(acceptor) => match tokio::time::timeout(shared.config.timing.keep_alive, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => Conn::Tls(Box::new(tls)),
            _ => return,
        },
    };
    let io = TokioIo::new(stream);
    let service_control = control.clone();
    let service = service_fn(move |request| {
        let (shared, control) = (shared.clone(), service_control.clone());
        async move { Ok::<_, std::convert::Infallible>(handle(shared, control, request).await) }
    });
    // HTTP/1.1, or HTTP/2 with prior knowledge (h2c): one connection then carries every
    // call and status stream, as a relay behind TLS with ALPN would, up to
    // `SimConfig::h2_max_streams` at once (none by default).
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    // A client that stops reading a status stream at COMPLETED resets it; thousands of
    // such streams on one connection are normal here, not an attack to guard against.
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(h2_max_streams).max_local_error_reset_streams(None);
    let conn = builder.serve_connection(io, service);
    tokio::select! {
        _ = conn => {}
        _ = control.notify.notified() => {}
        _ = shutdown.changed() => {}
    }
}

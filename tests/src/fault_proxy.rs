//! A TCP proxy that can cut connections after a number of bytes — the database
//! "dropping mid-load" without touching the real server — or slow what clients send to it,
//! as a far or overloaded database would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct FaultProxy {
    pub port: u16,
    /// Client-to-server bytes after which connections are cut (u64::MAX: never).
    cut_after: Arc<AtomicU64>,
    /// Client-to-server bytes per second (0: as fast as they come).
    rate: Arc<AtomicU64>,
    /// Client-to-server bytes of every connection so far, and the total at which the
    /// connection that reaches it is cut (u64::MAX: never).
    total: Arc<(AtomicU64, AtomicU64)>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: &'static str) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let cut_after = Arc::new(AtomicU64::new(u64::MAX));
        let rate = Arc::new(AtomicU64::new(0));
        let total = Arc::new((AtomicU64::new(0), AtomicU64::new(u64::MAX)));
        let faults = Faults {
            limit: cut_after.clone(),
            rate: rate.clone(),
            total: total.clone(),
        };
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let faults = faults.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay(client, server, faults).await;
                    }
                });
            }
        });
        Ok(FaultProxy {
            port,
            cut_after,
            rate,
            total,
            task,
        })
    }

    /// From now on, a connection dies once it has sent this many bytes to the server.
    pub fn cut_after(&self, bytes: u64) {
        self.cut_after.store(bytes, Ordering::SeqCst);
    }

    /// The one connection that carries the server's `bytes`-th byte from now on dies,
    /// whichever it is (a client may spread its work over several).
    pub fn cut_once_after_total(&self, bytes: u64) {
        let (sent, at) = &*self.total;
        at.store(sent.load(Ordering::SeqCst) + bytes, Ordering::SeqCst);
    }

    /// From now on, what clients send reaches the server at this many bytes per second.
    pub fn slow_to(&self, bytes_per_second: u64) {
        self.rate.store(bytes_per_second, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.cut_after.store(u64::MAX, Ordering::SeqCst);
        self.total.1.store(u64::MAX, Ordering::SeqCst);
        self.rate.store(0, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the proxy does to the connections, shared with each relay.
#[derive(Clone)]
struct Faults {
    limit: Arc<AtomicU64>,
    rate: Arc<AtomicU64>,
    total: Arc<(AtomicU64, AtomicU64)>,
}

async fn relay(client: TcpStream, server: TcpStream, faults: Faults) {
    let Faults { limit, rate, total } = faults;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut sent = 0u64;
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let rate = rate.load(Ordering::SeqCst);
            // Slowed: a tenth of a second's bytes at a time, then the pause they take.
            let read = if rate == 0 {
                buffer.len()
            } else {
                (rate as usize / 10).clamp(1, buffer.len())
            };
            let n = match client_read.read(&mut buffer[..read]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if rate > 0 {
                tokio::time::sleep(std::time::Duration::from_secs_f64(n as f64 / rate as f64))
                    .await;
            }
            sent += n as u64;
            if sent > limit.load(Ordering::SeqCst) {
                return; // cut: both directions close when this future ends
            }
            let (all, at) = &*total;
            let before = all.fetch_add(n as u64, Ordering::SeqCst);
            let cut_at = at.load(Ordering::SeqCst);
            if before < cut_at && before + n as u64 >= cut_at {
                at.store(u64::MAX, Ordering::SeqCst);
                return;
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

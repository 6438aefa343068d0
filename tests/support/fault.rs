//! A fault-injecting TCP proxy on 127.0.0.1 between the worker and a mail server: it relays
//! bytes both ways until told to misbehave, and then does so on every connection, pooled ones
//! included. Bounded: one task pair per connection, ending with the connection; the proxy's
//! tasks end when it is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Relays both ways.
    Pass,
    /// Forwards what the client sends, but nothing more of what the server answers: the
    /// connection stays open and silent.
    Stall,
    /// Forwards the client's next command to the server, then closes the connection before
    /// the answer reaches the client (the command may well have been carried out).
    CutMidCommand,
    /// Like [`Fault::CutMidCommand`], for the first command that contains this text only (the
    /// reply to a MOVE lost after the server moved the message).
    CutReplyTo(&'static str),
    /// Relays the server's answer until a message body starts (an IMAP literal `{n}`, or a
    /// bulk read of a POP3 multi-line answer), passes a few of its bytes, then closes the
    /// connection.
    CutMidLiteral,
    /// Relays the server's answer one byte at a time, 20 ms apart.
    Trickle,
    /// Closes a new connection after the first few bytes of the server's side, so a TLS
    /// handshake breaks off.
    CutHandshake,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Stall,
        Fault::CutMidCommand,
        Fault::CutMidLiteral,
        Fault::Trickle,
        Fault::CutHandshake,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Pass => "pass",
            Fault::Stall => "stall",
            Fault::CutMidCommand => "cut mid-command",
            Fault::CutReplyTo(_) => "reply lost",
            Fault::CutMidLiteral => "cut mid-literal/body",
            Fault::Trickle => "trickle",
            Fault::CutHandshake => "cut TLS handshake",
        }
    }
}

pub struct FaultProxy {
    pub port: u16,
    fault: watch::Sender<Fault>,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    /// Every connection's task, so dropping the proxy ends them all.
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl FaultProxy {
    pub async fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("address").port();
        let (fault, watcher) = watch::channel(Fault::Pass);
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> =
            Arc::new(Mutex::new(Vec::new()));
        let (a, o, c) = (accepted.clone(), open.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let open = o.clone();
                open.fetch_add(1, Ordering::SeqCst);
                let handle = tokio::spawn(relay(client, server, watcher.clone(), open));
                let mut all = c.lock().unwrap_or_else(|p| p.into_inner());
                all.retain(|h| !h.is_finished());
                all.push(handle.abort_handle());
            }
        });
        FaultProxy {
            port,
            fault,
            accepted,
            open,
            task,
            connections,
        }
    }

    /// Applies `fault` from now on, to open connections and new ones.
    pub fn set(&self, fault: Fault) {
        let _ = self.fault.send(fault);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections still open through the proxy.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Closes every connection through the proxy, as a restarted server would.
    pub fn cut_all(&self) {
        for handle in self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            handle.abort();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut_all();
    }
}

/// Counts an open connection until dropped, however its task ends.
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    fault: watch::Receiver<Fault>,
    open: Arc<AtomicUsize>,
) {
    let _open = OpenGuard(open);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Set when the client sent a command while CutMidCommand was on: its answer must not pass.
    let (cut_tx, mut cut_rx) = watch::channel(false);
    let up_fault = fault.clone();
    let mut up = tokio::spawn(async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = client_read.read(&mut buffer).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
            let cut = match *up_fault.borrow() {
                Fault::CutMidCommand => true,
                Fault::CutReplyTo(text) => String::from_utf8_lossy(&buffer[..n])
                    .to_ascii_uppercase()
                    .contains(&text.to_ascii_uppercase()),
                _ => false,
            };
            if cut {
                let _ = cut_tx.send(true);
            }
        }
        // The client is gone; the relay closes the server side when it ends.
        server_write
    });
    let mut buffer = vec![0u8; 16 * 1024];
    let mut first = true;
    loop {
        let n = tokio::select! {
            r = server_read.read(&mut buffer) => r.unwrap_or(0),
            _ = cut_rx.changed() => break,
            _ = &mut up => break,
        };
        if n == 0 {
            break;
        }
        let chunk = &buffer[..n];
        let now = *fault.borrow();
        match now {
            Fault::Pass | Fault::CutMidCommand | Fault::CutReplyTo(_) => {
                if *cut_rx.borrow() {
                    break;
                }
                if client_write.write_all(chunk).await.is_err() {
                    break;
                }
            }
            Fault::Stall => {
                // Hold the connection open and silent until the client gives up.
                let _ = (&mut up).await;
                break;
            }
            Fault::CutMidLiteral => {
                // A POP3 body has no marker: a chunk this large is one.
                let body = literal_start(chunk).or((n > 2048).then_some(n / 2));
                if let Some(start) = body {
                    let end = (start + 16).min(chunk.len());
                    let _ = client_write.write_all(&chunk[..end]).await;
                    break;
                }
                if client_write.write_all(chunk).await.is_err() {
                    break;
                }
            }
            Fault::Trickle => {
                let mut failed = false;
                for byte in chunk {
                    if client_write.write_all(&[*byte]).await.is_err() {
                        failed = true;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                if failed {
                    break;
                }
            }
            Fault::CutHandshake => {
                if first {
                    let _ = client_write.write_all(&chunk[..n.min(24)]).await;
                    break;
                }
                if client_write.write_all(chunk).await.is_err() {
                    break;
                }
            }
        }
        first = false;
    }
    up.abort();
    drop(client_write);
}

/// Where the bytes of a literal begin in `chunk`, after a `{n}\r\n` marker.
fn literal_start(chunk: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < chunk.len() {
        if chunk[i] == b'{' {
            let mut j = i + 1;
            while j < chunk.len() && chunk[j].is_ascii_digit() {
                j += 1;
            }
            if j > i + 1 && chunk.get(j) == Some(&b'}') && chunk.get(j + 1..j + 3) == Some(b"\r\n")
            {
                return Some(j + 3);
            }
        }
        i += 1;
    }
    None
}

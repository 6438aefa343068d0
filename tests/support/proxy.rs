//! A TCP proxy in front of the plaintext POP3 port that records every command verb the client
//! sends and, on request, cuts the connection in the middle of a RETR response, or in place of
//! a QUIT (the server never sees it, so it commits no deletion).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub struct Pop3Proxy {
    pub port: u16,
    verbs: Arc<Mutex<Vec<String>>>,
    bytes_from_server: Arc<std::sync::atomic::AtomicU64>,
    cut_retr: Arc<AtomicBool>,
    cut_quit: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Pop3Proxy {
    pub async fn start(upstream_port: u16) -> Pop3Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("address").port();
        let verbs = Arc::new(Mutex::new(Vec::new()));
        let cut_retr = Arc::new(AtomicBool::new(false));
        let cut_quit = Arc::new(AtomicBool::new(false));
        let bytes_from_server = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (v, c, b) = (verbs.clone(), cut_retr.clone(), bytes_from_server.clone());
        let q = cut_quit.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                    continue;
                };
                // Forward each piece at once: with Nagle on, pipelined commands would wait
                // for delayed ACKs here and the proxy, not the client, would set the pace.
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let cuts = (c.clone(), q.clone());
                tokio::spawn(relay(client, server, v.clone(), cuts, b.clone()));
            }
        });
        Pop3Proxy {
            port,
            verbs,
            bytes_from_server,
            cut_retr,
            cut_quit,
            task,
        }
    }

    /// Command verbs seen so far (`USER`, `LIST`, `TOP`, …).
    pub fn verbs(&self) -> Vec<String> {
        self.verbs.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.verbs.lock().unwrap().clear();
        self.bytes_from_server.store(0, Ordering::SeqCst);
    }

    /// Bytes the server sent through the proxy since the last [`Pop3Proxy::clear`].
    pub fn bytes_from_server(&self) -> u64 {
        self.bytes_from_server.load(Ordering::SeqCst)
    }

    /// From now on, a RETR response is cut after its first bytes.
    pub fn cut_retr(&self, cut: bool) {
        self.cut_retr.store(cut, Ordering::SeqCst);
    }

    /// From now on, a QUIT is not passed on: the connection to the server is closed in its
    /// place, so the server rolls back the session's DELEs, and the client sees its QUIT fail.
    pub fn cut_quit(&self, cut: bool) {
        self.cut_quit.store(cut, Ordering::SeqCst);
    }
}

impl Drop for Pop3Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    verbs: Arc<Mutex<Vec<String>>>,
    (cut_retr, cut_quit): (Arc<AtomicBool>, Arc<AtomicBool>),
    bytes: Arc<std::sync::atomic::AtomicU64>,
) {
    let (client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let cutting = Arc::new(AtomicBool::new(false));
    let cut = cutting.clone();
    let upstream = tokio::spawn(async move {
        let mut lines = BufReader::new(client_read);
        let mut line = String::new();
        while lines.read_line(&mut line).await.unwrap_or(0) > 0 {
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            if verb == "RETR" && cut_retr.load(Ordering::SeqCst) {
                cut.store(true, Ordering::SeqCst);
            }
            let quit_cut = verb == "QUIT" && cut_quit.load(Ordering::SeqCst);
            verbs.lock().unwrap().push(verb);
            if quit_cut {
                // The server reads the end of the stream, not QUIT, and closes its side;
                // the relay below then closes the client's.
                let _ = server_write.shutdown().await;
                break;
            }
            if server_write.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            line.clear();
        }
    });
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = server_read.read(&mut buffer).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        bytes.fetch_add(n as u64, Ordering::SeqCst);
        if cutting.load(Ordering::SeqCst) {
            let _ = client_write.write_all(&buffer[..n.min(40)]).await;
            break;
        }
        if client_write.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = client_write.shutdown().await;
    upstream.abort();
}

/// A proxy to a plaintext port that relays the server's lines through `rewrite` (untagged
/// `* ` lines only; the rest pass as they are) and counts the bytes the server sent. With
/// `|line| line.to_string()` it only counts.
pub async fn rewriting_relay(
    upstream: u16,
    rewrite: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (u16, Arc<std::sync::atomic::AtomicU64>) {
    let rewrite = Arc::new(rewrite);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let port = listener.local_addr().expect("address").port();
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                continue;
            };
            let counter = counter.clone();
            let rewrite = rewrite.clone();
            tokio::spawn(async move {
                let (mut client_read, mut client_write) = client.into_split();
                let (server_read, mut server_write) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                    let _ = server_write.shutdown().await;
                });
                let mut server_read = BufReader::new(server_read);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match server_read.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            counter.fetch_add(n as u64, Ordering::SeqCst);
                            let out = match std::str::from_utf8(&line) {
                                Ok(text) if text.starts_with("* ") => rewrite(text).into_bytes(),
                                _ => line.clone(),
                            };
                            if client_write.write_all(&out).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = client_write.shutdown().await;
                up.abort();
            });
        }
    });
    (port, count)
}

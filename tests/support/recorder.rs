//! A TCP proxy in front of a plaintext IMAP port that records every byte the client sends, so
//! a test can check each command against RFC 3501's grammar ([`super::rfc3501`]) whatever the
//! server behind it accepts.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Streams = Arc<Mutex<Vec<Arc<Mutex<Vec<u8>>>>>>;

pub struct Recorder {
    pub port: u16,
    streams: Streams,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Listens on 127.0.0.1 and relays each connection to `host:port`.
    pub async fn start(host: &'static str, port: u16) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind recorder");
        let local = listener.local_addr().expect("address").port();
        let streams: Streams = Arc::default();
        let all = streams.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect((host, port)).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let sent = Arc::new(Mutex::new(Vec::new()));
                all.lock().unwrap().push(sent.clone());
                tokio::spawn(relay(client, server, sent));
            }
        });
        Recorder {
            port: local,
            streams,
            task,
        }
    }

    /// Every command sent through this proxy so far that breaks the grammar.
    pub fn violations(&self) -> Vec<String> {
        self.streams
            .lock()
            .unwrap()
            .iter()
            .flat_map(|s| super::rfc3501::violations(&s.lock().unwrap()))
            .collect()
    }

    /// Everything the clients sent, one connection after the other (for failure messages).
    pub fn sent(&self) -> String {
        self.streams
            .lock()
            .unwrap()
            .iter()
            .map(|s| String::from_utf8_lossy(&s.lock().unwrap()).to_string())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, server: TcpStream, sent: Arc<Mutex<Vec<u8>>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = tokio::spawn(async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = client_read.read(&mut buffer).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            // Recorded before it is forwarded: once the server answered, the command is here.
            sent.lock().unwrap().extend_from_slice(&buffer[..n]);
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    });
    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    let _ = client_write.shutdown().await;
    upstream.abort();
}

//! Scripted mail servers for hostile-server tests: an IMAP or POP3 server on 127.0.0.1 that
//! logs in anyone and answers the commands a script names with what it says, however large,
//! endless or slow; everything else gets a plain answer.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;

/// What the server sends.
#[derive(Clone, Debug)]
pub enum Reply {
    Text(String),
    /// `text` after the command's tag (IMAP) and a CRLF.
    Tagged(String),
    /// `head`, then `size` bytes of `x`, then `tail`.
    Literal {
        head: String,
        size: u64,
        tail: String,
    },
    /// `head`, then `unit` again and again, as fast as the client reads.
    Endless {
        head: String,
        unit: String,
    },
    /// `unit`, `times` times.
    Repeat {
        unit: String,
        times: u64,
    },
    /// `head`, then one `x` every 100 ms, forever.
    Trickle(String),
    Sequence(Vec<Reply>),
}

impl Reply {
    pub fn text(text: &str) -> Reply {
        Reply::Text(text.to_string())
    }
    pub fn tagged(text: &str) -> Reply {
        Reply::Tagged(text.to_string())
    }
    pub fn literal(head: &str, size: u64, tail: &str) -> Reply {
        Reply::Literal {
            head: head.to_string(),
            size,
            tail: tail.to_string(),
        }
    }
    pub fn endless(head: &str, unit: &str) -> Reply {
        Reply::Endless {
            head: head.to_string(),
            unit: unit.to_string(),
        }
    }
    pub fn trickle(head: &str) -> Reply {
        Reply::Trickle(head.to_string())
    }
}

type Handler = dyn Fn(&str, &str) -> Option<Reply> + Send + Sync;

/// A server's greeting and its answers by command.
#[derive(Clone)]
pub struct Script {
    greeting: Reply,
    handler: Arc<Handler>,
}

impl Script {
    /// An IMAP server; `answer` gets the verb (`UID` dropped: `FETCH`, `SEARCH`) and may
    /// answer it, tagged replies carrying the command's tag.
    pub fn imap(answer: impl Fn(&str) -> Option<Reply> + Send + Sync + 'static) -> Script {
        Script {
            greeting: Reply::text("* OK scripted IMAP ready\r\n"),
            handler: Arc::new(move |verb, _| answer(verb)),
        }
    }

    /// Like [`Script::imap`], `answer` getting the whole command line too.
    pub fn imap_lines(
        answer: impl Fn(&str, &str) -> Option<Reply> + Send + Sync + 'static,
    ) -> Script {
        Script {
            greeting: Reply::text("* OK scripted IMAP ready\r\n"),
            handler: Arc::new(answer),
        }
    }

    /// A POP3 server; `answer` gets the verb and the whole command line.
    pub fn pop3(answer: impl Fn(&str, &str) -> Option<Reply> + Send + Sync + 'static) -> Script {
        Script {
            greeting: Reply::text("+OK scripted POP3 ready\r\n"),
            handler: Arc::new(answer),
        }
    }

    pub fn greeting(mut self, greeting: Reply) -> Script {
        self.greeting = greeting;
        self
    }
}

fn imap_default(verb: &str) -> Reply {
    match verb {
        "CAPABILITY" => Reply::Sequence(vec![
            Reply::text("* CAPABILITY IMAP4rev1\r\n"),
            Reply::tagged("OK done"),
        ]),
        "LOGOUT" => Reply::Sequence(vec![Reply::text("* BYE\r\n"), Reply::tagged("OK bye")]),
        "LOGIN" | "NOOP" | "EXAMINE" | "SELECT" | "FETCH" | "SEARCH" | "STORE" | "LIST" => {
            Reply::tagged("OK done")
        }
        _ => Reply::tagged("BAD unknown"),
    }
}

fn pop3_default(verb: &str) -> Reply {
    match verb {
        "CAPA" => Reply::text("+OK\r\nUSER\r\nTOP\r\nUIDL\r\nPIPELINING\r\n.\r\n"),
        "USER" | "PASS" | "QUIT" | "RSET" | "NOOP" | "DELE" => Reply::text("+OK\r\n"),
        "LIST" | "UIDL" => Reply::text("+OK\r\n.\r\n"),
        _ => Reply::text("-ERR unknown\r\n"),
    }
}

/// Writes `reply`; an error means the client went away.
async fn send(write: &mut OwnedWriteHalf, reply: &Reply, tag: &str) -> std::io::Result<()> {
    match reply {
        Reply::Text(text) => write.write_all(text.as_bytes()).await,
        Reply::Tagged(text) => {
            write
                .write_all(format!("{tag} {text}\r\n").as_bytes())
                .await
        }
        Reply::Literal { head, size, tail } => {
            write.write_all(head.as_bytes()).await?;
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = *size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                write.write_all(&chunk[..n]).await?;
                left -= n as u64;
            }
            write.write_all(tail.as_bytes()).await
        }
        Reply::Endless { head, unit } => {
            write.write_all(head.as_bytes()).await?;
            let block = unit.repeat((64 * 1024 / unit.len().max(1)).max(1));
            loop {
                write.write_all(block.as_bytes()).await?;
            }
        }
        Reply::Repeat { unit, times } => {
            let per_block = (64 * 1024 / unit.len().max(1)).max(1) as u64;
            let block = unit.repeat(per_block as usize);
            let mut left = *times;
            while left >= per_block {
                write.write_all(block.as_bytes()).await?;
                left -= per_block;
            }
            write.write_all(unit.repeat(left as usize).as_bytes()).await
        }
        Reply::Trickle(head) => {
            write.write_all(head.as_bytes()).await?;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                write.write_all(b"x").await?;
            }
        }
        Reply::Sequence(parts) => {
            for part in parts {
                Box::pin(send(write, part, tag)).await?;
            }
            Ok(())
        }
    }
}

/// Serves `script` (`protocol` is `imap` or `pop3`) on a new port, for as long as the test
/// runs.
pub async fn serve(protocol: &str, script: Script) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let imap = protocol == "imap";
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let script = script.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                if send(&mut write, &script.greeting, "*").await.is_err() {
                    return;
                }
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut words = line.split_whitespace();
                    let (tag, mut verb) = if imap {
                        (words.next().unwrap_or("*"), words.next().unwrap_or(""))
                    } else {
                        ("", words.next().unwrap_or(""))
                    };
                    if imap && verb.eq_ignore_ascii_case("UID") {
                        verb = words.next().unwrap_or("");
                    }
                    let verb = verb.to_ascii_uppercase();
                    let reply = (script.handler)(&verb, &line).unwrap_or_else(|| {
                        if imap {
                            imap_default(&verb)
                        } else {
                            pop3_default(&verb)
                        }
                    });
                    if send(&mut write, &reply, tag).await.is_err() {
                        return;
                    }
                    if verb == "LOGOUT" || verb == "QUIT" {
                        return;
                    }
                }
            });
        }
    });
    port
}

//! Counts what is on the mail server, independently of the code under test: how many copies
//! of a message a folder holds, over the plaintext IMAP port of a testbed instance.

use futures_util::StreamExt;

async fn login(port: u16, user: &str) -> async_imap::Session<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect IMAP");
    async_imap::Client::new(tcp)
        .login(format!("{user}@example.test"), format!("{user}-pw"))
        .await
        .map_err(|(e, _)| e)
        .expect("IMAP login")
}

/// Messages in `folder` whose Message-ID header is exactly `<id>` (0 when the folder is
/// missing).
pub async fn copies(port: u16, user: &str, folder: &str, id: &str) -> usize {
    copies_of(port, user, folder, &[id]).await[0]
}

/// For each id, the messages in `folder` whose Message-ID is exactly `<id>`.
pub async fn copies_of(port: u16, user: &str, folder: &str, ids: &[&str]) -> Vec<usize> {
    let mut session = login(port, user).await;
    let mut counts = vec![0; ids.len()];
    if session.examine(folder).await.is_ok() {
        let mut fetches = session
            .fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            .await
            .expect("fetch");
        while let Some(item) = fetches.next().await {
            let item = item.expect("fetch item");
            let header = String::from_utf8_lossy(item.header().or(item.body()).unwrap_or_default())
                .to_string();
            let found = header
                .split_once(':')
                .map(|(_, v)| v.trim().trim_matches(['<', '>']).to_string())
                .unwrap_or_default();
            if let Some(i) = ids.iter().position(|id| *id == found) {
                counts[i] += 1;
            }
        }
    }
    let _ = session.logout().await;
    counts
}

/// Appends raw messages to `folder` of `user` on the testbed instance listening on `port`.
pub async fn append_on(port: u16, user: &str, folder: &str, messages: &[Vec<u8>]) {
    let mut session = login(port, user).await;
    let _ = session.create(folder).await;
    for raw in messages {
        session
            .append(folder, None, None, raw)
            .await
            .expect("append");
    }
    let _ = session.logout().await;
}

/// How many messages in `folder` carry `text` in their Subject.
pub async fn count_subject(port: u16, user: &str, folder: &str, text: &str) -> usize {
    let mut session = login(port, user).await;
    let mut n = 0;
    if session.examine(folder).await.is_ok() {
        n = session
            .uid_search(format!("SUBJECT \"{text}\""))
            .await
            .map(|uids| uids.len())
            .unwrap_or(0);
    }
    let _ = session.logout().await;
    n
}

//! Reads what arrived in a testbed mailbox over IMAP (plaintext port, LOGIN), independently of
//! the code under test.

use std::time::Duration;

use futures_util::StreamExt;

/// The raw RFC 5322 messages in `user`'s INBOX whose Subject contains `marker`, waiting up to
/// `timeout` for at least `count` of them.
pub async fn fetch_by_subject(
    port: u16,
    user: &str,
    marker: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let found = fetch_once(port, user, marker).await;
        if found.len() >= count || tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fetch_once(port: u16, user: &str, marker: &str) -> Vec<Vec<u8>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect IMAP");
    let client = async_imap::Client::new(tcp);
    let mut session = client
        .login(format!("{user}@example.test"), format!("{user}-pw"))
        .await
        .map_err(|(e, _)| e)
        .expect("IMAP login");
    session.select("INBOX").await.expect("select INBOX");
    // Markers are ASCII without quotes, so a quoted string is safe here.
    let uids = session
        .uid_search(format!("SUBJECT \"{marker}\""))
        .await
        .expect("search");
    let mut messages = Vec::new();
    if !uids.is_empty() {
        let mut sorted: Vec<u32> = uids.into_iter().collect();
        sorted.sort_unstable();
        let set = sorted
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut fetches = session.uid_fetch(set, "BODY.PEEK[]").await.expect("fetch");
        while let Some(item) = fetches.next().await {
            if let Some(body) = item.expect("fetch item").body() {
                messages.push(body.to_vec());
            }
        }
    }
    let _ = session.logout().await;
    messages
}

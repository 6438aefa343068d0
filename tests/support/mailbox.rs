//! Reads what arrived in a testbed mailbox over IMAP (plaintext port, LOGIN), independently of
//! the code under test.

use std::collections::HashMap;
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

async fn login(user: &str) -> async_imap::Session<tokio::net::TcpStream> {
    // A test may clear or fill a mailbox before it asks for anything else of the testbed:
    // start it here too, or the test passes only when an earlier binary left it running.
    login_at(super::testbed().port("PORT_IMAP"), user).await
}

/// Logs `user` in on the plaintext IMAP port `port` of 127.0.0.1 (any testbed server).
pub async fn login_at(port: u16, user: &str) -> async_imap::Session<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect IMAP");
    async_imap::Client::new(tcp)
        .login(format!("{user}@example.test"), format!("{user}-pw"))
        .await
        .map_err(|(e, _)| e)
        .expect("IMAP login")
}

/// Creates `folder` (ASCII name, `.`-separated for Maildir++ users) if it is missing.
pub async fn create_folder(user: &str, folder: &str) {
    create_folder_at(super::testbed().port("PORT_IMAP"), user, folder).await
}

/// [`create_folder`] on the server at `port`.
pub async fn create_folder_at(port: u16, user: &str, folder: &str) {
    let mut session = login_at(port, user).await;
    let _ = session.create(folder).await;
    let _ = session.logout().await;
}

/// Appends raw messages to `folder` (created first), each with its flags (`"(\\Seen)"` or
/// `""`), in order.
pub async fn append(user: &str, folder: &str, messages: &[(&[u8], &str)]) {
    append_at(super::testbed().port("PORT_IMAP"), user, folder, messages).await
}

/// [`append`] on the server at `port`.
pub async fn append_at(port: u16, user: &str, folder: &str, messages: &[(&[u8], &str)]) {
    let mut session = login_at(port, user).await;
    let _ = session.create(folder).await;
    for (raw, flags) in messages {
        let flags = if flags.is_empty() { None } else { Some(*flags) };
        session
            .append(folder, flags, None, raw)
            .await
            .expect("append");
    }
    let _ = session.logout().await;
}

/// Message-ID → flags of every message in `folder`.
pub async fn flags_by_message_id(user: &str, folder: &str) -> HashMap<String, Vec<String>> {
    flags_by_header(user, folder, "MESSAGE-ID").await
}

/// The value of `header` → flags of every message in `folder` (a later message with the same
/// value wins).
pub async fn flags_by_header(
    user: &str,
    folder: &str,
    header: &str,
) -> HashMap<String, Vec<String>> {
    flags_by_header_at(super::testbed().port("PORT_IMAP"), user, folder, header).await
}

/// [`flags_by_message_id`] on the server at `port`.
pub async fn flags_at(port: u16, user: &str, folder: &str) -> HashMap<String, Vec<String>> {
    flags_by_header_at(port, user, folder, "MESSAGE-ID").await
}

/// [`flags_by_header`] on the server at `port`.
pub async fn flags_by_header_at(
    port: u16,
    user: &str,
    folder: &str,
    header: &str,
) -> HashMap<String, Vec<String>> {
    let mut session = login_at(port, user).await;
    let mut result = HashMap::new();
    if session.examine(folder).await.is_err() {
        return result;
    }
    let mut fetches = session
        .fetch(
            "1:*",
            format!("(FLAGS BODY.PEEK[HEADER.FIELDS ({header})])"),
        )
        .await
        .expect("fetch");
    while let Some(item) = fetches.next().await {
        let item = item.expect("fetch item");
        let text =
            String::from_utf8_lossy(item.header().or(item.body()).unwrap_or_default()).to_string();
        let value = text
            .split_once(':')
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let flags = item.flags().map(|f| format!("{f:?}")).collect();
        result.insert(value, flags);
    }
    drop(fetches);
    let _ = session.logout().await;
    result
}

/// Every folder name of `user`.
pub async fn folders(user: &str) -> Vec<String> {
    folders_at(super::testbed().port("PORT_IMAP"), user).await
}

/// [`folders`] on the server at `port`.
pub async fn folders_at(port: u16, user: &str) -> Vec<String> {
    let mut session = login_at(port, user).await;
    let names: Vec<String> = session
        .list(Some(""), Some("*"))
        .await
        .expect("list")
        .filter_map(|n| async move { n.ok().map(|n| n.name().to_string()) })
        .collect()
        .await;
    let _ = session.logout().await;
    names
}

/// Writes messages straight into a Maildir++ folder (seconds for thousands, where APPEND takes
/// minutes). Each message's arrival time (INTERNALDATE) is its file's modification time.
pub fn write_maildir(testbed_dir: &str, user: &str, folder: &str, messages: &[(Vec<u8>, i64)]) {
    use std::os::unix::fs::chown;
    let maildir = std::path::PathBuf::from(testbed_dir)
        .join("mail/example.test")
        .join(user)
        .join("Maildir");
    // The INBOX is the Maildir itself; other folders are `.Name` inside it (Maildir++).
    let dir = if folder == "INBOX" {
        maildir.clone()
    } else {
        maildir.join(format!(".{folder}"))
    };
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).expect("create maildir");
    }
    let owner = std::fs::metadata(testbed_dir.to_string() + "/mail").expect("mail dir");
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = (owner.uid(), owner.gid());
    for (index, (raw, arrival)) in messages.iter().enumerate() {
        let name = format!(
            "{arrival}.M{index}P{}.testbed,S={}:2,S",
            std::process::id(),
            raw.len()
        );
        let path = dir.join("cur").join(name);
        std::fs::write(&path, raw).expect("write message");
        let time = std::time::UNIX_EPOCH + Duration::from_secs(*arrival as u64);
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open message");
        file.set_modified(time).expect("set mtime");
        chown(&path, Some(uid), Some(gid)).expect("chown message");
    }
    let home = maildir.parent().expect("home").to_path_buf();
    let domain = home.parent().expect("domain").to_path_buf();
    for path in [
        &domain,
        &home,
        &maildir,
        &dir,
        &dir.join("cur"),
        &dir.join("new"),
        &dir.join("tmp"),
    ] {
        chown(path, Some(uid), Some(gid)).expect("chown maildir");
    }
}

/// Removes a folder written by [`write_maildir`].
pub fn remove_maildir(testbed_dir: &str, user: &str, folder: &str) {
    let dir = std::path::PathBuf::from(testbed_dir)
        .join("mail/example.test")
        .join(user)
        .join("Maildir")
        .join(format!(".{folder}"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Removes every message from `user`'s INBOX.
pub async fn clear_inbox(user: &str) {
    clear_inbox_at(super::testbed().port("PORT_IMAP"), user).await
}

/// [`clear_inbox`] on the server at `port`.
pub async fn clear_inbox_at(port: u16, user: &str) {
    let mut session = login_at(port, user).await;
    if let Ok(mailbox) = session.select("INBOX").await
        && mailbox.exists > 0
    {
        let updates: Vec<_> = session
            .store("1:*", "+FLAGS.SILENT (\\Deleted)")
            .await
            .expect("store")
            .collect()
            .await;
        drop(updates);
        let expunged: Vec<_> = session.expunge().await.expect("expunge").collect().await;
        drop(expunged);
    }
    let _ = session.logout().await;
}

/// EXPUNGE in `folder`: removes what carries `\Deleted` there, as another client would.
pub async fn expunge(user: &str, folder: &str) {
    let mut session = login(user).await;
    session.select(folder).await.expect("select");
    let expunged: Vec<_> = session.expunge().await.expect("expunge").collect().await;
    drop(expunged);
    let _ = session.logout().await;
}

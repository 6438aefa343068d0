//! Header blocks by `TOP n 0`, pipelined where the server allows it, each kept to
//! [`MAX_HEADER_BYTES`]: what list, search and finding a message need of a header is small,
//! and a server (or a mail) with a 60 MiB header block must not make a listing of ten
//! messages take 600 MiB.

use tokio::io::AsyncWriteExt;

use super::{MAX_RESPONSE_BYTES, Pop3Client, answer_bound, timed};
use crate::pop3::error::Pop3Error;
use crate::pop3::lines::read_multiline_kept;

/// Header bytes kept of one message: the whole lines that fit. A mail whose header block is
/// longer still lists, with what its first 256 KiB hold (a field after that is missing).
pub const MAX_HEADER_BYTES: usize = 256 * 1024;

/// Messages whose headers one call should ask for, and so hold at once: with
/// [`MAX_HEADER_BYTES`] each, at most 16 MiB. With PIPELINING the TOP commands of a batch go
/// out together, so a thousand headers cost a few round trips, not a thousand.
pub const HEADER_BATCH: usize = 64;

impl Pop3Client {
    /// The headers of each message in `messages` (number and size by LIST), in order (a
    /// message deleted meanwhile by another session has none). Callers ask for at most
    /// [`HEADER_BATCH`] at a time. An answer much longer than its message is a server that
    /// never ends it.
    pub async fn headers(&mut self, messages: &[(u32, u64)]) -> Result<Vec<Vec<u8>>, Pop3Error> {
        let batch = if self.has("PIPELINING") {
            HEADER_BATCH
        } else {
            1
        };
        let mut result = Vec::with_capacity(messages.len());
        for chunk in messages.chunks(batch) {
            let commands: String = chunk
                .iter()
                .map(|(n, _)| format!("TOP {n} 0\r\n"))
                .collect();
            self.sent.extend(std::iter::repeat_n("TOP", chunk.len()));
            let timeout = self.timeout;
            let stream = self.stream()?.get_mut();
            let written = async {
                stream.write_all(commands.as_bytes()).await?;
                stream.flush().await
            };
            timed(timeout, "sending TOP", written).await?;
            for (n, size) in chunk {
                match self.read_status().await? {
                    Ok(_) => {
                        let max = answer_bound(*size).min(MAX_RESPONSE_BYTES);
                        let read =
                            read_multiline_kept(self.stream()?, MAX_HEADER_BYTES, max, timeout)
                                .await;
                        let kept = read.map_err(|e| Pop3Error::io("TOP", e))?;
                        if kept.cut {
                            tracing::info!(
                                message = n,
                                "the header block is longer than {MAX_HEADER_BYTES} bytes: \
                                 the message is listed from its first lines"
                            );
                        }
                        result.push(kept.bytes);
                    }
                    // Deleted meanwhile by another session: no headers.
                    Err(text) => {
                        tracing::debug!(message = n, "TOP refused: {text}");
                        result.push(Vec::new());
                    }
                }
            }
        }
        Ok(result)
    }
}

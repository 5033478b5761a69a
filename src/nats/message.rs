//! ingest's messages on a JetStream subject, as the sink writes them and the collector reads
//! them: who published a record and from which line, in headers, and the `Nats-Msg-Id` that
//! lets the server drop a copy. Pure: building and reading headers, no connection.

use async_nats::HeaderMap;

/// Header: who published the record (host and input fingerprint).
pub const SOURCE: &str = "Ingest-Source";
/// Header: the record's line number in its input (the first one, for a packed message).
pub const LINE: &str = "Ingest-Line";
/// Header: the last line number in a message packed by `--batch-bytes`.
pub const LAST_LINE: &str = "Ingest-Last-Line";
/// Header: the server's duplicate detection key, `FINGERPRINT:LINE` or `FINGERPRINT:FIRST-LAST`.
pub const MSG_ID: &str = "Nats-Msg-Id";

/// Room left in a message's `max_payload` for the headers, besides the publisher's name and
/// fingerprint (see [`Publisher::header_bytes`]).
const HEADER_ROOM: usize = 256;

/// Who is publishing, in every message's headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publisher {
    /// The publisher's identity in 16 hex digits: with `--checkpoint` the same for every rerun
    /// on the same input (the checkpoint keeps it), otherwise new for every run.
    pub fingerprint: String,
    /// `HOST/FINGERPRINT`, the `Ingest-Source` header.
    pub name: String,
}

impl Publisher {
    /// The source `id` (see [`crate::checkpoint::new_source`]) publishing from `host`.
    pub fn new(host: &str, id: u64) -> Publisher {
        let fingerprint = format!("{id:016x}");
        Publisher {
            name: format!("{host}/{fingerprint}"),
            fingerprint,
        }
    }

    /// The headers of the message holding lines `first..=last` (one line: `first == last`).
    pub fn headers(&self, first: u64, last: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let mut digits = itoa::Buffer::new();
        let id = if first == last {
            format!("{}:{first}", self.fingerprint)
        } else {
            headers.insert(LAST_LINE, digits.format(last));
            format!("{}:{first}-{last}", self.fingerprint)
        };
        headers.insert(MSG_ID, id.as_str());
        headers.insert(SOURCE, self.name.as_str());
        headers.insert(LINE, digits.format(first));
        headers
    }

    /// At most how many bytes of a message its headers take.
    pub fn header_bytes(&self) -> usize {
        HEADER_ROOM + self.name.len() + self.fingerprint.len()
    }

    /// The first and last line of a message, when its headers say it is this publisher's.
    pub fn lines_of(&self, headers: &HeaderMap) -> Option<(u64, u64)> {
        if headers.get(SOURCE)?.as_str() != self.name {
            return None;
        }
        let first: u64 = headers.get(LINE)?.as_str().parse().ok()?;
        let last = match headers.get(LAST_LINE) {
            Some(last) => last.as_str().parse().ok()?,
            None => first,
        };
        Some((first, last))
    }
}

/// The publisher a message names, its `Ingest-Source` header.
pub fn publisher_of(headers: Option<&HeaderMap>) -> Option<&str> {
    headers.and_then(|h| h.get(SOURCE)).map(|v| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_stable_and_tells_inputs_apart() {
        let a = Publisher::new("web1", 0x2a);
        assert_eq!(a, Publisher::new("web1", 0x2a));
        assert_ne!(a.fingerprint, Publisher::new("web1", 0x2b).fingerprint);
        assert_eq!(a.name, format!("web1/{}", a.fingerprint));
        assert_eq!(a.fingerprint, "000000000000002a");
    }

    #[test]
    fn headers_name_the_lines_and_read_back_only_for_their_publisher() {
        let a = Publisher::new("web1", 0x2a);
        let one = a.headers(7, 7);
        assert_eq!(one.get(MSG_ID).map(|v| v.as_str()), Some("000000000000002a:7"));
        assert_eq!(one.get(LAST_LINE), None);
        assert_eq!(a.lines_of(&one), Some((7, 7)));
        let packed = a.headers(7, 9);
        assert_eq!(
            packed.get(MSG_ID).map(|v| v.as_str()),
            Some("000000000000002a:7-9")
        );
        assert_eq!(a.lines_of(&packed), Some((7, 9)));
        assert_eq!(publisher_of(Some(&packed)), Some("web1/000000000000002a"));
        assert_eq!(Publisher::new("web1", 0x2b).lines_of(&packed), None);
    }
}

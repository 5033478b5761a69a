//! Container runtimes' log files: CRI (`TIME STREAM TAG MESSAGE`, as containerd and CRI-O
//! write `/var/log/pods/`) and Docker's json-file (`{"log":"...\n","stream":"stdout",
//! "time":"..."}`).
//!
//! A line of either is a piece of what the program wrote to one of its streams: a long line
//! comes in pieces (runtimes cut at 16 KiB), all but the last marked partial (tag `P`, or a
//! `log` without its final `\n`), and stdout's and stderr's pieces interleave. The parser joins
//! them per stream; the reader cuts batches only where no stream has a line open (see
//! [`Open`]), so that a batch holds every piece of the lines it gives.

use std::ops::Range;

use time::OffsetDateTime;

use crate::record::{Fields, parse_timestamp};

/// Which runtime's layout a file has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// The Kubernetes CRI layout (containerd, CRI-O).
    Cri,
    /// Docker's `json-file` logging driver.
    Docker,
}

impl Runtime {
    /// Its `--input` name.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Cri => "cri",
            Runtime::Docker => "docker",
        }
    }
}

/// One of a container's two output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout = 0,
    /// Standard error.
    Stderr = 1,
}

impl Stream {
    /// As the runtimes write it, and as the `stream` field says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn read(word: &[u8]) -> Option<Stream> {
        match word {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// Where a piece's content is: in the line itself, or unescaped into the caller's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// A range of the line (CRI).
    Line(Range<usize>),
    /// A range of the scratch text (Docker's JSON string, unescaped).
    Scratch(Range<usize>),
}

/// One line of a container log, without its time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The stream it was written to.
    pub stream: Stream,
    /// The last piece of a line the program wrote (or the whole of it).
    pub last: bool,
    /// What the program wrote, without the line's end.
    pub content: Content,
    /// The runtime's time, as a range of the line (CRI) or the scratch text (Docker).
    time: Range<usize>,
}

/// The buffers decoding a Docker line fills, reused line after line.
#[derive(Debug, Default)]
pub struct Decoding {
    fields: Fields,
    /// Unescaped content, then the time.
    pub text: Vec<u8>,
}

/// Reads one line (without its `\n`) of `runtime`'s layout; `None` when it is not one.
pub fn decode(runtime: Runtime, line: &[u8], decoding: &mut Decoding) -> Option<Piece> {
    match runtime {
        Runtime::Cri => cri(line),
        Runtime::Docker => docker(line, decoding),
    }
}

impl Piece {
    /// The runtime's time of the piece, as written (a Docker line's is in `decoding` as its
    /// content is).
    pub fn time_bytes<'a>(&self, line: &'a [u8], decoding: &'a Decoding) -> &'a [u8] {
        match self.content {
            Content::Line(_) => &line[self.time.clone()],
            Content::Scratch(_) => &decoding.text[self.time.clone()],
        }
    }

    /// The runtime's time of the piece; `None` when it is not a timestamp.
    pub fn time(&self, line: &[u8], decoding: &Decoding) -> Option<OffsetDateTime> {
        let text = self.time_bytes(line, decoding);
        match parse_timestamp(text)? {
            (time, used) if used == text.len() => Some(time),
            _ => None,
        }
    }

    /// Its content's bytes.
    pub fn content<'a>(&self, line: &'a [u8], decoding: &'a Decoding) -> &'a [u8] {
        match &self.content {
            Content::Line(range) => &line[range.clone()],
            Content::Scratch(range) => &decoding.text[range.clone()],
        }
    }
}

/// `TIME STREAM TAG CONTENT`: the tag is `P` or `F`, maybe followed by `:` and more tags; an
/// empty content may lose its space.
fn cri(line: &[u8]) -> Option<Piece> {
    let mut at = 0;
    let mut word = || {
        let start = at;
        let len = memchr::memchr(b' ', &line[start..]).unwrap_or(line.len() - start);
        at = (start + len + 1).min(line.len());
        start..start + len
    };
    let time = word();
    let stream = Stream::read(&line[word()])?;
    let tag = &line[word()];
    let first = tag.split(|&b| b == b':').next().unwrap_or_default();
    let last = match first {
        b"F" => true,
        b"P" => false,
        _ => return None,
    };
    if time.is_empty() || !line[time.start].is_ascii_digit() {
        return None;
    }
    Some(Piece {
        stream,
        last,
        content: Content::Line(at..line.len()),
        time,
    })
}

/// `{"log":"...","stream":"...","time":"..."}`: as Docker writes it, read here; members in
/// any other order, or others beside them, by the JSON reader.
fn docker(line: &[u8], decoding: &mut Decoding) -> Option<Piece> {
    docker_as_written(line, &mut decoding.text).or_else(|| docker_any(line, decoding))
}

/// Docker's own order (`log`, `stream`, `attrs` when its `--log-opt labels`, `env` or `tag` add
/// any, `time`), read without a general JSON reader (a third of the time otherwise: every whole
/// line's `log` ends in an escape, `\n`).
fn docker_as_written(line: &[u8], text: &mut Vec<u8>) -> Option<Piece> {
    text.clear();
    let rest = line.strip_prefix(b"{\"log\":")?;
    let rest = json_string(rest, text)?;
    let rest = rest.strip_prefix(b",\"stream\":\"")?;
    let (stream, rest) = match rest.get(..6)? {
        b"stdout" => (Stream::Stdout, &rest[6..]),
        b"stderr" => (Stream::Stderr, &rest[6..]),
        _ => return None,
    };
    let mut rest = rest.strip_prefix(b"\"")?;
    if let Some(attrs) = rest.strip_prefix(b",\"attrs\":{") {
        // An object of strings (Go's map[string]string), read over: the general reader takes
        // any other.
        let content = text.len();
        rest = attrs;
        if let Some(after) = rest.strip_prefix(b"}") {
            rest = after;
        } else {
            loop {
                rest = json_string(rest, text)?.strip_prefix(b":")?;
                rest = json_string(rest, text)?;
                match rest.split_first()? {
                    (b',', after) => rest = after,
                    (b'}', after) => break rest = after,
                    _ => return None,
                }
            }
        }
        text.truncate(content);
    }
    let rest = rest.strip_prefix(b",\"time\":\"")?;
    let time = rest.strip_suffix(b"\"}")?;
    if memchr::memchr2(b'"', b'\\', time).is_some() {
        return None;
    }
    let last = text.last() == Some(&b'\n');
    let content = 0..text.len() - usize::from(last);
    let time_at = text.len();
    text.extend_from_slice(time);
    Some(Piece {
        stream,
        last,
        content: Content::Scratch(content),
        time: time_at..text.len(),
    })
}

/// The JSON string at the start of `s`, unescaped onto `text`; what follows it. `None` when it
/// is not one (a control byte unescaped, invalid UTF-8, a bad escape).
fn json_string<'s>(s: &'s [u8], text: &mut Vec<u8>) -> Option<&'s [u8]> {
    let start = text.len();
    let mut rest = s.strip_prefix(b"\"")?;
    loop {
        let at = memchr::memchr2(b'"', b'\\', rest)?;
        // A control byte must be escaped in JSON.
        if rest[..at].iter().fold(false, |control, &b| control | (b < 0x20)) {
            return None;
        }
        text.extend_from_slice(&rest[..at]);
        if rest[at] == b'"' {
            rest = &rest[at + 1..];
            break;
        }
        let (unescaped, used) = unescape(&rest[at..])?;
        let mut utf8 = [0; 4];
        text.extend_from_slice(unescaped.encode_utf8(&mut utf8).as_bytes());
        rest = &rest[at + used..];
    }
    let added = &text[start..];
    if added.iter().fold(0, |high, &b| high | b) >= 0x80 && std::str::from_utf8(added).is_err() {
        return None;
    }
    Some(rest)
}

/// One JSON escape at the start of `s` (`\n`, `\u00e9`, a surrogate pair): the character and
/// how many bytes it took.
fn unescape(s: &[u8]) -> Option<(char, usize)> {
    let hex =
        |s: &[u8]| -> Option<u32> { u32::from_str_radix(std::str::from_utf8(s.get(..4)?).ok()?, 16).ok() };
    let c = match *s.get(1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let high = hex(&s[2..])?;
            if (0xD800..0xDC00).contains(&high) {
                let low = s.get(6..8).filter(|p| p == b"\\u").and_then(|_| hex(&s[8..]))?;
                let c = 0x10000 + ((high - 0xD800) << 10) + low.checked_sub(0xDC00).filter(|l| *l < 0x400)?;
                return Some((char::from_u32(c)?, 12));
            }
            return Some((char::from_u32(high)?, 6));
        }
        _ => return None,
    };
    Some((c, 2))
}

/// Any JSON object with `log`, `stream` and `time` string members, in any order.
fn docker_any(line: &[u8], decoding: &mut Decoding) -> Option<Piece> {
    let Decoding { fields, text } = decoding;
    fields.clear();
    text.clear();
    if line.first() != Some(&b'{') {
        return None;
    }
    super::json::members(line, fields).ok()?;
    let value = |key: &str| {
        fields
            .find(key, |raw| raw.first() == Some(&b'"'))
            .map(|i| fields.value(i))
    };
    let log = crate::format::string(value("log")?)?;
    let stream = Stream::read(crate::format::string(value("stream")?)?.as_bytes())?;
    let time = crate::format::string(value("time")?)?;
    let (content, last) = match log.strip_suffix('\n') {
        Some(content) => (content, true),
        None => (&*log, false),
    };
    text.extend_from_slice(content.as_bytes());
    let content = 0..text.len();
    text.extend_from_slice(time.as_bytes());
    Some(Piece {
        stream,
        last,
        content: Content::Scratch(content.clone()),
        time: content.end..text.len(),
    })
}

/// What a container log's path says of whose it is, as `(field, value, is a number)`:
/// kubelet's `/var/log/pods/NAMESPACE_POD_UID/CONTAINER/N.log` gives `namespace`, `pod`,
/// `pod_uid`, `container` and `restart` (N); its links `/var/log/containers/
/// POD_NAMESPACE_CONTAINER-ID.log` give `pod`, `namespace`, `container` and `container_id`;
/// Docker's `/var/lib/docker/containers/ID/ID-json.log` gives `container_id`. Nothing for any
/// other path.
pub fn path_fields(path: &std::path::Path) -> Vec<(&'static str, String, bool)> {
    fn name(path: Option<&std::path::Path>) -> Option<&str> {
        path?.file_name()?.to_str()
    }
    let Some(file) = name(Some(path)) else {
        return Vec::new();
    };
    let dir = path.parent();
    // Kubernetes names are DNS labels (no `_`): the separators are unambiguous.
    let labels = |parts: &[&str]| parts.iter().all(|p| !p.is_empty());
    if let (Some(restart), Some(container), Some(pod_dir)) = (
        file.strip_suffix(".log")
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok()),
        name(dir),
        name(dir.and_then(std::path::Path::parent)),
    ) {
        let parts: Vec<&str> = pod_dir.split('_').collect();
        if let [namespace, pod, uid] = parts[..]
            && labels(&parts)
        {
            return vec![
                ("namespace", namespace.to_owned(), false),
                ("pod", pod.to_owned(), false),
                ("pod_uid", uid.to_owned(), false),
                ("container", container.to_owned(), false),
                ("restart", restart.to_string(), true),
            ];
        }
    }
    let is_id = |id: &str| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some((names, id)) = file.strip_suffix(".log").and_then(|n| n.rsplit_once('-'))
        && is_id(id)
    {
        let parts: Vec<&str> = names.split('_').collect();
        if let [pod, namespace, container] = parts[..]
            && labels(&parts)
        {
            return vec![
                ("pod", pod.to_owned(), false),
                ("namespace", namespace.to_owned(), false),
                ("container", container.to_owned(), false),
                ("container_id", id.to_owned(), false),
            ];
        }
    }
    match file.strip_suffix("-json.log") {
        Some(id) if is_id(id) && name(dir) == Some(id) => vec![("container_id", id.to_owned(), false)],
        _ => Vec::new(),
    }
}

/// The first `most` lines written to each stream among `lines` (a file's first lines), their
/// pieces joined, blank ones left out: what `--input auto` judges each stream's layout by.
pub fn whole_lines<'a>(
    runtime: Runtime,
    lines: impl IntoIterator<Item = &'a [u8]>,
    most: usize,
) -> [Vec<Vec<u8>>; 2] {
    let mut decoding = Decoding::default();
    let mut open: [Vec<u8>; 2] = Default::default();
    let mut whole: [Vec<Vec<u8>>; 2] = Default::default();
    for line in lines {
        let Some(piece) = decode(runtime, line, &mut decoding) else {
            continue;
        };
        let s = piece.stream as usize;
        open[s].extend_from_slice(piece.content(line, &decoding));
        if piece.last {
            let written = std::mem::take(&mut open[s]);
            if whole[s].len() < most && !crate::record::trim_line(&written).is_empty() {
                whole[s].push(written);
            }
        }
    }
    whole
}

/// Where in `lines` (whole CRI lines) the first line that leaves a line open starts (its tag
/// `P`); `None` when every line is a last piece or no piece. The reader skips through the
/// others without reading each: only a `P` changes which lines are open.
pub fn next_partial_cri(lines: &[u8]) -> Option<usize> {
    let finder = memchr::memmem::Finder::new(b" P");
    let mut from = 0;
    while let Some(found) = finder.find(&lines[from..]) {
        let at = from + found;
        let start = memchr::memrchr(b'\n', &lines[..at]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &lines[at..]).map_or(lines.len(), |i| at + i);
        if cri(&lines[start..end]).is_some_and(|piece| !piece.last) {
            return Some(start);
        }
        // ` P` in a message: on after its line.
        from = end;
    }
    None
}

/// [`next_partial_cri`] for Docker's lines: where the first line that may leave a line open
/// starts. A line Docker wrote whole has its `log` end in an escaped newline right before
/// `","stream":"` (the driver writes `log`, `stream`, `time` in that order); any other line is
/// read to know.
pub fn next_partial_docker(lines: &[u8]) -> Option<usize> {
    let finder = memchr::memmem::Finder::new(b"\\n\",\"stream\":\"");
    let mut from = 0;
    while from < lines.len() {
        let Some(found) = finder.find(&lines[from..]) else {
            return Some(from);
        };
        let at = from + found;
        let start = memchr::memrchr(b'\n', &lines[..at]).map_or(0, |i| i + 1);
        if start > from {
            // A line before it without one.
            return Some(from);
        }
        // The `\n` is an escape only after an even run of backslashes before its own.
        let backslashes = lines[..at].iter().rev().take_while(|&&b| b == b'\\').count();
        if backslashes % 2 == 1 {
            return Some(start);
        }
        from = memchr::memchr(b'\n', &lines[at..]).map_or(lines.len(), |i| at + i + 1);
    }
    None
}

/// The reader's view of the pieces so far: which streams have a line open, and which are
/// skipping the rest of a line too long to keep. A batch may end only where no line is open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Open {
    /// Per stream: the content bytes of its open line; `None` when none is open.
    pub open: [Option<usize>; 2],
    /// Per stream: the line it is in was too long, its further pieces are skipped up to its
    /// last one.
    pub skipping: [bool; 2],
}

/// What one piece did to a stream's line, as [`Open::step`] tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The piece joins a line still open.
    Joins,
    /// The piece ends a line (or is one).
    Ends,
    /// The line grew past the limit with this piece: rejected here, its later pieces skipped.
    TooLong,
    /// A piece of a line rejected before.
    Skipped,
}

impl Open {
    /// True when no stream has a line open: a batch may end here.
    pub fn settled(&self) -> bool {
        self.open == [None, None]
    }

    /// Takes one piece of `len` content bytes into account, against `max_line_bytes`. The
    /// reader and the parser step alike, so that both agree on where a line ends and which
    /// are too long.
    pub fn step(&mut self, stream: Stream, last: bool, len: usize, max_line_bytes: usize) -> Step {
        let s = stream as usize;
        if self.skipping[s] {
            self.skipping[s] = !last;
            return Step::Skipped;
        }
        let total = self.open[s].unwrap_or(0) + len;
        if total > max_line_bytes {
            self.open[s] = None;
            self.skipping[s] = !last;
            return Step::TooLong;
        }
        if last {
            self.open[s] = None;
            Step::Ends
        } else {
            self.open[s] = Some(total);
            Step::Joins
        }
    }

    /// Lines still open are cut here (a batch ends with them: the input ended, or they were
    /// open for too long): their next pieces start new lines.
    pub fn cut(&mut self) {
        self.open = [None, None];
    }

    /// The skipping streams as the checkpoint keeps them (bit 0 stdout, bit 1 stderr).
    pub fn skipping_bits(&self) -> u8 {
        u8::from(self.skipping[0]) | (u8::from(self.skipping[1]) << 1)
    }

    /// No line open, the streams in `bits` skipping (see [`Open::skipping_bits`]).
    pub fn from_skipping_bits(bits: u8) -> Open {
        Open {
            open: [None, None],
            skipping: [bits & 1 != 0, bits & 2 != 0],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(runtime: Runtime, line: &str) -> Option<(Stream, bool, String, Option<OffsetDateTime>)> {
        let mut decoding = Decoding::default();
        let piece = decode(runtime, line.as_bytes(), &mut decoding)?;
        let content = String::from_utf8(piece.content(line.as_bytes(), &decoding).to_vec()).unwrap();
        Some((
            piece.stream,
            piece.last,
            content,
            piece.time(line.as_bytes(), &decoding),
        ))
    }

    #[test]
    fn cri_lines_give_their_stream_tag_time_and_content() {
        let (stream, last, content, time) = read(
            Runtime::Cri,
            "2026-04-15T10:00:00.123456789Z stderr F hello world",
        )
        .unwrap();
        assert_eq!(
            (stream, last, content.as_str()),
            (Stream::Stderr, true, "hello world")
        );
        assert_eq!(
            time,
            Some(time::macros::datetime!(2026-04-15 10:00:00.123456789 UTC))
        );
        let (_, last, content, _) = read(Runtime::Cri, "2026-04-15T10:00:00Z stdout P:x a piece ").unwrap();
        assert_eq!((last, content.as_str()), (false, "a piece "));
        // CRI-O writes its local time with an offset.
        let (.., time) = read(Runtime::Cri, "2026-04-15T12:00:00.5+02:00 stdout F x").unwrap();
        assert_eq!(time, Some(time::macros::datetime!(2026-04-15 10:00:00.5 UTC)));
        // An empty line, with or without the space after the tag.
        assert_eq!(
            read(Runtime::Cri, "2026-04-15T10:00:00Z stdout F ").unwrap().2,
            ""
        );
        assert_eq!(read(Runtime::Cri, "2026-04-15T10:00:00Z stdout F").unwrap().2, "");
        for other in [
            "2026-04-15T10:00:00Z INFO hello",
            "2026-04-15T10:00:00Z stdout X hello",
            "stdout stdout F x",
            "",
        ] {
            assert_eq!(read(Runtime::Cri, other), None, "{other}");
        }
    }

    #[test]
    fn docker_lines_give_their_stream_time_and_unescaped_log() {
        let line = r#"{"log":"say \"hi\"\tnow\n","stream":"stdout","time":"2026-04-15T10:00:00.5Z"}"#;
        let (stream, last, content, time) = read(Runtime::Docker, line).unwrap();
        assert_eq!(
            (stream, last, content.as_str()),
            (Stream::Stdout, true, "say \"hi\"\tnow")
        );
        assert_eq!(time, Some(time::macros::datetime!(2026-04-15 10:00:00.5 UTC)));
        // Escapes of every kind, a surrogate pair among them.
        let line =
            r#"{"log":"\u00e9\ud83d\ude00\/\\\b\r\n","stream":"stderr","time":"2026-04-15T10:00:00Z"}"#;
        let (_, last, content, _) = read(Runtime::Docker, line).unwrap();
        assert_eq!((last, content.as_str()), (true, "é😀/\\\u{8}\r"));
        let line = r#"{"time":"2026-04-15T10:00:00Z","stream":"stderr","log":"part","attrs":{"a":"b"}}"#;
        let (stream, last, content, _) = read(Runtime::Docker, line).unwrap();
        assert_eq!((stream, last, content.as_str()), (Stream::Stderr, false, "part"));
        for other in [
            r#"{"log":"x\n","stream":"stdin","time":"2026-04-15T10:00:00Z"}"#,
            r#"{"msg":"x","level":"info","time":"2026-04-15T10:00:00Z"}"#,
            "2026-04-15T10:00:00Z stdout F x",
        ] {
            assert_eq!(read(Runtime::Docker, other), None, "{other}");
        }
    }

    #[test]
    fn the_first_line_left_open_is_found_past_messages_that_look_like_one() {
        let lines = b"2026-04-15T10:00:00Z stdout F a Pen and a P\n\
                      2026-04-15T10:00:00Z stdout F:x P P\n\
                      2026-04-15T10:00:00Z stderr P:x the first\n\
                      2026-04-15T10:00:00Z stdout P later\n";
        let at = next_partial_cri(lines).unwrap();
        assert!(lines[at..].starts_with(b"2026-04-15T10:00:00Z stderr P:x the first"));
        assert_eq!(next_partial_cri(&lines[..at]), None);
    }

    #[test]
    fn a_docker_line_written_whole_is_told_without_reading_it() {
        let whole =
            |log: &str| format!(r#"{{"log":"{log}\n","stream":"stdout","time":"2026-04-15T10:00:00Z"}}"#);
        let lines = [whole("a"), whole(r"a \\"), whole(r"b\\n")].join("\n") + "\n";
        assert_eq!(next_partial_docker(lines.as_bytes()), None);
        // A log ending in a backslash and `n` (escaped: `\\n`) has no newline: a piece.
        let piece = r#"{"log":"ends in \\n","stream":"stdout","time":"2026-04-15T10:00:00Z"}"#;
        let other_order = r#"{"stream":"stdout","log":"x\n","time":"2026-04-15T10:00:00Z"}"#;
        for odd in [piece, other_order] {
            let text = format!("{}{odd}\n{}", whole("a") + "\n", whole("b") + "\n");
            let at = next_partial_docker(text.as_bytes()).unwrap();
            assert!(text[at..].starts_with(odd), "{odd}");
        }
    }

    proptest::proptest! {
        #[test]
        fn dockers_own_order_reads_as_the_json_reader_reads_it(
            log in "\\PC*(\n)?",
            err: bool,
            attrs in proptest::option::of(proptest::collection::btree_map("\\PC{0,8}", "\\PC{0,8}", 0..3)),
        ) {
            let stream = if err { "stderr" } else { "stdout" };
            // `--log-opt labels=...`: an object of strings between the stream and the time.
            let attrs = attrs.map_or_else(String::new, |attrs| {
                format!(r#","attrs":{}"#, serde_json::to_string(&attrs).unwrap())
            });
            // Docker's order, built by hand (serde_json orders an object's members by name).
            let line = format!(
                r#"{{"log":{},"stream":"{stream}"{attrs},"time":"2026-04-15T10:00:00.5Z"}}"#,
                serde_json::to_string(&log).unwrap()
            );
            let fast = docker_as_written(line.as_bytes(), &mut Vec::new());
            proptest::prop_assert!(fast.is_some(), "{line}");
            let (mut a, mut b) = (Decoding::default(), Decoding::default());
            let fast = docker(line.as_bytes(), &mut a).unwrap();
            let slow = docker_any(line.as_bytes(), &mut b).unwrap();
            proptest::prop_assert_eq!(fast.content(line.as_bytes(), &a), slow.content(line.as_bytes(), &b));
            proptest::prop_assert_eq!((fast.stream, fast.last), (slow.stream, slow.last));
            proptest::prop_assert_eq!(fast.time(line.as_bytes(), &a), slow.time(line.as_bytes(), &b));
        }
    }

    #[test]
    fn a_container_logs_path_names_its_pod_and_container() {
        let fields = |path: &str| {
            path_fields(std::path::Path::new(path))
                .into_iter()
                .map(|(k, v, _)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            fields("/var/log/pods/shop_web-7d4b9c-x2k8p_0b6c1a2e-1f3d-4c5b-9a8e-7f6d5c4b3a21/nginx/12.log"),
            "namespace=shop pod=web-7d4b9c-x2k8p pod_uid=0b6c1a2e-1f3d-4c5b-9a8e-7f6d5c4b3a21 container=nginx restart=12"
        );
        assert!(fields("/var/log/pods/kube-system_etcd-node1_abc/etcd/0.log").ends_with("restart=0"));
        let id = "3f4e".repeat(16);
        assert_eq!(
            fields(&format!(
                "/var/log/containers/web-7d4b9c-x2k8p_shop_nginx-{id}.log"
            )),
            format!("pod=web-7d4b9c-x2k8p namespace=shop container=nginx container_id={id}")
        );
        assert_eq!(
            fields(&format!("/var/lib/docker/containers/{id}/{id}-json.log")),
            format!("container_id={id}")
        );
        for other in [
            "/var/log/app.log",
            "/var/log/pods/x/y/0.log",
            "/var/log/nginx/0.log",
            "/tmp/a_b/c/x.log",
        ] {
            assert_eq!(fields(other), "", "{other}");
        }
    }

    #[test]
    fn a_line_open_on_one_stream_keeps_a_batch_open_and_one_too_long_is_skipped_to_its_end() {
        let mut open = Open::default();
        assert_eq!(open.step(Stream::Stdout, false, 6, 10), Step::Joins);
        assert!(!open.settled());
        // stderr's whole lines between stdout's pieces.
        assert_eq!(open.step(Stream::Stderr, true, 100, 1000), Step::Ends);
        assert_eq!(open.step(Stream::Stdout, true, 4, 10), Step::Ends);
        assert!(open.settled());
        // Past the limit: rejected once, skipped to the last piece, which ends it.
        assert_eq!(open.step(Stream::Stdout, false, 8, 10), Step::Joins);
        assert_eq!(open.step(Stream::Stdout, false, 8, 10), Step::TooLong);
        assert!(open.settled(), "a line being skipped holds nothing");
        assert_eq!(open.skipping_bits(), 1);
        assert_eq!(open.step(Stream::Stdout, false, 8, 10), Step::Skipped);
        assert_eq!(open.step(Stream::Stdout, true, 8, 10), Step::Skipped);
        assert_eq!(open.step(Stream::Stdout, true, 3, 10), Step::Ends);
        assert_eq!(Open::from_skipping_bits(2).skipping, [false, true]);
    }
}

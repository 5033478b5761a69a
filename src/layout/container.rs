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

use crate::record::{Fields, parse_timestamp, trim_line};

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

    /// The piece's runtime time in nanoseconds since the epoch, for `--multiline`'s gap: the
    /// runtimes' own shape (`2026-04-15T10:00:00.123456789Z`) read directly (the general
    /// reader, twice a line, was a tenth of the run), any other as [`Piece::time`] reads it.
    pub fn nanos(&self, line: &[u8], decoding: &Decoding) -> Option<i128> {
        runtime_nanos(self.time_bytes(line, decoding)).or_else(|| {
            self.time(line, decoding)
                .map(OffsetDateTime::unix_timestamp_nanos)
        })
    }

    /// Its content's bytes.
    pub fn content<'a>(&self, line: &'a [u8], decoding: &'a Decoding) -> &'a [u8] {
        match &self.content {
            Content::Line(range) => &line[range.clone()],
            Content::Scratch(range) => &decoding.text[range.clone()],
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ` (one to nine digits after the point), as containerd, CRI-O
/// and Docker write their times, in nanoseconds since the epoch; `None` for any other shape.
/// Days are counted as the proleptic Gregorian calendar does (Howard Hinnant's
/// `days_from_civil`); a day past its month's end is not refused, as it only measures gaps.
fn runtime_nanos(text: &[u8]) -> Option<i128> {
    let &[
        y0,
        y1,
        y2,
        y3,
        b'-',
        m0,
        m1,
        b'-',
        d0,
        d1,
        b'T',
        h0,
        h1,
        b':',
        i0,
        i1,
        b':',
        s0,
        s1,
        b'.',
        ref frac @ ..,
        b'Z',
    ] = text
    else {
        return None;
    };
    // Docker writes Go's RFC 3339 with nanoseconds, which leaves out trailing zeros.
    if !(1..=9).contains(&frac.len()) {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0_i64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (number(&[y0, y1, y2, y3])?, number(&[m0, m1])?, number(&[d0, d1])?);
    let (hour, minute, second) = (number(&[h0, h1])?, number(&[i0, i1])?, number(&[s0, s1])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    let nanos = number(frac)? * 10_i64.pow(9 - frac.len() as u32);
    Some(i128::from(seconds) * 1_000_000_000 + i128::from(nanos))
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

/// `--multiline` on a container's log: per stream, whether a record is open and the runtime's
/// time of its last line. The reader and the parser step alike, once per line the program
/// wrote (its pieces joined), so that both agree on which lines join a record: the reader then
/// ends a batch only where each stream's next line starts a record of its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Records {
    /// Per stream: a record is open, with the time of its last line in nanoseconds since the
    /// epoch (`None` when the runtime's time did not read).
    open: [Option<Option<i128>>; 2],
    /// The latest time of the lines stepped through.
    now: Option<i128>,
}

/// What a line does to its stream's record, as [`Records::step`] tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joins {
    /// It starts a record (the one open before, if any, is whole).
    Starts,
    /// It continues the record open on its stream.
    Continues,
    /// It starts no record and none is open: read alone, as without `--multiline`.
    Alone,
}

impl Records {
    /// Takes one line of `stream` into account: whether it has a record's start (`starts`),
    /// and its runtime time. A record whose last line is more than `gap`
    /// (`--multiline-timeout`) older than the latest line of either stream is whole: a live
    /// input would have let it go by then, and the runtime's times make a rerun decide alike.
    pub fn step(
        &mut self,
        stream: Stream,
        starts: bool,
        time: Option<i128>,
        gap: std::time::Duration,
    ) -> Joins {
        let s = stream as usize;
        self.now = self.now.max(time);
        let quiet = self.quiet_bits(gap) & (1 << s) != 0;
        match self.open[s] {
            _ if starts => {
                self.open[s] = Some(time);
                Joins::Starts
            }
            Some(last) if !quiet => {
                self.open[s] = Some(time.or(last));
                Joins::Continues
            }
            _ => {
                self.open[s] = None;
                Joins::Alone
            }
        }
    }

    /// The streams with a record open (bit 0 stdout, bit 1 stderr).
    pub fn open_bits(&self) -> u8 {
        u8::from(self.open[0].is_some()) | (u8::from(self.open[1].is_some()) << 1)
    }

    /// The streams whose open record is whole by the time (see [`Records::step`]): no line
    /// of theirs joins it any more.
    pub fn quiet_bits(&self, gap: std::time::Duration) -> u8 {
        let gap = i128::try_from(gap.as_nanos()).unwrap_or(i128::MAX);
        let quiet = |open: Option<Option<i128>>| match (open, self.now) {
            (Some(Some(last)), Some(now)) => now.saturating_sub(last) > gap,
            _ => false,
        };
        u8::from(quiet(self.open[0])) | (u8::from(quiet(self.open[1])) << 1)
    }
}

/// `--multiline` on a container's log, the reader's side: each stream's record as
/// [`Records`] steps it, and the points where a batch may end. A point where no piece is open
/// is one once every stream that has a record open there shows its next line starts a record
/// (or comes after the gap): a batch cut there leaves no line of a record to the next batch.
#[derive(Debug, Default)]
pub struct RecordEnds {
    records: Records,
    /// Per stream, the line being joined: whether its first piece starts a record, its time,
    /// and whether every piece of it so far is blank.
    line: [Option<(bool, Option<i128>, bool)>; 2],
    /// The points not known yet to be ends, oldest first.
    pending: Vec<Point>,
    /// Lines stepped through so far.
    lines: u64,
}

/// A line's end where no piece is open: `at` in the reader's buffer, the streams whose next
/// line is still to show it starts a record, the streams skipping there, and the lines before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    /// Where, in the reader's buffer.
    pub at: usize,
    waiting: u8,
    /// The streams skipping a line too long there (see [`Open::skipping_bits`]).
    pub skipping: u8,
    /// Lines stepped through up to it.
    pub line: u64,
}

impl RecordEnds {
    /// One line of the input: its piece and what [`Open::step`] made of it (`None`: not a
    /// container's line), against `gap` and `starts_record` (whether a line of a stream that
    /// starts so starts a record: its layout's say). Then, if no piece is open after it
    /// (`settled`, with the streams `skipping`), its end `at` is a point.
    pub fn line(
        &mut self,
        starts_record: impl Fn(Stream, &[u8]) -> bool,
        gap: std::time::Duration,
        piece: Option<(&Piece, &[u8], &Decoding, Step)>,
        at: usize,
        settled: bool,
        skipping: u8,
    ) {
        self.lines += 1;
        if let Some((piece, line, decoding, step)) = piece {
            let s = piece.stream as usize;
            let content = piece.content(line, decoding);
            let joined = match (step, self.line[s].take()) {
                (Step::Skipped | Step::TooLong, _) => None,
                (step, Some((starts, time, blank))) => {
                    Some((step, starts, time, blank && trim_line(content).is_empty()))
                }
                (step, None) => Some((
                    step,
                    starts_record(piece.stream, content),
                    piece.nanos(line, decoding),
                    trim_line(content).is_empty(),
                )),
            };
            match joined {
                Some((Step::Joins, starts, time, blank)) => self.line[s] = Some((starts, time, blank)),
                // Blank lines join nothing and end nothing (as the parser counts them).
                Some((_, starts, time, false)) => {
                    let bit = 1 << s;
                    match self.records.step(piece.stream, starts, time, gap) {
                        Joins::Continues => self.pending.retain(|p| p.waiting & bit == 0),
                        Joins::Starts | Joins::Alone => {
                            self.pending.iter_mut().for_each(|p| p.waiting &= !bit)
                        }
                    }
                    // A stream quiet past the gap (it wrote a record a while ago, nothing
                    // since): whatever it writes next joins nothing before.
                    let quiet = self.records.quiet_bits(gap);
                    if quiet != 0 {
                        self.pending.iter_mut().for_each(|p| p.waiting &= !quiet);
                    }
                }
                _ => {}
            }
        }
        if settled {
            self.pending.push(Point {
                at,
                waiting: self.records.open_bits() & !self.records.quiet_bits(gap),
                skipping,
                line: self.lines,
            });
        }
    }

    /// The points now known to be ends, oldest first (taken: the latest is where the lines
    /// after it are held from).
    pub fn ends(&mut self) -> impl Iterator<Item = Point> + '_ {
        let known = self
            .pending
            .iter()
            .rposition(|p| p.waiting == 0)
            .map_or(0, |i| i + 1);
        self.pending.drain(..known).filter(|p| p.waiting == 0)
    }

    /// Lines stepped through so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The reader handed out its buffer's first `by` bytes: the points move to the front.
    pub fn shift(&mut self, by: usize) {
        for point in &mut self.pending {
            point.at -= by;
        }
    }

    /// A batch ends here with lines or records open (the input ended, or they were held too
    /// long): the next batch starts with none.
    pub fn cut(&mut self) {
        (self.records, self.line) = (Records::default(), [None, None]);
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtimes_time_read_directly_is_the_instant_the_general_reader_reads() {
        for text in [
            "2026-04-15T10:00:00.123456789Z",
            "1970-01-01T00:00:00.000000000Z",
            "2024-02-29T23:59:59.999999999Z",
            "2000-03-01T00:00:00.000000001Z",
            "1999-12-31T12:34:56.000000000Z",
            "2100-01-01T00:00:00.500000000Z",
            "2026-04-15T10:00:00.1234Z",
            "2026-04-15T10:00:00.5Z",
        ] {
            let general = parse_timestamp(text.as_bytes()).map(|(t, _)| t.unix_timestamp_nanos());
            assert_eq!(runtime_nanos(text.as_bytes()), general, "{text}");
        }
        for other in [
            "2026-04-15T10:00:00Z",
            "2026-04-15T10:00:00.123456789+02:00",
            "2026-13-01T00:00:00.000000000Z",
        ] {
            assert_eq!(runtime_nanos(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn a_streams_record_ends_at_its_next_start_or_once_the_latest_line_is_past_the_gap() {
        let (gap, second) = (std::time::Duration::from_secs(1), 1_000_000_000_i128);
        let mut records = Records::default();
        assert_eq!(
            records.step(Stream::Stdout, false, Some(0), gap),
            Joins::Alone,
            "no record yet"
        );
        assert_eq!(records.step(Stream::Stdout, true, Some(0), gap), Joins::Starts);
        assert_eq!(
            records.step(Stream::Stderr, true, Some(second / 2), gap),
            Joins::Starts
        );
        // A second after: not past the gap.
        assert_eq!(
            records.step(Stream::Stdout, false, Some(second), gap),
            Joins::Continues
        );
        assert_eq!(records.open_bits(), 0b11);
        // stderr's next record at 3 s: stdout's, last written at 1 s, is whole.
        assert_eq!(
            records.step(Stream::Stderr, true, Some(3 * second), gap),
            Joins::Starts
        );
        assert_eq!(records.quiet_bits(gap), 0b01);
        assert_eq!(
            records.step(Stream::Stdout, false, Some(3 * second), gap),
            Joins::Alone
        );
        assert_eq!(records.open_bits(), 0b10);
    }

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

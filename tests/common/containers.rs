//! Container logs as the runtimes write them, for the tests: pieces of long lines, stdout and
//! stderr interleaved.

/// The piece size containerd, CRI-O and Docker cut long lines at.
pub const PIECE: usize = 16 * 1024;

/// A small deterministic generator (xorshift): the same file on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub use ingest::layout::Runtime;

/// How a runtime writes one piece: CRI `TIME STREAM P|F CONTENT`, or Docker's json-file line.
pub trait Writes {
    /// Appends one piece, numbered `n` (its time).
    fn piece(self, out: &mut String, n: u64, stream: &str, content: &str, last: bool);
}

impl Writes for Runtime {
    fn piece(self, out: &mut String, n: u64, stream: &str, content: &str, last: bool) {
        let time = format!(
            "2026-04-15T10:{:02}:{:02}.{:09}Z",
            n / 60 % 60,
            n % 60,
            n % 1_000_000_000
        );
        match self {
            Runtime::Cri => {
                let tag = if last { "F" } else { "P" };
                out.push_str(&format!("{time} {stream} {tag} {content}\n"));
            }
            Runtime::Docker => {
                let log = if last {
                    format!("{content}\n")
                } else {
                    content.to_owned()
                };
                let line = serde_json::json!({"log": log, "stream": stream, "time": time});
                out.push_str(&format!("{line}\n"));
            }
        }
    }
}

/// A line a program writes: its stream and number in the name, then `len` bytes of text that
/// no layout reads (quotes and backslashes among them, for Docker's escapes; spaces unless
/// `spaceless`), not ending in a space.
fn written_line(stream: usize, i: usize, len: usize, spaceless: bool, rng: &mut Rng) -> String {
    const ALPHABET: &[u8] = b"abcdefghij klmnop\"qrs\\tuvwxyz0123456789";
    let mut line = format!("s{stream}-{i}:");
    while line.len() < len {
        let c = ALPHABET[rng.below(ALPHABET.len() as u64) as usize];
        line.push(if spaceless && c == b' ' { '_' } else { c as char });
    }
    line.push('.');
    line
}

/// One piece a runtime writes.
pub struct Piece {
    /// 0 stdout, 1 stderr.
    pub stream: usize,
    /// Which of its stream's lines it is a piece of.
    pub line: usize,
    pub text: String,
    pub last: bool,
}

/// What a program writes, as its runtime cuts it: `lines` lines per stream, most short, some
/// of hundreds of KiB and a few of 1 MB, each cut into 16 KiB pieces; the two streams' pieces
/// interleaved as their writers take turns. Returns the pieces and each stream's lines.
pub fn pieces(lines: usize, seed: u64, spaceless: bool) -> (Vec<Piece>, [Vec<String>; 2]) {
    let mut rng = Rng(seed);
    let mut written: [Vec<String>; 2] = Default::default();
    // Per stream: its pieces still to write.
    let mut queues: [std::collections::VecDeque<Piece>; 2] = Default::default();
    for (s, queue) in queues.iter_mut().enumerate() {
        for i in 0..lines {
            let len = match rng.below(100) {
                0 => 1_000_000,
                1..=5 => rng.below(300_000) as usize,
                6..=10 => PIECE * (1 + rng.below(3) as usize),
                _ => rng.below(300) as usize,
            };
            let line = written_line(s, i, len, spaceless, &mut rng);
            let chars: Vec<char> = line.chars().collect();
            let count = chars.len().div_ceil(PIECE);
            for (k, piece) in chars.chunks(PIECE).enumerate() {
                queue.push_back(Piece {
                    stream: s,
                    line: i,
                    text: piece.iter().collect(),
                    last: k + 1 == count,
                });
            }
            written[s].push(line);
        }
    }
    let out = interleave(queues, &mut rng)
        .into_iter()
        .map(|(_, piece)| piece)
        .collect();
    (out, written)
}

/// The two streams' pieces (`queues`, stdout's and stderr's) in the order a runtime writes
/// them as the program's writers take turns at random: each with its stream's index.
pub fn interleave<T>(mut queues: [std::collections::VecDeque<T>; 2], rng: &mut Rng) -> Vec<(usize, T)> {
    let mut out = Vec::new();
    while queues.iter().any(|q| !q.is_empty()) {
        let s = match (queues[0].is_empty(), queues[1].is_empty()) {
            (false, false) => rng.below(2) as usize,
            (false, true) => 0,
            _ => 1,
        };
        out.push((s, queues[s].pop_front().expect("not empty")));
    }
    out
}

/// [`pieces`] written as `runtime` writes them: the file, and each stream's lines.
pub fn container_log(runtime: Runtime, lines: usize, seed: u64) -> (String, [Vec<String>; 2]) {
    let (pieces, written) = pieces(lines, seed, false);
    let mut out = String::new();
    for (n, piece) in pieces.iter().enumerate() {
        runtime.piece(
            &mut out,
            n as u64,
            ["stdout", "stderr"][piece.stream],
            &piece.text,
            piece.last,
        );
    }
    (out, written)
}

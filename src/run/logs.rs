//! `--from GLOB` (or `--from` given several times): every log the globs match, each with its
//! rotated files, in one pipeline run; with `--checkpoint`, one checkpoint for all of them (a
//! journal: each commit names the logs that moved, and OUTPUT's length for all).
//!
//! The run lists every log's set, plans all of them against the checkpoint in one commit
//! ([`checkpoint::plan_logs`]), settles each log's layout, and hands the reader the files to read as
//! one sequence of parts, each batch tagged with its log and file ([`checkpoint::At`]): the
//! parsers name the log in a `file` key, the writer's commits move each log's entry. Logs the
//! checkpoint knows whose files are all gone are said lost if lines of them were unread, and
//! forgotten.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use super::{file_target, open_bytes, open_rejects, rejects_target, run_pipeline, set::report_lost};
use crate::checkpoint::set::Candidate;
use crate::checkpoint::{self, At, Done, Position, Resume, Shared};
use crate::config::{self, Config, Logs, Output, PerLog};
use crate::error::Error;
use crate::layout::{self, Layout};
use crate::metrics::Metrics;
use crate::record;
use crate::sink;
use crate::source::{self, file::Part, glob::Glob, set::Member};
use crate::summary::Summary;

/// Reads every log `logs` matches now, in the order of their paths (a round of at most
/// `ROUND_LOGS` at a time). Following them is [`super::follow_logs`]'s.
///
/// # Errors
/// [`Error::NoLogs`] when none matches (and the checkpoint knows none) and not following; the
/// errors of a run of one log otherwise.
pub async fn read_logs(
    config: &Config,
    logs: &Logs,
    checkpoint: Option<&Path>,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    let started = std::time::Instant::now();
    metrics.logs_active.store(true, Ordering::Relaxed);
    let globs = Globs::new(logs);
    let shared = checkpoint.map(Shared::open).transpose()?;
    let known: HashSet<PathBuf> = shared
        .as_ref()
        .map_or_else(Vec::new, Shared::logs)
        .into_iter()
        .collect();
    let found = globs.discover(&known);
    let matched: HashSet<&PathBuf> = found.logs.iter().collect();
    // Logs the checkpoint knows whose files are all gone: planned with no file, so that what
    // of them was unread is said lost (once), then forgotten.
    let mut gone: Vec<PathBuf> = known
        .iter()
        .filter(|k| !matched.contains(k) && source::set::list(k).is_ok_and(|m| m.is_empty()))
        .cloned()
        .collect();
    gone.sort();
    tracing::debug!("{} logs match, {} known logs gone", found.logs.len(), gone.len());
    if found.logs.is_empty() && gone.is_empty() {
        return Err(Error::NoLogs {
            globs: globs.shown.clone(),
        });
    }
    let paths: Vec<PathBuf> = found.logs.into_iter().chain(gone).collect();
    metrics.logs_known.store(paths.len() as u64, Ordering::Relaxed);
    let rounds: Vec<&[PathBuf]> = paths.chunks(ROUND_LOGS).collect();
    let across = Across::new(shared.as_ref());
    let mut next = rounds
        .first()
        .map(|paths| prepare_apart(config, paths, shared.as_ref()));
    for (i, paths) in rounds.iter().enumerate() {
        let prepared = next.take().expect("each round is prepared");
        // The next round is listed, matched and judged while this one runs: those are a
        // single thread's work, which the pipeline leaves room for.
        next = rounds
            .get(i + 1)
            .map(|paths| prepare_apart(config, paths, shared.as_ref()));
        run_round(
            config,
            paths,
            prepared,
            &HashSet::new(),
            &across,
            &metrics,
            drain.clone(),
        )
        .await?;
        if drain.is_cancelled() || super::output_closed(&metrics) {
            break;
        }
    }
    Ok(metrics.snapshot(started.elapsed()))
}

/// `--from` and `--exclude`, parsed.
pub(super) struct Globs {
    include: Vec<Glob>,
    exclude: Vec<Glob>,
    /// As given, for messages.
    shown: String,
}

impl Globs {
    /// The globs `logs` gives, parsed, and how to show them.
    pub(super) fn new(logs: &Logs) -> Globs {
        let parse = |paths: &[PathBuf]| paths.iter().filter_map(|p| Glob::new(p).ok()).collect();
        let shown: Vec<String> = logs
            .include
            .iter()
            .map(|p| format!("'{}'", p.display()))
            .collect();
        Globs {
            include: parse(&logs.include),
            exclude: parse(&logs.exclude),
            shown: shown.join(" "),
        }
    }

    /// The logs matched now (see [`source::glob::discover`]); `known`: the logs read before.
    pub(super) fn discover(&self, known: &HashSet<PathBuf>) -> source::glob::Found {
        source::glob::discover(&self.include, &self.exclude, &|path| known.contains(path))
    }

    /// The log the file at `path` is part of (see [`source::glob::log_of`]).
    pub(super) fn log_of(&self, path: &Path, known: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
        source::glob::log_of(&self.include, &self.exclude, path, known)
    }
}

/// The most logs one round reads: a host's 10,000 logs go in rounds of this many, so that what
/// a round holds per log (its listing, first bytes, plan) stays a few MiB.
pub(super) const ROUND_LOGS: usize = 1000;

/// Following, the most bytes of one log a round reads: at 300 MB/s about 200 ms, which a
/// quiet log's line may wait behind a busy one.
const TURN_BYTES: u64 = 64 << 20;

/// What a run's rounds share.
pub(super) struct Across<'s> {
    /// The checkpoint each log is planned against; `None`: every log read from its first line.
    shared: Option<&'s Shared>,
    /// Publishing: the connection one round's sink leaves for the next.
    kept: sink::jetstream::Kept,
}

impl<'s> Across<'s> {
    /// The rounds of a run with the checkpoint `shared`, if any.
    pub(super) fn new(shared: Option<&'s Shared>) -> Across<'s> {
        Across {
            shared,
            kept: sink::jetstream::Kept::default(),
        }
    }
}

/// One pipeline run over the logs at `paths` (each planned against the checkpoint, if any);
/// `ended`: logs whose file was deleted once read to its end (a follower knows), no loss.
/// Returns what following has to come back for.
pub(super) async fn round(
    config: &Config,
    paths: &[PathBuf],
    ended: &HashSet<PathBuf>,
    across: &Across<'_>,
    metrics: &Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Turns, Error> {
    let prepared = prepare_apart(config, paths, across.shared);
    run_round(config, paths, prepared, ended, across, metrics, drain).await
}

/// What a round left for the next, following.
#[derive(Debug, Default)]
pub(super) struct Turns {
    /// Logs with more to read than their turn took.
    pub(super) more: Vec<PathBuf>,
    /// Logs whose last record may still be open (`--multiline`, or a container's line whose
    /// last piece has not come): left unread, to be read again once the log is quiet for
    /// `--multiline-timeout`.
    pub(super) holding: Vec<PathBuf>,
}

/// What a round knows of its logs before it plans: their files, matched to the checkpoint,
/// and their layouts. Made while the round before runs (see [`prepare`]).
pub(super) struct Prepared {
    /// Each log's files, oldest first.
    listed: Vec<Vec<Member>>,
    /// What of them to read.
    matched: Matched,
    /// Each log's layout.
    per_log: PerLog,
    /// Layouts `--input auto` picked now, kept with the round's next commit.
    picks: Vec<(usize, String)>,
}

/// What a round reads of its logs' files.
enum Matched {
    /// With a checkpoint: each log's entry matched to its files, planned once the round runs.
    Checkpoint(checkpoint::Arranged),
    /// Without: each log read from its first line.
    Fresh(Vec<checkpoint::set::Plan>),
}

impl Matched {
    /// Log `log`'s plan.
    fn plan(&self, log: usize) -> &checkpoint::set::Plan {
        match self {
            Matched::Checkpoint(arranged) => arranged.plan(log),
            Matched::Fresh(plans) => &plans[log],
        }
    }
}

/// [`prepare`] on a thread of its own (it lists directories and reads files).
pub(super) fn prepare_apart(
    config: &Config,
    paths: &[PathBuf],
    shared: Option<&Shared>,
) -> tokio::task::JoinHandle<Result<Prepared, Error>> {
    let (config, paths, shared) = (config.clone(), paths.to_vec(), shared.cloned());
    tokio::task::spawn_blocking(move || prepare(&config, &paths, shared.as_ref()))
}

/// Lists every log's set, matches it to the checkpoint (listing again, a few times, while a
/// file was rotated as it was looked into) and settles each log's layout. Nothing is written:
/// it may run while the round before commits.
fn prepare(config: &Config, paths: &[PathBuf], shared: Option<&Shared>) -> Result<Prepared, Error> {
    let (listed, matched) = match shared {
        Some(shared) => {
            const LISTINGS: u64 = 5;
            let mut listing = 0;
            let (logs, arranged) = loop {
                listing += 1;
                let mut logs: Vec<(PathBuf, Vec<Member>)> =
                    paths.iter().cloned().zip(list_all(paths)?).collect();
                let sure = listing == LISTINGS;
                if let Some(arranged) =
                    checkpoint::arrange_logs(shared, &mut logs, sure, config.start_at_end)?
                {
                    break (logs, arranged);
                }
                // logrotate is at work: a moment for it to finish.
                std::thread::sleep(std::time::Duration::from_millis(20 * listing));
            };
            let listed = logs.into_iter().map(|(_, m)| m).collect();
            (listed, Matched::Checkpoint(arranged))
        }
        None => {
            // Without a checkpoint, each log alone, from its first line (as `--from PATH`).
            let listed: Vec<Vec<Member>> = list_all(paths)?
                .into_iter()
                .map(|members| members.into_iter().filter(|m| m.live()).collect())
                .collect();
            let plans = listed
                .iter()
                .map(|members| checkpoint::set::Plan {
                    steps: (0..members.len()).map(|i| (i, Position::default())).collect(),
                    ..checkpoint::set::Plan::default()
                })
                .collect();
            (listed, Matched::Fresh(plans))
        }
    };
    // Each log's layout: as given, kept by the checkpoint, or judged by its first lines.
    let (per_log, picks) = settle_layouts(config, paths, &listed, &matched);
    Ok(Prepared {
        listed,
        matched,
        per_log,
        picks,
    })
}

/// The round `prepared` made ready: planned against the checkpoint (one commit), then one
/// pipeline run over what is new in its logs.
async fn run_round(
    config: &Config,
    paths: &[PathBuf],
    prepared: tokio::task::JoinHandle<Result<Prepared, Error>>,
    ended: &HashSet<PathBuf>,
    across: &Across<'_>,
    metrics: &Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Turns, Error> {
    let shared = across.shared;
    let Prepared {
        listed,
        matched,
        per_log,
        picks,
    } = match prepared.await {
        Ok(prepared) => prepared?,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    let mut output = open_bytes(&config.output)?;
    let mut rejects = open_rejects(config)?;
    let (mut plans, committer, publishing) = match (shared, matched) {
        (Some(shared), Matched::Checkpoint(arranged)) => {
            let target = match &config.output {
                Output::Nats(nats) => checkpoint::Output::Nats {
                    subject: &nats.subject,
                },
                _ => file_target(&config.output, &mut output).unwrap_or(checkpoint::Output::Pipe),
            };
            let rejects = rejects_target(config, rejects.as_mut());
            let planned =
                checkpoint::plan_logs(shared, paths, arranged, target, rejects, config.checkpoint_bytes)?;
            let mut committer = planned.committer;
            for (log, name) in &picks {
                committer.keep_layout_of(*log, name);
            }
            (
                planned.plans,
                Some(committer),
                (planned.sources, planned.stream_mark),
            )
        }
        (_, Matched::Fresh(plans)) => (plans, None, (Vec::new(), None)),
        (None, Matched::Checkpoint(_)) => unreachable!("matched against a checkpoint"),
    };
    // Publishing, each file read is a publisher of its own (see sink::jetstream::Files).
    let files = matches!(config.output, Output::Nats(_)).then(|| publishers(&publishing, &plans, across));
    for (path, plan) in paths.iter().zip(plans.iter_mut()) {
        if ended.contains(path) {
            plan.lost.retain(|lost| lost.path != *path);
        }
    }
    for plan in plans.iter().filter(|p| !p.lost.is_empty()) {
        report_lost(&plan.lost, metrics);
        crate::metrics::add(&metrics.logs_lost, 1);
    }
    let (mut parts, mut turns) = (Vec::new(), Turns::default());
    for (log, (mut members, plan)) in listed.into_iter().zip(plans).enumerate() {
        let newer_has_bytes: Vec<bool> = (0..members.len())
            .map(|i| {
                use checkpoint::set::Candidate;
                members[i + 1..].iter().any(|m| m.seen().size > 0)
            })
            .collect();
        let mut taken: Vec<Option<Member>> = members.drain(..).map(Some).collect();
        for (index, start) in plan.steps {
            let Some(member) = taken[index].take() else {
                continue;
            };
            let layout = per_log.layouts[per_log.layout_of[log] as usize].clone();
            // Following, a log takes a turn of at most TURN_BYTES: the rest (and its newer
            // files) in the next round, so that a busy log does not hold back the others.
            let turn = config.follow
                && member.format().is_none()
                && member.seen().size.saturating_sub(start.offset) > TURN_BYTES;
            let how = How {
                index,
                start,
                newer_has_bytes: newer_has_bytes[index],
                checkpointed: shared.is_some(),
                until: turn.then_some(start.offset + TURN_BYTES),
            };
            let part = part(metrics, config, member, log, how, layout);
            if part.settings.hold_last_record {
                turns.holding.push(paths[log].clone());
            }
            parts.push(part);
            if turn {
                turns.more.push(paths[log].clone());
                break;
            }
        }
    }
    note_behind(metrics, &parts, &per_log);
    if parts.is_empty() {
        // Nothing new in any of them (the plan's commit said what changed): no pipeline, no
        // commits of nothing.
        return Ok(turns);
    }
    let config = Config {
        per_log: Some(Arc::new(per_log)),
        ..config.clone()
    };
    let source = Box::new(source::file::FileSource::parts(parts));
    let resume = Resume {
        committer: committer.map(|c| Box::new(c) as Box<dyn checkpoint::Commit>),
        ..Resume::default()
    };
    match &config.output {
        Output::File(_) | Output::Stdout => {
            let output = sink::file::FileSink::new(output, config.retry);
            run_pipeline(
                &config,
                source,
                resume,
                None,
                output,
                rejects,
                metrics.clone(),
                drain,
            )
            .await?;
        }
        Output::Nats(target) => {
            let output = sink::jetstream::JetStreamSink::start(
                (**target).clone(),
                sink::jetstream::Publishing::Files(files.expect("made for a subject")),
                config.retry,
                shared.is_some(),
                metrics.clone(),
            )
            .await?;
            run_pipeline(
                &config,
                source,
                resume,
                None,
                output,
                rejects,
                metrics.clone(),
                drain,
            )
            .await?;
        }
    }
    Ok(turns)
}

/// The publisher of each file the round reads, and the lines of it the checkpoint holds:
/// `sources` and `mark` from the plan (a new publisher per file without a checkpoint).
fn publishers(
    (sources, mark): &(Vec<Vec<u64>>, Option<u64>),
    plans: &[checkpoint::set::Plan],
    across: &Across<'_>,
) -> sink::jetstream::Files {
    let host = crate::os::host_name();
    let mut files = std::collections::HashMap::new();
    for (log, plan) in plans.iter().enumerate() {
        for &(index, start) in &plan.steps {
            let id = match across.shared.is_some() {
                true => sources[log][index],
                false => checkpoint::new_source(),
            };
            let publisher = crate::nats::message::Publisher::new(&host, id);
            files.insert((log as u32, index as u32), (publisher, start.lines));
        }
    }
    sink::jetstream::Files {
        files,
        mark: *mark,
        kept: across.kept.clone(),
    }
}

/// Notes the logs with the most bytes `parts` have to read (see [`Metrics::behind`]).
fn note_behind(metrics: &Metrics, parts: &[Part], per_log: &PerLog) {
    let mut left = vec![0u64; per_log.paths.len()];
    for part in parts {
        if let Some(at) = part.at {
            left[at.log as usize] += part.left;
        }
    }
    let mut behind: Vec<crate::metrics::Behind> = left
        .into_iter()
        .enumerate()
        .filter(|&(_, bytes)| bytes > 0)
        .map(|(log, bytes)| crate::metrics::Behind {
            log: log as u32,
            path: per_log.paths[log].clone(),
            bytes,
        })
        .collect();
    behind.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    behind.truncate(crate::metrics::FURTHEST_BEHIND);
    if let Ok(mut noted) = metrics.behind.lock() {
        *noted = behind;
    }
}

/// The files of each log's set at `paths`, oldest first.
fn list_all(paths: &[PathBuf]) -> Result<Vec<Vec<Member>>, Error> {
    paths
        .iter()
        .zip(source::set::list_all(paths))
        .map(|(path, listed)| {
            listed.map_err(|source| Error::Input {
                path: path.clone(),
                source,
            })
        })
        .collect()
}

/// Each log's layout: the one given; else the one the checkpoint kept for it; else the one that
/// reads most of the first lines of its first file to read (returned with its log, to be kept
/// with the next commit).
fn settle_layouts(
    config: &Config,
    paths: &[PathBuf],
    listed: &[Vec<Member>],
    matched: &Matched,
) -> (PerLog, Vec<(usize, String)>) {
    let mut per_log = PerLog {
        paths: paths.iter().map(|p| Arc::from(p.to_string_lossy())).collect(),
        ..PerLog::default()
    };
    // A container's layout named without `--inner` has each log's streams judged.
    let (clock, named) = match &config.input {
        config::InputLayout::Auto(clock) => (clock.clone(), None),
        config::InputLayout::Fixed(layout) if layout.container().is_some_and(|c| !c.judged()) => {
            (layout.clock.clone(), Some(layout))
        }
        config::InputLayout::Fixed(layout) => {
            per_log.layouts.push(Arc::new(layout.clone()));
            per_log.layout_of = vec![0; paths.len()];
            return (per_log, Vec::new());
        }
    };
    let mut picks = Vec::new();
    // Made once, and only when a log is to be judged (they compile patterns).
    let candidates = std::cell::LazyCell::new(|| Layout::candidates(&clock));
    for (log, members) in listed.iter().enumerate() {
        let kept = match matched {
            Matched::Checkpoint(arranged) => arranged.layout(log),
            Matched::Fresh(_) => "",
        };
        // A layout another log of the round was given already is not made again.
        let known = per_log
            .layouts
            .iter()
            .position(|l| !kept.is_empty() && l.name == kept);
        let at = match known {
            Some(at) => at as u32,
            None => {
                let kept = (!kept.is_empty())
                    .then(|| Layout::named(kept, clock.clone()).ok())
                    .flatten()
                    .filter(|kept| named.is_none_or(|named| super::same_runtime(kept, named)));
                let chosen = kept.or_else(|| {
                    let &(index, start) = matched.plan(log).steps.first()?;
                    let lines = first_lines(&members[index], start.offset);
                    let picked = match named {
                        Some(named) => named.clone(),
                        None => layout::detect_among(record::split_lines(&lines), &candidates)?.clone(),
                    };
                    let picked =
                        picked.judge_streams(record::split_lines(&lines), config.inner.as_ref(), &candidates);
                    // A stream with no line yet is judged again on the next run.
                    if picked.container().is_none_or(layout::Container::judged) {
                        picks.push((log, picked.name.clone()));
                    }
                    Some(picked)
                });
                // No record to judge by yet: plain for this run, judged again on the next.
                let chosen = chosen.unwrap_or_default();
                match per_log.layouts.iter().position(|l| l.name == chosen.name) {
                    Some(at) => at as u32,
                    None => {
                        per_log.layouts.push(Arc::new(chosen));
                        (per_log.layouts.len() - 1) as u32
                    }
                }
            }
        };
        per_log.layout_of.push(at);
    }
    (per_log, picks)
}

/// The first lines of `member` from `offset` on, about as many as `--input auto` looks at.
fn first_lines(member: &Member, offset: u64) -> Vec<u8> {
    use checkpoint::set::Candidate;
    let mut bytes = Vec::new();
    match member.listed_head() {
        // A file its listing read whole (a node's many small logs): judged by those bytes, not
        // opened and read again.
        Some(head) if offset == 0 && member.format().is_none() && head.len() as u64 == member.seen().size => {
            bytes.extend_from_slice(head);
        }
        _ => {
            let Ok(Some(file)) = member.open() else {
                return Vec::new();
            };
            let read = match member.format() {
                None => {
                    use std::io::Seek;
                    let mut file = file;
                    file.seek(std::io::SeekFrom::Start(offset))
                        .and_then(|_| read_first(file, &mut bytes))
                }
                Some(format) => source::decompress::reader(file, format).and_then(|mut content| {
                    std::io::copy(&mut (&mut content).take(offset), &mut std::io::sink())?;
                    read_first(content, &mut bytes)
                }),
            };
            if read.is_err() {
                bytes.clear();
            }
        }
    }
    let bytes = match offset {
        0 => bytes.strip_prefix(record::UTF8_BOM).unwrap_or(&bytes).to_vec(),
        _ => bytes,
    };
    // Whole lines only.
    let whole = memchr::memrchr(b'\n', &bytes).map_or(0, |i| i + 1);
    bytes[..whole].to_vec()
}

/// Reads the first bytes `--input auto` judges a log by into `bytes`: 16 KiB (64 lines of 250
/// bytes: read once per log, most of many small logs' bytes otherwise), and when no line ends
/// in them, on up to 1 MiB: a container runtime writes pieces of 16 KiB and more, and a log
/// judged by no whole line would be read as `plain` (its pieces rejected).
fn read_first(mut content: impl Read, bytes: &mut Vec<u8>) -> std::io::Result<()> {
    const MOST: u64 = 16 * 1024;
    const LONGEST: u64 = 1 << 20;
    // Room for all of it first: one read, not a dozen growing ones.
    bytes.reserve(MOST as usize);
    (&mut content).take(MOST).read_to_end(bytes)?;
    if bytes.len() as u64 == MOST && memchr::memchr(b'\n', bytes).is_none() {
        content.take(LONGEST - MOST).read_to_end(bytes)?;
    }
    Ok(())
}

/// How one file of a log is read in a round.
struct How {
    /// Its place in its log's set.
    index: usize,
    /// Where reading starts.
    start: Position,
    /// A newer file of its set has bytes: its last line is final even without a newline.
    newer_has_bytes: bool,
    /// A checkpoint keeps the run's place.
    checkpointed: bool,
    /// Reading stops here, before the file's end, the rest left for the next turn.
    until: Option<u64>,
}

/// The reading of `member`, a file of log `log`, as `how` says, as a part of the run.
fn part(
    metrics: &Arc<Metrics>,
    config: &Config,
    member: Member,
    log: usize,
    how: How,
    layout: Arc<Layout>,
) -> Part {
    let How {
        index,
        start,
        newer_has_bytes,
        checkpointed,
        until,
    } = how;
    use checkpoint::set::Candidate;
    let compressed = member.format().is_some();
    let live = member.live();
    // Read from its start: nothing is handed out unless it still starts as it was listed.
    let expect_head = match (start.offset, member.format(), member.listed_head()) {
        (0, None, Some(head)) if !head.is_empty() => Some((
            checkpoint::Fingerprint::of(head),
            Arc::new(std::sync::atomic::AtomicBool::new(false)),
        )),
        _ => None,
    };
    let mut settings = source::file::Settings {
        // A growing log's last line may still be half-written: a checkpointed run leaves it;
        // a rotated file's is final once a newer file has bytes.
        hold_last_line: (checkpointed && (live || !newer_has_bytes)) || until.is_some(),
        start,
        skip: if compressed { start.offset } else { 0 },
        size_hint: (!compressed).then(|| member.seen().size.saturating_sub(start.offset)),
        until: (!compressed).then(|| until.unwrap_or(member.seen().size)),
        // A record still open at the end of a log written to within --multiline-timeout is
        // left for the next turn, which may find more of it: following, a --multiline record;
        // following or not, a container's line whose last piece is not written yet.
        hold_last_record: live
            && crate::os::written_within(member.seen().mtime_ns, config.hold_timeout)
            && ((config.follow && config.multiline.is_some())
                || (checkpointed && layout.container().is_some())),
        expect_head,
        ..source::file::Settings::from_config(config)
    };
    settings.pieces = source::file::Pieces::of(&layout, config);
    if let Some(records) = settings.multiline.as_mut() {
        records.layout = layout;
    }
    let done = checkpointed.then(|| Done {
        seen: member.seen(),
        complete: !live,
        compressed,
    });
    let path = member.path().to_owned();
    let metrics = metrics.clone();
    let left = match compressed {
        true => member.seen().size,
        false => member.seen().size.saturating_sub(start.offset),
    };
    Part {
        left,
        open: Box::new(move || {
            let file = match member.open() {
                Ok(Some(file)) => file,
                Ok(None) => return None,
                Err(e) => {
                    // Said, counted (exit 74 at the end), and left for the next run.
                    tracing::error!("cannot read '{}': {e}; the next run reads it", path.display());
                    crate::metrics::add(&metrics.damaged_inputs, 1);
                    return None;
                }
            };
            match member.format() {
                Some(format) => source::decompress::reader(file, format).ok(),
                None => {
                    use std::io::Seek;
                    let mut file = file;
                    file.seek(std::io::SeekFrom::Start(start.offset)).ok()?;
                    Some(Box::new(file) as Box<dyn Read + Send>)
                }
            }
        }),
        settings,
        at: Some(At {
            log: log as u32,
            member: index as u32,
            done: None,
        }),
        done,
    }
}

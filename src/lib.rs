//! `ingest`: read log lines from stdin, check them, append the valid records to a file (or
//! publish them to a NATS JetStream subject).
//!
//! The crate map, in the order a line travels (no import circle, no source or sink importing a
//! stage: `tests/shape.rs` checks both):
//! - [`cli`], [`generate`]: flags into a checked [`Config`] ([`config`], which everything below
//!   reads); the man page and completions from clap's `Command`;
//! - [`source`]: every way records come in, one [`source::Source`] trait: standard input or a
//!   file ([`source::file`]; compressed: [`source::decompress`]; a log and its rotated files:
//!   [`source::set`]), a JetStream stream ([`source::jetstream`], the collector's fetcher,
//!   on [`source::consumer`] and its [`source::lease`]);
//! - [`pipeline`]: parse -> validate -> write ([`pipeline::parser`], [`pipeline::validator`],
//!   [`pipeline::writer`]), and how the stages start, stop and push back;
//! - [`sink`]: every way records go out, one [`sink::Sink`] trait: a file or standard output
//!   ([`sink::file`], on [`output`]'s locked files), a JetStream subject ([`sink::jetstream`]);
//! - [`nats`]: what the sink and the collector share: connecting, and the message headers
//!   ([`nats::message`]); [`breaker`]: the circuit breaker both retry through;
//! - [`layout`]: the input layouts (`--input`, `--pattern`, `--tz`), one module each, and where
//!   a record starts for `--multiline`, pure;
//! - [`batch`], [`channel`]: what flows between sources, stages and sinks, and the bounded
//!   channels it goes through;
//! - [`mod@format`]: text and JSON rendering, JSON string escaping, pure; [`record`]: the line
//!   grammar, the record types and their fields ([`record::fields`]), pure;
//! - [`checkpoint`]: `--checkpoint`, exactly-once reruns (a file set's: [`checkpoint::set`]);
//!   [`atomic`]: replacing small files;
//! - [`metrics`]: the one set of counters every stage adds to, per batch;
//! - [`summary`], [`error`]: how a run ends (summary line, stats JSON, Prometheus textfile) and
//!   its exit code;
//! - [`signal`], [`logging`], [`progress`], [`os`]: signals into a drain, stderr messages, the
//!   progress line, the OS's limits; for the binary.
//!
//! The shutdown story: a signal cancels the *drain* token, the reader stops, and everything
//! already read flows out; the first error cancels every stage instead (see [`pipeline`]).

pub mod atomic;
pub mod batch;
pub mod breaker;
pub mod channel;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod error;
pub mod format;
pub mod generate;
pub mod layout;
pub mod logging;
pub mod metrics;
pub mod nats;
pub mod os;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod record;
pub mod signal;
pub mod sink;
pub mod source;
pub mod summary;

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use config::{Config, Output};
pub use error::{Error, Exit};
pub use summary::Summary;

use checkpoint::Resume;
use metrics::Metrics;
use output::AppendFile;

/// Where the lines come from.
pub enum Input {
    /// A file descriptor, as standard input is: a regular file can be sought in, which
    /// `--checkpoint` uses to skip what is committed.
    File(File),
    /// Any other reader (tests, embedding).
    Reader(Box<dyn Read + Send>),
}

/// How a file of `--from PATH` is read: its place in the checkpoint's set, and whether it is
/// followed (`--follow`) at its end.
#[derive(Default)]
struct Reading {
    index: Option<usize>,
    follow: Option<source::follow::Follow>,
    /// Read from its start: the first bytes it must start with (see
    /// [`source::file::Settings::expect_head`]).
    expect_head: Option<(bytes::Bytes, Arc<std::sync::atomic::AtomicBool>)>,
    /// A rotated file the program writes to no more: its last line is final without newline.
    last_line_final: bool,
}

/// Opens the output (and rejects file), resumes from the checkpoint if there is one, then runs
/// the pipeline from `input` to the end.
///
/// Cancelling `drain` stops reading and writes out everything already read.
///
/// # Errors
/// [`Error::Open`] when a file cannot be opened, [`Error::Locked`] when another run writes to
/// the output, [`Error::Checkpoint`] when the checkpoint is unusable, the NATS errors of
/// [`sink::jetstream::JetStreamSink::start`]; otherwise the pipeline's first failure.
pub async fn run(
    config: &Config,
    input: Input,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    match (&config.from, &config.checkpoint) {
        (Some(config::Origin::Nats(from)), _) => collect(config, from, metrics, drain).await,
        (Some(config::Origin::Files(path)), Some(checkpoint)) => {
            read_set(config, path, checkpoint, metrics, drain).await
        }
        (Some(config::Origin::Files(path)), None) => read_file(config, path, metrics, drain).await,
        (None, _) => {
            let reading = Reading::default();
            read_input(config, input, reading, "standard input", metrics, drain).await
        }
    }
}

/// `--from PATH` without `--checkpoint`: PATH alone, from its first line; with `--follow`, on
/// after each rotation with the new file's first line (what the old one got after the run last
/// read it is not known: a checkpoint knows).
async fn read_file(
    config: &Config,
    path: &std::path::Path,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    let started = std::time::Instant::now();
    let name = format!("'{}'", path.display());
    let failed = |source| Error::Input {
        path: path.to_owned(),
        source,
    };
    loop {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && config.follow => {
                if !wait_for(path, &drain).await {
                    break;
                }
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoInput {
                    path: path.to_owned(),
                });
            }
            Err(source) => return Err(failed(source)),
        };
        let follow = config
            .follow
            .then(|| source::follow::Follow::new(path.to_owned(), &file, config.rotate_wait))
            .transpose()
            .map_err(failed)?;
        let reading = Reading {
            follow,
            ..Reading::default()
        };
        read_input(
            config,
            Input::File(file),
            reading,
            &name,
            metrics.clone(),
            drain.clone(),
        )
        .await?;
        if !config.follow || drain.is_cancelled() || output_closed(&metrics) {
            break;
        }
    }
    Ok(metrics.snapshot(started.elapsed()))
}

/// The reader of `-` went away: the run ends, quietly, whatever is left to read or follow.
fn output_closed(metrics: &Metrics) -> bool {
    metrics.output_closed.load(std::sync::atomic::Ordering::Relaxed)
}

/// `--follow`: waits until `path` is there; false when drained first.
async fn wait_for(path: &std::path::Path, drain: &CancellationToken) -> bool {
    // Rare (a log not created yet, or between a rotation's rename and create): looked for
    // every poll, not watched.
    while !path.exists() {
        tokio::select! {
            () = drain.cancelled() => return false,
            () = tokio::time::sleep(source::follow::POLL) => {}
        }
    }
    true
}

/// Reads `input` (named `name` in messages), decompressing it first when it is a compressed
/// file; `reading` says how, when it is a file of `--from PATH`.
async fn read_input(
    config: &Config,
    input: Input,
    reading: Reading,
    name: &str,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    let format = match &input {
        Input::File(file) => source::decompress::format_of(file),
        Input::Reader(_) => None,
    };
    match (format, input) {
        // Compressed: decompressed on a thread of its own, and read as a pipe.
        (Some(format), Input::File(file)) => {
            let (pipe, decompressing) = source::decompress::start(file, format).map_err(Error::Read)?;
            let reading = Reading {
                follow: None,
                ..reading
            };
            let summary = run_plain(config, Input::File(pipe), reading, metrics.clone(), drain).await;
            let damaged = decompressing.finish(&metrics.damaged_inputs, name);
            let summary = summary?;
            damaged?;
            Ok(summary)
        }
        (_, input) => run_plain(config, input, reading, metrics, drain).await,
    }
}

/// `--from PATH --checkpoint`: reads what the checkpoint has not read of PATH and its rotated
/// files, oldest first, one pipeline run per file (so a record never spans two files, and
/// `--input auto` judges each file by its own lines).
async fn read_set(
    config: &Config,
    path: &std::path::Path,
    checkpoint: &std::path::Path,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    const LISTINGS: usize = 5;
    let started = std::time::Instant::now();
    let set_path = std::path::absolute(path).map_err(|source| Error::Input {
        path: path.to_owned(),
        source,
    })?;
    let mut listed_any = false;
    let mut listing = 0;
    let mut unsure = 0;
    loop {
        listing += 1;
        let mut members = source::set::list(&set_path).map_err(|source| Error::Input {
            path: path.to_owned(),
            source,
        })?;
        listed_any |= !members.is_empty();
        // A file rotated while it was looked into: listed again, a few times, before the plan
        // (and a loss it would report) is trusted.
        let mut plan = plan_set(config, checkpoint, &set_path, &mut members, unsure >= LISTINGS)?;
        if plan.unsure && unsure < LISTINGS {
            unsure += 1;
            // logrotate is at work: a moment for it to finish.
            tokio::time::sleep(std::time::Duration::from_millis(20 * unsure as u64)).await;
            continue;
        }
        unsure = 0;
        report_lost(&plan.lost, &metrics);
        use checkpoint::set::Candidate;
        let live = members.iter().position(|m| m.live() && m.format().is_none());
        // The file followed: the live log; while it is still empty after a rotation, the
        // newest rotated file if it has bytes (the program writes on to it until it reopens
        // PATH), until PATH has bytes and that file was quiet a while (see source::follow).
        let followed = live.map(|live| match live.checked_sub(1) {
            Some(last)
                if members[live].seen().size == 0
                    && members[last].format().is_none()
                    && members[last].seen().size > 0 =>
            {
                last
            }
            _ => live,
        });
        if config.follow {
            // The followed file is read even when nothing new is in it yet; nothing after it.
            match followed {
                Some(followed) => {
                    if !plan.steps.iter().any(|&(i, _)| i == followed) {
                        plan.steps.push((followed, checkpoint::Position::default()));
                    }
                    plan.steps.retain(|&(i, _)| i <= followed);
                }
                None => {
                    if wait_for(path, &drain).await {
                        continue;
                    }
                    break;
                }
            }
        }
        let mut list_again = false;
        // What is left to read of each file: its size past where reading starts (compressed
        // files by their compressed size).
        let left: Vec<u64> = plan
            .steps
            .iter()
            .map(|&(i, start)| match members[i].format() {
                None => members[i].seen().size.saturating_sub(start.offset),
                Some(_) => members[i].seen().size,
            })
            .collect();
        for (step, (index, start)) in plan.steps.into_iter().enumerate() {
            let after: u64 = left[step + 1..].iter().sum();
            metrics
                .pending_files_bytes
                .store(after, std::sync::atomic::Ordering::Relaxed);
            let member = &members[index];
            let reading = MemberReading {
                index,
                start,
                // Followed: watched through PATH, where the program writes.
                follow: live
                    .filter(|_| config.follow && Some(index) == followed)
                    .map(|live| members[live].path()),
                // A rotated file's last line without newline is final once a newer file has
                // bytes: the program writes there now.
                last_line_final: !member.live() && members[index + 1..].iter().any(|m| m.seen().size > 0),
            };
            match read_member(config, checkpoint, member, reading, &metrics, &drain).await? {
                Ended::Read(damaged) => {
                    if let Some(error) = damaged {
                        // Its whole lines before the damage are written and committed: the
                        // rest of the set is read, and the run ends with 74 (the summary's
                        // count of damaged inputs says so); each damage said once, here.
                        tracing::error!("{}", error.describe());
                    }
                    if drain.is_cancelled() {
                        break;
                    }
                    let compressed = member.format().is_some();
                    checkpoint::read_to_end(checkpoint, index, member.seen(), !member.live(), compressed)?;
                }
                Ended::Stopped => break,
                Ended::Changed => {
                    list_again = true;
                    break;
                }
            }
        }
        // Listed again when a file was rotated between the listing and its reading; a few
        // times at most (unless following), so that a log rotated every moment lets a run end.
        if !list_again || drain.is_cancelled() || (!config.follow && listing >= LISTINGS) {
            break;
        }
        tracing::debug!("the set was rotated while being read (listing {listing}): listing it again");
    }
    // Followed, a log not there yet is waited for (and a drain then ends the run cleanly).
    if !listed_any && !config.follow {
        return Err(Error::NoInput {
            path: path.to_owned(),
        });
    }
    Ok(metrics.snapshot(started.elapsed()))
}

/// How reading one file of a set ended.
enum Ended {
    /// Read to its end (or to a drain); the damage met, if it is compressed and damaged.
    Read(Option<Error>),
    /// Followed until it was rotated away or truncated, or changed before it was read: the set
    /// is to be listed again.
    Changed,
    /// Drained while it was read or followed.
    Stopped,
}

/// How one file of a set is read.
struct MemberReading<'a> {
    /// Its place in the set (and the checkpoint's).
    index: usize,
    /// Where reading starts, as planned.
    start: checkpoint::Position,
    /// Followed at its end: PATH, watched for the program writing elsewhere.
    follow: Option<&'a std::path::Path>,
    /// Its last line is final even without a newline.
    last_line_final: bool,
}

/// Reads one file of the set (`member`), as `how` says.
async fn read_member(
    config: &Config,
    checkpoint: &std::path::Path,
    member: &source::set::Member,
    how: MemberReading<'_>,
    metrics: &Arc<Metrics>,
    drain: &CancellationToken,
) -> Result<Ended, Error> {
    let failed = |source| Error::Input {
        path: member.path().to_owned(),
        source,
    };
    let Some(file) = member.open().map_err(failed)? else {
        // Rotated between the listing and now.
        return Ok(Ended::Changed);
    };
    let follow = match how.follow {
        Some(path) => {
            Some(source::follow::Follow::new(path.to_owned(), &file, config.rotate_wait).map_err(failed)?)
        }
        None => None,
    };
    // Kept to tell, once it ends, whether a followed file was deleted.
    let kept = follow
        .as_ref()
        .map(|_| file.try_clone())
        .transpose()
        .map_err(failed)?;
    tracing::debug!(
        "reading '{}' from line {}{}",
        member.path().display(),
        how.start.lines + 1,
        if kept.is_some() { ", following it" } else { "" }
    );
    // Read from its start: nothing is handed out unless it still starts as it was listed.
    let replaced = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let expect_head = match (how.start.offset, member.format(), member.listed_head()) {
        (0, None, Some(head)) if !head.is_empty() => {
            Some((bytes::Bytes::copy_from_slice(head), replaced.clone()))
        }
        _ => None,
    };
    let reading = Reading {
        index: Some(how.index),
        follow,
        expect_head,
        last_line_final: how.last_line_final,
    };
    let name = format!("'{}'", member.path().display());
    let damaged = match read_input(
        config,
        Input::File(file),
        reading,
        &name,
        metrics.clone(),
        drain.clone(),
    )
    .await
    {
        Ok(_) => None,
        Err(error @ Error::Damaged { .. }) => Some(error),
        Err(error) => return Err(error),
    };
    Ok(if replaced.load(std::sync::atomic::Ordering::Relaxed) {
        // Emptied and written anew since it was listed (copytruncate): nothing of it was read;
        // its old bytes are in the copy, which the next listing shows.
        Ended::Changed
    } else if output_closed(metrics) || (drain.is_cancelled() && damaged.is_none()) {
        Ended::Stopped
    } else if metrics
        .output_replaced
        .swap(false, std::sync::atomic::Ordering::Relaxed)
    {
        // OUTPUT was rotated away: the set is listed again, and the next run opens it anew.
        Ended::Changed
    } else if let Some(kept) = kept {
        // Rotated away or truncated: the set is listed again, its tail read first. A file
        // deleted meanwhile is in no listing: read to its end, it is marked so here.
        if let Ok(meta) = kept.metadata()
            && std::os::unix::fs::MetadataExt::nlink(&meta) == 0
        {
            let seen = checkpoint::set::Seen::of(&meta);
            checkpoint::read_to_end(checkpoint, how.index, seen, true, false)?;
        }
        Ended::Changed
    } else {
        Ended::Read(damaged)
    })
}

/// Says, loudly, which files of the set were gone before their end was read, and counts them.
fn report_lost(lost: &[checkpoint::set::Lost], metrics: &Metrics) {
    for lost in lost {
        metrics::add(&metrics.lost_files, 1);
        metrics::add(&metrics.rotated_unread_bytes, lost.unread);
        tracing::error!(
            "'{}' (as last seen) was gone before its end was read (rotated past logrotate's `rotate N`, or deleted): its lines after line {} are lost{}; run ingest more often than the log rotates, or keep more rotated files",
            lost.path.display(),
            lost.lines,
            match lost.unread {
                0 => String::new(),
                n => format!(" (at least {n} bytes)"),
            }
        );
    }
}

/// Squares OUTPUT and the rejects file with the checkpoint and plans the run over the set.
fn plan_set(
    config: &Config,
    checkpoint: &std::path::Path,
    set_path: &std::path::Path,
    members: &mut [source::set::Member],
    sure: bool,
) -> Result<checkpoint::set::Plan, Error> {
    let mut rejects = open_rejects(config)?;
    let rejects = rejects_target(config, rejects.as_mut());
    match &config.output {
        Output::Nats(target) => {
            let subject = checkpoint::Output::Nats {
                subject: &target.subject,
            };
            checkpoint::plan_set(checkpoint, set_path, members, subject, rejects, sure)
        }
        Output::File(_) | Output::Stdout => {
            let mut output = open_bytes(&config.output)?;
            let target = file_target(&config.output, &mut output).unwrap_or(checkpoint::Output::Pipe);
            checkpoint::plan_set(checkpoint, set_path, members, target, rejects, sure)
        }
    }
}

/// [`run`] on input as it is.
async fn run_plain(
    config: &Config,
    input: Input,
    reading: Reading,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    // A regular file on stdin has a size: progress can show a percentage and an ETA.
    let size = match &input {
        Input::File(file) => file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len()),
        Input::Reader(_) => None,
    };
    // Kept to wait on while telling the layout: a quiet live pipe must not hold the run.
    let fd = match &input {
        Input::File(file) => Some(std::os::fd::AsRawFd::as_raw_fd(file)),
        Input::Reader(_) => None,
    };
    match &config.output {
        Output::File(_) | Output::Stdout => {
            let mut output = open_bytes(&config.output)?;
            let mut rejects = open_rejects(config)?;
            let target = file_target(&config.output, &mut output);
            let (mut input, mut resume) =
                open_input(config, input, reading.index, target, rejects.as_mut(), &drain).await?;
            let (config, how) = &settle_layout(config, &mut input, &mut resume, fd, &drain)?;
            let output = sink::file::FileSink::new(output, config.retry);
            let source = file_source(config, input, fd, &mut resume, reading);
            let summary = run_pipeline(config, source, resume, size, output, rejects, metrics, drain).await?;
            check_layout(config, *how, &summary);
            Ok(summary)
        }
        Output::Nats(target) => {
            let mut rejects = open_rejects(config)?;
            let subject = checkpoint::Output::Nats {
                subject: &target.subject,
            };
            let (mut input, mut resume) = open_input(
                config,
                input,
                reading.index,
                Some(subject),
                rejects.as_mut(),
                &drain,
            )
            .await?;
            let (config, how) = &settle_layout(config, &mut input, &mut resume, fd, &drain)?;
            // With a checkpoint, the publisher is the same across reruns on the same input, and
            // continues after what the stream holds of it; without, every run is a new publisher
            // (a rerun publishes its input again, as a file run appends it again).
            let resuming = config.checkpoint.is_some();
            let id = if resuming {
                resume.source
            } else {
                checkpoint::new_source()
            };
            let publisher = nats::message::Publisher::new(&os::host_name(), id);
            let target = (**target).clone();
            let output = sink::jetstream::JetStreamSink::start(
                target,
                publisher,
                config.retry,
                resuming,
                metrics.clone(),
            )
            .await?;
            let source = file_source(config, input, fd, &mut resume, reading);
            let summary = run_pipeline(config, source, resume, size, output, rejects, metrics, drain).await?;
            check_layout(config, *how, &summary);
            Ok(summary)
        }
    }
}

/// Collects from a JetStream stream (`--from`) into OUTPUT: squares the files with the
/// checkpoint, starts the consumer after the last commit, and runs the pipeline.
async fn collect(
    config: &Config,
    from: &config::NatsInput,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    let checkpoint = config
        .checkpoint
        .as_deref()
        .expect("the command line asks for --checkpoint with --from");
    let mut output = open_bytes(&config.output)?;
    let mut rejects = open_rejects(config)?;
    // Standard output cannot be cut back; the checkpoint still says what is written.
    let target = file_target(&config.output, &mut output).unwrap_or(checkpoint::Output::Pipe);
    let rejects_target = rejects_target(config, rejects.as_mut());
    let what = format!("stream {} consumer {}", from.stream, from.consumer);
    let (resume, committed) =
        checkpoint::resume_stream(checkpoint, &what, target, rejects_target, config.checkpoint_bytes)?;
    let collector =
        source::consumer::Collector::start((*from).clone(), committed, config.retry, metrics.clone()).await?;
    tracing::debug!(
        "collecting from {} after stream sequence {}",
        collector.describe(),
        collector.start
    );
    let output = sink::file::FileSink::new(output, config.retry);
    run_pipeline(
        config,
        Box::new(collector),
        resume,
        None,
        output,
        rejects,
        metrics,
        drain,
    )
    .await
}

/// The bytes of `input` as a source, read from where `resume` says (its read-ahead handed out
/// first).
fn file_source(
    config: &Config,
    input: Box<dyn Read + Send>,
    fd: Option<std::os::fd::RawFd>,
    resume: &mut Resume,
    reading: Reading,
) -> Box<dyn source::Source> {
    let settings = source::file::Settings {
        follow: reading.follow,
        expect_head: reading.expect_head,
        // A growing log's last line may still be half-written: a checkpointed run leaves it.
        hold_last_line: resume.committer.is_some() && !reading.last_line_final,
        start: resume.start,
        skip: resume.skip,
        preread: std::mem::take(&mut resume.preread),
        fd,
        ..source::file::Settings::from_config(config)
    };
    Box::new(source::file::FileSource::new(input, settings))
}

/// Settles `--input auto`: the layout a checkpoint kept for this input, or the one that reads
/// the most of its first lines (read ahead into `resume.preread`, which the reader hands out
/// first). Returns the configuration with the layout fixed, and how `auto` chose it (`None`
/// for a layout named on the command line).
///
/// A choice is kept by the checkpoint only when made from records: an input with none yet (an
/// empty file that logrotate just created, a banner) is read as `plain` for this run and
/// judged again on the next.
fn settle_layout(
    config: &Config,
    input: &mut Box<dyn Read + Send>,
    resume: &mut Resume,
    fd: Option<std::os::fd::RawFd>,
    drain: &CancellationToken,
) -> Result<(Config, Option<&'static str>), Error> {
    let config::InputLayout::Auto(clock) = &config.input else {
        return Ok((config.clone(), None));
    };
    let kept = resume
        .layout
        .as_deref()
        .and_then(|name| layout::Layout::named(name, clock.clone()).ok());
    let (chosen, how) = match kept {
        Some(layout) => (layout, "kept by the checkpoint"),
        None => {
            // Past the committed part of a pipe only: what is read here is handed out as read.
            if resume.skip == 0 {
                read_ahead(input, resume, fd, drain)?;
            }
            // From the input's first byte: the file source hands out no byte order mark.
            let preread = match resume.start.offset {
                0 => resume
                    .preread
                    .strip_prefix(record::UTF8_BOM)
                    .unwrap_or(&resume.preread),
                _ => &resume.preread,
            };
            match layout::detect(record::split_lines(preread), clock) {
                Some(layout) => {
                    if let Some(committer) = resume.committer.as_mut() {
                        committer.keep_layout(&layout.name);
                    }
                    (layout, "picked from the first lines")
                }
                None => (layout::Layout::default(), "no record to judge by yet"),
            }
        }
    };
    tracing::debug!("input layout: {} ({how})", chosen.name);
    let mut settled = config.clone();
    settled.input = config::InputLayout::Fixed(chosen);
    Ok((settled, Some(how)))
}

/// Says loudly when the layout `auto` chose (`how`) rejected most of the run's lines: the input
/// changed its layout, or `auto` judged it by too little.
fn check_layout(config: &Config, how: Option<&str>, summary: &Summary) {
    let (Some(how), config::InputLayout::Fixed(layout)) = (how, &config.input) else {
        return;
    };
    let lines = summary.lines - summary.blank - summary.continued;
    let rejected = summary.rejected();
    if rejected > 0 && rejected * 2 >= lines {
        tracing::warn!(
            "input layout '{}' ({how}) rejected {rejected} of {lines} lines: if the input is in \
             another layout, name it with --input (see --help for the layouts)",
            layout.name
        );
    }
}

/// Reads ahead until `resume.preread` holds the lines `auto` looks at, the input ends, or (a
/// live pipe) nothing more arrives for a moment.
fn read_ahead(
    input: &mut Box<dyn Read + Send>,
    resume: &mut Resume,
    fd: Option<std::os::fd::RawFd>,
    drain: &CancellationToken,
) -> Result<(), Error> {
    const MOST: usize = 1 << 20;
    const QUIET: std::time::Duration = std::time::Duration::from_millis(200);
    let mut held = resume.preread.to_vec();
    let mut chunk = vec![0; 64 * 1024];
    let enough = |held: &[u8]| {
        let complete = memchr::memrchr(b'\n', held).map_or(&held[..0], |i| &held[..i]);
        record::split_lines(complete)
            .filter(|l| !record::trim_line(l).is_empty())
            .take(layout::DETECT_LINES)
            .count()
            >= layout::DETECT_LINES
    };
    while held.len() < MOST && !enough(&held) && !drain.is_cancelled() {
        if fd.is_some_and(|fd| !os::wait_readable(fd, QUIET)) {
            break;
        }
        match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => held.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Read(e)),
        }
    }
    resume.preread = bytes::Bytes::from(held);
    Ok(())
}

/// OUTPUT when it takes bytes (a file, or `-`), opened and locked.
fn open_bytes(output: &Output) -> Result<AppendFile, Error> {
    match output {
        Output::File(path) => AppendFile::append_locked(path),
        _ => AppendFile::stdout(),
    }
}

/// The rejects file, opened and locked, if there is one.
fn open_rejects(config: &Config) -> Result<Option<AppendFile>, Error> {
    config
        .rejects
        .as_deref()
        .map(AppendFile::append_locked)
        .transpose()
}

/// OUTPUT as the checkpoint squares it, when it is a file (which a rerun can cut back).
fn file_target<'a>(output: &'a Output, sink: &'a mut AppendFile) -> Option<checkpoint::Output<'a>> {
    match output {
        Output::File(path) => Some(checkpoint::Output::File(checkpoint::Target { sink, path })),
        _ => None,
    }
}

/// The rejects file as the checkpoint squares it, if there is one.
fn rejects_target<'a>(
    config: &'a Config,
    rejects: Option<&'a mut AppendFile>,
) -> Option<checkpoint::Target<'a>> {
    rejects
        .zip(config.rejects.as_deref())
        .map(|(sink, path)| checkpoint::Target { sink, path })
}

/// With `--checkpoint`, squares `output` (where records go) and the rejects file with it and
/// positions the input; without, the input as it is.
async fn open_input(
    config: &Config,
    input: Input,
    member: Option<usize>,
    output: Option<checkpoint::Output<'_>>,
    rejects: Option<&mut AppendFile>,
    drain: &CancellationToken,
) -> Result<(Box<dyn Read + Send>, Resume), Error> {
    match (&config.checkpoint, input, output) {
        (Some(path), Input::File(mut file), output) if let Some(index) = member => {
            // Standard output cannot be cut back; the checkpoint still says what is written.
            let output = output.unwrap_or(checkpoint::Output::Pipe);
            let rejects = rejects_target(config, rejects);
            let mut resume =
                checkpoint::resume_in_set(path, index, output, rejects, config.checkpoint_bytes)?;
            // A file is sought to where reading starts; a decompressing pipe read up to it.
            if file.metadata().is_ok_and(|m| m.is_file()) {
                use std::io::Seek;
                file.seek(std::io::SeekFrom::Start(resume.start.offset))
                    .map_err(Error::Read)?;
            } else {
                resume.skip = resume.start.offset;
            }
            Ok((Box::new(file), resume))
        }
        (Some(path), Input::File(file), Some(output)) => {
            let rejects = rejects_target(config, rejects);
            let options = checkpoint::Options {
                every_bytes: config.checkpoint_bytes,
                continue_only: config.continue_only,
            };
            checkpoint::resume(path, file, output, rejects, options, drain).await
        }
        (Some(path), _, _) => {
            let source = std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "needs a file descriptor as input and a file or a NATS subject as OUTPUT",
            );
            Err(Error::Checkpoint {
                path: path.clone(),
                source,
            })
        }
        (None, Input::File(file), _) => Ok((Box::new(file), Resume::default())),
        (None, Input::Reader(reader), _) => Ok((reader, Resume::default())),
    }
}

/// Shows progress, keeps the textfile fresh, and runs the pipeline into `output`.
#[allow(clippy::too_many_arguments)]
async fn run_pipeline<S: sink::Sink + 'static>(
    config: &Config,
    source: Box<dyn source::Source>,
    resume: Resume,
    size: Option<u64>,
    output: S,
    rejects: Option<AppendFile>,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    metrics::add(&metrics.rotated_unread_bytes, resume.rotated_unread_bytes);
    let total = size.map(|size| size.saturating_sub(resume.start.offset));
    let _progress = config.progress.start(metrics.clone(), total);
    let textfile = config.metrics_textfile.clone().map(|path| {
        tokio::spawn(metrics::keep_textfile_fresh(
            path,
            metrics.clone(),
            std::time::Instant::now(),
        ))
    });
    let checkpoint = resume.committer.map(|committer| (committer, resume.start));
    let result = pipeline::run(config, source, checkpoint, output, rejects, metrics, drain).await;
    if let Some(textfile) = textfile {
        // Waited for, so that a refresh still being written cannot land after the final file.
        textfile.abort();
        let _ = textfile.await;
    }
    result
}

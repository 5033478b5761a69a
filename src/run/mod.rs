//! The runs: what `ingest::run` starts for each kind of input, one file each, every one a
//! loop around the pipeline. This file is the run of one input (standard input, or one file of
//! a set) and what the others share: opening OUTPUT and the rejects file, squaring them with the
//! checkpoint, settling `--input auto`, and starting the pipeline. [`mod@file`] reads `--from PATH`
//! alone, [`set`] a log and its rotated files with a checkpoint, [`collect`] a JetStream stream.

pub mod collect;
pub mod file;
pub mod follow_logs;
pub mod logs;
pub mod set;

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::checkpoint::{self, Resume};
use crate::config::{self, Config, Output};
use crate::error::Error;
use crate::metrics::{self, Metrics};
use crate::output::AppendFile;
use crate::summary::Summary;
use crate::{layout, nats, os, pipeline, record, sink, source};

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
    expect_head: Option<(crate::checkpoint::Fingerprint, Arc<std::sync::atomic::AtomicBool>)>,
    /// A rotated file the program writes to no more: its last line is final without newline.
    last_line_final: bool,
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

/// Reads standard input (or an embedder's reader) to its end, as [`crate::run()`] was given it.
///
/// # Errors
/// As [`crate::run()`].
pub async fn read_stdin(
    config: &Config,
    input: Input,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    read_input(
        config,
        input,
        Reading::default(),
        "standard input",
        metrics,
        drain,
    )
    .await
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

/// [`crate::run()`] on input as it is.
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
                sink::jetstream::Publishing::One(publisher),
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

/// The bytes of `input` as a source, read from where `resume` says (its read-ahead handed out
/// first).
fn file_source(
    config: &Config,
    input: Box<dyn Read + Send>,
    fd: Option<std::os::fd::RawFd>,
    resume: &mut Resume,
    reading: Reading,
) -> Box<dyn source::Source> {
    // A growing log's last line may still be half-written: a checkpointed run leaves it; and a
    // container's line whose last piece is not written yet, while the log was written to within
    // --multiline-timeout (following, the reader waits that long instead).
    let hold_last_line = resume.committer.is_some() && !reading.last_line_final;
    let hold_last_record = hold_last_line
        && reading.follow.is_none()
        && config.layout().container().is_some()
        && fd
            .and_then(os::size_and_mtime)
            .is_some_and(|(_, mtime_ns)| os::written_within(mtime_ns, config.hold_timeout));
    let settings = source::file::Settings {
        follow: reading.follow,
        expect_head: reading.expect_head,
        hold_last_line,
        hold_last_record,
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
    // A container's layout named without `--inner` has its streams judged as `auto` would.
    let (clock, named) = match &config.input {
        config::InputLayout::Auto(clock) => (clock, None),
        config::InputLayout::Fixed(layout) if layout.container().is_some_and(|c| !c.judged()) => {
            (&layout.clock, Some(layout))
        }
        config::InputLayout::Fixed(_) => return Ok((config.clone(), None)),
    };
    let kept = resume
        .layout
        .as_deref()
        .and_then(|name| layout::Layout::named(name, clock.clone()).ok())
        .filter(|kept| named.is_none_or(|named| same_runtime(kept, named)));
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
            let candidates = layout::Layout::candidates(clock);
            let picked = match named {
                Some(named) => Some(named.clone()),
                None => layout::detect_among(record::split_lines(preread), &candidates).cloned(),
            };
            match picked
                .map(|l| l.judge_streams(record::split_lines(preread), config.inner.as_ref(), &candidates))
            {
                Some(layout) => {
                    // A stream with no line yet is judged again on the next run.
                    if let Some(committer) = resume.committer.as_mut()
                        && layout.container().is_none_or(layout::Container::judged)
                    {
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

/// True when two layouts are the same container runtime's (a kept `cri:json,-` for `--input cri`).
pub(super) fn same_runtime(a: &layout::Layout, b: &layout::Layout) -> bool {
    matches!((a.container(), b.container()), (Some(a), Some(b)) if a.runtime == b.runtime)
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

//! `--from PATH --checkpoint`: a log and its rotated files, listed, planned against the
//! checkpoint and read one pipeline run per file; followed with `--follow`.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{
    Input, Reading, file_target, open_bytes, open_rejects, output_closed, read_input, rejects_target,
    wait_for,
};
use crate::checkpoint;
use crate::config::{Config, Output};
use crate::error::Error;
use crate::metrics::{self, Metrics};
use crate::source;
use crate::summary::Summary;

/// `--from PATH --checkpoint`: reads what the checkpoint has not read of PATH and its rotated
/// files, oldest first, one pipeline run per file (so a record never spans two files, and
/// `--input auto` judges each file by its own lines).
pub async fn read_set(
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
            Some((checkpoint::Fingerprint::of(head), replaced.clone()))
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
pub(super) fn report_lost(lost: &[checkpoint::set::Lost], metrics: &Metrics) {
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
            checkpoint::plan_set(
                checkpoint,
                set_path,
                members,
                subject,
                rejects,
                sure,
                config.start_at_end,
            )
        }
        Output::File(_) | Output::Stdout => {
            let mut output = open_bytes(&config.output)?;
            let target = file_target(&config.output, &mut output).unwrap_or(checkpoint::Output::Pipe);
            checkpoint::plan_set(
                checkpoint,
                set_path,
                members,
                target,
                rejects,
                sure,
                config.start_at_end,
            )
        }
    }
}

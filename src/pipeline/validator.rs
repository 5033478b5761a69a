//! The validator stage: restores input order, then decides each record's fate.
//!
//! Fed [`ParsedBatch`]es by the parser pool in completion order; holds early ones in a reorder
//! buffer (bounded by the in-flight window) and feeds [`ValidBatch`]es to the writer in input
//! order. The only place a [`ValidRecord`] is made, and the only place that decides which of the
//! parsers' rendered bytes reach the writer.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::batch::{ParsedBatch, ValidBatch, record_of};
use crate::channel::{recv, send};
use crate::error::Error;
use crate::metrics::{Metrics, add};
use crate::record::{RejectReason, Severity, ValidRecord};

/// How many rejected lines get a warning of their own; the rest are only counted.
const REJECTS_SHOWN: u64 = 10;
/// Counts of every line's outcome up to the writer; they add up to `lines`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ValidatorReport {
    /// Lines seen.
    pub lines: u64,
    /// Lines empty after trimming.
    pub blank: u64,
    /// Lines joined to the record before them (`--multiline`).
    pub continued: u64,
    /// Rejected lines, indexed like [`RejectReason::ALL`].
    pub rejected_by_reason: [u64; RejectReason::ALL.len()],
    /// Parsed records with an empty message.
    pub dropped: u64,
    /// Records below `--min-level`.
    pub filtered: u64,
    /// Records passed to the writer.
    pub valid: u64,
}

impl ValidatorReport {
    /// All rejected lines.
    pub fn rejected(&self) -> u64 {
        self.rejected_by_reason.iter().sum()
    }

    /// Adds what changed since `before` to the shared counters: once per batch.
    fn publish_since(&self, before: &ValidatorReport, metrics: &Metrics) {
        add(&metrics.blank, self.blank - before.blank);
        add(&metrics.continued, self.continued - before.continued);
        for (i, counter) in metrics.rejected.iter().enumerate() {
            add(counter, self.rejected_by_reason[i] - before.rejected_by_reason[i]);
        }
        add(&metrics.dropped, self.dropped - before.dropped);
        add(&metrics.filtered, self.filtered - before.filtered);
        add(&metrics.valid, self.valid - before.valid);
    }
}

/// What the validator keeps, besides records with a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// Records below this level are filtered.
    pub min_level: Option<Severity>,
    /// Records whose rendering (without its newline) is longer are rejected as `too large`: the
    /// sink cannot carry them (a NATS server's max_payload).
    pub max_record_bytes: Option<usize>,
}

/// Keeps records with a non-empty message (else dropped) at or above `rules.min_level` (else
/// filtered) and no larger than `rules.max_record_bytes` (else rejected), counting every
/// outcome in `report`.
pub fn validate(mut batch: ParsedBatch, rules: &Rules, report: &mut ValidatorReport) -> ValidBatch {
    let min_level = rules.min_level;
    let parsed = &mut batch.parsed;
    report.lines += parsed.lines;
    report.blank += parsed.blank;
    report.continued += parsed.continued;
    for reject in &parsed.rejects {
        if report.rejected() < REJECTS_SHOWN {
            // Escaped: a bad line may hold control bytes that would garble a terminal.
            let shown = String::from_utf8_lossy(&reject.line[..reject.line.len().min(80)]);
            let shown = shown.trim_end().escape_debug();
            let what = if parsed.from_stream { "message" } else { "line" };
            tracing::warn!("{what} {}: {}: '{shown}'", reject.line_no, reject.reason);
        }
        report.rejected_by_reason[reject.reason as usize] += 1;
    }
    let (mut dropped, mut filtered) = (0, 0);
    let mut too_large = Vec::new();
    // The rendering of each kept record moves down over those of dropped ones: in place, and
    // only once something was dropped (usually nothing is, and nothing moves).
    let (mut read, mut write) = (0, 0);
    let (data, entries, out) = parsed.split_for_validation();
    entries.retain_mut(|entry| {
        let record = record_of(data, entry);
        let (start, end) = (read, entry.out_end);
        read = end;
        if ValidRecord::validate(record).is_err() {
            dropped += 1;
            return false;
        }
        if min_level.is_some_and(|min| record.severity < min) {
            filtered += 1;
            return false;
        }
        if rules.max_record_bytes.is_some_and(|max| end - start - 1 > max) {
            too_large.push(*entry);
            return false;
        }
        if write != start {
            out.copy_within(start..end, write);
        }
        write += end - start;
        entry.out_end = write;
        true
    });
    parsed.out.truncate(write);
    for entry in &too_large {
        parsed.reject_too_large(entry);
        report.rejected_by_reason[RejectReason::TooLarge as usize] += 1;
    }
    report.dropped += dropped;
    report.filtered += filtered;
    report.valid += parsed.entries.len() as u64;
    ValidBatch::new(batch.parsed, batch.end, batch.at, batch.permit)
}

/// Runs the validator until the parsers are done and every batch is passed on, or `cancel` fires.
///
/// # Errors
/// None today; the signature matches the other stages.
pub async fn run(
    parsed_rx: async_channel::Receiver<ParsedBatch>,
    valid_tx: async_channel::Sender<ValidBatch>,
    rules: Rules,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let times = &metrics.validator;
    let mut report = ValidatorReport::default();
    // Batches that overtook an earlier one. Never more than the in-flight window: each holds a
    // permit, and the reader cannot read past the window until the writer frees one.
    let mut early: BTreeMap<u64, ParsedBatch> = BTreeMap::new();
    let mut next_seq = 0;
    'receiving: while let Some(batch) = recv(&parsed_rx, &cancel, times).await {
        early.insert(batch.seq, batch);
        while let Some(batch) = early.remove(&next_seq) {
            next_seq += 1;
            let before = report;
            let valid = validate(batch, &rules, &mut report);
            report.publish_since(&before, &metrics);
            if !send(&valid_tx, valid, &cancel, times).await {
                break 'receiving;
            }
        }
    }
    if report.rejected() > REJECTS_SHOWN {
        tracing::warn!(
            "{} lines rejected in all (the first {REJECTS_SHOWN} shown above; --rejects PATH keeps every one)",
            report.rejected()
        );
    }
    tracing::debug!(
        "validator finished: {} valid, {} dropped",
        report.valid,
        report.dropped
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Position;
    use crate::pipeline::parser::parse_batch;
    use bytes::Bytes;
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    /// `text` parsed (and rendered as text) as the pipeline's first batch.
    /// Records at INFO or above, of any size.
    fn info_and_above() -> Rules {
        Rules {
            min_level: Some(Severity::Info),
            ..Rules::default()
        }
    }

    fn parsed(text: &'static [u8]) -> ParsedBatch {
        let window = Arc::new(Semaphore::new(1));
        ParsedBatch {
            at: None,
            seq: 0,
            end: Position::default(),
            parsed: parse_batch(1, Bytes::from_static(text)),
            permit: window.try_acquire_owned().unwrap(),
        }
    }

    #[test]
    fn the_renderings_of_kept_records_close_up_over_dropped_ones_in_order() {
        let batch = parsed(
            b"2026-04-15T00:00:01Z DEBUG one\n\
              2026-04-15T00:00:02Z INFO two\n\
              2026-04-15T00:00:03Z ERROR\n\
              2026-04-15T00:00:04Z WARN four\n\
              2026-04-15T00:00:05Z DEBUG five\n\
              2026-04-15T00:00:06Z FATAL six\n",
        );
        let valid = validate(batch, &info_and_above(), &mut ValidatorReport::default());
        assert_eq!(
            String::from_utf8_lossy(valid.rendered()),
            "     2  INFO two\n     4  WARN four\n     6 FATAL six\n"
        );
    }

    #[test]
    fn outcomes_add_up_and_only_kept_records_pass() {
        let batch = parsed(
            b"2026-04-15T00:00:01Z INFO kept\n\
              2026-04-15T00:00:02Z DEBUG filtered\n\
              2026-04-15T00:00:03Z ERROR\n\
              \n\
              nope\n\
              2026-04-15T00:00:04Z NOTE x\n",
        );
        let mut report = ValidatorReport::default();
        let valid = validate(batch, &info_and_above(), &mut report);
        assert_eq!(valid.rejects().len(), 2);
        // Only the kept record's rendering reaches the writer; the dropped and filtered ones
        // before and after it are gone from the bytes too.
        assert_eq!(valid.rendered(), b"     1  INFO kept\n");
        assert_eq!(
            valid.rendered_rejects(),
            b"5\tnot enough fields\tnope\n6\tbad severity\t2026-04-15T00:00:04Z NOTE x\n"
        );
        let expected = ValidatorReport {
            lines: 6,
            blank: 1,
            continued: 0,
            rejected_by_reason: [1, 0, 1, 0, 0, 0, 0, 0],
            dropped: 1,
            filtered: 1,
            valid: 1,
        };
        assert_eq!(report, expected);
        assert_eq!(
            report.lines,
            report.blank + report.rejected() + report.dropped + report.filtered + report.valid
        );
    }
}

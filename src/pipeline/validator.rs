//! The validator stage: restores input order, then decides each record's fate.
//!
//! Fed [`ParsedBatch`]es by the parser pool in completion order; holds early ones in a reorder
//! buffer (bounded by the in-flight window) and feeds [`ValidBatch`]es to the writer in input
//! order. The only place a [`ValidRecord`] is made.

use std::collections::BTreeMap;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::parser::{Parsed, ParsedBatch, Rejected};
use super::{recv, send};
use crate::error::Error;
use crate::record::{RejectReason, Severity, ValidRecord};

/// How many rejected lines get a warning of their own; the rest are only counted.
const REJECTS_SHOWN: u64 = 10;

/// Records ready for the writer, in input order.
#[derive(Debug)]
pub struct ValidBatch {
    /// Records to write.
    pub records: Vec<ValidRecord>,
    /// Lines for the rejects file.
    pub rejects: Vec<Rejected>,
    /// The batch's slot in the in-flight window, freed once written.
    pub(crate) _permit: OwnedSemaphorePermit,
}

/// Counts of every line's outcome up to the writer; they add up to `lines`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ValidatorReport {
    /// Lines seen.
    pub lines: u64,
    /// Lines empty after trimming.
    pub blank: u64,
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
}

/// Keeps records with a non-empty message (else dropped) at or above `min_level` (else
/// filtered), counting every outcome in `report`.
pub fn validate(
    parsed: Parsed,
    min_level: Option<Severity>,
    report: &mut ValidatorReport,
) -> (Vec<ValidRecord>, Vec<Rejected>) {
    report.lines += parsed.lines;
    report.blank += parsed.blank;
    for reject in &parsed.rejects {
        let n = report.rejected();
        if n < REJECTS_SHOWN {
            let shown = String::from_utf8_lossy(&reject.line[..reject.line.len().min(80)]);
            tracing::warn!(
                "line {}: {}: '{}'",
                reject.line_no,
                reject.reason,
                shown.trim_end()
            );
        }
        report.rejected_by_reason[reject.reason as usize] += 1;
    }
    let (mut dropped, mut filtered) = (0, 0);
    // `ParsedRecord` and `ValidRecord` have the same layout, so this collects in place.
    let records: Vec<ValidRecord> = parsed
        .records
        .into_iter()
        .filter_map(|r| ValidRecord::validate(r).inspect_err(|_| dropped += 1).ok())
        .filter(|r| {
            let keep = min_level.is_none_or(|min| r.record().severity >= min);
            filtered += u64::from(!keep);
            keep
        })
        .collect();
    report.dropped += dropped;
    report.filtered += filtered;
    report.valid += records.len() as u64;
    (records, parsed.rejects)
}

/// Runs the validator until the parsers are done and every batch is passed on, or `cancel` fires.
///
/// # Errors
/// None today; the signature matches the other stages.
pub async fn run(
    parsed_rx: async_channel::Receiver<ParsedBatch>,
    valid_tx: async_channel::Sender<ValidBatch>,
    min_level: Option<Severity>,
    cancel: CancellationToken,
) -> Result<ValidatorReport, Error> {
    let mut report = ValidatorReport::default();
    // Batches that overtook an earlier one. Never more than the in-flight window: each holds a
    // permit, and the reader cannot read past the window until the writer frees one.
    let mut early: BTreeMap<u64, ParsedBatch> = BTreeMap::new();
    let mut next_seq = 0;
    'receiving: while let Some(batch) = recv(&parsed_rx, &cancel).await {
        early.insert(batch.seq, batch);
        while let Some(batch) = early.remove(&next_seq) {
            next_seq += 1;
            let (records, rejects) = validate(batch.parsed, min_level, &mut report);
            let out = ValidBatch {
                records,
                rejects,
                _permit: batch.permit,
            };
            if !send(&valid_tx, out, &cancel).await {
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
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parser::parse_batch;
    use bytes::Bytes;

    #[test]
    fn outcomes_add_up_and_only_kept_records_pass() {
        let data = Bytes::from_static(
            b"2026-04-15T00:00:01Z INFO kept\n\
              2026-04-15T00:00:02Z DEBUG filtered\n\
              2026-04-15T00:00:03Z ERROR\n\
              \n\
              nope\n\
              2026-04-15T00:00:04Z NOTICE x\n",
        );
        let mut report = ValidatorReport::default();
        let (records, rejects) = validate(parse_batch(1, &data), Some(Severity::Info), &mut report);
        let kept: Vec<&[u8]> = records.iter().map(|r| &r.record().message[..]).collect();
        assert_eq!(kept, [&b"kept"[..]]);
        assert_eq!(rejects.len(), 2);
        let expected = ValidatorReport {
            lines: 6,
            blank: 1,
            rejected_by_reason: [1, 0, 1],
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

//! `syslog`: RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`) and RFC 3164
//! (`<PRI>Mmm dd hh:mm:ss HOST TAG: MSG`), the latter also without `<PRI>` and with an RFC 3339
//! timestamp, as rsyslog writes files. The severity comes from PRI; host, app and pid become
//! fields.

use time::Time;

use super::head::{Head, Text, starts_with_date};
use crate::layout::clock::Clock;
use crate::record::{Fields, Value};
use crate::record::{RejectReason, Severity};

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// A record starts with `<PRI>`, a month name, or (rsyslog's files) a date.
pub(super) fn starts_record(line: &[u8]) -> bool {
    line.first() == Some(&b'<') || month(line).is_some() || starts_with_date(line)
}

/// The month (1-12) whose name `s` starts with, followed by a space.
fn month(s: &[u8]) -> Option<u8> {
    let name = s.get(..3)?;
    if s.get(3) != Some(&b' ') {
        return None;
    }
    MONTHS.iter().position(|m| &m[..] == name).map(|i| i as u8 + 1)
}

/// `<PRI>`'s severity: 0-2 FATAL, 3 ERROR, 4 WARN, 5-6 INFO, 7 DEBUG.
fn severity(pri: u8) -> Severity {
    match pri & 7 {
        0..=2 => Severity::Fatal,
        3 => Severity::Error,
        4 => Severity::Warn,
        5 | 6 => Severity::Info,
        _ => Severity::Debug,
    }
}

/// Splits off one space-separated word and the rest after its single space.
fn word(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = memchr::memchr(b' ', s).unwrap_or(s.len());
    let w = &s[..end];
    (!w.is_empty()).then(|| (w, s.get(end + 1..).unwrap_or_default()))
}

/// Parses one (trimmed, non-blank) line.
pub(super) fn parse<'a>(
    line: &'a [u8],
    clock: &Clock,
    fields: &mut Fields,
) -> Result<Head<'a>, RejectReason> {
    let (pri, rest) = match line.strip_prefix(b"<") {
        Some(after) => {
            let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
            let pri: u8 = std::str::from_utf8(&after[..digits])
                .ok()
                .and_then(|d| d.parse().ok())
                .filter(|&p| (1..=3).contains(&digits) && p <= 191)
                .ok_or(RejectReason::NotInLayout)?;
            let rest = after[digits..]
                .strip_prefix(b">")
                .ok_or(RejectReason::NotInLayout)?;
            (Some(pri), rest)
        }
        None => (None, line),
    };
    let severity = pri.map_or(Severity::Info, severity);
    if pri.is_some()
        && let Some(rest) = rest.strip_prefix(b"1 ")
    {
        return rfc5424(rest, severity, clock, fields);
    }
    rfc3164(rest, severity, pri.is_some(), clock, fields)
}

/// After `<PRI>1 `: `TIMESTAMP HOST APP PROCID MSGID SD MSG`, `-` for a value not given.
fn rfc5424<'a>(
    s: &'a [u8],
    severity: Severity,
    clock: &Clock,
    fields: &mut Fields,
) -> Result<Head<'a>, RejectReason> {
    let (stamp, rest) = word(s).ok_or(RejectReason::NotEnoughFields)?;
    let timestamp = clock.whole(stamp).ok_or(RejectReason::BadTimestamp)?;
    let mut rest = rest;
    for key in [&b"host"[..], b"app", b"pid", b"msgid"] {
        let (value, after) = word(rest).ok_or(RejectReason::NotEnoughFields)?;
        if value != b"-" {
            fields.push(key, value, Value::Text);
        }
        rest = after;
    }
    let sd_len = structured_data(rest).ok_or(RejectReason::NotInLayout)?;
    if &rest[..sd_len] != b"-" {
        fields.push(b"sd", &rest[..sd_len], Value::Text);
    }
    let message = rest.get(sd_len + 1..).unwrap_or_default();
    let message = message.strip_prefix("\u{feff}".as_bytes()).unwrap_or(message);
    Ok(Head {
        timestamp,
        severity,
        message: Text::Line(message),
    })
}

/// The length of the structured data at the start of `s`: `-`, or `[...]` elements (values
/// quoted, `\]` and `\"` escaped inside them).
fn structured_data(s: &[u8]) -> Option<usize> {
    if s.first() == Some(&b'-') {
        return Some(1);
    }
    let mut at = 0;
    while s.get(at) == Some(&b'[') {
        let (mut quoted, mut escaped) = (false, false);
        at += 1;
        loop {
            let b = *s.get(at)?;
            at += 1;
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if b == b']' && !quoted {
                break;
            }
        }
    }
    (at > 0).then_some(at)
}

/// `Mmm dd hh:mm:ss HOST TAG: MSG` (or an RFC 3339 timestamp first). Without `<PRI>` the tag
/// is required: `TIMESTAMP WORD MESSAGE` alone is any log's shape, not syslog's.
fn rfc3164<'a>(
    s: &'a [u8],
    severity: Severity,
    with_pri: bool,
    clock: &Clock,
    fields: &mut Fields,
) -> Result<Head<'a>, RejectReason> {
    let (timestamp, rest) = if let Some(month) = month(s) {
        // `Mar  5` or `Mar 15`, then `hh:mm:ss`.
        let day_at = if s.get(4) == Some(&b' ') { 5 } else { 4 };
        let digits = |at: usize, n: usize| -> Option<u32> {
            let d = s.get(at..at + n)?;
            d.iter()
                .all(u8::is_ascii_digit)
                .then(|| d.iter().fold(0, |v, &b| v * 10 + u32::from(b - b'0')))
        };
        let end = 7 + 9;
        let day = digits(day_at, 6 - day_at).ok_or(RejectReason::BadTimestamp)?;
        let clock_ok = s.get(6) == Some(&b' ') && s.get(9) == Some(&b':') && s.get(12) == Some(&b':');
        let (h, m, sec) = (digits(7, 2), digits(10, 2), digits(13, 2));
        let (Some(h), Some(m), Some(sec), true) = (h, m, sec, clock_ok) else {
            return Err(RejectReason::BadTimestamp);
        };
        let time = Time::from_hms(h as u8, m as u8, sec as u8).map_err(|_| RejectReason::BadTimestamp)?;
        let timestamp = clock
            .without_year(month, day as u8, time)
            .ok_or(RejectReason::BadTimestamp)?;
        if s.get(end - 1).is_some_and(|&b| b != b' ') {
            return Err(RejectReason::BadTimestamp);
        }
        (timestamp, s.get(end..).unwrap_or_default())
    } else {
        let (stamp, rest) = word(s).ok_or(RejectReason::NotEnoughFields)?;
        (clock.whole(stamp).ok_or(RejectReason::BadTimestamp)?, rest)
    };
    let (host, rest) = word(rest).ok_or(RejectReason::NotEnoughFields)?;
    fields.push(b"host", host, Value::Text);
    // `tag:` or `tag[pid]:`; without one, the message starts right after the host.
    let message = match word(rest) {
        Some((tag, after)) if tag.ends_with(b":") => {
            let tag = &tag[..tag.len() - 1];
            match tag.strip_suffix(b"]").and_then(|t| {
                let open = memchr::memrchr(b'[', t)?;
                Some((&t[..open], &t[open + 1..]))
            }) {
                Some((app, pid)) => {
                    fields.push(b"app", app, Value::Text);
                    fields.push(b"pid", pid, Value::Text);
                }
                None => fields.push(b"app", tag, Value::Text),
            }
            after
        }
        _ if with_pri => rest,
        _ => return Err(RejectReason::NotInLayout),
    };
    Ok(Head {
        timestamp,
        severity,
        message: Text::Line(message),
    })
}

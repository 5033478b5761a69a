//! `ingest --generate KIND`: the man page and the shell completions, made from the same clap
//! definition as `--help` (clap_mangen, clap_complete), so that they never drift from it. The
//! definition comes in as clap's `Command` (`crate::cli::Args::command()`).

use std::io::{self, Write};

use clap::Command;
use clap_complete::Shell;

use crate::error::Exit;

/// What `--generate` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The man page (roff): `ingest --generate man > ingest.1`
    Man,
    /// Bash completions
    CompleteBash,
    /// Zsh completions
    CompleteZsh,
    /// Fish completions
    CompleteFish,
}

/// Writes `kind` for the command line `command` to `out`.
///
/// # Errors
/// When `out` cannot be written.
pub fn write(kind: Kind, mut command: Command, out: &mut impl Write) -> io::Result<()> {
    let shell = match kind {
        Kind::Man => return man(command, out),
        Kind::CompleteBash => Shell::Bash,
        Kind::CompleteZsh => Shell::Zsh,
        Kind::CompleteFish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, "ingest", out);
    Ok(())
}

/// The man page: clap's sections (name, synopsis, description, options), then what `--help`
/// cannot hold: the record format and layouts, the guarantees, exit status, files, environment,
/// examples.
fn man(command: Command, out: &mut impl Write) -> io::Result<()> {
    let page = clap_mangen::Man::new(command).section("1");
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_description_section(out)?;
    out.write_all(DESCRIPTION.as_bytes())?;
    page.render_options_section(out)?;
    out.write_all(RECORDS.as_bytes())?;
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for exit in Exit::ALL {
        writeln!(out, ".TP\n.B {}\n{}", exit as u8, roff_text(exit.meaning()))?;
    }
    out.write_all(REST.as_bytes())?;
    page.render_version_section(out)?;
    Ok(())
}

/// Text as roff reads it: a backslash and a leading dot or quote would be commands.
fn roff_text(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    match text.chars().next() {
        Some('.' | '\'') => format!("\\&{text}"),
        _ => text,
    }
}

const DESCRIPTION: &str = r#".PP
Lines that do not follow the layout are rejected (and, with \fB\-\-rejects\fR, kept with the
reason); records with an empty message are dropped; the run goes on. Memory stays bounded
whatever the input's size, a slow output slows the reading instead of growing memory, a failing
write is retried, and SIGINT or SIGTERM drain the run: everything read is written, then ingest
exits. Every run ends with a one\-line summary on stderr.
"#;

const RECORDS: &str = r#".SH RECORDS
By default a line is \fITIMESTAMP SEVERITY MESSAGE\fR (\fB\-\-input plain\fR):
.TP
.B TIMESTAMP
YYYY\-MM\-DD (or YYYY/MM/DD), then T, t or a space, HH:MM:SS, an optional fraction (. or , and
1 to 9 digits), an optional offset (Z, +HH:MM, +HHMM, +HH) or zone word (UTC, GMT). Without an
offset: \fB\-\-tz\fR, UTC by default.
.TP
.B SEVERITY
trace, debug (debug1\-5), info (notice, log), warn (warning), error (err), fatal (critical,
crit, panic, emerg, emergency, alert); any case, in brackets or not.
.TP
.B MESSAGE
the rest of the line.
.PP
Other layouts (\fB\-\-input\fR): \fBjson\fR (one object a line; timestamp, level and message
from their usual keys, the rest kept as fields), \fBlogfmt\fR, \fBsyslog\fR (RFC 5424 and
3164), and the patterns \fBpython\fR, \fBloguru\fR, \fBstructlog\fR, \fBenv_logger\fR,
\fBpostgres\fR, \fBnginx\-error\fR; \fB\-\-pattern\fR for others. \fBauto\fR (the default)
picks the layout that reads the most of the first 64 lines. With \fB\-\-multiline\fR, lines
that do not start a record (stack traces) join the record before them.
.PP
Output: \fBtext\fR, `     1  INFO started' (line number, severity, message; continuation lines
indented by 13 spaces, fields as key=value after the message), or \fBjson\fR, one object a
line with line, timestamp (UTC), severity, message and, for structured input, fields.
.SH GUARANTEES
Records come out in input order. OUTPUT is fsynced before a successful exit. With
\fB\-\-checkpoint\fR, a rerun on the same input writes nothing twice and loses nothing, however
the previous run ended (SIGKILL included): it cuts OUTPUT and the rejects file back to the last
commit and resumes after it. Two runs on one OUTPUT: the second exits 75. Published to NATS
JetStream (OUTPUT nats://...) and collected with \fB\-\-from\fR, every record arrives exactly
once.
"#;

const REST: &str = r#".SH FILES
.TP
.I OUTPUT
appended to, created when missing (its directory fsynced then); locked while a run writes it.
.TP
\fB\-\-rejects\fR \fIPATH\fR
rejected lines, one a line: line number, TAB, reason, TAB, the line.
.TP
\fB\-\-checkpoint\fR \fIPATH\fR
what is committed: the input's identity and position, the files' lengths, the layout auto
picked. Replaced atomically. Give each job its own.
.TP
\fB\-\-stats\-json\fR \fIPATH\fR
the run's counters as one JSON object, written at the end.
.TP
\fB\-\-metrics\-textfile\fR \fIPATH\fR
Prometheus metrics (node_exporter's textfile format), every 10 s and at the end.
.SH ENVIRONMENT
.TP
.B RUST_LOG
overrides \fB\-q\fR and \fB\-v\fR: an EnvFilter directive such as \fBdebug\fR.
.TP
.B NATS_USER\fR, \fBNATS_PASSWORD
the user and password for a nats:// OUTPUT or \fB\-\-from\fR.
.TP
.B NATS_TOKEN
a token instead.
.SH EXAMPLES
From cron, every 5 minutes, exactly once:
.PP
.EX
*/5 * * * * ingest \-q \-\-checkpoint /var/lib/ingest/app.cp \-\-rejects /var/log/app.rej /var/log/app.clean < /var/log/app.log
.EE
.PP
A Python application's log, tracebacks kept with their records:
.PP
.EX
ingest \-\-input python \-\-multiline out.log < app.log
.EE
.PP
Publish a host's records to JetStream, and collect them centrally:
.PP
.EX
ingest \-\-checkpoint app.cp \-\-create\-stream LOGS nats://nats1:4222/logs.web1 < app.log
ingest \-\-from nats://nats1:4222/LOGS \-\-consumer central \-\-checkpoint central.cp all.log
.EE
.SH "SEE ALSO"
The README (in /usr/share/doc/ingest/ when installed from the package): every flag, the layouts,
the guarantees and the NATS setup, with examples.
"#;

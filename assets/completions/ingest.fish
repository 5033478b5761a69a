complete -c ingest -l input -d 'How lines are written: auto, plain, json, logfmt, syslog, cri, docker, or a named pattern (below)' -r
complete -c ingest -l inner -d 'Container logs (cri, docker): how the programs write their lines, judged per container and stream by default' -r
complete -c ingest -l default-severity -d 'Container logs: the severity of a line that says none (an access log line, a print)' -r
complete -c ingest -l pattern -d 'Read lines laid out as TEMPLATE (see Input layouts below)' -r
complete -c ingest -l tz -d 'Time zone of timestamps written without an offset: an IANA name or `local` [default: UTC]' -r
complete -c ingest -l time-format -d 'Read timestamps with a strftime-like FORMAT (`%d/%b/%Y:%H:%M:%S %z`) instead of the built-in spellings' -r
complete -c ingest -l max-record-lines -d 'With --multiline: the most lines one record keeps; later ones are rejected as `record too long`' -r
complete -c ingest -l multiline-timeout -d 'With --multiline: finish the last record once the input was quiet for MS milliseconds (a container\'s line written that much later than its record\'s last joins it no more); container logs: a line whose last piece has not come' -r
complete -c ingest -s w -l workers -d 'Parser tasks working in parallel (1-256)' -r
complete -c ingest -l capacity -d 'Lines in flight between reader and writer (bounds memory; see README)' -r
complete -c ingest -s f -l format -d 'Output format [default: text; json for a NATS OUTPUT]' -r -f -a "text\t'`{line_no:>6} {severity:>5} {message}`, message bytes unchanged'
json\t'JSON Lines: line, UTC RFC 3339 timestamp, severity, message (invalid UTF-8 as U+FFFD)'"
complete -c ingest -l min-level -d 'Count records below LEVEL as filtered instead of writing them' -r
complete -c ingest -l rejects -d 'Append each rejected line to PATH as `line_no<TAB>reason<TAB>line`' -r -F
complete -c ingest -l max-rejects -d 'Exit 65 after the run if more than N lines were rejected' -r
complete -c ingest -l max-line-bytes -d 'Reject longer lines (not counting `\\n` or `\\r\\n`) as `line too long`, up to 1 GiB' -r
complete -c ingest -l checkpoint -d 'Remember in PATH how far the input is committed; a rerun resumes there (see README)' -r -F
complete -c ingest -l checkpoint-bytes -d 'Commit at least every BYTES of output (tests use small values)' -r
complete -c ingest -l stats-json -d 'Write the run\'s counters as one JSON object to PATH (`-`: stderr) at the end' -r -F
complete -c ingest -l metrics-textfile -d 'Keep Prometheus metrics in PATH (node_exporter textfile format), every 10 s and at the end' -r -F
complete -c ingest -l progress -d 'Show a progress line on stderr: auto (only on a terminal), always or never' -r -f -a "auto\t'Only when stderr is a terminal'
always\t'Even when stderr is not a terminal'
never\t'Never'"
complete -c ingest -l retry-attempts -d 'Retries of a failing write before giving up' -r
complete -c ingest -l retry-initial-ms -d 'First retry delay in milliseconds (doubles each retry, with jitter)' -r
complete -c ingest -l retry-max-ms -d 'Longest retry delay in milliseconds' -r
complete -c ingest -l shutdown-timeout -d 'After SIGINT/SIGTERM, give up on the drain after SECS and exit 74' -r
complete -c ingest -l from -d 'Read the log file PATH instead of stdin; with --checkpoint, also the rotated files beside it that are not read yet (PATH.1, PATH.2.gz, PATH-20261204...), oldest first. PATH may be a glob (`*`, `?`, `[...]`, `**` for any directories; quote it) and --from may be given several times: every log they match, one after another. Or collect records from a JetStream stream: `nats://HOST[:PORT][,HOST[:PORT]...]/STREAM` (or `tls://...`; needs --consumer and --checkpoint)' -r -F
complete -c ingest -l exclude -d 'With --from GLOB: leave out the logs GLOB matches (may be given several times)' -r -F
complete -c ingest -l start-at -d 'With --from and a --checkpoint not made yet: read the logs from their first line, or from their end (a host with a long backlog: only what is written from now on)' -r -f -a "first\t'Their first line'
end\t'Their end: rotated files are done with, the live log read from its last whole line on'"
complete -c ingest -l rescan -d 'With --follow and a glob: look each SECS at the logs in directories inotify cannot watch (NFS, SMB, FUSE: another machine\'s writes raise no event); local ones are read at once' -r
complete -c ingest -l max-open-files -d 'With --follow and a glob: hold at most N logs open at once. The reader has one open at a time; the others are the logs read last, kept open so that a deleted log\'s end is known (read to it: no loss) and closed once it is deleted, least recently read first past N' -r
complete -c ingest -l rotate-wait -d 'With --follow: once the program writes to the new file, read the rotated log on until it was quiet for SECS (lines a program writes late to it come out first), then the new file' -r
complete -c ingest -l consumer -d 'Collector: the durable pull consumer to read through (created when missing)' -r
complete -c ingest -l filter -d 'Collector: only messages on subjects matching SUBJECT (`logs.web.>`); for a new consumer' -r
complete -c ingest -l until-idle -d 'Collector: exit 0 once no new message arrived for SECS (for cron); default: run until SIGINT/SIGTERM' -r
complete -c ingest -l batch-bytes -d 'NATS: pack consecutive records into messages of at most BYTES (JSON Lines); 0: one record a message' -r
complete -c ingest -l create-stream -d 'NATS: create a file-storage stream NAME for the subject if no stream takes it' -r
complete -c ingest -l replicas -d 'NATS: replicas of a stream made by --create-stream' -r
complete -c ingest -l breaker-failures -d 'NATS: consecutive failures that open the circuit breaker (then one probe at a time)' -r
complete -c ingest -l sink-timeout -d 'NATS: give up (exit 69) once the server has been unavailable for SECS' -r
complete -c ingest -l nats-creds -d 'NATS: a credentials file (user JWT and seed); or set NATS_USER and NATS_PASSWORD, or NATS_TOKEN' -r -F
complete -c ingest -l nats-tls-ca -d 'NATS: trust this CA (PEM) for TLS, for servers with a private CA' -r -F
complete -c ingest -l nats-window -d 'NATS: most messages published and not yet acknowledged' -r
complete -c ingest -l ack-timeout -d 'NATS: seconds an acknowledgement may take before the message is sent again' -r
complete -c ingest -l generate -d 'Print the man page or a shell\'s completions to stdout, and exit' -r -f -a "man\t'The man page (roff): `ingest --generate man > ingest.1`'
complete-bash\t'Bash completions'
complete-zsh\t'Zsh completions'
complete-fish\t'Fish completions'"
complete -c ingest -l multiline -d 'Join lines that do not start a record (stack traces, DETAIL lines) to the record before them (see README, Multiline records)'
complete -c ingest -l continue-only -d 'With --checkpoint: read the input only if it continues the checkpoint\'s (a rotated file\'s unread tail); otherwise read nothing (see README, Rotation)'
complete -c ingest -l follow -d 'With --from: keep running at the end of the logs and read lines as they are appended, across rotations (rename and create, copytruncate), until SIGINT/SIGTERM; with a glob, logs that appear later are read too, from their first line'
complete -c ingest -s q -l quiet -d 'Print only errors (RUST_LOG overrides)'
complete -c ingest -s v -l verbose -d 'Print more: -v for each stage\'s report, -vv for everything (RUST_LOG overrides)'
complete -c ingest -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ingest -s V -l version -d 'Print version'

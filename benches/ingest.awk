# What a user would write instead of ingest: check the timestamp's shape, the severity and a
# non-empty message, then print like ingest's text format. (No calendar check: awk has none.)
BEGIN {
    split("TRACE DEBUG INFO WARN ERROR FATAL", names, " ")
    for (i in names) ok[names[i]] = names[i]
    ok["WARNING"] = "WARN"; ok["ERR"] = "ERROR"; ok["CRITICAL"] = "FATAL"; ok["CRIT"] = "FATAL"
}
{
    sub(/[ \t\r]+$/, "")
    if ($0 == "") next
    if ($1 !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][Tt][0-9][0-9]:[0-9][0-9]:[0-9][0-9]/) next
    sev = toupper($2)
    gsub(/^\[|\]$/, "", sev)
    if (!(sev in ok)) next
    msg = $0
    sub(/^[ \t]*[^ \t]+[ \t]+[^ \t]+[ \t]*/, "", msg)
    if (msg == "") next
    printf "%6d %5s %s\n", NR, ok[sev], msg
}

#!/usr/bin/env bash
# Outputs of two builds, byte for byte: bash benches/identity.sh BASE_BIN NEW_BIN
# Writes the corpora (examples/corpus.rs: 1M clean and dirty lines, 60 MB each of json, logfmt,
# python and multiline) into target/bench/identity/, then runs both builds on each corpus,
# examples/sample.log and every fixture in tests/fixtures/, with -f text and -f json, with and
# without --multiline, --rejects on, and compares OUTPUT, the rejects file and the exit code.
set -u
cd "$(dirname "$0")/.."
base=$1 new=$2
cargo build --release --quiet --example corpus
gen=${CARGO_TARGET_DIR:-target}/release/examples/corpus
d=${CARGO_TARGET_DIR:-target}/bench/identity
mkdir -p "$d/c"
[ -f "$d/c/clean.log" ] || "$gen" 1000000 clean > "$d/c/clean.log"
[ -f "$d/c/dirty.log" ] || "$gen" 1000000 dirty > "$d/c/dirty.log"
for k in json logfmt python multiline; do [ -f "$d/c/$k.log" ] || "$gen" 0 $k 60000000 > "$d/c/$k.log"; done
cp examples/sample.log "$d/c/sample.log"
for f in tests/fixtures/layouts/*.log tests/fixtures/*.log; do cp "$f" "$d/c/fx-$(basename "$f")"; done
fails=0 n=0
for c in "$d"/c/*.log; do
  for fmt in text json; do
    for ml in "" "--multiline"; do
      for b in base new; do
        bin=$base; [ $b = new ] && bin=$new
        rm -f "$d/$b.out" "$d/$b.rej"
        "$bin" -q $ml -f $fmt --rejects "$d/$b.rej" "$d/$b.out" < "$c" > /dev/null 2>&1; echo $? > "$d/$b.rc"
      done
      n=$((n + 1))
      for x in out rej rc; do
        if ! cmp -s "$d/base.$x" "$d/new.$x"; then echo "DIFF $(basename "$c") $fmt '$ml' $x"; fails=$((fails + 1)); fi
      done
    done
  done
done
echo "$n runs compared, $fails differences"
[ $fails -eq 0 ]

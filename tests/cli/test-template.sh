#!/bin/sh
# whittle-cli template: every shared chat template renders cases.json byte-exactly (cmp
# against <model>.expected), --now fixes the date, errors exit 1 naming line and column,
# usage errors exit 2.
# Usage: test-template.sh WHITTLE_CLI   (shared data from $WH_SHARED_DIR, else ../shared)
set -u
cli="$1"
here=$(cd "$(dirname "$0")" && pwd)
shared="${WH_SHARED_DIR:-$here/../../../shared}"
dir="$shared/chat-templates"
if [ ! -f "$dir/cases.json" ]; then
  echo "1..0 # SKIP shared chat templates missing: $dir"
  exit 77
fi
# The expected files print 2026-11-22 (cases.json says 2025-11-22): inject that date.
now=2026-11-22T08:00:00Z
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
pass=0
total=0
for t in "$dir"/*.jinja; do
  m=$(basename "$t" .jinja)
  total=$((total + 1))
  if "$cli" template -t "$t" -c "$dir/cases.json" --now "$now" >"$tmp/out" 2>"$tmp/err" &&
     cmp -s "$tmp/out" "$dir/$m.expected"; then
    pass=$((pass + 1))
  else
    echo "FAIL: $m: $(head -c 300 "$tmp/err")"
    cmp "$tmp/out" "$dir/$m.expected" | head -n 1
    fail=1
  fi
done
echo "ok: $pass of $total templates byte-exact"
[ "$total" -eq 35 ] || { echo "FAIL: expected 35 templates, found $total"; fail=1; }

check() { if [ "$1" != "$2" ]; then echo "FAIL: $3: got '$1', want '$2'"; fail=1; else echo "ok: $3"; fi; }

"$cli" template -t "$dir/Apertus-8B-Instruct.jinja" -c "$dir/cases.json" \
  --now 2030-01-02T03:04:05Z >"$tmp/out"
check "$?" 0 "--now renders"
grep -q "Current date: 2030-01-02" "$tmp/out"; check "$?" 0 "--now reaches strftime_now"

printf 'ok\n{%% for m in messages %%}\n{{ m.content }\n' >"$tmp/bad.jinja"
"$cli" template -t "$tmp/bad.jinja" -c "$dir/cases.json" >/dev/null 2>"$tmp/err"
check "$?" 1 "syntax error exits 1"
grep -q "line 3, column 14" "$tmp/err"; check "$?" 0 "syntax error names line and column"

"$cli" template -t "$dir/Apertus-8B-Instruct.jinja" >/dev/null 2>&1
check "$?" 2 "missing -c exits 2"
"$cli" template -t "$dir/Apertus-8B-Instruct.jinja" -c "$dir/cases.json" --now never \
  >/dev/null 2>&1
check "$?" 2 "bad --now exits 2"
"$cli" template -t "$tmp/missing.jinja" -c "$dir/cases.json" >/dev/null 2>&1
check "$?" 1 "missing template exits 1"
exit $fail

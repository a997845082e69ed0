#!/bin/sh
# whittle-cli basics: version, help, usage errors (exit 2, one-line error).
set -u
cli="$1"
fail=0
check() { if [ "$1" != "$2" ]; then echo "FAIL: $3: got '$1', want '$2'"; fail=1; else echo "ok: $3"; fi; }

out=$("$cli" --version); check "$out" "whittle-cli 0.1.0" "--version"
"$cli" --help >/dev/null; check "$?" 0 "--help exits 0"
"$cli" --help | grep -q '^Usage: whittle-cli COMMAND'; check "$?" 0 "--help prints usage"
"$cli" help >/dev/null; check "$?" 0 "help exits 0"

"$cli" frobnicate 2>/tmp/wh-cli-err.$$ >/dev/null; rc=$?
check "$rc" 2 "unknown command exits 2"
head -n1 /tmp/wh-cli-err.$$ | grep -q "unknown command 'frobnicate'"; check "$?" 0 "unknown command named"
grep -q '^Usage:' /tmp/wh-cli-err.$$; check "$?" 0 "unknown command prints usage"

"$cli" --bogus 2>/dev/null >/dev/null; check "$?" 2 "unknown option exits 2"
"$cli" 2>/dev/null >/dev/null; check "$?" 2 "no command exits 2"
"$cli" help frobnicate 2>/dev/null >/dev/null; check "$?" 2 "help of unknown command exits 2"

# Every listed command answers --help with exit 0 and an unknown option
# with exit 2.
for c in $("$cli" --help | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'); do
  [ "$c" = help ] && continue
  "$cli" help "$c" >/dev/null; check "$?" 0 "help $c"
  "$cli" "$c" --no-such-option 2>/dev/null >/dev/null; check "$?" 2 "$c rejects unknown option"
done
rm -f /tmp/wh-cli-err.$$
exit $fail

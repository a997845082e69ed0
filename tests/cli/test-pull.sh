#!/bin/sh
# whittle-cli search / files / pull against the local hub look-alike on 127.0.0.1:
# JSON shapes, REPO:QUANT, resume after SIGKILL at random points (sha256 checked), the
# full-disk path on a 1 MiB tmpfs (skipped when mounting is not permitted), offline mode.
set -u
cli="$1"
build=$(cd "$(dirname "$cli")/../.." && pwd)
shared="${WH_SHARED_DIR:-$(dirname "$0")/../../../shared}"
src="$shared/reference/models/synth-llama-F16.gguf"
[ -f "$src" ] || { echo "SKIP: shared data missing ($src)"; exit 77; }
if [ -x "$build/tests/hub-server/hub-server" ]; then
  server="$build/tests/hub-server/hub-server"
else
  server="$build/tests/engine/test-hub --serve"
fi
tmp=$(mktemp -d)
fail=0
check() { if [ "$1" != "$2" ]; then echo "FAIL: $3: got '$1', want '$2'"; fail=1; else echo "ok: $3"; fi; }

mkdir -p "$tmp/root/org/m-GGUF" "$tmp/root/org/small-GGUF"
ln -s "$src" "$tmp/root/org/m-GGUF/m-F16.gguf"
ln -s "$shared/reference/models/synth-llama-Q4_K_M.gguf" "$tmp/root/org/m-GGUF/m-Q4_K_M.gguf"
ln -s "$shared/models/stories260K.gguf" "$tmp/root/org/small-GGUF/stories260K-F32.gguf"
# 3 MB/s per connection: slow enough to be killed half-way.
$server "$tmp/root" --port-file "$tmp/port" --rate 3000000 >/dev/null 2>"$tmp/server.log" &
spid=$!
i=0; while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
cleanup() {
  kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
  mountpoint -q "$tmp/full" 2>/dev/null && umount "$tmp/full"
  rm -rf "$tmp"
}
trap cleanup EXIT
export HF_ENDPOINT=$(cat "$tmp/port") HF_HOME="$tmp/home"
# pull records its downloads in the library index: keep it in the temporary folder too.
export XDG_DATA_HOME="$tmp/data" XDG_CACHE_HOME="$tmp/cache"
unset HF_TOKEN HF_HUB_OFFLINE

# search and files
out=$("$cli" search GGUF --filter gguf --sort downloads --limit 1 --json)
check "$?" 0 "search --json exits 0"
echo "$out" | grep -q '"id" : "org/m-GGUF"'; check "$?" 0 "search finds the biggest repo first"
# Parameter range (the hub's num_parameters=min:..,max:..): stories260K 293K, synth 3.4M.
out=$("$cli" search --max-params 1M --json); check "$?" 0 "search --max-params exits 0"
echo "$out" | grep -q '"id" : "org/small-GGUF"'; check "$?" 0 "--max-params 1M keeps the small model"
echo "$out" | grep -q '"id" : "org/m-GGUF"'; check "$?" 1 "--max-params 1M drops the 3.4M model"
out=$("$cli" search --min-params 1.5M --json); check "$?" 0 "search --min-params exits 0"
echo "$out" | grep -q '"id" : "org/m-GGUF"'; check "$?" 0 "--min-params 1.5M keeps the 3.4M model"
echo "$out" | grep -q '"id" : "org/small-GGUF"'; check "$?" 1 "--min-params 1.5M drops the small model"
"$cli" search --min-params 7X 2>/dev/null >/dev/null; check "$?" 2 "a bad parameter count is a usage error"
"$cli" search --min-params 8B --max-params 1B 2>/dev/null >/dev/null; check "$?" 2 "an empty range is a usage error"
out=$("$cli" files org/m-GGUF --json); check "$?" 0 "files --json exits 0"
sha=$(sha256sum "$src" | cut -d' ' -f1)
echo "$out" | grep -q "\"sha256\" : \"$sha\""; check "$?" 0 "files lists the LFS sha256"
echo "$out" | grep -q '"quant" : "Q4_K_M"'; check "$?" 0 "files gives quant labels"
"$cli" files org/nope 2>/dev/null >/dev/null; check "$?" 1 "unknown repo exits 1"
"$cli" pull org/m-GGUF ../../etc/passwd 2>"$tmp/err" >/dev/null; check "$?" 1 "hostile file name exits 1"
grep -q "refusing file name" "$tmp/err"; check "$?" 0 "hostile file name explained"
"$cli" pull org/m-GGUF:Q9_9 2>"$tmp/err" >/dev/null; check "$?" 1 "unknown quant exits 1"
grep -q "available: F16, Q4_K_M" "$tmp/err"; check "$?" 0 "unknown quant lists the available ones"

# SIGKILL at random points, then resume: the result must be bit-exact.
blobs="$HF_HOME/hub/models--org--m-GGUF/blobs"
saw_partial=0
for n in 1 2 3 4 5 6; do
  seg=""; [ $((n % 2)) -eq 0 ] && seg="--segments 4"
  "$cli" pull org/m-GGUF m-F16.gguf $seg --quiet >/dev/null 2>&1 &
  pid=$!
  delay=$(awk -v s="$$$n" 'BEGIN { srand(s); printf "%.2f", 0.15 + rand() * 0.6 }')
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  [ -f "$blobs/$sha.incomplete" ] && saw_partial=1
done
check "$saw_partial" 1 "a partial file was left by a kill"
path=$("$cli" pull org/m-GGUF m-F16.gguf --quiet); check "$?" 0 "pull after kills exits 0"
got=$(sha256sum "$path" | cut -d' ' -f1)
check "$got" "$sha" "resumed file sha256"
[ -e "$blobs/$sha.incomplete" ]; check "$?" 1 "no partial file left"
[ -L "$path" ]; check "$?" 0 "snapshot entry is a symlink into blobs"
check "$(cat "$HF_HOME/hub/models--org--m-GGUF/refs/main")" \
      "$(basename "$(dirname "$path")")" "refs/main names the snapshot commit"

# REPO:QUANT
path=$("$cli" pull org/m-GGUF:q4_k_m --quiet); check "$?" 0 "pull REPO:QUANT exits 0"
check "$(basename "$path")" "m-Q4_K_M.gguf" "pull REPO:QUANT picks the file"

# Offline: the cached file is found, another is a clear error.
HF_HUB_OFFLINE=1 "$cli" pull org/m-GGUF m-F16.gguf --quiet >/dev/null; check "$?" 0 "offline pull of a cached file"
HF_HUB_OFFLINE=1 "$cli" pull org/small-GGUF stories260K-F32.gguf --quiet 2>"$tmp/err" >/dev/null
check "$?" 1 "offline pull of an uncached file fails"
grep -q "offline" "$tmp/err"; check "$?" 0 "offline failure explained"

# Full disk: a 1 MiB tmpfs as HF_HOME, a 1.2 MB file.
mkdir -p "$tmp/full"
if mount -t tmpfs -o size=1m whittle-test "$tmp/full" 2>/dev/null; then
  HF_HOME="$tmp/full" "$cli" pull org/small-GGUF stories260K-F32.gguf --quiet 2>"$tmp/err" >/dev/null
  check "$?" 1 "full disk exits 1"
  grep -q "not enough disk space: need .* have .* in $tmp/full" "$tmp/err"; check "$?" 0 "full disk explained"
  ls "$tmp/full/hub/models--org--small-GGUF/blobs" 2>/dev/null | grep -v incomplete | grep -q .
  check "$?" 1 "nothing half-written in blobs/"
  umount "$tmp/full"
else
  echo "SKIP: full-disk check (cannot mount a tmpfs here)"
fi
exit $fail

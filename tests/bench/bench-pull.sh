#!/bin/sh
# bench-pull.sh BUILDDIR [SIZE_MB] — throughput of `whittle-cli pull` against curl, both from
# the local hub look-alike on 127.0.0.1 serving the same random file (single stream, and 4
# parallel Range segments). Every pull includes the sha256 check and the move into the HF
# cache; curl only writes the bytes. Prints MB/s for each.
set -eu
build=$(cd "${1:?usage: bench-pull.sh BUILDDIR [SIZE_MB]}" && pwd)
size_mb=${2:-256}
cli="$build/app/cli/whittle-cli"
if [ -x "$build/tests/hub-server/hub-server" ]; then
  server="$build/tests/hub-server/hub-server"
else
  server="$build/tests/engine/test-hub --serve"
fi
tmp=$(mktemp -d)
trap 'kill $spid 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/bench/big-GGUF"
head -c $((size_mb * 1048576)) /dev/urandom > "$tmp/root/bench/big-GGUF/big-Q4_0.gguf"
$server "$tmp/root" --port-file "$tmp/port" >/dev/null 2>&1 &
spid=$!
while [ ! -s "$tmp/port" ]; do sleep 0.05; done
url=$(cat "$tmp/port")
now() { date +%s.%N; }
rate() { awk -v s="$1" -v e="$2" -v mb="$size_mb" 'BEGIN { printf "%7.1f MB/s (%.2f s)", mb * 1.048576 / (e - s), e - s }'; }

for seg in 1 4; do
  rm -rf "$tmp/home"
  t0=$(now)
  HF_ENDPOINT=$url HF_HOME="$tmp/home" "$cli" pull bench/big-GGUF big-Q4_0.gguf --segments $seg --quiet >/dev/null
  t1=$(now)
  echo "whittle-cli pull, $seg segment(s): $(rate "$t0" "$t1")"
done

resolve="$url/bench/big-GGUF/resolve/main/big-Q4_0.gguf"
t0=$(now)
curl -sSL -o "$tmp/curl.bin" "$resolve"
t1=$(now)
echo "curl, 1 stream:                 $(rate "$t0" "$t1")"

total=$((size_mb * 1048576))
t0=$(now)
pids=""
for i in 0 1 2 3; do
  a=$((total * i / 4)); b=$((total * (i + 1) / 4 - 1))
  curl -sSL -r "$a-$b" -o "$tmp/part$i" "$resolve" &
  pids="$pids $!"
done
wait $pids
cat "$tmp/part0" "$tmp/part1" "$tmp/part2" "$tmp/part3" > "$tmp/curl4.bin"
t1=$(now)
echo "curl, 4 ranges + cat:           $(rate "$t0" "$t1")"
t0=$(now)
sha256sum "$tmp/curl.bin" >/dev/null
t1=$(now)
echo "sha256sum of the file alone:    $(rate "$t0" "$t1")"
cmp -s "$tmp/curl.bin" "$tmp/curl4.bin" || echo "warning: curl range download differs"

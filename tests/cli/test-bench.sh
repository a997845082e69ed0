#!/bin/sh
# whittle-cli bench: the output shape (JSON keys, positive figures) of the generation benchmark
# on stories260K and of the quantization benchmark on a tiny synthesized model; not speed.
set -u
cli="$1"
shared="${WH_SHARED_DIR:-$(dirname "$0")/../../../shared}"
fail=0
if [ ! -f "$shared/models/stories260K.gguf" ]; then
  echo "SKIP: shared test data missing: $shared/models"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { if [ "$1" = 0 ]; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
# value of a numeric JSON member "key" : value (first occurrence)
num() { sed -n "s/^ *\"$1\" *: *\\([-0-9.eE+]*\\),*\$/\\1/p" "$2" | head -n 1; }
positive() { awk -v v="$1" 'BEGIN { exit !(v + 0 > 0) }'; }

m="$shared/models/stories260K.gguf"
"$cli" bench -m "$m" -p 16 -n 8 -r 2 -t 2 --bandwidth-mib 64 --bandwidth-runs 2 --json \
  >"$tmp/gen.json" 2>"$tmp/gen.err"
check $? "bench -m stories260K --json"
for k in prompt_tokens_per_s gen_tokens_per_s bytes_per_token memory_bandwidth_bytes_per_s \
         roofline_tokens_per_s roofline_percent roofline_percent_per_rep_median weight_bytes; do
  v=$(num "$k" "$tmp/gen.json")
  positive "$v"
  check $? "$k is a positive number ($v)"
done
[ "$(num threads "$tmp/gen.json")" = 2 ] && [ "$(num prompt_tokens "$tmp/gen.json")" = 16 ] &&
  [ "$(num gen_tokens "$tmp/gen.json")" = 8 ]
check $? "threads, prompt and generation sizes echoed"
# a decode step reads at most the whole model and at least its layers
awk -v b="$(num bytes_per_token "$tmp/gen.json")" -v w="$(num weight_bytes "$tmp/gen.json")" \
  'BEGIN { exit !(b <= w && b > w / 2) }'
check $? "bytes per token within the model's weights"
# roofline = bandwidth / bytes per token; percent = generation / roofline
awk -v bw="$(num memory_bandwidth_bytes_per_s "$tmp/gen.json")" \
  -v b="$(num bytes_per_token "$tmp/gen.json")" -v r="$(num roofline_tokens_per_s "$tmp/gen.json")" \
  -v g="$(num gen_tokens_per_s "$tmp/gen.json")" -v p="$(num roofline_percent "$tmp/gen.json")" \
  'function rel(a, b) { return (a > b ? a - b : b - a) / b }
   BEGIN { exit !(rel(bw / b, r) < 1e-6 && rel(100 * g / r, p) < 1e-6) }'
check $? "roofline and percentage consistent"

"$cli" bench -m "$m" -p 8 -n 4 -r 1 -t 1 --bandwidth-mib 16 >"$tmp/gen.txt" 2>&1
check $? "bench text output"
for l in '^prompt: ' '^generation: ' '^weights read per generated token: ' \
         '^memory read bandwidth: ' '^roofline: '; do
  grep -q "$l" "$tmp/gen.txt"
  check $? "text has '$l'"
done

TMPDIR="$tmp" "$cli" bench quantize --synth --vocab "$m" --n-embd 128 --n-layer 1 --n-ff 256 \
  --types Q8_0,Q4_K_M,IQ4_XS -t 1,2 --json >"$tmp/q.json" 2>"$tmp/q.err"
check $? "bench quantize --synth --json"
n=$(grep -c '"mb_per_s" *:' "$tmp/q.json")
[ "$n" = 6 ]
check $? "one result per type and thread count ($n)"
bad=$(sed -n 's/^ *"mb_per_s" *: *\([-0-9.eE+]*\).*/\1/p' "$tmp/q.json" |
  awk '!($1 > 0) { n++ } END { print n + 0 }')
[ "$bad" = 0 ]
check $? "every MB/s is positive"
grep -q '"type" : "IQ4_XS"' "$tmp/q.json"
check $? "IQ4_XS listed"
[ -z "$(ls -d "$tmp"/whittle-bench-* 2>/dev/null)" ]
check $? "temporary folder removed"

"$cli" bench kernels --types Q4_K,Q8_0 -t 1,2 --stream-mib 64 --runs 1 --json \
  >"$tmp/k.json" 2>"$tmp/k.err"
check $? "bench kernels --json"
# per type, thread count and mode (warm, stream): the per-row kernel, plus the multi-row one
# where the CPU has it
n=$(grep -c '"gb_per_s" *:' "$tmp/k.json")
[ "$n" -ge 8 ] && [ "$n" -le 16 ]
check $? "8 to 16 kernel results ($n)"
bad=$(sed -n 's/^ *"gb_per_s" *: *\([-0-9.eE+]*\).*/\1/p' "$tmp/k.json" |
  awk '!($1 > 0) { n++ } END { print n + 0 }')
[ "$bad" = 0 ]
check $? "every GB/s is positive"
[ "$(grep -c '"path" : "row"' "$tmp/k.json")" = 8 ]
check $? "the per-row path of both types, both thread counts, warm and stream"
"$cli" bench kernels --types Q9_9 2>/dev/null
check $(($? == 2 ? 0 : 1)) "bench kernels: unknown type is a usage error"

"$cli" bench quantize --synth 2>/dev/null
check $(($? == 2 ? 0 : 1)) "--synth without --vocab is a usage error"
"$cli" bench quantize -m "$m" --types Q9_9 2>/dev/null
check $(($? == 2 ? 0 : 1)) "unknown type is a usage error"
"$cli" bench 2>/dev/null
check $(($? == 2 ? 0 : 1)) "bench without -m is a usage error"
exit $fail

#!/bin/sh
# bench-generate.sh BUILDDIR [THREADS] [KEEPDIR] — generation speed against the memory roofline
# on a ~1B-parameter llama (n-embd 2048, 16 layers, n-ff 5632, the 32000-token llama-spm vocab):
# synthesizes it in F16, quantizes it to Q4_K_M and Q8_0 with `whittle-cli quantize`, then runs
# `whittle-cli bench` on each (prompt 512, generation 128, 3 repetitions). Issue 4 asks for
# >= 80% of the roofline with 2 threads. The models are written to KEEPDIR when given (and
# reused by later runs), otherwise to a temporary folder deleted at the end (~3.5 GB).
# Prints the load average too: the figures only mean something on an idle machine.
set -eu
build=$(cd "${1:?usage: bench-generate.sh BUILDDIR [THREADS] [KEEPDIR]}" && pwd)
threads=${2:-2}
cli="$build/app/cli/whittle-cli"
shared="${WH_SHARED_DIR:-$(dirname "$0")/../../../shared}"
if [ -n "${3:-}" ]; then
  dir=$3; mkdir -p "$dir"
else
  dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fi
f16="$dir/synth-1b-F16.gguf"
[ -s "$f16" ] || "$cli" synth -q --vocab "$shared/vocab/ggml-vocab-llama-spm.gguf" \
  --n-embd 2048 --n-layer 16 --n-ff 5632 --n-head 32 --n-head-kv 8 -o "$f16"
for t in Q4_K_M Q8_0; do
  [ -s "$dir/synth-1b-$t.gguf" ] || "$cli" quantize -q "$f16" "$dir/synth-1b-$t.gguf" "$t"
done
echo "uptime: $(uptime)"
for t in Q4_K_M Q8_0; do
  echo "== $t, $threads threads: $cli bench -m $dir/synth-1b-$t.gguf -p 512 -n 128 -t $threads"
  "$cli" bench -m "$dir/synth-1b-$t.gguf" -p 512 -n 128 -r 3 -t "$threads"
done

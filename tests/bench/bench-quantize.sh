#!/bin/sh
# bench-quantize.sh BUILDDIR [TYPES] [THREADS] — quantization speed (MB/s of F16 input) of
# `whittle-cli bench quantize` on a ~1B-parameter llama synthesized in F16 (n-embd 2048,
# 16 layers, n-ff 5632, the 32000-token llama-spm vocab; 2.2 GB in a temporary folder, deleted
# at the end). IQ4_XS runs without an importance matrix (it does not need one); pass
# IMATRIX=FILE in the environment to use one for every type.
set -eu
build=$(cd "${1:?usage: bench-quantize.sh BUILDDIR [TYPES] [THREADS]}" && pwd)
types=${2:-Q8_0,Q4_0,Q4_K_M,IQ4_XS}
threads=${3:-1,2}
cli="$build/app/cli/whittle-cli"
shared="${WH_SHARED_DIR:-$(dirname "$0")/../../../shared}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$cli" synth -q --vocab "$shared/vocab/ggml-vocab-llama-spm.gguf" \
  --n-embd 2048 --n-layer 16 --n-ff 5632 --n-head 32 --n-head-kv 8 -o "$dir/synth-1b-F16.gguf"
echo "uptime: $(uptime)"
echo "$cli bench quantize -m synth-1b-F16.gguf --types $types -t $threads"
"$cli" bench quantize -m "$dir/synth-1b-F16.gguf" --types "$types" -t "$threads" \
  ${IMATRIX:+--imatrix "$IMATRIX"}

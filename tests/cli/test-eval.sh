#!/bin/sh
# whittle-cli perplexity / imatrix: --save-logits then --kl-divergence on stories260K (a model
# against itself gives KLD 0 and the same top token everywhere; the reference's Q4_0 gives a
# positive KLD), the last line stays `PPL = <value> +/- <err>`, mismatches exit 1 with a
# message; imatrix -o writes a GGUF imatrix that inspect reads and quantize --imatrix takes.
# Few chunks, so it stays quick under the sanitizers.
set -u
cli="$1"
shared="${WH_SHARED_DIR:-$(dirname "$0")/../../../shared}"
fail=0
stories="$shared/models/stories260K.gguf"
q4="$shared/reference/models/stories260K-Q4_0.gguf"
synth="$shared/reference/models/synth-llama-F16.gguf"
for f in "$stories" "$q4" "$synth" "$shared/reference/eval.txt" "$shared/reference/calib.txt"; do
  if [ ! -f "$f" ]; then echo "SKIP: shared test data missing: $f"; exit 77; fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fail=1; }
ppl_line='^PPL = [0-9]+\.[0-9]{4} \+/- [0-9]+\.[0-9]{5}$'

# base run: saves the logits, prints the PPL line last
if "$cli" perplexity -m "$stories" -f "$shared/reference/eval.txt" -c 128 --chunks 4 -t 1 \
     --save-logits "$tmp/base.logits" >"$tmp/base.out" 2>"$tmp/base.err" &&
   tail -n 1 "$tmp/base.out" | grep -Eq "$ppl_line" && [ -s "$tmp/base.logits" ]; then
  ok "perplexity --save-logits"
else bad "perplexity --save-logits"; cat "$tmp/base.err"; fi
# 32-byte header + 12*128 token ids + 12*63 rows of 512 half floats
size=$(wc -c <"$tmp/base.logits")
if [ "$size" -eq $((32 + 4 * 128 * 4 + 4 * 63 * 512 * 2)) ]; then ok "logits file size"
else bad "logits file size $size"; fi
if [ -z "$(find "$tmp" -name 'base.logits.*')" ]; then ok "no temporary file left"
else bad "temporary file left behind"; fi

# the model against itself
if "$cli" perplexity -m "$stories" -f "$shared/reference/eval.txt" --kl-divergence \
     "$tmp/base.logits" >"$tmp/self.out" 2>"$tmp/self.err"; then
  if grep -Eq '^Mean    KLD: +0\.0000[0-9]{2} ' "$tmp/self.out" &&
     grep -q '^Same top p : 100.000' "$tmp/self.out" &&
     [ "$(tail -n 1 "$tmp/self.out")" = "$(tail -n 1 "$tmp/base.out")" ]; then
    ok "KLD of the model against itself is 0"
  else bad "self KLD"; cat "$tmp/self.out"; fi
else bad "perplexity --kl-divergence (self)"; cat "$tmp/self.err"; fi

# the reference's Q4_0 against the F32 base
if "$cli" perplexity -m "$q4" -f "$shared/reference/eval.txt" --kl-divergence \
     "$tmp/base.logits" >"$tmp/q4.out" 2>"$tmp/q4.err" &&
   tail -n 1 "$tmp/q4.out" | grep -Eq "$ppl_line"; then
  kld=$(sed -n 's/^Mean    KLD: *\([0-9.]*\) .*/\1/p' "$tmp/q4.out")
  if awk -v k="$kld" 'BEGIN { exit !(k > 0.001 && k < 1) }'; then ok "Q4_0 KLD $kld"
  else bad "Q4_0 KLD '$kld'"; cat "$tmp/q4.out"; fi
else bad "perplexity --kl-divergence (Q4_0)"; cat "$tmp/q4.err"; fi

# a different chunk size, a damaged file
"$cli" perplexity -m "$q4" -f "$shared/reference/eval.txt" -c 64 --kl-divergence \
  "$tmp/base.logits" >/dev/null 2>"$tmp/err"
if [ $? -eq 1 ] && grep -q "same -c" "$tmp/err"; then ok "chunk size mismatch exits 1"
else bad "chunk size mismatch"; cat "$tmp/err"; fi
head -c 1000 "$tmp/base.logits" >"$tmp/short.logits"
"$cli" perplexity -m "$q4" -f "$shared/reference/eval.txt" --kl-divergence \
  "$tmp/short.logits" >/dev/null 2>"$tmp/err"
if [ $? -eq 1 ] && grep -q "short.logits" "$tmp/err"; then ok "truncated logits exit 1"
else bad "truncated logits"; cat "$tmp/err"; fi

# imatrix: write, inspect, use
if "$cli" imatrix -m "$synth" -f "$shared/reference/calib.txt" -c 128 --chunks 2 -t 1 \
     -o "$tmp/synth.imatrix.gguf" >"$tmp/im.out" 2>"$tmp/im.err" &&
   tail -n 1 "$tmp/im.out" | grep -Eq "$ppl_line"; then ok "imatrix -o"
else bad "imatrix -o"; cat "$tmp/im.err"; fi
if "$cli" inspect "$tmp/synth.imatrix.gguf" >"$tmp/inspect.out" 2>&1 &&
   grep -q 'general.type .*"imatrix"' "$tmp/inspect.out" &&
   grep -q 'imatrix.chunk_count .* 2$' "$tmp/inspect.out" &&
   grep -q 'imatrix.chunk_size .* 128$' "$tmp/inspect.out" &&
   grep -q 'imatrix.datasets .*"calib.txt"' "$tmp/inspect.out" &&
   grep -q '^tensors: *56 ' "$tmp/inspect.out" &&
   grep -Eq 'blk\.3\.ffn_down\.weight\.in_sum2 +\[768\]' "$tmp/inspect.out"; then
  ok "inspect reads the imatrix"
else bad "inspect imatrix"; cat "$tmp/inspect.out"; fi
# the quantizer takes it: a plan for IQ2_XS (which requires one) and a real Q4_0 run
if "$cli" quantize --dry-run --imatrix "$tmp/synth.imatrix.gguf" "$synth" IQ2_XS \
     >"$tmp/plan.out" 2>"$tmp/q.err" &&
   "$cli" quantize -q -t 1 --imatrix "$tmp/synth.imatrix.gguf" "$synth" "$tmp/q4.gguf" Q4_0 \
     >/dev/null 2>>"$tmp/q.err" && [ -s "$tmp/q4.gguf" ]; then ok "quantize --imatrix"
else bad "quantize --imatrix"; cat "$tmp/q.err"; fi

"$cli" imatrix -m "$synth" -f "$shared/reference/calib.txt" >/dev/null 2>&1
if [ $? -eq 2 ]; then ok "imatrix without -o exits 2"; else bad "imatrix without -o"; fi
exit $fail

#!/bin/sh
# whittle-cli tokenize: the output must equal the shared .out files byte for byte (one line
# of ids per string of the .inp file, no BOS, special tokens not parsed); usage errors exit 2.
set -u
cli="$1"
shared="${WH_SHARED_DIR:-$(dirname "$0")/../../../shared}"
fail=0
if [ ! -d "$shared/vocab" ]; then
  echo "SKIP: shared test data missing: $shared/vocab"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for v in llama-spm phi-3 llama-bpe qwen2 gpt-2 falcon starcoder deepseek-llm; do
  f="$shared/vocab/ggml-vocab-$v.gguf"
  if "$cli" tokenize -m "$f" -f "$f.inp" >"$tmp/$v.out" 2>"$tmp/$v.err" &&
     cmp -s "$tmp/$v.out" "$f.out"; then
    echo "ok: tokenize $v"
  else
    echo "FAIL: tokenize $v"; head -n 3 "$tmp/$v.err"
    diff "$tmp/$v.out" "$f.out" | head -n 6
    fail=1
  fi
done

# stories260K with BOS and special tokens (the logits reference's prompt 0, spec §7.3).
printf 'Once upon a time\n__ggml_vocab_test__\n' >"$tmp/p.txt"
out=$("$cli" tokenize -m "$shared/models/stories260K.gguf" -f "$tmp/p.txt" --add-special --parse-special)
if [ "$out" = " 1 403 407 261 378" ]; then echo "ok: stories260K prompt"; else
  echo "FAIL: stories260K prompt: got '$out'"; fail=1; fi

"$cli" tokenize -f "$tmp/p.txt" 2>/dev/null >/dev/null
if [ $? -eq 2 ]; then echo "ok: missing -m exits 2"; else echo "FAIL: missing -m"; fail=1; fi
"$cli" tokenize -m "$tmp/nonexistent.gguf" -f "$tmp/p.txt" 2>"$tmp/err" >/dev/null
if [ $? -eq 1 ] && grep -q "nonexistent.gguf" "$tmp/err"; then echo "ok: bad model exits 1"
else echo "FAIL: bad model"; fail=1; fi
exit $fail

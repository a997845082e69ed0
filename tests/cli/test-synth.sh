#!/bin/sh
# whittle-cli synth: for each of the six architectures, a model synthesized at the shared synth
# models' sizes has exactly their tensors (name, shape, type) and architecture keys, is
# deterministic for a seed, and a tiny one loads and generates (decode crossing gemma's window).
set -u
cli="$1"
shared="${WH_SHARED_DIR:-$(dirname "$0")/../../../shared}"
fail=0
if [ ! -d "$shared/reference/models" ]; then
  echo "SKIP: shared test data missing: $shared/reference/models"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
vocab="$shared/models/stories260K.gguf"
check() { if [ "$1" = 0 ]; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
# name, shape and type of every tensor, from inspect's table
tensors() { "$cli" inspect "$1" | awk '/^tensors/ {on = 1; next} on && NF >= 6 && $1 ~ /^[0-9]+$/ {
  t = $2; for (i = 3; i <= NF - 2; i++) t = t " " $i; print t }' | sort; }
# architecture keys (not general.*, not tokenizer.*) with their values
keys() { "$cli" inspect "$1" | grep -E "^  $2\\." | awk '{print $1, $2}' | sort; }

for a in llama qwen2 qwen3 phi3 gemma2 gemma3; do
  ref="$shared/reference/models/synth-$a-F16.gguf"
  "$cli" synth -q --arch "$a" --vocab "$vocab" --n-embd 256 --n-layer 4 --n-ff 768 --n-head 4 \
    --n-head-kv 2 --n-ctx 2048 --n-swa 64 -o "$tmp/$a.gguf"
  check $? "synth $a"
  tensors "$ref" >"$tmp/$a.want"
  tensors "$tmp/$a.gguf" >"$tmp/$a.got"
  [ -s "$tmp/$a.want" ] && cmp -s "$tmp/$a.want" "$tmp/$a.got"
  check $? "$a: same tensors as synth-$a-F16.gguf"
  [ $? = 0 ] || diff "$tmp/$a.want" "$tmp/$a.got" | head -n 6
  # every key of the reference file is present (with the same type); ours may add defaults
  keys "$ref" "$a" >"$tmp/$a.kwant"
  keys "$tmp/$a.gguf" "$a" >"$tmp/$a.kgot"
  missing=$(comm -23 "$tmp/$a.kwant" "$tmp/$a.kgot")
  [ -s "$tmp/$a.kwant" ] && [ -z "$missing" ]
  check $? "$a: has every architecture key of the reference ($missing)"

  "$cli" synth -q --arch "$a" --vocab "$vocab" --n-embd 64 --n-layer 2 --n-ff 96 --n-head 4 \
    --n-head-kv 2 --n-swa 8 --seed 7 -o "$tmp/$a-tiny.gguf" &&
    "$cli" synth -q --arch "$a" --vocab "$vocab" --n-embd 64 --n-layer 2 --n-ff 96 --n-head 4 \
      --n-head-kv 2 --n-swa 8 --seed 7 -o "$tmp/$a-tiny2.gguf" &&
    cmp -s "$tmp/$a-tiny.gguf" "$tmp/$a-tiny2.gguf"
  check $? "$a: deterministic for a seed"
  "$cli" run -m "$tmp/$a-tiny.gguf" -p "Once upon a time" -n 20 --temp 0 -t 2 \
    >"$tmp/$a.out" 2>"$tmp/$a.err"
  rc=$?
  [ $rc = 0 ] && grep -q '^generation: 20 tokens' "$tmp/$a.err"
  check $? "$a: tiny model generates 20 tokens"
  [ $rc = 0 ] || head -n 3 "$tmp/$a.err"
done

"$cli" synth --arch gpt5 --vocab "$vocab" -o "$tmp/x.gguf" 2>"$tmp/err"
[ $? = 2 ] && grep -q "'gpt5' is not one of" "$tmp/err"
check $? "unknown architecture is a usage error"
"$cli" synth --vocab "$vocab" --n-embd 64 --n-head 4 --n-head-kv 2 --head-dim 7 -o "$tmp/x.gguf" 2>"$tmp/err"
[ $? = 2 ] && grep -q "even" "$tmp/err"
check $? "odd head size is a usage error"
exit $fail

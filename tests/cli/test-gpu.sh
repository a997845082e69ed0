#!/bin/sh
# whittle-cli --ngl / --device (Vulkan backend): greedy text on stories260K is the same with
# no layer, half the layers and everything on the GPU; auto, bad values, unknown devices and a
# CPU-only KV type behave as the help says. Skipped (77) without a Vulkan device.
set -u
cli="$1"
shared="${WH_SHARED_DIR:-$(dirname "$0")/../../../shared}"
model="$shared/models/stories260K.gguf"
fail=0
if [ ! -f "$model" ]; then
  echo "SKIP: shared test data missing: $model"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() { "$cli" run -m "$model" -p "Once upon a time" -n 24 --temp 0 "$@"; }
if ! run --ngl 6 >"$tmp/gpu6.out" 2>"$tmp/gpu6.err"; then
  if grep -q -i "vulkan" "$tmp/gpu6.err"; then
    echo "SKIP: no Vulkan device: $(head -n 1 "$tmp/gpu6.err")"
    exit 77
  fi
  echo "FAIL: run --ngl 6"; cat "$tmp/gpu6.err"; exit 1
fi
if grep -q "no Vulkan backend" "$tmp/gpu6.err"; then
  echo "SKIP: $(head -n 1 "$tmp/gpu6.err")"
  exit 77
fi
run --ngl 0 >"$tmp/cpu.out" 2>/dev/null
run --ngl 3 >"$tmp/gpu3.out" 2>/dev/null
for n in 3 6; do
  if [ -s "$tmp/cpu.out" ] && cmp -s "$tmp/cpu.out" "$tmp/gpu$n.out"; then
    echo "ok: --ngl $n generates the CPU's text"
  else
    echo "FAIL: --ngl $n text differs"; diff "$tmp/cpu.out" "$tmp/gpu$n.out" | head -n 4; fail=1
  fi
done

if run --ngl auto >"$tmp/auto.out" 2>"$tmp/auto.err" && cmp -s "$tmp/cpu.out" "$tmp/auto.out"; then
  echo "ok: --ngl auto"
else echo "FAIL: --ngl auto"; cat "$tmp/auto.err"; fail=1; fi

# The planner's device names work for the backend too: "vulkan" (the best Vulkan device),
# "vulkan:0"; "vulkan:99" does not exist.
for d in vulkan vulkan:0; do
  if run --ngl 6 --device "$d" >"$tmp/dev.out" 2>"$tmp/dev.err" && cmp -s "$tmp/cpu.out" "$tmp/dev.out"; then
    echo "ok: --device $d"
  else echo "FAIL: --device $d"; cat "$tmp/dev.err"; fail=1; fi
done
run --ngl 6 --device vulkan:99 >/dev/null 2>"$tmp/err"
if [ $? -eq 1 ] && grep -q "vulkan:99" "$tmp/err"; then echo "ok: --device vulkan:99 exits 1"
else echo "FAIL: --device vulkan:99"; cat "$tmp/err"; fail=1; fi

run --ngl lots >/dev/null 2>"$tmp/err"
if [ $? -eq 2 ] && grep -q "ngl" "$tmp/err"; then echo "ok: bad --ngl exits 2"
else echo "FAIL: bad --ngl"; fail=1; fi

run --ngl 6 --device no-such-gpu >/dev/null 2>"$tmp/err"
if [ $? -eq 1 ] && grep -q "no-such-gpu" "$tmp/err"; then echo "ok: unknown device exits 1"
else echo "FAIL: unknown device"; cat "$tmp/err"; fail=1; fi

if run --ngl 6 --kv-type q8_0 >/dev/null 2>"$tmp/err" && grep -q "^GPU: .*q8_0" "$tmp/err"; then
  echo "ok: q8_0 KV stays on the CPU and says so"
else echo "FAIL: q8_0 KV note"; cat "$tmp/err"; fail=1; fi
# perplexity on the GPU equals the CPU's to 1e-3 (4 chunks of 128 tokens)
ppl() { "$cli" perplexity -m "$model" -f "$shared/reference/eval.txt" -c 128 --chunks 4 "$@" 2>/dev/null |
  sed -n 's/^PPL = \([0-9.]*\).*/\1/p'; }
p0=$(ppl --ngl 0); p6=$(ppl --ngl 6)
if [ -n "$p0" ] && [ -n "$p6" ] && awk -v a="$p0" -v b="$p6" 'BEGIN { d = a - b; exit !(d < 1e-3 && d > -1e-3) }'; then
  echo "ok: perplexity --ngl 6 = $p6 (CPU $p0)"
else echo "FAIL: perplexity --ngl 6 = '$p6', CPU '$p0'"; fail=1; fi
exit $fail

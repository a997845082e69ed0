#!/bin/sh
# whittle-cli chat driven through a pipe: each greedy reply must equal `whittle-cli run --temp 0`
# on the prompt the chat rendered for that turn (saved with --save-prompt), turn 2 must reuse
# the KV cache (--stats), /regen must repeat the greedy reply, /reset and /system must change
# the prompt, and errors must be clear.
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
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fail=1; }

# The completion `run` gives for the prompt saved in file $1 (trailing newlines kept).
run_on() {
  p="$(cat "$1"; printf x)"
  "$cli" run -m "$model" --temp 0 -n 24 -t 1 -p "${p%x}" 2>/dev/null
}

chat() {
  "$cli" chat -m "$model" --temp 0 -n 24 -t 1 "$@"
}

# Turn 1 alone, then turns 1 and 2: the output is the replies, one newline after each.
printf 'Once upon a time\n' | chat --save-prompt "$tmp/p1.txt" >"$tmp/out1" 2>"$tmp/err1" ||
  bad "chat turn 1 exit status"
run_on "$tmp/p1.txt" >"$tmp/want1"
if cmp -s "$tmp/out1" "$tmp/want1"; then ok "turn 1 equals run on its prompt"; else
  bad "turn 1 differs from run"; diff "$tmp/out1" "$tmp/want1" | head -n 6; fi

printf 'Once upon a time\nLily went to the park.\n' |
  chat --stats --save-prompt "$tmp/p2.txt" >"$tmp/out2" 2>"$tmp/err2" || bad "chat turn 2 exit status"
{ cat "$tmp/want1"; run_on "$tmp/p2.txt"; } >"$tmp/want2"
if cmp -s "$tmp/out2" "$tmp/want2"; then ok "turn 2 equals run on the rendered conversation"; else
  bad "turn 2 differs from run"; diff "$tmp/out2" "$tmp/want2" | head -n 6; fi
if grep -q "Lily went to the park." "$tmp/p2.txt" && grep -q "Once upon a time" "$tmp/p2.txt"; then
  ok "turn 2 prompt holds the whole conversation"; else bad "turn 2 prompt"; fi

# --stats: turn 1 reuses nothing; turn 2 reuses at least all of turn 1's prompt tokens.
n1=$(sed -n 's/^prompt: \([0-9]*\) tokens (\([0-9]*\) reused.*/\1 \2/p' "$tmp/err2" | sed -n 1p)
n2=$(sed -n 's/^prompt: \([0-9]*\) tokens (\([0-9]*\) reused.*/\1 \2/p' "$tmp/err2" | sed -n 2p)
set -- $n1 $n2
if [ $# -eq 4 ] && [ "$2" -eq 0 ] && [ "$4" -ge "$1" ] && [ "$4" -lt "$3" ]; then
  ok "turn 2 reused $4 of $3 prompt tokens (turn 1 had $1)"
else
  bad "stats: '$n1' / '$n2'"; cat "$tmp/err2"
fi
if grep -q "tokens/s); stop: max-tokens; context [0-9]*/2048" "$tmp/err2"; then ok "stats line"
else bad "stats line"; cat "$tmp/err2"; fi

# Sampling with a seed: the first reply equals run with the same seed on the same prompt.
printf 'Once upon a time\n' | chat --temp 0.9 --seed 7 --save-prompt "$tmp/ps.txt" >"$tmp/outs" 2>/dev/null
p="$(cat "$tmp/ps.txt"; printf x)"
"$cli" run -m "$model" --temp 0.9 --seed 7 -n 24 -t 1 -p "${p%x}" >"$tmp/wants" 2>/dev/null
if cmp -s "$tmp/outs" "$tmp/wants"; then ok "seeded sampling equals run --seed"; else
  bad "seeded sampling differs from run"; diff "$tmp/outs" "$tmp/wants" | head -n 6; fi

# /regen repeats the greedy reply; /reset forgets; /system adds a system turn to the prompt.
printf 'Once upon a time\n/regen\n' | chat >"$tmp/out3" 2>/dev/null
{ cat "$tmp/want1" "$tmp/want1"; } >"$tmp/want3"
if cmp -s "$tmp/out3" "$tmp/want3"; then ok "/regen repeats the greedy reply"; else
  bad "/regen"; diff "$tmp/out3" "$tmp/want3" | head -n 6; fi
printf 'Lily went to the park.\n/reset\n/system Tell tales.\nOnce upon a time\n' |
  chat --save-prompt "$tmp/p4.txt" >/dev/null 2>&1
if ! grep -q "Lily" "$tmp/p4.txt" && grep -q "^<|im_start|>system" "$tmp/p4.txt" &&
   grep -q "Tell tales." "$tmp/p4.txt"; then ok "/reset and /system"; else
  bad "/reset and /system"; cat "$tmp/p4.txt"; fi
printf '/bogus\n/exit\nnot read\n' | chat >"$tmp/out5" 2>"$tmp/err5"
if [ $? -eq 0 ] && grep -q "Unknown command" "$tmp/err5" && [ ! -s "$tmp/out5" ]; then
  ok "unknown command and /exit"; else bad "unknown command and /exit"; fi

# A message longer than the context is refused clearly; the chat goes on and exits 1.
long=$(i=0; while [ $i -lt 60 ]; do printf 'the cat sat on the mat '; i=$((i + 1)); done)
printf '%s\nOnce upon a time\n' "$long" | chat -c 64 >"$tmp/out6" 2>"$tmp/err6"
st=$?
if [ $st -eq 1 ] && grep -q "larger context" "$tmp/err6" && [ -s "$tmp/out6" ]; then
  ok "too long a message: clear error, chat goes on"; else bad "too long a message ($st)"; cat "$tmp/err6"; fi

# --chat-template: a shared real template renders the prompt (system text folded in, as Gemma
# has no system role); --stop ends the reply before the stop text.
gemma="$shared/reference/models/synth-gemma2-F16.gguf"
tmpl="$shared/chat-templates/google-gemma-2-2b-it.jinja"
if [ -f "$gemma" ] && [ -f "$tmpl" ]; then
  printf 'Hello\n' | "$cli" chat -m "$gemma" --chat-template "$tmpl" --system "Be brief." \
    --temp 0 -n 8 -t 1 --save-prompt "$tmp/pg.txt" >/dev/null 2>&1
  printf '<s><start_of_turn>user\nBe brief.\nHello<end_of_turn>\n<start_of_turn>model\n' >"$tmp/wantg"
  if cmp -s "$tmp/pg.txt" "$tmp/wantg"; then ok "--chat-template renders the Gemma prompt"; else
    bad "--chat-template"; cat "$tmp/pg.txt"; fi
fi
stop=$(head -c 12 "$tmp/want1" | tail -c 3)
printf 'Once upon a time\n' | chat --stop "$stop" --stats >"$tmp/outp" 2>"$tmp/errp"
exp=$(awk -v s="$stop" '{ i = index($0, s); if (i) { print substr($0, 1, i - 1); exit } print }' "$tmp/want1")
if [ "$(cat "$tmp/outp")" = "$exp" ] && grep -q "stop: stop-string" "$tmp/errp"; then
  ok "--stop '$stop' ends the reply before it"; else bad "--stop '$stop'"; cat "$tmp/outp"; fi

# Ctrl+C (SIGINT) while a reply streams stops that reply, not the program: the next line is
# still read. synth-llama never stops on its own, so -n 0 lets it run to the context size.
synth="$shared/reference/models/synth-llama-F16.gguf"
if [ -f "$synth" ]; then
  mkfifo "$tmp/in"
  "$cli" chat -m "$synth" --temp 0 -n 0 -t 1 --stats <"$tmp/in" >"$tmp/out7" 2>"$tmp/err7" &
  pid=$!
  exec 3>"$tmp/in"
  printf 'Hello\n' >&3
  i=0
  while [ ! -s "$tmp/out7" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
  kill -INT $pid
  sleep 0.5
  printf '/exit\n' >&3
  exec 3>&-
  wait $pid
  st=$?
  if [ $st -eq 0 ] && grep -q "reply stopped" "$tmp/err7" && grep -q "stop: cancelled" "$tmp/err7"; then
    ok "SIGINT stops the reply, the chat goes on"; else bad "SIGINT ($st)"; cat "$tmp/err7"; fi
fi

# --ngl auto / all: the chat runs wherever the layers end up and says where (--stats).
for n in auto all; do
  printf 'Once upon a time\n' | chat --ngl "$n" --stats >"$tmp/outg" 2>"$tmp/errg"
  if [ $? -eq 0 ] && [ -s "$tmp/outg" ] && grep -q -E "^(Running on|[0-9]+ of [0-9]+ layers run on)" "$tmp/errg"
  then ok "--ngl $n"; else bad "--ngl $n"; cat "$tmp/errg"; fi
done
"$cli" chat -m "$model" --ngl -1 </dev/null >/dev/null 2>&1
if [ $? -eq 2 ]; then ok "--ngl -1 is a usage error"; else bad "--ngl -1"; fi

# Errors: missing model (exit 1, names the path), missing -m (exit 2).
"$cli" chat -m "$tmp/nonexistent.gguf" </dev/null >/dev/null 2>"$tmp/err"
if [ $? -eq 1 ] && grep -q "nonexistent.gguf" "$tmp/err"; then ok "missing model exits 1"
else bad "missing model"; cat "$tmp/err"; fi
"$cli" chat </dev/null >/dev/null 2>&1
if [ $? -eq 2 ]; then ok "missing -m exits 2"; else bad "missing -m"; fi
exit $fail

#!/bin/sh
# bench-chat.sh BUILDDIR [MODEL] [THREADS] — what KV prefix reuse saves in a conversation.
# Drives `whittle-cli chat --stats` through five turns (64 greedy tokens each) and prints, per
# turn, the prompt tokens, how many came from the cache and the time to first token; then
# times `whittle-cli run` on the last turn's rendered prompt, i.e. the same turn without
# reuse. Default model: the shared synth-llama-F16 (a random model: its replies re-tokenize
# differently, so reuse stops near the start of each reply; real models keep more).
# Prints the load average too: the figures only mean something on an idle machine.
set -eu
build=$(cd "${1:?usage: bench-chat.sh BUILDDIR [MODEL] [THREADS]}" && pwd)
shared="${WH_SHARED_DIR:-$(dirname "$0")/../../../shared}"
model=${2:-$shared/reference/models/synth-llama-F16.gguf}
threads=${3:-1}
cli="$build/app/cli/whittle-cli"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "uptime: $(uptime)"
echo "== $cli chat -m $model --temp 0 -n 64 -t $threads --stats (5 turns)"
printf '%s\n' "Tell me a story about a cat." "What did the cat eat?" "And then?" \
  "Where did it sleep?" "How does it end?" |
  "$cli" chat -m "$model" --temp 0 -n 64 -t "$threads" --stats \
    --system "You are a storyteller." --save-prompt "$tmp/prompt" 2>"$tmp/stats" >/dev/null
grep '^prompt:' "$tmp/stats" | sed 's/^/  with reuse: /'
p="$(cat "$tmp/prompt"; printf x)"
echo "== the last turn without reuse: $cli run -m $model --temp 0 -n 64 -t $threads -p <prompt>"
"$cli" run -m "$model" --temp 0 -n 64 -t "$threads" -p "${p%x}" 2>&1 >/dev/null |
  grep '^prompt:' | sed 's/^/  fresh:      /'

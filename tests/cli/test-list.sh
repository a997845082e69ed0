#!/bin/sh
# whittle-cli list: a file fetched with `pull` from the local hub look-alike is listed as
# Whittle's own download, another tool's HF cache file, an Ollama model and a --folder model
# are listed in place with header metadata; usage errors exit 2.
set -u
cli="$1"
build=$(cd "$(dirname "$cli")/../.." && pwd)
shared="${WH_SHARED_DIR:-$(dirname "$0")/../../../shared}"
shared=$(cd "$shared" 2>/dev/null && pwd) || { echo "SKIP: shared data missing"; exit 77; }
src="$shared/models/stories260K.gguf"
q4="$shared/reference/models/synth-llama-Q4_K_M.gguf"
q8="$shared/reference/models/synth-llama-Q8_0.gguf"
phi="$shared/reference/models/synth-phi3-F16.gguf"
for f in "$src" "$q4" "$q8" "$phi"; do
  [ -f "$f" ] || { echo "SKIP: shared data missing ($f)"; exit 77; }
done
if [ -x "$build/tests/hub-server/hub-server" ]; then
  server="$build/tests/hub-server/hub-server"
else
  server="$build/tests/engine/test-hub --serve"
fi
tmp=$(mktemp -d)
fail=0
check() { if [ "$1" != "$2" ]; then echo "FAIL: $3: got '$1', want '$2'"; fail=1; else echo "ok: $3"; fi; }

mkdir -p "$tmp/root/org/small-GGUF"
ln -s "$src" "$tmp/root/org/small-GGUF/stories260K-F32.gguf"
$server "$tmp/root" --port-file "$tmp/port" >/dev/null 2>"$tmp/server.log" &
spid=$!
i=0; while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
cleanup() { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export HF_ENDPOINT=$(cat "$tmp/port") HF_HOME="$tmp/home/hf" HOME="$tmp/home"
export XDG_DATA_HOME="$tmp/home/data" XDG_CACHE_HOME="$tmp/home/cache"
export OLLAMA_MODELS="$tmp/ollama"
unset HF_TOKEN HF_HUB_OFFLINE

# Nothing yet: an empty JSON array, a friendly line for the table.
out=$("$cli" list --json); check "$?" 0 "list --json on an empty machine exits 0"
check "$(echo "$out" | tr -d ' \n')" "[]" "empty library is an empty array"
"$cli" list 2>"$tmp/err" >/dev/null; check "$?" 0 "list on an empty machine exits 0"
grep -q "no models found" "$tmp/err"; check "$?" 0 "empty library explained"

# A pull is recorded as Whittle's own.
path=$("$cli" pull org/small-GGUF stories260K-F32.gguf --quiet); check "$?" 0 "pull exits 0"
grep -q "$path" "$XDG_DATA_HOME/whittle/downloads.json"; check "$?" 0 "pull recorded in the index"

# Another tool's file in the HF cache (snapshot link → blob).
repo="$HF_HOME/hub/models--other--synth"
mkdir -p "$repo/blobs" "$repo/refs" "$repo/snapshots/c0ffee"
ln -s "$q4" "$repo/blobs/etag1"
ln -s ../../blobs/etag1 "$repo/snapshots/c0ffee/synth-llama-Q4_K_M.gguf"
printf c0ffee > "$repo/refs/main"
# An Ollama model.
sha=$(sha256sum "$q8" | cut -d' ' -f1)
mkdir -p "$OLLAMA_MODELS/blobs" "$OLLAMA_MODELS/manifests/registry.ollama.ai/library/tiny"
ln -s "$q8" "$OLLAMA_MODELS/blobs/sha256-$sha"
printf '{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:%s","size":1}]}' \
  "$sha" > "$OLLAMA_MODELS/manifests/registry.ollama.ai/library/tiny/q8"
# A user folder with a model and a broken file.
mkdir -p "$tmp/mine/sub"
ln -s "$phi" "$tmp/mine/sub/phi.gguf"
printf 'not a gguf at all, really' > "$tmp/mine/broken.gguf"

out=$("$cli" list --json --folder "$tmp/mine"); check "$?" 0 "list --json exits 0"
echo "$out" > "$tmp/list.json"
n=$(echo "$out" | grep -c '"id" :'); check "$n" 5 "five entries"
echo "$out" | tr -d ' \n' | grep -q '"name":"stories260K-F32","source":"whittle","repo_id":"org/small-GGUF"'
check "$?" 0 "pulled file listed as source whittle with its repo"
echo "$out" | tr -d ' \n' | grep -q '"source":"hf-cache","repo_id":"other/synth","revision":"c0ffee"'
check "$?" 0 "other HF cache file listed as hf-cache"
echo "$out" | tr -d ' \n' | grep -q '"name":"tiny:q8","source":"ollama","repo_id":"library/tiny","revision":"q8"'
check "$?" 0 "Ollama model listed by name:tag"
echo "$out" | tr -d ' \n' | grep -q '"name":"phi","source":"folder"'
check "$?" 0 "folder model listed"
echo "$out" | grep -q '"architecture" : "phi3"'; check "$?" 0 "architecture from the header"
echo "$out" | grep -q '"quant" : "Q4_K_M"'; check "$?" 0 "quant from general.file_type"
echo "$out" | tr -d ' \n' | grep -q '"name":"broken".*"error":"[^"]*broken.gguf'
check "$?" 0 "broken file listed with an error naming it"
# Parameter count and context length equal what `inspect --json` reads from the same header.
if command -v python3 >/dev/null && "$cli" inspect --json "$phi" > "$tmp/inspect.json" 2>/dev/null; then
  want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["parameters"])' "$tmp/inspect.json")
  got=$(python3 -c 'import json,sys; print([e for e in json.load(open(sys.argv[1])) if e["name"]=="phi"][0]["n_params"])' "$tmp/list.json")
  check "$got" "$want" "n_params equals inspect's parameter count"
fi

# The table
out=$("$cli" list --quiet --folder "$tmp/mine"); check "$?" 0 "list exits 0"
echo "$out" | head -1 | grep -q "^NAME .*SOURCE .*ARCH .*PARAMS .*QUANT .*CTX .*SIZE"
check "$?" 0 "table header"
echo "$out" | grep -q "^tiny:q8 .*ollama .*llama .*Q8_0 .*2048"; check "$?" 0 "table row for the Ollama model"
echo "$out" | grep -q "^    ! .*broken.gguf"; check "$?" 0 "table shows the error line"

# rm: only Whittle's own download goes; the others are refused and stay.
"$cli" rm tiny:q8 --yes 2>"$tmp/err"; check "$?" 1 "rm of an Ollama model is refused"
grep -q "not downloaded by Whittle" "$tmp/err"; check "$?" 0 "the refusal says why"
grep -q "ollama rm" "$tmp/err"; check "$?" 0 "the refusal names the owning tool"
[ -e "$OLLAMA_MODELS/blobs/sha256-$sha" ]; check "$?" 0 "the Ollama blob is untouched"
"$cli" rm synth-llama-Q4_K_M --yes 2>/dev/null; check "$?" 1 "rm of another tool's HF file is refused"
[ -e "$repo/snapshots/c0ffee/synth-llama-Q4_K_M.gguf" ]; check "$?" 0 "the other tool's file is untouched"
"$cli" rm stories260K-F32 </dev/null 2>/dev/null; check "$?" 2 "rm without --yes and no terminal is a usage error"
"$cli" rm no-such-model --yes 2>/dev/null; check "$?" 1 "rm of an unknown model exits 1"
"$cli" rm stories260K-F32 --yes 2>"$tmp/err"; check "$?" 0 "rm of Whittle's own download exits 0"
[ -e "$path" ] || [ -L "$path" ]; check "$?" 1 "the snapshot entry is gone"
check "$(ls "$HF_HOME/hub/models--org--small-GGUF/blobs" | wc -l)" 0 "the blob is gone"
"$cli" list --json | grep -q '"stories260K-F32"'; check "$?" 1 "the model is no longer listed"

# Usage errors
"$cli" list --folder "$tmp/nope" 2>/dev/null; check "$?" 2 "missing --folder exits 2"
"$cli" list extra 2>/dev/null; check "$?" 2 "stray argument exits 2"
exit $fail

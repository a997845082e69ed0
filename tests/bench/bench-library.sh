#!/bin/sh
# bench-library.sh BUILDDIR [N] — how long `whittle-cli list` takes to describe a library: the
# shared data folder (72 GGUF files, vocabularies with 150k-token headers among them) plus N
# copies of a small model (default 200) in a user folder. "cold" has no metadata cache (every
# header is parsed; the files are in the page cache), "warm" is a rescan served from the cache
# keyed by (path, size, mtime). Prints the best of 3 runs for each.
set -eu
build=$(cd "${1:?usage: bench-library.sh BUILDDIR [N]}" && pwd)
n=${2:-200}
cli="$build/app/cli/whittle-cli"
shared=$(cd "${WH_SHARED_DIR:-$(dirname "$0")/../../../shared}" && pwd)
small="$shared/reference/models/stories260K-Q4_0.gguf"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/copies"
i=0
while [ $i -lt "$n" ]; do
  cp "$small" "$tmp/copies/model-$i.gguf"
  i=$((i + 1))
done
export HOME="$tmp/home" HF_HOME="$tmp/hf" XDG_CACHE_HOME="$tmp/cache" XDG_DATA_HOME="$tmp/data"
now() { date +%s.%N; }
run() { "$cli" list --quiet --json --folder "$shared" --folder "$tmp/copies" > "$tmp/out.json"; }
best() { awk 'BEGIN { m = 1e9 } { if ($1 < m) m = $1 } END { printf "%.3f s", m }'; }
cold=$(for k in 1 2 3; do rm -rf "$tmp/cache"; t0=$(now); run; t1=$(now); echo "$t1 - $t0" | bc; done | best)
warm=$(for k in 1 2 3; do t0=$(now); run; t1=$(now); echo "$t1 - $t0" | bc; done | best)
entries=$(grep -c '"id" :' "$tmp/out.json")
echo "library of $entries models: cold scan $cold, warm rescan $warm"

#!/bin/sh
# bench-mainloop.sh BUILDDIR [RUNS] [-- bench-mainloop options] — the longest main-loop gap of
# the GUI (issue 7: target < 16 ms) while a download, a quantization and a generation run at
# once in the app (tests/bench/bench-mainloop.c says what is measured and how). Runs under
# `xvfb-run -a` with the GUI tests' environment; by default synthesizes a ~230 MB F16 llama
# (n-embd 1024, 4 layers, n-ff 2816, llama-spm vocab) in a temporary folder, serves it from the
# local hub at ~25 MB/s (the download lasts ~9 s), quantizes the same file to Q4_K_M and
# generates 300 tokens with stories260K; RUNS times (default 3). Prints the load average too:
# the machine is shared and the figures are noisy. Extra arguments after -- go to the program
# (e.g. --json, --tokens N, --rate KIB, --download/--quantize/--model FILE; for causes: --idle 8
# = the same window without jobs, --no-popover, --threads N, --nice-workers 10, --no-sched-idle,
# --generate-only, --stacks, --gap-log FILE, --show-over MS to print the samples of shorter gaps
# too). Each gap over 16 ms is split into the main thread's time on a CPU, waiting for one and
# asleep (X round trips), from Linux's schedstat.
set -eu
build=$(cd "${1:?usage: bench-mainloop.sh BUILDDIR [RUNS] [-- OPTIONS]}" && pwd)
shift
runs=3
if [ $# -gt 0 ] && [ "$1" != "--" ]; then runs=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
shared=$(cd "${WH_SHARED_DIR:-$(dirname "$0")/../../../shared}" && pwd)
bench="$build/tests/bench/bench-mainloop"
cli="$build/app/cli/whittle-cli"
[ -x "$bench" ] || { echo "bench-mainloop.sh: $bench is not built (configure with the GUI)" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
model="$dir/synth-230M-F16.gguf"
"$cli" synth -q --vocab "$shared/vocab/ggml-vocab-llama-spm.gguf" \
  --n-embd 1024 --n-layer 4 --n-ff 2816 --n-head 16 --n-head-kv 4 -o "$model"

export WH_SHARED_DIR="$shared" GSETTINGS_SCHEMA_DIR="$build/data" GSETTINGS_BACKEND=memory \
  GDK_BACKEND=x11 GSK_RENDERER="${GSK_RENDERER:-cairo}" NO_AT_BRIDGE=1 ADW_DISABLE_PORTAL=1 \
  LC_ALL=C.UTF-8

i=1
while [ "$i" -le "$runs" ]; do
  echo "== run $i of $runs; uptime: $(uptime)"
  echo "$bench --download $model --rate 25600 --quantize $model $*"
  # Static functions in the samples' stacks are printed as binary(+0xOFFSET): name them.
  xvfb-run -a -s "-screen 0 1280x800x24" "$bench" --download "$model" --rate 25600 \
    --quantize "$model" "$@" |
    while IFS= read -r line; do
      case "$line" in
      *"bench-mainloop(+0x"*)
        off=${line##*bench-mainloop(+}
        off=${off%%)*}
        # A return address: the call is the byte before; the last line is the real function
        # when the code there was inlined.
        call=$(printf '0x%x' $((off - 1)))
        echo "$line  $(addr2line -f -i -p -s -e "$bench" "$call" | tail -n 1 | sed 's/ (inlined by) //')"
        ;;
      *) echo "$line" ;;
      esac
    done
  i=$((i + 1))
done

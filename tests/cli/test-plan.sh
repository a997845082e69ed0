#!/bin/sh
# whittle-cli plan / devices: `plan --json` equals `run --report-memory --json` field by field
# (free memory aside) for models x contexts x KV types; --remote plans from the header alone
# (bytes read checked) and gives the same numbers as the local file; usage errors; devices.
set -u
cli="$1"
build=$(cd "$(dirname "$cli")/../.." && pwd)
shared="${WH_SHARED_DIR:-$(dirname "$0")/../../../shared}"
models="$shared/reference/models"
[ -d "$models" ] || { echo "SKIP: shared data missing ($models)"; exit 77; }
models=$(cd "$models" && pwd) # absolute: the hub server's root links to it
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
tmp=$(mktemp -d)
spid=""
cleanup() {
  [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
check() { if [ "$1" != "$2" ]; then echo "FAIL: $3: got '$1', want '$2'"; fail=1; else echo "ok: $3"; fi; }

# Compares two memory reports: same keys and values everywhere except "free".
cat >"$tmp/same.py" <<'EOF'
import json, sys
try:
    a, b = (json.loads(open(p).readline()) for p in sys.argv[1:3])
except ValueError as e:
    print("not a JSON report: %s" % e)
    sys.exit(1)
def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if k != "free"}
    if isinstance(o, list):
        return [strip(v) for v in o]
    return o
want = ["n_gpu_layers", "n_ctx", "kv_type", "verdict", "devices"]
dev = ["name", "kind", "weights", "kv_cache", "compute", "output", "overhead", "total", "free"]
for o in (a, b):
    assert list(o) == want, "top-level keys %s" % list(o)
    for d in o["devices"]:
        assert list(d) == dev, "device keys %s" % list(d)
        assert all(isinstance(d[k], int) and d[k] >= 0 for k in dev[2:]), d
        assert d["total"] == sum(d[k] for k in dev[2:7]), d
if strip(a) != strip(b):
    print("differ:\n  %s\n  %s" % (json.dumps(strip(a)), json.dumps(strip(b))))
    sys.exit(1)
EOF

n=0
# (Every model is compared in test-planner; here the shape and the two printers matter.)
for m in synth-gemma2-F16 stories260K-Q8_0; do
  f="$models/$m.gguf"
  [ -f "$f" ] || { echo "SKIP: $f missing"; continue; }
  for c in 128 2048; do
    for kv in f16 q8_0; do
      "$cli" plan -m "$f" -c $c --kv-type $kv -t 2 --json >"$tmp/plan.json" 2>"$tmp/err"
      rc=$?
      "$cli" run -m "$f" -p "Hello" -n 1 --temp 0 -c $c --kv-type $kv -t 2 --report-memory \
        --json >"$tmp/run.json" 2>>"$tmp/err"
      check "$rc/$?" "0/0" "$m ctx $c kv $kv: plan and run exit 0"
      python3 "$tmp/same.py" "$tmp/plan.json" "$tmp/run.json"
      check "$?" 0 "$m ctx $c kv $kv: plan --json == run --report-memory --json"
      n=$((n + 1))
    done
  done
done
[ $n -gt 0 ] || { echo "FAIL: no model compared"; fail=1; }

# The GPU split, on a real Vulkan device (lavapipe here) once run offloads.
gpu=$("$cli" devices --json | python3 -c 'import json,sys; print(next((d["name"] for d in json.load(sys.stdin)["devices"] if d["api"]=="vulkan"), ""))')
if [ -n "$gpu" ] && "$cli" help run 2>&1 | grep -q -- '--ngl'; then
  for m in synth-llama-Q8_0; do
    f="$models/$m.gguf"
    [ -f "$f" ] || continue
    for ngl in 2 5; do
      "$cli" plan -m "$f" -c 256 --ngl $ngl --device "$gpu" -t 2 --json >"$tmp/plan.json" 2>"$tmp/err"
      rc=$?
      "$cli" run -m "$f" -p "Hello" -n 1 --temp 0 -c 256 --ngl $ngl --device "$gpu" -t 2 \
        --report-memory --json >"$tmp/run.json" 2>>"$tmp/err"
      check "$rc/$?" "0/0" "$m --ngl $ngl on Vulkan: plan and run exit 0"
      python3 "$tmp/same.py" "$tmp/plan.json" "$tmp/run.json"
      check "$?" 0 "$m --ngl $ngl on Vulkan: plan --json == run --report-memory --json"
    done
  done
else
  echo "SKIP (GPU part): no Vulkan device, or run has no --ngl in this build"
fi

# The readable table.
f="$models/synth-llama-Q4_K_M.gguf"
out=$("$cli" plan -m "$f" -c 512)
check "$?" 0 "plan table exits 0"
echo "$out" | grep -q '^verdict   fits$'; check "$?" 0 "table ends with the verdict"
echo "$out" | grep -q '^CPU  *cpu '; check "$?" 0 "table has the CPU row"
out=$("$cli" plan -m "$f" --ngl auto --json)
check "$?" 0 "--ngl auto exits 0"
echo "$out" | python3 -c 'import json,sys; o=json.load(sys.stdin); assert o["verdict"] in ("fits","partial")'
check "$?" 0 "--ngl auto gives a verdict that fits"

# Usage errors (exit 2) and failures (exit 1).
"$cli" plan >/dev/null 2>&1; check "$?" 2 "no model: usage error"
"$cli" plan -m "$f" --ngl lots >/dev/null 2>&1; check "$?" 2 "bad --ngl: usage error"
"$cli" plan -m "$f" --kv-type q9 >/dev/null 2>&1; check "$?" 2 "bad --kv-type: usage error"
"$cli" plan -m "$f" --remote a/b c >/dev/null 2>&1; check "$?" 2 "-m with --remote: usage error"
"$cli" plan -m "$tmp/none.gguf" >/dev/null 2>"$tmp/err"; check "$?" 1 "missing file exits 1"
"$cli" plan -m "$f" --ngl 1 --device "no such device 42" >/dev/null 2>"$tmp/err"
check "$?" 1 "unknown device exits 1"
grep -q "no such device 42" "$tmp/err"; check "$?" 0 "unknown device is named in the error"

# devices
"$cli" devices --json >"$tmp/dev.json"; check "$?" 0 "devices --json exits 0"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["devices"]; assert d[0]["kind"]=="cpu" and d[0]["total"]>0' "$tmp/dev.json"
check "$?" 0 "devices lists the CPU first with its RAM"
"$cli" devices | grep -q '^cpu  *CPU '; check "$?" 0 "devices table lists the CPU"

# A GGUF splitter (two shards, half of the tensors each), for the split --remote check.
cat >"$tmp/split.py" <<'EOF'
import struct, sys
# gguf-split.py SRC PREFIX: writes PREFIX-00001-of-00002.gguf and PREFIX-00002-of-00002.gguf,
# half of the tensors each; metadata in the first, split.* keys in both (GGUF v3).
src, prefix = sys.argv[1], sys.argv[2]
b = open(src, "rb").read()
pos = 0
def take(fmt):
    global pos
    v = struct.unpack_from("<" + fmt, b, pos); pos += struct.calcsize("<" + fmt)
    return v[0] if len(v) == 1 else v
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def skip_value(t):
    global pos
    if t == 8:
        n = take("Q"); pos += n
    elif t == 9:
        et, n = take("I"), take("Q")
        for _ in range(n): skip_value(et)
    else:
        pos += SIZES[t]
assert b[:4] == b"GGUF" and struct.unpack_from("<I", b, 4)[0] == 3
pos = 8
n_t, n_kv = take("Q"), take("Q")
kv_start = pos
align = 32
for _ in range(n_kv):
    klen = take("Q"); key = b[pos:pos + klen]; pos += klen
    t = take("I")
    if key == b"general.alignment": align = struct.unpack_from("<I", b, pos)[0]
    skip_value(t)
kv_raw = b[kv_start:pos]
tensors = []
for _ in range(n_t):
    nlen = take("Q"); name = b[pos:pos + nlen]; pos += nlen
    nd = take("I"); ne = [take("Q") for _ in range(nd)]
    ty, off = take("I"), take("Q")
    tensors.append([name, ne, ty, off])
data_start = (pos + align - 1) // align * align
ends = sorted(t[3] for t in tensors)[1:] + [len(b) - data_start]
by_off = sorted(tensors, key=lambda t: t[3])
for t, e in zip(by_off, ends): t.append(e - t[3])  # size incl. padding
def kv(key, fmt, code, v):
    k = key.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<I", code) + struct.pack("<" + fmt, v)
half = n_t // 2
for k, part in enumerate((tensors[:half], tensors[half:])):
    extra = kv("split.no", "H", 2, k) + kv("split.count", "H", 2, 2) + kv("split.tensors.count", "i", 5, n_t)
    kvs = (kv_raw if k == 0 else b"") + extra
    n = (n_kv if k == 0 else 0) + 3
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(part), n) + kvs)
    off = 0
    for name, ne, ty, o, size in part:
        out += struct.pack("<Q", len(name)) + name + struct.pack("<I", len(ne))
        out += b"".join(struct.pack("<Q", x) for x in ne) + struct.pack("<IQ", ty, off)
        off += size
    out += b"\0" * ((-len(out)) % align)
    for name, ne, ty, o, size in part:
        out += b[data_start + o:data_start + o + size]
    open("%s-%05d-of-00002.gguf" % (prefix, k + 1), "wb").write(out)
EOF

# --remote: header only, same plan as the local file.
if [ -x "$build/tests/hub-server/hub-server" ]; then
  server="$build/tests/hub-server/hub-server"
else
  server="$build/tests/engine/test-hub --serve"
fi
src="$models/synth-llama-F16.gguf"
mkdir -p "$tmp/root/org/m-GGUF" "$tmp/root/org/split-GGUF"
ln -s "$src" "$tmp/root/org/m-GGUF/m-F16.gguf"
python3 "$tmp/split.py" "$src" "$tmp/root/org/split-GGUF/m-F16"
$server "$tmp/root" --port-file "$tmp/port" >/dev/null 2>"$tmp/server.log" &
spid=$!
i=0; while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
if [ -s "$tmp/port" ]; then
  export HF_ENDPOINT=$(cat "$tmp/port") HF_HOME="$tmp/home"
  unset HF_TOKEN HF_HUB_OFFLINE
  "$cli" plan --remote org/m-GGUF m-F16.gguf -c 1024 -t 2 --json >"$tmp/remote.json" 2>"$tmp/err"
  check "$?" 0 "plan --remote exits 0"
  "$cli" plan -m "$src" -c 1024 -t 2 --json >"$tmp/local.json"
  python3 "$tmp/same.py" "$tmp/remote.json" "$tmp/local.json"
  check "$?" 0 "plan --remote == plan -m on the same file"
  bytes=$(sed -n 's/^header bytes read: //p' "$tmp/err")
  size=$(wc -c <"$src")
  echo "header bytes read: $bytes of $size"
  [ -n "$bytes" ] && [ "$bytes" -gt 0 ] && [ $((bytes * 8)) -lt "$size" ]
  check "$?" 0 "--remote read only the header (less than 1/8 of the file)"
  # A split model: any shard's name plans the whole model from every shard's header.
  "$cli" plan --remote org/split-GGUF m-F16-00002-of-00002.gguf -c 1024 -t 2 --json \
    >"$tmp/remote.json" 2>"$tmp/err"
  check "$?" 0 "plan --remote of a split model exits 0"
  python3 "$tmp/same.py" "$tmp/remote.json" "$tmp/local.json"
  check "$?" 0 "plan --remote of the split model == plan -m of the whole file"
  bytes=$(sed -n 's/^header bytes read: //p' "$tmp/err")
  echo "split header bytes read: $bytes of $size"
  [ -n "$bytes" ] && [ "$bytes" -gt 0 ] && [ $((bytes * 8)) -lt "$size" ]
  check "$?" 0 "--remote read only the shards' headers"
  "$cli" plan --remote org/m-GGUF nope.gguf >/dev/null 2>&1; check "$?" 1 "--remote missing file exits 1"
else
  echo "FAIL: the hub server did not start"; cat "$tmp/server.log"; fail=1
fi

exit $fail

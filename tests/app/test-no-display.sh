#!/bin/sh
# whittle without a display: exit status 1 and the one-line explanation on
# stderr, never a GTK warning or critical.
set -u
whittle=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT

env -u DISPLAY -u WAYLAND_DISPLAY -u GDK_BACKEND "$whittle" >/dev/null 2>"$out"
status=$?
if [ "$status" -ne 1 ]; then
  echo "FAIL: expected exit status 1 without a display, got $status"; cat "$out"; exit 1
fi
if ! grep -q "cannot open a display — run it inside a graphical session, or use whittle-cli" "$out"; then
  echo "FAIL: the message does not explain what to do:"; cat "$out"; exit 1
fi
if grep -qiE "critical|warning" "$out"; then
  echo "FAIL: GTK complained instead of (or besides) the message:"; cat "$out"; exit 1
fi
lines=$(wc -l <"$out")
if [ "$lines" -ne 1 ]; then
  echo "FAIL: expected one line on stderr, got $lines:"; cat "$out"; exit 1
fi

# --version works without a display.
env -u DISPLAY -u WAYLAND_DISPLAY "$whittle" --version >"$out" 2>&1 || {
  echo "FAIL: whittle --version failed without a display"; cat "$out"; exit 1; }
echo "ok: $(cat "$out")"

# Without its settings schema: exit 1 and say how to run it uninstalled.
empty=$(mktemp -d)
trap 'rm -f "$out"; rmdir "$empty"' EXIT
GSETTINGS_SCHEMA_DIR=$empty XDG_DATA_DIRS=$empty "$whittle" >/dev/null 2>"$out"
status=$?
if [ "$status" -ne 1 ] || ! grep -q "settings schema .* is not installed" "$out"; then
  echo "FAIL: without the schema expected exit 1 and an explanation, got $status:"; cat "$out"
  exit 1
fi
echo "ok: $(cat "$out")"

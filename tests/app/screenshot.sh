#!/bin/sh
# screenshot.sh — regenerate the committed screenshots in data/screenshots/
# from the app tests (tests/app/test-window.c renders every page under Xvfb;
# tests/app/test-browse.c the Browse, details, downloads and Library steps
# against the local hub look-alike).
#
#   tests/app/screenshot.sh [BUILD_DIR]     (default: _build)
#
# Use a build configured without -Ddevelopment=true, or the header bar shows
# the striped development style. Needs xvfb-run (packages xvfb, xauth) and
# fonts-cantarell for GNOME's font.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-"$src/_build"}
shots="$build/tests/app/screenshots"

rm -rf "$shots"
meson compile -C "$build" tests/app/test-window tests/app/test-browse tests/app/test-chat \
  tests/app/test-quantize tests/app/test-planner app/gui/whittle app/cli/whittle-cli
xvfb-run -a -s "-screen 0 1280x1024x24" meson test -C "$build" --print-errorlogs app-window app-browse \
  app-chat app-quantize app-planner

for name in browse library quantize chat planner jobs preferences \
    browse-results model-details library-models downloads; do
  cp "$shots/$name.png" "$src/data/screenshots/$name.png"
  echo "data/screenshots/$name.png"
done
# The Chat page with a conversation (test-chat.c) and the Quantize wizard (test-quantize.c).
cp "$shots/chat-branches.png" "$src/data/screenshots/chat-conversation.png"
cp "$shots/quantize-types.png" "$shots/quantize-results.png" "$src/data/screenshots/"
# The wizard's first step with Library models to choose from (test-quantize.c's user folder).
cp "$shots/quantize-source.png" "$src/data/screenshots/quantize.png"
echo "data/screenshots/chat-conversation.png quantize-types.png quantize-results.png quantize.png"
# The Planner with a model on a GPU that takes part of its layers (test-planner.c).
cp "$shots/planner-partial.png" "$src/data/screenshots/planner.png"
echo data/screenshots/planner.png

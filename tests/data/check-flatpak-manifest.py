#!/usr/bin/env python3
"""Checks the Flatpak manifest: valid JSON (as `python3 -m json.tool` would
parse it) with the fields flatpak-builder needs, a GNOME runtime, the app
built last with meson, and the permissions Whittle relies on."""
import json
import sys

path, app_id = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8") as f:
    m = json.load(f)

errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)

need(m.get("id") == app_id, f"id must be {app_id}, found {m.get('id')!r}")
need(m.get("runtime") == "org.gnome.Platform", "runtime must be org.gnome.Platform")
need(m.get("sdk") == "org.gnome.Sdk", "sdk must be org.gnome.Sdk")
need(str(m.get("runtime-version", "")).replace(".", "").isdigit(),
     "runtime-version must be a GNOME release such as \"44\"")
need(m.get("command") == "whittle", "command must be whittle")

args = m.get("finish-args", [])
for a in ("--share=network", "--share=ipc", "--socket=wayland", "--socket=fallback-x11",
          "--device=dri", "--filesystem=~/.cache/huggingface", "--filesystem=~/.ollama:ro",
          "--talk-name=org.freedesktop.secrets"):
    need(a in args, f"finish-args lacks {a}")

mods = m.get("modules", [])
need(isinstance(mods, list) and mods, "modules must be a non-empty list")
if mods:
    app = mods[-1]
    need(isinstance(app, dict) and app.get("name") == "whittle",
         "the last module must be whittle")
    if isinstance(app, dict):
        need(app.get("buildsystem") == "meson", "whittle must build with meson")
        need(any(o.startswith("-Dtests=") for o in app.get("config-opts", [])),
             "whittle config-opts should set -Dtests")
        need(app.get("sources"), "whittle needs sources")

for e in errors:
    print(e)
print(f"{path}: {len(errors)} problems")
sys.exit(1 if errors else 0)

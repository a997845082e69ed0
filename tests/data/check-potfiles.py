#!/usr/bin/env python3
"""Checks po/POTFILES against the tree: every listed file exists, and every
C file using gettext macros (_(), N_(), C_(), NC_(), g_dngettext()) and
every .ui file with translatable="yes" under app/ and engine/ is listed, so
`meson compile whittle-pot` never misses a string."""
import os
import re
import sys

root = sys.argv[1]
listed = []
with open(os.path.join(root, "po", "POTFILES"), encoding="utf-8") as f:
    for line in f:
        line = line.strip()
        if line and not line.startswith("#"):
            listed.append(line)

errors = []
for path in listed:
    if not os.path.isfile(os.path.join(root, path)):
        errors.append(f"po/POTFILES lists {path}, which does not exist: remove the line")

c_marker = re.compile(r"(?<![A-Za-z0-9_])(N_|_|C_|NC_|g_dngettext|ngettext)\(")
for top in ("app", "engine"):
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if name.endswith(".c"):
                with open(full, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                needs = c_marker.search(text) is not None
            elif name.endswith(".ui"):
                with open(full, encoding="utf-8", errors="replace") as f:
                    needs = 'translatable="yes"' in f.read()
            else:
                continue
            if needs and rel not in listed:
                errors.append(f"{rel} has translatable strings but is not in po/POTFILES: add it")

for e in errors:
    print(e)
print(f"{len(listed)} files listed, {len(errors)} problems")
sys.exit(1 if errors else 0)

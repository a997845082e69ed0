#!/usr/bin/env python3
"""gen-quant-tables.py — embed the block-format lookup tables in the engine.

The engine cannot read ../shared at run time, so the lookup tables that the
i-quant grids, sign tables, IQ4_NL and MXFP4 value sets are defined with are
compiled in. This script reads them from the shared spec file
format-tables.gguf (a tiny GGUF v3 parser below, stdlib only) and writes
engine/quant/quant-tables.c and quant-tables.h: one const array per tensor,
named after the tensor, holding the stored integers as unsigned bit patterns
(block-formats.md section 2), except the two signed value tables and
iq1s_grid, whose entries are read byte-wise as int8 by the dequantizers.

Usage: build-aux/gen-quant-tables.py [FORMAT_TABLES_GGUF [OUT_DIR]]
Defaults: ../shared/spec/format-tables.gguf and engine/quant (relative to the
source root, the parent of this script's folder).
"""

import os
import struct
import sys

GGUF_MAGIC = b"GGUF"
# GGUF value types (gguf-container.md): sizes of the fixed-size scalars.
SCALAR_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                  10: "<Q", 11: "<q", 12: "<d"}
GGUF_TYPE_STRING = 8
GGUF_TYPE_ARRAY = 9
# Tensor element types used by the table file (I8, I16, I32, I64): id -> (struct format, bits).
TENSOR_TYPES = {24: ("<b", 8), 25: ("<h", 16), 26: ("<i", 32), 27: ("<q", 64)}


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, fmt):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError("truncated file at offset %d" % self.pos)
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def string(self):
        n = self.take("<Q")
        if self.pos + n > len(self.data):
            raise ValueError("string of %d bytes past the end at offset %d" % (n, self.pos))
        s = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def value(self, vtype):
        if vtype in SCALAR_FORMATS:
            return self.take(SCALAR_FORMATS[vtype])
        if vtype == GGUF_TYPE_STRING:
            return self.string()
        if vtype == GGUF_TYPE_ARRAY:
            etype = self.take("<I")
            n = self.take("<Q")
            return [self.value(etype) for _ in range(n)]
        raise ValueError("unknown GGUF value type %d at offset %d" % (vtype, self.pos))


def read_gguf(path):
    """Returns (metadata dict, list of (name, type, ne, values))."""
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    if data[:4] != GGUF_MAGIC:
        raise ValueError("%s: not a GGUF file" % path)
    r.pos = 4
    version = r.take("<I")
    if version != 3:
        raise ValueError("%s: GGUF version %d, expected 3" % (path, version))
    n_tensors = r.take("<Q")
    n_kv = r.take("<Q")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.take("<I")
        ne = [r.take("<Q") for _ in range(n_dims)]
        ttype = r.take("<I")
        offset = r.take("<Q")
        infos.append((name, ttype, ne, offset))
    alignment = meta.get("general.alignment", 32)
    data_start = (r.pos + alignment - 1) // alignment * alignment
    tensors = []
    for name, ttype, ne, offset in infos:
        if ttype not in TENSOR_TYPES:
            raise ValueError("%s: tensor %s has unsupported type %d" % (path, name, ttype))
        fmt, _bits = TENSOR_TYPES[ttype]
        count = 1
        for d in ne:
            count *= d
        size = struct.calcsize(fmt)
        start = data_start + offset
        if start + count * size > len(data):
            raise ValueError("%s: tensor %s data past the end of the file" % (path, name))
        values = list(struct.unpack_from("<%d%s" % (count, fmt[1]), data, start))
        tensors.append((name, ttype, ne, values))
    return meta, tensors


# Tables whose entries the dequantizers read as signed bytes keep a signed C type.
SIGNED_TABLES = {"kvalues_iq4nl", "kvalues_fp4"}


def c_type(name, ttype):
    bits = TENSOR_TYPES[ttype][1]
    if name in SIGNED_TABLES:
        return "gint%d" % bits
    return "guint%d" % bits


def c_literal(value, ttype, signed):
    bits = TENSOR_TYPES[ttype][1]
    if signed:
        return "%d" % value
    u = value & ((1 << bits) - 1)
    if bits == 64:
        return "G_GUINT64_CONSTANT(0x%016x)" % u
    if bits == 32:
        return "0x%08xu" % u
    return "0x%02x" % u


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = argv[1] if len(argv) > 1 else os.path.join(root, "..", "shared", "spec",
                                                     "format-tables.gguf")
    out_dir = argv[2] if len(argv) > 2 else os.path.join(root, "engine", "quant")
    _meta, tensors = read_gguf(src)

    header = [
        "/* quant-tables.h — lookup tables of the GGUF block formats (block-formats.md section 2).",
        " *",
        " * GENERATED by build-aux/gen-quant-tables.py from format-tables.gguf; do not edit.",
        " * One const array per tensor of that file, same name, same values. Integer entries are",
        " * the stored bit patterns (unsigned), except the signed value sets kvalues_*.",
        " * Grid entries pack 8 (I64) or 4 (I32) bytes, byte j = bits 8j..8j+7.",
        " * Static data: thread-safe.",
        " */",
        "#pragma once",
        "",
        "#include <glib.h>",
        "",
        "G_BEGIN_DECLS",
        "",
    ]
    body = [
        "/* quant-tables.c — GENERATED by build-aux/gen-quant-tables.py from format-tables.gguf;",
        " * do not edit. See quant-tables.h. */",
        '#include "config.h"',
        "",
        '#include "quant/quant-tables.h"',
        "",
    ]
    for name, ttype, ne, values in tensors:
        ctype = c_type(name, ttype)
        n = len(values)
        upper = "WH_QUANT_TABLE_%s_LEN" % name.upper()
        header.append("#define %s %d" % (upper, n))
        header.append("extern const %s %s[%s];" % (ctype, name, upper))
        header.append("")
        signed = name in SIGNED_TABLES
        bits = TENSOR_TYPES[ttype][1]
        per_line = 2 if bits == 64 else (6 if bits == 32 else 12)
        body.append("const %s %s[%s] = {" % (ctype, name, upper))
        for i in range(0, n, per_line):
            chunk = values[i:i + per_line]
            body.append("  " + ", ".join(c_literal(v, ttype, signed) for v in chunk) + ",")
        body.append("};")
        body.append("")
    header.append("G_END_DECLS")
    header.append("")
    with open(os.path.join(out_dir, "quant-tables.h"), "w") as f:
        f.write("\n".join(header))
    with open(os.path.join(out_dir, "quant-tables.c"), "w") as f:
        f.write("\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

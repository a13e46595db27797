#!/usr/bin/env python3
"""Embeds OpenCL C source files in a C header as one string constant, concatenated in order
(shared definitions such as cl/vector.cl first).

usage: embed_cl.py OUTPUT.h SYMBOL INPUT.cl [INPUT.cl ...]
"""
import os
import sys


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    dst, symbol, sources = sys.argv[1], sys.argv[2], sys.argv[3:]
    lines = []
    for src in sources:
        with open(src, encoding="utf-8") as f:
            text = f.read()
        lines.append(f'\t"/* ---- {os.path.basename(src)} ---- */\\n"')
        for line in text.splitlines(keepends=True):
            esc = line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            lines.append(f'\t"{esc}"')
    names = ", ".join(os.path.basename(s) for s in sources)
    with open(dst, "w", encoding="utf-8") as f:
        f.write(f"/* Generated from {names} by embed_cl.py. */\n")
        f.write(f"static const char {symbol}[] =\n" + "\n".join(lines) + ";\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

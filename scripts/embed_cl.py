#!/usr/bin/env python3
"""Embeds an OpenCL C source file in a C header as a string constant.

usage: embed_cl.py INPUT.cl OUTPUT.h SYMBOL
"""
import sys


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst, symbol = sys.argv[1:]
    with open(src, encoding="utf-8") as f:
        text = f.read()
    lines = []
    for line in text.splitlines(keepends=True):
        esc = line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'\t"{esc}"')
    body = "\n".join(lines) if lines else '\t""'
    with open(dst, "w", encoding="utf-8") as f:
        f.write(f"/* Generated from {src.split('/')[-1]} by embed_cl.py. */\n")
        f.write(f"static const char {symbol}[] =\n{body};\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

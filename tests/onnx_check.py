"""ONNX's own checks of exported files (issue 16): onnx.checker.check_model with full_check and
strict shape inference (Debian's python3-onnx). Prints one line per file; exit 1 if any fails.

Usage: python3 tests/onnx_check.py FILE.onnx...
"""
import sys

import onnx
from onnx import shape_inference


def main():
    failed = 0
    for path in sys.argv[1:]:
        model = onnx.load(path)
        try:
            onnx.checker.check_model(model, full_check=True)
            inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
            print(f"ok {path}: opset {model.opset_import[0].version}, {len(model.graph.node)} nodes, "
                  f"{len(inferred.graph.value_info)} shapes inferred")
        except Exception as e:  # the checker's own exception types vary between versions
            failed += 1
            print(f"FAIL {path}: {e}")
    sys.exit(1 if failed or not sys.argv[1:] else 0)


if __name__ == "__main__":
    main()

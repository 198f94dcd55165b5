"""Independent answers from NumPy (and ml_dtypes for bfloat16) for the C++ tests.

Usage: numpy_oracle.py COMMAND IN OUT
  f16    IN: float32 values -> OUT: uint16 bits of np.float16(x), then float32 of each half value
  bf16   IN: float32 values -> OUT: uint16 bits of ml_dtypes.bfloat16(x)
  svd    IN: int64 m, int64 n, then m*n float32 (row-major) -> OUT: float32 singular values (from float64)
"""
import sys

import numpy as np


def main() -> int:
    command, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
    if command == "f16":
        x = np.fromfile(src, dtype=np.float32)
        h = x.astype(np.float16)
        with open(dst, "wb") as f:
            f.write(h.view(np.uint16).tobytes())
            f.write(h.astype(np.float32).tobytes())
    elif command == "bf16":
        import ml_dtypes

        x = np.fromfile(src, dtype=np.float32)
        b = x.astype(ml_dtypes.bfloat16)
        b.view(np.uint16).tofile(dst)
    elif command == "svd":
        raw = open(src, "rb").read()
        m, n = np.frombuffer(raw[:16], dtype=np.int64)
        a = np.frombuffer(raw[16:], dtype=np.float32).reshape(m, n).astype(np.float64)
        np.linalg.svd(a, compute_uv=False).astype(np.float32).tofile(dst)
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Independent answers from llama.cpp's gguf-py (PyPI `gguf`) and Hugging Face `safetensors` for the C++ tests.

Usage: model_file_oracle.py COMMAND IN OUT
  gguf_read    IN: a GGUF file -> OUT: JSON {"kv": {key: {"type": [value types], "value": ...}},
               "tensors": [{"name", "type", "shape" (GGUF order), "offset" (absolute), "nbytes", "hex"}]}
  gguf_write   IN: ignored -> OUT: a GGUF file written by gguf.GGUFWriter with fixed content (see below)
  tq1_0 / tq2_0  IN: float32 values (count divisible by 256) -> OUT: gguf.quants.quantize bytes
  tq1_0_deq / tq2_0_deq  IN: blocks -> OUT: float32 values from gguf.quants.dequantize
  st_read      IN: a safetensors file -> OUT: JSON {"metadata": {...}, "tensors": {name: {"dtype", "shape", "hex"}}}
  st_write     IN: ignored -> OUT: a safetensors file written by safetensors.numpy.save_file (fixed content)
  absmean      IN: int64 rows, int64 cols, float32 values -> OUT: int8 ternary values then float32 scale,
               the reference formula in NumPy: s = 1/max(mean|W|, 1e-5), clip(round(W*s), -1, 1)
"""
import json
import sys

import numpy as np


def gguf_read(src, dst):
    from gguf import GGUFReader, GGUFValueType

    r = GGUFReader(src)
    kv = {}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        types = [int(t) for t in field.types]
        value = field.contents()
        if isinstance(value, (np.generic,)):
            value = value.item()
        if isinstance(value, list):
            value = [v.item() if isinstance(v, np.generic) else v for v in value]
        kv[name] = {"type": types, "value": value}
    tensors = []
    for t in r.tensors:
        tensors.append({
            "name": t.name,
            "type": int(t.tensor_type),
            "shape": [int(x) for x in t.shape],
            "offset": int(t.data_offset),
            "nbytes": int(t.n_bytes),
            "hex": np.asarray(t.data).view(np.uint8).tobytes().hex(),
        })
    json.dump({"kv": kv, "tensors": tensors}, open(dst, "w"))


def gguf_write(dst):
    import gguf
    from gguf import GGMLQuantizationType as T

    w = gguf.GGUFWriter(dst, "bitnet-b1.58")
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -7)
    w.add_float32("test.f32", 0.25)
    w.add_uint64("test.u64", 2**40 + 3)
    w.add_int64("test.i64", -(2**40))
    w.add_float64("test.f64", 1.0 / 3.0)
    w.add_bool("test.bool", True)
    w.add_string("test.str", "héllo")
    w.add_array("test.arr_i32", [1, -2, 3])
    w.add_array("test.arr_str", ["a", "bc", ""])
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    a = (np.arange(6, dtype=np.float32) - 2.5).reshape(2, 3)
    w.add_tensor("a", a)
    w.add_tensor("h", (np.arange(8, dtype=np.float32) / 4).astype(np.float16))
    vals = (np.arange(512) % 3 - 1).astype(np.float32) * np.float32(0.75)
    q = gguf.quants.quantize(vals.reshape(2, 256), T.TQ2_0)
    w.add_tensor("t", q, raw_dtype=T.TQ2_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> int:
    command, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
    if command == "gguf_read":
        gguf_read(src, dst)
    elif command == "gguf_write":
        gguf_write(dst)
    elif command in ("tq1_0", "tq2_0"):
        import gguf

        qt = gguf.GGMLQuantizationType[command.upper()]
        x = np.fromfile(src, dtype=np.float32)
        gguf.quants.quantize(x.reshape(-1, 256), qt).tofile(dst)
    elif command in ("tq1_0_deq", "tq2_0_deq"):
        import gguf

        qt = gguf.GGMLQuantizationType[command[:5].upper()]
        b = np.fromfile(src, dtype=np.uint8)
        size = gguf.GGML_QUANT_SIZES[qt][1]
        gguf.quants.dequantize(b.reshape(-1, size), qt).astype(np.float32).tofile(dst)
    elif command == "st_read":
        from safetensors import safe_open

        out = {"metadata": {}, "tensors": {}}
        with safe_open(src, framework="np") as f:
            out["metadata"] = f.metadata() or {}
            for k in f.keys():
                sl = f.get_slice(k)
                dtype = sl.get_dtype()
                shape = list(sl.get_shape())
                # raw bytes straight from the file (NumPy has no bfloat16), located by the header's offsets
                out["tensors"][k] = {"dtype": dtype, "shape": shape}
        raw = open(src, "rb").read()
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + n])
        for k, v in header.items():
            if k == "__metadata__":
                continue
            b, e = v["data_offsets"]
            out["tensors"][k]["hex"] = raw[8 + n + b:8 + n + e].hex()
        json.dump(out, open(dst, "w"))
    elif command == "st_write":
        import ml_dtypes
        from safetensors.numpy import save_file

        tensors = {
            "model.embed.weight": (np.arange(12, dtype=np.float32) / 8).astype(ml_dtypes.bfloat16).reshape(3, 4),
            "f32": np.array([[1.5, -2.0], [0.0, 3.25]], dtype=np.float32),
            "f16": np.array([0.5, -1.0, 65504.0], dtype=np.float16),
            "u8": np.arange(10, dtype=np.uint8).reshape(2, 5),
            "i8": np.array([-128, 0, 127], dtype=np.int8),
            "scalar": np.array(2.0, dtype=np.float32),
            "empty": np.zeros((0, 3), dtype=np.float32),
        }
        save_file(tensors, dst, metadata={"format": "pt", "source": "oracle"})
    elif command == "absmean":
        raw = open(src, "rb").read()
        rows, cols = np.frombuffer(raw[:16], dtype=np.int64)
        w = np.frombuffer(raw[16:], dtype=np.float32).reshape(rows, cols)
        mean = np.float32(np.abs(w.astype(np.float64)).mean())
        scale = np.maximum(mean, np.float32(1e-5))
        s = np.float32(1.0) / scale
        t = np.clip(np.round(w * s), -1, 1).astype(np.int8)
        with open(dst, "wb") as f:
            f.write(t.tobytes())
            f.write(np.float32(scale).tobytes())
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Rewrite a GGUF of this project's `bitnet-b1.58` architecture (e.g. from `bitnet make-model -t tq2_0`) as
upstream llama.cpp's `bitnet` architecture, so that both programs can be measured on one file (docs/performance.md).

Every tensor is copied byte for byte; the `bitnet-b1.58.*` keys become `bitnet.*`; a file without a tokenizer gets
`tokenizer.ggml.model = no_vocab` (llama.cpp then makes dummy tokens from `bitnet.vocab_size`). llama.cpp's `bitnet`
graph gates the FFN with SiLU instead of ReLU^2: the same cost, other numbers, so use the result for speed only.

Usage: .venv/bin/python scripts/gguf_as_upstream_bitnet.py IN.gguf OUT.gguf
"""
import sys

import gguf


def main(src: str, dst: str) -> None:
    try:
        reader = gguf.GGUFReader(src)
    except ValueError as e:  # e.g. bitnet.cpp's I2_S, which gguf-py (and upstream llama.cpp) does not know
        sys.exit(f"{src}: not readable by gguf-py ({e}); write the file with -t tq2_0 or tq1_0")
    arch = reader.fields["general.architecture"].contents()
    if arch != "bitnet-b1.58":
        sys.exit(f"{src}: general.architecture is '{arch}', expected 'bitnet-b1.58'")
    writer = gguf.GGUFWriter(dst, "bitnet")
    prefix = arch + "."
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        name = "bitnet." + key[len(prefix):] if key.startswith(prefix) else key
        kind = field.types[0]
        if kind == gguf.GGUFValueType.ARRAY:
            writer.add_array(name, field.contents())
        elif kind == gguf.GGUFValueType.STRING:
            writer.add_string(name, field.contents())
        else:
            writer.add_key_value(name, field.contents(), kind)
    if "tokenizer.ggml.model" not in reader.fields:
        writer.add_string("tokenizer.ggml.model", "no_vocab")
    for t in reader.tensors:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in reader.tensors:
        writer.write_tensor_data(t.data)
    writer.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

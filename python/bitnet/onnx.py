"""BitNet models as ONNX graphs that ONNX Runtime runs with the engine's arithmetic (docs/onnx.md).

    import bitnet.onnx
    bitnet.onnx.export("model.gguf", "model.onnx")   # also an HF directory, a training run or a checkpoint

The graph (opset 17, standard operators only) takes input_ids, attention_mask, position_ids and
past_key_values.N.key/value and returns logits and present.N.key/value, as ONNX Runtime GenAI and Optimum decoders
do. `bitnet.Llama("model.onnx")` and `bitnet convert model.onnx -o model.gguf` read such files back.
"""
import os

from . import _core

__all__ = ["export", "OPSET"]

OPSET = 17


def export(source, output, *, external_data="auto", run_config=None):
    """Writes the model at `source` (a GGUF file, a Hugging Face directory, an ONNX file, or a training run / one
    of its checkpoints) as an ONNX graph at `output` (*.onnx).

    external_data: "auto" puts the weights in OUTPUT.data beside the graph when they would pass 1.9 GB (protobuf
    cannot hold 2), "always" or "never". run_config: a training run's JSON config when it is not beside the
    checkpoint. Returns a dict: path, opset, nodes, initializers, onnx_bytes, external_data (path or None),
    external_bytes, ternary_weights.
    """
    return _core.export_onnx(os.fspath(source), os.fspath(output), external_data,
                             os.fspath(run_config) if run_config is not None else "")

"""Logits from Python (llama-cpp-python's logits_all / eval / scores) and from `bitnet logits` (a .npy file): the
same numbers at every position. (Against transformers: tests/unit/test_hf_golden.cpp.)"""
import numpy as np
import pytest

import bitnet

from conftest import requires_cli, run_cli


@requires_cli
def test_eval_scores_equal_the_cli_npy(tiny_model, tmp_path):
    llm = bitnet.Llama(str(tiny_model), n_ctx=64, logits_all=True, verbose=False)
    tokens = llm.tokenize(b"And God said, Let there be light", add_bos=True)
    llm.eval(tokens[:5])
    llm.eval(tokens[5:])  # continues at position 5, as llama-cpp-python's eval does
    assert llm.n_tokens == len(tokens)
    assert list(llm._input_ids) == tokens
    scores = llm._scores
    assert scores.shape == (len(tokens), llm._engine.n_vocab_model)
    out = tmp_path / "logits.npy"
    run_cli("logits", "-m", str(tiny_model), "--tokens", ",".join(map(str, tokens)), "-o", str(out), "-t", "2")
    cli = np.load(out)
    assert cli.dtype == np.float32 and cli.shape == scores.shape
    np.testing.assert_allclose(scores, cli, rtol=0, atol=1e-5)
    # From text, the CLI writes the ids it evaluated beside the logits.
    run_cli("logits", "-m", str(tiny_model), "-p", "And God said, Let there be light", "-o", str(tmp_path / "t.npy"))
    assert list(np.load(tmp_path / "t.tokens.npy")) == tokens
    np.testing.assert_allclose(np.load(tmp_path / "t.npy"), cli, rtol=0, atol=1e-5)
    # Without logits_all only the last row is kept; reset() starts again at position 0.
    last = bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False)
    last.eval(tokens)
    np.testing.assert_allclose(last._scores[-1], cli[-1], rtol=0, atol=1e-5)
    last.reset()
    last.eval(tokens[:3])
    np.testing.assert_allclose(last._scores[-1], cli[2], rtol=0, atol=1e-5)
    lp = bitnet.Llama.logits_to_logprobs(cli[-1])
    assert abs(np.exp(lp).sum() - 1) < 1e-4


def test_eval_errors_name_the_problem(tiny_model):
    llm = bitnet.Llama(str(tiny_model), n_ctx=8, verbose=False)
    with pytest.raises(bitnet.BitnetError, match="outside the vocabulary"):
        llm.eval([10**7])
    with pytest.raises(bitnet.BitnetError, match="does not fit the context"):
        llm.eval(list(range(1, 10)))


@requires_cli
def test_hugging_face_directory_opens_in_python(tmp_path):
    """A Hugging Face checkpoint (here the bundled model converted to safetensors, with its tokenizer.json) opens
    as a GGUF does, and gives the same logits."""
    import shutil

    from conftest import ROOT

    kjv = ROOT / "models" / "kjv-bitnet-2m.gguf"
    d = tmp_path / "kjv-hf"
    d.mkdir()
    run_cli("convert", str(kjv), "-o", str(d / "model.safetensors"), "-q")
    shutil.copy(ROOT / "models" / "kjv-tokenizer.json", d / "tokenizer.json")
    hf = bitnet.Llama(str(d), n_ctx=64, logits_all=True, verbose=False)
    gg = bitnet.Llama(str(kjv), n_ctx=64, logits_all=True, verbose=False)
    ids = gg.tokenize(b"And God said", add_bos=False)
    assert hf.tokenize(b"And God said", add_bos=False) == ids
    hf.eval(ids)
    gg.eval(ids)
    np.testing.assert_allclose(hf._scores, gg._scores, rtol=0, atol=1e-4)
    assert hf.metadata["model_type"] == "bitnet" and "general.architecture" in gg.metadata

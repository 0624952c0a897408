"""The GPU bytes the model runners' buffer-owning classes keep, built by vLLM's own constructors on the CPU, frozen
as tests/data/vllm_runner_buffers.json for tests/test_vllm_runner_buffers.py (and, from 0.32, Model Runner V2's
speculators for tests/test_s54_runner.py and, in 0.32 and 0.33, the V1 runner's proposers for
tests/test_s54_fix3.py). Pure Python, run from a source release (no build; vllm._C is not
needed):

    for v in 0.27.0 ... 0.34.0: cd vllm-$v && PYTHONPATH=. python .../runner_buffers.py $v /tmp/r$v.json
    python .../runner_buffers.py --merge /tmp/r0.27.0.json ... /tmp/r0.34.0.json > tests/data/vllm_runner_buffers.json

The device passed is torch's "meta" device: what vLLM puts on the GPU becomes a meta tensor (shape and dtype, no
memory), what it keeps on the host (pinned or not, UVA views of it) stays on the CPU. After a constructor returns,
its object graph is walked and every meta tensor still held is counted once (a view by its base), so buffers
allocated and dropped inside the constructor do not count. UVA is reported available (its buffers are host memory
either way: vllm/v1/worker/gpu/buffer_utils.py UvaBuffer) so the GPU fallback NonUvaBuffer is not built.
The speculators are built from a stand-in VllmConfig holding the fields their constructors read; the n-gram and
suffix ones ask for Triton only for its cdiv and next_power_of_2, given here; the target's hook that widens a
drafter's hidden states (DeepSeek-V4's hc_mult: _target_feeds_hc_residual) is answered False.
Session 53 ran it with the 0.27.0-0.34.0 source releases (the 0.34.0 venv, /tmp/v34) and CPU torch 2.13.0;
session 54 added the speculators (DRAFT_CASES) and the V1 runner's proposers (V1_DRAFT_CASES, 0.32.0 and 0.33.0)."""

import importlib
import inspect
import json
import sys
import types

import torch

META = torch.device("meta")
CASES = [  # name, vocab, hidden (inputs_embeds size), max_num_seqs, max_num_batched_tokens, max_model_len, M-RoPE
    ("Llama-3.1-8B 32K", 128_256, 4_096, 1_024, 8_192, 32_768, 0),
    ("Llama-3.1-8B 131K", 128_256, 4_096, 1_024, 8_192, 131_072, 0),
    ("Qwen2.5-VL-7B 128K", 152_064, 3_584, 1_024, 8_192, 128_000, 3),
    ("small batch 256 x 2048", 32_000, 4_096, 256, 2_048, 8_192, 0),
    ("160 GiB default 1024 x 16384, M-RoPE", 152_064, 8_192, 1_024, 16_384, 131_072, 3),
]

# name, method, draft hidden size, max_num_seqs, max_num_batched_tokens, max_model_len, draft tokens, MTP modules,
# suffix_decoding_max_cached_requests (0: no corpus)
DRAFT_CASES = [
    ("Llama-3.1-8B EAGLE-3 head, k 3", "eagle3", 4_096, 1_024, 8_192, 131_072, 3, 1, 10_000),
    ("DeepSeek-V3 MTP, k 1", "mtp", 7_168, 1_024, 8_192, 163_840, 1, 1, 10_000),
    ("three MTP modules, k 3", "mtp", 4_096, 256, 2_048, 32_768, 3, 3, 10_000),
    ("draft model, k 4", "draft_model", 2_048, 1_024, 8_192, 32_768, 4, 1, 10_000),
    ("ngram 131K", "ngram", 4_096, 1_024, 8_192, 131_072, 4, 1, 10_000),
    ("ngram 300 tokens", "ngram", 4_096, 256, 2_048, 300, 4, 1, 10_000),
    ("suffix 32K", "suffix", 4_096, 1_024, 8_192, 32_768, 4, 1, 10_000),
    ("suffix 200 tokens, no corpus", "suffix", 4_096, 256, 2_048, 200, 4, 1, 0),
]
# name, method, target hidden size, draft hidden size, max_num_seqs, max_num_batched_tokens, max_model_len, draft
# tokens, parallel_drafting: the V1 runner's proposers (0.32 and 0.33 run EAGLE / MTP / draft models on V1 with
# parallel_drafting), the draft's width unlike the target's so a swap shows
V1_DRAFT_CASES = [
    ("P-EAGLE-3 head 2,048 wide on a 4,096 target, k 3", "eagle3", 4_096, 2_048, 1_024, 8_192, 32_768, 3, True),
    ("EAGLE head 5,120 wide on a 4,096 target, k 1", "eagle", 4_096, 5_120, 256, 2_048, 8_192, 1, False),
    ("MTP on a 7,168 target, k 2, parallel", "mtp", 7_168, 7_168, 1_024, 8_192, 163_840, 2, True),
    ("PARD draft model 1,536 wide on a 4,096 target, k 4", "draft_model", 4_096, 1_536, 1_024, 16_384, 32_768, 4,
     True),
]
# v1/worker/gpu/spec_decode/: the speculator each method builds (0.32.0 __init__.py:13-86 init_speculator; 0.34.0
# speculator_config.py:298-311 and each config's speculator_class), MTP of several modules where min(modules,
# draft tokens) > 1 (0.32.0 config/speculative.py:1982-1988, 0.34.0 mtp/config.py:32-35); suffix on V2 from 0.34
SPECULATORS = {"eagle3": "eagle.speculator.EagleSpeculator", "mtp": "mtp.speculator.MTPSpeculator",
               "mtp multi": "multi_module_mtp.speculator.MultiModuleMTPSpeculator",
               "draft_model": "standalone_ar.speculator.StandaloneARSpeculator",
               "ngram": "ngram.speculator.NgramGPUSpeculator", "suffix": "suffix.speculator.SuffixSpeculator"}


def meta_bytes(root) -> dict:
    """{attribute path: bytes} of the meta tensors reachable from `root`, each storage once."""
    seen_objects, seen_bases, found = set(), set(), {}

    def walk(obj, path):
        if id(obj) in seen_objects or isinstance(obj, (str, bytes, int, float, bool, type, types.ModuleType)):
            return
        seen_objects.add(id(obj))
        if isinstance(obj, torch.Tensor):
            base = obj._base if obj._base is not None else obj
            if base.device.type == "meta" and id(base) not in seen_bases:
                seen_bases.add(id(base))
                found[path] = base.untyped_storage().nbytes()
            return
        if isinstance(obj, dict):
            items = obj.items()
        elif isinstance(obj, (list, tuple)):
            items = enumerate(obj)
        elif type(obj).__module__.startswith("vllm") and hasattr(obj, "__dict__"):
            items = vars(obj).items()
        else:
            return
        for key, value in items:
            walk(value, f"{path}.{key}")

    walk(root, "")
    return {k.lstrip("."): v for k, v in found.items()}


def host_only_uva():
    """UVA available, its accelerator view the pinned host tensor itself (no CUDA here)."""
    import vllm.v1.worker.gpu.buffer_utils as buffer_utils

    buffer_utils.is_uva_available = lambda: True
    buffer_utils.get_accelerator_view_from_cpu_tensor = lambda t: t
    for name in ("zeros", "empty", "ones", "full", "tensor"):
        setattr(torch, name, unpinned(getattr(torch, name)))
    torch.cuda.Stream = torch.cuda.Event = NoCuda


def unpinned(factory):
    """`factory` without pin_memory (pinning needs CUDA; the memory is the host's either way)."""

    def build(*args, pin_memory=False, **kwargs):
        return factory(*args, **kwargs)

    return build


class NoCuda:
    """A stream or event that is never used here."""

    def __init__(self, *args, **kwargs):
        pass


def fake_vllm_config(max_num_seqs: int, vocab: int):
    ns = types.SimpleNamespace
    return ns(scheduler_config=ns(max_num_seqs=max_num_seqs), model_config=ns(get_vocab_size=lambda: vocab),
              reasoning_config=None)


def v2_parts(release: str, vocab, hidden, seqs, tokens, model_len, mrope) -> dict:
    """Model Runner V2 (vllm/v1/worker/gpu/): what __init__ and load_model build before the profile run (the
    EncoderRunner a multimodal model's state builds, in bfloat16), and the block tables initialize_kv_cache builds
    after it."""
    from vllm.v1.worker.gpu.block_table import BlockTables
    from vllm.v1.worker.gpu.input_batch import InputBuffers
    from vllm.v1.worker.gpu.mm.encoder_runner import EncoderRunner
    from vllm.v1.worker.gpu.mm.rope import RopeState
    from vllm.v1.worker.gpu.sample.prompt_logprob import PromptLogprobsWorker
    from vllm.v1.worker.gpu.sample.sampler import Sampler
    from vllm.v1.worker.gpu.spec_decode.utils import DraftTokensHandler
    from vllm.v1.worker.gpu.states import RequestState
    from vllm.v1.worker.gpu.structured_outputs import StructuredOutputsWorker

    blocks = -(-model_len // block_size(release))
    known = dict(vllm_config=fake_vllm_config(seqs, vocab), max_num_reqs=seqs, max_model_len=model_len,
                 max_num_batched_tokens=tokens, max_num_tokens=tokens, num_speculative_steps=0, vocab_size=vocab,
                 device=META, max_num_logits=seqs, mask_stride=1, num_bonus_tokens=1, block_sizes=[block_size(release)],
                 kernel_block_sizes=[block_size(release)], max_num_blocks_per_group=[blocks])
    known["req_states"] = states = build(RequestState, known)
    parts = {
        "RequestState": states,
        "InputBuffers": build(InputBuffers, known),
        "Sampler": build(Sampler, known),
        "PromptLogprobsWorker": PromptLogprobsWorker(seqs, META),
        "StructuredOutputsWorker": build(StructuredOutputsWorker, known),
        "DraftTokensHandler": DraftTokensHandler(META),
        "EncoderRunner": build(EncoderRunner, dict(known, model=torch.nn.Module(), hidden_size=hidden,
                                                   encoder_cache=None, dtype=torch.bfloat16)),
    }
    if mrope:
        parts["RopeState"] = build(RopeState, dict(known, num_dims=mrope, has_delta=True))
    parts["BlockTables (initialize_kv_cache)"] = build(BlockTables, known)
    return parts


def version(release: str) -> tuple:
    """"0.32.0" as (0, 32, 0), which compares as releases do ("0.4" < "0.32" as strings does not)."""
    return tuple(int(part) for part in release.split("."))


def block_size(release: str) -> int:
    """config/cache.py DEFAULT_BLOCK_SIZE: 64 from 0.34.0, 16 before."""
    return 64 if version(release) >= (0, 34) else 16


def build(cls, known: dict):
    """cls(...) with the arguments of `known` its release's constructor takes (the rest left at their defaults)."""
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{name: value for name, value in known.items() if name in accepted})


def v1_parts(vocab, hidden, seqs, tokens, model_len, mrope) -> dict:
    """The V1 runner (vllm/v1/worker/gpu_model_runner.py, gone in 0.34): its placeholder InputBatch, built in
    __init__ with the block size the cache config names (16 by default) before the cache is sized."""
    from vllm.v1.worker.gpu_input_batch import InputBatch

    known = dict(max_num_reqs=seqs, max_model_len=model_len, max_num_batched_tokens=tokens, device=META,
                 vocab_size=vocab, block_sizes=[16], kernel_block_sizes=[16],
                 max_num_blocks_per_req=[-(-model_len // 16)])
    batch = build(InputBatch, known)
    return {"InputBatch": batch}


def draft_config(method, hidden, seqs, tokens, model_len, k, cached_requests):
    """The VllmConfig fields a speculator's constructor reads (0.32.0-0.34.0 spec_decode/speculator.py
    DraftModelSpeculator.__init__, ngram/ and suffix/ speculator.py), at vLLM's defaults but for the case's."""
    ns = types.SimpleNamespace
    draft = ns(get_hidden_size=lambda: hidden, get_vocab_size=lambda: 128_256, hf_config=ns(), model="draft")
    spec = ns(method=method, num_speculative_tokens=k, draft_model_config=draft, use_local_argmax_reduction=False,
              enable_adaptive_verification=False, draft_sample_method="greedy",
              draft_decode_context_parallel_size=None, prompt_lookup_min=5, prompt_lookup_max=5, kv_cache_dtype=None,
              suffix_decoding_max_tree_depth=24, suffix_decoding_corpus_tokens=1 << 20,
              suffix_decoding_max_cached_requests=cached_requests)
    return ns(speculative_config=spec, scheduler_config=ns(max_num_seqs=seqs, max_num_batched_tokens=tokens),
              model_config=ns(max_model_len=model_len, dtype=torch.bfloat16, use_fp64_gumbel=False),
              parallel_config=ns(data_parallel_size=1, data_parallel_rank=0, decode_context_parallel_size=1,
                                 use_ubatching=False), watermark_config=None)


class TritonShapes:
    """The two Triton helpers the n-gram and suffix speculators size their buffers with."""

    @staticmethod
    def cdiv(a, b):
        return -(-a // b)

    @staticmethod
    def next_power_of_2(n):
        return 1 << max(int(n) - 1, 0).bit_length()


def speculator(release: str, method: str, modules: int, k: int):
    """The speculator class `method` builds in `release` (SPECULATORS), or None where that release has none."""
    import vllm.v1.worker.gpu.spec_decode.speculator as base

    base._target_feeds_hc_residual = lambda config: False
    name = "mtp multi" if method == "mtp" and min(modules, k) > 1 else method
    path, cls = SPECULATORS[name].rsplit(".", 1)
    try:
        module = importlib.import_module("vllm.v1.worker.gpu.spec_decode." + path)
    except ModuleNotFoundError:
        return None
    if hasattr(module, "HAS_TRITON"):
        module.HAS_TRITON, module.triton = True, TritonShapes
    return getattr(module, cls)


def drafter_parts(release: str) -> list:
    """Each DRAFT_CASES speculator's meta tensors, as Model Runner V2 builds it in __init__ (0.32.0
    gpu/model_runner.py:292-298 init_speculator on the last stage)."""
    cases = []
    for name, method, hidden, seqs, tokens, model_len, k, modules, cached in DRAFT_CASES:
        cls = speculator(release, method, modules, k)
        if cls is None:
            continue
        known = dict(vllm_config=draft_config(method, hidden, seqs, tokens, model_len, k, cached), device=META,
                     req_states=None)
        cases.append(dict(name=name, method=method, speculator=cls.__name__, hidden=hidden, max_num_seqs=seqs,
                          max_num_batched_tokens=tokens, max_model_len=model_len, num_speculative_tokens=k,
                          mtp_modules=modules, suffix_decoding_max_cached_requests=cached,
                          tensors=meta_bytes(build(cls, known))))
    return cases


class NoDispatcher:
    """The proposer's CUDA-graph dispatcher, which holds no tensors and reads compilation settings not given here."""

    def __init__(self, *args, **kwargs):
        pass


def v1_draft_config(method, target_hidden, hidden, seqs, tokens, model_len, k, parallel):
    """The VllmConfig fields SpecDecodeBaseProposer.__init__ reads (0.32.0 / 0.33.0 v1/spec_decode/
    llm_base_proposer.py), at vLLM's defaults but for the case's; a parallel draft names its mask token (PARD's
    pard_token, :356-380)."""
    ns = types.SimpleNamespace
    hf = ns(mask_token_id=0) if method != "draft_model" else ns(pard_token=0)
    draft = ns(get_hidden_size=lambda: hidden, get_inputs_embeds_size=lambda: hidden, hf_config=hf,
               uses_mrope=False, model="draft", tensor_parallel_size=1)
    spec = ns(method=method, num_speculative_tokens=k, draft_model_config=draft, parallel_drafting=parallel,
              use_local_argmax_reduction=False, use_heterogeneous_vocab=False, rejection_sample_method="standard",
              draft_sample_method="greedy", disable_padded_drafter_batch=False,
              draft_parallel_config=ns(tensor_parallel_size=1), target_parallel_config=ns(tensor_parallel_size=1),
              uses_draft_model=lambda: method == "draft_model", verify_equal_vocab_size_if_draft_model=lambda: None)
    target = ns(max_model_len=model_len, dtype=torch.bfloat16, use_fp64_gumbel=False, get_vocab_size=lambda: 128_256,
                supports_multimodal_inputs=False, get_hidden_size=lambda: target_hidden)
    return ns(speculative_config=spec, scheduler_config=ns(max_num_seqs=seqs, max_num_batched_tokens=tokens),
              model_config=target, parallel_config=ns(data_parallel_rank=0, tensor_parallel_size=1),
              compilation_config=ns())


def v1_drafter_parts() -> list:
    """Each V1_DRAFT_CASES proposer's meta tensors, as the V1 runner builds it in __init__ (0.32.0
    gpu_model_runner.py:611-644: DraftModelProposer for draft_model, EagleProposer for eagle / eagle3 / mtp)."""
    import vllm.v1.spec_decode.llm_base_proposer as base
    from vllm.v1.spec_decode.draft_model import DraftModelProposer
    from vllm.v1.spec_decode.eagle import EagleProposer

    base.CudagraphDispatcher = NoDispatcher
    cases = []
    for name, method, target_hidden, hidden, seqs, tokens, model_len, k, parallel in V1_DRAFT_CASES:
        cls = DraftModelProposer if method == "draft_model" else EagleProposer
        config = v1_draft_config(method, target_hidden, hidden, seqs, tokens, model_len, k, parallel)
        cases.append(dict(name=name, method=method, proposer=cls.__name__, target_hidden=target_hidden,
                          hidden=hidden, max_num_seqs=seqs, max_num_batched_tokens=tokens, max_model_len=model_len,
                          num_speculative_tokens=k, parallel_drafting=parallel,
                          tensors=meta_bytes(cls(config, META, None))))
    return cases


def measure(release: str) -> dict:
    host_only_uva()
    out = {"vllm": release, "cases": []}
    for name, vocab, hidden, seqs, tokens, model_len, mrope in CASES:
        case = dict(name=name, vocab=vocab, hidden=hidden, max_num_seqs=seqs, max_num_batched_tokens=tokens,
                    max_model_len=model_len, mrope_dims=mrope, runners={})
        for runner, parts in (("V2", v2_parts(release, vocab, hidden, seqs, tokens, model_len, mrope)),
                              ("V1", v1_parts(vocab, hidden, seqs, tokens, model_len, mrope)
                               if version(release) < (0, 34) else {})):
            if parts:
                case["runners"][runner] = {part: meta_bytes(obj) for part, obj in parts.items()}
        out["cases"].append(case)
    if version(release) >= (0, 32):  # kvplan models speculative decoding from 0.32
        out["drafters"] = drafter_parts(release)
    if (0, 32) <= version(release) < (0, 34):  # V1 drafts with parallel_drafting (gone in 0.34)
        out["v1_drafters"] = v1_drafter_parts()
    return out


def main():
    if sys.argv[1] == "--merge":
        runs = [json.load(open(path)) for path in sys.argv[2:]]
        header = {"script": "benchmarks/vllm_reference/runner_buffers.py",
                  "date": "2026-12-05 (session 53; drafters and V1 drafters session 54)", "torch": "2.13.0 CPU",
                  "note": "each part's meta tensors by attribute path; a part that holds RequestState (Sampler) "
                          "lists its rows again; drafters: Model Runner V2's speculator of each case, 0.32.0 on; "
                          "v1_drafters: the V1 runner's proposer of each case, 0.32.0 and 0.33.0"}
        print(json.dumps({"header": header, "releases": runs}, indent=1))
        return
    with open(sys.argv[2], "w") as out:  # not stdout: older releases log there
        json.dump(measure(sys.argv[1]), out, indent=1)


if __name__ == "__main__":
    main()

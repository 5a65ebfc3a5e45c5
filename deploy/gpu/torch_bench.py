#!/usr/bin/env python3
"""PyTorch eager on the same GPU and shapes as BenchCheck (issue 11's bench step).

LLaMA-2-7B's shape (hidden 4096, 32 heads of 128, intermediate 11008, vocabulary 32000), LAYERS of
its 32 layers, random F16 weights made on the GPU (no download, no files), eager mode. The same
measurements and names as dev.owlery.engine.cuda.check.BenchCheck, with the same step counts:
batch-1 decode (64 steps from position 128 after 3 unmeasured, a KV cache), a 512-token prefill
(3 runs after 1 unmeasured), batched decode of 16 and 64 sequences; a 1 GiB device-to-device copy
for the bandwidth fraction. Timings: torch.cuda.synchronize() around time.perf_counter().

Implementation: transformers' LlamaForCausalLM from a LlamaConfig with random initialisation when
transformers imports and runs (its DynamicCache for the KV cache), else, saying why, LLaMA written
in torch.nn.functional with a preallocated cache; --impl picks one. Each row's detail names the one
measured. Needs only the standard library,
torch and optionally transformers; no network.

Usage: python3 deploy/gpu/torch_bench.py OUT.jsonl [--layers N] [--impl auto|transformers|functional]
Writes one JSON object per measurement to OUT.jsonl ({"measurement", "value", "unit", "detail"}, the
fields of BenchCheck's bench.jsonl) and prints each. Exit 0 measured, 2 bad arguments, 4 torch or a
CUDA device missing (one line saying which).
"""

import argparse
import gc
import json
import math
import sys
import time

# BenchCheck.Plan.llama2_7b's shape and counts, and BenchCheck.BATCHES: change both together.
HIDDEN, HEADS, HEAD_DIM, INTERMEDIATE, VOCAB = 4096, 32, 128, 11008, 32000
CONTEXT, WARMUP_STEPS, DECODE_STEPS = 128, 3, 64
PREFILL_TOKENS, PREFILL_RUNS = 512, 3
COPY_BYTES, COPY_RUNS = 1 << 30, 50
BATCHES = (16, 64)


def weight_bytes_per_token(layers):
    layer = 4 * HIDDEN * HIDDEN + 3 * HIDDEN * INTERMEDIATE
    return 2.0 * (layers * layer + VOCAB * HIDDEN)


def prefill_flops(layers):
    layer = 4 * HIDDEN * HIDDEN + 3 * HIDDEN * INTERMEDIATE
    t = PREFILL_TOKENS
    return 2.0 * layers * layer * t + 2.0 * VOCAB * HIDDEN + 4.0 * layers * HEADS * HEAD_DIM * t * (t + 1) / 2


class Functional:
    """LLaMA in torch.nn.functional: random F16 weights, a cache [layer][k|v] of [batch, heads, positions, headDim]."""

    name = "torch.nn.functional"

    def __init__(self, torch, layers, max_batch, max_positions):
        self.torch, self.F = torch, torch.nn.functional
        dev, f16 = "cuda", torch.float16

        def matrix(rows, cols):
            return (torch.randn(rows, cols, device=dev, dtype=f16) * 0.02)

        self.layers = [dict(q=matrix(HIDDEN, HIDDEN), k=matrix(HIDDEN, HIDDEN), v=matrix(HIDDEN, HIDDEN),
                            o=matrix(HIDDEN, HIDDEN), gate=matrix(INTERMEDIATE, HIDDEN),
                            up=matrix(INTERMEDIATE, HIDDEN), down=matrix(HIDDEN, INTERMEDIATE),
                            n1=torch.ones(HIDDEN, device=dev, dtype=f16), n2=torch.ones(HIDDEN, device=dev, dtype=f16))
                       for _ in range(layers)]
        self.norm = torch.ones(HIDDEN, device=dev, dtype=f16)
        self.lm_head = matrix(VOCAB, HIDDEN)
        self.cache = torch.zeros(layers, 2, max_batch, HEADS, max_positions, HEAD_DIM, device=dev, dtype=f16)
        inv = 1.0 / (10000.0 ** (torch.arange(0, HEAD_DIM, 2, device=dev, dtype=torch.float32) / HEAD_DIM))
        angles = torch.outer(torch.arange(max_positions, device=dev, dtype=torch.float32), inv)
        self.cos, self.sin = angles.cos().to(f16), angles.sin().to(f16)

    def rms_norm(self, x, w):
        xf = x.float()
        return (xf * self.torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(x.dtype) * w

    def rope(self, x, start):  # x [batch, heads, T, headDim], rotate-half as LLaMA
        t = x.shape[2]
        cos = self.torch.cat([self.cos[start:start + t]] * 2, -1)
        sin = self.torch.cat([self.sin[start:start + t]] * 2, -1)
        half = HEAD_DIM // 2
        rotated = self.torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rotated * sin

    def forward(self, x, start):
        """x [batch, T, hidden] at positions [start, start + T) of every sequence; the last row's logits."""
        F, b, t = self.F, x.shape[0], x.shape[1]
        for i, w in enumerate(self.layers):
            h = self.rms_norm(x, w["n1"])
            q, k, v = (F.linear(h, w[n]).view(b, t, HEADS, HEAD_DIM).transpose(1, 2) for n in "qkv")
            q, k = self.rope(q, start), self.rope(k, start)
            self.cache[i, 0, :b, :, start:start + t] = k
            self.cache[i, 1, :b, :, start:start + t] = v
            keys, values = self.cache[i, 0, :b, :, :start + t], self.cache[i, 1, :b, :, :start + t]
            a = F.scaled_dot_product_attention(q, keys, values, is_causal=t > 1 and start == 0)
            x = x + F.linear(a.transpose(1, 2).reshape(b, t, HIDDEN), w["o"])
            h = self.rms_norm(x, w["n2"])
            x = x + F.linear(F.silu(F.linear(h, w["gate"])) * F.linear(h, w["up"]), w["down"])
        return F.linear(self.rms_norm(x[:, -1:], self.norm), self.lm_head)

    def decode_run(self, batch):
        """A step function over positions [CONTEXT, ...) of batch sequences."""
        x = self.torch.randn(batch, 1, HIDDEN, device="cuda", dtype=self.torch.float16)
        return lambda step: self.forward(x, CONTEXT + step)

    def prefill(self, x):
        return self.forward(x, 0)


class Transformers:
    """transformers' LlamaForCausalLM, random initialisation on the GPU, its DynamicCache."""

    name = "transformers LlamaForCausalLM"

    def __init__(self, torch, layers):
        from transformers import LlamaConfig, LlamaForCausalLM
        self.torch = torch
        config = LlamaConfig(hidden_size=HIDDEN, intermediate_size=INTERMEDIATE, num_hidden_layers=layers,
                             num_attention_heads=HEADS, num_key_value_heads=HEADS, vocab_size=VOCAB,
                             max_position_embeddings=4096, rms_norm_eps=1e-5)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float16)
        try:
            with torch.device("cuda"):
                self.model = LlamaForCausalLM(config).eval()
        finally:
            torch.set_default_dtype(previous)
        self.name += " " + __import__("transformers").__version__

    def call(self, embeds, past=None):
        try:
            return self.model(inputs_embeds=embeds, past_key_values=past, use_cache=past is not None, logits_to_keep=1)
        except TypeError:  # transformers before logits_to_keep
            return self.model(inputs_embeds=embeds, past_key_values=past, use_cache=past is not None)

    def decode_run(self, batch):
        from transformers import DynamicCache
        torch = self.torch
        cache = DynamicCache()
        context = torch.randn(batch, CONTEXT, HIDDEN, device="cuda", dtype=torch.float16)
        self.call(context, cache)
        x = torch.randn(batch, 1, HIDDEN, device="cuda", dtype=torch.float16)
        return lambda step: self.call(x, cache).logits

    def prefill(self, x):
        return self.call(x).logits


def measure(torch, model, layers):
    rows = []

    def row(name, value, unit, detail):
        rows.append({"measurement": name, "value": value, "unit": unit, "detail": f"{model.name}: {detail}"})
        print(f"{name:36s} {value:12.4g} {unit:8s} {detail}", flush=True)

    src = torch.empty(COPY_BYTES, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(COPY_RUNS):
        dst.copy_(src)
    torch.cuda.synchronize()
    copy = 2.0 * COPY_BYTES * COPY_RUNS / (time.perf_counter() - t0)
    del src, dst
    row("copy_gb_per_s", copy / 1e9, "GB/s", f"device-to-device copy of 1024 MiB, read + write, {COPY_RUNS} runs")
    steps = f"{DECODE_STEPS} steps from position {CONTEXT} after {WARMUP_STEPS} unmeasured"
    with torch.inference_mode():
        for batch in (1,) + BATCHES:
            step = model.decode_run(batch)
            for i in range(WARMUP_STEPS):
                step(i)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for i in range(WARMUP_STEPS, WARMUP_STEPS + DECODE_STEPS):
                logits = step(i)
            torch.cuda.synchronize()
            tokens_per_s = batch * DECODE_STEPS / (time.perf_counter() - t0)
            finite = bool(torch.isfinite(logits).all())
            if batch == 1:
                row("decode_b1_eager_tokens_per_s", tokens_per_s if finite else math.nan, "tok/s",
                    f"batch 1, eager, {steps}")
                used = weight_bytes_per_token(layers) * tokens_per_s
                row("decode_b1_eager_bandwidth_fraction", used / copy if finite else math.nan, "of copy",
                    f"{weight_bytes_per_token(layers):.3g} weight bytes per token x tokens/s = {used / 1e9:.1f} GB/s")
            else:
                row(f"decode_b{batch}_tokens_per_s", tokens_per_s if finite else math.nan, "tok/s",
                    f"{batch} sequences, eager, {steps}")
            del step
            torch.cuda.empty_cache()
        x = torch.randn(1, PREFILL_TOKENS, HIDDEN, device="cuda", dtype=torch.float16)
        model.prefill(x)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(PREFILL_RUNS):
            logits = model.prefill(x)
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - t0) / PREFILL_RUNS
        finite = bool(torch.isfinite(logits).all())
        row("prefill_tokens_per_s", PREFILL_TOKENS / seconds if finite else math.nan, "tok/s",
            f"a {PREFILL_TOKENS}-token prompt in one call, {PREFILL_RUNS} runs after 1 unmeasured")
        row("prefill_tflops", prefill_flops(layers) / seconds / 1e12 if finite else math.nan, "TFLOP/s",
            f"{prefill_flops(layers):.3g} flops per prefill (products, last-row lm_head, causal attention)")
    return rows


def main(argv):
    parser = argparse.ArgumentParser(description="PyTorch eager at BenchCheck's shapes on the GPU")
    parser.add_argument("out", help="the JSON-lines file to write")
    parser.add_argument("--layers", type=int, default=32, help="layers of LLaMA-2-7B's 32 (default 32)")
    parser.add_argument("--impl", choices=("auto", "transformers", "functional"), default="auto")
    args = parser.parse_args(argv)
    if not 1 <= args.layers <= 32:
        parser.error(f"--layers must be 1 to 32, got {args.layers}")
    try:
        import torch
    except ImportError as e:
        print(f"no PyTorch: {e} (torch_bench.py needs torch with CUDA on the GPU machine)")
        return 4
    if not torch.cuda.is_available():
        print(f"no CUDA device: torch {torch.__version__} sees none")
        return 4
    print(f"torch bench on {torch.cuda.get_device_name(0)}: LLaMA-2-7B shape, {args.layers} of 32 layers, random F16 "
          f"weights, torch {torch.__version__}", flush=True)
    rows = None
    if args.impl in ("auto", "transformers"):
        try:
            rows = measure(torch, Transformers(torch, args.layers), args.layers)
        except Exception as e:  # noqa: BLE001 - any failure of transformers' path is reported, then the other runs
            if args.impl == "transformers":
                print(f"transformers' LlamaForCausalLM failed: {type(e).__name__}: {e}")
                return 4 if isinstance(e, ImportError) else 1
            print(f"transformers' LlamaForCausalLM not measured ({type(e).__name__}: {e}); "
                  "measuring LLaMA in torch.nn.functional instead", flush=True)
    if rows is None:
        gc.collect()  # the failed model's memory, held until its traceback went
        torch.cuda.empty_cache()
        model = Functional(torch, args.layers, max(BATCHES), max(PREFILL_TOKENS, CONTEXT + WARMUP_STEPS + DECODE_STEPS))
        rows = measure(torch, model, args.layers)
    with open(args.out, "w", encoding="utf-8") as f:
        for r in rows:
            value = r["value"]
            r["value"] = value if math.isfinite(value) else None
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    bad = [r["measurement"] for r in rows if r["value"] is None]
    print(f"measurement {bad[0]} is not finite" if bad else f"all {len(rows)} measurements made")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

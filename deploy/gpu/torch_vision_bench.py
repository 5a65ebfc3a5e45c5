#!/usr/bin/env python3
"""PyTorch eager next to VisionCheck (issue 12's vision step): transformers' CLIPVisionModel at
mPLUG-Owl2's ViT shape on the same GPU.

CLIP ViT-L/14 at 448 px (1,025 tokens, hidden 1024, 24 layers of 16 heads, MLP 4096, QuickGELU,
LayerNorm eps 1e-6), random F16 weights made on the GPU (no download, no files), eager mode, the
same pass sizes and counts as dev.owlery.engine.cuda.check.VisionCheck.Plan.mplugOwl2: batches of
1 (8 timed passes) and 16 (3 timed passes) after 1 unmeasured. Only the ViT: transformers has no
mPLUG-Owl2 abstractor, so its rows pair with VisionCheck's vit_bN_images_per_s.
Timings: torch.cuda.synchronize() around time.perf_counter().

Usage: python3 deploy/gpu/torch_vision_bench.py OUT.jsonl
Writes one JSON object per measurement to OUT.jsonl ({"measurement", "value", "unit", "detail"}, the
fields of VisionCheck's vision_bench.jsonl) and prints each. Exit 0 measured, 1 a non-finite output,
2 bad arguments, 4 torch, transformers or a CUDA device missing (one line saying which).
"""

import argparse
import json
import math
import sys
import time

# VisionCheck.Plan.mplugOwl2 and SyntheticVisionTower.Geometry.mplugOwl2: change them together.
IMAGE_SIZE, PATCH_SIZE, HIDDEN, INTERMEDIATE, LAYERS, HEADS = 448, 14, 1024, 4096, 24, 16
BATCHES, WARMUP_PASSES, TIMED_PASSES = (1, 16), 1, (8, 3)


def main(argv):
    parser = argparse.ArgumentParser(description="transformers' CLIPVisionModel at mPLUG-Owl2's ViT shape on the GPU")
    parser.add_argument("out", help="the JSON-lines file to write")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError as e:
        print(f"no PyTorch: {e} (torch_vision_bench.py needs torch with CUDA on the GPU machine)")
        return 4
    if not torch.cuda.is_available():
        print(f"no CUDA device: torch {torch.__version__} sees none")
        return 4
    try:
        from transformers import CLIPVisionConfig, CLIPVisionModel
    except ImportError as e:
        print(f"no transformers: {e} (torch_vision_bench.py measures transformers' CLIPVisionModel)")
        return 4
    config = CLIPVisionConfig(hidden_size=HIDDEN, intermediate_size=INTERMEDIATE, num_hidden_layers=LAYERS,
                              num_attention_heads=HEADS, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE,
                              hidden_act="quick_gelu", layer_norm_eps=1e-6)
    print(f"torch vision bench on {torch.cuda.get_device_name(0)}: CLIPVisionModel ViT-L/14 at {IMAGE_SIZE} px, "
          f"random F16 weights, torch {torch.__version__}", flush=True)
    torch.manual_seed(7)
    model = CLIPVisionModel(config).to(device="cuda", dtype=torch.float16).eval()
    rows = []
    with torch.inference_mode():
        for batch, passes in zip(BATCHES, TIMED_PASSES):
            pixels = torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE, device="cuda", dtype=torch.float16)
            for _ in range(WARMUP_PASSES):
                model(pixel_values=pixels)
            torch.cuda.synchronize()
            start = time.perf_counter()
            finite = True
            for _ in range(passes):
                hidden = model(pixel_values=pixels).last_hidden_state
                finite = finite and bool(torch.isfinite(hidden).all())
            torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            value = batch * passes / seconds if finite else math.nan
            rows.append({"measurement": f"vit_b{batch}_images_per_s", "value": value, "unit": "images/s",
                         "detail": f"transformers CLIPVisionModel F16 eager: {batch} images per pass, {passes} passes "
                                   f"after {WARMUP_PASSES} unmeasured"})
            print(f"{rows[-1]['measurement']:<28} {value:12.4g} images/s", flush=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for r in rows:
            r["value"] = r["value"] if math.isfinite(r["value"]) else None
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    bad = [r["measurement"] for r in rows if r["value"] is None]
    print(f"measurement {bad[0]} is not finite" if bad else f"all {len(rows)} measurements made")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Our rasterizer against gsplat on the same scene, in one run: image PSNR, gradient cosine similarity, timings.

For each batch size B, runs `gensync --device cuda bench raster --gaussians N --batch B --size S --dump DIR`
(which times our forward and forward + backward with CUDA events, eager and replayed as CUDA graphs and writes the scene, a fixed upstream
gradient d_image, our image and our gradients as .npy files), then renders the same scene with gsplat
(classic mode, eps2d 0.3, near plane 0.01, SH degree 3, unpacked), back-propagates the same linear loss
L = Σ d_image · image, and times gsplat's forward and forward + backward the same way as
shared/peers/torch_peer.py (CUDA events, warm-up, median).

The image both sides produce is Σ w·c + T·background with a per-pixel background image; for gsplat this is
render + (1 − alpha)·background. Parameters are differentiated in the engine's storage form: log-scales
(gsplat gets exp), opacity logits (gsplat gets sigmoid), raw quaternions (both normalise inside).

Needs PyTorch, numpy and gsplat 1.5.3 (see shared/peers/README.md for installing its wheel offline).
Usage: python3 bench/raster_vs_gsplat.py --gensync PATH/TO/gensync [--gaussians 50000] [--batches 1,8]
       [--size 512] [--reps 50] [--work DIR] [--json OUT.json]
The binary may also come from the GENSYNC_BIN environment variable.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch


def run_ours(binary, n, b, size, reps, folder):
    cmd = [binary, "--device", "cuda", "--quiet", "bench", "raster", "--gaussians", str(n), "--batch", str(b),
           "--size", str(size), "--reps", str(reps), "--dump", folder]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    sys.stdout.write(out)
    line = [l for l in out.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def median_ms(fn, reps, warm=5):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2]


def cosine(a, b):
    a = a.reshape(-1).astype(np.float64)
    b = b.reshape(-1).astype(np.float64)
    den = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / den) if den > 0 else float("nan")


def compare(folder, size, reps):
    from gsplat import rasterization

    dev = "cuda"
    ld = lambda name: torch.from_numpy(np.load(os.path.join(folder, name + ".npy"))).to(dev)
    means, log_scales, quats = ld("means"), ld("log_scales"), ld("quats")
    logits, sh, bg = ld("opacity_logits"), ld("sh"), ld("background")
    viewmats, Ks, d_image = ld("viewmats")[:, None], ld("Ks")[:, None], ld("d_image")
    leaves = [t.requires_grad_() for t in (means, log_scales, quats, logits, sh)]

    def render():
        img, alpha, meta = rasterization(
            means, quats, torch.exp(log_scales), torch.sigmoid(logits), sh, viewmats, Ks, size, size,
            near_plane=0.01, eps2d=0.3, sh_degree=3, packed=False, rasterize_mode="classic")
        return img[:, 0] + (1.0 - alpha[:, 0]) * bg, meta

    image, meta = render()
    meta["means2d"].retain_grad()
    (image * d_image).sum().backward()
    grads = [t.grad.detach().cpu().numpy() for t in leaves]
    mean2d_grad = meta["means2d"].grad[:, 0].detach().cpu().numpy()  # [B,N,2] in pixels
    ndc = np.linalg.norm(mean2d_grad * np.array([size / 2, size / 2]), axis=-1)

    ours_img = np.load(os.path.join(folder, "image.npy"))
    mse = float(np.mean((image.detach().cpu().numpy().astype(np.float64) - ours_img) ** 2))
    res = {"psnr_db": 10 * math.log10(1.0 / mse) if mse > 0 else float("inf"), "max_abs_image_diff":
           float(np.max(np.abs(image.detach().cpu().numpy() - ours_img)))}
    for name, g in zip(["means", "log_scales", "quats", "opacity_logits", "sh"], grads):
        res["cos_d_" + name] = cosine(g, np.load(os.path.join(folder, "d_" + name + ".npy")))
    res["cos_d_mean2d_norm"] = cosine(ndc, np.load(os.path.join(folder, "d_mean2d_norm.npy")))

    def fwd_bwd():
        for t in leaves:
            t.grad = None
        img, _ = render()
        (img * d_image).sum().backward()

    def fwd():
        with torch.no_grad():
            render()

    res["gsplat_fwd_ms"] = median_ms(fwd, reps)
    res["gsplat_fwd_bwd_ms"] = median_ms(fwd_bwd, reps)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gensync", default=os.environ.get("GENSYNC_BIN", "gensync"), help="path of the gensync binary")
    ap.add_argument("--gaussians", type=int, default=50000)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--work", default=None, help="folder for the .npy dumps (default: a temporary one)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="raster_vs_gsplat_")
    results = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "gaussians": args.gaussians,
               "size": args.size, "runs": []}
    for b in [int(x) for x in args.batches.split(",")]:
        folder = os.path.join(work, f"B{b}")
        ours = run_ours(args.gensync, args.gaussians, b, args.size, args.reps, folder)
        r = {"batch": b, "pairs": ours["pairs"], "ours_fwd_ms": ours["fwd_ms"], "ours_fwd_bwd_ms": ours["fwd_bwd_ms"],
             "ours_graph_fwd_ms": ours["graph_fwd_ms"], "ours_graph_fwd_bwd_ms": ours["graph_fwd_bwd_ms"]}
        r.update(compare(folder, args.size, args.reps))
        r["speedup_fwd"] = r["gsplat_fwd_ms"] / r["ours_fwd_ms"]
        r["speedup_fwd_bwd"] = r["gsplat_fwd_bwd_ms"] / r["ours_fwd_bwd_ms"]
        r["speedup_graph_fwd_bwd"] = r["gsplat_fwd_bwd_ms"] / r["ours_graph_fwd_bwd_ms"]
        results["runs"].append(r)
        print(f"B={b} N={args.gaussians} {args.size}^2 on {results['gpu']}")
        print(f"  image PSNR ours vs gsplat {r['psnr_db']:.1f} dB (max |diff| {r['max_abs_image_diff']:.2e})")
        print("  gradient cosine: " + ", ".join(f"{k[4:]} {v:.6f}" for k, v in r.items() if k.startswith("cos_")))
        print(f"  forward         ours {r['ours_fwd_ms']:.3f} ms  gsplat {r['gsplat_fwd_ms']:.3f} ms  "
              f"({r['speedup_fwd']:.2f}x)")
        print(f"  forward+backward ours {r['ours_fwd_bwd_ms']:.3f} ms  gsplat {r['gsplat_fwd_bwd_ms']:.3f} ms  "
              f"({r['speedup_fwd_bwd']:.2f}x)")
        print(f"  ours replayed as CUDA graphs: forward {r['ours_graph_fwd_ms']:.3f} ms, forward+backward "
              f"{r['ours_graph_fwd_bwd_ms']:.3f} ms ({r['speedup_graph_fwd_bwd']:.2f}x gsplat's eager)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print("RESULT", json.dumps(results))


if __name__ == "__main__":
    main()

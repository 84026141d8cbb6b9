"""Train the digits classifier behind the studio's image quality figures
(studio/engine/digits_metric.py) and write its weights as safetensors.

    .venv/bin/python scripts/train_digits_classifier.py [--out PATH] [--epochs 40] [--seed 0]

Data: scikit-learn's 8x8 digits exactly as the studio's ``digits`` source yields them
(raw pixels x / 16 in [0, 1]), split 80 / 20 by ``digits_metric.digits_split()``;
the 20 % is never trained on (the metric's tests use it as held-out data). Augmentation:
one-pixel shifts and a little Gaussian pixel noise, so that the features of samples that
are nearly digits stay near those of digits. Non-digit images (noise, shuffled pixels)
are trained towards the uniform class distribution, so the classifier is not confident
on them. A few CPU minutes; prints the held-out accuracy. The default output is the shipped file (studio.resources).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studio.engine.digits_metric import SPLIT_SEED, WEIGHTS_NAME, DigitsClassifier, digits_split, weights_resource  # noqa: E402

def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A random shift of up to one pixel (zero padded) and N(0, 0.05^2) pixel noise."""
    padded = F.pad(x, (1, 1, 1, 1))
    dx, dy = torch.randint(0, 3, (2,), generator=g).tolist()
    x = padded[:, :, dy : dy + 8, dx : dx + 8]
    return (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0.0, 1.0)


def outliers(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Images that are not digits, as many as ``x``: uniform noise, smoothed noise and
    the digits' own pixels shuffled (the same grey levels, no stroke)."""
    k = len(x) // 3
    uniform = torch.rand((k, 1, 8, 8), generator=g)
    smooth = F.avg_pool2d(torch.rand((k, 1, 10, 10), generator=g), 3, 1)
    smooth = (smooth - smooth.amin((2, 3), keepdim=True)) / (smooth.amax((2, 3), keepdim=True) - smooth.amin((2, 3), keepdim=True) + 1e-6)
    rest = x[2 * k :].flatten(1)
    shuffled = rest[:, torch.randperm(64, generator=g)].reshape(-1, 1, 8, 8)
    return torch.cat([uniform, smooth, shuffled])


def train(epochs: int = 40, seed: int = 0, batch: int = 64) -> tuple[DigitsClassifier, float]:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    (x_tr, y_tr), (x_te, y_te) = digits_split()
    model = DigitsClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * ((len(x_tr) + batch - 1) // batch))
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x_tr), generator=g)
        for i in range(0, len(perm), batch):
            idx = perm[i : i + batch]
            loss = F.cross_entropy(model(augment(x_tr[idx], g)), y_tr[idx])
            # outlier exposure (Hendrycks et al. 2019): non-digits get the uniform
            # distribution as their target, so "confident" means "looks like a digit"
            loss = loss - 0.5 * F.log_softmax(model(outliers(x_tr[idx], g)), 1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(x_te).argmax(1) == y_te).float().mean())
    return model, acc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help=f"weights file (default: the shipped {WEIGHTS_NAME})")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from safetensors.torch import save_file

    model, acc = train(args.epochs, args.seed)
    out = Path(args.out) if args.out else Path(str(weights_resource()))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out), metadata={"held_out_accuracy": f"{acc:.4f}", "split_seed": str(SPLIT_SEED)})
    print(f"held-out accuracy {acc:.4f}; wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

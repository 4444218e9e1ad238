"""combo_loss_torch: pneumoseg's default ComboLoss (3 BCE + 1 Dice + 4 focal, core/combo_loss.h) in PyTorch,
shared by the bench scripts that run the same model in PyTorch (they import it from this folder)."""
import torch


def combo_loss(logits, t):
    s = torch.sigmoid(logits)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, t)
    dice = 1 - (2 * (s * t).sum() + 1e-6) / (s.sum() + t.sum() + 1e-6)
    sc, tc = s.clamp(1e-8, 1 - 1e-8), t.clamp(1e-8, 1 - 1e-8)
    pt = (1 - tc) * (1 - sc) + tc * sc
    focal = (-(1 - pt) ** 2 * torch.log(pt)).mean()
    return 3 * bce + dice + 4 * focal

#!/usr/bin/python3
"""make_ops_golden: PyTorch's answers for the ops whose semantics are PyTorch's own conventions.

Writes into tests/golden/ (tests/test_ops.c checks the ref backend, and through it every backend, against them):
  ops_pool_sizes.npy      rows (in, kernel, stride, pad, ceil_mode, out): the output length of
                          torch.nn.functional.max_pool2d, including ceil_mode=True (SENet's stem pool) and its
                          rule that the last window must start inside the input or its left padding.
  ops_bilinear_small.npy  (2, 2, 3, 5, 7): x, and dx = the gradient of sum(y * dy) with respect to x
  ops_bilinear_large.npy  (2, 2, 3, 10, 14): y = F.interpolate(x, scale_factor=2, mode='bilinear',
                          align_corners=False) (AlbuNet's decoder upsampling), and the dy used for dx
Run: /usr/bin/python3 tests/ref/make_ops_golden.py   (Debian 12's python3-torch 1.13 and numpy; from any folder)
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden")

sizes = []
for n in (1, 2, 3, 5, 7, 8, 9, 10, 16, 17, 56, 112, 113, 224):
    for k, s, p in ((3, 2, 0), (3, 2, 1), (2, 2, 0), (2, 2, 1), (3, 1, 1), (4, 3, 2), (3, 3, 1), (5, 2, 2)):
        for ceil in (False, True):
            try:
                out = F.max_pool2d(torch.zeros(1, 1, n, n), k, s, p, ceil_mode=ceil).shape[-1]
            except RuntimeError:  # the output would be empty
                out = 0
            sizes.append((n, k, s, p, int(ceil), out))
np.save(os.path.join(root, "ops_pool_sizes.npy"), np.array(sizes, np.float32))

g = torch.Generator().manual_seed(20261203)
x = torch.randn(2, 3, 5, 7, generator=g).requires_grad_()
y = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
dy = torch.randn(y.shape, generator=g)
y.backward(dy)
np.save(os.path.join(root, "ops_bilinear_small.npy"), torch.stack([x.detach(), x.grad]).numpy().astype(np.float32))
np.save(os.path.join(root, "ops_bilinear_large.npy"), torch.stack([y.detach(), dy]).numpy().astype(np.float32))
print(torch.__version__, len(sizes), "pool sizes,", "bilinear", tuple(x.shape), "->", tuple(y.shape))

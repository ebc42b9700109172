import pytest
import torch
import torch.nn.functional as F

from nets.dspf import DSPF, warp

torch.set_num_threads(1)

VARIANTS = {  # paper Table 4, top to bottom
    "direct": dict(coarse_to_fine=False, residual=False, warping=False),
    "coarse_to_fine": dict(coarse_to_fine=True, residual=False, warping=False),
    "residual": dict(coarse_to_fine=True, residual=True, warping=False),
    "warping": dict(coarse_to_fine=True, residual=True, warping=True),
}


def pyramid(batch=2, channels=12, size=32, grad=False):
    g = torch.Generator().manual_seed(0)
    return [
        torch.randn(batch, channels, size >> i, size >> i, generator=g).requires_grad_(
            grad
        )
        for i in range(4)
    ]


def test_zero_flow_warp_is_identity():
    x = torch.randn(2, 5, 6, 7)
    assert torch.allclose(warp(x, torch.zeros(2, 2, 6, 7)), x, atol=1e-6)


def test_flow_of_one_cell_reads_the_neighbour():
    x = torch.randn(1, 3, 6, 7)
    flow = torch.zeros(1, 2, 6, 7)
    flow[:, 0] = 1.0  # sample at u + (1, 0): the cell to the right
    assert torch.allclose(warp(x, flow)[..., :-1], x[..., 1:], atol=1e-6)
    flow = torch.zeros(1, 2, 6, 7)
    flow[:, 1] = 0.5  # half a cell down: mean of the cell and the one below
    mid = (x[..., :-1, :] + x[..., 1:, :]) / 2
    assert torch.allclose(warp(x, flow)[..., :-1, :], mid, atol=1e-6)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variants_forward_backward(name):
    torch.manual_seed(0)
    net = DSPF(12, 8, **VARIANTS[name])
    feats = pyramid(grad=True)
    fields = net(feats)
    assert [tuple(f.shape) for f in fields] == [
        (2, 2, 32 >> i, 32 >> i) for i in range(4)
    ]
    sum(f.abs().mean() for f in fields).backward()
    assert all(x.grad.abs().sum() > 0 for x in feats)
    assert all(p.grad is not None for p in net.parameters())
    if name == "warping":  # zero-initialised flow convs still receive a gradient
        assert all(conv.weight.grad.abs().sum() > 0 for conv in net.flow)


def test_fresh_warping_equals_plain_upsampling():
    """The flow convs start at zero, so warping starts as the identity."""
    torch.manual_seed(0)
    warping = DSPF(12, 8, **VARIANTS["warping"]).eval()
    plain = DSPF(12, 8, **VARIANTS["residual"]).eval()
    result = plain.load_state_dict(warping.state_dict(), strict=False)
    assert result.missing_keys == [] and all(
        k.startswith("flow.") for k in result.unexpected_keys
    )
    feats = pyramid()
    for a, b in zip(warping(feats), plain(feats), strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_zero_residual_passes_twice_the_upsampled_coarser_field():
    torch.manual_seed(0)
    net = DSPF(12, 8, **VARIANTS["warping"]).eval()
    for fuse in net.fuse:
        torch.nn.init.zeros_(fuse[-1].weight)
        torch.nn.init.zeros_(fuse[-1].bias)
    fields = net(pyramid())
    for finer, coarser in zip(fields[:-1], fields[1:], strict=True):
        up = F.interpolate(
            coarser, size=finer.shape[-2:], mode="bilinear", align_corners=False
        )
        assert torch.allclose(finer, 2 * up, atol=1e-5)
    assert fields[-1].abs().sum() > 0


def test_direct_regression_coarse_levels_are_pooled_finest():
    torch.manual_seed(0)
    fields = DSPF(12, 8, **VARIANTS["direct"]).eval()(pyramid())
    for i in range(1, 4):
        assert torch.allclose(
            fields[i], F.avg_pool2d(fields[0], 2**i) / 2**i, atol=1e-6
        )

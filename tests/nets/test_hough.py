import math

import torch

from nets.hough import hough_vote

torch.set_num_threads(1)


def disk_votes(h, w, centre, radius):
    """Heat 1 on a disk of `radius` cells around (x, y), offsets pointing at it."""
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64),
        torch.arange(w, dtype=torch.float64),
        indexing="ij",
    )
    cx, cy = centre
    disk = ((xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2).double()
    heat = disk.view(1, 1, h, w)
    offsets = torch.stack([(cx - xs) * disk, (cy - ys) * disk]).view(1, 1, 2, h, w)
    return heat, offsets, disk.sum()


def test_disk_pointing_at_a_cell_gives_a_sharp_peak_there():
    heat, offsets, count = disk_votes(20, 24, (9.0, 11.0), 3.0)
    hough = hough_vote(heat, offsets, 3.0)[0, 0]
    assert hough[11, 9] == hough.max()
    assert torch.isclose(hough[11, 9], count / (math.pi * 9.0))
    assert abs(float(hough[11, 9]) - 1.0) < 0.1  # a full disk sums to ~1
    assert hough.sum() == hough[11, 9]  # every vote landed on that one cell


def test_sub_cell_target_is_split_bilinearly():
    heat, offsets, count = disk_votes(12, 12, (4.25, 6.5), 2.5)
    hough = hough_vote(heat, offsets, 2.5)[0, 0]
    total = count / (math.pi * 2.5**2)
    expected = torch.zeros(12, 12, dtype=torch.float64)
    expected[6, 4], expected[6, 5] = 0.75 * 0.5 * total, 0.25 * 0.5 * total
    expected[7, 4], expected[7, 5] = 0.75 * 0.5 * total, 0.25 * 0.5 * total
    assert torch.allclose(hough, expected)


def test_votes_outside_the_map_are_dropped_and_planes_stay_apart():
    heat = torch.ones(2, 3, 8, 8)
    offsets = torch.zeros(2, 3, 2, 8, 8)
    offsets[0, 0, 0] = 1000.0  # far right
    offsets[0, 1, 1] = -7.5  # half of each vote above the top row
    hough = hough_vote(heat, offsets, 1.0)
    assert hough[0, 0].sum() == 0
    # Row i votes at row i - 7.5: only row 7 lands (half in row 0), the rest is off-map.
    assert torch.isclose(hough[0, 1].sum(), torch.tensor(8 * 0.5 / math.pi))
    assert torch.allclose(hough[1], torch.full((3, 8, 8), 1 / math.pi))


def test_gradients_flow_to_heat_and_offsets():
    torch.manual_seed(0)
    heat = torch.rand(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    offsets = (torch.rand(1, 2, 2, 6, 7, dtype=torch.float64) * 4 - 2).requires_grad_()
    assert torch.autograd.gradcheck(lambda m, o: hough_vote(m, o, 1.5), (heat, offsets))
    hough_vote(heat, offsets, 1.5)[0, 0, 3, 3].backward()
    assert heat.grad.abs().sum() > 0 and offsets.grad.abs().sum() > 0

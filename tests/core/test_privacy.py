import torch

from ddforge.core.privacy import nearest, privacy_check


def test_nearest_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    q, p = torch.rand(5, 1, 4, 4, generator=g), torch.rand(30, 1, 4, 4, generator=g)
    d, i = nearest(q, p, "rmse", chunk=7)
    brute = ((q.flatten(1)[:, None] - p.flatten(1)[None]) ** 2).mean(2).sqrt()
    torch.testing.assert_close(d, brute.min(1).values.double())
    assert torch.equal(i, brute.argmin(1))


def test_an_exact_copy_is_flagged_and_a_distant_image_is_not():
    g = torch.Generator().manual_seed(1)
    real = torch.rand(20, 1, 8, 8, generator=g)
    feats = torch.randn(20, 16, generator=g)
    synthetic = torch.stack([real[3], torch.full((1, 8, 8), 0.5) + 0.4 * torch.randn(1, 8, 8, generator=g)])
    syn_feats = torch.stack([feats[3], torch.randn(16, generator=g)])
    report = privacy_check(synthetic, real, syn_feats, feats, pixel_rmse_threshold=0.05,
                           feature_cosine_threshold=0.01, reference_pixels=real[:5])
    first, second = report["images"]
    assert first["near_copy"] and first["nearest_pixel_index"] == 3 and first["pixel_rmse"] < 1e-9
    assert not second["near_copy"]
    assert report["num_flagged"] == 1
    assert report["reference_real_to_real_pixel_rmse_median"] == 0.0  # reference images are in the pool

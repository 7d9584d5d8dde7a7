"""Expert trajectories on real data: trained once, reused by every trajectory-matching method."""

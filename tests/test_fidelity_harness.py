"""The fidelity harness's own arithmetic: targets, DD-Ranking figures and the flatness of a loss curve,
checked against hand-written numbers (the runs themselves are the harness's job, not a unit test's)."""
import pytest

from tests.benchmark_script import load_benchmark

fidelity = load_benchmark("fidelity")


def _evaluation(mean: float, std: float = 0.01, models: int = 5, **extra) -> dict:
    test = {"accuracy": {"mean": mean, "std": std}, "models": [{}] * models}
    return {"final": {"test": test}, **extra}


def _results(ipc_acc: dict[int, dict[str, float]]) -> dict[int, dict]:
    out = {}
    for ipc, accs in ipc_acc.items():
        evaluations = {name: _evaluation(acc) for name, acc in accs.items()}
        out[ipc] = {"wall_seconds": 600.0, "evaluations": evaluations, "iterations": 20, "params": "",
                    "methods": {m: {"loss": [4.0] * 12 + [2.0] * 4 + [1.0] * 4, "distill_seconds": 12.5, "stages": None}
                                for m in fidelity.METHODS}}
    return out


def test_flattening_compares_the_last_fifth_with_the_fifth_before():
    assert fidelity.flattening([4, 4, 4, 4, 4, 4, 2, 2, 1, 1]) == pytest.approx(-0.5)
    assert fidelity.flattening([3, 3, 3, 3, 3, 3, 1, 1, 1, 1]) == pytest.approx(0.0)


def test_a_subset_still_falling_is_not_hidden_by_a_flat_last_subset():
    # SeqMatch's history: subset 1 falls by half over its last fifth, subset 2 is flat
    falling, flat = [4.0] * 6 + [2.0] * 2 + [1.0] * 2, [1.0] * 10
    assert fidelity.steepest_flattening({"loss": falling + flat, "stages": [{}, {}]}) == pytest.approx(-0.5)
    assert fidelity.steepest_flattening({"loss": flat + falling, "stages": [{}, {}]}) == pytest.approx(-0.5)
    assert fidelity.steepest_flattening({"loss": flat, "stages": None}) == pytest.approx(0.0)


def test_a_loss_is_flat_within_two_percent_and_a_rise_counts_as_flat():
    assert fidelity.flat_target("IPC 10, mtt", -0.007).endswith("(flat: ≥ -2 %) → met")
    assert fidelity.flat_target("IPC 10, mtt", 0.038).endswith("→ met")
    assert fidelity.flat_target("IPC 10, mtt", -0.038) == \
        "- IPC 10, mtt: loss -3.8 % over the last fifth (flat: ≥ -2 %) → NOT met, still falling"


def test_targets_ior_and_hlr_from_known_accuracies(tmp_path):
    methods = {"mtt": 0.84, "datm": 0.80, "seqmatch": 0.85, "iadd": 0.83, "datadam": 0.78}
    results = _results({1: {**{m: 0.71 for m in methods}, "datm": 0.70, "random_real": 0.50, "full_data": 0.90},
                        10: {**methods, "random_real": 0.73, "full_data": 0.90}})
    # DATM's soft-label set trained with hard labels scores 0.60: HLR 90 - 60 = 30 points
    results[10]["evaluations"]["datm"]["hard_label"] = {"test": {"accuracy": {"mean": 0.60}}}
    # DataDAM on its own network: compared with a random real subset trained the same way (0.70, not 0.73)
    results[10]["evaluations"]["datadam"]["random_real_same_recipe"] = _evaluation(0.70)
    block = fidelity.render("test_env", results, fidelity.DOC.parent / "figures" / "x.png")
    assert "- IPC 1, mtt: 71.00 vs DSA's 70.6 → met" in block
    assert "- IPC 1, datm: 70.00 vs DSA's 70.6 → NOT met" in block
    # 84 - 73 = 11 points, 84 / 90 = 93.3 %: met; DATM 80 - 73 = 7 points: not met
    assert "- IPC 10, mtt: +11.00 points over random real (≥ 10), 93.3 % of full data (≥ 90 %) → met" in block
    assert "- IPC 10, datm: +7.00 points over random real (≥ 10), 88.9 % of full data (≥ 90 %) → NOT met" in block
    assert "| datm | +20.00 | 20.00 | +7.00 | 30.00 |" in block     # IOR / HLR at IPC 1, then IPC 10
    assert "| 10 | mtt | 20 | 12.5 | -50.0 % |" in block
    # every method's curve is judged, DataDAM's included, at each IPC: these fall by half over the last fifth
    assert "- IPC 1, datadam: loss -50.0 % over the last fifth (flat: ≥ -2 %) → NOT met, still falling" in block
    assert block.count("→ NOT met, still falling") == 2 * len(fidelity.METHODS)
    assert "| datadam | +21.00 | 19.00 | +8.00 | 12.00 |" in block     # 78 - 70 at IPC 10


def test_the_block_replaces_its_own_markers_only(tmp_path, monkeypatch):
    doc = tmp_path / "fidelity.md"
    doc.write_text("# Fidelity\n\nhand-written\n")
    monkeypatch.setattr(fidelity, "DOC", doc)
    fidelity.write_block("<!-- fidelity:begin e -->\nfirst\n<!-- fidelity:end e -->", "e")
    fidelity.write_block("<!-- fidelity:begin e -->\nsecond\n<!-- fidelity:end e -->", "e")
    text = doc.read_text()
    assert "hand-written" in text and "second" in text and "first" not in text


def test_latest_reads_a_versioned_catalog_entry_at_its_newest_version(tmp_path):
    """comparison.md and synthetic_set.pt are versioned: <name>/<timestamp>/<name>."""
    entry = tmp_path / "comparison.md"
    for version in ("2026-11-21T19.00.00.000Z", "2026-11-21T20.00.00.000Z"):
        (entry / version).mkdir(parents=True)
        (entry / version / "comparison.md").write_text(version)
    assert fidelity.latest(entry).read_text() == "2026-11-21T20.00.00.000Z"
    plain = tmp_path / "report_warnings.json"
    plain.write_text("{}")
    assert fidelity.latest(plain) == plain


def test_full_data_is_reused_only_when_the_extra_params_touch_methods_alone():
    results = _results({10: {"mtt": 0.8, "random_real": 0.7, "full_data": 0.9}})
    full = results[10]["evaluations"]["full_data"]
    assert fidelity.full_data_of(results, "") is full
    assert fidelity.full_data_of(results, "mtt.distill.preset=cifar10,seqmatch.distill.max_start_epoch=6") is full
    # the network or the evaluation change the full-data baseline: train it again
    assert fidelity.full_data_of(results, "mtt.distill.preset=cifar10,network.width=64") is None
    assert fidelity.full_data_of(results, "evaluation.full_data.epochs=20") is None
    assert fidelity.full_data_of({}, "") is None


def test_columns_run_with_different_params_are_reproduced_by_one_command():
    results = _results({1: {"mtt": 0.72, "random_real": 0.5, "full_data": 0.9},
                        10: {"mtt": 0.8, "random_real": 0.7, "full_data": 0.9}})
    for ipc in results:
        results[ipc]["evaluations"].update({m: _evaluation(0.7) for m in fidelity.METHODS if m != "mtt"})
    # IPC 1 collected before the settings were stored: only the command that made it is known
    del results[1]["iterations"], results[1]["params"]
    results[1]["command"] = ("python benchmarks/fidelity.py --env e --ipc 1 10 --iterations 500 100 --rerun 1 "
                             '--params "mtt.distill.preset=cifar10,seqmatch.distill.max_start_epoch=6"')
    results[10].update(iterations=300, params="")
    results[1]["methods"]["mtt"]["config"] = {"syn_steps": 50, "max_start_epoch": 2, "lr_lr": 1e-07}
    block = fidelity.render("e", results, fidelity.DOC.parent / "figures" / "x.png")
    command = ("python benchmarks/fidelity.py --env e --ipc 1 10 --iterations 500 300 "
               '--ipc-params "1=mtt.distill.preset=cifar10,seqmatch.distill.max_start_epoch=6"')
    assert f"Reproduce: `{command}`" in block
    assert "| 1 | mtt | 20 | 12.5 | -50.0 % | syn_steps 50, max_start_epoch 2, lr_lr 1e-07, lr_update log |" in block
    # and that command gives each IPC the params its column was made with
    args = fidelity.build_parser().parse_args(fidelity.shlex.split(command)[2:])
    assert fidelity.params_per_ipc(args) == {1: "mtt.distill.preset=cifar10,seqmatch.distill.max_start_epoch=6",
                                             10: ""}


def test_shared_params_come_before_an_ipcs_own_and_a_stray_ipc_is_refused():
    parse = fidelity.build_parser().parse_args
    args = parse(["--ipc", "1", "10", "--params", "network.width=64", "--ipc-params", "10=mtt.distill.lr_lr=1e-6"])
    assert fidelity.params_per_ipc(args) == {1: "network.width=64", 10: "network.width=64,mtt.distill.lr_lr=1e-6"}
    with pytest.raises(SystemExit, match="50=mtt"):
        fidelity.params_per_ipc(parse(["--ipc", "1", "10", "--ipc-params", "50=mtt.distill.lr_lr=1e-6"]))


def test_a_run_from_before_lr_update_was_recorded_shows_the_log_update_it_ran():
    results = _results({1: {**{m: 0.72 for m in fidelity.METHODS}, "random_real": 0.5, "full_data": 0.9}})
    results[1]["methods"]["mtt"]["config"] = {"syn_steps": 20}
    results[1]["methods"]["datm"]["config"] = {"syn_steps": 20, "lr_update": "sgd"}
    block = fidelity.render("e", results, fidelity.DOC.parent / "figures" / "x.png")
    assert "| 1 | mtt | 20 | 12.5 | -50.0 % | syn_steps 20, lr_update log |" in block
    assert "| 1 | datm | 20 | 12.5 | -50.0 % | syn_steps 20, lr_update sgd |" in block


def test_replicates_are_judged_on_their_means_with_the_gain_paired_per_replicate():
    results = _results({10: {**{m: 0.80 for m in fidelity.METHODS}, "random_real": 0.74, "full_data": 0.90}})
    replicate = _results({10: {"mtt": 0.86, "datm": 0.78, "seqmatch": 0.8, "iadd": 0.8, "random_real": 0.72}})[10]
    # as `collect` stores them: in METHODS order, which is not TRAJECTORY_METHODS order
    replicate["methods"] = {m: replicate["methods"][m] for m in fidelity.METHODS if m in fidelity.TRAJECTORY_METHODS}
    results[10]["replicates"] = {"1": replicate}
    block = fidelity.render("e", results, fidelity.DOC.parent / "figures" / "x.png")
    # MTT 80 and 86: mean 83, sample std 4.24; gains 80-74 = 6 and 86-72 = 14: 10 ± 5.66; 83 / 90 = 92.2 %
    assert "| mtt | 80.00 | 86.00 | 83.00 ± 4.24 | +10.00 ± 5.66 |" in block
    assert "- IPC 10, mtt, mean of 2 replicates: +10.00 points over random real (≥ 10), 92.2 % of full data" \
           " (≥ 90 %) → met" in block
    # DATM 80 and 78: gains 6 and 6, 79 / 90 = 87.8 %
    assert "- IPC 10, datm, mean of 2 replicates: +6.00 points over random real (≥ 10), 87.8 % of full data" \
           " (≥ 90 %) → NOT met" in block
    assert "| random real | 74.00 | 72.00 | 73.00 ± 1.41 | |" in block
    replicate_table = block.split("Distillation replicates")[1].split("Targets on")[0]
    assert "| datadam |" not in replicate_table   # not replicated: not in that table
    assert "--replicates 10=2" in block and "--replicate-methods" not in block
    args = fidelity.build_parser().parse_args(["--ipc", "1", "10", "--replicates", "10=3"])
    assert fidelity.replicates_per_ipc(args) == {1: 1, 10: 3}
    with pytest.raises(SystemExit, match="50=2"):
        fidelity.replicates_per_ipc(fidelity.build_parser().parse_args(["--ipc", "1", "10", "--replicates", "50=2"]))


def test_a_replicated_set_on_its_own_preparation_gains_over_its_own_random_real():
    """DataDAM, unwhitened beside whitened trajectory methods, is compared per replicate with the random real
    subset of its own preparation (`random_real_same_recipe`), not with the whitened shared one."""
    results = _results({10: {**{m: 0.80 for m in fidelity.METHODS}, "random_real": 0.74, "full_data": 0.90}})
    results[10]["evaluations"]["datadam"]["random_real_same_recipe"] = _evaluation(0.70)
    replicate = _results({10: {"datadam": 0.78, "random_real": 0.72}})[10]
    replicate["evaluations"]["datadam"]["random_real_same_recipe"] = _evaluation(0.71)
    replicate["methods"] = {"datadam": replicate["methods"]["datadam"]}
    results[10]["replicates"] = {"1": replicate}
    block = fidelity.render("e", results, fidelity.DOC.parent / "figures" / "x.png")
    # gains 80 - 70 = 10 and 78 - 71 = 7: 8.5 ± 2.12 (against the shared random real: 6 and 6)
    assert "| datadam | 80.00 | 78.00 | 79.00 ± 1.41 | +8.50 ± 2.12 |" in block

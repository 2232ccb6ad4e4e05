"""The study: training, evaluation, analyses, tables, paper numbers, claims, findings and figures.

- :mod:`.analyses`: The analyses beside the accuracy tables: sound-source localization under
  attack (Sec. 4.5,.
- :mod:`.analysis_arrays`: The analysis jobs' results as .npz arrays: localization maps and
  t-SNE embeddings.
- :mod:`.autoeval`: One model under APGD and Square: each attack's accuracy and the worst case,
  per mode.
- :mod:`.autotable`: The project's own table "Defenses under APGD and Square" and its gradient-
  masking check.
- :mod:`.claims`: The claims of Tian & Xu, CVPR 2021 (arXiv:2104.02000), Sec. 4.3-4.6 and
  B.1-B.3, as checks.
- :mod:`.evaluate`: Robustness evaluation under single-modality and audio-visual attacks.
- :mod:`.figures`: Figures of Tian & Xu, CVPR 2021 (arXiv:2104.02000), drawn from this run's
  outputs.
- :mod:`.findings`: The paper's claims checked on this run and on the paper's own printed
  tables.
- :mod:`.finetune`: The full defense as Tian & Xu train it: MinSim+ExFMem fine-tuned through the
  sparse coding.
- :mod:`.paper`: The published numbers of the paper's Tables 1-6, for side-by-side reporting.
- :mod:`.rendering`: Tables 1-6 rendered: Markdown and LaTeX beside the long CSV, our number and
  the paper's.
- :mod:`.running`: What training, evaluation and the analyses share to run a model over a
  manifest: the.
- :mod:`.table_specs`: The specifications of the paper's Tables 1-6, one module each, loaded by
  name.
- :mod:`.tables`: Tables 1-6 of Tian & Xu, CVPR 2021 (arXiv:2104.02000) from this run's
  evaluations.
- :mod:`.train`: Seeded training loop for the audio-visual event recognition models.
- :mod:`.verdicts`: How sure a comparison of accuracies is: n, the difference and a 95 %
  interval.

Public names are exported lazily: importing the package imports none of its
modules; ``from avmodels.<package> import name`` imports the one defining ``name``.
"""

from __future__ import annotations

from avmodels import lazy_exports

_SUBMODULES = (
    "analyses",
    "analysis_arrays",
    "autoeval",
    "autotable",
    "claims",
    "evaluate",
    "figures",
    "findings",
    "finetune",
    "paper",
    "rendering",
    "running",
    "table_specs",
    "tables",
    "train",
    "verdicts",
)
_EXPORTS = {  # public name -> the module defining it
    "ATTACKED": "evaluate",
    "ATTACKED_MODES": "autoeval",
    "ATTACK_COLORS": "figures",
    "ATTACK_NAMES": "rendering",
    "ATTACK_TABLES": "claims",
    "Attacker": "evaluate",
    "BY_CONSTRUCTION": "findings",
    "Budget": "evaluate",
    "CITATION": "paper",
    "CLAIMS": "claims",
    "CLEAN_MARGIN": "claims",
    "COLUMNS": "autoeval",
    "Cells": "claims",
    "Check": "verdicts",
    "CheckFn": "claims",
    "Claim": "findings",
    "ClaimSpec": "claims",
    "DATASET_NAMES": "paper",
    "DEFAULT_BUDGETS": "tables",
    "DEFENDED": "autotable",
    "DEFENSE_TABLES": "claims",
    "DPI": "figures",
    "EpochItems": "running",
    "EpochSampler": "running",
    "FULL": "claims",
    "GRADIENT_FREE": "autotable",
    "LEVEL": "verdicts",
    "LOCALIZATION_COLUMNS": "analyses",
    "LOG_COLUMNS": "train",
    "LocalizationResult": "analyses",
    "MIM_OTHERS": "claims",
    "MISSING": "rendering",
    "MODES": "figures",
    "MODE_HEADERS": "autotable",
    "MODE_TITLES": "figures",
    "MOVED": "claims",
    "Manifest": "running",
    "Measure": "verdicts",
    "NOT_EVALUATED": "findings",
    "OTHERS": "claims",
    "PAPER_COLUMNS": "paper",
    "PAPER_RESULTS": "paper",
    "PAPER_TEST_CLIPS": "findings",
    "PDF_METADATA": "figures",
    "PNG_METADATA": "figures",
    "PaperCells": "findings",
    "RC": "figures",
    "REFERENCE_DATASETS": "paper",
    "RESAMPLES": "verdicts",
    "RunCells": "findings",
    "SEED": "verdicts",
    "SOLVER_COLUMNS": "evaluate",
    "STREAMS": "analysis_arrays",
    "STREAM_LABELS": "figures",
    "STREAM_MARKERS": "figures",
    "Score": "verdicts",
    "TABLES": "tables",
    "TITLE": "autotable",
    "TableMap": "findings",
    "TrainConfig": "train",
    "UNIMODAL_MARK": "tables",
    "WORST": "autotable",
    "accuracy": "evaluate",
    "accuracy_on": "running",
    "as_evaluations": "tables",
    "attack_label": "autoeval",
    "attack_specs": "autoeval",
    "attacked_batches": "evaluate",
    "attention_scores": "analyses",
    "beats": "claims",
    "budget_curves": "figures",
    "budget_key": "evaluate",
    "build_autoattack_table": "autotable",
    "build_table": "tables",
    "check_claim": "findings",
    "check_claims": "findings",
    "clopper_pearson": "verdicts",
    "compare": "verdicts",
    "correctness_string": "evaluate",
    "dataset_name": "paper",
    "evaluate_autoattack": "autoeval",
    "evaluate_localization": "analyses",
    "extract_features": "running",
    "failed_autoattack": "autoeval",
    "failed_evaluation": "evaluate",
    "feature_sets": "analyses",
    "find_evaluation": "tables",
    "finetune_full_defense": "finetune",
    "fit": "train",
    "job_budgets": "evaluate",
    "latex_escape": "rendering",
    "load_arrays": "analysis_arrays",
    "load_autoattack": "autotable",
    "load_evaluations": "tables",
    "loader_workers": "running",
    "make_loader": "running",
    "manifest_frame": "analyses",
    "masking_checks": "autotable",
    "masking_findings": "autotable",
    "masking_verdict": "autotable",
    "mode_budgets": "evaluate",
    "model_modalities": "running",
    "nominal_budgets": "evaluate",
    "pairs": "claims",
    "paper_caption": "paper",
    "paper_cells": "paper",
    "paper_claims": "findings",
    "paper_data": "paper",
    "paper_datasets": "paper",
    "paper_evaluations": "tables",
    "paper_notes": "paper",
    "paper_value": "paper",
    "parameter_groups": "train",
    "per_clip": "findings",
    "plot_budget_curves": "figures",
    "plot_localization": "figures",
    "plot_tsne": "figures",
    "reference_dataset": "paper",
    "resolve_device": "running",
    "restrict_budget": "evaluate",
    "resume_path": "train",
    "run_settings": "running",
    "save_figure": "figures",
    "save_localization_npz": "analysis_arrays",
    "save_tsne_npz": "analysis_arrays",
    "seed_everything": "running",
    "split_batch": "running",
    "spread_over_classes": "analyses",
    "summarize": "train",
    "tsne_embed": "figures",
    "tsne_streams": "analyses",
    "write_autoattack_table": "autotable",
    "write_findings": "findings",
    "write_table": "rendering",
}
__all__ = [*_SUBMODULES, *_EXPORTS]


__getattr__, __dir__ = lazy_exports(__name__, _SUBMODULES, _EXPORTS, globals())

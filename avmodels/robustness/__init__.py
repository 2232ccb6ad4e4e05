"""Attacks, defenses, sparse coding and the robustness metrics.

- :mod:`.active_set`: The exact Lasso solver of ExFMem's sparse coding: feature-sign search on a
  growing working set.
- :mod:`.apgd`: Auto-PGD (Croce & Hein, ICML 2020, arXiv:2003.01690), L-inf, over a dict of
  named inputs.
- :mod:`.attacks`: L-inf attacks over a dict of named inputs: FGSM, PGD and MIM (Tian & Xu, CVPR
  2021, Sec. 4.2).
- :mod:`.bpda`: BPDA for ExFMem (Athalye et al., ICML 2018, arXiv:1802.00420): attack through
  the sparse coder.
- :mod:`.defended`: A trained model as the evaluation sees it: its test-time defense and the
  attacker's loss.
- :mod:`.defenses`: Audio-visual defenses of Tian & Xu, CVPR 2021 (arXiv:2104.02000), Sec. 3.3
  and 4.6.
- :mod:`.exfmem`: ExFMem, the external feature memory banks of Tian & Xu, CVPR 2021
  (arXiv:2104.02000), Sec. 3.3.2.
- :mod:`.lasso`: Batched Lasso solvers for ExFMem's sparse coding (Tian & Xu, CVPR 2021, Eq. 4).
- :mod:`.metrics`: The summary metrics of Tian & Xu, CVPR 2021 (arXiv:2104.02000), Sec. 4.6.
- :mod:`.square`: Square attack (Andriushchenko et al., ECCV 2020, arXiv:1912.00049), L-inf,
  gradient-free.
- :mod:`.worstcase`: Worst-case robustness over a list of attacks, per clip (the AutoAttack
  protocol).

Public names are exported lazily: importing the package imports none of its
modules; ``from avmodels.<package> import name`` imports the one defining ``name``.
"""

from __future__ import annotations

from avmodels import lazy_exports

_SUBMODULES = (
    "active_set",
    "apgd",
    "attacks",
    "bpda",
    "defended",
    "defenses",
    "exfmem",
    "lasso",
    "metrics",
    "square",
    "worstcase",
)
_EXPORTS = {  # public name -> the module defining it
    "APGD": "apgd",
    "ATTACKS": "attacks",
    "Attack": "attacks",
    "AttackSpec": "worstcase",
    "BPDA": "bpda",
    "Budget": "attacks",
    "DEFAULT_TOL": "lasso",
    "EVAL_COLUMNS": "metrics",
    "ExFMemModel": "exfmem",
    "FGSM": "attacks",
    "HALVINGS": "square",
    "LASSO_METHODS": "lasso",
    "LOSSES": "apgd",
    "LassoSolution": "lasso",
    "MIM": "attacks",
    "MODES": "metrics",
    "PCLLoss": "defenses",
    "PGD": "attacks",
    "PerSampleLoss": "apgd",
    "RAW_BOUNDS": "attacks",
    "STOP_RULES": "lasso",
    "Square": "square",
    "TRAINING_LOSSES": "defenses",
    "TrainingLoss": "defenses",
    "WORST": "worstcase",
    "accuracies": "worstcase",
    "active_set_lasso": "active_set",
    "adaptive_attack_loss": "defenses",
    "attack_average": "metrics",
    "attack_loss": "defended",
    "average_with_clean": "metrics",
    "build_attack": "attacks",
    "build_memory_banks": "exfmem",
    "check_shapes": "lasso",
    "checkpoints": "apgd",
    "cosine_similarity": "defenses",
    "cross_entropy_loss": "attacks",
    "dlr_loss": "apgd",
    "eval_mode": "attacks",
    "exfmem_model": "exfmem",
    "fused_features": "defenses",
    "lasso_objective": "lasso",
    "lipschitz_constant": "lasso",
    "load_banks": "exfmem",
    "load_evaluated_model": "defended",
    "make_training_loss": "defenses",
    "margin_loss": "square",
    "masked_solve": "lasso",
    "maxsim_loss": "defenses",
    "minsim_loss": "defenses",
    "predict_sets": "attacks",
    "prototype_conformity": "defenses",
    "proximal_steps": "lasso",
    "relative_gap": "lasso",
    "relative_improvement": "metrics",
    "solve_lasso": "lasso",
    "sparse_code": "lasso",
    "targeted_dlr_loss": "apgd",
    "training_loss_attack": "defenses",
    "window_fraction": "square",
    "worst_case": "worstcase",
    "worst_case_by_mode": "worstcase",
}
__all__ = [*_SUBMODULES, *_EXPORTS]


__getattr__, __dir__ = lazy_exports(__name__, _SUBMODULES, _EXPORTS, globals())

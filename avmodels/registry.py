"""The names the study is built from, each listed once and free of heavy imports.

Configuration schema, workflow, tables and figures read these tuples; the class registries
(``fusion.FUSIONS``, ``attacks.ATTACKS``) pair them with their implementations, and a test
checks the schema's enums against them.
"""

from __future__ import annotations

#: Fusions of the audio and visual features (Sec. 3.1), keys of ``fusion.FUSIONS``.
FUSIONS = ("sum", "concat", "film", "gated_sum", "gated_concat")
#: L-inf attacks (Sec. 4.2), keys of ``attacks.ATTACKS``.
ATTACKS = ("fgsm", "pgd", "mim")
#: The attacks of AutoAttack (Croce & Hein, ICML 2020): APGD and the gradient-free Square;
#: with ``ATTACKS``, the keys of ``attacks.ATTACKS``.
AUTOATTACK = ("apgd", "square")
#: The methods (Tables 3-6 rows) the AutoAttack table evaluates: the defended models.
AUTOATTACK_DEFENSES = ("pcl", "maxsim", "minsim", "exfmem", "minsim_exfmem")
#: Test-time defenses of an evaluation: none, or ExFMem's sparse coding (Sec. 3.3.2).
DEFENSES = ("none", "exfmem")
#: Where a dataset's clips come from (``datasets.<name>.source`` in the config).
SOURCES = ("synthetic", "youtube", "local", "csv")
#: The splits of every dataset, in the order they are listed.
SPLITS = ("train", "val", "test")

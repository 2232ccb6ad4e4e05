"""Clean and attacked audio/visual embeddings of the models without and with MinSim.

As the authors (Figs. 10/11): the attack and budget of ``analysis.tsne_attack`` and
``analysis.tsne_budget`` (FGSM, 0.02), each model attacked with its own training loss.
"""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.robustness.defended import load_evaluated_model
from avmodels.settings import EvalSettings, TsneSettings
from avmodels.study.analyses import feature_sets, tsne_streams
from avmodels.study.analysis_arrays import save_tsne_npz
from avmodels.workflow.jobs import job

params = snakemake.params
analysis = TsneSettings.from_config(params.analysis)
settings = EvalSettings.from_config({"paper_budget": params.paper_budget}, params.inputs)
with job(snakemake):
    features = {}
    for name, path in (("concat", snakemake.input.plain), ("minsim", snakemake.input.minsim)):
        model, loss = load_evaluated_model(path, adaptive=True)
        sets, labels = feature_sets(
            model,
            snakemake.input.manifest,
            analysis.attack,
            analysis.budget,
            settings,
            loss=loss,
            limit=analysis.samples,
        )
        features[name] = {k: v.numpy() for k, v in tsne_streams(sets).items()}
    save_tsne_npz(snakemake.output[0], features, labels.numpy(), snakemake.params.classes)

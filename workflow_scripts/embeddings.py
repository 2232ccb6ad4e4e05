"""Clean and attacked audio/visual embeddings of the models without and with MinSim."""

from avmodels.analysis_arrays import save_tsne_npz
from avmodels.evaluate import feature_sets, tsne_streams
from avmodels.jobs import job
from avmodels.model import load_checkpoint

analysis = snakemake.params.analysis
inputs = snakemake.params.inputs
with job(snakemake):
    features = {}
    for name, path in (("concat", snakemake.input.plain), ("minsim", snakemake.input.minsim)):
        model, _ = load_checkpoint(path)
        sets, labels = feature_sets(
            model,
            snakemake.input.manifest,
            analysis["attack"],
            analysis["budget"],
            paper_budget=snakemake.params.paper_budget,
            limit=analysis["tsne_samples"],
            audio_samples=inputs["audio_samples"],
            image_size=inputs["image_size"],
            resize_size=inputs["resize_size"],
        )
        features[name] = {k: v.numpy() for k, v in tsne_streams(sets).items()}
    save_tsne_npz(snakemake.output[0], features, labels.numpy(), snakemake.params.classes)

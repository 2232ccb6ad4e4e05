"""Build the ExFMem memory banks of one trained model: its audio and visual features of the
training clips (evaluation transforms, model in evaluation mode), the same clips for both.

The MinSim model's banks also serve its fine-tuning (rule ``finetune``), fixed, and then wrap
the fine-tuned model: they are built before fine-tuning and not rebuilt after it."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels import atomic
from avmodels.models.model import load_checkpoint
from avmodels.robustness.exfmem import build_memory_banks
from avmodels.settings import ExfmemSettings, InputSettings
from avmodels.study.running import extract_features
from avmodels.workflow.jobs import job

exfmem = ExfmemSettings.from_config(snakemake.params.exfmem)
inputs = InputSettings.from_config(snakemake.params.inputs)
with job(snakemake, seed=snakemake.params.seed) as log:
    model, _ = load_checkpoint(snakemake.input.checkpoint)
    features, labels = extract_features(model, snakemake.input.manifest, inputs=inputs)
    banks = build_memory_banks(features, exfmem.size, seed=snakemake.params.seed, labels=labels)
    banks = {name: bank.contiguous() for name, bank in banks.items()}
    atomic.torch_save(banks, snakemake.output[0])
    log.info("memory banks: %s", {name: tuple(bank.shape) for name, bank in banks.items()})

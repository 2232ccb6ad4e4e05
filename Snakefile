# avrobust: the study of Tian & Xu, "Can audio-visual integration strengthen
# robustness under multimodal attacks?" (CVPR 2021), from clip lists to tables.
from snakemake.utils import min_version

min_version("9.0")


report: "report/workflow.rst"


# The default study (beside this file); a preset given with --configfile replaces it as a
# whole, and so does the config a workflow importing this one as a module hands over.
if not workflow.overwrite_configfiles:

    configfile: workflow.source_path("config.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/attack.smk"
include: "rules/analysis.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_output(),

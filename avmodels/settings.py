"""Typed settings of the config sections the jobs read, each built once from the validated
config with ``from_config`` and passed whole to the library.

The defaults here are the ones ``config/config.schema.yaml`` declares (a test keeps them
equal); the input sizes are the paper's (appendix A.2). A section's keys that a class does not
hold are left out (the schema already refuses unknown keys). The training sections
(``train``, ``datasets.<name>.train``, ``variants.<name>.train``) build ``train.TrainConfig``
(``TrainConfig.from_settings``) and ``model.ModelConfig``; ``synthetic.Difficulty`` holds the
synthetic set's difficulty: their defaults are also the schema's.

>>> settings = EvalSettings.from_config({"steps": 2, "attacks": ["fgsm"]}, {"image_size": 32})
>>> settings.steps, settings.batch_size, settings.inputs.image_size, settings.inputs.resize_size
(2, 32, 32, 246)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from avmodels.registry import SPLITS

#: Keys of a variant's training settings that shape the network (``ModelConfig``), not its training.
MODEL_KEYS = ("arch", "visual_output_stride", "visual_pool")
AUDIO_SAMPLES = 65535  # samples of the audio window: about 5.94 s at 11025 Hz
IMAGE_SIZE = 224  # side of the square image crop
RESIZE_SIZE = 246  # short side a frame is resized to before the crop
FRAME_SHORT_SIDE = 256  # preprocessing scales larger frames down to this short side


def _known(cls: type, section: Mapping[str, Any] | None) -> dict[str, Any]:
    """The keys of ``section`` that are fields of ``cls`` (a section may hold others)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in (section or {}).items() if k in names}


@dataclass(frozen=True)
class InputSettings:
    """Config section ``inputs``: the sizes a network reads."""

    audio_samples: int = AUDIO_SAMPLES
    image_size: int = IMAGE_SIZE
    resize_size: int = RESIZE_SIZE

    @classmethod
    def from_config(cls, inputs: Mapping[str, Any] | None) -> InputSettings:
        return cls(**_known(cls, inputs))


@dataclass(frozen=True)
class PreprocessSettings:
    """Config section ``inputs``, the key preprocessing reads (not the networks)."""

    frame_short_side: int = FRAME_SHORT_SIDE

    @classmethod
    def from_config(cls, inputs: Mapping[str, Any] | None) -> PreprocessSettings:
        return cls(**_known(cls, inputs))


#: Where a YouTube dataset's clips are fetched from, ``{id}`` the video's ID.
YOUTUBE_URL = "https://www.youtube.com/watch?v={id}"


@dataclass(frozen=True)
class DatasetSettings:
    """Config section ``datasets.<name>``: the keys with defaults (``source`` and the
    source's own keys are checked by the schema and ``config.check_config``)."""

    shards: int = 1  # download / preprocessing jobs of the dataset
    url_template: str = YOUTUBE_URL
    localization: bool = False  # run the localization analysis on it
    tsne: bool = False  # run the t-SNE analysis on it

    @classmethod
    def from_config(cls, dataset: Mapping[str, Any]) -> DatasetSettings:
        return cls(**_known(cls, dataset))


@dataclass(frozen=True)
class SyntheticSettings:
    """Config section ``datasets.synthetic_music.synthetic``: the embedded set's rendering."""

    seed: int = 0
    train: int | None = None  # clips per class of each split (None: the renderer's default)
    val: int | None = None
    test: int | None = None
    difficulty: Mapping[str, Any] | None = None  # fields of ``synthetic.Difficulty`` replaced

    @classmethod
    def from_config(cls, synthetic: Mapping[str, Any] | None) -> SyntheticSettings:
        return cls(**_known(cls, synthetic))

    def counts(self) -> dict[str, int] | None:
        """Clips per class by split for the splits set (None: none set)."""
        counts = {s: n for s in SPLITS if (n := getattr(self, s)) is not None}
        return counts or None


@dataclass(frozen=True)
class AttackSettings:
    """Config section ``evaluation``: the keys that shape an attack (not which budgets or
    models run)."""

    adaptive: bool = True  # attack a defended model through its defense's loss
    paper_budget: bool = True  # image budget in the ImageNet-normalised space
    steps: int = 10  # iterations of PGD and MIM
    batch_size: int = 32

    @classmethod
    def from_config(cls, evaluation: Mapping[str, Any] | None) -> AttackSettings:
        return cls(**_known(cls, evaluation))


@dataclass(frozen=True)
class SweepSettings:
    """Config section ``evaluation``: the models of the accuracy-vs-budget figures."""

    sweep_models: tuple[str, ...] = ("concat", "audio", "visual")

    @classmethod
    def from_config(cls, evaluation: Mapping[str, Any] | None) -> SweepSettings:
        known = _known(cls, evaluation)
        return cls(**{k: tuple(v) for k, v in known.items()})


@dataclass(frozen=True)
class EvalSettings:
    """What shapes one evaluation job's numbers besides the model, attack and budget."""

    paper_budget: bool = AttackSettings.paper_budget
    steps: int = AttackSettings.steps
    batch_size: int = AttackSettings.batch_size
    inputs: InputSettings = field(default_factory=InputSettings)

    @classmethod
    def from_config(
        cls, evaluation: Mapping[str, Any] | None, inputs: Mapping[str, Any] | None = None
    ) -> EvalSettings:
        """From the ``evaluation`` and ``inputs`` sections (absent keys: the defaults)."""
        known = _known(cls, evaluation)
        known.pop("inputs", None)
        return cls(**known, inputs=InputSettings.from_config(inputs))


@dataclass(frozen=True)
class ExfmemSettings:
    """Config section ``exfmem``: the memory banks and the Lasso of ExFMem (Sec. 3.3.2).

    ``size`` is read when the banks are built; :meth:`model_kwargs` reach ``ExFMemModel``.
    ``tol=None`` takes the stop rule's own default (``lasso.DEFAULT_TOL``).
    """

    size: int = 1024  # clips in each memory bank
    lam: float = 0.1  # the Lasso's lambda (A.5)
    blend: float = 0.5  # weight of the reconstruction; 0 gives the base model back
    max_iter: int = 2000
    method: str = "active_set"  # exact solution of Eq. 4; fista / ista stop by `stop`
    stop: str = "gap"
    tol: float | None = None

    @classmethod
    def from_config(cls, exfmem: Mapping[str, Any] | None) -> ExfmemSettings:
        return cls(**_known(cls, exfmem))

    def model_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``ExFMemModel`` (all but the bank ``size``)."""
        return {k: v for k, v in asdict(self).items() if k != "size"}


@dataclass(frozen=True)
class FinetuneSettings:
    """Config sections ``full_defense.finetune`` and ``datasets.<name>.finetune``: the full
    defense's fine-tuning; ``lr`` sets every part's rate, unset keys keep the variant's."""

    epochs: int = 1
    lr: float = 1e-4
    loss: str = "minsim"
    loss_weight: float = 1.0
    batch_size: int | None = None
    milestones: tuple[int, ...] | None = None
    gamma: float | None = None

    @classmethod
    def from_config(cls, finetune: Mapping[str, Any] | None) -> FinetuneSettings:
        known = _known(cls, finetune)
        if known.get("milestones") is not None:
            known["milestones"] = tuple(known["milestones"])
        return cls(**known)

    def overrides(self) -> dict[str, Any]:
        """The training settings this replaces in the variant's: every rate and the set keys."""
        own = {k: v for k, v in asdict(self).items() if v is not None}
        lr = own.pop("lr")
        return {**own, "lr_audio": lr, "lr_visual": lr, "lr_head": lr}


@dataclass(frozen=True)
class FullDefenseSettings:
    """Config section ``full_defense``: how MinSim+ExFMem is built (absent: ``test_time``)."""

    mode: str = "test_time"  # or "finetune": trained end to end through the sparse coding
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)

    @classmethod
    def from_config(cls, full_defense: Mapping[str, Any] | None) -> FullDefenseSettings:
        known = _known(cls, full_defense)
        return cls(**known | {"finetune": FinetuneSettings.from_config(known.get("finetune"))})


#: torchvision's ``ResNet18_Weights.IMAGENET1K_V1`` file.
IMAGENET_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
#: torchvision publishes only this sha256 prefix (in the file name); its hub loader checks it.
IMAGENET_SHA256 = "f37072fd"


@dataclass(frozen=True)
class PretrainedSettings:
    """Config section ``pretrained``: the visual ResNet18's starting weights."""

    visual: str = "none"  # "none" (random), "imagenet" (fetched from url) or a local file
    url: str = IMAGENET_URL
    sha256: str = IMAGENET_SHA256  # 64 hex digits, or a prefix of at least 8

    @classmethod
    def from_config(cls, pretrained: Mapping[str, Any] | None) -> PretrainedSettings:
        return cls(**_known(cls, pretrained))


@dataclass(frozen=True)
class DownloadSettings:
    """Config section ``download``: how YouTube clips are fetched, and the pre-flight's disk."""

    cookies: str | None = None  # cookies.txt of a signed-in browser (yt-dlp ``cookiefile``)
    sleep_requests: float = 0.0  # s between the requests of one clip
    sleep_downloads: float = 0.0  # s before each clip
    rate_limit: int | None = None  # bytes/s
    retries: int = 3  # network retries of one clip within a run
    retry: tuple[str, ...] = ("format", "runtime", "extractor", "other")  # retried reasons
    stop_after: int = 10  # transient failures in a row that stop a shard (0: never)
    js_runtime: str | None = None  # deno binary (None: the one the deno wheel installed)
    min_free_gb: float = 20.0  # free disk the pre-flight asks for before the lists are known
    mb_per_clip: float = 3.0  # disk per clip for the pre-flight's estimate

    @classmethod
    def from_config(cls, download: Mapping[str, Any] | None) -> DownloadSettings:
        known = _known(cls, download)
        if "retry" in known:
            known["retry"] = tuple(known["retry"])
        return cls(**known)


@dataclass(frozen=True)
class LocalizationSettings:
    """Config section ``analysis``, localization keys: the attack behind Figs. 4/9."""

    attack: str
    budget: float
    samples: int  # ``localization_samples``: test clips, spread over the classes

    @classmethod
    def from_config(cls, analysis: Mapping[str, Any]) -> LocalizationSettings:
        return cls(analysis["attack"], analysis["budget"], analysis["localization_samples"])


@dataclass(frozen=True)
class TsneSettings:
    """Config section ``analysis``, t-SNE keys: the attack behind Figs. 10/11."""

    attack: str  # ``tsne_attack``
    budget: float  # ``tsne_budget``
    samples: int  # ``tsne_samples``

    @classmethod
    def from_config(cls, analysis: Mapping[str, Any]) -> TsneSettings:
        return cls(analysis["tsne_attack"], analysis["tsne_budget"], analysis["tsne_samples"])

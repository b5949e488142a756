"""`replication import`: the official code's `.pth` networks as a run folder that `translate`,
`evaluate`, `figures` and `export` take as they take a trained run.

The official code (junyanz/pytorch-CycleGAN-and-pix2pix) saves `latest_net_G_A.pth` (A -> B),
`latest_net_G_B.pth` (B -> A), `latest_net_D_A.pth` (judges G_A's outputs, domain B) and
`latest_net_D_B.pth` for CycleGAN, `latest_net_G.pth` and `latest_net_D.pth` for pix2pix; its
download scripts fetch one generator per name (OFFICIAL_MODELS). Each file's network is read by
`official`; the run folder holds a config.yaml of the experiment the weights belong to (with the
architecture found), the export (manifest.json says they were imported, from which file, with its
SHA-256) and, when discriminators are given, a checkpoint of step 0 with every network imported.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from replication import config as config_lib
from replication import pth
from replication.data import downloads
from replication.errors import DataError, KitError
from replication.files import atomic_write_text, sha256_of

CYCLEGAN_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{name}.pth"
PIX2PIX_URL = "https://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{name}.pth"
PIX2PIX_PREFIX = "pix2pix/"


@dataclass(frozen=True)
class OfficialModel:
    """A generator the official download scripts fetch: which kit experiment (or dataset) it belongs
    to and which direction of that run it translates."""

    model_type: str  # cyclegan | pix2pix
    experiment: str
    direction: str  # the run's direction it serves
    data: tuple = ()  # data keys set on top of the experiment's (key=value)

    def url(self, name: str) -> str:
        return (PIX2PIX_URL if self.model_type == "pix2pix" else CYCLEGAN_URL).format(name=name.removeprefix(PIX2PIX_PREFIX))


def cyclegan(experiment, direction, *data):
    return OfficialModel("cyclegan", experiment, direction, data)


def pix2pix(direction_of_data, *data):
    return OfficialModel("pix2pix", "pix2pix_facades", "AtoB", (f"data.direction={direction_of_data}", *data))


# ./scripts/download_cyclegan_model.sh NAME and download_pix2pix_model.sh NAME (the latter as pix2pix/NAME)
OFFICIAL_MODELS = {
    "horse2zebra": cyclegan("horse2zebra", "AtoB"),
    "zebra2horse": cyclegan("horse2zebra", "BtoA"),
    "apple2orange": cyclegan("apple2orange", "AtoB"),
    "orange2apple": cyclegan("apple2orange", "BtoA"),
    "summer2winter_yosemite": cyclegan("summer2winter_yosemite", "AtoB"),
    "winter2summer_yosemite": cyclegan("summer2winter_yosemite", "BtoA"),
    "monet2photo": cyclegan("monet2photo", "AtoB"),
    "style_monet": cyclegan("monet2photo", "BtoA"),
    "style_cezanne": cyclegan("horse2zebra", "BtoA", "data.name=cezanne2photo"),
    "style_ukiyoe": cyclegan("horse2zebra", "BtoA", "data.name=ukiyoe2photo"),
    "style_vangogh": cyclegan("horse2zebra", "BtoA", "data.name=vangogh2photo"),
    "cityscapes_photo2label": cyclegan("cityscapes", "AtoB"),
    "cityscapes_label2photo": cyclegan("cityscapes", "BtoA"),
    "facades_photo2label": cyclegan("horse2zebra", "AtoB", "data.name=facades"),
    "facades_label2photo": cyclegan("horse2zebra", "BtoA", "data.name=facades"),
    "sat2map": cyclegan("horse2zebra", "AtoB", "data.name=maps"),
    "map2sat": cyclegan("horse2zebra", "BtoA", "data.name=maps"),
    "iphone2dslr_flower": cyclegan("horse2zebra", "AtoB", "data.name=iphone2dslr_flower"),
    "pix2pix/facades_label2photo": pix2pix("BtoA"),
    "pix2pix/sat2map": pix2pix("AtoB", "data.name=maps"),
    "pix2pix/map2sat": pix2pix("BtoA", "data.name=maps"),
    "pix2pix/edges2shoes": pix2pix("AtoB", "data.name=edges2shoes"),
    "pix2pix/edges2handbags": pix2pix("AtoB", "data.name=edges2handbags"),
    "pix2pix/day2night": pix2pix("BtoA", "data.name=night2day"),
}

# The official networks' names -> (model type, the kit's checkpoint item, the direction it serves or judges)
OFFICIAL_NETWORKS = {
    "G_A": ("cyclegan", "G", "AtoB"), "G_B": ("cyclegan", "F", "BtoA"),
    "D_A": ("cyclegan", "D_Y", "AtoB"), "D_B": ("cyclegan", "D_X", "BtoA"),
    "G": ("pix2pix", "G", "AtoB"), "D": ("pix2pix", "D", "AtoB"),
}
CYCLEGAN_GENERATORS = {"AtoB": "G", "BtoA": "F"}
NETWORK_NAME = re.compile(r"(?:^|_)net_(G_A|G_B|D_A|D_B|G|D)$")


def model_names() -> str:
    return ", ".join(OFFICIAL_MODELS)


@dataclass
class Source:
    """One file to import and what it is: its path, SHA-256, the network in it, and whose it is."""

    path: Path
    sha256: str
    arch: object  # official.Architecture
    network: object  # keras.Model
    official_name: str | None  # the download scripts' name (horse2zebra), if its name or folder says
    network_name: str | None  # G_A, G_B, D_A, D_B, G, D, if its name says


def official_name_of(path: Path, arch) -> str | None:
    """horse2zebra.pth, or checkpoints/horse2zebra_pretrained/latest_net_G.pth as the download script saves it."""
    for candidate in (path.stem, path.parent.name.removesuffix("_pretrained")):
        pix2pix_name = PIX2PIX_PREFIX + candidate
        if pix2pix_name in OFFICIAL_MODELS and (candidate not in OFFICIAL_MODELS or arch.model.get("generator") == "unet"):
            return pix2pix_name
        if candidate in OFFICIAL_MODELS:
            return candidate
    return None


def fetch_official(name: str, data_dir: Path, url: str | None = None) -> Path:
    """The official generator NAME, downloaded once into DATA_DIR/official/ (its SHA-256 is recorded on import)."""
    url = url or OFFICIAL_MODELS[name].url(name)
    dest = Path(data_dir) / "official" / f"{name.replace('/', '_')}.pth"
    script = "download_pix2pix_model.sh" if name.startswith(PIX2PIX_PREFIX) else "download_cyclegan_model.sh"
    try:
        return downloads.fetch(url, dest)
    except DataError as err:
        reason = downloads.first_line(err.__cause__) if err.__cause__ else str(err)
        raise KitError(
            f"Could not download {url} ({reason}). On a machine with internet run the official "
            f"./scripts/{script} {name.removeprefix(PIX2PIX_PREFIX)} (or fetch that address) and put the file at "
            f"{dest.absolute()} by hand, or pass the file's path to replication import."
        ) from None


def check_inputs(items, url: str | None = None) -> None:
    """Each item is a file or an official model's name (checked before anything is fetched or read)."""
    if url and len(items) != 1:
        raise KitError("--url names where one official model is fetched from: give one name with it.")
    for item in items:
        path = Path(item)
        if path.is_file() or (item in OFFICIAL_MODELS and not path.exists()):
            continue
        if path.exists():
            raise KitError(f"{path} is not a file. Pass .pth files written by the official code, or an official model's name.")
        raise KitError(f"No file {path} and no official model of that name. Pass .pth files, or one of: {model_names()}.")


def resolve_inputs(items, data_dir: Path, url: str | None) -> list[Path]:
    """Each item as a file: a path as given, an official model's name fetched into the data folder."""
    check_inputs(items, url)
    return [Path(item) if Path(item).is_file() else fetch_official(item, data_dir, url) for item in items]


def read_source(path: Path):
    from replication import official  # TensorFlow: `import` checks its inputs before it starts

    state = pth.read_state_dict(path)
    arch, network = official.network_from(state, path)
    match = NETWORK_NAME.search(path.stem)
    return Source(path, sha256_of(path), arch, network, official_name_of(path, arch), match.group(1) if match else None)


@dataclass
class ImportPlan:
    """What the run folder gets: its config, the generators by direction and the discriminators by checkpoint item."""

    config: dict
    generators: dict  # direction -> (checkpoint item, keras.Model)
    discriminators: dict  # checkpoint item -> keras.Model
    sources: list


def plan_import(sources: list, experiment: str | None, direction: str | None) -> ImportPlan:
    """Which network each file is, the model type and experiment they belong to, the config; refused in one line if unclear."""
    named = {s.official_name for s in sources if s.official_name}
    if len(named) > 1:
        raise KitError(f"The files are of different official models ({', '.join(sorted(named))}); import each into its own run.")
    official_model = OFFICIAL_MODELS[named.pop()] if named else None
    types = {OFFICIAL_NETWORKS[s.network_name][0] for s in sources if s.network_name in ("G_A", "G_B", "D_A", "D_B")}
    if experiment:
        model_type = experiment_model_type(experiment)
    elif official_model:
        model_type = official_model.model_type
    elif types:
        model_type = types.pop()
    else:
        generator = next((s for s in sources if s.arch.role == "generator"), None)
        model_type = "pix2pix" if generator and generator.arch.model.get("generator_norm") == "batch" else "cyclegan"

    generators, discriminators = {}, {}
    for source in sources:
        item, serves = role_of(source, model_type, official_model, direction)
        taken = generators if source.arch.role == "generator" else discriminators
        key = serves if source.arch.role == "generator" else item
        if key in taken:
            raise KitError(f"{source.path} and another file are both the {model_type} {item} ({serves}); give one of each.")
        taken[key] = (item, source)
    if not generators:
        raise KitError("No generator among the files: import a generator (latest_net_G_A.pth, horse2zebra.pth, ...), "
                       "with its discriminators if you want them.")

    model_keys = same_architecture([s for _, s in generators.values()], "generator")
    if discriminators:
        model_keys.update(same_architecture([s for _, s in discriminators.values()], "discriminator"))
    overrides = [f"model.type={model_type}", *(f"model.{k}={v}" for k, v in model_keys.items())]
    if official_model and not experiment:
        overrides += list(official_model.data)
    chosen = experiment or (official_model.experiment if official_model else ("pix2pix_facades" if model_type == "pix2pix" else "horse2zebra"))
    config = config_lib.resolve(chosen, overrides)  # its name is the experiment's, as a trained run's
    wanted = 6 if model_type == "pix2pix" else 3
    for item, source in discriminators.values():
        if source.arch.in_channels != wanted:
            raise KitError(f"{source.path} judges {source.arch.in_channels} channels; a {model_type} discriminator judges {wanted}.")
    return ImportPlan(config, {d: (item, s.network) for d, (item, s) in generators.items()},
                {item: s.network for item, s in discriminators.values()}, sources)


def experiment_model_type(experiment: str) -> str:
    """model.type of an experiment, read before its generator keys are set (the check comes with them)."""
    chain = config_lib.load_chain(config_lib.experiment_path(experiment))
    return config_lib.deep_merge(config_lib.load_chain(config_lib.BASE), chain)["model"]["type"]


def role_of(source: Source, model_type: str, official_model, direction: str | None) -> tuple[str, str]:
    """(the kit's checkpoint item, the direction it translates or judges) of one file."""
    generator, name = source.arch.role == "generator", source.network_name
    if name and name.startswith("G") != generator:
        raise KitError(f"{source.path} is named as the official net_{name} but holds a {source.arch.described}.")
    if model_type == "pix2pix":
        return ("G" if generator else "D"), "AtoB"
    if name in ("G_A", "G_B", "D_A", "D_B"):
        return OFFICIAL_NETWORKS[name][1:]
    if not generator:
        raise KitError(f"{source.path}: say which discriminator it is by its name (latest_net_D_A.pth judges G_A's "
                       "outputs, latest_net_D_B.pth G_B's).")
    serves = direction or (official_model.direction if official_model else None)
    if serves is None:
        raise KitError(f"{source.path}: say which direction it translates with --direction AtoB or BtoA "
                       "(or name it as the official code does: latest_net_G_A.pth is A->B, latest_net_G_B.pth B->A).")
    return CYCLEGAN_GENERATORS[serves], serves


def same_architecture(sources: list, role: str) -> dict:
    first = sources[0]
    for other in sources[1:]:
        if other.arch.model != first.arch.model:
            raise KitError(f"{first.path} is a {first.arch.described} and {other.path} a {other.arch.described}: "
                           f"a run's {role}s share one architecture.")
    return dict(first.arch.model)


def imported_record(sources: list) -> dict:
    files = [{"file": s.path.name, "path": str(s.path.absolute()), "sha256": s.sha256, "network": s.arch.described}
             for s in sources]
    text = "official weights, imported from " + ", ".join(f"{s.path.name} (SHA-256 {s.sha256[:16]})" for s in sources)
    return {"text": text, "files": files}


def write_run(plan: ImportPlan, run_dir: Path) -> Path:
    """The run folder, written whole beside its place and renamed into it: never half a run."""
    from replication import export, models, runs  # TensorFlow: `import` checks its inputs before it starts

    run_dir = Path(run_dir).absolute()
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise KitError(f"{run_dir} exists and is not empty; choose another --run-dir (nothing there was touched).")
    staging = run_dir.with_name(f".{run_dir.name}.importing")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        run = runs.RunFolder(staging)
        run.prepare(plan.config)
        record = imported_record(plan.sources)
        model_class = models.model_class(plan.config)
        if plan.discriminators:
            write_checkpoint(plan, run)
        export.export_generators(run.export, plan.config["model"]["type"], plan.generators, plan.config["model"],
                                 model_class.training_mode_at_test, step=0, epoch=0, imported=record)
        directions = ", ".join(f"{item} {d.replace('to', '->')}" for d, (item, _) in plan.generators.items())
        lines = [f"imported: {record['text']}", f"generators: {directions}"]
        lines += [f"discriminators: {', '.join(plan.discriminators)} (checkpoint of step 0)"] if plan.discriminators else []
        lines += [f"{f['file']}: {f['network']}, SHA-256 {f['sha256']}" for f in record["files"]]
        atomic_write_text(run.log, "\n".join(lines) + "\n")
        if run_dir.exists():
            run_dir.rmdir()
        os.replace(staging, run_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return run_dir


def write_checkpoint(plan: ImportPlan, run) -> None:
    """A checkpoint of step 0 holding every network of the model, the imported ones in their places
    (evaluate's discriminator losses read it)."""
    from replication import checkpoints, models  # TensorFlow: `import` checks its inputs before it starts

    model = models.build(plan.config, "float32")
    items = model.checkpoint_items()
    for name, network in [*((item, n) for item, n in plan.generators.values()), *plan.discriminators.items()]:
        items[name].set_weights(network.get_weights())
    checkpoints.Checkpoints(run.checkpoints, items, plan.config["train"]["save_epoch_freq"], plan.config).save(0)


def import_official(items, run_dir, experiment=None, direction=None, data_dir="data", url=None) -> tuple[Path, ImportPlan]:
    """Read every file (fetching official names), plan the run, write it; nothing is written if any step refuses."""
    paths = resolve_inputs(items, Path(data_dir), url)
    sources = [read_source(path) for path in paths]
    plan = plan_import(sources, experiment, direction)
    return write_run(plan, run_dir), plan

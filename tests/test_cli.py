"""The command line as a user meets it: installed as `replication`, from any folder; mistakes answered
before TensorFlow is imported; a quiet start; every command, target and flag explaining itself."""

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import replication
from replication import config as config_lib
from replication.cli import build_parser, main
from helpers import kit, tiny_sets

ROOT = Path(__file__).resolve().parent.parent
TF_LOG_LINE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl::InitializeLog)")


def python(script: str, cwd=ROOT):
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environment["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------- installed like a package


def test_pyproject_installs_the_replication_command_with_the_pinned_requirements():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"replication": "replication.cli:main"}
    assert "version" in project["dynamic"]
    pins = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert project["dependencies"] + project["optional-dependencies"]["test"] == pins


def test_make_install_leaves_nothing_untracked_in_the_clone():
    """pip's editable install writes <name>.egg-info/ into the clone; git ignores it."""
    tomllib = pytest.importorskip("tomllib")
    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"].replace("-", "_")
    done = subprocess.run(["git", "check-ignore", "-q", f"{name}.egg-info/PKG-INFO"], cwd=ROOT)
    assert done.returncode == 0


def test_the_kit_runs_from_any_folder_with_its_own_experiments(tmp_path):
    done = kit("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, f"replication {replication.__version__}\n")
    listed = kit("experiments", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "demo" in {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}
    assert not any(tmp_path.iterdir())  # nothing written where the user stands


def test_the_installed_command_is_the_same_as_python_m_replication(tmp_path):
    command = Path(sys.executable).parent / "replication"
    if not command.exists():
        pytest.skip("the kit is not installed in this Python (make install installs it)")
    done = subprocess.run([str(command), "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, f"replication {replication.__version__}\n")


# ---------------------------------------------------------------- replication experiments


def test_experiments_lists_every_experiment_with_what_it_trains_on_what_data_at_what_size(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["experiments"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = re.split(r"\s{2,}", lines[0])
    assert header == ["EXPERIMENT", "MODEL", "GENERATOR", "DISCRIMINATOR", "LOSS", "DATA", "SIZE", "EPOCHS"]
    rows = {cells[0]: dict(zip(header, cells)) for cells in (re.split(r"\s{2,}", line) for line in lines[1:-2])}
    assert sorted(rows) == config_lib.experiment_names() and "base" not in rows and len(lines) == len(rows) + 3
    assert lines[-1] == (f"(a relative data folder is under the folder you run in, now {tmp_path}; train writes the "
                         "synthetic dataset there when it is missing)")
    assert rows["demo"] == {"EXPERIMENT": "demo", "MODEL": "cyclegan", "GENERATOR": "U-Net-64 ngf 16", "DISCRIMINATOR": "PatchGAN 70x70",
                            "LOSS": "GAN + cycle + identity", "DATA": "synthetic data/synthetic", "SIZE": "64x64", "EPOCHS": "8+8"}
    assert rows["cityscapes"]["SIZE"] == "128x128 from 143" and rows["cityscapes"]["GENERATOR"] == "ResNet-6"
    assert rows["horse2zebra"]["DATA"] == "TFDS horse2zebra" and rows["horse2zebra"]["EPOCHS"] == "100+100"
    assert rows["cityscapes_ablation_gan_alone"]["LOSS"] == "GAN"
    assert rows["cityscapes_ablation_cycle_alone"]["LOSS"] == "cycle"
    assert rows["cityscapes_ablation_gan_forward"]["LOSS"] == "GAN + forward cycle"
    assert [rows[f"pix2pix_cityscapes{s}"]["DISCRIMINATOR"] for s in ("_patch1", "_patch16", "", "_patch286")] == [
        "PixelGAN 1x1", "PatchGAN 16x16", "PatchGAN 70x70", "PatchGAN 286x286"]
    assert rows["pix2pix_facades"]["DATA"] == "pix2pix facades BtoA" and rows["pix2pix_facades"]["LOSS"] == "GAN + 100 L1"
    whole = {name: [rows[name][column] for column in header[1:]] for name in rows}
    assert whole["cityscapes_ablation_gan_forward"] == ["cyclegan", "ResNet-6", "PatchGAN 70x70", "GAN + forward cycle", "cityscapes",
                                                        "128x128 from 143", "100+100"]
    assert whole["monet2photo_no_identity"][3] == "GAN + cycle"
    assert whole["pix2pix_facades"] == ["pix2pix", "U-Net-256", "PatchGAN 70x70", "GAN + 100 L1", "pix2pix facades BtoA",
                                        "256x256 from 286", "100+100"]
    assert whole["pix2pix_synthetic"] == ["pix2pix", "U-Net-64 ngf 16", "PatchGAN 70x70", "GAN + 100 L1", "synthetic data/synthetic AtoB",
                                          "64x64", "8+8"]


def test_train_demo_from_any_folder_writes_its_data_under_that_folder_and_says_where(tmp_path, monkeypatch, capsys):
    import replication.training
    from replication.data import sources

    write = sources.write_synthetic
    monkeypatch.setattr(sources, "write_synthetic", lambda root, seed: write(root, seed=seed, size=16, n_train=1, n_test=1))
    trained = []
    monkeypatch.setattr(replication.training, "train", lambda config, **kwargs: trained.append(config) or tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "demo"]) == 0
    assert f"wrote the synthetic dataset to {tmp_path / 'data' / 'synthetic'} (data.root" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "data" / "synthetic" / "trainA").iterdir()) == ["a_0000.png"]
    assert main(["train", "demo"]) == 0  # there now: read, not written again
    assert "wrote" not in capsys.readouterr().out and len(trained) == 2


def test_patchgan_receptive_fields_are_the_papers():
    from replication import choices

    # pix2pix §4.4: the 16x16, 70x70 and 286x286 PatchGANs (n_layers 1, 3, 5)
    assert [choices.patchgan_receptive_field(n) for n in (1, 3, 5)] == [16, 70, 286]


# ---------------------------------------------------------------- checked before TensorFlow, quietly started


def test_checking_a_config_imports_no_tensorflow():
    done = python(
        "import sys\n"
        "from replication import config\n"
        "config.resolve('demo', ['train.epochs=3'])\n"
        "config.data_section(source='folder', root='photos', crop_size=64, load_size=72)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


NO_RUN = ("error: {cwd}/runs/nowhere is not a run folder: it does not exist, so no run was trained there yet. Train one "
          "first: `replication train demo` writes runs/demo (`make demo`, in the kit's folder, also scores it). "
          "Runs beside it: runs/untrained.\n")


@pytest.mark.parametrize("argv, message", [
    (["train", "demo", "--set", "train.epochs=abc"],
     "error: train.epochs=abc is not allowed: train.epochs must be a whole number, 0 or more.\n"),
    (["train", "demo", "--until-step", "0"],
     "error: --until-step=0 is not allowed: --until-step must be a whole number, 1 or more.\n"),
    (["train", "demo", "--set", "data.source=folder", "--set", "data.root=photos"],
     "error: photos does not exist. Expected layout: ROOT/trainA/ ROOT/trainB/ ROOT/testA/ ROOT/testB/ "
     "(images: .jpg .jpeg .png .bmp .webp .tif .tiff, nested folders allowed).\n"),
    (["train", "demo", "--workers", "2"],
     "error: --workers 2 needs data.batch_size to be a multiple of 2, the workers (it is 1): each worker reads its share "
     "of every batch. Add --set data.batch_size=2.\n"),
    (["data", "check", "photos"],
     "error: photos does not exist. Expected layout: ROOT/trainA/ ROOT/trainB/ ROOT/testA/ ROOT/testB/ "
     "(images: .jpg .jpeg .png .bmp .webp .tif .tiff, nested folders allowed).\n"),
    (["evaluate", "runs/nowhere"], NO_RUN),
    (["translate", "--run", "runs/nowhere", "--input", "in", "--output", "out"], NO_RUN),
    (["evaluate", "runs/untrained"],
     "error: {cwd}/runs/untrained has no exported generators and no checkpoint yet; train it first "
     "(a checkpoint is saved at the end of every epoch, and with --until-step N).\n"),
    (["translate", "runs/untrained", "--input", "in", "--output", "out"],
     "error: {cwd}/runs/untrained has no exported generators and no checkpoint yet; train it first "
     "(a checkpoint is saved at the end of every epoch, and with --until-step N).\n"),
    (["translate", "--model", "nothere.keras", "--input", "in", "--output", "out"],
     "error: No model file nothere.keras. Pass a .keras file written by `train` (runs/<name>/export/).\n"),
    (["translate", "--model", "g.keras", "--input", "nothere", "--output", "out"],
     "error: --input nothere does not exist; give an image file or a folder of images.\n"),
    (["translate", "--model", "g.keras", "--input", "in", "--output", "in"],
     "error: --output in is the folder the inputs are in (in): the translations would be written among your images "
     "and replace those of the same name. Choose another folder.\n"),
    (["translate", "--model", "g.keras", "--input", "notes.txt", "--output", "out"],
     "error: --input notes.txt is not an image (.jpg .jpeg .png .bmp .webp .tif .tiff); give an image file or a folder of images.\n"),
    (["figures", "runs/nowhere"],
     "error: {cwd}/runs/nowhere is not a run folder (it does not exist). Pass folders that `train` wrote, e.g. runs/demo.\n"),
])
def test_a_mistake_in_the_command_answers_in_one_line_before_tensorflow_is_imported(argv, message, tmp_path):
    (tmp_path / "runs" / "untrained").mkdir(parents=True)
    (tmp_path / "runs" / "untrained" / "config.yaml").write_text("name: untrained\n")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"")
    (tmp_path / "g.keras").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("notes\n")
    done = python(
        "import sys\n"
        "from replication.cli import main\n"
        f"status = main({argv!r})\n"
        "print(status, 'tensorflow' in sys.modules)\n",
        cwd=tmp_path,
    )
    assert (done.stdout, done.stderr) == ("2 False\n", message.format(cwd=tmp_path))


@pytest.mark.parametrize("argv, message", [
    (["train", "demo", "--run-dir", "afile"],
     "error: --run-dir {cwd}/afile is a file, not a run folder; give a folder (train creates it if missing).\n"),
    (["evaluate", "afile"], "error: {cwd}/afile is a file, not a run folder. Pass a folder that `train` wrote.\n"),
    (["translate", "afile", "--input", "in", "--output", "out"],
     "error: {cwd}/afile is a file, not a run folder. Pass a folder that `train` wrote.\n"),
    (["figures", "afile"], "error: {cwd}/afile is a file, not a run folder. Pass folders that `train` wrote, e.g. runs/demo.\n"),
])
def test_a_file_given_as_the_run_folder_is_named_a_file(argv, message, tmp_path, monkeypatch, capsys):
    (tmp_path / "afile").write_text("my notes")
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err == message.format(cwd=tmp_path)
    assert (tmp_path / "afile").read_text() == "my notes"


def test_a_run_starts_without_tensorflow_log_lines_and_names_its_folder_in_full(tiny_synthetic_root, tmp_path):
    done = kit("train", "demo", "--run-dir", "run", "--until-step", "1", *tiny_sets(tiny_synthetic_root), cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    said = re.split(r"[\r\n]+", done.stderr + done.stdout)
    assert [line for line in said if TF_LOG_LINE.match(line)] == []
    assert done.stdout.startswith("started at step 0:")
    assert done.stdout.splitlines()[-1].startswith(f"run folder: {tmp_path / 'run'}  (")


def test_piped_output_has_progress_as_whole_lines_and_every_message_on_its_own(tiny_synthetic_root, tmp_path):
    """Into a pipe (`| tee`, a log file) nothing is redrawn: a progress line at each epoch's end, and
    the messages between them, each on a line of its own."""
    training = kit("train", "demo", "--run-dir", "run", "--until-step", "4", *tiny_sets(tiny_synthetic_root),
                   cwd=tmp_path, popen=True)
    said, _ = training.communicate(timeout=300)
    assert training.returncode == 0, said
    assert "\r" not in said
    lines = said.splitlines()
    progress = [line for line in lines if re.search(r"\d+/\d+ \[", line)]
    assert [line.split("|")[0] for line in progress] == ["epoch 1/3: 100%", "epoch 2/3:  33%"]
    assert all(re.fullmatch(r"epoch \d/3: +\d+%\|[# 0-9]*\| \d/3 \[[^\]]*\]", line) for line in progress), progress
    assert [line for line in lines if "building the training step" in line and not line.startswith("building")] == []


def test_data_check_prints_no_tensorflow_line(tiny_synthetic_root, tmp_path):
    done = kit("data", "check", str(tiny_synthetic_root), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert [line for line in done.stdout.splitlines() if TF_LOG_LINE.match(line)] == []


@pytest.mark.parametrize("verbose", [False, True])
def test_tensorflow_datasets_warnings_through_absl_show_only_with_verbose(verbose):
    done = python(
        "import argparse, logging\n"
        "from replication.cli import start_tensorflow, tensorflow_log_level\n"
        f"tensorflow_log_level({verbose})\n"
        f"start_tensorflow(argparse.Namespace(verbose={verbose}))\n"
        "logging.getLogger('absl').warning('Variant folder /data/x/1.0.0 has no dataset_info.json')\n"
    )
    assert done.returncode == 0, done.stderr
    assert ("Variant folder" in done.stderr) == verbose


def test_verbose_sets_tensorflow_to_show_everything(monkeypatch):
    from replication import cli

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    for argv, level in ((["experiments"], "3"), (["--verbose", "experiments"], "0"), (["experiments", "--verbose"], "0")):
        monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
        args = build_parser().parse_args(argv)
        cli.tensorflow_log_level(args.verbose)
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == level, argv


# ---------------------------------------------------------------- commands that explain themselves


def parsers(parser, path=()):
    """(command path, parser) for the parser and every sub-command's, at any depth."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, (*path, name))


def test_every_option_of_every_command_has_a_help_text():
    found = [(" ".join(path), action.dest) for path, parser in parsers(build_parser())
             for action in parser._actions if not action.help]
    assert found == []
    assert {" ".join(path) for path, _ in parsers(build_parser())} >= {
        "experiments", "train", "evaluate", "figures", "translate", "cityscapes-scorer", "data synthetic", "data check", "data download"}


@pytest.mark.parametrize("command", ["evaluate", "figures", "translate"])
def test_a_run_folder_is_named_the_same_way_by_every_command(command, tmp_path):
    """RUN, positional, everywhere; --run RUN, the older spelling, still reads."""
    extra = ["--input", "in", "--output", "out"] if command == "translate" else []
    parser = build_parser()
    positional, flagged = parser.parse_args([command, "runs/a", *extra]), parser.parse_args([command, "--run", "runs/a", *extra])
    if command == "figures":
        assert positional.run_dirs + positional.run_flags == flagged.run_dirs + flagged.run_flags == ["runs/a"]
    else:
        assert positional.run_dir == flagged.run_flag == "runs/a"


def test_translate_takes_the_run_folder_as_evaluate_does(tiny_finished_run, tmp_path, capsys):
    from PIL import Image

    (tmp_path / "in").mkdir()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(tmp_path / "in" / "red.png")
    assert main(["translate", str(tiny_finished_run), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "red.png").size == (32, 32)


def make(*args):
    done = subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_alone_lists_every_target_with_its_description():
    targets = re.findall(r"^([a-z0-9-]+):(?!=)", (ROOT / "Makefile").read_text(), re.M)
    listed = dict(re.findall(r"^  ([a-z0-9-]+) +(\S.*)$", make(), re.M))
    assert sorted(listed) == sorted(targets) and len(targets) > 20
    assert make("help") == make()


def test_a_target_that_trains_then_scores_and_draws_uses_the_folder_it_trained():
    def commands(*args):
        return [shlex.split(line)[1:] for line in make("-n", *args).splitlines() if line.startswith(".venv/bin/replication")]

    demo = commands("demo", "FLAGS=--run-dir runs/x")
    assert [c[:2] for c in demo if c[0] in ("evaluate", "figures")] == [["evaluate", "runs/x"], ["figures", "runs/x"]]
    assert [c[-2:] for c in demo if c[0] == "train"] == [["--run-dir", "runs/x"]]  # FLAGS come last, so they win
    compared = commands("compare-synthetic", "RUNS_DIR=elsewhere")
    assert ["figures", "--compare", "elsewhere/demo", "elsewhere/pix2pix_synthetic", "--labels", "CycleGAN", "pix2pix"] in compared
    assert ["train", "pix2pix_synthetic", "--run-dir", "elsewhere/pix2pix_synthetic"] in compared

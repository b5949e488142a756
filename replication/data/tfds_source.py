"""TFDS `cycle_gan/<name>` as a data source: TFDS downloads and prepares each dataset once; the kit
reads its encoded images as the image sets every source ends as (its row: `choices.SOURCES["tfds"]`)."""

from __future__ import annotations

from replication.data import downloads, images
from replication.data.images import ImageSet
from replication.data.layouts import PAIRED_LAYOUT, UNPAIRED_LAYOUT
from replication.data.sources import CYCLEGAN_URL, PIX2PIX_NAMES, DataSource, Found, stored_split, validated
from replication.errors import DataError

# The CycleGAN datasets TFDS still serves as `cycle_gan/<name>` (tensorflow_datasets
# image_classification/cycle_gan.py); cityscapes was dropped there (licence).
TFDS_NAMES = (
    "apple2orange",
    "summer2winter_yosemite",
    "horse2zebra",
    "monet2photo",
    "cezanne2photo",
    "ukiyoe2photo",
    "vangogh2photo",
    "maps",
    "facades",
    "iphone2dslr_flower",
)


class Tfds(DataSource):
    """TFDS `cycle_gan/<name>`: TFDS downloads and prepares it; the kit reads the encoded images."""

    datasets = f"{', '.join(TFDS_NAMES)} (TFDS cycle_gan)"

    def split_sets(self, cfg, splits):
        name = cfg["name"]
        self._check_name(name)
        tfds = self._module()
        builder = self.prepare(name, cfg["data_dir"])
        sets = {}
        for split in splits:
            stored = stored_split(split, cfg["direction"])
            try:
                encoded = {"image": tfds.decode.SkipDecoding()}
                ds = builder.as_dataset(split=stored, decoders=encoded, shuffle_files=False)
                blobs = [bytes(ex["image"]) for ex in ds.as_numpy_iterator()]
            except Exception as err:  # noqa: BLE001
                raise DataError(
                    f"Reading split {stored} of TFDS cycle_gan/{name} (data_dir {builder.data_dir}) failed: "
                    f"{downloads.first_line(err)}. Delete that folder to prepare it again. {self.local_copy_hint(name)}"
                ) from err
            where = f"TFDS cycle_gan/{name} split {stored}"
            if not blobs:
                raise DataError(f"{where} is empty. {self.local_copy_hint(name)}")
            names = [f"{i:05d}{images.encoded_extension(b)}" for i, b in enumerate(blobs)]
            sets[split] = ImageSet(where=where, names=names, items=blobs)
        return Found(sets, f"TFDS cycle_gan/{name}", validated(sets, cfg))

    def pair_sets(self, cfg, phases):
        raise DataError(
            f"TFDS cycle_gan/{cfg['name']} is unpaired; pix2pix needs aligned pairs. Use data.source: pix2pix "
            f"with data.name one of {', '.join(PIX2PIX_NAMES)}, or data.source: paired with data.root "
            f"laid out as {PAIRED_LAYOUT}."
        )

    def download(self, cfg):
        self._check_name(cfg["name"])
        builder = self.prepare(cfg["name"], cfg["data_dir"])
        return f"TFDS cycle_gan/{cfg['name']} is prepared in {builder.data_dir}"

    def download_keys(self, target):
        if target.startswith("cycle_gan/") or target in TFDS_NAMES:
            return {"source": self.name, "name": target.split("/", 1)[-1]}
        return None

    @staticmethod
    def local_copy_hint(name: str) -> str:
        return (
            f"To use a local copy, unpack {name}.zip (trainA/ trainB/ testA/ testB/) and set "
            "data.source: folder and data.root: <that folder>; or, if TFDS already prepared it "
            "on another machine, copy its tensorflow_datasets folder here and set data.data_dir to it."
        )

    @staticmethod
    def _check_name(name: str) -> None:
        if name not in TFDS_NAMES:
            extra = " cityscapes: use data.source: cityscapes (TFDS dropped it)." if name == "cityscapes" else ""
            raise DataError(
                f"TFDS has no cycle_gan/{name}. Known: {', '.join(TFDS_NAMES)}.{extra} "
                f"For your own images use data.source: folder with data.root laid out as {UNPAIRED_LAYOUT}."
            )

    @staticmethod
    def _module():
        try:
            import tensorflow_datasets as tfds
        except ImportError as err:
            raise DataError(
                f"tensorflow_datasets cannot be imported ({err}). Install the kit's requirements "
                "(`make install`, or pip install -r requirements.txt), or use data.source: folder with data.root."
            ) from err
        return tfds

    def prepare(self, name: str, data_dir=None):
        """The TFDS builder of cycle_gan/<name>, downloaded and prepared (once)."""
        tfds = self._module()
        url = CYCLEGAN_URL.format(name=name)
        kwargs = {"data_dir": str(data_dir)} if data_dir else {}
        try:
            builder = tfds.builder(f"cycle_gan/{name}", **kwargs)
        except Exception as err:  # noqa: BLE001
            raise DataError(
                f"TFDS cannot build cycle_gan/{name}: {downloads.first_line(err)}. {self.local_copy_hint(name)}"
            ) from err
        try:
            if not builder.is_prepared():
                downloads.check_reachable(url)
            builder.download_and_prepare()
        except Exception as err:  # noqa: BLE001 - network, disk, corrupt download: all the user's to fix
            raise DataError(
                f"Could not download TFDS cycle_gan/{name} from {url} into {builder.data_dir}: "
                f"{downloads.first_line(err)}. Check the network (or run `replication data download "
                f"{name}` on a machine that has one). {self.local_copy_hint(name)}"
            ) from err
        return builder


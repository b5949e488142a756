"""A data source in one file: your own unpaired layout packed in one .zip (data.root names it),
unpacked once beside it. With its row in the source table, the configuration, the pipeline,
`data download` and `replication experiments` take it as they take the kit's own sources."""

from pathlib import Path

from replication.data import downloads
from replication.data.layouts import UNPAIRED_LAYOUT, is_unpaired_root
from replication.data.sources import Folder
from replication.errors import DataError


class ZippedFolder(Folder):
    def root(self, cfg, layout=UNPAIRED_LAYOUT):
        archive = Path(cfg["root"] or "").expanduser()
        if archive.suffix != ".zip" or not archive.is_file():
            raise DataError(f"data.root={cfg['root']} is not a .zip file; data.source {self.name} reads one.")
        return downloads.unpack_once(archive, archive.with_suffix(""), is_unpaired_root, UNPAIRED_LAYOUT)

    def download(self, cfg):
        return f"{cfg['root']} is unpacked in {self.root(cfg)}"

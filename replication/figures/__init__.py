"""Pictures of a run, for people to judge a replication by looking.

  samples.py   the per-epoch sample grid the training loop writes, labelled (save_samples)
  tables.py    figures/tables.html: the paper's Tables 2-5 beside the runs' numbers
  losses.py    losses.csv read robustly, the debiased moving average, the loss figure
  images.py    labelled image tables: progression, test results, comparison
  summary.py   what every page says of a run, found in one place (figures/NAME/summary.json)
  page.py      a run's results page (figures/NAME/index.html) and what the pages share
  all_runs.py  figures/index.html: the runs side by side, sortable
  synthetic.py the README's picture of the synthetic dataset (`data synthetic --figure`)
  draw.py      `python -m replication figures`: what to draw for a run, redrawing only what is out of date

Only the sample writer is imported here, so the training loop does not load matplotlib.
"""

from replication.figures.samples import save_png, save_samples

__all__ = ["save_png", "save_samples"]

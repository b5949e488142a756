"""What the commands do, beside replication/cli.py, which defines their flags and starts them.

  start.py               how every command starts: its run folder checked, then TensorFlow imported quietly
  train.py               `replication train`: the configuration and flags checked, then the training
  translate.py           `replication translate`
  evaluate.py            `replication evaluate`
  figures.py             `replication figures`
  cityscapes_scorer.py   `replication cityscapes-scorer`
  import_official.py     `replication import`
  data.py                `replication data synthetic | check | download`

`replication experiments` stays in cli.py beside `describe`, which words each experiment.
"""

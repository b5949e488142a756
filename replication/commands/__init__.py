"""What the commands do, beside replication/cli.py, which defines their flags and starts them.

  data.py   `replication data synthetic | check | download`
"""

"""`python -m replication ...`, the same as the `replication` command."""

from replication.cli import main

raise SystemExit(main())

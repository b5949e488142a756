import os

# TensorFlow's C++ start-up notices (CUDA probing, CPU instruction sets) are not the
# user's business; set TF_CPP_MIN_LOG_LEVEL=0 to see them again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from replication.cli import main  # noqa: E402

raise SystemExit(main())

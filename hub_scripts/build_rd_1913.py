# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Build the dataset folder of a task from Debian sources. The builder lives in the package
(`onegen.dataset_builders.rd_1913`, also run as `python -m onegen.dataset_builders.rd_1913`); this script runs it from
the checkout.

    python hub_scripts/build_rd_1913.py --small
    python hub_scripts/build_rd_1913.py --output_dir data/rd-1913 --small
"""

import sys

from onegen.dataset_builders.rd_1913 import main


if __name__ == "__main__":
    sys.exit(main())

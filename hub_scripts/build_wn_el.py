# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Build the dataset folder of a task from Debian sources. The builder lives in the package
(`onegen.dataset_builders.wn_el`, also run as `python -m onegen.dataset_builders.wn_el`); this script runs it from
the checkout.

    python hub_scripts/build_wn_el.py --small
    python hub_scripts/build_wn_el.py --output_dir data/wn-el --small
"""

import sys

from onegen.dataset_builders.wn_el import main


if __name__ == "__main__":
    sys.exit(main())

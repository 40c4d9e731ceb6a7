# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""`onegen.dataset_builders`: build the WN-EL, RD-1913 and WN-2Hop dataset folders offline from Debian's
`wordnet-base` and `dict-gcide` packages. Each task module runs as a command:

    python -m onegen.dataset_builders.wn_el --small          # into <onegen cache>/datasets/wn-el
    python -m onegen.dataset_builders.rd_1913 --output_dir data/rd-1913 --small
    python -m onegen.dataset_builders.wn_2hop --small

The builders import neither the evaluation nor the trainer: `onegen.evaluation` names them (its task registry),
not the other way round.
"""

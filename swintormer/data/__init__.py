"""Data: the DPDD layout, synthetic defocus from real photographs, training pairs, the bundled sample.

- :mod:`~swintormer.data.defocus`: disk and half-aperture PSFs, spatially varying blur;
- :mod:`~swintormer.data.synthetic`: depth maps, noise, quantisation, one defocus realisation;
- :mod:`~swintormer.data.photos`: the bundled photographs and their fixed train/test split;
- :mod:`~swintormer.data.dpdd`: finding, checking and reading DPDD-layout pairs;
- :mod:`~swintormer.data.pairs`: crops, the 8 augmentations, batches;
- :mod:`~swintormer.data.sources`: the pair sources training draws from;
- :mod:`~swintormer.data.writer`: writing a synthetic DPDD-layout dataset.
"""

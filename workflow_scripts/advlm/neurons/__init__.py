"""Linguistic correlation analysis (Dalvi et al. 2019, NeuroX): which neurons of a model encode POS tags.

Three stages, each behind one rule: ``tagging`` (a sample of sentences tagged with spaCy, silver tags),
``activations`` (one activation vector per word and layer), and the probe analysis, ``analysis``, which puts
together ``features`` (sentence split, standardized features), ``probe`` (an elastic-net linear probe, all layers
and per layer), ``ranking`` (neurons ranked by the probe's weight mass), ``specialization`` (neurons needed per
tag, the tags' overlap), ``subset`` (the fewest top neurons that keep the probe's accuracy), ``ablation`` (top vs
random neurons zeroed), ``control`` (selectivity against a control task, Hewitt & Liang 2019) and ``probeless``
(a probe-free concentration, NeuroX's ``probeless`` ranking, Antverg & Belinkov 2022). ``report``: the analysis's
tables and plots in the workflow's report. Neuron ``n`` of the flattened ``[layers * hidden]`` feature vector is
unit ``n % hidden`` of layer ``n // hidden``; layer 0 is the embedding output.

Nothing is re-exported here: each rule's script imports the modules it uses, and only those are its inputs.
"""

"""Adversarial attacks on a fine-tuned classifier, composed from TextAttack components (docs/attacks.md).

The package's modules, each imported on its own (``from advlm.attacks import metrics``), so that a rule
depends only on the files its script imports (``advlm.plan.imports``):

* ``catalog``: the recipes as data (name, paper, default options, resources needed, stand-ins); no heavy import;
* ``resources``: where an attack finds its offline resources, and their identity (checksums);
* ``encoder``: the local mean-pooling sentence encoder (MiniLM), shared with the calibration;
* ``wrapper``: the model as TextAttack sees it;
* ``components``: the offline stand-ins (TextAttack subclasses: spaCy POS, MiniLM, masked LM, embedding);
* ``recipes``: one ``build`` per recipe and ``build_attack``;
* ``sharding``: which examples a model and a shard attack, and joining the shards;
* ``running``: attacking examples, one shard of a model's sample, A2T's attack context;
* ``metrics``: attack summaries;
* ``budget``: accuracy under attack at a word or query budget and words-to-flip, exactly from the attack rows.

``wrapper``, ``components`` and ``recipes`` import textattack when imported: import them only after
:func:`advlm.runtime.offline_textattack` (its import downloads NLTK data and crashes without stopwords unless
that set-up ran first); :func:`advlm.attacks.running.make_wrapper` does the set-up.

The sentence-encoder calibration lives with the resource stage it serves: ``advlm.encoder_calibration``.
"""

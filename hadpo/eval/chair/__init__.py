"""CHAIR (Rohrbach et al., 2018): how many of the objects a description names are not in the image.

- :mod:`~hadpo.eval.chair.synonyms` — the synonym table (the kit's for COCO, or a user's file);
- :mod:`~hadpo.eval.chair.mentions` — object mentions in a text, without NLTK;
- :mod:`~hadpo.eval.chair.metrics` — CHAIR_i, CHAIR_s, recall and lengths;
- :mod:`~hadpo.eval.chair.inputs` — the sampled COCO images and their ground truth;
- :mod:`~hadpo.eval.chair.stage` — the stage (notebook 05, ``hadpo chair``).
"""

"""Small models with the parameter layout of Flax's own examples, for tests/test_real_models.py.

Written for these tests, they contain no Flax code: each mirrors the parameter names, paths,
shapes, layer types and partition metadata of a Flax example (Flax is Apache-2.0), so that
jaxinit meets what a user of that example meets. `gemma` is NNX, `lm1b` and `resnet` (ResNet18)
linen; `toy` is an NNX model holding every built-in layer once, and stacked vmap/scan layers.
"""

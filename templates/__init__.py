"""Preset projects: one click from a blank canvas to an editable graph of a known architecture.

Every template is a registered function (``templates.registry.register``) that builds a
:class:`compiler.Project` through the same graph API a user's edits go through, so a template is
never a frozen blob: open it and every node, block and wire is editable. ``build(name)`` fills in
the project's name, description, ``template``, ``training.recipe``, ``training.dataset`` and a
layout hint ``project.ui["layout"]`` ("LR" for chains read left to right, "TB" top to bottom).

Names are stable slugs. A family has a SMALL variant (trains on built-in offline data on a CPU in
minutes; the slug ends in ``-small`` or names its dataset, e.g. ``mlp-digits``) and, where a
canonical model exists, a REFERENCE variant that is exactly the published network (``resnet18``,
``gpt2``, ...). Reference variants have ``dataset`` None (bring your own data).

Contracts between templates and training recipes
------------------------------------------------
(The recipe reads the project's networks by these names; the template keeps to them.)

* Single-network recipes use a network named ``"net"`` with exactly ONE ``io.input`` and ONE
  ``io.output`` unless said otherwise below.
* ``classification``: ``net(x) -> logits [N, classes]``. Datasets: ``digits`` (x ``[N, 1, 8, 8]``,
  10 classes), ``digits-flat`` (x ``[N, 64]``, 10 classes), ``shapes32`` (``[N, 3, 32, 32]``, 4
  classes), ``shapes64`` (``[N, 3, 64, 64]``, 4 classes).
  The small RNN/LSTM/GRU sequence classifiers also use ``digits``: they reshape the image to
  ``[N, 8, 8]`` inside the graph and read its 8 rows as 8 time steps.
* ``regression``: ``net(x) -> y`` with y shaped like the dataset's target.
* ``language_model``: ``net(ids long [N, T]) -> logits [N, T, vocab]``; dataset ``text-chars``
  (character ids, vocab 96 = printable ASCII). The recipe shifts targets by one.
* ``masked_lm``: same signature as ``language_model`` (``net(ids [N, T]) -> logits [N, T, vocab]``);
  the recipe masks inputs. Dataset ``text-chars``.
* ``seq2seq``: ``net`` with TWO inputs, in order ``src`` (long ``[N, S]``) and ``tgt`` (long
  ``[N, T]``, the shifted target fed to the decoder) -> logits ``[N, T, vocab]``. Datasets
  ``seq-copy`` / ``seq-reverse`` / ``seq-sort`` (vocab 16). The templates' decoder self-attention is
  causal.
* ``autoencoder``: ``net(x) -> recon`` with recon shaped like x (dense: ``digits-flat`` [N, 64];
  convolutional: ``digits`` [N, 1, 8, 8]; outputs pass through a Sigmoid, data in [0, 1]).
* ``vae``: ``net(x)`` with ONE input and THREE outputs in this order: ``recon`` (like x, after a
  Sigmoid), ``mu`` ``[N, latent]``, ``logvar`` ``[N, latent]``. The reparameterisation is a node
  inside the graph. Dataset ``digits-flat``. The loss is the recipe's (reconstruction BCE + KL of
  mu/logvar).
* ``gan``: two networks: ``"generator"`` (input ``z`` float ``[N, nz]`` -> image, Tanh output in
  [-1, 1]) and ``"discriminator"`` (input image -> logits ``[N, 1]``, no Sigmoid; use
  BCE-with-logits). ``nz`` is the size of the generator input's last dim. Dataset ``digits``
  ([N, 1, 8, 8]) for the small DCGAN; ``shapes32`` for the 32×32 one.
* ``simclr``: networks ``"encoder"`` (image -> features ``[N, F]``) and ``"projector"``
  (``[N, F]`` -> ``[N, P]``). The recipe makes two augmented views. Dataset ``shapes32``.
* ``byol``: networks ``"encoder"``, ``"projector"``, ``"predictor"`` (``[N, P]`` -> ``[N, P]``). The
  recipe keeps the EMA target copy of encoder + projector. Dataset ``shapes32``.
* ``node_classification``: ``net`` with one ``io.graph_input`` (features 34 for ``karate``) ->
  logits ``[V, classes]`` (2 classes for ``karate``: the club split).
* ``graph_classification``: ``net`` with one ``io.graph_input`` (features 8 for ``graphs-synth``) ->
  logits ``[B, classes]`` (one row per graph; 2 classes).

Layout hint ``project.ui["layout"]``: "LR" or "TB".
"""

from .registry import TemplateInfo, all_templates, build, get, register

__all__ = ["TemplateInfo", "all_templates", "build", "get", "register"]

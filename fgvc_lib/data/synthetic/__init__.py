"""A procedurally generated fine-grained dataset: stylised birds that differ only in small parts.

This is the project's default dataset: it needs no download, renders at any
resolution (64 px for CPU smoke runs, 448 px like the papers) and, unlike the
real archives, knows *where* the class evidence is, so the attention chapters
can score attention maps against the discriminative parts (CMAL-Net's ACE/ACR,
Coarse2Fine's localisation error).

How an image is made
--------------------
Every class shares ONE object template, a stylised perching bird drawn from
analytic shapes: an elliptic body, a round head with an eye and a beak, a
wedge-shaped tail, a wing (a rotated ellipse in a darker shade) and two legs.
Three small round **part slots** sit on the template:

* ``crest`` -- on top of the head,
* ``wing``  -- in the middle of the wing,
* ``tail``  -- at the tip of the tail.

Each slot is a disc 15 % of the bird's length across. A slot's
*appearance* is a colour from a saturated palette (red, yellow, green, blue,
magenta, white) and a pattern that mixes that colour with a near-black tone:
``solid`` (all colour), ``ring`` (coloured rim, dark centre), ``stripes``
(alternating bands) or ``dots`` (dark dots on the colour). A **class** is one
appearance per slot, e.g. ``crest-red-stripes/wing-blue-dots/tail-white-ring``.
Outside the three discs, two classes are drawn identically, so the class
can only be read from the parts, as a bird species from its crest or wing bar.

Fine-grained pairs: classes ``2k`` and ``2k+1`` are *siblings* that share two
of the three slots and differ in exactly one, slot ``k mod 3`` (crest for
pairs 0-1, 6-7, ...; wing for 2-3, 8-9, ...; tail for 4-5, 10-11, ...).
Telling siblings apart needs that single part (:attr:`SyntheticFGVC.sibling_pairs`).
Other pairs of classes are drawn at random and usually differ in all slots.

Intra-class variation (drawn per image, independent of the class): facing
left or right, rotation (+-20 degrees), scale (bird length 73-90 % of the
image side), position (the centre shifted up to 6 % of the image side,
never cropping the bird), body colour (any hue, muted), background (a muted
vertical gradient), background clutter (blobs and twig-like lines behind the
bird), a small jitter of the part colours and of the pattern phase and
angle, a global brightness gain and pixel noise. Body and clutter colours are
kept desaturated, and clutter value stays below the white part colour, so
clutter never reproduces a part's appearance code and the body colour says
nothing about the class.

Annotations: every image stores its object box (all pixels the bird touches)
and the box of each part disc, in pixels with exclusive ``x1, y1``.

Layout
------
The package follows the generator's parts; everything public is
re-exported here, so ``from fgvc_lib.data.synthetic import X`` works for
every name below.

* :mod:`~fgvc_lib.data.synthetic.classes` -- the class table (appearance codes,
  sibling pairs, class names) and the argument checks;
* :mod:`~fgvc_lib.data.synthetic.scene` -- the bird template and every per-image
  random quantity (:func:`sample_params`, :func:`prototype_params`);
* :mod:`~fgvc_lib.data.synthetic.raster` -- the SDF rasteriser
  (:func:`render_images`, :func:`class_prototypes`);
* :mod:`~fgvc_lib.data.synthetic.cache` -- the ``.npy``/``.npz`` cache (key,
  folder, atomic writes, validation on reading);
* :mod:`~fgvc_lib.data.synthetic.dataset` -- :class:`SyntheticFGVC` and :func:`describe`.

To change a constant for an experiment (``SCALE_RANGE``, ...), patch it in
the submodule that defines it: the names here are copies.
"""
from fgvc_lib.data.synthetic.cache import (CACHE_ENV, GENERATOR_VERSION, cache_key,
                                           default_cache_root)
from fgvc_lib.data.synthetic.classes import (COLOUR_NAMES, MAX_CLASSES, NUM_APPEARANCES, PALETTE,
                                             PATTERN_DARK, PATTERN_NAMES, SLOT_NAMES, ClassTable,
                                             class_name, make_class_table)
from fgvc_lib.data.synthetic.dataset import SyntheticFGVC, describe
from fgvc_lib.data.synthetic.raster import class_prototypes, prototype_annotations, render_images
from fgvc_lib.data.synthetic.scene import (MAX_ROTATION_DEG, MAX_SHIFT, NOISE_STD,
                                           PART_COLOUR_JITTER, SCALE_RANGE, SLOT_CENTRES,
                                           SLOT_RADIUS, prototype_params, sample_params)

__all__ = [
    "CACHE_ENV", "COLOUR_NAMES", "GENERATOR_VERSION", "MAX_CLASSES", "MAX_ROTATION_DEG",
    "MAX_SHIFT", "NOISE_STD", "NUM_APPEARANCES", "PALETTE", "PART_COLOUR_JITTER",
    "PATTERN_DARK", "PATTERN_NAMES", "SCALE_RANGE", "SLOT_CENTRES", "SLOT_NAMES", "SLOT_RADIUS",
    "ClassTable", "SyntheticFGVC", "cache_key", "class_name", "class_prototypes",
    "default_cache_root", "describe", "make_class_table", "prototype_annotations",
    "prototype_params", "render_images", "sample_params",
]

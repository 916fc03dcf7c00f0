"""Building blocks shared by the paper models (one place for each)."""
from fgvc_lib.models.blocks.cam import (attention_boxes, class_activation_map, crop_and_resize,
                                        mask_to_box, minmax_normalize, pad_boxes,
                                        threshold_mask, upsample_maps)
from fgvc_lib.models.blocks.pooling import (GlobalPool, bilinear_pool, covariance_pool,
                                            global_pool, signed_sqrt_l2)

__all__ = [
    "GlobalPool", "attention_boxes", "bilinear_pool", "class_activation_map", "covariance_pool",
    "crop_and_resize", "global_pool", "mask_to_box", "minmax_normalize", "pad_boxes",
    "signed_sqrt_l2", "threshold_mask", "upsample_maps",
]

# Mask R-CNN with RDNet-T and the DenseFPN neck (dense top-down concat fusion) in place of FPN;
# everything else is configs/mask-rcnn_rdnet_coco.py.
_base_ = ['../mask-rcnn_rdnet_coco.py']
model = dict(neck=dict(type='DenseFPN', fusion='concat', bottom_up=False, num_repeats=1))

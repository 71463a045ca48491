# Everything a fresh machine needs: `make demo`, `make test`.
PYTHON := .venv/bin/python
DEMO_CFG := configs/demo/upernet_rdnet_ade20k_demo.py
DEMO_DIR := work_dirs/demo
DEMO_DATA := data/ade20k_demo/ADEChallengeData2016

.PHONY: setup deploy-deps demo demo-data demo-coco demo-3d test lint bench clean-demo

# mmcv flavour: MMCV_OPS=torchvision (default for a new .venv: mmcv-lite + densedet's torchvision
# ops, no compiler) or MMCV_OPS=compiled (mmcv built with all its ops, ~15 min once). It sticks:
# later `make` runs keep the venv's flavour unless MMCV_OPS is given again. docs/install.md.
setup:
	MMCV_OPS=$(MMCV_OPS) bash tools/setup_env.sh

$(DEMO_DATA)/images/validation/ADE_demo_v_00047.jpg: | setup
	$(PYTHON) tools/data/make_demo_ade20k.py --out $(DEMO_DATA)

demo-data: setup $(DEMO_DATA)/images/validation/ADE_demo_v_00047.jpg

# Train on the embedded data, evaluate (mIoU), paint predictions, plot the curves.
demo: demo-data
	$(PYTHON) tools/train.py $(DEMO_CFG) --work-dir $(DEMO_DIR)
	$(PYTHON) tools/test.py $(DEMO_CFG) $$(cat $(DEMO_DIR)/last_checkpoint) --work-dir $(DEMO_DIR) \
		--show-dir overlays --out $(DEMO_DIR)/pred_masks
	$(PYTHON) tools/analysis/plot_curves.py $(DEMO_DIR)
	@echo "demo outputs: $(DEMO_DIR) (overlays/vis_data/vis_image/*.png, curves.png, pred_masks/)"

COCO_DEMO_CFG := configs/demo/mask-rcnn_rdnet_coco_demo.py
COCO_DEMO_DIR := work_dirs/demo_coco

data/coco_demo/annotations/instances_val2017.json: | setup
	$(PYTHON) tools/data/make_demo_coco.py --out data/coco_demo

# Mask R-CNN RDNet-T on the embedded COCO-format data: train, CocoMetric (bbox + segm),
# COCO results json and painted predictions.
demo-coco: setup data/coco_demo/annotations/instances_val2017.json
	$(PYTHON) tools/train.py $(COCO_DEMO_CFG) --work-dir $(COCO_DEMO_DIR)
	$(PYTHON) tools/test.py $(COCO_DEMO_CFG) $$(cat $(COCO_DEMO_DIR)/last_checkpoint) --work-dir $(COCO_DEMO_DIR) \
		--show-dir overlays --out $(COCO_DEMO_DIR)/results/coco
	@echo "demo outputs: $(COCO_DEMO_DIR) (results/coco.{bbox,segm}.json, <timestamp>/overlays/*.png)"

VOLUME_DEMO_CFG := configs/demo/denseunet3d_msd-liver_demo_preprocessed.py
VOLUME_DEMO_DIR := work_dirs/demo_3d

data/msd_demo/Task03_Liver/dataset.json: | setup
	$(PYTHON) tools/data/make_demo_msd.py --out data/msd_demo/Task03_Liver

# 3D DenseUNet on the embedded synthetic MSD-layout CT task: plan (spacing, CT normalisation,
# folds), preprocess once (memory-mapped .npy), train on fold 0, Dice / HD95 on the fold's
# validation cases in their original files, predicted NIfTI files (input affine and header kept).
demo-3d: setup data/msd_demo/Task03_Liver/dataset.json
	$(PYTHON) tools/data/plan_volumes.py $(VOLUME_DEMO_CFG)
	$(PYTHON) tools/data/preprocess_volumes.py $(VOLUME_DEMO_CFG) --workers 2
	$(PYTHON) tools/train.py $(VOLUME_DEMO_CFG) --work-dir $(VOLUME_DEMO_DIR)
	$(PYTHON) tools/test.py $(VOLUME_DEMO_CFG) $$(cat $(VOLUME_DEMO_DIR)/last_checkpoint) --work-dir $(VOLUME_DEMO_DIR) \
		--out $(VOLUME_DEMO_DIR)/pred_nifti
	@echo "demo outputs: $(VOLUME_DEMO_DIR) (pred_nifti/*.nii.gz, <timestamp>/*.log with Dice / HD95)"

# Optional ONNX tools (requirements/deploy.txt): not part of setup; the tests of the export need them.
DEPLOY_STAMP := .venv/.densedet-deploy-$(shell sha256sum requirements/deploy.txt | cut -c1-16)
$(DEPLOY_STAMP): requirements/deploy.txt | setup
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements/deploy.txt torch==2.14.1 torchvision==0.29.1
	rm -f .venv/.densedet-deploy-* && touch $@

deploy-deps: $(DEPLOY_STAMP)

# Two pytest workers (pytest-xdist; work-stealing, as the tool tests vary from 1 to 80 s): most
# end-to-end tests run the tools in 1-thread subprocesses, so two overlap well on two cores.
# TEST_WORKERS=0 runs in one process. --durations: the slowest, what to trim when the suite grows.
TEST_WORKERS ?= 2
test: setup $(DEPLOY_STAMP)
	$(PYTHON) -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=20 tests

# pyflakes, pycodestyle (120 columns) and import order (ruff.toml); .ci/run runs it before the tests.
LINT_STAMP := .venv/.densedet-lint-$(shell sha256sum requirements/lint.txt | cut -c1-16)
$(LINT_STAMP): requirements/lint.txt | setup
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements/lint.txt
	rm -f .venv/.densedet-lint-* && touch $@

lint: $(LINT_STAMP)
	.venv/bin/ruff check densedet tools tests configs

bench: setup
	$(PYTHON) tools/analysis/benchmark.py --arch tiny --size 512 --threads 2

clean-demo:
	rm -rf $(DEMO_DIR) data/ade20k_demo $(COCO_DEMO_DIR) data/coco_demo $(VOLUME_DEMO_DIR) data/msd_demo

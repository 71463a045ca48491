# Everything a fresh machine needs: `make demo`, `make test`.
PYTHON := .venv/bin/python
DEMO_CFG := configs/demo/upernet_rdnet_ade20k_demo.py
DEMO_DIR := work_dirs/demo
DEMO_DATA := data/ade20k_demo/ADEChallengeData2016

.PHONY: setup demo demo-data test bench clean-demo

setup:
	bash tools/setup_env.sh

$(DEMO_DATA)/images/validation: | setup
	$(PYTHON) tools/data/make_demo_ade20k.py --out $(DEMO_DATA)

demo-data: setup $(DEMO_DATA)/images/validation

# Train on the embedded data, evaluate (mIoU), paint predictions, plot the curves.
demo: demo-data
	$(PYTHON) tools/train.py $(DEMO_CFG) --work-dir $(DEMO_DIR)
	$(PYTHON) tools/test.py $(DEMO_CFG) $$(cat $(DEMO_DIR)/last_checkpoint) --work-dir $(DEMO_DIR) \
		--show-dir overlays --out $(DEMO_DIR)/pred_masks
	$(PYTHON) tools/analysis/plot_curves.py $(DEMO_DIR)
	@echo "demo outputs: $(DEMO_DIR) (overlays/vis_data/vis_image/*.png, curves.png, pred_masks/)"

test: setup
	$(PYTHON) -m pytest -q tests

bench: setup
	$(PYTHON) tools/analysis/benchmark.py --arch tiny --size 512 --threads 2

clean-demo:
	rm -rf $(DEMO_DIR) data/ade20k_demo

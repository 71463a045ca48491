#!/usr/bin/env bash
# Cross-validation on a Slurm cluster: one array task per fold (tools/crossval.py --folds K, each a
# distributed run over GPUS GPUs), then one job, started when every fold succeeded, that writes the
# summary. mmseg's slurm_train.sh conventions (PARTITION, GPUS, GPUS_PER_NODE, CPUS_PER_TASK,
# SRUN_ARGS); FOLDS: how many folds splits.json has (default 5).
#   GPUS=4 bash tools/slurm_crossval.sh PARTITION CONFIG [tools/crossval.py options, e.g. --save-probabilities]
# The folds share the work dir (default work_dirs/<config name>/crossval); a resubmission skips
# finished folds and resumes interrupted ones.
set -euo pipefail
PARTITION=$1
CONFIG=$2
shift 2
FOLDS=${FOLDS:-5}
GPUS=${GPUS:-1}
GPUS_PER_NODE=${GPUS_PER_NODE:-$((GPUS < 8 ? GPUS : 8))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
PY_ARGS="$*"
cd "$(dirname "$0")/.."
FOLD_JOBS=$(sbatch --parsable -p "${PARTITION}" --job-name=crossval --array=0-$((FOLDS - 1)) \
    --gres=gpu:"${GPUS_PER_NODE}" --ntasks="${GPUS}" --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" --kill-on-invalid-dep=yes \
    --wrap "srun ${SRUN_ARGS} python -u tools/crossval.py ${CONFIG} --folds \$SLURM_ARRAY_TASK_ID --launcher slurm ${PY_ARGS}")
SUMMARY_JOB=$(sbatch --parsable -p "${PARTITION}" --job-name=crossval-summary --dependency=afterok:"${FOLD_JOBS}" \
    --ntasks=1 --cpus-per-task="${CPUS_PER_TASK}" \
    --wrap "python -u tools/crossval.py ${CONFIG} --summarize-only ${PY_ARGS}")
echo "folds: job array ${FOLD_JOBS} (0-$((FOLDS - 1))); summary: job ${SUMMARY_JOB} after them"

#!/usr/bin/env bash
# Multi-process training: tools/dist_train.sh CONFIG NPROC [train.py args] (see dist_run.sh for nodes)
exec "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" "${@:3}"

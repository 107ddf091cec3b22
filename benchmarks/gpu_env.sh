# Sourced by the GPU session scripts: output teed to $OUT/session.log, `say` with elapsed seconds,
# $PY, the package importable (editable install, else a copy laid out as the installed package),
# and the device and versions printed. Needs OUT set; exits if torch/triton/the package do not import.
mkdir -p "$OUT"
exec > >(tee -a "$OUT/session.log") 2>&1
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=30
T0=$(date +%s)
say() { echo "[$(($(date +%s) - T0)) s] $*"; }
PY=${PYTHON:-python3}
if ! $PY -m pip install -q --no-deps --no-build-isolation -e . >/tmp/install.log 2>&1; then
    say "editable install failed ($(tail -1 /tmp/install.log)); using a copy on PYTHONPATH"
    mkdir -p /tmp/pkg && cp -r swintormer /tmp/pkg/ && cp -r kernels /tmp/pkg/swintormer/kernels \
        && cp -r export /tmp/pkg/swintormer/export && export PYTHONPATH=/tmp/pkg
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
$PY -c "import torch, triton, swintormer.kernels; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')" || exit 1

"""The demo's limits: a shared page must not let one user hold the machine or fill its disk."""

from t2i_guidance.input_checks import MAX_CANDIDATES

DEMO_MAX_N = min(32, MAX_CANDIDATES)  # pictures one run may draw
MAX_UPLOAD = "8mb"
MAX_UPLOAD_PIXELS = 4096 * 4096
QUEUE_SIZE = 8  # jobs waiting for the models; one runs at a time

"""Plain NumPy implementations written straight from the textbook formulas (loops where clearest).

They are the first oracle of the tests, and readable definitions for users. float64 throughout.
"""

# -- exports (each module adds its own line below) --
from jcnn.reference import losses, optim
from jcnn.reference.activations import (
    elu,
    gelu,
    hard_sigmoid,
    hard_swish,
    hard_tanh,
    leaky_relu,
    log_softmax,
    prelu,
    relu,
    relu6,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from jcnn.reference.blocks import layer_scale, squeeze_excitation, stochastic_depth
from jcnn.reference.conv import conv_transpose, convolve, correlate
from jcnn.reference.dense import dense
from jcnn.reference.normalization import (
    batch_norm,
    group_norm,
    instance_norm,
    layer_norm,
    local_contrast_norm,
    local_response_norm,
    window_weights,
)
from jcnn.reference.pooling import (
    adaptive_avg_pool,
    adaptive_bins,
    adaptive_max_pool,
    avg_pool,
    global_avg_pool,
    global_max_pool,
    lp_pool,
    max_pool,
)

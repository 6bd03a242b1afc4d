"""Pure array ops on channels-last arrays (docs/design.md §2): convolution, pooling, activations,
normalization and the output-size formula. No parameters of their own."""

from jcnn.ops.activations import (
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
from jcnn.ops.blocks import squeeze_excitation, stochastic_depth, stochastic_depth_keep
from jcnn.ops.conv import conv, conv_transpose

# -- exports (each module adds its own line below) --
from jcnn.ops.normalization import (
    Moments,
    batch_norm,
    group_norm,
    instance_norm,
    layer_norm,
    local_contrast_norm,
    local_response_norm,
)
from jcnn.ops.padding import PADDING_MODES, normalize_padding, pad_spatial
from jcnn.ops.pooling import (
    adaptive_avg_pool,
    adaptive_max_pool,
    avg_pool,
    global_avg_pool,
    global_max_pool,
    lp_pool,
    max_pool,
)
from jcnn.ops.shapes import output_size

"""Pure array ops on channels-last arrays (DESIGN.md §2): convolution, pooling, activations,
normalization and the output-size formula. No parameters of their own."""

from jcnn.ops.padding import PADDING_MODES, normalize_padding, pad_spatial
from jcnn.ops.shapes import output_size

# -- exports (each module adds its own line below) --
from jcnn.ops.conv import conv, conv_transpose

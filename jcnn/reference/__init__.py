"""Plain NumPy implementations written straight from the textbook formulas (loops where clearest).

They are the first oracle of the tests, and readable definitions for users. float64 throughout.
"""

# -- exports (each module adds its own line below) --
from jcnn.reference.conv import conv_transpose, convolve, correlate

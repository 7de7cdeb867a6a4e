"""detak — ECG screening on the edge.

The kiosk install (``pip install detak``) never imports torch: heavy imports live inside the
functions that need them.

>>> import detak
>>> detak.__version__
'0.1.0'
"""

__version__ = "0.1.0"
